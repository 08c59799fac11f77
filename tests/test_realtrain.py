"""Deep linear JEPA / MAE trained on real pairs: on rotated diagonal (commuting) views the
observed critical time of each mode matches the per-feature theory (quadrature) and the
order is the predicted one; the `spectrum --train --probe` files."""

from __future__ import annotations

import numpy as np
import pytest

from jepa_dynamics.theory import modes, spec
from jepa_dynamics.realdata import realtrain
from jepa_dynamics import records
from jepa_dynamics.cli import main
from reference import quad_critical_time


def _commuting_views(n=40_000, seed=0):
    rng = np.random.default_rng(seed)
    lam, rho = np.array([1.0, 0.6, 0.35]), np.array([0.9, 0.8, 0.7])
    s2 = lam / rho
    x0 = rng.standard_normal((n, 3)) * np.sqrt(s2)
    y0 = rho * x0 + rng.standard_normal((n, 3)) * np.sqrt(s2 - lam * rho)
    r, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    x, y = x0 @ r.T, y0 @ r.T
    x, y = x - x.mean(0), y - y.mean(0)
    return x, y, modes.decompose(x.T @ x / n, x.T @ y / n)


@pytest.mark.parametrize("objective,depth", [("jepa", 2), ("mae", 1)])
@pytest.mark.slow
def test_commuting_views_follow_the_theory(objective, depth):
    x, y, m = _commuting_views()
    assert modes.nonorthogonality(m.q) < 0.05
    cfg = realtrain.RealTrainConfig(objective=objective, depth=depth, eps=0.02, modes=3, batch=256, records=120,
                                    lr_factor=0.2, matrix=True)
    run = realtrain.train_views(cfg, m, x, y, syy=y.T @ y / len(y))
    ref = np.array([quad_critical_time(objective, depth, m.lam[i], m.rho[i], 0.02) for i in range(3)])
    np.testing.assert_allclose(run.t_pred, ref, rtol=1e-8)
    # minibatch noise and the sampled covariances' small off-diagonal terms: within 15%
    np.testing.assert_allclose(run.t_obs, ref, rtol=0.15)
    np.testing.assert_allclose(run.t_obs_diagonal, ref, rtol=0.15)
    assert run.spearman == 1.0 and run.spearman_diagonal == 1.0
    # the exact matrix flow on the (nearly commuting) sample covariances: the per-feature theory
    np.testing.assert_allclose(run.t_matrix, ref, rtol=0.03)
    np.testing.assert_allclose(run.t_matrix_diagonal, ref, rtol=0.03)
    w_star = spec.fixed_point(objective, depth, m.rho)
    np.testing.assert_allclose(run.responses[-1], w_star, rtol=0.15)  # near the fixed point by t = 1.5 t*_last
    assert run.times[-1] == pytest.approx(run.lr * run.steps[-1])


def test_plan_refuses_runs_it_cannot_finish():
    x, y, m = _commuting_views(n=2000)
    with pytest.raises(spec.SpecError, match="train_modes: .* needs .* steps"):
        realtrain.plan(realtrain.RealTrainConfig(objective="jepa", depth=3, eps=1e-4, max_steps=1000), m)
    with pytest.raises(spec.SpecError, match="no mode is ever learned"):
        realtrain.plan(realtrain.RealTrainConfig(objective="jepa", depth=3, eps=0.4), m)


@pytest.mark.slow
def test_spectrum_train_probe_files(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["spectrum", "--dataset", "digits", "--n", "2000", "--depth", "1", "--eps", "0.01", "--train",
            "--objective", "mae", "--train-modes", "3", "--records", "40", "--probe", "--out", str(out)]
    assert main(argv) == 0
    orders = records.read_csv(str(out / "orders.csv"))
    assert list(orders) == list(realtrain.ORDER_COLUMNS) and orders["modes_compared"].tolist() == [3]
    assert -1 <= orders["spearman"][0] <= 1
    training = records.read_csv(str(out / "training.csv"))
    assert (training["in_scope"] == "true").sum() == 3 and training["feature"].size == 64
    probe = records.read_csv(str(out / "probe.csv"))
    first = probe["step"] == 0
    # at Wbar = eps I the read-out noise hides the digits: near chance (10 classes); trained: far above
    assert np.all(probe["accuracy"][first] < 0.4)
    last = (probe["step"] == probe["step"].max()) & (probe["subspace"] == "all")
    assert probe["accuracy"][last][0] > 0.6
    text = (out / "probe.csv").read_text()
    assert "# baseline_inputs:" in text
    capsys.readouterr()
    assert main(["spectrum", "--dataset", "patches", "--n", "500", "--patch", "3", "--probe", "--train",
                 "--out", str(tmp_path / "p")]) == 2
    assert "--probe: needs labels" in capsys.readouterr().err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
