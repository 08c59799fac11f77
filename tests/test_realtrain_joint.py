"""Barlow Twins and VICReg trained on real pairs (``spectrum --train --objective barlow,vicreg``): the
predicted order of the modes from docs/theory.md section 16 at each mode's ``(lam, sigma2, syy)``, and
the trained order against it."""

from __future__ import annotations

import numpy as np
import pytest

from jepa_dynamics import records
from jepa_dynamics.cli import main
from jepa_dynamics.realdata import realtrain, spectrum
from jepa_dynamics.theory import joint, spec
from test_realtrain import _commuting_views


def test_mode_syy_and_joint_predictions_are_section_16_at_each_mode():
    x, y, m = _commuting_views(n=4000)
    syy = y.T @ y / len(y)
    m_syy = spectrum.mode_syy(m, syy)
    np.testing.assert_allclose(m_syy, [m.q[:, i] @ syy @ m.q[:, i] for i in range(m.dim)], rtol=1e-13)
    for obj in spec.JOINT_OBJECTIVES:
        t = spectrum.predicted_times(obj, 2, m.lam, m.rho, 0.02, sigma2=m.sigma2, syy=m_syy)
        np.testing.assert_allclose(t, joint.critical_time(obj, 2, m.lam, 0.02, sigma2=m.sigma2, syy=m_syy), rtol=1e-14)
        np.testing.assert_allclose(spectrum.mode_fixed_points(obj, 2, m, syy),
                                   joint.fixed_point(obj, m.lam, m.sigma2, m_syy), rtol=1e-14)
    # a mode that is never learned is inf, not an error: Barlow with lam <= 0
    assert np.isinf(spectrum.predicted_times("barlow", 1, np.array([-0.1, 0.5]), None, 0.01)[0])


def test_joint_runs_refuse_what_they_cannot_do():
    realtrain.RealTrainConfig(objective="barlow", matrix=True)  # the full-matrix reference covers them too
    x, y, m = _commuting_views(n=2000)
    with pytest.raises(spec.SpecError, match="syy: VICReg's prediction needs"):
        realtrain.plan(realtrain.RealTrainConfig(objective="vicreg", depth=2, eps=0.02), m)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["barlow", "vicreg"])
def test_commuting_views_follow_the_joint_theory(objective):
    x, y, m = _commuting_views()
    syy = y.T @ y / len(y)
    cfg = realtrain.RealTrainConfig(objective=objective, depth=2, eps=0.02, modes=3, batch=256, records=120,
                                    lr_factor=0.2)
    run = realtrain.train_views(cfg, m, x, y, syy=syy)
    # minibatch noise and the sampled covariances' small off-diagonal terms: within 5%, in the predicted order
    np.testing.assert_allclose(run.t_obs, run.t_pred, rtol=0.05)
    assert run.spearman == 1.0 and run.spearman_diagonal == 1.0
    np.testing.assert_allclose(run.responses[-1], spectrum.mode_fixed_points(objective, 2, m, syy), rtol=0.05)


@pytest.mark.slow
def test_spectrum_trains_all_four_families_on_digits(tmp_path):
    out = tmp_path / "o"
    argv = ["spectrum", "--dataset", "digits", "--n", "1000", "--depth", "1", "--eps", "0.01", "--train",
            "--objective", "jepa,mae,barlow,vicreg", "--train-modes", "3", "--records", "30", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    orders = records.read_csv(str(out / "orders.csv"))
    assert list(orders) == list(realtrain.ORDER_COLUMNS)
    assert sorted(orders["objective"].tolist()) == ["barlow", "jepa", "mae", "vicreg"]
    assert np.all(np.abs(orders["spearman"]) <= 1) and np.all(orders["modes_compared"] == 3)
    training = records.read_csv(str(out / "training.csv"))
    joint_rows = np.isin(training["objective"], ["barlow", "vicreg"])
    assert np.all(np.isfinite(training["t_star_theory"][joint_rows & (training["in_scope"] == "true")]))
    assert np.all(np.isnan(training["t_star_matrix"][joint_rows]))


@pytest.mark.slow
def test_the_matrix_reference_of_the_joint_families_on_the_digits(tmp_path):
    """spectrum --train --matrix for Barlow Twins and VICReg: the exact full-matrix flow of the population
    loss on the digits' (non-commuting) covariances follows the trained networks (within 15% in t*), far
    closer than the per-mode theory, which the non-commuting modes put off by a factor of about 2."""
    out = tmp_path / "s"
    assert main(["spectrum", "--dataset", "digits", "--n", "2000", "--depth", "1", "--eps", "0.01", "--train",
                 "--objective", "barlow,vicreg", "--train-modes", "4", "--matrix", "--out", str(out),
                 "--no-progress"]) == 0
    t = records.read_csv(str(out / "training.csv"))
    scope = np.asarray(t["in_scope"]) == "true"
    emp, mat, th = (np.asarray(t[c], float)[scope] for c in ("t_star_empirical", "t_star_matrix", "t_star_theory"))
    assert scope.sum() == 8 and np.isfinite(mat).all()
    assert np.max(np.abs(emp / mat - 1)) < 0.15
    assert np.median(np.abs(emp / th - 1)) > 2 * np.median(np.abs(emp / mat - 1))
