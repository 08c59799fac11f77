r"""Per-feature dynamics of deep linear joint embeddings: Barlow Twins and VICReg (docs/theory.md section 16).

One encoder ``Wbar = W_L ... W_1`` is applied to both views; there is no predictor and no
stop-gradient.  On §1.1's diagonal data, from §1.3's balanced init, every layer stays
``O_a diag(u) O_{a-1}^T`` and feature ``i``'s response is ``w = u^L``.  Both losses are then,
per feature, quartics in ``w`` whose gradient has one shape,

.. math::

    -\frac{\partial \ell}{\partial w} = 2 w (g - q w^2),

* Barlow Twins, ``ell = (lam w^2 - 1)^2``: ``g = 2 lam``, ``q = 2 lam^2``;
* VICReg with quadratic variance, ``ell = a w^2 (sigma2 + syy - 2 lam)
  + b [(sigma2 w^2 - 1)^2 + (syy w^2 - 1)^2]``: ``g = 2 a lam + (2 b - a)(sigma2 + syy)``,
  ``q = 2 b (sigma2^2 + syy^2)`` (``a`` = ``invariance``, ``b`` = ``variance``; the covariance
  weight acts off the diagonal only and never enters).

Gradient flow on the layers gives ``du/dt = -u^{L-1} d ell/dw``, hence

.. math::

    \dot w = 2 L w^{3 - 2/L} (g - q w^2), \qquad w_\star = \sqrt{g / q}.

With ``v = (w / w_star)^{2/L}`` in ``(0, 1)`` the time is rational in ``v``:
``dt = dv / (k v^L (1 - v^L))``, ``k = 4 g w_star^{2 - 2/L}``, and by partial fractions

.. math::

    k\,t(v) = \frac{v_0^{1-L} - v^{1-L}}{L - 1} + G(v) - G(v_0), \qquad
    G(y) = -\frac1L \sum_{j=0}^{L-1} \mathrm{Re}\big[\omega_j \ln(\omega_j - y)\big],

(``ln(v / v0)`` in place of the first term for ``L = 1``; ``omega_j`` the ``L``-th roots of
unity, ``G'(y) = 1 / (1 - y^L)``).  At ``L = 1`` this is the logistic law
``v(t) = 1 / (1 + (1/v0 - 1) e^{-4 g t})`` (:func:`logistic`).

Everything is float64 NumPy, vectorised over every argument but ``objective`` like
:mod:`jepa_dynamics.theory.balanced`; time is gradient-flow time (docs/theory.md section 1.4).
"""

from __future__ import annotations

import numpy as np

from . import spec
from .balanced import _by_depth

__all__ = [
    "INVARIANCE",
    "VARIANCE",
    "COVARIANCE",
    "coefficients",
    "fixed_point",
    "rhs",
    "rhs_u",
    "time_to",
    "critical_time",
    "critical_time_leading",
    "trajectory",
    "logistic",
]

# default VICReg weights: invariance = 2 x variance and covariance = variance make the quadratic-variance
# VICReg loss the spectral contrastive loss (docs/theory.md section 16)
INVARIANCE = 2.0
VARIANCE = 1.0
COVARIANCE = 1.0


def coefficients(objective: str, lam, sigma2=None, syy=None, *, invariance=INVARIANCE, variance=VARIANCE):
    """``(g, q)`` of ``-d ell / dw = 2 w (g - q w^2)``, validated and broadcast (float64).

    Barlow needs ``lam > 0`` only (``sigma2`` and ``syy`` do not enter); VICReg needs
    ``sigma2 > 0``, ``syy > 0``, ``lam^2 <= sigma2 syy`` (a valid joint covariance), weights
    ``invariance >= 0``, ``variance > 0`` and a positive growth rate ``g``."""
    spec.check_joint_objective(objective)
    if objective == "barlow":
        lam = spec.check_lam(lam)
        return 2.0 * lam, 2.0 * lam**2
    for value, name in ((sigma2, "sigma2"), (syy, "syy")):
        if value is None:
            raise spec.SpecError(name, "VICReg needs the context variance sigma2 and the target variance syy")
    lam = spec.check_finite(lam, "lam")
    sigma2, syy = spec.check_positive(sigma2, "sigma2"), spec.check_positive(syy, "syy")
    a = spec.check_nonnegative(invariance, "invariance")
    b = spec.check_positive(variance, "variance")
    lam, sigma2, syy, a, b = np.broadcast_arrays(lam, sigma2, syy, a, b)
    bad = lam**2 > sigma2 * syy * (1 + 1e-12)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise spec.SpecError("lam", f"|lam| must be at most sqrt(sigma2 syy) (the joint covariance of (x, y) is "
                                    f"positive semi-definite), got lam={lam.flat[i]:.6g} sigma2={sigma2.flat[i]:.6g} "
                                    f"syy={syy.flat[i]:.6g}")
    g = 2 * a * lam + (2 * b - a) * (sigma2 + syy)
    bad = ~(g > 0)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise spec.SpecError("lam", f"the growth rate g = 2 a lam + (2 b - a)(sigma2 + syy) = {g.flat[i]:.6g} is <= 0 "
                                    f"for lam={lam.flat[i]:.6g} sigma2={sigma2.flat[i]:.6g} syy={syy.flat[i]:.6g} "
                                    f"(a = invariance, b = variance): this feature is never learned")
    return g, 2 * b * (sigma2**2 + syy**2)


def fixed_point(objective: str, lam, sigma2=None, syy=None, *, invariance=INVARIANCE, variance=VARIANCE):
    """The stable fixed point ``w_star = sqrt(g / q)``: Barlow ``lam^{-1/2}``; VICReg at the default
    weights ``sqrt(2 lam / (sigma2^2 + syy^2))``."""
    g, q = coefficients(objective, lam, sigma2, syy, invariance=invariance, variance=variance)
    return np.exp(0.5 * (np.log(g) - np.log(q)))


def rhs(objective: str, w, depth, lam, sigma2=None, syy=None, *, invariance=INVARIANCE, variance=VARIANCE):
    """``dw/dt = 2 L w^{3 - 2/L} (g - q w^2)`` (vectorised)."""
    g, q = coefficients(objective, lam, sigma2, syy, invariance=invariance, variance=variance)
    depth = np.asarray(spec.check_depths(depth), dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return 2 * depth * w ** (3 - 2 / depth) * (g - q * w**2)


def rhs_u(objective: str, u, depth, lam, sigma2=None, syy=None, *, invariance=INVARIANCE, variance=VARIANCE):
    """``du/dt = 2 u^{2L-1} (g - q u^{2L})`` for the common per-layer entry ``u = w^{1/L}``."""
    g, q = coefficients(objective, lam, sigma2, syy, invariance=invariance, variance=variance)
    depth = np.asarray(spec.check_depths(depth), dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    return 2 * u ** (2 * depth - 1) * (g - q * u ** (2 * depth))


def _primitive(n: int, y):
    """``G(y) = -(1/n) sum_j Re[omega_j ln(omega_j - y)]`` over the ``n``-th roots of unity, ``G' = 1/(1 - y^n)``."""
    y = np.asarray(y, dtype=np.float64)
    acc = np.log1p(-y)  # the root omega = 1, kept real and accurate near y = 1
    for j in range(1, n):
        omega = np.exp(2j * np.pi * j / n)
        acc = acc + np.real(omega * np.log(omega - y))
    return -acc / n


def _scaled_time(depth: int, log_v0, log_v):
    """``k t`` from ``v0`` to ``v`` (both in ``(0, 1)``), without overflow or cancellation."""
    if depth == 1:
        divergent = log_v - log_v0
    else:
        divergent = -np.expm1((depth - 1) * (log_v0 - log_v)) * np.exp((1 - depth) * log_v0) / (depth - 1)
    return divergent + _primitive(depth, np.exp(log_v)) - _primitive(depth, np.exp(log_v0))


def _log_rate(depth, g, w_star):
    """``ln k``, ``k = 4 g w_star^{2 - 2/L}``."""
    return np.log(4 * g) + (2 - 2 / depth) * np.log(w_star)


def _validated(objective, depth, lam, eps, fraction, sigma2, syy, invariance, variance):
    g, q = coefficients(objective, lam, sigma2, syy, invariance=invariance, variance=variance)
    depth = spec.check_depths(depth)
    # fraction None: the feature need only start below w_star (time_to, trajectory)
    fraction = np.float64(1.0) if fraction is None else spec.check_unit_interval(fraction, "fraction")
    eps = spec.check_positive(eps, "eps")
    w_star = np.exp(0.5 * (np.log(g) - np.log(q)))
    eps_b, limit = np.broadcast_arrays(eps, fraction * w_star)
    bad = eps_b >= limit
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        f = np.broadcast_to(fraction, eps_b.shape).ravel()[i]
        raise spec.SpecError("eps", f"must be below fraction * w_star = {limit.ravel()[i]:.6g} for objective="
                                    f"{objective} (w_star={limit.ravel()[i] / f:.6g}, fraction={f:.6g}), got "
                                    f"{eps_b.ravel()[i]:.6g}; use a smaller eps")
    return depth, g, q, w_star, eps, fraction


def _time_unchecked(objective, depth, g, w_star, eps, w):
    def one(d, g_, w_star_, eps_, w_):
        log_v0 = 2 / d * (np.log(eps_) - np.log(w_star_))
        log_v = 2 / d * (np.log(w_) - np.log(w_star_))
        return _scaled_time(d, log_v0, log_v) * np.exp(-_log_rate(d, g_, w_star_))

    with np.errstate(over="ignore"):
        t = np.asarray(_by_depth(one, depth, g, w_star, eps, w))
    if not np.isfinite(t).all():
        raise spec.SpecError("eps", f"the time to learn overflows float64 for objective={objective} (the plateau "
                                    "lasts ~eps^-(2-2/L) / g); use a larger eps")
    return t


def time_to(objective: str, depth, lam, eps, w, *, sigma2=None, syy=None, invariance=INVARIANCE,
            variance=VARIANCE):
    """Exact gradient-flow time at which the response first equals ``w`` (``eps <= w < w_star``)."""
    depth, g, q, w_star, eps, _ = _validated(objective, depth, lam, eps, None, sigma2, syy, invariance, variance)
    w = spec.check_positive(w, "w")
    if np.any(w < eps) or np.any(w >= w_star):
        raise spec.SpecError("w", "must satisfy eps <= w < w_star (the response never leaves that range)")
    return _time_unchecked(objective, depth, g, w_star, eps, w)


def critical_time(objective: str, depth, lam, eps, fraction=0.5, *, sigma2=None, syy=None,
                  invariance=INVARIANCE, variance=VARIANCE):
    """Exact ``t_star``: the first time at which ``w = fraction * w_star`` (``v = fraction^{2/L}``).

    Raises :class:`~jepa_dynamics.theory.spec.SpecError` when ``eps >= fraction * w_star`` or the
    feature is never learned (Barlow ``lam <= 0``, VICReg ``g <= 0``)."""
    depth, g, q, w_star, eps, fraction = _validated(objective, depth, lam, eps, fraction, sigma2, syy,
                                                    invariance, variance)
    return _time_unchecked(objective, depth, g, w_star, eps, fraction * w_star)


def critical_time_leading(objective: str, depth, lam, eps, fraction=0.5, *, sigma2=None, syy=None,
                          invariance=INVARIANCE, variance=VARIANCE):
    """The leading small-``eps`` term of ``t_star``: ``eps^{-(2-2/L)} / (4 (L-1) g)`` for ``L >= 2``
    (``g`` alone: ``w_star``, hence ``sigma2`` and ``syy``, drop out) and ``ln(w_star / eps) / (2 g)``
    for ``L = 1``."""
    depth, g, q, w_star, eps, fraction = _validated(objective, depth, lam, eps, fraction, sigma2, syy,
                                                    invariance, variance)

    def one(d, g_, w_star_, eps_):
        if d == 1:
            return np.log(w_star_ / eps_) / (2 * g_)
        return np.exp(-(2 - 2 / d) * np.log(eps_)) / (4 * (d - 1) * g_)

    return _by_depth(one, depth, g, w_star, eps)


def trajectory(objective: str, depth, lam, eps, ts, *, sigma2=None, syy=None, invariance=INVARIANCE,
               variance=VARIANCE):
    """Exact ``w(t)`` on the times ``ts`` (shape ``(T,)``): the parameters broadcast to a batch shape ``B``,
    the result has shape ``B + (T,)``.  :func:`time_to` inverted by bisection on ``logit(v)`` (100 halvings,
    full float64 resolution)."""
    depth, g, q, w_star, eps, _ = _validated(objective, depth, lam, eps, None, sigma2, syy, invariance, variance)
    ts = spec.check_nonnegative(ts, "ts")
    if ts.ndim != 1:
        raise spec.SpecError("ts", "must be a one-dimensional array of times")
    batch = np.broadcast_shapes(np.shape(depth), g.shape, eps.shape)
    flat = [np.broadcast_to(a, batch).ravel() for a in (np.asarray(depth), g, w_star, eps)]
    out = np.empty((flat[0].size, ts.size))
    for d in np.unique(flat[0]):
        m = flat[0] == d
        d = int(d)
        g_, w_star_, eps_ = (a[m][:, None] for a in flat[1:])
        log_v0 = 2 / d * (np.log(eps_) - np.log(w_star_))
        with np.errstate(over="ignore"):  # k t past float64: far beyond the plateau, bisects to w_star
            target = ts[None, :] * np.exp(_log_rate(d, g_, w_star_))
        lo = np.broadcast_to(log_v0 - np.log1p(-np.exp(log_v0)), target.shape).copy()  # logit(v0)
        hi = np.full(target.shape, 40.0)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                below = _scaled_time(d, log_v0, -np.logaddexp(0.0, -mid)) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        log_v = -np.logaddexp(0.0, -0.5 * (lo + hi))
        w = np.minimum(w_star_ * np.exp(d / 2 * log_v), w_star_)
        out[m] = np.where(ts[None, :] == 0, eps_, w)
    return out.reshape(batch + (ts.size,))


def logistic(objective: str, lam, eps, ts, *, sigma2=None, syy=None, invariance=INVARIANCE, variance=VARIANCE):
    """Depth 1 in closed form: ``c = (w / w_star)^2`` follows the logistic ``dc/dt = 4 g c (1 - c)``,
    ``c(t) = 1 / (1 + (1/c0 - 1) e^{-4 g t})``, ``c0 = (eps / w_star)^2``.  For Barlow ``c = lam w^2``
    is the mode's entry of the cross-correlation ``C`` and ``4 g = 8 lam``.  Shape as :func:`trajectory`."""
    _, g, q, w_star, eps, _ = _validated(objective, 1, lam, eps, None, sigma2, syy, invariance, variance)
    ts = spec.check_nonnegative(ts, "ts")
    g, w_star, eps = (np.asarray(a)[..., None] for a in np.broadcast_arrays(g, w_star, eps))
    odds = np.expm1(-2 * (np.log(eps) - np.log(w_star)))  # 1/c0 - 1
    with np.errstate(under="ignore"):
        c = 1 / (1 + odds * np.exp(-4 * g * ts))
    return w_star * np.sqrt(c)
