"""Task registry. `make_task(name, **params)` builds a task with its preset, overriding any parameter.

`name` is a built-in task's name (a key of `TASKS`) or `"MODULE:CLASS"`, a `Task` subclass defined outside the
package: `task_class` imports MODULE (from the current directory too) and checks CLASS. `task_source(task)` gives
the `"MODULE:CLASS"` a run directory records for such a task (None for a built-in one).

Each task class carries its training preset (`cls.preset`, a `TrainPreset`) and its success rule (`cls.success_rule`,
one sentence); `cls.static_fields()` / `cls.traced_fields()` say which fields fix shapes and which are traced params
(`task.default_params()`, `task.member_params(per_member)`, `task.sample(key, params)`).
"""

from __future__ import annotations

import importlib
import os
import sys

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

#: class attributes a `Task` subclass must define (the others have defaults in `Task`)
REQUIRED = ("name", "n_in", "n_out", "conditions")


def make_task(name: str, **params) -> Task:
    """The task `name` with its preset, `params` overriding fields (validated before any compilation).

    Args:
        name: a key of `TASKS`, or "MODULE:CLASS" naming a `Task` subclass (`task_class`).
        **params: field values replacing the class's defaults.
    Raises:
        ValueError: an unknown task, an unimportable or invalid user task, or a parameter the task refuses.
    """
    return task_class(name)().replace(**params)


def task_class(name: str) -> type[Task]:
    """The task class of `name`: `TASKS[name]`, or for "MODULE:CLASS" the class CLASS of module MODULE.

    MODULE is imported as Python imports it; when it is not found there, it is looked up in the current directory
    too (added to `sys.path` for this import only), so a `mytask.py` beside the command line's working directory
    serves. CLASS may be dotted (`Outer.Inner`).

    Raises:
        ValueError: one line: an unknown built-in name, MODULE not found or failing to import, CLASS missing, not a
            `Task` subclass, not a dataclass, or lacking a required class attribute or `sample`.
    """
    if ":" not in name:
        if name not in TASKS:
            raise ValueError(f"task: unknown task {name!r}; allowed: {', '.join(TASKS)}, or MODULE:CLASS (your own)")
        return TASKS[name]
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ValueError(f"task {name!r}: expected MODULE:CLASS, e.g. mytask:Ramp")
    module = _import(module_name, name)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"task {name!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return _check_class(name, obj)


def task_source(task: Task | type[Task]) -> str | None:
    """Where a task's class comes from as "MODULE:CLASS" (what `make_task` takes), or None for a built-in task.
    Raises ValueError for a class that could not be imported again (defined in `__main__` or inside a function)."""
    cls = task if isinstance(task, type) else type(task)
    if TASKS.get(getattr(cls, "name", None)) is cls:
        return None
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "the script being run" if cls.__module__ == "__main__" else "a function"
        raise ValueError(
            f"task {cls.__qualname__}: defined in {where}, so a run directory of it could not be reopened; define it "
            "in an importable module (e.g. mytask.py) and pass it as MODULE:CLASS or import it from there"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(module_name: str, spec: str):
    """Import `module_name`, from the current directory if the import path does not hold it."""
    importlib.invalidate_caches()  # a module written since the last import is found
    try:
        return _import_module(module_name, spec)
    except ModuleNotFoundError as e:
        if not _is_missing(e, module_name):
            raise ValueError(f"task {spec!r}: importing {module_name!r} failed: {e}") from None
    cwd = os.getcwd()
    if any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):  # the current directory was searched already
        raise ValueError(_not_found(spec, module_name))
    sys.path.insert(0, cwd)
    try:
        return _import_module(module_name, spec)
    except ModuleNotFoundError as e:
        if _is_missing(e, module_name):
            raise ValueError(_not_found(spec, module_name)) from None
        raise ValueError(f"task {spec!r}: importing {module_name!r} failed: {e}") from None
    finally:
        sys.path.remove(cwd)


def _import_module(module_name: str, spec: str):
    """`importlib.import_module`, any failure but a missing module as one-line ValueError."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise
    except Exception as e:  # the module's own code failed: a syntax error, an exception at import
        raise ValueError(f"task {spec!r}: importing {module_name!r} failed: {type(e).__name__}: {e}") from None


def _is_missing(error: ModuleNotFoundError, module_name: str) -> bool:
    """Whether `error` says that `module_name` (or a package above it) is missing, not a module it imports."""
    missing = error.name or ""
    return module_name == missing or module_name.startswith(missing + ".")


def _not_found(spec: str, module_name: str) -> str:
    return (
        f"task {spec!r}: no module named {module_name!r} (looked on the Python path and in {os.getcwd()}); make it "
        f"importable: put {module_name.replace('.', '/')}.py in the current directory, or its folder on PYTHONPATH"
    )


def _check_class(spec: str, obj) -> type[Task]:
    """`obj` if it is a usable `Task` subclass, else a one-line ValueError saying what it is instead."""
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        kind = type(obj).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        what = f"the class {obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else f"{article} {kind}"
        raise ValueError(f"task {spec!r} is {what}, not a subclass of jaxrnn.tasks.Task")
    if "__dataclass_fields__" not in vars(obj):
        raise ValueError(
            f"task {spec!r}: {obj.__qualname__} is not a dataclass; decorate it with "
            "@dataclasses.dataclass(frozen=True)"
        )
    missing = [a for a in REQUIRED if not hasattr(obj, a)]
    if obj.sample is Task.sample:
        missing.append("sample(key, params)")
    if missing:
        raise ValueError(f"task {spec!r}: {obj.__qualname__} does not define {', '.join(missing)}")
    return obj


__all__ = ["TASKS", "Task", "TrainPreset", "Trial", "make_task", "task_class", "task_source"]
