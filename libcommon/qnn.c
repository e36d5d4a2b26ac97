/* qnn.c — see qnn.h.  The portable reference kernels, the integer weights
 * and the shared rounding; the AVX-512 VNNI kernels are in qnn_vnni.c. */
#include "sat/qnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/qnn_vnni.h"
#include "sat/util.h"

static int vnni_wanted = 1;

static int cpu_has_vnni(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

int qnn_use_vnni(int on)
{
    int old = vnni_wanted;
    vnni_wanted = on;
    return old;
}

int qnn_have_vnni(void)
{
    return vnni_wanted && cpu_has_vnni();
}

void qnn_act_range(sat_activation act, qnn_q q, int *lo, int *hi)
{
    *lo = 0;
    *hi = 255;
    if (act == SAT_ACT_NONE) return;
    long zero = q.zero;
    if (zero > *lo) *lo = (int)zero;
    if (act == SAT_ACT_RELU6) {
        long six = zero + lrint(6.0 / q.scale);
        if (six < *hi) *hi = six < *lo ? *lo : (int)six;
    }
}

void qnn_quantize(const float *x, size_t n, qnn_q q, uint8_t *out)
{
    float inv = 1.0f / q.scale;
    if (qnn_have_vnni()) {
        qnn_vnni_quantize(x, n, inv, q.zero, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float v = qnn_clampf(x[i] * inv);
        long r = lrintf(v) + q.zero;
        out[i] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
    }
}

void qnn_dequantize(const uint8_t *x, size_t n, qnn_q q, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = q.scale * (float)(x[i] - q.zero);
}

void qnn_add_forward(const uint8_t *a, qnn_q qa, const uint8_t *b, qnn_q qb, size_t n, qnn_q qo,
                     sat_activation act, uint8_t *out)
{
    int lo, hi;
    qnn_act_range(act, qo, &lo, &hi);
    float fa = qa.scale / qo.scale, fb = qb.scale / qo.scale;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)qnn_add1(a[i] - qa.zero, fa, b[i] - qb.zero, fb, qo.zero, lo, hi);
}

/* ---- conv: integer weights ---- */

/* Scale and zero point of output channel n (per tensor: one for all). */
static float quant_scale(const sat_quant *q, int n) { return q->scale[q->n == 1 ? 0 : n]; }
static int quant_zero(const sat_quant *q, int n) { return q->zero_point[q->n == 1 ? 0 : n]; }

/* w / scale back to the integer it was dequantized from; -1 off the grid.
 * In float, by the reciprocal of the channel's scale: a weight on the grid
 * comes within 255 * 2^-23 of its integer, far inside the 0.05 allowed, and
 * (x + 1.5 * 2^23) - 1.5 * 2^23 rounds it to nearest as nearbyintf would
 * (|x| < 2^22; beyond, the 255 bound refuses it anyway).  A loop without
 * calls or branches: the encoder's 3.5 M weights take ~2 ms at start-up. */
static int weights_to_int(qnn_conv *cv, const float *w, const sat_quant *wq, sat_pool *pool)
{
    const nn_conv_geom *g = &cv->g;
    int axis = cv->depthwise ? 3 : 0;
    if (wq->n < 1 || (wq->n > 1 && (wq->n != g->out_c || wq->axis != axis))) return -1;
    /* [O][KH][KW][I]: a row per output channel; [1][KH][KW][C]: a column per channel. */
    size_t out_c = (size_t)g->out_c, taps = (size_t)g->k_h * g->k_w;
    size_t rows = cv->depthwise ? taps : out_c, cols = cv->depthwise ? out_c : taps * (size_t)g->in_c;
    float *inv = sat_xmalloc(out_c * sizeof *inv);
    for (size_t n = 0; n < out_c; n++) inv[n] = (float)(1.0 / quant_scale(wq, (int)n));
    cv->w_pooled = pool != NULL;
    cv->w = pool ? sat_pool_zalloc(pool, rows * cols * sizeof *cv->w) : sat_xmalloc(rows * cols * sizeof *cv->w);
    const float magic = 12582912.0f;
    int off_grid = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        int16_t *out = cv->w + r * cols;
        for (size_t c = 0; c < cols; c++) {
            float x = wr[c] * inv[cv->depthwise ? c : r];
            float q = (x + magic) - magic;
            int ok = fabsf(x - q) <= 0.05f && fabsf(q) <= 255.0f;
            off_grid |= !ok;
            out[c] = (int16_t)(ok ? q : 0.0f);
        }
    }
    free(inv);
    return off_grid ? -1 : 0;
}

static int bias_to_int(qnn_conv *cv, const float *bias, const sat_quant *bq)
{
    int n = cv->g.out_c;
    cv->bias = sat_xcalloc((size_t)n, sizeof *cv->bias);
    if (!bias) return 0;
    if (!bq || bq->n < 1 || (bq->n > 1 && bq->n != n)) return -1;
    for (int c = 0; c < n; c++) {
        double q = nearbyint((double)bias[c] / quant_scale(bq, c));
        if (fabs(q) > 1 << 30) return -1;
        cv->bias[c] = (int32_t)q;
    }
    return 0;
}

static int zero_ok(qnn_q q) { return q.zero >= 0 && q.zero <= 255 && isfinite(q.scale) && q.scale > 0; }

int qnn_conv_init(qnn_conv *cv, const nn_conv_geom *g, int depthwise, const float *w,
                  const sat_quant *wq, const float *bias, const sat_quant *bq, qnn_q in, qnn_q out,
                  sat_activation act, sat_pool *pool)
{
    memset(cv, 0, sizeof *cv);
    cv->g = *g;
    cv->depthwise = depthwise ? g->out_c / g->in_c : 0;
    if (!zero_ok(in) || !zero_ok(out) || (depthwise && g->out_c % g->in_c)) return -1;
    if (weights_to_int(cv, w, wq, pool) < 0 || bias_to_int(cv, bias, bq) < 0) return -1;
    for (int n = 0; n < g->out_c; n++)
        if (quant_zero(wq, n) < -255 || quant_zero(wq, n) > 255) return -1;
    cv->mult = sat_xmalloc((size_t)g->out_c * sizeof *cv->mult);
    for (int n = 0; n < g->out_c; n++)
        cv->mult[n] = (float)((double)in.scale * quant_scale(wq, n) / out.scale);
    cv->x_zero = in.zero;
    cv->out_zero = out.zero;
    cv->out_scale = out.scale;
    qnn_act_range(act, out, &cv->lo, &cv->hi);
    cv->mid_lo = cv->lo;
    cv->mid_hi = cv->hi;
    cv->mid_zero = cv->out_zero;
    if (qnn_have_vnni()) cv->simd = qnn_vnni_pack(cv, pool);
    if (cv->simd && !cv->w_pooled) { /* the packed copy is all the VNNI kernels read */
        free(cv->w);
        cv->w = NULL;
    }
    return 0;
}

void qnn_conv_fuse_add(qnn_conv *cv, qnn_q res, qnn_q out, sat_activation act)
{
    cv->residual = 1;
    cv->res_zero = res.zero;
    cv->fa = cv->out_scale / out.scale;
    cv->fb = res.scale / out.scale;
    cv->out_zero = out.zero;
    qnn_act_range(act, out, &cv->lo, &cv->hi);
}

void qnn_conv_free(qnn_conv *cv)
{
    if (!cv->w_pooled) free(cv->w);
    free(cv->bias);
    free(cv->mult);
    qnn_vnni_free(cv->simd);
    memset(cv, 0, sizeof *cv);
}

size_t qnn_conv_scratch_bytes(const qnn_conv *cv)
{
    return cv->simd ? qnn_vnni_scratch_bytes(cv) : 0;
}

/* ---- conv: the portable reference ---- */

/* acc of output pixel (oy, ox), channel n, from the definition. */
static int32_t conv_acc(const qnn_conv *cv, const uint8_t *in, int oy, int ox, int n)
{
    const nn_conv_geom *g = &cv->g;
    int32_t acc = cv->bias[n];
    for (int ky = 0; ky < g->k_h; ky++)
        for (int kx = 0; kx < g->k_w; kx++) {
            long pix = qnn_tap(g, oy, ox, ky, kx);
            if (pix < 0) continue;
            const uint8_t *px = in + (size_t)pix * g->in_c;
            size_t tap = (size_t)ky * g->k_w + kx;
            if (cv->depthwise) {
                acc += (px[n / cv->depthwise] - cv->x_zero) * cv->w[tap * g->out_c + n];
                continue;
            }
            const int16_t *wr = cv->w + ((size_t)n * g->k_h * g->k_w + tap) * g->in_c;
            for (int c = 0; c < g->in_c; c++) acc += (px[c] - cv->x_zero) * wr[c];
        }
    return acc;
}

static void conv_portable(const qnn_conv *cv, const uint8_t *in, uint8_t *out)
{
    const nn_conv_geom *g = &cv->g;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++) {
            uint8_t *o = out + ((size_t)oy * g->out_w + ox) * g->out_c;
            for (int n = 0; n < g->out_c; n++) {
                int c = qnn_requant1(conv_acc(cv, in, oy, ox, n), cv->mult[n], cv->mid_zero,
                                     cv->mid_lo, cv->mid_hi);
                if (cv->residual)
                    c = qnn_add1(c - cv->mid_zero, cv->fa, o[n] - cv->res_zero, cv->fb, cv->out_zero,
                                 cv->lo, cv->hi);
                o[n] = (uint8_t)c;
            }
        }
}

void qnn_conv_forward(const qnn_conv *cv, const uint8_t *in, uint8_t *out, void *scratch)
{
    if (cv->simd)
        qnn_vnni_conv_forward(cv, in, out, scratch);
    else
        conv_portable(cv, in, out);
}
