r"""How far the per-feature theory carries on non-commuting data (the matrix study, docs/theory.md section 10).

The per-feature theory (docs/theory.md sections 2-4), applied mode by mode at each mode's
``(lam_i, rho_i)`` (:mod:`jepa_dynamics.theory.modes`), is exact for commuting data and
balanced init (docs/theory.md section 10).  These functions measure its error against the
full-matrix gradient flow (:mod:`jepa_dynamics.engines.matrix`), and against trained
networks, as the data departs from commuting:

* :func:`mode_table` -- one engine run: per mode, the engine's ``t*`` and the
  predictions of two per-feature predictors: ``theory`` (from ``eps``, the plain
  mode-basis theory) and ``effective`` (from the mode's own initial response
  ``gamma_i(0) = eps ||Sxx q_i|| / sigma2_i`` under balanced init: the per-mode
  initial condition the engine actually starts from); and a third, ``svd``, in other
  directions: the per-feature theory along the left singular vectors of ``Sxy``
  (:func:`svd_basis`), held against the engine's responses along those directions.
  MAE's plateau is driven by ``Sxy`` alone (its ``dW/dt`` is linear in ``Sxy`` and cubic
  in ``Sxx`` while the weights are small), so this is MAE's natural basis (the deep linear
  regression modes of Saxe et al.); JEPA's plateau has ``Sxy`` and ``Sxx`` at the same
  order, as the generalised modes assume.
* :func:`departure_sweep` -- :func:`mode_table` over a family's ``mixing`` and seeds:
  the median relative error of each predictor's ``t*`` and the Spearman correlation of
  its learning order with the engine's (``analysis.rank_correlation``).
* :func:`gd_critical_times` -- a trained network (the package's models and losses,
  plain gradient descent on the population loss, float64): per-mode ``t*``.
* :func:`random_init_alignment` -- small random init: per mode, the alignment time
  (the response vector ``Wbar Sxx q_i`` first within 0.9 cosine of the direction it
  rises along) against the rise time ``t*``, and a per-mode effective initial condition
  (the theory restarted at alignment from the response reached then).
"""

from __future__ import annotations

import numpy as np

from ..training import analysis, data
from ..engines import matrix
from ..theory import modes as modes_mod, balanced as theory

__all__ = ["study", "study_table", "nanmedian", "svd_basis", "basis_critical_times", "mode_table", "departure_sweep",
           "gd_critical_times", "random_init_alignment", "summarise"]


def _times(t_max, num=400):
    return np.unique(np.concatenate([[0.0], np.geomspace(t_max * 1e-5, t_max, num // 2),
                                     np.linspace(0.0, t_max, num // 2)]))


def svd_basis(sxx, sxy):
    """The ``svd`` predictor's directions: the left singular vectors ``u_i`` of ``Sxy = E[x y^T]`` (the
    input directions of the regression of ``y`` on ``x``), with ``lam_i`` = the singular value and
    ``sigma2_i = u_i^T Sxx u_i``.  For a symmetric positive semi-definite ``Sxy`` these are the
    eigenvectors of ``Sxy`` alone.  Returns ``(U, lam, sigma2)``."""
    u, sv, _ = np.linalg.svd(np.asarray(sxy, np.float64))
    return u, sv, np.einsum("ij,ik,kj->j", u, sxx, u)


def basis_critical_times(res: matrix.MatrixResult, sxx, directions, sigma2, fraction=0.5):
    """The engine's ``t*`` for the responses to arbitrary unit input ``directions`` (columns),
    ``||Wbar Sxx u|| / sigma2``, read off the output grid (linear interpolation,
    :func:`jepa_dynamics.training.analysis.critical_times`)."""
    resp = np.linalg.norm(res.wbar @ (sxx @ directions), axis=1) / sigma2
    learned = fraction * resp[-1] > resp[0]
    return np.where(learned, analysis.critical_times(res.times, resp, resp[-1], fraction), np.nan)


def mode_table(config: matrix.MatrixConfig, cov, *, t_max=None, num_times=800) -> dict:
    """Engine ``t*`` and per-feature predictions per mode (module docstring); plus the departure
    measures and the engine result.  The ``svd`` predictor (:func:`svd_basis`) names other
    directions, so its engine times are ``t_matrix_svd``."""
    from ..theory import spec

    m = modes_mod.decompose(cov[0], cov[1])
    t_max = matrix.default_t_max(config, m) if t_max is None else t_max
    res = matrix.integrate(config, cov, _times(t_max, num_times), modes=m)
    u, lam_u, s2_u = svd_basis(cov[0], cov[1])
    rho_u = lam_u / s2_u
    ok = (lam_u > 0) & (config.eps < config.fraction * spec.fixed_point(config.objective, config.depth,
                                                                          np.where(lam_u > 0, rho_u, 1.0)))
    svd_theory = np.full(lam_u.shape, np.nan)
    svd_theory[ok] = theory.critical_time(config.objective, config.depth, lam_u[ok], rho_u[ok], config.eps,
                                          config.fraction)
    return {"t_matrix": res.t_star, "theory": matrix.theory_critical_times(config, m),
            "effective": matrix.theory_critical_times(config, m, eps=res.gamma0), "lam": m.lam, "rho": m.rho,
            "t_matrix_svd": basis_critical_times(res, cov[0], u, s2_u, config.fraction), "svd": svd_theory,
            "learned": res.learned, "converged": res.converged, **modes_mod.departure(cov[0], cov[1], m),
            "result": res}


def summarise(table: dict, predictors=("theory", "effective", "svd")) -> dict:
    """Median ``|t*_pred / t*_matrix - 1|`` over the modes both define, and Spearman of the orders."""
    out = {}
    for p in predictors:
        ref = table["t_matrix_svd" if p == "svd" else "t_matrix"]
        ok = np.isfinite(ref) & np.isfinite(table[p])
        if ok.sum() == 0:
            out[f"err_{p}"], out[f"order_{p}"] = np.nan, np.nan
            continue
        rel = table[p][ok] / ref[ok] - 1.0
        out[f"err_{p}"] = float(np.median(np.abs(rel)))
        out[f"maxerr_{p}"] = float(np.max(np.abs(rel)))
        out[f"order_{p}"] = analysis.rank_correlation(-table[p][ok], -ref[ok]) if ok.sum() > 1 else np.nan
    out["learned"] = int(np.sum(table["learned"]))
    return out


def _family(family, lam, rho, mixing, seed):
    if family == "mixed":
        return data.mixed(lam, rho, mixing, seed)
    if family == "symmetric":
        return data.mixed(lam, rho, mixing, seed, symmetric=True)
    a = np.linspace(0.95, 0.3, lam.size)
    return data.lagged(a, np.linspace(0.5, 2.0, lam.size), mixing, seed)


def departure_sweep(objective: str, depth: int, dim: int, mixings, seeds, *, family: str = "mixed", eps: float = 0.01,
                    init: str = "balanced", lam=(1.0, 2.0), rho=(0.9, 0.3), progress=None) -> list:
    """:func:`summarise` of :func:`mode_table` for each ``mixing`` x ``seed`` of ``family``
    (``mixed``: asymmetric ``Sxy``; ``symmetric``: symmetric ``Sxy`` rotated away from ``Sxx``;
    ``lagged``: vector AR(1)).  One dict per run, with the departure measures."""
    from .. import records

    lam_v, rho_v = np.linspace(*lam, dim), np.linspace(*rho, dim)
    config = matrix.MatrixConfig(objective, depth, eps=eps, init=init)
    rows = []
    bar = records.progress_bar(len(mixings) * len(seeds), enabled=progress, desc=f"{family} {objective}", unit="run")
    for mix in mixings:
        for seed in seeds:
            ds = _family(family, lam_v, rho_v, mix, seed)
            table = mode_table(config, ds.covariances())
            rows.append({"family": family, "objective": objective, "depth": depth, "mixing": float(mix),
                         "seed": int(seed), "nonorthogonality": table["nonorthogonality"],
                         "commutator": table["commutator"], "asymmetry": table["asymmetry"], **summarise(table)})
            bar.update(1)
    bar.close()
    return rows


def gd_critical_times(objective: str, depth: int, cov, y0, lr: float, steps: int, *, records: int = 400,
                      fraction: float = 0.5):
    """Per-mode ``t*`` of a deep linear network trained by plain gradient descent (``lr``, ``steps``) on
    the population loss, from the matrices of the state array ``y0`` (:func:`jepa_dynamics.engines.matrix.pack`).
    Time is ``lr * step``; the response is recorded every ``steps // records`` steps and ``t*`` is
    :func:`jepa_dynamics.training.analysis.critical_times` of it against its last value.  Returns
    ``(t_star, times, responses)``."""
    from ..training import models, objectives
    from .._jax import jax

    import jax.numpy as jnp

    layers, v, _ = matrix.unpack(np.asarray(y0))
    model = models.Model(models.DeepLinear(tuple(jnp.asarray(w) for w in layers)),
                         models.DeepLinear((jnp.asarray(v),)))
    cov_j = tuple(jnp.asarray(c) for c in cov)
    grad = jax.grad(lambda mdl: objectives.loss(objective, "population", mdl, cov_j))
    every = max(1, steps // records)

    @jax.jit
    def run(mdl):
        def chunk(mdl, _):
            mdl = jax.lax.fori_loop(0, every, lambda _, q: jax.tree_util.tree_map(lambda p, g: p - lr * g, q,
                                                                                     grad(q)), mdl)
            return mdl, mdl.encoder.matrix()
        return jax.lax.scan(chunk, mdl, None, length=steps // every)[1]

    wbar = np.concatenate([np.asarray(matrix.end_to_end(layers))[None], np.asarray(run(model))])
    m = modes_mod.decompose(cov[0], cov[1])
    resp = modes_mod.responses(wbar, m)
    times = lr * every * np.arange(wbar.shape[0])
    learned = fraction * resp[-1] > resp[0]
    t_star = np.where(learned, analysis.critical_times(times, resp, resp[-1], fraction), np.nan)
    return t_star, times, resp


def random_init_alignment(objective: str, depth: int, cov, *, scale: float, seed: int = 0, cosine: float = 0.9,
                          num_times: int = 600, t_max=None) -> dict:
    """Small random init (i.i.d. ``N(0, scale^2/d)`` entries): per mode the alignment time (the first
    record where the response vector ``Wbar Sxx q_i`` is within ``cosine`` of the direction it has
    at ``t*``, i.e. the output direction it rises along), the engine's ``t*``, the per-feature
    theory from ``eps = scale^L`` and from ``gamma_i(0)``, and the theory
    restarted at the alignment time from the response reached then (``t_align + t_theory(gamma(t_align))``)."""
    m = modes_mod.decompose(cov[0], cov[1])
    eps_nominal = scale**depth
    config = matrix.MatrixConfig(objective, depth, eps=eps_nominal, init="random", init_scale=scale, seed=seed)
    t_max = 3.0 * matrix.default_t_max(matrix.MatrixConfig(objective, depth, eps=eps_nominal), m) \
        if t_max is None else t_max
    res = matrix.integrate(config, cov, _times(t_max, num_times), modes=m)
    vecs = res.wbar @ (cov[0] @ m.q)  # (T, d, modes): response vectors Wbar Sxx q_i
    t_align = np.full(m.dim, np.nan)
    restart = np.full(m.dim, np.nan)
    for i in np.flatnonzero(res.learned & np.isfinite(res.t_star)):
        # the output direction the mode rises along: its response vector at the record nearest t*
        ref = vecs[np.argmin(np.abs(res.times - res.t_star[i])), :, i]
        ref = ref / np.linalg.norm(ref)
        cos = vecs[:, :, i] @ ref / np.maximum(np.linalg.norm(vecs[:, :, i], axis=1), 1e-300)
        k = int(np.flatnonzero(cos >= cosine)[0])
        t_align[i] = res.times[k]
        eps_i = np.where(np.arange(m.dim) == i, res.responses[k, i], np.inf)
        th = matrix.theory_critical_times(config, m, eps=eps_i)[i]
        restart[i] = t_align[i] + th if np.isfinite(th) else t_align[i]
    return {"t_matrix": res.t_star, "t_align": t_align, "theory": matrix.theory_critical_times(config, m),
            "effective": matrix.theory_critical_times(config, m, eps=res.gamma0), "restart": restart,
            "learned": res.learned, "gamma0": res.gamma0, "lam": m.lam, "rho": m.rho, "result": res}


def study(fast: bool = False, progress=None) -> dict:
    """Every number of the study (``figures.matrix_study`` draws it; notebook 08 prints it).

    Depth 2, balanced init, ``eps = 0.01``; ``lam`` 1 -> 2 and ``rho`` 0.9 -> 0.3 over the
    features (``lagged``: ``a`` 0.95 -> 0.3, ``v`` 0.5 -> 2).  ``fast``: ``d = 3`` throughout
    (one compiled solver), three mixings, one seed, the ``mixed`` family; full: ``d = 8``, seven
    mixings, three seeds, three families.  Trained networks: ``d = 6``, ``eps = 0.05``, mixing 0.3 and 0.7, plain GD with
    ``lr = t*_min / 4000``, run as long as the engine (its limit is read off its last record).
    Random init: ``d = 6``, mixing 0.5, scale 0.1."""
    dim = 3 if fast else 8
    mixings = [0.0, 0.5, 1.0] if fast else [0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0]
    seeds = [0] if fast else [0, 1, 2]
    families = ["mixed"] if fast else ["mixed", "symmetric", "lagged"]
    rows = []
    for family in families:
        for objective in ("jepa", "mae"):
            rows += departure_sweep(objective, 2, dim, mixings, seeds, family=family, progress=progress)
    trained = []
    d_net = dim if fast else 6
    for mix in ([0.5] if fast else [0.3, 0.7]):
        ds = data.mixed(np.linspace(1.0, 2.0, d_net), np.linspace(0.9, 0.3, d_net), mix, seed=0)
        for objective in ("jepa", "mae"):
            config = matrix.MatrixConfig(objective, 2, eps=0.05)
            table = mode_table(config, ds.covariances())
            t_first = float(np.nanmin(table["t_matrix"]))
            lr = t_first / (1000 if fast else 4000)
            steps = int(np.ceil(table["result"].times[-1] / lr))  # to the engine's t_max: both settle
            t_net, _, _ = gd_critical_times(objective, 2, ds.covariances(), matrix.initial_state(config, d_net), lr,
                                            steps, records=1000 if fast else 4000)
            trained.append({"objective": objective, "mixing": mix, "t_matrix": table["t_matrix"], "t_network": t_net,
                            "theory": table["theory"], "lr": lr})
    d_rand = dim if fast else 6
    ds = data.mixed(np.linspace(1.0, 2.0, d_rand), np.linspace(0.9, 0.3, d_rand), 0.5, seed=0)
    random = {obj: random_init_alignment(obj, 2, ds.covariances(), scale=0.1, seed=1,
                                         num_times=300 if fast else 800) for obj in ("jepa", "mae")}
    return {"rows": rows, "trained": trained, "random": random, "dim": dim, "mixings": mixings, "seeds": seeds,
            "families": families}


def nanmedian(values) -> float:
    """Median of the finite values; ``nan`` (without a warning) when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if arr.size else float("nan")


def _nanmax(values) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(np.max(arr)) if arr.size else float("nan")


def study_table(res: dict) -> str:
    """The study's numbers as text: per family, objective and mixing, the median (over seeds) of each
    predictor's median relative ``t*`` error and of its order correlation; then the trained networks
    and the random-init predictors."""
    lines = [f"{'family':<10}{'obj':<5}{'mixing':>7}{'nonorth':>9}{'comm':>7}{'asym':>7} | "
             f"{'err theory':>10}{'effective':>10}{'svd':>8} | {'order th':>8}{'eff':>6}{'svd':>6}"]
    rows = res["rows"]
    for family in res["families"]:
        for obj in ("jepa", "mae"):
            for mix in res["mixings"]:
                sel = [r for r in rows if r["family"] == family and r["objective"] == obj and r["mixing"] == mix]

                def med(key):
                    return nanmedian([r[key] for r in sel])
                lines.append(f"{family:<10}{obj:<5}{mix:>7.2f}{med('nonorthogonality'):>9.3f}{med('commutator'):>7.3f}"
                             f"{med('asymmetry'):>7.3f} | {med('err_theory'):>10.3f}{med('err_effective'):>10.3f}"
                             f"{med('err_svd'):>8.3f} | {med('order_theory'):>8.2f}{med('order_effective'):>6.2f}"
                             f"{med('order_svd'):>6.2f}")
    lines.append("")
    lines.append("trained networks (plain GD, population loss) against the engine, max |t*_net / t*_matrix - 1|; "
                 "theory's median error for scale:")
    for tr in res["trained"]:
        net = _nanmax(np.abs(tr["t_network"] / tr["t_matrix"] - 1))
        th = nanmedian(np.abs(tr["theory"] / tr["t_matrix"] - 1))
        lines.append(f"  {tr['objective']} mixing {tr['mixing']:.2f}: network {net:.2e}, theory {th:.3f} "
                     f"(lr {tr['lr']:.3g})")
    lines.append("")
    lines.append("small random init (scale 0.1, mixing 0.5): per mode t_align / t*, and |t*_pred / t*_matrix - 1|")
    for obj, r in res["random"].items():
        lines.append(f"  {obj}: t_align/t* = {np.array2string(r['t_align'] / r['t_matrix'], precision=2)}")
        for p in ("theory", "effective", "restart"):
            err = np.abs(r[p] / r["t_matrix"] - 1)
            lines.append(f"    {p:<9} median {nanmedian(err):.3f}  max {_nanmax(err):.3f}")
    return "\n".join(lines)
