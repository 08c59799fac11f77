r"""Gradient flow of ``(a, v, w_T)`` for :mod:`jepa_dynamics.theory.aligned`: an additive (IMEX)
Runge-Kutta method on a Sundman clock, vmapped over rows.

Layers that start equal stay equal, so the ``L + 1`` (``+ 1`` EMA) scalars of
docs/theory.md section 9 are ``(a, v, w_T)`` with ``w = a**L``.  The state is scaled by its
initial size, ``a = a0 A``, ``v = a0 V``, and the EMA target is carried as its lag behind the
encoder, ``w - w_T = eps E``:

.. math::  \dot A = -\tfrac{\varepsilon}{a_0} A^{L-1} V r - \beta A, \qquad
           \dot V = -\tfrac{\varepsilon}{a_0} W r - \beta V, \qquad
           \dot E = L A^{L-1} \dot A - \kappa E,

with ``W = A**L``, ``r = eps (sigma2 a0 V W - lam (W - E))`` (stop-gradient: ``E = 0``; MAE:
``r = sigma2 a0 eps V W - lam``).  An EMA row is stiff only through ``-kappa E`` (``w_T`` relaxes
at rate ``kappa``, far faster than the plateau moves); the lag form keeps ``kappa`` out of every
other term.  The rows are integrated against a Sundman clock ``s``, ``dt/ds = 1/R`` with ``R`` the
norm of the relative rates of ``A`` and ``V`` (against the size that a collapse drives to 0, see :func:`_size`),
so the ``~eps^-(2-1/L)``-long plateau is ``O(ln 1/eps)`` units of ``s`` and a collapse ``a -> 0``
is followed exponentially; ``t`` is the fourth component.

The method is Kennedy & Carpenter's ARK4(3)6L[2]SA (the tableau of diffrax's ``KenCarp4``): the
field is explicit and ``-kappa E / R`` implicit.  Within a step ``R`` is evaluated with ``E`` frozen
at the step's start (any positive function of the state is a valid clock), so a stage's ``R_i``
depends on its explicit ``(A_i, V_i)`` alone and the implicit stage is one division,
``E_i = rhs_i / (1 + h gamma kappa / R_i)``: no Newton solve, no Jacobian.  The implicit part is
stiffly accurate, and the update is written as the last stage plus the explicit remainder, so the
terms ``h kappa E_j / R_j`` (beyond ``1e17`` in a collapse) never have to cancel in rounding.  The
step is chosen per row (PI controller) from the embedded error of ``A``, ``V`` and ``t``; ``E``'s
own estimate is that of the stiff stages (stage order 2, times ``h kappa / R``), not the error of
the stiffly accurate solution, so it is left out: an error in ``E`` reaches ``t*`` only through
``A`` and ``V``, where it is measured (``tests/test_aligned.py`` holds ``t*`` to scipy's Radau).

A row stops at the first step with ``|w| >= level`` (then a few Newton iterations on the step
length, from the last state below the level, refine the crossing, so ``t*`` carries the method's
local accuracy rather than an interpolant's), or once ``|w|`` (at ``L = 1`` with an EMA target:
``|(w, w_T)|``, which a collapse drives to 0 in a spiral) has fallen ``e^60`` below the level
or ``s`` passes ``200 + 20 |ln(level/eps)|`` without a crossing (a collapse: section 10's fixed
points are ``0`` and ``+-|w_inf|`` only).  The depth is data (``A**L`` by binary powering, exact in
sign for a negative ``A``) and rows are padded to batches of 256: one compile.
"""

from __future__ import annotations

import functools

import numpy as np

from .._jax import jax, pad_rows

import jax.numpy as jnp  # noqa: E402

_BATCH = 256  # one compile; small batches, as a vmapped loop runs as long as its slowest row
_FALL = 60.0  # |w| this many e-folds below the level: collapsed
_FALL_LINEAR = 20.0  # the same where the collapse is a linear, attracting spiral (see _spirals_in)
_REFINE = 4  # Newton iterations on the crossing step
_DELTA = 1e-3
_H_MAX = 0.5  # the largest step in s

# ARK4(3)6L[2]SA, Kennedy & Carpenter (2003), Appl. Numer. Math. 44, table 6 (explicit) / 5 (implicit)
_GAMMA = 0.25
_B = np.array([82889 / 524892, 0, 15625 / 83664, 69875 / 102672, -2260 / 8211, _GAMMA])
_B_EMBEDDED = np.array([4586570599 / 29645900160, 0, 178811875 / 945068544, 814220225 / 1159782912,
                        -3700637 / 11593932, 61727 / 225920])
_C = np.array([0.0, 0.5, 83 / 250, 31 / 50, 17 / 20, 1.0])
_A_EXPLICIT = (
    (0.5,),
    (13861 / 62500, 6889 / 62500),
    (-116923316275 / 2393684061468, -2731218467317 / 15368042101831, 9408046702089 / 11113171139209),
    (-451086348788 / 2902428689909, -2682348792572 / 7519795681897, 12662868775082 / 11960479115383,
     3355817975965 / 11060851509271),
    (647845179188 / 3216320057751, 73281519250 / 8382639484533, 552539513391 / 3454668386233,
     3354512671639 / 8306763924573, 4040 / 17871),
)
_A_IMPLICIT = (  # below the diagonal; the diagonal is _GAMMA from the second stage on
    (_GAMMA,),
    (8611 / 62500, -1743 / 31250),
    (5012029 / 34652500, -654441 / 2922500, 174375 / 388108),
    (15267082809 / 155376265600, -71443401 / 120774400, 730878875 / 902184768, 2285395 / 8070912),
    tuple(_B[:5]),
)


def _power(x, n, bits: int):
    """``x**n`` for a traced integer ``0 <= n < 2**bits`` by binary powering: multiplications only,
    so exact in sign for a negative ``x``."""
    out, base = jnp.ones_like(x), x
    for k in range(bits):
        out = jnp.where(jnp.mod(jnp.floor(n / 2**k), 2) == 1, out * base, out)
        base = base * base
    return out


def _field(A, V, p, bits):
    """The field at ``(A, V)``, affine in the lag ``E``: ``(dA0, kA, dV0, kV, A^(L-1))`` with
    ``dA/dt = dA0 + kA E`` and ``dV/dt = dV0 + kV E``."""
    lam, sigma2, a0, eps, beta, mae = p["lam"], p["sigma2"], p["a0"], p["eps"], p["beta"], p["mae"]
    A_pow = _power(A, p["depth"] - 1, bits)
    W = A_pow * A
    r0 = jnp.where(mae > 0, sigma2 * a0 * eps * V * W - lam, eps * W * (sigma2 * a0 * V - lam))
    r1 = jnp.where(mae > 0, 0.0, eps * lam)  # dr/dE
    scale = eps / a0  # a0^(L-1)
    return (-scale * A_pow * V * r0 - beta * A, -scale * A_pow * V * r1,
            -scale * W * r0 - beta * V, -scale * W * r1, A_pow)


def _size(A, E, p):
    """The size of the encoder a collapse drives to 0: ``|A|``, except at ``L = 1`` with an EMA
    target, where ``a`` and ``w_T`` can circle the origin together, each passing through 0:
    there ``|(A, A - E)|`` (``w`` and ``w_T``, in units of ``eps``)."""
    return jnp.where((p["depth"] == 1) & (p["ema"] > 0), jnp.hypot(A, A - E), jnp.abs(A))  # no underflow at 1e-154


def _clock(A, V, E, dA, dV, p):
    """``R``, with ``dt/ds = 1/R``: the norm of the relative rates of ``A`` (against :func:`_size`,
    so a collapse is followed exponentially in ``s``; ``|A| + delta`` for MAE at ``L = 1``, where
    ``a`` passes through 0 once) and of ``V`` (against ``|V| + delta``)."""
    delta_a = jnp.where((p["depth"] == 1) & (p["mae"] > 0), _DELTA, 0.0)
    return (jnp.sqrt((dA / (_size(A, E, p) + delta_a + 1e-300)) ** 2 + (dV / (jnp.abs(V) + _DELTA)) ** 2)
            + 1e-300)


def _step(y, h, p, bits):
    """One ARK step of length ``h`` in ``s``: ``(y_new, error estimate)``, ``y = (A, V, E, t)``.

    The clock ``R`` is evaluated with ``E`` frozen at the step's start (a valid clock: any positive
    function of the state is), so each stage's ``R_i`` depends only on its explicit ``(A_i, V_i)``
    and the implicit part ``-kappa E / R_i`` is solved for ``E_i`` by one division."""
    kappa, ema, E_n = p["kappa"], p["ema"], y[2]
    e3 = jnp.array([0.0, 0.0, 1.0, 0.0])
    fe, fi = [], []
    Y = y
    for i in range(6):
        dA0, kA, dV0, kV, A_pow = _field(Y[0], Y[1], p, bits)
        R = _clock(Y[0], Y[1], E_n, dA0 + kA * E_n, dV0 + kV * E_n, p)
        if i > 0:  # the implicit stage: E_i = rhs / (1 + h gamma kappa / R_i)
            Y = Y.at[2].set(Y[2] / (1.0 + h * _GAMMA * kappa / R))
        dA, dV = dA0 + kA * Y[2], dV0 + kV * Y[2]
        fe.append(jnp.stack([dA, dV, ema * p["depth"] * A_pow * dA, jnp.ones_like(dA)]) / R)
        fi.append(-kappa * Y[2] / R * e3)
        if i < 5:
            Y = y + h * sum(_A_EXPLICIT[i][j] * fe[j] + _A_IMPLICIT[i][j] * fi[j] for j in range(i + 1))
    # The implicit tableau is stiffly accurate (its last row is b), so y_new is the last stage plus
    # the explicit part's remainder: the same sum as y + h sum_j b_j (fe_j + fi_j), without its
    # terms h b_j kappa E_j / R_j, which cancel to O(1) from O(h kappa / R) (1e17 and more in a
    # collapse) and would leave E as rounding noise
    y_new = Y + h * sum((_B[j] - (_A_EXPLICIT[4][j] if j < 5 else 0.0)) * fe[j] for j in range(6))
    err = h * sum((_B[j] - _B_EMBEDDED[j]) * fe[j] for j in range(6))  # A, V and t: no implicit part
    return y_new, err


def _spirals_in(y, p):
    """At ``L = 1`` with an EMA target, ``(a, w_T)`` obey a *linear* system for fixed ``v``,
    ``d/dt (a, w_T) = M(v) (a, w_T)``, ``M = [[-sigma2 v^2 - beta, lam v], [kappa, -kappa]]``, while
    ``v`` itself moves only at second order in ``(a, w_T)``.  ``tr M < 0`` always and
    ``det M = kappa (sigma2 v (v - rho) + beta) > 0`` for every ``v < 0`` and every ``v > rho``: on
    those half-lines the origin attracts.  Once ``(a, w_T)`` is ``e^-20`` below the level, ``v``
    moves by ``-a r`` (``e^-40`` of the level squared) and by ``-beta v``, which takes it towards 0
    but never across: ``v < 0`` stays attracting, ``v > rho`` only without weight decay (``-beta v``
    would bring it down to ``rho``).  Then the row has collapsed.  (A spiral into the origin costs
    ~20 steps a turn: this ends it ``e^40`` earlier.)"""
    v = p["a0"] * y[1]
    return (p["depth"] == 1) & (p["ema"] > 0) & ((v < 0) | ((v > p["lam"] / p["sigma2"]) & (p["beta"] == 0)))


def _log_w(y, p):
    return p["depth"] * jnp.log(jnp.abs(y[0]) + 1e-300)


def _row(bits, rtol, atol, max_steps, p):
    """``(crossed, t_cross, sign, ok, steps)`` of one row (vmapped over ``p``)."""
    log_rel = p["log_rel"]
    s_max = 200.0 + 20.0 * jnp.abs(log_rel)
    y0 = jnp.array([1.0, p["V0"], 0.0, 0.0])
    control = jnp.array([True, True, False, True])  # A, V and t (see the module docstring)

    def cond(c):
        return (c["status"] == 0) & (c["n"] < max_steps)

    def body(c):
        y, s, h = c["y"], c["s"], c["h"]
        y_new, err = _step(y, h, p, bits)
        size = jnp.maximum(jnp.abs(y), jnp.abs(y_new))
        ratio = jnp.sqrt(jnp.sum(jnp.where(control, err / (atol + rtol * size), 0.0) ** 2) / 3.0)
        ok = jnp.isfinite(ratio) & (ratio <= 1.0)
        factor = jnp.where(jnp.isfinite(ratio), 0.9 * jnp.maximum(ratio, 1e-10) ** -0.175
                           * jnp.maximum(c["prev"], 1e-10) ** 0.1, 0.2)
        factor = jnp.clip(factor, 0.2, 5.0)
        g = _log_w(y_new, p)
        crossed = ok & (g >= log_rel)
        below = log_rel - p["depth"] * jnp.log(_size(y_new[0], y_new[2], p) + 1e-300)
        settled = y_new[1] <= p["v_settled"]  # no revival ahead (see _revival_bound)
        fallen = ok & ((((below > _FALL) | (s + h > s_max)) & settled)
                       | ((below > _FALL_LINEAR) & _spirals_in(y_new, p)))
        move = ok & ~crossed
        return dict(
            y=jnp.where(move, y_new, y), s=jnp.where(move, s + h, s),
            h=jnp.where(crossed, h, jnp.minimum(h * factor, _H_MAX)), prev=jnp.where(ok, ratio, c["prev"]),
            status=jnp.where(crossed, 1, jnp.where(fallen, 2, 0)).astype(jnp.int32), n=c["n"] + 1)

    c = jax.lax.while_loop(cond, body, dict(y=y0, s=jnp.float64(0.0), h=jnp.float64(1e-3), prev=jnp.float64(1.0),
                                            status=jnp.int32(0), n=jnp.int32(0)))
    y, h = c["y"], c["h"]
    # Newton on the step length tau: log|w|(step(y, tau)) = log_rel, from the last state below the
    # level (started by linear interpolation over the crossing step), with the field's
    # d log|w| / ds at the stepped state as the slope
    g0 = _log_w(y, p) - log_rel

    def newton(i, carry):  # iteration 0: linear interpolation; the last: y_tau at the final tau only
        tau, _ = carry
        y_tau = _step(y, tau, p, bits)[0]
        g = _log_w(y_tau, p) - log_rel
        dA0, kA, dV0, kV, _ = _field(y_tau[0], y_tau[1], p, bits)
        dA = dA0 + kA * y_tau[2]
        slope = p["depth"] * dA / (y_tau[0] * _clock(y_tau[0], y_tau[1], y[2], dA0 + kA * y[2], dV0 + kV * y[2], p))
        tau = jnp.where(i == 0, h * g0 / (g0 - g), jnp.clip(tau - g / slope, 0.0, h))
        return jnp.where(i == _REFINE + 1, carry[0], tau), y_tau

    _, y_end = jax.lax.fori_loop(0, _REFINE + 2, newton, (h, y))
    crossed = c["status"] == 1
    return crossed, y_end[3], jnp.sign(_power(y_end[0], p["depth"], bits + 1)), c["status"] > 0, c["n"]


@functools.lru_cache(maxsize=16)
def _compiled(bits: int, rtol: float, atol: float, max_steps: int):
    """The vmapped row for depths below ``2**bits`` (one compile per ``bits``)."""
    return jax.jit(jax.vmap(functools.partial(_row, bits, rtol, atol, max_steps)))


def _revival_bound(depth, lam, rho, a0, beta, objective):
    """The largest ``V = v / a0`` at which a fallen row has collapsed for good (``+inf``: any).

    At ``L = 1`` with weight decay (JEPA), near ``a = w_T = 0`` the encoder grows at the rate
    ``v (lam - sigma2 v) - beta`` (stop-gradient; with an EMA target the origin is unstable for
    the same ``v``), while ``v`` decays as ``e^(-beta t)``: a row that fell while ``v`` was above
    the window ``v (lam - sigma2 v) > beta`` revives when ``v`` enters it.  So it counts as
    collapsed only once ``v`` is below the window's lower end ``v_- = (lam - sqrt(lam^2 - 4 sigma2
    beta)) / (2 sigma2)``.  At ``L >= 2`` the growth rate carries ``a^(2L-2)``: a fallen row stays
    fallen."""
    sigma2 = lam / rho
    with np.errstate(invalid="ignore"):
        low = (lam - np.sqrt(np.maximum(lam**2 - 4 * sigma2 * beta, 0.0))) / (2 * sigma2)
    concerned = (depth == 1) & (beta > 0) & (objective == "jepa")
    return np.where(concerned, low / a0, np.inf)


def first_crossing(objective, depth, lam, rho, a0, v0, kappa, beta, level, *, rtol=3e-8, atol=1e-30,
                   max_steps=16384):
    """``(crossed, t_cross, sign)`` arrays for 1-D float rows (no validation).  Rows are sorted by
    depth, ``kappa``, ``v0 / a0`` and ``sigma2`` before they are cut into batches, so that a batch's
    rows need similar step counts (a vmapped loop runs as long as its slowest row)."""
    n = depth.size
    depth = np.asarray(depth, dtype=np.int64)
    eps = a0 ** depth.astype(np.float64)
    ema = np.isfinite(kappa) & (objective == "jepa")
    kappa = np.where(ema, kappa, 0.0)
    cols = dict(depth=depth.astype(np.float64), lam=lam, sigma2=lam / rho, a0=a0, eps=eps, kappa=kappa, beta=beta,
                ema=ema.astype(np.float64), mae=np.full(n, float(objective == "mae")), V0=v0 / a0,
                log_rel=np.log(level) - np.log(eps))
    cols["v_settled"] = _revival_bound(depth, lam, rho, a0, beta, objective)
    bits = max(int(depth.max()).bit_length(), 3)  # depths up to 7 share one compile
    crossed = np.zeros(n, bool)
    t = np.full(n, np.inf)
    sign = np.ones(n)
    order = np.lexsort((lam / rho, v0 / a0, kappa, depth))
    for start in range(0, n, _BATCH):
        idx = order[start:start + _BATCH]
        p = {k: jnp.asarray(pad_rows(np.asarray(v, dtype=np.float64)[idx], _BATCH)) for k, v in cols.items()}
        c, tc, sg, ok, _ = (np.asarray(x)[: idx.size] for x in _compiled(bits, rtol, atol, int(max_steps))(p))
        if not ok.all():
            i = idx[int(np.flatnonzero(~ok)[0])]
            raise RuntimeError(
                f"gradient-flow integration did not settle within {max_steps} steps for objective={objective} "
                f"depth={int(depth[i])} lam={lam[i]:.6g} rho={rho[i]:.6g} a0={a0[i]:.6g} "
                f"predictor_init={v0[i]:.6g} ema_rate={kappa[i]:.6g} weight_decay={beta[i]:.6g}"
                + (" (a target this slow leaves the encoder pinned at v w = rho w_T, relaxing far faster than the "
                   "target moves: a stiffness the integrator does not handle; use a larger ema_rate)"
                   if ema[i] and kappa[i] < 1e-4 * lam[i] else ""))
        crossed[idx], t[idx], sign[idx] = c, tc, sg
    return crossed, t, sign
