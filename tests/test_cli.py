"""The `sweep` and `simulate` commands: the CSV contract, agreement with an
independent quadrature, clean failures, resumption after SIGINT, identical reruns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jepa_dynamics import records
from jepa_dynamics.cli import main
from reference import quad_critical_time

SWEEP_COLUMNS = ["objective", "depth", "lam", "rho", "sigma2", "eps", "fraction", "w_star",
                 "t_star", "t_star_asymptotic",
                 # beyond balanced init (docs/theory.md section 9): dimensions and results, appended after the first ten
                 "predictor_init", "ema_rate", "weight_decay", "lr", "w_inf", "learned", "critical_step"]


def run_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "jepa_dynamics", *args], capture_output=True, text=True,
                          env={**os.environ, "JEPA_DYNAMICS_CACHE": "off"})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_sweep_contract_and_quadrature(tmp_path):
    out = tmp_path / "s.csv"
    argv = ["sweep", "--objective", "jepa,mae", "--depth", "1,3,8", "--lam", "0.37,2.5", "--rho", "0.71,1.3",
            "--eps", "1e-5", "--fraction", "0.35", "--out", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert header[0] == "# jepa-dynamics 0.1.0"
    assert header[1].startswith("# command: jepa-dynamics sweep --objective jepa,mae")
    table = records.read_csv(str(out))
    assert list(table) == SWEEP_COLUMNS
    assert len(table["depth"]) == 2 * 3 * 2 * 2
    # Cartesian order: objective outermost, rho fastest
    assert list(table["objective"][:12]) == ["jepa"] * 12
    assert list(table["rho"][:2]) == [0.71, 1.3]
    for i in range(len(table["depth"])):
        obj, d, lam, rho = table["objective"][i], int(table["depth"][i]), table["lam"][i], table["rho"][i]
        w_star = rho**d if obj == "jepa" else rho ** (d / (d + 1))
        assert table["w_star"][i] == pytest.approx(w_star, rel=1e-12)
        assert table["sigma2"][i] == pytest.approx(lam / rho, rel=1e-15)
        ref = quad_critical_time(obj, d, lam, rho, 1e-5, 0.35)
        assert table["t_star"][i] == pytest.approx(ref, rel=1e-9)


@pytest.mark.slow
def test_sweep_ode_agrees_with_exact(tmp_path):
    exact, ode = tmp_path / "e.csv", tmp_path / "o.csv"
    grid = ["--depth", "1,2,5,8", "--lam", "0.2,3", "--rho", "0.6,0.95,1.7", "--eps", "1e-6"]
    assert main(["sweep", *grid, "--out", str(exact)]) == 0
    assert main(["sweep", *grid, "--method", "ode", "--out", str(ode)]) == 0
    a, b = records.read_csv(str(exact)), records.read_csv(str(ode))
    np.testing.assert_allclose(b["t_star"], a["t_star"], rtol=1e-6)
    np.testing.assert_array_equal(a["t_star_asymptotic"], b["t_star_asymptotic"])


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--depth", "0"], "--depth"),
        (["--depth", "2.5"], "--depth"),
        (["--lam", "-1"], "--lam"),
        (["--lam", "0"], "--lam"),
        (["--rho", "0"], "--rho"),
        (["--rho", "inf"], "--rho"),
        (["--rho", "0.5,nan"], "--rho"),
        (["--eps", "0.2"], "--eps"),
        (["--eps", "-1e-3"], "--eps"),
        (["--fraction", "1.5"], "--fraction"),
        (["--objective", "jepa,byol"], "--objective"),
        (["--method", "rk45"], "--method"),
        (["--dpth", "2"], "--dpth"),
        (["--lam", "1,,2"], "--lam"),
        (["--lam", "abc"], "--lam"),
        (["--eps", "1e-300"], "--eps"),  # t_star would overflow float64
        (["--eps", "1e-300", "--method", "ode"], "--eps"),
    ],
)
def test_sweep_bad_input_is_one_line(tmp_path, capsys, flags, needle):
    status = main(["sweep", *flags, "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_eps_message_says_how_small(tmp_path, capsys):
    assert main(["sweep", "--objective", "jepa", "--depth", "4", "--rho", "0.5", "--eps", "0.05",
                 "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "must be below fraction * w_star = 0.03125" in err


def test_empty_output_name(capsys):
    assert main(["sweep", "--out", ""]) == 2
    assert capsys.readouterr().err == "jepa-dynamics sweep: error: --out: a file name is required\n"


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["sweep", "--out", str(blocker / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jepa-dynamics sweep: error: --out: cannot write") and err.count("\n") == 1


def test_cli_subprocess_errors_have_no_traceback(tmp_path):
    proc = run_cli("sweep", "--rho", "-0.5", "--out", str(tmp_path / "x.csv"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "jepa-dynamics sweep: error: --rho: must be > 0, got -0.5"
    proc = run_cli("swep", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_identical_reruns(tmp_path):
    args = ["sweep", "--depth", "1,2", "--lam", "0.5,1", "--rho", "0.4,0.8", "--eps", "1e-4"]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    strip = lambda p: [ln for ln in p.read_text().splitlines() if not ln.startswith("# command")]
    assert strip(a) == strip(b)


def test_resume_after_torn_write(tmp_path):
    """A file cut mid-row (as after a kill) resumes to exactly the full table."""
    args = ["sweep", "--depth", "1,2,3", "--lam", "0.5,1,2", "--rho", "0.4,0.8,1.2", "--eps", "1e-5"]
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    assert main([*args, "--out", str(full)]) == 0
    data = full.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 7  # a torn row
    part.write_bytes(data[:cut])
    assert main([*args, "--resume", "--out", str(part)]) == 0
    assert part.read_bytes() == data


def test_resume_refuses_other_parameters(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["sweep", "--depth", "1", "--out", str(out)]) == 0
    assert main(["sweep", "--depth", "2", "--resume", "--out", str(out)]) == 2
    assert "other parameters" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_then_resume_gives_the_uninterrupted_rows(tmp_path):
    """Interrupt a multi-block sweep with SIGINT, resume, compare with one run."""
    lam = ",".join(str(x) for x in np.geomspace(0.1, 10, 40))
    rho = ",".join(str(x) for x in np.linspace(0.5, 1.5, 50))
    args = ["sweep", "--method", "ode", "--depth", "1,2,3,4,5,6,7,8", "--lam", lam, "--rho", rho,
            "--eps", "1e-4", "--no-progress"]
    part = tmp_path / "part.csv"
    env = {**os.environ, "JEPA_DYNAMICS_CACHE": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "jepa_dynamics", *args, "--out", str(part)],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some blocks are on disk
        if part.exists() and part.read_text().count("\n") > 7 + 1024:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun with --resume" in err and "Traceback" not in err
    kept = [ln for ln in part.read_text().splitlines() if not ln.startswith("#")]
    assert 1 < len(kept) < 2 * 8 * 40 * 50 + 1
    assert main([*args, "--resume", "--out", str(part)]) == 0
    full = tmp_path / "full.csv"
    assert main([*args, "--out", str(full)]) == 0
    body = lambda p: [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]
    assert body(part) == body(full)


@pytest.mark.slow
def test_simulate_csv_and_npz(tmp_path):
    csv, npz, png = tmp_path / "t.csv", tmp_path / "t.npz", tmp_path / "t.png"
    args = ["simulate", "--objective", "jepa,mae", "--depth", "2", "--lam", "1", "--rho", "0.7", "--eps", "1e-3",
            "--num-times", "50"]
    assert main([*args, "--out", str(csv), "--plot", str(png)]) == 0
    assert main([*args, "--out", str(npz)]) == 0
    table = records.read_csv(str(csv))
    assert len(table["time"]) == 2 * 51
    data = np.load(npz)
    assert data["response"].shape == (2, 51)
    np.testing.assert_allclose(table["response"], data["response"].ravel(), rtol=1e-15)
    # w(0) = eps, monotone rise towards (never past) the fixed point
    assert np.all(data["response"][:, 0] == 1e-3)
    assert np.all(np.diff(data["response"], axis=1) >= 0)
    assert np.all(data["response"] <= data["w_star"][:, None] * (1 + 1e-12))
    assert png.stat().st_size > 10_000


@pytest.mark.slow
def test_simulate_ode_matches_exact(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    args = ["simulate", "--objective", "jepa,mae", "--depth", "1,3", "--lam", "2", "--rho", "0.8",
            "--eps", "1e-4", "--num-times", "40"]
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--method", "ode", "--out", str(b)]) == 0
    np.testing.assert_allclose(np.load(b)["response"], np.load(a)["response"], rtol=1e-6)


@pytest.mark.slow
def test_sweep_plot(tmp_path):
    png = tmp_path / "p.png"
    assert main(["sweep", "--out", str(tmp_path / "s.csv"), "--plot", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["sweep", "--out", str(tmp_path / "s.csv"), "--plot", str(tmp_path / "p.jpg")]) == 2
