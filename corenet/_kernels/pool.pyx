# cython: language_level=3
"""Pooling, unpooling and nearest-neighbour upsampling kernels (spec convolution.md §5-6).

Private module: call it through :mod:`corenet.kernels`, which validates shapes, dtypes,
contiguity and the window geometry before anything here runs.

Layout: every array is a C-contiguous stack of planes ``(P, H, W)`` with ``P = N·C``
(the facade reshapes ``(N, C, H, W)``; 1-D pooling uses H = 1). Fused ``floating`` =
float32/float64; switches are int64 flat indices into the ``H·W`` plane of the
unpadded input (D-20).

Window geometry (convolution.md §2, d = 1): output row i covers input rows
``i·sh − ph … i·sh − ph + kh − 1``; rows outside ``0 … H−1`` are padding. Max pooling
skips padded positions (they behave as −∞); the facade guarantees every window holds at
least one real element (padding ≤ kernel/2).

Threads: planes are independent. When ``P·H·W > PARALLEL_MIN`` (32 Ki elements with
spinning OpenMP workers, corenet's default; 1 Mi with OMP_WAIT_POLICY=PASSIVE) the planes
are shared out to ``num_threads`` in chunks of about 16K elements
(``prange(schedule="dynamic")``, so a thread descheduled on a busy machine does not hold
up the others); each plane is
owned by one thread and processed serially in a fixed order, so overlapping-window accumulation and
every sum are deterministic and do not depend on the thread count. Sums (average
pooling, upsampling backward) are accumulated in double in row-major order and rounded
once to the array dtype.

Kernels that read switches check each one against the plane size, skip out-of-range
entries and return how many they skipped (the facade raises if that is not 0).
"""
import os

import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset, memcpy

# Serial up to this many input elements. It depends on the OpenMP wait policy, read when
# this module loads (corenet sets OMP_WAIT_POLICY=ACTIVE with a short GOMP_SPINCOUNT
# unless the user set either): with spinning workers 2 threads gain from ~32 Ki; with
# sleeping ones (PASSIVE) a parallel region costs >= 10 us to wake the other thread, and
# on the 2-core VM 2 threads were slower than 1 below ~0.5 Mi elements (max) / ~1 Mi
# (average pooling, fwd + bwd).
_SLEEPING = (os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
             or os.environ.get("GOMP_SPINCOUNT", "").strip() == "0")
cdef Py_ssize_t _PARALLEL_MIN = 1048576 if _SLEEPING else 32768
PARALLEL_MIN = _PARALLEL_MIN


def _set_parallel_min(Py_ssize_t n):
    """Test/benchmark hook: run serially up to ``n`` elements from now on; returns the
    previous threshold. Not thread-safe."""
    global _PARALLEL_MIN, PARALLEL_MIN
    old = _PARALLEL_MIN
    _PARALLEL_MIN = PARALLEL_MIN = n
    return old


cdef inline int _threads(Py_ssize_t work, int num_threads) noexcept nogil:
    return num_threads if (num_threads > 1 and work > _PARALLEL_MIN) else 1


cdef inline Py_ssize_t _chunk(Py_ssize_t plane_work) noexcept nogil:
    """Planes per dynamically scheduled chunk: about 16K elements of work."""
    return 16384 // plane_work if 0 < plane_work < 16384 else 1


cdef inline Py_ssize_t _imax(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef inline Py_ssize_t _imin(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


# ----------------------------------------------------------------------------- max pooling
cdef inline Py_ssize_t _max_window(const floating* x, Py_ssize_t W, Py_ssize_t hs,
                                   Py_ssize_t he, Py_ssize_t ws,
                                   Py_ssize_t we) noexcept nogil:
    """Flat index of the first maximum of x[hs:he, ws:we] in row-major order, or of the
    first NaN if the window holds one (D-20). The window is not empty."""
    cdef Py_ssize_t a, b, bi = hs * W + ws
    cdef floating best = x[bi], v
    cdef const floating* row
    if best != best:
        return bi
    for a in range(hs, he):
        row = x + a * W
        for b in range(ws, we):
            v = row[b]
            if v > best:
                best = v
                bi = a * W + b
            elif v != v:
                return a * W + b
    return bi


cdef void _max_plane(const floating* x, floating* y, int64_t* sw_out, Py_ssize_t H,
                     Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo, int kh, int kw, int sh,
                     int sw, int ph, int pw) noexcept nogil:
    """Max over each (clipped) window; switch by ``_max_window``."""
    cdef Py_ssize_t i, j, h0, w0, hs, he, bi, k
    for i in range(Ho):
        h0 = i * sh - ph
        hs = _imax(h0, 0)
        he = _imin(h0 + kh, H)
        for j in range(Wo):
            w0 = j * sw - pw
            bi = _max_window(x, W, hs, he, _imax(w0, 0), _imin(w0 + kw, W))
            k = i * Wo + j
            y[k] = x[bi]
            sw_out[k] = bi


cdef void _max_plane_2x2(const floating* x, floating* y, int64_t* sw_out, Py_ssize_t H,
                         Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """Fast path of ``_max_plane`` for 2×2 windows, stride 2, no padding (same result).

    A branch-free tournament: (v0 vs v1), (v2 vs v3), then the two winners; each
    comparison is strict, so ties keep the earlier element (D-20). Windows whose sum is
    NaN (a NaN, or +inf and −inf) take the general path."""
    cdef Py_ssize_t i, j, b, k, i01, i23, bi, c
    cdef floating v0, v1, v2, v3, m01, m23, t
    cdef const floating* r0
    cdef const floating* r1
    for i in range(Ho):
        r0 = x + 2 * i * W
        r1 = r0 + W
        for j in range(Wo):
            b = 2 * j
            v0 = r0[b]
            v1 = r0[b + 1]
            v2 = r1[b]
            v3 = r1[b + 1]
            k = i * Wo + j
            t = v0 + v1 + v2 + v3
            if t == t:
                c = v1 > v0
                i01 = b + c
                m01 = v1 if v1 > v0 else v0
                c = v3 > v2
                i23 = W + b + c
                m23 = v3 if v3 > v2 else v2
                c = m23 > m01
                y[k] = m23 if m23 > m01 else m01
                sw_out[k] = 2 * i * W + i01 + c * (i23 - i01)
            else:
                bi = _max_window(x, W, 2 * i, 2 * i + 2, b, b + 2)
                y[k] = x[bi]
                sw_out[k] = bi


def max_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     int64_t[:, :, ::1] switches, int kh, int kw, int sh, int sw, int ph,
                     int pw, int num_threads=1):
    """Max pooling of (P, H, W) planes into y (P, Ho, Wo) with switches (P, Ho, Wo);
    ph, pw: top and left padding (the bottom/right padding is implied by Ho, Wo)."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2], p
    if y.shape[0] != P or switches.shape[0] != P or switches.shape[1] != Ho \
            or switches.shape[2] != Wo:
        raise ValueError("max_pool_forward kernel: y / switches have the wrong shape")
    if P * Ho * Wo == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef floating* yp = &y[0, 0, 0]
    cdef int64_t* ip = &switches[0, 0, 0]
    cdef int nt = _threads(P * H * W, num_threads)
    cdef bint fast = kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
    cdef Py_ssize_t cs = _chunk(H * W)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            if fast:
                _max_plane_2x2(xp + p * H * W, yp + p * Ho * Wo, ip + p * Ho * Wo, H, W, Ho,
                               Wo)
            else:
                _max_plane(xp + p * H * W, yp + p * Ho * Wo, ip + p * Ho * Wo, H, W, Ho, Wo,
                           kh, kw, sh, sw, ph, pw)


cdef Py_ssize_t _scatter_add_plane(const floating* dy, const int64_t* sw_in, floating* dx,
                                   Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    """dx = 0; dx[switch[k]] += dy[k] for k in row-major output order."""
    cdef Py_ssize_t k, bad = 0
    cdef int64_t s
    memset(dx, 0, n_in * sizeof(floating))
    for k in range(n_out):
        s = sw_in[k]
        if 0 <= s < n_in:
            dx[s] = dx[s] + dy[k]
        else:
            bad = bad + 1
    return bad


def max_pool_backward(const floating[:, :, ::1] dy, const int64_t[:, :, ::1] switches,
                      floating[:, :, ::1] dx, int num_threads=1):
    """dx (P, H, W) = 0, then dx[p].flat[switch] += dy for every output position in
    row-major order (overlapping windows accumulate). Returns the number of skipped
    out-of-range switches."""
    cdef Py_ssize_t P = dx.shape[0], HW = dx.shape[1] * dx.shape[2]
    cdef Py_ssize_t n_out = dy.shape[1] * dy.shape[2], p, bad = 0
    if dy.shape[0] != P or switches.shape[0] != P or switches.shape[1] != dy.shape[1] \
            or switches.shape[2] != dy.shape[2]:
        raise ValueError("max_pool_backward kernel: dy / switches / dx shapes disagree")
    if P * HW == 0:
        return P * n_out            # empty planes: every switch is out of range
    cdef floating* dp = &dx[0, 0, 0]
    if n_out == 0:
        memset(dp, 0, P * HW * sizeof(floating))
        return 0
    cdef const floating* gp = &dy[0, 0, 0]
    cdef const int64_t* ip = &switches[0, 0, 0]
    cdef int nt = _threads(P * HW, num_threads)
    cdef Py_ssize_t cs = _chunk(n_out + HW)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            bad += _scatter_add_plane(gp + p * n_out, ip + p * n_out, dp + p * HW, n_out, HW)
    return bad


# ----------------------------------------------------------------------------- average pooling
cdef void _avg_plane(const floating* x, floating* y, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t Ho, Py_ssize_t Wo, int kh, int kw, int sh, int sw, int ph,
                     int pw, bint include_pad) noexcept nogil:
    cdef Py_ssize_t i, j, a, b, h0, w0, hs, he, ws, we
    cdef double s, m
    cdef const floating* row
    for i in range(Ho):
        h0 = i * sh - ph
        hs = _imax(h0, 0)
        he = _imin(h0 + kh, H)
        for j in range(Wo):
            w0 = j * sw - pw
            ws = _imax(w0, 0)
            we = _imin(w0 + kw, W)
            s = 0.0
            for a in range(hs, he):
                row = x + a * W
                for b in range(ws, we):
                    s = s + row[b]
            m = <double>(kh * kw) if include_pad else <double>((he - hs) * (we - ws))
            y[i * Wo + j] = <floating>(s / m)


cdef void _avg_plane_2x2(const floating* x, floating* y, Py_ssize_t W, Py_ssize_t Ho,
                         Py_ssize_t Wo) noexcept nogil:
    """Fast path of ``_avg_plane`` for 2×2 windows, stride 2, no padding (same result)."""
    cdef Py_ssize_t i, j, b
    cdef const floating* r0
    cdef const floating* r1
    for i in range(Ho):
        r0 = x + 2 * i * W
        r1 = r0 + W
        for j in range(Wo):
            b = 2 * j
            y[i * Wo + j] = <floating>((((<double>r0[b] + r0[b + 1]) + r1[b]) + r1[b + 1])
                                       / 4.0)


def avg_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int kh, int kw,
                     int sh, int sw, int ph, int pw, bint include_pad=True, int num_threads=1):
    """Average pooling of (P, H, W) planes into y (P, Ho, Wo): the window sum divided by
    kh·kw (``include_pad``) or by the number of in-bounds elements."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2], p
    if y.shape[0] != P:
        raise ValueError("avg_pool_forward kernel: y has the wrong shape")
    if P * Ho * Wo == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef floating* yp = &y[0, 0, 0]
    cdef int nt = _threads(P * H * W, num_threads)
    cdef bint fast = kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
    cdef Py_ssize_t cs = _chunk(H * W)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            if fast:
                _avg_plane_2x2(xp + p * H * W, yp + p * Ho * Wo, W, Ho, Wo)
            else:
                _avg_plane(xp + p * H * W, yp + p * Ho * Wo, H, W, Ho, Wo, kh, kw, sh, sw,
                           ph, pw, include_pad)


cdef void _window_ranges(Py_ssize_t n_in, Py_ssize_t n_out, int k, int s, int pad,
                         Py_ssize_t* lo, Py_ssize_t* hi, double* count) noexcept nogil:
    """For each input index a: the outputs i in [lo[a], hi[a]) whose window covers a;
    count[i] = number of in-bounds inputs of window i."""
    cdef Py_ssize_t a, i, first, last
    for a in range(n_in):
        # i·s − pad <= a <= i·s − pad + k − 1
        first = a + pad - k + 1
        first = 0 if first <= 0 else (first + s - 1) // s
        last = (a + pad) // s
        lo[a] = first
        hi[a] = _imin(last + 1, n_out)
        if hi[a] < lo[a]:
            hi[a] = lo[a]
    for i in range(n_out):
        count[i] = <double>(_imin(i * s - pad + k, n_in) - _imax(i * s - pad, 0))


cdef void _avg_back_plane(const floating* dy, floating* dx, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t Wo, const Py_ssize_t* rlo, const Py_ssize_t* rhi,
                          const Py_ssize_t* clo, const Py_ssize_t* chi, const double* rcnt,
                          const double* ccnt, double m_full, bint include_pad) noexcept nogil:
    """dx[a, b] = Σ over the windows (i, j) covering (a, b), in row-major (i, j) order,
    of dy[i, j] / m[i, j] (a gather: every dx element is written once)."""
    cdef Py_ssize_t a, b, i, j
    cdef double s
    for a in range(H):
        for b in range(W):
            s = 0.0
            for i in range(rlo[a], rhi[a]):
                for j in range(clo[b], chi[b]):
                    if include_pad:
                        s = s + dy[i * Wo + j] / m_full
                    else:
                        s = s + dy[i * Wo + j] / (rcnt[i] * ccnt[j])
            dx[a * W + b] = <floating>s


cdef void _avg_back_plane_2x2(const floating* dy, floating* dx, Py_ssize_t H, Py_ssize_t W,
                              Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """Fast path of ``_avg_back_plane`` for 2×2 windows, stride 2, no padding: each input
    lies in at most one window; rows/columns no window reaches get 0."""
    cdef Py_ssize_t i, j, b
    cdef floating g
    cdef floating* r0
    cdef floating* r1
    for i in range(Ho):
        r0 = dx + 2 * i * W
        r1 = r0 + W
        for j in range(Wo):
            g = <floating>(dy[i * Wo + j] / 4.0)
            b = 2 * j
            r0[b] = g
            r0[b + 1] = g
            r1[b] = g
            r1[b + 1] = g
        if W > 2 * Wo:
            r0[W - 1] = 0
            r1[W - 1] = 0
    if H > 2 * Ho:
        memset(dx + 2 * Ho * W, 0, (H - 2 * Ho) * W * sizeof(floating))


def avg_pool_backward(const floating[:, :, ::1] dy, floating[:, :, ::1] dx, int kh, int kw,
                      int sh, int sw, int ph, int pw, bint include_pad=True,
                      int num_threads=1):
    """Average-pooling backward: every in-bounds element of window (i, j) receives
    dy[i, j] / m (accumulated over overlapping windows). dx: (P, H, W)."""
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t Ho = dy.shape[1], Wo = dy.shape[2], p
    if dy.shape[0] != P:
        raise ValueError("avg_pool_backward kernel: dy / dx shapes disagree")
    if P * H * W == 0:
        return
    cdef floating* dp = &dx[0, 0, 0]
    if Ho * Wo == 0:
        memset(dp, 0, P * H * W * sizeof(floating))
        return
    cdef Py_ssize_t[::1] rlo = np.empty(H, dtype=np.intp), rhi = np.empty(H, dtype=np.intp)
    cdef Py_ssize_t[::1] clo = np.empty(W, dtype=np.intp), chi = np.empty(W, dtype=np.intp)
    cdef double[::1] rcnt = np.empty(Ho, dtype=np.float64)
    cdef double[::1] ccnt = np.empty(Wo, dtype=np.float64)
    _window_ranges(H, Ho, kh, sh, ph, &rlo[0], &rhi[0], &rcnt[0])
    _window_ranges(W, Wo, kw, sw, pw, &clo[0], &chi[0], &ccnt[0])
    cdef const floating* gp = &dy[0, 0, 0]
    cdef int nt = _threads(P * H * W, num_threads)
    cdef double m_full = <double>(kh * kw)
    cdef bint fast = kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
    cdef Py_ssize_t cs = _chunk(H * W)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            if fast:
                _avg_back_plane_2x2(gp + p * Ho * Wo, dp + p * H * W, H, W, Ho, Wo)
            else:
                    _avg_back_plane(gp + p * Ho * Wo, dp + p * H * W, H, W, Wo, &rlo[0],
                                &rhi[0], &clo[0], &chi[0], &rcnt[0], &ccnt[0], m_full,
                                include_pad)


# ----------------------------------------------------------------------------- unpooling
cdef Py_ssize_t _unpool_plane(const floating* x, const int64_t* sw_in, floating* y,
                              Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """y = 0; y.flat[switch[k]] = x[k] in row-major order (the last writer wins)."""
    cdef Py_ssize_t k, bad = 0
    cdef int64_t s
    memset(y, 0, n_out * sizeof(floating))
    for k in range(n_in):
        s = sw_in[k]
        if 0 <= s < n_out:
            y[s] = x[k]
        else:
            bad = bad + 1
    return bad


def max_unpool_forward(const floating[:, :, ::1] x, const int64_t[:, :, ::1] switches,
                       floating[:, :, ::1] y, int num_threads=1):
    """Max-unpooling (convolution.md §6.1): y (P, Ho, Wo) zero except
    y[p].flat[switch] = x. Returns the number of skipped out-of-range switches."""
    cdef Py_ssize_t P = x.shape[0], n_in = x.shape[1] * x.shape[2]
    cdef Py_ssize_t n_out = y.shape[1] * y.shape[2], p, bad = 0
    if y.shape[0] != P or switches.shape[0] != P or switches.shape[1] != x.shape[1] \
            or switches.shape[2] != x.shape[2]:
        raise ValueError("max_unpool_forward kernel: x / switches / y shapes disagree")
    if P * n_out == 0:
        return 0
    cdef floating* yp = &y[0, 0, 0]
    if n_in == 0:
        memset(yp, 0, P * n_out * sizeof(floating))
        return 0
    cdef const floating* xp = &x[0, 0, 0]
    cdef const int64_t* ip = &switches[0, 0, 0]
    cdef int nt = _threads(P * n_out, num_threads)
    cdef Py_ssize_t cs = _chunk(n_in + n_out)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            bad += _unpool_plane(xp + p * n_in, ip + p * n_in, yp + p * n_out, n_in, n_out)
    return bad


cdef Py_ssize_t _gather_plane(const floating* dy, const int64_t* sw_in, floating* dx,
                              unsigned char* claimed, Py_ssize_t n_in,
                              Py_ssize_t n_out) noexcept nogil:
    """dx[k] = dy[switch[k]] for the entry that the forward pass wrote last at that switch
    (the last k in row-major order); entries it overwrote get 0 (exact gradient)."""
    cdef Py_ssize_t k, bad = 0
    cdef int64_t s
    memset(claimed, 0, n_out)
    for k in range(n_in - 1, -1, -1):
        s = sw_in[k]
        if 0 <= s < n_out:
            if claimed[s]:
                dx[k] = 0
            else:
                claimed[s] = 1
                dx[k] = dy[s]
        else:
            dx[k] = 0
            bad = bad + 1
    return bad


def max_unpool_backward(const floating[:, :, ::1] dy, const int64_t[:, :, ::1] switches,
                        floating[:, :, ::1] dx, unsigned char[:, ::1] scratch,
                        int num_threads=1):
    """Gradient of ``max_unpool_forward``: dx[p, i, j] = dy[p].flat[switch[p, i, j]] when
    (i, j) is the last entry in row-major order with that switch, else 0 (only overlapping
    pools repeat switches). ``scratch``: uint8 (P, Ho·Wo) work space. Returns the number of
    out-of-range switches (their dx is 0)."""
    cdef Py_ssize_t P = dx.shape[0], n_in = dx.shape[1] * dx.shape[2]
    cdef Py_ssize_t n_out = dy.shape[1] * dy.shape[2], p, bad = 0
    if dy.shape[0] != P or switches.shape[0] != P or switches.shape[1] != dx.shape[1] \
            or switches.shape[2] != dx.shape[2]:
        raise ValueError("max_unpool_backward kernel: dy / switches / dx shapes disagree")
    if scratch.shape[0] != P or scratch.shape[1] != n_out:
        raise ValueError("max_unpool_backward kernel: scratch must have shape (P, Ho*Wo)")
    if P * n_in == 0:
        return 0
    cdef floating* dp = &dx[0, 0, 0]
    cdef const int64_t* ip = &switches[0, 0, 0]
    if n_out == 0:
        memset(dp, 0, P * n_in * sizeof(floating))
        return P * n_in
    cdef const floating* gp = &dy[0, 0, 0]
    cdef unsigned char* cp = &scratch[0, 0]
    cdef int nt = _threads(P * n_out, num_threads)
    cdef Py_ssize_t cs = _chunk(n_in + n_out)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            bad += _gather_plane(gp + p * n_out, ip + p * n_in, dp + p * n_in, cp + p * n_out,
                                 n_in, n_out)
    return bad


# ----------------------------------------------------------------------------- nearest upsampling
cdef void _up_plane(const floating* x, floating* y, Py_ssize_t H, Py_ssize_t W, int sh,
                    int sw, double scale, bint scaled) noexcept nogil:
    """y[i, j] = scale · x[i // sh, j // sw]: build each output row once, copy it sh−1 times."""
    cdef Py_ssize_t a, b, t, r, Wo = W * sw
    cdef floating v
    cdef floating* row
    for a in range(H):
        row = y + a * sh * Wo
        for b in range(W):
            v = <floating>(x[a * W + b] * scale) if scaled else x[a * W + b]
            for t in range(sw):
                row[b * sw + t] = v
        for r in range(1, sh):
            memcpy(row + r * Wo, row, Wo * sizeof(floating))


def upsample_nearest_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int sh,
                             int sw, double scale=1.0, int num_threads=1):
    """Nearest-neighbour upsampling (convolution.md §6.2) of (P, H, W) planes into
    y (P, H·sh, W·sw), every copy multiplied by ``scale`` (1 or 1/(sh·sw))."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2], p
    if y.shape[0] != P or y.shape[1] != H * sh or y.shape[2] != W * sw:
        raise ValueError("upsample_nearest_forward kernel: y has the wrong shape")
    if P * H * W == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef floating* yp = &y[0, 0, 0]
    cdef int nt = _threads(P * H * W * sh * sw, num_threads)
    cdef bint scaled = scale != 1.0
    cdef Py_ssize_t cs = _chunk(H * W * sh * sw)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            _up_plane(xp + p * H * W, yp + p * H * W * sh * sw, H, W, sh, sw, scale, scaled)


cdef void _up_back_plane(const floating* dy, floating* dx, Py_ssize_t H, Py_ssize_t W,
                         int sh, int sw, double scale) noexcept nogil:
    """dx[a, b] = scale · Σ of dy over the sh×sw block (row-major, in double)."""
    cdef Py_ssize_t a, b, r, t, Wo = W * sw
    cdef double s
    cdef const floating* blk
    for a in range(H):
        for b in range(W):
            s = 0.0
            blk = dy + a * sh * Wo + b * sw
            for r in range(sh):
                for t in range(sw):
                    s = s + blk[r * Wo + t]
            dx[a * W + b] = <floating>(s * scale)


def upsample_nearest_backward(const floating[:, :, ::1] dy, floating[:, :, ::1] dx, int sh,
                              int sw, double scale=1.0, int num_threads=1):
    """Transpose of ``upsample_nearest_forward``: dx (P, H, W) = scale · block sums of
    dy (P, H·sh, W·sw) (sum pooling)."""
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2], p
    if dy.shape[0] != P or dy.shape[1] != H * sh or dy.shape[2] != W * sw:
        raise ValueError("upsample_nearest_backward kernel: dy has the wrong shape")
    if P * H * W == 0:
        return
    cdef const floating* gp = &dy[0, 0, 0]
    cdef floating* dp = &dx[0, 0, 0]
    cdef int nt = _threads(P * H * W * sh * sw, num_threads)
    cdef Py_ssize_t cs = _chunk(H * W * sh * sw)
    with nogil:
        for p in prange(P, num_threads=nt, schedule="dynamic", chunksize=cs):
            _up_back_plane(gp + p * H * W * sh * sw, dp + p * H * W, H, W, sh, sw, scale)
