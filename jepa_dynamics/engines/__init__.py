"""Numerical engines: the per-feature ODE engine and the full-matrix gradient flow.

Floor 3. May import ``theory`` and ``records`` (and the private base modules), nothing above.

* :mod:`~jepa_dynamics.engines.ode`: diffrax integration of the per-feature ODEs, vmapped over
  rows, with critical times found by events (docs/theory.md sections 2 and 7);
* :mod:`~jepa_dynamics.engines.matrix`: the gradient flow of the real weight matrices for any
  covariance (docs/theory.md section 10).
"""
