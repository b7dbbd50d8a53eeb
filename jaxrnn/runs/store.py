"""Run directories: one trained ensemble on disk, written atomically, loaded without unpickling (DESIGN.md §2).

A run directory holds

    config.json    the full TrainConfig (task and its parameters included), seed, hparams, member ids (a contiguous
                   range as {"start", "stop"}, others as a list), the jaxrnn, jax and jaxlib versions, the device
                   kind and count, the command line, `complete`, and `extra`
    params.npz     initial and final parameters, keys `init/<name>` and `final/<name>`, member axis first (the FREE
                   parameters: with Dale's law or a sparsity mask, `jaxrnn.cells.network.effective_params` gives W_eff;
                   the mask itself is the parameter `rec_mask`)
    history.npz    `loss` (E, epochs), `stop_epoch` (E,), `diverged` (E,), `members` (E,)
    members.csv    one row per member: member, seed, final_loss, mse, distance, accuracy, success, stop_epoch (empty:
                   never stopped early), diverged, diverged_epoch (empty: did not diverge)
    evaluation.npz the held-out evaluation of members.csv in full (`jaxrnn.Evaluation`, member axis first)
                   and its settings (trials, seed, success_at)
    checkpoint.npz while training: the flattened TrainState (optimizer state included) and the loss so far
    .lock          the advisory lock of the process that trains, evaluates or overwrites the run (`locked`)

Every file is written to a temporary file in the same folder, fsync-ed and renamed over its destination, so a
killed process leaves either the old file or the new one, never a partial one (a stray `.*.tmp` file at most, which
`clean_temporaries` removes). Every `.npz` is read with `allow_pickle=False` and its keys and shapes are checked; a
missing, damaged or foreign file raises `StoreError` with a one-line message naming the file and the problem.

One writer per run directory: `locked(run_dir)` holds an exclusive `fcntl.flock` on `.lock` while a process trains,
evaluates or overwrites the run; a second process gets `RunLocked` naming the holder's pid. The kernel releases the
lock when its process dies, so a lock left by a killed process never blocks the next run. This file layer does not
train: `jaxrnn.runs.train_run` is the one way to train an ensemble into a run directory.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import platform
import socket
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxrnn._version import __version__
from jaxrnn.tasks import TASKS, task_class, task_source
from jaxrnn.training.evaluate import RULE, TOLERANCES, Evaluation
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Ensemble, Hparams, TrainConfig, TrainState

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory locks
    fcntl = None

FORMAT = "jaxrnn-run"
FORMAT_VERSION = 1
CONFIG = "config.json"
PARAMS = "params.npz"
HISTORY = "history.npz"
MEMBERS = "members.csv"
EVALUATION = "evaluation.npz"
CHECKPOINT = "checkpoint.npz"
LOCK = ".lock"
FIGURES = "figures"
MEMBER_COLUMNS = (
    "member",
    "seed",
    "final_loss",
    "mse",
    "distance",
    "accuracy",
    "success",
    "stop_epoch",
    "diverged",
    "diverged_epoch",
)
_TMP_PREFIX = "."
_TMP_SUFFIX = ".tmp"


class StoreError(ValueError):
    """A run directory or one of its files is missing, damaged, foreign or does not match the expected run."""


class RunLocked(StoreError):
    """Another process holds the run directory's lock."""


class Run(NamedTuple):
    """A trained ensemble in a run directory: the one type for "a trained ensemble on disk".

    `ensemble` holds the FREE parameters as trained (member axis first); `effective(stage)` is the one way to the
    effective ones (Dale's law, sparsity mask applied: what analyses must see). `origin` says how this process got
    it: "trained" (now, from scratch), "resumed" (now, from a checkpoint) or "loaded" (finished earlier).
    """

    path: Path
    config: TrainConfig
    seed: int
    hparams: Hparams
    ensemble: Ensemble
    evaluation: Evaluation | None  # the stored held-out evaluation, None when the run has none
    meta: dict  # the config.json dict
    origin: str = "loaded"

    @property
    def members(self) -> np.ndarray:
        return np.asarray(self.ensemble.members)

    def effective(self, stage: str = "final") -> dict[str, np.ndarray]:
        """Parameters of `stage` ("init" or "final") with W_rec replaced by the effective matrix, as numpy."""
        from jaxrnn.cells.network import effective_params

        if stage not in ("init", "final"):
            raise ValueError(f"run: stage must be 'init' or 'final', got {stage!r}")
        params = self.ensemble.params_final if stage == "final" else self.ensemble.params_init
        return {k: np.asarray(v) for k, v in effective_params(params, self.config.net).items()}

    @property
    def learned(self) -> np.ndarray:
        """(E,) bool: the members that learned the task, i.e. succeed under the task's success rule on the stored
        held-out evaluation and did not diverge. Every statistic of trained networks is taken over these."""
        if self.evaluation is None:
            raise StoreError(f"{self.path}: no evaluation under today's success rule; run jaxrnn evaluate on it")
        return np.asarray(self.evaluation.success, bool) & ~np.asarray(self.ensemble.diverged, bool)

    @property
    def epochs_run(self) -> np.ndarray:
        """(E,) epochs each member trained: its early-stop epoch, or all epochs."""
        stop = np.asarray(self.ensemble.stop_epoch)
        return np.where(stop > 0, stop, self.config.epochs)

    @property
    def train_seconds(self) -> float:
        """Training wall time as recorded when the run was trained (0 when unknown, e.g. imported networks)."""
        return float(((self.meta.get("extra") or {}).get("timing") or {}).get("train_s") or 0.0)

    def value(self, name: str) -> str:
        """A training number of the run in words: its value, or the range it spans over the members of a grid
        (e.g. "1e-3 to 3e-3 (per member)"); `name` an Hparams field or a TrainConfig field."""
        v = getattr(self.hparams, name, None) if name in Hparams._fields else None
        if v is None:
            v = getattr(self.config, name)
        if isinstance(v, (list, tuple, np.ndarray)) and len(v) and not isinstance(v, str):
            uniq = sorted({str(x) if isinstance(x, str) else float(x) for x in v}, key=str)
            if len(uniq) == 1:
                v = uniq[0]
            else:
                shown = ", ".join(x if isinstance(x, str) else f"{x:g}" for x in uniq[:6])
                return shown + (", ..." if len(uniq) > 6 else "") + " (per member)"
        return v if isinstance(v, str) else f"{v:g}"

    @property
    def grid(self) -> Grid | None:
        """The grid the members' hparams come from (None for a homogeneous run)."""
        g = self.meta.get("grid")
        return Grid.from_dict(g) if g else None

    def subset(self, index) -> Run:
        """The run restricted to some members (an index array or boolean mask over the member axis)."""
        import jax

        take = lambda tree: jax.tree.map(lambda x: np.asarray(x)[index], tree)  # noqa: E731
        E = len(self.members)

        def per_member(v):  # a value given per member is cut with them; a shared one stays
            if isinstance(v, (list, tuple, np.ndarray)) and not isinstance(v, str) and len(v) == E:
                return np.asarray(v)[index].tolist()
            return v

        fields = {k: per_member(v) for k, v in self.hparams._asdict().items() if k != "task"}
        if self.hparams.task:
            from jaxrnn.training.train import _task_values

            kept = [_task_values(self.config.task, self.hparams.task, i, E) for i in np.arange(E)[index]]
            fields["task"] = {k: [m[k] for m in kept] for k in self.hparams.task}
        return self._replace(hparams=Hparams(**fields), ensemble=take(self.ensemble), evaluation=take(self.evaluation))

    def cells(self) -> list[tuple[dict, np.ndarray]]:
        """(the grid values of a cell, the member positions in it) for every cell; one cell ({}, all) without a
        grid."""
        grid = self.grid
        if grid is None:
            return [({}, np.arange(len(self.members)))]
        cell = np.asarray(grid.cell_of(self.members))
        return [(grid.cell_values(c), np.flatnonzero(cell == c)) for c in range(grid.cells) if np.any(cell == c)]

    @property
    def evaluation_settings(self) -> dict:
        """{"trials", "seed", "success_at"} of the stored evaluation ({} when none)."""
        return dict((self.meta.get("extra") or {}).get("evaluation") or {})


# ----------------------------------------------------------------------------------------------------------------
# Atomic writes.


def atomic_write(path: str | Path, write_fn: Callable[[Any], None]) -> Path:
    """Write `path` atomically: `write_fn(f)` writes to a binary temporary file in the same folder, which is flushed,
    fsync-ed and renamed over `path` (then the folder is fsync-ed). On any error the temporary file is removed and
    `path` is left untouched.

    Args:
        path: destination file; its folder must exist.
        write_fn: called with an open binary file object.
    Returns:
        `path` as a Path.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def clean_temporaries(run_dir: str | Path) -> list[Path]:
    """Remove temporary files a killed writer left in `run_dir` (`.<name>.*.tmp`); returns what was removed."""
    removed = []
    folder = Path(run_dir)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if p.is_file() and p.name.startswith(_TMP_PREFIX) and p.name.endswith(_TMP_SUFFIX):
            p.unlink()
            removed.append(p)
    return removed


def _write_json(path: Path, obj: dict) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    return atomic_write(path, lambda f: np.savez(f, **arrays))


# ----------------------------------------------------------------------------------------------------------------
# One writer per run directory.

#: Run directories this process holds locked (path -> depth), so that nested users of `locked` in one process (a
#: study training into a run directory it already holds) do not lock themselves out.
_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def locked(run_dir: str | Path) -> Iterator[Path]:
    """Hold the advisory lock of `run_dir` (created with its parents if missing) for the duration of the block.

    The lock is an exclusive `fcntl.flock` on `run_dir/.lock`, whose text names the holder (pid, host, time). The
    kernel drops it when the holding process exits or is killed, so a stale `.lock` file never blocks. Reentrant
    within one process.

    Raises:
        RunLocked: another process holds it (the message names its pid).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    if key in _HELD or fcntl is None:
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield run_dir
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
        return
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").split()
        os.close(fd)
        who = f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "another process"
        raise RunLocked(
            f"{run_dir}: in use by {who} (it is training, evaluating or overwriting this run directory); "
            "wait for it to finish or choose another directory"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode(),
            0,
        )
        _HELD[key] = 1
        yield run_dir
    finally:
        _HELD.pop(key, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_holder(run_dir: str | Path) -> str | None:
    """Who holds `run_dir`'s lock now ("process PID on HOST since TIME"), or None when nobody does. Reads only."""
    path = Path(run_dir) / LOCK
    if fcntl is None or not path.is_file():
        return None
    key = Path(run_dir).resolve()
    if key in _HELD:
        return f"this process ({os.getpid()})"
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            if not holder:
                return "another process"
            return (
                f"process {holder[0]}"
                + (f" on {holder[1]}" if len(holder) > 1 else "")
                + (f" since {holder[2]}" if len(holder) > 2 else "")
            )
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def unfinished_state(run_dir: str | Path) -> str:
    """What an unfinished run directory is doing, in words: trained now by the process holding its lock, or waiting
    to be resumed by the command that started it."""
    holder = lock_holder(run_dir)
    if holder is not None:
        return f"{holder} is training it now; wait for it to finish"
    ckpt = "from its checkpoint" if (Path(run_dir) / CHECKPOINT).exists() else "from the start (no checkpoint yet)"
    return f"no process is training it; rerun the same `jaxrnn train` command to resume it {ckpt}"


# ----------------------------------------------------------------------------------------------------------------
# Configs <-> JSON.


def config_to_dict(config: TrainConfig) -> dict:
    """A JSON-safe dict of every TrainConfig field; the task as {"name": ..., "params": {every task field}}, and for
    a task defined outside jaxrnn also "source": "MODULE:CLASS", where `config_from_dict` imports it from; the cell as
    `jaxrnn.cells.cell_to_json` records it (a string, or a cell instance's class and JSON-able fields)."""
    from jaxrnn import cells

    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "cell":
            value = cells.cell_to_json(value)
        elif f.name == "task":
            params = {g.name: _json_value(getattr(value, g.name)) for g in dataclasses.fields(value)}
            source = task_source(value)
            value = {"name": value.name, **({"source": source} if source is not None else {}), "params": params}
        else:
            value = _json_value(value)
        out[f.name] = value
    return out


def _json_value(v):
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def config_from_dict(d: dict) -> TrainConfig:
    """The TrainConfig of `config_to_dict`'s output. Raises StoreError (with the reason) on a foreign dict.

    A task with a "source" is rebuilt from that MODULE:CLASS (`jaxrnn.tasks.task_class`), which must be importable
    here (from the Python path or the current directory) and still carry the stored name.
    """
    if not isinstance(d, dict) or not isinstance(d.get("task"), dict):
        raise StoreError("config: not a jaxrnn TrainConfig (no 'task' object)")
    task_d = d["task"]
    name, source, params = task_d.get("name"), task_d.get("source"), task_d.get("params", {})
    if source is not None:
        cls = _source_class(name, source)
    elif name not in TASKS:
        raise StoreError(f"config: unknown task {name!r}; allowed: {', '.join(TASKS)}")
    else:
        cls = TASKS[name]
    if not isinstance(params, dict):
        raise StoreError("config: task params must be an object")
    defaults = cls.parameters()
    params = {k: _tuples(v) if isinstance(defaults.get(k), tuple) else v for k, v in params.items()}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise StoreError(f"config: unknown TrainConfig fields {unknown}")
    try:
        from jaxrnn import cells

        task = cls().replace(**params)
        rest = {k: cells.cell_from_json(v) if k == "cell" else v for k, v in d.items() if k != "task"}
        return TrainConfig(task=task, **rest)
    except (TypeError, ValueError) as e:
        raise StoreError(f"config: invalid ({e})") from None


def _source_class(name, source) -> type:
    """The task class a config's task "source" names, checked to carry the stored `name`; else a StoreError."""
    if not isinstance(source, str):
        raise StoreError(f"config: task source must be a string MODULE:CLASS, got {source!r}")
    try:
        cls = task_class(source)
    except ValueError as e:
        reason = str(e).removeprefix(f"task {source!r}: ")
        raise StoreError(f"config: task {name!r} of this run comes from {source!r}: {reason}") from None
    if cls.name != name:
        raise StoreError(f"config: task source {source!r} now defines task {cls.name!r}; this run trained {name!r}")
    return cls


def _tuples(v):
    """JSON lists back to (nested) tuples, the type of tuple-valued task fields."""
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def _hparams_to_dict(hparams: Hparams) -> dict:
    """The set fields of `hparams`, JSON-safe: scalars as numbers or strings, per-member values as lists."""
    out = {}
    for k, v in hparams._asdict().items():
        if v is None:
            continue
        if k == "task":
            out[k] = {name: _hparam_value(x) for name, x in v.items()}
        else:
            out[k] = _hparam_value(v)
    return out


def _hparam_value(v):
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_hparam_value(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (str, bool, int)):
        return v
    return float(v)


def hparams_from_dict(d: dict) -> Hparams:
    """The Hparams of `_hparams_to_dict`'s output (per-member values as lists). Raises StoreError when foreign."""
    if not isinstance(d, dict) or set(d) - set(Hparams._fields):
        raise StoreError(f"config: hparams must be an object with fields among {', '.join(Hparams._fields)}")
    return Hparams(**d)


def _versions() -> dict:
    from importlib import metadata

    import jax

    return {
        "jaxrnn": __version__,
        "jax": jax.__version__,
        "jaxlib": metadata.version("jaxlib"),  # jax's own dependency, read without importing it
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _device() -> dict:
    import jax

    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "kind": devices[0].device_kind,
        "count": len(devices),
        "local_count": jax.local_device_count(),
        "processes": jax.process_count(),
    }


def member_ids_to_json(members) -> dict | list[int]:
    """Member ids as config.json (and a checkpoint's identity) stores them: a contiguous range a..b-1 as
    {"start": a, "stop": b}, any other ids as their list."""
    ids = np.asarray(members, np.int64).reshape(-1)
    if ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)):
        return {"start": int(ids[0]), "stop": int(ids[0]) + int(ids.size)}
    return [int(m) for m in ids]


def member_ids_from_json(value) -> np.ndarray:
    """The member ids of config.json's `members`: {"start": a, "stop": b} or a list (as every run before the range
    form was written). Raises ValueError when it is neither."""
    if isinstance(value, dict):
        if set(value) != {"start", "stop"} or not all(isinstance(value[k], int) for k in value):
            raise ValueError(f"members: expected {{'start': int, 'stop': int}} or a list of ids, got {value!r}")
        return np.arange(value["start"], value["stop"], dtype=np.int64)
    if not isinstance(value, list):
        raise ValueError(f"members: expected {{'start': int, 'stop': int}} or a list of ids, got {value!r}")
    return np.asarray(value, np.int64)


def run_meta(
    config: TrainConfig,
    *,
    seed: int,
    hparams: Hparams,
    members,
    complete: bool,
    extra: dict | None = None,
    command: Sequence[str] | None = None,
    grid: Grid | None = None,
) -> dict:
    """The config.json dict of a run (see the module docstring). `command`: the command line that made it, as the
    caller knows it (the CLI passes its argv; None from Python). `grid`: the grid the members' hparams come from."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "complete": bool(complete),
        "config": config_to_dict(config),
        "seed": int(seed),
        "hparams": _hparams_to_dict(hparams),
        "members": member_ids_to_json(members),
        "grid": None if grid is None else grid.to_dict(),
        "versions": _versions(),
        "device": _device(),
        "argv": None if command is None else [str(a) for a in command],
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extra": _json_safe(extra or {}),
    }


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def same_run(meta: dict, config: TrainConfig, seed: int, hparams: Hparams, members) -> list[str]:
    """What differs between a stored config.json dict and the run (config, seed, hparams, members); [] if same."""
    want = {
        "config": config_to_dict(config),
        "seed": int(seed),
        "hparams": _hparams_to_dict(hparams),
    }
    diffs = []
    stored_cfg = meta.get("config", {}) if isinstance(meta.get("config"), dict) else {}
    # a field that a run written by an older jaxrnn lacks had that field's default there
    defaults = {f.name: _json_value(f.default) for f in dataclasses.fields(TrainConfig) if f.name != "task"}
    for k, v in want["config"].items():
        if k == "task":
            s = stored_cfg.get("task", {})
            if not isinstance(s, dict) or s.get("name") != v["name"] or s.get("source") != v.get("source"):
                diffs.append("task")
                continue
            sp = s.get("params", {}) if isinstance(s.get("params"), dict) else {}
            task_defaults = {p: _json_value(d) for p, d in type(config.task).parameters().items()}
            diffs += [f"task.{p}" for p, pv in v["params"].items() if sp.get(p, task_defaults.get(p)) != pv]
        elif stored_cfg.get(k, defaults.get(k)) != v:
            diffs.append(k)
    for k in ("seed", "hparams"):
        if meta.get(k) != want[k]:
            diffs.append(k)
    try:  # the ids as a range or as a list, whichever form they were stored in
        same_members = np.array_equal(member_ids_from_json(meta.get("members")), np.asarray(members, np.int64))
    except (ValueError, TypeError, OverflowError):
        same_members = False
    if not same_members:
        diffs.append("members")
    return diffs


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading a finished run.


def _flat_params(prefix: str, params) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": np.asarray(v) for k, v in params.items()}


def members_table(ensemble: Ensemble, evaluation, seed: int, grid: Grid | None = None) -> list[dict]:
    """Rows of members.csv (dicts keyed by MEMBER_COLUMNS, with one column per grid axis after `seed`; metrics None
    when `evaluation` is None). A member that diverged during training (frozen at its last finite parameters) is
    never counted a success."""
    loss = np.asarray(ensemble.loss)
    values = grid.member_values(ensemble.members) if grid is not None else {}
    rows = []
    for i, m in enumerate(np.asarray(ensemble.members)):
        row = {
            "member": int(m),
            "seed": int(seed),
            **{name: _grid_value(v[i]) for name, v in values.items()},
            "final_loss": float(loss[i, -1]) if loss.shape[1] else float("nan"),
            "mse": None,
            "distance": None,
            "accuracy": None,
            "success": None,
            "stop_epoch": int(np.asarray(ensemble.stop_epoch)[i]) or None,
            "diverged": bool(np.asarray(ensemble.diverged)[i]),
            "diverged_epoch": None,
        }
        if row["diverged"]:
            row["diverged_epoch"] = diverged_epoch(loss[i])
        if evaluation is not None:
            row.update(
                mse=float(evaluation.mse[i]),
                distance=float(evaluation.distance[i]),
                accuracy=float(evaluation.accuracy[i]),
                success=bool(evaluation.success[i]) and not row["diverged"],  # a diverged member has failed
            )
        rows.append(row)
    return rows


def diverged_epoch(loss: np.ndarray) -> int | None:
    """The epoch (1-based) in which a diverged member's training loss first became non-finite, the epoch it was
    frozen in; None when its loss stayed finite (a non-finite gradient with a finite loss)."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(loss)))
    return int(bad[0]) + 1 if bad.size else None


def _grid_value(v):
    v = v.item() if isinstance(v, np.generic) else v
    return " ".join(map(str, v)) if isinstance(v, (tuple, list, np.ndarray)) else v


def write_members_table(run_dir: str | Path, rows: list[dict]) -> Path:
    """Write members.csv atomically (booleans as 0/1, missing metrics empty; grid columns as given)."""
    columns = list(rows[0]) if rows else list(MEMBER_COLUMNS)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _csv_value(row.get(k)) for k in columns})
    data = buf.getvalue().encode()
    return atomic_write(Path(run_dir) / MEMBERS, lambda f: f.write(data))


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, float):
        return repr(v)
    return v


def write_config(run_dir: str | Path, meta: dict) -> Path:
    """Write config.json atomically from a `run_meta` dict."""
    return _write_json(Path(run_dir) / CONFIG, _json_safe(meta))


def write_evaluation(
    run_dir: str | Path, ensemble: Ensemble, evaluation: Evaluation, seed: int, settings: dict, grid: Grid | None = None
) -> None:
    """Write evaluation.npz (every `Evaluation` array and the settings) and members.csv from it, atomically.

    Args:
        settings: {"trials", "seed", "success_at"} of the evaluation (also recorded in config.json by the caller).
    """
    arrays = {k: np.asarray(v) for k, v in evaluation._asdict().items()}
    arrays.update({f"settings/{k}": np.asarray(settings[k]) for k in _EVAL_SETTINGS})
    _write_npz(Path(run_dir) / EVALUATION, arrays)
    write_members_table(run_dir, members_table(ensemble, evaluation, seed, grid))


_EVAL_SETTINGS = ("trials", "seed", "success_at", "rule")


def load_evaluation(run_dir: str | Path, n_members: int, n_conditions: int) -> Evaluation | None:
    """The stored Evaluation of a run: None when it has no evaluation.npz or one scored by another success rule
    (`jaxrnn.training.evaluate.RULE`; it is evaluated again where needed). Raises StoreError when damaged."""
    path = Path(run_dir) / EVALUATION
    if not path.exists():
        return None
    arrays = _load_npz(path)
    if "settings/rule" not in arrays or int(arrays["settings/rule"]) != RULE:
        return None
    expected = {k: (n_members,) for k in Evaluation._fields}
    expected["distance_by_condition"] = (n_members, n_conditions)
    expected["accuracy_by_tolerance"] = (n_members, len(TOLERANCES))
    expected.update({f"settings/{k}": () for k in _EVAL_SETTINGS})
    _check_arrays(path, arrays, expected)
    return Evaluation(**{k: arrays[k] for k in Evaluation._fields})


def save_run(
    run_dir: str | Path,
    config: TrainConfig,
    ensemble: Ensemble,
    evaluation: Evaluation | None = None,
    *,
    seed: int,
    hparams: Hparams,
    extra: dict | None = None,
    command: Sequence[str] | None = None,
    grid: Grid | None = None,
) -> Path:
    """Write a finished run directory (every file atomic) and remove its checkpoint.

    Args:
        run_dir: the folder (created with its parents if missing).
        config: the run's TrainConfig.
        ensemble: the trained ensemble (member axis first).
        evaluation: its `Evaluation`, or None (members.csv then has empty metric columns). With one,
            `extra["evaluation"]` must hold its settings {"trials", "seed", "success_at"}.
        seed: the root seed. hparams: lr and gain.
        extra: more JSON-safe facts stored under config.json's "extra" (e.g. timings, a source file).
        command: the command line that made the run (recorded; see `run_meta`).
        grid: the grid of the members' hparams (recorded; one members.csv column per axis).
    Returns:
        The run directory.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    members = np.asarray(ensemble.members)
    arrays = {**_flat_params("init", ensemble.params_init), **_flat_params("final", ensemble.params_final)}
    _write_npz(run_dir / PARAMS, arrays)
    _write_npz(
        run_dir / HISTORY,
        {
            "loss": np.asarray(ensemble.loss, np.float32),
            "stop_epoch": np.asarray(ensemble.stop_epoch, np.int32),
            "diverged": np.asarray(ensemble.diverged, bool),
            "members": members.astype(np.int64),
        },
    )
    if evaluation is None:
        (run_dir / EVALUATION).unlink(missing_ok=True)
        write_members_table(run_dir, members_table(ensemble, None, seed, grid))
    else:
        write_evaluation(run_dir, ensemble, evaluation, seed, (extra or {})["evaluation"], grid)
    # config.json last: `complete` is only true once every other file is in place
    meta = run_meta(
        config, seed=seed, hparams=hparams, members=members, complete=True, extra=extra, command=command, grid=grid
    )
    write_config(run_dir, meta)
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    clean_temporaries(run_dir)
    return run_dir


def read_json(path: Path):
    """The JSON value of a file jaxrnn wrote. Raises StoreError naming the file when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{path}: damaged ({type(e).__name__}: {e})") from None


def load_meta(run_dir: str | Path) -> dict:
    """The config.json dict of a run directory (checked to be a jaxrnn run). Raises StoreError."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise StoreError(f"{run_dir}: not a directory")
    if not path.is_file():
        raise StoreError(f"{path}: missing (not a jaxrnn run directory)")
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StoreError(f"{path}: not a jaxrnn run config (format is not {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    for key in ("config", "seed", "hparams", "members"):
        if key not in meta:
            raise StoreError(f"{path}: damaged (no {key!r})")
    return meta


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise StoreError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "allow_pickle" in msg:  # numpy's hint to load pickles: jaxrnn never writes them, so the file is not its own
            msg = "it holds Python objects, which jaxrnn never writes"
        raise StoreError(f"{path}: damaged or not a numpy .npz file ({msg})") from None


def expected_param_shapes(config: TrainConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and per-member shapes of the network of `config`."""
    import jax

    from jaxrnn.cells.network import init_params

    shapes = jax.eval_shape(lambda k: init_params(k, config.net), jax.random.key(0))  # no computation
    return {k: tuple(v.shape) for k, v in shapes.items()}


def _check_arrays(path: Path, arrays: dict, expected: dict[str, tuple]) -> None:
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise StoreError(f"{path}: unexpected layout (missing keys {missing}, unknown keys {extra})")
    for k, shape in expected.items():
        if arrays[k].shape != shape:
            raise StoreError(f"{path}: {k} has shape {arrays[k].shape}, expected {shape}")


def load_run(run_dir: str | Path, evaluation: bool = True) -> Run:
    """Load a finished run directory, checking every file's layout against its config. Raises StoreError.

    With `evaluation=False` the stored evaluation is not read (the Run has none): `jaxrnn evaluate` rewrites a
    damaged or outdated evaluation.npz that way."""
    run_dir = Path(run_dir)
    meta = load_meta(run_dir)
    if not meta.get("complete"):
        raise StoreError(f"{run_dir}: the run is not finished ({unfinished_state(run_dir)})")
    config = config_from_dict(meta["config"])
    try:
        seed = int(meta["seed"])
        hparams = hparams_from_dict(meta["hparams"])
        members = member_ids_from_json(meta["members"])
    except (TypeError, ValueError) as e:
        raise StoreError(f"{run_dir / CONFIG}: damaged ({e})") from None
    E = len(members)
    shapes = expected_param_shapes(config)
    params = _load_npz(run_dir / PARAMS)
    if config.cell in ("gru", "lstm") and "final/W_h" in params:
        raise StoreError(
            f"{run_dir / PARAMS}: the old {config.cell} layout (W_x, W_h, b_h: jaxrnn's own gated cell); cell "
            f"{config.cell!r} is now flax.linen.{config.cell.upper()}Cell, so this version cannot reopen the run "
            "(retrain it)"
        )
    if config.dale and "init/signs" not in params and "final/signs" not in params:
        # written before the unit signs were a parameter (one E fraction for all members): they are the config's
        from jaxrnn.cells.network import dale_signs

        signs = np.tile(np.asarray(dale_signs(config.net)), (E, 1))
        params.update({"init/signs": signs, "final/signs": signs})
    expected = {f"{s}/{k}": (E, *shape) for s in ("init", "final") for k, shape in shapes.items()}
    _check_arrays(run_dir / PARAMS, params, expected)
    hist = _load_npz(run_dir / HISTORY)
    _check_arrays(
        run_dir / HISTORY,
        hist,
        {"loss": (E, config.epochs), "stop_epoch": (E,), "diverged": (E,), "members": (E,)},
    )
    if not np.array_equal(hist["members"], members):
        raise StoreError(f"{run_dir / HISTORY}: member ids differ from {CONFIG}")
    ensemble = Ensemble(
        members=members,
        params_init={k: params[f"init/{k}"] for k in shapes},
        params_final={k: params[f"final/{k}"] for k in shapes},
        loss=hist["loss"],
        stop_epoch=hist["stop_epoch"],
        diverged=hist["diverged"].astype(bool),
    )
    stored = load_evaluation(run_dir, E, len(config.task.conditions)) if evaluation else None
    return Run(run_dir, config, seed, hparams, ensemble, stored, meta)


def load_members_table(run_dir: str | Path) -> list[dict]:
    """members.csv as a list of dicts (ints, floats, bools; None for empty metrics). Raises StoreError."""
    path = Path(run_dir) / MEMBERS
    if not path.is_file():
        raise StoreError(f"{path}: missing")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            names = tuple(reader.fieldnames or ())
            if tuple(n for n in names if n in MEMBER_COLUMNS) != MEMBER_COLUMNS or names[:2] != MEMBER_COLUMNS[:2]:
                raise StoreError(f"{path}: unexpected columns {reader.fieldnames}, expected {list(MEMBER_COLUMNS)}")
            rows = [_parse_row(r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError) as e:
        if isinstance(e, StoreError):
            raise
        raise StoreError(f"{path}: damaged ({e})") from None
    return rows


def _parse_row(r: dict) -> dict:
    def num(v, kind):
        return None if v in ("", None) else kind(v)

    return {
        "member": int(r["member"]),
        "seed": int(r["seed"]),
        **{k: v for k, v in r.items() if k not in MEMBER_COLUMNS},  # grid columns, as text
        "final_loss": num(r["final_loss"], float),
        "mse": num(r["mse"], float),
        "distance": num(r["distance"], float),
        "accuracy": num(r["accuracy"], float),
        "success": num(r["success"], lambda v: bool(int(v))),
        "stop_epoch": num(r["stop_epoch"], int) or None,  # empty (or 0 in older files): never stopped early
        "diverged": bool(int(r["diverged"])),
        "diverged_epoch": num(r.get("diverged_epoch"), int),
    }


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints.


def _meta_string(config: TrainConfig, seed: int, hparams: Hparams, members) -> str:
    return json.dumps(
        {
            "config": config_to_dict(config),
            "seed": int(seed),
            "hparams": _hparams_to_dict(hparams),
            "members": None if members is None else member_ids_to_json(members),
        },
        sort_keys=True,
    )


def save_checkpoint(
    run_dir: str | Path,
    config: TrainConfig,
    seed: int,
    hparams: Hparams,
    state: TrainState,
    loss: np.ndarray,
    members=None,
) -> Path:
    """Write checkpoint.npz atomically: the TrainState (optimizer state and stop flags included) flattened with
    `jax.tree_util` to `leaf_000`, `leaf_001`, ..., the loss so far (E, epochs) and the run's identity.

    Args:
        state: host TrainState of all members (member axis first).
        loss: (E, epochs), NaN for epochs not yet run.
        members: member ids (stored and checked on load when given).
    """
    import jax

    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i:03d}": np.asarray(x) for i, x in enumerate(leaves)}
    arrays["loss"] = np.asarray(loss, np.float32)
    arrays["n_leaves"] = np.asarray(len(leaves), np.int64)
    arrays["identity"] = np.asarray(_meta_string(config, seed, hparams, members))
    return _write_npz(Path(run_dir) / CHECKPOINT, arrays)


def load_checkpoint(
    run_dir: str | Path, config: TrainConfig, seed: int, hparams: Hparams, members
) -> tuple[TrainState, np.ndarray] | None:
    """The (state, loss) saved by `save_checkpoint`, or None when `run_dir` holds no checkpoint.

    The pytree structure comes from `init_ensemble(config, seed, members)`; every leaf's shape and dtype is checked.
    Raises StoreError when the checkpoint is damaged or belongs to another run.
    """
    import jax

    from jaxrnn.training.train import init_ensemble

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    arrays = _load_npz(path)
    try:
        identity = json.loads(str(arrays["identity"]))
        n = int(arrays["n_leaves"])
        loss = arrays["loss"]
    except (KeyError, ValueError, TypeError) as e:
        raise StoreError(f"{path}: damaged or foreign checkpoint ({type(e).__name__}: {e})") from None
    if identity.get("members") is None:
        identity["members"] = [int(m) for m in np.asarray(members)]
    diffs = same_run(identity, config, seed, hparams, members)  # as for config.json: older fields had defaults
    if diffs:
        raise StoreError(f"{path}: the checkpoint belongs to a different run (differs in: {', '.join(diffs)})")
    reference = init_ensemble(config, seed, np.asarray(members), hparams)
    ref_leaves, treedef = jax.tree_util.tree_flatten(reference)
    if n != len(ref_leaves) or any(f"leaf_{i:03d}" not in arrays for i in range(n)):
        raise StoreError(f"{path}: {n} state arrays, expected {len(ref_leaves)}")
    leaves = []
    for i, ref in enumerate(ref_leaves):
        x = arrays[f"leaf_{i:03d}"]
        if x.shape != ref.shape or x.dtype != ref.dtype:
            raise StoreError(f"{path}: leaf_{i:03d} is {x.dtype}{x.shape}, expected {ref.dtype}{ref.shape}")
        leaves.append(x)
    E = len(np.asarray(members))
    if loss.shape != (E, config.epochs):
        raise StoreError(f"{path}: loss has shape {loss.shape}, expected {(E, config.epochs)}")
    return jax.tree_util.tree_unflatten(treedef, leaves), loss.copy()
