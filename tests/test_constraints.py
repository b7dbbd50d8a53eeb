"""Network constraints and gated cells (issue 7): Dale's law, sparsity masks, training noise, trainable h0, L2
penalties, GRU and LSTM. Tiny sizes; the learning checks are in the slow test at the end."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.cells.network import (
    NetConfig,
    effective_params,
    forward,
    init_params,
    init_recurrent,
    project_constraints,
    recurrent_weights,
)
from jaxrnn.tasks import make_task
from jaxrnn.training.train import Hparams, TrainConfig, fit, make_loss, penalties, resolve, switches

TASK = make_task("and", T=40, pulse_start=5, response_start=25)


def _trials(n=8, seed=0):
    return jax.vmap(TASK.sample)(jax.random.split(jax.random.key(seed), n))


def _one_member(cfg):
    """The numbers of one member of `cfg` (its own values) and the switches they turn on."""
    resolved = resolve(cfg, Hparams(), 1)
    return jax.tree.map(lambda a: jnp.asarray(a[0]), resolved), switches(resolved)


def _loss(cfg):
    """`loss(params, trials, noise_key) -> (total, mse)` of one member of `cfg`."""
    hp, on = _one_member(cfg)
    loss_fn = make_loss(cfg, on)
    return lambda params, trials, key: loss_fn(params, trials, key, hp)


def test_dale_excitatory_count_is_exact_and_signs_per_column():
    for units in (7, 50):
        cfg = NetConfig(n_in=2, n_out=1, units=units, dale=True)
        assert cfg.n_exc == int(np.floor(0.8 * units + 0.5))
        W = np.asarray(recurrent_weights(init_params(jax.random.key(0), cfg), cfg))
        assert np.all(W[:, : cfg.n_exc] >= 0) and np.all(W[:, cfg.n_exc :] <= 0)
        assert np.sum(np.any(W > 0, axis=0)) == cfg.n_exc


@pytest.mark.parametrize("init", ["normal", "orthogonal"])
def test_dale_init_is_balanced_with_radius_gain(init):
    cfg = NetConfig(n_in=2, n_out=1, units=200, dale=True, e_fraction=0.65, init=init)
    W = np.asarray(recurrent_weights(init_params(jax.random.key(1), cfg, 1.5), cfg), np.float64)
    rows = W.sum(axis=1)  # net input to each unit from uniform presynaptic rates
    assert np.abs(rows.mean()) < 1e-3 * np.abs(W).sum(axis=1).mean() and rows.std() < 1e-4
    radius = np.abs(np.linalg.eigvals(W)).max()
    assert 1.5 * 0.85 < radius < 1.5 * 1.15


def test_sparsity_mask_count_and_radius():
    cfg = NetConfig(n_in=2, n_out=1, units=100, sparsity=0.75, init="normal")
    p = init_params(jax.random.key(0), cfg)
    assert int(np.sum(np.asarray(p["rec_mask"]) == 0)) == 7500
    assert np.all(np.asarray(p["W_rec"])[np.asarray(p["rec_mask"]) == 0] == 0)
    radius = np.abs(np.linalg.eigvals(np.asarray(p["W_rec"], np.float64))).max()
    assert 0.8 < radius < 1.2


def test_effective_params_is_idempotent_and_keeps_outputs():
    cfg = NetConfig(n_in=2, n_out=1, units=10, dale=True, sparsity=0.3)
    p = init_params(jax.random.key(2), cfg)
    p = {**p, "W_rec": p["W_rec"] - 0.05}  # some free weights negative: |.| must act
    eff = effective_params(p, cfg)
    np.testing.assert_array_equal(recurrent_weights(eff, cfg), eff["W_rec"])
    x = _trials(1).inputs[0]
    np.testing.assert_allclose(forward(eff, x, cfg)[0], forward(p, x, cfg)[0], rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def constrained():
    cfg = TrainConfig(
        TASK, units=10, epochs=2, batch_size=8, n_train=32, threshold=0, dale=True, sparsity=0.3, train_h0=True
    )
    return cfg, fit(cfg, 0, range(2))


def test_training_keeps_signs_mask_and_trains_h0(constrained):
    cfg, ens = constrained
    net = cfg.net
    W0 = np.asarray(effective_params(ens.params_init, net)["W_rec"])
    W1 = np.asarray(effective_params(ens.params_final, net)["W_rec"])
    assert not np.allclose(W0, W1)  # it trained
    assert np.all(W1[:, :, : net.n_exc] >= 0) and np.all(W1[:, :, net.n_exc :] <= 0)
    mask = ens.params_final["rec_mask"]
    np.testing.assert_array_equal(mask, ens.params_init["rec_mask"])  # the mask is fixed
    assert np.all(W1[mask == 0] == 0) and np.all(ens.params_final["W_rec"][mask == 0] == 0)
    assert np.all(ens.params_init["h0"] == 0) and np.any(ens.params_final["h0"] != 0)


# ----------------------------------------------------------------------------------------------------------------
# Dale's law by projection (the original Keras code's method): plain init, wrong-signed entries zeroed after updates.

PROJECT = dict(dale=True, dale_method="project")


def _signs_hold(W: np.ndarray, n_exc: int, axis: str) -> bool:
    """Every entry of W (..., N, N) has its unit's sign: columns (axis "pre") or rows ("post"); first n_exc >= 0."""
    if axis == "post":
        W = np.swapaxes(W, -1, -2)
    return bool(np.all(W[..., :, :n_exc] >= 0) and np.all(W[..., :, n_exc:] <= 0))


@pytest.mark.parametrize("axis", ["pre", "post"])
@pytest.mark.parametrize("init", ["orthogonal", "normal"])
@pytest.mark.parametrize("sparsity", [0.0, 0.3])
def test_project_init_is_the_projected_plain_matrix(axis, init, sparsity):
    cfg = NetConfig(
        n_in=2, n_out=1, units=12, init=init, sparsity=sparsity, dale_axis=axis, nonneg_input=True, **PROJECT
    )
    plain_cfg = NetConfig(n_in=2, n_out=1, units=12, init=init, sparsity=sparsity)
    key = jax.random.key(4)
    p, plain = init_params(key, cfg, 1.2), init_params(key, plain_cfg, 1.2)
    W, W_plain = np.asarray(p["W_rec"]), np.asarray(plain["W_rec"])
    signs = np.where(np.arange(12) < cfg.n_exc, 1.0, -1.0)
    grid = signs[None, :] if axis == "pre" else signs[:, None]
    np.testing.assert_array_equal(W, np.where(W_plain * grid >= 0, W_plain, 0.0))
    np.testing.assert_array_equal(p["W_in"], np.maximum(plain["W_in"], 0.0))
    for k in ("W_out", "b_out"):
        np.testing.assert_array_equal(p[k], plain[k])
    if sparsity:
        np.testing.assert_array_equal(p["rec_mask"], plain["rec_mask"])
        assert np.all(W[np.asarray(p["rec_mask"]) == 0] == 0)
    else:  # the plain matrix is the plain initializer's, and the projection removed about half of it
        np.testing.assert_array_equal(W_plain, init_recurrent(jax.random.split(key, 3)[1], 12, init, 1.2))
        assert 0.3 < np.mean(W == 0) < 0.7
    assert _signs_hold(W, cfg.n_exc, axis)
    np.testing.assert_array_equal(recurrent_weights(p, cfg), W)  # the free matrix is the effective one


def test_projection_touches_only_the_constrained_entries():
    """Wrong-signed W_rec entries (and negative W_in with nonneg_input) become 0; everything else is left as it is."""
    cfg = NetConfig(n_in=2, n_out=1, units=6, bias=True, train_h0=True, dale_axis="post", nonneg_input=True, **PROJECT)
    p0 = init_params(jax.random.key(0), cfg)
    p = {k: jax.random.normal(jax.random.key(i), v.shape) for i, (k, v) in enumerate(p0.items())}
    p["signs"] = p0["signs"]  # the unit signs are fixed data, not a weight
    q = project_constraints(p, cfg)
    W, Wq = np.asarray(p["W_rec"]), np.asarray(q["W_rec"])
    rows_sign = np.where(np.arange(6) < cfg.n_exc, 1.0, -1.0)[:, None]
    right = W * rows_sign >= 0
    np.testing.assert_array_equal(Wq[right], W[right])
    assert np.all(Wq[~right] == 0) and np.any(~right)
    np.testing.assert_array_equal(q["W_in"], np.maximum(p["W_in"], 0.0))
    for k in ("W_out", "b_out", "b", "h0", "signs"):
        np.testing.assert_array_equal(q[k], p[k])
    jax.tree.map(np.testing.assert_array_equal, project_constraints(q, cfg), q)  # idempotent
    # without nonneg_input W_in is free; without any projection nothing changes
    free_in = dataclasses.replace(cfg, nonneg_input=False)
    np.testing.assert_array_equal(project_constraints(p, free_in)["W_in"], p["W_in"])
    for other in (NetConfig(n_in=2, n_out=1, units=6, bias=True, train_h0=True, dale=True), NetConfig(2, 1, 6)):
        assert project_constraints(p, other) is p


@pytest.fixture(scope="module", params=[("pre", False), ("post", True)], ids=["pre", "post_nonneg_input"])
def projected(request):
    """Eight members of N = 16, 32 updates at lr 1e-2 (large steps, so that signs are pushed), Dale by projection,
    a mask; the sign per presynaptic unit, or per receiving unit with W_in >= 0 (the original E/I code's constraints).
    W_out sign changes are rare in 32 updates (1-2 of 4 members measured): eight members make one likely."""
    axis, nonneg_input = request.param
    cfg = TrainConfig(
        TASK,
        units=16,
        epochs=4,
        batch_size=8,
        n_train=64,
        threshold=0,
        sparsity=0.3,
        dale_axis=axis,
        nonneg_input=nonneg_input,
        **PROJECT,
    )
    return cfg, fit(cfg, 0, range(8), hparams=Hparams(lr=1e-2))


def test_projection_keeps_signs_after_training_and_leaves_the_rest_free(projected):
    cfg, ens = projected
    net = cfg.net
    W0, W1 = ens.params_init["W_rec"], ens.params_final["W_rec"]
    assert np.abs(W1 - W0).max() > 0.05  # it trained
    assert _signs_hold(W1, net.n_exc, net.dale_axis)
    other = "post" if net.dale_axis == "pre" else "pre"
    assert not _signs_hold(W1, net.n_exc, other)  # the sign is fixed along the named axis only
    assert np.any((W0 != 0) & (W1 == 0))  # the projection acted during training, not only at init
    assert np.any((W0 == 0) & (W1 != 0) & (ens.params_final["rec_mask"] == 1))  # zeroed entries may come back
    np.testing.assert_array_equal(effective_params(ens.params_final, net)["W_rec"], W1)  # free matrix = effective
    mask = ens.params_final["rec_mask"]
    np.testing.assert_array_equal(mask, ens.params_init["rec_mask"])
    assert np.all(W1[mask == 0] == 0)
    free = ("W_out",) if net.nonneg_input else ("W_in", "W_out")
    for k in free:  # unconstrained: some entries change sign
        flipped = np.sign(ens.params_final[k]) * np.sign(ens.params_init[k]) < 0
        assert np.any(flipped), k
    # b_out starts at 0 and trains (the projection passes negative values of it unchanged: the test above)
    assert np.all(ens.params_init["b_out"] == 0) and np.all(ens.params_final["b_out"] != 0)
    if net.nonneg_input:
        W_in0, W_in1 = ens.params_init["W_in"], ens.params_final["W_in"]
        assert np.all(W_in0 >= 0) and np.all(W_in1 >= 0)
        assert np.any((W_in0 == 0) & (W_in1 > 0))  # an entry zeroed at init came back positive
        assert np.any((W_in0 == 0) & (W_in1 == 0))  # and one the gradient pushed below 0 was held at 0


def test_noise_changes_loss_only_when_on_and_is_deterministic():
    trials = _trials()
    losses = {}
    for name, kw in (("off", {}), ("rec", dict(rec_noise=0.5)), ("in", dict(in_noise=0.5))):
        cfg = TrainConfig(TASK, units=8, batch_size=8, n_train=8, alpha=0.5, **kw)
        params = init_params(jax.random.key(0), cfg.net)
        loss_fn = jax.jit(_loss(cfg))
        a, b, c = (loss_fn(params, trials, jax.random.key(k))[1] for k in (1, 1, 2))
        assert float(a) == float(b)  # same key, same noise
        assert (float(a) == float(c)) == (name == "off")  # another key changes the loss only with noise on
        losses[name] = float(a)
    assert losses["rec"] != losses["off"] and losses["in"] != losses["off"]


def test_l2_penalties_add_the_stated_terms():
    trials = _trials()
    base = TrainConfig(TASK, units=8, batch_size=8, n_train=8, dale=True)
    cfg = TrainConfig(TASK, units=8, batch_size=8, n_train=8, dale=True, l2_weights=0.01, l2_rates=0.1)
    params = init_params(jax.random.key(0), cfg.net)
    params = {**params, "W_rec": params["W_rec"] - 0.02}
    total, mse = _loss(cfg)(params, trials, jax.random.key(0))
    total0, mse0 = _loss(base)(params, trials, jax.random.key(0))
    states = jax.vmap(lambda x: forward(params, x, cfg.net)[1])(trials.inputs)
    W_eff = recurrent_weights(params, cfg.net)
    want = 0.01 * sum(float(jnp.sum(w**2)) for w in (params["W_in"], W_eff, params["W_out"]))
    want += 0.1 * float(jnp.mean(states**2))
    assert float(mse) == pytest.approx(float(mse0)) and float(total0) == pytest.approx(float(mse0))
    assert float(total - mse) == pytest.approx(want, rel=1e-4)
    assert float(penalties(params, states, cfg, *_one_member(cfg))) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_cells_train_and_member_is_independent_of_ensemble(cell):
    cfg = TrainConfig(TASK, units=8, epochs=4, batch_size=8, n_train=64, threshold=0, cell=cell, train_h0=True)
    ens = fit(cfg, 0, range(2))
    alone = fit(cfg, 0, [1])
    assert np.all(np.isfinite(ens.loss)) and np.all(ens.loss[:, -1] < ens.loss[:, 0])
    for k in ens.params_final:
        np.testing.assert_allclose(alone.params_final[k][0], ens.params_final[k][1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(e_fraction=1.0), "e_fraction"),
        (dict(e_fraction=0.0), "e_fraction"),
        (dict(sparsity=1.0), "sparsity"),
        (dict(sparsity=-0.1), "sparsity"),
        (dict(cell="rnn2"), "cell"),
        (dict(cell="gru", dale=True), "dale"),
        (dict(cell="lstm", alpha=0.5), "alpha"),
        (dict(cell="gru", rec_noise=0.1), "rec_noise"),
        (dict(rec_noise=-1.0), "rec_noise"),
        (dict(l2_rates=float("nan")), "l2_rates"),
        (dict(dale=True, units=3, e_fraction=0.9), "dale"),
        (dict(dale=True, dale_method="clip"), "unknown dale_method 'clip'; allowed: abs, project"),
        (dict(dale=True, dale_axis="row"), "unknown dale_axis 'row'; allowed: pre, post"),
        (dict(dale_method="project"), r"dale_method='project' / dale_axis='pre' need dale=True"),
        (dict(dale_axis="post"), r"need dale=True"),
        (
            dict(dale=True, dale_axis="post"),
            r"dale_axis='post' \(sign per receiving unit\) needs dale_method='project'",
        ),
        (dict(cell="gru", nonneg_input=True), "nonneg_input=True applies to the rate RNN only"),
    ],
)
def test_bad_constraint_configs(kw, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(TASK, **kw)


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["train", "and", "--out", "x", "--dale", "--e-fraction", "1.5"], "e_fraction must lie in (0, 1), got 1.5"),
        (["train", "and", "--out", "x", "--sparsity", "1"], "sparsity (fraction of recurrent connections removed)"),
        (["train", "and", "--out", "x", "--cell", "gru", "--dale"], "dale=True applies to the rate RNN only"),
        (["train", "and", "--out", "x", "--cell", "cnn"], "argument --cell: invalid choice"),
        (["train", "and", "--out", "x", "--rec-noise", "-1"], "--rec-noise: rec_noise must be >= 0, got -1"),
        (["train", "and", "--out", "x", "--cell", "lstm", "--rec-noise", "0.1"], "rec_noise applies to the rate RNN"),
        (["study", "success_table", "--sparsity", "-0.2"], "sparsity (fraction of recurrent connections removed)"),
        (["study", "success_table", "--dale", "--e-fraction", "0"], "e_fraction must lie in (0, 1)"),
        (["study", "lesion", "--dale"], "study 'lesion' takes no network option dale"),
        (["study", "success_table", "--e-fraction", "0.5"], "e_fraction needs dale"),
        (["study", "spectral_migration", "--cell", "gru"], "takes no network option cell"),
        (["train", "and", "--out", "x", "--dale", "--dale-axis", "post"], "dale_axis='post' (sign per receiving unit)"),
        (["train", "and", "--out", "x", "--dale-method", "project"], "need dale=True (Dale's law is off)"),
        (["train", "and", "--out", "x", "--dale", "--dale-method", "relu"], "argument --dale-method: invalid choice"),
        (["train", "and", "--out", "x", "--cell", "lstm", "--nonneg-input"], "nonneg_input=True applies to the rate"),
    ],
)
def test_cli_rejects_bad_constraints_before_compiling(argv, expect, tmp_path, capsys, monkeypatch):
    from jaxrnn.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing written, nothing trained


def test_cli_train_flags_reach_the_config():
    from jaxrnn.cli import _train_config, build_parser

    argv = ["train", "and", "--out", "x", "--dale", "--dale-method", "project", "--dale-axis", "post"]
    config, _ = _train_config(build_parser().parse_args([*argv, "--e-fraction", "0.5", "--nonneg-input"]))
    net = config.net
    assert (net.dale, net.dale_method, net.dale_axis, net.e_fraction, net.nonneg_input) == (
        True,
        "project",
        "post",
        0.5,
        True,
    )
    default, _ = _train_config(build_parser().parse_args(["train", "and", "--out", "x", "--dale"]))
    assert (default.net.dale_method, default.net.dale_axis, default.net.nonneg_input) == ("abs", "pre", False)


@pytest.mark.slow
def test_dale_and_ensemble_learns():
    """8 Dale (E fraction 0.8, tanh) AND networks, N = 50, leak a = 0.2 (Song, Yang & Wang 2016), 8 epochs × 3,200
    trials at lr 1e-3: at least 75% succeed and every column keeps its sign. Measured at a = 1 (the 2019 model):
    0 of 8 at lr 1e-3, 1 of 16 at lr 3e-4 (8 epochs) and 0 of 8 at lr 3e-4 (16 epochs), all stuck at 75% accuracy
    (the all-zero answer)."""
    import time

    from jaxrnn.training.evaluate import evaluate
    from jaxrnn.training.train import Hparams

    cfg = TrainConfig(make_task("and"), epochs=8, n_train=3200, dale=True, alpha=0.2)
    t = time.perf_counter()
    ens = fit(cfg, 0, range(8), hparams=Hparams(lr=1e-3))
    ev = evaluate(cfg.task, cfg.net, ens.params_final)
    elapsed = time.perf_counter() - t
    print(
        f"Dale AND ensemble (a = 0.2): 8 members x {cfg.epochs} epochs x {cfg.n_train} trials at lr 1e-3 in "
        f"{elapsed:.0f} s; success {ev.success.mean():.2f} ({int(ev.success.sum())}/8), accuracy "
        f"{np.round(ev.accuracy, 3).tolist()}, final loss {np.round(ens.loss[:, -1], 4).tolist()}"
    )
    W = np.asarray(effective_params(ens.params_final, cfg.net)["W_rec"])
    assert np.all(W[:, :, : cfg.net.n_exc] >= 0) and np.all(W[:, :, cfg.net.n_exc :] <= 0)
    assert ev.success.mean() >= 0.75
