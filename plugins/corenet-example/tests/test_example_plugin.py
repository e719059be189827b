"""Tests of the corenet-example plugin (run after ``pip install ./plugins/corenet-example``).

Gradient checks: central differences in float64, step 1e-6, relative error
``|a − n| / max(1e-8, |a| + |n|) <= 1e-6`` element-wise.
"""
import math
from importlib import metadata

import numpy as np
import pytest

import corenet
from corenet.errors import HyperparameterError, ShapeError
from corenet_example import EpochCounter, LogCosh, ScaleShift, SignSGD

STEP = 1e-6
TOL = 1e-6


@pytest.fixture(autouse=True)
def fresh_plugins():
    corenet.plugins.reset()
    yield
    corenet.plugins.reset()


def numeric_grad(f, x):
    """Central differences of the scalar function ``f`` with respect to array ``x``."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + STEP
        up = f()
        flat[i] = old - STEP
        down = f()
        flat[i] = old
        out[i] = (up - down) / (2 * STEP)
    return grad


def assert_grad_close(analytic, numeric):
    rel = np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))
    assert rel.max() <= TOL, f"max relative error {rel.max():.3g}"


# ------------------------------------------------------------------------------ discovery
@pytest.mark.parametrize("category, name, cls", [
    ("layer", "scale_shift", ScaleShift), ("loss", "log_cosh", LogCosh),
    ("optimizer", "sign_sgd", SignSGD), ("callback", "epoch_counter", EpochCounter)])
def test_discovered_through_the_entry_point(category, name, cls):
    entry = corenet.registry.entry(category, name)
    assert entry.cls is cls
    assert entry.plugin == "corenet_example"
    assert entry.distribution == "corenet-example"
    assert entry.version == metadata.version("corenet-example")


def test_blocked_by_distribution_name(monkeypatch):
    monkeypatch.setenv("CORENET_BLOCK_PLUGINS", "corenet-example")
    corenet.plugins.reset()
    assert "scale_shift" not in corenet.registry.names("layer")


# ------------------------------------------------------------------------------ contract kit
@pytest.mark.parametrize("category, name", [
    ("layer", "scale_shift"), ("loss", "log_cosh"), ("optimizer", "sign_sgd")])
def test_contract(category, name):
    """corenet.testing runs the standard contract on every ``examples()`` case."""
    import corenet.testing as ct

    reports = ct.check_registered(category, name)
    assert len(reports) == len(corenet.registry.get(category, name).examples())


# ------------------------------------------------------------------------------ scale_shift
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 2), (3, 2, 5)])
def test_scale_shift_forward_matches_per_channel_loop(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    layer = ScaleShift()
    layer.build(shape[1:], np.float64, rng)
    layer.gamma.data[:] = rng.normal(size=shape[1])
    layer.beta.data[:] = rng.normal(size=shape[1])
    y = layer.forward(x)
    expected = np.empty_like(x)
    for c in range(shape[1]):
        expected[:, c] = x[:, c] * layer.gamma.data[c] + layer.beta.data[c]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=0)
    assert layer.output_shape(shape[1:]) == shape[1:]


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 2)])
def test_scale_shift_gradients(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)
    weights = rng.normal(size=shape)  # L = Σ weights · y
    layer = ScaleShift()
    layer.build(shape[1:], np.float64, rng)
    layer.gamma.data[:] = rng.normal(size=shape[1])
    layer.beta.data[:] = rng.normal(size=shape[1])

    def loss():
        return float(np.sum(weights * layer.forward(x)))

    layer.forward(x)
    dx = layer.backward(weights)
    assert_grad_close(dx, numeric_grad(loss, x))
    assert_grad_close(layer.gamma.grad, numeric_grad(loss, layer.gamma.data))
    assert_grad_close(layer.beta.grad, numeric_grad(loss, layer.beta.data))


def test_scale_shift_accumulates_and_respects_frozen():
    x = np.arange(6.0).reshape(2, 3)
    layer = ScaleShift(gamma_init=2.0, beta_init=1.0)
    layer.forward(x)
    layer.backward(np.ones_like(x))
    layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(layer.beta.grad, [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(layer.gamma.grad, 2 * x.sum(axis=0))
    frozen = ScaleShift(trainable=False)
    frozen.forward(x)
    np.testing.assert_array_equal(frozen.backward(np.ones_like(x)), np.ones_like(x))
    assert not frozen.gamma.grad.any() and not frozen.beta.grad.any()


def test_scale_shift_float32_config_and_errors():
    layer = ScaleShift(gamma_init=0.5)
    y = layer.forward(np.ones((2, 4), dtype=np.float32))
    assert y.dtype == np.float32 and layer.gamma.dtype == np.float32
    np.testing.assert_array_equal(y, np.full((2, 4), 0.5, dtype=np.float32))
    assert ScaleShift.from_config(layer.get_config()).get_config() == layer.get_config()
    assert [p.decay for p in layer.parameters()] == [False, False]
    with pytest.raises(ShapeError, match="scale_shift.*output gradient of shape"):
        layer.backward(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match="scale_shift"):
        ScaleShift().forward(np.ones(3))


# ------------------------------------------------------------------------------ log_cosh
def test_log_cosh_value_matches_naive_formula():
    rng = np.random.default_rng(2)
    y_pred, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    naive = np.log(np.cosh(y_pred - y)).mean(axis=1)
    np.testing.assert_allclose(LogCosh(reduction="none").value(y_pred, y), naive,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(LogCosh().value(y_pred, y), naive.mean(), rtol=1e-12)
    np.testing.assert_allclose(LogCosh(reduction="sum").value(y_pred, y), naive.sum(),
                               rtol=1e-12)


def test_log_cosh_is_stable_for_large_and_tiny_residuals():
    loss = LogCosh(reduction="none")
    values = loss.value(np.array([[1000.0, -800.0]]), np.zeros((1, 2)))
    np.testing.assert_allclose(values, [(1000 + 800) / 2 - math.log(2)], rtol=1e-15)
    r = 1e-8
    np.testing.assert_allclose(loss.value(np.array([r]), np.zeros(1)), [r * r / 2], rtol=1e-12)
    np.testing.assert_allclose(LogCosh(reduction="sum").grad(np.array([[1000.0, -800.0]]),
                                                             np.zeros((1, 2))), [[0.5, -0.5]])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_log_cosh_gradient(reduction):
    rng = np.random.default_rng(3)
    y_pred, y = rng.normal(scale=2.0, size=(5, 4)), rng.normal(size=(5, 4))
    loss = LogCosh(reduction=reduction)
    grad = loss.grad(y_pred, y)
    assert_grad_close(grad, numeric_grad(lambda: loss.value(y_pred, y), y_pred))
    k = y_pred.shape[1]
    scale = 1.0 / y_pred.shape[0] if reduction == "mean" else 1.0
    np.testing.assert_allclose(grad, scale * np.tanh(y_pred - y) / k, rtol=1e-12)


def test_log_cosh_output_hessian():
    rng = np.random.default_rng(4)
    y_pred, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    loss = LogCosh()
    hess = loss.hess_output(y_pred, y)
    assert hess.shape == (3, 4, 4)
    for n in range(3):
        for k in range(4):
            row = numeric_grad(lambda: float(loss.per_sample_grad(y_pred[n:n + 1],
                                                                  y[n:n + 1])[0, k]),
                               y_pred[n:n + 1])
            np.testing.assert_allclose(hess[n, k], row[0], rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------ sign_sgd
def test_sign_sgd_step():
    p = corenet.Parameter(np.array([0.5, -1.0, 2.0, 3.0]))
    p.grad[:] = [0.3, 0.0, -5.0, 1e-12]
    opt = SignSGD([p], lr=0.1)
    opt.step()
    np.testing.assert_allclose(p.data, [0.4, -1.0, 2.1, 2.9], rtol=1e-15)


def test_signum_momentum_by_hand():
    p = corenet.Parameter(np.array([0.0, 0.0]))
    opt = SignSGD([p], lr=0.5, momentum=0.9)
    p.grad[:] = [1.0, -1.0]
    opt.step()                      # m = (0.1, -0.1)  -> θ = (-0.5, 0.5)
    p.grad[:] = [-0.5, -2.0]
    opt.step()                      # m = (0.09 - 0.05, -0.09 - 0.2) = (0.04, -0.29)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [0.04, -0.29], rtol=1e-12)
    np.testing.assert_allclose(p.data, [-1.0, 1.0], rtol=1e-15)
    p.grad[:] = [-1.0, 0.0]
    opt.step()                      # m = (0.036 - 0.1, -0.261) -> sign (-1, -1)
    np.testing.assert_allclose(p.data, [-0.5, 1.5], rtol=1e-15)


def test_sign_sgd_respects_masks_and_validates():
    p = corenet.Parameter(np.array([1.0, 2.0, 3.0]))
    p.mask = np.array([1, 0, 1])
    p.grad[:] = [1.0, 1.0, -1.0]
    SignSGD([p], lr=0.25).step()
    np.testing.assert_array_equal(p.data, [0.75, 0.0, 3.25])
    for bad in ({"lr": -1.0}, {"momentum": 1.0}, {"momentum": -0.1}):
        with pytest.raises(HyperparameterError, match="sign_sgd"):
            SignSGD(**bad)
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        SignSGD(beta=0.9)


# ------------------------------------------------------------------------------ in training
def regression_data(n=64, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([[1.5], [-2.0], [0.5]]) + 0.3


def make_model():
    dense = corenet.registry.get("layer", "dense")
    model = corenet.Sequential([corenet.registry.get("layer", "scale_shift")(),
                                dense(out_features=1)], random_state=0)
    model.compile(loss="log_cosh", optimizer={"name": "sign_sgd", "lr": 0.01})
    return model


def test_epoch_counter_fires_during_fit_and_is_unregistered_after():
    X, y = regression_data()
    counter = EpochCounter()
    history = make_model().fit(X, y, epochs=4, batch_size=16, callbacks=[counter],
                               random_state=0)
    assert counter.epochs == 4 and counter.batches == 4 * 4
    assert [h["epoch"] for h in counter.history] == [0, 1, 2, 3]
    assert [h["loss"] for h in counter.history] == [e["loss"] for e in history.epochs]
    assert not corenet.plugins.get_plugin_manager().is_registered(counter)


def test_epoch_counter_stops_training_and_trains_the_plugin_model():
    X, y = regression_data()
    model = make_model()
    history = model.fit(X, y, epochs=50, batch_size=16, random_state=0,
                        callbacks=[{"name": "epoch_counter", "stop_after": 30}])
    losses = [e["loss"] for e in history.epochs]
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(HyperparameterError, match="epoch_counter"):
        EpochCounter(stop_after=0)


# ------------------------------------------------------------------------------ second order
def curvature_model(shape):
    rng = np.random.default_rng(6)
    layers = [ScaleShift(), corenet.registry.get("layer", "flatten")(),
              corenet.registry.get("layer", "dense")(out_features=3, activation="tanh"),
              corenet.registry.get("layer", "dense")(out_features=2)]
    model = corenet.Sequential(layers, random_state=0)
    model.build(shape[1:])
    layers[0].gamma.data[:] = rng.normal(size=shape[1])
    layers[0].beta.data[:] = rng.normal(size=shape[1])
    return model, rng.normal(size=shape), rng.normal(size=(shape[0], 2))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
def test_scale_shift_hessian_vector_products(shape):
    from corenet import curvature

    model, X, y = curvature_model(shape)
    v = np.random.default_rng(7).normal(size=model.n_parameters())
    exact = curvature.hvp(model, "log_cosh", X, y, v)
    fd = curvature.hvp(model, "log_cosh", X, y, v, method="finite_difference")
    np.testing.assert_allclose(exact, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 2)])
def test_scale_shift_gauss_newton_diagonal(shape):
    """Two stacked scale_shift layers under log_cosh (diagonal output Hessian): each
    parameter reaches only its own channel, so the diagonal pass is exact and must equal
    the diagonal of the Gauss-Newton matrix built from R-forward products."""
    from corenet import curvature

    rng = np.random.default_rng(8)
    model = corenet.Sequential([ScaleShift(), ScaleShift()], random_state=0)
    model.build(shape[1:])
    for p in model.parameters():
        p.data[:] = rng.normal(size=p.shape)
    X, y = rng.normal(size=shape), rng.normal(size=shape)
    n = model.n_parameters()
    gn = np.array([curvature.gauss_newton_vector(model, "log_cosh", X, y, e)
                   for e in np.eye(n)])
    diag = curvature.hessian_diag(model, "log_cosh", X, y, method="gauss_newton_diag")
    np.testing.assert_allclose(diag, gn.diagonal(), rtol=1e-10, atol=1e-14)
