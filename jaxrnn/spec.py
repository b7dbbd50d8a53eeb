"""The per-member training numbers: their types and the values they accept, defined once (no JAX here).

`NUMBERS` is what `jaxrnn.Hparams` may set per member, what `train.resolve` and `TrainConfig` check,
what a grid (`jaxrnn.training.grid`, `--grid`) may sweep, and what the command line's options of the same names parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: The recurrent init laws (`jaxrnn.cells.network.init_recurrent`), by name; a member's law is traced as an index here.
INITS = ("orthogonal", "normal")


class Number(NamedTuple):
    """A per-member training number: the type of its values and the values it accepts."""

    kind: type  # float or str
    accepts: Callable[[np.ndarray], np.ndarray]  # elementwise, on a host array of values
    rule: str  # what `accepts` means, for messages: "> 0", ">= 0", "in (0, 1)"; the allowed names of a str


#: Every number that may differ between the members of one compiled program (the Hparams fields but `task`) and the
#: values it accepts: the one definition that `resolve`, TrainConfig, grids (`training.grid`) and `--grid` check with.
NUMBERS: dict[str, Number] = {
    "lr": Number(float, lambda v: v > 0, "> 0"),
    "gain": Number(float, lambda v: v > 0, "> 0"),
    "init": Number(str, lambda v: np.isin(v, INITS), ", ".join(INITS)),
    "rec_noise": Number(float, lambda v: v >= 0, ">= 0"),
    "in_noise": Number(float, lambda v: v >= 0, ">= 0"),
    "l2_weights": Number(float, lambda v: v >= 0, ">= 0"),
    "l2_rates": Number(float, lambda v: v >= 0, ">= 0"),
    "threshold": Number(float, lambda v: v >= 0, ">= 0"),
    "e_fraction": Number(float, lambda v: (v > 0) & (v < 1), "in (0, 1)"),
}


def check_number(name: str, values, where: str = "hparams") -> None:
    """ValueError ("WHERE: NAME must be RULE, got V", one line) unless every value in `values` (one, a sequence or an
    array) is one that `NUMBERS[name]` accepts: of its type, finite, within its rule."""
    problem = _problem(name, values)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")


def parse_number(name: str, text: str):
    """A value of `name` from command-line text, checked by its definition; ValueError("NAME must be RULE, got V")."""
    value = text
    if NUMBERS[name].kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a finite number, got {text!r}") from None
    problem = _problem(name, value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _problem(name: str, values) -> str | None:
    """What is wrong with `values` for the number `name` ("NAME must be RULE, got V"), or None."""
    spec = NUMBERS[name]
    if spec.kind is str:
        arr = np.asarray(values, dtype=object).ravel()
        ok = np.array([isinstance(v, str) for v in arr]) & spec.accepts(arr.astype(str))
        return None if np.all(ok) else f"unknown {name} {arr[np.argmin(ok)]!r}; allowed: {spec.rule}"
    seq = values if isinstance(values, (list, tuple)) else [values] if np.ndim(values) == 0 else None
    if np.asarray(values).dtype == bool or (seq is not None and any(isinstance(v, bool) for v in seq)):
        return f"{name} must be a finite number, got a bool"
    try:
        arr = np.asarray(values, np.float64).ravel()
    except (TypeError, ValueError):
        return f"{name} must be a finite number, got {values!r}"
    if not np.all(np.isfinite(arr)):
        return f"{name} must be a finite number, got {arr[~np.isfinite(arr)][0]:g}"
    ok = spec.accepts(arr)
    verb = "lie" if spec.rule.startswith("in ") else "be"
    return None if np.all(ok) else f"{name} must {verb} {spec.rule}, got {arr[np.argmin(ok)]:g}"
