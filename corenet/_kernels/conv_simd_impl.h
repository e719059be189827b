/* Direct convolution loops of corenet/_kernels/conv_simd.h, compiled once per
 * instruction set. The including file defines
 *
 *   CN_SFX(name)  the name with the instruction-set suffix
 *   CN_TARGET     the GCC target string ("avx512f", "avx2,fma")
 *   CN_VT, CN_VTU the vector type of CN_VW floats, aligned and unaligned (4-byte)
 *   CN_FOB, CN_FV the forward register tile: CN_FOB output channels × CN_FV vectors
 *   CN_DOB, CN_DQB the weight-gradient register tile: CN_DOB output channels × CN_DQB
 *                  kernel columns
 *
 * and this file #undefs them all at its end.
 *
 * Layout (one sample, stride 1; see conv_simd.h): the input padded to C planes of
 * Hp × Wp (plane stride P), the output on the "wide" grid m = i·Wp + j of Mr positions
 * per channel (columns j >= Wo and m >= Ho·Wp are scratch), tap (p, q) at offset
 * p·dh·Wp + q·dw. Weights repacked as wt[((c·kh + p)·kw + q)·O + o].
 */

/* y[o0 + o, m0 … m0 + fv·CN_VW) = Σ_{c,p,q} wt[c,p,q,o0+o] · xp[c, m + off(p,q)]
   for o < ob <= CN_FOB, fv <= CN_FV (both compile-time constants after inlining) */
static inline __attribute__((always_inline, target(CN_TARGET))) void
CN_SFX(fwd_tile)(const float *xp, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t kh,
                 ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, const float *wt, ptrdiff_t O,
                 ptrdiff_t o0, const int ob, const int fv, float *yw, ptrdiff_t Mr,
                 ptrdiff_t m0)
{
    CN_VT acc[CN_FOB][CN_FV];
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int v = 0; v < fv; v++)
            acc[o][v] = (CN_VT){0};
    for (ptrdiff_t c = 0; c < C; c++) {
        for (ptrdiff_t p = 0; p < kh; p++) {
            const float *xr = xp + c * P + p * dh * Wp + m0;
            const float *wr = wt + (c * kh + p) * kw * O + o0;
            for (ptrdiff_t q = 0; q < kw; q++) {
                CN_VT xv[CN_FV];
#pragma GCC unroll 8
                for (int v = 0; v < fv; v++)
                    xv[v] = *(const CN_VTU *)(xr + q * dw + v * CN_VW);
#pragma GCC unroll 8
                for (int o = 0; o < ob; o++) {
                    const float w = wr[q * O + o];
#pragma GCC unroll 8
                    for (int v = 0; v < fv; v++)
                        acc[o][v] += xv[v] * w;
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int v = 0; v < fv; v++)
            *(CN_VTU *)(yw + (o0 + o) * Mr + m0 + v * CN_VW) = acc[o][v];
}

static __attribute__((target(CN_TARGET))) void
CN_SFX(conv_fwd)(const float *xp, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t kh,
                 ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, const float *wt, ptrdiff_t O,
                 float *yw, ptrdiff_t Mr)
{
    /* whole tiles of CN_FV vectors, then one tile of the remaining vectors (Mr is a
       multiple of CN_VW) */
    for (ptrdiff_t m0 = 0; m0 < Mr; m0 += CN_FV * CN_VW) {
        const int fv = (int)((Mr - m0) / CN_VW < CN_FV ? (Mr - m0) / CN_VW : CN_FV);
        for (ptrdiff_t o0 = 0; o0 < O; o0 += CN_FOB) {
            const int ob = (int)(O - o0 < CN_FOB ? O - o0 : CN_FOB);
#define CN_FWD_CALL(OB, FV) CN_SFX(fwd_tile)(xp, C, P, Wp, kh, kw, dh, dw, wt, O, o0, OB, \
                                             FV, yw, Mr, m0)
#if CN_FV >= 4
#define CN_FWD_V4(OB) case 4: CN_FWD_CALL(OB, 4); break;
#else
#define CN_FWD_V4(OB)
#endif
#define CN_FWD_V(OB) switch (fv) {                                                      \
                     case 1: CN_FWD_CALL(OB, 1); break;                                 \
                     case 2: CN_FWD_CALL(OB, 2); break;                                 \
                     case 3: CN_FWD_CALL(OB, 3); break;                                 \
                     CN_FWD_V4(OB)                                                      \
                     default: break; }
            switch (ob) {
            case 1: CN_FWD_V(1) break;
            case 2: CN_FWD_V(2) break;
            case 3: CN_FWD_V(3) break;
#if CN_FOB >= 6
            case 4: CN_FWD_V(4) break;
            case 5: CN_FWD_V(5) break;
            case 6: CN_FWD_V(6) break;
#endif
            default: break;
            }
#undef CN_FWD_V
#undef CN_FWD_V4
#undef CN_FWD_CALL
        }
    }
}

/* dwt[c, p, q0+q, o0+o] += Σ_n Σ_{m < Mr} dyw_n[o0+o, m] · xp_n[c, m + off(p, q0+q)] */
static inline __attribute__((always_inline, target(CN_TARGET))) void
CN_SFX(dw_tile)(const float *xp, ptrdiff_t xs, const float *dyw, ptrdiff_t ds,
                ptrdiff_t nb, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr, ptrdiff_t kh,
                ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t O, ptrdiff_t c,
                ptrdiff_t p, ptrdiff_t q0, const int qb, ptrdiff_t o0, const int ob,
                float *dwt)
{
    CN_VT acc[CN_DOB][CN_DQB];
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int q = 0; q < qb; q++)
            acc[o][q] = (CN_VT){0};
    for (ptrdiff_t n = 0; n < nb; n++) {
        const float *xr = xp + n * xs + c * P + p * dh * Wp + q0 * dw;
        const float *dr = dyw + n * ds + o0 * Mr;
        for (ptrdiff_t m = 0; m < Mr; m += CN_VW) {
            CN_VT xv[CN_DQB];
#pragma GCC unroll 8
            for (int q = 0; q < qb; q++)
                xv[q] = *(const CN_VTU *)(xr + m + q * dw);
#pragma GCC unroll 8
            for (int o = 0; o < ob; o++) {
                const CN_VT d = *(const CN_VTU *)(dr + o * Mr + m);
#pragma GCC unroll 8
                for (int q = 0; q < qb; q++)
                    acc[o][q] += d * xv[q];
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int q = 0; q < qb; q++) {
            float s = 0.0f;
            for (int k = 0; k < CN_VW; k++)
                s += acc[o][q][k];
            dwt[((c * kh + p) * kw + q0 + q) * O + o0 + o] += s;
        }
}

static __attribute__((target(CN_TARGET))) void
CN_SFX(conv_dw)(const float *xp, ptrdiff_t xs, const float *dyw, ptrdiff_t ds,
                ptrdiff_t nb, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr,
                ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t O,
                float *dwt)
{
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t p = 0; p < kh; p++)
            for (ptrdiff_t o0 = 0; o0 < O; o0 += CN_DOB)
                for (ptrdiff_t q0 = 0; q0 < kw; q0 += CN_DQB) {
                    const int ob = (int)(O - o0 < CN_DOB ? O - o0 : CN_DOB);
                    const int qb = (int)(kw - q0 < CN_DQB ? kw - q0 : CN_DQB);
#define CN_DW_CALL(OB, QB) CN_SFX(dw_tile)(xp, xs, dyw, ds, nb, P, Wp, Mr, kh, kw, dh, dw, \
                                           O, c, p, q0, QB, o0, OB, dwt)
#define CN_DW_Q(OB) switch (qb) {                                                      \
                    case 1: CN_DW_CALL(OB, 1); break;                                  \
                    case 2: CN_DW_CALL(OB, 2); break;                                  \
                    case 3: CN_DW_CALL(OB, 3); break;                                  \
                    CN_DW_Q4(OB)                                                       \
                    default: break; }
#if CN_DQB >= 5
#define CN_DW_Q4(OB) case 4: CN_DW_CALL(OB, 4); break; case 5: CN_DW_CALL(OB, 5); break;
#else
#define CN_DW_Q4(OB) case 4: CN_DW_CALL(OB, 4); break;
#endif
                    switch (ob) {
                    case 1: CN_DW_Q(1) break;
                    case 2: CN_DW_Q(2) break;
#if CN_DOB >= 4
                    case 3: CN_DW_Q(3) break;
                    case 4: CN_DW_Q(4) break;
#endif
                    default: break;
                    }
#undef CN_DW_Q4
#undef CN_DW_Q
#undef CN_DW_CALL
                }
}

#undef CN_SFX
#undef CN_TARGET
#undef CN_VT
#undef CN_VTU
#undef CN_VW
#undef CN_FOB
#undef CN_FV
#undef CN_DOB
#undef CN_DQB
