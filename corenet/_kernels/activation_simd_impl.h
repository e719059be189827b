/* Template of the activation loops, included by activation_simd.h once per instruction
 * set (CN_TARGET attribute, CN_SFX name suffix). The outer inclusion instantiates the
 * body for float then double; see activation_simd.h for the conventions.
 * Each case mirrors corenet._reference (the NumPy twins) formula by formula. */
#ifndef CN_T

#define CN_CAT3_(a, b, c) a##b##c
#define CN_CAT3(a, b, c) CN_CAT3_(a, b, c)
#define CN_FN(base) CN_CAT3(base, CN_TS, CN_SFX)
#define CN_VEXP CN_FN(cn_vexp_)
#define CN_VPHI CN_FN(cn_vphi_)

#define CN_T float
#define CN_TS f32
#define CN_FLOAT 1
#define CN_W 32
#define CN_EXP expf
#define CN_EXPM1 expm1f
#define CN_LOG1P log1pf
#define CN_TANH tanhf
#define CN_ATAN atanf
#define CN_ERF erff
#define CN_FABS fabsf
/* float32 GELU: Φ(x) = (1 + erf(x/√2))/2, PyTorch's form: absolute error ~1e-7, relative
 * accuracy lost in the far left tail where Φ < 1e-3 (erfcf(-x/√2)/2 would keep it at twice
 * the cost); on AVX-512 cn_phi16 computes the same form */
#define CN_PHI(u) ((CN_T)0.5 * ((CN_T)1 + erff((u) * (CN_T)CN_INV_SQRT2)))
#include "activation_simd_impl.h"
#undef CN_T
#undef CN_TS
#undef CN_FLOAT
#undef CN_W
#undef CN_EXP
#undef CN_EXPM1
#undef CN_LOG1P
#undef CN_TANH
#undef CN_ATAN
#undef CN_ERF
#undef CN_FABS
#undef CN_PHI

#define CN_T double
#define CN_TS f64
#define CN_FLOAT 0
#define CN_W 16
#define CN_EXP exp
#define CN_EXPM1 expm1
#define CN_LOG1P log1p
#define CN_TANH tanh
#define CN_ATAN atan
#define CN_ERF erf
#define CN_FABS fabs
/* float64 GELU: Φ(x) = erfc(-x/√2)/2, accurate also for very negative x */
#define CN_PHI(u) (0.5 * erfc(-(u) * CN_INV_SQRT2))
#include "activation_simd_impl.h"
#undef CN_T
#undef CN_TS
#undef CN_FLOAT
#undef CN_W
#undef CN_EXP
#undef CN_EXPM1
#undef CN_LOG1P
#undef CN_TANH
#undef CN_ATAN
#undef CN_ERF
#undef CN_FABS
#undef CN_PHI

#undef CN_FN
#undef CN_CAT3
#undef CN_CAT3_
#undef CN_VEXP
#undef CN_VPHI

#else  /* ---------------------------------------------------------------- template body */

/* b[i] = e^b[i] for one block: float on AVX-512 by cn_exp16, otherwise the library exp
 * (vectorised through libmvec when available) */
CN_TARGET static inline void CN_FN(cn_vexp_)(CN_T *b) {
#if CN_FLOAT && CN_LEVEL == 2
    for (int i = 0; i < CN_W; i += 16)
        _mm512_storeu_ps(b + i, cn_exp16(_mm512_loadu_ps(b + i)));
#else
    _Pragma("omp simd")
    for (int i = 0; i < CN_W; i++)
        b[i] = CN_EXP(b[i]);
#endif
}

/* dst[i] = Φ(src[i]) for one block (GELU) */
CN_TARGET static inline void CN_FN(cn_vphi_)(CN_T *dst, const CN_T *src) {
#if CN_FLOAT && CN_LEVEL == 2
    for (int i = 0; i < CN_W; i += 16)
        _mm512_storeu_ps(dst + i, cn_phi16(_mm512_loadu_ps(src + i)));
#else
    _Pragma("omp simd")
    for (int i = 0; i < CN_W; i++)
        dst[i] = CN_PHI(src[i]);
#endif
}

/* test hook: out = e^x (which 0) or Φ(x) (which 1) through the block routines */
CN_TARGET static void CN_FN(cn_elem_)(int which, const CN_T *x, CN_T *out, ptrdiff_t n) {
    const CN_T *gin = x;
    if (which == 0)
        CN_MAPE(v, r = e);
    else
        CN_MAPP(r = ph);
}

/* ---- ReLU family with a bit mask (cn_mfwd_f32 / cn_mbwd_f32 in activation_simd.h).
 * One block: CN_W elements, CN_W/8 mask bytes; bit k of byte i (bit order little) is
 * element 8i + k. x86-64: compare-to-mask instructions per vector (vcmpps + kmov on
 * AVX-512, cmpps + movmskps on AVX2/SSE2), the same selects and products as cn_fwd_ /
 * cn_bwd_; elsewhere a portable loop gathering 1 << lane from CN_BITS. The mask word m
 * (CN_W bits) is written byte by byte (any endianness). */
CN_TARGET static inline void CN_FN(cn_mfwd_block_)(int code, const CN_T *xb, CN_T *yb,
                                                   unsigned char *bb, CN_T a) {
    uint32_t m = 0;
#if defined(CN_MULTI_ISA) && CN_LEVEL == 2 && CN_FLOAT
    const __m512 z = _mm512_setzero_ps(), av = _mm512_set1_ps(a);
    for (int h = 0; h < CN_W; h += 16) {
        __m512 v = _mm512_loadu_ps(xb + h);
        __mmask16 le = _mm512_cmp_ps_mask(v, z, _CMP_LE_OQ);      /* x <= 0; NaN: no */
        _mm512_storeu_ps(yb + h, code == A_RELU ? _mm512_maskz_mov_ps((__mmask16)~le, v)
                                                : _mm512_mask_mul_ps(v, le, v, av));
        m |= (uint32_t)(uint16_t)~le << h;
    }
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 2
    const __m512d z = _mm512_setzero_pd(), av = _mm512_set1_pd(a);
    for (int h = 0; h < CN_W; h += 8) {
        __m512d v = _mm512_loadu_pd(xb + h);
        __mmask8 le = _mm512_cmp_pd_mask(v, z, _CMP_LE_OQ);
        _mm512_storeu_pd(yb + h, code == A_RELU ? _mm512_maskz_mov_pd((__mmask8)~le, v)
                                                : _mm512_mask_mul_pd(v, le, v, av));
        m |= (uint32_t)(uint8_t)~le << h;
    }
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 1 && CN_FLOAT
    const __m256 z = _mm256_setzero_ps(), av = _mm256_set1_ps(a);
    for (int h = 0; h < CN_W; h += 8) {
        __m256 v = _mm256_loadu_ps(xb + h);
        __m256 le = _mm256_cmp_ps(v, z, _CMP_LE_OQ);
        _mm256_storeu_ps(yb + h, code == A_RELU ? _mm256_andnot_ps(le, v)
                                                : _mm256_blendv_ps(v, _mm256_mul_ps(v, av), le));
        m |= (uint32_t)(~_mm256_movemask_ps(le) & 0xff) << h;
    }
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 1
    const __m256d z = _mm256_setzero_pd(), av = _mm256_set1_pd(a);
    for (int h = 0; h < CN_W; h += 4) {
        __m256d v = _mm256_loadu_pd(xb + h);
        __m256d le = _mm256_cmp_pd(v, z, _CMP_LE_OQ);
        _mm256_storeu_pd(yb + h, code == A_RELU ? _mm256_andnot_pd(le, v)
                                                : _mm256_blendv_pd(v, _mm256_mul_pd(v, av), le));
        m |= (uint32_t)(~_mm256_movemask_pd(le) & 0xf) << h;
    }
#elif defined(CN_MULTI_ISA) && CN_FLOAT                   /* SSE2 */
    const __m128 z = _mm_setzero_ps(), av = _mm_set1_ps(a);
    for (int h = 0; h < CN_W; h += 4) {
        __m128 v = _mm_loadu_ps(xb + h);
        __m128 le = _mm_cmple_ps(v, z);                          /* ordered: NaN -> 0 */
        __m128 r = _mm_andnot_ps(le, v);
        if (code != A_RELU)
            r = _mm_or_ps(r, _mm_and_ps(le, _mm_mul_ps(v, av)));
        _mm_storeu_ps(yb + h, r);
        m |= (uint32_t)(~_mm_movemask_ps(le) & 0xf) << h;
    }
#elif defined(CN_MULTI_ISA)
    const __m128d z = _mm_setzero_pd(), av = _mm_set1_pd(a);
    for (int h = 0; h < CN_W; h += 2) {
        __m128d v = _mm_loadu_pd(xb + h);
        __m128d le = _mm_cmple_pd(v, z);
        __m128d r = _mm_andnot_pd(le, v);
        if (code != A_RELU)
            r = _mm_or_pd(r, _mm_and_pd(le, _mm_mul_pd(v, av)));
        _mm_storeu_pd(yb + h, r);
        m |= (uint32_t)(~_mm_movemask_pd(le) & 0x3) << h;
    }
#else
    if (code == A_RELU) {
        _Pragma("omp simd reduction(|:m)")
        for (int i = 0; i < CN_W; i++) {
            CN_T v = xb[i];
            yb[i] = v <= 0 ? (CN_T)0 : v;           /* as cn_fwd_: x <= 0 -> 0 (D-04) */
            m |= v <= 0 ? 0u : CN_BITS[i];
        }
    } else {
        _Pragma("omp simd reduction(|:m)")
        for (int i = 0; i < CN_W; i++) {
            CN_T v = xb[i];
            yb[i] = v <= 0 ? a * v : v;
            m |= v <= 0 ? 0u : CN_BITS[i];
        }
    }
#endif
    for (int k = 0; k < CN_W / 8; k++)
        bb[k] = (unsigned char)(m >> (8 * k));
}

/* y = f(x) (relu or leaky: bit-identical to cn_fwd_) and bits[i/8] bit i%8 = !(x[i] <= 0):
 * 1 where f'(x) = 1 (x > 0 or NaN), 0 where f'(x) = alpha (D-04); n >= 0 elements, the
 * last byte's unused bits 0. */
CN_TARGET static void CN_FN(cn_mfwd_)(int code, const CN_T *x, CN_T *y, unsigned char *bits,
                                      ptrdiff_t n, double p1) {
    const CN_T a = (CN_T)p1;
    ptrdiff_t j = 0;
    for (; j + CN_W <= n; j += CN_W)
        CN_FN(cn_mfwd_block_)(code, x + j, y + j, bits + j / 8, a);
    if (j < n) {
        CN_T xt[CN_W] = {0}, yt[CN_W];
        unsigned char bt[CN_W / 8];
        memcpy(xt, x + j, (size_t)(n - j) * sizeof(CN_T));
        CN_FN(cn_mfwd_block_)(code, xt, yt, bt, a);
        memcpy(y + j, yt, (size_t)(n - j) * sizeof(CN_T));
        memcpy(bits + j / 8, bt, (size_t)(n - j + 7) / 8);
    }
}

CN_TARGET static inline void CN_FN(cn_mbwd_block_)(const unsigned char *bb, const CN_T *gb,
                                                   CN_T *db, CN_T a) {
    uint32_t m = 0;
    for (int k = 0; k < CN_W / 8; k++)
        m |= (uint32_t)bb[k] << (8 * k);
#if defined(CN_MULTI_ISA) && CN_LEVEL == 2 && CN_FLOAT
    const __m512 one = _mm512_set1_ps(1.0f), av = _mm512_set1_ps(a);
    for (int h = 0; h < CN_W; h += 16)          /* dy * (bit ? 1 : a), as cn_bwd_ */
        _mm512_storeu_ps(db + h, _mm512_mul_ps(_mm512_loadu_ps(gb + h),
                         _mm512_mask_blend_ps((__mmask16)(m >> h), av, one)));
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 2
    const __m512d one = _mm512_set1_pd(1.0), av = _mm512_set1_pd(a);
    for (int h = 0; h < CN_W; h += 8)
        _mm512_storeu_pd(db + h, _mm512_mul_pd(_mm512_loadu_pd(gb + h),
                         _mm512_mask_blend_pd((__mmask8)(m >> h), av, one)));
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 1 && CN_FLOAT
    const __m256 one = _mm256_set1_ps(1.0f), av = _mm256_set1_ps(a);
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int h = 0; h < CN_W; h += 8) {
        __m256i sel = _mm256_and_si256(_mm256_set1_epi32((int)(m >> h)), lane);
        __m256 set = _mm256_castsi256_ps(_mm256_cmpeq_epi32(sel, lane));
        _mm256_storeu_ps(db + h, _mm256_mul_ps(_mm256_loadu_ps(gb + h),
                                               _mm256_blendv_ps(av, one, set)));
    }
#elif defined(CN_MULTI_ISA) && CN_LEVEL == 1
    const __m256d one = _mm256_set1_pd(1.0), av = _mm256_set1_pd(a);
    const __m256i lane = _mm256_setr_epi64x(1, 2, 4, 8);
    for (int h = 0; h < CN_W; h += 4) {
        __m256i sel = _mm256_and_si256(_mm256_set1_epi64x((long long)(m >> h)), lane);
        __m256d set = _mm256_castsi256_pd(_mm256_cmpeq_epi64(sel, lane));
        _mm256_storeu_pd(db + h, _mm256_mul_pd(_mm256_loadu_pd(gb + h),
                                               _mm256_blendv_pd(av, one, set)));
    }
#elif defined(CN_MULTI_ISA) && CN_FLOAT                   /* SSE2 */
    const __m128 one = _mm_set1_ps(1.0f), av = _mm_set1_ps(a);
    const __m128i lane = _mm_setr_epi32(1, 2, 4, 8);
    for (int h = 0; h < CN_W; h += 4) {
        __m128i sel = _mm_and_si128(_mm_set1_epi32((int)(m >> h)), lane);
        __m128 set = _mm_castsi128_ps(_mm_cmpeq_epi32(sel, lane));
        __m128 f = _mm_or_ps(_mm_and_ps(set, one), _mm_andnot_ps(set, av));
        _mm_storeu_ps(db + h, _mm_mul_ps(_mm_loadu_ps(gb + h), f));
    }
#elif defined(CN_MULTI_ISA)
    const __m128d one = _mm_set1_pd(1.0), av = _mm_set1_pd(a);
    const __m128i lane = _mm_setr_epi32(1, 1, 2, 2);        /* both halves of a lane */
    for (int h = 0; h < CN_W; h += 2) {
        __m128i sel = _mm_and_si128(_mm_set1_epi32((int)(m >> h)), lane);
        __m128d set = _mm_castsi128_pd(_mm_cmpeq_epi32(sel, lane));
        __m128d f = _mm_or_pd(_mm_and_pd(set, one), _mm_andnot_pd(set, av));
        _mm_storeu_pd(db + h, _mm_mul_pd(_mm_loadu_pd(gb + h), f));
    }
#else
    _Pragma("omp simd")
    for (int i = 0; i < CN_W; i++)
        db[i] = gb[i] * ((m & CN_BITS[i]) ? (CN_T)1 : a);
#endif
}

/* dx = dy * (bit ? 1 : alpha) from the bits of cn_mfwd_ (alpha = 0 for relu): the same
 * product as cn_bwd_ from x, so the same bits (an inf/NaN dy where f' = 0 gives NaN). */
CN_TARGET static void CN_FN(cn_mbwd_)(const unsigned char *bits, const CN_T *dy, CN_T *dx,
                                      ptrdiff_t n, double p1) {
    const CN_T a = (CN_T)p1;
    ptrdiff_t j = 0;
    for (; j + CN_W <= n; j += CN_W)
        CN_FN(cn_mbwd_block_)(bits + j / 8, dy + j, dx + j, a);
    if (j < n) {
        CN_T gt[CN_W] = {0}, dt[CN_W];
        unsigned char bt[CN_W / 8] = {0};
        memcpy(gt, dy + j, (size_t)(n - j) * sizeof(CN_T));
        memcpy(bt, bits + j / 8, (size_t)(n - j + 7) / 8);
        CN_FN(cn_mbwd_block_)(bt, gt, dt, a);
        memcpy(dx + j, dt, (size_t)(n - j) * sizeof(CN_T));
    }
}

CN_TARGET static void CN_FN(cn_fwd_)(int code, const CN_T *x, CN_T *y, ptrdiff_t n,
                                     double p1, double p2) {
    const CN_T a = (CN_T)p1, b = (CN_T)p2;
    const CN_T L = (CN_T)CN_SELU_L, LA = (CN_T)CN_SELU_LA;
    const CN_T *gin = x;
    CN_T *out = y;
    switch (code) {
    case A_IDENTITY:
        if (y != x)
            memmove(y, x, (size_t)n * sizeof(CN_T));
        break;
    case A_SIGMOID:
        CN_MAPE(-CN_FABS(v), r = CN_SIG(v, e));
        break;
    case A_SIGMOID_SYM:
        CN_MAPE(-CN_FABS(v), r = CN_SIG(v, e) - (CN_T)0.5);
        break;
    case A_TANH:
        CN_MAP(r = CN_TANH(v));
        break;
    case A_SCALED_TANH:
        CN_MAP(r = a * CN_TANH(b * v));
        break;
    case A_ARCTAN:
        CN_MAP(r = CN_ATAN(v));
        break;
    case A_SOFTSIGN:
        CN_MAP(r = v / ((CN_T)1 + CN_FABS(v)));
        break;
    case A_RELU:         /* x <= 0 -> 0 (D-04); NaN propagates */
        CN_MAP(r = v <= 0 ? (CN_T)0 : v);
        break;
    case A_LEAKY:
        CN_MAP(r = v <= 0 ? a * v : v);
        break;
    case A_ELU:          /* README §10 expm1(min(x, 0)): the argument -|x| equals min(x, 0)
                          * wherever the value is used (x <= 0) and never overflows; unlike
                          * a select before the call it keeps the loop vectorisable */
        CN_MAP(CN_T m = CN_EXPM1(-CN_FABS(v)); r = v <= 0 ? a * m : v);
        break;
    case A_SELU:
        CN_MAP(CN_T m = CN_EXPM1(-CN_FABS(v)); r = v <= 0 ? LA * m : L * v);
        break;
    case A_SOFTPLUS:     /* (max(bx, 0) + log1p(exp(-|bx|))) / beta (§10) */
        CN_MAPE(-CN_FABS(a * v), CN_T u = a * v;
                r = ((u > 0 ? u : (CN_T)0) + CN_LOG1P(e)) / a);
        break;
    case A_ERF:
        CN_MAP(r = CN_ERF(v));
        break;
    case A_GAUSSIAN:
        CN_MAPE((CN_T)-0.5 * v * v, r = e);
        break;
    case A_SIGN:
        CN_MAP(r = v >= 0 ? (CN_T)1 : (CN_T)-1);
        break;
    case A_GELU:         /* x Φ(x) */
        CN_MAPP(r = v * ph);
        break;
    case A_SILU:
        CN_MAPE(-CN_FABS(v), r = v * CN_SIG(v, e));
        break;
    default:
        break;
    }
}

CN_TARGET static void CN_FN(cn_bwd_)(int code, const CN_T *x, const CN_T *dy, CN_T *dx,
                                     ptrdiff_t n, double p1, double p2, int from_y) {
    const CN_T a = (CN_T)p1, b = (CN_T)p2, ab = (CN_T)(p1 * p2);
    const CN_T L = (CN_T)CN_SELU_L, LA = (CN_T)CN_SELU_LA;
    const CN_T c_erf = (CN_T)CN_TWO_OVER_SQRTPI, c_phi = (CN_T)CN_INV_SQRT2PI;
    const CN_T *gin = dy;
    CN_T *out = dx;
    switch (code) {
    case A_IDENTITY:
        if (dx != dy)
            memmove(dx, dy, (size_t)n * sizeof(CN_T));
        break;
    case A_SIGMOID:
        if (from_y)
            CN_MAP(r = g * (v * ((CN_T)1 - v)));
        else
            CN_MAPE(-CN_FABS(v), CN_T s = CN_SIG(v, e); r = g * (s * ((CN_T)1 - s)));
        break;
    case A_SIGMOID_SYM:
        if (from_y)
            CN_MAP(CN_T s = v + (CN_T)0.5; r = g * (s * ((CN_T)1 - s)));
        else
            CN_MAPE(-CN_FABS(v), CN_T s = CN_SIG(v, e); r = g * (s * ((CN_T)1 - s)));
        break;
    case A_TANH:
        if (from_y)
            CN_MAP(r = g * ((CN_T)1 - v * v));
        else
            CN_MAP(CN_T t = CN_TANH(v); r = g * ((CN_T)1 - t * t));
        break;
    case A_SCALED_TANH:
        if (from_y)
            CN_MAP(CN_T t = v / a; r = g * (ab * ((CN_T)1 - t * t)));
        else
            CN_MAP(CN_T t = CN_TANH(b * v); r = g * (ab * ((CN_T)1 - t * t)));
        break;
    case A_ARCTAN:
        CN_MAP(r = g / ((CN_T)1 + v * v));
        break;
    case A_SOFTSIGN:
        CN_MAP(CN_T u = (CN_T)1 + CN_FABS(v); r = g / (u * u));
        break;
    case A_RELU:         /* dy * f'(x), f'(x) = 0 for x <= 0 (D-04), else 1 (NaN x: 1), as
                          * the twin: an inf/NaN dy where x <= 0 gives NaN. The product
                          * (not a select of dy) keeps dy's load unmasked and prefetched. */
        CN_MAP(r = g * (v <= 0 ? (CN_T)0 : (CN_T)1));
        break;
    case A_LEAKY:        /* f'(0) = alpha (D-04) */
        CN_MAP(r = g * (v <= 0 ? a : (CN_T)1));
        break;
    case A_ELU:          /* f'(x) = alpha e^x = y + alpha (x <= 0), 1 (x > 0); e^-|x| as in
                          * the forward pass */
        if (from_y)
            CN_MAP(r = v <= 0 ? g * (v + a) : g);
        else
            CN_MAPE(-CN_FABS(v), r = v <= 0 ? g * (a * e) : g);
        break;
    case A_SELU:
        if (from_y)
            CN_MAP(r = v <= 0 ? g * (v + LA) : g * L);
        else
            CN_MAPE(-CN_FABS(v), r = v <= 0 ? g * (LA * e) : g * L);
        break;
    case A_SOFTPLUS:     /* f'(x) = sigmoid(beta x) */
        CN_MAPE(-CN_FABS(a * v), CN_T u = a * v; r = g * CN_SIG(u, e));
        break;
    case A_ERF:
        CN_MAPE(-v * v, r = g * (c_erf * e));
        break;
    case A_GAUSSIAN:
        CN_MAPE((CN_T)-0.5 * v * v, r = g * (-v * e));
        break;
    case A_GELU:         /* Φ(x) + x φ(x) */
        CN_MAPPE((CN_T)-0.5 * v * v, r = g * (ph + v * c_phi * e));
        break;
    case A_SILU:         /* s (1 + x (1 - s)) */
        CN_MAPE(-CN_FABS(v), CN_T s = CN_SIG(v, e); r = g * (s * ((CN_T)1 + v * ((CN_T)1 - s))));
        break;
    default:             /* sign: not differentiable (rejected by the caller) */
        break;
    }
}

#endif
