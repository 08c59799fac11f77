"""One seed, one init: ``train``, ``train-grid`` and the matrix flow start from the same matrices,
bit for bit (the draws live in one place, :mod:`jepa_dynamics.engines._draws`)."""

import numpy as np
import pytest

from jepa_dynamics.engines import matrix
from jepa_dynamics.training import grid, models
from jepa_dynamics.training.train import TrainConfig, initial_model

from jepa_dynamics._jax import jax


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.slow
def test_random_init_is_the_same_matrices_in_train_train_grid_and_matrix(depth):
    configs = [TrainConfig(lam=[1.0, 0.6, 0.8], rho=[0.9, 0.5, 0.7], depth=depth, eps=1e-2, init="random",
                           seed=s, steps=10) for s in (0, 7)]
    keys = np.asarray(jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 3))(np.array([0, 7])))[:, 0]
    stacked = grid._init_models(configs, keys)
    for k, c in enumerate(configs):
        own = models.matrix_state(initial_model(c))
        in_grid = models.matrix_state(jax.tree_util.tree_map(lambda x: x[k], stacked))
        flow = matrix.initial_state(matrix.MatrixConfig("jepa", depth, eps=1e-2, init="random", seed=c.seed), 3)
        assert own.shape == (depth + 2, 3, 3)
        np.testing.assert_array_equal(own, in_grid)
        np.testing.assert_array_equal(own, flow)
    # different seeds, different matrices (the test could fail)
    assert not np.array_equal(models.matrix_state(initial_model(configs[0])),
                              models.matrix_state(initial_model(configs[1])))


@pytest.mark.slow
def test_balanced_init_is_the_same_matrices_in_train_and_matrix():
    c = TrainConfig(lam=[1.0, 0.6], rho=[0.9, 0.5], depth=3, eps=1e-3, seed=4, steps=10)
    own = models.matrix_state(initial_model(c))
    flow = matrix.initial_state(matrix.MatrixConfig("jepa", 3, eps=1e-3, seed=4), 2)
    np.testing.assert_array_equal(own, flow)
    np.testing.assert_allclose(matrix.end_to_end(list(flow[:3])), 1e-3 * np.eye(2), rtol=0, atol=1e-15)


def test_dense_covariances_of_every_family():
    from jepa_dynamics.training import data

    for family in data.FAMILIES[1:]:
        ds = data.make(family, dim=4)
        sxx, sxy, syy = ds.covariance_matrices()
        np.testing.assert_array_equal(np.diag(sxy), ds.lam)
        assert sxx.shape == (4, 4) and np.count_nonzero(sxx - np.diag(np.diag(sxx))) == 0
    m = data.make_matrix("rotated", 4)
    assert m.covariance_matrices()[0].shape == (4, 4)


def test_matrix_state_refuses_an_mlp():
    from jepa_dynamics.theory.spec import SpecError

    mlp = initial_model(TrainConfig(model="mlp", lam=[1.0], rho=[0.5], loss="sampled", steps=10))
    with pytest.raises(SpecError, match="^model: the matrix flow needs a deep linear encoder"):
        models.matrix_state(mlp)
