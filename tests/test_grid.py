"""The grid engine (many networks in one vmapped, sharded program) and ``jepa-dynamics train-grid``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jepa_dynamics import cli, records
from jepa_dynamics.training import grid, train

LAM, RHO = (1.0, 0.6, 1.4), (0.9, 0.7, 0.5)


def _levels(configs):
    pred = grid.predict(configs)
    return np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)


@pytest.mark.slow
def test_grid_rows_equal_single_train_runs():
    """Every network of a mixed grid (lr, eps, init incl. aligned with negative V0 and random, seed,
    EMA, weight decay as data in one program; and a minibatch group) gives the critical times of a
    single ``train`` run of the same network, to 1e-9, with the same seed."""
    base = dict(objective="jepa", depth=2, lam=LAM, rho=RHO, steps=2500, records=1)
    configs = [
        dict(eps=0.02, lr=0.05), dict(eps=0.05, lr=0.08, seed=3), dict(eps=0.05, lr=0.08, ema=0.2),
        dict(eps=0.05, lr=0.05, weight_decay=0.002), dict(eps=0.05, lr=0.08, init="aligned", predictor_init=-0.1),
        dict(eps=0.05, lr=0.08, init="aligned", predictor_init=0.3), dict(eps=0.05, lr=0.08, init="random", seed=1),
    ]
    sampled = [dict(objective="mae", depth=1, eps=0.05, lr=0.05, init="random", loss="sampled", batch=16, seed=s)
               for s in (0, 1)]
    configs = [train.TrainConfig(**{**base, **c}) for c in configs + sampled]
    groups = grid.plan(configs)
    assert [g.tolist() for g in groups] == [list(range(7)), [7, 8]]
    levels = _levels(configs)
    for idx in groups:
        res = grid.train_group([configs[i] for i in idx], levels[idx])
        for row, i in enumerate(idx):
            single = train.train(configs[i]).critical_times()
            assert np.array_equal(np.isnan(single), np.isnan(res.critical_times[row]))
            np.testing.assert_allclose(res.critical_times[row], single, rtol=1e-9, atol=0)
    assert np.isfinite(res.critical_times).sum() >= 3


SHARDED = r"""
import json, sys
import numpy as np
import jax
from jepa_dynamics.training import grid, train
assert len(jax.devices()) == 4, jax.devices()
configs = grid.configs_from(dict(objective="jepa", depth=2, lam=(1.0, 0.6), rho=(0.9, 0.7), steps=1500, init="random",
                                 loss="sampled", batch=8), {"eps": [0.02, 0.05], "lr": [0.05, 0.1], "seed": [0, 1, 2]})
configs = configs[:10]  # 10 networks: padded to 12 on 4 devices
pred = grid.predict(configs)
levels = np.where(pred.learned, 0.5 * np.abs(pred.w_inf), np.inf)
four = grid.train_group(configs, levels)
one = grid.train_group(configs, levels, devices=jax.devices()[:1])
print(json.dumps({k: [np.asarray(getattr(r, k)).tobytes().hex() for r in (four, one)]
                  for k in ("critical_times", "final", "first")}))
"""


@pytest.mark.slow
def test_sharded_equals_unsharded_on_four_cpu_devices():
    """4 forced CPU devices (XLA_FLAGS must be set before JAX starts: a subprocess): the sharded grid
    gives the single-device result bit for bit, padding included."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key, (four, one) in result.items():
        assert four == one, key
    t = np.frombuffer(bytes.fromhex(result["critical_times"][0]))
    assert t.size == 20 and np.isfinite(t).sum() >= 4


GRID = ["train-grid", "--objective", "jepa,mae", "--depth", "1,2", "--lam", "1,0.6", "--rho", "0.9,0.6",
        "--eps", "0.05", "--lr", "0.08", "--init", "balanced,aligned", "--predictor-init=-0.1,0.2",
        "--seed", "0", "--steps", "1500"]


@pytest.mark.slow
def test_train_grid_files_resume_and_refusals(tmp_path, capsys, monkeypatch):
    """summary.csv has one row per (network, feature) with the columns docs/grid.md lists, fidelity.png is drawn;
    an interrupted grid resumed gives the uninterrupted file byte for byte; hostile commands are one
    line, exit 2, and change no file."""
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert cli.main(GRID + ["--out", full]) == 0
    table = records.read_csv(os.path.join(full, "summary.csv"))
    assert os.path.getsize(os.path.join(full, "fidelity.png")) > 10_000
    n_networks = 2 * 2 * 3  # objective x depth x (balanced, aligned V0=-0.1, aligned V0=0.2)
    assert len(table["feature"]) == 2 * n_networks
    head = open(os.path.join(full, "summary.csv")).read().split("\n")
    columns = [ln for ln in head if not ln.startswith("#")][0].split(",")
    assert columns[:17] == ["objective", "depth", "eps", "lr", "init", "seed", "ema_rate", "weight_decay", "feature", "lam",
                            "rho", "t_star_theory", "t_star_gd", "t_star_empirical",
                            "learned_theory", "learned_empirical", "final_response"]
    learned = table["learned_theory"] == "true"
    done = learned & np.isfinite(table["t_star_empirical"])
    assert np.all((table["learned_empirical"] == "true")[done | ~learned] == learned[done | ~learned])
    assert done.sum() >= 10 and (~learned).sum() >= 2
    np.testing.assert_allclose(table["t_star_empirical"][done], table["t_star_gd"][done], rtol=1e-9)
    assert np.all(np.isnan(table["t_star_empirical"][~learned]))

    # interrupted after the first block (one shape: 3 networks), then resumed
    real = grid.train_group
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(grid, "train_group", flaky)
    assert cli.main(GRID + ["--block", "4", "--out", part]) == 130
    assert "interrupted after 3 of 12 networks" in capsys.readouterr().err
    monkeypatch.setattr(grid, "train_group", real)
    assert cli.main(GRID + ["--block", "4", "--out", part, "--resume"]) == 0
    assert "1 of 12 networks ended at --steps" in capsys.readouterr().err  # one network's run is too short
    body = lambda p: [ln for ln in open(p).read().split("\n") if not ln.startswith("# command")]  # noqa: E731
    assert body(os.path.join(part, "summary.csv")) == body(os.path.join(full, "summary.csv"))

    before = {n: open(os.path.join(full, n), "rb").read() for n in ("summary.csv", "fidelity.png")}
    hostile = [
        (["--depth", "1,x"], "--depth: 'x' is not a number"),
        (["--lr", "0.1,-1"], "--lr:"),
        (["--model", "mlp"], "--model: train-grid trains deep linear encoders"),
        (["--batch", "8,16"], "--batch: takes one value"),
        (["--eps", "0.5"], "--eps:"),
        (["--objective", "byol"], "--objective:"),
        (["--seed", ","], "--seed:"),
        (["--lr", "0.2", "--resume"], "--resume: cannot resume"),
    ]
    for change, message in hostile:
        args = list(GRID)
        for flag, value in zip(change[::2], change[1::2]):
            if flag in args:
                args[args.index(flag) + 1] = value
            else:
                args += [flag, value]
        if change[-1] == "--resume":
            args = [a for a in args if a != "--resume"] + ["--resume"]
        status = cli.main(args + ["--out", full])
        err = capsys.readouterr().err.strip()
        assert status == 2 and len(err.splitlines()) == 1 and message in err, (change, err)
        after = {n: open(os.path.join(full, n), "rb").read() for n in before}
        assert after == before, change


@pytest.mark.slow
def test_gd_theory_is_followed_as_far_as_the_run():
    """``critical_time_gd`` is the exact GD map's crossing when it falls within the run's steps
    (the same value as the uncapped map) and ``nan`` after them; the gradient-flow column is
    unchanged."""
    base = dict(objective="jepa", depth=2, lam=(1.0, 0.3), rho=(0.9, 0.5), eps=1e-3, lr=0.05)
    full = train.prediction(train.TrainConfig(**base, steps=10), lr=0.05)  # uncapped: the map's own steps
    k_fast, k_slow = full.critical_step
    steps = int((k_fast + k_slow) // 2)
    pred = grid.predict([train.TrainConfig(**base, steps=steps)])
    assert pred.critical_time_gd[0, 0] == full.critical_time[0]
    assert np.isnan(pred.critical_time_gd[0, 1])
    assert np.all(np.isfinite(pred.critical_time)) and pred.learned.all()


@pytest.mark.slow
def test_grid_balanced_init_equals_each_networks_own():
    """The grid draws every balanced init at eps = 1 in one program and scales it per network:
    the same matrices as each network's own ``models.balanced`` (float32: bit for bit; float64:
    to rounding, ``u (F1 F0^T)`` against ``(u F1) F0^T``)."""
    import jax

    for dtype, tol in (("float32", 0.0), ("float64", 1e-15)):
        cs = grid.configs_from(dict(objective="jepa", depth=3, lam=LAM, rho=RHO, steps=10, dtype=dtype),
                               {"eps": [1e-3, 1e-2], "seed": [0, 1]})
        keys = np.stack([np.asarray(jax.random.PRNGKey(c.seed + 7)) for c in cs])
        stacked = grid._init_models(cs, keys)
        for i, c in enumerate(cs):
            own = train._init_model(c, keys[i], c.dim)
            for a, b in zip(jax.tree_util.tree_leaves(own), jax.tree_util.tree_leaves(stacked)):
                a, b = np.asarray(a), np.asarray(b)[i]
                assert a.dtype == b.dtype
                np.testing.assert_allclose(b, a, rtol=0, atol=tol * np.abs(a).max())
