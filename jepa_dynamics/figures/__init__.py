r"""The paper's six figure groups (``theory-spec.md`` section 9) and three beyond it, one function each.

Every function takes ``fast`` (small sizes, for CI and notebooks) and returns a
matplotlib :class:`~matplotlib.figure.Figure` built from the package's API; the
notebooks and ``jepa-dynamics figures`` only call these.  :func:`render` writes
``NAME.png`` (and ``NAME.pdf``) for each name of :data:`FIGURES`.

Style (:mod:`jepa_dynamics._style`): Okabe-Ito colours, depth = colour, JEPA solid and
MAE dashed, time in gradient-flow units (plain gradient descent: ``t = lr * step``).

=================  =====================================================================
name               what it shows
=================  =====================================================================
ode_dynamics       ``w(t)/w*`` from the ODE: ``lam`` varied and ``rho`` varied, JEPA vs MAE,
                   depths 1, 2, 4, time in units of a reference feature's critical time
critical_times     ``t*`` versus ``rho`` and versus ``lam``: exact, ODE, asymptotic, and
                   trained deep linear networks (balanced init, population loss, GD)
order_inversion    two features, ``lam`` up while ``rho`` down: MAE learns them in one order,
                   deep JEPA in the other (theory and trained networks)
mlp_heatmaps       tanh MLP encoders on ``same-trend`` / ``reversed-trend``: per-feature
                   learning progress over training steps, JEPA vs MAE
generative_models  ``static`` (noisy views) and ``dynamic`` (AR(1)) data: which features
                   JEPA and MAE learn first, by depth (theory and trained networks)
linear_probe       linear-probe accuracy over training on encoder checkpoints, for a label
                   of the high-``rho`` features and a control label of the high-``lam`` ones
matrix_study       full-matrix engine on non-commuting data: error of the per-feature theory in the
                   mode basis against mixing / non-orthogonality, trained networks, random init
                   (issue 12)
real_data          digits views: observed vs predicted critical time and order of the modes,
                   JEPA vs MAE by depth, and logistic probes on all / top- / bottom-variance
                   inputs over training (issue 10)
beyond_balanced    JEPA past the paper's assumptions: collapse map under aligned init, t* against
                   the EMA rate, weight-decay survival, GD critical steps against the learning rate
                   (issue 9; :mod:`jepa_dynamics.figures.beyond`)
=================  =====================================================================
"""

from __future__ import annotations

import os

import numpy as np

from ..training import data
from .. import _style as plots, records
from ..theory import spec, balanced as theory
from ..training.analysis import critical_times as _crossing_times
from ..training.analysis import order_correlation
from .._style import FEATURE_COLOURS, OBJECTIVE_LABEL, OBJECTIVE_STYLE, TIME_LABEL, depth_colour, shade

OBJECTIVE_COLOUR = {"jepa": "#0072B2", "mae": "#D55E00"}

__all__ = ["FIGURES", "ode_dynamics", "critical_times", "order_inversion", "mlp_heatmaps", "generative_models",
           "linear_probe", "probe_accuracy", "real_data", "real_data_runs", "render"]

OBJECTIVES = ("jepa", "mae")


def _ls(objective):
    return OBJECTIVE_STYLE[objective]["linestyle"]


def _train(objective, depth, lam, rho, eps, t_end, *, lr, max_steps=None, records=800, grid="log", **kwargs):
    """Train a network (``jepa_dynamics.training.train``) for gradient-flow time ``t_end`` with plain
    gradient descent at learning rate ``lr``, raised to ``t_end / max_steps`` if it would
    take more than ``max_steps`` steps."""
    from ..training import train

    if max_steps is not None:
        lr = max(lr, t_end / max_steps)
    steps = int(np.ceil(t_end / lr))
    config = train.TrainConfig(objective=objective, depth=depth, lam=tuple(np.asarray(lam, float)),
                               rho=tuple(np.asarray(rho, float)), eps=eps, lr=lr, steps=steps,
                               records=min(records, steps), grid=grid, optimizer="sgd", **kwargs)
    return train.train(config)


def _plain_ticks(ax, which="both"):
    """Log-axis tick labels as plain numbers (``0.5, 1, 2``) instead of ``5 x 10^-1``."""
    from matplotlib.ticker import FuncFormatter

    def label(v, _):
        mantissa = v / 10 ** np.floor(np.log10(v)) if v > 0 else 0
        return f"{v:g}" if np.round(mantissa, 6) in (1, 2, 3, 5) else ""

    fmt = FuncFormatter(label)
    for axis in ((ax.xaxis, ax.yaxis) if which == "both" else (ax.xaxis,) if which == "x" else (ax.yaxis,)):
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(fmt)


def _legend_handles(items):
    """Legend entries from ``(label, line kwargs)`` pairs (no data drawn)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], **kw, label=label) for label, kw in items]


def _depth_handles(depths):
    return _legend_handles([(f"L = {d}", dict(color=depth_colour(d, depths), lw=2.5)) for d in depths])


def _objective_handles(colour="0.3"):
    return _legend_handles([(OBJECTIVE_LABEL[o], dict(color=colour, linestyle=_ls(o))) for o in OBJECTIVES])


# --- 1. ODE trajectories -------------------------------------------------------------------------------

def ode_dynamics(fast: bool = False):
    """Per-feature ``w(t)/w*`` integrated by :func:`jepa_dynamics.engines.ode.trajectory`.

    Top row: ``lam`` in {0.5, 1, 2} at ``rho = 0.6``; bottom row: ``rho`` in {0.3, 0.6, 0.9}
    at ``lam = 1``; columns JEPA and MAE; depths 1, 2, 4 (colour), ``eps = 1e-3``.  Time is
    divided by the critical time of the shared reference feature ``(lam, rho) = (1, 0.6)``
    of the same objective and depth, so each depth's curves centre on 1 and their spread
    is the effect of the varied parameter.  Each panel prints ``t*`` of the last-learned
    over the first-learned feature."""
    from ..engines import ode

    depths, eps, ref = (1, 2, 4), 1e-3, (1.0, 0.6)
    rows = (("lam", (0.5, 1.0, 2.0), 0.6), ("rho", (0.3, 0.6, 0.9), 1.0))
    x = np.geomspace(0.2, 5.0, 120 if fast else 400)
    amounts = (0.35, 0.65, 1.0)
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=5.0, height=3.5, sharex=True, sharey=True)
        for r, (name, values, fixed) in enumerate(rows):
            values = np.asarray(values)
            lam = values if name == "lam" else np.full(values.size, fixed)
            rho = np.full(values.size, fixed) if name == "lam" else values
            for c, obj in enumerate(OBJECTIVES):
                ax = axes[r, c]
                ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
                ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
                ratios = []
                for d in depths:
                    t_ref = float(theory.critical_time(obj, d, *ref, eps))
                    w = ode.trajectory(obj, d, lam, rho, eps, x * t_ref)
                    w_star = theory.fixed_point(obj, d, rho)
                    t_star = theory.critical_time(obj, d, lam, rho, eps)
                    ratios.append(t_star[0] / t_star[-1])
                    for k in range(values.size):
                        ax.plot(x, w[k] / w_star[k], color=shade(depth_colour(d, depths), amounts[k]),
                                linestyle=_ls(obj))
                sym = r"\lambda" if name == "lam" else r"\rho"
                text = "\n".join(f"L={d}: {q:.2g}" for d, q in zip(depths, ratios))
                ax.text(0.03, 0.97, f"$t^*({sym}={values[0]:g})\\,/\\,t^*({sym}={values[-1]:g})$\n" + text,
                        transform=ax.transAxes, va="top", fontsize=8.5,
                        bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
                other = r"\rho" if name == "lam" else r"\lambda"
                ax.set_title(f"{OBJECTIVE_LABEL[obj]}: ${sym}$ = {', '.join(f'{v:g}' for v in values)} "
                             f"(light to dark), ${other}$ = {fixed:g}")
                ax.set_xscale("log")
                _plain_ticks(ax, "x")
                if r == 1:
                    ax.set_xlabel(r"$t\,/\,t^*_{\rm ref}$  (gradient-flow time over $t^*$ of $\lambda$=1, $\rho$=0.6)")
                if c == 0:
                    ax.set_ylabel(r"response $w(t)\,/\,w^*$")
        axes[0, 1].legend(handles=_depth_handles(depths) + _objective_handles(), loc="lower right", frameon=False)
        fig.suptitle(rf"Per-feature ODE dynamics ($\epsilon$ = {eps:g}): both objectives learn large $\lambda$ first; "
                     r"only JEPA learns large $\rho$ first, more so with depth", fontsize=11)
    return fig


# --- 2. critical times -----------------------------------------------------------------------------------

def critical_times(fast: bool = False):
    r"""``t*`` versus ``rho`` (``lam = 1``) and versus ``lam`` (``rho = 0.6``), depths 1, 2, 4.

    Lines: the exact closed form; dotted: the small-``eps`` divergent asymptotics; crosses:
    the diffrax ODE; open circles: deep linear networks (balanced init, population loss,
    plain gradient descent, ``t = lr * step``) read off their recorded responses.
    ``eps = 2e-3``, ``fraction = 0.5``."""
    from ..engines import ode

    depths, eps, lam0, rho0 = (1, 2, 4), 2e-3, 1.0, 0.6
    rho_line, lam_line = np.linspace(0.3, 0.95, 80), np.geomspace(0.5, 4.0, 80)
    n_pts = 3 if fast else 6
    rho_pts, lam_pts = np.linspace(0.3, 0.95, n_pts), np.geomspace(0.5, 4.0, n_pts)
    max_steps = 40_000 if fast else 250_000
    trained, errors = {}, []
    for obj in OBJECTIVES:
        for d in depths:
            # one network for the rho sweep and one for the lam sweep, each with a feature per point
            for key, lam, rho in (("rho", np.full(n_pts, lam0), rho_pts), ("lam", lam_pts, np.full(n_pts, rho0))):
                exact = theory.critical_time(obj, d, lam, rho, eps)
                res = _train(obj, d, lam, rho, eps, 1.15 * exact.max(), lr=0.02 if obj == "jepa" else 0.002,
                             max_steps=max_steps,
                             loss="population", records=400 if fast else 1500)
                trained[obj, d, key] = res.critical_times()
                errors.append(np.nanmax(np.abs(trained[obj, d, key] / exact - 1)))
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=4.8, height=3.4)
        for r, obj in enumerate(OBJECTIVES):
            for c, xname in enumerate(("rho", "lam")):
                ax = axes[r, c]
                for d in depths:
                    col = depth_colour(d, depths)
                    if xname == "rho":
                        xl, lam_l, rho_l, xp, lam_p, rho_p = rho_line, lam0, rho_line, rho_pts, lam0, rho_pts
                        emp = trained[obj, d, "rho"]
                    else:
                        xl, lam_l, rho_l, xp, lam_p, rho_p = lam_line, lam_line, rho0, lam_pts, lam_pts, rho0
                        emp = trained[obj, d, "lam"]
                    ax.plot(xl, theory.critical_time(obj, d, lam_l, rho_l, eps), color=col, ls=_ls(obj))
                    ax.plot(xl, theory.critical_time_asymptotic(obj, d, lam_l, rho_l, eps), color=col, ls=":",
                            lw=1.3)
                    ax.plot(xp, ode.critical_time(obj, d, lam_p, rho_p, eps), "x", color=col, ms=7, mew=1.5)
                    ax.plot(xp, emp, "o", mfc="none", mec=col, ms=10, mew=1.3)
                ax.set_yscale("log")
                _plain_ticks(ax, "y")
                if xname == "lam":
                    ax.set_xscale("log")
                    _plain_ticks(ax, "x")
                    ax.set_xlabel(rf"$\lambda$ (cross-covariance), $\rho$ = {rho0:g}")
                else:
                    ax.set_xlabel(rf"$\rho$ (regression coefficient), $\lambda$ = {lam0:g}")
                ax.set_ylabel(r"critical time $t^*$ (gradient-flow time)")
                ax.set_title(OBJECTIVE_LABEL[obj])
        methods = _legend_handles([
            ("exact", dict(color="0.3")), ("asymptotic", dict(color="0.3", ls=":")),
            ("ODE", dict(color="0.3", marker="x", ls="none", ms=7, mew=1.5)),
            ("trained network", dict(color="0.3", marker="o", mfc="none", ls="none", ms=9))])
        axes[0, 1].legend(handles=methods, loc="upper right", frameon=False)
        axes[1, 1].legend(handles=_depth_handles(depths), loc="upper right", frameon=False)
        fig.suptitle(rf"Critical times ($\epsilon$ = {eps:g}, $w = w^*/2$): JEPA's $t^*$ falls with $\rho$, "
                     r"more with depth; MAE's barely moves." "\n" f"Trained networks within {100 * max(errors):.2g}% "
                     "of the exact values", fontsize=11)
    return fig


# --- 3. order inversion -----------------------------------------------------------------------------------

def order_inversion(fast: bool = False):
    r"""Feature A (``lam = 1.25, rho = 0.4``) against feature B (``lam = 1, rho = 0.9``).

    Left, middle: ``w/w*`` of both features for MAE and JEPA at depth 5 (lines: exact
    theory; markers: trained deep linear networks, population loss, gradient descent).
    Right: ``t*_A / t*_B`` against depth (lines: exact; markers: trained).  Above 1 means
    B (high ``rho``) is learned first.  ``eps = 1e-3``."""
    feat = {"A": (1.25, 0.4), "B": (1.0, 0.9)}
    lam, rho = np.array([feat["A"][0], feat["B"][0]]), np.array([feat["A"][1], feat["B"][1]])
    eps, show = 3e-3, 4
    depths = np.arange(1, 6)
    trained_depths = (show,) if fast else tuple(depths)
    runs = {}
    for obj in OBJECTIVES:
        for d in trained_depths:
            t_end = 2.5 * theory.critical_time(obj, d, lam, rho, eps).max()
            runs[obj, d] = _train(obj, d, lam, rho, eps, t_end, lr=0.05 if obj == "jepa" else 0.005,
                                  loss="population", records=300 if fast else 1200)
    colours = (FEATURE_COLOURS["lam"], FEATURE_COLOURS["rho"])
    names = [rf"A: $\lambda$={feat['A'][0]:g}, $\rho$={feat['A'][1]:g}",
             rf"B: $\lambda$={feat['B'][0]:g}, $\rho$={feat['B'][1]:g}"]
    with plots.style():
        fig, axes = plots.new_figure(1, 3, width=3.7, height=3.4)
        for ax, obj in zip(axes[0, :2], ("mae", "jepa")):
            res = runs[obj, show]
            w_star = theory.fixed_point(obj, show, rho)
            t_star = theory.critical_time(obj, show, lam, rho, eps)
            ts = np.geomspace(0.4 * t_star.min(), res.times[-1], 400)
            w = theory.trajectory(obj, show, lam, rho, eps, ts)
            keep = res.times > ts[0]
            idx = np.flatnonzero(keep)[:: max(1, keep.sum() // 40)]
            for k in range(2):
                ax.plot(ts, w[k] / w_star[k], color=colours[k], ls=_ls(obj), label=names[k])
                ax.plot(res.times[idx], res.responses[idx, k] / w_star[k], "o", color=colours[k], ms=4, alpha=0.8)
                ax.axvline(t_star[k], color=colours[k], lw=0.8, ls=":")
            first = "A" if t_star[0] < t_star[1] else "B"
            ax.set_xscale("log")
            _plain_ticks(ax, "x")
            ax.set_xlabel(TIME_LABEL)
            ax.set_ylabel(r"response $w(t)\,/\,w^*$")
            ax.set_title(f"{OBJECTIVE_LABEL[obj]}, L = {show}: {first} first "
                         f"($t^*_A/t^*_B$ = {t_star[0] / t_star[1]:.2f})")
        axes[0, 0].legend(handles=axes[0, 0].get_legend_handles_labels()[0][:2] + _legend_handles(
            [("trained network", dict(color="0.3", marker="o", ls="none", ms=4))]), loc="center right", frameon=False)
        ax = axes[0, 2]
        ax.axhline(1.0, color="0.5", lw=0.8)
        for obj in OBJECTIVES:
            ratio = [float(np.divide(*theory.critical_time(obj, d, lam, rho, eps))) for d in depths]
            ax.plot(depths, ratio, color="0.2", ls=_ls(obj), label=f"{OBJECTIVE_LABEL[obj]} (exact)")
            emp = [np.divide(*runs[obj, d].critical_times()) for d in trained_depths]
            ax.plot(trained_depths, emp, OBJECTIVE_STYLE[obj]["marker"], mfc="none", mec="0.2", ms=8,
                    label=f"{OBJECTIVE_LABEL[obj]} (trained)")
        ax.set_xlabel("encoder depth $L$")
        ax.set_ylabel(r"$t^*_A\,/\,t^*_B$  (> 1: B, high $\rho$, first)")
        ax.set_title("order of learning against depth")
        ax.text(depths[-1], 1.03, "B first", color="0.35", fontsize=8.5, va="bottom", ha="right")
        ax.text(depths[-1], 0.97, "A first", color="0.35", fontsize=8.5, va="top", ha="right")
        ax.legend(frameon=False, loc="upper left", fontsize=8)
        fig.suptitle(rf"Order inversion ($\epsilon$ = {eps:g}): MAE learns the high-$\lambda$ feature A first at "
                     r"every depth; deep JEPA learns the high-$\rho$ feature B first", fontsize=11)
    return fig


# --- 4. MLP heatmaps --------------------------------------------------------------------------------------

def _progress(responses):
    """``(gamma_i(t) - gamma_i(0)) / (max_t gamma_i - gamma_i(0))``: 0 at init, 1 at the peak."""
    g0 = responses[0]
    return (responses - g0) / np.maximum(np.max(responses, axis=0) - g0, 1e-300)


def mlp_heatmaps(fast: bool = False):
    r"""tanh MLP encoders (depth 4, width = ``d``, balanced init ``eps = 0.016``, sampled
    minibatches of 256, SGD lr 0.1) on ``same-trend`` and ``reversed-trend`` data with
    ``lam`` from 1 to 1.25 and ``rho`` from 0.5 to 1 (``d = 40``; 12 when ``fast``).

    Colour: the response ``gamma_i`` (spec section 8, estimated by the train module on a
    fixed batch of 16384 draws) over its largest value in the panel.  A feature counts as
    learned when its peak reaches a quarter of that; white dots mark when each learned
    feature reaches half its own rise ``(gamma_i - gamma_i(0)) / (max gamma_i - gamma_i(0))``,
    the white line the same for the balanced deep linear theory of the same depth.  Titles:
    Spearman correlations of the learned features' order with ``lam`` and ``rho``
    (+1: larger values first)."""
    dim = 12 if fast else 40
    depth, eps, lr = 4, 0.016, 0.1
    t_end = {"jepa": 1100.0, "mae": 22.0}
    fams = {"same-trend": data.same_trend(dim, (1.0, 1.25), (0.5, 1.0)),
            "reversed-trend": data.reversed_trend(dim, (1.0, 1.25), (0.5, 1.0))}
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=4.8, height=3.3)
        for r, (fam, ds) in enumerate(fams.items()):
            for c, obj in enumerate(OBJECTIVES):
                res = _train(obj, depth, ds.lam, ds.rho, eps, t_end[obj], lr=lr,
                             model="mlp", loss="sampled", batch=64 if fast else 256, width=dim, records=60 if fast else 100,
                             grid="linear", eval_batch=4096 if fast else 16384, chunk=2000)
                gamma = res.responses / res.responses.max()
                t_half = _crossing_times(res.steps, _progress(res.responses), 1.0, 0.5)
                learned = gamma.max(axis=0) >= 0.25
                w = theory.trajectory(obj, depth, ds.lam, ds.rho, eps, res.times)
                t_theory = _crossing_times(res.steps, _progress(w.T), 1.0, 0.5)
                ax = axes[r, c]
                ax.grid(False)
                im = ax.imshow(gamma.T, origin="lower", aspect="auto", cmap="cividis", vmin=0, vmax=1,
                               extent=(0, res.steps[-1], -0.5, dim - 0.5), interpolation="nearest")
                ax.plot(t_theory, np.arange(dim), "-", color="white", lw=1, alpha=0.7)
                ax.plot(t_half[learned], np.arange(dim)[learned], "o", color="white", ms=2.5 if dim > 20 else 4)
                if learned.sum() > 2:
                    rl = order_correlation(t_half[learned], ds.lam[learned])
                    rr = order_correlation(t_half[learned], ds.rho[learned])
                    stats = f"order vs $\\lambda$ {rl:+.2f}, vs $\\rho$ {rr:+.2f}"
                else:
                    stats = "fewer than 3 features learned"
                ax.set_title(f"{OBJECTIVE_LABEL[obj]}, {fam}: {learned.sum()}/{dim} learned; {stats}", fontsize=9)
                ax.set_xlabel(f"training step (SGD, lr = {lr:g})")
                ax.set_ylabel(r"feature $i$ ($\lambda_i$ increasing)")
        fig.colorbar(im, ax=axes[:, -1], shrink=0.8, label=r"response $\gamma_i$ / its largest value in the panel")
        fig.suptitle(r"tanh MLP encoders (L = 4): $\lambda_i$ rises with $i$, $\rho_i$ rises (same-trend) or falls "
                     r"(reversed-trend)." "\n"
                     r"MAE learns every feature, in the order of $\lambda$; JEPA learns the high-$\rho$ ones, in the "
                     r"order of $\rho$" "\n" r"(dots: half of each learned feature's peak; line: deep linear theory)",
                     fontsize=10.5)
    return fig


# --- 5. generative models ---------------------------------------------------------------------------------

def _generative_datasets(n):
    s = np.linspace(1.0, 0.5, n)
    m = np.linspace(0.1, 3.0, n)
    static = data.static(s, m, 0.3)
    a = np.linspace(0.95, 0.3, n)
    lam = np.linspace(0.9, 1.1, n)
    dynamic = data.dynamic(a, lam / a)
    return {"static": (static, m / (s + m), "noise share $m/(s+m)$ of the feature's variance"),
            "dynamic": (dynamic, a, r"AR(1) coefficient $a$ (slow features: large $a$)")}


def generative_models(fast: bool = False):
    r"""``static`` data (``x = z + n_x``, ``y = z + n_y``; signal ``s`` from 1 to 0.5, noise
    ``m`` from 0.1 to 3, noise correlation 0.3: the noisier features have the larger
    variance and ``lam``, and the smaller ``rho``) and ``dynamic`` data (AR(1), ``a`` from
    0.95 to 0.3 with ``lam = a v`` from 0.9 to 1.1: fast features have the larger variance).

    Top: ``lam`` and ``rho`` per feature.  Bottom: each feature's critical time relative
    to the first-learned one, exact theory (lines) for depths 1, 2, 3, and deep linear
    networks trained on minibatches sampled from the generative model (markers, depth 3;
    same-covariance Gaussian sampler).  ``eps = 0.0064``."""
    n = 6 if fast else 12
    depths, eps, trained_depth = (1, 2, 3), 0.0064, 3
    fams = _generative_datasets(n)
    with plots.style():
        fig, axes = plots.new_figure(2, 2, width=4.8, height=3.0, sharex="col",
                                     gridspec_kw={"height_ratios": (1, 1.8)})
        for c, (fam, (ds, xv, xlabel)) in enumerate(fams.items()):
            ax = axes[0, c]
            ax.plot(xv, ds.lam, "-", color="0.2", marker=".", label=r"$\lambda$ = E[$x_i y_i$]")
            ax.plot(xv, ds.rho, "-", color="0.6", marker=".", label=r"$\rho = \lambda/\sigma^2$")
            ax.plot(xv, ds.sigma2, ":", color="0.4", label=r"$\sigma^2$ = Var $x_i$")
            ax.set_title(f"{fam} data: per-feature moments")
            ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center")
            ax.set_ylim(0, max(ds.sigma2.max(), ds.lam.max()) * 1.35)
            ax = axes[1, c]
            orders = {}
            for obj in OBJECTIVES:
                for d in depths:
                    t = theory.critical_time(obj, d, ds.lam, ds.rho, eps)
                    ax.plot(xv, t / t.min(), color=depth_colour(d, depths), ls=_ls(obj))
                    orders[obj, d] = order_correlation(t, ds.rho)
                t = theory.critical_time(obj, trained_depth, ds.lam, ds.rho, eps)
                res = _train(obj, trained_depth, ds.lam, ds.rho, eps, 1.3 * t.max(),
                             lr=0.02, max_steps=15_000 if fast else 120_000, records=300 if fast else 800,
                             loss="population" if fast else "sampled", batch=64)
                ax.plot(xv, res.critical_times() / t.min(), OBJECTIVE_STYLE[obj]["marker"], mfc="none",
                        mec=depth_colour(trained_depth, depths), ms=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(r"$t^*_i\,/\,\min_j t^*_j$  (1 = learned first)")
            text = "order vs $\\rho$ (+1: high $\\rho$ first):\n" + "\n".join(
                f"L={d}: JEPA {orders['jepa', d]:+.2f}, MAE {orders['mae', d]:+.2f}" for d in depths)
            ax.text(0.02 if c == 0 else 0.98, 0.97, text, transform=ax.transAxes, va="top",
                    ha="left" if c == 0 else "right", fontsize=8,
                    bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
        fig.legend(handles=_depth_handles(depths) + _objective_handles() + _legend_handles(
            [(f"trained network, L = {trained_depth}: JEPA", dict(color=depth_colour(trained_depth, depths),
                                                                 marker="o", mfc="none", ls="none")),
             ("MAE", dict(color=depth_colour(trained_depth, depths), marker="s", mfc="none", ls="none"))]),
            loc="outside lower center", frameon=False, ncols=7)
        fig.suptitle(r"Generative models: MAE learns the noisy / fast, high-variance features first;" "\n"
                     r"deep JEPA the clean / slow, high-$\rho$ ones" + f" ($\\epsilon$ = {eps:g})", fontsize=11)
    return fig


# --- 6. linear probe --------------------------------------------------------------------------------------

TIME_NORM_LABEL = r"$t\,/\,t^*_{\rm first}$ (gradient-flow time / first $t^*$)"


def probe_accuracy(train_features, train_labels, test_features, test_labels, ridge: float = 1e-6) -> float:
    """Sign accuracy of a ridge-regression probe ``(F^T F + ridge n I)^{-1} F^T y`` fit on
    ``train_*`` (labels +-1) and evaluated on ``test_*``."""
    f = np.asarray(train_features, dtype=np.float64)
    coef = np.linalg.solve(f.T @ f + ridge * f.shape[0] * np.eye(f.shape[1]), f.T @ np.asarray(train_labels))
    pred = np.sign(np.asarray(test_features, dtype=np.float64) @ coef)
    return float(np.mean(pred == np.asarray(test_labels)))


def linear_probe(fast: bool = False):
    r"""Downstream linear probes on encoder checkpoints (deep linear, depth 4, balanced init
    ``eps = 0.0038``, gradient descent on the population loss; checkpoints log-spaced from 0.3
    to 4 times each objective's first critical time, which is the x axis).  Data: 4 high-``rho`` features (``lam = 1, rho = 0.9``) and 4
    high-``lam`` features (``lam = 1.3, rho = 0.4``).  Labels: the sign of the sum of the
    standardised high-``rho`` features, and (control) of the high-``lam`` ones.

    The probe reads the encoder's output through additive Gaussian noise of standard
    deviation 0.05 (a fixed read-out resolution; without it every invertible linear
    encoder, the initial one included, would give the same probe accuracy), is fit by
    least squares on 2000 samples and scored on 4000 fresh ones."""
    import jax

    depth, eps, noise = 4, 0.0038, 0.05
    x_min, x_max = 0.3, 4.0  # checkpoints span these multiples of the first critical time
    k = 4
    lam = np.array([1.0] * k + [1.3] * k)
    rho = np.array([0.9] * k + [0.4] * k)
    ds = data.custom(lam, rho)
    n_ckpt = 10 if fast else 25
    n_train, n_test = (1000, 2000) if fast else (2000, 4000)
    key = jax.random.PRNGKey(7)
    k_tr, k_te, k_n1, k_n2 = jax.random.split(key, 4)
    x_tr, _ = ds.sample(k_tr, n_train)
    x_te, _ = ds.sample(k_te, n_test)
    x_tr, x_te = np.asarray(x_tr), np.asarray(x_te)
    xi_tr = noise * np.asarray(jax.random.normal(k_n1, (n_train, ds.dim)))
    xi_te = noise * np.asarray(jax.random.normal(k_n2, (n_test, ds.dim)))
    z_tr, z_te = x_tr / np.sqrt(ds.sigma2), x_te / np.sqrt(ds.sigma2)
    labels = {"rho": (np.sign(z_tr[:, :k].sum(1)), np.sign(z_te[:, :k].sum(1))),
              "lam": (np.sign(z_tr[:, k:].sum(1)), np.sign(z_te[:, k:].sum(1)))}
    curves = {}
    for obj in OBJECTIVES:
        t_first = float(theory.critical_time(obj, depth, lam, rho, eps).min())
        lr = 0.05 if obj == "jepa" else 0.005
        steps = int(np.ceil(x_max * t_first / lr))
        ckpts = np.unique(np.round(np.geomspace(x_min * t_first / lr, steps, n_ckpt)).astype(int))
        res = _train(obj, depth, lam, rho, eps, steps * lr, lr=lr, loss="population", records=300,
                     checkpoints=tuple(int(s) for s in ckpts))
        times = np.array([lr * s for s in sorted(res.checkpoints)])
        acc = {g: [] for g in labels}
        for s in sorted(res.checkpoints):
            enc = res.checkpoints[s]
            f_tr = np.asarray(enc(x_tr)) + xi_tr
            f_te = np.asarray(enc(x_te)) + xi_te
            for g, (y_tr, y_te) in labels.items():
                acc[g].append(probe_accuracy(f_tr, y_tr, f_te, y_te))
        curves[obj] = (times / t_first, {g: np.array(v) for g, v in acc.items()}, res, t_first)
    with plots.style():
        fig, axes = plots.new_figure(1, 3, width=3.7, height=3.4)
        col = depth_colour(depth)
        titles = {"rho": r"label on the high-$\rho$ features", "lam": r"control: label on the high-$\lambda$ features"}
        for ax, g in zip(axes[0, :2], ("rho", "lam")):
            for obj in OBJECTIVES:
                times, acc, _, _ = curves[obj]
                ax.plot(times, acc[g], color=col, ls=_ls(obj), marker=OBJECTIVE_STYLE[obj]["marker"], ms=3.5,
                        label=OBJECTIVE_LABEL[obj])
            ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
            ax.set_xscale("log")
            _plain_ticks(ax, "x")
            ax.set_ylim(0.45, 1.01)
            ax.set_xlabel(TIME_NORM_LABEL)
            ax.set_ylabel("probe accuracy (held out)")
            ax.set_title(titles[g])
        axes[0, 1].legend(frameon=False, loc="lower right")
        ax = axes[0, 2]
        for obj in OBJECTIVES:
            _, _, res, t_first = curves[obj]
            keep = res.times >= x_min * t_first
            for g, cols, colour in (("rho", slice(0, k), FEATURE_COLOURS["rho"]),
                                    ("lam", slice(k, 2 * k), FEATURE_COLOURS["lam"])):
                ax.plot(res.times[keep] / t_first, res.responses[keep, cols].mean(1), color=colour, ls=_ls(obj))
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_ticks(ax, "x")
        ax.set_xlabel(TIME_NORM_LABEL)
        ax.set_ylabel(r"encoder response $\gamma_i$ (group mean)")
        ax.set_title("what the encoders learned")
        ax.legend(handles=_objective_handles() + _legend_handles(
            [(r"high-$\rho$ features", dict(color=FEATURE_COLOURS["rho"], lw=2.5)),
             (r"high-$\lambda$ features", dict(color=FEATURE_COLOURS["lam"], lw=2.5))]), frameon=False, fontsize=8)
        fig.suptitle(rf"Linear probes on deep linear encoder checkpoints (L = {depth}): JEPA serves the high-$\rho$ label "
                     r"first" "\n" r"and keeps the high-$\lambda$ control weak; MAE serves the control first "
                     r"($t^*_{\rm first}$: JEPA " f"{curves['jepa'][3]:.3g}, MAE {curves['mae'][3]:.3g})", fontsize=10.5)
    return fig


# --- full-matrix dynamics (issue 12) ---------------------------------------------------------------------

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
    """How far the per-feature theory carries on non-commuting data (issue 12;
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


# --- real data (issue 10) ---------------------------------------------------------------------------------

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
    r"""What JEPA and MAE learn first on real views (issue 10; ``theory-spec.md`` sections 11-12).

    Data: two augmentations of scikit-learn's digits (:func:`jepa_dynamics.realdata.views.digits`:
    1-pixel shifts and pixel noise 0.1; ``n = 17970`` pairs, ``2000`` in fast mode).  Deep linear
    JEPA and MAE (full ``64 x 64`` matrices, balanced init ``eps = 0.01`` (fast: 0.05), minibatch
    gradient descent, :mod:`jepa_dynamics.realdata.realtrain`) at depths 1-4 (fast: 1-2), compared on the
    modes predicted first (6; fast: 3).  Left: each mode's observed critical time (its response along
    ``q_i`` reaching half the per-feature ``w_star``) against the per-feature theory's.  Middle:
    Spearman's correlation of observed and predicted orders, for the spec's response
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


def _nonorth(m):
    from ..theory.modes import nonorthogonality

    return nonorthogonality(m.q)


# --- registry and rendering -------------------------------------------------------------------------------

def _beyond_balanced(fast: bool = False):
    """Section 10 of theory-spec.md: collapse map, EMA, weight decay, GD vs GF (:mod:`jepa_dynamics.figures.beyond`)."""
    from .beyond import beyond_balanced

    return beyond_balanced(fast=fast)


FIGURES = {
    "ode_dynamics": ode_dynamics,
    "critical_times": critical_times,
    "order_inversion": order_inversion,
    "mlp_heatmaps": mlp_heatmaps,
    "generative_models": generative_models,
    "linear_probe": linear_probe,
    "matrix_study": matrix_study,
    "real_data": real_data,
    "beyond_balanced": _beyond_balanced,  # issue 9: jepa_dynamics.figures.beyond
}


def check_names(names) -> list:
    """Validate figure names (``None`` = all, in :data:`FIGURES` order)."""
    if names is None:
        return list(FIGURES)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in FIGURES:
            raise spec.SpecError("only", f"unknown figure {name!r} (choose from {', '.join(FIGURES)})")
    return names


def render(names=None, out_dir: str = "figures", *, fast: bool = False, formats=("png", "pdf"), progress=None,
           dpi: int = 150) -> list:
    """Build each named figure and write ``out_dir/NAME.<format>`` for every format
    (atomically, via :func:`jepa_dynamics._style.save_figure`).  Returns the paths written.
    A tqdm bar over the figures goes to stderr (``progress=None``: only on a terminal)."""
    names = check_names(names)
    for fmt in formats:
        spec.check_choice(fmt, ("png", "pdf", "svg"), "format")
    spec.check_writable_dir(out_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    bar = records.progress_bar(len(names), enabled=progress, desc="figures", unit="figure")
    written, done = [], []
    try:
        for name in names:
            bar.set_postfix_str(name)
            fig = FIGURES[name](fast=fast)
            for fmt in formats:
                path = os.path.join(out_dir, f"{name}.{fmt}")
                plots.save_figure(fig, path, dpi=dpi)
                written.append(path)
            done.append(name)
            bar.update(1)
    except KeyboardInterrupt:
        left = [n for n in names if n not in done]
        kept = ", ".join(done) if done else "none"
        raise KeyboardInterrupt(f"interrupted: finished figures kept in {out_dir} ({kept}); "
                                f"rerun with --only {','.join(left)}") from None
    finally:
        bar.close()
    return written
