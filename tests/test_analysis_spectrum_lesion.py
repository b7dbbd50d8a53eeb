"""Contracts of jaxrnn.analysis.spectrum and jaxrnn.analysis.lesion on small matrices with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.analysis import spectrum
from jaxrnn.analysis.lesion import MODES, lesion_curves, lesion_ensemble, lesion_masks
from jaxrnn.analysis.spectrum import eigenvalues, henrici_index, spectral_summary, spectral_table
from jaxrnn.cells.network import NetConfig, init_params
from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import evaluate_on, heldout_trials

FRACTIONS = np.linspace(0, 1, 11)


def _random_W(seed=0, n=9):
    return (np.asarray(jax.random.normal(jax.random.key(seed), (n, n))) / np.sqrt(n)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------- spectrum


def _rotation(theta, r=1.0):
    return r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def test_spectral_summary_of_diagonal_matrix():
    s = spectral_summary(np.diag([0.5, -1.2, 1.1, 0.9]))
    assert s.radius == pytest.approx(1.2)
    assert s.n_outside == 2
    assert s.leading == pytest.approx(-1.2)  # largest modulus: a growing period-2 mode, not the largest real part
    assert s.leading_cycles_per_step == pytest.approx(0.5) and s.leading_hz == pytest.approx(500.0)
    assert np.isnan(s.leading_complex) and np.isnan(s.leading_complex_abs)  # no rotating mode
    assert s.henrici == pytest.approx(0.0, abs=1e-12)


def test_leading_and_leading_complex_modes():
    theta = 2 * np.pi / 35  # period 35 steps
    W = np.zeros((3, 3))
    W[:2, :2] = _rotation(theta, 0.9)
    W[2, 2] = 0.95
    s = spectral_summary(W)
    assert s.leading == pytest.approx(0.95) and s.leading_hz == 0.0  # the dominant mode is real
    assert s.leading_complex == pytest.approx(0.9 * np.exp(1j * theta))  # Im > 0 of the pair
    assert s.leading_complex_abs == pytest.approx(0.9) and s.leading_complex_hz == pytest.approx(1000 / 35)
    assert spectrum.leading(np.array([0.3 - 1.0j, 0.3 + 1.0j])) == pytest.approx(0.3 + 1.0j)
    # the unit-circle tolerance: float32 rounding of |λ| = 1 is not outside, 1 + 1e-4 is
    lam = np.array([1.0 + 1e-7, -1.0 - 1e-7, 1.0 + 1e-4, 0.5])
    assert spectrum.n_outside(lam) == 1
    np.testing.assert_array_equal(spectrum.n_outside(np.stack([lam, -lam, lam / 2])), [1, 1, 0])


def test_leading_frequency_of_scaled_rotation():
    theta, r = 2 * np.pi / 35, 1.05  # period 35 steps, growing
    s = spectral_summary(_rotation(theta, r))
    assert s.leading_cycles_per_step == pytest.approx(1 / 35)
    assert s.leading_hz == pytest.approx(1000 / 35) and s.leading_complex_hz == pytest.approx(1000 / 35)
    assert s.n_outside == 2 and s.radius == pytest.approx(r)
    lam = r * np.exp(1j * theta)
    assert spectrum.frequency_hz(lam) == pytest.approx(1000 / 35)
    assert spectrum.frequency_hz(lam, dt=0.01) == pytest.approx(100 / 35)
    assert spectrum.freq_slides(lam) == pytest.approx(np.tan(theta) / (2 * np.pi))  # the slides' convention


def test_regime_labels_oscillation_and_fixed_point():
    R = _rotation(2 * np.pi / 35)

    def run(W, T=400):  # a saturating rotation keeps oscillating; a contracting one settles on its fixed point
        h, out = np.array([0.5, 0.0]), []
        for _ in range(T):
            h = np.tanh(W @ h)
            out.append(h)
        return np.array(out)[-150:]

    osc = spectrum.regime(1.2 * R, run(1.2 * R))
    fixed = spectrum.regime(0.8 * R, run(0.8 * R))
    assert osc.label == "oscillatory" and fixed.label == "fixed-point"
    assert osc.freq_hz == pytest.approx(1000 / 35) and osc.leading == pytest.approx(1.2 * np.exp(2j * np.pi / 35))
    assert osc.period_power > 0.8 and fixed.speed < 1e-3 < osc.speed


def test_frequencies_of_a_leaky_network_are_the_per_step_maps():
    """With leak a the linear map around 0 is (1 - a) I + a W: a W_rec eigenvalue 1.2 e^{2πi/7} (143 Hz) becomes
    0.8 + 0.24 e^{2πi/7}, which rotates at about 30 Hz; the regime reports the map's eigenvalues, not W_rec's."""
    a, theta = 0.2, 2 * np.pi / 7
    W = 1.2 * _rotation(theta)
    lam = 1 - a + a * 1.2 * np.exp(1j * theta)
    np.testing.assert_allclose(
        np.sort_complex(spectrum.eigenvalues(spectrum.step_map(W, a))), np.sort_complex([lam, lam.conjugate()])
    )
    np.testing.assert_allclose(spectrum.step_map(W, 1.0), W)
    r = spectrum.regime(W, np.zeros((10, 2)), alpha=a)
    assert r.freq_hz == pytest.approx(1000 * np.angle(lam) / (2 * np.pi)) and 25 < r.freq_hz < 35
    assert spectrum.regime(W, np.zeros((10, 2))).freq_hz == pytest.approx(1000 / 7)  # a = 1: W_rec itself


def test_henrici_index_of_nilpotent_and_orthogonal():
    assert henrici_index(np.array([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(1.0)
    Q = np.asarray(jax.nn.initializers.orthogonal()(jax.random.key(0), (50, 50), jnp.float32))
    s = spectral_summary(Q)
    assert s.henrici < 1e-3
    assert s.n_outside == 0, "float32 rounding of |λ| = 1 must not count as outside"
    assert s.radius == pytest.approx(1.0, abs=1e-5)


def test_spectral_table_matches_single_matrices_in_float64():
    Ws = np.stack([_random_W(i) for i in range(3)])
    eigs, table = spectral_table(Ws)
    assert eigs.dtype == np.complex128 and eigs.shape == (3, 9)
    for i in range(3):
        s = spectral_summary(Ws[i])
        assert table.radius[i] == pytest.approx(s.radius)
        assert table.n_outside[i] == s.n_outside
        assert table.henrici[i] == pytest.approx(s.henrici)
    assert np.allclose(np.sort_complex(eigenvalues(Ws[0])), np.sort_complex(np.linalg.eigvals(Ws[0].astype(float))))


def test_spectral_summary_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        spectral_summary(np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------------------ lesion


@pytest.mark.parametrize("mode", MODES)
def test_lesion_fractions_exact_and_extremes(mode):
    W = _random_W()
    les = lesion_masks(W, mode, FRACTIONS)
    w = np.asarray(les.weights)
    n = int(les.n_eligible)
    eligible = {"both": np.ones_like(W, bool), "positive": W > 0, "negative": W < 0}[mode.split("_")[0]]
    assert n == eligible.sum()
    assert w.shape == (len(FRACTIONS), *W.shape)
    np.testing.assert_array_equal(w[0], W)  # 0% leaves W unchanged
    removed = (w == 0) & (W != 0)[None]
    np.testing.assert_array_equal(removed.sum((1, 2)), np.asarray(les.n_removed))
    assert not np.any(removed & ~eligible[None]), "a weight outside the eligible set was removed"
    np.testing.assert_array_equal(w[:, ~eligible], np.broadcast_to(W[~eligible], w[:, ~eligible].shape))
    if mode.endswith("cumulative"):
        k = np.asarray(les.n_removed)
        assert np.all(np.abs(k / n - FRACTIONS) <= 0.5 / n + 1e-9), "removed fraction off by more than one weight"
        assert np.all(w[-1][eligible] == 0)  # 100% removes every eligible weight
        for level in range(1, len(FRACTIONS)):  # the smallest magnitudes go first
            r = removed[level]
            if r.any() and (eligible & ~r).any():
                assert np.abs(W[r]).max() <= np.abs(W[eligible & ~r]).min()
    if mode == "both_cumulative":
        assert np.all(w[-1] == 0)


@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_bands_disjoint_and_union_is_cumulative(sign):
    W = _random_W(1)
    bands = np.asarray(lesion_masks(W, f"{sign}_bands", FRACTIONS).weights) == 0
    cumul = np.asarray(lesion_masks(W, f"{sign}_cumulative", FRACTIONS).weights) == 0
    for level in range(len(FRACTIONS)):
        for other in range(level):
            assert not np.any(bands[level] & bands[other]), "bands overlap"
        np.testing.assert_array_equal(np.any(bands[: level + 1], axis=0), cumul[level])


def test_lesion_ensemble_is_vmapped_per_member():
    Ws = np.stack([_random_W(i) for i in range(3)])
    les = lesion_ensemble(Ws, "negative_cumulative", FRACTIONS)
    assert les.weights.shape == (3, len(FRACTIONS), 9, 9)
    for i in range(3):
        one = lesion_masks(Ws[i], "negative_cumulative", FRACTIONS)
        np.testing.assert_array_equal(np.asarray(les.weights[i]), np.asarray(one.weights))


def test_lesion_rejects_bad_input():
    with pytest.raises(ValueError, match="mode"):
        lesion_masks(_random_W(), "sideways", [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lesion_masks(_random_W(), "both_cumulative", [1.5])
    with pytest.raises(ValueError, match="non-decreasing"):
        lesion_masks(_random_W(), "positive_bands", [0.5, 0.2])


def test_lesion_curves_match_direct_evaluation():
    """Level 0 equals the unlesioned ensemble; 100% both-cumulative equals the same networks with W_rec = 0."""
    task = make_task("and", T=80)
    net = NetConfig(n_in=2, n_out=1, units=8)
    params = jax.vmap(lambda k: init_params(k, net, 1.5))(jax.random.split(jax.random.key(0), 2))
    trials = heldout_trials(task, 16)
    curves = lesion_curves(task, net, params, MODES, [0.0, 0.5, 1.0], trials)
    base = evaluate_on(task, net, params, trials)
    zero = evaluate_on(task, net, {**params, "W_rec": jnp.zeros_like(params["W_rec"])}, trials)
    for mode in MODES:
        c = curves[mode]
        assert c.evaluation.distance.shape == (2, 3)
        assert c.evaluation.distance_by_condition.shape == (2, 3, 4)
        np.testing.assert_allclose(c.evaluation.distance[:, 0], base.distance, rtol=1e-5)
        np.testing.assert_array_equal(c.removed[:, 0], 0.0)
    c = curves["both_cumulative"]
    np.testing.assert_allclose(c.evaluation.distance[:, 2], zero.distance, rtol=1e-5)
    np.testing.assert_allclose(c.removed[:, 1], 0.5, atol=0.5 / 64)
    np.testing.assert_array_equal(c.removed_all[:, 2], 1.0)
    assert not np.allclose(c.evaluation.distance[:, 2], base.distance), "a full lesion must change the outputs"
