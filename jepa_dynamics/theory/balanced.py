r"""Closed forms for the per-feature dynamics of deep linear JEPA and MAE.

Everything here is plain float64 NumPy, vectorised over ``lam``, ``rho``, ``eps``,
``fraction`` (and over ``depth`` by grouping), so a sweep of millions of rows needs
no compilation.  Units: gradient-flow time ``t`` (docs/theory.md section 1.4).

With ``w`` the encoder's response to one feature and ``u = w**(1/L)`` (``L`` =
``depth``), gradient flow from the balanced small initialisation ``w(0) = eps`` is

.. math::

    \text{JEPA:}\quad \dot w = L(\lambda w^{3-1/L} - \sigma^2 w^3)
        \iff \dot u = u^{2L}(\lambda - \sigma^2 u),

    \text{MAE:}\quad \dot w = L(\lambda w^{2-1/L} - \sigma^2 w^3)
        \iff \dot u = u^{L}(\lambda - \sigma^2 u^{L+1}),

with ``sigma2 = lam / rho``.  Both are ``dw/dt = L (lam w^p - sigma2 w^3)`` with the
exponent ``p`` of :func:`exponent`.

Exact time to reach ``w`` (``x = u / u_star``, ``u_star`` the fixed point of ``u``):

* JEPA, ``u_star = rho``:
  ``t = rho^{-(2L-1)} / lam * [ sum_{j=1}^{2L-1} (x0^{-j} - x^{-j}) / j
  + ln(x / x0) + ln((1 - x0) / (1 - x)) ]`` (partial fractions in ``u``; the
  reference formula with ``j = 2L - 1 - k``).
* MAE, ``u_star = rho^{1/(L+1)}``: ``t = u_star^{1-L} / lam * [ A + F(x) - F(x0) ]``
  with ``A = (x0^{1-L} - x^{1-L}) / (L-1)`` (``ln(x/x0)`` for ``L = 1``) and
  ``F(y) = -(1/n) sum_k Re[ w_k^2 ln(w_k - y) ]`` over the ``n = L + 1`` roots of
  unity ``w_k``, the partial-fraction primitive of ``y / (1 - y^n)``.

``docs/theory.md`` derives all of this.
"""

from __future__ import annotations

import numpy as np

from . import spec

__all__ = [
    "exponent",
    "sigma2",
    "fixed_point",
    "rhs",
    "rhs_u",
    "time_to",
    "critical_time",
    "critical_time_asymptotic",
    "critical_time_limit_constant",
    "trajectory",
]

fixed_point = spec.fixed_point


def exponent(objective: str, depth):
    """``p`` in ``dw/dt = L (lam w^p - sigma2 w^3)``: JEPA ``3 - 1/L``, MAE ``2 - 1/L``."""
    depth = np.asarray(depth, dtype=np.float64)
    return (3.0 if objective == "jepa" else 2.0) - 1.0 / depth


def sigma2(lam, rho):
    """Context variance ``sigma2 = lam / rho``."""
    return np.asarray(lam, dtype=np.float64) / np.asarray(rho, dtype=np.float64)


def rhs(objective: str, w, depth, lam, rho):
    """``dw/dt`` of docs/theory.md section 2 (no validation; vectorised)."""
    depth = np.asarray(depth, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return depth * (lam * w ** exponent(objective, depth) - sigma2(lam, rho) * w**3)


def rhs_u(objective: str, u, depth, lam, rho):
    """``du/dt`` for the common per-layer entry ``u = w**(1/L)``."""
    depth = np.asarray(depth, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    s2 = sigma2(lam, rho)
    if objective == "jepa":
        return u ** (2 * depth) * (lam - s2 * u)
    return u**depth * (lam - s2 * u ** (depth + 1))


def _u_star(objective: str, depth: int, rho):
    return rho if objective == "jepa" else rho ** (1.0 / (depth + 1))


def _jepa_scaled(depth: int, log_x0, log_x, log_rho):
    """``lam * t`` for JEPA, summed in a form that neither overflows nor cancels."""
    n = 2 * depth - 1
    x0 = np.exp(log_x0)
    x = np.exp(log_x)
    acc = (log_x - log_x0 + np.log1p(-x0) - np.log1p(-x)) * np.exp(-n * log_rho)
    for j in range(1, n + 1):
        # rho^{-n} (x0^{-j} - x^{-j}) / j = -expm1(j ln(x0/x)) * exp(-j ln x0 - n ln rho) / j
        acc = acc - np.expm1(j * (log_x0 - log_x)) * np.exp(-j * log_x0 - n * log_rho) / j
    return acc


def _mae_primitive(n: int, y):
    """``F(y) = -(1/n) sum_k Re[w_k^2 ln(w_k - y)]``, ``d F / dy = y / (1 - y^n)``."""
    k = np.arange(n)
    roots = np.exp(2j * np.pi * k / n)
    y = np.asarray(y, dtype=np.float64)[..., None]
    return -np.sum(np.real(roots**2 * np.log(roots - y)), axis=-1) / n


def _mae_scaled(depth: int, log_x0, log_x, log_ustar):
    """``lam * t`` for MAE."""
    if depth == 1:
        divergent = log_x - log_x0
    else:
        # (x0^{1-L} - x^{1-L}) / (L-1), without cancellation when x is near x0
        divergent = -np.expm1((depth - 1) * (log_x0 - log_x)) * np.exp((1 - depth) * log_x0) / (depth - 1)
    bounded = _mae_primitive(depth + 1, np.exp(log_x)) - _mae_primitive(depth + 1, np.exp(log_x0))
    return np.exp((1 - depth) * log_ustar) * (divergent + bounded)


def _by_depth(func, depth, *arrays):
    """Apply ``func(int_depth, *arrays_of_that_depth)`` for each distinct depth."""
    depth_arr = np.asarray(depth)
    shape = np.broadcast_shapes(depth_arr.shape, *(np.shape(a) for a in arrays))
    depth_b = np.broadcast_to(depth_arr, shape)
    arrays_b = [np.broadcast_to(np.asarray(a, dtype=np.float64), shape) for a in arrays]
    if depth_arr.ndim == 0:
        return func(int(depth_arr), *arrays_b)
    out = np.empty(shape, dtype=np.float64)
    for d in np.unique(depth_b):
        mask = depth_b == d
        out[mask] = func(int(d), *(a[mask] for a in arrays_b))
    return out


def _time_to_unchecked(objective: str, depth, lam, rho, eps, w):
    """Exact ``t(w)`` without validation (caller guarantees ``eps <= w < w_star``)."""
    lam = np.asarray(lam, dtype=np.float64)

    def one(d, rho_, eps_, w_):
        log_rho = np.log(rho_)
        log_ustar = log_rho if objective == "jepa" else log_rho / (d + 1)
        log_x0 = np.log(eps_) / d - log_ustar
        log_x = np.log(w_) / d - log_ustar
        if objective == "jepa":
            return _jepa_scaled(d, log_x0, log_x, log_rho)
        return _mae_scaled(d, log_x0, log_x, log_ustar)

    with np.errstate(over="ignore"):
        return _finite_or_raise(_by_depth(one, depth, rho, eps, w) / lam, objective, depth, lam, rho, eps)


def _finite_or_raise(t, objective, depth, lam, rho, eps):
    """``t`` if every entry is a finite float64, else a one-line error naming the first row."""
    t = np.asarray(t)
    bad = ~np.isfinite(t)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        d, lam_, rho_, eps_ = (np.broadcast_to(np.asarray(a), t.shape).ravel()[i] for a in (depth, lam, rho, eps))
        raise spec.SpecError(
            "eps",
            f"the time to learn overflows float64 for objective={objective} depth={int(d)} lam={lam_:.6g} "
            f"rho={rho_:.6g} eps={eps_:.6g} (the plateau lasts ~eps^-(2-1/L) / lam); use a larger eps or lam",
        )
    return t


def validate(objective: str, depth, lam, rho, eps, fraction=0.5):
    """Check one problem or a broadcastable grid of them (see :mod:`jepa_dynamics.theory.spec`).

    Returns ``(depth, lam, rho, eps, fraction)`` as int / float64 arrays; raises
    :class:`~jepa_dynamics.theory.spec.SpecError` (a ``ValueError``) naming the first bad value."""
    spec.check_objective(objective)
    depth = spec.check_depths(depth)
    lam = spec.check_lam(lam)
    rho = spec.check_rho(rho)
    spec.check_sigma2(lam, rho)
    fraction = spec.check_unit_interval(fraction, "fraction")
    eps = spec.check_eps(eps, objective, depth, rho, fraction)
    return depth, lam, rho, eps, fraction


def time_to(objective: str, depth, lam, rho, eps, w):
    """Exact gradient-flow time at which the response first equals ``w``.

    Requires ``eps <= w < w_star``: the response rises monotonically from ``eps``
    towards ``w_star`` and reaches it only as ``t -> infinity``."""
    spec.check_objective(objective)
    depth = spec.check_depths(depth)
    lam, rho = spec.check_lam(lam), spec.check_rho(rho)
    w_star = fixed_point(objective, depth, rho)
    eps = spec.check_eps(eps, objective, depth, rho, 1.0)
    w = spec.check_positive(w, "w")
    if np.any(w < eps) or np.any(w >= w_star):
        raise spec.SpecError("w", "must satisfy eps <= w < w_star (the response never leaves that range)")
    return _time_to_unchecked(objective, depth, lam, rho, eps, w)


def critical_time(objective: str, depth, lam, rho, eps, fraction=0.5):
    """Exact critical time ``t_star``: first time at which ``w = fraction * w_star``.

    Vectorised (NumPy broadcasting) over every argument but ``objective``.
    Raises ``ValueError`` when ``eps >= fraction * w_star`` (undefined) or any
    parameter is out of range."""
    depth, lam, rho, eps, fraction = validate(objective, depth, lam, rho, eps, fraction)
    return critical_time_unchecked(objective, depth, lam, rho, eps, fraction)


def critical_time_unchecked(objective: str, depth, lam, rho, eps, fraction=0.5):
    """:func:`critical_time` without validation, for callers that validated already."""
    w = np.asarray(fraction, dtype=np.float64) * fixed_point(objective, depth, rho)
    return _time_to_unchecked(objective, depth, lam, rho, eps, w)


def critical_time_asymptotic(objective: str, depth, lam, rho, eps, fraction=0.5, order: str = "divergent"):
    """Small-``eps`` asymptotics of ``t_star``.

    ``order="leading"``: the leading term, JEPA ``eps^{-(2L-1)/L} / ((2L-1) lam)``,
    MAE ``eps^{-(L-1)/L} / ((L-1) lam)`` for ``L >= 2`` and ``ln(1/eps) / lam`` for
    ``L = 1``.  Neither depends on ``rho``.

    ``order="divergent"`` (the default, the ``critical_time_asymptotic`` column): every
    term that diverges as ``eps -> 0``.  JEPA: the full series
    ``rho^{-(2L-1)}/lam [ sum_{j=1}^{2L-1} rho^j eps^{-j/L} / j + ln(rho / eps^{1/L}) ]``,
    whose sub-leading terms carry ``rho`` (more of them the deeper the encoder).
    MAE: ``eps^{-(L-1)/L} / ((L-1) lam)`` (``L >= 2``, the leading term alone) and
    ``ln(rho^{1/2} / eps) / lam`` (``L = 1``).  ``t_star`` minus this tends to the finite
    constant :func:`critical_time_limit_constant`.  ``fraction`` enters neither form but
    is validated."""
    depth, lam, rho, eps, fraction = validate(objective, depth, lam, rho, eps, fraction)
    spec.check_choice(order, ("leading", "divergent"), "order")

    def one(d, lam_, rho_, eps_):
        log_eps = np.log(eps_)
        if objective == "jepa":
            n = 2 * d - 1
            if order == "leading":
                return np.exp(-n / d * log_eps) / (n * lam_)
            log_rho = np.log(rho_)
            acc = (log_rho - log_eps / d) * np.exp(-n * log_rho)
            for j in range(1, n + 1):
                acc = acc + np.exp((j - n) * log_rho - j / d * log_eps) / j
            return acc / lam_
        if d == 1:
            if order == "leading":
                return -log_eps / lam_
            return (0.5 * np.log(rho_) - log_eps) / lam_
        return np.exp((1 - d) / d * log_eps) / ((d - 1) * lam_)

    with np.errstate(over="ignore"):
        return _finite_or_raise(_by_depth(one, depth, lam, rho, eps), objective, depth, lam, rho, eps)


def critical_time_limit_constant(objective: str, depth, lam, rho, fraction=0.5):
    """``lim_{eps -> 0} [t_star - critical_time_asymptotic(order="divergent")]``.

    JEPA: ``rho^{-(2L-1)}/lam [ -sum_j x^{-j}/j + ln x - ln(1 - x) ]``; MAE:
    ``u_star^{1-L}/lam [ -x^{1-L}/(L-1) + F(x) - F(0) ]`` (``ln x`` for ``L = 1``),
    with ``x = fraction^{1/L}`` (JEPA) or ``fraction^{1/L}`` of ``u_star`` (MAE)."""
    spec.check_objective(objective)
    depth = spec.check_depths(depth)
    lam, rho = spec.check_lam(lam), spec.check_rho(rho)
    fraction = spec.check_unit_interval(fraction, "fraction")

    def one(d, lam_, rho_, f_):
        log_x = np.log(f_) / d
        x = np.exp(log_x)
        if objective == "jepa":
            n = 2 * d - 1
            acc = log_x - np.log1p(-x)
            for j in range(1, n + 1):
                acc = acc - np.exp(-j * log_x) / j
            return np.exp(-n * np.log(rho_)) * acc / lam_
        log_ustar = np.log(rho_) / (d + 1)
        div = log_x if d == 1 else -np.exp((1 - d) * log_x) / (d - 1)
        bounded = _mae_primitive(d + 1, x) - _mae_primitive(d + 1, 0.0)
        return np.exp((1 - d) * log_ustar) * (div + bounded) / lam_

    return _by_depth(one, depth, lam, rho, fraction)


def trajectory(objective: str, depth, lam, rho, eps, ts):
    """Exact ``w(t)`` on the times ``ts`` (shape ``(T,)``), by inverting :func:`time_to`.

    The parameters broadcast to a batch shape ``B``; the result has shape ``B + (T,)``.
    Inversion is a vectorised bisection on ``logit(x)``, ``x = u / u_star``, to full
    float64 resolution (100 halvings)."""
    spec.check_objective(objective)
    depth = spec.check_depths(depth)
    lam, rho = spec.check_lam(lam), spec.check_rho(rho)
    eps = spec.check_eps(eps, objective, depth, rho, 1.0)  # start below w_star
    ts = spec.check_nonnegative(ts, "ts")
    if ts.ndim != 1:
        raise spec.SpecError("ts", "must be a one-dimensional array of times")
    batch = np.broadcast_shapes(np.shape(depth), lam.shape, rho.shape, eps.shape)

    def one(d, lam_, rho_, eps_):
        log_rho = np.log(rho_)[:, None]
        log_ustar = log_rho if objective == "jepa" else log_rho / (d + 1)
        log_x0 = np.log(eps_)[:, None] / d - log_ustar
        with np.errstate(over="ignore"):  # lam * t past float64: far beyond the plateau, bisects to w_star
            target = lam_[:, None] * ts[None, :]
        scaled = _jepa_scaled if objective == "jepa" else _mae_scaled
        third = log_rho if objective == "jepa" else log_ustar
        lo = np.broadcast_to(log_x0 - np.log1p(-np.exp(log_x0)), target.shape).copy()  # logit(x0)
        hi = np.full(target.shape, 40.0)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            log_x = -np.logaddexp(0.0, -mid)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_mid = scaled(d, log_x0, log_x, third)
            below = t_mid < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        log_x = -np.logaddexp(0.0, -0.5 * (lo + hi))
        # x <= 1, but exp(d (log_x + log_ustar)) can round one ulp above w_star: clip
        w = np.minimum(np.exp(d * (log_x + log_ustar)), fixed_point(objective, d, rho_)[:, None])
        return np.where(ts[None, :] == 0, eps_[:, None], w)

    flat = [np.broadcast_to(a, batch).ravel() for a in (np.asarray(depth), lam, rho, eps)]
    depth_flat = flat[0]
    out = np.empty((depth_flat.size, ts.size))
    for d in np.unique(depth_flat):
        m = depth_flat == d
        out[m] = one(int(d), flat[1][m], flat[2][m], flat[3][m])
    return out.reshape(batch + (ts.size,))
