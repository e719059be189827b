"""batch_norm, layer_norm, weight_norm, local_response_norm (normalization.md §2-4, TV-BN-01,
TV-LN-01, TV-WN-01; D-06, D-07, D-22, D-23, D-34, D-35, D-60, D-78)."""
import numpy as np
import pytest

from corenet import registry
from corenet import testing as ct
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers.normalization import (BatchNorm, LayerNorm, LocalResponseNorm, WeightNorm,
                                          ZeroNormError)
from corenet.model import Sequential

TV64 = dict(rtol=1e-9, atol=1e-10)
TV32 = dict(rtol=1e-5, atol=1e-6)
EPS = 1e-6


def rel_err(a, n):
    a, n = np.asarray(a, float), np.asarray(n, float)
    return float(np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n)), initial=0.0))


def grad_check(layer, x, seed=12345):
    """Max relative error of dx and every parameter gradient against central differences of
    L = Σ R ⊙ layer(x) (R fixed random), float64, step 1e-6. L depends on the whole batch."""
    r = np.random.default_rng(seed).standard_normal(layer.forward(x).shape)
    for p in layer.parameters():
        p.zero_grad()
    layer.forward(x)
    dx = layer.backward(r)

    def loss(xx):
        return float(np.sum(r * layer.forward(xx)))

    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += EPS
        xm[i] -= EPS
        num[i] = (loss(xp) - loss(xm)) / (2 * EPS)
    errs = {"x": rel_err(dx, num)}
    for p in layer.parameters():
        nump = np.zeros_like(p.data)
        for i in np.ndindex(p.shape):
            old = p.data[i]
            p.data[i] = old + EPS
            fp = loss(x)
            p.data[i] = old - EPS
            fm = loss(x)
            p.data[i] = old
            nump[i] = (fp - fm) / (2 * EPS)
        errs[p.role] = rel_err(p.grad, nump)
    return errs


def built(spec, shape, dtype=np.float64, seed=0):
    layer = registry.create("layer", spec)
    layer.build(shape, dtype, np.random.default_rng(seed))
    return layer


# ============================================================================ batch norm
X_BN = np.array([[1, 2], [2, -1], [3, 0], [4, 3]], float)
DY_BN = np.array([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.1], [0.2, 0.0]])


def tv_bn(dtype):
    bn = built({"name": "batch_norm", "num_features": 2}, (2,), dtype)
    bn.gamma.data[:] = [1, 0.5]
    bn.beta.data[:] = [0, 1]
    return bn


@pytest.mark.parametrize("dtype,tol", [(np.float64, TV64), (np.float32, TV32)])
def test_batch_norm_tv_bn_01(dtype, tol):
    bn = tv_bn(dtype)
    y = bn.forward(X_BN.astype(dtype))
    assert y.dtype == dtype
    np.testing.assert_allclose(bn._xhat, [[-1.34163542, 0.6324542671], [-0.4472118067,
                               -1.2649085343], [0.4472118067, -0.6324542671],
                               [1.34163542, 1.2649085343]], rtol=1e-8 if dtype == np.float64
                               else 1e-5, atol=tol["atol"])
    np.testing.assert_allclose(y, [[-1.34163542, 1.3162271336], [-0.4472118067, 0.3675457329],
                                   [0.4472118067, 0.6837728664], [1.34163542, 1.6324542671]],
                               rtol=1e-8 if dtype == np.float64 else 1e-5, atol=tol["atol"])
    dx = bn.backward(DY_BN.astype(dtype))
    np.testing.assert_allclose(bn.gamma.grad, [-0.2236059033, -0.6956996938], **tol)
    np.testing.assert_allclose(bn.beta.grad, [0.1, 0.3], **tol)
    np.testing.assert_allclose(dx, [[0.0000005366, -0.0521776162], [0.2236060822, 0.0332041273],
                                    [-0.4472119855, -0.0268791672], [0.2236053667, 0.0458526561]],
                               **tol)
    np.testing.assert_allclose(dx.sum(axis=0), 0, atol=1e-15 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(bn.running_mean, [0.25, 0.1], **tol)
    np.testing.assert_allclose(bn.running_var, [1.0666666667, 1.2333333333], **tol)
    bn.eval()
    np.testing.assert_allclose(bn.forward(X_BN[:1].astype(dtype)), [[0.7261809734, 1.855424353]],
                               **tol)


def test_batch_norm_1d_and_conv_layout_statistics():
    bn = built({"name": "batch_norm", "num_features": 1}, (1,))
    bn.forward(np.array([[1.0], [2], [3], [4]]))
    np.testing.assert_allclose(bn._xhat.ravel(), [-1.34163542, -0.4472118067, 0.4472118067,
                                                  1.34163542], rtol=1e-8)
    x = np.arange(16.0).reshape(2, 2, 2, 2)
    bn = built({"name": "batch_norm", "num_features": 2, "momentum": 1.0}, (2, 2, 2))
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, [5.5, 9.5], **TV64)
    np.testing.assert_allclose(bn.running_var, [19.7142857143, 19.7142857143], **TV64)
    np.testing.assert_allclose(bn._inv_std, 1 / np.sqrt(np.array([17.25, 17.25]) + 1e-5), **TV64)
    # (N, C, L) layout: statistics over N and L
    x = np.random.default_rng(1).standard_normal((3, 2, 5))
    bn = built({"name": "batch_norm", "num_features": 2}, (2, 5))
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-14)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2)), **TV64)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4), (2, 2, 3, 2)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batch_norm_whole_batch_finite_differences(shape, mode):
    rng = np.random.default_rng(3)
    bn = built({"name": "batch_norm", "num_features": shape[1]}, shape[1:])
    bn.gamma.data[:] = rng.uniform(0.5, 2, shape[1])
    bn.beta.data[:] = rng.standard_normal(shape[1])
    bn.running_mean[:] = rng.standard_normal(shape[1])
    bn.running_var[:] = rng.uniform(0.5, 2, shape[1])
    bn.train(mode == "train")
    x = rng.standard_normal(shape) * 2 + 1
    errs = grad_check(bn, x)
    assert max(errs.values()) <= 1e-6, errs


def test_batch_norm_backward_properties_and_diagonal_only_is_wrong():
    """Σ dx = 0 and Σ dx ⊙ x̂ = 0 per channel; perturbing one sample changes every output, so
    the per-sample 'diagonal' recursion (D-34) disagrees with finite differences.
    (Σ dx ⊙ x̂ is O(ε)·Σ dx̂ ⊙ x̂, since mean(x̂²) = σ²/(σ² + ε); checked with a tiny ε.)"""
    rng = np.random.default_rng(4)
    bn = built({"name": "batch_norm", "num_features": 3, "eps": 1e-12}, (3,))
    x, dy = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    y0 = bn.forward(x)
    dx = bn.backward(dy)
    np.testing.assert_allclose(dx.sum(axis=0), 0, atol=1e-13)
    np.testing.assert_allclose((dx * bn._xhat).sum(axis=0), 0, atol=1e-10)
    xp = x.copy()
    xp[0, 0] += 1e-3
    assert np.all(np.abs(bn.forward(xp)[1:, 0] - y0[1:, 0]) > 0)
    bn.forward(x)
    diag = dy * bn._inv_std * (1 - 1 / 6 - bn._xhat ** 2 / 6)
    assert rel_err(diag, dx) > 1e-2


def test_batch_norm_running_statistics_and_modes():
    rng = np.random.default_rng(5)
    bn = built({"name": "batch_norm", "num_features": 2, "momentum": 0.2}, (2, 3))
    rm, rv = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = rng.standard_normal((4, 2, 3)) * 3 + 2
        bn.forward(x)
        mu, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2), ddof=1)
        rm, rv = 0.8 * rm + 0.2 * mu, 0.8 * rv + 0.2 * var
    np.testing.assert_allclose(bn.running_mean, rm, **TV64)
    np.testing.assert_allclose(bn.running_var, rv, **TV64)
    bn.eval()
    before = {k: v.copy() for k, v in bn.buffers().items()}
    x = rng.standard_normal((1, 2, 3))          # a single sample is fine in eval
    y = bn.forward(x)
    expected = (x - rm[None, :, None]) / np.sqrt(rv[None, :, None] + 1e-5)
    np.testing.assert_allclose(y, expected, **TV64)
    for k, v in bn.buffers().items():
        np.testing.assert_array_equal(v, before[k])
    # buffers are saved/restored through load_buffers
    other = built({"name": "batch_norm", "num_features": 2}, (2, 3))
    other.load_buffers({k: v.copy() for k, v in bn.buffers().items()})
    other.eval()
    np.testing.assert_allclose(other.forward(x), y, **TV64)
    # no running statistics: batch statistics in both modes
    free = built({"name": "batch_norm", "num_features": 2, "track_running_stats": False}, (2,))
    free.eval()
    xb = rng.standard_normal((5, 2))
    np.testing.assert_allclose(free.forward(xb).mean(axis=0), 0, atol=1e-14)
    assert free.buffers() == {}


def test_batch_norm_notes_identity_scale_invariance_constant_channel():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 3)) * 2 + 1
    bn = built({"name": "batch_norm", "num_features": 3}, (3,))
    bn.gamma.data[:] = np.sqrt(x.var(axis=0) + 1e-5)
    bn.beta.data[:] = x.mean(axis=0)
    np.testing.assert_allclose(bn.forward(x), x, **TV64)
    tiny = built({"name": "batch_norm", "num_features": 3, "eps": 1e-14}, (3,))
    np.testing.assert_allclose(tiny.forward(3.7 * x + 5.0), tiny.forward(x), atol=1e-9)
    const = np.ones((4, 3))
    y = bn.forward(const)
    np.testing.assert_allclose(y, np.broadcast_to(bn.beta.data, (4, 3)))
    assert np.isfinite(bn.backward(rng.standard_normal((4, 3)))).all()


def test_batch_norm_affine_false_and_init():
    bn = built({"name": "batch_norm", "num_features": 4}, (4,))
    np.testing.assert_array_equal(bn.gamma.data, 1)      # D-07
    np.testing.assert_array_equal(bn.beta.data, 0)
    assert [p.role for p in bn.parameters()] == ["gamma", "beta"]
    assert not any(p.decay for p in bn.parameters())
    plain = built({"name": "batch_norm", "num_features": 4, "affine": False}, (4,))
    assert plain.parameters() == []
    assert max(grad_check(plain, np.random.default_rng(0).standard_normal((3, 4))).values()) \
        <= 1e-6


def test_batch_norm_bad_inputs():
    bn = BatchNorm(3)
    with pytest.raises(ShapeError, match=r"num_features=3.*\(4,\)"):
        bn.forward(np.zeros((5, 4)))
    bn = BatchNorm(3)
    with pytest.raises(ShapeError, match="per-sample shape \\(\\)"):
        bn.forward(np.zeros(5))
    bn = BatchNorm(3)
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn.forward(np.zeros((1, 3)))                      # M = 1 in training (§2.2)
    BatchNorm(3).forward(np.random.default_rng(0).standard_normal((1, 3, 2, 2)))  # M = 4
    with pytest.raises(DTypeError):
        BatchNorm(3).forward(np.zeros((2, 3, 2, 2), dtype=np.int64))
    with pytest.raises(DTypeError, match="float64"):
        bn.forward(np.zeros((2, 3), dtype=np.float32))
    for kwargs in ({"num_features": 0}, {"num_features": 2.5}, {"num_features": 2, "eps": 0},
                   {"num_features": 2, "momentum": 1.5}):
        with pytest.raises(HyperparameterError, match="batch_norm"):
            BatchNorm(**kwargs)


def test_batch_norm_in_model_config_round_trip_and_float32():
    layers = [{"name": "dense", "out_features": 4, "bias": False},
              {"name": "batch_norm", "num_features": 4}, {"name": "activation",
                                                          "activation": "relu"}]
    model = Sequential(layers, random_state=0, input_shape=(3,))
    x = np.random.default_rng(0).standard_normal((6, 3))
    model.forward(x)
    clone = Sequential.from_config(model.get_config())
    clone.set_flat_parameters(model.get_flat_parameters())
    clone.layers[1].load_buffers(model.layers[1].buffers())
    model.eval(), clone.eval()
    np.testing.assert_allclose(clone.forward(x), model.forward(x), **TV64)
    assert [p.name for p in model.parameters()] == ["0.weight", "1.gamma", "1.beta"]
    cfg = BatchNorm(3, eps=1e-3, momentum=0.05, affine=False).get_config()
    assert cfg == {"num_features": 3, "eps": 1e-3, "momentum": 0.05, "affine": False,
                   "track_running_stats": True, "trainable": True}
    m32 = Sequential(layers, random_state=0, dtype=np.float32, input_shape=(3,))
    y32 = m32.forward(x.astype(np.float32))
    model.train()
    m64 = Sequential(layers, random_state=0, input_shape=(3,))
    np.testing.assert_allclose(y32, m64.forward(x), **TV32)
    assert y32.dtype == np.float32 and m32.layers[1].running_var.dtype == np.float32


# ============================================================================ layer norm
X_LN = np.array([[1, 2, 4], [0, 0, 3]], float)


@pytest.mark.parametrize("dtype,tol", [(np.float64, TV64), (np.float32, TV32)])
def test_layer_norm_tv_ln_01(dtype, tol):
    ln = built("layer_norm", (3,), dtype)
    ln.gamma.data[:] = [1, 2, 0.5]
    ln.beta.data[:] = [0, 0, 1]
    y = ln.forward(X_LN.astype(dtype))
    assert y.dtype == dtype
    np.testing.assert_allclose(ln._xhat, [[-1.0690415315, -0.2672603829, 1.3363019143],
                                          [-0.7071050134, -0.7071050134, 1.4142100269]], **tol)
    np.testing.assert_allclose(y, [[-1.0690415315, -0.5345207657, 1.6681509572],
                                   [-0.7071050134, -1.4142100269, 1.7071050134]], **tol)
    dx = ln.backward(np.array([[1, 0, -1], [0.5, 0.5, 0.5]], dtype))
    np.testing.assert_allclose(dx, [[0.1718134369, -0.2577145715, 0.0859011346],
                                    [-0.1767756641, 0.1767768426, -0.0000011785]], **tol)
    np.testing.assert_allclose(ln.gamma.grad, [-1.4225940382, -0.3535525067, -0.6291969009],
                               **tol)
    np.testing.assert_allclose(ln.beta.grad, [1.5, 0.5, -0.5], **tol)


@pytest.mark.parametrize("spec,shape", [("layer_norm", (3, 4)),
                                        ({"name": "layer_norm", "normalized_shape": [2, 3]},
                                         (2, 2, 2, 3)),
                                        ({"name": "layer_norm", "normalized_shape": 3},
                                         (2, 2, 3))])
def test_layer_norm_finite_differences(spec, shape):
    rng = np.random.default_rng(7)
    ln = built(spec, shape[1:])
    ln.gamma.data[...] = rng.uniform(0.5, 2, ln.gamma.shape)
    ln.beta.data[...] = rng.standard_normal(ln.beta.shape)
    errs = grad_check(ln, rng.standard_normal(shape) * 3 + 1)
    assert max(errs.values()) <= 1e-6, errs


def test_layer_norm_modes_batch_of_one_constant_input_and_invariances():
    rng = np.random.default_rng(8)
    ln = built("layer_norm", (5,))
    x = rng.standard_normal((4, 5))
    y = ln.forward(x)
    ln.eval()
    np.testing.assert_array_equal(ln.forward(x), y)
    np.testing.assert_allclose(ln.forward(x[2:3]), y[2:3], **TV64)    # batch of 1
    assert np.isfinite(ln.forward(np.full((2, 5), 3.0))).all()         # D-23
    np.testing.assert_array_equal(ln.forward(np.full((2, 5), 3.0)), 0)
    # §6: invariant to scaling a single case and to re-centring the weight matrix
    tiny = built({"name": "layer_norm", "eps": 1e-14}, (5,))
    xs = x.copy()
    xs[1] *= 7.0
    np.testing.assert_allclose(tiny.forward(xs), tiny.forward(x), atol=1e-9)
    W, u = rng.standard_normal((5, 3)), rng.standard_normal(3)
    z = rng.standard_normal((4, 3))
    np.testing.assert_allclose(tiny.forward(z @ (W + u).T), tiny.forward(z @ W.T), atol=1e-9)
    assert not np.allclose(tiny.forward(x + rng.standard_normal(5)), tiny.forward(x))


def test_layer_norm_bad_inputs_and_config():
    with pytest.raises(ShapeError, match=r"normalized_shape \(4,\)"):
        LayerNorm(4).forward(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="trailing"):
        LayerNorm([2, 3]).forward(np.zeros((2, 3, 2)))
    for kwargs in ({"normalized_shape": 0}, {"normalized_shape": []}, {"eps": -1.0}):
        with pytest.raises(HyperparameterError, match="layer_norm"):
            LayerNorm(**kwargs)
    ln = LayerNorm([2, 3], eps=1e-3, elementwise_affine=False)
    assert ln.get_config() == {"normalized_shape": [2, 3], "eps": 1e-3,
                               "elementwise_affine": False, "trainable": True}
    clone = LayerNorm.from_config(ln.get_config())
    x = np.random.default_rng(0).standard_normal((2, 4, 2, 3))
    np.testing.assert_array_equal(clone.forward(x), ln.forward(x))
    assert clone.parameters() == []


# ============================================================================ weight norm
def wn_dense(out_features, in_features, **kw):
    layer = WeightNorm({"name": "dense", "out_features": out_features, **kw})
    layer.build((in_features,), np.float64, np.random.default_rng(0))
    return layer


def test_weight_norm_tv_wn_01_vector_and_matrix():
    wn = wn_dense(1, 2, bias=False)
    wn.v.data[:] = [[3.0, 4.0]]
    wn.g.data[:] = [2.0]
    x = np.array([[1.0, -1.0]])
    y = wn.forward(x)
    np.testing.assert_allclose(wn.weight(), [[1.2, 1.6]], **TV64)
    np.testing.assert_allclose(y, [[1.2 - 1.6]], **TV64)
    wn.backward(np.array([[1.0]]))            # ∇_w L = dyᵀx = (1, −1)
    np.testing.assert_allclose(wn.g.grad, [-0.2], **TV64)
    np.testing.assert_allclose(wn.v.grad, [[0.448, -0.336]], **TV64)
    assert abs(np.dot(wn.v.grad[0], wn.v.data[0])) < 1e-15
    assert not np.allclose(wn.v.grad, [[0.256, -0.144]])        # diagonal-only (D-22)
    wm = wn_dense(2, 3, bias=False)
    wm.v.data[:] = [[1, 2, 2], [0, 3, 4]]
    wm.g.data[:] = [1.5, 0.5]
    np.testing.assert_allclose(wm.weight(), [[0.5, 1, 1], [0, 0.3, 0.4]], **TV64)


def test_weight_norm_init_parameters_and_names():
    ref = registry.create("layer", {"name": "dense", "out_features": 3})
    ref.build((4,), np.float64, np.random.default_rng(0))
    wn = wn_dense(3, 4)
    np.testing.assert_allclose(wn.v.data, ref.W.data, **TV64)                 # D-78
    np.testing.assert_allclose(wn.g.data, np.linalg.norm(ref.W.data, axis=1), **TV64)
    np.testing.assert_allclose(wn.weight(), ref.W.data, **TV64)
    x = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_allclose(wn.forward(x), ref.forward(x), **TV64)
    model = Sequential([{"name": "weight_norm", "layer": {"name": "dense", "out_features": 3}}],
                       random_state=0, input_shape=(4,))
    ps = model.parameters()
    assert [p.name for p in ps] == ["0.g", "0.v", "0.bias"]
    assert [p.decay for p in ps] == [False, True, False]
    assert [p.shape for p in ps] == [(3,), (3, 4), (3,)]
    mask = np.array([[1, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0]])
    masked = wn_dense(3, 4, mask=mask.tolist())          # a dense connectivity mask moves to v
    assert masked.v.masked and np.all(masked.weight()[mask == 0] == 0)
    masked.forward(x)
    np.testing.assert_array_equal(masked.layer.W.data[mask == 0], 0)


@pytest.mark.parametrize("kw", [{}, {"activation": "tanh"}])
def test_weight_norm_finite_differences_dense(kw):
    wn = wn_dense(3, 4, **kw)
    wn.g.data[:] = [0.7, 1.3, 2.0]
    wn.layer.b.data[:] = [0.1, -0.2, 0.3]
    errs = grad_check(wn, np.random.default_rng(2).standard_normal((5, 4)))
    assert max(errs.values()) <= 1e-6, errs
    wn.g.zero_grad(), wn.v.zero_grad()
    wn.forward(np.random.default_rng(3).standard_normal((5, 4)))
    wn.backward(np.random.default_rng(4).standard_normal((5, 3)))
    np.testing.assert_allclose(np.sum(wn.v.grad * wn.v.data, axis=1), 0, atol=1e-14)


def test_weight_norm_wraps_conv_when_available():
    if "conv2d" not in registry.names("layer"):
        pytest.skip("conv2d layer not registered yet")
    wn = WeightNorm({"name": "conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 2})
    wn.build((3, 4, 4), np.float64, np.random.default_rng(0))
    assert wn.g.shape == (2,) and wn.v.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(wn.g.data, np.sqrt((wn.v.data ** 2).sum(axis=(1, 2, 3))))
    errs = grad_check(wn, np.random.default_rng(1).standard_normal((2, 3, 4, 4)))
    assert max(errs.values()) <= 1e-6, errs
    if "conv_transpose1d" in registry.names("layer"):     # weight (C_in, C_out, k): unit axis 1
        wt = WeightNorm({"name": "conv_transpose1d", "in_channels": 2, "out_channels": 3,
                         "kernel_size": 2})
        wt.build((2, 4), np.float64, np.random.default_rng(0))
        assert wt.g.shape == (3,) and wt.v.shape == (2, 3, 2)
        np.testing.assert_allclose(wt.g.data, np.sqrt((wt.v.data ** 2).sum(axis=(0, 2))))
        errs = grad_check(wt, np.random.default_rng(1).standard_normal((2, 2, 4)))
        assert max(errs.values()) <= 1e-6, errs


def test_weight_norm_gradient_descent_grows_v_and_training_works():
    wn = wn_dense(3, 4)
    x, dy = np.random.default_rng(5).standard_normal((6, 4)), np.ones((6, 3))
    wn.forward(x)
    wn.backward(dy)
    before = np.linalg.norm(wn.v.data, axis=1)
    after = np.linalg.norm(wn.v.data - 0.5 * wn.v.grad, axis=1)
    assert np.all(after >= before)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = Sequential([{"name": "weight_norm", "layer": {"name": "dense", "out_features": 1}}],
                       random_state=0)
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05})
    hist = model.fit(X, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(X, y)["loss"] < 1e-2, hist


def test_weight_norm_data_init():
    wn = wn_dense(3, 4)
    x = np.random.default_rng(6).standard_normal((200, 4)) * 2 + 1
    wn.data_init(x)
    s = wn.forward(x)
    np.testing.assert_allclose(s.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(s.std(axis=0), 1, atol=1e-12)


def test_weight_norm_zero_norm_and_bad_specs():
    with pytest.raises(ZeroNormError, match=r"‖v‖ = 0"):
        wn_dense(2, 3, weight_init="zeros")
    wn = wn_dense(2, 3)
    wn.v.data[1] = 0.0
    with pytest.raises(ValueError, match=r"unit\(s\) \[1\]"):
        wn.forward(np.ones((1, 3)))
    with pytest.raises(HyperparameterError, match="no weight matrix"):
        WeightNorm({"name": "activation", "activation": "tanh"}).forward(np.ones((2, 3)))
    with pytest.raises(HyperparameterError, match="layer spec"):
        WeightNorm({"out_features": 3})
    with pytest.raises(ShapeError):
        wn.forward(np.ones((2, 5)))


def test_weight_norm_config_round_trip_float32_and_eval():
    model = Sequential([{"name": "weight_norm", "layer": {"name": "dense", "out_features": 3,
                                                          "activation": "relu"}}],
                       random_state=0, input_shape=(4,))
    clone = Sequential.from_config(model.get_config())
    clone.set_flat_parameters(model.get_flat_parameters())
    x = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_allclose(clone.forward(x), model.forward(x), **TV64)
    assert model.layers[0].get_config()["layer"]["name"] == "dense"
    assert model.output_activation == "relu"
    model.eval()
    assert model.layers[0].layer.training is False
    m32 = Sequential.from_config({**model.get_config(), "dtype": "float32"})
    m32.set_flat_parameters(model.get_flat_parameters().astype(np.float32))
    y32 = m32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and m32.parameters()[1].dtype == np.float32
    np.testing.assert_allclose(y32, model.forward(x), **TV32)


# ============================================================================ LRN
def lrn_naive(x, n, alpha, beta, k):
    y = np.empty_like(x)
    C = x.shape[1]
    for c in range(C):
        lo, hi = max(0, c - n // 2), min(C - 1, c + (n - 1) // 2)
        s = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        y[:, c] = x[:, c] / (k + alpha / n * s) ** beta
    return y


def test_local_response_norm_hand_value_and_naive_reference():
    lrn = LocalResponseNorm(2, alpha=1.0, beta=1.0, k=1.0)
    np.testing.assert_allclose(lrn.forward(np.array([[1.0, 2.0]])), [[1 / 1.5, 2 / 3.5]], **TV64)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 7, 3, 2)) * 3
    for n in (1, 2, 3, 5, 9):
        lrn = LocalResponseNorm(n, alpha=0.3, beta=0.75, k=2.0)
        np.testing.assert_allclose(lrn.forward(x), lrn_naive(x, n, 0.3, 0.75, 2.0), rtol=1e-12)
    default = LocalResponseNorm(5)
    assert (default.alpha, default.beta, default.k) == (1e-4, 0.75, 1.0)
    y32 = LocalResponseNorm(5, alpha=0.3).forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, lrn_naive(x, 5, 0.3, 0.75, 1.0), **TV32)


@pytest.mark.parametrize("n,shape", [(1, (2, 3)), (2, (2, 4, 3)), (3, (2, 5, 2, 2)),
                                     (4, (1, 6, 2))])
def test_local_response_norm_finite_differences(n, shape):
    lrn = LocalResponseNorm(n, alpha=0.5, beta=0.75, k=1.5)
    errs = grad_check(lrn, np.random.default_rng(10).standard_normal(shape) * 2)
    assert errs["x"] <= 1e-6, errs


def test_local_response_norm_bad_inputs_and_config():
    for kwargs in ({"size": 0}, {"size": 3, "alpha": -1.0}, {"size": 3, "k": 0.0},
                   {"size": 3, "beta": float("nan")}):
        with pytest.raises(HyperparameterError, match="local_response_norm"):
            LocalResponseNorm(**kwargs)
    with pytest.raises(ShapeError):
        LocalResponseNorm(3).forward(np.ones(4))
    lrn = LocalResponseNorm(3, alpha=0.1, beta=0.5, k=2.0)
    assert lrn.get_config() == {"size": 3, "alpha": 0.1, "beta": 0.5, "k": 2.0,
                                "trainable": True}
    assert LocalResponseNorm.from_config(lrn.get_config()).get_config() == lrn.get_config()


def test_all_registered_and_examples_build():
    names = registry.names("layer")
    for cls in (BatchNorm, LayerNorm, WeightNorm, LocalResponseNorm):
        assert registry.get("layer", cls.name) is cls and cls.name in names
        for case in cls.examples():
            ct.check_layer(cls.from_config(case["config"]), case["input_shape"])
