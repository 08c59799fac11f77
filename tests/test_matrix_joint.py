"""Full-matrix gradient flow of Barlow Twins and VICReg (docs/theory.md section 16, the matrix losses; the
engine of section 10): the vector field against autodiff of the package's population losses, and on
diagonal and rotated commuting data the exact per-feature critical times of :mod:`jepa_dynamics.theory.joint`."""

import numpy as np
import pytest

from jepa_dynamics.training import data, models, objectives
from jepa_dynamics.engines import matrix
from jepa_dynamics.theory import joint, modes, spec
from jepa_dynamics._jax import jax

import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("objective", spec.JOINT_OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 3])
def test_vector_field_is_minus_the_autodiff_gradient(objective, depth):
    """Non-commuting, asymmetric data and a random state large enough that the quartic terms dominate: the field
    is minus ``jax.grad`` of ``objectives.joint_loss`` for every layer, and ``V`` and the target do not move."""
    ds = data.mixed([1.0, 0.5, 2.0], [0.9, 0.4, 1.5], 0.8, seed=0)
    cov = tuple(jnp.asarray(c) for c in ds.covariances())
    y = np.random.default_rng(depth).normal(size=(depth + 2, 3, 3)) * 1.3 / np.sqrt(3)
    encoder = models.DeepLinear(tuple(jnp.asarray(w) for w in y[:depth]))
    grads = jax.grad(lambda e: objectives.joint_loss(objective, "population", e, cov))(encoder)
    f = np.asarray(matrix.vector_field(objective, y, cov))
    for a in range(depth):
        g = np.asarray(grads.layers[a])
        assert np.max(np.abs(g)) > 0.1  # a gradient worth comparing
        np.testing.assert_allclose(f[a], -g, atol=1e-12 * np.max(np.abs(g)))
    assert not np.any(f[depth:])


def _diag(lam, rho):
    sigma2 = lam / rho
    return np.diag(sigma2), np.diag(lam), np.diag(np.maximum(sigma2, lam * rho))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_diagonal_and_rotated_data_give_the_exact_critical_times(depth):
    """Balanced init on diagonal data, or on the same data rotated by an orthogonal matrix: each mode's t* is
    theory.joint.critical_time at the mode's lam (VICReg: and its sigma2, syy) to 1e-6, and the flow settles at
    joint.fixed_point; the summary's theory columns equal the closed forms.  Both objectives share one compiled
    program per depth (the objective is data)."""
    lam, rho, eps = np.array([1.0, 0.7, 1.3]), np.array([0.9, 0.6, 0.8]), 0.05
    o = modes._unit_sign(np.linalg.qr(np.random.default_rng(depth).normal(size=(3, 3)))[0])
    for objective in spec.JOINT_OBJECTIVES:
        kw = {} if objective == "barlow" else {"sigma2": lam / rho, "syy": np.maximum(lam / rho, lam * rho)}
        config = matrix.MatrixConfig(objective, depth, eps=eps, seed=depth)
        t_star = joint.critical_time(objective, depth, lam, eps, **kw)
        w_star = joint.fixed_point(objective, lam, **kw)
        for cov in (_diag(lam, rho), tuple(o @ c @ o.T for c in _diag(lam, rho))):
            m = modes.decompose(cov[0], cov[1])
            order = [int(np.argmin(np.abs(lam - x))) for x in m.lam]  # the modes are sorted by rho
            times = np.concatenate([[0.0], np.geomspace(1e-2, matrix.default_t_max(config, m, syy=cov[2]), 12)])
            res = matrix.integrate(config, cov, times, modes=m)
            assert res.converged and res.learned.all()
            np.testing.assert_allclose(res.t_star, t_star[order], rtol=1e-6)
            np.testing.assert_allclose(res.gamma_inf, w_star[order], rtol=1e-9)
            np.testing.assert_allclose(matrix.theory_critical_times(config, m, syy=cov[2]), t_star[order], rtol=1e-12)
            np.testing.assert_allclose(matrix.theory_fixed_points(config, m, syy=cov[2]), w_star[order], rtol=1e-12)


def test_joint_configs_refuse_what_has_no_meaning():
    with pytest.raises(spec.SpecError, match="^ema_rate: an EMA target is a JEPA option"):
        matrix.MatrixConfig("vicreg", 2, ema_rate=1.0)
    with pytest.raises(spec.SpecError, match="^weight_decay:"):
        matrix.MatrixConfig("barlow", 2, weight_decay=0.1)
    with pytest.raises(spec.SpecError, match="^objective:"):
        matrix.MatrixConfig("simclr", 2)


def test_vicreg_theory_needs_the_target_covariance():
    lam, rho = np.array([1.0, 0.7]), np.array([0.9, 0.6])
    m = modes.decompose(*_diag(lam, rho)[:2])
    with pytest.raises(spec.SpecError, match="^cov:"):
        matrix.theory_critical_times(matrix.MatrixConfig("vicreg", 2), m)
    barlow = matrix.theory_critical_times(matrix.MatrixConfig("barlow", 2, eps=0.05), m)  # lam alone
    np.testing.assert_allclose(barlow, joint.critical_time("barlow", 2, m.lam, 0.05), rtol=1e-12)
