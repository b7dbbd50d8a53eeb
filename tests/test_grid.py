"""Heterogeneous ensembles: a grid of per-member numbers (init × lr × delay × ...) trains as ONE compiled program, and
member i of it is the network member i of a homogeneous run with that member's values is."""

import dataclasses
import logging
import os

import jax
import numpy as np
import pytest

from jaxrnn.cli import main
from jaxrnn.runs import store, train_run
from jaxrnn.tasks import make_task
from jaxrnn.training import train as train_module
from jaxrnn.training.grid import Grid, parse_axis
from jaxrnn.training.train import Hparams, TrainConfig, fit, resolve

TASK = dict(T=80, pulse_start=5)
SIZES = dict(units=8, epochs=2, batch_size=4, n_train=16)


def time_task(**kw):
    return make_task("time_reproduction", **{**TASK, **kw})


def allclose(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **{"rtol": 2e-5, "atol": 2e-6, **kw}), a, b)


def _member_alone(values: dict, i: int, base: dict, fast: bool = True):
    """Member i trained alone, its values given the homogeneous way: TrainConfig fields and the task's own params."""
    task_values = {k: v for k, v in values.items() if k in ("delay", "noise")}
    cfg_values = {k: v for k, v in values.items() if k in ("init", "rec_noise", "e_fraction")}
    cfg = TrainConfig(time_task(**task_values), **{**SIZES, **base, **cfg_values})
    return fit(cfg, 0, [i], Hparams(lr=values.get("lr", 1e-3)), fast_backward=fast)


@pytest.mark.parametrize(
    "fast, base, axes",
    [
        (True, {}, dict(init=("orthogonal", "normal"), lr=(1e-3, 3e-3), delay=(10, 25))),
        (False, {}, dict(init=("orthogonal", "normal"), lr=(1e-3, 3e-3), delay=(10, 25))),
        (True, dict(dale=True), dict(e_fraction=(0.5, 0.75), rec_noise=(0.0, 0.1), delay=(10, 25))),
    ],
    ids=["fast", "autodiff", "dale-noise"],
)
def test_member_of_a_grid_equals_the_homogeneous_member(fast, base, axes):
    cfg = TrainConfig(time_task(), **SIZES, **base)
    grid = Grid.of(cfg.task, repeats=1, **axes)
    ens = fit(cfg, 0, range(grid.members), grid.hparams(Hparams(lr=1e-3)), fast_backward=fast)
    assert len({float(x) for x in ens.loss[:, -1]}) == grid.members  # the cells really differ
    for i in (0, 5, 7):  # cells that differ in every axis from one another
        alone = _member_alone(grid.cell_values(i), i, base, fast)
        allclose(jax.tree.map(lambda x, i=i: x[i], ens.params_init), jax.tree.map(lambda x: x[0], alone.params_init))
        allclose(jax.tree.map(lambda x, i=i: x[i], ens.params_final), jax.tree.map(lambda x: x[0], alone.params_final))
        allclose(ens.loss[i], alone.loss[0])


def _program_compiles(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(("Compiling jit(run_epochs", "Compiling jit(init"))
    ]


def test_numbers_set_through_the_config_reuse_the_compiled_program(caplog):
    """The threshold, the init law, the E fraction and a task's delay are traced numbers wherever they are set: a
    config that differs from a trained one in those alone trains with the program already compiled (no compile of
    init or run_epochs), and trains the networks of its own numbers (equal to a program compiled for it afresh)."""
    first = TrainConfig(time_task(delay=10), **SIZES, threshold=0.0, dale=True)
    second = dataclasses.replace(first, task=time_task(delay=25), threshold=0.5, init="normal", e_fraction=0.5)
    assert train_module.program_key(first) == train_module.program_key(second)
    ens_first = fit(first, 0, range(2))
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        ens = fit(second, 0, range(2))
    assert _program_compiles(caplog) == []
    train_module.clear_programs()
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        fresh = fit(second, 0, range(2))
    assert len(_program_compiles(caplog)) == 2  # init and run_epochs: the log does see these compiles
    allclose(ens.params_init, fresh.params_init)
    allclose(ens.params_final, fresh.params_final)
    allclose(ens.loss, fresh.loss)
    assert not np.allclose(ens.params_init["W_rec"], ens_first.params_init["W_rec"])  # normal init, other E/I split
    assert ens.params_init["signs"].sum(axis=1).tolist() == [0.0, 0.0]  # e_fraction 0.5 of 8 units: 4 E, 4 I


def test_evaluating_tasks_that_differ_in_traced_params_compiles_nothing_new(caplog):
    """Held-out trials and metrics of a task whose delay differs reuse the programs compiled for the first task, and
    score the second task's own trials (equal to programs compiled for it afresh)."""
    from jaxrnn.training.evaluate import _PROGRAMS, evaluate, heldout_trials

    cfg = TrainConfig(time_task(delay=10), **SIZES)
    params = train_module.init_ensemble(cfg, 0, range(2)).params
    evaluate(cfg.task, cfg.net, params, n_trials=8)
    other = time_task(delay=25)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        reused = evaluate(other, cfg.net, params, n_trials=8)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")] == []
    _PROGRAMS.clear()
    fresh = evaluate(other, cfg.net, params, n_trials=8)
    for a, b in zip(reused, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
    first, second = heldout_trials(cfg.task, 8), heldout_trials(other, 8)
    assert not np.array_equal(np.asarray(first.targets), np.asarray(second.targets))


def test_a_shape_or_a_static_field_splits_programs():
    base = TrainConfig(time_task(), **SIZES)
    assert train_module.program_key(base) != train_module.program_key(dataclasses.replace(base, units=9))
    assert train_module.program_key(base) != train_module.program_key(dataclasses.replace(base, task=time_task(T=90)))
    assert train_module.program_key(base) != train_module.program_key(dataclasses.replace(base, dale=True))


def test_a_grid_of_cells_compiles_once(caplog):
    """Six cells (lr × delay), one compiled training program (counted from JAX's compilation log)."""
    cfg = TrainConfig(time_task(noise=0.05), **SIZES, threshold=0.0)
    grid = Grid.of(cfg.task, repeats=2, lr=(1e-3, 3e-3), delay=(10, 20, 30))
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        fit(cfg, 5, range(grid.members), grid.hparams())
        compiles = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling jit(run_epochs")]
        assert len(compiles) == 1, compiles
        caplog.clear()  # other values of the same grid axes: no new program
        fit(cfg, 5, range(grid.members), Grid.of(cfg.task, repeats=2, lr=(1e-2, 3e-2), delay=(5, 15, 35)).hparams())
        assert not [r for r in caplog.records if r.getMessage().startswith("Compiling jit(run_epochs")]


def test_per_member_init_law_draws_that_law():
    N = 64
    cfg = TrainConfig(time_task(), **{**SIZES, "units": N})
    grid = Grid.of(cfg.task, repeats=3, init=("orthogonal", "normal"))
    W = np.asarray(train_module.init_ensemble(cfg, 0, range(grid.members), grid.hparams()).params["W_rec"], np.float64)
    for i in range(grid.members):
        gram = W[i] @ W[i].T
        if grid.cell_values(grid.cell_of(i))["init"] == "orthogonal":
            np.testing.assert_allclose(gram, np.eye(N), atol=1e-5)
        else:
            assert abs(W[i].std() * np.sqrt(N) - 1.0) < 0.05  # N(0, 1/N) entries
            assert np.max(np.abs(gram - np.eye(N))) > 0.3


def test_per_member_threshold_stops_exactly_its_members():
    cfg = TrainConfig(time_task(), **{**SIZES, "epochs": 3})
    grid = Grid.of(cfg.task, repeats=2, threshold=(0.0, 10.0))  # 0: never; 10: above any epoch loss
    ens = fit(cfg, 0, range(grid.members), grid.hparams())
    np.testing.assert_array_equal(ens.stop_epoch, [0, 0, 1, 1])
    never = fit(cfg, 0, [2, 3], Hparams(threshold=0.0))  # members 2, 3 trained on without the threshold
    assert not np.allclose(never.params_final["W_rec"], ens.params_final["W_rec"][2:])


def test_grid_run_directory_columns_resume_and_show(tmp_path, capsys):
    cfg = TrainConfig(time_task(), **SIZES)
    grid = Grid.of(cfg.task, repeats=2, lr=(1e-3, 3e-3), delay=(10, 25))
    run = train_run(tmp_path / "run", cfg, grid=grid, n_eval=16)
    assert run.grid == grid and len(run.members) == 8
    rows = store.load_members_table(tmp_path / "run")
    assert [(float(r["lr"]), int(r["delay"])) for r in rows] == [
        (v["lr"], v["delay"]) for v in (grid.cell_values(grid.cell_of(i)) for i in range(8))
    ]
    assert [values for values, _ in run.cells()] == [grid.cell_values(c) for c in range(4)]
    for values, idx in run.cells():  # a cell's subset carries its members and their own numbers only
        cell = run.subset(idx)
        assert len(cell.members) == 2 and cell.value("lr") == f"{values['lr']:g}"
        assert cell.hparams.task["delay"] == [values["delay"]] * 2
    again = train_run(tmp_path / "run", cfg, grid=grid, n_eval=16)  # the same grid: complete, reused
    assert again.origin == "loaded"
    with pytest.raises(ValueError, match="different config"):
        train_run(tmp_path / "run", cfg, grid=Grid.of(cfg.task, repeats=2, lr=(1e-3, 1e-2), delay=(10, 25)))
    assert main(["show", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "lr delay members success 95% Wilson median distance" in " ".join(out.split("\n")[-6].split())
    cells = [line.split() for line in out.splitlines()[-4:]]  # one row per cell: lr, delay, members, successes, ...
    assert [(float(c[0]), int(c[1]), int(c[2])) for c in cells] == [
        (1e-3, 10, 2),
        (1e-3, 25, 2),
        (3e-3, 10, 2),
        (3e-3, 25, 2),
    ]


def test_resolve_validates_per_member_values():
    cfg = TrainConfig(time_task(), **SIZES)
    with pytest.raises(ValueError, match="lr has 2 values for 3 members"):
        resolve(cfg, Hparams(lr=[1e-3, 2e-3]), 3)
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        resolve(cfg, Hparams(init=["normal", "zeros"]), 2)
    with pytest.raises(ValueError, match="does not fit in T"):
        resolve(cfg, Hparams(task={"delay": [10, 500]}), 2)
    with pytest.raises(ValueError, match="changes the shape"):
        Grid.of(cfg.task, units=(8, 16))
    with pytest.raises(ValueError, match="changes the shape"):
        Grid.of(cfg.task, T=(80, 100))
    assert parse_axis("rec-noise=0,0.1", cfg.task) == ("rec_noise", (0.0, 0.1))
    assert parse_axis("delay=10,20", cfg.task) == ("delay", (10, 20))


BASE = ["train", "time_reproduction", "--units", "8", "--epochs", "1", "--n-train", "16", "--batch-size", "4",
        "--param", "T=80", "--param", "pulse_start=5", "--out", "run"]  # fmt: skip


@pytest.mark.parametrize(
    "grid, expect",
    [
        (["--grid", "wings=1,2"], "unknown axis 'wings'"),
        (["--grid", "lr=fast,slow"], "lr takes numbers"),
        (["--grid", "delay=1.5,2"], "time_reproduction.delay takes int values"),
        (["--grid", "units=8,16"], "changes the shape or structure"),
        (["--grid", "T=80,100"], "changes the shape or structure"),
        (["--grid", "lr="], "expected a comma-separated list"),
        (["--grid", "lr=1e-3,,2e-3"], "expected a comma-separated list"),
        (["--grid", "lr=1e-3", "--grid", "lr=2e-3"], "axis lr given twice"),
        (["--grid", "delay=10,900"], "does not fit in T"),
        (["--grid", "init=orthogonal,zeros"], "grid: unknown init 'zeros'; allowed: orthogonal, normal"),
        (["--grid", "lr=1e-3,-1e-3"], "grid: lr must be > 0, got -0.001"),
        (["--grid", "e_fraction=0.5,1"], "grid: e_fraction must lie in (0, 1), got 1"),
    ],
)
def test_cli_bad_grid_one_line_exit_2_nothing_written(grid, expect, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    try:
        code = main([*BASE, *grid])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
