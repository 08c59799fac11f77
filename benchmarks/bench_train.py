"""Training steps per second: the project's jitted loop against a PyTorch eager loop, on the CPU.

    pip install torch==2.13.0     # the CPU build on this machine (the `bench` extra: `pip install -e '.[bench]'`)
    python benchmarks/bench_train.py                 # the two headline configs + FLOP rates (~4 min)
    python benchmarks/bench_train.py --scaling       # step time against d = 16 ... 512, plotted

The project side is ``jepa_dynamics.training.train``'s own loop (``train._Runner.advance``: one
``jax.jit`` of a ``lax.scan`` over ``chunk`` steps, minibatch sampled inside the step with
``jax.random``), timed after a warm-up chunk (compile excluded; the compile time is
reported separately, and ``train.train`` end to end for the 10k-step linear run).  The deep
linear model's minibatch is drawn as its scatter matrices (``train.Program.scatter``: exact,
the same distribution as drawing the samples); the samples-drawn loop is timed too, as a
side-by-side row (``samples_drawn``).  For the MLP, two bounds are timed in the same run: our
loop on one fixed minibatch (``one_batch``: the step without its sampling) and the step's 14
matrix products alone (``matmuls_alone_steps_per_s``), besides the rate every FLOP would run at
the measured matmul peak.
The PyTorch side is benchmarks/torch_baseline.py.  Both float32, JEPA with stop-gradient
target, plain SGD, batch 1024, on the same 2-core CPU.  FLOPs per step count every matmul
(forward ``2 B n_in n_out``; the trained path costs 3x that with its backward pass, the
target encoder 1x) -- elementwise work and sampling are not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

HEADLINE = {
    "deep linear": dict(model="linear", dim=64, depth=4, width=None),
    "MLP": dict(model="mlp", dim=100, depth=3, width=256),
}
STEP_SCALE = {"deep linear": 1.0, "MLP": 0.25}  # the MLP step costs ~6x more: time fewer steps
BATCH = 1024


def step_flops(model, dim, depth, width, batch=BATCH):
    width = width or dim
    dims = [dim] + [width] * (depth - 1) + [dim]
    enc = sum(dims[a] * dims[a + 1] for a in range(depth))
    pred = dim * dim
    return 2 * batch * (3 * (enc + pred) + enc)


def config(model, dim, depth, width, steps, chunk):
    from jepa_dynamics.training import train

    return train.TrainConfig(model=model, objective="jepa", depth=depth, dist="same-trend", dim=dim, width=width,
                             eps=1e-2, loss="sampled", batch=BATCH, optimizer="sgd", lr=1e-2, steps=steps,
                             records=1, dtype="float32", chunk=chunk)


def jax_steps_per_s(model, dim, depth, width, steps, repeats):
    """The project's loop: compile + first chunk, then ``repeats`` timings of ``steps`` steps."""
    from jepa_dynamics.training import train

    cfg = config(model, dim, depth, width, steps, chunk=min(1000, steps))
    t0 = time.perf_counter()
    runner = train._Runner(cfg)
    state = runner.advance(runner.initial, 0, runner.chunk)
    state[0].encoder.layers[0].block_until_ready()
    first = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state = runner.advance(state, 0, steps)
        state[0].encoder.layers[0].block_until_ready()
        rates.append(steps / (time.perf_counter() - t0))
    return {"steps_per_s": statistics.median(rates), "all": rates, "first_chunk_with_compile_s": first,
            "chunk": runner.chunk}


@contextlib.contextmanager
def samples_drawn():
    """The deep linear step as it was before ``Program.scatter`` (the scatter-matrix minibatch): the minibatch's
    ``2 x B x d`` samples drawn each step and pushed through the model, instead of its scatter
    matrices drawn from their Wishart distribution.  For the side-by-side row only."""
    from jepa_dynamics.training import train

    with _swapped(train.Program, "scatter", property(lambda self: False)):
        yield


@contextlib.contextmanager
def _swapped(owner, name, value):
    """``owner.name`` replaced by ``value`` (and ``train``'s compiled loops dropped) for the block."""
    from jepa_dynamics.training import train

    old = getattr(owner, name)
    setattr(owner, name, value)
    train._compiled.cache_clear()
    try:
        yield
    finally:
        setattr(owner, name, old)
        train._compiled.cache_clear()


@contextlib.contextmanager
def one_batch():
    """Our loop with every step on one minibatch, drawn once before the loop and compiled in
    as a constant: the step without its sampling.  For the MLP's bounds only."""
    import jax

    from jepa_dynamics.training import train

    draw = train.draw
    batches = {}

    def fixed(program, hp, k):  # a constant of the compiled loop: drawn once, outside it
        if program.loss == "population" or program.scatter:
            return draw(program, hp, k)
        if program not in batches:
            with jax.ensure_compile_time_eval():
                batch = program.dataset.sample(jax.random.key(0), program.batch, program.jnp_dtype)
            batches[program] = jax.tree_util.tree_map(np.asarray, batch)
        return batches[program]

    with _swapped(train, "draw", fixed):
        yield


def matmuls_alone_steps_per_s(dim, width, steps, repeats, batch=BATCH):
    """The MLP step's matrix products alone, with XLA: the same shapes, in the same order, under the
    same ``jit`` + ``lax.scan``, without sampling, tanh, the loss or the update's elementwise work
    (each step still depends on the last, so nothing is hoisted).  An upper bound for any float32
    implementation of the step on XLA's CPU matmuls (3 layers: ``dim -> width -> width -> dim``)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    shapes = [(width, dim), (width, width), (dim, width), (dim, dim)]
    params = tuple(jnp.asarray((rng.standard_normal(s) / np.sqrt(s[1])).astype(np.float32)) for s in shapes)
    x0 = jnp.asarray(rng.standard_normal((batch, dim)).astype(np.float32))
    y0 = jnp.asarray(rng.standard_normal((batch, dim)).astype(np.float32))

    def body(p, i):
        w1, w2, w3, v = p
        x = x0 * (1 + 1e-6 * i.astype(jnp.float32))
        h1 = x @ w1.T; h2 = h1 @ w2.T; z = h2 @ w3.T                       # online forward  # noqa: E702
        t = ((y0 @ w1.T) @ w2.T) @ w3.T                                       # target forward
        r = z @ v.T - t
        gv = r.T @ z; dz = r @ v                                              # noqa: E702
        g3 = dz.T @ h2; d2 = dz @ w3                                          # noqa: E702
        g2 = d2.T @ h1; d1 = d2 @ w2                                          # noqa: E702
        g1 = d1.T @ x
        return tuple(a - 1e-9 * g for a, g in zip(p, (g1, g2, g3, gv))), None

    run = jax.jit(lambda p: jax.lax.scan(body, p, jnp.arange(steps))[0])
    jax.block_until_ready(run(params))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(params))
        rates.append(steps / (time.perf_counter() - t0))
    return {"steps_per_s": statistics.median(rates), "all": rates}


def torch_steps_per_s(model, dim, depth, width, steps, repeats):
    import torch

    from benchmarks import torch_baseline
    from jepa_dynamics.training import data

    ds = data.make("same-trend", dim=dim)
    net = torch_baseline.make(model, dim, depth, width)
    args = (ds.sigma2, ds.rho, ds.syy, ds.lam)
    by_threads = {}
    for threads in (1, 2):  # 2 OpenMP threads suffer badly when the shared box is loaded: keep the faster
        torch.set_num_threads(threads)
        torch_baseline.run(net, *args, batch=BATCH, steps=min(100, steps))  # warm-up
        by_threads[threads] = [steps / torch_baseline.run(net, *args, batch=BATCH, steps=steps)
                               for _ in range(repeats)]
    torch.set_num_threads(os.cpu_count())
    best = max(by_threads, key=lambda t: statistics.median(by_threads[t]))
    return {"steps_per_s": statistics.median(by_threads[best]), "all": by_threads[best], "threads": best,
            "by_threads": {t: statistics.median(v) for t, v in by_threads.items()}}


def matmul_rates(sizes, repeats=10):
    """Best-of-``repeats`` float32 GFLOP/s of ``(m, k) @ (k, n)`` with jnp.dot and torch.matmul.

    Each timing multiplies a stack of ``inner`` different ``(m, k)`` matrices (~2 GFLOP in
    all) so that nothing can be hoisted out of a loop and call overhead is amortised.
    PyTorch is timed with 1 and with 2 threads; the faster counts."""
    import jax
    import jax.numpy as jnp
    import torch

    out = {}
    for m, k, n in sizes:
        flops = 2.0 * m * k * n
        inner = max(1, min(int(2e9 // flops), int(64e6 // (m * k))))
        rng = np.random.default_rng(0)
        a = rng.standard_normal((inner, m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        f = jax.jit(lambda x, y: jnp.dot(x, y))
        f(ja, jb).block_until_ready()
        best_j = min(_timed(lambda: f(ja, jb).block_until_ready()) for _ in range(repeats))
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        best_t = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.matmul(ta, tb)
            best_t[threads] = min(_timed(lambda: torch.matmul(ta, tb)) for _ in range(repeats))
        torch.set_num_threads(os.cpu_count())
        key = f"{m}x{k}x{n}"
        out[key] = {"jax_gflops": inner * flops / best_j / 1e9,
                    "torch_gflops": inner * flops / min(best_t.values()) / 1e9,
                    "torch_gflops_by_threads": {t: inner * flops / v / 1e9 for t, v in best_t.items()}}
        print(f"  matmul {key}: jnp.dot {out[key]['jax_gflops']:.1f} GFLOP/s, "
              f"torch.matmul {out[key]['torch_gflops']:.1f} GFLOP/s", flush=True)
    return out


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def headline(a):
    res = {"machine": common.machine(), "load_before": common.load(), "batch": BATCH, "dtype": "float32"}
    print(f"load average before: {res['load_before']}", flush=True)
    res["matmul"] = matmul_rates([(1024, 64, 64), (1024, 100, 256), (1024, 256, 256), (1024, 1024, 1024)])
    peak = max(max(v["jax_gflops"], v["torch_gflops"]) for v in res["matmul"].values())
    res["peak_gflops"] = peak
    res["configs"] = {}
    for name, c in HEADLINE.items():
        flops = step_flops(**c)
        steps = max(100, int(a.steps * STEP_SCALE[name]))
        j = jax_steps_per_s(**c, steps=steps, repeats=a.repeats)
        t = torch_steps_per_s(**c, steps=steps, repeats=a.repeats)
        entry = {"config": c, "flops_per_step": flops, "jax": j, "torch": t, "steps_timed": steps,
                 "ratio": j["steps_per_s"] / t["steps_per_s"]}
        for side in ("jax", "torch"):
            entry[side]["gflops"] = flops * entry[side]["steps_per_s"] / 1e9
            entry[side]["fraction_of_peak"] = entry[side]["gflops"] / peak
        res["configs"][name] = entry
        print(f"  {name}: jax {j['steps_per_s']:.0f} steps/s ({entry['jax']['gflops']:.1f} GFLOP/s), torch "
              f"{t['steps_per_s']:.0f} steps/s ({entry['torch']['gflops']:.1f} GFLOP/s), ratio {entry['ratio']:.2f}x",
              flush=True)
    # the same deep linear loop with the minibatch's samples drawn (the path before Program.scatter)
    c = HEADLINE["deep linear"]
    with samples_drawn():
        j = jax_steps_per_s(**c, steps=a.steps, repeats=a.repeats)
    res["deep_linear_samples_drawn"] = j
    print(f"  deep linear, samples drawn (before the scatter path): jax {j['steps_per_s']:.0f} steps/s", flush=True)
    # the MLP's bounds (docs/benchmarks.md section 3): how fast its step could go without sampling, and with nothing but its matmuls
    c = HEADLINE["MLP"]
    steps = max(100, int(a.steps * STEP_SCALE["MLP"]))
    with one_batch():
        fixed = jax_steps_per_s(**c, steps=steps, repeats=a.repeats)
    alone = matmuls_alone_steps_per_s(c["dim"], c["width"], steps, a.repeats)
    torch_mlp = res["configs"]["MLP"]["torch"]["steps_per_s"]
    flops = step_flops(**c)
    res["mlp_bounds"] = {
        "one_batch": fixed, "matmuls_alone": alone,
        "ratio_one_batch": fixed["steps_per_s"] / torch_mlp, "ratio_matmuls_alone": alone["steps_per_s"] / torch_mlp,
        "steps_per_s_at_peak": peak * 1e9 / flops, "ratio_at_peak": peak * 1e9 / flops / torch_mlp,
        "matmuls_alone_gflops": flops * alone["steps_per_s"] / 1e9}
    b = res["mlp_bounds"]
    print(f"  MLP bounds: one fixed batch {fixed['steps_per_s']:.0f} steps/s ({b['ratio_one_batch']:.2f}x PyTorch), "
          f"matmuls alone {alone['steps_per_s']:.0f} ({b['ratio_matmuls_alone']:.2f}x, "
          f"{b['matmuls_alone_gflops']:.0f} GFLOP/s), every FLOP at the peak {b['steps_per_s_at_peak']:.0f} "
          f"({b['ratio_at_peak']:.2f}x)", flush=True)
    if a.full:  # the headline workload: 10k steps of the deep linear config, end to end through train.train
        from jepa_dynamics.training import train

        c = HEADLINE["deep linear"]
        t0 = time.perf_counter()
        train.train(config(**c, steps=10_000, chunk=1000))
        res["train_10k_linear_end_to_end_s"] = time.perf_counter() - t0
        import torch  # noqa: F401

        from benchmarks import torch_baseline
        from jepa_dynamics.training import data

        ds = data.make("same-trend", dim=c["dim"])
        t0 = time.perf_counter()
        net = torch_baseline.make(c["model"], c["dim"], c["depth"], c["width"])
        torch_baseline.run(net, ds.sigma2, ds.rho, ds.syy, ds.lam, batch=BATCH, steps=10_000)
        res["torch_10k_linear_end_to_end_s"] = time.perf_counter() - t0
        print(f"  10k linear steps end to end: train.train {res['train_10k_linear_end_to_end_s']:.1f} s "
              f"(compile included), torch {res['torch_10k_linear_end_to_end_s']:.1f} s", flush=True)
    res["load_after"] = common.load()
    print("saved", common.save("train.json", res))
    print_table(res)


def print_table(res):
    print(f"\n| model | jax steps/s (median of {len(next(iter(res['configs'].values()))['jax']['all'])}) | PyTorch eager steps/s "
          "| ratio | MFLOP/step | jax GFLOP/s (% of peak) | PyTorch GFLOP/s (% of peak) |")
    print("|---|---|---|---|---|---|---|")
    for name, e in res["configs"].items():
        print(f"| {name} | {e['jax']['steps_per_s']:.0f} | {e['torch']['steps_per_s']:.0f} | {e['ratio']:.2f}× | "
              f"{e['flops_per_step'] / 1e6:.0f} | {e['jax']['gflops']:.1f} ({100 * e['jax']['fraction_of_peak']:.0f}%) | "
              f"{e['torch']['gflops']:.1f} ({100 * e['torch']['fraction_of_peak']:.0f}%) |")


def scaling(a):
    dims = [16, 32, 64, 128, 256, 512]
    res = {"machine": common.machine(), "load_before": common.load(), "model": "deep linear L=4, batch 1024, float32",
           "dims": dims, "jax": [], "torch": []}
    for d in dims:
        c = dict(model="linear", dim=d, depth=4, width=None)
        steps = int(max(20, min(2000, 1.5e11 / step_flops(**c))))  # ~1-2 s per timing
        j = jax_steps_per_s(**c, steps=steps, repeats=3)
        t = torch_steps_per_s(**c, steps=steps, repeats=3)
        res["jax"].append(1.0 / j["steps_per_s"])
        res["torch"].append(1.0 / t["steps_per_s"])
        print(f"  d={d}: {steps} steps; jax {1e3 / j['steps_per_s']:.2f} ms/step, torch {1e3 / t['steps_per_s']:.2f} ms/step",
              flush=True)
    res["flops_per_step"] = [step_flops("linear", d, 4, None) for d in dims]
    res["load_after"] = common.load()
    print("saved", common.save("train_scaling.json", res))
    plot_scaling(res)


def plot_scaling(res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(res["dims"], np.array(res["jax"]) * 1e3, "o-", label="jepa-dynamics (jax.jit + lax.scan)")
    ax.loglog(res["dims"], np.array(res["torch"]) * 1e3, "s--", label="PyTorch eager")
    ax.set_xticks(res["dims"])
    ax.set_xticklabels([str(d) for d in res["dims"]])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("d (features = layer width)")
    ax.set_ylabel("time per SGD step (ms)")
    ax.set_title("Deep linear JEPA, L = 4, batch 1024, float32, 2-core CPU", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(common.DOCS, "bench_train_scaling.png")
    os.makedirs(common.DOCS, exist_ok=True)
    fig.savefig(path, dpi=120)
    print("wrote", path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="steps per timing (after warm-up)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-full", dest="full", action="store_false", help="skip the 10k-step end-to-end runs")
    ap.add_argument("--scaling", action="store_true", help="step time against d instead of the headline table")
    ap.add_argument("--plot-only", action="store_true", help="with --scaling: redraw from results/train_scaling.json")
    a = ap.parse_args(argv)
    if a.scaling and a.plot_only:
        import json

        with open(os.path.join(common.RESULTS, "train_scaling.json")) as f:
            return plot_scaling(json.load(f))
    scaling(a) if a.scaling else headline(a)


if __name__ == "__main__":
    main()
