"""docs/theory.md section 9: aligned (unbalanced) init, EMA target, weight decay, under gradient flow.

Every reference here integrates the full L + 1 (+ EMA) scalars written out by hand (scipy
``solve_ivp``), with the layers as separate components, never the package's reduction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from jepa_dynamics.theory import aligned, spec
from jepa_dynamics import theory


def full_rhs(objective, lam, rho, kappa=math.inf, beta=0.0):
    """``d/dt (a_1..a_L, v, w_T)`` of docs/theory.md section 9, by hand."""
    sigma2 = lam / rho

    def rhs(t, y):
        a, v, wt = y[:-2], y[-2], y[-1]
        w = np.prod(a)
        target = wt if math.isfinite(kappa) else w
        r = sigma2 * v * w - (lam if objective == "mae" else lam * target)
        others = np.array([np.prod(np.delete(a, i)) for i in range(a.size)])
        da = -others * v * r - beta * a
        dv = -w * r - beta * v
        dwt = kappa * (w - wt) if math.isfinite(kappa) else 0.0
        return np.concatenate([da, [dv, dwt]])

    return rhs


def direct(objective, depth, lam, rho, eps, v0, level, *, kappa=math.inf, beta=0.0, t_max=1e7):
    """First time ``|w| = level`` (``inf`` if never before ``t_max``) and the final ``w``."""
    a0 = eps ** (1.0 / depth)
    y0 = np.concatenate([np.full(depth, a0), [v0, eps]])
    ev = lambda t, y: abs(np.prod(y[:-2])) - level  # noqa: E731
    ev.terminal, ev.direction = True, 1
    stiff = math.isfinite(kappa)
    sol = solve_ivp(full_rhs(objective, lam, rho, kappa, beta), (0, t_max), y0, method="Radau" if stiff else "DOP853",
                    rtol=1e-12, atol=1e-15 * eps, events=ev)
    t = sol.t_events[0][0] if sol.t_events[0].size else math.inf
    return t, np.prod(sol.y[:-2, -1])


def test_field_matches_hand_written_rhs():
    rng = np.random.default_rng(0)
    for objective, kappa in (("jepa", math.inf), ("jepa", 0.7), ("mae", math.inf)):
        a = rng.normal(size=3)
        v, wt = rng.normal(), rng.normal()
        da, dv, dwt = aligned.field(objective, 3, 0.8, 0.6, a, v, wt, ema_rate=kappa, weight_decay=0.1)
        ref = full_rhs(objective, 0.8, 0.6, kappa, 0.1)(0.0, np.concatenate([a, [v, wt]]))
        np.testing.assert_allclose(np.concatenate([da, [dv, dwt]]), ref, rtol=1e-14)


@pytest.mark.parametrize("objective,kappa", [("jepa", math.inf), ("jepa", 0.5), ("mae", math.inf)])
def test_conservation_and_decay(objective, kappa):
    """c_l = a_l^2 - v^2 is constant (unequal layers too); with weight decay it decays as exp(-2 beta t)."""
    rng = np.random.default_rng(1)
    y0 = np.concatenate([rng.uniform(0.3, 0.9, 3) * rng.choice([-1, 1], 3), [rng.normal(), 0.2]])
    for beta in (0.0, 0.05):
        sol = solve_ivp(full_rhs(objective, 0.9, 0.7, kappa, beta), (0, 20), y0, method="DOP853", rtol=1e-13,
                        atol=1e-14, dense_output=True)
        for t in (5.0, 20.0):
            y = sol.sol(t)
            c = aligned.conserved(y[:3], y[3])
            np.testing.assert_allclose(c, aligned.conserved(y0[:3], y0[3]) * math.exp(-2 * beta * t), rtol=1e-9,
                                       atol=1e-11)


def test_balanced_rows_equal_theory():
    depth = np.array([1, 2, 3, 4])[:, None]
    lam, rho, eps = 0.7, np.array([0.5, 0.9, 1.4]), 1e-3
    for objective in ("jepa", "mae"):
        pred = aligned.predict(objective, depth, lam, rho, eps)
        assert np.array_equal(pred.critical_time, theory.critical_time(objective, depth, lam, rho, eps))
        assert np.array_equal(pred.w_inf, np.broadcast_to(spec.fixed_point(objective, depth, rho), pred.w_inf.shape))
        assert pred.learned.all() and np.isnan(pred.critical_step).all()


def _cases(objective, n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        depth = int(rng.integers(1, 5))
        lam, rho = rng.uniform(0.5, 1.5), rng.uniform(0.4, 1.2)
        eps = 10 ** rng.uniform(-2.5, -1.5) * (rho ** depth)
        a0 = eps ** (1 / depth)
        v0 = a0 * rng.choice([rng.uniform(-3, 3), rng.uniform(-1.2, 1.2)])
        yield depth, lam, rho, eps, v0


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.slow
def test_predict_and_collapse_against_direct_integration(objective):
    """Random aligned inits incl. negative V0, depths 1-4: learned flag and t* (1e-6) against scipy."""
    rows = [c for c in _cases(objective, 40, 3 if objective == "jepa" else 4)]
    depth, lam, rho, eps, v0 = (np.array(x) for x in zip(*rows))
    pred = aligned.predict(objective, depth, lam, rho, eps, v0)
    keep = np.flatnonzero(pred.critical_time < 3e4)[:8].tolist() + np.flatnonzero(~pred.learned)[:5].tolist()
    rows = [rows[i] for i in keep]
    pred = aligned.Prediction(*(x[keep] for x in pred))
    flags = set()
    for i, (d, la, r, e, v) in enumerate(rows):
        learned = pred.learned[i]
        flags.add(bool(learned))
        level = 0.5 * abs(pred.w_inf[i]) if learned else 0.5 * np.nan_to_num(
            aligned.fixed_point_magnitude(objective, d, la, r, e, v), nan=1e-3)
        t_ref, w_end = direct(objective, d, la, r, e, v, max(level, 2 * e), t_max=1e5)
        if learned:
            assert t_ref == pytest.approx(pred.critical_time[i], rel=1e-6)
            assert w_end * np.sign(pred.w_inf[i]) > 0
        else:
            assert math.isinf(t_ref) and abs(w_end) < e, (d, v / e ** (1 / d))
    assert flags == {True, False}


def test_jepa_collapse_boundaries():
    """v0 < 0 with c <= 0 and v0 > rho with v0^2 >= rho^2 + a0^2 collapse; just inside them does not."""
    a0, rho, depth = 0.1, 0.6, 2
    eps = a0**depth
    v0 = np.array([-a0 * 1.1, -a0 * 0.9, math.sqrt(rho**2 + a0**2) * 1.001])
    assert aligned.collapses("jepa", depth, rho, eps, v0).tolist() == [True, False, True]
    for v, expect in zip(v0, (False, True, False)):
        t, w_end = direct("jepa", depth, 1.0, rho, eps, v, 0.3 * rho**2, t_max=1e5)
        assert math.isfinite(t) == expect


@pytest.mark.slow
def test_ema_reference_example():
    """docs/theory.md section 9's EMA example: L=2, lam=0.8, rho=0.6, balanced u0=0.1: t* = 550.6, 555.4, 630.4."""
    pred = aligned.predict("jepa", 2, 0.8, 0.6, 0.01, ema_rate=np.array([100.0, 1.0, 0.05]))
    np.testing.assert_allclose(pred.critical_time, [550.6, 555.4, 630.4], atol=0.05)
    for kappa, t in zip((1.0, 0.05), pred.critical_time[1:]):
        t_ref, _ = direct("jepa", 2, 0.8, 0.6, 0.01, 0.1, 0.18, kappa=kappa, t_max=1e4)
        assert t_ref == pytest.approx(t, rel=1e-6)


def test_weight_decay_threshold_and_survival():
    """Balanced JEPA: non-zero fixed points iff beta < threshold; a feature below u_minus decays."""
    depth, lam, rho = 2, 1.0, 0.8
    thr = aligned.weight_decay_threshold("jepa", depth, lam, rho)
    u = np.linspace(1e-4, rho, 200001)
    assert thr == pytest.approx(np.max(u**3 * (lam - lam / rho * u)), rel=1e-8)
    u_minus, u_plus = aligned.weight_decay_fixed_points("jepa", depth, lam, rho, 0.5 * thr)
    for u0, survives in ((1.05 * u_minus, True), (0.95 * u_minus, False)):
        pred = aligned.predict("jepa", depth, lam, rho, u0**depth, weight_decay=0.5 * thr)
        assert bool(pred.learned) == survives
        t, w_end = direct("jepa", depth, lam, rho, u0**depth, u0, 0.5 * u_plus**depth, beta=0.5 * thr, t_max=1e5)
        assert math.isfinite(t) == survives
        if survives:
            assert t == pytest.approx(float(pred.critical_time), rel=1e-6)
            assert float(pred.w_inf) == pytest.approx(u_plus**depth, rel=1e-12)
    above = aligned.predict("jepa", depth, lam, rho, 0.3**depth, weight_decay=1.01 * thr)
    assert not above.learned and math.isinf(above.critical_time)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(spec.SpecError, match="predictor_init"):
        aligned.predict("jepa", 2, 1.0, 0.6, 0.01, predictor_init=0.595)  # |w_inf| = 0.016 < 2 eps
    with pytest.raises(spec.SpecError, match="ema_rate"):
        aligned.predict("mae", 2, 1.0, 0.6, 0.01, ema_rate=1.0)
    with pytest.raises(spec.SpecError, match="weight_decay"):
        aligned.predict("jepa", 2, 1.0, 0.6, 0.01, weight_decay=-1.0)
    with pytest.raises(spec.SpecError, match="lr"):
        aligned.predict("jepa", 2, 1.0, 0.6, 0.01, lr=-0.1)
    with pytest.raises(spec.SpecError, match="eps"):
        aligned.predict("jepa", 2, 1.0, 0.6, 0.5)


@pytest.mark.parametrize("objective,depth,v0_over_a0,beta_over_threshold", [
    ("mae", 1, 0.5, 0.0), ("mae", 1, 2.0, 0.0), ("mae", 1, -2.0, 0.0),    # L = 1: c > 0, c < 0 (both signs of v)
    ("mae", 3, -0.7, 0.0), ("mae", 3, 1.8, 0.0),                          # L >= 2: c > 0 (v crosses 0), c < 0
    ("mae", 2, 1.0, 0.4), ("jepa", 3, 1.0, 0.4), ("mae", 1, 1.0, 0.2),   # balanced with weight decay
])
def test_quadrature_rows_against_direct_integration(objective, depth, v0_over_a0, beta_over_threshold):
    """Unbalanced MAE and balanced weight-decay rows are one quadrature each (docs/theory.md section 9):
    t* and the sign of w_inf against scipy of the L + 1 scalars, 1e-8."""
    lam, rho = 0.9, 0.7
    beta = beta_over_threshold * float(aligned.weight_decay_threshold(objective, depth, lam, rho))
    u_minus, _ = aligned.weight_decay_fixed_points(objective, depth, lam, rho, beta)
    a0 = max(0.02, 1.2 * float(u_minus))  # weight decay: just above the unstable fixed point (a long plateau)
    eps = a0**depth
    pred = aligned.predict(objective, depth, lam, rho, eps, v0_over_a0 * a0, weight_decay=beta)
    assert bool(pred.learned)
    t_ref, w_end = direct(objective, depth, lam, rho, eps, v0_over_a0 * a0, 0.5 * abs(float(pred.w_inf)),
                          beta=beta, t_max=1e9)
    assert t_ref == pytest.approx(float(pred.critical_time), rel=1e-8)
    assert np.sign(w_end) == np.sign(float(pred.w_inf))


def test_imex_tableau_order_conditions():
    """The ARK4(3)6L[2]SA tableau of _aligned_flow: consistent rows, order 4 for each part and the
    coupling conditions up to order 3, an L-stable and stiffly accurate implicit part."""
    from jepa_dynamics.theory import _aligned_flow as af

    ai, ae = np.zeros((6, 6)), np.zeros((6, 6))
    for i in range(1, 6):
        ai[i, :i], ai[i, i] = af._A_IMPLICIT[i - 1], af._GAMMA
        ae[i, :i] = af._A_EXPLICIT[i - 1]
    b, c = af._B, af._C
    np.testing.assert_allclose(ai.sum(1), c, atol=1e-15)
    np.testing.assert_allclose(ae.sum(1), c, atol=1e-15)
    for k in range(4):
        assert b @ c**k == pytest.approx(1 / (k + 1), abs=1e-14)
    for a1 in (ai, ae):
        assert b @ a1 @ c == pytest.approx(1 / 6, abs=1e-14)
        assert b @ (c * (a1 @ c)) == pytest.approx(1 / 8, abs=1e-14)
        assert b @ a1 @ c**2 == pytest.approx(1 / 12, abs=1e-14)
        for a2 in (ai, ae):
            assert b @ a1 @ a2 @ c == pytest.approx(1 / 24, abs=1e-14)
    np.testing.assert_array_equal(ai[5], b)
    z = -1e8
    assert abs(1 + z * b @ np.linalg.solve(np.eye(6) - z * ai, np.ones(6))) < 1e-6
    assert af._B_EMBEDDED.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.slow
def test_integrated_rows_against_direct_integration():
    """EMA target and/or weight decay, aligned inits of both signs, depths 1-3: the IMEX method's
    learned flags and t* against scipy of the L + 1 (+ EMA) scalars (Radau), 1e-6."""
    rng = np.random.default_rng(4)
    n = 10
    depth = rng.integers(1, 4, n)
    lam, rho = rng.uniform(0.4, 1.0, n), rng.uniform(0.5, 0.9, n)
    eps = 0.05 ** depth
    v0 = 0.05 * rng.choice([1.0, 0.5, -0.5, 1.5, -1.5], n)
    kappa = rng.choice([0.1, 10.0, 1e3], n)
    beta = rng.choice([0.0, 1e-4], n)
    pred = aligned.predict("jepa", depth, lam, rho, eps, v0, ema_rate=kappa, weight_decay=beta)
    assert 0 < pred.learned.sum() < n
    for i in range(n):
        level = 0.5 * float(aligned.fixed_point_magnitude("jepa", depth[i], lam[i], rho[i], eps[i], v0[i], beta[i]))
        t_ref, w_end = direct("jepa", int(depth[i]), lam[i], rho[i], eps[i], v0[i], level, kappa=kappa[i],
                              beta=beta[i], t_max=1e7)
        assert math.isfinite(t_ref) == bool(pred.learned[i])
        if pred.learned[i]:
            assert t_ref == pytest.approx(pred.critical_time[i], rel=1e-6)
            assert np.sign(w_end) == np.sign(pred.w_inf[i])


@pytest.mark.slow
def test_ema_collapse_is_followed_to_the_end():
    """An EMA row on its way to a = 0 (kappa / R beyond 1e20) is followed to its collapse in a few
    hundred steps (the last-stage form of the update keeps E out of rounding noise); scipy agrees."""
    from jepa_dynamics.theory import _aligned_flow as af

    depth, lam, rho, eps, v0 = 3, 0.885923, 0.547767, 1e-3, -0.172873
    a0 = eps ** (1 / 3)
    level = 0.5 * float(aligned.fixed_point_magnitude("jepa", depth, lam, rho, eps, v0))
    args = [np.array([x]) for x in (depth, lam, rho, a0, v0, 100.0, 0.0, level)]
    out = af._compiled(2, 1e-8, 1e-13, 8192)({k: np.asarray(v, dtype=np.float64) for k, v in dict(
        depth=args[0], lam=args[1], sigma2=args[1] / args[2], a0=args[3], eps=np.array([eps]), kappa=args[5], beta=args[6],
        ema=np.ones(1), mae=np.zeros(1), V0=args[4] / a0, log_rel=np.log(args[7]) - np.log(eps),
        v_settled=np.array([np.inf])).items()})
    crossed, _, _, settled, steps = (np.asarray(x)[0] for x in out)
    assert settled and not crossed and steps < 4096
    assert not aligned.predict("jepa", depth, lam, rho, eps, v0, ema_rate=100.0).learned
    t_ref, w_end = direct("jepa", depth, lam, rho, eps, v0, level, kappa=100.0, t_max=1e6)
    assert math.isinf(t_ref) and abs(w_end) < eps


@pytest.mark.slow
def test_too_slow_a_target_is_named():
    """kappa far below the encoder's rates: the encoder relaxes onto v w = rho w_T much faster than the
    target moves (stiff in the explicit part); the failure names the cause and the way out."""
    with pytest.raises(RuntimeError, match="use a larger ema_rate"):
        aligned.predict("jepa", 1, 0.5, 0.9, 1e-4, ema_rate=1e-6)


@pytest.mark.slow
def test_weight_decay_revival_at_depth_one():
    """L = 1, weight decay, v0 > rho: the encoder falls by hundreds of e-folds while v decays, then
    grows again once v(lam - sigma2 v) > beta (docs/theory.md section 9). Such a row is learned,
    as scipy's integration says; a fall of e^60 alone must not count as a collapse here.  (When and
    with which sign it comes back depends on how deep it fell, below any integrator's noise floor:
    only the flag is compared.)"""
    lam, rho, eps, v0, kappa, beta = 0.8159384304574024, 0.5050825469084601, 0.0018737983134834231, 0.75, 28.7, 1e-5
    pred = aligned.predict("jepa", 1, lam, rho, eps, v0, ema_rate=kappa, weight_decay=beta)
    assert bool(pred.learned) and math.isfinite(float(pred.critical_time))
    level = 0.5 * abs(float(pred.w_inf))
    t_ref, w_end = direct("jepa", 1, lam, rho, eps, v0, level, kappa=kappa, beta=beta, t_max=1e6)
    assert math.isfinite(t_ref) and abs(w_end) >= level


@pytest.mark.slow
def test_gd_map_horizon():
    """``max_steps`` stops the GD map where a run of that length stops: a feature that crosses
    by then keeps its interpolated step exactly; one that crosses later gets ``nan`` (not
    ``inf``, which means "never"), and an unlearned one keeps ``inf``."""
    lam, rho = np.array([1.0, 0.3, 0.5]), np.array([0.9, 0.5, 0.4])
    beta = np.array([0.0, 0.0, 0.05])  # the third decays under weight decay (not learned)
    full = aligned.predict("jepa", 2, lam, rho, 1e-3, weight_decay=beta, lr=0.05)
    assert full.learned.tolist() == [True, True, False] and np.isinf(full.critical_step[2])
    k_fast, k_slow = full.critical_step[:2]
    assert k_fast < k_slow < np.inf
    for cap in (int(np.ceil(k_fast)), int((k_fast + k_slow) // 2)):
        capped = aligned.predict("jepa", 2, lam, rho, 1e-3, weight_decay=beta, lr=0.05, max_steps=cap)
        assert capped.critical_step[0] == k_fast and capped.critical_time[0] == full.critical_time[0]
        assert np.isnan(capped.critical_step[1]) and np.isnan(capped.critical_time[1])
        assert np.isinf(capped.critical_step[2])
    capped = aligned.predict("jepa", 2, lam, rho, 1e-3, weight_decay=beta, lr=0.05, max_steps=int(np.ceil(k_slow)))
    np.testing.assert_array_equal(capped.critical_step, full.critical_step)
    for bad in (0, -3, 2.5):
        with pytest.raises(spec.SpecError, match="max_steps"):
            aligned.predict("jepa", 2, lam, rho, 1e-3, lr=0.05, max_steps=bad)
