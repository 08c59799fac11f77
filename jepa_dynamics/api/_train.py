"""``train`` and ``train_grid``: real encoders trained on synthetic data and held against the theory.

Twins of ``jepa-dynamics train`` and ``jepa-dynamics train-grid`` (same flags, same defaults,
byte-identical files).  The theory each run is held against: docs/theory.md sections 1-9.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..theory import spec
from . import _common

__all__ = ["TrainRun", "TrainGrid", "train", "train_grid", "GRID_LISTS"]

# train flags that may hold commas (lists, a path)
_TRAIN_LISTS = ("lam", "rho", "checkpoints", "out")
# train-grid's list flags and the type of their entries
GRID_LISTS = {"objective": str, "depth": int, "eps": float, "lr": float, "init": str, "init_scale": float,
              "predictor_init": float, "ema_rate": float, "weight_decay": float, "seed": int}
_ONE = _common.one
# the one line a deprecated --ema (ema=) prints; the EMA is --ema-rate KAPPA (docs/columns.md, Vocabulary)
EMA_DEPRECATED = "--ema TAU is deprecated (goes in the next release); use --ema-rate KAPPA, KAPPA = (1 - TAU) / lr"


def _ema_lists(a: dict, report):
    """The EMA of ``train``/``train-grid`` from the flags' text ``a``: ``("ema_rate", [kappa, ...])``, or for the
    deprecated ``--ema TAU`` (said once, :data:`EMA_DEPRECATED`) ``("ema", [tau, ...])``."""
    if a["ema"] is None:
        return "ema_rate", spec.parse_ema_rates(a["ema_rate"], "ema_rate")
    if a["ema_rate"] != "inf":
        raise spec.SpecError("ema", "give --ema-rate KAPPA or the deprecated --ema TAU, not both")
    taus = [spec.check_ema(tau, "ema") for tau in spec.parse_list(a["ema"], "ema")]  # a bad value: the one error line
    _common.deprecated(EMA_DEPRECATED, report)
    return "ema", taus


def _check_mae_ema(objectives, name, values) -> None:
    """An EMA target is JEPA's: a run (or a grid) with no JEPA network and a finite rate (or ``tau > 0``) is
    refused, naming the flag; in a grid with JEPA networks the others drop the EMA."""
    finite = [v for v in values if (v != 0 if name == "ema" else v != float("inf"))]
    if not finite or "jepa" in objectives:
        return
    if all(o == "mae" for o in objectives):
        raise spec.SpecError(name, "an EMA target only exists for --objective jepa (MAE has no target encoder)")
    raise spec.SpecError(name, f"an EMA target only exists for --objective jepa ({', '.join(objectives)} "
                               f"{'has' if len(objectives) == 1 else 'have'} no target encoder)")


@dataclasses.dataclass(frozen=True)
class TrainRun:
    """What :func:`train` wrote and trained: ``out`` (the run's folder), ``files`` (the paths it
    holds: responses.csv, summary.csv, plot.png, state.eqx, checkpoints) and ``result``
    (:class:`jepa_dynamics.training.train.TrainResult`: steps, times, responses, the model)."""

    out: str
    files: list
    result: object


@dataclasses.dataclass(frozen=True)
class TrainGrid:
    """What :func:`train_grid` wrote: ``out``, ``files`` (summary.csv, fidelity.png) and ``table``,
    the summary as ``{column: array}`` (one row per network and feature; docs/columns.md)."""

    out: str
    files: list
    table: dict


def _training_config(a: dict):
    """The keyword arguments of a :class:`~jepa_dynamics.training.train.TrainConfig` that
    ``train`` and ``train-grid`` share, read from the flags' text ``a`` (``steps`` is read by
    :func:`_steps`).  ``loss`` defaults to the model's: population for a deep linear encoder and
    predictor (exact), sampled otherwise (an MLP has no population loss in closed form)."""
    lam = None if a["lam"] is None else spec.parse_list(a["lam"], "lam")
    rho = None if a["rho"] is None else spec.parse_list(a["rho"], "rho")
    model, predictor = a.get("model", "linear"), a.get("predictor", "linear")
    loss = a["loss"] if a["loss"] is not None else (
        "population" if model == "linear" and predictor == "linear" else "sampled")
    return dict(model=model, lam=lam, rho=rho, dist=a["dist"], dim=_ONE(a["dim"], "dim", int),
                loss=loss, batch=_ONE(a["batch"], "batch", int), optimizer=a["optimizer"],
                width=_ONE(a.get("width"), "width", int), activation=a.get("activation", "tanh"),
                predictor=predictor, fraction=_ONE(a["fraction"], "fraction"),
                matmul_precision=a["matmul_precision"])


# ``--steps auto``: run to this multiple of the latest critical time the gradient-flow theory predicts
# (the crossing at fraction * |w_inf| is half-way up the sigmoid; twice its time reaches the plateau)
AUTO_STEPS_FACTOR = 2.0


def _auto_steps(configs, critical_time, learned) -> int:
    """``--steps auto``: ``ceil(AUTO_STEPS_FACTOR * max t* / lr)`` over the features the theory
    learns (``critical_time``, ``learned``: one row per config; every network of a grid shares
    the largest).  It needs the gradient-flow theory to describe the run: a deep linear encoder
    and predictor trained by SGD."""
    for c in configs:
        if c.model != "linear" or c.predictor != "linear" or c.optimizer != "sgd":
            raise spec.SpecError("steps", "auto follows the gradient-flow theory, which describes deep linear "
                                          "encoders trained by --optimizer sgd; give a number of steps")
    lr = np.array([c.lr for c in configs], dtype=np.float64)[:, None]
    need = np.where(np.asarray(learned, dtype=bool), np.asarray(critical_time, dtype=np.float64), np.nan) / lr
    need = need[np.isfinite(need)]
    if not need.size:
        raise spec.SpecError("steps", "auto: the theory learns no feature of this run (no critical time to run "
                                      "to); give a number of steps")
    return spec.check_positive_int(int(np.ceil(AUTO_STEPS_FACTOR * need.max())), "steps")


def train(*, model="linear", objective="jepa", depth="1", lam=None, rho=None, dist=None, dim="100",
          eps=spec.DEFAULT_EPS, init="balanced", init_scale=None, predictor_init=None, loss=None, batch="256",
          optimizer="sgd", lr="0.01", steps, ema_rate="inf", ema=None, weight_decay="0", seed="0",
          matmul_precision="highest", width=None,
          activation="tanh", predictor="linear", fraction="0.5", records="1000", grid="linear", checkpoints=None,
          out, resume=False, allow_large=False, progress=None, command=None, report=None) -> TrainRun:
    """Train one encoder (``model`` linear or mlp) with ``objective`` JEPA (stop-gradient, or an
    EMA target at rate ``ema_rate`` = kappa, 1/gradient-flow time; the trainer's per-step decay is
    ``tau = 1 - kappa * lr``), MAE, or the joint embeddings Barlow Twins / VICReg (``barlow``,
    ``vicreg``: balanced init, no EMA or weight decay; docs/theory.md section 16) on the features
    ``lam``/``rho`` (or the family ``dist`` of ``dim`` features), and write the run into the folder ``out``:
    responses.csv, summary.csv (trained critical times against the theory's), plot.png, state.eqx
    (columns: docs/columns.md).
    ``ema`` (``tau``) is the deprecated spelling of the EMA (one note, then converted).

    The twin of ``jepa-dynamics train``: each flag is a keyword of the same name and default.
    Every flag but ``lam``, ``rho`` and ``checkpoints`` takes one value (for grids use
    :func:`train_grid`).  ``resume`` continues the run in ``out`` (a larger ``steps`` extends a
    finished one).  A refused call changes no file.

    >>> import tempfile
    >>> run = train(lam=[1, 2], rho=[0.5, 0.8], steps=200, lr=0.05, records=20, out=tempfile.mkdtemp(),
    ...             progress=False, report=lambda message: None)
    >>> run.result.responses.shape
    (21, 2)
    """
    a = _common.flags(locals())
    from ..training.runs import run_files, run_training
    from ..training.train import TrainConfig

    for name, value in a.items():
        if name not in _TRAIN_LISTS and isinstance(value, str) and "," in value:
            count = len(value.split(","))
            raise spec.SpecError(name, f"train takes one value, got {count} ({value}); to train a grid of "
                                       "networks use jepa-dynamics train-grid")
    from ..training._config import ema_decay

    ema_name, (ema_value,) = _ema_lists(a, report)
    _check_mae_ema([a["objective"]], ema_name, [ema_value])
    lr_value = _ONE(a["lr"], "lr")
    tau = ema_value if ema_name == "ema" else ema_decay(ema_value, spec.check_positive(lr_value, "lr"))
    config = TrainConfig(
        **_training_config(a), steps=1 if a["steps"] == "auto" else _ONE(a["steps"], "steps", int),
        objective=a["objective"], depth=_ONE(a["depth"], "depth", int),
        eps=_ONE(a["eps"], "eps"), init=a["init"], init_scale=_ONE(a["init_scale"], "init_scale"),
        lr=lr_value, ema=tau, seed=_ONE(a["seed"], "seed", int),
        records=_ONE(a["records"], "records", int), grid=a["grid"],
        predictor_init=_ONE(a["predictor_init"], "predictor_init"),
        weight_decay=_ONE(a["weight_decay"], "weight_decay"),
        checkpoints=() if a["checkpoints"] is None else tuple(spec.parse_list(a["checkpoints"], "checkpoints", int)),
    )
    if a["steps"] == "auto":
        from ..training.train import prediction

        pred = prediction(config)
        config = dataclasses.replace(config, steps=_auto_steps([config], pred.critical_time[None], pred.learned[None]))
    spec.check_writable_dir(out, "out")
    # the provenance line leaves out --resume, so a resumed run's files equal an uninterrupted run's
    if command is None:
        command = _common.command_line("train", train, a, leave_out=("resume",))
    result = run_training(config, out, resume=resume, progress=progress, command=command,
                          allow_large=allow_large, report=report or _common.note("train"))
    return TrainRun(out, run_files(out), result)


def train_grid(*, model="linear", objective="jepa", depth="1", lam=None, rho=None, dist=None, dim="100",
               eps=spec.DEFAULT_EPS, init="balanced", init_scale=None, predictor_init=None, loss=None, batch="256",
               optimizer="sgd", lr="0.01", steps, ema_rate="inf", ema=None, weight_decay="0", seed="0",
               matmul_precision="highest", fraction="0.5", block="4096", out, resume=False, progress=None, command=None, report=None) -> TrainGrid:
    """Train every network of the Cartesian product of the list flags (:data:`GRID_LISTS`:
    objective, depth, eps, lr, init, init_scale, predictor_init, ema_rate, weight_decay, seed) on one
    dataset, side by side in one jitted, vmapped program sharded over every local device; write
    ``out``/summary.csv (one row per network and feature; docs/columns.md) and ``out``/fidelity.png.
    Each network's EMA decay per step is ``tau = 1 - ema_rate * lr`` at its own ``lr``; ``ema``
    (``tau`` values) is the deprecated spelling (one note, then used as given).

    The twin of ``jepa-dynamics train-grid``.  Knobs that do not apply to a network are dropped
    for it (MAE, Barlow Twins and VICReg take no EMA, ``predictor_init`` is for init aligned, ``init_scale``
    for init random); ``barlow`` and ``vicreg`` networks train as in :func:`train` (balanced init, no weight
    decay; docs/theory.md section 16).  ``resume`` keeps the finished networks.  Deep linear encoders only: ``model`` is
    ``linear`` (anything else is refused, naming ``train`` for MLPs).

    >>> import tempfile
    >>> g = train_grid(depth=[1, 2], lam=[1, 2], rho=[0.5, 0.8], steps=300, lr=0.05, out=tempfile.mkdtemp(),
    ...                progress=False, report=lambda message: None)
    >>> len(g.table["network"])  # two networks x two features
    4
    """
    a = _common.flags(locals())
    from ..training.grid import configs_from, run_grid

    lists = {name: [None] if a[name] is None else spec.parse_list(a[name], name, kind)
             for name, kind in GRID_LISTS.items() if name != "ema_rate"}
    for name, value in a.items():
        if name not in GRID_LISTS and name not in ("lam", "rho", "out", "ema") and isinstance(value, str) \
                and "," in value:
            raise spec.SpecError(name, f"takes one value, got {value!r} (the list flags are "
                                       f"{', '.join(spec.flag(n) for n in GRID_LISTS)})")
    if a["model"] != "linear":
        raise spec.SpecError("model", f"train-grid trains deep linear encoders (--model linear), got "
                                      f"{a['model']!r}; train MLPs one at a time with jepa-dynamics train")
    for objective in lists["objective"]:  # barlow, vicreg: balanced, no EMA or weight decay (docs/theory.md 16)
        spec.check_choice(objective, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
    ema_name, ema_values = _ema_lists(a, report)
    _check_mae_ema(lists["objective"], ema_name, ema_values)
    # the EMA axis where --ema-rate stands among the list flags (configs_from turns a rate into each network's tau)
    lists = {(ema_name if k == "ema_rate" else k): (ema_values if k == "ema_rate" else lists[k]) for k in GRID_LISTS}
    base = dict(_training_config(a), records=1)
    block = spec.check_positive_int(_ONE(a["block"], "block", int), "block")
    if a["steps"] == "auto":
        from ..training.grid import predict

        first = configs_from({**base, "steps": 1}, lists)
        pred = predict(first)
        steps = _auto_steps(first, pred.critical_time, pred.learned)
    else:
        steps = _ONE(a["steps"], "steps", int)
    base["steps"] = steps
    configs = configs_from(base, lists)
    spec.check_writable_dir(out, "out")
    key = {"base": {k: v for k, v in base.items()}, "lists": lists}
    if command is None:
        command = _common.command_line("train-grid", train_grid, a, leave_out=("resume",))
    table = run_grid(configs, out, key=key, resume=resume, progress=progress, command=command, block=block)
    report = report or _common.note("train-grid")
    diverged = np.unique(table["network"][~np.isfinite(np.asarray(table["final_response"], dtype=float))])
    if diverged.size:  # train stops such a run with an error; in a grid the others' rows stand
        report(f"{diverged.size} of {len(configs)} networks diverged (parameters no longer finite; "
               f"networks {', '.join(str(int(n)) for n in diverged[:10])}"
               f"{', ...' if diverged.size > 10 else ''}): their rows hold nan; lower --lr for them")
    note = unreached_grid_note(table, len(configs), configs[0].steps, configs[0].optimizer)
    if note:
        report(note)
    return TrainGrid(out, _common.existing(out, ("summary.csv", "fidelity.png")), table)


def unreached_grid_note(table, n_networks: int, steps: int, optimizer: str = "sgd"):
    """One line when features the theory learns did not reach their level within ``--steps`` (as
    ``train`` says for one run), with the steps the gradient-flow theory needs; ``None`` if none."""
    from ..training import runs

    col = lambda name: np.asarray(table[name], dtype=float)  # noqa: E731
    missed = ((np.asarray(table["learned_theory"]) == "true") & np.isnan(col("t_star_empirical"))
              & np.isfinite(col("final_response")))
    if not missed.any():
        return None
    networks = np.unique(col("network")[missed])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # an lr near 0 needs inf steps, no warning
        need = np.ceil(col("t_star_theory")[missed] / col("lr")[missed])
    suggest = runs.rerun_steps(need if optimizer == "sgd" else [], steps)
    need = need[np.isfinite(need)]
    kind = "" if optimizer == "sgd" else " (with adam, lr x step is not gradient-flow time)"
    theory = (f"; the gradient-flow theory{kind} needs up to {need.max():.0f} steps at their lr"
              if need.size and need.max() <= spec.MAX_INT else "")
    hint = (f"{theory}: rerun into a new --out with --steps {suggest}" if suggest is not None else
            f"; the gradient-flow theory needs more steps than --steps takes (2**53) at their lr: rerun into a new "
            "--out with a larger --lr")
    return (f"{networks.size} of {n_networks} networks ended at --steps {steps} before {int(missed.sum())} "
            f"(network, feature) rows the theory learns reached fraction * |w_inf| (t_star_empirical is nan "
            f"there){hint}")
