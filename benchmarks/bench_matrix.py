"""The matrix gradient-flow engine against scipy LSODA on the same flattened system, side by side.

    python benchmarks/bench_matrix.py                 # d = 16 and d = 64, L = 4 (minutes)
    python benchmarks/bench_matrix.py --dims 16       # quick

Problem: JEPA (stop-gradient), depth 4, balanced init, ``mixed`` data (mixing 0.5, seed 0,
``lam`` 1 -> 2, ``rho`` 0.9 -> 0.3), ``eps = 2e-3``: the plateau lasts ~1e4 time units and
every mode rises within it; both solvers integrate ``t`` from 0 to the largest per-feature
theory ``t*`` of the modes (through the plateau and the first rises), at the same
``rtol`` / ``atol``.  The state is ``(L + 2) d^2`` numbers (layers, V, unused target slot
for the engine; layers and V, ``(L + 1) d^2``, for LSODA).

* engine: :func:`jepa_dynamics.engines.matrix.integrate` (diffrax Tsit5, jit), timed cold
  (compile included) and warm (second call), with its step count;
* LSODA: ``scipy.integrate.solve_ivp(method="LSODA")`` on the flattened ``(L+1) d^2``
  system with a NumPy right-hand side (the same matrix formulas), finite-difference
  Jacobian when it switches to BDF; run in a child process with a wall-clock cap and an
  address-space cap (its dense Jacobian at d = 64 is 3.4 GB), so a failure is reported,
  not suffered.

Agreement: the relative Frobenius difference of the two final ``Wbar``.  Writes
benchmarks/results/matrix.json and prints the markdown table of docs/benchmarks.md.
No GPU was available when this was written; the script runs on whatever JAX finds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jepa_dynamics.training import data  # noqa: E402
from jepa_dynamics.engines import matrix
from jepa_dynamics.theory import modes

DEPTH, EPS, RTOL, ATOL = 4, 2e-3, 1e-8, 1e-12


def problem(dim):
    ds = data.mixed(np.linspace(1.0, 2.0, dim), np.linspace(0.9, 0.3, dim), 0.5, seed=0)
    config = matrix.MatrixConfig("jepa", DEPTH, eps=EPS, rtol=RTOL, atol=ATOL)
    m = modes.decompose(ds.sxx, ds.sxy)
    t_end = float(np.nanmax(matrix.theory_critical_times(config, m)))
    return ds, config, m, t_end


def numpy_rhs(sxx, sxy, depth, d):
    """JEPA stop-gradient flow on the flattened (layers, V): the formulas of matrix._flow, in NumPy."""
    eye = np.eye(d)

    def rhs(t, flat):
        y = flat.reshape(depth + 1, d, d)
        layers, v = y[:depth], y[depth]
        pre = [eye]
        for a in range(depth):
            pre.append(layers[a] @ pre[-1])
        wbar = pre[-1]
        suf = [eye]
        for a in range(depth - 1, 0, -1):
            suf.append(suf[-1] @ layers[a])
        suf = suf[::-1]
        g = v @ wbar @ sxx - wbar @ sxy.T
        p = v.T @ g
        out = [-(suf[a].T @ p @ pre[a].T) for a in range(depth)] + [-(g @ wbar.T)]
        return np.stack(out).ravel()

    return rhs


def _lsoda_child(dim, t_end, mem_gb, queue):
    from scipy.integrate import solve_ivp

    limit = int(mem_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    ds, config, m, _ = problem(dim)
    y0 = matrix.initial_state(config, dim)[:-1]
    t0 = time.perf_counter()
    try:
        sol = solve_ivp(numpy_rhs(ds.sxx, ds.sxy, DEPTH, dim), (0.0, t_end), y0.ravel(), method="LSODA", rtol=RTOL,
                        atol=ATOL)
        y = sol.y[:, -1].reshape(DEPTH + 1, dim, dim)
        queue.put({"ok": bool(sol.success), "message": sol.message, "wall_s": time.perf_counter() - t0,
                   "nfev": int(sol.nfev), "njev": int(sol.njev), "steps": int(sol.t.size - 1),
                   "t_reached": float(sol.t[-1]), "wbar": matrix.end_to_end(y[:DEPTH]).tolist()})
    except MemoryError:
        queue.put({"ok": False, "message": f"MemoryError (address space capped at {mem_gb} GB)",
                   "wall_s": time.perf_counter() - t0})


def lsoda(dim, t_end, cap_s, mem_gb):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_lsoda_child, args=(dim, t_end, mem_gb, queue))
    t0 = time.perf_counter()
    proc.start()
    proc.join(cap_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"ok": False, "message": f"stopped at the {cap_s:.0f} s cap", "wall_s": time.perf_counter() - t0}
    return queue.get() if not queue.empty() else {"ok": False, "message": f"exit code {proc.exitcode}",
                                                  "wall_s": time.perf_counter() - t0}


def engine(dim, t_end):
    ds, config, m, _ = problem(dim)
    times = np.array([0.0, 0.5 * t_end, t_end])
    out = {}
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        res = matrix.integrate(config, ds.covariances(), times, modes=m)
        out[f"{label}_s"] = time.perf_counter() - t0
    out.update(steps=res.steps, wbar=res.wbar[-1].tolist(), learned_by_t_end=int(np.sum(
        res.responses[-1] > 2 * res.gamma0)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="16,64")
    parser.add_argument("--cap-s", type=float, default=600.0, help="LSODA wall-clock cap per run")
    parser.add_argument("--mem-gb", type=float, default=6.0, help="LSODA address-space cap")
    args = parser.parse_args()
    rows = []
    for dim in [int(x) for x in args.dims.split(",")]:
        _, _, _, t_end = problem(dim)
        load = os.getloadavg()[0]
        eng = engine(dim, t_end)
        ref = lsoda(dim, t_end, args.cap_s, args.mem_gb)
        row = {"dim": dim, "depth": DEPTH, "eps": EPS, "t_end": t_end, "state": (DEPTH + 1) * dim * dim,
               "engine": {k: v for k, v in eng.items() if k != "wbar"},
               "lsoda": {k: v for k, v in ref.items() if k != "wbar"}, "load_before": load}
        if "wbar" in ref:
            a, b = np.asarray(eng["wbar"]), np.asarray(ref["wbar"])
            row["final_wbar_rel_diff"] = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        row["ratio_warm"] = ref["wall_s"] / eng["warm_s"]
        row["ratio_cold"] = ref["wall_s"] / eng["cold_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"rows": rows, "machine": platform.platform(), "cpus": os.cpu_count(),
           "device": __import__("jax").devices()[0].platform, "rtol": RTOL, "atol": ATOL}
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "matrix.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("\n| d | state | t_end | engine warm (cold) | engine steps | LSODA | LSODA steps (nfev) | ratio | final Wbar diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e, l = r["engine"], r["lsoda"]
        lsoda_txt = f"{l['wall_s']:.1f} s" + ("" if l["ok"] else f" ({l['message']})")
        steps = f"{l.get('steps', '-')} ({l.get('nfev', '-')})"
        diff = f"{r['final_wbar_rel_diff']:.1e}" if "final_wbar_rel_diff" in r else "-"
        ratio = f"{r['ratio_warm']:.0f}x" + ("" if l["ok"] else " (lower bound)")
        print(f"| {r['dim']} | {r['state']} | {r['t_end']:.3g} | {e['warm_s']:.2f} s ({e['cold_s']:.1f} s) | "
              f"{e['steps']} | {lsoda_txt} | {steps} | {ratio} | {diff} |")


if __name__ == "__main__":
    main()
