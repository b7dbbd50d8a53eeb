"""Task generators obey their rules (DESIGN.md §4) on many random trials."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.tasks import TASKS, make_task

KEY = jax.random.key(0)


def batch(task, n=256, key=KEY):
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(task.sample))(jax.random.split(key, n)))


@pytest.mark.parametrize("name", list(TASKS))
def test_contract(name):
    task = make_task(name)
    tr = batch(task, 16)
    assert tr.inputs.shape == (16, task.T, task.n_in) and tr.inputs.dtype == np.float32
    assert tr.targets.shape == (16, task.T, task.n_out) and tr.targets.dtype == np.float32
    assert tr.mask.shape == tr.targets.shape and tr.response.shape == tr.targets.shape
    assert tr.condition.shape == (16,) and np.all((0 <= tr.condition) & (tr.condition < len(task.conditions)))
    assert all(np.all(np.isfinite(x)) for x in (tr.inputs, tr.targets, tr.mask))
    same = batch(task, 16)
    np.testing.assert_array_equal(tr.inputs, same.inputs)  # same key, same trial
    other = batch(task, 16, jax.random.key(1))
    assert not np.array_equal(tr.inputs, other.inputs)
    # the noise-free target itself is judged correct, and its negation-like opposite is not
    assert np.all(jax.jit(jax.vmap(task.correct))(tr, tr.targets))


@pytest.mark.parametrize("name", list(TASKS))
def test_wrong_output_is_incorrect(name):
    task = make_task(name)
    tr = batch(task, 64)
    lo, hi = task.levels
    flipped = (lo + hi) - tr.targets  # mirror every target level
    if name in ("time_reproduction", "oscillation"):
        flipped = np.zeros_like(tr.targets) + np.where(tr.condition[:, None, None] == 1, 0.0, 1.0)
    assert not np.any(jax.jit(jax.vmap(task.correct))(tr, flipped))


@pytest.mark.parametrize("gate,table", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("xor", [0, 1, 1, 0])])
def test_gate_truth_table(gate, table):
    task = make_task(gate, noise=0.0)
    tr = batch(task, 400)
    baseline = 0.0 if gate == "and" else 0.01
    for c in range(4):
        sel = tr.condition == c
        assert sel.sum() > 50  # all four conditions are drawn, about equally
        a, b = c >> 1, c & 1
        np.testing.assert_allclose(tr.inputs[sel, 30:50, 0], a)
        np.testing.assert_allclose(tr.inputs[sel, 30:50, 1], b)
        assert np.all(tr.inputs[sel][:, :30] == 0) and np.all(tr.inputs[sel][:, 50:] == 0)
        np.testing.assert_allclose(tr.targets[sel, 70:, 0], table[c])
        np.testing.assert_allclose(tr.targets[sel, :70, 0], baseline)


def test_not_truth_table():
    tr = batch(make_task("not", noise=0.0), 200)
    for c, value in ((0, 1.0), (1, 0.0)):
        sel = tr.condition == c
        np.testing.assert_allclose(tr.inputs[sel, 30:50, 0], c)
        np.testing.assert_allclose(tr.targets[sel, 70:, 0], value)
        np.testing.assert_allclose(tr.targets[sel, :70, 0], 0.01)


def test_input_noise_std():
    tr = batch(make_task("and"), 64)
    assert abs(tr.inputs[:, :30].std() - 0.1) < 0.005


def _latch_reference(inputs, width=20, delay=20, baseline=0.01):
    """Plain-Python latch: set/reset pulses take effect `delay` steps after their end."""
    T = len(inputs)
    target, state = np.full(T, baseline), baseline
    onset = [t for t in range(T) if inputs[t].any() and (t == 0 or not inputs[t - 1].any())]
    pending = {t + width + delay: float(inputs[t, 1] > 0) for t in onset}
    for t in range(T):
        state = pending.get(t, state)
        target[t] = state
    return target, onset


@pytest.mark.parametrize("random_timing", [False, True])
def test_flipflop_latches(random_timing):
    kw = dict(interval_min=80, interval_max=150, n_turns=6) if random_timing else {}
    task = make_task("flipflop", noise=0.0, **kw)
    tr = batch(task, 64)
    for i in range(64):
        expected, onset = _latch_reference(tr.inputs[i])
        np.testing.assert_allclose(tr.targets[i, :, 0], expected)
        gaps = np.diff(onset)
        if random_timing:
            assert np.all((gaps >= 80) & (gaps <= 150))
        else:
            assert onset == [50 + 120 * k for k in range(8)]
        assert np.all(tr.inputs[i].sum(1) <= 1)  # one channel at a time


def test_flipflop3_channels():
    task = make_task("flipflop3", noise=0.0)
    tr = batch(task, 256)
    for i in range(64):
        for c in range(3):
            x, y = tr.inputs[i, :, c], tr.targets[i, :, c]
            onset = [t for t in range(task.T) if x[t] != 0 and (t == 0 or x[t - 1] == 0)]
            assert 1 <= len(onset) <= 3 and 10 <= onset[0] <= 99 + 70 + 50
            state, expected = 0.0, np.zeros(task.T)
            effects = {t + 40: x[t] for t in onset}
            for t in range(task.T):
                state = effects.get(t, state)
                expected[t] = state
            np.testing.assert_allclose(y, expected)
    # channels are independent: their final signs are uncorrelated
    final = np.sign(tr.targets[:, -1])
    corr = np.corrcoef(final.T)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.2)
    assert len(np.unique(tr.condition)) == 8


@pytest.mark.parametrize("delay", [20, 100, 210])
def test_time_reproduction_bump(delay):
    task = make_task("time_reproduction", delay=delay, noise=0.0, target_noise=0.0)
    tr = batch(task, 64)
    pulse = tr.condition == 1
    peak = np.argmax(tr.targets[pulse, :, 0], axis=1)
    assert np.all((peak >= 70 + delay) & (peak < 90 + delay))
    np.testing.assert_allclose(tr.targets[pulse, :, 0].max(1), 0.985, atol=1e-3)
    np.testing.assert_allclose(tr.targets[~pulse, : 70 + delay, 0], 0.045)
    assert np.all(tr.inputs[pulse, 50:70, 0] > 0) and np.all(tr.inputs[:, 70:, 0] == 0)
    assert np.all(tr.inputs[~pulse] == 0)


def test_oscillation_window():
    task = make_task("oscillation", noise=0.0)
    tr = batch(task, 64)
    pulse = tr.condition == 1
    y = tr.targets[pulse, :, 0]
    assert np.all(y[:, :160] == 0) and np.all(y[:, 380:] == 0)
    np.testing.assert_allclose(np.abs(y[:, 160:380]).max(1), 1.74, atol=0.01)
    np.testing.assert_allclose(y[:, 160], 1.74 * np.sin(np.deg2rad(130)), atol=1e-5)
    spectrum = np.abs(np.fft.rfft(y[0, 160:380]))
    assert abs(np.argmax(spectrum) / 220 - 1 / 35) < 1 / 220
    assert np.all(tr.targets[~pulse] == 0)


@pytest.mark.parametrize(
    "name,params,field",
    [
        ("time_reproduction", dict(delay=250), "delay"),
        ("and", dict(T=0), "T"),
        ("and", dict(T=-5), "T"),
        ("flipflop", dict(T=500), "T"),
        ("and", dict(colour=3), "colour"),
        ("and", dict(noise=-1.0), "noise"),
    ],
)
def test_bad_parameters(name, params, field):
    with pytest.raises(ValueError, match=field):
        make_task(name, **params)


def test_unknown_task():
    with pytest.raises(ValueError, match="allowed: and, or"):
        make_task("nand")


def test_jit_once_per_task():
    task = make_task("and")
    f = jax.jit(jax.vmap(task.sample))
    f(jax.random.split(KEY, 4))
    f(jax.random.split(jax.random.key(5), 4))
    assert f._cache_size() == 1
    assert jnp.asarray(1).dtype == jnp.int32
