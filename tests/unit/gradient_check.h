/* gradient_check.h — what the gradient tests (test_nn_layers.c,
 * test_decoder.c, test_hard.c) share: random fills, central differences
 * checked at two step sizes, and the SIMD switch as cmocka group setups.
 * Include after cmocka.h.
 *
 * "Double-checked": each entry's central difference is taken at two step
 * sizes, EPS and 2·EPS, and the analytic gradient must match both, so a
 * pass also shows the difference itself was sound (float noise grows as the
 * step shrinks, curvature error as it grows).  The forward pass is float:
 * EPS = 2e-3 keeps the noise near 1/4 of the tolerance. */
#ifndef SAT_TEST_GRADIENT_CHECK_H
#define SAT_TEST_GRADIENT_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sat/nn_simd.h"
#include "sat/rng.h"

#define EPS 2e-3f
#define RTOL 1e-2
#define ATOL 5e-4

static inline void fill_random(float *x, size_t n, float lo, float hi, sat_rng *rng)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * sat_rng_uniform(rng);
}

typedef double (*scalar_fn)(void *ctx);

static inline double central_difference(scalar_fn f, void *ctx, float *x, float eps)
{
    float old = *x;
    float up = old + eps, down = old - eps;
    *x = up;
    double fu = f(ctx);
    *x = down;
    double fd = f(ctx);
    *x = old;
    return (fu - fd) / ((double)up - (double)down);
}

/* Checks grad[i] for all i (n <= all_below) or a random `sample` of them. */
static inline void check_gradient(const char *what, scalar_fn f, void *ctx, float *x,
                                  const float *grad, size_t n, size_t all_below, int sample,
                                  sat_rng *rng)
{
    int count = n <= all_below ? (int)n : sample;
    double worst = 0;
    for (int s = 0; s < count; s++) {
        size_t i = n <= all_below ? (size_t)s : sat_rng_below(rng, (uint32_t)n);
        double a = grad[i];
        for (float eps = EPS; eps <= 2 * EPS; eps *= 2) {
            double num = central_difference(f, ctx, x + i, eps);
            double err = fabs(a - num), tol = ATOL + RTOL * fmax(fabs(a), fabs(num));
            if (err > tol) fail_msg("%s[%zu]: analytic %.6g, numeric %.6g (step %g)", what, i, a, num, eps);
            worst = fmax(worst, err / tol);
        }
    }
    if (getenv("SAT_TEST_VERBOSE")) printf("  %-10s %4d entries, worst error/tolerance %.3f\n", what, count, worst);
}

/* Σ r·y in double: the scalar every layer test differentiates. */
static inline double weighted_sum(const float *y, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * r[i];
    return s;
}

/* Group setups: every test of a group with the SIMD paths (the default), or
 * with the portable C paths only (nn_simd.h), the switch back on after. */
static inline int simd_on(void **state)
{
    (void)state;
    nn_use_simd(1);
    return 0;
}

static inline int simd_off(void **state)
{
    (void)state;
    nn_use_simd(0);
    return 0;
}

/* Runs tests under both settings of the switch; returns the failures. */
#define run_tests_simd_on_and_off(tests)                                          \
    (cmocka_run_group_tests_name("SIMD on", tests, simd_on, NULL) +              \
     cmocka_run_group_tests_name("SIMD off", tests, simd_off, simd_on))

#endif
