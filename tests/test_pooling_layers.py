"""Pooling layers and max-unpooling (convolution.md §5-6): layer contracts, spec vectors
TV-POOL-01/02/04, TV-SIZE-01, TV-MLP-05, switches wiring in Sequential and Graph, errors."""
import numpy as np
import pytest

from corenet.testing import check_linear_second_order
import corenet.testing as ct
from corenet import Graph, Sequential, registry
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers.core import Dense
from corenet.layers.pooling import (AvgPool1d, AvgPool2d, GlobalAvgPool, GlobalMaxPool,
                                    MaxPool1d, MaxPool2d, MaxUnpool2d, link_layers)

NAMES = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool",
         "global_max_pool", "max_unpool2d"]
X1 = np.array([[1, 3, 2, 1], [4, 2, 0, 1], [5, 6, 1, 2], [7, 8, 3, 0]], float)[None, None]
DY = np.array([[1.0, 2], [3, 4]])[None, None]


@pytest.mark.parametrize("name", NAMES)
def test_layer_contract(name):
    """Shapes, dtypes, float32 vs float64, config round trip, errors and the gradient
    check of README §11 (random normal inputs: no ties)."""
    ct.check_registered("layer", name)


def test_tv_pool_01_layers():
    pool, avg = MaxPool2d(2), AvgPool2d(2)
    y = pool.forward(X1)
    np.testing.assert_array_equal(y[0, 0], [[4, 2], [8, 3]])
    np.testing.assert_array_equal(pool.switches[0, 0], [[4, 2], [13, 14]])
    np.testing.assert_array_equal(pool.backward(DY)[0, 0],
                                  [[0, 0, 2, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 3, 4, 0]])
    np.testing.assert_array_equal(avg.forward(X1)[0, 0], [[2.5, 1.0], [6.5, 1.5]])
    np.testing.assert_array_equal(avg.backward(DY)[0, 0],
                                  [[.25, .25, .5, .5], [.25, .25, .5, .5], [.75, .75, 1, 1],
                                   [.75, .75, 1, 1]])
    model = Sequential([pool := MaxPool2d(2), MaxUnpool2d(switches_from=pool)])
    np.testing.assert_array_equal(model.forward(X1)[0, 0],
                                  [[0, 0, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 8, 3, 0]])
    # backward of the pair: dX = dY at the switch positions, 0 elsewhere
    dy = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(model.backward(dy)[0, 0],
                                  [[0, 0, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 13, 14, 0]])


def test_tv_pool_02_overlapping_layer():
    pool = MaxPool2d(3, stride=1)
    np.testing.assert_array_equal(pool.forward(X1)[0, 0], [[6, 6], [8, 8]])
    np.testing.assert_array_equal(pool.backward(DY)[0, 0],
                                  [[0, 0, 0, 0], [0, 0, 0, 0], [0, 3, 0, 0], [0, 7, 0, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tv_pool_04_global_average(dtype):
    x = np.arange(8, dtype=dtype).reshape(1, 2, 2, 2)
    layer = GlobalAvgPool()
    np.testing.assert_allclose(layer.forward(x), [[1.5, 5.5]], rtol=1e-12)
    dx = layer.backward(np.array([[1, 2]], dtype))
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, [[[[0.25, 0.25], [0.25, 0.25]], [[0.5, 0.5], [0.5, 0.5]]]])
    keep = GlobalAvgPool(keepdims=True)
    assert keep.forward(x).shape == (1, 2, 1, 1)


def test_global_max_pool_switch_per_channel():
    x = np.array([[[[1.0, 5], [5, 0]], [[-1, -2], [-3, -1]]]])
    layer = GlobalMaxPool()
    np.testing.assert_array_equal(layer.forward(x), [[5, -1]])
    np.testing.assert_array_equal(layer.switches, [[1, 0]])          # first maxima (D-20)
    np.testing.assert_array_equal(layer.backward(np.array([[2.0, 3.0]])),
                                  [[[[0, 2], [0, 0]], [[3, 0], [0, 0]]]])
    one_d = GlobalMaxPool(keepdims=True)
    assert one_d.forward(np.zeros((2, 3, 7))).shape == (2, 3, 1)


def test_tv_size_01_output_shapes():
    for size, out in ((28, 14), (10, 5), (16, 8)):
        assert MaxPool2d(2).output_shape((3, size, size)) == (3, out, out)
        assert AvgPool1d(2).output_shape((3, size)) == (3, out)
    assert MaxPool2d(3, 2, 1).output_shape((1, 7, 7)) == (1, 4, 4)
    assert MaxPool1d(3, 2).output_shape((2, 6)) == (2, 2)
    assert MaxPool2d(3, 1, "same").output_shape((2, 5, 6)) == (2, 5, 6)


def test_tv_mlp_05_dense_relu_maxpool():
    dense = Dense(4, activation="relu")
    model = Sequential([dense, ("reshape", {"shape": (1, 4)}), MaxPool1d(2, 2), "flatten"])
    model.build((2,))
    dense.W.data[...] = [[1, 0], [0, 1], [-1, 1], [2, 1]]
    dense.b.data[...] = [0.5, 0, 0, -1]
    x = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(model.forward(x), [[2, 3]])
    np.testing.assert_array_equal(model.layers[2].switches, [[[1, 3]]])
    model.zero_grad()
    dx = model.backward(np.array([[1.0, -1.0]]))
    np.testing.assert_allclose(dx, [[-2, 0]], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dense.W.grad, [[0, 0], [1, 2], [0, 0], [-1, -2]], atol=1e-10)
    np.testing.assert_allclose(dense.b.grad, [0, 1, 0, -1], atol=1e-10)


def test_max_pool1d_equals_max_pool2d_with_unit_height():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11))
    p1, p2 = MaxPool1d(3, 2, 1), MaxPool2d((1, 3), (1, 2), ((0, 0), (1, 1)))
    np.testing.assert_array_equal(p1.forward(x), p2.forward(x[:, :, None])[:, :, 0])
    np.testing.assert_array_equal(p1.switches, p2.switches[:, :, 0])
    dy = rng.standard_normal((2, 3, 6))
    np.testing.assert_array_equal(p1.backward(dy), p2.backward(dy[:, :, None])[:, :, 0])
    a1, a2 = AvgPool1d(3, 2, (1, 0)), AvgPool2d((1, 3), (1, 2), ((0, 0), (1, 0)))
    np.testing.assert_allclose(a1.forward(x), a2.forward(x[:, :, None])[:, :, 0], rtol=1e-14)


@pytest.mark.parametrize("pool_cfg", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1,
                                                             "padding": 1},
                                      {"kernel_size": [3, 2], "stride": [2, 1]}])
def test_model_gradients_through_pooling(pool_cfg):
    """README §11 gradient check of tanh → max/avg pool → (unpool) models, away from ties."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 2, 5, 6))
    for second in ("max_pool2d", "avg_pool2d"):
        pool = registry.create("layer", {"name": "max_pool2d", **pool_cfg})
        model = Sequential([("activation", {"activation": "tanh"}), pool,
                            MaxUnpool2d(switches_from=pool),
                            {"name": second, **pool_cfg}, "flatten"])
        y = rng.standard_normal((2, model.build(X.shape[1:]).output_shape()[0]))
        ct.check_gradients(model, "mse", X, y, atol=1e-10).assert_ok()   # as check_layer


def test_unpool_with_a_key_in_a_graph_and_config_round_trip():
    g = Graph(inputs=["x"], outputs=["out"])
    g.add_node("pool", MaxPool2d(2), "x")
    g.add_node("act", ("activation", {"activation": "tanh"}), "pool")
    g.add_node("out", MaxUnpool2d(switches_from="pool"), "act")
    link_layers(g)
    x = np.random.default_rng(2).standard_normal((3, 2, 5, 4))
    y = g.forward(x)
    assert y.shape == (3, 2, 5, 4)            # the pool's input size (5 rows, 1 dropped)
    assert g.nodes["out"][0].source is g.nodes["pool"][0]
    expected = np.zeros_like(x)
    sw = g.nodes["pool"][0].switches
    np.put_along_axis(expected.reshape(3, 2, -1), sw.reshape(3, 2, -1),
                      np.tanh(g.nodes["pool"][0].forward(x)).reshape(3, 2, -1), axis=2)
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    cfg = g.get_config()
    assert cfg["nodes"][2]["config"]["switches_from"] == "pool"
    clone = Graph.from_config(cfg)
    link_layers(clone)
    np.testing.assert_allclose(clone.forward(x), y, rtol=1e-14)
    ct.check_gradients(g, "mse", x, np.zeros_like(y)).assert_ok()


def test_unpool_object_reference_config_uses_the_key():
    pool = MaxPool2d(2)
    model = Sequential([pool, MaxUnpool2d(switches_from=pool, output_size=(4, 4))])
    model.build((1, 4, 4))
    cfg = model.get_config()
    assert cfg["layers"][1]["config"]["switches_from"] == "0"
    clone = Sequential.from_config(cfg)   # building resolves the key to the pool layer
    np.testing.assert_array_equal(clone.forward(X1), model.forward(X1))
    link_layers(clone)                    # still available, and idempotent
    np.testing.assert_array_equal(clone.forward(X1), model.forward(X1))
    lone = MaxUnpool2d(switches_from="0", output_size=(4, 4))
    with pytest.raises(RuntimeError, match="link_layers"):
        lone.forward(X1)


def test_unpool_errors():
    with pytest.raises(HyperparameterError, match="switches_from"):
        MaxUnpool2d(switches_from=MaxPool1d(2))
    with pytest.raises(HyperparameterError, match="switches_from"):
        MaxUnpool2d(switches_from=3)
    pool = MaxPool2d(2)
    un = MaxUnpool2d(switches_from=pool)
    un.build((1, 2, 2))
    with pytest.raises(ShapeError, match="no forward pass yet"):
        un.forward(np.zeros((1, 1, 2, 2)))
    pool.forward(X1)
    with pytest.raises(ShapeError, match="switches"):
        un.forward(np.zeros((2, 1, 2, 2)))            # batch differs from the pool's
    with pytest.raises(ShapeError, match="differs from the output"):
        Sequential([pool2 := MaxPool2d(2), MaxPool2d(2),
                    MaxUnpool2d(switches_from=pool2)]).build((1, 8, 8))
    g = Graph(inputs=["x"], outputs=["up"])
    g.add_node("p", AvgPool2d(2), "x")
    g.add_node("up", MaxUnpool2d(switches_from="p", output_size=(4, 4)), "p")
    with pytest.raises(HyperparameterError, match="avg_pool2d"):
        link_layers(g)


def test_layer_errors():
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        MaxPool2d(2).forward(np.zeros((2, 8)))
    with pytest.raises(ShapeError, match=r"\(N, C, L\)"):
        AvgPool1d(2).forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ShapeError, match="larger than the padded input"):
        MaxPool2d(3).forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ShapeError, match="larger than the padded input"):
        Sequential([MaxPool2d(2), MaxPool2d(2)]).build((1, 3, 3))
    with pytest.raises(DTypeError):
        MaxPool2d(2).forward(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        MaxPool2d(2).forward(np.zeros((1, 1, 4, 8))[..., ::2])
    with pytest.raises(HyperparameterError, match="kernel_size/2"):
        MaxPool2d(2, padding=2)
    with pytest.raises(HyperparameterError, match="stride"):
        AvgPool1d(2, stride=0)
    with pytest.raises(ShapeError, match="no spatial"):
        GlobalAvgPool().forward(np.zeros((1, 2, 0, 3)))
    pool = MaxPool2d(2)
    pool.forward(X1)
    with pytest.raises(ShapeError, match="dy must have shape"):
        pool.backward(np.zeros((1, 1, 3, 2)))


def test_return_indices_and_config():
    pool = MaxPool2d(2, return_indices=True)
    y, sw = pool.forward(X1)
    np.testing.assert_array_equal(sw[0, 0], [[4, 2], [13, 14]])
    cfg = AvgPool2d([3, 2], stride=1, padding=[[1, 1], [0, 1]], count_include_pad=False) \
        .get_config()
    assert cfg["kernel_size"] == [3, 2] and cfg["padding"] == [[1, 1], [0, 1]]
    assert AvgPool2d.from_config(cfg).get_config() == cfg


# ----------------------------------------------------------------------------- second order
@pytest.mark.parametrize("make,shape", [
    (lambda: MaxPool2d(2), (2, 5, 4)), (lambda: MaxPool2d(3, 1, 1), (1, 4, 5)),
    (lambda: MaxPool1d(3, 2, 1), (2, 7)), (lambda: AvgPool2d(3, 2, 1), (1, 5, 5)),
    (lambda: AvgPool2d(3, 2, 1, count_include_pad=False), (2, 5, 4)),
    (lambda: AvgPool1d(2, 1), (2, 5)), (lambda: GlobalAvgPool(), (2, 3, 2)),
    (lambda: GlobalMaxPool(keepdims=True), (2, 3, 2))])
def test_second_order_passes(make, shape):
    x = np.random.default_rng(3).standard_normal((2,) + shape)
    check_linear_second_order(make(), [x])


def test_unpool_second_order_passes_and_hvp():
    from corenet import curvature
    x = np.random.default_rng(4).standard_normal((2, 1, 5, 5))
    pool = MaxPool2d(3, 1, 1)                         # overlapping: repeated switches
    pool.forward(x)
    un = MaxUnpool2d(switches_from=pool)
    un.build((1, 5, 5))
    check_linear_second_order(un, [pool.forward(x)])
    # R-operator Hessian-vector products through pooling agree with finite differences
    rng = np.random.default_rng(5)
    model = Sequential([Dense(8, activation="tanh"), ("reshape", {"shape": (2, 4)}),
                        MaxPool1d(2, 1), AvgPool1d(2), "flatten", Dense(2)], random_state=0)
    X, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    model.build((3,))
    v = rng.standard_normal(model.get_flat_parameters().size)
    np.testing.assert_allclose(curvature.hvp(model, "mse", X, y, v),
                               curvature.hvp(model, "mse", X, y, v, method="finite_difference"),
                               rtol=1e-5, atol=1e-8)
