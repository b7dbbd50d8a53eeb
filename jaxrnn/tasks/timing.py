"""Timed responses: time reproduction (a pulse reproduced after a delay) and a pulse-triggered oscillation.

Source: Jarne & Laje 2019 (arXiv 1906.01094) and katejarne/RNN_study_with_keras. Paper presets (DESIGN.md §4):

time reproduction — T = 300; a pulse (or none) on [50, 70), its 20 samples smoothed by a normalised 10-point
Hann window; the target is 0.045 except on [70 + delay, 90 + delay), where it is a bump (a box of 20 convolved
with 0.055 · gaussian(20, σ = 12), peak 0.985) on pulse trials and 0 on no-pulse trials (as the original);
Gaussian noise of std 0.03 on the input and on the target; delay 20 (up to 210).

oscillation — T = 420; a pulse (or none) on [100, 120), Hann(10)-smoothed; on pulse trials the target is a sine
of period 35 steps and amplitude 1.74 on [160, 380), phase 130° at t = 160 (the original network's); 0 elsewhere
and on no-pulse trials; input noise 0.1.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.tasks.base import Task, Trial, _check, add_noise


def _hann_box(T: int, start: int, width: int, window: int) -> np.ndarray:
    """A box on [start, start + width) whose `width` samples are convolved (mode 'same') with a normalised
    symmetric Hann window: tapered edges, zero outside the box (as the original generator does)."""
    n = np.arange(window)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (window - 1))  # the symmetric Hann window of `window` points
    out = np.zeros(T)
    out[start : start + width] = np.convolve(np.ones(width), hann / hann.sum(), mode="same")
    return out


def _bump(width: int, scale: float, sigma: float) -> np.ndarray:
    """A box of `width` convolved (mode 'same') with scale · gaussian(width, sigma)."""
    n = np.arange(width) - (width - 1) / 2
    return np.convolve(np.ones(width), scale * np.exp(-0.5 * (n / sigma) ** 2), mode="same")


@dataclasses.dataclass(frozen=True)
class TimeReproduction(Task):
    """Reproduce a stimulus as a bump `delay` steps after it ends."""

    name: ClassVar[str] = "time_reproduction"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("no_pulse", "pulse")

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
        end = self.pulse_start + 2 * self.pulse_width + self.delay
        _check(self, end <= self.T, "delay", f"={self.delay} does not fit in T={self.T}: the bump ends at {end}")
        _check(self, self.smooth >= 2, "smooth", f"must be >= 2, got {self.smooth}")

    @property
    def bump_start(self) -> int:
        return self.pulse_start + self.pulse_width + self.delay

    def _clean(self, condition):
        stim = jnp.asarray(_hann_box(self.T, self.pulse_start, self.pulse_width, self.smooth), jnp.float32)
        bump = np.zeros(self.T)
        bump[self.bump_start : self.bump_start + self.pulse_width] = _bump(
            self.pulse_width, self.bump_scale, self.bump_sigma
        )
        t = np.arange(self.T)
        window = (t >= self.bump_start) & (t < self.bump_start + self.pulse_width)
        target = jnp.where(window, condition * jnp.asarray(bump, jnp.float32), self.baseline)
        return condition * stim, target

    def sample(self, key):
        key_c, key_in, key_out = jax.random.split(key, 3)
        condition = jax.random.bernoulli(key_c).astype(jnp.int32)
        stim, target = self._clean(condition)
        t = jnp.arange(self.T)
        window = (t >= self.bump_start) & (t < self.bump_start + self.pulse_width)
        return Trial(
            inputs=add_noise(key_in, stim, self.noise)[:, None],
            targets=add_noise(key_out, target, self.target_noise)[:, None],
            mask=jnp.ones((self.T, 1), jnp.float32),
            condition=condition,
            response=window.astype(jnp.int32)[:, None],
        )

    def correct(self, trial, outputs):
        """Pulse: the output's peak within ±peak_tolerance steps of the bump's and 50–150% of its height.
        No pulse: the output stays within 0.3 of the baseline."""
        _, clean = self._clean(trial.condition)
        y = outputs[:, 0]
        peak_t, peak = jnp.argmax(clean), jnp.max(clean)
        hit = (jnp.abs(jnp.argmax(y) - peak_t) <= self.peak_tolerance) & (jnp.max(y) >= 0.5 * peak)
        hit = hit & (jnp.max(y) <= 1.5 * peak)
        quiet = jnp.max(jnp.abs(y - self.baseline)) <= 0.3
        return jnp.where(trial.condition == 1, hit, quiet)


@dataclasses.dataclass(frozen=True)
class Oscillation(Task):
    """A pulse triggers a finite oscillation."""

    name: ClassVar[str] = "oscillation"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("no_pulse", "pulse")

    T: int = 420
    noise: float = 0.1
    pulse_start: int = 100
    pulse_width: int = 20
    smooth: int = 10
    start: int = 160
    stop: int = 380
    period: float = 35.0
    amplitude: float = 1.74
    phase_deg: float = 130.0

    def __post_init__(self):
        super().__post_init__()
        _check(self, self.period > 0, "period", f"must be > 0, got {self.period}")
        _check(self, self.pulse_start + self.pulse_width <= self.start, "start", "must come after the pulse")
        _check(self, self.start < self.stop <= self.T, "stop", f"must satisfy start < stop <= T={self.T}")

    def _clean(self, condition):
        stim = jnp.asarray(_hann_box(self.T, self.pulse_start, self.pulse_width, self.smooth), jnp.float32)
        t = np.arange(self.T)
        phase = 2 * np.pi * (t - self.start) / self.period + np.deg2rad(self.phase_deg)
        sine = np.where((t >= self.start) & (t < self.stop), self.amplitude * np.sin(phase), 0.0)
        return condition * stim, condition * jnp.asarray(sine, jnp.float32)

    def sample(self, key):
        key_c, key_in = jax.random.split(key)
        condition = jax.random.bernoulli(key_c).astype(jnp.int32)
        stim, target = self._clean(condition)
        t = jnp.arange(self.T)
        window = (t >= self.start) & (t < self.stop)
        return Trial(
            inputs=add_noise(key_in, stim, self.noise)[:, None],
            targets=target[:, None],
            mask=jnp.ones((self.T, 1), jnp.float32),
            condition=condition,
            response=window.astype(jnp.int32)[:, None],
        )

    def correct(self, trial, outputs):
        """Pulse: correlation >= 0.8 with the sine in its window, amplitude (std ratio) 70–130%.
        No pulse: the output stays within 0.3 of 0."""
        _, clean = self._clean(jnp.int32(1))
        w = (trial.response[:, 0] == 1).astype(outputs.dtype)
        n = w.sum()
        y, s = outputs[:, 0], clean
        my, ms = (w * y).sum() / n, (w * s).sum() / n
        cov = (w * (y - my) * (s - ms)).sum() / n
        sy = jnp.sqrt((w * (y - my) ** 2).sum() / n)
        ss = jnp.sqrt((w * (s - ms) ** 2).sum() / n)
        corr = cov / jnp.maximum(sy * ss, 1e-12)
        ratio = sy / ss
        hit = (corr >= 0.8) & (ratio >= 0.7) & (ratio <= 1.3)
        quiet = jnp.max(jnp.abs(y)) <= 0.3
        return jnp.where(trial.condition == 1, hit, quiet)
