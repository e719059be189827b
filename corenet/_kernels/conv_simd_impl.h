/* Direct convolution loops of corenet/_kernels/conv_simd.h, compiled once per
 * instruction set. The including file defines
 *
 *   CN_SFX(name)  the name with the instruction-set suffix
 *   CN_TARGET     the GCC target string ("avx512f", "avx2,fma")
 *   CN_VT, CN_VTU the vector type of CN_VW floats, aligned and unaligned (4-byte)
 *   CN_FOB, CN_FV the forward register tile: CN_FOB output channels × CN_FV vectors
 *   CN_DOB, CN_DQB the weight-gradient register tile: CN_DOB output channels × CN_DQB
 *                  kernel columns (conv_dw), or × CN_DCB input channels (conv_dwc)
 *   CN_WOV, CN_WCB the wide-layer weight-gradient tile (conv_dwo): CN_WOV vectors of
 *                  output channels × CN_WCB input channels
 *
 * and this file #undefs them all at its end.
 *
 * Layout (one sample, stride 1; see conv_simd.h): the input padded to C planes of
 * Hp × Wp (plane stride P), the output on the "wide" grid m = i·Wp + j of Mr positions
 * per channel (columns j >= Wo and m >= Ho·Wp are scratch), tap (p, q) at offset
 * p·dh·Wp + q·dw. Weights repacked as wt[((c·kh + p)·kw + q)·O + o].
 */

/* y[o0 + o, ms[v] … ms[v] + CN_VW) = Σ_{c,p,q} wt[c,p,q,o0+o] · xp[c, m + off(p,q)]
   for o < ob <= CN_FOB, v < fv <= CN_FV (both compile-time constants after inlining) */
static inline __attribute__((always_inline, target(CN_TARGET))) void
CN_SFX(fwd_tile)(const float *xp, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t kh,
                 ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, const float *wt, ptrdiff_t O,
                 ptrdiff_t o0, const int ob, const int fv, float *yw, ptrdiff_t Mr,
                 const ptrdiff_t *ms)
{
    CN_VT acc[CN_FOB][CN_FV];
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int v = 0; v < fv; v++)
            acc[o][v] = (CN_VT){0};
    for (ptrdiff_t c = 0; c < C; c++) {
        for (ptrdiff_t p = 0; p < kh; p++) {
            const float *xr = xp + c * P + p * dh * Wp;
            const float *wr = wt + (c * kh + p) * kw * O + o0;
            for (ptrdiff_t q = 0; q < kw; q++) {
                CN_VT xv[CN_FV];
#pragma GCC unroll 8
                for (int v = 0; v < fv; v++)
                    xv[v] = *(const CN_VTU *)(xr + q * dw + ms[v]);
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
            *(CN_VTU *)(yw + (o0 + o) * Mr + ms[v]) = acc[o][v];
}

static __attribute__((target(CN_TARGET))) void
CN_SFX(conv_fwd)(const float *xp, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t kh,
                 ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, const float *wt, ptrdiff_t O,
                 float *yw, ptrdiff_t Mr, ptrdiff_t row_vecs, ptrdiff_t Ho)
{
    /* The vectors of positions, in increasing order: the whole wide grid (row_vecs = 0:
       Mr / CN_VW vectors at m = k·CN_VW), or row_vecs vectors per output row (Wo =
       row_vecs·CN_VW: no scratch columns computed), taken CN_FV at a time (the last tile
       with the rest). */
    const ptrdiff_t nvec = row_vecs ? Ho * row_vecs : Mr / CN_VW;
    for (ptrdiff_t t = 0; t < nvec; t += CN_FV) {
        const int fv = (int)(nvec - t < CN_FV ? nvec - t : CN_FV);
        ptrdiff_t ms[CN_FV];
        for (int v = 0; v < CN_FV; v++) {
            const ptrdiff_t k = t + (v < fv ? v : 0);
            ms[v] = row_vecs ? (k / row_vecs) * Wp + (k % row_vecs) * CN_VW : k * CN_VW;
        }
        for (ptrdiff_t o0 = 0; o0 < O; o0 += CN_FOB) {
            const int ob = (int)(O - o0 < CN_FOB ? O - o0 : CN_FOB);
#define CN_FWD_CALL(OB, FV) CN_SFX(fwd_tile)(xp, C, P, Wp, kh, kw, dh, dw, wt, O, o0, OB, \
                                             FV, yw, Mr, ms)
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

/* the sum of a vector's lanes by halving (lane k += lane k + w for w = VW/2, …, 1: a
   fixed order), in vector shuffles, so the sums of many accumulators overlap */
static inline __attribute__((always_inline, target(CN_TARGET))) float
CN_SFX(hsum)(CN_VT v)
{
    typedef int it __attribute__((vector_size(sizeof(CN_VT))));
#pragma GCC unroll 8
    for (int w = CN_VW / 2; w >= 1; w /= 2) {
        it mask;
#pragma GCC unroll 16
        for (int k = 0; k < CN_VW; k++)
            mask[k] = (k + w) % CN_VW;
        v = v + __builtin_shuffle(v, mask);
    }
    return v[0];
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
            dwt[((c * kh + p) * kw + q0 + q) * O + o0 + o] += CN_SFX(hsum)(acc[o][q]);
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

/* dwt[c0+c, p, q, o0+o] += Σ_n Σ_{m < Mr} dyw_n[o0+o, m] · xp_n[c0+c, m + off(p, q)]:
   the tile over output × input channels for one tap (wide layers, small kernels) */
static inline __attribute__((always_inline, target(CN_TARGET))) void
CN_SFX(dwc_tile)(const float *xp, ptrdiff_t xs, const float *dyw, ptrdiff_t ds,
                 ptrdiff_t nb, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr, ptrdiff_t kh,
                 ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t O, ptrdiff_t c0,
                 const int cb, ptrdiff_t p, ptrdiff_t q, ptrdiff_t o0, const int ob,
                 float *dwt)
{
    CN_VT acc[CN_DOB][CN_DCB];
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int c = 0; c < cb; c++)
            acc[o][c] = (CN_VT){0};
    for (ptrdiff_t n = 0; n < nb; n++) {
        const float *xr = xp + n * xs + c0 * P + p * dh * Wp + q * dw;
        const float *dr = dyw + n * ds + o0 * Mr;
        for (ptrdiff_t m = 0; m < Mr; m += CN_VW) {
            CN_VT xv[CN_DCB];
#pragma GCC unroll 8
            for (int c = 0; c < cb; c++)
                xv[c] = *(const CN_VTU *)(xr + c * P + m);
#pragma GCC unroll 8
            for (int o = 0; o < ob; o++) {
                const CN_VT d = *(const CN_VTU *)(dr + o * Mr + m);
#pragma GCC unroll 8
                for (int c = 0; c < cb; c++)
                    acc[o][c] += d * xv[c];
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < ob; o++)
#pragma GCC unroll 8
        for (int c = 0; c < cb; c++) {
            dwt[(((c0 + c) * kh + p) * kw + q) * O + o0 + o] += CN_SFX(hsum)(acc[o][c]);
        }
}

static __attribute__((target(CN_TARGET))) void
CN_SFX(conv_dwc)(const float *xp, ptrdiff_t xs, const float *dyw, ptrdiff_t ds,
                 ptrdiff_t nb, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr,
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t O,
                 float *dwt)
{
    for (ptrdiff_t p = 0; p < kh; p++)
        for (ptrdiff_t q = 0; q < kw; q++)
            for (ptrdiff_t o0 = 0; o0 < O; o0 += CN_DOB)
                for (ptrdiff_t c0 = 0; c0 < C; c0 += CN_DCB) {
                    const int ob = (int)(O - o0 < CN_DOB ? O - o0 : CN_DOB);
                    const int cb = (int)(C - c0 < CN_DCB ? C - c0 : CN_DCB);
#define CN_DWC_CALL(OB, CB) CN_SFX(dwc_tile)(xp, xs, dyw, ds, nb, P, Wp, Mr, kh, kw, dh, \
                                             dw, O, c0, CB, p, q, o0, OB, dwt)
#if CN_DCB >= 5
#define CN_DWC_C4(OB) case 4: CN_DWC_CALL(OB, 4); break; case 5: CN_DWC_CALL(OB, 5); break;
#else
#define CN_DWC_C4(OB) case 4: CN_DWC_CALL(OB, 4); break;
#endif
#define CN_DWC_C(OB) switch (cb) {                                                     \
                     case 1: CN_DWC_CALL(OB, 1); break;                                 \
                     case 2: CN_DWC_CALL(OB, 2); break;                                 \
                     case 3: CN_DWC_CALL(OB, 3); break;                                 \
                     CN_DWC_C4(OB)                                                      \
                     default: break; }
                    switch (ob) {
                    case 1: CN_DWC_C(1) break;
                    case 2: CN_DWC_C(2) break;
#if CN_DOB >= 4
                    case 3: CN_DWC_C(3) break;
                    case 4: CN_DWC_C(4) break;
#endif
                    default: break;
                    }
#undef CN_DWC_C
#undef CN_DWC_C4
#undef CN_DWC_CALL
                }
}

/* dwt[c0+c, p, q, o0 … o0 + ov·CN_VW) += Σ_n Σ_{m < Mr} dyt_n[m, o] · xp_n[c0+c, m + off(p, q)]:
   the GEMM-style tile for wide layers — output channels in the vector lanes (dy
   transposed to dyt (Mr × Or), Or = O rounded up to whole vectors, zero padded), input
   channels broadcast, no horizontal sums; the lanes past O are written to scratch. */
static inline __attribute__((always_inline, target(CN_TARGET))) void
CN_SFX(dwo_tile)(const float *xp, ptrdiff_t xs, const float *dyt, ptrdiff_t ds,
                 ptrdiff_t nb, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr, ptrdiff_t Or,
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t c0,
                 const int cb, ptrdiff_t p, ptrdiff_t q, ptrdiff_t o0, const int ov,
                 float *dwt)
{
    CN_VT acc[CN_WOV][CN_WCB];
#pragma GCC unroll 8
    for (int v = 0; v < ov; v++)
#pragma GCC unroll 16
        for (int c = 0; c < cb; c++)
            acc[v][c] = (CN_VT){0};
    for (ptrdiff_t n = 0; n < nb; n++) {
        const float *xr = xp + n * xs + c0 * P + p * dh * Wp + q * dw;
        const float *dr = dyt + n * ds + o0;
        for (ptrdiff_t m = 0; m < Mr; m++) {
            CN_VT d[CN_WOV];
#pragma GCC unroll 8
            for (int v = 0; v < ov; v++)
                d[v] = *(const CN_VTU *)(dr + m * Or + v * CN_VW);
#pragma GCC unroll 16
            for (int c = 0; c < cb; c++) {
                const float xv = xr[c * P + m];
#pragma GCC unroll 8
                for (int v = 0; v < ov; v++)
                    acc[v][c] += d[v] * xv;
            }
        }
    }
#pragma GCC unroll 16
    for (int c = 0; c < cb; c++) {
        float *dst = dwt + (((c0 + c) * kh + p) * kw + q) * Or + o0;
#pragma GCC unroll 8
        for (int v = 0; v < ov; v++)
            *(CN_VTU *)(dst + v * CN_VW) += acc[v][c];
    }
}

static __attribute__((target(CN_TARGET))) void
CN_SFX(conv_dwo)(const float *xp, ptrdiff_t xs, const float *dyt, ptrdiff_t ds,
                 ptrdiff_t nb, ptrdiff_t C, ptrdiff_t P, ptrdiff_t Wp, ptrdiff_t Mr,
                 ptrdiff_t Or, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh, ptrdiff_t dw,
                 float *dwt)
{
    for (ptrdiff_t p = 0; p < kh; p++)
        for (ptrdiff_t q = 0; q < kw; q++)
            for (ptrdiff_t o0 = 0; o0 < Or; o0 += CN_WOV * CN_VW)
                for (ptrdiff_t c0 = 0; c0 < C; c0 += CN_WCB) {
                    const int ov = (int)((Or - o0) / CN_VW < CN_WOV ? (Or - o0) / CN_VW
                                                                   : CN_WOV);
                    const int cb = (int)(C - c0 < CN_WCB ? C - c0 : CN_WCB);
#define CN_DWO(CB, OV) CN_SFX(dwo_tile)(xp, xs, dyt, ds, nb, P, Wp, Mr, Or, kh, kw, dh, dw, \
                                        c0, CB, p, q, o0, OV, dwt)
#if CN_WOV >= 4
#define CN_DWO_V34(CB) case 3: CN_DWO(CB, 3); break; case 4: CN_DWO(CB, 4); break;
#else
#define CN_DWO_V34(CB)
#endif
#define CN_DWO_V(CB) switch (ov) {                                                      \
                     case 1: CN_DWO(CB, 1); break;                                      \
                     case 2: CN_DWO(CB, 2); break;                                      \
                     CN_DWO_V34(CB)                                                     \
                     default: break; }
                    if (cb == CN_WCB) {
                        CN_DWO_V(CN_WCB)
                    } else {
                        CN_DWO_V(cb)
                    }
#undef CN_DWO_V
#undef CN_DWO_V34
#undef CN_DWO
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
#undef CN_DCB
#undef CN_WOV
#undef CN_WCB
