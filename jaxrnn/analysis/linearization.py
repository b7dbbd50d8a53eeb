"""Linearization: leading eigenmodes of W_rec and of the Jacobian at fixed points, their frequencies, and a
dynamical-regime label per member (Jarne & Laje 2019, §5: networks solving one task end in different regimes,
fixed points or oscillations, set by a few leading eigenvalues).

Eigen-decompositions run on the host in float64 (numpy): non-symmetric `eig` is not reliable on accelerators.

Two frequency conventions for an eigenvalue λ of the discrete map (1 step = `dt_ms` ms):
  * `freq_slides`  f = Im(λ) / (2π · Re(λ)): the convention of the original slides and code (dimensionless;
    ≈ arg(λ)/(2π) cycles per step for small angles, undefined when Re(λ) = 0).
  * `freq_map`     f = arg(λ) / (2π · dt): the exact rotation per step of the linearized map, in cycles per ms
    (× 1000 for Hz), i.e. the continuous-time frequency ω/(2π) of λ = exp((σ + iω) dt).
For a leaky network (a = dt/τ < 1) the map's Jacobian is (1 − a) I + a · D W_rec, so its eigenvalues already include
the leak; `freq_map` is then still the frequency of the discrete dynamics.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Modes(NamedTuple):
    """The k leading eigenmodes of a matrix (largest |λ| first).

    Attributes:
        eigvals: (k,) complex128. eigvecs: (N, k) complex128, columns. radius: () spectral radius.
        n_outside: () number of eigenvalues with |λ| > 1.
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray
    radius: float
    n_outside: int


class Regime(NamedTuple):
    """Regime of one member.

    Attributes:
        label: "fixed-point" or "oscillatory".
        leading: complex leading eigenvalue of W_rec (largest |λ|).
        leading_complex: complex leading eigenvalue among those with Im(λ) ≠ 0 (NaN if none).
        freq_slides: f = Im/(2π Re) of `leading_complex`. freq_map: arg/(2π dt) of it, cycles per ms.
        speed: median relative state speed ‖h_t − h_{t−1}‖ / ‖h_t‖ over the steps it was measured on.
        period_power: fraction of the late activity's (mean-removed) power in its strongest non-zero frequency.
    """

    label: str
    leading: complex
    leading_complex: complex
    freq_slides: float
    freq_map: float
    speed: float
    period_power: float


def leading_modes(W: np.ndarray, k: int = 6) -> Modes:
    """The k eigenvalues of largest modulus of W (N, N) and their eigenvectors, in float64 on the host."""
    W = np.asarray(W, np.float64)
    lam, vec = np.linalg.eig(W)
    order = np.argsort(-np.abs(lam), kind="stable")
    return Modes(lam[order[:k]], vec[:, order[:k]], float(np.abs(lam).max()), int(np.sum(np.abs(lam) > 1.0)))


def freq_slides(lam) -> np.ndarray:
    """f = Im(λ) / (2π · Re(λ)), the original slides' convention (dimensionless)."""
    lam = np.asarray(lam, np.complex128)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.imag(lam) / (2 * np.pi * np.real(lam))


def freq_map(lam, dt_ms: float = 1.0) -> np.ndarray:
    """f = arg(λ) / (2π · dt): rotation of the discrete map per unit time, cycles per ms (×1000 for Hz)."""
    return np.abs(np.angle(np.asarray(lam, np.complex128))) / (2 * np.pi * dt_ms)


def jacobian_tanh(W_rec: np.ndarray, h: np.ndarray, u: np.ndarray | None = None, alpha: float = 1.0) -> np.ndarray:
    """Jacobian of F(h) = (1 − a) h + a tanh(W_rec h + u) at h: (1 − a) I + a · diag(1 − tanh²(·)) W_rec."""
    W_rec = np.asarray(W_rec, np.float64)
    z = W_rec @ np.asarray(h, np.float64) + (0.0 if u is None else np.asarray(u, np.float64))
    J = (1.0 - np.tanh(z) ** 2)[:, None] * W_rec
    return (1.0 - alpha) * np.eye(len(h)) + alpha * J if alpha != 1.0 else J


def leading_complex(lam: np.ndarray) -> complex:
    """The eigenvalue of largest modulus among those with Im(λ) ≠ 0 (NaN if all are real)."""
    cx = lam[np.abs(np.imag(lam)) > 1e-9]
    return complex(cx[np.argmax(np.abs(cx))]) if len(cx) else complex(np.nan, np.nan)


def activity_features(h: np.ndarray) -> tuple[float, float]:
    """Speed and periodicity of a stretch of activity.

    Args:
        h: (T, N) states, e.g. the last steps of a trial without input.
    Returns:
        (median relative speed ‖h_t − h_{t−1}‖ / max(‖h_t‖, 1e-6), fraction of mean-removed power in the strongest
        non-zero frequency of the states' FFT, summed over units).
    """
    h = np.asarray(h, np.float64)
    speed = np.linalg.norm(np.diff(h, axis=0), axis=1) / np.maximum(np.linalg.norm(h[1:], axis=1), 1e-6)
    spec = np.sum(np.abs(np.fft.rfft(h - h.mean(0), axis=0)) ** 2, axis=1)[1:]
    power = float(spec.max() / spec.sum()) if spec.sum() > 0 else 0.0
    return float(np.median(speed)), power


def regime(W_rec: np.ndarray, late_states: np.ndarray, speed_tol: float = 1e-3, dt_ms: float = 1.0) -> Regime:
    """Label a member "oscillatory" when its activity keeps moving after the input stops, else "fixed-point".

    The activity criterion decides (a network whose W_rec has complex leading eigenvalues outside the unit circle
    may still settle on fixed points through the tanh saturation); the spectrum is reported beside it.

    Args:
        W_rec: (N, N). late_states: (T, N) states in a stretch without input, after transients (e.g. the held
            memory of a flip-flop, or the end of a free run). speed_tol: relative speed above which the activity
            counts as moving.
    """
    lam = leading_modes(W_rec, k=np.asarray(W_rec).shape[0]).eigvals
    lc = leading_complex(lam)
    speed, power = activity_features(late_states)
    label = "oscillatory" if speed > speed_tol else "fixed-point"
    return Regime(label, complex(lam[0]), lc, float(freq_slides(lc)), float(freq_map(lc, dt_ms)), speed, power)
