r"""Figure ``beyond_balanced``: docs/theory.md section 9 drawn, with trained networks.

Four panels, JEPA unless named:

(a) collapse map under aligned init: the plane ``(predictor_init / eps^(1/L), eps)`` at ``L = 2``,
    the theory's learned / collapsed regions (:func:`jepa_dynamics.theory.aligned.predict`) with its
    boundaries ``V0 = -eps^(1/L)`` and ``V0^2 = rho^2 + eps^(2/L)``, and trained networks
    (``train --init aligned --predictor-init V0``, population loss, plain GD) as markers:
    filled = learned, open = collapsed;
(b) ``t*`` against the EMA rate ``kappa`` (balanced, the theory's example), with stop-gradient as
    ``kappa -> inf``, and trained networks (``--ema-rate KAPPA``: the trainer's per-step decay
    ``tau = 1 - kappa * lr``);
(c) weight decay: which balanced features survive in ``(lam, rho)`` at fixed ``beta`` and ``eps``,
    the threshold curve ``beta = lam rho^(2L-1) (2L-1)^(2L-1) / (2L)^(2L)`` (no feature survives
    below it), and trained networks (``--weight-decay BETA``);
(d) critical steps against the learning rate up to and past the stability bound: the exact map,
    gradient flow (``t* / eta``) and trained networks (balanced, population loss, plain GD).
"""

from __future__ import annotations

import numpy as np

from ..theory import aligned, gd
from .._style import OBJECTIVE_STYLE


def _train_one(depth, lam, rho, eps, *, lr, steps, **kwargs):
    """One trained single-feature network (population loss, plain GD, float64): empirical ``t*``
    at the run's own ``fraction * |w_inf|`` and whether it reached it."""
    from ..training import train

    config = train.TrainConfig(objective="jepa", depth=depth, lam=(lam,), rho=(rho,), eps=eps, lr=lr, steps=steps,
                               records=min(200, steps), optimizer="sgd", **kwargs)
    result = train.train(config)
    t = float(result.critical_times()[0])
    return t, bool(np.isfinite(t))


def beyond_balanced(fast: bool = False):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), constrained_layout=True)
    jepa = dict(OBJECTIVE_STYLE["jepa"])

    # (a) collapse map
    ax = axes[0, 0]
    depth, lam, rho = 2, 1.0, 0.6
    n = 40 if fast else 120
    ratio = np.linspace(-3.0, 20.0, n)
    eps = np.geomspace(1e-3, 2e-2, n // 2)
    R, E = np.meshgrid(ratio, eps)
    a0 = E ** (1.0 / depth)
    mag = aligned.fixed_point_magnitude("jepa", depth, lam, rho, E, R * a0)
    learned = ~aligned.collapses("jepa", depth, rho, E, R * a0)
    state = np.where(learned & (E < 0.5 * np.nan_to_num(mag)), 1.0, np.where(learned, 0.5, 0.0))
    from matplotlib.colors import ListedColormap

    ax.pcolormesh(R, E, state, cmap=ListedColormap(["#f4cccc", "#d9d9d9", "#d9ead3"]), vmin=0, vmax=1,
                  shading="auto")
    ax.plot(np.full_like(eps, -1.0), eps, color="k", lw=1.5, label="theory boundary V0 = -a0 (c = 0)")
    ax.plot(np.sqrt(rho**2 + eps ** (2 / depth)) / eps ** (1 / depth), eps, color="k", lw=1.5, ls="--",
            label="theory boundary V0^2 = rho^2 + a0^2")
    pts = [(-1.5, 1e-2), (-0.5, 1e-2), (0.5, 1e-2), (3.0, 1e-2), (6.5, 1e-2), (-1.2, 4e-3), (-0.7, 4e-3)]
    if fast:
        pts = pts[:4]
    for r, e in pts:
        a = e ** (1 / depth)
        pred = aligned.predict("jepa", depth, lam, rho, e, r * a, lr=0.5)
        steps = int(1.3 * pred.critical_step) + 10 if pred.learned else 3000
        _, ok = _train_one(depth, lam, rho, e, lr=0.5, steps=steps, init="aligned", predictor_init=r * a)
        ax.plot(r, e, "o", ms=9, mec="C3", mfc="C3" if ok else "none", mew=2)
    ax.plot([], [], "o", mec="C3", mfc="C3", label="trained: learned")
    ax.plot([], [], "o", mec="C3", mfc="none", mew=2, label="trained: collapsed")
    ax.set(xscale="linear", yscale="log", xlabel="predictor_init / eps^(1/L)", ylabel="eps",
           title=f"(a) collapse map, JEPA L={depth}, rho={rho}\n(green: learned, red: collapses, grey: starts above level)")
    ax.legend(fontsize=7, loc="upper right")

    # (b) t* vs kappa
    ax = axes[0, 1]
    depth, lam, rho, eps = 2, 0.8, 0.6, 0.01
    kappa = np.geomspace(0.03, 100, 12 if fast else 30)
    pred = aligned.predict("jepa", depth, lam, rho, eps, ema_rate=kappa)
    sg = aligned.predict("jepa", depth, lam, rho, eps)
    ax.plot(kappa, pred.critical_time, color="k", label="theory (EMA, 2-D system)")
    ax.axhline(float(sg.critical_time), color="0.5", ls=":", label="stop-gradient (kappa -> inf)")
    lr = 0.05
    for k in ([0.05, 1.0] if fast else [0.05, 0.3, 1.0, 10.0]):
        tau = 1 - lr * k
        p = aligned.predict("jepa", depth, lam, rho, eps, ema_rate=k, lr=lr)
        t, _ = _train_one(depth, lam, rho, eps, lr=lr, steps=int(1.2 * p.critical_step), ema=tau)
        ax.plot(k, t, "o", color="C3")
    ax.plot([], [], "o", color="C3", label=f"trained (GD, lr={lr}, tau = 1 - lr kappa)")
    ax.set(xscale="log", xlabel="EMA rate kappa (1/time)", ylabel="t* (gradient-flow time)",
           title=f"(b) EMA target: L={depth}, lam={lam}, rho={rho}, u0=0.1")
    ax.legend(fontsize=8)

    # (c) weight decay survival
    ax = axes[1, 0]
    depth, beta, eps = 2, 5e-4, 0.01
    m = 10 if fast else 24
    lam_g = np.geomspace(0.05, 2.0, m)
    rho_g = np.linspace(0.3, 1.0, m)
    Lg, Rg = np.meshgrid(lam_g, rho_g)
    surv = aligned.predict("jepa", depth, Lg, Rg, eps, weight_decay=beta).learned
    ax.pcolormesh(Lg, Rg, surv.astype(float), cmap=ListedColormap(["#f4cccc", "#d9ead3"]), vmin=0, vmax=1,
                  shading="auto")
    rr = np.linspace(0.3, 1.0, 100)
    n_ = 2 * depth - 1
    ax.plot(beta * (2 * depth) ** (2 * depth) / (n_**n_ * rr**n_), rr, "k", label="threshold: beta = lam rho^3 27/256")
    ax.plot([], [], " ", label="(no feature survives left of it)")
    for la, r in ([(1.0, 0.6), (0.2, 0.5), (0.5, 0.9)] if fast else [(1.0, 0.6), (0.2, 0.5), (0.5, 0.9), (1.5, 0.35),
                                                                           (0.1, 0.95), (0.3, 0.7), (1.8, 0.45)]):
        p = aligned.predict("jepa", depth, la, r, eps, weight_decay=beta, lr=0.5)
        steps = int(1.3 * p.critical_step) + 10 if p.learned else 4000
        _, ok = _train_one(depth, la, r, eps, lr=0.5, steps=steps, weight_decay=beta)
        ax.plot(la, r, "o", ms=9, mec="C3", mfc="C3" if ok else "none", mew=2)
    ax.plot([], [], "o", mec="C3", mfc="C3", label="trained: survives")
    ax.plot([], [], "o", mec="C3", mfc="none", mew=2, label="trained: decays")
    ax.set(xscale="log", xlim=(lam_g[0], lam_g[-1]), ylim=(0.3, 1.0), xlabel="lam", ylabel="rho",
           title=f"(c) weight decay beta={beta}, balanced L={depth}, eps={eps}\n(theory: green survives, red decays)")
    ax.legend(fontsize=7, loc="lower right")

    # (d) GD vs GF
    ax = axes[1, 1]
    depth, lam, rho, eps = 2, 1.0, 0.6, 0.05
    bound = float(gd.stability_bound("jepa", depth, lam, rho))
    etas = np.geomspace(0.01, 1.3 * bound, 12 if fast else 40)
    p = aligned.predict("jepa", depth, lam, rho, eps, lr=etas)
    flow = float(aligned.predict("jepa", depth, lam, rho, eps).critical_time)
    ax.plot(etas, p.critical_step, color="k", label="exact GD map k*")
    ax.plot(etas, flow / etas, color="0.5", ls=":", label="gradient flow t*/eta")
    ax.axvline(bound, color="C2", ls="--", label="stability bound 2/(lam rho^(2L-1))")
    for eta in ([0.1, 0.95 * bound, 1.1 * bound] if fast else [0.03, 0.3, 1.0, 3.0, 0.95 * bound, 1.1 * bound,
                                                                1.25 * bound]):
        k = float(aligned.predict("jepa", depth, lam, rho, eps, lr=eta).critical_step)
        t, _ = _train_one(depth, lam, rho, eps, lr=eta, steps=int(k) + 5)
        ax.plot(eta, t / eta, "o", color="C3")
    ax.plot([], [], "o", color="C3", label="trained (population loss, GD)")
    ax.set(xscale="log", yscale="log", xlabel="learning rate eta", ylabel="critical step",
           title=f"(d) GD vs gradient flow, balanced L={depth}, rho={rho}, eps={eps}")
    ax.legend(fontsize=8)
    return fig
