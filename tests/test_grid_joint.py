"""``train-grid --objective barlow,vicreg`` (docs/theory.md section 16): a grid row is the single ``train`` run of
the same network, the theory columns are :mod:`jepa_dynamics.theory.joint`'s, and at a small step the trained
crossing lies within 1% of them."""

import os

import numpy as np
import pytest

from jepa_dynamics import api, records
from jepa_dynamics.theory import joint
from jepa_dynamics.training import grid, train

LAM, RHO = (1.0, 0.6), (0.9, 0.5)


def _joint_data(objective):
    lam, rho = np.array(LAM), np.array(RHO)
    return {} if objective == "barlow" else {"sigma2": lam / rho, "syy": np.maximum(lam / rho, lam * rho)}


@pytest.mark.slow
def test_grid_rows_equal_single_train_runs():
    """Barlow and VICReg networks (eps, lr, seed as data in one program per objective and depth; population and
    minibatch losses) give the critical times of single ``train`` runs of the same networks to 1e-9."""
    base = dict(lam=LAM, rho=RHO, steps=800, records=1, eps=0.05)
    nets = [dict(objective="barlow", depth=2, lr=0.02), dict(objective="barlow", depth=2, lr=0.03, eps=0.08),
            dict(objective="vicreg", depth=1, lr=0.02, seed=2),
            dict(objective="vicreg", depth=2, lr=0.02, loss="sampled", batch=32, seed=0),
            dict(objective="vicreg", depth=2, lr=0.02, loss="sampled", batch=32, seed=1)]
    configs = [train.TrainConfig(**{**base, **c}) for c in nets]
    groups = grid.plan(configs)
    assert [g.tolist() for g in groups] == [[0, 1], [2], [3, 4]]
    pred = grid.predict(configs)
    levels = np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)
    for idx in groups:
        res = grid.train_group([configs[i] for i in idx], levels[idx])
        for row, i in enumerate(idx):
            single = train.train(configs[i]).critical_times()
            assert np.isfinite(single).all()
            np.testing.assert_allclose(res.critical_times[row], single, rtol=1e-9, atol=0)
    # the two minibatch networks drew different batches: their crossings differ
    assert res.critical_times[0, 0] != res.critical_times[1, 0]


@pytest.mark.slow
def test_train_grid_crosses_at_the_joint_t_star(tmp_path):
    """``api.train_grid`` over barlow, vicreg and depths 1, 2 at lr 0.002: ``t_star_theory`` and ``w_inf`` are
    theory.joint's closed forms, the trained crossings lie within 1% of them, and the row of one network equals
    the summary of ``api.train`` on that network (fewer steps there: the grid runs to its slowest network's
    ``auto``; the crossing is the same)."""
    out = str(tmp_path / "grid")
    api.train_grid(objective="barlow,vicreg", depth="1,2", lam=list(LAM), rho=list(RHO), eps=0.05, lr=0.002,
                   steps="auto", out=out, progress=False, report=lambda message: None)
    s = records.read_csv(os.path.join(out, "summary.csv"))
    assert len(s["network"]) == 8
    for objective in ("barlow", "vicreg"):
        for depth in (1, 2):
            m = (s["objective"] == objective) & (s["depth"] == depth)
            kw = _joint_data(objective)
            np.testing.assert_allclose(s["t_star_theory"][m], joint.critical_time(objective, depth, LAM, 0.05, **kw),
                                       rtol=1e-13)
            np.testing.assert_allclose(s["final_response_theory"][m], joint.fixed_point(objective, LAM, **kw),
                                       rtol=1e-13)
    assert np.all(np.abs(s["t_star_empirical"] / s["t_star_theory"] - 1) < 0.01)
    assert np.all(np.isnan(s["t_star_gd"])) and set(s["theory"]) == {"closed_form"}
    assert set(s["learned_empirical"]) == {"true"}
    one = str(tmp_path / "one")
    api.train(objective="vicreg", depth=2, lam=list(LAM), rho=list(RHO), eps=0.05, lr=0.002,
              steps="auto", out=one, progress=False, report=lambda message: None)
    single = records.read_csv(os.path.join(one, "summary.csv"))
    m = (s["objective"] == "vicreg") & (s["depth"] == 2)
    np.testing.assert_allclose(s["t_star_empirical"][m], single["t_star_empirical"], rtol=1e-9)


def test_joint_networks_drop_the_ema_in_a_grid_with_jepa():
    """An EMA target is JEPA's: with ``--ema-rate inf,10`` the JEPA networks take both rates, the Barlow and VICReg
    networks (no target encoder) one stop-gradient network each, as MAE's do."""
    configs = grid.configs_from(dict(lam=LAM, rho=RHO, steps=10, lr=0.01),
                                {"objective": ["jepa", "barlow", "vicreg"], "ema_rate": [float("inf"), 10.0]})
    assert [(c.objective, c.ema) for c in configs] == [("jepa", 0.0), ("jepa", 0.9), ("barlow", 0.0),
                                                        ("vicreg", 0.0)]
