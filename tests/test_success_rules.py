"""The success rule of every task against synthetic outputs a scientist would pass or reject by eye.

Per task, on 64 held-out trials of its preset (targets without target noise): the noise-free target, the target plus
small noise and the target smoothed over 5 steps must score >= 90% of trials correct; an all-zero output, a constant
midpoint, a slow response (the target through a first-order lag that crosses the midpoint late), a response later
than its window, the inverted target, the target plus a large oscillation and a response that starts before the cue
must score < 90%. The old rules (the mean output of a window on the target's side of the levels' midpoint; the old
peak/correlation rules of the shaped tasks) accepted at least one of those for every task: the last test checks that
the rejections come from the new rule, so loosening it back makes this file fail.

The original networks' scores under the rule are tested in tests/test_keras.py (each succeeds on its preset).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.tasks import TASKS, make_task
from jaxrnn.training.evaluate import DISTANCE_RATIO, heldout_trials

N_TRIALS = 64
DECISIONS = ("perceptual_dm", "context_dm", "dms", "pwm")


def _task(name):
    task = make_task(name)
    return task.replace(target_noise=0.0) if name == "time_reproduction" else task


@functools.cache
def _trials(name):
    return jax.tree.map(np.asarray, heldout_trials(_task(name), N_TRIALS))


@functools.cache
def _judge(name):
    task = _task(name)
    return jax.jit(jax.vmap(lambda tr, y: task.correct(tr, y)))


def _accuracy(name, outputs) -> float:
    return float(np.mean(_judge(name)(_trials(name), jnp.asarray(outputs, jnp.float32))))


def _scale(name) -> float:
    """The size of the target's excursion: the level range, or the bump's height / the oscillation's amplitude."""
    task = _task(name)
    if name == "time_reproduction":
        return float(task._bump_template.max()) - task.baseline
    if name == "oscillation":
        return float(np.abs(task.target_template).max())
    return task.levels[1] - task.levels[0]


def _shift(y, steps):
    """y (B, T, n) delayed by `steps` (> 0, the first value held) or advanced (< 0, the last value held)."""
    if steps > 0:
        return np.concatenate([np.repeat(y[:, :1], steps, 1), y[:, :-steps]], 1)
    return np.concatenate([y[:, -steps:], np.repeat(y[:, -1:], -steps, 1)], 1)


def _lag(y, k):
    """First-order lag of time constant k steps: out_t = out_{t-1} + (y_t - out_{t-1}) / k."""
    out = np.empty_like(y)
    out[:, 0] = y[:, 0]
    for t in range(1, y.shape[1]):
        out[:, t] = out[:, t - 1] + (y[:, t] - out[:, t - 1]) / k
    return out


def _smooth(y, k=5):
    """Causal moving average over k steps."""
    c = np.cumsum(np.concatenate([np.repeat(y[:, :1], k, 1), y], 1), 1)
    return (c[:, k:] - c[:, :-k]) / k


#: per task: time constant of the slow response, delay of the late one, advance of the early one (steps)
TIMING = {
    **dict.fromkeys(("and", "or", "xor", "not", "and_or_context"), (60, 50, 70)),
    "flipflop": (60, 50, 80),
    "flipflop3": (60, 50, 80),
    **dict.fromkeys(DECISIONS, (300, 150, None)),
    "time_reproduction": (60, 30, 80),
    "oscillation": (60, 50, 150),
}


def _cases(name):
    """{case: outputs (B, T, n_out)} of the synthetic outputs that must pass and those that must fail."""
    task, tr = _task(name), _trials(name)
    y = tr.targets
    t = np.arange(task.T)[None, :, None]
    scale = _scale(name)
    slow, late, early = TIMING[name]
    if early is None:  # decisions: the answer from t = 0, through fixation, stimulus and delay
        early = task.response_start
    rng = np.random.default_rng(0)
    shaped = name in ("time_reproduction", "oscillation")
    if shaped:
        base = task.baseline if name == "time_reproduction" else 0.0
        inverted = 2 * base - y
        before = y + 0.6 * _shift(y - base, -early)  # the response, and a smaller copy of it before the cue
    else:
        inverted = sum(task.levels) - y
        before = _shift(y, -early)
    mid = (y.max() + y.min()) / 2
    passing = {
        "target": y,
        "target + small noise": y + 0.05 * scale * rng.normal(size=y.shape),
        "target smoothed over 5 steps": _smooth(y),
    }
    failing = {
        "all zero": np.zeros_like(y),
        "constant midpoint": np.full_like(y, mid),
        "slow response": _lag(y, slow),
        "late response": _shift(y, late),
        "inverted": inverted,
        "large oscillation": y + 0.5 * scale * np.sin(2 * np.pi * t / 25),
        "response before the cue": before,
    }
    return passing, failing


@pytest.mark.parametrize("name", list(TASKS))
def test_rule_passes_what_a_scientist_passes(name):
    passing, _ = _cases(name)
    for case, out in passing.items():
        assert _accuracy(name, out) >= 0.9, f"{name}: {case} scored {_accuracy(name, out):.2f}"


@pytest.mark.parametrize("name", list(TASKS))
def test_rule_rejects_what_a_scientist_rejects(name):
    _, failing = _cases(name)
    for case, out in failing.items():
        assert _accuracy(name, out) < 0.9, f"{name}: {case} scored {_accuracy(name, out):.2f}"


def _old_rule(name, tr, y) -> np.ndarray:
    """The rules before this one, per trial: mean output of every response window on the target's side of the
    levels' midpoint; time reproduction: peak time and height only (no-pulse: within 0.3 of the baseline);
    oscillation: correlation and amplitude in the window only (no-pulse: within 0.3 of 0)."""
    task = _task(name)
    if name == "time_reproduction":
        peak_t = task.pulse_start + task.pulse_width + task.delay + int(np.argmax(task._bump_template))
        peak = float(task._bump_template.max())
        hit = (np.abs(y[:, :, 0].argmax(1) - peak_t) <= 10) & (np.abs(y[:, :, 0].max(1) / peak - 1) <= 0.5)
        quiet = np.abs(y[:, :, 0] - task.baseline).max(1) <= 0.3
        return np.where(tr.condition == 1, hit, quiet)
    if name == "oscillation":
        w = slice(task.start, task.stop)
        s = task.target_template[w]
        corr = np.array([np.corrcoef(v[w, 0], s)[0, 1] for v in y])
        ratio = y[:, w, 0].std(1) / s.std()
        return np.where(tr.condition == 1, (corr >= 0.8) & (np.abs(ratio - 1) <= 0.3), np.abs(y).max((1, 2)) <= 0.3)
    mid = sum(task.levels) / 2
    ok = np.ones(len(y), bool)
    for k in range(1, task.max_windows + 1):
        w = tr.response == k
        n = w.sum(1)
        mean_out = (w * y).sum(1) / np.maximum(n, 1)
        mean_tgt = (w * tr.targets).sum(1) / np.maximum(n, 1)
        ok &= np.all((np.sign(mean_out - mid) == np.sign(mean_tgt - mid)) | (n == 0), axis=1)
    return ok


@pytest.mark.parametrize("name", list(TASKS))
def test_the_old_rule_accepted_some_of_the_rejected(name):
    """The rejections above are the new rule's: the old one passed at least one of those outputs."""
    tr = _trials(name)
    _, failing = _cases(name)
    accepted = [case for case, out in failing.items() if np.mean(_old_rule(name, tr, out)) >= 0.9]
    assert accepted, f"{name}: the old rule rejected every failing case too"


def test_member_success_needs_a_distance_well_below_the_zero_output():
    """A member succeeds only when it is finite, >= 90% of its trials are correct and its mean distance is at most
    DISTANCE_RATIO x the zero output's on the same trials."""
    from jaxrnn.training.evaluate import TOLERANCES, _evaluation

    E, K = 4, len(TOLERANCES)
    zero = np.full(E, 2.0)
    dist = np.array([0.5, 0.99, 1.01, 0.5]) * DISTANCE_RATIO * zero  # half the limit, just below, just above
    acc = np.array([1.0, 1.0, 1.0, 0.85])
    metrics = (np.zeros(E), dist, np.zeros(E), np.zeros((E, 2)), acc, np.ones(E, bool), zero, np.ones((E, K)))
    ev = _evaluation(metrics, 0.9)
    assert ev.success.tolist() == [True, True, False, False]
    assert ev.success_at_tolerance(0.9)[:, 0].tolist() == [True, True, False, True]
