"""jepa-dynamics: training dynamics of JEPA vs MAE with deep linear and MLP encoders.

The NumPy closed forms (:mod:`~jepa_dynamics.theory`) and validation
(:mod:`~jepa_dynamics.spec`) import without JAX; the ODE engine
(``jepa_dynamics.ode``), training and figure modules import JAX when first used.
"""

from ._version import __version__
from . import theory
from .theory import spec
from .theory.spec import Problem, SpecError, fixed_point
from .theory.balanced import critical_time, critical_time_asymptotic, time_to, trajectory

__all__ = [
    "__version__",
    "spec",
    "theory",
    "Problem",
    "SpecError",
    "fixed_point",
    "critical_time",
    "critical_time_asymptotic",
    "time_to",
    "trajectory",
]
