"""The training fast path (`network.forward_batch`, hand-written backward pass) equals autodiff through `forward`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.cells.network import NetConfig, forward, forward_batch, init_params
from jaxrnn.tasks import make_task
from jaxrnn.training import train as train_module

E, B, T = 3, 4, 20


def _ensemble(cfg):
    params = jax.vmap(lambda k: init_params(k, cfg, 1.3))(jax.random.split(jax.random.key(0), E))
    if cfg.bias:  # a nonzero bias, so its gradient path is exercised
        params["b"] = 0.3 * jax.random.normal(jax.random.key(5), (E, cfg.units))
    params["b_out"] = 0.1 * jax.random.normal(jax.random.key(6), (E, cfg.n_out))
    if cfg.train_h0:  # a nonzero initial state, so dW_rec's first-step term h0 is exercised
        params["h0"] = 0.5 * jax.random.normal(jax.random.key(7), (E, cfg.units))
    x = jax.random.normal(jax.random.key(1), (E, B, T, cfg.n_in))
    target = jax.random.normal(jax.random.key(2), (E, B, T, cfg.n_out))
    return params, x, target


def _loss_reference(params, x, target, cfg):
    out = jax.vmap(lambda xi: forward(params, xi, cfg)[0])(x)
    return jnp.mean((out - target) ** 2)


def _loss_fast(params, x, target, cfg):
    return jnp.mean((forward_batch(params, x, cfg)[0] - target) ** 2)


def _gradients_both_ways(cfg):
    """Per-member loss gradients by autodiff through `forward` and by the fast path; losses checked equal."""
    params, x, target = _ensemble(cfg)
    vg = lambda loss: jax.jit(jax.vmap(jax.value_and_grad(lambda p, a, b: loss(p, a, b, cfg))))  # noqa: E731
    (l_ref, g_ref), (l_fast, g_fast) = vg(_loss_reference)(params, x, target), vg(_loss_fast)(params, x, target)
    np.testing.assert_allclose(l_fast, l_ref, rtol=1e-5)
    assert set(g_fast) == set(params)
    return g_ref, g_fast


@pytest.mark.parametrize(
    "bias, alpha, activation, n_in, n_out",
    [
        (False, 1.0, "tanh", 2, 3),
        (True, 1.0, "tanh", 2, 3),
        (False, 0.2, "tanh", 2, 3),
        (True, 0.2, "tanh", 2, 3),
        (True, 0.2, "softplus", 2, 3),
        (True, 1.0, "relu", 2, 1),
        # more inputs/outputs than network._SMALL_K: projections and their gradients as matmuls
        (True, 1.0, "tanh", 6, 5),
        (False, 0.5, "tanh", 6, 5),
    ],
)
def test_gradients_equal_autodiff_under_vmap(bias, alpha, activation, n_in, n_out):
    cfg = NetConfig(n_in=n_in, n_out=n_out, units=8, bias=bias, alpha=alpha, activation=activation)
    g_ref, g_fast = _gradients_both_ways(cfg)
    for name in g_ref:
        assert float(jnp.max(jnp.abs(g_ref[name]))) > 0, name  # the comparison is not vacuous
        np.testing.assert_allclose(g_fast[name], g_ref[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_gradients_through_the_states_equal_autodiff(alpha):
    """A loss on the hidden states too (e.g. a rate penalty): their cotangent enters the backward pass."""
    cfg = NetConfig(n_in=2, n_out=1, units=8, alpha=alpha, bias=True)
    params, x, target = _ensemble(cfg)
    p0, x0, t0 = jax.tree.map(lambda a: a[0], (params, x, target))

    def loss(p, run):
        out, states = run(p)
        return jnp.mean((out - t0) ** 2) + 0.7 * jnp.mean(states**2) + 0.1 * jnp.mean(states[:, -1])

    ref = jax.grad(loss)(p0, lambda p: jax.vmap(lambda xi: forward(p, xi, cfg))(x0))
    fast = jax.grad(loss)(p0, lambda p: forward_batch(p, x0, cfg))
    for name in ref:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_forward_batch_equals_forward():
    cfg = NetConfig(n_in=2, n_out=3, units=8, alpha=0.5, bias=True)
    params, x, _ = _ensemble(cfg)
    p0 = jax.tree.map(lambda a: a[0], params)
    out, states = forward_batch(p0, x[0], cfg)
    ref_out, ref_states = jax.vmap(lambda xi: forward(p0, xi, cfg))(x[0])
    assert out.shape == (B, T, 3) and states.shape == (B, T, 8)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states, ref_states, rtol=1e-5, atol=1e-6)


def test_trainer_fast_path_equals_autodiff_trainer():
    """A few epochs of the real trainer (task sampling, masks, early stopping) give the same networks either way."""
    cfg = train_module.TrainConfig(
        make_task("and", T=40, pulse_start=5, response_start=25), units=8, epochs=2, batch_size=4, n_train=16
    )
    results = {}
    for fast in (True, False):
        results[fast] = train_module.fit(cfg, 0, range(2), fast_backward=fast)
    np.testing.assert_allclose(results[True].loss, results[False].loss, rtol=1e-4)
    for name in results[True].params_final:
        np.testing.assert_allclose(
            results[True].params_final[name], results[False].params_final[name], rtol=1e-3, atol=1e-5
        )


@pytest.mark.parametrize(
    "extra",
    [
        dict(train_h0=True),
        dict(train_h0=True, dale=True, sparsity=0.3, alpha=0.2, bias=True),
        dict(dale=True, dale_method="project", dale_axis="post", nonneg_input=True, sparsity=0.3, bias=True),
    ],
)
def test_constrained_gradients_equal_autodiff(extra):
    """A trained h0, Dale's law (either method) and a sparsity mask (W_eff formed outside the custom VJP) keep the
    gradients exact."""
    cfg = NetConfig(n_in=2, n_out=3, units=8, **extra)
    g_ref, g_fast = _gradients_both_ways(cfg)
    for name in g_ref:
        if name in ("rec_mask", "signs"):  # fixed, never trained: no gradient either way
            assert float(jnp.max(jnp.abs(g_fast[name]))) == 0.0 and float(jnp.max(jnp.abs(g_ref[name]))) == 0.0
            continue
        assert float(jnp.max(jnp.abs(g_ref[name]))) > 0, name
        np.testing.assert_allclose(g_fast[name], g_ref[name], rtol=1e-4, atol=1e-6, err_msg=name)
