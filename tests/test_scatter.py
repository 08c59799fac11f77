"""Minibatches of linear models drawn as their scatter matrices (``Dataset.scatter``, ``Program.scatter``):
the Wishart draws against the Wishart's closed-form moments, and the population loss of a minibatch's
moments against the minibatch loss itself (gradients and one SGD step)."""

import numpy as np
import pytest

from jepa_dynamics.training import data, models, objectives, train
from jepa_dynamics._jax import jax

import jax.numpy as jnp  # noqa: E402


def _joint(ds):
    sxx, sxy, syy = (np.diag(c) for c in ds.covariances())
    return np.block([[sxx, sxy], [sxy.T, syy]])


@pytest.mark.parametrize("ds", [data.custom([1.0, 0.5, 2.0], [0.9, 0.4, 1.5]), data.make("static", dim=3)],
                         ids=["custom", "static"])
@pytest.mark.slow
def test_scatter_has_the_wishart_mean_and_variance(ds):
    """``n S ~ Wishart(C, n)``: ``E S = C`` and ``Var S_ij = (C_ij^2 + C_ii C_jj) / n`` (the closed
    form for Gaussian draws), entry by entry over 20,000 draws, within 4.5 standard errors.  A wrong
    Bartlett factor (a chi-square off by one degree of freedom, a missing normal, the wrong root)
    moves a mean by >= 1/n of its entry, ~20 standard errors here.  ``custom`` has a feature with
    ``rho > 1`` (``y = rho x`` exactly: a singular joint covariance); ``static`` has correlated noise."""
    n, m = 8, 20_000  # n = 2d + 2: the smallest chi-squares have 3 and 4 degrees of freedom
    draws = jax.jit(jax.vmap(lambda k: _block(*ds.scatter(k, n))))
    s = np.asarray(draws(jax.random.split(jax.random.PRNGKey(0), m)))
    c = _joint(ds)
    var = (c**2 + np.outer(np.diag(c), np.diag(c))) / n
    mean_z = (s.mean(0) - c) / np.sqrt(var / m)
    assert np.max(np.abs(mean_z)) < 4.5, mean_z
    # the sample variance's standard error from the draws' own fourth moment
    centred = s - s.mean(0)
    v = np.mean(centred**2, 0)
    se = np.sqrt(np.maximum(np.mean(centred**4, 0) - v**2, 0.0) / m)
    assert np.max(np.abs(v - var) / se) < 4.5
    np.testing.assert_allclose(s, np.swapaxes(s, 1, 2), rtol=1e-12, atol=1e-14)  # Sxx, Syy symmetric


def _block(sxx, sxy, syy):
    return jnp.block([[sxx, sxy], [sxy.T, syy]])


def _moments(x, y):
    b = x.shape[0]
    return x.T @ x / b, x.T @ y / b, y.T @ y / b


CASES = [("jepa", dict()), ("jepa", dict(stop_gradient=False)), ("jepa", dict(ema=True)), ("mae", dict())]


@pytest.mark.parametrize("objective, kw", CASES, ids=["stop-gradient", "no-stop-gradient", "ema", "mae"])
@pytest.mark.slow
def test_population_loss_of_a_minibatch_scatter_has_the_minibatch_gradients(objective, kw):
    """The population loss with ``(X^T X, X^T Y, Y^T Y) / B`` in place of the covariances is the
    minibatch loss: equal values and autodiff gradients (float64, 1e-12), target handling included."""
    ds = data.custom([1.0, 0.5, 2.0], [0.9, 0.4, 1.5])
    x, y = ds.sample(jax.random.PRNGKey(3), 16)
    model = models.random_init(jax.random.PRNGKey(1), 3, 2, 0.8)
    ema = models.random_init(jax.random.PRNGKey(2), 3, 1, 0.8).encoder if kw.get("ema") else None
    sg = kw.get("stop_gradient", True)

    def both(kind, batch):
        f = lambda m: objectives.loss(objective, kind, m, batch, ema, stop_gradient=sg)  # noqa: E731
        return jax.value_and_grad(f)(model)

    (l1, g1), (l2, g2) = both("sampled", (x, y)), both("population", _moments(x, y))
    assert float(l2) == pytest.approx(float(l1), rel=1e-12)
    leaves1, leaves2 = jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)
    assert len(leaves1) == 3
    for a, b in zip(leaves1, leaves2):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-13 * np.max(np.abs(a)))


class _Fixed:
    """A dataset whose every minibatch is ``(x, y)``: ``sample`` returns it, ``scatter`` its moments."""

    def __init__(self, x, y):
        self.x, self.y, self.dim = x, y, x.shape[1]

    def sample(self, key, n, dtype):
        return self.x, self.y

    def scatter(self, key, n, dtype):
        return _moments(self.x, self.y)


@pytest.mark.slow
@pytest.mark.parametrize("objective, ema", [("jepa", 0.0), ("jepa", 0.3), ("mae", 0.0)])
def test_train_step_on_the_scatter_is_sgd_on_the_minibatch(objective, ema):
    """``train.step`` (scatter path, ``batch >= 2d``) equals a hand-written SGD step on the explicit
    minibatch with that scatter: ``theta - lr grad`` of the minibatch loss, then the EMA target."""
    ds = data.custom([1.0, 0.5, 2.0], [0.9, 0.4, 1.5])
    x, y = ds.sample(jax.random.PRNGKey(4), 16)
    cfg = train.TrainConfig(objective=objective, depth=2, lam=(1.0, 0.5, 2.0), rho=(0.9, 0.4, 1.5), eps=0.02,
                            init="random", init_scale=0.8, loss="sampled", batch=16, lr=0.05, ema=ema)
    fixed = _Fixed(x, y)
    program = train.Program.of(cfg, fixed)
    assert program.scatter
    assert not train.Program.of(train.TrainConfig(**{**cfg.as_dict(), "batch": 5}), ds).scatter  # B < 2d: samples
    model = models.random_init(jax.random.PRNGKey(5), 3, 2, 0.8)
    hp = train.hyperparameters(cfg, ds, np.full(3, np.inf), jax.random.PRNGKey(6))
    state = train.initial_state(program, hp, model)
    new = train.step(program, hp, state, 0)
    target = state[2]
    grads = jax.grad(lambda m: objectives.loss(objective, "sampled", m, (x, y), target))(model)
    expected = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, model, grads)
    for a, b in zip(jax.tree_util.tree_leaves(new[0]), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
    if ema:
        np.testing.assert_allclose(np.asarray(new[2].matrix()),
                                   ema * np.asarray(target.matrix()) + (1 - ema) * np.asarray(expected.encoder.matrix()),
                                   rtol=1e-12)
