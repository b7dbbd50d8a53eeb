"""The `jaxrnn` command line: train ensembles, inspect tasks, evaluate, show and plot run directories, run studies.

    jaxrnn tasks [NAME]
    jaxrnn train TASK [--members E] [--units N] [--init orthogonal|normal] [--protocol paper|online] [--epochs n]
                      [--batch-size B] [--n-train n] [--lr LR] [--seed S] --out RUN_DIR [--param key=value ...]
    jaxrnn sample TASK --trials K [--seed S] [--param key=value ...] --out FILE.npz [--plot FILE.png]
    jaxrnn evaluate RUN_DIR [--trials K]
    jaxrnn show RUN_DIR
    jaxrnn plot RUN_DIR
    jaxrnn study NAME [--scale smoke|cpu|paper|tutorial|sweep] [--members E] [--out DIR] [--run RUN_DIR] [--overwrite]
    jaxrnn import-keras FILE [FILE ...] --task TASK [--initial FILE0 ...] --out RUN_DIR [--param key=value ...]
    jaxrnn train ... --shards K [--executor local|slurm] [--no-wait] --out OUT;  jaxrnn merge OUT [--wait]

Every input is validated (task, parameters, sizes, output paths, an existing run directory) before JAX compiles
anything and before anything is written. Errors print one line `jaxrnn: error: ...` to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from jaxrnn import spec  # no JAX at import: the memory checks and the numbers' definitions
from jaxrnn.training import budget

EXIT_ERROR = 2
_PROG = "jaxrnn"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (`jaxrnn train: error: ...`) and exit 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# ----------------------------------------------------------------------------------------------------------------
# Argument types and parsing helpers (no JAX here).


def _number(convert, allow_zero: bool):
    """An argparse type: `convert(text)` that must be finite and > 0 (or >= 0 when `allow_zero`)."""
    noun = "integer" if convert is int else "number"
    wanted = f"a {'non-negative' if allow_zero else 'positive'} {noun}"

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    return parse


_positive_int = _number(int, allow_zero=False)
_nonnegative_int = _number(int, allow_zero=True)
_positive_float = _number(float, allow_zero=False)
_nonnegative_float = _number(float, allow_zero=True)


def _training_number(name: str):
    """argparse type of a per-member training number (`jaxrnn.spec.NUMBERS`): parsed and checked by its definition."""

    def parse(text: str):
        try:
            return spec.parse_number(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _fraction(text: str) -> float:
    value = _nonnegative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _convert(name: str, field: str, default, text: str):
    """Parse `text` as the type of a task field's default value."""
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--param {field}={text}: {field} must be true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"--param {field}={text}: {name}.{field} must be an integer") from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"--param {field}={text}: {name}.{field} must be a number") from None
        if not math.isfinite(value):
            raise ValueError(f"--param {field}={text}: {name}.{field} must be finite")
        return value
    if isinstance(default, tuple):
        if text.strip()[:1] in "[(":
            try:
                value = json.loads(text.strip().replace("(", "[").replace(")", "]"))
            except json.JSONDecodeError:
                raise ValueError(f"--param {field}={text}: {name}.{field} must be a JSON list") from None
            return _tuples(value)
        items = [s for s in text.split(",") if s.strip()]
        proto = default[0] if default else 0.0
        return tuple(_convert(name, field, proto, s) for s in items)
    return text


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def parse_params(task_name: str, items: list[str] | None) -> dict:
    """`["key=value", ...]` → {key: value typed like the task's field}. Raises ValueError naming the problem.

    `task_name` is a built-in task's name or MODULE:CLASS (`jaxrnn.tasks.task_class`, which imports MODULE).
    """
    from jaxrnn.tasks import task_class

    cls = task_class(task_name)
    defaults = cls.parameters()
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--param {item!r}: expected key=value")
        key, text = (s.strip() for s in item.split("=", 1))
        if key not in defaults:
            raise ValueError(f"--param {item}: {cls.name} has no parameter {key!r}; allowed: {', '.join(defaults)}")
        if key in out:
            raise ValueError(f"--param {key} given twice")
        out[key] = _convert(cls.name, key, defaults[key], text)
    return out


def _make_task(name: str, items: list[str] | None):
    from jaxrnn.tasks import make_task

    return make_task(name, **parse_params(name, items))


def _check_file_out(path: Path, flag: str = "--out") -> None:
    """An output file path: not a directory, and its folder (if it exists) is a folder."""
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory, expected a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a directory")
            break


# ----------------------------------------------------------------------------------------------------------------
# Subcommands.


def _cmd_tasks(args) -> int:
    import dataclasses

    from jaxrnn.tasks import TASKS, task_class

    listed = TASKS.items() if args.name is None else [(args.name, task_class(args.name))]
    for name, cls in listed:
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        task = cls()
        print(f"{name}  ({task.n_in} in, {task.n_out} out; conditions: {', '.join(task.conditions)})  {doc}")
        for field, default in cls.parameters().items():
            print(f"    {field:<16} {default!r}{'  (static)' if field in cls.STATIC else ''}")
        preset = dataclasses.asdict(cls.preset)
        print("    training preset: " + ", ".join(f"{k}={v}" for k, v in preset.items()))
        print(f"    success rule: {cls.success_rule}")
    return 0


def _train_config(args):
    """Task, TrainConfig and Hparams from the train arguments (validated; no compilation)."""
    from jaxrnn.training.train import Hparams, TrainConfig

    task = _make_task(args.task, args.param)
    config = TrainConfig(
        task=task,
        units=args.units,
        init=args.init,
        bias=args.bias,
        alpha=args.alpha,
        activation=args.activation,
        protocol=args.protocol,
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_train=args.n_train,
        decay=args.decay,
        clip_norm=args.clip_norm,
        threshold=args.threshold,
        shared_data=args.shared_data,
        data_seed=args.data_seed,
        cell=args.cell,
        dale=args.dale,
        e_fraction=args.e_fraction,
        sparsity=args.sparsity,
        train_h0=args.train_h0,
        dale_method=args.dale_method,
        dale_axis=args.dale_axis,
        nonneg_input=args.nonneg_input,
        rec_noise=args.rec_noise,
        in_noise=args.in_noise,
        l2_weights=args.l2_weights,
        l2_rates=args.l2_rates,
    )
    return config, Hparams(lr=args.lr, gain=args.gain)


class _Given(argparse.Action):
    """Store the value and note the option as given (`args.given`), so a grid axis can refuse the same option."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _cell_arg(value: str) -> str:
    """`--cell`'s value: rnn, gru, lstm or MODULE:ATTR (imported and checked when the config is built)."""
    module, colon, attr = value.partition(":")
    if value in ("rnn", "gru", "lstm") or (colon and module and attr):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from rnn, gru, lstm, or MODULE:ATTR)")


def _add_network_options(p, study: bool = False) -> None:
    """--cell, --dale, --e-fraction, --sparsity (train and study), --dale-method, --dale-axis, --nonneg-input (train);
    values are checked by NetConfig before any compilation, with a message naming the field."""
    p.add_argument(
        "--cell",
        type=_cell_arg,
        default=None if study else "rnn",
        metavar="rnn|gru|lstm|MODULE:ATTR",
        help="rnn: the rate RNN (default); gru, lstm: flax.linen.GRUCell / LSTMCell with --units features; "
        "MODULE:ATTR: your own Flax cell, ATTR a flax.linen.RNNCellBase instance or a factory taking the unit count "
        "(MODULE from the Python path or the current directory)",
    )
    p.add_argument(
        "--dale",
        action="store_true",
        default=None if study else False,
        help="Dale's law: each unit's outgoing weights keep one sign (W_eff = |W|·D), balanced E/I init"
        + ("" if study else "; see --dale-method and --dale-axis"),
    )
    if not study:
        p.add_argument(
            "--dale-method",
            choices=("abs", "project"),
            default="abs",
            help="with --dale: abs = W_eff = |W|·D with a balanced E/I init (default); project = the original Keras "
            "code's way: plain init, wrong-signed weights set to 0 after every update",
        )
        p.add_argument(
            "--dale-axis",
            choices=("pre", "post"),
            default="pre",
            help="with --dale: the sign of W[i, j] is that of presynaptic unit j (pre, Dale's law; default) or of "
            "receiving unit i (post, as the original code constrained it; needs --dale-method project)",
        )
        p.add_argument(
            "--nonneg-input",
            action="store_true",
            help="keep the input weights W_in >= 0 (projected after every update, as the original E/I code)",
        )
    p.add_argument(
        "--e-fraction",
        type=_training_number("e_fraction"),
        action=_Given,
        default=None if study else 0.8,
        metavar="F",
        help="with --dale: fraction of excitatory units, in (0, 1) (default 0.8)",
    )
    p.add_argument(
        "--sparsity",
        type=float,
        default=None if study else 0.0,
        metavar="S",
        help="fraction of recurrent connections removed by a fixed random mask, in [0, 1) (default 0; "
        "connection probability 1 - S)",
    )


def _grid(args, task):
    """The `--grid NAME=V1,V2,...` axes as a Grid with `--members` per cell, or None (validated; no JAX). An axis
    also given as its own option (`--lr`) or task parameter (`--param`) is refused: the axis would override it."""
    if not args.grid:
        return None
    from jaxrnn.training.grid import Grid, parse_axis

    grid = Grid(tuple(parse_axis(text, task) for text in args.grid), args.members).check(task)
    params = parse_params(args.task, args.param)
    for name in grid.names:
        if name in getattr(args, "given", ()):
            raise ValueError(f"--grid {name}: also given as --{name.replace('_', '-')}; give one or the other")
        if name in params:
            raise ValueError(f"--grid {name}: also given as --param {name}; give one or the other")
    return grid


def _run_options(args, hparams, grid) -> dict:
    """The keyword arguments `runs.train_run` and `shards.train_sharded` both take from `jaxrnn train`'s options."""
    return dict(
        seed=args.seed,
        members=None if grid else args.members,
        hparams=hparams,
        grid=grid,
        overwrite=args.overwrite,
        n_eval=args.trials,
        success_at=args.success_at,
        checkpoint_every=args.checkpoint_every,
        chunk_size=args.chunk_size,
    )


def _cmd_train(args) -> int:
    from jaxrnn import runs

    config, hparams = _train_config(args)
    grid = _grid(args, config.task)
    budget.check_train(config, args.members, grid=grid, chunk_size=args.chunk_size, n_eval=args.trials, out=args.out)
    sharding = _shards(args)
    if sharding is not None:
        return _train_sharded(args, config, hparams, grid, sharding)
    members, hp = (grid.members, grid.hparams(hparams)) if grid else (args.members, hparams)
    runs.plan(args.out, config, args.seed, hp, members, args.overwrite)  # refuse before compiling
    bar = runs.ProgressBar("train", disable=args.no_progress)
    try:
        run = runs.train_run(
            args.out,
            config,
            **_run_options(args, hparams, grid),
            progress=bar,
            log=lambda m: print(m, file=sys.stderr),
            command=["jaxrnn", *args.argv],
        )
    finally:
        bar.close()
    _print_summary(run)
    return 0


#: The options of sharded training (`_add_shard_options`), by their argparse names.
_SHARD_OPTIONS = ("executor", "partition", "time", "cpus_per_task", "gpus_per_task", "mem", "sbatch", "no_wait")


def _shards(args):
    """The `jaxrnn.runs.shards.Shards` of `--shards K --executor ...`, or None without --shards (validated; a shard
    option without --shards is refused)."""
    given = [k for k in _SHARD_OPTIONS if getattr(args, k, None) not in (None, False, [])]
    if getattr(args, "shards", None) is None:
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')}: needs --shards K")
        return None
    from jaxrnn.runs.shards import Shards, parse_sbatch

    return Shards(
        count=args.shards,
        executor=args.executor or "local",
        partition=args.partition,
        time=args.time,
        cpus_per_task=args.cpus_per_task,
        gpus_per_task=args.gpus_per_task,
        mem=args.mem,
        sbatch=parse_sbatch(args.sbatch),
        wait=not args.no_wait,
        progress=not args.no_progress,
    ).check()


def _train_sharded(args, config, hparams, grid, sharding) -> int:
    """`jaxrnn train ... --shards K`: submit the shards, wait and merge (`jaxrnn.runs.shards.train_sharded`)."""
    from jaxrnn.runs import shards

    try:
        run = shards.train_sharded(
            args.out,
            config,
            sharding,
            **_run_options(args, hparams, grid),
            log=lambda m: print(m, file=sys.stderr),
            command=["jaxrnn", *args.argv],
        )
    except KeyboardInterrupt:
        print(shards.detached_message(args.out), file=sys.stderr)
        return 130
    except shards.ShardsIncomplete as e:
        print(f"{_PROG}: error: {e}", file=sys.stderr)
        return 1
    if run is None:
        print(shards.submitted_message(args.out), file=sys.stderr)
        return 0
    _print_summary(run)
    return 0


def _cmd_merge(args) -> int:
    from jaxrnn.runs import shards

    try:
        if args.wait:
            shards.wait(args.out, progress=not args.no_progress)
        run = shards.merge(args.out, log=lambda m: print(m, file=sys.stderr))
    except KeyboardInterrupt:
        print(shards.detached_message(args.out), file=sys.stderr)
        return 130
    except shards.ShardsIncomplete as e:
        print(f"{_PROG}: error: {e}", file=sys.stderr)
        return 1
    _print_summary(run)
    return 0


def _add_shard_options(p) -> None:
    """--shards K and the executor's options (train and study)."""
    p.add_argument(
        "--shards",
        type=_positive_int,
        metavar="K",
        help="train each ensemble as K shards (contiguous member ranges, cell-major), one job each through submitit, "
        "into OUT/shards/NNN; wait, then merge them into OUT (pip install 'jaxrnn[slurm]')",
    )
    p.add_argument(
        "--executor",
        choices=("local", "slurm"),
        help="with --shards: local = one local process per shard, all started at once (default); slurm = one Slurm "
        "job array (needs sbatch on PATH)",
    )
    p.add_argument("--partition", help="with --executor slurm: the Slurm partition")
    p.add_argument(
        "--time",
        type=_positive_int,
        metavar="MIN",
        help="with --shards: each job's time limit in minutes (Slurm default 60; local: none)",
    )
    p.add_argument("--cpus-per-task", type=_positive_int, metavar="C", help="with --executor slurm: CPUs per shard")
    p.add_argument("--gpus-per-task", type=_positive_int, metavar="G", help="with --executor slurm: GPUs per shard")
    p.add_argument("--mem", type=_positive_float, metavar="GB", help="with --executor slurm: memory per shard (GB)")
    p.add_argument(
        "--sbatch",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="with --executor slurm: another sbatch option (repeatable), e.g. --sbatch account=lab --sbatch qos=long",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="with --shards: return once the jobs are submitted (`jaxrnn merge OUT --wait` waits and merges later)",
    )


def _fmt(x, spec=".3g") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _seconds(x: float) -> str:
    return f"{x:.3g} s" if x >= 1 else f"{x * 1e3:.3g} ms"


def _rows(run) -> list[dict]:
    """members.csv's rows of a run, from its ensemble and stored evaluation."""
    from jaxrnn.runs import store

    return store.members_table(run.ensemble, run.evaluation, run.seed, run.grid)


def _print_summary(run) -> None:
    """The end-of-training table: success with its Wilson interval, distance, MSE, stops, timing, device."""
    from jaxrnn.training.evaluate import wilson_interval

    cfg, meta, run_dir = run.config, run.meta, run.path
    rows = _rows(run)
    E = len(rows)
    ev = run.evaluation_settings
    succ = [r["success"] for r in rows if r["success"] is not None]
    dist = np.array([r["distance"] for r in rows if r["distance"] is not None], float)
    mse = np.array([r["mse"] for r in rows if r["mse"] is not None], float)
    n_stop = sum(bool(r["stop_epoch"]) for r in rows)
    n_div = sum(r["diverged"] for r in rows)
    lines = [
        (
            "run",
            f"{str(run_dir) + ': ' if run_dir else ''}task {cfg.task.name}, E={E}, N={cfg.units}, "
            f"{run.value('init')} init, "
            + (
                _imported(meta)
                or f"{cfg.protocol} protocol, {cfg.epochs} epochs, batch {cfg.batch_size}, n_train {cfg.n_train}, "
                f"lr {run.value('lr')}, seed {run.seed}"
            ),
        ),
    ]
    if succ:
        k = int(sum(succ))
        lo, hi = wilson_interval(k, len(succ))
        crit = (
            f"finite, >= {ev.get('success_at', 0.9):.0%} of {ev.get('trials', '?')} held-out trials correct and "
            "distance <= half the all-zero output's"
        )
        lines.append(("success", f"{k}/{len(succ)} = {k / len(succ):.1%}  [95% Wilson {lo:.1%}, {hi:.1%}]  ({crit})"))
    fin = dist[np.isfinite(dist)]
    if fin.size:
        zero = f"; an all-zero output: {np.median(run.evaluation.zero_distance):.3f}" if run.evaluation else ""
        lines.append(
            (
                "distance",
                f"median {np.median(fin):.3f}  (mean {fin.mean():.3f}, min {fin.min():.3f}, "
                f"max {fin.max():.3f}; per-trial L2 ||target - output||{zero})",
            )
        )
    fin = mse[np.isfinite(mse)]
    if fin.size:
        lines.append(("mse", f"median {np.median(fin):.3g}  (mean {fin.mean():.3g})"))
    lines.append(("members", f"stopped early {n_stop}/{E}, diverged {n_div}/{E}"))
    timing = meta.get("extra", {}).get("timing")
    if timing:
        note = " (includes compilation)" if timing.get("includes_compile") else ""
        lines.append(
            (
                "time",
                f"{timing['s_per_epoch']:.3g} s per epoch of the ensemble{note}, "
                f"{_seconds(timing['s_per_network_epoch'])} per network-epoch; "
                f"first call (compile + {timing.get('first_call_epochs', '?')} epochs) "
                f"{_fmt(timing.get('first_call_s'))} s; training {timing['train_s']:.3g} s",
            )
        )
    dev = meta.get("device", {})
    lines.append(("device", f"{dev.get('kind', '?')} ({dev.get('platform', '?')}) x {dev.get('count', '?')}"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    if run.grid is not None:
        _print_cells(run)


def _print_cells(run) -> None:
    """One row per grid cell: its values, members, success rate with its Wilson interval, median distance."""
    from jaxrnn.training.evaluate import wilson_interval

    names = run.grid.names
    ev = run.evaluation
    header = [*names, "members", "success", "95% Wilson", "median distance"]
    rows = []
    for values, idx in run.cells():
        row = [_fmt(values[n], "g") if isinstance(values[n], float) else str(values[n]) for n in names]
        row.append(str(len(idx)))
        if ev is not None:
            ok = np.asarray(ev.success)[idx] & ~np.asarray(run.ensemble.diverged)[idx]
            lo, hi = wilson_interval(int(ok.sum()), len(idx))
            row += [f"{int(ok.sum())}/{len(idx)}", f"[{lo:.0%}, {hi:.0%}]", _fmt(float(np.median(ev.distance[idx])))]
        else:
            row += ["—", "—", "—"]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def _print_members(rows: list[dict]) -> None:
    """members.csv as a table (grid columns after the seed; empty cells as "-")."""
    fixed = {"member": "d", "seed": "d", "final_loss": ".3g", "mse": ".3g", "distance": ".3f", "accuracy": ".3f",
             "success": "", "stop_epoch": "d", "diverged": "", "diverged_epoch": "d"}  # fmt: skip
    cols = [(c, fixed.get(c, "")) for c in (rows[0] if rows else fixed)]

    def cell(v, spec):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if v is None:
            return "-"
        return _fmt(v, spec) if spec else str(v)

    table = [[cell(r[c], spec) for c, spec in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, (c, _) in enumerate(cols)]
    print("  ".join(c.rjust(w) for (c, _), w in zip(cols, widths, strict=True)))
    for t in table:
        print("  ".join(v.rjust(w) for v, w in zip(t, widths, strict=True)))


def _cmd_evaluate(args) -> int:
    from jaxrnn import runs
    from jaxrnn.runs import store

    runs.check_evaluate(args.run_dir, args.trials)  # from config.json, before the run's arrays are loaded
    # the stored evaluation is not read: this command rewrites it, also when it is damaged or outdated
    run = runs.evaluate_run(store.load_run(args.run_dir, evaluation=False), args.trials, args.success_at)
    _print_summary(run)
    return 0


def _imported(meta: dict) -> str | None:
    """ "imported from FILE (Keras VERSION, optimizer ...)" for a run written by `import-keras`, else None."""
    extra = meta.get("extra") or {}
    files = extra.get("imported_from")
    if not files:
        return None
    where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
    opt = extra.get("optimizer") or {}
    opt_words = ", ".join(f"{k} {v}" for k, v in opt.items() if k != "class_name" and isinstance(v, (int, float)))
    opt_text = f"{opt.get('class_name', 'optimizer')} {opt_words}".strip() if opt else "optimizer not recorded"
    return f"imported from {where} (Keras {extra.get('keras_version') or '?'}; {opt_text}); not trained by jaxrnn"


def _per_member(v) -> str:
    return f"per member ({len(v)} values)" if isinstance(v, list) else str(v)


def _print_facts(meta: dict, run_dir) -> None:
    """config.json in words: task, network, training (or where an imported run came from), members, grid, versions,
    device, command."""
    c = meta["config"]
    hp = meta.get("hparams") or {}
    task = c["task"]
    params = ", ".join(f"{k}={v}" for k, v in task.get("params", {}).items())
    net = [f"N={c['units']}", f"cell {c.get('cell', 'rnn')}", f"{_per_member(hp.get('init', c['init']))} init"]
    net += [f"a={c['alpha']}"] if c.get("alpha", 1.0) != 1.0 else []
    net += ["RNN bias"] if c.get("bias") else []
    net += [f"Dale's law (E fraction {_per_member(hp.get('e_fraction', c['e_fraction']))})"] if c.get("dale") else []
    net += [f"sparsity {c['sparsity']}"] if c.get("sparsity") else []
    net += [f"gain {_per_member(hp['gain'])}"] if "gain" in hp and hp["gain"] != 1.0 else []
    imported = _imported(meta)
    if imported:
        training = imported
    else:
        data = (
            "fresh trials every update"
            if c["protocol"] == "online"
            else ("one set shared by all members" if c.get("shared_data") else "own set per member")
            + ", reshuffled each epoch"
        )
        training = (
            f"{c['epochs']} epochs x {c['n_train']} trials ({c['protocol']} protocol: {data}), "
            f"batch {c['batch_size']}, Adam lr {_per_member(hp.get('lr', '?'))} (decay {c['decay']}), "
            f"early stop at loss < {_per_member(hp.get('threshold', c['threshold']))}"
            + (f", clip {c['clip_norm']}" if c.get("clip_norm") else "")
        )
    members = meta.get("members")
    if isinstance(members, dict) and {"start", "stop"} <= members.keys():  # a contiguous range of member ids
        E = f"{members['stop'] - members['start']} (ids {members['start']}..{members['stop'] - 1})"
    else:
        E = str(len(members)) if isinstance(members, list) else "?"
    lines = [
        ("run", str(run_dir)),
        ("task", f"{task['name']} ({params})"),
        ("network", ", ".join(net)),
        ("training", training),
        ("members", f"{E}, seed {meta.get('seed')}"),
    ]
    if meta.get("grid"):
        axes = "; ".join(f"{name} = {', '.join(map(str, values))}" for name, values in meta["grid"]["axes"])
        lines.append(("grid", f"{axes} ({meta['grid']['repeats']} members per cell, cell-major)"))
    versions = meta.get("versions") or {}
    lines.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"))
    dev = meta.get("device") or {}
    lines.append(("device", f"{dev.get('kind', '?')} ({dev.get('platform', '?')}) x {dev.get('count', '?')}"))
    lines.append(("command", " ".join(meta.get("argv") or ["(not recorded)"])))
    lines.append(("written", str(meta.get("written", "?"))))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")


def _cmd_show(args) -> int:
    from jaxrnn.runs import store

    meta = store.load_meta(args.run_dir)
    _print_facts(meta, args.run_dir)
    if not meta.get("complete"):
        print(f"unfinished run: {store.unfinished_state(args.run_dir)}")
        return 0
    run = store.load_run(args.run_dir)
    print()
    _print_members(_rows(run))
    print()
    _print_summary(run)
    if run.evaluation is None:
        print(
            f"no evaluation under today's success rule (none stored, or one scored by an earlier rule): "
            f"`jaxrnn evaluate {args.run_dir}` scores it"
        )
    return 0


def _one_per_condition(condition, k: int):
    """Indices of k trials: the first of each condition in turn (so AND shows 11), then the rest in order."""
    first = [int(np.flatnonzero(condition == c)[0]) for c in np.unique(condition)]
    rest = [i for i in range(len(condition)) if i not in set(first)]
    return np.array((sorted(first) + rest)[:k])


def _member_trials(run, i: int, k: int):
    """The `k` trials `jaxrnn plot` draws for the member at position `i` of `run`, and its outputs on them.

    The trials are held-out trials (`evaluate.heldout_trials`, the keys of the run's evaluation seed) sampled
    with that member's own task params when the run varies them per member (a grid over delay, say), else with the
    task's; of a pool of max(64, k), the first of each condition comes first (`_one_per_condition`). The member's
    trained network (its own parameters; the forward pass is the run's) is run on them.

    Returns:
        (trials, outputs): a `jaxrnn.tasks.Trial` of host arrays with the trial axis first (K = k), and the member's
        outputs (k, T, n_out).
    """
    import jax

    from jaxrnn.cells.network import outputs
    from jaxrnn.training.evaluate import heldout_trials
    from jaxrnn.training.train import resolve

    task, n, seed = run.config.task, max(64, k), int(run.evaluation_settings.get("seed", 0))
    if run.hparams.task:
        params = resolve(run.config, run.hparams, len(run.members)).task
        pool = heldout_trials(task, n, seed, {name: v[i : i + 1] for name, v in params.items()})
        pool = jax.tree.map(lambda x: x[0], pool)
    else:
        pool = heldout_trials(task, n, seed)
    pick = _one_per_condition(np.asarray(pool.condition), k)
    trials = jax.tree.map(lambda x: np.asarray(x)[pick], pool)
    net = jax.tree.map(lambda x: np.asarray(x)[i], run.ensemble.params_final)
    out = jax.vmap(outputs, in_axes=(None, 0, None))(net, trials.inputs, run.config.net)
    return trials, np.asarray(out)


def _cmd_plot(args) -> int:
    from jaxrnn import runs
    from jaxrnn.cells.network import require_rate_rnn
    from jaxrnn.plots import run as plots
    from jaxrnn.runs import store

    run = store.load_run(args.run_dir)
    budget.check_plot(run, args.trials)  # before any trial is made or drawn
    require_rate_rnn(run.config.net, "`jaxrnn plot` (eigenvalues and W_rec figures)")
    fig_dir = runs.check_dir_out(Path(args.run_dir) / store.FIGURES, "figures")
    if run.evaluation is None:
        run = runs.evaluate_run(run, 64)
    init, final, ens = run.effective("init"), run.effective("final"), run.ensemble
    cfg, task = run.config, run.config.task
    dist = np.asarray(run.evaluation.distance, float)
    finite = np.all(np.isfinite(final["W_rec"]), axis=(1, 2)) & ~ens.diverged
    score = np.where(finite & np.isfinite(dist), dist, np.nan)
    has = np.isfinite(score)
    best = int(np.nanargmin(score)) if has.any() else 0
    worst = int(np.nanargmax(score)) if has.any() else 0
    grid, m = run.grid, run.members

    def cell(i: int) -> str:
        """The grid cell of the member at position i in words ("" without a grid)."""
        return plots.cell_label(grid.cell_values(int(grid.cell_of(m[i])))) if grid else ""

    def who(i: int, *more: str) -> str:
        """A member's id with its grid cell and `more` in words, e.g. "member 5 (delay = 60, d=0.12)"."""
        words = [w for w in (cell(i), *more) if w]
        return f"member {m[i]}" + (f" ({', '.join(words)})" if words else "")

    panels = []  # (member position, its trials, {legend name: its outputs}); members on equal trials share one
    for rank, i in (("best", best), ("worst", worst)):
        trials, out = _member_trials(run, i, args.trials)
        label = f"{rank} {who(i, f'd={score[i]:.2f}')}"
        same = [p for p in panels if all(np.array_equal(x, y) for x, y in zip(p[1], trials, strict=True))]
        if same:
            same[0][2][label] = out
        else:
            panels.append((i, trials, {label: out}))
    imported = _imported(run.meta)
    name = f"{task.name}, E={len(run.members)}, N={cfg.units}, {run.value('init')}" + (
        ", imported from Keras" if imported else ""
    )
    cells = [(plots.cell_label(values), positions) for values, positions in run.cells()] if grid else None
    if imported:  # no loss history: the networks were trained elsewhere
        print(f"no loss.png: {imported}")
    else:
        print(plots.loss_curves(ens.loss, ens.stop_epoch, ens.diverged, fig_dir / "loss.png", name, cells=cells))
    paths = [
        plots.trial_panels(
            [
                plots.TrialPanel(
                    trials.inputs,
                    trials.targets,
                    outputs=out,
                    labels=[task.conditions[int(c)] for c in trials.condition],
                    heading=cell(i) if len(panels) > 1 else "",
                )
                for i, trials, out in panels
            ],
            fig_dir / "trials_best_worst.png",
            title=name,
        ),
        plots.eigenvalues(init["W_rec"], final["W_rec"], fig_dir / "eigenvalues.png", name),
        plots.weight_matrix(init["W_rec"][best], final["W_rec"][best], fig_dir / "W_rec.png", f"{name}, {who(best)}"),
        plots.weight_histogram(init["W_rec"], final["W_rec"], fig_dir / "weights_hist.png", name),
    ]
    for p in paths:
        print(p)
    return 0


def _cmd_sample(args) -> int:
    out = Path(args.out)
    task = _make_task(args.task, args.param)
    _check_file_out(out)
    if args.plot:
        _check_file_out(Path(args.plot), "--plot")
    budget.check_sample(task, args.trials, out)  # before any key is made

    import jax

    from jaxrnn.runs import store

    keys = jax.random.split(jax.random.key(args.seed), args.trials)
    trials = jax.jit(jax.vmap(task.sample))(keys)
    arrays = {k: np.asarray(v) for k, v in trials._asdict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(out, lambda f: np.savez(f, **arrays))
    print(
        f"{out}: {args.trials} trials of {task.name} (inputs {arrays['inputs'].shape}, "
        f"targets {arrays['targets'].shape}, mask, condition, response)"
    )
    if args.plot:
        from jaxrnn.plots import run as plots

        k = min(args.trials, 4)
        labels = [task.conditions[int(c)] for c in arrays["condition"][:k]]
        inputs, targets = arrays["inputs"][:k], arrays["targets"][:k]
        names = getattr(task, "input_names", None)  # the task's own channel names, if it has them
        print(plots.trials(inputs, targets, args.plot, labels=labels, title=task.name, input_names=names))
    return 0


def _cmd_study(args) -> int:
    from jaxrnn.studies import STUDIES, check_study, run_study

    if args.name not in STUDIES:
        raise ValueError(f"unknown study {args.name!r}; allowed: {', '.join(STUDIES)}")
    options = {k: getattr(args, k) for k in ("dale", "e_fraction", "sparsity", "cell")}
    options = {k: v for k, v in options.items() if v is not None}
    if options:  # validate before anything trains (NetConfig names the bad field)
        from jaxrnn.cells.network import NetConfig

        NetConfig(n_in=1, n_out=1, units=50, **{k: v for k, v in options.items()})
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None
    check_study(STUDIES[args.name], args.scale, args.members, tasks, options, run=args.run)  # before writing
    sharding = _shards(args)
    if sharding is not None:  # every ensemble of the study is trained as shards (`Context.train`)
        from jaxrnn.runs import shards

        E = args.members or STUDIES[args.name].scales[args.scale].members
        shards.split(E, sharding.count)  # K <= the members per condition, the smallest ensemble
        shards.check_executor(sharding)
    try:
        out = run_study(
            STUDIES[args.name],
            scale=args.scale,
            members=args.members,
            out=args.out,
            run=args.run,
            options=options,
            command=" ".join(["jaxrnn", *args.argv]),
            progress=not args.no_progress,
            tasks=tasks,
            overwrite=args.overwrite,
            shards=sharding,
        )
    except KeyboardInterrupt:
        if sharding is None:
            raise
        print(f"{_PROG}: interrupted while waiting; the shards' jobs go on (rerun the same command once they are "
              "done: it merges them and goes on)", file=sys.stderr)  # fmt: skip
        return 130
    except ValueError as e:
        if sharding is None or not isinstance(e, shards.ShardsIncomplete):
            raise
        print(f"{_PROG}: error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def _cmd_import_keras(args) -> int:
    from jaxrnn import runs
    from jaxrnn.interop.keras import import_keras

    params = parse_params(args.task, args.param)  # an unknown task is refused here
    _make_task(args.task, args.param)  # validates the values too
    for f in list(args.files) + list(args.initial or []):
        if not Path(f).is_file():
            raise ValueError(f"{f}: no such file")
    out = runs.check_dir_out(Path(args.out))
    if not args.overwrite and runs.holds_files(out):
        raise ValueError(f"--out {out}: not empty; give --overwrite to replace it (or another --out)")
    run = import_keras(
        args.files,
        task=args.task,
        out=out,
        initial=args.initial,
        params=params,
        command=["jaxrnn", *args.argv],
        overwrite=args.overwrite,
    )
    _print_summary(run)
    return 0


# ----------------------------------------------------------------------------------------------------------------
# The parser.


def _add_param(p) -> None:
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a task parameter (repeatable), e.g. --param T=100; see `jaxrnn tasks`",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `jaxrnn` command (subcommands tasks, train, sample, evaluate, show, plot, study,
    import-keras)."""
    parser = _Parser(
        prog=_PROG,
        description="Train ensembles of recurrent neural networks on neuroscience tasks as one compiled JAX program.",
        epilog="Run `jaxrnn COMMAND --help` for a command's options. Errors exit with status 2.",
    )
    from jaxrnn._version import __version__

    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "tasks",
        help="list the tasks, their parameters and defaults",
        description="List every task (or only NAME) with its inputs/outputs, conditions, parameters and defaults.",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="only this task (a name or MODULE:CLASS)")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser(
        "train",
        help="train an ensemble and write a run directory",
        description="Train E networks on TASK as one jit(vmap) program and write RUN_DIR (config.json, params.npz, "
        "history.npz, members.csv). A checkpoint is written every --checkpoint-every epochs; rerunning the same "
        "command on an unfinished RUN_DIR resumes it. Options left out take the task's paper preset.",
    )
    p.add_argument("task", metavar="TASK", help="task name (see `jaxrnn tasks`) or MODULE:CLASS (your own Task)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (or resume)")
    p.add_argument(
        "--members",
        type=_positive_int,
        default=16,
        metavar="E",
        help="ensemble size (default 16); with --grid, members per grid cell",
    )
    p.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        default=[],
        help="train a grid as one ensemble (repeatable; the cartesian product of the axes, --members per cell, "
        "member i in cell i // members, cells in the order of the axes with the last varying fastest). NAME: a "
        f"training number ({', '.join(n.replace('_', '-') for n in spec.NUMBERS)}) or a "
        "task parameter that keeps the shapes (e.g. delay, noise; see `jaxrnn tasks`)",
    )
    p.add_argument("--units", type=_positive_int, metavar="N", help="recurrent units (default: paper preset, 50)")
    p.add_argument(
        "--init",
        type=_training_number("init"),
        metavar="|".join(spec.INITS),
        action=_Given,
        default="orthogonal",
        help="recurrent initializer (default orthogonal)",
    )
    p.add_argument(
        "--gain", type=_training_number("gain"), action=_Given, default=1.0, help="recurrent init gain g (default 1)"
    )
    p.add_argument(
        "--protocol",
        choices=("paper", "online"),
        default="paper",
        help="paper: fixed training set, shuffled per epoch; online: fresh trials per update",
    )
    p.add_argument("--epochs", type=_positive_int, default=20, help="epochs (default 20)")
    p.add_argument("--batch-size", type=_positive_int, metavar="B", help="batch size (default: preset, 64)")
    p.add_argument("--n-train", type=_positive_int, metavar="n", help="training trials per epoch (default: preset)")
    p.add_argument(
        "--lr", type=_training_number("lr"), action=_Given, default=1e-4, help="Adam learning rate (default 1e-4)"
    )
    p.add_argument(
        "--decay",
        type=_nonnegative_float,
        default=1e-4,
        help="Keras legacy lr decay: lr / (1 + decay * updates) (default 1e-4)",
    )
    p.add_argument("--clip-norm", type=_positive_float, help="clip gradients to this global norm (default off)")
    p.add_argument(
        "--threshold",
        type=_training_number("threshold"),
        action=_Given,
        help="per-member early-stop loss threshold (default: the task's; 0 = never stop)",
    )
    p.add_argument(
        "--bias", action=argparse.BooleanOptionalAction, default=None, help="RNN bias (default: preset; on for not)"
    )
    p.add_argument("--alpha", type=_positive_float, default=1.0, help="dt/tau in (0, 1] (default 1 = Keras)")
    p.add_argument("--activation", default="tanh", help="tanh | relu | softplus | sigmoid (default tanh)")
    _add_network_options(p)
    p.add_argument("--train-h0", action="store_true", help="train the initial state h0 (default: fixed at 0)")
    p.add_argument(
        "--rec-noise",
        type=_training_number("rec_noise"),
        action=_Given,
        default=0.0,
        metavar="SIGMA",
        help="recurrent noise during training, std sqrt(2/alpha)·SIGMA per step (Song et al. 2016; default 0)",
    )
    p.add_argument(
        "--in-noise",
        type=_training_number("in_noise"),
        action=_Given,
        default=0.0,
        metavar="SIGMA",
        help="extra input noise during training, std sqrt(2/alpha)·SIGMA per step (default 0)",
    )
    p.add_argument(
        "--l2-weights",
        type=_training_number("l2_weights"),
        action=_Given,
        default=0.0,
        help="L2 penalty on W_in, W_rec (effective), W_out",
    )
    p.add_argument(
        "--l2-rates",
        type=_training_number("l2_rates"),
        action=_Given,
        default=0.0,
        help="L2 penalty on the mean squared rate",
    )
    p.add_argument("--shared-data", action="store_true", help="all members train on one training set (original)")
    p.add_argument("--data-seed", type=_nonnegative_int, default=0, help="seed of the shared training set")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="root seed; member i uses fold_in(key(seed), i)")
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=1,
        metavar="K",
        help="write a checkpoint every K epochs (default 1)",
    )
    p.add_argument("--chunk-size", type=_positive_int, help="members per compiled call (default: fit in memory)")
    p.add_argument(
        "--trials", type=_positive_int, default=512, metavar="K", help="held-out evaluation trials (default 512)"
    )
    p.add_argument(
        "--success-at",
        type=_fraction,
        default=0.9,
        help="a member succeeds when finite and this fraction of trials is correct (default 0.9)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run of a different config in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_shard_options(p)
    _add_param(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "sample",
        help="write generated trials of a task to .npz (and a plot)",
        description="Generate K trials of TASK and write inputs (K, T, n_in), targets (K, T, n_out), "
        "mask, condition (K,) and response arrays, trial axis first, to FILE.npz.",
    )
    p.add_argument("task", metavar="TASK", help="task name (see `jaxrnn tasks`) or MODULE:CLASS (your own Task)")
    p.add_argument("--trials", type=_positive_int, default=8, metavar="K", help="number of trials (default 8)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the first few trials")
    _add_param(p)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "evaluate",
        help="re-evaluate a run and rewrite members.csv",
        description="Evaluate every member of RUN_DIR on K held-out trials and rewrite members.csv.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--trials", type=_positive_int, default=512, metavar="K", help="held-out trials (default 512)")
    p.add_argument("--success-at", type=_fraction, default=0.9, help="success criterion (default 0.9)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "show",
        help="print a run's config and member table",
        description="Print the config, versions, device and the member table of RUN_DIR.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "plot",
        help="write the standard figures of a run (PNG)",
        description="Write RUN_DIR/figures/: loss.png, trials_best_worst.png, eigenvalues.png, "
        "W_rec.png, weights_hist.png.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--trials", type=_positive_int, default=4, metavar="K", help="sample trials to draw (default 4)")
    p.set_defaults(func=_cmd_plot)

    from jaxrnn.studies import SCALES, STUDIES

    p = sub.add_parser(
        "study",
        help="run a population study (CSV, PNG, report.md)",
        description="Run a population study and write results/NAME/ (at --scale smoke ./NAME_smoke/; or --out): "
        "CSVs, figures and report.md. "
        "Trained ensembles are kept in run directories under OUT/runs/ and reused (a killed study resumes them "
        "from their checkpoints when rerun). Studies: "
        + "; ".join(f"{name}: {s.summary}" for name, s in STUDIES.items())
        + ".",
    )
    p.add_argument("name", metavar="NAME", help=f"study name ({', '.join(STUDIES)})")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default="smoke",
        help="smoke (seconds, CI), cpu (minutes to an hour on a laptop), paper (the original protocol; GPU), "
        "tutorial (flipflop3 only: the tutorial's own model, a = 1, N = 400; about an hour on a CPU), sweep (lr_delay "
        "only: 8 seeds per cell and 3x the cpu scale's training; about 20 minutes on 2 CPU cores, e.g. as --shards)",
    )
    p.add_argument("--members", type=_positive_int, metavar="E", help="ensemble size per condition")
    p.add_argument(
        "--out", metavar="DIR", help="output directory (default results/NAME; at --scale smoke ./NAME_smoke)"
    )
    p.add_argument(
        "--run", metavar="RUN_DIR", help="analyse this run directory instead of training (lesion, flipflop3)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a report.md in the output folder made at a larger scale, and the study's run directories that "
        "hold another config (e.g. another scale's); refused otherwise",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--tasks", metavar="T1,T2", help="only these tasks of the scale (success_table, spectral_migration)")
    _add_network_options(p, study=True)
    _add_shard_options(p)
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser(
        "merge",
        help="merge the shards of a sharded run into one run directory",
        description="Merge the complete shards OUT/shards/NNN of `jaxrnn train ... --shards K --out OUT` into the run "
        "directory OUT (params, history, evaluation and members.csv in member order), which show, plot, evaluate and "
        "the studies read as one ensemble. A missing, running or failed shard is named with its log's last lines "
        "and nothing is merged (exit 1); shards of a different config are refused.",
    )
    p.add_argument("out", metavar="OUT", help="the --out of the sharded `jaxrnn train`")
    p.add_argument("--wait", action="store_true", help="wait for queued or running shards first (progress bar)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser(
        "import-keras",
        help="import Keras SimpleRNN+Dense HDF5 models as a run directory",
        description="Read trained Keras SimpleRNN + Dense models (one member per FILE) with h5py and "
        "write a run directory, so they can be evaluated, shown, plotted and studied.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="trained models (.hdf5/.h5/.keras)")
    p.add_argument("--task", required=True, help="the task they were trained on (a name or MODULE:CLASS)")
    p.add_argument("--initial", nargs="+", metavar="FILE0", help="the matching initial models, same order")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what RUN_DIR holds (the old run stays until the import is complete)",
    )
    _add_param(p)
    p.set_defaults(func=_cmd_import_keras)

    p = sub.add_parser(
        "bench",
        help="run a throughput benchmark (benchmarks/NAME.py of a checkout)",
        description="Run benchmarks/NAME.py (ensemble_scaling, units_scaling, length_scaling, baselines, train_cli, "
        "trainer_setup, accelerator, grid_sweep); it writes results/benchmarks/NAME.{csv,md,png} of the checkout, or "
        "with --smoke the current directory (or --out DIR). Options after NAME go to the script, e.g. --smoke.",
    )
    p.add_argument("name", metavar="NAME", help="benchmark name")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of the benchmark script")
    p.set_defaults(func=_cmd_bench)
    return parser


def _cmd_bench(args) -> int:
    import importlib.util

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    names = sorted(f.stem for f in folder.glob("*.py") if not f.stem.startswith("_")) if folder.is_dir() else []
    if args.name not in names:
        where = f"allowed: {', '.join(names)}" if names else f"no benchmarks found in {folder} (run from a checkout)"
        raise ValueError(f"unknown benchmark {args.name!r}; {where}")
    spec = importlib.util.spec_from_file_location(f"_jaxrnn_bench_{args.name}", folder / f"{args.name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(list(args.bench_args)) or 0)


def _configure_platform() -> None:
    """CPU defaults (threads, host devices) before JAX is imported, unless the user set XLA_FLAGS."""
    if "XLA_FLAGS" in os.environ:
        return
    try:
        from jaxrnn import _platform
    except ImportError:
        return
    configure = getattr(_platform, "configure", None)
    if configure is not None:
        configure()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxrnn` console script; returns the exit status."""
    _configure_platform()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in run directories and study reports
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # StoreError and KerasError are ValueErrors
        msg = " ".join(str(e).split())
        print(f"{_PROG}: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `jaxrnn tasks | head`: the reader has gone, nothing to report
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"{_PROG}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        return 130


#: Seconds the main thread has, after Ctrl-C, to end by itself before the watchdog ends the process.
_INTERRUPT_GRACE = 2.0
_INTERRUPTED = f"{_PROG}: interrupted (a `train` run resumes from its last checkpoint when rerun)"


def _interrupt_watchdog() -> None:
    """End the process with status 130 shortly after Ctrl-C even while the main thread is inside a long call that
    does not return to Python (an XLA compilation): Python runs its SIGINT handler only between bytecodes, so the
    signal is also written to a wakeup pipe (`signal.set_wakeup_fd`) that a daemon thread watches. It also ends a
    process whose KeyboardInterrupt Python swallowed (raised inside a callback such as JAX's gc callback, where
    Python prints "Exception ignored" and goes on)."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)

    def watch():
        while True:
            if signal.SIGINT in os.read(read, 64):
                time.sleep(_INTERRUPT_GRACE)  # the main thread's KeyboardInterrupt normally ends it before this
                # on a line of its own: a progress bar may still be on the current one (this path closes nothing)
                print("\n" + _INTERRUPTED, file=sys.stderr, flush=True)
                os._exit(130)

    threading.Thread(target=watch, name="jaxrnn-interrupt", daemon=True).start()


def entry() -> None:
    """The `jaxrnn` console script: `main`, then exit with its status. After Ctrl-C (status 130) the process ends
    without Python's interpreter teardown, which can crash (SIGSEGV) while XLA's threads still run a computation or a
    compilation that the interrupt left behind; every file jaxrnn writes is complete or absent at any moment (atomic
    writes), and the kernel releases the run directory's lock."""
    _interrupt_watchdog()
    try:
        code = main()
    except KeyboardInterrupt:  # before main's own handler is reached (imports, parsing)
        print(_INTERRUPTED, file=sys.stderr)
        code = 130
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()


__all__ = ["build_parser", "entry", "main", "parse_params"]
