r"""JEPA and MAE losses (docs/theory.md section 1.2), population and sampled.

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
    ``kind="sampled"``: ``batch = (x, y)``."""
    if objective == "mae":
        return (mae_population if kind == "population" else mae_sampled)(model, *batch)
    target = target_encoder(model, ema_target, stop_gradient=stop_gradient)
    return (jepa_population if kind == "population" else jepa_sampled)(model, target, *batch)
