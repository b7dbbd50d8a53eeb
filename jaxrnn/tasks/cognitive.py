"""Decision-making and working-memory tasks of systems neuroscience, one trial at a time, 1 step = 1 ms.

Five tasks beyond the 2019 study (DESIGN.md §4, "Also to build"). All have fixed timing (static shapes, no go cue:
the network learns when to answer), one output and a single response window that runs from the end of the last
stimulus or delay to the end of the trial (`T`). The trial length `T` is a field: the decision period is
`[response_start, T)`, so shortening an epoch with `replace` lengthens the decision period unless `T` is changed too.

Targets and correctness. The four binary-choice tasks (`perceptual_dm`, `context_dm`, `dms`, `pwm`) use targets of
±1 (levels (-1, 1)) in the decision period and 0 ("no choice yet", the fixation state) before it; a trial is correct
when the output stays within ±0.5 of 0 before the decision period and within ±0.5 of the answer over the judged part
of the decision period, each on at least 90% of the steps (the level rule of `Task.correct`, tolerance 0.25 of the
level range 2). `and_or_context` uses the gates' 0/1 levels (band ±0.25) and their quiet period before the pulses.

Loss mask (cost mask of Yang, Joglekar, Song, Newsome & Wang 2019, Nat. Neurosci. 22:297, Methods): weight
`pre_weight` (1) before the decision period, 0 during its first `grace` steps (100 ms, the time allowed to move the
output), and `response_weight` (5) for the rest of it. The response window that `correct` judges is the same
post-grace part. `and_or_context` keeps the 2019 gates' protocol instead (every step weight 1, no grace).

Input noise: Gaussian, std `noise`, on every input channel at every step (DESIGN.md §3).

Static and traced fields (`Task`): T and the number of choices that fix shapes (`n_stimuli` of dms; the number of
coherences and of frequency pairs, the length of those tuples) are static; every other field — the noise, the epoch
durations, the grace period and mask weights, the coherence and frequency values, `p_match`, the amplitudes — is a
traced param that may differ per member. Training presets: 15,000 trials, batch 64, N = 50, no bias; early-stop
thresholds (jaxrnn's choice, above each task's loss floor) perceptual_dm and context_dm 2e-2, dms and pwm 1e-2,
and_or_context 1e-3.

Training note (measured on CPU, tests/test_cognitive_tasks.py): on 100-step versions of these tasks, 320 Adam
updates at lr 1e-3 train N = 32 networks with alpha = 1 on `perceptual_dm` and `and_or_context`, but leave most
members at chance on `context_dm` (constant context cue) and `dms` (memory across the delay), and some on `pwm`;
leaky networks (alpha = dt/tau = 0.1, like the leaky rate networks of Mante et al. 2013 and Song, Yang & Wang 2016)
learn all three.

perceptual_dm — random-dot motion discrimination (Britten, Shadlen, Newsome & Movshon 1992, J. Neurosci. 12:4745;
    Roitman & Shadlen 2002, J. Neurosci. 22:9475), in the one-channel form of Mante et al. 2013: input 0 carries
    evidence of mean c (signed coherence, a fraction) plus noise during the stimulus and 0 plus noise otherwise;
    the target is sign(c). Defaults: |c| in Roitman & Shadlen's non-zero set (3.2, 6.4, 12.8, 25.6, 51.2)%, both
    signs equally likely; fixation 100 ms (neurogym PerceptualDecisionMaking), stimulus 750 ms and delay 300 ms
    (Mante et al. 2013: 750 ms stimulus, delay 300-1500 ms, here its minimum, fixed), decision 300 ms (T = 1450).
    noise = 0.5 per step is jaxrnn's choice: neurogym's σ = 1/sqrt(ms) on each of two channels (sqrt(2) on their
    difference) puts 6.4% coherence at the psychophysical threshold (an ideal observer is 89% correct there), so no
    network could meet the ≥ 90%-correct success criterion; with 0.5 the ideal observer (`ideal_accuracy`) is 96%
    correct at 3.2% and above 99.9% from 6.4% on. A coherence of 0 is allowed: its target sign is a fair coin.
context_dm — context-dependent integration (Mante, Sussillo, Shenoy & Newsome 2013, Nature 503:78): inputs are
    motion evidence, colour evidence (each a noisy stream of mean its signed coherence during the stimulus), and two
    context cues (motion, colour), the active one at 1 for the whole trial (as in Mante's model and neurogym's
    ContextDecisionMaking); the target is the sign of the cued stream's coherence. Defaults: |c| in (5, 15, 50)%
    for each stream independently (neurogym), fixation 300 ms, stimulus 750 ms, delay 300 ms (neurogym: 300 ms,
    750 ms, truncated-exponential delay from 300 ms; decision 100), decision 300 ms (T = 1650), noise 0.5.
dms — delayed match-to-sample (Miller, Erickson & Desimone 1996, J. Neurosci. 16:5154; neurogym
    DelayMatchSample): a sample stimulus, a delay, a test stimulus; report +1 for match, -1 for non-match. Stimuli
    are one-hot on `n_stimuli` input channels (default 2); the test matches with probability `p_match` (0.5), else
    it is drawn uniformly from the other stimuli. Defaults (neurogym): fixation 300, sample 500, delay 1000, test
    500 ms; decision 300 ms (jaxrnn's; neurogym 900) (T = 2600); noise 0.1.
pwm — parametric working memory / vibrotactile frequency comparison (Romo, Brody, Hernández & Lemus 1999, Nature
    399:470): two frequencies f1, f2 separated by a delay; report +1 when f1 > f2, else -1. A frequency f is an
    input level (1 + (f - fmin) / (fmax - fmin)) / 2 in [0.5, 1] during its stimulus (neurogym DelayComparison's
    encoding). Defaults (neurogym): pairs (18, 10), (22, 14), (26, 18), (30, 22), (34, 26) Hz in either order
    (Romo's 10-34 Hz range, |f1 - f2| = 8 Hz), fixation 500, f1 500, delay 1000 (Romo 1999: 3000), f2 500 ms;
    decision 300 ms (jaxrnn's; neurogym 100) (T = 2800); noise 0.1.
and_or_context — AND/OR multitask with a context pulse (after Jarne 2021, "Multitasking in RNN: an analysis
    exploring the combination of simple tasks", J. Phys. Complexity 2:015009, which adds a contextual input to the
    2019 gates): inputs A and B as in the 2019 AND/OR (pulses of 1 on [30, 50) when a bit is 1) and a context
    channel that carries a pulse on [5, 25) for OR and none for AND (jaxrnn's choice of cue). Target: the chosen gate
    of A and B from t = 70 to the end, 0 before; T = 200, noise 0.1, all 8 conditions equally likely.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn.tasks.base import Task, TrainPreset, Trial, _check, add_noise, pulse


def _signed_coherence_labels(coherences: tuple[float, ...]) -> tuple[str, ...]:
    """Condition labels "-51.2%" ... "+51.2%" (negative first, then positive, each in the order given)."""
    return tuple(f"-{100 * c:g}%" for c in coherences) + tuple(f"+{100 * c:g}%" for c in coherences)


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclasses.dataclass(frozen=True)
class _Decision(Task):
    """A binary choice reported as ±1 in a decision period [response_start, T), with the Yang et al. cost mask.

    Subclasses define `_response_start(p)` (the first step of the decision period from the field values `p`, host
    numbers or traced params) and `sample`, and build their trial with `_trial`.
    """

    levels: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    n_out: ClassVar[int] = 1
    success_rule: ClassVar[str] = (
        "a trial is correct when the output stays within ±0.5 of 0 before the decision period (fixation) and within "
        "±0.5 of the answer (±1) over the decision period after its 100-step grace, each on at least 90% of the steps"
    )
    settle: ClassVar[int] = 0  # the grace period is the time to move the output

    def _lead(self, p):
        return p["grace"]  # quiet before the decision period

    grace: int = 100
    pre_weight: float = 1.0
    response_weight: float = 5.0

    def _response_start(self, p):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def response_start(self) -> int:
        """First step of the decision period."""
        return self._response_start(self._values())

    def _check_coherences(self) -> None:
        _check(self, len(self.coherences) >= 1, "coherences", "must hold at least one coherence")
        _check(self, all(c >= 0 for c in self.coherences), "coherences", f"must be >= 0, got {self.coherences}")

    def _check_timing(self, **durations: int) -> None:
        for name, value in durations.items():
            _check(self, value >= 0, name, f"must be >= 0 steps, got {value}")
        _check(self, self.grace >= 0, "grace", f"must be >= 0 steps, got {self.grace}")
        _check(self, self.pre_weight >= 0, "pre_weight", f"must be >= 0, got {self.pre_weight}")
        _check(self, self.response_weight > 0, "response_weight", f"must be > 0, got {self.response_weight}")
        judged = self.response_start + self.grace
        _check(self, judged < self.T, "T", f"={self.T} too short: the judged response starts at step {judged}")

    def _trial(self, key_noise: Array, inputs: Array, choice: Array, condition: Array, p: dict) -> Trial:
        """Add input noise and build targets, mask and response window of a trial.

        Args:
            key_noise: key of the input noise.
            inputs: (T, n_in) noise-free inputs.
            choice: () the answer, +1 or -1.
            condition: () int32 condition index.
            p: the traced params.
        """
        t = jnp.arange(self.T)[:, None]  # (T, 1)
        start = self._response_start(p)
        decision = t >= start
        judged = t >= start + p["grace"]
        targets = jnp.where(decision, choice, 0.0).astype(jnp.float32)
        mask = jnp.where(judged, p["response_weight"], jnp.where(decision, 0.0, p["pre_weight"]))
        return Trial(
            inputs=add_noise(key_noise, inputs.astype(jnp.float32), p["noise"]),
            targets=targets,
            mask=mask.astype(jnp.float32),
            condition=condition.astype(jnp.int32),
            response=judged.astype(jnp.int32),
        )


@dataclasses.dataclass(frozen=True)
class PerceptualDM(_Decision):
    """Perceptual decision making: report the sign of a noisy evidence stream's mean (its signed coherence).

    Inputs (T, 1): evidence. Target (T, 1): 0, then sign(c) from `response_start`. Condition: index into
    `conditions`, the signed coherence (all negative ones first, then the positive ones, in `coherences` order).
    """

    name: ClassVar[str] = "perceptual_dm"
    n_in: ClassVar[int] = 1
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=2e-2)

    T: int = 1450
    noise: float = 0.5
    coherences: tuple[float, ...] = (0.032, 0.064, 0.128, 0.256, 0.512)
    fixation: int = 100
    stimulus: int = 750
    delay: int = 300

    def __post_init__(self):
        object.__setattr__(self, "coherences", tuple(float(c) for c in self.coherences))  # hashable, even from a list
        super().__post_init__()
        self._check_coherences()
        self._check_timing(fixation=self.fixation, stimulus=self.stimulus, delay=self.delay)
        _check(self, self.stimulus > 0, "stimulus", "must last at least one step")

    def _response_start(self, p):
        return p["fixation"] + p["stimulus"] + p["delay"]

    @property
    def conditions(self) -> tuple[str, ...]:
        return _signed_coherence_labels(self.coherences)

    def ideal_accuracy(self) -> float:
        """Fraction correct of an ideal observer that sums the evidence over the stimulus: the mean over the
        coherences of Φ(|c| sqrt(stimulus) / noise) (0.5 for c = 0)."""
        if self.noise == 0:
            return float(np.mean([1.0 if c > 0 else 0.5 for c in self.coherences]))
        return float(np.mean([_phi(c * math.sqrt(self.stimulus) / self.noise) for c in self.coherences]))

    def sample(self, key, params=None):
        p = self._params(params)
        key_coh, key_sign, key_noise = jax.random.split(key, 3)
        k = jax.random.randint(key_coh, (), 0, len(self.coherences))
        positive = jax.random.bernoulli(key_sign)
        sign = jnp.where(positive, 1.0, -1.0)
        coherence = sign * p["coherences"][k]
        t = jnp.arange(self.T)
        on = pulse(t, p["fixation"], p["stimulus"])
        inputs = (coherence * on)[:, None]
        condition = k + positive.astype(jnp.int32) * len(self.coherences)
        return self._trial(key_noise, inputs, sign, condition, p)


@dataclasses.dataclass(frozen=True)
class ContextDM(_Decision):
    """Context-dependent decision making (Mante et al. 2013): report the sign of the cued stream.

    Inputs (T, 4): motion evidence, colour evidence, motion cue, colour cue. Target (T, 1): 0, then the sign of the
    cued stream's coherence. Condition: context × sign of motion × sign of colour, e.g. "motion:m+c-" (the
    coherence magnitudes are not part of the label).
    """

    name: ClassVar[str] = "context_dm"
    n_in: ClassVar[int] = 4
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=2e-2)
    conditions: ClassVar[tuple[str, ...]] = tuple(
        f"{ctx}:m{m}c{c}" for ctx in ("motion", "colour") for m in "-+" for c in "-+"
    )

    T: int = 1650
    noise: float = 0.5
    coherences: tuple[float, ...] = (0.05, 0.15, 0.5)
    fixation: int = 300
    stimulus: int = 750
    delay: int = 300
    cue: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "coherences", tuple(float(c) for c in self.coherences))  # hashable, even from a list
        super().__post_init__()
        self._check_coherences()
        self._check_timing(fixation=self.fixation, stimulus=self.stimulus, delay=self.delay)
        _check(self, self.stimulus > 0, "stimulus", "must last at least one step")

    def _response_start(self, p):
        return p["fixation"] + p["stimulus"] + p["delay"]

    def ideal_accuracy(self) -> float:
        """Fraction correct of an ideal observer that sums the cued stream over the stimulus (as `PerceptualDM`)."""
        return PerceptualDM(
            T=self.T,
            noise=self.noise,
            coherences=self.coherences,
            fixation=self.fixation,
            stimulus=self.stimulus,
            delay=self.delay,
            grace=self.grace,
        ).ideal_accuracy()

    def sample(self, key, params=None):
        p = self._params(params)
        key_ctx, key_coh, key_sign, key_noise = jax.random.split(key, 4)
        context = jax.random.bernoulli(key_ctx).astype(jnp.int32)  # 0 = motion, 1 = colour
        k = jax.random.randint(key_coh, (2,), 0, len(self.coherences))
        positive = jax.random.bernoulli(key_sign, 0.5, (2,))  # (motion, colour)
        signs = jnp.where(positive, 1.0, -1.0)
        coherence = signs * p["coherences"][k]  # (2,)
        t = jnp.arange(self.T)
        on = pulse(t, p["fixation"], p["stimulus"])[:, None]  # (T, 1)
        cues = jax.nn.one_hot(context, 2) * p["cue"]  # (2,)
        inputs = jnp.concatenate([on * coherence[None, :], jnp.ones((self.T, 1)) * cues[None, :]], axis=1)
        choice = signs[context]
        bits = positive.astype(jnp.int32)
        condition = 4 * context + 2 * bits[0] + bits[1]
        return self._trial(key_noise, inputs, choice, condition, p)


@dataclasses.dataclass(frozen=True)
class DelayedMatchToSample(_Decision):
    """Delayed match-to-sample: +1 when the test stimulus equals the sample, else -1.

    Inputs (T, n_stimuli): one-hot sample on [fixation, fixation + sample), one-hot test on
    [test_start, test_start + test). Condition: sample × n_stimuli + test, labelled "AA", "AB", ...
    """

    name: ClassVar[str] = "dms"
    STATIC: ClassVar[tuple[str, ...]] = ("T", "n_stimuli")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-2)

    T: int = 2600
    noise: float = 0.1
    n_stimuli: int = 2
    p_match: float = 0.5
    fixation: int = 300
    sample_duration: int = 500
    delay: int = 1000
    test: int = 500
    amplitude: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        _check(self, 2 <= self.n_stimuli <= 26, "n_stimuli", f"must be in [2, 26], got {self.n_stimuli}")
        _check(self, 0 < self.p_match < 1, "p_match", f"must lie in (0, 1), got {self.p_match}")
        self._check_timing(
            fixation=self.fixation, sample_duration=self.sample_duration, delay=self.delay, test=self.test
        )
        _check(self, self.sample_duration > 0, "sample_duration", "must last at least one step")
        _check(self, self.test > 0, "test", "must last at least one step")

    @property
    def n_in(self) -> int:
        return self.n_stimuli

    def _test_start(self, p):
        return p["fixation"] + p["sample_duration"] + p["delay"]

    def _response_start(self, p):
        return self._test_start(p) + p["test"]

    @property
    def test_start(self) -> int:
        """First step of the test stimulus."""
        return self._test_start(self._values())

    @property
    def conditions(self) -> tuple[str, ...]:
        letters = [chr(ord("A") + i) for i in range(self.n_stimuli)]
        return tuple(a + b for a in letters for b in letters)

    def sample(self, key, params=None):
        p = self._params(params)
        key_sample, key_match, key_other, key_noise = jax.random.split(key, 4)
        n = self.n_stimuli
        first = jax.random.randint(key_sample, (), 0, n)
        match = jax.random.bernoulli(key_match, p["p_match"])
        other = (first + jax.random.randint(key_other, (), 1, n)) % n  # uniform over the other stimuli
        second = jnp.where(match, first, other)
        t = jnp.arange(self.T)[:, None]
        inputs = p["amplitude"] * (
            pulse(t, p["fixation"], p["sample_duration"]) * jax.nn.one_hot(first, n)[None, :]
            + pulse(t, self._test_start(p), p["test"]) * jax.nn.one_hot(second, n)[None, :]
        )
        return self._trial(key_noise, inputs, jnp.where(match, 1.0, -1.0), first * n + second, p)


@dataclasses.dataclass(frozen=True)
class ParametricWorkingMemory(_Decision):
    """Parametric working memory (Romo et al. 1999): +1 when f1 > f2, else -1.

    Inputs (T, 1): level (1 + (f - fmin) / (fmax - fmin)) / 2 during each stimulus, 0 elsewhere. Condition:
    2 × pair index + order; order 0 presents (f1, f2) = the pair as given, order 1 reversed; labelled "18>10",
    "10<18", ...
    """

    name: ClassVar[str] = "pwm"
    n_in: ClassVar[int] = 1
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-2)

    T: int = 2800
    noise: float = 0.1
    pairs: tuple[tuple[float, float], ...] = ((18, 10), (22, 14), (26, 18), (30, 22), (34, 26))
    fixation: int = 500
    stimulus: int = 500
    delay: int = 1000

    def __post_init__(self):
        object.__setattr__(self, "pairs", tuple(tuple(p) for p in self.pairs))  # hashable, even from lists
        super().__post_init__()
        _check(self, len(self.pairs) >= 1, "pairs", "must hold at least one frequency pair")
        _check(
            self,
            all(len(p) == 2 and p[0] != p[1] for p in self.pairs),
            "pairs",
            f"must be pairs of two different frequencies, got {self.pairs}",
        )
        self._check_timing(fixation=self.fixation, stimulus=self.stimulus, delay=self.delay)
        _check(self, self.stimulus > 0, "stimulus", "must last at least one step")

    def _f2_start(self, p):
        return p["fixation"] + p["stimulus"] + p["delay"]

    def _response_start(self, p):
        return self._f2_start(p) + p["stimulus"]

    @property
    def f2_start(self) -> int:
        """First step of the second stimulus."""
        return self._f2_start(self._values())

    @property
    def conditions(self) -> tuple[str, ...]:
        labels = []
        for a, b in self.pairs:
            labels.append(f"{a:g}{'>' if a > b else '<'}{b:g}")
            labels.append(f"{b:g}{'>' if b > a else '<'}{a:g}")
        return tuple(labels)

    def encode(self, f: Array, pairs: Array | None = None) -> Array:
        """Input level of frequency f: (1 + (f - fmin) / (fmax - fmin)) / 2, in [0.5, 1], fmin and fmax over `pairs`
        ((P, 2), default this task's; traced in `sample`)."""
        pairs = np.asarray(self.pairs, np.float32) if pairs is None else pairs
        fmin, fmax = jnp.min(pairs), jnp.max(pairs)
        return (1.0 + (f - fmin) / (fmax - fmin)) / 2.0

    def sample(self, key, params=None):
        p = self._params(params)
        key_pair, key_order, key_noise = jax.random.split(key, 3)
        k = jax.random.randint(key_pair, (), 0, len(self.pairs))
        reverse = jax.random.bernoulli(key_order)
        pair = p["pairs"][k]
        f1 = jnp.where(reverse, pair[1], pair[0])
        f2 = jnp.where(reverse, pair[0], pair[1])
        t = jnp.arange(self.T)
        inputs = self.encode(f1, p["pairs"]) * pulse(t, p["fixation"], p["stimulus"]) + self.encode(
            f2, p["pairs"]
        ) * pulse(t, self._f2_start(p), p["stimulus"])
        condition = 2 * k + reverse.astype(jnp.int32)
        return self._trial(key_noise, inputs[:, None], jnp.where(f1 > f2, 1.0, -1.0), condition, p)


@dataclasses.dataclass(frozen=True)
class AndOrContext(Task):
    """AND/OR multitask: a context pulse (OR) or its absence (AND) chooses the gate applied to inputs A and B.

    Inputs (T, 3): A, B, context. Target (T, 1): 0, then the gate's value (0/1) from `response_start`.
    Condition: 4 × context + 2 × A + B, labelled "and00" ... "or11".
    """

    name: ClassVar[str] = "and_or_context"
    n_in: ClassVar[int] = 3
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = tuple(f"{g}{a}{b}" for g in ("and", "or") for a in "01" for b in "01")
    preset: ClassVar[TrainPreset] = TrainPreset(threshold=1e-3)
    success_rule: ClassVar[str] = (
        "a trial is correct when the output stays within ±0.25 of 0 before the pulses A and B (t < 30; the context "
        "pulse falls in this period) and within ±0.25 of the gate's value from t = 90 to the end, each on at least "
        "90% of the steps"
    )

    T: int = 200
    noise: float = 0.1
    context_start: int = 5
    pulse_start: int = 30
    pulse_width: int = 20
    response_start: int = 70
    amplitude: float = 1.0
    grace: int = 0
    pre_weight: float = 1.0
    response_weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        _check(self, self.pulse_width > 0, "pulse_width", f"must be > 0, got {self.pulse_width}")
        _check(self, self.context_start >= 0, "context_start", f"must be >= 0, got {self.context_start}")
        end = max(self.pulse_start, self.context_start) + self.pulse_width
        _check(self, end <= self.response_start, "response_start", f"must come after the pulses end ({end})")
        _check(self, self.grace >= 0, "grace", f"must be >= 0 steps, got {self.grace}")
        _check(self, self.pre_weight >= 0, "pre_weight", f"must be >= 0, got {self.pre_weight}")
        _check(self, self.response_weight > 0, "response_weight", f"must be > 0, got {self.response_weight}")
        judged = self.response_start + self.grace
        _check(self, judged < self.T, "T", f"={self.T} too short: the judged response starts at step {judged}")

    def _lead(self, p):
        return p["response_start"] + p["grace"] - p["pulse_start"]  # quiet before the pulses A and B

    def sample(self, key, params=None):
        p = self._params(params)
        key_c, key_noise = jax.random.split(key)
        condition = jax.random.randint(key_c, (), 0, 8)
        bits = (condition >> jnp.arange(2, -1, -1)) & 1  # (context, A, B)
        use_or, a, b = bits[0], bits[1], bits[2]
        value = jnp.where(use_or == 1, a | b, a & b).astype(jnp.float32)
        t = jnp.arange(self.T)
        stim = pulse(t[:, None], p["pulse_start"], p["pulse_width"]) * jnp.stack([a, b])[None, :]
        ctx = pulse(t, p["context_start"], p["pulse_width"]) * use_or
        inputs = p["amplitude"] * jnp.concatenate([stim, ctx[:, None]], axis=1)
        decision = t[:, None] >= p["response_start"]
        judged = t[:, None] >= p["response_start"] + p["grace"]
        targets = jnp.where(decision, value, 0.0).astype(jnp.float32)
        mask = jnp.where(judged, p["response_weight"], jnp.where(decision, 0.0, p["pre_weight"]))
        return Trial(
            inputs=add_noise(key_noise, inputs.astype(jnp.float32), p["noise"]),
            targets=targets,
            mask=mask.astype(jnp.float32),
            condition=condition.astype(jnp.int32),
            response=judged.astype(jnp.int32),
        )
