"""Spectral migration: eigenvalues of W_rec before and after training, for every member of the success-table
ensembles (Jarne & Laje 2019, §3.2: training moves some eigenvalues out of the unit circle).

Reuses the success table's run directories (`<out>/../success_table/runs`) and trains only what is missing.
Eigenvalues are computed on the host in float64 (`jaxrnn.analysis.spectrum`), of the per-step map (1 − a) I + a W_eff
(`spectrum.step_map`), which is W_eff itself for the leak a = 1 of the 2019 networks and of every success-table scale.
Statistics of trained networks are taken over the members that learned the task (`Run.learned`), with their number;
initial spectra over all members (nothing was trained yet); every member is listed in `spectral_members.csv`.
Writes `spectral_members.csv` (one row per member), `spectral_summary.csv` (per task × init: median and
interquartile range, initial and trained), `spectra.png`, `spectral_histograms.png` and `report.md`. The seven
trained networks published with the original are analysed the same way for comparison.
"""

from __future__ import annotations

import numpy as np

from jaxrnn import reference
from jaxrnn.analysis.spectrum import OUTSIDE_TOL, spectral_table, step_map
from jaxrnn.studies import success_table
from jaxrnn.studies.base import Context, Scale, Study, md_table, write_csv

NAME = "spectral_migration"
_METRICS = (
    "radius",
    "n_outside",
    "leading_cycles_per_step",
    "leading_hz",
    "leading_complex_abs",
    "leading_complex_hz",
    "henrici",
)


#: fewer learners than this in a cell: its trained statistics are not reported (NaN) and it enters no verdict
MIN_LEARNERS = 3


def _map(tr, stage: str) -> np.ndarray:
    """(E, N, N) per-step maps (1 − a) I + a W_eff of a run's members at `stage` ("init" or "final")."""
    return step_map(tr.effective(stage)["W_rec"], tr.config.alpha)


def member_rows(results) -> list[dict]:
    """One row per member of every ensemble: success (= learned), distance and the spectral summary of its per-step
    map before and after training."""
    rows = []
    for (task, init), tr in results.items():
        _, s0 = spectral_table(_map(tr, "init"))
        _, s1 = spectral_table(_map(tr, "final"))
        ev, learned = tr.evaluation, tr.learned
        for i in range(len(learned)):
            row = dict(task=task, init=init, member=i, success=bool(learned[i]), distance=float(ev.distance[i]))
            for stage, s in (("initial", s0), ("trained", s1)):
                for m in _METRICS:
                    row[f"{stage}_{m}"] = float(getattr(s, m)[i])
                row[f"{stage}_leading_re"] = float(np.real(s.leading[i]))
                row[f"{stage}_leading_im"] = float(np.imag(s.leading[i]))
            rows.append(row)
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per task × init: median and quartiles of every metric, initial (all members) and trained (learners only;
    NaN with fewer than `MIN_LEARNERS`)."""
    out = []
    for key in dict.fromkeys((r["task"], r["init"]) for r in rows):
        sel = [r for r in rows if (r["task"], r["init"]) == key]
        learners = [r for r in sel if r["success"]]
        row = dict(task=key[0], init=key[1], members=len(sel), successes=len(learners))
        for stage, group in (("initial", sel), ("trained", learners)):
            for m in _METRICS:
                v = np.array([r[f"{stage}_{m}"] for r in group])
                enough = len(group) >= (1 if stage == "initial" else MIN_LEARNERS)
                row[f"{stage}_{m}_median"] = float(np.median(v)) if enough else float("nan")
                row[f"{stage}_{m}_q25"] = float(np.quantile(v, 0.25)) if enough else float("nan")
                row[f"{stage}_{m}_q75"] = float(np.quantile(v, 0.75)) if enough else float("nan")
        out.append(row)
    return out


_ORIGINAL_CELLS = {
    "and_noise_orthogonal": ("and", "orthogonal"),
    "and_nonoise_normal": ("and", "normal"),
    "or_noise_orthogonal": ("or", "orthogonal"),
    "not_noise_orthogonal": ("not", "orthogonal"),
    "flipflop_noise_orthogonal": ("flipflop", "orthogonal"),
    "pulse_orthogonal": ("time_reproduction", "orthogonal"),
}


def _matched(network: str, rows: list[dict]) -> str:
    """jaxrnn's medians over the learners of the original network's task × init (a note with fewer than
    `MIN_LEARNERS`)."""
    cell = next((c for prefix, c in _ORIGINAL_CELLS.items() if network.startswith(prefix)), None)
    sel = [r for r in rows if (r["task"], r["init"]) == cell and r["success"]]
    if len(sel) < MIN_LEARNERS:
        return f"— ({len(sel)} learners: fewer than {MIN_LEARNERS})"
    med = lambda k: float(np.median([r[k] for r in sel]))  # noqa: E731
    return f"{med('trained_radius'):.3f}, {med('trained_n_outside'):.0f}, {med('trained_henrici'):.3f} ({len(sel)})"


def original_networks() -> list[dict]:
    """Spectral summaries of the original's published networks of the 2019 study (initial and trained)."""
    rows = []
    for name, (folder, _) in reference.NETWORKS.items():
        if folder != "jarne_laje_2019":
            continue
        row = {"network": name}
        for stage in reference.STAGES:
            _, s = spectral_table(reference.network(name, stage).params["W_rec"][None])
            for m in _METRICS:
                row[f"{stage}_{m}"] = float(getattr(s, m)[0])
        rows.append(row)
    return rows


def run(ctx: Context) -> list[str]:
    """The spectral-migration study (module docstring): writes its files under `ctx.out`, returns the report body.
    Network options (dale, e_fraction, sparsity) apply to every ensemble; the spectra are those of the effective
    matrix W_eff."""
    from jaxrnn.plots.studies import plot_spectra, plot_spectral_histograms

    out, options = ctx.out, ctx.options
    results = success_table.ensembles(ctx)
    ensembles = {tr.path: tr.origin for tr in results.values()}  # a task's two init cells are one ensemble
    reused = sum(origin == "loaded" for origin in ensembles.values())
    rows = member_rows(results)
    summ = summary_rows(rows)
    write_csv(out / "spectral_members.csv", rows)
    write_csv(out / "spectral_summary.csv", summ)
    # initial spectra of every member; trained spectra of the learners only
    eigs = {
        key: (spectral_table(_map(tr, "init"))[0], spectral_table(_map(tr, "final")[tr.learned])[0])
        for key, tr in results.items()
    }
    plot_spectra(eigs, out / "spectra.png")
    arr = lambda k: np.array([r[k] for r in rows])  # noqa: E731
    plot_spectral_histograms(
        arr("trained_radius"),
        arr("trained_n_outside"),
        arr("success"),
        arr("initial_radius"),
        out / "spectral_histograms.png",
    )
    table = md_table(
        [
            "task",
            "init",
            "learners / E",
            "radius initial (all)",
            "radius trained (IQR)",
            "outside trained (IQR)",
            "leading freq (Hz)",
            "leading complex |λ| (Hz)",
            "Henrici initial → trained",
        ],
        [
            [
                s["task"],
                s["init"],
                f"{s['successes']} / {s['members']}",
                f"{s['initial_radius_median']:.3f}",
                f"{s['trained_radius_median']:.3f} ({s['trained_radius_q25']:.3f}–{s['trained_radius_q75']:.3f})",
                f"{s['trained_n_outside_median']:.0f} ({s['trained_n_outside_q25']:.0f}–"
                f"{s['trained_n_outside_q75']:.0f})",
                f"{s['trained_leading_hz_median']:.1f}",
                f"{s['trained_leading_complex_abs_median']:.3f} ({s['trained_leading_complex_hz_median']:.1f})",
                f"{s['initial_henrici_median']:.3f} → {s['trained_henrici_median']:.3f}",
            ]
            if s["successes"] >= MIN_LEARNERS
            else [s["task"], s["init"], f"{s['successes']} / {s['members']}", f"{s['initial_radius_median']:.3f}"]
            + [f"fewer than {MIN_LEARNERS} learners"]
            + [""] * 4
            for s in summ
        ],
    )
    orig = original_networks()
    succ = [r for r in rows if r["success"]]
    radius_up = sum(r["trained_radius"] > r["initial_radius"] for r in succ)
    out_up = sum(r["trained_n_outside"] > r["initial_n_outside"] for r in succ)
    alphas = sorted({float(tr.config.alpha) for tr in results.values()})
    body = [
        "## Per task × init (trained: medians over the members that learned; interquartile range in brackets)",
        "",
        f"Network: {success_table.describe_options(options)}; eigenvalues of the per-step map (1 − a) I + a W_eff "
        f"of the effective recurrent matrix, with leak a = {', '.join(f'{a:g}' for a in alphas)}"
        + (" (so the map is W_eff itself, as in the 2019 study)." if alphas == [1.0] else "."),
        "",
        table,
        "",
        "Trained statistics are over the learners (members that succeed under the task's rule, their number in the "
        f"third column); a cell with fewer than {MIN_LEARNERS} learners is not summarised. The initial radius is over "
        "all members (before training). Every member, learned or not, is in `spectral_members.csv`. The spectra "
        "figure shows the initial eigenvalues of every member (grey) and the trained eigenvalues of the learners.",
        "",
        f"Conventions: eigenvalues in float64 on the host; *outside* counts |λ| > 1 + {OUTSIDE_TOL:g} (an "
        "orthogonal matrix stored in float32 has |λ| = 1 ± 1e-7); the *leading* eigenvalue has the largest modulus "
        "(|λ| = the radius; 0 Hz when it is real), the *leading complex* one the largest modulus with Im λ ≠ 0; a "
        "frequency is |arg λ| / 2π cycles per step, × 1000 for Hz with 1 step = 1 ms; Henrici index = "
        "sqrt(||W||_F² − Σ|λ|²) / ||W||_F (0 for a normal matrix).",
        "",
        "![eigenvalues](spectra.png)",
        "",
        "![radius and outside count by success](spectral_histograms.png)",
        "",
        "## What moved",
        "",
        f"Over the {len(succ)} learners (of {len(rows)} members): the spectral radius grew in {radius_up} and the "
        f"number of eigenvalues outside the unit circle grew in {out_up}; their trained radius has median "
        f"{np.median([r['trained_radius'] for r in succ]) if succ else float('nan'):.3f} and the outside count "
        f"median {np.median([r['trained_n_outside'] for r in succ]) if succ else float('nan'):.0f}.",
        "",
        "## Comparison with the original",
        "",
        "The 2019 study describes how training moves the eigenvalues of W_rec relative to the unit circle. Its seven "
        "published networks (initial and trained), analysed here with the same code, are the point-by-point "
        "reference:",
        "",
    ]
    body += [
        md_table(
            [
                "original network",
                "radius initial → trained",
                "outside initial → trained",
                "leading freq trained (Hz)",
                "leading complex |λ| trained (Hz)",
                "Henrici trained",
                "jaxrnn same task × init: radius, outside, Henrici (medians over learners, their number)",
            ],
            [
                [
                    o["network"],
                    f"{o['initial_radius']:.3f} → {o['trained_radius']:.3f}",
                    f"{o['initial_n_outside']:.0f} → {o['trained_n_outside']:.0f}",
                    f"{o['trained_leading_hz']:.1f}",
                    f"{o['trained_leading_complex_abs']:.3f} ({o['trained_leading_complex_hz']:.1f})",
                    f"{o['trained_henrici']:.3f}",
                    _matched(o["network"], rows),
                ]
                for o in orig
            ],
        ),
        "",
        f"Original trained radius: median {np.median([o['trained_radius'] for o in orig]):.3f}, outside count "
        f"median {np.median([o['trained_n_outside'] for o in orig]):.0f}; jaxrnn's successful members: "
        f"{np.median([r['trained_radius'] for r in succ]) if succ else float('nan'):.3f} and "
        f"{np.median([r['trained_n_outside'] for r in succ]) if succ else float('nan'):.0f}. The last column puts "
        "each original network beside jaxrnn's members of the same task and init. Where they differ, likely "
        "reasons: one original network per row against a median over members; the scale's training length "
        "(reduced scales make far fewer updates than the original); and for normal init, whose random matrix "
        "already has a few eigenvalues outside the unit circle at N = 50, the initial draw.",
    ]
    body += [
        "",
        f"Ensembles: {reused} of {len(ensembles)} reused from existing run directories (the success table's), the "
        "rest trained here.",
    ]
    return body


def planned_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """`Study.ensembles`: the success table's ensembles (a grid over the two inits per task of the scale, or of
    `tasks`)."""
    return success_table.task_ensembles(tuple(tasks or scale.grid["tasks"]), scale, members, options)


STUDY = Study(
    name=NAME,
    title="Spectral migration of W_rec during training",
    summary="eigenvalues of W_rec before and after training for the success table's ensembles and the originals",
    scales=success_table.SCALES,
    run=run,
    options=("dale", "e_fraction", "sparsity"),
    reuses=("success_table",),
    ensembles=planned_ensembles,
)
