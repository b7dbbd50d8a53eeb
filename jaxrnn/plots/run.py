"""Figures of one run directory: loss curves, sample trials, eigenvalues, W_rec heat map, weight histogram.

Every figure function takes host numbers (numpy arrays, member axis first) and writes one PNG; nothing here runs a
network. The members of a grid run are named by their cell (`cell_label`), and `loss_curves` colours them by cell.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

_DPI = 110


def _save(fig, path: str | Path) -> Path:
    """Write `fig` as PNG atomically (a temporary file in the same folder, renamed over `path`) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=_DPI, bbox_inches="tight")
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def cell_label(values: Mapping[str, object]) -> str:
    """A grid cell in words, e.g. "delay = 60, init = normal" (numbers in `:g` form; "" for no values)."""

    def word(v) -> str:
        if isinstance(v, (tuple, list, np.ndarray)):
            return "(" + ", ".join(word(x) for x in v) + ")"
        if isinstance(v, (bool, np.bool_, str)):
            return str(v)
        if isinstance(v, (int, float, np.integer, np.floating)):
            return f"{v:g}"
        return str(v)

    return ", ".join(f"{name} = {word(v)}" for name, v in values.items())


def _cell_colors(n: int) -> list:
    """`n` distinguishable colours: tab10 up to ten cells, else evenly spaced on viridis."""
    if n <= 10:
        return [plt.cm.tab10(c) for c in range(n)]
    return [plt.cm.viridis(c / (n - 1)) for c in range(n)]


def loss_curves(
    loss: np.ndarray,
    stop_epoch: np.ndarray,
    diverged: np.ndarray,
    path: str | Path,
    title: str = "",
    cells: Sequence[tuple[str, np.ndarray]] | None = None,
) -> Path:
    """Training loss of every member against epoch (log scale).

    Args:
        loss: (E, epochs) mean training loss per epoch (NaN where not run or diverged).
        stop_epoch: (E,) epoch after which a member stopped early (0 = never); marked with a dot.
        diverged: (E,) bool; without `cells` those members are drawn in red, with `cells` dashed in their cell's
            colour.
        path: PNG to write.
        title: prefix of the figure title.
        cells: the cells of a grid run, ((label, member positions), ...) (e.g. from `Run.cells()` and `cell_label`):
            every member is drawn in its cell's colour and the legend names each cell once. None: members coloured
            along viridis, no legend.
    """
    loss = np.asarray(loss, np.float64)
    E, n = loss.shape
    epochs = np.arange(1, n + 1)
    colors = [plt.cm.viridis(i / max(E - 1, 1)) for i in range(E)]
    handles = []
    if cells is not None:
        for (label, positions), color in zip(cells, _cell_colors(len(cells)), strict=True):
            for i in np.asarray(positions, int):
                colors[i] = color
            handles.append(matplotlib.lines.Line2D([], [], color=color, lw=1.5, label=label))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i in range(E):
        y = np.where(np.isfinite(loss[i]) & (loss[i] > 0), loss[i], np.nan)
        color, style = colors[i], "-"
        if diverged[i]:
            color, style = (color, "--") if cells is not None else ("tab:red", "-")
        ax.plot(epochs, y, color=color, ls=style, lw=1, alpha=0.8)
        s = int(stop_epoch[i])
        if 0 < s <= n and np.isfinite(y[s - 1]):
            ax.plot([s], [y[s - 1]], "o", color=color, ms=3)
    if np.any(np.isfinite(loss) & (loss > 0)):
        ax.set_yscale("log")
    if handles:
        ax.legend(handles=handles, fontsize=7, ncol=1 + (len(handles) - 1) // 8, loc="upper right")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    n_div, n_stop = int(np.sum(diverged)), int(np.sum(np.asarray(stop_epoch) > 0))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"{title + ': ' if title else ''}{E} members, stopped early {n_stop}, diverged {n_div}")
    return _save(fig, path)


class TrialPanel(NamedTuple):
    """One pair of columns of `trial_panels`: some trials' inputs (left) and their targets and outputs (right).

    Attributes:
        inputs: (K, T, n_in). targets: (K, T, n_out).
        outputs: optional {legend name: (K, T, n_out)} network outputs on these trials (e.g. best and worst member).
        labels: optional per-trial labels (e.g. the condition).
        heading: optional words added to the two column titles (e.g. the grid cell the trials were sampled for).
    """

    inputs: np.ndarray
    targets: np.ndarray
    outputs: Mapping[str, np.ndarray] | None = None
    labels: Sequence[str] | None = None
    heading: str = ""


def trials(
    inputs: np.ndarray,
    targets: np.ndarray,
    path: str | Path,
    outputs: dict[str, np.ndarray] | None = None,
    labels: list[str] | None = None,
    title: str = "",
    input_names: list[str] | None = None,
) -> Path:
    """A few trials, one row each: inputs on the left (a legend names each channel); targets (black) and network
    outputs on the right.

    Args:
        inputs: (K, T, n_in). targets: (K, T, n_out).
        outputs: optional {legend name: (K, T, n_out)} network outputs (e.g. best and worst member).
        labels: optional per-trial labels (e.g. the condition).
        input_names: optional names of the n_in channels, shown as "input i (name)"; else "input i".
        path: PNG to write.
    """
    return trial_panels([TrialPanel(inputs, targets, outputs, labels)], path, title, input_names)


def trial_panels(
    panels: Sequence[TrialPanel], path: str | Path, title: str = "", input_names: list[str] | None = None
) -> Path:
    """Trials side by side, one pair of columns per panel (each panel its own trials, e.g. one per member when members
    differ in task parameters), one row per trial: inputs (a legend names each channel), then targets (black) and
    network outputs.

    Args:
        panels: the panels, left to right; all with the same T (a panel with fewer trials leaves its lower rows empty).
        path: PNG to write.
        title: figure title.
        input_names: optional names of the n_in channels, shown as "input i (name)"; else "input i".
    """
    K = max(len(p.inputs) for p in panels)
    fig, axes = plt.subplots(K, 2 * len(panels), figsize=(10 * len(panels), 1.8 * K + 0.6), squeeze=False, sharex=True)
    styles = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for j, panel in enumerate(panels):
        inputs, targets = np.asarray(panel.inputs), np.asarray(panel.targets)
        n, T, n_in = inputs.shape
        channels = [f"input {i}" + (f" ({input_names[i]})" if input_names else "") for i in range(n_in)]
        heading = f", {panel.heading}" if panel.heading else ""
        first = sum(len(p.outputs or {}) for p in panels[:j])  # output colours continue across panels
        t = np.arange(T)
        for k in range(K):
            a_in, a_out = axes[k, 2 * j], axes[k, 2 * j + 1]
            if k >= n:
                a_in.axis("off")
                a_out.axis("off")
                continue
            a_in.plot(t, inputs[k], lw=0.8, label=channels)
            a_in.set_ylabel(panel.labels[k] if panel.labels else f"trial {k}", fontsize=8)
            a_out.plot(t, targets[k], color="black", lw=1.5, label="target")
            for c, (name, out) in enumerate((panel.outputs or {}).items(), start=first):
                a_out.plot(t, np.asarray(out)[k], color=styles[c % len(styles)], lw=1, label=name)
            if k == 0:
                a_in.set_title("inputs" + heading)
                a_in.legend(fontsize=7, loc="upper left")
                a_out.set_title(("target and outputs" if panel.outputs else "target") + heading)
                handles, names = a_out.get_legend_handles_labels()
                uniq = dict(zip(names, handles, strict=False))
                a_out.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("time step (ms)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def eigenvalues(W_init: np.ndarray, W_final: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Eigenvalues of W_rec of every member before and after training in the complex plane, with the unit circle.

    Args:
        W_init, W_final: (E, N, N) recurrent matrices (eigenvalues computed here on the host in float64).
        path: PNG to write.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    for ax, W, name in zip(axes, (W_init, W_final), ("before training", "after training"), strict=False):
        W = np.asarray(W, np.float64)
        ok = np.all(np.isfinite(W), axis=(1, 2))
        lam = np.linalg.eigvals(W[ok]) if ok.any() else np.zeros((0, 0), complex)
        ax.plot(circle.real, circle.imag, color="gray", lw=1)
        if lam.size:
            ax.scatter(lam.real.ravel(), lam.imag.ravel(), s=4, alpha=0.5)
            radius = np.abs(lam).max(axis=1)
            ax.set_title(f"{name}: spectral radius median {np.median(radius):.3f}")
        else:
            ax.set_title(f"{name}: no finite member")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("Re λ")
    axes[0].set_ylabel("Im λ")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def weight_matrix(W_init: np.ndarray, W_final: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Heat maps of one member's W_rec (N, N) before and after training (row i = to unit i, column j = from j)."""
    W_init, W_final = np.asarray(W_init), np.asarray(W_final)
    finite = np.concatenate([W_init[np.isfinite(W_init)], W_final[np.isfinite(W_final)]])
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, W, name in zip(axes, (W_init, W_final), ("before", "after"), strict=False):
        im = ax.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"W_rec {name}")
        ax.set_xlabel("from unit j")
        ax.set_ylabel("to unit i")
    fig.colorbar(im, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def weight_histogram(W_init: np.ndarray, W_final: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Histogram of all W_rec entries of all members before and after training, each with its normal fit."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for W, name, color in ((W_init, "before", "tab:gray"), (W_final, "after", "tab:blue")):
        w = np.asarray(W, np.float64).ravel()
        w = w[np.isfinite(w)]
        if not w.size:
            continue
        mu, sd = float(w.mean()), float(w.std())
        ax.hist(w, bins=60, density=True, alpha=0.45, color=color, label=f"{name}")
        if sd > 0:
            x = np.linspace(w.min(), w.max(), 200)
            ax.plot(
                x,
                np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
                color=color,
                lw=1.5,
                label=f"N({mu:.3f}, {sd:.3f}²)",
            )
    ax.set_xlabel("recurrent weight")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)
