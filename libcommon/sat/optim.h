/* optim.h — optimizers over one flat parameter array (llm.c style: the
 * decoder keeps every parameter in one allocation and every gradient in
 * another of the same layout, so an update is one loop).
 *
 * Adam (Kingma & Ba 2015, with bias correction; weight_decay > 0 makes it
 * AdamW: decoupled decay lr·wd·θ), RMSProp (Tieleman & Hinton 2012, the
 * variant without momentum), and clipping by global L2 norm.
 *
 * The moment arrays are public so a trainer can checkpoint and restore them.
 */
#ifndef SAT_OPTIM_H
#define SAT_OPTIM_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    long step;      /* updates done so far (the bias correction uses step) */
    size_t n;
    float *m, *v;   /* first and second moments, n each, zero at start */
} sat_adam;

/* Defaults of the paper: beta1 0.9, beta2 0.999, eps 1e-8, no decay. */
void sat_adam_init(sat_adam *opt, size_t n, float lr);
/* θ ← θ − lr·m̂/(√v̂ + eps) − lr·wd·θ, with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t). */
void sat_adam_update(sat_adam *opt, float *params, const float *grads);
void sat_adam_free(sat_adam *opt);

typedef struct {
    float lr, decay, eps;
    size_t n;
    float *ms;      /* running mean of squared gradients, n, zero at start */
} sat_rmsprop;

/* Defaults: decay 0.9, eps 1e-8 (ms starts at 0, as in Keras/PyTorch). */
void sat_rmsprop_init(sat_rmsprop *opt, size_t n, float lr);
/* ms ← ρ·ms + (1−ρ)·g²;  θ ← θ − lr·g/(√ms + eps). */
void sat_rmsprop_update(sat_rmsprop *opt, float *params, const float *grads);
void sat_rmsprop_free(sat_rmsprop *opt);

/* Either optimizer behind one interface, for a trainer that picks one by
 * name and checkpoints its moments without knowing which it is. */
typedef enum { SAT_OPTIM_ADAM = 0, SAT_OPTIM_RMSPROP } sat_optim_kind;

typedef struct {
    sat_optim_kind kind;
    sat_adam adam;       /* kind SAT_OPTIM_ADAM */
    sat_rmsprop rmsprop; /* kind SAT_OPTIM_RMSPROP */
} sat_optimizer;

void sat_optimizer_init(sat_optimizer *opt, sat_optim_kind kind, size_t n, float lr);
/* One update at learning rate lr (a trainer's schedule may change it). */
void sat_optimizer_update(sat_optimizer *opt, float lr, float *params, const float *grads);
/* One update of elements [lo, hi) of params alone (grads and the moments
 * indexed alike; the others untouched), counted as a step: a data-parallel
 * trainer's share of the step, each process its own slice, the moments of
 * the other slices left as they were until it gathers them. */
void sat_optimizer_update_range(sat_optimizer *opt, float lr, float *params, const float *grads,
                                size_t lo, size_t hi);
/* The moment arrays, n floats each: Adam's m and v, RMSProp's mean square
 * and NULL.  Returns n. */
size_t sat_optimizer_moments(const sat_optimizer *opt, float **first, float **second);
/* Updates done so far (Adam's bias correction counts them); set on resuming. */
void sat_optimizer_set_step(sat_optimizer *opt, long step);
void sat_optimizer_free(sat_optimizer *opt);

/* Sum of the squared gradients (accumulated in double): a slice's part of
 * the global norm's square. */
double sat_grad_sumsq(const float *grads, size_t n);
/* Global L2 norm of the gradient (accumulated in double). */
double sat_grad_norm(const float *grads, size_t n);
/* Scale grads by max_norm / norm when norm > max_norm > 0: clipping a slice
 * by the norm of the whole gradient, found elsewhere. */
void sat_clip_to_norm(float *grads, size_t n, double norm, double max_norm);
/* Scale grads so their global norm is at most max_norm (no-op when it
 * already is, or when max_norm <= 0).  Returns the norm before clipping. */
double sat_clip_grad_norm(float *grads, size_t n, double max_norm);

#endif
