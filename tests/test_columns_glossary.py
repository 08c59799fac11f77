"""docs/columns.md lists every column of every file each command writes.

Each command runs at tiny sizes through its Python twin into ``tmp_path``; every CSV it writes
(the header after the ``#`` lines) and every NPZ (its keys) is read back, and each column must
be a row of the glossary's table under that file's section.  A new column without a glossary
entry fails here.  Also: the deprecated ``train --ema TAU`` says so once and trains the run of
``--ema-rate (1 - TAU) / lr``.
"""

import os
import re

import numpy as np
import pytest

import jepa_dynamics
from jepa_dynamics import cli

GLOSSARY = os.path.join(os.path.dirname(__file__), "..", "docs", "columns.md")
QUIET = dict(report=lambda message: None)


def _sections() -> dict:
    """``{heading: text}`` for every ``###`` section of docs/columns.md."""
    text = open(GLOSSARY, encoding="utf-8").read()
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i].startswith("### ")}


def _csv_columns(path) -> list:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                return line.rstrip("\n").split(",")
    raise AssertionError(f"{path}: no header line")


def _npz_keys(path) -> list:
    with np.load(path, allow_pickle=False) as f:
        return list(f.files)


def _run_sweep(d):
    jepa_dynamics.sweep(out=str(d / "s.csv"), depth="1,2", lam="1", rho="0.4,0.8", **QUIET)
    return {"sweep: `--out` CSV": d / "s.csv"}


def _run_simulate(d):
    kw = dict(objective="jepa", depth="2", lam="1", rho="0.5", num_times=8)
    jepa_dynamics.simulate(out=str(d / "w.csv"), **kw)
    jepa_dynamics.simulate(out=str(d / "w.npz"), **kw)
    return {"simulate: `--out` CSV": d / "w.csv", "simulate: `--out` NPZ": d / "w.npz"}


def _run_train(d):
    jepa_dynamics.train(depth="2", lam="1,2", rho="0.5,0.8", lr="0.05", steps="300", records="30",
                        out=str(d / "run"), progress=False, **QUIET)
    return {"train: `DIR/responses.csv`": d / "run" / "responses.csv",
            "train: `DIR/summary.csv`": d / "run" / "summary.csv"}


def _run_train_grid(d):
    jepa_dynamics.train_grid(depth="1,2", lam="1,2", rho="0.5,0.8", lr="0.05", steps="300", ema_rate="inf,2",
                             out=str(d / "grid"), progress=False, **QUIET)
    return {"train-grid: `DIR/summary.csv`": d / "grid" / "summary.csv"}


def _run_matrix(d):
    jepa_dynamics.matrix(objective="jepa", depth="2", dist="rotated", dim="3", num_times="40", out=str(d / "m"),
                         progress=False)
    return {f"matrix: `DIR/{n}`": d / "m" / n for n in ("summary.csv", "responses.csv", "end_to_end.npz")}


def _run_spectrum(d):
    jepa_dynamics.spectrum(dataset="digits", n="2000", depth="1", eps="0.01", train=True, objective="mae",
                           train_modes="3", records="40", probe=True, out=str(d / "spec"), progress=False)
    out = d / "spec"
    return {"spectrum: `DIR/modes.csv`": out / "modes.csv", "spectrum: `DIR/covariances.npz`": out / "covariances.npz",
            "spectrum --train: `DIR/training.csv`": out / "training.csv",
            "spectrum --train: `DIR/orders.csv`": out / "orders.csv",
            "spectrum --train: `DIR/responses.csv`": out / "responses.csv",
            "spectrum --probe: `DIR/probe.csv`": out / "probe.csv"}


COMMANDS = {"sweep": _run_sweep, "simulate": _run_simulate, "train": _run_train, "train-grid": _run_train_grid,
            "matrix": _run_matrix, "spectrum": _run_spectrum}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.slow
def test_every_column_has_a_glossary_entry(tmp_path, command):
    files = COMMANDS[command](tmp_path)
    sections = _sections()
    written = {str(p) for p in tmp_path.rglob("*") if p.suffix in (".csv", ".npz")}
    assert written == {str(p) for p in files.values()}, "a file this test does not know: add it and its section"
    for heading, path in files.items():
        section = sections.get(f"### {heading}")
        assert section is not None, f"docs/columns.md has no section '### {heading}'"
        names = _npz_keys(path) if str(path).endswith(".npz") else _csv_columns(path)
        assert names, path
        missing = [n for n in names if f"| `{n}` |" not in section]
        assert not missing, f"{heading}: columns without a glossary entry: {missing}"


def test_glossary_states_the_vocabulary():
    text = open(GLOSSARY, encoding="utf-8").read()
    assert "## Vocabulary" in text
    for phrase in ("KAPPA = (1 - TAU) / lr", "counting from 0", "`true` / `false`", "eps = 1e-3", "t = lr * step"):
        assert phrase in text, phrase


def _summary_rows(folder):
    with open(os.path.join(folder, "summary.csv"), encoding="utf-8") as f:
        return [ln for ln in f if not ln.startswith("#")]


@pytest.mark.slow
def test_deprecated_ema_says_so_once_and_converts(tmp_path, capsys):
    base = ["train", "--lam", "1,0.6", "--rho", "0.9,0.5", "--lr", "0.1", "--steps", "200", "--records", "10",
            "--no-progress"]
    assert cli.main([*base, "--ema", "0.5", "--out", str(tmp_path / "old")]) == 0
    err = capsys.readouterr().err
    line = ("jepa-dynamics: --ema TAU is deprecated (goes in the next release); use --ema-rate KAPPA, "
            "KAPPA = (1 - TAU) / lr")
    assert err.splitlines().count(line) == 1, err
    assert cli.main([*base, "--ema-rate", "5", "--out", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert _summary_rows(tmp_path / "old") == _summary_rows(tmp_path / "new")


def test_ema_rate_above_one_over_lr_is_one_line(tmp_path, capsys):
    assert cli.main(["train", "--lam", "1", "--rho", "0.9", "--lr", "0.1", "--steps", "10", "--ema-rate", "20",
                     "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ema-rate: kappa * lr = 20 * 0.1 = 2 is above 1" in err
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")
