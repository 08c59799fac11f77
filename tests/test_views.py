"""Empirical covariances of two views (docs/theory.md section 11): streaming against a direct two-pass
computation, the bundled datasets' construction, and one-line errors on bad input."""

import numpy as np
import pytest

from jepa_dynamics.theory import spec
from jepa_dynamics.realdata import views


def _direct(x, y):
    """Two-pass centred moments with divisor n, computed independently of the streamer."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = x.shape[0]
    return xc.T @ xc / n, xc.T @ yc / n, yc.T @ yc / n


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_streamed_covariances_match_two_pass(tmp_path, save):
    rng = np.random.default_rng(1)
    n, d = 5003, 6
    x = rng.standard_normal((n, d)) * np.arange(1, d + 1) + 1e6  # a large mean: no cancellation allowed
    y = x @ rng.standard_normal((d, d)) * 0.1 + rng.standard_normal((n, d)) - 3e5
    path = tmp_path / "v.npz"
    save(path, x=x, y=y)
    v = views.from_npz(str(path))
    assert (v.n, v.dim) == (n, d)
    assert v.sequential == (save is np.savez_compressed)
    cov = views.covariances(v, block=777)  # blocks that do not divide n
    for est, ref in zip((cov.sxx, cov.sxy, cov.syy), _direct(x, y)):
        np.testing.assert_allclose(est, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(cov.mean_x, x.mean(0), rtol=1e-13)
    xa, ya = v.arrays(100)
    np.testing.assert_array_equal(xa, x[:100])
    np.testing.assert_array_equal(ya, y[:100])


def test_stored_npz_is_read_in_place(tmp_path):
    path = tmp_path / "v.npz"
    x = np.arange(40.0).reshape(10, 4) ** 1.5
    np.savez(path, x=x, y=x[::-1].copy())
    v = views.from_npz(str(path))
    xs, ys = v.read(3, 7)
    np.testing.assert_array_equal(xs, x[3:7])
    np.testing.assert_array_equal(ys, x[::-1][3:7])


def _bad(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(spec.SpecError) as err:
        views.covariances(views.from_npz(str(path)))
    assert err.value.name == "views" and "\n" not in str(err.value)
    return err.value.problem


def test_bad_views_are_named(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    assert "same shape" in _bad(tmp_path, x=x, y=x[:, :3])
    assert "n > d" in _bad(tmp_path, x=x[:4], y=x[:4])
    assert "no array 'y'" in _bad(tmp_path, x=x, z=x)
    assert "shape (n, d)" in _bad(tmp_path, x=x.ravel(), y=x.ravel())
    xn = x.copy()
    xn[17, 2] = np.nan
    assert "non-finite value (nan) at row 17, column 2" in _bad(tmp_path, x=xn, y=x)
    yi = x.copy()
    yi[30, 1] = -np.inf
    assert "y holds a non-finite value (-inf) at row 30, column 1" in _bad(tmp_path, x=x, y=yi)
    xc = x.copy()
    xc[:, 3] = 2.5
    assert "constant column(s)" in _bad(tmp_path, x=xc, y=x) and "column 3" in _bad(tmp_path, x=xc, y=x)
    xs = x.copy()
    xs[:, 0] = xs[:, 1] + xs[:, 2]
    assert "singular" in _bad(tmp_path, x=xs, y=x)
    assert "real numbers" in _bad(tmp_path, x=np.array([["a"] * 4] * 50), y=x)
    (tmp_path / "t.npz").write_text("not a zip")
    with pytest.raises(spec.SpecError, match="not an .npz"):
        views.from_npz(str(tmp_path / "t.npz"))
    with pytest.raises(spec.SpecError, match="no such file"):
        views.from_npz(str(tmp_path / "missing.npz"))


def test_digits_views_are_shifted_noisy_copies():
    v = views.digits(n=2000, noise=0.0, shift=1, seed=3)
    x, y = v.arrays()
    assert x.shape == (2000, 64) and v.labels.shape == (2000,)
    from sklearn.datasets import load_digits

    imgs = load_digits().images / 16.0
    # without noise each view is its source image shifted by at most one pixel (zero fill)
    for k in (0, 5, 1799):
        src = imgs[k % 1797]
        found = []
        for view in (x[k], y[k]):
            shifts = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                      if np.array_equal(view.reshape(8, 8), np.roll(np.pad(src, 1), (dr, dc), (0, 1))[1:-1, 1:-1])]
            found.append(bool(shifts))
        assert all(found)
    assert v.labels[1799] == load_digits().target[2]
    # seeded and independent of how the rows are read
    x2, y2 = views.digits(n=2000, noise=0.0, seed=3).read(1500, 2000)
    np.testing.assert_array_equal(x2, x[1500:])
    noisy = views.digits(n=2000, noise=0.5, seed=3).arrays()[0]
    assert 0.4 < np.std(noisy - x) < 0.6


def test_patches_are_neighbours():
    p = 4
    v = views.patches(n=3000, patch=p, offset=(0, 1), images=("camera", "brick"), seed=0)
    x, y = v.arrays()
    assert x.shape == (3000, p * p)
    gx, gy = x.reshape(-1, p, p), y.reshape(-1, p, p)
    # the target block is the context block moved one pixel right: they overlap in p - 1 columns
    np.testing.assert_array_equal(gy[:, :, :-1], gx[:, :, 1:])
    assert 0.0 <= x.min() and x.max() <= 1.0
    down = views.patches(n=500, patch=p, offset=(-2, 0), images=("coins",), seed=1).arrays()
    np.testing.assert_array_equal(down[1].reshape(-1, p, p)[:, 2:], down[0].reshape(-1, p, p)[:, :-2])
    with pytest.raises(spec.SpecError, match="images: unknown value 'eagle'"):
        views.patches(n=100, images=("eagle",))
    with pytest.raises(spec.SpecError, match="offset"):
        views.patches(n=100, offset=(0, 0))
    with pytest.raises(spec.SpecError, match="n > d"):
        views.patches(n=10, patch=4)
