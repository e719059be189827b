/* Element-wise activation loops of corenet/_kernels/activations.pyx (spec networks.md
 * §2.2, README §10 stable forms, D-04 left branch at kinks).
 *
 * cn_fwd_f32 / cn_fwd_f64:  y[i]  = f(x[i])                 for 0 <= i < n
 * cn_bwd_f32 / cn_bwd_f64:  dx[i] = dy[i] * f'(x[i])        (x holds y = f(x) if from_y)
 *
 * - Arithmetic is done in the array type (float for float32, double for float64);
 *   float32 calls the float library functions (tanhf, expm1f, log1pf, atanf, erff).
 * - Every loop is branch-free (selects instead of ifs; a transcendental is evaluated for
 *   every element on an argument that cannot overflow, e.g. exp(-|x|)) and written as
 *   `#pragma omp simd` blocks of CN_W elements, so GCC vectorises them (the build adds
 *   -fno-math-errno -fno-trapping-math -ffp-contract=off for this file only: no errno,
 *   selects may evaluate both sides, a*b+c stays two roundings; NaN/inf results are
 *   IEEE's). With CORENET_LIBMVEC (glibc >= 2.35, x86-64) the math functions are declared
 *   `simd` and the vector loops call glibc's libmvec (_ZGV*_tanhf, ...): the same
 *   library, vector entry points (tanh stays a library tanh, README §10).
 * - Two float32 functions are corenet's own, on AVX-512 only (libmvec's are 2-3x slower
 *   there): e^x (cn_exp16, max error 1.01 ulp over all floats) and GELU's
 *   Φ(x) = (1 + erf(x/√2))/2 (cn_phi16, absolute error <= 7e-8), see below.
 * - The loops are compiled three times (baseline x86-64 = SSE2, AVX2, AVX-512F) and
 *   cn_init_isa() picks one from the CPU once at import. No -march flag is needed.
 *   Results may differ in the last bits between instruction sets (library versions,
 *   own functions), never between runs or thread counts on one machine.
 * - Position independence (hence determinism for any thread count): the tail of a
 *   range is copied into a zero-padded block and run through the same vector code, so
 *   every element goes through the same instructions wherever a chunk starts.
 * - Exact aliasing (y == x, dx == dy, dx == x) is allowed; partial overlap is not.
 */
#ifndef CORENET_ACTIVATION_SIMD_H
#define CORENET_ACTIVATION_SIMD_H

#include <math.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>

#if defined(CORENET_LIBMVEC)
#define CN_VEC __attribute__((__simd__("notinbranch")))
float expf(float) CN_VEC;     double exp(double) CN_VEC;
float expm1f(float) CN_VEC;   double expm1(double) CN_VEC;
float log1pf(float) CN_VEC;   double log1p(double) CN_VEC;
float tanhf(float) CN_VEC;    double tanh(double) CN_VEC;
float atanf(float) CN_VEC;    double atan(double) CN_VEC;
float erff(float) CN_VEC;     double erf(double) CN_VEC;
double erfc(double) CN_VEC;
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__OPTIMIZE__)
#define CN_MULTI_ISA 1
#endif

/* activation codes (the Python-visible CODES table of activations.pyx) */
enum {
    A_IDENTITY = 0, A_SIGMOID = 1, A_SIGMOID_SYM = 2, A_TANH = 3, A_SCALED_TANH = 4,
    A_ARCTAN = 5, A_SOFTSIGN = 6, A_RELU = 7,
    A_LEAKY = 8,        /* leaky_relu and generalized_relu: x if x > 0 else alpha*x */
    A_ELU = 9, A_SELU = 10, A_SOFTPLUS = 11, A_ERF = 12, A_GAUSSIAN = 13, A_SIGN = 14,
    A_GELU = 15, A_SILU = 16, A_NCODES = 17
};

#define CN_SELU_L 1.0507009873554804934
#define CN_SELU_LA (1.0507009873554804934 * 1.6732632423543772848)
#define CN_TWO_OVER_SQRTPI 1.1283791670955125739
#define CN_INV_SQRT2 0.70710678118654752440
#define CN_INV_SQRT2PI 0.39894228040143267794

/* ---- block loops; CN_T (element type), CN_W (block length) and CN_VEXP (in-place e^t
 * of one block) are set by the template. BODY reads v (= x[i]) and g (= dy[i]; x[i] in
 * a forward pass) [and e = exp(ARG)] and assigns r. A block of CN_W elements runs as
 * omp-simd loops; the tail of a range goes through the same code in a zero-padded block,
 * so every element is computed by the same instructions wherever a range starts. */
#define CN_BLOCK(XP, GP, YP, ...) do {                                                \
        const CN_T *xb_ = (XP), *gb_ = (GP); CN_T *yb_ = (YP);                        \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_], g = gb_[i_], r; (void)g; __VA_ARGS__; yb_[i_] = r;      \
        }                                                                             \
    } while (0)

/* with e = exp(ARG): three passes over the block (argument, exponential, formula) */
#define CN_BLOCKE(XP, GP, YP, ARG, ...) do {                                          \
        const CN_T *xb_ = (XP), *gb_ = (GP); CN_T *yb_ = (YP);                        \
        CN_T et_[CN_W];                                                               \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_]; et_[i_] = (ARG);                                        \
        }                                                                             \
        CN_VEXP(et_);                                                                 \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_], g = gb_[i_], e = et_[i_], r; (void)v; (void)g;          \
            __VA_ARGS__;                                                              \
            yb_[i_] = r;                                                              \
        }                                                                             \
    } while (0)

/* GELU blocks: ph = Φ(x) [and e = exp(ARG)] */
#define CN_BLOCKP(XP, GP, YP, ...) do {                                               \
        const CN_T *xb_ = (XP), *gb_ = (GP); CN_T *yb_ = (YP);                        \
        CN_T pt_[CN_W];                                                               \
        CN_VPHI(pt_, xb_);                                                            \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_], g = gb_[i_], ph = pt_[i_], r; (void)v; (void)g;         \
            __VA_ARGS__;                                                              \
            yb_[i_] = r;                                                              \
        }                                                                             \
    } while (0)

#define CN_BLOCKPE(XP, GP, YP, ARG, ...) do {                                         \
        const CN_T *xb_ = (XP), *gb_ = (GP); CN_T *yb_ = (YP);                        \
        CN_T et_[CN_W], pt_[CN_W];                                                    \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_]; et_[i_] = (ARG);                                        \
        }                                                                             \
        CN_VEXP(et_);                                                                 \
        CN_VPHI(pt_, xb_);                                                            \
        _Pragma("omp simd")                                                           \
        for (int i_ = 0; i_ < CN_W; i_++) {                                           \
            CN_T v = xb_[i_], g = gb_[i_], e = et_[i_], ph = pt_[i_], r; (void)g;      \
            __VA_ARGS__;                                                              \
            yb_[i_] = r;                                                              \
        }                                                                             \
    } while (0)

/* run BLOCK over x[0:n] (and gin[0:n]) into out[0:n] */
#define CN_MAPX(BLOCK, ...) do {                                                      \
        ptrdiff_t j_ = 0;                                                             \
        for (; j_ + CN_W <= n; j_ += CN_W)                                            \
            BLOCK(x + j_, gin + j_, out + j_, __VA_ARGS__);                           \
        if (j_ < n) {                                                                 \
            CN_T xt_[CN_W] = {0}, gt_[CN_W] = {0}, ot_[CN_W];                         \
            memcpy(xt_, x + j_, (size_t)(n - j_) * sizeof(CN_T));                     \
            memcpy(gt_, gin + j_, (size_t)(n - j_) * sizeof(CN_T));                   \
            BLOCK(xt_, gt_, ot_, __VA_ARGS__);                                        \
            memcpy(out + j_, ot_, (size_t)(n - j_) * sizeof(CN_T));                   \
        }                                                                             \
    } while (0)
#define CN_MAP(...) CN_MAPX(CN_BLOCK, __VA_ARGS__)
#define CN_MAPE(ARG, ...) CN_MAPX(CN_BLOCKE, ARG, __VA_ARGS__)
#define CN_MAPP(...) CN_MAPX(CN_BLOCKP, __VA_ARGS__)
#define CN_MAPPE(ARG, ...) CN_MAPX(CN_BLOCKPE, ARG, __VA_ARGS__)

/* 1 << lane, for the bit masks of the ReLU family (a block has at most 32 lanes) */
static const uint32_t CN_BITS[32] = {
    1u << 0, 1u << 1, 1u << 2, 1u << 3, 1u << 4, 1u << 5, 1u << 6, 1u << 7,
    1u << 8, 1u << 9, 1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* sigmoid(u) from e = exp(-|u|), sign-split form (README §10):
 * 1/(1+e^-u) for u >= 0, e^u/(1+e^u) for u < 0 */
#define CN_SIG(u, e) (((u) >= 0 ? (CN_T)1 : (e)) / ((CN_T)1 + (e)))

#ifdef CN_MULTI_ISA
#include <immintrin.h>
/* e^x for 16 floats (AVX-512F): x = k ln2 + r (Cody-Waite, |r| <= ln2/2), e^r by a
 * degree-6 polynomial, scaled by 2^k with vscalefps (exact, subnormal results included).
 * Checked against exp() in double on all 2^32 floats: max error 1.01 ulp, 99.6 %
 * correctly rounded; NaN -> NaN, +inf -> inf, -inf -> 0, overflow -> inf. */
__attribute__((target("avx512f"))) static inline __m512 cn_exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);          /* a NaN x is kept */
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0.001381455920636654f), r,
                               _mm512_set1_ps(0.008368735201656818f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.04166838899254799f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.1666652113199234f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.4999999403953552f));
    __m512 p = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r));
    return _mm512_scalef_ps(p, k);
}

/* Φ(x) = (1 + erf(x/√2))/2 for 16 floats (AVX-512F), for GELU: erf(t), t = |x|/√2, by a
 * degree-5 polynomial in t - c on 16 intervals [i/4, (i+1)/4) (coefficients picked per
 * lane with vpermps; minimax fits of erf made for corenet), erf = 1 for t >= 4, odd in x.
 * Checked on all 2^32 floats against erfc() in double: |error| <= 7.0e-8 (1.2 ulp of
 * Φ near 1); x Φ(x) within 0.15 of the kernel-vs-twin tolerance everywhere. */
static const float CN_PHI_CENTER[16] = {
    0.125f, 0.375f, 0.625f, 0.875f, 1.125f, 1.375f, 1.625f, 1.875f,
    2.125f, 2.375f, 2.625f, 2.875f, 3.125f, 3.375f, 3.625f, 3.875f};
static const float CN_PHI_COEF[6][16] = {
    {1.403162032e-01f, 4.041168988e-01f, 6.232408881e-01f, 7.840750813e-01f,
     8.883882165e-01f, 9.481700659e-01f, 9.784437418e-01f, 9.919900298e-01f,
     9.973459840e-01f, 9.992170334e-01f, 9.997946024e-01f, 9.999521375e-01f,
     9.999901056e-01f, 9.999982119e-01f, 9.999997020e-01f, 9.999999404e-01f},
    {1.110885262e+00f, 9.803528190e-01f, 7.634995580e-01f, 5.247450471e-01f,
     3.182739615e-01f, 1.703597754e-01f, 8.047225326e-02f, 3.354582563e-02f,
     1.234081946e-02f, 4.006478004e-03f, 1.147875562e-03f, 2.902286651e-04f,
     6.475886767e-05f, 1.275181330e-05f, 2.215942686e-06f, 3.398281194e-07f},
    {-1.388575733e-01f, -3.676254451e-01f, -4.771815538e-01f, -4.591504931e-01f,
     -3.580603004e-01f, -2.342477143e-01f, -1.307694018e-01f, -6.289899349e-02f,
     -2.622399852e-02f, -9.514959529e-03f, -3.012863686e-03f, -8.342493093e-04f,
     -2.023084235e-04f, -4.301685112e-05f, -8.027221156e-06f, -1.315554755e-06f},
    {-3.587164283e-01f, -2.348746210e-01f, -5.567582697e-02f, 9.291821718e-02f,
     1.624495536e-01f, 1.579381078e-01f, 1.148423925e-01f, 6.744252145e-02f,
     3.303794935e-02f, 1.373050082e-02f, 4.890230950e-03f, 1.502383500e-03f,
     3.999425098e-04f, 9.255319310e-05f, 1.866452658e-05f, 3.286129186e-06f},
    {6.817901134e-02f, 1.654140204e-01f, 1.754939705e-01f, 1.121533215e-01f,
     2.833459154e-02f, -2.998309955e-02f, -4.938136786e-02f, -4.216316715e-02f,
     -2.640285902e-02f, -1.320593525e-02f, -5.466930568e-03f, -1.908532111e-03f,
     -5.682194023e-04f, -1.453416917e-04f, -3.210326395e-05f, -6.146352916e-06f},
    {1.034336090e-01f, 4.530489445e-02f, -2.698117867e-02f, -6.663610041e-02f,
     -6.102349609e-02f, -3.064922616e-02f, -2.327263821e-03f, 1.130846050e-02f,
     1.243678760e-02f, 8.361011744e-03f, 4.239052068e-03f, 1.729775104e-03f,
     5.853116163e-04f, 1.669847552e-04f, 4.058538980e-05f, 8.462723599e-06f},
};

__attribute__((target("avx512f"))) static inline __m512 cn_phi16(__m512 x) {
    __m512i xs = _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000));
    __m512 t = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    t = _mm512_min_ps(_mm512_set1_ps(4.0f), t);                  /* a NaN t is kept */
    __m512i i = _mm512_cvttps_epi32(_mm512_mul_ps(t, _mm512_set1_ps(4.0f)));
    i = _mm512_min_epi32(i, _mm512_set1_epi32(15));
    __m512 d = _mm512_sub_ps(t, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_CENTER)));
    __m512 p = _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[5]));
    p = _mm512_fmadd_ps(p, d, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[4])));
    p = _mm512_fmadd_ps(p, d, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[3])));
    p = _mm512_fmadd_ps(p, d, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[2])));
    p = _mm512_fmadd_ps(p, d, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[1])));
    p = _mm512_fmadd_ps(p, d, _mm512_permutexvar_ps(i, _mm512_loadu_ps(CN_PHI_COEF[0])));
    p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(t, _mm512_set1_ps(4.0f), _CMP_GE_OQ),
                           _mm512_set1_ps(1.0f));
    p = _mm512_castsi512_ps(_mm512_xor_epi32(_mm512_castps_si512(p), xs));
    return _mm512_fmadd_ps(p, _mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
}
#endif

/* ---- instantiate the template: 2 types x (1 or 3) instruction sets */
#define CN_TARGET
#define CN_SFX _base
#define CN_LEVEL 0
#include "activation_simd_impl.h"
#undef CN_TARGET
#undef CN_SFX
#undef CN_LEVEL
#ifdef CN_MULTI_ISA
#define CN_TARGET __attribute__((target("avx2")))
#define CN_SFX _avx2
#define CN_LEVEL 1
#include "activation_simd_impl.h"
#undef CN_TARGET
#undef CN_SFX
#undef CN_LEVEL
#define CN_TARGET __attribute__((target("avx512f")))
#define CN_SFX _avx512
#define CN_LEVEL 2
#include "activation_simd_impl.h"
#undef CN_TARGET
#undef CN_SFX
#undef CN_LEVEL
#endif

/* 0: baseline, 1: AVX2, 2: AVX-512F; set once by cn_init_isa() at module import */
static int cn_isa = 0;

static int cn_init_isa(void) {
#ifdef CN_MULTI_ISA
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        cn_isa = 2;
    else if (__builtin_cpu_supports("avx2"))
        cn_isa = 1;
#endif
    return cn_isa;
}

/* test hook: use instruction set `isa` (<= the detected one); returns the previous one */
static int cn_set_isa(int isa) {
    int old = cn_isa;
    cn_isa = isa;
    return old;
}

#ifdef CN_MULTI_ISA
#define CN_DISPATCH(NAME, ARGS) do {                                                  \
        if (cn_isa == 2) NAME##_avx512 ARGS;                                          \
        else if (cn_isa == 1) NAME##_avx2 ARGS;                                       \
        else NAME##_base ARGS;                                                        \
    } while (0)
#else
#define CN_DISPATCH(NAME, ARGS) NAME##_base ARGS
#endif

static void cn_fwd_f32(int code, const float *x, float *y, ptrdiff_t n, double p1,
                       double p2) {
    CN_DISPATCH(cn_fwd_f32, (code, x, y, n, p1, p2));
}

static void cn_fwd_f64(int code, const double *x, double *y, ptrdiff_t n, double p1,
                       double p2) {
    CN_DISPATCH(cn_fwd_f64, (code, x, y, n, p1, p2));
}

static void cn_bwd_f32(int code, const float *x, const float *dy, float *dx, ptrdiff_t n,
                       double p1, double p2, int from_y) {
    CN_DISPATCH(cn_bwd_f32, (code, x, dy, dx, n, p1, p2, from_y));
}

static void cn_bwd_f64(int code, const double *x, const double *dy, double *dx,
                       ptrdiff_t n, double p1, double p2, int from_y) {
    CN_DISPATCH(cn_bwd_f64, (code, x, dy, dx, n, p1, p2, from_y));
}

/* ReLU family (relu, leaky/generalized relu) with a bit mask: forward writes y and one
 * bit per element (1 where f'(x) = 1); backward reads the n/8 bytes of bits instead of x
 * (1/32 of its bytes in float32, 1/64 in float64). */
static void cn_mfwd_f32(int code, const float *x, float *y, unsigned char *bits, ptrdiff_t n,
                        double p1) {
    CN_DISPATCH(cn_mfwd_f32, (code, x, y, bits, n, p1));
}

static void cn_mfwd_f64(int code, const double *x, double *y, unsigned char *bits,
                        ptrdiff_t n, double p1) {
    CN_DISPATCH(cn_mfwd_f64, (code, x, y, bits, n, p1));
}

static void cn_mbwd_f32(const unsigned char *bits, const float *dy, float *dx, ptrdiff_t n,
                        double p1) {
    CN_DISPATCH(cn_mbwd_f32, (bits, dy, dx, n, p1));
}

static void cn_mbwd_f64(const unsigned char *bits, const double *dy, double *dx, ptrdiff_t n,
                        double p1) {
    CN_DISPATCH(cn_mbwd_f64, (bits, dy, dx, n, p1));
}

static void cn_elem_f32(int which, const float *x, float *y, ptrdiff_t n) {
    CN_DISPATCH(cn_elem_f32, (which, x, y, n));
}

static void cn_elem_f64(int which, const double *x, double *y, ptrdiff_t n) {
    CN_DISPATCH(cn_elem_f64, (which, x, y, n));
}

#endif /* CORENET_ACTIVATION_SIMD_H */
