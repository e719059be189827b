"""Compiled activation / softmax / cross-entropy kernels vs their NumPy twins
(corenet._reference), spec vectors TV-ACT-03, TV-LOSS-01/02, and input validation.

The activation loops are compiled for several instruction sets (``_act.SIMD_LEVELS``);
the tests marked "every instruction set" run each one this CPU supports, including the
special values the -fno-math-errno / -fno-trapping-math build must keep (NaN, ±inf,
±1000, ±0 at the kinks of D-04, subnormals)."""
import numpy as np
import pytest

from corenet import _reference as R
from corenet import config, kernels as K
from corenet._kernels import activations as _act
from corenet.errors import DTypeError, HyperparameterError, ShapeError

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
SHAPES = [(7,), (3, 5), (2, 3, 4, 5), (0,), (1,), (300, 240)]   # last: threaded path
NAMES = sorted(K.ACTIVATION_CODES)
DIFF = [n for n in NAMES if n != "sign"]
PARAMS = {"scaled_tanh": dict(a=1.5, b=0.7), "leaky_relu": dict(alpha=0.2),
          "generalized_relu": dict(alpha=-1.0), "elu": dict(alpha=0.8),
          "softplus": dict(beta=2.5)}


@pytest.fixture(autouse=True)
def two_threads():
    """2 threads, and serial thresholds / chunks small enough for test-sized arrays to
    take the threaded path (several dynamically scheduled chunks)."""
    old = config.get_num_threads()
    config.set_num_threads(2)
    old_par = _act._set_parallel(20000, 50000, 4096)
    yield
    _act._set_parallel(*old_par)
    config.set_num_threads(old)


def rand(shape, dtype, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-scale, scale, size=shape).astype(dtype)
    if x.size:
        x.reshape(-1)[:: 7] = 0          # exact kinks (D-04)
    return x


FROM_Y = ("sigmoid", "sigmoid_symmetric", "tanh", "scaled_tanh", "elu", "selu")
ISAS = _act.SIMD_LEVELS[:_act.SIMD_LEVELS.index(_act.SIMD_ISA) + 1]


@pytest.fixture(params=ISAS)
def isa(request):
    old = _act._use_simd_isa(request.param)
    yield request.param
    _act._use_simd_isa(old)


def test_large_shape_triggers_threaded_path():
    assert np.prod(SHAPES[-1]) > _act.PARALLEL_MIN_CHEAP >= _act.PARALLEL_MIN
    with pytest.raises(ValueError, match="instruction set"):
        _act._use_simd_isa("avx1024")
    with pytest.raises(ValueError, match="multiple of 64"):
        _act._set_parallel(1, 1, 100)


def test_parallel_thresholds_follow_the_wait_policy():
    """Serial up to 64 Ki / 256 Ki elements with spinning OpenMP workers (corenet's
    default: a short spin), 256 Ki / 1 Mi with sleeping ones."""
    import os
    import subprocess
    import sys
    code = ("from corenet._kernels import activations as A; "
            "print(A.PARALLEL_MIN, A.PARALLEL_MIN_CHEAP)")
    for policy, want in (("ACTIVE", "65536 262144"), ("PASSIVE", "262144 1048576")):
        env = dict(os.environ, OMP_WAIT_POLICY=policy)
        env.pop("GOMP_SPINCOUNT", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        assert " ".join(out) == want, policy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_activation_kernels_vs_reference(name, shape, dtype):
    x = rand(shape, dtype)
    dy = rand(shape, dtype, seed=1, scale=1.0)
    for params in ({}, PARAMS.get(name)):
        if params is None:
            continue
        y = K.activation_forward(name, x, **params)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_allclose(y, R.activation_forward(name, x, **params), **TOL[dtype])
        if name == "sign":
            continue
        dx = K.activation_backward(name, x, None, dy, **params)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, R.activation_backward(name, x, None, dy, **params),
                                   **TOL[dtype])
        dxy = K.activation_backward(name, x, y, dy, **params)
        np.testing.assert_allclose(dxy, R.activation_backward(name, x, y, dy, **params),
                                   **TOL[dtype])
        # output route agrees with the input route (up to the rounding of y)
        atol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(dxy, dx, rtol=TOL[dtype]["rtol"], atol=atol)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "gelu", "elu"])
def test_out_buffers_in_place_and_thread_independence(name):
    x = rand((300, 200), np.float64)
    dy = rand((300, 200), np.float64, seed=2)
    y2 = K.activation_forward(name, x)
    dx2 = K.activation_backward(name, x, y2, dy)
    config.set_num_threads(1)
    assert np.array_equal(K.activation_forward(name, x), y2)
    assert np.array_equal(K.activation_backward(name, x, y2, dy), dx2)
    buf = x.copy()
    assert K.activation_forward(name, buf, out=buf) is buf
    assert np.array_equal(buf, y2)
    g = dy.copy()
    assert K.activation_backward(name, x, None, g, out=g) is g
    np.testing.assert_allclose(g, R.activation_backward(name, x, None, dy), **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_instruction_set_vs_reference(isa, dtype):
    x = rand((1013,), dtype)                     # not a multiple of the block length
    dy = rand((1013,), dtype, seed=1, scale=1.0)
    for name in NAMES:
        for params in ({}, PARAMS.get(name, {})):
            y = K.activation_forward(name, x, **params)
            np.testing.assert_allclose(y, R.activation_forward(name, x, **params),
                                       **TOL[dtype], err_msg=f"{isa} {name} forward")
            if name == "sign":
                continue
            for src in ((x, None), (x, y)):
                np.testing.assert_allclose(
                    K.activation_backward(name, *src, dy, **params),
                    R.activation_backward(name, *src, dy, **params),
                    **TOL[dtype], err_msg=f"{isa} {name} backward")


SPECIAL = [np.nan, np.inf, -np.inf, 1000.0, -1000.0, 88.8, -88.8, -103.0, 30.0, -30.0,
           0.0, -0.0, 1e-40, -1e-40, 1e-300, 0.5, -0.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_every_instruction_set(isa, dtype):
    """NaN/inf/large/subnormal inputs (and non-finite dy) give the twin's values, same
    NaN pattern; the kinks follow D-04 at +0 and -0."""
    with np.errstate(all="ignore"):
        x = np.array(SPECIAL, dtype)
        x = np.concatenate([x, x[::-1], x])          # full blocks and tails
        dy = np.linspace(0.5, 1.5, x.size).astype(dtype)
        dy[[10, 15, 16]] = np.inf, np.nan, -np.inf    # at x = 0, 0.5, -0.5: dx = dy * f'(x)
        tol = dict(TOL[dtype], equal_nan=True)
        for name in NAMES:
            params = PARAMS.get(name, {})
            y = K.activation_forward(name, x, **params)
            np.testing.assert_allclose(y, R.activation_forward(name, x, **params), **tol,
                                       err_msg=f"{isa} {name}")
            if name == "sign":
                continue
            for src in ((x, None), (x, y)):
                np.testing.assert_allclose(
                    K.activation_backward(name, *src, dy, **params),
                    R.activation_backward(name, *src, dy, **params), **tol,
                    err_msg=f"{isa} {name} backward")
        zeros = np.array([0.0, -0.0], dtype)
        ones = np.ones(2, dtype)
        kinks = {"relu": 0.0, "leaky_relu": 0.01, "generalized_relu": 0.0, "elu": 1.0,
                 "selu": R.SELU_LAMBDA * R.SELU_ALPHA}
        for name, slope in kinks.items():
            for y in (None, K.activation_forward(name, zeros)):
                d = K.activation_backward(name, zeros, y, ones)
                np.testing.assert_allclose(d, slope, rtol=1e-6, err_msg=name)
            assert np.array_equal(K.activation_forward(name, zeros), [0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count_and_offset(dtype):
    """Each element is computed by the same instructions wherever a chunk or an array
    starts: 1 or 2 threads and shifted views give the same bits."""
    n = _act.PARALLEL_MIN_CHEAP + 1001
    x = rand((n,), dtype)
    dy = rand((n,), dtype, seed=1, scale=1.0)
    for name in NAMES:
        config.set_num_threads(2)
        y2 = K.activation_forward(name, x)
        d2 = None if name == "sign" else K.activation_backward(name, x, None, dy)
        config.set_num_threads(1)
        assert np.array_equal(K.activation_forward(name, x), y2, equal_nan=True), name
        for k in (1, 3, 17):
            assert np.array_equal(K.activation_forward(name, x[k:k + 70000]),
                                  y2[k:k + 70000]), (name, k)
        if name != "sign":
            assert np.array_equal(K.activation_backward(name, x, None, dy), d2), name
            assert np.array_equal(K.activation_backward(name, x[5:], None, dy[5:]), d2[5:])
            if name in FROM_Y:
                config.set_num_threads(2)
                dy2 = K.activation_backward(name, None, y2, dy)
                config.set_num_threads(1)
                assert np.array_equal(K.activation_backward(name, None, y2, dy), dy2), name


MASK_PARAMS = [("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"alpha": 0.2}),
               ("generalized_relu", {}), ("generalized_relu", {"alpha": -1.0})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_route_every_instruction_set(isa, dtype):
    """relu / leaky / generalized relu with a bit mask: the forward output is the plain
    kernel's bit for bit (signed zeros, NaN), the mask is the twin's packbits, and the
    backward from the mask equals the backward from x bit for bit (inf/NaN dy included),
    for odd sizes (partial blocks and bytes), in place, and on 1 and 2 threads."""
    n_big = _act.PARALLEL_MIN_CHEAP + 1001                 # threaded: 2 chunks
    with np.errstate(all="ignore"):
        for shape in [(0,), (1,), (7,), (9,), (3, 5), (2, 3, 4, 5), (1013,), (n_big,)]:
            x = rand(shape, dtype)
            dy = rand(shape, dtype, seed=1, scale=1.0)
            if x.size > 40:
                flat, g = x.reshape(-1), dy.reshape(-1)
                flat[[1, 2, 3, 4]] = np.nan, -np.inf, np.inf, -0.0
                g[[5, 6, 7]] = np.inf, np.nan, -np.inf       # where x = 0 or random signs
            for name, params in MASK_PARAMS:
                y0 = K.activation_forward(name, x, **params)
                d0 = K.activation_backward(name, x, None, dy, **params)
                for threads in ((1, 2) if x.size == n_big else (2,)):
                    config.set_num_threads(threads)
                    y, mask = K.activation_forward_mask(name, x, **params)
                    assert mask.dtype == np.uint8 and mask.shape == ((x.size + 7) // 8,)
                    assert np.array_equal(y, y0, equal_nan=True), (name, shape)
                    assert np.array_equal(np.signbit(y), np.signbit(y0)), (name, shape)
                    ry, rmask = R.activation_forward_mask(name, x, **params)
                    assert np.array_equal(mask, rmask), (name, shape)
                    np.testing.assert_allclose(y, ry, **TOL[dtype], equal_nan=True)
                    dx = K.activation_backward_mask(name, mask, dy, **params)
                    assert dx.shape == dy.shape and dx.dtype == dtype
                    assert np.array_equal(dx, d0, equal_nan=True), (name, shape)
                    np.testing.assert_allclose(
                        dx, R.activation_backward_mask(name, mask, dy, **params),
                        **TOL[dtype], equal_nan=True)
                buf, g = x.copy(), dy.copy()                 # in place: out = x, out = dy
                out, m2 = K.activation_forward_mask(name, buf, out=buf, mask=mask, **params)
                assert out is buf and m2 is mask and np.array_equal(buf, y0, equal_nan=True)
                assert K.activation_backward_mask(name, mask, g, out=g, **params) is g
                assert np.array_equal(g, d0, equal_nan=True)


def test_mask_route_bad_input():
    x = np.ones((3, 5))
    with pytest.raises(ValueError, match="mask route"):
        K.activation_forward_mask("sigmoid", x)
    with pytest.raises(ValueError, match="mask route"):
        K.activation_backward_mask("elu", np.zeros(2, np.uint8), x)
    with pytest.raises(DTypeError, match="uint8"):
        K.activation_backward_mask("relu", np.zeros(2, np.int8), x)
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        K.activation_backward_mask("relu", np.zeros(3, np.uint8), x)
    with pytest.raises(ShapeError):
        K.activation_forward_mask("relu", x, mask=np.zeros((2, 1), np.uint8))
    ro = np.zeros(2, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        K.activation_forward_mask("relu", x, mask=ro)
    with pytest.raises(DTypeError):
        K.activation_forward_mask("relu", x.astype(np.int64))
    with pytest.raises(TypeError, match="unknown parameter"):
        K.activation_forward_mask("relu", x, alpha=0.1)


def test_elementary_functions_accuracy(isa):
    """exp (float32: own AVX-512 routine or libmvec/libm) and GELU's Φ on a sweep of
    all float32 exponents: exp within 1.02 ulp (own) / 4 ulp (library), Φ within 1.2e-7
    absolute; NaN, ±inf and overflow handled."""
    from scipy.special import ndtr
    bits = np.arange(0, 2 ** 32, 4099, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    x = x[(x > -110) & (x < 100)]
    e = np.empty_like(x)
    _act._elementary("exp", x, e)
    ref = np.exp(x.astype(np.float64))
    finite = ref < np.finfo(np.float32).max
    ulp = np.spacing(ref[finite].astype(np.float32)).astype(np.float64)
    ulp = np.maximum(ulp, np.float64(np.finfo(np.float32).smallest_subnormal))
    err = np.abs(e[finite] - ref[finite]) / ulp
    assert err.max() <= (1.02 if isa == "avx512f" else 4.0), (isa, x[finite][err.argmax()])
    assert np.all(np.isposinf(e[~finite]))
    p = np.empty_like(x)
    _act._elementary("phi", x, p)
    assert np.abs(p - ndtr(x.astype(np.float64))).max() <= 1.2e-7
    sp = np.array([np.nan, np.inf, -np.inf, 89.0, -104.0], np.float32)
    out = np.empty_like(sp)
    _act._elementary("exp", sp, out)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 0 and out[3] == np.inf
    assert out[4] == 0
    _act._elementary("phi", sp, out)
    assert np.isnan(out[0]) and out[1] == 1 and out[2] == 0 and out[3] == 1 and out[4] == 0
    x64 = np.linspace(-40, 40, 10001)
    e64 = np.empty_like(x64)
    _act._elementary("exp", x64, e64)
    np.testing.assert_allclose(e64, np.exp(x64), rtol=1e-15)
    _act._elementary("phi", x64, e64)
    np.testing.assert_allclose(e64, ndtr(x64), rtol=1e-12, atol=1e-300)  # argument rounding


def test_activation_accepts_code_and_extreme_values():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    for name in NAMES:
        y = K.activation_forward(K.ACTIVATION_CODES[name], x)
        assert np.isfinite(y).all(), name
        if name != "sign":
            assert np.isfinite(K.activation_backward(name, x, None, np.ones(5))).all(), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,alpha_shape", [((6,), (1,)), ((4, 3), (3,)), ((4, 3), (1,)),
                                               ((2, 3, 4, 5), (3,)), ((0, 3), (3,)),
                                               ((1, 1), (1,)), ((60, 8, 10, 10), (8,)),
                                               ((60, 8, 10, 10), (1,))])
def test_prelu_kernels_vs_reference(shape, alpha_shape, dtype):
    x = rand(shape, dtype)
    dy = rand(shape, dtype, seed=3, scale=1.0)
    alpha = np.random.default_rng(4).uniform(0.05, 0.5, alpha_shape).astype(dtype)
    np.testing.assert_allclose(K.prelu_forward(x, alpha), R.prelu_forward(x, alpha),
                               **TOL[dtype])
    dx, da = K.prelu_backward(x, dy, alpha)
    rdx, rda = R.prelu_backward(x, dy, alpha)
    assert da.shape == alpha.shape and da.dtype == dtype
    np.testing.assert_allclose(dx, rdx, **TOL[dtype])
    # sum-order differences: bound by the sum of |terms|
    scale = np.abs(np.where(x <= 0, dy * x, 0)).sum() + 1
    np.testing.assert_allclose(da, rda, rtol=TOL[dtype]["rtol"],
                               atol=scale * (1e-6 if dtype == np.float32 else 1e-13))
    config.set_num_threads(1)
    assert np.array_equal(K.prelu_backward(x, dy, alpha)[1], da)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((1, 1), -1), ((0, 4), -1), ((6,), 0),
                                        ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1),
                                        ((400, 100), -1)])
def test_softmax_kernels_vs_reference(shape, axis, dtype):
    z = rand(shape, dtype, scale=10.0)
    p = K.softmax(z, axis=axis)
    q = K.log_softmax(z, axis=axis)
    np.testing.assert_allclose(p, R.softmax(z, axis=axis), **TOL[dtype])
    np.testing.assert_allclose(q, R.log_softmax(z, axis=axis), **TOL[dtype])
    if z.size:
        np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-5)
    buf = z.copy()
    assert K.softmax(buf, axis=axis, out=buf) is buf
    np.testing.assert_allclose(buf, p, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(2, 3), (1, 1), (0, 4), (5, 10), (500, 100)])
def test_softmax_cross_entropy_vs_reference(n, k, dtype):
    z = rand((n, k), dtype, scale=20.0)
    rng = np.random.default_rng(5)
    labels = rng.integers(0, k, size=n)
    soft = rng.uniform(0, 1, (n, k))
    soft = (soft / soft.sum(axis=1, keepdims=True)).astype(dtype)
    for y in (labels, soft):
        loss, grad = K.softmax_cross_entropy(z, y)
        rloss, rgrad = R.softmax_cross_entropy(z, y)
        assert loss.shape == (n,) and grad.shape == (n, k) and loss.dtype == dtype
        np.testing.assert_allclose(loss, rloss, rtol=TOL[dtype]["rtol"],
                                   atol=1e-4 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(grad, rgrad, **TOL[dtype])
    onehot = np.eye(k, dtype=dtype)[labels]
    for a, b in zip(K.softmax_cross_entropy(z, labels), K.softmax_cross_entropy(z, onehot)):
        np.testing.assert_allclose(a, b, **TOL[dtype])


def test_tv_act_03_softmax():
    p_ref = [0.09003057317, 0.244728471055, 0.665240955775]
    tv = dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(K.softmax(np.array([1.0, 2, 3])), p_ref, **tv)
    np.testing.assert_allclose(K.log_softmax(np.array([1.0, 2, 3])),
                               [-2.40760596444438, -1.40760596444438, -0.40760596444438], **tv)
    np.testing.assert_allclose(K.softmax(np.array([1000.0, 1001, 1002])), p_ref, **tv)
    np.testing.assert_allclose(K.softmax(np.array([1000.0, 1001, 1002], np.float32)), p_ref,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(K.softmax(np.full(4, 5.0)), [0.25] * 4, **tv)
    np.testing.assert_allclose(K.softmax(np.array([0.5, 0.0])), [0.6224593312, 0.3775406688],
                               **tv)
    p = K.softmax(np.array([1.0, 2, 3]))
    jac = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(jac, jac.T)
    np.testing.assert_allclose(jac.sum(axis=1), 0, atol=1e-15)


def test_tv_loss_01_02_cross_entropy_numbers():
    z = np.array([[1.0, 2, 3], [1, -1, 0.5]])
    tv = dict(rtol=1e-9, atol=1e-10)
    loss, grad = K.softmax_cross_entropy(z, np.array([1, 0]))
    np.testing.assert_allclose(loss, [1.4076059644, 0.5549569196], **tv)
    np.testing.assert_allclose(loss.mean(), 0.9812814420431855, **tv)
    np.testing.assert_allclose(loss.sum(), 1.962562884086371, **tv)
    np.testing.assert_allclose(grad / 2, [[0.0450152866, -0.3776357645, 0.3326204779],
                                          [-0.2129515035, 0.0388477896, 0.1741037139]], **tv)
    y = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    loss, grad = K.softmax_cross_entropy(z, y)
    np.testing.assert_allclose(loss, [0.8076059644, 1.1799569196], **tv)
    np.testing.assert_allclose(loss.mean(), 0.9937814420431856, **tv)
    np.testing.assert_allclose(grad / 2, [[-0.0049847134, 0.0223642355, -0.0173795221],
                                          [0.0370484965, -0.0861522104, 0.0491037139]], **tv)


def test_no_overflow_at_large_logits():
    for dtype in (np.float32, np.float64):
        z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0]], dtype)
        loss, grad = K.softmax_cross_entropy(z, np.array([2, 0]))
        assert np.isfinite(loss).all() and np.isfinite(grad).all()
        np.testing.assert_allclose(loss, [2000.0, np.log(3.0)], rtol=1e-6)
        assert np.isfinite(K.log_softmax(z)).all() and np.isfinite(K.softmax(z)).all()


def test_bad_input_raises_clean_errors():
    x = np.ones((3, 4))
    with pytest.raises(DTypeError, match="activation_forward.*float"):
        K.activation_forward("tanh", np.ones((3, 4), dtype=np.int64))
    with pytest.raises(DTypeError, match="float32 or float64"):
        K.activation_forward("tanh", np.ones(3, dtype=np.float16))
    with pytest.raises(DTypeError):
        K.activation_forward("tanh", [1.0, 2.0])
    with pytest.raises(DTypeError, match="float32"):
        K.activation_forward("tanh", x, out=np.empty((3, 4), np.float32))
    with pytest.raises(DTypeError, match="x must have dtype float64, got float32"):
        K.activation_backward("tanh", x.astype(np.float32), None, x)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.activation_forward("relu", np.ones((4, 3)).T)
    with pytest.raises(ShapeError, match=r"\(3, 4\)"):
        K.activation_backward("relu", np.ones((4, 3)), None, x)
    with pytest.raises(ShapeError):
        K.activation_forward("relu", x, out=np.empty(12))
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        K.activation_forward("relu", x, out=ro)
    with pytest.raises(ValueError, match="unknown activation"):
        K.activation_forward("swishy", x)
    with pytest.raises(TypeError, match="unknown parameter"):
        K.activation_forward("relu", x, alpha=0.1)
    with pytest.raises(HyperparameterError, match="beta"):
        K.activation_forward("softplus", x, beta=0.0)
    with pytest.raises(NotImplementedError, match="sign"):
        K.activation_backward("sign", x, None, x)
    with pytest.raises(ValueError, match="input x is required"):
        K.activation_backward("relu", None, x, x)
    with pytest.raises(ShapeError, match="alpha"):
        K.prelu_forward(x, np.ones(3))
    with pytest.raises(DTypeError):
        K.prelu_forward(x, np.ones(4, np.float32))
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"0\.\.2, got 3"):
        K.softmax_cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="got -1"):
        K.softmax_cross_entropy(z, np.array([-1, 0]))
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        K.softmax_cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ShapeError):
        K.softmax_cross_entropy(z, np.zeros((2, 4)))
    with pytest.raises(DTypeError):
        K.softmax_cross_entropy(z, np.zeros((2, 3), np.float32))
    with pytest.raises(DTypeError):
        K.softmax_cross_entropy(z, np.zeros((2, 3), bool))
    with pytest.raises(ShapeError, match=r"\(N, K\)"):
        K.softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="overlap"):
        K.softmax_cross_entropy(z, np.array([0, 1]), grad_out=z)
    with pytest.raises(ShapeError, match="axis"):
        K.softmax(z, axis=2)
