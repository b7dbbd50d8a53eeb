"""The continuous-time rate RNN (DESIGN.md §2), written for ONE network and ONE trial.

    h_t = (1 - a) h_{t-1} + a · act(W_rec h_{t-1} + W_in x_t + b),   z_t = W_out h_t + b_out,   h_0 = 0,

with a = dt / tau. With a = 1 and tanh this is exactly Keras `SimpleRNN` + `Dense`, the model of Jarne & Laje 2019.
Math orientation: `W[i, j]` is the weight from unit j to unit i (Keras stores the transposes).

Parameters are a plain dict pytree: `W_in` (N, n_in), `W_rec` (N, N), `W_out` (n_out, N), `b_out` (n_out,), `b`
(N,) only when the RNN bias is on, `h0` (N,) only with a trainable initial state, `rec_mask` (N, N) only with a
sparse recurrent matrix, and `signs` (N,) (+1 excitatory, -1 inhibitory) only with Dale's law.

Constraints. `params["W_rec"]` is always the FREE parameter; the network runs on the EFFECTIVE matrix
`recurrent_weights(params, cfg)`. Dale's law has two methods (`NetConfig.dale_method`):

  * "abs" (Song, Yang & Wang 2016, PLoS Comput Biol 12:e1004792, "Training excitatory-inhibitory recurrent neural
    networks for cognitive tasks"): a parametrisation,

        W_eff = |W_rec| · D ⊙ M   (Dale's law on)            W_eff = W_rec ⊙ M   (off)

    with D = diag(`signs`: +1 for the first round(e_fraction · N) units, the excitatory ones, -1 for the rest) acting
    on columns (the sign of a weight is that of its PRESYNAPTIC unit j), and a balanced E/I init
    (`init_dale_recurrent`).
  * "project" (the original Keras code, katejarne/Excitatory-inhibitory, whose Keras weight constraints do this): the
    free matrix IS the effective one, W_eff = W_rec ⊙ M; it starts from the plain orthogonal / normal matrix and,
    after every optimizer update (`project_constraints`, called by the trainer on the parameters), every entry of the
    wrong sign is set to 0. The sign is fixed per presynaptic unit (columns, `dale_axis="pre"`, Dale's law proper) or,
    as the original code did, per RECEIVING unit (rows, `dale_axis="post"`: all inputs to a unit share one sign;
    Keras' recurrent kernel is the transpose, so the original's kernel columns are these rows). The same projection
    can keep the input weights W_in >= 0 (`nonneg_input`, the original's input-kernel constraint).

M is the fixed 0/1 sparsity mask (`rec_mask`) and `signs` the unit signs: both are parameters that are never trained
(their gradients are stopped, so Adam leaves them exactly as drawn), so the E fraction and the mask are data, one per
member of an ensemble. Training cannot flip a sign or revive a masked weight. The map is idempotent (W_eff of an
effective matrix is itself), so `effective_params` may be applied to parameters before any analysis (spectra,
lesions, fixed points) and the network still computes the same thing.

Any other cell ("gru", "lstm", "MODULE:ATTR" or a `flax.linen.RNNCellBase` instance, for comparison with the rate
RNN) is a Flax cell run by `jaxrnn.cells` (its parameters a flat dict too: `cell/...`, `h0...`, `W_out`, `b_out`);
`init_params`, `forward`, `outputs` and `forward_batch` hand it over. It has no single W_rec: spectral, lesion and
fixed-point analyses refuse it (`require_rate_rnn`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn import cells
from jaxrnn.spec import INITS, check_number

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid}
DALE_METHODS = ("abs", "project")
DALE_AXES = ("pre", "post")

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
        cell: "rnn" (the rate RNN above), or a Flax cell (`jaxrnn.cells`): "gru", "lstm", "MODULE:ATTR" or a
            `flax.linen.RNNCellBase` instance, whose output size must be `units` (alpha 1, tanh, no Dale, no
            sparsity: the cell is what it is).
        dale: Dale's law, the sign of every recurrent weight fixed by one of its units; see the module docstring.
            `dale=True` alone is `|W|·D` per presynaptic unit (dale_method "abs", dale_axis "pre").
        dale_method: with `dale`, "abs" (W_eff = |W_rec|·D, balanced E/I init) or "project" (plain init; after every
            update the wrong-signed entries are set to 0, as the original Keras code did).
        dale_axis: with `dale`, whose sign a weight W[i, j] carries: "pre" (presynaptic unit j, columns: Dale's law)
            or "post" (receiving unit i, rows: the original code's constraint; "project" only).
        e_fraction: fraction of excitatory units with `dale` (their count is round(e_fraction · N), half up); with
            dale_axis "post" these are the units whose inputs are all >= 0.
        nonneg_input: keep W_in >= 0 by the same projection (the original code's input-kernel constraint).
        sparsity: fraction of recurrent connections removed by a fixed random mask, in [0, 1) (exactly
            round(sparsity · N²) of them); the connection probability is 1 - sparsity.
        train_h0: the initial state h0 is a trained parameter (zero at init) instead of fixed at 0.
    """

    n_in: int
    n_out: int
    units: int = 50
    alpha: float = 1.0
    activation: str = "tanh"
    bias: bool = False
    init: str = "orthogonal"
    cell: Any = "rnn"
    dale: bool = False
    e_fraction: float = 0.8
    sparsity: float = 0.0
    train_h0: bool = False
    dale_method: str = "abs"
    dale_axis: str = "pre"
    nonneg_input: bool = False

    def __post_init__(self):
        for name in ("n_in", "n_out", "units"):
            if getattr(self, name) < 1:
                raise ValueError(f"network: {name} must be a positive integer, got {getattr(self, name)}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"network: alpha (dt/tau) must lie in (0, 1], got {self.alpha}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network: unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        check_number("init", self.init, "network")
        if not cells.is_rate_rnn(self.cell):
            cells.check(self.cell, self.units, self.n_in)  # importable, a Flax cell, `units` features
        check_number("e_fraction", self.e_fraction, "network")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(
                f"network: sparsity (fraction of recurrent connections removed) must lie in [0, 1), got {self.sparsity}"
            )
        if self.dale_method not in DALE_METHODS:
            raise ValueError(f"network: unknown dale_method {self.dale_method!r}; allowed: {', '.join(DALE_METHODS)}")
        if self.dale_axis not in DALE_AXES:
            raise ValueError(f"network: unknown dale_axis {self.dale_axis!r}; allowed: {', '.join(DALE_AXES)}")
        if not self.dale and (self.dale_method, self.dale_axis) != ("abs", "pre"):
            raise ValueError(
                f"network: dale_method={self.dale_method!r} / dale_axis={self.dale_axis!r} need dale=True "
                "(Dale's law is off)"
            )
        if self.dale and self.dale_axis == "post" and self.dale_method != "project":
            raise ValueError(
                "network: dale_axis='post' (sign per receiving unit) needs dale_method='project'; the 'abs' method "
                "fixes the sign per presynaptic unit only"
            )
        if self.dale and not 1 <= self.n_exc <= self.units - 1:
            raise ValueError(
                f"network: dale needs at least one excitatory and one inhibitory unit; e_fraction={self.e_fraction} "
                f"of units={self.units} gives {self.n_exc} excitatory"
            )
        if not cells.is_rate_rnn(self.cell):
            for name, bad in (
                ("dale", self.dale),
                ("nonneg_input", self.nonneg_input),
                ("sparsity", self.sparsity > 0),
                ("alpha", self.alpha != 1.0),
                ("activation", self.activation != "tanh"),
            ):
                if bad:
                    raise ValueError(
                        f"network: {name}={getattr(self, name)!r} applies to the rate RNN only, not to "
                        f"cell={cells.label(self.cell)} (a Flax cell: alpha 1, tanh, no Dale, no sparsity)"
                    )

    @property
    def n_exc(self) -> int:
        """Number of excitatory units under Dale's law: round(e_fraction · N), halves rounded up."""
        return int(math.floor(self.e_fraction * self.units + 0.5))

    @property
    def rate_rnn(self) -> bool:
        """Whether the cell is jaxrnn's rate RNN (its fast path, Dale, sparsity) rather than a Flax cell."""
        return cells.is_rate_rnn(self.cell)

    @property
    def projected(self) -> bool:
        """Whether the trainer projects the parameters after every update (`project_constraints`)."""
        return self.rate_rnn and ((self.dale and self.dale_method == "project") or self.nonneg_input)


def glorot_uniform(key: Array, shape: tuple[int, int]) -> Array:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), Keras' default kernel initializer."""
    limit = math.sqrt(6.0 / sum(shape))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_recurrent(key: Array, units: int, init: str | Array, gain: float | Array = 1.0) -> Array:
    """W_rec (N, N): `orthogonal` (gain · a Haar-random orthogonal matrix) or `normal` (std gain / sqrt(N)).

    `init` is a name of `INITS` or a traced index into it (one law per member inside one program: both laws are
    drawn from `key` and one is selected, so each law's matrix is the one its name gives)."""
    if isinstance(init, str) and init not in INITS:
        raise ValueError(f"network: unknown init {init!r}; allowed: {', '.join(INITS)}")
    orthogonal = lambda: gain * jax.nn.initializers.orthogonal()(key, (units, units), jnp.float32)  # noqa: E731
    normal = lambda: gain / math.sqrt(units) * jax.random.normal(key, (units, units), jnp.float32)  # noqa: E731
    if isinstance(init, str):
        return orthogonal() if init == "orthogonal" else normal()
    return jnp.where(init == INITS.index("normal"), normal(), orthogonal())


def n_excitatory(e_fraction: float | Array, units: int) -> int | Array:
    """round(e_fraction · N), halves rounded up: the number of excitatory units (traced when `e_fraction` is)."""
    if isinstance(e_fraction, (int, float)):
        return int(math.floor(e_fraction * units + 0.5))
    return jnp.floor(e_fraction * units + 0.5).astype(jnp.int32)


def dale_signs(cfg: NetConfig, n_exc: int | Array | None = None) -> Array:
    """(N,) unit signs: +1 for the first `n_exc` (default `cfg.n_exc`) excitatory units, -1 for the rest; all +1
    without Dale. They sign the columns of W_rec (dale_axis "pre") or its rows ("post"). With Dale's law the
    parameters carry them as the fixed, untrained parameter `signs` (`init_params`), so one ensemble may mix E
    fractions."""
    if not cfg.dale:
        return jnp.ones(cfg.units, jnp.float32)
    n_exc = cfg.n_exc if n_exc is None else n_exc
    return jnp.where(jnp.arange(cfg.units) < n_exc, 1.0, -1.0).astype(jnp.float32)


def unit_signs(params: Params, cfg: NetConfig) -> Array:
    """The unit signs of a network (or a member stack: (..., N)): its `signs` parameter (gradient stopped), else
    `dale_signs(cfg)`."""
    if "signs" in params:
        return jax.lax.stop_gradient(params["signs"])
    return dale_signs(cfg)


def sparsity_mask(key: Array, cfg: NetConfig) -> Array:
    """(N, N) fixed 0/1 mask with exactly round(sparsity · N²) zeros at uniformly random positions."""
    n = cfg.units * cfg.units
    removed = int(math.floor(cfg.sparsity * n + 0.5))
    rank = jnp.argsort(jax.random.uniform(key, (n,)))
    return (rank >= removed).astype(jnp.float32).reshape(cfg.units, cfg.units)


def _sign_grid(signs: Array, cfg: NetConfig) -> Array:
    """The sign each entry of W_rec must have, broadcastable against W_rec ((..., N, N), leading member axes as
    `signs` (..., N) has them): the unit signs along the columns (dale_axis "pre") or along the rows ("post")."""
    return signs[..., None, :] if cfg.dale_axis == "pre" else signs[..., :, None]


def project_constraints(params: Params, cfg: NetConfig) -> Params:
    """The projection of the "project" Dale method and of `nonneg_input` (the module docstring): every entry of W_rec
    whose sign disagrees with its unit's (`_sign_grid`) is set to 0, and with `nonneg_input` every negative W_in
    entry. The others, and every other parameter, are left exactly as they are.

    The original code applied it as Keras weight constraints after every update (katejarne/Excitatory-inhibitory,
    `binary_and_recurrent_exi_ini_01.py`); the trainer applies it after every optimizer update and `init_params` once
    to the initial matrix. One network or a stack with leading member axes; idempotent; identity when nothing is
    projected (`cfg.projected` False).
    """
    if not cfg.projected:
        return params
    out = dict(params)
    if cfg.dale and cfg.dale_method == "project":
        W = params["W_rec"]
        out["W_rec"] = jnp.where(W * _sign_grid(unit_signs(params, cfg), cfg) >= 0, W, jnp.zeros_like(W))
    if cfg.nonneg_input:
        out["W_in"] = jnp.maximum(params["W_in"], 0.0)
    return out


def recurrent_weights(params: Params, cfg: NetConfig) -> Array:
    """The effective recurrent matrix W_eff (the module docstring): |W_rec| · D ⊙ M with Dale's "abs" method,
    W_rec ⊙ M without Dale or with the "project" method (the trainer keeps W_rec projected).

    Every consumer of the recurrent weights (forward passes, spectra, lesions, fixed points) goes through here.
    Works on one network (N, N) or a stack with leading member axes (E, N, N). Idempotent.
    """
    if not cfg.rate_rnn:
        raise ValueError(f"network: cell={cells.label(cfg.cell)} has no single recurrent matrix W_rec (rate RNN only)")
    W = params["W_rec"]
    if cfg.dale and cfg.dale_method == "abs":
        W = jnp.abs(W) * _sign_grid(unit_signs(params, cfg), cfg)
    if "rec_mask" in params:
        W = W * jax.lax.stop_gradient(params["rec_mask"])
    return W


def effective_params(params: Params, cfg: NetConfig) -> Params:
    """`params` with `W_rec` replaced by the effective matrix (one network or a member stack); for the analyses.

    The forward pass gives the same outputs on these (the map is idempotent). Flax cells are returned unchanged.
    """
    if not cfg.rate_rnn or not ((cfg.dale and cfg.dale_method == "abs") or "rec_mask" in params):
        return params
    return {**params, "W_rec": recurrent_weights(params, cfg)}


def require_rate_rnn(cfg: NetConfig, what: str) -> None:
    """Raise a readable ValueError when an analysis that needs the rate RNN's W_rec meets a Flax cell."""
    if not cfg.rate_rnn:
        raise ValueError(f"{what} needs the rate RNN's recurrent matrix W_rec; cell={cells.label(cfg.cell)} has none")


def init_dale_recurrent(
    key: Array,
    cfg: NetConfig,
    gain: float | Array = 1.0,
    mask: Array | None = None,
    init: str | Array | None = None,
    n_exc: int | Array | None = None,
) -> Array:
    """Balanced excitatory-inhibitory recurrent init: the EFFECTIVE matrix (N, N), column signs `dale_signs(cfg,
    n_exc)`. `init` (a name of `INITS` or a traced index, default `cfg.init`) and `n_exc` (default `cfg.n_exc`) may
    be traced, one per member.

    Magnitudes: |X| of a standard normal matrix (`normal`) or of √N · Q, Q Haar-orthogonal (`orthogonal`; a matrix
    whose columns have fixed signs and whose rows sum to zero is singular, so no Dale matrix is orthogonal: here
    the init differs from `normal` only in the law of the magnitudes). Masked entries are zero. Balance: in every
    row the inhibitory weights are scaled so that they cancel the excitatory ones exactly (row sums 0: the E and I
    inputs to every unit cancel for uniform presynaptic rates; Song, Yang & Wang 2016, Methods; this removes the
    outlier eigenvalue of the mean connectivity, Rajan & Abbott 2006, Phys Rev Lett 97:188104). Scale: the matrix
    is divided by its bulk radius estimate r = sqrt(Σ_ij (W_ij - m_c(j))² / N), m_c(j) the mean weight of column
    j's class (E or I), and multiplied by `gain`: by the circular law for E/I column variances (Rajan & Abbott 2006)
    the eigenvalues then fill a disc of radius ≈ gain (its edge fluctuates by O(N^-1/2); there is no outlier).
    """
    N = cfg.units
    n_exc = cfg.n_exc if n_exc is None else n_exc
    # |√N · Q| or |X|: `init_recurrent` with gain √N (orthogonal) and √N (normal: std 1)
    mag = jnp.abs(init_recurrent(key, N, cfg.init if init is None else init, math.sqrt(N)))
    if mask is not None:
        mag = mag * mask
    exc = dale_signs(cfg, n_exc) > 0  # (N,) columns
    e_in = jnp.sum(jnp.where(exc[None, :], mag, 0.0), axis=1)  # (N,) total excitatory input weight per row
    i_in = jnp.sum(jnp.where(exc[None, :], 0.0, mag), axis=1)
    scale_i = jnp.where(i_in > 0, e_in / jnp.where(i_in > 0, i_in, 1.0), 1.0)  # rows without I weights stay as drawn
    W = jnp.where(exc[None, :], mag, -mag * scale_i[:, None])
    m_e = jnp.sum(jnp.where(exc[None, :], W, 0.0)) / (N * n_exc)
    m_i = jnp.sum(jnp.where(exc[None, :], 0.0, W)) / (N * (N - n_exc))
    centred = W - jnp.where(exc, m_e, m_i)[None, :]
    radius = jnp.sqrt(jnp.sum(centred**2) / N)
    return gain * W / radius


def init_params(
    key: Array,
    cfg: NetConfig,
    gain: float | Array = 1.0,
    init: str | Array | None = None,
    n_exc: int | Array | None = None,
) -> Params:
    """Initial parameters of one network (Keras defaults: Glorot-uniform kernels, zero biases).

    `gain`, the recurrent init law `init` (a name of `INITS` or a traced index into it; default `cfg.init`) and, under
    Dale's law, the number of excitatory units `n_exc` (default `cfg.n_exc`) may be traced: one per member of an
    ensemble. With Dale's law the unit signs are the fixed parameter `signs` (N,) (never trained: its gradient is
    stopped, so Adam leaves it as it is).

    With a sparsity mask the recurrent init is multiplied by 1/sqrt(1 - sparsity), so the bulk radius stays ≈ gain;
    with Dale's "abs" method the free `W_rec` holds the magnitudes of `init_dale_recurrent` (its effective matrix is
    that); with the "project" method (and `nonneg_input`) the plain init, masked, is projected once
    (`project_constraints`: about half of W_rec's entries, and of W_in's, become 0). The mask is drawn from its own
    key (`fold_in(key, 1)`), so the other parameters do not depend on it.
    """
    init = cfg.init if init is None else init
    if not cfg.rate_rnn:  # a Flax cell initialises itself; `gain` and `init` are the rate RNN's
        return cells.init_params(key, cfg)
    key_in, key_rec, key_out = jax.random.split(key, 3)
    mask = sparsity_mask(jax.random.fold_in(key, 1), cfg) if cfg.sparsity > 0 else None
    if cfg.dale and cfg.dale_method == "abs":
        W_rec = jnp.abs(init_dale_recurrent(key_rec, cfg, gain, mask, init, n_exc))
    else:
        W_rec = init_recurrent(key_rec, cfg.units, init, gain)
        if mask is not None:
            W_rec = W_rec * mask / math.sqrt(1.0 - cfg.sparsity)
    params = {
        "W_in": glorot_uniform(key_in, (cfg.units, cfg.n_in)),
        "W_rec": W_rec,
        "W_out": glorot_uniform(key_out, (cfg.n_out, cfg.units)),
        "b_out": jnp.zeros(cfg.n_out, jnp.float32),
    }
    if cfg.bias:
        params["b"] = jnp.zeros(cfg.units, jnp.float32)
    if cfg.train_h0:
        params["h0"] = jnp.zeros(cfg.units, jnp.float32)
    if mask is not None:
        params["rec_mask"] = mask
    if cfg.dale:
        params["signs"] = dale_signs(cfg, n_exc)
    return project_constraints(params, cfg)


# ----------------------------------------------------------------------------------------------------------------
# The step: written once, for jnp and numpy arrays. `forward`, the training fast path (`_rnn`) and the fixed-point
# maps (`jaxrnn.analysis.fixed_points`, float32 jnp and float64 numpy) call these.


def euler_step(h, r, alpha: float):
    """The leaky update toward the rates r = act(W_rec h + W_in x + b): h + a · (r − h), exactly r at a = 1.

    Args:
        h: (..., N) states. r: (..., N) rates at those states. alpha: a, a Python number (static).
    """
    return r if alpha == 1.0 else h + alpha * (r - h)


def act_and_slope(name: str, z: Array) -> tuple[Array, Array]:
    """act(z) and act'(z), elementwise, for an activation of ACTIVATIONS (jnp)."""
    act = ACTIVATIONS[name]
    r, slope = jax.jvp(act, (z,), (jnp.ones_like(z),))
    return r, slope


def _lead(a, ndim: int):
    """`a` with leading axes of size 1 up to `ndim` axes (explicit, so jnp's rank promotion check passes)."""
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


def step_jacobian(slope, W, alpha: float):
    """dF/dh of the step F(h) = euler_step(h, act(W h + u), a): (1 − a) I + a · diag(act'(W h + u)) W.

    jnp or numpy arrays (the result is numpy for numpy inputs, in their dtype).

    Args:
        slope: (..., N) act'(W h + u) at the states h; leading axes (states, members) are batched over.
        W: (N, N) or (..., N, N) the effective recurrent matrix. alpha: a, a Python number (static).
    Returns:
        (..., N, N).
    """
    J = slope[..., :, None] * _lead(W, slope.ndim + 1)
    if alpha == 1.0:
        return J
    xp = np if isinstance(J, np.ndarray) else jnp
    return (1.0 - alpha) * _lead(xp.eye(J.shape[-1], dtype=J.dtype), J.ndim) + alpha * J


def step_vjp(dh, slope, W, alpha: float):
    """The step's transposed Jacobian applied to state cotangents dh (..., N) (row vectors: dh @ `step_jacobian`).

    Args:
        dh: (..., N) cotangent of h_t. slope: (..., N) act'(z_t). W: (N, N). alpha: a, a Python number (static).
    Returns:
        dz (..., N), the cotangent of the pre-activation z_t = W h_{t-1} + u_t (a · act'(z_t) · dh), and dh_prev
        (..., N), that of h_{t-1}: dz @ W + (1 − a) · dh.
    """
    dz = dh * slope if alpha == 1.0 else alpha * dh * slope
    dh_prev = dz @ W
    return dz, (dh_prev if alpha == 1.0 else dh_prev + (1.0 - alpha) * dh)


def forward(params: Params, inputs: Array, cfg: NetConfig, noise: Array | None = None) -> tuple[Array, Array]:
    """Run one network on one trial.

    Args:
        params: one network's parameters.
        inputs: (T, n_in).
        cfg: the network's static config.
        noise: (T, N) added to the pre-activation drive at every step (recurrent noise; rate RNN only), or None.
    Returns:
        outputs (T, n_out) and hidden states (T, N) (a Flax cell's: its outputs, `jaxrnn.cells.forward`).
    """
    if not cfg.rate_rnn:
        return cells.forward(params, inputs, cfg)
    act = ACTIVATIONS[cfg.activation]
    a = cfg.alpha
    drive = inputs @ params["W_in"].T  # the input projection of every step at once, (T, N)
    if "b" in params:
        drive = drive + params["b"][None, :]
    if noise is not None:
        drive = drive + noise
    W_rec = recurrent_weights(params, cfg)

    def step(h, u):
        h = euler_step(h, act(W_rec @ h + u), a)
        return h, h

    h0 = params["h0"] if "h0" in params else jnp.zeros(W_rec.shape[0], drive.dtype)
    _, states = jax.lax.scan(step, h0, drive)
    outputs = states @ params["W_out"].T + params["b_out"][None, :]
    return outputs, states


def outputs(params: Params, inputs: Array, cfg: NetConfig, noise: Array | None = None) -> Array:
    """The readout (T, n_out) of one network on one trial."""
    return forward(params, inputs, cfg, noise)[0]


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
# step. Nothing of size (T, B, N) is copied or transposed outside the loops. Same math as `forward`, tested against
# autodiff through it (tests/test_fast.py). What it costs and which variants measured slower: results/benchmarks/.

#: Below this many inputs (outputs), the per-step input projection (readout) is a sum of broadcast products.
_SMALL_K = 4


def _unroll(unroll: int | None) -> int:
    """Time steps per iteration of the two scans of `_rnn` (`lax.scan(unroll=...)`): `unroll`, or when None 1 on CPU
    and 8 on accelerators, where every iteration costs kernel launches (measured: results/benchmarks/accelerator.md)."""
    if unroll is None:
        return 1 if jax.default_backend() == "cpu" else 8
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
        raise ValueError(f"network: unroll must be a positive integer or None, got {unroll!r}")
    return unroll


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


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _rnn(alpha: float, activation: str, unroll: int, W_rec, W_in, b, W_out, b_out, h0, x, noise):
    """Readout z_t (T, B, n_out) and states h_t (T, B, N) of a batch of trials x (T, B, n_in) from h0 (B, N);
    `noise` (T, B, N) is added to the pre-activation at every step, or None. `unroll`: time steps per iteration of
    both scans."""
    return _rnn_fwd(alpha, activation, unroll, W_rec, W_in, b, W_out, b_out, h0, x, noise)[0]


def _rnn_fwd(alpha, activation, unroll, W_rec, W_in, b, W_out, b_out, h0, x, noise):
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
            r, slope = act_and_slope(activation, z)
            slopes = jax.lax.dynamic_update_index_in_dim(slopes, slope, t, 0)
        h = euler_step(h, r, alpha)
        states = jax.lax.dynamic_update_index_in_dim(states, h, t, 0)
        return (h, states, slopes), _proj(h, W_out) + b_out[None, :]

    # The states are written into a buffer carried through the loop rather than stacked as the scan's output: under
    # vmap a carry keeps the member axis first, a stacked output puts time first and the backward pass (a residual,
    # member axis first) would copy all of it once per update.
    zeros = jnp.zeros((T, B, N), x.dtype)
    init = (h0, zeros, None if tanh_shortcut else zeros)
    (_, states, slopes), outs = jax.lax.scan(step, init, jnp.arange(T), unroll=unroll)
    return (outs, states), (W_rec, W_in, W_out, h0, x, states, slopes)


def _rnn_bwd(alpha, activation, unroll, residuals, cotangents):
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
        dz, dh_prev = step_vjp(dh, slope, W_rec, alpha)
        dW_rec = dW_rec + dz.T @ h_prev
        dW_in = dW_in + _outer_sum(dz, x[t])
        db = db + jnp.sum(dz, 0)
        return (dh_prev, dW_rec, dW_in, db, dW_out), None

    zeros = jax.tree.map(jnp.zeros_like, (states[0], W_rec, W_in, W_rec[0], W_out))
    (dh0, dW_rec, dW_in, db, dW_out), _ = jax.lax.scan(step, zeros, jnp.arange(T), reverse=True, unroll=unroll)
    return dW_rec, dW_in, db, dW_out, jnp.sum(g_outs, (0, 1)), dh0, None, None


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def forward_batch(
    params: Params, inputs: Array, cfg: NetConfig, noise: Array | None = None, *, unroll: int | None = None
) -> tuple[Array, Array]:
    """Run one network on a batch of trials, with the fast hand-written backward pass (for training).

    Same math as `forward` vmapped over trials; gradients match autodiff through `forward` (tests/test_fast.py).
    Works under `vmap` over members.

    Args:
        params: one network's parameters.
        inputs: (B, T, n_in).
        cfg: the network's static config.
        noise: (B, T, N) recurrent noise added to the pre-activation (as in `forward`), or None.
        unroll: time steps per iteration of the forward and backward scans (static; a speed setting);
            None: 1 on CPU, 8 on accelerators. Ignored by Flax cells.
    Returns:
        outputs (B, T, n_out) and hidden states (B, T, N).
    """
    if not cfg.rate_rnn:  # Flax cells: autodiff through `forward`
        return jax.vmap(lambda x: cells.forward(params, x, cfg))(inputs)
    B, N = inputs.shape[0], params["W_rec"].shape[0]
    b = params["b"] if "b" in params else jnp.zeros(N, inputs.dtype)
    h0 = jnp.broadcast_to(params["h0"][None, :], (B, N)) if "h0" in params else jnp.zeros((B, N), inputs.dtype)
    x = jnp.swapaxes(inputs, 0, 1)  # time-major (T, B, n_in): the scans step over the leading axis
    noise = None if noise is None else jnp.swapaxes(noise, 0, 1)
    W_rec = recurrent_weights(params, cfg)  # |.|·D and the mask by autodiff, outside the custom VJP
    outs, states = _rnn(
        float(cfg.alpha),
        cfg.activation,
        _unroll(unroll),
        W_rec,
        params["W_in"],
        b,
        params["W_out"],
        params["b_out"],
        h0,
        x,
        noise,
    )
    return jnp.swapaxes(outs, 0, 1), jnp.swapaxes(states, 0, 1)
