/* nn_reference.h — naive NHWC reference kernels for the kernel and runner
 * tests: plain nested loops in double precision, written from the TFLite
 * definitions, sharing no code with libcommon/nn.c.
 */
#ifndef SAT_NN_REFERENCE_H
#define SAT_NN_REFERENCE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "sat/model.h"

/* Deterministic uniform floats in [-1, 1) (xorshift64*). */
static inline float ref_uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((*s * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}

static inline int ref_rand_int(uint64_t *s, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)((ref_uniform(s) + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

static inline float *ref_random_array(uint64_t *s, size_t n)
{
    float *x = malloc(n * sizeof *x + 1);
    for (size_t i = 0; i < n; i++) x[i] = ref_uniform(s);
    return x;
}

static inline double ref_act(double v, sat_activation act)
{
    if (act == SAT_ACT_RELU) return v > 0 ? v : 0;
    if (act == SAT_ACT_RELU6) return v < 0 ? 0 : v > 6 ? 6 : v;
    return v;
}

/* One spatial axis: output size and leading pad.  SAME: out = ceil(in/s),
 * the padding split with the odd one after; VALID: no padding. */
static inline int ref_axis(int in, int k, int s, int d, sat_padding pad, int *before)
{
    int span = (k - 1) * d + 1;
    if (pad == SAT_PAD_VALID) {
        *before = 0;
        return in >= span ? (in - span) / s + 1 : 0;
    }
    int out = (in + s - 1) / s;
    int total = (out - 1) * s + span - in;
    *before = total > 0 ? total / 2 : 0;
    return out;
}

typedef struct {
    int h, w, c;          /* input */
    int oc, kh, kw;       /* output channels, window */
    int sh, sw, dh, dw;   /* strides, dilations */
    sat_padding pad;
    sat_activation act;
    int depthwise;        /* w is [kh][kw][oc], oc = c * multiplier */
} ref_conv_spec;

/* out [oh][ow][oc]; weights [oc][kh][kw][c] or, depthwise, [kh][kw][oc].
 * Sets *oh, *ow; out must hold them. */
static inline void ref_conv(const ref_conv_spec *p, const float *in, const float *w,
                            const float *bias, float *out, int *oh, int *ow)
{
    int pt, pl;
    *oh = ref_axis(p->h, p->kh, p->sh, p->dh, p->pad, &pt);
    *ow = ref_axis(p->w, p->kw, p->sw, p->dw, p->pad, &pl);
    int mult = p->depthwise ? p->oc / p->c : 1;
    for (int y = 0; y < *oh; y++)
        for (int x = 0; x < *ow; x++)
            for (int o = 0; o < p->oc; o++) {
                double acc = bias ? bias[o] : 0;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int iy = y * p->sh - pt + ky * p->dh, ix = x * p->sw - pl + kx * p->dw;
                        if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                        const float *px = in + ((size_t)iy * p->w + ix) * p->c;
                        if (p->depthwise)
                            acc += (double)px[o / mult] * w[(ky * p->kw + kx) * p->oc + o];
                        else
                            for (int i = 0; i < p->c; i++)
                                acc += (double)px[i] * w[((o * p->kh + ky) * p->kw + kx) * p->c + i];
                    }
                out[((size_t)y * *ow + x) * p->oc + o] = (float)ref_act(acc, p->act);
            }
}

/* Largest |a-b| / (1 + |b|) over n floats. */
static inline double ref_max_rel_err(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (isnan(e)) return INFINITY;
        if (e > worst) worst = e;
    }
    return worst;
}

#endif
