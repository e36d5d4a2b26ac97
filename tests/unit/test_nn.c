/* test_nn.c — every CNN kernel of nn.c against the naive loops of
 * nn_reference.h: random shapes (odd sizes, stride 2 on even and odd sizes,
 * dilation, VALID and SAME, every activation), both the AVX2 and the C paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sat/nn.h"
#include "nn_reference.h"

#define TOL 1e-4

static void describe(const ref_conv_spec *p, nn_kernel kernel, double err)
{
    print_message("kernel %d: %dx%dx%d -> %d, k %dx%d, stride %dx%d, dilation %dx%d, %s, act %d: "
                  "error %g\n", (int)kernel, p->h, p->w, p->c, p->oc, p->kh, p->kw, p->sh, p->sw,
                  p->dh, p->dw, p->pad == SAT_PAD_SAME ? "SAME" : "VALID", (int)p->act, err);
}

/* Run one kernel through nn_conv on random data and compare with ref_conv.
 * Inputs are scaled by 3 so that RELU6 clamps some outputs.  accumulate:
 * out starts with random values that the kernel must add (before the
 * activation). */
static void check_conv_acc(const ref_conv_spec *p, nn_kernel kernel, int with_bias,
                           int accumulate, uint64_t *rng)
{
    size_t nin = (size_t)p->h * p->w * p->c;
    size_t nw = p->depthwise ? (size_t)p->kh * p->kw * p->oc : (size_t)p->oc * p->kh * p->kw * p->c;
    float *in = ref_random_array(rng, nin), *w = ref_random_array(rng, nw);
    float *bias = with_bias ? ref_random_array(rng, (size_t)p->oc) : NULL;
    for (size_t i = 0; i < nin; i++) in[i] *= 3;

    int pt, pl;
    int oh = ref_axis(p->h, p->kh, p->sh, p->dh, p->pad, &pt);
    int ow = ref_axis(p->w, p->kw, p->sw, p->dw, p->pad, &pl);
    nn_conv_geom g;
    int rc = nn_conv_geom_init(&g, p->h, p->w, p->c, p->oc, p->kh, p->kw, p->sh, p->sw,
                               p->dh, p->dw, p->pad);
    if (oh < 1 || ow < 1) {
        assert_int_equal(rc, -1);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(g.out_h, oh);
        assert_int_equal(g.out_w, ow);
        assert_int_equal(g.pad_top, pt);
        assert_int_equal(g.pad_left, pl);
        size_t nout = (size_t)oh * ow * p->oc;
        float *want = malloc(nout * sizeof *want), *got = malloc(nout * sizeof *got);
        float *start = ref_random_array(rng, nout);
        ref_conv_spec plain = *p;
        plain.act = SAT_ACT_NONE;
        ref_conv(&plain, in, w, bias, want, &oh, &ow);
        for (size_t i = 0; i < nout; i++)
            want[i] = (float)ref_act((double)want[i] + (accumulate ? start[i] : 0), p->act);
        if (accumulate)
            memcpy(got, start, nout * sizeof *got);
        else
            memset(got, 0xff, nout * sizeof *got); /* NaNs: every output must be written */
        nn_conv cv;
        assert_int_equal(nn_conv_init(&cv, &g, p->depthwise, w, bias, p->act, kernel), 0);
        assert_int_equal(cv.kernel, kernel);
        float *scratch = malloc(nn_conv_scratch_floats(&cv) * sizeof *scratch + 1);
        nn_conv_forward(&cv, in, got, accumulate, scratch);
        double err = ref_max_rel_err(got, want, nout);
        if (err > TOL) describe(p, kernel, err);
        assert_true(err <= TOL);
        nn_conv_free(&cv);
        free(scratch);
        free(start);
        free(want);
        free(got);
    }
    free(in);
    free(w);
    free(bias);
}

static void check_conv(const ref_conv_spec *p, nn_kernel kernel, int with_bias, uint64_t *rng)
{
    check_conv_acc(p, kernel, with_bias, 0, rng);
}

static const sat_activation acts[] = {SAT_ACT_NONE, SAT_ACT_RELU, SAT_ACT_RELU6};

static void test_padding_rules(void **state)
{
    (void)state;
    /* SAME, stride 2, even size: the one padded row goes at the bottom. */
    assert_int_equal(nn_out_size(224, 3, 2, 1, SAT_PAD_SAME), 112);
    assert_int_equal(nn_pad_before(224, 3, 2, 1, SAT_PAD_SAME), 0);
    /* Odd size: two padded rows, one on each side. */
    assert_int_equal(nn_out_size(7, 3, 2, 1, SAT_PAD_SAME), 4);
    assert_int_equal(nn_pad_before(7, 3, 2, 1, SAT_PAD_SAME), 1);
    /* Dilation 2 widens the window to 5: pad 2 each side at stride 1. */
    assert_int_equal(nn_out_size(14, 3, 1, 2, SAT_PAD_SAME), 14);
    assert_int_equal(nn_pad_before(14, 3, 1, 2, SAT_PAD_SAME), 2);
    assert_int_equal(nn_out_size(14, 3, 1, 2, SAT_PAD_VALID), 10);
    assert_int_equal(nn_pad_before(14, 3, 1, 2, SAT_PAD_VALID), 0);
    assert_int_equal(nn_out_size(4, 5, 1, 1, SAT_PAD_VALID), 0);
    nn_conv_geom g;
    assert_int_equal(nn_conv_geom_init(&g, 4, 4, 1, 1, 5, 5, 1, 1, 1, 1, SAT_PAD_VALID), -1);
    assert_int_equal(nn_conv_geom_init(&g, 4, 4, 0, 1, 3, 3, 1, 1, 1, 1, SAT_PAD_SAME), -1);
}

static void test_conv2d_random(void **state)
{
    (void)state;
    uint64_t rng = 1;
    static const int ks[] = {1, 2, 3, 5};
    for (int simd = 0; simd < 2; simd++) {
        nn_use_simd(simd);
        for (int t = 0; t < 300; t++) {
            ref_conv_spec p = {
                .h = ref_rand_int(&rng, 1, 12), .w = ref_rand_int(&rng, 1, 12),
                .c = ref_rand_int(&rng, 1, 6), .oc = ref_rand_int(&rng, 1, 40),
                .kh = ks[ref_rand_int(&rng, 0, 3)], .kw = ks[ref_rand_int(&rng, 0, 3)],
                .sh = ref_rand_int(&rng, 1, 3), .sw = ref_rand_int(&rng, 1, 3),
                .dh = ref_rand_int(&rng, 1, 2), .dw = ref_rand_int(&rng, 1, 2),
                .pad = t % 3 ? SAT_PAD_SAME : SAT_PAD_VALID, .act = acts[t % 3],
            };
            check_conv(&p, t % 2 ? NN_KERNEL_IM2COL : NN_KERNEL_DIRECT, t % 4 != 0, &rng);
        }
    }
    nn_use_simd(1);
}

/* The MobileNetV2 stem (3x3 stride 2, 3 -> 32) on even and odd sizes, large
 * enough to take several im2col chunks, with both kernels that can run it. */
static void test_conv2d_stem(void **state)
{
    (void)state;
    uint64_t rng = 2;
    static const int sizes[] = {64, 57};
    for (int i = 0; i < 4; i++) {
        ref_conv_spec p = {.h = sizes[i % 2], .w = sizes[i % 2], .c = 3, .oc = 32, .kh = 3,
                           .kw = 3, .sh = 2, .sw = 2, .dh = 1, .dw = 1, .pad = SAT_PAD_SAME,
                           .act = SAT_ACT_RELU6};
        nn_kernel kernel = i < 2 ? NN_KERNEL_IM2COL : NN_KERNEL_DIRECT;
        check_conv(&p, kernel, 1, &rng);
        p.sh = p.sw = 1;
        p.dh = p.dw = 2;
        check_conv(&p, kernel, 1, &rng);
    }
}

/* 1x1 convs through OpenBLAS and through the direct kernel (which takes up
 * to 64 input channels), strided too, with and without accumulation (a
 * residual ADD folded into the conv: out holds the addend). */
static void test_pointwise_random(void **state)
{
    (void)state;
    uint64_t rng = 3;
    for (int simd = 0; simd < 2; simd++) {
        nn_use_simd(simd);
        for (int t = 0; t < 240; t++) {
            ref_conv_spec p = {
                .h = ref_rand_int(&rng, 1, 20), .w = ref_rand_int(&rng, 1, 20),
                .c = ref_rand_int(&rng, 1, 64), .oc = ref_rand_int(&rng, 1, 40),
                .kh = 1, .kw = 1, .sh = ref_rand_int(&rng, 1, 3), .sw = ref_rand_int(&rng, 1, 3),
                .dh = 1, .dw = 1, .pad = t % 2 ? SAT_PAD_SAME : SAT_PAD_VALID, .act = acts[t % 3],
            };
            check_conv_acc(&p, t % 4 < 2 ? NN_KERNEL_GEMM : NN_KERNEL_DIRECT, t % 5 != 0,
                           t % 3 == 0, &rng);
        }
    }
    nn_use_simd(1);
}

/* Many pixels, MobileNet widths, the classifier's matrix-vector product. */
static void test_pointwise_large(void **state)
{
    (void)state;
    uint64_t rng = 4;
    static const int shapes[][3] = {{71, 16, 96}, {56, 24, 144}, {28, 32, 192},
                                    {14, 320, 1280}, {14, 960, 160}, {1, 1280, 1001}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int stride = 1; stride <= 2; stride++) {
            ref_conv_spec p = {.h = shapes[i][0], .w = shapes[i][0], .c = shapes[i][1],
                               .oc = shapes[i][2], .kh = 1, .kw = 1, .sh = stride,
                               .sw = stride, .dh = 1, .dw = 1, .pad = SAT_PAD_SAME,
                               .act = acts[i % 3]};
            check_conv_acc(&p, NN_KERNEL_GEMM, 1, stride == 1, &rng);
            if (p.c <= 64) check_conv_acc(&p, NN_KERNEL_DIRECT, 1, stride == 1, &rng);
        }
}

/* NN_KERNEL_AUTO picks a kernel that can run the conv; forcing one that
 * cannot is refused. */
static void test_kernel_choice(void **state)
{
    (void)state;
    static const float w[2048]; /* zeros, enough for each conv below */
    nn_conv_geom g3, g1, gwide;
    nn_conv cv;
    assert_int_equal(nn_conv_geom_init(&g3, 8, 8, 3, 4, 3, 3, 2, 2, 1, 1, SAT_PAD_SAME), 0);
    assert_int_equal(nn_conv_geom_init(&g1, 8, 8, 320, 4, 1, 1, 1, 1, 1, 1, SAT_PAD_SAME), 0);
    assert_int_equal(nn_conv_geom_init(&gwide, 8, 8, 65, 65, 3, 3, 1, 1, 1, 1, SAT_PAD_SAME), 0);
    assert_int_equal(nn_conv_init(&cv, &g3, 0, w, NULL, SAT_ACT_NONE, NN_KERNEL_GEMM), -1);
    assert_int_equal(nn_conv_init(&cv, &g3, 0, w, NULL, SAT_ACT_NONE, NN_KERNEL_DEPTHWISE), -1);
    assert_int_equal(nn_conv_init(&cv, &gwide, 0, w, NULL, SAT_ACT_NONE, NN_KERNEL_DIRECT), -1);
    assert_int_equal(nn_conv_init(&cv, &gwide, 1, w, NULL, SAT_ACT_NONE, NN_KERNEL_IM2COL), -1);
    assert_int_equal(nn_conv_init(&cv, &g1, 0, w, NULL, SAT_ACT_NONE, NN_KERNEL_AUTO), 0);
    assert_int_equal(cv.kernel, NN_KERNEL_GEMM); /* 320 input channels: OpenBLAS */
    assert_true(nn_conv_can_accumulate(&cv));
    nn_conv_free(&cv);
    assert_int_equal(nn_conv_init(&cv, &gwide, 1, w, NULL, SAT_ACT_NONE, NN_KERNEL_AUTO), 0);
    assert_int_equal(cv.kernel, NN_KERNEL_DEPTHWISE);
    assert_false(nn_conv_can_accumulate(&cv));
    nn_conv_free(&cv);
    assert_int_equal(nn_conv_init(&cv, &g3, 0, w, NULL, SAT_ACT_NONE, NN_KERNEL_AUTO), 0);
    assert_true(cv.kernel == NN_KERNEL_DIRECT || cv.kernel == NN_KERNEL_IM2COL);
    nn_conv_free(&cv);
}

static void test_depthwise_random(void **state)
{
    (void)state;
    uint64_t rng = 6;
    static const int ks[] = {3, 3, 3, 1, 2, 5};
    for (int simd = 0; simd < 2; simd++) {
        nn_use_simd(simd);
        for (int t = 0; t < 400; t++) {
            int c = ref_rand_int(&rng, 1, 26), mult = t % 4 == 3 ? ref_rand_int(&rng, 2, 3) : 1;
            ref_conv_spec p = {
                .h = ref_rand_int(&rng, 1, 24), .w = ref_rand_int(&rng, 1, 24), .c = c,
                .oc = c * mult, .kh = ks[ref_rand_int(&rng, 0, 5)],
                .sh = ref_rand_int(&rng, 1, 2), .sw = ref_rand_int(&rng, 1, 2),
                .dh = ref_rand_int(&rng, 1, 3), .dw = ref_rand_int(&rng, 1, 3),
                .pad = t % 5 ? SAT_PAD_SAME : SAT_PAD_VALID, .act = acts[t % 3], .depthwise = 1,
            };
            p.kw = t % 7 ? p.kh : ks[ref_rand_int(&rng, 0, 5)];
            check_conv(&p, NN_KERNEL_DEPTHWISE, t % 6 != 0, &rng);
        }
    }
    nn_use_simd(1);
}

/* MobileNetV2's depthwise shapes, including output stride 16's dilated ones. */
static void test_depthwise_mobilenet_shapes(void **state)
{
    (void)state;
    uint64_t rng = 7;
    static const int shapes[][5] = {
        /* size, channels, stride, dilation */
        {112, 32, 1, 1, 0}, {112, 96, 2, 1, 0}, {56, 144, 2, 1, 0}, {15, 24, 2, 1, 0},
        {14, 576, 1, 1, 0}, {14, 960, 1, 2, 0}, {7, 960, 1, 2, 0}, {9, 40, 1, 4, 0},
    };
    for (int simd = 0; simd < 2; simd++) {
        nn_use_simd(simd);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            ref_conv_spec p = {.h = shapes[i][0], .w = shapes[i][0], .c = shapes[i][1],
                               .oc = shapes[i][1], .kh = 3, .kw = 3, .sh = shapes[i][2],
                               .sw = shapes[i][2], .dh = shapes[i][3], .dw = shapes[i][3],
                               .pad = SAT_PAD_SAME, .act = acts[i % 3], .depthwise = 1};
            check_conv(&p, NN_KERNEL_DEPTHWISE, 1, &rng);
        }
    }
    nn_use_simd(1);
}

static void test_add(void **state)
{
    (void)state;
    uint64_t rng = 8;
    size_t n = 1003;
    float *a = ref_random_array(&rng, n), *b = ref_random_array(&rng, n);
    float *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) a[i] *= 8;
    for (int k = 0; k < 3; k++) {
        nn_add_forward(a, b, n, acts[k], out);
        for (size_t i = 0; i < n; i++)
            assert_float_equal(out[i], ref_act((double)a[i] + b[i], acts[k]), 1e-6);
    }
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, a, n * sizeof *a);
    nn_add_forward(a, b, n, SAT_ACT_RELU6, a); /* in place */
    for (size_t i = 0; i < n; i++)
        assert_float_equal(a[i], ref_act((double)copy[i] + b[i], SAT_ACT_RELU6), 1e-6);
    free(a);
    free(b);
    free(out);
    free(copy);
}

static void test_activate(void **state)
{
    (void)state;
    float x[] = {-7, -0.5f, 0, 0.25f, 5.99f, 6, 6.5f, 100};
    for (int k = 0; k < 3; k++) {
        float y[8];
        memcpy(y, x, sizeof x);
        nn_activate(y, 8, acts[k]);
        for (int i = 0; i < 8; i++) assert_float_equal(y[i], ref_act(x[i], acts[k]), 0);
    }
}

static void test_mean_pool(void **state)
{
    (void)state;
    uint64_t rng = 9;
    static const int shapes[][2] = {{1, 1}, {196, 1280}, {49, 7}, {3, 1}};
    for (int s = 0; s < 4; s++) {
        int hw = shapes[s][0], c = shapes[s][1];
        float *in = ref_random_array(&rng, (size_t)hw * c), *out = malloc((size_t)c * sizeof *out);
        nn_mean_pool_forward(in, hw, c, out);
        for (int i = 0; i < c; i++) {
            double sum = 0;
            for (int p = 0; p < hw; p++) sum += in[(size_t)p * c + i];
            assert_float_equal(out[i], sum / hw, 1e-5);
        }
        free(in);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_padding_rules),
        cmocka_unit_test(test_conv2d_random),
        cmocka_unit_test(test_conv2d_stem),
        cmocka_unit_test(test_pointwise_random),
        cmocka_unit_test(test_pointwise_large),
        cmocka_unit_test(test_kernel_choice),
        cmocka_unit_test(test_depthwise_random),
        cmocka_unit_test(test_depthwise_mobilenet_shapes),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_activate),
        cmocka_unit_test(test_mean_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
