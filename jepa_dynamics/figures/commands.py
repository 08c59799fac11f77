"""The plots the ``sweep`` and ``simulate`` commands draw (``--plot``).

Critical time against ``rho`` and ``lam`` for a sweep, ``w(t)`` for a simulation; both in the
package's one style (:mod:`jepa_dynamics._style`): colour is depth, line style objective.
Times are gradient-flow time (docs/theory.md section 1).
"""

from __future__ import annotations

import numpy as np

from .._style import OBJECTIVE_LABEL, OBJECTIVE_STYLE, TIME_LABEL, depth_colour, new_figure

__all__ = ["sweep_figure", "trajectory_figure", "problem_styles"]


def _pick(values: np.ndarray, prefer: float | None = None):
    uniq = np.unique(values)
    if prefer is not None and prefer in uniq:
        return prefer
    return uniq[len(uniq) // 2]


def sweep_figure(table: dict, *, lam: float | None = None, rho: float | None = None):
    """Critical time against ``rho`` (at one ``lam``) and against ``lam`` (at one
    ``rho``), one line per depth (colour) and objective (style).

    ``table`` maps sweep columns to arrays (:func:`jepa_dynamics.records.read_csv`).
    The first ``eps`` and ``fraction`` of the table are shown; the fixed values are
    the middle of each range unless given."""
    eps = np.unique(table["eps"])[0]
    fraction = np.unique(table["fraction"])[0]
    base = (table["eps"] == eps) & (table["fraction"] == fraction)
    lam0 = _pick(table["lam"][base], lam)
    rho0 = _pick(table["rho"][base], rho)
    depths = sorted(np.unique(table["depth"]).astype(int).tolist())
    fig, axes = new_figure(1, 2)
    for ax, (xname, fixed_name, fixed) in zip(axes[0], (("rho", "lam", lam0), ("lam", "rho", rho0))):
        for obj in OBJECTIVE_STYLE:  # JEPA, MAE, then Barlow Twins and VICReg (docs/theory.md section 16)
            for d in depths:
                m = base & (table["objective"] == obj) & (table["depth"] == d) & (table[fixed_name] == fixed)
                if not m.any():
                    continue
                order = np.argsort(table[xname][m])
                ax.plot(table[xname][m][order], table["t_star"][m][order], color=depth_colour(d, depths),
                        linestyle=OBJECTIVE_STYLE[obj]["linestyle"], marker=OBJECTIVE_STYLE[obj]["marker"],
                        markersize=3, label=f"{OBJECTIVE_LABEL[obj]}, L={d}")
        ax.set_xlabel(r"$\rho$ (regression coefficient)" if xname == "rho" else r"$\lambda$ (covariance)")
        ax.set_ylabel(r"critical time $t^*$ (gradient-flow time)")
        ax.set_yscale("log")
        values = table[xname][base]
        if values.min() > 0 and values.max() / values.min() > 20:
            ax.set_xscale("log")
        sym = r"\lambda" if fixed_name == "lam" else r"\rho"
        ax.set_title(f"${sym}$ = {fixed:g}, $\\epsilon$ = {eps:g}, fraction = {fraction:g}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 1].legend(handles, labels, fontsize=7, ncols=2, frameon=False)
    return fig


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("", "o", "s", "^", "v", "D", "x", "+")


def problem_styles(lam, rho) -> dict:
    """``(lam, rho) -> (linestyle, marker)``, distinct for every pair (up to 32; then they repeat):
    within one panel colour is depth, so line style and marker tell the problems apart."""
    pairs = sorted({(float(a), float(b)) for a, b in zip(np.ravel(lam), np.ravel(rho))})
    return {p: (LINESTYLES[k % len(LINESTYLES)], MARKERS[(k // len(LINESTYLES)) % len(MARKERS)])
            for k, p in enumerate(pairs)}


def trajectory_figure(params: dict, ts: np.ndarray, w: np.ndarray, *, normalise: bool = True):
    """``w(t)`` (divided by ``w_star`` if ``normalise``), one panel per objective: colour is
    depth, line style and marker the ``(lam, rho)`` pair (:func:`problem_styles`)."""
    objectives = [o for o in OBJECTIVE_LABEL if np.any(params["objective"] == o)]
    depths = sorted(np.unique(params["depth"]).astype(int).tolist())
    styles = problem_styles(params["lam"], params["rho"])
    fig, axes = new_figure(1, len(objectives), sharey=True)
    for ax, obj in zip(axes[0], objectives):
        for i in np.flatnonzero(params["objective"] == obj):
            d = int(params["depth"][i])
            y = w[i] / params["w_star"][i] if normalise else w[i]
            linestyle, marker = styles[(float(params["lam"][i]), float(params["rho"][i]))]
            ax.plot(ts[1:], y[1:], color=depth_colour(d, depths), linestyle=linestyle, marker=marker or None,
                    markevery=max(1, (ts.size - 1) // 12), markersize=3.5, alpha=0.9,
                    label=f"L={d}, $\\lambda$={params['lam'][i]:g}, $\\rho$={params['rho'][i]:g}")
        ax.set_xscale("log")
        ax.set_xlabel(TIME_LABEL)
        ax.set_title(OBJECTIVE_LABEL[obj])
        if normalise:
            ax.set_ylabel(r"$w(t) / w^*$")
        else:
            ax.set_ylabel(r"$w(t)$")
            ax.set_yscale("log")
    axes[0, -1].legend(fontsize=6, frameon=False)
    return fig
