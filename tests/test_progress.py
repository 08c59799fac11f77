"""Progress off a terminal: every long command prints a plain line on stderr at a steady
interval when stderr is not a terminal, nothing with ``--no-progress``, and the same files
either way (the progress flags are not part of the provenance)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil

import pytest

from jepa_dynamics import cli
from jepa_dynamics.records import _progress

_TIME = r"\d+ (s|min \d\d s|h \d\d min)"
LINE = re.compile(rf"^[^:\n]+: \d+/\d+ [\w-]+ \(\d+%\), {_TIME}(, about {_TIME} left)?( \[.*\])?( \(done\))?$")


def _digests(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                out[os.path.relpath(os.path.join(folder, name), root)] = hashlib.sha1(f.read()).hexdigest()
    return out


class _Clock:
    def __init__(self):
        self.now = 100.0

    def monotonic(self):
        return self.now


def test_lines_come_at_the_interval_and_close_says_done(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress, "time", clock)
    bar = _progress.progress_bar(30, desc="job", unit="row")  # capsys: stderr is not a terminal
    assert isinstance(bar, _progress.ProgressLines)
    for _ in range(30):  # one row a second for 30 s: lines at 10 s and 20 s (30 s is the closing line)
        clock.now += 1.0
        bar.update(1)
        if bar.n == 29:
            assert capsys.readouterr().err.splitlines() == ["job: 10/30 row (33%), 10 s, about 20 s left",
                                                             "job: 20/30 row (67%), 20 s, about 10 s left"]
    bar.close()
    bar.close()  # a second close prints nothing more
    assert capsys.readouterr().err.splitlines() == ["job: 30/30 row (100%), 30 s (done)"]


def test_a_short_loop_is_silent_and_no_progress_is_silent(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress, "time", clock)
    quick = _progress.progress_bar(5, desc="quick", unit="row")
    for _ in range(5):
        clock.now += 1.0  # 5 s in all: under the 10 s interval
        quick.update(1)
    quick.close()
    off = _progress.progress_bar(5, desc="off", unit="row", enabled=False)
    for _ in range(5):
        clock.now += 100.0
        off.update(1)
    off.close()
    assert capsys.readouterr().err == ""


def test_time_left_follows_the_recent_pace(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress, "time", clock)
    bar = _progress.progress_bar(100, desc="slowing", unit="time")
    clock.now += 10.0
    bar.update(50)  # 50 in the first 10 s
    clock.now += 10.0
    bar.update(10)  # then 10 in 10 s: 40 left at that pace is 40 s (the average pace would say 13 s)
    bar.close()
    assert capsys.readouterr().err.splitlines()[:2] == ["slowing: 50/100 time (50%), 10 s, about 10 s left",
                                                         "slowing: 60/100 time (60%), 20 s, about 40 s left"]


def test_resumed_loop_estimates_from_its_own_pace(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress, "time", clock)
    bar = _progress.progress_bar(100, desc="resumed", unit="row", initial=80)
    clock.now += 10.0
    bar.update(10)  # 10 rows in 10 s, 10 left: about 10 s, not the 2.5 s the 80 kept rows would suggest
    bar.close()
    assert capsys.readouterr().err.splitlines()[0] == "resumed: 90/100 row (90%), 10 s, about 10 s left"


COMMANDS = {
    "sweep": ["sweep", "--method", "ode", "--objective", "jepa", "--depth", "1,2", "--lam", "1", "--rho", "0.5,0.8",
              "--out", "{d}/s.csv"],
    "simulate": ["simulate", "--objective", "jepa,mae", "--depth", "2", "--lam", "1", "--rho", "0.5",
                 "--num-times", "8", "--out", "{d}/w.csv"],
    "train": ["train", "--depth", "2", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05", "--steps", "200",
              "--records", "20", "--out", "{d}/run"],
    "train-grid": ["train-grid", "--depth", "1", "--lam", "1,2", "--rho", "0.5,0.8", "--lr", "0.05", "--steps",
                   "100", "--out", "{d}/grid"],
    "matrix": ["matrix", "--objective", "jepa", "--depth", "2", "--dist", "rotated", "--dim", "3", "--eps", "1e-3",
               "--num-times", "20", "--out", "{d}/m"],
    "spectrum --train": ["spectrum", "--dataset", "digits", "--n", "1000", "--depth", "1", "--eps", "0.01",
                         "--train", "--objective", "mae", "--train-modes", "2", "--records", "10", "--matrix",
                         "--out", "{d}/spec"],
}
SLOW = {"train-grid", "spectrum --train"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in COMMANDS])
@pytest.mark.slow
def test_command_prints_lines_off_a_terminal_and_none_with_no_progress(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr(_progress, "INTERVAL_S", 0.0)  # a line on every step of the loop
    runs, work = {}, tmp_path / "work"
    for mode, extra in (("lines", []), ("off", ["--no-progress"])):
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()  # the same folder both times: the paths are in the provenance line
        assert cli.main([a.format(d=work) for a in COMMANDS[name]] + extra) == 0
        err = capsys.readouterr().err.splitlines()
        runs[mode] = (_digests(work), err)
    digests, err = runs["lines"]
    lines = [line for line in err if LINE.match(line)]
    assert lines and any(line.endswith("(done)") for line in lines), err
    off_digests, off_err = runs["off"]
    assert off_err == [line for line in err if line not in lines]  # the notes stay, the progress goes
    assert off_digests == digests  # byte-identical files, provenance line included
