"""What a researcher writes today: scipy ``solve_ivp`` on ``dw/dt`` with a terminal event.

These are the baselines of ``bench_sweep.py``.  They integrate the per-feature
equation of docs/theory.md section 2 directly, ``dw/dt = L (lam w^p - sigma2 w^3)`` with ``p = 3 - 1/L`` (JEPA) or
``2 - 1/L`` (MAE), ``w(0) = eps``, and stop at ``w = fraction * w_star`` with a terminal
event (``dense_output`` off; the event root is found on scipy's own interpolant).
Nothing from the package is used except to pick the rows and to score the answers.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.integrate import solve_ivp

__all__ = ["scipy_critical_time", "time_rows"]


def scipy_critical_time(objective, depth, lam, rho, eps, fraction=0.5, *, method="LSODA", rtol=1e-10,
                        atol=1e-16, t_max=1e30, max_wall=None):
    """``t_star`` of one row by ``solve_ivp(method=...)`` with a terminal event.

    ``atol`` is far below ``eps`` (the state starts at ``eps``); ``t_max`` is a horizon
    no plateau reaches, so the event, not the horizon, ends the run.  ``max_wall``
    (seconds) aborts a run that is too slow (RK45 on the stiff tail) and returns NaN."""
    p = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    sigma2 = lam / rho
    w_star = rho ** depth if objective == "jepa" else rho ** (depth / (depth + 1.0))
    target = fraction * w_star
    deadline = None if max_wall is None else time.perf_counter() + max_wall

    def rhs(t, w):
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError
        return depth * (lam * w ** p - sigma2 * w ** 3)

    def event(t, w):
        return w[0] - target

    event.terminal = True
    event.direction = 1.0
    try:
        sol = solve_ivp(rhs, (0.0, t_max), [eps], method=method, rtol=rtol, atol=atol, events=event,
                        dense_output=False)
    except TimeoutError:
        return float("nan"), None
    if sol.status != 1 or not sol.t_events[0].size:
        raise RuntimeError(f"{method} did not reach the event: {sol.message}")
    return float(sol.t_events[0][0]), sol


def time_rows(rows, **kwargs):
    """Per-row wall time (seconds) and ``t_star`` for each ``(objective, depth, lam, rho, eps)``.

    A row where ``solve_ivp`` raises (``brentq``: "f(a) and f(b) must have different signs",
    its event root on the interpolant not bracketed) gets ``t_star = nan``; its time counts."""
    times, values = [], []
    for objective, depth, lam, rho, eps in rows:
        t0 = time.perf_counter()
        try:
            t_star, _ = scipy_critical_time(objective, int(depth), float(lam), float(rho), float(eps), **kwargs)
        except ValueError:  # scipy's event bracketing fails on some very steep rises (JEPA, L = 8, rho = 3)
            t_star = float("nan")
        times.append(time.perf_counter() - t0)
        values.append(t_star)
    return np.asarray(times), np.asarray(values)


def quad_critical_time(objective, depth, lam, rho, eps, fraction=0.5):
    """An independent referee: ``t_star = int_{ln eps}^{ln(f w_star)} dz / (dz/dt)`` by
    adaptive Gauss-Kronrod (``scipy.integrate.quad``, ``epsrel = 1e-13``), ``z = ln w``."""
    from scipy.integrate import quad

    p = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    w_star = rho ** depth if objective == "jepa" else rho ** (depth / (depth + 1.0))
    z0, z1 = np.log(eps), np.log(fraction * w_star)

    def dt_dz(z):
        return np.exp(-(p - 1.0) * z) / (depth * lam * (1.0 - np.exp((3.0 - p) * z) / rho))

    value, _ = quad(dt_dz, z0, z1, epsrel=1e-13, epsabs=0.0, limit=500)
    return value


def scipy_trajectory(objective, depth, lam, rho, eps, t_end, *, method="RK45", rtol=1e-10, atol=1e-16,
                     max_wall=None):
    """``solve_ivp`` of ``dw/dt`` from ``0`` to ``t_end`` (no event): the full trajectory, stiff tail
    included.  Returns ``(w(t_end), sol)``, or ``(nan, None)`` when ``max_wall`` seconds pass."""
    p = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    sigma2 = lam / rho
    deadline = None if max_wall is None else time.perf_counter() + max_wall

    def rhs(t, w):
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError
        return depth * (lam * np.abs(w) ** p - sigma2 * w ** 3)

    try:
        sol = solve_ivp(rhs, (0.0, t_end), [eps], method=method, rtol=rtol, atol=atol, dense_output=False)
    except TimeoutError:
        return float("nan"), None
    return float(sol.y[0, -1]), sol
