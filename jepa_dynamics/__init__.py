"""jepa-dynamics: training dynamics of JEPA vs MAE with deep linear and MLP encoders.

The NumPy closed forms (:mod:`~jepa_dynamics.theory`) and validation
(:mod:`~jepa_dynamics.spec`) import without JAX; the ODE engine
(``jepa_dynamics.ode``), training and figure modules import JAX when first used.
"""

__version__ = "0.1.0"

from . import spec, theory  # noqa: E402
from .spec import Problem, SpecError, fixed_point  # noqa: E402
from .theory import critical_time, critical_time_asymptotic, time_to, trajectory  # noqa: E402

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
