"""The ``jepa-dynamics`` command: parse flags, call the API, print the files it wrote.

Floor 9, the top layer: it may import every layer below (in practice only ``api``, ``figures``
for the ``figures`` command, ``records`` for the provenance line and ``theory.spec`` for the
errors).  One module per command (``sweep``, ``simulate``, ``train``, ``train_grid``,
``figures``, ``matrix``, ``spectrum``), each with ``add(subparsers)`` and ``run(args, argv)``,
registered in :data:`COMMANDS`; ``run`` parses nothing itself and calls the command's API twin
(:mod:`jepa_dynamics.api`).  Errors are one line on stderr and a non-zero exit, never a traceback:

* a bad flag or value (``SpecError`` / usage): exit 2, ``jepa-dynamics <cmd>: error: --flag: problem``;
* a solver failure: exit 1;
* Ctrl-C: exit 130, with what was kept and how to resume.
"""

from __future__ import annotations

import os
import signal
import sys

from .._version import __version__
from ..theory import spec
from . import figures, matrix, simulate, spectrum, sweep, train, train_grid
from ._flags import Parser as _Parser, UsageError as _UsageError

__all__ = ["main", "entry", "COMMANDS"]

# name: (add the subcommand's parser, run it); each module is one command
COMMANDS = {
    "sweep": (sweep.add, sweep.run),
    "simulate": (simulate.add, simulate.run),
    "train": (train.add, train.run),
    "figures": (figures.add, figures.run),
    "matrix": (matrix.add, matrix.run),
    "spectrum": (spectrum.add, spectrum.run),
    "train-grid": (train_grid.add, train_grid.run),
}


def _parser() -> _Parser:
    parser = _Parser(prog="jepa-dynamics", allow_abbrev=False,
                     description="Training dynamics of JEPA vs MAE with deep linear and MLP encoders.")
    parser.add_argument("--version", action="version", version=f"jepa-dynamics {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    for p in sub.choices.values():
        p.allow_abbrev = False
    return parser


def _message(err: spec.SpecError) -> str:
    return f"{spec.flag(err.name)}: {err.problem}"


def main(argv=None) -> int:
    """Entry point of ``jepa-dynamics``; returns the exit status (also via ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "jepa-dynamics" + (f" {argv[0]}" if argv and argv[0] in COMMANDS else "")
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        status = COMMANDS[args.command][1](args, argv)
    except _UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        status = 2
    except spec.SpecError as err:
        print(f"{prog}: error: {_message(err)}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt as err:
        detail = str(err) or "interrupted"
        print(f"{prog}: {detail}", file=sys.stderr)
        status = 130
    except Exception as err:  # solver failures and the like: one line, no traceback
        if os.environ.get("JEPA_DYNAMICS_DEBUG"):
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {text}", file=sys.stderr)
        status = 1
    return status



def entry() -> None:
    """The process entry point (``jepa-dynamics``, ``python -m jepa_dynamics``): :func:`main`, then
    exit with its status.  Once the command has finished, Ctrl-C is ignored: its work is done and
    written, and an interrupt during the interpreter's exit (JAX's cleanup, for one) would only
    print a traceback."""
    status = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
