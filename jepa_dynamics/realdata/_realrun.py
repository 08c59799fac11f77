r"""One run of a deep linear JEPA, MAE, Barlow Twins or VICReg encoder trained on real views, held against
the predicted order of modes.

The encoder ``Wbar = W_L ... W_1`` and the predictor / decoder ``V`` are full ``d x d``
matrices from the balanced small initialisation (``Wbar(0) = eps I``, docs/theory.md section 1.3),
trained by plain gradient descent (``optax.sgd``, step ``k`` is gradient-flow time
``lr * k``) on the sampled loss of :mod:`jepa_dynamics.training.objectives` (JEPA with a
stop-gradient target, MAE; Barlow Twins and VICReg on the encoder alone, docs/theory.md section 16), each
minibatch ``batch`` pairs drawn uniformly with replacement
from the real pairs (centred by their empirical means; key ``fold_in(seed, step)``).

Each mode's response over time is ``gamma_i = ||Wbar Sxx q_i|| / (q_i^T Sxx q_i)``
(:func:`jepa_dynamics.theory.modes.responses`), and its part along ``q_i`` itself,
``q_i^T Wbar Sxx q_i / sigma2_i`` (:func:`diagonal_responses`; the two agree when the data
commute, and differ by what other learned modes leak into ``gamma_i`` when they do not),
recorded on a log-spaced grid of steps (every recorded ``Wbar`` is kept, so probes can read
the same checkpoints).  The observed
critical time of a mode is the first time its response reaches ``fraction * w_star``
(``w_star`` of the per-feature theory: JEPA ``rho^L``, MAE ``rho^(L/(L+1))``), linearly
interpolated between the records around the crossing
(:func:`jepa_dynamics.training.analysis.critical_times`).

The prediction is the per-feature theory in the mode basis
(:func:`jepa_dynamics.realdata.spectrum.predicted_times`), exact when ``Sxx`` and ``sym(Sxy)``
commute.  The comparison covers the *scope*: the ``modes`` modes predicted first (finite
``t_star``).  The run lasts ``t_factor`` times the predicted ``t_star`` of the last mode in
scope, and the learning rate defaults to ``lr_factor`` times the smallest of the exact
gradient-descent stability bounds of docs/theory.md section 9 over the scope (JEPA
``2 / (lam rho^(2L-1))``, MAE ``2 / ((L+1) sigma2 u*^(2L))``, ``u* = rho^(1/(L+1))``) and
of the same curvature with ``sigma2`` replaced by the largest eigenvalue of ``Sxx``
(:func:`stability_bound`), and at most ``1 / min_steps`` of the first predicted critical time
(so gradient descent resolves the first rise: at least ``min_steps`` steps before it).
Reported per run: Spearman's correlation between observed and predicted critical times over
the scope (modes not reached count as last; :func:`jepa_dynamics.training.analysis.order_correlation`)
and each mode's ratio ``t_observed / t_predicted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..training import analysis, models, objectives
from ..theory import gd, joint, spec
from .. import records
from ..theory import modes as modes_mod
from .spectrum import mode_fixed_points, mode_syy, predicted_times
from .._jax import jax

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

__all__ = ["RealTrainConfig", "RealRun", "plan", "train_views", "record_grid", "stability_bound",
           "joint_stability_bound", "diagonal_responses"]


@dataclass(frozen=True)
class RealTrainConfig:
    """One training run on real views (validated on construction; ``None`` = automatic)."""

    objective: str = "jepa"
    depth: int = 1
    eps: float = 1e-3
    fraction: float = 0.5
    modes: int = 8
    batch: int = 512
    lr: float | None = None
    steps: int | None = None
    lr_factor: float = 0.3
    min_steps: int = 100
    matrix: bool = False
    t_factor: float = 1.5
    max_steps: int = 300_000
    records: int = 200
    seed: int = 0

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        spec.check_choice(self.objective, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
        put("depth", spec.check_depth(self.depth))
        put("eps", float(spec.check_positive(self.eps, "eps")))
        put("fraction", float(spec.check_unit_interval(self.fraction, "fraction")))
        put("modes", spec.check_positive_int(self.modes, "train_modes"))
        put("batch", spec.check_positive_int(self.batch, "batch"))
        put("records", spec.check_positive_int(self.records, "records"))
        put("max_steps", spec.check_positive_int(self.max_steps, "max_steps"))
        put("min_steps", spec.check_positive_int(self.min_steps, "min_steps"))
        put("seed", spec.check_nonnegative_int(self.seed, "train_seed"))
        put("lr_factor", float(spec.check_positive(self.lr_factor, "lr_factor")))
        put("t_factor", float(spec.check_positive(self.t_factor, "t_factor")))
        if self.lr is not None:
            put("lr", float(spec.check_positive(self.lr, "lr")))
        if self.steps is not None:
            put("steps", spec.check_positive_int(self.steps, "steps"))


def stability_bound(objective: str, depth: int, lam, rho, sxx_max: float | None = None) -> float:
    """The smallest over modes of the largest stable GD step at each mode's fixed point (spec
    section 10, exact map), and, if ``sxx_max`` (the largest eigenvalue of ``Sxx``) is given,
    of ``2 / ((L+1) sxx_max u*^(2L))``: the same curvature when a learned direction carries
    the context's largest variance (it does when the modes are not orthogonal)."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    u_star = rho if objective == "jepa" else rho ** (1.0 / (depth + 1))
    out = float(np.min(gd.stability_bound(objective, depth, lam, rho)))
    if sxx_max is not None:
        out = min(out, 2.0 / ((depth + 1) * sxx_max * float(np.max(u_star)) ** (2 * depth)))
    return out


def joint_stability_bound(objective: str, depth: int, lam, sigma2, syy) -> float:
    """Barlow Twins and VICReg: the smallest over modes of ``2 / (L k)``, ``k = 4 g w_star^(2 - 2/L)``, the
    curvature of the per-feature loss along the balanced direction of all ``L`` layers at ``w_star``
    (docs/theory.md section 16)."""
    g, q = joint.coefficients(objective, lam, sigma2, syy)
    w_star = np.sqrt(g / q)
    return float(np.min(2.0 / (depth * 4 * g * w_star ** (2 - 2 / depth))))


def plan(config: RealTrainConfig, m: modes_mod.Modes, syy=None):
    """``(t_pred, scope, lr, steps)``: predicted times of every mode, the indices of the
    ``config.modes`` modes predicted first, and the run's learning rate and step count.
    Barlow Twins and VICReg predict at each mode's ``(lam, sigma2, syy)`` (``syy``: the target
    covariance ``Syy``, needed by VICReg; :func:`jepa_dynamics.realdata.spectrum.mode_syy`)."""
    is_joint = config.objective in spec.JOINT_OBJECTIVES
    if config.objective == "vicreg" and syy is None:
        raise spec.SpecError("syy", "VICReg's prediction needs the target covariance Syy (pass syy=)")
    m_syy = mode_syy(m, syy) if syy is not None else None
    t_pred = predicted_times(config.objective, config.depth, m.lam, m.rho, config.eps, config.fraction,
                             sigma2=m.sigma2, syy=m_syy)
    learned = np.flatnonzero(np.isfinite(t_pred))
    if learned.size == 0:
        raise spec.SpecError("eps", f"no mode is ever learned by {config.objective} at depth {config.depth} with "
                                    f"eps = {config.eps:g} (all have lam <= 0 or eps >= fraction * w_star); "
                                    "use a smaller eps")
    scope = learned[np.argsort(t_pred[learned], kind="stable")][: config.modes]
    lr = config.lr
    if lr is None:
        if is_joint:
            sc_syy = np.ones(scope.size) if m_syy is None else m_syy[scope]
            bound = joint_stability_bound(config.objective, config.depth, m.lam[scope], m.sigma2[scope], sc_syy)
        else:
            sxx_max = float(np.linalg.eigvalsh(m.sxx)[-1])
            bound = stability_bound(config.objective, config.depth, m.lam[scope], m.rho[scope], sxx_max)
        lr = config.lr_factor * bound
        lr = min(lr, float(t_pred[scope].min()) / config.min_steps)  # resolve the first rise in time
    steps = config.steps
    if steps is None:
        steps = int(np.ceil(config.t_factor * t_pred[scope].max() / lr))
        if steps > config.max_steps:
            raise spec.SpecError(
                "train_modes", f"{config.objective} at depth {config.depth} needs {steps} steps at lr = {lr:.3g} to "
                f"reach the {scope.size}th mode (predicted t_star = {t_pred[scope].max():.3g}); train fewer modes, "
                f"use a larger eps, or raise --max-steps")
    return t_pred, scope, float(lr), int(steps)


def record_grid(steps: int, records_: int) -> np.ndarray:
    """Step 0, then ``records_`` log-spaced steps up to ``steps`` (unique integers)."""
    grid = np.concatenate([[0.0], np.geomspace(1, steps, records_)])
    return np.unique(np.round(grid).astype(np.int64))


@dataclass
class RealRun:
    """A finished run: ``steps``, ``times = lr * steps``, ``wbar`` (``(T, d, d)``, the encoder
    at every record), mode ``responses`` (``(T, d)``), predicted and observed critical times
    (``(d,)``), the ``scope`` and the order correlation over it."""

    config: RealTrainConfig
    lr: float
    steps: np.ndarray
    times: np.ndarray
    wbar: np.ndarray
    responses: np.ndarray
    responses_diagonal: np.ndarray
    t_pred: np.ndarray
    t_obs: np.ndarray
    t_obs_diagonal: np.ndarray
    scope: np.ndarray
    spearman: float
    spearman_diagonal: float
    t_matrix: Optional[np.ndarray] = None
    t_matrix_diagonal: Optional[np.ndarray] = None

    @property
    def ratio(self) -> np.ndarray:
        """``t_observed / t_predicted`` per mode (``nan`` outside what both define)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(self.t_pred), self.t_obs / self.t_pred, np.nan)

    @property
    def ratio_diagonal(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(self.t_pred), self.t_obs_diagonal / self.t_pred, np.nan)


def diagonal_responses(wbar, m: modes_mod.Modes) -> np.ndarray:
    """``q_i^T Wbar Sxx q_i / sigma2_i``: the part of the response to mode ``i`` that lies along
    ``q_i`` itself (for ``wbar`` of shape ``(..., d, d)``).  Equal to the response ``gamma_i``
    in the commuting case (``Wbar = sum_j w_j q_j q_j^T`` gives ``w_i`` for both); when the
    ``q_i`` are not orthogonal, ``gamma_i`` also counts what other learned modes leak into
    ``Wbar Sxx q_i``, and this does not."""
    wbar = np.asarray(wbar, dtype=np.float64)
    return np.einsum("ji,...jk,ki->...i", m.q, wbar, m.sxx @ m.q) / m.sigma2


class _Loop:
    """One compiled chunked SGD loop per (objective, depth, data shape)."""

    def __init__(self, config: RealTrainConfig, x, y, lr: float, chunk: int):
        self.config = config
        init_key, self.data_key = jax.random.split(jax.random.PRNGKey(config.seed))
        self.x, self.y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
        self.n, d = x.shape
        model = models.balanced(init_key, d, config.depth, config.eps, dtype=jnp.float64)
        self.optimizer = optax.sgd(lr)
        self.initial = (model, self.optimizer.init(model))
        self.chunk = chunk
        self.segment = jax.jit(self._segment)

    def _step(self, carry, k, x, y):
        model, opt_state = carry
        idx = jax.random.randint(jax.random.fold_in(self.data_key, k), (self.config.batch,), 0, self.n)
        batch = (x[idx], y[idx])
        grads = jax.grad(lambda mdl: objectives.loss(self.config.objective, "sampled", mdl, batch))(model)
        updates, opt_state = self.optimizer.update(grads, opt_state, model)
        return eqx.apply_updates(model, updates), opt_state

    def _segment(self, carry, start, n, x, y):
        # the pairs are arguments, not closed-over constants: baked into the program they would
        # make compilation slow and the executable as large as the data
        def body(c, i):
            return jax.lax.cond(i < n, lambda c_: self._step(c_, start + i, x, y), lambda c_: c_, c), None

        carry, _ = jax.lax.scan(body, carry, jnp.arange(self.chunk))
        return carry


def matrix_reference(config: RealTrainConfig, m: modes_mod.Modes, syy, times, w_star, progress=None):
    """Critical times of the exact full-matrix gradient flow (:mod:`jepa_dynamics.engines.matrix`, Tsit5,
    ``rtol = 1e-6``) of the population loss on the same covariances, from ``Wbar(0) = eps I``,
    read with the same levels and responses as the trained run: ``(t_gamma, t_diagonal)``
    (``None, None`` if the integration fails)."""
    from ..engines import matrix

    bar = records.progress_bar(len(times) - 1, desc=f"matrix reference {config.objective} L={config.depth}",
                               unit="time", enabled=progress, leave=False)
    try:
        res = matrix.integrate(matrix.MatrixConfig(config.objective, config.depth, eps=config.eps, rtol=1e-6,
                                                   atol=1e-10, seed=config.seed), (m.sxx, m.sxy, syy), times, modes=m,
                               callback=lambda *_: bar.update(1))
    except matrix.MatrixSolverError:
        return None, None
    finally:
        bar.close()
    return tuple(analysis.critical_times(times, r, w_star, config.fraction)
                 for r in (modes_mod.responses(res.wbar, m), diagonal_responses(res.wbar, m)))


def train_views(config: RealTrainConfig, m: modes_mod.Modes, x, y, *, syy=None, progress=None) -> RealRun:
    """Train on the centred pairs ``x, y`` (``(n, d)``; the covariances behind ``m`` are theirs)
    and compare the observed order of the modes with the predicted one.  With
    ``config.matrix`` (and ``syy``), also the exact matrix flow's critical times
    (:func:`matrix_reference`)."""
    t_pred, scope, lr, steps = plan(config, m, syy)
    grid = record_grid(steps, config.records)
    chunk = int(min(1000, max(np.diff(grid).max(), 1)))
    loop = _Loop(config, x, y, lr, chunk)
    carry = loop.initial
    wbars = [np.asarray(carry[0].encoder.matrix())]
    bar = records.progress_bar(steps, desc=f"train {config.objective} L={config.depth}", unit="step",
                               enabled=progress, leave=False)
    try:
        start = 0
        for stop in grid[1:].tolist():
            while start < stop:
                n = min(chunk, stop - start)
                carry = loop.segment(carry, jnp.asarray(start), jnp.asarray(n), loop.x, loop.y)
                start += n
            w = np.asarray(carry[0].encoder.matrix())
            if not np.all(np.isfinite(w)):
                raise FloatingPointError(
                    f"training diverged: the encoder is not finite by step {stop} ({config.objective} depth="
                    f"{config.depth} lr={lr:.3g}); lower --lr or --lr-factor")
            wbars.append(w)
            bar.update(stop - bar.n)
    finally:
        bar.close()
    wbar = np.stack(wbars)
    gamma = modes_mod.responses(wbar, m)
    times = lr * grid.astype(np.float64)
    level_ok = np.isfinite(t_pred)
    w_star = np.where(level_ok, mode_fixed_points(config.objective, config.depth, m, syy), np.inf)
    diag = diagonal_responses(wbar, m)
    t_obs, t_diag = (np.where(level_ok, analysis.critical_times(times, r, w_star, config.fraction), np.nan)
                     for r in (gamma, diag))

    def corr(t):
        return analysis.order_correlation(t[scope], -t_pred[scope]) if scope.size > 1 else float("nan")

    t_mx = t_mx_diag = None
    if config.matrix:
        if syy is None:
            raise spec.SpecError("matrix", "the matrix reference needs Syy (pass syy=)")
        t_mx, t_mx_diag = matrix_reference(config, m, syy, times, w_star, progress)
        if t_mx is not None:
            t_mx, t_mx_diag = (np.where(level_ok, t, np.nan) for t in (t_mx, t_mx_diag))
    return RealRun(config, lr, grid, times, wbar, gamma, diag, t_pred, t_obs, t_diag, scope, corr(t_obs), corr(t_diag),
                   t_mx, t_mx_diag)
