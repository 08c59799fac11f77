"""Which features JEPA loses from a small random init (figure group ``random_init``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from .._style import OBJECTIVE_LABEL
from ._common import OBJECTIVE_COLOUR, _legend_handles

_BINS = np.linspace(0.5, 1.0, 6)


def _binned(x, y, bins):
    k = np.clip(np.digitize(x, bins) - 1, 0, bins.size - 2)
    centre = 0.5 * (bins[1:] + bins[:-1])
    n = np.bincount(k, minlength=centre.size)
    p = np.bincount(k, weights=y, minlength=centre.size) / np.maximum(n, 1)
    return centre[n > 0], p[n > 0], n[n > 0]


def random_init(fast: bool = False, results=None, sampled=None):
    """Small random init (docs/theory.md section 10, "Random init, predicted";
    :mod:`jepa_dynamics.experiments.random_init`): (a) P(learned) of trained networks against
    ``rho_i / max_j rho_j``, by depth, JEPA against MAE; (b) JEPA's P(learned) over
    ``(rho_i / max rho, initial response relative to the other features)``, with the out-of-sample
    predictor's calls as markers; (c) agreement with the trained networks' fates, by depth: the matrix
    flow from the same init, the predictor from the init alone, and 'always learned'; (d) minibatch SGD
    against the population flow from the same init, by batch size."""
    from ..experiments import random_init as study

    res = study.study(fast=fast) if results is None else results
    rows = res["rows"]
    samp = study.sampled(fast=fast) if sampled is None else sampled
    pred = study.fit_predictor(rows)
    learned = np.asarray(rows["learned_empirical"]) == "true"
    objective = np.asarray(rows["objective"])
    depth = np.asarray(rows["depth"], np.int64)
    depths = sorted(set(depth.tolist()))
    rho_rel = np.asarray(rows["rho_rel"], np.float64)
    with plots.style():
        fig, axes = plots.new_figure(1, 4, width=3.7, height=3.4)
        ax = axes[0, 0]
        for L in depths:
            for obj in ("jepa", "mae"):
                m = (objective == obj) & (depth == L)
                if not m.any():
                    continue
                x, p, _ = _binned(rho_rel[m], learned[m].astype(float), _BINS)
                ax.plot(x, p, color=plots.depth_colour(L, depths), ls="-" if obj == "jepa" else "--", marker="o",
                        ms=3)
        ax.set_xlabel(r"$\rho_i / \max_j \rho_j$")
        ax.set_ylabel("P(feature learned), trained networks")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title("(a) what is kept, by depth", fontsize=9.5)
        ax.legend(handles=_legend_handles([(f"L={L}", dict(color=plots.depth_colour(L, depths), ls="-"))
                                           for L in depths] + [("JEPA", dict(color="0.3", ls="-")),
                                                               ("MAE", dict(color="0.3", ls="--"))]),
                  fontsize=7, frameon=False, loc="lower right")
        ax = axes[0, 1]
        m = objective == "jepa"
        r0 = np.asarray(rows["response0_rel"], np.float64)
        xb, yb = _BINS, np.linspace(np.min(r0[m]), np.max(r0[m]) + 1e-9, 7)
        kx = np.clip(np.digitize(rho_rel[m], xb) - 1, 0, xb.size - 2)
        ky = np.clip(np.digitize(r0[m], yb) - 1, 0, yb.size - 2)
        cnt = np.zeros((yb.size - 1, xb.size - 1))
        hit = np.zeros_like(cnt)
        np.add.at(cnt, (ky, kx), 1)
        np.add.at(hit, (ky, kx), learned[m])
        grid = np.where(cnt > 0, hit / np.maximum(cnt, 1), np.nan)
        mesh = ax.pcolormesh(xb, yb, grid, cmap="viridis", vmin=0, vmax=1, shading="flat")
        fig.colorbar(mesh, ax=ax, label="P(learned), JEPA", shrink=0.85)
        call = pred["jepa"]["prediction"] if "jepa" in pred else np.zeros(m.sum(), bool)
        rng = np.random.default_rng(0)
        show = rng.permutation(m.sum())[:400]
        xs, ys = rho_rel[m][show], r0[m][show]
        ax.scatter(xs[call[show]], ys[call[show]], s=6, marker="o", facecolor="w", edgecolor="k", lw=0.4,
                   label="predicted learned")
        ax.scatter(xs[~call[show]], ys[~call[show]], s=8, marker="x", color="#D55E00", lw=0.6,
                   label="predicted lost")
        ax.set_xlabel(r"$\rho_i / \max_j \rho_j$")
        ax.set_ylabel(r"$\ln(|\bar W(0) e_i| / \mathrm{mean}_j |\bar W(0) e_j|)$")
        ax.set_title("(b) JEPA: P(learned) and the predictor", fontsize=9.5)
        ax.legend(fontsize=6.5, frameon=True, loc="lower left")
        ax = axes[0, 2]
        width = 0.13
        kinds = (("flow_agreement", "matrix flow (same init)", "s"), ("accuracy", "predictor (init only)", "o"),
                 ("always_learned", "'always learned'", "x"))
        for j, obj in enumerate(("jepa", "mae")):
            if obj not in pred:
                continue
            for k, (key, label, marker) in enumerate(kinds):
                xs = np.array(depths) + (j - 0.5) * 3 * width + (k - 1) * width
                ys = [pred[obj]["by_depth"][L][key] for L in depths]
                ax.plot(xs, ys, marker, color=OBJECTIVE_COLOUR[obj], ms=5, mfc="none" if obj == "mae" else None)
        ax.set_xticks(depths)
        ax.set_xlabel("depth L")
        ax.set_ylabel("share of (network, feature) fates right")
        ax.set_ylim(0.0, 1.02)
        ax.set_title("(c) predicting the fate", fontsize=9.5)
        ax.legend(handles=_legend_handles([(label, dict(color="0.3", marker=mk, ls="")) for _, label, mk in kinds]
                                          + [(OBJECTIVE_LABEL[o], dict(color=OBJECTIVE_COLOUR[o], marker="o", ls="",
                                                                       mfc="none" if o == "mae" else None))
                                             for o in ("jepa", "mae")]),
                  fontsize=6.5, frameon=False, loc="lower left")
        ax = axes[0, 3]
        for obj in ("jepa", "mae"):
            items = [(int(k.split("=")[1]), v) for k, v in samp["rows"].items() if k.startswith(obj)]
            if not items:
                continue
            b = np.array([i[0] for i in items])
            ax.plot(b, [i[1]["t_star_error_median"] for i in items], "o-", color=OBJECTIVE_COLOUR[obj],
                    label=f"{OBJECTIVE_LABEL[obj]}: median |t*/t*_flow - 1|")
            ax.plot(b, [1 - i[1]["flag_agreement"] for i in items], "s--", color=OBJECTIVE_COLOUR[obj],
                    mfc="none", label=f"{OBJECTIVE_LABEL[obj]}: fates wrong (share)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("minibatch size")
        ax.set_title("(d) minibatch SGD vs the population flow", fontsize=9.5)
        ax.legend(fontsize=6.5, frameon=False)
    return fig
