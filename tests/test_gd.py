"""The exact gradient-descent map (docs/theory.md section 9) against a plain NumPy loop on the L+1 scalars."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jepa_dynamics.theory import aligned, gd
from jepa_dynamics.training import analysis


def numpy_loop(objective, depth, lam, rho, a0, v0, eta, level, *, kappa=math.inf, beta=0.0, steps=None):
    """Plain GD on the layers a_1..a_L (separately), v and the EMA target; first crossing interpolated."""
    sigma2 = lam / rho
    a = np.full(depth, a0)
    v = v0
    w = np.prod(a)
    wt = w
    prev = abs(w)
    tau = 1 - eta * kappa if math.isfinite(kappa) else 0.0
    ws = [w]
    k = 0
    while True:
        target = wt if math.isfinite(kappa) else w
        r = sigma2 * v * w - (lam if objective == "mae" else lam * target)
        others = np.array([np.prod(np.delete(a, i)) for i in range(depth)])
        a, v = a - eta * (others * v * r + beta * a), v - eta * (w * r + beta * v)
        w = np.prod(a)
        wt = tau * wt + (1 - tau) * w
        k += 1
        ws.append(w)
        if steps is not None:
            if k == steps:
                return np.array(ws)
            continue
        if abs(w) >= level:
            return analysis.interpolate_crossing(k - 1, k, prev, abs(w), level)
        prev = abs(w)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.slow
def test_map_matches_numpy_loop(objective):
    rows = [(1, 0.9, 0.7, 0.2, -0.1, 0.5, math.inf, 0.0), (2, 1.2, 0.6, 0.3, 0.35, 0.3, math.inf, 0.01),
            (3, 0.8, 0.9, 0.3, 0.25, 0.8, math.inf, 0.0), (4, 1.0, 0.8, 0.4, 0.35, 0.2, math.inf, 0.0)]
    if objective == "jepa":
        rows += [(2, 0.8, 0.6, 0.1, 0.1, 0.5, 1.0, 0.0), (3, 1.0, 0.7, 0.3, 0.32, 0.25, 2.0, 0.001)]
    depth, lam, rho, a0, v0, eta, kappa, beta = (np.array(x) for x in zip(*rows))
    level = 0.3 * aligned.fixed_point_magnitude(objective, depth, lam, rho, a0**depth, v0, beta)
    k, _ = gd.critical_steps(objective, depth, lam, rho, a0, v0, level, lr=eta, ema_rate=kappa, weight_decay=beta)
    for i, row in enumerate(rows):
        ref = numpy_loop(objective, *row[:6], level[i], kappa=row[6], beta=row[7])
        assert k[i] == pytest.approx(ref, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.slow
def test_stability_bound_period_two(objective):
    """Balanced: 5% above the bound the iterates settle into a period-2 cycle; 5% below they converge."""
    depth, lam, rho = 2, 1.0, 0.8
    bound = float(gd.stability_bound(objective, depth, lam, rho))
    w_star = rho**depth if objective == "jepa" else rho ** (depth / (depth + 1))
    u0 = 0.9 * w_star ** (1 / depth)
    for factor in (0.95, 1.05):
        ws = gd.iterate(objective, depth, lam, rho, u0, u0, 4000, lr=factor * bound)
        ref = numpy_loop(objective, depth, lam, rho, u0, u0, factor * bound, None, steps=4000)
        np.testing.assert_allclose(ws, ref, rtol=1e-12)
        tail = ws[-10:]
        if factor < 1:
            np.testing.assert_allclose(tail, w_star, rtol=1e-10)
        else:
            assert abs(tail[-1] - tail[-2]) > 1e-3 * w_star  # oscillates ...
            np.testing.assert_allclose(tail[-1], tail[-3], rtol=1e-10)  # ... with period 2
            assert min(tail[-1], tail[-2]) < w_star < max(tail[-1], tail[-2])


def test_predict_gd_rows():
    """predict(lr > 0): lr x the interpolated step count of the same map; balanced small lr ~ gradient flow."""
    pred = aligned.predict("jepa", 2, 1.0, 0.6, 0.01, lr=np.array([0.01, 0.5]))
    flow = aligned.predict("jepa", 2, 1.0, 0.6, 0.01)
    ref = numpy_loop("jepa", 2, 1.0, 0.6, 0.1, 0.1, 0.5, 0.5 * 0.36)
    assert pred.critical_step[1] == pytest.approx(ref, rel=1e-12)
    assert pred.critical_time[1] == pytest.approx(0.5 * ref, rel=1e-12)
    assert pred.critical_time[0] == pytest.approx(float(flow.critical_time), rel=2e-3)
    assert np.isnan(flow.critical_step)


@pytest.mark.slow
def test_rows_of_different_lengths_batched_in_any_order_give_each_rows_own_result():
    """critical_steps sorts rows by estimated length before batching: a row's result must not depend
    on its batch mates, so a shuffled batch equals each row run on its own, bit for bit."""
    rng = np.random.default_rng(3)
    n = 12
    depth = rng.integers(1, 4, n)
    lam, rho = rng.uniform(0.5, 1.5, n), rng.uniform(0.4, 0.9, n)
    a0 = rng.choice([0.05, 0.1, 0.3], n)
    v0 = a0 * rng.choice([0.5, 1.0, 1.5], n)
    eta = rng.choice([0.01, 0.05, 0.2], n)
    level = 0.25 * rho ** depth
    cap = dict(max_steps=200_000)  # a row that never reaches its level ends there (inf), whatever its mates
    together, _ = gd.critical_steps("jepa", depth, lam, rho, a0, v0, level, lr=eta, **cap)
    perm = rng.permutation(n)
    shuffled, _ = gd.critical_steps("jepa", depth[perm], lam[perm], rho[perm], a0[perm], v0[perm], level[perm],
                                    lr=eta[perm], **cap)
    alone = [gd.critical_steps("jepa", depth[i:i + 1], lam[i:i + 1], rho[i:i + 1], a0[i:i + 1], v0[i:i + 1],
                               level[i:i + 1], lr=eta[i:i + 1], **cap)[0][0] for i in range(3)]
    np.testing.assert_array_equal(shuffled, together[perm])
    np.testing.assert_array_equal(alone, together[:3])
    assert np.ptp(together[np.isfinite(together)]) > 10  # the rows really differ in length
