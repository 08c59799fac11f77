"""The CLI's resume, refusals and messages, case by case, as the exact commands: resuming and
extending a run, refusing lists where one value is meant, bounded-memory plots, refusing
impossible sizes, repairing damaged sweep files, naming corrupted state, huge integers and
overflows, and keeping every warning off stderr.  Each asserts the exit status, a one-line
message, and that the files are untouched (refused) or complete (accepted).

Commands run in-process (``cli.main``) with every warning turned into an error, so a NumPy or
JAX warning fails the test; the subprocess tests prove the same on the real stderr."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jepa_dynamics import cli, records, theory
from jepa_dynamics.experiments import sweep
from reference import quad_critical_time

pytestmark = pytest.mark.filterwarnings("error")

RUN = ["train", "--lam", "1,0.6", "--rho", "0.9,0.5", "--eps", "1e-2", "--lr", "0.02", "--steps", "20000"]


def digest(folder) -> dict:
    """Every file under ``folder`` -> sha256 of its bytes (a byte-identical check)."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def refused(capsys, argv, *needles):
    """Run ``argv``; it must exit 2 with one line on stderr holding every needle."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"jepa-dynamics {argv[0]}: error: --"), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The reference run: ``train --lam 1,0.6 --rho 0.9,0.5 --eps 1e-2 --lr 0.02 --steps 20000 --out r``."""
    r = str(tmp_path_factory.mktemp("reference_run") / "r")
    assert cli.main([*RUN, "--no-progress", "--out", r]) == 0
    return r


@pytest.fixture
def r(finished_run, tmp_path):
    copy = str(tmp_path / "r")
    shutil.copytree(finished_run, copy)
    return copy


# --- 1. data loss ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_refused_resume_leaves_every_file_byte_identical_and_names_the_flags(r, capsys):
    before = digest(r)
    assert len(records.read_csv(os.path.join(r, "responses.csv"))["step"]) == 2002
    refused(capsys, ["train", "--lam", "1,0.6", "--rho", "0.9,0.5", "--eps", "1e-2", "--lr", "0.01", "--steps",
                     "40000", "--resume", "--out", r],
            "--lr: the run in", "has 0.02, this command 0.01", "--steps: the run in", "has 20000, this command 40000",
            "rerun without --resume")
    assert digest(r) == before


@pytest.mark.slow
def test_resume_with_more_steps_extends_the_finished_run(r, capsys):
    old = Path(r, "responses.csv").read_text().splitlines()
    assert cli.main([*RUN[:-1], "40000", "--resume", "--no-progress", "--out", r]) == 0
    captured = capsys.readouterr()
    assert "extending the run" in captured.err and captured.err.count("\n") == 1
    assert captured.out.splitlines()[0] == os.path.join(r, "responses.csv")
    new = Path(r, "responses.csv").read_text().splitlines()
    # the rows of the 20000-step run are all kept, byte for byte; the provenance names the new command
    old_rows = [ln for ln in old if not ln.startswith("#")]
    new_rows = [ln for ln in new if not ln.startswith("#")]
    assert new_rows[: len(old_rows)] == old_rows
    assert len(new_rows) == len(old_rows) + 2 * 500  # steps 20040, 20080, ..., 40000 for two features
    assert "--steps 40000" in new[1]
    table = records.read_csv(os.path.join(r, "responses.csv"))
    assert table["step"].max() == 40000 and np.all(np.diff(table["step"]) >= 0)
    assert np.all(table["step"][table["step"] > 20000] % 40 == 0)  # the 40000-step run's recording grid
    summary = records.read_csv(os.path.join(r, "summary.csv"))
    # independent: both crossings happen well before step 20000 (t = 400), at the quadrature's t*
    ref = [quad_critical_time("jepa", 1, 1.0, 0.9, 1e-2), quad_critical_time("jepa", 1, 0.6, 0.5, 1e-2)]
    np.testing.assert_allclose(summary["t_star_empirical"], ref, rtol=0.01)
    np.testing.assert_allclose(summary["final_response"], [0.9, 0.5], rtol=1e-9)
    assert "40000" in Path(r, "summary.csv").read_text().splitlines()[1]


@pytest.mark.slow
def test_a_run_cannot_be_shortened(r, capsys):
    before = digest(r)
    refused(capsys, [*RUN[:-1], "10000", "--resume", "--out", r], "has 20000, this command 10000", "shortened")
    assert digest(r) == before


# --- 2. silent truncation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--depth", "1,2"), ("--eps", "1e-2,1e-3")])
def test_train_refuses_lists(tmp_path, capsys, flag, value):
    out = tmp_path / "t"
    refused(capsys, ["train", "--lam", "1", "--rho", "0.5", flag, value, "--steps", "10", "--out", str(out)],
            f"{flag}: train takes one value, got 2 ({value})", "jepa-dynamics train-grid")
    assert not out.exists()


# --- 3. bounded memory (peak RSS in benchmarks/bench_memory.py) ----------------------------------------------

@pytest.mark.slow
def test_sweep_plot_reads_only_the_rows_it_draws(tmp_path, capsys):
    argv = ["sweep", "--depth", "1,2,3", "--lam", "2,0.5,1,4", "--rho", "0.9,0.3,0.6", "--eps", "1e-4,1e-5",
            "--fraction", "0.5,0.3"]
    csv, png = tmp_path / "s.csv", tmp_path / "s.png"
    assert cli.main([*argv, "--out", str(csv), "--plot", str(png)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(csv), str(png)]
    grid = sweep.parse_grid("jepa,mae", "1,2,3", "2,0.5,1,4", "0.9,0.3,0.6", "1e-4,1e-5", "0.5,0.3")
    rows = sweep.plot_rows(grid)
    full = records.read_csv(str(csv))
    # the rows a plot of the whole table draws, selected independently from the full table
    base = (full["eps"] == 1e-5) & (full["fraction"] == 0.3)
    want = base & ((full["lam"] == 2.0) | (full["rho"] == 0.6))
    np.testing.assert_array_equal(rows, np.flatnonzero(want))
    part = records.read_csv_rows(str(csv), rows)
    for name in full:
        np.testing.assert_array_equal(part[name], full[name][want])
    assert png.stat().st_size > 10_000


# --- 4. size guards ---------------------------------------------------------------------------------------------

def test_a_billion_row_grid_is_refused_naming_the_size_and_the_free_disk(tmp_path, capsys):
    lam = ",".join(str(1 + i / 1000) for i in range(1000))
    rho = ",".join(str(0.9 + i / 20000) for i in range(1000))
    eps = ",".join(str(1e-6 * (1 + i / 100)) for i in range(100))
    out = tmp_path / "big.csv"
    argv = ["sweep", "--depth", "1,2,3,4,5", "--lam", lam, "--rho", rho, "--eps", eps, "--out", str(out)]
    err = refused(capsys, argv, "--allow-large: this sweep (1000000000 rows) would write about", " GB to ",
                  "free there", "pass --allow-large")
    free = records.free_disk(str(out)) / 1e9
    assert ("more than the" in err) == (free < 100)
    assert not out.exists()


def test_simulate_a_billion_times_is_refused_before_any_array(tmp_path, capsys):
    out = tmp_path / "x.csv"
    refused(capsys, ["simulate", "--num-times", "1000000000", "--out", str(out)],
            "--allow-large: this simulation (36 problems x 1000000001 times) would", "pass --allow-large")
    assert not out.exists()


# --- 5. resume trusts any line -----------------------------------------------------------------------------

SWEEP = ["sweep", "--depth", "1,2,3", "--lam", "0.5,1,2", "--rho", "0.4,0.8,1.2", "--eps", "1e-5"]


@pytest.fixture(scope="module")
def full_sweep(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "full.csv"
    assert cli.main([*SWEEP, "--out", str(path)]) == 0
    return path.read_bytes()


def _cut(data: bytes, rows: int) -> bytes:
    """The header and the first ``rows`` data rows of a sweep file."""
    lines = data.splitlines(keepends=True)
    head = sum(1 for ln in lines if ln.startswith(b"#")) + 1
    return b"".join(lines[: head + rows])


@pytest.mark.parametrize("case", ["garbage", "duplicates", "random bytes"])
def test_resume_refuses_rows_that_are_not_the_grid_s_and_repair_recomputes_them(tmp_path, capsys, full_sweep,
                                                                                    case):
    part = tmp_path / "s.csv"
    body = _cut(full_sweep, 20)
    if case == "garbage":
        bad = body + b"garbage,row\ngarbage,row\n"
    elif case == "duplicates":
        bad = body + b"".join(body.splitlines(keepends=True)[-3:])
    else:
        bad = body + np.random.default_rng(0).bytes(300) + b"\n"
    part.write_bytes(bad)
    err = refused(capsys, [*SWEEP, "--resume", "--out", str(part)], f"cannot resume {part}: data row 21",
                  "the 20 rows before it are", "--resume --repair", "without --resume")
    assert "codec" not in err
    if case == "random bytes":
        assert "not UTF-8 text" in err
    assert part.read_bytes() == bad  # untouched
    assert cli.main([*SWEEP, "--resume", "--repair", "--out", str(part)]) == 0
    assert "data row 21 was not this sweep's row" in capsys.readouterr().err
    assert part.read_bytes() == full_sweep  # complete: garbage gone, no row lost or repeated


# --- 6. internal exception text -----------------------------------------------------------------------------

def test_resume_with_another_number_of_features_names_lam(r, capsys):
    before = digest(r)
    refused(capsys, ["train", "--lam", "1,0.6,0.8", "--rho", "0.9,0.5,0.7", "--eps", "1e-2", "--lr", "0.02",
                     "--steps", "20000", "--resume", "--out", r],
            "--lam: the run in", "has 1.0,0.6, this command 1.0,0.6,0.8", "--dim:")
    assert digest(r) == before


def test_corrupted_state_is_named(r, capsys):
    state = os.path.join(r, "state.eqx")
    data = Path(state).read_bytes()
    Path(state).write_bytes(data[: len(data) // 2])
    before = digest(r)
    refused(capsys, [*RUN, "--resume", "--out", r], f"{state} cannot be read", "damaged")
    assert digest(r) == before


@pytest.mark.parametrize("flags, needle", [
    (["--steps", "1e20"], "--steps: must be at most 2**53"),
    (["--steps", "10", "--seed", "1e30"], "--seed: must be at most 2**53"),
    (["--steps", "10", "--seed", "18446744073709551617"], "got '18446744073709551617'"),
])
def test_huge_integers_are_named_and_leave_no_folder(tmp_path, capsys, flags, needle):
    out = tmp_path / "t"
    refused(capsys, ["train", "--lam", "1", "--rho", "0.5", *flags, "--out", str(out)], needle)
    assert not out.exists()


def test_simulate_tiny_t_max(tmp_path, capsys):
    refused(capsys, ["simulate", "--t-max", "1e-320", "--out", str(tmp_path / "x.csv")],
            "--t-max: too small for a log time grid", "--spacing linear")
    assert not (tmp_path / "x.csv").exists()


# --- 7. wrong or leaky diagnoses ----------------------------------------------------------------------------

@pytest.mark.parametrize("flags, needle", [
    (["--lam", "1e308", "--rho", "0.3"], "--lam: the context variance sigma2 = lam / rho overflows float64"),
    (["--rho", "1e200"], "--rho: the fixed point w_star = rho^2 overflows float64"),
    (["--depth", "10000", "--rho", "0.9"], "--rho: the fixed point w_star = rho^10000 underflows float64"),
])
def test_overflow_and_underflow_name_the_real_cause(tmp_path, capsys, flags, needle):
    err = refused(capsys, ["sweep", *flags, "--out", str(tmp_path / "x.csv")], needle)
    assert "use a larger eps" not in err and "use a smaller eps" not in err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_no_warning_reaches_the_real_stderr(tmp_path):
    env = {**os.environ, "JEPA_DYNAMICS_CACHE": "off"}
    for flags in (["--lam", "1e308", "--rho", "0.3"], ["--rho", "1e200"], ["--depth", "10000", "--rho", "0.9"]):
        proc = subprocess.run([sys.executable, "-m", "jepa_dynamics", "sweep", *flags, "--out",
                               str(tmp_path / "x.csv")], capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr


# --- 8. stale files and 9. a run that ends before t* ---------------------------------------------------------

@pytest.mark.slow
def test_fresh_run_removes_the_old_run_s_files_and_says_what_was_not_reached(r, capsys):
    os.makedirs(os.path.join(r, "checkpoints"))
    stale = os.path.join(r, "checkpoints", "encoder_step20000.eqx")
    shutil.copy(os.path.join(r, "state.eqx"), stale)
    mine = os.path.join(r, "notes.txt")
    Path(mine).write_text("the user's own file")
    steps = 2000  # t = 40, before both crossings
    assert cli.main([*RUN[:-1], str(steps), "--no-progress", "--out", r]) == 0
    captured = capsys.readouterr()
    assert not os.path.exists(stale) and not os.path.isdir(os.path.join(r, "checkpoints"))
    assert Path(mine).read_text() == "the user's own file"
    assert records.read_csv(os.path.join(r, "responses.csv"))["step"].max() == steps
    assert sorted(captured.out.split()) == sorted(os.path.join(r, n) for n in
                                                  ("responses.csv", "summary.csv", "plot.png", "state.eqx"))
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("jepa-dynamics train: note: the run ended at step 2000")
    need = np.ceil(np.array([quad_critical_time("jepa", 1, 1.0, 0.9, 1e-2),
                             quad_critical_time("jepa", 1, 0.6, 0.5, 1e-2)]) / 0.02)
    assert f"features 0, 1 reached fraction * w_star" in err
    assert f"needs {need[0]:.0f}, {need[1]:.0f} steps" in err, err
    assert np.isnan(records.read_csv(os.path.join(r, "summary.csv"))["t_star_empirical"]).all()


# --- user-friendliness ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_simulate_csv_has_fraction_and_critical_time_and_distinct_plot_styles(tmp_path, capsys):
    csv, png = tmp_path / "t.csv", tmp_path / "t.png"
    argv = ["simulate", "--objective", "jepa,mae", "--depth", "1,2", "--lam", "1", "--rho", "0.3,0.9",
            "--eps", "1e-3", "--fraction", "0.4", "--num-times", "20", "--out", str(csv), "--plot", str(png)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [str(csv), str(png)]
    table = records.read_csv(str(csv))
    assert list(table)[6:9] == ["fraction", "w_star", "t_star"]
    assert np.all(table["fraction"] == 0.4)
    for obj, d, rho in [("jepa", 2, 0.3), ("mae", 1, 0.9)]:
        m = (table["objective"] == obj) & (table["depth"] == d) & (table["rho"] == rho)
        assert table["t_star"][m][0] == pytest.approx(quad_critical_time(obj, d, 1.0, rho, 1e-3, 0.4),
                                                             rel=1e-9)
    from jepa_dynamics.figures.commands import trajectory_figure

    params, ts, w = sweep.simulate(sweep.parse_grid("jepa,mae", "1,2", "1", "0.3,0.9", "1e-3"), num=20)
    for ax in trajectory_figure(params, ts, w).axes:
        looks = [(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines()]
        assert len(looks) == 4 and len(set(looks)) == 4


def test_train_plot_draws_theory_over_markers_and_marks_t_star(finished_run):
    from jepa_dynamics.training import runs, train

    config = train.TrainConfig(lam=(1, 0.6), rho=(0.9, 0.5), eps=1e-2, lr=0.02, steps=20000)
    table = records.read_csv(os.path.join(finished_run, "responses.csv"))
    steps, resp = table["step"][::2].astype(int), table["response"].reshape(-1, 2)
    result = train.TrainResult(config, config.dataset(), steps, 0.02 * steps, resp, None, None, {})
    ax = runs.response_figure(result).axes[0]
    lines = ax.get_lines()
    markers = [ln for ln in lines if ln.get_marker() == "o"]
    theory_lines = [ln for ln in lines if ln.get_linestyle() == "-" and ln.get_marker() in ("None", "", None)]
    assert len(markers) == 2 and len(theory_lines) == 2
    assert min(ln.get_zorder() for ln in theory_lines) > max(ln.get_zorder() for ln in markers)
    crosses = [ln for ln in lines if ln.get_marker() == "x"]
    t_star = [quad_critical_time("jepa", 1, 1.0, 0.9, 1e-2), quad_critical_time("jepa", 1, 0.6, 0.5, 1e-2)]
    np.testing.assert_allclose(sorted(ln.get_xdata()[0] for ln in crosses), t_star, rtol=1e-9)
    # responses over w_star: each theory's t* is where its line crosses fraction = 0.5
    np.testing.assert_allclose(sorted(ln.get_ydata()[0] for ln in crosses), [0.5, 0.5], rtol=1e-12)


@pytest.mark.parametrize("command", ["sweep", "simulate", "train", "figures"])
def test_help_cites_only_the_project_docs(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # undo argparse's wrapping at hyphens
    assert "spec section" not in text and "theory" "-spec" not in text  # the external file's name
    if command == "figures":
        assert "ode_dynamics, critical_times, order_inversion, mlp_heatmaps, generative_models, linear_probe" in text
    if command == "train":
        assert "docs/theory.md" in text and "train-grid" in text


def test_csv_headers_cite_only_the_project_docs(full_sweep):
    head = [ln for ln in full_sweep.decode().splitlines() if ln.startswith("#")]
    assert not any("spec section" in ln or "theory" "-spec" in ln for ln in head)
    assert any("docs/theory.md" in ln for ln in head)


def test_t_star_of_the_reference_run_by_quadrature():
    """The numbers the tests above lean on, checked against the closed form once."""
    for lam, rho in ((1.0, 0.9), (0.6, 0.5)):
        assert theory.critical_time("jepa", 1, lam, rho, 1e-2) == pytest.approx(
            quad_critical_time("jepa", 1, lam, rho, 1e-2), rel=1e-10)
