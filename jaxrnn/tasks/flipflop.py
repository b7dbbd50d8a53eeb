"""Flip-flop memories: the 1-bit set/reset flip-flop and the n-bit (default 3) ±1 flip-flop.

1 bit — Jarne & Laje 2019 (arXiv 1906.01094): two input channels, 0 = reset and 1 = set. Paper preset: T = 1010,
8 turns, turn k at t = 50 + 120 k carries one 20-step pulse on a random channel; the output is 1 after a set and
0 after a reset from 20 steps after the pulse's end, held until the next; 0.01 before the first; input noise 0.1.
The original generator with random timing is lost: `interval_min < interval_max` draws each gap between turns
uniformly from [interval_min, interval_max] instead (turns that fall past T are dropped).

n bits — Jarne 2023, "Exploring Flip Flop memories and beyond" (katejarne/3-bit-FF-tutorial). Paper preset:
T = 340; per channel, pulse 1 at U{10..99} with value +1, -1 or 0 (no pulse), pulse 2 at pulse1 + 70 + U{1..50}
(±1), pulse 3 at pulse2 + 100 + U{1..50} (±1, may be cut by T); each output holds its channel's latest pulse
value from 20 steps after that pulse's end, 0 before; input noise 0.1.

Static fields: T and the number of turns (1 bit) or bits (n bits); every other field (timing, widths, delays, noise,
levels) is a traced param (`Task`). Training presets (DESIGN.md §3): 1 bit — early stop below 1e-3, 25,000 trials,
batch 64, N = 50; 3 bits — 9e-3, 30,000 trials, batch 128, N = 400.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrnn.tasks.base import Task, TrainPreset, Trial, _check, add_noise


def _latched(t, starts, values, width, delay, baseline, valid):
    """Target, response ids and pulse train for a sequence of pulses on one output.

    Args:
        t: (T,) steps. starts: (K,) pulse onsets in time order. values: (K,) value each pulse latches.
        valid: (K,) bool, pulses that count (a 0-valued or missing pulse does not open a window).
    Returns:
        target (T,), response (T,) int32 with id k+1 in the window of pulse k, and on (K, T) pulse indicators.
    """
    tt = t[None, :]
    on = (tt >= starts[:, None]) & (tt < starts[:, None] + width)  # (K, T)
    effect = starts + width + delay
    latched = tt >= effect[:, None]  # (K, T)
    count = latched.sum(0)  # pulses in effect at t
    last = jnp.maximum(count - 1, 0)
    target = jnp.where(count > 0, values[last], baseline)
    next_start = jnp.concatenate([starts[1:], jnp.array([t.shape[0]])])[last]
    in_window = (count > 0) & (t < next_start) & valid[last]
    response = jnp.where(in_window, count, 0).astype(jnp.int32)
    return target.astype(jnp.float32), response, on


@dataclasses.dataclass(frozen=True)
class FlipFlop(Task):
    """1-bit set/reset flip-flop (inputs: reset, set; output: the stored bit)."""

    name: ClassVar[str] = "flipflop"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("ends_reset", "ends_set")
    max_windows: ClassVar[int] = 64
    STATIC: ClassVar[tuple[str, ...]] = ("T", "n_turns")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-3, n_train=25_000)
    success_rule: ClassVar[str] = (
        "a trial is correct when the output stays within ±0.25 of the baseline before the first pulse and, in every "
        "response window (from 20 steps after a pulse's end to the next pulse) after its first 20 steps, within "
        "±0.25 of the stored bit, each on at least 90% of the steps"
    )

    T: int = 1010
    noise: float = 0.1
    n_turns: int = 8
    first: int = 50
    interval_min: int = 120
    interval_max: int = 120
    pulse_width: int = 20
    delay: int = 20
    amplitude: float = 1.0
    baseline: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        _check(self, 1 <= self.n_turns <= self.max_windows, "n_turns", f"must be in [1, 64], got {self.n_turns}")
        _check(
            self,
            self.pulse_width + self.delay < self.interval_min <= self.interval_max,
            "interval_min",
            f"must exceed pulse_width + delay = {self.pulse_width + self.delay} and be <= interval_max",
        )
        last = self.first + (self.n_turns - 1) * self.interval_min + self.pulse_width + self.delay
        _check(self, last < self.T, "T", f"={self.T} too short: the last turn's response starts at {last}")

    def _lead(self, p):
        return p["pulse_width"] + p["delay"]  # quiet before the first pulse

    def sample(self, key, params=None):
        p = self._params(params)
        key_channel, key_gap, key_noise = jax.random.split(key, 3)
        channel = jax.random.bernoulli(key_channel, 0.5, (self.n_turns,)).astype(jnp.int32)
        gaps = jax.random.randint(key_gap, (self.n_turns - 1,), p["interval_min"], p["interval_max"] + 1)
        starts = p["first"] + jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(gaps)])
        t = jnp.arange(self.T)
        valid = starts < self.T
        target, response, on = _latched(
            t, starts, channel.astype(jnp.float32), p["pulse_width"], p["delay"], p["baseline"], valid
        )
        one_hot = jax.nn.one_hot(channel, 2) * valid[:, None]  # (K, 2)
        inputs = p["amplitude"] * (on.T.astype(jnp.float32) @ one_hot)  # (T, 2)
        inputs = add_noise(key_noise, inputs, p["noise"])
        last_valid = jnp.max(jnp.where(valid, jnp.arange(self.n_turns), 0))
        return Trial(
            inputs=inputs,
            targets=target[:, None],
            mask=jnp.ones((self.T, 1), jnp.float32),
            condition=channel[last_valid],
            response=response[:, None],
        )


@dataclasses.dataclass(frozen=True)
class FlipFlop3(Task):
    """n-bit flip-flop with ±1 pulses (default 3 bits): each output holds its channel's last pulse sign."""

    name: ClassVar[str] = "flipflop3"
    levels: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    max_windows: ClassVar[int] = 3
    STATIC: ClassVar[tuple[str, ...]] = ("T", "n_bits")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=9e-3, n_train=30_000, batch_size=128, units=400)
    success_rule: ClassVar[str] = (
        "a trial is correct when, on every channel, the output stays within ±0.5 of 0 before the channel's first "
        "pulse and, in every response window (from 20 steps after a pulse's end to that channel's next pulse) after "
        "its first 20 steps, within ±0.5 of the latest pulse's sign (±1), each on at least 90% of the steps"
    )

    T: int = 340
    noise: float = 0.1
    n_bits: int = 3
    first_min: int = 10
    first_max: int = 99
    gap2: int = 70
    gap3: int = 100
    jitter: int = 50
    pulse_width: int = 20
    delay: int = 20

    def __post_init__(self):
        super().__post_init__()
        _check(self, 1 <= self.n_bits <= 16, "n_bits", f"must be in [1, 16], got {self.n_bits}")
        _check(self, 0 <= self.first_min <= self.first_max, "first_min", "must satisfy 0 <= first_min <= first_max")
        _check(self, self.jitter >= 1, "jitter", f"must be >= 1, got {self.jitter}")
        _check(self, self.gap2 > self.pulse_width, "gap2", f"must exceed pulse_width={self.pulse_width}")
        reach = self.first_max + self.pulse_width + self.delay
        _check(self, reach < self.T, "T", f"={self.T} too short: the first pulse's response starts up to {reach}")

    def _lead(self, p):
        return p["pulse_width"] + p["delay"]  # quiet before each channel's first pulse

    @property
    def n_in(self) -> int:
        return self.n_bits

    @property
    def n_out(self) -> int:
        return self.n_bits

    @property
    def conditions(self) -> tuple[str, ...]:
        """Final memory state, one sign per bit, bit 0 first (e.g. "+-+")."""
        n = self.n_bits
        return tuple("".join("-+"[(c >> (n - 1 - b)) & 1] for b in range(n)) for c in range(2**n))

    def _channel(self, key, p):
        k1, k2, k3, kv1, kv = jax.random.split(key, 5)
        p1 = jax.random.randint(k1, (), p["first_min"], p["first_max"] + 1)
        p2 = p1 + p["gap2"] + jax.random.randint(k2, (), 1, p["jitter"] + 1)
        p3 = p2 + p["gap3"] + jax.random.randint(k3, (), 1, p["jitter"] + 1)
        v1 = jax.random.choice(kv1, jnp.array([1.0, -1.0, 0.0]))
        v23 = jnp.where(jax.random.bernoulli(kv, 0.5, (2,)), 1.0, -1.0)
        starts = jnp.stack([p1, p2, p3])
        values = jnp.concatenate([v1[None], v23])
        t = jnp.arange(self.T)
        valid = (values != 0) & (starts < self.T)
        target, response, on = _latched(t, starts, values, p["pulse_width"], p["delay"], 0.0, valid)
        inputs = (on.astype(jnp.float32) * values[:, None]).sum(0)
        return inputs, target, response

    def sample(self, key, params=None):
        p = self._params(params)
        key_channels, key_noise = jax.random.split(key)
        channel = jax.vmap(self._channel, in_axes=(0, None), out_axes=1)
        inputs, targets, response = channel(jax.random.split(key_channels, self.n_in), p)
        inputs = add_noise(key_noise, inputs, p["noise"])
        final_bits = (targets[-1] > 0).astype(jnp.int32)
        condition = (final_bits * 2 ** jnp.arange(self.n_out - 1, -1, -1)).sum()
        return Trial(inputs, targets, jnp.ones_like(targets), condition.astype(jnp.int32), response)
