"""Random init in d dimensions: does the per-feature collapse criterion (docs/theory.md section 9), applied to
a random (non-aligned) network's initial state projected on each feature, predict which features a
trained JEPA network learns?

    PYTHONPATH=. python3 benchmarks/random_init_collapse.py [--seeds 100] [--scale 0.3] [--steps 40000]

Networks: the package's deep linear model (``models.random_init``: i.i.d. N(0, scale^2/d) entries,
depth 2, d = 3 features lam = (1, 0.6, 0.8), rho = (0.9, 0.5, 0.7), the setting of the random-init observation in docs/theory.md section 9), the package's
population JEPA loss (``objectives.loss``, stop-gradient), plain gradient descent (lr 0.05), vmapped
over seeds.  Empirical: feature i is learned if its response ``||Wbar[:, i]||`` ends above 2x its
start (collapsed features decay towards 0; learned ones rise to ~|w_inf|).

Projections (what the criterion is given, per feature i):

* ``diagonal``: ``a_l = W_l[i, i]``, ``v = V[i, i]`` (the entries a diagonal network would have);
* ``path``: the signed path of e_i through the network, ``a_1 = ||W_1 e_i||``,
  ``a_l = ||W_l h_{l-1}|| / ||h_{l-1}||`` (``h_l = W_l ... W_1 e_i``), and
  ``v = e_i^T V h_L / ||h_L||`` times ``sign(e_i^T h_L)`` (the predictor's read-out of the
  encoder's current output direction for feature i, signed so that ``w > 0`` means aligned).

Criterion (docs/theory.md section 9, layers not necessarily equal): collapse iff
``v < 0 and min_l (a_l^2 - v^2) < 0``, or ``v > rho and v^2 >= rho^2 + min_l a_l^2``.
Prints JSON: per projection the rate of correct learned / not-learned predictions (and always
"learned" as a baseline).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from jepa_dynamics.training import data, models, objectives
from jepa_dynamics._jax import jax

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

LAM = (1.0, 0.6, 0.8)
RHO = (0.9, 0.5, 0.7)


def criterion(a, v, rho):
    """``True`` = learned (docs/theory.md section 9's collapse criterion with per-layer c_l = a_l^2 - v^2)."""
    c_min = np.min(a**2, axis=0) - v**2
    collapse = ((v < 0) & (c_min < 0)) | ((v > rho) & (v**2 >= rho**2 + np.min(a**2, axis=0)))
    return ~collapse


def projections(model, d):
    layers = [np.asarray(w) for w in model.encoder.layers]
    V = np.asarray(model.predictor.layers[0]) if hasattr(model.predictor, "layers") else np.asarray(
        model.predictor.matrix())
    idx = np.arange(d)
    diag_a = np.stack([w[idx, idx] for w in layers])
    diag_v = V[idx, idx]
    h = np.eye(d)
    path_a = []
    for w in layers:
        nh = w @ h
        path_a.append(np.linalg.norm(nh, axis=0) / np.linalg.norm(h, axis=0))
        h = nh
    path_a = np.stack(path_a)
    wbar_ii = h[idx, idx]
    out_dir = h / np.linalg.norm(h, axis=0)
    path_v = np.sign(wbar_ii) * np.einsum("ij,ji->i", V, out_dir)
    # conserved: the invariants of the full matrix flow (docs/theory.md section 10),
    # W_{l+1}^T W_{l+1} - W_l W_l^T and V^T V - W_L W_L^T, read on feature i's diagonal entry;
    # for an aligned network they are a_{l+1}^2 - a_l^2 and v^2 - a_L^2, so
    # c_l = a_l^2 - v^2 = sum of them from layer l up; v's sign relative to w's is sign(V_ii Wbar_ii)
    c = [np.diagonal(layers[-1] @ layers[-1].T - V.T @ V)]
    for l in range(len(layers) - 2, -1, -1):
        c.insert(0, c[0] + np.diagonal(layers[l] @ layers[l].T - layers[l + 1].T @ layers[l + 1]))
    c = np.stack(c)
    cons_v = np.sign(wbar_ii * diag_v) * np.abs(diag_v)
    cons_a = np.sqrt(np.maximum(c + cons_v**2, 0.0))
    return {"diagonal": (diag_a, diag_v), "path": (path_a, path_v), "conserved": (cons_a, cons_v)}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=40000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--project-at", default="0", help="comma-separated steps at which the criteria are applied to "
                                                     "the network's state (0: initial state)")
    args = p.parse_args(argv)
    ds = data.custom(LAM, RHO)
    batch = tuple(jnp.asarray(a) for a in ds.covariances())
    d, depth = len(LAM), 2
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    nets = [models.random_init(k, d, depth, args.scale) for k in keys]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *nets)

    def loss(m):
        return objectives.loss("jepa", "population", m, batch)

    def run(m, steps):
        def body(m, _):
            g = eqx.filter_grad(loss)(m)
            return jax.tree_util.tree_map(lambda w, gw: w - args.lr * gw, m, g), None

        m, _ = jax.lax.scan(body, m, None, length=steps)
        return m

    trained = jax.jit(jax.vmap(lambda m: run(m, args.steps)))(stacked)
    at_steps = [int(x) for x in args.project_at.split(",")]
    snapshots = {k: (nets if k == 0 else [jax.tree_util.tree_map(lambda x: x[s], jax.jit(jax.vmap(
        lambda m: run(m, k)))(stacked)) for s in range(args.seeds)]) for k in at_steps}
    rho = np.asarray(RHO)
    rates, counts = {}, {}
    empirical_all = []
    predicted = {f"{name}@{k}": [] for k in at_steps for name in ("diagonal", "path", "conserved")}
    predicted["always_learned"] = []
    for s in range(args.seeds):
        net0 = nets[s]
        net1 = jax.tree_util.tree_map(lambda x: x[s], trained)
        g0 = np.linalg.norm(np.asarray(net0.encoder.matrix()), axis=0)
        g1 = np.linalg.norm(np.asarray(net1.encoder.matrix()), axis=0)
        empirical = g1 > 2 * g0
        empirical_all.append(empirical)
        for k in at_steps:
            for name, (a, v) in projections(snapshots[k][s], d).items():
                predicted[f"{name}@{k}"].append(criterion(a, v, rho))
        predicted["always_learned"].append(np.ones(d, bool))
    emp = np.array(empirical_all)
    for name, pred in predicted.items():
        pred = np.array(pred)
        rates[name] = float(np.mean(pred == emp))
        counts[name] = {"features": int(emp.size), "correct": int(np.sum(pred == emp)),
                        "per_feature_rate": np.mean(pred == emp, axis=0).round(3).tolist()}
    out = {"seeds": args.seeds, "scale": args.scale, "steps": args.steps, "lr": args.lr, "project_at": at_steps,
           "empirical_learned_fraction_per_feature": emp.mean(axis=0).round(3).tolist(),
           "correct_rate": rates, "detail": counts}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
