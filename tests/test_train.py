"""Trained networks against the theory (docs/theory.md sections 1-6, 13) and the training loop's files."""

import os

import numpy as np
import pytest

from jepa_dynamics.training import analysis, data, runs, train
from jepa_dynamics.engines import ode
from jepa_dynamics import records, theory
from jepa_dynamics.theory import spec

LAM = (1.0, 0.6, 1.4)
RHO = (0.9, 0.7, 0.5)


def _balanced_run(objective, depth, lr=1e-3):
    lam, rho = np.array(LAM), np.array(RHO)
    eps = 0.1 * float(np.min(theory.fixed_point(objective, depth, rho)))
    t_star = theory.critical_time(objective, depth, lam, rho, eps)
    steps = int(np.ceil(2.5 * t_star.max() / lr))
    cfg = train.TrainConfig(objective=objective, depth=depth, lam=LAM, rho=RHO, eps=eps, lr=lr, steps=steps,
                            records=400)
    return cfg, t_star, train.train(cfg)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.slow
def test_balanced_gradient_descent_follows_the_theory(objective, depth):
    """Small-step GD (t = lr * step) on the population loss, balanced init: critical times within 2%
    of the exact t_star, and w(t) within 1e-3 of the diffrax ODE integration."""
    cfg, t_star, res = _balanced_run(objective, depth)
    emp = res.critical_times()
    np.testing.assert_allclose(emp, t_star, rtol=0.02)
    lam, rho = np.array(LAM), np.array(RHO)
    w = ode.trajectory(objective, depth, lam[:, None], rho[:, None], cfg.eps, res.times[1:])[:, 0, :]
    assert np.max(np.abs(res.responses[1:] - w.T)) < 1e-3
    assert res.responses[0] == pytest.approx(cfg.eps, rel=1e-12)


def test_gradient_through_the_target_collapses():
    """Without the stop-gradient the JEPA population loss is minimised by Wbar -> 0."""
    base = dict(objective="jepa", depth=1, lam=(1.0, 0.5), rho=(0.9, 0.6), eps=0.2, lr=0.05, steps=4000,
                records=20)
    sg = train.train(train.TrainConfig(**base))
    through = train.train(train.TrainConfig(**base, stop_gradient=False))
    w_star = theory.fixed_point("jepa", 1, np.array(base["rho"]))
    np.testing.assert_allclose(sg.responses[-1], w_star, rtol=1e-3)  # learned
    assert np.all(through.responses[-1] < 0.02 * base["eps"])  # collapsed towards zero
    assert np.all(np.diff(through.responses, axis=0) <= 0)


@pytest.mark.slow
def test_ema_with_small_tau_reproduces_stop_gradient():
    base = dict(objective="jepa", depth=2, lam=(1.0, 0.6), rho=(0.8, 0.6), eps=0.02, lr=0.02, steps=15000,
                records=100)
    sg = train.train(train.TrainConfig(**base))
    ema = train.train(train.TrainConfig(**base, ema=1e-9))
    np.testing.assert_allclose(ema.responses, sg.responses, rtol=1e-6)
    slow = train.train(train.TrainConfig(**base, ema=0.9))  # a slow target changes the run (sanity)
    assert np.max(np.abs(slow.responses - sg.responses)) > 1e-3


@pytest.mark.slow
def test_random_init_and_minibatches_keep_the_learning_order():
    """Unbalanced random init (every factor N(0, eps^(1/L)^2 / d)), sampled minibatches, depth 2:
    features are learned in the theory's order.  The theory's critical times are >= 30% apart
    between neighbours, far more than what the random init and minibatch noise shift them by.

    MAE learns every feature in that order.  Stop-gradient JEPA from a random init loses some
    features for good (a feature whose predictor entry starts with the sign opposite to its
    encoder's decays: dw/dt ~ w^2 v (lam - sigma2 v) < 0), so not every feature crosses; those
    count as learned last, and the ones that are learned keep the order."""
    lam, rho = (0.5, 0.8, 1.2, 1.8), (0.6, 0.7, 0.8, 0.9)
    eps = 0.01
    for objective, lr, bound in (("mae", 0.01, 1.0), ("jepa", 0.05, 0.7)):
        t_theory = theory.critical_time(objective, 2, np.array(lam), np.array(rho), eps)
        assert np.min(t_theory[:-1] / t_theory[1:]) > 1.3
        for seed in (0, 1):
            cfg = train.TrainConfig(objective=objective, depth=2, lam=lam, rho=rho, eps=eps, init="random",
                                    loss="sampled", batch=128, lr=lr, steps=int(3 * t_theory.max() / lr),
                                    records=300, seed=seed)
            emp = train.train(cfg).critical_times()
            assert np.isfinite(emp[-1])  # the fastest feature is always learned
            assert analysis.order_correlation(emp, -t_theory) >= bound - 1e-12, (objective, seed, emp)


@pytest.mark.slow
def test_mlp_order_inversion_on_reversed_trend():
    """A tanh MLP encoder (depth 3) on reversed-trend data: JEPA learns in the order of rho, MAE in the
    order of lam -- opposite orders.

    Why it is robust: lam spans only 1 -> 1.3 while rho spans 1 -> 0.4.  MAE's critical time is
    ~1/lam up to terms that *also* favour the low-rho (high-lam) features, so its order is set by
    lam with >= 7% gaps.  JEPA's order is set by rho through the sub-leading terms of t_star, which
    grow with depth (docs/theory.md section 6): depth 3 and eps = 0.4 * (fraction * w_star of the smallest rho)
    put eps^(1/L)/rho at O(1), and the nonlinear network strengthens the preference (tanh damps the
    low-rho, low-response features).  The init is the balanced one with random orthogonal frames in a
    16-wide network, so the MLP starts in tanh's linear regime where the deep linear theory holds;
    4 features keep neighbours far apart relative to minibatch noise (batch 256).  Two seeds."""
    ds = data.reversed_trend(4, lam_range=(1.0, 1.3), rho_range=(0.4, 1.0))
    depth, eps = 3, 0.4 * 0.5 * 0.4**3
    for seed in (0, 1):
        cors = {}
        for objective, lr in (("jepa", 0.2), ("mae", 0.02)):
            t_theory = theory.critical_time(objective, depth, ds.lam, ds.rho, eps)
            cfg = train.TrainConfig(model="mlp", objective=objective, depth=depth, lam=tuple(ds.lam),
                                    rho=tuple(ds.rho), eps=eps, width=16, loss="sampled", batch=256, lr=lr,
                                    steps=int(3 * t_theory.max() / lr), records=300, seed=seed)
            t_emp = train.train(cfg).critical_times()
            cors[objective] = (analysis.order_correlation(t_emp, ds.rho), analysis.order_correlation(t_emp, ds.lam))
        assert cors["jepa"][0] >= 0.8 and cors["jepa"][1] <= -0.8, cors  # JEPA: high rho first
        assert cors["mae"][1] >= 0.8 and cors["mae"][0] <= -0.8, cors  # MAE: high lam first


def _files(out):
    return {name: open(os.path.join(out, name), "rb").read() for name in ("responses.csv", "summary.csv")}


@pytest.mark.slow
def test_run_training_files_rerun_and_resume(tmp_path, monkeypatch):
    cfg = train.TrainConfig(objective="mae", depth=2, lam=(1.0, 0.5), rho=(0.8, 0.4), eps=0.02, lr=0.05,
                            steps=3000, records=30, grid="log", checkpoints=(0, 1000, 3000), loss="sampled",
                            batch=32, optimizer="adam", chunk=64)
    a, b, c = (str(tmp_path / n) for n in "abc")
    res = runs.run_training(cfg, a, progress=False, command="cmd")
    runs.run_training(cfg, b, progress=False, command="cmd")
    assert _files(a) == _files(b)  # same config and seed: byte-identical
    text = _files(a)["responses.csv"].decode()
    assert text.startswith("# jepa-dynamics ") and "# command: cmd" in text
    table = records.read_csv(os.path.join(a, "responses.csv"))
    steps = np.unique(table["step"])
    np.testing.assert_array_equal(steps, train.record_steps(cfg))
    np.testing.assert_allclose(table["time"], 0.05 * table["step"])
    summary = records.read_csv(os.path.join(a, "summary.csv"))
    np.testing.assert_allclose(summary["t_star_theory"], theory.critical_time("mae", 2, [1.0, 0.5], [0.8, 0.4], 0.02))
    np.testing.assert_allclose(summary["final_response"], res.responses[-1])
    assert os.path.getsize(os.path.join(a, "plot.png")) > 1000
    enc = runs.load_encoder(cfg, runs.checkpoint_path(a, 1000))
    assert np.asarray(enc.matrix()).shape == (2, 2)
    enc0 = runs.load_encoder(cfg, runs.checkpoint_path(a, 0))
    np.testing.assert_allclose(np.asarray(enc0.matrix()), 0.02 * np.eye(2), atol=1e-15)

    # interrupt after a few blocks, then resume: the files equal the uninterrupted run's
    calls = {"n": 0}
    advance = train._Runner.advance

    def flaky(self, state, start, stop):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return advance(self, state, start, stop)

    monkeypatch.setattr(train._Runner, "advance", flaky)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        runs.run_training(cfg, c, progress=False, command="cmd", save_every=0.0)
    monkeypatch.setattr(train._Runner, "advance", advance)
    assert not os.path.exists(os.path.join(c, "summary.csv"))
    # a torn extra row after the saved state must be dropped, not kept
    with open(os.path.join(c, "responses.csv"), "a") as f:
        f.write("999999,1.0,0,0.5\n0,0")
    runs.run_training(cfg, c, resume=True, progress=False, command="cmd")
    assert _files(c) == _files(a)


def test_config_validation():
    ok = dict(lam=(1.0,), rho=(0.9,), steps=10)
    cases = [
        (dict(model="cnn"), "^model: unknown"), (dict(objective="byol"), "^objective:"),
        (dict(optimizer="rmsprop"), "^optimizer:"), (dict(init="xavier"), "^init:"),
        (dict(loss="exact"), "^loss:"), (dict(steps=0), "^steps:"), (dict(lr=0.0), "^lr:"),
        (dict(batch=-3), "^batch:"), (dict(ema=1.0), "^ema:"), (dict(ema=0.5, objective="mae"), "^ema:"),
        (dict(eps=0.5), "^eps: must be below"), (dict(rho=(0.9, 0.5)), "^rho: needs one value per feature"),
        (dict(model="mlp"), "^loss: population"), (dict(checkpoints=(11,)), "^checkpoints:"),
        (dict(dist="static"), "^dist: give either"), (dict(seed=-1), "^seed:"),
    ]
    for change, message in cases:
        with pytest.raises(spec.SpecError, match=message):
            train.TrainConfig(**{**ok, **change})
    with pytest.raises(spec.SpecError, match="^dist: give the data"):
        train.TrainConfig(steps=10)
    with pytest.raises(spec.SpecError, match="^eps:"):  # every feature of a family is checked
        train.TrainConfig(dist="reversed-trend", dim=5, depth=3, eps=0.05, steps=10)


@pytest.mark.slow
def test_linear_critical_times_do_not_depend_on_the_recording_grid():
    """The crossing is tracked at every step for linear encoders: a run recorded at 5 points
    gives the same t_star as one recorded at 2000, within 1% of the exact theory, even when
    the run lasts 50x the fastest feature's critical time (a coarse grid would miss it)."""
    lam, rho, eps, lr = (1.0, 2.0, 0.6), (0.9, 0.7, 0.3), 0.01, 0.01
    t_star = theory.critical_time("mae", 2, np.array(lam), np.array(rho), eps)
    steps = int(50 * t_star.max() / lr)
    base = dict(objective="mae", depth=2, lam=lam, rho=rho, eps=eps, lr=lr, steps=steps)
    coarse = train.train(train.TrainConfig(**base, records=5))
    fine = train.train(train.TrainConfig(**base, records=2000))
    np.testing.assert_allclose(coarse.critical_times(), fine.critical_times(), rtol=1e-12)
    np.testing.assert_allclose(coarse.critical_times(), t_star, rtol=0.01)
    # the recorded responses alone cannot resolve it on the coarse grid
    from_records = analysis.critical_times(coarse.times, coarse.responses, theory.fixed_point("mae", 2, np.array(rho)))
    assert np.max(np.abs(from_records / t_star - 1)) > 0.05
