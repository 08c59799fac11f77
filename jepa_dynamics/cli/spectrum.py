"""``jepa-dynamics spectrum``: parse the flags, call :func:`jepa_dynamics.spectrum`, print the files."""

from __future__ import annotations

from ..theory import spec
from ._flags import EPS_TEXT, add_allow_large, add_progress_flags, call, print_files


def add(sub) -> None:
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
    p.add_argument("--eps", default=spec.DEFAULT_EPS, help=f"initial response eps of the balanced init (default: {EPS_TEXT})")
    p.add_argument("--fraction", default="0.5", help="t_star is when w = fraction * w_star (default: 0.5)")
    p.add_argument("--out", required=True, help="output folder")
    add_allow_large(p)
    add_progress_flags(p)
    t = p.add_argument_group("training on the views (--train): deep linear JEPA / MAE, full matrices, minibatch GD")
    t.add_argument("--train", action="store_true", help="also train and compare the observed order of the modes "
                                                        "with the predicted one (DIR/training.csv, orders.csv, "
                                                        "responses.csv)")
    t.add_argument("--objective", default="jepa,mae", help="objectives to train: jepa, mae, barlow, vicreg "
                   "(default: jepa,mae)")
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


def run(args, argv) -> int:
    from ..api import spectrum

    print_files(call(spectrum, args, argv).files)
    return 0
