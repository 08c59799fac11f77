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
from . import data, models

__all__ = ["FlowPrediction", "uses_matrix_flow", "horizon", "matrix_flow"]


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
    return (config.init == "random" and config.model == "linear" and config.predictor == "linear"
            and config.optimizer == "sgd" and config.stop_gradient)


def feature_modes(dataset: data.Dataset) -> modes_mod.Modes:
    """The modes of diagonal data in feature order (``q_i = e_i``), so mode ``i`` is feature ``i``."""
    sxx, sxy, _ = dataset.covariance_matrices()
    d = dataset.dim
    return modes_mod.Modes(np.eye(d), np.asarray(dataset.lam, np.float64), np.asarray(dataset.rho, np.float64),
                           np.asarray(dataset.sigma2, np.float64), sxx, sxy)


def horizon(config, dataset: data.Dataset) -> float:
    """How long the flow runs at most: the longer of the run itself (``lr * steps``) and the
    matrix engine's default horizon for the balanced theory at ``eps`` (twice the latest critical
    time plus 40 relaxation times of the slowest fixed point,
    :func:`jepa_dynamics.engines.matrix.default_t_max`)."""
    mc = _matrix_config(config)
    return max(config.lr * config.steps, matrix.default_t_max(mc, feature_modes(dataset)))


def _matrix_config(config) -> matrix.MatrixConfig:
    kappa = config.ema_rate
    return matrix.MatrixConfig(config.objective, config.depth, eps=config.eps, init="given",
                               ema_rate=None if not np.isfinite(kappa) else float(kappa),
                               weight_decay=config.weight_decay, fraction=config.fraction)


def matrix_flow(config, dataset: data.Dataset, level, *, t_max: float | None = None) -> FlowPrediction:
    """The matrix flow of ``config``'s network from its own init (see the module's docstring),
    crossed at ``level`` per feature (the network's own crossing level)."""
    from .train import initial_model

    level = np.asarray(level, np.float64)
    state = models.matrix_state(initial_model(config))
    modes = feature_modes(dataset)
    t_end = horizon(config, dataset) if t_max is None else float(t_max)
    res = matrix.integrate(_matrix_config(config), dataset.covariance_matrices(), np.array([0.0, t_end]),
                           state=state, modes=modes)
    ts, g, dg = res.step_records
    t_star = matrix.crossing_times(ts, g, dg, level)
    final = np.asarray(res.responses[-1], np.float64)
    learned = final >= level
    crossed = np.isfinite(t_star)
    return FlowPrediction(t_star, final, learned, crossed & ~learned, t_end, bool(res.converged))
