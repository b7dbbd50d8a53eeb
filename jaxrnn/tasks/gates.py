"""Logic gates on temporal pulses: AND, OR, XOR (two inputs) and NOT (one input).

Source: Jarne & Laje 2019 (arXiv 1906.01094), §2 and the public code katejarne/RNN_study_with_keras.
Paper preset (DESIGN.md §4): T = 200 steps; each input bit is independently 0 or 1 (all conditions equally
likely); a bit of 1 is a square pulse of amplitude 1 on [30, 50); Gaussian input noise of std 0.1 at every step;
the target is the gate's value from t = 70 to the end and a baseline before (AND 0, the others 0.01).
`onset_jitter` (default 0: none) is the E/I study's trial (katejarne/Excitatory-inhibitory,
`generate_data_set_and.py`, its `var_delay_length`): each trial draws an extra delay d uniform on {1, ..., onset_jitter}
that shifts the pulses and the response onset together (pulse on [pulse_start + d, pulse_start + pulse_width + d),
target from response_start + d); that code used pulse_start 60, response_start 100, onset_jitter 50, T 290, noise 0.
Static: T; every other field is a traced param (`Task`). Training preset (DESIGN.md §3): early-stop threshold AND
5e-4, OR 1e-4, XOR 1e-3, NOT 5e-4 (with an RNN bias: its no-pulse trials have zero input); 15,000 trials, batch 64,
N = 50.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrnn.tasks.base import Task, TrainPreset, Trial, _check, add_noise, pulse


@dataclasses.dataclass(frozen=True)
class _Gate(Task):
    success_rule: ClassVar[str] = (
        "a trial is correct when the output stays within ±0.25 of the baseline before the pulses (t < 30) and within "
        "±0.25 of the gate's value from t = 90 to the end, each on at least 90% of the steps"
    )

    T: int = 200
    noise: float = 0.1
    pulse_start: int = 30
    pulse_width: int = 20
    response_start: int = 70
    amplitude: float = 1.0
    baseline: float = 0.01
    onset_jitter: int = 0

    def __post_init__(self):
        super().__post_init__()
        _check(self, self.pulse_width > 0, "pulse_width", f"must be > 0, got {self.pulse_width}")
        _check(self, self.pulse_start >= 0, "pulse_start", f"must be >= 0, got {self.pulse_start}")
        end = self.pulse_start + self.pulse_width
        _check(
            self,
            end <= self.response_start < self.T,
            "response_start",
            f"must lie in [pulse end = {end}, T = {self.T}), got {self.response_start}",
        )
        _check(self, self.onset_jitter >= 0, "onset_jitter", f"must be >= 0, got {self.onset_jitter}")
        _check(
            self,
            self.response_start + self.onset_jitter < self.T,
            "onset_jitter",
            f"must leave the latest response onset response_start + onset_jitter inside T = {self.T}, got "
            f"{self.response_start} + {self.onset_jitter}",
        )

    def _gate(self, bits):
        raise NotImplementedError

    def _lead(self, p):
        return p["response_start"] - p["pulse_start"]  # quiet before the pulses (shifted with the onset jitter)

    def sample(self, key, params=None):
        p = self._params(params)
        key_bits, key_noise = jax.random.split(key)
        # the onset shift has its own key, folded from the trial's, so trials without jitter keep their two keys
        key_shift = jax.random.fold_in(key, 1)
        n = self.n_in
        condition = jax.random.randint(key_bits, (), 0, 2**n)
        bits = (condition >> jnp.arange(n - 1, -1, -1)) & 1  # most significant bit is input 0
        jitter = p["onset_jitter"]
        shift = jnp.where(jitter > 0, jax.random.randint(key_shift, (), 1, jnp.maximum(jitter, 1) + 1), 0)
        t = jnp.arange(self.T)[:, None]
        inputs = p["amplitude"] * bits[None, :] * pulse(t, p["pulse_start"] + shift, p["pulse_width"])
        inputs = add_noise(key_noise, inputs, p["noise"])
        after = t >= p["response_start"] + shift
        value = self._gate(bits).astype(jnp.float32)
        targets = jnp.where(after, value, p["baseline"]).astype(jnp.float32)
        return Trial(
            inputs=inputs.astype(jnp.float32),
            targets=targets,
            mask=jnp.ones_like(targets),
            condition=condition.astype(jnp.int32),
            response=after.astype(jnp.int32) * jnp.ones_like(targets, jnp.int32),
        )


@dataclasses.dataclass(frozen=True)
class And(_Gate):
    """AND of two temporal pulses: 1 from t = 70 when both inputs pulsed."""

    name: ClassVar[str] = "and"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("00", "01", "10", "11")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=5e-4)
    baseline: float = 0.0

    def _gate(self, bits):
        return bits[0] & bits[1]


@dataclasses.dataclass(frozen=True)
class Or(_Gate):
    """OR of two temporal pulses: 1 from t = 70 when at least one input pulsed."""

    name: ClassVar[str] = "or"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("00", "01", "10", "11")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-4)

    def _gate(self, bits):
        return bits[0] | bits[1]


@dataclasses.dataclass(frozen=True)
class Xor(_Gate):
    """XOR of two temporal pulses: 1 from t = 70 when exactly one input pulsed."""

    name: ClassVar[str] = "xor"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("00", "01", "10", "11")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-3)

    def _gate(self, bits):
        return bits[0] ^ bits[1]


@dataclasses.dataclass(frozen=True)
class Not(_Gate):
    """NOT of one temporal pulse: 1 from t = 70 when no pulse came, else 0. Needs an RNN bias."""

    name: ClassVar[str] = "not"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("0", "1")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=5e-4, bias=True)

    def _gate(self, bits):
        return 1 - bits[0]
