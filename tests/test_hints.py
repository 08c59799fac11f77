"""Every suggestion the tool prints works: each test provokes one hint with a small real run,
reads the suggested flags out of the stderr line, applies them to the same command line and
runs it.  A suggestion that the tool then refuses (say "rerun with --steps N --resume" for a run
that cannot be shortened) fails here."""

from __future__ import annotations

import re

import numpy as np
import pytest

from jepa_dynamics import cli, records

pytestmark = pytest.mark.filterwarnings("error")


def run(capsys, argv):
    """``(status, stderr)`` of ``jepa-dynamics ARGV``."""
    status = cli.main([str(a) for a in argv])
    return status, capsys.readouterr().err


def hint(err: str, pattern: str) -> re.Match:
    """The one stderr line holding ``pattern`` (a regex), matched."""
    found = [m for m in (re.search(pattern, line) for line in err.splitlines()) if m]
    assert len(found) == 1, err
    return found[0]


def apply(argv, flags: str, drop=()):
    """``argv`` with the flags of ``flags`` (``--a 1 --b``) set (a value replaced, a new flag added)
    and the flags of ``drop`` removed (with their values)."""
    out = [str(a) for a in argv]
    for flag in drop:
        while flag in out:
            i = out.index(flag)
            del out[i: i + (2 if i + 1 < len(out) and not out[i + 1].startswith("--") else 1)]
    words = flags.split()
    i = 0
    while i < len(words):
        flag = words[i]
        value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None
        if flag in out:
            if value is not None:
                out[out.index(flag) + 1] = value
        else:
            out += [flag] + ([value] if value is not None else [])
        i += 2 if value is not None else 1
    return out


def interrupt_at(monkeypatch, desc: str, update: int = 1):
    """Ctrl-C arrives inside the loop whose progress bar's description starts with ``desc``,
    at its ``update``-th report of finished work."""
    make = records.progress_bar

    def bar(total, **kw):
        real = make(total, **{**kw, "enabled": False})
        if kw["desc"].startswith(desc):
            calls = []

            def report(k=1):
                calls.append(k)
                if len(calls) == update:
                    raise KeyboardInterrupt
            real.update = report
        return real

    monkeypatch.setattr(records, "progress_bar", bar)


# --- train: the run is too short --------------------------------------------------------------------------------

TRAIN = ["train", "--lam", "1,2", "--rho", "0.5,0.8", "--eps", "0.05", "--lr", "0.1", "--steps", "20",
         "--records", "10", "--no-progress"]


@pytest.mark.parametrize("extra", [[], ["--model", "mlp", "--batch", "16"], ["--optimizer", "adam", "--lr", "0.001"]],
                         ids=["linear", "mlp", "adam"])
@pytest.mark.slow
def test_train_rerun_with_steps_resume_is_accepted_and_grows_the_run(tmp_path, capsys, extra):
    argv = apply(TRAIN, " ".join(extra)) + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 0, err
    m = hint(err, r"rerun with (--steps (\d+) --resume) to extend it")
    assert int(m.group(2)) > 20  # a resumed run can only grow
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err
    steps = records.read_csv(str(tmp_path / "run" / "responses.csv"))["step"]
    assert steps.max() == int(m.group(2))
    if not extra:  # the theory's suggestion suffices: every feature crossed, no second note
        assert "rerun with" not in err, err


@pytest.mark.slow
def test_train_with_an_lr_too_small_for_steps_suggests_a_larger_lr(tmp_path, capsys):
    argv = apply(TRAIN, "--lr 1e-15 --steps 3") + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 0, err
    hint(err, r"rerun into a new --out with a larger --lr")
    status, err = run(capsys, apply(argv, f"--lr 0.1 --out {tmp_path / 'new'}"))
    assert status == 0, err


@pytest.mark.slow
def test_train_grid_rerun_into_a_new_out_with_steps_suffices(tmp_path, capsys):
    argv = ["train-grid", "--depth", "1", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05", "--steps", "20",
            "--out", tmp_path / "g", "--no-progress"]
    status, err = run(capsys, argv)
    assert status == 0, err
    m = hint(err, r"rerun into a new --out with (--steps \d+)")
    status, err = run(capsys, apply(argv, f"{m.group(1)} --out {tmp_path / 'g2'}"))
    assert status == 0 and "rerun into" not in err, err


@pytest.mark.slow
def test_deprecated_ema_names_the_ema_rate_that_trains_the_same_run(tmp_path, capsys):
    argv = apply(TRAIN, "--steps 30 --ema 0.9") + ["--out", tmp_path / "a"]
    status, err = run(capsys, argv)
    assert status == 0, err
    hint(err, r"use --ema-rate KAPPA, KAPPA = \(1 - TAU\) / lr")
    kappa = (1 - 0.9) / 0.1
    status, err = run(capsys, apply(argv, f"--ema-rate {kappa!r} --out {tmp_path / 'b'}", drop=("--ema",)))
    assert status == 0 and "deprecated" not in err, err
    a, b = (records.read_csv(str(tmp_path / d / "responses.csv"))["response"] for d in "ab")
    np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.slow
def test_a_diverging_train_says_lower_lr_and_a_lower_one_runs(tmp_path, capsys):
    argv = apply(TRAIN, "--lr 50") + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 1, err
    hint(err, r"lower --lr$")
    status, err = run(capsys, apply(argv, f"--lr 0.1 --out {tmp_path / 'new'}"))
    assert status == 0, err


@pytest.mark.slow
def test_population_loss_of_an_mlp_says_use_loss_sampled(tmp_path, capsys):
    argv = apply(TRAIN, "--model mlp --batch 16 --loss population") + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"use (--loss sampled)$")
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err


# --- Ctrl-C: rerun with --resume / --only ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, desc, pattern", [
    (["sweep", "--method", "ode", "--objective", "jepa", "--depth", "1", "--lam", "1", "--rho", "0.5,0.8",
      "--out", "{d}/s.csv"], "sweep", r"rerun with (--resume) to finish$"),
    (TRAIN + ["--out", "{d}/run"], "train", r"rerun with (--resume) to continue$"),
    (["matrix", "--objective", "jepa", "--depth", "1", "--dist", "rotated", "--dim", "2", "--num-times", "10",
      "--out", "{d}/m"], "matrix", r"rerun with (--resume) to continue$"),
], ids=["sweep", "train", "matrix"])
@pytest.mark.slow
def test_interrupted_run_resumes_as_told(tmp_path, capsys, monkeypatch, argv, desc, pattern):
    argv = [str(a).format(d=tmp_path) for a in argv]
    with monkeypatch.context() as patch:
        interrupt_at(patch, desc, update=3 if desc == "matrix" else 1)
        status, err = run(capsys, argv)
    assert status == 130, err
    m = hint(err, pattern)
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err


@pytest.mark.slow
def test_matrix_interrupted_before_its_first_output_says_rerun(tmp_path, capsys, monkeypatch):
    argv = ["matrix", "--objective", "jepa", "--depth", "1", "--dist", "rotated", "--dim", "2", "--num-times", "10",
            "--out", str(tmp_path / "m")]
    from jepa_dynamics.engines import matrix

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(matrix, "integrate", ctrl_c)
        status, err = run(capsys, argv)
    assert status == 130, err
    hint(err, r"nothing was kept; rerun the same command to start again$")
    assert run(capsys, argv)[0] == 0


def test_interrupted_figures_rerun_with_only_the_rest(tmp_path, capsys, monkeypatch):
    import matplotlib.pyplot as plt

    from jepa_dynamics.figures import _registry

    drawn = []

    def cheap(name):
        def figure(fast=False):
            drawn.append(name)
            return plt.figure(figsize=(1, 1))
        return figure

    for name in _registry.FIGURES:
        monkeypatch.setitem(_registry.FIGURES, name, cheap(name))
    argv = ["figures", "--only", "ode_dynamics,order_inversion,critical_times", "--format", "png", "--out",
            tmp_path / "f"]
    with monkeypatch.context() as patch:
        interrupt_at(patch, "figures")
        status, err = run(capsys, argv)
    assert status == 130, err
    m = hint(err, r"rerun with (--only \S+)$")
    drawn.clear()
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err
    assert drawn == ["order_inversion", "critical_times"]


# --- files that cannot be resumed ---------------------------------------------------------------------------------

SWEEP = ["sweep", "--objective", "jepa", "--depth", "1", "--lam", "1", "--rho", "0.3,0.5,0.8"]


def test_resume_of_another_grid_says_rerun_without_resume(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert run(capsys, SWEEP + ["--out", out])[0] == 0
    argv = apply(SWEEP, "--lam 2") + ["--out", out, "--resume"]
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, r"rerun without --resume to start over")
    status, err = run(capsys, apply(argv, "", drop=("--resume",)))
    assert status == 0, err


def test_a_damaged_row_says_resume_repair_and_that_mends_it(tmp_path, capsys):
    out, fresh = tmp_path / "s.csv", tmp_path / "fresh.csv"
    assert run(capsys, SWEEP + ["--out", out])[0] == 0
    text = out.read_text().splitlines(keepends=True)
    text[-2] = "jepa,1,1.0,0.5,2.0,not-a-row\n"
    out.write_text("".join(text))
    argv = SWEEP + ["--out", out, "--resume"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"rerun with (--resume --repair) to cut the file there")
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err
    assert run(capsys, SWEEP + ["--out", fresh])[0] == 0
    strip = lambda p: [ln for ln in p.read_text().splitlines() if not ln.startswith("# command")]  # noqa: E731
    assert strip(out) == strip(fresh)


# --- sizes and flags that go together ------------------------------------------------------------------------------

def test_a_large_job_says_pass_allow_large_and_that_goes_ahead(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(records, "LARGE_OUTPUT", 10)  # every output is "large"
    argv = SWEEP + ["--out", tmp_path / "s.csv"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"pass (--allow-large) to go ahead")
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err


def test_a_tiny_gd_lr_says_lr_0_or_allow_large(tmp_path, capsys):
    argv = SWEEP + ["--lr", "1e-5", "--out", tmp_path / "s.csv"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"use a larger --lr, (--lr 0) for gradient flow, or pass --allow-large")
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err


@pytest.mark.slow
def test_matrix_with_nothing_learned_says_give_t_max(tmp_path, capsys):
    argv = ["matrix", "--objective", "jepa", "--depth", "1", "--dist", "rotated", "--dim", "2", "--eps", "0.9",
            "--num-times", "5", "--out", tmp_path / "m", "--no-progress"]
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, r"give --t-max explicitly")
    status, err = run(capsys, apply(argv, "--t-max 5"))
    assert status == 0, err


@pytest.mark.slow
def test_spectrum_probe_says_add_train(tmp_path, capsys):
    argv = ["spectrum", "--dataset", "digits", "--n", "1000", "--depth", "1", "--eps", "0.01", "--objective", "mae",
            "--train-modes", "2", "--records", "10", "--probe", "--out", tmp_path / "o", "--no-progress"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"add (--train)$")
    status, err = run(capsys, apply(argv, m.group(1)))
    assert status == 0, err


@pytest.mark.slow
def test_spectrum_train_past_max_steps_says_raise_it(tmp_path, capsys):
    argv = ["spectrum", "--dataset", "digits", "--n", "1000", "--depth", "1", "--eps", "0.01", "--objective", "mae",
            "--train-modes", "2", "--records", "10", "--train", "--max-steps", "5", "--out", tmp_path / "o",
            "--no-progress"]
    status, err = run(capsys, argv)
    assert status == 2, err
    m = hint(err, r"needs (\d+) steps .* raise --max-steps$")
    status, err = run(capsys, apply(argv, f"--max-steps {m.group(1)}"))
    assert status == 0, err


@pytest.mark.parametrize("bad, pattern, fix", [
    ("--ema-rate 100", r"lower --ema-rate or --lr$", "--ema-rate 1"),
    ("--ema-rate 1e-20", r"raise --ema-rate$", "--ema-rate 1"),
], ids=["above-1", "below-resolution"])
@pytest.mark.slow
def test_an_ema_rate_the_step_cannot_take_names_the_way_out(tmp_path, capsys, bad, pattern, fix):
    argv = apply(TRAIN, bad) + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, pattern)
    status, err = run(capsys, apply(argv, fix))
    assert status == 0, err


@pytest.mark.parametrize("fix", ["--t-max 1e-290", "--spacing linear"])
def test_simulate_with_a_tiny_t_max_says_larger_t_max_or_linear_spacing(tmp_path, capsys, fix):
    argv = ["simulate", "--objective", "jepa", "--depth", "1", "--lam", "1", "--rho", "0.5", "--t-max", "1e-305",
            "--num-times", "4", "--out", tmp_path / "w.csv"]
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, r"use a larger --t-max or --spacing linear$")
    status, err = run(capsys, apply(argv, fix))
    assert status == 0, err


@pytest.mark.slow
def test_matrix_state_of_other_parameters_says_rerun_without_resume(tmp_path, capsys, monkeypatch):
    argv = ["matrix", "--objective", "jepa", "--depth", "1", "--dist", "rotated", "--dim", "2", "--num-times", "10",
            "--out", str(tmp_path / "m")]
    with monkeypatch.context() as patch:
        interrupt_at(patch, "matrix", update=3)
        assert run(capsys, argv)[0] == 130
    assert (tmp_path / "m" / "matrix_state.npz").exists()
    argv = apply(argv, "--eps 0.01 --resume")
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, r"rerun without --resume")
    status, err = run(capsys, apply(argv, "", drop=("--resume",)))
    assert status == 0, err


def test_ema_and_ema_rate_together_say_give_one_and_either_runs(tmp_path, capsys):
    argv = apply(TRAIN, "--ema-rate 1 --ema 0.9") + ["--out", tmp_path / "run"]
    status, err = run(capsys, argv)
    assert status == 2, err
    hint(err, r"give --ema-rate KAPPA or the deprecated --ema TAU, not both")
    status, err = run(capsys, apply(argv, f"--out {tmp_path / 'a'}", drop=("--ema",)))
    assert status == 0, err


@pytest.mark.slow
def test_a_diverging_grid_network_says_lower_lr_for_them_and_that_runs_clean(tmp_path, capsys):
    argv = ["train-grid", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05,50", "--steps", "20", "--no-progress",
            "--out", tmp_path / "g"]
    status, err = run(capsys, argv)
    assert status == 0, err
    hint(err, r"networks 1\): their rows hold nan; lower --lr for them")
    status, err = run(capsys, apply(argv, f"--lr 0.05,0.5 --out {tmp_path / 'g2'}"))
    assert status == 0 and "diverged" not in err, err
