"""Population states of trained networks and their principal components.

A network's population state on a trial is the matrix of hidden states (T, N) (time × units). Stacking the states
of one member on several trials gives (M, N) samples; their top k principal components are the axes in which the
3-bit flip-flop tutorial (Jarne 2023, "Exploring Flip Flop memories and beyond") draws its memory cube.

Two projections:
  * centred PCA (`centered=True`, default): subtract the mean state, SVD; matches `sklearn.decomposition.PCA`
    (same components up to sign, same explained variance and ratio).
  * the tutorial's uncentred `TruncatedSVD` (`centered=False`): SVD of the raw states; the explained variance and
    ratio follow `sklearn.decomposition.TruncatedSVD` (variance of the projected scores over the total variance).

Everything here is written for ONE member and is pure `jnp`, so `jax.vmap` maps it over the member axis.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from jaxrnn.cells.network import NetConfig, Params, forward


class Projection(NamedTuple):
    """A fitted projection of (M, N) states on k axes (a leading member axis when vmapped).

    Attributes:
        components: (k, N) orthonormal axes (rows), sign fixed so each row's largest-|.| entry is positive.
        mean: (N,) the subtracted mean (zeros when uncentred).
        explained_variance: (k,) variance of the samples' scores on each axis (ddof = 1, as scikit-learn).
        explained_variance_ratio: (k,) that variance over the samples' total variance.
    """

    components: Array
    mean: Array
    explained_variance: Array
    explained_variance_ratio: Array


@functools.partial(jax.jit, static_argnums=2)
def states(params: Params, inputs: Array, cfg: NetConfig) -> Array:
    """Hidden states of one network on a batch of trials.

    Args:
        params: one network. inputs: (K, T, n_in) trials. cfg: the network config.
    Returns:
        (K, T, N) hidden states.
    """
    return jax.vmap(lambda x: forward(params, x, cfg)[1])(inputs)


@functools.partial(jax.jit, static_argnums=2)
def ensemble_states(params: Params, inputs: Array, cfg: NetConfig) -> Array:
    """Hidden states of every member (member axis first in `params`) on the same trials.

    Args:
        params: parameters with a leading member axis E. inputs: (K, T, n_in). cfg: the network config.
    Returns:
        (E, K, T, N) hidden states.
    """
    return jax.vmap(lambda p: states(p, inputs, cfg))(params)


@functools.partial(jax.jit, static_argnames=("k", "centered"))
def fit_pca(X: Array, k: int = 3, centered: bool = True) -> Projection:
    """Top-k principal axes of samples X (M, N) by SVD.

    Args:
        X: (M, N) samples (e.g. time steps × units). k: number of axes (static). centered: subtract the mean first
            (PCA) or not (the tutorial's TruncatedSVD).
    Returns:
        The `Projection`.
    """
    X = jnp.asarray(X)
    M = X.shape[0]
    mean = X.mean(0) if centered else jnp.zeros(X.shape[1], X.dtype)
    Xc = X - mean[None, :]
    _, S, Vt = jnp.linalg.svd(Xc, full_matrices=False)
    Vt = Vt[:k]
    # scikit-learn's svd_flip (u_based_decision=False): each axis' largest-magnitude loading is positive
    big = jnp.argmax(jnp.abs(Vt), axis=1)
    signs = jnp.sign(Vt[jnp.arange(Vt.shape[0]), big])
    Vt = Vt * jnp.where(signs == 0, 1.0, signs)[:, None]
    if centered:
        var = S[:k] ** 2 / (M - 1)
        ratio = S[:k] ** 2 / jnp.sum(S**2)
    else:
        var = jnp.var(Xc @ Vt.T, axis=0, ddof=0)  # TruncatedSVD's convention
        ratio = var / jnp.sum(jnp.var(X, axis=0, ddof=0))
    return Projection(Vt, mean, var, ratio)


@jax.jit
def project(proj: Projection, X: Array) -> Array:
    """Scores of samples X (..., N) on the projection's axes: (..., k)."""
    X = jnp.asarray(X)
    return (X - proj.mean.reshape((1,) * (X.ndim - 1) + (-1,))) @ proj.components.T
