"""The per-feature theory a matrix flow is read against, at each mode's parameters: its critical times,
its fixed points and the run length that settles every mode.

JEPA and MAE: docs/theory.md sections 3-4 at the mode's ``(lam, rho)``.  Barlow Twins and VICReg:
section 16 (:mod:`jepa_dynamics.theory.joint`, VICReg at the default weights) at the mode's ``lam``,
and for VICReg its ``sigma2`` and the target variance along it, ``syy_i = q_i^T Syy q_i``
(:func:`mode_variances`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..theory import joint, spec
from ..theory import balanced as theory
from ..theory import modes as modes_mod

if TYPE_CHECKING:
    from .matrix import MatrixConfig


def mode_variances(modes: modes_mod.Modes, syy) -> np.ndarray:
    """``syy_i = q_i^T Syy q_i``, the target's variance along each mode (``(d,)``)."""
    q = np.asarray(modes.q, np.float64)
    return np.einsum("ij,ik,kj->j", q, np.asarray(syy, np.float64), q)


def _joint_data(config: MatrixConfig, modes: modes_mod.Modes, syy) -> dict:
    """:mod:`jepa_dynamics.theory.joint`'s data keywords for each mode (VICReg needs ``syy``)."""
    if config.objective == "barlow":
        return {}
    if syy is None:
        raise spec.SpecError("cov", "the VICReg theory of a mode needs the target covariance syy")
    return {"sigma2": np.asarray(modes.sigma2, np.float64), "syy": mode_variances(modes, syy)}


def _fixed_points(config: MatrixConfig, modes: modes_mod.Modes, syy) -> tuple:
    """``(ok, w_star)``: the modes the per-feature theory learns (``lam > 0``; VICReg's growth rate is
    then positive too, at the default weights ``g = 4 lam``) and their fixed point (``nan`` elsewhere)."""
    ok = modes.lam > 0
    w_star = np.full(modes.lam.shape, np.nan)
    if config.objective in spec.JOINT_OBJECTIVES:
        kw = {k: v[ok] for k, v in _joint_data(config, modes, syy).items()}
        if ok.any():
            w_star[ok] = joint.fixed_point(config.objective, modes.lam[ok], **kw)
    else:
        w_star[ok] = spec.fixed_point(config.objective, config.depth, modes.rho[ok])
    return ok, w_star


def theory_fixed_points(config: MatrixConfig, modes: modes_mod.Modes, syy=None) -> np.ndarray:
    """The per-feature fixed point ``w_star`` of each mode (``nan`` where ``lam <= 0``); ``syy`` (the
    ``(d, d)`` target covariance) is needed for VICReg only."""
    return _fixed_points(config, modes, syy)[1]


def default_t_max(config: MatrixConfig, modes: modes_mod.Modes, factor: float = 2.0, syy=None) -> float:
    """Long enough to learn and settle every mode the per-feature theory learns (``lam > 0``, ``eps``
    below ``fraction * w_star``): ``factor`` x their largest critical time (docs/theory.md section 4) plus 40
    relaxation times ``1 / r`` of the slowest fixed point (``r = lam rho^(2L-1)`` for JEPA,
    ``(L+1) sigma2 u*^(2L)``, ``u* = rho^(1/(L+1))`` for MAE, ``4 L g w_star^(2-2/L)`` for Barlow Twins and
    VICReg, section 16); at least 1.  ``syy``: VICReg only."""
    depth = config.depth
    ok, w_star = _fixed_points(config, modes, syy)
    ok &= config.eps < config.fraction * np.where(ok, w_star, 0.0)
    if not ok.any():
        raise spec.SpecError("t_max", "no mode is learned by the per-feature theory (all lam <= 0 or eps too "
                                      "large): give --t-max explicitly")
    lam, rho = modes.lam[ok], modes.rho[ok]
    if config.objective in spec.JOINT_OBJECTIVES:
        kw = {k: v[ok] for k, v in _joint_data(config, modes, syy).items()}
        t = joint.critical_time(config.objective, depth, lam, config.eps, config.fraction, **kw)
        g, _ = joint.coefficients(config.objective, lam, **kw)
        rate = 4 * depth * g * w_star[ok] ** (2 - 2 / depth)
    else:
        t = theory.critical_time(config.objective, depth, lam, rho, config.eps, config.fraction)
        if config.objective == "jepa":
            rate = lam * rho ** (2 * depth - 1)
        else:
            rate = (depth + 1) * lam / rho * rho ** (2 * depth / (depth + 1))
    return max(1.0, factor * float(np.max(t)) + 40.0 / float(np.min(rate)))


def theory_critical_times(config: MatrixConfig, modes: modes_mod.Modes, eps=None, syy=None):
    """The per-feature theory's ``t*`` at each mode's parameters with initial response ``eps``
    (default ``config.eps``; an array gives one per mode); ``nan`` where it is undefined (``lam <= 0``
    or ``eps >= fraction * w_star``).  ``syy`` (the ``(d, d)`` target covariance): VICReg only."""
    eps = np.broadcast_to(np.asarray(config.eps if eps is None else eps, np.float64), modes.lam.shape)
    ok, w_star = _fixed_points(config, modes, syy)
    ok &= (eps < config.fraction * np.where(ok, w_star, 0.0)) & (eps > 0)
    out = np.full(modes.lam.shape, np.nan)
    if not ok.any():
        return out
    if config.objective in spec.JOINT_OBJECTIVES:
        kw = {k: v[ok] for k, v in _joint_data(config, modes, syy).items()}
        out[ok] = joint.critical_time(config.objective, config.depth, modes.lam[ok], eps[ok], config.fraction, **kw)
    else:
        out[ok] = theory.critical_time_unchecked(config.objective, config.depth, modes.lam[ok], modes.rho[ok],
                                                 eps[ok], config.fraction)
    return out
