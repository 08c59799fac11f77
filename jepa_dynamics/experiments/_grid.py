"""The Cartesian grid of the per-feature theory (:class:`Grid`): its axes, the columns of a sweep,
and how a grid is read from the flags' comma text (:func:`parse_grid`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..theory import joint, spec, balanced as theory
from ..training.data import _target_variance


SWEEP_COLUMNS = ("objective", "depth", "lam", "rho", "sigma2", "eps", "fraction", "w_star",
                 "t_star", "t_star_asymptotic", "predictor_init", "ema_rate", "weight_decay", "lr",
                 "w_inf", "learned", "critical_step")
_ALIGNED_AXES = ("predictor_init", "ema_rate", "weight_decay", "lr")  # the beyond-balanced sweep axes (docs/theory.md section 9)
SIMULATE_COLUMNS = ("objective", "depth", "lam", "rho", "sigma2", "eps", "fraction", "w_star", "t_star",
                    "time", "response")
_GRID_AXES = ("objective", "depth", "lam", "rho", "eps", "fraction", "predictor_init", "ema_rate", "weight_decay",
              "lr")
_TEXT_AXES = ("objective", "depth", "lam", "rho", "eps", "fraction", "ema_rate", "weight_decay", "lr")
_SWEEP_GRID_POSITIONS = (0, 1, 2, 3, 5, 6, 11, 12, 13)  # where each text axis sits among SWEEP_COLUMNS
_NUMBER_POSITIONS = (4, 7, 8, 9, 10, 14, 16)  # computed numbers (critical_step, 16, may be empty)
_TRUE_FALSE = np.zeros(256, dtype=bool)
_TRUE_FALSE[np.frombuffer(b"truefals", np.uint8)] = True
_FLOAT_TEXT = 24  # characters of the longest float repr ("-1.2345678901234567e-300")
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[np.frombuffer(b"0123456789.e+-infa", np.uint8)] = True

_EXACT_BLOCK = 1 << 16
_ODE_BLOCK = 512  # one compiled ODE bucket (see ode._BUCKETS) per block, small enough to keep work on Ctrl-C


def joint_data(objective: str, lam, rho) -> dict:
    """:mod:`jepa_dynamics.theory.joint`'s data keywords for sweep rows given by ``(lam, rho)``:
    ``sigma2 = lam / rho`` and the target variance ``syy = max(sigma2, lam rho)`` of the ``custom``
    family (docs/theory.md section 12.1); Barlow Twins needs neither."""
    if objective == "barlow":
        return {}
    lam, rho = np.asarray(lam, dtype=np.float64), np.asarray(rho, dtype=np.float64)
    return {"sigma2": lam / rho, "syy": _target_variance(lam, rho)}


def check_method(grid, method: str) -> None:
    """``barlow`` and ``vicreg`` have exact closed forms only (no ODE engine): refuse ``ode`` for them."""
    spec.check_choice(method, spec.METHODS, "method")
    joint_objectives = [o for o in grid.objective if o in spec.JOINT_OBJECTIVES]
    if method != "exact" and joint_objectives:
        names = ", ".join(joint_objectives)
        raise spec.SpecError("method", f"{method!r} is not available for {names} (the joint-embedding theory is "
                                       "exact, docs/theory.md section 16); use --method exact")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``rows`` complete rows are safely on disk in ``path``."""

    def __init__(self, rows: int, total: int, path: str):
        super().__init__(f"interrupted: {rows} of {total} rows kept in {path}; rerun with --resume to finish")
        self.rows, self.total, self.path = rows, total, path


@dataclass(frozen=True)
class Grid:
    """A validated Cartesian grid of problems.

    Every combination must be valid, in particular ``eps < fraction * w_star``
    (checked for all of them before any work starts)."""

    objective: tuple
    depth: tuple
    lam: tuple
    rho: tuple
    eps: tuple
    fraction: tuple = (0.5,)
    predictor_init: tuple = (None,)  # None: balanced, eps**(1/depth)
    ema_rate: tuple = (math.inf,)  # inf: stop-gradient target
    weight_decay: tuple = (0.0,)
    lr: tuple = (0.0,)  # 0: gradient flow

    def __post_init__(self):
        for name in ("objective", "depth", "lam", "rho", "eps", "fraction") + _ALIGNED_AXES:
            values = getattr(self, name)
            if values is None or isinstance(values, (str, int, float)):
                values = (values,)
            values = tuple(values)
            if not values:
                raise spec.SpecError(name, "needs at least one value")
            object.__setattr__(self, name, values)
        for obj in self.objective:
            spec.check_choice(obj, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
        object.__setattr__(self, "depth", tuple(spec.check_depth(d) for d in self.depth))
        object.__setattr__(self, "lam", tuple(spec.check_lam(self.lam).tolist()))
        object.__setattr__(self, "rho", tuple(spec.check_rho(self.rho).tolist()))
        object.__setattr__(self, "fraction", tuple(spec.check_unit_interval(self.fraction, "fraction").tolist()))
        eps = spec.check_positive(self.eps, "eps")
        object.__setattr__(self, "eps", tuple(eps.tolist()))
        # sigma2 = lam / rho and w_star must be float64 numbers for every combination (else inf/0 rows)
        spec.check_sigma2([max(self.lam), min(self.lam)], [min(self.rho), max(self.rho)])
        for obj in self._objectives:
            spec.check_fixed_point(obj, np.asarray(self.depth)[:, None], np.asarray(self.rho)[None, :])
        self._check_joint()
        self._check_aligned()
        # the tightest combination decides: the largest eps against the smallest fraction * w_star
        if not self.balanced_only:
            return
        if not self._objectives:
            return
        limits = [(min(self.fraction) * float(spec.fixed_point(obj, d, r)), obj, d, r)
                  for obj in self._objectives for d in self.depth for r in self.rho]
        _, obj, d, r = min(limits, key=lambda item: item[0])
        spec.check_eps(max(self.eps), obj, d, r, min(self.fraction))
        # t_star falls with lam and eps: the smallest of both give the longest times, which must
        # fit in float64 (raises SpecError naming the row otherwise) -- checked before any output
        for obj in self._objectives:
            depth = np.repeat(self.depth, len(self.rho))
            rho = np.tile(self.rho, len(self.depth))
            theory.critical_time_unchecked(obj, depth, min(self.lam), rho, min(self.eps), min(self.fraction))
            theory.critical_time_asymptotic(obj, depth, min(self.lam), rho, min(self.eps), min(self.fraction))

    @property
    def _objectives(self) -> tuple:
        """The grid's JEPA and MAE objectives (``barlow`` and ``vicreg`` are checked by :meth:`_check_joint`)."""
        return tuple(o for o in self.objective if o in spec.OBJECTIVES)

    def _check_joint(self) -> None:
        """``barlow`` and ``vicreg`` rows are balanced gradient flow (docs/theory.md section 16): the
        beyond-balanced axes must keep their defaults; every ``(depth, lam, rho)`` must start below
        ``fraction * w_star`` (largest ``eps``, smallest ``fraction``) and its longest ``t_star`` fit float64."""
        joint_objectives = [o for o in self.objective if o in spec.JOINT_OBJECTIVES]
        if not joint_objectives:
            return
        for name, default in (("predictor_init", None), ("ema_rate", math.inf), ("weight_decay", 0.0), ("lr", 0.0)):
            if any(v != default and not (name == "predictor_init" and v == "balanced") for v in getattr(self, name)):
                names = ", ".join(joint_objectives)
                raise spec.SpecError(name, f"the {names} rows are swept balanced, by gradient flow, without EMA or "
                                           f"weight decay: leave {spec.flag(name)} at its default or sweep them apart")
        d, lam, rho = (a.ravel() for a in np.meshgrid(np.asarray(self.depth), np.asarray(self.lam),
                                                      np.asarray(self.rho), indexing="ij"))
        for obj in joint_objectives:
            kw = joint_data(obj, lam, rho)
            joint.critical_time(obj, d, lam, max(self.eps), min(self.fraction), **kw)
            joint.critical_time(obj, d, lam, min(self.eps), max(self.fraction), **kw)

    @property
    def balanced_only(self) -> bool:
        """Only balanced initial states (every ``predictor_init`` is the default)."""
        return all(v is None for v in self.predictor_init)

    def _check_aligned(self) -> None:
        """Validate the section-10 axes; every (eps, predictor_init, ...) combination must start below
        ``fraction * |w_inf|`` when its feature is learned (checked for all, before any output)."""
        from ..theory import aligned

        v0 = tuple(None if v is None or (isinstance(v, str) and v == "balanced") else v for v in self.predictor_init)
        if any(v is not None for v in v0):
            spec.check_finite([v for v in v0 if v is not None], "predictor_init")
        object.__setattr__(self, "predictor_init", tuple(None if v is None else float(v) for v in v0))
        kappa = np.asarray(self.ema_rate, dtype=np.float64)
        object.__setattr__(self, "ema_rate", tuple(kappa.tolist()))
        object.__setattr__(self, "weight_decay", tuple(spec.check_nonnegative(self.weight_decay, "weight_decay").tolist()))
        object.__setattr__(self, "lr", tuple(spec.check_nonnegative(self.lr, "lr").tolist()))
        if self.balanced_only and self.ema_rate == (math.inf,) and self.weight_decay == (0.0,):
            return  # today's grid: checked below as before
        for obj in self._objectives:
            if obj == "mae" and np.any(np.isfinite(kappa)):
                raise spec.SpecError("ema_rate", "only JEPA has an EMA target: sweep MAE and a finite --ema-rate "
                                                 "separately (inf for MAE)")
            kap = kappa if obj == "jepa" else np.array([math.inf])
            for v in self.predictor_init:
                grids = np.meshgrid(np.asarray(self.depth), np.asarray(self.lam), np.asarray(self.rho),
                                    np.asarray(self.eps), np.asarray(self.fraction), kap,
                                    np.asarray(self.weight_decay), np.asarray(self.lr), indexing="ij")
                d, lam, rho, eps, frac, k, beta, eta = (g.ravel() for g in grids)
                aligned._validate(obj, d, lam, rho, eps, v, k, beta, eta, frac)
                aligned.check_start(obj, d, lam, rho, eps, v, ema_rate=k, weight_decay=beta, fraction=frac)

    @property
    def shape(self) -> tuple:
        return tuple(len(getattr(self, n)) for n in _GRID_AXES)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def key(self, method: str) -> dict:
        """What identifies this sweep's rows (for ``--resume``)."""
        key = {"objective": list(self.objective), "depth": list(self.depth), "lam": list(self.lam),
               "rho": list(self.rho), "eps": list(self.eps), "fraction": list(self.fraction), "method": method}
        if not (self.balanced_only and self.ema_rate == (math.inf,) and self.weight_decay == (0.0,)
                and self.lr == (0.0,)):
            key.update({n: [str(v) for v in getattr(self, n)] for n in _ALIGNED_AXES})
        return key

    def indices(self, start: int, stop: int) -> tuple:
        return np.unravel_index(np.arange(start, stop), self.shape)


def _parse_ema(text):
    """``--ema-rate``: positive numbers or ``inf`` (stop-gradient)."""
    return tuple(spec.parse_ema_rates(text, "ema_rate"))


def _parse_predictor_init(text):
    """``--predictor-init``: signed numbers or ``balanced`` (``eps**(1/depth)``)."""
    items = [item.strip() for item in str(text).split(",")]
    return tuple(None if item == "balanced" else spec.parse_list(item, "predictor_init")[0] for item in items)


def parse_grid(objective: str, depth: str, lam: str, rho: str, eps: str, fraction: str = "0.5",
               predictor_init: str = "balanced", ema_rate: str = "inf", weight_decay: str = "0",
               lr: str = "0") -> Grid:
    """A :class:`Grid` from comma-separated strings (the CLI flags)."""
    return Grid(
        predictor_init=_parse_predictor_init(predictor_init), ema_rate=_parse_ema(ema_rate),
        weight_decay=tuple(spec.parse_list(weight_decay, "weight_decay")), lr=tuple(spec.parse_list(lr, "lr")),
        objective=tuple(spec.parse_list(objective, "objective", str)),
        depth=tuple(spec.parse_list(depth, "depth", str)),
        lam=tuple(spec.parse_list(lam, "lam")),
        rho=tuple(spec.parse_list(rho, "rho")),
        eps=tuple(spec.parse_list(eps, "eps")),
        fraction=tuple(spec.parse_list(fraction, "fraction")),
    )
