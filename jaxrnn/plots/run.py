"""Figures of one run directory: loss curves, sample trials, eigenvalues, W_rec heat map, weight histogram.

Every function takes host numbers (numpy arrays, member axis first) and writes one PNG; nothing here runs a network.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
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


def loss_curves(
    loss: np.ndarray, stop_epoch: np.ndarray, diverged: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Training loss of every member against epoch (log scale).

    Args:
        loss: (E, epochs) mean training loss per epoch (NaN where not run or diverged).
        stop_epoch: (E,) epoch after which a member stopped early (0 = never); marked with a dot.
        diverged: (E,) bool; those members are drawn in red.
        path: PNG to write.
    """
    loss = np.asarray(loss, np.float64)
    E, n = loss.shape
    epochs = np.arange(1, n + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i in range(E):
        y = np.where(np.isfinite(loss[i]) & (loss[i] > 0), loss[i], np.nan)
        color = "tab:red" if diverged[i] else plt.cm.viridis(i / max(E - 1, 1))
        ax.plot(epochs, y, color=color, lw=1, alpha=0.8)
        s = int(stop_epoch[i])
        if 0 < s <= n and np.isfinite(y[s - 1]):
            ax.plot([s], [y[s - 1]], "o", color=color, ms=3)
    if np.any(np.isfinite(loss) & (loss > 0)):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    n_div, n_stop = int(np.sum(diverged)), int(np.sum(np.asarray(stop_epoch) > 0))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"{title + ': ' if title else ''}{E} members, stopped early {n_stop}, diverged {n_div}")
    return _save(fig, path)


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
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    K, T, n_in = inputs.shape
    channels = [f"input {i}" + (f" ({input_names[i]})" if input_names else "") for i in range(n_in)]
    t = np.arange(T)
    fig, axes = plt.subplots(K, 2, figsize=(10, 1.8 * K + 0.6), squeeze=False, sharex=True)
    styles = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for k in range(K):
        a_in, a_out = axes[k]
        a_in.plot(t, inputs[k], lw=0.8, label=channels)
        a_in.set_ylabel(labels[k] if labels else f"trial {k}", fontsize=8)
        a_out.plot(t, targets[k], color="black", lw=1.5, label="target")
        for j, (name, out) in enumerate((outputs or {}).items()):
            a_out.plot(t, np.asarray(out)[k], color=styles[j % len(styles)], lw=1, label=name)
        if k == 0:
            a_in.set_title("inputs")
            a_in.legend(fontsize=7, loc="upper left")
            a_out.set_title("target and outputs" if outputs else "target")
            handles, names = a_out.get_legend_handles_labels()
            uniq = dict(zip(names, handles, strict=False))
            a_out.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("time step (ms)")
    axes[-1, 1].set_xlabel("time step (ms)")
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
