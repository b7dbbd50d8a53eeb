"""Evaluation of every member of an ensemble on held-out trials (DESIGN.md §4).

Per member: MSE (masked, over steps and outputs), the original's **distance** (per-trial L2 norm
||target − output|| over the whole trial, averaged over trials) and the distance an all-zero output scores on the same
trials (`zero_distance`, the scale of the distance), distance per task condition, accuracy (fraction of trials the
task's `correct` accepts), the accuracy at every tolerance of `TOLERANCES` (the sensitivity of the rule), finiteness,
and **success**: finite, accuracy >= `success_at` and distance <= `DISTANCE_RATIO` × zero_distance (a member whose
outputs are no closer to the target than half the zero output's has not learned the task, whatever its trials score).
All members see the same held-out trial keys; with per-member task params (`task_params`, member axis first) each
member's trials are sampled from those keys with its own params and judged with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn.cells.network import NetConfig, Params, outputs
from jaxrnn.tasks import Task, Trial

EVAL_STREAM = 0x5EED  # held-out trials: key(seed) folded with this, disjoint from member keys' use

#: version of the success rule; a stored evaluation of another version is evaluated again (1: the mean output of a
#: response window on the target's side of the levels' midpoint; 2: the tasks' band and shape rules, and the distance)
RULE = 2
#: the task `tolerance` values at which every evaluation also scores the trials (the success tables' sensitivity view)
TOLERANCES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
#: a member succeeds only when its mean distance is at most this fraction of the all-zero output's
DISTANCE_RATIO = 0.5


class Evaluation(NamedTuple):
    """Metrics with the member axis first."""

    mse: np.ndarray  # (E,)
    distance: np.ndarray  # (E,)
    distance_sem: np.ndarray  # (E,) standard error of the mean of the per-trial distances
    distance_by_condition: np.ndarray  # (E, C), NaN where a condition did not occur
    accuracy: np.ndarray  # (E,)
    finite: np.ndarray  # (E,)
    success: np.ndarray  # (E,)
    zero_distance: np.ndarray  # (E,) the mean distance of an all-zero output on the member's trials
    accuracy_by_tolerance: np.ndarray  # (E, len(TOLERANCES)) accuracy with the task's tolerance set to each value

    def success_at_tolerance(self, success_at: float = 0.9) -> np.ndarray:
        """(E, len(TOLERANCES)) bool: success with the task's tolerance set to each of `TOLERANCES`."""
        learned = self.finite & (self.distance <= DISTANCE_RATIO * self.zero_distance)
        return learned[:, None] & (self.accuracy_by_tolerance >= success_at)


def heldout_keys(n_trials: int = 512, seed: int = 0) -> Array:
    """The (n_trials,) keys of the held-out trials: `key(seed)` folded with `EVAL_STREAM`, then split."""
    return jax.random.split(jax.random.fold_in(jax.random.key(seed), EVAL_STREAM), n_trials)


def heldout_trials(task: Task, n_trials: int = 512, seed: int = 0, task_params: dict | None = None) -> Trial:
    """`n_trials` held-out trials (trial axis first), the same for every member.

    With `task_params` (traced task params, every value with the member axis first, e.g. `task.member_params`),
    member i's trials are sampled from the same keys with ITS params: every array gets a leading member axis,
    (E, n_trials, ...).
    """
    keys = heldout_keys(n_trials, seed)
    if task_params is None:
        return _program(_sampler, task)(keys, task.default_params())
    _check_members(task_params, None)
    return _program(_member_sampler, task)(keys, task_params)


_PROGRAMS: dict[tuple, Callable] = {}


def _program(build: Callable, task: Task, *static) -> Callable:
    """`build(task, *static)`, built once per builder, task `static_key` and static arguments: every traced task
    param is an argument of the programs below, so tasks that differ only in those share them."""
    key = (build, task.static_key(), *static)
    if key not in _PROGRAMS:
        if len(_PROGRAMS) >= 64:
            del _PROGRAMS[next(iter(_PROGRAMS))]  # the oldest
        _PROGRAMS[key] = build(task, *static)
    return _PROGRAMS[key]


def _sampler(task: Task) -> Callable:
    """jit of (keys (K,), params) -> trials (K, ...)."""
    return jax.jit(jax.vmap(task.sample, in_axes=(0, None)))


def _member_sampler(task: Task) -> Callable:
    """jit of (keys (K,), params (E, ...)) -> trials (E, K, ...)."""
    return jax.jit(jax.vmap(jax.vmap(task.sample, in_axes=(0, None)), in_axes=(None, 0)))


def _check_members(task_params: dict, n_members: int | None) -> None:
    """ValueError unless every value of `task_params` has the same leading (member) axis, of `n_members` if given."""
    sizes = {k: (np.shape(v)[0] if np.ndim(v) else None) for k, v in task_params.items()}
    wanted = {n_members} if n_members is not None else set(sizes.values())
    if not sizes or len(wanted) != 1 or set(sizes.values()) != wanted or None in wanted:
        raise ValueError(
            f"evaluate: task_params needs every value with the member axis first ({n_members or 'E'} members), "
            f"got leading sizes {sizes}"
        )


def _member_metrics(params: Params, trials: Trial, task: Task, net: NetConfig, task_params):
    out = jax.vmap(outputs, in_axes=(None, 0, None))(params, trials.inputs, net)  # (K, T, n_out)
    err = out - trials.targets
    mse = jnp.sum(trials.mask * err**2) / jnp.sum(trials.mask)
    dist = jnp.sqrt(jnp.sum(err**2, axis=(1, 2)))  # (K,)
    onehot = jax.nn.one_hot(trials.condition, len(task.conditions))  # (K, C)
    n_c = onehot.sum(0)
    by_cond = jnp.where(n_c > 0, (onehot * dist[:, None]).sum(0) / jnp.maximum(n_c, 1), jnp.nan)
    correct = jax.vmap(task.correct, in_axes=(0, 0, None))(trials, out, task_params)
    finite = jnp.all(jnp.isfinite(out)) & jnp.all(
        jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)])
    )
    sem = jnp.std(dist) / jnp.sqrt(dist.shape[0])
    zero = jnp.mean(jnp.sqrt(jnp.sum(trials.targets**2, axis=(1, 2))))

    def accuracy_at(tol):
        tp = {**task_params, "tolerance": tol}
        return jnp.mean(jax.vmap(task.correct, in_axes=(0, 0, None))(trials, out, tp))

    by_tol = jax.vmap(accuracy_at)(jnp.asarray(TOLERANCES, jnp.float32))
    return mse, jnp.mean(dist), sem, by_cond, jnp.mean(correct), finite, zero, by_tol


def _metrics_on_shared(task: Task, net: NetConfig, batch: int) -> Callable:
    """jit of (params (E, ...), task params, trials (K, ...)) -> every member's metrics on the same trials (lax.map
    over members, `batch` at a time)."""
    return jax.jit(lambda p, tp, tr: jax.lax.map(lambda q: _member_metrics(q, tr, task, net, tp), p, batch_size=batch))


def _metrics_on_trials(task: Task, net: NetConfig, batch: int) -> Callable:
    """jit of (params, task params (E, ...), trials (E, K, ...)) -> metrics, each member on its own trials."""
    one = lambda a: _member_metrics(a[0], a[2], task, net, a[1])  # noqa: E731
    return jax.jit(lambda p, tp, tr: jax.lax.map(one, (p, tp, tr), batch_size=batch))


def _metrics_on_keys(task: Task, net: NetConfig, batch: int) -> Callable:
    """jit of (params, task params (E, ...), keys (K,)) -> metrics, each member's trials sampled inside the map with
    its params (only `batch` members' trials in memory at once)."""
    sample = jax.vmap(task.sample, in_axes=(0, None))

    def member_on_keys(keys):
        return lambda a: _member_metrics(a[0], sample(keys, a[1]), task, net, a[1])

    return jax.jit(lambda p, tp, keys: jax.lax.map(member_on_keys(keys), (p, tp), batch_size=batch))


def _evaluation(metrics, success_at: float) -> Evaluation:
    mse, dist, sem, by_cond, acc, finite, zero, by_tol = jax.tree.map(np.asarray, metrics)
    success = finite & (acc >= success_at) & (dist <= DISTANCE_RATIO * zero)
    return Evaluation(mse, dist, sem, by_cond, acc, finite, success, zero, by_tol)


def _n_members(params: Params) -> int:
    return int(np.shape(jax.tree.leaves(params)[0])[0])


def evaluate_on(
    task: Task,
    net: NetConfig,
    params: Params,
    trials: Trial,
    success_at: float = 0.9,
    batch: int = 16,
    task_params: dict | None = None,
) -> Evaluation:
    """Evaluate every member of `params` (member axis first) on the given trials.

    Args:
        trials: (K, ...) trials shared by every member, or, with `task_params`, (E, K, ...) each member's own (as
            `heldout_trials(task, ..., task_params=task_params)` returns).
        task_params: traced task params with the member axis first; `correct` judges member i's trials with its
            params. None: every member has the task's own.
    """
    if task_params is None:
        metrics = _program(_metrics_on_shared, task, net, batch)(params, task.default_params(), trials)
        return _evaluation(metrics, success_at)
    _check_members(task_params, _n_members(params))
    return _evaluation(_program(_metrics_on_trials, task, net, batch)(params, task_params, trials), success_at)


def evaluate(
    task: Task,
    net: NetConfig,
    params: Params,
    n_trials: int = 512,
    seed: int = 0,
    success_at: float = 0.9,
    task_params: dict | None = None,
    batch: int = 16,
) -> Evaluation:
    """Evaluate every member of `params` (member axis first) on `n_trials` held-out trials of `task`.

    Args:
        task_params: traced task params (`Task.default_params()` names), every value with the member axis first
            (e.g. `task.member_params(...)`): every member is evaluated on the same held-out trial keys, its trials
            sampled with ITS params and judged by `correct` with them (sampled inside the per-member map, so only
            `batch` members' trials are in memory at once). None: every member has the task's own params.
    """
    if task_params is None:
        return evaluate_on(task, net, params, heldout_trials(task, n_trials, seed), success_at, batch)
    _check_members(task_params, _n_members(params))
    keys = heldout_keys(n_trials, seed)
    return _evaluation(_program(_metrics_on_keys, task, net, batch)(params, task_params, keys), success_at)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of the difference of two binomial proportions k1/n1 - k2/n2 (Newcombe's hybrid score method,
    from the two Wilson intervals; Newcombe 1998, Stat. Med. 17:873, method 10)."""
    p1, p2 = k1 / max(n1, 1), k2 / max(n2, 1)
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, float(lo)), min(1.0, float(hi)))
