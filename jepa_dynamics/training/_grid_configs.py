"""The networks of a grid: one validated config per point of the list flags' product
(:func:`configs_from`), and their theory, computed once per distinct setting (:func:`predict`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import train
from ._config import ema_decay
from ..theory import spec


@dataclass(frozen=True)
class Prediction:
    """The theory per network and feature (``(n, d)``): gradient-flow ``w_inf``, ``learned``,
    ``critical_time`` and the exact GD map's ``critical_time_gd`` (``nan`` where the map does
    not describe the network, :attr:`jepa_dynamics.training.train.TrainConfig.exact_map`, or crosses
    only after the grid's longest run)."""

    w_inf: np.ndarray
    learned: np.ndarray
    critical_time: np.ndarray
    critical_time_gd: np.ndarray


def _theory_key(c: train.TrainConfig) -> tuple:
    """What a network's theory depends on (not its seed, nor a random init's scale)."""
    return (c.objective, c.depth, c.dist, c.lam, c.rho, c.dim, c.eps, c.init, c.predictor_init, c.ema, c.lr,
            c.weight_decay, c.fraction, c.exact_map)


def predict(configs) -> Prediction:
    """:func:`jepa_dynamics.training.train.prediction` for many networks at once (one vectorised
    :func:`jepa_dynamics.theory.aligned.predict` per objective and depth, over the distinct settings:
    networks that differ only by seed share their theory).  Raises ``SpecError`` for the first
    network with a feature that starts at or above its critical level."""
    keys: dict = {}
    index = np.array([keys.setdefault(_theory_key(c), len(keys)) for c in configs])
    if len(keys) < len(configs):
        first = np.unique(index, return_index=True)[1]
        p = predict([configs[i] for i in first])
        return Prediction(*(getattr(p, f.name)[index] for f in dataclasses.fields(Prediction)))
    return _predict(configs)


def _joint_predict(objective: str, depth: int, cs, dss) -> tuple:
    """Barlow Twins and VICReg from balanced init (docs/theory.md section 16, VICReg at the default weights, with
    each dataset's own ``sigma2`` and ``syy``), ``(n, d)``: ``(w_star, t_star)``; no gradient-descent map."""
    from ..theory import joint

    lam = np.stack([ds.lam for ds in dss])
    kw = ({"sigma2": np.stack([ds.sigma2 for ds in dss]), "syy": np.stack([ds.syy for ds in dss])}
          if objective == "vicreg" else {})
    col = lambda f: np.array([f(c) for c in cs], dtype=np.float64)[:, None]  # noqa: E731
    w_star = np.broadcast_to(joint.fixed_point(objective, lam, **kw), lam.shape)
    t_star = joint.critical_time(objective, depth, lam, col(lambda c: c.eps), col(lambda c: c.fraction), **kw)
    return w_star, t_star


def _predict(configs) -> Prediction:
    from ..theory import aligned

    n, d = len(configs), configs[0].dim
    out = {k: np.full((n, d), np.nan) for k in ("w_inf", "critical_time", "critical_time_gd")}
    learned = np.zeros((n, d), dtype=bool)
    by: dict = {}
    for i, c in enumerate(configs):
        by.setdefault((c.objective, c.depth), []).append(i)
    for (objective, depth), idx in by.items():
        cs = [configs[i] for i in idx]
        dss = [c.dataset() for c in cs]
        if objective in spec.JOINT_OBJECTIVES:
            out["w_inf"][idx], out["critical_time"][idx] = _joint_predict(objective, depth, cs, dss)
            learned[idx] = True
            continue
        lam = np.stack([ds.lam for ds in dss])
        rho = np.stack([ds.rho for ds in dss])
        col = lambda f: np.array([f(c) for c in cs], dtype=np.float64)[:, None]  # noqa: E731
        eps = col(lambda c: c.eps)
        v0 = col(lambda c: c.predictor_init if c.init == "aligned" and c.predictor_init is not None
                 else c.eps ** (1.0 / c.depth))
        kappa, beta, frac = col(lambda c: c.ema_rate), col(lambda c: c.weight_decay), col(lambda c: c.fraction)
        gf = aligned.predict(objective, depth, lam, rho, eps, v0, ema_rate=kappa, weight_decay=beta, lr=0.0,
                             fraction=frac)
        out["w_inf"][idx] = gf.w_inf
        out["critical_time"][idx] = gf.critical_time
        learned[idx] = gf.learned
        mapped = np.array([c.exact_map for c in cs])
        if mapped.any():
            m = np.flatnonzero(mapped)
            lr = col(lambda c: c.lr)[m]
            horizon = max(cs[i].steps for i in m)  # the map is followed as far as the longest run
            gd = aligned.predict(objective, depth, lam[m], rho[m], eps[m], v0[m], ema_rate=kappa[m],
                                 weight_decay=beta[m], lr=lr, fraction=frac[m], max_steps=horizon)
            out["critical_time_gd"][np.asarray(idx)[m]] = gd.critical_time
    return Prediction(out["w_inf"], learned, out["critical_time"], out["critical_time_gd"])


def configs_from(base: dict, lists: dict) -> list[train.TrainConfig]:
    """The Cartesian product of ``lists`` (name -> values) over ``base``: one validated
    :class:`~jepa_dynamics.training.train.TrainConfig` per network, in ``itertools.product`` order.

    ``ema_rate`` (kappa, 1/gradient-flow time) becomes each network's per-step decay ``ema = tau = 1 - kappa *
    lr`` at its own ``lr`` (:func:`jepa_dynamics.training._config.ema_decay`; ``ema`` itself is the deprecated
    spelling).  A knob that does not apply to a network is dropped for it, and repeats are dropped: MAE,
    Barlow Twins and VICReg networks take ``ema = 0`` (an EMA target is JEPA's), ``predictor_init`` applies to
    ``init="aligned"`` only and ``init_scale`` to ``init="random"`` only."""
    import itertools

    names = list(lists)
    out, seen = [], set()
    for values in itertools.product(*(lists[k] for k in names)):
        kw = {**base, **dict(zip(names, values)), "check_theory": False}  # predict() checks them all at once
        init = kw.get("init", "balanced")
        kappa = kw.pop("ema_rate", None)
        if kw.get("objective", "jepa") != "jepa":
            kw["ema"] = 0.0
        elif kappa is not None:
            kw["ema"] = ema_decay(kappa, spec.check_positive(kw.get("lr", 1e-2), "lr"))
        if init != "aligned":
            kw["predictor_init"] = None
        if init != "random":
            kw["init_scale"] = None
        config = train.TrainConfig(**kw)
        if config not in seen:
            seen.add(config)
            out.append(config)
    return out


def replace(config: train.TrainConfig, **changes) -> train.TrainConfig:
    return dataclasses.replace(config, check_theory=False, **changes)
