"""The fixed-point finder and its census (jaxrnn.analysis.fixed_points) on maps whose fixed points are known."""

import collections
import itertools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.analysis import fixed_points
from jaxrnn.cells.network import ACTIVATIONS, NetConfig, init_params

W_SLOW = 1.001  # tanh(w y) = y with w just above 1: fixed points 0, ±y*, Jacobian eigenvalues w sech²(w y) near 1


def _y_star(w: float) -> float:
    """The positive root of tanh(w y) = y (w > 1), to float64 precision (Newton from 1)."""
    y = 1.0
    for _ in range(100):
        y -= (np.tanh(w * y) - y) / (w * (1 - np.tanh(w * y) ** 2) - 1)
    return y


def _near(points, known, tol):
    """(P,) index of the known point each point lies within tol of (−1 if none)."""
    d = np.linalg.norm(np.asarray(points)[:, None] - np.asarray(known)[None], axis=-1)
    return np.where(d.min(1) < tol, d.argmin(1), -1)


def test_fixed_point_of_a_linear_map_is_found_and_is_a_saddle():
    A = jnp.array([[0.5, 0.2], [0.0, 1.5]])
    c = jnp.array([1.0, -0.5])
    F = lambda h: A @ h + c
    starts = jax.random.normal(jax.random.key(0), (8, 2))
    fp = fixed_points.fixed_points(F, starts)
    exact = np.linalg.solve(np.eye(2) - np.asarray(A), np.asarray(c))
    assert len(fp.points) == 1 and fp.n_converged == 8
    np.testing.assert_allclose(fp.points[0], exact, atol=1e-5)
    np.testing.assert_allclose(sorted(np.abs(fp.eigvals[0])), [0.5, 1.5], atol=1e-5)
    assert fp.kind.tolist() == ["saddle"] and fp.n_unstable.tolist() == [1]


def test_fixed_points_of_a_two_unit_bistable_network():
    """h = tanh(2 h) per unit: 0 and ±h* per unit, so 9 points: 4 stable, 4 saddles, 1 unstable (the origin)."""
    cfg = NetConfig(n_in=1, n_out=1, units=2)
    params = {"W_in": jnp.zeros((2, 1)), "W_rec": 2.0 * jnp.eye(2), "W_out": jnp.ones((1, 2)), "b_out": jnp.zeros(1)}
    g = jnp.linspace(-1.0, 1.0, 7)
    starts = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
    fp = fixed_points.fixed_points(fixed_points.network_map(params, cfg), starts, steps=300)
    assert (fp.count("stable"), fp.count("saddle"), fp.count("unstable")) == (4, 4, 1)
    stable = np.sort(np.abs(fp.points[fp.kind == "stable"]), axis=None)
    np.testing.assert_allclose(stable, _y_star(2.0), atol=1e-5)
    np.testing.assert_allclose(fp.points[fp.kind == "unstable"][0], 0.0, atol=1e-6)
    assert set(fp.n_unstable[fp.kind == "saddle"].tolist()) == {1}
    # the ensemble path (vmapped over members, float64 polish) finds the same for two copies, to float64 precision
    both = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    fps = fixed_points.ensemble_fixed_points(both, cfg, jnp.stack([starts, starts]), steps=300)
    assert [(f.count("stable"), f.count("saddle"), f.count("unstable")) for f in fps] == [(4, 4, 1), (4, 4, 1)]
    np.testing.assert_allclose(np.abs(fps[0].points[fps[0].kind == "stable"]), _y_star(2.0), rtol=1e-12)


def test_finder_converges_near_eigenvalue_one():
    """F(h) = c Q tanh(w Qᵀh / c), w = 1.001: 27 fixed points Q y, y ∈ {−y*, 0, y*}³, whose Jacobian eigenvalues
    (w sech²: 0.998 at ±y*, 1.001 at 0) all lie within 0.2% of 1, so J − I is nearly singular everywhere. Started
    from each point plus 0.3 y* per coordinate, a decaying Adam and a full-step Newton miss points (the finder before
    the damped Newton reported 24 of the 27 here, with 300 Adam steps 2 of those off by more than 1e-3 y*); the
    damped Newton from each start reaches the point it started near."""
    c, N = 10.0, 3
    y = c * _y_star(W_SLOW)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(N, N)))[0].astype(np.float32)
    Qj = jnp.asarray(Q)
    F = lambda h: c * (Qj @ jnp.tanh(W_SLOW * (Qj.T @ h) / c))
    known_y = np.array(list(itertools.product([-y, 0.0, y], repeat=N)))
    known = known_y @ Q.T
    offsets = 0.3 * y * np.random.default_rng(1).choice([-1.0, 1.0], size=known_y.shape)
    starts = jnp.asarray((known_y + offsets) @ Q.T, jnp.float32)

    # Newton from each start (no Adam): every search converges to the point it started near
    fp = fixed_points.fixed_points(F, starts, lr=0.0)
    assert fp.n_converged == 27 and len(fp.points) == 27
    idx = _near(fp.points, known, 1e-3 * y)  # float32 and |1 − λ| = 1e-3: positions good to ~1e-4 y*
    assert sorted(idx.tolist()) == list(range(27))
    np.testing.assert_array_equal(idx[fp.origin], np.arange(27))
    # unstable modes = the coordinates at 0: 8 stable, 12 saddles with 1, 6 with 2, the origin with all 3
    n_zero = np.sum(np.abs(known_y) < y / 2, axis=1)
    np.testing.assert_array_equal(fp.n_unstable, n_zero[idx])
    assert np.bincount(fp.n_unstable).tolist() == [8, 12, 6, 1]
    assert fixed_points.census(fp)["saddle_modes"] == {1: 12, 2: 6}

    # with Adam before Newton (the default step sizes): searches may travel to other points, but every one converges
    # and every point reported is a fixed point
    fp = fixed_points.fixed_points(F, starts, steps=300)
    assert fp.n_converged == 27
    assert np.all(_near(fp.points, known, 1e-3 * y) >= 0)


def test_network_census_float64_polish_and_symmetry():
    """Three independent units h_i = tanh(w h_i), w = 1.001 (slow: eigenvalues 0.998 and 1.001). Starts near the 13
    points whose first non-zero coordinate is positive, and the origin: the searches find those 14, the odd symmetry
    adds the other 13, and the float64 polish puts every point at float64 precision."""
    N = 3
    y = _y_star(float(np.float32(W_SLOW)))  # the map's w is the float32 weight
    cfg = NetConfig(n_in=1, n_out=1, units=N)
    params = {
        "W_in": jnp.zeros((N, 1)),
        "W_rec": W_SLOW * jnp.eye(N),
        "W_out": jnp.ones((1, N)),
        "b_out": jnp.zeros(1),
    }
    known = np.array(list(itertools.product([-y, 0.0, y], repeat=N)))
    first = np.array([k[np.flatnonzero(k)[0]] if np.any(k) else 1.0 for k in known])
    half = known[first > 0]  # 13 + 1 (the origin)
    starts = half + 0.3 * y * np.random.default_rng(2).choice([-1.0, 1.0], size=half.shape)
    assert fixed_points.is_odd(params, cfg)
    fp = fixed_points.network_fixed_points(params, cfg, jnp.asarray(starts, jnp.float32), lr=0.0)
    c = fixed_points.census(fp)
    assert (c["starts"], c["converged"], c["found"], c["mirrored"], c["points"]) == (14, 14, 14, 13, 27)
    assert (c["stable"], c["saddle"], c["unstable"], c["saddle_modes"]) == (8, 18, 1, {1: 12, 2: 6})
    idx = _near(fp.points, known, 1e-9)
    assert sorted(idx.tolist()) == list(range(27)), "float64 polish: every point to 1e-9"
    assert np.all(np.sqrt(2 * fp.q) < 1e-14)
    np.testing.assert_allclose(fp.points[fp.mirror], -fp.points, atol=1e-12)
    assert not fp.mirrored[fp.origin].any(), "searches end on found points, never on mirrors"
    # census growth: the first n searches, plus mirrors; monotone, ending at the census
    rows = fixed_points.census_growth(fp, [1, 7, 14])
    assert [r["converged"] for r in rows] == [1, 7, 14]
    points = [r["points"] for r in rows]
    assert points == sorted(points) and points[-1] == 27 and points[0] in (1, 2)
    with pytest.raises(ValueError, match="starts"):
        fixed_points.census_growth(fp, [15])
    # without the symmetry only the 14 points searched for
    plain = fixed_points.network_fixed_points(params, cfg, jnp.asarray(starts, jnp.float32), lr=0.0, symmetric=False)
    assert len(plain.points) == 14 and not plain.mirrored.any() and np.all(plain.mirror == -1)
    # a bias breaks the symmetry
    assert not fixed_points.is_odd({**params, "b": jnp.zeros(N)}, cfg)
    assert not fixed_points.is_odd(params, cfg, x=jnp.ones(1))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_jacobians_match_autodiff(activation):
    cfg = NetConfig(n_in=2, n_out=1, units=8, alpha=0.3, bias=True, activation=activation)
    params = init_params(jax.random.key(0), cfg)
    params["b"] = 0.1 * jnp.arange(8.0)
    h = 0.3 * jax.random.normal(jax.random.key(1), (8,))
    x = jnp.array([0.5, -1.0])
    F = fixed_points.network_map(params, cfg, x)
    auto = np.asarray(jax.jacfwd(F)(h))
    np.testing.assert_allclose(np.asarray(fixed_points.network_jacobian(params, cfg, x)(h)), auto, atol=1e-5)
    host = fixed_points.host_maps(jax.tree.map(lambda a: a[None], params), cfg, x)[0]
    np.testing.assert_allclose(host(np.asarray(h, np.float64)), np.asarray(F(h)), atol=1e-6)
    np.testing.assert_allclose(host.jacobian(np.asarray(h, np.float64)[None])[0], auto, atol=1e-5)


def _compiles(caplog, fn) -> dict:
    """How many times each program was compiled (XLA) while fn() ran, from empty caches: {name: count}."""
    jax.clear_caches()  # what earlier tests compiled does not hide a program here
    caplog.clear()
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        fn()
    return collections.Counter(
        r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("Compiling ")
    )


def test_classifying_many_members_does_not_compile_per_member(caplog):
    """No program of an ensemble's census is compiled once per member (fresh shapes for 3 and for 7 members)."""

    def run(E, N):
        cfg = NetConfig(n_in=1, n_out=1, units=N)
        params = jax.vmap(lambda k: init_params(k, cfg))(jax.random.split(jax.random.key(0), E))
        params["W_rec"] = (2.0 + 0.1 * jnp.arange(E))[:, None, None] * jnp.eye(N)[None]  # bistable units
        starts = jax.random.normal(jax.random.key(1), (E, 4, N))
        fps = fixed_points.ensemble_fixed_points(params, cfg, starts, steps=20)
        assert all(len(f.points) > 0 for f in fps), "every member has points to classify"

    few = _compiles(caplog, lambda: run(3, 11))
    many = _compiles(caplog, lambda: run(7, 13))
    assert few, "the compile log was not captured"
    # a program compiled per member shows up 7 times (the old Jacobian did)
    per_member = {name: n for name, n in many.items() if n >= 7 or n > few.get(name, 0)}
    assert not per_member, f"compiled more often for 7 members than for 3: {per_member}"
