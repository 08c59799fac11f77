"""Hostile cases of the newer commands (train-grid, matrix, spectrum, the sweep's beyond-balanced
axes): each refused command exits 2 with one stderr line naming the real cause, writes nothing
and leaves existing files byte-identical; each accepted one exits 0 without a warning."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from test_hostile import refused as _refused  # the battery's one check of a refused command

from jepa_dynamics import cli

pytestmark = pytest.mark.filterwarnings("error")


MATRIX = ["matrix", "--objective", "jepa", "--depth", "1", "--eps", "1e-3"]


def _bad_npz(folder, kind):
    path = os.path.join(folder, f"{kind}.npz")
    if kind == "members":  # a zip whose members are not .npy data
        with zipfile.ZipFile(path, "w") as z:
            for k in ("sxx", "sxy", "syy"):
                z.writestr(k + ".npy", b"not an array")
    elif kind == "text":
        with open(path, "w") as f:
            f.write("sxx = 1\n")
    elif kind == "folder":
        os.mkdir(path)
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.eye(2))
    return path


@pytest.mark.parametrize("kind, needle", [
    ("members", "sxx in {path} is not .npy array data"),
    ("text", "cannot read {path}: not an .npz (zip) file"),
    ("folder", "{path} is a folder, not an .npz file"),
    ("npy", "cannot read {path}: a single array (.npy), not an .npz"),
])
def test_matrix_names_what_is_wrong_with_the_cov_file(tmp_path, capsys, kind, needle):
    path = _bad_npz(str(tmp_path), kind)
    out = tmp_path / "out"
    _refused(capsys, MATRIX + ["--cov", path, "--out", str(out)], "--cov: " + needle.format(path=path))
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_after_the_command_finished_prints_no_traceback(tmp_path):
    """A SIGINT that arrives once the files are written (during the interpreter's exit, where JAX
    cleans up) is ignored: exit 0, no traceback, the files complete."""
    import signal
    import subprocess
    import sys
    import time

    script = ("import atexit, sys, time\n"
              "atexit.register(lambda: time.sleep(3))  # stands for the exit-time cleanup\n"
              "sys.argv = ['jepa-dynamics'] + sys.argv[1:]\n"
              "from jepa_dynamics.cli import entry\n"
              "entry()\n")
    out = tmp_path / "s.csv"
    proc = subprocess.Popen([sys.executable, "-c", script, "sweep", "--depth", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the command printed its file: it has finished
    assert line.strip() == str(out)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert out.read_text().count("\n") > 5


@pytest.mark.parametrize("extra, needle", [
    (["--model", "mlp"], "--steps: auto follows the gradient-flow theory"),
    (["--optimizer", "adam"], "--steps: auto follows the gradient-flow theory"),
])
@pytest.mark.slow
def test_steps_auto_is_refused_where_the_theory_does_not_describe_the_run(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    _refused(capsys, ["train", "--lam", "1", "--rho", "0.5", "--steps", "auto", *extra, "--out", str(out)], needle)
    assert not out.exists()


@pytest.mark.slow
def test_steps_auto_runs_to_twice_the_latest_critical_time(tmp_path, capsys):
    """The run's last step is ceil(2 x the latest t* / lr), t* from the closed form (balanced init)."""
    import math

    from jepa_dynamics import records, theory

    out = tmp_path / "run"
    assert cli.main(["train", "--depth", "2", "--lam", "1,2", "--rho", "0.5,0.8", "--eps", "0.01", "--lr", "0.05",
                     "--steps", "auto", "--records", "10", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    t_star = theory.critical_time("jepa", 2, [1.0, 2.0], [0.5, 0.8], 0.01)
    steps = records.read_csv(str(out / "responses.csv"))["step"]
    assert int(steps.max()) == math.ceil(2.0 * max(t_star) / 0.05)


# --- Barlow Twins and VICReg (docs/theory.md section 16) in train-grid and matrix ---------------------------

GRID_JOINT = ["train-grid", "--lam", "1,0.6", "--rho", "0.9,0.5", "--steps", "10", "--no-progress"]
MATRIX_JOINT = ["matrix", "--depth", "2", "--dist", "rotated", "--dim", "3", "--no-progress"]


@pytest.mark.parametrize("argv, needle", [
    (GRID_JOINT + ["--objective", "barlow", "--init", "random"], "--init: --objective barlow trains balanced"),
    (GRID_JOINT + ["--objective", "jepa,vicreg", "--init", "balanced,aligned"],
     "--init: --objective vicreg trains balanced"),
    (GRID_JOINT + ["--objective", "jepa,barlow", "--weight-decay", "0,0.01"],
     "--weight-decay: --objective barlow trains balanced from --init balanced, without EMA or weight decay"),
    (GRID_JOINT + ["--objective", "barlow,vicreg", "--ema-rate", "1"],
     "--ema-rate: an EMA target only exists for --objective jepa (barlow, vicreg have no target encoder)"),
    (GRID_JOINT + ["--objective", "mae,barlow", "--ema-rate", "1"],
     "--ema-rate: an EMA target only exists for --objective jepa (mae, barlow have no target encoder)"),
    (GRID_JOINT + ["--objective", "barlow", "--eps", "2"], "--eps: must be below fraction * w_star = 0.5 for "
                                                           "objective=barlow"),
    (GRID_JOINT + ["--objective", "barlow,simclr"], "--objective: unknown value 'simclr'"),
    (MATRIX_JOINT + ["--objective", "vicreg", "--ema-rate", "1"],
     "--ema-rate: an EMA target is a JEPA option (vicreg has no target"),
    (MATRIX_JOINT + ["--objective", "barlow", "--weight-decay", "0.1"],
     "--weight-decay: --objective barlow runs without weight decay"),
    (MATRIX_JOINT + ["--objective", "vicreg", "--eps", "5"], "--t-max: no mode is learned by the per-feature theory"),
    (MATRIX_JOINT + ["--objective", "byol"], "--objective: unknown value 'byol'"),
])
def test_joint_objectives_refuse_what_their_theory_does_not_cover(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    _refused(capsys, argv + ["--out", str(out)], needle)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("objective, init", [("barlow", "aligned"), ("vicreg", "random")])
def test_joint_matrix_runs_from_any_init(tmp_path, capsys, objective, init):
    """The matrix flow is exact from any init (the theory columns are the per-feature reference): aligned and
    random inits run, exit 0, say nothing on stderr and write the four files."""
    out = tmp_path / "out"
    assert cli.main(MATRIX_JOINT + ["--objective", objective, "--init", init, "--eps", "0.01", "--num-times", "20",
                                    "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(os.listdir(out)) == ["end_to_end.npz", "plot.png", "responses.csv", "summary.csv"]


# --- the hostile pass's listed defects that had no test of their own ---------------------------------------

GRID_TINY = ["train-grid", "--lam", "1", "--rho", "0.5", "--steps", "10", "--no-progress"]


def test_train_grid_refuses_an_lr_below_float64s_normal_range(tmp_path, capsys):
    """--lr 1e-320 once exited 0 with a leaked 'overflow encountered in divide' from the too-short note."""
    out = tmp_path / "g"
    _refused(capsys, GRID_TINY + ["--lr", "1e-320", "--out", str(out)], "--lr: must be at least 2.23e-308")
    assert not out.exists()


@pytest.mark.slow
def test_train_grid_with_a_tiny_lr_says_to_raise_it_without_a_warning(tmp_path, capsys):
    """A normal but tiny lr (1e-300): the too-short note needs more steps than --steps takes, says so in one
    line and suggests a larger --lr; no NumPy warning escapes (pytestmark turns one into an error)."""
    assert cli.main(GRID_TINY + ["--lr", "1e-300", "--out", str(tmp_path / "g")]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if "note:" in ln]
    assert len(notes) == 1 and "rerun into a new --out with a larger --lr" in notes[0], err
    assert "Warning" not in err


def test_sweep_refuses_an_lr_whose_map_never_crosses_at_once(tmp_path, capsys):
    """sweep --lr 1e-320 once ran past 60 s after writing its CSV; it is refused before anything is written."""
    import time

    out = tmp_path / "sw.csv"
    t0 = time.perf_counter()
    _refused(capsys, ["sweep", "--lr", "1e-320", "--out", str(out)], "--lr: 1e-320 needs more than 1e308 steps")
    assert time.perf_counter() - t0 < 30 and not out.exists()


@pytest.mark.slow
def test_train_grid_resume_over_a_damaged_summary_names_only_its_own_flags(tmp_path, capsys):
    """train-grid has no --repair: its refusal of a damaged summary says to rerun without --resume, once."""
    from test_hostile import digest

    out = tmp_path / "g"
    argv = ["train-grid", "--lam", "1,0.6", "--rho", "0.9,0.5", "--depth", "1", "--seed", "0,1", "--steps", "200",
            "--lr", "0.05", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    path = out / "summary.csv"
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[-1].split(",")
    cells[-1] = "7\n"  # the last row now claims another network
    path.write_text("".join(lines[:-1] + [",".join(cells)]))
    before = digest(out)
    err = _refused(capsys, argv + ["--resume"], "--resume: cannot resume")
    assert "--repair" not in err and err.count("without --resume") == 1, err
    assert digest(out) == before
