"""Lesions of the recurrent weights by magnitude, evaluated without retraining (Jarne & Laje 2019, §3.4).

Five modes, as in the original study (`reference/jarne_laje_2019/lesion/`):

* `both_cumulative`: zero the k smallest-magnitude weights of W_rec, k = round(f · n), n = N² (every weight).
* `positive_cumulative` / `negative_cumulative`: the same among the weights of that sign only (n = their count);
  weights of the other sign are untouched.
* `positive_bands` / `negative_bands`: at level j, zero only the weights of that sign whose magnitude rank lies in
  [round(f_{j-1} · n), round(f_j · n)) (f_{-1} = 0): one band of the magnitude distribution at a time, not
  cumulative. The bands of successive levels are disjoint and their union up to level j is the cumulative lesion
  of level j.

The original thresholded magnitudes (|w| < threshold); ranking by magnitude instead makes the removed fraction
exact (within one weight) whatever the weight distribution. Ties are broken by position (stable sort). All
functions are written for ONE matrix and `vmap`-ed over members.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn.cells.network import NetConfig, Params, effective_params, require_rate_rnn
from jaxrnn.tasks import Task, Trial
from jaxrnn.training.evaluate import Evaluation, evaluate_on

MODES = ("both_cumulative", "positive_cumulative", "negative_cumulative", "positive_bands", "negative_bands")


class Lesioned(NamedTuple):
    """Lesioned copies of one W_rec (or, vmapped, with a member axis first).

    Attributes:
        weights: (L, N, N) W_rec with the weights of each level zeroed.
        n_removed: (L,) int32, weights zeroed at each level.
        n_eligible: () int32, weights of the mode's sign (N² for `both_cumulative`).
    """

    weights: Array
    n_removed: Array
    n_eligible: Array


class LesionCurve(NamedTuple):
    """One mode's lesion curve over an ensemble.

    Attributes:
        mode: one of MODES.
        fractions: (L,) requested fractions of the eligible weights.
        removed: (E, L) actual removed fraction of the eligible weights.
        removed_all: (E, L) actual removed fraction of all N² weights.
        n_eligible: (E,) number of eligible weights per member (the denominator of `removed`).
        evaluation: an `Evaluation` whose fields have shape (E, L) ((E, L, C) for distance_by_condition).
    """

    mode: str
    fractions: np.ndarray
    removed: np.ndarray
    removed_all: np.ndarray
    n_eligible: np.ndarray
    evaluation: Evaluation


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"lesion: unknown mode {mode!r}; allowed: {', '.join(MODES)}")


def _check_fractions(fractions, mode: str) -> np.ndarray:
    f = np.asarray(fractions, np.float64)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"lesion: fractions must be a non-empty 1-D sequence, got shape {f.shape}")
    if np.any(f < 0) or np.any(f > 1):
        raise ValueError(f"lesion: fractions must lie in [0, 1], got {f.min()}..{f.max()}")
    if mode.endswith("bands") and np.any(np.diff(f) < 0):
        raise ValueError("lesion: band fractions must be non-decreasing")
    return f


def eligible_weights(W: Array, mode: str) -> Array:
    """Boolean (N, N): the weights a mode may remove (all, positive only, or negative only)."""
    _check_mode(mode)
    sign = mode.split("_")[0]
    if sign == "positive":
        return W > 0
    if sign == "negative":
        return W < 0
    return jnp.ones(W.shape, bool)


def magnitude_ranks(W: Array, eligible: Array) -> Array:
    """Rank (0 = smallest |w|) of every eligible weight among the eligible ones; ineligible weights rank last.

    Args:
        W: (N, N). eligible: (N, N) bool.
    Returns:
        (N, N) int32 ranks; ties broken by flat position.
    """
    key = jnp.where(eligible, jnp.abs(W), jnp.inf).ravel()
    order = jnp.argsort(key, stable=True)
    ranks = jnp.zeros(key.shape, jnp.int32).at[order].set(jnp.arange(key.size, dtype=jnp.int32))
    return ranks.reshape(W.shape)


def lesion_masks(W: Array, mode: str, fractions) -> Lesioned:
    """Lesioned copies of ONE recurrent matrix, one per removed fraction.

    Args:
        W: (N, N) W_rec.
        mode: one of MODES.
        fractions: (L,) fractions in [0, 1] of the eligible weights (non-decreasing for band modes).
    Returns:
        `Lesioned` with weights (L, N, N).
    """
    _check_mode(mode)
    f = jnp.asarray(_check_fractions(fractions, mode), jnp.float32)
    W = jnp.asarray(W)
    eligible = eligible_weights(W, mode)
    n = jnp.sum(eligible).astype(jnp.int32)
    rank = magnitude_ranks(W, eligible)
    hi = jnp.round(f * n).astype(jnp.int32)  # (L,)
    lo = jnp.concatenate([jnp.zeros(1, jnp.int32), hi[:-1]]) if mode.endswith("bands") else jnp.zeros_like(hi)
    remove = eligible[None] & (rank[None] >= lo[:, None, None]) & (rank[None] < hi[:, None, None])  # (L, N, N)
    weights = jnp.where(remove, jnp.zeros((), W.dtype), W[None])
    return Lesioned(weights, jnp.sum(remove, axis=(1, 2)).astype(jnp.int32), n)


def lesion_ensemble(W: Array, mode: str, fractions) -> Lesioned:
    """`lesion_masks` vmapped over members: W (E, N, N) -> weights (E, L, N, N), n_removed (E, L), n_eligible (E,)."""
    _check_mode(mode)
    f = _check_fractions(fractions, mode)
    return jax.jit(jax.vmap(lambda w: lesion_masks(w, mode, f)))(jnp.asarray(W))


def lesion_curves(
    task: Task,
    net: NetConfig,
    params: Params,
    modes,
    fractions,
    trials: Trial,
    success_at: float = 0.9,
) -> dict[str, LesionCurve]:
    """Evaluate every member at every lesion level of every mode, without retraining.

    The mode and level axes are folded into the member axis (M · E · L networks that differ only in W_rec) and
    evaluated in one `evaluate_on` call (one compilation).

    Args:
        task, net: the task and network config of the ensemble.
        params: the trained parameters, member axis first (W_rec (E, N, N)).
        modes: names from MODES. fractions: (L,) requested fractions of the eligible weights.
        trials: held-out trials (trial axis first), the same for every member and level.
        success_at: accuracy a network needs to succeed.
    Returns:
        {mode: LesionCurve}.
    """
    modes = tuple(modes)
    for mode in modes:
        _check_mode(mode)
    f = _check_fractions(fractions, "bands" if any(m.endswith("bands") for m in modes) else "cumulative")
    require_rate_rnn(net, "lesion analysis")
    params = effective_params(params, net)  # lesions act on the effective weights (Dale, sparsity mask)
    W = jnp.asarray(params["W_rec"])
    E, N = W.shape[0], W.shape[1]
    L, M = len(f), len(modes)
    lesions = [lesion_ensemble(W, mode, f) for mode in modes]
    weights = jnp.stack([les.weights for les in lesions])  # (M, E, L, N, N)
    folded = {
        k: jnp.tile(jnp.repeat(jnp.asarray(v), L, axis=0), (M,) + (1,) * (v.ndim - 1))
        for k, v in params.items()
        if k != "W_rec"
    }
    folded["W_rec"] = weights.reshape(M * E * L, N, N)
    ev = evaluate_on(task, net, folded, trials, success_at)
    ev = [np.asarray(x).reshape(M, E, L, *np.asarray(x).shape[1:]) for x in ev]
    out = {}
    for m, (mode, les) in enumerate(zip(modes, lesions, strict=True)):
        n_removed = np.asarray(les.n_removed, np.float64)
        n_eligible = np.maximum(np.asarray(les.n_eligible, np.float64)[:, None], 1.0)
        out[mode] = LesionCurve(
            mode, f, n_removed / n_eligible, n_removed / (N * N), n_eligible[:, 0], Evaluation(*(x[m] for x in ev))
        )
    return out
