"""Static and dynamic generative data: which features come first (figure group ``generative_models``)."""

from __future__ import annotations

import numpy as np

from ..training import data
from .. import _style as plots
from ..theory import balanced as theory
from ..training.analysis import order_correlation
from .._style import OBJECTIVE_STYLE, depth_colour
from ._common import OBJECTIVES, _ls, _train, _legend_handles, _depth_handles, _objective_handles


# --- 5. generative models ---------------------------------------------------------------------------------

def _generative_datasets(n):
    s = np.linspace(1.0, 0.5, n)
    m = np.linspace(0.1, 3.0, n)
    static = data.static(s, m, 0.3)
    a = np.linspace(0.95, 0.3, n)
    lam = np.linspace(0.9, 1.1, n)
    dynamic = data.dynamic(a, lam / a)
    return {"static": (static, m / (s + m), "noise share $m/(s+m)$ of the feature's variance"),
            "dynamic": (dynamic, a, r"AR(1) coefficient $a$ (slow features: large $a$)")}


def generative_models(fast: bool = False):
    r"""``static`` data (``x = z + n_x``, ``y = z + n_y``; signal ``s`` from 1 to 0.5, noise
    ``m`` from 0.1 to 3, noise correlation 0.3: the noisier features have the larger
    variance and ``lam``, and the smaller ``rho``) and ``dynamic`` data (AR(1), ``a`` from
    0.95 to 0.3 with ``lam = a v`` from 0.9 to 1.1: fast features have the larger variance).

    Top: ``lam`` and ``rho`` per feature.  Bottom: each feature's critical time relative
    to the first-learned one, exact theory (lines) for depths 1, 2, 3, and deep linear
    networks trained on minibatches sampled from the generative model (markers, depth 3;
    same-covariance Gaussian sampler).  ``eps = 0.0064``."""
    n = 6 if fast else 12
    depths, eps, trained_depth = (1, 2, 3), 0.0064, 3
    fams = _generative_datasets(n)
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=4.8, height=3.0, sharex="col",
                                     gridspec_kw={"height_ratios": (1, 1.8)})
        for c, (fam, (ds, xv, xlabel)) in enumerate(fams.items()):
            ax = axes[0, c]
            ax.plot(xv, ds.lam, "-", color="0.2", marker=".", label=r"$\lambda$ = E[$x_i y_i$]")
            ax.plot(xv, ds.rho, "-", color="0.6", marker=".", label=r"$\rho = \lambda/\sigma^2$")
            ax.plot(xv, ds.sigma2, ":", color="0.4", label=r"$\sigma^2$ = Var $x_i$")
            ax.set_title(f"{fam} data: per-feature moments")
            ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center")
            ax.set_ylim(0, max(ds.sigma2.max(), ds.lam.max()) * 1.35)
            ax = axes[1, c]
            orders = {}
            for obj in OBJECTIVES:
                for d in depths:
                    t = theory.critical_time(obj, d, ds.lam, ds.rho, eps)
                    ax.plot(xv, t / t.min(), color=depth_colour(d, depths), ls=_ls(obj))
                    orders[obj, d] = order_correlation(t, ds.rho)
                t = theory.critical_time(obj, trained_depth, ds.lam, ds.rho, eps)
                res = _train(obj, trained_depth, ds.lam, ds.rho, eps, 1.3 * t.max(),
                             lr=0.02, max_steps=15_000 if fast else 120_000, records=300 if fast else 800,
                             loss="population" if fast else "sampled", batch=64)
                ax.plot(xv, res.critical_times() / t.min(), OBJECTIVE_STYLE[obj]["marker"], mfc="none",
                        mec=depth_colour(trained_depth, depths), ms=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(r"$t^*_i\,/\,\min_j t^*_j$  (1 = learned first)")
            text = "order vs $\\rho$ (+1: high $\\rho$ first):\n" + "\n".join(
                f"L={d}: JEPA {orders['jepa', d]:+.2f}, MAE {orders['mae', d]:+.2f}" for d in depths)
            ax.text(0.02 if c == 0 else 0.98, 0.97, text, transform=ax.transAxes, va="top",
                    ha="left" if c == 0 else "right", fontsize=8,
                    bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
        fig.legend(handles=_depth_handles(depths) + _objective_handles() + _legend_handles(
            [(f"trained network, L = {trained_depth}: JEPA", dict(color=depth_colour(trained_depth, depths),
                                                                 marker="o", mfc="none", ls="none")),
             ("MAE", dict(color=depth_colour(trained_depth, depths), marker="s", mfc="none", ls="none"))]),
            loc="outside lower center", frameon=False, ncols=7)
        fig.suptitle(r"Generative models: MAE learns the noisy / fast, high-variance features first;" "\n"
                     r"deep JEPA the clean / slow, high-$\rho$ ones" + f" ($\\epsilon$ = {eps:g})", fontsize=11)
    return fig
