"""Timed responses: time reproduction (a pulse reproduced after a delay) and a pulse-triggered oscillation.

Source: Jarne & Laje 2019 (arXiv 1906.01094) and katejarne/RNN_study_with_keras. Paper presets (DESIGN.md §4):

time reproduction — T = 300; a pulse (or none) on [50, 70), its 20 samples smoothed by a normalised 10-point
Hann window; the target is 0.045 except on [70 + delay, 90 + delay), where it is a bump (a box of 20 convolved
with 0.055 · gaussian(20, σ = 12), peak 0.985) on pulse trials and 0 on no-pulse trials (as the original);
Gaussian noise of std 0.03 on the input and on the target; delay 20 (up to 210). Static: T and the templates'
shape (pulse_width, smooth, bump_scale, bump_sigma); traced: delay, pulse_start, noises, baseline, peak_tolerance.

oscillation — the original paper generator (`code_paper_rep/generate_data_set_oscilator.py`, mem_gap 200): T = 420;
on pulse trials the input is a box of 40 ones on [100, 140) convolved ('same' mode, scipy's: the size of the box,
centred) with a symmetric 15-point Hann window divided by its sum, 0 on no-pulse trials; Gaussian input noise of std
0.1 at every step. The target is 0.2 × (0.01 everywhere, except on [160, 380), where it is, on pulse trials, the
'same'-mode convolution of that 220-step window of ones with the full-length sine sin(2π · 12 · x / 420),
x = 0 … 419 (period 35 steps), and 0 on no-pulse trials): a sine of amplitude 1.74 tapered over the window's first
and last ~10 steps, 0.002 outside the window; no target noise. Static: everything that shapes the target template
(T, pulse_width, smooth, start, stop, period, scale, baseline); traced: pulse_start, noise.

Training presets (DESIGN.md §3): early stop below 1e-3, 15,000 trials, batch 64, N = 50, no RNN bias.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.tasks.base import Task, Trial, _check, add_noise, place


def _same(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Convolution of `a` with `v` in scipy.signal.convolve's 'same' mode: the centred len(a) samples of the full
    convolution (unlike np.convolve's 'same', which keeps max(len(a), len(v)) samples)."""
    full = np.convolve(a, v, mode="full")
    lo = (len(full) - len(a)) // 2
    return full[lo : lo + len(a)]


def _hann(window: int) -> np.ndarray:
    """The symmetric Hann window of `window` points (scipy.signal.windows.hann(window))."""
    n = np.arange(window)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / (window - 1))


def _hann_box(width: int, window: int) -> np.ndarray:
    """A box of `width` ones convolved ('same' mode) with a normalised symmetric Hann window: tapered edges, as the
    original generators smooth their pulses. (width,)"""
    hann = _hann(window)
    return _same(np.ones(width), hann / hann.sum())


def _bump(width: int, scale: float, sigma: float) -> np.ndarray:
    """A box of `width` convolved (mode 'same') with scale · gaussian(width, sigma)."""
    n = np.arange(width) - (width - 1) / 2
    return _same(np.ones(width), scale * np.exp(-0.5 * (n / sigma) ** 2))


@dataclasses.dataclass(frozen=True)
class TimeReproduction(Task):
    """Reproduce a stimulus as a bump `delay` steps after it ends."""

    name: ClassVar[str] = "time_reproduction"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("no_pulse", "pulse")
    STATIC: ClassVar[tuple[str, ...]] = ("T", "pulse_width", "smooth", "bump_scale", "bump_sigma")
    success_rule: ClassVar[str] = (
        "a pulse trial is correct when the output's peak lies within ±10 steps of the noise-free target bump's peak "
        "and within ±0.5 × the bump's height of its top (50–150%), and the output stays within ±0.25 × that height "
        "of the baseline 0.045 at every step more than 10 steps away from the bump; a no-pulse trial when the output "
        "stays within ±0.25 × the bump's height of the baseline at every step"
    )

    T: int = 300
    noise: float = 0.03
    target_noise: float = 0.03
    delay: int = 20
    pulse_start: int = 50
    pulse_width: int = 20
    smooth: int = 10
    bump_scale: float = 0.055
    bump_sigma: float = 12.0
    baseline: float = 0.045
    peak_tolerance: int = 10

    def __post_init__(self):
        super().__post_init__()
        _check(self, self.delay >= 0, "delay", f"must be >= 0, got {self.delay}")
        _check(self, self.pulse_start >= 0, "pulse_start", f"must be >= 0, got {self.pulse_start}")
        _check(self, self.pulse_width > 0, "pulse_width", f"must be > 0, got {self.pulse_width}")
        end = self.pulse_start + 2 * self.pulse_width + self.delay
        _check(self, end <= self.T, "delay", f"={self.delay} does not fit in T={self.T}: the bump ends at {end}")
        _check(self, self.smooth >= 2, "smooth", f"must be >= 2, got {self.smooth}")
        # noise-free templates, computed once on the host: the smoothed pulse and the bump (both pulse_width long)
        object.__setattr__(self, "_stim_template", _hann_box(self.pulse_width, self.smooth).astype(np.float32))
        bump = _bump(self.pulse_width, self.bump_scale, self.bump_sigma).astype(np.float32)
        object.__setattr__(self, "_bump_template", bump)

    @property
    def bump_start(self) -> int:
        return self.pulse_start + self.pulse_width + self.delay

    def _clean(self, condition, p):
        """Noise-free input and target (T,) of a trial of `condition` (1 = pulse), and the bump's window."""
        t = jnp.arange(self.T)
        bump_start = p["pulse_start"] + self.pulse_width + p["delay"]
        window = (t >= bump_start) & (t < bump_start + self.pulse_width)
        target = jnp.where(window, condition * place(t, bump_start, self._bump_template), p["baseline"])
        return condition * place(t, p["pulse_start"], self._stim_template), target, window

    def sample(self, key, params=None):
        p = self._params(params)
        key_c, key_in, key_out = jax.random.split(key, 3)
        condition = jax.random.bernoulli(key_c).astype(jnp.int32)
        stim, target, window = self._clean(condition, p)
        return Trial(
            inputs=add_noise(key_in, stim, p["noise"])[:, None],
            targets=add_noise(key_out, target, p["target_noise"])[:, None],
            mask=jnp.ones((self.T, 1), jnp.float32),
            condition=condition,
            response=window.astype(jnp.int32)[:, None],
        )

    def correct(self, trial, outputs, params=None):
        """Pulse: the output's peak within ±`peak_tolerance` steps of the noise-free bump's and within ±2 ×
        `tolerance` × the bump's height (peak - baseline) of its top; quiet elsewhere. Quiet (no-pulse trials: every
        step; pulse trials: every step more than `peak_tolerance` steps from the bump's window): within ±`tolerance` ×
        the bump's height of the baseline. Calibration: tests/test_success_rules.py."""
        p = self._params(params)
        _, clean, _ = self._clean(trial.condition, p)
        y = outputs[:, 0]
        t = jnp.arange(self.T)
        band = p["tolerance"] * (float(self._bump_template.max()) - p["baseline"])
        peak_t, peak = jnp.argmax(clean), jnp.max(clean)
        hit = (jnp.abs(jnp.argmax(y) - peak_t) <= p["peak_tolerance"]) & (jnp.abs(jnp.max(y) - peak) <= 2 * band)
        start = p["pulse_start"] + self.pulse_width + p["delay"]
        near = (t >= start - p["peak_tolerance"]) & (t < start + self.pulse_width + p["peak_tolerance"])
        judged = jnp.where(trial.condition == 1, ~near, True)
        quiet = jnp.all(jnp.where(judged, jnp.abs(y - p["baseline"]) <= band, True))
        return quiet & jnp.where(trial.condition == 1, hit, True)


@dataclasses.dataclass(frozen=True)
class Oscillation(Task):
    """A pulse triggers a finite oscillation (the original paper generator; module docstring).

    Correct trial (tolerance τ, default 0.25; A = the largest |value| of the pulse target, 1.74): a pulse trial when,
    inside the window [start, stop), the output correlates >= 1 - 0.8 τ (0.8) with the noise-free pulse target
    (`target_template`, the original's convolved sine, taper included) and its standard deviation there is
    1 ± 1.2 τ (70–130%) of the target's, and outside [start - 20, stop + 20) it stays within ±τ A of the target at
    every step; a no-pulse trial when the output stays within ±τ A (0.44) of the target at every step.
    """

    name: ClassVar[str] = "oscillation"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("no_pulse", "pulse")
    STATIC: ClassVar[tuple[str, ...]] = ("T", "pulse_width", "smooth", "start", "stop", "period", "scale", "baseline")
    success_rule: ClassVar[str] = (
        "a pulse trial is correct when, in the window [160, 380), the output correlates ≥ 0.8 with the noise-free "
        "target (the original's tapered sine of period 35 steps) and its standard deviation is 70–130% of the "
        "target's, and it stays within ±0.44 (0.25 × the target's amplitude 1.74) of the target before step 140 and "
        "from step 400; a no-pulse trial when the output stays within ±0.44 of the target throughout"
    )

    T: int = 420
    noise: float = 0.1
    pulse_start: int = 100
    pulse_width: int = 40
    smooth: int = 15
    start: int = 160
    stop: int = 380
    #: period (steps) of the full-length sine the window is convolved with (the original: 12 cycles over 420 steps)
    period: float = 35.0
    #: factor on the whole target (the original's 0.20)
    scale: float = 0.2
    #: target level outside the window before `scale` (the original's 0.01, so 0.002 in the target)
    baseline: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        _check(self, self.period > 0, "period", f"must be > 0, got {self.period}")
        _check(self, self.pulse_width > 0, "pulse_width", f"must be > 0, got {self.pulse_width}")
        _check(self, self.smooth >= 2, "smooth", f"must be >= 2, got {self.smooth}")
        _check(self, self.pulse_start >= 0, "pulse_start", f"must be >= 0, got {self.pulse_start}")
        end = self.pulse_start + self.pulse_width
        _check(self, end <= self.start, "pulse_start", f"the pulse must end (at {end}) by start={self.start}")
        _check(self, self.start < self.stop <= self.T, "stop", f"must satisfy start < stop <= T={self.T}")
        # the noise-free templates, computed once on the host (float64, stored as float32)
        object.__setattr__(self, "_stim_template", _hann_box(self.pulse_width, self.smooth).astype(np.float32))
        sine = np.sin(2 * np.pi * np.arange(self.T) / self.period)
        outside = np.full(self.T, self.scale * self.baseline)
        pulse_target = outside.copy()
        pulse_target[self.start : self.stop] = self.scale * _same(np.ones(self.stop - self.start), sine)
        no_pulse_target = outside.copy()
        no_pulse_target[self.start : self.stop] = 0.0
        object.__setattr__(self, "_targets", np.stack([no_pulse_target, pulse_target]).astype(np.float32))

    @property
    def target_template(self) -> np.ndarray:
        """The noise-free target of a pulse trial, float32 (T,)."""
        return self._targets[1]

    def sample(self, key, params=None):
        p = self._params(params)
        key_c, key_in = jax.random.split(key)
        condition = jax.random.bernoulli(key_c).astype(jnp.int32)
        t = jnp.arange(self.T)
        stim = condition * place(t, p["pulse_start"], self._stim_template)
        window = (t >= self.start) & (t < self.stop)
        return Trial(
            inputs=add_noise(key_in, stim, p["noise"])[:, None],
            targets=jnp.asarray(self._targets)[condition][:, None],
            mask=jnp.ones((self.T, 1), jnp.float32),
            condition=condition,
            response=window.astype(jnp.int32)[:, None],
        )

    def correct(self, trial, outputs, params=None):
        """The class docstring's rule. Calibration: tests/test_success_rules.py."""
        p = self._params(params)
        tol = p["tolerance"]
        w = (trial.response[:, 0] == 1).astype(outputs.dtype)
        n = w.sum()
        y, s = outputs[:, 0], jnp.asarray(self.target_template)
        my, ms = (w * y).sum() / n, (w * s).sum() / n
        cov = (w * (y - my) * (s - ms)).sum() / n
        sy = jnp.sqrt((w * (y - my) ** 2).sum() / n)
        ss = jnp.sqrt((w * (s - ms) ** 2).sum() / n)
        corr = cov / jnp.maximum(sy * ss, 1e-12)
        ratio = sy / ss
        hit = (corr >= 1 - 0.8 * tol) & (jnp.abs(ratio - 1) <= 1.2 * tol)
        t = jnp.arange(self.T)
        band = tol * float(np.abs(self.target_template).max())
        outside = (t < self.start - self.settle) | (t >= self.stop + self.settle)
        judged = jnp.where(trial.condition == 1, outside, True)
        quiet = jnp.all(jnp.where(judged, jnp.abs(y - trial.targets[:, 0]) <= band, True))
        return quiet & jnp.where(trial.condition == 1, hit, True)
