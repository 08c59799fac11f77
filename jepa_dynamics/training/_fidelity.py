"""``train-grid``'s ``fidelity.png``: trained critical times against the two theories.

The main comparison is the **gradient-flow** theory (``t_star_theory``, what a researcher asks
about: errors of order the learning rate); the exact gradient-descent map at the run's ``lr``
(``t_star_gd``, docs/theory.md section 9; errors at rounding) is the second, where it applies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fidelity_figure", "FLOW_LABEL", "GD_LABEL"]

FLOW_LABEL = "gradient-flow theory (t_star_theory)"
GD_LABEL = "exact GD map at the run's lr (t_star_gd)"
_FLOOR = 1e-17


def _relative_error(emp, ref):
    ok = np.isfinite(emp) & np.isfinite(ref) & (ref > 0)
    return ok, np.where(ok, np.abs(emp / np.where(ok, ref, 1.0) - 1), np.nan)


def fidelity_figure(table: dict):
    """Left: trained critical time against the gradient-flow theory's, one marker per (network,
    feature), colour the setting (objective, depth).  Right: the relative error per setting against
    the gradient-flow theory (filled circles) and against the exact GD map (open diamonds, where
    it applies); one legend names both.  The title says how often ``learned`` agrees."""
    from .._style import OBJECTIVE_LABEL, PALETTE, new_figure, style
    from matplotlib.lines import Line2D

    emp = np.asarray(table["t_star_empirical"], np.float64)
    flow = np.asarray(table["t_star_theory"], np.float64)
    gd = np.asarray(table["t_star_gd"], np.float64)
    ok_flow, err_flow = _relative_error(emp, flow)
    ok_gd, err_gd = _relative_error(emp, gd)
    labels = np.array([f"{OBJECTIVE_LABEL[o]} L={int(L)}" for o, L in zip(table["objective"], table["depth"])])
    settings = sorted(set(labels.tolist()))
    colour = {s: PALETTE[j % len(PALETTE)] for j, s in enumerate(settings)}
    with style():
        fig, axes = new_figure(1, 2, width=4.6, height=3.8)
        ax = axes[0, 0]
        for s in settings:
            m = ok_flow & (labels == s)
            ax.loglog(flow[m], emp[m], "o", ms=3.5, alpha=0.7, color=colour[s], label=s)
        if ok_flow.any():
            lo, hi = np.min(flow[ok_flow]), np.max(flow[ok_flow])
            ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8, label="trained = theory")
            ax.legend(fontsize=7.5, frameon=False)
        ax.set_xlabel("gradient-flow theory's critical time $t^*$")
        ax.set_ylabel("trained critical time $t^*$")
        ax.set_title("trained against the gradient-flow theory", fontsize=9)
        ax = axes[0, 1]
        for j, s in enumerate(settings):
            for ok, err, shift, kw in ((ok_flow, err_flow, -0.15, dict(marker="o", color=colour[s])),
                                       (ok_gd, err_gd, 0.15, dict(marker="D", mfc="none", mec=colour[s]))):
                m = ok & (labels == s)
                x = j + shift + np.linspace(-0.1, 0.1, int(m.sum()))
                ax.semilogy(x, np.maximum(err[m], _FLOOR), linestyle="", ms=4, alpha=0.75, **kw)
        ax.set_xticks(range(len(settings)), settings, fontsize=8)
        ax.set_ylabel(f"relative error |trained $t^*$ / theory $t^*$ - 1|\n(floored at {_FLOOR:g})")
        learned_t, learned_e = table["learned_theory"], table["learned_empirical"]
        agree = np.mean(np.asarray(learned_t) == np.asarray(learned_e)) if len(learned_t) else np.nan
        ax.set_title(f"learned: theory = trained in {100 * agree:.1f}% of {len(learned_t)} rows", fontsize=9)
        handles = [Line2D([], [], marker="o", color="0.3", linestyle="", label=f"{FLOW_LABEL}: "
                          f"{int(ok_flow.sum())} rows, median {np.nanmedian(err_flow) if ok_flow.any() else np.nan:.2g}"),
                   Line2D([], [], marker="D", mfc="none", mec="0.3", linestyle="", label=f"{GD_LABEL}: "
                          f"{int(ok_gd.sum())} rows, median {np.nanmedian(err_gd) if ok_gd.any() else np.nan:.2g}")]
        fig.legend(handles=handles, title="relative error against", loc="outside lower center", ncols=2, frameon=False)
    return fig
