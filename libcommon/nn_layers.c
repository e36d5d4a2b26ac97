/* nn_layers.c — see nn_layers.h.  The decoder's layers, each forward beside
 * its backward, the shapes written at the top of each body (as llm.c does).
 *
 * The AVX2/FMA (and, in nn_linear_rows, AVX-512) paths are compiled with
 * target attributes and taken when nn_simd_avx2() says so (nn_simd.h: the
 * CPU has them and the switch is on), with a portable C path beside each.
 */
#include "sat/nn_layers.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "sat/half.h"
#include "sat/nn_simd.h"

/* C (M×N) = A·B + beta·C with A M×K (or K×M when ta), B K×N (or N×K when tb). */
static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* ---- vector kernels: tanh arrays, and the attention scores (the hot spot:
 * B·L·A tanh per step, twice).  AVX2 tanh is the [13/6] rational
 * approximation used by Eigen, XLA and MLAS (error ~1e-7 on [-7.9, 7.9],
 * ±1 beyond); the scalar tails and the portable path (other CPUs, or the
 * switch off) use tanhf. */

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 tanh8(__m256 x)
{
    const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
    x = _mm256_max_ps(_mm256_min_ps(x, clamp), _mm256_sub_ps(_mm256_setzero_ps(), clamp));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
    p = _mm256_mul_ps(p, x);
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
    return _mm256_div_ps(p, q);
}

AVX2 static float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Σ_k v[k] tanh(p[k] + q[k]) over the multiple-of-8 prefix; *done = its length. */
AVX2 static float score_avx2(const float *p, const float *q, const float *v, int A, int *done)
{
    __m256 acc = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= A; k += 8) {
        __m256 s = tanh8(_mm256_add_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(q + k)));
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), s, acc);
    }
    *done = k;
    return hsum8(acc);
}

AVX2 static int score_backward_avx2(float de, const float *p, const float *q, const float *v,
                                    float *dp, float *dq, float *dv, int A)
{
    const __m256 vde = _mm256_set1_ps(de), one = _mm256_set1_ps(1.0f);
    int k = 0;
    for (; k + 8 <= A; k += 8) {
        __m256 s = tanh8(_mm256_add_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(q + k)));
        _mm256_storeu_ps(dv + k, _mm256_fmadd_ps(vde, s, _mm256_loadu_ps(dv + k)));
        __m256 g = _mm256_mul_ps(_mm256_mul_ps(vde, _mm256_loadu_ps(v + k)),
                                 _mm256_fnmadd_ps(s, s, one));
        if (dp) _mm256_storeu_ps(dp + k, _mm256_add_ps(_mm256_loadu_ps(dp + k), g));
        if (dq) _mm256_storeu_ps(dq + k, _mm256_add_ps(_mm256_loadu_ps(dq + k), g));
    }
    return k;
}

/* y = tanh(x) over the multiple-of-8 prefix of n; returns its length. */
AVX2 static size_t tanh_array_avx2(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
    return i;
}

/* The vector tiles of nn_linear_rows read B as f32 or, in the _h instances,
 * as f16 bits (half, a constant in each), converted exactly as they are
 * loaded: the same floats, so the same bits out, from half the bytes (the
 * decoder's steps stream their weights: issue 15).  F16C is in every
 * AVX2 CPU's target here, its conversions are used only when half is set. */
#define ROWS_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ROWS_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* 8 floats of B from element i. */
ROWS_AVX2 static inline __attribute__((always_inline)) __m256 load8(const void *B, size_t i,
                                                                    const int half)
{
    if (half) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)B + i)));
    return _mm256_loadu_ps((const float *)B + i);
}

/* 16 floats of B from element i. */
ROWS_AVX512 static inline __attribute__((always_inline)) __m512 load16(const void *B, size_t i,
                                                                       const int half)
{
    if (half)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)B + i)));
    return _mm512_loadu_ps((const float *)B + i);
}

/* One tile of nn_linear_rows: R rows × NV·8 columns of C, over B's rows
 * k0..k1: each element's FMA chain continued from C (first: from 0) and
 * stored back.  A float stored and reloaded is the same float, so the chain
 * in blocks of k is the chain in one go, and the scalar tail's fmaf gives
 * the same bits too.  R, NV and half are constants in each instance below,
 * so the accumulators stay in registers. */
#define ROWS_MAX 4
#define COLS_MAX 3
ROWS_AVX2 static inline __attribute__((always_inline)) void
rows_tile(float *C, int ldc, const float *A, int lda, const void *B, int ldb, int k0, int k1,
          int first, const int R, const int NV, const int half)
{
    __m256 acc[ROWS_MAX][COLS_MAX], b[COLS_MAX];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(C + (size_t)r * ldc + 8 * v);
    for (int k = k0; k < k1; k++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = load8(B, (size_t)k * ldb + 8 * v, half);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)r * lda + k);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(C + (size_t)r * ldc + 8 * v, acc[r][v]);
}

typedef void rows_tile_fn(float *C, int ldc, const float *A, int lda, const void *B, int ldb,
                          int k0, int k1, int first);
#define ROWS_TILE(R, NV, HALF, SUFFIX)                                                    \
    ROWS_AVX2 static void rows_tile_##R##x##NV##SUFFIX(float *C, int ldc, const float *A,  \
                                                       int lda, const void *B, int ldb,    \
                                                       int k0, int k1, int first)          \
    {                                                                                      \
        rows_tile(C, ldc, A, lda, B, ldb, k0, k1, first, R, NV, HALF);                     \
    }
#define ROWS_TILES(HALF, SUFFIX)                                                           \
    ROWS_TILE(1, 1, HALF, SUFFIX) ROWS_TILE(2, 1, HALF, SUFFIX)                            \
    ROWS_TILE(3, 1, HALF, SUFFIX) ROWS_TILE(4, 1, HALF, SUFFIX)                            \
    ROWS_TILE(1, 3, HALF, SUFFIX) ROWS_TILE(2, 3, HALF, SUFFIX)                            \
    ROWS_TILE(3, 3, HALF, SUFFIX) ROWS_TILE(4, 3, HALF, SUFFIX)
ROWS_TILES(0, ) ROWS_TILES(1, _h)

/* The same with AVX-512: R rows × NV·16 columns (NV zmm, up to 3), R up to
 * 8.  The lanes' FMAs are the same operations as AVX2's, so the bits are too. */
ROWS_AVX512 static inline __attribute__((always_inline)) void
rows_tile_wide(float *C, int ldc, const float *A, int lda, const void *B, int ldb, int k0,
               int k1, int first, const int R, const int NV, const int half)
{
    __m512 acc[8][3], b[3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(C + (size_t)r * ldc + 16 * v);
    for (int k = k0; k < k1; k++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = load16(B, (size_t)k * ldb + 16 * v, half);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(C + (size_t)r * ldc + 16 * v, acc[r][v]);
}
#define ROWS_TILE_WIDE(R, NV, HALF, SUFFIX)                                                \
    ROWS_AVX512 static void rows_tile_##R##x##NV##w##SUFFIX(float *C, int ldc, const float *A, \
                                                      int lda, const void *B, int ldb,     \
                                                      int k0, int k1, int first)           \
    {                                                                                      \
        rows_tile_wide(C, ldc, A, lda, B, ldb, k0, k1, first, R, NV, HALF);                \
    }
#define ROWS_TILES_WIDE(NV, HALF, SUFFIX)                                                  \
    ROWS_TILE_WIDE(1, NV, HALF, SUFFIX) ROWS_TILE_WIDE(2, NV, HALF, SUFFIX)                \
    ROWS_TILE_WIDE(3, NV, HALF, SUFFIX) ROWS_TILE_WIDE(4, NV, HALF, SUFFIX)                \
    ROWS_TILE_WIDE(5, NV, HALF, SUFFIX) ROWS_TILE_WIDE(6, NV, HALF, SUFFIX)                \
    ROWS_TILE_WIDE(7, NV, HALF, SUFFIX) ROWS_TILE_WIDE(8, NV, HALF, SUFFIX)
ROWS_TILES_WIDE(3, 0, ) ROWS_TILES_WIDE(3, 1, _h)
ROWS_TILES_WIDE(2, 0, ) ROWS_TILES_WIDE(2, 1, _h)
ROWS_TILES_WIDE(1, 0, ) ROWS_TILES_WIDE(1, 1, _h)

/* The AVX-512 tile of the last 1..15 columns: R rows × the `cols` columns
 * that mask m selects (AVX512BW: the f16 lanes are masked as they are
 * loaded, so nothing past B's row is read).  Each element's chain is the
 * one the scalar tail would compute (the vocabulary's 2538 columns leave
 * 10; as 8 vector columns and 2 scalar ones they took a quarter of the
 * output layer's time). */
#define ROWS_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
ROWS_AVX512BW static inline __attribute__((always_inline)) void
rows_tile_masked(float *C, int ldc, const float *A, int lda, const void *B, int ldb, int k0,
                 int k1, int first, __mmask16 m, const int R, const int half)
{
    __m512 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        acc[r] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, C + (size_t)r * ldc);
    for (int k = k0; k < k1; k++) {
        const size_t i = (size_t)k * ldb;
        __m512 b = half ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)B + i))
                        : _mm512_maskz_loadu_ps(m, (const float *)B + i);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)r * lda + k]), b, acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(C + (size_t)r * ldc, m, acc[r]);
}
typedef void rows_masked_fn(float *C, int ldc, const float *A, int lda, const void *B, int ldb,
                            int k0, int k1, int first, __mmask16 m);
#define ROWS_TILE_MASKED(R, HALF, SUFFIX)                                                  \
    ROWS_AVX512BW static void rows_tile_##R##m##SUFFIX(float *C, int ldc, const float *A,  \
                                                       int lda, const void *B, int ldb,    \
                                                       int k0, int k1, int first,          \
                                                       __mmask16 m)                        \
    {                                                                                      \
        rows_tile_masked(C, ldc, A, lda, B, ldb, k0, k1, first, m, R, HALF);               \
    }
#define ROWS_TILES_MASKED(HALF, SUFFIX)                                                    \
    ROWS_TILE_MASKED(1, HALF, SUFFIX) ROWS_TILE_MASKED(2, HALF, SUFFIX)                    \
    ROWS_TILE_MASKED(3, HALF, SUFFIX) ROWS_TILE_MASKED(4, HALF, SUFFIX)                    \
    ROWS_TILE_MASKED(5, HALF, SUFFIX) ROWS_TILE_MASKED(6, HALF, SUFFIX)                    \
    ROWS_TILE_MASKED(7, HALF, SUFFIX) ROWS_TILE_MASKED(8, HALF, SUFFIX)
ROWS_TILES_MASKED(0, ) ROWS_TILES_MASKED(1, _h)
/* [half][R − 1] */
static rows_masked_fn *const tiles_masked[2][8] = {
    {rows_tile_1m, rows_tile_2m, rows_tile_3m, rows_tile_4m, rows_tile_5m, rows_tile_6m,
     rows_tile_7m, rows_tile_8m},
    {rows_tile_1m_h, rows_tile_2m_h, rows_tile_3m_h, rows_tile_4m_h, rows_tile_5m_h,
     rows_tile_6m_h, rows_tile_7m_h, rows_tile_8m_h}};

/* Tiles of `cols` columns and up to `rows` rows: fn[R − 1] for R rows.
 * convert: with f16 B and more rows than one tile, the strip is converted
 * once to f32 for the f32 tiles (the AVX2 tiles, whose 4 rows would each
 * convert it again); the AVX-512 tiles convert as they load, which costs
 * less on Zen 5 than the strip's stores and loads (nn_linear_rows_f16 of
 * the LSTM at 48 rows: 2.49 -> 2.16 ms). */
typedef struct {
    int cols, rows, convert;
    rows_tile_fn *fn[8];
} rows_tiles;

/* [half]: f32 B, f16 B.  AVX-512: 48, 32 and 16 columns. */
#define TILES_WIDE(NV)                                                                     \
    {{16 * (NV), 8, 0, {rows_tile_1x##NV##w, rows_tile_2x##NV##w, rows_tile_3x##NV##w,       \
                        rows_tile_4x##NV##w, rows_tile_5x##NV##w, rows_tile_6x##NV##w,       \
                        rows_tile_7x##NV##w, rows_tile_8x##NV##w}},                         \
     {16 * (NV), 8, 0, {rows_tile_1x##NV##w_h, rows_tile_2x##NV##w_h, rows_tile_3x##NV##w_h, \
                        rows_tile_4x##NV##w_h, rows_tile_5x##NV##w_h, rows_tile_6x##NV##w_h, \
                        rows_tile_7x##NV##w_h, rows_tile_8x##NV##w_h}}}
static const rows_tiles tiles_avx512[2] = TILES_WIDE(3);
static const rows_tiles tiles_avx512_32[2] = TILES_WIDE(2);
static const rows_tiles tiles_avx512_16[2] = TILES_WIDE(1);
static const rows_tiles tiles_24[2] = {
    { 24, 4, 1, { rows_tile_1x3, rows_tile_2x3, rows_tile_3x3, rows_tile_4x3 } },
    { 24, 4, 1, { rows_tile_1x3_h, rows_tile_2x3_h, rows_tile_3x3_h, rows_tile_4x3_h } } };
static const rows_tiles tiles_8[2] = {
    { 8, 4, 1, { rows_tile_1x1, rows_tile_2x1, rows_tile_3x1, rows_tile_4x1 } },
    { 8, 4, 1, { rows_tile_1x1_h, rows_tile_2x1_h, rows_tile_3x1_h, rows_tile_4x1_h } } };

/* B's rows per pass: the pages one pass touches (a row of lstm.W is 4 KB
 * in f16) stay within the TLB, and its strips of columns within L1 for all
 * the row tiles of C. */
#define ROWS_KBLOCK 256

/* f16 B's rows k0..k1, columns [0, cols) (a multiple of 8), as floats into
 * S (k1 − k0 rows of stride cols). */
ROWS_AVX2 static void strip_to_f32(float *S, const void *B, int ldb, int k0, int k1, int cols)
{
    for (int k = k0; k < k1; k++)
        for (int v = 0; v < cols; v += 8)
            _mm256_storeu_ps(S + (size_t)(k - k0) * cols + v, load8(B, (size_t)k * ldb + v, 1));
}

/* One strip of columns of C (tiles[0].cols wide, from B's column j) over
 * B's rows k0..k1, in tiles of up to tiles[0].rows rows; tiles: {f32, f16}
 * of one width.  A converted strip (24 KB at most, in L1) holds the same
 * floats as B. */
static void rows_strip(float *C, int ldc, const float *A, int lda, const void *B, int N, int M,
                       int j, int k0, int k1, const rows_tiles *tiles, int half)
{
    float S[ROWS_KBLOCK * 24];
    const rows_tiles *t = &tiles[half];
    int ldb = N, first = k0 == 0;
    if (half && t->convert && M > t->rows) {
        t = &tiles[0];
        strip_to_f32(S, (const uint16_t *)B + j, N, k0, k1, t->cols);
        B = S;
        A += k0;
        ldb = t->cols;
        k1 -= k0;
        k0 = 0;
    } else {
        B = (const char *)B + (half ? sizeof(uint16_t) : sizeof(float)) * (size_t)j;
    }
    for (int r = 0; r < M; r += t->rows) {
        int R = M - r < t->rows ? M - r : t->rows;
        t->fn[R - 1](C + (size_t)r * ldc + j, ldc, A + (size_t)r * lda, lda, B, ldb, k0, k1, first);
    }
}

/* The last N − j (< 16) columns of C over B's rows k0..k1, masked tiles. */
static void rows_masked(float *C, int ldc, const float *A, int lda, const void *B, int N, int M,
                        int j, int k0, int k1, int half)
{
    const __mmask16 m = (__mmask16)((1u << (N - j)) - 1);
    B = (const char *)B + (half ? sizeof(uint16_t) : sizeof(float)) * (size_t)j;
    for (int r = 0; r < M; r += 8) {
        int R = M - r < 8 ? M - r : 8;
        tiles_masked[half][R - 1](C + (size_t)r * ldc + j, ldc, A + (size_t)r * lda, lda, B, N, k0,
                                  k1, k0 == 0, m);
    }
}

/* C = A·B in the widest tiles that fit (48, 32, 16 columns, then a masked
 * tile, with AVX-512; else 24, then 8) over all the columns, or without
 * AVX512BW their multiple-of-8 prefix; returns the columns done. */
static int rows_avx2(float *C, int ldc, const float *A, int lda, const void *B, int M, int N,
                     int K, int avx512, int half)
{
    const int masked = avx512 && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl");
    const int n_tiled = masked ? N / 16 * 16 : N / 8 * 8;
    for (int k0 = 0; k0 < K || k0 == 0; k0 += ROWS_KBLOCK) {
        int k1 = K - k0 < ROWS_KBLOCK ? K : k0 + ROWS_KBLOCK;
        for (int j = 0; j < n_tiled;) {
            const rows_tiles *t = avx512 && j + 48 <= n_tiled ? tiles_avx512
                                  : avx512 && j + 32 <= n_tiled ? tiles_avx512_32
                                  : avx512 && j + 16 <= n_tiled ? tiles_avx512_16
                                  : j + 24 <= n_tiled           ? tiles_24
                                                                : tiles_8;
            rows_strip(C, ldc, A, lda, B, N, M, j, k0, k1, t, half);
            j += t->cols;
        }
        if (masked && n_tiled < N) rows_masked(C, ldc, A, lda, B, N, M, n_tiled, k0, k1, half);
    }
    return masked ? N : n_tiled;
}

/* ---- the input gradient dx += dy·Wᵀ, row by row ---------------------------- */

/* R rows of dy against NI rows of W (from row i0): each dx element gets one
 * dot product over `out`, 16 lanes of FMA chains summed, then the scalar
 * tail.  R and NI are constants in each instance, the accumulators stay in
 * registers; an element's operations do not depend on R or NI. */
ROWS_AVX512 static inline __attribute__((always_inline)) void
dx_tile(float *dx, int lddx, const float *dy, int lddy, const float *W, int out, int i0, int j0,
        int j1, const int R, const int NI)
{
    __m512 acc[4][4], w[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < NI; i++) acc[r][i] = _mm512_setzero_ps();
    int j = j0;
    for (; j + 16 <= j1; j += 16) {
#pragma GCC unroll 4
        for (int i = 0; i < NI; i++) w[i] = _mm512_loadu_ps(W + (size_t)(i0 + i) * out + j);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_loadu_ps(dy + (size_t)r * lddy + j);
#pragma GCC unroll 4
            for (int i = 0; i < NI; i++) acc[r][i] = _mm512_fmadd_ps(a, w[i], acc[r][i]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < NI; i++) {
            float sum = _mm512_reduce_add_ps(acc[r][i]);
            for (int t = j; t < j1; t++)
                sum = fmaf(dy[(size_t)r * lddy + t], W[(size_t)(i0 + i) * out + t], sum);
            dx[(size_t)r * lddx + i0 + i] += sum;
        }
}

typedef void dx_tile_fn(float *dx, int lddx, const float *dy, int lddy, const float *W, int out,
                        int i0, int j0, int j1);
#define DX_TILE(R, NI)                                                                         \
    ROWS_AVX512 static void dx_tile_##R##x##NI(float *dx, int lddx, const float *dy, int lddy, \
                                               const float *W, int out, int i0, int j0,       \
                                               int j1)                                        \
    {                                                                                          \
        dx_tile(dx, lddx, dy, lddy, W, out, i0, j0, j1, R, NI);                                \
    }
DX_TILE(1, 4) DX_TILE(2, 4) DX_TILE(3, 4) DX_TILE(4, 4)
DX_TILE(1, 1) DX_TILE(2, 1) DX_TILE(3, 1) DX_TILE(4, 1)
static dx_tile_fn *const dx_tiles[2][4] = {
    { dx_tile_1x1, dx_tile_2x1, dx_tile_3x1, dx_tile_4x1 },
    { dx_tile_1x4, dx_tile_2x4, dx_tile_3x4, dx_tile_4x4 } };

void nn_linear_rows_dx(float *dx, int lddx, const float *dy, int lddy, const float *W, int n,
                       int in, int out)
{
    if (!nn_simd_avx512()) {
        gemm(0, 1, n, in, out, dy, lddy, W, out, 1.0f, dx, lddx);
        return;
    }
    /* In slices of `out`: four rows of W's slice (16 KB) stay in L1 while
     * every row of dy's slice passes; each slice's dot product is added to
     * dx in turn. */
    enum { SLICE = 1024 };
    for (int j0 = 0; j0 < out; j0 += SLICE) {
        int j1 = out - j0 > SLICE ? j0 + SLICE : out;
        for (int i0 = 0; i0 < in;) {
            int NI = in - i0 >= 4 ? 4 : 1;
            for (int r = 0; r < n; r += 4) {
                int R = n - r < 4 ? n - r : 4;
                dx_tiles[NI == 4][R - 1](dx + (size_t)r * lddx, lddx, dy + (size_t)r * lddy, lddy,
                                         W, out, i0, j0, j1);
            }
            i0 += NI;
        }
    }
}

/* ---- tanh and sigmoid ------------------------------------------------------ */

void nn_tanh_forward(float *y, const float *x, size_t n)
{
    /* x, y are (n); y may be x */
    size_t i = nn_simd_avx2() ? tanh_array_avx2(y, x, n) : 0;
    for (; i < n; i++) y[i] = tanhf(x[i]);
}

void nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n)
{
    /* dy, y (the forward's output), dx are (n); dx may be dy */
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* y = σ(x) = (1 + tanh(x/2)) / 2 elementwise (y may be x): accurate to ~1e-7
 * absolutely, which is what gates need, and vectorized through tanh. */
static void sigmoid_array(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i];
    nn_tanh_forward(y, y, n);
    for (size_t i = 0; i < n; i++) y[i] = 0.5f + 0.5f * y[i];
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---- linear ------------------------------------------------------------------ */

void nn_linear_forward(float *y, int ldy, const float *x, int ldx, const float *W,
                       const float *b, int n, int in, int out)
{
    /* x is (n, in) with row stride ldx, W is (in, out), b is (out) or NULL,
     * y is (n, out) with row stride ldy */
    if (b)
        for (int r = 0; r < n; r++) memcpy(y + (size_t)r * ldy, b, (size_t)out * sizeof(float));
    gemm(0, 0, n, out, in, x, ldx, W, out, b ? 1.0f : 0.0f, y, ldy);
}

void nn_linear_add(float *y, int ldy, const float *x, int ldx, const float *W, int n, int in,
                   int out)
{
    /* x is (n, in) with row stride ldx, W is (in, out), y is (n, out) with row
     * stride ldy, added to */
    gemm(0, 0, n, out, in, x, ldx, W, out, 1.0f, y, ldy);
}

/* W's element i: f32, or f16 bits (any alignment). */
static float weight_at(const void *W, size_t i, int half)
{
    if (!half) return ((const float *)W)[i];
    uint16_t h;
    memcpy(&h, (const char *)W + 2 * i, sizeof h);
    return sat_f16_to_f32(h);
}

static void linear_rows(float *y, int ldy, const float *x, int ldx, const void *W, int half,
                        const float *b, int n, int in, int out)
{
    /* as nn_linear_forward: x (n, in), W (in, out), b (out) or NULL, y (n, out) */
    int vector = nn_simd_avx2() && (!half || nn_simd_f16c());
    int j0 = vector ? rows_avx2(y, ldy, x, ldx, W, n, out, in, nn_simd_avx512(), half) : 0;
    for (size_t r = 0; r < (size_t)n; r++) {
        for (int j = j0; j < out; j++) {
            float acc = 0;
            for (size_t k = 0; k < (size_t)in; k++)
                acc = fmaf(x[r * ldx + k], weight_at(W, k * out + j, half), acc);
            y[r * ldy + j] = acc;
        }
        for (int j = 0; b && j < out; j++) y[r * ldy + j] = b[j] + y[r * ldy + j];
    }
}

void nn_linear_rows(float *y, int ldy, const float *x, int ldx, const float *W,
                    const float *b, int n, int in, int out)
{
    linear_rows(y, ldy, x, ldx, W, 0, b, n, in, out);
}

void nn_linear_rows_f16(float *y, int ldy, const float *x, int ldx, const void *W16,
                        const float *b, int n, int in, int out)
{
    linear_rows(y, ldy, x, ldx, W16, 1, b, n, in, out);
}

void nn_linear_backward(float *dx, int lddx, float *dW, float *db, const float *dy, int ldy,
                        const float *x, int ldx, const float *W, int n, int in, int out)
{
    /* dy is (n, out) with row stride ldy; x (n, in), row stride ldx, and W
     * (in, out) as in the forward; dx (n, in) with row stride lddx, dW
     * (in, out), db (out) are added to */
    if (dx) gemm(0, 1, n, in, out, dy, ldy, W, out, 1.0f, dx, lddx);
    if (dW) gemm(1, 0, in, out, n, x, ldx, dy, ldy, 1.0f, dW, out);
    if (db)
        for (int r = 0; r < n; r++)
            for (int j = 0; j < out; j++) db[j] += dy[(size_t)r * ldy + j];
}

/* ---- attention scores -------------------------------------------------------- */

/* e = v · tanh(p + q) over A. */
static float attention_score(int simd, const float *p, const float *q, const float *v, int A)
{
    float sum = 0;
    int k = 0;
    if (simd) sum = score_avx2(p, q, v, A, &k);
    for (; k < A; k++) sum += v[k] * tanhf(p[k] + q[k]);
    return sum;
}

/* Gradient of e = v · tanh(p + q) scaled by de, added into dp, dq, dv. */
static void attention_score_backward(int simd, float de, const float *p, const float *q,
                                     const float *v, float *dp, float *dq, float *dv, int A)
{
    int k = simd ? score_backward_avx2(de, p, q, v, dp, dq, dv, A) : 0;
    for (; k < A; k++) {
        float s = tanhf(p[k] + q[k]);
        float g = de * v[k] * (1.0f - s * s);
        dv[k] += de * s;
        if (dp) dp[k] += g;
        if (dq) dq[k] += g;
    }
}

void nn_attention_forward(float *e, const float *proj, const int *img, const float *q,
                          const float *v, int n, int L, int A)
{
    /* proj is (n_img, L, A), img (n) indexes it, q is (n, A), v (A);
     * e is (n, L) */
    int simd = nn_simd_avx2();
    for (int r = 0; r < n; r++) {
        const float *p = proj + (size_t)img[r] * L * A;
        for (int i = 0; i < L; i++)
            e[(size_t)r * L + i] =
                attention_score(simd, p + (size_t)i * A, q + (size_t)r * A, v, A);
    }
}

void nn_attention_backward(float *dproj, float *dq, float *dv, const float *de,
                           const float *proj, const int *img, const float *q,
                           const float *v, int n, int L, int A)
{
    /* de is (n, L); proj, img, q, v as in the forward; dproj (n_img, L, A),
     * dq (n, A), dv (A) are added to */
    int simd = nn_simd_avx2();
    for (int r = 0; r < n; r++) {
        size_t base = (size_t)img[r] * L * A;
        for (int i = 0; i < L; i++) {
            float g = de[(size_t)r * L + i];
            if (g == 0.0f) continue; /* padded steps: nothing flows */
            attention_score_backward(simd, g, proj + base + (size_t)i * A, q + (size_t)r * A, v,
                                     dproj ? dproj + base + (size_t)i * A : NULL,
                                     dq ? dq + (size_t)r * A : NULL, dv, A);
        }
    }
}

/* ---- softmax ----------------------------------------------------------------- */

static float row_max(const float *x, int V)
{
    float m = x[0];
    for (int i = 1; i < V; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void nn_softmax_forward(const float *in, int rows, int n, float beta, float *out)
{
    /* in, out are (rows, n); out may be in */
    for (int r = 0; r < rows; r++, in += n, out += n) {
        float max = beta * in[0];
        for (int i = 1; i < n; i++) max = beta * in[i] > max ? beta * in[i] : max;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += out[i] = expf(beta * in[i] - max);
        for (int i = 0; i < n; i++) out[i] = (float)(out[i] / sum);
    }
}

void nn_softmax_backward(float *dx, const float *dy, const float *y, int n, int m)
{
    /* dy, y (the forward's output at beta 1), dx are (n, m); dx may be dy */
    for (size_t r = 0; r < (size_t)n; r++) {
        const float *dyr = dy + r * m, *yr = y + r * m;
        float dot = 0;
        for (int i = 0; i < m; i++) dot += yr[i] * dyr[i];
        for (int i = 0; i < m; i++) dx[r * m + i] = yr[i] * (dyr[i] - dot);
    }
}

void nn_log_softmax_forward(float *x, int n, int V)
{
    /* x is (n, V), replaced by its log-softmax */
    for (int r = 0; r < n; r++) {
        float *xr = x + (size_t)r * V, mx = row_max(xr, V);
        double sum = 0;
        for (int i = 0; i < V; i++) sum += expf(xr[i] - mx);
        float lse = (float)log(sum);
        for (int i = 0; i < V; i++) xr[i] = xr[i] - mx - lse;
    }
}

/* ---- context ----------------------------------------------------------------- */

void nn_context_forward(float *z, const float *alpha, const float *feats, const int *img,
                        int n, int L, int D)
{
    /* alpha is (n, L), feats (n_img, L, D), img (n) indexes it; z is (n, D) */
    for (int r0 = 0, r1; r0 < n; r0 = r1) {
        for (r1 = r0 + 1; r1 < n && img[r1] == img[r0]; r1++) {}
        gemm(0, 0, r1 - r0, D, L, alpha + (size_t)r0 * L, L,
             feats + (size_t)img[r0] * L * D, D, 0.0f, z + (size_t)r0 * D, D);
    }
}

void nn_context_backward(float *dalpha, const float *dz, const float *feats, const int *img,
                         int n, int L, int D)
{
    /* dz is (n, D); feats, img as in the forward; dalpha (n, L) is added to */
    for (int r0 = 0, r1; r0 < n; r0 = r1) {
        for (r1 = r0 + 1; r1 < n && img[r1] == img[r0]; r1++) {}
        gemm(0, 1, r1 - r0, L, D, dz + (size_t)r0 * D, D,
             feats + (size_t)img[r0] * L * D, D, 1.0f, dalpha + (size_t)r0 * L, L);
    }
}

/* ---- gate -------------------------------------------------------------------- */

void nn_gate_forward(float *beta, float *zhat, int ldz, const float *h, const float *w,
                     const float *b, const float *z, int n, int H, int D)
{
    /* h is (n, H), w (H), b (1), z (n, D); beta is (n), zhat (n, D) with
     * row stride ldz */
    for (size_t r = 0; r < (size_t)n; r++) {
        float s = b[0];
        for (int j = 0; j < H; j++) s += h[r * H + j] * w[j];
        beta[r] = sigmoidf(s);
        for (int d = 0; d < D; d++) zhat[r * ldz + d] = beta[r] * z[r * D + d];
    }
}

void nn_gate_backward(float *dh, float *dw, float *db, float *dz, const float *dzhat, int ldz,
                      const float *beta, const float *h, const float *w, const float *z,
                      int n, int H, int D)
{
    /* dzhat is (n, D) with row stride ldz; beta (n) from the forward, h, w, z
     * as in it; dh (n, H), dw (H), db (1), dz (n, D) are added to */
    for (size_t r = 0; r < (size_t)n; r++) {
        float dbeta = 0;
        for (int d = 0; d < D; d++) dbeta += dzhat[r * ldz + d] * z[r * D + d];
        float ds = dbeta * beta[r] * (1.0f - beta[r]);
        for (int j = 0; j < H; j++) {
            if (dh) dh[r * H + j] += ds * w[j];
            if (dw) dw[j] += ds * h[r * H + j];
        }
        if (db) db[0] += ds;
        if (dz)
            for (int d = 0; d < D; d++) dz[r * D + d] += beta[r] * dzhat[r * ldz + d];
    }
}

/* ---- LSTM -------------------------------------------------------------------- */

void nn_lstm_forward(float *gates, float *c, float *h, const float *c_prev, int n, int H)
{
    /* gates is (n, 4H), blocks i f o g: pre-activations in, activations out;
     * c_prev, c, h are (n, H) */
    for (size_t r = 0; r < (size_t)n; r++) {
        float *g = gates + r * 4 * H, *cr = c + r * H, *hr = h + r * H;
        sigmoid_array(g, g, 3 * (size_t)H);
        nn_tanh_forward(g + 3 * H, g + 3 * H, (size_t)H);
        for (int j = 0; j < H; j++) cr[j] = g[H + j] * c_prev[r * H + j] + g[j] * g[3 * H + j];
        nn_tanh_forward(hr, cr, (size_t)H);
        for (int j = 0; j < H; j++) hr[j] *= g[2 * H + j];
    }
}

void nn_lstm_backward(float *dgates, float *dc_prev, const float *dh, const float *dc,
                      const float *gates, const float *c, const float *c_prev, int n, int H)
{
    /* dh, dc are (n, H); gates (n, 4H) the forward's activations, c and
     * c_prev (n, H); dgates (n, 4H) and dc_prev (n, H) are overwritten */
    for (size_t r = 0; r < (size_t)n; r++) {
        const float *g = gates + r * 4 * H;
        float *dg = dgates + r * 4 * H;
        for (int j = 0; j < H; j++) {
            size_t k = r * H + j;
            float i = g[j], f = g[H + j], o = g[2 * H + j], u = g[3 * H + j];
            float tc = tanhf(c[k]);
            float dct = dc[k] + dh[k] * o * (1.0f - tc * tc);
            dg[j] = dct * u * i * (1.0f - i);
            dg[H + j] = dct * c_prev[k] * f * (1.0f - f);
            dg[2 * H + j] = dh[k] * tc * o * (1.0f - o);
            dg[3 * H + j] = dct * i * (1.0f - u * u);
            dc_prev[k] = dct * f;
        }
    }
}

/* ---- softmax cross-entropy --------------------------------------------------- */

double nn_softmax_xent_forward(float *logits, const int *target, int n, int V, double *row_loss)
{
    /* logits is (n, V), replaced by the probabilities; target (n); row_loss
     * (n) or NULL */
    double loss = 0;
    for (int r = 0; r < n; r++) {
        if (row_loss) row_loss[r] = 0;
        if (target[r] < 0) continue;
        float *x = logits + (size_t)r * V, mx = row_max(x, V);
        double xt = x[target[r]] - mx, sum = 0;
        for (int i = 0; i < V; i++) sum += x[i] = expf(x[i] - mx);
        double term = log(sum) - xt;
        loss += term;
        if (row_loss) row_loss[r] = term;
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < V; i++) x[i] *= inv;
    }
    return loss;
}

void nn_softmax_xent_backward(float *dlogits, const float *probs, const int *target,
                              float scale, int n, int V)
{
    /* probs is (n, V) from the forward, target (n); dlogits (n, V) is
     * overwritten (it may be probs) */
    for (int r = 0; r < n; r++) {
        float *d = dlogits + (size_t)r * V;
        const float *p = probs + (size_t)r * V;
        if (target[r] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int i = 0; i < V; i++) d[i] = scale * p[i];
        d[target[r]] -= scale;
    }
}
