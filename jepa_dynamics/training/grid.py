r"""Many networks of one shape, trained in one program: ``vmap`` + ``lax.scan``, sharded.

A *grid* is a list of :class:`~jepa_dynamics.training.train.TrainConfig`.  Networks whose
:func:`group_key` agree -- the same :class:`~jepa_dynamics.training.train.Program` (model,
objective, loss, optimiser, ...), depth, dim, width and step count -- run the same
compiled step; everything else about a network is data:

* its hyperparameters (:func:`jepa_dynamics.training.train.hyperparameters`): ``lr``, weight decay
  ``beta``, EMA ``tau``, the data's moments (``lam``, ``rho`` per feature), the crossing
  level and the minibatch key (from its ``seed``);
* its initial parameters (``init``, ``eps``, ``init_scale``, ``predictor_init``, ``seed``).

:func:`train_group` stacks them along a leading *network* axis and runs
``jax.vmap(train.segment)`` -- the very step :func:`jepa_dynamics.training.train.train` runs, so a
row of the grid equals a single ``train`` run of the same network (to rounding: a
batched matrix product may sum in another order).  One compile per group and chunk size.

Devices.  The network axis is sharded over every local device (``jax.local_devices()``)
with a :class:`jax.sharding.NamedSharding` over a 1-D mesh ``("networks",)``; the grid is
padded to a multiple of the device count by repeating its last network.  Networks never
talk to each other, so XLA partitions the program without communication, and the
result does not depend on the number of devices (tested bit for bit on 4 forced CPU
devices).  On several hosts, start every process with :func:`jax.distributed.initialize`
(see ``docs/grid.md``); ``devices=jax.devices()`` then spans all hosts' devices and each
host feeds and reads its own shards.  There is no scheduler of our own.

Crossings are tracked at every step inside the scan (linear encoders), so a network's
``t_star_empirical`` is read off its final state; nothing is recorded in between.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from . import _flow, models, runs, train
from ..engines import _draws
from ..theory import spec
from .._jax import jax, matmul_precision

import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402
from ._fidelity import fidelity_figure  # noqa: F401
from ._grid_configs import Prediction, configs_from, predict, replace  # noqa: F401

__all__ = ["GridResult", "Prediction", "group_key", "plan", "train_group", "predict", "run_grid", "configs_from",
           "fidelity_figure", "sharding", "AXIS", "SUMMARY_COLUMNS"]

AXIS = "networks"


def group_key(config: train.TrainConfig) -> tuple:
    """What must agree for networks to share one compiled program."""
    c = config
    return (c.model, c.objective, c.loss, c.optimizer, c.stop_gradient, c.depth, c.dim, c.width, c.activation,
            c.predictor, c.batch, c.dtype, c.steps, c.chunk, c.eval_batch, c.matmul_precision)


def plan(configs, block: int = 4096) -> list[np.ndarray]:
    """The grid's networks (indices into ``configs``) in groups of one :func:`group_key`, in
    order of first appearance, each cut into blocks of at most ``block`` networks."""
    groups: dict = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c), []).append(i)
    out = []
    for idx in groups.values():
        idx = np.asarray(idx, dtype=np.int64)
        out += [idx[s:s + block] for s in range(0, idx.size, block)]
    return out


@dataclass
class GridResult:
    """Per network (leading axis) and feature: the empirical ``critical_times``
    (``lr`` x the interpolated crossing step, ``nan`` if not reached), the ``first`` and
    ``final`` responses, ``finite`` (``False``: the parameters blew up), and the networks' ``initial``
    models, stacked (what the matrix flow of a random init starts from)."""

    critical_times: np.ndarray
    critical_steps: np.ndarray
    first: np.ndarray
    final: np.ndarray
    finite: np.ndarray
    initial: object = None


def _fractions(configs) -> np.ndarray:
    return np.array([c.fraction for c in configs], np.float64)[:, None]


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _init_models(configs, init_keys):
    """Initial models, stacked: one ``jit(vmap)`` over the seeds of each distinct init.

    Balanced inits share one program whatever their ``eps``: every matrix of
    :func:`~jepa_dynamics.training.models.balanced` is ``u = eps^(1/L)`` times one at ``eps = 1``, so the
    frames are drawn at ``eps = 1`` in float64 and scaled per network (a compile per ``eps``
    value cost ~1 s each)."""
    by: dict = {}
    for i, c in enumerate(configs):
        key = ("balanced",) if c.init == "balanced" else (c.init, c.eps, c.init_scale, c.predictor_init)
        by.setdefault(key, []).append(i)
    parts, order = [], []
    dim = configs[0].dim
    for idx in by.values():
        c = configs[idx[0]]
        keys = init_keys[np.asarray(idx)]
        if c.init == "balanced":
            unit = _balanced_unit(c.model, dim, c.depth, c.width, c.activation, c.predictor)(keys)
            u = jnp.asarray([configs[i].eps ** (1.0 / c.depth) for i in idx], jnp.float64)
            scale = lambda x: (u.reshape((-1,) + (1,) * (x.ndim - 1)) * x).astype(c.jnp_dtype)  # noqa: E731
            parts.append(jax.tree_util.tree_map(scale, unit))
        else:
            make = jax.jit(jax.vmap(lambda k, c=c: train._init_model(c, k, dim)))
            parts.append(make(keys))
        order += idx
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *parts)
    inverse = np.argsort(np.asarray(order))
    return jax.tree_util.tree_map(lambda x: x[inverse], stacked)


@functools.lru_cache(maxsize=8)
def _balanced_unit(model, dim, depth, width, activation, predictor):
    """``jit(vmap)`` of the balanced init at ``eps = 1``, float64, over keys."""
    return jax.jit(jax.vmap(lambda k: models.balanced(k, dim, depth, 1.0, model=model, width=width,
                                                      activation=activation, predictor=predictor,
                                                      dtype=jnp.float64)))


def _hyperparameters(configs, levels, data_keys):
    dtype = configs[0].jnp_dtype
    covs = [c.dataset().covariances() for c in configs]
    f64 = lambda f: jnp.asarray(np.array([f(c) for c in configs], dtype=np.float64))  # noqa: E731
    return {"lr": f64(lambda c: c.lr), "weight_decay": f64(lambda c: c.weight_decay), "ema": f64(lambda c: c.ema),
            "level": jnp.asarray(np.asarray(levels, np.float64), dtype),
            "cov": tuple(jnp.asarray(np.stack([cv[j] for cv in covs]), dtype) for j in range(3)),
            "data_key": data_keys}


def _pad(tree, n_to):
    def pad(x):
        x = jnp.asarray(x)
        extra = n_to - x.shape[0]
        return x if extra == 0 else jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)])
    return jax.tree_util.tree_map(pad, tree)


def sharding(devices=None) -> NamedSharding:
    """The network axis split over ``devices`` (default: every local device)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return NamedSharding(Mesh(np.array(devices), (AXIS,)), PartitionSpec(AXIS))


@functools.lru_cache(maxsize=32)
def _compiled_segment(program: train.Program, chunk: int):
    return jax.jit(jax.vmap(functools.partial(train.segment, program, chunk), in_axes=(0, 0, None, None)))


def train_group(configs, levels, *, devices=None, progress=None, bar=None) -> GridResult:
    """Train ``configs`` (one :func:`group_key`) side by side; ``levels`` ``(n, d)`` are the
    crossing levels (:func:`jepa_dynamics.training.train.crossing_level` of each network's theory).

    ``bar``: a progress bar to advance by networks x steps (else one is made)."""
    configs = list(configs)
    with matmul_precision(configs[0].matmul_precision), models.tiny_products():
        return _train_group(configs, levels, devices, progress, bar)


def _train_group(configs, levels, devices, progress, bar) -> GridResult:
    keys = {group_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("train_group needs networks of one shape; split the grid with grid.plan")
    first = configs[0]
    if first.model != "linear":
        raise spec.SpecError("model", "the grid engine trains deep linear encoders (--model linear)")
    if first.loss == "sampled" and len({(c.dist, c.lam, c.rho, c.dim) for c in configs}) != 1:
        raise spec.SpecError("loss", "sampled losses in one grid need one dataset shared by every network")
    n, d = len(configs), first.dim
    program = train.Program.of(first, first.dataset(), ema=any(c.ema > 0 for c in configs),
                               weight_decay=any(c.weight_decay > 0 for c in configs))
    seeds = jnp.asarray(np.array([c.seed for c in configs], dtype=np.int64))
    keys3 = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 3))(seeds)
    hp = _hyperparameters(configs, levels, keys3[:, 1])
    models_ = _init_models(configs, np.asarray(keys3[:, 0]))
    state = jax.jit(jax.vmap(functools.partial(train.initial_state, program)))(hp, models_)
    shard = sharding(devices)
    n_dev = shard.mesh.devices.size
    n_pad = -(-n // n_dev) * n_dev
    hp, state = jax.device_put(_pad((hp, state), n_pad), shard)
    chunk = int(min(first.chunk, first.steps))
    seg = _compiled_segment(program, chunk)
    own_bar = bar is None
    if own_bar:
        from .. import records

        bar = records.progress_bar(n * first.steps, desc=f"train-grid {first.objective} L={first.depth}",
                                   unit="network-step", enabled=progress)
    try:
        start = 0
        while start < first.steps:
            k = min(chunk, first.steps - start)
            state = seg(hp, state, jnp.asarray(start), jnp.asarray(k))
            jax.block_until_ready(state)
            bar.update(n * k)
            start += k
    finally:
        if own_bar:
            bar.close()
    crossing = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], state[3])
    finite = np.asarray(jax.jit(jax.vmap(train.finite))(state[0]))[:n]
    steps = train.crossing_steps(crossing, levels)
    lr = np.array([c.lr for c in configs])[:, None]
    first_r = np.asarray(jax.vmap(functools.partial(train.responses, program))(models_.encoder), np.float64)
    final = np.asarray(crossing[1], np.float64)
    steps = np.where(finite[:, None], steps, np.nan)
    final = np.where(finite[:, None], final, np.nan)
    return GridResult(lr * steps, steps, first_r, final, finite, models_)


# --- the train-grid command's files ----------------------------------------------------------------------

NETWORK_COLUMNS = ("objective", "depth", "eps", "lr", "init", "seed", "ema_rate", "weight_decay")
SUMMARY_COLUMNS = NETWORK_COLUMNS + ("feature", "lam", "rho", "t_star_theory", "t_star_gd",
                                     "t_star_empirical", "learned_theory", "learned_empirical",
                                     "final_response", "init_scale", "predictor_init", "theory",
                                     "final_response_theory", "fell_back_theory", "fell_back_empirical", "network")
SUMMARY_NOTES = {
    "network": "index of the network in the grid (itertools.product order of the list flags)",
    "ema_rate": "kappa, the EMA target's rate (1/gradient-flow time; inf: stop-gradient); the per-step decay is "
                "tau = 1 - kappa * lr",
    "t_star_theory": runs.SUMMARY_NOTES["t_star_theory"],
    "t_star_gd": runs.SUMMARY_NOTES["t_star_gd"],
    "t_star_empirical": "first step-by-step crossing of fraction * |w_inf|, lr x the step count interpolated "
                               "linearly; nan = not reached within the run, not learned in theory, or diverged",
    "learned_theory": runs.SUMMARY_NOTES["learned_theory"],
    "learned_empirical": runs.SUMMARY_NOTES["learned_empirical"],
    "final_response": "the response |column i of Wbar| after the last step (nan: the parameters diverged)",
    "init_scale": "random init's scale (nan: the default eps**(1/depth), or not a random init)",
    "predictor_init": "aligned init's V0 (nan: the balanced eps**(1/depth), or not an aligned init)",
    **{k: runs.SUMMARY_NOTES[k] for k in ("theory", "final_response_theory", "fell_back_theory",
                                          "fell_back_empirical")},
}


def _flows(configs, idx, levels, devices=None, initial=None) -> dict:
    """The theory of the networks ``idx`` as their summary rows hold it, ``(len(idx), d)`` arrays: the
    gradient-flow prediction where it applies, and for random inits (:func:`_flow.uses_matrix_flow`) the
    exact matrix flow from each network's own init (``initial``: the block's stacked initial models,
    :attr:`GridResult.initial`; else drawn again from the seeds), integrated side by side
    (:func:`_flow.matrix_flows`, sharded like the training) and crossed at the network's level."""
    cs = [configs[i] for i in idx]
    m = np.flatnonzero([_flow.uses_matrix_flow(c) for c in cs])
    out = {"theory": np.array([runs.theory_of(c) for c in cs], dtype=object), "flows": {}}
    if m.size:
        sub = [cs[k] for k in m]
        if initial is None:
            seeds = jnp.asarray(np.array([c.seed for c in sub], dtype=np.int64))
            keys = np.asarray(jax.vmap(_draws.init_key)(seeds))
            states = models.matrix_state(_init_models(sub, keys))
        else:
            states = models.matrix_state(jax.tree_util.tree_map(lambda x: np.asarray(x)[m], initial))
        flows = _flow.matrix_flows(sub, sub[0].dataset(), np.asarray(levels)[np.asarray(idx)[m]], states=states,
                                   sharding=sharding(devices))
        out["flows"] = dict(zip(m.tolist(), flows))
    return out


def _rows(configs, idx, pred: Prediction, res: GridResult, flows: dict) -> list:
    d = configs[0].dim
    cs = [configs[i] for i in idx]
    rep = lambda f: np.repeat(np.array([f(c) for c in cs], dtype=object), d)  # noqa: E731
    num = lambda f: np.repeat(np.array([f(c) for c in cs], dtype=np.float64), d)  # noqa: E731
    dss = [c.dataset() for c in cs]
    flat = lambda a: np.asarray(a).reshape(-1)  # noqa: E731
    from .. import records

    t_theory, learned, final_theory = pred.critical_time[idx], pred.learned[idx], np.abs(pred.w_inf[idx])
    fell_back = np.zeros_like(learned)
    learned_emp = runs.learned_empirical(res.first, res.final)
    fell_back_emp = np.isfinite(res.critical_times) & ~(res.final >= np.abs(pred.w_inf[idx]) * _fractions(cs))
    for k, flow in flows["flows"].items():  # random init: the matrix flow, and fates by the settled state
        t_theory[k], learned[k], final_theory[k], fell_back[k] = (flow.t_star, flow.learned, flow.final_response,
                                                                  flow.fell_back)
        level = cs[k].fraction * np.abs(pred.w_inf[idx[k]])
        learned_emp[k] = res.final[k] >= level
        fell_back_emp[k] = np.isfinite(res.critical_times[k]) & ~learned_emp[k]
    cols = [rep(lambda c: c.objective), num(lambda c: c.depth).astype(np.int64), num(lambda c: c.eps),
            num(lambda c: c.lr), rep(lambda c: c.init), num(lambda c: c.seed).astype(np.int64),
            num(lambda c: c.ema_rate), num(lambda c: c.weight_decay), np.tile(np.arange(d), len(cs)),
            np.concatenate([ds.lam for ds in dss]), np.concatenate([ds.rho for ds in dss]),
            flat(t_theory), flat(pred.critical_time_gd[idx]), flat(res.critical_times),
            flat(learned).astype(bool), flat(learned_emp).astype(bool), flat(res.final),
            num(lambda c: np.nan if c.init_scale is None else c.init_scale),
            num(lambda c: np.nan if c.predictor_init is None else c.predictor_init),
            np.repeat(flows["theory"], d), flat(final_theory), flat(fell_back).astype(bool),
            flat(fell_back_emp).astype(bool), np.repeat(np.asarray(idx), d)]
    return [records.format_column(col) for col in cols]


def run_grid(configs, out_dir: str, *, key=None, resume: bool = False, progress=None, command: str | None = None,
             devices=None, block: int = 4096) -> dict:
    """Train every network of ``configs`` into ``out_dir``: ``summary.csv`` (one row per network
    and feature, :data:`SUMMARY_COLUMNS`) and ``fidelity.png``.

    Everything is checked (including each network's theory, :func:`predict`) before a file is
    touched.  Networks run in :func:`plan` order, one block at a time; each finished block's
    rows are appended and flushed, so Ctrl-C keeps every finished block and ``resume=True``
    (same ``key``: a JSON-able description of the grid) skips them."""
    from .. import records

    configs = list(configs)
    if not configs:
        raise spec.SpecError("grid", "the grid is empty")
    if len({c.dim for c in configs}) != 1:
        raise spec.SpecError("dim", "every network of a grid needs the same number of features")
    for c in configs:
        if c.model != "linear":
            raise spec.SpecError("model", "train-grid trains deep linear encoders (--model linear)")
    spec.check_writable_dir(out_dir, "out")
    pred = predict(configs)
    levels = np.where(pred.learned, np.array([c.fraction for c in configs])[:, None] * np.abs(pred.w_inf), np.inf)
    order = np.concatenate(plan(configs, block))
    d = configs[0].dim
    path = os.path.join(out_dir, "summary.csv")
    notes = {**SUMMARY_NOTES, "time": train.TIME_NOTE,
             "matmul_precision": f"{configs[0].matmul_precision} (float32 matrix products; float64 unaffected)"}
    header = records.provenance_lines(command or "jepa_dynamics.training.grid.run_grid(...)", notes)
    os.makedirs(out_dir, exist_ok=True)

    def check(start, lines):  # resume: row j is network order[j // d], feature j % d
        for i, ln in enumerate(lines):
            j = start + i
            cells = ln.split(",")
            if j // d >= order.size or cells[-1] != str(order[j // d]) or cells[8] != str(j % d):
                return i
        return None

    app = records.CsvAppender(path, header, SUMMARY_COLUMNS, key=key, resume=resume, name="out", check=check)
    done = app.done // d
    if app.done % d:  # a block cut short mid-write: drop its partial network
        app.close()
        _cut_rows(path, done * d)
        app = records.CsvAppender(path, header, SUMMARY_COLUMNS, key=key, resume=True, name="out", check=check)
    todo = order[done:]
    steps = configs[0].steps
    bar = records.progress_bar(len(configs) * steps, initial=done * steps, desc="train-grid", unit="network-step",
                               enabled=progress)
    try:
        with app:
            for part in plan([configs[i] for i in todo], block):
                idx = todo[part]
                res = train_group([configs[i] for i in idx], levels[idx], devices=devices, bar=bar)
                app.write_columns(_rows(configs, idx, pred, res, _flows(configs, idx, levels, devices, res.initial)))
                done += idx.size
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted after {done} of {len(configs)} networks; kept {path}: rerun with "
                                "--resume to continue") from None
    finally:
        bar.close()
    table = records.read_csv(path)
    from .._style import save_figure

    save_figure(fidelity_figure(table), os.path.join(out_dir, "fidelity.png"))
    return table


def _cut_rows(path: str, n_rows: int) -> None:
    """Keep the ``#`` lines, the header and the first ``n_rows`` data rows of ``path``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        seen_header, kept = False, 0
        for raw in src:
            if raw.startswith(b"#") or not seen_header:
                seen_header = seen_header or not raw.startswith(b"#")
            elif kept < n_rows:
                kept += 1
            else:
                break
            dst.write(raw)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)
