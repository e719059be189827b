"""Compiled pooling / unpooling / nearest-upsampling kernels vs their NumPy twins
(corenet._reference), spec vectors TV-POOL-01..04 and TV-SIZE-01, the D-20 tie and NaN
rules, thread-count independence and input validation."""
import numpy as np
import pytest

from corenet import _reference as R
from corenet import config, kernels as K
from corenet._kernels import pool as _pool
from corenet.errors import DTypeError, HyperparameterError, ShapeError

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
DTYPES = [np.float32, np.float64]

# (x shape, kernel, stride, padding ((top, bottom), (left, right)))
CASES = [
    ((2, 3, 4, 4), (2, 2), (2, 2), ((0, 0), (0, 0))),     # the 2x2 fast path
    ((2, 3, 7, 5), (2, 2), (2, 2), ((0, 0), (0, 0))),     # fast path, odd sizes (floor)
    ((1, 1, 5, 7), (3, 2), (1, 2), ((1, 1), (0, 1))),     # batch 1, channel 1, non-square
    ((3, 2, 9, 6), (3, 3), (2, 2), ((1, 1), (1, 1))),     # overlap (stride < kernel) + pad
    ((2, 2, 6, 9), (2, 4), (1, 3), ((1, 0), (2, 2))),     # asymmetric padding
    ((1, 4, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1))),     # "same"-like, heavy overlap
    ((2, 1, 1, 11), (1, 3), (1, 2), ((0, 0), (1, 1))),    # 1-D pooling as H = 1
    ((1, 2, 5, 5), (5, 5), (1, 1), ((0, 0), (0, 0))),     # window = whole plane
    ((4, 8, 33, 35), (3, 2), (2, 2), ((1, 0), (1, 1))),   # threaded path (> PARALLEL_MIN)
    ((4, 8, 34, 36), (2, 2), (2, 2), ((0, 0), (0, 0))),   # threaded fast path
]
IDS = [f"{s}-k{k}-s{st}-p{p}" for s, k, st, p in CASES]


@pytest.fixture(autouse=True)
def two_threads():
    """2 threads, with a serial threshold small enough for the last cases to be threaded."""
    old = config.get_num_threads()
    config.set_num_threads(2)
    old_min = _pool._set_parallel_min(32768)
    yield
    _pool._set_parallel_min(old_min)
    config.set_num_threads(old)


def test_threaded_cases_exceed_parallel_threshold():
    assert np.prod(CASES[-1][0]) > _pool.PARALLEL_MIN
    assert np.prod(CASES[-2][0]) > _pool.PARALLEL_MIN


def _x(shape, dtype, seed=0, kind="normal"):
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool_vs_reference(case, kind, dtype):
    shape, k, s, p = case
    x = _x(shape, dtype, kind=kind)
    y, sw = K.max_pool2d_forward(x, k, s, p)
    yr, swr = R.max_pool2d_forward(x, k, s, p)
    assert y.dtype == dtype and sw.dtype == np.int64 and y.shape == yr.shape
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_array_equal(sw, swr)          # D-20: exactly the same switches
    dy = _x(y.shape, dtype, seed=1)
    dx = K.max_pool2d_backward(dy, sw, shape)
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, R.max_pool2d_backward(dy, sw, shape), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool_vs_reference(case, include_pad, dtype):
    shape, k, s, p = case
    x = _x(shape, dtype)
    y = K.avg_pool2d_forward(x, k, s, p, include_pad)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, R.avg_pool2d_forward(x, k, s, p, include_pad), **TOL[dtype])
    dy = _x(y.shape, dtype, seed=1)
    dx = K.avg_pool2d_backward(dy, shape, k, s, p, include_pad)
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, R.avg_pool2d_backward(dy, shape, k, s, p, include_pad),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unpool_vs_reference(case, dtype):
    shape, k, s, p = case
    x = _x(shape, dtype)
    y, sw = K.max_pool2d_forward(x, k, s, p)
    up = K.max_unpool2d_forward(y, sw, shape[2:])
    np.testing.assert_array_equal(up, R.max_unpool2d_forward(y, sw, shape[2:]))
    dup = _x(shape, dtype, seed=2)
    dy = K.max_unpool2d_backward(dup, sw)
    np.testing.assert_array_equal(dy, R.max_unpool2d_backward(dup, sw))
    # exact gradient even when overlapping windows repeat switches: the adjoint identity
    np.testing.assert_allclose(np.vdot(up.astype(np.float64), dup),
                               np.vdot(y.astype(np.float64), dy), **TOL[np.float32])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["copy", "avg_transpose"])
@pytest.mark.parametrize("shape,scale", [((1, 1, 1, 1), 2), ((2, 3, 3, 5), 2),
                                         ((1, 2, 4, 3), (3, 1)), ((3, 5, 40, 41), (2, 3))])
def test_upsample_nearest_vs_reference(shape, scale, mode, dtype):
    x = _x(shape, dtype)
    y = K.upsample_nearest2d_forward(x, scale, mode)
    np.testing.assert_allclose(y, R.upsample_nearest2d_forward(x, scale, mode), **TOL[dtype])
    dy = _x(y.shape, dtype, seed=3)
    dx = K.upsample_nearest2d_backward(dy, scale, mode)
    np.testing.assert_allclose(dx, R.upsample_nearest2d_backward(dy, scale, mode), **TOL[dtype])
    # adjoint: <up(x), dy> = <x, up^T(dy)>
    np.testing.assert_allclose(np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), dx),
                               rtol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("case", CASES[:6], ids=IDS[:6])
def test_pooling_backward_is_the_adjoint(case):
    shape, k, s, p = case
    x, rng = _x(shape, np.float64), np.random.default_rng(5)
    y = K.avg_pool2d_forward(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, dy), np.vdot(x, K.avg_pool2d_backward(dy, shape, k, s, p)))
    y, sw = K.max_pool2d_forward(x, k, s, p)          # linear in x for fixed switches
    assert np.isclose(np.vdot(y, dy), np.vdot(x, K.max_pool2d_backward(dy, sw, shape)))


def test_results_do_not_depend_on_thread_count():
    shape, k, s, p = CASES[-2]
    x = _x(shape, np.float32)
    outs = []
    for n in (1, 2, 3):
        config.set_num_threads(n)
        y, sw = K.max_pool2d_forward(x, k, s, p)
        dx = K.max_pool2d_backward(y, sw, shape)
        a = K.avg_pool2d_forward(x, k, s, p)
        da = K.avg_pool2d_backward(a, shape, k, s, p)
        outs.append((y, sw, dx, a, da))
    for other in outs[1:]:
        for u, v in zip(outs[0], other):
            assert np.array_equal(u, v)


# ----------------------------------------------------------------------------- spec vectors
X1 = np.array([[1, 3, 2, 1], [4, 2, 0, 1], [5, 6, 1, 2], [7, 8, 3, 0]], float)[None, None]
DY = np.array([[1.0, 2], [3, 4]])[None, None]


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_pool_01(dtype):
    x = X1.astype(dtype)
    y, sw = K.max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(y[0, 0], [[4, 2], [8, 3]])
    np.testing.assert_array_equal(sw[0, 0], [[4, 2], [13, 14]])
    np.testing.assert_array_equal(K.avg_pool2d_forward(x, 2)[0, 0], [[2.5, 1.0], [6.5, 1.5]])
    np.testing.assert_array_equal(K.max_unpool2d_forward(y, sw, (4, 4))[0, 0],
                                  [[0, 0, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 8, 3, 0]])
    np.testing.assert_array_equal(K.upsample_nearest2d_forward(y)[0, 0],
                                  [[4, 4, 2, 2], [4, 4, 2, 2], [8, 8, 3, 3], [8, 8, 3, 3]])
    dy = DY.astype(dtype)
    np.testing.assert_array_equal(K.max_pool2d_backward(dy, sw, x.shape)[0, 0],
                                  [[0, 0, 2, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 3, 4, 0]])
    np.testing.assert_array_equal(K.avg_pool2d_backward(dy, x.shape)[0, 0],
                                  [[.25, .25, .5, .5], [.25, .25, .5, .5], [.75, .75, 1, 1],
                                   [.75, .75, 1, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_pool_02_overlap_and_ties(dtype):
    x = X1.astype(dtype)
    y, sw = K.max_pool2d_forward(x, 3, 1)
    np.testing.assert_array_equal(y[0, 0], [[6, 6], [8, 8]])
    np.testing.assert_array_equal(K.max_pool2d_backward(DY.astype(dtype), sw, x.shape)[0, 0],
                                  [[0, 0, 0, 0], [0, 0, 0, 0], [0, 3, 0, 0], [0, 7, 0, 0]])
    tie = np.array([[2, 2], [1, 0]], dtype)[None, None]
    for k in (2, (2, 2)):                               # fast path and general path agree
        _, s = K.max_pool2d_forward(tie, k)
        assert s[0, 0, 0, 0] == 0                       # switch (0, 0)
    _, s = K.max_pool2d_forward(np.pad(tie, ((0, 0), (0, 0), (0, 1), (0, 1))), 2, 1)
    assert s[0, 0, 0, 0] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_pool_03_avg_padding(dtype):
    x = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    np.testing.assert_allclose(K.avg_pool2d_forward(x, 2, 2, 1)[0, 0],
                               [[0.25, 1.25], [2.75, 7.0]], rtol=1e-12)
    np.testing.assert_allclose(K.avg_pool2d_forward(x, 2, 2, 1, count_include_pad=False)[0, 0],
                               [[1.0, 2.5], [5.5, 7.0]], rtol=1e-12)


def test_tv_pool_04_global_average_via_whole_plane_window():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    y = K.avg_pool2d_forward(x, (2, 2))
    np.testing.assert_allclose(y.reshape(1, 2), [[1.5, 5.5]], rtol=1e-12)
    dx = K.avg_pool2d_backward(np.array([[1.0, 2.0]]).reshape(1, 2, 1, 1), x.shape, (2, 2))
    np.testing.assert_allclose(dx[0, 0], 0.25)
    np.testing.assert_allclose(dx[0, 1], 0.5)


def test_tv_size_01_pool_sizes():
    for size, out in ((28, 14), (10, 5), (16, 8)):
        assert K.pool2d_geometry((size, size), 2).output_size == (out, out)
    # convolution.md §2 example: 7 -> 4 with k = 3, P = 1, S = 2; 6 -> 2 with k = 3, S = 2
    assert K.pool2d_geometry((7, 6), 3, 2, 1).output_size[0] == 4
    assert K.pool2d_geometry((7, 6), 3, 2, 0).output_size[1] == 2
    g = K.pool2d_geometry((5, 6), (3, 2), 1, "same")
    assert g.padding == ((1, 1), (0, 1)) and g.output_size == (5, 6)


def test_unreached_rows_get_zero_gradient():
    x = np.arange(6.0).reshape(1, 1, 1, 6)             # L = 6, k = 3, S = 2 -> 2 outputs
    y, sw = K.max_pool2d_forward(x, (1, 3), (1, 2))
    dx = K.max_pool2d_backward(np.ones_like(y), sw, x.shape)
    da = K.avg_pool2d_backward(np.ones_like(y), x.shape, (1, 3), (1, 2))
    assert dx[0, 0, 0, 5] == 0 and da[0, 0, 0, 5] == 0


# ----------------------------------------------------------------------------- NaN / inf rule
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), ((3, 2), (1, 2), ((1, 1), (0, 1)))])
def test_nan_and_inf_windows(k, s, p, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 6, 6)).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.choice(x.size, 12, replace=False)] = np.nan
    flat[rng.choice(x.size, 8, replace=False)] = np.inf
    flat[rng.choice(x.size, 8, replace=False)] = -np.inf
    x[0, 0, :2, :2] = [[-np.inf, np.inf], [np.nan, 1.0]]   # +inf and -inf: slow path in 2x2
    x[0, 1, :2, :2] = [[1.0, np.nan], [2.0, np.nan]]       # first NaN wins
    x[1, 1, :2, :2] = -np.inf                              # all -inf: first element
    y, sw = K.max_pool2d_forward(x, k, s, p)
    g = K.pool2d_geometry(x.shape[2:], k, s, p)
    yr, swr = R.max_pool2d_forward(x, g.kernel_size, g.stride, g.padding)
    np.testing.assert_array_equal(y, yr)                   # NaN positions equal too
    np.testing.assert_array_equal(sw, swr)
    if k == 2:
        assert np.isnan(y[0, 1, 0, 0]) and sw[0, 1, 0, 0] == 1
        assert y[1, 1, 0, 0] == -np.inf and sw[1, 1, 0, 0] == 0


# ----------------------------------------------------------------------------- validation
def test_bad_inputs_raise_clear_errors():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        K.max_pool2d_forward(np.zeros((3, 4, 4)), 2)
    with pytest.raises(DTypeError, match="float"):
        K.max_pool2d_forward(x.astype(np.int64), 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.avg_pool2d_forward(np.zeros((2, 3, 4, 8))[..., ::2], 2)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        K.max_pool2d_forward(x, 5)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        K.avg_pool2d_forward(np.zeros((1, 1, 2, 2)), 3, 1, 1 - 1)
    with pytest.raises(HyperparameterError, match="kernel_size/2"):
        K.max_pool2d_forward(x, 2, 1, 2)
    with pytest.raises(ShapeError, match="empty spatial size"):
        K.max_pool2d_forward(np.zeros((1, 1, 0, 4)), 2, 2, 1)   # a window of padding only
    with pytest.raises(HyperparameterError, match="kernel_size"):
        K.max_pool2d_forward(x, 0)
    with pytest.raises(HyperparameterError, match="stride"):
        K.max_pool2d_forward(x, 2, (1, 0))
    with pytest.raises(HyperparameterError, match="kernel_size"):
        K.max_pool2d_forward(x, True)
    with pytest.raises(HyperparameterError, match="stride 1"):
        K.max_pool2d_forward(x, 2, 2, "same")
    with pytest.raises(HyperparameterError, match="padding"):
        K.max_pool2d_forward(x, 2, 2, "full")
    y, sw = K.max_pool2d_forward(x, 2)
    with pytest.raises(DTypeError, match="int64"):
        K.max_pool2d_backward(y, sw.astype(np.int32), x.shape)
    with pytest.raises(ShapeError, match="switches"):
        K.max_pool2d_backward(y, sw[:1], x.shape)
    with pytest.raises(ShapeError, match="input_shape"):
        K.max_pool2d_backward(y, sw, (3, 3, 4, 4))
    with pytest.raises(DTypeError, match="float32"):
        K.max_pool2d_forward(x, 2, out=np.zeros(y.shape, np.float32))
    with pytest.raises(ShapeError, match="dy must have shape"):
        K.avg_pool2d_backward(y, (2, 3, 6, 6), 2)
    bad = sw.copy()
    bad[0, 0, 0, 0] = 16
    with pytest.raises(ValueError, match="outside"):
        K.max_pool2d_backward(y, bad, x.shape)
    with pytest.raises(ValueError, match="outside"):
        K.max_unpool2d_forward(y, bad, (4, 4))
    with pytest.raises(ValueError, match="outside"):
        K.max_unpool2d_forward(y, sw, (3, 3))
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="outside"):
        K.max_unpool2d_backward(np.zeros((2, 3, 4, 4)), bad)
    with pytest.raises(ShapeError, match="multiple"):
        K.upsample_nearest2d_backward(np.zeros((1, 1, 3, 4)), 2)
    with pytest.raises(HyperparameterError, match="mode"):
        K.upsample_nearest2d_forward(x, 2, "bilinear")
    with pytest.raises(HyperparameterError, match="scale_factor"):
        K.upsample_nearest2d_forward(x, 0)


def test_empty_batch_and_out_buffers():
    x = np.zeros((0, 3, 4, 4), np.float32)
    y, sw = K.max_pool2d_forward(x, 2)
    assert y.shape == (0, 3, 2, 2) and sw.shape == y.shape
    assert K.max_pool2d_backward(y, sw, x.shape).shape == x.shape
    assert K.avg_pool2d_backward(K.avg_pool2d_forward(x, 2), x.shape, 2).shape == x.shape
    x = _x((2, 2, 4, 4), np.float64)
    out, sw_out = np.empty((2, 2, 2, 2)), np.empty((2, 2, 2, 2), np.int64)
    y, sw = K.max_pool2d_forward(x, 2, out=out, switches_out=sw_out)
    assert y is out and sw is sw_out


def test_compiled_max_pool_backward_counts_every_switch_of_empty_planes_as_bad():
    # the facade rejects empty planes first; the compiled kernel still reports them
    dy = np.ones((3, 2, 2))
    sw = np.zeros((3, 2, 2), np.int64)
    assert _pool.max_pool_backward(dy, sw, np.empty((3, 0, 5))) == 12
    assert _pool.max_pool_backward(dy[:0], sw[:0], np.empty((0, 4, 4))) == 0
    with pytest.raises(ValueError, match="switch"):
        K.max_pool2d_backward(dy[None], sw[None], (1, 3, 0, 5))
