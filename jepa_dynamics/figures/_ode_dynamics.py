"""The ODE trajectories ``w(t)/w*`` (figure group ``ode_dynamics``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from ..theory import balanced as theory
from .._style import OBJECTIVE_LABEL, depth_colour, shade
from ._common import OBJECTIVES, _ls, _plain_ticks, _depth_handles, _objective_handles


# --- 1. ODE trajectories -------------------------------------------------------------------------------

def ode_dynamics(fast: bool = False):
    """Per-feature ``w(t)/w*`` integrated by :func:`jepa_dynamics.engines.ode.trajectory`.

    Top row: ``lam`` in {0.5, 1, 2} at ``rho = 0.6``; bottom row: ``rho`` in {0.3, 0.6, 0.9}
    at ``lam = 1``; columns JEPA and MAE; depths 1, 2, 4 (colour), ``eps = 1e-3``.  Time is
    divided by the critical time of the shared reference feature ``(lam, rho) = (1, 0.6)``
    of the same objective and depth, so each depth's curves centre on 1 and their spread
    is the effect of the varied parameter.  Each panel prints ``t*`` of the last-learned
    over the first-learned feature."""
    from ..engines import ode

    depths, eps, ref = (1, 2, 4), 1e-3, (1.0, 0.6)
    rows = (("lam", (0.5, 1.0, 2.0), 0.6), ("rho", (0.3, 0.6, 0.9), 1.0))
    x = np.geomspace(0.2, 5.0, 120 if fast else 400)
    amounts = (0.35, 0.65, 1.0)
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=5.0, height=3.5, sharex=True, sharey=True)
        for r, (name, values, fixed) in enumerate(rows):
            values = np.asarray(values)
            lam = values if name == "lam" else np.full(values.size, fixed)
            rho = np.full(values.size, fixed) if name == "lam" else values
            for c, obj in enumerate(OBJECTIVES):
                ax = axes[r, c]
                ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
                ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
                ratios = []
                for d in depths:
                    t_ref = float(theory.critical_time(obj, d, *ref, eps))
                    w = ode.trajectory(obj, d, lam, rho, eps, x * t_ref)
                    w_star = theory.fixed_point(obj, d, rho)
                    t_star = theory.critical_time(obj, d, lam, rho, eps)
                    ratios.append(t_star[0] / t_star[-1])
                    for k in range(values.size):
                        ax.plot(x, w[k] / w_star[k], color=shade(depth_colour(d, depths), amounts[k]),
                                linestyle=_ls(obj))
                sym = r"\lambda" if name == "lam" else r"\rho"
                text = "\n".join(f"L={d}: {q:.2g}" for d, q in zip(depths, ratios))
                ax.text(0.03, 0.97, f"$t^*({sym}={values[0]:g})\\,/\\,t^*({sym}={values[-1]:g})$\n" + text,
                        transform=ax.transAxes, va="top", fontsize=8.5,
                        bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
                other = r"\rho" if name == "lam" else r"\lambda"
                ax.set_title(f"{OBJECTIVE_LABEL[obj]}: ${sym}$ = {', '.join(f'{v:g}' for v in values)} "
                             f"(light to dark), ${other}$ = {fixed:g}")
                ax.set_xscale("log")
                _plain_ticks(ax, "x")
                if r == 1:
                    ax.set_xlabel(r"$t\,/\,t^*_{\rm ref}$  (gradient-flow time over $t^*$ of $\lambda$=1, $\rho$=0.6)")
                if c == 0:
                    ax.set_ylabel(r"response $w(t)\,/\,w^*$")
        axes[0, 1].legend(handles=_depth_handles(depths) + _objective_handles(), loc="lower right", frameon=False)
        fig.suptitle(rf"Per-feature ODE dynamics ($\epsilon$ = {eps:g}): both objectives learn large $\lambda$ first; "
                     r"only JEPA learns large $\rho$ first, more so with depth", fontsize=11)
    return fig
