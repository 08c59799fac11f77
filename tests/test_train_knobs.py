"""train's beyond-balanced knobs (aligned init, weight decay, EMA rate, finite steps) against the theory
(docs/theory.md section 9), and the GPU-ready numerics (matmul precision, ODE bucket sizes per backend).

The references are independent of the training loop: the exact per-feature GD map
(``jepa_dynamics.theory.gd``, scalars) and the gradient-flow theory (``jepa_dynamics.theory.aligned``:
closed forms, the 1-D reduction, or diffrax on the L + 1 scalars)."""

import os

import numpy as np
import pytest

from jepa_dynamics.theory import aligned, gd, spec
from jepa_dynamics.training import grid, runs, train
from jepa_dynamics.engines import ode
from jepa_dynamics import records
from jepa_dynamics._jax import jax

LAM, RHO = (1.0, 0.6, 1.4), (0.9, 0.7, 0.5)


@pytest.mark.parametrize("objective, depth, of_bound, ema, weight_decay", [
    ("jepa", 1, 0.95, 0.3, 0.005),
    ("jepa", 2, 0.95, 0.0, 0.0),
    ("jepa", 3, 0.5, 0.0, 0.0),
    ("mae", 2, 0.95, 0.0, 0.01),
    ("mae", 3, 0.05, 0.0, 0.0),
])
@pytest.mark.slow
def test_balanced_population_gd_equals_the_exact_map(objective, depth, of_bound, ema, weight_decay):
    """Balanced networks trained by plain GD on the population loss, at any lr up to 0.95x the
    stability bound, with and without EMA and weight decay: the per-step tracked critical time
    equals the exact scalar GD map's to 1e-9 (both interpolate the crossing step the same way)."""
    lr = of_bound * float(np.min(gd.stability_bound(objective, depth, np.array(LAM), np.array(RHO))))
    eps = 0.1 * float(np.min(spec.fixed_point(objective, depth, np.array(RHO))))
    base = dict(objective=objective, depth=depth, lam=LAM, rho=RHO, eps=eps, lr=lr, ema=ema,
                weight_decay=weight_decay, records=2)
    probe = train.TrainConfig(**base, steps=1)
    t_gd = train.prediction(probe, lr=lr).critical_time  # the map followed to its crossing (no horizon)
    assert np.all(np.isfinite(t_gd))
    cfg = train.TrainConfig(**base, steps=int(1.2 * t_gd.max() / lr) + 5)
    np.testing.assert_array_equal(runs.theory_columns(cfg, cfg.dataset())["t_star_gd"], t_gd)  # within the run
    np.testing.assert_allclose(train.train(cfg).critical_times(), t_gd, rtol=1e-9, atol=0)


def _aligned_grid(objective, depth, rng):
    """Aligned networks with random predictor entries V0 (negative ones too), keeping the V0s
    for which the critical time is defined and not absurdly long."""
    a0 = {1: 0.2, 2: 0.35, 3: 0.45, 4: 0.5}[depth]
    eps = a0 ** depth
    lam, rho = np.array(LAM[:2]), np.array(RHO[:2])
    balanced_t = aligned.predict(objective, depth, lam, rho, eps).critical_time.max()
    v0s = []
    for v0 in np.round(rng.uniform(-0.7, 1.3, 7), 3):
        try:
            p = aligned.predict(objective, depth, lam, rho, eps, v0)
        except spec.SpecError:  # starts at or above fraction * |w_inf|: no critical time
            continue
        if np.all(p.critical_time[p.learned] < 4 * balanced_t):
            v0s.append(float(v0))
    return grid.configs_from(dict(objective=objective, depth=depth, lam=LAM[:2], rho=RHO[:2], eps=eps,
                                  init="aligned", steps=1, lr=1e-3), {"predictor_init": v0s})


@pytest.mark.slow
def test_aligned_unbalanced_networks_learn_what_the_theory_says():
    """Aligned init with random (also negative) V0, population loss, float64, depths 1-4, both
    objectives: the theory's learned flag equals the trained network's in every case, and the
    gradient-flow critical time is within 0.5% of the network's at a small lr.  (Trained side
    by side by the grid engine, which equals single train runs: test_grid.py.)"""
    rng = np.random.default_rng(0)
    n_collapsed = n_learned = n_negative = 0
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 3, 4):
            configs = _aligned_grid(objective, depth, rng)
            pred = grid.predict(configs)
            t_max = np.max(pred.critical_time[pred.learned])
            lr = min(2e-3, 1.3 * t_max / 3000)
            configs = [grid.replace(c, lr=lr, steps=int(1.3 * t_max / lr)) for c in configs]
            levels = np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)
            res = grid.train_group(configs, levels)
            assert np.array_equal(runs.learned_empirical(res.first, res.final), pred.learned), (objective, depth)
            np.testing.assert_allclose(res.critical_times[pred.learned], pred.critical_time[pred.learned],
                                       rtol=5e-3, err_msg=f"{objective} L={depth}")
            assert np.all(np.isnan(res.critical_times[~pred.learned]))
            n_collapsed += int(np.sum(~pred.learned))
            n_learned += int(np.sum(pred.learned))
            n_negative += sum(c.predictor_init < 0 for c in configs)
    print(f"aligned networks: {n_learned} learned and {n_collapsed} collapsed features, {n_negative} with V0 < 0")
    assert n_collapsed >= 10 and n_learned >= 30 and n_negative >= 8  # both fates, negative V0s included


@pytest.mark.slow
def test_ema_and_weight_decay_under_gradient_flow():
    """Balanced networks at a small lr with an EMA target (kappa = (1 - tau) / lr) or weight decay:
    the trained critical times are within 0.5% of the gradient-flow theory (which moves them by
    up to ~10% here: the EMA lags, weight decay lowers w_inf and slows the rise), and a feature
    that weight decay drops (docs/theory.md section 9's threshold) decays in the trained network too."""
    lr = 2e-3
    cases = [dict(objective="jepa", depth=1, ema=1 - lr * 0.5, eps=0.05),  # kappa = 0.5
             dict(objective="jepa", depth=2, ema=1 - lr * 2.0, eps=0.05),  # kappa = 2
             dict(objective="jepa", depth=1, weight_decay=0.01, eps=0.05),
             dict(objective="mae", depth=2, weight_decay=0.05, eps=0.05),
             dict(objective="jepa", depth=2, weight_decay=0.005, eps=0.05)]  # drops the (0.6, 0.7) feature
    for case in cases:
        probe = train.TrainConfig(lam=LAM, rho=RHO, lr=lr, steps=1, **case)
        cols = runs.theory_columns(probe, probe.dataset(), gd=False)
        t = cols["t_star_theory"]
        steps = int(1.2 * np.max(t[np.isfinite(t)]) / lr)
        res = train.train(train.TrainConfig(lam=LAM, rho=RHO, lr=lr, steps=steps, records=5, **case))
        learned = cols["learned_theory"]
        assert np.array_equal(runs.learned_empirical(res.responses[0], res.responses[-1]), learned), case
        np.testing.assert_allclose(res.critical_times()[learned], t[learned], rtol=5e-3, err_msg=str(case))
        balanced = train.prediction(train.TrainConfig(lam=LAM, rho=RHO, lr=lr, steps=1, depth=case["depth"],
                                                      objective=case["objective"], eps=case["eps"]))
        assert np.max(np.abs(t / balanced.critical_time - 1)) > 0.01  # the knob matters at this size
    assert learned.tolist() == [True, False, True]  # weight decay above the feature's threshold: never learned


def test_aligned_init_and_new_fields_are_checked():
    m = train._init_model(train.TrainConfig(lam=(1.0, 0.5), rho=(0.9, 0.9), depth=3, eps=0.008, init="aligned",
                                            predictor_init=-0.3, steps=1), jax.random.PRNGKey(0), 2)
    for w in m.encoder.layers:
        np.testing.assert_array_equal(np.asarray(w), 0.2 * np.eye(2))
    np.testing.assert_array_equal(np.asarray(m.predictor.matrix()), -0.3 * np.eye(2))
    ok = dict(lam=(1.0,), rho=(0.9,), steps=10)
    for change, message in [(dict(predictor_init=0.1), "^predictor_init: only for --init aligned"),
                            (dict(init="aligned", predictor_init=float("nan")), "^predictor_init:"),
                            (dict(weight_decay=-1.0), "^weight_decay:"),
                            (dict(matmul_precision="fp8"), "^matmul_precision:"),
                            (dict(init="aligned", predictor_init=0.93, eps=0.3), "^predictor_init:")]:
        with pytest.raises(spec.SpecError, match=message):
            train.TrainConfig(**{**ok, **change})


@pytest.mark.slow
def test_float32_products_run_at_full_precision_unless_asked(tmp_path):
    """The compiled step's matrix products are HIGHEST by default (TF32 is JAX's GPU default,
    docs/theory.md section 15), HIGH with tf32, and the choice is in the summary's provenance."""
    def dots(precision):
        cfg = train.TrainConfig(lam=(1.0, 0.5), rho=(0.9, 0.8), steps=4, dtype="float32", records=1,
                                matmul_precision=precision)
        runner = train._Runner(cfg)
        with train.matmul_precision(precision):
            text = runner._segment.lower(runner.hp, runner.initial, 0, 4).as_text()
        return [ln for ln in text.splitlines() if "dot_general" in ln]

    assert dots("highest") and all("precision = [HIGHEST, HIGHEST]" in ln for ln in dots("highest"))
    assert all("precision = [HIGH, HIGH]" in ln for ln in dots("tf32"))
    cfg = train.TrainConfig(lam=(1.0,), rho=(0.9,), steps=3, records=1, matmul_precision="tf32")
    runs.run_training(cfg, str(tmp_path))
    with open(os.path.join(tmp_path, "summary.csv")) as f:
        assert "# matmul_precision: tf32" in f.read()
    assert records.read_csv(os.path.join(tmp_path, "summary.csv"))["learned_theory"].tolist() == ["true"]


def test_ode_buckets_follow_the_backend():
    """CPUs keep 4096-row calls; GPUs get calls of 2**20 rows in few padded sizes."""
    assert [c for c in ode._padded_chunks(5000, backend="cpu")] == [(0, 4096, 4096), (4096, 5000, 4096)]
    gpu = list(ode._padded_chunks(3_000_000, backend="gpu"))
    assert [c[2] for c in gpu] == [1 << 20] * 3 and gpu[-1][1] == 3_000_000
    assert list(ode._padded_chunks(700, backend="gpu")) == [(0, 700, 4096)]
    assert ode._sizes("rocm") == ode._sizes("cpu")
    assert ode._sizes() == ode._sizes(jax.default_backend())
