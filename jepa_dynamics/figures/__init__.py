r"""The paper's six figure groups (docs/theory.md section 14) and five beyond it, one function each.

Floor 7. May import ``experiments``, ``realdata``, ``training``, ``engines``, ``records``, ``theory``
and the private base modules (``_style`` above all).

Every function takes ``fast`` (small sizes, for CI and notebooks) and returns a
matplotlib :class:`~matplotlib.figure.Figure` built from the package's API; the
notebooks and ``jepa-dynamics figures`` only call these.  :func:`render` writes
``NAME.png`` (and ``NAME.pdf``) for each name of :data:`FIGURES`.

Style (:mod:`jepa_dynamics._style`): Okabe-Ito colours, depth = colour, JEPA solid and
MAE dashed, time in gradient-flow units (plain gradient descent: ``t = lr * step``).

=================  =====================================================================
name               what it shows
=================  =====================================================================
ode_dynamics       ``w(t)/w*`` from the ODE: ``lam`` varied and ``rho`` varied, JEPA vs MAE,
                   depths 1, 2, 4, time in units of a reference feature's critical time
critical_times     ``t*`` versus ``rho`` and versus ``lam``: exact, ODE, asymptotic, and
                   trained deep linear networks (balanced init, population loss, GD)
order_inversion    two features, ``lam`` up while ``rho`` down: MAE learns them in one order,
                   deep JEPA in the other (theory and trained networks)
mlp_heatmaps       tanh MLP encoders on ``same-trend`` / ``reversed-trend``: per-feature
                   learning progress over training steps, JEPA vs MAE
generative_models  ``static`` (noisy views) and ``dynamic`` (AR(1)) data: which features
                   JEPA and MAE learn first, by depth (theory and trained networks)
linear_probe       linear-probe accuracy over training on encoder checkpoints, for a label
                   of the high-``rho`` features and a control label of the high-``lam`` ones
matrix_study       full-matrix engine on non-commuting data: error of the per-feature theory in the
                   mode basis against mixing / non-orthogonality, trained networks, random init
real_data          digits views: observed vs predicted critical time and order of the modes,
                   JEPA vs MAE by depth, and logistic probes on all / top- / bottom-variance
                   inputs over training
beyond_balanced    JEPA past the paper's assumptions: collapse map under aligned init, t* against
                   the EMA rate, weight-decay survival, GD critical steps against the learning rate
                   (:mod:`jepa_dynamics.figures.beyond`)
random_init        small random init: which features trained JEPA networks keep (P(learned) against
                   ``rho_i / max rho``, by depth; MAE as contrast), the matrix flow from the same init
                   and a predictor from the init alone against the trained fates, minibatch SGD
families           JEPA, MAE, Barlow Twins, VICReg on the same random diagonal data: Spearman of the
                   learning order with ``lam``, ``rho`` and the governing quantity against depth
                   (theory and trained networks), and the fixed points ``w_star``
=================  =====================================================================

Where each group is drawn (in ``jepa_dynamics/figures/``) and which notebook shows it (in ``notebooks/``):

=================  ================================  ===================================
name               module                            notebook
=================  ================================  ===================================
ode_dynamics       ``_ode_dynamics.py``              ``01_ode_dynamics.ipynb``
critical_times     ``_critical_times.py``            ``02_critical_times.ipynb``
order_inversion    ``_order_inversion.py``           ``03_order_inversion.ipynb``
mlp_heatmaps       ``_mlp_heatmaps.py``              ``04_mlp_heatmaps.ipynb``
generative_models  ``_generative_models.py``         ``05_generative_models.ipynb``
linear_probe       ``_linear_probe.py``              ``06_linear_probe.ipynb``
beyond_balanced    ``beyond.py``                     ``07_beyond_balanced.ipynb``
matrix_study       ``_matrix_study.py``              ``08_matrix_study.ipynb``
real_data          ``_real_data.py``                 ``09_real_data.ipynb``
random_init        ``_random_init.py``               ``10_random_init.ipynb``
families           ``_families.py``                  ``11_families.ipynb``
=================  ================================  ===================================

The registry (:data:`FIGURES`, :func:`check_names`, :func:`render`) is ``_registry.py``; the
helpers several groups share (objective colours and line styles, a short training run in
gradient-flow time, log ticks, legend handles) are ``_common.py``.  The group modules are
private: import the figures from here.  :mod:`jepa_dynamics.figures.commands` holds the plots
of ``sweep --plot`` and ``simulate --plot``.
"""

from ._critical_times import critical_times
from ._families import families
from ._generative_models import generative_models
from ._linear_probe import linear_probe, probe_accuracy
from ._matrix_study import matrix_study
from ._mlp_heatmaps import mlp_heatmaps
from ._ode_dynamics import ode_dynamics
from ._order_inversion import order_inversion
from ._random_init import random_init
from ._real_data import real_data, real_data_runs
from ._registry import FIGURES, check_names, render

__all__ = ["FIGURES", "ode_dynamics", "critical_times", "order_inversion", "mlp_heatmaps", "generative_models",
           "linear_probe", "probe_accuracy", "matrix_study", "real_data", "real_data_runs", "random_init", "families", "render",
           "check_names"]
