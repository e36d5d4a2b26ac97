/* nn.c — see nn.h.  NHWC float32 kernels for one image.
 *
 * The 1x1 convolutions (almost all of MobileNetV2's multiply-adds) are
 * OpenBLAS GEMMs.  Their bias + activation run on each chunk of output rows
 * right after its GEMM, while the chunk is still in cache.  The depthwise
 * convolution is memory-bound and has its own kernel, vectorized over
 * channels with AVX2/FMA (compiled with a target attribute, chosen at run
 * time), with a portable C path for other CPUs and odd channel counts.
 */
#include "nn.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* Output rows per GEMM call: the chunk's output (about 64 KiB) stays in L2
 * for the bias + activation pass; at least 64 rows keep the GEMM efficient. */
#define GEMM_CHUNK_FLOATS 16384
#define GEMM_MIN_ROWS 64

static int simd_wanted = 1;

int nn_use_simd(int on)
{
    int old = simd_wanted;
    simd_wanted = on;
    return old;
}

static int have_avx2(void)
{
    return simd_wanted && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

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
    if (have_avx2())
        bias_act_avx2(x, rows, n, bias, act);
    else
        bias_act_c(x, rows, n, bias, act);
}

/* c [m][n] = a [m][k] (rows lda apart) x w [n][k]^T + beta * c, then bias + act. */
static void gemm_bias_act(int m, int n, int k, const float *a, int lda, const float *w,
                          float beta, float *c, const float *bias, sat_activation act)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, w, k, beta, c, n);
    bias_act(c, (size_t)m, n, bias, act);
}

static size_t gemm_chunk_rows(int n)
{
    size_t rows = GEMM_CHUNK_FLOATS / (size_t)n;
    return rows < GEMM_MIN_ROWS ? GEMM_MIN_ROWS : rows;
}

/* ---- 1x1 convolution ---- */

void nn_pointwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out, int accumulate)
{
    int k = g->in_c, n = g->out_c;
    float beta = accumulate ? 1.0f : 0.0f;
    if (g->stride_h == 1 && g->stride_w == 1) {
        /* Input and output pixels coincide: one GEMM over all pixels, chunked. */
        size_t pixels = (size_t)g->out_h * g->out_w, chunk = gemm_chunk_rows(n);
        for (size_t p = 0; p < pixels; p += chunk) {
            size_t m = pixels - p < chunk ? pixels - p : chunk;
            gemm_bias_act((int)m, n, k, in + p * k, k, w, beta, out + p * n, bias, act);
        }
        return;
    }
    /* Strided: output row y reads every stride_w-th pixel of input row
     * y*stride_h, i.e. a GEMM whose A rows are stride_w*in_c floats apart. */
    for (int y = 0; y < g->out_h; y++) {
        const float *a = in + (size_t)y * g->stride_h * g->in_w * k;
        gemm_bias_act(g->out_w, n, k, a, g->stride_w * k, w, beta,
                      out + (size_t)y * g->out_w * n, bias, act);
    }
}

/* ---- general convolution: im2col + GEMM ---- */

/* Output pixels per im2col chunk. */
static size_t im2col_chunk(const nn_conv_geom *g)
{
    size_t patch = (size_t)g->k_h * g->k_w * g->in_c;
    size_t pixels = (size_t)g->out_h * g->out_w;
    size_t chunk = GEMM_CHUNK_FLOATS / patch;
    if (chunk < GEMM_MIN_ROWS) chunk = GEMM_MIN_ROWS;
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
        gemm_bias_act((int)m, g->out_c, patch, scratch, patch, w, 0.0f,
                      out + p0 * g->out_c, bias, act);
    }
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

/* AVX2 kernel for one output pixel near a border (any window), channels
 * [0, c8), c8 a multiple of 8, multiplier 1. */
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

/* AVX2 3x3 kernel for outputs [x0, x1) of row y, all of whose taps are
 * inside the input: the 9 weight vectors of a channel block stay in
 * registers while the block sweeps the row. */
AVX2 static void dw_row3x3_avx2(const nn_conv_geom *g, const float *in, const float *w,
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
        __m256 k0 = _mm256_loadu_ps(w + 0 * c + ch), k1 = _mm256_loadu_ps(w + 1 * c + ch);
        __m256 k2 = _mm256_loadu_ps(w + 2 * c + ch), k3 = _mm256_loadu_ps(w + 3 * c + ch);
        __m256 k4 = _mm256_loadu_ps(w + 4 * c + ch), k5 = _mm256_loadu_ps(w + 5 * c + ch);
        __m256 k6 = _mm256_loadu_ps(w + 6 * c + ch), k7 = _mm256_loadu_ps(w + 7 * c + ch);
        __m256 k8 = _mm256_loadu_ps(w + 8 * c + ch);
        __m256 b = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        const float *p = row + ch;
        float *q = o + ch;
        for (int x = x0; x < x1; x++, p += step, q += c) {
            const float *p1 = p + dy, *p2 = p + 2 * dy;
            __m256 a = _mm256_fmadd_ps(_mm256_loadu_ps(p), k0, b);
            __m256 e = _mm256_mul_ps(_mm256_loadu_ps(p + dx), k1);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(p + 2 * dx), k2, a);
            e = _mm256_fmadd_ps(_mm256_loadu_ps(p1), k3, e);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + dx), k4, a);
            e = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + 2 * dx), k5, e);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(p2), k6, a);
            e = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + dx), k7, e);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + 2 * dx), k8, a);
            _mm256_storeu_ps(q, activate8(_mm256_add_ps(a, e), act));
        }
    }
}

/* Channels [0, c8) with AVX2: the 3x3 row kernel on the interior, the
 * per-pixel kernel on the borders (and for other window sizes). */
AVX2 static void dw_avx2(const nn_conv_geom *g, const float *in, const float *w,
                         const float *bias, sat_activation act, float *out, int c8)
{
    int y_lo = 0, y_hi = 0, x_lo = 0, x_hi = 0;
    if (g->k_h == 3 && g->k_w == 3) {
        interior_range(g->in_h, g->out_h, 3, g->stride_h, g->dil_h, g->pad_top, &y_lo, &y_hi);
        interior_range(g->in_w, g->out_w, 3, g->stride_w, g->dil_w, g->pad_left, &x_lo, &x_hi);
    }
    for (int y = 0; y < g->out_h; y++) {
        int inside = y >= y_lo && y < y_hi;
        int a = inside ? x_lo : g->out_w, b = inside ? x_hi : g->out_w;
        for (int x = 0; x < a; x++) dw_pixel_avx2(g, in, w, bias, act, out, y, x, c8);
        if (a < b) dw_row3x3_avx2(g, in, w, bias, act, out, y, a, b, c8);
        for (int x = b; x < g->out_w; x++) dw_pixel_avx2(g, in, w, bias, act, out, y, x, c8);
    }
}

void nn_depthwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out)
{
    int c8 = g->out_c == g->in_c && have_avx2() ? g->out_c & ~7 : 0;
    if (c8 > 0) dw_avx2(g, in, w, bias, act, out, c8);
    if (c8 == g->out_c) return;
    for (int y = 0; y < g->out_h; y++)
        for (int x = 0; x < g->out_w; x++)
            dw_pixel_c(g, in, w, bias, act, out, y, x, c8, g->out_c);
}

/* ---- elementwise, pooling, softmax ---- */

void nn_add_forward(const float *a, const float *b, size_t n, sat_activation act, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = activate1(a[i] + b[i], act);
}

void nn_mean_pool_forward(const float *in, int hw, int c, float *out)
{
    memset(out, 0, (size_t)c * sizeof *out);
    for (int p = 0; p < hw; p++, in += c)
        for (int i = 0; i < c; i++) out[i] += in[i];
    for (int i = 0; i < c; i++) out[i] /= (float)hw;
}

void nn_softmax_forward(const float *in, int rows, int n, float beta, float *out)
{
    for (int r = 0; r < rows; r++, in += n, out += n) {
        float max = beta * in[0];
        for (int i = 1; i < n; i++) max = beta * in[i] > max ? beta * in[i] : max;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += out[i] = expf(beta * in[i] - max);
        for (int i = 0; i < n; i++) out[i] = (float)(out[i] / sum);
    }
}
