"""``train --objective barlow|vicreg`` (docs/theory.md section 16): a deep linear encoder trained by plain GD
on the population loss crosses ``fraction * w_star`` at the summary's ``t_star_theory`` (theory.joint with the
dataset's own sigma2 and syy); what the joint theory does not cover is refused before any file."""

import os

import numpy as np
import pytest

from jepa_dynamics import api, records
from jepa_dynamics.theory import joint, spec


@pytest.mark.slow
@pytest.mark.parametrize("objective", spec.JOINT_OBJECTIVES)
def test_trained_run_crosses_at_the_joint_t_star(tmp_path, objective):
    lam, rho, eps = [1.0, 0.6, 0.3], [0.9, 0.5, 0.8], 0.05
    api.train(objective=objective, depth=2, lam=lam, rho=rho, eps=eps, lr=0.002, steps="auto",
                    out=str(tmp_path / "run"))
    s = records.read_csv(os.path.join(str(tmp_path / "run"), "summary.csv"))
    lam, rho = np.array(lam), np.array(rho)
    kw = {} if objective == "barlow" else dict(sigma2=lam / rho, syy=np.maximum(lam / rho, lam * rho))
    np.testing.assert_allclose(s["t_star_theory"], joint.critical_time(objective, 2, lam, eps, **kw), rtol=1e-13)
    np.testing.assert_allclose(s["w_inf"], joint.fixed_point(objective, lam, **kw), rtol=1e-13)
    assert np.all(np.abs(s["t_star_empirical"] / s["t_star_theory"] - 1) < 0.01)
    assert np.all(np.isnan(s["t_star_gd"])) and set(s["theory"]) == {"closed_form"}
