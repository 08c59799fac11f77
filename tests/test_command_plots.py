"""The plots the commands draw, read back from their matplotlib figures: what each axis holds,
not only that a PNG was written."""

import numpy as np
import pytest

from jepa_dynamics import records
from jepa_dynamics.api import sweep as api_sweep
from jepa_dynamics.experiments import sweep
from jepa_dynamics.figures.commands import sweep_figure, trajectory_figure


def _sweep_figure(tmp_path, **grid):
    out = str(tmp_path / "s.csv")
    api_sweep(out=out, **grid)
    return sweep_figure(records.read_csv(out))


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def test_sweep_figure_default_grid_shows_jepa_falling_with_rho_more_steeply_with_depth(tmp_path):
    fig = _sweep_figure(tmp_path)
    axes = fig.axes
    assert len(axes) == 4  # rows rho, lam; columns JEPA, MAE
    assert [ax.get_title() for ax in axes[:2]] == ["JEPA", "MAE"]
    assert all("rho" in ax.get_xlabel() for ax in axes[:2]) and all("lambda" in ax.get_xlabel() for ax in axes[2:])
    for ax in axes:
        for ln in ax.get_lines():
            assert np.unique(ln.get_xdata()).size > 1, (ax.get_xlabel(), ln.get_label())
    jepa_rho, mae_rho = _lines(axes[0]), _lines(axes[1])
    assert set(jepa_rho) == {"L = 1", "L = 2", "L = 4"}

    def fall(line):  # t* at the smallest rho over t* at the largest
        x, y = line.get_xdata(), line.get_ydata()
        return y[np.argmin(x)] / y[np.argmax(x)]

    falls = [fall(jepa_rho[f"L = {d}"]) for d in (1, 2, 4)]
    assert falls[0] < 1.02 and falls[0] < falls[1] < falls[2] and falls[2] > 2
    assert all(0.85 < fall(ln) < 1.0 for ln in mae_rho.values())  # MAE: flat (if anything slower at high rho)
    for c in (0, 1):  # each (objective, depth) is divided by its fastest feature drawn: its minimum is 1
        for label in jepa_rho:
            ys = np.concatenate([_lines(axes[c + 2 * r])[label].get_ydata() for r in (0, 1)])
            assert ys.min() == 1.0 and ys.max() > 1.0
    for ax in axes[2:]:  # t* ~ 1 / lam at fixed rho, every objective and depth
        for ln in ax.get_lines():
            x, y = ln.get_xdata(), ln.get_ydata()
            assert y[np.argmin(x)] / y[np.argmax(x)] == pytest.approx(2.0, rel=1e-9)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["L = 1", "L = 2", "L = 4"]
    assert fig.legends[0].get_title().get_text() == "encoder depth"


@pytest.mark.parametrize("grid, rows, objectives", [
    (dict(lam=1), ("rho",), ("JEPA", "MAE")),
    (dict(rho=0.6), ("lambda",), ("JEPA", "MAE")),
    (dict(objective="jepa"), ("rho", "lambda"), ("JEPA",)),
    (dict(objective="mae", lam=1), ("rho",), ("MAE",)),
])
def test_sweep_figure_draws_only_the_axes_the_grid_varies(tmp_path, grid, rows, objectives):
    axes = _sweep_figure(tmp_path, **grid).axes
    assert len(axes) == len(rows) * len(objectives)
    assert [ax.get_title() for ax in axes[:len(objectives)]] == list(objectives)
    for r, name in enumerate(rows):
        for ax in axes[r * len(objectives):(r + 1) * len(objectives)]:
            assert name in ax.get_xlabel()
            assert all(np.unique(ln.get_xdata()).size > 1 for ln in ax.get_lines()) and ax.get_lines()


def test_sweep_figure_of_one_feature_draws_critical_time_per_depth(tmp_path):
    fig = _sweep_figure(tmp_path, lam=1, rho=0.6)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L = 1", "L = 2", "L = 4"]
    table = records.read_csv(str(tmp_path / "s.csv"))
    jepa = [ln for ln in ax.get_lines() if ln.get_label() == "JEPA"][0]
    np.testing.assert_array_equal(jepa.get_ydata(), table["t_star"][table["objective"] == "jepa"])


def test_trajectory_figure_line_style_is_the_objective_and_the_marker_the_feature():
    params, ts, w = sweep.simulate(sweep.parse_grid("jepa,mae", "1,2", "0.5,1", "0.3,0.9", "1e-3"), num=20)
    fig = trajectory_figure(params, ts, w)
    markers = {}
    for ax, (title, style) in zip(fig.axes, (("JEPA", "-"), ("MAE", "--"))):
        assert ax.get_title() == title
        lines = ax.get_lines()
        assert len(lines) == 8 and {ln.get_linestyle() for ln in lines} == {style}
        for ln in lines:
            markers.setdefault(ln.get_marker(), set()).add(ln.get_color())
    assert len(markers) == 4  # one marker per (lam, rho) pair, each drawn in both depths' colours
    assert all(len(colours) == 2 for colours in markers.values())
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names[:4] == ["L = 1", "L = 2", "JEPA", "MAE"]
    assert names[4:] == [f"$\\lambda$={a:g}, $\\rho$={b:g}" for a in (0.5, 1) for b in (0.3, 0.9)]
    by_label = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    assert by_label["MAE"].get_linestyle() == "--" and by_label["JEPA"].get_linestyle() == "-"


def _result(config, responses, times):
    from jepa_dynamics.training import train

    steps = np.round(np.asarray(times) / config.lr).astype(int)
    return train.TrainResult(config, config.dataset(), steps, np.asarray(times), np.asarray(responses), None, None, {})


def test_train_plot_draws_responses_over_w_star():
    """A feature with w_star = 0.064 that the network learned reads as learned: its markers reach 1."""
    from jepa_dynamics import theory
    from jepa_dynamics.training import runs, train

    config = train.TrainConfig(depth=3, lam=(1.0, 1.0), rho=(0.9, 0.4), eps=1e-3, lr=1.0, steps=60000, grid="log")
    times = np.concatenate([[0.0], np.geomspace(1, 6e4, 80)])
    resp = theory.trajectory("jepa", 3, np.array([1.0, 1.0]), np.array([0.9, 0.4]), 1e-3, times).T
    ax = runs.response_figure(_result(config, resp, times)).axes[0]
    assert "w^*" in ax.get_ylabel()
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    w_star = np.array([0.9 ** 3, 0.4 ** 3])
    for ln, i in zip(markers, (0, 1)):
        np.testing.assert_allclose(ln.get_ydata(), resp[1:, i] / w_star[i], rtol=1e-12)
        assert ln.get_ydata().max() > 0.99
    theory_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_marker() in ("None", "")]
    assert len(theory_lines) == 2 and all(abs(ln.get_ydata().max() - 1) < 1e-3 for ln in theory_lines)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["i=0: lam=1, rho=0.9, w*=0.729", "i=1: lam=1, rho=0.4, w*=0.064"]


@pytest.mark.slow
def test_train_plot_of_a_random_init_divides_by_the_matrix_flows_final_response():
    from jepa_dynamics.training import runs, train
    from jepa_dynamics.training._summary import theory_columns

    config = train.TrainConfig(depth=2, lam=(1.0, 0.8), rho=(0.9, 0.5), eps=1e-2, lr=0.2, steps=4000,
                               init="random", grid="log")
    cols = theory_columns(config, config.dataset(), gd=False)
    learned = np.asarray(cols["learned_theory"], bool)
    assert cols["theory"] == "matrix_flow" and learned.tolist() == [True, False]  # JEPA loses feature 1
    times = np.concatenate([[0.0], np.geomspace(0.2, 800, 30)])
    resp = np.outer(np.linspace(0.01, 1, times.size), [0.8, 0.2])  # any responses: only the scale is checked
    ax = runs.response_figure(_result(config, resp, times)).axes[0]
    assert "matrix flow's final response" in ax.get_ylabel() and "over their first response" in ax.get_ylabel()
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose(markers[0].get_ydata(), resp[1:, 0] / abs(cols["w_inf"][0]), rtol=1e-12)
    np.testing.assert_allclose(markers[1].get_ydata(), resp[1:, 1] / resp[0, 1], rtol=1e-12)  # not learned
    # the balanced theory is not a random init's: no theory line is drawn
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_marker() in ("None", "")]


def test_fidelity_figure_compares_with_the_gradient_flow_theory_and_names_both_theories():
    from jepa_dynamics.training.grid import fidelity_figure

    flow = np.array([10.0, 20.0, 40.0, 80.0])
    gd = flow * (1 + np.array([3e-3, 2e-3, 5e-3, 1e-3]))
    emp = gd * (1 + 1e-15)
    table = {"objective": np.array(["jepa", "jepa", "mae", "mae"]), "depth": np.array([1, 1, 2, 2]),
             "t_star_theory": flow, "t_star_gd": gd, "t_star_empirical": emp,
             "learned_theory": np.array(["true"] * 4), "learned_empirical": np.array(["true"] * 4)}
    fig = fidelity_figure(table)
    scatter, errors = fig.axes
    assert "gradient-flow" in scatter.get_xlabel()
    np.testing.assert_allclose(np.concatenate([ln.get_xdata() for ln in scatter.get_lines()[:2]]), flow)
    assert "relative error" in errors.get_ylabel()
    by_marker = {}
    for ln in errors.get_lines():
        by_marker.setdefault(ln.get_marker(), []).append(ln.get_ydata())
    np.testing.assert_allclose(np.concatenate(by_marker["o"]), np.abs(emp / flow - 1), rtol=1e-9)  # ~1e-3
    assert np.all(np.concatenate(by_marker["D"]) < 1e-14)  # the GD map: rounding
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(names) == 2 and "t_star_theory" in names[0] and "gradient-flow" in names[0]
    assert "t_star_gd" in names[1] and "GD map" in names[1]
    assert [h.get_marker() for h in fig.legends[0].legend_handles] == ["o", "D"]


@pytest.mark.slow
def test_matrix_plot_fits_the_time_axis_to_the_dynamics_and_names_the_modes(tmp_path, monkeypatch):
    from jepa_dynamics.api import matrix as api_matrix
    from jepa_dynamics.experiments import matrix_run

    drawn = []
    real = matrix_run.matrix_figure
    monkeypatch.setattr(matrix_run, "matrix_figure", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    api_matrix(objective="jepa", depth=2, dist="rotated", dim=4, seed=4, eps=1e-3, num_times=120,
               out=str(tmp_path / "run"))
    s = records.read_csv(str(tmp_path / "run" / "summary.csv"))
    times = records.read_csv(str(tmp_path / "run" / "responses.csv"))["time"]
    (fig,) = drawn
    curves, rows, bar = fig.axes
    lo, hi = curves.get_xlim()
    assert rows.get_xlim() == (lo, hi)
    t_star = np.r_[s["t_star_matrix"], s["t_star_theory"]]
    assert 0.05 * t_star.min() < lo < t_star.min() and t_star.max() < hi < 5 * t_star.max()
    assert hi / lo < 1e3 < times.max() / times[times > 0].min()  # far narrower than the run's time grid
    # one row per mode: the engine's and the theory's t* of mode i sit at y = i, and nowhere else
    for marker, column in (("o", "t_star_matrix"), ("x", "t_star_theory")):
        pts = [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in rows.get_lines() if ln.get_marker() == marker]
        assert [y for _, y in pts] == list(range(4))
        np.testing.assert_allclose([x for x, _ in pts], s[column], rtol=1e-12)
    assert [t.get_text() for t in bar.get_yticklabels()] == [f"{i}: $\\rho$={r:.2g}" for i, r in enumerate(s["rho"])]
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names == ["full-matrix flow (t_star_matrix)", "per-feature theory (t_star_theory)"]


def test_spectrum_figure_draws_one_row_per_requested_depth_on_one_colour_scale():
    from jepa_dynamics.realdata import spectrum
    from jepa_dynamics.theory import modes as modes_mod

    lam = np.array([1.0, 0.5, 0.2, 0.1, -0.05])
    sigma2 = np.array([1.2, 1.0, 0.5, 1.0, 1.0])
    m = modes_mod.decompose(np.diag(sigma2), np.diag(lam))
    table = spectrum.mode_table(m, [1, 2, 3, 4], 1e-3)
    fig = spectrum.spectrum_figure(table, m)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 8 and len(fig.axes) == 9  # 4 depths x (JEPA, MAE), and one colourbar
    for r, d in enumerate((1, 2, 3, 4)):
        assert [ax.get_title().split(":")[0] for ax in panels[2 * r:2 * r + 2]] == [f"JEPA, L = {d}", f"MAE, L = {d}"]
    limits = {(c.norm.vmin, c.norm.vmax) for ax in panels for c in ax.collections if c.get_array() is not None}
    assert len(limits) == 1  # one colour scale for every panel
    assert len([ax for ax in spectrum.spectrum_figure(table, m, depth=[1, 4]).axes if ax.get_title()]) == 4


@pytest.mark.slow
def test_sweep_figure_beyond_balanced_draws_the_first_setting_and_says_so(tmp_path):
    fig = _sweep_figure(tmp_path, objective="jepa", depth=2, lam=1, rho="0.3,0.6,0.9",
                        predictor_init="balanced,-0.05", weight_decay="0,1e-2")
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    table = records.read_csv(str(tmp_path / "s.csv"))
    first = (table["predictor_init"] == table["predictor_init"][0]) & (table["weight_decay"] == 0)
    np.testing.assert_allclose(line.get_ydata(), table["t_star"][first] / table["t_star"][first].min(), rtol=1e-12)
    assert "predictor_init" in fig.get_suptitle() and "weight_decay" in fig.get_suptitle()
    assert "predictor_init" not in _sweep_figure(tmp_path, objective="jepa").get_suptitle()
