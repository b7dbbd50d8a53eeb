"""The rate RNN equals Keras SimpleRNN + Dense (a plain NumPy loop) at a = 1; initializers have their laws."""

import jax
import numpy as np
import pytest

from jaxrnn.network import NetConfig, forward, init_params, init_recurrent


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
