"""sweep's beyond-balanced dimensions (docs/theory.md section 9): --predictor-init, --ema-rate, --weight-decay, --lr."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from jepa_dynamics import records
from jepa_dynamics.experiments.sweep import SWEEP_COLUMNS

from test_aligned import direct
from test_gd import numpy_loop


def _sweep(tmp_path, *flags, name="s.csv"):
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "jepa_dynamics", "sweep", "--no-progress", "--out", str(out), *flags],
                          capture_output=True, text=True, timeout=300)
    return proc, out


@pytest.mark.slow
def test_new_columns_agree_with_direct_integration(tmp_path):
    proc, out = _sweep(tmp_path, "--objective", "jepa,mae", "--depth", "1,2", "--lam", "1", "--rho", "0.6",
                       "--eps", "1e-2", "--predictor-init", "balanced,-0.2,0.05", "--weight-decay", "0,0.002",
                       "--lr", "0,0.2")
    assert proc.returncode == 0, proc.stderr
    table = records.read_csv(str(out))
    assert list(table) == list(SWEEP_COLUMNS) and len(SWEEP_COLUMNS) == 17
    learned = np.asarray(table["learned"]).astype(str)
    assert set(learned) == {"true", "false"}
    checked = 0
    for i in range(len(table["objective"])):
        obj, d = str(table["objective"][i]), int(table["depth"][i])
        v0, beta, eta = float(table["predictor_init"][i]), float(table["weight_decay"][i]), float(table["lr"][i])
        t = float(table["t_star"][i])
        if learned[i] == "false":
            assert math.isinf(t)
            continue
        level = 0.5 * abs(float(table["w_inf"][i]))
        if eta == 0:
            assert str(table["critical_step"][i]) in ("", "nan")
            t_ref, _ = direct(obj, d, 1.0, 0.6, 1e-2, v0, level, beta=beta, t_max=1e5)
            assert t_ref == pytest.approx(t, rel=1e-6)
        else:
            k = numpy_loop(obj, d, 1.0, 0.6, 1e-2 ** (1 / d), v0, eta, level, beta=beta)
            assert float(table["critical_step"][i]) == pytest.approx(k, rel=1e-10)
            assert t == pytest.approx(eta * k, rel=1e-10)
        checked += 1
    assert checked >= 10


@pytest.mark.slow
def test_today_rows_unchanged_and_errors(tmp_path):
    proc, out = _sweep(tmp_path, "--depth", "1,3", "--rho", "0.5,1.2", "--eps", "1e-3")
    assert proc.returncode == 0
    proc2, out2 = _sweep(tmp_path, "--depth", "1,3", "--rho", "0.5,1.2", "--eps", "1e-3", "--predictor-init",
                         "balanced", "--ema-rate", "inf", "--weight-decay", "0", "--lr", "0", name="t.csv")
    a, b = records.read_csv(str(out)), records.read_csv(str(out2))
    for name in SWEEP_COLUMNS[:10]:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name]))
    from jepa_dynamics import theory

    for obj in ("jepa", "mae"):
        m = np.asarray(a["objective"]).astype(str) == obj
        ref = theory.critical_time(obj, np.asarray(a["depth"], float)[m].astype(int), np.asarray(a["lam"], float)[m],
                                   np.asarray(a["rho"], float)[m], 1e-3)
        np.testing.assert_array_equal(np.asarray(a["t_star"], float)[m], ref)
        assert (np.asarray(a["learned"]).astype(str)[m] == "true").all()
    proc, out = _sweep(tmp_path, "--objective", "jepa", "--depth", "2", "--lam", "1", "--rho", "0.6", "--eps",
                       "1e-2", "--predictor-init", "0.595", name="bad.csv")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--predictor-init" in proc.stderr
    assert not out.exists()
    proc, _ = _sweep(tmp_path, "--objective", "mae", "--ema-rate", "1", name="bad2.csv")
    assert proc.returncode == 2 and "--ema-rate" in proc.stderr


@pytest.mark.slow
def test_too_slow_an_ema_target_is_one_line(tmp_path):
    """--ema-rate far below the encoder's rates: the integration cannot settle; one line naming why."""
    proc, _ = _sweep(tmp_path, "--objective", "jepa", "--depth", "1", "--ema-rate", "1e-300", name="slow.csv")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "use a larger ema_rate" in proc.stderr
