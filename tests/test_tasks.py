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


def _original_oscillation_target(pulse: bool) -> np.ndarray:
    """The original generator's target (katejarne/RNN_study_with_keras, generate_data_set_oscilator.py, mem_gap 200),
    written from its formula: 0.2 x (0.01 everywhere, except on [160, 380) where it is scipy's 'same'-mode
    convolution of the 220 ones (0 on no-pulse trials) with sin(2 pi 12 x / 420), x = 0..419). scipy's 'same' keeps
    the size of its first argument, centred in the full convolution: out[n] = sum_k a[k] sine[n + c - k] with
    c = (220 + 420 - 1 - 220) // 2 = 209, terms with an index outside the sine left out."""
    T, lo, hi = 420, 160, 380
    x = np.arange(T)
    sine = np.sin(2 * np.pi * 12 * x / 420)
    window = np.ones(hi - lo) if pulse else np.zeros(hi - lo)
    n, k = np.arange(hi - lo)[:, None], np.arange(hi - lo)[None, :]
    j = n + 209 - k
    same = np.sum(np.where((j >= 0) & (j < T), window[None, :] * sine[np.clip(j, 0, T - 1)], 0.0), axis=1)
    y = np.full(T, 0.01)
    y[lo:hi] = same
    return 0.2 * y


def test_oscillation_is_the_original_generator():
    task = make_task("oscillation", noise=0.0)
    tr = batch(task, 64)
    pulse = tr.condition == 1
    assert 10 < pulse.sum() < 54
    expected = _original_oscillation_target(True)
    close = dict(rtol=1e-6, atol=1e-6)  # float32 rounding of values up to 1.74
    np.testing.assert_allclose(task.target_template, expected, **close)
    np.testing.assert_allclose(tr.targets[pulse, :, 0], np.broadcast_to(expected, (pulse.sum(), 420)), **close)
    no_pulse = _original_oscillation_target(False)
    np.testing.assert_allclose(tr.targets[~pulse, :, 0], np.broadcast_to(no_pulse, ((~pulse).sum(), 420)), **close)
    assert np.all(tr.targets[~pulse, 160:380] == 0) and np.allclose(tr.targets[~pulse, :160], 0.002)
    # the figures DESIGN.md quotes: amplitude 1.74, period 35 steps (6.3 cycles in the 220-step window)
    assert abs(np.abs(expected).max() - 1.74) < 0.01
    assert np.argmax(np.abs(np.fft.rfft(expected[160:380]))) == round(220 / 35)
    # input: a box of 40 ones on [100, 140) convolved ('same', centred: full[7:47]) with hann(15) / its sum
    m = np.arange(15)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * m / 14)
    box = np.convolve(np.ones(40), hann / hann.sum(), mode="full")[7:47]
    stim = np.zeros(420)
    stim[100:140] = box
    np.testing.assert_allclose(tr.inputs[pulse, :, 0], np.broadcast_to(stim, (pulse.sum(), 420)), **close)
    assert np.all(tr.inputs[~pulse] == 0)
    np.testing.assert_array_equal(tr.mask, 1.0)
    noisy = batch(make_task("oscillation"), 64)
    assert abs((noisy.inputs - tr.inputs).std() - 0.1) < 0.005  # input noise N(0, 0.1^2) at every step
    np.testing.assert_array_equal(noisy.targets, tr.targets)  # and none on the target


def test_oscillation_success_rule():
    """The rule compares with the original's target: the clean target and a slightly noisy or 80-120% copy pass; a
    zero output, a sine of the wrong phase or frequency and a wrong amplitude fail; no-pulse trials pass near 0 (within
    0.25 x the target's amplitude 1.74)."""
    task = make_task("oscillation")
    tr = batch(task, 64)
    pulse = tr.condition == 1
    judge = jax.jit(jax.vmap(task.correct))

    def on_pulse(y):
        return np.asarray(judge(tr, np.broadcast_to(y[None, :, None], tr.targets.shape)))[pulse]

    target = task.target_template.astype(np.float64)
    t = np.arange(420)
    window = (t >= 160) & (t < 380)
    assert np.all(on_pulse(target))
    noise = 0.02 * np.random.default_rng(0).standard_normal(tr.targets.shape)
    assert np.all(np.asarray(judge(tr, tr.targets + noise))[pulse])
    for scale in (0.8, 1.2):
        assert np.all(on_pulse(scale * target)), scale
    for scale in (0.5, 1.5):
        assert not np.any(on_pulse(scale * target)), scale
    assert not np.any(on_pulse(np.zeros(420)))
    for shift in (9, 17):  # a quarter and a half period late
        assert not np.any(on_pulse(np.roll(target, shift))), shift
    for period in (25.0, 50.0):
        assert not np.any(on_pulse(np.where(window, 1.74 * np.sin(2 * np.pi * (t - 160) / period), 0.0))), period
    # no-pulse trials: the 0.002 baseline and 0 pass, the oscillation or a level of 0.5 fails
    quiet = ~pulse
    for y, ok in ((np.full(420, 0.002), True), (np.zeros(420), True), (target, False), (np.full(420, 0.5), False)):
        got = np.asarray(judge(tr, np.broadcast_to(y[None, :, None], tr.targets.shape)))[quiet]
        assert np.all(got == ok)


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


def test_gate_onset_jitter_default_unchanged_and_shifts_input_and_target_together():
    """The default gate trial is the one drawn before `onset_jitter` existed (the same two keys, recomputed here by
    hand); with jitter (the E/I study's trial: pulse at 60 + d, target from 100 + d, d uniform on 1..50) the pulses
    and the response onset move by the same d, drawn per trial, and one compiled sampler serves both."""
    task = make_task("and")
    keys = jax.random.split(KEY, 64)
    tr, clean = batch(task, 64), batch(task.replace(noise=0.0), 64)
    t = np.arange(task.T)[:, None]
    for k, key in enumerate(keys[:8]):
        key_bits, key_noise = jax.random.split(key)
        c = int(jax.random.randint(key_bits, (), 0, 4))
        pulses = np.array([c >> 1, c & 1], np.float32)[None, :] * ((t >= 30) & (t < 50))
        np.testing.assert_array_equal(clean.inputs[k], pulses)
        noise = 0.1 * np.asarray(jax.random.normal(key_noise, (task.T, 2), jnp.float32))
        np.testing.assert_allclose(tr.inputs[k], pulses + noise, rtol=0, atol=1e-6)  # float32 rounding of std · n
        np.testing.assert_array_equal(tr.targets[k, :, 0], np.where(t[:, 0] >= 70, float(c == 3), 0.0))
    jittered = task.replace(T=290, pulse_start=60, response_start=100, onset_jitter=50, noise=0.0)
    f = jax.jit(jax.vmap(jittered.sample, in_axes=(0, None)))
    keys = jax.random.split(KEY, 512)
    tj = jax.tree.map(np.asarray, f(keys, jittered.default_params()))
    onset = np.argmax(tj.response[:, :, 0] > 0, axis=1) - 100
    assert onset.min() == 1 and onset.max() == 50 and len(np.unique(onset)) > 40
    for k in range(512):
        d, c = onset[k], tj.condition[k]
        pulsed = np.nonzero(tj.inputs[k].any(axis=1))[0]
        if c == 0:
            assert pulsed.size == 0
        else:
            np.testing.assert_array_equal(pulsed, np.arange(60 + d, 80 + d))
        np.testing.assert_array_equal(tj.targets[k, :, 0], np.where(np.arange(290) >= 100 + d, float(c == 3), 0.0))
    off = jittered.default_params() | {"onset_jitter": jnp.asarray(0, jnp.int32)}
    none = jax.tree.map(np.asarray, f(keys, off))
    assert np.all(np.argmax(none.response[:, :, 0] > 0, axis=1) == 100) and f._cache_size() == 1
    with pytest.raises(ValueError, match="onset_jitter"):
        make_task("and", onset_jitter=131)
