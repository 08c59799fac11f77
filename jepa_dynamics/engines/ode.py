r"""Numerical integration of the per-feature ODEs with diffrax, vmapped over rows.

Both objectives are ``dw/dt = L (lam w^p - sigma2 w^3)`` with ``p`` from
:func:`jepa_dynamics.theory.exponent`, so the exponent is data, not code: JEPA and
MAE rows of every depth share one compiled solver.  Rows are padded to a few bucket
sizes, so a sweep compiles once per bucket, not once per parameter set.

The stiffness trap (docs/theory.md section 7) is avoided by formulation:

* **Critical times** integrate ``z = ln w`` and ``t`` against a rescaled clock
  ``s`` (a Sundman transformation), ``dt/ds = 1 / (L lam w^{p-1})``, so that

  .. math::  \frac{dz}{ds} = 1 - \frac{w^{3-p}}{\rho}, \qquad
             \frac{dt}{ds} = \frac{e^{-(p-1) z}}{L \lambda}.

  The plateau, which lasts ``~eps^{-(p-1)}`` time units, becomes ``~ln(1/eps)``
  units of ``s``; ``z`` moves at unit speed.  ``dz/ds`` depends on ``z`` alone and
  stays positive below ``w_star``, so ``z`` itself can be the clock: the critical
  time is the solution at ``z_c = ln(fraction * w_star)`` of

  .. math::  \frac{dt}{dz} = \frac{e^{-(p-1) z}}{L \lambda \, (1 - e^{(3-p) z} / \rho)},
             \qquad t(\ln \varepsilon) = 0,

  integrated with Tsit5 (explicit, order 5) and a PID step controller from
  ``ln eps`` to ``z_c`` exactly.  No crossing event or root finder is needed (the
  end point is known), which halves the compile time and cuts the steps by a
  third against the ``(z, t)``-in-``s`` system with an event; ``dt/dz`` is bounded by
  ``1 / (1 - fraction^{3-p})`` times the plateau's rate on ``[ln eps, z_c]``, and
  the integration never enters the fixed point's stiff tail.
* **Trajectories** on a requested grid of times integrate the same ``(z, t)``
  system in ``s`` with Tsit5 and dense output, stopping once ``t`` passes the last
  requested time or ``w`` equals ``w_star`` to float64 resolution (the tail, which is
  stiff in ``t``, relaxes at rate ``3 - p`` in ``s``, so it is not stiff here).  Each
  requested time is then found on the dense output by bisection in ``s`` (``t`` is
  increasing in ``s``).  The relative error of ``t`` is about ``rtol``; integrating
  in ``t`` instead (Kvaerno5 on ``ln w``) lost ~1e-5 of relative phase to the tolerance
  on ``|ln w|`` and ran out of steps in the rise for large ``lam``.

All work is float64.  Failures (step limit, non-finite state, no crossing) raise
:class:`SolverError`, naming the row's parameters and what to change.
"""

from __future__ import annotations

import numpy as np

from ..theory import spec, balanced as theory
from .._jax import jax, pad_rows

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

__all__ = ["SolverError", "critical_time", "trajectory"]

# Padded row counts per compiled program, and the rows per call, by backend.  On a CPU a call
# of 4096 rows already keeps both cores busy and larger pads only waste work; a GPU needs
# ~10^5-10^6 rows in flight to fill its cores (measured: 4.2 us/row on an H200 at 4096 rows,
# the same as this CPU), so it gets larger buckets -- still a few, to compile few times.
_SIZES = {"cpu": ((512, 4096), 4096), "gpu": ((512, 4096, 65536, 1 << 20), 1 << 20),
          "tpu": ((512, 4096, 65536, 1 << 20), 1 << 20)}


def _sizes(backend: str | None = None):
    """``(buckets, chunk)`` for ``backend`` (default: JAX's default backend; unknown ones as CPU)."""
    backend = jax.default_backend() if backend is None else backend
    return _SIZES.get(backend, _SIZES["cpu"])


_BUCKETS, _CHUNK = _SIZES["cpu"]  # the CPU values, kept for readers of the old names


class SolverError(RuntimeError):
    """The ODE solver failed for a parameter row; the message says what to change."""


def _rows(objective, depth, lam, rho, eps, fraction):
    """Validate and flatten broadcastable inputs into 1-D float64 rows."""
    depth, lam, rho, eps, fraction = theory.validate(objective, depth, lam, rho, eps, fraction)
    shape = np.broadcast_shapes(np.shape(depth), lam.shape, rho.shape, eps.shape, fraction.shape)
    flat = [np.broadcast_to(np.asarray(a, dtype=np.float64), shape).ravel() for a in (depth, lam, rho, eps, fraction)]
    p = theory.exponent(objective, flat[0])
    return shape, p, flat


def _padded_chunks(n: int, chunk: int | None = None, backend: str | None = None):
    """Yield ``(start, stop, padded_size)`` covering ``n`` rows with few distinct sizes
    (:func:`_sizes` of ``backend``; ``chunk`` caps the rows per call, default the backend's)."""
    buckets, default_chunk = _sizes(backend)
    chunk = default_chunk if chunk is None else min(chunk, buckets[-1])
    start = 0
    while start < n:
        stop = min(n, start + chunk)
        size = next(b for b in buckets if b >= stop - start)
        yield start, stop, size
        start = stop


def _sundman_field(s, y, args):
    p, depth, lam, rho = args
    z = y[0]
    dz = 1.0 - jnp.exp((3.0 - p) * z) / rho
    dt = jnp.exp(-(p - 1.0) * z) / (depth * lam)
    return jnp.stack([dz, dt])


def _critical_field(z, t, args):
    """``dt/dz`` in units of its value on the plateau: the ODE with ``z = ln w`` as the independent
    variable, times ``e^{(p-1) z0}`` (so the integrand is at most ``1 / (1 - e^{(3-p) z} / rho)``)."""
    p, depth, lam, rho, z0 = args
    return jnp.exp(-(p - 1.0) * (z - z0)) / (depth * lam * (1.0 - jnp.exp((3.0 - p) * z) / rho))


def _critical_row(p, depth, lam, rho, eps, fraction, rtol, atol, max_steps):
    z0 = jnp.log(eps)
    w_star = rho ** (1.0 / (3.0 - p))
    z_c = jnp.log(fraction * w_star)
    sol = dfx.diffeqsolve(
        dfx.ODETerm(_critical_field),
        dfx.Tsit5(),
        t0=z0,
        t1=z_c,
        dt0=None,
        y0=jnp.zeros_like(z0),
        # the clock is lam * t and the unit the plateau's dt/dz: atol stays relative however short t is
        # (t ~ 1e-8 lost 1e-4 of it to atol = 1e-12 in plain time units)
        args=(p, depth, jnp.ones_like(lam), rho, z0),
        stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol),
        saveat=dfx.SaveAt(t1=True),
        max_steps=max_steps,
        throw=False,
        adjoint=dfx.ForwardMode(),  # never reverse-differentiated: a plain while loop, traced faster
    )
    crossed = sol.result == dfx.RESULTS.successful
    return sol.ys[-1] * jnp.exp(-(p - 1.0) * z0) / lam, crossed, sol.stats["num_steps"]


_critical_batch = jax.jit(
    jax.vmap(_critical_row, in_axes=(0, 0, 0, 0, 0, 0, None, None, None)), static_argnums=(8,)
)


def _describe(objective, depth, lam, rho, eps, fraction=None) -> str:
    text = f"objective={objective} depth={int(depth)} lam={lam:.6g} rho={rho:.6g} eps={eps:.6g}"
    return text + (f" fraction={fraction:.6g}" if fraction is not None else "")


def critical_time(objective: str, depth, lam, rho, eps, fraction=0.5, *, rtol=1e-10, atol=1e-12, max_steps=4096):
    """Critical time ``t_star`` found by integrating ``dt/dz`` up to ``z = ln(fraction * w_star)``.

    Arguments broadcast (NumPy rules) to a batch shape; the result has that shape.
    Independent of :func:`jepa_dynamics.theory.critical_time`, which it should match
    to about ``rtol``.  ``max_steps`` bounds the steps per row."""
    shape, p, (depth, lam, rho, eps, fraction) = _rows(objective, depth, lam, rho, eps, fraction)
    out = np.empty(depth.size)
    for start, stop, size in _padded_chunks(depth.size):
        cols = [pad_rows(a[start:stop], size) for a in (p, depth, lam, rho, eps, fraction)]
        t, crossed, steps = _critical_batch(*cols, rtol, atol, int(max_steps))
        t, crossed, steps = np.asarray(t)[: stop - start], np.asarray(crossed)[: stop - start], np.asarray(steps)
        bad = ~(crossed & np.isfinite(t))
        if bad.any():
            i = start + int(np.flatnonzero(bad)[0])
            hint = (
                f"increase max_steps (now {max_steps}) or loosen rtol (now {rtol:g})"
                if steps[i - start] >= max_steps
                else "the state became non-finite or never crossed; check the parameters"
            )
            raise SolverError(
                "ODE integration did not reach fraction * w_star for "
                + _describe(objective, depth[i], lam[i], rho[i], eps[i], fraction[i])
                + f": {hint}"
            )
        out[start:stop] = t
    return out.reshape(shape)


_TRAJECTORY_CHUNK = 512  # dense output holds max_steps steps per row: keep blocks small


def _trajectory_row(p, depth, lam, rho, eps, ts, rtol, atol, max_steps):
    z0 = jnp.log(eps)
    z_star = jnp.log(rho) / (3.0 - p)
    # Below z_half (w^{3-p} / rho <= 1/2) dz/ds >= 1/2; above it 1 - w^{3-p} / rho decays
    # at rate >= (3-p)/2, reaching 1e-17 within 80 / (3-p): by s_max, w = w_star in float64.
    z_half = z_star - jnp.log(2.0) / (3.0 - p)
    s_max = 2.0 * jnp.maximum(z_half - z0, 0.0) + 80.0 / (3.0 - p)
    t_end = lam * ts[-1]  # the clock is lam * t (exact 1/lam scaling, atol stays relative)

    def done(s, y, args, **kwargs):
        return (y[1] >= t_end) | (-jnp.expm1((3.0 - p) * (y[0] - z_star)) < 1e-15)

    sol = dfx.diffeqsolve(
        dfx.ODETerm(_sundman_field),
        dfx.Tsit5(),
        t0=0.0,
        t1=s_max,
        dt0=1e-2,
        y0=jnp.stack([z0, 0.0]),
        args=(p, depth, jnp.ones_like(lam), rho),
        stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol, dtmax=1.0),  # z moves <= ~1 per step: no exp overflow in trial steps
        saveat=dfx.SaveAt(t1=True, dense=True),
        event=dfx.Event(done),
        max_steps=max_steps,
        throw=False,
    )
    s_last, z_last, t_last = sol.ts[-1], sol.ys[-1, 0], sol.ys[-1, 1]

    def w_at(t_raw):
        t = lam * t_raw

        def halve(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            below = sol.evaluate(mid)[1] < t
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 64, halve, (jnp.zeros_like(s_last), s_last))
        z = jnp.where(t >= t_last, z_last, sol.evaluate(0.5 * (lo + hi))[0])
        return jnp.where(t_raw <= 0, eps, jnp.exp(z))

    ok = (sol.result == dfx.RESULTS.successful) | (sol.result == dfx.RESULTS.event_occurred)
    return jax.vmap(w_at)(ts), ok, sol.stats["num_steps"]


_trajectory_batch = jax.jit(
    jax.vmap(_trajectory_row, in_axes=(0, 0, 0, 0, 0, None, None, None, None)), static_argnums=(8,)
)


def trajectory(objective: str, depth, lam, rho, eps, ts, *, rtol=1e-10, atol=1e-12, max_steps=2048):
    """``w(t)`` on the increasing times ``ts`` (``ts[0] >= 0``): Sundman-clock Tsit5,
    inverted for ``t`` on its dense output (module docstring).

    Parameters broadcast to a batch shape ``B``; the result has shape ``B + (len(ts),)``.
    ``eps`` must lie below ``w_star``."""
    spec.check_objective(objective)
    ts = spec.check_nonnegative(ts, "ts")
    if ts.ndim != 1 or ts.size == 0 or np.any(np.diff(ts) <= 0):
        raise spec.SpecError("ts", "must be a non-empty, strictly increasing 1-D array of times")
    # eps below w_star (the fraction-free condition) is all a trajectory needs.
    depth_c = spec.check_depths(depth)
    lam_c, rho_c = spec.check_lam(lam), spec.check_rho(rho)
    eps_c = spec.check_eps(eps, objective, depth_c, rho_c, 1.0)
    shape = np.broadcast_shapes(np.shape(depth_c), lam_c.shape, rho_c.shape, eps_c.shape)
    depth_f, lam_f, rho_f, eps_f = (
        np.broadcast_to(np.asarray(a, dtype=np.float64), shape).ravel() for a in (depth_c, lam_c, rho_c, eps_c)
    )
    p = theory.exponent(objective, depth_f)
    out = np.empty((depth_f.size, ts.size))
    ts_j = jnp.asarray(ts)
    for start, stop, size in _padded_chunks(depth_f.size, _TRAJECTORY_CHUNK):
        cols = [pad_rows(a[start:stop], size) for a in (p, depth_f, lam_f, rho_f, eps_f)]
        w, ok, steps = _trajectory_batch(*cols, ts_j, rtol, atol, int(max_steps))
        w, ok = np.asarray(w)[: stop - start], np.asarray(ok)[: stop - start]
        bad = ~(ok & np.all(np.isfinite(w), axis=1))
        if bad.any():
            i = start + int(np.flatnonzero(bad)[0])
            raise SolverError(
                "ODE integration failed for "
                + _describe(objective, depth_f[i], lam_f[i], rho_f[i], eps_f[i])
                + f" up to t={ts[-1]:.6g}: increase max_steps (now {max_steps}) or loosen rtol (now {rtol:g})"
            )
        out[start:stop] = w
    return out.reshape(shape + (ts.size,))
