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
