r"""What JEPA and MAE learn first on real views: modes, predicted critical times, orders.

From empirical covariances (:mod:`jepa_dynamics.realdata.views`) the modes of section 11
(:func:`jepa_dynamics.theory.modes.decompose`) give per mode ``(lam_i, rho_i, sigma2_i)``; the
per-feature theory of sections 5-6 applied mode by mode (exact in the commuting case, an
approximation otherwise -- the departure measures say how far the data are from it) gives
each mode's critical time for JEPA and MAE at each depth, and so the predicted order.

* :func:`mode_table` -- the long-format table (one row per depth and mode) of
  ``modes.csv``: ``depth, feature, lam, rho, sigma2, variance_share, t_star_jepa,
  t_star_mae, rank_jepa, rank_mae`` (every column: ``docs/columns.md``).
* :func:`predicted_times` -- per-mode ``t_star`` of one objective and depth, ``inf`` for
  modes that never rise from ``eps`` to ``fraction * w_star``.
* :func:`run_spectrum` -- what ``jepa-dynamics spectrum`` writes: ``modes.csv``,
  ``covariances.npz`` and ``spectrum.png``.

Conventions.  ``feature`` is the mode's index (from 0) in :func:`~jepa_dynamics.theory.modes.decompose`'s order
(decreasing ``rho``).  ``variance_share = sigma2_i / tr(Sxx)``: the share of the context's
total variance along the unit direction ``q_i`` (the shares sum to 1 exactly when the
``q_i`` are orthonormal, i.e. in the commuting case).  A mode is *never learned* --
``t_star = inf``, ranked last (all such modes share the rank ``k`` after the ``k``
learned ones; ranks count from 0) -- when ``lam <= 0`` (docs/theory.md section 4), or when ``eps >= fraction * w_star``
(its fixed point ``w_star``, JEPA ``rho^L``, MAE ``rho^(L/(L+1))``, is so small that the
response never rises through the critical level: it starts at or above it, or decays).
Rank 0 is learned first; ties in ``t_star`` share the smaller rank.
"""

from __future__ import annotations

import os

import numpy as np

from ..theory import modes as modes_mod
from .. import records
from ..theory import joint, spec, balanced as theory
from . import views as views_mod

__all__ = ["MODE_COLUMNS", "predicted_times", "mode_syy", "mode_fixed_points", "ranks", "mode_table", "compute",
           "provenance", "write_spectrum", "run_spectrum", "spectrum_figure", "check_eps_fraction"]

MODE_COLUMNS = ("depth", "feature", "lam", "rho", "sigma2", "variance_share", "t_star_jepa",
                "t_star_mae", "rank_jepa", "rank_mae")
NOTES = {
    "feature": "index (from 0) of the generalised eigenvector q_i of (sym(Sxy), Sxx), ordered by decreasing rho",
    "variance_share": "sigma2_i / tr(Sxx): share of the context variance along the unit direction q_i",
    "t_star": ("exact per-feature t_star (docs/theory.md sections 2-4) of the mode's (lam, rho) at this depth, in "
                      "gradient-flow time; inf = never learned (lam <= 0, or eps >= fraction * w_star)"),
    "rank": "predicted order of learning, from 0 (0 = first); never-learned modes share the last rank",
}


def check_eps_fraction(eps, fraction):
    eps = float(spec.check_positive(eps, "eps"))
    fraction = float(spec.check_unit_interval(fraction, "fraction"))
    return eps, fraction


def predicted_times(objective: str, depth: int, lam, rho, eps: float, fraction: float = 0.5, *, sigma2=None,
                    syy=None) -> np.ndarray:
    """Per-mode ``t_star`` of the per-feature theory; ``inf`` where the mode is never learned
    (``lam <= 0`` or ``eps >= fraction * w_star``, see the module docstring).

    ``barlow`` and ``vicreg`` (docs/theory.md section 16) take each mode's ``sigma2`` and target variance
    ``syy`` (:func:`mode_syy`; Barlow needs neither); a mode whose growth rate ``g`` is not positive is
    never learned."""
    lam = np.asarray(lam, dtype=np.float64)
    out = np.full(lam.shape, np.inf)
    if objective in spec.JOINT_OBJECTIVES:
        sigma2, syy = (np.ones_like(lam) if v is None else np.asarray(v, dtype=np.float64) for v in (sigma2, syy))
        for i in range(lam.size):
            try:
                out[i] = float(joint.critical_time(objective, depth, lam[i], eps, fraction, sigma2=sigma2[i],
                                                   syy=syy[i]))
            except spec.SpecError:
                out[i] = np.inf
        return out
    rho = np.asarray(rho, dtype=np.float64)
    ok = lam > 0
    ok[ok] = eps < fraction * spec.fixed_point(objective, depth, rho[ok])
    for i in np.flatnonzero(ok):  # one at a time: a time past float64 is "never" here, not an error
        try:
            out[i] = float(theory.critical_time_unchecked(objective, depth, lam[i], rho[i], eps, fraction))
        except spec.SpecError:
            out[i] = np.inf
    return out


def mode_syy(m: modes_mod.Modes, syy) -> np.ndarray:
    """The target variance along each mode, ``syy_i = q_i^T Syy q_i`` (the joint families' ``syy``)."""
    return np.einsum("ji,jk,ki->i", m.q, np.asarray(syy, dtype=np.float64), m.q)


def mode_fixed_points(objective: str, depth: int, m: modes_mod.Modes, syy=None) -> np.ndarray:
    """Each mode's ``w_star`` (JEPA ``|rho|^L``, MAE ``|rho|^(L/(L+1))``; Barlow and VICReg ``sqrt(g / q)``
    at the mode's ``(lam, sigma2, syy)``, ``inf`` where ``g <= 0``)."""
    if objective not in spec.JOINT_OBJECTIVES:
        return np.asarray(spec.fixed_point(objective, depth, np.abs(m.rho)), dtype=np.float64)
    s_yy = np.ones(m.dim) if syy is None else mode_syy(m, syy)
    out = np.full(m.dim, np.inf)
    for i in range(m.dim):
        try:
            out[i] = float(joint.fixed_point(objective, m.lam[i], m.sigma2[i], s_yy[i]))
        except spec.SpecError:
            pass
    return out


def ranks(t_star) -> np.ndarray:
    """0 = smallest ``t_star``; ties share the smaller rank; every ``inf`` gets ``k`` (the number of finite ones)."""
    t = np.asarray(t_star, dtype=np.float64)
    finite = np.isfinite(t)
    out = np.full(t.shape, int(finite.sum()), dtype=np.int64)
    vals = t[finite]
    out[finite] = np.searchsorted(np.sort(vals), vals, side="left")
    return out


def mode_table(m: modes_mod.Modes, depths, eps: float, fraction: float = 0.5) -> dict:
    """``{column: array}`` in :data:`MODE_COLUMNS` order, depth-major (long format)."""
    depths = [spec.check_depth(d) for d in np.atleast_1d(depths)]
    eps, fraction = check_eps_fraction(eps, fraction)
    d = m.dim
    share = m.sigma2 / np.trace(m.sxx)
    cols = {k: [] for k in MODE_COLUMNS}
    for depth in depths:
        t = {obj: predicted_times(obj, depth, m.lam, m.rho, eps, fraction) for obj in spec.OBJECTIVES}
        cols["depth"].append(np.full(d, depth, dtype=np.int64))
        cols["feature"].append(np.arange(d))
        cols["lam"].append(m.lam)
        cols["rho"].append(m.rho)
        cols["sigma2"].append(m.sigma2)
        cols["variance_share"].append(share)
        for obj in spec.OBJECTIVES:
            cols[f"t_star_{obj}"].append(t[obj])
            cols[f"rank_{obj}"].append(ranks(t[obj]))
    return {k: np.concatenate(v) for k, v in cols.items()}


def _provenance(command, cov: views_mod.Covariances, m, depths, eps, fraction, extra=None):
    departure = modes_mod.departure(cov.sxx, cov.sxy, m)
    params = {"source": cov.source, "data": cov.params, "n": cov.n, "d": cov.dim, "depths": list(depths),
              "eps": eps, "fraction": fraction,
              "covariances": "centred empirical moments, divisor n (Sxy = E[(x - mx)(y - my)^T])",
              "departure_from_commuting": departure,
              "never_learned_lam_nonpositive": int(np.sum(m.lam <= 0))}
    params.update(NOTES)
    params.update(extra or {})
    return records.provenance_lines(command, params)


def compute(views: views_mod.Views, *, progress=None):
    """``(covariances, modes)`` of ``views`` (one streamed pass, then the decomposition)."""
    cov = views_mod.covariances(views, progress=progress)
    return cov, modes_mod.decompose(cov.sxx, cov.sxy, name=views.name)


def provenance(command, cov, m, depths, eps, fraction, extra=None):
    """The ``#`` lines of every file ``spectrum`` writes (source, data, departure, notes)."""
    return _provenance(command, cov, m, depths, eps, fraction, extra)


def write_spectrum(cov, m, table, out_dir: str, header) -> None:
    """``modes.csv``, ``covariances.npz`` and ``spectrum.png`` into ``out_dir`` (each through a
    temporary file)."""
    fig = spectrum_figure(table, m, title=_title(cov))
    os.makedirs(out_dir, exist_ok=True)
    records.write_csv_atomic(os.path.join(out_dir, "modes.csv"), header, MODE_COLUMNS,
                             [table[k] for k in MODE_COLUMNS])
    records.save_npz_atomic(os.path.join(out_dir, "covariances.npz"), sxx=cov.sxx, sxy=cov.sxy, syy=cov.syy,
                            mean_x=cov.mean_x, mean_y=cov.mean_y, n=cov.n)
    from .._style import save_figure

    save_figure(fig, os.path.join(out_dir, "spectrum.png"))


def run_spectrum(views: views_mod.Views, depths, eps: float, out_dir: str, *, fraction: float = 0.5,
                 command: str | None = None, progress=None):
    """Covariances, modes and the predicted orders of ``views`` into ``out_dir``:
    ``modes.csv``, ``covariances.npz`` (``sxx, sxy, syy, mean_x, mean_y, n``; readable by
    :func:`jepa_dynamics.theory.modes.load_covariances`) and ``spectrum.png``.

    Everything is validated and computed before the first file is written.  Returns
    ``(covariances, modes, table)``."""
    depths = [spec.check_depth(d) for d in np.atleast_1d(depths)]
    eps, fraction = check_eps_fraction(eps, fraction)
    spec.check_writable_dir(out_dir, "out")
    command = command or f"jepa_dynamics.realdata.spectrum.run_spectrum({views.source!r}, depths={depths}, eps={eps!r})"
    cov, m = compute(views, progress=progress)
    table = mode_table(m, depths, eps, fraction)
    write_spectrum(cov, m, table, out_dir, provenance(command, cov, m, depths, eps, fraction))
    return cov, m, table


def _title(cov) -> str:
    name = cov.params.get("dataset", os.path.basename(cov.source.removeprefix("npz:")))
    return f"{name}: n = {cov.n}, d = {cov.dim}"


def spectrum_figure(table: dict, m: modes_mod.Modes, *, depth=None, title: str = "", top: int = 10):
    """``lam`` against ``rho`` per mode, one row per depth (``depth``: one depth or a list; default
    every depth in ``table``) and one column per objective, coloured by the predicted rank on one
    colour scale shared by every panel (one colourbar); the first ``top`` modes of each panel carry
    their rank; never-learned modes are grey crosses (``lam <= 0`` ones on the bottom edge)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    from .._style import OBJECTIVE_LABEL, new_figure, style

    depths = sorted(np.unique(table["depth"]).astype(int).tolist()) if depth is None \
        else [int(d) for d in np.atleast_1d(depth)]
    lam_all = table["lam"]
    floor = lam_all[lam_all > 0].min() / 3 if np.any(lam_all > 0) else 1e-3
    ranks_learned = [table[f"rank_{o}"][np.isfinite(table[f"t_star_{o}"]) & np.isin(table["depth"], depths)]
                     for o in spec.OBJECTIVES]
    norm = Normalize(0, max([int(r.max()) for r in ranks_learned if r.size] + [1]))
    cmap = "viridis_r"
    with style():
        fig, axes = new_figure(len(depths), 2, width=4.0, height=2.9, sharex=True, sharey=True)
        for row, d in zip(axes, depths):
            sel = table["depth"] == d
            lam, rho = table["lam"][sel], table["rho"][sel]
            lam_plot = np.where(lam > 0, lam, floor)
            for ax, obj in zip(row, spec.OBJECTIVES):
                rank = table[f"rank_{obj}"][sel]
                learned = np.isfinite(table[f"t_star_{obj}"][sel])
                ax.scatter(rho[~learned], lam_plot[~learned], marker="x", s=14, color="0.6", lw=0.8)
                order = np.argsort(-rank[learned])
                ax.scatter(rho[learned][order], lam_plot[learned][order], c=rank[learned][order], cmap=cmap,
                           norm=norm, s=22, edgecolor="k", lw=0.3)
                for i in np.flatnonzero(learned & (rank < top)):
                    ax.annotate(str(rank[i]), (rho[i], lam_plot[i]), textcoords="offset points", xytext=(3, 3),
                                fontsize=7)
                ax.set_yscale("log")
                ax.set_title(f"{OBJECTIVE_LABEL[obj]}, L = {d}: predicted order "
                             f"({int((~learned).sum())} never learned)", fontsize=9)
            row[0].set_ylabel(r"$\lambda_i$ (covariance)")
        for ax in axes[-1]:
            ax.set_xlabel(r"$\rho_i$ (regression coefficient of the mode)")
        fig.colorbar(ScalarMappable(norm, cmap), ax=axes, label="predicted rank (0 = learned first), every panel",
                     shrink=min(1.0, 0.5 + 0.15 * len(depths)), fraction=0.04, aspect=12 * len(depths))
        fig.legend(handles=[Line2D([], [], marker="o", color="0.5", mec="k", mew=0.3, ls="",
                                   label=f"learned (colour: predicted rank; number: rank, first {top})"),
                            Line2D([], [], marker="x", color="0.6", ls="", label="never learned")],
                   loc="outside lower center", ncols=2, frameon=False, fontsize=8)
        fig.suptitle((f"{title}\n" if title else "") + r"modes by $\lambda$ and $\rho$ ($\lambda \leq 0$ on the "
                     "bottom edge), one row per depth", fontsize=10)
    return fig
