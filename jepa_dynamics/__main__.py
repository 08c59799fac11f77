"""``python -m jepa_dynamics`` is the ``jepa-dynamics`` command."""

from .cli import entry

entry()
