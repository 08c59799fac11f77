"""`jepa-dynamics sweep` against scipy LSODA + terminal event, per row, side by side.

    python benchmarks/bench_sweep.py            # ~3 minutes on the 2-core dev box

Times the CLI exactly as a user runs it (a fresh process each time, wall clock from
process start to exit with the CSV written):

* ``default``: 2 objectives x 8 depths x 50 lam x 125 rho = 100,000 rows, eps = 1e-5, exact;
* ``ode``:     2 objectives x 8 depths x 10 lam x 25 rho  =   4,000 rows, ``--method ode``,
  with an empty JAX compilation cache (cold: compile time included), a warm one, and
  the cache off;

and, on a random sample of rows of each grid, scipy ``solve_ivp(method="LSODA")`` with a
terminal event (benchmarks/baselines.py), per row.  Accuracy: every CSV value against
``theory.critical_time`` and, on the sampled rows, against an independent quadrature.
RK45 is timed on a few rows at L = 4 (capped).  Writes benchmarks/results/sweep.json and
prints the markdown tables of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import baselines, common  # noqa: E402
from jepa_dynamics import theory  # noqa: E402

GRIDS = {"default": (50, 125, "exact"), "ode": (10, 25, "ode")}


def grid_rows(n_lam, n_rho):
    lam, rho = common.grid_values(n_lam, n_rho)
    o, d, l, r = np.meshgrid(np.arange(2), np.asarray(common.DEPTHS), lam, rho, indexing="ij")
    obj = np.where(o.ravel() == 0, "jepa", "mae")
    return obj, d.ravel(), l.ravel(), r.ravel()


def exact_reference(obj, depth, lam, rho, eps=common.EPS):
    out = np.empty(depth.size)
    for name in ("jepa", "mae"):
        m = obj == name
        out[m] = theory.critical_time(name, depth[m], lam[m], rho[m], eps)
    return out


def time_cli(name, args, repeats, modes):
    """``repeats`` rounds; each round runs every cache mode once, interleaved, so that all modes
    see the same (shared-machine) load."""
    warm_dir = None
    if "warm" in modes:
        warm_dir = common.fresh_cache_dir()
        common.run_cli(args, cache=warm_dir)  # populate it
    walls = {m: [] for m in modes}
    rss = {m: [] for m in modes}
    for _ in range(repeats):
        for mode in modes:
            cache = {"cold": common.fresh_cache_dir(), "warm": warm_dir, "off": "off", "n/a": "off"}[mode]
            w, m = common.run_cli(args, cache=cache)
            walls[mode].append(w)
            rss[mode].append(m)
    out = {}
    for mode in modes:
        out[mode] = {"walls": walls[mode], "median": statistics.median(walls[mode]), "peak_rss_mib": max(rss[mode])}
        print(f"  {name:8s} cache={mode:4s} wall median {out[mode]['median']:.3f} s  "
              f"{[round(w, 3) for w in walls[mode]]}  peak RSS {out[mode]['peak_rss_mib']:.0f} MiB", flush=True)
    return out


def lsoda_rows(obj, depth, lam, rho, n, seed):
    rng = np.random.default_rng(seed)
    idx = rng.choice(depth.size, size=min(n, depth.size), replace=False)
    return idx, [(obj[i], int(depth[i]), float(lam[i]), float(rho[i]), common.EPS) for i in idx]


def lsoda_pass(rows):
    return baselines.time_rows(rows, method="LSODA", rtol=1e-10, atol=1e-16)


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lsoda-rows", type=int, default=400, help="random rows of each grid timed with LSODA")
    ap.add_argument("--lsoda-passes", type=int, default=2)
    ap.add_argument("--rk45-cap", type=float, default=20.0, help="seconds after which one RK45 run is stopped")
    ap.add_argument("--out", default="sweep.json")
    a = ap.parse_args(argv)

    result = {"machine": common.machine(), "load_before": common.load(), "grids": {}}
    print(f"load average before: {result['load_before']}", flush=True)
    tmp = tempfile.mkdtemp(prefix="jd-bench-")
    for name, (n_lam, n_rho, method) in GRIDS.items():
        lam_v, rho_v = common.grid_values(n_lam, n_rho)
        csv = os.path.join(tmp, f"{name}.csv")
        args = common.sweep_args(lam_v, rho_v, csv, method=method)
        obj, depth, lam, rho = grid_rows(n_lam, n_rho)
        n = depth.size
        print(f"{name}: {n} rows, method={method}", flush=True)
        g = {"rows": n, "method": method,
             "command": "jepa-dynamics " + " ".join(args[:2] + ["..."] + args[-4 if method == "exact" else -6:])}
        modes = ("n/a",) if method == "exact" else ("cold", "warm", "off")
        idx, rows = lsoda_rows(obj, depth, lam, rho, a.lsoda_rows, seed=0)
        passes = [lsoda_pass(rows)]  # one LSODA pass before our runs, one after: same load drift
        g["cli"] = time_cli(name, args, a.repeats, modes)
        passes += [lsoda_pass(rows) for _ in range(max(1, a.lsoda_passes - 1))]
        cols = common.read_sweep(csv)
        assert cols["t_star"].size == n, "CSV row count"
        g["csv_vs_theory_max_rel"] = float(np.max(rel(cols["t_star"], exact_reference(obj, depth, lam, rho))))
        os.remove(csv)

        t_lsoda = np.median(np.stack([p[0] for p in passes]), axis=0)  # per row, the median over passes
        v_lsoda = passes[-1][1]
        totals = [float(np.sum(p[0])) for p in passes]
        ref = np.array([baselines.quad_critical_time(*r) for r in rows])
        exact = exact_reference(obj[idx], depth[idx], lam[idx], rho[idx])
        ours_sample = cols["t_star"][idx]
        g["lsoda"] = {"rows_timed": int(idx.size), "passes": a.lsoda_passes, "rtol": 1e-10, "atol": 1e-16,
                      "per_row_median_s": float(np.median(t_lsoda)), "per_row_mean_s": float(np.mean(t_lsoda)),
                      "per_row_p90_s": float(np.quantile(t_lsoda, 0.9)),
                      "pass_totals_s": totals,
                      "failed_rows": [list(map(str, (obj[i], depth[i], lam[i], rho[i]))) for i in idx[np.isnan(v_lsoda)]],
                      "rel_err_vs_theory_max": float(np.nanmax(rel(v_lsoda, exact))),
                      "rel_err_vs_theory_median": float(np.nanmedian(rel(v_lsoda, exact)))}
        g["ours_vs_quad_max_rel"] = float(np.max(rel(ours_sample, ref)))
        g["theory_vs_quad_max_rel"] = float(np.max(rel(exact, ref)))
        for mode, c in g["cli"].items():
            per_row = c["median"] / n
            c["per_row_s"] = per_row
            c["ratio_vs_lsoda_median"] = g["lsoda"]["per_row_median_s"] / per_row
            c["ratio_vs_lsoda_mean"] = g["lsoda"]["per_row_mean_s"] / per_row
        result["grids"][name] = g
        print(f"  LSODA per row: median {g['lsoda']['per_row_median_s'] * 1e3:.2f} ms, mean "
              f"{g['lsoda']['per_row_mean_s'] * 1e3:.2f} ms; rel err max {g['lsoda']['rel_err_vs_theory_max']:.1e}; "
              f"failed rows {len(g['lsoda']['failed_rows'])}",
              flush=True)

    # RK45: the "~1.7 s per trajectory" of docs/theory.md section 7 at L = 4, eps = 1e-5.  With the terminal event it stops
    # before the stiff tail; a trajectory (no event) to 2 t_star has to cross it.
    rk = []
    for row in (("jepa", 4, 1.0, 0.5, common.EPS), ("jepa", 4, 1.0, 0.9, common.EPS), ("mae", 4, 1.0, 0.5, common.EPS)):
        exact = float(theory.critical_time(*row))
        for mode in ("event", "trajectory to 2 t_star"):
            t0 = time.perf_counter()
            if mode == "event":
                value, sol = baselines.scipy_critical_time(*row, method="RK45", rtol=1e-10, atol=1e-16,
                                                           max_wall=a.rk45_cap)
            else:
                value, sol = baselines.scipy_trajectory(*row, t_end=2 * exact, method="RK45", rtol=1e-10,
                                                        atol=1e-16, max_wall=a.rk45_cap)
            wall = time.perf_counter() - t0
            rk.append({"row": list(row), "mode": mode, "wall_s": wall, "capped": sol is None,
                       "nfev": None if sol is None else int(sol.nfev),
                       "rel_err": float(rel(value, exact)) if mode == "event" and sol is not None else None})
            print(f"  RK45 {mode} {row}: {wall:.2f} s" + (" (capped)" if sol is None else
                  f", {sol.nfev} evaluations"), flush=True)
    result["rk45"] = rk
    result["load_after"] = common.load()
    print("saved", common.save(a.out, result))
    print_tables(result)


def print_tables(r):
    g = r["grids"]
    d = g["default"]
    print("\n| sweep | rows | ours: wall (median of %d) | ours per row | LSODA per row (median / mean) "
          "| ratio (median / mean) | max rel. error, ours | max rel. error, LSODA |" % len(d["cli"]["n/a"]["walls"]))
    print("|---|---|---|---|---|---|---|---|")
    rows = [("default (exact)", d, "n/a")] + [(f"--method ode, cache {m}", g["ode"], m) for m in ("cold", "warm", "off")]
    for label, gg, mode in rows:
        c = gg["cli"][mode]
        ls = gg["lsoda"]
        err = max(gg["csv_vs_theory_max_rel"], gg["ours_vs_quad_max_rel"]) if gg["method"] == "ode" else gg["ours_vs_quad_max_rel"]
        print(f"| {label} | {gg['rows']:,} | {c['median']:.3f} s | {c['per_row_s'] * 1e6:.2f} µs | "
              f"{ls['per_row_median_s'] * 1e3:.2f} / {ls['per_row_mean_s'] * 1e3:.2f} ms | "
              f"{c['ratio_vs_lsoda_median']:.0f}× / {c['ratio_vs_lsoda_mean']:.0f}× | {err:.1e} | "
              f"{ls['rel_err_vs_theory_max']:.1e} |")


if __name__ == "__main__":
    main()
