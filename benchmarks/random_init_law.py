"""The law of feature loss under small random init (docs/theory.md section 10, "Random init, predicted"):
trained networks, the matrix flow from their own init, and a predictor from the init alone; then minibatch
SGD against the population flow.

    PYTHONPATH=. python3 benchmarks/random_init_law.py [--seeds 16] [--out benchmarks/results]

Writes ``random_init_law.json`` (the accuracy table by objective and depth, the predictor's coefficients,
the sampled-SGD agreement by batch size, the timings) and ``random_init_law.npz`` (every (network, feature)
row, what ``jepa-dynamics figures --only random_init`` draws from when it is there).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from jepa_dynamics.experiments import random_init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--per-dim", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = random_init.study(seeds=args.seeds, per_dim=args.per_dim, progress=True)
    t_study = time.perf_counter() - t0
    pred = random_init.fit_predictor(res["rows"])
    print(random_init.study_table(res, pred))
    t0 = time.perf_counter()
    samp = random_init.sampled()
    t_sampled = time.perf_counter() - t0
    for k, v in samp["rows"].items():
        print(k, v)
    strip = {o: {k: v for k, v in p.items() if k not in ("prediction", "mask")} for o, p in pred.items()}
    out = {"command": "PYTHONPATH=. python3 benchmarks/random_init_law.py", "pairs": int(res["rows"]["feature"].size),
           "predictor": strip, "table": random_init.study_table(res, pred), "sampled": samp,
           "datasets": res["datasets"], "steps": res["steps"], "seconds": {"study": t_study, "sampled": t_sampled}}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "random_init_law.json"), "w") as f:
        json.dump(out, f, indent=1, default=float)
    np.savez_compressed(os.path.join(args.out, "random_init_law.npz"),
                        **{k: np.asarray(v) for k, v in res["rows"].items()})


if __name__ == "__main__":
    main()
