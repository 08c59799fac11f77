"""The full-matrix flow's state and its vector field.

The state packs the layers, the predictor and the EMA target in one array (with the inits that
build it); the field is the gradient flow of the population losses of docs/theory.md section 10
(JEPA, MAE) and section 16 (Barlow Twins, VICReg: one encoder on both views, no predictor), with the conserved quantities ``W_{a+1}^T W_{a+1} - W_a W_a^T``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from . import _draws
from ..theory import joint, modes as modes_mod
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

def _predictor_grads(wbar, v, target, sxx, sxy, mae, ema):
    """JEPA / MAE: ``(dLoss/dWbar, dLoss/dV)``.  With ``A = V Wbar`` and the target ``T``,
    ``dLoss/dA = G``, ``G = A Sxx - T Sxy^T`` (JEPA) or ``A Sxx - Sxy^T`` (MAE)."""
    d = wbar.shape[-1]
    t = ema * target + (1.0 - ema) * wbar
    g = v @ wbar @ sxx - ((1.0 - mae) * t + mae * jnp.eye(d, dtype=wbar.dtype)) @ sxy.T
    return v.T @ g, g @ wbar.T


def _residual(c, weight_off, weight_diag):
    """``M`` with ``dLoss/dC = 2 M`` for ``weight_diag sum_j (C_jj - 1)^2 + weight_off off(C)``."""
    eye = jnp.eye(c.shape[-1], dtype=c.dtype)
    return weight_off * c + (weight_diag - weight_off) * (c * eye) - weight_diag * eye


def _barlow_grad(wbar, sxx, sxy, syy):
    """Barlow Twins (docs/theory.md section 16): ``dLoss/dWbar = 4 M Wbar S``, ``S = (Sxy + Sxy^T)/2``,
    ``C = Wbar S Wbar^T``, ``M = mu C + (1 - mu) diag(C) - I`` (``mu = 1``, the default)."""
    s, mu = 0.5 * (sxy + sxy.T), 1.0
    return 4.0 * _residual(wbar @ s @ wbar.T, mu, 1.0) @ wbar @ s


def _vicreg_grad(wbar, sxx, sxy, syy):
    """VICReg with quadratic variance (docs/theory.md section 16), weights ``(a, b, c)`` at
    :mod:`jepa_dynamics.theory.joint`'s defaults: ``dLoss/dWbar = 2 a Wbar (Sxx + Syy - Sxy - Sxy^T)
    + 4 M_x Wbar Sxx + 4 M_y Wbar Syy``, ``M = c C + (b - c) diag(C) - b I`` of ``C_x``, ``C_y``."""
    a, b, c = joint.INVARIANCE, joint.VARIANCE, joint.COVARIANCE
    mx = _residual(wbar @ sxx @ wbar.T, c, b)
    my = _residual(wbar @ syy @ wbar.T, c, b)
    return 2.0 * a * wbar @ (sxx + syy - sxy - sxy.T) + 4.0 * (mx @ wbar @ sxx + my @ wbar @ syy)


# the objective as data: index 0 = a predictor (JEPA, MAE: the ``mae`` flag), 1 = Barlow Twins, 2 = VICReg
JOINT_INDEX = {"barlow": 1, "vicreg": 2}


def _flow(y, args):
    """``(dy/dt, Wbar)``.  ``P = dLoss/dWbar`` (:func:`_predictor_grads`; for a joint objective,
    ``args[6]`` = 1 or 2, :func:`_barlow_grad` / :func:`_vicreg_grad`, and ``V`` has no gradient),
    ``dLoss/dW_a = (W_L..W_{a+1})^T P (W_{a-1}..W_1)^T``.  ``tests/test_matrix.py`` and
    ``tests/test_matrix_joint.py`` hold it to autodiff of :mod:`jepa_dynamics.training.objectives`."""
    (sxx, sxy, syy), beta, kappa, mae, ema = args[:5]
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
    if len(args) > 6:  # the objective as data (one compiled program for all four)
        zero = jnp.zeros_like(v)
        p, gv = jax.lax.switch(args[6], [
            lambda: _predictor_grads(wbar, v, target, sxx, sxy, mae, ema),
            lambda: (_barlow_grad(wbar, sxx, sxy, syy), zero),
            lambda: (_vicreg_grad(wbar, sxx, sxy, syy), zero)])
    else:
        p, gv = _predictor_grads(wbar, v, target, sxx, sxy, mae, ema)
    dlayers = [-(suf[a].T @ p @ pre[a].T) for a in range(depth)]
    dtarget = kappa * ema * (wbar - target)
    dy = jnp.stack(dlayers + [-gv, jnp.zeros_like(gv)]) - beta * y
    return dy.at[-1].set(dtarget), wbar


def _field(t, y, args):
    return _flow(y, args)[0]


def _flags(objective: str, ema_rate):
    return jnp.asarray(1.0 if objective == "mae" else 0.0), jnp.asarray(0.0 if ema_rate is None else 1.0)


def _joint_index(objective: str):
    return jnp.asarray(JOINT_INDEX.get(objective, 0), jnp.int32)


def vector_field(objective: str, y, cov, beta=0.0, ema_rate=None):
    """``dy/dt`` of a state array ``y`` (see :func:`pack`): ``-grad - beta theta`` for the layers
    and ``V``, ``ema_rate (Wbar - Wtgt)`` for the EMA target (``None``: stop-gradient).  For
    ``barlow`` and ``vicreg`` (docs/theory.md section 16) ``V`` and the target are unused."""
    mae, ema = _flags(objective, ema_rate)
    cov = tuple(jnp.asarray(c, jnp.float64) for c in cov)
    kappa = jnp.asarray(0.0 if ema_rate is None else ema_rate)
    args = (cov, jnp.asarray(beta, jnp.float64), kappa, mae, ema, None, _joint_index(objective))
    return _flow(jnp.asarray(y), args)[0]


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
