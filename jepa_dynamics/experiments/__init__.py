"""Experiments built from the engines: sweeps of critical times, the matrix run and its study.

Floor 6. May import ``realdata``, ``training``, ``engines``, ``records``, ``theory``.

* :mod:`~jepa_dynamics.experiments.sweep`: Cartesian sweeps streamed to CSV (resumable), trajectories;
* :mod:`~jepa_dynamics.experiments.matrix_run`: the ``matrix`` command's run for any covariance;
* :mod:`~jepa_dynamics.experiments.matrix_study`: the study of the full-matrix flow against the
  per-feature theory;
* :mod:`~jepa_dynamics.experiments.families`: JEPA, MAE, Barlow Twins and VICReg side by side on the same
  diagonal data (order of learning and fixed points, theory and trained networks).
"""
