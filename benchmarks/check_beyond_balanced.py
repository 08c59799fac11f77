"""Beyond-balanced predictions (docs/theory.md section 9; jepa_dynamics.theory.aligned) against trained networks.

    PYTHONPATH=. python3 benchmarks/check_beyond_balanced.py

Trained networks: jepa_dynamics.training.train (population loss, plain SGD, float64, one feature per run):
(1) aligned unbalanced init, depths 1-4, both objectives, random V0 incl. negative, small lr:
    learned flag and the gradient-flow critical time (relative error);
(2) balanced, lr up to 0.95x the stability bound, with and without EMA / weight decay: the empirical
    critical time against aligned.predict(lr=...) (the exact GD map);
(3) EMA and weight decay at small lr against the gradient-flow prediction.
Prints JSON with the worst errors and every row."""

from __future__ import annotations

import json

import numpy as np

from jepa_dynamics.theory import aligned, gd
from jepa_dynamics.training import train


def trained(objective, depth, lam, rho, eps, lr, steps, **kw):
    config = train.TrainConfig(objective=objective, depth=depth, lam=(lam,), rho=(rho,), eps=eps, lr=lr, steps=steps,
                               records=min(100, steps), optimizer="sgd", **kw)
    return float(train.train(config).critical_times()[0])


def main():
    rng = np.random.default_rng(7)
    out = {"aligned": [], "gd": [], "ema_wd": []}
    # (1)
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 3, 4):
            for _ in range(3):
                lam, rho = rng.uniform(0.6, 1.4), rng.uniform(0.5, 1.0)
                eps = 0.15 * (rho**depth if objective == "jepa" else rho ** (depth / (depth + 1)))
                a0 = eps ** (1 / depth)
                v0 = float(a0 * rng.uniform(-2.0, 2.5))
                try:
                    p = aligned.predict(objective, depth, lam, rho, eps, v0)
                except ValueError:
                    continue
                lr = 1e-3 if objective == "jepa" else 2e-4
                t_pred = float(p.critical_time)
                if p.learned:  # at most 400k steps: a larger (still small) lr for the longest rows
                    lr = max(lr, 1.3 * t_pred / 400000)
                steps = int(1.3 * t_pred / lr) if p.learned else int(200 / lr)
                t = trained(objective, depth, lam, rho, eps, lr, steps, init="aligned", predictor_init=v0)
                out["aligned"].append(dict(objective=objective, depth=depth, lam=lam, rho=rho, eps=eps,
                                           predictor_init=v0, lr=lr, learned_theory=bool(p.learned),
                                           learned_trained=bool(np.isfinite(t)), t_theory=t_pred, t_trained=t))
    # (2)
    depth, lam, rho, eps = 2, 1.0, 0.6, 0.02
    bound = float(gd.stability_bound("jepa", depth, lam, rho))
    for frac in (0.01, 0.1, 0.5, 0.95):
        lr = frac * bound
        for kw in ({}, {"ema": 0.5}, {"weight_decay": 1e-3}):
            kappa = (1 - kw["ema"]) / lr if "ema" in kw else np.inf
            p = aligned.predict("jepa", depth, lam, rho, eps, ema_rate=kappa, weight_decay=kw.get("weight_decay", 0.0),
                                lr=lr)
            t = trained("jepa", depth, lam, rho, eps, lr, int(p.critical_step) + 3, **kw)
            out["gd"].append(dict(lr=lr, frac=frac, **kw, t_gd=float(p.critical_time), t_trained=t,
                                  rel=abs(t / float(p.critical_time) - 1)))
    # (3)
    lr = 2e-3
    for kw in ({"ema": 1 - lr * 1.0}, {"ema": 1 - lr * 0.05}, {"weight_decay": 1e-4}, {"weight_decay": 2e-4}):
        kappa = (1 - kw["ema"]) / lr if "ema" in kw else np.inf
        p = aligned.predict("jepa", 2, 0.8, 0.6, 0.01, ema_rate=kappa, weight_decay=kw.get("weight_decay", 0.0))
        t = trained("jepa", 2, 0.8, 0.6, 0.01, lr, int(1.2 * float(p.critical_time) / lr), **kw)
        out["ema_wd"].append(dict(**kw, kappa=kappa, t_theory=float(p.critical_time), t_trained=t,
                                  rel=abs(t / float(p.critical_time) - 1)))
    al = out["aligned"]
    out["summary"] = {
        "aligned_rows": len(al),
        "aligned_learned_flags_equal": sum(r["learned_theory"] == r["learned_trained"] for r in al),
        "aligned_not_learned_rows": sum(not r["learned_theory"] for r in al),
        "aligned_max_rel_t_error": max((abs(r["t_trained"] / r["t_theory"] - 1) for r in al if r["learned_theory"]
                                        and np.isfinite(r["t_trained"])), default=None),
        "gd_max_rel_error": max(r["rel"] for r in out["gd"]),
        "ema_wd_max_rel_error": max(r["rel"] for r in out["ema_wd"]),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
