"""sigma_pi, tied_dense, pair_distance, random_sparse_mask and the contrastive loss
(networks.md §1.5, regularization.md §4.1-4.2)."""
import numpy as np
import pytest

import corenet
import corenet.plugins
from corenet import Graph, Sequential, registry
from corenet import testing as ct
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers import special
from corenet.layers.special import PairDistance, SigmaPi, TiedDense, random_sparse_mask, tie


@pytest.fixture(autouse=True, scope="module")
def special_layers():
    """Register corenet.layers.special when its entry point is not declared yet."""
    name = None
    if "sigma_pi" not in registry.names("layer"):
        name = corenet.plugins.register(special, name="corenet_layers_special")
    yield
    if name is not None:
        corenet.plugins.unregister(name=name)


def _dense(k, **kw):
    return registry.create("layer", {"name": "dense", "out_features": k, **kw})


# ----------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("name", ["sigma_pi", "tied_dense", "pair_distance"])
def test_layer_contract(name):
    for report in ct.check_registered("layer", name):
        assert report["max_rel_error"] <= 1e-6


def test_contrastive_loss_contract():
    ct.check_registered("loss", "contrastive")


# ----------------------------------------------------------------------------- sigma-pi
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigma_pi_matches_naive_quadratic_form(dtype):
    rng = np.random.default_rng(0)
    layer = SigmaPi(3)
    layer.build((4,), dtype, np.random.default_rng(1))
    x = rng.standard_normal((6, 4)).astype(dtype)
    y = layer.forward(x)
    W = layer.W.data.astype(np.float64)
    A = np.hstack([np.ones((6, 1)), x.astype(np.float64)])
    ref = np.array([[A[n] @ W[i] @ A[n] for i in range(3)] for n in range(6)])
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    assert y.dtype == dtype and y.shape == (6, 3)
    np.testing.assert_allclose(y, ref, **tol)
    # spec gradients: ∂s_i/∂W_ijk = ã_j ã_k; ∂s_i/∂ã = (W_i + W_iᵀ) ã (first entry dropped)
    ds = rng.standard_normal((6, 3)).astype(dtype)
    layer.W.zero_grad()
    dx = layer.backward(ds)
    ref_dW = np.einsum("ni,nj,nk->ijk", ds.astype(np.float64), A, A)
    ref_dx = np.einsum("ni,ijk,nk->nj", ds.astype(np.float64), W + W.transpose(0, 2, 1), A)
    np.testing.assert_allclose(layer.W.grad, ref_dW, **tol)
    np.testing.assert_allclose(dx, ref_dx[:, 1:], **tol)


def test_sigma_pi_constant_and_linear_terms():
    layer = SigmaPi(1)
    layer.build((2,), np.float64, np.random.default_rng(0))
    W = np.zeros((1, 3, 3))
    W[0, 0, 0] = 0.5           # constant
    W[0, 0, 1] = 2.0           # linear in x1 (through ã_0 = 1)
    W[0, 1, 2] = -3.0          # product x1 x2
    layer.W.data[...] = W
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(layer.forward(x)[:, 0], 0.5 + 2 * x[:, 0] - 3 * x[:, 0] * x[:, 1])


def test_sigma_pi_unit_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64) * 2 - 1
    y = np.array([0, 1, 1, 0])
    model = Sequential([SigmaPi(1, activation="sigmoid")], random_state=0)
    model.compile(loss="bce", optimizer={"name": "adam", "lr": 0.1})
    model.fit(X, y, epochs=300, batch_size=4)
    np.testing.assert_array_equal(model.predict_classes(X), y)


def test_sigma_pi_errors():
    with pytest.raises(HyperparameterError, match="out_features"):
        SigmaPi(0)
    layer = SigmaPi(2)
    with pytest.raises(ShapeError, match="sigma_pi"):
        layer.forward(np.zeros((3, 2, 2)))
    with pytest.raises(ShapeError, match="in_features=3"):
        SigmaPi(2, in_features=3).forward(np.zeros((3, 2)))
    with pytest.raises(DTypeError):
        SigmaPi(2).forward(np.zeros((3, 2), dtype=np.int64))


# ----------------------------------------------------------------------------- tied dense
def _tied_model(graph=False, seed=0):
    enc = _dense(3, activation="tanh")
    dec = TiedDense(tied_to=enc, activation="sigmoid")
    if graph:
        return Graph(inputs="x", nodes=[("enc", enc, "x"), ("dec", dec, "enc")],
                     random_state=seed, input_shape=(5,)), enc, dec
    return Sequential([enc, dec], random_state=seed, input_shape=(5,)), enc, dec


@pytest.mark.parametrize("graph", [False, True])
def test_tied_dense_shares_one_parameter(graph):
    model, enc, dec = _tied_model(graph)
    params = model.parameters()
    assert len(params) == len({id(p) for p in params}) == 3      # W_enc, b_enc, b_dec
    assert dec.W is enc.W and dec.parameters() == [dec.b]
    assert model.n_parameters() == 3 * 5 + 3 + 5
    x = np.random.default_rng(1).standard_normal((4, 5))
    h = np.tanh(x @ enc.W.data.T + enc.b.data)
    ref = 1 / (1 + np.exp(-(h @ enc.W.data + dec.b.data)))      # W_dec = W_encᵀ
    np.testing.assert_allclose(model.forward(x), ref, rtol=1e-12)


@pytest.mark.parametrize("graph", [False, True])
def test_tied_autoencoder_gradient_check(graph):
    model, enc, dec = _tied_model(graph)
    x = np.random.default_rng(2).uniform(0, 1, (6, 5))
    ct.check_gradients(model, "mse", x, x).assert_ok()
    # the shared gradient is the sum of the decoder term (dW_dec)ᵀ and the encoder term
    model.zero_grad()
    out = model.forward(x)
    g = registry.create("loss", "mse").grad(out, x)
    model.backward(g)
    W = enc.W.data
    h = np.tanh(x @ W.T + enc.b.data)
    ds = g * out * (1 - out)                     # through the sigmoid
    dec_term = (ds.T @ h).T                      # dW_dec = dsᵀ h, shape (5, 3), transposed
    dh = ds @ W.T                                # decoder input gradient ds W_dec = ds W_encᵀ
    enc_term = ((dh * (1 - h * h)).T @ x)
    np.testing.assert_allclose(enc.W.grad, dec_term + enc_term, rtol=1e-10, atol=1e-14)
    assert np.abs(dec_term).max() > 1e-3 and np.abs(enc_term).max() > 1e-3


def test_tied_dense_training_updates_once_and_persists(tmp_path):
    model, enc, dec = _tied_model(seed=3)
    x = np.random.default_rng(4).uniform(0, 1, (20, 5))
    model.compile(loss="mse", optimizer={"name": "adam", "lr": 0.01})
    before = model.evaluate(x, x)["loss"]
    model.fit(x, x, epochs=30, batch_size=10)
    assert model.evaluate(x, x)["loss"] < before
    assert len(model.optimizer.state) == 3                       # one state per parameter
    assert dec.get_config()["tied_to"] == "0"
    path = tmp_path / "tied.npz"
    model.save(path)
    loaded = corenet.load(path)
    if isinstance(loaded.layers[1].tied_to, str):      # not bound by the model build
        with pytest.raises(RuntimeError, match="tie"):
            loaded.predict(x)
    tie(loaded)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[1].W is loaded.layers[0].W


def test_tied_dense_errors():
    enc = _dense(3)
    with pytest.raises(ShapeError, match="earlier"):
        Sequential([TiedDense(tied_to=enc), enc], input_shape=(3,))
    enc2 = _dense(3)
    with pytest.raises(ShapeError, match="tied"):
        Sequential([enc2, _dense(4), TiedDense(tied_to=enc2)], input_shape=(5,))
    with pytest.raises(HyperparameterError, match="out_features"):
        TiedDense()
    with pytest.raises(HyperparameterError, match="tied_to"):
        TiedDense(tied_to=3)
    with pytest.raises(ValueError, match="'7' is not a layer"):
        tie(Sequential([_dense(3), TiedDense(tied_to="7", out_features=5)], input_shape=(5,)))


# ----------------------------------------------------------------------------- sparse
def test_random_sparse_mask_fixed_fan_in():
    m = random_sparse_mask((6, 10), 0.3, rng=0)
    assert m.shape == (6, 10) and set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(m.sum(axis=1), 3)
    np.testing.assert_array_equal(m, random_sparse_mask((6, 10), 0.3, rng=0))
    assert (random_sparse_mask((4, 10), 0.01, rng=1).sum(axis=1) == 1).all()   # min_per_row
    assert random_sparse_mask((2, 3, 2, 2), 0.5, rng=2).reshape(2, -1).sum(1).tolist() == [6, 6]
    for bad in (0.0, 1.5, "x"):
        with pytest.raises(HyperparameterError, match="density"):
            random_sparse_mask((3, 3), bad)
    with pytest.raises(ShapeError):
        random_sparse_mask((3,), 0.5)


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "lr": 0.1, "momentum": 0.9,
                                        "weight_decay": 1e-3},
                                       {"name": "adam", "lr": 0.01}])
def test_sparse_dense_masked_connections_stay_zero(optimizer):
    rng = np.random.default_rng(5)
    mask = random_sparse_mask((8, 6), 0.4, rng=rng)
    model = Sequential([_dense(8, activation="tanh", mask=mask), _dense(2)], random_state=0)
    X, Y = rng.standard_normal((40, 6)), rng.standard_normal((40, 2))
    model.compile(loss="mse", optimizer=optimizer)
    model.build((6,))
    w0 = model.layers[0].W.data.copy()
    model.fit(X, Y, epochs=5, batch_size=8)
    W = model.layers[0].W.data
    assert not np.any(W[mask == 0]) and not np.array_equal(W, w0)
    assert model.layers[0].W.count_nonzero_weights() == int(mask.sum())
    res = ct.check_gradients(model, "mse", X[:5], Y[:5]).assert_ok()
    assert sum(1 for s in res.skipped if s[2] == "masked") == int((mask == 0).sum())


# ----------------------------------------------------------------------------- pair distance
def _branch():
    return [{"name": "dense", "out_features": 4, "activation": "tanh"},
            {"name": "dense", "out_features": 2}]


def test_pair_distance_forward_shares_one_branch():
    model = Sequential([PairDistance(_branch())], random_state=0, input_shape=(2, 3))
    layer = model.layers[0]
    assert [p.name for p in model.parameters()] == ["0.0.weight", "0.0.bias", "0.1.weight",
                                                   "0.1.bias"]
    P = np.random.default_rng(1).standard_normal((5, 2, 3))
    d = model.predict(P)
    f1, f2 = layer.embed(P[:, 0]), layer.embed(P[:, 1])
    np.testing.assert_allclose(d[:, 0], np.linalg.norm(f1 - f2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict(P[:, ::-1].copy()), d, rtol=1e-12)   # symmetric
    assert np.allclose(model.predict(np.stack([P[:, 0], P[:, 0]], 1)), 0)


def test_pair_distance_gradient_check_with_contrastive_loss():
    model = Sequential([PairDistance(_branch())], random_state=2, input_shape=(2, 3))
    P = np.random.default_rng(3).standard_normal((6, 2, 3))
    y = np.array([1, 0, 1, 0, 0, 1])
    ct.check_gradients(model, {"name": "contrastive", "margin": 2.0}, P, y).assert_ok()


def test_pair_distance_zero_distance_gradient_is_finite():
    layer = PairDistance(_branch())
    P = np.repeat(np.random.default_rng(0).standard_normal((3, 1, 3)), 2, axis=1)
    layer.forward(P)
    dx = layer.backward(np.ones((3, 1)))
    assert np.isfinite(dx).all() and not dx.any()
    assert all(np.isfinite(p.grad).all() for p in layer.parameters())


def test_pair_distance_modes_and_errors():
    layer = PairDistance([{"name": "dropout", "rate": 0.5}, {"name": "dense",
                                                             "out_features": 2}])
    model = Sequential([layer], random_state=0, input_shape=(2, 4))
    model.eval()
    assert not layer.branch[0].training
    model.train()
    assert layer.branch[0].training
    with pytest.raises(ShapeError, match="pairs"):
        Sequential([PairDistance(_branch())], input_shape=(3, 4))
    with pytest.raises(HyperparameterError, match="branch"):
        PairDistance([])
    with pytest.raises(HyperparameterError, match="one input"):
        PairDistance(["add"])


# ----------------------------------------------------------------------------- contrastive
def test_contrastive_values_and_convention():
    loss = registry.create("loss", {"name": "contrastive", "margin": 1.0, "reduction": "none"})
    d = np.array([[0.5], [0.5], [1.5], [0.0]])
    y = np.array([1, 0, 0, 1])                       # 1 = similar (PyTorch-style)
    value, grad = loss.value_and_grad(d, y)
    np.testing.assert_allclose(value, [0.125, 0.125, 0.0, 0.0])
    np.testing.assert_allclose(grad[:, 0], [0.5, -0.5, 0.0, 0.0])
    h = loss.hess_output(d, y)
    np.testing.assert_allclose(h[:, 0, 0], [1.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="0 \\(dissimilar\\) or 1"):
        loss.value(d, np.array([1, 2, 0, 1]))
    with pytest.raises(ValueError, match=">= 0"):
        loss.value(-d - 1, y)
    with pytest.raises(HyperparameterError, match="margin"):
        registry.create("loss", {"name": "contrastive", "margin": 0})


@pytest.mark.parametrize("first", [True, False])
def test_sigma_pi_second_order_passes(first):
    from corenet import curvature
    rng = np.random.default_rng(7)
    layers = [SigmaPi(3, activation="tanh"), _dense(2)] if first else \
        [_dense(3, activation="tanh"), SigmaPi(2)]
    model = Sequential(layers, random_state=1, input_shape=(2,))
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    for _ in range(3):
        v = rng.standard_normal(model.get_flat_parameters().size)
        np.testing.assert_allclose(curvature.hvp(model, "mse", X, Y, v),
                                   curvature.hvp(model, "mse", X, Y, v,
                                                 method="finite_difference"),
                                   rtol=1e-6, atol=1e-7)
    # a sigma-pi output layer is linear in W: its Gauss-Newton diagonal is exact (mse)
    single = Sequential([SigmaPi(2)], random_state=2, input_shape=(2,))
    np.testing.assert_allclose(curvature.hessian_diag(single, "mse", X, Y),
                               curvature.hessian_diag(single, "mse", X, Y, method="exact"),
                               rtol=1e-10, atol=1e-12)
    assert np.isfinite(curvature.hessian_diag(model, "mse", X, Y)).all()


def test_sigma_pi_gauss_newton_diag_propagates_exactly_through_a_chain():
    from corenet import curvature
    rng = np.random.default_rng(8)
    model = Sequential([_dense(1), SigmaPi(1)], random_state=3, input_shape=(3,))
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
    n = model.get_flat_parameters().size
    exact_gn = [curvature.gauss_newton_vector(model, "mse", X, Y, e)[i]
                for i, e in enumerate(np.eye(n))]
    np.testing.assert_allclose(curvature.hessian_diag(model, "mse", X, Y), exact_gn,
                               rtol=1e-10, atol=1e-12)
