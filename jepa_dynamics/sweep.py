"""Parameter sweeps: critical times over a Cartesian grid, and trajectories.

:class:`Grid` is the validated Cartesian product ``objective x depth x lam x rho x
eps x fraction`` (that nesting order, the last varying fastest).  :func:`run_sweep`
streams its rows to a CSV in blocks, so memory stays bounded whatever the size, each
block is flushed as soon as it is computed, and an interrupted sweep resumes where
it stopped (``resume=True``) with no row lost or repeated.  :func:`run_simulate`
writes trajectories ``w(t)``.

Columns of a sweep (``theory-spec.md`` names): ``objective, depth, lam, rho,
sigma2, eps, fraction, fixed_point, critical_time, critical_time_asymptotic``.
``critical_time`` is gradient-flow time (exact closed form with
``method="exact"``, diffrax integration with ``method="ode"``);
``critical_time_asymptotic`` is the small-``eps`` divergent part of
:func:`jepa_dynamics.theory.critical_time_asymptotic`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
import numpy as np

from . import records, spec, theory

__all__ = ["SWEEP_COLUMNS", "SIMULATE_COLUMNS", "Grid", "SweepInterrupted", "compute_rows", "run_sweep",
           "time_grid", "simulate", "run_simulate", "parse_grid"]

SWEEP_COLUMNS = ("objective", "depth", "lam", "rho", "sigma2", "eps", "fraction", "fixed_point",
                 "critical_time", "critical_time_asymptotic")
SIMULATE_COLUMNS = ("objective", "depth", "lam", "rho", "sigma2", "eps", "fixed_point", "time", "w")

_EXACT_BLOCK = 1 << 16
_ODE_BLOCK = 512  # one compiled ODE bucket (see ode._BUCKETS) per block, small enough to keep work on Ctrl-C


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

    def __post_init__(self):
        for name in ("objective", "depth", "lam", "rho", "eps", "fraction"):
            values = getattr(self, name)
            if isinstance(values, (str, int, float)):
                values = (values,)
            values = tuple(values)
            if not values:
                raise spec.SpecError(name, "needs at least one value")
            object.__setattr__(self, name, values)
        for obj in self.objective:
            spec.check_objective(obj)
        object.__setattr__(self, "depth", tuple(spec.check_depth(d) for d in self.depth))
        object.__setattr__(self, "lam", tuple(spec.check_lam(self.lam).tolist()))
        object.__setattr__(self, "rho", tuple(spec.check_rho(self.rho).tolist()))
        object.__setattr__(self, "fraction", tuple(spec.check_unit_interval(self.fraction, "fraction").tolist()))
        eps = spec.check_positive(self.eps, "eps")
        object.__setattr__(self, "eps", tuple(eps.tolist()))
        # the tightest combination decides: the largest eps against the smallest fraction * w_star
        limits = [(min(self.fraction) * float(spec.fixed_point(obj, d, r)), obj, d, r)
                  for obj in self.objective for d in self.depth for r in self.rho]
        _, obj, d, r = min(limits, key=lambda item: item[0])
        spec.check_eps(max(self.eps), obj, d, r, min(self.fraction))
        # t_star falls with lam and eps: the smallest of both give the longest times, which must
        # fit in float64 (raises SpecError naming the row otherwise) -- checked before any output
        for obj in self.objective:
            depth = np.repeat(self.depth, len(self.rho))
            rho = np.tile(self.rho, len(self.depth))
            theory.critical_time_unchecked(obj, depth, min(self.lam), rho, min(self.eps), min(self.fraction))
            theory.critical_time_asymptotic(obj, depth, min(self.lam), rho, min(self.eps), min(self.fraction))

    @property
    def shape(self) -> tuple:
        return tuple(len(getattr(self, n)) for n in ("objective", "depth", "lam", "rho", "eps", "fraction"))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def key(self, method: str) -> dict:
        """What identifies this sweep's rows (for ``--resume``)."""
        return {"objective": list(self.objective), "depth": list(self.depth), "lam": list(self.lam),
                "rho": list(self.rho), "eps": list(self.eps), "fraction": list(self.fraction), "method": method}

    def indices(self, start: int, stop: int) -> tuple:
        return np.unravel_index(np.arange(start, stop), self.shape)


def compute_rows(grid: Grid, start: int, stop: int, method: str = "exact", **ode_options) -> dict:
    """Rows ``start:stop`` of the sweep as ``{column: array}`` (float64 / str)."""
    spec.check_choice(method, spec.METHODS, "method")
    io, idepth, ilam, irho, ieps, ifrac = grid.indices(start, stop)
    depth = np.asarray(grid.depth)[idepth]
    lam, rho = np.asarray(grid.lam)[ilam], np.asarray(grid.rho)[irho]
    eps, fraction = np.asarray(grid.eps)[ieps], np.asarray(grid.fraction)[ifrac]
    n = stop - start
    fixed = np.empty(n)
    t_star = np.empty(n)
    t_asym = np.empty(n)
    for k, obj in enumerate(grid.objective):
        m = io == k
        if not m.any():
            continue
        args = (obj, depth[m], lam[m], rho[m], eps[m])
        fixed[m] = spec.fixed_point(obj, depth[m], rho[m])
        # first: it is cheap and names a float64 overflow before any integration starts
        t_asym[m] = theory.critical_time_asymptotic(*args, fraction[m])
        if method == "exact":
            t_star[m] = theory.critical_time_unchecked(*args, fraction[m])
        else:
            from . import ode

            t_star[m] = ode.critical_time(*args, fraction[m], **ode_options)
    return {"objective": np.asarray(grid.objective)[io], "depth": depth, "lam": lam, "rho": rho,
            "sigma2": lam / rho, "eps": eps, "fraction": fraction, "fixed_point": fixed,
            "critical_time": t_star, "critical_time_asymptotic": t_asym}


def _format_block(grid: Grid, cols: dict, start: int, stop: int) -> list:
    """Text columns; the grid's own values are formatted once and indexed."""
    idx = grid.indices(start, stop)
    out = []
    for name, index in zip(("objective", "depth", "lam", "rho"), idx[:4]):
        table = np.asarray(records.format_column(np.asarray(getattr(grid, name))), dtype=object)
        out.append(table[index].tolist())
    out.append(records.format_column(cols["sigma2"]))
    for name, index in zip(("eps", "fraction"), idx[4:]):
        table = np.asarray(records.format_column(np.asarray(getattr(grid, name))), dtype=object)
        out.append(table[index].tolist())
    for name in ("fixed_point", "critical_time", "critical_time_asymptotic"):
        out.append(records.format_column(cols[name]))
    return out


def run_sweep(grid: Grid, out: str, *, method: str = "exact", resume: bool = False, progress=None,
              command: str | None = None, block: int | None = None, **ode_options) -> int:
    """Compute every row of ``grid`` and stream it to the CSV ``out``.

    Returns the number of rows computed by this call.  With ``resume=True`` an
    existing file for the same grid and method is continued.  ``progress``: show a
    tqdm bar on stderr (``None``: only when stderr is a terminal).  Ctrl-C raises
    :class:`SweepInterrupted` after the finished blocks are flushed."""
    spec.check_choice(method, spec.METHODS, "method")
    block = block or (_EXACT_BLOCK if method == "exact" else _ODE_BLOCK)
    header = records.provenance_lines(command or "jepa_dynamics.sweep.run_sweep(...)",
                                      {"method": method, "columns": "critical_time and critical_time_asymptotic "
                                       "are gradient-flow times (theory-spec section 4)"})
    writer = records.CsvAppender(out, header, SWEEP_COLUMNS, key=grid.key(method), resume=resume)
    start = writer.done
    total = grid.size
    if start > total:
        writer.close()
        raise spec.SpecError("out", f"cannot resume {out}: it holds {start} rows, more than the {total} of this sweep")
    bar = records.progress_bar(total, initial=start, enabled=progress, desc=f"sweep ({method})", unit="row")
    done = start
    try:
        while done < total:
            stop = min(total, done + block)
            cols = compute_rows(grid, done, stop, method, **ode_options)
            writer.write_columns(_format_block(grid, cols, done, stop))
            bar.update(stop - done)
            done = stop
    except KeyboardInterrupt:
        raise SweepInterrupted(done, total, out) from None
    finally:
        bar.close()
        writer.close()
    return done - start


def time_grid(t_max: float, num: int = 200, spacing: str = "log", t_min: float | None = None) -> np.ndarray:
    """Times ``0, ..., t_max``: ``num`` points, log-spaced from ``t_min`` (default
    ``t_max * 1e-6``) or evenly spaced, with ``t = 0`` first."""
    t_max = float(spec.check_positive(t_max, "t_max"))
    num = spec.check_positive_int(num, "num_times")
    spec.check_choice(spacing, ("log", "linear"), "spacing")
    if spacing == "linear":
        return np.linspace(0.0, t_max, num + 1)
    t_min = t_max * 1e-6 if t_min is None else float(spec.check_positive(t_min, "t_min"))
    if t_min >= t_max:
        raise spec.SpecError("t_min", f"must be below t_max = {t_max:.6g}")
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num)])


def simulate(grid: Grid, ts=None, *, method: str = "exact", num: int = 200, spacing: str = "log",
             horizon: float = 4.0, **ode_options):
    """Trajectories ``w(t)`` for every problem of ``grid`` (``fraction`` unused but validated).

    Returns ``(params, ts, w)``: ``params`` maps column names to arrays of length
    ``B`` (one per combination), ``w`` has shape ``(B, len(ts))``.  Without ``ts``
    the grid runs to ``horizon`` times the largest critical time."""
    spec.check_choice(method, spec.METHODS, "method")
    cols = compute_rows(grid, 0, grid.size, "exact")
    if ts is None:
        t_max = horizon * float(np.max(cols["critical_time"]))
        t_min = 1e-3 * float(np.min(cols["critical_time"]))
        ts = time_grid(t_max, num, spacing, t_min=min(t_min, t_max / 10))
    ts = spec.check_nonnegative(ts, "times")
    if ts.ndim != 1 or np.any(np.diff(ts) <= 0):
        raise spec.SpecError("times", "must be strictly increasing")
    w = np.empty((grid.size, ts.size))
    for k, obj in enumerate(grid.objective):
        m = cols["objective"] == obj
        args = (obj, cols["depth"][m], cols["lam"][m], cols["rho"][m], cols["eps"][m], ts)
        if method == "exact":
            w[m] = theory.trajectory(*args)
        else:
            from . import ode

            w[m] = ode.trajectory(*args, **ode_options)
    params = {k: cols[k] for k in ("objective", "depth", "lam", "rho", "sigma2", "eps", "fixed_point",
                                   "critical_time")}
    return params, ts, w


def run_simulate(grid: Grid, out: str, ts=None, *, method: str = "exact", command: str | None = None,
                 **kwargs):
    """:func:`simulate` and write ``out``: a long-format CSV (one row per problem and
    time, columns :data:`SIMULATE_COLUMNS`) or, for ``.npz``, arrays ``w`` of shape
    ``(problems, times)``, ``time`` and one array per parameter."""
    params, ts, w = simulate(grid, ts, method=method, **kwargs)
    header = records.provenance_lines(command or "jepa_dynamics.sweep.run_simulate(...)", {"method": method})
    spec.check_writable(out)
    if out.endswith(".npz"):
        tmp = f"{out}.tmp.npz"
        np.savez(tmp, w=w, time=ts, provenance=np.array("\n".join(header)), **params)
        os.replace(tmp, out)
        return params, ts, w
    b, t = w.shape
    data = [np.repeat(params[k], t) for k in SIMULATE_COLUMNS[:7]] + [np.tile(ts, b), w.ravel()]
    records.write_csv_atomic(out, header, SIMULATE_COLUMNS, data)
    return params, ts, w


def parse_grid(objective: str, depth: str, lam: str, rho: str, eps: str, fraction: str = "0.5") -> Grid:
    """A :class:`Grid` from comma-separated strings (the CLI flags)."""
    return Grid(
        objective=tuple(spec.parse_list(objective, "objective", str)),
        depth=tuple(spec.parse_list(depth, "depth", str)),
        lam=tuple(spec.parse_list(lam, "lam")),
        rho=tuple(spec.parse_list(rho, "rho")),
        eps=tuple(spec.parse_list(eps, "eps")),
        fraction=tuple(spec.parse_list(fraction, "fraction")),
    )

