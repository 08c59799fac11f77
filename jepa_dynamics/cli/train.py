"""``jepa-dynamics train``: parse the flags, call :func:`jepa_dynamics.train`, print the files."""

from __future__ import annotations

from ._flags import add_allow_large, add_progress_flags, add_training_flags, call, print_files


def add(sub) -> None:
    p = sub.add_parser("train", help="train deep linear / MLP encoders and hold them against the theory",
                       description="Train one encoder with JEPA (stop-gradient or EMA target) or MAE on synthetic "
                                   "data; write DIR/responses.csv, DIR/summary.csv, DIR/plot.png, DIR/state.eqx "
                                   "(and DIR/checkpoints/) and print their paths. Every flag but --lam, --rho and "
                                   "--checkpoints takes one value; for grids of networks use jepa-dynamics "
                                   "train-grid. Without --resume, the files of an earlier run in DIR are removed "
                                   "first. --resume continues a run with the same flags; with a larger --steps and "
                                   "nothing else changed it extends a finished run. A refused command changes no "
                                   "file. Theory: docs/theory.md.")
    add_training_flags(p)
    p.add_argument("--records", default="1000", help="number of recorded steps after step 0 (default: 1000)")
    p.add_argument("--grid", default="linear", help="recorded steps: linear or log spacing (default: linear)")
    p.add_argument("--checkpoints", help="comma-separated steps at which to save the encoder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (same flags; a larger --steps extends a finished run). Refused, "
                        "with every file left as it was, naming each flag that differs")
    add_allow_large(p)
    add_progress_flags(p)


def run(args, argv) -> int:
    from ..api import train

    print_files(call(train, args, argv, leave_out=("--resume",)).files)
    return 0
