"""What the commands share: a parser whose errors are one line, the flags several commands take,
and the call from parsed flags to the API function that does the work."""

from __future__ import annotations

import argparse
import inspect

from ..theory import spec

__all__ = ["UsageError", "Parser", "add_grid_flags", "add_progress_flags", "add_allow_large", "add_aligned_flags",
           "add_training_flags", "call", "print_files"]


class UsageError(Exception):
    pass


# spec.DEFAULT_EPS as the help texts write it ("1e-3")
EPS_TEXT = f"{spec.DEFAULT_EPS:.0e}".replace("e-0", "e-").replace("e+0", "e+")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit 2 (no usage dump)."""

    def error(self, message):  # noqa: D401
        raise UsageError(message)


def add_grid_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--objective", default="jepa,mae",
                   help="comma-separated: jepa, mae, barlow, vicreg (the last two: --method exact, balanced "
                        "gradient flow; default: jepa,mae)")
    p.add_argument("--depth", default="1,2,4", help="encoder depths L, positive integers (default: 1,2,4)")
    p.add_argument("--lam", default="0.5,1", help="covariances lam > 0 (default: 0.5,1)")
    p.add_argument("--rho", default="0.3,0.6,0.9", help="regression coefficients rho > 0 (default: 0.3,0.6,0.9)")
    p.add_argument("--eps", default=spec.DEFAULT_EPS,
                   help=f"initial responses, 0 < eps < fraction * w_star (default: {EPS_TEXT})")
    p.add_argument("--fraction", default="0.5", help="t_star is when w = fraction * w_star, in (0, 1) (default: 0.5)")
    p.add_argument("--method", default="exact", choices=spec.METHODS,
                   help="exact: closed forms; ode: diffrax integration (default: exact)")


def add_progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the live progress bar on stderr (default: the bar when stderr is a terminal, "
                        "otherwise a plain progress line every 10 s)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress output on stderr at all (neither the bar nor the lines)")


def add_allow_large(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-large", action="store_true",
                   help="go ahead even when the estimated output is above 10 GB or the free disk, or the estimated "
                        "memory above half of what is available (otherwise refused, naming the sizes)")


def add_aligned_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictor-init", default="balanced",
                   help="signed initial predictor/decoder entries V0, layers at eps**(1/depth); 'balanced' = "
                        "eps**(1/depth) (default: balanced; docs/theory.md section 9)")
    p.add_argument("--ema-rate", default="inf", help="EMA target rates kappa (1/time), JEPA only; inf = stop-gradient "
                                                     "(default: inf)")
    p.add_argument("--weight-decay", default="0", help="weight decay beta >= 0 on every layer and V (default: 0)")
    p.add_argument("--lr", default="0", help="plain gradient-descent step eta; 0 = gradient flow (default: 0)")


def add_training_flags(p, mlp: bool = True) -> None:
    """The flags ``train`` and ``train-grid`` share (what a network is and how it trains);
    ``mlp=False`` leaves out the MLP flags (``train-grid`` trains deep linear encoders only)."""
    # train-grid does not offer --model (deep linear only) but answers it with the reason, not "unrecognized"
    p.add_argument("--model", default="linear",
                   help="linear (deep linear) or mlp (default: linear)" if mlp else argparse.SUPPRESS)
    p.add_argument("--objective", default="jepa", help="jepa, mae, barlow or vicreg (default: jepa)")
    p.add_argument("--depth", default="1", help="encoder depth L (default: 1)")
    p.add_argument("--lam", help="per-feature lam, comma-separated (with --rho)")
    p.add_argument("--rho", help="per-feature rho, comma-separated (with --lam)")
    p.add_argument("--dist", help="data family instead of --lam/--rho: same-trend, reversed-trend, static, dynamic")
    p.add_argument("--dim", default="100", help="number of features of --dist (default: 100)")
    p.add_argument("--eps", default=spec.DEFAULT_EPS,
                   help=f"initial response, below fraction * w_star (default: {EPS_TEXT})")
    p.add_argument("--init", default="balanced", help="balanced (every layer eps^(1/depth) times an orthogonal matrix; docs/theory.md), "
                        "aligned (diagonal layers eps^(1/depth) I, predictor V0 I: --predictor-init) or random "
                        "(default: balanced)")
    p.add_argument("--init-scale", help="random init: each factor's scale (default: eps**(1/depth))")
    p.add_argument("--predictor-init", help="aligned init: the signed predictor/decoder entry V0 (default: the balanced "
                                            "eps**(1/depth)); write a negative one as --predictor-init=-0.3")
    p.add_argument("--loss", help="population (exact, deep linear encoder and predictor only) or sampled (default: "
                                  "population for a deep linear encoder and predictor, sampled otherwise)")
    p.add_argument("--batch", default="256", help="minibatch size for --loss sampled (default: 256)")
    p.add_argument("--optimizer", default="sgd", help="sgd (plain gradient descent, t = lr * step) or adam")
    p.add_argument("--lr", default="0.01", help="learning rate (default: 0.01)")
    p.add_argument("--steps", required=True, help="number of optimiser steps, or auto: twice the latest critical "
                                                   "time the gradient-flow theory predicts, divided by --lr (deep "
                                                   "linear, sgd)")
    p.add_argument("--ema-rate", default="inf", help="JEPA EMA target rate kappa (1/gradient-flow time); inf = "
                                                     "stop-gradient (default: inf). The trainer's per-step decay is "
                                                     "tau = 1 - kappa * lr (kappa * lr <= 1)")
    p.add_argument("--ema", help="deprecated (goes in the next release): the per-step EMA decay tau in [0, 1); use "
                                 "--ema-rate KAPPA, KAPPA = (1 - TAU) / lr")
    p.add_argument("--weight-decay", default="0", help="coupled L2 beta on every layer and the predictor: grad += "
                                                       "beta * theta (default: 0)")
    p.add_argument("--seed", default="0", help="random seed (default: 0)")
    p.add_argument("--matmul-precision", default="highest", choices=("highest", "tf32"),
                   help="float32 matrix products: highest (full float32, default) or tf32 (GPUs' fast mode, ~10 "
                        "mantissa bits); recorded in the provenance")
    if mlp:
        p.add_argument("--width", help="MLP hidden width (default: the number of features)")
        p.add_argument("--activation", default="tanh", help="MLP activation: tanh, relu, gelu, linear (default: tanh)")
        p.add_argument("--predictor", default="linear", help="linear or mlp predictor (default: linear)")
    p.add_argument("--fraction", default="0.5", help="t_star at fraction * |w_inf| (default: 0.5)")


def call(function, args, argv, leave_out=()):
    """``function`` (the command's API twin) called with the parsed flags it takes, and with the
    provenance line: the command line as typed, less the flags in ``leave_out`` (``--resume``:
    a resumed run's files equal an uninterrupted run's) and ``--progress`` / ``--no-progress``
    (they change no file)."""
    from .. import records

    names = inspect.signature(function).parameters
    kwargs = {k: v for k, v in vars(args).items() if k in names and k != "command"}
    dropped = (*leave_out, "--progress", "--no-progress")
    command = records.command_line([a for a in argv if a not in dropped])
    return function(**kwargs, command=command)


def print_files(paths) -> None:
    """Print the paths a command wrote, one per line (what scripts read from stdout)."""
    for path in paths:
        print(path)
