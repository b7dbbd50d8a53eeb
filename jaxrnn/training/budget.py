"""Memory, disk and file-size estimates of every command, checked before anything is compiled, allocated or written.

Every command that builds arrays (`train`, `evaluate`, `sample`, `plot`, `study`, and `jaxrnn.runs.train_run` /
`jaxrnn.fit` from Python) first asks this module whether its arrays fit, and refuses with a one-line ValueError that
gives the estimate, what is available and the option to change, instead of hanging in a host transfer, dying in
numpy or aborting inside XLA. The estimates count the arrays the code holds, in bytes (float32 = 4 bytes), with
P = `param_count(config)` parameters per member, N units, T steps, B trials per batch, K evaluation trials, E members
and C members per compiled call (the chunk: `--chunk-size`, or the trainer's `train.default_chunk`, rounded up
to a multiple of the local devices, and padded to C when E < C):

* training, host: E · (10 P + epochs) · 4 + E · 1 kB. The initial parameters (P), the state (parameters and Adam's
  two moments, 3 P), and while a call's chunks are gathered the chunks and their concatenation (6 P); the loss
  history; keys, per-member numbers, metrics and members.csv's rows as Python objects (`HOST_PER_MEMBER`).
* training, device: the largest of three phases. Initialisation, every member at once: E · 3 P · 4. A compiled call,
  per member of a chunk: C · (8 P · 4 + k · B·T·N · 4 + B·T·(n_in + 3 n_out) · 4 + 20 · n_train), i.e. the state passed
  in and the one returned (3 P each; the call does not donate its inputs), the gradient and the update (P each); the
  hidden states a step holds (k = 2 for the rate RNN's hand-written backward pass, 20 for a GRU, 26 for an LSTM:
  `TRAIN_STATE_COPIES`, measured); the batch of trials (inputs, targets, mask and response); the keys of the training
  set and their shuffle. The evaluation, below.
* evaluation, device: E · P · 4 + min(E, 16) · K·T·(c · N + n_in + 4 n_out) · 4. Every member's parameters, and for the
  16 members evaluated at once (`evaluate`'s batch) their hidden states (c = 3 for the rate RNN, 7 for a GRU, 9
  for an LSTM: `EVAL_STATE_COPIES`, measured), outputs and trials.
* sample: K · (T·(n_in + 3 n_out) · 4 + 16) on the device, the same again as numpy arrays, and in the .npz file.
* plot: the run's arrays on the host; max(64, K) · T·(n_in + 3 n_out) · 4 + 2 K·T·(c · N + n_out) · 4 on the device (the
  pool of trials drawn from, the hidden states and outputs of the best and the worst member), or an evaluation on 64
  trials when the run has none stored.
* disk, a run directory: E · ((2 P + 2 (3 P + epochs + 3) + epochs + 3) · 4 + 400) + config.json, i.e. params.npz,
  checkpoint.npz twice (the new one is written beside the old one), history.npz, evaluation.npz and members.csv.

On a CPU host and device are the same memory and the sum is compared with what the operating system can still give
(`host_memory`: /proc/meminfo's MemAvailable, or free pages from os.sysconf, and a cgroup limit when lower); on an
accelerator the host part is compared with that and the device part with the first device's free memory
(`device_memory`: bytes_limit - bytes_in_use, asked only where JAX is already imported, before anything compiles).
A command is refused when its estimate times `SAFETY` (1.5) exceeds what is available: the estimates leave out XLA's
temporaries and compiled programs, the allocator's slack and whatever else the machine starts meanwhile. Disk is
checked the same way against the free space of the output's file system (plus what the run directory already holds,
which the new files replace).

Besides memory, sizes that cannot work are refused outright: member ids at or above 2**32 (member keys fold the id in
as a uint32, so member 2**32 would repeat member 0), a config.json above `MAX_CONFIG_BYTES` (per-member values, e.g.
of a grid, are written there one per line; a contiguous range of member ids is stored as {"start", "stop"}), and a
figure of more than `MAX_PLOT_TRIALS` trials (one row each).

This module imports no JAX at import time; the checks import `train` (and so JAX) only to find the trainer's
default chunk and the devices. It imports nothing above `jaxrnn.training`: the checks that need a run directory's
config.json or a study's ensembles live with those, `jaxrnn.runs.check_evaluate` and `jaxrnn.studies.base.check_study`
(built on `check_run` and `train_verdict` here).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: A command is refused when its estimate times this exceeds what is available (module docstring).
SAFETY = 1.5
#: Bytes of one float32 (every parameter, state and trial array).
FLOAT = 4
#: Members evaluated at once (`jaxrnn.training.evaluate.evaluate`'s `batch`).
EVAL_BATCH = 16
#: Copies of the hidden states (B, T, N) one member's training step holds, by cell: XLA's memory analysis of the
#: compiled training call (CPU, jax 0.10.2, N = 50 and 100, B = 64, T = 200) measured 1.2 (the rate RNN's hand-written
#: backward pass, as `jaxrnn.training.train.member_bytes` notes), 19.1 (GRU) and 25.1 (LSTM), rounded up.
TRAIN_STATE_COPIES = {"rnn": 2, "gru": 20, "lstm": 26}
#: Copies of the hidden states (K, T, N) one member's evaluation holds, by cell: measured 3.0, 7.0 and 9.0 the same
#: way (`jaxrnn.training.evaluate`'s compiled metrics, 16 members, K = 256 and 512).
EVAL_STATE_COPIES = {"rnn": 3, "gru": 7, "lstm": 9}
#: Host bytes per member besides its arrays: keys, per-member numbers, metrics and members.csv's rows as Python objects.
HOST_PER_MEMBER = 1024
#: Bytes per training trial of a member's training set: its key (8), its place in the shuffle (4) and the reordered key
#: (8).
KEY_BYTES_PER_TRIAL = 20
#: Member ids must lie below this: a member's key is `fold_in(key(seed), id)` with the id as a uint32.
MAX_MEMBER_ID = 2**32
#: The largest config.json a run may write (it is read whole by every command that opens the run, and by a study
#: looking for runs to reuse).
MAX_CONFIG_BYTES = 16 * 2**20
#: config.json without per-member values (config, versions, command line), a generous bound.
CONFIG_BASE_BYTES = 64 * 2**10
#: Bytes of one per-member value in config.json, written one per line (indented, with its comma and newline).
JSON_VALUE_BYTES = 32
#: The most trials a run's trial figure draws (one 1.8-inch row each; matplotlib refuses images taller than 2**16
#: pixels, about 330 rows at the figures' 110 dpi).
MAX_PLOT_TRIALS = 256
#: Trials `jaxrnn plot` evaluates a run on when it has no stored evaluation.
PLOT_EVAL_TRIALS = 64


class Estimate(NamedTuple):
    """Bytes a command needs.

    Attributes:
        host: numpy arrays and Python objects in the process's memory.
        device: JAX buffers on the busiest device (on a CPU the same memory as `host`).
        disk: bytes written to the output's file system.
        config: bytes of the config.json written (0 when none is).
    """

    host: int
    device: int
    disk: int = 0
    config: int = 0


class Available(NamedTuple):
    """What the machine offers (None: unknown, not checked).

    Attributes:
        host: bytes of memory the process can still allocate. host_source: where that number comes from.
        platform: "cpu" (host and device arrays share `host`) or the accelerator's platform (e.g. "gpu"). device:
            free bytes of the first device of an accelerator (None on a CPU, or when the device does not say).
            devices: local devices, over which a chunk's members are sharded (each with its own memory on an
            accelerator).
        disk: free bytes of the output's file system (None without an output path).
    """

    host: int | None
    host_source: str
    platform: str
    device: int | None
    devices: int
    disk: int | None


# ----------------------------------------------------------------------------------------------------------------
# What the machine offers.


def host_memory() -> tuple[int | None, str]:
    """Bytes of memory this process can still allocate, and where the number comes from: /proc/meminfo's
    MemAvailable (Linux), else the free pages of os.sysconf; lowered to a cgroup's limit minus its usage when that is
    smaller (a container). (None, "") when neither is known."""
    avail, source = None, ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail, source = int(line.split()[1]) * 1024, "MemAvailable"
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail, source = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free pages"
        except (ValueError, OSError, AttributeError):
            pass
    limited = _cgroup_free()
    if limited is not None and (avail is None or limited < avail):
        avail, source = limited, "cgroup memory limit"
    return avail, source


def _cgroup_free() -> int | None:
    """A cgroup's memory limit minus its usage (reclaimable file cache counted as free), or None without a limit."""
    for limit_file, usage_file, stat_file, cache_key in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "inactive_file"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            "total_inactive_file",
        ),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max" or int(limit_text) >= 2**60:
                return None
            free = int(limit_text) - int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            for line in Path(stat_file).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == cache_key:
                    free += int(value)
        except (OSError, ValueError):
            pass
        return max(free, 0)
    return None


def device_memory() -> tuple[str, int | None, int]:
    """(platform, free bytes of the first local device, local device count) where JAX is already imported: on an
    accelerator its `memory_stats()` bytes_limit - bytes_in_use; on a CPU (or without memory stats) None, and
    ("cpu", None, 1) when JAX is not imported. Starts JAX's backend if needed; compiles nothing."""
    if "jax" not in sys.modules:
        return "cpu", None, 1
    import jax

    try:
        devices = jax.local_devices()
        platform = devices[0].platform
        stats = devices[0].memory_stats() if platform != "cpu" else None
    except (RuntimeError, AttributeError, IndexError):
        return "cpu", None, 1
    free = None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return platform, free, len(devices)


def disk_free(path: str | Path | None) -> int | None:
    """Free bytes of the file system `path` will be written to (its first existing parent), plus the bytes of the
    files `path` already holds when it is a folder (a run directory's files are replaced); None without a path."""
    if path is None:
        return None
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return None
    try:
        free = shutil.disk_usage(existing if existing.is_dir() else existing.parent).free
    except OSError:
        return None
    if path.is_dir():
        try:
            free += sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        except OSError:
            pass
    elif path.is_file():
        free += path.stat().st_size
    return free


def available(path: str | Path | None = None) -> Available:
    """What the machine offers now (`host_memory`, `device_memory`, `disk_free` of `path`); the one place the checks
    ask, so tests can fake a machine by replacing it."""
    host, source = host_memory()
    platform, device, devices = device_memory()
    return Available(host, source, platform, device, devices, disk_free(path))


# ----------------------------------------------------------------------------------------------------------------
# Estimates (pure arithmetic on the sizes).


def param_count(config) -> int:
    """Parameters of one member (all of `jaxrnn.init_params`'s arrays, the fixed mask and signs included) of
    a TrainConfig (or anything with `units`, `task.n_in`, `task.n_out`, `cell`, `rate_rnn`, `bias`, `train_h0`,
    `sparsity`, `dale`)."""
    N, n_in, n_out = int(config.units), int(config.task.n_in), int(config.task.n_out)
    if not config.rate_rnn:
        # Flax's GRUCell / LSTMCell; 2N: the GRU's 4th bias and h0, the LSTM's (c, h)
        gates = {"gru": 3, "lstm": 4}[cell_kind(config)]
        return gates * N * (n_in + N + 1) + 2 * N + n_out * N + n_out
    count = N * n_in + N * N + n_out * N + n_out
    count += N * (bool(config.bias) + bool(config.train_h0) + bool(config.dale))
    count += N * N * (config.sparsity > 0)
    return count


def cell_kind(config) -> str:
    """The key of `TRAIN_STATE_COPIES` / `EVAL_STATE_COPIES` for a config's cell: "rnn", "gru" or "lstm" as named; a
    Flax cell instance or "MODULE:ATTR" as "gru" when its class name says GRU, else "lstm" (the largest)."""
    cell = config.cell
    if isinstance(cell, str) and cell in TRAIN_STATE_COPIES:
        return cell
    return "gru" if "gru" in (cell if isinstance(cell, str) else type(cell).__name__).lower() else "lstm"


def backward_factor(config) -> int:
    """Copies of the hidden states (B, T, N) one member's training step holds (`TRAIN_STATE_COPIES` of its cell)."""
    return TRAIN_STATE_COPIES[cell_kind(config)]


def _trial_floats(task) -> int:
    """float32 values per step of one trial: inputs, targets, mask and response (int32, the same size)."""
    return int(task.n_in) + 3 * int(task.n_out)


def evaluation_bytes(config, members: int, n_eval: int, batch: int = EVAL_BATCH) -> int:
    """Device bytes of evaluating `members` members on `n_eval` trials (module docstring)."""
    if n_eval <= 0:
        return 0
    task, N = config.task, int(config.units)
    per_trial = int(task.T) * (EVAL_STATE_COPIES[cell_kind(config)] * N + int(task.n_in) + 4 * int(task.n_out)) * FLOAT
    return members * param_count(config) * FLOAT + min(members, batch) * n_eval * per_trial


def run_disk_bytes(config, members: int) -> int:
    """Bytes of a finished run directory's files while it is written (module docstring), config.json left out."""
    P, epochs = param_count(config), int(config.epochs)
    floats = 2 * P + 2 * (3 * P + epochs + 3) + epochs + 3
    return members * (floats * FLOAT + 400)


def config_bytes(members: int, per_member_values: int) -> int:
    """Bytes of config.json with `per_member_values` values per member (e.g. one per grid axis)."""
    return CONFIG_BASE_BYTES + members * per_member_values * JSON_VALUE_BYTES


def train_estimate(
    config,
    members: int,
    chunk: int,
    n_eval: int = 512,
    *,
    shards: int = 1,
    per_member_values: int = 0,
    eval_batch: int = EVAL_BATCH,
) -> Estimate:
    """The bytes of training `members` members of `config` in calls of `chunk` members and evaluating them on
    `n_eval` trials (module docstring).

    Args:
        config: a TrainConfig.
        members: E. chunk: members per compiled call (C, padded when E < C).
        n_eval: held-out evaluation trials (0: no evaluation, as `jaxrnn.fit`).
        shards: devices with their own memory a chunk is split over (1 on a CPU).
        per_member_values: values config.json holds per member (one per grid axis; 0 for a homogeneous run).
    """
    E, P = int(members), param_count(config)
    task, N, B = config.task, int(config.units), int(config.batch_size)
    BTN = B * int(task.T) * N
    host = E * (10 * P * FLOAT + int(config.epochs) * FLOAT + HOST_PER_MEMBER)
    per_member = (
        8 * P * FLOAT
        + backward_factor(config) * BTN * FLOAT
        + B * int(task.T) * _trial_floats(task) * FLOAT
        + KEY_BYTES_PER_TRIAL * int(config.n_train)
    )
    device = max(
        E * 3 * P * FLOAT, math.ceil(chunk / shards) * per_member, evaluation_bytes(config, E, n_eval, eval_batch)
    )
    json_bytes = config_bytes(E, per_member_values)
    return Estimate(host, device, run_disk_bytes(config, E) + json_bytes, json_bytes)


def evaluate_estimate(config, members: int, n_eval: int) -> Estimate:
    """The bytes of `jaxrnn evaluate`: the run's arrays on the host (initial and final parameters, loss) and the
    evaluation on the device (module docstring)."""
    E, P = int(members), param_count(config)
    host = E * (2 * P * FLOAT + int(config.epochs) * FLOAT + HOST_PER_MEMBER)
    return Estimate(host, evaluation_bytes(config, E, n_eval))


def sample_estimate(task, trials: int) -> Estimate:
    """The bytes of `jaxrnn sample`: `trials` trials and their keys on the device, and again as numpy arrays (and the
    .npz file written)."""
    per_trial = int(task.T) * _trial_floats(task) * FLOAT + 16
    size = int(trials) * per_trial
    return Estimate(size, size, size)


def plot_estimate(config, members: int, trials: int, evaluated: bool = True) -> Estimate:
    """The bytes of `jaxrnn plot`: the run's arrays on the host, the pool of trials and the best and worst members'
    hidden states and outputs on the device, and an evaluation on `PLOT_EVAL_TRIALS` trials when the run has none."""
    task, N = config.task, int(config.units)
    T = int(task.T)
    states = EVAL_STATE_COPIES[cell_kind(config)] * N + int(task.n_out)
    drawn = max(PLOT_EVAL_TRIALS, trials) * T * _trial_floats(task) * FLOAT + 2 * trials * T * states * FLOAT
    ev = 0 if evaluated else evaluation_bytes(config, members, PLOT_EVAL_TRIALS)
    return Estimate(evaluate_estimate(config, members, 0).host + drawn, max(drawn, ev))


# ----------------------------------------------------------------------------------------------------------------
# Comparing with what is available.


def size(n: float) -> str:
    """Bytes in words, binary units: "512 B", "1.5 GiB", "3.6e+05 PiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


class Shortfall(NamedTuple):
    """What does not fit: `resource` ("memory" or "disk") and `text`, in words ("about X of memory, but Y is
    available (source; the margin)")."""

    resource: str
    text: str


def shortfall(estimate: Estimate, avail: Available) -> Shortfall | None:
    """What of `estimate` does not fit in `avail` with the `SAFETY` margin, or None when everything fits. On a CPU
    host and device bytes add up in the one memory; on an accelerator each part is compared with its own memory (the
    device part only when the device reports its memory)."""
    margin = f"jaxrnn keeps a {SAFETY:g}x margin"
    if avail.platform == "cpu":
        need = estimate.host + estimate.device
        if avail.host is not None and need * SAFETY > avail.host:
            return Shortfall(
                "memory",
                f"about {size(need)} of memory, but {size(avail.host)} is available ({avail.host_source}; {margin})",
            )
    else:
        if avail.host is not None and estimate.host * SAFETY > avail.host:
            return Shortfall(
                "memory",
                f"about {size(estimate.host)} of host memory, but {size(avail.host)} is available "
                f"({avail.host_source}; {margin})",
            )
        if avail.device is not None and estimate.device * SAFETY > avail.device:
            return Shortfall(
                "memory",
                f"about {size(estimate.device)} of {avail.platform} memory, but {size(avail.device)} is "
                f"free on the device ({margin})",
            )
    if avail.disk is not None and estimate.disk * SAFETY > avail.disk:
        return Shortfall(
            "disk", f"about {size(estimate.disk)} of disk, but {size(avail.disk)} is free there ({margin})"
        )
    return None


def _fits(estimate: Estimate, avail: Available) -> bool:
    return shortfall(estimate, avail) is None


def _members_of(members, grid) -> tuple[int, int, int]:
    """(E, the smallest and the largest member id) of `members` (a count, or ids) or of a grid's members, without
    building the ids of a count."""
    if grid is not None and members is None:
        return int(grid.members), 0, int(grid.members) - 1
    if members is None:
        return 16, 0, 15
    if isinstance(members, (int, np.integer)):
        return int(members), 0, int(members) - 1
    if isinstance(members, range):
        return (len(members), min(members), max(members)) if len(members) else (0, 0, -1)
    ids = np.asarray(members)
    return (int(ids.size), int(ids.min()), int(ids.max())) if ids.size else (0, 0, -1)


def _per_member_values(hparams, grid, members: int) -> int:
    """Values config.json holds per member: one per grid axis, or one per Hparams field (or traced task field) given
    per member."""
    if grid is not None:
        return len(grid.names)
    if hparams is None or members <= 1:
        return 0
    count = 0
    for name, value in hparams._asdict().items():
        values = value.values() if name == "task" and isinstance(value, dict) else [value]
        count += sum(1 for v in values if isinstance(v, (list, tuple, np.ndarray)) and len(v) == members)
    return count


def _chunk(config, members: int, chunk_size: int | None) -> tuple[int, int]:
    """(members per compiled call as `jaxrnn.fit` runs them, local devices): `chunk_size` or the trainer's
    default, rounded up to a multiple of the local devices."""
    import jax

    from jaxrnn.training.train import default_chunk

    n_dev = jax.local_device_count()
    chunk = int(chunk_size) if chunk_size else default_chunk(config, members)
    return int(math.ceil(chunk / n_dev) * n_dev), n_dev


def train_verdict(
    config, members: int, *, chunk_size, n_eval: int, per_member_values: int, avail: Available, members_flag: str
) -> tuple[Estimate, Shortfall | None, str]:
    """(the estimate of training `members` members, what does not fit or None, the option to change): the first of
    fewer evaluation trials, a smaller chunk, fewer members that makes it fit, else what dominates one member."""
    E = members
    chunk, n_dev = _chunk(config, E, chunk_size)
    shards = 1 if avail.platform == "cpu" else n_dev

    def estimate(E=E, chunk=chunk, n_eval=n_eval):
        return train_estimate(config, E, chunk, n_eval, shards=shards, per_member_values=per_member_values)

    est = estimate()
    problem = shortfall(est, avail)
    if problem is None:
        return est, None, ""
    if problem.resource == "disk":
        advice = f"reduce {members_flag} (now {E}) or choose an --out on a file system with more free space"
    elif n_eval > 1 and _fits(estimate(n_eval=1), avail):
        advice = f"reduce --trials (held-out evaluation trials, now {n_eval})"
    elif chunk > n_dev and _fits(estimate(chunk=n_dev), avail):
        advice = f"reduce --chunk-size (members per compiled call, now {chunk})"
    elif E > 1 and _fits(estimate(E=1, chunk=n_dev, n_eval=min(n_eval, 1)), avail):
        advice = f"reduce {members_flag} (now {E})"
    else:
        advice = _per_member_advice(config)
    return est, problem, advice


def _per_member_advice(config) -> str:
    """The option to change when one member alone does not fit: the largest of its parameters (with Adam's moments
    and gradients), hidden states and training keys."""
    P, N, B, T = param_count(config), config.units, config.batch_size, config.task.T
    terms = {
        "params": 8 * P * FLOAT,
        "states": backward_factor(config) * B * T * N * FLOAT,
        "keys": KEY_BYTES_PER_TRIAL * config.n_train,
    }
    largest = max(terms, key=terms.get)
    if largest == "params":
        return f"reduce --units (N = {N}: {size(P * FLOAT)} of parameters per member)"
    if largest == "keys":
        return f"reduce --n-train (now {config.n_train})"
    return f"reduce --batch-size (now {B}), --units (now {N}) or the task's length (--param T=..., now {T})"


def check_train(
    config,
    members: int | Sequence[int] | None = None,
    *,
    grid=None,
    hparams=None,
    chunk_size: int | None = None,
    n_eval: int = 512,
    out: str | Path | None = None,
) -> Estimate:
    """Refuse a training run whose member ids, config.json, memory or run directory cannot work, before anything is
    compiled or written; return its estimate.

    Args:
        config: the TrainConfig. members: E or the member ids (None: 16, or the grid's). grid: a `Grid`
            trained as one ensemble. hparams: the Hparams (values given per member go to config.json).
        chunk_size: members per compiled call (None: the trainer's default). n_eval: held-out evaluation trials (0:
            none, as `jaxrnn.fit`). out: the run directory (its file system's free space is checked; None: no disk
            check).
    Raises:
        ValueError: one line naming the option to change (--members, --trials, --chunk-size, --units, --batch-size,
            --n-train, --out).
    """
    E, low, high = _members_of(members, grid)
    flag = "--members (members per grid cell)" if grid is not None else "--members"
    if low < 0 or high >= MAX_MEMBER_ID:
        raise ValueError(
            f"train: member ids must lie in [0, 2**32 = {MAX_MEMBER_ID}) (a member's key folds its id in as a "
            f"uint32), got ids {low}..{high}; reduce {flag}"
        )
    values = _per_member_values(hparams, grid, E)
    if config_bytes(E, values) > MAX_CONFIG_BYTES:
        raise ValueError(
            f"train: config.json would hold {E * values} per-member values ({values} for each of {E} members, about "
            f"{size(config_bytes(E, values))}, more than the {size(MAX_CONFIG_BYTES)} jaxrnn writes); reduce {flag}"
        )
    avail = available(out)
    est, problem, advice = train_verdict(
        config, E, chunk_size=chunk_size, n_eval=n_eval, per_member_values=values, avail=avail, members_flag=flag
    )
    if problem is not None:
        raise ValueError(f"train: {E} members of N = {config.units} need {problem.text}; {advice}")
    return est


def check_sample(task, trials: int, out: str | Path | None = None) -> Estimate:
    """Refuse `jaxrnn sample` when its trials do not fit in memory or in `out`'s file system, before any key is made;
    return the estimate. Raises ValueError naming --trials."""
    est = sample_estimate(task, trials)
    problem = shortfall(est, available(out))
    if problem is not None:
        where = " or choose an --out on a file system with more free space" if problem.resource == "disk" else ""
        raise ValueError(f"sample: {trials} trials of T = {task.T} need {problem.text}; reduce --trials{where}")
    return est


def check_plot(run, trials: int) -> Estimate:
    """Refuse `jaxrnn plot RUN_DIR --trials K` when K trials cannot be drawn (more than `MAX_PLOT_TRIALS` rows) or do
    not fit in memory; `run` is the loaded `jaxrnn.runs.store.Run`. Raises ValueError naming --trials."""
    if trials > MAX_PLOT_TRIALS:
        raise ValueError(
            f"plot: {trials} trials would be {trials} rows of one figure (at most {MAX_PLOT_TRIALS}); reduce --trials"
        )
    evaluated = run.evaluation is not None

    def estimate(config, members, k):
        return plot_estimate(config, members, k, evaluated)

    return check_run("plot", run.config, len(run.members), estimate, trials)


def check_run(what: str, config, members: int, estimate, trials: int) -> Estimate:
    """Check `estimate(config, members, trials)` of a command on an existing run, with --trials as the advice when
    fewer trials fit."""
    avail = available()
    est = estimate(config, members, trials)
    problem = shortfall(est, avail)
    if problem is None:
        return est
    if trials > 1 and _fits(estimate(config, members, 1), avail):
        advice = f"reduce --trials (now {trials})"
    else:
        advice = "the run itself does not fit this machine's memory"
    raise ValueError(
        f"{what}: {members} members of N = {config.units} on {trials} trials need {problem.text}; {advice}"
    )


__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_MEMBER_ID",
    "MAX_PLOT_TRIALS",
    "SAFETY",
    "Available",
    "Estimate",
    "Shortfall",
    "available",
    "check_plot",
    "check_run",
    "check_sample",
    "check_train",
    "device_memory",
    "disk_free",
    "evaluate_estimate",
    "host_memory",
    "param_count",
    "plot_estimate",
    "sample_estimate",
    "shortfall",
    "train_estimate",
    "train_verdict",
]
