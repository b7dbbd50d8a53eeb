"""Eigenvalue spectrum of the recurrent weight matrix (Jarne & Laje 2019, §3: "spectral migration").

Eigenvalues are computed on the host in float64 NumPy (a non-symmetric `eig` on an accelerator is unreliable).

Conventions: W_rec is the discrete-time map of the linearised network around h = 0 (h_t ≈ W_rec h_{t-1} for
a = 1), so an eigenvalue λ = |λ| e^{iθ} is a mode that grows (|λ| > 1) or decays (|λ| < 1) by |λ| per step and
rotates by θ = arg(λ) per step. Its **frequency** is f = θ / (2π) cycles per step, in [-0.5, 0.5]; with
dt = 1 ms per step that is 1000 · f Hz (a pair λ, λ̄ has ±f: we report |f|).

The **Henrici departure from normality**, normalised: sqrt(max(0, ||W||_F² − Σ|λ_i|²)) / ||W||_F, which is 0 for
a normal matrix (orthogonal matrices included) and approaches 1 for a strongly non-normal one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DT_SECONDS = 1e-3  # one step = 1 ms
#: |λ| must exceed 1 + OUTSIDE_TOL to count as outside the unit circle: an orthogonal matrix stored in float32 has
#: |λ| = 1 ± ~1e-7, which must not count as half its eigenvalues outside.
OUTSIDE_TOL = 1e-5


class SpectralSummary(NamedTuple):
    """Spectral facts of one matrix (or, from `spectral_table`, arrays with the member axis first).

    Attributes:
        radius: max |λ|.
        n_outside: number of eigenvalues with |λ| > 1 + OUTSIDE_TOL.
        leading: the eigenvalue with the largest real part (complex).
        leading_abs: |leading|.
        leading_cycles_per_step: |arg(leading)| / (2π), cycles per step, in [0, 0.5].
        leading_hz: the same in Hz with dt = 1 ms.
        henrici: normalised Henrici departure from normality, in [0, 1].
    """

    radius: float | np.ndarray
    n_outside: int | np.ndarray
    leading: complex | np.ndarray
    leading_abs: float | np.ndarray
    leading_cycles_per_step: float | np.ndarray
    leading_hz: float | np.ndarray
    henrici: float | np.ndarray


def eigenvalues(W) -> np.ndarray:
    """Eigenvalues of W (..., N, N), float64/complex128 on the host, shape (..., N)."""
    return np.linalg.eigvals(np.asarray(W, np.float64))


def henrici_index(W, eigs: np.ndarray | None = None) -> float:
    """Normalised Henrici departure from normality of one square matrix (see the module docstring)."""
    W = np.asarray(W, np.float64)
    eigs = eigenvalues(W) if eigs is None else eigs
    fro2 = float(np.sum(W**2))
    if fro2 == 0.0:
        return 0.0
    return float(np.sqrt(max(0.0, fro2 - float(np.sum(np.abs(eigs) ** 2)))) / np.sqrt(fro2))


def spectral_summary(W, eigs: np.ndarray | None = None) -> SpectralSummary:
    """Spectral summary of one recurrent matrix W (N, N) (float64, host).

    Args:
        W: (N, N) recurrent weights, math orientation.
        eigs: its eigenvalues (N,) if already computed.
    Returns:
        A `SpectralSummary` of Python scalars.
    """
    W = np.asarray(W, np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"spectrum: W must be square (N, N), got shape {W.shape}")
    eigs = eigenvalues(W) if eigs is None else np.asarray(eigs)
    mag = np.abs(eigs)
    lead = complex(eigs[np.argmax(eigs.real)])
    cycles = abs(float(np.angle(lead))) / (2 * np.pi)
    return SpectralSummary(
        radius=float(mag.max()),
        n_outside=int(np.sum(mag > 1.0 + OUTSIDE_TOL)),
        leading=lead,
        leading_abs=abs(lead),
        leading_cycles_per_step=cycles,
        leading_hz=cycles / DT_SECONDS,
        henrici=henrici_index(W, eigs),
    )


def spectral_table(W) -> tuple[np.ndarray, SpectralSummary]:
    """Eigenvalues and summaries of a stack of matrices.

    Args:
        W: (E, N, N), member axis first.
    Returns:
        eigenvalues (E, N) complex128 and a `SpectralSummary` whose fields are arrays of shape (E,).
    """
    W = np.asarray(W, np.float64)
    eigs = eigenvalues(W)
    rows = [spectral_summary(w, e) for w, e in zip(W, eigs, strict=True)]
    fields = {name: np.array([getattr(r, name) for r in rows]) for name in SpectralSummary._fields}
    return eigs, SpectralSummary(**fields)
