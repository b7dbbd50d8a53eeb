"""Decision-making and working-memory tasks (jaxrnn/tasks/cognitive.py) obey their rules on many random trials."""

import math

import jax
import numpy as np
import pytest

from jaxrnn.tasks import TASKS, make_task
from jaxrnn.training.evaluate import evaluate
from jaxrnn.training.train import Hparams, TrainConfig, fit

KEY = jax.random.key(0)
NAMES = ("perceptual_dm", "context_dm", "dms", "pwm", "and_or_context")

# Short timings (steps = ms) used by the rule tests and the CPU training tests; the defaults are the sourced ones.
SHORT = {
    "perceptual_dm": dict(T=250, fixation=20, stimulus=100, delay=50, grace=20),
    "context_dm": dict(T=250, fixation=20, stimulus=100, delay=50, grace=20),
    "dms": dict(T=250, fixation=20, sample_duration=40, delay=80, test=40, grace=20),
    "pwm": dict(T=250, fixation=20, stimulus=40, delay=80, grace=20),
    "and_or_context": dict(),
}


def batch(task, n=256, key=KEY):
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(task.sample))(jax.random.split(key, n)))


def judge(task, trials, outputs):
    return np.asarray(jax.jit(jax.vmap(task.correct))(trials, outputs))


def test_registered():
    for name in NAMES:
        assert name in TASKS and TASKS[name].name == name and TASKS[name].preset.threshold > 0


def test_defaults_are_the_sourced_timings():
    assert make_task("perceptual_dm").response_start == 100 + 750 + 300
    assert make_task("context_dm").response_start == 300 + 750 + 300
    assert make_task("dms").response_start == 300 + 500 + 1000 + 500
    assert make_task("pwm").response_start == 500 + 500 + 1000 + 500
    assert make_task("pwm").pairs == ((18, 10), (22, 14), (26, 18), (30, 22), (34, 26))
    assert make_task("perceptual_dm").coherences == (0.032, 0.064, 0.128, 0.256, 0.512)


def _check_decision_layout(task, tr):
    """Targets 0 before the decision period and ±1 in it; mask 1 / 0 (grace) / 5; judged window after grace."""
    r0, g = task.response_start, task.grace
    assert np.all(tr.targets[:, :r0] == 0)
    y = tr.targets[:, r0:, 0]
    assert np.all(np.abs(y) == 1) and np.all(y == y[:, :1])
    np.testing.assert_array_equal(tr.mask[:, :r0], 1.0)
    np.testing.assert_array_equal(tr.mask[:, r0 : r0 + g], 0.0)
    np.testing.assert_array_equal(tr.mask[:, r0 + g :], 5.0)
    np.testing.assert_array_equal(tr.response[:, :, 0], (np.arange(task.T) >= r0 + g)[None, :].repeat(len(y), 0))
    return y[:, 0]


def test_perceptual_dm_reports_the_sign_of_the_coherence():
    task = make_task("perceptual_dm", noise=0.0, **SHORT["perceptual_dm"])
    tr = batch(task, 400)
    answer = _check_decision_layout(task, tr)
    x = tr.inputs[:, :, 0]
    coherence = x[:, task.fixation]
    np.testing.assert_allclose(x[:, task.fixation : task.fixation + task.stimulus], coherence[:, None].repeat(100, 1))
    assert np.all(x[:, : task.fixation] == 0) and np.all(x[:, task.fixation + task.stimulus :] == 0)
    np.testing.assert_array_equal(answer, np.sign(coherence))
    # condition labels name the signed coherence, and every one of them is drawn
    labels = np.array([float(task.conditions[c][:-1]) / 100 for c in tr.condition])
    np.testing.assert_allclose(labels, coherence, rtol=1e-6)
    assert len(np.unique(tr.condition)) == 10
    assert abs(np.mean(answer > 0) - 0.5) < 0.1


def test_perceptual_dm_evidence_is_noisy_and_ideal_accuracy_matches():
    task = make_task("perceptual_dm", noise=0.5, **SHORT["perceptual_dm"])
    tr = batch(task, 4000)
    x = tr.inputs[:, :, 0]
    assert abs(x[:, : task.fixation].std() - 0.5) < 0.02  # noise at every step, not only in the stimulus
    evidence = x[:, task.fixation : task.fixation + task.stimulus].sum(1)
    observer = np.mean(np.sign(evidence) == tr.targets[:, -1, 0])
    assert abs(observer - task.ideal_accuracy()) < 0.02  # the ideal observer's accuracy is what the formula says
    assert 0.7 < task.ideal_accuracy() < 0.95  # this variant is genuinely noisy
    assert make_task("perceptual_dm").ideal_accuracy() > 0.99  # defaults leave the success criterion reachable


def test_perceptual_dm_zero_coherence_has_a_random_answer():
    task = make_task("perceptual_dm", noise=0.0, coherences=(0.0,), **SHORT["perceptual_dm"])
    tr = batch(task, 400)
    assert np.all(tr.inputs == 0)
    assert 0.4 < np.mean(tr.targets[:, -1, 0] > 0) < 0.6
    assert task.ideal_accuracy() == 0.5


def test_context_dm_reports_the_cued_stream():
    task = make_task("context_dm", noise=0.0, **SHORT["context_dm"])
    tr = batch(task, 400)
    answer = _check_decision_layout(task, tr)
    on = slice(task.fixation, task.fixation + task.stimulus)
    motion, colour = tr.inputs[:, task.fixation, 0], tr.inputs[:, task.fixation, 1]
    assert np.all(tr.inputs[:, :, :2].sum(2)[:, : task.fixation] == 0)
    np.testing.assert_allclose(tr.inputs[:, on, 0], motion[:, None].repeat(task.stimulus, 1))
    np.testing.assert_allclose(np.unique(np.round(np.abs(np.concatenate([motion, colour])), 4)), [0.05, 0.15, 0.5])
    cues = tr.inputs[:, :, 2:]
    assert np.all(cues == cues[:, :1])  # the cue is on for the whole trial
    context = np.argmax(cues[:, 0], 1)
    np.testing.assert_array_equal(cues[:, 0].sum(1), 1.0)
    np.testing.assert_array_equal(answer, np.where(context == 0, np.sign(motion), np.sign(colour)))
    incongruent = np.sign(motion) != np.sign(colour)
    assert incongruent.sum() > 100  # the context decides on these trials
    for ctx in (0, 1):
        sel = incongruent & (context == ctx)
        assert np.all(answer[sel] == np.sign([motion, colour][ctx][sel]))
    # condition labels: context, then the signs of motion and colour
    for c, m, k, ctx in zip(tr.condition, motion, colour, context, strict=True):
        assert task.conditions[c] == f"{('motion', 'colour')[ctx]}:m{'-+'[int(m > 0)]}c{'-+'[int(k > 0)]}"


@pytest.mark.parametrize("n_stimuli", [2, 3])
def test_dms_match_labels(n_stimuli):
    task = make_task("dms", noise=0.0, n_stimuli=n_stimuli, **SHORT["dms"])
    tr = batch(task, 600)
    answer = _check_decision_layout(task, tr)
    s0, ts = task.fixation, task.test_start
    sample, test = tr.inputs[:, s0], tr.inputs[:, ts]
    np.testing.assert_array_equal(sample.sum(1), 1.0)
    np.testing.assert_array_equal(test.sum(1), 1.0)
    np.testing.assert_array_equal(tr.inputs[:, s0 : s0 + task.sample_duration], sample[:, None].repeat(40, 1))
    assert np.all(tr.inputs[:, s0 + task.sample_duration : ts] == 0)  # nothing during the delay
    assert np.all(tr.inputs[:, task.response_start :] == 0)
    first, second = sample.argmax(1), test.argmax(1)
    np.testing.assert_array_equal(answer, np.where(first == second, 1.0, -1.0))
    assert abs(np.mean(answer > 0) - 0.5) < 0.07
    np.testing.assert_array_equal(tr.condition, first * n_stimuli + second)
    assert len(np.unique(tr.condition)) == n_stimuli**2
    if n_stimuli == 3:  # a non-match test is any other stimulus
        counts = np.bincount(second[first != second], minlength=3)
        assert counts.min() > 60


def test_pwm_reports_f1_greater_than_f2():
    task = make_task("pwm", noise=0.0, **SHORT["pwm"])
    tr = batch(task, 400)
    answer = _check_decision_layout(task, tr)
    x = tr.inputs[:, :, 0]
    level1, level2 = x[:, task.fixation], x[:, task.f2_start]
    assert np.all((level1 >= 0.5) & (level1 <= 1) & (level2 >= 0.5) & (level2 <= 1))
    f1, f2 = 10 + (2 * level1 - 1) * 24, 10 + (2 * level2 - 1) * 24  # invert the encoding (fmin 10, fmax 34 Hz)
    pairs = {tuple(p) for p in np.round(np.stack([f1, f2], 1), 4)}
    expected = {(a, b) for p in task.pairs for a, b in (p, p[::-1])}
    assert pairs == {(float(a), float(b)) for a, b in expected}  # all 10 ordered pairs, nothing else
    np.testing.assert_array_equal(answer, np.where(f1 > f2, 1.0, -1.0))
    assert np.all(x[:, task.fixation + task.stimulus : task.f2_start] == 0)
    for c, a, b in zip(tr.condition, f1, f2, strict=True):
        assert task.conditions[c] == f"{a:.0f}{'>' if a > b else '<'}{b:.0f}"


def test_and_or_context_truth_table():
    task = make_task("and_or_context", noise=0.0)
    tr = batch(task, 800)
    for c in range(8):
        sel = tr.condition == c
        assert sel.sum() > 60
        use_or, a, b = c >> 2, (c >> 1) & 1, c & 1
        np.testing.assert_allclose(tr.inputs[sel, 30:50, 0], a)
        np.testing.assert_allclose(tr.inputs[sel, 30:50, 1], b)
        np.testing.assert_allclose(tr.inputs[sel, 5:25, 2], use_or)
        assert np.all(tr.inputs[sel][:, 50:] == 0)
        value = (a | b) if use_or else (a & b)
        np.testing.assert_allclose(tr.targets[sel, 70:, 0], value)
        np.testing.assert_allclose(tr.targets[sel, :70, 0], 0.0)
        assert task.conditions[c] == f"{('and', 'or')[use_or]}{a}{b}"
    np.testing.assert_array_equal(tr.mask, 1.0)  # the 2019 gates' protocol: every step counts


def test_correct_judges_fixation_and_the_window_after_grace():
    task = make_task("dms", **SHORT["dms"])
    tr = batch(task, 64)
    judged = tr.response.astype(bool)
    right = np.where(judged, tr.targets, 0.0)
    assert np.all(judge(task, tr, right))  # silent before, right answer in the window
    assert np.all(judge(task, tr, right + np.where(judged, 0, -3 * tr.targets)))  # wrong only in the grace: right
    assert not np.any(judge(task, tr, -right))
    assert np.all(judge(task, tr, np.where(judged, 0.6 * tr.targets, 0.0)))  # within ±0.5 of the answer
    assert not np.any(judge(task, tr, np.where(judged, 0.2 * tr.targets, 0.0)))  # the right sign, no choice made
    answer = np.where(judged, tr.targets, 0.0).max(1, keepdims=True) + np.where(judged, tr.targets, 0.0).min(
        1, keepdims=True
    )
    assert not np.any(judge(task, tr, np.broadcast_to(answer, tr.targets.shape)))  # answered during fixation


@pytest.mark.parametrize(
    "name,params,field",
    [
        ("perceptual_dm", dict(T=1200), "T"),
        ("perceptual_dm", dict(coherences=()), "coherences"),
        ("perceptual_dm", dict(grace=-1), "grace"),
        ("context_dm", dict(stimulus=0), "stimulus"),
        ("dms", dict(n_stimuli=1), "n_stimuli"),
        ("dms", dict(p_match=1.0), "p_match"),
        ("pwm", dict(pairs=((10, 10),)), "pairs"),
        ("pwm", dict(delay=-5), "delay"),
        ("and_or_context", dict(response_start=40), "response_start"),
    ],
)
def test_bad_parameters(name, params, field):
    with pytest.raises(ValueError, match=field):
        make_task(name, **params)


def test_list_parameters_become_hashable_tuples():
    task = make_task("pwm", pairs=[[20, 10]], **SHORT["pwm"])
    assert task.pairs == ((20, 10),) and task.conditions == ("20>10", "10<20")
    assert hash(TrainConfig(task, units=8)) == hash(
        TrainConfig(make_task("pwm", pairs=((20, 10),), **SHORT["pwm"]), units=8)
    )
    assert make_task("perceptual_dm", coherences=[0.1]).coherences == (0.1,)


# ------------------------------------------------------------------------------------------------------------------
# Learning on CPU: small ensembles (4 members, N = 32, 320 updates of 64 trials) on 100-step versions of the tasks
# (every epoch about 10x shorter than the defaults); noise 0.2 on the evidence tasks. context_dm, dms and pwm train
# a leaky network (alpha = dt/tau = 0.1, like the leaky rate networks of Mante et al. 2013). Measured with alpha = 1
# and 320 updates: context_dm 0 of 2 members learned, dms 1 of 2 (0 of 4 at lr 3e-3), pwm 3 of 4; alpha = 0.1: 4 of 4.

FAST = {
    # name: (task overrides, alpha, learning rate)
    "perceptual_dm": (dict(T=100, fixation=10, stimulus=40, delay=20, grace=10, noise=0.2), 1.0, 1e-3),
    "context_dm": (dict(T=100, fixation=10, stimulus=40, delay=20, grace=10, noise=0.2), 0.1, 1e-3),
    "dms": (dict(T=100, fixation=10, sample_duration=15, delay=30, test=15, grace=10), 0.1, 1e-3),
    "pwm": (dict(T=100, fixation=10, stimulus=15, delay=30, grace=10), 0.1, 1e-3),
    "and_or_context": (dict(T=100, response_start=60), 1.0, 1e-3),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ensemble_learns(name):
    params, alpha, lr = FAST[name]
    task = make_task(name, **params)
    config = TrainConfig(task, units=32, alpha=alpha, epochs=10, n_train=2048, batch_size=64, threshold=0.0)
    ens = fit(config, seed=0, members=np.arange(4), hparams=Hparams(lr=lr))
    ev = evaluate(task, config.net, ens.params_final, n_trials=512)  # success: >= 90% of 512 held-out trials
    print(f"{name}: accuracy {np.round(ev.accuracy, 3)}, success {ev.success.mean():.2f}, loss {ens.loss[:, -1]}")
    assert np.all(ev.finite)
    assert ev.success.mean() >= 0.75, (ev.accuracy, ens.loss[:, -1])
    assert np.all(ens.loss[ev.success, -1] < ens.loss[ev.success, 0])  # their loss fell
    if hasattr(task, "ideal_accuracy"):  # and no member beats the ideal observer (3 binomial s.d. of slack)
        assert np.all(ev.accuracy <= task.ideal_accuracy() + 3 * math.sqrt(0.25 / 512))
