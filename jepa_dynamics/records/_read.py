"""Reading CSV files back: whole, by rows (streamed), as blocks of checked lines (:class:`Rows`),
and the provenance key that a resume compares."""

from __future__ import annotations

import json

import numpy as np

from ..theory import spec


class Rows:
    """A block of complete CSV lines as bytes, split into fields with NumPy (no object per
    field, so millions of rows are checked in seconds).

    ``first_bad``: the first line that does not have ``width`` fields or is not UTF-8 text
    (``None`` if none); :attr:`k` lines come before it.  For those, :meth:`field` and
    :meth:`lengths` give one column as fixed-width bytes; the block is also a sequence of
    those ``k`` lines as ``str`` (for checks written line by line)."""

    def __init__(self, data: bytes, width: int):
        self.data = np.frombuffer(data, dtype=np.uint8)
        self.ends = np.flatnonzero(self.data == 10)
        self.n = self.ends.size
        self.starts = np.concatenate([[0], self.ends[:-1] + 1])
        commas = np.flatnonzero(self.data == 44)
        per_line = np.bincount(np.searchsorted(self.ends, commas), minlength=self.n)[: self.n]
        bad = per_line != width - 1
        odd = np.flatnonzero((self.data >= 128) | ((self.data < 32) & (self.data != 10)))
        for i in np.unique(np.searchsorted(self.ends, odd)).tolist():  # rare: decode those lines
            if not bad[i]:
                try:
                    text = self.line(i).decode("utf-8")
                    bad[i] = any(c < " " and c != "\n" for c in text)
                except UnicodeDecodeError:
                    bad[i] = True
        first = np.flatnonzero(bad)
        self.first_bad = int(first[0]) if first.size else None
        k = self.n if self.first_bad is None else self.first_bad
        self.k = k  # lines whose fields are known
        # every line before first_bad has width - 1 commas, so the first (width - 1) k are theirs
        seps = commas[: (width - 1) * k].reshape(k, width - 1)
        self._from = np.column_stack([self.starts[:k], seps + 1])
        self._to = np.column_stack([seps, self.ends[:k]])

    def __len__(self) -> int:
        return self.k

    def __getitem__(self, i: int) -> str:
        if not -self.k <= i < self.k:
            raise IndexError(i)
        return self.line(i % self.k).decode("utf-8").rstrip("\n")

    def __iter__(self):
        return (self[i] for i in range(self.k))

    def line(self, i: int) -> bytes:
        return self.data[self.starts[i]: self.ends[i] + 1].tobytes()

    def bytes_outside(self, columns, allowed: np.ndarray) -> np.ndarray:
        """Indices (among the first :attr:`k` lines) of lines with a byte outside ``allowed``
        (a boolean table of 256) in any of the fields ``columns``; vectorised on the bytes."""
        mark = np.zeros(self.data.size + 1, dtype=np.int8)
        for j in columns:
            mark[self._from[:, j]] += 1  # fields never overlap, so plain fancy adds are exact
            mark[self._to[:, j]] -= 1
        inside = np.cumsum(mark[:-1], dtype=np.int8) > 0
        wrong = np.flatnonzero(inside & ~allowed[self.data])
        return np.unique(np.searchsorted(self.ends, wrong))

    def lengths(self, j: int) -> np.ndarray:
        """Lengths of field ``j`` of the first :attr:`k` lines."""
        return self._to[:, j] - self._from[:, j]

    def field(self, j: int, width: int):
        """``(text, length)`` of field ``j`` of the first :attr:`k` lines: ``text`` as ``S<width>``
        bytes (cut at ``width``), ``length`` the field's full length."""
        lo, hi = self._from[:, j], self._to[:, j]
        length = hi - lo
        offsets = np.arange(width)
        take = np.minimum(lo[:, None] + offsets[None, :], self.data.size - 1)
        text = np.where(offsets[None, :] < length[:, None], self.data[take], 0).astype(np.uint8)
        return np.ascontiguousarray(text).view(f"S{width}").ravel(), length


def key_differences(old: dict, new: dict, where: str) -> list[str]:
    """``"--steps: the run in r has 20000, this command 40000"`` for each key that differs."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "(absent)"), new.get(k, "(absent)")
        if a != b:
            text = lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
            out.append(f"{spec.flag(k)}: {where} has {text(a)}, this command {text(b)}")
    return out


def read_key(path: str):
    """The JSON ``# grid:`` line of a CSV written by this package (``None`` if it has none);
    reads only the ``#`` lines.  Raises :class:`~jepa_dynamics.theory.spec.SpecError` (``resume``) when
    the header is not text."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.startswith(b"#"):
                return None
            if raw.startswith(b"# grid: "):
                try:
                    return json.loads(raw[8:].decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise spec.SpecError("resume", f"cannot resume {path}: its '# grid:' line is damaged; "
                                                   "rerun without --resume to start over") from None
    return None


def read_csv_rows(path: str, rows) -> dict[str, np.ndarray]:
    """Like :func:`read_csv`, but only the data rows at the sorted positions ``rows`` (0-based),
    streaming the file: memory grows with ``len(rows)``, not with the file."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    picked, names, k, i = [], None, 0, 0
    with open(path, encoding="utf-8") as f:
        for ln in f:
            if ln.startswith("#") or not ln.strip():
                continue
            if names is None:
                names = ln.rstrip("\n").split(",")
                continue
            if k < rows.size and rows[k] == i:
                picked.append(ln.rstrip("\n").split(","))
                k += 1
                if k == rows.size:
                    break
            i += 1
    return _columns(names or [], picked)


def read_csv(path: str) -> dict[str, np.ndarray]:
    """Read a CSV written by this package into ``{column: array}`` (``#`` lines skipped)."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if not ln.startswith("#") and ln.strip()]
    return _columns(lines[0].split(","), [ln.split(",") for ln in lines[1:]])


def _columns(names, cells) -> dict[str, np.ndarray]:
    """Rows of text cells to ``{column: array}``: float64 where every cell is a number, else text."""
    out: dict[str, np.ndarray] = {}
    for j, column in enumerate(names):
        values = [row[j] for row in cells]
        try:
            out[column] = np.array([float(v) for v in values])
        except ValueError:
            out[column] = np.array(values)
    return out
