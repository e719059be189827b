# cython: language_level=3
"""Direct float32 convolution passes for small stride-1 layers (spec convolution.md
§3.2-3.3): no im2col buffer, no GEMM packing; the SIMD loops of conv_simd.h.

Private module: call it through :mod:`corenet.kernels`, which validates shapes, dtypes,
contiguity and the workspace and repacks the weights before anything here runs without
the GIL. Geometry of one sample (groups 1, stride 1): x ``(C, H, W)``, output
``(O, Ho, Wo)``, kernel ``(kh, kw)``, dilation ``(dh, dw)``, top/left padding
``(ph, pw)`` (bottom/right implied by the sizes, as in conv.pyx). The sample is padded into
xp (C planes Hp × Wp, Hp = Ho + dh(kh − 1), Wp = Wo + dw(kw − 1)) and the output is
computed on the wide grid of Mr positions per channel (conv_simd.h):

    forward_pass      y_n = Σ_taps W[:, :, p, q] · shift(xp_n)  (+ bias)
    weight_grad_pass  dWt[chunk] = Σ_{n in chunk} Σ_m dy_n[o, m] · xp_n[c, m + off(p, q)]

Weights are repacked as wt ``(C, kh, kw, O)`` and weight gradients returned in that
layout. When every output row is a whole number of vectors (Wo = 16, 32, … on AVX-512)
the forward computes only real columns; wide layers (O >= two vectors, C >= 4) take the
weight gradient with output channels in the vector lanes (dy transposed), others with
output channels × kernel columns or × input channels in registers (conv_simd.h). The input gradient of a stride-1 convolution is the forward pass of dy with the
flipped, transposed kernel (the facade sets that up). Threads: samples (forward) or fixed
sample chunks (weight gradient; chunk boundaries depend on N and the chunk count only)
under ``prange(schedule="dynamic")``, each thread on its own slice of the workspace.
"""
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from corenet._kernels.conv_pad cimport pad_planes

cdef extern from "conv_simd.h" nogil:
    int cn_conv_isa()
    Py_ssize_t cn_conv_tile(int isa)
    void cn_conv_fwd_f32(int isa, const float* xp, Py_ssize_t C, Py_ssize_t P,
                         Py_ssize_t Wp, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh,
                         Py_ssize_t dw, const float* wt, Py_ssize_t O, float* yw,
                         Py_ssize_t Mr, Py_ssize_t row_vecs, Py_ssize_t Ho)
    void cn_conv_dw_f32(int isa, const float* xp, Py_ssize_t xs, const float* dyw,
                        Py_ssize_t ds, Py_ssize_t nb, Py_ssize_t C, Py_ssize_t P,
                        Py_ssize_t Wp, Py_ssize_t Mr, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t O, float* dwt)
    Py_ssize_t cn_conv_lanes(int isa)
    int cn_conv_dw_wide(int isa, Py_ssize_t C, Py_ssize_t O)
    void cn_conv_dwo_f32(int isa, const float* xp, Py_ssize_t xs, const float* dyt,
                         Py_ssize_t ds, Py_ssize_t nb, Py_ssize_t C, Py_ssize_t P,
                         Py_ssize_t Wp, Py_ssize_t Mr, Py_ssize_t Or, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw, float* dwt)

cdef int DETECTED = cn_conv_isa()
cdef int ISA = DETECTED


def isa():
    """2: AVX-512F loops, 1: AVX2 + FMA loops, 0: no direct path on this CPU/build."""
    return ISA


def set_isa(int level):
    """Use the loops of instruction-set ``level`` (at most the detected one; tests run
    the AVX2 loops on an AVX-512 machine this way). Returns the previous level."""
    global ISA
    cdef int old = ISA
    ISA = max(0, min(level, DETECTED))
    return old


cdef struct DGeom:
    Py_ssize_t C, H, W, O, Ho, Wo, kh, kw, ph, pw, dh, dw
    Py_ssize_t Hp, Wp, P, M, Mr, xsize   # xsize = C·P + slack (one padded sample)
    Py_ssize_t Or                        # O rounded up to whole vectors
    Py_ssize_t ysize                     # Mr·Or (one wide output, either layout)
    bint wide                            # weight gradients by cn_conv_dwo_f32
    Py_ssize_t row_vecs                  # > 0: forward over whole output rows only


cdef DGeom _dgeom(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t Ho,
                  Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw, tuple pad, tuple dilation):
    cdef DGeom g
    cdef Py_ssize_t t
    g.C, g.H, g.W, g.O, g.Ho, g.Wo, g.kh, g.kw = C, H, W, O, Ho, Wo, kh, kw
    g.ph, g.pw = pad
    g.dh, g.dw = dilation
    if min(C, H, W, O, Ho, Wo, kh, kw, g.dh, g.dw) < 1 or min(g.ph, g.pw) < 0:
        raise ValueError("conv direct kernel: invalid geometry")
    if ISA == 0:
        raise RuntimeError("conv direct kernel: not available on this CPU/build")
    t = cn_conv_tile(ISA)
    g.Hp = Ho + g.dh * (kh - 1)
    g.Wp = Wo + g.dw * (kw - 1)
    g.P = g.Hp * g.Wp
    g.M = Ho * g.Wp
    g.Mr = (g.M + t - 1) // t * t
    g.xsize = C * g.P + g.dw * (kw - 1) + (g.Mr - g.M) + 16
    g.Or = (O + t - 1) // t * t
    g.ysize = g.Or * g.Mr
    g.wide = cn_conv_dw_wide(ISA, C, O)
    g.row_vecs = Wo // t if Wo % t == 0 and g.Wp > Wo else 0
    return g


cdef Py_ssize_t _thread_floats(const DGeom* g, Py_ssize_t samples) noexcept nogil:
    """Workspace of one thread: ``samples`` padded inputs and wide outputs, and for wide
    weight gradients one (C, kh, kw, Or) accumulator."""
    return samples * (g.xsize + g.ysize) + (g.C * g.kh * g.kw * g.Or if g.wide else 0)


def workspace_size(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t Ho,
                   Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw, tuple pad, tuple dilation,
                   Py_ssize_t samples, int nthreads):
    """float32 elements of workspace for ``nthreads`` threads, each holding ``samples``
    padded inputs and wide outputs."""
    cdef DGeom g = _dgeom(C, H, W, O, Ho, Wo, kh, kw, pad, dilation)
    return nthreads * _thread_floats(&g, samples)


cdef void _pad(const DGeom* g, const float* x, float* xp) noexcept nogil:
    """xp[c, r, s] = x[c, r − ph, s − pw] (0 outside x), r < Hp, s < Wp; slack = 0."""
    pad_planes(x, xp, g.C, g.H, g.W, g.Hp, g.Wp, g.P, g.ph, g.pw)
    memset(xp + g.C * g.P, 0, (g.xsize - g.C * g.P) * sizeof(float))


cdef void _forward_sample(const DGeom* g, const float* x, const float* wt, const float* b,
                          float* y, float* buf) noexcept nogil:
    cdef Py_ssize_t o, i, j
    cdef float v
    cdef float* yw = buf + g.xsize
    cdef const float* src
    cdef float* d
    _pad(g, x, buf)
    cn_conv_fwd_f32(ISA, buf, g.C, g.P, g.Wp, g.kh, g.kw, g.dh, g.dw, wt, g.O, yw, g.Mr,
                    g.row_vecs, g.Ho)
    for o in range(g.O):
        v = b[o] if b != NULL else 0
        for i in range(g.Ho):
            src = yw + o * g.Mr + i * g.Wp
            d = y + (o * g.Ho + i) * g.Wo
            for j in range(g.Wo):
                d[j] = src[j] + v


cdef void _dw_block(const DGeom* g, const float* x, const float* dy, float* dwt, float* buf,
                    Py_ssize_t nb) noexcept nogil:
    """dwt += Σ over nb consecutive samples (x, dy at their first sample): the padded
    inputs and dy on the wide grid are staged in buf, then one kernel call. Wide layers:
    dy transposed to (Mr × Or) and dwt in the (C, kh, kw, Or) layout (cn_conv_dwo_f32);
    otherwise dy as (O × Mr) and dwt (C, kh, kw, O) (cn_conv_dw_f32)."""
    cdef Py_ssize_t s, o, i, j
    cdef Py_ssize_t so = 1 if g.wide else g.Mr     # strides of channel and position
    cdef Py_ssize_t sm = g.Or if g.wide else 1
    cdef float* xp = buf
    cdef float* dyw = buf + nb * g.xsize
    cdef float* d
    cdef const float* src
    for s in range(nb):
        _pad(g, x + s * g.C * g.H * g.W, xp + s * g.xsize)
        d = dyw + s * g.ysize
        memset(d, 0, g.ysize * sizeof(float))
        for o in range(g.O):
            for i in range(g.Ho):
                src = dy + ((s * g.O + o) * g.Ho + i) * g.Wo
                for j in range(g.Wo):
                    d[o * so + (i * g.Wp + j) * sm] = src[j]
    if g.wide:
        cn_conv_dwo_f32(ISA, xp, g.xsize, dyw, g.ysize, nb, g.C, g.P, g.Wp, g.Mr, g.Or,
                        g.kh, g.kw, g.dh, g.dw, dwt)
    else:
        cn_conv_dw_f32(ISA, xp, g.xsize, dyw, g.ysize, nb, g.C, g.P, g.Wp, g.Mr, g.kh,
                       g.kw, g.dh, g.dw, g.O, dwt)


def forward_pass(const float[:, :, :, ::1] x, const float[:, :, :, ::1] wt,
                 const float[::1] bias, float[:, :, :, ::1] y, float[::1] ws, tuple pad,
                 tuple dilation, int num_threads=1):
    """y = conv(x, W) + bias, stride 1, groups 1. x (N, C, H, W); wt (C, kh, kw, O) the
    repacked weight; bias (O,) or empty; y (N, O, Ho, Wo); ws holds
    ``workspace_size(samples=1)`` elements for ``min(num_threads, N)`` threads."""
    cdef Py_ssize_t N = x.shape[0], n, nt
    if wt.shape[0] != x.shape[1] or y.shape[0] != N or y.shape[1] != wt.shape[3]:
        raise ValueError("conv direct forward_pass kernel: wt / y have the wrong shape")
    cdef DGeom g = _dgeom(x.shape[1], x.shape[2], x.shape[3], wt.shape[3], y.shape[2],
                          y.shape[3], wt.shape[1], wt.shape[2], pad, dilation)
    if bias.shape[0] not in (0, g.O):
        raise ValueError("conv direct forward_pass kernel: bias has the wrong length")
    if N == 0:
        return
    nt = max(1, min(num_threads, N))
    cdef Py_ssize_t per = g.xsize + g.ysize
    if ws.shape[0] < nt * per:
        raise ValueError("conv direct forward_pass kernel: workspace too small")
    cdef const float* xp = &x[0, 0, 0, 0]
    cdef const float* wp = &wt[0, 0, 0, 0]
    cdef const float* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef float* yp = &y[0, 0, 0, 0]
    cdef float* wsp = &ws[0]
    cdef Py_ssize_t X = g.C * g.H * g.W, Y = g.O * g.Ho * g.Wo
    with nogil:
        if nt == 1:
            for n in range(N):
                _forward_sample(&g, xp + n * X, wp, bp, yp + n * Y, wsp)
        else:
            for n in prange(N, num_threads=nt, schedule="dynamic"):
                _forward_sample(&g, xp + n * X, wp, bp, yp + n * Y, wsp + threadid() * per)


def weight_grad_pass(const float[:, :, :, ::1] x, const float[:, :, :, ::1] dy,
                     float[:, ::1] dwt_partial, float[::1] ws, tuple kernel, tuple pad,
                     tuple dilation, Py_ssize_t block, int num_threads=1):
    """dwt_partial[chunk] = Σ_{n in chunk} corr(x_n, dy_n) in the (C, kh, kw, O) layout;
    chunks = rows of dwt_partial (sample ranges chunk·N//chunks …), each summed over
    blocks of ``block`` samples. ws holds ``workspace_size(samples=block)`` elements for
    ``min(num_threads, chunks)`` threads."""
    cdef Py_ssize_t N = x.shape[0], item, nitems = dwt_partial.shape[0], nt, lo, hi, n, m
    if dy.shape[0] != N:
        raise ValueError("conv direct weight_grad_pass kernel: x / dy batch mismatch")
    cdef DGeom g = _dgeom(x.shape[1], x.shape[2], x.shape[3], dy.shape[1], dy.shape[2],
                          dy.shape[3], kernel[0], kernel[1], pad, dilation)
    cdef Py_ssize_t wsize = g.C * g.kh * g.kw * g.O
    if dwt_partial.shape[1] != wsize or block < 1:
        raise ValueError("conv direct weight_grad_pass kernel: dwt_partial has the wrong "
                         "shape")
    if N == 0 or nitems == 0:
        return
    nt = max(1, min(num_threads, nitems))
    cdef Py_ssize_t per = _thread_floats(&g, block)
    if ws.shape[0] < nt * per:
        raise ValueError("conv direct weight_grad_pass kernel: workspace too small")
    cdef Py_ssize_t K = g.C * g.kh * g.kw, k, o
    cdef float* acc
    cdef const float* xp = &x[0, 0, 0, 0]
    cdef const float* gp = &dy[0, 0, 0, 0]
    cdef float* dp = &dwt_partial[0, 0]
    cdef float* wsp = &ws[0]
    cdef float* base
    cdef Py_ssize_t X = g.C * g.H * g.W, Y = g.O * g.Ho * g.Wo
    with nogil:
        for item in prange(nitems, num_threads=nt, schedule="dynamic"):
            base = wsp + threadid() * per
            lo = item * N // nitems
            hi = (item + 1) * N // nitems
            # wide layers accumulate in the (C, kh, kw, Or) layout, then copy out
            acc = (base + block * (g.xsize + g.ysize)) if g.wide else dp + item * wsize
            memset(acc, 0, K * (g.Or if g.wide else g.O) * sizeof(float))
            n = lo
            while n < hi:
                m = min(block, hi - n)
                _dw_block(&g, xp + n * X, gp + n * Y, acc, base, m)
                n = n + m
            if g.wide:
                for k in range(K):
                    for o in range(g.O):
                        dp[item * wsize + k * g.O + o] = acc[k * g.Or + o]
