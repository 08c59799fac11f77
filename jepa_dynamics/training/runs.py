"""A training run written to a folder (what ``jepa-dynamics train`` does): the files, their
resume and refusal rules, the summary against the theory, the plot.

:func:`run_training` runs a :class:`~jepa_dynamics.training.train.TrainConfig` into ``out_dir``:
``responses.csv`` (appended and flushed as training goes), ``summary.csv`` (one row per
feature against the section-10 theory of the run's own init, EMA and weight decay),
``plot.png``, ``checkpoints/encoder_step<k>.eqx`` and ``state.eqx``, from which
``resume=True`` continues (or extends, with a larger ``steps``) with no row lost or
repeated.  Every check runs before any file changes, so a refused resume leaves the folder
byte-identical.  The training itself (config, step, loop) is :mod:`jepa_dynamics.training.train`;
the summary's columns and the plot are in the private ``_summary`` module (importable from here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time as _time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import analysis
from .. import records
from ..theory import spec
from .._jax import jax
from ._summary import (SUMMARY_COLUMNS, SUMMARY_NOTES, learned_empirical, response_figure, theory_of,  # noqa: F401
                       theory_columns, write_summary)
from .train import (RESPONSE_NOTE, TIME_NOTE, TrainConfig, TrainResult, _init_model, _iterate, _Runner,
                    record_steps)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

__all__ = ["run_training", "run_files", "load_encoder", "checkpoint_path", "unreached_note", "theory_columns",
           "learned_empirical", "write_summary", "response_figure", "RESPONSE_COLUMNS", "SUMMARY_COLUMNS",
           "SUMMARY_NOTES"]


RESPONSE_COLUMNS = ("step", "time", "feature", "response")


def _save_atomic(path, tree):
    tmp = f"{path}.tmp-{os.getpid()}"
    eqx.tree_serialise_leaves(tmp, tree)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _state_tree(state, step):
    return (*state, jnp.asarray(step, dtype=jnp.int64))


def checkpoint_path(out_dir: str, step: int) -> str:
    return os.path.join(out_dir, "checkpoints", f"encoder_step{int(step)}.eqx")


def load_encoder(config: TrainConfig, path: str):
    """The encoder saved by :func:`run_training` at ``path`` (same ``config``)."""
    like = _init_model(config, jax.random.PRNGKey(0), config.dataset().dim).encoder
    return eqx.tree_deserialise_leaves(path, like)


RUN_FILES = ("responses.csv", "summary.csv", "plot.png", "state.eqx")


def run_files(out_dir: str) -> list:
    """The files of a run that exist in ``out_dir`` now: :data:`RUN_FILES` and the encoder
    checkpoints ``checkpoints/encoder_step<k>.eqx`` (nothing else in the folder is a run's)."""
    paths = [os.path.join(out_dir, n) for n in RUN_FILES]
    folder = os.path.join(out_dir, "checkpoints")
    if os.path.isdir(folder):
        paths += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                  if n.startswith("encoder_step") and n.endswith(".eqx") and n[12:-4].isdigit()]
    return [p for p in paths if os.path.isfile(p)]


def _remove(paths) -> None:
    for path in paths:
        os.remove(path)
    for path in paths:
        folder = os.path.dirname(path)
        if os.path.basename(folder) == "checkpoints" and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


@dataclass
class _Resume:
    """What a checked ``--resume`` continues from: the state at ``start``, the ``rows`` of
    ``responses.csv`` up to it (its first ``keep`` bytes), and ``extend_from``: the shorter
    run's ``steps`` when the command extends a run (else ``None``)."""

    state: tuple
    start: int
    rows: int
    keep: int
    body: int
    extend_from: Optional[int]


def _refuse(problem: str):
    raise spec.SpecError("resume", problem + "; rerun without --resume to start over (that removes the old run's "
                                             "files)")


def _check_rows(path: str, steps, dim: int, lr: float) -> tuple:
    """``(first data byte, end byte)`` of the rows ``(step, feature)`` for ``steps x range(dim)``,
    checked one by one at the head of ``path`` (streamed); refuses naming the first bad row."""
    with open(path, "rb") as f:
        raw = f.readline()
        while raw.startswith(b"#"):
            raw = f.readline()
        if raw != (",".join(RESPONSE_COLUMNS) + "\n").encode():
            _refuse(f"cannot resume: {path} has no '{','.join(RESPONSE_COLUMNS)}' header")
        body = keep = f.tell()
        n = 0
        for step in steps:
            head = (f"{step},{lr * step!r},").encode()
            for feature in range(dim):
                raw = f.readline()
                n += 1
                if not raw.endswith(b"\n"):
                    _refuse(f"cannot resume: {path} holds {n - 1} complete rows, and the saved state (step "
                            f"{steps[-1]}) needs {len(steps) * dim}")
                parts = raw[len(head):].split(b",")
                ok = raw.startswith(head) and len(parts) == 2 and parts[0] == str(feature).encode()
                try:
                    ok = ok and np.isfinite(float(parts[1]))
                except ValueError:
                    ok = False
                if not ok:
                    _refuse(f"cannot resume: data row {n} of {path} is not the run's row (step {step}, feature "
                            f"{feature}): found {records.CsvAppender._show(raw)}")
                keep += len(raw)
    return body, keep


def _plan_resume(config: TrainConfig, runner: _Runner, out_dir: str) -> Optional[_Resume]:
    """Check everything a ``--resume`` into ``out_dir`` needs, modifying nothing.

    ``None``: there is nothing to continue (no run there, or one that never saved its state,
    whose rows a fresh start rewrites).  Refuses (``SpecError`` naming ``--resume`` and every
    flag that differs) a run written for other parameters, an unreadable ``state.eqx`` and rows
    that are not the run's.  A command that differs only by a larger ``--steps`` extends the run."""
    state_path, resp_path = os.path.join(out_dir, "state.eqx"), os.path.join(out_dir, "responses.csv")
    if not os.path.exists(state_path) and not os.path.exists(resp_path):
        return None
    if not os.path.exists(resp_path):
        _refuse(f"cannot resume {out_dir}: it holds {state_path} but no responses.csv")
    old = records.read_key(resp_path)
    if not isinstance(old, dict):
        _refuse(f"cannot resume {out_dir}: {resp_path} has no '# grid:' line, so train did not write it")
    new = json.loads(json.dumps(config.as_dict(), sort_keys=True))
    diff = records.key_differences(old, new, f"the run in {out_dir}")
    extend_from = None
    if [k for k in set(old) | set(new) if old.get(k) != new.get(k)] == ["steps"] and isinstance(old["steps"], int):
        if config.steps < old["steps"]:
            _refuse(f"cannot resume {out_dir}: {diff[0]}, and a run cannot be shortened")
        extend_from = old["steps"]
    elif diff:
        _refuse(f"cannot resume {out_dir}: it was written for other parameters ({'; '.join(diff)})")
    if not os.path.exists(state_path):
        return None
    try:
        loaded = eqx.tree_deserialise_leaves(state_path, _state_tree(runner.initial, 0))
        start = int(loaded[4])
    except Exception as err:  # noqa: BLE001 -- any failure to read it means the same to the user
        _refuse(f"cannot resume {out_dir}: {state_path} cannot be read ({type(err).__name__}): it is damaged or "
                "was written by another version")
    last = extend_from if extend_from is not None else config.steps
    if not 0 <= start <= last:
        _refuse(f"cannot resume {out_dir}: {state_path} is at step {start}, outside the run's 0..{last}")
    old_config = config if extend_from is None else dataclasses.replace(config, steps=extend_from)
    rec = record_steps(old_config)
    steps = rec[rec <= start]
    body, keep = _check_rows(resp_path, steps.tolist(), runner.dataset.dim, config.lr)
    return _Resume(loaded[:4], start, steps.size * runner.dataset.dim, keep, body, extend_from)


def _footprint(config: TrainConfig, dim: int) -> tuple:
    """``(responses.csv bytes, peak memory bytes)`` estimated before a run: recorded rows at
    ~60 characters, and float64 parameters, gradients, optimiser moments, EMA target and the
    covariance / evaluation arrays, twice over for the compiled step's temporaries."""
    rows = (min(config.records, config.steps) + 1) * dim
    width = config.width or dim
    params = dim * dim * (config.depth + 2) if config.model == "linear" else dim * width * (config.depth + 2)
    arrays = params * (6 if config.optimizer == "adam" else 4) + 2 * dim * dim + config.eval_batch * (dim + width)
    if config.loss == "sampled":
        arrays += 4 * config.batch * max(dim, width) * (config.depth + 1)
    return rows * 60.0, 16.0 * arrays


def _default_command(config):
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v != defaults[k])
    return f"jepa_dynamics.training.runs.run_training(TrainConfig({args}))"


def run_training(config: TrainConfig, out_dir: str, *, resume: bool = False, progress=None,
                 command: str | None = None, save_every: float = 10.0, allow_large: bool = False,
                 report=None) -> TrainResult:
    """Run ``config`` into ``out_dir`` (see the module docstring for the files).

    Rows are appended and flushed as each block of steps finishes; ``state.eqx`` (written
    via a temporary file and ``os.replace``) is refreshed every ``save_every`` seconds, at
    encoder checkpoints, at the end and on Ctrl-C.  ``command`` is the provenance line (the
    CLI passes its command line); ``report(message)`` hears the notes for the user (an
    extended run, features that did not reach their crossing).

    Everything is checked before any file is touched, so a refused command leaves the
    folder byte-identical: the inputs, the estimated size (``allow_large`` skips that) and,
    for ``resume=True``, that the folder holds this run (every differing flag is named), a
    readable ``state.eqx`` and the run's rows up to it.  ``resume=True`` then drops any
    rows recorded after the saved state and continues; the files equal an uninterrupted
    run's.  A resume whose only difference is a larger ``steps`` *extends* the run: the
    rows already recorded stay, later ones follow the new run's recording grid.  Without
    ``resume`` the files of any earlier run in ``out_dir`` (:func:`run_files`) are removed
    first, so no old checkpoint or state sits next to the new results."""
    spec.check_writable_dir(out_dir, "out")
    command = command or _default_command(config)
    out_bytes, mem_bytes = _footprint(config, config.dim)
    records.check_size(f"this run (dim={config.dim}, steps={config.steps})",
                       path=os.path.join(out_dir, "responses.csv"), out_bytes=out_bytes, mem_bytes=mem_bytes,
                       allow_large=allow_large)
    runner = _Runner(config)
    ds = runner.dataset
    dim = ds.dim
    rec_steps = record_steps(config)
    rec = set(rec_steps.tolist())
    state_path = os.path.join(out_dir, "state.eqx")
    resp_path = os.path.join(out_dir, "responses.csv")
    key = config.as_dict()
    header = records.provenance_lines(command, {"time": TIME_NOTE, "response": RESPONSE_NOTE})
    plan = _plan_resume(config, runner, out_dir) if resume else None
    # --- every check has passed: from here on the folder changes ---------------------------------------------
    if plan is None:
        _remove(run_files(out_dir))
        state, start = runner.initial, 0
    else:
        state, start = plan.state, plan.start
        _remove([p for p in run_files(out_dir) if os.path.basename(p) in ("summary.csv", "plot.png")])
        if plan.extend_from is not None:
            _rewrite_head(resp_path, header + [f"# grid: {json.dumps(key, sort_keys=True)}",
                                               ",".join(RESPONSE_COLUMNS)], plan.body, plan.keep)
            if report is not None:
                report(f"extending the run in {out_dir} from {plan.extend_from} to {config.steps} steps (rows up "
                       f"to step {start} keep its recording grid)")
        elif plan.keep != os.path.getsize(resp_path):
            with open(resp_path, "r+b") as f:
                f.truncate(plan.keep)
    os.makedirs(out_dir, exist_ok=True)
    resume = plan is not None
    features = records.format_column(np.arange(dim))

    def write_rows(appender, step, resp):
        appender.write_columns([[str(step)] * dim, [repr(config.lr * step)] * dim, features,
                                records.format_column(resp)])

    def save_state(state, step):
        _save_atomic(state_path, _state_tree(state, step))

    with records.CsvAppender(resp_path, header, RESPONSE_COLUMNS, key=key, resume=resume, name="out") as app:
        if resume and app.done != plan.rows:
            raise spec.SpecError("resume", f"cannot resume {resp_path}: rows and checkpoint disagree")
        if not resume:
            write_rows(app, 0, runner.responses(state))
            if 0 in config.checkpoints:
                os.makedirs(os.path.dirname(checkpoint_path(out_dir, 0)), exist_ok=True)
                _save_atomic(checkpoint_path(out_dir, 0), state[0].encoder)
        # (done_state, done_step): the last step whose rows and checkpoints are all written.  Ctrl-C
        # can land anywhere in the loop body, so only that pair is saved on interrupt; rows written
        # past it are dropped again by the next --resume.
        last_save, done_state, done_step = _time.monotonic(), state, start
        try:
            for step, state in _iterate(runner, state, start, progress):
                if step in rec:
                    write_rows(app, step, runner.responses(state))
                if step in config.checkpoints:
                    os.makedirs(os.path.dirname(checkpoint_path(out_dir, step)), exist_ok=True)
                    _save_atomic(checkpoint_path(out_dir, step), state[0].encoder)
                done_state, done_step = state, step
                if step == config.steps or step in config.checkpoints or _time.monotonic() - last_save > save_every:
                    save_state(state, step)
                    last_save = _time.monotonic()
        except KeyboardInterrupt:
            save_state(done_state, done_step)
            raise KeyboardInterrupt(f"interrupted at step {done_step} of {config.steps}; kept {resp_path} and "
                                    f"{state_path}: rerun with --resume to continue") from None
    table = records.read_csv(resp_path)
    steps, responses = analysis.responses_table(table["step"], table["feature"], table["response"], dim)
    result = TrainResult(config, ds, steps, config.lr * steps.astype(np.float64), responses, state[0], state[2],
                         {}, runner.crossing_times(state))
    write_summary(result, os.path.join(out_dir, "summary.csv"), command)
    from .._style import save_figure

    save_figure(response_figure(result), os.path.join(out_dir, "plot.png"))
    note = unreached_note(result)
    if note and report is not None:
        report(note)
    return result


def _rewrite_head(path: str, head: list, body: int, keep: int) -> None:
    """Replace the ``#`` lines and column header of ``path`` by ``head`` and keep its data bytes
    ``body:keep`` (streamed through a temporary file and ``os.replace``)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(("\n".join(head) + "\n").encode())
        src.seek(body)
        left = keep - body
        while left > 0:
            chunk = src.read(min(left, 1 << 22))
            dst.write(chunk)
            left -= len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)


def unreached_note(result: TrainResult) -> Optional[str]:
    """One line naming the features whose response never reached ``fraction * |w_inf|`` within
    the run, how many steps the gradient-flow theory says each needs (deep linear encoder and
    predictor only: for an MLP it is no guide) and the ``--steps`` to extend the run to
    (:func:`rerun_steps`, always more than the run's); ``None`` if every feature the theory learns crossed."""
    cfg = result.config
    t_emp = np.asarray(result.critical_times(), dtype=np.float64)
    cols = theory_columns(cfg, result.dataset, gd=False)
    missed = np.flatnonzero(np.isnan(t_emp) & cols["learned_theory"])
    if missed.size == 0:
        return None
    linear = cfg.model == "linear" and cfg.predictor == "linear"
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        need = np.ceil(cols["t_star_theory"][missed] / cfg.lr)
    shown = missed[:8]
    more = f" and {missed.size - shown.size} more" if missed.size > shown.size else ""
    names = ", ".join(str(i) for i in shown) + more
    head = (f"the run ended at step {cfg.steps} (t = {cfg.lr * cfg.steps:.6g}) before feature"
            f"{'s' * (missed.size > 1)} {names} reached fraction * "
            f"{'w_star' if cfg.balanced_fixed_point else '|w_inf|'}")
    theory = ""
    if linear:
        steps = ", ".join(f"{n:.0f}" if n <= spec.MAX_INT else "more than 2**53" for n in need[: shown.size])
        kind = "" if cfg.optimizer == "sgd" else " (gradient flow; with adam, lr x step is not gradient-flow time)"
        theory = f"; the theory{kind} needs {steps + (', ...' if more else '')} steps at lr {cfg.lr:g}"
    suggest = rerun_steps(need if linear and cfg.optimizer == "sgd" else [], cfg.steps)
    if suggest is None:
        return f"{head}{theory}, more than --steps takes: rerun into a new --out with a larger --lr"
    return f"{head}{theory}: rerun with --steps {suggest} --resume to extend it"


def rerun_steps(need, steps: int) -> Optional[int]:
    """The ``--steps`` to suggest when features missed their crossing in a run of ``steps`` steps: the
    latest step the gradient-flow theory needs (``need``, finite entries; empty where the theory is no
    guide), plus 5% (gradient descent at a finite lr crosses a few steps after the flow, e.g. 8,017 against
    8,014 at lr 0.05), and at least twice ``steps`` when that is not more than the run already made (so a
    resumed run always grows); ``None`` when that is beyond what ``--steps`` takes (2**53)."""
    need = np.asarray(need, dtype=np.float64).ravel()
    if np.any(np.isposinf(need)):
        return None
    need = need[np.isfinite(need)]
    if need.size and float(need.max()) > spec.MAX_INT:
        return None
    suggest = int(np.ceil(1.05 * float(need.max()))) if need.size else 0
    if suggest <= steps:
        suggest = 2 * int(steps)
    return suggest if suggest <= spec.MAX_INT else None
