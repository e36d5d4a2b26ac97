/* nn_layers.h — the attention LSTM decoder's layers (decoder.c), forward and
 * backward, on row-major float matrices: rows are captions or hypotheses.
 *
 * Backward functions ADD into their d-outputs unless said otherwise; a
 * d-output may be NULL when it is not wanted.  Products go through OpenBLAS
 * (cblas_sgemm), except nn_linear_rows; the tanh (attention scores, LSTM,
 * gates) has an AVX2 path taken as nn_simd.h says.  The shapes are written
 * at the top of each function's body in nn_layers.c.
 */
#ifndef SAT_NN_LAYERS_H
#define SAT_NN_LAYERS_H

#include <stddef.h>

/* y = tanh(x) elementwise over n floats (y may be x); backward: dx = dy ⊙
 * (1 − y²) from the forward's y (overwrites; dx may be dy).  The AVX2 tanh is
 * a rational approximation (error ~1e-7); the scalar path uses tanhf. */
void nn_tanh_forward(float *y, const float *x, size_t n);
void nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n);

/* y (n×out, row stride ldy) = x (n×in, row stride ldx)·W (in×out) + b (b may be NULL). */
void nn_linear_forward(float *y, int ldy, const float *x, int ldx, const float *W,
                       const float *b, int n, int in, int out);
/* y += x·W, in one GEMM (beta = 1); its backward is nn_linear_backward's. */
void nn_linear_add(float *y, int ldy, const float *x, int ldx, const float *W, int n, int in,
                   int out);
/* nn_linear_forward for inference, where a row's result must not depend on
 * the other rows: OpenBLAS's sgemm gives a row other bits in a GEMM of
 * another height (edge kernels, the split among threads), so captions
 * stepped together would differ from captions stepped alone.  Here every
 * element is b (if not NULL) plus one fused multiply-add chain over the `in`
 * products in order, on every CPU and on either path; single-threaded.
 * y must not overlap x. */
void nn_linear_rows(float *y, int ldy, const float *x, int ldx, const float *W,
                    const float *b, int n, int in, int out);
/* The same with W as IEEE half-precision bits (in×out, any alignment): the
 * bits of nn_linear_rows on W converted to float, from half the memory. */
void nn_linear_rows_f16(float *y, int ldy, const float *x, int ldx, const void *W16,
                        const float *b, int n, int in, int out);
/* dx (n×in, row stride lddx) += dy·Wᵀ (dy: n×out, row stride lddy; W:
 * in×out): nn_linear_backward's dx alone, for the few rows of a training
 * step.  With AVX-512 each element is one dot product of a row of dy and a
 * row of W, read where they lie: no copy of W is packed on every call, and
 * a row's numbers do not depend on the other rows; otherwise OpenBLAS. */
void nn_linear_rows_dx(float *dx, int lddx, const float *dy, int lddy, const float *W, int n,
                       int in, int out);
/* dx (row stride lddx) += dy·Wᵀ, dW += xᵀ·dy, db += Σ_rows dy. */
void nn_linear_backward(float *dx, int lddx, float *dW, float *db, const float *dy, int ldy,
                        const float *x, int ldx, const float *W, int n, int in, int out);

/* Attention scores: e[r][i] = v · tanh(proj[img[r]][i] + q[r]); proj is
 * n_img×L×A, q n×A, v A, e n×L.  The backward recomputes the tanh. */
void nn_attention_forward(float *e, const float *proj, const int *img, const float *q,
                          const float *v, int n, int L, int A);
void nn_attention_backward(float *dproj, float *dq, float *dv, const float *de,
                           const float *proj, const int *img, const float *q,
                           const float *v, int n, int L, int A);

/* Softmax of beta*x over each of `rows` rows of n: in [rows][n] -> out [rows][n]
 * (out may be in). */
void nn_softmax_forward(const float *in, int rows, int n, float beta, float *out);
/* Backward of the row softmax y = nn_softmax_forward(x) at beta 1, n×m: it
 * OVERWRITES dx (which may be dy) with the gradient from dy and y. */
void nn_softmax_backward(float *dx, const float *dy, const float *y, int n, int m);
/* x (n×V) replaced by its row log-softmax (inference only: no backward). */
void nn_log_softmax_forward(float *x, int n, int V);

/* Context z[r] = Σ_i alpha[r][i] feats[img[r]][i]  (alpha n×L, z n×D):
 * one GEMM per run of rows with the same image.  Backward gives dalpha only
 * (the annotations are inputs, not trained). */
void nn_context_forward(float *z, const float *alpha, const float *feats, const int *img,
                        int n, int L, int D);
void nn_context_backward(float *dalpha, const float *dz, const float *feats, const int *img,
                         int n, int L, int D);

/* Gate: beta[r] = σ(h[r]·w + b), zhat[r] (row stride ldz) = beta[r]·z[r]
 * (h n×H, z n×D). */
void nn_gate_forward(float *beta, float *zhat, int ldz, const float *h, const float *w,
                     const float *b, const float *z, int n, int H, int D);
void nn_gate_backward(float *dh, float *dw, float *db, float *dz, const float *dzhat, int ldz,
                      const float *beta, const float *h, const float *w, const float *z,
                      int n, int H, int D);

/* LSTM pointwise part: gates (n×4H, blocks i f o g) hold the pre-activations
 * on entry and the activations on return; c = f⊙c_prev + i⊙g, h = o⊙tanh(c).
 * The backward OVERWRITES dgates (pre-activation gradients) and dc_prev
 * (which may be dc) from dh and dc, the gradients at h and c. */
void nn_lstm_forward(float *gates, float *c, float *h, const float *c_prev, int n, int H);
void nn_lstm_backward(float *dgates, float *dc_prev, const float *dh, const float *dc,
                      const float *gates, const float *c, const float *c_prev, int n, int H);

/* Softmax cross-entropy over rows of logits (n×V), replaced by the
 * probabilities; rows with target < 0 are skipped.  Returns Σ −log p(target),
 * and each row's term in row_loss (0 on skipped rows) when it is not NULL.
 * Backward: dlogits = scale·(p − onehot), 0 on skipped rows (overwrites;
 * dlogits may be probs). */
double nn_softmax_xent_forward(float *logits, const int *target, int n, int V, double *row_loss);
void nn_softmax_xent_backward(float *dlogits, const float *probs, const int *target,
                              float scale, int n, int V);

#endif
