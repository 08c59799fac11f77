"""Notebooks count as slow tests: ``pytest -m "not slow"`` is the quick subset (no notebooks),
``pytest`` (what CI runs) runs everything, notebooks included."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.path).endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
