"""The ``jepa-dynamics`` command: parse flags, call the API, write files.

Subcommands register themselves in :data:`COMMANDS` as ``name: (add_parser,
run)``.  Errors are one line on stderr and a non-zero exit, never a traceback:

* a bad flag or value (``SpecError`` / usage): exit 2, ``jepa-dynamics <cmd>: error: --flag: problem``;
* a solver failure: exit 1;
* Ctrl-C: exit 130, with what was kept and how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._version import __version__
from .. import records
from ..theory import spec

__all__ = ["main", "COMMANDS"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit 2 (no usage dump)."""

    def error(self, message):  # noqa: D401
        raise _UsageError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_grid_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--objective", default="jepa,mae", help="comma-separated: jepa, mae (default: jepa,mae)")
    p.add_argument("--depth", default="1,2,4", help="encoder depths L, positive integers (default: 1,2,4)")
    p.add_argument("--lam", default="0.5,1", help="covariances lam > 0 (default: 0.5,1)")
    p.add_argument("--rho", default="0.3,0.6,0.9", help="regression coefficients rho > 0 (default: 0.3,0.6,0.9)")
    p.add_argument("--eps", default="1e-4", help="initial responses, 0 < eps < fraction * w_star (default: 1e-4)")
    p.add_argument("--fraction", default="0.5", help="t_star is when w = fraction * w_star, in (0, 1) (default: 0.5)")
    p.add_argument("--method", default="exact", choices=spec.METHODS,
                   help="exact: closed forms; ode: diffrax integration (default: exact)")


def _add_progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the progress bar on stderr")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")


def _one(text, name: str, kind=float):
    """The single value of a flag that takes one (``None`` stays ``None``); a comma list is refused
    with one line, never cut to its first value."""
    if text is None:
        return None
    values = spec.parse_list(text, name, kind)
    if len(values) != 1:
        raise spec.SpecError(name, f"takes one value, got {len(values)} ({text})")
    return values[0]


def _grid(args):
    from ..experiments.sweep import parse_grid

    return parse_grid(args.objective, args.depth, args.lam, args.rho, args.eps, args.fraction)


def _add_allow_large(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-large", action="store_true",
                   help="go ahead even when the estimated output is above 10 GB or the free disk, or the estimated "
                        "memory above half of what is available (otherwise refused, naming the sizes)")


def _note(command: str):
    """A one-line note on stderr (``jepa-dynamics CMD: note: ...``)."""
    return lambda message: print(f"jepa-dynamics {command}: note: {message}", file=sys.stderr)


def _check_plot(path):
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".pdf", ".svg"):
        raise spec.SpecError("plot", f"must end in .png, .pdf or .svg, got {path!r}")
    return spec.check_writable(path, "plot")


# --- sweep -----------------------------------------------------------------------------------------------

def _add_aligned_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictor-init", default="balanced",
                   help="signed initial predictor/decoder entries V0, layers at eps**(1/depth); 'balanced' = "
                        "eps**(1/depth) (default: balanced; docs/theory.md section 9)")
    p.add_argument("--ema-rate", default="inf", help="EMA target rates kappa (1/time), JEPA only; inf = stop-gradient "
                                                     "(default: inf)")
    p.add_argument("--weight-decay", default="0", help="weight decay beta >= 0 on every layer and V (default: 0)")
    p.add_argument("--lr", default="0", help="plain gradient-descent step eta; 0 = gradient flow (default: 0)")


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="critical times over a grid of depth x lam x rho x eps (CSV)",
                       description="One CSV row per element of objective x depth x lam x rho x eps x fraction. "
                                   "Prints the files it wrote. Columns and formulas: docs/theory.md. Load the CSV "
                                   "with jepa_dynamics.records.read_csv(path) or pandas.read_csv(path, comment='#').")
    _add_grid_flags(p)
    _add_aligned_flags(p)
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--plot", help="also draw critical time against rho and lam (PNG/PDF/SVG)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep in --out, after checking that each row already there is "
                        "this grid's row at its position (refused, file untouched, if one is not)")
    p.add_argument("--repair", action="store_true",
                   help="with --resume: cut the file at its first row that is not the grid's (garbage, duplicates, "
                        "bytes that are not text) and compute the rest, instead of refusing")
    _add_allow_large(p)
    _add_progress_flags(p)


def _run_sweep(args, argv) -> int:
    from ..experiments.sweep import parse_grid, plot_rows, run_sweep

    grid = parse_grid(args.objective, args.depth, args.lam, args.rho, args.eps, args.fraction,
                      args.predictor_init, args.ema_rate, args.weight_decay, args.lr)
    spec.check_writable(args.out, "out")
    _check_plot(args.plot)
    if args.repair and not args.resume:
        raise spec.SpecError("repair", "only goes with --resume")
    # the provenance line leaves out --resume/--repair: a resumed sweep's file equals an uninterrupted one's
    command = records.command_line([a for a in argv if a not in ("--resume", "--repair")])
    run_sweep(grid, args.out, method=args.method, resume=args.resume, progress=args.progress,
              command=command, repair=args.repair, allow_large=args.allow_large,
              report=_note("sweep"))
    print(args.out)
    if args.plot:
        from .._style import save_figure, sweep_figure

        # only the rows the plot draws are read (bounded memory for sweeps of any size)
        save_figure(sweep_figure(records.read_csv_rows(args.out, plot_rows(grid))), args.plot)
        print(args.plot)
    return 0


# --- simulate --------------------------------------------------------------------------------------------

def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="trajectories w(t) for a grid of parameters (CSV or NPZ)",
                       description="Per-feature responses w(t) from w(0) = eps, exact or integrated. Prints the "
                                   "files it wrote. Formulas: docs/theory.md.")
    _add_grid_flags(p)
    p.add_argument("--t-max", type=float, help="last time (default: 4 x the largest critical time)")
    p.add_argument("--num-times", type=int, default=200, help="number of times after t = 0 (default: 200)")
    p.add_argument("--spacing", default="log", choices=("log", "linear"), help="time grid spacing (default: log)")
    p.add_argument("--out", required=True, help="output file: .csv (long format) or .npz")
    p.add_argument("--plot", help="also draw w(t) / w_star (PNG/PDF/SVG)")
    _add_allow_large(p)


def _run_simulate(args, argv) -> int:
    from ..experiments.sweep import check_simulate_size, run_simulate, time_grid

    grid = _grid(args)
    spec.check_positive_int(args.num_times, "num_times")
    if not args.out.endswith((".csv", ".npz")):
        raise spec.SpecError("out", f"must end in .csv or .npz, got {args.out!r}")
    spec.check_writable(args.out, "out")
    _check_plot(args.plot)
    check_simulate_size(grid, args.num_times, args.out, args.allow_large)  # before any array is made
    ts = None if args.t_max is None else time_grid(args.t_max, args.num_times, args.spacing)
    params, ts, w = run_simulate(grid, args.out, ts, method=args.method, num=args.num_times,
                                 spacing=args.spacing, command=records.command_line(argv),
                                 allow_large=args.allow_large)
    print(args.out)
    if args.plot:
        from .._style import save_figure, trajectory_figure

        save_figure(trajectory_figure(params, ts, w), args.plot)
        print(args.plot)
    return 0


# --- train -----------------------------------------------------------------------------------------------

def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train deep linear / MLP encoders and hold them against the theory",
                       description="Train one encoder with JEPA (stop-gradient or EMA target) or MAE on synthetic "
                                   "data; write DIR/responses.csv, DIR/summary.csv, DIR/plot.png, DIR/state.eqx "
                                   "(and DIR/checkpoints/) and print their paths. Every flag but --lam, --rho and "
                                   "--checkpoints takes one value; for grids of networks use jepa-dynamics "
                                   "train-grid. Without --resume, the files of an earlier run in DIR are removed "
                                   "first. --resume continues a run with the same flags; with a larger --steps and "
                                   "nothing else changed it extends a finished run. A refused command changes no "
                                   "file. Theory: docs/theory.md.")
    _add_training_flags(p)
    p.add_argument("--records", default="1000", help="number of recorded steps after step 0 (default: 1000)")
    p.add_argument("--grid", default="linear", help="recorded steps: linear or log spacing (default: linear)")
    p.add_argument("--checkpoints", help="comma-separated steps at which to save the encoder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (same flags; a larger --steps extends a finished run). Refused, "
                        "with every file left as it was, naming each flag that differs")
    _add_allow_large(p)
    _add_progress_flags(p)


def _add_training_flags(p) -> None:
    """The flags ``train`` and ``train-grid`` share (what a network is and how it trains)."""
    p.add_argument("--model", default="linear", help="linear (deep linear) or mlp (default: linear)")
    p.add_argument("--objective", default="jepa", help="jepa or mae (default: jepa)")
    p.add_argument("--depth", default="1", help="encoder depth L (default: 1)")
    p.add_argument("--lam", help="per-feature lam, comma-separated (with --rho)")
    p.add_argument("--rho", help="per-feature rho, comma-separated (with --lam)")
    p.add_argument("--dist", help="data family instead of --lam/--rho: same-trend, reversed-trend, static, dynamic")
    p.add_argument("--dim", default="100", help="number of features of --dist (default: 100)")
    p.add_argument("--eps", default="0.01", help="initial response, below fraction * w_star (default: 0.01)")
    p.add_argument("--init", default="balanced", help="balanced (every layer eps^(1/depth) times an orthogonal matrix; docs/theory.md), "
                        "aligned (diagonal layers eps^(1/depth) I, predictor V0 I: --predictor-init) or random "
                        "(default: balanced)")
    p.add_argument("--init-scale", help="random init: each factor's scale (default: eps**(1/depth))")
    p.add_argument("--predictor-init", help="aligned init: the signed predictor/decoder entry V0 (default: the balanced "
                                            "eps**(1/depth)); write a negative one as --predictor-init=-0.3")
    p.add_argument("--loss", default="population", help="population (exact, linear) or sampled (default: population)")
    p.add_argument("--batch", default="256", help="minibatch size for --loss sampled (default: 256)")
    p.add_argument("--optimizer", default="sgd", help="sgd (plain gradient descent, t = lr * step) or adam")
    p.add_argument("--lr", default="0.01", help="learning rate (default: 0.01)")
    p.add_argument("--steps", required=True, help="number of optimiser steps")
    p.add_argument("--ema", default="0", help="EMA target rate tau in [0, 1); 0 = stop-gradient (default: 0); the "
                                              "theory's rate is kappa = (1 - tau) / lr")
    p.add_argument("--weight-decay", default="0", help="coupled L2 beta on every layer and the predictor: grad += "
                                                       "beta * theta (default: 0)")
    p.add_argument("--seed", default="0", help="random seed (default: 0)")
    p.add_argument("--matmul-precision", default="highest", choices=("highest", "tf32"),
                   help="float32 matrix products: highest (full float32, default) or tf32 (GPUs' fast mode, ~10 "
                        "mantissa bits); recorded in the provenance")
    p.add_argument("--width", help="MLP hidden width (default: the number of features)")
    p.add_argument("--activation", default="tanh", help="MLP activation: tanh, relu, gelu, linear (default: tanh)")
    p.add_argument("--predictor", default="linear", help="linear or mlp predictor (default: linear)")
    p.add_argument("--fraction", default="0.5", help="critical time at fraction * w_star (default: 0.5)")


_TRAIN_LISTS = ("lam", "rho", "checkpoints", "out")  # train flags that may hold commas (lists, a path)


def _run_train(args, argv) -> int:
    from ..training.runs import run_files, run_training
    from ..training.train import TrainConfig

    for name, value in vars(args).items():
        if name not in _TRAIN_LISTS and isinstance(value, str) and "," in value:
            count = len(value.split(","))
            raise spec.SpecError(name, f"train takes one value, got {count} ({value}); to train a grid of "
                                       "networks use jepa-dynamics train-grid")

    config = TrainConfig(
        model=args.model, objective=args.objective, depth=_one(args.depth, "depth", int),
        lam=None if args.lam is None else spec.parse_list(args.lam, "lam"),
        rho=None if args.rho is None else spec.parse_list(args.rho, "rho"),
        dist=args.dist, dim=_one(args.dim, "dim", int), eps=_one(args.eps, "eps"), init=args.init,
        init_scale=_one(args.init_scale, "init_scale"), loss=args.loss, batch=_one(args.batch, "batch", int),
        optimizer=args.optimizer, lr=_one(args.lr, "lr"), steps=_one(args.steps, "steps", int),
        ema=_one(args.ema, "ema"), seed=_one(args.seed, "seed", int), width=_one(args.width, "width", int),
        activation=args.activation, predictor=args.predictor, fraction=_one(args.fraction, "fraction"),
        records=_one(args.records, "records", int), grid=args.grid,
        predictor_init=_one(args.predictor_init, "predictor_init"), weight_decay=_one(args.weight_decay, "weight_decay"),
        matmul_precision=args.matmul_precision,
        checkpoints=() if args.checkpoints is None else tuple(spec.parse_list(args.checkpoints, "checkpoints", int)),
    )
    spec.check_writable_dir(args.out, "out")
    # the provenance line leaves out --resume, so a resumed run's files equal an uninterrupted run's
    command = records.command_line([a for a in argv if a != "--resume"])
    run_training(config, args.out, resume=args.resume, progress=args.progress, command=command,
                 allow_large=args.allow_large, report=_note("train"))
    for path in run_files(args.out):
        print(path)
    return 0


# --- train-grid ------------------------------------------------------------------------------------------

GRID_LISTS = {"objective": str, "depth": int, "eps": float, "lr": float, "init": str, "init_scale": float,
              "predictor_init": float, "ema": float, "weight_decay": float, "seed": int}


def _add_train_grid(sub) -> None:
    p = sub.add_parser("train-grid", help="train a grid of networks in one program (vmapped, sharded)",
                       description="Train every network of the Cartesian product of the list flags (objective, "
                                   "depth, eps, lr, init, init-scale, predictor-init, ema, weight-decay, seed: "
                                   "comma lists) on one dataset (--lam/--rho or --dist), networks of one shape "
                                   "side by side in one jitted, vmapped program sharded over every local device; "
                                   "write DIR/summary.csv (one row per network and feature) and DIR/fidelity.png "
                                   "and print their paths. Knobs that do not apply to a network are dropped for it "
                                   "(MAE takes ema 0, --predictor-init is for --init aligned, --init-scale for "
                                   "--init random). --resume keeps the finished networks. A refused command "
                                   "changes no file. Deep linear encoders only. Docs: docs/grid.md.")
    _add_training_flags(p)
    p.add_argument("--block", default="4096", help="networks per program call and per appended block of rows "
                                                   "(default: 4096)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the grid in --out (same flags), keeping its "
                                                         "finished networks")
    _add_progress_flags(p)


def _run_train_grid(args, argv) -> int:
    from ..training.grid import configs_from, run_grid

    lists = {}
    for name, kind in GRID_LISTS.items():
        text = getattr(args, name)
        lists[name] = [None] if text is None else spec.parse_list(text, name, kind)
    for name, value in vars(args).items():
        if name not in GRID_LISTS and name not in ("lam", "rho", "out") and isinstance(value, str) and "," in value:
            raise spec.SpecError(name, f"takes one value, got {value!r} (the list flags are "
                                       f"{', '.join('--' + n.replace('_', '-') for n in GRID_LISTS)})")

    if args.model != "linear":
        raise spec.SpecError("model", f"train-grid trains deep linear encoders (--model linear), got {args.model!r}; "
                                      "train MLPs one at a time with jepa-dynamics train")
    base = dict(model=args.model, lam=None if args.lam is None else spec.parse_list(args.lam, "lam"),
                rho=None if args.rho is None else spec.parse_list(args.rho, "rho"), dist=args.dist,
                dim=_one(args.dim, "dim", int), loss=args.loss, batch=_one(args.batch, "batch", int),
                optimizer=args.optimizer, steps=_one(args.steps, "steps", int), width=_one(args.width, "width", int),
                activation=args.activation, predictor=args.predictor, fraction=_one(args.fraction, "fraction"),
                matmul_precision=args.matmul_precision, records=1)
    block = spec.check_positive_int(_one(args.block, "block", int), "block")
    configs = configs_from(base, lists)
    spec.check_writable_dir(args.out, "out")
    key = {"base": {k: v for k, v in base.items()}, "lists": lists}
    command = records.command_line([a for a in argv if a != "--resume"])
    table = run_grid(configs, args.out, key=key, resume=args.resume, progress=args.progress, command=command,
                     block=block)
    _print_files(args.out, ("summary.csv", "fidelity.png"))
    import numpy as np

    diverged = np.unique(table["network"][~np.isfinite(np.asarray(table["final_response"], dtype=float))])
    if diverged.size:  # train stops such a run with an error; in a grid the others' rows stand
        _note("train-grid")(f"{diverged.size} of {len(configs)} networks diverged (parameters no longer finite; "
                            f"networks {', '.join(str(int(n)) for n in diverged[:10])}"
                            f"{', ...' if diverged.size > 10 else ''}): their rows hold nan; lower --lr for them")
    note = _unreached_grid_note(table, len(configs), configs[0].steps, configs[0].optimizer)
    if note:
        _note("train-grid")(note)
    return 0


def _unreached_grid_note(table, n_networks: int, steps: int, optimizer: str = "sgd"):
    """One line when features the theory learns did not reach their level within ``--steps`` (as
    ``train`` says for one run), with the steps the gradient-flow theory needs; ``None`` if none."""
    import numpy as np

    from ..training import runs

    col = lambda name: np.asarray(table[name], dtype=float)  # noqa: E731
    missed = ((np.asarray(table["learned_theory"]) == "true") & np.isnan(col("critical_time_empirical"))
              & np.isfinite(col("final_response")))
    if not missed.any():
        return None
    networks = np.unique(col("network")[missed])
    need = np.ceil(col("critical_time_theory")[missed] / col("lr")[missed])
    need = need[np.isfinite(need)]
    kind = "" if optimizer == "sgd" else " (with adam, lr x step is not gradient-flow time)"
    hint = (f"; the gradient-flow theory{kind} needs up to {need.max():.0f} steps at their lr: rerun into a new --out "
            f"with --steps {runs.rerun_steps(need)}" if need.size else "")
    return (f"{networks.size} of {n_networks} networks ended at --steps {steps} before {int(missed.sum())} "
            f"(network, feature) rows the theory learns reached fraction * |w_inf| (critical_time_empirical is nan "
            f"there){hint}")


# --- figures ---------------------------------------------------------------------------------------------

def _add_figures(sub) -> None:
    p = sub.add_parser("figures", help="regenerate the figure groups: the paper's six and three beyond it (PNG and PDF)",
                       description=_FIGURES_DESCRIPTION)
    p.__class__ = _FiguresParser
    p.add_argument("--fast", action="store_true", help="small sizes (seconds per figure; what CI runs)")
    p.add_argument("--only", help="comma-separated figure names (default: all nine)")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--format", default="png,pdf", help="comma-separated: png, pdf, svg (default: png,pdf)")
    _add_progress_flags(p)


_FIGURES_DESCRIPTION = "Build each figure of jepa_dynamics.figures and write OUT/NAME.<format>."


class _FiguresParser(_Parser):
    """Lists the figure names in its help (importing :mod:`jepa_dynamics.figures` only then)."""

    def format_help(self):
        from ..figures import FIGURES

        self.description = f"{_FIGURES_DESCRIPTION} Figures (for --only): {', '.join(FIGURES)}."
        return super().format_help()


def _run_figures(args, argv) -> int:
    from ..figures import check_names, render

    names = None if args.only is None else check_names(spec.parse_list(args.only, "only", str))
    formats = spec.parse_list(args.format, "format", str)
    for path in render(names, args.out, fast=args.fast, formats=formats, progress=args.progress):
        print(path)
    return 0


# --- matrix ----------------------------------------------------------------------------------------------

def _add_matrix(sub) -> None:
    p = sub.add_parser("matrix", help="full-matrix gradient flow for any covariance (modes vs the per-feature theory)",
                       description="Integrate the matrix gradient flow of deep linear JEPA or MAE (spec section 11) "
                                   "for covariances from a file or a family; write DIR/summary.csv, "
                                   "DIR/responses.csv, DIR/end_to_end.npz and DIR/plot.png.")
    p.add_argument("--objective", required=True, help="jepa or mae")
    p.add_argument("--depth", required=True, help="encoder depth L")
    p.add_argument("--cov", help="npz file with sxx, sxy (= E[x y^T]) and syy")
    p.add_argument("--dist", help="covariance family instead of --cov: rotated, mixed, lagged")
    p.add_argument("--dim", help="dimension d of --dist")
    p.add_argument("--mixing", help="--dist mixed / lagged: 0 (commuting) to 1 (default: 0.5)")
    p.add_argument("--seed", default="0", help="seed of the family's rotations and of the init (default: 0)")
    p.add_argument("--eps", required=True, help="init scale: Wbar(0) = eps I (balanced), eps Q^T (aligned)")
    p.add_argument("--init", default="balanced", help="balanced, aligned or random (default: balanced)")
    p.add_argument("--init-scale", help="random init: each matrix's scale (default: eps**(1/depth))")
    p.add_argument("--ema-rate", help="JEPA EMA target rate kappa (1/time); default: stop-gradient target")
    p.add_argument("--weight-decay", default="0", help="weight decay beta on every layer and V (default: 0)")
    p.add_argument("--fraction", default="0.5", help="critical time at fraction * gamma_inf (default: 0.5)")
    p.add_argument("--t-max", help="last time (default: 2 x the latest theory t* + 40 relaxation times)")
    p.add_argument("--num-times", default="200", help="number of output times after t = 0, half log-, half evenly spaced (default: 200)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    _add_allow_large(p)
    _add_progress_flags(p)


def _run_matrix(args, argv) -> int:
    from ..engines.matrix import MatrixConfig
    from ..experiments.matrix_run import check_footprint, load_dataset, run_matrix

    if args.init not in ("balanced", "aligned", "random"):
        spec.check_choice(args.init, ("balanced", "aligned", "random"), "init")
    config = MatrixConfig(objective=args.objective, depth=_one(args.depth, "depth", int), eps=_one(args.eps, "eps"),
                          init=args.init, init_scale=_one(args.init_scale, "init_scale"), seed=_one(args.seed, "seed", int),
                          ema_rate=_one(args.ema_rate, "ema_rate"), weight_decay=_one(args.weight_decay, "weight_decay"),
                          fraction=_one(args.fraction, "fraction"))
    if args.init_scale is not None and args.init != "random":
        raise spec.SpecError("init_scale", "applies to --init random only")
    if args.dist is not None:
        spec.check_choice(args.dist, ("rotated", "mixed", "lagged"), "dist")
    mixing = _one(args.mixing, "mixing")
    dim, num_times = _one(args.dim, "dim", int), _one(args.num_times, "num_times", int)
    if args.dist is not None and dim is not None:  # before the family's d x d matrices are made
        check_footprint(dim, config.depth, num_times, args.out, args.allow_large)
    sxx, sxy, syy, source = load_dataset(args.cov, args.dist, dim, mixing, config.seed)
    check_footprint(sxx.shape[0], config.depth, num_times, args.out, args.allow_large)
    command = records.command_line([a for a in argv if a != "--resume"])
    run_matrix(config, (sxx, sxy, syy), args.out, t_max=_one(args.t_max, "t_max"),
               num_times=num_times, resume=args.resume, progress=args.progress,
               command=command, source=source)
    _print_files(args.out, ("summary.csv", "responses.csv", "end_to_end.npz", "plot.png"))
    return 0


# --- spectrum --------------------------------------------------------------------------------------------

def _add_spectrum(sub) -> None:
    p = sub.add_parser("spectrum", help="modes of two views of real data and the predicted JEPA / MAE orders",
                       description="Empirical covariances of two views (--views FILE.npz with arrays x, y of shape "
                                   "(n, d), or a bundled --dataset), their modes (generalised eigenvectors of "
                                   "(sym(Sxy), Sxx)), and each mode's predicted critical time for JEPA and MAE; "
                                   "writes DIR/modes.csv, DIR/covariances.npz and DIR/spectrum.png.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--views", help=".npz file with arrays x and y of shape (n, d)")
    src.add_argument("--dataset", help="bundled offline data: digits (two augmentations of sklearn's digits) or "
                                       "patches (neighbouring patches of scikit-image's images)")
    g = p.add_argument_group("dataset options (--dataset only)")
    g.add_argument("--n", help="number of pairs (default: digits 17970, patches 100000)")
    g.add_argument("--seed", help="seed of the pairs (default: 0)")
    g.add_argument("--noise", help="digits: pixel noise standard deviation, pixels in [0, 1] (default: 0.1)")
    g.add_argument("--shift", help="digits: largest shift in pixels of each view (default: 1)")
    g.add_argument("--patch", help="patches: patch side in pixels, d = patch^2 (default: 8)")
    g.add_argument("--offset", help="patches: target offset dr,dc in pixels (default: 0,patch)")
    g.add_argument("--images", help="patches: comma-separated scikit-image names (default: camera,astronaut,brick,"
                                    "grass,gravel,coins,moon,chelsea,coffee)")
    p.add_argument("--depth", default="1,2,3,4", help="encoder depths L, comma-separated (default: 1,2,3,4)")
    p.add_argument("--eps", default="1e-3", help="initial response eps of the balanced init (default: 1e-3)")
    p.add_argument("--fraction", default="0.5", help="t_star is when w = fraction * w_star (default: 0.5)")
    p.add_argument("--out", required=True, help="output folder")
    _add_allow_large(p)
    _add_progress_flags(p)
    t = p.add_argument_group("training on the views (--train): deep linear JEPA / MAE, full matrices, minibatch GD")
    t.add_argument("--train", action="store_true", help="also train and compare the observed order of the modes "
                                                        "with the predicted one (DIR/training.csv, orders.csv, "
                                                        "responses.csv)")
    t.add_argument("--objective", default="jepa,mae", help="objectives to train (default: jepa,mae)")
    t.add_argument("--train-modes", default="8", help="compare the K modes predicted first (default: 8)")
    t.add_argument("--batch", default="256", help="minibatch size (default: 256)")
    t.add_argument("--lr", help="learning rate (default: --lr-factor x the GD stability bound)")
    t.add_argument("--lr-factor", default="0.3", help="default lr as a fraction of the stability bound (0.3)")
    t.add_argument("--steps", help="steps (default: 1.5 x the predicted t_star of the K-th mode / lr)")
    t.add_argument("--max-steps", default="300000", help="refuse runs needing more steps (default: 300000)")
    t.add_argument("--records", default="200", help="log-spaced records of Wbar per run (default: 200)")
    t.add_argument("--train-seed", default="0", help="seed of the init and minibatches (default: 0)")
    t.add_argument("--matrix", action="store_true", help="also integrate the exact full-matrix gradient flow of the "
                                                         "population loss on the same covariances (jepa_dynamics."
                                                         "matrix) and read its critical times the same way")
    t.add_argument("--probe", action="store_true", help="digits: logistic probes on the labels over training, "
                                                        "all / top-variance / bottom-variance inputs (probe.csv)")
    t.add_argument("--probe-noise", default="0.05", help="probe read-out noise, in units of the data's RMS "
                                                         "(default: 0.05)")


_DATASET_OPTIONS = {"n": int, "seed": int, "noise": float, "shift": int, "patch": int, "offset": "pair",
                    "images": str}


def _views_from_args(args):
    from ..realdata import views

    given = {k: getattr(args, k) for k in _DATASET_OPTIONS if getattr(args, k) is not None}
    if args.views is not None:
        if given:
            raise spec.SpecError(next(iter(given)), "dataset options go with --dataset, not --views")
        return views.from_npz(args.views)
    spec.check_choice(args.dataset, views.DATASETS, "dataset")
    own = {"digits": ("n", "seed", "noise", "shift"), "patches": ("n", "seed", "patch", "offset", "images")}
    opts = {}
    for k, text in given.items():
        if k not in own[args.dataset]:
            raise spec.SpecError(k, f"is not an option of --dataset {args.dataset}")
        kind = _DATASET_OPTIONS[k]
        if kind == "pair":
            opts[k] = spec.parse_list(text, k, int)
            if len(opts[k]) != 2:
                raise spec.SpecError(k, f"must be two integers dr,dc, got {text!r}")
        elif kind is str:
            opts[k] = tuple(spec.parse_list(text, k, str))
        else:
            opts[k] = _one(text, k, kind)
    if "n" in opts:  # the pairs are built in memory: refuse a size that would not fit, before building
        n = spec.check_positive_int(opts["n"], "n")
        dim = 64 if args.dataset == "digits" else opts.get("patch", 8) ** 2
        records.check_size(f"--dataset {args.dataset} with n = {n}", mem_bytes=8.0 * 4 * n * dim,
                           allow_large=args.allow_large)
    return views.make(args.dataset, **opts)


def _run_spectrum(args, argv) -> int:
    from ..realdata import spectrum

    depths = [spec.check_depth(d) for d in spec.parse_list(args.depth, "depth", int)]
    eps, fraction = spectrum.check_eps_fraction(_one(args.eps, "eps"),
                                                _one(args.fraction, "fraction"))
    spec.check_writable_dir(args.out, "out")
    if args.probe and not args.train:
        raise spec.SpecError("probe", "probes read the trained encoders: add --train")
    if args.matrix and not args.train:
        raise spec.SpecError("matrix", "the matrix reference goes with --train")
    if args.probe and args.dataset != "digits":
        raise spec.SpecError("probe", "needs labels: only --dataset digits has them")
    v = _views_from_args(args)
    train_options = None
    if args.train:
        opt = lambda name, kind=float: (None if getattr(args, name) is None  # noqa: E731
                                        else _one(getattr(args, name), name, kind))
        objectives_ = [spec.check_objective(o) for o in spec.parse_list(args.objective, "objective", str)]
        train_options = dict(eps=eps, fraction=fraction, modes=opt("train_modes", int), batch=opt("batch", int),
                             lr=opt("lr"), lr_factor=opt("lr_factor"), steps=opt("steps", int),
                             max_steps=opt("max_steps", int), records=opt("records", int),
                             seed=opt("train_seed", int), matrix=bool(args.matrix))
        probe_noise = float(spec.check_nonnegative(opt("probe_noise"), "probe_noise"))
    command = records.command_line(argv)
    cov, m = spectrum.compute(v, progress=args.progress)
    table = spectrum.mode_table(m, depths, eps, fraction)
    configs = None
    if args.train:
        from ..realdata import realtrain

        configs = realtrain.plan_all(m, depths, objectives_, **train_options)  # refuse before writing
    header = spectrum.provenance(command, cov, m, depths, eps, fraction)
    spectrum.write_spectrum(cov, m, table, args.out, header)
    _print_files(args.out, ("modes.csv", "covariances.npz", "spectrum.png"))
    if configs is None:
        return 0
    x, y = v.arrays()
    x, y = x - cov.mean_x, y - cov.mean_y
    train_header = header + [f"# {k}: {text}" for k, text in realtrain.TRAIN_NOTES.items()]
    runs = {}
    try:
        for key, cfg in configs.items():
            runs[key] = realtrain.train_views(cfg, m, x, y, syy=cov.syy, progress=args.progress)
            realtrain.write_runs(runs, m, args.out, train_header)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; kept the {len(runs)} finished run(s) in {args.out}") from None
    if args.probe:
        from ..realdata import probes, views

        images, labels = views.digits_images()
        images = images - images.mean(0)
        sxx_clean = images.T @ images / len(images)
        data = probes.split(images, labels, seed=0)
        base = probes.subspace_baseline(data, sxx_clean)
        curves = realtrain.run_probes(runs, data, sxx_clean, noise=probe_noise)
        top, _ = probes.principal_subspaces(sxx_clean)
        notes = [f"# probe: multinomial logistic regression on standardised features, 60/40 seeded split of the "
                 f"1797 clean digits; read-out noise {probe_noise} x RMS of the data",
                 f"# subspaces: top = the {top.shape[1]} leading principal components of the clean digits "
                 f"(90% of the variance), bottom = the other {64 - top.shape[1]}",
                 f"# baseline_inputs: {json.dumps(base, sort_keys=True)}"]
        realtrain.write_probes(curves, runs, os.path.join(args.out, "probe.csv"), header + notes)
    _print_files(args.out, ("training.csv", "orders.csv", "responses.csv") + (("probe.csv",) if args.probe else ()))
    return 0


def _print_files(folder: str, names) -> None:
    """Print the paths of the files among ``names`` that ``folder`` holds (what a command wrote)."""
    for name in names:
        if os.path.exists(os.path.join(folder, name)):
            print(os.path.join(folder, name))


# --- registry --------------------------------------------------------------------------------------------

COMMANDS = {
    "sweep": (_add_sweep, _run_sweep),
    "simulate": (_add_simulate, _run_simulate),
    "train": (_add_train, _run_train),
    "figures": (_add_figures, _run_figures),
    "matrix": (_add_matrix, _run_matrix),
    "spectrum": (_add_spectrum, _run_spectrum),
    "train-grid": (_add_train_grid, _run_train_grid),
}


def _parser() -> _Parser:
    parser = _Parser(prog="jepa-dynamics", allow_abbrev=False,
                     description="Training dynamics of JEPA vs MAE with deep linear and MLP encoders.")
    parser.add_argument("--version", action="version", version=f"jepa-dynamics {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    for p in sub.choices.values():
        p.allow_abbrev = False
    return parser


def _message(err: spec.SpecError) -> str:
    return f"{_flag(err.name)}: {err.problem}"


def main(argv=None) -> int:
    """Entry point of ``jepa-dynamics``; returns the exit status (also via ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "jepa-dynamics" + (f" {argv[0]}" if argv and argv[0] in COMMANDS else "")
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        status = COMMANDS[args.command][1](args, argv)
    except _UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        status = 2
    except spec.SpecError as err:
        print(f"{prog}: error: {_message(err)}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt as err:
        detail = str(err) or "interrupted"
        print(f"{prog}: {detail}", file=sys.stderr)
        status = 130
    except Exception as err:  # solver failures and the like: one line, no traceback
        if os.environ.get("JEPA_DYNAMICS_DEBUG"):
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {text}", file=sys.stderr)
        status = 1
    return status

