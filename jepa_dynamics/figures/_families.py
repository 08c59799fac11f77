"""JEPA, MAE, Barlow Twins and VICReg side by side on the same diagonal data (figure group ``families``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from .._style import FEATURE_COLOURS, OBJECTIVE_LABEL
from ._common import _legend_handles

_LINE = {"lam": (r"$\lambda$", FEATURE_COLOURS["lam"], "o"),
         "rho": (r"$\rho$", FEATURE_COLOURS["rho"], "s"),
         "governing": ("governing quantity", "0.25", "^")}
_FAMILY_COLOUR = {"jepa": "#0072B2", "mae": "#D55E00", "barlow": "#009E73", "vicreg": "#E69F00"}
_GOVERNING = {"jepa": r"closed-form $t^*$ (§4)", "mae": r"closed-form $t^*$ (§4)",
              "barlow": r"$g = 2\lambda$ (§16)", "vicreg": r"$g = 4\lambda$ (§16, default weights)"}


def families(fast: bool = False, results=None):
    """The order in which each family learns features (docs/theory.md section 17;
    :func:`jepa_dynamics.experiments.families.study`): (a-d) per family, the median over data sets of
    Spearman's correlation of how early a feature is learned with ``lam``, ``rho`` and the governing
    quantity, against depth (theory), each panel stating how closely trained networks follow it; (e) the fixed
    points: Spearman of ``w_star`` with ``lam`` and ``rho``; (f) the spread of ``w_star`` against depth."""
    from ..experiments import families as study_mod

    res = study_mod.study(fast=fast) if results is None else results
    depths = np.array(study_mod.DEPTHS)
    chance = study_mod.data_correlation(res)  # the data's own lam-rho rank correlation: a lam order's rho score
    with plots.style():
        fig, axes = plots.new_figure(2, 3, width=3.9, height=3.2)
        panels = list(axes[0]) + [axes[1, 0]]
        for letter, ax, family in zip("abcd", panels, study_mod.FAMILIES):
            th = [study_mod.summary(res, family, d) for d in depths]
            tr = [study_mod.summary(res, family, d, "trained") for d in depths]
            for key, (label, colour, marker) in _LINE.items():
                ax.plot(depths, [s[key] for s in th], marker=marker, color=colour, lw=2, ms=6, label=label,
                        ls="-" if key != "governing" else ":")
            ax.axhline(chance, color=FEATURE_COLOURS["rho"], lw=1, ls="--", alpha=0.7)
            ax.axhline(0, color="0.7", lw=0.7)
            ax.set_ylim(-0.45, 1.12)
            ax.set_xticks(depths)
            ax.set_xlabel("depth L")
            ax.set_title(f"({letter}) {OBJECTIVE_LABEL[family]}", color=_FAMILY_COLOUR[family], fontweight="bold")
            agree = min(s["theory"] for s in tr)
            err = max(s["err"] for s in tr)
            ax.text(0.03, 0.04, f"governing: {_GOVERNING[family]}\ntrained ({res['trained_sets']} set"
                                f"{'s' if res['trained_sets'] > 1 else ''}, L = 1-4): Spearman vs theory {agree:.2f},"
                                f"\nmax $|t^*_{{net}}/t^*-1|$ = {err:.1e}", transform=ax.transAxes, fontsize=7.3,
                    color="0.2", va="bottom")
        axes[0, 0].set_ylabel("Spearman(how early, x)\n(+1: larger x learned first)")
        axes[1, 0].set_ylabel("Spearman(how early, x)")
        axes[0, 0].legend(handles=_legend_handles(
            [(label, dict(color=c, marker=m, lw=2, ls="-" if k != "governing" else ":"))
             for k, (label, c, m) in _LINE.items()]
            + [(rf"data's own Spearman($\lambda$, $\rho$) = {chance:.2f}",
                dict(color=FEATURE_COLOURS["rho"], ls="--", lw=1))]),
            frameon=False, fontsize=7.5, loc="center left", bbox_to_anchor=(0.0, 0.55))
        ax = axes[1, 1]
        width = 0.38
        xs = np.arange(len(study_mod.FAMILIES))
        for shift, key in ((-width / 2, "lam"), (width / 2, "rho")):
            vals = [study_mod.fixed_point_correlations(res, f, 1)[key] for f in study_mod.FAMILIES]
            ax.bar(xs + shift, vals, width, color=_LINE[key][1], label=rf"with {_LINE[key][0]}")
        ax.axhline(0, color="0.5", lw=0.7)
        ax.set_xticks(xs)
        ax.set_xticklabels([OBJECTIVE_LABEL[f] for f in study_mod.FAMILIES], fontsize=8)
        ax.set_ylim(-1.1, 1.1)
        ax.set_ylabel(r"Spearman($w_\star$, x)")
        ax.set_title(r"(e) fixed points: what sets $w_\star$ (any L)")
        ax.legend(frameon=False, fontsize=8, loc="lower left")
        ax = axes[1, 2]
        for family in study_mod.FAMILIES:
            ax.plot(depths, [study_mod.fixed_point_correlations(res, family, d)["spread"] for d in depths],
                    marker="o", color=_FAMILY_COLOUR[family], lw=2, label=OBJECTIVE_LABEL[family])
        ax.set_xticks(depths)
        ax.set_xlabel("depth L")
        ax.set_ylabel(r"median $\log_{10}(\max w_\star / \min w_\star)$")
        ax.set_title(r"(f) fixed points: spread of $w_\star$ (all survive)")
        ax.legend(frameon=False, fontsize=8)
        fig.suptitle(f"Four families on the same data ({res['sets']} random diagonal sets of {res['dim']} features, "
                     rf"$\lambda$ and $\rho$ independent, $\varepsilon$ = {res['eps']:g}; lines: theory, median over "
                     "sets)\nonly JEPA's learning order moves toward $\\rho$ with depth; MAE, Barlow Twins and VICReg "
                     r"stay in the order of $\lambda$", fontsize=10)
    return fig
