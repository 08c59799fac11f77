"""``spectrum``: the modes of two views of real data, their predicted JEPA / MAE orders, and
optionally encoders trained on the pairs (with the full-matrix flow and probes beside them).

The twin of ``jepa-dynamics spectrum`` (same flags, same defaults, byte-identical files).
Empirical covariances and modes of views: docs/theory.md section 11.
"""

from __future__ import annotations

import dataclasses
import json
import os

from .. import records as _records
from ..theory import spec
from . import _common

__all__ = ["SpectrumRun", "spectrum", "DATASET_OPTIONS"]

_ONE = _common.one
# the options of the bundled datasets and how each is read
DATASET_OPTIONS = {"n": int, "seed": int, "noise": float, "shift": int, "patch": int, "offset": "pair",
                   "images": str}


@dataclasses.dataclass(frozen=True)
class SpectrumRun:
    """What :func:`spectrum` wrote: ``out``, ``files`` (modes.csv, covariances.npz, spectrum.png;
    with ``train`` also training.csv, orders.csv, responses.csv and probe.csv), and ``table``,
    the per-mode table of modes.csv as ``{column: array}``."""

    out: str
    files: list
    table: dict


def _views(a: dict):
    from ..realdata import views

    given = {k: a[k] for k in DATASET_OPTIONS if a[k] is not None}
    if (a["views"] is None) == (a["dataset"] is None):
        raise spec.SpecError("views", "give one of --views FILE.npz or --dataset NAME")
    if a["views"] is not None:
        if given:
            raise spec.SpecError(next(iter(given)), "dataset options go with --dataset, not --views")
        return views.from_npz(a["views"])
    spec.check_choice(a["dataset"], views.DATASETS, "dataset")
    own = {"digits": ("n", "seed", "noise", "shift"), "patches": ("n", "seed", "patch", "offset", "images")}
    opts = {}
    for k, text in given.items():
        if k not in own[a["dataset"]]:
            raise spec.SpecError(k, f"is not an option of --dataset {a['dataset']}")
        kind = DATASET_OPTIONS[k]
        if kind == "pair":
            opts[k] = spec.parse_list(text, k, int)
            if len(opts[k]) != 2:
                raise spec.SpecError(k, f"must be two integers dr,dc, got {text!r}")
        elif kind is str:
            opts[k] = tuple(spec.parse_list(text, k, str))
        else:
            opts[k] = _ONE(text, k, kind)
    if "n" in opts:  # the pairs are built in memory: refuse a size that would not fit, before building
        n = spec.check_positive_int(opts["n"], "n")
        dim = 64 if a["dataset"] == "digits" else opts.get("patch", 8) ** 2
        _records.check_size(f"--dataset {a['dataset']} with n = {n}", mem_bytes=8.0 * 4 * n * dim,
                            allow_large=a["allow_large"])
    return views.make(a["dataset"], **opts)


def spectrum(*, views=None, dataset=None, n=None, seed=None, noise=None, shift=None, patch=None, offset=None,
             images=None, depth="1,2,3,4", eps=spec.DEFAULT_EPS, fraction="0.5", out, allow_large=False, progress=None,
             train=False, objective="jepa,mae", train_modes="8", batch="256", lr=None, lr_factor="0.3", steps=None,
             max_steps="300000", records="200", train_seed="0", matrix=False, probe=False, probe_noise="0.05",
             command=None) -> SpectrumRun:
    """Empirical covariances of two views (``views``: an npz file with arrays x, y of shape
    (n, d); or a bundled ``dataset``, digits or patches, with its options), their modes
    (generalised eigenvectors of (sym(Sxy), Sxx)) and each mode's predicted critical time for
    JEPA and MAE at each ``depth``; writes ``out``/modes.csv, covariances.npz, spectrum.png.
    With ``train``: deep linear encoders trained on the pairs by minibatch GD (``objective``: any of jepa,
    mae, barlow, vicreg; docs/theory.md section 17), their observed order of the first ``train_modes`` modes
    against the predicted one (``matrix``: also the exact full-matrix flow; ``probe``:
    logistic probes of the digits' labels).

    The twin of ``jepa-dynamics spectrum``.

    >>> import tempfile
    >>> s = spectrum(dataset="digits", n=2000, depth=[1, 2], out=tempfile.mkdtemp(), progress=False)
    >>> len(s.table["feature"])  # 64 pixels' modes at each of two depths
    128
    """
    a = _common.flags(locals())
    from ..realdata import spectrum as spectrum_mod

    depths = [spec.check_depth(d) for d in spec.parse_list(a["depth"], "depth", int)]
    eps, fraction = spectrum_mod.check_eps_fraction(_ONE(a["eps"], "eps"), _ONE(a["fraction"], "fraction"))
    spec.check_writable_dir(out, "out")
    if probe and not train:
        raise spec.SpecError("probe", "probes read the trained encoders: add --train")
    if matrix and not train:
        raise spec.SpecError("matrix", "the matrix reference goes with --train")
    if probe and a["dataset"] != "digits":
        raise spec.SpecError("probe", "needs labels: only --dataset digits has them")
    v = _views(a)
    train_options = None
    if train:
        opt = lambda name, kind=float: None if a[name] is None else _ONE(a[name], name, kind)  # noqa: E731
        objectives_ = [spec.check_choice(o, spec.OBJECTIVES + spec.JOINT_OBJECTIVES, "objective")
                       for o in spec.parse_list(a["objective"], "objective", str)]
        train_options = dict(eps=eps, fraction=fraction, modes=opt("train_modes", int), batch=opt("batch", int),
                             lr=opt("lr"), lr_factor=opt("lr_factor"), steps=opt("steps", int),
                             max_steps=opt("max_steps", int), records=opt("records", int),
                             seed=opt("train_seed", int), matrix=bool(matrix))
        probe_noise = float(spec.check_nonnegative(opt("probe_noise"), "probe_noise"))
    if command is None:
        command = _common.command_line("spectrum", spectrum, a)
    cov, m = spectrum_mod.compute(v, progress=progress)
    table = spectrum_mod.mode_table(m, depths, eps, fraction)
    configs = None
    if train:
        from ..realdata import realtrain

        configs = realtrain.plan_all(m, depths, objectives_, syy=cov.syy, **train_options)  # refuse before writing
    header = spectrum_mod.provenance(command, cov, m, depths, eps, fraction)
    spectrum_mod.write_spectrum(cov, m, table, out, header)
    files = ("modes.csv", "covariances.npz", "spectrum.png")
    if configs is None:
        return SpectrumRun(out, _common.existing(out, files), table)
    x, y = v.arrays()
    x, y = x - cov.mean_x, y - cov.mean_y
    train_header = header + [f"# {k}: {text}" for k, text in realtrain.TRAIN_NOTES.items()]
    runs = {}
    try:
        for key, cfg in configs.items():
            runs[key] = realtrain.train_views(cfg, m, x, y, syy=cov.syy, progress=progress)
            realtrain.write_runs(runs, m, out, train_header)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; kept the {len(runs)} finished run(s) in {out}") from None
    if probe:
        from ..realdata import probes, views as views_mod

        images, labels = views_mod.digits_images()
        images = images - images.mean(0)
        sxx_clean = images.T @ images / len(images)
        data = probes.split(images, labels, seed=0)
        base = probes.subspace_baseline(data, sxx_clean)
        curves = realtrain.run_probes(runs, data, sxx_clean, noise=probe_noise, progress=progress)
        top, _ = probes.principal_subspaces(sxx_clean)
        notes = [f"# probe: multinomial logistic regression on standardised features, 60/40 seeded split of the "
                 f"1797 clean digits; read-out noise {probe_noise} x RMS of the data",
                 f"# subspaces: top = the {top.shape[1]} leading principal components of the clean digits "
                 f"(90% of the variance), bottom = the other {64 - top.shape[1]}",
                 f"# baseline_inputs: {json.dumps(base, sort_keys=True)}"]
        realtrain.write_probes(curves, runs, os.path.join(out, "probe.csv"), header + notes)
    files += ("training.csv", "orders.csv", "responses.csv") + (("probe.csv",) if probe else ())
    return SpectrumRun(out, _common.existing(out, files), table)
