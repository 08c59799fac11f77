"""CSV files with provenance headers, written so that no finished work is lost.

Floor 2. May import ``theory`` (for :class:`~jepa_dynamics.theory.spec.SpecError`) and the private
base modules; every layer above writes its files through here.

Every CSV the package writes starts with ``#`` lines: the package version, the
command line (or API call) that produced it, and any parameters worth keeping,
then one header row of column names.  No timestamps: the same command gives a
byte-identical file.

* :class:`CsvAppender` streams rows, flushing after each block, and can resume a
  file: it checks that the provenance ``# grid:`` line matches (naming every key that
  differs), reads the rows in blocks (bounded memory) and checks each one (:class:`Rows`,
  vectorised on bytes), drops a torn last line, and refuses -- changing nothing -- a file
  with rows that are not the job's.
* :func:`check_size` refuses a job whose estimated output or memory is too large.
* :func:`progress_bar` reports a long loop on stderr: a live bar on a terminal, a plain line every
  ten seconds elsewhere.
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

from ..theory import spec
from ._progress import progress_bar
from ._read import Rows, key_differences, read_key, read_csv, read_csv_rows

__all__ = [
    "version",
    "command_line",
    "provenance_lines",
    "format_column",
    "CsvAppender",
    "write_csv_atomic",
    "write_csv_blocks",
    "save_npz_atomic",
    "read_csv",
    "read_csv_rows",
    "read_key",
    "key_differences",
    "ensure_folder",
    "check_size",
    "progress_bar",
]


def version() -> str:
    from .._version import __version__

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
    """Shortest round-trip text of each value (ints stay ints, booleans are ``true`` / ``false``,
    strings pass through)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return np.where(arr, "true", "false").tolist()
    if arr.dtype.kind in "iu":
        return [str(v) for v in arr.tolist()]
    if arr.dtype.kind in "US O".replace(" ", ""):
        return [str(v) for v in arr.tolist()]
    return [repr(v) for v in arr.astype(np.float64).tolist()]


def _rows_text(columns: Sequence[Sequence[str]]) -> str:
    return "".join(",".join(row) + "\n" for row in zip(*columns))


def ensure_folder(path: str) -> None:
    """Create the folder that will hold the file ``path`` (called after all inputs are checked)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


class CsvAppender:
    """Append rows to a CSV with a provenance header, flushing each block.

    ``resume=True`` continues an existing file written with the same ``key``
    (a JSON-able description of the job, stored as the ``# grid:`` line).  The file is
    read in blocks (bounded memory), never all at once.  Each block of complete rows must be
    rows of ``len(columns)`` fields of the characters the package writes (:class:`Rows`), and
    is passed as a :class:`Rows` to ``check(first_index, rows)``, which returns the index (in
    the block) of the first row that is not the job's row at that position, or ``None``.  A torn last line (a kill
    mid-write) is cut off.  Anything else that is not the job's row -- another job's
    rows, duplicates, text that is not UTF-8 -- raises
    :class:`~jepa_dynamics.theory.spec.SpecError` naming the file, the row and the fix, with the
    file untouched; ``repair=True`` instead cuts the file at that row (:attr:`repaired`
    then says what was dropped).  ``repair=None`` (the default) is for a command without
    ``--repair``: its refusals name only ``--resume``.  :attr:`done` is the number of rows kept.  Nothing is
    modified before every check has passed.
    """

    def __init__(self, path: str, header: Sequence[str], columns: Sequence[str], *, key=None,
                 resume: bool = False, name: str = "out", check=None, repair: bool | None = None, progress=None,
                 what: str = "job"):
        self.path = spec.check_writable(path, name)
        self.what = what
        self.columns = list(columns)
        self.repaired = None
        key_line = f"# grid: {json.dumps(key, sort_keys=True)}" if key is not None else None
        self.done = 0
        if resume and os.path.exists(path) and os.path.getsize(path) > 0:
            try:
                self.done, keep = self._recover(key, key_line, check, repair, progress)
            except KeyboardInterrupt:  # nothing has been changed yet
                raise KeyboardInterrupt(f"interrupted while checking the rows of {path}, which is unchanged; "
                                        "rerun with --resume to continue") from None
            if keep != os.path.getsize(path):
                with open(path, "r+b") as f:
                    f.truncate(keep)
            self._file = open(path, "a", encoding="utf-8", newline="")
        else:
            ensure_folder(path)
            self._file = open(path, "w", encoding="utf-8", newline="")
            lines = list(header) + ([key_line] if key_line else []) + [",".join(self.columns)]
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def _refuse(self, problem: str):
        if "without --resume" not in problem:
            problem += "; or rerun without --resume to start over"
        raise spec.SpecError("resume", f"cannot resume {self.path}: {problem}")

    def _recover(self, key, key_line, check, repair, progress) -> tuple[int, int]:
        """``(rows kept, byte length kept)``; reads the file once, in blocks."""
        path = self.path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            comments, raw = [], f.readline()
            if not raw.startswith(b"# jepa-dynamics"):
                self._refuse("its first line is not '# jepa-dynamics ...', so this package did not write it")
            if raw.endswith(b"\r\n"):
                self._refuse("it has Windows (CRLF) line endings; convert it back (e.g. dos2unix)")
            while raw.startswith(b"#"):
                comments.append(raw.rstrip(b"\n"))
                raw = f.readline()
            try:
                comments = [c.decode("utf-8") for c in comments]
            except UnicodeDecodeError:
                self._refuse("its '#' header lines are not UTF-8 text, so it was not written by this command; "
                             "rerun without --resume to start over")
            if key_line is not None and key_line not in comments:
                old = read_key(path)
                diff = key_differences(old, key, "the file") if isinstance(old, dict) else []
                detail = f" ({'; '.join(diff)})" if diff else ""
                self._refuse(f"it was written for other parameters{detail}; rerun without --resume to start over")
            if raw.rstrip(b"\n") != ",".join(self.columns).encode() or not raw.endswith(b"\n"):
                self._refuse("its column header is missing or different; rerun without --resume to start over")
            keep = f.tell()
            done = 0
            bar = progress_bar(size, initial=keep, enabled=progress, desc="checking rows", unit="B", leave=False)
            bad = None  # (row index, what was found)
            try:
                carry = b""
                while True:
                    chunk = f.read(1 << 20)  # 1 MB: the block's NumPy arrays stay ~30 MB
                    data = carry + chunk
                    cut = data.rfind(b"\n") + 1
                    if not chunk:  # end of file: what is left after the last newline is a torn line
                        if data and not self._torn_ok(data):
                            bad = (done, self._show(data))
                        break
                    carry = data[cut:]
                    if not cut:
                        continue
                    rows = Rows(data[:cut], len(self.columns))
                    first = rows.first_bad
                    if check is not None:
                        found = check(done, rows)
                        first = found if first is None else (first if found is None else min(first, found))
                    if first is not None:
                        bad = (done + first, self._show(rows.line(first)))
                        keep += int(rows.starts[first])
                        done += first
                        break
                    done += rows.n
                    keep += cut
                    bar.update(cut)
            finally:
                bar.close()
        if bad is not None:
            row, found = bad
            if not repair:
                fix = ("rerun with --resume --repair to cut the file there and compute the rest, or without --resume "
                       "to start over" if repair is not None else "rerun without --resume to start over")
                self._refuse(f"data row {row + 1} is not this {self.what}'s row {row + 1} (found {found}); the "
                             f"{row} rows before it are: {fix}")
            self.repaired = (row, found)
        return done, keep

    @staticmethod
    def _show(raw: bytes) -> str:
        try:
            text = raw.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            return "bytes that are not UTF-8 text"
        return repr(text if len(text) <= 60 else text[:57] + "...")

    def _torn_ok(self, raw: bytes) -> bool:
        """A torn last line: text that could begin a row (UTF-8, printable, no more fields); a
        cut in the middle of a multi-byte character is allowed."""
        import codecs

        try:
            text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        except UnicodeDecodeError:
            return False
        return text.isprintable() and text.count(",") < len(self.columns)

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
    write_csv_blocks(path, header, columns, [[format_column(col) for col in data]], name=name)


def save_npz_atomic(path: str, **arrays) -> None:
    """``np.savez`` via a temporary file and ``os.replace``: a reader (or a resume) never sees half
    an ``.npz``, and an interrupted write leaves any old ``path`` as it was."""
    ensure_folder(path)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv_blocks(path: str, header: Sequence[str], columns: Sequence[str], blocks: Iterable,
                     name: str = "out") -> None:
    """Write a CSV from an iterable of blocks (each a list of already formatted text columns),
    via a temporary file and ``os.replace``: memory holds one block, a reader never sees half a
    file, and an interrupted write leaves any old ``path`` as it was."""
    spec.check_writable(path, name)
    ensure_folder(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(list(header) + [",".join(columns)]) + "\n")
            for block in blocks:
                f.write(_rows_text(block))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


LARGE_OUTPUT = 10 * 1024**3  # bytes: above this a command asks for --allow-large even when the disk has room
MEMORY_SHARE = 0.5  # a command may plan to use at most this share of the memory available now


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000.0
    raise AssertionError


def free_disk(path: str) -> int:
    """Free bytes on the file system that will hold ``path`` (its nearest existing folder)."""
    import shutil

    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return shutil.disk_usage(folder).free


def available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (``None`` where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_size(what: str, *, path: str | None = None, out_bytes: float = 0.0, mem_bytes: float = 0.0,
               allow_large: bool = False) -> None:
    """Refuse (``SpecError`` naming ``--allow-large``) a job whose estimated output is above the
    free disk or :data:`LARGE_OUTPUT`, or whose estimated peak memory is above
    :data:`MEMORY_SHARE` of the memory available; ``allow_large=True`` goes ahead anyway."""
    if allow_large:
        return
    fix = "shrink it, or pass --allow-large to go ahead"
    if path is not None and out_bytes > 0:
        free = free_disk(path)
        if out_bytes > free:
            raise spec.SpecError("allow_large", f"{what} would write about {human_bytes(out_bytes)} to {path}, more "
                                                f"than the {human_bytes(free)} free there; {fix}")
        if out_bytes > LARGE_OUTPUT:
            raise spec.SpecError("allow_large", f"{what} would write about {human_bytes(out_bytes)} to {path} "
                                                f"({human_bytes(free)} free there); {fix}")
    avail = available_memory()
    if avail is not None and mem_bytes > MEMORY_SHARE * avail:
        raise spec.SpecError("allow_large", f"{what} would need about {human_bytes(mem_bytes)} of memory, with "
                                            f"{human_bytes(avail)} available; {fix}")
