"""Fixed and slow points of a network's autonomous map (Sussillo & Barak 2013, Neural Computation 25:626).

For a constant input x (zero by default) the network is the discrete map

    F(h) = (1 - a) h + a · tanh(W_rec h + W_in x + b)        (a = 1: F(h) = tanh(W_rec h + W_in x + b)).

Fixed points solve F(h) = h. Following Sussillo & Barak, minimise q(h) = ½ ‖F(h) − h‖² from many starting states
(sampled on the network's trajectories), here with Adam in a `lax.scan` of a fixed number of steps followed by a few
Newton steps (kept only when they lower q), vmapped over starts (and over members); keep the minima with q below
`tol` (true fixed points have q = 0, "slow points" a small q), merge those closer than `merge` (Euclidean, in state
units), and classify each by the eigenvalues λ of the Jacobian dF/dh there (computed on the host in float64): the
number of unstable modes is #{|λ| > 1};
`stable` when it is 0, `unstable` when every mode is unstable, `saddle` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from jaxrnn.network import ACTIVATIONS, NetConfig, Params, recurrent_weights, require_rate_rnn

KINDS = ("stable", "saddle", "unstable")


class FixedPoints(NamedTuple):
    """The distinct fixed points of one map (numpy arrays; P points, N units).

    Attributes:
        points: (P, N) float64 states.
        q: (P,) ½‖F(h) − h‖² at each point.
        eigvals: (P, N) complex128 Jacobian eigenvalues, sorted by decreasing |λ|.
        n_unstable: (P,) int, number of eigenvalues with |λ| > 1.
        kind: (P,) str, one of KINDS.
        n_starts: int, searches run. n_converged: int, searches that ended with q < tol.
    """

    points: np.ndarray
    q: np.ndarray
    eigvals: np.ndarray
    n_unstable: np.ndarray
    kind: np.ndarray
    n_starts: int
    n_converged: int

    def count(self, kind: str) -> int:
        """Number of points of one kind."""
        return int(np.sum(self.kind == kind))


def network_map(params: Params, cfg: NetConfig, x: Array | None = None) -> Callable[[Array], Array]:
    """F: (N,) -> (N,), one step of the network with constant input x (n_in,), zero when None."""
    require_rate_rnn(cfg, "fixed-point analysis")
    act = ACTIVATIONS[cfg.activation]
    a = cfg.alpha
    W_rec = recurrent_weights(params, cfg)  # the effective matrix (Dale's law, sparsity mask)
    u = jnp.zeros(W_rec.shape[0], W_rec.dtype)
    if x is not None:
        u = u + params["W_in"] @ jnp.asarray(x, params["W_in"].dtype)
    if "b" in params:
        u = u + params["b"]

    def F(h):
        r = act(W_rec @ h + u)
        return r if a == 1.0 else h + a * (r - h)

    return F


def minimise_q(
    F: Callable[[Array], Array],
    starts: Array,
    steps: int = 3000,
    lr: float = 1e-2,
    lr_end: float = 1e-6,
    newton: int = 20,
) -> tuple[Array, Array]:
    """Minimise q(h) = ½‖F(h) − h‖² from each start: Adam (learning rate decaying exponentially lr → lr_end), then
    `newton` Newton steps h ← h − (J − I)⁻¹ (F(h) − h) that polish a point near a true fixed point to float32
    precision (a step is kept only when it lowers q, so slow points far from any fixed point stay where Adam left
    them, with their q).

    Args:
        F: the map (N,) -> (N,). starts: (S, N). steps: Adam steps (static). lr, lr_end: first and last step size.
        newton: Newton steps after Adam (static; 0 = none).
    Returns:
        (points (S, N), q (S,)) at the end of the search.
    """
    q_fn = lambda h: 0.5 * jnp.sum((F(h) - h) ** 2)
    opt = optax.adam(optax.exponential_decay(lr, steps, lr_end / lr))

    def adam_step(carry, _):
        h, state = carry
        g = jax.grad(q_fn)(h)
        upd, state = opt.update(g, state, h)
        return (optax.apply_updates(h, upd), state), None

    def newton_step(h, _):
        J = jax.jacfwd(F)(h) - jnp.eye(h.shape[0], dtype=h.dtype)
        h_new = h - jnp.linalg.solve(J, F(h) - h)
        better = jnp.all(jnp.isfinite(h_new)) & (q_fn(h_new) < q_fn(h))
        return jnp.where(better, h_new, h), None

    def one(h0):
        (h, _), _ = jax.lax.scan(adam_step, (h0, opt.init(h0)), None, length=steps)
        h, _ = jax.lax.scan(newton_step, h, None, length=newton)
        return h, q_fn(h)

    return jax.vmap(one)(starts)


def search(
    params: Params, cfg: NetConfig, starts: Array, x: Array | None = None, steps: int = 3000, lr: float = 1e-2
) -> tuple[Array, Array]:
    """`minimise_q` for one network (pure: vmap it over members with their own starts)."""
    return minimise_q(network_map(params, cfg, x), starts, steps, lr)


def ensemble_search(
    params: Params, cfg: NetConfig, starts: Array, x: Array | None = None, steps: int = 3000, lr: float = 1e-2
) -> tuple[np.ndarray, np.ndarray]:
    """`search` for every member at once, compiled as one `jit(vmap(...))`.

    Args:
        params: member axis first. starts: (E, S, N). x: (n_in,) constant input or None.
    Returns:
        (points (E, S, N), q (E, S)) as numpy.
    """
    fn = jax.jit(jax.vmap(lambda p, s: search(p, cfg, s, x, steps, lr)))
    pts, q = fn(params, jnp.asarray(starts))
    return np.asarray(pts), np.asarray(q)


def sample_starts(key: Array, h: Array, n: int, noise: float = 0.0) -> Array:
    """`n` states drawn uniformly (with replacement) from h (M, N), plus N(0, noise²) jitter: (n, N)."""
    key_pick, key_noise = jax.random.split(key)
    idx = jax.random.randint(key_pick, (n,), 0, h.shape[0])
    return h[idx] + noise * jax.random.normal(key_noise, (n, h.shape[1]), h.dtype)


def _merge(points: np.ndarray, q: np.ndarray, radius: float) -> np.ndarray:
    """Indices of representatives: greedy in order of increasing q, dropping points within `radius` of a kept one."""
    kept: list[int] = []
    for i in np.argsort(q, kind="stable"):
        if all(np.linalg.norm(points[i] - points[j]) > radius for j in kept):
            kept.append(int(i))
    return np.asarray(kept, dtype=int)


def classify(
    F: Callable[[Array], Array], points: np.ndarray, q: np.ndarray, tol: float = 1e-7, merge: float = 0.05
) -> FixedPoints:
    """Keep searches with q < tol, merge duplicates, and label each point by its Jacobian's spectrum.

    Args:
        F: the map whose fixed points these are. points: (S, N) search results. q: (S,).
        tol: largest q kept. merge: points closer than this (Euclidean) are one point.
    """
    points, q = np.asarray(points, np.float64), np.asarray(q, np.float64)
    ok = np.isfinite(q) & (q < tol)
    pts, qq = points[ok], q[ok]
    keep = _merge(pts, qq, merge) if len(pts) else np.zeros(0, int)
    pts, qq = pts[keep], qq[keep]
    N = points.shape[1]
    jac = jax.jit(jax.jacfwd(F))
    eig = np.zeros((len(pts), N), np.complex128)
    for i, p in enumerate(pts):
        J = np.asarray(jac(jnp.asarray(p, jnp.float32)), np.float64)
        lam = np.linalg.eigvals(J)
        eig[i] = lam[np.argsort(-np.abs(lam), kind="stable")]
    n_unstable = np.sum(np.abs(eig) > 1.0, axis=1).astype(int)
    kind = np.where(n_unstable == 0, "stable", np.where(n_unstable == N, "unstable", "saddle"))
    order = np.lexsort((-np.abs(eig[:, 0]) if len(pts) else np.zeros(0), n_unstable))
    return FixedPoints(pts[order], qq[order], eig[order], n_unstable[order], kind[order], len(q), int(ok.sum()))


def fixed_points(
    F: Callable[[Array], Array],
    starts: Array,
    steps: int = 3000,
    lr: float = 1e-2,
    tol: float = 1e-7,
    merge: float = 0.05,
) -> FixedPoints:
    """Search from every start, then `classify`: the whole Sussillo & Barak procedure for one map."""
    pts, q = jax.jit(lambda s: minimise_q(F, s, steps, lr))(jnp.asarray(starts))
    return classify(F, np.asarray(pts), np.asarray(q), tol, merge)


def ensemble_fixed_points(
    params: Params,
    cfg: NetConfig,
    starts: Array,
    x: Array | None = None,
    steps: int = 3000,
    lr: float = 1e-2,
    tol: float = 1e-7,
    merge: float = 0.05,
) -> list[FixedPoints]:
    """Fixed points of every member: one vmapped search over (member, start), then per-member `classify`.

    Args:
        params: member axis first. starts: (E, S, N), e.g. `sample_starts` of each member's own states.
    Returns:
        One `FixedPoints` per member.
    """
    pts, q = ensemble_search(params, cfg, starts, x, steps, lr)
    out = []
    for i in range(pts.shape[0]):
        p_i = jax.tree.map(lambda a, i=i: a[i], params)
        out.append(classify(network_map(p_i, cfg, x), pts[i], q[i], tol, merge))
    return out
