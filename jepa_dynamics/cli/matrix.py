"""``jepa-dynamics matrix``: parse the flags, call :func:`jepa_dynamics.matrix`, print the files."""

from __future__ import annotations

from ..theory import spec
from ._flags import EPS_TEXT, add_allow_large, add_progress_flags, call, print_files


def add(sub) -> None:
    p = sub.add_parser("matrix", help="full-matrix gradient flow for any covariance (modes vs the per-feature theory)",
                       description="Integrate the matrix gradient flow of deep linear JEPA or MAE (docs/theory.md section 10), "
                                   "Barlow Twins or VICReg (section 16) "
                                   "for covariances from a file or a family; write DIR/summary.csv, "
                                   "DIR/responses.csv, DIR/end_to_end.npz and DIR/plot.png (columns: docs/columns.md).")
    p.add_argument("--objective", required=True, help="jepa, mae, barlow or vicreg")
    p.add_argument("--depth", required=True, help="encoder depth L")
    p.add_argument("--cov", help="npz file with sxx, sxy (= E[x y^T]) and syy")
    p.add_argument("--dist", help="covariance family instead of --cov: rotated, mixed, lagged")
    p.add_argument("--dim", help="dimension d of --dist")
    p.add_argument("--mixing", help="--dist mixed / lagged: 0 (commuting) to 1 (default: 0.5)")
    p.add_argument("--seed", default="0", help="seed of the family's rotations and of the init (default: 0)")
    p.add_argument("--eps", default=spec.DEFAULT_EPS,
                   help=f"init scale: Wbar(0) = eps I (balanced), eps Q^T (aligned) (default: {EPS_TEXT})")
    p.add_argument("--init", default="balanced", help="balanced, aligned or random (default: balanced)")
    p.add_argument("--init-scale", help="random init: each matrix's scale (default: eps**(1/depth))")
    p.add_argument("--ema-rate", default="inf", help="JEPA EMA target rate kappa (1/gradient-flow time); inf = "
                                                     "stop-gradient (default: inf; jepa only)")
    p.add_argument("--weight-decay", default="0", help="weight decay beta on every layer and V (default: 0; "
                                                       "jepa and mae only)")
    p.add_argument("--fraction", default="0.5", help="t_star at fraction * the final response (default: 0.5)")
    p.add_argument("--t-max", help="last time (default: 2 x the latest theory t* + 40 relaxation times)")
    p.add_argument("--num-times", default="200", help="number of output times after t = 0, half log-, half evenly spaced (default: 200)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_allow_large(p)
    add_progress_flags(p)


def run(args, argv) -> int:
    from ..api import matrix

    print_files(call(matrix, args, argv, leave_out=("--resume",)).files)
    return 0
