"""``jepa-dynamics simulate``: parse the flags, call :func:`jepa_dynamics.simulate`, print the files."""

from __future__ import annotations

from ._flags import add_allow_large, add_grid_flags, add_progress_flags, call, print_files


def add(sub) -> None:
    p = sub.add_parser("simulate", help="trajectories w(t) for a grid of parameters (CSV or NPZ)",
                       description="Per-feature responses w(t) from w(0) = eps, exact or integrated. Prints the "
                                   "files it wrote. Formulas: docs/theory.md.")
    add_grid_flags(p)
    p.add_argument("--t-max", type=float, help="last time (default: 4 x the largest critical time)")
    p.add_argument("--num-times", type=int, default=200, help="number of times after t = 0 (default: 200)")
    p.add_argument("--spacing", default="log", choices=("log", "linear"), help="time grid spacing (default: log)")
    p.add_argument("--out", required=True, help="output file: .csv (long format) or .npz")
    p.add_argument("--plot", help="also draw w(t) / w_star (PNG/PDF/SVG)")
    add_allow_large(p)
    add_progress_flags(p)


def run(args, argv) -> int:
    from ..api import simulate

    print_files(call(simulate, args, argv).files)
    return 0
