"""Random init, predicted: the exact matrix flow from each network's own init (the summary's
``theory = matrix_flow``) against the trained networks' settled fates and critical times."""

import math

import numpy as np
import pytest

from jepa_dynamics.engines import matrix
from jepa_dynamics.training import _flow, _summary
from jepa_dynamics.training import train as tr
from jepa_dynamics.training.train import TrainConfig

LAM, RHO = [1.0, 0.6, 0.8, 0.7], [0.9, 0.5, 0.7, 0.6]


def _run_to_horizon(objective, depth, seed, lr=0.02):
    base = TrainConfig(objective=objective, lam=LAM, rho=RHO, depth=depth, eps=1e-2, init="random", seed=seed,
                       lr=lr, steps=1, records=4)
    t_max = matrix.default_t_max(_flow._matrix_config(base), _flow.feature_modes(base.dataset()))
    config = TrainConfig(**{**base.as_dict(), "steps": math.ceil(t_max / lr)})
    return config, tr.train(config)


@pytest.mark.slow
def test_matrix_flow_predicts_fates_and_critical_times_of_random_init_networks():
    """20 seeds x depths 1-3 x JEPA/MAE (480 (seed, feature) pairs), population loss, lr 0.02, float64:
    the flow's settled fate equals the network's in >= 99% of pairs, and t* agrees within 1% where
    both cross.  Under JEPA the networks do lose features (so the flags are not all 'learned')."""
    agree, pairs, errors, lost = 0, 0, [], 0
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 3):
            for seed in range(20):
                config, result = _run_to_horizon(objective, depth, seed)
                cols = _summary.theory_columns(config, result.dataset, gd=False)
                assert cols["theory"] == "matrix_flow"
                level = tr.crossing_level(config, tr.prediction(config, result.dataset, times=False))
                net = result.responses[-1] >= level
                agree += int(np.sum(net == cols["learned_theory"]))
                pairs += net.size
                lost += int(np.sum(~net)) if objective == "jepa" else 0
                t_net = result.critical_times()
                both = np.isfinite(t_net) & np.isfinite(cols["t_star_theory"])
                errors += list(np.abs(t_net[both] / cols["t_star_theory"][both] - 1))
    assert pairs == 480
    assert agree / pairs >= 0.99, agree / pairs
    assert lost > 0
    assert max(errors) < 0.01, max(errors)


def test_balanced_and_aligned_runs_name_their_theory():
    balanced = TrainConfig(lam=LAM, rho=RHO, depth=2, eps=1e-2, steps=10)
    aligned = TrainConfig(lam=LAM, rho=RHO, depth=2, eps=1e-2, init="aligned", predictor_init=0.3, steps=10)
    mlp = TrainConfig(model="mlp", lam=LAM, rho=RHO, depth=2, eps=1e-2, init="random", loss="sampled", steps=10)
    assert [_summary.theory_of(c) for c in (balanced, aligned, mlp)] == ["closed_form", "aligned", "closed_form"]
    # the balanced theory's numbers are the closed form's, as before
    from jepa_dynamics.theory import balanced as theory

    cols = _summary.theory_columns(balanced, balanced.dataset(), gd=False)
    np.testing.assert_array_equal(cols["t_star_theory"], theory.critical_time("jepa", 2, LAM, RHO, 1e-2, 0.5))
    assert not cols["fell_back_theory"].any()


@pytest.mark.slow
def test_a_feature_that_crosses_and_falls_back_is_not_learned():
    """The flow's fate is read from its settled state: a response that crossed the level and ended
    below it counts as fell_back, not learned (a planted trajectory through the crossing code)."""
    config = TrainConfig(lam=LAM, rho=RHO, depth=2, eps=1e-2, init="random", seed=1, lr=0.02, steps=1)
    ds = config.dataset()
    level = tr.crossing_level(config, tr.prediction(config, ds, times=False))
    flow = _flow.matrix_flow(config, ds, level)
    assert np.all(flow.fell_back == (np.isfinite(flow.t_star) & (flow.final_response < level)))
    assert not np.any(flow.fell_back & flow.learned)
