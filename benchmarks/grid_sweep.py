"""A K-point sweep trained as ONE grid ensemble vs the same K points as K separate ensembles: compile and training
time apart.

The sweep: time reproduction (N = 50, T = 300), learning rate × delay (3 × 4 = 12 points), R = 8 members per point,
2 epochs of 640 trials in batches of 64, through `jaxrnn.fit`. The grid is one TrainConfig with per-member
lr and delay (`Grid`): one compiled program. The separate ensembles are one TrainConfig per point (the
delay in the task, the lr in Hparams), as jaxrnn had to train sweeps before: one program per delay. For each, the
first call includes compilation; `--repeats` more calls (other seeds) time the training alone; compile = first call
minus the median of the others.

    python benchmarks/grid_sweep.py [--smoke] [--repeats 3] [--members 8]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
NAME = "grid_sweep"


def main(argv=None) -> int:
    sys.path.insert(0, str(HERE.parent))
    import _common as C
    import numpy as np

    from jaxrnn.tasks import make_task
    from jaxrnn.training.grid import Grid

    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=None, help="members per point (default 8, smoke 2)")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    tr = C.train_module()
    if a.smoke:
        units, lrs, delays, R, sizes = 8, (1e-3, 3e-3), (20, 60), a.members or 2, dict(epochs=1, n_train=64)
    else:
        units, lrs, delays, R = 50, (3e-4, 1e-3, 3e-3), (20, 60, 100, 140), a.members or 8
        sizes = dict(epochs=2, n_train=640)
    repeats = a.repeats or (1 if a.smoke else 3)
    env = C.environment()
    base = dict(units=units, batch_size=64 if not a.smoke else 32, threshold=0.0, **sizes)
    cfg = tr.TrainConfig(make_task("time_reproduction"), **base)
    grid = Grid.of(cfg.task, repeats=R, lr=lrs, delay=delays)
    K = grid.cells
    seeds = iter(range(1, 10_000))

    def grid_call():
        return tr.fit(cfg, next(seeds), range(grid.members), grid.hparams()).loss

    def separate_calls(first: bool):
        """Every point once: (seconds, the per-point first-call seconds when `first`)."""
        seed, total, per = next(seeds), 0.0, []
        for c in range(K):
            v = grid.cell_values(c)
            point = tr.TrainConfig(make_task("time_reproduction", delay=v["delay"]), **base)
            t0 = time.perf_counter()
            tr.fit(point, seed, range(R), tr.Hparams(lr=v["lr"]))
            per.append(time.perf_counter() - t0)
            total += per[-1]
        return total, per

    g = C.time_calls(grid_call, repeats)
    first_sep, per_first = separate_calls(first=True)
    sep_times = [separate_calls(first=False)[0] for _ in range(max(1, repeats))]
    sep_median = float(np.median(sep_times))
    rows = [
        dict(
            variant=f"one grid ensemble ({K} points x {R} members)",
            programs=1,
            first_call_s=round(g["first"], 3),
            compile_s=round(max(0.0, g["first"] - g["median"]), 3),
            train_s_median=round(g["median"], 3),
            train_s_min=round(g["min"], 3),
            s_per_network_epoch=round(g["median"] / (grid.members * cfg.epochs), 5),
        ),
        dict(
            variant=f"{K} separate ensembles ({R} members each)",
            programs=len(delays),
            first_call_s=round(first_sep, 3),
            compile_s=round(max(0.0, first_sep - sep_median), 3),
            train_s_median=round(sep_median, 3),
            train_s_min=round(min(sep_times), 3),
            s_per_network_epoch=round(sep_median / (grid.members * cfg.epochs), 5),
        ),
    ]
    ratio_first = first_sep / g["first"]
    ratio_train = sep_median / g["median"]
    body = f"""
Sweep: time reproduction, N = {units}, T = {cfg.task.T}, learning rate {list(lrs)} × delay {list(delays)} = {K}
points, {R} members per point ({grid.members} networks), {cfg.epochs} epoch(s) of {cfg.n_train} trials in batches of
{cfg.batch_size}, through `jaxrnn.fit`, in one process: the grid first, then the separate ensembles. First
call = compile + train; training = median of {repeats} more calls (other seeds). The separate ensembles need one
compiled program per delay (the lr is data in both), {len(delays)} here.

Separate / grid: first call (compile + train) {ratio_first:.2f}x, training alone {ratio_train:.2f}x. Per point, the
separate first calls took {", ".join(f"{t:.1f}" for t in per_first)} s.
"""
    C.write(NAME, a.out, rows, env, "A sweep as one grid ensemble vs separate ensembles", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
