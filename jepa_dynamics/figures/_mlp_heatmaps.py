"""MLP encoders' per-feature learning progress (figure group ``mlp_heatmaps``)."""

from __future__ import annotations

import numpy as np

from ..training import data
from .. import _style as plots
from ..theory import balanced as theory
from ..training.analysis import critical_times as _crossing_times
from ..training.analysis import order_correlation
from .._style import OBJECTIVE_LABEL
from ._common import OBJECTIVES, _train


# --- 4. MLP heatmaps --------------------------------------------------------------------------------------

def _progress(responses):
    """``(gamma_i(t) - gamma_i(0)) / (max_t gamma_i - gamma_i(0))``: 0 at init, 1 at the peak."""
    g0 = responses[0]
    return (responses - g0) / np.maximum(np.max(responses, axis=0) - g0, 1e-300)


def mlp_heatmaps(fast: bool = False):
    r"""tanh MLP encoders (depth 4, width = ``d``, balanced init ``eps = 0.016``, sampled
    minibatches of 256, SGD lr 0.1) on ``same-trend`` and ``reversed-trend`` data with
    ``lam`` from 1 to 1.25 and ``rho`` from 0.5 to 1 (``d = 40``; 12 when ``fast``).

    Colour: the response ``gamma_i`` (docs/theory.md section 13, estimated by the train module on a
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
