"""The families study (docs/theory.md section 17): its order correlations and fixed points held against
independent computations (scipy's Spearman, the fixed points written out), and trained networks against
the theory's order."""

import numpy as np
import pytest
from scipy import stats

from jepa_dynamics.experiments import families

EPS = 1e-3


def _spearman_early(t_star, values):
    return stats.spearmanr(-np.asarray(t_star), values).statistic


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_barlow_learns_in_order_of_lam_exactly_and_rho_only_through_the_data(depth):
    # Barlow's t* depends on lam alone (section 16): the order is lam's, and its rho score is the data's own
    # lam-rho correlation, whatever that is
    for seed in range(6):
        ds = families.draw_dataset(8, seed)
        t = families.theory_times("barlow", depth, ds, EPS)
        corr = families.order_correlations(t, ds, families.governing("barlow", depth, ds, EPS))
        assert corr["lam"] == pytest.approx(1.0, abs=1e-12)
        assert corr["governing"] == pytest.approx(1.0, abs=1e-12)
        assert corr["rho"] == pytest.approx(stats.spearmanr(ds["lam"], ds["rho"]).statistic, abs=1e-12)
        assert corr["rho"] == pytest.approx(_spearman_early(t, ds["rho"]), abs=1e-12)


def test_lam_and_rho_are_drawn_independently():
    scores = [stats.spearmanr(ds["lam"], ds["rho"]).statistic
              for ds in (families.draw_dataset(8, seed) for seed in range(300))]
    assert abs(np.mean(scores)) < 0.05


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_vicreg_at_default_weights_learns_in_order_of_lam(depth):
    # g = 4 lam at the spectral-contrastive weights; from L = 2 on the variances enter only the remainder
    for seed in range(6):
        ds = families.draw_dataset(8, seed)
        g = families.governing("vicreg", depth, ds, EPS)
        np.testing.assert_allclose(g, 4 * ds["lam"], rtol=1e-14)
        t = families.theory_times("vicreg", depth, ds, EPS)
        assert _spearman_early(t, ds["lam"]) == pytest.approx(1.0)


def test_only_jepa_moves_toward_rho_with_depth():
    sets = [families.draw_dataset(8, seed) for seed in range(40)]

    def median_rho(family, depth):
        return np.median([_spearman_early(families.theory_times(family, depth, ds, EPS), ds["rho"]) for ds in sets])

    chance = np.median([stats.spearmanr(ds["lam"], ds["rho"]).statistic for ds in sets])
    jepa = [median_rho("jepa", d) for d in (1, 2, 3, 4)]
    assert np.all(np.diff(jepa) > 0) and jepa[-1] > chance + 0.25
    for family in ("mae", "barlow", "vicreg"):
        assert median_rho(family, 4) == pytest.approx(chance, abs=0.05)


@pytest.mark.parametrize("depth", [1, 3])
def test_fixed_points_written_out(depth):
    ds = families.draw_dataset(6, 3)
    lam, rho, s2, syy = ds["lam"], ds["rho"], ds["sigma2"], ds["syy"]
    expected = {"jepa": rho**depth, "mae": rho ** (depth / (depth + 1)), "barlow": lam**-0.5,
                "vicreg": np.sqrt(2 * lam / (s2**2 + syy**2))}
    for family, w in expected.items():
        np.testing.assert_allclose(families.fixed_points(family, depth, ds), w, rtol=1e-13)


@pytest.mark.parametrize("family", families.FAMILIES)
def test_trained_network_learns_in_the_theorys_order(family):
    ds = {k: v[:4] for k, v in families.draw_dataset(8, 1).items()}
    run = families.trained_times(family, 2, ds, EPS, records=300)
    assert np.all(np.isfinite(run["t_star"]))
    np.testing.assert_allclose(run["t_star"], run["t_theory"], rtol=0.01)
    assert _spearman_early(run["t_star"], -run["t_theory"]) == pytest.approx(1.0)
    np.testing.assert_allclose(run["w_final"], run["w_star"], rtol=1e-3)
