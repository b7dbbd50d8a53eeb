"""Task registry. `make_task(name, **params)` builds a task with the paper preset, overriding any parameter.

Each task class carries its training preset (`cls.preset`, a `TrainPreset`) and its success rule (`cls.success_rule`,
one sentence); `cls.static_fields()` / `cls.traced_fields()` say which fields fix shapes and which are traced params
(`task.default_params()`, `task.member_params(per_member)`, `task.sample(key, params)`).
"""

from __future__ import annotations

from jaxrnn.tasks.base import Task, TrainPreset, Trial
from jaxrnn.tasks.cognitive import AndOrContext, ContextDM, DelayedMatchToSample, ParametricWorkingMemory, PerceptualDM
from jaxrnn.tasks.flipflop import FlipFlop, FlipFlop3
from jaxrnn.tasks.gates import And, Not, Or, Xor
from jaxrnn.tasks.timing import Oscillation, TimeReproduction

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        *(And, Or, Xor, Not, FlipFlop, FlipFlop3, TimeReproduction, Oscillation),
        *(PerceptualDM, ContextDM, DelayedMatchToSample, ParametricWorkingMemory, AndOrContext),
    )
}


def make_task(name: str, **params) -> Task:
    """The task `name` with its paper preset, `params` overriding fields (validated before any compilation)."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return TASKS[name]().replace(**params)


__all__ = ["TASKS", "Task", "TrainPreset", "Trial", "make_task"]
