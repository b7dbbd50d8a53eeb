"""Tasks from outside the package: `make_task("MODULE:CLASS")`, the command line on them, run directories that record
and re-import their source, the one-line errors, and the README's example (`tests/data/user_task.py`, identical to
the README's code block), used here as `mytask.py` in a temporary current directory."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from jaxrnn import cli, runs, store
from jaxrnn.store import StoreError
from jaxrnn.tasks import TASKS, make_task, task_class, task_source
from jaxrnn.tasks.gates import And
from jaxrnn.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "data" / "user_task.py"
TINY = ["--units", "4", "--epochs", "1", "--n-train", "8", "--batch-size", "4", "--members", "2", "--trials", "16"]
#: a small Ramp: short trials compile and run faster
SMALL = {"T": 60, "pulse_start": 5, "duration": 20}
BAD_TASKS = """
import dataclasses
from typing import ClassVar

from mytask import Ramp
from jaxrnn.tasks import Task


class Undecorated(Ramp):
    extra: int = 3


@dataclasses.dataclass(frozen=True)
class NoSample(Task):
    name: ClassVar[str] = "no_sample"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    conditions: ClassVar[tuple[str, ...]] = ("a",)


value = 3
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A current directory holding mytask.py (the README's example), bad_tasks.py and broken.py, not on sys.path;
    the modules imported from it are forgotten afterwards."""
    shutil.copy(EXAMPLE, tmp_path / "mytask.py")
    (tmp_path / "bad_tasks.py").write_text(BAD_TASKS)
    (tmp_path / "broken.py").write_text('raise RuntimeError("boom")\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p or os.curdir) != str(tmp_path)])
    names = ("mytask", "bad_tasks", "broken")
    for name in names:
        sys.modules.pop(name, None)
    yield tmp_path
    for name in names:
        sys.modules.pop(name, None)


def _main(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_readme_example_is_the_tested_module():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Your own task\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "the README's `## Your own task` has no python block"
    assert block.group(1) == EXAMPLE.read_text()


def test_make_task_imports_from_the_current_directory_only_for_the_lookup(here):
    path = list(sys.path)
    task = make_task("mytask:Ramp", duration=40)
    assert sys.path == path and type(task).__module__ == "mytask"
    assert task.name == "ramp" and task.duration == 40 and task_source(task) == "mytask:Ramp"
    assert task_class("mytask:Ramp") is type(task) and task == make_task("mytask:Ramp", duration=40)
    assert task_source(make_task("and")) is None and task_source(TASKS["flipflop3"]) is None


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ("nosuch_module_xyz:Ramp", "no module named 'nosuch_module_xyz'"),
        ("mytask:Nope", "module 'mytask' has no attribute 'Nope'"),
        ("mytask:jax", "is a module, not a subclass of jaxrnn.tasks.Task"),
        ("bad_tasks:value", "is an int, not a subclass of jaxrnn.tasks.Task"),
        ("mytask:Trial", "is the class jaxrnn.tasks.base.Trial, not a subclass"),
        ("bad_tasks:Undecorated", "Undecorated is not a dataclass"),
        ("bad_tasks:NoSample", "NoSample does not define sample(key, params)"),
        ("mytask:Task", "Task does not define name, n_in, n_out, conditions, sample(key, params)"),
        ("broken:Ramp", "importing 'broken' failed: RuntimeError: boom"),
        ("mytask:", "expected MODULE:CLASS"),
        ("nope", "unknown task 'nope'"),
    ],
)
def test_make_task_errors_are_one_line_value_errors(here, spec, expect):
    with pytest.raises(ValueError) as info:
        make_task(spec)
    assert expect in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["train", "nosuch_module_xyz:Ramp", *TINY], "no module named 'nosuch_module_xyz'"),
        (["train", "mytask:Nope", *TINY], "has no attribute 'Nope'"),
        (["train", "mytask:jax", *TINY], "not a subclass of jaxrnn.tasks.Task"),
        (["train", "mytask:Ramp", "--param", "nope=1", *TINY], "ramp has no parameter 'nope'"),
        (["train", "mytask:Ramp", "--param", "duration=x", *TINY], "ramp.duration must be an integer"),
        (["train", "mytask:Ramp", "--param", "duration=500", *TINY], "the ramp's end 540 < T = 200"),
        (["train", "mytask:Ramp", "--grid", "duration=40,500", *TINY], "the ramp's end 540 < T = 200"),
        (["sample", "mytask:Nope", "--trials", "4", "--out", "trials.npz"], "has no attribute 'Nope'"),
        (["tasks", "mytask:Nope"], "has no attribute 'Nope'"),
        (["tasks", "broken:Ramp"], "RuntimeError: boom"),
    ],
)
def test_cli_errors_exit_2_with_one_line(here, capsys, argv, expect):
    if argv[0] == "train":
        argv = [*argv, "--out", "run", "--no-progress"]
    code, out, err = _main(argv, capsys)
    assert code == 2 and expect in err and err.count("\n") == 1 and out == ""
    assert not (here / "run").exists() and not (here / "trials.npz").exists()


def test_cli_tasks_lists_builtins_and_shows_a_user_task(here, capsys):
    code, out, _ = _main(["tasks"], capsys)
    listed = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and listed == list(TASKS)
    code, out, _ = _main(["tasks", "mytask:Ramp"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("mytask:Ramp  (1 in, 1 out; conditions: no_pulse, pulse)  After a pulse")
    assert "    T                200  (static)" in lines and "    duration         60" in lines
    assert "training preset: threshold=0.001, n_train=3200" in out and "success rule: a trial is correct" in out


def test_config_json_task_source_round_trip(here):
    builtin = store.config_to_dict(TrainConfig(make_task("and")))["task"]
    assert list(builtin) == ["name", "params"]
    config = TrainConfig(make_task("mytask:Ramp", duration=40))
    d = json.loads(json.dumps(store.config_to_dict(config)))
    params = {"T": 200, "noise": 0.1, "tolerance": 0.25, "pulse_start": 30, "duration": 40}
    assert d["task"] == {"name": "ramp", "source": "mytask:Ramp", "params": params}
    assert store.config_from_dict(d) == config
    with pytest.raises(StoreError, match=r"task 'ramp' of this run comes from 'gone_xyz:Ramp': no module named "
                       r"'gone_xyz'.*make it importable"):  # fmt: skip
        store.config_from_dict({**d, "task": {**d["task"], "source": "gone_xyz:Ramp"}})
    with pytest.raises(StoreError, match="now defines task 'ramp'; this run trained 'slope'"):
        store.config_from_dict({**d, "task": {**d["task"], "name": "slope"}})


@dataclasses.dataclass(frozen=True)
class _OtherRamp(And):
    """Another task class that calls itself "ramp"."""

    name: ClassVar[str] = "ramp"


def test_cli_train_show_evaluate_reload(here, capsys, monkeypatch):
    params = [f"--param={k}={v}" for k, v in SMALL.items()]
    train = ["train", "mytask:Ramp", *params, *TINY, "--out", "runs/ramp", "--no-progress"]
    code, out, err = _main(train, capsys)
    assert code == 0, err
    meta = json.loads((here / "runs" / "ramp" / "config.json").read_text())
    assert meta["config"]["task"]["source"] == "mytask:Ramp" and meta["config"]["task"]["name"] == "ramp"

    code, out, err = _main(["show", "runs/ramp"], capsys)
    assert code == 0 and "ramp (T=60" in out, err
    code, out, err = _main(["evaluate", "runs/ramp", "--trials", "16"], capsys)
    assert code == 0, err
    run = store.load_run(here / "runs" / "ramp")
    assert run.config.task == make_task("mytask:Ramp", **SMALL) and type(run.config.task).__module__ == "mytask"
    assert run.evaluation is not None and run.evaluation.success.shape == (2,)

    code, out, err = _main(train, capsys)  # the same command: the finished run, loaded
    assert code == 0 and "differ" not in err, err
    code, out, err = _main([a.replace("duration=20", "duration=21") for a in train], capsys)
    assert code == 2 and "differs in: task.duration" in err
    other = dataclasses.replace(run.config, task=_OtherRamp())
    assert "task" in store.same_run(run.meta, other, run.seed, run.hparams, run.members)
    assert store.same_run(run.meta, run.config, run.seed, run.hparams, run.members) == []

    (here / "elsewhere").mkdir()
    monkeypatch.chdir(here / "elsewhere")
    sys.modules.pop("mytask")
    code, out, err = _main(["evaluate", str(here / "runs" / "ramp")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "comes from 'mytask:Ramp': no module named 'mytask'" in err and "make it importable" in err


def test_resume_from_a_checkpoint(here):
    config = TrainConfig(make_task("mytask:Ramp", **SMALL), units=4, epochs=2, n_train=8, batch_size=4)

    def interrupt(p):
        if not p.compiling:  # after the first epoch's checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.train_run(here / "run", config, seed=0, members=2, n_eval=16, checkpoint_every=1, progress=interrupt)
    assert (here / "run" / store.CHECKPOINT).exists()
    run = runs.train_run(here / "run", config, seed=0, members=2, n_eval=16)
    assert run.origin == "resumed" and store.load_run(here / "run").config == config
