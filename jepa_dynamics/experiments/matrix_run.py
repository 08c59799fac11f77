r"""``jepa-dynamics matrix``: one full-matrix gradient flow (:mod:`jepa_dynamics.engines.matrix`) into a folder.

:func:`run_matrix` integrates the flow for a covariance (a file or a
:mod:`jepa_dynamics.training.data` family) and writes

* ``summary.csv`` -- one row per mode (:mod:`jepa_dynamics.theory.modes`, ordered by decreasing
  ``rho``; every column: ``docs/columns.md``): ``feature`` (the mode's index, from 0), ``lam, rho, sigma2``,
  the engine's ``t_star_matrix`` (first time
  the response to the mode reaches ``fraction`` of its value at the end of the run; spec
  section 10's generalised definition), the per-feature theory's
  ``t_star_theory`` at the mode's ``(lam, rho)`` from ``eps`` (docs/theory.md section 4;
  empty where undefined), ``learned`` (``true`` iff the response starts below ``fraction`` of its end
  value: it rose, and ``t_star_matrix`` is defined),
  and ``initial_response`` / ``final_response`` (the response gamma_i at the start and the end),
  ``w_star`` (the per-feature theory's fixed point), and ``t_star_effective``: the same theory started from the
  mode's own initial response instead of ``eps`` (the two differ when ``Q`` is
  not orthogonal or the init is not aligned).  The ``#`` header holds the provenance, the
  departure-from-commuting measures and whether the run converged.
* ``responses.csv`` -- ``time, feature, response`` (long format) on the output grid.
* ``end_to_end.npz`` -- ``time`` ``(T,)``, ``wbar`` ``(T, d, d)``, ``modes`` (the ``q_i`` as
  columns), ``lam``, ``rho``, ``sigma2``.
* ``plot.png`` -- each mode's response over its end value against time, with the
  engine's and the theory's critical times.

Every file is written whole through a temporary file (a reader never sees half of one),
after the run.  Resume: while it runs, the state at the last output time, with the
step records the critical times need, is kept in ``DIR/matrix_state.npz`` (at most every
couple of seconds, and on Ctrl-C); ``resume=True`` continues from it if it was written
for the same command (same config, covariances and times), so a resumed run writes the
same files as an uninterrupted one.  The file is removed when the run finishes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time as _time

import numpy as np

from ..engines import matrix
from ..theory import modes as modes_mod, spec
from .. import records

__all__ = ["run_matrix", "matrix_figure", "STATE_FILE", "load_dataset", "output_times", "summary_columns", "footprint",
           "check_footprint"]

STATE_FILE = "matrix_state.npz"
_SAVE_EVERY_S = 2.0


def load_dataset(cov=None, dist=None, dim=None, mixing=None, seed=0):
    """The covariances a run names: ``cov`` (an ``.npz`` path) or ``dist`` (with ``dim``, ``mixing``,
    ``seed``).  Returns ``(sxx, sxy, syy, description)``."""
    from ..training import data

    if (cov is None) == (dist is None):
        raise spec.SpecError("cov", "give exactly one of --cov FILE.npz or --dist rotated|mixed|lagged")
    if cov is not None:
        for name, value in (("dim", dim), ("mixing", mixing)):
            if value is not None:
                raise spec.SpecError(name, "applies to --dist only (the --cov file fixes the covariances)")
        sxx, sxy, syy = modes_mod.load_covariances(cov)
        return sxx, sxy, syy, {"cov": os.path.abspath(cov)}
    if dim is None:
        raise spec.SpecError("dim", "--dist needs --dim D")
    ds = data.make_matrix(dist, dim, mixing=mixing, seed=seed)
    desc = {"dist": dist, "dim": ds.dim, "seed": int(seed)}
    if "mixing" in ds.params:
        desc["mixing"] = float(ds.params["mixing"])
    return ds.sxx, ds.sxy, ds.syy, desc


def output_times(t_max: float, num_times: int) -> np.ndarray:
    """``0`` and ``num_times`` times up to ``t_max``: half log-spaced from ``t_max * 1e-4`` (the plateau),
    half evenly spaced (the rises, which come late on a log axis), merged."""
    t_max = float(spec.check_positive(t_max, "t_max"))
    num_times = spec.check_positive_int(num_times, "num_times")
    n_log = num_times // 2
    ts = np.concatenate([np.geomspace(t_max * 1e-4, t_max, n_log) if n_log else [],
                         np.linspace(0.0, t_max, num_times - n_log + 1)])
    ts = np.unique(ts)
    return ts if ts.size == num_times + 1 else np.concatenate([[0.0], np.geomspace(t_max * 1e-6, t_max, num_times)])


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


PROCESS_BASE = 450e6  # bytes: Python, NumPy, SciPy, JAX and the compiled solver (peak RSS 410-440 MB measured at d <= 16)
CSV_ROW = 50  # bytes of a responses.csv row (time, feature, response; 44.5 on average at d = 30, 400 times)


def footprint(dim: int, depth: int, num_times: int) -> tuple[float, float]:
    """``(output bytes, peak memory bytes)`` estimated for a run: ``end_to_end.npz`` holds ``num_times + 1``
    matrices ``d x d`` in float64 and ``responses.csv`` a row per time and mode; the process holds
    :data:`PROCESS_BASE`, the recorded ``Wbar`` (twice, while stacked) and responses, one solver segment's step buffer
    (``_SEGMENT_STEPS`` steps of ``2 d`` floats) and a few dozen copies of the ``(depth + 2) d^2`` state.  Not
    counted: the step records the critical times are read from, ``(2 d + 1)`` floats per accepted step, which
    grow with the run's length (1 MB per 5,000 steps at d = 10), not with the output grid."""
    times = num_times + 1.0
    out_bytes = times * dim * (8.0 * dim + CSV_ROW) + 60e3  # + summary.csv and plot.png (40-70 kB)
    mem_bytes = (PROCESS_BASE + times * dim * (16.0 * dim + 16.0) + 16.0 * matrix._SEGMENT_STEPS * dim
                 + 8.0 * 40 * (depth + 2) * dim**2)
    return out_bytes, mem_bytes


def check_footprint(dim: int, depth: int, num_times: int, out_dir: str, allow_large: bool = False) -> None:
    """Refuse (one line, before anything is built) a run whose output or memory would not fit
    (:func:`footprint`, :func:`jepa_dynamics.records.check_size`)."""
    dim, depth = spec.check_positive_int(dim, "dim"), spec.check_depth(depth)
    num_times = spec.check_positive_int(num_times, "num_times")
    out_bytes, mem_bytes = footprint(dim, depth, num_times)
    records.check_size(f"jepa-dynamics matrix (d = {dim}, {num_times} output times)", path=out_dir,
                       out_bytes=out_bytes, mem_bytes=mem_bytes, allow_large=allow_large)


def run_matrix(config: matrix.MatrixConfig, cov, out_dir: str, *, t_max=None, num_times: int = 200,
               resume: bool = False, progress=None, command: str = "jepa_dynamics.experiments.matrix_run.run_matrix",
               source: dict | None = None) -> matrix.MatrixResult:
    """Integrate and write ``out_dir`` (module docstring).  ``cov = (sxx, sxy, syy)``; ``t_max``
    defaults to :func:`jepa_dynamics.engines.matrix.default_t_max`; the output times are
    :func:`output_times`.  All input is validated
    before anything is written."""
    sxx, sxy, syy = modes_mod.check_covariances(*cov)
    num_times = spec.check_positive_int(num_times, "num_times")
    m = modes_mod.decompose(sxx, sxy, validate=False)
    t_max = matrix.default_t_max(config, m, syy=syy) if t_max is None else float(spec.check_positive(t_max, "t_max"))
    times = output_times(t_max, num_times)
    spec.check_writable_dir(out_dir, "out")
    key = {"config": {k: getattr(config, k) for k in config.__dataclass_fields__}, "times": _digest(times),
           "cov": _digest(sxx, sxy, syy)}
    state_path = os.path.join(out_dir, STATE_FILE)
    saved = None
    if resume and os.path.exists(state_path):
        try:
            with np.load(state_path, allow_pickle=False) as f:
                saved = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError) as err:
            raise spec.SpecError("resume", f"cannot read {state_path}: {err}") from None
        if str(saved.pop("key")) != json.dumps(key, sort_keys=True):
            raise spec.SpecError("resume", f"{state_path} was written for other parameters (rerun without --resume)")
    os.makedirs(out_dir, exist_ok=True)

    bar = records.progress_bar(times.size - 1, enabled=progress, desc=f"matrix {config.objective} L={config.depth}",
                               unit="time", initial=0 if saved is None else int(saved["k"]))
    last = {"snap": None, "saved_at": _time.monotonic()}

    def save(snap):
        records.save_npz_atomic(state_path, key=np.asarray(json.dumps(key, sort_keys=True)), **snap)

    def on_output(k, t, snapshot):
        last["snap"] = snapshot
        bar.update(1)
        if _time.monotonic() - last["saved_at"] > _SAVE_EVERY_S:
            save(snapshot())
            last["saved_at"] = _time.monotonic()

    try:
        res = matrix.integrate(config, (sxx, sxy, syy), times, modes=m, callback=on_output, resume=saved)
    except KeyboardInterrupt:
        if last["snap"] is not None:
            snap = last["snap"]()
            save(snap)
            raise KeyboardInterrupt(f"interrupted: the flow up to t={float(snap['t_now']):.6g} is kept in "
                                    f"{state_path}; rerun with --resume to continue") from None
        raise KeyboardInterrupt("interrupted before the first output time, so nothing was kept; rerun the same "
                                "command to start again") from None
    finally:
        bar.close()
    _write_outputs(config, res, out_dir, command, source or {}, t_max, syy)
    if os.path.exists(state_path):
        os.remove(state_path)
    return res


def summary_columns(config: matrix.MatrixConfig, res: matrix.MatrixResult, syy=None) -> dict:
    """The ``summary.csv`` columns of a result (see the module docstring); ``syy`` (the target covariance)
    is needed for ``vicreg`` only (its theory takes the target's variance along each mode)."""
    m = res.modes
    return {
        "feature": np.arange(m.dim),
        "lam": m.lam, "rho": m.rho, "sigma2": m.sigma2,
        "t_star_matrix": res.t_star,
        "t_star_theory": matrix.theory_critical_times(config, m, syy=syy),
        "learned": np.asarray(res.learned, bool),
        "initial_response": res.gamma0, "final_response": res.gamma_inf,
        "w_star": matrix.theory_fixed_points(config, m, syy=syy),
        "t_star_effective": matrix.theory_critical_times(config, m, eps=res.gamma0, syy=syy),
    }


def _write_outputs(config, res, out_dir, command, source, t_max, syy):
    dep = modes_mod.departure(res.modes.sxx, res.modes.sxy, res.modes)
    params = {"objective": config.objective, "depth": config.depth, "eps": config.eps, "init": config.init,
              "init_scale": config.init_scale, "seed": config.seed, "ema_rate": config.ema_rate,
              "weight_decay": config.weight_decay, "fraction": config.fraction, "t_max": t_max, **source}
    header = records.provenance_lines(command, {
        "params": params,
        "departure": {k: float(f"{v:.6g}") for k, v in dep.items()},
        "run": {"converged": res.converged, "steps": res.steps, "rtol": config.rtol},
        "t_star_matrix": "first t with gamma_i(t) >= fraction * gamma_i(t_max) (learned modes; empty if not)",
        "t_star_theory": ("per-feature theory (docs/theory.md section 16) at the mode's lam (vicreg: and its sigma2, "
                          "syy) from eps" if config.objective in spec.JOINT_OBJECTIVES else
                          "per-feature theory (docs/theory.md section 4) at the mode's (lam, rho) from eps"),
        "t_star_effective": "the same theory from the mode's own initial response gamma_i(0) (initial_response)",
        "response": "gamma_i = ||Wbar Sxx q_i|| / (q_i^T Sxx q_i) (docs/theory.md section 10)",
    })
    cols = summary_columns(config, res, syy)
    records.write_csv_atomic(os.path.join(out_dir, "summary.csv"), header, list(cols), [_blank_nan(v) for v in
                                                                                         cols.values()])
    t, d = res.times.size, res.modes.dim
    records.write_csv_atomic(os.path.join(out_dir, "responses.csv"), header[:3], ["time", "feature", "response"],
                             [np.repeat(res.times, d), np.tile(np.arange(d), t), res.responses.ravel()])
    records.save_npz_atomic(os.path.join(out_dir, "end_to_end.npz"), time=res.times, wbar=res.wbar, modes=res.modes.q,
                     lam=res.modes.lam, rho=res.modes.rho, sigma2=res.modes.sigma2)
    from .._style import save_figure

    with np.errstate(over="ignore", under="ignore"):  # log axes out to t_max ~ 1e300 overflow inside matplotlib
        fig = matrix_figure(config, res, cols)
    save_figure(fig, os.path.join(out_dir, "plot.png"))


def _blank_nan(values):
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        return ["" if np.isnan(v) else repr(float(v)) for v in arr]
    return arr


def dynamics_window(times, normalised, learned, crossings, *, leave: float = 0.02) -> tuple:
    """The time window where the modes move, for a log axis: from a bit before the first learned
    mode leaves its plateau (its ``normalised`` response has risen ``leave`` of its end value above
    where it started) to a bit after the last of ``crossings`` (engine and theory ``t_star``), or
    after the learned modes settle within 10% of their end values if that is later (at most ten
    times the last crossing); within ``times > 0``.  ``normalised``: ``(T, d)`` responses over
    their end values."""
    keep = times > 0
    t, y = times[keep], normalised[keep]
    lo, hi = t[0], t[-1]
    learned = np.flatnonzero(learned)
    starts = [t[np.flatnonzero(y[:, i] - y[0, i] > leave)[0]] for i in learned if np.any(y[:, i] - y[0, i] > leave)]
    finite = np.asarray(crossings, np.float64)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not starts or not finite.size:
        return lo, hi
    unsettled = np.flatnonzero(np.any(np.abs(y[:, learned] - 1) > 0.1, axis=1))
    settled = t[min(unsettled[-1] + 1, t.size - 1)] if unsettled.size else t[0]
    last = finite.max()
    return max(lo, 0.5 * min(starts)), min(hi, max(1.6 * last, min(1.2 * settled, 10 * last)))


def matrix_figure(config, res, cols=None):
    """Top: each mode's ``gamma_i(t) / gamma_i(t_max)`` on a log time axis fitted to the dynamics
    (:func:`dynamics_window`).  Bottom: each mode's critical time on its own row, the engine's
    (dots, ``t_star_matrix``) beside the per-feature theory's (crosses, ``t_star_theory``), so that
    no marker hides another.  One colourbar names the modes (index, ``rho``)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm
    from matplotlib.lines import Line2D

    from .. import _style as plots

    cols = summary_columns(config, res) if cols is None else cols
    d = res.modes.dim
    cmap = colormaps["viridis"]
    norm = BoundaryNorm(np.arange(d + 1) - 0.5, cmap.N)
    scale = np.where(res.gamma_inf > 0, res.gamma_inf, 1.0)
    normalised = res.responses / scale
    t_mat, t_th = np.asarray(cols["t_star_matrix"], np.float64), np.asarray(cols["t_star_theory"], np.float64)
    lo, hi = dynamics_window(res.times, normalised, np.asarray(cols["learned"], bool), np.r_[t_mat, t_th])
    with plots.style():
        fig, axes = plots.new_figure(2, 1, width=6.4, height=2.4, sharex=True,
                                     gridspec_kw={"height_ratios": [1.6, 1.0]})
        ax, rows = axes[0, 0], axes[1, 0]
        keep = res.times > 0
        ax.axhline(config.fraction, color="0.6", ls=":", lw=0.9)
        ms = float(np.clip(60 / max(d, 1), 1.5, 5))
        for i in range(d):
            colour = cmap(norm(i))
            ax.plot(res.times[keep], normalised[keep, i], color=colour, lw=1.1)
            rows.plot([t_mat[i], t_th[i]], [i, i], color="0.75", lw=0.8, zorder=1)
            rows.plot(t_mat[i], i, "o", color=colour, ms=ms, alpha=0.85, zorder=2)
            rows.plot(t_th[i], i, "x", color=colour, ms=ms + 1, mew=1.3, zorder=3)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylabel(r"$\gamma_i(t) / \gamma_i(t_{\max})$")
        ax.set_title(f"{plots.OBJECTIVE_LABEL.get(config.objective, config.objective.upper())}, L = {config.depth}, d = {d}, {config.init} init; "
                     f"modes by decreasing $\\rho$ (dark to light)", fontsize=9)
        rows.set_ylim(d - 0.5, -0.5)
        rows.set_ylabel("mode $i$")
        rows.set_xlabel(plots.TIME_LABEL)
        rows.set_title(f"critical time $t^*$ (response at fraction {config.fraction:g} of its end value)", fontsize=9)
        if d <= 12:
            rows.set_yticks(range(d))
        bar = fig.colorbar(ScalarMappable(norm, cmap), ax=axes[:, 0], fraction=0.05, pad=0.02)
        ticks = np.unique(np.round(np.linspace(0, d - 1, min(d, 12))).astype(int))
        bar.set_ticks(ticks, labels=[f"{i}: $\\rho$={res.modes.rho[i]:.2g}" for i in ticks])
        bar.ax.invert_yaxis()
        bar.set_label(r"mode $i$ (feature index): its $\rho$")
        fig.legend(handles=[Line2D([], [], marker="o", color="0.3", ls="", label="full-matrix flow (t_star_matrix)"),
                            Line2D([], [], marker="x", color="0.3", ls="", mew=1.3,
                                   label="per-feature theory (t_star_theory)")],
                   loc="outside lower center", ncols=2, frameon=False)
    return fig
