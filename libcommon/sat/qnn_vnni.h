/* qnn_vnni.h — inside qnn: the scalar rounding both implementations share,
 * and the AVX-512 VNNI kernels (qnn_vnni.c). */
#ifndef SAT_QNN_VNNI_H
#define SAT_QNN_VNNI_H

#include <math.h>

#include "sat/qnn.h"

/* Products are clamped before rounding: the result is clamped to [0, 255]
 * anyway, and lrintf (cvtps2dq) stays defined. */
#define QNN_BIG 65536.0f

static inline float qnn_clampf(float v) { return v < -QNN_BIG ? -QNN_BIG : v > QNN_BIG ? QNN_BIG : v; }

static inline int qnn_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* zero + round(acc * mult), clamped to [lo, hi]. */
static inline int qnn_requant1(int32_t acc, float mult, int zero, int lo, int hi)
{
    return qnn_clampi((int)lrintf(qnn_clampf((float)acc * mult)) + zero, lo, hi);
}

/* zero + round(fa * da + fb * db), clamped to [lo, hi]. */
static inline int qnn_add1(int da, float fa, int db, float fb, int zero, int lo, int hi)
{
    return qnn_clampi((int)lrintf(qnn_clampf(fa * (float)da + fb * (float)db)) + zero, lo, hi);
}

/* The input pixel (iy * in_w + ix) that tap (ky, kx) of output pixel (oy, ox)
 * reads, or -1 in the padding. */
static inline long qnn_tap(const nn_conv_geom *g, int oy, int ox, int ky, int kx)
{
    int iy = oy * g->stride_h - g->pad_top + ky * g->dil_h;
    int ix = ox * g->stride_w - g->pad_left + kx * g->dil_w;
    return iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w ? -1 : (long)iy * g->in_w + ix;
}

/* The conv's weights packed for the VNNI kernels, or NULL when they cannot
 * run it (then the portable kernel does). */
void *qnn_vnni_pack(const qnn_conv *cv, sat_pool *pool);
void qnn_vnni_free(void *simd);
size_t qnn_vnni_scratch_bytes(const qnn_conv *cv);
/* qnn_quantize's loop, the same bytes (qnn_have_vnni() only). */
void qnn_vnni_quantize(const float *x, size_t n, float inv, int zero, uint8_t *out);
void qnn_vnni_conv_forward(const qnn_conv *cv, const uint8_t *in, uint8_t *out, void *scratch);

#endif
