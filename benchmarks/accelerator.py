"""How fast does jaxrnn train on one accelerator (GPU), and what would issue 8's GPU targets cost there?

Times `jaxrnn.training.train.fit` end to end on the first local accelerator (N = 50, never stopping early):

1. `variants`: seconds per update and per network per epoch (the issue's epoch: 1,280 trials in batches of 128,
   T = 200, AND) vs the ensemble size E, for the hand-written backward pass (custom VJP, the default) and autodiff;
   at one large E also with fp32 matmuls at precision "highest" (true fp32) and "bfloat16" beside JAX's default
   ("default": TF32 on recent NVIDIA GPUs); and the time loops not unrolled (unroll 1) beside the accelerator
   default (8 steps per scan iteration; `fit(unroll=...)`).
2. `cells`: one cell of the paper-protocol success_table per task (E = 20, batch 64, the task's T), timed over a
   short epoch of 24 updates: seconds per update, extrapolated to the cell's 20 paper epochs; their sum over the 7
   tasks x 2 inits is the training time of the paper-scale `jaxrnn study success_table` (cells run one after
   another), compared with the issue's 1-minute target.
3. `large`: E = 10,000 AND networks (batch 64, T = 200) in the default chunks (`train.default_chunk`): seconds per
   update and the memory of one call, extrapolated to 20 paper epochs (234 updates each), compared with the issue's
   15-minute target.

Every row also gives the device's peak memory during the call. Compile time is reported apart.

    python benchmarks/accelerator.py [--smoke] [--parts variants,cells,large] [--out DIR]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "accelerator"
CELL_TASKS = ("and", "or", "xor", "not", "flipflop", "oscillation", "time_reproduction")
SHORT_UPDATES = 24  # updates timed per cell (batch 64)


def _peak_mib() -> float | None:
    stats = C.jax.local_devices()[0].memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


def _fresh() -> None:
    """Drop every cached program (each row's compile time is its own)."""
    C.train_module().clear_programs()
    C.jax.clear_caches()


def _time(
    cfg,
    E: int,
    repeats: int,
    precision: str = "default",
    chunk: int | None = None,
    fast: bool = True,
    unroll: int | None = None,
) -> dict:
    with C.jax.default_matmul_precision(None if precision == "default" else precision):
        res = C.time_fit(cfg, E, repeats, chunk_size=chunk or E, fast_backward=fast, unroll=unroll)
    res["updates"] = cfg.steps_per_epoch * cfg.epochs
    return res


def variants(smoke: bool, repeats: int) -> list[dict]:
    units, T, trials, batch = (8, 40, 64, 32) if smoke else (50, 200, C.EPOCH_TRIALS, C.BATCH)
    cfg = C.and_config(units, T, trials, batch)
    ensembles = (2, 8) if smoke else (16, 256, 2048)
    big = ensembles[-1]
    unroll = 1 if C.jax.default_backend() == "cpu" else 8  # what fit(unroll=None) picks
    plan = [(E, "custom VJP", unroll, "default") for E in ensembles]
    plan += [(E, "autodiff", unroll, "default") for E in ensembles]
    plan += [(big, "custom VJP", unroll, "highest"), (big, "custom VJP", unroll, "bfloat16")]
    plan += [(E, "custom VJP", 1 if unroll != 1 else 4, "default") for E in (ensembles[0], big)]
    rows = []
    for E, backward, unroll, precision in plan:
        _fresh()
        try:
            res = _time(cfg, E, repeats, precision, fast=backward == "custom VJP", unroll=unroll)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory: record it, go on
            rows.append(
                dict(
                    part="variants",
                    E=E,
                    backward=backward,
                    unroll=unroll,
                    precision=precision,
                    error=str(e).splitlines()[0][:200],
                )
            )
            print(rows[-1], flush=True)
            continue
        rows.append(
            dict(
                part="variants",
                E=E,
                N=units,
                T=T,
                batch=batch,
                backward=backward,
                unroll=unroll,
                precision=precision,
                s_per_update=res["median"] / res["updates"],
                s_per_net_epoch=res["per_network_median"],
                compile_s=res["compile"],
                peak_mib=_peak_mib(),
            )
        )
        print(rows[-1], flush=True)
    _fresh()
    return rows


def cells(smoke: bool, repeats: int) -> list[dict]:
    from jaxrnn.tasks import make_task

    tr = C.train_module()
    rows = []
    for name in ("and",) if smoke else CELL_TASKS:
        paper = tr.TrainConfig(task=make_task(name))  # the paper protocol of this task (train.PAPER)
        batch = 16 if smoke else paper.batch_size
        cfg = dataclasses.replace(
            paper,
            n_train=batch * (2 if smoke else SHORT_UPDATES),
            batch_size=batch,
            threshold=0.0,
            units=8 if smoke else paper.units,
        )
        E = 2 if smoke else 20
        res = _time(cfg, E, repeats)
        per_update = res["median"] / res["updates"]
        paper_updates = C.PAPER_EPOCHS * paper.steps_per_epoch
        rows.append(
            dict(
                part="cells",
                task=name,
                E=E,
                N=cfg.units,
                T=cfg.task.T,
                batch=batch,
                s_per_update=per_update,
                paper_updates=paper_updates,
                cell_s_extrapolated=per_update * paper_updates,
                compile_s=res["compile"],
                peak_mib=_peak_mib(),
            )
        )
        print(rows[-1], flush=True)
    return rows


def large(smoke: bool, repeats: int) -> list[dict]:
    E, units, T = (16, 8, 40) if smoke else (10_000, 50, 200)
    cfg = C.and_config(units, T, C.PAPER_BATCH * (2 if smoke else 10), C.PAPER_BATCH)
    chunk = C.train_module().default_chunk(cfg, E)
    mem = C.peak_bytes(cfg, E, chunk_size=chunk)
    res = _time(cfg, E, repeats, chunk=chunk)
    per_update = res["median"] / res["updates"]
    paper_updates = C.PAPER_EPOCHS * (C.PAPER_TRIALS // C.PAPER_BATCH)
    row = dict(
        part="large",
        E=E,
        N=units,
        T=T,
        batch=C.PAPER_BATCH,
        chunk=chunk,
        s_per_update=per_update,
        paper_updates=paper_updates,
        job_s_extrapolated=per_update * paper_updates,
        s_per_net_paper_epoch=per_update * (C.PAPER_TRIALS // C.PAPER_BATCH) / E,
        compile_s=res["compile"],
        call_mib_per_member=mem / chunk / 2**20 if mem > 0 else None,
        peak_mib=_peak_mib(),
    )
    print(row, flush=True)
    return [row]


PARTS = {"variants": variants, "cells": cells, "large": large}


def run(smoke: bool = False, repeats: int | None = None, parts=tuple(PARTS), out=C.RESULTS) -> list[dict]:
    env = C.environment()
    repeats = repeats or (1 if smoke else 2)
    t0 = time.perf_counter()
    rows = []
    for part in parts:
        rows += PARTS[part](smoke, repeats)
    cell_rows = [r for r in rows if r["part"] == "cells"]
    # Each task's cell runs twice in the study (orthogonal and normal init), one after another.
    table_s = 2 * sum(r["cell_s_extrapolated"] for r in cell_rows)
    body = f"""
All rows: `jaxrnn.training.train.fit` end to end on {env["device"]} (task generation, masks, early-stopping bookkeeping,
host transfers included; threshold 0, so nothing stops early), one compiled call for the whole ensemble, median of
{repeats} timed calls after a compiling one. `peak_mib`: the device's peak memory in use so far in this process
(not reset between rows: it only grows). Wall time of this script: {time.perf_counter() - t0:.0f} s.

- `variants`: the issue's epoch (1,280 trials, batch 128, T = 200, AND, N = 50); `s_per_net_epoch` = epoch time / E.
- `cells`: one success_table cell per task (E = 20, the paper's batch 64 and T), {SHORT_UPDATES} updates timed;
  `cell_s_extrapolated` = time per update x the cell's 20 paper epochs of updates (15,000 trials; flip-flop 25,000).
  Paper-scale success_table (7 tasks x 2 inits, cells one after another), extrapolated: {table_s:.0f} s of training
  (issue 8 target: under 60 s). {"(no cells timed)" if not cell_rows else ""}
- `large`: E = 10,000 AND networks in the default chunks, batch 64; `job_s_extrapolated` = 20 paper epochs of 234
  updates (issue 8 target: under 15 min = 900 s).
"""
    C.write(NAME, out, rows, env, "Training on one accelerator", body)
    return rows


def main(argv=None) -> int:
    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    a = p.parse_args(argv)
    parts = [x for x in a.parts.split(",") if x]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown part(s) {', '.join(bad)}; allowed: {', '.join(PARTS)}")
    run(a.smoke, a.repeats, parts, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
