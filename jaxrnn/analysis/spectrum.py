"""Eigenvalue spectra: of the recurrent matrix W_rec (Jarne & Laje 2019, §3, "spectral migration") and of the
Jacobian at fixed points, their leading modes and frequencies, and a dynamical-regime label per member (Jarne & Laje
2019, §5: networks solving one task end in different regimes, fixed points or oscillations).

Eigenvalues are computed on the host in float64 NumPy (a non-symmetric `eig` on an accelerator is unreliable).

One definition of each quantity, used by every study:

* **The map.** jaxrnn's networks are discrete maps, h_t = (1 − a) h_{t−1} + a · act(W_rec h_{t−1} + ...). Around
  h = 0 (tanh' = 1) the linearised map is the **per-step map** (1 − a) I + a W_rec (`step_map`), which is W_rec
  itself only for a = 1 (the original Keras SimpleRNN); around a fixed point it is the Jacobian
  (`jaxrnn.analysis.fixed_points.jacobian_host`). Every frequency and unit-circle statement about the dynamics is
  made on the per-step map (its eigenvalues are 1 − a + a λ(W_rec)); W_rec's own spectrum is the object of the
  2019 "spectral migration" study and is labelled as W_rec's wherever it is shown. An eigenvalue λ = |λ| e^{iθ} of
  either map is a mode that grows (|λ| > 1) or decays (|λ| < 1) by the factor |λ| per step and rotates by θ = arg λ
  per step.
* **Outside the unit circle / unstable mode**: |λ| > 1 + `OUTSIDE_TOL`. The tolerance exists because the weights are
  float32: an orthogonal matrix stored in float32 has |λ| = 1 ± ~1e-7, which must not count as half its eigenvalues
  outside. The same test counts a fixed point's unstable modes, so a mode within 1e-5 of the circle is marginal and
  counts as not unstable.
* **Leading eigenvalue**: the one of largest modulus (Im ≥ 0 of a conjugate pair). In a discrete map the mode that
  survives longest (or grows fastest) is the one of largest |λ|, whatever its real part; "largest real part" is the
  continuous-time rule (dh/dt = A h) and would, e.g., pass over a real λ = −1.2, a growing period-2 mode. So
  |leading| is the spectral radius, and what the leading eigenvalue adds is its **frequency**: 0 when the dominant
  mode does not rotate.
* **Leading complex eigenvalue**: the one of largest modulus among those with Im(λ) ≠ 0 (Im > 0 of its pair): the
  strongest rotating mode, whose frequency is the network's intrinsic oscillation frequency even when the dominant
  mode is real. NaN when every eigenvalue is real.
* **Frequency** of λ: f = |arg λ| / (2π) cycles per step, in [0, 0.5]; in Hz, f / dt with dt = 1 ms per step
  (`DT_SECONDS`). For a leaky network (a < 1) apply it to the map's Jacobian, (1 − a) I + a · diag(act') W_rec,
  whose eigenvalues include the leak. The original slides and code used Im(λ) / (2π Re(λ)) instead (`freq_slides`;
  ≈ the same for small angles, undefined when Re λ = 0); it is reported beside, never in its place.
* **Henrici departure from normality**, normalised: sqrt(max(0, ||W||_F² − Σ|λ_i|²)) / ||W||_F, which is 0 for a
  normal matrix (orthogonal matrices included) and approaches 1 for a strongly non-normal one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DT_SECONDS = 1e-3  # one step = 1 ms
#: |λ| must exceed 1 + OUTSIDE_TOL to count as outside the unit circle (an unstable mode); see the module docstring.
OUTSIDE_TOL = 1e-5
#: |Im λ| above which an eigenvalue counts as complex (LAPACK returns real eigenvalues of a real matrix with Im = 0).
_COMPLEX_TOL = 1e-9


class SpectralSummary(NamedTuple):
    """Spectral facts of one matrix (or, from `spectral_table`, arrays with the member axis first).

    Attributes:
        radius: max |λ| (= |leading|).
        n_outside: number of eigenvalues with |λ| > 1 + OUTSIDE_TOL.
        leading: the eigenvalue of largest modulus, Im ≥ 0 (complex).
        leading_cycles_per_step: its frequency |arg λ| / (2π), cycles per step, in [0, 0.5] (0 for a real mode).
        leading_hz: the same in Hz with dt = 1 ms.
        leading_complex: the eigenvalue of largest modulus with Im > 0 (NaN if all are real).
        leading_complex_abs: its modulus.
        leading_complex_hz: its frequency in Hz.
        henrici: normalised Henrici departure from normality, in [0, 1].
    """

    radius: float | np.ndarray
    n_outside: int | np.ndarray
    leading: complex | np.ndarray
    leading_cycles_per_step: float | np.ndarray
    leading_hz: float | np.ndarray
    leading_complex: complex | np.ndarray
    leading_complex_abs: float | np.ndarray
    leading_complex_hz: float | np.ndarray
    henrici: float | np.ndarray


class Regime(NamedTuple):
    """Regime of one member.

    Attributes:
        label: "fixed-point" or "oscillatory".
        leading: leading eigenvalue of W_rec (largest |λ|).
        leading_complex: leading complex eigenvalue of W_rec (NaN if none).
        freq_hz: frequency of `leading_complex` in Hz (dt = 1 ms). freq_slides: Im/(2π Re) of it (the slides').
        speed: median relative state speed ‖h_t − h_{t−1}‖ / ‖h_t‖ over the steps it was measured on.
        period_power: fraction of the late activity's (mean-removed) power in its strongest non-zero frequency.
    """

    label: str
    leading: complex
    leading_complex: complex
    freq_hz: float
    freq_slides: float
    speed: float
    period_power: float


def eigenvalues(W) -> np.ndarray:
    """Eigenvalues of W (..., N, N), float64/complex128 on the host, shape (..., N)."""
    return np.linalg.eigvals(np.asarray(W, np.float64))


def step_map(W, alpha: float = 1.0) -> np.ndarray:
    """The per-step linear map around h = 0 of a network with leak `alpha` = a: (1 − a) I + a W, for W (..., N, N)
    (float64). Equal to W when a = 1."""
    W = np.asarray(W, np.float64)
    return (1.0 - alpha) * np.eye(W.shape[-1]) + alpha * W


def by_modulus(lam) -> np.ndarray:
    """Eigenvalues (..., N) sorted by decreasing |λ| along the last axis (stable sort)."""
    lam = np.asarray(lam)
    return np.take_along_axis(lam, np.argsort(-np.abs(lam), axis=-1, kind="stable"), axis=-1)


def n_outside(lam) -> int | np.ndarray:
    """Number of eigenvalues (..., N) outside the unit circle, |λ| > 1 + OUTSIDE_TOL, along the last axis."""
    out = np.sum(np.abs(np.asarray(lam)) > 1.0 + OUTSIDE_TOL, axis=-1)
    return int(out) if np.ndim(out) == 0 else out.astype(int)


def leading(lam) -> complex:
    """The eigenvalue of largest modulus of a real matrix's spectrum (N,), the Im ≥ 0 one of a conjugate pair."""
    lam = np.asarray(lam, np.complex128)
    lead = complex(lam[np.argmax(np.abs(lam))])
    return lead.conjugate() if lead.imag < 0 else lead


def leading_complex(lam) -> complex:
    """The eigenvalue of largest modulus with Im(λ) ≠ 0 of a real matrix's spectrum (N,), Im > 0; NaN if none."""
    lam = np.asarray(lam, np.complex128)
    cx = lam[np.abs(lam.imag) > _COMPLEX_TOL]
    if not len(cx):
        return complex(np.nan, np.nan)
    lead = complex(cx[np.argmax(np.abs(cx))])
    return lead.conjugate() if lead.imag < 0 else lead


def cycles_per_step(lam) -> np.ndarray:
    """f = |arg λ| / (2π): rotation of the mode per step, in [0, 0.5] (NaN for NaN)."""
    return np.abs(np.angle(np.asarray(lam, np.complex128))) / (2 * np.pi)


def frequency_hz(lam, dt: float = DT_SECONDS) -> np.ndarray:
    """f = |arg λ| / (2π · dt) in Hz, dt seconds per step (1 ms default)."""
    return cycles_per_step(lam) / dt


def freq_slides(lam) -> np.ndarray:
    """Im(λ) / (2π · Re(λ)), the original slides' convention (dimensionless); NaN/inf where Re λ = 0."""
    lam = np.asarray(lam, np.complex128)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.imag(lam) / (2 * np.pi * np.real(lam))


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
    lead, lead_cx = leading(eigs), leading_complex(eigs)
    return SpectralSummary(
        radius=abs(lead),
        n_outside=n_outside(eigs),
        leading=lead,
        leading_cycles_per_step=float(cycles_per_step(lead)),
        leading_hz=float(frequency_hz(lead)),
        leading_complex=lead_cx,
        leading_complex_abs=abs(lead_cx),
        leading_complex_hz=float(frequency_hz(lead_cx)),
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


def regime(
    W_rec: np.ndarray, late_states: np.ndarray, alpha: float = 1.0, speed_tol: float = 1e-3, dt: float = DT_SECONDS
) -> Regime:
    """Label a member "oscillatory" when its activity keeps moving after the input stops, else "fixed-point".

    The activity criterion decides (a network whose W_rec has complex leading eigenvalues outside the unit circle
    may still settle on fixed points through the tanh saturation); the spectrum is reported beside it.

    Args:
        W_rec: (N, N). late_states: (T, N) states in a stretch without input, after transients (e.g. the held
            memory of a flip-flop, or the end of a free run). alpha: the leak a; the eigenvalues and frequencies
            reported are the per-step map's, (1 − a) I + a W_rec. speed_tol: relative speed above which the
            activity counts as moving. dt: seconds per step.
    """
    lam = eigenvalues(step_map(W_rec, alpha))
    lc = leading_complex(lam)
    speed, power = activity_features(late_states)
    label = "oscillatory" if speed > speed_tol else "fixed-point"
    return Regime(label, leading(lam), lc, float(frequency_hz(lc, dt)), float(freq_slides(lc)), speed, power)
