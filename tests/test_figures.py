"""The figures command in fast mode: a PNG and a PDF per figure group, and one-line errors."""

import os
import subprocess
import sys

import pytest

from jepa_dynamics import figures
from jepa_dynamics.cli import main

NAMES = ("ode_dynamics", "critical_times", "order_inversion", "mlp_heatmaps", "generative_models", "linear_probe",
         "matrix_study", "real_data",
         "beyond_balanced", "random_init", "families")


def test_registry_names():
    assert tuple(figures.FIGURES) == NAMES


# every group is drawn in fast mode by its notebook (notebooks/, run by the full suite); the command's
# own path -- the registry, both formats, atomic writes -- is checked here on two quick groups
QUICK = ("ode_dynamics", "order_inversion")


@pytest.mark.slow
def test_figures_fast_writes_png_and_pdf_per_group(tmp_path):
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, "-m", "jepa_dynamics", "figures", "--fast", "--no-progress",
                           "--only", ",".join(QUICK), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == sorted(f"{n}.{e}" for n in QUICK for e in ("png", "pdf"))
    for name in QUICK:
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            assert path.exists(), path
            assert path.stat().st_size > 20_000, path  # a real figure, not an empty canvas
    with open(out / "ode_dynamics.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out) if ".tmp" in p]  # atomic writes leave no temporaries


def test_bad_only_is_one_line_exit_2(capsys, tmp_path):
    assert main(["figures", "--fast", "--only", "ode_dynamics,nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--only: unknown figure 'nope'" in err[0] and "linear_probe" in err[0]


def test_bad_format_and_out(capsys, tmp_path):
    assert main(["figures", "--format", "png,gif", "--out", str(tmp_path)]) == 2
    file = tmp_path / "a_file"
    file.write_text("x")
    assert main(["figures", "--only", "ode_dynamics", "--out", str(file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--format" in err[0] and "--out" in err[1]


def test_probe_accuracy_separates_learned_from_unlearned():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    y = np.sign(x[:, 0])
    noise = 0.05 * rng.normal(size=x.shape)
    strong = x * np.array([1.0, 1.0]) + noise
    weak = x * np.array([1e-3, 1.0]) + noise
    assert figures.probe_accuracy(strong[:2000], y[:2000], strong[2000:], y[2000:]) > 0.95
    assert figures.probe_accuracy(weak[:2000], y[:2000], weak[2000:], y[2000:]) < 0.6


def test_every_group_is_drawn_by_a_notebook():
    """The full suite runs every notebook (fast mode): each registered group must be called by one, so
    that every group's fast render is exercised (the command test above draws only two)."""
    import glob
    import json

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sources = []
    for path in sorted(glob.glob(os.path.join(here, "notebooks", "*.ipynb"))):
        with open(path) as f:
            cells = json.load(f)["cells"]
        sources.append("".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
    missing = [n for n in figures.FIGURES if not any(f"figures.{n}(" in s or f"{n}(fast" in s for s in sources)]
    assert not missing, missing
