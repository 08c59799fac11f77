"""Parameter sweeps: critical times over a Cartesian grid, and trajectories.

:class:`Grid` is the validated Cartesian product ``objective x depth x lam x rho x
eps x fraction`` (that nesting order, the last varying fastest).  :func:`run_sweep`
streams its rows to a CSV in blocks, so memory stays bounded whatever the size, each
block is flushed as soon as it is computed, and an interrupted sweep resumes where
it stopped (``resume=True``) with no row lost or repeated.  :func:`run_simulate`
writes trajectories ``w(t)``.

Columns of a sweep (names of ``docs/theory.md``; every column: ``docs/columns.md``): ``objective, depth, lam, rho,
sigma2, eps, fraction, w_star, t_star, t_star_asymptotic``.
``t_star`` is gradient-flow time (exact closed form with
``method="exact"``, diffrax integration with ``method="ode"``);
``t_star_asymptotic`` is the small-``eps`` divergent part of
:func:`jepa_dynamics.theory.critical_time_asymptotic`.

Issue 9 (``docs/theory.md`` section 9) adds four Cartesian axes after ``fraction``
(``predictor_init`` (``None`` = balanced), ``ema_rate``, ``weight_decay``, ``lr``; their defaults keep
today's rows, order and values) and seven columns after today's ten: ``predictor_init`` (the
number, ``eps**(1/depth)`` when balanced), ``ema_rate`` (``inf``: stop-gradient), ``weight_decay``,
``lr`` (``0``: gradient flow), ``w_inf``, ``learned`` (``true``/``false``) and ``critical_step`` (empty
for gradient flow).  Rows that leave today's setting come from :func:`jepa_dynamics.theory.aligned.predict`
whatever ``method`` says; for them ``t_star`` is ``inf`` when not learned, ``lr`` times the
interpolated step count for ``lr > 0``, and ``t_star_asymptotic`` is ``nan`` unless the row is
balanced, stop-gradient and without weight decay (the balanced small-``eps`` series applies there).
"""

from __future__ import annotations

import os
import numpy as np

from .. import records
from ..theory import joint, spec, balanced as theory
from ._grid import (check_method, joint_data, _EXACT_BLOCK, _FLOAT_TEXT, _GRID_AXES, _NUMBER_BYTES, _NUMBER_POSITIONS, _ODE_BLOCK,
                    _SWEEP_GRID_POSITIONS, _TEXT_AXES, _TRUE_FALSE, SIMULATE_COLUMNS, SWEEP_COLUMNS, Grid,
                    SweepInterrupted, parse_grid)

__all__ = ["SWEEP_COLUMNS", "SIMULATE_COLUMNS", "Grid", "SweepInterrupted", "compute_rows", "run_sweep",
           "row_checker", "sweep_bytes", "plot_rows", "time_grid", "simulate", "simulate_footprint",
           "check_simulate_size", "run_simulate", "parse_grid"]

def compute_rows(grid: Grid, start: int, stop: int, method: str = "exact", **ode_options) -> dict:
    """Rows ``start:stop`` of the sweep as ``{column: array}`` (float64 / str).  ``barlow`` and ``vicreg``
    rows (docs/theory.md section 16) come from :mod:`jepa_dynamics.theory.joint`: ``t_star_asymptotic`` is
    its divergent part :func:`~jepa_dynamics.theory.joint.critical_time_leading`."""
    check_method(grid, method)
    io, idepth, ilam, irho, ieps, ifrac, iv0, ikappa, ibeta, ieta = grid.indices(start, stop)
    depth = np.asarray(grid.depth)[idepth]
    lam, rho = np.asarray(grid.lam)[ilam], np.asarray(grid.rho)[irho]
    eps, fraction = np.asarray(grid.eps)[ieps], np.asarray(grid.fraction)[ifrac]
    v0_given = np.array([np.nan if v is None else v for v in grid.predictor_init])[iv0]
    balanced = np.array([v is None for v in grid.predictor_init])[iv0]
    kappa, beta = np.asarray(grid.ema_rate)[ikappa], np.asarray(grid.weight_decay)[ibeta]
    eta = np.asarray(grid.lr)[ieta]
    a0 = eps ** (1.0 / depth)
    v0 = np.where(balanced, a0, v0_given)
    n = stop - start
    fixed = np.empty(n)
    t_star = np.empty(n)
    t_asym = np.full(n, np.nan)
    w_inf = np.empty(n)
    learned = np.ones(n, bool)
    step = np.full(n, np.nan)
    # today's rows: balanced, stop-gradient (or MAE), no weight decay, gradient flow -- today's code
    today = balanced & ~np.isfinite(kappa) & (beta == 0) & (eta == 0)
    for k, obj in enumerate(grid.objective):
        m = io == k
        if not m.any():
            continue
        if obj in spec.JOINT_OBJECTIVES:
            args = (obj, depth[m], lam[m], eps[m], fraction[m])
            kw = joint_data(obj, lam[m], rho[m])
            w_inf[m] = fixed[m] = joint.fixed_point(obj, lam[m], **kw)
            v0[m] = np.nan  # no predictor
            t_star[m], t_asym[m] = joint.critical_time(*args, **kw), joint.critical_time_leading(*args, **kw)
            continue
        fixed[m] = spec.fixed_point(obj, depth[m], rho[m])
        # the balanced divergent part, where the balanced gradient-flow theory applies (nan elsewhere)
        b = m & balanced & ~np.isfinite(kappa) & (beta == 0)
        if b.any():
            t_asym[b] = theory.critical_time_asymptotic(obj, depth[b], lam[b], rho[b], eps[b], fraction[b])
        t = m & today
        if t.any():
            args = (obj, depth[t], lam[t], rho[t], eps[t])
            w_inf[t] = fixed[t]
            if method == "exact":
                t_star[t] = theory.critical_time_unchecked(*args, fraction[t])
            else:
                from ..engines import ode

                t_star[t] = ode.critical_time(*args, fraction[t], **ode_options)
        x = m & ~today
        if x.any():
            from ..theory import aligned

            pred = aligned.predict(obj, depth[x], lam[x], rho[x], eps[x], v0[x],
                                   ema_rate=np.where(obj == "jepa", kappa[x], np.inf), weight_decay=beta[x],
                                   lr=eta[x], fraction=fraction[x])
            w_inf[x], learned[x], t_star[x], step[x] = pred
    return {"objective": np.asarray(grid.objective)[io], "depth": depth, "lam": lam, "rho": rho,
            "sigma2": lam / rho, "eps": eps, "fraction": fraction, "w_star": fixed,
            "t_star": t_star, "t_star_asymptotic": t_asym, "predictor_init": v0,
            "ema_rate": kappa, "weight_decay": beta, "lr": eta, "w_inf": w_inf, "learned": learned,
            "critical_step": step}


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
    for name in ("w_star", "t_star", "t_star_asymptotic", "predictor_init"):
        out.append(records.format_column(cols[name]))
    for name, index in zip(("ema_rate", "weight_decay", "lr"), idx[7:]):
        table = np.asarray(records.format_column(np.asarray(getattr(grid, name))), dtype=object)
        out.append(table[index].tolist())
    out.append(records.format_column(cols["w_inf"]))
    out.append(records.format_column(np.asarray(cols["learned"], bool)))
    step = np.asarray(records.format_column(cols["critical_step"]), dtype=object)
    out.append(np.where(np.isnan(cols["critical_step"]), "", step).tolist())  # empty for gradient flow
    return out


def _text_tables(grid: Grid) -> list:
    """The grid's values of each axis as the text a sweep writes (object arrays)."""
    return [np.asarray(records.format_column(np.asarray(getattr(grid, n))), dtype=object) for n in _TEXT_AXES]


# rows with --lr > 0 follow the exact gradient-descent map step by step (about 3 us a step on one CPU core):
# above GD_STEPS_LARGE estimated steps a sweep asks for --allow-large; above GD_STEPS_MAX (where
# theory.aligned.predict stops following the map) it is refused
GD_STEPS_LARGE = 10**7
GD_STEPS_MAX = 10**9


def gd_steps(grid: Grid) -> float:
    """The largest leading-order plateau length, in gradient-descent steps, of the grid's ``lr > 0``
    rows (``0.0`` without such rows): the balanced small-``eps`` asymptotics at the smallest ``lam``
    and ``lr`` (the step count only grows as they shrink), over every depth, eps and predictor_init."""
    from ..theory import gd

    eta = np.asarray(grid.lr, dtype=np.float64)
    eta = eta[eta > 0]
    if not eta.size:
        return 0.0
    worst = 0.0
    for obj in grid.objective:
        d, eps, v = np.meshgrid(np.asarray(grid.depth, dtype=np.int64), np.asarray(grid.eps),
                                np.array([np.nan if x is None else x for x in grid.predictor_init]), indexing="ij")
        d, eps, v = d.ravel(), eps.ravel(), v.ravel()
        a0 = eps ** (1.0 / d)
        v0 = np.where(np.isnan(v), a0, v)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            est = gd._estimated_steps(obj, d, float(min(grid.lam)), a0, v0, float(eta.min()))
        worst = max(worst, float(np.nanmax(np.where(np.isnan(est), np.inf, est))))
    return worst


def check_gd_steps(grid: Grid, allow_large: bool = False) -> None:
    """Refuse (one line naming ``--lr``) a sweep whose ``lr > 0`` rows need more gradient-descent steps
    than :data:`GD_STEPS_MAX`, or more than :data:`GD_STEPS_LARGE` without ``allow_large``."""
    steps = gd_steps(grid)
    if steps <= GD_STEPS_LARGE:
        return
    eta = min(v for v in grid.lr if v > 0)
    size = "more than 1e308" if not np.isfinite(steps) else f"about {steps:.2g}"
    if steps > GD_STEPS_MAX:
        raise spec.SpecError("lr", f"{eta!r} needs {size} steps of the exact gradient-descent map to reach "
                                   f"the crossing, more than the {GD_STEPS_MAX:.0e}".replace("e+0", "e") + " it follows; use a larger --lr, "
                                   "or --lr 0 for gradient flow")
    if not allow_large:
        raise spec.SpecError("allow_large", f"--lr {eta!r} needs {size} steps of the exact gradient-descent map "
                                            f"(about {steps * 3e-6:.0f} s); use a larger --lr, --lr 0 for gradient "
                                            "flow, or pass --allow-large to go ahead")


def sweep_bytes(grid: Grid, rows: int | None = None) -> float:
    """An upper estimate of the CSV bytes of ``rows`` rows (default: all) of ``grid``: the mean
    text of each axis, four computed floats at their longest repr, commas and newline."""
    rows = grid.size if rows is None else rows
    per_row = sum(float(np.mean([len(t) for t in table])) for table in _text_tables(grid))
    return rows * (per_row + 7 * _FLOAT_TEXT + 5 + len(SWEEP_COLUMNS))


def row_checker(grid: Grid):
    """``check(start, rows)`` for :class:`~jepa_dynamics.records.CsvAppender`: the index of the
    first row of the block ``rows`` (:class:`~jepa_dynamics.records.Rows`) that is not the
    sweep's row at its position: its six grid columns must be the grid's text (compared as
    bytes, vectorised), its four computed columns number text (1 to 24 of ``0-9 . e + -`` and
    the letters of ``inf`` and ``nan``); a row past the grid's end is not its row."""
    tables = []
    for table in _text_tables(grid):
        encoded = [t.encode() for t in table]
        width = max(map(len, encoded)) + 1  # one more byte: a longer field in the file cannot match
        tables.append((np.array(encoded, dtype=f"S{width}"), np.array([len(e) for e in encoded]), width))
    total = grid.size

    def check(start: int, rows):
        k = rows.k
        stop = min(total, start + k)
        bad = [stop - start] if stop - start < k else []
        m = stop - start
        if m > 0:
            indices = grid.indices(start, stop)
            indices = [indices[_GRID_AXES.index(n)] for n in _TEXT_AXES]
            for pos, (text, length, width), index in zip(_SWEEP_GRID_POSITIONS, tables, indices):
                got, got_len = rows.field(pos, width)
                wrong = np.flatnonzero((got[:m] != text[index]) | (got_len[:m] != length[index]))
                bad += wrong[:1].tolist()
            # number text: 1 to 24 of 0-9 . e + - (inf and nan spelt with i n f a)
            wrong = rows.bytes_outside(_NUMBER_POSITIONS, _NUMBER_BYTES)
            bad += wrong[wrong < m][:1].tolist()
            for pos in _NUMBER_POSITIONS:
                length = rows.lengths(pos)[:m]
                bad += np.flatnonzero(((length == 0) & (pos != 16)) | (length > _FLOAT_TEXT))[:1].tolist()
            wrong = rows.bytes_outside((15,), _TRUE_FALSE)
            bad += wrong[wrong < m][:1].tolist()
            length = rows.lengths(15)[:m]
            bad += np.flatnonzero((length != 4) & (length != 5))[:1].tolist()
        return min(bad) if bad else None

    return check


def plot_rows(grid: Grid) -> np.ndarray:
    """Positions of the rows :func:`jepa_dynamics.figures.commands.sweep_figure` draws from a sweep of
    ``grid``: the smallest ``eps`` and ``fraction``, every ``rho`` at the middle ``lam`` and
    every ``lam`` at the middle ``rho`` (so ``--plot`` reads a few rows, not the whole file)."""
    axes = [np.asarray(getattr(grid, n)) for n in _GRID_AXES]
    every = [np.arange(a.size) for a in axes]
    eps = np.flatnonzero(axes[4] == axes[4].min())
    frac = np.flatnonzero(axes[5] == axes[5].min())
    lam_u, rho_u = np.unique(axes[2]), np.unique(axes[3])
    lam0 = np.flatnonzero(axes[2] == lam_u[lam_u.size // 2])
    rho0 = np.flatnonzero(axes[3] == rho_u[rho_u.size // 2])
    picks = [np.ravel_multi_index(np.ix_(every[0], every[1], lam, rho, eps, frac, *every[6:]), grid.shape).ravel()
             for lam, rho in ((lam0, every[3]), (every[2], rho0))]
    return np.unique(np.concatenate(picks))


def run_sweep(grid: Grid, out: str, *, method: str = "exact", resume: bool = False, progress=None,
              command: str | None = None, block: int | None = None, repair: bool = False,
              allow_large: bool = False, report=None, **ode_options) -> int:
    """Compute every row of ``grid`` and stream it to the CSV ``out``.

    Returns the number of rows computed by this call.  With ``resume=True`` an existing
    file for the same grid and method is continued after checking, in bounded memory, that
    each of its rows is the grid's row at that position; a row that is not (garbage,
    duplicates, bytes that are not text) refuses the resume with the file untouched, or
    with ``repair=True`` cuts the file there and computes the rest (``report(message)`` is
    told).  The estimated output must fit the disk (:func:`jepa_dynamics.records.check_size`;
    ``allow_large`` skips that).  ``progress``: show a tqdm bar on stderr (``None``: only
    when stderr is a terminal).  Ctrl-C raises :class:`SweepInterrupted` after the finished
    blocks are flushed."""
    check_method(grid, method)
    block = block or (_EXACT_BLOCK if method == "exact" else _ODE_BLOCK)
    header = records.provenance_lines(command or "jepa_dynamics.experiments.sweep.run_sweep(...)",
                                      {"method": method, "columns": "t_star and t_star_asymptotic "
                                       "are gradient-flow times (docs/theory.md); every column: docs/columns.md"})
    total = grid.size
    spec.check_writable(out, "out")
    # checked before the file is opened: a refused sweep leaves it as it was
    have = os.path.getsize(out) if resume and os.path.exists(out) else 0
    records.check_size(f"this sweep ({total} rows)", path=out, out_bytes=sweep_bytes(grid) - have,
                       allow_large=allow_large)
    check_gd_steps(grid, allow_large)
    writer = records.CsvAppender(out, header, SWEEP_COLUMNS, key=grid.key(method), resume=resume,
                                 check=row_checker(grid), repair=repair, progress=progress, what="sweep")
    start = writer.done
    if writer.repaired is not None and report is not None:
        row, found = writer.repaired
        report(f"{out}: data row {row + 1} was not this sweep's row (found {found}); kept the {row} rows before "
               f"it and computed the rest")
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
    if t_min < np.finfo(np.float64).tiny:
        raise spec.SpecError("t_max", f"too small for a log time grid: it starts at t_max * 1e-6 = {t_min:.3g}, "
                                      "below the smallest normal float64 (2.2e-308); use a larger --t-max or "
                                      "--spacing linear")
    if t_min >= t_max:
        raise spec.SpecError("t_min", f"must be below t_max = {t_max:.6g}")
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num)])


def simulate_footprint(grid: Grid, num_times: int, out: str | None = None) -> tuple[float, float]:
    """``(output bytes, peak memory bytes)`` estimated for :func:`run_simulate` of ``grid`` on
    ``num_times + 1`` times: ``w`` in float64 plus the exact inversion's temporaries (about 16
    arrays of the same shape), and the file (CSV rows at the longest float text, or NPZ)."""
    points = float(grid.size) * (num_times + 1)
    mem = points * 8 * 17
    if out is not None and out.endswith(".npz"):
        return points * 8, mem
    per_row = sum(float(np.mean([len(t) for t in table])) for table in _text_tables(grid))
    return points * (per_row + 5 * _FLOAT_TEXT + len(SIMULATE_COLUMNS)), mem


def check_simulate_size(grid: Grid, num_times: int, out: str, allow_large: bool = False) -> None:
    """Refuse a simulation whose output or memory would be too large (before any array exists)."""
    out_bytes, mem = simulate_footprint(grid, num_times, out)
    records.check_size(f"this simulation ({grid.size} problems x {num_times + 1} times)", path=out,
                       out_bytes=out_bytes, mem_bytes=mem, allow_large=allow_large)


def simulate(grid: Grid, ts=None, *, method: str = "exact", num: int = 200, spacing: str = "log",
             horizon: float = 4.0, progress=None, **ode_options):
    """Trajectories ``w(t)`` for every problem of ``grid``.

    Returns ``(params, ts, w)``: ``params`` maps column names (``objective ... fraction,
    w_star, t_star``) to arrays of length ``B`` (one per combination), ``w`` has
    shape ``(B, len(ts))``.  Without ``ts`` the grid runs to ``horizon`` times the largest
    critical time.  ``progress``: report the problems done on stderr (:func:`jepa_dynamics.records.progress_bar`)."""
    check_method(grid, method)
    cols = compute_rows(grid, 0, grid.size, "exact")
    if ts is None:
        t_max = horizon * float(np.max(cols["t_star"]))
        if not np.isfinite(t_max):
            raise spec.SpecError("t_max", f"{horizon:g} x the largest critical time overflows float64; give --t-max")
        t_min = 1e-3 * float(np.min(cols["t_star"]))
        ts = time_grid(t_max, num, spacing, t_min=min(t_min, t_max / 10))
    ts = spec.check_nonnegative(ts, "times")
    if ts.ndim != 1 or np.any(np.diff(ts) <= 0):
        raise spec.SpecError("times", "must be strictly increasing")
    w = np.empty((grid.size, ts.size))
    bar = records.progress_bar(grid.size, enabled=progress, desc=f"simulate ({method})", unit="problem")
    try:
        for obj in grid.objective:
            m = cols["objective"] == obj
            args = (obj, cols["depth"][m], cols["lam"][m], cols["rho"][m], cols["eps"][m], ts)
            if obj in spec.JOINT_OBJECTIVES:
                w[m] = joint.trajectory(obj, *args[1:3], *args[4:], **joint_data(obj, cols["lam"][m], cols["rho"][m]))
            elif method == "exact":
                w[m] = theory.trajectory(*args)
            else:
                from ..engines import ode

                w[m] = ode.trajectory(*args, **ode_options)
            bar.update(int(m.sum()))
    finally:
        bar.close()
    params = {k: cols[k] for k in SIMULATE_COLUMNS[:9]}
    return params, ts, w


def run_simulate(grid: Grid, out: str, ts=None, *, method: str = "exact", command: str | None = None,
                 allow_large: bool = False, progress=None, **kwargs):
    """:func:`simulate` and write ``out``: a long-format CSV (one row per problem and
    time, columns :data:`SIMULATE_COLUMNS`, written in blocks) or, for ``.npz``, arrays
    ``response`` of shape ``(problems, times)``, ``time`` and one array per parameter.  Refuses
    (before computing) a job too large for the disk or memory unless ``allow_large``."""
    spec.check_writable(out)
    num = len(ts) - 1 if ts is not None else kwargs.get("num", 200)
    check_simulate_size(grid, num, out, allow_large)
    params, ts, w = simulate(grid, ts, method=method, progress=progress, **kwargs)
    header = records.provenance_lines(command or "jepa_dynamics.experiments.sweep.run_simulate(...)", {"method": method})
    if out.endswith(".npz"):
        records.save_npz_atomic(out, response=w, time=ts, provenance=np.array("\n".join(header)), **params)
        return params, ts, w
    b, t = w.shape
    tables = [np.asarray(records.format_column(params[k]), dtype=object) for k in SIMULATE_COLUMNS[:9]]
    times = np.asarray(records.format_column(ts), dtype=object)

    def blocks(size=_EXACT_BLOCK):
        for start in range(0, b * t, size):
            i = np.arange(start, min(b * t, start + size))
            problem, k = np.divmod(i, t)
            yield ([table[problem].tolist() for table in tables] + [times[k].tolist()]
                   + [records.format_column(w[problem, k])])
            bar.update(i.size)

    bar = records.progress_bar(b * t, enabled=progress, desc="simulate (writing)", unit="row")
    try:
        records.write_csv_blocks(out, header, SIMULATE_COLUMNS, blocks())
    finally:
        bar.close()
    return params, ts, w


