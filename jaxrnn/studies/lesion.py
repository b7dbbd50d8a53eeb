"""Lesion study (Jarne & Laje 2019, §3.4): remove recurrent weights of a trained ensemble by magnitude, without
retraining, and measure the distance per input condition and the success rate at every removed fraction.

Five modes (`jaxrnn.analysis.lesion.MODES`): both signs cumulative, positive cumulative, negative cumulative,
positive bands, negative bands; fractions 0…100% of the eligible weights. Every member × level is evaluated in one
vmapped call. The ensemble is AND, N = 50, orthogonal init, trained with the success table's protocol at the same
scale (reused from `<out>/../success_table/runs` when it exists), or any run
directory given as `--run`. The original's curves (`jaxrnn.reference.lesion_table`) are drawn beside.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrnn import reference
from jaxrnn.analysis.lesion import MODES, lesion_curves, lesion_ensemble
from jaxrnn.runs.store import Run
from jaxrnn.studies import success_table
from jaxrnn.studies.base import Context, Scale, Study, log, md_table, sem, write_csv
from jaxrnn.training.evaluate import evaluate_on, heldout_trials

NAME = "lesion"


def _scale(name: str, fractions, n_trials: int, reduced: str):
    """The success table's scale `name` (the ensemble is trained as there) with the lesion levels."""
    base = success_table.SCALES[name]
    return dataclasses.replace(base, reduced=reduced, grid={"fractions": tuple(fractions), "lesion_trials": n_trials})


SCALES = {
    "smoke": _scale("smoke", np.linspace(0, 1, 6), 32, "Smoke test only (CI): N = 8, 2 members, 6 levels."),
    "cpu": _scale(
        "cpu",
        np.round(np.linspace(0, 1, 51), 4),
        128,
        "Reduced to fit 2 CPU cores: the AND ensemble of the success table's cpu scale (10 epochs × 2,560 trials, "
        "lr 3e-4, 8 members; paper: 20 × 15,000 at lr 1e-4, 20 networks), 128 held-out trials per level "
        "(32 per condition).",
    ),
    "paper": _scale("paper", np.round(np.linspace(0, 1, 51), 4), 512, "The original protocol, 20 members."),
}
#: the original's conditions, in the column order of its files
_REF_CONDITIONS = ("00", "11", "10", "01")


def ensemble(ctx: Context) -> Run:
    """The ensemble to lesion: `--run` if given, else the orthogonal cell of the success table's AND ensemble (N = 50,
    its scale; reused from the success table when it exists)."""
    if ctx.run is not None:
        return ctx.use(ctx.run)
    return success_table.ensembles(ctx, tasks=("and",))[("and", "orthogonal")]


def reference_curves() -> dict[str, np.ndarray]:
    """The original's lesion curves per mode with column 0 replaced by the removed % of the eligible weights.

    Only `both_cumulative` stores the removed %; for the other modes the magnitude threshold is mapped to a % with
    the `both_cumulative` table (same thresholds): for weights symmetric about 0, |w| < threshold removes the same
    fraction of the positive (negative) weights as of all weights. Rows commented out in the files are left out.
    """
    table = reference.lesion_table("both_cumulative")
    out = {}
    for mode in MODES:
        d = reference.lesion_table(mode).copy()
        d[:, 1] = np.interp(d[:, 0], table[:, 0], table[:, 1])
        out[mode] = np.column_stack([d[:, 1], d[:, 0], d[:, 2:]])
    return out


#: fewer learners than this: the curves are drawn over all members, labelled as such, and nothing is compared
MIN_LEARNERS = 3


def _condition_mean(mean: np.ndarray) -> np.ndarray:
    return np.nanmean(mean, axis=-1)


def _breakdown(pct: np.ndarray, dist: np.ndarray, factor: float = 3.0) -> float:
    """First removed % at which the condition-averaged distance exceeds `factor` × its unlesioned value."""
    above = np.nonzero(dist > factor * dist[0])[0]
    return float(pct[above[0]]) if above.size else float("nan")


def run(ctx: Context) -> list[str]:
    """The lesion study (module docstring): writes its files under `ctx.out`, returns the report body."""
    from jaxrnn.plots.studies import plot_lesion

    out, n_trials = ctx.out, ctx.scale.grid["lesion_trials"]
    tr = ensemble(ctx)
    cfg, task, net = tr.config, tr.config.task, tr.config.net
    final = tr.effective("final")
    E = len(tr.evaluation.success)
    trials = heldout_trials(task, n_trials)
    conditions = task.conditions
    fractions = np.asarray(ctx.scale.grid["fractions"])
    rows, curves, checks = [], {}, []
    log(f"lesion: {len(MODES)} modes × {E} members × {len(fractions)} levels")
    all_curves = lesion_curves(task, net, final, MODES, fractions, trials, success_at=0.9)
    intact = evaluate_on(task, net, final, trials, success_at=0.9)  # the unlesioned networks on the same trials
    # The figure and the comparison use the members that learned (the original lesioned working networks); all
    # members are in the CSV too. With fewer than MIN_LEARNERS learners nothing is compared.
    learned = tr.learned
    enough = int(learned.sum()) >= MIN_LEARNERS
    used = learned if enough else np.ones(E, bool)
    for mode in MODES:
        c = all_curves[mode]
        ev = c.evaluation
        by = ev.distance_by_condition  # (E, L, C)
        mean, err = np.nanmean(by, axis=0), sem(by, axis=0)
        mean_ok, err_ok = np.nanmean(by[used], axis=0), sem(by[used], axis=0)
        rate = ev.success.mean(axis=0)
        rate_ok = ev.success[used].mean(axis=0)
        # x: the requested % of the eligible weights (for bands, the band's upper edge; the band itself removes
        # the weights between the previous level and this one). Measured fractions go to the CSV.
        curves[mode] = {"pct": 100 * fractions, "mean": mean_ok, "sem": err_ok, "rate": rate_ok}
        for j, f in enumerate(fractions):
            row = dict(
                mode=mode,
                level=j,
                requested_fraction=float(f),
                removed_fraction_mean=float(c.removed[:, j].mean()),
                removed_fraction_min=float(c.removed[:, j].min()),
                removed_fraction_max=float(c.removed[:, j].max()),
                removed_of_all_mean=float(c.removed_all[:, j].mean()),
                n_eligible_min=int(c.n_eligible.min()),
                distance_mean=float(ev.distance[:, j].mean()),
                distance_sem=float(sem(ev.distance[:, j])),
            )
            for k, cond in enumerate(conditions):
                row[f"distance_{cond}_mean"] = float(mean[j, k])
                row[f"distance_{cond}_sem"] = float(err[j, k])
            row.update(accuracy_mean=float(ev.accuracy[:, j].mean()), success_rate=float(rate[j]))
            row["members_ok"] = int(used.sum())
            for k, cond in enumerate(conditions):
                row[f"ok_distance_{cond}_mean"] = float(mean_ok[j, k])
                row[f"ok_distance_{cond}_sem"] = float(err_ok[j, k])
            row["ok_success_rate"] = float(rate_ok[j])
            rows.append(row)
        checks.append((mode, float(np.max(np.abs(ev.distance[:, 0] - intact.distance)))))
    write_csv(out / "lesion.csv", rows)
    full = lesion_ensemble(final["W_rec"], "both_cumulative", [1.0])
    all_zero = bool(np.all(np.asarray(full.weights) == 0))
    ref_curves = reference_curves() if (task.name == "and" and cfg.units == 50) else {m: None for m in MODES}
    plot_lesion(curves, conditions, ref_curves, out / "lesion.png")

    cond_order = [c for c in _REF_CONDITIONS if c in conditions]
    comp_rows, summary, verdicts = [], [], []
    for mode in MODES:
        c = curves[mode]
        ours = _condition_mean(c["mean"])
        ref = ref_curves.get(mode)
        b_ours = _breakdown(c["pct"], ours)
        line = [mode, f"{ours[0]:.3f}", f"{b_ours:.0f}%" if np.isfinite(b_ours) else "none"]
        if ref is not None:
            ref_mean = np.mean(ref[:, 2::2], axis=1)
            b_ref = _breakdown(ref[:, 0], ref_mean)
            line += [f"{ref_mean[0]:.3f}", f"{b_ref:.0f}%" if np.isfinite(b_ref) else f"none up to {ref[-1, 0]:.0f}%"]
            if np.isfinite(b_ours) and np.isfinite(b_ref):
                how = "about the same" if abs(b_ours - b_ref) <= 4 else ("earlier" if b_ours < b_ref else "later")
                verdicts.append(f"{mode}: jaxrnn breaks down at {b_ours:.0f}% vs the original's {b_ref:.0f}% ({how})")
            elif np.isfinite(b_ref):
                verdicts.append(
                    f"{mode}: the original breaks down at {b_ref:.0f}%, jaxrnn's distance never reaches 3× its "
                    "unlesioned value (it degrades later or more gently)"
                )
            for p, rm in zip(ref[:, 0], ref_mean, strict=True):
                j = int(np.argmin(np.abs(c["pct"] - p)))
                comp_rows.append(
                    dict(
                        mode=mode,
                        percent_original=float(p),
                        percent_jaxrnn=float(c["pct"][j]),
                        distance_jaxrnn=float(ours[j]),
                        distance_original=float(rm),
                        ratio_to_unlesioned_jaxrnn=float(ours[j] / ours[0]),
                        ratio_to_unlesioned_original=float(rm / ref_mean[0]),
                    )
                )
        else:
            line += ["—", "—"]
        rate50 = np.nonzero(c["rate"] < 0.5)[0]
        line.append(f"{c['pct'][rate50[0]]:.0f}%" if rate50.size else "never")
        summary.append(line)
    if comp_rows:
        write_csv(out / "comparison.csv", comp_rows)
    ref_both = ref_curves.get("both_cumulative")
    ref0 = float(np.mean(ref_both[0, 2::2])) if ref_both is not None else float("nan")
    ours0 = float(_condition_mean(curves["both_cumulative"]["mean"])[0])
    pick = [r for r in comp_rows if round(r["percent_original"]) in (0, 10, 20, 30, 36)]
    body = [
        f"## Ensemble: {task.name}, N = {cfg.units}, {cfg.init} init, {E} members "
        f"({int(learned.sum())} learned the task), run directory `{tr.path}`"
        + (" (reused)" if tr.origin == "loaded" else "")
        + (
            f". The figure, the summary and the comparison use the {int(used.sum())} members that learned"
            if enough
            else f". **Fewer than {MIN_LEARNERS} members learned the task**: the figure and the summary show all {E} "
            "members, networks that did not learn, so they are no result about lesions of working networks, and "
            "nothing is compared with the original"
        )
        + "; `lesion.csv` has both (columns `ok_*`: the learners, or all members when fewer than "
        f"{MIN_LEARNERS}; the others: all members).",
        "",
        "Lesion: the k = round(f · n) smallest-|w| weights of the eligible set are zeroed (n = N² for both signs, the "
        "count of that sign otherwise); bands zero the weights of that sign whose magnitude rank lies between "
        "consecutive levels (one band at a time). The x axis is the requested % of the eligible "
        "weights (for bands: the band's upper edge, the band spanning from the previous level); the measured removed "
        "fractions, in `lesion.csv`, match the requested ones within one weight "
        "(bands: the band's width). No retraining; every member × level evaluated in one vmapped call on "
        f"{n_trials} held-out trials.",
        "",
        "![lesion curves](lesion.png)",
        "",
        "## Checks",
        "",
        *[f"- {m}: level 0 vs the unlesioned evaluation, max |Δ distance| over members = {d:.2e}" for m, d in checks],
        f"- both_cumulative at 100%: W_rec all zero = {all_zero}",
        "",
        "## Summary per mode, and the original",
        "",
        md_table(
            [
                "mode",
                "jaxrnn distance at 0%",
                "jaxrnn breakdown",
                "original distance at 0%",
                "original breakdown",
                "jaxrnn success < 50% from",
            ],
            summary,
        ),
        "",
        "Distance is averaged over the input conditions; *breakdown* = the first removed % at which it exceeds 3× its "
        "unlesioned value. The original's x positions: `both_cumulative` stores the removed %; for the other modes "
        "its magnitude thresholds are mapped to % with the `both_cumulative` table (weights are near-symmetric about "
        "0, so |w| < threshold removes about the same fraction of each sign). The original stops at 36% (later rows "
        "are commented out in its files).",
        "",
        "## Point by point (condition-averaged distance)",
        "",
    ]
    if pick and enough:
        body.append(
            md_table(
                ["mode", "removed % (original / jaxrnn)", "jaxrnn", "original", "jaxrnn ÷ its 0%", "original ÷ its 0%"],
                [
                    [
                        r["mode"],
                        f"{r['percent_original']:.0f} / {r['percent_jaxrnn']:.0f}",
                        f"{r['distance_jaxrnn']:.3f}",
                        f"{r['distance_original']:.3f}",
                        f"{r['ratio_to_unlesioned_jaxrnn']:.2f}",
                        f"{r['ratio_to_unlesioned_original']:.2f}",
                    ]
                    for r in pick
                ],
            )
        )
        body += [
            "",
            "Every original point is in `comparison.csv`.",
            "",
            *[f"- {v}." for v in verdicts],
            "",
            "Likely reasons for the differences: the unlesioned networks differ (jaxrnn's start at a "
            f"condition-averaged distance of {ours0:.2f}, the original's at {ref0:.2f}"
            + ("; jaxrnn's reduced protocol trains far less" if ctx.scale_name != "paper" else "")
            + "), and a network whose output is already further from the target rises by a smaller factor for the "
            "same damage, so breakdown points defined relative to the unlesioned distance are not on the same footing; "
            "the ensemble sizes; the original's error bars, which look like standard deviations rather than s.e.m.; "
            "and the mapping of the original's thresholds to removed % for the sign-restricted modes.",
        ]
    elif not enough:
        body.append(f"(Fewer than {MIN_LEARNERS} learners: comparison skipped.)")
    else:
        body.append("(No original curves for this task and size: comparison skipped.)")
    body += [
        "",
        f"Conditions in the figure: {', '.join(cond_order or conditions)}. Files: `lesion.csv` (every mode × "
        "level: requested and removed fractions, distance per condition, success rate), `comparison.csv`, "
        "`lesion.png`.",
    ]
    return body


def planned_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """`Study.ensembles`: the success table's AND ensemble (a grid over the two inits); `tasks` does not apply."""
    return success_table.task_ensembles(("and",), scale, members, options)


STUDY = Study(
    name=NAME,
    title="Lesions of W_rec: distance and success against the fraction of recurrent weights removed",
    summary="remove recurrent weights by magnitude (5 modes) without retraining, beside the original's curves",
    scales=SCALES,
    run=run,
    takes_run=True,
    reuses=("success_table",),
    ensembles=planned_ensembles,
)
