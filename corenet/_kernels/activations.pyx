# cython: language_level=3
"""Element-wise activation kernels, forward and backward (spec networks.md §2.2, README §10).

Private module: call it through :mod:`corenet.kernels`, which validates shapes, dtypes
and contiguity before anything here runs without the GIL.

* Arrays are flat, C-contiguous, float32 or float64 (fused type ``floating``); the
  caller provides the output buffer (``out`` / ``dx``), which may alias an input.
* The scalar formula is evaluated in double precision and rounded once to the array
  dtype (also for float32); :mod:`corenet._reference` mirrors this.
* Arrays larger than ``PARALLEL_MIN`` elements are cut into ``num_threads`` equal
  contiguous chunks run by ``prange(schedule="static")``; smaller ones run serially.
  Every element is computed independently, so results do not depend on threads.
* Kinks (D-04): the point x = 0 belongs to the left branch (``x <= 0``).
* ``activation_backward(..., from_y=True)`` receives the cached output y instead of x
  (codes in ``FROM_Y``: sigmoid, sigmoid_symmetric, tanh, scaled_tanh, elu, selu).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expm1, log1p, tanh, atan, erf, erfc, fabs

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN

cdef enum:
    A_IDENTITY = 0
    A_SIGMOID = 1
    A_SIGMOID_SYM = 2
    A_TANH = 3
    A_SCALED_TANH = 4
    A_ARCTAN = 5
    A_SOFTSIGN = 6
    A_RELU = 7
    A_LEAKY = 8          # leaky_relu and generalized_relu: x if x > 0 else alpha*x
    A_ELU = 9
    A_SELU = 10
    A_SOFTPLUS = 11
    A_ERF = 12
    A_GAUSSIAN = 13
    A_SIGN = 14
    A_GELU = 15
    A_SILU = 16
    A_NCODES = 17

CODES = {"identity": A_IDENTITY, "sigmoid": A_SIGMOID, "sigmoid_symmetric": A_SIGMOID_SYM,
         "tanh": A_TANH, "scaled_tanh": A_SCALED_TANH, "arctan": A_ARCTAN,
         "softsign": A_SOFTSIGN, "relu": A_RELU, "leaky_relu": A_LEAKY,
         "generalized_relu": A_LEAKY, "elu": A_ELU, "selu": A_SELU, "softplus": A_SOFTPLUS,
         "erf": A_ERF, "gaussian": A_GAUSSIAN, "sign": A_SIGN, "gelu": A_GELU,
         "silu": A_SILU}
FROM_Y = frozenset({A_SIGMOID, A_SIGMOID_SYM, A_TANH, A_SCALED_TANH, A_ELU, A_SELU})
NOT_DIFFERENTIABLE = frozenset({A_SIGN})

cdef double SELU_L = 1.0507009873554804934
cdef double SELU_LA = 1.0507009873554804934 * 1.6732632423543772848
cdef double TWO_OVER_SQRTPI = 1.1283791670955125739
cdef double INV_SQRT2 = 0.70710678118654752440
cdef double INV_SQRT2PI = 0.39894228040143267794


cdef inline double _sigmoid(double x) noexcept nogil:
    """Sign-split logistic function (README §10)."""
    cdef double e
    if x >= 0:
        return 1.0 / (1.0 + exp(-x))
    e = exp(x)
    return e / (1.0 + e)


cdef inline double _softplus(double x, double beta) noexcept nogil:
    cdef double bx = beta * x
    return ((bx if bx > 0 else 0.0) + log1p(exp(-fabs(bx)))) / beta


cdef inline double _gelu_cdf(double x) noexcept nogil:
    """Standard normal CDF Φ(x) = erfc(-x/√2)/2 (accurate for very negative x)."""
    return 0.5 * erfc(-x * INV_SQRT2)


cdef void _fwd(int code, const floating* x, floating* y, Py_ssize_t lo, Py_ssize_t hi,
               double p1, double p2) noexcept nogil:
    """y[i] = f(x[i]) for lo <= i < hi; one loop per activation code."""
    cdef Py_ssize_t i
    cdef double v
    if code == A_IDENTITY:
        for i in range(lo, hi):
            y[i] = x[i]
    elif code == A_SIGMOID:
        for i in range(lo, hi):
            y[i] = <floating>_sigmoid(x[i])
    elif code == A_SIGMOID_SYM:
        for i in range(lo, hi):
            y[i] = <floating>(_sigmoid(x[i]) - 0.5)
    elif code == A_TANH:
        for i in range(lo, hi):
            y[i] = <floating>tanh(x[i])
    elif code == A_SCALED_TANH:
        for i in range(lo, hi):
            y[i] = <floating>(p1 * tanh(p2 * x[i]))
    elif code == A_ARCTAN:
        for i in range(lo, hi):
            y[i] = <floating>atan(x[i])
    elif code == A_SOFTSIGN:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(v / (1.0 + fabs(v)))
    elif code == A_RELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(0.0 if v <= 0 else v)
    elif code == A_LEAKY:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(p1 * v if v <= 0 else v)
    elif code == A_ELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(p1 * expm1(v) if v <= 0 else v)
    elif code == A_SELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(SELU_LA * expm1(v) if v <= 0 else SELU_L * v)
    elif code == A_SOFTPLUS:
        for i in range(lo, hi):
            y[i] = <floating>_softplus(x[i], p1)
    elif code == A_ERF:
        for i in range(lo, hi):
            y[i] = <floating>erf(x[i])
    elif code == A_GAUSSIAN:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>exp(-0.5 * v * v)
    elif code == A_SIGN:
        for i in range(lo, hi):
            y[i] = <floating>(1.0 if x[i] >= 0 else -1.0)
    elif code == A_GELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(v * _gelu_cdf(v))
    elif code == A_SILU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>(v * _sigmoid(v))


cdef void _bwd(int code, const floating* x, const floating* dy, floating* dx, Py_ssize_t lo,
               Py_ssize_t hi, double p1, double p2, bint from_y) noexcept nogil:
    """dx[i] = dy[i] * f'(x[i]); with ``from_y`` the array x holds the output y = f(x)."""
    cdef Py_ssize_t i
    cdef double v, s, t
    if code == A_IDENTITY:
        for i in range(lo, hi):
            dx[i] = dy[i]
    elif code == A_SIGMOID or code == A_SIGMOID_SYM:
        if from_y:
            for i in range(lo, hi):
                s = x[i] if code == A_SIGMOID else x[i] + 0.5
                dx[i] = <floating>(dy[i] * (s * (1.0 - s)))
        else:
            for i in range(lo, hi):
                s = _sigmoid(x[i])
                dx[i] = <floating>(dy[i] * (s * (1.0 - s)))
    elif code == A_TANH:
        for i in range(lo, hi):
            t = x[i] if from_y else tanh(x[i])
            dx[i] = <floating>(dy[i] * (1.0 - t * t))
    elif code == A_SCALED_TANH:
        for i in range(lo, hi):
            t = x[i] / p1 if from_y else tanh(p2 * x[i])
            dx[i] = <floating>(dy[i] * (p1 * p2 * (1.0 - t * t)))
    elif code == A_ARCTAN:
        for i in range(lo, hi):
            v = x[i]
            dx[i] = <floating>(dy[i] / (1.0 + v * v))
    elif code == A_SOFTSIGN:
        for i in range(lo, hi):
            v = 1.0 + fabs(x[i])
            dx[i] = <floating>(dy[i] / (v * v))
    elif code == A_RELU:
        for i in range(lo, hi):
            dx[i] = <floating>(0.0 if x[i] <= 0 else dy[i])
    elif code == A_LEAKY:
        for i in range(lo, hi):
            dx[i] = <floating>(p1 * dy[i] if x[i] <= 0 else dy[i])
    elif code == A_ELU:
        for i in range(lo, hi):
            v = x[i]
            if v <= 0:
                dx[i] = <floating>(dy[i] * ((v + p1) if from_y else p1 * exp(v)))
            else:
                dx[i] = dy[i]
    elif code == A_SELU:
        for i in range(lo, hi):
            v = x[i]
            if v <= 0:
                dx[i] = <floating>(dy[i] * ((v + SELU_LA) if from_y else SELU_LA * exp(v)))
            else:
                dx[i] = <floating>(dy[i] * SELU_L)
    elif code == A_SOFTPLUS:
        for i in range(lo, hi):
            dx[i] = <floating>(dy[i] * _sigmoid(p1 * x[i]))
    elif code == A_ERF:
        for i in range(lo, hi):
            v = x[i]
            dx[i] = <floating>(dy[i] * (TWO_OVER_SQRTPI * exp(-v * v)))
    elif code == A_GAUSSIAN:
        for i in range(lo, hi):
            v = x[i]
            dx[i] = <floating>(dy[i] * (-v * exp(-0.5 * v * v)))
    elif code == A_GELU:
        for i in range(lo, hi):
            v = x[i]
            dx[i] = <floating>(dy[i] * (_gelu_cdf(v) + v * INV_SQRT2PI * exp(-0.5 * v * v)))
    elif code == A_SILU:
        for i in range(lo, hi):
            v = x[i]
            s = _sigmoid(v)
            dx[i] = <floating>(dy[i] * (s * (1.0 + v * (1.0 - s))))


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int num_threads) noexcept nogil:
    """1 (serial) for small arrays, else one chunk per thread."""
    if num_threads <= 1 or n <= _PARALLEL_MIN:
        return 1
    return num_threads


cdef void _check_code(int code, bint backward) except *:
    if code < 0 or code >= A_NCODES:
        raise ValueError(f"activation kernel: unknown activation code {code}")
    if backward and code == A_SIGN:
        raise ValueError("activation kernel: 'sign' is not differentiable")


def activation_forward(int code, const floating[::1] x, floating[::1] out,
                       double p1=0.0, double p2=0.0, int num_threads=1):
    """``out[i] = f(x[i])`` for the activation ``code`` (see ``CODES``) with parameters
    p1, p2 (alpha / beta / a for p1, b for p2). x and out: same length, may alias."""
    cdef Py_ssize_t n = x.shape[0], t, chunk, lo, hi, nchunks
    _check_code(code, False)
    if out.shape[0] != n:
        raise ValueError(f"activation_forward kernel: out has {out.shape[0]} elements, x {n}")
    if n == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* yp = &out[0]
    nchunks = _n_chunks(n, num_threads)
    chunk = (n + nchunks - 1) // nchunks
    with nogil:
        if nchunks == 1:
            _fwd(code, xp, yp, 0, n, p1, p2)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="static"):
                lo = t * chunk
                hi = lo + chunk
                if hi > n:
                    hi = n
                if lo < hi:
                    _fwd(code, xp, yp, lo, hi, p1, p2)


def activation_backward(int code, const floating[::1] xy, const floating[::1] dy,
                        floating[::1] dx, double p1=0.0, double p2=0.0, bint from_y=False,
                        int num_threads=1):
    """``dx[i] = dy[i] * f'(x[i])``; ``xy`` is x, or the output y when ``from_y`` (only for
    codes in ``FROM_Y``; elu needs alpha > 0, scaled_tanh a != 0). dx may alias dy or xy."""
    cdef Py_ssize_t n = xy.shape[0], t, chunk, lo, hi, nchunks
    _check_code(code, True)
    if from_y and code not in FROM_Y:
        raise ValueError(f"activation_backward kernel: code {code} has no output-based route")
    if dy.shape[0] != n or dx.shape[0] != n:
        raise ValueError(f"activation_backward kernel: lengths differ ({n}, {dy.shape[0]}, "
                         f"{dx.shape[0]})")
    if n == 0:
        return
    cdef const floating* xp = &xy[0]
    cdef const floating* gp = &dy[0]
    cdef floating* dp = &dx[0]
    nchunks = _n_chunks(n, num_threads)
    chunk = (n + nchunks - 1) // nchunks
    with nogil:
        if nchunks == 1:
            _bwd(code, xp, gp, dp, 0, n, p1, p2, from_y)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="static"):
                lo = t * chunk
                hi = lo + chunk
                if hi > n:
                    hi = n
                if lo < hi:
                    _bwd(code, xp, gp, dp, lo, hi, p1, p2, from_y)


# ----------------------------------------------------------------------------- prelu

def prelu_forward(const floating[:, :, ::1] x, const floating[::1] alpha,
                  floating[:, :, ::1] out, int num_threads=1):
    """PReLU on x viewed as (N, C, S): ``out = x if x > 0 else alpha[c] * x``; alpha has
    C entries (per channel) or 1 (shared)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], r, s, c
    cdef bint shared = alpha.shape[0] == 1
    cdef floating a, v
    if alpha.shape[0] != C and not shared:
        raise ValueError(f"prelu_forward kernel: alpha has {alpha.shape[0]} entries, C = {C}")
    if N * C * S == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef const floating* ap = &alpha[0]
    cdef floating* yp = &out[0, 0, 0]
    cdef int nt = num_threads if _n_chunks(N * C * S, num_threads) > 1 else 1
    with nogil:
        for r in prange(N * C, num_threads=nt, schedule="static"):
            c = 0 if shared else r % C
            a = ap[c]
            for s in range(r * S, r * S + S):
                v = xp[s]
                yp[s] = a * v if v <= 0 else v


def prelu_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] dy,
                   const floating[::1] alpha, floating[:, :, ::1] dx,
                   floating[:, ::1] partial, floating[::1] dalpha, int num_threads=1):
    """PReLU backward: ``dx = dy * (1 if x > 0 else alpha[c])`` and
    ``dalpha[c] = Σ_{n,s} dy * x * 1[x <= 0]``. Rows r = (n, c) are summed in parallel into
    ``partial`` (N, C); the rows are then added serially in (n, c) order (deterministic)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], r, s, c, n
    cdef bint shared = alpha.shape[0] == 1
    cdef floating a, v, g, acc
    if alpha.shape[0] != C and not shared:
        raise ValueError(f"prelu_backward kernel: alpha has {alpha.shape[0]} entries, C = {C}")
    if dalpha.shape[0] != alpha.shape[0] or partial.shape[0] != N or partial.shape[1] != C:
        raise ValueError("prelu_backward kernel: dalpha / partial have the wrong shape")
    dalpha[:] = 0
    if N * C * S == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef const floating* gp = &dy[0, 0, 0]
    cdef const floating* ap = &alpha[0]
    cdef floating* dp = &dx[0, 0, 0]
    cdef floating* pp = &partial[0, 0]
    cdef int nt = num_threads if _n_chunks(N * C * S, num_threads) > 1 else 1
    with nogil:
        for r in prange(N * C, num_threads=nt, schedule="static"):
            c = 0 if shared else r % C
            a = ap[c]
            acc = 0
            for s in range(r * S, r * S + S):
                v = xp[s]
                g = gp[s]
                if v <= 0:
                    dp[s] = a * g
                    acc = acc + g * v
                else:
                    dp[s] = g
            pp[r] = acc
        for n in range(N):
            for c in range(C):
                dalpha[0 if shared else c] += pp[n * C + c]
