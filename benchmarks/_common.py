"""What every benchmark script shares: the environment record, timing, FLOP counts, outputs.

Each script answers one question (STYLE.md §12): it compiles once, times with `block_until_ready` over repeats,
reports min and median with compile time apart, and writes `results/benchmarks/NAME.{csv,md,png}` with the device,
versions, sizes and the load average of the machine (other work on it makes timings noisy). `--smoke` shrinks
everything to seconds for CI and writes into the current directory instead (or `--out`), never over the checkout's
measurements.

The scripts set the fast CPU defaults (`jaxrnn._platform.configure`) before importing JAX, like the CLI.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "benchmarks"
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from jaxrnn import _platform  # noqa: E402  (jaxrnn/__init__ imports jax but starts no backend)

_platform.configure()

import jax  # noqa: E402
import numpy as np  # noqa: E402

#: The workload of the issue's measurements: one epoch = 1,280 trials in batches of 128, T = 200, full BPTT, fp32.
EPOCH_TRIALS, BATCH = 1280, 128
#: The 2019 paper's epoch: 15,000 trials in batches of 64 (its updates: 15,000 // 64 = 234).
PAPER_TRIALS, PAPER_BATCH, PAPER_EPOCHS = 15_000, 64, 20


def train_module():
    """The module jaxrnn.training.train."""
    return importlib.import_module("jaxrnn.training.train")


class _Parser(argparse.ArgumentParser):
    """argparse whose `--out` defaults to results/benchmarks, or to the current directory with `--smoke`."""

    def parse_args(self, args=None, namespace=None):
        a = super().parse_args(args, namespace)
        if a.out is None:
            a.out = "." if a.smoke else str(RESULTS)
        return a


def parser(name: str, doc: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"benchmarks/{name}.py", description=doc)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (CI); writes into the current directory")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per point (median reported)")
    p.add_argument("--out", help="output folder (default results/benchmarks; with --smoke the current directory)")
    return p


def environment() -> dict:
    """Device, versions, flags and load: written at the top of every report."""
    dev = jax.local_devices()[0]
    return {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "cpu": _platform.cpu_model(),
        "cores": _platform.cores(),
        "local_devices": jax.local_device_count(),
        "jax": jax.__version__,
        "jaxlib": importlib.import_module("jaxlib").__version__,
        "python": platform.python_version(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "tcmalloc": _platform.tcmalloc_loaded(),
        "loadavg_start": tuple(round(x, 2) for x in os.getloadavg()),
    }


def training_flops(units: int, n_in: int, n_out: int, T: int, trials: int) -> float:
    """Matmul FLOPs of one epoch of full BPTT for one network: forward 2·T·N·(N + n_in + n_out) per trial, the
    backward pass twice that (state and weight gradients)."""
    return 3 * 2.0 * T * units * (units + n_in + n_out) * trials


def matmul_ceiling(repeats: int = 5, sizes=(128, 256, 512)) -> float:
    """Best measured matmul rate (FLOP/s) of all local devices together, fp32 square-ish products, one per device."""
    n_dev = jax.local_device_count()
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), ("d",))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d"))
    best = 0.0
    for k in sizes:
        a = jax.device_put(np.random.default_rng(0).normal(size=(n_dev, 8 * k, k)).astype(np.float32), shard)
        b = jax.device_put(np.random.default_rng(1).normal(size=(n_dev, k, k)).astype(np.float32), shard)
        times = time_calls(lambda a=a, b=b: _matmul(a, b), repeats)["times"]
        best = max(best, 2.0 * n_dev * 8 * k * k * k / min(times))
    return best


@jax.jit
def _matmul(a, b):
    return a @ b


def time_calls(fn, repeats: int) -> dict:
    """Call `fn` once (compile + run), then `repeats` times; wall-clock seconds of each, results blocked on."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return {"first": first, "times": times, "median": float(np.median(times)), "min": float(min(times))}


def time_fit(config, members: int, repeats: int, chunk_size: int | None = None, **fit_options) -> dict:
    """Time `train.fit` end to end (task sampling, masks, early stopping, chunking, host transfers included).

    Each repeat trains a fresh ensemble (another seed) for `config.epochs` epochs; `fit_options` go to `fit` (e.g.
    `fast_backward`, `unroll`). `compile` = first call minus the median of the others. Returns seconds: median/min per
    call, and per network.
    """
    tr = train_module()
    seeds = iter(range(10_000))

    def call():
        ens = tr.fit(config, next(seeds), range(members), chunk_size=chunk_size, **fit_options)
        return ens.loss

    res = time_calls(call, repeats)
    res["compile"] = max(0.0, res["first"] - res["median"])
    res["per_network_median"] = res["median"] / members
    res["per_network_min"] = res["min"] / members
    return res


def peak_bytes(config, members: int, chunk_size: int | None = None) -> int:
    """Memory of one compiled training call (arguments + outputs + temporaries, from XLA's memory analysis)."""
    tr = train_module()
    chunk = chunk_size or tr.default_chunk(config, members)
    hp = tr.resolve(config, tr.Hparams(), chunk)
    _, v_run = tr.compiled(config, config.epochs, tr.switches(hp))
    state = tr.init_ensemble(config, 0, range(chunk))
    keys = tr.member_keys(0, np.arange(chunk))
    try:
        m = v_run.lower(state, keys, hp).compile().memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return -1


def loglog_slope(x, y) -> float:
    """Exponent p of y ∝ x^p, least squares in log-log."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def run_worker(script: Path, args: list[str], env: dict | None = None, timeout: float = 3600) -> dict:
    """Run `python script args` in a fresh process (its own XLA flags/threads) and parse its last JSON line."""
    full_env = {**os.environ, **(env or {})}
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
    proc = subprocess.run(
        [sys.executable, str(script), *args], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
    return json.loads(lines[-1])


def write(name: str, out: str | Path, rows: list[dict], env: dict, title: str, body: str, plot=None) -> Path:
    """Write NAME.csv (rows), NAME.md (environment, the table, `body`) and NAME.png (`plot(path)`, if given)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**env, "loadavg_end": tuple(round(x, 2) for x in os.getloadavg())}
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        with open(out / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    lines = [f"# {title}", "", "Environment:", ""]
    lines += [f"- {k}: `{v}`" for k, v in env.items()]
    lines += ["", markdown_table(rows), "", body.strip(), ""]
    (out / f"{name}.md").write_text("\n".join(lines))
    if plot is not None and rows:
        import matplotlib

        matplotlib.use("Agg")
        plot(out / f"{name}.png")
    print("\n".join(lines))
    print(f"wrote {out / name}.{{csv,md{',png' if plot else ''}}}")
    return out


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    fields = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(fields) + " |"
    sep = "|" + "---|" * len(fields)
    body = ["| " + " | ".join(fmt(r.get(k)) for k in fields) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def and_config(units: int = 50, T: int = 200, trials: int = EPOCH_TRIALS, batch: int = BATCH, epochs: int = 1):
    """The benchmark workload: the AND task (paper preset) at length T, never stopping early (threshold 0)."""
    from jaxrnn.tasks import make_task

    if T == 200:
        task = make_task("and")
    elif T >= 100:
        task = make_task("and", T=T)
    else:  # smoke sizes: the events scaled into the short trial
        start = T // 8
        task = make_task("and", T=T, pulse_start=start, response_start=start + 20 + (T - start - 20) // 3)
    return train_module().TrainConfig(task, units=units, epochs=epochs, batch_size=batch, n_train=trials, threshold=0.0)


def size_sweep(name: str, field: str, values, smoke_values, argv=None, doc: str = "") -> list[dict]:
    """Time and memory of training vs one size (`units` or `T`), the other sizes at N = 50, T = 200, E = 8.

    Reports seconds per network per epoch (median, min; compile apart), memory of one compiled call, and the
    exponent p of time ∝ size^p fitted over the sweep.
    """
    p = parser(name, doc.splitlines()[0] if doc else name)
    p.add_argument("--members", type=int, default=None, help="ensemble size E (default 8, smoke 2)")
    a = p.parse_args(argv)
    env = environment()
    E = a.members or (2 if a.smoke else 8)
    repeats = a.repeats or (1 if a.smoke else 3)
    base = (
        dict(units=8, T=40, trials=64, batch=32) if a.smoke else dict(units=50, T=200, trials=EPOCH_TRIALS, batch=BATCH)
    )
    rows = []
    for v in smoke_values if a.smoke else values:
        sizes = {**base, field: v}
        cfg = and_config(sizes["units"], sizes["T"], sizes["trials"], sizes["batch"])
        res = time_fit(cfg, E, repeats)
        mem = peak_bytes(cfg, E)
        flops = training_flops(
            sizes["units"], cfg.task.n_in, cfg.task.n_out, sizes["T"], cfg.steps_per_epoch * sizes["batch"]
        )
        rows.append(
            dict(
                N=sizes["units"],
                T=sizes["T"],
                E=E,
                trials=sizes["trials"],
                batch=sizes["batch"],
                s_per_net_epoch_median=res["per_network_median"],
                s_per_net_epoch_min=res["per_network_min"],
                compile_s=res["compile"],
                gflops=flops * E / res["median"] / 1e9,
                call_memory_mib=mem / 2**20 if mem > 0 else None,
                loadavg1=os.getloadavg()[0],
            )
        )
        print(rows[-1], flush=True)
    key = {"units": "N", "T": "T"}[field]
    xs = [r[key] for r in rows]
    slope = loglog_slope(xs, [r["s_per_net_epoch_median"] for r in rows]) if len(rows) > 1 else float("nan")
    tail = loglog_slope(xs[-2:], [r["s_per_net_epoch_median"] for r in rows[-2:]]) if len(rows) > 1 else float("nan")
    expected = "2 (matmuls N x N)" if field == "units" else "1 (a scan over T)"
    body = f"""
Workload: AND task, one epoch of {base["trials"]} trials in batches of {base["batch"]}, E = {E} members, through
`jaxrnn.training.train.fit`; {key} varies, the rest as in the table. Median (min) of {repeats} repeats; compile apart.
`call_memory_mib`: arguments + outputs + temporaries of one compiled call of the whole chunk (XLA memory analysis).

Growth: time ∝ {key}^p with p = {slope:.2f} over the sweep, {tail:.2f} between the two largest sizes
(expected {expected}; fixed per-step costs make it flatter at small sizes).
"""

    def plot(path):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        axes[0].loglog(xs, [r["s_per_net_epoch_median"] for r in rows], "o-")
        axes[0].set_xlabel(key)
        axes[0].set_ylabel("s per network per epoch")
        axes[0].set_title(f"time vs {key} (p = {slope:.2f})")
        mems = [r["call_memory_mib"] or float("nan") for r in rows]
        axes[1].loglog(xs, mems, "o-")
        axes[1].set_xlabel(key)
        axes[1].set_ylabel(f"MiB per compiled call (E = {E})")
        axes[1].set_title("memory")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    write(name, a.out, rows, env, f"{key} scaling: training time and memory vs {key}", body, plot)
    return rows
