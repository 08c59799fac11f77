r"""Synthetic data families (docs/theory.md section 12): exact covariances and samplers.

Every family returns a :class:`Dataset`: per feature ``i`` the context variance
``sigma2_i = E[x_i^2]``, the cross-covariance ``lam_i = E[x_i y_i]``, the regression
coefficient ``rho_i = lam_i / sigma2_i`` and the target variance ``syy_i = E[y_i^2]``.
Features are independent and jointly Gaussian, so ``E[xx^T]``, ``E[xy^T]`` and
``E[yy^T]`` are the diagonal matrices ``diag(sigma2)``, ``diag(lam)``, ``diag(syy)``:
they give the population losses exactly (:mod:`jepa_dynamics.training.objectives`).
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

Full-matrix families (docs/theory.md section 10; :class:`MatrixDataset`, full ``d x d`` second
moments, sampled as one Gaussian from the joint covariance).  Each is seeded: one
``seed`` fixes every random rotation.

* :func:`rotated` -- diagonal ``(lam, rho)`` data rotated by one Haar orthogonal ``O``:
  ``Sxx = O diag(sigma2) O^T``, ``Sxy = O diag(lam) O^T``, ``Syy = O diag(syy) O^T``.
  ``Sxx`` and ``Sxy`` commute, ``Sxy`` is symmetric: the modes are ``O``'s columns.
* :func:`mixed` -- the views' spectra rotated differently: per-feature pairs
  ``(a_i, b_i)`` with the moments of :func:`custom`, ``x = O_x a``, ``y = O_y b`` with
  ``O_y = O_x expm(mixing K)``, ``K = logm(R)`` for a Haar rotation ``R``:
  ``Sxy = O_x diag(lam) O_y^T``.  ``mixing = 0`` is :func:`rotated`; ``mixing = 1``
  rotates ``y``'s features by a full random rotation.  Non-commuting and asymmetric
  for ``mixing > 0``; the joint covariance is PSD by construction.
  ``symmetric=True`` instead keeps ``Sxy`` symmetric but rotates it away from ``Sxx``:
  ``Sxy = O_y diag(lam) O_y^T``, ``Syy = Sxy^T Sxx^{-1} Sxy + O_y diag(lam / rho) O_y^T``
  (``y`` = the regression on ``x`` plus independent noise): non-commuting, symmetric.
* :func:`lagged` -- a stationary vector AR(1), ``x = s_t``, ``y = s_{t+1} = A s_t + n``,
  ``A = O diag(a) expm(mixing K) O^T`` (non-symmetric for ``mixing > 0``, spectral norm
  ``max a < 1``), noise covariance ``O diag(v (1 - a^2)) O^T``: ``Sxx = Syy = P`` (the
  stationary covariance, ``P = A P A^T + Sn``), ``Sxy = P A^T``.  ``mixing = 0`` is a
  rotated :func:`dynamic`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..theory import spec
from .._jax import jax

import jax.numpy as jnp  # noqa: E402

__all__ = ["Dataset", "FAMILIES", "custom", "same_trend", "reversed_trend", "static", "dynamic", "make",
           "MatrixDataset", "MATRIX_FAMILIES", "rotated", "mixed", "lagged", "from_covariances", "make_matrix"]

FAMILIES = ("custom", "same-trend", "reversed-trend", "static", "dynamic")
MATRIX_FAMILIES = ("rotated", "mixed", "lagged")


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

    def covariance_matrices(self):
        """``(Sxx, Sxy, Syy)`` as dense ``(d, d)`` float64 matrices (``diag`` of :meth:`covariances`),
        what the matrix flow (:mod:`jepa_dynamics.engines.matrix`) takes; every family has them."""
        return tuple(np.diag(np.asarray(c, np.float64)) for c in self.covariances())

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

    def scatter(self, key, n: int, dtype=jnp.float64):
        r"""The second moments of ``n`` draws, ``(Sxx, Sxy, Syy) = (1/n) sum_b (x_b x_b^T,
        x_b y_b^T, y_b y_b^T)`` (each ``(d, d)``), drawn from their exact distribution without
        drawing the ``n`` samples: ``d (3d - 1) / 2`` normals and ``d`` chi-squares for ``(Sxx, Sxy)``
        (``2 d^2 - d`` and ``2 d`` with ``Syy``) instead of ``2 d n`` normals.  Needs ``n >= 2 d``.

        A draw ``z = (x, y)`` is ``L g`` with ``g ~ N(0, I_2d)`` and the root
        ``L = [[diag(sx), 0], [diag(rho sx), diag(r)]]`` (``sx = sqrt(sigma2)``,
        ``r = sqrt(syy - lam rho)``; ``L L^T`` is the joint covariance of every family,
        ``static`` included), so ``n S = L W L^T`` with ``W = sum_b g_b g_b^T ~ Wishart(I_2d, n)``.
        ``W = A A^T`` by Bartlett's decomposition: ``A`` lower triangular with
        ``A_ii^2 ~ chi2(n - i)`` (``i = 0 .. 2d - 1``) and ``N(0, 1)`` below the diagonal, all
        independent.  ``Syy`` alone uses the lower-right block (its own key): under ``jit`` it is
        not drawn when only ``Sxx, Sxy`` are used (stop-gradient JEPA and MAE gradients)."""
        d = self.dim
        if n < 2 * d:
            raise ValueError(f"scatter needs n >= 2 * dim = {2 * d} draws (else the Wishart is singular), got {n}")
        k_x, k_y, k_n = jax.random.split(key, 3)
        df = (n - np.arange(2 * d)).astype(np.float64)
        low = np.tril_indices(d, -1)
        # A = [[a11, 0], [a21, a22]]; a11 from d^2 + d (d - 1) / 2 normals and d chi-squares
        chi_x = 2.0 * jax.random.gamma(k_x, jnp.asarray(df[:d] / 2, dtype), dtype=dtype)
        g = jax.random.normal(k_n, (d * d + low[0].size,), dtype)
        a11 = jnp.zeros((d, d), dtype).at[low].set(g[d * d:]) + jnp.diag(jnp.sqrt(chi_x))
        a21 = g[: d * d].reshape(d, d)
        sx = jnp.asarray(np.sqrt(self.sigma2), dtype)
        rx = jnp.asarray(self.rho * np.sqrt(self.sigma2), dtype)
        r = jnp.asarray(np.sqrt(np.maximum(self.syy - self.lam * self.rho, 0.0)), dtype)
        # the rows of L A: x = [sx a11, 0], y = [rx a11 + r a21, r a22]
        gx = sx[:, None] * a11
        gy = rx[:, None] * a11 + r[:, None] * a21
        sxx = (gx @ gx.T) / n
        sxy = (gx @ gy.T) / n
        # a22 (its own key): only Syy uses it
        k_chi, k_low = jax.random.split(k_y)
        chi_y = 2.0 * jax.random.gamma(k_chi, jnp.asarray(df[d:] / 2, dtype), dtype=dtype)
        a22 = jnp.zeros((d, d), dtype).at[low].set(jax.random.normal(k_low, low[0].shape, dtype)) \
            + jnp.diag(jnp.sqrt(chi_y))
        gy2 = r[:, None] * a22
        syy = (gy @ gy.T + gy2 @ gy2.T) / n
        return sxx, sxy, syy


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


# --- full-matrix families (docs/theory.md section 10) ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MatrixDataset:
    """Full second moments ``sxx = E[x x^T]``, ``sxy = E[x y^T]``, ``syy = E[y y^T]``
    (float64 ``(d, d)``, validated) and a Gaussian sampler from the joint covariance.

    ``params`` holds the family's own parameters (``seed``, ``mixing``, ...)."""

    family: str
    sxx: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.sxx.shape[0])

    def covariances(self):
        """``(Sxx, Sxy, Syy)`` as ``(d, d)`` matrices (the population losses take them as they are)."""
        return self.sxx, self.sxy, self.syy

    def covariance_matrices(self):
        """``(Sxx, Sxy, Syy)`` as dense ``(d, d)`` matrices: :meth:`covariances` (already dense)."""
        return self.covariances()

    def modes(self):
        """The modes of ``(sym(Sxy), Sxx)`` (:func:`jepa_dynamics.theory.modes.decompose`)."""
        from ..theory import modes

        return modes.decompose(self.sxx, self.sxy, validate=False)

    def _root(self) -> np.ndarray:
        joint = np.block([[self.sxx, self.sxy], [self.sxy.T, self.syy]])
        e, u = np.linalg.eigh(joint)
        return u * np.sqrt(np.maximum(e, 0.0))[None, :]

    def sample(self, key, n: int, dtype=jnp.float64):
        """``n`` independent Gaussian draws ``(x, y)``, each ``(n, d)``, with exactly these moments."""
        root = jnp.asarray(self._root(), dtype)
        g = jax.random.normal(key, (n, 2 * self.dim), dtype)
        z = g @ root.T
        return z[:, : self.dim], z[:, self.dim:]


def from_covariances(sxx, sxy, syy, family: str = "cov", params=None, name: str = "cov") -> MatrixDataset:
    """A :class:`MatrixDataset` from given matrices, validated (:func:`jepa_dynamics.theory.modes.check_covariances`)."""
    from ..theory import modes

    sxx, sxy, syy = modes.check_covariances(sxx, sxy, syy, name=name)
    return MatrixDataset(family, sxx, sxy, syy, dict(params or {}))


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    """Haar orthogonal ``d x d`` (QR of a Gaussian matrix with the sign fix)."""
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diagonal(r))[None, :]


def _generator(d: int, mixing: float, rng: np.random.Generator) -> np.ndarray:
    """``expm(mixing K)`` with ``K = logm(R)`` for a Haar rotation ``R`` (``det R = +1``): the
    geodesic from ``I`` (mixing 0) to ``R`` (mixing 1)."""
    from scipy import linalg

    rot = _orthogonal(rng, d)
    if np.linalg.det(rot) < 0:
        rot[:, 0] = -rot[:, 0]
    k = np.real(linalg.logm(rot))
    k = 0.5 * (k - k.T)
    return linalg.expm(mixing * k)


def _spectra(lam, rho):
    lam = np.atleast_1d(spec.check_lam(lam)).astype(np.float64)
    rho = np.atleast_1d(spec.check_rho(rho)).astype(np.float64)
    spec.check_same_length(lam, rho, "lam", "rho")
    return lam, rho, lam / rho, _target_variance(lam, rho)


def _check_mixing(mixing) -> float:
    m = float(spec.check_nonnegative(mixing, "mixing"))
    if m > 1:
        raise spec.SpecError("mixing", f"must be in [0, 1] (0 = commuting, 1 = fully mixed), got {m:.6g}")
    return m


def _sym(a):
    return 0.5 * (a + a.T)


def rotated(lam, rho, seed: int = 0) -> MatrixDataset:
    """Diagonal ``(lam, rho)`` data rotated by one seeded Haar orthogonal matrix (commuting)."""
    lam, rho, sigma2, syy = _spectra(lam, rho)
    seed = spec.check_nonnegative_int(seed, "seed")
    o = _orthogonal(np.random.default_rng(seed), lam.size)
    return from_covariances(_sym(o @ np.diag(sigma2) @ o.T), o @ np.diag(lam) @ o.T, _sym(o @ np.diag(syy) @ o.T),
                            "rotated", {"seed": seed, "rotation": o})


def mixed(lam, rho, mixing: float, seed: int = 0, *, symmetric: bool = False) -> MatrixDataset:
    """``x`` and ``y`` spectra rotated differently, ``mixing`` in ``[0, 1]`` (module docstring)."""
    lam, rho, sigma2, syy = _spectra(lam, rho)
    mixing = _check_mixing(mixing)
    seed = spec.check_nonnegative_int(seed, "seed")
    rng = np.random.default_rng(seed)
    ox = _orthogonal(rng, lam.size)
    oy = ox @ _generator(lam.size, mixing, rng)
    sxx = _sym(ox @ np.diag(sigma2) @ ox.T)
    params = {"seed": seed, "mixing": mixing, "symmetric": bool(symmetric)}
    if not symmetric:
        return from_covariances(sxx, ox @ np.diag(lam) @ oy.T, _sym(oy @ np.diag(syy) @ oy.T), "mixed", params)
    sxy = _sym(oy @ np.diag(lam) @ oy.T)
    syy_m = _sym(sxy.T @ np.linalg.solve(sxx, sxy) + oy @ np.diag(sigma2) @ oy.T)
    return from_covariances(sxx, sxy, syy_m, "mixed", params)


def lagged(a, v, mixing: float, seed: int = 0) -> MatrixDataset:
    """Stationary vector AR(1) with a non-symmetric transition (module docstring)."""
    from scipy import linalg

    a = np.atleast_1d(spec.check_unit_interval(a, "a"))
    v = np.atleast_1d(spec.check_positive(v, "v"))
    a, v = (np.array(x, dtype=np.float64) for x in np.broadcast_arrays(a, v))
    mixing = _check_mixing(mixing)
    seed = spec.check_nonnegative_int(seed, "seed")
    rng = np.random.default_rng(seed)
    o = _orthogonal(rng, a.size)
    trans = o @ np.diag(a) @ _generator(a.size, mixing, rng) @ o.T
    noise = _sym(o @ np.diag(v * (1.0 - a**2)) @ o.T)
    p = _sym(linalg.solve_discrete_lyapunov(trans, noise))
    return from_covariances(p, p @ trans.T, p.copy(), "lagged",
                            {"seed": seed, "mixing": mixing, "a": a, "v": v, "transition": trans})


MATRIX_DEFAULTS = {
    "lam": (1.0, 2.0),  # rotated / mixed: lam rising over the features ...
    "rho": (0.9, 0.3),  # ... while rho falls (the order-inversion data, docs/theory.md section 14 (item 3))
    "a": (0.95, 0.1),  # lagged: as make("dynamic")
    "v": (0.5, 2.0),
}


def make_matrix(family: str, dim: int, *, mixing=None, seed: int = 0) -> MatrixDataset:
    """The full-matrix dataset ``jepa-dynamics matrix --dist`` names, with the default spectra of
    :data:`MATRIX_DEFAULTS` over ``dim`` features (``lam`` 1 -> 2 and ``rho`` 0.9 -> 0.3 for
    ``rotated`` / ``mixed``; ``a`` 0.95 -> 0.1 and ``v`` 0.5 -> 2 for ``lagged``).  ``mixing``
    (default 0.5) applies to ``mixed`` and ``lagged`` only."""
    spec.check_choice(family, MATRIX_FAMILIES, "dist")
    dim = spec.check_positive_int(dim, "dim")
    if family == "rotated":
        if mixing is not None:
            raise spec.SpecError("mixing", "applies to --dist mixed and lagged only (rotated data commute)")
        return rotated(np.linspace(*MATRIX_DEFAULTS["lam"], dim), np.linspace(*MATRIX_DEFAULTS["rho"], dim), seed)
    mixing = 0.5 if mixing is None else mixing
    if family == "mixed":
        return mixed(np.linspace(*MATRIX_DEFAULTS["lam"], dim), np.linspace(*MATRIX_DEFAULTS["rho"], dim),
                     mixing, seed)
    return lagged(np.linspace(*MATRIX_DEFAULTS["a"], dim), np.linspace(*MATRIX_DEFAULTS["v"], dim), mixing, seed)
