"""Training: one pure function per member, `jit ∘ vmap`-ed over the ensemble.

`make_train(config)` returns `(init, run_epochs)`:

    state = init(member_key, hparams)                       # one member's TrainState
    state, losses = run_epochs(state, member_key, hparams, n)  # n more epochs, losses (n,)

and `train_member(member_key, hparams, config) -> (params_init, params_final, history)` composes them for a whole
run. The ensemble runner `fit` compiles `jit(vmap(run_epochs))` once per `program_key` (shapes and static switches;
every number is an argument) and calls it from a host loop that only chunks the run (members in chunks that fit
memory, epochs in calls between progress updates and checkpoints).

Protocols (DESIGN.md §3):
  * `paper`: a fixed training set of `n_train` trial keys per member (or one shared set when `shared_data`),
    regenerated on device when used, shuffled every epoch, `n_train // batch_size` updates per epoch (the
    remainder of a shuffle is left out), and per-member early stopping once the epoch's mean training loss falls
    below the task's threshold (its updates are masked).
  * `online`: fresh trials at every update.
Both train with Keras' Adam (`keras_adam`: the original's optimizer, with Keras' legacy decay lr / (1 + decay · t)
and its placement of eps), optionally after global-norm gradient clipping. With a projected constraint (Dale's
"project" method, `nonneg_input`; `jaxrnn.cells.network.project_constraints`) the parameters are projected after every
update, so every stored, checkpointed or analysed parameter set satisfies it.
A member whose loss or gradient becomes non-finite is frozen at its last finite parameters and marked diverged.

Regularisation during training only (evaluation is noise-free): recurrent noise `rec_noise` (added to the
pre-activation drive) and input noise `in_noise` (added to the inputs, on top of any noise the task itself puts in its
trials), both Gaussian with std sqrt(2 / alpha) · sigma at every step, the Euler discretisation of white noise of
strength sigma in tau dx/dt = -x + ... (Song, Yang & Wang 2016, PLoS Comput Biol, Eqs. 1-2); L2 penalties
`l2_weights` · (Σ W_in² + Σ W_eff² + Σ W_out², sums of squared entries; Flax cells: every cell parameter with two or
more axes, and W_out) and
`l2_rates` · mean over trials, steps and units of h² (Song et al. 2016). The gradient is that of MSE + penalties; the
loss reported per epoch, and compared with the early-stop threshold, is the task MSE alone (with the training noise),
so thresholds mean the same with and without penalties.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from jaxrnn import cells
from jaxrnn.cells.network import (
    NetConfig,
    Params,
    forward,
    forward_batch,
    init_params,
    n_excitatory,
    project_constraints,
    recurrent_weights,
)
from jaxrnn.spec import INITS, NUMBERS, check_number
from jaxrnn.tasks import Task, Trial
from jaxrnn.training import budget

PROTOCOLS = ("paper", "online")
NOISE_STREAM = 0x4015E  # training-noise keys: fold_in(member_key, NOISE_STREAM), apart from the rest


class Hparams(NamedTuple):
    """The numbers of a run that may differ between the members of ONE compiled program (DESIGN.md §2).

    Each field is a scalar (the same for every member) or a sequence with one value per member (member axis first);
    `None` takes the TrainConfig's value. Shapes (N, T, batch, channel counts) are not here: they split programs.

    Attributes:
        lr: Adam learning rate. gain: recurrent-init gain. init: recurrent init law, "orthogonal" | "normal".
        rec_noise, in_noise: training noise sigma. l2_weights, l2_rates: L2 coefficients. threshold: early-stop loss.
        e_fraction: the fraction of excitatory units under Dale's law (the unit signs are data, `signs`).
        task: traced task parameters, {name: value or per-member values} (`Task.traced_fields()`; e.g. delay, noise).
    """

    lr: float | Sequence[float] | Array = 1e-4
    gain: float | Sequence[float] | Array = 1.0
    init: str | Sequence[str] | None = None
    rec_noise: float | Sequence[float] | Array | None = None
    in_noise: float | Sequence[float] | Array | None = None
    l2_weights: float | Sequence[float] | Array | None = None
    l2_rates: float | Sequence[float] | Array | None = None
    threshold: float | Sequence[float] | Array | None = None
    e_fraction: float | Sequence[float] | Array | None = None
    task: Mapping[str, Any] | None = None


assert tuple(NUMBERS) == tuple(f for f in Hparams._fields if f != "task")  # one per-member number per Hparams field


class Resolved(NamedTuple):
    """Every member's numbers as arrays with the member axis first (or one member's scalars under vmap): what the
    compiled program takes (`resolve` builds it on the host from Hparams and the TrainConfig).

    Attributes:
        init: index into `jaxrnn.cells.network.INITS`. n_exc: excitatory units under Dale's law (round(e_fraction · N)).
        task: the task's traced params (`Task.member_params`); the others as in Hparams.
    """

    lr: Array
    gain: Array
    init: Array
    rec_noise: Array
    in_noise: Array
    l2_weights: Array
    l2_rates: Array
    threshold: Array
    n_exc: Array
    task: dict


class Switches(NamedTuple):
    """Which optional terms the compiled program computes (static: off costs nothing): training noise and penalties,
    on when any member has a non-zero value."""

    rec_noise: bool = False
    in_noise: bool = False
    l2_weights: bool = False
    l2_rates: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything static about a training run. `None` fields take the task's paper preset (`task.preset`).

    Attributes:
        task: the task (its parameters included).
        units: N. init: "orthogonal" | "normal". bias: RNN bias. alpha: dt / tau. activation: see network.
        protocol: "paper" | "online". epochs, batch_size, n_train: sizes (an epoch is n_train // batch_size
            updates in both protocols).
        decay: Keras legacy lr decay. b1, b2, eps: Adam (`keras_adam`). clip_norm: global-norm gradient clipping
            before Adam (None = off; Keras 2's `clipnorm`, which clipped the global norm; Keras 3's `global_clipnorm`).
        threshold: early-stop loss threshold (0 = never stop early).
        shared_data: all members train on one set of trials (the original) rather than their own.
        data_seed: the seed of that shared set.
        cell: "rnn" (the rate RNN), or a Flax cell: "gru", "lstm", "MODULE:ATTR" or a `flax.linen.RNNCellBase`
            instance (`jaxrnn.cells`; `units` None takes the cell's own size; an instance must be storable in
            config.json, `jaxrnn.cells.cell_to_json`). dale, e_fraction, sparsity, train_h0, dale_method, dale_axis,
            nonneg_input: network constraints (see `jaxrnn.cells.network.NetConfig`).
        rec_noise, in_noise: std sigma of the recurrent and input noise during training (per step sqrt(2/alpha)·sigma;
            module docstring). l2_weights, l2_rates: coefficients of the L2 penalties (module docstring).
    """

    task: Task
    units: int | None = None
    init: str = "orthogonal"
    bias: bool | None = None
    alpha: float = 1.0
    activation: str = "tanh"
    protocol: str = "paper"
    epochs: int = 20
    batch_size: int | None = None
    n_train: int | None = None
    decay: float = 1e-4
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip_norm: float | None = None
    threshold: float | None = None
    shared_data: bool = False
    data_seed: int = 0
    cell: Any = "rnn"
    dale: bool = False
    e_fraction: float = 0.8
    sparsity: float = 0.0
    train_h0: bool = False
    rec_noise: float = 0.0
    in_noise: float = 0.0
    l2_weights: float = 0.0
    l2_rates: float = 0.0
    dale_method: str = "abs"
    dale_axis: str = "pre"
    nonneg_input: bool = False

    def __post_init__(self):
        if not cells.is_rate_rnn(self.cell):
            cells.cell_to_json(self.cell)  # storable in config.json (one-line ValueError)
            if self.units is None:  # a cell instance has its size; a factory and "gru" / "lstm" take the preset's
                object.__setattr__(self, "units", cells.own_units(self.cell, self.task.n_in))
        for name, value in dataclasses.asdict(self.task.preset).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("units", "epochs", "batch_size", "n_train"):
            if getattr(self, name) < 1:
                raise ValueError(f"train: {name} must be a positive integer, got {getattr(self, name)}")
        if self.n_train < self.batch_size:
            raise ValueError(f"train: n_train={self.n_train} must be >= batch_size={self.batch_size}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"train: unknown protocol {self.protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ValueError(f"train: clip_norm must be > 0 or None, got {self.clip_norm}")
        for name in TRACED_CONFIG_FIELDS:  # the per-member numbers, as defined in NUMBERS
            check_number(name, getattr(self, name), "train")
        if self.rec_noise > 0 and not self.rate_rnn:
            raise ValueError(f"train: rec_noise applies to the rate RNN only, not to cell={cells.label(self.cell)}")
        _ = self.net  # validates the network fields

    @property
    def net(self) -> NetConfig:
        """The network's static description: the task's input and output sizes and this config's fields of the same
        names as NetConfig's."""
        shared = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(NetConfig) if f.name not in ("n_in", "n_out")
        }
        return NetConfig(n_in=self.task.n_in, n_out=self.task.n_out, **shared)

    @property
    def rate_rnn(self) -> bool:
        """Whether the cell is jaxrnn's rate RNN rather than a Flax cell (`NetConfig.rate_rnn`)."""
        return cells.is_rate_rnn(self.cell)

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train // self.batch_size


#: NetConfig's fields that come from the task, not from a TrainConfig field of the same name.
_TASK_SIZES = ("n_in", "n_out")

#: The TrainConfig fields that `resolve` hands to the compiled program as traced per-member numbers (those also
#: in Hparams): changing them through the config reuses a compiled program.
TRACED_CONFIG_FIELDS = tuple(f for f in NUMBERS if f in {g.name for g in dataclasses.fields(TrainConfig)})


#: The float numbers `resolve` passes as they are (e_fraction becomes the excitatory count n_exc, init an index).
_NUMBERS = tuple(n for n, spec in NUMBERS.items() if spec.kind is float and n != "e_fraction")


def _per_member(name: str, value, E: int, dtype) -> np.ndarray:
    """A scalar broadcast to (E,), or a sequence of E values, as a host array."""
    arr = np.asarray(value, dtype)
    if arr.ndim == 0:
        return np.full(E, arr, dtype)
    if arr.shape != (E,):
        raise ValueError(f"hparams: {name} has {arr.shape[0] if arr.ndim == 1 else arr.shape} values for {E} members")
    return arr


def resolve(config: TrainConfig, hparams: Hparams, E: int) -> Resolved:
    """The per-member numbers of E members (host numpy, member axis first), validated before anything compiles.

    Fields of `hparams` that are None take `config`'s value; scalars are broadcast.

    Raises:
        ValueError: a sequence of the wrong length, an unknown init, a value out of range (naming the field), or task
            params the task refuses (`Task.member_params`).
    """
    values = {}
    for name in _NUMBERS:
        v = getattr(hparams, name)
        raw = _per_member(name, getattr(config, name) if v is None else v, E, object)
        check_number(name, raw)
        values[name] = raw.astype(np.float32)
    if not config.rate_rnn and np.any(values["rec_noise"] > 0):
        raise ValueError(f"train: rec_noise applies to the rate RNN only, not to cell={cells.label(config.cell)}")
    laws = _per_member("init", config.init if hparams.init is None else hparams.init, E, object)
    check_number("init", laws)
    if not config.rate_rnn and (np.any(values["gain"] != 1.0) or any(v != "orthogonal" for v in laws)):
        raise ValueError(
            f"hparams: gain and init (the recurrent init law) apply to the rate RNN only; "
            f"cell={cells.label(config.cell)} initialises itself with its own initializers"
        )
    fractions = _per_member("e_fraction", config.e_fraction if hparams.e_fraction is None else hparams.e_fraction, E,
                            object)  # fmt: skip
    check_number("e_fraction", fractions)
    fractions = fractions.astype(np.float64)
    n_exc = np.array([n_excitatory(float(f), config.units) for f in fractions], np.int32)
    if config.dale and np.any((n_exc < 1) | (n_exc > config.units - 1)):
        raise ValueError(
            f"hparams: dale needs at least one excitatory and one inhibitory unit; e_fraction in "
            f"[{fractions.min():g}, {fractions.max():g}] of units={config.units} gives {n_exc.min()}-{n_exc.max()}"
        )
    task = config.task.member_params([_task_values(config.task, hparams.task, i, E) for i in range(E)])
    return Resolved(
        init=np.array([INITS.index(v) for v in laws], np.int32),
        n_exc=n_exc,
        task={k: np.asarray(v) for k, v in task.items()},
        **values,
    )


def _task_values(task: Task, values: Mapping | None, i: int, E: int) -> dict:
    """Member i's task values from {name: one value, or E values (a list or an array, member axis first)}. A field
    whose value is a tuple (e.g. coherences) is per member only as a sequence of E sequences."""
    defaults = type(task).parameters()
    out = {}
    for k, v in (values or {}).items():
        seq = isinstance(v, (list, tuple, np.ndarray)) and len(v) == E
        if isinstance(defaults.get(k), tuple):
            seq = seq and len(v) > 0 and isinstance(v[0], (list, tuple, np.ndarray))
        if seq:
            x = np.asarray(v[i])
            out[k] = x.item() if x.ndim == 0 else tuple(x.tolist())
        else:
            out[k] = tuple(v) if isinstance(v, (list, np.ndarray)) else v
    return out


def switches(resolved: Resolved) -> Switches:
    """The static switches of an ensemble's numbers (host arrays)."""
    return Switches(*(bool(np.any(np.asarray(getattr(resolved, f)) > 0)) for f in Switches._fields))


class TrainState(NamedTuple):
    """One member's training state (a leading member axis in an ensemble)."""

    params: Params
    opt_state: optax.OptState
    epoch: Array  # int32, epochs done
    stop_epoch: Array  # int32, epoch after which the member stopped early (0 = still training)
    diverged: Array  # bool, loss or gradient became non-finite (parameters frozen)


class History(NamedTuple):
    loss: Array  # (epochs,) mean training loss of each epoch
    stop_epoch: Array  # () int32
    diverged: Array  # () bool


def masked_mse(outputs: Array, trial: Trial) -> Array:
    """Mean squared error over the steps and outputs where the mask is on (a batch of trials or one)."""
    return jnp.sum(trial.mask * (outputs - trial.targets) ** 2) / jnp.maximum(jnp.sum(trial.mask), 1.0)


class KerasAdamState(NamedTuple):
    """State of `keras_adam`: the update count and the two moment estimates (pytrees like the parameters)."""

    count: Array  # int32, updates done
    mu: optax.Updates
    nu: optax.Updates


def keras_adam(
    learning_rate: float | Array,
    b1: float | Array = 0.9,
    b2: float | Array = 0.999,
    eps: float | Array = 1e-8,
    decay: float | Array = 0.0,
) -> optax.GradientTransformation:
    """Keras' Adam (Keras 2.0.6-2.3.1, the original studies' versions, and Keras 3), with Keras 2's legacy decay.

    At update t = 1, 2, ... (count = t - 1 updates done before it):

        lr_t    = learning_rate / (1 + decay · (t - 1))
        alpha_t = lr_t · sqrt(1 - b2^t) / (1 - b1^t)
        m ← b1 m + (1 - b1) g,    v ← b2 v + (1 - b2) g²,    θ ← θ - alpha_t · m / (sqrt(v) + eps)

    The bias correction is folded into the step size, so against `optax.adam` (m̂ / (sqrt(v̂) + eps), v̂ = v / (1 -
    b2^t)) eps acts as eps / sqrt(1 - b2^t): 32x larger at the first update, the same once b2^t is small. optax's
    `eps_root` (inside the square root) is a different change. Keras 3 writes the decay as
    `InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay)`; its default eps is 1e-7, Keras 2's 1e-8.

    Every hyperparameter may be a traced value (e.g. one learning rate per member under `vmap`) and the factory takes
    numbers only, so `optax.inject_hyperparams(keras_adam)(learning_rate=..., decay=...)` keeps them in the state.

    Returns:
        an optax GradientTransformation whose updates are to be added to the parameters (`optax.apply_updates`).
    """

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return KerasAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update_fn(updates, state, params=None):
        del params
        t = (state.count + 1).astype(jnp.float32)
        lr = learning_rate / (1.0 + decay * state.count.astype(jnp.float32))
        alpha = lr * jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        mu = jax.tree.map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + (1.0 - b2) * g * g, state.nu, updates)
        steps = jax.tree.map(lambda m, v: (-alpha * m / (jnp.sqrt(v) + eps)).astype(m.dtype), mu, nu)
        return steps, KerasAdamState(count=optax.safe_int32_increment(state.count), mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(config: TrainConfig, lr: float | Array) -> optax.GradientTransformation:
    """The optimizer of every protocol: Keras' Adam (`keras_adam`) with the config's b1, b2, eps and legacy decay,
    after global-norm gradient clipping when `clip_norm` is set. `lr` may be traced (one per member)."""
    adam = keras_adam(lr, b1=config.b1, b2=config.b2, eps=config.eps, decay=config.decay)
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adam) if config.clip_norm else adam


def _keys(member_key: Array, config: TrainConfig) -> tuple[Array, Array, Array]:
    """(key_init, key_data, key_shuffle) of a member; the data key is shared when `shared_data`."""
    key_init, key_data, key_shuffle = jax.random.split(member_key, 3)
    if config.shared_data:
        key_data = jax.random.key(config.data_seed)
    return key_init, key_data, key_shuffle


def epoch_trial_keys(member_key: Array, config: TrainConfig, epoch: int | Array) -> Array:
    """The (steps_per_epoch, batch_size) trial keys a member trains on in epoch `epoch` (0-based), batch by batch:
    `jax.vmap(config.task.sample)(keys[s])` is update s's batch. Paper protocol: the member's fixed training set in
    that epoch's shuffled order; online: fresh keys."""
    _, key_data, key_shuffle = _keys(member_key, config)
    S, B = config.steps_per_epoch, config.batch_size
    if config.protocol == "online":
        return jax.random.split(jax.random.fold_in(key_data, epoch), S * B).reshape(S, B)
    train_keys = jax.random.split(key_data, config.n_train)
    order = jax.random.permutation(jax.random.fold_in(key_shuffle, epoch), config.n_train)
    return train_keys[order[: S * B].reshape(S, B)]


def penalties(params: Params, states: Array, config: TrainConfig, hp: Resolved, on: Switches) -> Array:
    """The L2 terms added to the training loss (module docstring); 0 when both are switched off.

    Args:
        params: one network's parameters. states: its hidden states on the batch (B, T, N). hp: its numbers.
    """
    total = jnp.zeros((), jnp.float32)
    if on.l2_weights:
        if config.rate_rnn:
            mats = (params["W_in"], recurrent_weights(params, config.net), params["W_out"])
        else:
            mats = cells.weight_matrices(params)
        total = total + hp.l2_weights * sum(jnp.sum(w**2) for w in mats)
    if on.l2_rates:
        total = total + hp.l2_rates * jnp.mean(states**2)
    return total


def make_loss(config: TrainConfig, on: Switches, *, fast_backward: bool = True, unroll: int | None = None) -> Callable:
    """`loss_fn(params, trials, noise_key, hp) -> (MSE + penalties, MSE)` of one network on a batch of trials (trial
    axis first), with the member's training noise (`hp`) drawn from `noise_key` where switched on.

    `fast_backward`: the rate RNN's hand-written backward pass (`network.forward_batch`); False: autodiff through
    `network.forward` vmapped over the batch, the reference it is tested against. `unroll`: time steps per iteration
    of the fast path's loops (`network.forward_batch`; None: 1 on CPU, 8 on accelerators)."""
    net = config.net

    def loss_fn(params, trials, noise_key, hp):
        inputs, rec = trials.inputs, None
        key_in, key_rec = jax.random.split(noise_key)
        scale = math.sqrt(2.0 / config.alpha)
        if on.in_noise:
            inputs = inputs + scale * hp.in_noise * jax.random.normal(key_in, inputs.shape, inputs.dtype)
        if on.rec_noise:
            shape = (*inputs.shape[:2], config.units)
            rec = scale * hp.rec_noise * jax.random.normal(key_rec, shape, inputs.dtype)
        if fast_backward:
            out, states = forward_batch(params, inputs, net, rec, unroll=unroll)
        else:
            noise_axis = None if rec is None else 0
            out, states = jax.vmap(forward, in_axes=(None, 0, None, noise_axis))(params, inputs, net, rec)
        mse = masked_mse(out, trials)
        return mse + penalties(params, states, config, hp, on), mse

    return loss_fn


def make_train(
    config: TrainConfig, on: Switches | None = None, *, fast_backward: bool = True, unroll: int | None = None
) -> tuple[Callable, Callable]:
    """Build the pure per-member functions `init(member_key, hp)` and `run_epochs(state, member_key, hp, n_epochs)`
    for `config`; `hp` is one member's `Resolved` numbers (traced), `on` the static switches (default: those of
    `config`'s own values), `fast_backward` and `unroll` as in `make_loss`."""
    task, net = config.task, config.net
    S = config.steps_per_epoch
    on = on or switches(resolve(config, Hparams(), 1))
    loss_fn = make_loss(config, on, fast_backward=fast_backward, unroll=unroll)

    def init(member_key, hp):
        key_init, _, _ = _keys(member_key, config)
        params = init_params(key_init, net, hp.gain, hp.init, hp.n_exc if net.dale else None)
        opt_state = make_optimizer(config, hp.lr).init(params)
        return TrainState(params, opt_state, jnp.int32(0), jnp.int32(0), jnp.bool_(False))

    def update(carry, xs, optimizer, hp):
        params, opt_state, active = carry
        keys, noise_key = xs
        trials = jax.vmap(task.sample, in_axes=(0, None))(keys, hp.task)
        (_, loss), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, trials, noise_key, hp)
        finite = jnp.isfinite(loss) & jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        updates, new_opt = optimizer.update(grads, opt_state, params)
        new_params = project_constraints(optax.apply_updates(params, updates), net)  # identity unless projected
        keep = active & finite
        params, opt_state = jax.tree.map(lambda n, o: jnp.where(keep, n, o), (new_params, new_opt), (params, opt_state))
        return (params, opt_state, active & finite), loss

    def epoch(state, member_key, hp):
        optimizer = make_optimizer(config, hp.lr)
        active = (state.stop_epoch == 0) & ~state.diverged
        keys = epoch_trial_keys(member_key, config, state.epoch)
        noise_keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(member_key, NOISE_STREAM), state.epoch), S)
        (params, opt_state, still), losses = jax.lax.scan(
            functools.partial(update, optimizer=optimizer, hp=hp),
            (state.params, state.opt_state, active),
            (keys, noise_keys),
        )
        diverged = state.diverged | (active & ~still)
        loss = jnp.mean(losses)
        stop_now = active & ~diverged & (loss < hp.threshold)
        stop_epoch = jnp.where(stop_now, state.epoch + 1, state.stop_epoch)
        return TrainState(params, opt_state, state.epoch + 1, stop_epoch, diverged), loss

    def run_epochs(state, member_key, hp, n_epochs: int):
        def body(s, _):
            return epoch(s, member_key, hp)

        return jax.lax.scan(body, state, None, length=n_epochs)

    return init, run_epochs


def train_member(member_key: Array, hparams: Hparams | Resolved, config: TrainConfig) -> tuple[Params, Params, History]:
    """A whole training run of one member: (params_init, params_final, history). vmap it over member keys with
    per-member `Resolved` numbers (`resolve`); an `Hparams` of scalars is resolved here."""
    hp = hparams if isinstance(hparams, Resolved) else member(resolve(config, hparams, 1), 0)
    init, run_epochs = make_train(config, switches(jax.tree.map(np.asarray, hp)) if isinstance(hparams, Hparams)
                                  else None)  # fmt: skip
    state0 = init(member_key, hp)
    state, losses = run_epochs(state0, member_key, hp, config.epochs)
    return state0.params, state.params, History(losses, state.stop_epoch, state.diverged)


# ----------------------------------------------------------------------------------------------------------------
# The ensemble: member keys, chunks of members, devices.


def member_keys(seed: int, members: Array | np.ndarray) -> Array:
    """Key of each member id: `fold_in(key(seed), i)`, so member i is the same network whatever the ensemble."""
    root = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.asarray(members, jnp.uint32))


def program_key(config: TrainConfig) -> tuple:
    """What splits compiled training programs: the static TrainConfig fields (shapes, protocol, optimizer constants,
    network structure) and the task's `static_key` (its class, static fields and the shapes of its traced params).
    The traced numbers (`TRACED_CONFIG_FIELDS`, the task's traced params) are left out."""
    static = tuple(
        (f.name, getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in TRACED_CONFIG_FIELDS and f.name != "task"
    )
    return (*static, config.task.static_key())


_PROGRAMS: dict[tuple, tuple[Callable, Callable]] = {}
_MAX_PROGRAMS = 32


def compiled(
    config: TrainConfig,
    n_epochs: int,
    on: Switches | None = None,
    *,
    fast_backward: bool = True,
    unroll: int | None = None,
) -> tuple[Callable, Callable]:
    """`init` mapped over the members (`_map_members`) and `vmap(run_epochs)`, both jitted, for `config`, built once
    per `program_key(config)`, epoch count, switches `on` (default: those of `config`'s own values), `fast_backward`
    and `unroll` (`make_loss`). Every member's numbers (`Resolved`) are arguments: one program serves any mix of
    learning rates, init laws, noise levels, thresholds, E fractions and task params, whether they come from Hparams
    or from the config."""
    on = on or switches(resolve(config, Hparams(), 1))
    key = (program_key(config), n_epochs, on, fast_backward, unroll)
    if key not in _PROGRAMS:
        if len(_PROGRAMS) >= _MAX_PROGRAMS:
            del _PROGRAMS[next(iter(_PROGRAMS))]  # the oldest
        init, run_epochs = make_train(config, on, fast_backward=fast_backward, unroll=unroll)
        _PROGRAMS[key] = (
            jax.jit(_map_members(init)),
            jax.jit(jax.vmap(functools.partial(run_epochs, n_epochs=n_epochs))),
        )
    return _PROGRAMS[key]


def _map_members(init: Callable) -> Callable:
    """`init` over the members one after another (`lax.map`), not batched (`vmap`): a Flax cell's init holds several
    independent QR factorizations (the orthogonal recurrent kernels: 3 in a GRU, 4 in an LSTM). Batched over the
    members, jaxlib's CPU QR kernel splits its batch over XLA's intra-op thread pool and waits for the parts; XLA runs
    the independent QRs at once on that pool, so on a 2-core machine both pool threads wait for parts that no thread
    is left to run, forever (measured: a GRU ensemble's init program hung in 3 of 3 processes within 40 calls, every
    thread idle, two in `QrFactorization` / `ParallelBatchMap`). One member at a time, each QR is a single matrix.
    Initialization is a small part of a run; the numbers are those of the batched init."""

    def init_members(keys, hp):
        return jax.lax.map(lambda a: init(*a), (keys, hp))

    return init_members


def clear_programs() -> None:
    """Forget every compiled training program (`compiled`)."""
    _PROGRAMS.clear()


def _member_sharding(n_members: int):
    """Shard the member axis over all local devices when it divides evenly, else leave placement to JAX."""
    devices = jax.local_devices()
    if len(devices) == 1 or n_members % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("member",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("member"))


#: Most members per CPU core in one compiled call: chunks of 16-32 members per core stay in cache (larger ones were
#: measured 30-50% slower per member, issue 8). Accelerators are limited by memory alone: the time per network falls
#: with E (H100, N = 50: 0.70 ms per network per epoch at E = 256, 0.58 ms at E = 2048).
_MAX_PER_CPU_DEVICE = 32


def _memory_budget(platform: str) -> int:
    """Bytes one compiled call may use: on CPU 1/4 of RAM, at most 8 GiB; on an accelerator half of its memory."""
    total = None
    try:
        if platform == "cpu":
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        else:
            total = (jax.local_devices()[0].memory_stats() or {}).get("bytes_limit")
    except (ValueError, OSError, AttributeError, RuntimeError):
        pass
    if not total:
        return 2 * 2**30
    return int(min(total / 4, 8 * 2**30)) if platform == "cpu" else int(total / 2)


def member_bytes(config: TrainConfig, fast_backward: bool = True) -> int:
    """Estimated device memory of one member in a compiled training call: the stored states of a batch (B·T·N
    floats) times 2 for the rate RNN's hand-written backward pass (measured on an H100: 1.2x), times 8 for its
    autodiff path (measured 5x), and for a Flax cell the copies `budget` measured for it (20 GRU, 26 LSTM), so
    that a default chunk always passes the budget check."""
    if config.rate_rnn:
        copies = 2 if fast_backward else 8
    else:
        copies = budget.backward_factor(config)
    return 4 * config.batch_size * config.task.T * config.units * copies


def default_chunk(config: TrainConfig, members: int, fast_backward: bool = True) -> int:
    """Members per compiled call, a multiple of the local device count.

    Within a memory budget (`member_bytes`, `_memory_budget`), and on CPU at most 32 members per core; the members
    are then spread evenly over as few calls as possible, so the last call is not mostly padding.
    """
    n_dev = jax.local_device_count()
    platform = jax.local_devices()[0].platform
    per_device = max(1, _memory_budget(platform) // member_bytes(config, fast_backward) // n_dev)
    if platform == "cpu":
        per_device = min(per_device, _MAX_PER_CPU_DEVICE)
    calls = max(1, math.ceil(members / (per_device * n_dev)))
    return int(math.ceil(math.ceil(members / calls) / n_dev) * n_dev)


class Ensemble(NamedTuple):
    """A trained ensemble; every array has the member axis first."""

    members: np.ndarray  # (E,) member ids
    params_init: Params
    params_final: Params
    loss: np.ndarray  # (E, epochs)
    stop_epoch: np.ndarray  # (E,)
    diverged: np.ndarray  # (E,)


def _pad(x: Array, size: int) -> Array:
    return jnp.concatenate([x, jnp.repeat(x[-1:], size - x.shape[0], 0)]) if x.shape[0] < size else x


def _to_host(tree):
    return jax.tree.map(np.array, tree)


def init_ensemble(config: TrainConfig, seed: int, members, hparams: Hparams = Hparams()) -> TrainState:
    """The initial TrainState of every member (host arrays, member axis first)."""
    members = np.asarray(members)
    hp = resolve(config, hparams, len(members))
    v_init, _ = compiled(config, 1, switches(hp))
    return _to_host(v_init(member_keys(seed, members), hp))


def fit(
    config: TrainConfig,
    seed: int,
    members,
    hparams: Hparams = Hparams(),
    *,
    state: TrainState | None = None,
    loss: np.ndarray | None = None,
    chunk_size: int | None = None,
    epochs_per_call: int | None = None,
    callback: Callable[[TrainState, np.ndarray], None] | None = None,
    fast_backward: bool = True,
    unroll: int | None = None,
) -> Ensemble:
    """Train an ensemble: members `members` (a count E for ids 0..E-1, or the ids) of root seed `seed`.

    In a multi-process run (after `jax.distributed.initialize`, e.g. one process per host) every process calls `fit`
    with the same arguments; each trains its contiguous share of the members (`np.array_split` by process index) on
    its own devices, and every process returns the whole ensemble, gathered, identical to a one-process run.

    Args:
        hparams: every member's numbers (`Hparams`: scalars for all, or one value per member, member axis first); a
            grid of them trains as one compiled program.
        state, loss: a TrainState and the loss array (E, epochs) to resume from (e.g. a checkpoint), all members.
        chunk_size: members per compiled call (default: `default_chunk`).
        epochs_per_call: epochs per compiled call (default: all remaining); progress and checkpoints happen between
            calls. Results do not depend on either.
        callback: called after every call with the host TrainState of this process's members and their loss so far.
        fast_backward, unroll: the rate RNN's hand-written backward pass (False: autodiff) and the time steps per
            iteration of its loops (`make_loss`). Results do not depend on `unroll`.
    Raises:
        ValueError: bad members or hparams; a run that does not fit in memory (`budget.check_train`, before
            anything is compiled).
    """
    budget.check_train(config, members, chunk_size=chunk_size, n_eval=0)  # memory, before anything is built
    members = np.arange(members) if isinstance(members, (int, np.integer)) else np.asarray(members)
    if members.ndim != 1 or len(members) == 0:
        raise ValueError("train: members must be a positive count or a non-empty sequence of member ids")
    hp = resolve(config, hparams, len(members))
    n_proc = jax.process_count()
    if n_proc == 1:
        return _fit_local(
            config, seed, members, hp, state, loss, chunk_size, epochs_per_call, callback, fast_backward, unroll
        )
    if len(members) < n_proc:
        raise ValueError(f"train: {len(members)} members cannot be split over {n_proc} processes")
    parts = np.array_split(np.arange(len(members)), n_proc)
    mine = parts[jax.process_index()]
    if state is not None:
        state, loss = jax.tree.map(lambda x: np.asarray(x)[mine], state), np.asarray(loss)[mine]
    hp = jax.tree.map(lambda x: x[mine], hp)
    local = _fit_local(
        config, seed, members[mine], hp, state, loss, chunk_size, epochs_per_call, callback, fast_backward, unroll
    )
    return _gather_processes(local, [len(p) for p in parts])


def _gather_processes(local: Ensemble, sizes: list[int]) -> Ensemble:
    """Every process's members, in member order, on every process (shares padded to one size for the collective)."""
    from jax.experimental import multihost_utils

    padded = jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[-1:], max(sizes) - len(x), 0)]), local)
    stacked = multihost_utils.process_allgather(padded, tiled=False)  # (processes, max(sizes), ...)
    return jax.tree.map(lambda x: np.concatenate([np.asarray(x)[i, :n] for i, n in enumerate(sizes)]), stacked)


def _fit_local(
    config, seed, members, hp, state, loss, chunk_size, epochs_per_call, callback, fast_backward, unroll
) -> Ensemble:
    """`fit` on this process's devices; `hp`: the members' `Resolved` numbers (host arrays)."""
    E = len(members)
    keys = member_keys(seed, members)
    on = switches(hp)
    v_init, _ = compiled(config, 1, on, fast_backward=fast_backward, unroll=unroll)
    state0 = _to_host(v_init(keys, hp))
    if state is None:
        state = state0
        loss = np.full((E, config.epochs), np.nan, np.float32)
    chunk = chunk_size or default_chunk(config, E, fast_backward)
    n_dev = jax.local_device_count()
    chunk = int(math.ceil(chunk / n_dev) * n_dev)
    sharding = _member_sharding(chunk)
    done = int(np.min(state.epoch)) if E else config.epochs
    step = epochs_per_call or (config.epochs - done) or 1
    while done < config.epochs:
        n = min(step, config.epochs - done)
        _, v_run = compiled(config, n, on, fast_backward=fast_backward, unroll=unroll)
        parts_state, parts_loss = [], []
        for lo in range(0, E, chunk):
            hi = min(lo + chunk, E)
            s, k, h = jax.tree.map(lambda x, lo=lo, hi=hi: _pad(jnp.asarray(x[lo:hi]), chunk), (state, keys, hp))
            if sharding is not None:
                s, k, h = jax.device_put((s, k, h), sharding)
            s, chunk_loss = v_run(s, k, h)
            n_real = hi - lo
            parts_state.append(jax.tree.map(lambda x, n=n_real: np.asarray(x)[:n], s))
            parts_loss.append(np.asarray(chunk_loss)[:n_real])
        state = jax.tree.map(lambda *xs: np.concatenate(xs), *parts_state)
        loss[:, done : done + n] = np.concatenate(parts_loss)
        done += n
        if callback is not None:
            callback(state, loss)
    return Ensemble(members, state0.params, state.params, loss, state.stop_epoch, state.diverged)


def member(tree, i: int):
    """Member i of a pytree whose arrays have the member axis first."""
    return jax.tree.map(lambda x: x[i], tree)
