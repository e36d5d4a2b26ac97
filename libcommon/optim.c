/* optim.c — see optim.h. */
#include "sat/optim.h"

#include <math.h>
#include <stdlib.h>

#include "sat/util.h"

void sat_adam_init(sat_adam *opt, size_t n, float lr)
{
    *opt = (sat_adam){ .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .n = n };
    opt->m = sat_xcalloc(n, sizeof(float));
    opt->v = sat_xcalloc(n, sizeof(float));
}

/* Adam's update of elements [lo, hi) (its step already counted). */
static void adam_range(sat_adam *opt, float *params, const float *grads, size_t lo, size_t hi)
{
    float b1 = opt->beta1, b2 = opt->beta2;
    float c1 = 1.0f / (float)(1.0 - pow(b1, (double)opt->step));
    float c2 = 1.0f / (float)(1.0 - pow(b2, (double)opt->step));
    for (size_t i = lo; i < hi; i++) {
        float g = grads[i];
        float m = opt->m[i] = b1 * opt->m[i] + (1.0f - b1) * g;
        float v = opt->v[i] = b2 * opt->v[i] + (1.0f - b2) * g * g;
        params[i] -= opt->lr * (m * c1 / (sqrtf(v * c2) + opt->eps) + opt->weight_decay * params[i]);
    }
}

void sat_adam_update(sat_adam *opt, float *params, const float *grads)
{
    opt->step++;
    adam_range(opt, params, grads, 0, opt->n);
}

void sat_adam_free(sat_adam *opt)
{
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
}

void sat_rmsprop_init(sat_rmsprop *opt, size_t n, float lr)
{
    *opt = (sat_rmsprop){ .lr = lr, .decay = 0.9f, .eps = 1e-8f, .n = n };
    opt->ms = sat_xcalloc(n, sizeof(float));
}

static void rmsprop_range(sat_rmsprop *opt, float *params, const float *grads, size_t lo, size_t hi)
{
    float rho = opt->decay;
    for (size_t i = lo; i < hi; i++) {
        float g = grads[i];
        float ms = opt->ms[i] = rho * opt->ms[i] + (1.0f - rho) * g * g;
        params[i] -= opt->lr * g / (sqrtf(ms) + opt->eps);
    }
}

void sat_rmsprop_update(sat_rmsprop *opt, float *params, const float *grads)
{
    rmsprop_range(opt, params, grads, 0, opt->n);
}

void sat_rmsprop_free(sat_rmsprop *opt)
{
    free(opt->ms);
    opt->ms = NULL;
}

void sat_optimizer_init(sat_optimizer *opt, sat_optim_kind kind, size_t n, float lr)
{
    *opt = (sat_optimizer){.kind = kind};
    if (kind == SAT_OPTIM_RMSPROP) sat_rmsprop_init(&opt->rmsprop, n, lr);
    else sat_adam_init(&opt->adam, n, lr);
}

void sat_optimizer_update(sat_optimizer *opt, float lr, float *params, const float *grads)
{
    sat_optimizer_update_range(opt, lr, params, grads, 0,
                               opt->kind == SAT_OPTIM_RMSPROP ? opt->rmsprop.n : opt->adam.n);
}

void sat_optimizer_update_range(sat_optimizer *opt, float lr, float *params, const float *grads,
                                size_t lo, size_t hi)
{
    if (opt->kind == SAT_OPTIM_RMSPROP) {
        opt->rmsprop.lr = lr;
        rmsprop_range(&opt->rmsprop, params, grads, lo, hi);
    } else {
        opt->adam.lr = lr;
        opt->adam.step++;
        adam_range(&opt->adam, params, grads, lo, hi);
    }
}

size_t sat_optimizer_moments(const sat_optimizer *opt, float **first, float **second)
{
    if (opt->kind == SAT_OPTIM_RMSPROP) {
        *first = opt->rmsprop.ms;
        *second = NULL;
        return opt->rmsprop.n;
    }
    *first = opt->adam.m;
    *second = opt->adam.v;
    return opt->adam.n;
}

void sat_optimizer_set_step(sat_optimizer *opt, long step)
{
    opt->adam.step = step;
}

void sat_optimizer_free(sat_optimizer *opt)
{
    if (opt->kind == SAT_OPTIM_RMSPROP) sat_rmsprop_free(&opt->rmsprop);
    else sat_adam_free(&opt->adam);
}

double sat_grad_sumsq(const float *grads, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sum;
}

double sat_grad_norm(const float *grads, size_t n)
{
    return sqrt(sat_grad_sumsq(grads, n));
}

void sat_clip_to_norm(float *grads, size_t n, double norm, double max_norm)
{
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) grads[i] *= scale;
    }
}

double sat_clip_grad_norm(float *grads, size_t n, double max_norm)
{
    double norm = sat_grad_norm(grads, n);
    sat_clip_to_norm(grads, n, norm, max_norm);
    return norm;
}
