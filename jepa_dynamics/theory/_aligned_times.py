"""Critical times of one feature where its flow is one-dimensional (docs/theory.md section 9).

Gauss-Legendre quadrature of the exact time integrals: JEPA and MAE from any aligned start (their
conserved ``c = a^2 - v^2`` makes the row a 1-D flow), and weight decay without EMA; vectorised in
chunks of rows."""

from __future__ import annotations

import functools

import numpy as np


def conserved(a, v):
    """``c_l = a_l^2 - v^2`` (constant under gradient flow without weight decay)."""
    with np.errstate(over="ignore"):  # |v| beyond ~1e154: c = -inf, the limit the collapse criterion needs
        return np.asarray(a, dtype=np.float64) ** 2 - np.asarray(v, dtype=np.float64) ** 2


# --- one quadrature where the row is a 1-D flow ---------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(10)
_CHUNK = 2048


def _chunked(block, *columns):
    """``block`` over row chunks of ``_CHUNK`` (bounded memory: nodes are ``rows x panels x 10``)."""
    out = np.empty(columns[0].size)
    for start in range(0, out.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = block(*(c[sl] for c in columns))
    return out


def _gauss_legendre(lo, hi, rate, integrand):
    """``int_lo^hi integrand(x) dx`` per row: composite 10-point Gauss-Legendre on panels of equal
    width, their number set so that ``rate`` (the integrand's largest exponential rate in ``x``)
    times a panel's half-width stays below ~2.5.  ``integrand`` maps the ``(rows, nodes)`` array
    of abscissae to the integrand's values there."""
    panels = int(np.clip(np.ceil(np.max(rate * np.abs(hi - lo)) / 5.0), 16, 4096))
    edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, panels + 1)[None, :]
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    x = (mid[:, :, None] + half[:, :, None] * _GL_NODES[None, None, :]).reshape(lo.size, -1)
    with np.errstate(all="ignore"):
        f = integrand(x).reshape(lo.size, panels, -1)
    return np.sum(half * np.sum(f * _GL_WEIGHTS[None, None, :], axis=2), axis=1)


def _log_cosh(x):
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2 * ax)) - np.log(2.0)


def _jepa_time(depth, lam, rho, a0, v0, level):
    """``t*`` of a learned stop-gradient JEPA row: ``int dv / ((lam - sigma2 v)(v^2 + c)^L)`` from
    ``v0`` to ``v_c``, ``(v_c^2 + c)^(L/2) = level``, ``v_c > 0``.

    Substitutions (smooth, exponentially decaying integrands): ``c > 0``: ``v = sqrt(c) sinh s``
    (``v^2 + c = c cosh^2 s``); ``c <= 0``: ``y = ln(v^2 + c)``, ``v = sqrt(e^y - c)``."""
    return _chunked(_jepa_time_block, depth, lam, rho, a0, v0, level)


def _jepa_time_block(depth, lam, rho, a0, v0, level):
    sigma2 = lam / rho
    c = conserved(a0, v0)
    pos = c > 0
    root_c = np.sqrt(np.abs(c))
    y_c = 2.0 / depth * np.log(level)
    with np.errstate(all="ignore"):
        v_c = np.sqrt(np.exp(y_c) - c)
        lo = np.where(pos, np.arcsinh(v0 / root_c), 2.0 * np.log(a0))
        hi = np.where(pos, np.arcsinh(v_c / root_c), y_c)
    L = depth[:, None]

    def integrand(x):
        # c > 0: sqrt(c) cosh s / ((lam - sigma2 v) (c cosh^2 s)^L)
        v_pos = root_c[:, None] * np.sinh(x)
        log_pos = (0.5 - L) * np.log(np.abs(c))[:, None] + (1 - 2 * L) * _log_cosh(x)
        # c <= 0: e^((1-L) y) / (2 v (lam - sigma2 v)), v = sqrt(e^y - c)
        v_neg = np.sqrt(np.exp(x) - c[:, None])
        log_neg = (1 - L) * x - np.log(2 * v_neg)
        v = np.where(pos[:, None], v_pos, v_neg)
        return np.exp(np.where(pos[:, None], log_pos, log_neg) - np.log(lam[:, None] - sigma2[:, None] * v))

    return _gauss_legendre(lo, hi, np.where(pos, 2 * depth - 1, np.maximum(depth - 1, 1)), integrand)


def _mae_time(depth, lam, rho, a0, v0, level):
    """``t*`` of a learned, unbalanced MAE row without weight decay (``docs/theory.md`` section 9).

    With ``c = a^2 - v^2`` conserved, the row is a 1-D flow in whichever of ``v`` and ``a`` cannot
    pass through 0, ``dv/dt = a^L (lam - sigma2 v a^L)``, ``da/dt = a^(L-1) v (lam - sigma2 v a^L)``:

    * ``c > 0`` (``a`` keeps its sign): ``v = sqrt(c) sinh s``, ``a = sqrt(c) cosh s``, integrand
      ``a^(1-L) / (lam - sigma2 v a^L)`` from ``v0`` to ``v_c = sqrt(level^(2/L) - c) > 0``;
    * ``c < 0``, ``L >= 2`` (learned only for ``v0 > a0``, ``v > 0`` throughout): ``y = ln a^2``,
      integrand ``e^((1 - L/2) y) / (2 v (lam - sigma2 v a^L))``, ``v = sqrt(e^y - c)``;
    * ``c < 0``, ``L = 1`` (``v`` keeps its sign, ``a`` may pass through 0): ``a = sqrt(-c) sinh s``,
      ``v = sign(v0) sqrt(-c) cosh s``, integrand ``1 / (lam - sigma2 a v)`` from ``a0`` to
      ``sign(v0) level``.

    ``c = 0`` unbalanced is ``v0 = -a0``, a collapse: never integrated here."""
    return _chunked(_mae_time_block, depth, lam, rho, a0, v0, level)


def _mae_time_block(depth, lam, rho, a0, v0, level):
    sigma2 = lam / rho
    c = conserved(a0, v0)
    pos, deep = c > 0, depth >= 2
    root_c = np.sqrt(np.abs(c))
    sgn = np.sign(v0)
    with np.errstate(all="ignore"):
        v_c = np.sqrt(level ** (2.0 / depth) - c)
        start = np.where(pos, np.arcsinh(v0 / root_c), np.where(deep, 2.0 * np.log(a0), np.arcsinh(a0 / root_c)))
        stop = np.where(pos, np.arcsinh(v_c / root_c),
                        np.where(deep, 2.0 / depth * np.log(level), np.arcsinh(sgn * level / root_c)))
    L, cc, rc, lm, s2 = depth[:, None], c[:, None], root_c[:, None], lam[:, None], sigma2[:, None]

    def integrand(x):
        # c > 0 (x = s): v = sqrt(c) sinh s, a = sqrt(c) cosh s
        log_a = np.log(rc) + _log_cosh(x)
        f_pos = np.exp((1 - L) * log_a) / (lm - s2 * rc * np.sinh(x) * np.exp(L * log_a))
        # c < 0, L >= 2 (x = y = ln a^2)
        v = np.sqrt(np.exp(x) - cc)
        f_deep = np.exp((1 - L / 2) * x) / (2 * v * (lm - s2 * v * np.exp(L * x / 2)))
        # c < 0, L = 1 (x = s): a v = sign(v0) (-c) sinh s cosh s
        f_one = 1.0 / (lm - s2 * sgn[:, None] * (-cc) * np.sinh(x) * np.cosh(x))
        return np.where(pos[:, None], f_pos, np.where(deep[:, None], f_deep, f_one))

    rate = np.where(pos, np.maximum(depth - 1, 1), np.where(deep, np.maximum(np.abs(depth / 2 - 1), 1), 2))
    lo, hi = np.minimum(start, stop), np.maximum(start, stop)
    return _gauss_legendre(lo, hi, rate, integrand)


def _decay_time(objective, depth, lam, rho, a0, beta, level):
    """``t*`` of a learned balanced row with weight decay and no EMA target: the 1-D flow
    ``du/dt = h(u) = g(u) - beta u`` from ``a0`` to ``u_c = level^(1/L)`` (``g`` as in
    :mod:`jepa_dynamics.theory.gd`), between the fixed points ``u_- < a0 < u_c < u_+``.  With
    ``u = u_- + (u_+ - u_-) S(s)`` (``S`` the logistic function),
    ``dt/ds = (u - u_-)(u_+ - u) / ((u_+ - u_-) h(u))`` is bounded at both ends."""
    from .aligned import weight_decay_fixed_points  # the fixed points, beside the field they come from

    u_minus, u_plus = weight_decay_fixed_points(objective, depth, lam, rho, beta)
    return _chunked(functools.partial(_decay_time_block, objective), depth, lam, rho, a0, beta, level,
                    u_minus, u_plus)


def _decay_time_block(objective, depth, lam, rho, a0, beta, level, u_minus, u_plus):
    sigma2 = lam / rho
    gap = u_plus - u_minus
    u_c = level ** (1.0 / depth)
    lo = np.log(a0 - u_minus) - np.log(u_plus - a0)
    hi = np.log(u_c - u_minus) - np.log(u_plus - u_c)
    L, lm, s2, b, um, d = (x[:, None] for x in (depth, lam, sigma2, beta, u_minus, gap))

    def integrand(x):
        up, down = 1.0 / (1.0 + np.exp(-x)), 1.0 / (1.0 + np.exp(x))  # S(s), S(-s)
        u = um + d * up
        g = u ** (2 * L) * (lm - s2 * u) if objective == "jepa" else u**L * (lm - s2 * u ** (L + 1))
        return d * up * down / (g - b * u)

    return _gauss_legendre(lo, hi, 2.0 * depth, integrand)
