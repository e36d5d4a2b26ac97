/* qnn.h — integer (uint8) kernels of a quantized CNN, as TFLite runs it.
 *
 * Activations are uint8 with a scale and zero point per tensor (real =
 * scale * (q - zero)); weights are integers q - zero_point per output
 * channel, biases int32.  A conv accumulates
 *     acc = bias + sum (x - x_zero) * (w - w_zero)
 * exactly in int32 and requantizes like TFLite: out = out_zero +
 * round(acc * in_scale * w_scale / out_scale), clamped to the fused
 * activation's range (ReLU6: the codes of 0 and 6).  The multiplier is a
 * float32 (TFLite's fixed-point multiplier stands for the same real number);
 * the product is rounded to nearest even, in the portable and the SIMD
 * kernels alike, so the two give the same bytes.  A residual ADD rescales
 * both addends to the output: out = out_zero + round(fa*(a - a_zero) +
 * fb*(b - b_zero)), fa = a_scale/out_scale, fb likewise.
 *
 * Two implementations: a portable C reference (any CPU; slow, the one the
 * tests hold the others to) and AVX-512 VNNI kernels (`vpdpbusd`: 64 u8 x s8
 * multiply-adds per instruction), chosen at run time from the CPU's features
 * and compiled with a target attribute, so the build stays portable.
 */
#ifndef SAT_QNN_H
#define SAT_QNN_H

#include <stddef.h>
#include <stdint.h>

#include "sat/model.h"
#include "sat/nn.h"
#include "sat/util.h"

/* The quantization of one uint8 activation tensor. */
typedef struct {
    float scale;
    int zero;
} qnn_q;

typedef struct {
    nn_conv_geom g;
    int depthwise;          /* depth multiplier out_c / in_c */
    int16_t *w;             /* w - w_zero, TFLite layout: owned (NULL once packed for
                               VNNI), or the pool's (w_pooled) */
    int w_pooled;
    int32_t *bias;          /* owned: [out_c] */
    float *mult;            /* owned: [out_c] in_scale * w_scale / out_scale */
    int x_zero, out_zero, lo, hi;
    float out_scale;
    /* A residual ADD fused into the epilogue: the conv's uint8 result c (in
     * [0, 255], quantized like `mid`) is added to the value already in the
     * output buffer (quantized like `res`); lo/hi are then the ADD's range. */
    int residual, mid_zero, res_zero;
    float fa, fb;
    int mid_lo, mid_hi;
    void *simd;             /* owned: the VNNI kernels' packed weights, or NULL */
} qnn_conv;

/* Integer weights and bias of a conv from the float params (which the
 * importer dequantized: w = w_scale * (q - zero)), with their quantization;
 * the multipliers from the input and output quantization; act is the fused
 * activation.  -1 when the params are not on their quantization grid (e.g.
 * stored as f16) or anything is not quantized.  The integer weights and
 * the VNNI kernels' packed copy come from pool (freed with it, after
 * qnn_conv_free: huge pages) or, when it is NULL, from malloc. */
int qnn_conv_init(qnn_conv *cv, const nn_conv_geom *g, int depthwise, const float *w,
                  const sat_quant *wq, const float *bias, const sat_quant *bq, qnn_q in, qnn_q out,
                  sat_activation act, sat_pool *pool);
/* Fuse a residual ADD after the conv (whose own output quantization, given
 * to qnn_conv_init, becomes `mid`): the other addend's `res`, the ADD's
 * output `out` and activation. */
void qnn_conv_fuse_add(qnn_conv *cv, qnn_q res, qnn_q out, sat_activation act);
void qnn_conv_free(qnn_conv *cv);
/* Bytes of scratch qnn_conv_forward needs. */
size_t qnn_conv_scratch_bytes(const qnn_conv *cv);
/* out: [out_h][out_w][out_c]; with a fused ADD it holds the other addend on
 * entry.  The VNNI kernels when qnn_have_vnni() held at qnn_conv_init (and
 * they can run the conv), else the portable ones. */
void qnn_conv_forward(const qnn_conv *cv, const uint8_t *in, uint8_t *out, void *scratch);

/* out = the ADD of a and b (n elements), clamped to act's range. */
void qnn_add_forward(const uint8_t *a, qnn_q qa, const uint8_t *b, qnn_q qb, size_t n, qnn_q qo,
                     sat_activation act, uint8_t *out);

/* float -> uint8 (round to nearest even, saturate) and back. */
void qnn_quantize(const float *x, size_t n, qnn_q q, uint8_t *out);
void qnn_dequantize(const uint8_t *x, size_t n, qnn_q q, float *out);

/* The codes [*lo, *hi] an activation leaves in a tensor quantized like q. */
void qnn_act_range(sat_activation act, qnn_q q, int *lo, int *hi);

/* Whether the VNNI kernels run: the CPU has AVX-512 F, BW, VL and VNNI and
 * they are not turned off by qnn_use_vnni(0) (the tests compare them with
 * the portable kernels that way: convs planned while it is off run the
 * portable kernels).  qnn_use_vnni returns the old setting. */
int qnn_have_vnni(void);
int qnn_use_vnni(int on);

#endif
