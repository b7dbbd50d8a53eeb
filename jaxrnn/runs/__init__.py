"""The one way to train an ensemble into a run directory: `train_run`.

    run = train_run(run_dir, config, seed=0, members=16, hparams=Hparams(lr=3e-4))

owns everything between a config and a finished run directory (`jaxrnn.runs.store` holds the file format):

  * **what to do with `run_dir`** (`plan`, read-only, so callers can refuse bad input before anything compiles):
    a new run; resume an unfinished run of the same config from its checkpoint; return a finished run of the same
    config as it is; refuse a run of a different config (or a folder that is not a run directory) unless
    `overwrite`, which replaces it;
  * **one writer**: the whole of it runs under `store.locked(run_dir)`, so a second process gets a one-line
    `RunLocked` error naming the holder;
  * **training** with `jaxrnn.fit`, a checkpoint every `checkpoint_every` epochs (a killed run resumes from its
    last one, bit for bit) and a progress callback after every call;
  * **evaluation** on held-out trials and **saving** (config.json last, atomically), timing included.

The CLI's `jaxrnn train`, every study and the Keras import (`save_networks`) go through here. `check_evaluate` is
`jaxrnn evaluate`'s memory check (`jaxrnn.training.budget`), read from a run directory's config.json alone.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxrnn.runs import store
from jaxrnn.runs.store import Run, StoreError
from jaxrnn.training import budget
from jaxrnn.training.evaluate import RULE, Evaluation, evaluate
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Ensemble, Hparams, TrainConfig, default_chunk, fit, resolve

#: Entries a run directory may hold besides its files without being "not empty": the lock.
_IGNORED = (store.LOCK,)


class Progress(NamedTuple):
    """What `train_run` tells its progress callback after every compiled call.

    Attributes:
        epoch: epochs done by every member. epochs: epochs in all. resumed_from: the epoch training started at.
        median_loss: median over members of the last epoch's training loss (NaN if none is finite).
        stopped: members stopped early. diverged: members frozen as diverged. members: E.
        seconds: wall time since training started.
        compiling: the call before the first compiled call (the trainer is being compiled, which takes seconds).
    """

    epoch: int
    epochs: int
    resumed_from: int
    median_loss: float
    stopped: int
    diverged: int
    members: int
    seconds: float
    compiling: bool = False


def member_ids(members: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """Member ids: 0..E-1 for an int E, else the given ids."""
    ids = np.arange(members) if isinstance(members, (int, np.integer)) else np.asarray(members, np.int64)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"members: expected a positive count or a list of member ids, got {members!r}")
    return ids


def check_dir_out(path: str | Path, flag: str = "--out") -> Path:
    """A run directory path that can be created: not a file, nor below a file. Raises ValueError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file, not a run directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a directory")
            break
    return path


def plan(run_dir, config: TrainConfig, seed: int, hparams: Hparams, members, overwrite: bool = False) -> str:
    """What `train_run` will do with `run_dir`: "new", "resume" or "complete". Reads, never writes.

    Raises:
        ValueError (StoreError): `run_dir` is a file, a non-empty folder that is not a run directory, holds a run of
            a different config (all without `overwrite`), or holds a finished run whose files are damaged.
    """
    out = check_dir_out(run_dir)
    ids = member_ids(members)
    if not out.exists():
        return "new"
    entries = [
        p for p in out.iterdir() if p.name not in _IGNORED and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    ]
    if not entries or overwrite:
        return "new"
    if not (out / store.CONFIG).exists():
        raise ValueError(f"--out {out}: not empty and not a jaxrnn run directory (no {store.CONFIG})")
    meta = store.load_meta(out)
    diffs = store.same_run(meta, config, seed, hparams, ids)
    if diffs:
        shown = ", ".join(diffs[:8]) + (", ..." if len(diffs) > 8 else "")
        raise ValueError(
            f"--out {out}: holds a run with a different config (differs in: {shown}); "
            "pass --overwrite to replace it or choose another --out"
        )
    if meta.get("complete"):
        store.load_run(out)  # checks every file; a damaged one is an error
        return "complete"
    return "resume"


def train_run(
    run_dir: str | Path,
    config: TrainConfig,
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
    progress: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
    extra: dict | None = None,
) -> Run:
    """Train the ensemble (config, seed, members, hparams) into `run_dir` and return it as a `Run`.

    See the module docstring for what happens to `run_dir`. A finished run of the same config is returned as it is
    (`origin` "loaded", evaluated now and its evaluation stored if it had none with these settings).

    Args:
        run_dir: the run directory (created with its parents).
        config, seed, members, hparams: the run; `members` is E (ids 0..E-1) or a list of member ids (default 16,
            or the grid's members).
        grid: train this grid of per-member values (`jaxrnn.training.grid.Grid`) as one ensemble: members 0..E-1 of
            `grid.members` (or the given member ids among them, a shard of the grid, `jaxrnn.runs.shards`), hparams
            `grid.hparams(hparams, ids)`; recorded in config.json and members.csv.
        overwrite: replace whatever `run_dir` holds.
        n_eval, success_at: held-out trials and the success criterion of the evaluation.
        checkpoint_every: epochs between checkpoints (and progress calls).
        chunk_size: members per compiled call (default `jaxrnn.training.train.default_chunk`).
        progress: called with a `Progress` after every compiled call.
        log: called with one-line messages (what is being done: training, resuming from epoch k, reusing).
        command: the command line to record in config.json (the CLI's or a study's; None from Python).
        extra: more JSON-safe facts for config.json's "extra".
    Returns:
        The `Run` (origin "trained", "resumed" or "loaded").
    Raises:
        ValueError (StoreError, RunLocked): see `plan`; another process holds the run directory.
    """
    # memory, disk and config.json size, before anything is built or written
    budget.check_train(config, members, grid=grid, hparams=hparams, chunk_size=chunk_size, n_eval=n_eval, out=run_dir)
    if grid is not None:
        grid.check(config.task)
        ids = np.arange(grid.members) if members is None else member_ids(members)
        other_count = isinstance(members, (int, np.integer)) and members != grid.members
        if other_count or len(np.unique(ids)) != len(ids) or ids.min() < 0 or ids.max() >= grid.members:
            raise ValueError(
                f"train: a grid of {grid.members} members has member ids 0..{grid.members - 1} (all of them, or some "
                "of them once each: a shard)"
            )
        members, hparams = ids, grid.hparams(hparams, ids)
    ids = member_ids(16 if members is None else members)
    resolve(config, hparams, len(ids))  # every member's numbers are valid, before anything is written or compiled
    store.config_to_dict(config)  # a config that config.json cannot hold is refused before anything is written
    run_dir = Path(run_dir)
    _finish_swap(run_dir)
    plan(run_dir, config, seed, hparams, ids, overwrite)  # refuse before creating or locking anything
    job = dict(
        config=config,
        seed=seed,
        ids=ids,
        hparams=hparams,
        grid=grid,
        settings=eval_settings(n_eval, success_at),
        checkpoint_every=checkpoint_every,
        chunk_size=chunk_size,
        progress=progress,
        log=log,
        command=command,
        extra=extra,
    )
    if not (overwrite and holds_files(run_dir)):
        with store.locked(run_dir):
            return _train_into(run_dir, plan(run_dir, config, seed, hparams, ids, overwrite), **job)
    # --overwrite of a run directory with files: train beside it and swap only once the new run is complete
    staging = _sibling(run_dir, "overwrite")
    with store.locked(run_dir):  # nobody else writes the old run meanwhile
        try:
            with store.locked(staging):
                try:
                    mode = plan(staging, config, seed, hparams, ids)
                except ValueError:  # a staging folder of another overwrite: ours to replace
                    mode = "new"
                run = _train_into(staging, mode, **job)
        except BaseException:
            if log is not None:
                log(
                    f"{run_dir}: overwrite interrupted; the previous run there is intact (the new one's progress is "
                    f"in {staging}, resumed by the same command)"
                )
            raise
        _swap(staging, run_dir)
    return store.load_run(run_dir)._replace(origin=run.origin)


def holds_files(run_dir: Path) -> bool:
    """Whether `run_dir` is a folder holding anything but a lock."""
    return run_dir.is_dir() and any(p.name not in _IGNORED for p in run_dir.iterdir())


def _sibling(run_dir: Path, what: str) -> Path:
    """The hidden folder beside `run_dir` used while overwriting it: `.<name>.overwrite` (the new run being trained)
    or `.<name>.replaced` (the old run, between the two renames of the swap)."""
    return run_dir.parent / f".{run_dir.name}.{what}"


def _swap(new: Path, run_dir: Path) -> None:
    """Put the complete run `new` in place of `run_dir` (two renames, then the old run is deleted with everything
    in its folder, figures included). A process killed between the renames leaves `.<name>.replaced` and the new run
    in `.<name>.overwrite`; `_finish_swap` completes the swap on the next call."""
    old = _sibling(run_dir, "replaced")
    if old.exists():
        shutil.rmtree(old)
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:  # a Ctrl-C waits until both renames are done
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        os.replace(run_dir, old)
        os.replace(new, run_dir)
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    shutil.rmtree(old)


def _finish_swap(run_dir: Path) -> None:
    """Complete a swap (`_swap`) that a killed process left half done."""
    old, new = _sibling(run_dir, "replaced"), _sibling(run_dir, "overwrite")
    if not old.exists():
        return
    if not run_dir.exists() and new.is_dir():
        os.replace(new, run_dir)
    if run_dir.exists():
        shutil.rmtree(old)


def _train_into(
    run_dir: Path,
    mode: str,
    *,
    config: TrainConfig,
    seed: int,
    ids: np.ndarray,
    hparams: Hparams,
    grid: Grid | None,
    settings: dict,
    checkpoint_every: int,
    chunk_size: int | None,
    progress: Callable[[Progress], None] | None,
    log: Callable[[str], None] | None,
    command: Sequence[str] | None,
    extra: dict | None,
) -> Run:
    """The work of `train_run` in `run_dir`, which the caller holds locked, given `plan`'s `mode`."""
    if mode == "complete":
        if log is not None:
            log(f"{run_dir}: this run is already complete; reusing it")
        return _ensure_evaluated(store.load_run(run_dir), settings)
    store.clean_temporaries(run_dir)
    state = loss = None
    if mode == "resume":
        ckpt = store.load_checkpoint(run_dir, config, seed, hparams, ids)
        if ckpt is not None:
            state, loss = ckpt
    else:  # a new run (or --overwrite): no stale results or checkpoint may survive next to the new config.json
        for name in (store.CHECKPOINT, store.PARAMS, store.HISTORY, store.MEMBERS, store.EVALUATION):
            (run_dir / name).unlink(missing_ok=True)
    store.write_config(
        run_dir,
        store.run_meta(config, seed=seed, hparams=hparams, members=ids, complete=False, command=command, grid=grid),
    )
    start = int(np.min(state.epoch)) if state is not None else 0
    if log is not None:
        what = f"resuming from the checkpoint at epoch {start}/{config.epochs}" if start else "training"
        log(f"{run_dir}: {what} ({len(ids)} members, {config.epochs} epochs x {config.n_train} trials)")
    calls: list[tuple[int, float]] = []
    clock = {"start": time.perf_counter(), "last": time.perf_counter(), "done": start}

    def callback(st, ls):
        now = time.perf_counter()
        epoch = int(np.min(st.epoch))
        calls.append((epoch - clock["done"], now - clock["last"]))
        store.save_checkpoint(run_dir, config, seed, hparams, st, ls, members=ids)
        if progress is not None:
            col = ls[:, epoch - 1]
            med = float(np.nanmedian(col)) if np.any(np.isfinite(col)) else float("nan")
            n_stop, n_div = int(np.sum(np.asarray(st.stop_epoch) > 0)), int(np.sum(st.diverged))
            progress(Progress(epoch, config.epochs, start, med, n_stop, n_div, len(ids), now - clock["start"]))
        clock["done"] = epoch
        clock["last"] = time.perf_counter()

    if progress is not None:
        progress(Progress(start, config.epochs, start, float("nan"), 0, 0, len(ids), 0.0, compiling=True))
    ensemble = fit(
        config,
        seed,
        ids,
        hparams,
        state=state,
        loss=loss,
        chunk_size=chunk_size,
        epochs_per_call=checkpoint_every,
        callback=callback,
    )
    t_train = time.perf_counter() - clock["start"]
    evaluation = _evaluate(config, ensemble, settings, hparams)
    info = {
        **(extra or {}),
        "timing": _timing(calls, t_train, len(ids)),
        "evaluation": settings,
        "resumed_from_epoch": start,
        "chunk_size": chunk_size or default_chunk(config, len(ids)),
        "checkpoint_every": checkpoint_every,
    }
    store.save_run(
        run_dir, config, ensemble, evaluation, seed=seed, hparams=hparams, extra=info, command=command, grid=grid
    )
    run = store.load_run(run_dir)
    return run._replace(origin="resumed" if start else "trained")


def _evaluate(config: TrainConfig, ensemble: Ensemble, settings: dict, hparams: Hparams) -> Evaluation:
    """The held-out evaluation of every member (each with its own task params when the run varies them)."""
    task_params = None
    if hparams.task:
        task_params = resolve(config, hparams, len(ensemble.members)).task
    return evaluate(
        config.task,
        config.net,
        ensemble.params_final,
        n_trials=settings["trials"],
        seed=settings["seed"],
        success_at=settings["success_at"],
        task_params=task_params,
    )


def _ensure_evaluated(run: Run, settings: dict, keep: bool = True) -> Run:
    """`run` with an evaluation of `settings`: the stored one when it matches, else evaluated now (and stored in
    the run directory when `keep`)."""
    if run.evaluation is not None and _same_settings(run.evaluation_settings, settings):
        return run
    if keep:
        return evaluate_run(run, settings["trials"], settings["success_at"])
    meta = {**run.meta, "extra": {**(run.meta.get("extra") or {}), "evaluation": settings}}
    return run._replace(evaluation=_evaluate(run.config, run.ensemble, settings, run.hparams), meta=meta)


def eval_settings(n_eval: int = 512, success_at: float = 0.9) -> dict:
    """The settings of a held-out evaluation as stored: trials, their seed, the success criterion and the version of
    the success rule (`jaxrnn.training.evaluate.RULE`)."""
    return {"trials": int(n_eval), "seed": 0, "success_at": float(success_at), "rule": RULE}


def _same_settings(a: dict, b: dict) -> bool:
    try:
        return (
            int(a["trials"]) == int(b["trials"])
            and int(a["seed"]) == int(b["seed"])
            and math.isclose(float(a["success_at"]), float(b["success_at"]))
            and int(a["rule"]) == int(b["rule"])
        )
    except (KeyError, TypeError, ValueError):
        return False


def check_evaluate(run_dir: str | Path, trials: int) -> budget.Estimate | None:
    """Refuse `jaxrnn evaluate RUN_DIR --trials K` when its evaluation does not fit, reading only config.json (before
    the run's arrays are loaded); None when config.json is not a finished run's (loading the run reports that).
    Raises ValueError naming --trials."""
    try:
        meta = store.load_meta(run_dir)
        if not meta.get("complete"):
            return None
        config = store.config_from_dict(meta["config"])
        members = len(store.member_ids_from_json(meta["members"]))
    except (ValueError, TypeError, KeyError):
        return None
    return budget.check_run("evaluate", config, members, budget.evaluate_estimate, trials)


def evaluate_run(run: Run, n_eval: int = 512, success_at: float = 0.9) -> Run:
    """Evaluate a finished run on `n_eval` held-out trials and store it (evaluation.npz, members.csv, config.json's
    `extra.evaluation`), under the run directory's lock. Returns the run with its new evaluation."""
    settings = eval_settings(n_eval, success_at)
    with store.locked(run.path):
        evaluation = _evaluate(run.config, run.ensemble, settings, run.hparams)
        store.write_evaluation(run.path, run.ensemble, evaluation, run.seed, settings, run.grid)
        meta = {**run.meta, "extra": {**(run.meta.get("extra") or {}), "evaluation": settings}}
        store.write_config(run.path, meta)
    return run._replace(evaluation=evaluation, meta=meta)


def open_run(run_dir: str | Path, n_eval: int | None = None, success_at: float = 0.9) -> Run:
    """Load a finished run directory (read-only); with `n_eval`, its evaluation has those settings (the stored one
    when it matches, else computed in memory: the run directory is left as it is)."""
    run = store.load_run(run_dir)
    if n_eval is None:
        return run
    return _ensure_evaluated(run, eval_settings(n_eval, success_at), keep=False)


def save_networks(
    run_dir: str | Path,
    config: TrainConfig,
    ensemble: Ensemble,
    *,
    hparams: Hparams,
    n_eval: int = 512,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    extra: dict | None = None,
) -> Run:
    """Write networks trained elsewhere (e.g. Keras files) as a finished run directory: the same refusal rules,
    lock, evaluation and files as `train_run`, without training. The ensemble's member ids are its own."""
    run_dir = check_dir_out(run_dir)
    _finish_swap(run_dir)
    replace = holds_files(run_dir)
    if replace and not overwrite:
        raise ValueError(f"{run_dir}: not empty (overwrite=True replaces it)")
    settings = eval_settings(n_eval)
    target = _sibling(run_dir, "overwrite") if replace else run_dir
    with store.locked(run_dir):
        with store.locked(target):  # the same lock (reentrant) unless an old run is being replaced
            for name in (store.CHECKPOINT, store.PARAMS, store.HISTORY, store.MEMBERS, store.EVALUATION):
                (target / name).unlink(missing_ok=True)
            evaluation = _evaluate(config, ensemble, settings, hparams)
            info = {**(extra or {}), "evaluation": settings}
            store.save_run(target, config, ensemble, evaluation, seed=0, hparams=hparams, extra=info, command=command)
        if replace:
            _swap(target, run_dir)
    return store.load_run(run_dir)._replace(origin="trained")


def find_run(config: TrainConfig, seed: int, hparams: Hparams, members, folders) -> Path | None:
    """The first finished run directory of exactly this run (config, seed, hparams, member ids) among `folders` and
    their immediate subfolders, or None."""
    ids = member_ids(members)
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        # hidden folders (an overwrite's `.NAME.overwrite` / `.NAME.replaced`) are never reused
        for cand in [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                meta = store.load_meta(cand)
            except StoreError:
                continue
            if meta.get("complete") and not store.same_run(meta, config, seed, hparams, ids):
                return cand
    return None


def _timing(calls: list[tuple[int, float]], total: float, E: int) -> dict:
    """Seconds per epoch (of the whole ensemble) and per network-epoch; the first call includes compilation."""
    timing = {"train_s": round(total, 3), "calls": len(calls)}
    if calls:
        timing["first_call_s"] = round(calls[0][1], 3)
        timing["first_call_epochs"] = calls[0][0]
    # calls after the first that ran as many epochs as it did reuse its compiled program (a shorter last call compiles)
    steady = [(n, dt) for n, dt in calls[1:] if n > 0 and n == calls[0][0]]
    if steady:
        per_epoch = sum(dt for _, dt in steady) / sum(n for n, _ in steady)
        timing["includes_compile"] = False
    else:
        per_epoch = total / max(sum(n for n, _ in calls), 1)
        timing["includes_compile"] = True
    timing["s_per_epoch"] = round(per_epoch, 4)
    timing["s_per_network_epoch"] = round(per_epoch / max(E, 1), 5)
    return timing


class ProgressBar:
    """A tqdm progress bar as a `train_run` progress callback (epochs of the ensemble); `close()` when done."""

    def __init__(self, desc: str = "train", disable: bool = False):
        self.desc, self.disable, self.bar = desc, disable, None

    def __call__(self, p: Progress) -> None:
        if self.disable:
            return
        if self.bar is None:
            import sys

            from tqdm import tqdm

            self.bar = tqdm(
                total=p.epochs,
                initial=p.resumed_from,
                unit="epoch",
                desc=self.desc,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        if p.compiling:
            self.bar.set_postfix_str("compiling (first call)")
        elif math.isfinite(p.median_loss):
            self.bar.set_postfix(loss=f"{p.median_loss:.3g}", stopped=p.stopped, diverged=p.diverged, refresh=False)
        self.bar.update(p.epoch - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = [
    "Progress",
    "ProgressBar",
    "check_dir_out",
    "check_evaluate",
    "evaluate_run",
    "find_run",
    "member_ids",
    "open_run",
    "plan",
    "save_networks",
    "train_run",
]
