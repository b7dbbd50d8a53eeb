"""Memory studies on time reproduction (Jarne & Laje 2019, §3.3): how well networks reproduce a pulse after a
delay, against the delay (`memory_delay`, N = 50) and against the network size (`memory_size`, delay 150).

memory_delay trains all its delays as one ensemble (a grid over the delay, E members per delay, one compiled
program); memory_size one ensemble per N. Ensembles are reused from `<out>/runs/`. Every point is evaluated on
held-out trials: distance (per-trial L2 norm ||target − output|| over the whole trial, the original's metric) averaged
per member, then mean ± s.e.m. over the members that learned (`Run.learned`, their number beside it) and, as the
original's curves are (their networks at long delays average ~1.95, an output at baseline), over all members; and the
success rate with its 95% Wilson interval. The original's curves (`jaxrnn.reference`, `jarne_laje_2019/curves/`) are
drawn beside and compared point by point on the all-members mean, with a z-test per point and Holm-Bonferroni over the
points where at least one side learned: where jaxrnn has fewer than `MIN_LEARNERS` learners and the original's mean
distance is above half the zero output's (its average network did not learn either), the point is "both fail".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxrnn import reference
from jaxrnn.runs.store import Run
from jaxrnn.studies.base import Context, Protocol, Scale, Study, md_table, sem, write_csv
from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import DISTANCE_RATIO, wilson_interval
from jaxrnn.training.grid import Grid

SIZE_DELAY = 150
#: fewer learners than this at a point: no learners' statistics there, and it counts as failing
MIN_LEARNERS = 3
_CPU = Protocol(units=50, epochs=10, n_train=1280, batch_size=64, lr=3e-4, n_eval=256)
_CPU_REDUCED = (
    "Reduced to fit 2 CPU cores: 10 epochs × 1,280 trials per member (paper: 20 × 15,000) with a 3× higher learning "
    "rate (3e-4, paper 1e-4; 1e-3 was measured to be unstable for AND), 256 held-out trials; the original used "
    "14–97 networks per point."
)

#: memory_delay: N = protocol.units, grid["delays"] swept. memory_size: delay 150, grid["sizes"] swept.
SCALES = {
    "smoke": Scale(
        members=2,
        protocol=Protocol(units=8, epochs=3, n_train=128, batch_size=32, lr=1e-3, n_eval=32),
        reduced="Smoke test only (CI): N = 8, two delays (one size), 3 epochs of 128 trials; numbers mean nothing.",
        grid={"delays": (20, 150), "sizes": (8,)},
    ),
    "cpu": Scale(
        members=12,
        protocol=_CPU,
        reduced=_CPU_REDUCED,
        grid={"delays": (30, 50, 70, 90, 110, 130, 150, 170), "sizes": (50, 100, 200, 300, 400, 500)},
    ),
    "paper": Scale(
        members=20,
        protocol=Protocol(units=50, epochs=20, lr=1e-4, n_eval=512),
        reduced=(
            "The 2019 study's protocol: 20 epochs × 15,000 trials, batch 64, Adam lr 1e-4 with Keras' decay, early "
            "stop below 1e-3, 20 members per point."
        ),
        grid={
            "delays": tuple(range(20, 201, 10)),
            "sizes": (50, 60, 70, 80, 90, 100, 125, 150, 200, 250, 300, 400, 500),
        },
    ),
}
#: memory_size's scales: the same, except at the cpu scale 8 members per point (its sizes reach N = 500) and the
#: original's learning rate, measured before choosing (below).
SIZE_SCALES = {
    **SCALES,
    "cpu": dataclasses.replace(
        SCALES["cpu"],
        members=8,
        protocol=dataclasses.replace(_CPU, lr=1e-4),
        reduced=(
            "Reduced to fit 2 CPU cores: 10 epochs × 1,280 trials per member (paper: 20 × 15,000) at the original's "
            "learning rate 1e-4, 8 members per size, 256 held-out trials; the original used 14–40 networks per "
            "point. Measured before choosing: with memory_delay's 3× higher rate (3e-4) the training loss of N >= 300 "
            "stalled near 0.014 from epoch 3 and N = 300, 400, 500 came out significantly worse than the original "
            "(3/8, 1/8, 2/8 succeeded); at N = 400, 4 members: lr 3e-4 1/4 succeed (median distance 1.85), lr 3e-4 "
            "with gradient clipping at 1 3/4 (1.06), lr 1e-4 4/4 (0.72)."
        ),
    ),
}
#: per study: the swept variable, its axis label, the original's curve, the report title.
INFO = {
    "memory_delay": dict(
        x="delay",
        xlabel="delay (ms = steps)",
        curve="time_delay_N50.txt",
        title="Time reproduction: distance vs delay",
    ),
    "memory_size": dict(
        x="units",
        xlabel="network size N",
        curve="size_at_delay150.txt",
        title=f"Time reproduction at delay {SIZE_DELAY}: distance vs network size",
    ),
}


def points(name: str, scale: Scale) -> list[tuple[int, int]]:
    """(delay, N) of every point of study `name` at `scale`."""
    if name == "memory_delay":
        return [(d, scale.protocol.units) for d in scale.grid["delays"]]
    return [(SIZE_DELAY, n) for n in scale.grid["sizes"]]


def curve_rows(ctx: Context) -> tuple[list[dict], list[Run]]:
    """Train (or reuse) and evaluate every point: one row per point, and the runs of the points. memory_delay trains
    all its delays as one ensemble (a grid over the task's delay, one compiled program); memory_size one ensemble per
    N (N changes shapes)."""
    sc, pts = ctx.scale, points(ctx.study.name, ctx.scale)
    if ctx.study.name == "memory_delay":
        units = sc.protocol.units
        cfg = sc.config(make_task("time_reproduction"), init="orthogonal", units=units)
        cells = ctx.train_cells(cfg, f"delays_N{units}", Grid.of(cfg.task, delay=sc.grid["delays"]))
        runs = [cells[(delay,)] for delay, _ in pts]
    else:
        runs = [
            ctx.train(sc.config(make_task("time_reproduction", delay=d), init="orthogonal", units=n), f"delay{d}_N{n}")
            for d, n in pts
        ]
    rows = []
    for (delay, units), tr in zip(pts, runs, strict=True):
        ev, learned = tr.evaluation, tr.learned
        k, n = int(np.sum(learned)), len(learned)
        lo, hi = wilson_interval(k, n)
        enough = k >= MIN_LEARNERS
        rows.append(
            dict(
                delay=delay,
                units=units,
                members=n,
                successes=k,
                rate=k / n,
                wilson_low=lo,
                wilson_high=hi,
                distance_learners_mean=float(np.mean(ev.distance[learned])) if enough else float("nan"),
                distance_learners_sem=float(sem(ev.distance[learned])) if enough else float("nan"),
                distance_mean=float(np.mean(ev.distance)),
                distance_sem=float(sem(ev.distance)),
                distance_median=float(np.median(ev.distance)),
                zero_distance=float(np.median(ev.zero_distance)),
                mse_median=float(np.median(ev.mse)),
                median_stop_epoch=float(np.median(tr.epochs_run)),
            )
        )
    return rows, runs


def holm(p_values, alpha: float = 0.05) -> np.ndarray:
    """Holm-Bonferroni step-down test: which of m p-values are significant at family-wise level `alpha`."""
    p = np.asarray(p_values, float)
    significant = np.zeros(p.shape, bool)
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        if p[i] > alpha / (len(p) - rank):
            break
        significant[i] = True
    return significant


def compare(rows: list[dict], curve: np.ndarray, x: str) -> tuple[list[dict], str]:
    """Point-by-point comparison with the original curve at the same x (exact matches only).

    Each point: difference of mean distances over all members (the original's population), z = difference /
    combined s.e.m., two-sided normal p-value, and whether the difference is significant at 5% family-wise
    (Holm-Bonferroni) over the matched points that are not "both fail": jaxrnn has fewer than `MIN_LEARNERS`
    learners and the original's mean distance exceeds DISTANCE_RATIO × the zero output's (its average network did
    not learn either). Those are listed as both failing, never as agreeing.

    Returns:
        rows (one per point of `rows`; `original` None where the original has no point) and a Markdown table.
    """
    ref = {float(r[0]): r for r in curve}
    comp = []
    for r in rows:
        o = ref.get(float(r[x]))
        c = dict(x=r[x], ours=r["distance_mean"], ours_sem=r["distance_sem"], learners=r["successes"], original=None)
        if o is not None:
            se = float(np.hypot(r["distance_sem"], o[2]))
            d = r["distance_mean"] - float(o[1])
            z = d / se if se > 0 else math.copysign(math.inf, d)
            c.update(
                original=float(o[1]),
                original_sem=float(o[2]),
                original_count=int(o[3]),
                difference=d,
                z=z,
                p_value=math.erfc(abs(z) / math.sqrt(2)),
                original_learned=bool(float(o[1]) <= DISTANCE_RATIO * r["zero_distance"]),
                both_fail=bool(r["successes"] < MIN_LEARNERS and float(o[1]) > DISTANCE_RATIO * r["zero_distance"]),
            )
        comp.append(c)
    tested = [c for c in comp if c["original"] is not None and not c["both_fail"]]
    for c, sig in zip(tested, holm([c["p_value"] for c in tested]), strict=True):
        c["significant"] = bool(sig)

    def verdict(c):
        if c["both_fail"]:
            return f"both fail ({c['learners']} learners; the original's mean above half the zero output's)"
        if not c["significant"]:
            return "no significant difference"
        return "**higher** (worse) than the original" if c["difference"] > 0 else "**lower** (better)"

    table = md_table(
        [x, "jaxrnn distance (mean ± s.e.m.)", "original (mean ± s.e.m., networks)", "difference", "z", "p", "verdict"],
        [
            [c["x"], f"{c['ours']:.3f} ± {c['ours_sem']:.3f}"]
            + (
                [
                    f"{c['original']:.3f} ± {c['original_sem']:.3f} ({c['original_count']})",
                    f"{c['difference']:+.3f}",
                    f"{c['z']:+.1f}",
                    f"{c['p_value']:.2g}",
                    verdict(c),
                ]
                if c["original"] is not None
                else ["—", "—", "—", "—", "no original point at this x"]
            )
            for c in comp
        ],
    )
    return comp, table


def _trend(rows: list[dict], x: str) -> str:
    xs = np.array([r[x] for r in rows], float)
    ys = np.array([r["distance_mean"] for r in rows])
    if len(xs) < 3:
        return "Too few points for a trend."
    rho = np.corrcoef(np.argsort(np.argsort(xs)), np.argsort(np.argsort(ys)))[0, 1]
    return f"Spearman rank correlation of mean distance with {x}: {rho:+.2f}."


def run(ctx: Context) -> list[str]:
    """`memory_delay` or `memory_size` (module docstring): writes the curve and the comparison, returns the body."""
    from jaxrnn.plots.studies import plot_memory_curve

    name, out = ctx.study.name, ctx.out
    info = INFO[name]
    rows, _ = curve_rows(ctx)
    write_csv(out / f"{name}.csv", rows)
    curve = reference.curve(info["curve"])
    x = info["x"]
    comp, comp_table = compare(rows, curve, x)
    write_csv(out / "comparison.csv", comp)
    arr = lambda k: np.array([r[k] for r in rows], float)  # noqa: E731
    plot_memory_curve(
        arr(x),
        arr("distance_mean"),
        arr("distance_sem"),
        arr("rate"),
        curve,
        info["xlabel"],
        info["title"],
        out / f"{name}.png",
    )
    ours_table = md_table(
        [
            x,
            "members",
            "learned",
            "Wilson 95%",
            "distance, learners (mean ± s.e.m.)",
            "distance, all members (mean ± s.e.m.)",
            "zero output's distance",
            "median MSE, all",
            "median stop epoch",
        ],
        [
            [
                r[x],
                r["members"],
                f"{r['successes']} / {r['members']} ({100 * r['rate']:.0f}%)",
                f"[{100 * r['wilson_low']:.0f}, {100 * r['wilson_high']:.0f}]%",
                f"{r['distance_learners_mean']:.3f} ± {r['distance_learners_sem']:.3f}"
                if r["successes"] >= MIN_LEARNERS
                else f"fewer than {MIN_LEARNERS} learners",
                f"{r['distance_mean']:.3f} ± {r['distance_sem']:.3f}",
                f"{r['zero_distance']:.3f}",
                f"{r['mse_median']:.2e}",
                f"{r['median_stop_epoch']:.0f}",
            ]
            for r in rows
        ],
    )
    matched = [c for c in comp if c["original"] is not None]
    both_fail = [c for c in matched if c["both_fail"]]
    tested = [c for c in matched if not c["both_fail"]]
    significant = [c for c in tested if c["significant"]]
    better = [c for c in significant if c["difference"] < 0]
    flat = [r for r in rows if r["successes"] < MIN_LEARNERS]
    rx, ry = curve[:, 0], curve[:, 1]
    rho = np.corrcoef(np.argsort(np.argsort(rx)), np.argsort(np.argsort(ry)))[0, 1]
    ref_note = f" The original's rank correlation with {x} is {rho:+.2f} over its {len(rx)} points."
    fixed = f"N = {ctx.scale.protocol.units}" if name == "memory_delay" else f"delay {SIZE_DELAY}"
    return [
        f"## Distance and success against {x} ({fixed}, orthogonal init)",
        "",
        ours_table,
        "",
        f"![{name}]({name}.png)",
        "",
        "## Comparison with the original, point by point",
        "",
        comp_table,
        "",
        "The comparison is on the mean distance over all networks, learned or not, because that is what the "
        "original's curve averages (its networks at long delays sit near 1.95, an output at baseline); the learners' "
        "own distance is in the table above.",
        "",
        *(
            [
                f"**Both fail** at {len(both_fail)} of {len(matched)} points "
                f"({', '.join(str(c['x']) for c in both_fail)}): jaxrnn has fewer than {MIN_LEARNERS} learners there "
                "and the original's mean distance is above half "
                "the zero output's, so neither population learned the task; these points are left out of the test "
                "and say nothing about agreement.",
                "",
            ]
            if both_fail
            else []
        ),
        f"{len(significant)} of the {len(tested)} other points with an original counterpart differ significantly "
        "from it (two-sided z-test on the mean distances with their standard errors, 5% family-wise by "
        f"Holm-Bonferroni over those {len(tested)} points"
        + (f": {', '.join(str(c['x']) for c in significant)}" if significant else "")
        + f"). {_trend(rows, x)}{ref_note} Reading of the original's scale: ~1.0 is near perfect, ~1.95 an output that "
        "stays at baseline.",
        "",
        *(
            [
                f"jaxrnn has fewer than {MIN_LEARNERS} learners at {len(flat)} of {len(rows)} points "
                f"({', '.join(str(r[x]) for r in flat)}): those networks did not learn the task within the scale's "
                "training, so there the comparison measures training length rather than memory capacity.",
                "",
            ]
            if flat
            else []
        ),
        *(
            [
                f"Points where jaxrnn is lower (better) than the original: {', '.join(str(c['x']) for c in better)}. "
                "The distance has a floor from the target's own noise (std 0.03 per step over T = 300 steps: about "
                "0.52), the same for both; how the original reached ~1.0 at its best points (its outputs' precision, "
                "or how its distance was computed) is not known here.",
                "",
            ]
            if better
            else []
        ),
        "Likely reasons for differences: the scale's protocol (reduced scales train far fewer trials, see the scale "
        "line; long delays and small networks learn slowest, so they are the most likely to be still unlearnt), "
        "the number of networks per point (s.e.m. shrinks with sqrt(E)), each member having its own training set, "
        "and the original's unequal numbers of networks per point.",
    ]


def planned_delay_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """memory_delay's `Study.ensembles`: one ensemble, a grid over the delays."""
    cfg = scale.config(make_task("time_reproduction"), init="orthogonal", units=scale.protocol.units)
    return [(f"delays_N{cfg.units}", cfg, members * len(scale.grid["delays"]))]


def planned_size_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """memory_size's `Study.ensembles`: one ensemble per N."""
    task = make_task("time_reproduction", delay=SIZE_DELAY)
    sizes = scale.grid["sizes"]
    return [(f"delay{SIZE_DELAY}_N{n}", scale.config(task, init="orthogonal", units=n), members) for n in sizes]


DELAY = Study(
    name="memory_delay",
    title=INFO["memory_delay"]["title"],
    summary="time reproduction, N = 50: distance and success rate against the delay, beside the original's curve",
    scales=SCALES,
    run=run,
    ensembles=planned_delay_ensembles,
)
SIZE = Study(
    name="memory_size",
    title=INFO["memory_size"]["title"],
    summary=f"time reproduction at delay {SIZE_DELAY}: distance and success rate against N, beside the original's",
    scales=SIZE_SCALES,
    run=run,
    ensembles=planned_size_ensembles,
)
