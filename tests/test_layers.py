"""The one-way rule: each layer of the package imports only the layers below it.

The layers, bottom up (docs/architecture.md): the private base modules (``_jax``, ``_version``,
``_style``), ``theory``, ``records``, ``engines``, ``training``, ``realdata``, ``experiments``,
``figures``, ``api``, ``cli``; the top ``__init__``/``__main__`` may import any.  The imports are
read with ``ast`` (module level and inside functions alike), so a lazy import up the stack is
caught too.
"""

import ast
import pathlib
import re
import shutil

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "jepa_dynamics"
BASE = ("_jax", "_version", "_style")
LAYERS = ("theory", "records", "engines", "training", "realdata", "experiments", "figures", "api", "cli")
FLOOR = {**{name: 0 for name in BASE}, **{name: i + 1 for i, name in enumerate(LAYERS)}, "": len(LAYERS) + 1}


def _module(path: pathlib.Path, root: pathlib.Path) -> list:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: pathlib.Path, root: pathlib.Path):
    """``(line, absolute target parts)`` of every import of the package in ``path``."""
    parts = _module(path, root)
    package = parts if path.name == "__init__.py" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith(root.name):
                    continue
                base = node.module.split(".")[1:]
            else:
                base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            if node.module is None or node.level and not node.module:
                for alias in node.names:  # from . import a, b: each name may be a module
                    yield node.lineno, base + [alias.name]
            else:
                yield node.lineno, base
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    yield node.lineno, alias.name.split(".")[1:]


def _layer(parts) -> str:
    """The layer of a module given as parts under the package ('' for the top)."""
    return parts[0] if parts and parts[0] in FLOOR else ""


def violations(root: pathlib.Path = PACKAGE) -> list:
    """Every upward import (``file:line: layer imports higher layer``) and every cycle between
    layers; empty when the rule holds."""
    found, edges = [], {}
    for path in sorted(root.rglob("*.py")):
        source = _layer(_module(path, root))
        for line, target in _imports(path, root):
            dest = _layer(target)
            if dest == source or (dest == "" and not target):
                if dest == "" and source != "":
                    found.append(f"{path.relative_to(root)}:{line}: {source} imports the top package")
                continue
            edges.setdefault(source, set()).add(dest)
            if FLOOR[dest] > FLOOR[source] or (FLOOR[dest] == FLOOR[source] and source != ""):
                found.append(f"{path.relative_to(root)}:{line}: {source or 'top'} (floor {FLOOR[source]}) imports "
                             f"{dest or 'top'} (floor {FLOOR[dest]})")
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append("cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_layers_import_only_downwards():
    assert violations() == []


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        parts = _module(path, PACKAGE)
        assert not parts or parts[0] in FLOOR or parts == ["__main__"], path


@pytest.mark.parametrize("layer, planted", [
    ("theory", "from ..training import models\n"),          # a lazy-looking upward import is still upward
    ("engines", "    from ..figures import commands\n"),
    ("records", "from .. import api\n"),
])
@pytest.mark.slow
def test_a_planted_upward_import_is_caught(tmp_path, layer, planted):
    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / layer / "__init__.py"
    text = target.read_text()
    if planted.startswith(" "):
        planted = "def _planted():\n" + planted
    target.write_text(text + "\n" + planted)
    found = violations(copy)
    assert len(found) >= 1 and all(f"{layer}/__init__.py" in f or f.startswith("cycle") for f in found), found


def test_a_planted_cycle_is_caught(tmp_path):
    """training imports realdata while realdata imports training: upward, and a cycle."""
    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "training" / "__init__.py").write_text((copy / "training" / "__init__.py").read_text()
                                                   + "\nfrom ..realdata import views\n")
    found = violations(copy)
    assert any(f.startswith("cycle: realdata -> training -> realdata") or f.startswith("cycle: training")
               for f in found), found


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_says_its_floor(layer):
    """Each layer's docstring names its floor, as the table here does (one rule, stated twice)."""
    doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())) or ""
    m = re.search(r"Floor (\d+)", doc)
    assert m, f"{layer}/__init__.py: the docstring names no floor"
    assert int(m.group(1)) == FLOOR[layer], layer
