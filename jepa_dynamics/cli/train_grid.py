"""``jepa-dynamics train-grid``: parse the flags, call :func:`jepa_dynamics.train_grid`, print the files."""

from __future__ import annotations

from ._flags import add_progress_flags, add_training_flags, call, print_files


def add(sub) -> None:
    p = sub.add_parser("train-grid", help="train a grid of networks in one program (vmapped, sharded)",
                       description="Train every network of the Cartesian product of the list flags (objective, "
                                   "depth, eps, lr, init, init-scale, predictor-init, ema-rate, weight-decay, seed: "
                                   "comma lists) on one dataset (--lam/--rho or --dist), networks of one shape "
                                   "side by side in one jitted, vmapped program sharded over every local device; "
                                   "write DIR/summary.csv (one row per network and feature) and DIR/fidelity.png "
                                   "and print their paths. Knobs that do not apply to a network are dropped for it "
                                   "(MAE, barlow and vicreg have no EMA target, --predictor-init is for --init "
                                   "aligned, --init-scale for --init random); barlow and vicreg train from --init "
                                   "balanced without weight decay (docs/theory.md section 16). --resume keeps the finished networks. A refused command "
                                   "changes no file. Deep linear encoders only. Docs: docs/grid.md; columns: "
                                   "docs/columns.md.")
    add_training_flags(p, mlp=False)
    p.add_argument("--block", default="4096", help="networks per program call and per appended block of rows "
                                                   "(default: 4096)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the grid in --out (same flags), keeping its "
                                                         "finished networks")
    add_progress_flags(p)


def run(args, argv) -> int:
    from ..api import train_grid

    print_files(call(train_grid, args, argv, leave_out=("--resume",)).files)
    return 0
