"""`jepa-dynamics train`: the command's contract, on features drawn at random (unseen)."""

import os

import numpy as np
import pytest

from jepa_dynamics import cli, records, theory


def _draw_features(seed, n=3):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0.5, 2.0, n), 3), np.round(rng.uniform(0.4, 1.0, n), 3)


def _run(tmp_path, name, args):
    out = str(tmp_path / name)
    assert cli.main(["train", *args, "--out", out, "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.slow
def test_depth2_critical_times_within_2_percent_on_unseen_features(tmp_path, objective):
    lam, rho = _draw_features(20240 + (objective == "mae"))
    eps, lr = 0.02, 0.01
    t_star = theory.critical_time(objective, 2, lam, rho, eps)  # independent of the command's output
    steps = int(1.5 * t_star.max() / lr)
    args = ["--model", "linear", "--objective", objective, "--depth", "2", "--lam", ",".join(map(str, lam)),
            "--rho", ",".join(map(str, rho)), "--eps", str(eps), "--init", "balanced", "--loss", "population",
            "--optimizer", "sgd", "--lr", str(lr), "--steps", str(steps), "--seed", "3"]
    out = _run(tmp_path, "a", args)
    summary = records.read_csv(os.path.join(out, "summary.csv"))
    np.testing.assert_allclose(summary["lam"], lam)
    np.testing.assert_allclose(summary["t_star_theory"], t_star, rtol=1e-12)
    np.testing.assert_allclose(summary["t_star_empirical"], t_star, rtol=0.02)
    np.testing.assert_allclose(summary["w_inf"], theory.fixed_point(objective, 2, rho))
    for name in ("responses.csv", "summary.csv"):
        text = open(os.path.join(out, name)).read()
        assert text.startswith("# jepa-dynamics ") and "# command: jepa-dynamics train --model linear" in text
    table = records.read_csv(os.path.join(out, "responses.csv"))
    assert list(table) == ["step", "time", "feature", "response"]
    np.testing.assert_allclose(table["time"], lr * table["step"])
    assert os.path.getsize(os.path.join(out, "plot.png")) > 1000
    if objective == "jepa":  # same command and seed: byte-identical CSVs
        again = _run(tmp_path, "a", args)
        for name in ("responses.csv", "summary.csv"):
            assert open(os.path.join(again, name), "rb").read() == open(os.path.join(out, name), "rb").read()


@pytest.mark.slow
def test_dist_family_mlp_sampled(tmp_path):
    out = _run(tmp_path, "m", ["--model", "mlp", "--objective", "jepa", "--depth", "2", "--dist", "static",
                               "--dim", "3", "--eps", "0.02", "--init", "random", "--loss", "sampled",
                               "--batch", "64", "--optimizer", "adam", "--lr", "0.01", "--steps", "50",
                               "--ema-rate", "50", "--records", "5", "--checkpoints", "25,50"])
    summary = records.read_csv(os.path.join(out, "summary.csv"))
    assert summary["feature"].tolist() == [0, 1, 2]
    assert os.path.exists(os.path.join(out, "checkpoints", "encoder_step25.eqx"))


@pytest.mark.parametrize("args, message", [
    (["--lam", "1,0.5", "--rho", "0.9"], "--rho: needs one value per feature"),
    (["--lam", "1", "--rho", "0.9", "--eps", "0.6"], "--eps: must be below"),
    (["--lam", "1", "--rho", "0.9", "--model", "cnn"], "--model: unknown value 'cnn'"),
    (["--lam", "1", "--rho", "0.9", "--ema", "1"], "--ema: must be in [0, 1)"),
    (["--lam", "1", "--rho", "0.9", "--ema-rate", "200"], "--ema-rate: kappa * lr = 200 * 0.01 = 2 is above 1"),
    (["--lam", "1", "--rho", "0.9", "--ema-rate", "0"], "--ema-rate: must be > 0"),
    (["--lam", "1", "--rho", "0.9", "--objective", "mae", "--ema-rate", "5"], "--ema-rate: an EMA target only"),
    (["--lam", "1", "--rho", "0.9", "--ema-rate", "5", "--ema", "0.5"], "--ema: give --ema-rate KAPPA or"),
    (["--lam", "1", "--rho", "0.9", "--steps", "-5"], "--steps: must be a positive integer"),
    (["--dist", "nope"], "--dist: unknown value"),
    (["--lam", "1", "--rho", "0.9", "--depth", "2", "--eps", "1e-300"], "--eps: the time to learn overflows float64"),
    (["--lam", "1", "--rho", "0.9", "--lr", "nan"], "--lr: must be finite"),
    (["--lam", "1", "--rho", "0.9", "--depth", "0"], "--depth: must be a positive integer"),
    (["--lam", "1", "--rho", "0", "--depth", "2"], "--rho: must be > 0"),
    (["--lam", "-1", "--rho", "0.5"], "--lam: must be > 0"),
    (["--lam", "1", "--rho", "0.9", "--optimizer", "sgdd"], "--optimizer: unknown value 'sgdd'"),
    (["--lam", "1", "--rho", "0.9", "--lrate", "0.1"], "unrecognized arguments: --lrate 0.1"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    argv = ["train", *args, "--out", str(tmp_path / "x")]
    if "--steps" not in args:
        argv += ["--steps", "10"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("jepa-dynamics train: error:")


@pytest.mark.slow
def test_sigint_then_resume_gives_the_uninterrupted_files(tmp_path):
    """Ctrl-C can land anywhere in the loop (mid-write too); the saved state must match the rows
    on disk, so that --resume ends with exactly the files of an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    args = ["train", "--model", "linear", "--objective", "jepa", "--depth", "2", "--lam", "1,0.5,0.7",
            "--rho", "0.9,0.4,0.6", "--eps", "0.02", "--loss", "sampled", "--batch", "64", "--optimizer", "sgd",
            "--lr", "0.002", "--steps", "100000", "--records", "200", "--no-progress"]
    part = tmp_path / "part"
    env = {**os.environ, "JEPA_DYNAMICS_CACHE": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "jepa_dynamics", *args, "--out", str(part)],
                            stderr=subprocess.PIPE, text=True, env=env)
    responses = part / "responses.csv"
    deadline = time.time() + 120
    while time.time() < deadline:  # until some recorded steps are on disk
        if responses.exists() and responses.read_text().count("\n") > 40:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun with --resume" in err and "Traceback" not in err
    kept = [ln for ln in responses.read_text().splitlines() if not ln.startswith("#")]
    assert 1 < len(kept) < 3 * 201 + 1
    assert cli.main([*args, "--resume", "--out", str(part)]) == 0
    full = tmp_path / "full"
    assert cli.main([*args, "--out", str(full)]) == 0
    for name in ("responses.csv", "summary.csv"):
        body = lambda p: [ln for ln in (p / name).read_text().splitlines() if not ln.startswith("# command")]
        assert body(part) == body(full), name


@pytest.mark.slow
def test_divergence_is_one_line_not_nan_rows(tmp_path, capsys):
    """Gradient descent with lr far above 2 / curvature blows up; the command must say so
    (exit 1, one line naming the learning rate) instead of writing NaN summaries."""
    args = ["train", "--model", "linear", "--objective", "mae", "--depth", "2", "--lam", "1,0.5", "--rho", "0.9,0.4",
            "--eps", "0.02", "--loss", "population", "--optimizer", "sgd", "--lr", "1000", "--steps", "200",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err and "lr=1000" in err and "lower --lr" in err
    assert not (tmp_path / "run" / "summary.csv").exists()
