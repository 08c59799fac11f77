"""Losses (docs/theory.md section 1.2): population forms against Monte Carlo; autodiff gradients against the
per-feature ODE of docs/theory.md section 2; the stop-gradient and the EMA update."""

import numpy as np
import pytest

from jepa_dynamics.training import data, models, objectives
from jepa_dynamics import theory
from jepa_dynamics._jax import jax

import jax.numpy as jnp  # noqa: E402


def _random_model(seed, d=3, depth=2):
    return models.random_init(jax.random.PRNGKey(seed), d, depth, 0.8)


@pytest.mark.parametrize("make", [lambda: data.custom([1.0, 0.5, 2.0], [0.9, 0.4, 1.5]),
                                  lambda: data.mixed([1.0, 0.5, 2.0], [0.9, 0.4, 1.5], 0.7, seed=3)],
                         ids=["diagonal", "full-matrix"])
@pytest.mark.slow
def test_population_losses_equal_sample_means(make):
    """Diagonal second moments (vectors) and full ones (docs/theory.md section 10, ``(d, d)`` matrices)."""
    ds = make()
    model, target = _random_model(0), _random_model(1).encoder
    x, y = ds.sample(jax.random.PRNGKey(2), 400_000)
    x, y = np.asarray(x), np.asarray(y)
    a = np.asarray(model.predictor.matrix() @ model.encoder.matrix())
    wt = np.asarray(target.matrix())
    mc_jepa = 0.5 * np.mean(np.sum((x @ a.T - y @ wt.T) ** 2, axis=1))
    mc_mae = 0.5 * np.mean(np.sum((x @ a.T - y) ** 2, axis=1))
    cov = tuple(jnp.asarray(c) for c in ds.covariances())
    assert float(objectives.jepa_population(model, target, *cov)) == pytest.approx(mc_jepa, rel=0.01)
    assert float(objectives.mae_population(model, *cov)) == pytest.approx(mc_mae, rel=0.01)
    # and the sampled losses are exactly those sample means
    assert float(objectives.jepa_sampled(model, target, jnp.asarray(x), jnp.asarray(y))) == pytest.approx(mc_jepa, rel=1e-10)
    assert float(objectives.mae_sampled(model, jnp.asarray(x), jnp.asarray(y))) == pytest.approx(mc_mae, rel=1e-10)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.slow
def test_gradient_flow_on_balanced_diagonal_matches_ode(objective, depth):
    """-dLoss/d(factor) on the balanced init equals du/dt of docs/theory.md section 2 for every factor."""
    lam, rho, u = np.array([1.0, 0.6]), np.array([0.9, 0.3]), 0.35
    ds = data.custom(lam, rho)
    model = models.balanced(jax.random.PRNGKey(0), 2, depth, u**depth)
    cov = tuple(jnp.asarray(c) for c in ds.covariances())
    grads = jax.grad(lambda m: objectives.loss(objective, "population", m, cov))(model)
    du = theory.rhs_u(objective, u, depth, lam, rho)
    np.testing.assert_allclose(-np.diag(np.asarray(grads.predictor.layers[0])), du, rtol=1e-12)
    # in the frame of the balanced init, each encoder factor moves by du too
    for g, w in zip(grads.encoder.layers, model.encoder.layers):
        # W_a = u O_a O_{a-1}^T and -grad_a = O_a diag(du) O_{a-1}^T, so -grad_a W_a^T = u O_a diag(du) O_a^T
        lhs = -np.asarray(g) @ np.asarray(w).T / u
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(0.5 * (lhs + lhs.T))), np.sort(du), rtol=1e-10,
                                   atol=1e-15)


@pytest.mark.slow
def test_stop_gradient_blocks_the_target_path():
    ds = data.custom([1.0], [0.5])
    cov = tuple(jnp.asarray(c) for c in ds.covariances())
    model = models.balanced(jax.random.PRNGKey(0), 1, 1, 0.2)
    g_sg = jax.grad(lambda m: objectives.loss("jepa", "population", m, cov))(model)
    g_th = jax.grad(lambda m: objectives.loss("jepa", "population", m, cov, stop_gradient=False))(model)
    # scalar case w, v: L = 1/2 s2 v^2 w^2 - lam v w wt + 1/2 syy wt^2; d/dw with wt = sg(w) vs wt = w
    w = v = 0.2
    s2, lam, syy = ds.sigma2[0], ds.lam[0], ds.syy[0]
    assert float(g_sg.encoder.layers[0][0, 0]) == pytest.approx(s2 * v**2 * w - lam * v * w, rel=1e-12)
    assert float(g_th.encoder.layers[0][0, 0]) == pytest.approx(s2 * v**2 * w - 2 * lam * v * w + syy * w, rel=1e-12)


@pytest.mark.slow
def test_ema_update():
    """Deep linear: Wtgt <- tau Wtgt + (1 - tau) Wbar (docs/theory.md section 1.2) on the end-to-end matrix
    (an average of products, not a product of layer averages); MLP: parameter by parameter."""
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    e0 = models.random_init(k[0], 3, 2, 0.7).encoder
    e1 = models.random_init(k[1], 3, 2, 0.7).encoder
    t = objectives.ema_target(e0)
    np.testing.assert_allclose(np.asarray(t.matrix()), np.asarray(e0.layers[1] @ e0.layers[0]), rtol=1e-14)
    out = objectives.ema_update(t, e1, 0.25)
    wbar0 = np.asarray(e0.layers[1]) @ np.asarray(e0.layers[0])
    wbar1 = np.asarray(e1.layers[1]) @ np.asarray(e1.layers[0])
    np.testing.assert_allclose(np.asarray(out.matrix()), 0.25 * wbar0 + 0.75 * wbar1, rtol=1e-13)
    layerwise = (0.25 * np.asarray(e0.layers[1]) + 0.75 * np.asarray(e1.layers[1])) @ (
        0.25 * np.asarray(e0.layers[0]) + 0.75 * np.asarray(e1.layers[0]))
    assert np.max(np.abs(layerwise - np.asarray(out.matrix()))) > 1e-3  # the two rules differ
    m0 = models.random_init(k[2], 3, 2, 0.7, model="mlp", width=5).encoder
    m1 = models.random_init(k[0], 3, 2, 0.7, model="mlp", width=5).encoder
    mout = objectives.ema_update(objectives.ema_target(m0), m1, 0.25)
    for o, a, b in zip(mout.layers, m0.layers, m1.layers):
        np.testing.assert_allclose(np.asarray(o), 0.25 * np.asarray(a) + 0.75 * np.asarray(b), rtol=1e-14)


def test_full_matrix_path_equals_the_diagonal_fast_path():
    """Diagonal matrices through the full-matrix losses give exactly the vector fast path."""
    model, target = _random_model(4), _random_model(5).encoder
    diag = data.custom([1.0, 0.5, 2.0], [0.9, 0.4, 1.5])
    vec = tuple(jnp.asarray(c) for c in diag.covariances())
    mat = tuple(jnp.diag(c) for c in vec)
    for f in (lambda c: objectives.jepa_population(model, target, *c), lambda c: objectives.mae_population(model, *c)):
        assert float(f(mat)) == pytest.approx(float(f(vec)), rel=1e-13)
