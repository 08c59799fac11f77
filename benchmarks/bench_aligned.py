"""Speed of section-10 predictions (issue 9): gradient-flow rows with the new sweep dimensions, and
GD-map rows x steps per second.

    PYTHONPATH=. python3 benchmarks/bench_aligned.py

Prints JSON: seconds for 10^5 unbalanced stop-gradient JEPA gradient-flow rows (quadrature),
for 10^5 rows of a --predictor-init x --weight-decay sweep (both objectives; weight-decay and MAE
rows are integrated), and the GD map's row-steps per second on 8192 rows."""

from __future__ import annotations

import json
import time

import numpy as np

from jepa_dynamics import aligned, gd


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

    m = 2048  # integrated rows (weight decay), timed separately: per-row cost
    sub = slice(0, m)
    aligned.predict("jepa", depth[:8], lam[:8], rho[:8], eps[:8], v0[:8], weight_decay=1e-4)
    t = time.perf_counter()
    aligned.predict("jepa", depth[sub], lam[sub], rho[sub], eps[sub], v0[sub], weight_decay=1e-4)
    out["jepa_weight_decay_gf_rows_2048_s"] = time.perf_counter() - t

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


if __name__ == "__main__":
    main()
