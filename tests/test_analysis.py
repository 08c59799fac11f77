"""Empirical critical times and learning-order statistics."""

import numpy as np
import pytest
from scipy import stats

from jepa_dynamics.training import analysis
from jepa_dynamics.theory import spec


def test_critical_times_interpolate_linearly():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    r = np.array([[0.0, 0.6, 0.1], [0.2, 0.7, 0.1], [0.6, 0.8, 0.1], [1.0, 0.9, 0.1]])
    out = analysis.critical_times(t, r, w_star=np.array([1.0, 1.0, 1.0]), fraction=0.5)
    assert out[0] == pytest.approx(1.0 + (0.5 - 0.2) / (0.6 - 0.2))  # between t=1 and t=2
    assert out[1] == 0.0  # starts above the level
    assert np.isnan(out[2])  # never reached


def test_critical_times_on_a_known_curve():
    # w(t) = 1 - exp(-t): the half level is crossed at t = ln 2
    t = np.linspace(0, 3, 3001)
    out = analysis.critical_times(t, (1 - np.exp(-t))[:, None], 1.0)
    assert out[0] == pytest.approx(np.log(2), abs=1e-6)


def test_order_statistics():
    t_star = np.array([3.0, 1.0, np.nan, 2.0])
    np.testing.assert_array_equal(analysis.learning_order(t_star), [1, 3, 0, 2])
    values = np.array([0.1, 0.9, 0.0, 0.5])  # larger value, learned earlier
    assert analysis.order_correlation(t_star, values) == pytest.approx(1.0)
    assert analysis.order_correlation(t_star, -values) == pytest.approx(-1.0)
    a, b = np.array([1.0, 5.0, 2.0, 2.0, 7.0]), np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    assert analysis.rank_correlation(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_responses_table_and_errors():
    steps, table = analysis.responses_table([0, 0, 5, 5], [0, 1, 0, 1], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(steps, [0, 5])
    np.testing.assert_array_equal(table, [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(spec.SpecError, match="^responses:"):
        analysis.critical_times([0.0, 1.0], np.zeros((3, 2)), 1.0)
