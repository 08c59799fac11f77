"""The public API: one function per command, with the command's flags as keywords.

Floor 8, above every layer that computes: it may import ``figures``, ``experiments``,
``realdata``, ``training``, ``engines``, ``records``, ``theory``.  The CLI (floor 9) is a thin
layer over it: it parses flags and calls these functions, so each function writes files
byte-identical to its command's (the provenance line is the command line the call is the twin
of).  Heavy modules (JAX, matplotlib) are imported when a function runs, not on import.

* :func:`sweep`, :func:`simulate`: the per-feature theory over a grid (``jepa-dynamics sweep``,
  ``simulate``);
* :func:`train`, :func:`train_grid`: real encoders trained and held against the theory
  (``train``, ``train-grid``);
* :func:`matrix`: the full-matrix gradient flow for any covariance (``matrix``);
* :func:`spectrum`: modes of real data and their predicted orders (``spectrum``);
* :func:`predict`: the per-feature theory for any aligned init, EMA, weight decay and lr, in
  memory (what ``sweep`` writes per row).
"""

from ..theory.aligned import Prediction, predict
from ._matrix import MatrixRun, matrix
from ._spectrum import SpectrumRun, spectrum
from ._sweep import SimulateResult, SweepResult, simulate, sweep
from ._train import TrainGrid, TrainRun, train, train_grid

__all__ = ["sweep", "simulate", "train", "train_grid", "matrix", "spectrum", "predict",
           "SweepResult", "SimulateResult", "TrainRun", "TrainGrid", "MatrixRun", "SpectrumRun", "Prediction"]
