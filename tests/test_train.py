"""The ensemble trainer: members are independent, reproducible networks; early stop and divergence are per member."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import evaluate
from jaxrnn.training.train import Hparams, TrainConfig, compiled, fit, keras_adam, member, train_member

TINY = dict(units=8, epochs=3, batch_size=4, n_train=16)


def tiny(**kw):
    return TrainConfig(make_task("and", T=60, pulse_start=5, response_start=40), **{**TINY, **kw})


def allclose(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **{"rtol": 1e-5, "atol": 1e-6, **kw}), a, b)


def test_member_equals_alone():
    cfg = tiny()
    ens = fit(cfg, seed=3, members=range(8))
    alone = fit(cfg, seed=3, members=[5])
    allclose(member(ens.params_final, 5), member(alone.params_final, 0))
    allclose(ens.loss[5], alone.loss[0])
    # the single-member pure function, called without vmap, is the same network too
    key = jax.random.fold_in(jax.random.key(3), 5)
    p0, p1, hist = jax.jit(lambda k: train_member(k, Hparams(), cfg))(key)
    allclose(member(ens.params_final, 5), p1, rtol=1e-4, atol=1e-5)
    allclose(member(ens.params_init, 5), p0)


def test_member_independent_of_ensemble_size():
    cfg = tiny()
    small, big = fit(cfg, 0, range(4)), fit(cfg, 0, range(16))
    allclose(small.params_final, jax.tree.map(lambda x: x[:4], big.params_final))
    assert not np.allclose(big.params_final["W_rec"][0], big.params_final["W_rec"][1])


def test_chunks_and_epoch_calls_do_not_change_results():
    cfg = tiny()
    whole = fit(cfg, 1, range(6))
    pieces = fit(cfg, 1, range(6), chunk_size=2, epochs_per_call=1)
    allclose(whole.params_final, pieces.params_final)
    allclose(whole.loss, pieces.loss)


def test_no_recompilation():
    cfg = tiny(epochs=2)
    fit(cfg, 0, range(4))
    _, v_run = compiled(cfg, 2)
    n = v_run._cache_size()
    fit(cfg, 7, range(4, 8))
    assert v_run._cache_size() == n == 1


def test_same_seed_same_result_and_shared_data():
    cfg = tiny(shared_data=True)
    a, b = fit(cfg, 2, range(3)), fit(cfg, 2, range(3))
    allclose(a.params_final, b.params_final, rtol=0, atol=0)
    assert not np.allclose(a.params_init["W_rec"][0], a.params_init["W_rec"][1])


def test_early_stop_freezes_one_member():
    cfg = tiny(epochs=4)
    ref = fit(cfg, 0, range(4))
    # threshold between member losses after epoch 1: the lowest stops, the others go on
    first = ref.loss[:, 0]
    thr = float(np.sort(first)[0] + np.sort(first)[1]) / 2
    stopped = fit(tiny(epochs=4, threshold=thr), 0, range(4))
    i = int(np.argmin(first))
    assert stopped.stop_epoch[i] == 1 and all(stopped.stop_epoch[j] == 0 for j in range(4) if j != i)
    # the stopped member kept its epoch-1 parameters; the others match the run without early stop
    after_one = fit(tiny(epochs=1), 0, [i])
    allclose(member(stopped.params_final, i), member(after_one.params_final, 0))
    for j in range(4):
        if j != i:
            allclose(member(stopped.params_final, j), member(ref.params_final, j))


def test_diverged_member_is_frozen_and_others_untouched():
    cfg = tiny()
    ref = fit(cfg, 0, range(3))
    from jaxrnn.training.train import init_ensemble

    state = init_ensemble(cfg, 0, np.arange(3))
    state.params["W_rec"][1, 0, 0] = np.nan
    loss = np.full((3, cfg.epochs), np.nan, np.float32)
    out = fit(cfg, 0, range(3), state=state, loss=loss)
    assert list(out.diverged) == [False, True, False]
    for j in (0, 2):
        allclose(member(out.params_final, j), member(ref.params_final, j))
    assert np.isnan(out.params_final["W_rec"][1, 0, 0])  # frozen where it was


def test_online_protocol_runs_and_differs():
    a = fit(tiny(protocol="online"), 0, range(2))
    b = fit(tiny(), 0, range(2))
    assert np.all(np.isfinite(a.loss)) and not np.allclose(a.loss, b.loss)


def test_clipping_scales_the_gradient_before_adam():
    """Adam's step is ~lr per coordinate whatever the gradient's scale, until the gradient is far below eps (1e-8):
    clipped to a global norm of 1e-12, every coordinate is < 1e-12 and the step ~lr · |g| / eps is < 1e-3 lr; without
    clipping it is ~lr. (A clip that were not applied, or applied after Adam, would leave the step ~lr.)"""
    lr = 1e-2
    cfg = tiny(epochs=1, n_train=4, batch_size=4)
    steps = {}
    for clip in (None, 1e-12):
        ens = fit(dataclasses.replace(cfg, clip_norm=clip), 0, [0], hparams=Hparams(lr=lr))
        steps[clip] = np.abs(ens.params_final["W_rec"] - ens.params_init["W_rec"]).max()
    assert steps[None] > 0.5 * lr and steps[1e-12] < 1e-3 * lr, steps


# ----------------------------------------------------------------------------------------------------------------
# Keras' Adam (the trainer's optimizer); the replay against Keras itself is tests/test_keras.py (slow, keras extra).

ADAM = dict(b1=0.9, b2=0.999, eps=1e-8, decay=1e-4)


def _gradients(steps=6, seed=0):
    """(steps, 40) gradients spanning magnitudes 1e-9..1 (eps 1e-8 matters for the small ones), float32."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-9, 0, 40)
    return (rng.normal(size=(steps, 40)) * scale).astype(np.float32)


def _numpy_keras_adam(grads, lr, b1, b2, eps, decay):
    """The parameter changes of Keras' Adam in float64, from the equations of its source (Keras 2 `Adam.get_updates`,
    Keras 3 `Adam.update_step`): lr_t = lr / (1 + decay · (t - 1)), alpha_t = lr_t · sqrt(1 - b2^t) / (1 - b1^t)."""
    m = v = np.zeros(grads.shape[1])
    steps = []
    for t, g in enumerate(grads.astype(np.float64), start=1):
        alpha = lr / (1 + decay * (t - 1)) * np.sqrt(1 - b2**t) / (1 - b1**t)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        steps.append(-alpha * m / (np.sqrt(v) + eps))
    return np.array(steps)


def _run(opt, grads):
    """The updates of optimizer `opt` fed `grads` (steps, n) one after another, (steps, n)."""
    state = opt.init(jnp.zeros(grads.shape[1]))
    out = []
    for g in grads:
        u, state = opt.update(jnp.asarray(g), state)
        out.append(np.asarray(u))
    return np.array(out)


def test_keras_adam_follows_keras_and_differs_from_optax_by_eps_only():
    grads, lr = _gradients(), 1e-3
    ours = _run(keras_adam(lr, **ADAM), grads)
    # rtol: 1 - b2^t in float32 (as Keras computes it) carries a relative error up to ~5e-5 at small t
    np.testing.assert_allclose(ours, _numpy_keras_adam(grads, lr, **ADAM), rtol=1e-4, atol=0)
    optax_adam = lambda eps: optax.adam(lambda c: lr / (1 + ADAM["decay"] * c), b1=0.9, b2=0.999, eps=eps)  # noqa: E731
    # optax places eps after the bias correction: the steps of gradients near eps differ (by up to 30x at t = 1)
    diff = np.abs(_run(optax_adam(1e-8), grads) - ours) / np.abs(ours)
    assert diff.max() > 0.5
    large = np.abs(grads).min(axis=0) > 1e-3
    assert large.sum() >= 5 and diff[:, large].max() < 1e-3  # large gradients: eps does not matter
    # without eps the two are the same algorithm
    no_eps = _run(keras_adam(lr, **{**ADAM, "eps": 0.0}), grads)
    np.testing.assert_allclose(no_eps, _run(optax_adam(0.0), grads), rtol=2e-5)


def test_keras_adam_takes_a_traced_lr_per_member_and_injected_hyperparameters():
    grads = _gradients(steps=4)
    lrs = jnp.array([1e-3, 1e-4, 3e-4])

    def run(lr):
        opt = keras_adam(lr, **ADAM)
        state = opt.init(jnp.zeros(grads.shape[1]))

        def step(state, g):
            u, state = opt.update(g, state)
            return state, u

        return jax.lax.scan(step, state, jnp.asarray(grads))[1]

    vmapped = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate(np.asarray(lrs)):
        np.testing.assert_allclose(vmapped[i], _numpy_keras_adam(grads, float(lr), **ADAM), rtol=1e-4, atol=0)
    # injected hyperparameters are float32 arrays (1 - b2 = 1 - float32(0.999) differs from 0.001 by 1.3e-5)
    injected = optax.inject_hyperparams(keras_adam)(learning_rate=3e-4, **ADAM)
    np.testing.assert_allclose(_run(injected, grads), vmapped[2], rtol=1e-4, atol=0)
    assert np.abs(vmapped[0] / vmapped[1] - 10.0).max() < 1e-3  # the members' rates, not one shared


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(units=0), "units"),
        (dict(epochs=-1), "epochs"),
        (dict(init="he"), "orthogonal, normal"),
        (dict(protocol="batch"), "paper, online"),
        (dict(batch_size=64, n_train=10), "n_train"),
    ],
)
def test_bad_train_config(kw, field):
    with pytest.raises(ValueError, match=field):
        tiny(**kw)


def test_paper_defaults():
    cfg = TrainConfig(make_task("flipflop3"))
    assert (cfg.units, cfg.batch_size, cfg.n_train, cfg.threshold) == (400, 128, 30_000, 9e-3)
    assert TrainConfig(make_task("not")).bias and not TrainConfig(make_task("and")).bias
    assert TrainConfig(make_task("and")).steps_per_epoch == 15_000 // 64


@pytest.mark.slow
def test_and_ensemble_learns():
    """16 AND networks, N = 50, the paper protocol reduced to 8 epochs × 3,200 trials (400 updates) at lr 3e-4:
    >= 75% succeed. (lr 1e-3 is unstable here: success fell from 38% to 25% between 200 and 800 updates.) Measured
    with Keras' Adam: 12/16 (members 0-15, this test: at the limit) and 14/16 (members 16-31); with optax's Adam, the
    trainer's optimizer before `keras_adam`, 15/16 and 12/16: which members succeed depends on eps' placement, the
    rate does not (26/32 vs 27/32)."""
    cfg = TrainConfig(make_task("and"), epochs=8, n_train=3200)
    t = time.perf_counter()
    ens = fit(cfg, 0, range(16), hparams=Hparams(lr=3e-4))
    ev = evaluate(cfg.task, cfg.net, ens.params_final)
    elapsed = time.perf_counter() - t
    print(
        f"AND ensemble: 16 members x {cfg.epochs} epochs x {cfg.n_train} trials in {elapsed:.0f} s; "
        f"success {ev.success.mean():.2f}"
    )
    assert ev.success.mean() >= 0.75
