"""The `jaxrnn` command line, driven as a subprocess: train, evaluate, show, plot, sample, tasks; resume after SIGKILL;
bad input gives one line, exit status 2 and writes nothing."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxrnn.cli import main
from jaxrnn.runs import store
from jaxrnn.tasks import TASKS

AND = ["--param", "T=60", "--param", "pulse_start=5", "--param", "response_start=40"]
TINY = ["--units", "8", "--epochs", "2", "--n-train", "16", "--batch-size", "4", *AND]
PNG = b"\x89PNG\r\n\x1a\n"


def _command():
    exe = shutil.which("jaxrnn")
    return [exe] if exe else [sys.executable, "-m", "jaxrnn.cli"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Subprocess environment sharing a persistent XLA compilation cache: a program compiled by one `jaxrnn` call
    (e.g. the interrupted run) is loaded, not recompiled, by the next (its resumption)."""
    cache = tmp_path_factory.mktemp("xla_cache")
    return {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def jaxrnn(*args, cwd, env=None, timeout=600):
    return subprocess.run(
        [*_command(), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def snapshot(folder):
    """Every file's bytes, except the lock file (whose text names the latest process that held the lock)."""
    return {
        p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"
    }


RUN_FILES = {"config.json", "params.npz", "history.npz", "members.csv", "evaluation.npz", ".lock"}


def test_tasks_help_and_one_line_errors(tmp_path):
    r = jaxrnn("tasks", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, cls in TASKS.items():
        assert f"{name}  (" in r.stdout
        for field in cls.parameters():
            assert field in r.stdout
    assert "pulse_start" in r.stdout and "training preset" in r.stdout
    r = jaxrnn("train", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "--checkpoint-every" in r.stdout and "--param" in r.stdout
    r = jaxrnn("train", "and", "--out", "run", "--param", "wings=2", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("jaxrnn: error:") and "'wings'" in r.stderr
    assert list(tmp_path.iterdir()) == []


TRAIN = ["train", "and", *TINY, "--members", "3", "--seed", "4", "--trials", "32", "--out", "run"]


def test_train_evaluate_show_plot_sample(tmp_path, env):
    r = jaxrnn(*TRAIN, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "run"
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    for word in ("success", "Wilson", "distance", "mse", "per epoch", "device", "diverged 0/3"):
        assert word in r.stdout
    assert "train" in r.stderr and "stopped=" in r.stderr  # the progress bar and its postfix
    run = store.load_run(run_dir)
    assert run.seed == 4 and run.config.units == 8 and run.config.task.T == 60 and len(run.members) == 3
    assert run.meta["argv"] == ["jaxrnn", *TRAIN]
    ens = run.ensemble
    assert np.all(np.isfinite(ens.loss)) and not np.allclose(ens.params_init["W_rec"], ens.params_final["W_rec"])

    before = snapshot(run_dir)
    r = jaxrnn(*TRAIN, cwd=tmp_path, env=env)
    assert r.returncode == 0 and "already complete" in r.stderr and "success" in r.stdout
    assert snapshot(run_dir) == before

    table = (run_dir / "members.csv").read_text()
    (run_dir / "members.csv").write_text(table.replace(",0,\n", ",1,\n"))  # spoil the metrics: diverged=1
    assert store.load_members_table(run_dir)[0]["diverged"]
    r = jaxrnn("evaluate", "run", "--trials", "32", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert (run_dir / "members.csv").read_text() == table  # recomputed from params.npz and history.npz
    assert "of 32 held-out trials" in r.stdout

    r = jaxrnn("show", "run", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "N=8" in r.stdout and "final_loss" in r.stdout and "jaxlib" in r.stdout
    rows_shown = [line.split()[:2] for line in r.stdout.splitlines()]
    assert all([str(m), "4"] in rows_shown for m in range(3))

    r = jaxrnn("plot", "run", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    import matplotlib.image

    names = {"loss.png", "trials_best_worst.png", "eigenvalues.png", "W_rec.png", "weights_hist.png"}
    assert {p.name for p in (run_dir / "figures").iterdir()} == names
    for name in names:
        path = run_dir / "figures" / name
        assert path.read_bytes()[:8] == PNG
        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0

    r = jaxrnn("sample", "flipflop", "--trials", "5", "--seed", "1", "--param", "n_turns=2", "--param", "T=300",
               "--out", "s.npz", "--plot", "s.png", cwd=tmp_path, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert z["inputs"].shape == (5, 300, 2) and z["targets"].shape == (5, 300, 1)
        assert z["mask"].shape == (5, 300, 1) and z["condition"].shape == (5,)
        assert not np.array_equal(z["inputs"][0], z["inputs"][1])
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG


KILL = ["--units", "32", "--members", "2", "--epochs", "10", "--n-train", "1024", "--batch-size", "4",
        "--checkpoint-every", "1", "--trials", "16", "--no-progress", "--seed", "3", *AND]  # fmt: skip


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, env, capsys, monkeypatch):
    cmd = _command()
    run_dir = tmp_path / "run"
    ckpt = run_dir / "checkpoint.npz"
    proc = subprocess.Popen([*cmd, "train", "and", *KILL, "--out", str(run_dir)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen while it holds the run directory's lock
    try:
        assert ckpt.exists(), "the run ended before its first checkpoint"
        # one writer: a second `jaxrnn train` (same command, or --overwrite) on the run in use exits 2, naming the
        # holder, and leaves the first run's files as they were
        before = snapshot(run_dir)
        for extra in ([], ["--overwrite"]):
            code, err = _run_main(["train", "and", *KILL, *extra, "--out", str(run_dir)], capsys, monkeypatch, tmp_path)
            assert code == 2 and f"in use by process {proc.pid} " in err and err.count("\n") == 1, err
        assert snapshot(run_dir) == before
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()

    # after the kill: an unfinished run, every file complete and loadable, no results yet
    meta = store.load_meta(run_dir)
    assert meta["complete"] is False
    assert not (run_dir / "params.npz").exists()
    leftovers = [p.name for p in run_dir.iterdir() if p.name not in ("config.json", "checkpoint.npz", ".lock")]
    assert all(n.startswith(".") and n.endswith(".tmp") for n in leftovers), leftovers
    config = store.config_from_dict(meta["config"])
    with np.load(ckpt, allow_pickle=False) as z:  # (store.load_checkpoint's checks are tested in test_store.py)
        loss = z["loss"]
    epoch = int(np.sum(np.all(np.isfinite(loss), axis=0)))
    assert 1 <= epoch < config.epochs, f"killed at epoch {epoch}"
    assert np.all(np.isfinite(loss[:, :epoch])) and np.all(np.isnan(loss[:, epoch:]))
    with pytest.raises(store.StoreError, match="not finished"):
        store.load_run(run_dir)

    r = subprocess.run([*cmd, "train", "and", *KILL, "--out", str(run_dir)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    resumed_at = int(r.stderr.split("resuming from the checkpoint at epoch ")[1].split("/")[0])
    assert resumed_at >= epoch  # not from zero: the lock left by the killed holder did not block
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    run = store.load_run(run_dir)
    assert run.meta["extra"]["resumed_from_epoch"] == resumed_at
    # the same command, uninterrupted, in another directory (same XLA set-up; compiled programs come from the cache)
    r = jaxrnn("train", "and", *KILL, "--out", "whole", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    ens, whole = run.ensemble, store.load_run(tmp_path / "whole").ensemble
    for k in whole.params_final:
        np.testing.assert_allclose(ens.params_final[k], whole.params_final[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ens.params_init[k], whole.params_init[k])
    np.testing.assert_allclose(ens.loss, whole.loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ens.stop_epoch, whole.stop_epoch)
    assert (run_dir / "members.csv").read_text() == (tmp_path / "whole" / "members.csv").read_text()


# ----------------------------------------------------------------------------------------------------------------
# Bad input, in-process (no JAX compilation happens before these errors).

E2 = ["--members", "2", "--seed", "1"]


@pytest.fixture
def existing_run(tmp_path):
    """A finished run directory written by `jaxrnn train and TINY E2 --out run` (built in-process, no training)."""
    from jaxrnn.cli import _train_config, build_parser
    from jaxrnn.training.train import Ensemble

    args = build_parser().parse_args(["train", "and", *TINY, *E2, "--out", "run"])
    config, hp = _train_config(args)
    shapes = store.expected_param_shapes(config)
    params = {k: np.full((2, *s), 0.5, np.float32) for k, s in shapes.items()}
    ens = Ensemble(np.arange(2), params, params, np.ones((2, 2), np.float32), np.zeros(2, int), np.zeros(2, bool))
    return store.save_run(tmp_path / "run", config, ens, None, seed=1, hparams=hp)


def _run_main(argv, capsys, monkeypatch, cwd):
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["train", "nope", "--out", "x"], "unknown task 'nope'"),
        (["train", "and", "--out", "x", "--wings"], "unrecognized arguments: --wings"),
        (["train", "and", "--out", "x", "--members", "0"], "--members: must be a positive integer, got 0"),
        (["train", "and", "--out", "x", "--units", "-3"], "--units: must be a positive integer, got -3"),
        (["train", "and", "--out", "x", "--epochs", "two"], "--epochs: must be a positive integer"),
        (["train", "and", "--out", "x", "--param", "wings=2"], "and has no parameter 'wings'"),
        (["train", "and", "--out", "x", "--param", "T=abc"], "and.T must be an integer"),
        (["train", "and", "--out", "x", "--param", "noise=loud"], "and.noise must be a number"),
        (["train", "and", "--out", "x", "--param", "T"], "expected key=value"),
        (["train", "and", "--out", "x", "--param", "T=10"], "response_start must lie in"),
        (
            ["train", "and", "--out", "x", "--init", "zeros"],
            "argument --init: unknown init 'zeros'; allowed: orthogonal, normal",
        ),
        (["train", "and", "--out", "afile"], "--out afile: is a file"),
        (["train", "and", "--out", "afile/run"], "afile is a file, not a directory"),
        (["train", "and", *TINY, *E2, "--lr", "1e-3", "--out", "run"], "different config (differs in: hparams)"),
        (["train", "and", *TINY, "--members", "3", "--seed", "1", "--out", "run"], "differs in: members"),
        (["train", "and", *TINY[:-1], "response_start=41", *E2, "--out", "run"], "task.response_start"),
        (["train", "and", *TINY, *E2, "--out", "run", "TRUNCATE"], "params.npz: damaged"),
        (["evaluate", "run", "TRUNCATE"], "params.npz: damaged"),
        (["show", "run", "TRUNCATE"], "params.npz: damaged"),
        (["plot", "run", "TRUNCATE"], "params.npz: damaged"),
        (["evaluate", "afile"], "afile: not a directory"),
        (["evaluate", "."], "config.json: missing"),
        (["sample", "and", "--out", "run"], "--out run: is a directory"),
        (["sample", "and", "--out", "afile/s.npz"], "afile is a file"),
        (["study", "nope"], "unknown study 'nope'"),
        (["import-keras", "missing.hdf5", "--task", "and", "--out", "k"], "missing.hdf5: no such file"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(argv, expect, existing_run, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("not a directory")
    if argv[-1] == "TRUNCATE":
        argv = argv[:-1]
        data = (existing_run / "params.npz").read_bytes()
        (existing_run / "params.npz").write_bytes(data[: len(data) // 3])
    before = snapshot(tmp_path)
    code, err = _run_main(argv, capsys, monkeypatch, tmp_path)
    assert code == 2
    assert expect in err
    assert err.count("\n") == 1 and "Traceback" not in err and "error:" in err
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_a_different_run_check_only(existing_run, tmp_path, capsys, monkeypatch):
    """--overwrite lifts the refusal (checked without training: the foreign directory case still refuses)."""
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    code, err = _run_main(["train", "and", "--out", "foreign"], capsys, monkeypatch, tmp_path)
    assert code == 2 and "not a jaxrnn run directory" in err
    from jaxrnn.cli import _train_config, build_parser
    from jaxrnn.runs import plan

    args = build_parser().parse_args(["train", "and", *TINY, *E2, "--lr", "1e-3", "--out", "run"])
    config, hp = _train_config(args)
    with pytest.raises(ValueError, match="different config"):
        plan(existing_run, config, 1, hp, 2, overwrite=False)
    assert plan(existing_run, config, 1, hp, 2, overwrite=True) == "new"
    args = build_parser().parse_args(["train", "and", *TINY, *E2, "--out", "run"])
    config, hp = _train_config(args)
    assert plan(existing_run, config, 1, hp, 2, overwrite=False) == "complete"
