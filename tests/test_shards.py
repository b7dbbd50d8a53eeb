"""Sharded ensembles (`runs.shards`): a grid split into 3 shards trained as jobs through submitit's local executor
(always) and a one-node Slurm (where one can start: `slurm` fixture), merged, equals the unsharded run member by
member; resubmission of what is not complete; failures named with their log; bad input refused before anything runs.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from jaxrnn import _platform
from jaxrnn.cli import main
from jaxrnn.runs import shards, store

pytest.importorskip("submitit")

TINY = ["--units", "6", "--epochs", "2", "--n-train", "16", "--batch-size", "4", "--trials", "16", "--no-progress",
        "--param", "T=40", "--param", "pulse_start=5", "--param", "response_start=25"]  # fmt: skip
#: 2 cells x 4 members = 8 members; 3 shards of 3, 3, 2 members: shard 001 holds the end of cell 0 and the start of 1
GRID = ["and", *TINY, "--grid", "init=orthogonal,normal", "--members", "4"]


def _command():
    exe = shutil.which("jaxrnn")
    return [exe] if exe else [sys.executable, "-m", "jaxrnn.cli"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of the jobs and of the unsharded reference run: this machine's CPU set-up (what each job
    chooses for itself) and a shared persistent XLA compilation cache (shards of 3 and 2 members compile one
    program)."""
    cache = tmp_path_factory.mktemp("xla_cache")
    return {
        "XLA_FLAGS": _platform.cpu_flags(),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def _main(argv, capsys, monkeypatch, cwd, env):
    monkeypatch.chdir(cwd)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same ensemble: parameters and history bit for bit, members.csv and evaluation."""
    ra, rb = store.load_run(a), store.load_run(b)
    np.testing.assert_array_equal(ra.members, rb.members)
    for stage in ("params_init", "params_final"):
        pa, pb = getattr(ra.ensemble, stage), getattr(rb.ensemble, stage)
        assert set(pa) == set(pb)
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=f"{stage}/{k}")
    for f in ("loss", "stop_epoch", "diverged"):
        np.testing.assert_array_equal(getattr(ra.ensemble, f), getattr(rb.ensemble, f), err_msg=f)
    for f in ra.evaluation._fields:
        np.testing.assert_array_equal(getattr(ra.evaluation, f), getattr(rb.evaluation, f), err_msg=f)
    assert (a / "members.csv").read_text() == (b / "members.csv").read_text()
    assert store.same_run(ra.meta, rb.config, rb.seed, rb.hparams, rb.members) == []
    assert ra.meta["grid"] == rb.meta["grid"]


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, env):
    """The grid trained as one ensemble by `jaxrnn train` (the reference)."""
    folder = tmp_path_factory.mktemp("unsharded")
    r = subprocess.run([*_command(), "train", *GRID, "--out", "whole"], cwd=folder, env={**os.environ, **env},
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return folder / "whole"


def test_split_is_contiguous_and_cell_major():
    parts = shards.split(8, 3)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    with pytest.raises(ValueError, match="more shards than the ensemble's 8 members"):
        shards.split(8, 9)
    with pytest.raises(ValueError, match=">= 1"):
        shards.split(8, 0)


def test_a_shard_of_a_grid_gets_its_members_values(tmp_path):
    from jaxrnn import runs
    from jaxrnn.tasks import make_task
    from jaxrnn.training.grid import Grid
    from jaxrnn.training.train import Hparams, TrainConfig

    task = make_task("time_reproduction")
    grid = Grid.of(task, repeats=2, lr=(1e-3, 3e-3), delay=(20, 60, 100))
    whole, part = grid.hparams(Hparams()), grid.hparams(Hparams(), [3, 4, 5])
    assert part.lr == whole.lr[3:6] and part.task["delay"] == whole.task["delay"][3:6]
    config = TrainConfig(task, units=4, epochs=1)
    for members in ([3, 12], [3, 3], 5):  # outside the grid, twice, a count other than the grid's
        with pytest.raises(ValueError, match="a grid of 12 members has member ids 0..11"):
            runs.train_run(tmp_path / "x", config, members=members, grid=grid)
    assert not (tmp_path / "x").exists()


def test_local_shards_merge_to_the_unsharded_run_and_resubmit_only_a_lost_shard(
    tmp_path, env, unsharded, capsys, monkeypatch
):
    t0 = time.perf_counter()
    code, out, err = _main(["train", *GRID, "--shards", 3, "--out", "sharded"], capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "submitted 3 of 3 shards (local executor" in err and "merged 3 shards (8 members)" in err
    print(f"3 local shards + merge: {time.perf_counter() - t0:.1f} s")
    run_dir = tmp_path / "sharded"
    _assert_same_run(run_dir, unsharded)
    meta = store.load_meta(run_dir)
    assert meta["extra"]["shards"]["members"] == [[0, 3], [3, 6], [6, 8]]
    assert len(meta["extra"]["timing"]["per_shard"]) == 3
    assert meta["extra"]["timing"]["train_s"] == pytest.approx(
        sum(t["train_s"] for t in meta["extra"]["timing"]["per_shard"]), abs=0.01
    )
    # each shard is an ordinary run directory holding its members, with the grid's values of ITS members
    shard1 = store.load_run(run_dir / "shards" / "001")
    assert shard1.members.tolist() == [3, 4, 5] and shard1.hparams.init == ["orthogonal", "normal", "normal"]
    assert [values for values, _ in shard1.cells()] == [{"init": "orthogonal"}, {"init": "normal"}]
    # `show` reads the merged run as one ensemble (one row per cell)
    code, out, err = _main(["show", run_dir], capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "E=8" in out and "orthogonal        4" in out

    # a lost shard (and the merged files) : the same command resubmits only that shard, and merges again
    shutil.rmtree(run_dir / "shards" / "001")
    (run_dir / "config.json").unlink()
    code, out, err = _main(["train", *GRID, "--shards", 3, "--out", "sharded"], capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "submitted 1 of 3 shards" in err and "2 complete shards kept" in err
    plan = shards.load_plan(run_dir)
    assert [sorted(s["jobs"]) for s in plan["submissions"]] == [["0", "1", "2"], ["1"]]
    _assert_same_run(run_dir, unsharded)
    # the merged run is what the unsharded command would have written: it reuses it
    code, out, err = _main(["train", *GRID, "--out", "sharded"], capsys, monkeypatch, tmp_path, env)
    assert code == 0 and "this run is already complete; reusing it" in err, err

    # merging shards of different configs is refused, naming the field; nothing is written
    (run_dir / "config.json").unlink()
    cfg = run_dir / "shards" / "002" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["config"]["units"] = 7
    cfg.write_text(json.dumps(meta))
    code, out, err = _main(["merge", run_dir], capsys, monkeypatch, tmp_path, env)
    assert code == 2 and "shard 002 holds a run of a different config" in err and "differs in: units" in err, err
    assert err.count("\n") == 1 and not (run_dir / "config.json").exists()


def test_failed_shard_is_named_with_its_log_and_nothing_is_merged(tmp_path, env, capsys, monkeypatch):
    """--no-wait submits and returns; a second submission while the jobs run is refused naming them; `merge --wait`
    reports the shard whose job raised, with its log's last lines, keeps the others and merges nothing."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import os

            if os.environ.get("SUBMITIT_LOCAL_JOB_ID"):  # in a local job's task process only
                import jaxrnn.runs

                _train_run = jaxrnn.runs.train_run

                def train_run(run_dir, *args, **kwargs):
                    if str(run_dir).endswith("001"):
                        raise RuntimeError("injected failure of shard 001")
                    return _train_run(run_dir, *args, **kwargs)

                jaxrnn.runs.train_run = train_run
            """
        )
    )
    env = {**env, "PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    argv = ["train", *GRID, "--shards", 3, "--out", "failing"]
    code, out, err = _main([*argv, "--no-wait"], capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "submitted 3 of 3 shards" in err and "jaxrnn merge failing --wait" in err
    code, out, err = _main(argv, capsys, monkeypatch, tmp_path, env)  # the jobs are still running
    assert code == 2 and "of an earlier submission are still running" in err and "000 (job " in err, err
    code, out, err = _main(["merge", "failing", "--wait"], capsys, monkeypatch, tmp_path, env)
    assert code == 1, err
    assert "1 of 3 shards are not complete; nothing was merged" in err
    assert "shard 001 (members 3..5, job " in err and "its job ended before the shard was complete" in err
    assert "RuntimeError: injected failure of shard 001" in err  # the log's last lines
    run_dir = tmp_path / "failing"
    assert not (run_dir / "config.json").exists()
    assert [store.load_meta(run_dir / "shards" / f"00{k}")["complete"] for k in (0, 2)] == [True, True]


def test_ctrl_c_while_waiting_leaves_the_jobs_and_says_how_to_merge(tmp_path, capsys, monkeypatch):
    submitted = []

    def submit(out, sh, todo, d):
        submitted.append(todo)
        return {k: {"job_id": "1"} for k in todo}

    def wait(out, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(shards, "submit", submit)
    monkeypatch.setattr(shards, "wait", wait)
    code, out, err = _main(["train", *GRID, "--shards", 2, "--out", "run"], capsys, monkeypatch, tmp_path, {})
    assert code == 130 and submitted == [[0, 1]]
    assert "the shards' jobs go on" in err and "jaxrnn merge run" in err


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["--shards", 9], "--shards 9: more shards than the ensemble's 8 members"),
        (["--shards", 0], "--shards: must be a positive integer, got 0"),
        (["--executor", "local"], "--executor: needs --shards K"),
        (["--no-wait"], "--no-wait: needs --shards K"),
        (["--shards", 2, "--partition", "gpu"], "--partition: Slurm options need --executor slurm"),
        (["--shards", 2, "--executor", "slurm"], "no Slurm is reachable from here (sbatch is not on PATH)"),
    ],
)
def test_bad_shard_input_one_line_exit_2_nothing_written(argv, expect, tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"  # a PATH without sbatch
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    code, out, err = _main(["train", *GRID, *argv, "--out", "x"], capsys, monkeypatch, tmp_path, {})
    assert code == 2 and expect in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_merge_of_a_folder_without_shards(tmp_path, capsys, monkeypatch):
    code, out, err = _main(["merge", tmp_path], capsys, monkeypatch, tmp_path, {})
    assert code == 2 and "not a sharded run" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------------------------------------------
# A real Slurm: a one-node cluster on this machine (Debian's slurm-wlm), where it can start.

#: Seconds the fixture may spend installing and starting Slurm before the Slurm tests skip.
SLURM_START_S = 300


def _slurm_ready() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in r.stdout.split())


def _start_slurm(deadline: float) -> str | None:
    """Install (apt-get) and start a one-node Slurm as root; None when it runs, else why not."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def run(*cmd, timeout=None):
        left = max(1.0, deadline - time.monotonic())
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=min(timeout or left, left))

    if shutil.which("slurmctld") is None:
        r = run("apt-get", "install", "-y", "-q", "slurm-wlm", "munge")
        if r.returncode != 0:
            run("apt-get", "update", "-q")
            r = run("apt-get", "install", "-y", "-q", "slurm-wlm", "munge")
        if r.returncode != 0:
            return f"apt-get install slurm-wlm munge failed: {r.stderr.strip().splitlines()[-1:]}"
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    conf = Path("/etc/slurm")
    conf.mkdir(parents=True, exist_ok=True)
    for d in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm", "/run/munge", "/var/log/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
    (conf / "slurm.conf").write_text(
        textwrap.dedent(
            f"""
            ClusterName=jaxrnn-test
            SlurmctldHost={host}
            SlurmUser=root
            AuthType=auth/munge
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            MpiDefault=none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            ReturnToService=2
            KillWait=1
            StateSaveLocation=/var/spool/slurmctld
            SlurmdSpoolDir=/var/spool/slurmd
            SlurmctldLogFile=/var/log/slurm/slurmctld.log
            SlurmdLogFile=/var/log/slurm/slurmd.log
            SlurmctldPidFile=/run/slurmctld.pid
            SlurmdPidFile=/run/slurmd.pid
            NodeName={host} CPUs={cpus} State=UNKNOWN
            PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
            """
        )
    )
    (conf / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n")
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    for d in ("/run/munge", "/var/log/munge", "/var/lib/munge", "/etc/munge"):
        if Path(d).exists():
            shutil.chown(d, "munge", "munge")
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        r = run("runuser", "-u", "munge", "--", "munged", timeout=30)
        if r.returncode != 0:
            return f"munged did not start: {r.stderr.strip()[-300:]}"
    for daemon in ("slurmctld", "slurmd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            r = run(daemon, timeout=30)
            if r.returncode != 0:
                return f"{daemon} did not start: {r.stderr.strip()[-300:]}"
        time.sleep(1)
    while time.monotonic() < deadline:
        if _slurm_ready():
            return None
        time.sleep(1)
    log = Path("/var/log/slurm/slurmd.log")
    tail = log.read_text(errors="replace").strip().splitlines()[-2:] if log.exists() else []
    return f"the node did not become idle within the time limit ({tail})"


@pytest.fixture(scope="session")
def slurm():
    """A one-node Slurm on this machine: one already running, or installed with apt-get and started (as root, within
    SLURM_START_S seconds; the time it took is printed); else the test skips with the reason."""
    if _slurm_ready():
        return "already running"
    if os.environ.get("JAXRNN_TEST_SLURM") == "0":
        pytest.skip("JAXRNN_TEST_SLURM=0: not starting Slurm")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no Slurm here, and it can only be installed as root with apt-get")
    t0 = time.monotonic()
    try:
        why = _start_slurm(t0 + SLURM_START_S)
    except (OSError, subprocess.SubprocessError) as e:
        why = f"{type(e).__name__}: {e}"
    if why is not None:
        pytest.skip(f"Slurm could not start: {why}")
    took = f"started in {time.monotonic() - t0:.0f} s"
    print(f"slurm: {took}")
    return took


@pytest.mark.slow
def test_slurm_job_array_merges_to_the_unsharded_run(slurm, tmp_path, env, unsharded, capsys, monkeypatch):
    t0 = time.perf_counter()
    argv = ["train", *GRID, "--shards", 3, "--executor", "slurm", "--time", 20, "--out", "sharded"]
    code, out, err = _main(argv, capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "submitted 3 of 3 shards (slurm executor" in err
    print(f"slurm ({slurm}): 3 shards as a job array + merge: {time.perf_counter() - t0:.1f} s")
    _assert_same_run(tmp_path / "sharded", unsharded)
    jobs = shards.load_plan(tmp_path / "sharded")["submissions"][0]["jobs"]
    assert len({j["job_id"].split("_")[0] for j in jobs.values()}) == 1  # one job array


@pytest.mark.slow
def test_slurm_scancel_then_resume(slurm, tmp_path, env, capsys, monkeypatch):
    """A shard whose job is cancelled mid-training (`scancel`) resumes from its checkpoint when the command runs
    again; the other shards are kept and the merged run is complete."""
    argv = ["train", *GRID, "--epochs", "60", "--n-train", "1024", "--shards", 3, "--executor", "slurm", "--time", 20,
            "--out", "sh"]  # fmt: skip
    code, out, err = _main([*argv, "--no-wait"], capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    run_dir = tmp_path / "sh"
    job = shards.load_plan(run_dir)["submissions"][0]["jobs"]["1"]["job_id"]
    ckpt = run_dir / "shards" / "001" / "checkpoint.npz"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # `scancel` sends SIGTERM, which submitit's job ignores (it takes it for Slurm's warning before preemption), and
    # SIGKILL KillWait seconds later (the fixture's cluster: 1 s; Slurm's default 30 s)
    subprocess.run(["scancel", job], check=True)
    shards.wait(run_dir, progress=False)
    if store.load_meta(run_dir / "shards" / "001").get("complete"):
        pytest.skip("shard 001 finished before scancel reached it")
    code, out, err = _main(argv, capsys, monkeypatch, tmp_path, env)
    assert code == 0, err
    assert "submitted 1 of 3 shards" in err and "2 complete shards kept" in err
    log = Path(shards.load_plan(run_dir)["submissions"][1]["jobs"]["1"]["stderr"]).read_text()
    assert "resuming from the checkpoint at epoch" in log
    assert store.load_run(run_dir).members.tolist() == list(range(8))


def test_a_study_trains_its_grid_as_shards_and_reports_their_times(tmp_path, env, capsys, monkeypatch):
    """`jaxrnn study lr_delay --shards 2 --executor local`: the grid ensemble is trained as 2 jobs and merged into the
    study's run directory, which the study analyses as one ensemble; the report gives each shard's members, job and
    training time, the merge's time and the wall time from submission to the merged run."""
    code, _, err = _main(["study", "lr_delay", "--scale", "smoke", "--shards", "2", "--executor", "local", "--out",
                          "sweep"], capsys, monkeypatch, tmp_path, env)  # fmt: skip
    assert code == 0, err
    run = store.load_run(tmp_path / "sweep" / "runs" / "lr_delay_N8")
    assert len(run.members) == 8 and run.meta["extra"]["shards"]["count"] == 2
    assert run.meta["extra"]["shards"]["members"] == [[0, 4], [4, 8]]
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "`lr_delay_N8` was trained as 2 shards" in report and "wall time from submission" in report
    rows = [line for line in report.splitlines() if line.startswith(("| 0 | 0–3 |", "| 1 | 4–7 |"))]
    assert len(rows) == 2, report
    assert "0 reused from existing run directories" in report
    csv_rows = (tmp_path / "sweep" / "lr_delay.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 4  # 2 learning rates x 2 delays, every cell analysed from the merged run
