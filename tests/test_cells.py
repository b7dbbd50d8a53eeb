"""Flax cells as jaxrnn ensembles (`jaxrnn.cells`): a user's own cell trains through `fit`, members are independent
of the ensemble, a Flax GRU run directory resumes, config.json records the cell, the command line refuses bad cells in
one line, `RateRNNCell` is the rate RNN, and the rate RNN's own path still gives the parameters it gave before the
Flax path existed (`tests/data/rate_rnn_reference.npz`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest

import jaxrnn
from jaxrnn import cells, cli, runs
from jaxrnn.cells.network import forward, init_params, recurrent_weights, require_rate_rnn
from jaxrnn.runs import store
from jaxrnn.tasks import make_task
from jaxrnn.training import budget
from jaxrnn.training.train import Hparams, TrainConfig, fit, member

REFERENCE = Path(__file__).parent / "data" / "rate_rnn_reference.npz"
TASK = make_task("and", T=40, pulse_start=5, response_start=25)
TINY = dict(epochs=2, batch_size=4, n_train=16)


class Elman(nn.RNNCellBase):
    """A minimal user cell: h_t = tanh(W_ih x_t + b + W_hh h_{t-1})."""

    features: int

    @nn.compact
    def __call__(self, carry, x):
        h = jnp.tanh(nn.Dense(self.features, name="ih")(x) + nn.Dense(self.features, use_bias=False, name="hh")(carry))
        return h, h

    def initialize_carry(self, rng, input_shape):
        return jnp.zeros((*input_shape[:-1], self.features), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1


#: the rate-RNN configs of the reference file, as they were made (seed 11, 3 members)
REFERENCE_CONFIGS = {
    "plain": dict(units=8, **TINY),
    "constrained": dict(
        units=8,
        **TINY,
        bias=True,
        alpha=0.5,
        dale=True,
        sparsity=0.25,
        train_h0=True,
        rec_noise=0.05,
        in_noise=0.05,
        l2_weights=1e-3,
        l2_rates=1e-3,
    ),
    "projected": dict(
        units=8, **TINY, dale=True, dale_method="project", dale_axis="post", nonneg_input=True, activation="softplus"
    ),
}


@pytest.mark.parametrize("name", list(REFERENCE_CONFIGS))
def test_rate_rnn_parameters_are_unchanged(name, optimized):
    """The rate RNN trains to the very parameters it trained to before the Flax cell path (same jax: bit-identical)."""
    ref = np.load(REFERENCE)
    exact = str(ref["_jax"]) == f"{jax.__version__} {jaxlib.__version__}"
    ens = fit(TrainConfig(TASK, **REFERENCE_CONFIGS[name]), seed=11, members=3)
    stored = {tuple(k.split("/", 2)[1:]) for k in ref.files if k.startswith(name + "/params_")}
    got = {which: getattr(ens, which) for which in ("params_init", "params_final")}
    assert {(w, k) for w, k in stored} == {(w, k) for w in got for k in got[w]}
    for which, key in stored:
        want, have = ref[f"{name}/{which}/{key}"], np.asarray(got[which][key])
        if exact:
            np.testing.assert_array_equal(have, want, err_msg=f"{name} {which} {key}")
        else:  # another jax version may round differently
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {which} {key}")
    np.testing.assert_allclose(ens.loss, ref[f"{name}/loss"], rtol=0 if exact else 1e-5)


def test_user_cell_trains_as_an_ensemble():
    cfg = TrainConfig(TASK, cell=Elman(features=6), epochs=5, batch_size=8, n_train=32)
    assert cfg.units == 6  # taken from the cell
    ens = fit(cfg, seed=0, members=3, hparams=Hparams(lr=1e-2))
    assert set(ens.params_final) == {"cell/ih/kernel", "cell/ih/bias", "cell/hh/kernel", "h0", "W_out", "b_out"}
    assert ens.params_final["cell/hh/kernel"].shape == (3, 6, 6) and ens.params_final["W_out"].shape == (3, 1, 6)
    assert np.all(np.isfinite(ens.loss)) and np.all(ens.loss[:, -1] < 0.8 * ens.loss[:, 0])
    assert not np.allclose(ens.params_init["cell/hh/kernel"][0], ens.params_init["cell/hh/kernel"][1])
    np.testing.assert_array_equal(ens.params_final["h0"], 0.0)  # the initial carry is not trained without train_h0
    ev = jaxrnn.evaluate(TASK, cfg.net, ens.params_final, n_trials=16)  # evaluation runs the cell too
    assert ev.mse.shape == (3,) and np.all(np.isfinite(ev.mse))


def test_member_in_an_ensemble_equals_the_member_alone():
    cfg = TrainConfig(TASK, units=6, cell="gru", **TINY)
    ens, alone = fit(cfg, seed=2, members=4), fit(cfg, seed=2, members=[2])
    for k in ens.params_final:
        np.testing.assert_allclose(alone.params_final[k][0], ens.params_final[k][2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone.loss[0], ens.loss[2], rtol=1e-5)
    # chunks do not change a member either
    chunked = fit(cfg, seed=2, members=4, chunk_size=2)
    for k in ens.params_final:
        np.testing.assert_allclose(chunked.params_final[k], ens.params_final[k], rtol=1e-5, atol=1e-6)


def test_flax_gru_run_directory_resumes(tmp_path):
    cfg = TrainConfig(TASK, cell="gru", units=5, epochs=3, batch_size=4, n_train=16)

    def interrupt(p):
        if not p.compiling:  # after the first epoch's checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.train_run(tmp_path / "a", cfg, seed=0, members=2, n_eval=16, checkpoint_every=1, progress=interrupt)
    assert (tmp_path / "a" / store.CHECKPOINT).exists()
    resumed = runs.train_run(tmp_path / "a", cfg, seed=0, members=2, n_eval=16, checkpoint_every=1)
    whole = runs.train_run(tmp_path / "b", cfg, seed=0, members=2, n_eval=16, checkpoint_every=1)
    assert resumed.origin == "resumed" and whole.origin == "trained"
    for k in whole.ensemble.params_final:
        np.testing.assert_array_equal(resumed.ensemble.params_final[k], whole.ensemble.params_final[k])
    loaded = jaxrnn.open_run(tmp_path / "a")
    assert loaded.config == cfg and json.loads((tmp_path / "a" / store.CONFIG).read_text())["config"]["cell"] == "gru"
    assert "cell/hn/kernel" in loaded.ensemble.params_final and loaded.evaluation is not None
    with pytest.raises(ValueError, match="needs the rate RNN's recurrent matrix W_rec; cell=gru has none"):
        require_rate_rnn(loaded.config.net, "fixed-point analysis")
    with pytest.raises(ValueError, match="has no single recurrent matrix"):
        recurrent_weights(member(loaded.ensemble.params_final, 0), loaded.config.net)
    states = jax.vmap(lambda x: forward(member(loaded.ensemble.params_final, 0), x, cfg.net)[1])(jnp.zeros((2, 40, 2)))
    assert states.shape == (2, 40, 5)
    # a run directory of jaxrnn's former own GRU layout is refused by name
    arrays = dict(np.load(tmp_path / "a" / store.PARAMS))
    old = {f"{s}/{k}": np.zeros((2, 3)) for s in ("init", "final") for k in ("W_x", "W_h", "b_h", "W_out", "b_out")}
    np.savez(tmp_path / "a" / store.PARAMS, **old)
    with pytest.raises(store.StoreError, match="the old gru layout .W_x, W_h, b_h"):
        store.load_run(tmp_path / "a")
    np.savez(tmp_path / "a" / store.PARAMS, **arrays)


def test_config_json_records_the_cell():
    instance = nn.GRUCell(features=6)
    for cell, record in [
        ("gru", "gru"),
        ("jaxrnn.cells:RateRNNCell", "jaxrnn.cells:RateRNNCell"),  # a factory: the class called with the units
        (instance, {"class": "flax.linen.recurrent:GRUCell", "fields": {"features": 6, "dtype": None}}),
        (Elman(6), {"class": f"{Elman.__module__}:Elman", "fields": {"features": 6}}),
    ]:
        cfg = TrainConfig(TASK, cell=cell, units=6, **TINY)
        d = json.loads(json.dumps(store.config_to_dict(cfg)))
        assert d["cell"] == record
        back = store.config_from_dict(d)
        assert back == cfg and back.net.cell == cfg.net.cell
        meta = store.run_meta(cfg, seed=0, hparams=Hparams(), members=np.arange(2), complete=True)
        assert store.same_run(json.loads(json.dumps(meta)), back, 0, Hparams(), np.arange(2)) == []
    meta = store.run_meta(TrainConfig(TASK, cell=instance, **TINY), seed=0, hparams=Hparams(), members=range(2),
                          complete=True)  # fmt: skip
    other = TrainConfig(TASK, cell=nn.GRUCell(features=7), **TINY)
    assert store.same_run(meta, other, 0, Hparams(), range(2)) == ["units", "cell"]
    with pytest.raises(ValueError, match="field gate_fn cannot be stored in config.json.*MODULE:ATTR"):
        TrainConfig(TASK, cell=nn.GRUCell(features=6, gate_fn=nn.tanh), **TINY)
    with pytest.raises(ValueError, match=r"has 6 features but units=8"):
        TrainConfig(TASK, cell=instance, units=8, **TINY)
    with pytest.raises(ValueError, match="gain and init .* apply to the rate RNN only"):
        fit(TrainConfig(TASK, cell="gru", units=4, **TINY), 0, 2, Hparams(init="normal"))
    assert TrainConfig(TASK, cell="lstm", **TINY).units == 50  # a name takes the preset's units
    assert budget.cell_kind(TrainConfig(TASK, cell=instance, **TINY)) == "gru"
    assert budget.cell_kind(TrainConfig(TASK, cell=Elman(6), **TINY)) == "lstm"


def test_rate_rnn_cell_equals_the_rate_rnn_forward():
    net = jaxrnn.NetConfig(n_in=2, n_out=1, units=7, alpha=0.3, bias=True)
    params = init_params(jax.random.key(4), net)
    params["b"] = 0.1 * jax.random.normal(jax.random.key(5), (7,))
    x = jax.random.normal(jax.random.key(6), (30, 2))
    _, want = forward(params, x, net)
    cell = cells.RateRNNCell(features=7, alpha=0.3, use_bias=True)
    variables = {"params": {k: params[k] for k in ("W_in", "W_rec", "b")}}
    _, got = jax.lax.scan(lambda h, xt: cell.apply(variables, h, xt), cell.initialize_carry(None, (2,)), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # inside another Flax model, batched
    batched = nn.RNN(cell).apply({"params": {"cell": variables["params"]}}, x[None])
    np.testing.assert_allclose(batched[0], want, rtol=1e-5, atol=1e-6)
    shapes = jax.eval_shape(lambda k: cell.init(k, jnp.zeros(7), jnp.zeros(2)), jax.random.key(0))["params"]
    assert {k: v.shape for k, v in shapes.items()} == {"W_in": (7, 2), "W_rec": (7, 7), "b": (7,)}


MYCELLS = """
import flax.linen as nn

good = nn.GRUCell(features=4)
value = 3


def factory(units):
    return nn.LSTMCell(features=units)


def not_a_factory(units):
    return "a string"
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A current directory holding mycells.py and broken_cells.py (not on sys.path), forgotten afterwards."""
    (tmp_path / "mycells.py").write_text(MYCELLS)
    (tmp_path / "broken_cells.py").write_text('raise RuntimeError("boom")\n')
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("mycells", "broken_cells"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "cell, expect",
    [
        ("nosuchmodule:cell", "cell 'nosuchmodule:cell': no module named 'nosuchmodule'"),
        ("mycells:missing", "module 'mycells' has no attribute 'missing'"),
        ("mycells:value", "cell 'mycells:value' is an int, not a flax.linen.RNNCellBase instance or a factory"),
        ("mycells:not_a_factory", "gave a str, not a flax.linen.RNNCellBase"),
        ("mycells:good", "has 4 features but units=8"),
        ("broken_cells:cell", "importing 'broken_cells' failed: RuntimeError: boom"),
        ("cnn", "argument --cell: invalid choice: 'cnn'"),
    ],
)
def test_cli_bad_cells_exit_2_with_one_line(here, capsys, cell, expect):
    argv = ["train", "and", "--cell", cell, "--units", "8", "--epochs", "1", "--out", "run", "--no-progress"]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and expect in err and err.count("\n") == 1 and out == "", err
    assert not (here / "run").exists()


def test_cli_takes_a_module_cell(here):
    """`--cell MODULE:ATTR` from the current directory: an instance sets the units, a factory takes --units."""
    args = cli.build_parser().parse_args(["train", "and", "--cell", "mycells:good", "--out", "x"])
    config, _ = cli._train_config(args)
    assert config.units == 4 and store.config_to_dict(config)["cell"] == "mycells:good"
    args = cli.build_parser().parse_args(["train", "and", "--cell", "mycells:factory", "--units", "6", "--out", "x"])
    config, _ = cli._train_config(args)
    assert config.net.units == 6 and cells.resolve(config.cell, 6) == nn.LSTMCell(features=6)


INIT_MANY_TIMES = """
import numpy as np
from jaxrnn import TrainConfig, make_task
from jaxrnn.training import train
config = TrainConfig(make_task("and"), units=50, n_train=128, batch_size=128, threshold=0.0, cell="gru")
for seed in range(40):
    train.init_ensemble(config, seed, np.arange(16))
print("done")
"""


def test_a_gru_ensemble_initialises_without_deadlock(tmp_path):
    """A GRU's init holds 3 independent QRs (its orthogonal recurrent kernels); batched over the members, they
    deadlocked XLA's CPU thread pool on 2 cores (every thread idle, 40 inits of 16 members hung in 3 of 3 processes).
    Mapped over the members they do not: 40 inits finish (here in about a second)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", INIT_MANY_TIMES], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("40 GRU ensemble inits did not finish in 120 s: the init program deadlocked")
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
