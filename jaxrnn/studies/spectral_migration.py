"""Spectral migration: eigenvalues of W_rec before and after training, for every member of the success-table
ensembles (Jarne & Laje 2019, §3.2: training moves some eigenvalues out of the unit circle).

Reuses the success table's run directories (`<out>/../success_table/runs`) and trains only what is missing.
Eigenvalues are computed on the host in float64 (`jaxrnn.analysis.spectrum`).
Writes `spectral_members.csv` (one row per member), `spectral_summary.csv` (per task × init: median and
interquartile range, initial and trained), `spectra.png`, `spectral_histograms.png` and `report.md`. The seven
trained networks published with the original are analysed the same way for comparison.
"""

from __future__ import annotations

import numpy as np

from jaxrnn import reference
from jaxrnn.analysis.spectrum import OUTSIDE_TOL, spectral_table
from jaxrnn.studies import success_table
from jaxrnn.studies.base import Context, Study, md_table, write_csv

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


def member_rows(results) -> list[dict]:
    """One row per member of every ensemble: success, distance and the spectral summary before and after."""
    rows = []
    for (task, init), tr in results.items():
        _, s0 = spectral_table(tr.effective("init")["W_rec"])
        _, s1 = spectral_table(tr.effective("final")["W_rec"])
        ev = tr.evaluation
        for i in range(len(ev.success)):
            row = dict(task=task, init=init, member=i, success=bool(ev.success[i]), distance=float(ev.distance[i]))
            for stage, s in (("initial", s0), ("trained", s1)):
                for m in _METRICS:
                    row[f"{stage}_{m}"] = float(getattr(s, m)[i])
                row[f"{stage}_leading_re"] = float(np.real(s.leading[i]))
                row[f"{stage}_leading_im"] = float(np.imag(s.leading[i]))
            rows.append(row)
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per task × init: median and quartiles of every metric, initial and trained; the trained radius split by
    success."""
    out = []
    for key in dict.fromkeys((r["task"], r["init"]) for r in rows):
        sel = [r for r in rows if (r["task"], r["init"]) == key]
        row = dict(task=key[0], init=key[1], members=len(sel), successes=sum(r["success"] for r in sel))
        for stage in ("initial", "trained"):
            for m in _METRICS:
                v = np.array([r[f"{stage}_{m}"] for r in sel])
                row[f"{stage}_{m}_median"] = float(np.median(v))
                row[f"{stage}_{m}_q25"] = float(np.quantile(v, 0.25))
                row[f"{stage}_{m}_q75"] = float(np.quantile(v, 0.75))
        for ok, label in ((True, "success"), (False, "failure")):
            v = np.array([r["trained_radius"] for r in sel if r["success"] == ok])
            row[f"trained_radius_median_{label}"] = float(np.median(v)) if v.size else float("nan")
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
    """jaxrnn's medians over the successful members of the original network's task × init ("—" if none)."""
    cell = next((c for prefix, c in _ORIGINAL_CELLS.items() if network.startswith(prefix)), None)
    sel = [r for r in rows if (r["task"], r["init"]) == cell and r["success"]]
    if not sel:
        return "—"
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
    reused = sum(tr.origin == "loaded" for tr in results.values())
    rows = member_rows(results)
    summ = summary_rows(rows)
    write_csv(out / "spectral_members.csv", rows)
    write_csv(out / "spectral_summary.csv", summ)
    eigs = {
        key: (spectral_table(tr.effective("init")["W_rec"])[0], spectral_table(tr.effective("final")["W_rec"])[0])
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
            "succ / E",
            "radius initial",
            "radius trained (IQR)",
            "outside trained (IQR)",
            "leading freq (Hz)",
            "leading complex |λ| (Hz)",
            "Henrici initial → trained",
            "radius succ / fail",
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
                f"{s['trained_radius_median_success']:.3f} / {s['trained_radius_median_failure']:.3f}",
            ]
            for s in summ
        ],
    )
    orig = original_networks()
    radius_up = sum(r["trained_radius"] > r["initial_radius"] for r in rows)
    out_up = sum(r["trained_n_outside"] > r["initial_n_outside"] for r in rows)
    succ = [r for r in rows if r["success"]]
    body = [
        "## Per task × init (medians over members, interquartile range in brackets)",
        "",
        f"Network: {success_table.describe_options(options)}; eigenvalues of the effective recurrent matrix.",
        "",
        table,
        "",
        f"Conventions: eigenvalues of W_rec in float64 on the host; *outside* counts |λ| > 1 + {OUTSIDE_TOL:g} (an "
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
        f"Over all {len(rows)} members: the spectral radius grew in {radius_up} and the number of eigenvalues outside "
        f"the unit circle grew in {out_up}. Among the {len(succ)} successful members the trained radius has median "
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
                "jaxrnn same task × init: radius, outside, Henrici (medians, successful members)",
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
        f"Ensembles: {reused} of {len(results)} reused from existing run directories (the success table's), the "
        "rest trained here.",
    ]
    return body


STUDY = Study(
    name=NAME,
    title="Spectral migration of W_rec during training",
    summary="eigenvalues of W_rec before and after training for the success table's ensembles and the originals",
    scales=success_table.SCALES,
    run=run,
    options=("dale", "e_fraction", "sparsity"),
    reuses=("success_table",),
)
