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


@pytest.mark.slow
def test_matrix_flow_predicts_fates_and_critical_times_of_random_init_networks(tmp_path):
    """20 seeds x depths 1-3 x JEPA/MAE (480 (seed, feature) pairs), random init, population loss, lr 0.02,
    float64, trained to the flow's horizon: the flow's settled fate equals the trained network's in >= 99%
    of pairs, and t* agrees within 1% where both cross.  Under JEPA the networks do lose features (so the
    flags are not all 'learned')."""
    from jepa_dynamics.training import grid

    agree, pairs, errors, lost = 0, 0, [], 0
    for depth in (1, 2, 3):
        base = dict(lam=LAM, rho=RHO, depth=depth, eps=1e-2, init="random", lr=0.02, steps=1, records=1)
        probe = grid.configs_from(base, {"seed": [0]})[0]
        steps = math.ceil(_flow.horizon(probe, probe.dataset()) / 0.02)
        configs = grid.configs_from({**base, "steps": steps}, {"objective": ["jepa", "mae"], "seed": list(range(20))})
        table = grid.run_grid(configs, str(tmp_path / f"L{depth}"), progress=False)
        assert set(table["theory"]) == {"matrix_flow"}
        flow, net = (np.asarray(table[c]) == "true" for c in ("learned_theory", "learned_empirical"))
        # the network's fate, read here from its own final response and crossing level
        level = 0.5 * np.asarray([theory_w_star(o, depth, r) for o, r in zip(table["objective"], table["rho"])])
        np.testing.assert_array_equal(net, np.asarray(table["final_response"], float) >= level)
        agree += int(np.sum(flow == net))
        pairs += net.size
        lost += int(np.sum(~net & (np.asarray(table["objective"]) == "jepa")))
        t_net, t_flow = (np.asarray(table[c], float) for c in ("t_star_empirical", "t_star_theory"))
        both = np.isfinite(t_net) & np.isfinite(t_flow)
        errors += list(np.abs(t_net[both] / t_flow[both] - 1))
    assert pairs == 480
    assert agree / pairs >= 0.99, agree / pairs
    assert lost > 0
    assert max(errors) < 0.01, max(errors)


def theory_w_star(objective, depth, rho):
    """The balanced fixed point by hand: JEPA rho^L, MAE rho^(L/(L+1))."""
    rho = float(rho)
    return rho ** depth if objective == "jepa" else rho ** (depth / (depth + 1))


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


@pytest.mark.slow
def test_batched_flow_equals_the_matrix_engine_network_by_network():
    """integrate_batch (one vmapped program, each network its own step size, crossings tracked on the
    fly) against matrix.integrate (the matrix command's engine, crossings from its step records) for
    networks that differ in objective, EMA, weight decay and init, side by side in one batch."""
    from jepa_dynamics.engines import _matrix_field

    lam, rho = np.array([1.0, 0.6, 0.8]), np.array([0.9, 0.5, 0.7])
    cov = (np.diag(lam / rho), np.diag(lam), np.diag(lam * rho + 0.1))
    modes = _flow.feature_modes(TrainConfig(lam=list(lam), rho=list(rho), steps=1).dataset())
    cases = [("jepa", None, 0.0, 0), ("mae", None, 0.0, 1), ("jepa", 2.0, 0.0, 2), ("jepa", None, 1e-4, 3)]
    states, ref = [], []
    for objective, kappa, beta, seed in cases:
        mc = matrix.MatrixConfig(objective, 2, eps=1e-2, init="random", seed=seed, ema_rate=kappa, weight_decay=beta)
        state = np.asarray(_matrix_field.initial_state(mc, 3))
        run = matrix.integrate(mc, cov, np.array([0.0, 1500.0]), state=state, modes=modes)
        states.append(state)
        ref.append(run)
    level = np.stack([0.5 * r.gamma_inf for r in ref])
    got = matrix.integrate_batch(np.stack(states), cov, 1500.0, level, mae=[c[0] == "mae" for c in cases],
                                 ema_rate=[np.inf if c[1] is None else c[1] for c in cases],
                                 weight_decay=[c[2] for c in cases])
    assert got.ok.all()
    for k, run in enumerate(ref):
        want = matrix.crossing_times(*run.step_records, level[k])
        assert np.isfinite(want).sum() >= 1
        np.testing.assert_array_equal(np.isfinite(got.t_star[k]), np.isfinite(want))
        np.testing.assert_allclose(got.t_star[k][np.isfinite(want)], want[np.isfinite(want)], rtol=1e-8)
        np.testing.assert_allclose(got.final_response[k], run.gamma_inf, rtol=1e-7)


@pytest.mark.slow
def test_train_grid_rows_of_random_inits_are_train_s_matrix_flow(tmp_path):
    """train-grid's random-init rows carry the matrix flow of each network's own init (theory =
    matrix_flow), equal to what train's summary says for the same network; balanced rows still read
    closed_form with the closed form's numbers."""
    from jepa_dynamics.training import grid
    from jepa_dynamics.theory import balanced as theory

    base = dict(lam=LAM, rho=RHO, depth=2, eps=1e-2, lr=0.05, steps=3000, records=1)
    configs = grid.configs_from(base, {"objective": ["jepa", "mae"], "init": ["random", "balanced"],
                                       "seed": [0, 1]})
    table = grid.run_grid(configs, str(tmp_path), progress=False)
    theory_col = np.asarray(table["theory"])
    random_rows = np.asarray(table["init"]) == "random"
    assert set(theory_col[random_rows]) == {"matrix_flow"} and set(theory_col[~random_rows]) == {"closed_form"}
    for i, c in enumerate(configs):
        rows = np.asarray(table["network"]) == i
        if c.init == "random":
            cols = _summary.theory_columns(c, c.dataset(), gd=False)
            np.testing.assert_allclose(np.asarray(table["t_star_theory"], float)[rows], cols["t_star_theory"],
                                       rtol=1e-9)
            assert (np.asarray(table["learned_theory"])[rows] == "true").tolist() == cols["learned_theory"].tolist()
        else:
            np.testing.assert_allclose(np.asarray(table["t_star_theory"], float)[rows],
                                       theory.critical_time(c.objective, 2, LAM, RHO, 1e-2, 0.5), rtol=1e-12)


def test_a_flow_whose_field_overflows_ends_at_once_and_predicts_nothing():
    """An init far outside the small-init regime (entries ~1e300: the field overflows float64) gets no
    accepted step; the batched flow marks it failed and stops instead of shrinking its step for ever, and
    the run's theory is nan, not learned (train-grid --init random --init-scale 1e300 used to hang)."""
    config = TrainConfig(lam=LAM, rho=RHO, depth=2, eps=1e-2, init="random", init_scale=1e300, seed=0, lr=0.02,
                         steps=1)
    ds = config.dataset()
    res = matrix.integrate_batch(models_state(config)[None], ds.covariance_matrices(), 100.0, np.full((1, 4), 0.1),
                                 mae=[False])
    assert not res.ok[0] and res.steps[0] < 10_000
    flow = _flow.matrix_flow(config, ds, np.full(4, 0.1))
    assert np.isnan(flow.final_response).all() and not flow.learned.any()


def models_state(config):
    from jepa_dynamics.training import models

    return models.matrix_state(tr.initial_model(config))
