r"""The exact gradient-descent map of one feature (docs/theory.md section 9), in JAX.

Per feature the network is the layers ``a_1..a_L``, the predictor (JEPA) / decoder (MAE)
entry ``v`` and, for JEPA with an EMA target, ``w_T``.  Layers that start equal get the
same gradient at every step, so they stay equal *bit for bit* under plain gradient
descent: the state is ``(a, v, w_T)`` with ``w = a**L``.  One step with learning rate
``eta`` and coupled weight decay ``beta`` is

.. math::

    r = \sigma^2 v w - \lambda T \quad (\text{MAE: } \sigma^2 v w - \lambda),\qquad
    T = w \ (\text{stop-gradient}) \text{ or } w_T,

    v' = v - \eta (w r + \beta v), \qquad
    a' = a - \eta (a^{L-1} v r + \beta a), \qquad
    w_T' = \tau w_T + (1 - \tau) a'^L, \quad \tau = 1 - \eta\kappa,

the target being updated after the parameters.  ``kappa = inf`` is the stop-gradient
target (``tau = 0``).  ``w = a**L`` is the product ``a * a * ... * a`` taken left to right,
as a product of diagonal matrices computes it.

:func:`critical_steps` iterates the map for a batch of rows (vmapped ``lax.while_loop``,
``_UNROLL`` steps per loop iteration, no Python loop per step) until ``|w_k|`` first
reaches a given level, and returns the step count interpolated linearly between steps
``k*-1`` and ``k*`` (the rule :func:`jepa_dynamics.training.analysis.interpolate_crossing` applies
to trained networks).

**No plateau jump.**  Every step is computed.  The map has no closed-form iterate, and any
jump (a gradient-flow or asymptotic shortcut over the plateau) changes the rounding of the
state, so the result would no longer equal a trained network's step for step; the unrolled
loop is fast enough instead (``docs/benchmarks.md``: rows x steps per second).

**Past the stability bound** (:func:`stability_bound`) the iterates near the fixed point
settle into a period-2 cycle around it; the first crossing of ``fraction * |w_inf|``
happens on the way up, before the oscillation, so ``critical_step`` is still the first
crossing.  A row whose iterates leave float64 (overflow, NaN) or never reach the level
within ``max_steps`` reports ``inf``.
"""

from __future__ import annotations

import numpy as np

from . import spec
from .._jax import jax, pad_rows

import jax.numpy as jnp  # noqa: E402

__all__ = ["stability_bound", "step", "critical_steps", "iterate"]

_UNROLL = 32
_BUCKETS = (64, 1024, 8192)
_BATCH = 1024  # rows per call: batches of similar length (critical_steps sorts rows by their estimated length)


def stability_bound(objective: str, depth, lam, rho):
    """Largest stable learning rate at the balanced fixed point (no weight decay, no EMA):
    JEPA ``2 / (lam rho^(2L-1))``; MAE ``2 / ((L+1) sigma2 u*^(2L))``, ``u* = rho^(1/(L+1))``.

    Linearising ``u' = u + eta g(u)`` at ``u*``: stable iff ``0 < -eta g'(u*) < 2``, with
    ``g'(u*) = -sigma2 u*^(2L)`` (JEPA, ``u* = rho``) and ``-(L+1) sigma2 u*^(2L)`` (MAE)."""
    spec.check_objective(objective)
    depth = np.asarray(spec.check_depths(depth), dtype=np.float64)
    lam, rho = spec.check_lam(lam), spec.check_rho(rho)
    sigma2 = lam / rho
    if objective == "jepa":
        return 2.0 / (lam * rho ** (2 * depth - 1))
    u_star = rho ** (1.0 / (depth + 1))
    return 2.0 / ((depth + 1) * sigma2 * u_star ** (2 * depth))


def _power(x, n, n_max: int):
    """``x**n`` as the left-to-right product ``x * ... * x`` (``n`` an integer array <= n_max)."""
    out = jnp.ones_like(x)
    for k in range(n_max):
        out = jnp.where(k < n, out * x, out)
    return out


def step(state, params, n_max: int):
    """One gradient-descent step.  ``state = (a, v, w_T)``; ``params = (depth, lam, sigma2,
    eta, beta, tau, ema, mae)`` (``ema``, ``mae``: 0/1 flags)."""
    a, v, w_t = state
    depth, lam, sigma2, eta, beta, tau, ema, mae = params
    w = _power(a, depth, n_max)
    target = jnp.where(ema > 0, w_t, w)
    r = jnp.where(mae > 0, sigma2 * v * w - lam, sigma2 * v * w - lam * target)
    grad_v = w * r + beta * v
    grad_a = _power(a, depth - 1, n_max) * v * r + beta * a
    v_new = v - eta * grad_v
    a_new = a - eta * grad_a
    w_new = _power(a_new, depth, n_max)
    w_t_new = jnp.where(ema > 0, tau * w_t + (1.0 - tau) * w_new, w_new)
    return (a_new, v_new, w_t_new), w_new


def _row(a0, v0, depth, lam, sigma2, eta, beta, tau, ema, mae, level, max_steps, n_max):
    params = (depth, lam, sigma2, eta, beta, tau, ema, mae)
    w0 = jnp.abs(_power(a0, depth, n_max))

    def cond(carry):
        k, state, prev, found, k_star, before, at = carry
        return (~found) & (k < max_steps) & jnp.isfinite(prev)

    def body(carry):
        def inner(_, c):
            k, state, prev, found, k_star, before, at = c
            live = (~found) & (k < max_steps)
            new_state, w = step(state, params, n_max)
            aw = jnp.abs(w)
            hit = live & (aw >= level) & jnp.isfinite(aw)  # an iterate that left float64 is no crossing
            state = jax.tree_util.tree_map(lambda n, o: jnp.where(live, n, o), new_state, state)
            k_new = jnp.where(live, k + 1, k)
            return (k_new, state, jnp.where(live, aw, prev), found | hit, jnp.where(hit, k_new, k_star),
                    jnp.where(hit, prev, before), jnp.where(hit, aw, at))

        return jax.lax.fori_loop(0, _UNROLL, inner, carry, unroll=True)

    init = (jnp.zeros((), jnp.int64), (a0, v0, _power(a0, depth, n_max)), w0, w0 >= level,
            jnp.zeros((), jnp.int64), w0, w0)
    k, state, prev, found, k_star, before, at = jax.lax.while_loop(cond, body, init)
    frac = (level - before) / (at - before)
    k_interp = jnp.where(k_star == 0, 0.0, (k_star - 1) + frac)
    return jnp.where(found, k_interp, jnp.inf), k


_batch = jax.jit(jax.vmap(_row, in_axes=(0,) * 11 + (None, None)), static_argnums=(12,))


def critical_steps(objective: str, depth, lam, rho, a0, v0, level, *, lr, ema_rate=np.inf, weight_decay=0.0,
                   max_steps: int = 10**9):
    """Interpolated step count at which ``|w_k|`` first reaches ``level`` (no validation).

    All arguments are 1-D float arrays of one length (``depth`` integers), ``a0`` the common
    initial layer entry, ``v0`` the predictor/decoder entry; ``w_T(0) = a0**L``.  Returns
    ``(k_interp, steps_run)``: ``k_interp`` is ``inf`` where the level is never reached
    (within ``max_steps``, or the iterates left float64); ``steps_run`` counts the steps
    computed per row (for the benchmark)."""
    depth = np.asarray(depth, dtype=np.int64)
    n = depth.size
    cols = [np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)) for x in
            (a0, v0, lam, rho, lr, ema_rate, weight_decay, level)]
    a0, v0, lam, rho, eta, kappa, beta, level = cols
    ema = np.isfinite(kappa) & (objective == "jepa")
    tau = np.where(ema, 1.0 - eta * np.where(ema, kappa, 0.0), 0.0)
    mae = np.full(n, objective == "mae")
    sigma2 = lam / rho
    n_max = int(depth.max()) if n else 1
    # A vmapped while loop runs until its slowest row is done, so rows of very different length
    # waste the short ones' lanes: batch rows in the order of their estimated step count (the
    # plateau's leading order, see _estimated_steps).  Each row's result does not depend on its
    # batch mates (a finished row's state is frozen), so the order changes only the speed.
    order = np.argsort(_estimated_steps(objective, depth, lam, a0, v0, eta), kind="stable")
    cols = [x[order] for x in (a0, v0, depth, lam, sigma2, eta, beta, tau, ema.astype(np.float64),
                               mae.astype(np.float64), level)]
    out = np.empty(n)
    run = np.empty(n, dtype=np.int64)
    start = 0
    while start < n:
        stop = min(n, start + _BATCH)
        size = next(b for b in _BUCKETS if b >= stop - start)
        k, steps = _batch(*[pad_rows(x[start:stop], size) for x in cols], int(max_steps), n_max)
        out[order[start:stop]] = np.asarray(k)[: stop - start]
        run[order[start:stop]] = np.asarray(steps)[: stop - start]
        start = stop
    return out, run


def _estimated_steps(objective, depth, lam, a0, v0, eta):
    """Leading-order plateau length in steps, only to order rows (never a result): the balanced
    small-``eps`` asymptotics of ``docs/theory.md`` section 6 at ``u0 = max(|a0|, |v0|)``, JEPA
    ``u0^-(2L-1) / ((2L-1) lam eta)``, MAE ``u0^-(L-1) / ((L-1) lam eta)`` (``ln(1/u0)`` at ``L = 1``)."""
    u0 = np.maximum(np.maximum(np.abs(a0), np.abs(v0)), 1e-300)
    n = (2 * depth - 1) if objective == "jepa" else (depth - 1)
    with np.errstate(over="ignore", divide="ignore"):
        plateau = np.where(n > 0, u0 ** -np.maximum(n, 1) / np.maximum(n, 1), np.log1p(1.0 / u0))
        return plateau / (lam * eta)


def iterate(objective: str, depth: int, lam, rho, a0, v0, steps: int, *, lr, ema_rate=np.inf, weight_decay=0.0):
    """The map's iterates ``w_0..w_steps`` for one row (for figures and tests): a ``lax.scan``."""
    depth = int(depth)
    ema = bool(np.isfinite(ema_rate)) and objective == "jepa"
    tau = 1.0 - lr * ema_rate if ema else 0.0
    params = (depth, float(lam), float(lam) / float(rho), float(lr), float(weight_decay), tau, float(ema),
              float(objective == "mae"))
    a0 = jnp.asarray(float(a0))
    w0 = a0**depth

    def body(state, _):
        new, w = step(state, params, depth)
        return new, w

    _, ws = jax.lax.scan(body, (a0, jnp.asarray(float(v0)), w0), None, length=int(steps))
    return np.concatenate([[float(w0)], np.asarray(ws)])
