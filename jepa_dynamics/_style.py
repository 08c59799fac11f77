"""One plotting style for the package: palette, line styles, figure creation and saving.

The palette is Okabe-Ito (colour-blind safe).  Depth is told by colour, objective by
line style (JEPA solid, MAE dashed), so every figure reads the same way.  Times
are gradient-flow time (``docs/theory.md``).  Figures use matplotlib's
object API with the Agg backend; nothing here touches global pyplot state.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["PALETTE", "OBJECTIVE_STYLE", "OBJECTIVE_LABEL", "TIME_LABEL", "FEATURE_COLOURS", "depth_colour",
           "shade", "style", "new_figure", "save_figure"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OBJECTIVE_STYLE = {"jepa": {"linestyle": "-", "marker": "o"}, "mae": {"linestyle": "--", "marker": "s"},
                   "barlow": {"linestyle": ":", "marker": "^"}, "vicreg": {"linestyle": "-.", "marker": "D"}}
OBJECTIVE_LABEL = {"jepa": "JEPA", "mae": "MAE", "barlow": "Barlow Twins", "vicreg": "VICReg"}
TIME_LABEL = "gradient-flow time $t$"
# Two features contrasted within one depth (figures where colour cannot mean depth): sky blue for
# the high-rho / low-lam feature, reddish purple for the high-lam / low-rho one.
FEATURE_COLOURS = {"rho": "#56B4E9", "lam": "#CC79A7"}
# Sizes readable when a two-panel figure is shown at README width (~900 px).
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 8.5,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "lines.linewidth": 1.6, "savefig.facecolor": "white"}


def depth_colour(depth: int, depths=None) -> str:
    """Colour of a depth: position in ``depths`` if given, else ``depth - 1``."""
    i = list(depths).index(depth) if depths is not None else int(depth) - 1
    return PALETTE[i % len(PALETTE)]


def shade(colour: str, amount: float) -> tuple:
    """``colour`` blended with white: ``amount = 1`` is the colour itself, ``0`` is white."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(colour))
    return tuple(1.0 - amount * (1.0 - rgb))


def style():
    """A context manager with the package's figure sizes (``with style(): fig = ...``)."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.3, **kwargs):
    """A figure and axes (always a 2-D array) in the package style, without pyplot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def save_figure(fig, path: str, *, dpi: int = 150) -> None:
    """Save via a temporary file and ``os.replace`` (PNG, PDF or SVG by extension)."""
    root, ext = os.path.splitext(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # spec.check_writable creates nothing
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    # finite data near float64's limits (times of 1e300) overflow inside matplotlib's log-axis
    # transforms while it draws; that is no fault of the data, so no warning reaches the user
    with np.errstate(over="ignore", under="ignore"):
        fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)
