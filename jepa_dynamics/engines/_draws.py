"""The random draws of every initialisation, in one place: the trained networks
(:mod:`jepa_dynamics.training.models`) and the matrix flow (:mod:`jepa_dynamics.engines.matrix`)
both draw their matrices here, so one seed gives the same matrices in ``train``, ``train-grid``
and ``matrix`` (docs/theory.md section 10, "Random init, predicted").

* :func:`init_key` -- the key a run's init is drawn from: the first of three keys split from
  ``PRNGKey(seed)`` (the other two seed the data and the evaluation batch of a training run).
* :func:`balanced_layers` -- ``W_a = u O_a O_{a-1}^T`` with Haar ``O_a`` (``O_0 = O_L = I``).
* :func:`random_layers` -- i.i.d. ``N(0, scale^2 / fan_in)`` entries for every encoder layer and
  every predictor matrix.

Every draw is float64 (callers cast); nothing here depends on the model or the objective.
:func:`batch_of_one` evaluates a draw the way ``train-grid`` does for many networks (one
``jit(vmap)``), so a single run's matrices equal a grid's bit for bit (XLA fuses a jitted,
vmapped normal draw differently from the eager one: they differ in the last bit).
"""

from __future__ import annotations

import functools

import numpy as np

from .._jax import jax

import jax.numpy as jnp  # noqa: E402

__all__ = ["init_key", "balanced_layers", "random_layers", "random_orthogonal", "orthonormal_factor",
           "batch_of_one"]


def init_key(seed: int):
    """The key of a run's init: ``jax.random.split(PRNGKey(seed), 3)[0]``."""
    return jax.random.split(jax.random.PRNGKey(seed), 3)[0]


def random_orthogonal(key, n: int, k: int | None = None, dtype=jnp.float64):
    """An ``n x k`` matrix with orthonormal columns (Haar): the ``Q`` of a Gaussian matrix's
    QR decomposition with ``diag(R) > 0`` (:func:`orthonormal_factor`)."""
    k = n if k is None else k
    a = jax.random.normal(key, (n, k), dtype=jnp.float64)
    return orthonormal_factor(a).astype(dtype)


def orthonormal_factor(a):
    """``Q`` of ``a = Q R`` (``a``: ``n x k``, ``k <= n``, full column rank) with ``diag(R) > 0``,
    by Householder reflections written in plain ``jax.numpy`` (a ``fori_loop`` over columns).

    The positive diagonal makes ``Q`` unique, so this is ``jnp.linalg.qr``'s ``Q`` with the
    columns' signs fixed, to rounding.  It does not call ``jnp.linalg.qr`` because, on the CPU,
    a batched QR (``vmap`` over networks) runs jaxlib's LAPACK kernel, which fans its batch out
    over XLA's intra-op thread pool and blocks until it is done: two such kernels running at
    once hold every thread of a 2-core machine's pool and wait for each other forever.
    ``train-grid`` hung that way in 5 to 9 of 10 runs that initialised several groups of 1,024
    networks (the same re-entrant-pool deadlock as PyAutoLabs/PyAutoFit#1530's FFT)."""
    a = jnp.asarray(a)
    n, k = a.shape
    rows = jnp.arange(n)

    def reflect(j, carry):
        r, vs, signs = carry
        x = jnp.where(rows >= j, r[:, j], 0.0)
        xj = x[j]
        sign = jnp.where(xj >= 0, 1.0, -1.0)
        alpha = -sign * jnp.sqrt(jnp.sum(x * x))  # R's diagonal entry (sign opposite to x_j: no cancellation)
        v = x.at[j].add(-alpha)
        v = v / jnp.sqrt(jnp.sum(v * v))
        r = r - 2.0 * jnp.outer(v, v @ r)
        return r, vs.at[:, j].set(v), signs.at[j].set(jnp.where(alpha >= 0, 1.0, -1.0))

    _, vs, signs = jax.lax.fori_loop(0, k, reflect, (a, jnp.zeros((n, k), a.dtype), jnp.ones(k, a.dtype)))

    def apply(i, q):  # Q = H_0 H_1 ... H_{k-1} I[:, :k], the last reflection applied first
        v = vs[:, k - 1 - i]
        return q - 2.0 * jnp.outer(v, v @ q)

    q = jax.lax.fori_loop(0, k, apply, jnp.eye(n, k, dtype=a.dtype))
    return q * signs[None, :]


def balanced_layers(key, dims, u: float) -> list:
    """The balanced layers ``W_a = u O_a O_{a-1}^T`` (``a = 1..L``, ``dims = [d, width, ..., d]``):
    ``O_0 = O_L = I``, the hidden ``O_a`` ``dims[a] x d`` with orthonormal columns (Haar), each
    from its own key of ``split(key, max(L - 1, 1))``; so ``W_L ... W_1 = u^L I``."""
    depth, dim = len(dims) - 1, dims[0]
    keys = jax.random.split(key, max(depth - 1, 1))
    frames = [jnp.eye(dim, dtype=jnp.float64)]
    frames += [random_orthogonal(keys[a], dims[a + 1], dim) for a in range(depth - 1)]
    frames += [jnp.eye(dim, dtype=jnp.float64)]
    return [u * frames[a + 1] @ frames[a].T for a in range(depth)]


def random_layers(key, dims, pred_dims, scale: float):
    """``(layers, predictor)``: every matrix ``(n_out, n_in)`` with i.i.d. ``N(0, scale^2 / n_in)``
    entries, the encoder's ``dims[a] -> dims[a + 1]`` then the predictor's ``pred_dims``, each from
    its own key of ``split(key, L + len(pred_dims) - 1)``."""
    depth = len(dims) - 1
    keys = jax.random.split(key, depth + len(pred_dims) - 1)

    def mat(k, n_in, n_out):
        return jax.random.normal(k, (n_out, n_in), dtype=jnp.float64) * (scale / np.sqrt(n_in))

    layers = [mat(keys[a], dims[a], dims[a + 1]) for a in range(depth)]
    pred = [mat(keys[depth + a], pred_dims[a], pred_dims[a + 1]) for a in range(len(pred_dims) - 1)]
    return layers, pred


@functools.lru_cache(maxsize=32)
def _vmapped(fn, args, kwargs):
    return jax.jit(jax.vmap(lambda k: fn(k, *args, **dict(kwargs))))


def batch_of_one(fn, key, *args, **kwargs):
    """``fn(key, *args, **kwargs)`` computed as ``jit(vmap)`` over a batch of one key, the same
    program ``train-grid`` runs over its networks' keys (``fn`` and the arguments hashable: they
    key the compiled program's cache)."""
    out = _vmapped(fn, args, tuple(sorted(kwargs.items())))(jnp.asarray(key)[None])
    return jax.tree_util.tree_map(lambda x: x[0], out)
