# cython: language_level=3
"""Cascade-correlation candidate-pool kernel (spec growing.md §4.3).

Private module: call it through :func:`corenet.kernels.cascade_pool_values`, which
validates shapes, dtypes and contiguity before anything here runs without the GIL.

``pool_values(S, codes, beta, V, dV, num_threads)``: for the net inputs ``S`` (N × P) of
a pool of P candidate units, column j of type ``codes[j]`` and steepness ``beta[j]``,
writes ``V = f(β s)`` and ``dV = β f′(β s)`` in one pass (the profile of two-spirals runs
showed the per-type NumPy passes, and the separate sin and cos evaluations of periodic
units, as the dominant cost of candidate training). Formulas are evaluated in double
precision and rounded once to the array dtype; :mod:`corenet._reference` mirrors them.
Rows are split over ``num_threads`` with ``prange`` only when N·P ≥ ``PARALLEL_MIN``;
each element is independent, so results do not depend on the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expm1, atan, fabs, sin, cos, nearbyint

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN

cdef enum:
    U_IDENTITY = 0
    U_SIGMOID = 1
    U_SIGMOID_SYM = 2
    U_TANH = 3
    U_GAUSSIAN = 4
    U_SIN = 5
    U_COS = 6
    U_ARCTAN = 7
    U_SOFTSIGN = 8
    U_NCODES = 9

CODES = {"identity": U_IDENTITY, "sigmoid": U_SIGMOID, "sigmoid_symmetric": U_SIGMOID_SYM,
         "tanh": U_TANH, "gaussian": U_GAUSSIAN, "sin": U_SIN, "cos": U_COS,
         "arctan": U_ARCTAN, "softsign": U_SOFTSIGN}
NCODES = U_NCODES


# π/2 split into two 33-bit parts and a remainder (Cody–Waite): k·PIO2_1 and k·PIO2_2
# are exact for |k| < 2^20, so the reduced argument keeps full precision there.
cdef double TWO_OVER_PI = 0.6366197723675814
cdef double PIO2_1 = 1.5707963267341256
cdef double PIO2_2 = 6.077100506303966e-11
cdef double PIO2_3 = 2.0222662487959506e-21
cdef double REDUCE_MAX = 1.0e5


cdef inline void _sincos(double x, double* s, double* c) noexcept nogil:
    """sin x and cos x together: x = k·π/2 + r, |r| ≤ π/4, Taylor polynomials of sin r
    (to r^17) and cos r (to r^18) (truncation < 1e-19), quadrant from k mod 4. Beyond
    |x| = 1e5 the C library is used."""
    cdef double k, r, r2, sr, cr
    cdef long q
    if fabs(x) > REDUCE_MAX:
        s[0] = sin(x)
        c[0] = cos(x)
        return
    k = nearbyint(x * TWO_OVER_PI)
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3
    r2 = r * r
    sr = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (
        1.0 / 362880.0 + r2 * (-1.0 / 39916800.0 + r2 * (1.0 / 6227020800.0 + r2 * (
            -1.0 / 1307674368000.0 + r2 * (1.0 / 355687428096000.0))))))))
    cr = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (
        1.0 / 40320.0 + r2 * (-1.0 / 3628800.0 + r2 * (1.0 / 479001600.0 + r2 * (
            -1.0 / 87178291200.0 + r2 * (1.0 / 20922789888000.0 + r2 * (
                -1.0 / 6402373705728000.0)))))))))
    q = (<long>k) & 3
    if q == 0:
        s[0] = sr
        c[0] = cr
    elif q == 1:
        s[0] = cr
        c[0] = -sr
    elif q == 2:
        s[0] = -sr
        c[0] = -cr
    else:
        s[0] = -cr
        c[0] = sr


cdef inline double _tanh(double x) noexcept nogil:
    """tanh x = −expm1(−2|x|)/(2 + expm1(−2|x|)) with the sign of x (accurate near 0)."""
    cdef double e = expm1(-2.0 * fabs(x))
    cdef double t = -e / (2.0 + e)
    return t if x >= 0 else -t


cdef inline double _logistic_prime(double x) noexcept nogil:
    """σ′(x) = σ(1 − σ) = e/(1 + e)², e = exp(−|x|) (accurate where σ rounds to 0/1)."""
    cdef double e = exp(-fabs(x))
    return e / ((1.0 + e) * (1.0 + e))


cdef inline void _unit(int code, double x, double* y, double* d) noexcept nogil:
    cdef double t
    cdef double sn, cs
    if code == U_SIN:
        _sincos(x, &sn, &cs)
        y[0] = sn
        d[0] = cs
    elif code == U_COS:
        _sincos(x, &sn, &cs)
        y[0] = cs
        d[0] = -sn
    elif code == U_SIGMOID_SYM:
        y[0] = 0.5 * _tanh(0.5 * x)           # σ(x) − ½
        d[0] = _logistic_prime(x)             # σ(1 − σ)
    elif code == U_SIGMOID:
        y[0] = 0.5 + 0.5 * _tanh(0.5 * x)
        d[0] = _logistic_prime(x)
    elif code == U_TANH:
        y[0] = _tanh(x)
        d[0] = 4.0 * _logistic_prime(2.0 * x)
    elif code == U_GAUSSIAN:
        t = exp(-0.5 * x * x)
        y[0] = t
        d[0] = -x * t
    elif code == U_ARCTAN:
        y[0] = atan(x)
        d[0] = 1.0 / (1.0 + x * x)
    elif code == U_SOFTSIGN:
        t = 1.0 + fabs(x)
        y[0] = x / t
        d[0] = 1.0 / (t * t)
    else:
        y[0] = x
        d[0] = 1.0


cdef void _rows(const floating[:, ::1] S, const int[::1] codes, const double[::1] beta,
                floating[:, ::1] V, floating[:, ::1] dV, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t j
    cdef double y, d, b
    for j in range(S.shape[1]):
        b = beta[j]
        _unit(codes[j], b * S[i, j], &y, &d)
        V[i, j] = <floating>y
        dV[i, j] = <floating>(b * d)


def pool_values(const floating[:, ::1] S, const int[::1] codes, const double[::1] beta,
                floating[:, ::1] V, floating[:, ::1] dV, int num_threads=1):
    """Fill ``V`` and ``dV`` (both N × P, S's dtype) in place; see the module docstring."""
    cdef Py_ssize_t i, n = S.shape[0]
    if n * S.shape[1] >= _PARALLEL_MIN and num_threads > 1:
        for i in prange(n, nogil=True, schedule="static", num_threads=num_threads):
            _rows(S, codes, beta, V, dV, i)
    else:
        with nogil:
            for i in range(n):
                _rows(S, codes, beta, V, dV, i)


def quickprop(floating[::1] w, const floating[::1] g, floating[::1] d, floating[::1] p,
              double lr, double mu, double decay):
    """One Quickprop step in ``"fahlman"`` mode (optimizers.md §10.1), in place, on flat
    arrays: w weights, g slope of the minimised function, d previous step, p previous
    slope (both updated). Evaluated in double precision per element."""
    cdef Py_ssize_t i
    cdef double s, step, di, pi, shrink = mu / (1.0 + mu)
    with nogil:
        for i in range(w.shape[0]):
            s = g[i] + decay * w[i]
            di = d[i]
            pi = p[i]
            if di < 0:
                step = -lr * s if s > 0 else 0.0
                if s >= shrink * pi:
                    step = step + mu * di
                elif pi - s == 0:
                    step = -lr * s
                else:
                    step = step + di * s / (pi - s)
            elif di > 0:
                step = -lr * s if s < 0 else 0.0
                if s <= shrink * pi:
                    step = step + mu * di
                elif pi - s == 0:
                    step = -lr * s
                else:
                    step = step + di * s / (pi - s)
            else:
                step = -lr * s
            w[i] = <floating>(w[i] + step)
            d[i] = <floating>step
            p[i] = <floating>s
