"""`jepa-dynamics spectrum`: modes of synthetic views with known covariances recovered within
sampling error, predicted critical times against quadrature, never-learned modes, the bundled
datasets, and refused commands that leave existing files alone."""

from __future__ import annotations

import numpy as np
import pytest

from jepa_dynamics import records
from jepa_dynamics.realdata import spectrum
from jepa_dynamics.cli import main
from reference import quad_critical_time

N = 200_000
LAM = np.array([1.2, 0.5, 0.8, 0.3, -0.2])
RHO = np.array([0.9, 0.7, 0.4, 0.2, -0.25])  # the last mode has lam < 0: never learned


def _rotated_views(seed=0, n=N):
    """Independent per-feature pairs (lam_i, rho_i) rotated by a random orthogonal R: the modes
    are R e_i with exactly these (lam, rho) (the commuting case of docs/theory.md section 10)."""
    rng = np.random.default_rng(seed)
    d = LAM.size
    s2 = LAM / RHO
    syy = np.maximum(s2, LAM * RHO) + 0.1
    x0 = rng.standard_normal((n, d)) * np.sqrt(s2)
    y0 = RHO * x0 + rng.standard_normal((n, d)) * np.sqrt(syy - LAM * RHO)
    r, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return x0 @ r.T + 3.0, y0 @ r.T - 1.0, s2, syy


@pytest.mark.slow
def test_spectrum_recovers_known_modes(tmp_path, capsys):
    x, y, s2, syy = _rotated_views()
    path = tmp_path / "views.npz"
    np.savez(path, x=x, y=y)
    out = tmp_path / "out"
    assert main(["spectrum", "--views", str(path), "--depth", "1,3", "--eps", "1e-3", "--out", str(out)]) == 0
    table = records.read_csv(str(out / "modes.csv"))
    assert list(table) == list(spectrum.MODE_COLUMNS)
    assert table["depth"].tolist() == [1] * 5 + [3] * 5
    first = table["depth"] == 1
    lam, rho = table["lam"][first], table["rho"][first]
    order = np.argsort(-RHO)  # modes come in decreasing rho
    # sampling error of E[x_i y_i] and of a regression coefficient, n = 200,000 pairs; allow 5 of them
    se_lam = np.sqrt((s2 * syy + LAM**2) / N)
    se_rho = np.sqrt((syy - LAM * RHO) / (s2 * N))
    np.testing.assert_array_less(np.abs(lam - LAM[order]), 5 * se_lam[order])
    np.testing.assert_array_less(np.abs(rho - RHO[order]), 5 * se_rho[order])
    assert np.max(np.abs(lam - LAM[order])) < 0.01
    np.testing.assert_allclose(table["variance_share"][first].sum(), 1.0, atol=1e-3)  # orthonormal modes
    text = (out / "modes.csv").read_text()
    assert "# departure_from_commuting:" in text
    deep = table["depth"] == 3
    for obj in ("jepa", "mae"):
        for i in range(4):  # learned modes: the per-feature t_star, against quadrature
            for sel, depth in ((first, 1), (deep, 3)):
                ref = quad_critical_time(obj, depth, table["lam"][sel][i], table["rho"][sel][i], 1e-3)
                assert table[f"t_star_{obj}"][sel][i] == pytest.approx(ref, rel=1e-8)
        # lam < 0: never learned, ranked last (ranks count from 0: 0 = learned first)
        assert np.isinf(table[f"t_star_{obj}"][first][-1])
        assert table[f"rank_{obj}"][first][-1] == 4
        for sel, depth in ((first, 1), (deep, 3)):  # ranks: the order of the quadrature times
            ref = [quad_critical_time(obj, depth, table["lam"][sel][i], table["rho"][sel][i], 1e-3) for i in range(4)]
            assert table[f"rank_{obj}"][sel][:4].tolist() == np.argsort(np.argsort(ref)).tolist()
    assert table["rank_mae"][first].tolist() == [0, 2, 1, 3, 4]  # depth 1: decreasing lam
    assert (out / "spectrum.png").stat().st_size > 10_000
    cov = np.load(out / "covariances.npz")
    np.testing.assert_allclose(cov["mean_x"], x.mean(0), rtol=1e-10)


def test_never_learned_when_eps_above_level():
    t = spectrum.predicted_times("jepa", 4, [1.0, 1.0, -1.0], [0.9, 0.1, 0.5], 1e-3)
    assert np.isfinite(t[0]) and np.isinf(t[1]) and np.isinf(t[2])  # 0.1^4 / 2 < eps: never rises
    assert spectrum.ranks([3.0, np.inf, 1.0, 3.0, np.inf]).tolist() == [1, 3, 0, 1, 3]


@pytest.mark.parametrize("argv", [["--dataset", "digits", "--n", "3000"],
                                  ["--dataset", "patches", "--n", "3000", "--patch", "4", "--images", "camera,grass"]])
@pytest.mark.slow
def test_bundled_datasets(tmp_path, argv):
    out = tmp_path / "o"
    assert main(["spectrum", *argv, "--depth", "2", "--out", str(out)]) == 0
    table = records.read_csv(str(out / "modes.csv"))
    assert table["feature"].size == (64 if "digits" in argv else 16)
    assert np.all(np.diff(table["rho"]) <= 1e-12)
    text = (out / "modes.csv").read_text()
    assert '"n": 3000' in text


@pytest.mark.slow
def test_refused_commands_change_nothing(tmp_path, capsys):
    x, y, _, _ = _rotated_views(n=400)
    good = tmp_path / "good.npz"
    np.savez(good, x=x, y=y)
    out = tmp_path / "out"
    assert main(["spectrum", "--views", str(good), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    xn = x.copy()
    xn[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=xn, y=y)
    np.savez(tmp_path / "short.npz", x=x[:5], y=y[:5])
    cases = [
        (["--views", str(tmp_path / "nan.npz")], "--views: x holds a non-finite value (nan) at row 7, column 1"),
        (["--views", str(tmp_path / "short.npz")], "--views: need more pairs than dimensions"),
        (["--views", str(good), "--depth", "0"], "--depth: must be a positive integer"),
        (["--views", str(good), "--eps", "-1"], "--eps: must be > 0"),
        (["--views", str(good), "--noise", "0.1"], "--noise: dataset options go with --dataset"),
        (["--dataset", "mnist"], "--dataset: unknown value 'mnist'"),
        (["--dataset", "digits", "--patch", "4"], "--patch: is not an option of --dataset digits"),
        (["--dataset", "patches", "--offset", "1"], "--offset: must be two integers"),
    ]
    capsys.readouterr()
    for extra, message in cases:
        assert main(["spectrum", *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
