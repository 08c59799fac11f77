"""The one place where JAX is configured for this package.

The ODE and theory work is float64 (``theory-spec.md``), so importing any module of
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

__all__ = ["jax"]
