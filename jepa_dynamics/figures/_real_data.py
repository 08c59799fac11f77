"""Real data: observed against predicted orders of the digits' modes, and probes (figure group ``real_data``)."""

from __future__ import annotations

import numpy as np

from .. import _style as plots
from .._style import OBJECTIVE_LABEL, OBJECTIVE_STYLE, depth_colour
from ._common import OBJECTIVES, _ls, _plain_ticks, _legend_handles, _depth_handles, _objective_handles, _nonorth


# --- real data -------------------------------------------------------------------------------------------

SUBSPACE_COLOURS = {"all": "0.2", "top": "#0072B2", "bottom": "#D55E00"}


def real_data_runs(views, depths, *, eps=0.01, modes=6, records=200, probe_depth=None, probe_count=10,
                   probe_noise=None, matrix=False):
    """Covariances, modes, trained runs and (for labelled digits) probe curves on ``views``:
    ``(cov, modes, runs, probe)`` with ``runs[(depth, objective)]`` and ``probe`` ``None`` or
    ``(baseline, curves)`` at ``probe_depth`` (default the deepest), read through noise
    ``probe_noise`` (default ``5 eps``) times the data's RMS."""
    from ..realdata import probes, realtrain
    from ..realdata import spectrum as spectrum_mod
    from ..realdata import views as views_mod

    cov, m = spectrum_mod.compute(views)
    configs = realtrain.plan_all(m, depths, OBJECTIVES, eps=eps, modes=modes, records=records, matrix=matrix)
    x, y = views.arrays()
    x, y = x - cov.mean_x, y - cov.mean_y
    runs = {key: realtrain.train_views(cfg, m, x, y, syy=cov.syy) for key, cfg in configs.items()}
    probe = None
    if views.labels is not None and views.params.get("dataset") == "digits":
        images, labels = views_mod.digits_images()
        images = images - images.mean(0)
        sxx_clean = images.T @ images / len(images)
        data_ = probes.split(images, labels)
        depth = max(depths) if probe_depth is None else probe_depth
        chosen = {k: r for k, r in runs.items() if k[0] == depth}
        probe = (probes.subspace_baseline(data_, sxx_clean),
                 realtrain.run_probes(chosen, data_, sxx_clean, count=probe_count,
                                      noise=5 * eps if probe_noise is None else probe_noise))
    return cov, m, runs, probe


def real_data(fast: bool = False):
    r"""What JEPA and MAE learn first on real views (docs/theory.md sections 10-11).

    Data: two augmentations of scikit-learn's digits (:func:`jepa_dynamics.realdata.views.digits`:
    1-pixel shifts and pixel noise 0.1; ``n = 17970`` pairs, ``2000`` in fast mode).  Deep linear
    JEPA and MAE (full ``64 x 64`` matrices, balanced init ``eps = 0.01`` (fast: 0.05), minibatch
    gradient descent, :mod:`jepa_dynamics.realdata.realtrain`) at depths 1-4 (fast: 1-2), compared on the
    modes predicted first (6; fast: 3).  Left: each mode's observed critical time (its response along
    ``q_i`` reaching half the per-feature ``w_star``) against the per-feature theory's.  Middle:
    Spearman's correlation of observed and predicted orders, for the theory's response
    ``gamma_i`` and for its part along ``q_i``.  Right: logistic probes on the labels over
    training at the deepest depth, on the encoder fed all pixels, only the top-variance principal
    subspace (90% of the variance) or only the bottom one, read through noise ``5 eps`` times the
    data's RMS; dotted: the same probes on the raw inputs (Balestriero & LeCun's protocol)."""
    from ..realdata import views as views_mod

    depths = (1, 2) if fast else (1, 2, 3, 4)
    v = views_mod.digits(n=2000 if fast else None)
    cov, m, runs, probe = real_data_runs(v, depths, eps=0.05 if fast else 0.01, modes=3 if fast else 6,
                                         records=50 if fast else 200, probe_count=5 if fast else 10, matrix=not fast)
    with plots.style():
        fig, axes = plots.new_figure(1, 3, width=3.9, height=3.6)
        ax = axes[0, 0]
        lo, hi = np.inf, 0.0
        for (depth, obj), run in sorted(runs.items()):
            sc = run.scope
            t_p, t_o = run.t_pred[sc], run.t_obs_diagonal[sc]
            ok = np.isfinite(t_o)
            ax.plot(t_p[ok], t_o[ok], ls="none", marker=OBJECTIVE_STYLE[obj]["marker"], ms=4.5, mfc="none",
                    color=depth_colour(depth, depths))
            if run.t_matrix_diagonal is not None:
                t_m = run.t_matrix_diagonal[sc]
                okm = np.isfinite(t_m)
                ax.plot(t_p[okm], t_m[okm], ls="none", marker=".", ms=3, color="k")
            if ok.any():
                lo, hi = min(lo, t_p[ok].min(), t_o[ok].min()), max(hi, t_p[ok].max(), t_o[ok].max())
        if np.isfinite(lo):
            ax.plot([lo / 2, hi * 2], [lo / 2, hi * 2], color="0.5", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"predicted $t^*_i$ (per-feature theory of mode $i$)")
        ax.set_ylabel(r"observed $t^*_i$ (trained, response along $q_i$)")
        ax.set_title("critical time of each mode", fontsize=9.5)
        extra = [("exact matrix flow", dict(color="k", ls="none", marker="."))] if not fast else []
        ax.legend(handles=_depth_handles(depths) + _legend_handles(
            [(OBJECTIVE_LABEL[o], dict(color="0.3", ls="none", marker=OBJECTIVE_STYLE[o]["marker"], mfc="none"))
             for o in OBJECTIVES] + extra), frameon=False, fontsize=7)
        ax = axes[0, 1]
        for obj in OBJECTIVES:
            ds = [d for d in depths if (d, obj) in runs]
            ax.plot(ds, [runs[(d, obj)].spearman_diagonal for d in ds], color="0.2", ls=_ls(obj),
                    marker=OBJECTIVE_STYLE[obj]["marker"], label=f"{OBJECTIVE_LABEL[obj]}, response along $q_i$")
            ax.plot(ds, [runs[(d, obj)].spearman for d in ds], color="0.6", ls=_ls(obj),
                    marker=OBJECTIVE_STYLE[obj]["marker"], mfc="none",
                    label=rf"{OBJECTIVE_LABEL[obj]}, $\gamma_i$ (spec 11)")
        ax.axhline(0, color="0.5", lw=0.8, ls=":")
        ax.set_ylim(-1.05, 1.05)
        ax.set_xticks(depths)
        ax.set_xlabel("depth $L$")
        ax.set_ylabel("Spearman: observed vs predicted order")
        ax.set_title(f"order of the {runs[(depths[0], 'jepa')].scope.size} modes predicted first", fontsize=9.5)
        ax.legend(frameon=False, fontsize=6.5, loc="lower left")
        ax = axes[0, 2]
        if probe is not None:
            baseline, curves = probe
            for (depth, obj), (idx, acc) in sorted(curves.items()):
                run = runs[(depth, obj)]
                t_first = float(np.min(run.t_pred[run.scope]))
                t = run.times[idx][1:] / t_first
                for sub, colour in SUBSPACE_COLOURS.items():
                    ax.plot(t, acc[sub][1:], color=colour, ls=_ls(obj), marker=OBJECTIVE_STYLE[obj]["marker"], ms=3)
            for sub, colour in SUBSPACE_COLOURS.items():
                ax.axhline(baseline[sub], color=colour, lw=0.8, ls=":")
            ax.set_xscale("log")
            _plain_ticks(ax, "x")
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(r"$t\,/\,t^*_{\rm first}$ (predicted first critical time)")
            ax.set_ylabel("probe accuracy on the digit (held out)")
            ax.set_title(f"logistic probes, L = {max(depths)}", fontsize=9.5)
            ax.legend(handles=_objective_handles() + _legend_handles(
                [(f"input: {sub}", dict(color=c, lw=2)) for sub, c in SUBSPACE_COLOURS.items()]),
                frameon=False, fontsize=6.5, loc="center right")
        fig.suptitle(f"Digits, two augmented views (n = {cov.n}, d = {cov.dim}; modes not orthogonal: "
                     rf"$\|Q^TQ-I\|_F$ = {_nonorth(m):.2g}): deep linear JEPA vs MAE trained on the pairs",
                     fontsize=10)
    return fig
