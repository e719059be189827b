# cython: language_level=3
"""Element-wise activation kernels, forward and backward (spec networks.md §2.2, README §10).

Private module: call it through :mod:`corenet.kernels`, which validates shapes, dtypes
and contiguity before anything here runs without the GIL.

* Arrays are flat, C-contiguous, float32 or float64 (fused type ``floating``); the
  caller provides the output buffer (``out`` / ``dx``), which may alias an input.
* The element loops are C (``activation_simd.h``): formulas evaluated in the array
  dtype (float32 arithmetic and float library functions for float32), branch-free,
  vectorised (glibc libmvec; for float32 on AVX-512 an own exp and, for GELU, an own
  Φ; accuracy in that header), compiled for SSE2/AVX2/AVX-512F and picked at import
  (``SIMD_ISA``). :mod:`corenet._reference` evaluates the same formulas in float64 and
  rounds once; kernel and twin agree within the spec's tolerance (README §3.1).
* Arrays with more than ``PARALLEL_MIN`` elements (``PARALLEL_MIN_CHEAP`` for the
  memory-bound loops: identity, relu, leaky/generalized relu, softsign, sign and the
  output-based backward routes; both depend on the OpenMP wait policy, see below) are
  cut into chunks of 65,536 elements (multiples of 64) handed out to ``num_threads``
  threads by ``prange(schedule="dynamic")``, so the calling thread computes while the
  other one wakes up; smaller ones run serially (the wake-up costs more than it saves).
  Every element is computed by the same instructions wherever its chunk starts, so
  results do not depend on the thread count (bit-identical).
* relu / leaky_relu / generalized_relu also have a route with a bit mask
  (``mask_forward`` / ``mask_backward``): the forward writes one bit per element where
  f' = 1, the backward reads those n/8 bytes instead of x.
* Kinks (D-04): the point x = 0 belongs to the left branch (``x <= 0``).
* ``activation_backward(..., from_y=True)`` receives the cached output y instead of x
  (codes in ``FROM_Y``: sigmoid, sigmoid_symmetric, tanh, scaled_tanh, elu, selu).
"""
import os

from cython cimport floating
from cython.parallel cimport prange

cdef extern from "activation_simd.h" nogil:
    enum:
        A_IDENTITY, A_SIGMOID, A_SIGMOID_SYM, A_TANH, A_SCALED_TANH, A_ARCTAN, A_SOFTSIGN,
        A_RELU, A_LEAKY, A_ELU, A_SELU, A_SOFTPLUS, A_ERF, A_GAUSSIAN, A_SIGN, A_GELU,
        A_SILU, A_NCODES
    int cn_init_isa()
    int cn_set_isa(int isa)
    void cn_fwd_f32(int code, const float* x, float* y, Py_ssize_t n, double p1, double p2)
    void cn_fwd_f64(int code, const double* x, double* y, Py_ssize_t n, double p1, double p2)
    void cn_bwd_f32(int code, const float* x, const float* dy, float* dx, Py_ssize_t n,
                    double p1, double p2, int from_y)
    void cn_bwd_f64(int code, const double* x, const double* dy, double* dx, Py_ssize_t n,
                    double p1, double p2, int from_y)
    void cn_mfwd_f32(int code, const float* x, float* y, unsigned char* bits, Py_ssize_t n,
                     double p1)
    void cn_mfwd_f64(int code, const double* x, double* y, unsigned char* bits, Py_ssize_t n,
                     double p1)
    void cn_mbwd_f32(const unsigned char* bits, const float* dy, float* dx, Py_ssize_t n,
                     double p1)
    void cn_mbwd_f64(const unsigned char* bits, const double* dy, double* dx, Py_ssize_t n,
                     double p1)
    void cn_elem_f32(int which, const float* x, float* y, Py_ssize_t n)
    void cn_elem_f64(int which, const double* x, double* y, Py_ssize_t n)

SIMD_LEVELS = ("baseline", "avx2", "avx512f")
SIMD_ISA = SIMD_LEVELS[cn_init_isa()]      # instruction set of the loops on this CPU


def _use_simd_isa(name):
    """Test hook: run the loops compiled for ``name`` (one of ``SIMD_LEVELS`` up to
    ``SIMD_ISA``) from now on; returns the previous name. Not thread-safe."""
    if name not in SIMD_LEVELS or SIMD_LEVELS.index(name) > SIMD_LEVELS.index(SIMD_ISA):
        raise ValueError(f"activation kernels: instruction set {name!r} is not available "
                         f"(this CPU: up to {SIMD_ISA!r})")
    return SIMD_LEVELS[cn_set_isa(SIMD_LEVELS.index(name))]


def _elementary(str name, const floating[::1] x, floating[::1] out):
    """Test hook: ``out = exp(x)`` (name "exp") or ``Φ(x)`` (name "phi", the standard
    normal CDF as GELU computes it) through the same block routines as the kernels."""
    cdef int which = {"exp": 0, "phi": 1}[name]
    if out.shape[0] != x.shape[0]:
        raise ValueError("_elementary: x and out differ in length")
    if x.shape[0] == 0:
        return
    if floating is float:
        cn_elem_f32(which, &x[0], &out[0], x.shape[0])
    else:
        cn_elem_f64(which, &x[0], &out[0], x.shape[0])


# Serial below these sizes (see the module doc). They depend on the OpenMP wait policy,
# read when this module loads (corenet/__init__.py sets OMP_WAIT_POLICY=ACTIVE with
# GOMP_SPINCOUNT=2000, a short spin, unless the user set either). ACTIVE (the worker
# still spins when the next region starts, a few us per region): on the 2-core VM 2
# threads save ~30 % from 64 Ki elements on for the transcendental loops and break even
# at ~256 Ki for relu. PASSIVE (sleeping workers, >= 10 us per region, and the woken
# worker often shares the caller's core): sigmoid gains from ~256 Ki elements; the
# memory-bound loops lose below ~1 Mi.
# Parallel loops hand out chunks of _CHUNK elements dynamically, so the calling thread
# works on while the other one wakes up.
_SLEEPING = (os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
             or os.environ.get("GOMP_SPINCOUNT", "").strip() == "0")
cdef Py_ssize_t _PARALLEL_MIN = 262144 if _SLEEPING else 65536
cdef Py_ssize_t _PARALLEL_MIN_CHEAP = 1048576 if _SLEEPING else 262144
cdef Py_ssize_t _CHUNK = 65536
PARALLEL_MIN = _PARALLEL_MIN
PARALLEL_MIN_CHEAP = _PARALLEL_MIN_CHEAP


def _set_parallel(Py_ssize_t minimum, Py_ssize_t minimum_cheap, Py_ssize_t chunk):
    """Test/benchmark hook: set the serial thresholds and the chunk length (a multiple of 64);
    returns the previous three. Not thread-safe."""
    global _PARALLEL_MIN, _PARALLEL_MIN_CHEAP, _CHUNK, PARALLEL_MIN, PARALLEL_MIN_CHEAP
    old = (_PARALLEL_MIN, _PARALLEL_MIN_CHEAP, _CHUNK)
    if chunk <= 0 or chunk % 64:
        raise ValueError(f"chunk must be a positive multiple of 64, got {chunk}")
    _PARALLEL_MIN, _PARALLEL_MIN_CHEAP, _CHUNK = minimum, minimum_cheap, chunk
    PARALLEL_MIN, PARALLEL_MIN_CHEAP = minimum, minimum_cheap
    return old


CODES = {"identity": A_IDENTITY, "sigmoid": A_SIGMOID, "sigmoid_symmetric": A_SIGMOID_SYM,
         "tanh": A_TANH, "scaled_tanh": A_SCALED_TANH, "arctan": A_ARCTAN,
         "softsign": A_SOFTSIGN, "relu": A_RELU, "leaky_relu": A_LEAKY,
         "generalized_relu": A_LEAKY, "elu": A_ELU, "selu": A_SELU, "softplus": A_SOFTPLUS,
         "erf": A_ERF, "gaussian": A_GAUSSIAN, "sign": A_SIGN, "gelu": A_GELU,
         "silu": A_SILU}
FROM_Y = frozenset({A_SIGMOID, A_SIGMOID_SYM, A_TANH, A_SCALED_TANH, A_ELU, A_SELU})
NOT_DIFFERENTIABLE = frozenset({A_SIGN})


cdef void _fwd(int code, const floating* x, floating* y, Py_ssize_t lo, Py_ssize_t hi,
               double p1, double p2) noexcept nogil:
    """y[i] = f(x[i]) for lo <= i < hi (the C loops of activation_simd.h)."""
    if hi <= lo:
        return
    if floating is float:
        cn_fwd_f32(code, x + lo, y + lo, hi - lo, p1, p2)
    else:
        cn_fwd_f64(code, x + lo, y + lo, hi - lo, p1, p2)


cdef void _bwd(int code, const floating* x, const floating* dy, floating* dx, Py_ssize_t lo,
               Py_ssize_t hi, double p1, double p2, bint from_y) noexcept nogil:
    """dx[i] = dy[i] * f'(x[i]) for lo <= i < hi; with ``from_y`` x holds y = f(x)."""
    if hi <= lo:
        return
    if floating is float:
        cn_bwd_f32(code, x + lo, dy + lo, dx + lo, hi - lo, p1, p2, from_y)
    else:
        cn_bwd_f64(code, x + lo, dy + lo, dx + lo, hi - lo, p1, p2, from_y)


cdef inline bint _cheap(int code, bint backward, bint from_y) noexcept nogil:
    """Memory-bound loops (no transcendental function per element)."""
    if code == A_IDENTITY or code == A_RELU or code == A_LEAKY or code == A_SOFTSIGN \
            or code == A_SIGN:
        return True
    return backward and (from_y or code == A_ARCTAN)


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int num_threads, bint cheap) noexcept nogil:
    """1 (serial) for small arrays, else chunks of about ``_CHUNK`` elements."""
    if num_threads <= 1 or n <= (_PARALLEL_MIN_CHEAP if cheap else _PARALLEL_MIN):
        return 1
    return (n + _CHUNK - 1) // _CHUNK


cdef inline Py_ssize_t _chunk_len(Py_ssize_t n, Py_ssize_t nchunks) noexcept nogil:
    """ceil(n / nchunks) rounded up to 64 elements (chunks start on cache lines)."""
    cdef Py_ssize_t c = (n + nchunks - 1) // nchunks
    return (c + 63) // 64 * 64


cdef void _check_code(int code, bint backward) except *:
    if code < 0 or code >= A_NCODES:
        raise ValueError(f"activation kernel: unknown activation code {code}")
    if backward and code == A_SIGN:
        raise ValueError("activation kernel: 'sign' is not differentiable")


cdef inline Py_ssize_t _chunk_end(Py_ssize_t t, Py_ssize_t chunk,
                                  Py_ssize_t n) noexcept nogil:
    """End of chunk t (chunks of ``chunk`` elements, the last one cut at n)."""
    return n if (t + 1) * chunk > n else (t + 1) * chunk


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
    nchunks = _n_chunks(n, num_threads, _cheap(code, False, False))
    chunk = _chunk_len(n, nchunks)
    with nogil:
        if nchunks == 1:
            _fwd(code, xp, yp, 0, n, p1, p2)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
                lo = t * chunk
                hi = _chunk_end(t, chunk, n)
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
    nchunks = _n_chunks(n, num_threads, _cheap(code, True, from_y))
    chunk = _chunk_len(n, nchunks)
    with nogil:
        if nchunks == 1:
            _bwd(code, xp, gp, dp, 0, n, p1, p2, from_y)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
                lo = t * chunk
                hi = _chunk_end(t, chunk, n)
                if lo < hi:
                    _bwd(code, xp, gp, dp, lo, hi, p1, p2, from_y)


# ----------------------------------------------------------------------------- bit masks
# relu / leaky_relu / generalized_relu: forward writes y and one bit per element, bit
# i % 8 of byte i // 8 = not (x[i] <= 0) (numpy.packbits(..., bitorder="little")); the
# backward dx = dy * (1 if bit else alpha) reads those n/8 bytes instead of x or y.
MASK_CODES = frozenset({A_RELU, A_LEAKY})


cdef inline void _mfwd(int code, const floating* x, floating* y, unsigned char* bits,
                       Py_ssize_t lo, Py_ssize_t hi, double p1) noexcept nogil:
    """Elements lo <= i < hi (lo a multiple of 8)."""
    if hi <= lo:
        return
    if floating is float:
        cn_mfwd_f32(code, x + lo, y + lo, bits + lo // 8, hi - lo, p1)
    else:
        cn_mfwd_f64(code, x + lo, y + lo, bits + lo // 8, hi - lo, p1)


cdef inline void _mbwd(const unsigned char* bits, const floating* dy, floating* dx,
                       Py_ssize_t lo, Py_ssize_t hi, double p1) noexcept nogil:
    if hi <= lo:
        return
    if floating is float:
        cn_mbwd_f32(bits + lo // 8, dy + lo, dx + lo, hi - lo, p1)
    else:
        cn_mbwd_f64(bits + lo // 8, dy + lo, dx + lo, hi - lo, p1)


def mask_forward(int code, const floating[::1] x, floating[::1] out, unsigned char[::1] bits,
                 double p1=0.0, int num_threads=1):
    """``out[i] = f(x[i])`` (relu or leaky, code in ``MASK_CODES``; bit-identical to
    ``activation_forward``) and the bit mask ``bits`` ((n + 7) // 8 bytes). out may be x."""
    cdef Py_ssize_t n = x.shape[0], t, chunk, lo, hi, nchunks
    if code not in MASK_CODES:
        raise ValueError(f"mask_forward kernel: code {code} has no mask route")
    if out.shape[0] != n or bits.shape[0] != (n + 7) // 8:
        raise ValueError(f"mask_forward kernel: out has {out.shape[0]} elements and bits "
                         f"{bits.shape[0]} bytes for n = {n} (need n and (n + 7) // 8)")
    if n == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* yp = &out[0]
    cdef unsigned char* bp = &bits[0]
    nchunks = _n_chunks(n, num_threads, True)
    chunk = _chunk_len(n, nchunks)                  # a multiple of 64: whole bytes
    with nogil:
        if nchunks == 1:
            _mfwd(code, xp, yp, bp, 0, n, p1)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
                lo = t * chunk
                hi = _chunk_end(t, chunk, n)
                if lo < hi:
                    _mfwd(code, xp, yp, bp, lo, hi, p1)


def mask_backward(const unsigned char[::1] bits, const floating[::1] dy, floating[::1] dx,
                  double p1=0.0, int num_threads=1):
    """``dx[i] = dy[i] * (1 if bit i else p1)`` (p1 = alpha; 0 for relu): bit-identical to
    ``activation_backward`` from the x the bits were made from. dx may alias dy."""
    cdef Py_ssize_t n = dy.shape[0], t, chunk, lo, hi, nchunks
    if dx.shape[0] != n or bits.shape[0] != (n + 7) // 8:
        raise ValueError(f"mask_backward kernel: dx has {dx.shape[0]} elements and bits "
                         f"{bits.shape[0]} bytes for n = {n} (need n and (n + 7) // 8)")
    if n == 0:
        return
    cdef const unsigned char* bp = &bits[0]
    cdef const floating* gp = &dy[0]
    cdef floating* dp = &dx[0]
    nchunks = _n_chunks(n, num_threads, True)
    chunk = _chunk_len(n, nchunks)
    with nogil:
        if nchunks == 1:
            _mbwd(bp, gp, dp, 0, n, p1)
        else:
            for t in prange(nchunks, num_threads=num_threads, schedule="dynamic"):
                lo = t * chunk
                hi = _chunk_end(t, chunk, n)
                if lo < hi:
                    _mbwd(bp, gp, dp, lo, hi, p1)


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
    cdef int nt = num_threads if _n_chunks(N * C * S, num_threads, True) > 1 else 1
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
    cdef int nt = num_threads if _n_chunks(N * C * S, num_threads, True) > 1 else 1
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
