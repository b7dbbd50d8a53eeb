"""`jaxrnn plot` of a grid run: every drawn member on trials of its own task params, loss curves coloured and named
by cell, members named with their cell; a homogeneous run keeps the plain figures."""

import os
from pathlib import Path

import jax
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from jaxrnn.cells.network import outputs  # noqa: E402
from jaxrnn.cli import _member_trials, _one_per_condition, main  # noqa: E402
from jaxrnn.plots import run as plots  # noqa: E402
from jaxrnn.runs import (
    store,  # noqa: E402
    train_run,  # noqa: E402
)
from jaxrnn.tasks import make_task  # noqa: E402
from jaxrnn.training.evaluate import heldout_trials  # noqa: E402
from jaxrnn.training.grid import Grid  # noqa: E402
from jaxrnn.training.train import Hparams, TrainConfig  # noqa: E402

TASK = dict(T=80, pulse_start=5)
SIZES = dict(units=8, epochs=1, batch_size=4, n_train=16)
DELAYS = (10, 25)


def _config():
    return TrainConfig(make_task("time_reproduction", **TASK), **SIZES)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """Four members, two per delay cell (members 0, 1: delay 10; members 2, 3: delay 25)."""
    config = _config()
    grid = Grid.of(config.task, repeats=2, delay=DELAYS)
    path = tmp_path_factory.mktemp("grid") / "run"
    return train_run(path, config, seed=3, grid=grid, hparams=Hparams(lr=1e-3), n_eval=16)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "run"
    return train_run(path, _config(), seed=3, members=2, hparams=Hparams(lr=1e-3), n_eval=16)


def _expected_trials(delay: int, k: int):
    """The held-out trials of a homogeneous task with this delay, chosen as `jaxrnn plot` chooses them."""
    pool = heldout_trials(make_task("time_reproduction", **TASK, delay=delay), max(64, k))
    return jax.tree.map(lambda x: np.asarray(x)[_one_per_condition(np.asarray(pool.condition), k)], pool)


def _figures(monkeypatch, argv) -> dict[str, object]:
    """{file name: figure} of the figures `main(argv)` saves (kept open; closed by the caller)."""
    figures = {}

    def keep(fig, path):
        figures[Path(path).name] = fig
        return Path(path)

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    monkeypatch.setattr(plots, "_save", keep)
    assert main([str(a) for a in argv]) == 0
    return figures


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_each_member_is_drawn_on_trials_of_its_own_task_params(grid_run):
    k = 3
    params = grid_run.ensemble.params_final
    drawn = {}
    for i, delay in ((0, 10), (3, 25)):
        trials, out = _member_trials(grid_run, i, k)
        want = _expected_trials(delay, k)
        for name in ("inputs", "targets", "mask", "condition"):
            np.testing.assert_allclose(getattr(trials, name), getattr(want, name), atol=1e-6, err_msg=name)
        net = jax.tree.map(lambda x, i=i: np.asarray(x)[i], params)
        expect = jax.vmap(outputs, in_axes=(None, 0, None))(net, want.inputs, grid_run.config.net)
        np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
        drawn[delay] = trials
    assert not np.allclose(drawn[10].targets, drawn[25].targets)  # the cells' trials really differ


def test_grid_plot_names_cells_and_draws_each_member_on_its_own_trials(grid_run, monkeypatch):
    # best member 0 (delay 10), worst member 3 (delay 25): their trials differ, so each gets its own panel
    ev = grid_run.evaluation._replace(distance=np.array([1.0, 2.0, 3.0, 4.0]))
    store.write_evaluation(grid_run.path, grid_run.ensemble, ev, grid_run.seed, grid_run.evaluation_settings)
    figures = _figures(monkeypatch, ["plot", grid_run.path, "--trials", "2"])
    try:
        assert _legend(figures["loss.png"].axes[0]) == ["delay = 10", "delay = 25"]

        fig = figures["trials_best_worst.png"]
        out_axes = fig.axes[1::2][:2]  # the first row: member 0's then member 3's target-and-outputs column
        assert [_legend(ax)[1] for ax in out_axes] == [
            "best member 0 (delay = 10, d=1.00)",
            "worst member 3 (delay = 25, d=4.00)",
        ]
        assert "delay = 10" in out_axes[0].get_title() and "delay = 25" in out_axes[1].get_title()
        for ax, i, delay in zip(out_axes, (0, 3), DELAYS, strict=True):
            target, output = (line.get_ydata() for line in ax.get_lines()[:2])
            np.testing.assert_allclose(target, _expected_trials(delay, 2).targets[0, :, 0], atol=1e-6)
            np.testing.assert_allclose(output, _member_trials(grid_run, i, 2)[1][0, :, 0], rtol=1e-5, atol=1e-6)

        assert "member 0 (delay = 10)" in figures["W_rec.png"].get_suptitle()
    finally:
        for fig in figures.values():
            plots.plt.close(fig)


def test_members_of_one_cell_share_one_panel(grid_run, monkeypatch):
    ev = grid_run.evaluation._replace(distance=np.array([1.0, 4.0, 3.0, 2.0]))  # best 0, worst 1: both delay 10
    store.write_evaluation(grid_run.path, grid_run.ensemble, ev, grid_run.seed, grid_run.evaluation_settings)
    figures = _figures(monkeypatch, ["plot", grid_run.path, "--trials", "2"])
    try:
        fig = figures["trials_best_worst.png"]
        assert len(fig.axes) == 2 * 2  # 2 trials x (inputs, outputs): one panel
        assert _legend(fig.axes[1]) == [
            "target",
            "best member 0 (delay = 10, d=1.00)",
            "worst member 1 (delay = 10, d=4.00)",
        ]
        assert "delay" not in fig.axes[1].get_title()  # one panel: no cell heading
    finally:
        for fig in figures.values():
            plots.plt.close(fig)


def test_plain_run_keeps_the_plain_figures(plain_run, monkeypatch):
    figures = _figures(monkeypatch, ["plot", plain_run.path, "--trials", "2"])
    try:
        assert set(figures) == {"loss.png", "trials_best_worst.png", "eigenvalues.png", "W_rec.png", "weights_hist.png"}
        assert _legend(figures["loss.png"].axes[0]) == []
        fig = figures["trials_best_worst.png"]
        assert len(fig.axes) == 2 * 2  # one panel: both members on the task's own trials
        names = _legend(fig.axes[1])
        assert names[0] == "target" and len(names) == 3
        assert all("delay" not in n and n.endswith(")") and "(d=" in n for n in names[1:])
        want = _expected_trials(make_task("time_reproduction", **TASK).delay, 2)
        np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), want.targets[0, :, 0], atol=1e-6)
        title = figures["W_rec.png"].get_suptitle()
        assert title.endswith(f"member {plain_run.members[0]}") or title.endswith(f"member {plain_run.members[1]}")
    finally:
        for fig in figures.values():
            plots.plt.close(fig)


def test_loss_curves_name_every_cell_once(monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(fig) or Path(path))
    loss = np.array([[1.0, 0.5], [1.0, 0.4], [np.nan, np.nan], [2.0, 1.0]])
    cells = [("lr = 0.001", np.array([0, 1])), ("lr = 0.01", np.array([2, 3]))]
    plots.loss_curves(loss, np.zeros(4, int), np.array([False, False, True, False]), "loss.png", cells=cells)
    plots.loss_curves(loss, np.zeros(4, int), np.zeros(4, bool), "loss.png")
    try:
        assert _legend(saved[0].axes[0]) == ["lr = 0.001", "lr = 0.01"]
        assert _legend(saved[1].axes[0]) == []
    finally:
        for fig in saved:
            plots.plt.close(fig)


def test_cell_label():
    assert plots.cell_label({"delay": 60, "lr": 1e-3, "init": "normal"}) == "delay = 60, lr = 0.001, init = normal"
    assert plots.cell_label({"coherences": (0.1, 0.2)}) == "coherences = (0.1, 0.2)"
    assert plots.cell_label({}) == ""
