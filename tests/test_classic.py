"""Classical learners (networks.md §5, optimizers.md §12, D-14, D-16, D-25; TV-MLP-06,
TV-OPT-09, TV-OPT-10)."""
import numpy as np
import pytest

import corenet
from corenet import Sequential, registry
from corenet import curvature
from corenet import testing as ct
from corenet.classic import (LinearRegression, LogisticRegression, Perceptron,
                             SoftmaxRegression, perceptron_fit)
from corenet.errors import DTypeError, HyperparameterError, ShapeError

V = dict(rtol=1e-9, atol=1e-10)
AND_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
AND_Y = np.array([-1, -1, -1, 1])
XOR_Y = np.array([-1, 1, 1, -1])
TV_MLP_06 = [([1, 1, 0], 2), ([2, 1, -1], 3), ([2, 1, -2], 3), ([2, 2, -2], 2), ([3, 2, -2], 2),
             ([3, 2, -3], 3), ([3, 3, -3], 2), ([3, 2, -4], 1), ([3, 2, -4], 0)]
# TV-OPT-09 (intercept first in the vectors; corenet's flat θ is [w, b])
LOGIT_X = np.array([[0.5], [1.5], [-1.0], [2.5], [0.0], [1.0]])
LOGIT_Y = np.array([0, 1, 0, 1, 1, 0])
IRLS_PATH = [[-0.7118644068, 0.9491525424], [-0.8978161282, 1.197088171],
             [-0.9245938444, 1.2327917925], [-0.9251029722, 1.2334706296],
             [-0.9251031527, 1.2334708702]]
IRLS_RIDGE_PATH = [[-0.3491852345, 0.6518124376], [-0.3611448551, 0.7011878922],
                   [-0.3611952722, 0.7019372756]]
IRLS_RIDGE_LIMIT = [-0.3611952683, 0.701937468]


# ----------------------------------------------------------------------------- perceptron
def test_perceptron_rule_tv_mlp_06():
    res = perceptron_fit(AND_X, AND_Y)
    assert res.converged and res.n_epochs == 9
    for (w, mistakes), got_w, got_m in zip(TV_MLP_06, res.weights, res.mistakes):
        np.testing.assert_array_equal(got_w, w)
        assert got_m == mistakes
    w, converged = res                                     # unpacks as (w, converged)
    np.testing.assert_array_equal(w, [3, 2, -4])
    assert converged and res.errors == 0


def test_perceptron_rule_xor_never_converges():
    res = perceptron_fit(AND_X, XOR_Y, max_epochs=25)
    assert not res.converged and res.n_epochs == 25 and set(res.mistakes) == {4}


def test_perceptron_one_update_increases_margin_by_lr_norm2():
    x, y = np.array([[2.0, -1.0]]), np.array([1])
    res = perceptron_fit(x, y, lr=0.5, max_epochs=1, fit_intercept=False)
    assert res.weights[0] @ x[0] * y[0] == pytest.approx(0.5 * (x[0] @ x[0]))


def test_perceptron_batch_mode_and_shuffle():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = np.where(X @ [1.0, -2.0, 0.5] + 0.3 >= 0, 1, -1)
    res = perceptron_fit(X, y, mode="batch", lr=0.1, max_epochs=5)
    A = np.hstack([X, np.ones((40, 1))])
    w = np.zeros(4)
    for got in res.weights:                        # w ← w + lr Σ_{mistakes} y_n x_n
        wrong = y * (A @ w) <= 0
        w = w + 0.1 * (y[wrong] @ A[wrong])
        np.testing.assert_allclose(got, w, **V)
    a, b = perceptron_fit(X, y, shuffle=True, rng=3), perceptron_fit(X, y, shuffle=True, rng=3)
    assert a.converged and np.array_equal(a.w, b.w)
    assert np.all(np.where(A @ a.w >= 0, 1, -1) == y)


def test_pocket_keeps_the_best_weights():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2))
    y = np.where(X[:, 0] + X[:, 1] >= 0, 1, -1)
    y[:6] *= -1                                    # label noise: not separable
    plain = perceptron_fit(X, y, max_epochs=30)
    pocket = perceptron_fit(X, y, max_epochs=30, pocket=True)
    A = np.hstack([X, np.ones((60, 1))])

    def errors(w):
        return int(np.sum(np.where(A @ w >= 0, 1, -1) != y))
    assert not pocket.converged
    assert pocket.errors == errors(pocket.w) <= min(errors(w) for w in pocket.weights)
    assert pocket.errors < errors(plain.w)
    np.testing.assert_array_equal(pocket.w_last, plain.w)
    separable = perceptron_fit(AND_X, AND_Y, pocket=True)
    np.testing.assert_array_equal(separable.w, [3, 2, -4])


def test_perceptron_fit_errors():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        perceptron_fit(AND_X, [0, 0, 0, 1])
    with pytest.raises(ShapeError):
        perceptron_fit(AND_X, [1, -1])
    with pytest.raises(HyperparameterError, match="mode"):
        perceptron_fit(AND_X, AND_Y, mode="minibatch")
    with pytest.raises(HyperparameterError, match="lr"):
        perceptron_fit(AND_X, AND_Y, lr=0)
    with pytest.raises(DTypeError):
        perceptron_fit(np.array([["a", "b"]]), [1])


@pytest.mark.parametrize("solver", ["perceptron", "pocket"])
def test_perceptron_model(solver):
    model = Perceptron()
    res = model.fit(AND_X, AND_Y, solver=solver)
    assert res.converged and model.result_ is res
    np.testing.assert_array_equal(model.coef_, [3, 2])
    assert model.intercept_ == -4
    np.testing.assert_array_equal(model.predict_classes(AND_X), AND_Y)
    # prediction rule +1 for f >= 0 (D-14): a point on the boundary is +1
    assert model.predict_classes(np.array([[0.0, 2.0]]))[0] == 1


def test_perceptron_sgd_on_criterion_reproduces_the_rule():
    model = Perceptron()
    model.fit(AND_X, AND_Y, solver="sgd", batch_size=1, epochs=9, shuffle=False)
    np.testing.assert_array_equal(model.coef_, [3, 2])
    assert model.intercept_ == -4


# ----------------------------------------------------------------------------- logistic
def test_logistic_irls_tv_opt_09():
    model = LogisticRegression()
    res = model.fit(LOGIT_X, LOGIT_Y)
    assert res.converged
    for got, want in zip(res.path, IRLS_PATH):
        np.testing.assert_allclose(got[::-1], want, rtol=1e-9, atol=1e-9)
    assert res.loss == pytest.approx(0.5369313659146221, rel=1e-12)
    assert model.evaluate(LOGIT_X, LOGIT_Y)["loss"] == pytest.approx(0.5369313659146221,
                                                                     rel=1e-12)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], IRLS_PATH[-1], atol=1e-9)


def test_logistic_irls_ridge_tv_opt_09():
    model = LogisticRegression(l2=0.1)
    res = model.fit(LOGIT_X, LOGIT_Y, solver="newton")
    for got, want in zip(res.path, IRLS_RIDGE_PATH):
        np.testing.assert_allclose(got[::-1], want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], IRLS_RIDGE_LIMIT, atol=1e-9)
    assert res.loss == pytest.approx(0.5945364536455615, rel=1e-12)


@pytest.mark.parametrize("l2, limit", [(0.0, IRLS_PATH[-1]), (0.1, IRLS_RIDGE_LIMIT)])
def test_logistic_gradient_descent_reaches_the_irls_point(l2, limit):
    model = LogisticRegression(l2=l2)
    model.fit(LOGIT_X, LOGIT_Y, solver="gd", lr=1.0, momentum=0.9, epochs=1500)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], limit, atol=1e-8)


def test_logistic_hessian_is_xtrx_d16():
    model = LogisticRegression()
    model.fit(LOGIT_X, LOGIT_Y)
    H = curvature.hessian(model, model.loss, LOGIT_X, LOGIT_Y)
    A = np.hstack([LOGIT_X, np.ones((6, 1))])               # θ = [w, b]
    a = model.predict(LOGIT_X)[:, 0]
    np.testing.assert_allclose(H, A.T @ (A * (a * (1 - a))[:, None]) / 6, **V)
    assert np.linalg.eigvalsh(H).min() > 0


def test_logistic_separable_data_does_not_converge():
    res = LogisticRegression(max_iter=30).fit(np.array([[-1.0], [-0.5], [0.5], [1.0]]),
                                              np.array([0, 0, 1, 1]))
    assert not res.converged


# ----------------------------------------------------------------------------- least squares
def test_linear_regression_tv_opt_10():
    X, y = np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 2.0])
    model = LinearRegression()
    model.fit(X, y)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], [2 / 3, 0.5], **V)
    residual = model.predict(X)[:, 0] - y
    assert residual @ residual == pytest.approx(1 / 6, rel=1e-12)
    ridge = LinearRegression(l2=1.0)
    ridge.fit(X, y)
    np.testing.assert_allclose([ridge.intercept_, ridge.coef_[0]], [0.375, 0.5833333333],
                               rtol=1e-9)
    rank_def = LinearRegression(fit_intercept=False)
    rank_def.fit(np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(rank_def.coef_, [0.2, 0.4], **V)
    assert rank_def.intercept_ is None


def test_linear_regression_matches_lstsq_multi_output():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    model = LinearRegression(3)
    model.fit(X, Y)
    A = np.hstack([X, np.ones((30, 1))])
    sol = np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, sol[:4].T, **V)
    np.testing.assert_allclose(model.intercept_, sol[4], **V)


@pytest.mark.parametrize("l2", [0.0, 2.0])
def test_linear_regression_gd_reaches_closed_form(l2):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.2 + 0.1 * rng.standard_normal(25)
    closed, gd = LinearRegression(l2=l2), LinearRegression(l2=l2)
    closed.fit(X, y)
    history = gd.fit(X, y, solver="gd", lr=0.5, epochs=400)
    assert len(history) == 400
    np.testing.assert_allclose(gd.coef_, closed.coef_, atol=1e-9)
    assert gd.intercept_ == pytest.approx(closed.intercept_, abs=1e-9)
    sgd = LinearRegression(l2=l2)
    sgd.fit(X, y, solver="sgd", lr=0.05, epochs=60, batch_size=5)
    np.testing.assert_allclose(sgd.coef_, closed.coef_, atol=0.05)


# ----------------------------------------------------------------------------- softmax
def _three_classes(seed=0, n=60):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 1.0], [1.0, -0.5], [-1.0, -0.5]])
    labels = rng.integers(0, 3, n)
    return centres[labels] + 0.9 * rng.standard_normal((n, 2)), labels


def test_softmax_newton_reaches_a_stationary_point():
    X, labels = _three_classes()
    model = SoftmaxRegression(3)
    res = model.fit(X, labels)
    assert res.converged
    _, grad = curvature.loss_gradient(model, model.loss, X, labels)
    assert np.abs(grad).max() < 1e-9
    np.testing.assert_array_equal(model.coef_[2], 0)        # l2 = 0: last class held
    gd = SoftmaxRegression(3)
    gd.fit(X, labels, solver="gd", lr=1.0, momentum=0.9, epochs=600)
    np.testing.assert_allclose(gd.predict(X), model.predict(X), atol=1e-6)


def test_softmax_ridge_newton_equals_gradient_descent():
    X, labels = _three_classes(1)
    newton, gd = SoftmaxRegression(3, l2=0.05), SoftmaxRegression(3, l2=0.05)
    newton.fit(X, labels, solver="irls")
    gd.fit(X, labels, solver="gd", lr=1.0, momentum=0.9, epochs=500)
    np.testing.assert_allclose(gd.coef_, newton.coef_, atol=1e-8)
    np.testing.assert_allclose(gd.intercept_, newton.intercept_, atol=1e-8)


def test_softmax_hessian_psd_and_singular_d25():
    X, labels = _three_classes(2, n=20)
    model = SoftmaxRegression(3, l2=0.1)
    model.fit(X, labels)
    H = curvature.hessian(model, model.loss, X, labels)
    eig = np.linalg.eigvalsh(H)
    assert eig.min() > -1e-12 and np.sum(np.abs(eig) < 1e-10) == 3   # shift invariance
    # D-25: per sample (diag(p) − ppᵀ) ⊗ x̃x̃ᵀ, θ ordered [W (K, D) raveled, b (K)]
    P = model.predict(X)
    A = np.hstack([X, np.ones((20, 1))])
    block = sum(np.kron(np.diag(p) - np.outer(p, p), np.outer(a, a)) for p, a in zip(P, A)) / 20
    perm = [k * 3 + j for k in range(3) for j in range(2)] + [k * 3 + 2 for k in range(3)]
    np.testing.assert_allclose(H, block[np.ix_(perm, perm)], atol=1e-12)


# ----------------------------------------------------------------------------- as models
@pytest.mark.parametrize("make, X, y", [
    (lambda: LinearRegression(), LOGIT_X, np.arange(6.0)),
    (lambda: LogisticRegression(), LOGIT_X, LOGIT_Y),
    (lambda: SoftmaxRegression(3), *_three_classes(n=12)),
    (lambda: Perceptron(), AND_X, AND_Y)])
def test_classic_models_are_corenet_models(make, X, y, tmp_path):
    model = make()
    model.fit(X, y)
    assert isinstance(model, Sequential) and "dense" in model.summary()
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = corenet.load(path)                  # a plain Sequential with the same layers
    assert type(loaded) is Sequential
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    clone = type(model).from_config(model.get_config())
    assert type(clone) is type(model) and clone.get_config() == model.get_config()
    assert np.isfinite(model.evaluate(X, y)["loss"])
    ct.check_gradients(model, model.loss, X, y).assert_ok()


def test_float32_models():
    X, labels = _three_classes(3, n=30)
    m64, m32 = SoftmaxRegression(3, l2=0.1), SoftmaxRegression(3, l2=0.1, dtype="float32")
    m64.fit(X, labels)
    m32.fit(X.astype(np.float32), labels)
    assert m32.predict(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(m32.predict(X.astype(np.float32)), m64.predict(X),
                               rtol=1e-5, atol=1e-6)
    lin = LinearRegression(dtype="float32", input_dim=2)
    lin.fit(X.astype(np.float32), X[:, 0] - X[:, 1])
    np.testing.assert_allclose(lin.coef_, [1, -1], atol=1e-5)


def test_classic_model_errors():
    with pytest.raises(HyperparameterError, match="unknown solver 'irls'"):
        LinearRegression().fit(LOGIT_X, np.arange(6.0), solver="irls")
    with pytest.raises(HyperparameterError, match="n_classes"):
        SoftmaxRegression(1)
    with pytest.raises(HyperparameterError, match="l2"):
        LogisticRegression(l2=-1)
    with pytest.raises(HyperparameterError, match="closed_form solver takes no options"):
        LinearRegression().fit(LOGIT_X, np.arange(6.0), max_iter=3)
    with pytest.raises(RuntimeError, match="fit"):
        LinearRegression().coef_
    with pytest.raises(ValueError):
        LogisticRegression().fit(LOGIT_X, np.arange(6))         # labels must be 0/1
    assert registry.get("optimizer", "newton_irls")


def test_solver_options_are_checked():
    with pytest.raises(HyperparameterError, match="epochs"):
        Perceptron().fit(AND_X, AND_Y, epochs=3)
    with pytest.raises(HyperparameterError, match="batch_size"):
        LogisticRegression().fit(LOGIT_X, LOGIT_Y, batch_size=2)
    with pytest.raises(TypeError):
        LogisticRegression().fit(LOGIT_X, LOGIT_Y, max_epochs=2)
    res = Perceptron().fit(AND_X, AND_Y, max_epochs=3)
    assert not res.converged and res.n_epochs == 3
    res = LogisticRegression().fit(LOGIT_X, LOGIT_Y, max_iter=2)
    assert not res.converged and res.n_iter == 2
