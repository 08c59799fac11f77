"""The API reference is generated from the docstrings (pdoc), and every cross-reference in them
resolves: a docstring that names a function, class or module that does not exist fails here.
The docstrings' examples run as doctests (``--doctest-modules`` in pyproject.toml)."""

import ast
import importlib
import pathlib
import re
import warnings

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "jepa_dynamics"
LAYERS = ("theory", "records", "engines", "training", "realdata", "experiments", "figures", "api", "cli")
ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj):`~?(jepa_dynamics(?:\.\w+)+)`")


def _docstrings(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield doc


def _resolve(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_docstring_reference_resolves():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for doc in _docstrings(path):
            for target in ROLE.findall(doc):
                if not _resolve(target):
                    broken.append(f"{path.relative_to(PACKAGE.parent)}: {target}")
    assert broken == []


@pytest.mark.slow
def test_api_reference_builds_without_a_warning(tmp_path):
    pdoc = pytest.importorskip("pdoc")
    pdoc.render.configure(docformat="restructuredtext")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # theory is in the top package's __all__, so pdoc reaches it from there
        pdoc.pdoc("jepa_dynamics", *(f"jepa_dynamics.{layer}" for layer in LAYERS if layer != "theory"),
                  output_directory=tmp_path)
    assert [str(w.message) for w in caught] == []
    assert (tmp_path / "jepa_dynamics.html").exists()
    for layer in LAYERS:
        assert (tmp_path / "jepa_dynamics" / f"{layer}.html").exists(), layer
    index = (tmp_path / "jepa_dynamics.html").read_text()
    for name in ("sweep", "simulate", "train", "train_grid", "matrix", "spectrum", "predict"):
        assert f'id="{name}"' in index, name
