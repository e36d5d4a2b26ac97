/* nn.h — NN kernels on NHWC float tensors (batch 1 for the CNN).
 *
 * Each op is a `nn_<op>_forward` (and, for the decoder's layers, an
 * `nn_<op>_backward`); shapes are given in the comments.  Padding is TFLite
 * SAME: out = ceil(in / stride); total pad = max((out-1)*stride + (k-1)*dil + 1 - in, 0),
 * with pad_before = total / 2 (the extra row/column goes at the bottom/right).
 */
#ifndef SAT_NN_H
#define SAT_NN_H

#include "model.h"

/* Output size and leading padding of one spatial dimension. */
int nn_out_size(int in, int k, int stride, int dilation, sat_padding pad);
int nn_pad_before(int in, int k, int stride, int dilation, sat_padding pad);

/* Clamp in place: RELU -> max(x,0), RELU6 -> min(max(x,0),6). */
void nn_activate(float *x, size_t n, sat_activation act);

#endif
