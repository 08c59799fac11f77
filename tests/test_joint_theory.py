"""Barlow Twins and VICReg with deep linear encoders (docs/theory.md section 16).

The per-feature theory (:mod:`jepa_dynamics.theory.joint`) is held to: the gradient flow of the real
weight matrices (autodiff of :mod:`jepa_dynamics.training.objectives`, RK4), the depth-1 logistic law of
Barlow Twins, scipy quadrature of ``dt/dw`` written from the per-feature losses, and networks trained by
plain gradient descent.  The reference derivatives here are written from the losses, not from the
module's ``(g, q)``.
"""

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from jepa_dynamics._jax import jax
from jepa_dynamics.theory import joint, spec
from jepa_dynamics.training import models, objectives

import jax.numpy as jnp  # noqa: E402

LAM = np.array([1.0, 0.6, 0.3])
SIGMA2 = np.array([1.2, 0.8, 1.0])
SYY = np.array([1.1, 0.9, 0.5])
# (objective, loss weights): the default VICReg weights (2, 1, 1) and one set away from them
CASES = [("barlow", {}), ("vicreg", {}), ("vicreg", dict(invariance=1.0, variance=1.5, covariance=0.3))]
CASE_IDS = ["barlow", "vicreg", "vicreg-weights"]


def _theory_kw(objective, weights, sigma2=SIGMA2, syy=SYY):
    if objective == "barlow":
        return {}
    kw = dict(sigma2=sigma2, syy=syy)
    kw.update({k: v for k, v in weights.items() if k in ("invariance", "variance")})
    return kw


def _loss_slope(objective, weights, w, lam, sigma2, syy):
    """``d ell / dw`` of the per-feature loss, differentiated by hand from its definition."""
    if objective == "barlow":  # ell = (lam w^2 - 1)^2
        return 4 * lam * w * (lam * w**2 - 1)
    a, b = weights.get("invariance", 2.0), weights.get("variance", 1.0)
    # ell = a w^2 (sigma2 + syy - 2 lam) + b [(sigma2 w^2 - 1)^2 + (syy w^2 - 1)^2]
    return (2 * a * w * (sigma2 + syy - 2 * lam)
            + 4 * b * w * (sigma2 * (sigma2 * w**2 - 1) + syy * (syy * w**2 - 1)))


def _moments():
    return tuple(jnp.diag(jnp.asarray(m)) for m in (SIGMA2, LAM, SYY))


def _field(objective, weights):
    """Minus the gradient of the matrix loss with respect to every layer (autodiff)."""
    moments = _moments()

    def loss(layers):
        return objectives.joint_loss(objective, "population", models.DeepLinear(layers), moments, **weights)

    grad = jax.grad(loss)
    return lambda layers: jax.tree_util.tree_map(jnp.negative, grad(layers))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("objective,weights", CASES, ids=CASE_IDS)
def test_matrix_gradient_flow_is_the_per_feature_ode(objective, weights, depth):
    """RK4 (h = 1e-3) on the real layers from balanced init with random orthogonal frames:
    ``Wbar`` stays diagonal and its diagonal is ``joint.trajectory`` to 1e-8."""
    eps, h = 0.05, 1e-3
    kw = _theory_kw(objective, weights)
    t_end = 1.3 * float(np.max(joint.critical_time(objective, depth, LAM, eps, **kw)))
    n_chunks = 6
    per_chunk = int(np.ceil(t_end / n_chunks / h))
    field = _field(objective, weights)

    def rk4(_, layers):
        k1 = field(layers)
        k2 = field(jax.tree_util.tree_map(lambda x, k: x + 0.5 * h * k, layers, k1))
        k3 = field(jax.tree_util.tree_map(lambda x, k: x + 0.5 * h * k, layers, k2))
        k4 = field(jax.tree_util.tree_map(lambda x, k: x + h * k, layers, k3))
        return jax.tree_util.tree_map(lambda x, a, b, c, d: x + h / 6 * (a + 2 * b + 2 * c + d), layers, k1, k2, k3, k4)

    chunk = jax.jit(lambda layers: jax.lax.fori_loop(0, per_chunk, rk4, layers))
    layers = models.balanced(jax.random.PRNGKey(7 + depth), 3, depth, eps).encoder.layers
    assert depth == 1 or np.abs(np.asarray(layers[0]) - np.diag(np.diag(np.asarray(layers[0])))).max() > 1e-3
    times, responses, off = [], [], 0.0
    for i in range(1, n_chunks + 1):
        layers = chunk(layers)
        wbar = np.asarray(models.DeepLinear(layers).matrix())
        times.append(i * per_chunk * h)
        responses.append(np.diag(wbar))
        off = max(off, np.abs(wbar - np.diag(np.diag(wbar))).max())
    predicted = joint.trajectory(objective, depth, LAM, eps, np.array(times), **kw)
    gap = np.abs(np.array(responses).T - predicted).max()
    # the diagonal set is invariant; with covariance < variance it is not stable against off-diagonal
    # mixing, and rounding (1e-16) grows to ~1e-10 by the end, more on another machine (docs/theory.md section 16)
    assert off < (1e-8 if weights.get("covariance", 1.0) < weights.get("variance", 1.0) else 1e-13), off
    assert gap < 1e-8, gap
    assert np.all(predicted[:, -1] > 0.5 * joint.fixed_point(objective, LAM, **kw))  # past every rise


def test_depth_one_barlow_is_the_logistic_law():
    """Depth 1: the eigenvalue ``c = lam w^2`` of Barlow's cross-correlation is logistic with rate
    ``8 lam`` (the closed form of Simon et al. 2023 in gradient-flow units); the theory's inverted
    ``t(w)``, :func:`joint.logistic` and a DOP853 integration of ``dw/dt = -d ell/dw`` agree to 1e-8."""
    lam = np.array([2.0, 0.7, 0.15])
    eps = 1e-3
    ts = np.linspace(0.0, 30.0, 31)
    c0 = lam * eps**2
    closed = np.sqrt(1 / (1 + (1 / c0 - 1)[:, None] * np.exp(-8 * lam[:, None] * ts)) / lam[:, None])
    assert np.abs(joint.trajectory("barlow", 1, lam, eps, ts) - closed).max() < 1e-8
    assert np.abs(joint.logistic("barlow", lam, eps, ts) - closed).max() < 1e-8
    for i in range(3):
        sol = solve_ivp(lambda t, w: -_loss_slope("barlow", {}, w, lam[i], None, None), (0, ts[-1]), [eps],
                        t_eval=ts, method="DOP853", rtol=1e-13, atol=1e-15)
        assert np.abs(sol.y[0] - closed[i]).max() < 1e-8
    assert closed[:, -1] == pytest.approx(lam**-0.5, rel=1e-6)  # w_star = lam^-1/2


@pytest.mark.parametrize("objective,weights", CASES, ids=CASE_IDS)
def test_critical_time_is_quadrature_of_dt_dw(objective, weights):
    """``t_star`` against scipy ``quad`` of ``dt = dw / (-L w^{2-2/L} d ell/dw)`` (in ``ln w``),
    depths 1-6, eps down to 1e-6, fractions 0.2 and 0.5: relative gap below 1e-10."""
    worst = 0.0
    for i in range(3):
        kw = _theory_kw(objective, weights, SIGMA2[i], SYY[i])
        w_star = float(joint.fixed_point(objective, LAM[i], **kw))
        for depth in range(1, 7):
            for eps in (0.1, 1e-3, 1e-6):
                for fraction in (0.2, 0.5):
                    if eps >= fraction * w_star:
                        continue
                    t = float(joint.critical_time(objective, depth, LAM[i], eps, fraction, **kw))

                    def dt_dz(z):
                        w = np.exp(z)
                        return w / (-depth * w ** (2 - 2 / depth)
                                    * _loss_slope(objective, weights, w, LAM[i], SIGMA2[i], SYY[i]))

                    ref, _ = quad(dt_dz, np.log(eps), np.log(fraction * w_star), epsabs=0, epsrel=1e-13, limit=400)
                    worst = max(worst, abs(t / ref - 1))
    assert worst < 1e-10, worst


@pytest.mark.slow
@pytest.mark.parametrize("objective,weights", CASES, ids=CASE_IDS)
def test_matrix_loss_on_the_diagonal_is_the_per_feature_losses(objective, weights):
    """On the balanced set ``W_a = O_a diag(u) O_{a-1}^T`` (random hidden frames) the matrix loss is
    ``sum_i ell(w_i)``, ``w = u^L``, with the per-feature losses of docs/theory.md section 16."""
    w = np.array([0.3, 1.1, 0.7])
    for depth in (1, 3):
        frames = [np.eye(3)]  # O_0 = I; with eps = 1 the balanced layers are O_a O_{a-1}^T
        for layer in models.balanced(jax.random.PRNGKey(depth), 3, depth, 1.0).encoder.layers:
            frames.append(np.asarray(layer) @ frames[-1])
        u = np.diag(w ** (1 / depth))
        layers = tuple(jnp.asarray(frames[a + 1] @ u @ frames[a].T) for a in range(depth))
        loss = float(objectives.joint_loss(objective, "population", models.DeepLinear(layers), _moments(), **weights))
        if objective == "barlow":
            by_hand = np.sum((LAM * w**2 - 1) ** 2)
        else:
            a, b = weights.get("invariance", 2.0), weights.get("variance", 1.0)
            by_hand = np.sum(a * w**2 * (SIGMA2 + SYY - 2 * LAM)
                             + b * ((SIGMA2 * w**2 - 1) ** 2 + (SYY * w**2 - 1) ** 2))
        assert loss == pytest.approx(by_hand, rel=1e-13)


@pytest.mark.parametrize("objective,weights", CASES, ids=CASE_IDS)
def test_fixed_point_and_field(objective, weights):
    """``w_star`` zeroes ``d ell/dw`` and is stable; ``rhs`` and ``rhs_u`` are the chain rule of the loss."""
    kw = _theory_kw(objective, weights)
    w_star = joint.fixed_point(objective, LAM, **kw)
    assert np.abs(_loss_slope(objective, weights, w_star, LAM, SIGMA2, SYY)).max() < 1e-12
    h = 1e-6
    assert np.all(_loss_slope(objective, weights, w_star * (1 + h), LAM, SIGMA2, SYY) > 0)
    w = 0.37 * w_star
    for depth in (1, 2, 5):
        by_hand = -depth * w ** (2 - 2 / depth) * _loss_slope(objective, weights, w, LAM, SIGMA2, SYY)
        np.testing.assert_allclose(joint.rhs(objective, w, depth, LAM, **kw), by_hand, rtol=1e-13)
        u = w ** (1 / depth)
        np.testing.assert_allclose(depth * u ** (depth - 1) * joint.rhs_u(objective, u, depth, LAM, **kw),
                                   by_hand, rtol=1e-12)


def test_lam_orders_learning_sigma2_only_in_the_constant():
    """Barlow: sigma2 and syy never enter.  VICReg (default weights): at depth >= 2 two features with the
    same lam and different variances reach t_star at the same time as eps -> 0 (the plateau
    ``eps^{-(2-2/L)} / (4 (L-1) g)`` depends on g = 4 lam only), while the larger lam is always earlier."""
    t_b = joint.critical_time("barlow", 2, [0.5, 1.0], 1e-3)
    assert t_b[1] < t_b[0]
    kw = dict(sigma2=np.array([0.6, 3.0]), syy=np.array([0.6, 3.0]))
    ratios = []
    for eps in (1e-3, 1e-5, 1e-7):
        t = joint.critical_time("vicreg", 3, 0.5, eps, **kw)
        ratios.append(abs(t[1] / t[0] - 1))
        lead = joint.critical_time_leading("vicreg", 3, 0.5, eps, **kw)
        assert np.all(np.abs(lead / t - 1) < 10 * eps ** (2 / 3))
    assert ratios[0] > ratios[1] > ratios[2] and ratios[2] < 1e-3
    t = joint.critical_time("vicreg", 3, [0.3, 0.45], 1e-3, sigma2=[0.3, 3.0], syy=[0.3, 3.0])
    assert t[1] < t[0]  # larger lam first, though its variance (and its w_star's denominator) is 10x larger


def test_refusals_name_the_parameter():
    with pytest.raises(spec.SpecError, match="^lam: .*never learned"):
        joint.critical_time("barlow", 2, [1.0, -0.1], 1e-3)
    with pytest.raises(spec.SpecError, match="^lam: the growth rate g .* never learned"):
        joint.critical_time("vicreg", 2, 0.1, 1e-3, sigma2=1.0, syy=1.0, invariance=10.0, variance=1.0)
    with pytest.raises(spec.SpecError, match="^eps: must be below fraction \\* w_star"):
        joint.critical_time("barlow", 1, 4.0, 0.3)  # w_star = 0.5
    with pytest.raises(spec.SpecError, match="^sigma2: VICReg needs"):
        joint.critical_time("vicreg", 1, 0.5, 1e-3)
    with pytest.raises(spec.SpecError, match="^lam: \\|lam\\| must be at most"):
        joint.fixed_point("vicreg", 2.0, sigma2=1.0, syy=1.0)
    with pytest.raises(spec.SpecError, match="^objective: unknown value 'jepa'"):
        joint.critical_time("jepa", 1, 0.5, 1e-3)
    with pytest.raises(spec.SpecError, match="^eps: the time to learn overflows"):
        joint.critical_time("barlow", 8, 1.0, 1e-300)


@pytest.mark.slow
@pytest.mark.parametrize("objective", spec.JOINT_OBJECTIVES)
def test_sampled_loss_is_the_population_loss_at_the_batch_moments(objective):
    """A minibatch's loss and gradients equal the population formula at the batch's own moments, with
    full (non-diagonal) moments; the vector (diagonal) form equals the matrix form."""
    kx, ky, kw = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.normal(kx, (64, 4))
    y = 0.6 * x + jax.random.normal(ky, (64, 4))
    enc = models.DeepLinear(tuple(0.4 * jax.random.normal(k, (4, 4)) for k in jax.random.split(kw, 2)))
    moments = (x.T @ x / 64, x.T @ y / 64, y.T @ y / 64)
    weights = dict(invariance=0.7, variance=1.3, covariance=0.4) if objective == "vicreg" else dict(off_diagonal=0.5)

    def population(e):
        return objectives.joint_loss(objective, "population", e, moments, **weights)

    def sampled(e):
        return objectives.joint_loss(objective, "sampled", e, (x, y), **weights)

    assert float(sampled(enc)) == pytest.approx(float(population(enc)), rel=1e-12)
    for a, b in zip(jax.grad(sampled)(enc).layers, jax.grad(population)(enc).layers):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    diag = tuple(jnp.asarray(m) for m in (SIGMA2, LAM, SYY))
    full = _moments()
    enc = models.DeepLinear(tuple(layer[:3, :3] for layer in enc.layers))
    assert float(objectives.joint_loss(objective, "population", enc, diag)) == pytest.approx(
        float(objectives.joint_loss(objective, "population", enc, full)), rel=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("objective,weights", CASES[:2], ids=CASE_IDS[:2])
def test_trained_networks_cross_at_t_star(objective, weights):
    """Plain GD (float64, balanced init, random frames) on the population loss: each feature's
    response first reaches ``fraction * w_star`` at step k with ``lr * k`` within 1% of the theory's
    ``t_star``, depths 1-3 (the GD-versus-flow phase error is about lr x rate / 2, here ~0.3%)."""
    eps, fraction, steps_per_t_star = 0.05, 0.5, 600
    kw = _theory_kw(objective, weights)
    moments = _moments()
    w_star = joint.fixed_point(objective, LAM, **kw)
    worst = 0.0
    for depth in (1, 2, 3):
        t_star = joint.critical_time(objective, depth, LAM, eps, fraction, **kw)
        lr = float(t_star.min()) / steps_per_t_star
        steps = int(np.ceil(1.1 * t_star.max() / lr))
        grad = jax.grad(lambda e: objectives.joint_loss(objective, "population", e, moments, **weights))

        def step(enc, _):
            enc = jax.tree_util.tree_map(lambda p, g: p - lr * g, enc, grad(enc))
            return enc, jnp.diagonal(enc.matrix())

        enc = models.balanced(jax.random.PRNGKey(depth), 3, depth, eps).encoder
        _, path = jax.jit(lambda e: jax.lax.scan(step, e, None, length=steps))(enc)
        path = np.asarray(path)  # path[k - 1] is the response after k steps
        for i in range(3):
            level = fraction * w_star[i]
            k = int(np.argmax(path[:, i] >= level))
            assert path[k, i] >= level and (k == 0 or path[k - 1, i] < level)
            before = eps if k == 0 else path[k - 1, i]
            crossing = lr * (k + (level - before) / (path[k, i] - before))  # linear between steps k and k + 1
            worst = max(worst, abs(crossing / t_star[i] - 1))
    assert worst < 0.01, worst
