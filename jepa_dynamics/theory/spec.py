"""Validated problem parameters: the one place where inputs are checked.

Every public entry point (the Python API and the ``jepa-dynamics`` command) checks
its inputs here, so a bad value gets the same message everywhere.  A failed check
raises :class:`SpecError`, a :class:`ValueError` whose ``name`` is the parameter
(``lam``, ``rho``, ``depth``, ``eps``, ``fraction``, ...) and whose message names the
parameter and the problem in one line.  The CLI prints that line as ``--name: ...``.

Notation (docs/theory.md): per feature the context variance ``sigma2``, the
cross-covariance ``lam`` and the regression coefficient ``rho = lam / sigma2``; the
encoder depth ``depth`` (``L``); the initial response ``eps``; the fraction of the
fixed point ``w_star`` that defines the critical time ``t_star``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

OBJECTIVES = ("jepa", "mae")
# joint embeddings with one encoder on both views and no predictor (docs/theory.md section 16): their
# own theory (theory.joint) and losses; kept apart from OBJECTIVES, which every JEPA/MAE path iterates
JOINT_OBJECTIVES = ("barlow", "vicreg")
MAX_INT = 2**53  # the largest whole number every integer flag (steps, seed, depth, ...) may take
METHODS = ("exact", "ode")
# the initial response eps every command and API function defaults to (sweep, simulate, train, train-grid,
# matrix, spectrum): the one default, so that their files describe the same runs unless told otherwise
DEFAULT_EPS = 1e-3


class SpecError(ValueError):
    """An invalid input.  ``str(err)`` is ``"<name>: <problem>"``, one line."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")


def flag(name: str) -> str:
    """The command-line flag of a parameter: ``weight_decay`` -> ``--weight-decay`` (the one
    spelling the CLI, the errors and the provenance lines share)."""
    return "--" + name.replace("_", "-")


def _fmt(x) -> str:
    return f"{float(x):.6g}"


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the options."""
    if value not in choices:
        options = ", ".join(choices)
        raise SpecError(name, f"unknown value {value!r} (choose from {options})")
    return value


def check_objective(objective: str) -> str:
    return check_choice(objective, OBJECTIVES, "objective")


def check_joint_objective(objective: str) -> str:
    return check_choice(objective, JOINT_OBJECTIVES, "objective")


def check_int(value, name: str, minimum: int = 1) -> int:
    """A whole number ``>= minimum`` (``1``: "a positive integer", ``0``: "a non-negative integer")."""
    kind = "a positive integer" if minimum == 1 else ("a non-negative integer" if minimum == 0 else f"an integer >= {minimum}")
    exact = None  # the exact whole number, where float() would round it (text or int above 2**53)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        exact = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        exact = int(value.strip())
    if exact is not None and abs(exact) > MAX_INT:
        raise SpecError(name, f"must be at most 2**53 = {MAX_INT} (larger whole numbers are not exact in float64), "
                              f"got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise SpecError(name, f"must be {kind}, got {value!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float) or as_float < minimum:
        raise SpecError(name, f"must be {kind}, got {value!r}")
    if abs(as_float) > MAX_INT:
        raise SpecError(name, f"must be at most 2**53 = {MAX_INT} (larger whole numbers are not exact in float64), "
                              f"got {value!r}")
    return int(as_float)


def check_depth(depth, name: str = "depth") -> int:
    """``depth`` must be a positive integer (an ``L``-layer linear encoder)."""
    return check_int(depth, name, 1)


def check_depths(depth):
    """:func:`check_depth` for a scalar or, element by element, an array (``int64``)."""
    if np.ndim(depth):
        arr = np.asarray(depth)
        if arr.dtype.kind in "iuf":  # numbers: one vectorised check, the per-element one only to name a bad value
            with np.errstate(invalid="ignore"):
                good = np.isfinite(arr) & (arr >= 1) & (arr <= MAX_INT) & (arr == np.floor(arr))
            if good.all():
                return arr.astype(np.int64)
        return np.vectorize(check_depth, otypes=[np.int64])(depth)
    return check_depth(depth)


def check_positive_int(value, name: str) -> int:
    return check_int(value, name, 1)


def _as_float_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(name, f"must be numbers, got {values!r}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        raise SpecError(name, f"must be finite, got {_fmt(arr[bad].flat[0])}")
    return arr


def check_positive(values, name: str) -> np.ndarray:
    """Finite and strictly positive (scalar or array); returns a float64 array."""
    arr = _as_float_array(values, name)
    bad = arr <= 0
    if bad.any():
        raise SpecError(name, f"must be > 0, got {_fmt(arr[bad].flat[0])}")
    return arr


def check_nonnegative(values, name: str) -> np.ndarray:
    arr = _as_float_array(values, name)
    bad = arr < 0
    if bad.any():
        raise SpecError(name, f"must be >= 0, got {_fmt(arr[bad].flat[0])}")
    return arr


def check_unit_interval(values, name: str, *, closed_left: bool = False) -> np.ndarray:
    """In ``(0, 1)`` (or ``[0, 1)`` with ``closed_left``)."""
    arr = _as_float_array(values, name)
    low_bad = arr < 0 if closed_left else arr <= 0
    bad = low_bad | (arr >= 1)
    if bad.any():
        interval = "[0, 1)" if closed_left else "(0, 1)"
        raise SpecError(name, f"must be in {interval}, got {_fmt(arr[bad].flat[0])}")
    return arr


def check_lam(lam) -> np.ndarray:
    """``lam = E[x_i y_i] > 0``: a feature with ``lam <= 0`` is never learned."""
    arr = _as_float_array(lam, "lam")
    bad = arr <= 0
    if bad.any():
        raise SpecError(
            "lam", f"must be > 0 (a feature with lam <= 0 is never learned), got {_fmt(arr[bad].flat[0])}"
        )
    return arr


def check_rho(rho) -> np.ndarray:
    """``rho = lam / sigma2 > 0`` and finite; ``rho >= 1`` is allowed."""
    return check_positive(rho, "rho")


def fixed_point(objective: str, depth, rho):
    """The stable fixed point ``w_star``: JEPA ``rho**L``, MAE ``rho**(L/(L+1))``.

    Vectorised over ``depth`` and ``rho`` (no validation; see :func:`check_fixed_point`:
    ``inf`` or ``0`` here mean that ``w_star`` is outside float64)."""
    depth = np.asarray(depth, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        if objective == "jepa":
            return rho**depth
        return rho ** (depth / (depth + 1.0))


def check_fixed_point(objective: str, depth, rho) -> np.ndarray:
    """``w_star`` must be a normal float64 (neither overflowing nor underflowing), else no
    ``eps`` can start below it and no time reach it; the message names the row."""
    w_star = np.asarray(fixed_point(objective, depth, rho))
    bad = ~np.isfinite(w_star) | (w_star < np.finfo(np.float64).tiny)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        d = int(np.broadcast_to(np.asarray(depth), w_star.shape).ravel()[i])
        r = float(np.broadcast_to(np.asarray(rho), w_star.shape).ravel()[i])
        power = f"rho^{d}" if objective == "jepa" else f"rho^({d}/{d + 1})"
        if np.isfinite(w_star.ravel()[i]):
            raise SpecError("rho", f"the fixed point w_star = {power} underflows float64 (below 2.2e-308) for "
                                   f"objective={objective} depth={d} rho={_fmt(r)}: no eps can start below it; "
                                   "use a rho closer to 1 or a smaller depth")
        raise SpecError("rho", f"the fixed point w_star = {power} overflows float64 for objective={objective} "
                               f"depth={d} rho={_fmt(r)}; use a smaller rho or depth")
    return w_star


def check_sigma2(lam, rho) -> np.ndarray:
    """The context variance ``sigma2 = lam / rho`` must be a normal float64."""
    lam, rho = np.broadcast_arrays(np.asarray(lam, dtype=np.float64), np.asarray(rho, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        s2 = lam / rho
    bad = ~np.isfinite(s2) | (s2 < np.finfo(np.float64).tiny)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        how = "overflows" if not np.isfinite(s2.ravel()[i]) else "underflows"
        fix = "a smaller lam or a larger rho" if how == "overflows" else "a larger lam or a smaller rho"
        raise SpecError("lam", f"the context variance sigma2 = lam / rho {how} float64 for lam={_fmt(lam.ravel()[i])} "
                               f"rho={_fmt(rho.ravel()[i])}; use {fix}")
    return s2


def check_eps(eps, objective: str, depth, rho, fraction=0.5) -> np.ndarray:
    """``0 < eps < fraction * w_star``: the feature must start below the level that
    defines its critical time, otherwise ``t_star`` is undefined."""
    eps = check_positive(eps, "eps")
    w_star = check_fixed_point(objective, depth, rho)
    with np.errstate(under="ignore"):
        limit = np.asarray(fraction, dtype=np.float64) * w_star
    eps_b, limit_b = np.broadcast_arrays(eps, limit)
    tiny = limit_b < np.finfo(np.float64).tiny
    if tiny.any():
        i = np.flatnonzero(tiny.ravel())[0]
        f = np.broadcast_to(np.asarray(fraction), eps_b.shape).ravel()[i]
        raise SpecError("fraction", f"fraction * w_star underflows float64 (fraction={_fmt(f)}, "
                                    f"w_star={_fmt(np.broadcast_to(w_star, eps_b.shape).ravel()[i])}): no eps can "
                                    "start below it; use a larger fraction")
    bad = eps_b >= limit_b
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        d = np.broadcast_to(np.asarray(depth), eps_b.shape).ravel()[i]
        r = np.broadcast_to(np.asarray(rho), eps_b.shape).ravel()[i]
        f = np.broadcast_to(np.asarray(fraction), eps_b.shape).ravel()[i]
        raise SpecError(
            "eps",
            f"must be below fraction * w_star = {_fmt(limit_b.ravel()[i])} for objective={objective} "
            f"depth={int(d)} rho={_fmt(r)} fraction={_fmt(f)} (w_star={_fmt(limit_b.ravel()[i] / f)}), "
            f"got {_fmt(eps_b.ravel()[i])}; use a smaller eps",
        )
    return eps


@dataclass(frozen=True)
class Problem:
    """One feature's learning problem, validated on construction.

    ``sigma2 = lam / rho`` and ``w_star`` (the fixed point) are derived."""

    objective: str
    depth: int
    lam: float
    rho: float
    eps: float
    fraction: float = 0.5

    def __post_init__(self):
        check_objective(self.objective)
        object.__setattr__(self, "depth", check_depth(self.depth))
        object.__setattr__(self, "lam", float(check_lam(self.lam)))
        object.__setattr__(self, "rho", float(check_rho(self.rho)))
        object.__setattr__(self, "fraction", float(check_unit_interval(self.fraction, "fraction")))
        object.__setattr__(
            self, "eps", float(check_eps(self.eps, self.objective, self.depth, self.rho, self.fraction))
        )

    @property
    def sigma2(self) -> float:
        return self.lam / self.rho

    @property
    def w_star(self) -> float:
        return float(fixed_point(self.objective, self.depth, self.rho))


def parse_list(text: str, name: str, kind=float) -> list:
    """Parse a comma-separated flag value (``"0.5,1"``) into a list of ``kind``.

    Empty items, non-numbers, NaN and infinity are rejected with a one-line message."""
    if text is None:
        raise SpecError(name, "a value is required")
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(item == "" for item in items):
        raise SpecError(name, f"expected a comma-separated list of values, got {text!r}")
    out = []
    for item in items:
        if kind is str:
            out.append(item)
            continue
        try:
            value = float(item)
        except ValueError:
            raise SpecError(name, f"{item!r} is not a number") from None
        if not math.isfinite(value):
            raise SpecError(name, f"must be finite, got {item!r}")
        if kind is int:
            if value != int(value):
                raise SpecError(name, f"must be an integer, got {item!r}")
            if abs(value) > MAX_INT:
                raise SpecError(name, f"must be at most 2**53 = {MAX_INT} (larger whole numbers are not exact in "
                                      f"float64), got {item!r}")
            value = int(value)
        out.append(value)
    return out


def parse_ema_rates(text, name: str = "ema_rate") -> list:
    """``--ema-rate``: comma-separated EMA rates ``kappa > 0`` (1/gradient-flow time), or ``inf`` (stop-gradient)."""
    if text is None:
        raise SpecError(name, "a value is required")
    items = [item.strip() for item in str(text).split(",")]
    out = [math.inf if item.lower() in ("inf", "+inf") else parse_list(item, name)[0] for item in items]
    check_positive([x for x in out if math.isfinite(x)] or [1.0], name)
    return out


def check_same_length(a: Iterable, b: Iterable, name_a: str, name_b: str) -> None:
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise SpecError(
            name_b, f"needs one value per feature: {len(a)} values of {name_a} but {len(b)} of {name_b}"
        )


def check_writable(path: str, name: str = "out") -> str:
    """The output file's folder must exist or be creatable, and take a file.

    Nothing is created: the check writes and removes a probe file in the nearest folder
    that exists (so it holds for root and read-only file systems alike), and the writers
    create missing folders only once every input has been checked."""
    path = os.fspath(path)
    if not path:
        raise SpecError(name, "a file name is required")
    if os.path.isdir(path):
        raise SpecError(name, f"cannot write {path}: it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise SpecError(name, f"cannot write {path}: {probe} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".jepa-probe-"):
            pass
        if os.path.exists(path):
            with open(path, "a"):
                pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise SpecError(name, f"cannot write {path}: {reason}") from None
    return path


def check_writable_dir(path: str, name: str = "out") -> str:
    """An output folder: it must be creatable and writable."""
    path = os.fspath(path)
    if not path:
        raise SpecError(name, "a folder name is required")
    if os.path.exists(path) and not os.path.isdir(path):
        raise SpecError(name, f"cannot write into {path}: it is a file, not a folder")
    try:
        check_writable(os.path.join(path, "probe"), name)
    except SpecError as err:
        reason = err.problem.split(": ", 1)[-1]
        raise SpecError(name, f"cannot write into {path}: {reason}") from None
    return path


def check_nonnegative_int(value, name: str) -> int:
    """A whole number ``>= 0`` (a seed, a step index)."""
    return check_int(value, name, 0)


def check_ema(tau, name: str = "ema") -> float:
    """EMA target rate ``tau`` in ``[0, 1)``: ``Wtgt <- tau Wtgt + (1 - tau) Wbar``; ``0`` is the
    stop-gradient copy, ``1`` would freeze the target forever."""
    return float(check_unit_interval(tau, name, closed_left=True))


def check_finite(values, name: str) -> np.ndarray:
    """Finite numbers of any sign (scalar or array); returns a float64 array."""
    return _as_float_array(values, name)
