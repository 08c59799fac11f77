"""The full-matrix flow's state and its vector field.

The state packs the layers, the predictor and the EMA target in one array (with the inits that
build it); the field is the gradient flow of the population losses of docs/theory.md section 10,
with the conserved quantities ``W_{a+1}^T W_{a+1} - W_a W_a^T``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from . import _draws
from ..theory import modes as modes_mod
from ..theory import spec
from .._jax import jax

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

if TYPE_CHECKING:
    from .matrix import MatrixConfig


# --- state -------------------------------------------------------------------------------------------------
#
# The state is one float64 array ``y`` of shape ``(L + 2, d, d)``: ``y[:L]`` the layers
# ``W_1..W_L``, ``y[L]`` the predictor / decoder ``V``, ``y[L + 1]`` the EMA target ``Wtgt``
# (constant and unused without EMA).  One array, and the objective and the target as
# data (flags in ``args``), keep the compiled solver to one per ``(depth, d)``: its
# compile time (~3 s) is most of a small run's cost.

def end_to_end(layers):
    """``Wbar = W_L ... W_1`` of ``layers = (W_1, ..., W_L)`` (a sequence or a stacked array)."""
    out = layers[0]
    for w in layers[1:]:
        out = w @ out
    return out


def pack(layers, v, target=None):
    """The state array from the layers, ``V`` and the EMA target (default ``Wbar``)."""
    layers = [jnp.asarray(w, jnp.float64) for w in layers]
    target = end_to_end(layers) if target is None else jnp.asarray(target, jnp.float64)
    return jnp.stack(layers + [jnp.asarray(v, jnp.float64), target])


def unpack(y):
    """``(layers (L, d, d), V, Wtgt)`` of a state array (NumPy or JAX)."""
    return y[:-2], y[-2], y[-1]


def initial_state(config: MatrixConfig, dim: int, modes: modes_mod.Modes | None = None, given=None):
    """The state array at ``t = 0`` (see :func:`pack`); NumPy, seeded by ``config.seed`` through
    :func:`jepa_dynamics.engines._draws.init_key`, the same draws as a trained network of that seed.

    ``balanced`` (docs/theory.md section 1.3): ``W_a = u O_a O_{a-1}^T``, ``O_0 = O_L = I``, the other
    ``O_a`` Haar orthogonal, ``V = u I``, ``u = eps^(1/L)``.  ``random``: i.i.d.
    ``N(0, init_scale^2 / d)`` entries for every layer and ``V``.  ``aligned`` needs
    ``modes``; ``given`` needs ``given = (layers, V)`` (optionally a third entry, the EMA
    target; default ``Wbar(0)``)."""
    d, depth = spec.check_positive_int(dim, "dim"), config.depth
    u = config.eps ** (1.0 / depth)
    target = None
    eye = np.eye(d)
    if config.init == "balanced":
        layers = _draws.batch_of_one(_draws.balanced_layers, _draws.init_key(config.seed), (d,) * (depth + 1), u)
        v = u * eye
    elif config.init == "random":
        scale = u if config.init_scale is None else config.init_scale
        layers, (v,) = _draws.batch_of_one(_draws.random_layers, _draws.init_key(config.seed), (d,) * (depth + 1),
                                           (d, d), scale)
    elif config.init == "aligned":
        if modes is None:
            raise spec.SpecError("init", "aligned init needs the modes of the data")
        layers, v = [u * modes.q.T] + [u * eye] * (depth - 1), u * eye
    else:
        if given is None:
            raise spec.SpecError("init", "given init needs the matrices (layers, V)")
        layers, v = list(given[0]), given[1]
        target = given[2] if len(given) > 2 else None
        if len(layers) != depth or any(np.shape(w) != (d, d) for w in (*layers, v)):
            raise spec.SpecError("init", f"given init needs {depth} layers and V, each {d} x {d}")
    layers = [np.asarray(w, np.float64) for w in layers]
    target = end_to_end(layers) if target is None else np.asarray(target, np.float64)
    return np.stack(layers + [np.asarray(v, np.float64), target])


def conserved(y) -> list:
    """Du, Hu & Lee's invariants of a state array: ``W_{a+1}^T W_{a+1} - W_a W_a^T``
    (``a = 1..L-1``) and ``V^T V - W_L W_L^T`` (constant under gradient flow without
    weight decay, also with a stop-gradient or EMA target; with weight decay ``beta`` they
    decay as ``exp(-2 beta t)``)."""
    ws = list(y[:-1])
    return [b.T @ b - a @ a.T for a, b in zip(ws[:-1], ws[1:])]


# --- vector field ------------------------------------------------------------------------------------------

def _flow(y, args):
    """``(dy/dt, Wbar)``.  With ``A = V Wbar`` and the target ``T``, ``dLoss/dA = G``,
    ``G = A Sxx - T Sxy^T`` (JEPA) or ``A Sxx - Sxy^T`` (MAE); ``dLoss/dV = G Wbar^T``,
    ``dLoss/dWbar = V^T G`` and ``dLoss/dW_a = (W_L..W_{a+1})^T V^T G (W_{a-1}..W_1)^T``.
    ``tests/test_matrix.py`` holds it to autodiff of :mod:`jepa_dynamics.training.objectives`."""
    (sxx, sxy, _), beta, kappa, mae, ema = args[:5]
    layers, v, target = y[:-2], y[-2], y[-1]
    depth, d = layers.shape[0], y.shape[-1]
    pre = [jnp.eye(d, dtype=y.dtype)]
    for a in range(depth):
        pre.append(layers[a] @ pre[-1])
    wbar = pre[-1]
    suf = [jnp.eye(d, dtype=y.dtype)]
    for a in range(depth - 1, 0, -1):
        suf.append(suf[-1] @ layers[a])
    suf = suf[::-1]  # suf[a] = W_L .. W_{a+2} (0-based layer a's left factor)
    t = ema * target + (1.0 - ema) * wbar
    g = v @ wbar @ sxx - ((1.0 - mae) * t + mae * jnp.eye(d, dtype=y.dtype)) @ sxy.T
    p = v.T @ g
    dlayers = [-(suf[a].T @ p @ pre[a].T) for a in range(depth)]
    dv = -(g @ wbar.T)
    dtarget = kappa * ema * (wbar - target)
    dy = jnp.stack(dlayers + [dv, jnp.zeros_like(dv)]) - beta * y
    return dy.at[-1].set(dtarget), wbar


def _field(t, y, args):
    return _flow(y, args)[0]


def _flags(objective: str, ema_rate):
    return jnp.asarray(1.0 if objective == "mae" else 0.0), jnp.asarray(0.0 if ema_rate is None else 1.0)


def vector_field(objective: str, y, cov, beta=0.0, ema_rate=None):
    """``dy/dt`` of a state array ``y`` (see :func:`pack`): ``-grad - beta theta`` for the layers
    and ``V``, ``ema_rate (Wbar - Wtgt)`` for the EMA target (``None``: stop-gradient)."""
    mae, ema = _flags(objective, ema_rate)
    cov = tuple(jnp.asarray(c, jnp.float64) for c in cov)
    kappa = jnp.asarray(0.0 if ema_rate is None else ema_rate)
    return _flow(jnp.asarray(y), (cov, jnp.asarray(beta, jnp.float64), kappa, mae, ema))[0]


def _gamma(wbar, dirs, sigma2):
    return jnp.sqrt(jnp.sum((wbar @ dirs) ** 2, axis=0)) / sigma2


def _record(t, y, args):
    """Per accepted step: ``gamma_i`` and ``d gamma_i / dt`` (a JVP of ``Wbar`` along the flow)."""
    dirs, sigma2 = args[5]
    dy, wbar = _flow(y, args)
    _, dwbar = jax.jvp(end_to_end, (y[:-2],), (dy[:-2],))
    proj = wbar @ dirs
    norm = jnp.sqrt(jnp.sum(proj**2, axis=0))
    safe = jnp.where(norm > 0, norm, 1.0)
    return jnp.stack([norm / sigma2, jnp.sum(proj * (dwbar @ dirs), axis=0) / (safe * sigma2)])


@partial(jax.jit, static_argnums=(6,))
def _segment(y, t0, t1, dt0, args, tols, max_steps):
    rtol, atol = tols
    saveat = dfx.SaveAt(subs=[dfx.SubSaveAt(t1=True), dfx.SubSaveAt(steps=True, fn=_record)])
    sol = dfx.diffeqsolve(
        dfx.ODETerm(_field), dfx.Tsit5(), t0=t0, t1=t1, dt0=dt0, y0=y, args=args,
        stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol), saveat=saveat, max_steps=max_steps,
        throw=False, adjoint=dfx.ForwardMode())
    end = sol.ys[0][0]
    ok = ((sol.result == dfx.RESULTS.successful) | (sol.result == dfx.RESULTS.max_steps_reached)) & jnp.all(
        jnp.isfinite(end))
    return end, sol.ts[0][0], sol.ts[1], sol.ys[1], sol.stats["num_accepted_steps"], sol.stats["num_steps"], ok
