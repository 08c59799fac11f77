"""Speed of the beyond-balanced predictions (docs/theory.md section 9): gradient-flow rows with the new sweep
dimensions, and GD-map rows x steps per second.

    PYTHONPATH=. python3 benchmarks/bench_aligned.py

Prints JSON: seconds for 10^5 gradient-flow rows of each new dimension (unbalanced stop-gradient
JEPA and MAE, balanced weight decay: one quadrature a row; EMA, and EMA with weight decay and a
signed predictor init: the IMEX integration), scipy's solve_ivp on 24 of the integrated rows side by
side (median time a row, and the largest relative difference in t*), and the GD map's row-steps per
second.  Writes benchmarks/results/aligned.json too."""

from __future__ import annotations

import json
import time

import numpy as np

from jepa_dynamics.theory import aligned, gd


def main():
    out = {}
    rng = np.random.default_rng(0)
    n = 100_000
    depth = rng.integers(1, 5, n)
    lam, rho = rng.uniform(0.5, 1.5, n), rng.uniform(0.3, 1.2, n)
    eps = 1e-4 * rho**depth
    a0 = eps ** (1.0 / depth)
    v0 = a0 * rng.uniform(-3, 3, n)
    aligned.predict("jepa", depth[:10], lam[:10], rho[:10], eps[:10], v0[:10])  # warm-up
    t = time.perf_counter()
    pred = aligned.predict("jepa", depth, lam, rho, eps, v0)
    out["jepa_sg_gf_rows_1e5_s"] = time.perf_counter() - t
    out["jepa_sg_learned_fraction"] = float(pred.learned.mean())

    # rows of the other new dimensions, 10^5 each (warm: compiled shapes reused, as in a second sweep)
    cases = {
        "mae_unbalanced": ("mae", {"predictor_init": v0}),                       # quadrature
        "weight_decay_balanced": ("jepa", {"weight_decay": 1e-7}),               # quadrature
        "ema_balanced": ("jepa", {"ema_rate": 10 ** rng.uniform(-2, 4, n)}),    # IMEX integration
        "ema_weight_decay_signed_v0": ("jepa", {"ema_rate": 10 ** rng.uniform(-2, 4, n), "weight_decay": 1e-7,
                                                "predictor_init": v0}),
    }
    for name, (objective, kw) in cases.items():
        few = {k: (v[:64] if np.ndim(v) else v) for k, v in kw.items()}
        aligned.predict(objective, depth[:64], lam[:64], rho[:64], eps[:64], **few)  # warm-up
        t = time.perf_counter()
        pred = aligned.predict(objective, depth, lam, rho, eps, **kw)
        out[f"{name}_rows_1e5_s"] = time.perf_counter() - t
        out[f"{name}_learned_fraction"] = float(pred.learned.mean())

    # side by side: what a user would otherwise write, scipy's solve_ivp of the L + 1 (+ EMA) scalars
    # with a terminal event (Radau for the stiff EMA rows), on 24 of the EMA / weight-decay rows
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_aligned import direct  # noqa: E402

    kw = cases["ema_weight_decay_signed_v0"][1]
    pick = np.flatnonzero(pred.learned & (pred.critical_time < 1e6))[:24]
    ours, theirs, err = [], [], []
    for i in pick:
        args = dict(ema_rate=kw["ema_rate"][i], weight_decay=1e-7)
        t = time.perf_counter()
        p1 = aligned.predict("jepa", depth[i], lam[i], rho[i], eps[i], v0[i], **args)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        t_ref, _ = direct("jepa", int(depth[i]), lam[i], rho[i], eps[i], v0[i], 0.5 * abs(float(p1.w_inf)),
                          kappa=args["ema_rate"], beta=1e-7, t_max=1e7)
        theirs.append(time.perf_counter() - t)
        err.append(abs(t_ref / float(p1.critical_time) - 1))
    out["scipy_rows"] = int(pick.size)
    out["scipy_median_ms_per_row"] = float(np.median(theirs) * 1e3)
    out["ours_batched_us_per_row"] = out["ema_weight_decay_signed_v0_rows_1e5_s"] / n * 1e6
    out["ours_single_row_median_ms"] = float(np.median(ours) * 1e3)
    out["scipy_over_ours_batched"] = out["scipy_median_ms_per_row"] * 1e3 / out["ours_batched_us_per_row"]
    out["max_rel_diff_vs_scipy"] = float(max(err))

    rows = 8192
    d = np.full(rows, 2)
    lam_g, rho_g = np.full(rows, 1.0), rng.uniform(0.5, 0.9, rows)
    a0_g = np.full(rows, 0.05)
    level = 0.5 * rho_g**2
    gd.critical_steps("jepa", d[:64], lam_g[:64], rho_g[:64], a0_g[:64], a0_g[:64], level[:64], lr=0.05)
    t = time.perf_counter()
    k, steps = gd.critical_steps("jepa", d, lam_g, rho_g, a0_g, a0_g, level, lr=0.05)
    dt = time.perf_counter() - t
    out["gd_rows"] = rows
    out["gd_total_steps"] = int(steps.sum())
    out["gd_row_steps_per_s"] = float(steps.sum() / dt)
    out["gd_s"] = dt

    # rows of very different lengths (4 plateau lengths x 4 learning rates): critical_steps batches
    # them by estimated length, so short rows do not wait for the longest
    rows = 4096
    d, lam_g, rho_g = np.full(rows, 2), np.ones(rows), rng.uniform(0.5, 0.9, rows)
    a0_g, lr_g = rng.choice([0.03, 0.05, 0.1, 0.2], rows), rng.choice([0.005, 0.02, 0.05, 0.2], rows)
    level = 0.5 * rho_g**2
    gd.critical_steps("jepa", d[:64], lam_g[:64], rho_g[:64], a0_g[:64], a0_g[:64], level[:64], lr=lr_g[:64])
    t = time.perf_counter()
    k, steps = gd.critical_steps("jepa", d, lam_g, rho_g, a0_g, a0_g, level, lr=lr_g)
    dt = time.perf_counter() - t
    out["gd_mixed_rows"] = rows
    out["gd_mixed_steps_max_mean"] = [int(steps.max()), float(steps.mean())]
    out["gd_mixed_row_steps_per_s"] = float(steps.sum() / dt)
    print(json.dumps(out, indent=1))
    from pathlib import Path
    (Path(__file__).resolve().parent / "results" / "aligned.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
