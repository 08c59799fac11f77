"""Notebooks count as slow tests: ``pytest -m "not slow"`` is the quick subset (no notebooks),
``pytest`` (what CI runs) runs everything, notebooks included.  So do the docstring examples that
compile a solver or a trainer of their own (``matrix``, ``train_grid``: about 10 s together); the
commands they show are run by the quick subset's own tests as well."""

import pytest

SLOW_DOCTESTS = ("jepa_dynamics.api._matrix.matrix", "jepa_dynamics.api._train.train_grid")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.path).endswith(".ipynb") or item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)
