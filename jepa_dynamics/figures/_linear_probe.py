"""Linear probes of encoder checkpoints over training (figure group ``linear_probe``)."""

from __future__ import annotations

import numpy as np

from ..training import data
from .. import _style as plots
from ..theory import balanced as theory
from .._style import FEATURE_COLOURS, OBJECTIVE_LABEL, OBJECTIVE_STYLE, depth_colour
from ._common import OBJECTIVES, _ls, _train, _plain_ticks, _legend_handles, _objective_handles


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
