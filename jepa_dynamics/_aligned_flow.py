r"""Gradient flow of ``(a, v, w_T)`` with diffrax, for :mod:`jepa_dynamics.aligned`.

Layers that start equal stay equal, so the ``L + 1`` (``+ 1`` EMA) scalars of
``theory-spec.md`` section 10 are ``(a, v, w_T)`` with ``w = a**L``.  The state is scaled by
its initial size (``a = a0 * A``, ``v = a0 * V``, ``w_T = eps * T``) and integrated against a
Sundman clock ``s`` with

.. math::  \frac{dt}{ds} = \frac{1}{R}, \qquad
           R = \Big\| \Big( \frac{\dot A}{|A| + \delta}, \frac{\dot V}{|V| + \delta},
                       \frac{\dot T}{|T| + \delta} \Big) \Big\|_2,

so every component's logarithm moves at most at unit speed in ``s``: the plateau, which lasts
``~eps^-(2-1/L)`` time units, is ``O(ln 1/eps)`` units of ``s``, and the rise and a collapse
(``a -> 0``) take ``O(1)`` units.  ``t`` is integrated as a fifth component.  A continuous event
``L ln|A| - ln(level / eps) = 0`` with a Newton root find stops the solve exactly at the first
time ``|w| = level``.  Rows with an EMA target are stiff (``w_T`` relaxes at rate ``kappa``, far
faster than the plateau's rate) and use the implicit Kvaerno5; the others use Tsit5.

A row whose ``|w|`` falls ``e^60`` below the level (a boolean event), or that does not cross
before ``s_max = 200 + 20 |ln(level/eps)|``, has collapsed (its state goes to ``w = 0``;
section 10's fixed points are ``0`` and ``+-|w_inf|`` only).  The clock uses ``|A|`` itself
where ``a`` cannot pass through 0 (every case but ``L = 1`` with MAE or an EMA target), so a
collapse ``a -> 0`` is followed exponentially in ``s``; the other components use
``|.| + delta``, ``delta = 1e-3`` of the initial size.
"""

from __future__ import annotations

import numpy as np

from ._jax import jax

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optimistix as optx  # noqa: E402

_BUCKETS = (64, 512)
_DELTA = 1e-3


def _signed_power(x, n):
    """``x**n`` for an integer-valued float ``n >= 0`` and any sign of ``x``."""
    odd = jnp.mod(n, 2.0) == 1.0
    mag = jnp.where(n == 0, 1.0, jnp.exp(n * jnp.log(jnp.abs(x))))
    return jnp.where(odd & (x < 0), -mag, mag)


def _rates(y, args):
    A, V, T = y[0], y[1], y[2]
    depth, lam, sigma2, a0, eps, kappa, beta, ema, mae = args
    W = _signed_power(A, depth)
    target = jnp.where(ema > 0, T, W)
    r = jnp.where(mae > 0, sigma2 * a0 * eps * V * W - lam, eps * (sigma2 * a0 * V * W - lam * target))
    scale = eps / a0  # a0^(L-1)
    dA = -scale * _signed_power(A, depth - 1.0) * V * r - beta * A
    dV = -scale * W * r - beta * V
    dT = jnp.where(ema > 0, kappa * (W - T), 0.0)
    return dA, dV, dT


def _sundman(s, y, args):
    dA, dV, dT = _rates(y, args)
    depth, mae, ema = args[0], args[8], args[7]
    # a can pass through 0 only for L = 1 with MAE or an EMA target; elsewhere a -> 0 is a collapse,
    # which the clock must follow exponentially (no delta), not linearly into a kink
    delta_a = jnp.where((depth == 1) & ((mae > 0) | (ema > 0)), _DELTA, 0.0)
    R = jnp.sqrt((dA / (jnp.abs(y[0]) + delta_a + 1e-300)) ** 2 + (dV / (jnp.abs(y[1]) + _DELTA)) ** 2) + 1e-300
    return jnp.stack([dA / R, dV / R, dT / R, 1.0 / R])


def _row(depth, lam, sigma2, a0, eps, kappa, beta, ema, mae, V0, log_level, rtol, atol, max_steps, stiff):
    args = (depth, lam, sigma2, a0, eps, jnp.where(ema > 0, kappa, 0.0), beta, ema, mae)
    log_rel = log_level - jnp.log(eps)

    def crossing(t, y, args, **kwargs):
        return depth * jnp.log(jnp.abs(y[0]) + 1e-300) - log_rel

    def collapsed(t, y, args, **kwargs):  # |w| fell e^60 below the level: on its way to 0
        return depth * jnp.log(jnp.abs(y[0]) + 1e-300) - log_rel < -60.0

    s_max = 200.0 + 20.0 * jnp.abs(log_rel)
    solver = dfx.Kvaerno5(root_finder=optx.Newton(rtol=1e-8, atol=1e-10)) if stiff else dfx.Tsit5()
    sol = dfx.diffeqsolve(
        dfx.ODETerm(_sundman), solver, t0=0.0, t1=s_max, dt0=1e-3,
        y0=jnp.stack([jnp.ones_like(V0), V0, jnp.ones_like(V0), jnp.zeros_like(V0)]), args=args,
        stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol, dtmax=0.5),
        saveat=dfx.SaveAt(t1=True), event=dfx.Event((crossing, collapsed), root_finder=optx.Newton(rtol=1e-13, atol=1e-13)),
        max_steps=max_steps, throw=False, adjoint=dfx.ForwardMode(),
    )
    y = sol.ys[-1]
    crossed = (sol.result == dfx.RESULTS.event_occurred) & sol.event_mask[0]
    ok = (sol.result == dfx.RESULTS.event_occurred) | (sol.result == dfx.RESULTS.successful)
    sign = jnp.sign(_signed_power(y[0], depth))
    return crossed, y[3], sign, ok


_batch = jax.jit(jax.vmap(_row, in_axes=(0,) * 11 + (None,) * 4), static_argnums=(13, 14))


def _pad(a, size):
    return np.concatenate([a, np.repeat(a[:1], size - a.size)]) if a.size < size else a


def first_crossing(objective, depth, lam, rho, a0, v0, kappa, beta, level, *, rtol=1e-11, atol=1e-13,
                   max_steps=16384):
    """``(crossed, t_cross, sign)`` arrays for 1-D float rows (no validation)."""
    n = depth.size
    depth = np.asarray(depth, dtype=np.float64)
    eps = a0**depth
    ema = np.isfinite(kappa) & (objective == "jepa")
    cols = dict(depth=depth, lam=lam, sigma2=lam / rho, a0=a0, eps=eps, kappa=np.where(ema, kappa, 0.0),
                beta=beta, ema=ema.astype(np.float64), mae=np.full(n, float(objective == "mae")),
                V0=v0 / a0, log_level=np.log(level))
    crossed = np.zeros(n, bool)
    t = np.full(n, np.inf)
    sign = np.ones(n)
    for stiff in (False, True):
        rows = np.flatnonzero(ema == stiff)
        for start in range(0, rows.size, _BUCKETS[-1]):
            idx = rows[start:start + _BUCKETS[-1]]
            size = next(b for b in _BUCKETS if b >= idx.size)
            args = [_pad(np.asarray(v, dtype=np.float64)[idx], size) for v in cols.values()]
            c, tc, sg, ok = (np.asarray(x)[: idx.size] for x in _batch(*args, rtol, atol, int(max_steps), stiff))
            if not ok.all():
                i = idx[int(np.flatnonzero(~ok)[0])]
                raise RuntimeError(
                    f"gradient-flow integration failed for objective={objective} depth={int(depth[i])} "
                    f"lam={lam[i]:.6g} rho={rho[i]:.6g} a0={a0[i]:.6g} predictor_init={v0[i]:.6g} "
                    f"ema_rate={kappa[i]:.6g} weight_decay={beta[i]:.6g}: increase max_steps (now {max_steps})")
            crossed[idx], t[idx], sign[idx] = c, tc, sg
    return crossed, t, sign
