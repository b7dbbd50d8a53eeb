"""Similarity of state trajectories across realizations, and a clustering of members into regimes.

Two measures of how alike two members' population trajectories X (M, N1) and Y (M, N2) are, on the same M
(time step, trial) samples:

  * **linear CKA** (Kornblith et al. 2019, ICML): with centred X, Y,
    CKA = ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F) ∈ [0, 1]. The default: it is invariant to any rotation (orthogonal map)
    and isotropic scaling of either representation — exactly the freedom between realizations, whose memory cubes
    are rotated copies — needs no fitting, no choice of dimension, and compares networks of different N (an
    ensemble member with the N = 400 reference network).
  * **Procrustes (angular) shape distance** (Williams et al. 2021, NeurIPS "Generalized shape metrics"): with
    centred, unit-Frobenius-norm X and Y, d = arccos(‖Xᵀ Y‖_*) ∈ [0, π/2] radians, the angle left after the best
    rotation of Y onto X (‖·‖_* the nuclear norm). A true metric; 0 for rotated copies.

`similarity_matrix` evaluates either for every pair of members (vmapped); `cluster_members` groups members by
average-linkage hierarchical clustering of 1 − CKA (or the Procrustes distance).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

METRICS = ("cka", "procrustes")


def _centre(X: Array) -> Array:
    return X - X.mean(0)[None, :]


@jax.jit
def linear_cka(X: Array, Y: Array) -> Array:
    """Linear CKA between X (M, N1) and Y (M, N2): () in [0, 1], 1 for rotated / scaled copies."""
    X, Y = _centre(jnp.asarray(X)), _centre(jnp.asarray(Y))
    xy = jnp.sum((Y.T @ X) ** 2)
    xx = jnp.sqrt(jnp.sum((X.T @ X) ** 2))
    yy = jnp.sqrt(jnp.sum((Y.T @ Y) ** 2))
    return xy / (xx * yy)


@jax.jit
def procrustes_distance(X: Array, Y: Array) -> Array:
    """Angular Procrustes distance arccos(‖Xᵀ Y‖_*) between centred, unit-norm X (M, N1) and Y (M, N2): radians."""
    X, Y = _centre(jnp.asarray(X)), _centre(jnp.asarray(Y))
    X = X / jnp.linalg.norm(X)
    Y = Y / jnp.linalg.norm(Y)
    nuc = jnp.sum(jnp.linalg.svd(X.T @ Y, compute_uv=False))
    return jnp.arccos(jnp.clip(nuc, -1.0, 1.0))


def similarity_matrix(states: Array, metric: str = "cka") -> np.ndarray:
    """The (E, E) matrix of `metric` between every pair of members' trajectories.

    Args:
        states: (E, M, N) each member's states on the same M samples (flatten trials and time first).
        metric: "cka" (similarity, 1 on the diagonal) or "procrustes" (distance, 0 on the diagonal).
    """
    if metric not in METRICS:
        raise ValueError(f"similarity: unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    fn = linear_cka if metric == "cka" else procrustes_distance
    S = jnp.asarray(states)
    E = S.shape[0]
    i, j = np.triu_indices(E, 1)
    vals = np.asarray(jax.jit(jax.vmap(fn))(S[i], S[j]), np.float64)
    out = np.full((E, E), 1.0 if metric == "cka" else 0.0)
    out[i, j] = vals
    out[j, i] = vals
    return out


def cluster_members(matrix: np.ndarray, threshold: float = 0.2, metric: str = "cka") -> np.ndarray:
    """Average-linkage clusters of members (scikit-learn's `AgglomerativeClustering` on the precomputed distances).

    Clusters merge while the average distance between their members is at most `threshold` (a merge at exactly the
    threshold happens).

    Args:
        matrix: (E, E) from `similarity_matrix`. threshold: largest average distance (1 − CKA for "cka", radians for
            "procrustes") at which two clusters still merge. metric: which `matrix` holds.
    Returns:
        (E,) int cluster labels 0, 1, ..., largest cluster first (ties: the cluster of the lowest member first).
    """
    from sklearn.cluster import AgglomerativeClustering

    if metric not in METRICS:
        raise ValueError(f"similarity: unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    D = 1.0 - np.asarray(matrix, np.float64) if metric == "cka" else np.asarray(matrix, np.float64)
    D = np.clip((D + D.T) / 2, 0.0, None)
    np.fill_diagonal(D, 0.0)
    E = D.shape[0]
    if E == 1:
        return np.zeros(1, int)
    # scikit-learn merges while the linkage distance is below distance_threshold; nextafter makes "at most" inclusive
    raw = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=np.nextafter(threshold, np.inf)
    ).fit_predict(D)
    ids, first, counts = np.unique(raw, return_index=True, return_counts=True)
    rank = np.empty(len(ids), int)
    rank[np.lexsort((first, -counts))] = np.arange(len(ids))
    return rank[np.searchsorted(ids, raw)]
