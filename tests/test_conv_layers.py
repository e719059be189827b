"""Convolution layers conv1d, conv2d, conv_transpose1d, conv_transpose2d
(convolution.md §1-4): registration, the layer contract, gradients (input, weight, bias),
initialisation and fans (D-50, D-66), configs, masks, second-order passes and errors."""
import json

import numpy as np
import pytest

import corenet.testing as ct
from corenet import _reference as R
from corenet import curvature, registry
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, convolve_true
from corenet.model import Sequential

NAMES = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


def built(layer, shape, dtype=np.float64, seed=0):
    layer.build(shape, dtype, np.random.default_rng(seed))
    return layer


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_contract(name):
    cls = registry.get("layer", name)
    assert cls.name == name
    for report in ct.check_registered("layer", name):
        assert report["max_rel_error"] <= 1e-6


@pytest.mark.parametrize("cls, config, shape", [
    (Conv2d, dict(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=(2, 1),
                  padding=((1, 0), (2, 1)), dilation=(1, 2)), (3, 7, 8)),
    (Conv2d, dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding="full"),
     (4, 4, 5)),
    (Conv2d, dict(in_channels=2, out_channels=2, kernel_size=4, padding="same"), (2, 5, 5)),
    (Conv1d, dict(in_channels=3, out_channels=3, kernel_size=2, stride=3, groups=3), (3, 11)),
    (ConvTranspose2d, dict(in_channels=3, out_channels=2, kernel_size=(2, 3), stride=(2, 3),
                           padding=(1, 0), output_padding=(1, 2)), (3, 3, 4)),
    (ConvTranspose1d, dict(in_channels=4, out_channels=6, kernel_size=3, dilation=2,
                           groups=2, padding=(2, 1)), (4, 6)),
])
def test_gradient_check_more_geometries(cls, config, shape):
    layer = cls(**config)
    report = ct.check_layer(layer, shape, checks=("gradients", "float32", "config", "batch1"))
    assert report["max_rel_error"] <= 1e-6


def test_parameter_counts_spec_3_1():
    for (cin, cout, k), want in [((3, 6, 5), 456), ((6, 10, 5), 1510), ((64, 32, 1), 2080),
                                 ((1, 20, 5), 520)]:
        layer = built(Conv2d(cin, cout, k), (cin, 32, 32))
        assert layer.n_parameters() == want
    assert built(Conv2d(4, 6, 3, groups=2, bias=False), (4, 8, 8)).n_parameters() == 6 * 2 * 9


def test_forward_matches_reference_and_tv_size():
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    for (s, p, d), want in [((1, 0, 1), (3, 5, 4)), ((2, 1, 1), (3, 4, 3)),
                            ((1, 2, 2), (3, 7, 6)), ((2, 0, 2), (3, 2, 1))]:
        layer = built(Conv2d(2, 3, 3, stride=s, padding=p, dilation=d), (2, 7, 6))
        assert layer.output_shape((2, 7, 6)) == want
        y = layer.forward(x)
        ref = R.conv2d_forward(x, layer.W.data, layer.b.data, (s, s), ((p, p), (p, p)),
                               (d, d), 1)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_tv_conv_02_convolve_true_from_layers_module():
    x = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    h = np.array([[1, 2, 0], [0, 1, 0], [0, 0, -1]], dtype=np.float64)
    np.testing.assert_array_equal(convolve_true(x, h), [[36, 39], [48, 51]])
    layer = built(Conv2d(1, 1, 3, bias=False), (1, 4, 4))
    layer.W.data[...] = h
    np.testing.assert_array_equal(layer.forward(x[None, None])[0, 0], [[0, 3], [12, 15]])
    layer.W.data[...] = h[::-1, ::-1]              # flipped kernel = true convolution
    np.testing.assert_array_equal(layer.forward(x[None, None])[0, 0], [[36, 39], [48, 51]])


def test_tv_conv_08_layer():
    layer = built(ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False),
                  (1, 2, 2))
    layer.W.data[...] = np.arange(1, 10).reshape(3, 3)
    y = layer.forward(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(y[0, 0], [[5, 14, 10, 12], [14, 36, 24, 30],
                                            [15, 34, 20, 24], [24, 55, 32, 36]])


def test_transposed_layer_is_input_gradient_of_conv():
    rng = np.random.default_rng(1)
    conv = built(Conv2d(3, 4, 3, stride=2, padding=1, bias=False), (3, 5, 4))
    convt = built(ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=(0, 1),
                                  bias=False), (4, 3, 2))
    convt.W.data[...] = conv.W.data
    a = rng.standard_normal((2, 3, 5, 4))
    y = conv.forward(a)
    b = rng.standard_normal(y.shape)
    np.testing.assert_allclose(conv.backward(b), convt.forward(b), rtol=1e-12, atol=1e-13)
    assert np.isclose(np.sum(y * b), np.sum(a * convt.forward(b)), rtol=1e-12)


def test_init_glorot_uniform_zero_bias_and_fans():
    conv = built(Conv2d(64, 32, 3), (64, 8, 8))
    assert (conv.W.fan_in, conv.W.fan_out) == (576, 288)
    limit = np.sqrt(6.0 / (576 + 288))
    assert np.all(np.abs(conv.W.data) <= limit) and np.abs(conv.W.data).max() > 0.9 * limit
    assert np.all(conv.b.data == 0)
    # D-66: transposed conv (C_in, C_out, k) — fans by channel meaning
    convt = built(ConvTranspose2d(64, 32, 3), (64, 4, 4))
    assert convt.W.shape == (64, 32, 3, 3)
    assert (convt.W.fan_in, convt.W.fan_out) == (576, 288)
    assert np.abs(convt.W.data).max() <= limit
    c1 = built(Conv1d(4, 6, 5, weight_init="he_uniform", bias_init={"name": "constant",
                                                                     "value": 0.5}), (4, 9))
    assert (c1.W.fan_in, c1.W.fan_out) == (20, 30)
    assert np.all(c1.b.data == 0.5) and np.abs(c1.W.data).max() <= np.sqrt(6 / 20)


def test_lazy_build_and_config_roundtrip():
    layer = Conv2d(None, 5, (3, 2), stride=(1, 2), padding=((1, 0), (0, 1)), groups=1)
    assert not layer.built
    y = layer.forward(np.zeros((2, 3, 6, 6)))
    assert layer.built and layer.in_channels == 3 and y.shape == (2, 5, 5, 3)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = Conv2d.from_config(cfg)
    assert clone.get_config() == cfg
    t = ConvTranspose1d(2, 3, 4, stride=3, padding=[1, 2], output_padding=2, bias=False)
    cfg = json.loads(json.dumps(t.get_config()))
    assert cfg["output_padding"] == [2] and cfg["padding"] == [1, 2]
    assert ConvTranspose1d.from_config(cfg).get_config() == cfg


def test_bad_hyperparameters_and_inputs():
    with pytest.raises(HyperparameterError, match="groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(HyperparameterError, match="groups"):
        Conv2d(4, 3, 3, groups=2)
    with pytest.raises(HyperparameterError):
        Conv2d(3, 0, 3)
    with pytest.raises(HyperparameterError):
        Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(HyperparameterError, match="stride 1"):
        Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(HyperparameterError, match="padding"):
        ConvTranspose2d(3, 4, 3, padding="same")
    with pytest.raises(HyperparameterError, match="output_padding"):
        ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    layer = Conv2d(3, 4, 3)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        layer.forward(np.zeros((2, 3, 8)))                       # wrong rank at build
    layer = Conv2d(3, 4, 3)
    with pytest.raises(ShapeError, match="3 input channels"):
        layer.forward(np.zeros((2, 2, 8, 8)))                    # channel mismatch
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d(3, 4, 5, dilation=2).forward(np.zeros((1, 3, 8, 8)))   # output size <= 0
    with pytest.raises(ValueError, match="does not fit"):
        Conv1d(1, 1, 3).forward(np.zeros((1, 1, 2)))
    with pytest.raises(ShapeError, match="groups"):
        Conv2d(None, 4, 3, groups=2).forward(np.zeros((1, 3, 5, 5)))
    layer = Conv2d(3, 4, 3)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 16))
    with pytest.raises(DTypeError):
        layer.forward(x.astype(np.int32))
    y_strided = layer.forward(x[:, :, :, ::2])                 # non-contiguous: copied
    np.testing.assert_allclose(y_strided, layer.forward(np.ascontiguousarray(x[:, :, :, ::2])))
    with pytest.raises(ShapeError):
        layer.forward(x)                                        # other spatial size
    with pytest.raises(ShapeError, match="dy must have shape"):
        layer.backward(np.zeros((2, 4, 5, 5)))


def test_float32_layer_and_workspace_reuse():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    layer = built(Conv2d(3, 5, 3, padding=1), (3, 9, 9), np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    layer.backward(np.ones_like(y))
    nbytes = layer._ws.nbytes
    for _ in range(3):
        layer.backward(np.ones_like(layer.forward(x)))
    assert layer._ws.nbytes == nbytes > 0
    assert layer.W.grad.dtype == np.float32


def test_masked_weights_stay_zero_in_training():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 1, 6, 6))
    y = rng.standard_normal((16, 2))
    model = Sequential([Conv2d(1, 3, 3), registry.get("layer", "activation")("tanh"),
                        registry.get("layer", "flatten")(), registry.get("layer", "dense")(2)],
                       random_state=0)
    model.build(X.shape[1:])
    conv = model.layers[0]
    mask = np.ones(conv.W.shape)
    mask[0] = 0
    mask[1, 0, 1, :] = 0
    conv.W.mask = mask
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9})
    first = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=5, batch_size=4)
    assert np.all(conv.W.data[mask == 0] == 0)
    assert model.evaluate(X, y)["loss"] < first


@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
def test_second_order_passes(cls):
    """R-operator HVP = finite-difference HVP; for a single conv layer feeding the loss,
    the Gauss-Newton diagonal equals the exact Hessian diagonal (networks.md §7.2, §7.5)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 6, 5))
    act, flat = registry.get("layer", "activation"), registry.get("layer", "flatten")
    m = Sequential([cls(2, 3, 3, stride=2, padding=1), act("tanh"), cls(3, 2, 2), flat()],
                   random_state=0)
    m.build(X.shape[1:])
    y = rng.standard_normal((3,) + tuple(m.output_shape()))
    v = rng.standard_normal(m.n_parameters())
    a = curvature.hvp(m, "mse", X, y, v)
    b = curvature.hvp(m, "mse", X, y, v, method="finite_difference")
    assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))
    m1 = Sequential([cls(2, 3, 3, stride=2, padding=1), flat()], random_state=0)
    m1.build(X.shape[1:])
    y1 = rng.standard_normal((3,) + tuple(m1.output_shape()))
    d1 = curvature.hessian_diag(m1, "mse", X, y1, method="gauss_newton_diag")
    d2 = curvature.hessian_diag(m1, "mse", X, y1, method="exact")
    np.testing.assert_allclose(d1, d2, rtol=1e-10, atol=1e-12)
