"""What every command function shares: flag values as text, the provenance line, notes.

The functions of this layer take the command's flags as keyword arguments of the same names
and defaults.  A value may be given as the CLI would read it (``"1,2,4"``) or as Python
values (``[1, 2, 4]``, ``0.01``); :func:`flag_text` turns it into the flag's text, so both
reach the same parser and give the same files.  The provenance line written into every CSV
is the command line that the call is the twin of (:func:`command_line`), unless the caller
(the CLI) passes its own.
"""

from __future__ import annotations

import inspect
import os
import shlex
import sys

from ..theory import spec

__all__ = ["flag_text", "flags", "command_line", "one", "check_plot", "note", "deprecated", "existing"]


def flag_text(value):
    """The text of a flag value: ``None`` and booleans stay, a string is kept as it is, a
    number is written as Python writes it, a sequence is joined with commas."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(flag_text(v)) for v in value)
    if hasattr(value, "tolist"):  # a NumPy scalar or array
        return flag_text(value.tolist())
    return str(value)


def flags(values: dict, skip=("command", "report")) -> dict:
    """``values`` (a function's ``locals()``) with every flag as text (:func:`flag_text`)."""
    return {k: flag_text(v) for k, v in values.items() if k not in skip}


def command_line(name: str, function, values: dict, leave_out=()) -> str:
    """``jepa-dynamics NAME --flag value ...`` for the flags of ``values`` that differ from
    ``function``'s defaults, in the order of its signature (``leave_out``: flags not recorded,
    such as ``resume``; ``progress`` never is: it changes no file).  This is the line the CLI records when
    typed in that order."""
    words = ["jepa-dynamics", name]
    for param in inspect.signature(function).parameters.values():
        if param.name in ("command", "report", "progress") or param.name in leave_out:
            continue
        value = values[param.name]
        if param.default is not inspect.Parameter.empty and value == flag_text(param.default):
            continue
        if value is True:
            words.append(spec.flag(param.name))
        elif isinstance(value, str) and value.startswith("-"):
            words.append(f"{spec.flag(param.name)}={value}")
        else:
            words += [spec.flag(param.name), str(value)]
    return shlex.join(words)


def one(text, name: str, kind=float):
    """The single value of a flag that takes one (``None`` stays ``None``); a comma list is refused
    with one line, never cut to its first value."""
    if text is None:
        return None
    values = spec.parse_list(text, name, kind)
    if len(values) != 1:
        raise spec.SpecError(name, f"takes one value, got {len(values)} ({text})")
    return values[0]


def check_plot(path):
    """A plot path must end in a format matplotlib writes and be writable (``None`` passes)."""
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".pdf", ".svg"):
        raise spec.SpecError("plot", f"must end in .png, .pdf or .svg, got {path!r}")
    return spec.check_writable(path, "plot")


def note(command: str):
    """A one-line note on stderr (``jepa-dynamics CMD: note: ...``): how every command tells the
    user something worth knowing that is not an error."""
    return lambda message: print(f"jepa-dynamics {command}: note: {message}", file=sys.stderr)


def deprecated(message: str, report=None) -> None:
    """Say once that a flag is deprecated: to ``report`` when the caller gave one (as every note), else as the
    one stderr line ``jepa-dynamics: MESSAGE``."""
    if report is not None:
        report(message)
    else:
        print(f"jepa-dynamics: {message}", file=sys.stderr)


def existing(folder: str, names) -> list:
    """The paths of the files among ``names`` that ``folder`` holds (what a command wrote)."""
    return [os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))]
