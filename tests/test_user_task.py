"""Tasks from outside the package: `make_task("MODULE:CLASS")`, the command line on them, run directories that record
and re-import their source, the one-line errors, and the README's example (`tests/data/user_task.py`, identical to
the README's code block), used here as `mytask.py` in a temporary current directory."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from jaxrnn import cli, runs
from jaxrnn.runs import store
from jaxrnn.runs.store import StoreError
from jaxrnn.tasks import TASKS, make_task, task_class, task_source
from jaxrnn.tasks.gates import And
from jaxrnn.training.evaluate import evaluate
from jaxrnn.training.train import TrainConfig

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


# The README's example run as a user runs it: the task file written as mytask.py in a folder outside the checkout, the
# `bash` block's commands run there through a shell, the `jaxrnn` console script and `python` of this environment, the
# checkout on no path. The exact commands train 8 members x 20 epochs x 3200 trials (about 75 s on 2 loaded CPUs, the
# snippet about 25 s), so they are slow; the fast variant appends `--epochs 1` to the train command and runs the
# snippet with `epochs=1`, nothing else changed.

#: appended to the README's python snippet: what it trained, as JSON (the held-out MSE before and after training)
SNIPPET_REPORT = """
import json as _json

_net = jaxrnn.TrainConfig(task).net
_before = jaxrnn.evaluate(task, _net, ens.params_init, n_trials=64).mse
_after = jaxrnn.evaluate(task, _net, ens.params_final, n_trials=64).mse
with open("snippet_result.json", "w") as _f:
    _json.dump({"task": repr(task), "members": ens.members.tolist(), "loss": ens.loss.tolist(),
                "mse_before": _before.tolist(), "mse_after": _after.tolist()}, _f)
"""


def _readme_example() -> tuple[str, list[str], str | None]:
    """The `## Your own task` section's task file (its first python block), the commands of its bash block (the
    trailing `# comments` stripped) and the python snippet after the bash block (None when there is none)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Your own task\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    langs = [lang for lang, _ in blocks]
    assert "python" in langs and "bash" in langs, f"the README's `## Your own task` has blocks {langs}"
    task_file = blocks[langs.index("python")][1]
    at = langs.index("bash")
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in blocks[at][1].splitlines()]
    snippet = next((code for lang, code in blocks[at + 1 :] if lang == "python"), None)
    return task_file, [c for c in commands if c], snippet


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: this environment's `python` and `jaxrnn` first on PATH, no PYTHONPATH."""
    bindir = Path(sys.executable).parent
    script = bindir / "jaxrnn"
    if not script.exists():  # e.g. a python whose scripts live elsewhere
        found = shutil.which("jaxrnn")
        assert found is not None, "the `jaxrnn` console script is not installed"
        script = Path(found)
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "PYTHONUSERBASE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join([str(bindir), str(script.parent), env.get("PATH", "")])
    return env


def _inside_checkout(path: str, cwd: Path) -> bool:
    resolved = Path(cwd, path or os.curdir).resolve()
    return resolved == ROOT or ROOT in resolved.parents


@pytest.fixture
def user_folder(tmp_path):
    """(folder, env, commands, snippet): an empty folder outside the checkout holding only the README's task file,
    and the environment a user's shell has there; checks the checkout is on no path of a python started there."""
    task_file, commands, snippet = _readme_example()
    folder = tmp_path.resolve()
    assert not _inside_checkout(str(folder), ROOT)
    env = _user_env()
    train = [c for c in commands if shlex.split(c)[:2] == ["jaxrnn", "train"]]
    assert len(train) == 1, f"the README's bash block has no single `jaxrnn train` command: {commands}"
    module = shlex.split(train[0])[2].split(":")[0]
    assert module == "mytask", "the README's example task is no longer mytask:..."
    (folder / f"{module}.py").write_text(task_file)

    probe = "import json, sys, jaxrnn, shutil; print(json.dumps([sys.path, shutil.which('jaxrnn')]))"
    python = shutil.which("python", path=env["PATH"])  # `python` in the user's shell: this environment's
    assert python is not None and Path(python).parent == Path(sys.executable).parent
    done = subprocess.run([python, "-c", probe], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path, script = json.loads(done.stdout)
    assert not [p for p in path if _inside_checkout(p, folder)], path
    assert Path(script).parent == Path(sys.executable).parent or script == shutil.which("jaxrnn")
    assert not (folder / "tests").exists() and sorted(p.name for p in folder.iterdir()) == [f"{module}.py"]
    return folder, env, commands, snippet


def _shell(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`command` exactly as a user types it into a shell in `folder`."""
    done = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done


def _load_there(folder: Path, run_dir: str, monkeypatch) -> store.Run:
    """The run as `jaxrnn show` in `folder` loads it (its task re-imported from mytask.py there), in this process."""
    monkeypatch.chdir(folder)
    sys.modules.pop("mytask", None)
    try:
        run = store.load_run(folder / run_dir)
        assert type(run.config.task).__module__ == "mytask"
        assert run.config.task == make_task("mytask:Ramp")
        # the held-out MSE of the untrained and the trained networks, on the same 64 trials
        net = run.config.net
        before = evaluate(run.config.task, net, run.ensemble.params_init, n_trials=64).mse
        after = evaluate(run.config.task, net, run.ensemble.params_final, n_trials=64).mse
    finally:
        sys.modules.pop("mytask", None)
    assert np.all(after < before), (before, after)
    return run


@pytest.mark.parametrize(
    "epochs", [pytest.param(None, marks=pytest.mark.slow, id="exact"), pytest.param(1, id="one_epoch")]
)
def test_readme_commands_run_outside_the_checkout(user_folder, monkeypatch, epochs):
    """The README's bash block, run where mytask.py is (exact, or with `--epochs 1` appended to the train command):
    `jaxrnn tasks` shows the parameters, preset and success rule; `jaxrnn train` leaves a complete run directory
    that records its task's source, whose loss fell, and that `jaxrnn show` reopens."""
    folder, env, commands, _ = user_folder
    outputs = {}
    for command in commands:
        argv = shlex.split(command)
        if argv[:2] == ["jaxrnn", "train"] and epochs is not None:
            command = f"{command} --epochs {epochs}"
            argv = shlex.split(command)
        outputs[tuple(argv[:2])] = (argv, _shell(command, folder, env))

    argv, done = outputs[("jaxrnn", "tasks")]
    lines = done.stdout.splitlines()
    assert argv[2:] == ["mytask:Ramp"]
    assert lines[0].startswith("mytask:Ramp  (1 in, 1 out; conditions: no_pulse, pulse)  After a pulse, ramp")
    for param in ("    T                200  (static)", "    noise            0.1", "    tolerance        0.25",
                  "    pulse_start      30", "    duration         60"):  # fmt: skip
        assert param in lines, done.stdout
    assert "training preset: threshold=0.001, n_train=3200, batch_size=64, units=50" in done.stdout
    assert "success rule: a trial is correct" in done.stdout

    argv, done = outputs[("jaxrnn", "train")]
    out, members = argv[argv.index("--out") + 1], int(argv[argv.index("--members") + 1])
    assert (out, members) == ("runs/ramp", 8)
    run_dir = folder / out
    assert f"{out}: task ramp, E={members}, N=50" in done.stdout and "success   " in done.stdout, done.stdout
    names = {p.name for p in run_dir.iterdir()}
    assert {store.CONFIG, store.PARAMS, store.HISTORY, store.MEMBERS, store.EVALUATION} <= names
    assert store.CHECKPOINT not in names and not [n for n in names if n.endswith(".tmp")], names
    meta = json.loads((run_dir / store.CONFIG).read_text())
    params = {"T": 200, "noise": 0.1, "tolerance": 0.25, "pulse_start": 30, "duration": 60}
    assert meta["complete"] is True and meta["argv"] == argv
    assert meta["config"]["task"] == {"name": "ramp", "source": "mytask:Ramp", "params": params}
    assert meta["config"]["n_train"] == 3200 and meta["config"]["units"] == 50  # the task's preset
    assert meta["members"] == {"start": 0, "stop": members}
    n_epochs = epochs or meta["config"]["epochs"]
    assert meta["config"]["epochs"] == n_epochs
    with open(run_dir / store.MEMBERS, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["member"]) for r in rows] == list(range(members))
    assert all(np.isfinite(float(r["final_loss"])) and r["diverged"] == "0" for r in rows), rows

    run = _load_there(folder, out, monkeypatch)
    loss = run.ensemble.loss
    assert loss.shape == (members, n_epochs) and np.all(np.isfinite(loss)) and not run.ensemble.diverged.any()
    assert run.evaluation is not None and run.evaluation.success.shape == (members,)
    if epochs is None:  # the README's run: every member's loss fell over training, and most learned the ramp
        assert np.all(loss[:, -1] < loss[:, 0]) and np.all(loss[:, -1] < 0.05), loss
        assert run.evaluation.success.mean() >= 0.75, run.evaluation.success

    done = _shell(f"jaxrnn show {out}", folder, env)
    assert "ramp (T=200, noise=0.1, tolerance=0.25, pulse_start=30, duration=60)" in done.stdout
    assert f"members   {members} (ids 0..{members - 1}), seed 0" in done.stdout


@pytest.mark.parametrize(
    "epochs", [pytest.param(None, marks=pytest.mark.slow, id="exact"), pytest.param(1, id="one_epoch")]
)
def test_readme_snippet_runs_outside_the_checkout(user_folder, epochs):
    """The README's python snippet (`jaxrnn.make_task("mytask:Ramp", ...)`, `jaxrnn.fit`), run as a script where
    mytask.py is (exact, or with `epochs=1`): it trains 8 members of the ramp and their held-out MSE falls."""
    folder, env, _, snippet = user_folder
    assert snippet is not None and "jaxrnn.fit(" in snippet, "the README's `## Your own task` has no python snippet"
    if epochs is not None:
        assert snippet.count("epochs=5") == 1, snippet
        snippet = snippet.replace("epochs=5", f"epochs={epochs}")
    (folder / "snippet.py").write_text(snippet + SNIPPET_REPORT)
    _shell("python snippet.py", folder, env)
    result = json.loads((folder / "snippet_result.json").read_text())
    assert result["task"] == "Ramp(T=200, noise=0.1, tolerance=0.25, pulse_start=30, duration=40)"
    loss = np.array(result["loss"])
    assert result["members"] == list(range(8)) and loss.shape == (8, epochs or 5) and np.all(np.isfinite(loss))
    assert np.all(np.array(result["mse_after"]) < np.array(result["mse_before"])), result
    if epochs is None:
        assert np.all(loss[:, -1] < loss[:, 0]), loss
