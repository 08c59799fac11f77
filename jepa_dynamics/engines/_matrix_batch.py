r"""The matrix flow of many networks at once: one compiled, vmapped program per ``(depth, d)``.

:func:`integrate_batch` follows the full-matrix gradient flow of docs/theory.md section 10 (the same
vector field as :func:`jepa_dynamics.engines.matrix.integrate`, Tsit5 with a PID controller at the
same tolerances) for a batch of networks that differ in their initial state, objective, EMA rate,
weight decay, crossing level and horizon.  Each network steps with its own step size: the loop is one
``lax.while_loop`` written out step by step (diffrax's solver and controller, called as its own
``diffeqsolve`` calls them), ``vmap``-ed over the networks, so it runs until the last network is done
while finished ones hold still.

Nothing is saved per step.  Instead every accepted step updates, per feature ``i``:

* the first time ``gamma_i`` reaches ``level_i``, by cubic Hermite interpolation of ``gamma_i`` and
  ``d gamma_i / dt`` between the two steps around the crossing (as :func:`matrix.crossing_times` does
  on the engine's step records, error ``O(h^4)``);
* the current ``gamma_i``, so that at the end the flow's settled response is known.

A network stops at its horizon ``t_end``, or earlier at rest: ``max_i |d gamma_i/dt| / gamma_i * t``
below ``rest_tol`` (the single-network engine's rule).  Memory is the states alone: ``O(n (L+2) d^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..theory import spec
from .._jax import jax

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from ._matrix_field import _field, _record  # noqa: E402

__all__ = ["BatchResult", "integrate_batch"]


@dataclass(frozen=True)
class BatchResult:
    """Per network (leading axis) and feature: ``t_star`` (first time ``gamma_i >= level_i``; ``nan``:
    never before the network stopped), ``final_response`` (``gamma_i`` when it stopped), ``t_stop``
    (when it stopped), ``at_rest`` (stopped at rest before its horizon), ``ok`` (finite state, a step
    size that did not collapse, within ``max_steps``) and ``steps`` (accepted + rejected solver steps)."""

    t_star: np.ndarray
    final_response: np.ndarray
    t_stop: np.ndarray
    at_rest: np.ndarray
    ok: np.ndarray
    steps: np.ndarray


def hermite_root(t0, t1, g0, g1, d0, d1, level, iters=60):
    """Root in ``[t0, t1]`` of the cubic Hermite interpolant of ``(g, dg/dt)`` minus ``level``, by
    bisection, elementwise (``g0 < level <= g1``; elsewhere the value is unused); a non-finite slope is
    taken as the secant.  Jittable; :func:`jepa_dynamics.engines.matrix.crossing_times` calls it on the
    engine's step records, :func:`integrate_batch` on every accepted step."""
    h = t1 - t0
    secant = (g1 - g0) / jnp.where(h > 0, h, 1.0)
    d0, d1 = jnp.where(jnp.isfinite(d0), d0, secant), jnp.where(jnp.isfinite(d1), d1, secant)

    def interp(s):
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        return h00 * g0 + h10 * h * d0 + h01 * g1 + h11 * h * d1

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = interp(mid) < level
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, halve, (jnp.zeros_like(g0), jnp.ones_like(g0)))
    return t0 + 0.5 * (lo + hi) * h


def _one(y0, t_end, level, beta, kappa, mae, ema, cov, dirs, sigma2, rtol, atol, rest_tol, max_steps):
    """One network's flow to ``t_end`` (or to rest), tracking its crossings of ``level``."""
    args = (cov, beta, kappa, mae, ema, (dirs, sigma2))
    term, solver = dfx.ODETerm(_field), dfx.Tsit5()
    controller = dfx.PIDController(rtol=rtol, atol=atol)
    order = solver.error_order(term)
    t0 = jnp.zeros((), y0.dtype)
    tnext, cstate = controller.init(term, t0, t_end, y0, None, args, solver.func, order)
    tnext = jnp.minimum(tnext, t_end)
    sstate = solver.init(term, t0, tnext, y0, args)
    g0, dg0 = _record(t0, y0, args)
    t_star0 = jnp.where(g0 >= level, t0, jnp.nan)

    def cond(c):
        return ~c["done"] & (c["steps"] < max_steps)

    def body(c):
        t, t1 = c["t"], c["tnext"]
        y1, y_err, _, sstate1, _ = solver.step(term, t, t1, c["y"], args, c["s"], c["jump"])
        y_err = jnp.where(jnp.isnan(y_err), jnp.inf, y_err)
        keep, _, tnext1, jump1, cstate1, _ = controller.adapt_step_size(t, t1, c["y"], y1, args, y_err, order,
                                                                        c["c"])
        g1, dg1 = _record(t1, y1, args)
        newly = keep & jnp.isnan(c["t_star"]) & (g1 >= level)
        root = hermite_root(t, t1, c["g"], g1, c["dg"], dg1, level)
        pick = lambda a, b: jnp.where(keep, a, b)  # noqa: E731
        t_new = pick(t1, t)
        # a state whose field overflows float64 (an init far outside the small-init regime) never gets
        # an accepted step: the controller shrinks the step towards nothing, so that ends the network too
        stalled = ~keep & ~(tnext1 - t > 1e-13 * jnp.maximum(1.0, jnp.abs(t)))
        finite = (jnp.all(jnp.isfinite(y1)) | ~keep) & ~stalled
        speed = jnp.max(jnp.abs(dg1) / jnp.maximum(g1, jnp.finfo(y0.dtype).tiny))
        at_rest = keep & (speed * t1 < rest_tol)
        return {"t": t_new, "tnext": jnp.minimum(tnext1, t_end), "y": pick(y1, c["y"]),
                "s": jax.tree_util.tree_map(pick, sstate1, c["s"]), "c": cstate1, "jump": pick(jump1, c["jump"]),
                "g": pick(g1, c["g"]), "dg": pick(dg1, c["dg"]),
                "t_star": jnp.where(newly, root, c["t_star"]), "steps": c["steps"] + 1,
                "done": (keep & (t1 >= t_end)) | at_rest | ~finite,
                "rest": c["rest"] | (at_rest & (t1 < t_end)), "ok": c["ok"] & finite}

    init = {"t": t0, "tnext": tnext, "y": y0, "s": sstate, "c": cstate, "jump": jnp.asarray(False),
            "g": g0, "dg": dg0, "t_star": t_star0, "steps": jnp.asarray(0, jnp.int64), "done": jnp.asarray(False),
            "rest": jnp.asarray(False), "ok": jnp.asarray(True)}
    c = jax.lax.while_loop(cond, body, init)
    return c["t_star"], c["g"], c["t"], c["rest"], c["ok"] & c["done"], c["steps"]


_batch = jax.jit(jax.vmap(_one, in_axes=(0, 0, 0, 0, 0, 0, 0, None, None, None, None, None, None, None)))


def integrate_batch(states, cov, t_end, level, *, mae, ema_rate=None, weight_decay=0.0, dirs=None, sigma2=None,
                    rtol: float = 1e-10, atol: float = 1e-14, rest_tol: float = 1e-8, max_steps: int = 10_000_000,
                    sharding=None) -> BatchResult:
    """The matrix flows of ``n`` networks from ``states`` ``(n, L+2, d, d)`` (:func:`matrix.pack`
    arrays) on one set of covariances ``cov = (Sxx, Sxy, Syy)``, each to its own horizon ``t_end``
    ``(n,)``, its crossings taken at ``level`` ``(n, d)``.  Per network: ``mae`` (bool), ``ema_rate``
    (``kappa``; ``None`` / ``inf``: stop-gradient) and ``weight_decay`` ``beta`` (scalars broadcast).
    The responses are ``gamma_i = ||Wbar dirs_i|| / sigma2_i`` (defaults: ``dirs = Sxx``, ``sigma2 =
    diag(Sxx)``, the features of diagonal data).  ``sharding`` (a ``NamedSharding`` over the network
    axis) spreads the networks over devices, as the training engine does."""
    states = np.asarray(states, np.float64)
    n, d = states.shape[0], states.shape[-1]
    sxx = np.asarray(cov[0], np.float64)
    dirs = sxx if dirs is None else np.asarray(dirs, np.float64)
    sigma2 = np.diagonal(sxx).copy() if sigma2 is None else np.asarray(sigma2, np.float64)
    per = lambda x: np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()  # noqa: E731
    kappa = per(np.inf if ema_rate is None else ema_rate)
    ema = np.isfinite(kappa)
    t_end = per(t_end)
    if np.any(~(t_end > 0)):
        raise spec.SpecError("t_max", "every horizon must be > 0")
    level = np.broadcast_to(np.asarray(level, np.float64), (n, d)).copy()
    cols = [states, t_end, level, per(weight_decay), np.where(ema, kappa, 0.0), per(mae).astype(np.float64),
            ema.astype(np.float64)]
    n_pad = n
    if sharding is not None:
        n_dev = sharding.mesh.devices.size
        n_pad = -(-n // n_dev) * n_dev
        cols = [np.concatenate([x, np.repeat(x[-1:], n_pad - n, axis=0)]) for x in cols]
        cols = [jax.device_put(x, sharding) for x in cols]
    out = _batch(*cols, tuple(jnp.asarray(c, jnp.float64) for c in cov), jnp.asarray(dirs), jnp.asarray(sigma2),
                 jnp.asarray(rtol), jnp.asarray(atol), jnp.asarray(rest_tol), jnp.asarray(max_steps))
    t_star, final, t_stop, rest, ok, steps = (np.asarray(x)[:n] for x in out)
    return BatchResult(t_star, final, t_stop, rest, ok, steps)
