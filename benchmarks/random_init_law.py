"""The law of feature loss under small random init (docs/theory.md section 10, "Random init, predicted"):
trained networks, the matrix flow from their own init, and a predictor from the init alone; then minibatch
SGD against the population flow.

    PYTHONPATH=. python3 benchmarks/random_init_law.py [--seeds 16] [--out benchmarks/results] [--figures figures]

Writes ``random_init_law.json`` (the accuracy table by objective and depth, the predictor's coefficients,
the sampled-SGD agreement by batch size, the timings), ``random_init_law.npz`` (every (network, feature)
row) and the committed figure ``figures/random_init.png`` / ``.pdf`` drawn from them
(``--figures ''`` skips it; ``--from-results`` redraws it from the saved files without training).
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
    ap.add_argument("--figures", default=os.path.join(os.path.dirname(os.path.dirname(__file__)), "figures"))
    ap.add_argument("--from-results", action="store_true", help="redraw the figure from --out's files")
    args = ap.parse_args()
    if args.from_results:
        with open(os.path.join(args.out, "random_init_law.json")) as f:
            samp = json.load(f)["sampled"]
        rows = dict(np.load(os.path.join(args.out, "random_init_law.npz"), allow_pickle=True))
        draw({"rows": rows}, samp, args.figures)
        return
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
    if args.figures:
        draw(res, samp, args.figures)


def draw(results, sampled, folder) -> None:
    """``folder/random_init.png`` and ``.pdf`` from a study's rows and the sampled-SGD table."""
    from jepa_dynamics import figures
    from jepa_dynamics._style import save_figure

    fig = figures.random_init(results=results, sampled=sampled)
    for fmt in ("png", "pdf"):
        save_figure(fig, os.path.join(folder, f"random_init.{fmt}"), dpi=150)


if __name__ == "__main__":
    main()
