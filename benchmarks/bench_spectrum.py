"""Real-data modes (docs/theory.md section 11): `jepa-dynamics spectrum` on synthetic views with known modes,
and training on them.

1. Views with known covariances: ``d`` independent features with ``rho`` evenly spaced in
   ``[0.1, 0.9]`` and ``sigma2`` in ``[0.5, 2]`` (``lam = rho sigma2``) rotated by a random
   orthogonal matrix (the commuting case: the modes are the rotated features), saved as an
   uncompressed ``.npz``; ``d = 64`` (modes 0.013 apart in ``rho``, ~4 standard errors at
   ``n = 10^5``: neighbouring modes mix, so ``lam`` of a unit-norm mode is not stable) and
   ``d = 16`` (0.053 apart).  ``spectrum`` is timed as a user runs it, and the recovered ``lam`` and
   ``rho`` are compared with the true ones, in units of their sampling standard errors.
2. Training on the same file: ``spectrum --train`` (JEPA and MAE, depth 1, the 4 modes
   predicted first), timed, with its observed/predicted critical-time ratios.
3. Bounded memory: ``spectrum`` on ``n = 10^6, d = 256`` (4 GiB of float64 views), peak RSS.

    PYTHONPATH=. python benchmarks/bench_spectrum.py [--big]     # writes benchmarks/results/spectrum.json
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME, load, machine, save  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args):
    """``python -m jepa_dynamics ARGS`` with this checkout's package; ``(wall s, peak RSS MiB)``;
    the CPU seconds (user + system) go to ``LAST_CPU[0]``."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    prefix = [TIME, "-f", "JD_MAXRSS_KB %M\nJD_CPU %U %S"] if os.path.exists(TIME) else []
    t0 = time.perf_counter()
    proc = subprocess.run(prefix + [sys.executable, "-m", "jepa_dynamics", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    err = proc.stderr.decode()
    if proc.returncode != 0:
        raise RuntimeError(err.strip()[-500:])
    rss = [ln for ln in err.splitlines() if ln.startswith("JD_MAXRSS_KB ")]
    cpu = [ln for ln in err.splitlines() if ln.startswith("JD_CPU ")]
    LAST_CPU[0] = sum(float(v) for v in cpu[-1].split()[1:]) if cpu else float("nan")
    return wall, (int(rss[-1].split()[1]) / 1024.0 if rss else float("nan"))


LAST_CPU = [float("nan")]


def known_views(path, n, d, seed=0, block=50_000):
    """Write rotated independent features with known (lam, rho) to ``path``; return them."""
    rng = np.random.default_rng(seed)
    rho = np.linspace(0.9, 0.1, d)
    s2 = np.geomspace(2.0, 0.5, d)[rng.permutation(d)]
    lam = rho * s2
    syy = np.maximum(s2, lam * rho) + 0.1
    r, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = np.lib.format.open_memmap(path + ".x.npy", mode="w+", dtype=np.float64, shape=(n, d))
    y = np.lib.format.open_memmap(path + ".y.npy", mode="w+", dtype=np.float64, shape=(n, d))
    for a in range(0, n, block):
        b = min(a + block, n)
        x0 = rng.standard_normal((b - a, d)) * np.sqrt(s2)
        y0 = rho * x0 + rng.standard_normal((b - a, d)) * np.sqrt(syy - lam * rho)
        x[a:b], y[a:b] = x0 @ r.T, y0 @ r.T
    x.flush(), y.flush()
    # an uncompressed npz of the two members, written without loading them
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.write(path + ".x.npy", "x.npy")
        zf.write(path + ".y.npy", "y.npy")
    del x, y
    os.remove(path + ".x.npy"), os.remove(path + ".y.npy")
    return lam, rho, s2, syy, r


def recovery(out_dir, lam, rho, s2, syy, rot, n):
    """Each true feature (direction ``rot[:, j]``) against the recovered mode closest to it
    (largest ``|q_i . rot_j|``; read from ``covariances.npz``), errors in standard errors."""
    from jepa_dynamics.theory import modes
    from jepa_dynamics import records

    table = records.read_csv(os.path.join(out_dir, "modes.csv"))
    first = table["depth"] == table["depth"][0]
    cov = np.load(os.path.join(out_dir, "covariances.npz"))
    m = modes.decompose(cov["sxx"], cov["sxy"])
    assert np.allclose(m.lam, table["lam"][first]) and np.allclose(m.rho, table["rho"][first])
    match = np.argmax(np.abs(m.q.T @ rot), axis=0)  # mode matched to each true feature
    se_lam = np.sqrt((s2 * syy + lam**2) / n)
    se_rho = np.sqrt((syy - lam * rho) / (s2 * n))
    err_lam = np.abs(m.lam[match] - lam)
    err_rho = np.abs(m.rho[match] - rho)
    return {"unique_matches": int(np.unique(match).size), "d": int(lam.size),
            "max_abs_err_lam": float(err_lam.max()), "max_abs_err_rho": float(err_rho.max()),
            "max_err_lam_in_se": float((err_lam / se_lam).max()), "max_err_rho_in_se": float((err_rho / se_rho).max()),
            "rms_err_lam_in_se": float(np.sqrt(np.mean((err_lam / se_lam) ** 2))),
            "rms_err_rho_in_se": float(np.sqrt(np.mean((err_rho / se_rho) ** 2))),
            "sorted_rho_max_err_in_se": float((np.abs(np.sort(m.rho) - np.sort(rho)) / se_rho.min()).max())}


def main():
    """``--big`` adds the n = 10^6, d = 256 run; earlier entries of spectrum.json are kept
    (and the ones measured now replaced)."""
    import json

    big = "--big" in sys.argv
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "spectrum.json")
    result = {}
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
    result.update({"machine": machine(), "load_before": load()})
    with tempfile.TemporaryDirectory(prefix="jd-bench-spectrum-") as tmp:
        n, d = 100_000, 64
        path = os.path.join(tmp, "views.npz")
        lam, rho, s2, syy, rot = known_views(path, n, d)
        out = os.path.join(tmp, "out")
        wall, rss = run(["spectrum", "--views", path, "--depth", "1,2,3,4", "--eps", "1e-3", "--out", out])
        result["spectrum_n1e5_d64"] = {"wall_s": wall, "cpu_s": LAST_CPU[0], "peak_rss_mib": rss,
                                       **recovery(out, lam, rho, s2, syy, rot, n)}
        print("spectrum n=1e5 d=64:", result["spectrum_n1e5_d64"], flush=True)
        # well-separated modes (rho 0.053 apart, ~20 standard errors): lam recovered too
        small = os.path.join(tmp, "small.npz")
        known = known_views(small, n, 16, seed=1)
        out_s = os.path.join(tmp, "small")
        wall_s, _ = run(["spectrum", "--views", small, "--depth", "1", "--out", out_s])
        result["spectrum_n1e5_d16"] = {"wall_s": wall_s, **recovery(out_s, *known, n)}
        print("spectrum n=1e5 d=16:", result["spectrum_n1e5_d16"], flush=True)
        out_t = os.path.join(tmp, "train")
        wall, rss = run(["spectrum", "--views", path, "--depth", "1", "--eps", "1e-2", "--train", "--train-modes", "4",
                         "--out", out_t])
        from jepa_dynamics import records

        orders = records.read_csv(os.path.join(out_t, "orders.csv"))
        result["train_n1e5_d64"] = {"wall_s": wall, "cpu_s": LAST_CPU[0], "peak_rss_mib": rss,
                                    "runs": {str(o): {"steps": int(s), "spearman": float(r), "median_ratio": float(q)}
                                             for o, s, r, q in zip(orders["objective"], orders["steps"],
                                                                   orders["spearman"], orders["median_ratio"])}}
        print("train (spectrum --train, depth 1, jepa+mae):", result["train_n1e5_d64"], flush=True)
        if big:
            n, d = 1_000_000, 256
            path = os.path.join(tmp, "big.npz")
            lam, rho, s2, syy, rot = known_views(path, n, d)
            out = os.path.join(tmp, "big")
            wall, rss = run(["spectrum", "--views", path, "--depth", "1", "--out", out])
            result["spectrum_n1e6_d256"] = {"wall_s": wall, "cpu_s": LAST_CPU[0], "peak_rss_mib": rss,
                                            "file_gib": os.path.getsize(path) / 2**30,
                                            **recovery(out, lam, rho, s2, syy, rot, n)}
            print("spectrum n=1e6 d=256:", result["spectrum_n1e6_d256"], flush=True)
            os.remove(path)
    result["load_after"] = load()
    print(save("spectrum.json", result))


if __name__ == "__main__":
    main()
