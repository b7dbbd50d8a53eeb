"""Fixed points of a network's autonomous map, and a census of the ones found (Sussillo & Barak 2013, Neural
Computation 25:626).

For a constant input x (zero by default) the network is the discrete map

    F(h) = (1 - a) h + a · act(W_rec h + W_in x + b)        (a = 1: F(h) = act(W_rec h + W_in x + b)).

Fixed points solve F(h) = h. Following Sussillo & Barak, each search minimises q(h) = ½ ‖F(h) − h‖² from a start
(sampled on the network's trajectories), vmapped over starts (and over members), in two stages that stop when they
stop making progress rather than after a fixed schedule:

  1. Adam on q (step size decaying exponentially lr → lr · decay over at most `steps` steps) until the relative
     residual ‖F(h) − h‖ / s falls below `switch`, or q has not halved for `patience` steps (a slow point, or a
     start Newton can take from here). The first step size differs between starts, cycled over `LEARNING_RATES`:
     0 (no Adam: Newton from the start itself) and small steps stay near the start and find the point whose basin
     holds it, mostly stable points; larger steps travel farther and reach saddles the sampled states do not pass
     near. (On the tutorial's N = 400 network, 256 starts gave censuses of 14 stable points and 24 saddles with
     Newton alone, 14 and 38 with 1e-3 alone, 10 and 42 with 3e-3, 10 and 43 with 1e-2, 14 and 43 with the four
     cycled.)
  2. Damped Newton on F(h) − h = 0: the step d = −(J − I)⁻¹ (F(h) − h) (J = dF/dh) is halved until q falls
     (sufficient decrease q(h + t d) ≤ (1 − 10⁻⁴ t) q(h), t = 1, ½, …, 2⁻¹⁹), for at most `newton` steps, stopping
     when no step lowers q (float32 precision reached, or J − I singular). A full step or nothing stalls near
     fixed points with slow directions (eigenvalues of J near 1, where J − I is near singular; the tutorial's
     saddles with one unstable mode have |λ₁| = 1.003–1.02, its stable points |λ₁| up to 0.997); the line search
     does not.

For a network map (`ensemble_fixed_points`, `network_fixed_points`) the endpoints are then polished on the host in
float64 by the same damped Newton on the float64 map (`HostMap`; N ≤ a few hundred), so a true fixed point ends with
‖F(h) − h‖ ≈ 1e-15 · ‖h‖ and its Jacobian is that of the fixed point, not of a nearby float32 state.

s, the **state scale**, is the RMS norm of the starts; tolerances are relative to it. A search has **converged**
when its final ‖F(h) − h‖ ≤ `tol` · s. Converged endpoints closer than `merge` · s are one point (single-linkage
clusters, the endpoint of lowest q kept). When F is odd, F(−h) = −F(h) (tanh, no RNN bias, zero input), −h is a
fixed point with the same Jacobian spectrum whenever h is, and `symmetric=True` adds it ("mirrored") unless found.
Each point is labelled by the eigenvalues λ of its Jacobian (float64, host): its number of unstable modes is
#{|λ| > 1 + OUTSIDE_TOL} (`jaxrnn.analysis.spectrum`), `stable` when 0, `unstable` when every mode is unstable,
`saddle` otherwise.

What comes out is a **census of the points found**, not of all fixed points: a search finds the point whose basin
(of the whole procedure) its start lies in, so points far from the sampled states, or with small basins, can be
missed, and the count grows with the number of starts (`census_growth` shows how fast). Slow points (q at a local
minimum above the tolerance) are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from jaxrnn.analysis.spectrum import by_modulus, n_outside
from jaxrnn.cells.network import (
    ACTIVATIONS,
    NetConfig,
    Params,
    act_and_slope,
    euler_step,
    recurrent_weights,
    require_rate_rnn,
    step_jacobian,
)

KINDS = ("stable", "saddle", "unstable")

#: Adam's first step size, cycled over the starts (see the module docstring)
LEARNING_RATES = (0.0, 1e-3, 3e-3, 1e-2)
_HALVINGS = 20  # damped Newton: step sizes 1, 1/2, ..., 2^-19
_ARMIJO = 1e-4  # sufficient decrease: q(h + t d) <= (1 - _ARMIJO t) q(h)

#: float64 host activations and their derivatives, for `HostMap`: the same functions as `network.ACTIVATIONS`,
#: in numpy because the polish needs float64 (‖F(h) − h‖ ≈ 1e-15 · ‖h‖) and JAX computes in float32 unless x64 is
#: switched on for the whole process (`jax_enable_x64`, which would change every other program).
_HOST_ACT: dict[str, tuple[Callable, Callable]] = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    "softplus": (lambda z: np.logaddexp(0.0, z), lambda z: 0.5 * (1.0 + np.tanh(0.5 * z))),
    "sigmoid": (lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)), lambda z: 0.25 * (1.0 - np.tanh(0.5 * z) ** 2)),
}
_ODD = ("tanh",)  # activations with act(−z) = −act(z)


class FixedPoints(NamedTuple):
    """The census of one map: the distinct fixed points found (numpy arrays; P points, N units, S searches).

    Attributes:
        points: (P, N) float64 states, sorted by number of unstable modes, then by decreasing |λ₁|.
        q: (P,) ½‖F(h) − h‖² at each point (float64 map for network maps).
        eigvals: (P, N) complex128 Jacobian eigenvalues, sorted by decreasing |λ|.
        n_unstable: (P,) int, number of eigenvalues with |λ| > 1 + OUTSIDE_TOL.
        kind: (P,) str, one of KINDS.
        mirrored: (P,) bool, added as −h of a point found (odd map) without a search ending there.
        mirror: (P,) int, index of −h in `points` (itself for h = 0), −1 when not added (map not odd).
        origin: (S,) int, the point each search converged to, −1 for a search that did not converge.
        scale: the state scale s (RMS norm of the starts) that `tol` and `merge` are relative to.
    """

    points: np.ndarray
    q: np.ndarray
    eigvals: np.ndarray
    n_unstable: np.ndarray
    kind: np.ndarray
    mirrored: np.ndarray
    mirror: np.ndarray
    origin: np.ndarray
    scale: float

    @property
    def n_starts(self) -> int:
        """Searches run."""
        return len(self.origin)

    @property
    def n_converged(self) -> int:
        """Searches that converged (‖F(h) − h‖ ≤ tol · scale)."""
        return int(np.sum(self.origin >= 0))

    def count(self, kind: str) -> int:
        """Number of points of one kind."""
        return int(np.sum(self.kind == kind))


# ----------------------------------------------------------------------------------------------------------------
# The map


def network_map(params: Params, cfg: NetConfig, x: Array | None = None) -> Callable[[Array], Array]:
    """F: (N,) -> (N,), one step of the network (`jaxrnn.cells.network.euler_step`) with constant input x (n_in,), zero
    when None."""
    require_rate_rnn(cfg, "fixed-point analysis")
    act = ACTIVATIONS[cfg.activation]
    W_rec = recurrent_weights(params, cfg)  # the effective matrix (Dale's law, sparsity mask)
    u = _drive(params, x, W_rec.dtype)
    return lambda h: euler_step(h, act(W_rec @ h + u), cfg.alpha)


def network_jacobian(params: Params, cfg: NetConfig, x: Array | None = None) -> Callable[[Array], Array]:
    """dF/dh: (N,) -> (N, N) of `network_map`, analytic (`jaxrnn.cells.network.step_jacobian`): (1 − a) I + a ·
    diag(act'(W_eff h + u)) W_eff."""
    require_rate_rnn(cfg, "fixed-point analysis")
    W_rec = recurrent_weights(params, cfg)
    u = _drive(params, x, W_rec.dtype)
    return lambda h: step_jacobian(act_and_slope(cfg.activation, W_rec @ h + u)[1], W_rec, cfg.alpha)


def _drive(params: Params, x, dtype) -> Array:
    """u = W_in x + b, the constant part of the pre-activation (N,)."""
    u = jnp.zeros(params["W_rec"].shape[-1], dtype)
    if x is not None:
        u = u + params["W_in"] @ jnp.asarray(x, params["W_in"].dtype)
    if "b" in params:
        u = u + params["b"]
    return u


def is_odd(params: Params, cfg: NetConfig, x: Array | None = None) -> bool:
    """Whether the network map is odd, F(−h) = −F(h): an odd activation (tanh), no RNN bias, zero input."""
    no_input = x is None or not np.any(np.asarray(x))
    return cfg.activation in _ODD and "b" not in params and no_input


class HostMap(NamedTuple):
    """One network's map in float64 on the host (numpy), for the final polish and the Jacobians: the step and its
    Jacobian are `jaxrnn.cells.network.euler_step` and `step_jacobian` on numpy arrays, the activations `_HOST_ACT`.

    Attributes:
        W: (N, N) effective recurrent matrix. u: (N,) constant drive W_in x + b. alpha: a. activation: its name.
    """

    W: np.ndarray
    u: np.ndarray
    alpha: float
    activation: str

    def __call__(self, h: np.ndarray) -> np.ndarray:
        """F at states h (..., N): (..., N)."""
        return euler_step(h, _HOST_ACT[self.activation][0](h @ self.W.T + self.u), self.alpha)

    def jacobian(self, h: np.ndarray) -> np.ndarray:
        """dF/dh at states h (..., N): (..., N, N), (1 − a) I + a · diag(act'(W h + u)) W."""
        return step_jacobian(_HOST_ACT[self.activation][1](h @ self.W.T + self.u), self.W, self.alpha)


def host_maps(params: Params, cfg: NetConfig, x: Array | None = None) -> list[HostMap]:
    """The float64 `HostMap` of every member of `params` (member axis first), computed without compiling per member.

    Args:
        params: member axis first. x: (n_in,) constant input, or None for zero.
    """
    require_rate_rnn(cfg, "fixed-point analysis")
    W = np.asarray(recurrent_weights(params, cfg), np.float64)  # (E, N, N), once for every member
    u = np.zeros(W.shape[:2])
    if x is not None:
        u = u + np.einsum("eni,i->en", np.asarray(params["W_in"], np.float64), np.asarray(x, np.float64))
    if "b" in params:
        u = u + np.asarray(params["b"], np.float64)
    return [HostMap(W[i], u[i], float(cfg.alpha), cfg.activation) for i in range(W.shape[0])]


# ----------------------------------------------------------------------------------------------------------------
# The search (jit, vmapped over starts)


def state_scale(starts):
    """The state scale s of a set of starts (..., S, N): RMS norm over the starts (1 where that is 0). numpy in,
    numpy out (float64, on the host); otherwise jnp."""
    xp = np if isinstance(starts, np.ndarray) else jnp
    s = xp.sqrt(xp.mean(xp.sum(starts**2, axis=-1), axis=-1))
    return xp.where(s > 0, s, 1.0)


def minimise_q(
    F: Callable[[Array], Array],
    starts: Array,
    steps: int = 1000,
    lr: float | tuple[float, ...] | Array = LEARNING_RATES,
    newton: int = 30,
    jac: Callable[[Array], Array] | None = None,
    decay: float = 1e-2,
    switch: float = 1e-4,
    patience: int = 100,
) -> tuple[Array, Array]:
    """Search a fixed point of F from each start: Adam, then damped Newton (the module docstring).

    Args:
        F: the map (N,) -> (N,). starts: (S, N). steps: most Adam steps (static). lr: Adam's first step size: one,
            or several cycled over the starts (start s uses lr[s % len(lr)]; 0: no Adam, Newton from the start
            itself). newton: most damped Newton steps (static; 0 = none). decay: Adam's step size decays
            exponentially to lr · decay over `steps`.
        jac: dF/dh (N,) -> (N, N); `jax.jacfwd(F)` when None (pass the analytic one when there is one).
        switch: Adam stops once ‖F(h) − h‖ < switch · s (s = `state_scale(starts)`). patience: Adam stops after
            this many steps without q halving.
    Returns:
        (points (S, N), q (S,)) at the end of the search.
    """
    jac = jax.jacfwd(F) if jac is None else jac
    q_fn = lambda h: 0.5 * jnp.sum((F(h) - h) ** 2)
    q_switch = 0.5 * (switch * state_scale(starts)) ** 2
    # Adam's direction, times a schedule decaying 1 -> decay over `steps`, times each start's own learning rate
    opt = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(optax.exponential_decay(1.0, steps, decay)))
    lrs = jnp.resize(jnp.asarray(lr, starts.dtype), starts.shape[:1])  # cycled over the starts
    ts = 0.5 ** jnp.arange(_HALVINGS, dtype=starts.dtype)

    def adam_go(c):
        i, _, _, q, _, since, lr0 = c
        return (i < steps) & (q > q_switch) & (since < patience) & (lr0 > 0)

    def adam_step(c):
        i, h, state, _, q_ref, since, lr0 = c
        q, g = jax.value_and_grad(q_fn)(h)
        upd, state = opt.update(g, state, h)
        halved = q < 0.5 * q_ref
        h = h - lr0 * upd
        return i + 1, h, state, q, jnp.where(halved, q, q_ref), jnp.where(halved, 0, since + 1), lr0

    def newton_go(c):
        k, _, _, done = c
        return (k < newton) & ~done

    def newton_step(c):
        k, h, q, _ = c
        r = F(h) - h
        d = -jnp.linalg.solve(jac(h) - jnp.eye(h.shape[0], dtype=h.dtype), r)
        cand = h[None, :] + ts[:, None] * d[None, :]  # (halvings, N)
        qc = jax.vmap(q_fn)(cand)
        ok = jnp.isfinite(qc) & (qc <= (1.0 - _ARMIJO * ts) * q)
        j = jnp.argmax(ok)  # the longest step that lowers q enough
        take = ok.any()
        return k + 1, jnp.where(take, cand[j], h), jnp.where(take, qc[j], q), ~take

    def one(h0, lr0):
        q0 = q_fn(h0)
        init = (jnp.int32(0), h0, opt.init(h0), q0, q0, jnp.int32(0), lr0)
        _, h, _, _, _, _, _ = jax.lax.while_loop(adam_go, adam_step, init)
        _, h, q, _ = jax.lax.while_loop(newton_go, newton_step, (jnp.int32(0), h, q_fn(h), jnp.bool_(False)))
        return h, q

    return jax.vmap(one)(starts, lrs)


def search(
    params: Params, cfg: NetConfig, starts: Array, x: Array | None = None, steps: int = 1000, lr=LEARNING_RATES, **kw
) -> tuple[Array, Array]:
    """`minimise_q` of one network's map with its analytic Jacobian (pure: vmap it over members with their starts).

    `kw`: the other arguments of `minimise_q` (newton, decay, switch, patience).
    """
    return minimise_q(network_map(params, cfg, x), starts, steps, lr, jac=network_jacobian(params, cfg, x), **kw)


def ensemble_search(
    params: Params, cfg: NetConfig, starts: Array, x: Array | None = None, steps: int = 1000, lr=LEARNING_RATES, **kw
) -> tuple[np.ndarray, np.ndarray]:
    """`search` for every member at once, compiled as one `jit(vmap(...))`.

    Args:
        params: member axis first. starts: (E, S, N). x: (n_in,) constant input or None. kw: see `search`.
    Returns:
        (points (E, S, N), q (E, S)) as numpy.
    """
    fn = jax.jit(jax.vmap(lambda p, s: search(p, cfg, s, x, steps, lr, **kw)))
    pts, q = fn(params, jnp.asarray(starts))
    return np.asarray(pts), np.asarray(q)


def sample_starts(key: Array, h: Array, n: int, noise: float = 0.0) -> Array:
    """`n` states drawn uniformly (with replacement) from h (M, N), plus N(0, noise²) jitter: (n, N)."""
    key_pick, key_noise = jax.random.split(key)
    idx = jax.random.randint(key_pick, (n,), 0, h.shape[0])
    return h[idx] + noise * jax.random.normal(key_noise, (n, h.shape[1]), h.dtype)


# ----------------------------------------------------------------------------------------------------------------
# Host side: float64 polish, merge, symmetry, classification


def polish(F: HostMap, points: np.ndarray, steps: int = 8, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton on the float64 map from each point (the search's second stage, in float64 on the host).

    Args:
        F: the float64 map. points: (P, N). steps: most Newton steps. chunk: points per batched solve (memory:
            chunk · N² float64).
    Returns:
        (points (P, N) float64, q (P,) float64).
    """
    h = np.array(points, np.float64)
    q = 0.5 * np.sum((F(h) - h) ** 2, axis=-1)
    eye = np.eye(h.shape[1])
    for lo in range(0, len(h), chunk):
        sl = slice(lo, lo + chunk)
        active = np.isfinite(q[sl]) & (q[sl] > 0)
        for _ in range(steps):
            idx = np.flatnonzero(active) + lo
            if not len(idx):
                break
            r = F(h[idx]) - h[idx]
            A = F.jacobian(h[idx]) - eye
            try:
                d = -np.linalg.solve(A, r[..., None])[..., 0]
            except np.linalg.LinAlgError:  # a singular J − I: least squares for every point of this batch
                d = -np.stack([np.linalg.lstsq(a_, r_, rcond=None)[0] for a_, r_ in zip(A, r, strict=True)])
            moved = np.zeros(len(idx), bool)
            t = np.ones(len(idx))
            for _ in range(_HALVINGS):
                cand = h[idx] + t[:, None] * d
                qc = 0.5 * np.sum((F(cand) - cand) ** 2, axis=-1)
                ok = ~moved & np.isfinite(qc) & (qc <= (1.0 - _ARMIJO * t) * q[idx])
                h[idx[ok]], q[idx[ok]] = cand[ok], qc[ok]
                moved |= ok
                if moved.all():
                    break
                t = np.where(moved, t, 0.5 * t)
            active[idx[~moved] - lo] = False  # no step lowers q: converged to float64 precision, or stuck
            active[idx[q[idx] == 0] - lo] = False
    return h, q


def _merge(points: np.ndarray, q: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Single-linkage clusters of points within `radius`; the lowest-q point of each cluster represents it.

    Returns:
        (representatives (C,) indices into points, label (len(points),) cluster of each point, 0..C-1 in the order of
        the representatives).
    """
    from sklearn.cluster import DBSCAN

    if len(points) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    raw = DBSCAN(eps=radius, min_samples=1).fit(points).labels_
    reps = np.array([np.flatnonzero(raw == c)[np.argmin(q[raw == c])] for c in np.unique(raw)], int)
    order = np.argsort(q[reps], kind="stable")
    reps = reps[order]
    relabel = np.empty(len(order), int)
    relabel[order] = np.arange(len(order))
    return reps, relabel[np.searchsorted(np.unique(raw), raw)]


def classify(
    points: np.ndarray,
    q: np.ndarray,
    jacobian: Callable[[np.ndarray], np.ndarray],
    scale: float,
    tol: float = 1e-6,
    merge: float = 1e-3,
    odd: bool = False,
) -> FixedPoints:
    """The census from the searches' endpoints: keep those that converged, merge duplicates, add mirrors, label.

    Args:
        points: (S, N) endpoints, one per search. q: (S,) ½‖F(h) − h‖² there.
        jacobian: dF/dh at states (P, N) -> (P, N, N), on the host (e.g. `HostMap.jacobian`).
        scale: the state scale s. tol: a search converged when ‖F(h) − h‖ ≤ tol · s. merge: endpoints closer than
            merge · s are one point. odd: F(−h) = −F(h), so −h is added for every point found.
    """
    points, q = np.asarray(points, np.float64), np.asarray(q, np.float64)
    S, N = points.shape
    ok = np.flatnonzero(np.isfinite(q) & (np.sqrt(2.0 * np.maximum(q, 0.0)) <= tol * scale))
    reps, label = _merge(points[ok], q[ok], merge * scale)
    pts, qq = points[ok][reps], q[ok][reps]
    origin = np.full(S, -1, int)
    origin[ok] = label
    eig = np.zeros((len(pts), N), np.complex128)
    for lo in range(0, len(pts), 64):
        eig[lo : lo + 64] = by_modulus(np.linalg.eigvals(np.asarray(jacobian(pts[lo : lo + 64]), np.float64)))
    mirrored = np.zeros(len(pts), bool)
    mirror = np.full(len(pts), -1, int)
    if odd and len(pts):
        # −h for each point: an existing point within the merge radius, else a new one with the same spectrum
        # (J(−h) = J(h): the derivative of an odd activation is even)
        d2 = np.sum(pts**2, 1)[:, None] + np.sum(pts**2, 1)[None, :] + 2.0 * pts @ pts.T  # ‖−p_i − p_j‖²
        near = np.argmin(d2, axis=1)
        found = d2[np.arange(len(pts)), near] <= (merge * scale) ** 2
        new = np.flatnonzero(~found)
        mirror[found] = near[found]
        mirror[new] = len(pts) + np.arange(len(new))
        mirror = np.concatenate([mirror, new])
        pts = np.concatenate([pts, -pts[new]])
        qq = np.concatenate([qq, qq[new]])
        eig = np.concatenate([eig, eig[new]])
        mirrored = np.concatenate([mirrored, np.ones(len(new), bool)])
    n_unstable = np.asarray(n_outside(eig), int).reshape(len(pts))
    kind = np.where(n_unstable == 0, "stable", np.where(n_unstable == N, "unstable", "saddle"))
    order = np.lexsort((-np.abs(eig[:, 0]) if len(pts) else np.zeros(0), n_unstable))
    rank = np.empty(len(order), int)
    rank[order] = np.arange(len(order))
    remap = lambda idx: np.where(idx >= 0, rank[np.maximum(idx, 0)] if len(rank) else idx, -1)  # noqa: E731
    return FixedPoints(
        pts[order],
        qq[order],
        eig[order],
        n_unstable[order],
        kind[order],
        mirrored[order],
        remap(mirror[order]),
        remap(origin),
        float(scale),
    )


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def fixed_points(
    F: Callable[[Array], Array],
    starts: Array,
    steps: int = 1000,
    lr: float | tuple[float, ...] = LEARNING_RATES,
    tol: float = 1e-6,
    merge: float = 1e-3,
    odd: bool = False,
    **kw,
) -> FixedPoints:
    """The census of any map F (N,) -> (N,) from starts (S, N): search in float32 (Jacobian by `jax.jacfwd`), then
    `classify` with the Jacobians of every point from one compiled, vmapped `jax.jacfwd(F)`. No float64 polish (F is
    a jnp function); network maps have `network_fixed_points`. `kw`: see `minimise_q`."""
    starts = jnp.asarray(starts)
    pts, q = jax.jit(lambda s: minimise_q(F, s, steps, lr, **kw))(starts)
    jac = jax.jit(jax.vmap(jax.jacfwd(F)))
    jacobian = lambda h: np.asarray(jac(jnp.asarray(h, starts.dtype)), np.float64)  # noqa: E731
    return classify(np.asarray(pts), np.asarray(q), jacobian, float(state_scale(starts)), tol, merge, odd)


def _finish(F: HostMap, starts, pts, q, tol: float, merge: float, odd: bool, polish_steps: int) -> FixedPoints:
    """Polish in float64 the endpoints that are near convergence, then `classify` with the host Jacobian."""
    scale = float(state_scale(np.asarray(starts, np.float64)))
    pts, q = np.asarray(pts, np.float64), np.asarray(q, np.float64)
    q = 0.5 * np.sum((F(pts) - pts) ** 2, axis=-1)  # the float64 residual of the float32 endpoints
    near = np.flatnonzero(np.isfinite(q) & (np.sqrt(2.0 * q) <= 1e3 * tol * scale))
    if polish_steps and len(near):
        pts[near], q[near] = polish(F, pts[near], polish_steps)
    return classify(pts, q, F.jacobian, scale, tol, merge, odd)


def ensemble_fixed_points(
    params: Params,
    cfg: NetConfig,
    starts: Array,
    x: Array | None = None,
    steps: int = 1000,
    lr: float | tuple[float, ...] = LEARNING_RATES,
    tol: float = 1e-6,
    merge: float = 1e-3,
    symmetric: bool = True,
    polish_steps: int = 8,
    **kw,
) -> list[FixedPoints]:
    """The census of every member: one vmapped search over (member, start), then per member on the host a float64
    polish of the endpoints within 1000 · tol of converging, and `classify` (float64 analytic Jacobians: nothing is
    compiled per member).

    Args:
        params: member axis first. cfg: the network config. starts: (E, S, N), e.g. `sample_starts` of each member's
            own states. x: (n_in,) constant input, zero when None. steps, lr, kw: the search (`minimise_q`).
        tol, merge: relative to each member's state scale (`classify`). symmetric: add −h for every point found when
            the map is odd (`is_odd`). polish_steps: most float64 Newton steps (0 = no polish).
    Returns:
        One `FixedPoints` per member.
    """
    pts, q = ensemble_search(params, cfg, starts, x, steps, lr, **kw)
    odd = symmetric and is_odd(params, cfg, x)
    starts = np.asarray(starts)
    return [
        _finish(F, starts[i], pts[i], q[i], tol, merge, odd, polish_steps)
        for i, F in enumerate(host_maps(params, cfg, x))
    ]


def network_fixed_points(params: Params, cfg: NetConfig, starts: Array, x: Array | None = None, **kw) -> FixedPoints:
    """`ensemble_fixed_points` of one network (params and starts (S, N) without a member axis)."""
    one = jax.tree.map(lambda a: jnp.asarray(a)[None], params)
    return ensemble_fixed_points(one, cfg, jnp.asarray(starts)[None], x, **kw)[0]


# ----------------------------------------------------------------------------------------------------------------
# Census


def census(fp: FixedPoints) -> dict:
    """The counts of one census, for tables: what was searched, what converged, and the points found by kind.

    Returns:
        dict with `starts` (searches run), `converged` (searches that reached a fixed point), `found` (distinct
        points the searches reached), `mirrored` (−h of a found point, added by the map's odd symmetry), `points`
        (found + mirrored), `stable`, `saddle`, `unstable`, and `saddle_modes` {k: saddles with k unstable modes}.
    """
    k, n = np.unique(fp.n_unstable[fp.kind == "saddle"], return_counts=True)
    return dict(
        starts=fp.n_starts,
        converged=fp.n_converged,
        found=int(np.sum(~fp.mirrored)),
        mirrored=int(np.sum(fp.mirrored)),
        points=len(fp.points),
        stable=fp.count("stable"),
        saddle=fp.count("saddle"),
        unstable=fp.count("unstable"),
        saddle_modes={int(a): int(b) for a, b in zip(k, n, strict=True)},
    )


def census_growth(fp: FixedPoints, sizes) -> list[dict]:
    """How the census grows with the number of starts: the census of the first n searches, for each n in `sizes`.

    The starts are independent draws, so the first n searches are a census with n starts. Points are those the
    first n searches reached, plus their mirrors where `fp` has them.

    Returns:
        One dict per n (n ≤ fp.n_starts): starts, converged, points, stable, saddle, unstable.
    """
    rows = []
    for n in sizes:
        if n > fp.n_starts:
            raise ValueError(f"census_growth: {n} starts asked, the census has {fp.n_starts}")
        reached = np.unique(fp.origin[:n][fp.origin[:n] >= 0])
        ids = np.union1d(reached, fp.mirror[reached][fp.mirror[reached] >= 0]).astype(int)
        kinds = fp.kind[ids]
        rows.append(
            dict(
                starts=int(n),
                converged=int(np.sum(fp.origin[:n] >= 0)),
                points=len(ids),
                stable=int(np.sum(kinds == "stable")),
                saddle=int(np.sum(kinds == "saddle")),
                unstable=int(np.sum(kinds == "unstable")),
            )
        )
    return rows


def describe(steps: int, lr=LEARNING_RATES, tol: float = 1e-6, merge: float = 1e-3, symmetric: bool = True) -> str:
    """One sentence of the search and census settings, for reports."""
    rates = ", ".join(f"{r:g}" for r in np.atleast_1d(lr))
    mirror = "; −h added for every point found where the map is odd (tanh, no bias, zero input)" if symmetric else ""
    return (
        f"Adam ≤ {steps} steps (first step size cycled over {rates}; 0 = none), then damped Newton (step halved until "
        f"q falls), then a float64 damped-Newton polish; converged: ‖F(h) − h‖ ≤ {tol:g} · s, s = RMS norm of the "
        f"starts; endpoints within {merge:g} · s merged{mirror}. A census of the points found, not of all fixed points"
    )


def census_text(fp: FixedPoints) -> str:
    """The census in words: "14 stable, 53 saddles (22 with 1 unstable mode, ...), 0 unstable; 496 of 512 searches
    converged, 51 points found, 16 added by symmetry"."""
    c = census(fp)
    modes = ", ".join(f"{n} with {k} unstable mode{'s' if k > 1 else ''}" for k, n in c["saddle_modes"].items())
    return (
        f"{c['stable']} stable, {c['saddle']} saddles{f' ({modes})' if modes else ''}, {c['unstable']} unstable; "
        f"{c['converged']} of {c['starts']} searches converged, {c['found']} points found, {c['mirrored']} added by "
        "symmetry"
    )
