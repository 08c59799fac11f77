r"""Encoders trained on real views, written to a folder (what ``jepa-dynamics spectrum --train`` writes).

:func:`plan_all` validates and plans every ``(depth, objective)`` run before any is trained;
:func:`write_runs` writes ``training.csv`` (one row per run and mode), ``orders.csv`` (one row
per run: the order correlation and median ratios over the scope) and ``responses.csv`` (the
responses of the modes in scope at every record); :func:`run_probes` and :func:`write_probes`
read linear probes off the recorded encoders.  One run -- its configuration, learning rate and
step count, the training loop and the comparison with the predicted order of the modes -- is
the private ``_realrun`` module; its public names are importable from here.
"""

from __future__ import annotations

import numpy as np

from ..training import analysis
from .. import records
from ..theory import modes as modes_mod
from ._realrun import (RealRun, RealTrainConfig, diagonal_responses, joint_stability_bound,  # noqa: F401
                       plan, record_grid, stability_bound, train_views)

__all__ = ["RealTrainConfig", "RealRun", "plan", "train_views", "record_grid", "stability_bound",
           "joint_stability_bound", "diagonal_responses"]


# --- runs into a folder (what `jepa-dynamics spectrum --train` writes) -------------------------------------

TRAINING_COLUMNS = ("depth", "objective", "feature", "lam", "rho", "in_scope", "t_star_theory",
                    "t_star_empirical", "t_star_empirical_diagonal", "t_star_matrix",
                    "t_star_matrix_diagonal", "final_response", "final_response_diagonal")
ORDER_COLUMNS = ("depth", "objective", "lr", "steps", "modes_compared", "spearman", "spearman_diagonal",
                 "median_ratio", "median_ratio_diagonal", "spearman_matrix_diagonal", "median_ratio_matrix_diagonal",
                 "median_ratio_trained_to_matrix_diagonal")
RESPONSE_COLUMNS = ("depth", "objective", "step", "time", "feature", "response", "response_diagonal")
PROBE_COLUMNS = ("depth", "objective", "step", "time", "subspace", "accuracy")
TRAIN_NOTES = {
    "time": "gradient-flow time lr * step (plain gradient descent on minibatches of the real pairs)",
    "response": "gamma_i = ||Wbar Sxx q_i|| / sigma2_i (docs/theory.md section 10)",
    "response_diagonal": "q_i^T Wbar Sxx q_i / sigma2_i: the part of the response along q_i itself",
    "feature": "index of the mode q_i (0 = the largest rho; modes.csv's feature)",
    "t_star_empirical": ("first crossing of fraction * w_star (per-feature theory's w_star) by the recorded "
                               "response, linear in time between records; nan = not reached (or no level)"),
    "in_scope": "true for the modes predicted first that the run covers and the order correlation compares",
    "t_star_matrix": ("the same crossing for the exact full-matrix gradient flow of the population loss on "
                             "the same covariances (jepa_dynamics.engines.matrix, --matrix); nan without --matrix"),
    "spearman": ("rank correlation of observed and predicted critical times over the scope (not reached = "
                 "last); median_ratio: median of observed / predicted t_star over the scope"),
}


def plan_all(m: modes_mod.Modes, depths, objectives_, syy=None, **options):
    """Validate and plan every run before any is trained: ``{(depth, objective): config}`` (``syy``: the
    target covariance, which VICReg's prediction needs)."""
    configs = {}
    for depth in depths:
        for obj in objectives_:
            cfg = RealTrainConfig(objective=obj, depth=depth, **options)
            plan(cfg, m, syy)  # raises SpecError (nothing written yet)
            configs[(depth, obj)] = cfg
    return configs


def _long(run: RealRun, m, depth, obj):
    d = m.dim
    in_scope = np.zeros(d, dtype=bool)
    in_scope[run.scope] = True
    nan = np.full(d, np.nan)
    t_mx = nan if run.t_matrix is None else run.t_matrix
    t_mx_diag = nan if run.t_matrix_diagonal is None else run.t_matrix_diagonal
    return [np.full(d, depth), np.full(d, obj), np.arange(d), m.lam, m.rho, in_scope, run.t_pred, run.t_obs,
            run.t_obs_diagonal, t_mx, t_mx_diag, run.responses[-1], run.responses_diagonal[-1]]


def _median(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return float(np.median(values[ok])) if ok.any() else float("nan")


def write_runs(runs: dict, m, out_dir: str, header) -> None:
    """``training.csv``, ``orders.csv``, ``responses.csv`` for the finished ``runs``."""
    import os

    keys = sorted(runs)
    if not keys:
        return
    cols = [np.concatenate(c) for c in zip(*(_long(runs[k], m, *k) for k in keys))]
    records.write_csv_atomic(os.path.join(out_dir, "training.csv"), header, TRAINING_COLUMNS, cols)
    rows = []
    for depth, obj in keys:
        r = runs[(depth, obj)]
        sc = r.scope
        if r.t_matrix_diagonal is not None and sc.size > 1:
            mx = r.t_matrix_diagonal[sc]
            mx_row = [analysis.order_correlation(mx, -r.t_pred[sc]), _median(mx / r.t_pred[sc]),
                      _median(r.t_obs_diagonal[sc] / mx)]
        elif r.t_matrix_diagonal is not None:
            mx = r.t_matrix_diagonal[sc]
            mx_row = [float("nan"), _median(mx / r.t_pred[sc]), _median(r.t_obs_diagonal[sc] / mx)]
        else:
            mx_row = [float("nan")] * 3
        rows.append([depth, obj, r.lr, int(r.steps[-1]), sc.size, r.spearman, r.spearman_diagonal,
                     _median(r.ratio[sc]), _median(r.ratio_diagonal[sc]), *mx_row])
    records.write_csv_atomic(os.path.join(out_dir, "orders.csv"), header, ORDER_COLUMNS,
                             [np.array([row[j] for row in rows]) for j in range(len(ORDER_COLUMNS))])
    resp = [[] for _ in RESPONSE_COLUMNS]
    for depth, obj in keys:
        r = runs[(depth, obj)]
        t_n, k = r.steps.size, r.scope.size
        for col, values in zip(resp, (np.full(t_n * k, depth), np.full(t_n * k, obj), np.repeat(r.steps, k),
                                      np.repeat(r.times, k), np.tile(r.scope, t_n),
                                      r.responses[:, r.scope].ravel(), r.responses_diagonal[:, r.scope].ravel())):
            col.append(values)
    records.write_csv_atomic(os.path.join(out_dir, "responses.csv"), header, RESPONSE_COLUMNS,
                             [np.concatenate(c) for c in resp])


def probe_checkpoints(run: RealRun, count: int = 10, start: float = 0.1) -> np.ndarray:
    """Indices of the first record and of ``count`` records nearest to times log-spaced from
    ``start`` times the first predicted critical time to the end of the run."""
    t_first = float(np.min(run.t_pred[run.scope]))
    targets = np.geomspace(min(start * t_first, run.times[-1]), run.times[-1], count)
    idx = np.searchsorted(run.times, targets).clip(1, run.times.size - 1)
    return np.unique(np.concatenate([[0], idx]))


def run_probes(runs: dict, data, sxx_clean, *, count: int = 10, noise: float = 0.05, share: float = 0.9,
               seed: int = 0, progress=None) -> dict:
    """``{(depth, objective): (record indices, {subspace: accuracies})}`` on ``count`` checkpoints."""
    from . import probes

    out = {}
    bar = records.progress_bar(len(runs), desc="probes", unit="run", enabled=progress)
    try:
        for key, run in sorted(runs.items()):
            idx = probe_checkpoints(run, count)
            out[key] = (idx, probes.probe_curves(run.wbar[idx], data, sxx_clean, share=share, noise=noise, seed=seed))
            bar.update(1)
    finally:
        bar.close()
    return out


def write_probes(curves: dict, runs: dict, path: str, header) -> None:
    from .probes import SUBSPACES

    cols = [[] for _ in PROBE_COLUMNS]
    for (depth, obj), (idx, acc) in sorted(curves.items()):
        run = runs[(depth, obj)]
        for sub in SUBSPACES:
            for c, values in zip(cols, (np.full(idx.size, depth), np.full(idx.size, obj), run.steps[idx],
                                        run.times[idx], np.full(idx.size, sub), acc[sub])):
                c.append(values)
    records.write_csv_atomic(path, header, PROBE_COLUMNS, [np.concatenate(c) for c in cols])
