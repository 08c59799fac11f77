"""One plotting style for the package, and the plots the CLI draws.

The palette is Okabe-Ito (colour-blind safe).  Depth is told by colour, objective by
line style (JEPA solid, MAE dashed), so every figure reads the same way.  Times
are gradient-flow time (``docs/theory.md``).  Figures use matplotlib's
object API with the Agg backend; nothing here touches global pyplot state.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["PALETTE", "OBJECTIVE_STYLE", "OBJECTIVE_LABEL", "TIME_LABEL", "FEATURE_COLOURS", "depth_colour",
           "shade", "style", "new_figure", "save_figure", "sweep_figure", "trajectory_figure", "problem_styles"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OBJECTIVE_STYLE = {"jepa": {"linestyle": "-", "marker": "o"}, "mae": {"linestyle": "--", "marker": "s"}}
OBJECTIVE_LABEL = {"jepa": "JEPA", "mae": "MAE"}
TIME_LABEL = "gradient-flow time $t$"
# Two features contrasted within one depth (figures where colour cannot mean depth): sky blue for
# the high-rho / low-lam feature, reddish purple for the high-lam / low-rho one.
FEATURE_COLOURS = {"rho": "#56B4E9", "lam": "#CC79A7"}
# Sizes readable when a two-panel figure is shown at README width (~900 px).
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 8.5,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "lines.linewidth": 1.6, "savefig.facecolor": "white"}


def depth_colour(depth: int, depths=None) -> str:
    """Colour of a depth: position in ``depths`` if given, else ``depth - 1``."""
    i = list(depths).index(depth) if depths is not None else int(depth) - 1
    return PALETTE[i % len(PALETTE)]


def shade(colour: str, amount: float) -> tuple:
    """``colour`` blended with white: ``amount = 1`` is the colour itself, ``0`` is white."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(colour))
    return tuple(1.0 - amount * (1.0 - rgb))


def style():
    """A context manager with the package's figure sizes (``with style(): fig = ...``)."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.3, **kwargs):
    """A figure and axes (always a 2-D array) in the package style, without pyplot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def save_figure(fig, path: str, *, dpi: int = 150) -> None:
    """Save via a temporary file and ``os.replace`` (PNG, PDF or SVG by extension)."""
    root, ext = os.path.splitext(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # spec.check_writable creates nothing
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    # finite data near float64's limits (times of 1e300) overflow inside matplotlib's log-axis
    # transforms while it draws; that is no fault of the data, so no warning reaches the user
    with np.errstate(over="ignore", under="ignore"):
        fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)


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
        for obj in ("jepa", "mae"):
            for d in depths:
                m = base & (table["objective"] == obj) & (table["depth"] == d) & (table[fixed_name] == fixed)
                if not m.any():
                    continue
                order = np.argsort(table[xname][m])
                ax.plot(table[xname][m][order], table["critical_time"][m][order], color=depth_colour(d, depths),
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
    objectives = [o for o in ("jepa", "mae") if np.any(params["objective"] == o)]
    depths = sorted(np.unique(params["depth"]).astype(int).tolist())
    styles = problem_styles(params["lam"], params["rho"])
    fig, axes = new_figure(1, len(objectives), sharey=True)
    for ax, obj in zip(axes[0], objectives):
        for i in np.flatnonzero(params["objective"] == obj):
            d = int(params["depth"][i])
            y = w[i] / params["fixed_point"][i] if normalise else w[i]
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
