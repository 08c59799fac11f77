"""Peak memory of `sweep --plot` on 2M rows and of `sweep --resume` on a 10^7-row file (docs/benchmarks.md section 6).

    PYTHONPATH=$PWD python benchmarks/bench_memory.py [--before /work/main]   # ~5 min; benchmarks/results/memory.json

Each command runs in a fresh process under GNU time (peak RSS of the command itself):

* a 2,000,000-row exact sweep without and with ``--plot``;
* a 10,000,000-row exact sweep, then that file cut mid-row at 90% (as a kill leaves it) and
  finished with ``--resume`` (every kept row is checked against the grid), and ``--resume`` of
  the complete file (checking only).

``--before PATH`` also runs the ``--plot`` and ``--resume`` commands with the package at PATH
(e.g. the code before this change) for comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME, load, machine, save  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def grid_args(n_lam: int, n_rho: int, out: str) -> list:
    lam = ",".join(repr(float(v)) for v in np.geomspace(0.1, 10.0, n_lam))
    rho = ",".join(repr(float(v)) for v in np.geomspace(0.3, 3.0, n_rho))
    return ["sweep", "--objective", "jepa,mae", "--depth", "1,2,3,4,5,6,7,8", "--lam", lam, "--rho", rho,
            "--eps", "1e-5", "--no-progress", "--out", out]


def run(args, package=ROOT):
    """``(wall s, peak RSS MiB)`` of ``python -m jepa_dynamics ARGS`` with ``package`` on the path."""
    env = {**os.environ, "PYTHONPATH": package, "JEPA_DYNAMICS_CACHE": "off"}
    t0 = time.perf_counter()
    # cwd = package: `python -m` puts the current folder before PYTHONPATH on sys.path
    proc = subprocess.run([TIME, "-f", "JD_MAXRSS_KB %M", sys.executable, "-m", "jepa_dynamics", *args], env=env,
                          cwd=package, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("JD_MAXRSS_KB ")]
    return round(wall, 2), round(int(rss[-1].split()[1]) / 1024.0, 1)


def cut(src: str, dst: str, share: float) -> None:
    """Copy the first ``share`` of ``src`` to ``dst``, ending mid-row."""
    size = os.path.getsize(src)
    with open(src, "rb") as f, open(dst, "wb") as g:
        left = int(size * share)
        while left > 0:
            chunk = f.read(min(left, 1 << 24))
            g.write(chunk)
            left -= len(chunk)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="package root of an earlier version to compare with")
    opts = parser.parse_args()
    results = {"machine": machine(), "load_start": load()}
    versions = [("after", ROOT)] + ([("before", opts.before)] if opts.before else [])
    with tempfile.TemporaryDirectory(prefix="jd-bench-mem-") as tmp:
        small, png = os.path.join(tmp, "s2m.csv"), os.path.join(tmp, "s2m.png")
        args = grid_args(250, 500, small)  # 16 x 250 x 500 = 2,000,000 rows
        results["sweep_2M"] = run(args)
        for name, root in versions:
            results[f"sweep_2M_plot_{name}"] = run(args + ["--plot", png], root)
        print(results, flush=True)
        full = os.path.join(tmp, "s10m.csv")
        args = grid_args(625, 1000, full)  # 16 x 625 x 1000 = 10,000,000 rows
        results["sweep_10M"] = run(args)
        results["file_10M_bytes"] = os.path.getsize(full)
        part = os.path.join(tmp, "part.csv")
        for name, root in versions:
            cut(full, part, 0.9)
            results[f"resume_10M_from_90pct_{name}"] = run(grid_args(625, 1000, part) + ["--resume"], root)
            same = subprocess.run(["cmp", "-s", part, full]).returncode == 0
            results[f"resume_10M_from_90pct_{name}_equals_full"] = same
        results["resume_10M_complete_after"] = run(grid_args(625, 1000, full) + ["--resume"])
    results["load_end"] = load()
    print(results, flush=True)
    print(save("memory.json", results))


if __name__ == "__main__":
    main()
