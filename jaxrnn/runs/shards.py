"""One ensemble (plain or grid) trained as K shards, each its own job, and merged into one run directory.

    run = train_sharded("runs/sweep", config, seed=0, members=4, hparams=hp, grid=grid, shards=Shards(3, "slurm"))

An ensemble's member ids are split into K contiguous parts (`split`; cell-major for a grid, so a shard holds whole
cells or parts of them in order). Shard k is an ordinary run directory `OUT/shards/NNN` trained by
`jaxrnn.runs.train_run` with its member ids (its own checkpoints, resume and lock). A member's key is
`fold_in(key(seed), i)` whatever ensemble it is trained in, and a shard of a grid gets the grid's values of ITS
members (`Grid.hparams(base, ids)`), so member i is the same network in a shard, in the whole ensemble and alone.

    OUT/shards/plan.json   the ensemble (config, seed, member ids, hparams: `store.same_run` reads it as a run),
                           the number of shards, the evaluation settings and every submission's jobs and log files
    OUT/shards/NNN/        shard NNN's run directory
    OUT/shards/logs/       submitit's folder: the pickled calls, results and each job's stdout and stderr
    OUT/config.json, ...   the merged run (`merge`), written once every shard is complete (config.json last)

The jobs go through submitit (`pip install 'jaxrnn[slurm]'`): `Shards(executor="slurm")` submits one Slurm job
array per submission, `executor="local"` starts one local process per shard, all at once (they run in parallel and
share the machine's cores). Submitting again skips complete shards and resubmits the others, which resume from their
checkpoints; a submission while jobs of an earlier one are still queued or running is refused, naming them. `merge`
concatenates the shards in member order into `OUT` (params.npz, history.npz, evaluation.npz, members.csv,
config.json), which `jaxrnn show`, `plot`, `evaluate` and the studies read as one ensemble; it refuses shards of a
different config (naming the field) and names a missing or failed shard with the last lines of its job's log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jaxrnn import runs
from jaxrnn.runs import store
from jaxrnn.runs.store import Run, StoreError
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Ensemble, Hparams, TrainConfig

SHARDS = "shards"
PLAN = "plan.json"
LOGS = "logs"
PLAN_FORMAT = "jaxrnn-shards"
EXECUTORS = ("local", "slurm")
#: Job time limit of the local executor when none is given (submitit's own default is 2 minutes).
LOCAL_TIME_MIN = 30 * 24 * 60
#: Slurm job time limit when none is given (`--time`).
SLURM_TIME_MIN = 60
#: Log lines shown for a failed shard.
TAIL_LINES = 8
#: Seconds between two looks at the shards while waiting.
POLL_S = 2.0


class ShardsIncomplete(ValueError):
    """Some shards are not complete (missing, still running or failed): nothing was merged. The message names each
    one, with the last lines of its job's log, over several lines."""


@dataclasses.dataclass(frozen=True)
class Shards:
    """How to shard an ensemble and where its jobs run.

    Attributes:
        count: K, the number of shards (1 <= K <= E).
        executor: "local" (one local process per shard, all started at once) or "slurm" (one job array).
        partition, time, cpus_per_task, gpus_per_task, mem: Slurm's `--partition`, `--time` (minutes; also the local
            executor's limit), `--cpus-per-task`, `--gpus-per-task`, `--mem` (GB); None: Slurm's default (time:
            `SLURM_TIME_MIN`).
        sbatch: more `sbatch` flags, ((KEY, VALUE), ...); VALUE None for a flag without a value.
        wait: wait for the jobs (progress bar over shards) and merge; False: return after submitting.
        progress: show the progress bar while waiting.
    """

    count: int
    executor: str = "local"
    partition: str | None = None
    time: int | None = None
    cpus_per_task: int | None = None
    gpus_per_task: int | None = None
    mem: float | None = None
    sbatch: tuple[tuple[str, str | None], ...] = ()
    wait: bool = True
    progress: bool = True

    def check(self) -> Shards:
        """Validate the options (no Slurm needed). Returns self; raises ValueError."""
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) or self.count < 1:
            raise ValueError(f"--shards must be a positive integer, got {self.count!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"--executor {self.executor!r}: allowed: {', '.join(EXECUTORS)}")
        slurm_only = {
            "--partition": self.partition,
            "--cpus-per-task": self.cpus_per_task,
            "--gpus-per-task": self.gpus_per_task,
            "--mem": self.mem,
            "--sbatch": self.sbatch or None,
        }
        given = [k for k, v in slurm_only.items() if v is not None]
        if self.executor == "local" and given:
            raise ValueError(f"{', '.join(given)}: Slurm options need --executor slurm")
        for key, _ in self.sbatch:
            if not key or not key.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"--sbatch {key!r}: expected KEY=VALUE or KEY (an sbatch option without its dashes)")
        return self


def parse_sbatch(items: Sequence[str] | None) -> tuple[tuple[str, str | None], ...]:
    """`--sbatch KEY=VALUE` (or `KEY` alone, a flag) items as ((KEY, VALUE), ...), dashes stripped from KEY."""
    out = []
    for item in items or ():
        key, _, value = item.partition("=")
        out.append((key.strip().lstrip("-"), value if "=" in item else None))
    return tuple(out)


def split(members: int | Sequence[int] | np.ndarray, count: int) -> list[np.ndarray]:
    """The member ids of each of `count` shards: contiguous, in order, sizes differing by at most one (the first
    shards take the extra members). Raises ValueError when count < 1 or more than the members."""
    ids = runs.member_ids(members)
    if count < 1:
        raise ValueError(f"--shards must be >= 1, got {count}")
    if count > len(ids):
        raise ValueError(f"--shards {count}: more shards than the ensemble's {len(ids)} members")
    return [np.asarray(p, np.int64) for p in np.array_split(ids, count)]


# ----------------------------------------------------------------------------------------------------------------
# The plan: what the shards train.


@dataclasses.dataclass(frozen=True)
class Plan:
    """A sharded ensemble: the run (config, seed, member ids, hparams, grid), its K shards and the training settings.

    `hparams` are the BASE hparams given to `train_run` (for a grid, before the grid's per-member values);
    `full_hparams()` are the whole ensemble's (what the merged config.json holds), `shard_hparams(k)` shard k's.
    """

    config: TrainConfig
    seed: int
    members: np.ndarray
    hparams: Hparams
    grid: Grid | None
    count: int
    n_eval: int = 512
    success_at: float = 0.9
    checkpoint_every: int = 1
    chunk_size: int | None = None
    command: tuple[str, ...] | None = None
    extra: dict | None = None

    def parts(self) -> list[np.ndarray]:
        """Member ids of every shard."""
        return split(self.members, self.count)

    def full_hparams(self) -> Hparams:
        """The hparams of the whole ensemble, as its unsharded run directory records them."""
        return self.grid.hparams(self.hparams, self.members) if self.grid is not None else self.hparams

    def shard_hparams(self, k: int) -> Hparams:
        """The `hparams` argument of shard k's `train_run`: the base hparams cut to the shard's members (a grid then
        applies its own values to the shard's ids)."""
        index = np.array_split(np.arange(len(self.members)), self.count)[k]  # positions, whatever the ids' order
        return _slice_hparams(self.config, self.hparams, len(self.members), index)

    def recorded_hparams(self, k: int) -> Hparams:
        """The hparams shard k's config.json records."""
        hp = self.shard_hparams(k)
        return self.grid.hparams(hp, self.parts()[k]) if self.grid is not None else hp

    def settings(self) -> dict:
        """The evaluation settings every shard is evaluated with."""
        return runs.eval_settings(self.n_eval, self.success_at)

    def to_dict(self) -> dict:
        """plan.json's run part: the keys of a run's config.json that `store.same_run` compares, and the rest."""
        return {
            "format": PLAN_FORMAT,
            "config": store.config_to_dict(self.config),
            "seed": int(self.seed),
            "hparams": store._hparams_to_dict(self.full_hparams()),
            "base_hparams": store._hparams_to_dict(self.hparams),
            "members": store.member_ids_to_json(self.members),
            "grid": None if self.grid is None else self.grid.to_dict(),
            "shards": int(self.count),
            "evaluation": self.settings(),
            "checkpoint_every": int(self.checkpoint_every),
            "chunk_size": self.chunk_size,
            "argv": None if self.command is None else [str(a) for a in self.command],
            "extra": store._json_safe(self.extra or {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        """The Plan of `to_dict`'s output. Raises StoreError when `d` is not one."""
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise StoreError(f"not a jaxrnn shard plan (format is not {PLAN_FORMAT!r})")
        try:
            ev = d["evaluation"]
            return cls(
                config=store.config_from_dict(d["config"]),
                seed=int(d["seed"]),
                members=store.member_ids_from_json(d["members"]),
                hparams=store.hparams_from_dict(d["base_hparams"]),
                grid=Grid.from_dict(d["grid"]) if d.get("grid") else None,
                count=int(d["shards"]),
                n_eval=int(ev["trials"]),
                success_at=float(ev["success_at"]),
                checkpoint_every=int(d["checkpoint_every"]),
                chunk_size=d.get("chunk_size"),
                command=tuple(d["argv"]) if d.get("argv") else None,
                extra=d.get("extra") or None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"damaged shard plan ({type(e).__name__}: {e})") from None

    def differs(self, d: dict) -> list[str]:
        """What differs between this plan and a stored plan dict: run fields as `store.same_run` names them, then
        "grid", "shards", "evaluation"; [] when they are the same sharded run."""
        diffs = store.same_run(d, self.config, self.seed, self.full_hparams(), self.members)
        mine = self.to_dict()
        diffs += [k for k in ("grid", "shards") if d.get(k) != mine[k]]
        if not runs._same_settings(d.get("evaluation") or {}, mine["evaluation"]):
            diffs.append("evaluation")
        return diffs


def _slice_hparams(config: TrainConfig, hparams: Hparams, E: int, index: np.ndarray) -> Hparams:
    """`hparams` of E members restricted to the members at `index`: a value given per member is cut, a shared one
    stays (as `Run.subset` does)."""
    from jaxrnn.training.train import _task_values

    def cut(v):
        if isinstance(v, (list, tuple, np.ndarray)) and not isinstance(v, str) and len(v) == E:
            return np.asarray(v)[index].tolist()
        return v

    fields = {k: cut(v) for k, v in hparams._asdict().items() if k != "task"}
    if hparams.task:
        per_member = [_task_values(config.task, hparams.task, int(i), E) for i in range(E)]
        fields["task"] = {}
        for k, v in hparams.task.items():
            values = [m[k] for m in per_member]
            same = all(x == values[0] for x in values)
            fields["task"][k] = v if same else [values[int(i)] for i in index]
    return Hparams(**fields)


def shards_dir(out: str | Path) -> Path:
    return Path(out) / SHARDS


def shard_dir(out: str | Path, k: int) -> Path:
    """Shard k's run directory, `OUT/shards/NNN`."""
    return shards_dir(out) / f"{k:03d}"


def load_plan(out: str | Path) -> dict:
    """plan.json of a sharded run as a dict. Raises StoreError when `out` has none or it is damaged."""
    path = shards_dir(out) / PLAN
    if not path.is_file():
        raise StoreError(f"{out}: not a sharded run (no {SHARDS}/{PLAN}; `jaxrnn train ... --shards K` writes it)")
    d = store.read_json(path)
    if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
        raise StoreError(f"{path}: not a jaxrnn shard plan")
    return d


def _write_plan(out: Path, d: dict) -> None:
    shards_dir(out).mkdir(parents=True, exist_ok=True)
    store._write_json(shards_dir(out) / PLAN, store._json_safe(d))


# ----------------------------------------------------------------------------------------------------------------
# One shard, in its job.


def run_shard(out: str, k: int) -> dict:
    """Train shard k of the sharded run in `out` (what each job runs): `train_run` into `OUT/shards/NNN` with the
    shard's member ids and hparams, resuming from its checkpoint. Returns {"shard", "members", "origin"}.

    XLA's CPU set-up (`jaxrnn.configure`) is made for this job's cores. A member's results do not depend on the
    ensemble it is trained in, except that XLA computes a batch of ONE member per device with other kernels (results
    differ in the last bit); a shard with fewer than two members per device is therefore padded to two (the padding
    is computed and dropped), as a larger ensemble computes them.
    """
    from jaxrnn import _platform

    _platform.configure()
    import jax

    from jaxrnn.training.train import default_chunk

    plan = Plan.from_dict(load_plan(out))
    ids = plan.parts()[k]
    chunk = plan.chunk_size or default_chunk(plan.config, len(ids))
    chunk = max(chunk, 2 * jax.local_device_count())
    folder = shard_dir(out, k)

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] shard {k:03d}: {message}", file=sys.stderr, flush=True)

    def progress(p: runs.Progress) -> None:
        if not p.compiling:
            say(f"epoch {p.epoch}/{p.epochs}, median loss {p.median_loss:.4g}, stopped {p.stopped}, "
                f"diverged {p.diverged} ({p.seconds:.0f} s)")  # fmt: skip

    run = runs.train_run(
        folder,
        plan.config,
        seed=plan.seed,
        members=ids,
        hparams=plan.shard_hparams(k),
        grid=plan.grid,
        n_eval=plan.n_eval,
        success_at=plan.success_at,
        checkpoint_every=plan.checkpoint_every,
        chunk_size=chunk,
        progress=progress,
        log=say,
        command=plan.command,
        extra={**(plan.extra or {}), "shard": {"index": k, "count": plan.count}},
    )
    say(f"{run.origin}: members {int(ids[0])}..{int(ids[-1])}, {int(np.sum(run.learned))}/{len(ids)} succeed")
    return {"shard": k, "members": [int(ids[0]), int(ids[-1]) + 1], "origin": run.origin}


# ----------------------------------------------------------------------------------------------------------------
# The state of the shards and their jobs.


def _shard_complete(plan: Plan, out: Path, k: int) -> bool:
    """Whether shard k is a complete run directory of this plan's shard k."""
    folder = shard_dir(out, k)
    try:
        meta = store.load_meta(folder)
    except StoreError:
        return False
    return bool(meta.get("complete")) and not _shard_diffs(plan, meta, k)


def _shard_diffs(plan: Plan, meta: dict, k: int) -> list[str]:
    """What differs between shard k's config.json and what the plan says it trains."""
    diffs = store.same_run(meta, plan.config, plan.seed, plan.recorded_hparams(k), plan.parts()[k])
    if (meta.get("grid") or None) != (None if plan.grid is None else plan.grid.to_dict()):
        diffs.append("grid")
    return diffs


def _last_jobs(d: dict) -> dict[int, dict]:
    """Shard index -> its latest job record {"job_id", "executor", "stdout", "stderr"} over the submissions."""
    jobs: dict[int, dict] = {}
    for sub in d.get("submissions") or []:
        for k, job in (sub.get("jobs") or {}).items():
            jobs[int(k)] = {**job, "executor": sub.get("executor")}
    return jobs


def _active_jobs(jobs: dict[int, dict]) -> dict[int, str]:
    """Shard index -> state, for the recorded jobs that are still queued or running (Slurm: `squeue`; local: the
    job's process is alive)."""
    active: dict[int, str] = {}
    slurm = {k: j for k, j in jobs.items() if j.get("executor") == "slurm"}
    if slurm and shutil.which("squeue"):
        try:
            r = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=60)
            states = dict(line.split()[:2] for line in r.stdout.splitlines() if len(line.split()) >= 2)
        except (OSError, subprocess.SubprocessError):
            states = {}
        for k, j in slurm.items():
            if str(j.get("job_id")) in states:
                active[k] = states[str(j["job_id"])].lower()
    for k, j in jobs.items():
        if j.get("executor") == "local" and _pid_alive(j.get("job_id")):
            active[k] = "running"
    return active


def _pid_alive(pid) -> bool:
    """Whether process `pid` is alive and a submitit job (a reused pid of another program is not)."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (ValueError, TypeError, OSError):
        return False
    return b"submitit" in cmdline and stat[0] != "Z"


def log_tail(job: dict | None, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a job's stderr (else stdout) log, [] when there is none."""
    for key in ("stderr", "stdout"):
        path = Path(str((job or {}).get(key) or ""))
        if path.is_file():
            text = path.read_text(errors="replace").rstrip().splitlines()
            if text:
                return [f"    {line}" for line in text[-lines:]]
    return []


def status(out: str | Path) -> dict:
    """The shards of the sharded run in `out`: {"plan": Plan, "complete": [k], "active": {k: state}, "todo": [k]}
    (todo: neither complete nor queued nor running)."""
    out = Path(out)
    d = load_plan(out)
    plan = Plan.from_dict(d)
    complete = [k for k in range(plan.count) if _shard_complete(plan, out, k)]
    active = {k: s for k, s in _active_jobs(_last_jobs(d)).items() if k not in complete}
    for k in range(plan.count):  # a job that is not ours (or not recorded) holding the shard's lock
        if k not in complete and k not in active and store.lock_holder(shard_dir(out, k)) is not None:
            active[k] = "running (holds the shard's lock)"
    todo = [k for k in range(plan.count) if k not in complete and k not in active]
    return {"plan": plan, "complete": complete, "active": active, "todo": todo, "jobs": _last_jobs(d)}


def _names(ks, jobs: dict[int, dict]) -> str:
    return ", ".join(f"{k:03d}" + (f" (job {jobs[k]['job_id']})" if k in jobs else "") for k in ks)


# ----------------------------------------------------------------------------------------------------------------
# Submission.


def check_executor(shards: Shards) -> None:
    """Refuse an executor that cannot submit here, before anything is written: submitit missing, or for Slurm no
    `sbatch` on PATH. Raises ValueError (one line)."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ValueError(
            f"--executor {shards.executor}: needs submitit, which is not installed (pip install 'jaxrnn[slurm]')"
        ) from None
    if shards.executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError(
            "--executor slurm: no Slurm is reachable from here (sbatch is not on PATH); run on a Slurm login node "
            "or use --executor local; nothing was submitted"
        )


def _executor(shards: Shards, folder: Path, name: str):
    """The submitit executor of `shards`, writing its files to `folder`."""
    import submitit

    if shards.executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=shards.time or LOCAL_TIME_MIN)
        return ex
    ex = submitit.SlurmExecutor(folder=folder)
    params = {"job_name": name, "time": shards.time or SLURM_TIME_MIN}
    for key in ("partition", "cpus_per_task", "gpus_per_task"):
        if getattr(shards, key) is not None:
            params[key] = getattr(shards, key)
    if shards.mem is not None:
        params["mem"] = f"{int(round(shards.mem * 1024))}M"
    if shards.sbatch:
        params["additional_parameters"] = {k.replace("-", "_"): (True if v is None else v) for k, v in shards.sbatch}
    ex.update_parameters(**params)
    return ex


@contextlib.contextmanager
def _job_environment():
    """While submitting: the jobs get the user's environment, not this process's CPU set-up (XLA_FLAGS that
    `jaxrnn.configure` chose for this machine: each job configures its own), and ignore SIGINT, so that a Ctrl-C
    in the terminal stops the waiting command but not the local jobs (a Slurm job never sees it)."""
    from jaxrnn import _platform

    flags = os.environ.get("XLA_FLAGS")
    ours = flags is not None and flags == _platform.cpu_flags()
    if ours:
        del os.environ["XLA_FLAGS"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        yield
    finally:
        if ours:
            os.environ["XLA_FLAGS"] = flags
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def submit(out: Path, shards: Shards, todo: list[int], d: dict) -> dict[int, dict]:
    """Submit the shards `todo` of the plan `d` as one job array; record the jobs in plan.json. Returns them."""
    logs = shards_dir(out) / LOGS
    logs.mkdir(parents=True, exist_ok=True)
    ex = _executor(shards, logs, f"jaxrnn-{out.name}")
    with _job_environment():
        jobs = ex.map_array(run_shard, [str(out)] * len(todo), todo)
    records = {
        int(k): {"job_id": str(j.job_id), "stdout": str(j.paths.stdout), "stderr": str(j.paths.stderr)}
        for k, j in zip(todo, jobs, strict=True)
    }
    sub = {"executor": shards.executor, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "jobs": records}
    d = {**d, "submissions": [*(d.get("submissions") or []), sub]}
    _write_plan(out, d)
    return records


def train_sharded(
    out: str | Path,
    config: TrainConfig,
    shards: Shards,
    *,
    seed: int = 0,
    members: int | Sequence[int] | None = None,
    hparams: Hparams = Hparams(),
    grid: Grid | None = None,
    overwrite: bool = False,
    n_eval: int = 512,
    success_at: float = 0.9,
    checkpoint_every: int = 1,
    chunk_size: int | None = None,
    log: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
    extra: dict | None = None,
) -> Run | None:
    """Train the ensemble of `train_run`'s arguments as `shards.count` shards through submitit and merge them into
    `out`; returns the merged Run (None with `shards.wait` False, once the jobs are submitted).

    A complete run of the same ensemble in `out` (merged, or trained unsharded) is returned as it is (evaluated with
    these settings if it was not); complete shards are kept and only the others are submitted (they resume from their
    checkpoints). `overwrite` replaces a sharded run of another config, or anything else, in `out` (everything in it
    is deleted first).

    Raises:
        ValueError: bad shard options, K larger than the members, no Slurm for `executor="slurm"`, `out` holding
            something else, a different config (without `overwrite`) or jobs of an earlier submission still queued
            or running (all before anything is submitted); ShardsIncomplete when a shard failed (after waiting).
        KeyboardInterrupt: Ctrl-C while waiting; the jobs go on (`detached_message` says what to do).
    """
    shards.check()
    say = log or (lambda m: None)
    out = runs.check_dir_out(out)
    if grid is not None:
        grid.check(config.task)
        whole = members is None or (isinstance(members, (int, np.integer)) and members == grid.members)
        ids = np.arange(grid.members) if whole else runs.member_ids(members)
    else:
        ids = runs.member_ids(16 if members is None else members)
    plan = Plan(config, seed, ids, hparams, grid, shards.count, n_eval, success_at, checkpoint_every, chunk_size,
                None if command is None else tuple(command), extra)  # fmt: skip
    plan.parts()  # K <= E
    from jaxrnn.training.train import resolve

    resolve(config, plan.full_hparams(), len(ids))  # every member's numbers, before anything is written
    if (out / store.CONFIG).exists():  # merged (or trained unsharded) already
        try:
            meta = store.load_meta(out)
        except StoreError:
            meta = {}
        if meta.get("complete") and not store.same_run(meta, config, seed, plan.full_hparams(), ids):
            say(f"{out}: this ensemble is already complete; reusing it")
            return runs._ensure_evaluated(store.load_run(out), plan.settings())
    check_executor(shards)
    d = plan.to_dict()
    stored = load_plan(out) if (shards_dir(out) / PLAN).exists() else None
    diffs = plan.differs(stored) if stored is not None else []
    if diffs or (stored is None and runs.holds_files(out)):
        if not overwrite:
            what = "a sharded run with a different config (differs in: " + ", ".join(diffs[:8]) + ")" if diffs else (
                "a run directory that is not sharded" if (out / store.CONFIG).exists() else "files")  # fmt: skip
            raise ValueError(f"--out {out}: holds {what}; pass --overwrite to replace it or choose another --out")
        if stored is not None:
            _refuse_active(out, status(out))
        _clear(out)
    elif stored is not None:
        d = {**d, "submissions": stored.get("submissions") or []}
    _write_plan(out, d)
    st = status(out)
    _refuse_active(out, st)
    if st["todo"]:
        records = submit(out, shards, st["todo"], load_plan(out))
        say(
            f"{out}: submitted {len(st['todo'])} of {plan.count} shards ({shards.executor} executor, jobs "
            f"{_job_range(records)}; logs in {shards_dir(out) / LOGS})"
            + (f"; {len(st['complete'])} complete shards kept" if st["complete"] else "")
        )
    else:
        say(f"{out}: every shard is complete; merging")
    if not shards.wait:
        return None
    wait(out, progress=shards.progress)
    return merge(out, log=log)


def _job_range(records: dict[int, dict]) -> str:
    ids = [r["job_id"] for r in records.values()]
    return ids[0] if len(ids) == 1 else f"{ids[0]} .. {ids[-1]}"


def _refuse_active(out: Path, st: dict) -> None:
    if st["active"]:
        ks = sorted(st["active"])
        raise ValueError(
            f"--out {out}: shards {_names(ks, st['jobs'])} of an earlier submission are still "
            f"{', '.join(sorted(set(st['active'].values())))}; wait for them (`jaxrnn merge {out} --wait`) or cancel "
            "them before submitting again"
        )


def _clear(out: Path) -> None:
    """Delete everything in `out` but its lock (for `overwrite`), under its lock."""
    with store.locked(out):
        for p in out.iterdir():
            if p.name == store.LOCK:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def wait(out: str | Path, progress: bool = True) -> None:
    """Wait until no shard of `out` is queued or running, with a progress bar over the shards (stderr)."""
    out = Path(out)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=load_plan(out).get("shards"), unit="shard", desc="shards", file=sys.stderr,
                   dynamic_ncols=True)  # fmt: skip
    try:
        while True:
            st = status(out)
            if bar is not None:
                bar.set_postfix_str(f"{len(st['active'])} queued or running", refresh=False)
                bar.update(len(st["complete"]) - bar.n)
            if not st["active"]:
                return
            time.sleep(POLL_S)
    finally:
        if bar is not None:
            bar.close()


def detached_message(out: str | Path) -> str:
    """What to do after Ctrl-C while waiting: the jobs go on; how to merge later."""
    return (
        f"jaxrnn: interrupted while waiting; the shards' jobs go on. Later, `jaxrnn merge {out}` merges them once they "
        f"are done (`jaxrnn merge {out} --wait` waits for them first); the same `jaxrnn train` command resubmits any "
        "shard that failed"
    )


def submitted_message(out: str | Path) -> str:
    """What to do after `--no-wait`."""
    return (
        f"jaxrnn: shards submitted; `jaxrnn merge {out} --wait` waits for them and merges (`jaxrnn merge {out}` once "
        "they are done)"
    )


# ----------------------------------------------------------------------------------------------------------------
# Merging.


def merge(out: str | Path, log: Callable[[str], None] | None = None) -> Run:
    """Merge the complete shards of the sharded run in `out` into one run directory `out` and return it.

    Raises:
        ShardsIncomplete: a shard is missing, still queued or running, or failed (each named, with its log's last
            lines); nothing is written.
        ValueError (StoreError): a shard of a different config (naming the field) or evaluated with other settings.
    """
    out = Path(out)
    t0 = time.perf_counter()
    d = load_plan(out)
    plan = Plan.from_dict(d)
    ids = plan.parts()
    full = plan.full_hparams()
    if (out / store.CONFIG).exists():
        meta = store.load_meta(out)
        if meta.get("complete") and not store.same_run(meta, plan.config, plan.seed, full, plan.members):
            if log is not None:
                log(f"{out}: already merged")
            return store.load_run(out)
    for k in range(plan.count):  # a shard of another config is refused, whatever its state
        try:
            meta = store.load_meta(shard_dir(out, k))
        except StoreError:
            continue
        diffs = _shard_diffs(plan, meta, k)
        if diffs:
            raise ValueError(
                f"{shard_dir(out, k)}: shard {k:03d} holds a run of a different config than {out}'s plan (differs "
                f"in: {', '.join(diffs[:8])}); nothing was merged"
            )
    st = status(out)
    missing = [k for k in range(plan.count) if k not in st["complete"]]
    if missing:
        lines = [f"{out}: {len(missing)} of {plan.count} shards are not complete; nothing was merged"]
        for k in missing:
            folder = shard_dir(out, k)
            if k in st["active"]:
                why = st["active"][k]
            elif k not in st["jobs"]:
                why = "never submitted" if not folder.exists() else "not finished (no job recorded)"
            else:
                why = "its job ended before the shard was complete (failed, cancelled or killed)"
                why += "" if folder.exists() else "; its folder is missing"
            job = st["jobs"].get(k)
            where = f", job {job['job_id']}" if job else ""
            lines.append(f"  shard {k:03d} (members {int(ids[k][0])}..{int(ids[k][-1])}{where}): {why}")
            tail = log_tail(job) if k not in st["active"] else []
            if tail:
                lines.append(f"    last lines of {job.get('stderr')}:")
                lines += tail
        lines.append(
            "  rerun the same `jaxrnn train` command to resubmit the shards that are not complete"
            if not st["active"]
            else f"  wait for the running shards (`jaxrnn merge {out} --wait`)"
        )
        raise ShardsIncomplete("\n".join(lines))
    parts = [store.load_run(shard_dir(out, k)) for k in range(plan.count)]
    settings = plan.settings()
    for k, run in enumerate(parts):
        got = run.evaluation_settings
        if run.evaluation is None or not runs._same_settings(got, settings):
            bad = [f for f in ("trials", "seed", "success_at", "rule") if str(got.get(f)) != str(settings[f])]
            raise ValueError(
                f"{run.path}: shard {k:03d} is evaluated with other settings than the plan (differs in: "
                f"{', '.join('evaluation.' + f for f in bad) or 'evaluation'}); run `jaxrnn evaluate {run.path} "
                f"--trials {settings['trials']} --success-at {settings['success_at']}` or rerun the train command"
            )

    def joined(field: str):
        values = [getattr(p.ensemble, field) for p in parts]
        if isinstance(values[0], dict):  # parameters: each array along the member axis
            return {k: np.concatenate([np.asarray(v[k]) for v in values]) for k in values[0]}
        return np.concatenate([np.asarray(v) for v in values])

    ensemble = Ensemble(**{f: joined(f) for f in Ensemble._fields})
    evaluation = type(parts[0].evaluation)(
        *(np.concatenate([np.asarray(getattr(p.evaluation, f)) for p in parts]) for f in parts[0].evaluation._fields)
    )
    if not np.array_equal(ensemble.members, plan.members):
        raise StoreError(f"{out}: the shards' member ids are not the plan's")
    extra = {
        **(plan.extra or {}),
        "timing": _merged_timing(parts, len(plan.members)),
        "evaluation": settings,
        "shards": {
            "count": plan.count,
            "folder": SHARDS,
            "members": [[int(p[0]), int(p[-1]) + 1] for p in ids],
            "jobs": {f"{k:03d}": j.get("job_id") for k, j in sorted(st["jobs"].items())},
        },
        "checkpoint_every": plan.checkpoint_every,
    }
    with store.locked(out):
        if (out / store.CONFIG).exists():  # an earlier merge's files are replaced: not complete meanwhile
            store.write_config(out, {**store.load_meta(out), "complete": False})
        extra["timing"]["merge_s"] = round(time.perf_counter() - t0, 3)
        store.save_run(out, plan.config, ensemble, evaluation, seed=plan.seed, hparams=full, extra=extra,
                       command=plan.command, grid=plan.grid)  # fmt: skip
    if log is not None:
        log(f"{out}: merged {plan.count} shards ({len(plan.members)} members) in {time.perf_counter() - t0:.1f} s")
    return store.load_run(out)


def _merged_timing(parts: list[Run], E: int) -> dict:
    """The merged run's `extra.timing`: totals over the shards (train_s: summed training time; s_per_epoch: one epoch
    of every shard, one after another), and each shard's own timing."""
    timings = [dict((p.meta.get("extra") or {}).get("timing") or {}) for p in parts]
    s_epoch = sum(float(t.get("s_per_epoch") or 0.0) for t in timings)
    return {
        "train_s": round(sum(float(t.get("train_s") or 0.0) for t in timings), 3),
        "max_shard_train_s": round(max(float(t.get("train_s") or 0.0) for t in timings), 3),
        "s_per_epoch": round(s_epoch, 4),
        "s_per_network_epoch": round(s_epoch / max(E, 1), 5),
        "includes_compile": any(bool(t.get("includes_compile")) for t in timings),
        "first_call_s": max((float(t.get("first_call_s") or 0.0) for t in timings), default=0.0),
        "first_call_epochs": timings[0].get("first_call_epochs"),
        "calls": sum(int(t.get("calls") or 0) for t in timings),
        "summed_over_shards": True,
        "per_shard": [
            {"shard": k, "members": len(p.members), "written": p.meta.get("written"), **t}
            for k, (p, t) in enumerate(zip(parts, timings, strict=True))
        ],
    }


__all__ = [
    "Plan",
    "Shards",
    "ShardsIncomplete",
    "detached_message",
    "load_plan",
    "merge",
    "parse_sbatch",
    "run_shard",
    "shard_dir",
    "split",
    "status",
    "submit",
    "submitted_message",
    "train_sharded",
    "wait",
]
