"""``sweep`` and ``simulate``: the per-feature theory over a Cartesian grid, written to files.

Twins of ``jepa-dynamics sweep`` and ``jepa-dynamics simulate`` (same flags, same defaults,
byte-identical files).  Formulas: docs/theory.md sections 2-6 and 9.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .. import records
from ..theory import spec
from . import _common

__all__ = ["SweepResult", "SimulateResult", "sweep", "simulate"]


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` wrote: the CSV ``out`` (one row per grid point, columns in
    docs/columns.md), the optional ``plot``, and ``computed``, the rows this call computed
    (fewer than the grid's after a resume).  :meth:`table` reads the CSV back."""

    out: str
    plot: Optional[str]
    computed: int

    @property
    def files(self) -> list:
        return [self.out] + ([self.plot] if self.plot else [])

    def table(self) -> dict:
        """The CSV as ``{column: array}`` (:func:`jepa_dynamics.records.read_csv`)."""
        return records.read_csv(self.out)


@dataclasses.dataclass(frozen=True)
class SimulateResult:
    """What :func:`simulate` wrote (``out``, ``plot``) and computed: ``params`` (one array per
    grid parameter, one entry per problem), ``time (T,)`` and ``response (problems, T)`` (columns and
    npz keys: docs/columns.md)."""

    out: str
    plot: Optional[str]
    params: dict
    time: np.ndarray
    response: np.ndarray

    @property
    def files(self) -> list:
        return [self.out] + ([self.plot] if self.plot else [])


def sweep(*, out, plot=None, objective="jepa,mae", depth="1,2,4", lam="0.5,1", rho="0.3,0.6,0.9", eps=spec.DEFAULT_EPS,
          fraction="0.5", method="exact", predictor_init="balanced", ema_rate="inf", weight_decay="0", lr="0",
          resume=False, repair=False, allow_large=False, progress=None, command=None, report=None) -> SweepResult:
    """Critical times over the grid ``objective x depth x lam x rho x eps x fraction`` (and the
    beyond-balanced knobs ``predictor_init x ema_rate x weight_decay x lr``), streamed to the CSV
    ``out``; with ``plot``, each critical time over the fastest feature's (same objective and
    depth) against ``rho`` and ``lam`` (PNG/PDF/SVG; :func:`jepa_dynamics.figures.commands.sweep_figure`).

    The twin of ``jepa-dynamics sweep``: every flag is a keyword of the same name; list flags
    take comma text or sequences.  ``resume`` continues an interrupted file after checking
    every row already there (``repair`` cuts at the first bad row instead of refusing).

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> result = sweep(out=os.path.join(folder, "s.csv"), depth=[1, 2], lam=1, rho=[0.5, 0.9])
    >>> result.computed
    8
    >>> t = result.table()
    >>> bool(t["t_star"][(t["objective"] == "jepa") & (t["depth"] == 1)][0] > 0)
    True
    """
    a = _common.flags(locals())
    from ..experiments.sweep import parse_grid, plot_rows, run_sweep

    grid = parse_grid(a["objective"], a["depth"], a["lam"], a["rho"], a["eps"], a["fraction"],
                      a["predictor_init"], a["ema_rate"], a["weight_decay"], a["lr"])
    spec.check_writable(out, "out")
    _common.check_plot(plot)
    if repair and not resume:
        raise spec.SpecError("repair", "only goes with --resume")
    # the provenance line leaves out --resume/--repair: a resumed sweep's file equals an uninterrupted one's
    if command is None:
        command = _common.command_line("sweep", sweep, a, leave_out=("resume", "repair"))
    computed = run_sweep(grid, out, method=a["method"], resume=resume, progress=progress, command=command,
                         repair=repair, allow_large=allow_large, report=report or _common.note("sweep"))
    if plot:
        from ..figures.commands import sweep_figure
        from .._style import save_figure

        # only the rows the plot draws are read (bounded memory for sweeps of any size)
        save_figure(sweep_figure(records.read_csv_rows(out, plot_rows(grid))), plot)
    return SweepResult(out, plot, computed)


def simulate(*, out, plot=None, objective="jepa,mae", depth="1,2,4", lam="0.5,1", rho="0.3,0.6,0.9", eps=spec.DEFAULT_EPS,
             fraction="0.5", method="exact", t_max=None, num_times=200, spacing="log", allow_large=False,
             progress=None, command=None) -> SimulateResult:
    """Per-feature responses ``w(t)`` (``response``) from ``w(0) = eps`` for every point of the grid, exact or
    integrated (``method``), on ``num_times`` times after 0 up to ``t_max`` (default: 4 x the
    largest critical time), ``spacing`` log or linear.  ``out`` ends in ``.csv`` (long format)
    or ``.npz``; ``plot`` draws ``w(t) / w_star``.  The twin of ``jepa-dynamics simulate``.

    >>> import tempfile, os
    >>> r = simulate(out=os.path.join(tempfile.mkdtemp(), "w.npz"), objective="jepa", depth=1, lam=1, rho=0.5,
    ...              num_times=4)
    >>> r.response.shape
    (1, 5)
    """
    a = _common.flags(locals())
    from ..experiments.sweep import check_simulate_size, parse_grid, run_simulate, time_grid

    grid = parse_grid(a["objective"], a["depth"], a["lam"], a["rho"], a["eps"], a["fraction"])
    num_times = spec.check_positive_int(_common.one(a["num_times"], "num_times", int), "num_times")
    t_max = _common.one(a["t_max"], "t_max")
    if not out.endswith((".csv", ".npz")):
        raise spec.SpecError("out", f"must end in .csv or .npz, got {out!r}")
    spec.check_writable(out, "out")
    _common.check_plot(plot)
    check_simulate_size(grid, num_times, out, allow_large)  # before any array is made
    ts = None if t_max is None else time_grid(t_max, num_times, spacing)
    if command is None:
        command = _common.command_line("simulate", simulate, a)
    params, ts, w = run_simulate(grid, out, ts, method=a["method"], num=num_times, spacing=spacing,
                                 command=command, allow_large=allow_large, progress=progress)
    if plot:
        from ..figures.commands import trajectory_figure
        from .._style import save_figure

        save_figure(trajectory_figure(params, ts, w), plot)
    return SimulateResult(out, plot, params, ts, w)
