r"""Modes of two covariances (docs/theory.md section 10), and the covariances themselves.

Two centred views ``x, y`` in ``R^d`` have ``Sxx = E[x x^T]`` (positive definite),
``Sxy = E[x y^T]`` (any ``d x d``) and ``Syy = E[y y^T]``; their joint covariance
``[[Sxx, Sxy], [Sxy^T, Syy]]`` is positive semi-definite.

* :func:`check_covariances` validates such a triple (shapes, finiteness, symmetry of
  ``Sxx`` and ``Syy``, positive definiteness of ``Sxx``, a positive semi-definite joint
  covariance) and :func:`load_covariances` reads one from an ``.npz`` file with arrays
  ``sxx``, ``sxy``, ``syy``.  Every problem is a one-line
  :class:`~jepa_dynamics.theory.spec.SpecError` (named ``cov`` unless the caller says otherwise).
* :func:`decompose` -- the modes: with ``S = (Sxy + Sxy^T) / 2``, the generalised
  eigenvectors of ``S q = rho Sxx q`` (``scipy.linalg.eigh(S, Sxx)``), rescaled to unit
  Euclidean norm.  Per mode ``lam_i = q_i^T S q_i``, ``sigma2_i = q_i^T Sxx q_i``,
  ``rho_i = lam_i / sigma2_i`` (the generalised eigenvalue).  ``Q^T Sxx Q`` and
  ``Q^T S Q`` are diagonal (congruence), so ``z = Q^T x`` has uncorrelated coordinates
  with per-coordinate ``(sigma2_i, lam_i)``; ``Q`` is orthogonal iff ``Sxx`` and ``S``
  commute.  Modes are ordered by decreasing ``rho`` (ties: decreasing ``lam``); each
  ``q_i`` has its largest-magnitude entry positive.  Inside a degenerate eigenvalue
  (equal ``rho``) the basis is the one whose columns are Euclidean-orthogonal, so a
  diagonal or rotated commuting pair gives back its own features whatever the ties.
* :func:`responses` -- the response to mode ``i`` (the section-8 response to the input
  direction ``q_i``): ``gamma_i = ||Wbar Sxx q_i|| / (q_i^T Sxx q_i)``.
* Departure from the commuting case: :func:`nonorthogonality` ``||Q^T Q - I||_F`` (unit
  columns), :func:`commutator` ``||[Sxx, S]||_F / (||Sxx||_F ||S||_F)`` and
  :func:`asymmetry` ``||Sxy - Sxy^T||_F / (2 ||Sxy||_F)``: all three are 0 for rotated
  diagonal data.

Everything is float64 NumPy / SciPy (no JAX).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from . import spec

__all__ = [
    "Modes",
    "check_covariances",
    "load_covariances",
    "decompose",
    "responses",
    "nonorthogonality",
    "commutator",
    "asymmetry",
    "departure",
]

SYMMETRY_RTOL = 1e-8  # |A - A^T| allowed relative to max |A| (empirical covariances round)
PSD_RTOL = 1e-10  # eigenvalues of the joint covariance down to -PSD_RTOL * its largest are zero
_TIE_RTOL = 1e-9  # generalised eigenvalues this close (relative) form one degenerate mode


@dataclass(frozen=True, eq=False)
class Modes:
    """The generalised eigen-decomposition of ``(sym(Sxy), Sxx)``.

    ``q``: ``(d, d)``, the unit-norm ``q_i`` as columns; ``lam``, ``rho``, ``sigma2``:
    ``(d,)`` per mode (``rho = lam / sigma2``); ``sxx``, ``sxy``: the covariances."""

    q: np.ndarray
    lam: np.ndarray
    rho: np.ndarray
    sigma2: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.lam.size)

    def responses(self, wbar):
        """:func:`responses` of ``wbar`` (``(..., d, d)``) to these modes."""
        return responses(wbar, self)


def _matrix(value, key: str, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise spec.SpecError(name, f"{key} must be a numeric array") from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise spec.SpecError(name, f"{key} must be a square d x d matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise spec.SpecError(name, f"{key} has non-finite entries")
    return arr


def _check_symmetric(a: np.ndarray, key: str, name: str) -> np.ndarray:
    scale = max(float(np.max(np.abs(a))), np.finfo(float).tiny)
    gap = float(np.max(np.abs(a - a.T)))
    if gap > SYMMETRY_RTOL * scale:
        raise spec.SpecError(name, f"{key} must be symmetric (max |{key} - {key}^T| = {gap:.3g})")
    return 0.5 * (a + a.T)


def check_covariances(sxx, sxy, syy, name: str = "cov"):
    """Validate ``(Sxx, Sxy, Syy)`` (``Sxy = E[x y^T]``); return them as float64 arrays,
    ``Sxx`` and ``Syy`` exactly symmetrised.  Raises a one-line ``SpecError(name, ...)``."""
    sxx, sxy, syy = (_matrix(a, key, name) for a, key in ((sxx, "sxx"), (sxy, "sxy"), (syy, "syy")))
    d = sxx.shape[0]
    for a, key in ((sxy, "sxy"), (syy, "syy")):
        if a.shape != (d, d):
            raise spec.SpecError(name, f"{key} must have the shape of sxx {sxx.shape}, got {a.shape}")
    sxx = _check_symmetric(sxx, "sxx", name)
    syy = _check_symmetric(syy, "syy", name)
    ev = np.linalg.eigvalsh(sxx)
    if ev[0] <= PSD_RTOL * max(ev[-1], 0.0) or ev[-1] <= 0:
        raise spec.SpecError(name, f"sxx must be positive definite (smallest eigenvalue {ev[0]:.3g}, "
                                   f"largest {ev[-1]:.3g})")
    joint = np.block([[sxx, sxy], [sxy.T, syy]])
    jev = np.linalg.eigvalsh(joint)
    if jev[0] < -PSD_RTOL * jev[-1]:
        raise spec.SpecError(name, f"the joint covariance [[sxx, sxy], [sxy^T, syy]] must be positive "
                                   f"semi-definite (smallest eigenvalue {jev[0]:.3g}); raise syy")
    return sxx, sxy, syy


def load_covariances(path, name: str = "cov"):
    """``(Sxx, Sxy, Syy)`` from an ``.npz`` file with arrays ``sxx``, ``sxy`` (``E[x y^T]``)
    and ``syy``, validated by :func:`check_covariances`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise spec.SpecError(name, f"{path} is a folder, not an .npz file")
    if not os.path.isfile(path):
        raise spec.SpecError(name, f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            single = fh.read(6) == b"\x93NUMPY"
        raise spec.SpecError(name, f"cannot read {path}: a single array (.npy), not an .npz with sxx, sxy, syy"
                             if single else f"cannot read {path}: not an .npz (zip) file")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise spec.SpecError(name, f"cannot read {path} as .npz: {reason}") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise spec.SpecError(name, f"{path} is a single array, not an .npz with sxx, sxy, syy")
    with f:
        missing = [k for k in ("sxx", "sxy", "syy") if k not in f.files]
        if missing:
            raise spec.SpecError(name, f"{path} lacks the array(s) {', '.join(missing)} "
                                       f"(has: {', '.join(f.files) or 'none'})")
        try:
            arrays = [f[k] for k in ("sxx", "sxy", "syy")]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise spec.SpecError(name, f"cannot read {path} as .npz: {reason}") from None
    for a, key in zip(arrays, ("sxx", "sxy", "syy")):
        if not isinstance(a, np.ndarray):  # NpzFile hands back a member that is not .npy data as bytes
            raise spec.SpecError(name, f"{key} in {path} is not .npy array data")
        if a.dtype.kind not in "fiu":
            raise spec.SpecError(name, f"{key} in {path} must be a real numeric array, got dtype {a.dtype}")
    return check_covariances(*arrays, name=name)


def _unit_sign(q: np.ndarray) -> np.ndarray:
    """Columns scaled to unit norm with their largest-magnitude entry positive."""
    q = q / np.linalg.norm(q, axis=0, keepdims=True)
    idx = np.argmax(np.abs(q), axis=0)
    signs = np.sign(q[idx, np.arange(q.shape[1])])
    return q * np.where(signs == 0, 1.0, signs)[None, :]


def decompose(sxx, sxy, *, validate: bool = True, name: str = "cov") -> Modes:
    """Modes of ``(S = sym(Sxy), Sxx)``: see the module docstring.

    ``validate`` checks ``Sxx`` (square, finite, symmetric, positive definite) and the shape
    of ``Sxy``; the joint covariance needs ``Syy`` and is :func:`check_covariances`' job."""
    if validate:
        sxx = _check_symmetric(_matrix(sxx, "sxx", name), "sxx", name)
        sxy = _matrix(sxy, "sxy", name)
        if sxy.shape != sxx.shape:
            raise spec.SpecError(name, f"sxy must have the shape of sxx {sxx.shape}, got {sxy.shape}")
        ev = np.linalg.eigvalsh(sxx)
        if ev[0] <= PSD_RTOL * max(ev[-1], 0.0) or ev[-1] <= 0:
            raise spec.SpecError(name, f"sxx must be positive definite (smallest eigenvalue {ev[0]:.3g})")
    sxx = np.asarray(sxx, dtype=np.float64)
    sxy = np.asarray(sxy, dtype=np.float64)
    s = 0.5 * (sxy + sxy.T)
    rho, u = linalg.eigh(s, sxx)  # u^T sxx u = I, ascending rho
    # degenerate clusters: rotate to the Sxx-orthonormal basis whose columns are Euclidean-orthogonal
    scale = max(float(np.max(np.abs(rho))), np.finfo(float).tiny)
    start = 0
    while start < rho.size:
        stop = start + 1
        while stop < rho.size and rho[stop] - rho[stop - 1] <= _TIE_RTOL * scale:
            stop += 1
        if stop - start > 1:
            block = u[:, start:stop]
            _, rot = np.linalg.eigh(block.T @ block)
            u[:, start:stop] = block @ rot
        start = stop
    q = _unit_sign(u)
    sigma2 = np.einsum("ij,ik,kj->j", q, sxx, q)
    lam = np.einsum("ij,ik,kj->j", q, s, q)
    rho_q = lam / sigma2
    order = np.lexsort((-lam, -np.round(rho_q / scale, 9)))
    return Modes(q=q[:, order], lam=lam[order], rho=rho_q[order], sigma2=sigma2[order], sxx=sxx, sxy=sxy)


def responses(wbar, modes: Modes):
    """``gamma_i = ||Wbar Sxx q_i|| / (q_i^T Sxx q_i)`` for ``wbar`` of shape ``(..., d, d)``;
    returns ``(..., d)`` (NumPy)."""
    wbar = np.asarray(wbar, dtype=np.float64)
    dirs = modes.sxx @ modes.q  # column i: Sxx q_i
    return np.linalg.norm(wbar @ dirs, axis=-2) / modes.sigma2


def nonorthogonality(q) -> float:
    """``||Q^T Q - I||_F`` with the columns of ``Q`` scaled to unit norm (0 iff orthonormal)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=0, keepdims=True)
    return float(np.linalg.norm(q.T @ q - np.eye(q.shape[1])))


def commutator(sxx, s) -> float:
    """Normalised commutator ``||Sxx S - S Sxx||_F / (||Sxx||_F ||S||_F)`` (0 iff they commute)."""
    sxx, s = np.asarray(sxx, dtype=np.float64), np.asarray(s, dtype=np.float64)
    denom = np.linalg.norm(sxx) * np.linalg.norm(s)
    return float(np.linalg.norm(sxx @ s - s @ sxx) / denom) if denom > 0 else 0.0


def asymmetry(sxy) -> float:
    """``||Sxy - Sxy^T||_F / (2 ||Sxy||_F)``: the antisymmetric part's share (0 iff symmetric)."""
    sxy = np.asarray(sxy, dtype=np.float64)
    norm = np.linalg.norm(sxy)
    return float(np.linalg.norm(sxy - sxy.T) / (2.0 * norm)) if norm > 0 else 0.0


def departure(sxx, sxy, modes: Modes | None = None) -> dict:
    """The three departure-from-commuting measures as a dict (``nonorthogonality``,
    ``commutator``, ``asymmetry``)."""
    modes = decompose(sxx, sxy, validate=False) if modes is None else modes
    return {
        "nonorthogonality": nonorthogonality(modes.q),
        "commutator": commutator(sxx, 0.5 * (np.asarray(sxy) + np.asarray(sxy).T)),
        "asymmetry": asymmetry(sxy),
    }
