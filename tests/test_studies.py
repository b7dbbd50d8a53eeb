"""Smoke scale of every study: it runs, writes its files, and its numbers are sane (rates in [0, 1], intervals
containing the rate, lesion at 0% equal to the unlesioned evaluation, at 100% W_rec all zero, removed fractions
within one weight of the requested ones). The studies run once, in the layout of `results/`, so later studies
reuse the earlier ones' run directories as they do in a real run."""

import csv
import re
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrnn.analysis.lesion import lesion_ensemble
from jaxrnn.cells.network import NetConfig
from jaxrnn.runs.store import load_run
from jaxrnn.studies import SCALES, STUDIES, Study, ei_spectrum, memory, run_study, spectral_migration, success_table
from jaxrnn.studies import lesion as lesion_study
from jaxrnn.training.evaluate import evaluate

ORDER = ("success_table", "spectral_migration", "lesion", "memory_delay", "memory_size")


def study(name: str, scale: str = "smoke", **kw) -> Path:
    return run_study(STUDIES[name], scale=scale, **kw)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("results")
    for name in ORDER:
        out = study(name, out=base / name)
        assert out == base / name
    return base


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _f(row, key) -> float:
    return float(row[key])


def test_registry_and_validation(tmp_path):
    assert set(ORDER) <= set(STUDIES)
    assert SCALES == ("smoke", "cpu", "paper", "tutorial", "sweep")
    for name, s in STUDIES.items():
        assert isinstance(s, Study) and s.name == name and s.summary
        assert {"smoke", "cpu", "paper"} <= set(s.scales) <= set(SCALES)
    assert "tutorial" in STUDIES["flipflop3"].scales and STUDIES["flipflop3"].scales["tutorial"].folder
    assert [n for n, s in STUDIES.items() if "sweep" in s.scales] == ["lr_delay"]
    with pytest.raises(ValueError, match="unknown scale 'tutorial'"):
        study("lesion", scale="tutorial")
    with pytest.raises(ValueError, match="allowed: smoke, cpu, paper"):
        study("lesion", scale="huge")
    with pytest.raises(ValueError, match="takes no network option cell"):
        study("memory_delay", options={"cell": "gru"}, out=tmp_path / "x")
    with pytest.raises(ValueError, match="--run applies to"):
        study("success_table", run=tmp_path, out=tmp_path / "x")
    with pytest.raises(ValueError, match="--tasks: xor not in the study's tasks"):
        study("success_table", tasks=("xor",), out=tmp_path / "x")  # the smoke scale has AND only
    with pytest.raises(ValueError, match="does not sweep tasks"):
        study("memory_delay", tasks=("and",), out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ORDER)
def test_every_study_writes_report_and_files(results, name):
    out = results / name
    report = (out / "report.md").read_text()
    for fact in (
        "command: `jaxrnn study",
        "scale: **smoke**",
        "members per condition",
        "Success criterion:",
        "| ensemble | task | network | members | training | optimizer |",
        "device:",
        "cores visible",
        "wall time",
        "omparison",
    ):
        assert fact in report, f"{name}/report.md lacks {fact!r}"
    for png in out.glob("*.png"):
        assert png.stat().st_size > 1000
        assert f"]({png.name})" in report, f"{png.name} not shown in the report"
    assert list(out.glob("*.png")) and list(out.glob("*.csv"))
    assert (out / "runs" / ".gitignore").is_file()


def test_success_table_rates_and_intervals(results):
    rows = _rows(results / "success_table" / "success_table.csv")
    sc = success_table.SCALES["smoke"]
    tasks = sc.grid["tasks"]
    assert [(r["task"], r["init"]) for r in rows] == [(t, i) for t in tasks for i in success_table.INITS]
    for r in rows:
        assert int(r["members"]) == sc.members
        assert 0 <= int(r["successes"]) <= int(r["members"])
        assert 0.0 <= _f(r, "wilson_low") <= _f(r, "rate") <= _f(r, "wilson_high") <= 1.0
        assert _f(r, "rate") == pytest.approx(int(r["successes"]) / int(r["members"]))
        assert _f(r, "original_rate") == success_table.ORIGINAL[r["task"]][success_table.INITS.index(r["init"])] / 100
        assert _f(r, "median_distance") > 0 and _f(r, "median_mse") > 0
        assert 1 <= _f(r, "median_stop_epoch") <= int(r["epochs"])
    md = (results / "success_table" / "success_table.md").read_text()
    assert "original" in md and md.count("\n|") >= len(rows) + 1
    kind = jax.devices()[0].device_kind
    report = (results / "success_table" / "report.md").read_text()
    assert report.count(f"| {kind} (cpu) |") == len(tasks)  # one ensemble per task (both inits), device read from it
    assert "- and: " in report and "held-out trials are correct" in report  # the task's own success rule


def test_spectral_migration_reuses_and_is_sane(results):
    out = results / "spectral_migration"
    assert not [p for p in (out / "runs").iterdir() if p.is_dir()], "should reuse the success table's ensembles"
    rows = _rows(out / "spectral_members.csv")
    sc = success_table.SCALES["smoke"]
    tasks = sc.grid["tasks"]
    assert len(rows) == sc.members * len(tasks) * len(success_table.INITS)
    for r in rows:
        assert _f(r, "trained_radius") >= 0 and float(r["trained_n_outside"]) >= 0
        assert 0 <= _f(r, "trained_henrici") <= 1
        assert 0 <= _f(r, "trained_leading_cycles_per_step") <= 0.5
        if r["init"] == "orthogonal":  # every eigenvalue of an orthogonal matrix lies on the unit circle
            assert _f(r, "initial_radius") == pytest.approx(1.0, abs=1e-4)
            assert float(r["initial_n_outside"]) == 0
            assert _f(r, "initial_henrici") < 1e-3
    summary = _rows(out / "spectral_summary.csv")
    assert len(summary) == len(tasks) * len(success_table.INITS)
    for s in summary:  # trained statistics over the learners, none below 3 of them
        if int(s["successes"]) >= spectral_migration.MIN_LEARNERS:
            assert _f(s, "trained_radius_q25") <= _f(s, "trained_radius_median") <= _f(s, "trained_radius_q75")
        else:
            assert s["trained_radius_median"] in ("", "nan")
        assert float(s["initial_radius_median"]) > 0  # initial spectra: every member


def test_lesion_levels_fractions_and_extremes(results):
    out = results / "lesion"
    rows = _rows(out / "lesion.csv")
    grid = lesion_study.SCALES["smoke"].grid
    fractions = grid["fractions"]
    assert len(rows) == 5 * len(fractions)
    grid_run = load_run(results / "success_table" / "runs" / "and")  # the ensemble the lesion study reused
    assert not [p for p in (out / "runs").iterdir() if p.is_dir()]
    (_, orthogonal), _ = grid_run.cells()  # its orthogonal cell
    assert grid_run.cells()[0][0] == {"init": "orthogonal"}
    run = grid_run.subset(orthogonal)
    final = run.effective("final")
    base = evaluate(run.config.task, run.config.net, final, n_trials=grid["lesion_trials"])
    for r in rows:
        f = _f(r, "requested_fraction")
        if r["mode"].endswith("bands"):  # a band removes the weights between the previous level and this one
            f -= fractions[int(r["level"]) - 1] if int(r["level"]) > 0 else 0.0
        tol = 1.0 / int(r["n_eligible_min"]) + 1e-9
        assert abs(_f(r, "removed_fraction_min") - f) <= tol and abs(_f(r, "removed_fraction_max") - f) <= tol
        assert 0.0 <= _f(r, "success_rate") <= 1.0
        if int(r["level"]) == 0:  # 0% removed: the unlesioned evaluation
            assert _f(r, "distance_mean") == pytest.approx(float(np.mean(base.distance)), rel=1e-4)
            assert _f(r, "success_rate") == pytest.approx(float(np.mean(base.success)))
    full = lesion_ensemble(final["W_rec"], "both_cumulative", [fractions[-1]])
    assert fractions[-1] == 1.0 and np.all(np.asarray(full.weights) == 0)
    report = (out / "report.md").read_text()
    assert "W_rec all zero = True" in report
    checks = re.findall(r"level 0 vs the unlesioned evaluation, max \|Δ distance\| over members = (\S+)", report)
    assert len(checks) == 5 and all(float(d) < 1e-5 for d in checks), checks  # the report's own check holds


@pytest.mark.parametrize("name", ["memory_delay", "memory_size"])
def test_memory_curves(results, name):
    rows = _rows(results / name / f"{name}.csv")
    pts = memory.points(name, STUDIES[name].scales["smoke"])
    assert [(int(r["delay"]), int(r["units"])) for r in rows] == pts
    for r in rows:
        assert 0.0 <= _f(r, "wilson_low") <= _f(r, "rate") <= _f(r, "wilson_high") <= 1.0
        assert _f(r, "distance_mean") > 0 and _f(r, "distance_sem") >= 0
    if name == "memory_delay":  # every delay in one ensemble: one run directory, one grid over the delay
        (run_dir,) = [p for p in (results / name / "runs").iterdir() if p.is_dir()]
        run = load_run(run_dir)
        assert [v for v, _ in run.cells()] == [{"delay": d} for d, _ in pts]


def test_ei_spectrum_smoke(tmp_path):
    """Every method × init × condition is a row (methods named as in the report), the report states the methods, and
    the projection-method runs keep every constrained sign (W_rec per its axis, W_in >= 0), initial and trained."""
    out = study("ei_spectrum", out=tmp_path / "ei_spectrum")
    sc = ei_spectrum.SCALES["smoke"]
    assert set(sc.grid["methods"]) == {"abs", "project_post", "project_pre"}
    rows = _rows(out / "ei_spectrum.csv")
    assert [(r["method"], r["init"], float(r["e_fraction"]), int(r["units"])) for r in rows] == [
        (m, i, f, n) for m in sc.grid["methods"] for i in sc.grid["inits"] for f, n in sc.grid["conditions"]
    ]
    for r in rows:
        assert r["method_label"] == ei_spectrum.METHODS[r["method"]].label
        assert r["dale_axis"] == ("post" if r["method"] == "project_post" else "pre")
        assert int(r["n_exc"]) == int(np.floor(float(r["e_fraction"]) * int(r["units"]) + 0.5))
        assert int(r["sign_violations"]) == 0
        assert 0 < _f(r, "initial_disc_radius_median") and 0 <= _f(r, "initial_ring_index_median") <= 1
        assert r["initial_shape"] in ("disc", "ring")
        if int(r["learners"]) < ei_spectrum.MIN_LEARNERS:  # trained statistics: over >= 3 learners only
            assert r["trained_disc_radius_median"] == "" and r["trained_shape"] == "n/a"
    members = _rows(out / "ei_members.csv")
    assert len(members) == sc.members * len(rows)
    for m in members:  # every member listed, learned or not; stop_epoch empty unless it stopped early
        assert m["stop_epoch"] == "" or 1 <= int(m["stop_epoch"]) <= int(m["epochs_run"])
        assert int(m["epochs_run"]) >= 1 and float(m["zero_distance"]) > 0 and m["mse"] != ""
        assert m["learned"] in ("0", "1") and m["success"] in ("0", "1")
    assert {m["method"] for m in members} == set(sc.grid["methods"])
    report = (out / "report.md").read_text()
    for fact in ("command:", "scale: **smoke**", "cores visible", "](eigenvalues.png)", "](radius.png)"):
        assert fact in report
    for method in ei_spectrum.METHODS.values():
        assert method.label in report
    assert "as the original code" in report and "Dale's law" in report and "ring index" in report
    assert "Disc or ring per method and init" in report and "the projected init, untrained" in report
    assert len(_rows(out / "projected_init.csv")) == len(sc.grid["inits"]) * 2 * len(sc.grid["conditions"])
    checked = 0
    for path in sorted(p for p in (out / "runs").iterdir() if p.is_dir()):
        run = load_run(path)
        net = run.config.net
        assert net.dale and net.bias and run.config.clip_norm == ei_spectrum.ORIGINAL_CLIP
        assert run.config.task.onset_jitter == sc.grid["task"]["onset_jitter"]
        if net.dale_method != "project":
            continue
        assert net.nonneg_input and path.name.startswith("project_" + net.dale_axis)
        signs = np.asarray(run.ensemble.params_init["signs"])  # (E, N): each member's E fraction is its own
        fractions = np.asarray(run.hparams.e_fraction, float)
        np.testing.assert_array_equal((signs > 0).sum(1), np.floor(fractions * net.units + 0.5))
        assert np.all(signs[:, :-1] >= signs[:, 1:])  # the excitatory units first
        np.testing.assert_array_equal(run.ensemble.params_final["signs"], signs)
        for stage in ("init", "final"):
            p = run.effective(stage)
            W = np.asarray(p["W_rec"])
            exc = signs > 0
            exc = exc[:, None, :] if net.dale_axis == "pre" else exc[:, :, None]
            assert np.all(np.where(exc, W >= 0, W <= 0)), (path.name, stage)
            assert np.all(np.asarray(p["W_in"]) >= 0), (path.name, stage)
            if stage == "init":  # the projection zeroed the wrong-signed entries of the plain init: about half
                assert 0.3 < np.mean(W == 0) < 0.7, path.name
        checked += 1
    assert checked == 2 * len({n for _, n in sc.grid["conditions"]})  # one ensemble per projection method and N


def test_ei_shape_rule_and_axes():
    """The ring index calls a Ginibre spectrum a disc and an orthogonal one a ring; the annulus formula behind the
    threshold matches sampled annuli; the predicted radius of the "post" axis is that of the transpose on "pre";
    the sign check counts wrong-signed entries."""
    rng = np.random.default_rng(0)
    ginibre = np.linalg.eigvals(rng.standard_normal((200, 200)) / np.sqrt(200))
    q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    stats = ei_spectrum.spectrum_stats(np.stack([ginibre, np.linalg.eigvals(q)]), np.ones(2))
    assert stats["ring_index"][0] == pytest.approx(np.sqrt(0.1 / 0.9), abs=0.05)
    assert [ei_spectrum.shape_of(x) for x in stats["ring_index"]] == ["disc", "ring"]
    assert stats["original_radius"][1] == pytest.approx(1.0) and stats["min_modulus"][1] == pytest.approx(1.0)
    for hole in (0.0, 0.378, 0.7):
        r = np.sqrt(hole**2 + (1 - hole**2) * rng.uniform(size=20000))  # uniform on the annulus
        index = np.quantile(r, 0.1) / np.quantile(r, 0.9)
        assert ei_spectrum.annulus_ring_index(hole) == pytest.approx(index, abs=0.01)
    assert ei_spectrum.annulus_ring_index(0.378) == pytest.approx(ei_spectrum.RING_THRESHOLD, abs=0.002)
    W = rng.standard_normal((3, 12, 12)) + np.where(np.arange(12) < 8, 1.0, -1.0)[None, :, None]
    np.testing.assert_allclose(
        ei_spectrum.predicted_radius(W, 8, "post"), ei_spectrum.predicted_radius(np.swapaxes(W, 1, 2), 8, "pre")
    )
    assert not np.allclose(ei_spectrum.predicted_radius(W, 8, "post"), ei_spectrum.predicted_radius(W, 8, "pre"))
    net = NetConfig(
        n_in=2, n_out=1, units=12, dale=True, e_fraction=0.5, dale_method="project", dale_axis="post", nonneg_input=True
    )
    params = {"W_rec": np.abs(W), "W_in": np.ones((3, 12, 2))}
    params["W_in"][1, 0, 0] = -0.1
    np.testing.assert_array_equal(ei_spectrum.sign_violations(params, net), [72, 73, 72])  # 6 I rows × 12


def test_ei_projected_init_is_ring_or_disc_as_predicted():
    """jaxrnn's projected init (plain matrix, wrong signs zeroed) at N = 300: an orthogonal matrix becomes the
    predicted annulus (a ring), a normal one the predicted disc, both of outer radius 0.584 on either axis, with one
    outlier near (2f - 1) sqrt(N / 2π) when f != 0.5."""
    rows = ei_spectrum.projected_init(300, (0.5, 0.8))
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert ei_spectrum.shape_of(r["ring_index"]) == ("ring" if r["init"] == "orthogonal" else "disc"), r
        assert r["q10"] == pytest.approx(r["predicted_q10"], abs=0.03) and r["q90"] == pytest.approx(
            r["predicted_q90"], abs=0.03
        )
        if r["e_fraction"] == 0.8:
            assert r["largest"] == pytest.approx(r["predicted_outlier"], rel=0.1) and r["third_largest"] < 0.7
        else:
            assert r["largest"] < 0.8
    assert ei_spectrum.PROJ_INNER == pytest.approx(0.399, abs=1e-3) and ei_spectrum.PROJ_OUTER == pytest.approx(
        0.584, abs=1e-3
    )


def test_ei_dependence_permutation_test():
    """Radii drawn from one distribution across conditions show no dependence; shifted ones do; a condition where
    nothing learned is left out of the comparison."""
    rng = np.random.default_rng(1)
    rows = []
    for shift, label in ((0.0, "same"), (0.3, "shifted")):
        for n in (50, 100, 200):
            for _ in range(6):
                value = 1.0 + rng.normal(0, 0.05) + shift * np.log2(n / 50)
                rows.append(dict(method=label, init="normal", e_fraction=0.5, units=n, learned=True, r=value))
    rows.append(dict(method="same", init="normal", e_fraction=0.5, units=400, learned=False, r=5.0))
    fixed = dict(init="normal", e_fraction=0.5)
    same = ei_spectrum.dependence(rows, "r", "units", dict(fixed, method="same"), np.random.default_rng(0))
    shifted = ei_spectrum.dependence(rows, "r", "units", dict(fixed, method="shifted"), np.random.default_rng(0))
    assert same["values"] == [50, 100, 200, 400] and same["counts"] == [6, 6, 6, 0]
    assert same["p"] > 0.05 and shifted["p"] < 0.01
    assert shifted["spread"] == pytest.approx(0.6, abs=0.1) and same["spread"] < 0.15
    assert "no detectable dependence" in ei_spectrum._fmt_dep(same, "units", "R")
    assert "depends on N" in ei_spectrum._fmt_dep(shifted, "units", "R")


def test_success_table_with_network_options(tmp_path):
    """`--dale --sparsity` reach every ensemble, name its run directory and are stated in the report."""
    out = study("success_table", out=tmp_path / "st", options={"dale": True, "sparsity": 0.5})
    runs = sorted(p.name for p in (out / "runs").iterdir() if p.is_dir())
    assert runs == ["and_dale0.8_sparsity0.5"]  # both inits in one ensemble
    run = load_run(out / "runs" / runs[0])
    assert run.config.dale and run.config.sparsity == 0.5 and "rec_mask" in run.ensemble.params_final
    assert "Dale's law with E fraction 0.8" in (out / "report.md").read_text()


def _ginibre_eigs(n: int, radius: float, seed: int) -> np.ndarray:
    """Eigenvalues of an n × n Ginibre matrix scaled so its disc has `radius`."""
    G = np.random.default_rng(seed).standard_normal((n, n)) * radius / np.sqrt(n)
    return np.linalg.eigvals(G)


@pytest.mark.parametrize("seed", range(5))
def test_ei_bulk_edge_gap_rule(seed):
    """The gap rule finds planted outliers and does not cap the bulk edge (the old 1.25 × r_pred cut did)."""
    n, radius = 200, 1.3
    eigs = _ginibre_eigs(n, radius, seed)
    bulk, n_out = ei_spectrum.bulk_edge(np.abs(eigs))
    assert n_out == 0 and bulk == pytest.approx(np.abs(eigs).max())
    assert bulk == pytest.approx(radius, abs=0.12)
    planted = np.concatenate([eigs[:-2], [2.5 * np.exp(0.3j), 2.5 * np.exp(-0.3j)]])
    bulk, n_out = ei_spectrum.bulk_edge(np.abs(planted))
    assert n_out == 2 and bulk > 1.25 and bulk == pytest.approx(radius, abs=0.12)
    stats = ei_spectrum.spectrum_stats(planted[None], np.array([radius]))
    assert stats["n_outliers"][0] == 2
    assert stats["disc_radius"][0] == pytest.approx(radius, rel=0.08)


def _cli(*args, cwd, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxrnn.cli", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


#: Runs `jaxrnn` with store.save_checkpoint patched to SIGKILL the process right after it wrote the first checkpoint:
#: a kill in the middle of training at a chosen moment, whatever the machine's speed.
_KILL_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from jaxrnn.runs import store
save = store.save_checkpoint
def save_then_die(*args, **kwargs):
    save(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
store.save_checkpoint = save_then_die
from jaxrnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_study_killed_during_training_resumes_and_matches(tmp_path):
    """SIGKILL a study after its first checkpoint; the same command resumes the killed ensemble from that checkpoint,
    and its CSVs equal those of an uninterrupted run of the same command."""
    cmd = ["study", "memory_delay", "--scale", "smoke", "--no-progress", "--out"]
    whole = _cli(*cmd, "whole", cwd=tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST_CHECKPOINT, *cmd, "killed"], cwd=tmp_path, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "killed" / "runs" / "delays_N8" / "checkpoint.npz").exists()
    assert not (tmp_path / "killed" / "memory_delay.csv").exists()
    again = _cli(*cmd, "killed", cwd=tmp_path)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "resuming from the checkpoint at epoch 1/" in err
    _, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err
    for name in ("memory_delay.csv", "comparison.csv"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "whole" / name).read_text()


def test_lr_delay_grid_is_one_ensemble(tmp_path):
    out = study("lr_delay", out=tmp_path / "lr_delay")
    grid = STUDIES["lr_delay"].scales["smoke"].grid
    rows = _rows(out / "lr_delay.csv")
    assert [(float(r["lr"]), int(r["delay"])) for r in rows] == [(lr, d) for lr in grid["lr"] for d in grid["delay"]]
    (run_dir,) = [p for p in (out / "runs").iterdir() if p.is_dir()]
    run = load_run(run_dir)
    assert run.grid.names == ("lr", "delay") and len(run.members) == len(rows) * 2
    for r in rows:
        assert (
            0.0 <= _f(r, "wilson_low") <= _f(r, "rate") <= _f(r, "wilson_high") <= 1.0
            and _f(r, "median_final_loss") > 0
        )
    report = (out / "report.md").read_text()
    assert "](lr_delay.png)" in report and "trained as one ensemble" in report


PAPER = Path(__file__).resolve().parent.parent / "results" / "paper" / "success_table"


@pytest.mark.parametrize("task", ["and"])
def test_paper_success_table_is_rescored_from_its_kept_runs_without_training(task, tmp_path, monkeypatch):
    """results/paper/success_table/runs keeps every paper ensemble (parameters, history, evaluation, config):
    `jaxrnn study success_table --scale paper` finds them and scores them again without training."""
    import shutil

    from jaxrnn import runs

    kept = PAPER / "runs" / task
    assert (kept / "config.json").is_file(), f"{kept}: the paper-scale run directory is not in the checkout"
    shutil.copytree(kept, tmp_path / "runs" / task)

    def no_training(*args, **kwargs):
        raise AssertionError("the paper-scale study trained instead of reusing its kept run directory")

    monkeypatch.setattr(runs, "train_run", no_training)
    out = run_study(STUDIES["success_table"], scale="paper", out=tmp_path, tasks=(task,))
    with open(out / "success_table.csv") as f:
        rows = {(r["task"], r["init"]): r for r in csv.DictReader(f)}
    with open(PAPER / "success_table.csv") as f:
        shipped = {(r["task"], r["init"]): r for r in csv.DictReader(f)}
    for init in ("orthogonal", "normal"):
        assert rows[(task, init)]["members"] == "20"
        assert rows[(task, init)]["successes"] == shipped[(task, init)]["successes"]
    run = load_run(tmp_path / "runs" / task)
    assert run.config.shared_data and run.config.n_train == 15000 and run.config.epochs == 20
