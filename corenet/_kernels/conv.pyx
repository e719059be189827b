# cython: language_level=3
"""Convolution kernels: im2col / col2im with BLAS GEMMs, and a shifted-GEMM method for
stride-1 forward passes (spec convolution.md §2-4).

Private module: call it through :mod:`corenet.kernels`, which validates shapes, dtypes,
contiguity, sizes and the workspace before anything here runs without the GIL.

Geometry (one sample, 2-D; 1-D uses H = 1): conv input x ``(C, H, W)``, weight
``(O, C/G, kh, kw)`` (G groups), conv output ``(O, Ho, Wo)``, stride ``(sh, sw)``, top and
left padding ``(ph, pw)``, dilation ``(dh, dw)``. Bottom/right padding is implied by the
sizes: every read or write outside the input is a zero / is dropped, so any (H, Ho)
pair is memory-safe (the transposed convolution uses this). The column matrix of a tile
of output rows of one sample is

    cols[(c·kh + p)·kw + q, i·Wo + j] = x[c, i·sh + p·dh − ph, j·sw + q·dw − pw]   (0 outside)

(row order (c, p, q) in C order, §3.4), and per group g (rows g·Kg…, Kg = (C/G)·kh·kw):

    forward      Y[g] = W[g] · cols[g]                  (O/G × tile)
    weight grad  dW[g] += dY[g] · cols[g]ᵀ              (O/G × Kg)
    input grad   dcols[g] = W[g]ᵀ · dY[g], then col2im scatter-adds dcols into dx.

Row-major matrices are handed to column-major BLAS (``scipy.linalg.cython_blas``) as
their transposes by swapping operands; nothing is copied. A 1×1 kernel with stride 1, no
padding and equal sizes uses x itself as ``cols`` (and writes dx directly). Tiles of
output rows bound the column buffers (the caller picks the tile height).

Threads: work items (samples, or for weight gradients fixed chunks of samples) run under
``prange(schedule="dynamic")`` (a thread delayed by other load on the machine does not
hold the others up); each thread owns one slice of the caller's workspace
(``threadid()``) and BLAS runs single-threaded inside (the caller sets that). Each item
writes only its own outputs; weight gradients are summed per chunk (chunk boundaries
depend on N and the chunk count chosen by the caller, never on the thread count) and the
chunk partials are then added in chunk order, so results do not depend on the thread
count or on which thread ran which item.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from corenet._kernels.conv_pad cimport pad_planes


cdef struct Geom:
    Py_ssize_t N, C, H, W, O, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, G
    Py_ssize_t Kt        # C·kh·kw  (rows of cols)
    Py_ssize_t Kg        # (C/G)·kh·kw
    Py_ssize_t Og        # O/G
    Py_ssize_t HW        # Ho·Wo
    Py_ssize_t tile      # output rows per im2col tile
    Py_ssize_t nb        # > 1: tiles of nb whole samples (block mode); 1: row tiles
    bint direct          # 1×1, stride 1, no padding, same size: cols = x


cdef inline void _gemm(char ta, char tb, int m, int n, int k, const floating* a, int lda,
                       const floating* b, int ldb, floating beta, floating* c,
                       int ldc) noexcept nogil:
    """Column-major ``c = op(a)·op(b) + beta·c`` (alpha = 1)."""
    cdef floating one = 1
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &one, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &one, <double*>a, &lda, <double*>b, &ldb, &beta, c, &ldc)


cdef inline void _valid_range(Py_ssize_t off, Py_ssize_t s, Py_ssize_t size, Py_ssize_t n_out,
                              Py_ssize_t* j0, Py_ssize_t* j1) noexcept nogil:
    """Output indices j in [j0, j1) with 0 <= j·s + off < size."""
    cdef Py_ssize_t a = 0, b
    if off < 0:
        a = (-off + s - 1) // s
    if size - 1 - off < 0:
        b = 0
    else:
        b = (size - 1 - off) // s + 1
    if b > n_out:
        b = n_out
    if a > b:
        a = b
    j0[0] = a
    j1[0] = b


cdef void _im2col(const Geom* g, const floating* x, floating* cols, Py_ssize_t ld,
                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """cols (Kt rows of stride ld, (r1 − r0)·Wo columns) of output rows r0 ≤ i < r1 of
    one sample x (C × H × W); zeros where the window leaves x."""
    cdef Py_ssize_t c, p, q, i, j, r, offw, j0, j1, i0, i1, Wo = g.Wo, sw = g.sw
    cdef Py_ssize_t T = ld
    cdef floating* dst
    cdef floating* d
    cdef const floating* src
    for c in range(g.C):
        for p in range(g.kh):
            _valid_range(p * g.dh - g.ph, g.sh, g.H, g.Ho, &i0, &i1)
            if i0 < r0:
                i0 = r0
            if i1 > r1:
                i1 = r1
            if i0 > i1:
                i0 = i1
            for q in range(g.kw):
                dst = cols + ((c * g.kh + p) * g.kw + q) * T - r0 * Wo
                offw = q * g.dw - g.pw
                _valid_range(offw, sw, g.W, Wo, &j0, &j1)
                if i0 > r0:
                    memset(dst + r0 * Wo, 0, (i0 - r0) * Wo * sizeof(floating))
                for i in range(i0, i1):
                    r = i * g.sh + p * g.dh - g.ph
                    src = x + (c * g.H + r) * g.W + offw
                    d = dst + i * Wo
                    for j in range(j0):
                        d[j] = 0
                    if sw == 1:
                        for j in range(j0, j1):
                            d[j] = src[j]
                    else:
                        for j in range(j0, j1):
                            d[j] = src[j * sw]
                    for j in range(j1, Wo):
                        d[j] = 0
                if i1 < r1:
                    memset(dst + i1 * Wo, 0, (r1 - i1) * Wo * sizeof(floating))


cdef void _col2im(const Geom* g, const floating* dcols, floating* dx, Py_ssize_t ld,
                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dx (C × H × W) += scatter of dcols (Kt rows of stride ld) of output rows
    r0 ≤ i < r1."""
    cdef Py_ssize_t c, p, q, i, j, r, offw, j0, j1, i0, i1, Wo = g.Wo, sw = g.sw
    cdef Py_ssize_t T = ld
    cdef const floating* src
    cdef floating* dst
    for c in range(g.C):
        for p in range(g.kh):
            _valid_range(p * g.dh - g.ph, g.sh, g.H, g.Ho, &i0, &i1)
            if i0 < r0:
                i0 = r0
            if i1 > r1:
                i1 = r1
            for q in range(g.kw):
                src = dcols + ((c * g.kh + p) * g.kw + q) * T - r0 * Wo
                offw = q * g.dw - g.pw
                _valid_range(offw, sw, g.W, Wo, &j0, &j1)
                for i in range(i0, i1):
                    r = i * g.sh + p * g.dh - g.ph
                    dst = dx + (c * g.H + r) * g.W + offw
                    if sw == 1:
                        for j in range(j0, j1):
                            dst[j] += src[i * Wo + j]
                    else:
                        for j in range(j0, j1):
                            dst[j * sw] += src[i * Wo + j]


cdef void _add_channel_bias(floating* y, const floating* b, Py_ssize_t C,
                            Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c, s
    cdef floating v
    for c in range(C):
        v = b[c]
        for s in range(c * S, c * S + S):
            y[s] += v


# ----------------------------------------------------------------------------- block mode
# When one sample's columns are small (LeNet-sized layers), a tile holds nb whole samples
# side by side: cols (Kt × T), T = nb·HW, column s·HW + m belongs to sample s of the block,
# so each GEMM has nb times the columns of a per-sample one (a 5×5 conv on a 1×1 output
# becomes one matrix product over the block instead of nb matrix-vector products). The
# GEMM outputs are in the blocked layout buf (O × T); they are moved to / from the
# (nb, O, HW) layout of y, gy and dy by _from_blocked / _to_blocked.

cdef void _to_blocked(const floating* a, floating* buf, Py_ssize_t nb, Py_ssize_t O,
                      Py_ssize_t S) noexcept nogil:
    """buf[o, s·S + k] = a[s, o, k] for a (nb, O, S)."""
    cdef Py_ssize_t s, o, k
    cdef const floating* src
    cdef floating* dst
    for s in range(nb):
        for o in range(O):
            src = a + (s * O + o) * S
            dst = buf + o * nb * S + s * S
            for k in range(S):
                dst[k] = src[k]


cdef void _from_blocked(const floating* buf, floating* a, const floating* b, Py_ssize_t nb,
                        Py_ssize_t O, Py_ssize_t S) noexcept nogil:
    """a[s, o, k] = buf[o, s·S + k] (+ b[o] when b is not NULL)."""
    cdef Py_ssize_t s, o, k
    cdef const floating* src
    cdef floating* dst
    cdef floating v
    for s in range(nb):
        for o in range(O):
            src = buf + o * nb * S + s * S
            dst = a + (s * O + o) * S
            v = b[o] if b != NULL else 0
            for k in range(S):
                dst[k] = src[k] + v


cdef void _block_cols(const Geom* g, const floating* x, floating* cols, Py_ssize_t n0,
                      Py_ssize_t nb) noexcept nogil:
    """cols (Kt × nb·HW) of samples n0 … n0+nb−1: row (c, p, q), column s·HW + i·Wo + j
    holds x[n0+s, c, i·sh + p·dh − ph, j·sw + q·dw − pw] (0 outside). The valid ranges
    of a tap are computed once per block, not once per sample."""
    cdef Py_ssize_t c, p, q, s, i, j, i0, i1, j0, j1, offw, Wo = g.Wo, sw = g.sw
    cdef Py_ssize_t HW = g.HW, T = nb * g.HW, X = g.C * g.H * g.W
    cdef const floating* src
    cdef floating* row
    cdef floating* d
    x = x + n0 * X
    for p in range(g.kh):
        _valid_range(p * g.dh - g.ph, g.sh, g.H, g.Ho, &i0, &i1)
        for q in range(g.kw):
            offw = q * g.dw - g.pw
            _valid_range(offw, sw, g.W, Wo, &j0, &j1)
            for c in range(g.C):
                row = cols + ((c * g.kh + p) * g.kw + q) * T
                for s in range(nb):
                    d = row + s * HW
                    if i0 > 0:
                        memset(d, 0, i0 * Wo * sizeof(floating))
                    for i in range(i0, i1):
                        src = x + s * X + (c * g.H + i * g.sh + p * g.dh - g.ph) * g.W + offw
                        for j in range(j0):
                            d[i * Wo + j] = 0
                        if sw == 1:
                            for j in range(j0, j1):
                                d[i * Wo + j] = src[j]
                        else:
                            for j in range(j0, j1):
                                d[i * Wo + j] = src[j * sw]
                        for j in range(j1, Wo):
                            d[i * Wo + j] = 0
                    if i1 < g.Ho:
                        memset(d + i1 * Wo, 0, (g.Ho - i1) * Wo * sizeof(floating))


cdef void _block_col2im(const Geom* g, const floating* dcols, floating* dx, Py_ssize_t n0,
                        Py_ssize_t nb) noexcept nogil:
    """dx[n0+s] += scatter of dcols (Kt × nb·HW), the adjoint of _block_cols."""
    cdef Py_ssize_t c, p, q, s, i, j, i0, i1, j0, j1, offw, Wo = g.Wo, sw = g.sw
    cdef Py_ssize_t HW = g.HW, T = nb * g.HW, X = g.C * g.H * g.W
    cdef const floating* src
    cdef floating* dst
    dx = dx + n0 * X
    for p in range(g.kh):
        _valid_range(p * g.dh - g.ph, g.sh, g.H, g.Ho, &i0, &i1)
        for q in range(g.kw):
            offw = q * g.dw - g.pw
            _valid_range(offw, sw, g.W, Wo, &j0, &j1)
            for c in range(g.C):
                for s in range(nb):
                    src = dcols + ((c * g.kh + p) * g.kw + q) * T + s * HW
                    for i in range(i0, i1):
                        dst = dx + s * X + (c * g.H + i * g.sh + p * g.dh - g.ph) * g.W + offw
                        if sw == 1:
                            for j in range(j0, j1):
                                dst[j] += src[i * Wo + j]
                        else:
                            for j in range(j0, j1):
                                dst[j * sw] += src[i * Wo + j]


cdef void _forward_block(const Geom* g, const floating* x, const floating* w,
                         const floating* b, floating* y, const floating* gy, floating* dw,
                         floating* cols, floating* buf, Py_ssize_t n0, Py_ssize_t nb,
                         bint want_y, bint want_dw, floating beta) noexcept nogil:
    """Samples n0 … n0+nb−1 at once: y = W·cols (+ b); dw = gy·colsᵀ + beta·dw."""
    cdef Py_ssize_t gi, T = nb * g.HW, Kg = g.Kg, Og = g.Og, Y = g.O * g.HW
    _block_cols(g, x, cols, n0, nb)
    if want_y:
        for gi in range(g.G):
            _gemm(c'N', c'N', <int>T, <int>Og, <int>Kg, cols + gi * Kg * T, <int>T,
                  w + gi * Og * Kg, <int>Kg, 0, buf + gi * Og * T, <int>T)
        _from_blocked(buf, y + n0 * Y, b, nb, g.O, g.HW)
    if want_dw:
        _to_blocked(gy + n0 * Y, buf, nb, g.O, g.HW)
        for gi in range(g.G):
            _gemm(c'T', c'N', <int>Kg, <int>Og, <int>T, cols + gi * Kg * T, <int>T,
                  buf + gi * Og * T, <int>T, beta, dw + gi * Og * Kg, <int>Kg)


cdef void _backward_block(const Geom* g, const floating* dy, const floating* w,
                          const floating* bdx, floating* dx, const floating* x, floating* dw,
                          floating* cols, floating* dcols, floating* buf, Py_ssize_t n0,
                          Py_ssize_t nb, bint want_dx, bint want_dw,
                          floating beta) noexcept nogil:
    """Samples n0 … n0+nb−1 at once: dw = dy·colsᵀ + beta·dw; dx = col2im(Wᵀ·dy) (+ bdx)."""
    cdef Py_ssize_t gi, s, T = nb * g.HW, Kg = g.Kg, Og = g.Og, X = g.C * g.H * g.W
    _to_blocked(dy + n0 * g.O * g.HW, buf, nb, g.O, g.HW)
    if want_dw:
        _block_cols(g, x, cols, n0, nb)
        for gi in range(g.G):
            _gemm(c'T', c'N', <int>Kg, <int>Og, <int>T, cols + gi * Kg * T, <int>T,
                  buf + gi * Og * T, <int>T, beta, dw + gi * Og * Kg, <int>Kg)
    if want_dx:
        for gi in range(g.G):
            _gemm(c'N', c'T', <int>T, <int>Kg, <int>Og, buf + gi * Og * T, <int>T,
                  w + gi * Og * Kg, <int>Kg, 0, dcols + gi * Kg * T, <int>T)
        memset(dx + n0 * X, 0, nb * X * sizeof(floating))
        _block_col2im(g, dcols, dx, n0, nb)
        if bdx != NULL:
            for s in range(nb):
                _add_channel_bias(dx + (n0 + s) * X, bdx, g.C, g.H * g.W)


cdef void _forward_items(const Geom* g, const floating* x, const floating* w,
                         const floating* b, floating* y, const floating* gy, floating* dwp,
                         floating* cols, floating* buf, Py_ssize_t item, Py_ssize_t nitems,
                         bint want_y, bint want_dw) noexcept nogil:
    """Samples of work item ``item``, tile by tile (``g.tile`` output rows, or blocks of
    ``g.nb`` samples): cols = im2col(x_n); y_n = W·cols (+ b); dW partial[item] (+)=
    gy_n · colsᵀ."""
    cdef Py_ssize_t n, gi, lo, hi, o, s, r0, r1, T, off, ld, t, m
    cdef Py_ssize_t HW = g.HW, Kg = g.Kg, Og = g.Og
    cdef Py_ssize_t wsize = g.O * Kg
    cdef const floating* cn
    cdef floating* yn
    cdef floating beta
    cdef bint first
    lo = item * g.N // nitems
    hi = (item + 1) * g.N // nitems
    if g.nb > 1:
        n = lo
        while n < hi:
            m = min(g.nb, hi - n)
            _forward_block(g, x, w, b, y, gy, (dwp + item * wsize) if want_dw else NULL,
                           cols, buf, n, m, want_y, want_dw, 0 if n == lo else 1)
            n += m
        return
    for n in range(lo, hi):
        if want_y:
            yn = y + n * g.O * HW
            if b != NULL:
                for o in range(g.O):
                    for s in range(o * HW, o * HW + HW):
                        yn[s] = b[o]
        for t in range((g.Ho + g.tile - 1) // g.tile):
            r0 = t * g.tile
            r1 = min(r0 + g.tile, g.Ho)
            T = (r1 - r0) * g.Wo
            off = r0 * g.Wo
            if g.direct:
                cn = x + n * g.C * g.H * g.W + off
            else:
                _im2col(g, x + n * g.C * g.H * g.W, cols, T, r0, r1)
                cn = cols
            ld = HW if g.direct else T
            if want_y:
                beta = 1 if b != NULL else 0
                for gi in range(g.G):
                    _gemm(c'N', c'N', <int>T, <int>Og, <int>Kg, cn + gi * Kg * ld, <int>ld,
                          w + gi * Og * Kg, <int>Kg, beta, yn + gi * Og * HW + off, <int>HW)
            if want_dw:
                first = n == lo and r0 == 0
                beta = 0 if first else 1
                for gi in range(g.G):
                    _gemm(c'T', c'N', <int>Kg, <int>Og, <int>T, cn + gi * Kg * ld, <int>ld,
                          gy + (n * g.O + gi * Og) * HW + off, <int>HW, beta,
                          dwp + item * wsize + gi * Og * Kg, <int>Kg)


cdef void _backward_items(const Geom* g, const floating* dy, const floating* w,
                          const floating* bdx, floating* dx, const floating* x,
                          floating* dwp, floating* cols, floating* dcols, floating* buf,
                          Py_ssize_t item, Py_ssize_t nitems, bint want_dx,
                          bint want_dw) noexcept nogil:
    """Samples of work item ``item``, tile by tile (or in blocks of ``g.nb`` samples):
    dW partial[item] (+)= dy_n · im2col(x_n)ᵀ; dx_n = col2im(Wᵀ·dy_n) (+ bdx per channel
    of dx)."""
    cdef Py_ssize_t n, gi, lo, hi, r0, r1, T, off, ld, t, m
    cdef Py_ssize_t HW = g.HW, Kg = g.Kg, Og = g.Og, X = g.C * g.H * g.W
    cdef Py_ssize_t wsize = g.O * Kg
    cdef const floating* cn
    cdef const floating* dyn
    cdef floating* dst
    cdef floating beta
    lo = item * g.N // nitems
    hi = (item + 1) * g.N // nitems
    if g.nb > 1:
        n = lo
        while n < hi:
            m = min(g.nb, hi - n)
            _backward_block(g, dy, w, bdx, dx, x, (dwp + item * wsize) if want_dw else NULL,
                            cols, dcols, buf, n, m, want_dx, want_dw, 0 if n == lo else 1)
            n += m
        return
    for n in range(lo, hi):
        dyn = dy + n * g.O * HW
        if want_dx and not g.direct:
            memset(dx + n * X, 0, X * sizeof(floating))
        for t in range((g.Ho + g.tile - 1) // g.tile):
            r0 = t * g.tile
            r1 = min(r0 + g.tile, g.Ho)
            T = (r1 - r0) * g.Wo
            off = r0 * g.Wo
            ld = HW if g.direct else T
            if want_dw:
                if g.direct:
                    cn = x + n * X + off
                else:
                    _im2col(g, x + n * X, cols, T, r0, r1)
                    cn = cols
                beta = 0 if (n == lo and r0 == 0) else 1
                for gi in range(g.G):
                    _gemm(c'T', c'N', <int>Kg, <int>Og, <int>T, cn + gi * Kg * ld, <int>ld,
                          dyn + gi * Og * HW + off, <int>HW, beta,
                          dwp + item * wsize + gi * Og * Kg, <int>Kg)
            if want_dx:
                dst = dx + n * X + off if g.direct else dcols
                beta = 0
                for gi in range(g.G):
                    _gemm(c'N', c'T', <int>T, <int>Kg, <int>Og, dyn + gi * Og * HW + off,
                          <int>HW, w + gi * Og * Kg, <int>Kg, beta, dst + gi * Kg * ld,
                          <int>ld)
                if not g.direct:
                    _col2im(g, dcols, dx + n * X, T, r0, r1)
        if want_dx and bdx != NULL:
            _add_channel_bias(dx + n * X, bdx, g.C, g.H * g.W)


cdef Geom _geom(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw, tuple stride,
                tuple pad, tuple dilation, Py_ssize_t groups, Py_ssize_t tile,
                Py_ssize_t nb):
    cdef Geom g
    g.N, g.C, g.H, g.W, g.O, g.Ho, g.Wo, g.kh, g.kw = N, C, H, W, O, Ho, Wo, kh, kw
    g.sh, g.sw = stride
    g.ph, g.pw = pad
    g.dh, g.dw = dilation
    g.G = groups
    if groups < 1 or C % groups or O % groups or min(g.sh, g.sw, g.dh, g.dw) < 1:
        raise ValueError("conv kernel: invalid groups / stride / dilation")
    g.Kg = (C // groups) * kh * kw
    g.Kt = C * kh * kw
    g.Og = O // groups
    g.HW = Ho * Wo
    g.nb = max(1, nb)
    g.direct = (g.nb == 1 and kh == 1 and kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0
                and g.pw == 0 and Ho == H and Wo == W)
    g.tile = Ho if (g.direct or g.nb > 1 or tile < 1 or tile > Ho) else tile
    return g


cdef Py_ssize_t _span(const Geom* g) noexcept nogil:
    """Elements of one column buffer (0 for the direct 1×1 path)."""
    if g.direct:
        return 0
    return g.Kt * (g.nb * g.HW if g.nb > 1 else g.tile * g.Wo)


cdef Py_ssize_t _per_thread(const Geom* g, int nbuf) noexcept nogil:
    """Workspace elements per thread: ``nbuf`` column buffers, and in block mode the
    blocked output buffer (O × nb·HW)."""
    return nbuf * _span(g) + (g.O * g.nb * g.HW if g.nb > 1 else 0)


def tile_rows(Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t Ho, Py_ssize_t Wo,
              Py_ssize_t target):
    """Output rows per im2col tile so that one column buffer has about ``target``
    elements (at least one row, at most Ho)."""
    cdef Py_ssize_t per_row = max(1, C * kh * kw * Wo)
    return max(1, min(Ho, target // per_row))


def workspace_size(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                   Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw, tuple stride,
                   tuple pad, Py_ssize_t tile, Py_ssize_t nb, int nbuf, int nthreads):
    """Elements of workspace a pass needs for ``nthreads`` threads: per thread ``nbuf``
    column buffers (C·kh·kw × tile·Wo, or × nb·Ho·Wo in block mode) and in block mode
    one O × nb·Ho·Wo output buffer; 0 for the direct 1×1 path."""
    cdef Geom g = _geom(N, C, H, W, O, Ho, Wo, kh, kw, stride, pad, (1, 1), 1, tile, nb)
    return nthreads * _per_thread(&g, nbuf)


def forward_pass(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                 const floating[::1] bias, floating[:, :, :, ::1] y,
                 const floating[:, :, :, ::1] gy, floating[:, ::1] dw_partial,
                 floating[::1] ws, tuple out_size, tuple stride, tuple pad, tuple dilation,
                 Py_ssize_t groups, bint want_y, bint want_dw, Py_ssize_t tile,
                 Py_ssize_t nb, int num_threads=1):
    """Per sample and tile of ``tile`` output rows (or per block of ``nb`` samples when
    nb > 1): cols = im2col(x_n); if want_y: y_n = W·cols + bias (bias may be empty);
    if want_dw: dw_partial[chunk] = Σ_{n in chunk} gy_n·colsᵀ (chunks: dw_partial rows).

    x (N, C, H, W); w (O, C/G, kh, kw); y and gy (N, O, Ho, Wo) with (Ho, Wo) =
    out_size (unused arrays may be empty); ws holds ``workspace_size(nbuf=1)`` elements
    for ``min(num_threads, items)`` threads.
    """
    cdef Py_ssize_t N = x.shape[0], item, nitems, nt
    cdef Geom g = _geom(N, x.shape[1], x.shape[2], x.shape[3], w.shape[0], out_size[0],
                        out_size[1], w.shape[2], w.shape[3], stride, pad, dilation, groups,
                        tile, nb)
    if w.shape[1] * groups != g.C:
        raise ValueError("forward_pass kernel: weight / input channel mismatch")
    nitems = dw_partial.shape[0] if want_dw else (N + g.nb - 1) // g.nb
    if N == 0 or nitems == 0:
        return
    nt = max(1, min(num_threads, nitems))
    if want_y and (y.shape[0] != N or y.shape[1] != g.O or y.shape[2] != g.Ho
                   or y.shape[3] != g.Wo):
        raise ValueError("forward_pass kernel: y has the wrong shape")
    if want_dw and (gy.shape[0] != N or gy.shape[1] != g.O or gy.shape[2] != g.Ho
                    or gy.shape[3] != g.Wo or dw_partial.shape[1] != w.size):
        raise ValueError("forward_pass kernel: gy / dw_partial have the wrong shape")
    if bias.shape[0] not in (0, g.O):
        raise ValueError("forward_pass kernel: bias has the wrong length")
    cdef Py_ssize_t per = _per_thread(&g, 1), span = _span(&g)
    if ws.shape[0] < nt * per:
        raise ValueError("forward_pass kernel: workspace too small")
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 and want_y else NULL
    cdef floating* yp = &y[0, 0, 0, 0] if want_y else NULL
    cdef const floating* gp = &gy[0, 0, 0, 0] if want_dw else NULL
    cdef floating* dp = &dw_partial[0, 0] if want_dw else NULL
    cdef floating* wsp = &ws[0] if per > 0 else NULL
    cdef floating* base
    with nogil:
        if nt == 1:
            for item in range(nitems):
                _forward_items(&g, xp, wp, bp, yp, gp, dp, wsp,
                               (wsp + span) if per > 0 else NULL, item, nitems, want_y,
                               want_dw)
        else:
            for item in prange(nitems, num_threads=nt, schedule="dynamic"):
                base = (wsp + threadid() * per) if per > 0 else NULL
                _forward_items(&g, xp, wp, bp, yp, gp, dp, base,
                               (base + span) if per > 0 else NULL, item, nitems, want_y,
                               want_dw)


def backward_pass(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                  const floating[::1] bias_dx, floating[:, :, :, ::1] dx,
                  const floating[:, :, :, ::1] x, floating[:, ::1] dw_partial,
                  floating[::1] ws, tuple in_size, tuple stride, tuple pad, tuple dilation,
                  Py_ssize_t groups, bint want_dx, bint want_dw, Py_ssize_t tile,
                  Py_ssize_t nb, int num_threads=1):
    """Per sample and tile of ``tile`` output rows (or per block of ``nb`` samples when
    nb > 1): if want_dw: dw_partial[chunk] = Σ dy_n·im2col(x_n)ᵀ; if want_dx:
    dx_n = col2im(Wᵀ·dy_n) + bias_dx (per dx channel; may be empty).

    dy (N, O, Ho, Wo); w (O, C/G, kh, kw); dx and x (N, C, H, W) with (H, W) = in_size
    (unused arrays may be empty); ws holds ``workspace_size(nbuf=2)`` elements for
    ``min(num_threads, items)`` threads.
    """
    cdef Py_ssize_t N = dy.shape[0], item, nitems, nt
    cdef Geom g = _geom(N, w.shape[1] * groups, in_size[0], in_size[1], dy.shape[1],
                        dy.shape[2], dy.shape[3], w.shape[2], w.shape[3], stride, pad,
                        dilation, groups, tile, nb)
    if w.shape[0] != g.O:
        raise ValueError("backward_pass kernel: weight / dy channel mismatch")
    nitems = dw_partial.shape[0] if want_dw else (N + g.nb - 1) // g.nb
    if N == 0 or nitems == 0:
        return
    nt = max(1, min(num_threads, nitems))
    if want_dx and (dx.shape[0] != N or dx.shape[1] != g.C or dx.shape[2] != g.H
                    or dx.shape[3] != g.W):
        raise ValueError("backward_pass kernel: dx has the wrong shape")
    if want_dw and (x.shape[0] != N or x.shape[1] != g.C or x.shape[2] != g.H
                    or x.shape[3] != g.W or dw_partial.shape[1] != w.size):
        raise ValueError("backward_pass kernel: x / dw_partial have the wrong shape")
    if bias_dx.shape[0] not in (0, g.C):
        raise ValueError("backward_pass kernel: bias_dx has the wrong length")
    cdef Py_ssize_t per = _per_thread(&g, 2), span = _span(&g)
    if ws.shape[0] < nt * per:
        raise ValueError("backward_pass kernel: workspace too small")
    cdef const floating* gp = &dy[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef const floating* bp = &bias_dx[0] if bias_dx.shape[0] > 0 and want_dx else NULL
    cdef floating* dxp = &dx[0, 0, 0, 0] if want_dx else NULL
    cdef const floating* xp = &x[0, 0, 0, 0] if want_dw else NULL
    cdef floating* dp = &dw_partial[0, 0] if want_dw else NULL
    cdef floating* wsp = &ws[0] if per > 0 else NULL
    cdef floating* base
    with nogil:
        if nt == 1:
            for item in range(nitems):
                _backward_items(&g, gp, wp, bp, dxp, xp, dp, wsp,
                                (wsp + span) if per > 0 else NULL,
                                (wsp + 2 * span) if per > 0 else NULL,
                                item, nitems, want_dx, want_dw)
        else:
            for item in prange(nitems, num_threads=nt, schedule="dynamic"):
                base = (wsp + threadid() * per) if per > 0 else NULL
                _backward_items(&g, gp, wp, bp, dxp, xp, dp, base,
                                (base + span) if per > 0 else NULL,
                                (base + 2 * span) if per > 0 else NULL,
                                item, nitems, want_dx, want_dw)


# ----------------------------------------------------------------------------- shift method
# Forward-role passes of stride-1 convolutions without im2col. One sample is padded into
# xp (C planes of Hp × Wp, Hp = Ho + dh(kh−1), Wp = Wo + dw(kw−1), plane stride
# P = Hp·Wp, ``slack`` zeros after the last plane) and the output is computed on the
# "wide" grid m = i·Wp + j, 0 ≤ j < Wp (columns j ≥ Wo are scratch). Tap (p, q) then reads
# the contiguous shifted rows xp[c, m + p·dh·Wp + q·dw], so each tap is one GEMM on views
# of xp, with Wt[tap] = W[:, :, p, q] repacked as (kh·kw, O, C/G):
#
#     Yw[g]       += Wt[tap][g] · Xp_tap[g]      (O/G × M, inner dim C/G), M = Ho·Wp
#     dWt[tap][g] += dYw[g] · Xp_tap[g]ᵀ         (inner dim M; dYw is 0 in scratch columns)
#
# Scratch columns only read finite padded data of the same sample (or the slack zeros)
# and are dropped. The flop count grows by Wp/Wo; the facade uses the method when the
# channels are wide and that factor small.

cdef struct SGeom:
    Py_ssize_t N, C, H, W, O, Ho, Wo, kh, kw, ph, pw, dh, dw, G, Cg, Og
    Py_ssize_t Hp, Wp, P, M, slack, xsize     # xsize = C·P + slack


cdef SGeom _sgeom(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                  Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw, tuple pad,
                  tuple dilation, Py_ssize_t groups):
    cdef SGeom g
    g.N, g.C, g.H, g.W, g.O, g.Ho, g.Wo, g.kh, g.kw = N, C, H, W, O, Ho, Wo, kh, kw
    g.ph, g.pw = pad
    g.dh, g.dw = dilation
    g.G = groups
    if groups < 1 or C % groups or O % groups or min(g.dh, g.dw) < 1 or min(Ho, Wo) < 1 \
            or min(g.ph, g.pw) < 0:
        raise ValueError("conv shift kernel: invalid geometry")
    g.Cg, g.Og = C // groups, O // groups
    g.Hp = Ho + g.dh * (kh - 1)
    g.Wp = Wo + g.dw * (kw - 1)
    g.P = g.Hp * g.Wp
    g.M = Ho * g.Wp
    g.slack = g.dw * (kw - 1) + 1
    g.xsize = C * g.P + g.slack
    return g


def shift_workspace_size(Py_ssize_t C, Py_ssize_t O, Py_ssize_t Ho, Py_ssize_t Wo,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw,
                         int nthreads):
    """Elements of workspace the shift pass needs for ``nthreads`` threads."""
    cdef Py_ssize_t Hp = Ho + dh * (kh - 1), Wp = Wo + dw * (kw - 1)
    return nthreads * (C * Hp * Wp + dw * (kw - 1) + 1 + O * Ho * Wp)


cdef void _pad_sample(const SGeom* g, const floating* x, floating* xp) noexcept nogil:
    """xp[c, r, s] = x[c, r − ph, s − pw] (0 outside x) for r < Hp, s < Wp; slack = 0."""
    pad_planes(x, xp, g.C, g.H, g.W, g.Hp, g.Wp, g.P, g.ph, g.pw)
    memset(xp + g.C * g.P, 0, g.slack * sizeof(floating))


cdef void _shift_items(const SGeom* g, const floating* x, const floating* wt,
                       const floating* b, floating* y, const floating* gy, floating* dwp,
                       floating* buf, Py_ssize_t item, Py_ssize_t nitems, bint want_y,
                       bint want_dw) noexcept nogil:
    """Samples of work item ``item``: y_n = conv(x_n) + b and/or dW partial[item] (+)=
    corr(x_n, gy_n), by shifted GEMMs."""
    cdef Py_ssize_t n, gi, lo, hi, p, q, tap, off, o, i, j, r
    cdef Py_ssize_t Cg = g.Cg, Og = g.Og, M = g.M, P = g.P, Wp = g.Wp
    cdef Py_ssize_t wsize = g.kh * g.kw * g.O * Cg
    cdef floating* xp = buf
    cdef floating* yw = buf + g.xsize
    cdef floating beta
    cdef floating v
    cdef floating* d
    cdef const floating* src
    lo = item * g.N // nitems
    hi = (item + 1) * g.N // nitems
    for n in range(lo, hi):
        _pad_sample(g, x + n * g.C * g.H * g.W, xp)
        if want_y:
            for tap in range(g.kh * g.kw):
                p, q = tap // g.kw, tap % g.kw
                off = p * g.dh * Wp + q * g.dw
                beta = 0 if tap == 0 else 1
                for gi in range(g.G):
                    _gemm(c'N', c'N', <int>M, <int>Og, <int>Cg, xp + gi * Cg * P + off,
                          <int>P, wt + (tap * g.O + gi * Og) * Cg, <int>Cg, beta,
                          yw + gi * Og * M, <int>M)
            for o in range(g.O):
                v = b[o] if b != NULL else 0
                for i in range(g.Ho):
                    d = y + ((n * g.O + o) * g.Ho + i) * g.Wo
                    src = yw + (o * g.Ho + i) * Wp
                    for j in range(g.Wo):
                        d[j] = src[j] + v
        if want_dw:
            for r in range(g.O * g.Ho):              # yw = gy_n on the wide grid
                d = yw + r * Wp
                src = gy + n * g.O * g.Ho * g.Wo + r * g.Wo
                for j in range(g.Wo):
                    d[j] = src[j]
                for j in range(g.Wo, Wp):
                    d[j] = 0
            beta = 0 if n == lo else 1
            for tap in range(g.kh * g.kw):
                p, q = tap // g.kw, tap % g.kw
                off = p * g.dh * Wp + q * g.dw
                for gi in range(g.G):
                    _gemm(c'T', c'N', <int>Cg, <int>Og, <int>M, xp + gi * Cg * P + off,
                          <int>P, yw + gi * Og * M, <int>M, beta,
                          dwp + item * wsize + (tap * g.O + gi * Og) * Cg, <int>Cg)


def shift_pass(const floating[:, :, :, ::1] x, const floating[:, :, ::1] wt,
               const floating[::1] bias, floating[:, :, :, ::1] y,
               const floating[:, :, :, ::1] gy, floating[:, ::1] dwt_partial,
               floating[::1] ws, tuple kernel, tuple out_size, tuple pad, tuple dilation,
               Py_ssize_t groups, bint want_y, bint want_dw, int num_threads=1):
    """Stride-1 forward-role pass by shifted GEMMs (see the section comment): y = conv(x)
    + bias (want_y; bias may be empty) and dwt_partial[chunk] = Σ_{n in chunk}
    corr(x_n, gy_n) (want_dw; chunks = rows of dwt_partial).

    x (N, C, H, W); wt (kh·kw, O, C/G) for ``kernel`` = (kh, kw); y and gy
    (N, O, Ho, Wo) for ``out_size`` = (Ho, Wo); dwt_partial rows in the wt layout; unused
    arrays may be empty; ws holds ``shift_workspace_size`` elements for
    ``min(num_threads, items)`` threads.
    """
    cdef Py_ssize_t N = x.shape[0], item, nitems, nt
    cdef Py_ssize_t kh = kernel[0], kw = kernel[1]
    cdef SGeom g = _sgeom(N, x.shape[1], x.shape[2], x.shape[3], wt.shape[1], out_size[0],
                          out_size[1], kh, kw, pad, dilation, groups)
    if wt.shape[0] != kh * kw or wt.shape[2] * groups != g.C:
        raise ValueError("shift_pass kernel: wt has the wrong shape")
    nitems = dwt_partial.shape[0] if want_dw else N
    if N == 0 or nitems == 0:
        return
    cdef tuple ys = (N, g.O, g.Ho, g.Wo)
    if (want_y and (y.shape[0], y.shape[1], y.shape[2], y.shape[3]) != ys) or \
            (want_dw and ((gy.shape[0], gy.shape[1], gy.shape[2], gy.shape[3]) != ys
                          or dwt_partial.shape[1] != wt.size)):
        raise ValueError("shift_pass kernel: y / gy / dwt_partial have the wrong shape")
    if bias.shape[0] not in (0, g.O):
        raise ValueError("shift_pass kernel: bias has the wrong length")
    nt = max(1, min(num_threads, nitems))
    cdef Py_ssize_t per = g.xsize + g.O * g.M
    if ws.shape[0] < nt * per:
        raise ValueError("shift_pass kernel: workspace too small")
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* wp = &wt[0, 0, 0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 and want_y else NULL
    cdef floating* yp = &y[0, 0, 0, 0] if want_y else NULL
    cdef const floating* gp = &gy[0, 0, 0, 0] if want_dw else NULL
    cdef floating* dwp = &dwt_partial[0, 0] if want_dw else NULL
    cdef floating* wsp = &ws[0]
    with nogil:
        if nt == 1:
            for item in range(nitems):
                _shift_items(&g, xp, wp, bp, yp, gp, dwp, wsp, item, nitems, want_y, want_dw)
        else:
            for item in prange(nitems, num_threads=nt, schedule="dynamic"):
                _shift_items(&g, xp, wp, bp, yp, gp, dwp, wsp + threadid() * per, item,
                             nitems, want_y, want_dw)


def sum_rows(const floating[:, ::1] partial, floating[::1] out, int num_threads=1):
    """out[s] = Σ_c partial[c, s], rows added in order c = 0, 1, … (deterministic)."""
    cdef Py_ssize_t R = partial.shape[0], S = partial.shape[1], s, c
    cdef floating acc
    if out.shape[0] != S:
        raise ValueError("sum_rows kernel: out has the wrong length")
    if S == 0:
        return
    if R == 0:
        out[:] = 0
        return
    cdef const floating* pp = &partial[0, 0]
    cdef floating* op = &out[0]
    cdef int nt = num_threads if S * R > 32768 else 1
    with nogil:
        for s in prange(S, num_threads=nt, schedule="static"):
            acc = pp[s]
            for c in range(1, R):
                acc = acc + pp[c * S + s]
            op[s] = acc


cdef inline double _row_sum(const floating* a, Py_ssize_t S) noexcept nogil:
    """Σ a[0:S] in double with 8 interleaved accumulators (fixed order)."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    cdef Py_ssize_t k, m = S - S % 8
    for k in range(0, m, 8):
        s0 += a[k]
        s1 += a[k + 1]
        s2 += a[k + 2]
        s3 += a[k + 3]
        s4 += a[k + 4]
        s5 += a[k + 5]
        s6 += a[k + 6]
        s7 += a[k + 7]
    for k in range(m, S):
        s0 += a[k]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


def channel_sums(const floating[:, :, ::1] a, floating[::1] out, int num_threads=1):
    """out[c] = Σ_{n, s} a[n, c, s] (double accumulators; per channel, n in order, each
    row summed by ``_row_sum``): deterministic, independent of the thread count."""
    cdef Py_ssize_t N = a.shape[0], C = a.shape[1], S = a.shape[2], c, n
    cdef double acc
    if out.shape[0] != C:
        raise ValueError("channel_sums kernel: out has the wrong length")
    if C == 0:
        return
    if N * S == 0:
        out[:] = 0
        return
    cdef const floating* ap = &a[0, 0, 0]
    cdef floating* op = &out[0]
    cdef int nt = num_threads if N * C * S > 65536 else 1
    with nogil:
        for c in prange(C, num_threads=nt, schedule="static"):
            acc = 0
            for n in range(N):
                acc = acc + _row_sum(ap + (n * C + c) * S, S)
            op[c] = <floating>acc
