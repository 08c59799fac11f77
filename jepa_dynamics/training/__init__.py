"""Real networks trained on synthetic data: data families, models, objectives, the loops.

Floor 4. May import ``engines``, ``records``, ``theory`` (and the private base modules).

* :mod:`~jepa_dynamics.training.data`: the synthetic families with prescribed ``lam``/``rho`` and
  their exact covariances (docs/theory.md section 12);
* :mod:`~jepa_dynamics.training.models`, :mod:`~jepa_dynamics.training.objectives`: deep linear and
  MLP encoders, JEPA (stop-gradient, EMA) and MAE losses;
* :mod:`~jepa_dynamics.training.train`: one run under ``jit`` + ``lax.scan``;
  :mod:`~jepa_dynamics.training.runs`: a run written to a folder, resumed, summarised;
* :mod:`~jepa_dynamics.training.grid`: grids of networks in one vmapped, sharded program;
* :mod:`~jepa_dynamics.training.analysis`: empirical critical times and learning order.
"""
