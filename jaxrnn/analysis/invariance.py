"""Time-translation invariance (Jarne & Laje 2019, §5.6): does a network respond to a stimulus the same way,
with the same latency, whenever the stimulus comes?

The stimulus (L, n_in) is placed at each of K onsets in a longer trial of T steps, with Gaussian input noise of
standard deviation `noise` on every step (the noise is what makes the pre-stimulus state depend on the onset: a
network without bias started at h_0 = 0 stays at 0 without input). For each onset the output channel is averaged
over `n_noise` noise draws and cut to the `window` steps after the onset. Per onset:

  * `corr`: Pearson correlation of that onset-aligned response with the one at the first onset (1 = same shape);
  * `rel_error`: RMS difference from the first onset's response over the first response's RMS change from its
    pre-stimulus level (0 = identical, scale included);
  * `latency`: steps from onset until the output first covers half of its change from the pre-stimulus level
    (the step before the onset) to its final level (mean of the window's last `tail` steps).

Across onsets: the smallest correlation and the latency spread (standard deviation, steps).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn.cells.network import NetConfig, Params, outputs


class Invariance(NamedTuple):
    """Per-member result (a leading member axis when vmapped). K onsets.

    Attributes:
        corr: (K,) correlation with the first onset's aligned response. rel_error: (K,) relative RMS difference.
        latency: (K,) steps to half the response. aligned: (K, window) mean onset-aligned responses.
        min_corr: () smallest of `corr`. latency_spread: () std of `latency` (steps).
    """

    corr: Array
    rel_error: Array
    latency: Array
    aligned: Array
    min_corr: Array
    latency_spread: Array


def onset_inputs(stimulus: Array, onsets, T: int, noise: float, key: Array, n_noise: int) -> Array:
    """Trials with the stimulus at each onset plus input noise.

    Args:
        stimulus: (L, n_in). onsets: K ints with onset + L <= T. T: trial length. noise: input noise std.
        key: noise key (the same draws for every onset, so only the onset differs). n_noise: draws per onset.
    Returns:
        (K, n_noise, T, n_in) inputs.
    """
    stimulus = np.asarray(stimulus, np.float32)
    L, n_in = stimulus.shape
    onsets = [int(o) for o in onsets]
    if min(onsets) < 1 or max(onsets) + L > T:
        raise ValueError(f"invariance: onsets must lie in [1, T - L] = [1, {T - L}], got {onsets}")
    clean = np.zeros((len(onsets), T, n_in), np.float32)
    for k, o in enumerate(onsets):
        clean[k, o : o + L] = stimulus
    eps = noise * jax.random.normal(key, (n_noise, T, n_in), jnp.float32)
    return jnp.asarray(clean)[:, None] + eps[None]


@functools.partial(jax.jit, static_argnames=("cfg", "window", "channel", "tail"))
def invariance(
    params: Params, cfg: NetConfig, trials: Array, onsets, window: int, channel: int = 0, tail: int = 10
) -> Invariance:
    """Onset-aligned response statistics of one network (pure jnp: vmap it over members).

    Args:
        params: one network. trials: (K, R, T, n_in) from `onset_inputs`. onsets: the K onsets. window: steps
            after the onset to compare (onset + window <= T). channel: output channel. tail: steps averaged as the
            final level.
    """
    onsets = jnp.asarray(onsets, jnp.int32)
    out = jax.vmap(jax.vmap(lambda x: outputs(params, x, cfg)))(trials)[..., channel].mean(1)  # (K, T)
    aligned = jax.vmap(lambda y, o: jax.lax.dynamic_slice(y, (o,), (window,)))(out, onsets)  # (K, window)
    before = jax.vmap(lambda y, o: y[o - 1])(out, onsets)  # (K,)
    ref = aligned[0]
    a = aligned - aligned.mean(1)[:, None]
    r = ref - ref.mean()
    corr = (a @ r) / jnp.maximum(jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(r), 1e-12)
    scale = jnp.sqrt(jnp.mean((ref - before[0]) ** 2))
    rel_error = jnp.sqrt(jnp.mean((aligned - ref[None, :]) ** 2, axis=1)) / jnp.maximum(scale, 1e-12)
    final = aligned[:, -tail:].mean(1)
    change = jnp.abs(aligned - before[:, None])
    half = 0.5 * jnp.abs(final - before)
    crossed = change >= half[:, None]
    latency = jnp.where(crossed.any(1), jnp.argmax(crossed, axis=1), window).astype(jnp.float32)
    return Invariance(corr, rel_error, latency, aligned, corr.min(), latency.std())


def ensemble_invariance(
    params: Params, cfg: NetConfig, trials: Array, onsets, window: int, channel: int = 0, tail: int = 10
) -> Invariance:
    """`invariance` of every member (member axis first in `params` and in every returned array)."""
    fn = jax.jit(jax.vmap(lambda p: invariance(p, cfg, trials, onsets, window, channel, tail)))
    return jax.tree.map(jax.device_get, fn(params))
