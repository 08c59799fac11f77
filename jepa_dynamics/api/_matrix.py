"""``matrix``: the full-matrix gradient flow of deep linear JEPA / MAE / Barlow Twins / VICReg for any covariance.

The twin of ``jepa-dynamics matrix`` (same flags, same defaults, byte-identical files).
The flow and how its modes are read against the per-feature theory: docs/theory.md section 10 (Barlow Twins and
VICReg: section 16).
"""

from __future__ import annotations

import dataclasses

from ..theory import spec
from . import _common

__all__ = ["MatrixRun", "matrix"]

_ONE = _common.one
MATRIX_FILES = ("summary.csv", "responses.csv", "end_to_end.npz", "plot.png")


@dataclasses.dataclass(frozen=True)
class MatrixRun:
    """What :func:`matrix` wrote: ``out``, ``files`` (summary.csv, responses.csv,
    end_to_end.npz, plot.png) and ``result`` (:class:`jepa_dynamics.engines.matrix.MatrixResult`:
    the output times, each mode's response and the end-to-end maps)."""

    out: str
    files: list
    result: object


def _stop_gradient_none(text):
    """The one ``--ema-rate`` (:func:`jepa_dynamics.theory.spec.parse_ema_rates`); ``inf`` (the default:
    stop-gradient) is the engine's ``ema_rate=None``."""
    if text is None:
        return None
    rates = spec.parse_ema_rates(text, "ema_rate")
    if len(rates) != 1:
        raise spec.SpecError("ema_rate", f"takes one value, got {len(rates)} ({text})")
    return None if rates[0] == float("inf") else rates[0]


def matrix(*, objective, depth, cov=None, dist=None, dim=None, mixing=None, seed="0", eps=spec.DEFAULT_EPS,
           init="balanced", init_scale=None, ema_rate="inf", weight_decay="0", fraction="0.5", t_max=None, num_times="200", out,
           resume=False, allow_large=False, progress=None, command=None) -> MatrixRun:
    """Integrate the matrix gradient flow of deep linear ``objective`` at ``depth`` for the
    covariances of the npz file ``cov`` (arrays sxx, sxy = E[x y^T], syy) or of the family
    ``dist`` (rotated, mixed, lagged) of dimension ``dim``, from the init ``init`` at scale
    ``eps``; write ``out``/summary.csv, responses.csv, end_to_end.npz and plot.png.
    ``objective`` ``barlow`` or ``vicreg`` (docs/theory.md section 16: one encoder on both views, no
    predictor) takes no EMA target and no weight decay; its theory columns are section 16's at each mode.

    The twin of ``jepa-dynamics matrix``.  ``resume`` continues an interrupted run.

    >>> import tempfile
    >>> r = matrix(objective="jepa", depth=2, dist="rotated", dim=3, eps=1e-3, num_times=40,
    ...            out=tempfile.mkdtemp(), progress=False)
    >>> sorted(p.rsplit("/", 1)[1] for p in r.files)
    ['end_to_end.npz', 'plot.png', 'responses.csv', 'summary.csv']
    """
    a = _common.flags(locals())
    from ..engines.matrix import MatrixConfig
    from ..experiments.matrix_run import check_footprint, load_dataset, run_matrix

    if a["init"] not in ("balanced", "aligned", "random"):
        spec.check_choice(a["init"], ("balanced", "aligned", "random"), "init")
    config = MatrixConfig(objective=a["objective"], depth=_ONE(a["depth"], "depth", int), eps=_ONE(a["eps"], "eps"),
                          init=a["init"], init_scale=_ONE(a["init_scale"], "init_scale"),
                          seed=_ONE(a["seed"], "seed", int), ema_rate=_stop_gradient_none(a["ema_rate"]),
                          weight_decay=_ONE(a["weight_decay"], "weight_decay"), fraction=_ONE(a["fraction"], "fraction"))
    if a["init_scale"] is not None and a["init"] != "random":
        raise spec.SpecError("init_scale", "applies to --init random only")
    if a["dist"] is not None:
        spec.check_choice(a["dist"], ("rotated", "mixed", "lagged"), "dist")
    mixing = _ONE(a["mixing"], "mixing")
    dim, num_times = _ONE(a["dim"], "dim", int), _ONE(a["num_times"], "num_times", int)
    if a["dist"] is not None and dim is not None:  # before the family's d x d matrices are made
        check_footprint(dim, config.depth, num_times, out, allow_large)
    sxx, sxy, syy, source = load_dataset(a["cov"], a["dist"], dim, mixing, config.seed)
    check_footprint(sxx.shape[0], config.depth, num_times, out, allow_large)
    if command is None:
        command = _common.command_line("matrix", matrix, a, leave_out=("resume",))
    result = run_matrix(config, (sxx, sxy, syy), out, t_max=_ONE(a["t_max"], "t_max"), num_times=num_times,
                        resume=resume, progress=progress, command=command, source=source)
    return MatrixRun(out, _common.existing(out, MATRIX_FILES), result)
