"""The summary of a training run against the theory: ``summary.csv`` and ``plot.png``.

:func:`theory_columns` are the theory of the run's own init, EMA and weight decay per feature
(:func:`jepa_dynamics.training.train.prediction`: gradient flow, and the exact gradient-descent
map where it describes the run); :func:`learned_empirical` says which features the network
learned; :func:`write_summary` writes them with the empirical critical times
(:data:`SUMMARY_COLUMNS`, notes :data:`SUMMARY_NOTES`); :func:`response_figure` draws the
recorded responses over the theory.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _flow, data
from .. import records
from ..theory import joint, spec, balanced as theory
from ._config import TIME_NOTE, TrainConfig
from .train import TrainResult, crossing_level, prediction

SUMMARY_COLUMNS = ("feature", "lam", "rho", "w_inf", "t_star_theory", "t_star_empirical",
                   "final_response", "t_star_gd", "learned_theory", "learned_empirical", "theory",
                   "final_response_theory", "fell_back_theory", "fell_back_empirical")
THEORIES = ("closed_form", "aligned", "matrix_flow")


def theory_of(config: TrainConfig) -> str:
    """Where a run's ``learned_theory`` and ``t_star_theory`` come from: ``closed_form`` (the paper's
    setting, :attr:`TrainConfig.balanced_theory`), ``matrix_flow`` (a random init of a deep linear
    network: the exact matrix flow from its own init, :mod:`jepa_dynamics.training._flow`) or
    ``aligned`` (the per-feature theory of any aligned init, EMA and weight decay).  MLPs get their
    depth's deep linear theory, a reference."""
    if _flow.uses_matrix_flow(config):
        return "matrix_flow"
    return "closed_form" if config.balanced_theory else "aligned"


@functools.lru_cache(maxsize=4)
def _matrix_flow(config: TrainConfig) -> "_flow.FlowPrediction":
    ds = config.dataset()
    level = crossing_level(config, prediction(config, ds, times=False))
    return _flow.matrix_flow(config, ds, level)


def theory_columns(config: TrainConfig, dataset: data.Dataset, gd: bool = True) -> dict:
    """The summary's theory columns per feature (:func:`prediction`): ``w_inf`` = the
    run's gradient-flow limit (balanced: ``w_star``), ``t_star_theory``
    (gradient flow), ``t_star_gd`` (the exact GD map at the run's ``lr``, where it
    applies: :attr:`TrainConfig.exact_map`, followed for the run's ``steps``; else, or beyond
    them, ``nan``) and ``learned_theory``."""
    t_gd = (prediction(config, dataset, lr=config.lr, max_steps=config.steps).critical_time if gd and config.exact_map
            else np.full(dataset.dim, np.nan))
    if theory_of(config) == "matrix_flow":
        flow = _matrix_flow(config)
        return {"w_inf": flow.final_response, "t_star_theory": flow.t_star, "t_star_gd": t_gd,
                "learned_theory": flow.learned, "theory": "matrix_flow", "final_response_theory": flow.final_response,
                "fell_back_theory": flow.fell_back}
    gf = prediction(config, dataset)
    return {"w_inf": gf.w_inf, "t_star_theory": gf.critical_time, "t_star_gd": t_gd,
            "learned_theory": gf.learned, "theory": theory_of(config), "final_response_theory": gf.w_inf,
            "fell_back_theory": np.zeros(dataset.dim, bool)}


def learned_empirical(first_response, final_response) -> np.ndarray:
    """A feature counts as learned by the network when its response ends above where it
    started (section 10: a collapsing feature decays towards 0, a learned one rises past
    ``fraction * |w_inf| > eps``; a feature that first shrinks, ``V0 < 0``, needs a run past
    its critical time)."""
    return np.asarray(final_response, np.float64) > np.asarray(first_response, np.float64)


SUMMARY_NOTES = {
    "w_inf": "the gradient-flow limit of w for the run's own init, EMA and weight decay (docs/theory.md "
                   "section 9; balanced runs: w_star of the deep linear theory; for mlp: a reference only)",
    "t_star_theory": "first gradient-flow time with |w| >= fraction * |w_inf| for the run's own init, "
                     "EMA (rate kappa = --ema-rate) and weight decay (inf: not learned)",
    "t_star_gd": "the exact gradient-descent map's prediction at the run's lr: lr x the step count interpolated "
                 "as t_star_empirical is (nan: the map does not describe this run -- random init, "
                        "sampled loss, adam or mlp -- or it crosses after the run's last step)",
    "learned_theory": "w_inf != 0 (docs/theory.md section 9)",
    "learned_empirical": "the final response exceeds the initial one (collapsing features decay towards 0); "
                         "random init: the final response is at or above the crossing level (the settled state)",
    "theory": "where learned_theory and t_star_theory come from: closed_form (balanced init, docs/theory.md "
              "sections 2-4), aligned (section 9) or matrix_flow (random init: the exact matrix flow from the "
              "network's own init, section 10, 'Random init, predicted')",
    "final_response_theory": "the theory's settled response: w_inf (closed_form, aligned), or the matrix flow's "
                             "response at rest or at its horizon (matrix_flow)",
    "fell_back_theory": "the theory's response crossed the level and ended below it (matrix_flow only)",
    "fell_back_empirical": "the network's response crossed the level and ended below it",
}


def write_summary(result: TrainResult, path: str, command: str) -> None:
    cfg, ds = result.config, result.dataset
    cols = theory_columns(cfg, ds)
    t_emp = result.critical_times()
    notes = {
        **SUMMARY_NOTES,
        "t_star_empirical": ("first crossing of fraction * |w_inf|, linearly interpolated in time "
                                    + ("between the training steps around it (tracked at every step)"
                                       if cfg.model == "linear" else "between the recorded responses around it")
                                    + "; nan = not reached within the run, or not learned in theory"),
        "time": TIME_NOTE,
        "matmul_precision": f"{cfg.matmul_precision} (float32 matrix products; float64 runs are unaffected)",
    }
    header = records.provenance_lines(command, notes)
    final = result.responses[-1]
    level = crossing_level(cfg, prediction(cfg, ds, times=False))
    learned_emp = learned_empirical(result.responses[0], final)
    if cols["theory"] == "matrix_flow":
        learned_emp = final >= level  # the settled state, as the flow's learned_theory
    fell_back_emp = np.isfinite(t_emp) & (final < level)
    records.write_csv_atomic(path, header, SUMMARY_COLUMNS,
                             [np.arange(ds.dim), ds.lam, ds.rho, cols["w_inf"], cols["t_star_theory"],
                              t_emp, final, cols["t_star_gd"],
                              np.asarray(cols["learned_theory"], bool), np.asarray(learned_emp, bool),
                              np.full(ds.dim, cols["theory"], dtype=object), cols["final_response_theory"],
                              np.asarray(cols["fell_back_theory"], bool), np.asarray(fell_back_emp, bool)])


def response_scale(result: TrainResult, cols: dict) -> tuple:
    """Per feature, the scale :func:`response_figure` divides the responses by, and what it is:
    ``|w_inf|`` (the run's gradient-flow fixed point, ``w_star`` for balanced runs; matrix-flow
    runs: the flow's own final response, since ``|w_inf|`` of the per-feature theory is not the
    scale of a random init); for a feature the theory does not learn (``learned_theory`` false:
    ``w_inf = 0``, or the matrix flow's response settles below the crossing level), the feature's
    first recorded response instead.  Returns ``(scale, unlearned)``."""
    scale = np.abs(np.asarray(cols["w_inf"], np.float64))
    unlearned = ~(np.asarray(cols["learned_theory"], bool) & np.isfinite(scale) & (scale > 0))
    first = np.abs(np.asarray(result.responses[0], np.float64))
    scale = np.where(unlearned, np.where(first > 0, first, 1.0), scale)
    return scale, unlearned


_SCALE_NAME = {"closed_form": "w*", "aligned": "|w_inf|", "matrix_flow": "flow's final response"}
_SCALE_LABEL = {"closed_form": r"$\gamma_i \,/\, w^*$  (response over its fixed point $w^*$)",
                "aligned": r"$\gamma_i \,/\, |w_\infty|$  (response over the run's fixed point)",
                "matrix_flow": r"$\gamma_i$ / the matrix flow's final response"}


def response_figure(result: TrainResult, max_features: int = 10):
    """Recorded responses (markers) over the theory's ``w(t)`` (lines, balanced linear models),
    each divided by its feature's scale (:func:`response_scale`: ``|w_inf|``, as the paper plots
    ``w / w_star``), so features with small fixed points read as learned when they are."""
    from matplotlib import cm

    from .._style import TIME_LABEL, new_figure

    cfg, ds = result.config, result.dataset
    fig, axes = new_figure(width=6.8, height=4.2)
    ax = axes[0, 0]
    idx = np.unique(np.round(np.linspace(0, ds.dim - 1, min(ds.dim, max_features))).astype(int))
    colours = cm.viridis(np.linspace(0, 0.9, idx.size))
    t = result.times
    positive = t > 0 if cfg.grid == "log" else np.ones_like(t, dtype=bool)
    cols = theory_columns(cfg, ds, gd=False)
    theory_w = None
    if cfg.model == "linear" and cols["theory"] == "closed_form":  # not a random init's: its theory is the matrix flow
        ts = np.geomspace(t[positive][0], t[-1], 400) if cfg.grid == "log" else np.linspace(0, t[-1], 400)
        if cfg.objective in spec.JOINT_OBJECTIVES:  # docs/theory.md section 16
            kw = {"sigma2": ds.sigma2[idx], "syy": ds.syy[idx]} if cfg.objective == "vicreg" else {}
            theory_w = joint.trajectory(cfg.objective, cfg.depth, ds.lam[idx], cfg.eps, ts, **kw)
        else:
            theory_w = theory.trajectory(cfg.objective, cfg.depth, ds.lam[idx], ds.rho[idx], cfg.eps, ts)
    scale, unlearned = response_scale(result, cols)
    t_star = cols["t_star_theory"]
    ax.axhline(cfg.fraction, color="0.6", ls=":", lw=0.9, zorder=1)
    for j, (i, c) in enumerate(zip(idx, colours)):
        scale_name = "first response" if unlearned[i] else _SCALE_NAME[cols["theory"]]
        label = f"i={i}: lam={ds.lam[i]:.3g}, rho={ds.rho[i]:.3g}, {scale_name}={scale[i]:.3g}"
        # markers under the theory's line (zorder), so that the line stays visible where they agree
        ax.plot(t[positive], result.responses[positive, i] / scale[i], "o", ms=2.5, color=c, alpha=0.45,
                zorder=2, label=label)
        if theory_w is not None:
            ax.plot(ts, theory_w[j] / scale[i], "-", lw=1.4, color=c, zorder=3)
        if t_star[i] <= t[-1] and not unlearned[i]:  # the theory's t* (fraction * scale crossed)
            ax.axvline(t_star[i], color=c, ls=":", lw=0.9, zorder=1)
            ax.plot([t_star[i]], [cfg.fraction], "x", ms=7, mew=1.5, color=c, zorder=4)
    if cfg.grid == "log":
        ax.set_xscale("log")
    xlabel = TIME_LABEL if cfg.optimizer == "sgd" else "lr x step (adam: not gradient-flow time)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_SCALE_LABEL[cols["theory"]] + (" (mlp: a reference)" if cfg.model != "linear" else "")
                  + ("\n(features not learned in theory: over their first response)" if unlearned[idx].any() else ""))
    lines = "lines: balanced gradient-flow theory; " if theory_w is not None else ""
    fig.suptitle(f"{cfg.model} {cfg.objective.upper()} L={cfg.depth}, {cfg.optimizer}, {cfg.loss} loss, init {cfg.init}\n"
                 f"{lines}markers: trained; x and dotted: theory's t* (at fraction {cfg.fraction:g})", fontsize=9)
    ax.legend(fontsize=6.5, markerscale=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
