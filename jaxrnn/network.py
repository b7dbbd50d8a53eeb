"""The continuous-time rate RNN (DESIGN.md §2), written for ONE network and ONE trial.

    h_t = (1 - a) h_{t-1} + a · act(W_rec h_{t-1} + W_in x_t + b),   z_t = W_out h_t + b_out,   h_0 = 0,

with a = dt / tau. With a = 1 and tanh this is exactly Keras `SimpleRNN` + `Dense`, the model of Jarne & Laje 2019.
Math orientation: `W[i, j]` is the weight from unit j to unit i (Keras stores the transposes).

Parameters are a plain dict pytree: `W_in` (N, n_in), `W_rec` (N, N), `W_out` (n_out, N), `b_out` (n_out,), and `b`
(N,) only when the RNN bias is on.
"""

from __future__ import annotations

import dataclasses
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
