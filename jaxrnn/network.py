"""The continuous-time rate RNN (DESIGN.md §2), written for ONE network and ONE trial.

    h_t = (1 - a) h_{t-1} + a · act(W_rec h_{t-1} + W_in x_t + b),   z_t = W_out h_t + b_out,   h_0 = 0,

with a = dt / tau. With a = 1 and tanh this is exactly Keras `SimpleRNN` + `Dense`, the model of Jarne & Laje 2019.
Math orientation: `W[i, j]` is the weight from unit j to unit i (Keras stores the transposes).

Parameters are a plain dict pytree: `W_in` (N, n_in), `W_rec` (N, N), `W_out` (n_out, N), `b_out` (n_out,), and `b`
(N,) only when the RNN bias is on.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax import Array

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid}
INITS = ("orthogonal", "normal")

Params = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class NetConfig:
    """Static description of the network.

    Attributes:
        n_in, n_out: input and output dimensions.
        units: N, number of recurrent units.
        alpha: a = dt / tau, the leak (1 = discrete-time Keras SimpleRNN).
        activation: one of ACTIVATIONS.
        bias: whether the recurrent layer has a bias b.
        init: recurrent initializer, "orthogonal" (gain · Q) or "normal" (N(0, gain² / N)).
    """

    n_in: int
    n_out: int
    units: int = 50
    alpha: float = 1.0
    activation: str = "tanh"
    bias: bool = False
    init: str = "orthogonal"

    def __post_init__(self):
        for name in ("n_in", "n_out", "units"):
            if getattr(self, name) < 1:
                raise ValueError(f"network: {name} must be a positive integer, got {getattr(self, name)}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"network: alpha (dt/tau) must lie in (0, 1], got {self.alpha}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network: unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.init not in INITS:
            raise ValueError(f"network: unknown init {self.init!r}; allowed: {', '.join(INITS)}")


def glorot_uniform(key: Array, shape: tuple[int, int]) -> Array:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), Keras' default kernel initializer."""
    limit = math.sqrt(6.0 / sum(shape))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_recurrent(key: Array, units: int, init: str, gain: float | Array = 1.0) -> Array:
    """W_rec (N, N): `orthogonal` (gain · a Haar-random orthogonal matrix) or `normal` (std gain / sqrt(N))."""
    if init == "orthogonal":
        return gain * jax.nn.initializers.orthogonal()(key, (units, units), jnp.float32)
    if init == "normal":
        return gain / math.sqrt(units) * jax.random.normal(key, (units, units), jnp.float32)
    raise ValueError(f"network: unknown init {init!r}; allowed: {', '.join(INITS)}")


def init_params(key: Array, cfg: NetConfig, gain: float | Array = 1.0) -> Params:
    """Initial parameters of one network (Keras defaults: Glorot-uniform kernels, zero biases)."""
    key_in, key_rec, key_out = jax.random.split(key, 3)
    params = {
        "W_in": glorot_uniform(key_in, (cfg.units, cfg.n_in)),
        "W_rec": init_recurrent(key_rec, cfg.units, cfg.init, gain),
        "W_out": glorot_uniform(key_out, (cfg.n_out, cfg.units)),
        "b_out": jnp.zeros(cfg.n_out, jnp.float32),
    }
    if cfg.bias:
        params["b"] = jnp.zeros(cfg.units, jnp.float32)
    return params


def forward(params: Params, inputs: Array, cfg: NetConfig) -> tuple[Array, Array]:
    """Run one network on one trial.

    Args:
        params: one network's parameters.
        inputs: (T, n_in).
        cfg: the network's static config.
    Returns:
        outputs (T, n_out) and hidden states (T, N).
    """
    act = ACTIVATIONS[cfg.activation]
    a = cfg.alpha
    drive = inputs @ params["W_in"].T  # the input projection of every step at once, (T, N)
    if "b" in params:
        drive = drive + params["b"][None, :]
    W_rec = params["W_rec"]

    def step(h, u):
        h = h + a * (-h + act(W_rec @ h + u)) if a != 1.0 else act(W_rec @ h + u)
        return h, h

    h0 = jnp.zeros(W_rec.shape[0], drive.dtype)
    _, states = jax.lax.scan(step, h0, drive)
    outputs = states @ params["W_out"].T + params["b_out"][None, :]
    return outputs, states


def outputs(params: Params, inputs: Array, cfg: NetConfig) -> Array:
    """The readout (T, n_out) of one network on one trial."""
    return forward(params, inputs, cfg)[0]


# ----------------------------------------------------------------------------------------------------------------
# The training fast path: a batch of trials through one network, with a hand-written backward pass.
#
# Autodiff through `lax.scan` stores every step's state and, under vmap over members, transposes the stored
# (T, members, B, N) arrays for the matmuls outside the loop. The custom VJP below keeps every per-trial array inside
# its two loops: the forward scan applies the input projection and the readout at each step (for a few inputs or
# outputs as broadcast multiply-adds, which XLA fuses; a matmul with K = 1..4 is a slow library call) and writes the
# states into a buffer carried through the loop (a carry keeps the member axis first under vmap; a stacked scan
# output would put time first and be copied member-major once per update as the backward pass's residual); the
# reverse scan carries the state cotangent dh and accumulates dW_rec, dW_in, dW_out and the biases' gradients per
# step. Nothing of size (T, B, N) is copied or transposed outside the loops. Measured through `train.fit` on the
# 2-core CPU (AND, N = 50, E = 16, 1,280 trials in batches of 128, quiet machine, medians of 5): 0.16 s per network
# per epoch with the previous fast path (input drive precomputed, dW_rec as one matmul after the loop), 0.094 s
# with per-step projections and gradient sums, 0.088 s with the carried state buffer. Tried and not kept (no gain
# within the ±10% noise): (N, B) state layout, scan unrolling, storing transposed states for dW_rec, symbolic
# zeros for unused state cotangents, XLA's YNN fusions off, glibc malloc tuning (tcmalloc neither: nothing large is
# allocated per step any more). Same math as `forward`, tested against autodiff through it (tests/test_fast.py).

#: Below this many inputs (outputs), the per-step input projection (readout) is a sum of broadcast products.
_SMALL_K = 4


def _proj(a: Array, W: Array) -> Array:
    """a (B, K) @ W.T for W (M, K)."""
    if a.shape[-1] <= _SMALL_K:
        out = a[:, 0:1] * W[None, :, 0]
        for k in range(1, a.shape[-1]):
            out = out + a[:, k : k + 1] * W[None, :, k]
        return out
    return a @ W.T


def _outer_sum(d: Array, a: Array) -> Array:
    """d.T @ a = sum over the batch of outer products, for d (B, M), a (B, K) -> (M, K)."""
    if a.shape[-1] <= _SMALL_K:
        return jnp.stack([jnp.sum(d * a[:, k : k + 1], 0) for k in range(a.shape[-1])], axis=1)
    if d.shape[-1] <= _SMALL_K:
        return jnp.stack([jnp.sum(a * d[:, k : k + 1], 0) for k in range(d.shape[-1])], axis=0)
    return d.T @ a


def _act_and_slope(name: str, z: Array) -> tuple[Array, Array]:
    """act(z) and act'(z), elementwise."""
    act = ACTIVATIONS[name]
    r, slope = jax.jvp(act, (z,), (jnp.ones_like(z),))
    return r, slope


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _rnn(alpha: float, activation: str, W_rec, W_in, b, W_out, b_out, h0, x, noise):
    """Readout z_t (T, B, n_out) and states h_t (T, B, N) of a batch of trials x (T, B, n_in) from h0 (B, N);
    `noise` (T, B, N) is added to the pre-activation at every step, or None."""
    return _rnn_fwd(alpha, activation, W_rec, W_in, b, W_out, b_out, h0, x, noise)[0]


def _rnn_fwd(alpha, activation, W_rec, W_in, b, W_out, b_out, h0, x, noise):
    act = ACTIVATIONS[activation]
    tanh_shortcut = activation == "tanh" and alpha == 1.0  # act'(z_t) = 1 - h_t^2: no slope to store

    T, B, N = x.shape[0], x.shape[1], W_rec.shape[0]

    def step(carry, t):
        h, states, slopes = carry
        z = h @ W_rec.T + _proj(x[t], W_in) + b[None, :]
        if noise is not None:
            z = z + noise[t]
        if tanh_shortcut:
            r = act(z)
        else:
            r, slope = _act_and_slope(activation, z)
            slopes = jax.lax.dynamic_update_index_in_dim(slopes, slope, t, 0)
        h = r if alpha == 1.0 else h + alpha * (r - h)
        states = jax.lax.dynamic_update_index_in_dim(states, h, t, 0)
        return (h, states, slopes), _proj(h, W_out) + b_out[None, :]

    # The states are written into a buffer carried through the loop rather than stacked as the scan's output: under
    # vmap a carry keeps the member axis first, a stacked output puts time first and the backward pass (a residual,
    # member axis first) would copy all of it once per update.
    zeros = jnp.zeros((T, B, N), x.dtype)
    init = (h0, zeros, None if tanh_shortcut else zeros)
    (_, states, slopes), outs = jax.lax.scan(step, init, jnp.arange(T))
    return (outs, states), (W_rec, W_in, W_out, h0, x, states, slopes)


def _rnn_bwd(alpha, activation, residuals, cotangents):
    W_rec, W_in, W_out, h0, x, states, slopes = residuals
    g_outs, g_states = cotangents
    tanh_shortcut = slopes is None
    T = x.shape[0]

    def step(carry, t):
        dh, dW_rec, dW_in, db, dW_out = carry
        h = states[t]
        h_prev = jnp.where(t > 0, states[jnp.maximum(t - 1, 0)], h0)
        g = g_outs[t]
        dW_out = dW_out + _outer_sum(g, h)
        dh = dh + g_states[t] + _proj(g, W_out.T)  # total cotangent of h_t
        slope = 1.0 - h * h if tanh_shortcut else slopes[t]
        dz = dh * slope if alpha == 1.0 else alpha * dh * slope
        dW_rec = dW_rec + dz.T @ h_prev
        dW_in = dW_in + _outer_sum(dz, x[t])
        db = db + jnp.sum(dz, 0)
        dh_prev = dz @ W_rec  # cotangent of h_{t-1} through W_rec h_{t-1}
        if alpha != 1.0:
            dh_prev = dh_prev + (1.0 - alpha) * dh
        return (dh_prev, dW_rec, dW_in, db, dW_out), None

    zeros = jax.tree.map(jnp.zeros_like, (states[0], W_rec, W_in, W_rec[0], W_out))
    (dh0, dW_rec, dW_in, db, dW_out), _ = jax.lax.scan(step, zeros, jnp.arange(T), reverse=True)
    return dW_rec, dW_in, db, dW_out, jnp.sum(g_outs, (0, 1)), dh0, None, None


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def forward_batch(params: Params, inputs: Array, cfg: NetConfig, noise: Array | None = None) -> tuple[Array, Array]:
    """Run one network on a batch of trials, with the fast hand-written backward pass (for training).

    Same math as `forward` vmapped over trials; gradients match autodiff through `forward` (tests/test_fast.py).
    Works under `vmap` over members.

    Args:
        params: one network's parameters.
        inputs: (B, T, n_in).
        cfg: the network's static config.
        noise: (B, T, N) recurrent noise added to the pre-activation (as in `forward`), or None.
    Returns:
        outputs (B, T, n_out) and hidden states (B, T, N).
    """
    B, N = inputs.shape[0], params["W_rec"].shape[0]
    b = params["b"] if "b" in params else jnp.zeros(N, inputs.dtype)
    h0 = jnp.broadcast_to(params["h0"][None, :], (B, N)) if "h0" in params else jnp.zeros((B, N), inputs.dtype)
    x = jnp.swapaxes(inputs, 0, 1)  # time-major (T, B, n_in): the scans step over the leading axis
    noise = None if noise is None else jnp.swapaxes(noise, 0, 1)
    W_rec = params["W_rec"]
    outs, states = _rnn(
        float(cfg.alpha), cfg.activation, W_rec, params["W_in"], b, params["W_out"], params["b_out"], h0, x, noise
    )
    return jnp.swapaxes(outs, 0, 1), jnp.swapaxes(states, 0, 1)


def outputs_batch(params: Params, inputs: Array, cfg: NetConfig, noise: Array | None = None) -> Array:
    """The readout (B, T, n_out) of one network on a batch of trials (B, T, n_in), fast backward pass."""
    return forward_batch(params, inputs, cfg, noise)[0]
