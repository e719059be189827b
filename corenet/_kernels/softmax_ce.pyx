# cython: language_level=3
"""Row-wise softmax, log-softmax and fused softmax cross-entropy kernels
(spec networks.md §2.3 and §3.4, README §10).

Private module: call it through :mod:`corenet.kernels`, which validates first.
Inputs are C-contiguous (N, K) float32/float64 arrays (fused type ``floating``); outputs
are caller-provided. Every row subtracts its maximum before exponentiating, so logits of
any finite size give finite results. Rows are independent and each row is reduced
serially in index order (sums in the array dtype), so results do not depend on the
thread count; rows run under ``prange(schedule="static")`` when N·K > ``PARALLEL_MIN``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log
from libc.stdint cimport int64_t

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN


cdef inline int _threads(Py_ssize_t n, int num_threads) noexcept nogil:
    return num_threads if (num_threads > 1 and n > _PARALLEL_MIN) else 1


cdef inline floating _row_max(const floating* z, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    cdef floating m = z[0]
    for k in range(1, K):
        if z[k] > m:
            m = z[k]
    return m


cdef void _softmax_row(const floating* z, floating* p, Py_ssize_t K) noexcept nogil:
    """p = exp(z - m) / Σ exp(z - m); p may alias z."""
    cdef Py_ssize_t k
    cdef floating m = _row_max(z, K), e, s = 0
    for k in range(K):
        e = <floating>exp(z[k] - m)
        p[k] = e
        s = s + e
    for k in range(K):
        p[k] = p[k] / s


cdef void _log_softmax_row(const floating* z, floating* q, Py_ssize_t K) noexcept nogil:
    """q = z - m - log Σ exp(z - m); q may alias z."""
    cdef Py_ssize_t k
    cdef floating m = _row_max(z, K), s = 0, ls
    for k in range(K):
        s = s + <floating>exp(z[k] - m)
    ls = <floating>log(s)
    for k in range(K):
        q[k] = (z[k] - m) - ls


cdef floating _ce_row(const floating* z, const floating* y, int64_t label, floating* g,
                      Py_ssize_t K) noexcept nogil:
    """Loss -Σ y_k log_softmax(z)_k and grad softmax(z) - y of one row; ``y`` NULL means
    the one-hot row of ``label``. g must not alias z or y."""
    cdef Py_ssize_t k
    cdef floating m = _row_max(z, K), s = 0, e, ls, loss = 0, t
    for k in range(K):
        e = <floating>exp(z[k] - m)
        g[k] = e
        s = s + e
    ls = <floating>log(s)
    if y == NULL:
        for k in range(K):
            g[k] = g[k] / s
        g[label] = g[label] - 1
        return -((z[label] - m) - ls)
    for k in range(K):
        t = y[k]
        g[k] = g[k] / s - t
        loss = loss - t * ((z[k] - m) - ls)
    return loss


def softmax(const floating[:, ::1] z, floating[:, ::1] out, int num_threads=1):
    """Row-wise softmax of z (N, K) into out (N, K); out may be z itself."""
    cdef Py_ssize_t N = z.shape[0], K = z.shape[1], r
    if N == 0 or K == 0:
        return
    cdef const floating* zp = &z[0, 0]
    cdef floating* op = &out[0, 0]
    cdef int nt = _threads(N * K, num_threads)
    with nogil:
        for r in prange(N, num_threads=nt, schedule="static"):
            _softmax_row(zp + r * K, op + r * K, K)


def log_softmax(const floating[:, ::1] z, floating[:, ::1] out, int num_threads=1):
    """Row-wise log-softmax of z (N, K) into out (N, K); out may be z itself."""
    cdef Py_ssize_t N = z.shape[0], K = z.shape[1], r
    if N == 0 or K == 0:
        return
    cdef const floating* zp = &z[0, 0]
    cdef floating* op = &out[0, 0]
    cdef int nt = _threads(N * K, num_threads)
    with nogil:
        for r in prange(N, num_threads=nt, schedule="static"):
            _log_softmax_row(zp + r * K, op + r * K, K)


def softmax_cross_entropy(const floating[:, ::1] z, const floating[:, ::1] y,
                          floating[::1] loss, floating[:, ::1] grad, int num_threads=1):
    """Per-sample ``loss[n] = -Σ_k y_nk log_softmax(z_n)_k`` and ``grad = softmax(z) - y``
    for float targets y (N, K) (rows summing to 1); grad must not alias z or y."""
    cdef Py_ssize_t N = z.shape[0], K = z.shape[1], r
    if N == 0 or K == 0:
        return
    cdef const floating* zp = &z[0, 0]
    cdef const floating* yp = &y[0, 0]
    cdef floating* lp = &loss[0]
    cdef floating* gp = &grad[0, 0]
    cdef int nt = _threads(N * K, num_threads)
    with nogil:
        for r in prange(N, num_threads=nt, schedule="static"):
            lp[r] = _ce_row(zp + r * K, yp + r * K, 0, gp + r * K, K)


def softmax_cross_entropy_labels(const floating[:, ::1] z, const int64_t[::1] labels,
                                 floating[::1] loss, floating[:, ::1] grad,
                                 int num_threads=1):
    """As :func:`softmax_cross_entropy` with integer labels (N,) in 0..K-1 (checked by the
    caller): ``loss[n] = -log_softmax(z_n)[labels[n]]``, ``grad = softmax(z) - onehot``."""
    cdef Py_ssize_t N = z.shape[0], K = z.shape[1], r
    if N == 0 or K == 0:
        return
    cdef const floating* zp = &z[0, 0]
    cdef const int64_t* cp = &labels[0]
    cdef floating* lp = &loss[0]
    cdef floating* gp = &grad[0, 0]
    cdef int nt = _threads(N * K, num_threads)
    with nogil:
        for r in prange(N, num_threads=nt, schedule="static"):
            lp[r] = _ce_row(zp + r * K, NULL, cp[r], gp + r * K, K)
