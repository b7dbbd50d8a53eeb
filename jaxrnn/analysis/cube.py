"""The memory cube of the n-bit flip-flop (Jarne 2023, "Exploring Flip Flop memories and beyond").

A network that solves the 3-bit flip-flop holds 8 memory states; the tutorial shows them at the vertices of a cube
in the space of the top 3 principal components of the population state, rotated differently in every realization.
This module makes that a number per member:

  1. `cube_sequence`: a noise-free test input that visits every one of the 2^n bit patterns `repeats` times
     (a Gray-code cycle, so after the first segment exactly one channel is pulsed per segment, as in training), each
     held `hold` steps so the state settles; the last `settle` steps of each segment are labelled with the pattern.
  2. `centroids`: the mean state of each pattern over its settled steps.
  3. `cube_score`: a linear fit of the 2^n centroids on the n bits (±1), centroid ≈ c + Σ_b bit_b · a_b.
     R² = 1 − residual / total sum of squares is 1 exactly when the centroids are the vertices of a parallelepiped
     (a cube up to a linear map); for 8 random points in 3-D it is 3/7 on average. The angles between the bit axes
     a_b (90° for a cube) and their lengths describe its shape.

Pattern index c has bit b equal to + when (c >> (n - 1 - b)) & 1, the order of `FlipFlop3.conditions`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxrnn.analysis.states import Projection, fit_pca, project, states
from jaxrnn.cells.network import NetConfig, Params


class CubeSequence(NamedTuple):
    """The test sequence (numpy arrays).

    Attributes:
        inputs: (T, n) float32 noise-free pulses of ±1.
        bits: (T, n) float32, the memory each output should hold (±1; 0 before the first pulse takes effect).
        label: (T,) int32, pattern index on settled steps, -1 elsewhere.
        patterns: (2^n, n) float32 ±1 bits of each pattern index.
    """

    inputs: np.ndarray
    bits: np.ndarray
    label: np.ndarray
    patterns: np.ndarray


class Cube(NamedTuple):
    """The cube of one member (a leading member axis when vmapped).

    Attributes:
        r2: () R² of the linear fit of the centroids on the bits in the top-k PC space.
        r2_full: () the same fit in the full N-dimensional state space (no projection).
        angles: (n(n-1)/2,) degrees between bit axes (pairs (0,1), (0,2), (1,2), ...), in PC space.
        axis_lengths: (n,) |a_b| in PC space (half an edge).
        centroids: (2^n, k) pattern centroids in PC space.
        explained_variance_ratio: (k,) of the projection fitted on the whole sequence.
        projection: the `Projection` (fitted on every step of the sequence).
    """

    r2: Array
    r2_full: Array
    angles: Array
    axis_lengths: Array
    centroids: Array
    explained_variance_ratio: Array
    projection: Projection


def patterns(n_bits: int = 3) -> np.ndarray:
    """(2^n, n) ±1 bits of each pattern index (bit 0 is the most significant, as `FlipFlop3.conditions`)."""
    c = np.arange(2**n_bits)[:, None]
    b = (c >> (n_bits - 1 - np.arange(n_bits))[None, :]) & 1
    return (2.0 * b - 1.0).astype(np.float32)


def cube_sequence(
    n_bits: int = 3, hold: int = 120, repeats: int = 2, pulse_width: int = 20, settle: int = 50
) -> CubeSequence:
    """The noise-free sequence that visits every pattern `repeats` times along a Gray-code cycle.

    Segment s (length `hold`) starts with a `pulse_width`-step pulse; the first segment pulses every channel, the
    others only the channel whose bit changes. The last `settle` steps of a segment are labelled with its pattern.

    Args:
        n_bits: n. hold: steps per segment. repeats: passes over the cycle. pulse_width: pulse length in steps.
        settle: labelled steps at the end of each segment.
    Returns:
        A `CubeSequence` with T = 2^n · repeats · hold.
    """
    if not 0 < settle <= hold - pulse_width:
        raise ValueError(f"cube_sequence: settle must be in (0, hold - pulse_width], got {settle}")
    pats = patterns(n_bits)
    gray = [i ^ (i >> 1) for i in range(2**n_bits)] * repeats
    T = len(gray) * hold
    inputs = np.zeros((T, n_bits), np.float32)
    bits = np.zeros((T, n_bits), np.float32)
    label = np.full(T, -1, np.int32)
    prev = np.zeros(n_bits, np.float32)
    for s, c in enumerate(gray):
        t0 = s * hold
        change = pats[c] != prev
        inputs[t0 : t0 + pulse_width, change] = pats[c][change]
        bits[t0 + pulse_width :, :] = pats[c]
        label[t0 + hold - settle : t0 + hold] = c
        prev = pats[c]
    return CubeSequence(inputs, bits, label, pats)


@functools.partial(jax.jit, static_argnums=2)
def centroids(h: Array, label: Array, n_patterns: int) -> Array:
    """Mean state of each pattern over the steps labelled with it.

    Args:
        h: (T, N) states. label: (T,) pattern index, -1 = unlabelled. n_patterns: 2^n.
    Returns:
        (n_patterns, N); NaN rows for patterns without labelled steps.
    """
    onehot = (jnp.asarray(label)[:, None] == jnp.arange(n_patterns)[None, :]).astype(h.dtype)  # (T, P)
    count = onehot.sum(0)
    return (onehot.T @ h) / jnp.where(count > 0, count, jnp.nan)[:, None]


@jax.jit
def cube_score(points: Array, bits: Array) -> tuple[Array, Array, Array]:
    """Fit points ≈ c + bits @ A by least squares.

    Args:
        points: (P, d) e.g. the 8 centroids. bits: (P, n) their ±1 bits.
    Returns:
        (r2 (), angles (n(n-1)/2,) degrees between the rows of A, lengths (n,) of the rows of A).
    """
    points = jnp.asarray(points)
    bits = jnp.asarray(bits, points.dtype)
    X = jnp.concatenate([jnp.ones((bits.shape[0], 1), points.dtype), bits], axis=1)
    coef = jnp.linalg.pinv(X) @ points  # (n + 1, d)
    resid = points - X @ coef
    centred = points - points.mean(0)[None, :]
    r2 = 1.0 - jnp.sum(resid**2) / jnp.sum(centred**2)
    A = coef[1:]
    lengths = jnp.linalg.norm(A, axis=1)
    cos = (A @ A.T) / (lengths[:, None] * lengths[None, :])
    i, j = np.triu_indices(A.shape[0], 1)
    angles = jnp.degrees(jnp.arccos(jnp.clip(cos[i, j], -1.0, 1.0)))
    return r2, angles, lengths


@functools.partial(jax.jit, static_argnames=("cfg", "k", "centered"))
def cube(params: Params, cfg: NetConfig, seq: CubeSequence, k: int = 3, centered: bool = True) -> Cube:
    """The cube of one member on the test sequence (pure jnp: vmap it over members).

    Args:
        params: one network. cfg: its config. seq: `cube_sequence(...)`. k: PCs. centered: PCA vs uncentred SVD.
    """
    h = states(params, jnp.asarray(seq.inputs)[None], cfg)[0]  # (T, N)
    proj = fit_pca(h, k, centered)
    P = seq.patterns.shape[0]
    c_full = centroids(h, seq.label, P)
    c_pc = project(proj, c_full)
    r2, angles, lengths = cube_score(c_pc, seq.patterns)
    r2_full, _, _ = cube_score(c_full, seq.patterns)
    return Cube(r2, r2_full, angles, lengths, c_pc, proj.explained_variance_ratio, proj)
