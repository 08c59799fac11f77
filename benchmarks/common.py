"""Shared helpers of the benchmark scripts: the grids, running the CLI as a user does, the machine."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DOCS = os.path.join(os.path.dirname(HERE), "docs")
# the installed console script, exactly what a user runs (fallback: the same entry point via -m)
EXE = [shutil.which("jepa-dynamics")] if shutil.which("jepa-dynamics") else [sys.executable, "-m", "jepa_dynamics"]
TIME = "/usr/bin/time"  # GNU time: the peak RSS of the command itself (wait4's includes the forked parent)

DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8)
EPS = 1e-5


def grid_values(n_lam: int, n_rho: int, lam_range=(0.1, 10.0), rho_range=(0.3, 3.0)):
    """``n_lam`` log-spaced lam and ``n_rho`` log-spaced rho (rho >= 0.3 keeps eps = 1e-5 below
    w_star / 2 = rho^8 / 2 at depth 8)."""
    return np.geomspace(*lam_range, n_lam), np.geomspace(*rho_range, n_rho)


def _csv(values) -> str:
    return ",".join(repr(float(v)) for v in values)


def sweep_args(lam, rho, out: str, *, method: str = "exact", objective="jepa,mae", depth=DEPTHS, eps=EPS):
    """The argv of ``jepa-dynamics sweep ...`` for a grid (what a user types)."""
    args = ["sweep", "--objective", objective, "--depth", ",".join(map(str, depth)), "--lam", _csv(lam),
            "--rho", _csv(rho), "--eps", repr(float(eps)), "--out", out]
    return args + (["--method", method] if method != "exact" else [])


def run_cli(args, *, cache: str | None = None, check: bool = True):
    """Run ``jepa-dynamics ARGS`` in a fresh process; return ``(wall seconds, peak RSS in MiB)``.

    ``cache``: value of ``JEPA_DYNAMICS_CACHE`` (a folder, or ``"off"``); ``None`` keeps the
    environment's.  Wall time is process start to exit (the CSV is closed by then)."""
    env = dict(os.environ)
    if cache is not None:
        env["JEPA_DYNAMICS_CACHE"] = cache
    prefix = [TIME, "-f", "JD_MAXRSS_KB %M"] if os.path.exists(TIME) else []
    t0 = time.perf_counter()
    proc = subprocess.run(prefix + EXE + list(args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    err = proc.stderr.decode()
    if check and proc.returncode != 0:
        raise RuntimeError(f"jepa-dynamics {' '.join(args[:1])} failed ({proc.returncode}): {err.strip()[-500:]}")
    rss = [ln for ln in err.splitlines() if ln.startswith("JD_MAXRSS_KB ")]
    return wall, (int(rss[-1].split()[1]) / 1024.0 if rss else float("nan"))


def fresh_cache_dir() -> str:
    """An empty JAX compilation-cache folder (a cold cache)."""
    return tempfile.mkdtemp(prefix="jd-bench-cache-")


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import jax
        import numpy
        import scipy

        info.update(jax=jax.__version__, numpy=numpy.__version__, scipy=scipy.__version__)
    except ImportError:
        pass
    return info


def load() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def save(name: str, payload: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
    return path


def read_sweep(path: str) -> dict:
    """A sweep CSV as ``{column: array}`` (fast path for large files)."""
    from jepa_dynamics import records

    return records.read_csv(path)
