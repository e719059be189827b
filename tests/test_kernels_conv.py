"""Compiled convolution kernels vs their NumPy twins (corenet._reference) on random
geometries, the spec vectors TV-CONV-01..08 and TV-SIZE-01, the second-order formulas of
networks.md §7.2/§7.5 (conv rows), thread independence and input validation."""
import numpy as np
import pytest
from scipy.signal import convolve2d

from corenet import _reference as R
from corenet import config, kernels as K
from corenet._kernels import conv_direct as _direct
from corenet.kernels import conv_plan as KP
from corenet.errors import DTypeError, HyperparameterError, ShapeError

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def two_threads():
    old = config.get_num_threads()
    config.set_num_threads(2)
    yield
    config.set_num_threads(old)


def close(got, ref, dtype):
    """float64: rtol 1e-12; float32: rtol 1e-5 with atol 1e-5 of the result's scale (BLAS
    float32 sums of many products lose absolute, not relative, accuracy near 0)."""
    assert got.dtype == dtype and got.shape == ref.shape
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * scale)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale)


# (N, C, H, W, O, kernel, stride, padding ((t, b), (l, r)), dilation, groups)
CASES = [
    (2, 3, 7, 9, 4, (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    (1, 1, 5, 5, 1, (2, 3), (1, 1), ((1, 1), (0, 2)), (1, 1), 1),      # batch 1, 1 channel
    (3, 4, 9, 8, 6, (3, 2), (2, 3), ((1, 2), (1, 0)), (1, 2), 2),      # groups, stride, dil
    (2, 6, 11, 7, 3, (5, 1), (3, 1), ((2, 2), (0, 0)), (2, 1), 3),     # rows never reached
    (5, 2, 6, 6, 4, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),      # 1x1 direct path
    (2, 4, 6, 5, 4, (1, 1), (2, 1), ((0, 1), (0, 0)), (1, 1), 4),      # 1x1 strided, depthwise
    (17, 3, 8, 7, 5, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),     # > 16 samples: chunks
    (2, 2, 4, 4, 2, (4, 4), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),      # output 1x1
    (3, 2, 9, 10, 7, (3, 2), (1, 1), ((2, 1), (1, 3)), (2, 3), 1),     # stride 1, dilated
    (2, 3, 12, 40, 13, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),   # wide rows, O tails
    (3, 13, 5, 16, 33, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),   # 16-wide rows, wide dW
    (2, 5, 4, 16, 70, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),    # wide dW: 4 + 1 vectors
]


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def case_arrays(case, dtype):
    n, c, h, w, o, k, s, p, d, g = case
    x = rand((n, c, h, w), dtype, 1)
    wt = rand((o, c // g) + k, dtype, 2)
    b = rand((o,), dtype, 3)
    geom = dict(stride=s, padding=p, dilation=d, groups=g)
    return x, wt, b, geom


@pytest.fixture(params=["auto", "im2col_tiled", "im2col_block", "shift", "direct",
                        "direct_avx2"])
def method(request, monkeypatch):
    """auto: the facade's choice; im2col_tiled: im2col one output row per tile;
    im2col_block: im2col over blocks of whole samples; shift: the shifted-GEMM method for
    every stride-1 forward-role pass (conv forward and weight gradient, transposed-conv
    backward); direct / direct_avx2: the direct float32 loops (AVX-512F / AVX2) for every
    stride-1, one-group pass they can take. The non-direct methods switch the direct
    loops off, so float32 runs through the GEMM paths too."""
    p = request.param
    if p != "auto" and not p.startswith("direct"):
        monkeypatch.setattr(KP, "_CONV_DIRECT", False)
    if p == "im2col_tiled":
        monkeypatch.setattr(KP, "_CONV_TILE", 1)
        monkeypatch.setattr(KP, "_CONV_BLOCK", 0)
        monkeypatch.setattr(KP, "_CONV_SHIFT_MIN", 10 ** 9)
    elif p == "im2col_block":
        monkeypatch.setattr(KP, "_CONV_BLOCK", 1 << 30)
        monkeypatch.setattr(KP, "_CONV_DIRECT_MIN_HW", 1 << 30)
        monkeypatch.setattr(KP, "_CONV_SHIFT_MIN", 10 ** 9)
    elif p == "shift":
        monkeypatch.setattr(KP, "_CONV_SHIFT_MIN", 1)
        monkeypatch.setattr(KP, "_CONV_SHIFT_WIDEN", float("inf"))
    elif p.startswith("direct"):
        if _direct.isa() < (1 if p == "direct_avx2" else 2):
            pytest.skip("the CPU lacks the instruction set of these loops")
        monkeypatch.setattr(KP, "_DIRECT_WIDEN", float("inf"))
        monkeypatch.setattr(KP, "_DIRECT_BLOCK", 1)     # weight-gradient blocks of 1 sample
        if p == "direct_avx2":
            old = _direct.set_isa(1)
            request.addfinalizer(lambda: _direct.set_isa(old))
    return p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_conv2d_kernels_vs_reference(case, dtype, method):
    x, w, b, geom = case_arrays(case, dtype)
    y = K.conv2d_forward(x, w, b, **geom)
    close(y, R.conv2d_forward(x, w, b, **geom), dtype)
    close(K.conv2d_forward(x, w, **geom), R.conv2d_forward(x, w, None, **geom), dtype)
    dy = rand(y.shape, dtype, 4)
    dx, dw, db = K.conv2d_backward(x, dy, w, **geom)
    ref_dx = R.conv2d_input_grad(dy, w, x.shape[2:], **geom)
    ref_dw = R.conv2d_weight_grad(x, dy, w.shape[2:], **geom)
    close(dx, ref_dx, dtype)
    close(dw, ref_dw, dtype)
    close(db, R.conv_bias_grad(dy), dtype)
    close(K.conv2d_input_grad(dy, w, x.shape[2:], **geom), ref_dx, dtype)
    close(K.conv2d_weight_grad(x, dy, w.shape[2:], **geom), ref_dw, dtype)
    _, dw_only, none = K.conv2d_backward(x, dy, w, need_input_grad=False,
                                         need_bias_grad=False, **geom)
    assert none is None
    close(dw_only, ref_dw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose2d_kernels_vs_reference(case, dtype, method):
    n, c, h, w, o, k, s, p, d, g = case
    x = rand((n, o, h, w), dtype, 5)                 # transposed: C_in = o
    wt = rand((o, c // g) + k, dtype, 6)             # (C_in, C_out/groups, kh, kw)
    b = rand((c,), dtype, 7)
    op = tuple(min(1, max(si, di) - 1) for si, di in zip(s, d))
    geom = dict(stride=s, padding=p, dilation=d, groups=g)
    y = K.conv_transpose2d_forward(x, wt, b, output_padding=op, **geom)
    close(y, R.conv_transpose2d_forward(x, wt, b, output_padding=op, **geom), dtype)
    dy = rand(y.shape, dtype, 8)
    dx, dw, db = K.conv_transpose2d_backward(x, dy, wt, output_padding=op, **geom)
    rdx, rdw, rdb = R.conv_transpose2d_backward(x, dy, wt, **geom)
    close(dx, rdx, dtype)
    close(dw, rdw, dtype)
    close(db, rdb, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv1d_kernels_vs_2d_reference(dtype, method):
    x = rand((3, 4, 13), dtype, 1)
    w = rand((6, 2, 3), dtype, 2)
    b = rand((6,), dtype, 3)
    geom = dict(stride=2, padding=(2, 1), dilation=2, groups=2)
    geom2 = dict(stride=(1, 2), padding=((0, 0), (2, 1)), dilation=(1, 2), groups=2)
    y = K.conv1d_forward(x, w, b, **geom)
    close(y, R.conv2d_forward(x[:, :, None], w[:, :, None], b, **geom2)[:, :, 0], dtype)
    dy = rand(y.shape, dtype, 4)
    dx, dw, db = K.conv1d_backward(x, dy, w, **geom)
    close(dx, R.conv2d_input_grad(dy[:, :, None], w[:, :, None], (1, 13), **geom2)[:, :, 0],
          dtype)
    close(dw, R.conv2d_weight_grad(x[:, :, None], dy[:, :, None], (1, 3), **geom2)[:, :, 0],
          dtype)
    close(K.conv1d_input_grad(dy, w, 13, **geom), dx, dtype)
    close(K.conv1d_weight_grad(x, dy, 3, **geom), dw, dtype)
    # transposed 1-D
    xt = rand((3, 6, 5), dtype, 5)
    yt = K.conv_transpose1d_forward(xt, w, b[:4], output_padding=1, **geom)
    ref = R.conv_transpose2d_forward(xt[:, :, None], w[:, :, None], b[:4],
                                     output_padding=(0, 1), **geom2)[:, :, 0]
    close(yt, ref, dtype)
    dyt = rand(yt.shape, dtype, 6)
    got = K.conv_transpose1d_backward(xt, dyt, w, output_padding=1, **geom)
    refs = R.conv_transpose2d_backward(xt[:, :, None], dyt[:, :, None], w[:, :, None],
                                       **geom2)
    close(got[0], refs[0][:, :, 0], dtype)
    close(got[1], refs[1][:, :, 0], dtype)


@pytest.mark.parametrize("n", [17, 1])
def test_results_do_not_depend_on_thread_count(method, n):
    """Bitwise equal results for 1, 2 and 3 threads (BLAS runs single-threaded inside the
    passes; a batch of one sample is one work item)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((n, 8, 20, 19)), rng.standard_normal((16, 8, 3, 3))
    b, dy = rng.standard_normal(16), rng.standard_normal((n, 16, 18, 17))
    _same_for_every_thread_count(x, w, b, dy)
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    _same_for_every_thread_count(*f32)


def _same_for_every_thread_count(x, w, b, dy):
    outs = []
    for nt in (1, 2, 3):
        config.set_num_threads(nt)
        outs.append((K.conv2d_forward(x, w, b),) + K.conv2d_backward(x, dy, w)
                    + (K.conv2d_weight_grad(x, dy, (3, 3)),))
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            np.testing.assert_array_equal(a, b_)


def test_workspace_is_reused(method):
    x, w, b, geom = case_arrays(CASES[0], np.float32)
    ws = K.Workspace()
    y = K.conv2d_forward(x, w, b, workspace=ws, **geom)
    K.conv2d_backward(x, np.ones_like(y), w, workspace=ws, **geom)
    ids = {k: id(v) for k, v in ws._buffers.items()}
    nbytes = ws.nbytes
    for _ in range(3):
        K.conv2d_forward(x, w, b, workspace=ws, out=y, **geom)
        K.conv2d_backward(x, np.ones_like(y), w, workspace=ws, **geom)
    assert ws.nbytes == nbytes and {k: id(v) for k, v in ws._buffers.items()} == ids
    with pytest.raises(TypeError, match="Workspace"):
        K.conv2d_forward(x, w, workspace=np.empty(10, np.float32), **geom)


# ----------------------------------------------------------------------------- spec vectors
@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_01_02(dtype):
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0],
                  [0, 1, 1, 0, 0]], dtype)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype)
    y = K.conv2d_forward(x[None, None], k[None, None])[0, 0]
    np.testing.assert_array_equal(y, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    np.testing.assert_array_equal(K.convolve_true(x, k), y)
    x = np.arange(1, 17, dtype=dtype).reshape(4, 4)
    h = np.array([[1, 2, 0], [0, 1, 0], [0, 0, -1]], dtype)
    np.testing.assert_array_equal(K.convolve_true(x, h, "valid"), [[36, 39], [48, 51]])
    np.testing.assert_array_equal(K.conv2d_forward(x[None, None], h[None, None])[0, 0],
                                  [[0, 3], [12, 15]])
    np.testing.assert_array_equal(K.convolve_true(x, h, "same"),
                                  [[17, 21, 25, 20], [33, 36, 39, 29], [49, 48, 51, 37],
                                   [13, 5, 5, 5]])


@pytest.mark.parametrize("kshape", [(3, 3), (2, 2), (4, 1), (3, 2), (1, 1)])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_convolve_true_matches_scipy(kshape, mode):
    x = rand((6, 7), np.float64, 1)
    h = rand(kshape, np.float64, 2)
    want = convolve2d(x, h, mode=mode)
    np.testing.assert_allclose(K.convolve_true(x, h, mode), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.convolve_true(x, h, mode), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_03_stride_padding(dtype):
    x = np.arange(1, 17, dtype=dtype).reshape(1, 1, 4, 4)
    w = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype).reshape(1, 1, 3, 3)
    b = np.array([0.5], dtype)
    y = K.conv2d_forward(x, w, b, stride=2, padding=1)
    np.testing.assert_array_equal(y[0, 0], [[-9.5, -5.5], [-39.5, -7.5]])
    dy = np.array([[1, 2], [3, 4]], dtype).reshape(1, 1, 2, 2)
    dx, dw, db = K.conv2d_backward(x, dy, w, stride=2, padding=1)
    np.testing.assert_array_equal(dx[0, 0], [[0, 2, 0, -4], [0, 2, 0, -6], [0, 2, 0, -8],
                                             [0, 1, 0, -4]])
    np.testing.assert_array_equal(dw[0, 0], [[24, 43, 50], [44, 78, 88], [68, 118, 128]])
    np.testing.assert_array_equal(db, [10])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_04_dilation(dtype):
    x = np.arange(25, dtype=dtype).reshape(1, 1, 5, 5)
    w = np.array([[1, 2], [3, 4]], dtype).reshape(1, 1, 2, 2)
    y = K.conv2d_forward(x, w, dilation=2)
    np.testing.assert_array_equal(y[0, 0], [[82, 92, 102], [132, 142, 152], [182, 192, 202]])
    dx, dw, _ = K.conv2d_backward(x, np.ones_like(y), w, dilation=2)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 3, 2, 2], [1, 1, 3, 2, 2],
                                             [4, 4, 10, 6, 6], [3, 3, 7, 4, 4],
                                             [3, 3, 7, 4, 4]])
    np.testing.assert_array_equal(dw[0, 0], [[54, 72], [144, 162]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_05_channels(dtype):
    x = np.array([[[1, 2, 0], [0, 1, 3], [2, 1, 1]], [[0, 1, 1], [1, 0, 2], [3, 1, 0]]],
                 dtype)[None]
    w = np.array([[[[1, 0], [0, -1]], [[2, 1], [0, 1]]],
                  [[[0, 1], [1, 0]], [[-1, 0], [1, 1]]]], dtype)
    b = np.array([0, 1], dtype)
    y = K.conv2d_forward(x, w, b)
    np.testing.assert_array_equal(y[0], [[[1, 4], [2, 2]], [[4, 3], [7, 6]]])
    dx, dw, db = K.conv2d_backward(x, np.ones_like(y), w)
    np.testing.assert_array_equal(dx[0], [[[1, 2, 1], [2, 2, 0], [1, 0, -1]],
                                          [[1, 2, 1], [2, 5, 3], [1, 3, 2]]])
    for o in range(2):
        np.testing.assert_array_equal(dw[o, 0], [[4, 6], [4, 6]])
        np.testing.assert_array_equal(dw[o, 1], [[2, 4], [5, 3]])
    np.testing.assert_array_equal(db, [4, 4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_06_1d(dtype):
    x = np.arange(1, 6, dtype=dtype).reshape(1, 1, 5)
    w = np.array([1, 0, -1], dtype).reshape(1, 1, 3)
    y = K.conv1d_forward(x, w, padding=1)
    np.testing.assert_array_equal(y[0, 0], [-2, -2, -2, -2, 4])
    dx, dw, _ = K.conv1d_backward(x, np.ones_like(y), w, padding=1)
    np.testing.assert_array_equal(dx[0, 0], [1, 0, 0, 0, -1])
    np.testing.assert_array_equal(dw[0, 0], [10, 15, 14])
    x = np.arange(1, 7, dtype=dtype).reshape(1, 1, 6)
    w = np.ones((1, 1, 3), dtype)
    y = K.conv1d_forward(x, w, stride=2)
    np.testing.assert_array_equal(y[0, 0], [6, 12])
    dx, dw, _ = K.conv1d_backward(x, np.ones_like(y), w, stride=2)
    np.testing.assert_array_equal(dx[0, 0], [1, 1, 2, 1, 1, 0])      # x[5] unused (D-19)
    np.testing.assert_array_equal(dw[0, 0], [4, 6, 8])


def test_tv_conv_07_toeplitz_weight_sharing():
    """A dense layer tied to a filter is a (full-padded, truncated) 1-D correlation; the
    shared-weight gradient sums δxᵀ along the sub-diagonals."""
    h = np.array([1.0, 2.0, 3.0])
    x = np.array([1.0, -1.0, 2.0, 0.0, 1.0])
    delta = np.array([1.0, 0.0, -1.0, 2.0, 1.0])
    # W_ij = h_{i-j} (1-based): y_i = Σ_k h_k x_{i-k} = true convolution, first 5 outputs
    y = K.conv1d_forward(x.reshape(1, 1, 5), h[::-1].copy().reshape(1, 1, 3),
                         padding=(3, 0))[0, 0, :5]
    np.testing.assert_array_equal(y, [0, 1, 1, 3, 1])
    # ∂c/∂h_k = Σ_i δ_i x_{i−k}: correlation of the shifted input with δ
    g = K.conv1d_weight_grad(x.reshape(1, 1, 5), np.append(delta, 0.0).reshape(1, 1, 6), 3,
                             padding=(3, 0))[0, 0]
    # the tap index p multiplies x[i + p − 3] = x_{i−k} with k = 3 − p
    np.testing.assert_array_equal(g[::-1], [5, -1, 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_08_transposed(dtype):
    X = np.array([[1, 2], [3, 4]], dtype).reshape(1, 1, 2, 2)
    W = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(
        K.conv_transpose2d_forward(X, W, stride=2)[0, 0],
        [[1, 2, 5, 4, 6], [4, 5, 14, 10, 12], [10, 14, 36, 24, 30], [12, 15, 34, 20, 24],
         [21, 24, 55, 32, 36]])
    np.testing.assert_array_equal(
        K.conv_transpose2d_forward(X, W)[0, 0],
        [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]])
    np.testing.assert_array_equal(
        K.conv_transpose2d_forward(X, W, stride=2, padding=1, output_padding=1)[0, 0],
        [[5, 14, 10, 12], [14, 36, 24, 30], [15, 34, 20, 24], [24, 55, 32, 36]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_conv_08_adjoint(dtype):
    a = rand((2, 3, 5, 4), dtype, 1)
    W = rand((4, 3, 3, 3), dtype, 2)
    geom = dict(stride=2, padding=1)
    y = K.conv2d_forward(a, W, **geom)
    b = rand(y.shape, dtype, 3)
    back = K.conv_transpose2d_forward(b, W, output_padding=(0, 1), **geom)
    assert back.shape == a.shape
    lhs, rhs = float(np.sum(y * b, dtype=np.float64)), float(np.sum(a * back, dtype=np.float64))
    assert abs(lhs - rhs) <= (1e-12 if dtype == np.float64 else 1e-5) * max(1.0, abs(lhs))
    close(K.conv2d_backward(a, b, W, **geom)[0], back, dtype)


def test_tv_size_01():
    for (h, k, p, s), want in [((32, 5, 0, 1), 28), ((28, 5, 0, 1), 24), ((14, 5, 0, 1), 10),
                               ((5, 5, 0, 1), 1), ((7, 3, 1, 2), 4), ((28, 5, 2, 1), 28),
                               ((6, 3, 0, 2), 2)]:
        assert K.conv_output_size(h, k, s, (p, p)) == want
        y = K.conv1d_forward(np.zeros((1, 1, h)), np.zeros((1, 1, k)), stride=s, padding=p)
        assert y.shape == (1, 1, want)
    x = np.zeros((1, 2, 7, 6))
    w = np.zeros((3, 2, 3, 3))
    for (s, p, d), want in [((1, 0, 1), (3, 5, 4)), ((2, 1, 1), (3, 4, 3)),
                            ((1, 2, 2), (3, 7, 6)), ((2, 0, 2), (3, 2, 1))]:
        assert K.conv2d_forward(x, w, stride=s, padding=p, dilation=d).shape[1:] == want


def test_padding_forms():
    assert K.conv_padding("same", (4, 3), 1, (1, 2)) == ((1, 2), (2, 2))   # D-69
    assert K.conv_padding("full", 3, 1, 2) == ((4, 4), (4, 4))
    assert K.conv_padding("valid", 3) == ((0, 0), (0, 0))
    assert K.conv_padding((1, 2), 3) == ((1, 1), (2, 2))
    assert K.conv_padding(((1, 0), (0, 2)), 3) == ((1, 0), (0, 2))
    assert K.conv_padding((1, 2), 3, nd=1) == ((1, 2),)
    assert K.conv_padding(2, 3, nd=1) == ((2, 2),)
    x = rand((2, 3, 6, 7), np.float64, 0)
    w = rand((2, 3, 4, 3), np.float64, 1)
    y = K.conv2d_forward(x, w, padding="same")
    assert y.shape == (2, 2, 6, 7)
    close(y, R.conv2d_forward(x, w, None, padding=((1, 2), (1, 1))), np.float64)
    assert K.conv2d_forward(x, w, padding="full").shape == (2, 2, 9, 9)
    for bad in ("half", -1, (1, 2, 3), ((1, 2, 3), (0, 0)), 1.5, True):
        with pytest.raises(HyperparameterError):
            K.conv2d_forward(x, w, padding=bad)
    with pytest.raises(HyperparameterError, match="stride 1"):
        K.conv2d_forward(x, w, padding="same", stride=2)


# ----------------------------------------------------------------------------- second order
def test_gauss_newton_diag_formulas():
    """networks.md §7.5 conv rows: diag w[o,c,p,q] = Σ_{n,i,j} h[n,o,i,j]·x_pad[...]²,
    bias Σ h, input h_x = convT(h, W ⊙ W), written out by explicit loops."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6))
    w = rng.standard_normal((3, 2, 3, 2))
    s, pad, d = (2, 1), ((1, 1), (0, 1)), (1, 2)
    y = K.conv2d_forward(x, w, stride=s, padding=pad, dilation=d)
    h = rng.random(y.shape)
    xp = np.pad(x, ((0, 0), (0, 0), pad[0], pad[1]))
    diag = np.zeros_like(w)
    hx_pad = np.zeros_like(xp)
    for n, o, i, j, c, p, q in np.ndindex(2, 3, y.shape[2], y.shape[3], 2, 3, 2):
        r, col = i * s[0] + p * d[0], j * s[1] + q * d[1]
        diag[o, c, p, q] += h[n, o, i, j] * xp[n, c, r, col] ** 2
        hx_pad[n, c, r, col] += w[o, c, p, q] ** 2 * h[n, o, i, j]
    geom = dict(stride=s, padding=pad, dilation=d)
    np.testing.assert_allclose(K.conv2d_weight_grad(x * x, h, (3, 2), **geom), diag,
                               rtol=1e-12)
    np.testing.assert_allclose(K.conv2d_input_grad(h, w * w, (5, 6), **geom),
                               hx_pad[:, :, 1:6, 0:6], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(K.conv_bias_grad(h), h.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_r_operator_rules_match_finite_differences():
    """networks.md §7.2 conv rows on L = ½‖conv(tanh(conv(X, W1)), W2) − T‖²: the
    R-forward/R-backward built from the kernels equals the central difference of the
    gradient along (V1, V2)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 2, 7, 6))
    W1, W2 = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((2, 3, 2, 2))
    V1, V2 = rng.standard_normal(W1.shape), rng.standard_normal(W2.shape)
    g1 = dict(stride=2, padding=1)
    g2 = dict(dilation=(1, 2), padding=((0, 1), (1, 0)))
    T = rng.standard_normal(K.conv2d_forward(
        np.tanh(K.conv2d_forward(X, W1, **g1)), W2, **g2).shape)

    def grads(w1, w2):
        s1 = K.conv2d_forward(X, w1, **g1)
        a = np.tanh(s1)
        y = K.conv2d_forward(a, w2, **g2)
        da, dw2, _ = K.conv2d_backward(a, y - T, w2, **g2)
        ds = da * (1 - a * a)
        return K.conv2d_weight_grad(X, ds, (3, 3), **g1), dw2

    s1 = K.conv2d_forward(X, W1, **g1)
    a = np.tanh(s1)
    y = K.conv2d_forward(a, W2, **g2)
    s1_dot = K.conv2d_forward(X, V1, **g1)                     # Ẋ = 0 at the input
    a_dot = (1 - a * a) * s1_dot
    y_dot = K.conv2d_forward(a_dot, W2, **g2) + K.conv2d_forward(a, V2, **g2)
    dy, dy_dot = y - T, y_dot
    rw2 = K.conv2d_weight_grad(a, dy_dot, (2, 2), **g2) + K.conv2d_weight_grad(a_dot, dy,
                                                                               (2, 2), **g2)
    da = K.conv2d_input_grad(dy, W2, a.shape[2:], **g2)
    da_dot = K.conv2d_input_grad(dy_dot, W2, a.shape[2:], **g2) + \
        K.conv2d_input_grad(dy, V2, a.shape[2:], **g2)
    ds_dot = da_dot * (1 - a * a) + da * (-2 * a * (1 - a * a)) * s1_dot
    rw1 = K.conv2d_weight_grad(X, ds_dot, (3, 3), **g1)
    eps = 1e-5
    gp, gm = grads(W1 + eps * V1, W2 + eps * V2), grads(W1 - eps * V1, W2 - eps * V2)
    for r, p_, m_ in zip((rw1, rw2), gp, gm):
        fd = (p_ - m_) / (2 * eps)
        assert np.max(np.abs(r - fd)) <= 1e-7 * max(1.0, np.max(np.abs(fd)))


# ----------------------------------------------------------------------------- validation
def test_bad_inputs_raise_clear_errors():
    x = rand((2, 3, 6, 6), np.float64, 0)
    w = rand((4, 3, 3, 3), np.float64, 1)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        K.conv2d_forward(x[0], w)
    with pytest.raises(ShapeError, match="4 dimensions"):
        K.conv2d_forward(x, w[0])
    with pytest.raises(ShapeError, match="channels"):
        K.conv2d_forward(x[:, :2].copy(), w)
    with pytest.raises(ShapeError, match="groups=2"):
        K.conv2d_forward(x, rand((4, 1, 3, 3), np.float64, 2), groups=2)   # 3 % 2
    with pytest.raises(ShapeError, match="groups=3"):
        K.conv2d_forward(x, rand((4, 1, 3, 3), np.float64, 2), groups=3)   # 4 % 3
    with pytest.raises(ValueError, match="larger than the padded input"):
        K.conv2d_forward(x, rand((4, 3, 7, 3), np.float64, 2))
    with pytest.raises(ValueError, match="larger than the padded input"):
        K.conv2d_forward(x, w, dilation=3)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.conv2d_forward(x[:, :, ::2], w)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.conv2d_forward(x, np.asfortranarray(w))
    with pytest.raises(DTypeError):
        K.conv2d_forward(x.astype(np.int64), w)
    with pytest.raises(DTypeError):
        K.conv2d_forward(x, w.astype(np.float32))
    with pytest.raises(DTypeError):
        K.conv2d_forward(x.tolist(), w)
    with pytest.raises(ShapeError):
        K.conv2d_forward(x, w, np.zeros(3))                 # bias length
    with pytest.raises(ShapeError):
        K.conv2d_forward(x, w, out=np.empty((2, 4, 5, 5)))
    for bad in (dict(stride=0), dict(dilation=-1), dict(groups=0), dict(stride=(1, 2, 3)),
                dict(stride=1.0)):
        with pytest.raises(HyperparameterError):
            K.conv2d_forward(x, w, **bad)
    y = K.conv2d_forward(x, w)
    with pytest.raises(ShapeError, match="dy must have shape"):
        K.conv2d_backward(x, y[:, :, :3].copy(), w)
    with pytest.raises(ShapeError):
        K.conv2d_input_grad(y, w, (7, 9))
    with pytest.raises(ShapeError):
        K.conv2d_weight_grad(x, y, (2, 2))
    # transposed
    with pytest.raises(ShapeError, match="C_in"):
        K.conv_transpose2d_forward(x, rand((2, 3, 3, 3), np.float64, 3))
    with pytest.raises(HyperparameterError, match="output_padding"):
        K.conv_transpose2d_forward(x, rand((3, 2, 3, 3), np.float64, 3), output_padding=1)
    with pytest.raises(HyperparameterError, match="padding"):
        K.conv_transpose2d_forward(x, rand((3, 2, 3, 3), np.float64, 3), padding="same")
    with pytest.raises(ShapeError, match="< 1"):
        K.conv_transpose2d_forward(x[:, :, :1, :1].copy(), rand((3, 2, 1, 1), np.float64, 3),
                                   padding=1)
    with pytest.raises(HyperparameterError):
        K.convolve_true(x[0, 0], w[0, 0], "circular")


def test_empty_batch_out_buffer_and_overlap():
    w = rand((2, 3, 3, 3), np.float64, 0)
    x0 = np.zeros((0, 3, 5, 5))
    assert K.conv2d_forward(x0, w).shape == (0, 2, 3, 3)
    dx, dw, db = K.conv2d_backward(x0, np.zeros((0, 2, 3, 3)), w)
    assert dx.shape == x0.shape and not dw.any() and not db.any()
    assert K.conv_transpose2d_forward(np.zeros((0, 2, 3, 3)), w).shape == (0, 3, 5, 5)
    x = rand((2, 3, 5, 5), np.float64, 1)
    out = np.full((2, 2, 3, 3), np.nan)
    assert K.conv2d_forward(x, w, out=out) is out
    close(out, R.conv2d_forward(x, w), np.float64)
    with pytest.raises(ValueError, match="overlap"):
        K.conv2d_forward(x, w, out=x.reshape(-1)[:36].reshape(2, 2, 3, 3))
    with pytest.raises(ShapeError, match=">= 1"):
        K.conv2d_forward(np.zeros((1, 0, 5, 5)), np.zeros((2, 0, 3, 3)))
