"""Two features learned in opposite orders by MAE and deep JEPA (figure group ``order_inversion``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from ..theory import balanced as theory
from .._style import FEATURE_COLOURS, OBJECTIVE_LABEL, OBJECTIVE_STYLE, TIME_LABEL
from ._common import OBJECTIVES, _ls, _train, _plain_ticks, _legend_handles


# --- 3. order inversion -----------------------------------------------------------------------------------

def order_inversion(fast: bool = False):
    r"""Feature A (``lam = 1.25, rho = 0.4``) against feature B (``lam = 1, rho = 0.9``).

    Left, middle: ``w/w*`` of both features for MAE and JEPA at depth 5 (lines: exact
    theory; markers: trained deep linear networks, population loss, gradient descent).
    Right: ``t*_A / t*_B`` against depth (lines: exact; markers: trained).  Above 1 means
    B (high ``rho``) is learned first.  ``eps = 1e-3``."""
    feat = {"A": (1.25, 0.4), "B": (1.0, 0.9)}
    lam, rho = np.array([feat["A"][0], feat["B"][0]]), np.array([feat["A"][1], feat["B"][1]])
    eps, show = 3e-3, 4
    depths = np.arange(1, 6)
    trained_depths = (show,) if fast else tuple(depths)
    runs = {}
    for obj in OBJECTIVES:
        for d in trained_depths:
            t_end = 2.5 * theory.critical_time(obj, d, lam, rho, eps).max()
            runs[obj, d] = _train(obj, d, lam, rho, eps, t_end, lr=0.05 if obj == "jepa" else 0.005,
                                  loss="population", records=300 if fast else 1200)
    colours = (FEATURE_COLOURS["lam"], FEATURE_COLOURS["rho"])
    names = [rf"A: $\lambda$={feat['A'][0]:g}, $\rho$={feat['A'][1]:g}",
             rf"B: $\lambda$={feat['B'][0]:g}, $\rho$={feat['B'][1]:g}"]
    with plots.style():
        fig, axes = plots.new_figure(1, 3, width=3.7, height=3.4)
        for ax, obj in zip(axes[0, :2], ("mae", "jepa")):
            res = runs[obj, show]
            w_star = theory.fixed_point(obj, show, rho)
            t_star = theory.critical_time(obj, show, lam, rho, eps)
            ts = np.geomspace(0.4 * t_star.min(), res.times[-1], 400)
            w = theory.trajectory(obj, show, lam, rho, eps, ts)
            keep = res.times > ts[0]
            idx = np.flatnonzero(keep)[:: max(1, keep.sum() // 40)]
            for k in range(2):
                ax.plot(ts, w[k] / w_star[k], color=colours[k], ls=_ls(obj), label=names[k])
                ax.plot(res.times[idx], res.responses[idx, k] / w_star[k], "o", color=colours[k], ms=4, alpha=0.8)
                ax.axvline(t_star[k], color=colours[k], lw=0.8, ls=":")
            first = "A" if t_star[0] < t_star[1] else "B"
            ax.set_xscale("log")
            _plain_ticks(ax, "x")
            ax.set_xlabel(TIME_LABEL)
            ax.set_ylabel(r"response $w(t)\,/\,w^*$")
            ax.set_title(f"{OBJECTIVE_LABEL[obj]}, L = {show}: {first} first "
                         f"($t^*_A/t^*_B$ = {t_star[0] / t_star[1]:.2f})")
        axes[0, 0].legend(handles=axes[0, 0].get_legend_handles_labels()[0][:2] + _legend_handles(
            [("trained network", dict(color="0.3", marker="o", ls="none", ms=4))]), loc="center right", frameon=False)
        ax = axes[0, 2]
        ax.axhline(1.0, color="0.5", lw=0.8)
        for obj in OBJECTIVES:
            ratio = [float(np.divide(*theory.critical_time(obj, d, lam, rho, eps))) for d in depths]
            ax.plot(depths, ratio, color="0.2", ls=_ls(obj), label=f"{OBJECTIVE_LABEL[obj]} (exact)")
            emp = [np.divide(*runs[obj, d].critical_times()) for d in trained_depths]
            ax.plot(trained_depths, emp, OBJECTIVE_STYLE[obj]["marker"], mfc="none", mec="0.2", ms=8,
                    label=f"{OBJECTIVE_LABEL[obj]} (trained)")
        ax.set_xlabel("encoder depth $L$")
        ax.set_ylabel(r"$t^*_A\,/\,t^*_B$  (> 1: B, high $\rho$, first)")
        ax.set_title("order of learning against depth")
        ax.text(depths[-1], 1.03, "B first", color="0.35", fontsize=8.5, va="bottom", ha="right")
        ax.text(depths[-1], 0.97, "A first", color="0.35", fontsize=8.5, va="top", ha="right")
        ax.legend(frameon=False, loc="upper left", fontsize=8)
        fig.suptitle(rf"Order inversion ($\epsilon$ = {eps:g}): MAE learns the high-$\lambda$ feature A first at "
                     r"every depth; deep JEPA learns the high-$\rho$ feature B first", fontsize=11)
    return fig
