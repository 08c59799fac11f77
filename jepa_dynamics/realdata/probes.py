r"""Linear probes on encoders trained on real views (digits): what the encoder serves first.

The protocol of Balestriero & LeCun (2024), "Learning by reconstruction produces
uninformative features for perception": split the input space into the *top-variance*
principal subspace (the fewest principal components of the clean images' covariance that
carry ``share`` of the variance, default 90%) and the *bottom-variance* one (the rest), and ask how well a linear
classifier reads the labels from each.  Here the classifier is a multinomial logistic
regression (scikit-learn, on standardised features, ``C = 1``), fit on a seeded 60% of the
1797 clean digits and scored on the other 40%.

* :func:`subspace_baseline` -- the protocol on the raw inputs: accuracy on all pixels, on
  the projection onto the top and onto the bottom subspace.
* :func:`probe_curves` -- the same probe on an encoder's output at checkpoints over training,
  ``f(x) = Wbar x``, and on the encoder fed only one subspace, ``f(P_top x)`` and
  ``f(P_bot x)``: which part of the input has the encoder learned to pass on, and when.
  The output is read through Gaussian noise of standard deviation
  ``noise * sqrt(tr(Sxx) / d)`` (a fixed read-out resolution, drawn once): without it every
  invertible linear encoder -- ``Wbar(0) = eps I`` included -- would give the same accuracy.
"""

from __future__ import annotations

import numpy as np

from ..theory import spec

__all__ = ["principal_subspaces", "logistic_accuracy", "split", "subspace_baseline", "probe_curves", "SUBSPACES"]

SUBSPACES = ("all", "top", "bottom")


def principal_subspaces(sxx, share: float = 0.9):
    """``(P_top, P_bot)``: orthonormal bases (columns) of the fewest leading principal components
    of ``sxx`` whose variance reaches ``share`` of the total, and of the remaining ones."""
    share = float(spec.check_unit_interval(share, "share"))
    evals, evecs = np.linalg.eigh(np.asarray(sxx, dtype=np.float64))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    k = int(np.searchsorted(np.cumsum(evals) / evals.sum(), share) + 1)
    k = min(k, evals.size - 1)
    return evecs[:, :k], evecs[:, k:]


def logistic_accuracy(f_train, y_train, f_test, y_test) -> float:
    """Held-out accuracy of a multinomial logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    # one BLAS thread: on a busy machine the threaded small products of lbfgs run ~100x slower
    with threadpool_limits(1):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(np.asarray(f_train), np.asarray(y_train))
        return float(clf.score(np.asarray(f_test), np.asarray(y_test)))


def split(x, labels, seed: int = 0, train_share: float = 0.6):
    """A seeded train / test split ``(x_train, y_train, x_test, y_test)``."""
    perm = np.random.default_rng(seed).permutation(len(labels))
    cut = int(round(train_share * len(labels)))
    tr, te = perm[:cut], perm[cut:]
    return x[tr], labels[tr], x[te], labels[te]


def _projectors(sxx, share):
    top, bot = principal_subspaces(sxx, share)
    return {"all": None, "top": top @ top.T, "bottom": bot @ bot.T}, top.shape[1]


def subspace_baseline(data, sxx, share: float = 0.9) -> dict:
    """``{subspace: accuracy}`` of the probe on the raw (centred) inputs' coordinates in each
    subspace; ``data = (x_train, y_train, x_test, y_test)``."""
    x_tr, y_tr, x_te, y_te = data
    top, bot = principal_subspaces(sxx, share)
    out = {"all": logistic_accuracy(x_tr, y_tr, x_te, y_te)}
    for name, basis in (("top", top), ("bottom", bot)):
        out[name] = logistic_accuracy(x_tr @ basis, y_tr, x_te @ basis, y_te)
    return out


def probe_curves(wbars, data, sxx, *, share: float = 0.9, noise: float = 0.05, seed: int = 0) -> dict:
    """``{subspace: accuracies (C,)}`` of the probe on ``f(x) = Wbar x`` for each ``Wbar`` in
    ``wbars`` (``(C, d, d)``), fed all of ``x``, its top-variance or its bottom-variance part."""
    noise = float(spec.check_nonnegative(noise, "probe_noise"))
    x_tr, y_tr, x_te, y_te = data
    proj, _ = _projectors(sxx, share)
    d = x_tr.shape[1]
    scale = noise * np.sqrt(np.trace(sxx) / d)
    rng = np.random.default_rng(seed)
    xi_tr = scale * rng.standard_normal(x_tr.shape)
    xi_te = scale * rng.standard_normal(x_te.shape)
    out = {name: [] for name in SUBSPACES}
    for w in np.asarray(wbars, dtype=np.float64):
        for name in SUBSPACES:
            p = proj[name]
            a_tr = x_tr if p is None else x_tr @ p
            a_te = x_te if p is None else x_te @ p
            out[name].append(logistic_accuracy(a_tr @ w.T + xi_tr, y_tr, a_te @ w.T + xi_te, y_te))
    return {k: np.asarray(v) for k, v in out.items()}
