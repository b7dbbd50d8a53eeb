"""Study grids as one ensemble: the cartesian product of per-member values (learning rate × delay × init × ...).

    grid = Grid.of(task, repeats=4, lr=(1e-3, 3e-4), delay=(20, 60, 100))
    grid.members          # 2 × 3 cells × 4 repeats = 24 members, ids 0..23
    grid.cell_values(5)   # {"lr": 3e-4, "delay": 100} (cell-major: the last axis varies fastest)

Member i belongs to cell i // repeats: members 0..R-1 are cell 0, R..2R-1 cell 1, and so on, cells in the order
of `itertools.product` over the axes as given (the last axis varies fastest). Member i's key is `fold_in(key(seed),
i)` as always, so member i of a grid run is the same network as member i of a homogeneous run with that member's
values.

An axis is a training number of `jaxrnn.Hparams` (`TRAIN_AXES`, from `jaxrnn.spec.NUMBERS`: lr, gain, init,
rec_noise, in_noise, l2_weights, l2_rates, threshold, e_fraction) or a traced parameter of the task
(`Task.traced_fields()`: delay, noise, pulse times, coherences, ...). Numbers that fix a shape (N, T, batch, channel
counts, ...) cannot vary inside one compiled program: asking for them is refused with a message saying to run them
as separate ensembles. Everything is checked on the host, before anything compiles.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from jaxrnn.spec import NUMBERS, check_number
from jaxrnn.tasks import Task
from jaxrnn.training.train import Hparams, TrainConfig

#: Training numbers that may differ per member, with the type of their values: `jaxrnn.spec.NUMBERS`.
TRAIN_AXES: dict[str, type] = {name: spec.kind for name, spec in NUMBERS.items()}
#: TrainConfig fields that fix a shape or the structure of the compiled program (every field but the task and the
#: per-member numbers), and the run's seed and member count.
STRUCTURAL = (
    *(f.name for f in dataclasses.fields(TrainConfig) if f.name not in TRAIN_AXES and f.name != "task"),
    "seed",
    "members",
)


@dataclasses.dataclass(frozen=True)
class Grid:
    """A cartesian grid of per-member values, `repeats` members per cell (module docstring).

    Attributes:
        axes: ((name, values), ...) in the order given; the last axis varies fastest.
        repeats: members per cell.
    """

    axes: tuple[tuple[str, tuple], ...]
    repeats: int = 1

    @classmethod
    def of(cls, task: Task, repeats: int = 1, **axes: Sequence) -> Grid:
        """A validated grid for `task`: `axes` name -> values (see the module docstring for the names)."""
        return cls(tuple((name, tuple(values)) for name, values in axes.items()), repeats).check(task)

    def check(self, task: Task) -> Grid:
        """Validate the axis names and values for `task` (host only). Returns self; raises ValueError."""
        if self.repeats < 1:
            raise ValueError(f"grid: members per cell must be >= 1, got {self.repeats}")
        names = [n for n, _ in self.axes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"grid: axis {', '.join(dup)} given twice")
        traced, static = task.traced_fields(), task.static_fields()
        for name, values in self.axes:
            if not values:
                raise ValueError(f"grid: {name} has no values")
            twice = [v for i, v in enumerate(values) if v in values[:i]]
            if twice:
                raise ValueError(f"grid: {name} value {twice[0]!r} given twice (each cell must differ)")
            if name in STRUCTURAL or name in static:
                raise ValueError(
                    f"grid: {name} changes the shape or structure of the compiled program; run each value as a "
                    "separate ensemble"
                )
            if name in TRAIN_AXES:
                check_number(name, values, "grid")
            elif name not in traced:
                allowed = ", ".join([*TRAIN_AXES, *traced])
                raise ValueError(f"grid: unknown axis {name!r}; allowed: {allowed}")
        task.member_params([{k: v for k, v in self.task_values(c).items()} for c in range(self.cells)])
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.axes)

    @property
    def cells(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    @property
    def members(self) -> int:
        """E = cells × repeats."""
        return self.cells * self.repeats

    def cell_of(self, member: int | np.ndarray) -> int | np.ndarray:
        """The cell of a member id."""
        return member // self.repeats

    def cell_values(self, cell: int) -> dict:
        """Axis name -> value of one cell."""
        return dict(zip(self.names, list(itertools.product(*(v for _, v in self.axes)))[cell], strict=True))

    def task_values(self, cell: int) -> dict:
        """The task-parameter part of `cell_values`."""
        return {k: v for k, v in self.cell_values(cell).items() if k not in TRAIN_AXES}

    def member_values(self, members: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Axis name -> (E,) values of the given member ids (numbers as float64/int64, init as str)."""
        cells = [self.cell_values(int(c)) for c in self.cell_of(np.asarray(members))]
        return {name: np.asarray([c[name] for c in cells]) for name in self.names}

    def hparams(self, base=None, members: Sequence[int] | np.ndarray | None = None):
        """The `jaxrnn.Hparams` of the grid's members (ids 0..E-1, or the given member ids: a shard of the
        grid): `base` (default `Hparams()`) with every axis replaced by its per-member values (training axes as fields,
        task axes under `task`)."""
        base = base or Hparams()
        values = self.member_values(np.arange(self.members) if members is None else np.asarray(members))
        train = {k: v.tolist() for k, v in values.items() if k in TRAIN_AXES}
        task = {k: v.tolist() for k, v in values.items() if k not in TRAIN_AXES}
        shared = {k: v for k, v in (base.task or {}).items() if k not in task}
        return base._replace(**train, task={**shared, **task} or None)

    def to_dict(self) -> dict:
        """JSON-safe: {"axes": [[name, [values]], ...], "repeats": R}."""
        return {"axes": [[n, [_json(v) for v in vals]] for n, vals in self.axes], "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: Mapping) -> Grid:
        """The grid of `to_dict`'s output (tuple-valued task axes come back as tuples)."""
        axes = tuple((str(n), tuple(_tuple(v) for v in vals)) for n, vals in d["axes"])
        return cls(axes, int(d["repeats"]))


def _json(v):
    if isinstance(v, (tuple, list)):
        return [_json(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def _tuple(v):
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


def parse_axis(text: str, task: Task) -> tuple[str, tuple]:
    """`NAME=V1,V2,...` (the CLI's `--grid`) -> (name, values typed like the Hparams field or the task field).
    NAME is a `jaxrnn train` option without its dashes (`lr`, `rec-noise` or `rec_noise`, `init`) or a task
    parameter. Raises ValueError naming the problem."""
    if "=" not in text:
        raise ValueError(f"--grid {text!r}: expected NAME=V1,V2,...")
    name, raw = (s.strip() for s in text.split("=", 1))
    name = name.replace("-", "_")
    items = [s.strip() for s in raw.split(",")] if raw.strip() else []
    if not items or any(not s for s in items):
        raise ValueError(f"--grid {text!r}: expected a comma-separated list of values after '='")
    if name in TRAIN_AXES:
        kind = TRAIN_AXES[name]
        if kind is str:
            return name, tuple(items)
        try:
            return name, tuple(float(s) for s in items)
        except ValueError:
            raise ValueError(f"--grid {text!r}: {name} takes numbers") from None
    defaults = type(task).parameters()
    if name not in defaults:
        return name, tuple(items)  # unknown: `Grid.check` names it with the allowed axes
    default = defaults[name]
    try:
        if isinstance(default, bool):
            raise ValueError
        if isinstance(default, int):
            return name, tuple(int(s) for s in items)
        if isinstance(default, float):
            return name, tuple(float(s) for s in items)
    except ValueError:
        raise ValueError(f"--grid {text!r}: {task.name}.{name} takes {type(default).__name__} values") from None
    return name, tuple(items)
