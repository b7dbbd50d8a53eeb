"""Keras interop: the reader against Keras' own outputs and a NumPy SimpleRNN, the reference networks of the original
studies on jaxrnn's task presets (the contract for those presets), their initializers, import to a run directory,
export, and bad input.

Reference files are jaxrnn's package data (`jaxrnn.reference`). The Keras 3 fixtures in tests/data/ were written by
scripts/make_keras_fixtures.py: no Keras is needed for them. The slow replay of the trainer through Keras 3 itself
(`test_trainer_equals_keras_replay`) needs the `keras` extra and skips without.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn import reference
from jaxrnn.cells.network import NetConfig, init_recurrent, outputs
from jaxrnn.interop.keras import KerasError, export_keras, import_keras, read_keras
from jaxrnn.runs import store
from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import heldout_trials

DATA = Path(__file__).parent / "data"
REFERENCE = Path(reference.root())  # package data in a source or wheel install (a real folder)
NETS_2019 = REFERENCE / "jarne_laje_2019" / "networks"
FF3 = REFERENCE / "jarne_2023_flipflop3" / "networks" / "flipflop3_N400_orthogonal"

# What the original generators (katejarne/RNN_study_with_keras) say about these presets, measured with the reference
# networks on 512-2048 trials: T = 200 for AND/OR/NOT in the generators the training scripts import (out_gap 130;
# only code_paper_rep's AND plotting copy has 140, T = 210); T changes a network's distance by < 0.01 and only the
# all-zero figure (AND 2.85 vs 2.96, OR 8.6 vs 8.9, NOT 5.8 vs 6.0), whose README values come from small samples
# (the original averaged 10 trials; AND 3.4 = 3 of 10 trials "11" at T = 200). The published gate generators have
# their input-noise line commented out, and the README's gate figures match noise-free trials (AND 0.31/0.52/0.33,
# OR 0.58, NOT 0.88) better than noisy ones (AND 0.52/0.80, OR 0.84, NOT 0.96); flip-flop (1.83 with noise 0.1,
# 1.65 without) and time reproduction (0.97 with target noise, 0.80 without) match with their noise. The 1-bit
# flip-flop generator matches jaxrnn's exactly (turns at 50 + 120 k, target from 20 steps after the pulse, 0.01
# before the first, channel 0 = reset), and so does NOT (T = 200, baseline 0.01, target 1 from t = 70 without pulse).
#: reference network -> (task, task params: the noise it was trained with, README distance range (lo, hi))
REFERENCE_NETS = {
    "and_noise_orthogonal_04": ("and", {}, (0.36, 0.56)),
    "and_noise_orthogonal_14": ("and", {}, (0.36, 0.56)),
    "and_nonoise_normal_07": ("and", {"noise": 0.0}, (0.36, 0.56)),
    "or_noise_orthogonal_01": ("or", {}, (0.60, 0.60)),
    "not_noise_orthogonal_17": ("not", {}, (0.84, 0.92)),
    "flipflop_noise_orthogonal_06": ("flipflop", {}, (1.8, 1.8)),
    "pulse_orthogonal_03": ("time_reproduction", {}, (0.96, 0.96)),
}
ALL_REFERENCE_FILES = [NETS_2019 / name for name in REFERENCE_NETS] + [FF3]
FIXTURES = ("rnn_bias_out2", "rnn_nobias_out1", "rnn_named_out3")


_batch_outputs = jax.jit(jax.vmap(outputs, in_axes=(None, 0, None)), static_argnums=2)


def _jax_outputs(model, inputs: np.ndarray) -> np.ndarray:
    """jaxrnn's readout (B, T, n_out) of a read model on inputs (B, T, n_in)."""
    cfg = NetConfig(n_in=model.n_in, n_out=model.n_out, units=model.units, bias=model.bias)
    params = jax.tree.map(jnp.asarray, model.params)
    return np.asarray(_batch_outputs(params, jnp.asarray(inputs), cfg))


# ----------------------------------------------------------------------------------------------------------------
# Keras 3 fixtures: jaxrnn's forward pass equals Keras' own predictions.


@pytest.mark.parametrize("ext", ["h5", "keras"])
@pytest.mark.parametrize("name", FIXTURES)
def test_keras3_fixture_matches_keras_predictions(name, ext):
    saved = np.load(DATA / f"{name}.npz")
    model = read_keras(DATA / f"{name}.{ext}")
    out = _jax_outputs(model, saved["inputs"])
    assert out.shape == saved["outputs"].shape
    assert np.max(np.abs(out - saved["outputs"])) <= 1e-5


def test_keras3_fixture_metadata():
    with_bias, without, named = (read_keras(DATA / f"{n}.h5") for n in FIXTURES)
    assert with_bias.bias and "b" in with_bias.params and with_bias.n_out == 2
    assert not without.bias and "b" not in without.params and without.n_out == 1
    assert (named.units, named.n_in, named.n_out) == (6, 2, 3)
    assert with_bias.init == "orthogonal" and named.init == "normal" and named.gain == pytest.approx(1.0, rel=1e-6)
    assert named.optimizer["class_name"] == "Adam" and named.optimizer["learning_rate"] == pytest.approx(1e-4)
    assert without.optimizer == {}  # never compiled: no training_config
    assert named.keras_version.startswith("3.")
    # the two formats hold the same arrays and optimizer
    for name in FIXTURES:
        a, b = read_keras(DATA / f"{name}.h5"), read_keras(DATA / f"{name}.keras")
        assert a.optimizer == b.optimizer and (a.init, a.gain, a.bias) == (b.init, b.gain, b.bias)
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])


@pytest.mark.parametrize("ext", ["h5", "keras"])
@pytest.mark.parametrize(
    "name, message",
    [
        ("lstm", r"unsupported layer LSTM"),
        ("stacked", r"unsupported stacked recurrent layers \['SimpleRNN', 'SimpleRNN', 'Dense'\]"),
        ("relu", r"unsupported SimpleRNN activation 'relu'"),
    ],
)
def test_unsupported_models_name_the_problem(name, ext, message):
    with pytest.raises(KerasError, match=message):
        read_keras(DATA / f"{name}.{ext}")


@pytest.mark.parametrize(
    "layer, option, value, message",
    [
        (0, "stateful", True, "unsupported SimpleRNN option stateful=True"),
        (0, "go_backwards", True, "unsupported SimpleRNN option go_backwards=True"),
        (0, "return_sequences", False, "unsupported SimpleRNN option return_sequences=False"),
        (1, "activation", "sigmoid", "unsupported Dense activation 'sigmoid'"),
    ],
)
def test_unsupported_options_name_the_problem(tmp_path, layer, option, value, message):
    path = export_keras(read_keras(DATA / "rnn_bias_out2.h5").params, tmp_path / "x.hdf5")
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"][layer]["config"][option] = value
        h5.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(KerasError, match=message):
        read_keras(path)


def test_bad_files(tmp_path):
    text = tmp_path / "notes.hdf5"
    text.write_text("not a model\n")
    with pytest.raises(KerasError, match="not an HDF5 file"):
        read_keras(text)
    bare = tmp_path / "bare.hdf5"
    with h5py.File(bare, "w") as h5:
        h5.attrs["layer_names"] = np.array([b"simple_rnn_1"])
        h5.create_dataset("x", data=np.zeros(3))
    with pytest.raises(KerasError, match="no model_weights group"):
        read_keras(bare)
    with pytest.raises(KerasError, match="no such file"):
        read_keras(tmp_path / "missing.h5")


# ----------------------------------------------------------------------------------------------------------------
# Reference networks: jaxrnn's forward pass equals a plain NumPy Keras SimpleRNN + Dense on the file's raw arrays.


def _raw_keras_arrays(path: Path) -> dict[str, np.ndarray]:
    """The file's arrays as Keras stores them, found with h5py alone: {"rnn/kernel": ..., "dense/bias": ...}."""
    out = {}
    with h5py.File(path, "r") as h5:
        for layer in h5["model_weights"].attrs["layer_names"]:
            layer = layer.decode()
            kind = "rnn" if layer.startswith("simple_rnn") else "dense"
            for wname in h5["model_weights"][layer].attrs["weight_names"]:
                wname = wname.decode()
                out[f"{kind}/{wname.split('/')[-1].split(':')[0]}"] = h5["model_weights"][layer][wname][()]
    return out


def _numpy_keras(raw: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Keras SimpleRNN(tanh, return_sequences) + Dense on one input sequence x (T, n_in), in float64:
    h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias), y_t = h_t @ dense_kernel + dense_bias."""
    kernel, rec = raw["rnn/kernel"].astype(np.float64), raw["rnn/recurrent_kernel"].astype(np.float64)
    bias = raw.get("rnn/bias", np.zeros(rec.shape[0])).astype(np.float64)
    h = np.zeros(rec.shape[0])
    ys = []
    for x_t in x.astype(np.float64):
        h = np.tanh(x_t @ kernel + h @ rec + bias)
        ys.append(h @ raw["dense/kernel"] + raw["dense/bias"])
    return np.array(ys)


@pytest.mark.parametrize("net", ALL_REFERENCE_FILES, ids=lambda p: p.name)
def test_reference_forward_equals_numpy_keras(net):
    path = net / "trained.hdf5"
    raw = _raw_keras_arrays(path)
    model = read_keras(path)
    x = np.random.default_rng(0).normal(0.0, 0.5, (40, model.n_in)).astype(np.float32)
    x[5:25] += 1.0  # a pulse, as in the tasks
    expected = _numpy_keras(raw, x)
    got = _jax_outputs(model, x[None])[0]
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert np.max(np.abs(expected)) > 0.05  # the comparison is not trivially about zeros


@pytest.mark.parametrize("net", ALL_REFERENCE_FILES, ids=lambda p: p.name)
def test_reference_optimizer_settings(net):
    opt = read_keras(net / "trained.hdf5").optimizer
    assert opt["class_name"] == "Adam"
    assert opt["learning_rate"] == pytest.approx(1e-4) and opt["decay"] == pytest.approx(1e-4)
    assert read_keras(net / "initial.hdf5").optimizer == {}  # saved before compiling


# ----------------------------------------------------------------------------------------------------------------
# Task fidelity: the reference networks on jaxrnn's paper presets (the contract for the presets).

N_FIDELITY = 512  # and_noise_orthogonal_14 sits at 0.80 (512 trials) against a limit of 0.84: keep the estimate tight


@functools.cache
def _trials(task, n_trials: int):
    """Held-out trials, sampled once per task (the AND networks share them)."""
    return heldout_trials(task, n_trials)


def _distances(task, model, n_trials: int = N_FIDELITY):
    """(network distance, all-zero-output distance, mse, trials, outputs) on held-out trials of `task`."""
    trials = _trials(task, n_trials)
    out = _jax_outputs(model, np.asarray(trials.inputs))
    targets = np.asarray(trials.targets)
    dist = np.mean(np.sqrt(np.sum((out - targets) ** 2, axis=(1, 2))))
    zero = np.mean(np.sqrt(np.sum(targets**2, axis=(1, 2))))
    return dist, zero, np.mean((out - targets) ** 2), targets, out


@pytest.mark.parametrize("name", REFERENCE_NETS)
def test_reference_network_fits_its_task_preset(name):
    task_name, params, (lo, hi) = REFERENCE_NETS[name]
    model = read_keras(NETS_2019 / name / "trained.hdf5")
    dist, zero, _, _, _ = _distances(make_task(task_name, **params), model)
    assert lo / 1.5 <= dist <= 1.5 * hi, f"{name}: distance {dist:.3f}, README {lo}-{hi}"
    assert dist < 0.5 * zero, f"{name}: distance {dist:.3f} not far below the all-zero output's {zero:.3f}"


@pytest.mark.parametrize("name", [n for n in REFERENCE_NETS if REFERENCE_NETS[n][0] in ("and", "or", "not")])
def test_reference_gates_match_readme_on_noise_free_trials(name):
    """The README's gate figures match noise-free trials closely (the published gate generators have their input
    noise line commented out): within 1.25x, where the noisy OR (0.84 vs 0.60) would fail."""
    task_name, _, (lo, hi) = REFERENCE_NETS[name]
    model = read_keras(NETS_2019 / name / "trained.hdf5")
    dist, _, _, _, _ = _distances(make_task(task_name, noise=0.0), model)
    assert lo / 1.25 <= dist <= 1.25 * hi, f"{name}: noise-free distance {dist:.3f}, README {lo}-{hi}"


@pytest.mark.parametrize("name", [*REFERENCE_NETS, "flipflop3_N400_orthogonal"])
def test_reference_network_succeeds_under_the_success_rule(name):
    """Every original network succeeds on its preset under today's rule (calibration, tests/test_success_rules.py):
    >= 90% of held-out trials correct at the default tolerance 0.25 and a distance at most half the zero output's.
    Measured (512 trials; flip-flop 3: 128): accuracy 0.99-1.00, distance / zero output's 0.09-0.43; the smallest
    tolerance at which each still scores >= 90%: AND 0.1-0.15, OR 0.2, NOT 0.1, flip-flop 0.15, time reproduction
    0.2, 3-bit flip-flop 0.2."""
    from jaxrnn.training.evaluate import evaluate

    if name in REFERENCE_NETS:
        task_name, params, _ = REFERENCE_NETS[name]
        model, n = read_keras(NETS_2019 / name / "trained.hdf5"), N_FIDELITY
    else:
        task_name, params, model, n = "flipflop3", {}, read_keras(FF3 / "trained.hdf5"), 128
    cfg = NetConfig(n_in=model.n_in, n_out=model.n_out, units=model.units, bias=model.bias)
    ev = evaluate(make_task(task_name, **params), cfg, jax.tree.map(lambda a: jnp.asarray(a)[None], model.params), n)
    assert ev.success[0], (
        f"{name}: accuracy {ev.accuracy[0]:.3f}, distance {ev.distance[0]:.3f} / {ev.zero_distance[0]:.3f}"
    )
    assert ev.distance[0] <= 0.45 * ev.zero_distance[0]


def test_reference_flipflop3_fits_its_task_preset():
    model = read_keras(FF3 / "trained.hdf5")
    _, _, mse, targets, out = _distances(make_task("flipflop3"), model, 64)
    zero_mse = np.mean(targets**2)
    end_sign = np.mean(np.sign(out[:, -1]) == np.sign(targets[:, -1]))
    assert mse <= 0.03 and mse < 0.1 * zero_mse, f"mse {mse:.4f}, zero output {zero_mse:.3f}"
    assert end_sign >= 0.9, f"sign agreement at trial end {end_sign:.3f}"


# ----------------------------------------------------------------------------------------------------------------
# Initial files: the recurrent laws, and jaxrnn's initializers draw from the same ones.


def _initial(net: Path) -> dict[str, np.ndarray]:
    return read_keras(net / "initial.hdf5").params


@pytest.mark.parametrize("net", [p for p in ALL_REFERENCE_FILES if "orthogonal" in p.name], ids=lambda p: p.name)
def test_reference_initial_orthogonal(net):
    W = _initial(net)["W_rec"].astype(np.float64)
    np.testing.assert_allclose(W @ W.T, np.eye(W.shape[0]), atol=1e-5)


def test_reference_initial_normal_and_jaxrnn_draws_the_same_laws():
    stats = pytest.importorskip("scipy.stats")
    W_normal = _initial(NETS_2019 / "and_nonoise_normal_07")["W_rec"].astype(np.float64)
    N = W_normal.shape[0]
    assert np.std(W_normal) == pytest.approx(1 / np.sqrt(N), rel=0.05)
    assert abs(np.mean(W_normal)) < 3 / N  # 3 standard errors of the mean of N² entries of std 1/sqrt(N)
    assert np.max(np.abs(W_normal @ W_normal.T - np.eye(N))) > 0.3  # not orthogonal
    keys = jax.random.split(jax.random.key(0), 8)
    ours = {
        init: np.asarray(jax.vmap(lambda k, i=init: init_recurrent(k, N, i))(keys), np.float64)
        for init in ("normal", "orthogonal")
    }
    # entries: the same law (two-sample KS), and not the law of a normal with another std
    assert stats.ks_2samp(W_normal.ravel(), ours["normal"].ravel()).pvalue > 0.01
    assert stats.ks_2samp(W_normal.ravel(), 0.5 * ours["normal"].ravel()).pvalue < 1e-6
    # singular-value spectra: a normal matrix's (Marchenko-Pastur quarter circle) against the orthogonal's (all 1)
    sv = lambda W: np.linalg.svd(W, compute_uv=False)  # noqa: E731
    ref_sv = sv(W_normal)
    ours_sv = np.concatenate([sv(W) for W in ours["normal"]])
    assert stats.ks_2samp(ref_sv, ours_sv).pvalue > 0.01
    np.testing.assert_allclose(np.concatenate([sv(W) for W in ours["orthogonal"]]), 1.0, atol=1e-5)
    # orthogonal reference matrices and jaxrnn's orthogonal ones: the same entry law (Haar measure)
    ref_orth = np.concatenate([_initial(NETS_2019 / n)["W_rec"].ravel() for n in REFERENCE_NETS if "orthogonal" in n])
    assert stats.ks_2samp(ref_orth, ours["orthogonal"].ravel()).pvalue > 0.01
    # input kernels: Glorot uniform, limit sqrt(6 / (n_in + N)), as jaxrnn's glorot_uniform
    W_in = np.concatenate([_initial(NETS_2019 / n)["W_in"].ravel() for n in REFERENCE_NETS if "and" in n])
    limit = np.sqrt(6 / (2 + N))
    assert np.max(np.abs(W_in)) <= limit
    assert stats.kstest(W_in, stats.uniform(-limit, 2 * limit).cdf).pvalue > 0.01


# ----------------------------------------------------------------------------------------------------------------
# import_keras and export_keras.


def test_import_keras_writes_a_run_directory(tmp_path):
    files = [DATA / "rnn_nobias_out1.h5", DATA / "rnn_nobias_out1.keras"]
    written = import_keras(files, "and", tmp_path / "run", params={"T": 100}, n_trials=16)
    out = written.path
    run = store.load_run(out)
    assert run.evaluation is not None and run.evaluation_settings["trials"] == 16
    model = read_keras(files[0])
    assert run.members.tolist() == [0, 1]
    assert run.config.units == 6 and run.config.bias is False and run.config.task.T == 100
    ens = run.ensemble
    for k in model.params:
        assert ens.params_final[k].shape == (2, *model.params[k].shape)
        np.testing.assert_array_equal(ens.params_final[k][0], model.params[k])
        np.testing.assert_array_equal(ens.params_init[k], ens.params_final[k])  # no initial files given
    assert [Path(p).name for p in run.meta["extra"]["imported_from"]] == [f.name for f in files]
    rows = store.load_members_table(out)
    assert len(rows) == 2 and all(r["distance"] is not None and np.isfinite(r["distance"]) for r in rows)


def test_import_keras_rejects_mismatches(tmp_path):
    with pytest.raises(KerasError, match="do not fit task 'not'"):
        import_keras(DATA / "rnn_nobias_out1.h5", "not", tmp_path / "a")
    with pytest.raises(KerasError, match="differ from"):
        import_keras([DATA / "rnn_nobias_out1.h5", DATA / "rnn_bias_out2.h5"], "and", tmp_path / "b")
    with pytest.raises(KerasError, match="initial files for"):
        import_keras(DATA / "rnn_nobias_out1.h5", "and", tmp_path / "c", initial=[])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", ["rnn_bias_out2", "rnn_nobias_out1"])
def test_export_keras_round_trip(tmp_path, name):
    model = read_keras(DATA / f"{name}.h5")
    path = export_keras(model.params, tmp_path / "x.hdf5", optimizer={"class_name": "Adam", "lr": 1e-4, "decay": 1e-4})
    back = read_keras(path)
    assert back.params.keys() == model.params.keys()
    for k in model.params:
        np.testing.assert_array_equal(back.params[k], model.params[k])
    assert back.optimizer["learning_rate"] == pytest.approx(1e-4)
    with h5py.File(path) as h5:  # Keras 2 layout: Keras orientation, `:0` names
        assert h5["model_weights/simple_rnn_1/simple_rnn_1/kernel:0"].shape == (model.n_in, model.units)
        assert json.loads(h5.attrs["model_config"])["config"][0]["class_name"] == "SimpleRNN"


# ----------------------------------------------------------------------------------------------------------------
# The command line.


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxrnn.cli", "import-keras", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "text.hdf5").write_text("hello") and d / "text.hdf5", "not an HDF5 file"),
        (lambda d: DATA / "lstm.h5", "unsupported layer LSTM"),
        (lambda d: _bare_hdf5(d / "bare.hdf5"), "no model_weights group"),
    ],
    ids=["not_hdf5", "lstm", "no_model_weights"],
)
def test_cli_bad_input_exits_2(tmp_path, make, message):
    result = _cli(str(make(tmp_path)), "--task", "and", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run" / "config.json").exists()


def _bare_hdf5(path: Path) -> Path:
    with h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=np.zeros(2))
    return path


def test_cli_import_keras_reference(tmp_path):
    net = NETS_2019 / "and_noise_orthogonal_04"
    result = _cli(
        str(net / "trained.hdf5"),
        "--initial",
        str(net / "initial.hdf5"),
        "--task",
        "and",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    run = store.load_run(tmp_path / "run")
    for which, path in (("params_final", "trained.hdf5"), ("params_init", "initial.hdf5")):
        ref = read_keras(net / path).params
        assert getattr(run.ensemble, which).keys() == ref.keys()
        for k in ref:
            np.testing.assert_array_equal(getattr(run.ensemble, which)[k][0], ref[k])
    assert run.config.bias is False and run.config.init == "orthogonal" and run.config.decay == pytest.approx(1e-4)
    assert run.hparams.lr == pytest.approx(1e-4) and run.meta["extra"]["optimizer"]["class_name"] == "Adam"
    assert store.load_members_table(tmp_path / "run")[0]["success"] is True
    assert "imported from" in result.stdout and "trained.hdf5" in result.stdout and "20 epochs" not in result.stdout

    # show says where the network came from instead of a training protocol that was never run
    shown = subprocess.run([sys.executable, "-m", "jaxrnn.cli", "show", "run"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)  # fmt: skip
    assert shown.returncode == 0 and "imported from" in shown.stdout and "n_train" not in shown.stdout, shown.stdout
    assert run.meta["extra"]["protocol"].startswith("none: imported") and run.meta["extra"]["keras_version"]
    plotted = subprocess.run([sys.executable, "-m", "jaxrnn.cli", "plot", "run"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)  # fmt: skip
    assert plotted.returncode == 0 and "no loss.png: imported from" in plotted.stdout, plotted.stderr
    assert not (tmp_path / "run" / "figures" / "loss.png").exists()

    # a second import into the same folder is refused in the CLI's words; --overwrite replaces it
    again = [str(net / "trained.hdf5"), "--task", "and", "--out", str(tmp_path / "run")]
    refused = _cli(*again, cwd=tmp_path)
    assert refused.returncode == 2 and "give --overwrite" in refused.stderr and "overwrite=True" not in refused.stderr
    replaced = _cli(*again, "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    run = store.load_run(tmp_path / "run")
    assert run.meta["extra"]["initial_from"] is None and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ----------------------------------------------------------------------------------------------------------------
# The optimizer: jaxrnn's trainer against Keras 3 (the `keras` extra, JAX backend) fed the same batches.

#: Replay sizes: a small AND network, 4 epochs of 8 updates (32 updates), lr 1e-3 (larger steps than the paper's 1e-4
#: make optax's eps placement show more clearly against float32 rounding), the paper's decay 1e-4 and eps 1e-8.
REPLAY = dict(units=16, epochs=4, batch_size=8, n_train=64, threshold=0.0)
REPLAY_TASK = dict(T=40, pulse_start=5, response_start=25)
REPLAY_LR = 1e-3
#: Parameters after the replay agree to this (weights of order 0.5, whose float32 spacing is 6e-8). Measured on the
#: 2-core CPU: <= 6e-8 with `keras_adam` (both cases), 5.4e-6 (W_rec) with optax's Adam in its place.
REPLAY_ATOL = 5e-7
#: The original Excitatory-inhibitory protocol's constraints (katejarne/Excitatory-inhibitory): sign per receiving unit
#: by projection, half the units excitatory, input kernel >= 0, RNN bias, gradient clipping (small enough to act here).
ORIGINAL_EI = dict(dale=True, dale_method="project", dale_axis="post", e_fraction=0.5, nonneg_input=True, bias=True)


def _keras_replay(cfg, params_init: dict, member_key, lr: float) -> dict[str, np.ndarray]:
    """Train a Keras 3 SimpleRNN + Dense from `params_init` (one network, math orientation) on the batches that
    `jaxrnn.fit` gives the member of `member_key`, in the same order; return its parameters (math orientation).

    Adam with `InverseTimeDecay(lr, decay_steps=1, decay_rate=cfg.decay)` (Keras 2's legacy decay), eps `cfg.eps`,
    `global_clipnorm` for `cfg.clip_norm` (Keras 3's `clipnorm` clips each variable alone), MSE; Dale's "project"
    method and `nonneg_input` as Keras weight constraints, which Keras applies after every update, as the original.
    """
    import keras

    from jaxrnn.cells.network import dale_signs
    from jaxrnn.training.train import epoch_trial_keys

    net = cfg.net
    if net.dale:
        assert (net.dale_method, net.dale_axis) == ("project", "post")  # the only constraint replayed here
        signs = np.asarray(dale_signs(net))  # per receiving unit: a column of Keras' kernel (its transpose)

        class ReceivingSign(keras.constraints.Constraint):
            def __call__(self, w):
                return w * keras.ops.cast(w * signs[None, :] >= 0, w.dtype)

    rnn = keras.layers.SimpleRNN(
        net.units,
        return_sequences=True,
        use_bias=net.bias,
        kernel_constraint=keras.constraints.NonNeg() if net.nonneg_input else None,
        recurrent_constraint=ReceivingSign() if net.dale else None,
    )
    model = keras.Sequential([keras.Input((cfg.task.T, net.n_in)), rnn, keras.layers.Dense(net.n_out)])
    p = params_init
    rnn.set_weights([p["W_in"].T, p["W_rec"].T] + ([p["b"]] if net.bias else []))
    model.layers[1].set_weights([p["W_out"].T, p["b_out"]])
    schedule = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=cfg.decay)
    adam = keras.optimizers.Adam(schedule, beta_1=cfg.b1, beta_2=cfg.b2, epsilon=cfg.eps, global_clipnorm=cfg.clip_norm)
    model.compile(optimizer=adam, loss="mse")
    sample = jax.jit(jax.vmap(cfg.task.sample))
    for epoch in range(cfg.epochs):
        keys = epoch_trial_keys(member_key, cfg, epoch)
        for s in range(cfg.steps_per_epoch):
            trials = sample(keys[s])
            model.train_on_batch(np.asarray(trials.inputs), np.asarray(trials.targets))
    weights = rnn.get_weights()
    out = {"W_in": weights[0].T, "W_rec": weights[1].T, "W_out": model.layers[1].get_weights()[0].T}
    out["b_out"] = model.layers[1].get_weights()[1]
    if net.bias:
        out["b"] = weights[2]
    return out


def _max_errors(ens, want: dict) -> dict[str, float]:
    return {k: float(np.max(np.abs(np.asarray(ens.params_final[k][0]) - w))) for k, w in want.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["plain", "original_ei"])
def test_trainer_equals_keras_replay(case, monkeypatch):
    """32 updates of jaxrnn's trainer (the paper protocol: fixed shuffled training set, fast backward pass, Keras'
    Adam) equal Keras 3 trained on the same batches from the same initial weights, to float32 rounding; with the
    original E/I protocol's constraints too. With optax's Adam in place of `keras_adam` (eps inside the bias
    correction) the same comparison fails: the tolerance tells the two placements apart."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"the replay needs KERAS_BACKEND=jax, got {keras.backend.backend()!r}")
    import optax

    from jaxrnn.training import train as train_module

    extra = ORIGINAL_EI | dict(clip_norm=0.05) if case == "original_ei" else {}
    cfg = train_module.TrainConfig(make_task("and", **REPLAY_TASK), **REPLAY, **extra)
    seed, hparams = 0, train_module.Hparams(lr=REPLAY_LR)
    ens = train_module.fit(cfg, seed, [0], hparams=hparams)
    member_key = train_module.member_keys(seed, np.array([0]))[0]
    params_init = jax.tree.map(lambda x: np.asarray(x[0]), ens.params_init)
    with jax.numpy_rank_promotion("allow"):  # Keras' own code broadcasts ranks
        want = _keras_replay(cfg, params_init, member_key, REPLAY_LR)
    changes = {k: float(np.max(np.abs(w - params_init[k]))) for k, w in want.items()}
    errors = _max_errors(ens, want)
    print(f"{case}: max |jaxrnn - Keras| {errors}; max |change| {changes}")
    assert min(changes.values()) > 100 * REPLAY_ATOL  # every parameter moved far more than the tolerance
    assert max(errors.values()) <= REPLAY_ATOL, errors
    if case == "original_ei":  # the constraints held in Keras too, and acted during training
        W, n = want["W_rec"], cfg.net.n_exc
        assert np.all(W[:n] >= 0) and np.all(W[n:] <= 0) and np.all(want["W_in"] >= 0)
        assert np.any((params_init["W_rec"] != 0) & (W == 0))
        return

    def optax_adam(config, lr):
        schedule = lambda count: lr / (1.0 + config.decay * count)  # noqa: E731
        return optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps)

    monkeypatch.setattr(train_module, "make_optimizer", optax_adam)
    train_module.clear_programs()
    try:
        errors_optax = _max_errors(train_module.fit(cfg, seed, [0], hparams=hparams), want)
    finally:
        train_module.clear_programs()
    print(f"{case}, optax's Adam: max |jaxrnn - Keras| {errors_optax}")
    assert max(errors_optax.values()) > 4 * REPLAY_ATOL, errors_optax
