"""What the figure groups share: the objectives' colours and line styles, a short training
run in gradient-flow time, log ticks as plain numbers, legend handles."""

from __future__ import annotations

import numpy as np

from .._style import OBJECTIVE_LABEL, OBJECTIVE_STYLE, depth_colour

OBJECTIVE_COLOUR = {"jepa": "#0072B2", "mae": "#D55E00"}
OBJECTIVES = ("jepa", "mae")


def _ls(objective):
    return OBJECTIVE_STYLE[objective]["linestyle"]


def _train(objective, depth, lam, rho, eps, t_end, *, lr, max_steps=None, records=800, grid="log", **kwargs):
    """Train a network (``jepa_dynamics.training.train``) for gradient-flow time ``t_end`` with plain
    gradient descent at learning rate ``lr``, raised to ``t_end / max_steps`` if it would
    take more than ``max_steps`` steps."""
    from ..training import train

    if max_steps is not None:
        lr = max(lr, t_end / max_steps)
    steps = int(np.ceil(t_end / lr))
    config = train.TrainConfig(objective=objective, depth=depth, lam=tuple(np.asarray(lam, float)),
                               rho=tuple(np.asarray(rho, float)), eps=eps, lr=lr, steps=steps,
                               records=min(records, steps), grid=grid, optimizer="sgd", **kwargs)
    return train.train(config)


def _plain_ticks(ax, which="both"):
    """Log-axis tick labels as plain numbers (``0.5, 1, 2``) instead of ``5 x 10^-1``."""
    from matplotlib.ticker import FuncFormatter

    def label(v, _):
        mantissa = v / 10 ** np.floor(np.log10(v)) if v > 0 else 0
        return f"{v:g}" if np.round(mantissa, 6) in (1, 2, 3, 5) else ""

    fmt = FuncFormatter(label)
    for axis in ((ax.xaxis, ax.yaxis) if which == "both" else (ax.xaxis,) if which == "x" else (ax.yaxis,)):
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(fmt)


def _legend_handles(items):
    """Legend entries from ``(label, line kwargs)`` pairs (no data drawn)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], **kw, label=label) for label, kw in items]


def _depth_handles(depths):
    return _legend_handles([(f"L = {d}", dict(color=depth_colour(d, depths), lw=2.5)) for d in depths])


def _objective_handles(colour="0.3"):
    return _legend_handles([(OBJECTIVE_LABEL[o], dict(color=colour, linestyle=_ls(o))) for o in OBJECTIVES])


def _nonorth(m):
    from ..theory.modes import nonorthogonality

    return nonorthogonality(m.q)

