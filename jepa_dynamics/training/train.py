r"""Training real encoders with optax, under ``jit`` + ``lax.scan``, recording responses.

A run is described by a validated, frozen :class:`TrainConfig`.  :func:`train` runs it
in memory and returns a :class:`TrainResult`; :func:`jepa_dynamics.training.runs.run_training`
runs it into a folder (what ``jepa-dynamics train`` does):

* ``responses.csv`` -- ``step, time, feature, response``: the per-feature responses
  (``docs/theory.md``; :mod:`jepa_dynamics.training.analysis`) on the recording grid,
  appended and flushed as training goes;
* ``summary.csv`` -- one row per feature: ``lam, rho``, the theory's
  ``w_inf`` and ``t_star_theory``, the ``t_star_empirical`` read off
  the recorded responses, and the ``final_response`` (every column: ``docs/columns.md``);
* ``plot.png`` -- recorded responses (markers) over the theory's ``w(t)`` (lines);
* ``checkpoints/encoder_step<k>.eqx`` -- the encoder at the requested steps
  (:func:`load_encoder`), and ``state.eqx`` -- parameters, optimiser state, EMA target
  and step, from which ``resume=True`` continues with no row lost or repeated.

Time.  ``optimizer="sgd"`` is plain gradient descent, ``theta <- theta - lr grad``, so
step ``k`` is gradient-flow time ``t = lr * k`` (``docs/theory.md``).  For ``adam`` the
``time`` column is still ``lr * k``, but it is *not* gradient-flow time.

Loop.  One ``jax.jit`` of a ``lax.scan`` over ``chunk`` steps, with a step count
``n <= chunk`` as a traced argument (steps past ``n`` are skipped by ``lax.cond``), so
a run compiles once whatever its recording grid.  The Python loop over these chunks
drives the tqdm bar (stderr), the records and the checkpoints.  Minibatches use the
key ``fold_in(data_key, step)``, so results do not depend on how steps are chunked and
a resumed run equals an uninterrupted one bit for bit.  A linear encoder and predictor see a
minibatch only through its second moments: with ``batch >= 2 * dim`` those are drawn directly
from their Wishart distribution (:attr:`Program.scatter`, :meth:`jepa_dynamics.training.data.Dataset.scatter`),
the same distribution of trajectories for ``~1.5 d^2`` normals instead of ``2 d batch``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engines import _draws
from ..theory import aligned, joint, spec, balanced as theory
from . import analysis, data, models, objectives
from .. import records
from .._jax import jax, matmul_precision

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from ._config import (GRIDS, INITS, LOSSES, MODELS, OPTIMIZERS, PREDICTORS, RESPONSE_NOTE, TIME_NOTE,  # noqa: F401
                      TrainConfig, record_steps)

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train", "initial_model", "record_steps",
           "MODELS", "INITS", "LOSSES", "OPTIMIZERS", "GRIDS"]

@dataclass
class TrainResult:
    """``steps (T,)``, ``times (T,)`` = ``lr * steps``, ``responses (T, d)``, the final
    ``model`` (and EMA ``target``), the ``dataset``, and ``checkpoints``: step -> encoder."""

    config: TrainConfig
    dataset: data.Dataset
    steps: np.ndarray
    times: np.ndarray
    responses: np.ndarray
    model: models.Model
    target: object
    checkpoints: dict
    crossing_times: Optional[np.ndarray] = None

    def critical_times(self, w_star=None) -> np.ndarray:
        """Empirical critical times at ``fraction * w_star`` (default: ``fraction * |w_inf|`` of
        the run's own theory, :func:`crossing_level`; balanced runs: the deep linear ``w_star``
        at the run's depth, for every model).

        Linear encoders at the default level: the crossing tracked at every training step
        (``crossing_times``), so the answer does not depend on the recording grid.  Otherwise
        the recorded responses, interpolated (:func:`jepa_dynamics.training.analysis.critical_times`)."""
        if w_star is None and self.crossing_times is not None:
            return self.crossing_times
        if w_star is None:
            level = crossing_level(self.config, prediction(self.config, self.dataset, times=False))
            return analysis.critical_times(self.times, self.responses, level, 1.0)
        return analysis.critical_times(self.times, self.responses, w_star, self.config.fraction)


def prediction(config: TrainConfig, dataset: data.Dataset | None = None, lr: float = 0.0, *,
               times: bool = True, max_steps: int | None = None) -> aligned.Prediction:
    """The theory for ``config``'s own init, EMA and weight decay, per feature of its data:
    gradient flow (``lr = 0``), or the exact gradient-descent map with step ``lr`` (the
    summary's ``t_star_gd``; time = ``lr`` x the interpolated step count).

    The paper's setting (:attr:`TrainConfig.balanced_theory`, gradient flow) is
    :mod:`jepa_dynamics.theory`'s closed forms, as before; everything else is
    :func:`jepa_dynamics.theory.aligned.predict` with ``predictor_init = V0`` (aligned init;
    balanced and random inits use the balanced ``V0``), ``ema_rate = (1 - tau) / lr`` and
    ``weight_decay = beta``.  MLPs use the deep linear theory at their depth, as a reference.
    ``times=False``: only ``w_inf`` and ``learned`` are needed (the crossing level), and a
    balanced EMA run skips its 2-D integration (``critical_time`` is then ``nan``).
    ``max_steps``: the GD map's horizon (:func:`jepa_dynamics.theory.aligned.predict`; ``nan`` beyond it).
    Raises ``SpecError`` for a feature that starts at or above its critical level."""
    ds = config.dataset() if dataset is None else dataset
    if config.objective in spec.JOINT_OBJECTIVES:
        return _joint_prediction(config, ds, lr)
    if lr == 0 and (config.balanced_theory or (not times and config.balanced_fixed_point)):
        w_star = np.asarray(spec.fixed_point(config.objective, config.depth, ds.rho), dtype=np.float64)
        # the closed form also checks eps < fraction * w_star and that the times fit in float64
        t_star = theory.critical_time(config.objective, config.depth, ds.lam, ds.rho, config.eps, config.fraction)
        if not config.balanced_theory:
            t_star = np.full(w_star.shape, np.nan)
        return aligned.Prediction(w_star, np.ones(w_star.shape, dtype=bool), np.asarray(t_star, dtype=np.float64),
                                  np.full(w_star.shape, np.nan))
    v0 = config.predictor_init if config.init == "aligned" else None
    pred = aligned.predict(config.objective, config.depth, ds.lam, ds.rho, config.eps, v0,
                           ema_rate=config.ema_rate, weight_decay=config.weight_decay, lr=lr,
                           fraction=config.fraction, max_steps=max_steps if lr > 0 else None)
    return aligned.Prediction(*(np.asarray(x, t) for x, t in zip(pred, (np.float64, bool, np.float64, np.float64))))


def _joint_prediction(config: TrainConfig, ds: data.Dataset, lr: float) -> aligned.Prediction:
    """Barlow Twins and VICReg (default weights) from balanced init: :mod:`jepa_dynamics.theory.joint` with the
    dataset's ``sigma2`` and ``syy``; no gradient-descent map (``lr > 0``: ``nan`` times)."""
    kw = {"sigma2": ds.sigma2, "syy": ds.syy} if config.objective == "vicreg" else {}
    w_star = np.asarray(joint.fixed_point(config.objective, ds.lam, **kw), dtype=np.float64)
    t_star = joint.critical_time(config.objective, config.depth, ds.lam, config.eps, config.fraction, **kw)
    t_star = np.full(w_star.shape, np.nan) if lr > 0 else np.asarray(t_star, dtype=np.float64)
    return aligned.Prediction(w_star, np.ones(w_star.shape, dtype=bool), t_star, np.full(w_star.shape, np.nan))


def crossing_level(config: TrainConfig, pred: aligned.Prediction) -> np.ndarray:
    """The empirical critical level per feature: ``fraction * |w_inf|`` of the run's own theory
    (balanced runs: ``fraction * w_star``, as before); ``inf`` for a feature the theory says is
    never learned (its empirical critical time is then ``nan``)."""
    return np.where(pred.learned, config.fraction * np.abs(pred.w_inf), np.inf)


def initial_model(config: TrainConfig) -> models.Model:
    """The network ``config`` starts from, exactly as :func:`train` and
    :func:`jepa_dynamics.training.grid.train_group` draw it (key
    :func:`jepa_dynamics.engines._draws.init_key` of ``config.seed``); for a deep linear model,
    :func:`jepa_dynamics.training.models.matrix_state` turns it into the matrix flow's initial state,
    the same matrices ``jepa-dynamics matrix --init random --seed S`` starts from."""
    return _init_one(config, _draws.init_key(config.seed), config.dataset().dim)


def _init_one(config, key, dim):
    """:func:`_init_model` as one ``jit(vmap)`` over a batch of one key: the program ``train-grid``
    runs over its networks' keys, so the bits agree (:func:`jepa_dynamics.engines._draws.batch_of_one`)."""
    return _draws.batch_of_one(_init_from_key, key, config, dim)


def _init_from_key(key, config, dim):
    return _init_model(config, key, dim)


def _init_model(config, key, dim):
    kwargs = dict(model=config.model, width=config.width, activation=config.activation,
                  predictor=config.predictor, dtype=config.jnp_dtype)
    if config.init == "balanced":
        return models.balanced(key, dim, config.depth, config.eps, **kwargs)
    if config.init == "aligned":
        return models.aligned(key, dim, config.depth, config.eps, config.predictor_init, **kwargs)
    scale = config.init_scale if config.init_scale is not None else config.eps ** (1.0 / config.depth)
    return models.random_init(key, dim, config.depth, scale, **kwargs)


@dataclass(frozen=True)
class Program:
    """What a training step compiles to: everything static about a run.

    Runs that share a program (the same shape, objective, loss, optimiser, ...) differ only in
    their :func:`hyperparameters` and initial state, which are data: :mod:`jepa_dynamics.training.grid`
    trains many of them in one ``vmap`` of :func:`segment`."""

    model: str
    objective: str
    loss: str
    optimizer: str
    stop_gradient: bool
    ema: bool  # an EMA target is carried (tau is data; tau = 0 makes it the stop-gradient copy)
    weight_decay: bool  # grad += beta * theta (beta is data)
    batch: int
    dtype: str
    dataset: Optional[data.Dataset] = None  # the sampler, for loss="sampled"
    predictor: str = "linear"

    @staticmethod
    def of(config: TrainConfig, dataset: data.Dataset | None = None, *, ema=None, weight_decay=None) -> "Program":
        return Program(config.model, config.objective, config.loss, config.optimizer, config.stop_gradient,
                       config.ema > 0 if ema is None else ema,
                       config.weight_decay > 0 if weight_decay is None else weight_decay,
                       config.batch, config.dtype, dataset if config.loss == "sampled" else None, config.predictor)

    @property
    def scatter(self) -> bool:
        """Minibatches drawn as their scatter matrices (:meth:`jepa_dynamics.training.data.Dataset.scatter`).

        A linear encoder and predictor see a minibatch only through its second moments
        ``(Sxx, Sxy, Syy)``: the minibatch loss *is* the population loss of
        :mod:`jepa_dynamics.training.objectives` with the minibatch's moments in place of the
        population's, constant terms and target handling included, so its gradients are the
        minibatch gradients.  Drawing the moments from their exact (Wishart) distribution
        gives the same distribution of trajectories as drawing the ``batch`` samples, for
        ``2 d^2`` normals instead of ``2 d batch``.  Needs ``batch >= 2 d``; below that the
        samples are drawn."""
        return (self.loss == "sampled" and self.model == "linear" and self.predictor == "linear"
                and self.dataset is not None and self.batch >= 2 * self.dataset.dim)

    @property
    def jnp_dtype(self):
        return jnp.float64 if self.dtype == "float64" else jnp.float32

    @property
    def transform(self):
        """The optimiser without its learning rate (``-lr`` is applied as data): plain SGD is
        the identity, Adam is ``optax.scale_by_adam`` -- ``optax.sgd``/``optax.adam`` exactly."""
        return optax.identity() if self.optimizer == "sgd" else optax.scale_by_adam()


def hyperparameters(config: TrainConfig, dataset: data.Dataset, level, data_key) -> dict:
    """The per-run numbers a step reads (data, not code): ``lr``, ``weight_decay``, ``ema``
    (tau), the crossing ``level`` per feature, the population moments ``cov`` and the
    minibatch ``data_key``."""
    dtype = config.jnp_dtype
    return {"lr": jnp.asarray(config.lr, jnp.float64), "weight_decay": jnp.asarray(config.weight_decay, jnp.float64),
            "ema": jnp.asarray(config.ema, jnp.float64), "level": jnp.asarray(level, dtype),
            "cov": tuple(jnp.asarray(a, dtype) for a in dataset.covariances()), "data_key": data_key}


def initial_state(program: Program, hp: dict, model, x_eval=None):
    """``(model, optimiser state, EMA target, crossing tracker)`` at step 0."""
    target = objectives.ema_target(model.encoder) if program.ema else None
    r0 = jnp.asarray(responses(program, model.encoder, x_eval), program.jnp_dtype)
    first = jnp.where(r0 >= hp["level"], 0, -1).astype(jnp.int64)
    crossing = (first, r0, r0, r0)  # (first step at or above the level, previous, before, at the crossing)
    return model, program.transform.init(model), target, crossing


def responses(program: Program, encoder, x_eval=None):
    if program.model == "linear":
        return analysis.responses_linear(encoder.matrix())
    return analysis.responses_from_samples(encoder, x_eval)


def draw(program: Program, hp: dict, k):
    """Step ``k``'s data: the population moments, or a minibatch from the key ``fold_in(data_key, k)``
    -- its scatter matrices (:attr:`Program.scatter`) or its samples ``(x, y)``."""
    if program.loss == "population":
        return hp["cov"]
    key = jax.random.fold_in(hp["data_key"], k)
    if program.scatter:  # the minibatch's second moments, for the population loss
        return program.dataset.scatter(key, program.batch, program.jnp_dtype)
    return program.dataset.sample(key, program.batch, program.jnp_dtype)


def step(program: Program, hp: dict, state, k):
    """One optimiser step ``k -> k + 1`` of one run (pure; ``vmap`` it over runs).

    ``grads (+ beta theta)`` -> Adam's scaling (or none) -> ``theta - lr * update`` (the
    same operations as ``optax.chain(add_decayed_weights(beta), sgd(lr) | adam(lr))``), then
    the EMA target ``W_T <- tau W_T + (1 - tau) Wbar`` from the new parameters, then (linear
    encoders) the crossing tracker."""
    model, opt_state, target, crossing = state
    dtype = program.jnp_dtype
    kind = "sampled" if program.loss == "sampled" and not program.scatter else "population"
    batch = draw(program, hp, k)

    def loss_fn(m):
        return objectives.loss(program.objective, kind, m, batch, target, stop_gradient=program.stop_gradient)

    grads = jax.grad(loss_fn)(model)
    if program.weight_decay:
        beta = hp["weight_decay"]
        grads = jax.tree_util.tree_map(lambda g, p: g + beta.astype(g.dtype) * p, grads, model)
    updates, opt_state = program.transform.update(grads, opt_state, model)
    neg_lr = -hp["lr"]
    updates = jax.tree_util.tree_map(lambda u: neg_lr.astype(u.dtype) * u, updates)
    model = eqx.apply_updates(model, updates)
    if target is not None:
        tau = hp["ema"]
        target = objectives.ema_update(target, model.encoder, tau.astype(dtype), (1.0 - tau).astype(dtype))
    if program.model == "linear":
        first, prev, before, at = crossing
        r = analysis.responses_linear(model.encoder.matrix()).astype(prev.dtype)
        now = (first < 0) & (r >= hp["level"])
        crossing = (jnp.where(now, k + 1, first), r, jnp.where(now, prev, before), jnp.where(now, r, at))
    return model, opt_state, target, crossing


def segment(program: Program, chunk: int, hp: dict, state, start, n):
    """Steps ``start .. start + n - 1`` (``n <= chunk`` traced: one compile per ``chunk``)."""
    def body(carry, i):
        carry = jax.lax.cond(i < n, lambda c: step(program, hp, c, start + i), lambda c: c, carry)
        return carry, None

    state, _ = jax.lax.scan(body, state, jnp.arange(chunk))
    return state


def crossing_steps(crossing, level) -> np.ndarray:
    """The tracked crossing as an interpolated step count per feature (trailing axis):
    linear between the steps just before and at the crossing, ``0`` if it starts at or above
    the level, ``nan`` if not reached.  Multiply by ``lr`` for the time."""
    first, _, before, at = (np.asarray(a, np.float64) for a in crossing)
    level = np.broadcast_to(np.asarray(level, np.float64), first.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(first > 0, analysis.interpolate_crossing(first - 1, first, before, at, level), 0.0)
    return np.where(first >= 0, k, np.nan)


def finite(model):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf))
                              for leaf in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))]))


@functools.lru_cache(maxsize=64)
def _compiled(program: Program, chunk: int):
    """The jitted chunk of steps and responses of a program: runs that differ only in their
    hyperparameters and initial state (data) share one compile."""
    return jax.jit(functools.partial(segment, program, chunk)), jax.jit(functools.partial(responses, program))


_finite = jax.jit(finite)


class _Runner:
    """The compiled pieces of one run: initial state, chunked steps, responses."""

    def __init__(self, config: TrainConfig):
        self.config = config
        with matmul_precision(config.matmul_precision):
            self._build(config)

    def _build(self, config):
        self.dataset = config.dataset()
        init_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)  # _draws.init_key's
        self.prediction = prediction(config, self.dataset, times=False)
        # Linear encoders: the crossing of fraction * |w_inf| is tracked at every step inside the
        # scan, so the empirical critical time does not depend on the recording grid.
        self.reference = np.abs(self.prediction.w_inf)
        self.program = Program.of(config, self.dataset)
        self.hp = hyperparameters(config, self.dataset, crossing_level(config, self.prediction), data_key)
        self.level = self.hp["level"]
        model = _init_one(config, init_key, self.dataset.dim)
        self.x_eval = None
        if config.model != "linear":
            self.x_eval, _ = self.dataset.sample(eval_key, config.eval_batch, config.jnp_dtype)
        self.initial = initial_state(self.program, self.hp, model, self.x_eval)
        boundaries = set(record_steps(config).tolist()) | set(config.checkpoints) | {config.steps}
        self.boundaries = np.array(sorted(boundaries), dtype=np.int64)
        gaps = np.diff(self.boundaries)
        self.chunk = int(min(config.chunk, gaps.max())) if gaps.size else 1
        self._segment, self._responses = _compiled(self.program, self.chunk)
        self._finite = _finite

    def crossing_times(self, state) -> np.ndarray | None:
        """Linear encoders: ``t_star`` per feature from the step-by-step tracker, interpolated
        linearly in time between the steps just before and at the crossing (``nan`` if not
        reached, ``0`` if the response starts at or above the level); ``None`` for MLPs."""
        if self.config.model != "linear":
            return None
        return self.config.lr * crossing_steps(state[3], self.level)

    def responses(self, state) -> np.ndarray:
        with matmul_precision(self.config.matmul_precision):
            return np.asarray(self._responses(state[0].encoder, self.x_eval), dtype=np.float64)

    def advance(self, state, start: int, stop: int):
        """Run steps ``start .. stop - 1`` (``stop - start`` of them) and return the new state.

        Raises :class:`TrainingDiverged` if the parameters are no longer finite at ``stop``."""
        with matmul_precision(self.config.matmul_precision):
            while start < stop:
                n = min(self.chunk, stop - start)
                state = self._segment(self.hp, state, jnp.asarray(start), jnp.asarray(n))
                start += n
        if not bool(self._finite(state[0])):
            cfg = self.config
            raise TrainingDiverged(
                f"training diverged: the parameters are not finite by step {stop} ({cfg.model} {cfg.objective} "
                f"depth={cfg.depth} optimizer={cfg.optimizer} lr={cfg.lr:g}); lower --lr"
                + (f" or --init-scale (now {cfg.init_scale:g})" if cfg.init_scale is not None and cfg.init_scale > 1
                   else ""))
        return state


class TrainingDiverged(RuntimeError):
    """Gradient steps blew the parameters up to inf/NaN; the message names the run and what to change."""


def _iterate(runner, state, start, progress):
    """Yield ``(step, state)`` at every boundary after ``start``, advancing between them."""
    cfg = runner.config
    bar = records.progress_bar(cfg.steps, initial=start, enabled=progress, leave=False, unit="step",
                               desc=f"train {cfg.model} {cfg.objective} L={cfg.depth}")
    try:
        for b in runner.boundaries[runner.boundaries > start].tolist():
            state = runner.advance(state, start, b)
            bar.update(b - start)
            start = b
            yield b, state
    finally:
        bar.close()


def train(config: TrainConfig, *, progress=False) -> TrainResult:
    """Run ``config`` in memory: responses at :func:`record_steps`, encoders at ``checkpoints``."""
    runner = _Runner(config)
    rec = set(record_steps(config).tolist())
    state = runner.initial
    steps, rows, ckpts = [0], [runner.responses(state)], {}
    if 0 in config.checkpoints:
        ckpts[0] = state[0].encoder
    for b, state in _iterate(runner, state, 0, progress):
        if b in rec:
            steps.append(b)
            rows.append(runner.responses(state))
        if b in config.checkpoints:
            ckpts[b] = state[0].encoder
    steps = np.asarray(steps, dtype=np.int64)
    return TrainResult(config, runner.dataset, steps, config.lr * steps.astype(np.float64), np.stack(rows),
                       state[0], state[2], ckpts, runner.crossing_times(state))
