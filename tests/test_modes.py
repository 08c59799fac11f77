"""Modes of (sym(Sxy), Sxx) (docs/theory.md section 10): the generalised eigenproblem, the response to a mode,
the departure measures, and covariance validation / npz loading."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from jepa_dynamics.theory import modes, spec


def _random_spd(rng, d, lo=0.5, hi=2.0):
    o = ortho_group.rvs(d, random_state=rng)
    return o @ np.diag(rng.uniform(lo, hi, d)) @ o.T


def test_decompose_solves_the_generalised_eigenproblem():
    rng = np.random.default_rng(0)
    d = 5
    sxx = _random_spd(rng, d)
    sxy = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
    m = modes.decompose(sxx, sxy)
    s = 0.5 * (sxy + sxy.T)
    # S q_i = rho_i Sxx q_i, unit columns, congruence-diagonal, ordered by decreasing rho
    np.testing.assert_allclose(s @ m.q, sxx @ m.q * m.rho[None, :], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(m.q, axis=0), 1.0, rtol=1e-14)
    gram = m.q.T @ sxx @ m.q
    np.testing.assert_allclose(gram, np.diag(m.sigma2), atol=1e-12)
    np.testing.assert_allclose(m.q.T @ s @ m.q, np.diag(m.lam), atol=1e-12)
    np.testing.assert_allclose(m.rho, m.lam / m.sigma2, rtol=1e-13)
    assert np.all(np.diff(m.rho) <= 0)
    # non-commuting pair: Q is not orthogonal, and every measure sees it
    dep = modes.departure(sxx, sxy, m)
    assert dep["nonorthogonality"] > 1e-3 and dep["commutator"] > 1e-3 and dep["asymmetry"] > 1e-3


def test_diagonal_and_rotated_commuting_data_give_back_the_features():
    lam = np.array([1.0, 0.8, 0.5, 0.5])
    rho = np.array([0.9, 0.5, 0.5, 0.7])  # a tie in rho with different lam
    sxx, sxy = np.diag(lam / rho), np.diag(lam)
    m = modes.decompose(sxx, sxy)
    order = np.lexsort((-lam, -rho))
    np.testing.assert_allclose(m.rho, rho[order], rtol=1e-13)
    np.testing.assert_allclose(m.lam, lam[order], rtol=1e-13)
    np.testing.assert_allclose(np.abs(m.q), np.eye(4)[:, order], atol=1e-12)
    o = ortho_group.rvs(4, random_state=np.random.default_rng(1))
    mr = modes.decompose(o @ sxx @ o.T, o @ sxy @ o.T)
    np.testing.assert_allclose(mr.lam, m.lam, rtol=1e-12)
    np.testing.assert_allclose(mr.rho, m.rho, rtol=1e-12)
    np.testing.assert_allclose(np.abs(mr.q.T @ o), np.abs(m.q.T), atol=1e-10)  # q_i = +-O e_i
    dep = modes.departure(o @ sxx @ o.T, o @ sxy @ o.T, mr)
    assert max(dep.values()) < 1e-12


@pytest.mark.slow
def test_response_to_a_mode():
    # diagonal data: gamma_i is the norm of column i of Wbar (docs/theory.md section 13)
    lam, rho = np.array([1.0, 0.6, 0.3]), np.array([0.9, 0.5, 0.4])
    m = modes.decompose(np.diag(lam / rho), np.diag(lam))
    w = np.random.default_rng(2).normal(size=(3, 3))
    np.testing.assert_allclose(m.responses(w), np.linalg.norm(w, axis=0), rtol=1e-13)
    # general data: Cov(Wbar x, q_i^T x) / Var(q_i^T x) by Monte Carlo, and the batch axis
    rng = np.random.default_rng(3)
    sxx = _random_spd(rng, 3)
    m = modes.decompose(sxx, rng.normal(size=(3, 3)) + 2 * np.eye(3))
    x = rng.multivariate_normal(np.zeros(3), sxx, size=400_000)
    z = x @ m.q
    mc = np.linalg.norm((x @ w.T).T @ z / len(x), axis=0) / np.mean(z**2, axis=0)
    np.testing.assert_allclose(m.responses(w), mc, rtol=0.02)
    np.testing.assert_allclose(m.responses(np.stack([w, 2 * w])), np.stack([m.responses(w), 2 * m.responses(w)]),
                               rtol=1e-14)


def test_departure_measures_by_hand():
    q = np.array([[1.0, 1.0], [0.0, 1.0]])  # unit columns (1,0), (1,1)/sqrt2: cosine 1/sqrt2
    assert modes.nonorthogonality(q) == pytest.approx(np.sqrt(2 * 0.5), rel=1e-14)
    a, b = np.diag([1.0, 2.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    # [a, b] = [[0, -1], [1, 0]]: norm sqrt2; ||a|| = sqrt5, ||b|| = sqrt2
    assert modes.commutator(a, b) == pytest.approx(np.sqrt(2) / (np.sqrt(5) * np.sqrt(2)), rel=1e-14)
    assert modes.asymmetry(np.array([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(np.sqrt(2) / 2, rel=1e-14)


GOOD = dict(sxx=np.array([[2.0, 0.3], [0.3, 1.0]]), sxy=np.array([[1.0, 0.2], [0.0, 0.5]]),
            syy=np.array([[2.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("change, match", [
    (dict(sxx=np.eye(3)), "sxy must have the shape of sxx"),
    (dict(sxy=np.ones((2, 3))), "sxy must be a square"),
    (dict(sxx=np.array([[2.0, 0.3], [0.0, 1.0]])), "sxx must be symmetric"),
    (dict(syy=np.array([[2.0, 0.5], [0.0, 1.0]])), "syy must be symmetric"),
    (dict(sxx=np.array([[1.0, 1.0], [1.0, 1.0]])), "sxx must be positive definite"),
    (dict(sxx=-np.eye(2)), "sxx must be positive definite"),
    (dict(syy=0.01 * np.eye(2)), "joint covariance .* positive semi-definite"),
    (dict(sxy=np.array([[np.nan, 0.0], [0.0, 1.0]])), "non-finite"),
])
def test_bad_covariances(change, match):
    args = {**GOOD, **change}
    with pytest.raises(spec.SpecError, match=match) as info:
        modes.check_covariances(args["sxx"], args["sxy"], args["syy"])
    assert info.value.name == "cov" and "\n" not in str(info.value)


def test_load_covariances(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, **GOOD)
    sxx, sxy, syy = modes.load_covariances(good)
    np.testing.assert_array_equal(sxy, GOOD["sxy"])
    missing = tmp_path / "missing.npz"
    np.savez(missing, sxx=GOOD["sxx"], sxy=GOOD["sxy"])
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a zip")
    single = tmp_path / "single.npy"
    np.save(single, GOOD["sxx"])
    strings = tmp_path / "strings.npz"
    np.savez(strings, sxx=np.array([["a"]]), sxy=GOOD["sxy"], syy=GOOD["syy"])
    for path, match in [(missing, "lacks the array.*syy"), (garbage, "cannot read"),
                        (tmp_path / "nope.npz", "no such file"), (single, "single array"),
                        (strings, "real numeric")]:
        with pytest.raises(spec.SpecError, match=match):
            modes.load_covariances(path)
