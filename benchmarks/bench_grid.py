"""Throughput of ``train-grid`` against sequential ``train`` runs and PyTorch loops (docs/benchmarks.md section 9).

    python benchmarks/bench_grid.py                  # 1,024 networks x 20,000 steps (~2-4 min)
    python benchmarks/bench_grid.py --networks 256 --steps 5000   # quicker

The workload: deep linear JEPA networks, depth 2, d = 4 features, population loss, plain
SGD, float64 -- a grid of lr x eps x seed.  Timed side by side in one run:

* **train-grid** -- the CLI exactly as a user types it (fresh process, start-up, compile,
  theory columns, CSV and figure included), and the engine alone
  (``grid.train_group`` after a warm-up call: compile excluded);
* **sequential train** -- one ``jepa-dynamics train`` process of one network (what a loop in
  a shell script runs), timed and multiplied by the number of networks; and one in-process
  ``train.train`` call (compile included, as each fresh process pays it);
* **PyTorch** (if installed): a Python loop over networks of an eager population-loss GD loop
  (``loss.backward(); opt.step()``; a few networks timed, extrapolated), and the same
  networks batched with ``torch.bmm`` in one eager loop over steps (some steps timed,
  extrapolated) -- the fastest thing one writes in PyTorch without compiling.

Reported: network-steps per second and the ratios.  No GPU on the machine this was written
on: the GPU targets (>= 1e7 network-steps/s at d = 16, L = 3) are not measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

LAM = (1.0, 0.8, 0.6, 1.2)
RHO = (0.9, 0.7, 0.8, 0.5)
DEPTH, DIM = 2, 4


def grid_lists(n):
    """``n`` networks as lr x eps x seed (8 x 4 x n/32)."""
    lrs = np.round(np.geomspace(0.005, 0.05, 8), 6)
    eps = np.round(np.geomspace(0.01, 0.04, 4), 6)
    seeds = list(range(max(1, n // 32)))
    return lrs, eps, seeds


def _csv(v):
    return ",".join(repr(float(x)) for x in v)


def grid_args(n, steps, out):
    lrs, eps, seeds = grid_lists(n)
    return ["train-grid", "--objective", "jepa", "--depth", str(DEPTH), "--lam", _csv(LAM), "--rho", _csv(RHO),
            "--eps", _csv(eps), "--lr", _csv(lrs), "--seed", ",".join(map(str, seeds)), "--steps", str(steps),
            "--out", out, "--no-progress"]


def train_args(steps, out):
    return ["train", "--objective", "jepa", "--depth", str(DEPTH), "--lam", _csv(LAM), "--rho", _csv(RHO),
            "--eps", "0.02", "--lr", "0.02", "--steps", str(steps), "--records", "100", "--out", out,
            "--no-progress"]


def run(args):
    t0 = time.perf_counter()
    subprocess.run(common.EXE + args, check=True, capture_output=True)
    return time.perf_counter() - t0


def time_group(configs, repeats):
    """``grid.train_group`` on ``configs`` (one shape) alone: their theory, one warm-up call
    (compile), then ``repeats`` timed calls.  Returns ``(prediction, last result, first call s,
    timed calls s)``; ``bench_device`` uses it too."""
    from jepa_dynamics.training import grid

    pred = grid.predict(configs)
    levels = np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)
    t0 = time.perf_counter()
    res = grid.train_group(configs, levels, progress=False)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = grid.train_group(configs, levels, progress=False)
        times.append(time.perf_counter() - t0)
    return pred, res, first, times


def engine(n, steps, repeats):
    """``grid.train_group`` alone: one warm-up call (compile), then ``repeats`` timed calls."""
    from jepa_dynamics.training import grid

    lrs, eps, seeds = grid_lists(n)
    configs = grid.configs_from(dict(objective="jepa", depth=DEPTH, lam=LAM, rho=RHO, steps=steps),
                                {"lr": list(lrs), "eps": list(eps), "seed": seeds})
    _, _, first, times = time_group(configs, repeats)
    return {"networks": len(configs), "first_call_s": first, "s": statistics.median(times), "all_s": times}


def torch_loop(n_timed, steps, batched_networks, batched_steps):
    """Eager PyTorch: per-network loops (``n_timed`` networks timed) and one bmm-batched loop."""
    import torch

    torch.set_num_threads(1)
    lam = torch.tensor(LAM, dtype=torch.float64)
    sxx = lam / torch.tensor(RHO, dtype=torch.float64)

    def one(eps, lr, seed):
        torch.manual_seed(seed)
        u = eps ** (1.0 / DEPTH)
        ws = [torch.nn.Parameter(u * torch.eye(DIM, dtype=torch.float64)) for _ in range(DEPTH)]
        v = torch.nn.Parameter(u * torch.eye(DIM, dtype=torch.float64))
        opt = torch.optim.SGD(ws + [v], lr=lr)
        for _ in range(steps):
            wbar = ws[0]
            for w in ws[1:]:
                wbar = w @ wbar
            a = v @ wbar
            loss = 0.5 * (a * a * sxx).sum() - (a * wbar.detach() * lam).sum()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for i in range(n_timed):
        one(0.02, 0.02, i)
    per_network = (time.perf_counter() - t0) / n_timed

    def batched(n, k):
        u = 0.02 ** (1.0 / DEPTH)
        eye = torch.eye(DIM, dtype=torch.float64).expand(n, DIM, DIM)
        ws = [torch.nn.Parameter((u * eye).clone()) for _ in range(DEPTH)]
        v = torch.nn.Parameter((u * eye).clone())
        lr = torch.linspace(0.005, 0.05, n, dtype=torch.float64)[:, None, None]
        t0 = time.perf_counter()
        for _ in range(k):
            wbar = ws[0]
            for w in ws[1:]:
                wbar = torch.bmm(w, wbar)
            a = torch.bmm(v, wbar)
            loss = 0.5 * (a * a * sxx).sum() - (a * wbar.detach() * lam).sum()
            loss.backward()
            with torch.no_grad():
                for p in ws + [v]:
                    p -= lr * p.grad
                    p.grad = None
        return time.perf_counter() - t0

    batched(batched_networks, 20)  # warm-up
    per_step = batched(batched_networks, batched_steps) / batched_steps
    return {"per_network_s": per_network, "networks_timed": n_timed, "batched_per_step_s": per_step,
            "batched_networks": batched_networks, "threads": 1, "torch": torch.__version__}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    n, steps = a.networks, a.steps
    total = n * steps
    res = {"machine": common.machine(), "load_before": common.load(), "networks": n, "steps": steps,
           "workload": f"deep linear JEPA, depth {DEPTH}, d={DIM}, population loss, SGD, float64"}
    print(f"load average before: {res['load_before']}", flush=True)
    tmp = tempfile.mkdtemp(prefix="bench_grid_")
    try:
        cli = [run(grid_args(n, steps, os.path.join(tmp, f"grid{r}"))) for r in range(a.repeats)]
        res["train_grid_cli_s"] = statistics.median(cli)
        res["train_grid_cli_all_s"] = cli
        print(f"  train-grid CLI: {res['train_grid_cli_s']:.1f} s ({total / res['train_grid_cli_s']:.3g} "
              "network-steps/s)", flush=True)
        one = [run(train_args(steps, os.path.join(tmp, f"train{r}"))) for r in range(a.repeats)]
        res["train_cli_one_s"] = statistics.median(one)
        res["train_cli_one_all_s"] = one
        print(f"  one train CLI process: {res['train_cli_one_s']:.2f} s -> {n} runs: "
              f"{n * res['train_cli_one_s']:.0f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from jepa_dynamics.training import train

    cfg = train.TrainConfig(objective="jepa", depth=DEPTH, lam=LAM, rho=RHO, eps=0.02, lr=0.02, steps=steps,
                            records=100)
    t0 = time.perf_counter()
    train.train(cfg)
    res["train_in_process_one_s"] = time.perf_counter() - t0
    res["engine"] = engine(n, steps, a.repeats)
    print(f"  engine: {res['engine']['s']:.2f} s ({total / res['engine']['s']:.3g} network-steps/s); first call "
          f"{res['engine']['first_call_s']:.2f} s", flush=True)
    try:
        res["torch"] = torch_loop(4, steps, n, 500)
        print(f"  torch per network {res['torch']['per_network_s']:.2f} s; batched {res['torch']['batched_per_step_s'] * 1e3:.2f}"
              " ms/step", flush=True)
    except ImportError:
        res["torch"] = None
        print("  torch is not installed: no PyTorch columns", flush=True)
    res["load_after"] = common.load()
    rates = {
        "train-grid (CLI, end to end)": total / res["train_grid_cli_s"],
        "train-grid engine (compiled, warm)": total / res["engine"]["s"],
        "sequential `train` CLI processes (extrapolated)": total / (n * res["train_cli_one_s"]),
        "sequential `train.train` in one process (extrapolated)": total / (n * res["train_in_process_one_s"]),
    }
    if res["torch"]:
        rates["PyTorch eager, loop over networks (extrapolated)"] = steps / res["torch"]["per_network_s"]
        rates["PyTorch eager, bmm over all networks (extrapolated)"] = n / res["torch"]["batched_per_step_s"]
    res["network_steps_per_s"] = rates
    print("saved", common.save("grid.json", res))
    base = rates["sequential `train` CLI processes (extrapolated)"]
    print(f"\n{n:,} networks x {steps:,} steps; load {res['load_before']} -> {res['load_after']}\n")
    print("| path | wall time for the grid | network-steps/s | vs sequential `train` |")
    print("|---|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {total / r:,.1f} s | {r:.3g} | {r / base:,.0f}× |")


if __name__ == "__main__":
    main()
