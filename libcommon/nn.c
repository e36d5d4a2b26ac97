/* nn.c — see nn.h.  NHWC float32 kernels for one image.
 *
 * The 1x1 convolutions (almost all of MobileNetV2's multiply-adds) are GEMMs:
 * OpenBLAS for the wide ones, whose output starts as the bias (beta = 1) and
 * gets the activation in one pass after; a direct kernel on repacked weights
 * for those with few input channels (and the 3-channel stem), where OpenBLAS
 * spends its time packing.  The depthwise convolution is memory-bound and has
 * its own kernel.  The AVX2/FMA kernels are compiled with a target attribute
 * and chosen at run time (no -mavx2 needed), with portable C paths for other
 * CPUs and for channel counts that are not a multiple of 8.
 */
#include "sat/nn.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/nn_simd.h"
#include "sat/util.h"

#define AVX2 __attribute__((target("avx2,fma")))

/* Output pixels per im2col chunk: the chunk's patches (about 64 KiB) stay in
 * L2; at least 64 rows keep the GEMM efficient. */
#define IM2COL_CHUNK_FLOATS 16384
#define IM2COL_MIN_ROWS 64

/* What kernels read in place of taps in the padding (channels up to this). */
#define ZEROS_FLOATS 4096
static const float zeros[ZEROS_FLOATS];

int nn_out_size(int in, int k, int stride, int dilation, sat_padding pad)
{
    if (pad == SAT_PAD_SAME) return (in + stride - 1) / stride;
    int span = (k - 1) * dilation + 1;
    return in < span ? 0 : (in - span) / stride + 1;
}

int nn_pad_before(int in, int k, int stride, int dilation, sat_padding pad)
{
    if (pad != SAT_PAD_SAME) return 0;
    int out = nn_out_size(in, k, stride, dilation, pad);
    int total = (out - 1) * stride + (k - 1) * dilation + 1 - in;
    return total > 0 ? total / 2 : 0;
}

int nn_conv_geom_init(nn_conv_geom *g, int in_h, int in_w, int in_c, int out_c,
                      int k_h, int k_w, int stride_h, int stride_w,
                      int dil_h, int dil_w, sat_padding pad)
{
    memset(g, 0, sizeof *g);
    if (in_h < 1 || in_w < 1 || in_c < 1 || out_c < 1 || k_h < 1 || k_w < 1 ||
        stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1)
        return -1;
    *g = (nn_conv_geom){
        .in_h = in_h, .in_w = in_w, .in_c = in_c, .out_c = out_c,
        .out_h = nn_out_size(in_h, k_h, stride_h, dil_h, pad),
        .out_w = nn_out_size(in_w, k_w, stride_w, dil_w, pad),
        .k_h = k_h, .k_w = k_w, .stride_h = stride_h, .stride_w = stride_w,
        .dil_h = dil_h, .dil_w = dil_w,
        .pad_top = nn_pad_before(in_h, k_h, stride_h, dil_h, pad),
        .pad_left = nn_pad_before(in_w, k_w, stride_w, dil_w, pad),
    };
    return g->out_h > 0 && g->out_w > 0 ? 0 : -1;
}

/* ---- activation and the GEMM epilogue ---- */

static inline float activate1(float v, sat_activation act)
{
    if (act == SAT_ACT_NONE) return v;
    v = v < 0 ? 0 : v;
    return act == SAT_ACT_RELU6 && v > 6 ? 6 : v;
}

void nn_activate(float *x, size_t n, sat_activation act)
{
    if (act == SAT_ACT_NONE) return;
    for (size_t i = 0; i < n; i++) x[i] = activate1(x[i], act);
}

AVX2 static inline __m256 activate8(__m256 v, sat_activation act)
{
    if (act == SAT_ACT_NONE) return v;
    v = _mm256_max_ps(v, _mm256_setzero_ps());
    return act == SAT_ACT_RELU6 ? _mm256_min_ps(v, _mm256_set1_ps(6.0f)) : v;
}

static void bias_act_c(float *x, size_t rows, int n, const float *bias, sat_activation act)
{
    for (size_t r = 0; r < rows; r++, x += n)
        for (int i = 0; i < n; i++) x[i] = activate1(x[i] + (bias ? bias[i] : 0.0f), act);
}

AVX2 static void bias_act_avx2(float *x, size_t rows, int n, const float *bias,
                               sat_activation act)
{
    int n8 = n & ~7;
    for (size_t r = 0; r < rows; r++, x += n) {
        for (int i = 0; i < n8; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
            _mm256_storeu_ps(x + i, activate8(v, act));
        }
        for (int i = n8; i < n; i++) x[i] = activate1(x[i] + (bias ? bias[i] : 0.0f), act);
    }
}

/* x [rows][n] += bias [n], then the activation. */
static void bias_act(float *x, size_t rows, int n, const float *bias, sat_activation act)
{
    if (!bias && act == SAT_ACT_NONE) return;
    if (nn_simd_avx2())
        bias_act_avx2(x, rows, n, bias, act);
    else
        bias_act_c(x, rows, n, bias, act);
}

/* c [m][n] = a [m][k] (rows lda apart) x w [n][k]^T + bias, then the
 * activation.  accumulate: c holds a tensor to add.  Otherwise c is first
 * filled with the bias and the GEMM adds to it (beta = 1): OpenBLAS would
 * clear c for beta = 0 anyway, so the bias costs no extra pass. */
static void gemm_bias_act(int m, int n, int k, const float *a, int lda, const float *w,
                          const float *bias, sat_activation act, float *c, int accumulate)
{
    if (!accumulate) {
        if (bias)
            for (int r = 0; r < m; r++) memcpy(c + (size_t)r * n, bias, (size_t)n * sizeof *c);
        else
            memset(c, 0, (size_t)m * n * sizeof *c);
    }
    if (m == 1) /* a matrix-vector product: sgemm would pack all of w first */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, a, 1, 1.0f, c, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, w, k, 1.0f,
                    c, n);
    bias_act(c, (size_t)m, n, accumulate ? bias : NULL, act);
}

/* ---- 1x1 convolution ---- */

void nn_pointwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out, int accumulate)
{
    int k = g->in_c, n = g->out_c;
    if (g->stride_h == 1 && g->stride_w == 1) { /* input and output pixels coincide */
        gemm_bias_act(g->out_h * g->out_w, n, k, in, k, w, bias, act, out, accumulate);
        return;
    }
    /* Strided: output row y reads every stride_w-th pixel of input row
     * y*stride_h, i.e. a GEMM whose A rows are stride_w*in_c floats apart. */
    for (int y = 0; y < g->out_h; y++)
        gemm_bias_act(g->out_w, n, k, in + (size_t)y * g->stride_h * g->in_w * k,
                      g->stride_w * k, w, bias, act, out + (size_t)y * g->out_w * n, accumulate);
}

/* ---- general convolution: im2col + GEMM ---- */

/* Output pixels per im2col chunk. */
static size_t im2col_chunk(const nn_conv_geom *g)
{
    size_t patch = (size_t)g->k_h * g->k_w * g->in_c;
    size_t pixels = (size_t)g->out_h * g->out_w;
    size_t chunk = IM2COL_CHUNK_FLOATS / patch;
    if (chunk < IM2COL_MIN_ROWS) chunk = IM2COL_MIN_ROWS;
    return chunk < pixels ? chunk : pixels;
}

size_t nn_conv2d_scratch_floats(const nn_conv_geom *g)
{
    return im2col_chunk(g) * g->k_h * g->k_w * g->in_c;
}

/* col [k_h][k_w][in_c]: the input patch under output pixel (y, x), zeros outside. */
static void im2col_pixel(const nn_conv_geom *g, const float *in, int y, int x, float *col)
{
    size_t c = (size_t)g->in_c;
    for (int ky = 0; ky < g->k_h; ky++) {
        int iy = y * g->stride_h - g->pad_top + ky * g->dil_h;
        for (int kx = 0; kx < g->k_w; kx++, col += c) {
            int ix = x * g->stride_w - g->pad_left + kx * g->dil_w;
            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                memset(col, 0, c * sizeof *col);
            else
                memcpy(col, in + ((size_t)iy * g->in_w + ix) * c, c * sizeof *col);
        }
    }
}

void nn_conv2d_forward(const nn_conv_geom *g, const float *in, const float *w,
                       const float *bias, sat_activation act, float *out, float *scratch)
{
    int patch = g->k_h * g->k_w * g->in_c;
    size_t pixels = (size_t)g->out_h * g->out_w, chunk = im2col_chunk(g);
    for (size_t p0 = 0; p0 < pixels; p0 += chunk) {
        size_t m = pixels - p0 < chunk ? pixels - p0 : chunk;
        for (size_t p = 0; p < m; p++)
            im2col_pixel(g, in, (int)((p0 + p) / g->out_w), (int)((p0 + p) % g->out_w),
                         scratch + p * patch);
        gemm_bias_act((int)m, g->out_c, patch, scratch, patch, w, bias, act,
                      out + p0 * g->out_c, 0);
    }
}

/* ---- direct convolution on packed weights ---- */

/* For convolutions with a small patch (the 3-channel stem, 1x1 convs with
 * few input channels) OpenBLAS spends more time packing and on short inner
 * loops than computing.  This kernel reads the input in place: a tile of
 * DIRECT_MR output pixels x DIRECT_NR output channels is accumulated in
 * registers over the taps and input channels, from weights repacked once as
 * [out_c / NR][tap][in_c][NR] (zero-padded to NR), bias and activation
 * applied before the single store.  Taps in the padding read zeros. */
#define DIRECT_MR 4
#define DIRECT_NR 16
#define DIRECT_MAX_TAPS 25
#define DIRECT_MAX_IN_C 64 /* for windows wider than 1x1 */
/* NN_KERNEL_AUTO takes it for 1x1 convs with at most this many input
 * channels: measured 1.2-1.9x faster than OpenBLAS there on a Zen 3 core,
 * within noise of it above (MobileNetV2's next width is 96). */
#define DIRECT_MAX_GEMM_K 64

/* 1x1 convs never read padding; wider windows read `zeros` there. */
static int direct_fits(const nn_conv_geom *g)
{
    int pointwise = g->k_h == 1 && g->k_w == 1;
    return pointwise || (g->k_h * g->k_w <= DIRECT_MAX_TAPS && g->in_c <= DIRECT_MAX_IN_C);
}

static int direct_blocks(const nn_conv_geom *g) { return (g->out_c + DIRECT_NR - 1) / DIRECT_NR; }

/* w [out_c][k_h][k_w][in_c], bias [out_c] -> weights [blocks][tap][in_c][NR],
 * then the bias [blocks][NR]. */
static float *direct_pack(const nn_conv_geom *g, const float *w, const float *bias)
{
    size_t taps = (size_t)g->k_h * g->k_w, k = (size_t)g->in_c;
    size_t nb = (size_t)direct_blocks(g), block = taps * k * DIRECT_NR;
    float *packed = sat_xcalloc(nb * (block + DIRECT_NR), sizeof *packed);
    float *packed_bias = packed + nb * block;
    for (size_t n = 0; n < (size_t)g->out_c; n++) {
        float *dst = packed + n / DIRECT_NR * block + n % DIRECT_NR;
        for (size_t j = 0; j < taps * k; j++) dst[j * DIRECT_NR] = w[n * taps * k + j];
        packed_bias[n] = bias ? bias[n] : 0.0f;
    }
    return packed;
}

/* Tap pointers of output pixel (y, x): taps[t] is the input pixel under tap
 * t, or `zeros` for a tap in the padding. */
static void direct_taps(const nn_conv_geom *g, const float *in, int y, int x, const float **taps)
{
    if (g->k_h == 1 && g->k_w == 1) { /* never in the padding */
        taps[0] = in + ((size_t)y * g->stride_h * g->in_w + (size_t)x * g->stride_w) * g->in_c;
        return;
    }
    for (int ky = 0; ky < g->k_h; ky++) {
        int iy = y * g->stride_h - g->pad_top + ky * g->dil_h;
        for (int kx = 0; kx < g->k_w; kx++) {
            int ix = x * g->stride_w - g->pad_left + kx * g->dil_w;
            int inside = iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w;
            *taps++ = inside ? in + ((size_t)iy * g->in_w + ix) * g->in_c : zeros;
        }
    }
}

/* The portable tile: rows r < mr of out[r][0..nv) (+)= sum_t,i taps[r][t][i] * wb[t][i][n]. */
static void direct_tile_c(const float *(*taps)[DIRECT_MAX_TAPS], int mr, int ntaps,
                          int k, const float *wb, const float *bias, int nv,
                          sat_activation act, float *const *out, int accumulate)
{
    for (int r = 0; r < mr; r++)
        for (int n = 0; n < nv; n++) {
            float acc = bias[n] + (accumulate ? out[r][n] : 0.0f);
            for (int t = 0; t < ntaps; t++)
                for (int i = 0; i < k; i++)
                    acc += taps[r][t][i] * wb[((size_t)t * k + i) * DIRECT_NR + n];
            out[r][n] = activate1(acc, act);
        }
}

/* o[0..8) = act(v (+ o)), or only the first nv < 8 lanes of it (masked
 * stores are slow on some CPUs: only for a last partial block). */
AVX2 static inline void direct_store8(float *o, __m256 v, int nv, sat_activation act,
                                      int accumulate)
{
    if (nv >= 8) {
        if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(o));
        _mm256_storeu_ps(o, activate8(v, act));
    } else if (nv > 0) {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(o, lanes));
        _mm256_maskstore_ps(o, lanes, activate8(v, act));
    }
}

/* The AVX2 tile, the same contract: mr x halves accumulators of 8 lanes
 * (halves = 1 when the block has at most 8 valid channels).  mr and halves
 * are constants at each call, so the loops unroll onto registers. */
AVX2 static inline __attribute__((always_inline)) void direct_tile_avx2(
    const float *(*taps)[DIRECT_MAX_TAPS], int mr, int halves, int ntaps, int k,
    const float *wb, const float *bias, int nv, sat_activation act, float *const *out,
    int accumulate)
{
    __m256 acc[DIRECT_MR][2];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm256_loadu_ps(bias);
        acc[r][1] = _mm256_loadu_ps(bias + 8);
    }
    for (int t = 0; t < ntaps; t++)
        for (int i = 0; i < k; i++, wb += DIRECT_NR) {
            __m256 w0 = _mm256_loadu_ps(wb), w1 = _mm256_loadu_ps(wb + 8);
#pragma GCC unroll 4
            for (int r = 0; r < mr; r++) {
                __m256 x = _mm256_broadcast_ss(taps[r][t] + i);
                acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
                if (halves == 2) acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
            }
        }
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
        direct_store8(out[r], acc[r][0], nv, act, accumulate);
        if (halves == 2) direct_store8(out[r] + 8, acc[r][1], nv - 8, act, accumulate);
    }
}

/* Channel block b of the packed weights: its weights, bias, valid channels. */
static int direct_block(const nn_conv_geom *g, const float *packed, int b, const float **wb,
                        const float **bias)
{
    size_t block = (size_t)g->k_h * g->k_w * g->in_c * DIRECT_NR;
    *wb = packed + b * block;
    *bias = packed + direct_blocks(g) * block + b * DIRECT_NR;
    return g->out_c - b * DIRECT_NR < DIRECT_NR ? g->out_c - b * DIRECT_NR : DIRECT_NR;
}

/* Output channel blocks [b0, b1) of `mr` output pixels (DIRECT_MR or 1). */
AVX2 static void direct_pixels_avx2(const nn_conv_geom *g, const float *packed, int b0, int b1,
                                    const float *(*taps)[DIRECT_MAX_TAPS], int mr,
                                    sat_activation act, float *const *out, int accumulate)
{
    int ntaps = g->k_h * g->k_w, k = g->in_c;
    for (int b = b0; b < b1; b++) {
        const float *wb, *bias;
        int nv = direct_block(g, packed, b, &wb, &bias);
        float *o[DIRECT_MR];
        for (int r = 0; r < mr; r++) o[r] = out[r] + b * DIRECT_NR;
        if (mr == DIRECT_MR && nv > 8)
            direct_tile_avx2(taps, DIRECT_MR, 2, ntaps, k, wb, bias, nv, act, o, accumulate);
        else if (mr == DIRECT_MR)
            direct_tile_avx2(taps, DIRECT_MR, 1, ntaps, k, wb, bias, nv, act, o, accumulate);
        else
            direct_tile_avx2(taps, 1, 2, ntaps, k, wb, bias, nv, act, o, accumulate);
    }
}

static void direct_pixels_c(const nn_conv_geom *g, const float *packed, int b0, int b1,
                            const float *(*taps)[DIRECT_MAX_TAPS], int mr, sat_activation act,
                            float *const *out, int accumulate)
{
    for (int b = b0; b < b1; b++) {
        const float *wb, *bias;
        int nv = direct_block(g, packed, b, &wb, &bias);
        float *o[DIRECT_MR];
        for (int r = 0; r < mr; r++) o[r] = out[r] + b * DIRECT_NR;
        direct_tile_c(taps, mr, g->k_h * g->k_w, g->in_c, wb, bias, nv, act, o, accumulate);
    }
}

/* Output pixels [p0, p1), channel blocks [b0, b1): DIRECT_MR pixels at a
 * time (along rows, wrapping), the last few one by one. */
static void direct_sweep(const nn_conv_geom *g, const float *in, const float *packed, int b0,
                         int b1, size_t p0, size_t p1, sat_activation act, float *out,
                         int accumulate)
{
    int simd = nn_simd_avx2();
    int y = (int)(p0 / g->out_w), x = (int)(p0 % g->out_w);
    for (size_t p = p0; p < p1;) {
        int mr = p1 - p >= DIRECT_MR ? DIRECT_MR : 1;
        const float *taps[DIRECT_MR][DIRECT_MAX_TAPS];
        float *o[DIRECT_MR];
        for (int r = 0; r < mr; r++, p++) {
            direct_taps(g, in, y, x, taps[r]);
            o[r] = out + p * g->out_c;
            if (++x == g->out_w) {
                x = 0;
                y++;
            }
        }
        if (simd)
            direct_pixels_avx2(g, packed, b0, b1, taps, mr, act, o, accumulate);
        else
            direct_pixels_c(g, packed, b0, b1, taps, mr, act, o, accumulate);
    }
}

/* Cache blocking: a chunk of pixels whose input stays in L2 is swept once
 * per group of channel blocks whose weights stay in L2. */
#define DIRECT_CHUNK_FLOATS 32768
#define DIRECT_WEIGHT_FLOATS 32768

static void direct_forward(const nn_conv_geom *g, const float *in, const float *packed,
                           sat_activation act, float *out, int accumulate)
{
    size_t patch = (size_t)g->k_h * g->k_w * g->in_c, block = patch * DIRECT_NR;
    size_t pixels = (size_t)g->out_h * g->out_w;
    size_t chunk = DIRECT_CHUNK_FLOATS / patch / DIRECT_MR * DIRECT_MR;
    int nb = direct_blocks(g), group = (int)(DIRECT_WEIGHT_FLOATS / block);
    if (chunk < DIRECT_MR) chunk = DIRECT_MR;
    if (group < 1) group = 1;
    for (size_t p0 = 0; p0 < pixels; p0 += chunk)
        for (int b0 = 0; b0 < nb; b0 += group)
            direct_sweep(g, in, packed, b0, b0 + group < nb ? b0 + group : nb, p0,
                         p0 + chunk < pixels ? p0 + chunk : pixels, act, out, accumulate);
}

/* ---- depthwise convolution ---- */

/* Window taps [*lo, *hi) of a k-tap window starting at `origin` (dilation
 * dil) that fall inside [0, size). */
static void tap_range(int origin, int dil, int k, int size, int *lo, int *hi)
{
    *lo = origin < 0 ? (-origin + dil - 1) / dil : 0;
    *hi = origin > size - 1 ? 0 : (size - 1 - origin) / dil + 1;
    if (*hi > k) *hi = k;
    if (*lo > *hi) *lo = *hi;
}

/* Outputs [*lo, *hi) whose whole window lies inside the input. */
static void interior_range(int size, int out, int k, int stride, int dil, int pad,
                           int *lo, int *hi)
{
    int last = size - 1 - (k - 1) * dil + pad; /* largest window origin + pad */
    *lo = (pad + stride - 1) / stride;
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

/* Portable kernel: output pixel (y, x), channels [c0, c1), any multiplier. */
static void dw_pixel_c(const nn_conv_geom *g, const float *in, const float *w,
                       const float *bias, sat_activation act, float *out,
                       int y, int x, int c0, int c1)
{
    int mult = g->out_c / g->in_c;
    int oy = y * g->stride_h - g->pad_top, ox = x * g->stride_w - g->pad_left;
    int ky0, ky1, kx0, kx1;
    tap_range(oy, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
    tap_range(ox, g->dil_w, g->k_w, g->in_w, &kx0, &kx1);
    float *o = out + ((size_t)y * g->out_w + x) * g->out_c;
    for (int c = c0; c < c1; c++) o[c] = bias ? bias[c] : 0.0f;
    for (int ky = ky0; ky < ky1; ky++)
        for (int kx = kx0; kx < kx1; kx++) {
            int iy = oy + ky * g->dil_h, ix = ox + kx * g->dil_w;
            const float *p = in + ((size_t)iy * g->in_w + ix) * g->in_c;
            const float *wp = w + ((size_t)ky * g->k_w + kx) * g->out_c;
            for (int c = c0; c < c1; c++) o[c] += p[c / mult] * wp[c];
        }
    for (int c = c0; c < c1; c++) o[c] = activate1(o[c], act);
}

/* AVX2 kernel for one output pixel of any window, channels [0, c8), c8 a
 * multiple of 8, multiplier 1. */
AVX2 static void dw_pixel_avx2(const nn_conv_geom *g, const float *in, const float *w,
                               const float *bias, sat_activation act, float *out,
                               int y, int x, int c8)
{
    size_t c = (size_t)g->in_c;
    int oy = y * g->stride_h - g->pad_top, ox = x * g->stride_w - g->pad_left;
    int ky0, ky1, kx0, kx1;
    tap_range(oy, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
    tap_range(ox, g->dil_w, g->k_w, g->in_w, &kx0, &kx1);
    float *o = out + ((size_t)y * g->out_w + x) * c;
    for (int ch = 0; ch < c8; ch += 8) {
        __m256 acc = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                size_t iy = (size_t)(oy + ky * g->dil_h), ix = (size_t)(ox + kx * g->dil_w);
                __m256 v = _mm256_loadu_ps(in + (iy * g->in_w + ix) * c + ch);
                __m256 k = _mm256_loadu_ps(w + ((size_t)ky * g->k_w + kx) * c + ch);
                acc = _mm256_fmadd_ps(v, k, acc);
            }
        _mm256_storeu_ps(o + ch, activate8(acc, act));
    }
}

/* acc + the 9 products p[t][0..8) * k[t] (two chains to hide latency). */
AVX2 static inline __m256 dw3x3_sum(const float *const p[9], const __m256 k[9], __m256 acc)
{
    __m256 e = _mm256_mul_ps(_mm256_loadu_ps(p[1]), k[1]);
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(p[0]), k[0], acc);
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(p[2]), k[2], acc);
    e = _mm256_fmadd_ps(_mm256_loadu_ps(p[3]), k[3], e);
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(p[4]), k[4], acc);
    e = _mm256_fmadd_ps(_mm256_loadu_ps(p[5]), k[5], e);
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(p[6]), k[6], acc);
    e = _mm256_fmadd_ps(_mm256_loadu_ps(p[7]), k[7], e);
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(p[8]), k[8], acc);
    return _mm256_add_ps(acc, e);
}

/* Border outputs handled per pass of the channel blocks. */
#define DW3X3_SEGMENT 16

/* 3x3 outputs [x0, x1) of row y (at most DW3X3_SEGMENT) with some taps in the
 * padding: each output's 9 tap pointers are found once (zeros for taps in
 * the padding), then each channel block sweeps the outputs with its 9 weight
 * vectors in registers.  Channels [0, c8). */
AVX2 static void dw3x3_border_avx2(const nn_conv_geom *g, const float *in, const float *w,
                                   const float *bias, sat_activation act, float *out,
                                   int y, int x0, int x1, int c8)
{
    size_t c = (size_t)g->in_c;
    const float *taps[DW3X3_SEGMENT][9];
    for (int x = x0; x < x1; x++)
        for (int t = 0; t < 9; t++) {
            int iy = y * g->stride_h - g->pad_top + t / 3 * g->dil_h;
            int ix = x * g->stride_w - g->pad_left + t % 3 * g->dil_w;
            int inside = iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w;
            taps[x - x0][t] = inside ? in + ((size_t)iy * g->in_w + ix) * c : zeros;
        }
    float *o = out + ((size_t)y * g->out_w + x0) * c;
    for (int ch = 0; ch < c8; ch += 8) {
        __m256 k[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) k[t] = _mm256_loadu_ps(w + t * c + ch);
        __m256 b = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        for (int i = 0; i < x1 - x0; i++) {
            const float *p[9];
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) p[t] = taps[i][t] + ch;
            _mm256_storeu_ps(o + i * c + ch, activate8(dw3x3_sum(p, k, b), act));
        }
    }
}

/* 3x3 outputs [x0, x1) of row y whose taps are all inside the input: they
 * step through it with fixed tap offsets, 9 weight vectors in registers. */
AVX2 static void dw3x3_interior_avx2(const nn_conv_geom *g, const float *in, const float *w,
                                     const float *bias, sat_activation act, float *out,
                                     int y, int x0, int x1, int c8)
{
    size_t c = (size_t)g->in_c;
    size_t dy = (size_t)g->dil_h * g->in_w * c, dx = (size_t)g->dil_w * c;
    size_t step = (size_t)g->stride_w * c;
    size_t iy = (size_t)(y * g->stride_h - g->pad_top);
    const float *row = in + (iy * g->in_w + (size_t)(x0 * g->stride_w - g->pad_left)) * c;
    float *o = out + ((size_t)y * g->out_w + x0) * c;
    for (int ch = 0; ch < c8; ch += 8) {
        __m256 k[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) k[t] = _mm256_loadu_ps(w + t * c + ch);
        __m256 b = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        const float *q = row + ch;
        for (int x = x0; x < x1; x++, q += step) {
            const float *p[9] = {q,          q + dx,          q + 2 * dx,
                                 q + dy,     q + dy + dx,     q + dy + 2 * dx,
                                 q + 2 * dy, q + 2 * dy + dx, q + 2 * dy + 2 * dx};
            _mm256_storeu_ps(o + (size_t)(x - x0) * c + ch, activate8(dw3x3_sum(p, k, b), act));
        }
    }
}

/* Outputs [x0, x1) of row y through the border kernel, a segment at a time. */
AVX2 static void dw3x3_border_span_avx2(const nn_conv_geom *g, const float *in, const float *w,
                                        const float *bias, sat_activation act, float *out,
                                        int y, int x0, int x1, int c8)
{
    for (int x = x0; x < x1; x += DW3X3_SEGMENT)
        dw3x3_border_avx2(g, in, w, bias, act, out, y, x,
                          x1 - x < DW3X3_SEGMENT ? x1 : x + DW3X3_SEGMENT, c8);
}

/* Channels [0, c8) with AVX2.  3x3 windows: the interior kernel where all
 * taps are inside, the border kernel elsewhere; other windows: per pixel. */
AVX2 static void dw_avx2(const nn_conv_geom *g, const float *in, const float *w,
                         const float *bias, sat_activation act, float *out, int c8)
{
    if (g->k_h != 3 || g->k_w != 3 || c8 > ZEROS_FLOATS) {
        for (int y = 0; y < g->out_h; y++)
            for (int x = 0; x < g->out_w; x++) dw_pixel_avx2(g, in, w, bias, act, out, y, x, c8);
        return;
    }
    int y_lo, y_hi, x_lo, x_hi;
    interior_range(g->in_h, g->out_h, 3, g->stride_h, g->dil_h, g->pad_top, &y_lo, &y_hi);
    interior_range(g->in_w, g->out_w, 3, g->stride_w, g->dil_w, g->pad_left, &x_lo, &x_hi);
    for (int y = 0; y < g->out_h; y++) {
        if (y < y_lo || y >= y_hi || x_lo == x_hi) {
            dw3x3_border_span_avx2(g, in, w, bias, act, out, y, 0, g->out_w, c8);
            continue;
        }
        dw3x3_border_span_avx2(g, in, w, bias, act, out, y, 0, x_lo, c8);
        dw3x3_interior_avx2(g, in, w, bias, act, out, y, x_lo, x_hi, c8);
        dw3x3_border_span_avx2(g, in, w, bias, act, out, y, x_hi, g->out_w, c8);
    }
}

void nn_depthwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out)
{
    int c8 = g->out_c == g->in_c && nn_simd_avx2() ? g->out_c & ~7 : 0;
    if (c8 > 0) dw_avx2(g, in, w, bias, act, out, c8);
    if (c8 == g->out_c) return;
    for (int y = 0; y < g->out_h; y++)
        for (int x = 0; x < g->out_w; x++)
            dw_pixel_c(g, in, w, bias, act, out, y, x, c8, g->out_c);
}

/* ---- elementwise, pooling ---- */

void nn_add_forward(const float *a, const float *b, size_t n, sat_activation act, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = activate1(a[i] + b[i], act);
}

/* Columns [0, c8) in blocks of 8, the sums kept in a register down the rows. */
AVX2 static void column_sums_avx2(const float *in, int rows, int c, int c8, float *out)
{
    for (int i = 0; i < c8; i += 8) {
        __m256 s = _mm256_setzero_ps();
        for (int p = 0; p < rows; p++) s = _mm256_add_ps(s, _mm256_loadu_ps(in + (size_t)p * c + i));
        _mm256_storeu_ps(out + i, s);
    }
}

void nn_mean_pool_forward(const float *in, int hw, int c, float *out)
{
    int c8 = nn_simd_avx2() ? c & ~7 : 0;
    if (c8 > 0) column_sums_avx2(in, hw, c, c8, out);
    for (int i = c8; i < c; i++) {
        out[i] = 0;
        for (int p = 0; p < hw; p++) out[i] += in[(size_t)p * c + i];
    }
    for (int i = 0; i < c; i++) out[i] /= (float)hw;
}

/* ---- a convolution with its kernel chosen ---- */

int nn_conv_init(nn_conv *cv, const nn_conv_geom *g, int depthwise, const float *w,
                 const float *bias, sat_activation act, nn_kernel kernel)
{
    *cv = (nn_conv){.g = *g, .act = act, .w = w, .bias = bias};
    int pointwise = !depthwise && g->k_h == 1 && g->k_w == 1;
    if (kernel == NN_KERNEL_AUTO) {
        if (depthwise)
            kernel = NN_KERNEL_DEPTHWISE;
        else if (nn_simd_avx2() && direct_fits(g) && (!pointwise || g->in_c <= DIRECT_MAX_GEMM_K))
            kernel = NN_KERNEL_DIRECT;
        else
            kernel = pointwise ? NN_KERNEL_GEMM : NN_KERNEL_IM2COL;
    }
    int fits = kernel == NN_KERNEL_DEPTHWISE ? depthwise && g->out_c % g->in_c == 0
             : kernel == NN_KERNEL_GEMM      ? pointwise
             : kernel == NN_KERNEL_DIRECT    ? !depthwise && direct_fits(g)
             : kernel == NN_KERNEL_IM2COL    ? !depthwise
                                             : 0;
    if (!fits) return -1;
    cv->kernel = kernel;
    if (kernel == NN_KERNEL_DIRECT) cv->packed = direct_pack(g, w, bias);
    return 0;
}

void nn_conv_free(nn_conv *cv)
{
    free(cv->packed);
    cv->packed = NULL;
}

int nn_conv_can_accumulate(const nn_conv *cv)
{
    return cv->kernel == NN_KERNEL_GEMM || cv->kernel == NN_KERNEL_DIRECT;
}

size_t nn_conv_scratch_floats(const nn_conv *cv)
{
    return cv->kernel == NN_KERNEL_IM2COL ? nn_conv2d_scratch_floats(&cv->g) : 0;
}

void nn_conv_forward(const nn_conv *cv, const float *in, float *out, int accumulate, float *scratch)
{
    switch (cv->kernel) {
    case NN_KERNEL_GEMM:
        nn_pointwise_forward(&cv->g, in, cv->w, cv->bias, cv->act, out, accumulate);
        break;
    case NN_KERNEL_DIRECT:
        direct_forward(&cv->g, in, cv->packed, cv->act, out, accumulate);
        break;
    case NN_KERNEL_IM2COL:
        nn_conv2d_forward(&cv->g, in, cv->w, cv->bias, cv->act, out, scratch);
        break;
    case NN_KERNEL_DEPTHWISE:
        nn_depthwise_forward(&cv->g, in, cv->w, cv->bias, cv->act, out);
        break;
    case NN_KERNEL_AUTO:
        break;
    }
}
