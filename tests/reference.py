"""Independent reference computations shared by the tests.

Everything here is written out from docs/theory.md section 2 by hand (not imported from the
package), so tests that compare the package against it compare two separate computations.
"""

from __future__ import annotations

import math

from scipy.integrate import quad

OBJECTIVES = ("jepa", "mae")


def w_star_by_hand(objective, depth, rho):
    """Fixed point: JEPA ``rho^L``, MAE ``rho^(L/(L+1))``."""
    return rho**depth if objective == "jepa" else rho ** (depth / (depth + 1))


def rhs_by_hand(objective, depth, lam, rho, w):
    """``dw/dt = L (lam w^p - sigma2 w^3)``, ``p = 3 - 1/L`` (JEPA) or ``2 - 1/L`` (MAE)."""
    p = (3.0 if objective == "jepa" else 2.0) - 1.0 / depth
    return depth * (lam * w**p - lam / rho * w**3)


def quad_time(objective, depth, lam, rho, eps, w):
    """Time from ``w(0) = eps`` to ``w`` by scipy quadrature of ``dt = dz / (dz/dt)``, ``z = ln w``."""
    val, _ = quad(lambda z: math.exp(z) / rhs_by_hand(objective, depth, lam, rho, math.exp(z)),
                  math.log(eps), math.log(w), epsabs=0.0, epsrel=1e-13, limit=500)
    return val


def quad_critical_time(objective, depth, lam, rho, eps, fraction=0.5):
    """``t_star`` by quadrature: the time to reach ``fraction * w_star``."""
    return quad_time(objective, depth, lam, rho, eps, fraction * w_star_by_hand(objective, depth, rho))
