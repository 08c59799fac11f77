r"""JEPA and MAE (docs/theory.md section 1.2), Barlow Twins and VICReg (section 16): population and sampled losses.

Notation: ``f`` the encoder (``Wbar`` when linear), ``g`` the predictor / decoder
(``V``), ``f_tgt`` the target encoder.  Squared norms are summed over output
coordinates, expectations are exact (population) or a minibatch mean (sampled).

.. math::

    \text{JEPA:}\ \tfrac12 E\|g(f(x)) - f_{tgt}(y)\|^2, \qquad
    \text{MAE:}\ \tfrac12 E\|g(f(x)) - y\|^2.

The JEPA target is chosen by the caller (see :func:`target_encoder`):

* stop-gradient (``tau = 0``): ``f_tgt = sg(f)``, the current encoder with no gradient;
* EMA (``tau`` in ``(0, 1)``): a separate encoder, updated after every optimiser step
  by ``f_tgt <- tau f_tgt + (1 - tau) f`` (:func:`ema_update`; for a deep linear encoder on
  the end-to-end matrix, ``Wtgt <- tau Wtgt + (1 - tau) Wbar``); with ``tau = 0`` that
  update makes ``f_tgt`` the current encoder, i.e. the stop-gradient copy;
* ``stop_gradient=False``: ``f_tgt = f`` with gradients flowing through the target,
  which lets the loss be minimised by collapse (``f -> 0``).

Population losses for linear models, with independent features (diagonal second
moments ``sxx = E[x_i^2]``, ``sxy = E[x_i y_i]``, ``syy = E[y_i^2]``, as vectors: the
fast path) or any covariance (``(d, d)`` matrices ``E[x x^T]``, ``E[x y^T]``, ``E[y y^T]``,
docs/theory.md section 10):

.. math::

    \text{JEPA} = \tfrac12 \operatorname{tr}(A S_{xx} A^T) - \operatorname{tr}(A S_{xy} W_{tgt}^T)
        + \tfrac12 \operatorname{tr}(W_{tgt} S_{yy} W_{tgt}^T), \quad A = V \bar W,

    \text{MAE} = \tfrac12 \operatorname{tr}(A S_{xx} A^T) - \operatorname{tr}(A S_{xy})
        + \tfrac12 \operatorname{tr}(S_{yy}).

Joint embeddings (docs/theory.md section 16): one encoder on both views, no predictor, no
stop-gradient, embeddings ``z_x = Wbar x``, ``z_y = Wbar y``.  With ``S = (Sxy + Sxy^T)/2``,
``Cx = Wbar Sxx Wbar^T``, ``Cy = Wbar Syy Wbar^T`` and ``off(M)`` the sum of squares of ``M``'s
off-diagonal entries:

.. math::

    \text{Barlow} = \sum_j (C_{jj} - 1)^2 + \mu\, \mathrm{off}(C), \quad C = \bar W S \bar W^T,

    \text{VICReg} = a\, E\|z_x - z_y\|^2 + b \sum_j [(C^x_{jj} - 1)^2 + (C^y_{jj} - 1)^2]
        + c\, [\mathrm{off}(C^x) + \mathrm{off}(C^y)],

``mu`` = ``off_diagonal`` (1 by default), ``(a, b, c)`` = ``(invariance, variance, covariance)``
(``2, 1, 1`` by default, when the loss is ``-4 tr(Wbar S Wbar^T) + ||Cx||_F^2 + ||Cy||_F^2 + 2 d``: twice
the spectral contrastive loss plus a constant if ``Sxx = Syy``).  Moments are uncentred
second moments (the data are centred), so the sampled losses are the population ones at the
minibatch's own moments.

With a minibatch's own moments ``(X^T X, X^T Y, Y^T Y) / B`` in place of the population's,
these are the minibatch losses of a linear model exactly (value, gradients, target handling):
``train`` draws those moments directly (:meth:`jepa_dynamics.training.data.Dataset.scatter`).
"""

from __future__ import annotations

from . import models
from .._jax import jax

import jax.numpy as jnp  # noqa: E402

__all__ = [
    "jepa_population",
    "mae_population",
    "jepa_sampled",
    "mae_sampled",
    "target_encoder",
    "ema_target",
    "ema_update",
    "barlow_population",
    "vicreg_population",
    "barlow_sampled",
    "vicreg_sampled",
    "joint_loss",
    "loss",
]


def jepa_population(model, target, sxx, sxy, syy):
    """Exact JEPA loss of a linear ``model`` against the linear encoder ``target``.

    Second moments as vectors (independent features) or as full ``(d, d)`` matrices
    (docs/theory.md section 10, ``sxy = E[x y^T]``)."""
    a = models.product(model.predictor.matrix(), model.encoder.matrix())
    wt = target.matrix()
    if jnp.ndim(sxx) == 2:
        return 0.5 * jnp.sum((a @ sxx) * a) - jnp.sum((a @ sxy) * wt) + 0.5 * jnp.sum((wt @ syy) * wt)
    return (0.5 * jnp.sum(a**2 * sxx[None, :]) - jnp.sum(a * wt * sxy[None, :])
            + 0.5 * jnp.sum(wt**2 * syy[None, :]))


def mae_population(model, sxx, sxy, syy):
    """Exact MAE loss of a linear ``model`` (decoder ``V``); vectors or full matrices as in
    :func:`jepa_population`."""
    a = models.product(model.predictor.matrix(), model.encoder.matrix())
    if jnp.ndim(sxx) == 2:
        return 0.5 * jnp.sum((a @ sxx) * a) - jnp.trace(a @ sxy) + 0.5 * jnp.trace(syy)
    return 0.5 * jnp.sum(a**2 * sxx[None, :]) - jnp.sum(jnp.diagonal(a) * sxy) + 0.5 * jnp.sum(syy)


def jepa_sampled(model, target, x, y):
    """Minibatch JEPA loss ``1/2 mean_b ||g(f(x_b)) - f_tgt(y_b)||^2``."""
    r = model(x) - target(y)
    return 0.5 * jnp.mean(jnp.sum(r**2, axis=-1))


def mae_sampled(model, x, y):
    """Minibatch MAE loss ``1/2 mean_b ||g(f(x_b)) - y_b||^2``."""
    r = model(x) - y
    return 0.5 * jnp.mean(jnp.sum(r**2, axis=-1))


def _square(m):
    """A second moment as a ``(d, d)`` matrix (vectors are the diagonal of independent features)."""
    return jnp.diag(m) if jnp.ndim(m) == 1 else m


def _off(m):
    return jnp.sum(m**2) - jnp.sum(jnp.diagonal(m) ** 2)


def _barlow(c, off_diagonal):
    return jnp.sum((jnp.diagonal(c) - 1.0) ** 2) + off_diagonal * _off(c)


def _vicreg(invariance_term, cx, cy, invariance, variance, covariance):
    var = jnp.sum((jnp.diagonal(cx) - 1.0) ** 2) + jnp.sum((jnp.diagonal(cy) - 1.0) ** 2)
    return invariance * invariance_term + variance * var + covariance * (_off(cx) + _off(cy))


def barlow_population(encoder, sxx, sxy, syy, *, off_diagonal=1.0):
    """Barlow Twins of a linear ``encoder``: ``||diag(C) - 1||^2 + off_diagonal * off(C)``,
    ``C = Wbar (Sxy + Sxy^T)/2 Wbar^T`` (``sxx`` and ``syy`` do not enter)."""
    del sxx, syy
    w = encoder.matrix()
    sxy = _square(sxy)
    return _barlow(w @ (0.5 * (sxy + sxy.T)) @ w.T, off_diagonal)


def vicreg_population(encoder, sxx, sxy, syy, *, invariance=2.0, variance=1.0, covariance=1.0):
    """VICReg with quadratic variance of a linear ``encoder`` (weights as in the module's formula)."""
    w = encoder.matrix()
    sxx, sxy, syy = _square(sxx), _square(sxy), _square(syy)
    cx, cy = w @ sxx @ w.T, w @ syy @ w.T
    return _vicreg(jnp.trace(cx + cy - w @ (sxy + sxy.T) @ w.T), cx, cy, invariance, variance, covariance)


def barlow_sampled(encoder, x, y, *, off_diagonal=1.0):
    """Minibatch Barlow Twins: ``C = (Z_x^T Z_y + Z_y^T Z_x) / (2 B)``."""
    zx, zy = encoder(x), encoder(y)
    c = zx.T @ zy / zx.shape[0]
    return _barlow(0.5 * (c + c.T), off_diagonal)


def vicreg_sampled(encoder, x, y, *, invariance=2.0, variance=1.0, covariance=1.0):
    """Minibatch VICReg with quadratic variance: ``mean_b ||z_x - z_y||^2``, ``Cx = Z_x^T Z_x / B``, ..."""
    zx, zy = encoder(x), encoder(y)
    n = zx.shape[0]
    return _vicreg(jnp.mean(jnp.sum((zx - zy) ** 2, axis=-1)), zx.T @ zx / n, zy.T @ zy / n,
                   invariance, variance, covariance)


def joint_loss(objective: str, kind: str, encoder, batch, **weights):
    """``barlow`` or ``vicreg`` of ``encoder`` (the predictor plays no part): ``kind="population"``,
    ``batch = (sxx, sxy, syy)``; ``kind="sampled"``, ``batch = (x, y)``; ``weights`` as above."""
    population = kind == "population"
    if objective == "barlow":
        return (barlow_population if population else barlow_sampled)(encoder, *batch, **weights)
    return (vicreg_population if population else vicreg_sampled)(encoder, *batch, **weights)


def target_encoder(model, ema_target=None, *, stop_gradient: bool = True):
    """The JEPA target: the EMA encoder if given, else ``sg(model.encoder)`` (or the live
    encoder itself when ``stop_gradient=False``)."""
    if ema_target is not None:
        return jax.lax.stop_gradient(ema_target)
    if stop_gradient:
        return jax.lax.stop_gradient(model.encoder)
    return model.encoder


def ema_target(encoder):
    """The initial EMA target for ``encoder``: for a deep linear encoder the end-to-end
    matrix ``Wbar`` as a one-layer :class:`~jepa_dynamics.training.models.DeepLinear` (the theory's
    ``Wtgt``), for any other encoder a copy of its parameters."""
    if isinstance(encoder, models.DeepLinear):
        return models.DeepLinear((encoder.matrix(),))
    return encoder


def ema_update(target, encoder, tau, mix=None):
    """``f_tgt <- tau f_tgt + (1 - tau) f`` (``mix``: ``1 - tau`` computed by the caller, e.g. in
    float64 before a cast to float32).

    Deep linear encoders (docs/theory.md section 1.2): on the end-to-end matrix,
    ``Wtgt <- tau Wtgt + (1 - tau) Wbar`` (an average of products, which layer-wise
    averages would not give for ``L >= 2``).  Other encoders: leaf by leaf on the
    parameters, the usual EMA of BYOL / I-JEPA."""
    mix = 1.0 - tau if mix is None else mix
    if isinstance(encoder, models.DeepLinear):
        return models.DeepLinear((tau * target.matrix() + mix * encoder.matrix(),))
    return jax.tree_util.tree_map(lambda t, w: tau * t + mix * w, target, encoder)


def loss(objective: str, kind: str, model, batch, ema_target=None, *, stop_gradient: bool = True):
    """The loss a training run minimises.

    ``kind="population"``: ``batch = (sxx, sxy, syy)`` (linear models only);
    ``kind="sampled"``: ``batch = (x, y)``.  ``barlow`` and ``vicreg`` use ``model.encoder`` alone
    (:func:`joint_loss`, default weights)."""
    if objective in ("barlow", "vicreg"):
        return joint_loss(objective, kind, model.encoder, batch)
    if objective == "mae":
        return (mae_population if kind == "population" else mae_sampled)(model, *batch)
    target = target_encoder(model, ema_target, stop_gradient=stop_gradient)
    return (jepa_population if kind == "population" else jepa_sampled)(model, target, *batch)
