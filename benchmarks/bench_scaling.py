"""Sweep wall time and peak memory against the number of rows, plotted (docs/bench_sweep_scaling.png).

    python benchmarks/bench_scaling.py                 # exact 1e2 ... 1e7 rows, ode 1e2 ... 1e5, LSODA 1e2 ... 1e3
    python benchmarks/bench_scaling.py --max-exact 6   # stop the exact series at 1e6 rows

Every point is one fresh ``jepa-dynamics sweep`` process (wall clock start to exit, peak
RSS of that process), grid 2 objectives x depths 1..5 x lam x rho with eps = 1e-5, so rows
are exact powers of ten.  ``--method ode`` runs with an empty JAX compilation cache
(compile included).  LSODA (benchmarks/baselines.py) is run for real on the 1e2- and
1e3-row grids and extrapolated linearly beyond (dashed).  Each CSV is deleted after it
is counted (the 1e7-row file is ~1.6 GB).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import baselines, common  # noqa: E402

DEPTHS = (1, 2, 3, 4, 5)


def grid_for(rows: int):
    per = rows // (2 * len(DEPTHS))
    n_lam = int(10 ** np.floor(np.log10(per) / 2))
    n_rho = per // n_lam
    assert 2 * len(DEPTHS) * n_lam * n_rho == rows, rows
    return common.grid_values(n_lam, n_rho)


def count_rows(path):
    with open(path, "rb") as f:
        return sum(1 for line in f if not line.startswith(b"#")) - 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-exact", type=int, default=7)
    ap.add_argument("--max-ode", type=int, default=5)
    ap.add_argument("--max-lsoda", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the points below 1e6 rows")
    ap.add_argument("--plot-only", action="store_true")
    a = ap.parse_args(argv)
    if a.plot_only:
        import json

        with open(os.path.join(common.RESULTS, "sweep_scaling.json")) as f:
            return plot(json.load(f))
    tmp = tempfile.mkdtemp(prefix="jd-scaling-")
    res = {"machine": common.machine(), "load_before": common.load(), "depths": DEPTHS, "eps": common.EPS,
           "exact": [], "ode": [], "lsoda": []}
    for method, top in (("exact", a.max_exact), ("ode", a.max_ode)):
        for k in range(2, top + 1):
            rows = 10 ** k
            lam, rho = grid_for(rows)
            out = os.path.join(tmp, f"{method}-{k}.csv")
            args = common.sweep_args(lam, rho, out, method=method, depth=DEPTHS)
            walls, rss = [], []
            for _ in range(a.repeats if k < 6 else 1):
                w, m = common.run_cli(args, cache=common.fresh_cache_dir() if method == "ode" else "off")
                walls.append(w)
                rss.append(m)
            size = os.path.getsize(out)
            n = count_rows(out)
            assert n == rows, (n, rows)
            os.remove(out)
            point = {"rows": rows, "wall_s": float(np.median(walls)), "walls": walls, "peak_rss_mib": max(rss),
                     "csv_bytes": size}
            res[method].append(point)
            print(f"  {method:5s} {rows:>10,} rows: {point['wall_s']:8.2f} s  peak RSS {point['peak_rss_mib']:6.0f} MiB"
                  f"  CSV {size / 1e6:8.1f} MB", flush=True)
    for k in range(2, a.max_lsoda + 1):
        rows = 10 ** k
        lam, rho = grid_for(rows)
        grid = [(o, d, float(l), float(r), common.EPS) for o in ("jepa", "mae") for d in DEPTHS for l in lam for r in rho]
        times, _ = baselines.time_rows(grid, method="LSODA", rtol=1e-10, atol=1e-16)
        res["lsoda"].append({"rows": rows, "wall_s": float(times.sum())})
        print(f"  LSODA {rows:>10,} rows: {times.sum():8.2f} s (loop, in process)", flush=True)
    res["load_after"] = common.load()
    print("saved", common.save("sweep_scaling.json", res))
    plot(res)


def plot(res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, style, label in (("exact", "o-", "jepa-dynamics sweep (exact)"),
                              ("ode", "s-", "jepa-dynamics sweep --method ode (cold cache)"),
                              ("lsoda", "^-", "scipy LSODA + event loop (measured)")):
        pts = res[key]
        ax.loglog([p["rows"] for p in pts], [p["wall_s"] for p in pts], style, label=label)
    if res["lsoda"]:
        per_row = res["lsoda"][-1]["wall_s"] / res["lsoda"][-1]["rows"]
        xs = np.array([res["lsoda"][-1]["rows"], max(p["rows"] for p in res["exact"])])
        ax.loglog(xs, per_row * xs, "^:", color=ax.lines[-1].get_color(), alpha=0.6, label="LSODA, extrapolated")
    ax.set_xlabel("rows")
    ax.set_ylabel("wall time, process start to CSV written (s)")
    ax.set_title("Critical-time sweeps, eps = 1e-5, 2-core CPU", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(common.DOCS, "bench_sweep_scaling.png")
    os.makedirs(common.DOCS, exist_ok=True)
    fig.savefig(path, dpi=120)
    print("wrote", path)


if __name__ == "__main__":
    main()
