"""jepa-dynamics: training dynamics of JEPA vs MAE with deep linear and MLP encoders.

MAE learns features in the order of their covariance ``lam``; JEPA in the order of their
regression coefficient ``rho``, more strongly the deeper the encoder.  The maths:
docs/theory.md; the layers: docs/architecture.md.

One function per command (the ``jepa-dynamics`` CLI is a thin layer over them; each takes the
command's flags as keywords of the same names and defaults and writes the same files):

* :func:`sweep` -- critical times over a grid of ``objective x depth x lam x rho x eps``;
* :func:`simulate` -- trajectories ``w(t)`` over such a grid;
* :func:`train` -- one deep linear or MLP encoder trained and held against the theory;
* :func:`train_grid` -- grids of deep linear networks in one vmapped, sharded program;
* :func:`matrix` -- the full-matrix gradient flow for any covariance;
* :func:`spectrum` -- modes of two views of real data and their predicted orders;
* :func:`predict` -- the per-feature theory for any aligned init, EMA, weight decay and lr.

The balanced closed forms in float64 NumPy: :func:`critical_time`, :func:`critical_time_asymptotic`,
:func:`time_to`, :func:`trajectory`, :func:`fixed_point`; validated parameters: :class:`Problem`
(bad input raises :class:`SpecError`, a ``ValueError`` naming the parameter).

Layers, each a sub-package that imports only the ones below it: ``theory`` < ``records`` <
``engines`` < ``training`` < ``realdata`` < ``experiments`` < ``figures`` < ``api`` < ``cli``.
Importing the package loads NumPy and SciPy only; JAX and matplotlib load when a function that
needs them runs.

>>> import jepa_dynamics as jd
>>> round(float(jd.critical_time("jepa", 1, lam=1.0, rho=0.5, eps=1e-3)), 1)  # ~ 1 / (lam eps) for small eps
1008.4
"""

from ._version import __version__
from . import theory
from .api import (MatrixRun, Prediction, SimulateResult, SpectrumRun, SweepResult, TrainGrid, TrainRun, matrix,
                  predict, simulate, spectrum, sweep, train, train_grid)
from .theory import spec
from .theory.balanced import critical_time, critical_time_asymptotic, time_to, trajectory
from .theory.spec import Problem, SpecError, fixed_point

__all__ = [
    "__version__",
    # one function per command
    "sweep", "simulate", "train", "train_grid", "matrix", "spectrum", "predict",
    "SweepResult", "SimulateResult", "TrainRun", "TrainGrid", "MatrixRun", "SpectrumRun", "Prediction",
    # the balanced closed forms and validated parameters
    "critical_time", "critical_time_asymptotic", "time_to", "trajectory", "fixed_point", "Problem", "SpecError",
    "theory", "spec",
]
