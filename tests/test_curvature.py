"""corenet.curvature against TV-HESS-01 / TV-JAC-01 and finite differences."""
import numpy as np
import pytest

import corenet
from corenet import Graph, Sequential, curvature
from corenet.layers.core import Dense

X = np.array([[0.5, -1.0], [-1.5, 2.0]])
T = np.array([[0.3], [-0.4]])


def tv_net():
    l1 = Dense(2, 2, activation="tanh")
    l2 = Dense(1, 2)
    m = Sequential([l1, l2], input_shape=(2,))
    m.set_flat_parameters(np.array([0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2]))
    return m


SSE = {"name": "sse", "half": True}


def test_tv_hess_01_exact():
    m = tv_net()
    H = curvature.hessian(m, SSE, X, T)
    np.testing.assert_allclose(np.diag(H), [0.5695963659, 1.1056004274, 0.2635194961,
                                            0.5219427862, 0.4019294058, 0.2026616674,
                                            0.1492076526, 0.0244453631, 1.0],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(curvature.hvp(m, SSE, X, T, np.ones(9)),
                               [-0.3696803411, 0.3429659951, -0.1096631368, 0.2109878906,
                                0.846218066, -0.1859727417, 0.2893619562, 0.1491689646,
                                0.8477048664], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.linalg.eigvalsh(H),
                               [-0.3714420443, -0.1620898776, -0.0362353248, 0, 0,
                                0.2124506692, 0.5014681696, 1.2773552052, 2.817396367],
                               rtol=1e-8, atol=1e-9)
    Hraw = np.column_stack([curvature.hvp(m, SSE, X, T, e) for e in np.eye(9)])
    assert np.abs(Hraw - Hraw.T).max() <= 1e-15
    Hfd = curvature.hessian(m, SSE, X, T, method="finite_difference")
    assert np.abs(Hfd - H).max() <= 1e-8


def test_tv_hess_01_gauss_newton_and_obd_saliencies():
    m = tv_net()
    gn = curvature.hessian_diag(m, SSE, X, T)
    np.testing.assert_allclose(gn, [0.3922435293, 0.8113115724, 0.3045526549, 0.605566082,
                                    0.3567140454, 0.2379793594, 0.1492076526, 0.0244453631,
                                    1.0], rtol=1e-9, atol=1e-10)
    theta = m.get_flat_parameters()
    np.testing.assert_allclose(0.5 * gn * theta ** 2,
                               [0.0019612176, 0.0162262314, 0.0243642124, 0.0272504737,
                                0.0004458926, 0.0011898968, 0.0365558749, 0.0030556704, 0.02],
                               rtol=1e-8, atol=1e-10)
    exact = curvature.hessian_diag(m, SSE, X, T, method="exact")
    np.testing.assert_allclose(0.5 * exact * theta ** 2,
                               [0.0028479818, 0.0221120085, 0.0210815597, 0.0234874254,
                                0.0005024118, 0.0010133083, 0.0365558749, 0.0030556704, 0.02],
                               rtol=1e-8, atol=1e-10)
    G = np.column_stack([curvature.gauss_newton_vector(m, SSE, X, T, e) for e in np.eye(9)])
    np.testing.assert_allclose(np.linalg.eigvalsh(0.5 * (G + G.T)),
                               [0] * 7 + [1.279160847, 2.6028594122], atol=1e-9)
    # one output unit: a single path from every weight to the loss, so LeCun's pass (which
    # drops cross terms between units) is exactly the diagonal of G (TV-HESS-01 lists both
    # as the same vector)
    np.testing.assert_allclose(np.diag(G), gn, rtol=1e-12, atol=1e-15)


def test_tv_jac_01():
    m = tv_net()
    J = curvature.jacobian_input(m, X[:1])
    np.testing.assert_allclose(J[0], [[-0.1281490093, -0.2722756221]], rtol=1e-9)


def test_jacobian_params_matches_finite_differences():
    m = tv_net()
    J = curvature.jacobian_params(m, X)
    theta = m.get_flat_parameters()
    eps = 1e-6
    for i in range(9):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        m.set_flat_parameters(tp)
        fp = m.predict(X)
        m.set_flat_parameters(tm)
        fm = m.predict(X)
        np.testing.assert_allclose(J[:, :, i], (fp - fm) / (2 * eps), rtol=1e-6, atol=1e-9)
    m.set_flat_parameters(theta)


@pytest.mark.parametrize("kind", ["sequential_softmax", "graph", "sigmoid_bce", "logsoftmax"])
def test_rop_hvp_matches_finite_differences(kind):
    rng = np.random.default_rng(1)
    Xr = rng.normal(size=(6, 4))
    if kind == "sequential_softmax":
        m = Sequential([Dense(5, activation="tanh"), Dense(3, activation="softplus"), Dense(3),
                        "softmax"], random_state=0, input_shape=(4,))
        loss, y = "cross_entropy", rng.integers(0, 3, 6)
    elif kind == "graph":
        m = Graph(inputs="x", outputs="out", random_state=0)
        m.add_node("h", Dense(5, activation="sigmoid"), "x")
        m.add_node("g", Dense(5, activation="elu"), "h")
        m.add_node("r", "add", ["h", "g"])
        m.add_node("c", "concat", ["r", "x"])
        m.add_node("f", "flatten", "c")
        m.add_node("out", Dense(2), "f")
        m.build((4,))
        loss, y = "mse", rng.normal(size=(6, 2))
    elif kind == "sigmoid_bce":
        m = Sequential([Dense(5, activation="tanh"), Dense(2, activation="sigmoid")],
                       random_state=0, input_shape=(4,))
        loss, y = "bce", rng.integers(0, 2, (6, 2)).astype(float)
    else:
        m = Sequential([Dense(5, activation="arctan"), Dense(3), "log_softmax"],
                       random_state=0, input_shape=(4,))
        loss, y = "nll", np.eye(3)[rng.integers(0, 3, 6)]
    v = rng.normal(size=m.n_parameters())
    exact = curvature.hvp(m, loss, Xr, y, v)
    fd = curvature.hvp(m, loss, Xr, y, v, method="finite_difference")
    rel = np.abs(exact - fd).max() / max(1e-8, np.abs(exact).max())
    assert rel <= 1e-6


def test_bad_vector_shape():
    with pytest.raises(corenet.ShapeError, match=r"\(9,\)"):
        curvature.hvp(tv_net(), SSE, X, T, np.ones(3))
