"""Closed forms of :mod:`jepa_dynamics.theory`, each tied to an independent computation.

Reference values come from scipy quadrature of ``dt = du / (du/dt)`` (in ``ln u``),
from closed forms written out here, or from limits taken numerically -- never from
numbers copied from the code's own output.  float64 throughout (NumPy).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.integrate import quad

from jepa_dynamics.theory import spec
from jepa_dynamics import theory
from reference import OBJECTIVES, quad_time, rhs_by_hand, w_star_by_hand

DEPTHS = tuple(range(1, 9))


# 1. fixed points ---------------------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("rho", [0.2, 0.9, 1.0, 3.0])
def test_fixed_point_is_a_stable_zero_of_rhs(objective, depth, rho):
    lam = 1.7
    w_star = theory.fixed_point(objective, depth, rho)
    assert w_star == pytest.approx(w_star_by_hand(objective, depth, rho), rel=1e-14)
    scale = depth * lam * w_star**3  # size of either term of rhs at w_star
    assert abs(theory.rhs(objective, w_star, depth, lam, rho)) < 1e-13 * scale
    # stable: rhs > 0 just below, < 0 just above, and a negative derivative (central difference)
    h = 1e-6 * w_star
    assert theory.rhs(objective, w_star - h, depth, lam, rho) > 0
    assert theory.rhs(objective, w_star + h, depth, lam, rho) < 0
    slope = (theory.rhs(objective, w_star + h, depth, lam, rho) - theory.rhs(objective, w_star - h, depth, lam, rho)) / (2 * h)
    # by hand: d/dw L(lam w^p - s2 w^3) at w_star = L lam w_star^(p-1) (p - 3)
    p = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    assert slope == pytest.approx(depth * lam * w_star ** (p - 1) * (p - 3), rel=1e-6)
    assert slope < 0


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_rhs_matches_rhs_u_by_chain_rule(objective, depth):
    lam, rho = 0.8, 1.3
    u = np.linspace(0.05, 1.5, 13)
    w = u**depth
    # dw/dt = L u^(L-1) du/dt, and the u-form written out from docs/theory.md section 2
    s2 = lam / rho
    du = u ** (2 * depth) * (lam - s2 * u) if objective == "jepa" else u**depth * (lam - s2 * u ** (depth + 1))
    np.testing.assert_allclose(theory.rhs_u(objective, u, depth, lam, rho), du, rtol=1e-13, atol=0)
    np.testing.assert_allclose(theory.rhs(objective, w, depth, lam, rho), depth * u ** (depth - 1) * du, rtol=1e-12, atol=1e-15)


# 2. 1/lam scaling ---------------------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_critical_time_scales_exactly_as_one_over_lam(objective):
    lam = np.logspace(-8, 8, 17)
    depth = np.array([1, 2, 3, 8])[:, None]
    rho = 0.7
    eps = 1e-3 * w_star_by_hand(objective, depth, rho)
    t = theory.critical_time(objective, depth, lam, rho, eps)
    lam_t = lam * t
    np.testing.assert_allclose(lam_t, np.broadcast_to(lam_t[:, :1], lam_t.shape), rtol=1e-13)
    # and trajectories: w(t; lam) = w(lam t; 1)
    ts = np.linspace(0.0, 3.0, 7) * lam_t[1, 0]
    w1 = theory.trajectory(objective, 2, 1.0, rho, eps[1, 0], ts)
    w5 = theory.trajectory(objective, 2, 1e5, rho, eps[1, 0], ts / 1e5)
    np.testing.assert_allclose(w5, w1, rtol=1e-12)


# 3. JEPA L=1 is MAE L->infinity up to time rescaling ------------------------------------


def test_jepa_depth1_is_mae_infinite_depth_with_time_times_depth():
    """MAE: dw/dt = L(lam w^(2-1/L) - s2 w^3) -> L (lam w^2 - s2 w^3) = L * (JEPA L=1 rhs),
    and MAE's w_star = rho^(L/(L+1)) -> rho = JEPA L=1's.  So L * t_MAE(L) -> t_JEPA(1),
    with a gap of order 1/L."""
    lam, rho, eps = 1.3, 0.7, 1e-3
    t_jepa = theory.critical_time("jepa", 1, lam, rho, eps)
    assert t_jepa == pytest.approx(quad_time("jepa", 1, lam, rho, eps, 0.5 * rho), rel=1e-10)
    depths = [50, 200, 800]
    gaps = []
    for depth in depths:
        t_mae = theory.critical_time("mae", depth, lam, rho, eps)
        w_half = 0.5 * w_star_by_hand("mae", depth, rho)
        assert t_mae == pytest.approx(quad_time("mae", depth, lam, rho, eps, w_half), rel=1e-9)
        gaps.append(abs(depth * t_mae / t_jepa - 1))
    # the gap is ~ ln(1/eps) / L (from w^(-1/L) on the plateau): 1/L convergence
    assert gaps[-1] < 1e-2
    for g_small_l, g_large_l in zip(gaps, gaps[1:]):  # depth x4 => gap / 4
        assert 0.2 < g_large_l / g_small_l < 0.3
    # other levels of the rise agree too (times, not w(t): the rise is too steep for that)
    for fraction in (0.1, 0.9):
        t_j = theory.critical_time("jepa", 1, lam, rho, eps, fraction)
        t_m = theory.critical_time("mae", 800, lam, rho, eps, fraction)
        assert 800 * t_m == pytest.approx(t_j, rel=1e-2)


# 4. exact t(w) against quadrature -------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_exact_time_matches_quadrature(objective, depth):
    lam = 1.7
    for rho in (0.3, 1.0, 2.5):
        w_star = w_star_by_hand(objective, depth, rho)
        for rel_eps in (1e-2, 1e-6):
            eps = rel_eps * w_star
            for fraction in (0.1, 0.5, 0.9):
                t = theory.critical_time(objective, depth, lam, rho, eps, fraction)
                q = quad_time(objective, depth, lam, rho, eps, fraction * w_star)
                assert t == pytest.approx(q, rel=1e-10), (rho, rel_eps, fraction)
            w = w_star * np.array([2 * rel_eps, 0.3, 0.999])
            got = theory.time_to(objective, depth, lam, rho, eps, w)
            want = [quad_time(objective, depth, lam, rho, eps, wi) for wi in w]
            np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_depth8_eps_1e6(objective):
    for rho in (0.8, 1.0, 1.6):
        eps = 1e-6
        t = theory.critical_time(objective, 8, 1.0, rho, eps)
        q = quad_time(objective, 8, 1.0, rho, eps, 0.5 * w_star_by_hand(objective, 8, rho))
        assert t == pytest.approx(q, rel=1e-10)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 3, 8])
def test_trajectory_inverts_time_to(objective, depth):
    """w(t) from the exact inversion satisfies quad_time(w(t)) = t."""
    lam, rho = 0.9, 1.4
    w_star = w_star_by_hand(objective, depth, rho)
    eps = 1e-4 * w_star
    t_star = quad_time(objective, depth, lam, rho, eps, 0.5 * w_star)
    ts = t_star * np.array([0.0, 0.3, 0.9, 0.99, 1.0, 1.01, 1.1])
    w = theory.trajectory(objective, depth, lam, rho, eps, ts)
    assert w[0] == eps
    # strictly rising up to t_star; afterwards it may reach w_star to float64 resolution
    assert np.all(np.diff(w[:5]) > 0) and np.all(np.diff(w) >= 0) and np.all(w <= w_star)
    # at t_star the response is half the fixed point (conditioning: w' t / w is ~1e4 here)
    assert w[4] == pytest.approx(0.5 * w_star, rel=1e-9)
    inside = (ts > 0) & (w < (1 - 1e-9) * w_star)
    back = [quad_time(objective, depth, lam, rho, eps, wi) for wi in w[inside]]
    np.testing.assert_allclose(back, ts[inside], rtol=1e-10)


# 5. small-eps asymptotics ----------------------------------------------------------------


def leading_by_hand(objective, depth, lam, eps):
    if objective == "jepa":
        return eps ** (-(2 * depth - 1) / depth) / ((2 * depth - 1) * lam)
    if depth == 1:
        return math.log(1 / eps) / lam
    return eps ** (-(depth - 1) / depth) / ((depth - 1) * lam)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_leading_asymptotic_ratio_tends_to_one(objective, depth):
    lam, rho = 2.0, 0.6
    ratios = []
    for eps in (1e-4, 1e-8, 1e-12, 1e-16):
        eps = eps * w_star_by_hand(objective, depth, rho)
        lead = theory.critical_time_asymptotic(objective, depth, lam, rho, eps, order="leading")
        assert lead == pytest.approx(leading_by_hand(objective, depth, lam, eps), rel=1e-13)
        ratios.append(theory.critical_time(objective, depth, lam, rho, eps) / lead)
    gaps = np.abs(np.array(ratios) - 1)
    assert np.all(np.diff(gaps) < 0), ratios
    # the slowest case is MAE L=1, whose correction is O(1 / ln(1/eps))
    assert gaps[-1] < (0.1 if (objective, depth) == ("mae", 1) else 0.02)


def divergent_by_hand(objective, depth, lam, rho, eps):
    """Every eps-divergent term of t_star, derived in docs/theory.md."""
    if objective == "jepa":
        n = 2 * depth - 1
        x0 = eps ** (1 / depth) / rho
        return rho**-n / lam * (sum(x0**-j / j for j in range(1, n + 1)) - math.log(x0))
    if depth == 1:
        return math.log(math.sqrt(rho) / eps) / lam
    return eps ** (-(depth - 1) / depth) / ((depth - 1) * lam)


def constant_by_quadrature(objective, depth, lam, rho, fraction):
    """lim (t_star - divergent), from quadrature of the integrand minus its polar part.

    In x = u / u_star: JEPA lam t = rho^(1-2L) int dx / (x^(2L) (1-x)), polar part
    sum_{k=1}^{2L} x^-k, remainder 1/(1-x).  MAE lam t = u_star^(1-L) int dx / (x^L (1 - x^(L+1))),
    polar part x^-L, remainder x / (1 - x^(L+1))."""
    xf = fraction ** (1 / depth)
    if objective == "jepa":
        n = 2 * depth - 1
        rest, _ = quad(lambda x: 1 / (1 - x), 0, xf, epsabs=0, epsrel=1e-13)
        polar_at_xf = -sum(xf**-j / j for j in range(1, n + 1)) + math.log(xf)
        return rho**-n / lam * (polar_at_xf + rest)
    u_star = rho ** (1 / (depth + 1))
    rest, _ = quad(lambda x: x / (1 - x ** (depth + 1)), 0, xf, epsabs=0, epsrel=1e-13)
    polar_at_xf = math.log(xf) if depth == 1 else -(xf ** (1 - depth)) / (depth - 1)
    return u_star ** (1 - depth) / lam * (polar_at_xf + rest)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_divergent_asymptotic_leaves_the_limit_constant(objective, depth):
    lam, rho, fraction = 1.5, 0.8, 0.5
    c = theory.critical_time_limit_constant(objective, depth, lam, rho, fraction)
    assert c == pytest.approx(constant_by_quadrature(objective, depth, lam, rho, fraction), rel=1e-12, abs=1e-12)
    w_star = w_star_by_hand(objective, depth, rho)
    remainders = []
    for rel_eps in (1e-3, 1e-5, 1e-7):
        eps = rel_eps * w_star
        div = theory.critical_time_asymptotic(objective, depth, lam, rho, eps)
        assert div == pytest.approx(divergent_by_hand(objective, depth, lam, rho, eps), rel=1e-12)
        t = quad_time(objective, depth, lam, rho, eps, fraction * w_star)  # independent of theory
        remainders.append(abs(t - div - c))
    # the remainder vanishes like x0 = (eps/w_star)^(1/L) (JEPA) or x0^2 (MAE), up to rounding of t
    assert remainders[-1] < remainders[0]
    assert remainders[-1] < 1e-2 * abs(c) + 1e-5


def test_rho_enters_jepa_subleading_terms_not_mae():
    """The paper's point: JEPA's divergent terms depend on rho (more with depth), MAE's not."""
    lam, eps, depth = 1.0, 1e-8, 3
    jepa = [theory.critical_time_asymptotic("jepa", depth, lam, rho, eps) for rho in (0.5, 1.0, 2.0)]
    mae = [theory.critical_time_asymptotic("mae", depth, lam, rho, eps) for rho in (0.5, 1.0, 2.0)]
    assert jepa[0] > jepa[1] > jepa[2]  # sub-leading terms rho^(j-n) eps^(-j/L) / j: larger rho, sooner
    assert jepa[0] - jepa[2] > 1e-3 * jepa[2]
    assert mae[0] == mae[1] == mae[2]


# 8. edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "objective, depth, lam, rho, eps",
    [
        ("jepa", 2, 1.0, 1.0, 1e-3),  # rho = 1: w_star = 1
        ("jepa", 3, 1.0, 4.0, 1e-3),  # rho > 1: w_star = 64
        ("mae", 3, 1.0, 4.0, 1e-3),
        ("jepa", 8, 1.0, 0.1, 1e-14),  # tiny w_star = 1e-8, eps tinier
        ("mae", 8, 1.0, 0.01, 1e-6),
        ("jepa", 1, 1.0, 0.5, 1e-12),
        ("mae", 1, 1.0, 0.5, 1e-12),
        ("jepa", 4, 1e-8, 0.9, 1e-4),
        ("mae", 4, 1e8, 0.9, 1e-4),
        ("jepa", 8, 1.0, 1.0, 1e-12),
    ],
)
def test_edge_cases_against_quadrature(objective, depth, lam, rho, eps):
    w_star = w_star_by_hand(objective, depth, rho)
    assert theory.fixed_point(objective, depth, rho) == pytest.approx(w_star, rel=1e-14)
    t = theory.critical_time(objective, depth, lam, rho, eps)
    assert np.isfinite(t) and t > 0
    assert t == pytest.approx(quad_time(objective, depth, lam, rho, eps, 0.5 * w_star), rel=1e-10)


def test_rho_at_least_one_has_fixed_point_at_least_one():
    for depth in DEPTHS:
        for objective in OBJECTIVES:
            assert theory.fixed_point(objective, depth, 1.0) == 1.0
            assert theory.fixed_point(objective, depth, 1.5) > 1.0
            assert theory.fixed_point(objective, depth, 0.9) < 1.0


# 7. properties (hypothesis) ----------------------------------------------------------------

params = st.fixed_dictionaries(
    {
        "objective": st.sampled_from(OBJECTIVES),
        "depth": st.integers(1, 8),
        "log_lam": st.floats(-3, 3),
        "log_rho": st.floats(-1, 1),
        "log_rel_eps": st.floats(-10, -0.5),
    }
)


def unpack(p):
    w_star = w_star_by_hand(p["objective"], p["depth"], 10 ** p["log_rho"])
    return p["objective"], p["depth"], 10 ** p["log_lam"], 10 ** p["log_rho"], 10 ** p["log_rel_eps"] * w_star, w_star


@settings(max_examples=40, deadline=None)
@given(params)
@pytest.mark.slow
def test_property_exact_trajectory_rises_monotonically_inside_bounds(p):
    objective, depth, lam, rho, eps, w_star = unpack(p)
    t_star = theory.critical_time(objective, depth, lam, rho, eps)
    ts = t_star * np.array([0.0, 0.5, 0.9, 0.99, 1.0, 1.01, 1.2, 2.0, 10.0])
    w = theory.trajectory(objective, depth, lam, rho, eps, ts)
    assert w[0] == eps
    assert np.all(w > 0) and np.all(w <= w_star)
    assert np.all(np.diff(w) >= 0) and np.all(np.diff(w[:5]) > 0)
    # w(t_star) = w_star / 2, up to a relative error 1e-10 in w or in t: the rise is so
    # steep (t w' / w up to ~1e14 here) that float64 time alone limits w pointwise
    slope = abs(rhs_by_hand(objective, depth, lam, rho, w[4]))
    close_in_w = abs(w[4] - 0.5 * w_star) <= 1e-10 * (w[4] + t_star * slope)
    # where the whole rise is shorter than float64's resolution of t (t_star ~ 1e14 and more), w[4] can
    # land past the rise, where the slope is 0: then the crossing must lie within 1e-10 of t_star in t
    before, after = theory.trajectory(objective, depth, lam, rho, eps, t_star * np.array([1 - 1e-10, 1 + 1e-10]))
    close_in_t = before <= 0.5 * w_star <= after
    assert close_in_w or close_in_t


@settings(max_examples=40, deadline=None)
@given(params, st.floats(1.01, 100.0))
def test_property_critical_time_falls_with_lam_and_rises_as_eps_falls(p, factor):
    objective, depth, lam, rho, eps, _ = unpack(p)
    t = theory.critical_time(objective, depth, lam, rho, eps)
    assert theory.critical_time(objective, depth, lam * factor, rho, eps) < t
    assert theory.critical_time(objective, depth, lam, rho, eps / factor) > t


# 9. validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"depth": -1}, "depth"),
        ({"lam": 0.0}, "lam"),
        ({"lam": -1.0}, "lam"),
        ({"lam": float("nan")}, "lam"),
        ({"lam": float("inf")}, "lam"),
        ({"rho": 0.0}, "rho"),
        ({"rho": -0.5}, "rho"),
        ({"rho": float("nan")}, "rho"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 0.3}, "eps"),  # >= 0.5 * w_star = 0.25
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"objective": "byol"}, "objective"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(kwargs, name):
    args = {"objective": "jepa", "depth": 2, "lam": 1.0, "rho": 0.5 ** 0.5, "eps": 1e-3, "fraction": 0.5}
    args.update(kwargs)  # w_star = 0.5 for the defaults
    for func in (theory.critical_time, theory.critical_time_asymptotic):
        with pytest.raises(ValueError) as err:
            func(**args)
        assert isinstance(err.value, spec.SpecError)
        assert err.value.name == name
        assert str(err.value).startswith(f"{name}:")
        assert "\n" not in str(err.value)


def test_eps_message_says_how_small():
    with pytest.raises(spec.SpecError, match=r"eps: must be below fraction \* w_star = 0\.125.*smaller eps"):
        theory.critical_time("jepa", 2, 1.0, 0.5, 0.2)
    # a bad entry inside a grid is found too
    with pytest.raises(spec.SpecError, match="eps"):
        theory.critical_time("mae", [1, 2], 1.0, 0.5, [1e-3, 0.6])


def test_time_to_and_trajectory_validate():
    with pytest.raises(spec.SpecError, match="^w:"):
        theory.time_to("jepa", 1, 1.0, 0.5, 1e-3, 0.6)  # above w_star = 0.5
    with pytest.raises(spec.SpecError, match="^ts:"):
        theory.trajectory("jepa", 1, 1.0, 0.5, 1e-3, [-1.0, 1.0])
    with pytest.raises(spec.SpecError, match="^order:"):
        theory.critical_time_asymptotic("jepa", 1, 1.0, 0.5, 1e-3, order="second")
