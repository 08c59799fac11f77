r"""Pairs of views held in row blocks (:class:`Views`) and their empirical covariances (docs/theory.md section 11).

A *views* object holds ``n`` pairs ``(x, y)`` of ``d``-dimensional context and target
vectors and hands them out in row blocks, so that :func:`covariances` streams through
``n = 10^6, d = 256`` in bounded memory (one block of rows and the ``2d x 2d`` float64
accumulator at a time).

Covariances (:func:`covariances`): the empirical means ``mean_x, mean_y`` and the centred
second moments ``Sxx = E[(x - mx)(x - mx)^T]``, ``Sxy = E[(x - mx)(y - my)^T]``, ``Syy``
with ``E`` the mean over the ``n`` pairs (divisor ``n``: they are the exact population
moments of the empirical distribution, which is what training on the pairs samples from).
Blocks are merged in one pass with Chan, Golub & LeVeque's pairwise update
(``M2 = M2_a + M2_b + delta delta^T n_a n_b / n``), in float64, which does not lose the
precision that ``E[xx^T] - m m^T`` loses when the mean is large.

Bad input raises :class:`~jepa_dynamics.theory.spec.SpecError` naming the problem: NaN or infinity
(with its row and column), a constant column, a singular ``Sxx``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

from .. import records
from ..theory import spec

BLOCK = 4096


@dataclass(eq=False)
class Views:
    """``n`` pairs of ``d``-dimensional views, read in blocks of rows.

    ``read(start, stop)`` returns ``(x, y)`` rows ``start .. stop - 1`` as float64 arrays;
    ``labels`` (``(n,)`` or ``None``) are class labels when the source has them; ``params``
    describe the source for provenance lines; ``name`` is the flag a problem is reported
    against (``views`` or ``dataset``)."""

    source: str
    n: int
    dim: int
    read: Callable[[int, int], tuple]
    params: dict = field(default_factory=dict)
    labels: Optional[np.ndarray] = None
    name: str = "views"
    sequential: bool = False  # True: rows can only be read in increasing order (compressed npz)

    def blocks(self, size: int = BLOCK) -> Iterator[tuple]:
        """``(start, x, y)`` for consecutive blocks of ``size`` rows."""
        for start in range(0, self.n, size):
            x, y = self.read(start, min(start + size, self.n))
            yield start, x, y

    def arrays(self, n: int | None = None):
        """The first ``n`` (default all) pairs in memory, float64 ``(n, d)`` each."""
        n = self.n if n is None else min(int(n), self.n)
        if self.sequential:
            xs, ys = [], []
            for start, x, y in self.blocks():
                if start >= n:
                    break
                xs.append(x), ys.append(y)
            return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
        return self.read(0, n)


@dataclass(frozen=True, eq=False)
class Covariances:
    """Empirical moments of two views: ``sxx, sxy, syy`` (``(d, d)``, centred, divisor ``n``),
    ``mean_x, mean_y`` (``(d,)``), ``n`` pairs; ``source`` and ``params`` for provenance."""

    sxx: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    n: int
    source: str = ""
    params: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.sxx.shape[0])


# --- covariances ------------------------------------------------------------------------------------------

def _check_finite(name: str, label: str, block: np.ndarray, start: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise spec.SpecError(name, f"{label} holds a non-finite value ({block[r, c]}) at row {start + r}, "
                                   f"column {c}; remove or impute it")


def covariances(views: Views, *, block: int = BLOCK, progress=None) -> Covariances:
    """Stream ``views`` once and return their empirical :class:`Covariances` (module docstring).

    Raises :class:`~jepa_dynamics.theory.spec.SpecError` on NaN/inf values, constant columns or a
    singular ``Sxx``."""
    block = spec.check_positive_int(block, "block")
    d = views.dim
    count = 0
    mean = np.zeros(2 * d)
    m2 = np.zeros((2 * d, 2 * d))
    bar = records.progress_bar(views.n, desc="covariances", unit="pair", enabled=progress)
    try:
        for start, x, y in views.blocks(block):
            _check_finite(views.name, "x", x, start)
            _check_finite(views.name, "y", y, start)
            z = np.concatenate([x, y], axis=1)
            nb = z.shape[0]
            mean_b = z.mean(axis=0)
            zc = z - mean_b
            delta = mean_b - mean
            total = count + nb
            m2 += zc.T @ zc + np.outer(delta, delta) * (count * nb / total)
            mean += delta * (nb / total)
            count = total
            bar.update(nb)
    finally:
        bar.close()
    cov = m2 / count
    cov = 0.5 * (cov + cov.T)
    sxx, sxy, syy = cov[:d, :d], cov[:d, d:], cov[d:, d:]
    for label, s in (("x", sxx), ("y", syy)):
        var = np.diag(s)
        scale = max(float(var.max()), np.finfo(float).tiny)
        const = np.flatnonzero(var <= 1e-12 * scale)
        if const.size:
            cols = ", ".join(str(c) for c in const[:5]) + (", ..." if const.size > 5 else "")
            raise spec.SpecError(views.name, f"{label} has {const.size} constant column(s) (variance 0): "
                                             f"column {cols}; drop them")
    evals = np.linalg.eigvalsh(sxx)
    if evals[0] <= 1e-12 * evals[-1]:
        rank = int(np.sum(evals > 1e-12 * evals[-1]))
        raise spec.SpecError(views.name, f"the covariance of x is singular (rank {rank} < d = {d}: some columns "
                                         "are linear combinations of others); drop or merge them")
    return Covariances(np.ascontiguousarray(sxx), np.ascontiguousarray(sxy), np.ascontiguousarray(syy),
                       mean[:d].copy(), mean[d:].copy(), count, views.source, dict(views.params))
