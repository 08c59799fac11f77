"""``sweep`` and ``simulate`` with the joint embeddings ``barlow`` and ``vicreg`` (docs/theory.md section 16):
the same 17 columns as JEPA and MAE, their rows from :mod:`jepa_dynamics.theory.joint`, refusals before any file."""

import os

import numpy as np
import pytest

from jepa_dynamics import api
from jepa_dynamics.experiments import sweep as sweep_mod
from jepa_dynamics.theory import joint, spec


def test_sweep_rows_are_the_joint_theory(tmp_path):
    out = str(tmp_path / "s.csv")
    api.sweep(out=out, objective="jepa,barlow,vicreg", depth="1,3", lam="0.5,1", rho="0.4,0.9", eps=1e-3)
    t = api.SweepResult(out, None, 0).table()
    assert list(t) == list(sweep_mod.SWEEP_COLUMNS)
    for obj in ("barlow", "vicreg"):
        m = t["objective"] == obj
        assert m.sum() == 8
        lam, rho, depth = t["lam"][m], t["rho"][m], t["depth"][m].astype(int)
        kw = {} if obj == "barlow" else dict(sigma2=lam / rho, syy=np.maximum(lam / rho, lam * rho))
        np.testing.assert_array_equal(t["t_star"][m], joint.critical_time(obj, depth, lam, 1e-3, **kw))
        np.testing.assert_array_equal(t["w_star"][m], joint.fixed_point(obj, lam, **kw))
        np.testing.assert_array_equal(t["w_inf"][m], t["w_star"][m])
        np.testing.assert_array_equal(t["t_star_asymptotic"][m],
                                      joint.critical_time_leading(obj, depth, lam, 1e-3, **kw))
        assert np.all(np.isnan(t["predictor_init"][m])) and np.all(t["learned"][m])
    b = t["objective"] == "barlow"
    np.testing.assert_allclose(t["w_star"][b], t["lam"][b] ** -0.5, rtol=1e-15)
    # Barlow's t_star ignores rho; JEPA's does not
    for obj, same in (("barlow", True), ("jepa", False)):
        m = (t["objective"] == obj) & (t["depth"] == 3) & (t["lam"] == 1)
        assert (np.ptp(t["t_star"][m]) == 0) == same


def test_simulate_crosses_fraction_at_t_star(tmp_path):
    r = api.simulate(out=str(tmp_path / "w.npz"), objective="barlow,vicreg", depth="1,2", lam="0.5,1", rho=0.5,
                     num_times=50)
    for i in range(r.response.shape[0]):
        obj, d, lam, rho = (r.params[k][i] for k in ("objective", "depth", "lam", "rho"))
        kw = {} if obj == "barlow" else dict(sigma2=lam / rho, syy=max(lam / rho, lam * rho))
        np.testing.assert_allclose(r.response[i], joint.trajectory(obj, int(d), lam, 1e-3, r.time, **kw),
                                   rtol=1e-14)
        w_at = joint.trajectory(obj, int(d), lam, 1e-3, np.array([r.params["t_star"][i]]), **kw)[0]
        assert w_at == pytest.approx(0.5 * r.params["w_star"][i], rel=1e-9)


def test_jepa_mae_rows_unchanged_beside_joint(tmp_path):
    """Adding barlow to a grid leaves the JEPA and MAE rows byte for byte as they were."""
    a, b = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
    api.sweep(out=a, objective="jepa,mae", depth="1,2", lam="0.5,1", rho="0.5,0.9", command="x")
    api.sweep(out=b, objective="jepa,mae,barlow", depth="1,2", lam="0.5,1", rho="0.5,0.9", command="x")
    rows_a = [r for r in open(a) if not r.startswith("#")]
    rows_b = [r for r in open(b) if not r.startswith("#") and not r.startswith("barlow")]
    assert rows_a == rows_b
