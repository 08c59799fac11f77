r"""Encoders and predictors (docs/theory.md sections 1.2, 1.3, 13), as Equinox modules.

* :class:`DeepLinear` -- ``x -> W_L ... W_1 x`` (the deep linear encoder ``Wbar``);
  with ``depth = 1`` it is also the linear predictor / decoder ``V``.
* :class:`MLP` -- ``x -> W_L act(... act(W_1 x))``: ``depth`` weight matrices, the
  activation between them, no biases (the data are centred, and a bias-free tanh
  network is exactly linear to first order around its small initialisation).
* :class:`Model` -- an encoder and a predictor.  JEPA predicts the target view's
  embedding ``Wtgt y`` from ``V f(x)``; MAE decodes ``y`` from ``V f(x)``.

Initialisations (``key`` seeds every random choice):

* :func:`balanced` -- docs/theory.md section 1.3: ``W_a = eps^(1/L) O_a O_{a-1}^T`` with random
  orthogonal ``O_a`` (``O_0 = O_L = I``) and ``V = eps^(1/L) I``, so ``Wbar = eps I`` and
  every factor has the same singular values.  For an MLP whose hidden width exceeds
  ``d`` the hidden ``O_a`` are ``width x d`` with orthonormal columns.
* :func:`aligned` -- docs/theory.md section 9: diagonal layers ``W_a = eps^(1/L) I`` (no random
  frames) and a signed predictor ``V = V0 I``; ``V0 = eps^(1/L)`` is balanced.
* :func:`random_init` -- every matrix ``N(0, scale^2 / fan_in)`` entrywise (so each
  factor has singular values of order ``scale``), the predictor included.

Arrays carry the requested ``dtype`` (float64 for theory comparisons, float32 is fine
for MLPs).  Models are pytrees of arrays; the activation is a static field.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

from typing import Callable

import numpy as np

from ..engines import _draws
from ..engines._draws import orthonormal_factor, random_orthogonal  # noqa: F401  (public here too)
from ..theory import spec
from .._jax import jax

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

__all__ = [
    "ACTIVATIONS",
    "DeepLinear",
    "MLP",
    "Model",
    "balanced",
    "random_init",
    "aligned",
    "end_to_end",
    "random_orthogonal",
    "matrix_state",
    "product",
    "tiny_products",
]

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu,
                                    "linear": lambda h: h}


_TINY = contextvars.ContextVar("jepa_dynamics_tiny_products", default=0)


@contextlib.contextmanager
def tiny_products(max_dim: int = 4):
    """Trace :func:`product` of matrices no larger than ``max_dim`` as a broadcast multiply-sum
    instead of a ``dot``: the same product (to rounding), 2.4x faster for many vmapped 4 x 4
    products on a CPU (XLA's batched dot of tiny matrices is slow there; from 8 x 8 on the dot
    wins, 3x).  :mod:`jepa_dynamics.training.grid` traces its program inside this; single runs don't,
    so their results stay bit for bit what they were."""
    token = _TINY.set(max_dim)
    try:
        yield
    finally:
        _TINY.reset(token)


def product(a, b):
    """``a @ b`` (2-D), or inside :func:`tiny_products` for small matrices
    ``sum_k a[:, k, None] * b[None, k, :]``."""
    if max(a.shape + b.shape) <= _TINY.get():
        return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)
    return a @ b


class DeepLinear(eqx.Module):
    """``x -> W_L ... W_1 x``; ``layers = (W_1, ..., W_L)``, ``W_a`` of shape ``(out, in)``."""

    layers: tuple

    def __call__(self, x):
        """``x`` of shape ``(..., d_in)`` (rows are samples).

        Applies whichever association of ``W_L ... W_1 x`` costs fewer multiplies (shapes are
        static under ``jit``): layer by layer for a few samples, or the end-to-end matrix
        first when the batch outnumbers the widths (``B * sum(d_a d_{a-1})`` against
        ``sum(d_a d_{a-1} d_0) + B d_L d_0``).  Same function, same gradients; only the
        rounding differs."""
        rows = math.prod(x.shape[:-1])
        d0 = self.layers[0].shape[1]
        layer_by_layer = rows * sum(w.shape[0] * w.shape[1] for w in self.layers)
        product_first = sum(w.shape[0] * w.shape[1] * d0 for w in self.layers[1:]) + rows * self.layers[-1].shape[0] * d0
        if product_first < layer_by_layer:
            return x @ self.matrix().T
        for w in self.layers:
            x = x @ w.T
        return x

    def matrix(self):
        """The end-to-end matrix ``Wbar = W_L ... W_1``."""
        out = self.layers[0]
        for w in self.layers[1:]:
            out = product(w, out)
        return out


class MLP(eqx.Module):
    """``x -> W_L act(... act(W_1 x))`` (no biases); ``layers = (W_1, ..., W_L)``."""

    layers: tuple
    activation: str = eqx.field(static=True, default="tanh")

    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for w in self.layers[:-1]:
            x = act(x @ w.T)
        return x @ self.layers[-1].T


class Model(eqx.Module):
    """An encoder ``f`` and a predictor (JEPA) / decoder (MAE) ``g``: output ``g(f(x))``."""

    encoder: eqx.Module
    predictor: eqx.Module

    def __call__(self, x):
        return self.predictor(self.encoder(x))


def end_to_end(encoder) -> jnp.ndarray:
    """``Wbar`` of a linear encoder (a :class:`DeepLinear`)."""
    return encoder.matrix()


def matrix_state(model: Model) -> np.ndarray:
    """The matrix flow's state array (:func:`jepa_dynamics.engines.matrix.pack`: the layers
    ``W_1..W_L``, ``V``, and the target ``Wbar``) of a deep linear model with a linear predictor,
    in float64: pass it as ``state=`` to :func:`jepa_dynamics.engines.matrix.integrate` to follow
    this very network's gradient flow.  Models stacked along a leading axis (as ``train-grid``
    holds them) give the states stacked the same way, ``(n, L + 2, d, d)``."""
    from ..engines import matrix

    if not isinstance(model.encoder, DeepLinear) or not isinstance(model.predictor, DeepLinear) \
            or len(model.predictor.layers) != 1:
        raise spec.SpecError("model", "the matrix flow needs a deep linear encoder and a linear predictor")
    layers = [np.asarray(w, np.float64) for w in model.encoder.layers]
    v = np.asarray(model.predictor.layers[0], np.float64)
    d = v.shape[-1]
    if any(w.shape != v.shape for w in layers):
        raise spec.SpecError("model", f"the matrix flow needs square {d} x {d} layers")
    return np.moveaxis(np.asarray(matrix.pack(layers, v)), 0, -3)


def _dims(dim: int, depth: int, width: int | None):
    width = dim if width is None else width
    return [dim] + [width] * (depth - 1) + [dim]


def _encoder(kind: str, layers, activation: str):
    layers = tuple(layers)
    return DeepLinear(layers) if kind == "linear" else MLP(layers, activation)


def _predictor(kind: str, layers, activation: str):
    return DeepLinear(tuple(layers)) if kind == "linear" else MLP(tuple(layers), activation)


def balanced(key, dim: int, depth: int, eps: float, *, model: str = "linear", width: int | None = None,
             activation: str = "tanh", predictor: str = "linear", dtype=jnp.float64) -> Model:
    """Balanced small initialisation (docs/theory.md section 1.3): ``Wbar(0) = eps I``, ``V(0) = eps^(1/L) I``.

    ``model="mlp"`` uses the same matrices (hidden ``width >= dim``) between activations.
    ``predictor="mlp"`` is a two-layer ``eps^(1/L) I`` pair (the product ``eps^(2/L) I``)."""
    dim, depth = spec.check_positive_int(dim, "dim"), spec.check_depth(depth)
    eps = float(spec.check_positive(eps, "eps"))
    dims = _dims(dim, depth, width)
    if min(dims) < dim:
        raise spec.SpecError("width", f"balanced init needs width >= dim = {dim}, got {min(dims)}")
    u = eps ** (1.0 / depth)
    layers = [w.astype(dtype) for w in _draws.balanced_layers(key, dims, u)]
    eye = u * jnp.eye(dim, dtype=dtype)
    pred_layers = [eye] if predictor == "linear" else [eye, eye]
    return Model(_encoder(model, layers, activation), _predictor(predictor, pred_layers, activation))


def random_init(key, dim: int, depth: int, scale: float, *, model: str = "linear", width: int | None = None,
                activation: str = "tanh", predictor: str = "linear", dtype=jnp.float64) -> Model:
    """Standard random init: every matrix has i.i.d. ``N(0, scale^2 / fan_in)`` entries."""
    dim, depth = spec.check_positive_int(dim, "dim"), spec.check_depth(depth)
    scale = float(spec.check_positive(scale, "init_scale"))
    dims = _dims(dim, depth, width)
    pred_dims = [dim, dim] if predictor == "linear" else [dim, width or dim, dim]
    layers, pred = _draws.random_layers(key, dims, pred_dims, scale)
    layers, pred = [w.astype(dtype) for w in layers], [w.astype(dtype) for w in pred]
    return Model(_encoder(model, layers, activation), _predictor(predictor, pred, activation))


def aligned(key, dim: int, depth: int, eps: float, predictor_init: float | None = None, *, model: str = "linear",
            width: int | None = None, activation: str = "tanh", predictor: str = "linear",
            dtype=jnp.float64) -> Model:
    """Aligned initialisation (docs/theory.md section 9): every layer ``eps^(1/L) I`` (rectangular
    identities for an MLP wider than ``dim``) and the predictor (JEPA) / decoder (MAE)
    ``V0 I``, ``V0 = predictor_init`` signed (``None``: ``eps^(1/L)``, the balanced value).

    Then ``Wbar(0) = eps I`` and every feature ``i`` has the per-feature state
    ``a_l = eps^(1/L)``, ``v = V0`` of section 10.  ``key`` is unused (nothing is random)."""
    del key
    dim, depth = spec.check_positive_int(dim, "dim"), spec.check_depth(depth)
    eps = float(spec.check_positive(eps, "eps"))
    if predictor != "linear":
        raise spec.SpecError("predictor", "aligned init needs a linear predictor (V0 I)")
    dims = _dims(dim, depth, width)
    if min(dims) < dim:
        raise spec.SpecError("width", f"aligned init needs width >= dim = {dim}, got {min(dims)}")
    u = eps ** (1.0 / depth)
    v0 = u if predictor_init is None else float(predictor_init)
    if not np.isfinite(v0):
        raise spec.SpecError("predictor_init", f"must be a finite number, got {predictor_init!r}")
    layers = [(u * jnp.eye(dims[a + 1], dims[a], dtype=jnp.float64)).astype(dtype) for a in range(depth)]
    return Model(_encoder(model, layers, activation), DeepLinear(((v0 * jnp.eye(dim, dtype=jnp.float64)).astype(dtype),)))
