"""The full-matrix engine against the per-feature theory (figure group ``matrix_study``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from .._style import OBJECTIVE_LABEL
from ._common import OBJECTIVE_COLOUR, OBJECTIVES, _ls, _legend_handles, _objective_handles


# --- full-matrix dynamics ---------------------------------------------------------------------------------

_PREDICTOR_STYLE = {"theory": ("mode-basis theory (eps)", "o", "#0072B2"),
                    "effective": (r"mode basis, effective $\gamma_i(0)$", "^", "#009E73"),
                    "svd": (r"SVD-of-$S_{xy}$ basis", "s", "#D55E00")}
_FAMILY_MARKER = {"mixed": "o", "symmetric": "D", "lagged": "v"}


def _by_mixing(rows, family, objective, key):
    from ..experiments.matrix_study import nanmedian

    sel = [r for r in rows if r["family"] == family and r["objective"] == objective]
    mix = sorted({r["mixing"] for r in sel})
    return np.array(mix), np.array([nanmedian([r[key] for r in sel if r["mixing"] == m]) for m in mix])


def matrix_study(fast: bool = False, results=None):
    """How far the per-feature theory carries on non-commuting data (docs/theory.md section 10;
    :func:`jepa_dynamics.experiments.matrix_study.study`): (a) median relative t* error of the mode-basis
    theory against the matrix engine vs the non-orthogonality of the modes, by family; (b) the
    same vs mixing for three predictors (mixed family); (c) Spearman correlation of the learning
    orders; (d) trained networks (plain GD) against the engine and the theory; (e) small random
    init: alignment time over rise time per mode, and the error of three per-mode predictors."""
    from ..experiments import matrix_study as study_mod

    res = study_mod.study(fast=fast) if results is None else results
    rows = res["rows"]
    with plots.style():
        fig, axes = plots.new_figure(2, 3, width=3.9, height=3.3)
        ax = axes[0, 0]
        for r in rows:
            if r["mixing"] == 0:
                continue
            ax.plot(r["nonorthogonality"], max(r["err_theory"], 1e-4), _FAMILY_MARKER[r["family"]], ms=4.5,
                    color=OBJECTIVE_COLOUR[r["objective"]], alpha=0.75, mfc="none" if r["objective"] == "mae" else None)
        ax.set_yscale("log")
        ax.set_xlabel(r"non-orthogonality $\|Q^TQ - I\|_F$")
        ax.set_ylabel(r"median $|t^*_{\rm theory}/t^*_{\rm matrix} - 1|$")
        ax.set_title("(a) mode-basis theory vs departure")
        ax.legend(handles=_legend_handles([(OBJECTIVE_LABEL[o], dict(color=OBJECTIVE_COLOUR[o], marker="o", ls="",
                                                                      mfc="none" if o == "mae" else None))
                                           for o in OBJECTIVES] + [(f, dict(color="0.4", marker=mk, ls=""))
                                                                   for f, mk in _FAMILY_MARKER.items()
                                                                   if f in res["families"]]),
                  frameon=False, fontsize=7.5)
        for ax, key, title in ((axes[0, 1], "err", "(b) t* error vs mixing (mixed family)"),
                               (axes[0, 2], "order", "(c) learning order vs mixing (mixed family)")):
            for obj in OBJECTIVES:
                for p, (label, mk, colour) in _PREDICTOR_STYLE.items():
                    mix, val = _by_mixing(rows, "mixed", obj, f"{key}_{p}")
                    if key == "err":
                        val = np.maximum(val, 1e-4)
                    ax.plot(mix, val, marker=mk, color=colour, ls=_ls(obj), ms=4)
            ax.set_xlabel("mixing (0 = commuting)")
            ax.set_title(title)
        axes[0, 1].set_yscale("log")
        axes[0, 1].set_ylabel("median relative t* error (floor 1e-4)")
        axes[0, 2].set_ylabel("Spearman(predicted, engine order)")
        axes[0, 2].set_ylim(-1.05, 1.05)
        axes[0, 2].legend(handles=_objective_handles() + _legend_handles(
            [(label, dict(color=c, marker=mk, ls="")) for label, mk, c in _PREDICTOR_STYLE.values()]),
            frameon=False, fontsize=7)
        ax = axes[1, 0]
        for tr in res["trained"]:
            c = OBJECTIVE_COLOUR[tr["objective"]]
            ax.plot(tr["t_matrix"], tr["t_network"], "o", color=c, ms=5, mfc="none")
            ax.plot(tr["t_matrix"], tr["theory"], "x", color=c, ms=5)
        lims = np.array([min(np.nanmin(tr["t_matrix"]) for tr in res["trained"]),
                         max(np.nanmax(tr["t_matrix"]) for tr in res["trained"])])
        ax.plot(lims, lims, color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"matrix engine $t^*$")
        ax.set_ylabel(r"$t^*$: trained network (o), theory (x)")
        ax.set_title("(d) trained networks (GD) vs engine")
        ax.legend(handles=_legend_handles([(OBJECTIVE_LABEL[o], dict(color=OBJECTIVE_COLOUR[o], marker="o", ls=""))
                                           for o in OBJECTIVES]), frameon=False, fontsize=8)
        ax = axes[1, 1]
        for obj in OBJECTIVES:
            r = res["random"][obj]
            ax.plot(np.arange(r["t_matrix"].size), r["t_align"] / r["t_matrix"], marker="o", ls=_ls(obj),
                    color=OBJECTIVE_COLOUR[obj], label=OBJECTIVE_LABEL[obj])
        ax.set_xlabel(r"mode (decreasing $\rho$)")
        ax.set_ylabel(r"alignment time / $t^*$")
        ax.set_ylim(0, 1.1)
        ax.set_title("(e) random init: align, then rise?")
        ax.legend(frameon=False, fontsize=8)
        ax = axes[1, 2]
        styles = {"theory": ("theory from scale$^L$", "o"), "effective": (r"theory from $\gamma_i(0)$", "^"),
                  "restart": ("restart at alignment", "s")}
        for obj in OBJECTIVES:
            r = res["random"][obj]
            for p, (label, mk) in styles.items():
                ax.plot(np.arange(r["t_matrix"].size), np.abs(r[p] / r["t_matrix"] - 1), marker=mk, ls=_ls(obj),
                        color=OBJECTIVE_COLOUR[obj], ms=4, alpha=0.85)
        ax.set_yscale("log")
        ax.set_xlabel(r"mode (decreasing $\rho$)")
        ax.set_ylabel(r"$|t^*_{\rm pred}/t^*_{\rm matrix} - 1|$")
        ax.set_title("(f) random init: per-mode predictors")
        ax.legend(handles=_objective_handles() + _legend_handles([(label, dict(color="0.4", marker=mk, ls=""))
                                                                  for label, mk in styles.values()]),
                  frameon=False, fontsize=7)
        fig.suptitle(f"Full-matrix dynamics (depth 2, d = {res['dim']}): the per-feature theory in the mode basis "
                     "is exact at mixing 0 and drifts as the data stop commuting;\nMAE follows the SVD of "
                     r"$S_{xy}$ instead, JEPA has no better basis we found", fontsize=10)
    return fig
