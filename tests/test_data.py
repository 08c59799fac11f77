"""Data families: exact second moments (docs/theory.md section 12) against Monte Carlo, and input checks."""

import numpy as np
import pytest

from jepa_dynamics.training import data
from jepa_dynamics.theory import spec
from jepa_dynamics._jax import jax

N = 200_000


def _moments(ds, seed=0):
    x, y = ds.sample(jax.random.PRNGKey(seed), N)
    x, y = np.asarray(x), np.asarray(y)
    return np.mean(x**2, 0), np.mean(x * y, 0), np.mean(y**2, 0), x, y


@pytest.mark.parametrize("family", data.FAMILIES[1:])
@pytest.mark.slow
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


@pytest.mark.slow
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


# --- full-matrix families (docs/theory.md section 12.2) ---------------------------------------------------

from jepa_dynamics.theory import modes  # noqa: E402


def _matrix_families():
    lam, rho = np.linspace(1.0, 2.0, 4), np.linspace(0.9, 0.3, 4)
    return {"rotated": data.rotated(lam, rho, seed=1), "mixed": data.mixed(lam, rho, 0.6, seed=1),
            "mixed-sym": data.mixed(lam, rho, 0.6, seed=1, symmetric=True),
            "lagged": data.lagged([0.9, 0.6, 0.3, 0.1], [0.5, 1.0, 1.5, 2.0], 0.6, seed=1)}


@pytest.mark.parametrize("name", ["rotated", "mixed", "mixed-sym", "lagged"])
@pytest.mark.slow
def test_matrix_sampler_matches_exact_covariances(name):
    ds = _matrix_families()[name]
    x, y = (np.asarray(a) for a in ds.sample(jax.random.PRNGKey(4), N))
    for est, ex in zip((x.T @ x / N, x.T @ y / N, y.T @ y / N), ds.covariances()):
        scale = np.sqrt(np.max(np.diag(ds.sxx)) * np.max(np.diag(ds.syy)))
        np.testing.assert_allclose(est, ex, atol=6 * np.sqrt(2) * scale / np.sqrt(N))


@pytest.mark.slow
def test_matrix_families_by_construction():
    lam, rho = np.linspace(1.0, 2.0, 4), np.linspace(0.9, 0.3, 4)
    fams = _matrix_families()
    # rotated: the modes are the features, commuting, symmetric
    m = fams["rotated"].modes()
    np.testing.assert_allclose(np.sort(m.rho), np.sort(rho), rtol=1e-12)
    np.testing.assert_allclose(m.lam[np.argsort(m.rho)], lam[np.argsort(rho)], rtol=1e-12)
    assert max(modes.departure(*fams["rotated"].covariances()[:2]).values()) < 1e-12
    # mixing 0 is the rotated family (same seed); mixing > 0 departs, the symmetric variant stays symmetric
    m0 = data.mixed(lam, rho, 0.0, seed=1)
    for a, b in zip(m0.covariances(), fams["rotated"].covariances()):
        np.testing.assert_allclose(a, b, atol=1e-13)
    dep = modes.departure(*fams["mixed"].covariances()[:2])
    assert dep["commutator"] > 1e-2 and dep["asymmetry"] > 1e-2
    dep = modes.departure(*fams["mixed-sym"].covariances()[:2])
    assert dep["commutator"] > 1e-2 and dep["asymmetry"] == 0.0
    # lagged: P = A P A^T + Sn, Sxy = P A^T (checked by hand), asymmetric; mixing 0 = rotated dynamic
    lg = fams["lagged"]
    a_mat = lg.params["transition"]
    p = lg.sxx
    noise = p - a_mat @ p @ a_mat.T
    np.testing.assert_allclose(np.linalg.eigvalsh(noise), np.sort([0.5 * (1 - 0.81), 1.0 * (1 - 0.36),
                                                                   1.5 * (1 - 0.09), 2.0 * (1 - 0.01)]), rtol=1e-10)
    np.testing.assert_allclose(lg.sxy, p @ a_mat.T, rtol=1e-12)
    assert modes.asymmetry(lg.sxy) > 1e-2
    still = data.lagged([0.9, 0.6, 0.3], [0.5, 1.0, 1.5], 0.0, seed=2).modes()
    np.testing.assert_allclose(still.rho, [0.9, 0.6, 0.3], rtol=1e-12)
    np.testing.assert_allclose(still.lam, [0.45, 0.6, 0.45], rtol=1e-12)


def test_matrix_bad_inputs():
    with pytest.raises(spec.SpecError, match="^mixing: must be in \\[0, 1\\]"):
        data.mixed([1.0, 2.0], [0.5, 0.5], 1.5)
    with pytest.raises(spec.SpecError, match="^mixing: must be >= 0"):
        data.make_matrix("lagged", 3, mixing=-0.1)
    with pytest.raises(spec.SpecError, match="^mixing: applies to"):
        data.make_matrix("rotated", 3, mixing=0.2)
    with pytest.raises(spec.SpecError, match="^dist:"):
        data.make_matrix("diagonal", 3)
    with pytest.raises(spec.SpecError, match="^cov: the joint covariance"):
        data.from_covariances(np.eye(2), 2 * np.eye(2), np.eye(2))
