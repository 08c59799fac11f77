r"""The four families side by side: JEPA, MAE, Barlow Twins and VICReg on the same diagonal data
(the families study, docs/theory.md section 17).

On random diagonal data sets (``lam`` and ``rho`` drawn independently, log-uniform; ``sigma2 = lam / rho``;
VICReg's target variance ``syy = max(sigma2, lam rho)`` as in the ``sweep`` command), for each family and
depth:

* :func:`theory_times` -- the exact per-feature ``t_star`` (JEPA, MAE: docs/theory.md section 4,
  :mod:`jepa_dynamics.theory.balanced`; Barlow, VICReg: section 16, :mod:`jepa_dynamics.theory.joint`);
* :func:`governing` -- the quantity the theory says sets the order, larger = earlier: JEPA and MAE the
  closed-form ``-t_star`` itself (sections 4 and 6: no single parameter), Barlow and VICReg the growth
  coefficient ``g`` of section 16;
* :func:`fixed_points` -- ``w_star`` per feature (every feature with ``lam > 0`` survives in all four);
* :func:`order_correlations` -- Spearman's correlation of how early each feature is learned (``-t_star``)
  with ``lam``, ``rho`` and the governing quantity: ``+1`` = larger values learned first;
* :func:`trained_times` -- a deep linear network (:mod:`jepa_dynamics.training`, the package's models and
  population losses, balanced init, plain gradient descent, float64): per feature the first time its
  response ``||Wbar e_i||`` reaches ``fraction * w_star``.

:func:`study` runs all of it, :func:`study_table` prints it, ``figures.families`` draws it.
"""

from __future__ import annotations

import numpy as np

from ..theory import balanced, gd, joint, spec
from ..realdata.realtrain import joint_stability_bound
from ..training import analysis

__all__ = ["FAMILIES", "DEPTHS", "draw_dataset", "theory_times", "governing", "fixed_points",
           "order_correlations", "learning_rate", "trained_times", "study", "summary", "fixed_point_correlations",
           "data_correlation",
           "study_table"]

FAMILIES = ("jepa", "mae", "barlow", "vicreg")
DEPTHS = (1, 2, 3, 4)


def draw_dataset(dim: int, seed: int, lam_range=(0.5, 1.5), rho_range=(1 / 3, 1.0)) -> dict:
    """``lam`` and ``rho`` log-uniform on their ranges, independently (``numpy`` generator ``seed``);
    ``sigma2 = lam / rho``, ``syy = max(sigma2, lam rho)``.  Returns ``{lam, rho, sigma2, syy}``."""
    rng = np.random.default_rng(seed)
    lam = np.exp(rng.uniform(*np.log(lam_range), dim))
    rho = np.exp(rng.uniform(*np.log(rho_range), dim))
    sigma2 = lam / rho
    return {"lam": lam, "rho": rho, "sigma2": sigma2, "syy": np.maximum(sigma2, lam * rho)}


def _is_joint(family: str) -> bool:
    return family in spec.JOINT_OBJECTIVES


def theory_times(family: str, depth: int, ds: dict, eps: float, fraction: float = 0.5) -> np.ndarray:
    """Exact per-feature ``t_star`` of ``family`` at ``depth`` (float64)."""
    if _is_joint(family):
        return joint.critical_time(family, depth, ds["lam"], eps, fraction, sigma2=ds["sigma2"], syy=ds["syy"])
    return balanced.critical_time(family, depth, ds["lam"], ds["rho"], eps, fraction)


def governing(family: str, depth: int, ds: dict, eps: float, fraction: float = 0.5) -> np.ndarray:
    """What the theory says orders learning (larger = earlier): ``g`` for Barlow and VICReg
    (docs/theory.md section 16), the closed-form ``-t_star`` for JEPA and MAE (sections 4, 6)."""
    if _is_joint(family):
        return joint.coefficients(family, ds["lam"], ds["sigma2"], ds["syy"])[0]
    return -balanced.critical_time(family, depth, ds["lam"], ds["rho"], eps, fraction)


def fixed_points(family: str, depth: int, ds: dict) -> np.ndarray:
    """``w_star`` per feature: JEPA ``rho^L``, MAE ``rho^(L/(L+1))``, Barlow ``lam^(-1/2)``, VICReg
    ``sqrt(g / q)`` (docs/theory.md sections 3 and 16)."""
    if _is_joint(family):
        return joint.fixed_point(family, ds["lam"], ds["sigma2"], ds["syy"])
    return spec.fixed_point(family, depth, ds["rho"])


def order_correlations(t_star, ds: dict, gov) -> dict:
    """``{lam, rho, governing}``: Spearman's correlation of ``-t_star`` with each (never learned = last)."""
    return {"lam": analysis.order_correlation(t_star, ds["lam"]),
            "rho": analysis.order_correlation(t_star, ds["rho"]),
            "governing": analysis.order_correlation(t_star, gov)}


def learning_rate(family: str, depth: int, ds: dict, t_star, *, per_rise: int = 1000, margin: float = 0.2) -> float:
    """Plain GD's step: at most ``t_star.min() / per_rise`` (the first rise resolved) and ``margin`` times
    the stability bound at the fixed point (JEPA, MAE: :func:`jepa_dynamics.theory.gd.stability_bound`;
    Barlow, VICReg: ``2 / (L k)``, ``k = 4 g w_star^(2 - 2/L)``,
    :func:`jepa_dynamics.realdata.realtrain.joint_stability_bound`)."""
    if _is_joint(family):
        bound = joint_stability_bound(family, depth, ds["lam"], ds["sigma2"], ds["syy"])
    else:
        bound = float(np.min(gd.stability_bound(family, depth, ds["lam"], ds["rho"])))
    return min(float(np.min(t_star)) / per_rise, margin * bound)


def trained_times(family: str, depth: int, ds: dict, eps: float, fraction: float = 0.5, *, t_end=None, lr=None,
                  records: int = 1000, seed: int = 0, frames: str = "identity") -> dict:
    """Train a deep linear network on ``ds`` (population loss, balanced init from ``PRNGKey(seed)``, plain
    GD, float64) to gradient-flow time ``t_end`` (default ``1.3 x`` the theory's largest ``t_star``) and
    read each feature's ``t_star`` off ``records`` evenly spaced records of its response ``||Wbar e_i||``
    (the column norm: ``|Wbar_ii|`` while ``Wbar`` is diagonal, and blind to a rotation of the embedding,
    which Barlow Twins and VICReg leave unchanged, docs/theory.md section 16).

    Returns ``{t_star, t_theory, lr, steps, w_final, w_star}``."""
    from .._jax import jax
    from ..training import models, objectives

    import jax.numpy as jnp

    t_theory = theory_times(family, depth, ds, eps, fraction)
    lr = learning_rate(family, depth, ds, t_theory) if lr is None else float(lr)
    t_end = 1.3 * float(np.max(t_theory)) if t_end is None else float(t_end)
    every = max(1, int(np.ceil(t_end / lr / records)))
    cov = tuple(jnp.asarray(ds[k], jnp.float64) for k in ("sigma2", "lam", "syy"))
    build = {"identity": models.aligned, "random": models.balanced}[spec.check_choice(frames, ("identity", "random"),
                                                                                      "frames")]
    model = build(jax.random.PRNGKey(seed), ds["lam"].size, depth, eps, dtype=jnp.float64)
    grad = jax.grad(lambda mdl: objectives.loss(family, "population", mdl, cov))

    @jax.jit
    def run(mdl, lr_, every_):
        def step(_, q):
            return jax.tree_util.tree_map(lambda p, g: p - lr_ * g, q, grad(q))

        def chunk(mdl, _):
            mdl = jax.lax.fori_loop(0, every_, step, mdl)
            return mdl, jnp.linalg.norm(mdl.encoder.matrix(), axis=0)

        return jax.lax.scan(chunk, mdl, None, length=records)[1]

    resp = np.concatenate([np.full((1, ds["lam"].size), eps), np.asarray(run(model, lr, every))])
    times = lr * every * np.arange(records + 1)
    w_star = fixed_points(family, depth, ds)
    return {"t_star": analysis.critical_times(times, resp, w_star, fraction), "t_theory": t_theory, "lr": lr,
            "steps": every * records, "w_final": resp[-1], "w_star": w_star}


def _trained_row(family, depth, ds, eps, fraction, records, frames="identity") -> dict:
    run = trained_times(family, depth, ds, eps, fraction, records=records, frames=frames)
    row = order_correlations(run["t_star"], ds, governing(family, depth, ds, eps, fraction))
    row["theory"] = analysis.order_correlation(run["t_star"], -run["t_theory"])
    row["err"] = float(np.nanmax(np.abs(run["t_star"] / run["t_theory"] - 1)))
    row["reached"] = int(np.isfinite(run["t_star"]).sum())
    return row


def _median(values) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def study(fast: bool = False, *, eps: float = 1e-3, fraction: float = 0.5, progress=None) -> dict:
    """Every number of the families study (``figures.families`` draws it; notebook 11 prints it).

    Theory: ``sets`` data sets of ``dim`` features (full 40 x 8, fast 12 x 8), ``lam`` log-uniform on
    ``[0.5, 1.5]`` and ``rho`` on ``[1/3, 1]``, ``eps = 1e-3`` at every depth.  Trained networks: the first
    ``trained_sets`` of them (full 3, fast 1; fast trains on 5 of the 8 features), every family and depth.
    Full mode also trains the first data set from random orthogonal frames (``random_frames``: the
    Spearman of that network's order against the theory's).
    Returns ``{theory, trained, fixed, datasets, eps, fraction, sets, dim, trained_sets}``:
    ``theory[(family, depth)]`` and
    ``trained[(family, depth)]`` are lists of per-set :func:`order_correlations` (trained: plus ``theory``,
    the Spearman of trained against theory ``t_star``, and ``err``, the largest relative ``t_star`` gap);
    ``fixed[(family, depth)]`` the per-set ``w_star`` arrays with the set's ``lam`` and ``rho``."""
    sets, dim = (12, 8) if fast else (40, 8)
    trained_sets = 1 if fast else 3
    datasets = [draw_dataset(dim, seed) for seed in range(sets)]
    theory, trained, fixed = {}, {}, {}
    # fast: 5 of the 8 features, fewer records
    trained_data = [{k: v[:5] for k, v in ds.items()} if fast else ds for ds in datasets[:trained_sets]]
    records = 400 if fast else 1000
    for family in FAMILIES:
        for depth in DEPTHS:
            key = (family, depth)
            theory[key] = [order_correlations(theory_times(family, depth, ds, eps, fraction), ds,
                                              governing(family, depth, ds, eps, fraction)) for ds in datasets]
            fixed[key] = [fixed_points(family, depth, ds) for ds in datasets]
            trained[key] = [_trained_row(family, depth, small, eps, fraction, records)
                            for small in trained_data]
            if not fast:  # the same network from random orthogonal frames (section 1.3's O_a), first data set
                trained[key][0]["random_frames"] = _trained_row(family, depth, trained_data[0], eps, fraction,
                                                                records, frames="random")["theory"]
            if progress is not None:
                progress(key)
    return {"theory": theory, "trained": trained, "fixed": fixed, "datasets": datasets, "eps": eps,
            "fraction": fraction, "sets": sets, "dim": dim, "trained_sets": trained_sets}


def summary(res: dict, family: str, depth: int, kind: str = "theory") -> dict:
    """Median over data sets of each order correlation (``kind`` = ``theory`` or ``trained``)."""
    rows = res[kind][(family, depth)]
    out = {k: _median([r[k] for r in rows]) for k in rows[0] if k not in ("reached", "random_frames")}
    if kind == "trained":
        out["reached"] = min(r["reached"] for r in rows)
        out["random_frames"] = rows[0].get("random_frames", float("nan"))
    return out


def fixed_point_correlations(res: dict, family: str, depth: int) -> dict:
    """Median over data sets of Spearman's correlation of ``w_star`` with ``lam`` and with ``rho``, and the
    median spread ``log10(max w_star / min w_star)``."""
    ws, sets = res["fixed"][(family, depth)], res["datasets"]
    return {"lam": _median([analysis.rank_correlation(w, ds["lam"]) for w, ds in zip(ws, sets)]),
            "rho": _median([analysis.rank_correlation(w, ds["rho"]) for w, ds in zip(ws, sets)]),
            "spread": _median([np.log10(w.max() / w.min()) for w in ws])}


def data_correlation(res: dict) -> float:
    """Median over data sets of Spearman's correlation of ``lam`` with ``rho``: the ``rho`` score of an
    order that is exactly the order of ``lam`` (the level the ``rho`` column sits at by chance)."""
    return _median([analysis.rank_correlation(ds["lam"], ds["rho"]) for ds in res["datasets"]])


def study_table(res: dict) -> str:
    """The order table: per family and depth, the median (over data sets) Spearman correlation of the
    learning order with ``lam``, ``rho`` and the governing quantity, from the theory and from trained
    networks (with the trained order against the theory's, the largest relative ``t_star`` gap, and the
    trained order against the theory's from random orthogonal frames, first data set); then the fixed points."""
    lines = [f"order of learning: median over {res['sets']} data sets (theory) / {res['trained_sets']} (trained) of "
             f"Spearman(-t*, x); +1 = larger x learned first; eps = {res['eps']:g}; the data's own "
             f"Spearman(lam, rho) = {data_correlation(res):.2f} (a pure lam order scores that against rho)",
             f"{'family':<8}{'L':>2} | {'theory: lam':>11}{'rho':>7}{'gov':>7} | {'trained: lam':>12}{'rho':>7}"
             f"{'gov':>7}{'vs th':>7}{'max err':>9}{'random frames':>14}"]
    for family in FAMILIES:
        for depth in DEPTHS:
            th, tr = summary(res, family, depth), summary(res, family, depth, "trained")
            lines.append(f"{family:<8}{depth:>2} | {th['lam']:>11.2f}{th['rho']:>7.2f}{th['governing']:>7.2f} | "
                         f"{tr['lam']:>12.2f}{tr['rho']:>7.2f}{tr['governing']:>7.2f}{tr['theory']:>7.2f}"
                         f"{tr['err']:>9.1e}{tr['random_frames']:>14.2f}")
    lines += ["", "fixed points: every feature survives (lam > 0); median Spearman of w_star with lam, rho, and "
                  "log10(max w_star / min w_star)",
              f"{'family':<8}{'L':>2} | {'lam':>6}{'rho':>7}{'spread':>8}"]
    for family in FAMILIES:
        for depth in DEPTHS:
            fp = fixed_point_correlations(res, family, depth)
            lines.append(f"{family:<8}{depth:>2} | {fp['lam']:>6.2f}{fp['rho']:>7.2f}{fp['spread']:>8.2f}")
    return "\n".join(lines)
