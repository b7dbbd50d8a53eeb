"""Figures of state-space dynamics: 3-D PC trajectories, memory cubes, cube scores, fixed points, eigenvalues,
similarity matrices and onset-aligned responses. Every function takes numbers and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_KIND_COLORS = {"stable": "black", "saddle": "tab:red", "unstable": "tab:orange"}


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _pattern_colors(n: int):
    return plt.get_cmap("tab10" if n <= 10 else "tab20")(np.arange(n) % 20)


def _draw_cube(ax, centroids: np.ndarray, names: list[str], colors, points=None) -> None:
    """Vertices (P, 3), edges between patterns one bit apart, optional fixed points (Q, 3) as crosses."""
    P = centroids.shape[0]
    n_bits = int(np.log2(P))
    for a in range(P):
        for b in range(n_bits):
            c = a ^ (1 << b)
            if c > a:
                seg = centroids[[a, c]]
                ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color="0.6", lw=0.8)
    ax.scatter(centroids[:, 0], centroids[:, 1], centroids[:, 2], c=colors[:P], s=40, depthshade=False)
    for p, name in enumerate(names):
        ax.text(*centroids[p], name, fontsize=7)
    if points is not None and len(points):
        ax.scatter(points[:, 0], points[:, 1], points[:, 2], marker="x", c="k", s=30, depthshade=False)
    ax.set_xlabel("PC1", fontsize=7)
    ax.set_ylabel("PC2", fontsize=7)
    ax.set_zlabel("PC3", fontsize=7)
    ax.tick_params(labelsize=6)


def trajectory_3d(
    scores: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    path: str | Path,
    *,
    centroids: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """One member's trajectory in its top-3 PCs, coloured by the memory state it holds.

    Args:
        scores: (T, 3) projected states. labels: (T,) pattern per step (-1 = in transit, drawn grey).
        names: pattern names. centroids: (P, 3) optional cube vertices. fixed: (Q, 3) optional fixed points.
    """
    colors = _pattern_colors(len(names))
    fig = plt.figure(figsize=(5, 4.5))
    ax = fig.add_subplot(projection="3d")
    ax.plot(scores[:, 0], scores[:, 1], scores[:, 2], color="0.8", lw=0.5)
    for p, name in enumerate(names):
        s = scores[labels == p]
        ax.scatter(s[:, 0], s[:, 1], s[:, 2], color=colors[p], s=3, label=name, depthshade=False)
    if centroids is not None:
        _draw_cube(ax, centroids, names, colors, fixed)
    ax.legend(fontsize=6, markerscale=3, loc="upper left", ncol=2)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def cubes(centroids: list[np.ndarray], names: list[str], titles: list[str], path: str | Path, fixed=None) -> Path:
    """Several members' cubes side by side.

    Args:
        centroids: one (P, 3) array per member (PC space). names: pattern names. titles: one per member.
        fixed: optional list of (Q, 3) stable fixed points per member, drawn as crosses.
    """
    n = len(centroids)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = plt.figure(figsize=(3.2 * cols, 3.0 * rows))
    colors = _pattern_colors(len(names))
    for i, c in enumerate(centroids):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        _draw_cube(ax, np.asarray(c), names, colors, None if fixed is None else fixed[i])
        ax.set_title(titles[i], fontsize=8)
    return _save(fig, path)


def cube_scores(r2: np.ndarray, path: str | Path, *, reference: float | None = None, label: str = "R²") -> Path:
    """Histogram of the cube score over the ensemble; the reference network's score as a red line."""
    r2 = np.asarray(r2, float)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(r2[np.isfinite(r2)], bins=np.linspace(min(0.0, np.nanmin(r2)), 1.0, 21), color="tab:blue", alpha=0.8)
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color="tab:red", label=f"reference network {reference:.3f}")
        ax.legend(fontsize=7)
    ax.set_xlabel(f"cube score ({label} of centroids on bits)")
    ax.set_ylabel("members")
    return _save(fig, path)


def fixed_point_counts(counts: dict[str, np.ndarray], path: str | Path, names: list[str] | None = None) -> Path:
    """Stacked bars of fixed points per member by kind.

    Args:
        counts: kind -> (E,) counts. names: bar labels (member ids by default).
    """
    kinds = [k for k in ("stable", "saddle", "unstable") if k in counts]
    E = len(next(iter(counts.values())))
    x = np.arange(E)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * E + 2), 3))
    bottom = np.zeros(E)
    for k in kinds:
        ax.bar(x, counts[k], bottom=bottom, color=_KIND_COLORS[k], label=k)
        bottom = bottom + np.asarray(counts[k])
    ax.axhline(8, color="0.5", ls="--", lw=0.8)
    ax.set_xticks(x, names or [str(i) for i in x], fontsize=7, rotation=90 if E > 12 else 0)
    ax.set_ylabel("fixed points")
    ax.legend(fontsize=7)
    return _save(fig, path)


def eigenvalues(eigs: list[np.ndarray], path: str | Path, labels: list[str] | None = None, title: str = "") -> Path:
    """Eigenvalues in the complex plane with the unit circle (one colour per set, e.g. W_rec and Jacobians)."""
    fig, ax = plt.subplots(figsize=(4, 4))
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.6", lw=0.8)
    for i, lam in enumerate(eigs):
        lam = np.asarray(lam).ravel()
        ax.scatter(lam.real, lam.imag, s=5, alpha=0.6, label=None if labels is None else labels[i])
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    if labels:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def similarity(matrix: np.ndarray, path: str | Path, labels: list[str], title: str = "linear CKA") -> Path:
    """Heat map of a pairwise similarity matrix (members in the given order)."""
    fig, ax = plt.subplots(figsize=(0.3 * len(labels) + 3, 0.3 * len(labels) + 2.5))
    im = ax.imshow(matrix, cmap="viridis", vmin=np.nanmin(matrix), vmax=np.nanmax(matrix))
    ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=90)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def onset_responses(aligned: np.ndarray, onsets, path: str | Path, title: str = "") -> Path:
    """One member's onset-aligned mean responses (K, window), one line per onset."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(onsets)))
    for k, o in enumerate(onsets):
        ax.plot(aligned[k], color=colors[k], lw=1, label=f"onset {o}")
    ax.set_xlabel("steps after stimulus onset")
    ax.set_ylabel("output")
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
