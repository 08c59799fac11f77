"""The public API: one function per command, the CLI a thin layer over it.

Each function, called with the flags of a command line as keywords, writes files
byte-identical to that command's (provenance line included); its keyword defaults are the
parser's; ``help(jepa_dynamics)`` lists every one.
"""

import hashlib
import inspect
import os
import pydoc
import shutil

import pytest

import jepa_dynamics
from jepa_dynamics import cli

API = {"sweep": "sweep", "simulate": "simulate", "train": "train", "train-grid": "train_grid", "matrix": "matrix",
       "spectrum": "spectrum"}


def _digests(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


def _as_kwargs(argv):
    """``["--a-b", "1", "--flag"]`` -> ``{"a_b": "1", "flag": True}`` (the flags as keywords)."""
    kwargs, i = {}, 0
    while i < len(argv):
        name = argv[i][2:].replace("-", "_")
        if name == "no_progress":
            kwargs["progress"], i = False, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            kwargs[name], i = argv[i + 1], i + 2
        else:
            kwargs[name], i = True, i + 1
    return kwargs


CASES = [
    ("sweep", ["--out", "{d}/s.csv", "--plot", "{d}/s.png", "--depth", "1,2", "--lam", "1", "--rho", "0.4,0.8"]),
    ("simulate", ["--out", "{d}/w.csv", "--plot", "{d}/w.png", "--objective", "jepa", "--depth", "2", "--lam", "1",
                  "--rho", "0.5", "--num-times", "8"]),
    ("train", ["--depth", "2", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05", "--steps", "300", "--records",
               "30", "--out", "{d}/run", "--no-progress"]),
    ("train-grid", ["--depth", "1,2", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05", "--steps", "300",
                    "--out", "{d}/grid", "--no-progress"]),
    ("matrix", ["--objective", "jepa", "--depth", "2", "--dist", "rotated", "--dim", "3", "--eps", "1e-3",
                "--num-times", "40", "--out", "{d}/m", "--no-progress"]),
    ("spectrum", ["--dataset", "digits", "--n", "2000", "--depth", "1,2", "--out", "{d}/spec", "--no-progress"]),
]


@pytest.mark.parametrize("command, argv", CASES, ids=[c for c, _ in CASES])
@pytest.mark.slow
def test_function_writes_the_command_files(tmp_path, capsys, command, argv):
    work = tmp_path / "work"
    argv = [a.format(d=work) for a in argv]
    work.mkdir()
    assert cli.main([command, *argv]) == 0
    printed = capsys.readouterr().out.split()
    from_cli = _digests(work)
    assert from_cli and all(os.path.exists(p) for p in printed)
    shutil.rmtree(work)
    work.mkdir()
    result = getattr(jepa_dynamics, API[command])(**_as_kwargs(argv), report=lambda m: None) \
        if "report" in inspect.signature(getattr(jepa_dynamics, API[command])).parameters \
        else getattr(jepa_dynamics, API[command])(**_as_kwargs(argv))
    assert _digests(work) == from_cli
    assert sorted(result.files) == sorted(printed)


def test_python_values_reach_the_same_files(tmp_path):
    """Sequences and numbers are the flags' comma text: the files (and their provenance line,
    the twin command line) are the same as for the text."""
    a = jepa_dynamics.sweep(out=str(tmp_path / "a.csv"), depth=[1, 2], lam=1.0, rho=(0.4, 0.8))
    first = open(a.out, "rb").read()
    os.remove(a.out)
    jepa_dynamics.sweep(out=str(tmp_path / "a.csv"), depth="1,2", lam="1.0", rho="0.4,0.8")
    assert open(a.out, "rb").read() == first
    assert b"# command: jepa-dynamics sweep --out " in first and b" --depth 1,2 --lam 1.0 --rho 0.4,0.8\n" in first


def _parser_defaults(command):
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    defaults = {}
    for a in sub._actions:  # as argparse does: the first action of a dest sets its default
        if a.dest != "help":
            defaults.setdefault(a.dest, a.default)
    return defaults, sub


@pytest.mark.parametrize("command", sorted(API))
def test_keywords_are_the_flags_with_their_defaults(command):
    defaults, sub = _parser_defaults(command)
    params = inspect.signature(getattr(jepa_dynamics, API[command])).parameters
    flags = {k for k in defaults}
    assert flags == set(params) - {"command", "report"}
    for name, default in defaults.items():
        p = params[name]
        required = next(a for a in sub._actions if a.dest == name).required
        if required:
            assert p.default is inspect.Parameter.empty, name
        else:
            assert p.default == default or (p.default is False and default is False), (name, p.default, default)


def test_help_lists_every_function():
    text = pydoc.render_doc(jepa_dynamics, renderer=pydoc.plaintext)
    for name in ("sweep", "simulate", "train", "train_grid", "matrix", "spectrum", "predict"):
        assert f"\n    {name}(" in text, name
        assert getattr(jepa_dynamics, name).__doc__


def test_predict_is_the_per_feature_theory():
    """At balanced init, stop-gradient, no decay, lr 0, predict's t* is the closed form's."""
    p = jepa_dynamics.predict("jepa", 2, 1.0, 0.5, 1e-3)
    assert float(p.critical_time) == pytest.approx(float(jepa_dynamics.critical_time("jepa", 2, 1.0, 0.5, 1e-3)),
                                                   rel=1e-6)
