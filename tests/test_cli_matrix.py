"""``jepa-dynamics matrix``: the files it writes, bad input (one line, exit 2, nothing changed), resume."""

import os

import numpy as np
import pytest
from scipy import linalg

from jepa_dynamics import cli, records
from jepa_dynamics.training import data
from jepa_dynamics.experiments import matrix_run
from reference import quad_critical_time


def _run(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr().err


BASE = ["matrix", "--objective", "jepa", "--depth", "2", "--eps", "0.02", "--num-times", "24", "--no-progress"]


@pytest.mark.slow
def test_contract_on_rotated_data(tmp_path, capsys):
    out = tmp_path / "run"
    status, err = _run(BASE + ["--dist", "rotated", "--dim", "3", "--seed", "4", "--out", str(out)], capsys)
    assert status == 0, err
    assert sorted(os.listdir(out)) == ["end_to_end.npz", "plot.png", "responses.csv", "summary.csv"]
    text = (out / "summary.csv").read_text().splitlines()
    assert text[0].startswith("# jepa-dynamics") and text[1].startswith("# command: jepa-dynamics matrix")
    s = records.read_csv(str(out / "summary.csv"))
    for col in ("feature", "lam", "rho", "sigma2", "t_star_matrix", "t_star_theory", "learned"):
        assert col in s
    # rotated commuting data: the modes are the family's features, and t* is the per-feature one (quadrature)
    lam, rho = np.linspace(1.0, 2.0, 3), np.linspace(0.9, 0.3, 3)
    np.testing.assert_allclose(np.sort(s["rho"]), np.sort(rho), rtol=1e-12)
    want = [quad_critical_time("jepa", 2, lam[np.argmin(abs(rho - r))], r, 0.02) for r in s["rho"]]
    np.testing.assert_allclose(s["t_star_matrix"], want, rtol=1e-6)
    np.testing.assert_allclose(s["t_star_theory"], want, rtol=1e-9)
    assert np.all(s["learned"] == "true")
    r = records.read_csv(str(out / "responses.csv"))
    f = np.load(out / "end_to_end.npz")
    assert f["wbar"].shape == (25, 3, 3) and f["time"].shape == (25,) and f["modes"].shape == (3, 3)
    assert r["time"].size == 25 * 3
    # responses.csv is gamma_i of the saved Wbar: ||Wbar Sxx q_i|| / sigma2_i
    ds = data.make_matrix("rotated", 3, seed=4)
    gam = np.linalg.norm(f["wbar"] @ (ds.sxx @ f["modes"]), axis=1) / f["sigma2"]
    np.testing.assert_allclose(r["response"].reshape(25, 3), gam, rtol=1e-12)


@pytest.mark.slow
def test_cov_file_modes(tmp_path, capsys):
    ds = data.mixed(np.linspace(1.0, 2.0, 3), np.linspace(0.9, 0.3, 3), 0.5, seed=1)
    path = tmp_path / "cov.npz"
    np.savez(path, sxx=ds.sxx, sxy=ds.sxy, syy=ds.syy)
    out = tmp_path / "run"
    status, err = _run(BASE + ["--objective", "mae", "--eps", "0.01", "--cov", str(path), "--out", str(out)], capsys)
    assert status == 0, err
    s = records.read_csv(str(out / "summary.csv"))
    rho = np.sort(linalg.eigvalsh(0.5 * (ds.sxy + ds.sxy.T), ds.sxx))[::-1]
    np.testing.assert_allclose(s["rho"], rho, rtol=1e-10)
    np.testing.assert_allclose(s["lam"] / s["sigma2"], s["rho"], rtol=1e-12)


def _bad_files(tmp):
    good = data.mixed([1.0, 2.0], [0.9, 0.3], 0.5, seed=1)
    files = {}

    def save(name, **arrays):
        files[name] = str(tmp / f"{name}.npz")
        np.savez(files[name], **arrays)

    files["garbage"] = str(tmp / "garbage.npz")
    (tmp / "garbage.npz").write_text("no zip")
    save("missing", sxx=good.sxx, sxy=good.sxy)
    save("shapes", sxx=good.sxx, sxy=np.eye(3), syy=good.syy)
    save("notpd", sxx=np.array([[1.0, 2.0], [2.0, 1.0]]), sxy=good.sxy, syy=good.syy)
    save("asym", sxx=np.array([[1.0, 0.5], [0.0, 1.0]]), sxy=good.sxy, syy=good.syy)
    save("joint", sxx=np.eye(2), sxy=2 * np.eye(2), syy=np.eye(2))
    return files


BAD = [
    (["--cov", "{garbage}"], "--cov: cannot read"),
    (["--cov", "{missing}"], "--cov: .* lacks the array"),
    (["--cov", "{shapes}"], "--cov: sxy must have the shape of sxx"),
    (["--cov", "{notpd}"], "--cov: sxx must be positive definite"),
    (["--cov", "{asym}"], "--cov: sxx must be symmetric"),
    (["--cov", "{joint}"], "--cov: the joint covariance"),
    (["--cov", "{missing}x"], "--cov: no such file"),
    (["--dist", "mixed", "--dim", "3", "--mixing", "1.5"], "--mixing: must be in \\[0, 1\\]"),
    (["--dist", "mixed", "--dim", "3", "--mixing", "-0.1"], "--mixing: must be >= 0"),
    (["--dist", "rotated", "--dim", "3", "--mixing", "0.2"], "--mixing: applies to"),
    (["--dist", "mixed", "--dim", "3", "--mixing", "nan"], "--mixing: must be finite"),
    (["--dist", "rotated", "--dim", "3", "--cov", "{joint}"], "--cov: give exactly one"),
    ([], "--cov: give exactly one"),
    (["--dist", "rotated"], "--dim: --dist needs"),
    (["--dist", "weird", "--dim", "3"], "--dist: unknown value"),
    (["--dist", "rotated", "--dim", "0"], "--dim: must be a positive integer"),
    (["--cov", "{joint}", "--dim", "2"], "--dim: applies to --dist only"),
    (["--dist", "rotated", "--dim", "3", "--depth", "0"], "--depth: must be a positive integer"),
    (["--dist", "rotated", "--dim", "3", "--eps", "-1"], "--eps: must be > 0"),
    (["--dist", "rotated", "--dim", "3", "--objective", "mae", "--ema-rate", "1"], "--ema-rate: an EMA target"),
    (["--dist", "rotated", "--dim", "3", "--init", "orthogonal"], "--init: unknown value"),
    (["--dist", "rotated", "--dim", "3", "--init-scale", "0.1"], "--init-scale: applies to --init random"),
    (["--dist", "rotated", "--dim", "3", "--num-times", "0"], "--num-times: must be a positive integer"),
    (["--dist", "rotated", "--dim", "3", "--t-max", "-1"], "--t-max: must be > 0"),
    (["--dist", "rotated", "--dim", "3", "--weight-decay", "-1"], "--weight-decay: must be >= 0"),
    (["--dist", "rotated", "--dim", "3", "--eps", "0.9"], "--t-max: no mode is learned"),
]


@pytest.mark.parametrize("extra, match", BAD)
def test_bad_input_one_line_exit_2_nothing_changed(tmp_path, capsys, extra, match):
    files = _bad_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("keep me\n")
    argv = BASE + [a.format(**files) for a in extra] + ["--out", str(out)]
    status, err = _run(argv, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert __import__("re").search(match, lines[0]), lines[0]
    assert sorted(os.listdir(out)) == ["summary.csv"] and (out / "summary.csv").read_text() == "keep me\n"


@pytest.mark.slow
def test_interrupt_and_resume_give_the_uninterrupted_files(tmp_path, capsys, monkeypatch):
    argv = BASE + ["--dist", "lagged", "--dim", "3", "--mixing", "0.4"]
    status, err = _run(argv + ["--out", str(tmp_path / "whole")], capsys)
    assert status == 0, err
    real = matrix_run.matrix.integrate

    def interrupted(*args, callback=None, **kwargs):
        def cb(k, t, snapshot):
            callback(k, t, snapshot)
            if k == 10:
                raise KeyboardInterrupt
        return real(*args, callback=cb, **kwargs)

    monkeypatch.setattr(matrix_run.matrix, "integrate", interrupted)
    status, err = _run(argv + ["--out", str(tmp_path / "part")], capsys)
    assert status == 130 and "rerun with --resume" in err
    assert os.listdir(tmp_path / "part") == [matrix_run.STATE_FILE]
    monkeypatch.setattr(matrix_run.matrix, "integrate", real)
    status, err = _run(argv + ["--out", str(tmp_path / "part"), "--resume"], capsys)
    assert status == 0, err
    def body(path):  # all but the command line, which names the folder
        return [ln for ln in path.read_text().splitlines() if not ln.startswith("# command:")]

    for name in ("summary.csv", "responses.csv"):
        assert body(tmp_path / "part" / name) == body(tmp_path / "whole" / name)
    assert not (tmp_path / "part" / matrix_run.STATE_FILE).exists()
    # a state written for other parameters is refused
    monkeypatch.setattr(matrix_run.matrix, "integrate", interrupted)
    _run(argv + ["--out", str(tmp_path / "other")], capsys)
    monkeypatch.setattr(matrix_run.matrix, "integrate", real)
    other = [a if a != "24" else "30" for a in argv]  # other output times
    status, err = _run(other + ["--out", str(tmp_path / "other"), "--resume"], capsys)
    assert status == 2 and "--resume: " in err and "other parameters" in err
