r"""The paper's six figure groups (``theory-spec.md`` section 9) and three beyond it, one function each.

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
                   (issue 12)
real_data          digits views: observed vs predicted critical time and order of the modes,
                   JEPA vs MAE by depth, and logistic probes on all / top- / bottom-variance
                   inputs over training (issue 10)
beyond_balanced    JEPA past the paper's assumptions: collapse map under aligned init, t* against
                   the EMA rate, weight-decay survival, GD critical steps against the learning rate
                   (issue 9; :mod:`jepa_dynamics.figures.beyond`)
=================  =====================================================================
"""

from ._critical_times import critical_times
from ._generative_models import generative_models
from ._linear_probe import linear_probe, probe_accuracy
from ._matrix_study import matrix_study
from ._mlp_heatmaps import mlp_heatmaps
from ._ode_dynamics import ode_dynamics
from ._order_inversion import order_inversion
from ._real_data import real_data, real_data_runs
from ._registry import FIGURES, check_names, render

__all__ = ["FIGURES", "ode_dynamics", "critical_times", "order_inversion", "mlp_heatmaps", "generative_models",
           "linear_probe", "probe_accuracy", "matrix_study", "real_data", "real_data_runs", "render", "check_names"]
