"""Real data: two views, their empirical covariances and modes, training on the pairs, probes.

Floor 5. May import ``training``, ``engines``, ``records``, ``theory``.

* :mod:`~jepa_dynamics.realdata.views`: bundled datasets and the pairs of views drawn from them;
* :mod:`~jepa_dynamics.realdata.spectrum`: their modes and the predicted JEPA / MAE orders;
* :mod:`~jepa_dynamics.realdata.realtrain`: encoders trained on the pairs;
* :mod:`~jepa_dynamics.realdata.probes`: linear probes of what was learned.
"""
