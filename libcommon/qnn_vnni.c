/* qnn_vnni.c — AVX-512 VNNI kernels of qnn.h (`vpdpbusd`: per 32-bit lane,
 * four u8 x s8 products added to an int32).
 *
 * vpdpbusd multiplies unsigned activations by signed weights, but w - w_zero
 * of a uint8 model spans [-255, 255].  Each output channel n therefore
 * stores w'' = w - w_zero - off[n] in int8 (off = 0 when w - w_zero fits,
 * else min + 128: a channel's 256 codes always fit) and adds the offset
 * back as off[n] * sum(x).  When one offset fits the whole layer (always,
 * for per-tensor uint8 weights), off * sum(x) is one number per pixel (GEMM)
 * or comes from a second vpdpbusd with off in the bytes (depthwise), instead
 * of a multiplication per output.  x_zero's share, -x_zero * sum(w - w_zero), is
 * folded into the bias, and padding reads x_zero, so every tap counts alike.
 * The accumulator is then the exact integer of the portable kernel and the
 * epilogue rounds as it does (qnn_requant1, qnn_add1): the same bytes.
 *
 *  - conv (1x1, and any other window through im2col): a GEMM of pixels x K
 *    by K x N with weights packed [N/16][K/4][16][4]; tiles of 6 pixels x 64
 *    channels in 24 accumulators; the pixels' sums of x by vpsadbw.
 *  - depthwise: per output pixel and 64 channels, taps four at a time are
 *    transposed (unpack bytes, then words) so that each 32-bit lane holds one
 *    channel's four taps; the packing back (packs, packus) undoes the
 *    transposition's lane order.
 */
#include "sat/qnn_vnni.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "sat/util.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

#define MR 6           /* pixels per GEMM tile */
#define NB 4           /* 16-channel blocks per GEMM tile */
#define ROWS 96        /* pixels per chunk (im2col rows, sums) */
#define DW_MAX_TAPS 16 /* depthwise windows up to 4x4 */

typedef struct {
    int dw;          /* depthwise */
    int direct;      /* 1x1, stride 1: the input rows are the GEMM's rows */
    int kp;          /* GEMM: K rounded up to 4 */
    int nblk;        /* GEMM: 16-channel blocks; depthwise: 64-channel blocks */
    int groups;      /* depthwise: tap groups of 4 */
    int use_off;     /* some off[n] != 0 */
    int uniform;     /* one off for all channels: off[0] */
    int8_t *w;       /* from the pool, if one was given */
    int pooled;
    int32_t *bias, *off; /* bias with x_zero's share; per channel (depthwise: lane order) */
    float *mult;
    uint8_t *pad;    /* depthwise: in_c bytes of x_zero, read for taps in the padding */
    uint32_t ones[DW_MAX_TAPS / 4]; /* depthwise: 1 (uniform: off) in each byte of a real tap */
} vnni_pack;

/* The least and greatest of the codes w[0..n) (32 at a time: the packing
 * below runs only where the CPU has AVX-512). */
static VNNI void codes_range(const int16_t *w, size_t n, int *lo, int *hi)
{
    __m512i vlo = _mm512_set1_epi16(255), vhi = _mm512_set1_epi16(-255);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i v = _mm512_loadu_si512(w + i);
        vlo = _mm512_min_epi16(vlo, v);
        vhi = _mm512_max_epi16(vhi, v);
    }
    int16_t l[32], h[32];
    _mm512_storeu_si512(l, vlo);
    _mm512_storeu_si512(h, vhi);
    *lo = 255;
    *hi = -255;
    for (int j = 0; j < 32; j++) {
        *lo = l[j] < *lo ? l[j] : *lo;
        *hi = h[j] > *hi ? h[j] : *hi;
    }
    for (; i < n; i++) {
        *lo = w[i] < *lo ? w[i] : *lo;
        *hi = w[i] > *hi ? w[i] : *hi;
    }
}

/* The offset that brings codes in [lo, hi] (a span of 256 at most) into int8. */
static int32_t off_for(int lo, int hi) { return lo >= -128 && hi <= 127 ? 0 : lo + 128; }

/* Offset of channel n's weights w[0..k) (stride apart) so that w - off fits in int8. */
static int32_t channel_off(const int16_t *w, size_t k, size_t stride)
{
    int lo = 255, hi = -255;
    if (stride == 1) codes_range(w, k, &lo, &hi);
    for (size_t i = 0; i < k && stride != 1; i++) {
        int v = w[i * stride];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    return off_for(lo, hi);
}

/* One offset for all count weights, if there is one (their codes span at
 * most 256): 1 and *off, else 0.  A depthwise offset must fit in int8 too. */
static int layer_off(const int16_t *w, size_t count, int depthwise, int32_t *off)
{
    int lo, hi;
    codes_range(w, count, &lo, &hi);
    if (hi - lo > 255) return 0;
    *off = off_for(lo, hi);
    return !depthwise || (*off >= -128 && *off <= 127);
}

/* The depthwise lane order: position 16*q + L of block b is channel
 * 64b + 16*(L/4) + 4*q + L%4. */
static int dw_channel(int b, int pos) { return 64 * b + 16 * (pos % 16 / 4) + 4 * (pos / 16) + pos % 4; }

/* n zeroed bytes for the packed weights. */
static int8_t *pack_bytes(vnni_pack *p, sat_pool *pool, size_t n)
{
    p->pooled = pool != NULL;
    return pool ? sat_pool_zalloc(pool, n) : sat_xcalloc(n, 1);
}

static VNNI void pack_gemm(vnni_pack *p, const qnn_conv *cv, sat_pool *pool)
{
    const nn_conv_geom *g = &cv->g;
    size_t k = (size_t)g->k_h * g->k_w * g->in_c;
    p->direct = g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->in_c % 4 == 0;
    p->kp = (int)((k + 3) / 4 * 4);
    p->nblk = (g->out_c + 15) / 16;
    size_t n16 = (size_t)p->nblk * 16;
    p->w = pack_bytes(p, pool, n16 * (size_t)p->kp);
    p->bias = sat_xcalloc(n16, sizeof *p->bias);
    p->off = sat_xcalloc(n16, sizeof *p->off);
    p->mult = sat_xcalloc(n16, sizeof *p->mult);
    int32_t common = 0;
    p->uniform = layer_off(cv->w, (size_t)g->out_c * k, 0, &common);
    for (int n = 0; n < g->out_c; n++) {
        const int16_t *wn = cv->w + (size_t)n * k;
        int32_t off = p->uniform ? common : channel_off(wn, k, 1), sum = 0;
        /* [N/16][K/4][16][4]: channel n's K bytes, 4 at a time, 64 apart */
        int8_t *dst = p->w + (size_t)(n / 16) * (size_t)p->kp * 16 + (size_t)(n % 16) * 4;
        for (size_t i = 0; i < k; i += 4) {
            int8_t four[4] = {0, 0, 0, 0}; /* K's padding to a multiple of 4: zeros */
            for (size_t j = 0; j < 4 && i + j < k; j++) {
                four[j] = (int8_t)(wn[i + j] - off);
                sum += wn[i + j];
            }
            memcpy(dst + i * 16, four, 4);
        }
        p->bias[n] = cv->bias[n] - cv->x_zero * sum;
        p->off[n] = off;
        p->mult[n] = cv->mult[n];
        p->use_off |= off != 0;
    }
}

static VNNI void pack_depthwise(vnni_pack *p, const qnn_conv *cv, sat_pool *pool)
{
    const nn_conv_geom *g = &cv->g;
    int taps = g->k_h * g->k_w, c = g->out_c;
    p->dw = 1;
    p->nblk = (c + 63) / 64;
    p->groups = (taps + 3) / 4;
    size_t lanes = (size_t)p->nblk * 64;
    p->w = pack_bytes(p, pool, lanes * (size_t)p->groups * 4);
    p->bias = sat_xcalloc(lanes, sizeof *p->bias);
    p->off = sat_xcalloc(lanes, sizeof *p->off);
    p->mult = sat_xcalloc(lanes, sizeof *p->mult);
    p->pad = sat_xmalloc((size_t)g->in_c);
    memset(p->pad, cv->x_zero, (size_t)g->in_c);
    int32_t common = 0;
    p->uniform = layer_off(cv->w, (size_t)taps * c, 1, &common);
    /* The bytes summed with x: 1 (then times off[lane]), or off itself. */
    uint32_t byte = p->uniform ? (uint8_t)(int8_t)common : 1;
    for (int t = 0; t < p->groups * 4; t++)
        if (t < taps) p->ones[t / 4] |= byte << (8 * (t % 4));
    for (int b = 0; b < p->nblk; b++)
        for (int pos = 0; pos < 64; pos++) {
            int ch = dw_channel(b, pos);
            if (ch >= c) continue;
            size_t lane = (size_t)b * 64 + pos;
            int32_t off = p->uniform ? common : channel_off(cv->w + ch, (size_t)taps, (size_t)c), sum = 0;
            for (int t = 0; t < taps; t++) {
                int v = cv->w[(size_t)t * c + ch];
                /* [block][group][q][16 lanes][4 taps] */
                size_t at = (((size_t)b * p->groups + t / 4) * 4 + pos / 16) * 64 + (size_t)(pos % 16) * 4 + t % 4;
                p->w[at] = (int8_t)(v - off);
                sum += v;
            }
            p->bias[lane] = cv->bias[ch] - cv->x_zero * sum;
            p->off[lane] = off;
            p->mult[lane] = cv->mult[ch];
            p->use_off |= off != 0;
        }
}

void *qnn_vnni_pack(const qnn_conv *cv, sat_pool *pool)
{
    const nn_conv_geom *g = &cv->g;
    if (cv->depthwise && (cv->depthwise != 1 || g->k_h * g->k_w > DW_MAX_TAPS))
        return NULL;
    vnni_pack *p = sat_xcalloc(1, sizeof *p);
    if (cv->depthwise) pack_depthwise(p, cv, pool);
    else pack_gemm(p, cv, pool);
    return p;
}

void qnn_vnni_free(void *simd)
{
    vnni_pack *p = simd;
    if (!p) return;
    if (!p->pooled) free(p->w);
    free(p->bias);
    free(p->off);
    free(p->mult);
    free(p->pad);
    free(p);
}

size_t qnn_vnni_scratch_bytes(const qnn_conv *cv)
{
    const vnni_pack *p = cv->simd;
    if (p->dw) return 0;
    return (size_t)ROWS * (p->direct ? 0 : (size_t)p->kp) + ROWS * sizeof(int32_t);
}

/* ---- epilogue ---- */

/* zero + round(f), clamped to [lo, hi] (the tail of qnn_requant1 and
 * qnn_add1 on 16 lanes). */
static inline VNNI __m512i round16(__m512 f, int zero, int lo, int hi)
{
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-QNN_BIG)), _mm512_set1_ps(QNN_BIG));
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(zero));
    return _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(lo)), _mm512_set1_epi32(hi));
}

/* qnn_requant1 on 16 lanes. */
static inline VNNI __m512i requant16(__m512i v, __m512 mult, int zero, int lo, int hi)
{
    return round16(_mm512_mul_ps(_mm512_cvtepi32_ps(v), mult), zero, lo, hi);
}

/* qnn_add1 on 16 lanes: a and b are codes. */
static inline VNNI __m512i add16(const qnn_conv *cv, __m512i a, __m512i b)
{
    __m512 fa = _mm512_mul_ps(_mm512_set1_ps(cv->fa), _mm512_cvtepi32_ps(_mm512_sub_epi32(a, _mm512_set1_epi32(cv->mid_zero))));
    __m512 fb = _mm512_mul_ps(_mm512_set1_ps(cv->fb), _mm512_cvtepi32_ps(_mm512_sub_epi32(b, _mm512_set1_epi32(cv->res_zero))));
    return round16(_mm512_add_ps(fa, fb), cv->out_zero, cv->lo, cv->hi);
}

/* The GEMM's 16 outputs at o (mask m) from acc: bias, offset, requantization,
 * the fused ADD of what o holds, stored as bytes. */
static inline VNNI void store16(const qnn_conv *cv, const vnni_pack *p, __m512i acc, int32_t sum, int n0,
                                __mmask16 m, uint8_t *o)
{
    acc = _mm512_add_epi32(acc, _mm512_loadu_si512(p->bias + n0));
    if (p->uniform) /* sum is off * sum(x) already */
        acc = _mm512_add_epi32(acc, _mm512_set1_epi32(sum));
    else if (p->use_off)
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_loadu_si512(p->off + n0), _mm512_set1_epi32(sum)));
    __m512i c = requant16(acc, _mm512_loadu_ps(p->mult + n0), cv->mid_zero, cv->mid_lo, cv->mid_hi);
    if (cv->residual) c = add16(cv, c, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, o)));
    _mm_mask_storeu_epi8(o, m, _mm512_cvtepi32_epi8(c));
}

/* qnn_quantize on 16 values at a time: x * inv rounded to nearest even
 * (cvtps2dq, as lrintf), zero added, saturated to [0, 255]. */
VNNI void qnn_vnni_quantize(const float *x, size_t n, float inv, int zero, uint8_t *out)
{
    __m512 f = _mm512_set1_ps(inv);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512i q = round16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), f), zero, 0, 255);
        _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(q));
    }
}

/* ---- GEMM ---- */

/* *acc += u8 x . s8 w (vpdpbusd) in place: GCC 12 compiles the intrinsic
 * into the tile with two register copies around each one, which took
 * most of the tile's issue slots (Zen 5: 0.7 of 2 vpdpbusd a cycle). */
static inline __attribute__((always_inline)) VNNI void dpbusd(__m512i *acc, __m512i x, __m512i w)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(x), "v"(w));
}

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The outputs of GEMM rows a[i] (i < mr) and 16-channel weight blocks
 * b[j] (j < nb), K = kp, stored by store16 into rows out[i] from channel
 * n0: the accumulators never leave the registers (mr and nb are constants
 * at every call, so the loops unroll). */
static inline __attribute__((always_inline)) VNNI void tile(const qnn_conv *cv, const vnni_pack *p,
                                                            const uint8_t *a, size_t lda, const int8_t *b,
                                                            size_t bstride, int mr, int nb,
                                                            const int32_t *sum, int n0, uint8_t *out)
{
    __m512i acc[MR][NB];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_si512();
    for (int k = 0; k < p->kp; k += 4) {
        __m512i bv[NB];
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++)
            if (j < nb) bv[j] = _mm512_loadu_si512(b + j * bstride + (size_t)k * 16);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            if (i >= mr) continue;
            __m512i av = _mm512_set1_epi32((int)load32(a + i * lda + k));
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++)
                if (j < nb) dpbusd(&acc[i][j], av, bv[j]);
        }
    }
    int nout = cv->g.out_c;
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++) {
            if (i >= mr || j >= nb) continue;
            int n = n0 + j * 16, left = nout - n < 16 ? nout - n : 16;
            store16(cv, p, acc[i][j], p->use_off ? sum[i] : 0, n, (__mmask16)((1u << left) - 1),
                    out + (size_t)i * nout + n);
        }
}

#define TILE_CASE(R, N) \
    case (R) * 8 + (N): tile(cv, p, a, lda, b, bstride, R, N, sum, n0, out); break;
#define TILE_ROW(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)

static VNNI void tile_any(const qnn_conv *cv, const vnni_pack *p, const uint8_t *a, size_t lda,
                          const int8_t *b, size_t bstride, int mr, int nb, const int32_t *sum, int n0,
                          uint8_t *out)
{
    switch (mr * 8 + nb) {
        TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)
    default: __builtin_unreachable(); /* 1 <= mr <= MR, 1 <= nb <= NB */
    }
}

/* Sum of each row's kp bytes (vpsadbw against zero). */
static VNNI void row_sums(const uint8_t *a, size_t lda, int rows, int kp, int32_t *sum)
{
    for (int r = 0; r < rows; r++) {
        __m512i s = _mm512_setzero_si512();
        for (int k = 0; k < kp; k += 64) {
            __mmask64 m = kp - k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (kp - k)) - 1;
            s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + r * lda + k),
                                                    _mm512_setzero_si512()));
        }
        sum[r] = (int32_t)_mm512_reduce_add_epi64(s);
    }
}

/* Rows [p0, p0 + rows) of the GEMM: a holds them (lda bytes apart). */
static VNNI void gemm_rows(const qnn_conv *cv, const vnni_pack *p, const uint8_t *a, size_t lda, int p0,
                           int rows, int32_t *sum, uint8_t *out)
{
    int nout = cv->g.out_c;
    size_t bstride = (size_t)p->kp * 16;
    if (p->use_off) row_sums(a, lda, rows, p->kp, sum);
    for (int r = 0; r < rows && p->use_off && p->uniform; r++) sum[r] *= p->off[0];
    for (int jb = 0; jb < p->nblk; jb += NB) {
        int nb = p->nblk - jb < NB ? p->nblk - jb : NB;
        for (int i0 = 0; i0 < rows; i0 += MR) {
            int mr = rows - i0 < MR ? rows - i0 : MR;
            tile_any(cv, p, a + (size_t)i0 * lda, lda, p->w + (size_t)jb * bstride, bstride, mr, nb,
                     sum + i0, jb * 16, out + (size_t)(p0 + i0) * nout);
        }
    }
}

/* im2col rows of output pixels [p0, p0 + rows): taps in the padding read x_zero. */
static void im2col(const qnn_conv *cv, const uint8_t *in, int p0, int rows, int kp, uint8_t *dst)
{
    const nn_conv_geom *g = &cv->g;
    size_t c = (size_t)g->in_c;
    for (int r = 0; r < rows; r++) {
        int oy = (p0 + r) / g->out_w, ox = (p0 + r) % g->out_w;
        uint8_t *d = dst + (size_t)r * kp;
        for (int ky = 0; ky < g->k_h; ky++)
            for (int kx = 0; kx < g->k_w; kx++, d += c) {
                long pix = qnn_tap(g, oy, ox, ky, kx);
                if (pix < 0) memset(d, cv->x_zero, c);
                else memcpy(d, in + (size_t)pix * c, c);
            }
        memset(d, 0, (size_t)(dst + (size_t)(r + 1) * kp - d));
    }
}

static void gemm_forward(const qnn_conv *cv, const vnni_pack *p, const uint8_t *in, uint8_t *out,
                         uint8_t *scratch)
{
    int npix = cv->g.out_h * cv->g.out_w;
    int32_t *sum = (int32_t *)scratch;
    uint8_t *cols = scratch + ROWS * sizeof(int32_t);
    for (int p0 = 0; p0 < npix; p0 += ROWS) {
        int rows = npix - p0 < ROWS ? npix - p0 : ROWS;
        if (p->direct) {
            gemm_rows(cv, p, in + (size_t)p0 * p->kp, (size_t)p->kp, p0, rows, sum, out);
        } else {
            im2col(cv, in, p0, rows, p->kp, cols);
            gemm_rows(cv, p, cols, (size_t)p->kp, p0, rows, sum, out);
        }
    }
}

/* ---- depthwise ---- */

/* The 64 channels of block b at one output pixel, from its tap pointers. */
static VNNI void dw_block(const qnn_conv *cv, const vnni_pack *p, const uint8_t *const *tap, int b,
                          __mmask64 m, uint8_t *o)
{
    __m512i acc[4], s[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) acc[q] = s[q] = _mm512_setzero_si512();
    int taps = cv->g.k_h * cv->g.k_w;
    size_t c0 = (size_t)b * 64;
    const int8_t *w = p->w + (size_t)b * p->groups * 256;
    for (int gi = 0; gi < p->groups; gi++, w += 256) {
        __m512i x[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            int k = 4 * gi + t;
            x[t] = k < taps ? _mm512_maskz_loadu_epi8(m, tap[k] + c0) : _mm512_setzero_si512();
        }
        __m512i ab_lo = _mm512_unpacklo_epi8(x[0], x[1]), ab_hi = _mm512_unpackhi_epi8(x[0], x[1]);
        __m512i cd_lo = _mm512_unpacklo_epi8(x[2], x[3]), cd_hi = _mm512_unpackhi_epi8(x[2], x[3]);
        __m512i r[4] = {_mm512_unpacklo_epi16(ab_lo, cd_lo), _mm512_unpackhi_epi16(ab_lo, cd_lo),
                        _mm512_unpacklo_epi16(ab_hi, cd_hi), _mm512_unpackhi_epi16(ab_hi, cd_hi)};
        __m512i ones = _mm512_set1_epi32((int)p->ones[gi]);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            dpbusd(&acc[q], r[q], _mm512_loadu_si512(w + q * 64));
            if (p->use_off) dpbusd(&s[q], r[q], ones);
        }
    }
    __m512i v[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        size_t lane = c0 + (size_t)q * 16;
        __m512i a = _mm512_add_epi32(acc[q], _mm512_loadu_si512(p->bias + lane));
        if (p->uniform) a = _mm512_add_epi32(a, s[q]); /* off * sum(x) already */
        else if (p->use_off) a = _mm512_add_epi32(a, _mm512_mullo_epi32(s[q], _mm512_loadu_si512(p->off + lane)));
        v[q] = requant16(a, _mm512_loadu_ps(p->mult + lane), cv->out_zero, cv->lo, cv->hi);
    }
    __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
    _mm512_mask_storeu_epi8(o + c0, m, bytes);
}

static VNNI void dw_forward(const qnn_conv *cv, const vnni_pack *p, const uint8_t *in, uint8_t *out)
{
    const nn_conv_geom *g = &cv->g;
    int c = g->out_c;
    const uint8_t *tap[DW_MAX_TAPS];
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++) {
            for (int ky = 0; ky < g->k_h; ky++)
                for (int kx = 0; kx < g->k_w; kx++) {
                    long pix = qnn_tap(g, oy, ox, ky, kx);
                    tap[ky * g->k_w + kx] = pix < 0 ? p->pad : in + (size_t)pix * c;
                }
            uint8_t *o = out + ((size_t)oy * g->out_w + ox) * c;
            for (int b = 0; b < p->nblk; b++) {
                int left = c - 64 * b;
                __mmask64 m = left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
                dw_block(cv, p, tap, b, m, o);
            }
        }
}

void qnn_vnni_conv_forward(const qnn_conv *cv, const uint8_t *in, uint8_t *out, void *scratch)
{
    const vnni_pack *p = cv->simd;
    if (p->dw) dw_forward(cv, p, in, out);
    else gemm_forward(cv, p, in, out, scratch);
}
