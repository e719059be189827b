/* Direct (no im2col, no GEMM) float32 convolution loops for small layers, used by the
 * direct passes of corenet/_kernels/conv.pyx (spec convolution.md §3.2-3.3).
 *
 * One sample is zero-padded into xp: C planes of Hp × Wp (Hp = Ho + dh(kh−1),
 * Wp = Wo + dw(kw−1), plane stride P, then slack). The output is computed on the wide
 * grid m = i·Wp + j (0 <= m < Mr, Mr = Ho·Wp rounded up to whole vectors; the
 * positions with j >= Wo or m >= Ho·Wp are scratch: they read finite padded data or
 * slack zeros and are dropped by the caller). Tap (p, q) reads the contiguous row
 * xp[c, m + p·dh·Wp + q·dw], so a tap is a vector multiply-add over m:
 *
 *   cn_conv_fwd_f32: yw[o, m]       = Σ_{c,p,q} wt[c,p,q,o] · xp[c, m + off(p,q)]
 *                    (row_vecs > 0: only the Wo = row_vecs·lanes real columns of each row)
 *   cn_conv_dw_f32:  dwt[c,p,q,o]  += Σ_n Σ_m dyw_n[o, m] · xp_n[c, m + off(p,q)]
 *                    (dyw_n zero at the scratch positions; nb samples at strides xs, ds)
 *
 * with wt / dwt the weights repacked as (C, kh, kw, O). The caller provides
 * slack >= dw(kw−1) + (Mr − Ho·Wp) readable floats after the last plane.
 *
 * Register tiles: the forward keeps CN_FOB output channels × CN_FV vectors of positions
 * in registers across all taps (one load of x serves CN_FOB multiply-adds); the weight
 * gradient keeps CN_DOB output channels × CN_DQB kernel columns, or × CN_DCB input
 * channels for wide layers (one load of dy serves CN_DQB / CN_DCB multiply-adds, one
 * load of x CN_DOB); cn_conv_dw_by_channels picks the one with fewer idle registers.
 * Compiled for AVX-512F (16 lanes) and AVX2+FMA (8 lanes) with GCC's target attribute; cn_conv_isa() tells which one the CPU
 * runs (0: neither, or not a GCC x86-64 build: the caller uses its im2col path). The
 * multiply-adds are fused (FMA), so results differ from the im2col/BLAS path in the
 * last bits; for a given shape they do not depend on the thread count or the run.
 */
#ifndef CORENET_CONV_SIMD_H
#define CORENET_CONV_SIMD_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CN_CONV_SIMD 1

#define CN_SFX(name) cn_##name##_avx512
#define CN_TARGET "avx512f"
typedef float cn_v16 __attribute__((vector_size(64)));
typedef float cn_v16u __attribute__((vector_size(64), aligned(4)));
#define CN_VT cn_v16
#define CN_VTU cn_v16u
#define CN_VW 16
#define CN_FOB 6
#define CN_FV 4
#define CN_DOB 4
#define CN_DQB 5
#define CN_DCB 5
#define CN_WOV 4
#define CN_WCB 4
#include "conv_simd_impl.h"

#define CN_SFX(name) cn_##name##_avx2
#define CN_TARGET "avx2,fma"
typedef float cn_v8 __attribute__((vector_size(32)));
typedef float cn_v8u __attribute__((vector_size(32), aligned(4)));
#define CN_VT cn_v8
#define CN_VTU cn_v8u
#define CN_VW 8
#define CN_FOB 3
#define CN_FV 3
#define CN_DOB 2
#define CN_DQB 4
#define CN_DCB 4
#define CN_WOV 2
#define CN_WCB 6
#include "conv_simd_impl.h"
#endif

/* 2: AVX-512F, 1: AVX2 + FMA, 0: no direct path */
static int cn_conv_isa(void)
{
#ifdef CN_CONV_SIMD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
#endif
    return 0;
}

/* lanes of one vector (Mr is a multiple of it) */
static ptrdiff_t cn_conv_tile(int isa)
{
    return isa == 2 ? 16 : 8;
}

static void cn_conv_fwd_f32(int isa, const float *xp, ptrdiff_t C, ptrdiff_t P,
                            ptrdiff_t Wp, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh,
                            ptrdiff_t dw, const float *wt, ptrdiff_t O, float *yw,
                            ptrdiff_t Mr, ptrdiff_t row_vecs, ptrdiff_t Ho)
{
#ifdef CN_CONV_SIMD
    if (isa == 2)
        cn_conv_fwd_avx512(xp, C, P, Wp, kh, kw, dh, dw, wt, O, yw, Mr, row_vecs, Ho);
    else if (isa == 1)
        cn_conv_fwd_avx2(xp, C, P, Wp, kh, kw, dh, dw, wt, O, yw, Mr, row_vecs, Ho);
#endif
}

/* the weight-gradient tile that fills its registers better: output channels × kernel
   columns (conv_dw) or output × input channels (conv_dwc) */
static int cn_conv_dw_by_channels(int isa, ptrdiff_t C, ptrdiff_t kw)
{
    const ptrdiff_t cb = isa == 2 ? 5 : 4, qb = isa == 2 ? 5 : 4;
    return C * ((kw + qb - 1) / qb * qb) > kw * ((C + cb - 1) / cb * cb);
}

static void cn_conv_dw_f32(int isa, const float *xp, ptrdiff_t xs, const float *dyw,
                           ptrdiff_t ds, ptrdiff_t nb, ptrdiff_t C, ptrdiff_t P,
                           ptrdiff_t Wp, ptrdiff_t Mr, ptrdiff_t kh, ptrdiff_t kw,
                           ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t O, float *dwt)
{
#ifdef CN_CONV_SIMD
    const int by_c = cn_conv_dw_by_channels(isa, C, kw);
    if (isa == 2 && by_c)
        cn_conv_dwc_avx512(xp, xs, dyw, ds, nb, C, P, Wp, Mr, kh, kw, dh, dw, O, dwt);
    else if (isa == 2)
        cn_conv_dw_avx512(xp, xs, dyw, ds, nb, C, P, Wp, Mr, kh, kw, dh, dw, O, dwt);
    else if (isa == 1 && by_c)
        cn_conv_dwc_avx2(xp, xs, dyw, ds, nb, C, P, Wp, Mr, kh, kw, dh, dw, O, dwt);
    else if (isa == 1)
        cn_conv_dw_avx2(xp, xs, dyw, ds, nb, C, P, Wp, Mr, kh, kw, dh, dw, O, dwt);
#endif
}

/* lanes of one vector */
static ptrdiff_t cn_conv_lanes(int isa)
{
    return isa == 2 ? 16 : 8;
}

/* wide layers (at least two vectors of output channels, four input channels) take
   cn_conv_dwo_f32, with dy transposed */
static int cn_conv_dw_wide(int isa, ptrdiff_t C, ptrdiff_t O)
{
    return isa > 0 && O >= 2 * cn_conv_lanes(isa) && C >= 4;
}

/* dwt (C, kh, kw, Or) += Σ_n Σ_m dyt_n[m, o] · xp_n[c, m + off(p, q)], Or = O rounded up to
   whole vectors, dyt_n (Mr × Or) zero at scratch positions and lanes */
static void cn_conv_dwo_f32(int isa, const float *xp, ptrdiff_t xs, const float *dyt,
                            ptrdiff_t ds, ptrdiff_t nb, ptrdiff_t C, ptrdiff_t P,
                            ptrdiff_t Wp, ptrdiff_t Mr, ptrdiff_t Or, ptrdiff_t kh,
                            ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, float *dwt)
{
#ifdef CN_CONV_SIMD
    if (isa == 2)
        cn_conv_dwo_avx512(xp, xs, dyt, ds, nb, C, P, Wp, Mr, Or, kh, kw, dh, dw, dwt);
    else if (isa == 1)
        cn_conv_dwo_avx2(xp, xs, dyt, ds, nb, C, P, Wp, Mr, Or, kh, kw, dh, dw, dwt);
#endif
}

#endif
