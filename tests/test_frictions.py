"""What a user trips over: smoke runs that wrote into the checkout's results/, a small study replacing a large one's
report, `jaxrnn --version`, `jaxrnn tasks NAME`, `fit(..., members=E)`, grid axes given twice, unlabelled inputs."""

import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jaxrnn
from jaxrnn import runs
from jaxrnn.cli import main
from jaxrnn.plots import run as plots
from jaxrnn.runs import store
from jaxrnn.studies import STUDIES, run_study
from jaxrnn.studies.base import Protocol, Scale, Study, default_out, report_scale
from jaxrnn.tasks import make_task
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Hparams, TrainConfig, fit

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
CPU_REPORT = "# A study\n\n## What was run\n\n- scale: **cpu**. Reduced.\n"


def cli(argv, capsys):
    """`main(argv)`'s exit status (argparse's SystemExit included), stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def fake_study(name="fake"):
    """A study that trains nothing: its report is written around one line."""
    scale = Scale(members=1, protocol=Protocol(), reduced="Nothing trained.")
    return Study(name, "A fake study", "trains nothing", {"smoke": scale, "cpu": scale}, run=lambda ctx: ["body"])


def test_smoke_study_default_folder_is_not_results():
    assert default_out(STUDIES["success_table"], "smoke") == Path("success_table_smoke")
    assert default_out(STUDIES["success_table"], "cpu") == Path("results/success_table")
    assert default_out(STUDIES["flipflop3"], "tutorial") == Path("results/flipflop3_tutorial")
    assert default_out(STUDIES["spectral_migration"], "paper") == Path("results/paper/spectral_migration")


def test_smoke_study_leaves_a_checkouts_results_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "results" / "fake" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text(CPU_REPORT)
    out = run_study(fake_study(), scale="smoke")
    assert out == Path("fake_smoke") and report_scale(tmp_path / out) == "smoke"
    assert report.read_text() == CPU_REPORT and sorted(p.name for p in report.parent.iterdir()) == ["report.md"]


def test_study_refuses_to_replace_a_larger_scale_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    (tmp_path / "report.md").write_text(CPU_REPORT)
    code, _, err = cli(["study", "success_table", "--scale", "smoke", "--out", str(tmp_path)], capsys)
    assert code == 2 and "made at scale cpu, larger than smoke" in err and err.count("\n") == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"] and report_scale(tmp_path) == "cpu"
    with pytest.raises(ValueError, match="--overwrite"):
        run_study(fake_study(), scale="smoke", out=tmp_path)
    run_study(fake_study(), scale="smoke", out=tmp_path, overwrite=True)
    assert report_scale(tmp_path) == "smoke"
    run_study(fake_study(), scale="cpu", out=tmp_path)  # a larger scale replaces a smaller one
    assert report_scale(tmp_path) == "cpu"


def test_bench_smoke_writes_into_the_current_directory():
    spec = importlib.util.spec_from_file_location("_jaxrnn_bench_common", BENCH / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    p = common.parser("units_scaling", "doc")
    assert p.parse_args(["--smoke"]).out == "."
    assert p.parse_args(["--smoke", "--out", "/tmp/b"]).out == "/tmp/b"
    assert p.parse_args([]).out == str(common.RESULTS)


def test_version(capsys):
    code, out, _ = cli(["--version"], capsys)
    assert code == 0 and out == f"jaxrnn {jaxrnn.__version__}\n"


def test_tasks_name_shows_one_task(capsys):
    code, out, err = cli(["tasks", "and"], capsys)
    assert code == 0, err
    firsts = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert firsts == ["and"] and "success rule" in out
    code, out, err = cli(["tasks", "nand"], capsys)
    assert code == 2 and "unknown task 'nand'" in err and err.count("\n") == 1 and out == ""


def test_fit_takes_a_member_count():
    task = make_task("and", T=30, pulse_start=2, pulse_width=5, response_start=20)
    config = TrainConfig(task, units=4, epochs=1, n_train=4, batch_size=4)
    by_count = fit(config, seed=0, members=2)
    by_ids = fit(config, seed=0, members=range(2))
    np.testing.assert_array_equal(by_count.members, [0, 1])
    np.testing.assert_array_equal(by_count.loss, by_ids.loss)
    with pytest.raises(ValueError, match="members"):
        fit(config, seed=0, members=[])


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["--grid", "lr=1e-3,1e-3"], "lr value 0.001 given twice"),
        (["--lr", "3e-4", "--grid", "lr=1e-4,1e-3"], "--grid lr: also given as --lr"),
        (["--init", "normal", "--grid", "init=orthogonal,normal"], "--grid init: also given as --init"),
        (["--param", "delay=20", "--grid", "delay=10,30"], "--grid delay: also given as --param delay"),
    ],
)
def test_grid_refuses_repeated_values_and_the_same_scalar_option(argv, expect, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    task = ["time_reproduction", "--param", "T=80", "--param", "pulse_start=5"]
    base = ["train", *task, "--units", "8", "--epochs", "1", "--out", "run"]
    code, _, err = cli([*base, *argv], capsys)
    assert code == 2 and expect in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def _legend_of_inputs(monkeypatch, draw) -> list[str]:
    """The legend texts of the first inputs panel of the figure `draw()` saves."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    draw()
    fig = figures[0]
    legend = fig.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()] if legend else []
    plots.plt.close(fig)
    return texts


def test_sample_plot_names_its_input_channels(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    argv = ["sample", "and", "--trials", "2", "--out", tmp_path / "t.npz", "--plot", tmp_path / "t.png"]
    texts = _legend_of_inputs(monkeypatch, lambda: cli([str(a) for a in argv], capsys))
    assert texts == ["input 0", "input 1"]
    x = np.zeros((1, 5, 2))
    texts = _legend_of_inputs(monkeypatch, lambda: plots.trials(x, x[..., :1], "x.png", input_names=["A", "B"]))
    assert texts == ["input 0 (A)", "input 1 (B)"]


def _tiny_and():
    task = make_task("and", T=30, pulse_start=2, pulse_width=5, response_start=20)
    return TrainConfig(task, units=4, epochs=2, n_train=8, batch_size=4)


def test_interrupted_overwrite_keeps_the_old_run_then_swaps_when_complete(tmp_path):
    run_dir = tmp_path / "run"
    old = runs.train_run(run_dir, _tiny_and(), seed=0, members=2, n_eval=16)
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "loss.png").write_bytes(b"stale")
    new_config = dataclasses.replace(_tiny_and(), units=5)

    def interrupt(p):
        if not p.compiling:  # after the first epoch's checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.train_run(run_dir, new_config, seed=0, members=2, n_eval=16, overwrite=True, checkpoint_every=1,
                       progress=interrupt)  # fmt: skip
    kept = store.load_run(run_dir)
    assert kept.meta["complete"] and kept.config.units == 4 and (run_dir / "figures" / "loss.png").exists()
    np.testing.assert_array_equal(kept.ensemble.params_final["W_rec"], old.ensemble.params_final["W_rec"])
    assert (tmp_path / ".run.overwrite" / store.CHECKPOINT).exists()

    new = runs.train_run(run_dir, new_config, seed=0, members=2, n_eval=16, overwrite=True)
    assert new.origin == "resumed" and new.config.units == 5 and store.load_run(run_dir).config.units == 5
    assert not (run_dir / "figures").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_swap_killed_between_its_renames_is_completed(tmp_path):
    run_dir = tmp_path / "run"
    runs.train_run(run_dir, _tiny_and(), seed=0, members=2, n_eval=16)
    staging = tmp_path / ".run.overwrite"
    runs.train_run(staging, dataclasses.replace(_tiny_and(), units=5), seed=0, members=2, n_eval=16)
    os.replace(run_dir, tmp_path / ".run.replaced")  # the first rename of the swap, then the process died
    runs.train_run(run_dir, dataclasses.replace(_tiny_and(), units=5), seed=0, members=2, n_eval=16)
    assert store.load_run(run_dir).config.units == 5 and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_ctrl_c_while_compiling_exits_130_and_the_run_resumes(tmp_path):
    """The console script's Ctrl-C: status 130 and the one-line message, never a crash (Python's teardown with XLA
    threads still compiling or running segfaulted here), and the run directory is resumable."""
    # 30 epochs of about 0.13 s: each Ctrl-C lands before the run can finish, even when the compilation comes from
    # the suite's cache and an earlier attempt left a checkpoint (2 short epochs were sometimes done by then: exit 0)
    argv = ["train", "and", "--units", "8", "--members", "4", "--epochs", "30", "--n-train", "640", "--out", "run"]
    # Python's own SIGINT handler, also where the test runs as a background job (which ignores SIGINT)
    script = "import signal as s; s.signal(s.SIGINT, s.default_int_handler); import jaxrnn.cli as c; c.entry()"
    cmd = [sys.executable, "-c", script, *argv]
    for wait in (0.2, 0.6, 1.2):  # just after the trainer starts compiling, and later in the first call
        proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        seen = ""
        while "compiling" not in seen and proc.poll() is None:
            seen += proc.stderr.read(1)
        time.sleep(wait)
        proc.send_signal(signal.SIGINT)
        err = seen + proc.stderr.read()
        assert proc.wait(timeout=60) == 130, err
        assert err.strip().splitlines()[-1].startswith("jaxrnn: interrupted"), err
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert store.load_run(tmp_path / "run").meta["complete"]


def test_show_is_readable_names_cells_and_leaves_stop_epoch_empty(tmp_path, capsys):
    task = make_task("and", T=30, pulse_start=2, pulse_width=5, response_start=20)
    grid = Grid.of(task, init=("orthogonal", "normal"), repeats=2)
    config = TrainConfig(task, units=4, epochs=2, n_train=8, batch_size=4)
    runs.train_run(tmp_path / "run", config, seed=0, grid=grid, n_eval=16, command=["jaxrnn", "train"])
    rows = store.load_members_table(tmp_path / "run")
    assert [r["init"] for r in rows] == ["orthogonal"] * 2 + ["normal"] * 2
    assert all(r["stop_epoch"] is None and r["diverged_epoch"] is None for r in rows)
    header = (tmp_path / "run" / "members.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("stop_epoch") + 1 : header.index("stop_epoch") + 3] == ["diverged", "diverged_epoch"]

    code, out, _ = cli(["show", str(tmp_path / "run")], capsys)
    assert code == 0 and "{" not in out and "': " not in out, out  # no JSON block, no dict reprs
    assert "grid      init = orthogonal, normal (2 members per cell" in out
    table = out[out.index("member  seed") :].splitlines()
    assert table[0].split()[:3] == ["member", "seed", "init"] and table[1].split()[2] == "orthogonal"
    assert table[1].split()[table[0].split().index("stop_epoch")] == "-"


def test_diverged_epoch_is_the_first_non_finite_loss():
    assert store.diverged_epoch(np.array([0.5, 0.4, np.nan, 0.4])) == 3
    assert store.diverged_epoch(np.array([0.5, np.inf])) == 2
    assert store.diverged_epoch(np.array([0.5, 0.4])) is None


def test_commands_name_the_process_training_a_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = _tiny_and()
    store.write_config(run_dir, store.run_meta(config, seed=0, hparams=Hparams(), members=np.arange(2), complete=False))
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from jaxrnn.runs import store; import time\nwith store.locked({str(run_dir)!r}): "
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, _ = cli(["show", str(run_dir)], capsys)
        assert code == 0 and f"process {holder.pid} on" in out and "is training it now" in out, out
        for argv in (["plot", str(run_dir)], ["evaluate", str(run_dir)]):
            code, _, err = cli(argv, capsys)
            assert code == 2 and f"process {holder.pid}" in err, (argv, err)
    finally:
        holder.kill()
        holder.wait()
    code, out, _ = cli(["show", str(run_dir)], capsys)
    assert code == 0 and "no process is training it" in out and "rerun the same" in out


def test_a_smoke_study_reuses_the_smoke_ensembles_beside_it(tmp_path):
    """lesion and spectral_migration at smoke scale look for the success table's ensembles where a smoke success
    table puts them (./success_table_smoke/runs), at the paper scale in results/paper/success_table/runs."""
    from jaxrnn.studies.base import Context

    def search(name, scale, out):
        study = STUDIES[name]
        ctx = Context(study, scale, study.scales[scale], 1, out, None, {}, "", False, [])
        return ctx.search()

    assert search("lesion", "smoke", Path("lesion_smoke"))[1:] == [
        Path("success_table_smoke/runs"),
        Path("success_table/runs"),
    ]
    assert search("lesion", "paper", default_out(STUDIES["lesion"], "paper"))[1] == Path(
        "results/paper/success_table/runs"
    )
    assert search("spectral_migration", "cpu", Path("results/spectral_migration"))[1] == Path(
        "results/success_table/runs"
    )


def test_a_task_defined_in_a_script_is_refused_before_a_run_directory_is_written(tmp_path):
    """A task class of `__main__` trains with `fit`, but a run directory of it could never be reopened: train_run
    refuses it in one line before anything is written."""
    base = type(make_task("and"))
    scripted = dataclasses.dataclass(frozen=True)(type("Gate", (base,), {"__module__": "__main__"}))
    config = dataclasses.replace(_tiny_and(), task=scripted(T=30, pulse_start=2, pulse_width=5, response_start=20))
    with pytest.raises(ValueError, match="defined in the script being run"):
        runs.train_run(tmp_path / "run", config, seed=0, members=2, n_eval=16)
    assert not (tmp_path / "run").exists()


def _tiny_study():
    """A study training one tiny AND ensemble named "net": its smoke and cpu scales differ in the epochs only."""

    def protocol(epochs):
        return Protocol(units=4, epochs=epochs, n_train=16, batch_size=8, n_eval=8)

    def run(ctx):
        ctx.train(ctx.scale.config(make_task("and", T=30, pulse_start=2, response_start=25)), "net")
        return ["body"]

    scales = {"smoke": Scale(2, protocol(1), "one epoch"), "cpu": Scale(2, protocol(2), "two epochs")}
    return Study("tiny", "A tiny study", "one tiny ensemble", scales, run=run)


def test_study_overwrite_replaces_its_run_of_another_scale_and_still_reuses_its_own(tmp_path):
    """A study's run directory of another config (here: the smaller scale's) is refused, naming --overwrite; with
    --overwrite it is replaced; the same ensemble is then reused, with or without --overwrite."""
    study, out = _tiny_study(), tmp_path / "tiny"
    run_study(study, scale="smoke", out=out)
    with pytest.raises(ValueError, match="holds a run with a different config .*--overwrite"):
        run_study(study, scale="cpu", out=out)
    run_study(study, scale="cpu", out=out, overwrite=True)
    run = store.load_run(out / "runs" / "net")
    assert run.config.epochs == 2 and run.meta["complete"]
    written = (out / "runs" / "net" / store.CONFIG).stat().st_mtime_ns
    run_study(study, scale="cpu", out=out, overwrite=True)  # the same ensemble: reused, not retrained
    assert (out / "runs" / "net" / store.CONFIG).stat().st_mtime_ns == written
    assert "- ensembles: 1, training time as recorded in their run directories" in (out / "report.md").read_text()
    assert "1 reused from existing run directories" in (out / "report.md").read_text()
