"""``jepa-dynamics sweep``: parse the flags, call :func:`jepa_dynamics.sweep`, print the files."""

from __future__ import annotations

from ._flags import add_aligned_flags, add_allow_large, add_grid_flags, add_progress_flags, call, print_files


def add(sub) -> None:
    p = sub.add_parser("sweep", help="critical times over a grid of depth x lam x rho x eps (CSV)",
                       description="One CSV row per element of objective x depth x lam x rho x eps x fraction. "
                                   "Prints the files it wrote. Columns: docs/columns.md; formulas: docs/theory.md. Load the CSV "
                                   "with jepa_dynamics.records.read_csv(path) or pandas.read_csv(path, comment='#').")
    add_grid_flags(p)
    add_aligned_flags(p)
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--plot", help="also draw each critical time over the fastest feature's, against rho and lam, "
                   "one column per objective, colour = depth (PNG/PDF/SVG)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep in --out, after checking that each row already there is "
                        "this grid's row at its position (refused, file untouched, if one is not)")
    p.add_argument("--repair", action="store_true",
                   help="with --resume: cut the file at its first row that is not the grid's (garbage, duplicates, "
                        "bytes that are not text) and compute the rest, instead of refusing")
    add_allow_large(p)
    add_progress_flags(p)


def run(args, argv) -> int:
    from ..api import sweep

    # the provenance line leaves out --resume/--repair: a resumed sweep's file equals an uninterrupted one's
    print_files(call(sweep, args, argv, leave_out=("--resume", "--repair")).files)
    return 0
