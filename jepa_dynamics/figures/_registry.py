"""The registry of figure groups and their rendering to files (``jepa-dynamics figures``)."""

from __future__ import annotations

import os

from .. import _style as plots, records
from ..theory import spec
from ._critical_times import critical_times
from ._families import families
from ._generative_models import generative_models
from ._linear_probe import linear_probe
from ._matrix_study import matrix_study
from ._mlp_heatmaps import mlp_heatmaps
from ._ode_dynamics import ode_dynamics
from ._order_inversion import order_inversion
from ._random_init import random_init
from ._real_data import real_data


def _beyond_balanced(fast: bool = False):
    """docs/theory.md section 9: collapse map, EMA, weight decay, GD vs GF (:mod:`jepa_dynamics.figures.beyond`)."""
    from .beyond import beyond_balanced

    return beyond_balanced(fast=fast)


FIGURES = {
    "ode_dynamics": ode_dynamics,
    "critical_times": critical_times,
    "order_inversion": order_inversion,
    "mlp_heatmaps": mlp_heatmaps,
    "generative_models": generative_models,
    "linear_probe": linear_probe,
    "matrix_study": matrix_study,
    "real_data": real_data,
    "beyond_balanced": _beyond_balanced,  # jepa_dynamics.figures.beyond
    "random_init": random_init,
    "families": families,
}


def check_names(names) -> list:
    """Validate figure names (``None`` = all, in :data:`FIGURES` order)."""
    if names is None:
        return list(FIGURES)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in FIGURES:
            raise spec.SpecError("only", f"unknown figure {name!r} (choose from {', '.join(FIGURES)})")
    return names


def render(names=None, out_dir: str = "figures", *, fast: bool = False, formats=("png", "pdf"), progress=None,
           dpi: int = 150) -> list:
    """Build each named figure and write ``out_dir/NAME.<format>`` for every format
    (atomically, via :func:`jepa_dynamics._style.save_figure`).  Returns the paths written.
    A tqdm bar over the figures goes to stderr (``progress=None``: only on a terminal)."""
    names = check_names(names)
    for fmt in formats:
        spec.check_choice(fmt, ("png", "pdf", "svg"), "format")
    spec.check_writable_dir(out_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    bar = records.progress_bar(len(names), enabled=progress, desc="figures", unit="figure")
    written, done = [], []
    try:
        for name in names:
            bar.set_postfix_str(name)
            fig = FIGURES[name](fast=fast)
            for fmt in formats:
                path = os.path.join(out_dir, f"{name}.{fmt}")
                plots.save_figure(fig, path, dpi=dpi)
                written.append(path)
            done.append(name)
            bar.update(1)
    except KeyboardInterrupt:
        left = [n for n in names if n not in done]
        kept = ", ".join(done) if done else "none"
        raise KeyboardInterrupt(f"interrupted: finished figures kept in {out_dir} ({kept}); "
                                f"rerun with --only {','.join(left)}") from None
    finally:
        bar.close()
    return written
