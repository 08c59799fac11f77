"""Full-matrix gradient flow (docs/theory.md section 10): the vector field against autodiff of the package's
losses, the Du-Hu-Lee conservation laws along solutions, the exact per-feature critical times on
diagonal and rotated commuting data, and trained networks (plain GD) on non-commuting data."""

from functools import partial

import numpy as np
import pytest

from jepa_dynamics.training import data, models, objectives
from jepa_dynamics.engines import matrix
from jepa_dynamics.theory import modes, spec
from jepa_dynamics._jax import jax
from reference import quad_critical_time

import jax.numpy as jnp  # noqa: E402


def _state(seed, d, depth, scale=0.7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(depth + 2, d, d)) * scale / np.sqrt(d)


@pytest.mark.parametrize("objective, ema_rate, beta", [("jepa", None, 0.0), ("jepa", 0.7, 0.1), ("mae", None, 0.05)])
@pytest.mark.slow
def test_vector_field_is_minus_the_autodiff_gradient(objective, ema_rate, beta):
    ds = data.mixed([1.0, 0.5, 2.0], [0.9, 0.4, 1.5], 0.8, seed=0)
    cov = tuple(jnp.asarray(c) for c in ds.covariances())
    y = _state(1, 3, 3)
    layers, v, target = matrix.unpack(y)
    model = models.Model(models.DeepLinear(tuple(jnp.asarray(w) for w in layers)), models.DeepLinear((jnp.asarray(v),)))
    ema = models.DeepLinear((jnp.asarray(target),)) if ema_rate is not None else None
    grads = jax.grad(lambda m: objectives.loss(objective, "population", m, cov, ema))(model)
    f = np.asarray(matrix.vector_field(objective, y, cov, beta, ema_rate))
    for a in range(3):
        np.testing.assert_allclose(f[a], -np.asarray(grads.encoder.layers[a]) - beta * layers[a], atol=1e-13)
    np.testing.assert_allclose(f[3], -np.asarray(grads.predictor.layers[0]) - beta * v, atol=1e-13)
    wbar = layers[2] @ layers[1] @ layers[0]
    expected_target = 0.7 * (wbar - target) if ema_rate is not None else 0.0 * wbar
    np.testing.assert_allclose(f[4], expected_target, atol=1e-14)


@pytest.mark.parametrize("objective, ema_rate, beta", [("jepa", None, 0.0), ("jepa", 2.0, 0.0), ("mae", None, 0.0),
                                                       ("jepa", None, 0.05)])
@pytest.mark.slow
def test_conservation_laws_along_solutions(objective, ema_rate, beta):
    """W_{a+1}^T W_{a+1} - W_a W_a^T and V^T V - W_L W_L^T are constant (Du, Hu & Lee 2018), also with a
    stop-gradient or EMA target; with weight decay beta they decay as exp(-2 beta t)."""
    ds = data.mixed(np.linspace(1.0, 2.0, 3), np.linspace(0.9, 0.3, 3), 0.7, seed=2)
    config = matrix.MatrixConfig(objective, 3, eps=0.1, init="random", init_scale=0.6, seed=3, ema_rate=ema_rate,
                                 weight_decay=beta)
    times = np.array([0.0, 5.0, 20.0, 60.0, 150.0])
    res = matrix.integrate(config, ds.covariances(), times, invariants=True)
    assert np.max(np.abs(res.wbar[-1] - res.wbar[0])) > 0.05  # the flow went somewhere
    for k, t in enumerate(times):
        for c0, c in zip(res.invariants[0], res.invariants[k]):
            np.testing.assert_allclose(c, c0 * np.exp(-2 * beta * t), atol=1e-9 * max(1.0, np.max(np.abs(c0))))


def _diag(lam, rho):
    lam, rho = np.asarray(lam), np.asarray(rho)
    return np.diag(lam / rho), np.diag(lam), np.diag(np.maximum(lam / rho, lam * rho))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.slow
def test_diagonal_and_rotated_data_give_the_exact_critical_times(depth):
    """docs/theory.md section 10's exact case: balanced init on diagonal data, or on the same data rotated by
    an orthogonal matrix, gives each mode the per-feature t* of section 4 (here to 1e-6, against quadrature)."""
    lam, rho = np.array([1.0, 0.7, 1.3]), np.array([0.9, 0.6, 0.8])
    o = modes._unit_sign(np.linalg.qr(np.random.default_rng(depth).normal(size=(3, 3)))[0])
    for objective, eps in (("jepa", 0.05), ("mae", 0.01)):
        config = matrix.MatrixConfig(objective, depth, eps=eps, seed=depth)
        expected = {r: quad_critical_time(objective, depth, l, r, eps) for l, r in zip(lam, rho)}
        for cov in (_diag(lam, rho), tuple(o @ c @ o.T for c in _diag(lam, rho))):
            m = modes.decompose(cov[0], cov[1])
            times = np.concatenate([[0.0], np.geomspace(1e-2, matrix.default_t_max(config, m), 12)])
            res = matrix.integrate(config, cov, times, modes=m)
            assert res.converged and res.learned.all()
            want = np.array([expected[min(expected, key=lambda r: abs(r - r_m))] for r_m in m.rho])
            np.testing.assert_allclose(res.t_star, want, rtol=1e-6)
            np.testing.assert_allclose(matrix.theory_critical_times(config, m), want, rtol=1e-9)
            np.testing.assert_allclose(res.gamma_inf, spec.fixed_point(objective, depth, m.rho), rtol=1e-9)


@partial(jax.jit, static_argnums=(0,))
def _gd_steps(objective, model, cov, lr, n):
    """``n`` steps of plain gradient descent on the package's population loss (models + objectives)."""
    grad = jax.grad(lambda m: objectives.loss(objective, "population", m, cov))
    return jax.lax.fori_loop(0, n, lambda _, m: jax.tree_util.tree_map(lambda p, g: p - lr * g, m, grad(m)), model)


def _gd_wbar(objective, y0, cov, lr, checkpoints):
    """``Wbar`` of a deep linear network trained by plain GD (float64) at the step ``checkpoints``."""
    layers, v, _ = matrix.unpack(y0)
    model = models.Model(models.DeepLinear(tuple(jnp.asarray(w) for w in layers)), models.DeepLinear((jnp.asarray(v),)))
    cov = tuple(jnp.asarray(c) for c in cov)
    out, done = [], 0
    for k in checkpoints:
        model = _gd_steps(objective, model, cov, jnp.asarray(lr), jnp.asarray(k - done))
        done = k
        out.append(np.asarray(model.encoder.matrix()))
    return np.stack(out)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.slow
def test_matrix_flow_matches_trained_networks(objective):
    """d = 8, non-commuting asymmetric data, random init, depth 2: gradient descent with a small step
    (Richardson-extrapolated over lr and lr / 2, which cancels GD's O(lr) departure from the flow)
    gives the engine's Wbar(t) to 1e-3 relative at every checkpoint."""
    ds = data.mixed(np.linspace(1.0, 2.0, 8), np.linspace(0.9, 0.3, 8), 0.6, seed=5)
    config = matrix.MatrixConfig(objective, 2, init="random", init_scale=0.3, seed=6)
    y0 = matrix.initial_state(config, 8)
    lr = 2e-3
    steps = np.array([1000, 3000, 6000, 10000])
    times = np.concatenate([[0.0], lr * steps])
    res = matrix.integrate(config, ds.covariances(), times, state=y0)
    coarse = _gd_wbar(objective, y0, ds.covariances(), lr, steps)
    fine = _gd_wbar(objective, y0, ds.covariances(), lr / 2, 2 * steps)
    gd = 2 * fine - coarse
    assert np.max(np.abs(res.wbar[-1] - res.wbar[0])) > 0.1 * np.max(np.abs(res.wbar[-1]))  # it learned
    for k in range(len(steps)):
        err = np.linalg.norm(gd[k] - res.wbar[k + 1]) / np.linalg.norm(res.wbar[k + 1])
        assert err < 1e-3, (k, err)


def test_crossing_times_by_hermite_interpolation():
    ts = np.linspace(0.0, 2.0, 5)
    g = np.stack([ts**3, ts], axis=1)
    dg = np.stack([3 * ts**2, np.ones_like(ts)], axis=1)
    # a cubic is interpolated exactly: t^3 = 2 at t = 2^(1/3); the line crosses 1.3 at 1.3
    np.testing.assert_allclose(matrix.crossing_times(ts, g, dg, [2.0, 1.3]), [2 ** (1 / 3), 1.3], rtol=1e-12)
    assert np.isnan(matrix.crossing_times(ts, g, dg, [9.0, 9.0])).all()


def test_bad_config():
    with pytest.raises(spec.SpecError, match="^ema_rate: an EMA target is a JEPA option"):
        matrix.MatrixConfig("mae", 2, ema_rate=1.0)
    with pytest.raises(spec.SpecError, match="^init:"):
        matrix.MatrixConfig("jepa", 2, init="orthogonal")
    with pytest.raises(spec.SpecError, match="^weight_decay:"):
        matrix.MatrixConfig("jepa", 2, weight_decay=-1)


@pytest.mark.slow
def test_ema_target_critical_times_of_the_reference_example():
    """docs/theory.md section 9's EMA example (L=2, lam=0.8, rho=0.6, balanced u0=0.1): t* = 550.6
    (kappa=100), 555.4 (kappa=1), 630.4 (kappa=0.05); a one-feature matrix flow is that system."""
    lam, rho = 0.8, 0.6
    cov = (np.array([[lam / rho]]), np.array([[lam]]), np.array([[lam / rho]]))
    for kappa, t_star in ((100.0, 550.6), (1.0, 555.4), (0.05, 630.4)):
        res = matrix.integrate(matrix.MatrixConfig("jepa", 2, eps=0.01, ema_rate=kappa), cov,
                               np.array([0.0, 300.0, 1000.0, 3000.0]))
        assert res.t_star[0] == pytest.approx(t_star, abs=0.05)
        assert res.gamma_inf[0] == pytest.approx(rho**2, rel=1e-9)
