"""Every optimizer of optimizers.md against test_vectors.md §8 (TV-OPT-04..10), a convex
problem with a known optimum, and the common rules of optimizers.md §0 (groups, masks,
growth, state_dict resume, hyperparameter checks, dtypes)."""
import json

import numpy as np
import pytest

import corenet
from corenet import Graph, HyperparameterError, Parameter, Sequential
from corenet.datasets import xor
from corenet.optimizers import (OPTIMIZERS, Adadelta, AdaGrad, Adam, AdamW, DeltaBarDelta,
                                DeltaDelta, LeastSquares, LevenbergMarquardt, NewtonIRLS,
                                Quickprop, RMSprop, Rprop, jacobian, minimize, solve_irls,
                                solve_least_squares)

TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-6)}
GRADIENT_RULES = ["gd", "sgd", "delta_delta", "delta_bar_delta", "adagrad", "rmsprop",
                  "adadelta", "adam", "adamw", "quickprop", "rprop"]
# settings that reach the optimum of the convex test problem in a few hundred steps
CONVEX = {"gd": {"lr": 0.1}, "sgd": {"lr": 0.05, "momentum": 0.9},
          "delta_delta": {"lr": 0.05, "meta_lr": 0.01}, "delta_bar_delta": {"lr": 0.05},
          "adagrad": {"lr": 0.5}, "rmsprop": {"lr": 0.002}, "adadelta": {"lr": 0.5, "eps": 1e-2},
          "adam": {"lr": 0.05}, "adamw": {"lr": 0.05, "decoupled_weight_decay": 0.0},
          "quickprop": {"lr": 0.1, "decay": 0.0}, "rprop": {}}


def run(cls, grad, w0, steps, dtype=np.float64, loss=None, **kw):
    """Trajectory of ``cls(**kw)`` on ``grad(w)``; ``loss(w)`` is passed to step if given."""
    p = Parameter(np.array(w0, dtype=dtype))
    opt = cls([p], **kw)
    out = []
    for _ in range(steps):
        p.grad[...] = grad(p.data)
        opt.step(loss=None if loss is None else float(loss(p.data)))
        out.append(p.data.copy())
    return np.array(out), opt, p


# ----------------------------------------------------------------------------- TV-OPT-04/05
FIRST_STEPS = [
    (AdaGrad, {"lr": 0.01, "eps": 1e-10}, [-0.009999999996666667]),
    (AdaGrad, {"lr": 1e-3, "eps": 1e-8, "eps_inside_sqrt": True}, [-0.000999999944444449]),
    (RMSprop, {"lr": 1e-3, "rho": 0.9, "eps": 1e-8}, [-0.0031622773268350814]),
    (RMSprop, {"lr": 1e-3, "eps_inside_sqrt": True}, [-0.0031622759033489213]),
    (Adadelta, {"rho": 0.9, "eps": 1e-6, "lr": 1.0},
     [-0.003162101992714967, -0.00324424344883186]),
    (Adam, {"lr": 1e-3}, [-0.0009999999666666678]),
    (Adam, {"lr": 1e-3, "bias_correction": False}, [-0.003162274326838558]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,kw,steps", FIRST_STEPS)
def test_tv_opt_04_first_steps(cls, kw, steps, dtype):
    traj, opt, p = run(cls, lambda w: 0.3, [0.0], len(steps), dtype=dtype, **kw)
    deltas = np.diff(np.concatenate([[0.0], traj[:, 0].astype(np.float64)]))
    if dtype == np.float32:   # the float32 position rounds the step: compare to its ulp
        np.testing.assert_allclose(deltas, steps, rtol=1e-5, atol=1e-9)
    else:
        np.testing.assert_allclose(deltas, steps, **TOL[dtype])
    assert p.data.dtype == dtype
    assert all(v.dtype == dtype for v in opt.state[p].values() if isinstance(v, np.ndarray))


def test_tv_opt_04_adadelta_state():
    _, opt, p = run(Adadelta, lambda w: 0.3, [0.0], 1)
    np.testing.assert_allclose(opt.state[p]["acc_delta"], [9.998889012331967e-07], rtol=1e-9)
    np.testing.assert_allclose(opt.state[p]["square_avg"], [0.009], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tv_opt_05_adam_trajectories(dtype):
    tol = TOL[dtype]
    traj, _, _ = run(Adam, lambda w: 2 * w, [1.0], 3, dtype=dtype, lr=0.1)
    np.testing.assert_allclose(traj[:, 0], [0.900000000500, 0.800412228692, 0.701586272946],
                               rtol=max(tol["rtol"], 1e-11), atol=tol["atol"])
    traj, _, _ = run(Adam, lambda w: 2 * w, [1.0], 3, dtype=dtype, lr=0.1,
                     bias_correction=False)
    np.testing.assert_allclose(traj[:, 0], [0.683772283983, 0.270206068505, -0.162141343222],
                               rtol=max(tol["rtol"], 1e-11), atol=tol["atol"])
    traj, _, _ = run(Adam, lambda w: 0.5, [1.0], 2, dtype=dtype, lr=0.1, weight_decay=0.1)
    np.testing.assert_allclose(traj[:, 0], [0.9000000016666666, 0.8000473404883316], **tol)
    traj, _, _ = run(AdamW, lambda w: 0.5, [1.0], 2, dtype=dtype, lr=0.1,
                     decoupled_weight_decay=0.1)
    np.testing.assert_allclose(traj[:, 0], [0.890000002, 0.7811000039800006], **tol)


def test_adam_amsgrad_uses_running_max_of_corrected_v():
    grads = iter([1.0, 0.01, 0.01])
    traj, opt, p = run(Adam, lambda w: next(grads), [0.0], 3, lr=0.1, amsgrad=True)
    v = opt.state[p]["exp_avg_sq"][0]
    vhat = [1e-3 / (1 - 0.999), None]
    assert opt.state[p]["max_exp_avg_sq"][0] == pytest.approx(vhat[0], rel=1e-12)
    assert v < opt.state[p]["max_exp_avg_sq"][0]


def test_rmsprop_centered_and_momentum_first_step():
    # centered: v = 0.1 g², m = 0.1 g -> denominator sqrt(0.1 g² − 0.01 g²) + eps
    traj, _, _ = run(RMSprop, lambda w: 0.3, [0.0], 1, lr=1e-3, centered=True)
    assert traj[0, 0] == pytest.approx(-1e-3 * 0.3 / (np.sqrt(0.09 * 0.09) + 1e-8), rel=1e-12)
    traj, _, _ = run(RMSprop, lambda w: 0.3, [0.0], 2, lr=1e-3, momentum=0.5)
    b1 = 0.3 / (np.sqrt(0.009) + 1e-8)
    b2 = 0.5 * b1 + 0.3 / (np.sqrt(0.9 * 0.009 + 0.009) + 1e-8)
    np.testing.assert_allclose(traj[:, 0], [-1e-3 * b1, -1e-3 * (b1 + b2)], rtol=1e-12)


# ----------------------------------------------------------------------------- TV-OPT-06
def test_tv_opt_06_quickprop_secant():
    traj, _, _ = run(Quickprop, lambda w: 2 * (w - 3), [0.0], 3, lr=0.1, mode="secant")
    np.testing.assert_allclose(traj[:, 0], [0.6, 3.0, 3.0], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tv_opt_06_quickprop_fahlman(dtype):
    p = Parameter(np.zeros(1, dtype=dtype))
    opt = Quickprop([p], lr=0.1, mu=1.75, decay=0.0)
    expected = [(0.6, 0.6, -6), (2.13, 1.53, -4.8), (3.174, 1.044, -1.74),
                (3.0, -0.174, 0.348)]
    for w, step, slope in expected:
        p.grad[...] = 2 * (p.data - 3)
        opt.step()
        got = (p.data[0], opt.state[p]["prev_step"][0], opt.state[p]["prev_slope"][0])
        np.testing.assert_allclose(got, (w, step, slope), rtol=TOL[dtype]["rtol"] * 10,
                                   atol=1e-12 if dtype == np.float64 else 1e-5)
    for _ in range(3):                                      # then steps 0
        p.grad[...] = 2 * (p.data - 3)
        opt.step()
        assert abs(opt.state[p]["prev_step"][0]) < (1e-12 if dtype == np.float64 else 1e-5)


def test_quickprop_safeguards_vectorised():
    # per element: maximum step, restart after a zero step, secant, degenerate secant
    p = Parameter(np.ones(4))
    opt = Quickprop([p], lr=0.5, decay=0.0, max_step=0.7)
    p.grad[...] = [1.0, 0.0, 4.0, 1.0]
    opt.step()                                      # gradient steps, clipped to 0.7
    np.testing.assert_allclose(opt.state[p]["prev_step"], [-0.5, 0.0, -0.7, -0.5])
    opt.state[p]["prev_step"][3], opt.state[p]["prev_slope"][3] = -0.2, -1.0
    p.grad[...] = [1.0, 2.0, -1.0, -1.0]
    opt.step()
    # 0: d<0, s>0, s >= shrink·p -> -ε s + μ d = -0.5 - 0.875, clipped to -0.7
    # 1: d = 0 -> plain gradient step -1.0, clipped to -0.7
    # 2: d<0, s<0 (no gradient term), secant d s/(p − s) = -0.7·(-1)/5
    # 3: d<0, p = s = -1 -> degenerate secant guard -ε s
    np.testing.assert_allclose(opt.state[p]["prev_step"], [-0.7, -0.7, 0.14, 0.5],
                               rtol=1e-12)


def test_quickprop_decay_enters_the_slope():
    traj, opt, p = run(Quickprop, lambda w: 0.0 * w, [2.0], 1, lr=0.5, decay=0.1)
    assert traj[0, 0] == pytest.approx(2.0 - 0.5 * 0.1 * 2.0)
    assert opt.state[p]["prev_slope"][0] == pytest.approx(0.2)


# ----------------------------------------------------------------------------- TV-OPT-07
RPROP = {
    "rprop-": [(0.1, 0.1), (0.22, 0.12), (0.364, 0.144), (0.292, 0.072), (0.328, 0.036),
               (0.3712, 0.0432), (0.3496, 0.0216)],
    "rprop+": [(0.1, 0.1), (0.22, 0.12), (0.364, 0.144), (0.22, 0.072), (0.292, 0.072),
               (0.3784, 0.0864), (0.292, 0.0432)],
    "irprop-": [(0.1, 0.1), (0.22, 0.12), (0.364, 0.144), (0.364, 0.072), (0.292, 0.072),
                (0.292, 0.036), (0.328, 0.036)],
    "irprop+": [(0.1, 0.1), (0.22, 0.12), (0.364, 0.144), (0.364, 0.072), (0.292, 0.072),
                (0.364, 0.036), (0.328, 0.036)],
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", list(RPROP))
def test_tv_opt_07_rprop_family(variant, dtype):
    p = Parameter(np.zeros(1, dtype=dtype))
    opt = Rprop([p], lr=0.1, etas=(0.5, 1.2), variant=variant)
    got = []
    for _ in range(7):
        p.grad[...] = 2 * (p.data - 0.35)
        opt.step(loss=float((p.data[0] - 0.35) ** 2))
        got.append((p.data[0], opt.state[p]["step_size"][0]))
    np.testing.assert_allclose(got, RPROP[variant], **TOL[dtype])


def test_irprop_plus_needs_the_loss_and_others_ignore_it():
    p = Parameter(np.ones(2))
    opt = Rprop([p], variant="irprop+")
    assert opt.uses_loss and not Rprop([Parameter(np.ones(1))]).uses_loss
    p.grad[...] = 1.0
    with pytest.raises(ValueError, match="loss"):
        opt.step()
    Rprop([p], variant="irprop-").step()            # fine without a loss


def test_rprop_sign_zero_does_not_move_and_steps_are_bounded():
    p = Parameter(np.array([0.0, 1.0]))
    opt = Rprop([p], lr=0.1, step_sizes=(0.01, 0.15), variant="rprop-")
    for _ in range(10):
        p.grad[...] = [0.0, 1.0]
        opt.step()
    assert p.data[0] == 0.0
    assert opt.state[p]["step_size"][1] == pytest.approx(0.15)
    for _ in range(10):
        p.grad[...] = [0.0, 1.0 if opt.state[p]["step"] % 2 else -1.0]
        opt.step()
    assert opt.state[p]["step_size"][1] == pytest.approx(0.01)


# ----------------------------------------------------------------------------- TV-OPT-08
def test_tv_opt_08_delta_delta():
    p = Parameter(np.ones(1))
    opt = DeltaDelta([p], lr=0.1, meta_lr=0.01)
    got = []
    for _ in range(4):
        p.grad[...] = 2 * p.data
        opt.step()
        got.append((p.data[0], opt.state[p]["lrs"][0]))
    np.testing.assert_allclose(got, [(0.8, 0.1), (0.5888, 0.132), (0.41116893184, 0.1508416),
                                     (0.279162775659, 0.160525450683)], rtol=1e-9)


def test_delta_delta_clips_rates():
    traj, opt, p = run(DeltaDelta, lambda w: np.array([5.0, 1.0]) * np.sign(w) * 4,
                       [1.0, 1.0], 6, lr=0.3, meta_lr=1.0, lr_max=0.5)
    assert (opt.state[p]["lrs"] >= 0).all() and (opt.state[p]["lrs"] <= 0.5).all()


@pytest.mark.parametrize("lr,expected", [
    (0.1, [(0.8, 0.1, 0.6), (0.624, 0.11, 0.9), (0.47424, 0.12, 1.0044),
           (0.3509376, 0.13, 0.987624), (0.252675072, 0.14, 0.90189936)]),
    (0.6, [(-0.2, 0.6), (0.016, 0.54), (-0.0016, 0.55), (-1.6e-05, 0.495),
           (-1.744e-06, 0.4455)])])
def test_tv_opt_08_delta_bar_delta(lr, expected):
    p = Parameter(np.ones(1))
    opt = DeltaBarDelta([p], lr=lr, kappa=0.01, phi=0.1, theta=0.7)
    got = []
    for _ in range(5):
        p.grad[...] = 2 * p.data
        opt.step()
        s = opt.state[p]
        got.append((p.data[0], s["lrs"][0], s["grad_avg"][0])[:len(expected[0])])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


def test_delta_bar_delta_momentum():
    traj, _, _ = run(DeltaBarDelta, lambda w: 2 * w, [1.0], 2, lr=0.1, kappa=0.01,
                     momentum=0.5)
    # u1 = 0.2, w1 = 0.8; u2 = 0.5·0.2 + 0.11·1.6 = 0.276, w2 = 0.524
    np.testing.assert_allclose(traj[:, 0], [0.8, 0.524], rtol=1e-12)


# ----------------------------------------------------------------------------- TV-OPT-09
X_IRLS = np.array([[1, 0.5], [1, 1.5], [1, -1.0], [1, 2.5], [1, 0.0], [1, 1.0]])
Y_IRLS = np.array([0, 1, 0, 1, 1, 0])


def test_tv_opt_09_irls_iterates():
    coef, intercept, res = solve_irls(X_IRLS, Y_IRLS, fit_intercept=False)
    expected = [[-0.7118644068, 0.9491525424], [-0.8978161282, 1.197088171],
                [-0.9245938444, 1.2327917925], [-0.9251029722, 1.2334706296],
                [-0.9251031527, 1.2334708702]]
    np.testing.assert_allclose([w.ravel() for w in res.path[:5]], expected, rtol=1e-9)
    assert res.converged and intercept is None
    assert res.loss == pytest.approx(0.5369313659146221, rel=1e-12)
    coef, intercept, res = solve_irls(X_IRLS, Y_IRLS, l2=0.1, fit_intercept=False)
    np.testing.assert_allclose([w.ravel() for w in res.path[:3]],
                               [[-0.3491852345, 0.6518124376], [-0.3611448551, 0.7011878922],
                                [-0.3611952722, 0.7019372756]], rtol=1e-9)
    np.testing.assert_allclose(coef, [-0.3611952683, 0.701937468], rtol=1e-9)
    assert res.loss == pytest.approx(0.5945364536455615, rel=1e-12)
    # the same with an automatic intercept column (penalised by default)
    coef, intercept, res = solve_irls(X_IRLS[:, 1:], Y_IRLS, l2=0.1)
    assert intercept == pytest.approx(-0.3611952683, rel=1e-9)
    assert coef[0] == pytest.approx(0.701937468, rel=1e-9)


def test_irls_agrees_with_gradient_descent_limit():
    coef, intercept, _ = solve_irls(X_IRLS[:, 1:], Y_IRLS, penalize_intercept=False, l2=0.05)
    model = _logistic_model()
    model.compile(loss="bce", optimizer={"name": "gd", "lr": 2.0})
    # a pure-NumPy gradient descent on the same objective (intercept not penalised)
    w = np.zeros(2)
    A = X_IRLS
    for _ in range(3000):
        a = 1 / (1 + np.exp(-A @ w))
        w -= 2.0 * (A.T @ (a - Y_IRLS) / 6 + 0.05 * np.array([0.0, w[1]]))
    np.testing.assert_allclose([intercept, coef[0]], w, rtol=1e-8)


def test_irls_separable_data_stops_unconverged():
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    coef, intercept, res = solve_irls(X, np.array([0, 0, 1, 1]), max_iter=25)
    assert not res.converged and res.n_iter == 25
    assert np.isfinite(coef).all()


def test_irls_singular_hessian_retries_with_damping():
    X = np.hstack([X_IRLS[:, 1:], X_IRLS[:, 1:]])            # duplicated column: H singular
    coef, intercept, res = solve_irls(X, Y_IRLS, max_iter=50)
    assert np.isfinite(coef).all()
    assert coef.sum() == pytest.approx(1.2334708702, rel=1e-6)     # same predictor
    assert res.loss == pytest.approx(0.5369313659146221, rel=1e-9)


def _logistic_model(dtype=np.float64):
    m = Sequential([{"name": "dense", "out_features": 1, "activation": "sigmoid"}],
                   dtype=dtype, random_state=0)
    m.build((1,))
    return m


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_newton_irls_on_a_model(dtype):
    model = _logistic_model(dtype)
    res = minimize(model, "bce", X_IRLS[:, 1:].astype(dtype), Y_IRLS,
                   optimizer="newton_irls", l2=0.1)
    assert res.converged
    W, b = model.parameters()
    np.testing.assert_allclose([b.data[0], W.data[0, 0]], [-0.3611952683, 0.701937468],
                               **TOL[dtype])
    assert W.data.dtype == dtype


def test_newton_irls_data_steps_follow_the_iterates():
    model = _logistic_model()
    for p in model.parameters():
        p.data[...] = 0.0
    opt = NewtonIRLS(l2=0.1)
    before = [opt.data_step(model, "bce", X_IRLS[:, 1:], Y_IRLS) for _ in range(2)]
    W, b = model.parameters()
    np.testing.assert_allclose([b.data[0], W.data[0, 0]], [-0.3611448551, 0.7011878922],
                               rtol=1e-9)
    assert before[0] == pytest.approx(np.log(2.0), rel=1e-12) and before[1] < before[0]


def test_newton_irls_softmax_matches_gradient_training():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    model = Sequential([{"name": "dense", "out_features": 3}, "softmax"], random_state=1)
    model.build((3,))
    res = minimize(model, "cross_entropy", X, y, optimizer="newton_irls")
    assert res.converged
    # the gradient of the mean cross-entropy vanishes at the solution
    out = model.forward(X)
    g = (out - np.eye(3)[y]) / 60
    assert np.abs(g.T @ X).max() < 1e-9 and np.abs(g.sum(0)).max() < 1e-9
    ridge = minimize(model, "cross_entropy", X, y, optimizer="newton_irls", l2=0.1)
    assert ridge.converged and ridge.loss > res.loss


def test_irls_converges_from_a_poor_start():
    # pure Newton diverges from w = (-1.5, 0) on this data; the step halving rescues it
    coef, intercept, res = solve_irls(X_IRLS[:, 1:], Y_IRLS, coef_init=[-1.5, 0.0])
    assert res.converged
    np.testing.assert_allclose([intercept, coef[0]], [-0.9251031527, 1.2334708702], rtol=1e-9)


def test_newton_irls_respects_masks_and_refuses_non_linear_models():
    model = Sequential([{"name": "dense", "out_features": 1, "activation": "sigmoid"}],
                       random_state=20)
    model.build((2,))
    model.parameters()[0].mask = np.array([[1.0, 0.0]])
    res = minimize(model, "bce", np.hstack([X_IRLS[:, 1:], X_IRLS[:, :1]]), Y_IRLS,
                   optimizer="newton_irls")
    assert res.converged and model.parameters()[0].data[0, 1] == 0.0
    np.testing.assert_allclose(model.parameters()[0].data[0, 0], 1.2334708702, rtol=1e-9)
    deep = Sequential([{"name": "dense", "out_features": 2, "activation": "tanh"},
                       {"name": "dense", "out_features": 1, "activation": "sigmoid"}])
    with pytest.raises(ValueError, match="linear model"):
        minimize(deep, "bce", X_IRLS, Y_IRLS, optimizer="newton_irls")
    linear = Sequential([{"name": "dense", "out_features": 1}])
    with pytest.raises(ValueError, match="logistic"):
        minimize(linear, "mse", X_IRLS, Y_IRLS, optimizer="newton_irls")


# ----------------------------------------------------------------------------- TV-OPT-10
def test_tv_opt_10_least_squares():
    X = np.array([[1.0, 1], [1, 2], [1, 3]])
    y = np.array([1.0, 2, 2])
    coef, _ = solve_least_squares(X, y, fit_intercept=False)
    np.testing.assert_allclose(coef, [0.6666666667, 0.5], rtol=1e-9)
    assert np.sum((X @ coef - y) ** 2) == pytest.approx(1 / 6, rel=1e-12)
    coef, _ = solve_least_squares(X, y, fit_intercept=False, l2=1.0)
    np.testing.assert_allclose(coef, [0.375, 0.5833333333], rtol=1e-9)
    coef, _ = solve_least_squares(np.array([[1.0, 2], [2, 4], [3, 6]]), np.array([1.0, 2, 3]),
                                  fit_intercept=False)
    np.testing.assert_allclose(coef, [0.2, 0.4], rtol=1e-9)
    coef, b = solve_least_squares(X[:, 1:], y, l2=1.0)          # intercept column appended
    np.testing.assert_allclose([b, coef[0]], [0.375, 0.5833333333], rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_least_squares_on_a_model_with_mask(dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    W = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, 2.0]])
    Y = X @ W.T + [0.5, -1.0]
    model = Sequential([{"name": "dense", "out_features": 2}], dtype=dtype, random_state=0)
    model.build((3,))
    res = minimize(model, "mse", X.astype(dtype), Y, optimizer="least_squares")
    Wp, bp = model.parameters()
    np.testing.assert_allclose(Wp.data, W, **TOL[dtype])
    np.testing.assert_allclose(bp.data, [0.5, -1.0], **TOL[dtype])
    assert res.converged and res.loss < 1e-10
    Wp.mask = np.array([[1, 1, 1], [1, 0, 1]])                # true W[1,1] = 0 anyway
    res = minimize(model, "mse", X.astype(dtype), Y, optimizer="least_squares")
    np.testing.assert_allclose(Wp.data, W, **TOL[dtype])
    assert Wp.data[1, 1] == 0.0


# ----------------------------------------------------------------------------- LM
def _xor_net(seed=0, dtype=np.float64):
    m = Sequential([{"name": "dense", "out_features": 2, "activation": "tanh"},
                    {"name": "dense", "out_features": 1, "activation": "sigmoid"}],
                   random_state=seed, dtype=dtype)
    m.build((2,))
    return m


def _numeric_jacobian(model, X, eps=1e-6):
    theta = model.get_flat_parameters().copy()
    cols = []
    for j in range(theta.size):
        t = theta.copy()
        t[j] += eps
        model.set_flat_parameters(t)
        a = model.predict(X).reshape(-1)
        t[j] -= 2 * eps
        model.set_flat_parameters(t)
        cols.append((a - model.predict(X).reshape(-1)) / (2 * eps))
    model.set_flat_parameters(theta)
    return np.array(cols).T


def test_jacobian_matches_central_differences_sequential_and_graph():
    X, _ = xor()
    m = _xor_net()
    for p in m.parameters():
        p.grad[...] = 7.0
    J = jacobian(m, X)
    num = _numeric_jacobian(m, X)
    assert np.abs(J - num).max() / (np.abs(J).max() + 1e-8) < 1e-6
    assert all((p.grad == 7.0).all() for p in m.parameters())      # gradients left alone
    g = Graph(inputs="x", outputs="out", random_state=2)
    g.add_node("h", {"name": "dense", "out_features": 3, "activation": "tanh"}, "x")
    g.add_node("skip", {"name": "dense", "out_features": 2}, "x")
    g.add_node("o", {"name": "dense", "out_features": 2}, "h")
    g.add_node("out", "add", ["o", "skip"])
    g.build((2,))
    J = jacobian(g, X)
    assert J.shape == (8, g.n_parameters())
    num = _numeric_jacobian(g, X)
    assert np.abs(J - num).max() / (np.abs(J).max() + 1e-8) < 1e-6


def test_levenberg_marquardt_solves_xor():
    X, y = xor()
    m = _xor_net(seed=0)
    res = minimize(m, "mse", X, y, optimizer="levenberg_marquardt")
    assert res.loss < 1e-8 and res.converged
    assert ((m.predict(X).ravel() > 0.5) == (y > 0.5)).all()


def test_levenberg_marquardt_on_linear_regression_matches_least_squares():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    Y = X @ np.array([[1.0, 2.0, -1.0]]).T + 0.1 * rng.normal(size=(30, 1))
    a = Sequential([{"name": "dense", "out_features": 1}], random_state=0)
    b = Sequential([{"name": "dense", "out_features": 1}], random_state=1)
    minimize(a, "mse", X, Y, optimizer="least_squares")
    res = minimize(b, "mse", X, Y, optimizer="levenberg_marquardt")
    assert res.converged and res.n_iter <= 5
    np.testing.assert_allclose(b.get_flat_parameters(), a.get_flat_parameters(), rtol=1e-8)


def test_levenberg_marquardt_masks_weight_decay_and_state():
    X, y = xor()
    m = _xor_net(seed=1)
    W = m.parameters()[0]
    W.mask = np.array([[1.0, 0.0], [1.0, 1.0]])
    opt = LevenbergMarquardt(weight_decay=1e-3, max_iter=5)
    res = opt.minimize(m, X, y, loss="mse")
    assert W.data[0, 1] == 0.0 and res.n_iter <= 5
    saved = opt.state_dict()
    assert all("lm_damping" in s for s in saved["state"].values())
    with pytest.raises(RuntimeError, match="minimize"):
        opt.step()


# ----------------------------------------------------------------------------- every rule
def _convex_problem():
    """``f(w) = ½ (w − w*)ᵀ H (w − w*)`` with an ill-conditioned SPD H (cond 10)."""
    H = np.array([[3.0, 1.0], [1.0, 2.0]]) * np.array([1.0, 1.0])
    H = H @ np.diag([1.0, 4.0]) @ H.T / 10
    w_star = np.array([1.0, -2.0])
    return H, w_star


@pytest.mark.parametrize("name", GRADIENT_RULES)
def test_every_gradient_rule_converges_on_a_convex_quadratic(name):
    H, w_star = _convex_problem()
    p = Parameter(np.zeros(2))
    opt = corenet.create("optimizer", name, params=[p], **CONVEX[name])
    for _ in range(1500):
        r = p.data - w_star
        p.grad[...] = H @ r
        opt.step(loss=0.5 * r @ H @ r)
    np.testing.assert_allclose(p.data, w_star, atol=2e-3)


def test_registered_under_canonical_names():
    for cls in OPTIMIZERS:
        assert corenet.registry.get("optimizer", cls.name) is cls
    names = set(corenet.registry.names("optimizer"))
    assert set(GRADIENT_RULES) | {"newton_irls", "least_squares",
                                  "levenberg_marquardt"} <= names


BAD = [("sgd", {"lr": -0.1}), ("adam", {"betas": (0.9, 1.0)}), ("adam", {"betas": (-0.1, 0.9)}),
       ("adam", {"betas": 0.9}), ("adam", {"eps": 0.0}), ("adamw", {"eps": -1e-8}),
       ("adagrad", {"eps": 0}), ("adagrad", {"initial_accumulator": -1}),
       ("rmsprop", {"rho": 1.0}), ("rmsprop", {"momentum": -0.1}), ("adadelta", {"rho": 1.5}),
       ("adadelta", {"eps": 0.0}), ("rprop", {"etas": (1.0, 1.2)}),
       ("rprop", {"etas": (0.5, 1.0)}), ("rprop", {"step_sizes": (1.0, 0.1)}),
       ("rprop", {"variant": "rprop"}), ("rprop", {"lr": 0.0}),
       ("quickprop", {"mu": 0.0}), ("quickprop", {"mode": "newton"}),
       ("quickprop", {"max_step": -1.0}), ("quickprop", {"decay": -1e-4}),
       ("delta_delta", {"lr_min": -0.1}), ("delta_delta", {"lr_max": -1.0}),
       ("delta_delta", {"meta_lr": float("nan")}), ("delta_bar_delta", {"phi": 1.0}),
       ("delta_bar_delta", {"theta": 0.0}), ("delta_bar_delta", {"kappa": 0.0}),
       ("newton_irls", {"max_iter": 0}), ("newton_irls", {"l2": -1.0}),
       ("newton_irls", {"weight_decay": 0.1}), ("least_squares", {"l2": -0.5}),
       ("levenberg_marquardt", {"mu": 0.0}), ("levenberg_marquardt", {"mu_factor": 1.0}),
       ("levenberg_marquardt", {"decoupled_weight_decay": 0.1}),
       ("adam", {"amsgrad": "yes"}), ("adam", {"momentum": 0.9})]


@pytest.mark.parametrize("name,kw", BAD)
def test_bad_hyperparameters_raise_at_construction(name, kw):
    with pytest.raises(HyperparameterError, match=name):
        corenet.create("optimizer", name, **kw)
    if kw.get("lr") is None and "betas" not in kw:       # and in a parameter group
        p = Parameter(np.zeros(1))
        with pytest.raises(HyperparameterError):
            corenet.create("optimizer", name, params=[{"params": [p], **kw}])


def _random_steps(name, kw, grads, state=None, start=0, dtype=np.float64):
    w = Parameter(np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3))
    b = Parameter(np.linspace(0.5, 1, 3, dtype=dtype), role="bias")
    w.mask = np.array([[1, 0, 1], [1, 1, 0]])
    opt = corenet.create("optimizer", name,
                         params=[{"params": [w]}, {"params": [b], "lr": kw.get("lr", 0.01) / 2}],
                         **kw)
    if state is not None:
        w.data[...], b.data[...] = state["data"]
        opt.load_state_dict(state["opt"])
    for i in range(start, len(grads)):
        w.grad[...], b.grad[...] = grads[i][:6].reshape(2, 3), grads[i][6:]
        loss = float(np.sum(grads[i] ** 2))
        opt.step(loss=loss)
    return w, b, opt


RESUME = [("gd", {}), ("sgd", {"momentum": 0.9, "nesterov": True}),
          ("delta_delta", {"meta_lr": 0.1}), ("delta_bar_delta", {"momentum": 0.3}),
          ("adagrad", {}), ("rmsprop", {"centered": True, "momentum": 0.5}),
          ("adadelta", {}), ("adam", {"amsgrad": True}), ("adamw", {}),
          ("quickprop", {}), ("quickprop", {"mode": "secant"}),
          ("rprop", {"variant": "rprop+"}), ("rprop", {"variant": "rprop-"}),
          ("rprop", {"variant": "irprop+"}), ("rprop", {"variant": "irprop-"})]


@pytest.mark.parametrize("name,kw", RESUME)
def test_state_dict_resume_is_bit_identical_and_masks_hold(name, kw):
    rng = np.random.default_rng(5)
    grads = rng.normal(size=(12, 9))
    w1, b1, _ = _random_steps(name, kw, grads)
    w2, b2, opt2 = _random_steps(name, kw, grads[:5])
    saved = opt2.state_dict()
    # a checkpoint stores groups as JSON (tuples become lists) and state as arrays/scalars
    saved["param_groups"] = json.loads(json.dumps(saved["param_groups"]))
    state = {"data": (w2.data.copy(), b2.data.copy()), "opt": saved}
    w3, b3, opt3 = _random_steps(name, kw, grads, state=state, start=5)
    assert np.array_equal(w1.data, w3.data) and np.array_equal(b1.data, b3.data)
    mask = w3.mask == 0
    assert (w3.data[mask] == 0).all()
    for key, value in opt3.state[w3].items():
        if isinstance(value, np.ndarray):
            assert (value[mask] == 0).all(), key
    assert not np.array_equal(b3.data, np.linspace(0.5, 1, 3))


@pytest.mark.parametrize("name,kw", RESUME)
def test_float32_parameters_and_state_stay_float32(name, kw):
    grads = np.random.default_rng(6).normal(size=(4, 9)).astype(np.float32)
    w, b, opt = _random_steps(name, kw, grads, dtype=np.float32)
    for p in (w, b):
        assert p.data.dtype == np.float32 and np.isfinite(p.data).all()
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_groups_have_their_own_hyperparameters():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.0, "betas": (0.5, 0.9)}])
    a.grad[...] = b.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(a.data, 0.9, rtol=1e-6)
    assert (b.data == 1.0).all()
    assert opt.param_groups[1]["betas"] == (0.5, 0.9)


def test_growth_gives_fresh_state():
    cases = [(Rprop, {"lr": 0.07}, "step_size", 0.07), (DeltaDelta, {"lr": 0.03}, "lrs", 0.03),
             (DeltaBarDelta, {"lr": 0.02}, "lrs", 0.02),
             (AdaGrad, {"initial_accumulator": 0.5}, "sum", 0.5),
             (Quickprop, {}, "prev_step", 0.0), (Adam, {}, "exp_avg", 0.0)]
    for cls, kw, key, fresh in cases:
        p = Parameter(np.ones((2, 2)))
        opt = cls([p], **kw)
        for _ in range(3):
            p.grad[...] = [[1.0, -2.0], [0.5, 3.0]]
            opt.step()
        old = opt.state[p][key].copy()
        opt.state_resize(p, (3, 2), (slice(0, 2), slice(None)))
        grown = opt.state[p][key]
        assert grown.shape == (3, 2)
        np.testing.assert_array_equal(grown[:2], old)
        np.testing.assert_array_equal(grown[2], fresh)


def test_zero_state_on_pruning_and_step_counter():
    p = Parameter(np.ones(3))
    opt = Adam([p])
    p.grad[...] = 1.0
    opt.step()
    assert opt.state[p]["step"] == 1                 # t = 1 at the first update (D-57)
    opt.zero_state(p, np.array([1.0, 0.0, 1.0]))
    assert opt.state[p]["exp_avg"][1] == 0.0 and opt.state[p]["exp_avg_sq"][1] == 0.0


def test_data_solvers_refuse_step_and_minimize_refuses_gradient_rules():
    for cls in (NewtonIRLS, LeastSquares, LevenbergMarquardt):
        opt = cls([Parameter(np.zeros(1))])
        with pytest.raises(RuntimeError, match="minimize"):
            opt.step()
        assert opt.needs_data
    with pytest.raises(ValueError, match="gradient method"):
        minimize(_logistic_model(), "bce", X_IRLS[:, 1:], Y_IRLS, optimizer="adam")


@pytest.mark.parametrize("name", [n for n in GRADIENT_RULES])
def test_every_gradient_rule_trains_through_model_fit(name):
    X, y = xor()
    m = _xor_net(seed=3)
    m.compile(loss="mse", optimizer={"name": name, **CONVEX[name]})
    hist = m.fit(X, y, epochs=30, batch_size=4, shuffle=False)
    assert np.isfinite(hist["loss"]).all()
    assert hist["loss"][-1] < hist["loss"][0]
