r"""Full-matrix gradient flow of deep linear JEPA and MAE (docs/theory.md section 10), and of Barlow Twins and
VICReg (section 16: one encoder on both views, no predictor; ``V`` and the target are carried but never move;
their gradients are written out in :mod:`jepa_dynamics.engines._matrix_field`).

State: the encoder's layers ``W_1..W_L`` (``d x d``), the predictor / decoder ``V``, and,
with an EMA target, ``Wtgt``.  With ``A = V Wbar``, ``Wbar = W_L ... W_1``:

.. math::

    \text{JEPA: } \tfrac12 \operatorname{tr}(A S_{xx} A^T) - \operatorname{tr}(A S_{xy} T^T) + \text{const},
    \qquad \text{MAE: } \tfrac12 \operatorname{tr}(A S_{xx} A^T) - \operatorname{tr}(A S_{xy}) + \text{const},

with target ``T = sg(Wbar)`` (stop-gradient) or ``T = Wtgt``.  Every trained matrix
follows ``dtheta/dt = -dLoss/dtheta - beta theta`` (``beta`` = ``weight_decay``); the
EMA target follows ``dWtgt/dt = kappa (Wbar - Wtgt)`` (``kappa`` = ``ema_rate``, in
1/time).  The gradients are the population losses' derivative, written out
(:func:`_flow`); a test holds it to autodiff of :mod:`jepa_dynamics.training.objectives` (the code
the trained networks minimise).

Numerics.  The plateau lasts ``~eps^-(2-1/L)`` time units, the rise ``O(1)``, and after a
mode has risen the flow is stiff (its relaxation rate is ``O(lam)`` while the modes
still on their plateau move ``eps^(2-1/L)`` times slower).  What we measured (see
``docs/benchmarks.md``, ``benchmarks/bench_matrix.py``):

* **Plateau**: an adaptive explicit solver (Tsit5, PID controller) in plain time already
  takes steps proportional to the distance to the blow-up of ``dw/dt ~ w^p``, i.e.
  geometrically growing steps, whatever the plateau's length.  A log-time clock
  (``t = e^tau - 1``) changes nothing (measured, ``benchmarks/bench_matrix_clock.py``,
  three modes, JEPA: 4185 vs 4252 steps at ``L = 2, eps = 1e-3``; 7923 vs 7995 at
  ``L = 4``; 316,661 vs 316,736 at ``L = 4, eps = 1e-4``), and a Sundman clock on the
  global rate ``||dtheta/dt|| / ||theta||`` is far worse (it ran out of 100,000 steps in
  every case: once one mode has settled, the rate falls, ``dt/ds`` grows, and that
  mode's relaxation becomes stiff in ``s``).
* **Stiffness after the rise**: explicit steps are then bounded by the largest
  relaxation rate (``~3.5 / kappa_max``), so the cost grows like the time span between
  the first and the last rise.  Implicit solvers (Kvaerno5) remove that bound but need
  the ``((L+1) d^2)^2`` Jacobian, 3.4 GB at ``d = 64, L = 4``: not an option at the sizes
  asked for (scipy LSODA, which builds it by finite differences, did not finish the
  ``d = 64`` benchmark in 600 s).  So the engine is explicit Tsit5 in time; the step counts
  above are almost all spent between the first rise and ``T`` (stability-bound steps).  Past convergence it stops
  integrating once every mode is at rest (``max_i |d gamma_i/dt| / gamma_i * t`` below
  ``rest_tol``: at the current rates nothing would move by ``rest_tol`` in as long again;
  a mode still on its plateau has this ``~1``) and holds the state fixed.  (Near a stable
  fixed point the solver's own local errors keep the rates at ``~rtol x`` the relaxation
  rate, so very long runs may never get there and integrate to the end.)
* **Memory**: the run is split at the requested output times, each piece a
  ``diffeqsolve`` with a bounded step buffer (continued when it fills); the step-size
  controller's last step carries over.  What is kept of each piece is a copy of the steps it
  took (``2 d + 1`` floats a step, the records the critical times are read from), never the padded
  buffer, which would cost ``16 x 8192 x d`` bytes per output time (1.6 GB at ``d = 30`` and 400 times).

Critical time per mode (docs/theory.md section 9's generalised definition, applied to the
response to a mode ``gamma_i`` of :mod:`jepa_dynamics.theory.modes`): ``gamma_inf`` = the
response at the end of the run (the limit, when the run has converged: the
``converged`` flag says so); the mode is *learned* iff it starts below the level that
defines its critical time, ``gamma(0) < fraction gamma_inf`` (docs/theory.md section 4's
``eps < fraction w_star``; a mode that decays, collapses or stays put is not); then
``t*`` = first time ``gamma_i(t) >= fraction gamma_inf``.  The crossing is located on
every accepted solver step, by cubic Hermite interpolation of ``gamma_i`` and
``d gamma_i / dt`` between the two steps around it (error ``O(h^4)``, ~1e-10 relative at
the default tolerances), not on the output grid.

All work is float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..theory import modes as modes_mod
from ..theory import spec
from .._jax import jax  # noqa: F401  (configures JAX: float64)

import jax.numpy as jnp  # noqa: E402
from ._matrix_field import (_field, _flags, _flow, _joint_index, _segment, conserved, end_to_end,  # noqa: F401
                            initial_state, pack, unpack, vector_field)
from ._matrix_batch import BatchResult, hermite_root, integrate_batch  # noqa: E402,F401
from ._matrix_theory import default_t_max, mode_variances, theory_critical_times, theory_fixed_points  # noqa: E402

__all__ = ["INITS", "MatrixConfig", "MatrixResult", "initial_state", "pack", "unpack", "vector_field", "integrate",
           "crossing_times", "end_to_end", "conserved", "MatrixSolverError", "integrate_batch", "BatchResult",
           "default_t_max", "theory_critical_times", "theory_fixed_points", "mode_variances"]

INITS = ("balanced", "aligned", "random", "given")
_SEGMENT_STEPS = 8192  # step buffer of one diffeqsolve


class MatrixSolverError(RuntimeError):
    """The matrix integration failed; the message says what to change."""


@dataclass(frozen=True)
class MatrixConfig:
    """One matrix gradient flow, validated on construction.

    ``objective`` (``jepa`` | ``mae`` | ``barlow`` | ``vicreg``; the last two without EMA or weight decay),
    ``depth`` ``L``, ``eps`` (``Wbar(0)`` scale),
    ``init`` (``balanced``: docs/theory.md section 1.3, ``Wbar(0) = eps I``; ``aligned``:
    ``W_1 = eps^(1/L) Q^T``, ``W_a = eps^(1/L) I`` for ``a >= 2``, ``V = eps^(1/L) I``, so
    ``Wbar(0) = eps Q^T`` and every mode starts at ``gamma_i(0) = eps``; ``random``: i.i.d.
    ``N(0, init_scale^2 / d)`` entries, default scale ``eps^(1/L)``; ``given``: the
    matrices passed to :func:`initial_state`), ``seed`` (the balanced frames, the random
    draws), ``ema_rate`` ``kappa`` (``None``: stop-gradient target), ``weight_decay``
    ``beta``, ``fraction`` (critical time level), ``rtol`` / ``atol`` (Tsit5's PID
    controller), ``max_steps`` (all segments together) and ``rest_tol`` (the run stops early, at
    rest, once ``max_i |d gamma_i/dt| / gamma_i * t < rest_tol``)."""

    objective: str
    depth: int
    eps: float = 1e-2
    init: str = "balanced"
    init_scale: float | None = None
    seed: int = 0
    ema_rate: float | None = None
    weight_decay: float = 0.0
    fraction: float = 0.5
    rtol: float = 1e-10
    atol: float = 1e-14
    max_steps: int = 10_000_000
    rest_tol: float = 1e-8

    def __post_init__(self):
        spec.check_choice(self.objective, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
        object.__setattr__(self, "depth", spec.check_depth(self.depth))
        object.__setattr__(self, "eps", float(spec.check_positive(self.eps, "eps")))
        spec.check_choice(self.init, INITS, "init")
        if self.init_scale is not None:
            object.__setattr__(self, "init_scale", float(spec.check_positive(self.init_scale, "init_scale")))
        object.__setattr__(self, "seed", spec.check_nonnegative_int(self.seed, "seed"))
        if self.ema_rate is not None:
            if self.objective == "mae":
                raise spec.SpecError("ema_rate", "an EMA target is a JEPA option (MAE has no target encoder)")
            if self.objective in spec.JOINT_OBJECTIVES:
                raise spec.SpecError("ema_rate", f"an EMA target is a JEPA option ({self.objective} has no target: "
                                                 "one encoder on both views, both branches differentiated)")
            object.__setattr__(self, "ema_rate", float(spec.check_positive(self.ema_rate, "ema_rate")))
        object.__setattr__(self, "weight_decay", float(spec.check_nonnegative(self.weight_decay, "weight_decay")))
        if self.objective in spec.JOINT_OBJECTIVES and self.weight_decay > 0:
            raise spec.SpecError("weight_decay", f"--objective {self.objective} runs without weight decay (the "
                                                 "per-feature theory it is read against, docs/theory.md section 16, "
                                                 "has none); leave --weight-decay at 0")
        object.__setattr__(self, "fraction", float(spec.check_unit_interval(self.fraction, "fraction")))
        for name in ("rtol", "atol", "rest_tol"):
            object.__setattr__(self, name, float(spec.check_positive(getattr(self, name), name)))
        object.__setattr__(self, "max_steps", spec.check_positive_int(self.max_steps, "max_steps"))


# --- driver ------------------------------------------------------------------------------------------------

@dataclass
class MatrixResult:
    """A matrix gradient flow on the requested ``times``.

    ``wbar`` ``(T, d, d)``; ``responses`` ``(T, d)`` (``gamma_i``); ``gamma0`` / ``gamma_inf``
    ``(d,)`` (start, end of the run); ``t_star`` ``(d,)`` (``nan`` if not learned);
    ``learned`` ``(d,)``; ``converged``: at the end, every mode's relative rate
    times the elapsed time, ``max_i |d gamma_i/dt| / gamma_i * t``, is below 1e-6 (at that rate
    the responses would move by less than 1e-6 in as long again; a mode still on its plateau
    has this ~1); ``steps``: accepted + rejected solver steps; ``state``: the final
    state array (:func:`unpack`); ``invariants``: :func:`conserved` at each time (``None`` unless asked)."""

    times: np.ndarray
    wbar: np.ndarray
    responses: np.ndarray
    modes: modes_mod.Modes
    gamma0: np.ndarray
    gamma_inf: np.ndarray
    t_star: np.ndarray
    learned: np.ndarray
    converged: bool
    steps: int
    state: dict
    invariants: list | None = None
    step_records: tuple = field(default=(), repr=False)


def crossing_times(ts, gamma, dgamma, level):
    """First time each ``gamma[:, i]`` reaches ``level[i]``, by cubic Hermite interpolation between
    the records ``ts`` (``(K,)``) around the crossing; ``nan`` where it never does."""
    ts, gamma, dgamma = (np.asarray(a, np.float64) for a in (ts, gamma, dgamma))
    level = np.broadcast_to(np.asarray(level, np.float64), gamma.shape[1:])
    out = np.full(gamma.shape[1], np.nan)
    above = gamma >= level[None, :]
    has = above.any(axis=0)
    k = np.argmax(above, axis=0)
    first = has & (k == 0)
    out[first] = ts[0]
    idx = np.flatnonzero(has & (k > 0))
    if idx.size:
        kk = k[idx]
        out[idx] = np.asarray(hermite_root(ts[kk - 1], ts[kk], gamma[kk - 1, idx], gamma[kk, idx], dgamma[kk - 1, idx],
                                            dgamma[kk, idx], level[idx]))
    return out


def integrate(config: MatrixConfig, cov, times, *, state=None, given=None, modes=None, invariants: bool = False,
              callback=None, resume: dict | None = None) -> MatrixResult:
    """Integrate the matrix gradient flow from ``t = 0`` and record it at ``times``.

    ``cov = (Sxx, Sxy, Syy)`` (validated here); ``times`` increasing, ``times[0] = 0``;
    ``state`` (an array as :func:`pack` makes) overrides the initial state (else :func:`initial_state` from ``config``
    and ``given``); ``modes`` defaults to :func:`jepa_dynamics.theory.modes.decompose` of the data.
    ``callback(k, t_k, snapshot)`` is called after each output time ``k >= 1``: ``snapshot()``
    returns a dict of NumPy arrays from which ``resume=`` continues the same run exactly
    (the step records, the recorded ``Wbar``, the state and the controller's last step).
    Raises :class:`MatrixSolverError` on a non-finite state or when ``config.max_steps``
    is spent (naming what to change)."""
    sxx, sxy, syy = modes_mod.check_covariances(*cov)
    times = np.asarray(spec.check_nonnegative(times, "times"), dtype=np.float64)
    if times.ndim != 1 or times.size < 2 or times[0] != 0 or np.any(np.diff(times) <= 0):
        raise spec.SpecError("times", "must start at 0 and increase strictly (at least two times)")
    modes = modes_mod.decompose(sxx, sxy, validate=False) if modes is None else modes
    d = sxx.shape[0]
    state = initial_state(config, d, modes, given) if state is None else state
    dirs = jnp.asarray(sxx @ modes.q)
    mae, ema = _flags(config.objective, config.ema_rate)
    args = ((jnp.asarray(sxx), jnp.asarray(sxy), jnp.asarray(syy)), jnp.asarray(config.weight_decay),
            jnp.asarray(0.0 if config.ema_rate is None else config.ema_rate), mae, ema,
            (dirs, jnp.asarray(modes.sigma2)), _joint_index(config.objective))
    tols = (jnp.asarray(config.rtol), jnp.asarray(config.atol))
    state = np.asarray(state, np.float64)
    if state.shape != (config.depth + 2, d, d):
        raise spec.SpecError("init", f"the state must have shape {(config.depth + 2, d, d)}, got {state.shape}")
    gamma0 = modes_mod.responses(np.asarray(end_to_end(state[:-2])), modes)
    speed = np.inf
    wbars = [np.asarray(end_to_end(state[:-2]))]
    invs = [[np.asarray(c) for c in conserved(state)]] if invariants else None
    rec_t, rec_g, rec_dg = [np.zeros(1)], [gamma0[None]], [np.full((1, d), np.nan)]  # slope at 0: secant
    t_now, dt0, steps, converged, k_start = 0.0, None, 0, False, 1
    if resume is not None:
        k_start = int(resume["k"]) + 1
        state, t_now, steps = np.asarray(resume["state"]), float(resume["t_now"]), int(resume["steps"])
        dt0 = None if not np.isfinite(resume["dt0"]) else float(resume["dt0"])
        speed, converged = float(resume["speed"]), bool(resume["converged"])
        wbars = list(np.asarray(resume["wbar"]))
        rec_t, rec_g, rec_dg = ([np.asarray(resume[k])] for k in ("rec_t", "rec_g", "rec_dg"))
        if len(wbars) != k_start or invariants:
            raise spec.SpecError("resume", "the saved run does not fit these times (or invariants were asked for)")

    def snapshot(mark):
        """The run as it stood at output ``mark["k"]`` (lists are append-only and arrays are replaced,
        never changed in place, so a mark stays consistent whatever happened since)."""
        n = mark["n"]
        return {"k": np.asarray(mark["k"]), "state": mark["state"], "t_now": np.asarray(mark["t_now"]),
                "steps": np.asarray(mark["steps"]), "dt0": np.asarray(np.nan if mark["dt0"] is None else mark["dt0"]),
                "speed": np.asarray(mark["speed"]), "converged": np.asarray(mark["converged"]),
                "wbar": np.stack(wbars[: mark["k"] + 1]), "rec_t": np.concatenate(rec_t[:n]),
                "rec_g": np.concatenate(rec_g[:n]), "rec_dg": np.concatenate(rec_dg[:n])}

    for k in range(k_start, times.size):
        t_next = times[k]
        while t_now < t_next and not converged:
            if speed * t_now < config.rest_tol:
                converged = True
                break
            dt = (t_next - t_now) * 1e-3 if dt0 is None else min(dt0, t_next - t_now)
            budget = min(_SEGMENT_STEPS, config.max_steps - steps)
            if budget <= 0:
                raise MatrixSolverError(
                    f"the matrix flow used its {config.max_steps} steps by t={t_now:.6g} (asked for "
                    f"t={times[-1]:.6g}): raise max_steps, lower t_max or loosen rtol (now {config.rtol:g})")
            new, t_end, ts, ys, n, n_all, ok = _segment(state, jnp.asarray(t_now), jnp.asarray(t_next),
                                                               jnp.asarray(dt), args, tols, _SEGMENT_STEPS)
            n = int(n)
            if not bool(ok):
                raise MatrixSolverError(
                    f"the matrix flow became non-finite or the solver failed near t={t_now:.6g}: check the "
                    f"covariances and the init, or lower rtol (now {config.rtol:g})")
            # copies of the n steps taken: a slice would be a view that keeps the whole padded buffer of
            # _SEGMENT_STEPS steps alive (16 _SEGMENT_STEPS d bytes per output time, 1.6 GB at d = 30 and 400 times)
            ts, ys = np.asarray(ts)[:n].copy(), np.asarray(ys)[:n].copy()
            rec_t.append(ts)
            rec_g.append(ys[:, 0])
            rec_dg.append(ys[:, 1])
            if n >= 2:
                dt0 = float(ts[-1] - ts[-2])
            if n >= 1:
                speed = float(np.max(np.abs(ys[-1, 1]) / np.maximum(ys[-1, 0], np.finfo(float).tiny)))
            steps += int(n_all)
            state, t_now = np.asarray(new), float(t_end)
        wbars.append(np.asarray(end_to_end(state[:-2])))
        if invariants:
            invs.append([np.asarray(c) for c in conserved(state)])
        if callback is not None:
            mark = {"k": k, "n": len(rec_t), "state": state, "t_now": t_now, "dt0": dt0, "steps": steps,
                    "speed": speed, "converged": converged}
            callback(k, float(times[k]), lambda mark=mark: snapshot(mark))
    ts_all, g_all, dg_all = (np.concatenate(a) for a in (rec_t, rec_g, rec_dg))
    wbar = np.stack(wbars)
    resp = modes_mod.responses(wbar, modes)
    gamma_inf = resp[-1]
    learned = config.fraction * gamma_inf > gamma0
    t_star = np.where(learned, crossing_times(ts_all, g_all, dg_all, config.fraction * gamma_inf), np.nan)
    converged = converged or speed * t_now < 1e-6
    return MatrixResult(times=times, wbar=wbar, responses=resp, modes=modes, gamma0=gamma0, gamma_inf=gamma_inf,
                        t_star=t_star, learned=learned, converged=bool(converged), steps=steps,
                        state=np.asarray(state), invariants=invs,
                        step_records=(ts_all, g_all, dg_all))
