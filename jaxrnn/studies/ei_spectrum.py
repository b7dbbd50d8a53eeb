"""E/I spectra: eigenvalues of trained excitatory-inhibitory (Dale's law) networks over the E fraction and N.

The claim tested (the seed slides, issue 7): after training, the non-dominant eigenvalues of the effective recurrent
matrix of an E/I network lie in a disc (random-normal init) or a ring (orthogonal init) whose radius depends neither on
the E fraction nor on N. Background: for random E/I matrices with balanced rows the eigenvalues fill a disc whose
radius is set by the column variances, with no outlier (Rajan & Abbott 2006, Phys Rev Lett 97:188104); Dale's law is
imposed as W_eff = |W| · D with a balanced init (Song, Yang & Wang 2016, PLoS Comput Biol 12:e1004792;
`jaxrnn.network.init_dale_recurrent`, whose bulk radius is set to the gain, 1 here).

For every init ∈ {normal, orthogonal} × E fraction × N an ensemble of Dale networks is trained on the AND task
(Jarne & Laje 2019) and the eigenvalues of each member's W_eff are computed on the host in float64, before and after
training. Definitions (per member):

  * **predicted radius** r_pred = sqrt(Σ_ij (W_ij - m_c(j))² / N), m_c(j) the mean weight of column j's class (E or
    I): the edge of the bulk predicted from the entries by the circular law for E/I matrices (Rajan & Abbott 2006);
  * **outliers** (gap rule): sort |λ| descending, m_1 ≥ m_2 ≥ … ≥ m_N; the typical spacing at the edge is
    s = (m_{k+1} − m_{k+1+M}) / M (mean spacing per rank just below the candidates, k = 5, M = 10); the top j
    eigenvalues are outliers for the largest j ≤ k with m_j − m_{j+1} > 60 · s (none if no such gap; 60 is above
    the largest ratio, 54, seen in 600 plain Ginibre spectra with N = 50-200, whose 99th percentile is 34). The rule
    looks only at gaps, so it puts no ceiling on the bulk edge (the earlier rule, |λ| > 1.25 · r_pred, capped the bulk
    radius at 1.25 r_pred). The factors k, M, 60 are choices, checked on Ginibre spectra with and without planted
    outliers (tests/test_studies.py); a bulk-edge eigenvalue detached by an unusually large gap would count as an
    outlier;
  * **bulk radius** r_bulk = m_{j+1}, the largest |λ| that is not an outlier. Known failure at the cpu scale: on
    trained N = 50 and 100 networks the rule finds no outliers (a detached pair near |λ| 1.4 against an edge near 1.1
    is not a 60 · s gap there), so r_bulk equals the spectral radius; it is reported, but the claim is judged on R_q;
  * **q90** = the 90th percentile of |λ|; **disc radius** R_q = q90 / sqrt(0.9), the radius of a uniform disc with
    that q90: it assumes nothing about outliers (at most 10% of them), is exact for a uniform disc and biased when the
    density inside the disc is not uniform, which for E/I matrices with unequal E and I variances it is not (Rajan &
    Abbott 2006): the measure the claim is judged on, with that bias stated;
  * **inner radius** r_in = the 10th percentile of |λ|; **ring index** r_in / q90 (a uniform disc gives
    sqrt(0.1/0.9) ≈ 0.33, a thin ring ≈ 1); **spectral radius** = max |λ|.

Writes `ei_spectrum.csv` (one row per condition: medians and quartiles over members), `ei_members.csv` (one row per
member), `eigenvalues.png` (complex plane per condition), `radius.png` (bulk radius vs E fraction and vs N) and
`report.md`; trained ensembles go to `<out>/runs/<init>_e<fraction>_N<units>` and are reused.
"""

from __future__ import annotations

import numpy as np

from jaxrnn.analysis.spectrum import eigenvalues
from jaxrnn.evaluate import wilson_interval
from jaxrnn.store import Run
from jaxrnn.studies.base import Context, Protocol, Scale, Study, md_table, write_csv
from jaxrnn.tasks import make_task

NAME = "ei_spectrum"
INITS = ("normal", "orthogonal")
BULK_QUANTILE = 0.9
INNER_QUANTILE = 0.1
OUTLIER_CANDIDATES = 5  # k: at most this many outliers
SPACING_RANKS = 10  # M: ranks below the candidates over which the typical spacing is measured
GAP_FACTOR = 60.0  # above the largest top-5 gap / spacing (54) of 600 plain Ginibre spectra, N = 50-200

#: grid: the E fractions and sizes swept; every condition is the AND task with Dale's law at the protocol's leak.
SCALES = {
    "smoke": Scale(
        members=2,
        protocol=Protocol(units=10, epochs=1, n_train=64, batch_size=32, lr=1e-3, n_eval=32, alpha=0.2),
        reduced="Smoke test only (CI): N = 10, E fraction 0.8, one epoch of 64 trials; the numbers mean nothing.",
        grid={"fractions": (0.8,), "units": (10,)},
    ),
    "cpu": Scale(
        members=4,
        protocol=Protocol(units=50, epochs=4, n_train=1024, batch_size=64, lr=1e-3, n_eval=256, alpha=0.2),
        reduced=(
            "Reduced to fit about 10 minutes on 2 CPU cores: 4 members per condition, 4 epochs × 1,024 AND trials per "
            "member (the paper protocol: 20 × 15,000), Adam lr 1e-3, 256 held-out trials. Leak a = dt/tau = 0.2 "
            "(Song, Yang & Wang 2016): at a = 1 Dale AND networks stayed at the all-zero answer (0 of 8 learned "
            "in 8 epochs × 3,200 trials at lr 1e-3 or 3e-4), at a = 0.2 8 of 8 learned "
            "(tests/test_constraints.py::test_dale_and_ensemble_learns). 64 updates are few: the spectra are those "
            "of networks early in training."
        ),
        grid={"fractions": (0.5, 0.65, 0.8), "units": (50, 100, 200)},
    ),
    "paper": Scale(
        members=20,
        protocol=Protocol(units=50, epochs=20, lr=1e-4, n_eval=512, alpha=0.2),
        reduced="The original AND protocol (DESIGN.md §3) with Dale's law, 20 members per condition.",
        grid={"fractions": (0.5, 0.65, 0.8), "units": (50, 100, 200, 400)},
    ),
}


def ensembles(ctx: Context) -> dict[tuple[str, float, int], Run]:
    """Train (or reuse) every init × E fraction × N ensemble of the scale: {(init, e_fraction, units): Run}."""
    out = {}
    for init in INITS:
        for f in ctx.scale.grid["fractions"]:
            for n in ctx.scale.grid["units"]:
                cfg = ctx.scale.config(make_task("and"), init=init, units=n, dale=True, e_fraction=f)
                out[(init, f, n)] = ctx.train(cfg, f"{init}_e{f:g}_N{n}")
    return out


def predicted_radius(W: np.ndarray, n_exc: int) -> np.ndarray:
    """Circular-law edge of the bulk predicted from the entries (module docstring) of W (E, N, N) with its first
    `n_exc` columns excitatory: (E,)."""
    W = np.asarray(W, np.float64)
    N = W.shape[-1]
    m_e = W[:, :, :n_exc].mean(axis=(1, 2))
    m_i = W[:, :, n_exc:].mean(axis=(1, 2))
    centred = np.concatenate([W[:, :, :n_exc] - m_e[:, None, None], W[:, :, n_exc:] - m_i[:, None, None]], axis=2)
    return np.sqrt(np.sum(centred**2, axis=(1, 2)) / N)


def bulk_edge(mag: np.ndarray) -> tuple[float, int]:
    """Bulk radius and number of outliers of one spectrum by the gap rule (module docstring).

    Args:
        mag: (N,) eigenvalue moduli |λ|.
    Returns:
        (bulk radius, outlier count).
    """
    m = np.sort(np.asarray(mag, np.float64))[::-1]
    k = min(OUTLIER_CANDIDATES, m.size - 2)
    M = min(SPACING_RANKS, m.size - 1 - k)
    if k < 1 or M < 1:
        return float(m[0]), 0
    spacing = (m[k] - m[k + M]) / M
    gaps = m[:k] - m[1 : k + 1]
    big = np.nonzero(gaps > GAP_FACTOR * spacing)[0]
    n_out = int(big[-1]) + 1 if big.size else 0
    return float(m[n_out]), n_out


def spectrum_stats(eigs: np.ndarray, r_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Bulk radius, outlier count, disc radius, q90, inner radius, ring index and spectral radius of each member
    (module docstring).

    Args:
        eigs: (E, N) complex eigenvalues. r_pred: (E,) predicted radius.
    Returns:
        {name: (E,) array}.
    """
    mag = np.abs(eigs)
    edges = [bulk_edge(m) for m in mag]
    q90 = np.quantile(mag, BULK_QUANTILE, axis=1)
    inner = np.quantile(mag, INNER_QUANTILE, axis=1)
    return {
        "bulk_radius": np.array([b for b, _ in edges]),
        "n_outliers": np.array([n for _, n in edges]),
        "disc_radius": q90 / np.sqrt(BULK_QUANTILE),
        "predicted_radius": r_pred,
        "q90_radius": q90,
        "inner_radius": inner,
        "ring_index": inner / np.maximum(q90, 1e-12),
        "spectral_radius": mag.max(axis=1),
    }


def analyse(results: dict) -> tuple[list[dict], list[dict], dict]:
    """Member rows, condition rows and {(init, fraction, N): (initial eigs, trained eigs)} of the ensembles."""
    members, conditions, eigs = [], [], {}
    for (init, f, n), tr in results.items():
        W0, W1 = tr.effective("init")["W_rec"], tr.effective("final")["W_rec"]
        e0, e1 = eigenvalues(W0), eigenvalues(W1)  # float64, host
        eigs[(init, f, n)] = (e0, e1)
        n_exc = tr.config.net.n_exc
        s0, s1 = spectrum_stats(e0, predicted_radius(W0, n_exc)), spectrum_stats(e1, predicted_radius(W1, n_exc))
        ev = tr.evaluation
        for i in range(len(ev.success)):
            row = dict(init=init, e_fraction=f, units=n, member=i, success=bool(ev.success[i]))
            row.update(distance=float(ev.distance[i]), accuracy=float(ev.accuracy[i]))
            row.update({f"initial_{k}": float(v[i]) for k, v in s0.items()})
            row.update({f"trained_{k}": float(v[i]) for k, v in s1.items()})
            members.append(row)
        k, E = int(np.sum(ev.success)), len(ev.success)
        lo, hi = wilson_interval(k, E)
        row = dict(init=init, e_fraction=f, units=n, n_exc=tr.config.net.n_exc, members=E, successes=k)
        row.update(success_low=lo, success_high=hi, median_accuracy=float(np.median(ev.accuracy)))
        for stage, s in (("initial", s0), ("trained", s1)):
            for name, v in s.items():
                row[f"{stage}_{name}_median"] = float(np.median(v))
            row[f"{stage}_bulk_radius_q25"] = float(np.quantile(s["bulk_radius"], 0.25))
            row[f"{stage}_bulk_radius_q75"] = float(np.quantile(s["bulk_radius"], 0.75))
            row[f"{stage}_n_outliers_total"] = int(np.sum(s["n_outliers"]))
        conditions.append(row)
    return members, conditions, eigs


def _spread(rows: list[dict], key: str, by: str, fixed: dict) -> str:
    """Range (max - min) of `key` over the values of `by`, the other grid variables fixed: 'a–b (spread s)'."""
    sel = [r[key] for r in rows if all(r[k] == v for k, v in fixed.items())]
    return f"{min(sel):.3f}–{max(sel):.3f} (spread {max(sel) - min(sel):.3f})" if sel else "n/a"


def _verdict(rows: list[dict], key: str = "trained_bulk_radius_median", what: str = "bulk radius") -> list[str]:
    """Plain statements of how much a trained radius moves with the E fraction and with N, per init."""
    lines = []
    fracs = sorted({r["e_fraction"] for r in rows})
    units = sorted({r["units"] for r in rows})
    for init in INITS:
        sel = [r for r in rows if r["init"] == init]
        if not sel:
            continue
        v = np.array([r[key] for r in sel])
        by_f = [np.median([r[key] for r in sel if r["e_fraction"] == f]) for f in fracs]
        by_n = [np.median([r[key] for r in sel if r["units"] == n]) for n in units]
        ring = np.median([r["trained_ring_index_median"] for r in sel])
        lines.append(
            f"- **{init} init**: trained {what} {v.min():.3f}–{v.max():.3f} over the {len(sel)} conditions "
            f"(mean {v.mean():.3f}, coefficient of variation {v.std() / v.mean():.1%}); median over N by E fraction "
            + ", ".join(f"{f:g}: {x:.3f}" for f, x in zip(fracs, by_f, strict=True))
            + "; median over fractions by N "
            + ", ".join(f"{n}: {x:.3f}" for n, x in zip(units, by_n, strict=True))
            + (
                f". Ring index (r_in / q90) median {ring:.2f} (uniform disc ≈ 0.33, thin ring ≈ 1)."
                if key == "trained_bulk_radius_median"
                else "."
            )
        )
    return lines


def run(ctx: Context) -> list[str]:
    """The E/I spectrum study (module docstring): writes its files under `ctx.out`, returns the report body."""
    from jaxrnn.plots.studies import plot_ei_radius, plot_ei_spectra

    out = ctx.out
    results = ensembles(ctx)
    member_rows, rows, eigs = analyse(results)
    write_csv(out / "ei_members.csv", member_rows)
    write_csv(out / "ei_spectrum.csv", rows)
    plot_ei_spectra(eigs, out / "eigenvalues.png")
    plot_ei_radius(rows, out / "radius.png")
    table = md_table(
        [
            "init",
            "E fraction",
            "N",
            "n_E",
            "succ / E",
            "bulk radius initial",
            "bulk radius trained (IQR)",
            "outliers initial / trained (all members)",
            "disc radius R_q initial",
            "disc radius R_q trained",
            "predicted radius trained",
            "ring index trained",
            "spectral radius trained",
        ],
        [
            [
                r["init"],
                f"{r['e_fraction']:g}",
                r["units"],
                r["n_exc"],
                f"{r['successes']} / {r['members']}",
                f"{r['initial_bulk_radius_median']:.3f}",
                f"{r['trained_bulk_radius_median']:.3f} ({r['trained_bulk_radius_q25']:.3f}–"
                f"{r['trained_bulk_radius_q75']:.3f})",
                f"{r['initial_n_outliers_total']} / {r['trained_n_outliers_total']}",
                f"{r['initial_disc_radius_median']:.3f}",
                f"{r['trained_disc_radius_median']:.3f}",
                f"{r['trained_predicted_radius_median']:.3f}",
                f"{r['trained_ring_index_median']:.2f}",
                f"{r['trained_spectral_radius_median']:.3f}",
            ]
            for r in rows
        ],
    )
    successes = sum(r["successes"] for r in rows)
    total = sum(r["members"] for r in rows)
    body = [
        "## Bulk radius of W_eff by init × E fraction × N (medians over members)",
        "",
        table,
        "",
        "Definitions: eigenvalues of the effective matrix W_eff = |W| · D (Dale's law, sign per presynaptic unit) in "
        "float64 on the host; predicted radius = sqrt(Σ_ij (W_ij − m_c(j))² / N), m_c(j) the mean weight of column "
        "j's class (the circular-law edge for E/I matrices, Rajan & Abbott 2006); **outliers by the gap rule**: with "
        "|λ| sorted descending m_1 ≥ m_2 ≥ …, the typical edge spacing s = (m_{k+1} − m_{k+1+M}) / M "
        f"(k = {OUTLIER_CANDIDATES}, M = {SPACING_RANKS}), the top j eigenvalues are outliers for the largest j ≤ k "
        f"with m_j − m_(j+1) > {GAP_FACTOR:g} · s (0 if none); **bulk radius = the largest |λ| that is not an "
        "outlier** (unlike the earlier rule |λ| > 1.25 × predicted radius it puts no ceiling on the bulk edge, but "
        "on trained N = 50 and 100 networks it finds no outliers, so there it equals the spectral radius: shown, not "
        "used for the verdict); initial and trained values use the same rule. "
        f"**Disc radius R_q** = q90 / sqrt({BULK_QUANTILE:g}), q90 the {BULK_QUANTILE:.0%} quantile of |λ|: "
        "the radius of a uniform disc with that q90, independent of any outlier rule, exact for a uniform disc but "
        "biased when the density inside the disc is not uniform (low if it falls towards the edge, high if it rises), "
        "as it is not when E and I weights have unequal variances (Rajan & Abbott 2006): **the measure the claim is "
        "judged on below**. Ring index = "
        f"{INNER_QUANTILE:.0%} quantile / q90 "
        "(uniform disc ≈ 0.33, thin ring ≈ 1). Init: balanced E/I "
        "(every row sums to zero), bulk radius set to the gain 1 (`jaxrnn.network.init_dale_recurrent`); the "
        "orthogonal init takes its magnitudes from a Haar-orthogonal matrix (no Dale matrix with balanced rows is "
        "orthogonal: it is singular). Success = the criterion above.",
        "",
        "![eigenvalues](eigenvalues.png)",
        "",
        "![bulk radius vs E fraction and N](radius.png)",
        "",
        "## Comparison with the claim",
        "",
        "The claim (seed slides): non-dominant eigenvalues of trained E/I networks lie in a disc (normal init) or a "
        "ring (orthogonal init) whose radius depends on neither the E/I fraction nor N. Measured here:",
        "",
        "Judged on the disc radius R_q (no outlier rule):",
        "",
        *_verdict(rows, "trained_disc_radius_median", "disc radius R_q"),
        "",
        "For completeness, the gap-rule bulk radius (equals the spectral radius where the rule finds no outliers):",
        "",
        *_verdict(rows),
        "",
        f"Task learning: {successes} of {total} members succeed over all conditions. Whether these numbers support "
        "the claim is read off the spreads above: a spread across fractions or N comparable to the interquartile "
        "range across members is no dependence at this scale; and a ring index near 0.33 is a disc, not a ring.",
    ]
    return body


STUDY = Study(
    name=NAME,
    title="E/I (Dale's law) spectra: bulk radius vs E fraction and N",
    summary="eigenvalues of trained Dale's-law AND networks: disc or ring, bulk radius against E fraction and N",
    scales=SCALES,
    run=run,
)
