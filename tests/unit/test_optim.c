/* test_optim.c — Adam, RMSProp and gradient clipping against values worked
 * out by hand from the update rules, and the same in slices (a data-parallel
 * trainer's sharded step); the PRNG against its reference outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/optim.h"
#include "sat/rng.h"

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > tol) fail_msg("[%d]: got %.9g, want %.9g", i, got[i], want[i]);
}

/* Step 1: m̂ = g, v̂ = g², so θ moves by lr·g/(|g| + eps) ≈ lr·sign(g), and not
 * at all where g = 0.  Step 2 (g2): m = 0.9·0.1·g1 + 0.1·g2, v = 0.999·0.001·g1²
 * + 0.001·g2², m̂ = m/0.19, v̂ = v/0.001999; e.g. entry 2: m̂ = 0.1/0.19 =
 * 0.526316, v̂ = 0.001/0.001999 = 0.500250, step 0.1·0.526316/0.707284 = 0.074414. */
static void test_adam_two_steps(void **state)
{
    (void)state;
    float theta[4] = { 1.0f, -2.0f, 0.5f, 3.0f };
    const float g1[4] = { 0.5f, -0.1f, 0.0f, 2.0f }, g2[4] = { 0.5f, 0.1f, 1.0f, -2.0f };
    sat_adam opt;
    sat_adam_init(&opt, 4, 0.1f);
    sat_adam_update(&opt, theta, g1);
    assert_close(theta, (const double[]){ 0.9, -1.9, 0.5, 2.9 }, 4, 1e-6);
    sat_adam_update(&opt, theta, g2);
    assert_close(theta, (const double[]){ 0.8, -1.9052632, 0.4255863, 2.9052632 }, 4, 1e-6);
    assert_int_equal(opt.step, 2);
    sat_adam_free(&opt);
}

/* Decoupled weight decay: with g = 0 the moments stay 0 and θ ← θ(1 − lr·wd). */
static void test_adam_weight_decay(void **state)
{
    (void)state;
    float theta[2] = { 2.0f, -1.0f };
    const float g[2] = { 0, 0 };
    sat_adam opt;
    sat_adam_init(&opt, 2, 0.1f);
    opt.weight_decay = 0.5f;
    sat_adam_update(&opt, theta, g);
    assert_close(theta, (const double[]){ 1.9, -0.95 }, 2, 1e-7);
    sat_adam_free(&opt);
}

/* ms = 0.1·g² after one step, so θ moves by lr·g/(√0.1·|g|) = lr·sign(g)·3.162278;
 * then entry 0: ms = 0.9·0.004 + 0.1·0.04 = 0.0076, step 0.01·0.2/0.0871780. */
static void test_rmsprop_two_steps(void **state)
{
    (void)state;
    float theta[2] = { 1.0f, -2.0f };
    sat_rmsprop opt;
    sat_rmsprop_init(&opt, 2, 0.01f);
    sat_rmsprop_update(&opt, theta, (const float[]){ 0.2f, -0.4f });
    assert_close(theta, (const double[]){ 0.9683772, -1.9683772 }, 2, 1e-6);
    sat_rmsprop_update(&opt, theta, (const float[]){ 0.2f, 0.0f });
    assert_close(theta, (const double[]){ 0.9454357, -1.9683772 }, 2, 1e-6);
    sat_rmsprop_free(&opt);
}

static void test_clip_grad_norm(void **state)
{
    (void)state;
    float g[3] = { 3.0f, 0.0f, -4.0f };
    assert_true(fabs(sat_grad_norm(g, 3) - 5.0) < 1e-12);
    assert_true(fabs(sat_clip_grad_norm(g, 3, 1.0) - 5.0) < 1e-12); /* norm before */
    assert_close(g, (const double[]){ 0.6, 0.0, -0.8 }, 3, 1e-7);
    assert_true(fabs(sat_grad_norm(g, 3) - 1.0) < 1e-6);
    float before[3] = { g[0], g[1], g[2] };
    sat_clip_grad_norm(g, 3, 2.0); /* under the limit: untouched */
    assert_memory_equal(g, before, sizeof g);
    g[0] = 30.0f, before[0] = 30.0f;
    sat_clip_grad_norm(g, 3, 0.0); /* 0: no clipping */
    assert_memory_equal(g, before, sizeof g);
}

enum { NS = 7, CUT = 3 };

/* Two "ranks" each updating its slice [0, CUT) or [CUT, NS) of the same
 * parameters, over two steps, then putting the slices together: the
 * parameters and moments of one whole update, bit for bit. */
static void sliced_equals_whole(sat_optim_kind kind)
{
    float whole[NS], part[2][NS];
    const float g[2][NS] = {{0.5f, -0.1f, 0.0f, 2.0f, 0.3f, -1.5f, 0.01f},
                            {0.4f, 0.2f, 1.0f, -2.0f, 0.0f, 0.7f, -0.03f}};
    for (int i = 0; i < NS; i++) whole[i] = part[0][i] = part[1][i] = 0.1f * (float)i - 0.2f;
    sat_optimizer one, two[2];
    sat_optimizer_init(&one, kind, NS, 0.01f);
    for (int r = 0; r < 2; r++) sat_optimizer_init(&two[r], kind, NS, 0.01f);
    for (int step = 0; step < 2; step++) {
        sat_optimizer_update(&one, 0.01f, whole, g[step]);
        sat_optimizer_update_range(&two[0], 0.01f, part[0], g[step], 0, CUT);
        sat_optimizer_update_range(&two[1], 0.01f, part[1], g[step], CUT, NS);
        for (int i = 0; step == 0 && i < NS; i++) /* the other slice is untouched */
            assert_true(i < CUT ? part[1][i] == 0.1f * (float)i - 0.2f
                                : part[0][i] == 0.1f * (float)i - 0.2f);
        memcpy(part[0] + CUT, part[1] + CUT, (NS - CUT) * sizeof(float)); /* the gather */
        memcpy(part[1], part[0], sizeof part[0]);
    }
    assert_memory_equal(part[0], whole, sizeof whole);
    float *m1, *v1, *m[2], *v[2];
    sat_optimizer_moments(&one, &m1, &v1);
    for (int r = 0; r < 2; r++) sat_optimizer_moments(&two[r], &m[r], &v[r]);
    assert_memory_equal(m[0], m1, CUT * sizeof(float));
    assert_memory_equal(m[1] + CUT, m1 + CUT, (NS - CUT) * sizeof(float));
    if (v1) assert_memory_equal(v[1] + CUT, v1 + CUT, (NS - CUT) * sizeof(float));
    sat_optimizer_free(&one);
    for (int r = 0; r < 2; r++) sat_optimizer_free(&two[r]);
}

static void test_update_in_slices(void **state)
{
    (void)state;
    sliced_equals_whole(SAT_OPTIM_ADAM);
    sliced_equals_whole(SAT_OPTIM_RMSPROP);
}

/* Clipping in slices by the norm of their summed squares: the whole's. */
static void test_clip_in_slices(void **state)
{
    (void)state;
    float whole[4] = {3.0f, 0.0f, -4.0f, 12.0f}, part[4];
    memcpy(part, whole, sizeof part);
    double norm = sqrt(sat_grad_sumsq(part, 2) + sat_grad_sumsq(part + 2, 2));
    assert_true(fabs(norm - 13.0) < 1e-12);
    sat_clip_to_norm(part, 2, norm, 1.0);
    sat_clip_to_norm(part + 2, 2, norm, 1.0);
    sat_clip_grad_norm(whole, 4, 1.0);
    assert_memory_equal(part, whole, sizeof whole);
}

/* Reference outputs: splitmix64(0) = 0xe220a8397b1dcdaf; xoshiro256** from
 * state {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240. */
static void test_rng_reference(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 0);
    assert_true(rng.s[0] == 0xe220a8397b1dcdafULL);
    rng = (sat_rng){ { 1, 2, 3, 4 } };
    const uint64_t want[4] = { 11520, 0, 1509978240, 1215971899390074240ULL };
    for (int i = 0; i < 4; i++) assert_true(sat_rng_next(&rng) == want[i]);
}

static void test_rng_distributions(void **state)
{
    (void)state;
    sat_rng a, b;
    sat_rng_seed(&a, 42);
    sat_rng_seed(&b, 42);
    for (int i = 0; i < 10; i++) assert_true(sat_rng_next(&a) == sat_rng_next(&b));
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int counts[3] = { 0 };
    for (int i = 0; i < n; i++) {
        float u = sat_rng_uniform(&a);
        assert_true(u >= 0.0f && u < 1.0f);
        su += u;
        double z = sat_rng_normal(&a);
        sn += z, sn2 += z * z;
        uint32_t k = sat_rng_below(&a, 3);
        assert_true(k < 3);
        counts[k]++;
    }
    /* Bounds are ~5 standard errors. */
    assert_true(fabs(su / n - 0.5) < 0.004);
    assert_true(fabs(sn / n) < 0.012);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
    for (int k = 0; k < 3; k++) assert_true(abs(counts[k] - n / 3) < 1100);
    int perm[50], seen[50] = { 0 };
    for (int i = 0; i < 50; i++) perm[i] = i;
    sat_rng_shuffle(&a, perm, 50);
    int moved = 0;
    for (int i = 0; i < 50; i++) seen[perm[i]]++, moved += perm[i] != i;
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_two_steps),
        cmocka_unit_test(test_adam_weight_decay),
        cmocka_unit_test(test_rmsprop_two_steps),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_update_in_slices),
        cmocka_unit_test(test_clip_in_slices),
        cmocka_unit_test(test_rng_reference),
        cmocka_unit_test(test_rng_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
