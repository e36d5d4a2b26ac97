/* nn.h — NN kernels on NHWC float tensors (batch 1 for the CNN).
 *
 * Each op is a `nn_<op>_forward`, the shapes given in the comments (the
 * decoder's layers, forward and backward, are in nn_layers.h).  Padding is TFLite
 * SAME: out = ceil(in / stride); total pad = max((out-1)*stride + (k-1)*dil + 1 - in, 0),
 * with pad_before = total / 2 (the extra row/column goes at the bottom/right).
 *
 * The convolutions take a bias (NULL = none) and a fused activation applied
 * in the same pass.  Wide dense products go through OpenBLAS (cblas_sgemm),
 * whose thread count is the caller's business; small ones (few input
 * channels) and the depthwise convolution have their own kernels, with an
 * AVX2/FMA path chosen at run time and a portable C path.  nn_conv picks the
 * kernel for a convolution once; the nn_*_forward functions below it are
 * the kernels themselves.  nn_use_simd (nn_simd.h, included) turns the
 * AVX2 paths off.
 */
#ifndef SAT_NN_H
#define SAT_NN_H

#include <stddef.h>

#include "sat/model.h"
#include "sat/nn_simd.h"

/* Output size and leading padding of one spatial dimension.
 * nn_out_size is 0 when a VALID window does not fit in the input. */
int nn_out_size(int in, int k, int stride, int dilation, sat_padding pad);
int nn_pad_before(int in, int k, int stride, int dilation, sat_padding pad);

/* Clamp in place: RELU -> max(x,0), RELU6 -> min(max(x,0),6). */
void nn_activate(float *x, size_t n, sat_activation act);

/* Geometry of one convolution (regular or depthwise) on one NHWC image. */
typedef struct {
    int in_h, in_w, in_c;    /* input  [in_h][in_w][in_c] */
    int out_h, out_w, out_c; /* output [out_h][out_w][out_c] */
    int k_h, k_w;
    int stride_h, stride_w;
    int dil_h, dil_w;
    int pad_top, pad_left;   /* leading zero padding; the rest is implied */
} nn_conv_geom;

/* Fill *g for a k_h x k_w window over an in_h x in_w x in_c input giving
 * out_c channels.  Returns 0, or -1 if the output would be empty (VALID
 * window larger than the input) or an argument is not positive. */
int nn_conv_geom_init(nn_conv_geom *g, int in_h, int in_w, int in_c, int out_c,
                      int k_h, int k_w, int stride_h, int stride_w,
                      int dil_h, int dil_w, sat_padding pad);

/* Any convolution, by im2col over chunks of output pixels and sgemm.
 * in [in_h][in_w][in_c], w [out_c][k_h][k_w][in_c], bias [out_c]
 * -> out [out_h][out_w][out_c].  scratch: nn_conv2d_scratch_floats(g) floats. */
size_t nn_conv2d_scratch_floats(const nn_conv_geom *g);
void nn_conv2d_forward(const nn_conv_geom *g, const float *in, const float *w,
                       const float *bias, sat_activation act, float *out, float *scratch);

/* 1x1 convolution (k_h = k_w = 1, any stride) as a GEMM:
 * out[p][o] = sum_i in[p'][i] * w[o][i] + bias[o], p' the input pixel under p.
 * in [in_h][in_w][in_c], w [out_c][in_c] -> out [out_h][out_w][out_c].
 * accumulate != 0: out already holds a tensor of the output's shape that is
 * added to the product (a residual ADD folded into the GEMM, beta = 1);
 * the activation is applied after that sum.  out must not overlap in. */
void nn_pointwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out, int accumulate);

/* Depthwise convolution, any window, depth multiplier m = out_c / in_c:
 * out[y][x][c*m+j] = sum_{ky,kx} in[y'][x'][c] * w[ky][kx][c*m+j] + bias[c*m+j].
 * in [in_h][in_w][in_c], w [k_h][k_w][out_c] -> out [out_h][out_w][out_c]. */
void nn_depthwise_forward(const nn_conv_geom *g, const float *in, const float *w,
                          const float *bias, sat_activation act, float *out);

/* A convolution ready to run: its geometry, weights and the kernel chosen
 * for them, with the weights repacked when that kernel needs it. */
typedef enum {
    NN_KERNEL_AUTO = 0,  /* nn_conv_init chooses: DEPTHWISE for a depthwise conv; with
                          * AVX2, DIRECT where it fits (1x1: up to 64 input
                          * channels); else GEMM for 1x1, IM2COL for the rest */
    NN_KERNEL_GEMM,      /* 1x1: nn_pointwise_forward (OpenBLAS) */
    NN_KERNEL_DIRECT,    /* 1x1, or <= 25 taps of <= 64 input channels: tiles of
                          * pixels x channels in registers, packed weights */
    NN_KERNEL_IM2COL,    /* any: nn_conv2d_forward */
    NN_KERNEL_DEPTHWISE, /* nn_depthwise_forward */
} nn_kernel;

typedef struct {
    nn_conv_geom g;
    nn_kernel kernel;
    sat_activation act;
    const float *w, *bias; /* the caller's, TFLite layout */
    float *packed;         /* owned: weights and bias repacked, or NULL */
} nn_conv;

/* depthwise: w is [k_h][k_w][out_c], else [out_c][k_h][k_w][in_c].  kernel:
 * NN_KERNEL_AUTO, or one to force (tests).  -1 if that kernel cannot run
 * this convolution.  w and bias must outlive cv. */
int nn_conv_init(nn_conv *cv, const nn_conv_geom *g, int depthwise, const float *w,
                 const float *bias, sat_activation act, nn_kernel kernel);
void nn_conv_free(nn_conv *cv);
/* Whether nn_conv_forward may be asked to accumulate (GEMM and DIRECT). */
int nn_conv_can_accumulate(const nn_conv *cv);
size_t nn_conv_scratch_floats(const nn_conv *cv);
/* in, out as for the kernel; accumulate: as nn_pointwise_forward (only
 * where nn_conv_can_accumulate); scratch: nn_conv_scratch_floats floats. */
void nn_conv_forward(const nn_conv *cv, const float *in, float *out, int accumulate,
                     float *scratch);

/* out[i] = act(a[i] + b[i]) for n floats; out may be a or b. */
void nn_add_forward(const float *a, const float *b, size_t n, sat_activation act, float *out);

/* Global average: in [hw][c] -> out [c]. */
void nn_mean_pool_forward(const float *in, int hw, int c, float *out);

#endif
