"""What the matrix-flow prediction of a random-init ``train-grid`` costs beside the training itself
(docs/theory.md section 10, "Random init, predicted").

    PYTHONPATH=. python3 benchmarks/bench_random_init_flow.py [--networks 1024] [--repeats 3]

The workload: 1,024 deep linear networks from a small random init (JEPA and MAE x seeds), depth 2,
d = 4 features (lam = 1, .6, .8, .7; rho = .9, .5, .7, .6), eps = 0.01, population loss, plain SGD at
lr 0.02 to the flow's horizon (every network settled), float64.  Timed side by side in one process, each
after a warm-up call (compile excluded), medians of ``--repeats``:

* the training engine, ``grid.train_group`` (what ``train-grid`` runs per block);
* the batched matrix flows of the same networks from the same initial matrices, ``grid._flows`` (what
  ``train-grid`` adds for random inits: one vmapped Tsit5 loop per depth, crossings tracked per step).

Reported: both times and the ratio flow / training (the target: at most 2), and how often the flow's
fate equals the trained network's.  The same grid as a command:
``jepa-dynamics train-grid --objective jepa,mae --depth 2 --lam 1,0.6,0.8,0.7 --rho 0.9,0.5,0.7,0.6
--eps 0.01 --init random --lr 0.02 --steps STEPS --seed 0,...,511 --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from jepa_dynamics.training import _flow, grid

LAM, RHO = [1.0, 0.6, 0.8, 0.7], [0.9, 0.5, 0.7, 0.6]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "random_init_flow.json"))
    args = ap.parse_args()
    base = dict(lam=LAM, rho=RHO, depth=2, eps=0.01, init="random", lr=0.02, steps=1, records=1)
    probe = grid.configs_from(base, {"seed": [0]})[0]
    steps = int(np.ceil(_flow.horizon(probe, probe.dataset()) / 0.02))
    configs = grid.configs_from({**base, "steps": steps},
                                {"objective": ["jepa", "mae"], "seed": list(range(args.networks // 2))})
    pred = grid.predict(configs)
    levels = np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)
    idx = np.arange(len(configs))
    groups = grid.plan(configs)

    def train():
        return [grid.train_group([configs[i] for i in g], levels[g], progress=False) for g in groups]

    def flows():
        return grid._flows(configs, idx, levels)

    times = {"train": [], "flow": []}
    out_train, out_flow = train(), flows()  # warm-up: compile
    for _ in range(args.repeats):
        for name, fn in (("train", train), ("flow", flows)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    final = np.concatenate([r.final for r in out_train])
    order = np.concatenate(groups)
    settled = np.empty_like(final)
    settled[np.argsort(order)] = final  # back to config order
    flow_learned = np.stack([out_flow["flows"][k].learned for k in range(len(configs))])
    agree = float(np.mean(flow_learned == (settled >= levels)))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"command": "PYTHONPATH=. python3 benchmarks/bench_random_init_flow.py", "networks": len(configs),
              "steps": steps, "seconds": times, "median_seconds": med, "ratio_flow_to_train": med["flow"] / med["train"],
              "fate_agreement": agree, "load_average": os.getloadavg()}
    print(json.dumps(result, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
