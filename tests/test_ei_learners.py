"""The E/I spectrum study's statistics of trained networks are over `Run.learned` only, a condition with fewer than
`MIN_LEARNERS` learners is reported as such and left out of the verdicts, `ei_members.csv` carries an honest
`stop_epoch` (empty when a member never stopped early) and `epochs_run`, and unit-circle statements use the per-step
map (1 - a) I + a W_rec. Fake runs (no training): each has exactly the attributes `ei_spectrum.analyse` reads."""

from types import SimpleNamespace

import numpy as np
import pytest

from jaxrnn.cells.network import NetConfig
from jaxrnn.studies import ei_spectrum

N, ALPHA, EPOCHS = 20, 0.2, 5


def _fake_run(seed: int, f: float, learned, success, stop_epoch, scale: float = 1.0):
    """A run of E = len(learned) members whose W_rec respects the presynaptic signs; `learned` is what
    `Run.learned` says, deliberately different from `evaluation.success` where the test wants it."""
    rng = np.random.default_rng(seed)
    E = len(learned)
    net = NetConfig(n_in=2, n_out=1, units=N, bias=True, dale=True, e_fraction=f, dale_method="project")
    signs = np.where(np.arange(N) < net.n_exc, 1.0, -1.0)

    def params(s):
        W = np.abs(rng.standard_normal((E, N, N))) * s / np.sqrt(N) * signs[None, None, :]
        return {"W_rec": W, "W_in": np.abs(rng.standard_normal((E, N, 2)))}

    p0, p1 = params(1.0), params(scale)
    stop = np.asarray(stop_epoch)
    ev = SimpleNamespace(
        success=np.asarray(success, bool),
        mse=np.full(E, 0.01),
        distance=np.full(E, 1.0),
        zero_distance=np.full(E, 4.0),
        accuracy=np.ones(E),
    )
    return SimpleNamespace(
        config=SimpleNamespace(net=net, alpha=ALPHA, epochs=EPOCHS),
        effective=lambda stage: p0 if stage == "init" else p1,
        evaluation=ev,
        learned=np.asarray(learned, bool),
        ensemble=SimpleNamespace(stop_epoch=stop, diverged=np.zeros(E, bool)),
        epochs_run=np.where(stop > 0, stop, EPOCHS),
    )


@pytest.fixture(scope="module")
def analysed():
    results = {
        # 3 learners of 4; member 3 "succeeds" but is not learned (e.g. diverged): it must not count
        ("project_pre", "orthogonal", 0.5, N): _fake_run(0, 0.5, [1, 1, 1, 0], [1, 1, 1, 1], [0, 3, 0, 0]),
        # 2 learners of 4: fewer than MIN_LEARNERS, no trained statistics, left out of the verdicts
        ("project_pre", "orthogonal", 0.8, N): _fake_run(1, 0.8, [1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], 5.0),
    }
    return results, *ei_spectrum.analyse(results)


def test_learned_is_run_learned_and_min_learners(analysed):
    results, members, rows, eigs = analysed
    assert [m["learned"] for m in members] == [True, True, True, False, True, True, False, False]
    assert all(m["success"] for m in members)  # the evaluation's success is still listed, for every member
    assert len(members) == 8 and all(m["distance"] == 1.0 and m["zero_distance"] == 4.0 for m in members)
    ok, few = rows
    assert (ok["learners"], ok["members"], ok["enough_learners"]) == (3, 4, True)
    assert (few["learners"], few["enough_learners"]) == (2, False)
    learners = [m["trained_disc_radius"] for m in members[:3]]
    assert ok["trained_disc_radius_median"] == pytest.approx(np.median(learners))
    assert np.isnan(few["trained_disc_radius_median"]) and few["trained_shape"] == "n/a"
    assert np.isfinite(few["initial_disc_radius_median"])  # initial statistics: every member
    np.testing.assert_array_equal(eigs[("project_pre", "orthogonal", 0.8, N)][2], [1, 1, 0, 0])


def test_verdicts_leave_out_conditions_with_few_learners(analysed):
    _, members, rows, _ = analysed
    conditions = ((0.5, N), (0.8, N))
    lines = "\n".join(ei_spectrum.verdicts(members, rows, ("project_pre",), ("orthogonal",), conditions))
    assert "3 of 8 members learned" not in lines and "5 of 8 members learned" in lines
    assert "fewer than 3 learners, left out: E 0.8 N 20" in lines
    assert "over 3 learners" in lines  # the shape verdict pools the eligible condition's learners only
    assert "E fraction 0.8: fewer than 3 learners (2), left out" in lines
    assert "fewer than two conditions with at least 3 learners, no comparison" in lines
    table = ei_spectrum.shape_table(members, ("project_pre",), ("orthogonal",))
    assert "| 5 / 8 | 3 (1 condition left out) |" in table
    assert "fewer than 3 learners" in ei_spectrum._condition_table(rows)


def test_stop_epoch_honest(analysed):
    _, members, rows, _ = analysed
    assert [m["stop_epoch"] for m in members[:4]] == ["", 3, "", ""]  # empty: never stopped early
    assert [m["epochs_run"] for m in members[:4]] == [EPOCHS, 3, EPOCHS, EPOCHS]
    assert [r["stopped_early"] for r in rows] == [1, 0]


def test_step_map_uses_the_leak(analysed):
    results, members, _, _ = analysed
    W = results[("project_pre", "orthogonal", 0.5, N)].effective("final")["W_rec"]
    lam = np.linalg.eigvals(W)
    step = np.abs(1 - ALPHA + ALPHA * lam).max(axis=1)
    got = [m["trained_step_spectral_radius"] for m in members[:4]]
    np.testing.assert_allclose(got, step, rtol=1e-9)
    np.testing.assert_allclose([m["trained_spectral_radius"] for m in members[:4]], np.abs(lam).max(axis=1))
    assert [m["trained_step_n_outside"] for m in members[:4]] == list(
        map(float, np.sum(np.abs(1 - ALPHA + ALPHA * lam) > 1 + 1e-5, axis=1))
    )
