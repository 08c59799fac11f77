r"""Synthetic data families (``theory-spec.md`` section 7): exact covariances and samplers.

Every family returns a :class:`Dataset`: per feature ``i`` the context variance
``sigma2_i = E[x_i^2]``, the cross-covariance ``lam_i = E[x_i y_i]``, the regression
coefficient ``rho_i = lam_i / sigma2_i`` and the target variance ``syy_i = E[y_i^2]``.
Features are independent and jointly Gaussian, so ``E[xx^T]``, ``E[xy^T]`` and
``E[yy^T]`` are the diagonal matrices ``diag(sigma2)``, ``diag(lam)``, ``diag(syy)``:
they give the population losses exactly (:mod:`jepa_dynamics.objectives`).
:meth:`Dataset.sample` draws ``(x, y)`` minibatches from a JAX key (traceable, so it
runs inside the jitted training loop).

* :func:`custom` -- per-feature ``(lam, rho)``.  ``E[y_i^2]`` is not fixed by the
  theory; we choose ``syy = max(sigma2, lam * rho)``: two views of equal variance
  (correlation ``rho``) when ``rho <= 1``, and the smallest admissible value
  ``lam * rho`` (``y = rho x`` exactly) when ``rho > 1``.  Sampled as
  ``x = sqrt(sigma2) g1``, ``y = rho x + sqrt(syy - lam rho) g2``.
* :func:`same_trend` / :func:`reversed_trend` -- ``d`` features, ``lam`` increasing
  linearly over ``lam_range``, ``rho`` increasing (same) or decreasing (reversed)
  linearly over ``rho_range``; ``syy`` as in :func:`custom`.
* :func:`static` -- ``x = z + n_x``, ``y = z + n_y`` with ``Var z = s``,
  ``Var n = m``, ``corr(n_x, n_y) = c``: ``lam = s + c m``, ``sigma2 = syy = s + m``.
* :func:`dynamic` -- stationary AR(1), ``x = s_t``, ``y = s_{t+1} = a s_t + noise``
  with stationary variance ``v``: ``lam = a v``, ``sigma2 = syy = v``, ``rho = a``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import spec
from ._jax import jax

import jax.numpy as jnp  # noqa: E402

__all__ = ["Dataset", "FAMILIES", "custom", "same_trend", "reversed_trend", "static", "dynamic", "make"]

FAMILIES = ("custom", "same-trend", "reversed-trend", "static", "dynamic")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Exact per-feature second moments of a family, and its sampler.

    ``lam``, ``rho``, ``sigma2``, ``syy`` are float64 arrays of shape ``(d,)``;
    ``params`` holds the family's own parameters (``s, m, c`` for ``static``)."""

    family: str
    lam: np.ndarray
    rho: np.ndarray
    sigma2: np.ndarray
    syy: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.lam.size)

    def covariances(self):
        """``(Sxx, Sxy, Syy)`` diagonals: ``E[x_i^2]``, ``E[x_i y_i]``, ``E[y_i^2]``."""
        return self.sigma2, self.lam, self.syy

    def sample(self, key, n: int, dtype=jnp.float64):
        """``n`` independent draws ``(x, y)``, each of shape ``(n, d)``, from ``key``."""
        k1, k2, k3 = jax.random.split(key, 3)
        shape = (n, self.dim)
        if self.family == "static":
            s, m, c = (jnp.asarray(self.params[k], dtype) for k in ("s", "m", "c"))
            z = jnp.sqrt(s) * jax.random.normal(k1, shape, dtype)
            nx = jax.random.normal(k2, shape, dtype)
            ny = c * nx + jnp.sqrt(1.0 - c**2) * jax.random.normal(k3, shape, dtype)
            return z + jnp.sqrt(m) * nx, z + jnp.sqrt(m) * ny
        sigma2, lam, rho, syy = (jnp.asarray(a, dtype) for a in (self.sigma2, self.lam, self.rho, self.syy))
        x = jnp.sqrt(sigma2) * jax.random.normal(k1, shape, dtype)
        resid = jnp.sqrt(jnp.maximum(syy - lam * rho, 0.0))
        y = rho * x + resid * jax.random.normal(k2, shape, dtype)
        return x, y


def _target_variance(lam, rho):
    return np.maximum(lam / rho, lam * rho)


def custom(lam, rho) -> Dataset:
    """Per-feature ``(lam, rho)``; ``E[y^2] = max(sigma2, lam * rho)`` (see module doc)."""
    lam = np.atleast_1d(spec.check_lam(lam))
    rho = np.atleast_1d(spec.check_rho(rho))
    spec.check_same_length(lam, rho, "lam", "rho")
    sigma2 = spec.check_sigma2(lam, rho)  # names an overflow / underflow instead of a NumPy warning
    with np.errstate(over="ignore"):
        syy = _target_variance(lam, rho)
    if not np.all(np.isfinite(syy)):
        i = int(np.flatnonzero(~np.isfinite(syy))[0])
        raise spec.SpecError("lam", f"the target variance E[y^2] = lam * rho overflows float64 for lam={lam[i]:.6g} "
                                    f"rho={rho[i]:.6g}; use a smaller lam or rho")
    return Dataset("custom", lam, rho, sigma2, syy)


def _trend(name, dim, lam_range, rho_range, reversed_):
    dim = spec.check_positive_int(dim, "dim")
    lo, hi = (float(v) for v in spec.check_lam(lam_range))
    r_lo, r_hi = (float(v) for v in spec.check_rho(rho_range))
    lam = np.linspace(lo, hi, dim)
    rho = np.linspace(r_hi, r_lo, dim) if reversed_ else np.linspace(r_lo, r_hi, dim)
    return Dataset(name, lam, rho, lam / rho, _target_variance(lam, rho))


def same_trend(dim: int = 100, lam_range=(1.0, 1.2), rho_range=(0.4, 1.0)) -> Dataset:
    """``lam`` and ``rho`` both increasing in the feature index (linearly)."""
    return _trend("same-trend", dim, lam_range, rho_range, False)


def reversed_trend(dim: int = 100, lam_range=(1.0, 1.2), rho_range=(0.4, 1.0)) -> Dataset:
    """``lam`` increasing, ``rho`` decreasing in the feature index: the order-inversion data."""
    return _trend("reversed-trend", dim, lam_range, rho_range, True)


def static(s, m, c) -> Dataset:
    """Two noisy views of a shared latent: ``lam = s + c m``, ``sigma2 = E[y^2] = s + m``."""
    s = np.atleast_1d(spec.check_nonnegative(s, "s"))
    m = np.atleast_1d(spec.check_nonnegative(m, "m"))
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    s, m, c = np.broadcast_arrays(s, m, c)
    if np.any(np.abs(c) > 1) or not np.all(np.isfinite(c)):
        raise spec.SpecError("c", "noise correlations must lie in [-1, 1]")
    lam = s + c * m
    spec.check_lam(lam)
    sigma2 = s + m
    return Dataset("static", lam, lam / sigma2, sigma2, sigma2.copy(),
                   {"s": s.copy(), "m": m.copy(), "c": c.copy()})


def dynamic(a, v) -> Dataset:
    """Stationary AR(1) per feature: ``lam = a v``, ``rho = a``, ``sigma2 = E[y^2] = v``."""
    a = np.atleast_1d(spec.check_unit_interval(a, "a"))
    v = np.atleast_1d(spec.check_positive(v, "v"))
    a, v = np.broadcast_arrays(a, v)
    return Dataset("dynamic", a * v, a.copy(), v.copy(), v.copy(), {"a": a.copy(), "v": v.copy()})


def make(family: str, *, lam=None, rho=None, dim: int = 100) -> Dataset:
    """The dataset a training run names: ``custom`` from ``(lam, rho)``, else a family of ``dim``
    features with its default spread.

    ``static`` uses ``s`` from 1 down to 0.1, ``m = 1.5 - s``, ``c`` from 0 up to 0.8 (the
    noisy features have correlated noise across views, which raises their ``lam``);
    ``dynamic`` uses ``a`` from 0.95 down to 0.1
    with ``v`` from 0.5 up to 2 (slow features have small variance)."""
    spec.check_choice(family, FAMILIES, "dist")
    if family == "custom":
        return custom(lam, rho)
    dim = spec.check_positive_int(dim, "dim")
    if family == "same-trend":
        return same_trend(dim)
    if family == "reversed-trend":
        return reversed_trend(dim)
    if family == "static":
        s = np.linspace(1.0, 0.1, dim)
        return static(s, 1.5 - s, np.linspace(0.0, 0.8, dim))
    return dynamic(np.linspace(0.95, 0.1, dim), np.linspace(0.5, 2.0, dim))
