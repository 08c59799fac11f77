"""Data families: exact second moments (spec section 7) against Monte Carlo, and input checks."""

import numpy as np
import pytest

from jepa_dynamics import data, spec
from jepa_dynamics._jax import jax

N = 200_000


def _moments(ds, seed=0):
    x, y = ds.sample(jax.random.PRNGKey(seed), N)
    x, y = np.asarray(x), np.asarray(y)
    return np.mean(x**2, 0), np.mean(x * y, 0), np.mean(y**2, 0), x, y


@pytest.mark.parametrize("family", data.FAMILIES[1:])
def test_sampler_matches_exact_covariances(family):
    ds = data.make(family, dim=6)
    sxx, sxy, syy, x, y = _moments(ds)
    exact = ds.covariances()
    # standard error of a mean of products of Gaussians is <= sqrt(2) * scale / sqrt(N); allow 6 of them
    for est, ex, scale in zip((sxx, sxy, syy), exact, (ds.sigma2, np.sqrt(ds.sigma2 * ds.syy), ds.syy)):
        np.testing.assert_allclose(est, ex, atol=6 * np.sqrt(2) * np.max(scale) / np.sqrt(N))
    # features are independent: off-diagonal cross moments vanish
    cross = x.T @ y / N
    off = cross - np.diag(np.diag(cross))
    assert np.max(np.abs(off)) < 6 * np.sqrt(2) * np.max(np.sqrt(ds.sigma2 * ds.syy)) / np.sqrt(N)
    np.testing.assert_allclose(ds.rho, ds.lam / ds.sigma2)
    assert np.all(ds.syy >= ds.lam * ds.rho - 1e-15)


def test_custom_target_variance_choice():
    ds = data.custom([1.0, 2.0], [0.5, 2.0])
    # rho <= 1: equal-variance views; rho > 1: the smallest admissible E[y^2] = lam * rho
    np.testing.assert_allclose(ds.sigma2, [2.0, 1.0])
    np.testing.assert_allclose(ds.syy, [2.0, 4.0])
    _, sxy, syy, _, _ = _moments(ds, seed=3)
    np.testing.assert_allclose(sxy, [1.0, 2.0], rtol=0.03)
    np.testing.assert_allclose(syy, [2.0, 4.0], rtol=0.03)


def test_static_and_dynamic_definitions():
    st = data.static([1.0, 0.2], [0.5, 1.0], [0.0, 0.6])
    np.testing.assert_allclose(st.lam, [1.0 + 0.0 * 0.5, 0.2 + 0.6 * 1.0])
    np.testing.assert_allclose(st.sigma2, [1.5, 1.2])
    dy = data.dynamic([0.9, 0.3], [0.5, 2.0])
    np.testing.assert_allclose(dy.lam, [0.45, 0.6])
    np.testing.assert_allclose(dy.rho, [0.9, 0.3])
    # JEPA's preference: the slow feature (a = 0.9) has the larger rho though the smaller lam
    assert dy.rho[0] > dy.rho[1] and dy.lam[0] < dy.lam[1]


def test_trend_families_are_monotone():
    same, rev = data.same_trend(10), data.reversed_trend(10)
    assert np.all(np.diff(same.lam) > 0) and np.all(np.diff(same.rho) > 0)
    assert np.all(np.diff(rev.lam) > 0) and np.all(np.diff(rev.rho) < 0)
    assert data.same_trend().dim == 100


def test_bad_inputs():
    with pytest.raises(spec.SpecError, match="rho: needs one value per feature"):
        data.custom([1.0, 2.0], [0.5])
    with pytest.raises(spec.SpecError, match="^lam:"):
        data.custom([-1.0], [0.5])
    with pytest.raises(spec.SpecError, match="^c:"):
        data.static([1.0], [1.0], [1.5])
    with pytest.raises(spec.SpecError, match="^dist:"):
        data.make("weird")
