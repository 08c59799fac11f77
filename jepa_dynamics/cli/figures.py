"""``jepa-dynamics figures``: build the figure groups of :mod:`jepa_dynamics.figures`."""

from __future__ import annotations

from ..theory import spec
from ._flags import Parser, add_progress_flags

_FIGURES_DESCRIPTION = "Build each figure of jepa_dynamics.figures and write OUT/NAME.<format>."


def add(sub) -> None:
    p = sub.add_parser("figures", help="regenerate the figure groups: the paper's six and three beyond it (PNG and PDF)",
                       description=_FIGURES_DESCRIPTION)
    p.__class__ = FiguresParser
    p.add_argument("--fast", action="store_true", help="small sizes (seconds per figure; what CI runs)")
    p.add_argument("--only", help="comma-separated figure names (default: all)")
    p.add_argument("--out", default="out/figures", help="output folder (default: out/figures; --out figures "
                                                       "regenerates the committed figures that README shows)")
    p.add_argument("--format", default="png,pdf", help="comma-separated: png, pdf, svg (default: png,pdf)")
    add_progress_flags(p)


class FiguresParser(Parser):
    """Lists the figure names in its help (importing :mod:`jepa_dynamics.figures` only then)."""

    def format_help(self):
        from ..figures import FIGURES

        self.description = f"{_FIGURES_DESCRIPTION} Figures (for --only): {', '.join(FIGURES)}."
        return super().format_help()


def run(args, argv) -> int:
    from ..figures import check_names, render

    names = None if args.only is None else check_names(spec.parse_list(args.only, "only", str))
    formats = spec.parse_list(args.format, "format", str)
    for path in render(names, args.out, fast=args.fast, formats=formats, progress=args.progress):
        print(path)
    return 0
