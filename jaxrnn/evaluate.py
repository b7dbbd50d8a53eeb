"""Evaluation of every member of an ensemble on held-out trials (DESIGN.md §4).

Per member: MSE (masked, over steps and outputs), the original's **distance** (per-trial L2 norm
||target − output|| over the whole trial, averaged over trials), distance per task condition, accuracy (fraction
of trials the task's `correct` accepts), finiteness, and success (finite and accuracy >= `success_at`).
All members see the same held-out trials.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.network import NetConfig, Params, outputs
from jaxrnn.tasks import Task, Trial

EVAL_STREAM = 0x5EED  # held-out trials: key(seed) folded with this, disjoint from member keys' use


class Evaluation(NamedTuple):
    """Metrics with the member axis first."""

    mse: np.ndarray  # (E,)
    distance: np.ndarray  # (E,)
    distance_sem: np.ndarray  # (E,) standard error of the mean of the per-trial distances
    distance_by_condition: np.ndarray  # (E, C), NaN where a condition did not occur
    accuracy: np.ndarray  # (E,)
    finite: np.ndarray  # (E,)
    success: np.ndarray  # (E,)


def heldout_trials(task: Task, n_trials: int = 512, seed: int = 0) -> Trial:
    """`n_trials` held-out trials (trial axis first), the same for every member."""
    key = jax.random.fold_in(jax.random.key(seed), EVAL_STREAM)
    return _sampler(task)(jax.random.split(key, n_trials))


@functools.lru_cache(maxsize=64)
def _sampler(task: Task):
    """jit(vmap(task.sample)), built once per task."""
    return jax.jit(jax.vmap(task.sample))


def _member_metrics(params: Params, trials: Trial, task: Task, net: NetConfig):
    out = jax.vmap(outputs, in_axes=(None, 0, None))(params, trials.inputs, net)  # (K, T, n_out)
    err = out - trials.targets
    mse = jnp.sum(trials.mask * err**2) / jnp.sum(trials.mask)
    dist = jnp.sqrt(jnp.sum(err**2, axis=(1, 2)))  # (K,)
    onehot = jax.nn.one_hot(trials.condition, len(task.conditions))  # (K, C)
    n_c = onehot.sum(0)
    by_cond = jnp.where(n_c > 0, (onehot * dist[:, None]).sum(0) / jnp.maximum(n_c, 1), jnp.nan)
    correct = jax.vmap(task.correct)(trials, out)
    finite = jnp.all(jnp.isfinite(out)) & jnp.all(
        jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)])
    )
    sem = jnp.std(dist) / jnp.sqrt(dist.shape[0])
    return mse, jnp.mean(dist), sem, by_cond, jnp.mean(correct), finite


@functools.lru_cache(maxsize=64)
def _compiled_metrics(task: Task, net: NetConfig, batch: int):
    """The jitted metrics of every member (lax.map over members, `batch` at a time), built once per config."""
    return jax.jit(lambda p, tr: jax.lax.map(lambda q: _member_metrics(q, tr, task, net), p, batch_size=batch))


def evaluate_on(
    task: Task, net: NetConfig, params: Params, trials: Trial, success_at: float = 0.9, batch: int = 16
) -> Evaluation:
    """Evaluate every member of `params` (member axis first) on the given trials."""
    mse, dist, sem, by_cond, acc, finite = jax.tree.map(np.asarray, _compiled_metrics(task, net, batch)(params, trials))
    success = finite & (acc >= success_at)
    return Evaluation(mse, dist, sem, by_cond, acc, finite, success)


def evaluate(
    task: Task, net: NetConfig, params: Params, n_trials: int = 512, seed: int = 0, success_at: float = 0.9
) -> Evaluation:
    """Evaluate every member of `params` (member axis first) on `n_trials` held-out trials of `task`."""
    return evaluate_on(task, net, params, heldout_trials(task, n_trials, seed), success_at)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
