"""Figures of the population studies (success table, spectral migration, memory curves, lesions).

Every function takes numbers (NumPy arrays, dicts of rows) and writes one PNG; none computes anything beyond
drawing. The original study's curves, when given, are drawn beside jaxrnn's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_COLORS = {"orthogonal": "tab:blue", "normal": "tab:orange"}
_COND_COLORS = {"00": "tab:blue", "11": "tab:red", "10": "tab:green", "01": "tab:purple"}


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_success_table(rows: list[dict], path: Path) -> Path:
    """Bars of the success rate per task × init with 95% Wilson intervals; the original's rate as a black tick.

    Args:
        rows: dicts with task, init, rate, wilson_low, wilson_high, original_rate (rates in [0, 1]).
        path: PNG to write.
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.3 * len(tasks) + 2, 3.6))
    width = 0.8 / len(inits)
    for j, init in enumerate(inits):
        sel = {r["task"]: r for r in rows if r["init"] == init}
        x = np.array([i + (j - (len(inits) - 1) / 2) * width for i, t in enumerate(tasks) if t in sel])
        rs = [sel[t] for t in tasks if t in sel]
        rate = np.array([r["rate"] for r in rs])
        err = np.array([[r["rate"] - r["wilson_low"] for r in rs], [r["wilson_high"] - r["rate"] for r in rs]])
        ax.bar(x, 100 * rate, width, color=_COLORS.get(init), alpha=0.8, label=f"jaxrnn, {init}")
        ax.errorbar(x, 100 * rate, 100 * err, fmt="none", ecolor="k", capsize=3, lw=1)
        ax.scatter(
            x,
            [100 * r["original_rate"] for r in rs],
            marker="_",
            s=300,
            color="k",
            zorder=3,
            label="original (20 nets)" if j == 0 else None,
        )
    ax.set_xticks(range(len(tasks)), [t.replace("_", "\n") for t in tasks])
    ax.set_ylabel("networks that succeed (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Success rate with 95% Wilson intervals")
    return _save(fig, path)


def plot_success_sensitivity(rows: list[dict], path: Path) -> Path:
    """One panel per task: each init's success rate against the success rule's tolerance (one line per cell), the
    default tolerance as a dotted vertical line and the original's rate as a dashed horizontal line per init.

    Args:
        rows: dicts with task, init, tolerance, rate, default, original_rate (rates in [0, 1]).
        path: PNG to write.
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cols = min(4, len(tasks))
    nrows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False, sharey=True)
    for ax, task in zip(axes.flat, tasks, strict=False):
        sel = [r for r in rows if r["task"] == task]
        for init in dict.fromkeys(r["init"] for r in sel):
            rs = sorted((r for r in sel if r["init"] == init), key=lambda r: r["tolerance"])
            color = _COLORS.get(init)
            ax.plot([r["tolerance"] for r in rs], [100 * r["rate"] for r in rs], "o-", ms=3, color=color, label=init)
            ax.axhline(100 * rs[0]["original_rate"], color=color, ls="--", lw=0.8)
        for r in sel:
            if r["default"]:
                ax.axvline(r["tolerance"], color="0.5", ls=":", lw=1)
                break
        ax.set_title(task.replace("_", " "), fontsize=9)
        ax.set_ylim(-3, 103)
    for ax in axes.flat[len(tasks) :]:
        ax.axis("off")
    fig.supxlabel("tolerance of the success rule (fraction of the target's scale)", fontsize=9)
    axes[0, 0].set_ylabel("networks that succeed (%)")
    axes[0, 0].legend(fontsize=7, loc="lower right", title="dashed: original", title_fontsize=6)
    fig.suptitle("Success rate against the success rule's tolerance (dotted: the default)", fontsize=10)
    return _save(fig, path)


def plot_spectra(eigs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Complex-plane eigenvalues of W_rec, all members overlaid, initial (grey) vs trained (colour), one panel per
    task × init, with the unit circle.

    Args:
        eigs: {(task, init): (initial (E, N), trained (E, N))} complex eigenvalues.
        path: PNG to write.
    """
    tasks = list(dict.fromkeys(t for t, _ in eigs))
    inits = list(dict.fromkeys(i for _, i in eigs))
    fig, axes = plt.subplots(len(inits), len(tasks), figsize=(2.4 * len(tasks), 2.5 * len(inits)), squeeze=False)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for (t, init), (e0, e1) in eigs.items():
        ax = axes[inits.index(init), tasks.index(t)]
        ax.plot(circle.real, circle.imag, "k-", lw=0.6)
        ax.scatter(e0.real.ravel(), e0.imag.ravel(), s=2, color="0.6", alpha=0.5, label="initial")
        ax.scatter(
            e1.real.ravel(), e1.imag.ravel(), s=2, color=_COLORS.get(init, "tab:red"), alpha=0.5, label="trained"
        )
        ax.set_aspect("equal")
        lim = max(1.6, float(np.max(np.abs(e1))) * 1.05 if e1.size else 1.6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{t}, {init}", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="lower left", markerscale=3)
    fig.suptitle("Eigenvalues of W_rec, all members: initial (grey) vs trained", fontsize=10)
    return _save(fig, path)


def plot_spectral_histograms(
    radius: np.ndarray, n_outside: np.ndarray, success: np.ndarray, radius_init: np.ndarray, path: Path
) -> Path:
    """Histograms over all members of the trained spectral radius and of the number of eigenvalues outside the
    unit circle, split by success; the initial radius for reference.

    Args:
        radius, n_outside, success, radius_init: (M,) over every member of every ensemble.
        path: PNG to write.
    """
    success = np.asarray(success, bool)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.3))
    bins = np.linspace(min(np.min(radius_init), np.min(radius)) - 0.02, np.max(radius) + 0.02, 30)
    a.hist(radius_init, bins, color="0.7", label="initial (all)")
    a.hist(radius[success], bins, histtype="step", lw=2, color="tab:green", label=f"trained, success ({success.sum()})")
    a.hist(
        radius[~success], bins, histtype="step", lw=2, color="tab:red", label=f"trained, failure ({(~success).sum()})"
    )
    a.axvline(1.0, color="k", lw=0.6)
    a.set_xlabel("spectral radius max|λ|")
    a.set_ylabel("members")
    a.legend(fontsize=7)
    top = int(np.max(n_outside)) if len(n_outside) else 0
    ob = np.arange(-0.5, top + 1.5)
    b.hist(n_outside[success], ob, histtype="step", lw=2, color="tab:green", label="success")
    b.hist(n_outside[~success], ob, histtype="step", lw=2, color="tab:red", label="failure")
    b.set_xlabel("eigenvalues outside the unit circle (trained)")
    b.legend(fontsize=7)
    return _save(fig, path)


def plot_memory_curve(
    x: np.ndarray,
    mean: np.ndarray,
    err: np.ndarray,
    rate: np.ndarray,
    reference: np.ndarray | None,
    xlabel: str,
    title: str,
    path: Path,
) -> Path:
    """Distance (mean ± s.e.m.) and success rate against delay or size, beside the original curve.

    Args:
        x, mean, err, rate: (K,) jaxrnn's points. reference: (R, >=3) the original's x, mean, s.e.m., or None.
        xlabel, title: labels. path: PNG to write.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.errorbar(x, mean, err, marker="o", capsize=3, label="jaxrnn")
    if reference is not None:
        a.errorbar(
            reference[:, 0],
            reference[:, 1],
            reference[:, 2],
            marker="s",
            color="k",
            alpha=0.7,
            capsize=3,
            label="original (Jarne & Laje 2019)",
        )
    a.set_xlabel(xlabel)
    a.set_ylabel("distance ||target − output|| (mean ± s.e.m.)")
    a.legend(fontsize=8)
    a.set_title(title, fontsize=9)
    b.plot(x, 100 * np.asarray(rate), marker="o")
    b.set_ylim(-5, 105)
    b.set_xlabel(xlabel)
    b.set_ylabel("members that succeed (%)")
    return _save(fig, path)


def plot_lesion(
    curves: dict[str, dict],
    conditions: tuple[str, ...],
    reference: dict[str, np.ndarray | None],
    path: Path,
) -> Path:
    """The lesion study in the original's layout: one row per mode; distance per condition vs removed % (jaxrnn),
    the original's curves, and the success rate.

    Args:
        curves: {mode: {"pct": (L,), "mean": (L, C), "sem": (L, C), "rate": (L,)}}; pct = removed % of the
            eligible weights.
        conditions: the C condition names (e.g. "00", "01", "10", "11").
        reference: {mode: (R, 2 + 2 · 4) array: removed %, unused, then mean and error for 00, 11, 10, 01} or None.
        path: PNG to write.
    """
    modes = list(curves)
    fig, axes = plt.subplots(len(modes), 3, figsize=(13, 2.8 * len(modes)), squeeze=False)
    ref_conds = ("00", "11", "10", "01")
    for i, mode in enumerate(modes):
        c = curves[mode]
        a, b, r = axes[i]
        for j, cond in enumerate(conditions):
            a.errorbar(
                c["pct"],
                c["mean"][:, j],
                c["sem"][:, j],
                marker=".",
                capsize=2,
                lw=1,
                color=_COND_COLORS.get(cond),
                label=cond,
            )
        a.set_title(f"jaxrnn: {mode.replace('_', ' ')}", fontsize=9)
        a.set_ylabel("distance (mean ± s.e.m.)")
        ref = reference.get(mode)
        if ref is not None:
            for j, cond in enumerate(ref_conds):
                b.errorbar(
                    ref[:, 0],
                    ref[:, 2 + 2 * j],
                    ref[:, 3 + 2 * j],
                    marker=".",
                    capsize=2,
                    lw=1,
                    color=_COND_COLORS.get(cond),
                    label=cond,
                )
            b.set_xlim(a.get_xlim())
            b.set_title(f"original: {mode.replace('_', ' ')}", fontsize=9)
        else:
            b.text(0.5, 0.5, "original curve not available", ha="center", va="center", transform=b.transAxes)
        r.plot(c["pct"], 100 * np.asarray(c["rate"]), marker=".")
        r.set_ylim(-5, 105)
        r.set_ylabel("success (%)")
        for ax in (a, b, r):
            ax.set_xlabel("weights removed (% of eligible)", fontsize=8)
            ax.tick_params(labelsize=7)
        a.legend(fontsize=7, title="condition", title_fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_grid_heatmaps(
    x: np.ndarray, y: np.ndarray, panels: dict[str, np.ndarray], xlabel: str, ylabel: str, title: str, path: Path
) -> Path:
    """One heat map per panel over a 2-D grid (e.g. success rate and final loss over learning rate × delay), each
    cell annotated with its value.

    Args:
        x: (X,) values of the columns (drawn as labels, in order). y: (Y,) values of the rows.
        panels: {name: (Y, X) array}; a name containing "loss" is drawn on a log colour scale.
    """
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False, layout="constrained")
    for ax, (name, z) in zip(axes[0], panels.items(), strict=True):
        z = np.asarray(z, float)
        finite = z[np.isfinite(z)]
        log = "loss" in name and finite.size and np.all(finite > 0)
        norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if log else None
        im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis", norm=norm, vmin=None if log else 0,
                       vmax=None if log else (1 if "rate" in name else None))  # fmt: skip
        for (i, j), v in np.ndenumerate(z):
            ax.text(j, i, "—" if not np.isfinite(v) else (f"{v:.2f}" if "rate" in name else f"{v:.2g}"),
                    ha="center", va="center", fontsize=7, color="w")  # fmt: skip
        ax.set_xticks(range(len(x)), [f"{v:g}" for v in x], fontsize=7)
        ax.set_yticks(range(len(y)), [f"{v:g}" for v in y], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


_METHOD_COLORS = {"abs": "tab:green", "project_post": "tab:red", "project_pre": "tab:purple"}


def plot_ei_spectra(
    eigs: dict[tuple[str, str, float, int], tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path
) -> Path:
    """Complex-plane eigenvalues of W_eff of E/I networks, all members overlaid: initial (grey), trained members that
    learned (colour of the method) and those that did not (black, small); one row per method × init, one column per
    (E fraction, N) condition, with the unit circle.

    Args:
        eigs: {(method, init, e_fraction, units): (initial (E, N), trained (E, N), learned (E,) bool)}.
        path: PNG to write.
    """
    rows = list(dict.fromkeys((m, i) for m, i, _, _ in eigs))
    cols = list(dict.fromkeys((f, n) for _, _, f, n in eigs))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.3 * len(cols), 2.3 * len(rows)), squeeze=False)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for (method, init, f, n), (e0, e1, ok) in eigs.items():
        ax = axes[rows.index((method, init)), cols.index((f, n))]
        ax.plot(circle.real, circle.imag, "k-", lw=0.5)
        ax.scatter(e0.real.ravel(), e0.imag.ravel(), s=1.5, color="0.7", alpha=0.5, label="initial")
        good, bad = e1[ok], e1[~ok]
        ax.scatter(
            good.real.ravel(),
            good.imag.ravel(),
            s=1.5,
            color=_METHOD_COLORS.get(method, "tab:blue"),
            alpha=0.5,
            label="trained, learned",
        )
        ax.scatter(bad.real.ravel(), bad.imag.ravel(), s=0.8, color="k", alpha=0.4, label="trained, not learned")
        lim = max(1.3, float(np.max(np.abs(e1))) * 1.05 if e1.size else 1.3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"{method}, {init}, E {f:g}, N = {n}\n{int(ok.sum())}/{len(ok)} learned", fontsize=6)
        ax.tick_params(labelsize=5)
    axes[0, 0].legend(fontsize=4, loc="lower left", markerscale=3)
    fig.suptitle(
        "Eigenvalues of W_eff (E/I; W_rec's own spectrum, not the per-step map), all members: initial (grey) vs "
        "trained; the circle |λ| = 1 for scale",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return _save(fig, path)


def plot_ei_radius(rows: list[dict], path: Path) -> Path:
    """Trained disc radius R_q (median over learned members, interquartile bars) vs E fraction (at each N with
    several fractions) and vs N (at each fraction with several N); colour per method, marker per init, the initial
    R_q (all members) dotted. Conditions where no member learned are left out.

    Args:
        rows: condition rows with method, init, e_fraction, units, trained_disc_radius_median/_q25/_q75,
            initial_disc_radius_median.
        path: PNG to write.
    """
    fig, (ax_f, ax_n) = plt.subplots(1, 2, figsize=(10, 4))
    markers = {"normal": "o", "orthogonal": "s"}
    for ax, x_key, line_key in ((ax_f, "e_fraction", "units"), (ax_n, "units", "e_fraction")):
        for method, init in dict.fromkeys((r["method"], r["init"]) for r in rows):
            mine = [r for r in rows if r["method"] == method and r["init"] == init]
            for v in dict.fromkeys(r[line_key] for r in mine):
                sel = sorted((r for r in mine if r[line_key] == v), key=lambda r: r[x_key])
                if len(sel) < 2:
                    continue
                x = np.array([r[x_key] for r in sel], float)
                y = np.array([r["trained_disc_radius_median"] for r in sel])
                err = np.array(
                    [y - [r["trained_disc_radius_q25"] for r in sel], [r["trained_disc_radius_q75"] for r in sel] - y]
                )
                color = _METHOD_COLORS.get(method)
                label = f"{method}, {init}, {'N' if line_key == 'units' else 'E'} = {v:g}"
                ax.errorbar(
                    x,
                    y,
                    err,
                    marker=markers.get(init, "d"),
                    color=color,
                    capsize=2,
                    lw=1,
                    label=label,
                    ls="-" if init == "orthogonal" else "--",
                )
                ax.plot(x, [r["initial_disc_radius_median"] for r in sel], ":", color=color, lw=0.8)
        ax.set_xlabel("E fraction" if x_key == "e_fraction" else "N (units)")
        ax.set_ylabel("disc radius R_q = q90(|λ|) / sqrt(0.9)")
        if ax.lines:
            ax.legend(fontsize=5)
        else:
            ax.text(0.5, 0.5, "fewer than two conditions to compare", ha="center", transform=ax.transAxes, fontsize=7)
    ax_n.set_xscale("log")
    units = sorted({r["units"] for r in rows})
    ax_n.set_xticks(units, [str(n) for n in units])
    ax_n.minorticks_off()
    fig.suptitle("Trained disc radius of W_eff (median over learned members, IQR bars); dotted: at init", fontsize=9)
    return _save(fig, path)
