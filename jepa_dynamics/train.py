r"""Training real encoders with optax, under ``jit`` + ``lax.scan``, recording responses.

A run is described by a validated, frozen :class:`TrainConfig`.  :func:`train` runs it
in memory and returns a :class:`TrainResult`; :func:`run_training` runs it into a
folder (what ``jepa-dynamics train`` does):

* ``responses.csv`` -- ``step, time, feature, response``: the per-feature responses
  (``docs/theory.md``; :mod:`jepa_dynamics.analysis`) on the recording grid,
  appended and flushed as training goes;
* ``summary.csv`` -- one row per feature: ``lam, rho``, the deep linear theory's
  ``fixed_point`` and ``critical_time_theory``, the ``critical_time_empirical`` read off
  the recorded responses, and the ``final_response``;
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
a resumed run equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time as _time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import analysis, data, models, objectives, records, spec, theory
from ._jax import MATMUL_PRECISIONS, jax, matmul_precision

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train", "run_training", "load_encoder", "record_steps",
           "run_files", "unreached_note",
           "MODELS", "INITS", "LOSSES", "OPTIMIZERS", "GRIDS"]

MODELS = ("linear", "mlp")
INITS = ("balanced", "aligned", "random")
LOSSES = ("population", "sampled")
OPTIMIZERS = ("sgd", "adam")
GRIDS = ("linear", "log")
PREDICTORS = ("linear", "mlp")

RESPONSE_NOTE = ("gamma_i = ||Cov(f(x), x_i)|| / Var(x_i): the norm of column i of Wbar for linear encoders "
                 "(exact); for MLPs the sample estimate on a fixed seeded batch of eval_batch draws")
TIME_NOTE = "t = lr * step (gradient-flow time for optimizer=sgd; for adam only a rescaled step count)"


def _as_tuple(values, name):
    if values is None:
        return None
    if isinstance(values, str):
        values = spec.parse_list(values, name)
    return tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))


@dataclass(frozen=True)
class TrainConfig:
    """One training run; validated on construction (``SpecError`` names the bad field).

    Data: ``lam`` and ``rho`` (per feature, the ``custom`` family) or ``dist`` (a family
    of :mod:`jepa_dynamics.data` with ``dim`` features).  Model: ``model`` (``linear`` |
    ``mlp``), ``depth``, MLP ``width`` (default ``dim``) and ``activation``,
    ``predictor`` (``linear`` | ``mlp``).  Init: ``balanced`` (``Wbar(0) = eps I``),
    ``aligned`` (spec section 10: diagonal layers ``eps**(1/depth) I`` and predictor
    ``predictor_init I``, signed; default the balanced value) or ``random`` (scale
    ``init_scale``, default ``eps**(1/depth)`` so the end-to-end map starts at size
    ~``eps``).  Objective: ``jepa`` | ``mae``; ``ema = tau`` in ``[0, 1)`` (0: stop-gradient
    target; the target is updated after the parameters, ``kappa = (1 - tau) / lr`` in
    gradient-flow time); ``stop_gradient=False`` lets the gradient flow through the JEPA
    target.  ``weight_decay = beta``: coupled L2 on every layer and the predictor
    (``grad += beta theta``, before SGD or Adam).  Loss: ``population`` (exact, linear
    models) or ``sampled`` (minibatches of ``batch``).  Optimiser ``sgd`` | ``adam`` with
    ``lr`` for ``steps`` steps.  Records: ``records`` points on a ``linear`` or ``log`` grid
    of steps (plus step 0); encoder ``checkpoints`` at the listed steps.
    ``matmul_precision``: ``highest`` (full float32 products, the default) or ``tf32``
    (GPUs' fast mode; spec section 13), recorded in the summary's provenance."""

    model: str = "linear"
    objective: str = "jepa"
    depth: int = 1
    lam: Optional[tuple] = None
    rho: Optional[tuple] = None
    dist: Optional[str] = None
    dim: int = 100
    eps: float = 1e-2
    init: str = "balanced"
    init_scale: Optional[float] = None
    predictor_init: Optional[float] = None
    loss: str = "population"
    batch: int = 256
    optimizer: str = "sgd"
    lr: float = 1e-2
    steps: int = 1000
    ema: float = 0.0
    weight_decay: float = 0.0
    stop_gradient: bool = True
    seed: int = 0
    width: Optional[int] = None
    activation: str = "tanh"
    predictor: str = "linear"
    fraction: float = 0.5
    records: int = 1000
    grid: str = "linear"
    checkpoints: tuple = ()
    eval_batch: int = 4096
    dtype: Optional[str] = None
    chunk: int = 1000
    matmul_precision: str = "highest"

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        spec.check_choice(self.model, MODELS, "model")
        spec.check_objective(self.objective)
        put("depth", spec.check_depth(self.depth))
        spec.check_choice(self.init, INITS, "init")
        spec.check_choice(self.loss, LOSSES, "loss")
        spec.check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        spec.check_choice(self.grid, GRIDS, "grid")
        spec.check_choice(self.predictor, PREDICTORS, "predictor")
        spec.check_choice(self.activation, tuple(models.ACTIVATIONS), "activation")
        spec.check_choice(self.matmul_precision, tuple(MATMUL_PRECISIONS), "matmul_precision")
        put("steps", spec.check_positive_int(self.steps, "steps"))
        put("batch", spec.check_positive_int(self.batch, "batch"))
        put("records", spec.check_positive_int(self.records, "records"))
        put("eval_batch", spec.check_positive_int(self.eval_batch, "eval_batch"))
        put("chunk", spec.check_positive_int(self.chunk, "chunk"))
        put("dim", spec.check_positive_int(self.dim, "dim"))
        put("seed", spec.check_nonnegative_int(self.seed, "seed"))
        put("lr", float(spec.check_positive(self.lr, "lr")))
        put("fraction", float(spec.check_unit_interval(self.fraction, "fraction")))
        put("ema", spec.check_ema(self.ema))
        put("weight_decay", float(spec.check_nonnegative(self.weight_decay, "weight_decay")))
        if self.predictor_init is not None:
            if self.init != "aligned":
                raise spec.SpecError("predictor_init", f"only for --init aligned (got --init {self.init})")
            v0 = np.asarray(self.predictor_init, dtype=np.float64)
            if v0.ndim != 0 or not np.isfinite(v0):
                raise spec.SpecError("predictor_init", f"must be one finite number, got {self.predictor_init!r}")
            put("predictor_init", float(v0))
        if self.width is not None:
            put("width", spec.check_positive_int(self.width, "width"))
        if self.init_scale is not None:
            put("init_scale", float(spec.check_positive(self.init_scale, "init_scale")))
        dtype = self.dtype or ("float64" if self.model == "linear" else "float32")
        put("dtype", spec.check_choice(dtype, ("float32", "float64"), "dtype"))
        # data
        if self.lam is not None or self.rho is not None:
            if self.dist not in (None, "custom"):
                raise spec.SpecError("dist", f"give either --lam/--rho or --dist, not both (got --dist {self.dist})")
            if self.lam is None or self.rho is None:
                missing = "rho" if self.rho is None else "lam"
                raise spec.SpecError(missing, "--lam and --rho go together (one value per feature each)")
            lam, rho = _as_tuple(self.lam, "lam"), _as_tuple(self.rho, "rho")
            spec.check_same_length(lam, rho, "lam", "rho")
            spec.check_lam(lam), spec.check_rho(rho)
            put("lam", lam), put("rho", rho), put("dist", "custom"), put("dim", len(lam))
        elif self.dist is None:
            raise spec.SpecError("dist", "give the data: --lam and --rho, or --dist")
        else:
            spec.check_choice(self.dist, data.FAMILIES[1:], "dist")
        # combinations
        if self.loss == "population" and (self.model != "linear" or self.predictor != "linear"):
            raise spec.SpecError("loss", "population losses need a linear encoder and predictor; use --loss sampled")
        if self.objective == "mae" and self.ema > 0:
            raise spec.SpecError("ema", "an EMA target only exists for --objective jepa")
        if self.ema > 0 and not self.stop_gradient:
            raise spec.SpecError("ema", "an EMA target carries no gradient; drop stop_gradient=False")
        if self.init != "random" and self.model == "mlp" and (self.width or self.dim) < self.dim:
            raise spec.SpecError("width", f"{self.init} init needs width >= dim = {self.dim}, got {self.width}")
        if self.init == "aligned" and self.predictor != "linear":
            raise spec.SpecError("predictor", "aligned init needs a linear predictor (V0 I)")
        checkpoints = tuple(sorted({spec.check_nonnegative_int(k, "checkpoints") for k in self.checkpoints}))
        if checkpoints and checkpoints[-1] > self.steps:
            raise spec.SpecError("checkpoints", f"steps must lie in [0, steps={self.steps}], got {checkpoints[-1]}")
        put("checkpoints", checkpoints)
        put("eps", float(spec.check_positive(self.eps, "eps")))
        # every feature starts below its critical level, and the theory's critical times (the
        # summary's reference) are finite in float64: both checked now rather than after the run
        # (jepa_dynamics.grid checks a whole grid at once, vectorised, and defers this one)
        if _THEORY_CHECK[0]:
            prediction(self, times=False)

    def dataset(self) -> data.Dataset:
        return data.make(self.dist, lam=self.lam, rho=self.rho, dim=self.dim)

    @property
    def ema_rate(self) -> float:
        """``kappa = (1 - tau) / lr`` in gradient-flow time (``inf``: stop-gradient, ``tau = 0``)."""
        return (1.0 - self.ema) / self.lr if self.ema > 0 else np.inf

    @property
    def balanced_theory(self) -> bool:
        """The paper's setting (spec sections 5-6): balanced init, stop-gradient or MAE, no weight
        decay.  Its reference is :mod:`jepa_dynamics.theory`'s, bit for bit as before section 10."""
        return self.balanced_fixed_point and self.ema == 0

    @property
    def balanced_fixed_point(self) -> bool:
        """A balanced predictor (``V0 = eps**(1/depth)``) and no weight decay: ``w_inf = w_star``
        whatever the EMA rate (the target only delays the rise)."""
        v0_balanced = self.init != "aligned" or self.predictor_init is None \
            or self.predictor_init == self.eps ** (1.0 / self.depth)
        return v0_balanced and self.weight_decay == 0

    @property
    def exact_map(self) -> bool:
        """Whether the exact per-feature GD map (spec section 10) describes this run: linear
        encoder, population loss, plain SGD, a diagonal (balanced or aligned) init."""
        return (self.model == "linear" and self.loss == "population" and self.optimizer == "sgd"
                and self.init != "random" and self.stop_gradient)

    @property
    def jnp_dtype(self):
        return jnp.float64 if self.dtype == "float64" else jnp.float32

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for k in ("lam", "rho", "checkpoints"):
            out[k] = list(out[k]) if out[k] is not None else None
        return out


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
        the recorded responses, interpolated (:func:`jepa_dynamics.analysis.critical_times`)."""
        if w_star is None and self.crossing_times is not None:
            return self.crossing_times
        if w_star is None:
            level = crossing_level(self.config, prediction(self.config, self.dataset, times=False))
            return analysis.critical_times(self.times, self.responses, level, 1.0)
        return analysis.critical_times(self.times, self.responses, w_star, self.config.fraction)


def record_steps(config: TrainConfig) -> np.ndarray:
    """Steps at which responses are recorded: 0, then ``records`` points up to ``steps``."""
    if config.grid == "linear":
        grid = np.linspace(0, config.steps, min(config.records, config.steps) + 1)
    else:
        grid = np.concatenate([[0.0], np.geomspace(1, config.steps, config.records)])
    return np.unique(np.round(grid).astype(np.int64))


@dataclass(frozen=True)
class Prediction:
    """The theory's per-feature prediction for a run (spec section 10): the gradient-flow limit
    ``w_inf`` (signed), whether the feature is ``learned`` (``w_inf != 0``), and the
    ``critical_time`` (``inf`` if not learned)."""

    w_inf: np.ndarray
    learned: np.ndarray
    critical_time: np.ndarray


_THEORY_CHECK = [True]


def prediction(config: TrainConfig, dataset: data.Dataset | None = None, lr: float = 0.0, *,
               times: bool = True) -> Prediction:
    """The theory for ``config``'s own init, EMA and weight decay, per feature of its data:
    gradient flow (``lr = 0``), or the exact gradient-descent map with step ``lr`` (the
    summary's ``critical_time_gd``; time = ``lr`` x the interpolated step count).

    The paper's setting (:attr:`TrainConfig.balanced_theory`, gradient flow) is
    :mod:`jepa_dynamics.theory`'s closed forms, as before; everything else is
    :func:`jepa_dynamics.aligned.predict` with ``predictor_init = V0`` (aligned init;
    balanced and random inits use the balanced ``V0``), ``ema_rate = (1 - tau) / lr`` and
    ``weight_decay = beta``.  MLPs use the deep linear theory at their depth, as a reference.
    ``times=False``: only ``w_inf`` and ``learned`` are needed (the crossing level), and a
    balanced EMA run skips its 2-D integration (``critical_time`` is then ``nan``).
    Raises ``SpecError`` for a feature that starts at or above its critical level."""
    ds = config.dataset() if dataset is None else dataset
    if lr == 0 and (config.balanced_theory or (not times and config.balanced_fixed_point)):
        w_star = np.asarray(spec.fixed_point(config.objective, config.depth, ds.rho), dtype=np.float64)
        # the closed form also checks eps < fraction * w_star and that the times fit in float64
        t_star = theory.critical_time(config.objective, config.depth, ds.lam, ds.rho, config.eps, config.fraction)
        if not config.balanced_theory:
            t_star = np.full(w_star.shape, np.nan)
        return Prediction(w_star, np.ones(w_star.shape, dtype=bool), np.asarray(t_star, dtype=np.float64))
    from . import aligned

    v0 = config.predictor_init if config.init == "aligned" else None
    pred = aligned.predict(config.objective, config.depth, ds.lam, ds.rho, config.eps, v0,
                           ema_rate=config.ema_rate, weight_decay=config.weight_decay, lr=lr,
                           fraction=config.fraction)
    return Prediction(np.asarray(pred.w_inf, np.float64), np.asarray(pred.learned, bool),
                      np.asarray(pred.critical_time, np.float64))


def crossing_level(config: TrainConfig, pred: Prediction) -> np.ndarray:
    """The empirical critical level per feature: ``fraction * |w_inf|`` of the run's own theory
    (balanced runs: ``fraction * w_star``, as before); ``inf`` for a feature the theory says is
    never learned (its empirical critical time is then ``nan``)."""
    return np.where(pred.learned, config.fraction * np.abs(pred.w_inf), np.inf)


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
    their :func:`hyperparameters` and initial state, which are data: :mod:`jepa_dynamics.grid`
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

    @staticmethod
    def of(config: TrainConfig, dataset: data.Dataset | None = None, *, ema=None, weight_decay=None) -> "Program":
        return Program(config.model, config.objective, config.loss, config.optimizer, config.stop_gradient,
                       config.ema > 0 if ema is None else ema,
                       config.weight_decay > 0 if weight_decay is None else weight_decay,
                       config.batch, config.dtype, dataset if config.loss == "sampled" else None)

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


def step(program: Program, hp: dict, state, k):
    """One optimiser step ``k -> k + 1`` of one run (pure; ``vmap`` it over runs).

    ``grads (+ beta theta)`` -> Adam's scaling (or none) -> ``theta - lr * update`` (the
    same operations as ``optax.chain(add_decayed_weights(beta), sgd(lr) | adam(lr))``), then
    the EMA target ``W_T <- tau W_T + (1 - tau) Wbar`` from the new parameters, then (linear
    encoders) the crossing tracker."""
    model, opt_state, target, crossing = state
    dtype = program.jnp_dtype
    if program.loss == "population":
        batch = hp["cov"]
    else:
        batch = program.dataset.sample(jax.random.fold_in(hp["data_key"], k), program.batch, dtype)

    def loss_fn(m):
        return objectives.loss(program.objective, program.loss, m, batch, target, stop_gradient=program.stop_gradient)

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
        init_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
        self.prediction = prediction(config, self.dataset, times=False)
        # Linear encoders: the crossing of fraction * |w_inf| is tracked at every step inside the
        # scan, so the empirical critical time does not depend on the recording grid.
        self.reference = np.abs(self.prediction.w_inf)
        self.program = Program.of(config, self.dataset)
        self.hp = hyperparameters(config, self.dataset, crossing_level(config, self.prediction), data_key)
        self.level = self.hp["level"]
        model = _init_model(config, init_key, self.dataset.dim)
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
                f"depth={cfg.depth} optimizer={cfg.optimizer} lr={cfg.lr:g}); lower --lr")
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


# --- files ------------------------------------------------------------------------------------------------

RESPONSE_COLUMNS = ("step", "time", "feature", "response")
SUMMARY_COLUMNS = ("feature", "lam", "rho", "fixed_point", "critical_time_theory", "critical_time_empirical",
                   "final_response", "critical_time_gd", "learned_theory", "learned_empirical")


def _save_atomic(path, tree):
    tmp = f"{path}.tmp-{os.getpid()}"
    eqx.tree_serialise_leaves(tmp, tree)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _state_tree(state, step):
    return (*state, jnp.asarray(step, dtype=jnp.int64))


def checkpoint_path(out_dir: str, step: int) -> str:
    return os.path.join(out_dir, "checkpoints", f"encoder_step{int(step)}.eqx")


def load_encoder(config: TrainConfig, path: str):
    """The encoder saved by :func:`run_training` at ``path`` (same ``config``)."""
    like = _init_model(config, jax.random.PRNGKey(0), config.dataset().dim).encoder
    return eqx.tree_deserialise_leaves(path, like)


RUN_FILES = ("responses.csv", "summary.csv", "plot.png", "state.eqx")


def run_files(out_dir: str) -> list:
    """The files of a run that exist in ``out_dir`` now: :data:`RUN_FILES` and the encoder
    checkpoints ``checkpoints/encoder_step<k>.eqx`` (nothing else in the folder is a run's)."""
    paths = [os.path.join(out_dir, n) for n in RUN_FILES]
    folder = os.path.join(out_dir, "checkpoints")
    if os.path.isdir(folder):
        paths += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                  if n.startswith("encoder_step") and n.endswith(".eqx") and n[12:-4].isdigit()]
    return [p for p in paths if os.path.isfile(p)]


def _remove(paths) -> None:
    for path in paths:
        os.remove(path)
    for path in paths:
        folder = os.path.dirname(path)
        if os.path.basename(folder) == "checkpoints" and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


@dataclass
class _Resume:
    """What a checked ``--resume`` continues from: the state at ``start``, the ``rows`` of
    ``responses.csv`` up to it (its first ``keep`` bytes), and ``extend_from``: the shorter
    run's ``steps`` when the command extends a run (else ``None``)."""

    state: tuple
    start: int
    rows: int
    keep: int
    body: int
    extend_from: Optional[int]


def _refuse(problem: str):
    raise spec.SpecError("resume", problem + "; rerun without --resume to start over (that removes the old run's "
                                             "files)")


def _check_rows(path: str, steps, dim: int, lr: float) -> tuple:
    """``(first data byte, end byte)`` of the rows ``(step, feature)`` for ``steps x range(dim)``,
    checked one by one at the head of ``path`` (streamed); refuses naming the first bad row."""
    with open(path, "rb") as f:
        raw = f.readline()
        while raw.startswith(b"#"):
            raw = f.readline()
        if raw != (",".join(RESPONSE_COLUMNS) + "\n").encode():
            _refuse(f"cannot resume: {path} has no '{','.join(RESPONSE_COLUMNS)}' header")
        body = keep = f.tell()
        n = 0
        for step in steps:
            head = (f"{step},{lr * step!r},").encode()
            for feature in range(dim):
                raw = f.readline()
                n += 1
                if not raw.endswith(b"\n"):
                    _refuse(f"cannot resume: {path} holds {n - 1} complete rows, and the saved state (step "
                            f"{steps[-1]}) needs {len(steps) * dim}")
                parts = raw[len(head):].split(b",")
                ok = raw.startswith(head) and len(parts) == 2 and parts[0] == str(feature).encode()
                try:
                    ok = ok and np.isfinite(float(parts[1]))
                except ValueError:
                    ok = False
                if not ok:
                    _refuse(f"cannot resume: data row {n} of {path} is not the run's row (step {step}, feature "
                            f"{feature}): found {records.CsvAppender._show(raw)}")
                keep += len(raw)
    return body, keep


def _plan_resume(config: TrainConfig, runner: _Runner, out_dir: str) -> Optional[_Resume]:
    """Check everything a ``--resume`` into ``out_dir`` needs, modifying nothing.

    ``None``: there is nothing to continue (no run there, or one that never saved its state,
    whose rows a fresh start rewrites).  Refuses (``SpecError`` naming ``--resume`` and every
    flag that differs) a run written for other parameters, an unreadable ``state.eqx`` and rows
    that are not the run's.  A command that differs only by a larger ``--steps`` extends the run."""
    state_path, resp_path = os.path.join(out_dir, "state.eqx"), os.path.join(out_dir, "responses.csv")
    if not os.path.exists(state_path) and not os.path.exists(resp_path):
        return None
    if not os.path.exists(resp_path):
        _refuse(f"cannot resume {out_dir}: it holds {state_path} but no responses.csv")
    old = records.read_key(resp_path)
    if not isinstance(old, dict):
        _refuse(f"cannot resume {out_dir}: {resp_path} has no '# grid:' line, so train did not write it")
    new = json.loads(json.dumps(config.as_dict(), sort_keys=True))
    diff = records.key_differences(old, new, f"the run in {out_dir}")
    extend_from = None
    if [k for k in set(old) | set(new) if old.get(k) != new.get(k)] == ["steps"] and isinstance(old["steps"], int):
        if config.steps < old["steps"]:
            _refuse(f"cannot resume {out_dir}: {diff[0]}, and a run cannot be shortened")
        extend_from = old["steps"]
    elif diff:
        _refuse(f"cannot resume {out_dir}: it was written for other parameters ({'; '.join(diff)})")
    if not os.path.exists(state_path):
        return None
    try:
        loaded = eqx.tree_deserialise_leaves(state_path, _state_tree(runner.initial, 0))
        start = int(loaded[4])
    except Exception as err:  # noqa: BLE001 -- any failure to read it means the same to the user
        _refuse(f"cannot resume {out_dir}: {state_path} cannot be read ({type(err).__name__}): it is damaged or "
                "was written by another version")
    last = extend_from if extend_from is not None else config.steps
    if not 0 <= start <= last:
        _refuse(f"cannot resume {out_dir}: {state_path} is at step {start}, outside the run's 0..{last}")
    old_config = config if extend_from is None else dataclasses.replace(config, steps=extend_from)
    rec = record_steps(old_config)
    steps = rec[rec <= start]
    body, keep = _check_rows(resp_path, steps.tolist(), runner.dataset.dim, config.lr)
    return _Resume(loaded[:4], start, steps.size * runner.dataset.dim, keep, body, extend_from)


def _footprint(config: TrainConfig, dim: int) -> tuple:
    """``(responses.csv bytes, peak memory bytes)`` estimated before a run: recorded rows at
    ~60 characters, and float64 parameters, gradients, optimiser moments, EMA target and the
    covariance / evaluation arrays, twice over for the compiled step's temporaries."""
    rows = (min(config.records, config.steps) + 1) * dim
    width = config.width or dim
    params = dim * dim * (config.depth + 2) if config.model == "linear" else dim * width * (config.depth + 2)
    arrays = params * (6 if config.optimizer == "adam" else 4) + 2 * dim * dim + config.eval_batch * (dim + width)
    if config.loss == "sampled":
        arrays += 4 * config.batch * max(dim, width) * (config.depth + 1)
    return rows * 60.0, 16.0 * arrays


def _default_command(config):
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v != defaults[k])
    return f"jepa_dynamics.train.run_training(TrainConfig({args}))"


def run_training(config: TrainConfig, out_dir: str, *, resume: bool = False, progress=None,
                 command: str | None = None, save_every: float = 10.0, allow_large: bool = False,
                 report=None) -> TrainResult:
    """Run ``config`` into ``out_dir`` (see the module docstring for the files).

    Rows are appended and flushed as each block of steps finishes; ``state.eqx`` (written
    via a temporary file and ``os.replace``) is refreshed every ``save_every`` seconds, at
    encoder checkpoints, at the end and on Ctrl-C.  ``command`` is the provenance line (the
    CLI passes its command line); ``report(message)`` hears the notes for the user (an
    extended run, features that did not reach their crossing).

    Everything is checked before any file is touched, so a refused command leaves the
    folder byte-identical: the inputs, the estimated size (``allow_large`` skips that) and,
    for ``resume=True``, that the folder holds this run (every differing flag is named), a
    readable ``state.eqx`` and the run's rows up to it.  ``resume=True`` then drops any
    rows recorded after the saved state and continues; the files equal an uninterrupted
    run's.  A resume whose only difference is a larger ``steps`` *extends* the run: the
    rows already recorded stay, later ones follow the new run's recording grid.  Without
    ``resume`` the files of any earlier run in ``out_dir`` (:func:`run_files`) are removed
    first, so no old checkpoint or state sits next to the new results."""
    spec.check_writable_dir(out_dir, "out")
    command = command or _default_command(config)
    out_bytes, mem_bytes = _footprint(config, config.dim)
    records.check_size(f"this run (dim={config.dim}, steps={config.steps})",
                       path=os.path.join(out_dir, "responses.csv"), out_bytes=out_bytes, mem_bytes=mem_bytes,
                       allow_large=allow_large)
    runner = _Runner(config)
    ds = runner.dataset
    dim = ds.dim
    rec_steps = record_steps(config)
    rec = set(rec_steps.tolist())
    state_path = os.path.join(out_dir, "state.eqx")
    resp_path = os.path.join(out_dir, "responses.csv")
    key = config.as_dict()
    header = records.provenance_lines(command, {"time": TIME_NOTE, "response": RESPONSE_NOTE})
    plan = _plan_resume(config, runner, out_dir) if resume else None
    # --- every check has passed: from here on the folder changes ---------------------------------------------
    if plan is None:
        _remove(run_files(out_dir))
        state, start = runner.initial, 0
    else:
        state, start = plan.state, plan.start
        _remove([p for p in run_files(out_dir) if os.path.basename(p) in ("summary.csv", "plot.png")])
        if plan.extend_from is not None:
            _rewrite_head(resp_path, header + [f"# grid: {json.dumps(key, sort_keys=True)}",
                                               ",".join(RESPONSE_COLUMNS)], plan.body, plan.keep)
            if report is not None:
                report(f"extending the run in {out_dir} from {plan.extend_from} to {config.steps} steps (rows up "
                       f"to step {start} keep its recording grid)")
        elif plan.keep != os.path.getsize(resp_path):
            with open(resp_path, "r+b") as f:
                f.truncate(plan.keep)
    os.makedirs(out_dir, exist_ok=True)
    resume = plan is not None
    features = records.format_column(np.arange(dim))

    def write_rows(appender, step, resp):
        appender.write_columns([[str(step)] * dim, [repr(config.lr * step)] * dim, features,
                                records.format_column(resp)])

    def save_state(state, step):
        _save_atomic(state_path, _state_tree(state, step))

    with records.CsvAppender(resp_path, header, RESPONSE_COLUMNS, key=key, resume=resume, name="out") as app:
        if resume and app.done != plan.rows:
            raise spec.SpecError("resume", f"cannot resume {resp_path}: rows and checkpoint disagree")
        if not resume:
            write_rows(app, 0, runner.responses(state))
            if 0 in config.checkpoints:
                os.makedirs(os.path.dirname(checkpoint_path(out_dir, 0)), exist_ok=True)
                _save_atomic(checkpoint_path(out_dir, 0), state[0].encoder)
        # (done_state, done_step): the last step whose rows and checkpoints are all written.  Ctrl-C
        # can land anywhere in the loop body, so only that pair is saved on interrupt; rows written
        # past it are dropped again by the next --resume.
        last_save, done_state, done_step = _time.monotonic(), state, start
        try:
            for step, state in _iterate(runner, state, start, progress):
                if step in rec:
                    write_rows(app, step, runner.responses(state))
                if step in config.checkpoints:
                    os.makedirs(os.path.dirname(checkpoint_path(out_dir, step)), exist_ok=True)
                    _save_atomic(checkpoint_path(out_dir, step), state[0].encoder)
                done_state, done_step = state, step
                if step == config.steps or step in config.checkpoints or _time.monotonic() - last_save > save_every:
                    save_state(state, step)
                    last_save = _time.monotonic()
        except KeyboardInterrupt:
            save_state(done_state, done_step)
            raise KeyboardInterrupt(f"interrupted at step {done_step} of {config.steps}; kept {resp_path} and "
                                    f"{state_path}: rerun with --resume to continue") from None
    table = records.read_csv(resp_path)
    steps, responses = analysis.responses_table(table["step"], table["feature"], table["response"], dim)
    result = TrainResult(config, ds, steps, config.lr * steps.astype(np.float64), responses, state[0], state[2],
                         {}, runner.crossing_times(state))
    write_summary(result, os.path.join(out_dir, "summary.csv"), command)
    from .plots import save_figure

    save_figure(response_figure(result), os.path.join(out_dir, "plot.png"))
    note = unreached_note(result)
    if note and report is not None:
        report(note)
    return result


def _rewrite_head(path: str, head: list, body: int, keep: int) -> None:
    """Replace the ``#`` lines and column header of ``path`` by ``head`` and keep its data bytes
    ``body:keep`` (streamed through a temporary file and ``os.replace``)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(("\n".join(head) + "\n").encode())
        src.seek(body)
        left = keep - body
        while left > 0:
            chunk = src.read(min(left, 1 << 22))
            dst.write(chunk)
            left -= len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)


def unreached_note(result: TrainResult) -> Optional[str]:
    """One line naming the features whose response never reached ``fraction * |w_inf|`` within
    the run, and how many steps the gradient-flow theory says each needs (``None`` if every
    feature the theory learns crossed)."""
    cfg = result.config
    t_emp = np.asarray(result.critical_times(), dtype=np.float64)
    cols = theory_columns(cfg, result.dataset, gd=False)
    missed = np.flatnonzero(np.isnan(t_emp) & cols["learned_theory"])
    if missed.size == 0:
        return None
    t_theory = cols["critical_time_theory"]
    need = np.ceil(t_theory[missed] / cfg.lr)
    shown = missed[:8]
    more = f" and {missed.size - shown.size} more" if missed.size > shown.size else ""
    names = ", ".join(str(i) for i in shown) + more
    steps = ", ".join(f"{n:.0f}" for n in need[: shown.size]) + (", ..." if more else "")
    kind = "" if cfg.optimizer == "sgd" else " (gradient flow; with adam, lr x step is not gradient-flow time)"
    return (f"the run ended at step {cfg.steps} (t = {cfg.lr * cfg.steps:.6g}) before feature{'s' * (missed.size > 1)} "
            f"{names} reached fraction * {'w_star' if cfg.balanced_fixed_point else '|w_inf|'}; the theory{kind} needs {steps} steps at lr {cfg.lr:g}: rerun with "
            f"--steps {int(need.max())} --resume to extend it")


def theory_columns(config: TrainConfig, dataset: data.Dataset, gd: bool = True) -> dict:
    """The summary's theory columns per feature (:func:`prediction`): ``fixed_point`` = the
    run's gradient-flow limit ``w_inf`` (balanced: ``w_star``), ``critical_time_theory``
    (gradient flow), ``critical_time_gd`` (the exact GD map at the run's ``lr``, where it
    applies: :attr:`TrainConfig.exact_map`; else ``nan``) and ``learned_theory``."""
    gf = prediction(config, dataset)
    t_gd = (prediction(config, dataset, lr=config.lr).critical_time if gd and config.exact_map
            else np.full(dataset.dim, np.nan))
    return {"fixed_point": gf.w_inf, "critical_time_theory": gf.critical_time, "critical_time_gd": t_gd,
            "learned_theory": gf.learned}


def learned_empirical(first_response, final_response) -> np.ndarray:
    """A feature counts as learned by the network when its response ends above where it
    started (section 10: a collapsing feature decays towards 0, a learned one rises past
    ``fraction * |w_inf| > eps``; a feature that first shrinks, ``V0 < 0``, needs a run past
    its critical time)."""
    return np.asarray(final_response, np.float64) > np.asarray(first_response, np.float64)


SUMMARY_NOTES = {
    "fixed_point": "w_inf: the gradient-flow limit of w for the run's own init, EMA and weight decay (theory-spec "
                   "section 10; balanced runs: w_star of the deep linear theory; for mlp: a reference only)",
    "critical_time_theory": "t_star: first gradient-flow time with |w| >= fraction * |w_inf| for the run's own init, "
                            "EMA (kappa = (1 - ema) / lr) and weight decay (inf: not learned)",
    "critical_time_gd": "the exact gradient-descent map's prediction at the run's lr: lr x the step count interpolated "
                        "as critical_time_empirical is (nan: the map does not describe this run -- random init, "
                        "sampled loss, adam or mlp)",
    "learned_theory": "w_inf != 0 (theory-spec section 10)",
    "learned_empirical": "the final response exceeds the initial one (collapsing features decay towards 0)",
}


def write_summary(result: TrainResult, path: str, command: str) -> None:
    cfg, ds = result.config, result.dataset
    cols = theory_columns(cfg, ds)
    t_emp = result.critical_times()
    notes = {
        **SUMMARY_NOTES,
        "critical_time_empirical": ("first crossing of fraction * |fixed_point|, linearly interpolated in time "
                                    + ("between the training steps around it (tracked at every step)"
                                       if cfg.model == "linear" else "between the recorded responses around it")
                                    + "; nan = not reached within the run, or not learned in theory"),
        "time": TIME_NOTE,
        "matmul_precision": f"{cfg.matmul_precision} (float32 matrix products; float64 runs are unaffected)",
    }
    header = records.provenance_lines(command, notes)
    learned_emp = learned_empirical(result.responses[0], result.responses[-1])
    records.write_csv_atomic(path, header, SUMMARY_COLUMNS,
                             [np.arange(ds.dim), ds.lam, ds.rho, cols["fixed_point"], cols["critical_time_theory"],
                              t_emp, result.responses[-1], cols["critical_time_gd"],
                              _bools(cols["learned_theory"]), _bools(learned_emp)])


def _bools(values):
    return np.where(np.asarray(values, bool), "true", "false")


def response_figure(result: TrainResult, max_features: int = 10):
    """Recorded responses (markers) over the theory's ``w(t)`` (lines, linear models)."""
    from matplotlib import cm

    from .plots import TIME_LABEL, new_figure

    cfg, ds = result.config, result.dataset
    fig, axes = new_figure(width=6.0, height=4.2)
    ax = axes[0, 0]
    idx = np.unique(np.round(np.linspace(0, ds.dim - 1, min(ds.dim, max_features))).astype(int))
    colours = cm.viridis(np.linspace(0, 0.9, idx.size))
    t = result.times
    positive = t > 0 if cfg.grid == "log" else np.ones_like(t, dtype=bool)
    theory_w = None
    if cfg.model == "linear" and cfg.balanced_theory:
        ts = np.geomspace(t[positive][0], t[-1], 400) if cfg.grid == "log" else np.linspace(0, t[-1], 400)
        theory_w = theory.trajectory(cfg.objective, cfg.depth, ds.lam[idx], ds.rho[idx], cfg.eps, ts)
    cols = theory_columns(cfg, ds, gd=False)
    w_star, t_star = np.abs(cols["fixed_point"]), cols["critical_time_theory"]
    for j, (i, c) in enumerate(zip(idx, colours)):
        label = f"i={i}: lam={ds.lam[i]:.3g}, rho={ds.rho[i]:.3g}"
        # markers under the theory's line (zorder), so that the line stays visible where they agree
        ax.plot(t[positive], result.responses[positive, i], "o", ms=2.5, color=c, alpha=0.45, zorder=2,
                label=label)
        if theory_w is not None:
            ax.plot(ts, theory_w[j], "-", lw=1.4, color=c, zorder=3)
        if t_star[i] <= t[-1]:  # the theory's t* (fraction * |w_inf| crossed): a dotted line and a cross
            ax.axvline(t_star[i], color=c, ls=":", lw=0.9, zorder=1)
            ax.plot([t_star[i]], [cfg.fraction * w_star[i]], "x", ms=7, mew=1.5, color=c, zorder=4)
    if cfg.grid == "log":
        ax.set_xscale("log")
    xlabel = TIME_LABEL if cfg.optimizer == "sgd" else "lr x step (adam: not gradient-flow time)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"response $\gamma_i$")
    lines = "lines: balanced gradient-flow theory; " if theory_w is not None else ""
    ax.set_title(f"{cfg.model} {cfg.objective.upper()} L={cfg.depth}, {cfg.optimizer}, {cfg.loss} loss\n"
                 f"{lines}markers: trained; x and dotted: theory's t*", fontsize=9)
    ax.legend(fontsize=6, loc="best")
    return fig
