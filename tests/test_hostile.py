"""A hostile battery beyond test_cli_resume_and_refusals.py's cases: bad flags, damaged files, edge values.

Every refused command must exit 2 with one line on stderr that names the flag, and leave the
files as they were (no file or folder created, an existing one byte-identical); every accepted
edge case must exit 0 with complete output.  Warnings are errors here, so a NumPy or JAX
warning (or an unclosed file) fails the case."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jepa_dynamics import cli, records

pytestmark = pytest.mark.filterwarnings("error")


def refused(capsys, argv, needle):
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith(f"jepa-dynamics {argv[0]}: error: "), err
    assert "Traceback" not in err and "Warning" not in err
    assert needle in err, err
    return err


def digest(folder) -> dict:
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --- sweep: bad flags (nothing is written) -----------------------------------------------------------------

SWEEP_BAD = [
    (["--eps", "0"], "--eps: must be > 0"),
    (["--eps", "1e-400"], "--eps: must be > 0"),  # parses to 0.0
    (["--lam", "1e-320", "--rho", "0.3"], "--lam: the context variance sigma2 = lam / rho underflows"),
    (["--lam", "0.5", "--rho", "1e308", "--depth", "1"], "sigma2 = lam / rho underflows"),
    (["--rho", "1e-200", "--depth", "2"], "--rho: the fixed point w_star = rho^2 underflows"),
    (["--rho", "1.5", "--depth", "5000"], "--rho: the fixed point w_star = rho^5000 overflows"),
    (["--objective", "mae", "--rho", "1e-300", "--depth", "3"], "--eps: must be below fraction * w_star = 5e-226"),
    (["--depth", "1000000", "--rho", "0.9"], "w_star = rho^1000000 underflows"),
    (["--depth", "9007199254740993"], "--depth: must be at most 2**53"),
    (["--depth", "-1"], "--depth: must be a positive integer"),
    (["--fraction", "0"], "--fraction: must be in (0, 1)"),
    (["--fraction", "1"], "--fraction: must be in (0, 1)"),
    (["--fraction", "1e-320", "--eps", "1e-330"], "--eps: must be > 0"),
    (["--fraction", "1e-310", "--rho", "0.5"], "--fraction: fraction * w_star underflows"),
    (["--objective", ""], "--objective: expected a comma-separated list"),
    (["--objective", "JEPA"], "--objective: unknown value 'JEPA'"),
    (["--lam", "1,2,"], "--lam: expected a comma-separated list"),
    (["--lam", "nan"], "--lam: must be finite"),
    (["--rho", "-inf"], "argument --rho: expected one argument"),
    (["--rho=-inf"], "--rho: must be finite"),
    (["--lam", "1e308", "--rho", "0.3", "--method", "ode"], "--lam: the context variance"),
    (["--repair"], "--repair: only goes with --resume"),
    (["--resum"], "unrecognized arguments: --resum"),
    (["--progress", "--no-progress"], "not allowed with argument"),
    (["--plot", "p.txt"], "--plot: must end in .png, .pdf or .svg"),
    (["--eps", "1e-4", "--depth", "8", "--rho", "0.3"], "--eps: must be below fraction * w_star"),
    # the joint embeddings (docs/theory.md section 16): exact balanced gradient flow only
    (["--objective", "jepa,vicreg", "--method", "ode"], "--method: 'ode' is not available for vicreg"),
    (["--objective", "barlow", "--ema-rate", "2"], "--ema-rate: the barlow rows are swept balanced"),
    (["--objective", "vicreg", "--weight-decay", "0.1"], "--weight-decay: the vicreg rows are swept balanced"),
    (["--objective", "barlow", "--predictor-init", "0.5"], "--predictor-init: the barlow rows are swept balanced"),
    (["--objective", "barlow", "--lr", "0.01"], "--lr: the barlow rows are swept balanced"),
    (["--objective", "vicreg", "--eps", "0.9"], "--eps: must be below fraction * w_star = 0.212132 for "
                                                "objective=vicreg"),
]


@pytest.mark.parametrize("flags, needle", SWEEP_BAD, ids=[" ".join(f)[:40] for f, _ in SWEEP_BAD])
def test_sweep_refuses(tmp_path, capsys, flags, needle):
    out = tmp_path / "deep" / "x.csv"
    refused(capsys, ["sweep", *flags, "--out", str(out)], needle)
    assert list(tmp_path.iterdir()) == []  # no file, no folder


def test_sweep_out_is_a_folder_or_under_a_file(tmp_path, capsys):
    refused(capsys, ["sweep", "--out", str(tmp_path)], "--out: cannot write")
    (tmp_path / "f").write_text("x")
    refused(capsys, ["sweep", "--out", str(tmp_path / "f" / "s.csv")], "is a file, not a folder")
    assert (tmp_path / "f").read_text() == "x"


# --- simulate: bad flags -------------------------------------------------------------------------------------

SIMULATE_BAD = [
    (["--num-times", "0"], "--num-times: must be a positive integer"),
    (["--num-times", "300000000"], "--allow-large: this simulation"),
    (["--t-max", "-1"], "--t-max: must be > 0"),
    (["--t-max", "nan"], "--t-max: must be finite"),
    (["--t-max", "abc"], "argument --t-max: invalid float value"),
    (["--t-max", "1e-303"], "--t-max: too small for a log time grid"),
    (["--out-format", "csv"], "unrecognized arguments"),
    (["--spacing", "geometric"], "argument --spacing: invalid choice"),
    (["--rho", "1e200"], "--rho: the fixed point w_star = rho^2 overflows"),
    (["--eps", "1e-300", "--depth", "4"], "--eps: the time to learn overflows float64"),
]


@pytest.mark.parametrize("flags, needle", SIMULATE_BAD, ids=[" ".join(f)[:40] for f, _ in SIMULATE_BAD])
def test_simulate_refuses(tmp_path, capsys, flags, needle):
    refused(capsys, ["simulate", *flags, "--out", str(tmp_path / "x.csv")], needle)
    assert list(tmp_path.iterdir()) == []


def test_simulate_refuses_other_extensions(tmp_path, capsys):
    refused(capsys, ["simulate", "--out", str(tmp_path / "x.txt")], "--out: must end in .csv or .npz")


# --- train: bad flags (no folder is created) -----------------------------------------------------------------

TRAIN_BAD = [
    (["--objective", "jepa,mae"], "--objective: train takes one value, got 2"),
    (["--lr", "0.1,0.2"], "--lr: train takes one value"),
    (["--seed", "0,1,2"], "--seed: train takes one value, got 3"),
    (["--model", "linear,mlp"], "--model: train takes one value"),
    (["--seed", "-1"], "--seed: must be a non-negative integer"),
    (["--seed", "1.5"], "--seed: must be an integer"),
    (["--steps", "0"], "--steps: must be a positive integer"),
    (["--records", "0"], "--records: must be a positive integer"),
    (["--checkpoints", "5,abc"], "--checkpoints: 'abc' is not a number"),
    (["--checkpoints", "100"], "--checkpoints: steps must lie in [0, steps=10]"),
    (["--lam", "1e308", "--rho", "0.3"], "--lam: the context variance sigma2"),
    (["--lam", "1", "--rho", "1e200", "--depth", "2"], "--rho: the fixed point w_star = rho^2 overflows"),
    (["--lam", "1", "--rho", "0.9", "--depth", "20000"], "w_star = rho^20000 underflows"),
    (["--dist", "static", "--dim", "0"], "--dim: must be a positive integer"),
    (["--dist", "static", "--dim", "100000"], "--allow-large: this run (dim=100000, steps=10) would need about"),
    (["--records", "1000000000", "--steps", "1000000000"], "--allow-large: this run"),
    (["--lam", "1"], "--rho: --lam and --rho go together"),
    (["--lam", "1", "--rho", "0.9", "--dist", "static"], "--dist: give either --lam/--rho or --dist"),
    (["--objective", "barlow", "--ema-rate", "5"], "--ema-rate: an EMA target only exists for --objective jepa"),
    (["--objective", "vicreg", "--weight-decay", "0.1"], "--weight-decay: --objective vicreg trains balanced"),
    (["--objective", "barlow", "--init", "aligned"], "--init: --objective barlow trains balanced"),
    (["--objective", "barlow", "--eps", "0.9"], "--eps: must be below fraction * w_star"),
]


@pytest.mark.parametrize("flags, needle", TRAIN_BAD, ids=[" ".join(f)[:40] for f, _ in TRAIN_BAD])
def test_train_refuses(tmp_path, capsys, flags, needle):
    argv = ["train", *flags]
    if "--lam" not in flags and "--dist" not in flags:
        argv += ["--lam", "1,0.6", "--rho", "0.9,0.5"]
    if "--steps" not in flags:
        argv += ["--steps", "10"]
    refused(capsys, [*argv, "--out", str(tmp_path / "run")], needle)
    assert list(tmp_path.iterdir()) == []


def test_train_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    refused(capsys, ["train", "--lam", "1", "--rho", "0.5", "--steps", "10", "--out", str(tmp_path / "f")],
            "it is a file, not a folder")
    assert (tmp_path / "f").read_text() == "x"


# --- sweep --resume against damaged files (refused: byte-identical) ------------------------------------------

SWEEP = ["sweep", "--depth", "1,2", "--lam", "0.5,1", "--rho", "0.4,0.8,1.2", "--eps", "1e-5"]  # 2*2*2*3 = 24 rows


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "full.csv"
    assert cli.main([*SWEEP, "--out", str(path)]) == 0
    return path.read_bytes()


def _split(data):
    lines = data.splitlines(keepends=True)
    head = sum(1 for ln in lines if ln.startswith(b"#")) + 1
    return lines[:head], lines[head:]


def damaged(full, case):
    head, rows = _split(full)
    if case == "extra row past the end":
        return full + rows[-1]
    if case == "a value edited to text":
        return b"".join(head + rows[:5] + [rows[5].replace(b",", b",abc,", 1).replace(b",", b"", 1)] + rows[6:])
    if case == "letters in a computed column":
        cells = rows[5].split(b",")
        cells[8] = b"abc"
        return b"".join(head + rows[:5] + [b",".join(cells)] + rows[6:])
    if case == "a row deleted":
        return b"".join(head + rows[:5] + rows[6:10])
    if case == "two rows swapped":
        return b"".join(head + rows[:5] + [rows[6], rows[5]])
    if case == "windows line endings":
        return full.replace(b"\n", b"\r\n")
    if case == "random bytes only":
        return np.random.default_rng(1).bytes(2000)
    if case == "another command's csv":
        return b"# jepa-dynamics 0.1.0\n" + b"step,time,feature,response\n0,0.0,0,0.01\n"
    if case == "other eps":
        return full.replace(b'"eps": [1e-05]', b'"eps": [1e-06]')
    if case == "header only, other columns":
        return b"".join(head[:-1]) + b"objective,depth\n"
    if case == "a torn line of garbage":
        return b"".join(head + rows[:4]) + b"\x00\x01zz"
    if case == "latin-1 text in a row":
        return b"".join(head + rows[:4] + [b"jepa,1,0.5,0.4,caf\xe9\n"])
    raise KeyError(case)


DAMAGE = {
    "extra row past the end": "data row 25 is not this sweep's row 25",
    "a value edited to text": "data row 6",
    "letters in a computed column": "data row 6",
    "a row deleted": "data row 6",
    "two rows swapped": "data row 6",
    "windows line endings": "Windows (CRLF) line endings",
    "random bytes only": "its first line is not '# jepa-dynamics ...'",
    "another command's csv": "written for other parameters",
    "other eps": "--eps: the file has 1e-06, this command 1e-05",
    "header only, other columns": "column header is missing or different",
    "a torn line of garbage": "data row 5",
    "latin-1 text in a row": "not UTF-8 text",
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_sweep_resume_refuses_damaged_files_untouched(tmp_path, capsys, full, case):
    path = tmp_path / "s.csv"
    data = damaged(full, case)
    path.write_bytes(data)
    err = refused(capsys, [*SWEEP, "--resume", "--out", str(path)], DAMAGE[case])
    assert f"cannot resume {path}" in err and "without --resume" in err
    assert path.read_bytes() == data


def test_sweep_resume_repair_after_a_deleted_row(tmp_path, capsys, full):
    path = tmp_path / "s.csv"
    path.write_bytes(damaged(full, "a row deleted"))
    assert cli.main([*SWEEP, "--resume", "--repair", "--out", str(path)]) == 0
    assert path.read_bytes() == full


@pytest.mark.parametrize("case", ["missing", "empty", "header only", "complete", "torn in a number"])
def test_sweep_resume_accepts(tmp_path, capsys, full, case):
    path = tmp_path / "sub" / "s.csv"
    head, rows = _split(full)
    if case != "missing":
        path.parent.mkdir()
        path.write_bytes({"empty": b"", "header only": b"".join(head), "complete": full,
                          "torn in a number": b"".join(head + rows[:7]) + rows[7][:-9]}[case])
    assert cli.main([*SWEEP, "--resume", "--out", str(path)]) == 0
    body = lambda data: [ln for ln in data.splitlines() if not ln.startswith(b"# command")]  # noqa: E731
    assert body(path.read_bytes()) == body(full)
    if case != "missing":
        assert path.read_bytes()[:40] == full[:40]
    assert capsys.readouterr().out == f"{path}\n"


# --- accepted edge values -------------------------------------------------------------------------------------

def test_spaces_float_depth_and_new_folders_are_accepted(tmp_path, capsys, full):
    out = tmp_path / "a" / "b" / "s.csv"
    argv = ["sweep", "--depth", "1.0,2", "--lam", " 0.5 , 1", "--rho", "0.4,0.8,1.2", "--eps", "1e-5"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert _split(out.read_bytes())[1] == _split(full)[1]


def test_simulate_huge_linear_times_and_one_time_are_clean(tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert cli.main(["simulate", "--lam", "10", "--t-max", "1e308", "--spacing", "linear", "--num-times", "3",
                     "--out", str(out)]) == 0
    with np.load(out) as data:
        w, w_star = data["response"], data["w_star"]
    # at t = 1e308/3 every response has long reached its fixed point
    np.testing.assert_allclose(w[:, 1:], np.broadcast_to(w_star[:, None], w[:, 1:].shape), rtol=1e-12)
    assert cli.main(["simulate", "--num-times", "1", "--out", str(tmp_path / "one.csv")]) == 0
    assert len(records.read_csv(str(tmp_path / "one.csv"))["time"]) == 36 * 2


def test_allow_large_lets_a_large_simulation_through_the_guard(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(records, "LARGE_OUTPUT", 1000)  # make a small job "large"
    argv = ["simulate", "--depth", "1", "--lam", "1", "--rho", "0.5", "--objective", "jepa", "--num-times", "50",
            "--out", str(tmp_path / "x.csv")]
    refused(capsys, argv, "--allow-large: this simulation (1 problems x 51 times) would write about")
    assert cli.main([*argv, "--allow-large"]) == 0
    assert len(records.read_csv(str(tmp_path / "x.csv"))["response"]) == 51


# --- train --resume against damaged run folders (refused: byte-identical) ------------------------------------

RUN = ["train", "--lam", "1,0.6", "--rho", "0.9,0.5", "--eps", "1e-2", "--lr", "0.02", "--steps", "400",
       "--records", "40", "--checkpoints", "200"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile_run") / "r"
    assert cli.main([*RUN, "--no-progress", "--out", str(out)]) == 0
    return out


def _edit_rows(path, edit):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(edit(lines)))


RUN_DAMAGE = {
    "responses.csv deleted": (lambda r: (r / "responses.csv").unlink(), "but no responses.csv"),
    "state.eqx of random bytes": (lambda r: (r / "state.eqx").write_bytes(np.random.default_rng(2).bytes(1000)),
                                  "state.eqx cannot be read"),
    "state.eqx empty": (lambda r: (r / "state.eqx").write_bytes(b""), "state.eqx cannot be read"),
    "a response row edited": (lambda r: _edit_rows(r / "responses.csv", lambda ls: ls[:20] + ["5,0.1,0,x\n"]
                                                   + ls[21:]), "is not the run's row"),
    "rows cut short": (lambda r: _edit_rows(r / "responses.csv", lambda ls: ls[:30]), "complete rows"),
    "grid line damaged": (lambda r: _edit_rows(r / "responses.csv", lambda ls: [
        ln.replace('"lr": 0.02', '"lr": 0.0') if ln.startswith("# grid") else ln for ln in ls]),
        "--lr: the run in"),
    "grid line removed": (lambda r: _edit_rows(r / "responses.csv", lambda ls: [
        ln for ln in ls if not ln.startswith("# grid")]), "has no '# grid:' line"),
}


@pytest.mark.parametrize("case", list(RUN_DAMAGE))
@pytest.mark.slow
def test_train_resume_refuses_damaged_runs_untouched(run_dir, tmp_path, capsys, case):
    r = tmp_path / "r"
    shutil.copytree(run_dir, r)
    damage, needle = RUN_DAMAGE[case]
    damage(r)
    before = digest(r)
    err = refused(capsys, [*RUN, "--resume", "--out", str(r)], needle)
    assert "--resume" in err and "rerun without --resume" in err
    assert digest(r) == before


@pytest.mark.parametrize("flags, needle", [
    (["--eps", "2e-2"], "--eps: the run in"),
    (["--checkpoints", "100"], "--checkpoints: the run in"),
    (["--seed", "1"], "--seed: the run in"),
    (["--optimizer", "adam"], "--optimizer: the run in"),
])
@pytest.mark.slow
def test_train_resume_refuses_other_flags_untouched(run_dir, tmp_path, capsys, flags, needle):
    r = tmp_path / "r"
    shutil.copytree(run_dir, r)
    before = digest(r)
    argv = list(RUN)
    for flag, value in zip(flags[::2], flags[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    refused(capsys, [*argv, "--resume", "--out", str(r)], needle)
    assert digest(r) == before


def test_train_resume_of_a_finished_run_changes_nothing(run_dir, tmp_path, capsys):
    r = tmp_path / "r"
    shutil.copytree(run_dir, r)
    before = digest(r)
    assert cli.main([*RUN, "--resume", "--no-progress", "--out", str(r)]) == 0
    after = digest(r)
    assert "checkpoints/encoder_step200.eqx" in after
    # byte-identical but for the summary's provenance line, which holds the (copied) folder's name
    summary = before.pop("summary.csv"), after.pop("summary.csv")
    assert after == before and summary[0] != summary[1]
    body = [ln for ln in (r / "summary.csv").read_text().splitlines() if not ln.startswith("# command")]
    assert body == [ln for ln in (run_dir / "summary.csv").read_text().splitlines()
                    if not ln.startswith("# command")]


# --- the real stderr, and Ctrl-C while a resume checks its rows ----------------------------------------------

def _cli(*args, **kwargs):
    env = {**os.environ, "JEPA_DYNAMICS_CACHE": "off"}
    return subprocess.Popen([sys.executable, "-m", "jepa_dynamics", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=kwargs.pop("text", True), env=env, **kwargs)


@pytest.mark.slow
def test_real_stderr_is_one_line_for_overflowing_times_and_variances(tmp_path):
    procs = [_cli("simulate", "--eps", "1e-300", "--depth", "4", "--out", str(tmp_path / "x.csv")),
             _cli("simulate", "--lam", "1e300", "--rho", "1e-10", "--out", str(tmp_path / "y.csv"))]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and err.count("\n") == 1 and "Warning" not in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_while_resume_checks_rows_leaves_the_file_untouched(tmp_path):
    """A big file to check; SIGINT during the check: exit 130, the file byte-identical."""
    lam = ",".join(str(x) for x in np.geomspace(0.1, 10, 100))
    rho = ",".join(str(x) for x in np.linspace(0.5, 1.5, 100))
    args = ["sweep", "--depth", "1,2,3,4,5,6,7,8", "--lam", lam, "--rho", rho, "--eps", "1e-4", "--no-progress"]
    path = tmp_path / "s.csv"
    assert cli.main([*args, "--out", str(path)]) == 0
    data = path.read_bytes()
    head, rows = _split(data)
    text = b"".join(head + rows * 10)  # ten copies: the check is long, and would refuse at row 160001
    path.write_bytes(text)
    proc = _cli(*[a for a in args if a != "--no-progress"], "--progress", "--resume", "--out", str(path), text=False)
    seen, deadline = b"", time.time() + 60
    while b"checking rows" not in seen and time.time() < deadline:  # the check's bar is on stderr: it has begun
        seen += os.read(proc.stderr.fileno(), 4096)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    last = (seen.decode() + err).replace("\r", "\n").strip().splitlines()[-1]
    assert proc.returncode in (2, 130), last
    assert "Traceback" not in seen.decode() + err
    if proc.returncode == 130:
        assert "jepa-dynamics sweep: interrupted while checking the rows of" in last and "unchanged" in last, last
    else:  # the check was done before the signal: the refusal of row 160001
        assert "jepa-dynamics sweep: error: --resume: cannot resume" in last, last
    assert path.read_bytes() == text


def test_csv_appender_line_checks_and_torn_utf8(tmp_path):
    """A check written line by line (as train-grid's) sees the block as str lines; a torn last
    line cut inside a multi-byte character is dropped; non-UTF-8 bytes are refused untouched."""
    path = tmp_path / "t.csv"
    header = ["# jepa-dynamics test"]
    with records.CsvAppender(str(path), header, ["a", "b"], key={"k": 1}) as app:
        app.write_columns([["x", "y", "z"], ["café", "2", "3"]])
    data = path.read_bytes()
    seen = []

    def check(start, lines):
        for i, ln in enumerate(lines):
            seen.append(ln)
            if ln.split(",")[0] not in ("x", "y", "z"):
                return i
        return None

    path.write_bytes(data + "w,caf".encode() + "é".encode()[:1])  # torn inside the é
    with records.CsvAppender(str(path), header, ["a", "b"], key={"k": 1}, resume=True, check=check) as app:
        assert app.done == 3
    assert seen == ["x,café", "y,2", "z,3"] and path.read_bytes() == data
    path.write_bytes(data + b"q,\xff\n")
    with pytest.raises(Exception, match="data row 4 .*not UTF-8 text"):
        records.CsvAppender(str(path), header, ["a", "b"], key={"k": 1}, resume=True, check=check)
    assert path.read_bytes() == data + b"q,\xff\n"


# --- single-value flags of matrix, spectrum and train-grid refuse lists (never cut to the first value) ------

@pytest.mark.parametrize("argv, needle", [
    (["matrix", "--objective", "jepa", "--depth", "1,2", "--dist", "rotated", "--dim", "3", "--eps", "1e-3"],
     "--depth: takes one value, got 2 (1,2)"),
    (["matrix", "--objective", "jepa", "--depth", "2", "--dist", "mixed", "--dim", "3", "--mixing", "0.1,0.5",
      "--eps", "1e-3"], "--mixing: takes one value, got 2"),
    (["spectrum", "--dataset", "digits", "--depth", "1", "--eps", "1e-2,1e-3"], "--eps: takes one value, got 2"),
    (["train-grid", "--lam", "1", "--rho", "0.9", "--eps", "0.01", "--steps", "100,200"], "--steps: takes one value"),
])
def test_single_value_flags_refuse_lists(capsys, tmp_path, argv, needle):
    out = tmp_path / "out"
    refused(capsys, [*argv, "--out", str(out)], needle)
    assert not out.exists()


# --- sweep's beyond-balanced axes at the edges of float64 -----------------------------------------------------

BEYOND_BALANCED = ["sweep", "--objective", "jepa", "--depth", "2", "--lam", "1", "--rho", "0.6", "--eps", "1e-3"]


@pytest.mark.parametrize("extra, needle", [
    (["--predictor-init", "abc"], "--predictor-init: 'abc' is not a number"),
    (["--predictor-init", "nan"], "--predictor-init: must be finite"),
    (["--ema-rate", "0"], "--ema-rate: must be > 0"),
    (["--ema-rate", "-1"], "--ema-rate: must be > 0"),
    (["--weight-decay", "-0.1"], "--weight-decay: must be >= 0"),
    (["--weight-decay", "inf"], "--weight-decay: must be finite"),
    (["--lr", "-0.5"], "--lr: must be >= 0"),
    (["--lr", "nan"], "--lr: must be finite"),
])
def test_beyond_balanced_axes_refuse_nonsense(capsys, tmp_path, extra, needle):
    out = tmp_path / "s.csv"
    refused(capsys, [*BEYOND_BALANCED, *extra, "--out", str(out)], needle)
    assert not out.exists()


@pytest.mark.parametrize("extra, learned", [
    (["--lr", "1e308"], "true"),                 # the first step overflows: never a crossing at step 0
    (["--predictor-init=-1e308"], "false"),      # v0^2 overflows: c = -inf, collapse (no warning)
    (["--predictor-init=1e200"], "false"),
    (["--weight-decay", "1e300"], "false"),
])
def test_beyond_balanced_axes_at_float64_edges_give_honest_rows(capsys, tmp_path, extra, learned):
    out = tmp_path / "s.csv"
    assert cli.main([*BEYOND_BALANCED, *extra, "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    row = records.read_csv(str(out))
    assert row["learned"][0] == learned
    assert row["t_star"][0] == np.inf  # never a finite time for a row that cannot be followed


# --- matrix: size guards and extreme times ---------------------------------------------------------------------

MATRIX = ["matrix", "--objective", "jepa", "--depth", "2", "--dist", "rotated", "--eps", "1e-3"]


@pytest.mark.parametrize("extra, needle", [
    (["--dim", "100000"], "--allow-large: jepa-dynamics matrix (d = 100000"),          # was: allocate 74.5 GiB, exit 1
    (["--dim", "3", "--num-times", "1000000000"], "--allow-large: jepa-dynamics matrix (d = 3, 1000000000 output"),  # was: killed for memory
])
def test_matrix_refuses_outputs_that_would_not_fit(capsys, tmp_path, extra, needle):
    out = tmp_path / "m"
    refused(capsys, [*MATRIX, *extra, "--out", str(out)], needle)
    assert not out.exists()


@pytest.mark.slow
def test_matrix_at_extreme_t_max_writes_and_warns_nothing(capsys, tmp_path):
    out = tmp_path / "m"
    assert cli.main([*MATRIX, "--dim", "3", "--t-max", "1e300", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.split() == [str(out / n) for n in ("summary.csv", "responses.csv", "end_to_end.npz", "plot.png")]


def test_spectrum_refuses_views_that_would_not_fit_in_memory(capsys, tmp_path):
    out = tmp_path / "s"
    refused(capsys, ["spectrum", "--dataset", "digits", "--n", "1000000000000", "--depth", "1", "--eps", "0.01",
                     "--out", str(out)], "--allow-large: --dataset digits with n = 1000000000000 would need")
    assert not out.exists()  # was: 'Unable to allocate 7.28 TiB', exit 1


@pytest.mark.slow
def test_train_grid_names_diverged_networks(capsys, tmp_path):
    out = tmp_path / "g"
    assert cli.main(["train-grid", "--lam", "1", "--rho", "0.9", "--eps", "0.01", "--steps", "50", "--lr", "1e300,0.01",
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "1 of 2 networks diverged" in err and "lower --lr" in err
    assert "1 of 2 networks ended at --steps 50" in err  # the other one, too short to cross: the unreached note
    table = records.read_csv(str(out / "summary.csv"))
    assert np.isnan(table["final_response"][0]) and np.isfinite(table["final_response"][1])


@pytest.mark.slow
def test_train_grid_names_features_the_run_was_too_short_for(capsys, tmp_path):
    """As train does for one run: features the theory learns that did not cross within --steps are
    named on one line, with the steps the gradient-flow closed form says they need."""
    from jepa_dynamics import theory

    lam, rho, lr = np.array([1.0, 0.3]), np.array([0.9, 0.5]), 0.05
    need = np.ceil(theory.critical_time("jepa", 2, lam, rho, 0.01) / lr)  # 8014 and 30975 steps
    steps = int(need[0]) + 10  # the first feature crosses, the second does not
    out = tmp_path / "g"
    assert cli.main(["train-grid", "--depth", "2", "--lam", "1,0.3", "--rho", "0.9,0.5", "--eps", "0.01",
                     "--lr", str(lr), "--seed", "0,1", "--steps", str(steps), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"2 of 2 networks ended at --steps {steps} before 2 (network, feature) rows" in err
    rerun = int(np.ceil(1.05 * need[1]))  # 5% headroom: gradient descent crosses a few steps after the flow
    assert f"needs up to {need[1]:.0f} steps" in err and f"with --steps {rerun}" in err
    assert cli.main(["train-grid", "--depth", "2", "--lam", "1,0.3", "--rho", "0.9,0.5", "--eps", "0.01",
                     "--lr", str(lr), "--seed", "0", "--steps", str(rerun), "--out", str(tmp_path / "h")]) == 0
    assert "ended at --steps" not in capsys.readouterr().err  # long enough: no note
