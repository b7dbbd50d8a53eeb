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
# Autodiff through `lax.scan` stores every step's state, then, in the reverse scan, copies and transposes them
# and accumulates dW_rec one outer product per step. The custom VJP below instead carries only the state
# cotangent dh through the reverse scan, stacks the pre-activation cotangents dz_t (T, B, N) and forms
# dW_rec = sum_t dz_t^T h_{t-1} as ONE matmul afterwards; the input projection is one matmul over all steps in
# both directions (autodiff handles it, outside the custom VJP). Same math as `forward`, tested against it.


def _act_and_slope(name: str, z: Array) -> tuple[Array, Array]:
    """act(z) and act'(z), elementwise."""
    act = ACTIVATIONS[name]
    r, slope = jax.jvp(act, (z,), (jnp.ones_like(z),))
    return r, slope


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _recurrence(W_rec: Array, drive: Array, alpha: float, activation: str) -> Array:
    """States h_t (T, B, N) of h_t = (1 - a) h_{t-1} + a act(W_rec h_{t-1} + drive_t), h_0 = 0; drive (T, B, N)."""
    return _recurrence_fwd(W_rec, drive, alpha, activation)[0]


def _recurrence_fwd(W_rec, drive, alpha, activation):
    act = ACTIVATIONS[activation]
    need_slope = not (activation == "tanh" and alpha == 1.0)  # for tanh at a = 1 the slope is 1 - h_t^2

    def step(h, u):
        z = h @ W_rec.T + u
        if need_slope:
            r, slope = _act_and_slope(activation, z)
        else:
            r, slope = act(z), None
        h = r if alpha == 1.0 else h + alpha * (r - h)
        return h, (h, slope)

    h0 = jnp.zeros(drive.shape[1:], drive.dtype)
    _, (states, slopes) = jax.lax.scan(step, h0, drive)
    return states, (W_rec, states, slopes)


def _recurrence_bwd(alpha, activation, residuals, g_states):
    W_rec, states, slopes = residuals
    tanh_shortcut = slopes is None  # tanh at a = 1: act'(z_t) = 1 - h_t^2, computed in the step (no extra array)

    def step(dh, xs):
        g, s = xs
        dh = dh + g  # total cotangent of h_t
        slope = 1.0 - s * s if tanh_shortcut else s
        dz = alpha * dh * slope if alpha != 1.0 else dh * slope
        dh_prev = dz @ W_rec  # cotangent of h_{t-1} through W_rec h_{t-1}
        if alpha != 1.0:
            dh_prev = dh_prev + (1.0 - alpha) * dh
        return dh_prev, dz

    dh_last = jnp.zeros(states.shape[1:], states.dtype)
    _, dz = jax.lax.scan(step, dh_last, (g_states, states if tanh_shortcut else slopes), reverse=True)
    # dW_rec = sum_t dz_t^T h_{t-1} (h_0 = 0): one matmul over all steps and trials, no shifted copy of the states
    N = states.shape[-1]
    dW_rec = jax.lax.dot_general(dz[1:].reshape(-1, N), states[:-1].reshape(-1, N), (((0,), (0,)), ((), ())))
    return dW_rec, dz


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def forward_batch(params: Params, inputs: Array, cfg: NetConfig) -> tuple[Array, Array]:
    """Run one network on a batch of trials, with the fast hand-written backward pass (for training).

    Same math as `forward` vmapped over trials; gradients match autodiff through `forward` (tests/test_fast.py).
    Works under `vmap` over members.

    Args:
        params: one network's parameters.
        inputs: (B, T, n_in).
        cfg: the network's static config.
    Returns:
        outputs (B, T, n_out) and hidden states (B, T, N). Unused states cost nothing under jit.
    """
    # the input projection of all steps and trials as one matmul, time-major (T, B, N); transposing the small
    # inputs first is cheaper than writing the large drive transposed
    drive = jnp.swapaxes(inputs, 0, 1) @ params["W_in"].T
    if "b" in params:
        drive = drive + params["b"][None, None, :]
    states = _recurrence(params["W_rec"], drive, float(cfg.alpha), cfg.activation)  # (T, B, N)
    outs = jnp.einsum("tbn,on->bto", states, params["W_out"]) + params["b_out"][None, None, :]
    return outs, jnp.transpose(states, (1, 0, 2))


def outputs_batch(params: Params, inputs: Array, cfg: NetConfig) -> Array:
    """The readout (B, T, n_out) of one network on a batch of trials (B, T, n_in), fast backward pass."""
    return forward_batch(params, inputs, cfg)[0]
