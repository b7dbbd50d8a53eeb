"""Traced task params (DESIGN.md §2): `sample(key, params)` with per-member params equals each member's own task,
one compiled sampler serves every value, host validation of per-member values, and `evaluate(task_params=...)`."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.cells.network import NetConfig, init_params
from jaxrnn.tasks import TASKS, make_task
from jaxrnn.training.evaluate import evaluate, evaluate_on, heldout_trials

KEY = jax.random.key(0)

# Short versions of the long tasks (the rules do not depend on the epoch lengths), so every test stays small.
BASE = {
    "perceptual_dm": dict(T=250, fixation=20, stimulus=100, delay=50, grace=20),
    "context_dm": dict(T=250, fixation=20, stimulus=100, delay=50, grace=20),
    "dms": dict(T=250, fixation=20, sample_duration=40, delay=80, test=40, grace=20),
    "pwm": dict(T=250, fixation=20, stimulus=40, delay=80, grace=20),
}

# Three members' values of some traced fields of every task (the last member keeps the task's own values).
VARIED = {
    "and": [dict(pulse_start=10, noise=0.0), dict(pulse_width=5, response_start=120, baseline=0.3), {}],
    "or": [dict(amplitude=2.0), dict(pulse_start=40, noise=0.3), {}],
    "xor": [dict(response_start=60), dict(pulse_width=30, pulse_start=10), {}],
    "not": [dict(pulse_start=0, response_start=150), dict(noise=0.0, amplitude=0.5), {}],
    "flipflop": [dict(interval_max=150, delay=5), dict(first=10, pulse_width=10, baseline=0.2), {}],
    "flipflop3": [dict(jitter=10, gap2=90), dict(first_min=0, first_max=20, delay=5, pulse_width=10), {}],
    "time_reproduction": [dict(delay=150), dict(delay=100, pulse_start=20, target_noise=0.0, baseline=0.1), {}],
    "oscillation": [dict(pulse_start=40), dict(noise=0.0, pulse_start=120), {}],
    "perceptual_dm": [dict(coherences=(0.5, 0.1, 0.2, 0.3, 0.4)), dict(stimulus=60, grace=5, noise=0.2), {}],
    "context_dm": [dict(coherences=(0.9, 0.1, 0.3), cue=2.0), dict(delay=10, fixation=60, pre_weight=0.5), {}],
    "dms": [dict(p_match=0.9, delay=20), dict(test=70, amplitude=0.5, response_weight=2.0), {}],
    "pwm": [dict(pairs=((20, 12), (30, 40), (1, 5), (8, 9), (100, 90))), dict(fixation=5, delay=100), {}],
    "and_or_context": [dict(context_start=40, response_start=100), dict(grace=10, pulse_width=10), {}],
}


def base_task(name):
    return make_task(name, **BASE.get(name, {}))


def assert_same(a, b, msg=""):
    """Integer arrays exactly; float arrays to float32 rounding (a traced factor is not folded away like a constant
    one, so a product may round once more: 1 ulp)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, msg
    if np.issubdtype(a.dtype, np.floating):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=msg)
    else:
        np.testing.assert_array_equal(a, b, err_msg=msg)


def test_every_task_is_covered_and_fields_split():
    assert set(VARIED) == set(TASKS)
    for name, cls in TASKS.items():
        fields = [f.name for f in dataclasses.fields(cls)]
        assert set(cls.STATIC) <= set(fields), name
        assert sorted(cls.static_fields() + cls.traced_fields()) == sorted(fields)
        assert "T" in cls.static_fields() and "noise" in cls.traced_fields()
        params = cls().default_params()
        assert list(params) == list(cls.traced_fields())
        for k, v in params.items():
            assert v.dtype in (jnp.int32, jnp.float32), (name, k, v.dtype)
            assert v.dtype == (jnp.int32 if isinstance(getattr(cls(), k), int) else jnp.float32), (name, k)


def _sample_and_judge(task, keys, noise, params=None):
    """Trials of `keys` (K,) with `params` (one member's; None: the task's own) and `correct` of noisy outputs."""
    trials = jax.vmap(task.sample, in_axes=(0, None))(keys, params)
    outputs = trials.targets + noise
    return trials, jax.vmap(task.correct, in_axes=(0, 0, None))(trials, outputs, params)


@pytest.mark.parametrize("name", list(TASKS))
def test_per_member_params_equal_each_members_own_task(name):
    task = base_task(name)
    values = VARIED[name]
    params = task.member_params(values)
    defaults = task.default_params()
    assert all(params[k].shape == (len(values), *d.shape) for k, d in defaults.items())
    # every member: 8 trials from the same keys with its params, and noisy outputs judged with its params. The last
    # member has the task's own values, so its own task is `task` itself sampled without params: sample(key) equals
    # sample(key, default_params()).
    keys = jax.random.split(KEY, 8)
    shape = (8, task.T, task.n_out)
    noise = 0.3 * jax.random.normal(jax.random.key(2), shape)
    ensemble = jax.jit(jax.vmap(lambda p: _sample_and_judge(task, keys, noise, p)))
    trials, judged = ensemble(params)
    for i, v in enumerate(values):
        own = task.replace(**v)
        expected, expected_ok = jax.jit(lambda own=own: _sample_and_judge(own, keys, noise))()
        for field, a, b in zip(expected._fields, trials, expected, strict=True):
            assert_same(np.asarray(a)[i], b, f"{name} member {i} {field}")
        np.testing.assert_array_equal(np.asarray(judged[i]), np.asarray(expected_ok))
    # the first member's values change its trials (member 2 has the task's own values, same keys)
    assert any(not np.array_equal(np.asarray(x[0]), np.asarray(x[2])) for x in trials)


def test_one_compiled_sampler_serves_every_delay():
    task = make_task("time_reproduction")
    traces = []

    def sample(key, params):
        traces.append(1)  # runs only while tracing
        return task.sample(key, params)

    f = jax.jit(jax.vmap(sample))
    keys = jax.random.split(KEY, 8)
    peaks = []
    for delays in ([20] * 4 + [150] * 4, [100] * 8, [0, 10, 30, 50, 70, 90, 110, 210]):
        params = task.member_params([dict(delay=d, target_noise=0.0) for d in delays])
        tr = f(keys, params)
        pulse = np.asarray(tr.condition) == 1
        peak = np.argmax(np.asarray(tr.targets[:, :, 0]), axis=1)
        assert np.all((peak[pulse] >= 70 + np.array(delays)[pulse]) & (peak[pulse] < 90 + np.array(delays)[pulse]))
        peaks.append(peak)
    assert len(traces) == 1 and f._cache_size() == 1


def test_member_params_broadcast_and_static_fields():
    task = make_task("time_reproduction")
    same = task.member_params([{}] * 3)
    for k, v in task.default_params().items():
        np.testing.assert_array_equal(np.asarray(same[k]), np.broadcast_to(np.asarray(v), (3, *v.shape)))
    # a static field may be named with the task's own value, not with another
    task.member_params([dict(T=300, delay=30), dict(delay=40)])
    with pytest.raises(ValueError, match=r"time_reproduction: T is static .* separate ensemble"):
        task.member_params([dict(delay=20), dict(T=400)])
    with pytest.raises(ValueError, match=r"pulse_width is static"):
        task.member_params([dict(pulse_width=10)])
    with pytest.raises(ValueError, match=r"n_bits is static"):
        make_task("flipflop3").member_params([dict(n_bits=2)])


@pytest.mark.parametrize(
    "name,values,match",
    [
        ("time_reproduction", [dict(delay=20), dict(delay=250)], r"delay =?250 does not fit in T=300"),
        ("time_reproduction", [dict(delay=-1)], r"delay must be >= 0"),
        ("and", [dict(response_start=10)], r"response_start must lie in"),
        ("dms", [dict(p_match=1.5)], r"p_match"),
        ("perceptual_dm", [dict(coherences=(0.1, 0.2))], r"coherences has \(2,\) values.*separate ensemble"),
        ("pwm", [dict(pairs=((10, 20),))], r"pairs has \(1, 2\) values"),
        ("and", [dict(wings=2)], r"unknown parameter 'wings'"),
        ("and", [], r"at least one member"),
    ],
)
def test_member_params_refuses_bad_values(name, values, match):
    with pytest.raises(ValueError, match=match):
        make_task(name).member_params(values)


def test_sample_refuses_bad_params():
    task = make_task("time_reproduction")
    with pytest.raises(ValueError, match="T is static"):
        task.sample(KEY, {"T": 300})
    with pytest.raises(ValueError, match="unknown param 'colour'"):
        task.sample(KEY, {"colour": 1})
    with pytest.raises(ValueError, match=r"param delay has shape \(2,\), expected \(\)"):
        task.sample(KEY, {"delay": jnp.array([20, 30])})
    # a partial dict keeps the task's own value for the rest
    a = task.sample(KEY, {"delay": 150})
    b = task.replace(delay=150).sample(KEY)
    assert_same(a.targets, b.targets)


def test_evaluate_with_per_member_task_params():
    task = make_task("time_reproduction")
    net = NetConfig(n_in=1, n_out=1, units=8)
    values = [{}, dict(delay=150), dict(delay=150, baseline=0.3), {}]
    params = jax.vmap(lambda k: init_params(k, net))(jax.random.split(KEY, len(values)))
    tp = task.member_params(values)
    ev = evaluate(task, net, params, n_trials=32, task_params=tp, batch=2)
    trials = heldout_trials(task, 32, task_params=tp)
    assert trials.inputs.shape == (4, 32, 300, 1)
    ev_on = evaluate_on(task, net, params, trials, task_params=tp)
    for i, v in enumerate(values):
        alone = evaluate(task.replace(**v), net, jax.tree.map(lambda x, i=i: x[i : i + 1], params), n_trials=32)
        for field in ("mse", "distance", "accuracy", "success"):
            np.testing.assert_allclose(getattr(ev, field)[i], getattr(alone, field)[0], rtol=1e-5, err_msg=field)
            np.testing.assert_allclose(getattr(ev_on, field)[i], getattr(alone, field)[0], rtol=1e-5, err_msg=field)
    # the params matter: the same networks evaluated with the task's own params score differently where they differ
    plain = evaluate(task, net, params, n_trials=32)
    np.testing.assert_allclose(plain.distance[[0, 3]], ev.distance[[0, 3]], rtol=1e-5)
    assert not np.any(np.isclose(plain.distance[1:3], ev.distance[1:3], rtol=1e-3))
    with pytest.raises(ValueError, match="member axis first"):
        evaluate(task, net, params, n_trials=8, task_params=task.member_params(values[:2]))
