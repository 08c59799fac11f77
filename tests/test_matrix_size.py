"""The size of a ``matrix`` run: the estimate its guard refuses by, held against measured runs,
and the refusal of a run that would not fit."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from jepa_dynamics import cli
from jepa_dynamics.experiments import matrix_run

ARGV = ["matrix", "--objective", "jepa", "--depth", "2", "--dist", "mixed", "--eps", "1e-2", "--no-progress"]


@pytest.mark.slow
def test_output_estimate_is_within_a_fifth_of_the_files_written(tmp_path, capsys):
    dim, num_times = 12, 200
    out = tmp_path / "m"
    assert cli.main(ARGV + ["--dim", str(dim), "--num-times", str(num_times), "--out", str(out)]) == 0
    written = sum(os.path.getsize(out / name) for name in os.listdir(out))
    wbar_bytes = (num_times + 1) * dim * dim * 8  # end_to_end.npz's (T, d, d) float64, computed here
    assert os.path.getsize(out / "end_to_end.npz") > wbar_bytes
    estimate, _ = matrix_run.footprint(dim, 2, num_times)
    assert 0.8 < estimate / written < 1.25, (estimate, written)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")
def test_peak_memory_is_within_a_factor_1_5_of_the_estimate(tmp_path):
    """d = 24, 400 output times: 0.45 GB peak measured (1.41 GB before the solver's step records
    stopped holding each segment's whole padded step buffer, 16 x 8192 x d bytes per output time)."""
    dim, num_times = 24, 400
    # VmHWM, the peak of this process's own memory (ru_maxrss would keep the forking pytest's across exec)
    code = ("import sys; from jepa_dynamics import cli; status = cli.main(sys.argv[1:]); "
            "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]); "
            "sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, *ARGV, "--dim", str(dim), "--num-times", str(num_times),
                           "--out", str(tmp_path / "m")], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split()[-1]) * 1024  # kB
    _, estimate = matrix_run.footprint(dim, 2, num_times)
    assert 1 / 1.5 < estimate / peak < 1.5, (estimate, peak)


def test_a_huge_dim_is_refused_in_one_line_changing_nothing(tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "summary.csv").write_text("an earlier run\n")
    before = hashlib.sha256((out / "summary.csv").read_bytes()).hexdigest()
    status = cli.main(ARGV + ["--dim", "200000", "--num-times", "400", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    # 401 x 200000^2 float64 matrices: 1.28e14 bytes, computed independently of footprint()
    assert "--allow-large: jepa-dynamics matrix (d = 200000, 400 output times) would write about 128 TB" in err, err
    assert os.listdir(out) == ["summary.csv"]
    assert hashlib.sha256((out / "summary.csv").read_bytes()).hexdigest() == before


def test_memory_estimate_grows_with_the_output_grid_as_the_arrays_do():
    dim = 30
    _, small = matrix_run.footprint(dim, 2, 100)
    _, large = matrix_run.footprint(dim, 2, 400)
    # 300 more times, each a d x d Wbar held twice while stacked and d responses: 16 (d^2 + d) bytes
    np.testing.assert_allclose(large - small, 300 * 16 * (dim**2 + dim))
