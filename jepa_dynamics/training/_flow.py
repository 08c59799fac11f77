"""The theory of a run outside the aligned family: the exact matrix flow from the network's own init.

For a deep linear encoder with a linear predictor started from a random init, the per-feature
theory does not apply (the features are coupled through the shared matrices, and under JEPA some
are lost).  :func:`matrix_flow` integrates the full-matrix gradient flow
(:mod:`jepa_dynamics.engines.matrix`) from the very matrices the network starts from
(:func:`jepa_dynamics.training.train.initial_model`), on the dense covariances of its data, and
reads each feature's response ``|column i of Wbar|`` -- what the network's summary records --
against the same crossing level as the network (docs/theory.md section 10, "Random init, predicted"):

* ``t_star``: the first time the response reaches the level (``nan``: never within the horizon);
* ``final_response``: the response at the end of the flow (at rest, or at the horizon);
* ``learned``: the settled state: ``final_response >= level`` (a feature that crossed and then fell
  back is not learned);
* ``fell_back``: crossed, then ended below the level.

The horizon is documented in :func:`horizon`; the flow stops earlier once every mode is at rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engines import matrix
from ..theory import modes as modes_mod
from ..theory import spec
from . import data, models

__all__ = ["FlowPrediction", "uses_matrix_flow", "horizon", "matrix_flow", "matrix_flows"]


@dataclass(frozen=True)
class FlowPrediction:
    """Per feature: ``t_star``, ``final_response``, ``learned``, ``fell_back``; the flow's
    ``horizon`` and whether it came to rest before it (``converged``)."""

    t_star: np.ndarray
    final_response: np.ndarray
    learned: np.ndarray
    fell_back: np.ndarray
    horizon: float
    converged: bool


def uses_matrix_flow(config) -> bool:
    """Whether a run's theory is the matrix flow: a random init of a deep linear encoder with a
    linear predictor, stop-gradient (or EMA) JEPA or MAE, plain SGD (gradient-flow time)."""
    return (config.init == "random" and config.objective in spec.OBJECTIVES and config.model == "linear"
            and config.predictor == "linear" and config.optimizer == "sgd" and config.stop_gradient)


def feature_modes(dataset: data.Dataset) -> modes_mod.Modes:
    """The modes of diagonal data in feature order (``q_i = e_i``), so mode ``i`` is feature ``i``."""
    sxx, sxy, _ = dataset.covariance_matrices()
    d = dataset.dim
    return modes_mod.Modes(np.eye(d), np.asarray(dataset.lam, np.float64), np.asarray(dataset.rho, np.float64),
                           np.asarray(dataset.sigma2, np.float64), sxx, sxy)


HORIZON_FACTOR = 4.0  # the flow's horizon: this many times the balanced theory's latest t* (+ 40 relaxation times)


def horizon(config, dataset: data.Dataset) -> float:
    """How long the flow runs at most: the longer of the run itself (``lr * steps``) and
    :data:`HORIZON_FACTOR` times the balanced theory's latest critical time at ``eps`` plus 40
    relaxation times of the slowest fixed point (:func:`jepa_dynamics.engines.matrix.default_t_max`).

    Four, not the matrix command's two: from a random init a feature can cross, fall back as another
    takes the shared predictor, and rise again (measured: depth 2, lam = 1, .6, .8, .7, rho = .9, .5, .7,
    .6, eps 0.01, seed 0: crossed at t = 319, down to 0.006 by t = 410, up again at t ~ 1,700, with the
    balanced theory's latest t* ~ 775).  Features that lose the competition sit near 1e-3 and decay
    slowly, so the flow is rarely at rest: the horizon is what ends it."""
    mc = _matrix_config(config)
    return max(config.lr * config.steps, matrix.default_t_max(mc, feature_modes(dataset), factor=HORIZON_FACTOR))


def _matrix_config(config) -> matrix.MatrixConfig:
    kappa = config.ema_rate
    return matrix.MatrixConfig(config.objective, config.depth, eps=config.eps, init="given",
                               ema_rate=None if not np.isfinite(kappa) else float(kappa),
                               weight_decay=config.weight_decay, fraction=config.fraction)


def matrix_flow(config, dataset: data.Dataset, level, *, t_max: float | None = None) -> FlowPrediction:
    """The matrix flow of ``config``'s network from its own init (see the module's docstring),
    crossed at ``level`` per feature (the network's own crossing level)."""
    return matrix_flows([config], dataset, np.asarray(level, np.float64)[None], t_max=t_max)[0]


def matrix_flows(configs, dataset: data.Dataset, levels, *, states=None, t_max: float | None = None,
                 sharding=None) -> list:
    """:func:`matrix_flow` of many networks on one ``dataset``, side by side: one vmapped program per
    depth (:func:`jepa_dynamics.engines.matrix.integrate_batch`; ``sharding`` spreads the networks over
    devices as the training engine does).  ``levels`` ``(n, d)``; ``states`` ``(n, L + 2, d, d)`` the
    networks' initial matrices (:func:`jepa_dynamics.training.models.matrix_state`; default: each
    config's :func:`jepa_dynamics.training.train.initial_model`; networks of one depth).  Returns one
    :class:`FlowPrediction` per network, in order; a flow that could not be followed (its field overflows
    float64, or the step size collapsed) has ``nan`` responses and times and nothing learned."""
    from .train import initial_model

    levels = np.asarray(levels, np.float64)
    cov = dataset.covariance_matrices()
    modes = feature_modes(dataset)
    out = [None] * len(configs)
    by: dict = {}
    for i, c in enumerate(configs):
        by.setdefault(c.depth, []).append(i)
    for idx in by.values():
        cs = [configs[i] for i in idx]
        init = (np.stack([models.matrix_state(initial_model(c)) for c in cs]) if states is None
                else np.asarray(states, np.float64)[idx])
        mcs = [_matrix_config(c) for c in cs]
        t_end = np.array([horizon(c, dataset) if t_max is None else float(t_max) for c in cs])
        res = matrix.integrate_batch(init, cov, t_end, levels[idx], mae=[c.objective == "mae" for c in cs],
                                     ema_rate=[np.inf if m.ema_rate is None else m.ema_rate for m in mcs],
                                     weight_decay=[m.weight_decay for m in mcs], dirs=modes.sxx @ modes.q,
                                     sigma2=modes.sigma2, rtol=mcs[0].rtol, atol=mcs[0].atol,
                                     rest_tol=mcs[0].rest_tol, sharding=sharding)
        for k, i in enumerate(idx):
            # a flow that overflowed (an init far outside float64's range for the field) predicts nothing
            final, t_star = ((res.final_response[k], res.t_star[k]) if res.ok[k] else
                             (np.full(levels.shape[1], np.nan), np.full(levels.shape[1], np.nan)))
            learned = final >= levels[i]
            out[i] = FlowPrediction(t_star, final, learned, np.isfinite(t_star) & ~learned, float(t_end[k]),
                                    bool(res.at_rest[k]))
    return out
