"""Accelerator measurements against the GPU targets, on whatever backend JAX runs (a GPU when one is lent).

    # on a machine with a GPU, from the source tree (no install needed), ~2-4 min:
    PYTHONPATH=. python3 benchmarks/bench_device.py --out "$OUT"
    # the same script at smoke size on this CPU (checks it runs; the numbers mean little):
    python benchmarks/bench_device.py --networks 256 --steps 200 --rows 20000 --big-networks 16

Two measurements, each against its GPU target, written to ``OUT/device.json`` (default
``benchmarks/results/device_<backend>.json``) and printed:

* **the grid engine** (``grid.train_group``, what ``jepa-dynamics train-grid`` runs): deep
  linear JEPA networks, population loss, plain SGD, float32, one compiled program for all of
  them -- ``--networks`` (16,384) at d = 16, L = 3 (target >= 1e7 network-steps/s), and
  ``--big-networks`` (4,096) at d = 64, L = 4 (the larger probe: 1.6e6).  A warm-up call
  compiles; the median of ``--repeats`` timed calls counts.  float32 products run at full
  precision (``--matmul-precision highest``, the default); on a GPU the TF32 opt-in is timed
  too, as a separate row.  Every network's empirical critical time is checked against its
  exact GD-map prediction (a run whose numbers drift is reported, not hidden).
* **the ODE critical-time path** (``ode.critical_time``, what ``sweep --method ode`` runs) on
  ``--rows`` (10^6) random rows, depths 1-4, both objectives (target <= 0.2 us a row, warm):
  a cold call (compile included) and a warm one, and the largest relative error against the
  closed form (``theory.critical_time``).

Backend, device, JAX version and the load average go into the file.  Nothing here needs a GPU:
on a CPU it measures the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import bench_grid, common  # noqa: E402

TARGET_NETWORK_STEPS = 1e7   # network-steps/s at d = 16, L = 3 (GPU target)
TARGET_ODE_US = 0.2          # microseconds a row at 10^6 rows (GPU target)


EPS = {3: [0.005, 0.01, 0.015, 0.02], 4: [0.002, 0.004, 0.006, 0.008]}  # below every feature's level


def grid_configs(n, dim, depth, steps, precision):
    """``n`` networks: 4 lr x 4 eps x n/16 seeds of deep linear JEPA on ``same-trend`` data."""
    from jepa_dynamics.training import grid

    lrs = [0.02, 0.03, 0.04, 0.05]
    eps = EPS[depth]
    seeds = list(range(max(1, n // 16)))
    return grid.configs_from(dict(objective="jepa", depth=depth, dist="same-trend", dim=dim, loss="population",
                                  steps=steps, dtype="float32", matmul_precision=precision,
                                  chunk=min(steps, 1000)),
                             {"lr": lrs, "eps": eps, "seed": seeds})


def time_grid(n, dim, depth, steps, repeats, precision):
    configs = grid_configs(n, dim, depth, steps, precision)
    pred, res, first, walls = bench_grid.time_group(configs, repeats)
    wall = statistics.median(walls)
    # fidelity: empirical crossings against the exact GD map where both exist
    theory = pred.critical_time_gd  # the exact GD map (nan past the run's steps)
    both = np.isfinite(res.critical_times) & np.isfinite(theory)
    rel = np.abs(res.critical_times[both] - theory[both]) / theory[both]
    return {"networks": len(configs), "dim": dim, "depth": depth, "steps": steps, "matmul_precision": precision,
            "first_call_s": first, "wall_s": wall, "all_s": walls,
            "network_steps_per_s": len(configs) * steps / wall,
            "crossings_checked": int(both.sum()), "max_rel_error_vs_theory": float(rel.max()) if rel.size else None}


def time_ode(rows, seed=0):
    from jepa_dynamics.engines import ode
    from jepa_dynamics import theory

    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 5, rows)
    lam = rng.uniform(0.1, 2.0, rows)
    rho = rng.uniform(0.1, 1.0, rows)
    eps = 1e-5
    half = rows // 2
    out = {"rows": rows}
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        got = np.concatenate([ode.critical_time("jepa", depth[:half], lam[:half], rho[:half], eps),
                              ode.critical_time("mae", depth[half:], lam[half:], rho[half:], eps)])
        out[f"{label}_s"] = time.perf_counter() - t0
    out["us_per_row"] = 1e6 * out["warm_s"] / rows
    want = np.concatenate([theory.critical_time("jepa", depth[:half], lam[:half], rho[:half], eps),
                           theory.critical_time("mae", depth[half:], lam[half:], rho[half:], eps)])
    out["max_rel_error_vs_closed_form"] = float(np.max(np.abs(got - want) / want))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", type=int, default=16384, help="networks at d = 16, L = 3")
    ap.add_argument("--big-networks", type=int, default=4096, help="networks at d = 64, L = 4 (0: skip)")
    ap.add_argument("--steps", type=int, default=10000, help="SGD steps per network per timed call")
    ap.add_argument("--rows", type=int, default=1_000_000, help="ODE rows (0: skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="directory for device.json (default: benchmarks/results)")
    a = ap.parse_args(argv)

    import jax

    from jepa_dynamics import __version__  # noqa: F401  (the package imports and configures JAX)

    backend = jax.default_backend()
    res = {"machine": common.machine(), "load_before": common.load(), "backend": backend,
           "devices": [str(d) for d in jax.devices()], "device_kind": jax.devices()[0].device_kind,
           "jax": jax.__version__, "targets": {"network_steps_per_s_d16_L3": TARGET_NETWORK_STEPS,
                                               "ode_us_per_row_1e6": TARGET_ODE_US}}
    print(f"backend {backend}: {res['device_kind']} x {len(res['devices'])}; load {res['load_before']}", flush=True)
    precisions = ["highest", "tf32"] if backend == "gpu" else ["highest"]
    res["grid"] = []
    for dim, depth, n in ((16, 3, a.networks), (64, 4, a.big_networks)):
        if n <= 0:
            continue
        for precision in precisions:
            g = time_grid(n, dim, depth, a.steps, a.repeats, precision)
            res["grid"].append(g)
            print(f"  grid d={dim} L={depth}, {g['networks']} networks x {a.steps} steps, {precision}: "
                  f"{g['network_steps_per_s']:.3g} network-steps/s (median of {a.repeats}: {g['wall_s']:.2f} s; "
                  f"first call {g['first_call_s']:.1f} s); "
                  + (f"max rel. error vs theory {g['max_rel_error_vs_theory']:.1e} over {g['crossings_checked']} crossings"
                     if g["crossings_checked"] else "no feature crossed within the steps (no fidelity check)"), flush=True)
    if a.rows > 0:
        o = time_ode(a.rows)
        res["ode"] = o
        print(f"  ODE critical times, {a.rows:,} rows: {o['us_per_row']:.3f} us/row warm "
              f"({o['warm_s']:.2f} s; cold {o['cold_s']:.2f} s); max rel. error vs closed form "
              f"{o['max_rel_error_vs_closed_form']:.2e}", flush=True)
    main_grid = [g for g in res["grid"] if g["dim"] == 16 and g["matmul_precision"] == "highest"]
    res["met"] = {"network_steps": (main_grid[0]["network_steps_per_s"] >= TARGET_NETWORK_STEPS) if main_grid else None,
                  "ode": (res["ode"]["us_per_row"] <= TARGET_ODE_US) if "ode" in res else None}
    res["load_after"] = common.load()
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        path = os.path.join(a.out, "device.json")
        with open(path, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    else:
        path = common.save(f"device_{backend}.json", res)
    print("targets met:", res["met"], "| saved", path, flush=True)
    return res


if __name__ == "__main__":
    main()
