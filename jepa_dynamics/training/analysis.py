r"""Reading trained runs: responses, empirical critical times, learning order.

* :func:`responses_linear` / :func:`responses_from_samples` -- the response of an
  encoder to each feature (docs/theory.md section 13),
  ``gamma_i = ||Cov(f(x), x_i)|| / Var(x_i)``.  For a linear encoder with independent
  features this is exactly the norm of column ``i`` of ``Wbar`` (``|w_i|`` in the
  balanced diagonal case); for other encoders it is estimated on a batch of samples
  (sample covariance over sample variance).
* :func:`critical_times` -- the first time a recorded response reaches
  ``fraction * w_star``, linearly interpolated between the two records around the
  crossing; ``nan`` when it is never reached within the records.
* :func:`learning_order`, :func:`order_correlation` -- the order in which features are
  learned, and its Spearman rank correlation with a per-feature quantity (``lam`` or
  ``rho``): ``+1`` means the features with the larger value are learned first.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..theory import spec

__all__ = [
    "responses_linear",
    "responses_from_samples",
    "critical_times",
    "interpolate_crossing",
    "learning_order",
    "rank_correlation",
    "order_correlation",
    "responses_table",
]


def responses_linear(wbar):
    """``gamma_i = ||Wbar[:, i]||`` (exact for a linear encoder and independent features)."""
    import jax.numpy as jnp

    return jnp.sqrt(jnp.sum(wbar**2, axis=0))


def responses_from_samples(encoder, x):
    """``gamma_i = ||Cov(f(x), x_i)|| / Var(x_i)`` estimated on the samples ``x`` (``(n, d)``)."""
    import jax.numpy as jnp

    f = encoder(x)
    fc = f - jnp.mean(f, axis=0)
    xc = x - jnp.mean(x, axis=0)
    cov = fc.T @ xc / x.shape[0]
    return jnp.sqrt(jnp.sum(cov**2, axis=0)) / jnp.mean(xc**2, axis=0)


def critical_times(times, responses, w_star, fraction=0.5):
    """Empirical ``t_star`` per feature.

    ``times``: ``(T,)`` increasing; ``responses``: ``(T, d)``; ``w_star``: ``(d,)`` (or a
    scalar).  Returns ``(d,)`` float64: the time at which the response first reaches
    ``fraction * w_star``, by linear interpolation between the records just before and
    at the crossing (the first record if it starts there already); ``nan`` if never."""
    times = np.asarray(times, dtype=np.float64)
    resp = np.asarray(responses, dtype=np.float64)
    if resp.ndim == 1:
        resp = resp[:, None]
    if times.ndim != 1 or resp.shape[0] != times.size:
        raise spec.SpecError("responses", f"need one row per time: {times.size} times, {resp.shape[0]} rows")
    level = np.broadcast_to(np.asarray(fraction, np.float64) * np.asarray(w_star, np.float64), resp.shape[1:])
    out = np.full(resp.shape[1], np.nan)
    above = resp >= level[None, :]
    for i in range(resp.shape[1]):
        hits = np.flatnonzero(above[:, i])
        if hits.size == 0:
            continue
        k = hits[0]
        if k == 0:
            out[i] = times[0]
            continue
        out[i] = interpolate_crossing(times[k - 1], times[k], resp[k - 1, i], resp[k, i], level[i])
    return out


def interpolate_crossing(t_before, t_at, r_before, r_at, level):
    """The time at which a response going from ``r_before`` (at ``t_before``, below ``level``)
    to ``r_at`` (at ``t_at``, at or above it) reaches ``level``, linear in time."""
    return t_before + (level - r_before) / (r_at - r_before) * (t_at - t_before)


def _never_last(t_star):
    """``t_star`` with never-learned (``nan``) features moved to ``+inf``."""
    return np.where(np.isnan(t_star), np.inf, np.asarray(t_star, dtype=np.float64))


def learning_order(t_star):
    """Feature indices from first learned to last (never-learned ``nan`` features last)."""
    return np.argsort(_never_last(t_star), kind="stable")


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two sequences (ties get average ranks)."""
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt(np.sum(ra**2) * np.sum(rb**2))
    return float(np.sum(ra * rb) / denom) if denom > 0 else float("nan")


def order_correlation(t_star, values) -> float:
    """Rank correlation between how early each feature is learned (``-t_star``; never-learned
    features count as last) and ``values``: ``+1`` = larger ``values`` learned first."""
    return rank_correlation(-_never_last(t_star), values)


def responses_table(step, feature, response, dim: int | None = None):
    """Long-format rows (as in ``responses.csv``) to ``(steps (T,), responses (T, d))``."""
    step = np.asarray(step).astype(np.int64)
    feature = np.asarray(feature).astype(np.int64)
    response = np.asarray(response, dtype=np.float64)
    steps = np.unique(step)
    d = int(feature.max()) + 1 if dim is None else dim
    table = np.full((steps.size, d), np.nan)
    table[np.searchsorted(steps, step), feature] = response
    return steps, table
