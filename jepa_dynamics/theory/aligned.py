r"""One feature from any aligned initialisation, with EMA target and weight decay
(docs/theory.md section 9): gradient flow, float64.

Per feature the network is the layers ``a_1..a_L``, the predictor (JEPA) / decoder (MAE)
entry ``v`` and optionally an EMA target ``w_T``; ``w = a_1 ... a_L``.  The initial state of
:func:`predict` is every layer ``a_l(0) = a0 = eps**(1/L)``, ``v(0) = predictor_init``
(signed; balanced: ``a0``), ``w_T(0) = w(0) = eps``.  Layers that start equal stay equal
(the field is symmetric in them), so ``c = a^2 - v^2`` is the one conserved quantity
(``exp(-2 beta t)`` decay with weight decay ``beta``).

How each row is computed (``docs/theory.md``, section 9, derives every step):

* **balanced, stop-gradient / MAE, no weight decay**: :func:`jepa_dynamics.theory.critical_time`
  (closed form), so today's sweep rows keep their values;
* **JEPA, stop-gradient, no weight decay**: the exact 1-D reduction
  ``dv/dt = (lam - sigma2 v) (v^2 + c)^L``, ``|w| = (v^2 + c)^(L/2)``: the collapse criterion
  decides ``learned``, ``w_inf = (rho^2 + c)^(L/2)``, and ``t*`` is one quadrature in ``v``
  (:func:`_jepa_time`: Gauss-Legendre panels after a substitution that makes the integrand
  smooth and exponentially decaying);
* **MAE, unbalanced, no weight decay**: the same, in whichever of ``v`` and ``a`` keeps its sign
  (:func:`_mae_time`);
* **balanced with weight decay, no EMA target**: ``du/dt = g(u) - beta u``, learned iff ``a0`` is
  above the unstable fixed point ``u_-``, ``t*`` one quadrature (:func:`_decay_time`);
* **everything else** (an EMA target; unbalanced with weight decay): ``w_inf``'s magnitude from
  the fixed-point equations (:func:`fixed_point_magnitude`), ``learned``, its sign and ``t*``
  from an integration of ``(a, v, w_T)`` (:func:`_flow`).

``lr > 0`` rows iterate the exact gradient-descent map (:mod:`jepa_dynamics.theory.gd`) to the same
level ``fraction * |w_inf|`` (``w_inf`` is always the gradient-flow limit).
"""


from typing import NamedTuple

import numpy as np

from . import spec, balanced as theory
from ._aligned_times import _decay_time, _jepa_time, _mae_time, conserved

__all__ = ["Prediction", "predict", "conserved", "collapses", "fixed_point_magnitude", "weight_decay_threshold",
           "weight_decay_fixed_points", "field", "check_start"]


class Prediction(NamedTuple):
    """Per-row results of :func:`predict` (arrays of the broadcast shape)."""

    w_inf: np.ndarray
    learned: np.ndarray
    critical_time: np.ndarray
    critical_step: np.ndarray


# --- the field and its invariants ------------------------------------------------------------------------

def field(objective: str, depth: int, lam, rho, a, v, w_t=None, *, ema_rate=np.inf, weight_decay=0.0):
    """``(da_l/dt for each layer, dv/dt, dw_T/dt)`` of section 10 for layers ``a`` (shape ``(L,)``).

    A plain NumPy reference (no validation); ``w_t`` is used only with a finite ``ema_rate``."""
    a = np.asarray(a, dtype=np.float64)
    w = np.prod(a)
    sigma2 = lam / rho
    target = w if not np.isfinite(ema_rate) else w_t
    r = sigma2 * v * w - (lam if objective == "mae" else lam * target)
    others = np.array([np.prod(np.delete(a, l)) for l in range(a.size)])
    da = -others * v * r - weight_decay * a
    dv = -w * r - weight_decay * v
    dwt = ema_rate * (w - w_t) if np.isfinite(ema_rate) else 0.0
    return da, dv, dwt


def collapses(objective: str, depth, rho, eps, predictor_init):
    """Section 10's collapse criterion (stop-gradient JEPA or MAE, no weight decay, equal layers).

    JEPA: ``v`` moves monotonically to ``rho``; the feature collapses iff ``v^2 + c`` reaches 0
    on the way: ``v0 < 0`` and ``c <= 0``, or ``v0 > rho`` and ``rho^2 + c <= 0`` (``c = 0``
    with ``v0 < 0``: ``v -> 0`` and ``w -> 0`` asymptotically, a boundary the theory's strict
    ``c < 0`` leaves out).  MAE, ``L >= 2``: ``a = 0`` is invariant and ``v w`` rises to
    ``rho`` unless ``v0 <= -a0`` (then ``a -> 0``).  MAE, ``L = 1``: only ``v0 = -a0``
    collapses (the stable manifold of the origin); ``v0 < -a0`` is learned with ``w_inf < 0``."""
    depth = np.asarray(depth)
    a0 = np.asarray(eps, dtype=np.float64) ** (1.0 / depth)
    v0 = np.asarray(predictor_init, dtype=np.float64)
    c = conserved(a0, v0)
    if objective == "jepa":
        return ((v0 < 0) & (c <= 0)) | ((v0 > rho) & (np.asarray(rho) ** 2 + c <= 0))
    return np.where(depth >= 2, v0 <= -a0, v0 == -a0)


# --- fixed points ----------------------------------------------------------------------------------------

def _bisect(func, lo, hi, iterations: int = 200):
    """Vectorised bisection for a root of ``func`` increasing or decreasing on ``[lo, hi]``."""
    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    f_lo = func(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        same = np.sign(func(mid)) == np.sign(f_lo)
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def weight_decay_threshold(objective: str, depth, lam, rho):
    """Largest ``beta`` for which balanced dynamics have a non-zero fixed point.

    JEPA: ``lam rho^(2L-1) (2L-1)^(2L-1) / (2L)^(2L)`` (the maximum of ``u^(2L-1) (lam - sigma2 u)``);
    MAE: the maximum of ``u^(L-1) (lam - sigma2 u^(L+1))``, ``lam (L+1)/(2L) u_m^(L-1)`` at
    ``u_m^(L+1) = (L-1) rho / (2L)`` (``lam`` for ``L = 1``)."""
    depth = np.asarray(depth, dtype=np.float64)
    lam, rho = np.asarray(lam, dtype=np.float64), np.asarray(rho, dtype=np.float64)
    if objective == "jepa":
        n = 2 * depth - 1
        return lam * rho**n * n**n / (2 * depth) ** (2 * depth)
    u_m = ((depth - 1) * rho / (2 * depth)) ** (1.0 / (depth + 1))
    return np.where(depth == 1, lam, lam * (depth + 1) / (2 * depth) * u_m ** (depth - 1))


def weight_decay_fixed_points(objective: str, depth, lam, rho, beta):
    """``(u_minus, u_plus)``: the balanced non-zero fixed points of ``du/dt = g(u) - beta u``
    (unstable, stable); ``nan`` where ``beta >= threshold``.  ``u_minus = 0`` when ``beta = 0``."""
    depth = np.asarray(depth, dtype=np.float64)
    lam, rho, beta = (np.asarray(x, dtype=np.float64) for x in (lam, rho, beta))
    sigma2 = lam / rho
    if objective == "jepa":
        u_m = (2 * depth - 1) * rho / (2 * depth)
        u_top = rho

        def h(u):
            return u ** (2 * depth - 1) * (lam - sigma2 * u) - beta
    else:
        u_m = np.where(depth == 1, 0.0, ((depth - 1) * rho / (2 * depth)) ** (1.0 / (depth + 1)))
        u_top = rho ** (1.0 / (depth + 1))

        def h(u):
            return u ** (depth - 1) * (lam - sigma2 * u ** (depth + 1)) - beta
    ok = beta < weight_decay_threshold(objective, depth, lam, rho)
    with np.errstate(all="ignore"):
        plus = np.where(beta == 0, u_top, _bisect(h, u_m, u_top))
        minus = np.where(beta == 0, 0.0, _bisect(h, np.zeros_like(u_m), u_m))
    return np.where(ok, minus, np.nan), np.where(ok, plus, np.nan)


def fixed_point_magnitude(objective: str, depth, lam, rho, eps, predictor_init, weight_decay=0.0):
    """``|w_inf|`` of a learned feature (``nan`` where no non-zero fixed point exists).

    No weight decay: JEPA ``(rho^2 + c)^(L/2)``; MAE ``a^L`` at the root of
    ``a^L sqrt(a^2 - c) = rho`` (``v w = rho`` on the conserved hyperbola).  Weight decay: every
    non-zero fixed point is balanced (``a^2 = v^2``, ``docs/theory.md``), ``u_plus^L``.  The EMA
    target does not move fixed points.  Balanced rows without weight decay return
    :func:`jepa_dynamics.theory.spec.fixed_point` exactly."""
    depth = np.asarray(depth, dtype=np.float64)
    lam, rho, eps, v0, beta = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64)
                                                     for x in (lam, rho, eps, predictor_init, weight_decay)))
    depth = np.broadcast_to(depth, lam.shape)
    a0 = eps ** (1.0 / depth)
    c = conserved(a0, v0)
    with np.errstate(all="ignore"):
        if objective == "jepa":
            free = (rho**2 + c) ** (depth / 2)
            free = np.where(rho**2 + c > 0, free, np.nan)
        else:
            lo = np.sqrt(np.maximum(c, 0.0))
            hi = np.sqrt(np.maximum(c, 0.0) + rho ** (2.0 / (depth + 1)))
            a = _bisect(lambda x: depth * np.log(x) + 0.5 * np.log(np.maximum(x**2 - c, 0.0)) - np.log(rho), lo, hi)
            free = a**depth
        free = np.where(v0 == a0, spec.fixed_point(objective, depth, rho), free)
        decayed = np.full(lam.shape, np.nan)
        wd = beta > 0
        if wd.any():
            decayed[wd] = weight_decay_fixed_points(objective, depth[wd], lam[wd], rho[wd], beta[wd])[1] ** depth[wd]
    return np.where(wd, decayed, free)


# --- everything else: an IMEX Runge-Kutta on a Sundman clock -------------------------------------------

def _flow(objective, depth, lam, rho, a0, v0, kappa, beta, level):
    """``(crossed, t_cross, sign)`` per row: does ``|w|`` reach ``level`` under gradient flow, when,
    and with which sign of ``w`` (see :mod:`jepa_dynamics.theory._aligned_flow`)."""
    from . import _aligned_flow

    return _aligned_flow.first_crossing(objective, depth, lam, rho, a0, v0, kappa, beta, level)


# --- the entry point -------------------------------------------------------------------------------------

def _validate(objective, depth, lam, rho, eps, predictor_init, ema_rate, weight_decay, lr, fraction):
    spec.check_objective(objective)
    depth = spec.check_depths(depth)
    lam, rho = spec.check_lam(lam), spec.check_rho(rho)
    eps = spec.check_positive(eps, "eps")
    fraction = spec.check_unit_interval(fraction, "fraction")
    v0 = None if predictor_init is None else spec.check_finite(predictor_init, "predictor_init")
    kappa = np.asarray(ema_rate, dtype=np.float64)
    if np.any(np.isnan(kappa)) or np.any(kappa <= 0):
        raise spec.SpecError("ema_rate", "must be > 0 (inf for a stop-gradient target)")
    if objective == "mae" and np.any(np.isfinite(kappa)):
        raise spec.SpecError("ema_rate", "only JEPA has an EMA target (leave it at inf for MAE)")
    beta = spec.check_nonnegative(weight_decay, "weight_decay")
    eta = spec.check_nonnegative(lr, "lr")
    with np.errstate(invalid="ignore"):
        bad = (eta > 0) & np.isfinite(kappa) & (eta * np.where(np.isfinite(kappa), kappa, 0.0) > 1)
    if np.any(bad):
        raise spec.SpecError("ema_rate", "must be <= 1/lr with gradient descent (tau = 1 - lr * ema_rate >= 0)")
    return depth, lam, rho, eps, v0, kappa, beta, eta, fraction


def _fate(objective, depth, lam, rho, eps, v0, kappa, beta, balanced):
    """``(learned, |w_inf| candidate, sign, plain, decays)`` before any integration.

    ``plain``: stop-gradient JEPA or MAE without weight decay (collapse criterion); ``decays``:
    balanced with weight decay and no EMA target, the 1-D flow ``du/dt = g(u) - beta u``, learned
    iff ``a0 > u_-``.  The fate of every other row is decided by integration."""
    a0 = eps ** (1.0 / depth)
    plain = ~np.isfinite(kappa) & (beta == 0)
    decays = balanced & ~np.isfinite(kappa) & (beta > 0)
    magnitude = fixed_point_magnitude(objective, depth, lam, rho, eps, v0, beta)
    magnitude = np.where(balanced & plain, spec.fixed_point(objective, depth, rho), magnitude)
    learned = np.isfinite(magnitude) & (magnitude > 0)
    learned = np.where(plain, learned & ~collapses(objective, depth, rho, eps, v0), learned)
    if decays.any():
        u_minus, _ = weight_decay_fixed_points(objective, depth, lam, rho, beta)
        learned = np.where(decays, learned & (a0 > np.nan_to_num(u_minus, nan=np.inf)), learned)
    sign = np.ones(depth.size)
    if objective == "mae":
        sign = np.where(plain & (depth == 1) & (v0 < -a0), -1.0, sign)
    return learned, magnitude, sign, plain, decays


def _check_start(objective, depth, rho, eps, v0, learned, level, balanced):
    """A learned feature must start below ``fraction * |w_inf|`` (rows whose fate is decided by
    integration are checked against their non-zero fixed point, before integration)."""
    above = learned & (eps >= level)
    if above.any():
        i = int(np.flatnonzero(above)[0])
        name = "eps" if balanced[i] else "predictor_init"
        raise spec.SpecError(
            name, f"the feature starts at or above fraction * |w_inf| = {level[i]:.6g} (|w(0)| = eps = {eps[i]:.6g}, "
                  f"predictor_init = {v0[i]:.6g}, objective={objective} depth={int(depth[i])} rho={rho[i]:.6g}); "
                  f"t* is undefined: use a smaller eps or another predictor_init")


def check_start(objective: str, depth, lam, rho, eps, predictor_init=None, *, ema_rate=np.inf, weight_decay=0.0,
                fraction=0.5) -> None:
    """Raise :class:`~jepa_dynamics.theory.spec.SpecError` if any row of :func:`predict` would start at or
    above ``fraction * |w_inf|`` (cheap: no integration).  Arguments broadcast; inputs validated."""
    depth, lam, rho, eps, v0, kappa, beta, _, fraction = _validate(
        objective, depth, lam, rho, eps, predictor_init, ema_rate, weight_decay, 0.0, fraction)
    parts = [np.asarray(depth), lam, rho, eps, kappa, beta, fraction] + ([] if v0 is None else [v0])
    shape = np.broadcast_shapes(*(np.shape(p) for p in parts))
    flat = lambda x: np.broadcast_to(np.asarray(x), shape).ravel()  # noqa: E731
    depth, lam, rho, eps, kappa, beta, fraction = (flat(x) for x in (depth, lam, rho, eps, kappa, beta, fraction))
    depth = depth.astype(np.int64)
    a0 = eps ** (1.0 / depth)
    v0 = a0 if v0 is None else flat(v0).astype(np.float64)
    balanced = v0 == a0
    learned, magnitude, *_ = _fate(objective, depth, lam, rho, eps, v0, kappa, beta, balanced)
    _check_start(objective, depth, rho, eps, v0, learned, fraction * magnitude, balanced)


def predict(objective: str, depth, lam, rho, eps, predictor_init=None, *, ema_rate=np.inf, weight_decay=0.0,
            lr=0.0, fraction=0.5, max_steps: int | None = None) -> Prediction:
    """``w_inf``, ``learned``, ``critical_time`` and ``critical_step`` of one feature per row.

    Arguments broadcast (NumPy rules).  ``predictor_init=None`` is balanced (``eps**(1/depth)``);
    ``ema_rate`` is kappa (``inf`` = stop-gradient, JEPA only); ``weight_decay`` beta; ``lr`` eta
    (``0`` = gradient flow).  ``critical_time`` is the gradient-flow ``t*`` (``lr = 0``) or
    ``lr`` times the interpolated step count (``lr > 0``); ``inf`` when not learned.  ``max_steps``
    (``lr > 0`` only): follow the GD map that many steps at most, as a run of that length does; a
    learned row that has not crossed by then gets ``nan`` (beyond the horizon), not a time -- the
    map costs one step per step, and a plateau of 10^7 steps is not worth computing for a run of
    10^4.  Raises
    :class:`~jepa_dynamics.theory.spec.SpecError` for bad input, including a learned feature that starts at
    or above ``fraction * |w_inf|``."""
    depth, lam, rho, eps, v0, kappa, beta, eta, fraction = _validate(
        objective, depth, lam, rho, eps, predictor_init, ema_rate, weight_decay, lr, fraction)
    parts = [np.asarray(depth), lam, rho, eps, kappa, beta, eta, fraction] + ([] if v0 is None else [v0])
    shape = np.broadcast_shapes(*(np.shape(p) for p in parts))
    flat = lambda x: np.broadcast_to(np.asarray(x), shape).ravel()  # noqa: E731
    depth, lam, rho, eps, kappa, beta, eta, fraction = (flat(x) for x in
                                                        (depth, lam, rho, eps, kappa, beta, eta, fraction))
    depth = depth.astype(np.int64)
    a0 = eps ** (1.0 / depth)
    balanced_given = np.zeros(depth.size, bool) if v0 is not None else np.ones(depth.size, bool)
    v0 = a0.copy() if v0 is None else flat(v0).astype(np.float64)
    balanced = balanced_given | (v0 == a0)
    n = depth.size
    learned, magnitude, sign, plain, decays = _fate(objective, depth, lam, rho, eps, v0, kappa, beta, balanced)
    level = fraction * magnitude
    _check_start(objective, depth, rho, eps, v0, learned, level, balanced)

    t_star = np.full(n, np.inf)
    # 1. balanced, plain: today's closed form
    m = plain & balanced & learned & (eta == 0)
    if m.any():
        t_star[m] = theory.critical_time_unchecked(objective, depth[m], lam[m], rho[m], eps[m], fraction[m])
    # 2. unbalanced, stop-gradient / MAE, no weight decay: one quadrature of the 1-D reduction
    m = plain & ~balanced & learned & (eta == 0)
    if m.any():
        time = _jepa_time if objective == "jepa" else _mae_time
        t_star[m] = time(depth[m], lam[m], rho[m], a0[m], v0[m], level[m])
    # 3. balanced with weight decay, no EMA target: one quadrature of du/dt = g(u) - beta u
    m = decays & learned & (eta == 0)
    if m.any():
        t_star[m] = _decay_time(objective, depth[m], lam[m], rho[m], a0[m], beta[m], level[m])
    # 4. the rest (EMA target; unbalanced with weight decay): integrate (also decides their fate,
    #    for GD rows too)
    m = learned & ~plain & ~decays
    if m.any():
        crossed, t_cross, s = _flow(objective, depth[m], lam[m], rho[m], a0[m], v0[m], kappa[m], beta[m], level[m])
        learned, sign = learned.copy(), sign.copy()
        learned[m], sign[m] = crossed, s
        t_star[m & (eta == 0)] = np.where(crossed, t_cross, np.inf)[eta[m] == 0]

    step = np.full(n, np.nan)
    m = eta > 0
    if m.any():
        from . import gd

        step[m] = np.inf
        g = m & learned
        if g.any():
            cap = 10**9 if max_steps is None else spec.check_positive_int(max_steps, "max_steps")
            k, run = gd.critical_steps(objective, depth[g], lam[g], rho[g], a0[g], v0[g], level[g], lr=eta[g],
                                       ema_rate=kappa[g], weight_decay=beta[g], max_steps=cap)
            if max_steps is not None:  # not crossed within the horizon: unknown, not never
                k = np.where(np.isinf(k) & (run >= cap), np.nan, k)
            step[g] = k
        t_star = np.where(m, eta * step, t_star)

    learned = learned.astype(bool)
    w_inf = np.where(learned, sign * magnitude, 0.0)
    t_star = np.where(learned, t_star, np.inf)
    step = np.where(learned | (eta == 0), step, np.inf)
    return Prediction(w_inf.reshape(shape), learned.reshape(shape), t_star.reshape(shape), step.reshape(shape))
