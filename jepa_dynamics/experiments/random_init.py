"""Which features JEPA loses from a small random init: trained networks, the matrix flow, and a predictor
from the init alone (docs/theory.md section 10, "Random init, predicted").

:func:`study` trains grids of random-init deep linear networks (``train-grid``'s engine,
:func:`jepa_dynamics.training.grid.run_grid`) on random diagonal data sets, JEPA (stop-gradient and EMA)
and MAE, depths 1-4, two init scales, many seeds, and reads for every (network, feature) pair

* the trained network's settled fate (``learned_empirical``: the final response at or above the crossing
  level ``fraction * w_star``) and critical time;
* the exact matrix flow's prediction from the same initial matrices (``learned_theory``, ``t_star_theory``:
  ``theory = matrix_flow``);
* a handful of numbers known at ``t = 0`` (:data:`INIT_FEATURES`), from which :func:`fit_predictor` learns
  a logistic boundary (cross-validated by data set: no data set is both trained on and scored).

:func:`sampled` holds minibatch SGD (``loss = sampled``) against the population flow from the same init.
Everything is seeded: the same call gives the same table.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .. import records

__all__ = ["INIT_FEATURES", "study", "sampled", "init_features", "fit_predictor", "study_table"]

# the numbers per (network, feature) the predictor may use: all known at t = 0
INIT_FEATURES = ("rho_rel", "lam_rel", "rho_rank", "response0_rel", "predictor_path", "depth", "dim")


def _datasets(dims, per_dim: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for d in dims:
        for _ in range(per_dim):
            lam = np.round(rng.uniform(0.5, 1.5, d), 3)
            rho = np.round(rng.uniform(0.5, 0.95, d), 3)
            out.append((lam.tolist(), rho.tolist()))
    return out


def init_features(states, lam, rho) -> dict:
    """:data:`INIT_FEATURES` of networks ``states`` ``(n, L + 2, d, d)`` on data ``(lam, rho)``, each an
    ``(n, d)`` array: ``rho_i / max rho``, ``lam_i / max lam``, the rank of ``rho_i`` (0 = largest),
    ``log(|Wbar(0) e_i| / mean_j |Wbar(0) e_j|)``, the predictor's read-out of the encoder's output
    direction for feature ``i`` (``h = Wbar(0) e_i``: ``h^T V h / |h|^2``, in units of the predictor's
    scale ``||V||_F / sqrt(d)``), the depth and the dimension."""
    states = np.asarray(states, np.float64)
    n, depth, d = states.shape[0], states.shape[1] - 2, states.shape[-1]
    lam, rho = np.asarray(lam, np.float64), np.asarray(rho, np.float64)
    wbar = states[:, 0]
    for a in range(1, depth):
        wbar = states[:, a] @ wbar
    v = states[:, depth]
    norms = np.linalg.norm(wbar, axis=1)  # (n, d): |Wbar e_i|
    read = np.einsum("nki,nkl,nli->ni", wbar, v, wbar) / norms**2
    scale = np.linalg.norm(v, axis=(1, 2)) / np.sqrt(d)
    rank = np.argsort(np.argsort(-rho))
    tile = lambda x: np.broadcast_to(x, (n, d)).astype(np.float64)  # noqa: E731
    return {"rho_rel": tile(rho / rho.max()), "lam_rel": tile(lam / lam.max()), "rho_rank": tile(rank),
            "response0_rel": np.log(norms / norms.mean(axis=1, keepdims=True)),
            "predictor_path": read / scale[:, None], "depth": tile(depth), "dim": tile(d)}


def _grid_pairs(lam, rho, depth, lists, lr, steps_factor, out_dir, devices=None):
    """Train one grid (one data set, one depth) to the flows' horizon; return its rows and init features."""
    from ..training import _flow, grid

    base = dict(lam=lam, rho=rho, depth=depth, init="random", lr=lr, steps=1, records=1)
    probe = grid.configs_from(base, lists)
    horizon = max(_flow.horizon(c, c.dataset()) for c in probe)
    steps = int(np.ceil(steps_factor * horizon / lr))
    configs = grid.configs_from({**base, "steps": steps}, lists)
    table = grid.run_grid(configs, out_dir, progress=False, devices=devices)
    seeds = np.array([c.seed for c in configs], dtype=np.int64)
    from .._jax import jax
    from ..engines import _draws

    keys = np.asarray(jax.vmap(_draws.init_key)(seeds))
    from ..training import models

    states = models.matrix_state(grid._init_models(configs, keys))
    feats = init_features(states, lam, rho)
    order = np.asarray(table["network"], np.int64)  # rows: (network, feature) in plan order
    feature = np.asarray(table["feature"], np.int64)
    rows = {k: np.asarray(v) for k, v in table.items()}
    rows.update({k: v[order, feature] for k, v in feats.items()})
    return rows, steps


def study(fast: bool = False, *, dims=(3, 5), per_dim: int = 4, depths=(1, 2, 3, 4), eps=(0.01, 0.02),
          ema_rate=(np.inf, 2.0), seeds: int = 16, lr: float = 0.05, seed: int = 0, progress=None) -> dict:
    """Train and predict the fate of every (network, feature) pair (see the module's docstring): per data
    set (``per_dim`` for each ``d`` in ``dims``; ``lam ~ U(0.5, 1.5)``, ``rho ~ U(0.5, 0.95)``) and depth,
    one grid of JEPA (``ema_rate``: stop-gradient and EMA) and MAE networks at every ``eps`` (random init
    at scale ``eps^(1/depth)`` per matrix) and ``seeds`` seeds, trained to the flows' horizon at ``lr``.
    ``fast``: one data set of ``d = 3``, depths 1-2, ``eps = 0.05``, 4 seeds.  Returns ``{"rows": {column: array},
    "datasets": [...], "steps": {...}}``."""
    if fast:
        dims, per_dim, depths, seeds, eps, ema_rate = (3,), 1, (1, 2), 4, (0.05,), (np.inf,)
    sets = _datasets(dims, per_dim, seed)
    parts, steps = [], {}
    bar = records.progress_bar(len(sets) * len(depths), desc="random-init study", unit="grid", enabled=progress)
    try:
        for k, (lam, rho) in enumerate(sets):
            for depth in depths:
                lists = {"objective": ["jepa", "mae"], "eps": list(eps), "ema_rate": list(ema_rate),
                         "seed": list(range(seeds))}
                with tempfile.TemporaryDirectory() as tmp:
                    rows, steps[(k, depth)] = _grid_pairs(lam, rho, depth, lists, lr, 1.0, tmp)
                rows["dataset"] = np.full(rows["feature"].size, k)
                parts.append(rows)
                bar.update(1)
    finally:
        bar.close()
    keys = parts[0].keys()
    return {"rows": {key: np.concatenate([p[key] for p in parts]) for key in keys}, "datasets": sets,
            "steps": {f"{k}-{d}": s for (k, d), s in steps.items()}}


def fit_predictor(rows: dict, features=INIT_FEATURES, folds: int = 4, seed: int = 0) -> dict:
    """A logistic boundary on :data:`INIT_FEATURES` for ``learned_empirical``, fitted per objective and
    scored out of sample: the data sets (or, with fewer than ``folds`` of them, the networks) are split into
    ``folds`` groups, each scored by a fit on the others.
    Returns, per objective, the out-of-sample accuracy overall and by depth, the baseline 'always learned',
    the matrix flow's agreement, and the coefficients of a fit on everything."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline

    out = {}
    learned = np.asarray(rows["learned_empirical"]) == "true"
    flow = np.asarray(rows["learned_theory"]) == "true"
    X_all = np.column_stack([np.asarray(rows[f], np.float64) for f in features])
    # out of sample: whole data sets held out when there are enough of them, else whole networks
    by_set = np.unique(rows["dataset"]).size >= folds
    groups = (np.asarray(rows["dataset"]) if by_set else np.asarray(rows["network"], np.int64)) % folds
    for objective in np.unique(rows["objective"]):
        m = np.asarray(rows["objective"]) == objective
        X, y = X_all[m], learned[m]
        pred = np.zeros(y.size, bool)
        for g in range(folds):
            test = groups[m] == g
            if not test.any():
                continue
            train = ~test
            if np.unique(y[train]).size < 2:
                pred[test] = y[train][0] if train.any() else True
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=2000))
            model.fit(X[train], y[train])
            pred[test] = model.predict(X[test])
        depth = np.asarray(rows["depth"], np.int64)[m]
        full = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=2000))
        coef = dict(zip(features, [float("nan")] * len(features)))
        if np.unique(y).size == 2:
            full.fit(X, y)
            coef = dict(zip(features, full[-1].coef_[0].round(3).tolist()))
        out[str(objective)] = {
            "pairs": int(y.size), "learned_share": float(y.mean()),
            "accuracy": float(np.mean(pred == y)), "always_learned": float(np.mean(y)),
            "flow_agreement": float(np.mean(flow[m] == y)),
            "by_depth": {int(L): {"pairs": int(np.sum(depth == L)), "accuracy": float(np.mean((pred == y)[depth == L])),
                                  "always_learned": float(np.mean(y[depth == L])),
                                  "flow_agreement": float(np.mean((flow[m] == y)[depth == L]))}
                         for L in np.unique(depth)},
            "coefficients": coef, "prediction": pred, "mask": m}
    return out


def sampled(fast: bool = False, *, batches=(64, 256, 1024), seeds: int = 32, depth: int = 2, eps: float = 0.02,
            lr: float = 0.02, lam=(1.0, 0.6, 0.8, 0.7), rho=(0.9, 0.5, 0.7, 0.6)) -> dict:
    """Minibatch SGD (``loss = sampled``, ``batch`` samples a step) from random inits against the population
    matrix flow from the same matrices: per batch size, the share of (network, feature) fates the flow gets
    right and the median and 90th-percentile ``|t*_trained / t*_flow - 1|`` where both cross.  ``fast``: two
    seeds, batches 64 and 1024, ``eps = 0.05``."""
    from ..training import _flow, grid

    if fast:
        batches, seeds, eps = (64, 1024), 2, 0.05
    base = dict(lam=list(lam), rho=list(rho), depth=depth, eps=eps, init="random", lr=lr, steps=1, records=1,
                loss="sampled")
    probe = grid.configs_from(base, {"batch": [batches[0]], "seed": [0]})[0]
    steps = int(np.ceil(_flow.horizon(probe, probe.dataset()) / lr))
    out = {}
    for batch in batches:
        configs = grid.configs_from({**base, "steps": steps, "batch": batch},
                                    {"objective": ["jepa", "mae"], "seed": list(range(seeds))})
        with tempfile.TemporaryDirectory() as tmp:
            t = grid.run_grid(configs, os.path.join(tmp, "g"), progress=False)
        for objective in ("jepa", "mae"):
            m = np.asarray(t["objective"]) == objective
            agree = np.asarray(t["learned_theory"])[m] == np.asarray(t["learned_empirical"])[m]
            te, tt = (np.asarray(t[c], np.float64)[m] for c in ("t_star_empirical", "t_star_theory"))
            both = np.isfinite(te) & np.isfinite(tt)
            err = np.abs(te[both] / tt[both] - 1)
            out[f"{objective} batch={batch}"] = {
                "pairs": int(m.sum()), "flag_agreement": float(agree.mean()),
                "t_star_error_median": float(np.median(err)) if err.size else float("nan"),
                "t_star_error_p90": float(np.quantile(err, 0.9)) if err.size else float("nan")}
    return {"steps": steps, "rows": out}


def study_table(results: dict, predictor: dict | None = None) -> str:
    """The accuracy table, by objective and depth: pairs, P(learned), the predictor's out-of-sample accuracy,
    'always learned', and the matrix flow's agreement with the trained networks."""
    predictor = fit_predictor(results["rows"]) if predictor is None else predictor
    lines = ["objective  depth  pairs  P(learned)  predictor  always-learned  matrix-flow"]
    for objective, p in predictor.items():
        for depth, q in p["by_depth"].items():
            lines.append(f"{objective:9s}  {depth:5d}  {q['pairs']:5d}  {q['always_learned']:10.3f}  "
                         f"{q['accuracy']:9.3f}  {q['always_learned']:14.3f}  {q['flow_agreement']:11.4f}")
        lines.append(f"{objective:9s}    all  {p['pairs']:5d}  {p['learned_share']:10.3f}  {p['accuracy']:9.3f}  "
                     f"{p['always_learned']:14.3f}  {p['flow_agreement']:11.4f}")
    return "\n".join(lines)

