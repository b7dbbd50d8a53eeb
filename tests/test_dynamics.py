"""State-space analyses: PCA, the flip-flop cube, similarity, time invariance (fixed points: test_fixed_points.py;
spectra and regimes: test_analysis_spectrum_lesion.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.analysis import cube, invariance, similarity, states
from jaxrnn.cells.network import NetConfig, init_params

# ------------------------------------------------------------------------------------------------------------------
# PCA


@pytest.mark.parametrize("centered", [True, False])
def test_pca_matches_scikit_learn(centered):
    from sklearn.decomposition import PCA, TruncatedSVD

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12)) + 3.0).astype(np.float32)
    proj = states.fit_pca(jnp.asarray(X), 3, centered=centered)
    ref = PCA(3, svd_solver="full").fit(X) if centered else TruncatedSVD(3, algorithm="arpack").fit(X)
    comps = np.asarray(proj.components)
    signs = np.sign(np.sum(comps * ref.components_, axis=1))
    np.testing.assert_allclose(comps * signs[:, None], ref.components_, atol=2e-4)
    np.testing.assert_allclose(proj.explained_variance, ref.explained_variance_, rtol=2e-4)
    np.testing.assert_allclose(proj.explained_variance_ratio, ref.explained_variance_ratio_, rtol=2e-4)
    scores = np.asarray(states.project(proj, jnp.asarray(X)))
    np.testing.assert_allclose(scores * signs[None, :], ref.transform(X), atol=2e-3)


def test_pca_is_vmappable_over_members():
    X = jax.random.normal(jax.random.key(0), (3, 50, 6))
    batched = jax.vmap(lambda x: states.fit_pca(x, 2))(X)
    alone = states.fit_pca(X[1], 2)
    np.testing.assert_allclose(batched.components[1], alone.components, atol=1e-5)
    assert batched.explained_variance_ratio.shape == (3, 2)


# ------------------------------------------------------------------------------------------------------------------
# The cube


def test_cube_score_is_one_for_a_parallelepiped_and_low_for_random_points():
    bits = cube.patterns(3)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 5))  # three skewed axes in 5-D
    points = 2.0 + bits @ A
    r2, angles, lengths = cube.cube_score(jnp.asarray(points), bits)
    assert float(r2) == pytest.approx(1.0, abs=1e-5)
    cos = (A @ A.T) / np.outer(np.linalg.norm(A, axis=1), np.linalg.norm(A, axis=1))
    np.testing.assert_allclose(angles, np.degrees(np.arccos(cos[np.triu_indices(3, 1)])), atol=1e-2)
    np.testing.assert_allclose(lengths, np.linalg.norm(A, axis=1), rtol=1e-5)
    # an exact cube has right angles
    _, cube_angles, _ = cube.cube_score(jnp.asarray(bits @ np.eye(3)), bits)
    np.testing.assert_allclose(cube_angles, 90.0, atol=1e-3)
    # random points: R² averages 3/7 for 8 points in 3-D
    r2_random = np.asarray(jax.vmap(lambda p: cube.cube_score(p, bits)[0])(jnp.asarray(rng.normal(size=(200, 8, 3)))))
    assert np.mean(r2_random) == pytest.approx(3 / 7, abs=0.05)
    assert np.mean(np.array(r2_random) > 0.9) < 0.05


def test_cube_sequence_visits_each_pattern_twice_with_single_bit_changes():
    seq = cube.cube_sequence(3, hold=60, repeats=2, pulse_width=20, settle=20)
    assert seq.inputs.shape == (16 * 60, 3)
    labels = seq.label.reshape(16, 60)[:, -1]
    assert sorted(labels.tolist()) == sorted(list(range(8)) * 2)
    pulsed = (seq.inputs.reshape(16, 60, 3) != 0).any(1).sum(1)
    assert pulsed[0] == 3 and np.all(pulsed[1:] == 1)  # Gray code after the first segment
    # the held bits of a settled step are the pattern of its label
    t = np.flatnonzero(seq.label >= 0)
    np.testing.assert_array_equal(seq.bits[t], seq.patterns[seq.label[t]])


def test_cube_of_a_network_that_stores_bits_in_separate_units():
    """3 bistable self-exciting units, each latched by its own input channel: the memory states are an exact cube."""
    cfg = NetConfig(n_in=3, n_out=3, units=3)
    params = {
        "W_in": 3.0 * jnp.eye(3),
        "W_rec": 2.0 * jnp.eye(3),
        "W_out": jnp.eye(3),
        "b_out": jnp.zeros(3),
    }
    seq = cube.cube_sequence(3, hold=60, settle=20)
    c = cube.cube(params, cfg, seq)
    assert float(c.r2) == pytest.approx(1.0, abs=1e-4)
    assert float(c.r2_full) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(c.angles, 90.0, atol=0.5)
    # and an untrained random network does not make one
    rnd = init_params(jax.random.key(3), NetConfig(n_in=3, n_out=3, units=8, init="normal"), gain=0.5)
    assert float(cube.cube(rnd, NetConfig(n_in=3, n_out=3, units=8), seq).r2_full) < 0.99


# ------------------------------------------------------------------------------------------------------------------
# Similarity


def test_cka_and_procrustes_are_maximal_for_itself_and_a_rotated_copy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10)) @ rng.normal(size=(10, 10))
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    Y = rng.normal(size=(120, 10))
    assert float(similarity.linear_cka(X, X)) == pytest.approx(1.0, abs=1e-5)
    assert float(similarity.linear_cka(X, 3.0 * X @ Q)) == pytest.approx(1.0, abs=1e-5)
    assert float(similarity.linear_cka(X, Y)) < 0.5
    assert float(similarity.procrustes_distance(X, X @ Q)) == pytest.approx(0.0, abs=2e-3)
    assert float(similarity.procrustes_distance(X, Y)) > 0.5
    # different widths are allowed (a member against the N = 400 reference)
    assert float(similarity.linear_cka(X, np.concatenate([X @ Q, np.zeros((120, 5))], 1))) == pytest.approx(1.0, 1e-5)


def test_similarity_matrix_and_clustering_find_two_groups():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(100, 6)), rng.normal(size=(100, 6))
    rot = lambda: np.linalg.qr(rng.normal(size=(6, 6)))[0]
    S = np.stack([A @ rot(), A @ rot() + 0.01 * rng.normal(size=(100, 6)), B @ rot(), A @ rot(), B @ rot()])
    M = similarity.similarity_matrix(jnp.asarray(S, jnp.float32), "cka")
    np.testing.assert_allclose(np.diag(M), 1.0)
    assert M[0, 1] > 0.99 and M[0, 2] < 0.7
    labels = similarity.cluster_members(M, threshold=0.2)
    assert labels.tolist() == [0, 0, 1, 0, 1]
    D = similarity.similarity_matrix(jnp.asarray(S, jnp.float32), "procrustes")
    assert D[0, 3] < 0.05 and D[0, 2] > 0.3
    np.testing.assert_array_equal(similarity.cluster_members(D, 0.2, "procrustes"), labels)


def test_cluster_members_on_a_hand_made_distance_matrix():
    """Members {1, 3, 4} 0.1 apart, {0, 2} 0.15 apart, member 5 alone; groups 0.8 apart except members 0 and 5 (0.7),
    so {0, 2} and {5} are 0.75 apart on average (single linkage: 0.7, complete: 0.8)."""
    D = np.full((6, 6), 0.8)
    D[np.ix_([1, 3, 4], [1, 3, 4])] = 0.1
    D[np.ix_([0, 2], [0, 2])] = 0.15
    D[0, 5] = D[5, 0] = 0.7
    np.fill_diagonal(D, 0.0)
    cluster = lambda t: similarity.cluster_members(D, threshold=t, metric="procrustes").tolist()  # noqa: E731
    # the three groups, largest first
    assert cluster(0.2) == [1, 0, 1, 0, 0, 2]
    np.testing.assert_array_equal(similarity.cluster_members(1.0 - D, threshold=0.2, metric="cka"), cluster(0.2))
    assert cluster(0.15) == cluster(0.2), "a merge at exactly the threshold happens"
    assert cluster(0.1) == [1, 0, 2, 0, 0, 3]
    # average linkage: {0, 2} and {5} merge above 0.75, not at 0.72 (single linkage would); ties by lowest member
    assert cluster(0.72) == cluster(0.2)
    assert cluster(0.77) == [0, 1, 0, 1, 1, 0]
    assert cluster(0.81) == [0] * 6
    assert similarity.cluster_members(D[:1, :1]).tolist() == [0]


# ------------------------------------------------------------------------------------------------------------------
# Time-translation invariance


def test_invariance_is_perfect_without_noise_and_broken_by_ongoing_dynamics():
    stim = jnp.zeros((10, 1)).at[:, 0].set(1.0)
    onsets = [10, 40, 70]
    trials = invariance.onset_inputs(stim, onsets, T=120, noise=0.0, key=jax.random.key(0), n_noise=1)
    cfg = NetConfig(n_in=1, n_out=1, units=8)
    params = init_params(jax.random.key(1), cfg)
    inv = invariance.invariance(params, cfg, trials, onsets, window=40)
    np.testing.assert_allclose(inv.corr, 1.0, atol=1e-5)
    assert float(inv.latency_spread) == 0.0 and float(inv.rel_error.max()) < 1e-5
    # an ongoing oscillation (bias kicks a saturating rotation) makes the response depend on the onset's phase
    theta = 2 * np.pi / 23
    cfg_b = NetConfig(n_in=1, n_out=1, units=2, bias=True)
    osc = {
        "W_in": jnp.array([[1.0], [0.0]]),
        "W_rec": 1.3 * jnp.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]),
        "W_out": jnp.array([[1.0, 0.0]]),
        "b_out": jnp.zeros(1),
        "b": jnp.array([0.2, 0.0]),
    }
    weak = invariance.onset_inputs(0.3 * stim, onsets, T=120, noise=0.0, key=jax.random.key(0), n_noise=1)
    inv_osc = invariance.invariance(osc, cfg_b, weak, onsets, window=40)
    assert float(inv_osc.min_corr) < 0.9
    # vmapped over members
    both = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    ens = invariance.ensemble_invariance(both, cfg, trials, onsets, window=40)
    assert ens.corr.shape == (2, 3)


# ------------------------------------------------------------------------------------------------------------------
# The study end to end


@pytest.mark.slow
def test_flipflop3_study_smoke(tmp_path):
    import csv

    from jaxrnn.studies import STUDIES, run_study

    out = run_study(STUDIES["flipflop3"], scale="smoke", out=tmp_path / "ff3")
    for name in ("report.md", "members.csv", "fixed_points.csv", "similarity_cka.csv", "figures/cube_scores.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "members.csv")))
    assert len(rows) == 2 and all(0.0 <= float(r["cube_r2"]) <= 1.0 for r in rows)
    ref = next(csv.DictReader(open(out / "reference.csv")))  # the tutorial's trained network: a near-perfect cube
    assert float(ref["mse"]) < 0.03 and float(ref["cube_r2"]) > 0.9
    assert ref["learned"] == "1"
    # a = 1: the per-step map is W_rec itself
    assert float(ref["step_radius"]) == pytest.approx(float(ref["W_rec_radius"]))
    assert float(ref["step_freq_hz"]) == pytest.approx(float(ref["W_rec_leading_complex_hz"]))
    # every member is listed; the population statistics are over the learners, with their number
    report = (out / "report.md").read_text()
    n_learned = sum(r["learned"] == "1" for r in rows)
    assert f"{n_learned} of 2 members learned the task" in report
    if n_learned < 3:
        assert "not analysed as a population" in report and "**The cube, over" not in report


def test_flipflop3_per_step_map_spectrum():
    """The study's spectra include the leak: the per-step map's eigenvalues are 1 − a + a λ(W_rec), its frequencies
    are those of the rotating modes of (1 − a) I + a W_rec (not W_rec's), and W_rec's own are kept beside them."""
    from jaxrnn.analysis import spectrum
    from jaxrnn.studies import flipflop3

    a, theta, r = 0.2, 2 * np.pi * 0.14, 1.1  # W_rec: a rotation by 140 Hz (dt = 1 ms), radius 1.1
    W = np.zeros((4, 4))
    W[:2, :2] = r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    W[2:, 2:] = 0.5 * np.eye(2)
    lam = 1 - a + a * r * np.exp(1j * theta)
    reg = spectrum.regime(W, np.zeros((10, 4)), alpha=a)
    assert reg.freq_hz == pytest.approx(np.angle(lam) / (2 * np.pi) * 1000)
    assert reg.freq_hz < 40 < spectrum.spectral_summary(W).leading_complex_hz == pytest.approx(140)
    assert abs(reg.leading_complex) == pytest.approx(abs(lam)) and abs(lam) < 1  # inside: not an unstable mode
    assert flipflop3.SCALES["tutorial"].folder == "flipflop3_tutorial"
    assert flipflop3.SCALES["tutorial"].protocol.alpha == 1.0 and flipflop3.SCALES["cpu"].protocol.alpha == 0.2
