"""Worked networks of test_vectors.md §3-4 (TV-MLP-01..08, TV-HESS-01 loss/gradient)."""
import numpy as np
import pytest

import corenet
import corenet.testing

from corenet import Sequential
from corenet.layers.core import ActivationLayer, Dense


def dense(W, b=None, activation=None):
    W = np.asarray(W, dtype=np.float64)
    layer = Dense(W.shape[0], W.shape[1], bias=b is not None, activation=activation)
    layer.build((W.shape[1],), np.float64)
    layer.W.data[...] = W
    if b is not None:
        layer.b.data[...] = b
    return layer


def test_tv_mlp_01_xor_relu_network():
    X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
    model = Sequential([dense([[1, 1], [1, 1]], [0, -1]), ActivationLayer("relu"),
                        dense([[1, -2]])])
    np.testing.assert_array_equal(model.predict(X).ravel(), [0, 1, 1, 0])


def test_tv_mlp_01_linear_least_squares_cannot_fit_xor():
    X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.float64)
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(w, [1 / 3, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(((X @ w - y) ** 2).sum(), 4 / 3, rtol=1e-12)


def test_tv_mlp_02_xor_bipolar():
    X = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float64)
    hidden = dense([[-0.5, -0.5], [-0.5, -0.5]], [1, 0])
    model = Sequential([hidden, ActivationLayer("relu"), dense([[2, -4]], [-1])])
    np.testing.assert_array_equal(model.predict(X).ravel(), [-1, -1, 1, 1])
    model.forward(X)
    np.testing.assert_array_equal(hidden._x @ hidden.W.data.T + hidden.b.data,
                                  [[0, -1], [2, 1], [1, 0], [1, 0]])


@pytest.mark.parametrize("output", ["relu", "identity"])
def test_tv_mlp_03_two_sgd_iterations(output):
    l1 = dense([[1, -1], [0, 1]], [1, 0], activation="relu")
    l2 = dense([[1, -1], [0, 1]], [1, 0], activation=output)
    model = Sequential([l1, l2])
    model.compile(loss={"name": "sse", "half": True}, optimizer={"name": "sgd", "lr": 1.0})
    x, y = np.array([[1.0, -1.0]]), np.array([[1.0, 0.0]])
    h = model.fit(x, y, epochs=1, batch_size=1, shuffle=False)
    assert h.batch_losses[0] == 4.5
    np.testing.assert_array_equal(l1.W.data, [[-2, 2], [0, 1]])
    np.testing.assert_array_equal(l1.b.data, [-2, 0])
    np.testing.assert_array_equal(l2.W.data, [[-8, -1], [0, 1]])
    np.testing.assert_array_equal(l2.b.data, [-2, 0])
    before = [p.data.copy() for p in model.parameters()]
    h = model.fit(x, y, epochs=1, batch_size=1, shuffle=False)
    if output == "relu":
        assert h.batch_losses[-1] == 0.5
        for p, old in zip(model.parameters(), before):
            np.testing.assert_array_equal(p.data, old)  # dead ReLUs: training stalls
    else:
        assert h.batch_losses[-1] == 4.5
        np.testing.assert_array_equal(l2.b.data, [1, 0])
        for p, old in zip(model.parameters()[:3], before[:3]):
            np.testing.assert_array_equal(p.data, old)
        assert model.evaluate(x, y)["loss"] == 0.0


def test_tv_mlp_04_softmax_cross_entropy_with_l2():
    l1 = dense([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], [0, 0.1, -0.1], activation="sigmoid")
    l2 = dense([[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]], [0.05, -0.05])
    model = Sequential([l1, l2, "softmax"])
    X, labels = np.eye(2), np.array([0, 1])
    model.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.5},
                  regularizers=[{"name": "l2", "lam": 0.01}])
    P = model.predict(X)
    np.testing.assert_allclose(P, [[0.5231086411, 0.4768913589], [0.5039951758, 0.4960048242]],
                               rtol=1e-9, atol=1e-10)
    trainer = corenet.Trainer(model, loss=model.loss, optimizer=model.optimizer,
                              regularizers=model.regularizers)
    h = trainer.fit(X, labels, epochs=1, batch_size=2, shuffle=False)
    R = h.epochs[0]["objective"]
    # the objective logged after the step uses the updated weights; recompute at the start:
    assert np.isfinite(R)
    np.testing.assert_allclose(l1.W.data, [[0.1203119238, 0.1771692472],
                                           [-0.3191567401, 0.418727129],
                                           [0.4946355432, -0.5942064445]], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(l1.b.data, [-0.001018829, 0.1000703889, -0.1000709014],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(l2.W.data, [[0.291811089, -0.2237590558, 0.1290693024],
                                           [-0.391311089, 0.5222590558, 0.1694306976]],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(l2.b.data, [0.0432240458, -0.0432240458], rtol=1e-9, atol=1e-10)


def test_tv_mlp_04_objective_and_gradients_before_step():
    l1 = dense([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], [0, 0.1, -0.1], activation="sigmoid")
    l2 = dense([[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]], [0.05, -0.05])
    model = Sequential([l1, l2, "softmax"])
    loss = corenet.create("loss", "cross_entropy")
    reg = corenet.create("regularizer", "l2", lam=0.01)
    X, labels = np.eye(2), np.array([0, 1])
    z = model.forward(X, logits=True)
    value, grad = loss.fused_value_and_grad(z, labels)
    R = value + reg.penalty(model.parameters())
    np.testing.assert_allclose(R, 0.6820678679751736, rtol=1e-9)
    model.zero_grad()
    model.backward(grad, logits=True)
    reg.add_grad(model.parameters())
    np.testing.assert_allclose(l1.W.grad, [[-0.0406238475, 0.0456615055],
                                           [0.0383134802, -0.037454258],
                                           [0.0107289137, -0.0115871109]], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(l1.b.grad, [0.002037658, -0.0001407779, 0.0001418027],
                               rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(l2.b.grad, [0.0135519085, -0.0135519085], rtol=1e-8, atol=1e-10)


def test_tv_mlp_07_constant_initialisation_symmetry():
    rng = np.random.default_rng(3)
    l1 = Dense(4, 3, activation="tanh", weight_init={"name": "constant", "value": 0.3})
    l2 = Dense(2, 4, weight_init={"name": "constant", "value": -0.2})
    model = Sequential([l1, l2], random_state=0)
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.1})
    model.fit(rng.normal(size=(20, 3)), rng.normal(size=(20, 2)), epochs=1, batch_size=1)
    W = l1.W.data
    np.testing.assert_allclose(W, np.repeat(W[:1], 4, axis=0), rtol=0, atol=1e-15)
    assert np.ptp(l1.b.data) <= 1e-15


def test_tv_mlp_08_non_square_backward_shapes():
    rng = np.random.default_rng(0)
    B = dense(rng.normal(size=(3, 4)), activation="tanh")
    A = dense(rng.normal(size=(2, 3)), activation="sigmoid")
    model = Sequential([B, A])
    x, y = rng.normal(size=(1, 4)), rng.normal(size=(1, 2))
    loss = corenet.create("loss", "sse", half=True)
    out = model.forward(x)
    value, g = loss.value_and_grad(out, y)
    model.zero_grad()
    A.backward(g)  # hidden-layer input gradient: A^T (sigma'(z) * dy)
    z = B.forward(x) @ A.W.data.T
    s = 1 / (1 + np.exp(-z))
    expected = (s * (1 - s) * g) @ A.W.data
    np.testing.assert_allclose(A.backward(g), expected, rtol=1e-12)
    result = corenet.testing.check_gradients(model, loss, x, y)
    assert result.max_rel_error <= 1e-6


def test_tv_hess_01_loss_and_gradient():
    model = Sequential([dense([[0.1, -0.2], [0.4, 0.3]], [0.05, -0.1], activation="tanh"),
                        dense([[0.7, -0.5]], [0.2])])
    X = np.array([[0.5, -1.0], [-1.5, 2.0]])
    T = np.array([[0.3], [-0.4]])
    loss = corenet.create("loss", "sse", half=True)
    np.testing.assert_allclose(model.get_flat_parameters(),
                               [0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2])
    value, g = loss.value_and_grad(model.forward(X), T)
    np.testing.assert_allclose(value, 0.036888752221179336, rtol=1e-12)
    model.zero_grad()
    model.backward(g)
    np.testing.assert_allclose(model.get_flat_gradients(),
                               [-0.1022986396, 0.114766706, 0.096827095, -0.1128766647,
                                0.1547250135, -0.1294559115, -0.0458955135, -0.0362581844,
                                0.264479238], rtol=1e-9, atol=1e-10)
