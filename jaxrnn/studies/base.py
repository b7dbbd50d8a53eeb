"""What every study is made of: a `Study` (name, scales, the function that runs it), a `Scale` (members, a
`Protocol`, the sweep), the `Context` a study runs in, reference data, CSVs and the report.

A study is one module that defines `STUDY = Study(...)` plus one line in `jaxrnn.studies.STUDIES`. Its function
`run(ctx)` trains (or reuses) its ensembles with `ctx.train(...)` (the one path into a run directory,
`jaxrnn.runs.train_run`: a killed study resumes its ensembles from their checkpoints), writes CSVs and figures under
`ctx.out`, and returns the report's body; `run_study` writes `report.md` around it from structured facts: the
command, the scale, one row per ensemble with its protocol read from its own run directory, the success rules of its
tasks, the device and the times. Its function `ensembles(scale, E, tasks, options)` (`Study.ensembles`) lists the
ensembles `run` trains, so that `check_study` refuses a study whose ensembles do not fit in memory before anything is
written.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxrnn import _platform, cells, runs
from jaxrnn.runs.store import CHECKPOINT, CONFIG, LOCK, Run, StoreError, load_meta, same_run
from jaxrnn.tasks import Task
from jaxrnn.training import budget
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Hparams, TrainConfig

#: tutorial: flipflop3 only (the tutorial's own model); sweep: lr_delay only (more seeds and training, run as shards)
SCALES = ("smoke", "cpu", "paper", "tutorial", "sweep")
#: Scales from smallest to largest: a study refuses to replace a report made at a larger scale (without overwrite).
SCALE_ORDER = ("smoke", "cpu", "sweep", "tutorial", "paper")
#: Network options `jaxrnn study NAME --dale --sparsity S --cell C ...` may pass to the studies that take them.
NETWORK_OPTIONS = ("dale", "e_fraction", "sparsity", "cell")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a study trains and evaluates: TrainConfig fields (None = the task's paper preset), the learning rate and
    the evaluation. `config(task, ...)` builds the TrainConfig; everything not named here keeps TrainConfig's
    default."""

    units: int | None = None
    epochs: int = 20
    n_train: int | None = None
    batch_size: int | None = None
    protocol: str = "paper"
    threshold: float | None = None
    clip_norm: float | None = None
    alpha: float = 1.0
    lr: float = 1e-4
    n_eval: int = 512
    success_at: float = 0.9
    shared_data: bool = False

    def config(self, task: Task, **changes) -> TrainConfig:
        """The TrainConfig of `task` under this protocol; `changes` override any TrainConfig field."""
        fields = dict(
            units=self.units,
            epochs=self.epochs,
            n_train=self.n_train,
            batch_size=self.batch_size,
            protocol=self.protocol,
            threshold=self.threshold,
            clip_norm=self.clip_norm,
            alpha=self.alpha,
            shared_data=self.shared_data,
        )
        return TrainConfig(task=task, **{**fields, **changes})

    @property
    def hparams(self) -> Hparams:
        return Hparams(lr=self.lr, gain=1.0)


@dataclasses.dataclass(frozen=True)
class Scale:
    """One scale of a study.

    Attributes:
        members: default E per condition.
        protocol: training and evaluation.
        reduced: how this scale departs from the original protocol, for the report (one or two sentences).
        grid: the study's sweep and other sizes (e.g. {"tasks": (...)}, {"delays": (...)}, {"fp_starts": 128}).
        overrides: per-task TrainConfig changes (e.g. {"flipflop": {"n_train": 640}}).
        folder: the default output folder under results/ (None: the study's name), for a scale whose results sit
            beside the study's own (e.g. flipflop3's tutorial scale in results/flipflop3_tutorial).
    """

    members: int
    protocol: Protocol
    reduced: str
    grid: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    folder: str | None = None

    def config(self, task: Task, **changes) -> TrainConfig:
        """The TrainConfig of `task` at this scale (per-task overrides, then `changes`)."""
        return self.protocol.config(task, **{**self.overrides.get(task.name, {}), **changes})


@dataclasses.dataclass(frozen=True)
class Study:
    """A population study: `run(ctx)` does the work and returns the report's body (Markdown lines).

    Attributes:
        name: `jaxrnn study NAME`. title: the report's title. summary: one line for `--help`.
        scales: {"smoke", "cpu", "paper"} -> Scale.
        run: the study function.
        options: network options (`NETWORK_OPTIONS`) the study takes.
        takes_run: whether `--run RUN_DIR` (analyse that run directory instead of training) applies.
        reuses: names of other studies whose ensembles this one reuses when they exist beside its output folder.
        ensembles: `ensembles(scale, E, tasks, options)`: (name, TrainConfig, members) of every ensemble `run` trains
            at that `Scale` with E members per condition (the cells of a grid are members of one ensemble), `tasks`
            (None: the scale's) and the network options the study takes; what `check_study` checks before anything
            is written (None: not known, nothing is checked; `jaxrnn.runs.train_run` still checks each ensemble).
    """

    name: str
    title: str
    summary: str
    scales: Mapping[str, Scale]
    run: Callable[[Context], list[str]]
    options: tuple[str, ...] = ()
    takes_run: bool = False
    reuses: tuple[str, ...] = ()
    ensembles: Callable[[Scale, int, tuple[str, ...] | None, dict], list[tuple[str, TrainConfig, int]]] | None = None


class Context(NamedTuple):
    """Where and how a study runs (built by `run_study`)."""

    study: Study
    scale_name: str
    scale: Scale
    members: int  # E per condition
    out: Path
    run: Path | None  # a run directory to analyse instead of training (studies with takes_run)
    options: dict  # network options
    command: str  # the command that ran the study, as the caller gave it
    progress: bool  # progress bars on stderr
    trained: list  # the Runs this invocation used, in order (filled by `train` and `use`)
    shards: Any = None  # a `jaxrnn.runs.shards.Shards`: every ensemble is trained as shards (`--shards K`)
    shard_walls: dict | None = None  # run name -> wall seconds from submitting its shards to the merged run
    overwrite: bool = False  # replace a run directory of this study that holds another config (`--overwrite`)

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    def search(self) -> list[Path]:
        """Folders of run directories to reuse: this study's, then those of the studies it reuses, beside `out` under
        the names `default_out` gives them (`<name>_smoke` at smoke scale) or plain `<name>` (an `--out` chosen so)."""
        names = [f"{other}_smoke" for other in self.study.reuses] if self.scale_name == "smoke" else []
        return [self.runs_dir] + [self.out.parent / n / "runs" for n in [*names, *self.study.reuses]]

    def train(
        self,
        config: TrainConfig,
        name: str,
        members: int | None = None,
        hparams: Hparams | None = None,
        grid: Grid | None = None,
    ) -> Run:
        """The ensemble (config, seed 0, members 0..E-1, hparams) of this study, evaluated with the scale's protocol:
        a finished run of exactly it under `search()` is reused; otherwise it is trained (or resumed from its
        checkpoint) into `runs/<name>` by `jaxrnn.runs.train_run` (with the context's `shards`: as shards through
        `jaxrnn.runs.shards.train_sharded`, merged into `runs/<name>`). With `grid`, the whole grid is one ensemble
        (`members` per cell, default the context's) and `Run.cells()` splits it."""
        hp = hparams or self.scale.protocol.hparams
        E = members or self.members
        if grid is not None:
            grid = dataclasses.replace(grid, repeats=E)
            hp, E = grid.hparams(hp), grid.members
        proto = self.scale.protocol
        found = runs.find_run(config, 0, hp, E, self.search())
        if found is not None:
            log(f"reusing {found}")
            run = runs.open_run(found, proto.n_eval, proto.success_at)
        elif self.shards is not None:
            from jaxrnn.runs import shards

            t0 = time.perf_counter()
            run = shards.train_sharded(self.runs_dir / name, config, dataclasses.replace(self.shards, wait=True),
                                       seed=0, members=E, hparams=hp, grid=grid, n_eval=proto.n_eval,
                                       success_at=proto.success_at, log=log, command=[self.command],
                                       overwrite=self.overwrite)  # fmt: skip
            self.shard_walls[name] = time.perf_counter() - t0
            run = run._replace(origin="trained")  # by this invocation's shards (the merge reopened it from disk)
            log(f"{name}: {int(np.sum(run.learned))}/{E} succeed ({run.train_seconds:.0f} s of training in shards)")
        else:
            bar = runs.ProgressBar(name, disable=not self.progress)
            try:
                run = runs.train_run(
                    self.runs_dir / name,
                    config,
                    seed=0,
                    members=E,
                    hparams=hp,
                    grid=grid,
                    n_eval=proto.n_eval,
                    success_at=proto.success_at,
                    progress=bar,
                    log=log,
                    command=[self.command],
                    overwrite=self.overwrite and _holds_another_run(self.runs_dir / name, config, hp, E),
                )
            finally:
                bar.close()
            ok = int(np.sum(run.learned))
            log(f"{name}: {ok}/{E} succeed ({run.train_seconds:.0f} s of training)")
        self.trained.append(run)
        return run

    def train_cells(self, config: TrainConfig, name: str, grid: Grid) -> dict[tuple, Run]:
        """`train` of a grid, split into its cells: {tuple of the cell's values: the Run of its members}."""
        run = self.train(config, name, grid=grid)
        return {tuple(values.values()): run.subset(idx) for values, idx in run.cells()}

    def use(self, run_dir: Path) -> Run:
        """An existing run directory (`--run`), evaluated with the scale's protocol."""
        proto = self.scale.protocol
        run = runs.open_run(run_dir, proto.n_eval, proto.success_at)
        self.trained.append(run)
        return run


def _holds_another_run(path: Path, config: TrainConfig, hparams: Hparams, members: int) -> bool:
    """Whether `path` holds a run directory of another config, seed, hparams or members than this ensemble's (one
    that `runs.train_run` would refuse without overwrite); False for a resumable run of this same ensemble."""
    if not (path / CONFIG).exists():
        return False
    try:
        return bool(same_run(load_meta(path), config, 0, hparams, np.arange(members)))
    except StoreError:
        return True


def log(message: str) -> None:
    """Progress line on stderr (studies run for minutes; their numbers go to files, not here)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_study(
    study: Study,
    scale: str = "smoke",
    members: int | None = None,
    out: str | Path | None = None,
    run: str | Path | None = None,
    options: dict | None = None,
    command: str | None = None,
    progress: bool = False,
    tasks: tuple[str, ...] | None = None,
    overwrite: bool = False,
    shards=None,
) -> Path:
    """Run `study` at `scale` and write `out` (`default_out`: `results/<name>`, at smoke scale `./<name>_smoke`): its
    files and `report.md`.

    Args:
        members: E per condition (default: the scale's). run: a run directory to analyse (studies with
            `takes_run`). options: network options (`study.options`). command: the command line to record (the
            CLI passes its own; from Python the equivalent `jaxrnn study` command is recorded). progress: progress
            bars on stderr. tasks: only these of the scale's tasks (studies whose scale sweeps tasks), in order.
        overwrite: replace a `report.md` in `out` made at a larger scale (`SCALE_ORDER`), and run directories of the
            study that hold another config (e.g. another scale's); refused otherwise. A run of the same config is
            still reused or resumed.
        shards: a `shards.Shards`: train every ensemble as that many shards, one job each (waits and merges).
    Returns:
        The output directory.
    Raises:
        ValueError: an unknown scale, bad members, options or `run` the study does not take; `out` holding a report
            of a larger scale (without `overwrite`).
    """
    if scale not in study.scales:
        raise ValueError(f"unknown scale {scale!r}; allowed: {', '.join(study.scales)}")
    if members is not None and members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(NETWORK_OPTIONS))
    if unknown:
        raise ValueError(f"unknown study options {unknown}; allowed: {', '.join(NETWORK_OPTIONS)}")
    if "e_fraction" in options and not options.get("dale"):
        raise ValueError("study option e_fraction needs dale (--dale): without Dale's law there are no E units")
    refused = sorted(set(options) - set(study.options))
    if refused:
        takes = f"it takes {', '.join(study.options)}" if study.options else "it takes none"
        raise ValueError(f"study {study.name!r} takes no network option {', '.join(refused)} ({takes})")
    if run is not None and not study.takes_run:
        raise ValueError(f"study {study.name!r} trains its own ensembles; --run applies to lesion and flipflop3")
    sc = study.scales[scale]
    if tasks:
        if "tasks" not in sc.grid:
            raise ValueError(f"study {study.name!r} does not sweep tasks; --tasks applies to success_table, "
                             "spectral_migration")  # fmt: skip
        bad = [t for t in tasks if t not in sc.grid["tasks"]]
        if bad:
            raise ValueError(f"--tasks: {', '.join(bad)} not in the study's tasks ({', '.join(sc.grid['tasks'])})")
        sc = dataclasses.replace(
            sc,
            grid={**sc.grid, "tasks": tuple(tasks)},
            reduced=f"{sc.reduced} Only the tasks {', '.join(tasks)} (`--tasks`).",
        )
    out = runs.check_dir_out(Path(out) if out is not None else default_out(study, scale))
    existing = report_scale(out)
    if not overwrite and existing in SCALE_ORDER and SCALE_ORDER.index(existing) > SCALE_ORDER.index(scale):
        raise ValueError(
            f"{out / 'report.md'} was made at scale {existing}, larger than {scale}; give another --out or --overwrite"
        )
    if run is not None:
        load_meta(run)  # a readable run directory, before anything is written
    command = command or _python_command(study.name, scale, members, out, run, {**options, "tasks": tasks})
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    _ignore_runs(out, keep=scale == "paper")
    ctx = Context(
        study, scale, sc, members or sc.members, out, None if run is None else Path(run), options, command, progress, []
    )._replace(shards=shards, shard_walls={}, overwrite=overwrite)
    body = study.run(ctx)
    write_report(ctx, body, time.time() - t0)
    return out


def study_ensembles(study: Study, scale: str, members: int | None = None, tasks=None, options=None) -> list[tuple]:
    """(name, TrainConfig, E) of every ensemble `jaxrnn study` trains at `scale`, built from the study's `Scale` the
    way its `run` builds them (the cells of a grid are members of one ensemble): its `Study.ensembles`.

    Args:
        study: a `Study`. members: members per condition (None: the scale's). tasks: only these of the scale's
            tasks. options: the network options passed to the studies that take them.
    Returns:
        The ensembles; [] for a study without `ensembles`, a scale the study does not have, or tasks it does not
        sweep (the study refuses those itself, and `jaxrnn.runs.train_run` checks every ensemble it trains).
    """
    if scale not in study.scales or study.ensembles is None:
        return []
    sc = study.scales[scale]
    opts = {k: v for k, v in (options or {}).items() if k in study.options and v is not None}
    return study.ensembles(sc, members or sc.members, tasks, opts)


def check_study(
    study: Study, scale: str, members: int | None = None, tasks=None, options=None, run=None
) -> list[budget.Estimate]:
    """Refuse `jaxrnn study` before anything is written when one of its ensembles (`study_ensembles`) does not fit in
    memory (`jaxrnn.training.budget`; a study's run directories are checked again, disk included, by
    `jaxrnn.runs.train_run` as each is trained); nothing is checked with `run` (a run directory analysed instead of
    training). Returns the estimates. Raises ValueError naming --members (members per condition) or --scale."""
    if run is not None:
        return []
    try:
        full = study_ensembles(study, scale, members, tasks, options)
        one = study_ensembles(study, scale, 1, tasks, options)
    except ValueError:  # options or tasks the study refuses: `run_study` says so in its own words
        return []
    sc = study.scales[scale]
    avail = budget.available()
    estimates = []
    for (name, config, E), (_, _, E_one) in zip(full, one, strict=True):
        verdict = dict(chunk_size=None, n_eval=sc.protocol.n_eval, per_member_values=0, avail=avail)
        est, problem, _ = budget.train_verdict(config, E, members_flag="--members", **verdict)
        if problem is None:
            estimates.append(est)
            continue
        smaller = budget.train_verdict(config, E_one, members_flag="--members", **verdict)[1]
        per = members or sc.members
        advice = (
            f"reduce --members (members per condition, now {per})" if smaller is None else "choose a smaller --scale"
        )
        raise ValueError(
            f"study {study.name} at scale {scale}: its ensemble {name} ({E} members of N = {config.units}) needs "
            f"{problem.text}; {advice}"
        )
    return estimates


def default_out(study: Study, scale: str) -> Path:
    """The default output folder: `results/<name>` (the scale's `folder` if it has one), `results/paper/<name>` at
    the paper scale, but `<name>_smoke` in the current directory at smoke scale, so a smoke run never replaces the
    results in a checkout."""
    name = study.scales[scale].folder or study.name
    if scale == "smoke":
        return Path(f"{name}_smoke")
    return Path("results") / ("paper" if scale == "paper" else "") / name


def report_scale(out: Path) -> str | None:
    """The scale of `<out>/report.md` (its line `- scale: **cpu**. ...`), or None without one."""
    path = Path(out) / "report.md"
    if not path.is_file():
        return None
    found = re.search(r"^- scale: \*\*(\w+)\*\*", path.read_text(errors="replace"), re.MULTILINE)
    return found.group(1) if found else None


def _python_command(name, scale, members, out, run, options) -> str:
    args = [f"--scale {scale}"] + ([f"--members {members}"] if members else []) + [f"--out {out}"]
    args += [f"--run {run}"] if run else []
    for k, v in options.items():
        if v is None:
            continue
        v = ",".join(v) if isinstance(v, (tuple, list)) else v
        args.append(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}"))
    return f"jaxrnn study {name} {' '.join(args)} (run from Python)"


def _ignore_runs(out: Path, keep: bool = False) -> None:
    """`<out>/runs/.gitignore`: trained parameters stay out of git (reproducible, too large), except at the paper
    scale (`keep`), whose finished run directories are kept so that the tables can be re-scored and re-analysed
    without training; only locks, checkpoints and temporary files are ignored there."""
    folder = out / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    if keep:
        text = "# paper-scale ensembles are kept (re-scorable); not what a run writes while in progress\n"
        text += "".join(f"{p}\n" for p in (LOCK, CHECKPOINT, "*.tmp", ".*.overwrite/", ".*.replaced/", "shards/"))
    else:
        text = "# trained ensembles (parameters): reproducible, too large for git\n*\n"
    (folder / ".gitignore").write_text(text)


# ----------------------------------------------------------------------------------------------------------------
# Files.


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write rows (dicts) as a CSV with a header (the union of their keys, missing values empty); floats with 6
    significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(v) for k, v in row.items()})
    return path


def sem(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standard error of the mean along `axis` (NaN-aware; 0 for a single value)."""
    x = np.asarray(x, np.float64)
    n = np.sum(np.isfinite(x), axis=axis)
    sd = np.nanstd(x, axis=axis, ddof=1) if np.max(n) > 1 else np.zeros(np.nanmean(x, axis=axis).shape)
    return np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), 0.0)


def md_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------------
# Reports.


def protocol_facts(run: Run) -> dict[str, str]:
    """The training protocol of a run, read from its own config (one table row of the report)."""
    c = run.config
    data = "fresh trials every update" if c.protocol == "online" else "own set, reshuffled each epoch"
    if c.protocol == "paper" and c.shared_data:
        data = "one set shared by all members, reshuffled each epoch"
    net = [f"N = {c.units}", f"{run.value('init')} init"]
    if c.alpha != 1.0:
        net.append(f"a = {c.alpha:g}")
    if c.bias:
        net.append("RNN bias")
    if c.dale:
        net.append(f"Dale E fraction {run.value('e_fraction')}")
    if c.sparsity:
        net.append(f"sparsity {c.sparsity:g}")
    if not c.rate_rnn:
        net.append(cells.label(c.cell))
    return {
        "ensemble": f"`{run.path.name}`",
        "task": c.task.name,
        "network": ", ".join(net),
        "members": str(len(run.members)),
        "training": f"{c.epochs} epochs × {c.n_train:,} trials ({data}), batch {c.batch_size}",
        "optimizer": f"Adam lr {run.value('lr')}, decay {c.decay:g}"
        + (f", clip {c.clip_norm:g}" if c.clip_norm else ""),
        "early stop": f"loss < {run.value('threshold')}" if c.threshold > 0 or run.hparams.threshold else "never",
        "succeed": f"{int(np.sum(run.learned))}/{len(run.members)}" if run.evaluation is not None else "—",
        "training time": f"{run.train_seconds:.0f} s" + (" (reused)" if run.origin == "loaded" else ""),
        "device": _device_name(run),
    }


def shard_facts(trained: list[Run], walls: dict) -> list[str]:
    """Report lines on the ensembles trained as shards: per shard its members, job, training time and compile call,
    the merge's time, and the wall time from submission to the merged run (for those trained by this invocation)."""
    lines = []
    for run in trained:
        extra = run.meta.get("extra") or {}
        info, timing = extra.get("shards"), extra.get("timing") or {}
        if not info:
            continue
        wall = walls.get(run.path.name)
        lines += [
            "",
            f"`{run.path.name}` was trained as {info['count']} shards (`jaxrnn.runs.shards`, one job each) and merged: "
            + (f"{wall:.0f} s wall time from submission to the merged run; " if wall is not None else "reused; ")
            + f"the merge took {float(timing.get('merge_s') or 0):.1f} s.",
            "",
        ]
        rows = []
        for k, t in enumerate(timing.get("per_shard") or []):
            lo, hi = info["members"][k]
            job = (info.get("jobs") or {}).get(f"{k:03d}")
            rows.append([k, f"{lo}–{hi - 1}", job or "—", f"{float(t.get('train_s') or 0):.0f} s",
                         f"{float(t.get('first_call_s') or 0):.0f} s"])  # fmt: skip
        lines.append(md_table(["shard", "members", "job", "training time", "first (compiling) call"], rows))
    return lines


def _device_name(run: Run) -> str:
    dev = run.meta.get("device") or {}
    return f"{dev.get('kind', 'unknown')} ({dev.get('platform', '?')})" if dev else "not recorded"


def success_rules(trained: list[Run]) -> list[str]:
    """One line per task of the ensembles: what a correct trial is, and when a member succeeds."""
    lines, seen = [], set()
    for run in trained:
        task, ev = run.config.task, run.evaluation_settings
        if task.name in seen:
            continue
        seen.add(task.name)
        rule = task.success_rule.strip().rstrip(".")
        lines.append(
            f"- {task.name}: {rule[:1].upper() + rule[1:]}. A member succeeds (*learned*) when its outputs are "
            f"finite, at least {100 * float(ev.get('success_at', 0.9)):.0f}% of {ev.get('trials', '?')} held-out "
            "trials are correct and its mean distance ||target - output|| is at most half that of an all-zero output "
            "on the same trials."
        )
    return lines


def environment() -> str:
    """Device, cores and versions, one Markdown list."""
    import jax

    return "\n".join(
        [
            f"- device: {', '.join(str(d) for d in jax.devices())} ({jax.devices()[0].device_kind})",
            f"- CPU: {_platform.cpu_model()}, {os.cpu_count()} cores visible; Python {platform.python_version()}, "
            f"jax {jax.__version__}, numpy {np.__version__}",
        ]
    )


def write_report(ctx: Context, body: list[str], wall_seconds: float) -> Path:
    """Write `<out>/report.md`: what was run (from structured facts), then the study's own sections (`body`)."""
    trained = ctx.trained
    lines = [
        f"# {ctx.study.title}",
        "",
        "_Generated by `jaxrnn study`; do not edit by hand._",
        "",
        "## What was run",
        "",
        f"- command: `{ctx.command}`",
        f"- scale: **{ctx.scale_name}**. {ctx.scale.reduced}",
        f"- members per condition: {ctx.members}",
        environment(),
        f"- wall time of this invocation: {wall_seconds:.0f} s ({wall_seconds / 60:.1f} min), finished "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]
    if trained:
        reused = sum(r.origin == "loaded" for r in trained)
        lines += [
            f"- ensembles: {len(trained)}, training time as recorded in their run directories "
            f"{sum(r.train_seconds for r in trained):.0f} s; {reused} reused from existing run directories",
            "",
            "Success criterion:",
            "",
            *success_rules(trained),
            "",
            "Ensembles (each row read from its run directory's config.json):",
            "",
        ]
        facts = [protocol_facts(r) for r in trained]
        lines.append(md_table(list(facts[0]), [list(f.values()) for f in facts]))
        lines += shard_facts(trained, ctx.shard_walls or {})
    lines += ["", *body, ""]
    path = ctx.out / "report.md"
    path.write_text("\n".join(lines))
    return path
