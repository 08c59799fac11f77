r"""Two views of real data (docs/theory.md section 11): the sources of the pairs ``(x, y)``.

A source makes a :class:`Views` (``n`` pairs handed out in row blocks); :func:`covariances`
streams through them into their empirical :class:`Covariances` in bounded memory.  Both live in
the private ``_pairs`` module and are importable from here.

Sources:

* :func:`from_npz` -- an ``.npz`` file with arrays ``x`` and ``y`` of shape ``(n, d)``.
  Members stored uncompressed (``np.savez``) are read in place, any block of rows at any
  offset (``np.load``'s ``mmap_mode`` does not reach into ``.npz`` archives, so the member's
  offset is read from the zip header; plain reads rather than a memory map, so the resident
  memory is one block, not the pages of the file touched so far); compressed members
  (``np.savez_compressed``) are decompressed block by block as they are read.  Either way the
  file is never read whole.
* :func:`digits` -- scikit-learn's bundled ``load_digits`` (1797 labelled 8x8 images,
  ``d = 64``), pixels scaled to ``[0, 1]``.  Pair ``k`` uses image ``k mod 1797`` (so every
  image appears equally often); each view is an independent random augmentation of it:
  a shift by ``(dr, dc)`` drawn uniformly from ``{-shift..shift}^2`` (zero fill; default one
  pixel), then i.i.d. Gaussian pixel noise of standard deviation ``noise`` (default 0.1).
  The labels (``views.labels``) are the source images' digits.
* :func:`patches` -- pairs of neighbouring patches from scikit-image's bundled grey-level
  images (colour ones are converted with ``skimage.color.rgb2gray``), pixels in ``[0, 1]``:
  the context patch ``x`` is the ``patch x patch`` block at a uniformly drawn position of a
  uniformly drawn image, the target ``y`` the block ``offset = (dr, dc)`` pixels away
  (default ``(0, patch)``: the adjacent block to the right), as I-JEPA's context and target
  blocks; ``d = patch^2``.

Generated views are drawn in fixed blocks of :data:`BLOCK` rows, block ``b`` from
``numpy.random.default_rng([seed, b])``, so the pairs depend on ``seed`` and ``n`` only.

Bad input raises :class:`~jepa_dynamics.theory.spec.SpecError` naming the problem: a missing array,
mismatched shapes, ``n <= d`` (the centred ``Sxx`` would be singular); the values (NaN or infinity,
constant columns, a singular ``Sxx``) are checked by :func:`covariances`.
"""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np

from ..theory import spec
from ._pairs import BLOCK, Covariances, Views, covariances  # noqa: F401

__all__ = ["Views", "Covariances", "from_npz", "digits", "digits_images", "patches", "make", "covariances", "DATASETS",
           "PATCH_IMAGES", "BLOCK"]

DATASETS = ("digits", "patches")
# scikit-image images shipped inside the wheel (no download), grey level or converted to grey
PATCH_IMAGES = ("camera", "astronaut", "brick", "grass", "gravel", "coins", "moon", "text", "page", "clock",
                "coffee", "chelsea", "rocket", "cell", "hubble_deep_field", "immunohistochemistry", "retina")
DEFAULT_PATCH_IMAGES = ("camera", "astronaut", "brick", "grass", "gravel", "coins", "moon", "chelsea", "coffee")


# --- npz files --------------------------------------------------------------------------------------------

def _member_name(zf: zipfile.ZipFile, key: str) -> str | None:
    for name in (f"{key}.npy", key):
        if name in zf.namelist():
            return name
    return None


def _npz_header(fileobj):
    version = np.lib.format.read_magic(fileobj)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fileobj)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fileobj)
    return np.lib.format._read_array_header(fileobj, version)  # pragma: no cover (format 3.0)


def _open_member(path: str, zf: zipfile.ZipFile, name: str, label: str):
    """``(shape, reader)`` of one ``.npy`` member: a memory map (stored) or a block reader."""
    info = zf.getinfo(name)
    try:
        with zf.open(name) as f:
            shape, fortran, dtype = _npz_header(f)
            header_len = f.tell() if info.compress_type == zipfile.ZIP_STORED else None
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise spec.SpecError("views", f"{path}: array {label} is not a readable .npy member ({err})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise spec.SpecError("views", f"{path}: array {label} must hold real numbers, got dtype {dtype}")
    if len(shape) != 2:
        raise spec.SpecError("views", f"{path}: array {label} must have shape (n, d), got shape {shape}")
    if info.compress_type == zipfile.ZIP_STORED and not fortran:
        with open(path, "rb") as raw:
            raw.seek(info.header_offset)
            local = raw.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        offset = info.header_offset + 30 + name_len + extra_len + header_len
        row = int(shape[1]) * dtype.itemsize

        def read_rows(a, b):  # random access by plain reads: no mapping, so the RSS stays one block
            return np.fromfile(path, dtype=dtype, count=(b - a) * int(shape[1]), offset=offset + a * row).reshape(
                b - a, int(shape[1]))

        return shape, read_rows, False
    if fortran:  # rows are not contiguous: read it whole (rare; np.save writes C order)
        with zf.open(name) as f:
            _npz_header(f)
            whole = np.frombuffer(f.read(), dtype=dtype).reshape(shape, order="F")
        return shape, (lambda a, b: whole[a:b]), False
    state = {"file": None, "pos": 0}
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize

    def read(a, b):  # sequential reads of a compressed member
        if state["file"] is None or a < state["pos"]:
            if state["file"] is not None:
                state["file"].close()
            state["file"] = zf.open(name)
            _npz_header(state["file"])
            state["pos"] = 0
        f = state["file"]
        if a > state["pos"]:
            f.read((a - state["pos"]) * row_bytes)
        buf = f.read((b - a) * row_bytes)
        state["pos"] = b
        return np.frombuffer(buf, dtype=dtype).reshape((b - a,) + tuple(shape[1:]))

    return shape, read, True


def from_npz(path: str) -> Views:
    """Views from an ``.npz`` with arrays ``x`` and ``y`` of shape ``(n, d)`` (checked here;
    the values are checked as :func:`covariances` streams through them)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise spec.SpecError("views", f"no such file: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise spec.SpecError("views", f"{path} is not an .npz archive (np.savez(path, x=..., y=...))") from None
    names = {}
    for key in ("x", "y"):
        names[key] = _member_name(zf, key)
        if names[key] is None:
            have = ", ".join(n.removesuffix(".npy") for n in zf.namelist()) or "nothing"
            raise spec.SpecError("views", f"{path} has no array {key!r} (it holds {have}); "
                                          "save the two views as x and y")
    (sx, rx, seq_x), (sy, ry, seq_y) = (_open_member(path, zf, names[k], k) for k in ("x", "y"))
    if tuple(sx) != tuple(sy):
        raise spec.SpecError("views", f"{path}: x and y must have the same shape, got x {tuple(sx)} and y {tuple(sy)}")
    n, d = int(sx[0]), int(sx[1])
    _check_n(n, d, "views")

    def read(a, b):
        return np.asarray(rx(a, b), dtype=np.float64), np.asarray(ry(a, b), dtype=np.float64)

    return Views(f"npz:{path}", n, d, read, {"views": os.path.abspath(path), "n": n, "d": d},
                 name="views", sequential=seq_x or seq_y)


def _check_n(n: int, d: int, name: str) -> None:
    if n <= d:
        raise spec.SpecError(name, f"need more pairs than dimensions (n > d) for a non-singular Sxx, "
                                   f"got n = {n} and d = {d}")


# --- generated views --------------------------------------------------------------------------------------

def _generated(source: str, n: int, dim: int, block_fn, params: dict, labels=None) -> Views:
    """Views whose block ``b`` (rows ``b*BLOCK ..``) is ``block_fn(rng_b, first_row, rows)``."""

    def read(a, b):
        xs, ys = [], []
        for blk in range(a // BLOCK, (b - 1) // BLOCK + 1):
            lo, hi = blk * BLOCK, min((blk + 1) * BLOCK, n)
            x, y = block_fn(np.random.default_rng([params["seed"], blk]), lo, hi - lo)
            cut = slice(max(a - lo, 0), min(b, hi) - lo)
            xs.append(x[cut]), ys.append(y[cut])
        return np.concatenate(xs), np.concatenate(ys)

    return Views(source, n, dim, read, params, labels, name="dataset")


def _shift(images, dr, dc):
    """Shift each ``(h, w)`` image in ``images`` by its ``(dr, dc)`` with zero fill."""
    m, h, w = images.shape
    pad = int(max(np.abs(dr).max(initial=0), np.abs(dc).max(initial=0)))
    padded = np.zeros((m, h + 2 * pad, w + 2 * pad))
    padded[:, pad:pad + h, pad:pad + w] = images
    rows = pad - dr[:, None] + np.arange(h)[None, :]
    cols = pad - dc[:, None] + np.arange(w)[None, :]
    return padded[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]


def digits(n: int | None = None, *, noise: float = 0.1, shift: int = 1, seed: int = 0) -> Views:
    """Two augmentations of scikit-learn's digits (see the module docstring); ``n`` pairs
    (default ``10 * 1797``)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float64) / 16.0
    n = 10 * images.shape[0] if n is None else spec.check_positive_int(n, "n")
    noise = float(spec.check_nonnegative(noise, "noise"))
    shift = spec.check_nonnegative_int(shift, "shift")
    seed = spec.check_nonnegative_int(seed, "seed")
    m, h, w = images.shape
    _check_n(n, h * w, "n")
    idx_all = np.arange(n) % m

    def block(rng, first, rows):
        src = images[idx_all[first:first + rows]]
        views = []
        for _ in range(2):
            dr, dc = rng.integers(-shift, shift + 1, size=(2, rows))
            v = _shift(src, dr, dc) if shift else src.copy()
            views.append(v.reshape(rows, h * w) + noise * rng.standard_normal((rows, h * w)))
        return views[0], views[1]

    params = {"dataset": "digits", "n": n, "noise": noise, "shift": shift, "seed": seed,
              "views": "two independent augmentations of load_digits()/16: a shift uniform in "
                       f"{{-{shift}..{shift}}}^2 (zero fill), then N(0, noise^2) pixel noise"}
    return _generated("digits", n, h * w, block, params, bunch.target[idx_all])


def digits_images():
    """The clean digits as rows, ``(1797, 64)`` float64 in ``[0, 1]``, and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.reshape(len(bunch.images), -1).astype(np.float64) / 16.0, bunch.target.copy()


def _grey_image(name: str) -> np.ndarray:
    import skimage.data

    spec.check_choice(name, PATCH_IMAGES, "images")
    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 3:
        from skimage.color import rgb2gray

        return rgb2gray(img[..., :3]).astype(np.float64)
    return img.astype(np.float64) / (255.0 if img.dtype == np.uint8 else 1.0)


def patches(n: int = 100_000, *, patch: int = 8, offset=None, images=DEFAULT_PATCH_IMAGES, seed: int = 0) -> Views:
    """Neighbouring patch pairs from scikit-image's bundled images (module docstring)."""
    n = spec.check_positive_int(n, "n")
    patch = spec.check_positive_int(patch, "patch")
    seed = spec.check_nonnegative_int(seed, "seed")
    if offset is None:
        offset = (0, patch)
    offset = tuple(int(v) for v in offset)
    if len(offset) != 2:
        raise spec.SpecError("offset", f"must be two integers dr,dc, got {offset}")
    if offset == (0, 0):
        raise spec.SpecError("offset", "must move the target patch (dr, dc) != (0, 0): identical views")
    images = tuple(images)
    if not images:
        raise spec.SpecError("images", "name at least one image")
    grey = [_grey_image(name) for name in images]
    dr, dc = offset
    span_r, span_c = patch + abs(dr), patch + abs(dc)
    for name, img in zip(images, grey):
        if img.shape[0] < span_r or img.shape[1] < span_c:
            raise spec.SpecError("patch", f"patch {patch} with offset {offset} does not fit image {name} "
                                          f"of shape {img.shape}")
    d = patch * patch
    _check_n(n, d, "n")
    windows = [np.lib.stride_tricks.sliding_window_view(img, (patch, patch)) for img in grey]
    # context corner (r, c): both blocks inside the image
    r0, c0 = max(0, -dr), max(0, -dc)
    n_pos = [(img.shape[0] - span_r + 1, img.shape[1] - span_c + 1) for img in grey]

    def block(rng, first, rows):
        which = rng.integers(0, len(grey), size=rows)
        x = np.empty((rows, d))
        y = np.empty((rows, d))
        for k in range(len(grey)):
            sel = np.flatnonzero(which == k)
            if sel.size == 0:
                continue
            r = r0 + rng.integers(0, n_pos[k][0], size=sel.size)
            c = c0 + rng.integers(0, n_pos[k][1], size=sel.size)
            x[sel] = windows[k][r, c].reshape(sel.size, d)
            y[sel] = windows[k][r + dr, c + dc].reshape(sel.size, d)
        return x, y

    params = {"dataset": "patches", "n": n, "patch": patch, "offset": list(offset), "images": list(images),
              "seed": seed, "views": "context: a patch x patch block at a uniform position of a uniform image; "
                                     "target: the block offset (dr, dc) pixels away; grey levels in [0, 1]"}
    return _generated("patches", n, d, block, params)


def make(dataset: str, **options) -> Views:
    """A built-in dataset by name (``digits`` or ``patches``) with its options; options that
    are ``None`` take their defaults."""
    spec.check_choice(dataset, DATASETS, "dataset")
    options = {k: v for k, v in options.items() if v is not None}
    return digits(**options) if dataset == "digits" else patches(**options)
