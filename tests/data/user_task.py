"""mytask.py: a task of your own, trained by jaxrnn without editing it."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrnn.tasks import Task, TrainPreset, Trial


@dataclasses.dataclass(frozen=True)
class Ramp(Task):
    """After a pulse, ramp the output from 0 to 1 over `duration` steps and hold it; without a pulse, stay at 0."""

    name: ClassVar[str] = "ramp"  # its name in run directories and plots
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("no_pulse", "pulse")  # Trial.condition indexes these
    preset: ClassVar[TrainPreset] = TrainPreset(n_train=3200)  # optional: the default protocol, smaller epochs

    # the parameters: T is static (Task.STATIC: it fixes the shapes), every other field is traced
    T: int = 200
    noise: float = 0.1
    pulse_start: int = 30
    duration: int = 60

    def __post_init__(self):
        super().__post_init__()  # checks T, noise and tolerance
        end = self.pulse_start + 10 + self.duration
        if self.pulse_start < 0 or self.duration <= 0 or end >= self.T:
            raise ValueError(f"ramp: need pulse_start >= 0, duration > 0 and the ramp's end {end} < T = {self.T}")

    def sample(self, key, params=None):
        p = self._params(params)  # the traced fields as arrays (one member's values while training)
        key_c, key_n = jax.random.split(key)
        condition = jax.random.bernoulli(key_c).astype(jnp.int32)
        t = jnp.arange(self.T)[:, None]  # (T, 1)
        go = p["pulse_start"] + 10  # end of the 10-step pulse
        inputs = condition * ((t >= p["pulse_start"]) & (t < go)) + p["noise"] * jax.random.normal(key_n, (self.T, 1))
        targets = condition * jnp.clip((t - go) / p["duration"], 0.0, 1.0)
        return Trial(
            inputs=inputs.astype(jnp.float32),  # (T, n_in)
            targets=targets.astype(jnp.float32),  # (T, n_out)
            mask=jnp.ones((self.T, 1), jnp.float32),  # weight of each step in the loss
            condition=condition,
            response=(t >= go + p["duration"]).astype(jnp.int32),  # the window that `correct` judges
        )
