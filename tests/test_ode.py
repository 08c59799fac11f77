"""The diffrax engine (:mod:`jepa_dynamics.engines.ode`) and the per-feature ODE itself.

* ``ode.critical_time`` / ``ode.trajectory`` against the exact closed forms, scipy
  quadrature and scipy's Radau, over depths 1..8 and extreme parameters;
* THE KEYSTONE: the per-feature ODE of docs/theory.md section 2 equals autodiff gradient
  flow (``jax.grad`` of a loss written here from section 1.2) on the real matrices
  ``W_1..W_L, V`` from the balanced orthogonal initialisation of section 1.3.

JAX shapes are kept few: every ``ode`` call pads its rows to 512, and every
trajectory uses ``NT`` time points, so each jitted function compiles once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from scipy.integrate import solve_ivp
from scipy.stats import special_ortho_group

from jepa_dynamics.engines import ode
from jepa_dynamics.theory import spec
from jepa_dynamics import theory
from reference import OBJECTIVES, quad_time, rhs_by_hand, w_star_by_hand
from jepa_dynamics._jax import jax

import jax.numpy as jnp  # noqa: E402

NT = 41  # time points of every ode.trajectory call (one compiled shape)


def mixed_error(objective, depth, lam, rho, ts, w_got, w_ref):
    """max |w_got - w_ref| / (w_ref + t |dw/dt|): a relative error in w OR in t.

    Pointwise relative error in w is meaningless on the rise: there t w'/w reaches
    ~(w_star/eps)^(p-1) (1e9..1e11 for eps = 1e-6 w_star), so even float64 rounding
    of t moves w by more than 1e-6.  This measure is 1e-6 when the ODE's w(t) is the
    exact w at a time within 1e-6 relative of t (or within 1e-6 relative in w)."""
    slope = np.abs(rhs_by_hand(objective, depth, lam, rho, w_ref))
    return float(np.max(np.abs(w_got - w_ref) / (w_ref + np.asarray(ts) * slope)))


# 4. ODE critical times against the exact formula and quadrature ---------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ode_critical_time_matches_exact_all_depths(objective):
    depth = np.arange(1, 9)[:, None, None]
    rho = np.array([0.3, 1.0, 2.5])[None, :, None]
    rel_eps = np.array([1e-2, 1e-6])[None, None, :]
    eps = rel_eps * w_star_by_hand(objective, depth, rho)
    lam = 1.7
    t_ode = ode.critical_time(objective, depth, lam, rho, eps)
    t_exact = theory.critical_time(objective, depth, lam, rho, eps)
    assert t_ode.shape == (8, 3, 2)
    np.testing.assert_allclose(t_ode, t_exact, rtol=1e-6)
    # independent of both: quadrature, on a few corners (L = 8, eps = 1e-6 w_star included)
    for d, r, e in [(1, 0, 1), (8, 1, 1), (8, 2, 0), (4, 0, 1)]:
        dd, rr, ee = d, rho.ravel()[r], eps[d - 1, r, e]
        q = quad_time(objective, dd, lam, rr, ee, 0.5 * w_star_by_hand(objective, dd, rr))
        assert t_ode[d - 1, r, e] == pytest.approx(q, rel=1e-6)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ode_critical_time_at_depth8_eps_1e6_and_other_fractions(objective):
    eps = 1e-6
    fraction = np.array([0.1, 0.5, 0.9])
    t_ode = ode.critical_time(objective, 8, 1.0, 1.0, eps, fraction)
    want = [quad_time(objective, 8, 1.0, 1.0, eps, f) for f in fraction]  # w_star = 1
    np.testing.assert_allclose(t_ode, want, rtol=1e-6)


# 2. 1/lam scaling of the ODE result -------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ode_critical_time_scales_as_one_over_lam(objective):
    lam = np.logspace(-8, 8, 9)
    depth = np.array([1, 3, 8])[:, None]
    eps = 1e-4 * w_star_by_hand(objective, depth, 0.7)
    lam_t = lam * ode.critical_time(objective, depth, lam, 0.7, eps)
    np.testing.assert_allclose(lam_t, np.broadcast_to(lam_t[:, 4:5], lam_t.shape), rtol=1e-8)


# 4. ODE trajectories ---------------------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("rel_eps", [1e-2, 1e-6])
@pytest.mark.slow
def test_ode_trajectory_matches_exact_all_depths(objective, rel_eps):
    depth = np.arange(1, 9)
    rho = 1.5
    eps = rel_eps * w_star_by_hand(objective, depth, rho)
    # lam per row so that every row has t_star = 1 (the 1/lam scaling): one shared grid
    lam = theory.critical_time(objective, depth, 1.0, rho, eps)
    ts = np.concatenate([np.linspace(0.0, 0.98, 20), np.linspace(0.99, 1.01, 11), np.linspace(1.05, 4.0, NT - 31)])
    w_ode = ode.trajectory(objective, depth, lam, rho, eps, ts)
    w_exact = theory.trajectory(objective, depth, lam, rho, eps, ts)
    assert w_ode.shape == (8, NT)
    for i, d in enumerate(depth):
        assert mixed_error(objective, d, lam[i], rho, ts, w_ode[i], w_exact[i]) < 1e-6, d
    # pointwise where the problem is well conditioned: the plateau and the tail
    calm = (ts < 0.5) | (ts > 3.0)
    np.testing.assert_allclose(w_ode[:, calm], w_exact[:, calm], rtol=1e-6)
    np.testing.assert_allclose(w_ode[:, -1], w_star_by_hand(objective, depth, rho), rtol=1e-9)
    # and the ODE passes w_star / 2 at t_star = 1
    assert np.all(w_ode[:, 24] < 0.5 * w_star_by_hand(objective, depth, rho))
    assert np.all(w_ode[:, 26] > 0.5 * w_star_by_hand(objective, depth, rho))


@pytest.mark.parametrize("objective, depth", [("jepa", 2), ("mae", 3), ("jepa", 1), ("mae", 1)])
@pytest.mark.slow
def test_ode_trajectory_matches_scipy_radau(objective, depth):
    """An independent stiff solver on dw/dt written out here (moderate eps: Radau in t)."""
    lam, rho = 2.0, 0.8
    eps = 1e-2 * w_star_by_hand(objective, depth, rho)
    t_star = quad_time(objective, depth, lam, rho, eps, 0.5 * w_star_by_hand(objective, depth, rho))
    ts = np.linspace(0.0, 3.0 * t_star, NT)
    ref = solve_ivp(lambda t, y: rhs_by_hand(objective, depth, lam, rho, y), (0.0, ts[-1]), [eps],
                    method="Radau", t_eval=ts, rtol=1e-12, atol=1e-16).y[0]
    w_ode = ode.trajectory(objective, depth, lam, rho, eps, ts)
    assert mixed_error(objective, depth, lam, rho, ts, w_ode, ref) < 1e-6
    np.testing.assert_allclose(w_ode, ref, rtol=1e-5)


# 8. edge cases ------------------------------------------------------------------------------


EDGES = [
    ("jepa", 3, 1.0, 4.0, 1e-3),  # rho > 1: w_star = 64
    ("mae", 2, 1.0, 1.0, 1e-3),  # rho = 1
    ("jepa", 8, 1.0, 0.1, 1e-14),  # w_star = 1e-8, eps tinier
    ("mae", 8, 1.0, 0.05, 1e-6),
    ("jepa", 2, 1e-8, 0.7, 1e-4),
    ("jepa", 2, 1e8, 0.7, 1e-4),
    ("mae", 5, 1e-8, 0.7, 1e-4),
    ("mae", 5, 1e8, 0.7, 1e-4),
    ("jepa", 1, 1.0, 0.5, 1e-12),
    ("mae", 4, 1.0, 0.5, 1e-12),
]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_edge_cases_critical_time(objective):
    rows = [e[1:] for e in EDGES if e[0] == objective]
    depth, lam, rho, eps = (np.array(c) for c in zip(*rows))
    t_ode = ode.critical_time(objective, depth, lam, rho, eps)
    t_exact = theory.critical_time(objective, depth, lam, rho, eps)
    want = [quad_time(objective, d, la, r, e, 0.5 * w_star_by_hand(objective, d, r)) for d, la, r, e in rows]
    np.testing.assert_allclose(t_exact, want, rtol=1e-10)
    np.testing.assert_allclose(t_ode, want, rtol=1e-6)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_edge_cases_trajectory(objective):
    rows = [e[1:] for e in EDGES if e[0] == objective]
    for depth, lam, rho, eps in rows:
        t_star = theory.critical_time(objective, depth, lam, rho, eps)
        ts = np.linspace(0.0, 2.0 * t_star, NT)
        w_ode = ode.trajectory(objective, depth, lam, rho, eps, ts)
        w_exact = theory.trajectory(objective, depth, lam, rho, eps, ts)
        assert mixed_error(objective, depth, lam, rho, ts, w_ode, w_exact) < 1e-6, (depth, lam, rho, eps)
        # points off the plateau and short of the tail, checked by quadrature: t(w_ode(t)) = t
        w_star = w_star_by_hand(objective, depth, rho)
        for k in np.flatnonzero((w_ode > 1.5 * eps) & (w_ode < 0.99 * w_star)):
            assert quad_time(objective, depth, lam, rho, eps, w_ode[k]) == pytest.approx(ts[k], rel=1e-6)


# 7. properties (hypothesis) -------------------------------------------------------------------

params = st.fixed_dictionaries(
    {
        "objective": st.sampled_from(OBJECTIVES),
        "depth": st.integers(1, 8),
        "log_lam": st.floats(-4, 4),
        "log_rho": st.floats(-1, 1),
        "log_rel_eps": st.floats(-9, -0.5),
        "fraction": st.floats(0.05, 0.95),
    }
)


def unpack(p):
    rho = 10 ** p["log_rho"]
    w_star = w_star_by_hand(p["objective"], p["depth"], rho)
    eps = 10 ** p["log_rel_eps"] * w_star * p["fraction"]
    return p["objective"], p["depth"], 10 ** p["log_lam"], rho, eps, p["fraction"], w_star


@settings(max_examples=30, deadline=None)
@given(params)
# a crossing at t ~ 9e-9 (rho = 5.4, depth 7): an absolute tolerance in plain time units lost 1e-4 of it
@example(p={"objective": "jepa", "depth": 7, "log_lam": 0.0, "log_rho": 0.734375, "log_rel_eps": -1.0,
            "fraction": 0.9375})
def test_property_exact_and_ode_critical_times_agree(p):
    objective, depth, lam, rho, eps, fraction, _ = unpack(p)
    t_exact = theory.critical_time(objective, depth, lam, rho, eps, fraction)
    t_ode = ode.critical_time(objective, depth, lam, rho, eps, fraction)
    assert t_ode == pytest.approx(t_exact, rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(params)
@pytest.mark.slow
def test_property_ode_trajectory_rises_inside_bounds(p):
    objective, depth, lam, rho, eps, fraction, w_star = unpack(p)
    t_star = theory.critical_time(objective, depth, lam, rho, eps, fraction)
    ts = np.linspace(0.0, 3.0 * t_star, NT)
    w = ode.trajectory(objective, depth, lam, rho, eps, ts)
    assert w[0] == eps
    assert np.all(w > 0) and np.all(w <= w_star * (1 + 1e-12))
    assert np.all(np.diff(w) >= -1e-12 * w_star)
    assert w[-1] > fraction * w_star


@settings(max_examples=15, deadline=None)
@given(params, st.floats(1.05, 100.0))
def test_property_ode_critical_time_falls_with_lam_and_rises_as_eps_falls(p, factor):
    objective, depth, lam, rho, eps, fraction, _ = unpack(p)
    t = ode.critical_time(objective, depth, [lam, lam * factor, lam], rho, [eps, eps, eps / factor], fraction)
    assert t[1] < t[0] < t[2]


# 6. THE KEYSTONE: gradient flow of the real matrices ----------------------------------------------

D = 3
LAM = np.array([1.5, 2.0, 3.0])
RHO = np.array([0.9, 1.5, 1.2])
EPS = 0.1
N_OUT = 40


def population_loss(params, objective, sxx, sxy, syy):
    """docs/theory.md section 1.2 in closed form over the data distribution.

    With P = V Wbar and target matrix T (sg(Wbar) for JEPA, I for MAE),
    1/2 E||P x - T y||^2 = 1/2 tr(P Sxx P^T) - tr(P Sxy T^T) + 1/2 tr(T Syy T^T),
    Sxy = E[x y^T].  The stop-gradient makes the last term a constant for JEPA."""
    layers, v = params
    wbar = jnp.eye(D)
    for w in layers:  # Wbar = W_L ... W_1
        wbar = w @ wbar
    pred = v @ wbar
    target = jax.lax.stop_gradient(wbar) if objective == "jepa" else jnp.eye(D)
    return (0.5 * jnp.trace(pred @ sxx @ pred.T) - jnp.trace(pred @ sxy @ target.T)
            + 0.5 * jnp.trace(target @ syy @ target.T))


def balanced_init(depth, seed):
    rng = np.random.default_rng(seed)
    rotations = [np.eye(D)] + [special_ortho_group.rvs(D, random_state=rng) for _ in range(depth - 1)] + [np.eye(D)]
    u0 = EPS ** (1.0 / depth)
    layers = tuple(jnp.asarray(u0 * rotations[a] @ rotations[a - 1].T) for a in range(1, depth + 1))
    return (layers, jnp.asarray(u0 * np.eye(D))), rotations


def gradient_flow(objective, depth, etas, every, seed=0):
    """Explicit Euler on jax.grad of the population loss, for each step size in ``etas``
    (vmapped), recording Wbar, V and the layers every ``every`` steps, 2 * N_OUT times."""
    params, rotations = balanced_init(depth, seed)
    sxx, sxy = jnp.diag(LAM / RHO), jnp.diag(LAM)
    syy = jnp.diag(LAM * RHO * 1.5)  # PSD joint covariance: E[y^2] >= lam * rho
    grad = jax.grad(population_loss)

    def run(eta):
        def step(p, _):
            g = grad(p, objective, sxx, sxy, syy)
            return jax.tree_util.tree_map(lambda a, b: a - eta * b, p, g), None

        def block(p, _):
            p, _ = jax.lax.scan(step, p, None, length=every)
            layers, v = p
            wbar = jnp.eye(D)
            for w in layers:
                wbar = w @ wbar
            return p, (wbar, v, jnp.stack(layers))

        return jax.lax.scan(block, params, None, length=2 * N_OUT)[1]

    out = jax.jit(jax.vmap(run))(jnp.asarray(etas))
    return [np.asarray(a) for a in out], rotations


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_per_feature_ode_is_gradient_flow_of_the_matrices(objective, depth):
    horizon = 2.2 * float(np.max(theory.critical_time(objective, depth, LAM, RHO, EPS)))
    h = 1e-3  # fine step; coarse step 2h; both record at t_k = 2h * every * (k + 1)
    every = int(math.ceil(horizon / (2 * h) / N_OUT))
    (wbar, v, layers), rotations = gradient_flow(objective, depth, [2 * h, h], every)
    coarse, fine = wbar[0, :N_OUT], wbar[1, 1::2]  # the same times
    ts = 2 * h * every * np.arange(1, N_OUT + 1)
    exact = np.stack([theory.trajectory(objective, depth, LAM[i], RHO[i], EPS, ts) for i in range(D)], axis=1)

    diag_c, diag_f = np.diagonal(coarse, axis1=1, axis2=2), np.diagonal(fine, axis1=1, axis2=2)
    # Euler is first order: halving the step halves the gap to the ODE (so the gap is
    # discretisation, not a different equation) ...
    err_c, err_f = np.max(np.abs(diag_c / exact - 1)), np.max(np.abs(diag_f / exact - 1))
    assert 1.8 < err_c / err_f < 2.2, (err_c, err_f)
    # ... and Richardson's 2 w(h) - w(2h) removes it to O(h^2)
    richardson = 2 * diag_f - diag_c
    np.testing.assert_allclose(richardson, exact, rtol=1e-4)
    # every feature rose from eps past w_star / 2 within the horizon
    w_star = w_star_by_hand(objective, depth, RHO)
    assert np.all(diag_f[0] < 0.5 * w_star) and np.all(diag_f[-1] > 0.5 * w_star)

    # everything stays diagonal in the feature basis: Wbar and V ...
    off = ~np.eye(D, dtype=bool)
    assert np.max(np.abs(wbar[..., off])) < 1e-10
    assert np.max(np.abs(v[..., off])) < 1e-10
    # ... and each layer stays O_a diag(u) O_{a-1}^T with the common entry u = w^(1/L) = V's
    for a in range(depth):
        core = np.einsum("ji,etjk,kl->etil", rotations[a + 1], layers[:, :, a], rotations[a])
        assert np.max(np.abs(core[..., off])) < 1e-10
        np.testing.assert_allclose(np.diagonal(core, axis1=2, axis2=3), np.diagonal(v, axis1=2, axis2=3), rtol=1e-9)


# 9. validation and solver errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"depth": -1}, "depth"),
        ({"lam": 0.0}, "lam"),
        ({"lam": float("nan")}, "lam"),
        ({"lam": float("inf")}, "lam"),
        ({"rho": -1.0}, "rho"),
        ({"eps": 0.3}, "eps"),
        ({"fraction": 1.0}, "fraction"),
        ({"objective": "simclr"}, "objective"),
    ],
)
def test_ode_bad_input_raises_value_error_naming_the_parameter(kwargs, name):
    args = {"objective": "mae", "depth": 1, "lam": 1.0, "rho": 0.25, "eps": 1e-3, "fraction": 0.5}
    args.update(kwargs)  # w_star = 0.5 for the defaults
    with pytest.raises(ValueError) as err:
        ode.critical_time(**args)
    assert isinstance(err.value, spec.SpecError) and err.value.name == name
    assert str(err.value).startswith(f"{name}:")
    args.pop("fraction")
    if name not in ("eps", "fraction"):  # a trajectory has no fraction and only needs eps < w_star
        with pytest.raises(spec.SpecError, match=f"^{name}:"):
            ode.trajectory(**args, ts=np.linspace(0, 1, NT))


def test_ode_trajectory_rejects_bad_times():
    with pytest.raises(spec.SpecError, match="^ts:"):
        ode.trajectory("jepa", 1, 1.0, 0.5, 1e-3, [0.0, 2.0, 1.0])


@pytest.mark.slow
def test_solver_error_names_parameters_and_max_steps():
    with pytest.raises(ode.SolverError) as err:
        ode.critical_time("jepa", 3, 2.0, 0.8, 1e-6, max_steps=4)
    msg = str(err.value)
    for part in ("objective=jepa", "depth=3", "lam=2", "rho=0.8", "eps=1e-06", "max_steps"):
        assert part in msg, (part, msg)
    with pytest.raises(ode.SolverError, match="max_steps"):
        ode.trajectory("mae", 2, 1.0, 0.8, 1e-6, np.linspace(0, 1e4, NT), max_steps=4)
