"""Resizing layers (convolution.md §6.2, §8.3): zero_pad2d, crop2d, center_crop (U-Net
skip), upsample_nearest2d (TV-POOL-01) and upsample_bilinear2d (PyTorch conventions)."""
import numpy as np
import pytest

from corenet.testing import check_linear_second_order
import corenet.testing as ct
from corenet import Graph, kernels as K
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers.shape import (CenterCrop, Crop2d, UpsampleBilinear2d, UpsampleNearest2d,
                                  ZeroPad2d, bilinear_matrix)

NAMES = ["zero_pad2d", "crop2d", "center_crop", "upsample_nearest2d", "upsample_bilinear2d"]


@pytest.mark.parametrize("name", NAMES)
def test_layer_contract(name):
    ct.check_registered("layer", name)


def test_zero_pad_and_crop_are_adjoint_inverses():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    pad = ZeroPad2d(((1, 0), (0, 2)))
    y = pad.forward(x)
    assert y.shape == (1, 1, 4, 6)
    np.testing.assert_array_equal(y[0, 0, 0], 0)
    np.testing.assert_array_equal(y[0, 0, 1:, :4], x[0, 0])
    np.testing.assert_array_equal(y[0, 0, :, 4:], 0)
    crop = Crop2d(((1, 0), (0, 2)))
    np.testing.assert_array_equal(crop.forward(y), x)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    np.testing.assert_array_equal(pad.backward(dy), crop.forward(dy))
    np.testing.assert_array_equal(crop.backward(x), y)
    assert ZeroPad2d(2).output_shape((3, 4, 5)) == (3, 8, 9)
    assert Crop2d((1, 2)).output_shape((3, 4, 5)) == (3, 2, 1)
    assert ZeroPad2d(((0, 1), (2, 3))).get_config()["padding"] == [[0, 1], [2, 3]]


def test_pad_crop_errors():
    with pytest.raises(HyperparameterError, match=r"\(top, bottom\), \(left, right\)"):
        ZeroPad2d((1, 1, 2, 2))                     # PyTorch's flat order is refused
    with pytest.raises(HyperparameterError, match=">= 0"):
        Crop2d(-1)
    with pytest.raises(ShapeError, match="leaves nothing"):
        Crop2d(2).forward(np.zeros((1, 1, 4, 6)))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        ZeroPad2d(1).forward(np.zeros((2, 3, 4)))
    with pytest.raises(DTypeError):
        ZeroPad2d(1).forward(np.zeros((1, 1, 2, 2), np.int32))


def test_center_crop_offsets_follow_the_spec():
    x = np.arange(42.0).reshape(1, 1, 7, 6)
    crop = CenterCrop((4, 3))
    y = crop.forward(x)
    # top = floor((7 - 4)/2) = 1, left = floor((6 - 3)/2) = 1
    np.testing.assert_array_equal(y[0, 0], x[0, 0, 1:5, 1:4])
    dx = crop.backward(np.ones_like(y))
    assert dx.sum() == 12 and np.all(dx[0, 0, 1:5, 1:4] == 1)
    np.testing.assert_array_equal(CenterCrop(3).forward(np.arange(8.0).reshape(1, 1, 8)),
                                  [[[2, 3, 4]]])
    with pytest.raises(ShapeError, match="larger"):
        CenterCrop(8).forward(x)
    with pytest.raises(ShapeError, match="spatial axes"):
        CenterCrop((2, 2)).forward(np.zeros((1, 1, 5)))
    with pytest.raises(HyperparameterError, match="size"):
        CenterCrop(0)


def test_unet_skip_with_center_crop_in_a_graph():
    """Encoder map 7x6 → pool → 3x3 → upsample ×2 → 6x6; the skip is centre-cropped to
    6x6 and concatenated on channels (convolution.md §8.3)."""
    g = Graph(inputs=["x"], outputs=["cat"])
    g.add_node("enc", ("activation", {"activation": "tanh"}), "x")
    g.add_node("pool", ("max_pool2d", {"kernel_size": 2}), "enc")
    g.add_node("up", UpsampleNearest2d(2), "pool")
    g.add_node("skip", CenterCrop(), ["enc", "up"])
    g.add_node("cat", ("concat", {"axis": 1}), ["skip", "up"])
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    y = g.forward(x)
    assert y.shape == (2, 6, 6, 6)
    np.testing.assert_allclose(y[:, :3], np.tanh(x)[:, :, :6, :6], rtol=1e-14)  # top=left=0
    ct.check_gradients(g, "mse", x, np.zeros_like(y), atol=1e-10).assert_ok()
    skip = g.nodes["skip"][0]
    assert skip.n_inputs == 2 and skip.get_config()["size"] is None
    dx, dref = skip.backward(np.ones((2, 3, 6, 6)))
    assert dx.shape == (2, 3, 7, 6) and dref.shape == (2, 3, 6, 6) and not dref.any()
    with pytest.raises(ShapeError, match="larger"):
        CenterCrop().build([(1, 4, 4), (1, 5, 4)])


def test_tv_pool_01_nearest_upsampling_and_transposes():
    pooled = np.array([[4.0, 2], [8, 3]])[None, None]
    up = UpsampleNearest2d(2)
    np.testing.assert_array_equal(up.forward(pooled)[0, 0],
                                  [[4, 4, 2, 2], [4, 4, 2, 2], [8, 8, 3, 3], [8, 8, 3, 3]])
    dy = np.random.default_rng(1).standard_normal((2, 3, 6, 4))
    up = UpsampleNearest2d(2)
    up.forward(np.zeros((2, 3, 3, 2)))
    # transpose of 2x2 sum pooling = 4 x average pooling
    np.testing.assert_allclose(up.backward(dy), 4 * K.avg_pool2d_forward(dy, 2), rtol=1e-14)
    avg = UpsampleNearest2d(2, mode="avg_transpose")
    avg.forward(np.zeros((2, 3, 3, 2)))
    np.testing.assert_allclose(avg.backward(dy), K.avg_pool2d_forward(dy, 2), rtol=1e-14)
    np.testing.assert_allclose(UpsampleNearest2d(2, mode="avg_transpose").forward(pooled)
                               [0, 0, :2, :2], [[1, 1], [1, 1]])
    assert UpsampleNearest2d((1, 3)).output_shape((2, 4, 5)) == (2, 4, 15)
    with pytest.raises(HyperparameterError, match="mode"):
        UpsampleNearest2d(2, mode="bilinear")


def test_bilinear_matches_pytorch_values():
    # F.interpolate(tensor([[[[1., 2.]]]]), scale_factor=2, mode="bilinear") in PyTorch
    y = UpsampleBilinear2d(2).forward(np.array([[[[1.0, 2.0]]]]))
    np.testing.assert_allclose(y, [[[[1, 1.25, 1.75, 2], [1, 1.25, 1.75, 2]]]], rtol=1e-12)
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_allclose(UpsampleBilinear2d(2).forward(x)[0, 0],
                               [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5],
                                [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]], rtol=1e-12)
    np.testing.assert_allclose(
        UpsampleBilinear2d(size=(3, 3), align_corners=True).forward(x)[0, 0],
        [[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]], rtol=1e-12)
    # rows of the interpolation matrix are convex weights
    for args in ((5, 10, 2.0), (7, 3, None), (4, 9, None, True)):
        a = bilinear_matrix(*args)
        assert np.all(a >= 0) and np.allclose(a.sum(axis=1), 1)


def test_bilinear_adjoint_shapes_and_errors():
    rng = np.random.default_rng(2)
    layer = UpsampleBilinear2d(scale_factor=(1.5, 2))
    x = rng.standard_normal((2, 3, 5, 4))
    y = layer.forward(x)
    assert y.shape == (2, 3, 7, 8)
    dy = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, dy), np.vdot(x, layer.backward(dy)))
    f32 = UpsampleBilinear2d(2)
    assert f32.forward(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(HyperparameterError, match="scale_factor"):
        UpsampleBilinear2d(0)
    with pytest.raises(HyperparameterError, match="size"):
        UpsampleBilinear2d(size=(0, 2))
    with pytest.raises(ShapeError, match="empty"):
        UpsampleBilinear2d(0.1).forward(np.zeros((1, 1, 3, 3)))


# ----------------------------------------------------------------------------- second order
@pytest.mark.parametrize("make,shapes", [
    (lambda: ZeroPad2d(((1, 0), (0, 2))), [(1, 2, 3)]), (lambda: Crop2d(1), [(2, 3, 4)]),
    (lambda: CenterCrop((2, 3)), [(1, 5, 4)]), (lambda: CenterCrop(), [(2, 4, 3), (1, 2, 2)]),
    (lambda: UpsampleNearest2d(2), [(1, 2, 3)]),
    (lambda: UpsampleNearest2d((2, 1), mode="avg_transpose"), [(2, 2, 2)]),
    (lambda: UpsampleBilinear2d(2), [(1, 2, 3)]),
    (lambda: UpsampleBilinear2d(size=(3, 2), align_corners=True), [(1, 4, 3)])])
def test_second_order_passes(make, shapes):
    rng = np.random.default_rng(6)
    check_linear_second_order(make(), [rng.standard_normal((2,) + s) for s in shapes])
