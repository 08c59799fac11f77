"""The plots the ``sweep`` and ``simulate`` commands draw (``--plot``).

Both in the package's one style (:mod:`jepa_dynamics._style`): colour is depth, line style the
objective (JEPA solid, MAE dashed).  Times are gradient-flow time (docs/theory.md section 1).

* :func:`sweep_figure`: each feature's critical time relative to the fastest feature of the same
  objective and depth, against ``rho`` (top row) and ``lam`` (bottom row), one column per
  objective; rows, columns and axes that the grid does not vary are left out.
* :func:`trajectory_figure`: ``w(t) / w_star``, one panel per objective, the marker the
  ``(lam, rho)`` pair.
"""

from __future__ import annotations

import numpy as np

from .._style import OBJECTIVE_LABEL, OBJECTIVE_STYLE, TIME_LABEL, depth_colour, new_figure, style
from ._common import _depth_handles, _legend_handles

__all__ = ["sweep_figure", "trajectory_figure", "problem_styles"]

_AXIS_LABEL = {"rho": r"$\rho$ (regression coefficient)", "lam": r"$\lambda$ (covariance)"}
_SYMBOL = {"rho": r"\rho", "lam": r"\lambda"}
# the beyond-balanced axes of a sweep (docs/columns.md): the plot shows one value of each
_KNOBS = ("predictor_init", "ema_rate", "weight_decay", "lr")


def _pick(values: np.ndarray, prefer: float | None = None):
    uniq = np.unique(values)
    if prefer is not None and prefer in uniq:
        return prefer
    return uniq[len(uniq) // 2]


def _objectives(table) -> list:
    return [o for o in OBJECTIVE_LABEL if np.any(table["objective"] == o)]  # JEPA, MAE, Barlow Twins, VICReg


def _first_knobs(table, m: np.ndarray) -> np.ndarray:
    """``m`` narrowed to the rows whose beyond-balanced settings equal those of its first row."""
    if not m.any():
        return m
    first = np.flatnonzero(m)[0]
    for name in _KNOBS:
        if name in table:
            col = table[name]
            m = m & ((col == col[first]) | (np.isnan(col) & np.isnan(col[first])))
    return m


def _varied_knobs(table, rows: np.ndarray) -> list:
    """The beyond-balanced columns that take several values within one objective and depth."""
    out = []
    for name in _KNOBS:
        if name in table:
            for obj in _objectives(table):
                for d in np.unique(table["depth"][rows]):
                    m = rows & (table["objective"] == obj) & (table["depth"] == d)
                    if np.unique(table[name][m]).size > 1 and name not in out:
                        out.append(name)
    return out


def relative_times(table: dict, rows: np.ndarray) -> dict:
    """``(objective, depth) -> t_star / min t_star`` over ``rows`` (a mask) of that objective
    and depth, non-finite critical times (features never learned) left out of the minimum."""
    out = {}
    for obj in _objectives(table):
        for d in np.unique(table["depth"]).astype(int):
            m = _first_knobs(table, rows & (table["objective"] == obj) & (table["depth"] == d))
            t = table["t_star"][m]
            finite = np.isfinite(t) & (t > 0)
            if finite.any():
                out[(obj, int(d))] = (m, t / t[finite].min())
    return out


def sweep_figure(table: dict, *, lam: float | None = None, rho: float | None = None):
    """Each feature's critical time over that of the fastest feature drawn (same objective and
    depth), against ``rho`` at one ``lam`` (top row) and against ``lam`` at one ``rho`` (bottom
    row); one column per objective, colour depth, one shared log ``y`` axis.

    Deep JEPA's line falls with ``rho`` (it learns predictive features first), more steeply the
    deeper the encoder; MAE's stays flat against ``rho``; both fall as ``1 / lam``.  A row is
    drawn only for a parameter the table varies, a column only for an objective it holds; with
    neither ``lam`` nor ``rho`` varied, the raw critical time per depth is drawn instead.

    ``table`` maps sweep columns to arrays (:func:`jepa_dynamics.records.read_csv`).  The
    smallest ``eps`` and ``fraction`` are shown, and the first value of each beyond-balanced
    column; the fixed ``lam`` and ``rho`` are the middle of each range unless given."""
    eps = np.unique(table["eps"])[0]
    fraction = np.unique(table["fraction"])[0]
    base = (table["eps"] == eps) & (table["fraction"] == fraction)
    fixed = {"lam": _pick(table["lam"][base], lam), "rho": _pick(table["rho"][base], rho)}
    rows = [x for x in ("rho", "lam") if np.unique(table[x][base]).size > 1]
    objectives = _objectives(table)
    depths = sorted(np.unique(table["depth"][base]).astype(int).tolist())
    if not rows:
        return _times_by_depth(table, base, objectives, depths, fixed, eps, fraction)
    other = {"rho": "lam", "lam": "rho"}
    drawn = np.zeros(base.shape, bool)
    for x in rows:
        drawn |= base & (table[other[x]] == fixed[other[x]])
    ratios = relative_times(table, drawn)
    with style():
        fig, axes = new_figure(len(rows), len(objectives), width=4.0 if len(objectives) > 1 else 4.6,
                               height=3.1 if len(objectives) > 1 or len(rows) > 1 else 3.8, sharey=True)
        for r, x in enumerate(rows):
            for c, obj in enumerate(objectives):
                ax = axes[r, c]
                for d in depths:
                    if (obj, d) not in ratios:
                        continue
                    m, y = ratios[(obj, d)]
                    keep = (table[other[x]][m] == fixed[other[x]]) & np.isfinite(y)
                    xs, ys = table[x][m][keep], y[keep]
                    order = np.argsort(xs)
                    # shallow lines wider, under deeper ones: lines that coincide (t* ~ 1/lam at
                    # every depth) still show every colour
                    width = 1.5 + 1.3 * (len(depths) - 1 - depths.index(d)) / max(1, len(depths) - 1)
                    ax.plot(xs[order], ys[order], color=depth_colour(d, depths), marker="o", markersize=4,
                            linewidth=width, linestyle=OBJECTIVE_STYLE[obj]["linestyle"], label=f"L = {d}")
                values = np.unique(table[x][drawn])
                if values.min() > 0 and values.max() / values.min() > 20:
                    ax.set_xscale("log")
                ax.set_xlabel(f"{_AXIS_LABEL[x]}, at ${_SYMBOL[other[x]]}$ = {fixed[other[x]]:g}")
                if r == 0:
                    ax.set_title(OBJECTIVE_LABEL[obj], fontsize=11, fontweight="bold")
                if c == 0:
                    ax.set_ylabel("$t^*$ / $t^*$ of the fastest feature")
        _ratio_axis(axes[0, 0], ratios)
        fig.legend(handles=_depth_handles(depths), title="encoder depth", loc="outside lower center",
                   ncols=len(depths), frameon=False)
        gap = "\n" if len(objectives) == 1 else " "  # one column: three short lines
        varied = _varied_knobs(table, drawn)
        fig.suptitle(f"$t^*$ over the fastest feature's $t^*$, per objective and depth{gap}"
                     f"($\\epsilon$ = {eps:g}, fraction = {fraction:g}):{gap}lower = learned earlier"
                     + (f"\nshown: the first value of{gap}{', '.join(varied)}" if varied else ""), fontsize=10)
    return fig


def _ratio_axis(ax, ratios: dict) -> None:
    """A log ``y`` axis of ratios from just under 1 to just over the largest (at least to 2.5, so
    that flat lines look flat), ticked at round ratios (1, 1.5, 2, 3, 5, 10, ...) as plain numbers."""
    from matplotlib.ticker import FixedLocator, NullLocator

    top = max([float(np.max(y[np.isfinite(y)])) for _, y in ratios.values() if np.isfinite(y).any()] or [1.0])
    lo, hi = 0.9, max(2.5, top * 1.25)
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    for mantissas in ((1, 1.2, 1.5, 2, 3, 5), (1, 2, 5), (1,)):
        ticks = [m * 10.0 ** k for k in range(0, int(np.ceil(np.log10(hi))) + 1) for m in mantissas]
        ticks = [v for v in ticks if lo <= v <= hi]
        if len(ticks) <= 7:
            break
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}")


def _times_by_depth(table, base, objectives, depths, fixed, eps, fraction):
    """The sweep's critical times when it varies neither ``lam`` nor ``rho``: raw ``t_star``
    against depth (categories), one line per objective."""
    with style():
        fig, axes = new_figure(1, 1, width=4.6, height=3.3)
        ax = axes[0, 0]
        pos = np.arange(len(depths))
        for obj in objectives:
            ys = []
            for d in depths:
                m = _first_knobs(table, base & (table["objective"] == obj) & (table["depth"] == d))
                ys.append(table["t_star"][m][0] if m.any() else np.nan)
            ax.plot(pos, ys, color="0.2", marker=OBJECTIVE_STYLE[obj]["marker"],
                    linestyle=OBJECTIVE_STYLE[obj]["linestyle"], label=OBJECTIVE_LABEL[obj])
        ax.set_xticks(pos, [f"L = {d}" for d in depths])
        ax.set_xlim(-0.5, len(depths) - 0.5)
        ax.set_xlabel("encoder depth")
        ax.set_yscale("log")
        ax.set_ylabel(r"critical time $t^*$ (gradient-flow time)")
        ax.legend(frameon=False)
        ax.set_title(f"$\\lambda$ = {fixed['lam']:g}, $\\rho$ = {fixed['rho']:g}, $\\epsilon$ = {eps:g}, "
                     f"fraction = {fraction:g}", fontsize=9)
    return fig


PAIR_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def problem_styles(lam, rho) -> dict:
    """``(lam, rho) -> marker``, distinct for every pair (up to 12; then they repeat): colour is
    depth and line style the objective, so the marker tells the problems apart."""
    pairs = sorted({(float(a), float(b)) for a, b in zip(np.ravel(lam), np.ravel(rho))})
    return {p: PAIR_MARKERS[k % len(PAIR_MARKERS)] for k, p in enumerate(pairs)}


def trajectory_figure(params: dict, ts: np.ndarray, w: np.ndarray, *, normalise: bool = True):
    """``w(t)`` (divided by ``w_star`` if ``normalise``), one panel per objective: colour is
    depth, line style the objective (JEPA solid, MAE dashed), marker the ``(lam, rho)`` pair
    (:func:`problem_styles`); one legend outside the panels names all three."""
    objectives = _objectives(params)
    depths = sorted(np.unique(params["depth"]).astype(int).tolist())
    styles = problem_styles(params["lam"], params["rho"])
    with style():
        fig, axes = new_figure(1, len(objectives), sharey=True)
        for ax, obj in zip(axes[0], objectives):
            for i in np.flatnonzero(params["objective"] == obj):
                d = int(params["depth"][i])
                y = w[i] / params["w_star"][i] if normalise else w[i]
                pair = (float(params["lam"][i]), float(params["rho"][i]))
                # each pair's markers start at its own offset, so markers of different pairs do not pile up
                every = max(1, (ts.size - 1) // 12)
                offset = list(styles).index(pair) * every // len(styles)
                ax.plot(ts[1:], y[1:], color=depth_colour(d, depths), linestyle=OBJECTIVE_STYLE[obj]["linestyle"],
                        marker=styles[pair], markevery=(offset, every), markersize=4, alpha=0.9)
            ax.set_xscale("log")
            ax.set_xlabel(TIME_LABEL)
            ax.set_title(OBJECTIVE_LABEL[obj])
            if normalise:
                ax.set_ylabel(r"$w(t) / w^*$")
            else:
                ax.set_ylabel(r"$w(t)$")
                ax.set_yscale("log")
        handles = _depth_handles(depths)
        handles += _legend_handles([(OBJECTIVE_LABEL[o], dict(color="0.3", linestyle=OBJECTIVE_STYLE[o]["linestyle"]))
                                    for o in objectives])
        handles += _legend_handles([(f"$\\lambda$={a:g}, $\\rho$={b:g}", dict(color="0.3", marker=m, linestyle=""))
                                    for (a, b), m in styles.items()])
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig
