"""The package version, in one place (the CSV provenance lines and ``--version`` read it)."""

__version__ = "0.1.0"
