"""Encoders and initialisations (docs/theory.md sections 1.2, 1.3, 13)."""

import numpy as np
import pytest

from jepa_dynamics.training import models
from jepa_dynamics._jax import jax

import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.slow
def test_balanced_init(depth):
    eps, d = 0.03, 5
    m = models.balanced(jax.random.PRNGKey(depth), d, depth, eps)
    np.testing.assert_allclose(np.asarray(m.encoder.matrix()), eps * np.eye(d), atol=1e-15)
    np.testing.assert_allclose(np.asarray(m.predictor.matrix()), eps ** (1 / depth) * np.eye(d), atol=1e-15)
    for w in m.encoder.layers:  # every factor has the same singular values eps^(1/L)
        np.testing.assert_allclose(np.linalg.svd(np.asarray(w), compute_uv=False), eps ** (1 / depth), rtol=1e-12)
    if depth > 1:  # the frames are random, not the identity
        assert np.max(np.abs(np.asarray(m.encoder.layers[0]) - eps ** (1 / depth) * np.eye(d))) > 1e-3
    x = jax.random.normal(jax.random.PRNGKey(9), (7, d))
    np.testing.assert_allclose(np.asarray(m.encoder(x)), eps * np.asarray(x), atol=1e-14)


@pytest.mark.slow
def test_balanced_mlp_is_linear_with_linear_activation():
    m = models.balanced(jax.random.PRNGKey(0), 4, 3, 0.01, model="mlp", width=9, activation="linear")
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    np.testing.assert_allclose(np.asarray(m.encoder(x)), 0.01 * np.asarray(x), atol=1e-14)
    assert m.encoder.layers[0].shape == (9, 4) and m.encoder.layers[-1].shape == (4, 9)
    t = models.balanced(jax.random.PRNGKey(0), 4, 3, 0.01, model="mlp", width=9, activation="tanh")
    xs = 0.1 * x  # small inputs: tanh(h) = h (1 + O(h^2)) in every layer
    np.testing.assert_allclose(np.asarray(t.encoder(xs)), 0.01 * np.asarray(xs), rtol=2e-3, atol=1e-9)


def test_random_init_scale_and_dtype():
    d, scale = 200, 0.3
    m = models.random_init(jax.random.PRNGKey(0), d, 2, scale, dtype=jnp.float32)
    w = np.asarray(m.encoder.layers[0])
    assert w.dtype == np.float32
    assert abs(w.std() - scale / np.sqrt(d)) < 0.02 * scale / np.sqrt(d)
    m2 = models.random_init(jax.random.PRNGKey(0), d, 2, scale, dtype=jnp.float32)
    np.testing.assert_array_equal(w, np.asarray(m2.encoder.layers[0]))  # seeded


@pytest.mark.slow
def test_random_orthogonal():
    q = np.asarray(models.random_orthogonal(jax.random.PRNGKey(3), 6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-13)


@pytest.mark.parametrize("n,k", [(1, 1), (2, 2), (7, 3), (16, 16), (40, 33)])
@pytest.mark.slow
def test_orthonormal_factor_is_lapacks_q_with_positive_diagonal(n, k):
    """The Householder Q against NumPy's LAPACK QR with the signs fixed (the factorisation with
    ``diag(R) > 0`` is unique), on matrices of several shapes and a badly scaled one."""
    rng = np.random.default_rng(n * 100 + k)
    for a in (rng.standard_normal((n, k)), rng.standard_normal((n, k)) * np.logspace(0, 6, k)[None, :]):
        q, r = np.linalg.qr(a)
        q = q * np.where(np.diag(r) >= 0, 1.0, -1.0)[None, :]
        got = np.asarray(models.orthonormal_factor(jnp.asarray(a)))
        np.testing.assert_allclose(got, q, atol=1e-12)
        np.testing.assert_allclose(got.T @ got, np.eye(k), atol=1e-13)
        np.testing.assert_allclose(np.triu(got.T @ a), got.T @ a, atol=1e-9 * np.abs(a).max())  # R = Q^T a upper


def test_batched_init_calls_no_lapack_kernel():
    """A vmapped balanced init must compile to plain XLA ops: jaxlib's batched LAPACK QR blocks
    on XLA's CPU thread pool from inside it, and two of them at once deadlocked train-grid."""
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    init = jax.vmap(lambda k: models.balanced(k, 4, 3, 0.01))
    text = jax.jit(init).lower(keys).as_text()
    assert "custom_call" not in text
    assert "lapack" not in text.lower()


@pytest.mark.slow
def test_deep_linear_association_does_not_change_the_function():
    """A large batch goes through the end-to-end matrix first, a small one layer by layer;
    both must be the plain product W_L ... W_1 x, and give the same gradients."""
    key = jax.random.PRNGKey(7)
    k1, k2, k3 = jax.random.split(key, 3)
    layers = tuple(jax.random.normal(k, (6, 6), jnp.float64) for k in jax.random.split(k1, 4))
    enc = models.DeepLinear(layers)
    big = jax.random.normal(k2, (512, 6), jnp.float64)  # product first
    small = big[:2]  # layer by layer
    reference = np.asarray(big) @ np.linalg.multi_dot([np.asarray(w) for w in layers[::-1]]).T
    np.testing.assert_allclose(enc(big), reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(enc(small), reference[:2], rtol=1e-12, atol=1e-12)

    def loss(e, x):
        return jnp.sum(jnp.sin(e(x)))

    g_big = jax.grad(loss)(enc, big)
    g_rows = [jax.grad(loss)(enc, big[i : i + 2]) for i in range(0, 512, 2)]  # layer by layer
    for a, *bs in zip(g_big.layers, *(g.layers for g in g_rows)):
        np.testing.assert_allclose(a, sum(bs), rtol=1e-10, atol=1e-10)
