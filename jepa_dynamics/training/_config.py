"""The validated, frozen description of one training run (:class:`TrainConfig`), the choices its
fields take, and the steps at which a run records its responses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..theory import spec
from . import data, models
from .._jax import MATMUL_PRECISIONS

import jax.numpy as jnp  # noqa: E402  (after .._jax, which configures JAX)


MODELS = ("linear", "mlp")
INITS = ("balanced", "aligned", "random")
LOSSES = ("population", "sampled")
OPTIMIZERS = ("sgd", "adam")
GRIDS = ("linear", "log")
PREDICTORS = ("linear", "mlp")

RESPONSE_NOTE = ("gamma_i = ||Cov(f(x), x_i)|| / Var(x_i): the norm of column i of Wbar for linear encoders "
                 "(exact); for MLPs the sample estimate on a fixed seeded batch of eval_batch draws")
TIME_NOTE = "t = lr * step (gradient-flow time for optimizer=sgd; for adam only a rescaled step count)"


def ema_decay(ema_rate, lr) -> float:
    """The trainer's per-step EMA decay ``tau = 1 - kappa * lr`` of the rate ``kappa`` (``ema_rate``, 1/gradient-flow
    time; ``inf``: stop-gradient, ``tau = 0``).  ``kappa`` must be ``> 0`` and ``kappa * lr <= 1``
    (``SpecError`` naming ``ema_rate`` otherwise, one line)."""
    kappa, lr = float(ema_rate), float(lr)
    if not kappa > 0:
        raise spec.SpecError("ema_rate", f"must be > 0 (inf: stop-gradient), got {ema_rate!r}")
    if np.isinf(kappa):
        return 0.0
    if kappa * lr > 1:
        raise spec.SpecError("ema_rate", f"kappa * lr = {kappa:g} * {lr:g} = {kappa * lr:.6g} is above 1 (the per-step "
                                         "decay tau = 1 - kappa * lr would be negative); lower --ema-rate or --lr")
    tau = 1.0 - kappa * lr
    if tau >= 1.0:
        raise spec.SpecError("ema_rate", f"kappa * lr = {kappa:g} * {lr:g} is below float64's resolution at 1 (the "
                                         "target would never move); raise --ema-rate")
    return tau


def ema_rate_of(tau, lr) -> float:
    """``kappa = (1 - tau) / lr`` (``inf`` for ``tau = 0``), written as the shortest number whose
    :func:`ema_decay` at ``lr`` is ``tau`` again (``--ema-rate 3 --lr 0.01`` reads back as 3, not
    3.0000000000000027)."""
    tau, lr = float(tau), float(lr)
    if tau <= 0:
        return np.inf
    kappa = (1.0 - tau) / lr
    for digits in range(1, 18):
        short = float(f"{kappa:.{digits}g}")
        if 1.0 - short * lr == tau:
            return short
    return kappa


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
    of :mod:`jepa_dynamics.training.data` with ``dim`` features).  Model: ``model`` (``linear`` |
    ``mlp``), ``depth``, MLP ``width`` (default ``dim``) and ``activation``,
    ``predictor`` (``linear`` | ``mlp``).  Init: ``balanced`` (``Wbar(0) = eps I``),
    ``aligned`` (docs/theory.md section 9: diagonal layers ``eps**(1/depth) I`` and predictor
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
    (GPUs' fast mode; docs/theory.md section 15), recorded in the summary's provenance."""

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
    # False: skip the per-run theory check below (jepa_dynamics.training.grid checks a whole grid at once,
    # vectorised).  Not part of the run's identity: left out of ==, hash and as_dict (the resume key).
    check_theory: bool = dataclasses.field(default=True, compare=False, repr=False)

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        spec.check_choice(self.model, MODELS, "model")
        spec.check_choice(self.objective, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
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
        tiny = float(np.finfo(self.dtype).tiny)
        if self.lr < tiny:  # a smaller step underflows: updates of zero, and t / lr overflows
            raise spec.SpecError("lr", f"must be at least {tiny:.3g}, the smallest normal {self.dtype} (the run's "
                                       f"parameters), got {self.lr!r}")
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
        if self.objective in spec.JOINT_OBJECTIVES:
            # one encoder on both views, no predictor: the theory (docs/theory.md section 16) is balanced
            for name, bad in (("ema", self.ema > 0), ("weight_decay", self.weight_decay > 0),
                              ("init", self.init != "balanced")):
                if bad:
                    raise spec.SpecError(name, f"--objective {self.objective} trains balanced from --init balanced, "
                                               f"without EMA or weight decay; leave {spec.flag(name)} at its default")
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
        # (jepa_dynamics.training.grid checks a whole grid at once, vectorised, and defers this one)
        if self.check_theory:
            from .train import prediction  # the theory of a run lives beside the loop that runs it

            prediction(self, times=False)

    def dataset(self) -> data.Dataset:
        return data.make(self.dist, lam=self.lam, rho=self.rho, dim=self.dim)

    @property
    def ema_rate(self) -> float:
        """``kappa = (1 - tau) / lr`` in gradient-flow time (``inf``: stop-gradient, ``tau = 0``;
        :func:`ema_rate_of`)."""
        return ema_rate_of(self.ema, self.lr)

    @property
    def balanced_theory(self) -> bool:
        """The paper's setting (docs/theory.md sections 2-4): balanced init, stop-gradient or MAE, no weight
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
        """Whether the exact per-feature GD map (docs/theory.md section 9) describes this run: linear
        encoder, population loss, plain SGD, a diagonal (balanced or aligned) init."""
        return (self.model == "linear" and self.loss == "population" and self.optimizer == "sgd"
                and self.init != "random" and self.stop_gradient and self.objective in spec.OBJECTIVES)

    @property
    def jnp_dtype(self):
        return jnp.float64 if self.dtype == "float64" else jnp.float32

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        del out["check_theory"]
        for k in ("lam", "rho", "checkpoints"):
            out[k] = list(out[k]) if out[k] is not None else None
        return out


def record_steps(config: TrainConfig) -> np.ndarray:
    """Steps at which responses are recorded: 0, then ``records`` points up to ``steps``."""
    if config.grid == "linear":
        grid = np.linspace(0, config.steps, min(config.records, config.steps) + 1)
    else:
        grid = np.concatenate([[0.0], np.geomspace(1, config.steps, config.records)])
    return np.unique(np.round(grid).astype(np.int64))
