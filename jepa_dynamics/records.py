"""CSV files with provenance headers, written so that no finished work is lost.

Every CSV the package writes starts with ``#`` lines: the package version, the
command line (or API call) that produced it, and any parameters worth keeping,
then one header row of column names.  No timestamps: the same command gives a
byte-identical file.

* :class:`CsvAppender` streams rows, flushing after each block, and can resume a
  file: it checks that the provenance ``# grid:`` line matches, drops a torn last
  line, and reports how many complete rows are already there.
* :func:`write_csv_atomic` writes a whole file through a temporary file and
  ``os.replace``, so a reader never sees half a file.
* :func:`format_column` turns a float array into the shortest strings that read
  back to the same float64 (``repr``), identical across runs.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Iterable, Sequence

import numpy as np

from . import spec

__all__ = [
    "version",
    "command_line",
    "provenance_lines",
    "format_column",
    "CsvAppender",
    "write_csv_atomic",
    "read_csv",
    "progress_bar",
]


def version() -> str:
    from . import __version__

    return __version__


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would retype it (``jepa-dynamics sweep ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["jepa-dynamics", *argv])


def provenance_lines(command: str, params: dict | None = None) -> list[str]:
    """``#`` header lines: package version, command, and ``key: value`` params."""
    lines = [f"# jepa-dynamics {version()}", f"# command: {command}"]
    for key, value in (params or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"# {key}: {text}")
    return lines


def format_column(values) -> list[str]:
    """Shortest round-trip text of each value (ints stay ints, strings pass through)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return [str(v) for v in arr.tolist()]
    if arr.dtype.kind in "US O".replace(" ", ""):
        return [str(v) for v in arr.tolist()]
    return [repr(v) for v in arr.astype(np.float64).tolist()]


def _rows_text(columns: Sequence[Sequence[str]]) -> str:
    return "".join(",".join(row) + "\n" for row in zip(*columns))


class CsvAppender:
    """Append rows to a CSV with a provenance header, flushing each block.

    ``resume=True`` continues an existing file written with the same ``key``
    (a JSON-able description of the job, stored as the ``# grid:`` line): a torn
    last line is cut off and :attr:`done` says how many complete data rows are
    kept.  A mismatching key raises :class:`~jepa_dynamics.spec.SpecError`.
    """

    def __init__(self, path: str, header: Sequence[str], columns: Sequence[str], *, key=None,
                 resume: bool = False, name: str = "out"):
        self.path = spec.check_writable(path, name)
        self.columns = list(columns)
        key_line = f"# grid: {json.dumps(key, sort_keys=True)}" if key is not None else None
        self.done = 0
        if resume and os.path.exists(path) and os.path.getsize(path) > 0:
            self.done = self._recover(key_line, name)
            self._file = open(path, "a", encoding="utf-8", newline="")
        else:
            self._file = open(path, "w", encoding="utf-8", newline="")
            lines = list(header) + ([key_line] if key_line else []) + [",".join(self.columns)]
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def _recover(self, key_line, name) -> int:
        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        # everything after the last newline is a torn row: drop it
        keep = data[: data.rfind(b"\n") + 1] if lines[-1] else data
        text_lines = keep.decode("utf-8").splitlines()
        comments = [ln for ln in text_lines if ln.startswith("#")]
        if key_line is not None and key_line not in comments:
            raise spec.SpecError(
                name, f"cannot resume {self.path}: it was written for other parameters (rerun without --resume)"
            )
        body = [ln for ln in text_lines if not ln.startswith("#")]
        if not body or body[0] != ",".join(self.columns):
            raise spec.SpecError(name, f"cannot resume {self.path}: its column header is missing or different")
        if len(keep) != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(keep))
        return len(body) - 1

    def write_columns(self, columns: Sequence[Sequence[str]]) -> None:
        """Append rows given column-wise as lists of already formatted strings."""
        self._file.write(_rows_text(columns))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def write_csv_atomic(path: str, header: Sequence[str], columns: Sequence[str],
                     data: Sequence[Iterable], name: str = "out") -> None:
    """Write a whole CSV at once via a temporary file and ``os.replace``.

    ``data`` holds one sequence per column (floats are written with :func:`format_column`)."""
    spec.check_writable(path, name)
    formatted = [format_column(col) for col in data]
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(list(header) + [",".join(columns)]) + "\n")
        f.write(_rows_text(formatted))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def progress_bar(total: int, *, desc: str, unit: str, enabled=None, initial: int = 0, leave: bool = True):
    """The package's tqdm bar, on stderr.  ``enabled=None`` shows it only when stderr is a
    terminal; a disabled bar still takes ``update``/``close`` calls (as no-ops)."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=not enabled, leave=leave,
                file=sys.stderr, dynamic_ncols=True)


def read_csv(path: str) -> dict[str, np.ndarray]:
    """Read a CSV written by this package into ``{column: array}`` (``#`` lines skipped)."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if not ln.startswith("#") and ln.strip()]
    names = lines[0].split(",")
    cells = [ln.split(",") for ln in lines[1:]]
    out: dict[str, np.ndarray] = {}
    for j, column in enumerate(names):
        values = [row[j] for row in cells]
        try:
            out[column] = np.array([float(v) for v in values])
        except ValueError:
            out[column] = np.array(values)
    return out
