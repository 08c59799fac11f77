"""The per-feature theory: validated parameters and every prediction in closed form or by quadrature.

Floor 1 of the package. It may import only the private base modules (``jepa_dynamics._jax``);
nothing here imports a higher layer.

* :mod:`~jepa_dynamics.theory.spec`: validation of ``lam``, ``rho``, ``depth``, ``eps``, ``fraction``
  (:class:`Problem`, :class:`SpecError`);
* :mod:`~jepa_dynamics.theory.balanced`: the balanced closed forms (docs/theory.md sections 2-5);
* :mod:`~jepa_dynamics.theory.aligned`: any aligned init, EMA targets, weight decay, the GD map's
  predictions (docs/theory.md section 9); :mod:`~jepa_dynamics.theory.gd`: the exact
  gradient-descent map;
* :mod:`~jepa_dynamics.theory.modes`: the modes of ``(sym(Sxy), Sxx)`` for any covariance;
* :mod:`~jepa_dynamics.theory.joint`: Barlow Twins and VICReg, one encoder and no predictor
  (docs/theory.md section 16).

The balanced closed forms are re-exported here, so ``from jepa_dynamics import theory;
theory.critical_time(...)`` reads as the maths does.
"""

from .balanced import *  # noqa: F401,F403
from .balanced import __all__ as _balanced_all
from .spec import Problem, SpecError, fixed_point  # noqa: F401

__all__ = [*_balanced_all, "Problem", "SpecError"]
