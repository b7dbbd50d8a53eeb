"""Learning rate × delay: where in the (lr, delay) plane does time reproduction learn? A whole sweep trained as ONE
ensemble (one compiled program), in the spirit of Kurtkaya, Dinc et al. (ICML 2025), who trained ~80,000 RNNs over
15 learning rates × 21 delays × 100 seeds with 20 CPU processes.

The task is time reproduction (Jarne & Laje 2019; `jaxrnn.tasks.timing.TimeReproduction`): reproduce a pulse as a
bump `delay` steps after it ends. Every (lr, delay) cell holds `members` networks that differ only in their seed
(member key); the grid is `Grid(lr × delay)`, members cell-major. Per cell: the success rate (with its
95% Wilson interval), the median final training loss (MSE of the last epoch, with the training noise) and the median
held-out distance. Writes `lr_delay.csv`, `lr_delay.png` (heat maps) and `report.md`; the ensemble goes to
`runs/lr_delay_N<units>`.
"""

from __future__ import annotations

import numpy as np

from jaxrnn.studies.base import Context, Protocol, Scale, Study, md_table, write_csv
from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import wilson_interval
from jaxrnn.training.grid import Grid

NAME = "lr_delay"

SCALES = {
    "smoke": Scale(
        members=2,
        protocol=Protocol(units=8, epochs=2, n_train=64, batch_size=32, n_eval=32),
        reduced="Smoke test only (CI): N = 8, 2 learning rates × 2 delays × 2 seeds, 2 epochs of 64 trials.",
        grid={"lr": (1e-3, 1e-2), "delay": (20, 100)},
    ),
    "cpu": Scale(
        members=4,
        protocol=Protocol(units=50, epochs=10, n_train=1280, batch_size=64, n_eval=256),
        reduced=(
            "Reduced to fit 2 CPU cores: 5 learning rates × 5 delays × 4 seeds (100 networks, N = 50), 10 epochs × "
            "1,280 trials per member (the paper protocol: 20 × 15,000), 256 held-out trials; Kurtkaya & Dinc's sweep "
            "was 15 × 21 × 100."
        ),
        grid={"lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), "delay": (20, 60, 100, 140, 180)},
    ),
    "sweep": Scale(
        members=8,
        protocol=Protocol(units=50, epochs=12, n_train=3200, batch_size=64, n_eval=256),
        reduced=(
            "Larger than the cpu scale, still reduced: 5 learning rates × 5 delays × 8 seeds (200 networks, N = 50), "
            "12 epochs × 3,200 trials per member (3x the cpu scale's training; the paper protocol: 20 × 15,000), 256 "
            "held-out trials; Kurtkaya & Dinc's sweep was 15 × 21 × 100."
        ),
        grid={"lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), "delay": (20, 60, 100, 140, 180)},
    ),
    "paper": Scale(
        members=20,
        protocol=Protocol(units=50, epochs=20, n_eval=512),
        reduced="The 2019 protocol per member (20 epochs × 15,000 trials), 15 learning rates × 21 delays × 20 seeds.",
        grid={"lr": tuple(float(x) for x in np.geomspace(1e-4, 1e-1, 15)), "delay": tuple(range(10, 211, 10))},
    ),
}


def run(ctx: Context) -> list[str]:
    """The study (module docstring): trains the grid, writes `ctx.out`, returns the report body."""
    from jaxrnn.plots.studies import plot_grid_heatmaps

    sc = ctx.scale
    lrs, delays = sc.grid["lr"], sc.grid["delay"]
    cfg = sc.config(make_task("time_reproduction"), init="orthogonal")
    run_ = ctx.train(cfg, f"lr_delay_N{cfg.units}", grid=Grid.of(cfg.task, lr=lrs, delay=delays))
    final_loss = run_.ensemble.loss[:, -1]
    rows = []
    rate = np.full((len(delays), len(lrs)), np.nan)
    loss = np.full_like(rate, np.nan)
    for values, idx in run_.cells():
        ev = run_.evaluation
        ok = run_.learned[idx]
        k, n = int(ok.sum()), len(idx)
        lo, hi = wilson_interval(k, n)
        i, j = delays.index(values["delay"]), lrs.index(values["lr"])
        rate[i, j], loss[i, j] = k / n, float(np.nanmedian(final_loss[idx]))
        rows.append(
            dict(
                lr=values["lr"],
                delay=values["delay"],
                members=n,
                successes=k,
                rate=k / n,
                wilson_low=lo,
                wilson_high=hi,
                median_final_loss=loss[i, j],
                median_distance_learners=float(np.median(ev.distance[idx][ok])) if k else float("nan"),
                median_distance=float(np.median(ev.distance[idx])),
                zero_output_distance=float(np.median(ev.zero_distance[idx])),
                diverged=int(np.sum(run_.ensemble.diverged[idx])),
            )
        )
    write_csv(ctx.out / "lr_delay.csv", rows)
    plot_grid_heatmaps(
        lrs,
        delays,
        {"success rate": rate, "median final training loss": loss},
        "Adam learning rate",
        "delay (steps)",
        f"time reproduction, N = {cfg.units}, {ctx.members} seeds per cell",
        ctx.out / "lr_delay.png",
    )
    best = []
    for i, d in enumerate(delays):
        j = int(np.nanargmax(rate[i])) if np.any(rate[i] > 0) else None
        best.append(f"{d}: {'none learns' if j is None else f'lr {lrs[j]:g} ({rate[i, j]:.0%})'}")
    learned = [r for r in rows if r["successes"] > 0]
    return [
        "## Success rate and final loss over learning rate × delay",
        "",
        f"{len(lrs)} learning rates × {len(delays)} delays × {ctx.members} seeds = {len(run_.members)} networks, "
        "trained as one ensemble (one compiled program; `jaxrnn.training.grid`).",
        "",
        "![lr × delay](lr_delay.png)",
        "",
        md_table(
            [
                "lr",
                "delay",
                "learned / seeds",
                "Wilson 95%",
                "median final loss, all",
                "median distance, learners",
                "median distance, all",
                "zero output's distance",
            ],
            [
                [
                    f"{r['lr']:g}",
                    r["delay"],
                    f"{r['successes']} / {r['members']}",
                    f"[{100 * r['wilson_low']:.0f}, {100 * r['wilson_high']:.0f}]%",
                    f"{r['median_final_loss']:.3g}",
                    f"{r['median_distance_learners']:.3f}" if r["successes"] else "—",
                    f"{r['median_distance']:.3f}",
                    f"{r['zero_output_distance']:.3f}",
                ]
                for r in rows
            ],
        ),
        "",
        "Best learning rate per delay (highest success rate; ties: the smallest lr): " + "; ".join(best) + ".",
        "",
        f"{len(learned)} of {len(rows)} cells have at least one member that learned the task (success under the "
        "task's rule, stated below). The final loss is the training MSE of the last epoch over all members of the "
        "cell (with the task's input and target noise); in cells where no member learned it measures how far from "
        "the task the networks stayed, not a property of learned solutions. The learners' distance is over the "
        "members that learned (their number in the third column); the other distance columns are over all members, "
        "for scale.",
    ]


def planned_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """`Study.ensembles`: one ensemble, a grid over learning rates and delays."""
    cfg = scale.config(make_task("time_reproduction"), init="orthogonal")
    return [(f"lr_delay_N{cfg.units}", cfg, members * len(scale.grid["lr"]) * len(scale.grid["delay"]))]


STUDY = Study(
    name=NAME,
    title="Time reproduction over learning rate × delay, one compiled ensemble",
    summary="success rate and final loss of time reproduction over a learning rate × delay grid, one ensemble",
    scales=SCALES,
    run=run,
    ensembles=planned_ensembles,
)
