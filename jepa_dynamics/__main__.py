"""``python -m jepa_dynamics`` is the ``jepa-dynamics`` command."""

import sys

from .cli import main

sys.exit(main())
