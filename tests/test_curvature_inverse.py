"""corenet.curvature, section "inverse Hessians": outer-product (Gauss-Newton) vectors,
the recursive Woodbury inverse (TV-PR-02, D-27), exact-Hessian inverses, the OBS
downdate and the inverse-quality measure — against direct formulas and finite
differences."""
import numpy as np
import pytest

from corenet import Graph, NotFiniteError, Sequential, ShapeError, curvature
from corenet.curvature import SingularHessianError
from corenet.layers.core import Dense

SSE = {"name": "sse", "half": True}
TV_X = np.array([[1, 0, 2], [0, 1, 1], [1, 1, 0], [2, -1, 1]], dtype=float)


def tv_hess_net():
    m = Sequential([Dense(2, 2, activation="tanh"), Dense(1, 2)], input_shape=(2,))
    m.set_flat_parameters(np.array([0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2]))
    return m


TV_HESS_X = np.array([[0.5, -1.0], [-1.5, 2.0]])
TV_HESS_T = np.array([[0.3], [-0.4]])


# ----------------------------------------------------------------------------- TV-PR-02
def test_tv_pr_02_recursive_inverse_and_downdate():
    Hinv = curvature.woodbury_inverse(TV_X, alpha=1e-4)
    expected = [[1.3330568554, 0.444293046, -0.8886453272],
                [0.444293046, 1.4812335175, -0.296175619],
                [-0.8886453272, -0.296175619, 1.2590129506]]
    np.testing.assert_allclose(Hinv, expected, rtol=1e-9, atol=1e-10)
    H = 1e-4 * np.eye(3) + TV_X.T @ TV_X / 4
    np.testing.assert_allclose(H, [[1.5001, -0.25, 1.0], [-0.25, 0.7501, 0.0],
                                   [1.0, 0.0, 1.5001]], rtol=1e-12)
    np.testing.assert_allclose(Hinv, np.linalg.inv(H), rtol=1e-10)
    assert curvature.inverse_quality(Hinv, H) * np.sqrt(3) < 1e-11   # ‖I − H⁻¹H‖_F ≈ 4.6e-13
    down = curvature.inverse_downdate(Hinv, 1)
    np.testing.assert_allclose(down, [[1.1997920403, -0.7998080397],
                                      [-0.7998080397, 1.1997920403]], rtol=1e-9)
    np.testing.assert_allclose(down, np.linalg.inv(H[np.ix_([0, 2], [0, 2])]), rtol=1e-9)


def test_woodbury_shapes_weights_and_errors():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(6, 2, 4))
    c = rng.uniform(0.1, 1.0, 6)
    direct = np.linalg.inv(1e-3 * np.eye(4) + np.einsum("n,nrp,nrq->pq", c, V, V))
    np.testing.assert_allclose(curvature.woodbury_inverse(V, 1e-3, c), direct, rtol=1e-8)
    with pytest.raises(SingularHessianError, match="alpha"):
        curvature.woodbury_inverse(V, 0.0)
    with pytest.raises(ShapeError):
        curvature.woodbury_inverse(np.zeros((2, 2, 2, 2)))
    bad = V.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(NotFiniteError):
        curvature.woodbury_inverse(bad)


# ----------------------------------------------------------------------------- outer products
def _models():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(7, 4))
    out = []
    m = Sequential([Dense(5, activation="tanh"), Dense(3)], random_state=0, input_shape=(4,))
    out.append(("mse", m, "mse", rng.normal(size=(7, 3))))
    m = Sequential([Dense(5, activation="tanh"), Dense(3)], random_state=1, input_shape=(4,))
    out.append(("sse", m, SSE, rng.normal(size=(7, 3))))
    m = Sequential([Dense(5, activation="sigmoid"), Dense(3), "softmax"], random_state=2,
                   input_shape=(4,))
    out.append(("cross_entropy", m, "cross_entropy", rng.integers(0, 3, 7)))
    m = Sequential([Dense(4, activation="elu"), Dense(2, activation="sigmoid")],
                   random_state=3, input_shape=(4,))
    out.append(("bce", m, "bce", rng.integers(0, 2, (7, 2)).astype(float)))
    g = Graph(inputs="x", outputs="o", random_state=4)
    g.add_node("h", Dense(3, activation="tanh"), "x")
    g.add_node("c", "concat", ["h", "x"])
    g.add_node("o", Dense(2), "c")
    g.build((4,))
    out.append(("graph", g, "mse", rng.normal(size=(7, 2))))
    return X, out


@pytest.mark.parametrize("case", ["mse", "sse", "cross_entropy", "bce", "graph"])
def test_gauss_newton_matrix_equals_gn_vector_products(case):
    X, models = _models()
    _, m, loss, y = next(t for t in models if t[0] == case)
    n = m.n_parameters()
    G = curvature.gauss_newton_matrix(m, loss, X, y)
    cols = np.column_stack([curvature.gauss_newton_vector(m, loss, X, y, e)
                            for e in np.eye(n)])
    np.testing.assert_allclose(G, cols, rtol=1e-9, atol=1e-12)
    assert np.linalg.eigvalsh(G).min() > -1e-12                     # PSD (§7.4)
    Hinv = curvature.outer_product_inverse(m, loss, X, y, alpha=1e-3)
    np.testing.assert_allclose(Hinv, np.linalg.inv(G + 1e-3 * np.eye(n)), rtol=1e-7,
                               atol=1e-9)


def test_cross_entropy_factors_are_the_spec_vectors():
    z = np.array([[0.2, -1.0, 0.5], [1.0, 0.0, -0.3]])
    from corenet import registry

    loss = registry.create("loss", "cross_entropy")
    U = curvature.output_factors(loss, z, np.array([0, 2]), True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    for n in range(2):
        for r in range(3):
            np.testing.assert_allclose(U[n, :, r], np.sqrt(p[n, r]) * (np.eye(3)[r] - p[n]))
        np.testing.assert_allclose(U[n] @ U[n].T, np.diag(p[n]) - np.outer(p[n], p[n]),
                                   atol=1e-15)
    mse = registry.create("loss", "mse")
    U = curvature.output_factors(mse, z, z * 0, False)
    np.testing.assert_allclose(U[0], np.sqrt(2 / 3) * np.eye(3))   # u_r = √(2/K) e_r


def test_output_jacobians_forward_reverse_and_finite_differences():
    X, models = _models()
    _, m, _, _ = models[2]                                  # ends in softmax
    theta = m.get_flat_parameters()
    for logits in (False, True):
        Jf = curvature.output_jacobians(m, X, logits=logits, mode="forward")
        Jr = curvature.output_jacobians(m, X, logits=logits, mode="reverse")
        np.testing.assert_allclose(Jf, Jr, rtol=1e-10, atol=1e-13)
    J = curvature.output_jacobians(m, X)
    eps = 1e-6
    for i in range(0, theta.size, 7):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        m.set_flat_parameters(tp)
        fp = m.predict(X)
        m.set_flat_parameters(tm)
        fm = m.predict(X)
        np.testing.assert_allclose(J[:, :, i], (fp - fm) / (2 * eps), rtol=1e-6, atol=1e-9)
    m.set_flat_parameters(theta)
    sub = curvature.output_jacobians(m, X, indices=[3, 0, 10])
    np.testing.assert_allclose(sub, J[:, :, [3, 0, 10]])
    with pytest.raises(ShapeError):
        curvature.output_jacobians(m, X, indices=[0, 0])
    with pytest.raises(ShapeError):
        curvature.output_jacobians(m, X, indices=[theta.size])


def test_gauss_newton_equals_hessian_for_a_linear_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    y = X @ [1.0, 0.05, -2.0] + 0.1 * rng.normal(size=20)
    m = Sequential([Dense(1, bias=False)], input_shape=(3,))
    m.set_flat_parameters(np.array([0.3, -0.1, 0.7]))
    G = curvature.gauss_newton_matrix(m, SSE, X, y)
    H = curvature.hessian(m, SSE, X, y)
    np.testing.assert_allclose(G, X.T @ X / 20, rtol=1e-12)
    np.testing.assert_allclose(H, G, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------- exact inverses
def test_hessian_block_matches_full_hessian_and_finite_differences():
    m = tv_hess_net()
    H = curvature.hessian(m, SSE, TV_HESS_X, TV_HESS_T)
    idx = [6, 0, 8, 3]
    B = curvature.hessian_block(m, SSE, TV_HESS_X, TV_HESS_T, idx)
    np.testing.assert_allclose(B, H[np.ix_(idx, idx)], rtol=1e-12, atol=1e-14)
    Bfd = curvature.hessian_block(m, SSE, TV_HESS_X, TV_HESS_T, idx,
                                  method="finite_difference")
    assert np.abs(Bfd - B).max() <= 1e-8


def test_inverse_hessian_positive_definite_and_indefinite():
    m = tv_hess_net()
    # the TV-HESS-01 Hessian is indefinite: a clear error
    with pytest.raises(SingularHessianError, match="not positive definite"):
        curvature.inverse_hessian(m, SSE, TV_HESS_X, TV_HESS_T)
    # restricted to one output weight and the output bias it is PD (the output is linear
    # in them); the whole output layer is singular here (rank N·K = 2 < 3)
    with pytest.raises(SingularHessianError):
        curvature.inverse_hessian(m, SSE, TV_HESS_X, TV_HESS_T, indices=[6, 7, 8])
    idx = [6, 8]
    Hinv = curvature.inverse_hessian(m, SSE, TV_HESS_X, TV_HESS_T, indices=idx)
    B = curvature.hessian_block(m, SSE, TV_HESS_X, TV_HESS_T, idx)
    np.testing.assert_allclose(Hinv @ B, np.eye(2), atol=1e-9)
    with pytest.raises(NotFiniteError):
        curvature.invert_spd(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(SingularHessianError):
        curvature.invert_spd(np.zeros((2, 2)))


def test_clipped_inverse_raises_small_eigenvalues():
    H = np.array([[1.0, 2.0], [2.0, 1.0]])                 # eigenvalues −1, 3
    Hpd, Hinv = curvature.clipped_inverse(H, 0.5)
    np.testing.assert_allclose(np.linalg.eigvalsh(Hpd), [0.5, 3.0])
    np.testing.assert_allclose(Hinv @ Hpd, np.eye(2), atol=1e-12)


def test_successive_downdates_equal_inverse_of_the_kept_block():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(8, 8))
    H = A @ A.T + 0.1 * np.eye(8)
    Hinv = np.linalg.inv(H)
    kept = list(range(8))
    for q_original in (5, 0, 6):
        q = kept.index(q_original)
        Hinv = curvature.inverse_downdate(Hinv, q)
        kept.remove(q_original)
        np.testing.assert_allclose(Hinv, np.linalg.inv(H[np.ix_(kept, kept)]), rtol=1e-8)
    with pytest.raises(ShapeError):
        curvature.inverse_downdate(Hinv, 9)


def test_inverse_quality():
    H = np.diag([1.0, 2.0])
    assert curvature.inverse_quality(np.linalg.inv(H), H) < 1e-15
    assert curvature.inverse_quality(np.eye(2), H) == pytest.approx(np.sqrt(1 / 2))
    with pytest.raises(ShapeError):
        curvature.inverse_quality(np.eye(2), np.eye(3))


def test_float32_model_gives_float64_inverse():
    rng = np.random.default_rng(0)
    m = Sequential([Dense(3, activation="tanh"), Dense(1)], dtype="float32", random_state=0,
                   input_shape=(2,))
    X = rng.normal(size=(10, 2)).astype(np.float32)
    y = rng.normal(size=(10, 1)).astype(np.float32)
    Hinv = curvature.outer_product_inverse(m, SSE, X, y)
    assert Hinv.dtype == np.float64
    m64 = Sequential([Dense(3, activation="tanh"), Dense(1)], random_state=0, input_shape=(2,))
    m64.set_flat_parameters(m.get_flat_parameters().astype(np.float64))
    G = curvature.gauss_newton_matrix(m64, SSE, X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(np.linalg.inv(Hinv), G + 1e-6 * np.eye(G.shape[0]), rtol=1e-4,
                               atol=1e-5)
