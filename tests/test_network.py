"""The rate RNN equals Keras SimpleRNN + Dense (a plain NumPy loop) at a = 1; initializers have their laws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.cells.network import (
    ACTIVATIONS,
    NetConfig,
    euler_step,
    forward,
    forward_batch,
    init_params,
    init_recurrent,
    step_jacobian,
    step_vjp,
)


def keras_simple_rnn(x, kernel, recurrent_kernel, bias, dense_kernel, dense_bias):
    """Keras orientation: h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias); y = h @ dense + b."""
    h = np.zeros(recurrent_kernel.shape[0])
    hs = []
    for x_t in x:
        h = np.tanh(x_t @ kernel + h @ recurrent_kernel + bias)
        hs.append(h)
    hs = np.array(hs)
    return hs @ dense_kernel + dense_bias, hs


@pytest.mark.parametrize("bias", [False, True])
def test_forward_equals_keras_loop(bias):
    cfg = NetConfig(n_in=2, n_out=3, units=8, bias=bias)
    params = jax.tree.map(np.asarray, init_params(jax.random.key(0), cfg, 1.3))
    if bias:
        params["b"] = np.random.default_rng(0).normal(size=8).astype(np.float32) * 0.3
    x = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    out, states = forward(params, x, cfg)
    ref_out, ref_states = keras_simple_rnn(
        x, params["W_in"].T, params["W_rec"].T, params.get("b", 0.0), params["W_out"].T, params["b_out"]
    )
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(states, ref_states, atol=1e-5)


def test_leaky_update():
    cfg = NetConfig(n_in=1, n_out=1, units=4, alpha=0.2)
    params = jax.tree.map(np.asarray, init_params(jax.random.key(1), cfg))
    x = np.ones((5, 1), np.float32)
    _, states = forward(params, x, cfg)
    h = np.zeros(4)
    for t in range(5):
        h = h + 0.2 * (-h + np.tanh(params["W_rec"] @ h + params["W_in"] @ x[t]))
        np.testing.assert_allclose(states[t], h, atol=1e-6)


def test_orthogonal_init():
    W = np.asarray(init_recurrent(jax.random.key(0), 50, "orthogonal", 1.0))
    np.testing.assert_allclose(W @ W.T, np.eye(50), atol=1e-5)
    W2 = np.asarray(init_recurrent(jax.random.key(0), 50, "orthogonal", 2.0))
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(W2)), 2.0, atol=1e-4)


def test_normal_init_std():
    W = np.asarray(init_recurrent(jax.random.key(0), 400, "normal", 1.5))
    assert abs(W.std() - 1.5 / np.sqrt(400)) < 0.002
    assert abs(W.mean()) < 0.002


def test_glorot_limits():
    cfg = NetConfig(n_in=2, n_out=1, units=50)
    p = init_params(jax.random.key(0), cfg)
    assert np.abs(p["W_in"]).max() <= np.sqrt(6 / 52) and np.abs(p["W_in"]).max() > 0.8 * np.sqrt(6 / 52)
    assert "b" not in p and np.all(p["b_out"] == 0)


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(units=0), "units"),
        (dict(units=-3), "units"),
        (dict(init="xavier"), "orthogonal, normal"),
        (dict(activation="gelu"), "activation"),
        (dict(alpha=0.0), "alpha"),
    ],
)
def test_bad_network_config(kw, field):
    with pytest.raises(ValueError, match=field):
        NetConfig(n_in=1, n_out=1, **kw)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_batch_equals_forward_per_trial(activation):
    """The training fast path and `forward` run one equation: at a = 0.3, every trial of a batch alike."""
    cfg = NetConfig(n_in=2, n_out=3, units=8, alpha=0.3, bias=True, activation=activation)
    params = init_params(jax.random.key(0), cfg, 1.3)
    params["b"] = 0.3 * jax.random.normal(jax.random.key(1), (8,))
    x = jax.random.normal(jax.random.key(2), (4, 20, 2))
    out, states = forward_batch(params, x, cfg)
    ref_out, ref_states = jax.vmap(lambda xi: forward(params, xi, cfg))(x)
    assert float(jnp.max(jnp.abs(states))) > 0.1  # the comparison is not vacuous
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states, ref_states, rtol=1e-5, atol=1e-6)


def test_unroll_is_an_argument():
    """`forward_batch(unroll=...)` changes how the scans are compiled, not what they compute (outputs, gradients)."""
    cfg = NetConfig(n_in=2, n_out=1, units=8, alpha=0.3)
    params = init_params(jax.random.key(0), cfg, 1.3)
    x = jax.random.normal(jax.random.key(2), (4, 21, 2))
    loss = lambda p, unroll: jnp.mean(forward_batch(p, x, cfg, unroll=unroll)[0] ** 2)  # noqa: E731
    grads = {u: jax.grad(loss)(params, u) for u in (None, 1, 4)}
    for name in params:
        np.testing.assert_allclose(grads[4][name], grads[1][name], rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_array_equal(grads[None][name], grads[1][name])  # the CPU default: 1
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="unroll"):
            forward_batch(params, x, cfg, unroll=bad)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_step_jacobian_and_vjp_are_the_derivatives_of_the_step(alpha, activation):
    """`step_jacobian` is jacfwd of `euler_step`, batched over leading axes, the same on numpy (float64) and jnp;
    `step_vjp` is its transpose applied to cotangents."""
    act = ACTIVATIONS[activation]
    W = 0.5 * jax.random.normal(jax.random.key(0), (6, 6))
    u = 0.1 * jax.random.normal(jax.random.key(1), (6,))
    h = jax.random.normal(jax.random.key(2), (3, 6))  # three states
    F = lambda h: euler_step(h, act(W @ h + u), alpha)  # noqa: E731
    slope = jax.vmap(jax.vmap(jax.grad(act)))(h @ W.T + u[None, :])  # act' elementwise, (3, 6)
    J = step_jacobian(slope, W, alpha)
    assert J.shape == (3, 6, 6)
    np.testing.assert_allclose(J, jax.vmap(jax.jacfwd(F))(h), rtol=1e-5, atol=1e-6)
    J64 = step_jacobian(np.asarray(slope, np.float64), np.asarray(W, np.float64), alpha)
    assert isinstance(J64, np.ndarray) and J64.dtype == np.float64
    np.testing.assert_allclose(J64, J, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step_jacobian(slope[0], W, alpha), J[0], rtol=0, atol=0)  # one state
    dh = jax.random.normal(jax.random.key(3), (3, 6))
    dz, dh_prev = step_vjp(dh, slope, W, alpha)
    np.testing.assert_allclose(dh_prev, jnp.einsum("bi,bij->bj", dh, J), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dz, alpha * dh * slope, rtol=1e-6, atol=0)
