"""The study's pieces that are not the engine: the SVD-of-Sxy basis and the error / order summary."""

import numpy as np

from jepa_dynamics.experiments import matrix_study


def test_svd_basis_is_the_eigenbasis_of_a_symmetric_psd_sxy():
    rng = np.random.default_rng(0)
    o = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    sxy = o @ np.diag([3.0, 2.0, 1.0, 0.5]) @ o.T
    sxx = np.diag([1.0, 2.0, 3.0, 4.0])
    u, lam, sigma2 = matrix_study.svd_basis(sxx, sxy)
    np.testing.assert_allclose(lam, [3.0, 2.0, 1.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(np.abs(u.T @ o), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(sigma2, np.einsum("ij,i,ij->j", u, np.diag(sxx), u), rtol=1e-12)


def test_summarise_errors_and_order():
    table = {"t_matrix": np.array([1.0, 2.0, 4.0, np.nan]), "theory": np.array([1.1, 1.8, 8.0, 3.0]),
             "effective": np.array([4.0, 2.0, 1.0, np.nan]), "t_matrix_svd": np.array([1.0, 2.0, 3.0, 4.0]),
             "svd": np.array([1.0, 2.0, 3.0, 4.0]), "learned": np.array([True, True, True, False])}
    out = matrix_study.summarise(table)
    assert np.isclose(out["err_theory"], 0.1) and np.isclose(out["maxerr_theory"], 1.0)  # |0.1|, |-0.1|, |1.0|
    assert np.isclose(out["order_theory"], 1.0) and np.isclose(out["order_effective"], -1.0)
    assert out["err_svd"] == 0.0 and out["learned"] == 3
    assert np.isnan(matrix_study.nanmedian([np.nan])) and matrix_study.nanmedian([1.0, np.nan, 3.0]) == 2.0
