"""The one place where JAX is configured for this package.

The ODE and theory work is float64 (docs/theory.md), so importing any module of
``jepa_dynamics`` that uses JAX (``ode``, ``models``, ``objectives``, ``train``)
turns on ``jax_enable_x64``.  Training code still picks its own dtype explicitly
(float32 for MLPs by default) rather than relying on JAX's default.

JAX's persistent compilation cache is switched on too (in
``$JEPA_DYNAMICS_CACHE`` or ``~/.cache/jepa-dynamics/jax``), so a second run of the
same command skips compilation; set ``JEPA_DYNAMICS_CACHE=off`` to disable it.
"""

from __future__ import annotations

import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)


def _enable_compilation_cache() -> None:
    where = os.environ.get("JEPA_DYNAMICS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "jepa-dynamics", "jax"))
    if where.lower() in ("off", "0", "none", ""):
        return
    try:
        os.makedirs(where, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


_enable_compilation_cache()

def pad_rows(a, size: int) -> np.ndarray:
    """``a`` (1-D) padded to ``size`` rows with copies of its first row: a batch of any length
    runs through a program compiled for ``size`` rows (the padding is sliced off afterwards)."""
    a = np.asarray(a)
    return np.concatenate([a, np.repeat(a[:1], size - a.size)]) if a.size < size else a


MATMUL_PRECISIONS = {"highest": "highest", "tf32": "tensorfloat32"}


def matmul_precision(name: str = "highest"):
    """A context in which float32 matrix products run at ``name`` precision (``highest``: full
    float32; ``tf32``: NVIDIA's TensorFloat-32, ~10 mantissa bits, fast on GPUs).

    JAX's default on NVIDIA GPUs is TF32 (docs/theory.md section 15); the package's
    training runs under ``highest`` unless asked otherwise.  The context is part of ``jit``'s
    cache key, so it scopes the package's own computations only (nothing global).  float64
    products and CPUs are unaffected."""
    return jax.default_matmul_precision(MATMUL_PRECISIONS[name])


__all__ = ["jax", "matmul_precision", "MATMUL_PRECISIONS", "pad_rows"]
