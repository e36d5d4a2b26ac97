/* test_qnn.c — the integer kernels of qnn.c: the AVX-512 VNNI kernels give
 * the portable reference's bytes exactly (1x1, im2col and depthwise convs,
 * channel counts off the SIMD widths, weights that need the int8 offset and
 * weights that do not, one offset per layer or per channel, padding, stride,
 * dilation, a fused ADD), and the
 * reference stays within one quantization step of the same computation in
 * float on the dequantized values.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sat/qnn.h"

static uint32_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

typedef struct {
    int h, w, c, oc, k, stride, dil, depthwise;
    sat_padding pad;
    sat_activation act;
    int wlo, whi;     /* weight codes drawn from [wlo, whi] */
    int wzero;        /* -1: per channel, alternately 0 and 255 (codes spanning 510 in all) */
    int residual;
} qcase;

/* A conv with random uint8 weights and int32 biases, dequantized as the
 * importer stores them; its integer form in *cv. */
typedef struct {
    nn_conv_geom g;
    float *w, *bias;
    sat_quant wq, bq;
    qnn_q in, out, res, sum;
    qnn_conv cv;
} qconv;

static void make_conv(const qcase *k, qconv *q, uint64_t *rng)
{
    memset(q, 0, sizeof *q);
    assert_int_equal(nn_conv_geom_init(&q->g, k->h, k->w, k->c, k->oc, k->k, k->k, k->stride, k->stride,
                                       k->dil, k->dil, k->pad), 0);
    size_t nw = (size_t)k->oc * k->k * k->k * (k->depthwise ? 1 : (size_t)k->c);
    /* Outputs of a few units, so that most are not clamped. */
    static float wscale;
    wscale = 0.018f / sqrtf((float)(k->k * k->k * (k->depthwise ? 1 : k->c)));
    q->in = (qnn_q){0.05f, 100};
    q->out = (qnn_q){0.1f, k->act == SAT_ACT_NONE ? 120 : 0};
    q->w = malloc(nw * sizeof *q->w);
    q->bias = malloc((size_t)k->oc * sizeof *q->bias);
    /* Per channel: the same scale, zero points alternately 0 and 255. */
    static float scales[1280];
    static int zeros[1280];
    assert_true(k->oc <= 1280);
    for (int n = 0; n < k->oc; n++) scales[n] = wscale, zeros[n] = k->wzero >= 0 ? k->wzero : n % 2 * 255;
    q->wq = (sat_quant){k->wzero >= 0 ? 1 : k->oc, k->depthwise ? 3 : 0, scales, zeros};
    static float bscale;
    bscale = q->in.scale * wscale;
    static int bzero = 0;
    q->bq = (sat_quant){1, 0, &bscale, &bzero};
    size_t per = nw / (size_t)k->oc;
    for (size_t i = 0; i < nw; i++) {
        int n = k->depthwise ? (int)(i % (size_t)k->oc) : (int)(i / per);
        int code = k->wlo + (int)(next(rng) % (uint32_t)(k->whi - k->wlo + 1));
        q->w[i] = wscale * (float)(code - zeros[n]);
    }
    for (int n = 0; n < k->oc; n++) q->bias[n] = bscale * (float)((int)(next(rng) % 20001) - 10000);
    assert_int_equal(qnn_conv_init(&q->cv, &q->g, k->depthwise, q->w, &q->wq, q->bias, &q->bq, q->in,
                                   q->out, k->act, NULL), 0);
    if (k->residual) {
        q->res = (qnn_q){0.08f, 130};
        q->sum = (qnn_q){0.12f, 125};
        qnn_conv_fuse_add(&q->cv, q->res, q->sum, k->act);
    }
}

/* q's conv planned again (q->cv replaced, not freed), with the kernels
 * qnn_use_vnni allows now. */
static void portable_plan(const qcase *k, qconv *q)
{
    assert_int_equal(qnn_conv_init(&q->cv, &q->g, k->depthwise, q->w, &q->wq, q->bias, &q->bq, q->in,
                                   q->out, k->act, NULL), 0);
    if (k->residual) qnn_conv_fuse_add(&q->cv, q->res, q->sum, k->act);
}

static void free_conv(qconv *q)
{
    qnn_conv_free(&q->cv);
    free(q->w);
    free(q->bias);
}

static uint8_t *random_bytes(size_t n, uint64_t *rng)
{
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)next(rng);
    return b;
}

/* The conv on in (and the addend in out) with the kernels qnn_use_vnni chose. */
static uint8_t *run(const qconv *q, const uint8_t *in, const uint8_t *addend)
{
    size_t n = (size_t)q->g.out_h * q->g.out_w * q->g.out_c;
    uint8_t *out = malloc(n);
    memcpy(out, addend, n);
    void *scratch = malloc(qnn_conv_scratch_bytes(&q->cv) + 1);
    qnn_conv_forward(&q->cv, in, out, scratch);
    free(scratch);
    return out;
}

static const qcase cases[] = {
    /* 1x1, K a multiple of 4: the direct GEMM; N off the 16 and 64 widths */
    {7, 9, 32, 24, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_NONE, 0, 255, 122, 0},
    {5, 5, 96, 160, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 201, 0},
    {4, 6, 16, 96, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 60, 180, 128, 0}, /* no offset */
    {3, 3, 320, 1280, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 52, 0},
    /* a fused residual ADD */
    {6, 5, 144, 24, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_NONE, 0, 255, 140, 1},
    {4, 4, 64, 40, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 100, 150, 128, 1},
    /* im2col: the stem (3 channels, stride 2), K not a multiple of 4, 1x1 with stride */
    {17, 16, 3, 32, 3, 2, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 122, 0},
    {9, 8, 5, 19, 3, 1, 2, 0, SAT_PAD_VALID, SAT_ACT_RELU, 0, 255, 90, 0},
    {8, 8, 8, 16, 1, 2, 1, 0, SAT_PAD_SAME, SAT_ACT_NONE, 0, 255, 200, 0},
    /* depthwise: stride 2, dilation 2, channels off 64 */
    {9, 11, 144, 144, 3, 1, 1, 1, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 165, 0},
    {10, 9, 96, 96, 3, 2, 1, 1, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 52, 0},
    {14, 14, 80, 80, 3, 1, 2, 1, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, 127, 0},
    {7, 7, 32, 32, 3, 1, 1, 1, SAT_PAD_SAME, SAT_ACT_NONE, 70, 190, 128, 0}, /* no offset */
    {6, 6, 16, 16, 4, 1, 1, 1, SAT_PAD_VALID, SAT_ACT_RELU, 0, 255, 10, 0},
    /* per-channel zero points: an offset per channel; a depthwise offset of
     * 128 (zero point 0, codes up to 255), which int8 cannot hold */
    {5, 7, 40, 48, 1, 1, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, -1, 1},
    {9, 9, 3, 16, 3, 2, 1, 0, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, -1, 0},
    {8, 8, 96, 96, 3, 1, 2, 1, SAT_PAD_SAME, SAT_ACT_RELU6, 0, 255, -1, 0},
    {8, 8, 64, 64, 3, 2, 1, 1, SAT_PAD_SAME, SAT_ACT_NONE, 0, 255, 0, 0},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static void test_vnni_matches_portable(void **state)
{
    (void)state;
    if (!qnn_have_vnni()) skip(); /* cmocka counts it as skipped, not passed */
    uint64_t rng = 7;
    for (int i = 0; i < NCASES; i++) {
        const qcase *k = &cases[i];
        qconv q;
        make_conv(k, &q, &rng);
        assert_non_null(q.cv.simd);
        size_t nout = (size_t)q.g.out_h * q.g.out_w * q.g.out_c;
        uint8_t *in = random_bytes((size_t)k->h * k->w * k->c, &rng), *addend = random_bytes(nout, &rng);
        uint8_t *fast = run(&q, in, addend);
        qconv portable = q; /* the same conv, planned with the VNNI kernels off */
        qnn_use_vnni(0);
        portable_plan(k, &portable);
        qnn_use_vnni(1);
        assert_null(portable.cv.simd);
        uint8_t *slow = run(&portable, in, addend);
        qnn_conv_free(&portable.cv);
        size_t diff = 0;
        for (size_t j = 0; j < nout; j++) diff += fast[j] != slow[j];
        if (diff) print_message("case %d: %zu of %zu bytes differ\n", i, diff, nout);
        assert_int_equal(diff, 0);
        free(in);
        free(addend);
        free(fast);
        free(slow);
        free_conv(&q);
    }
}

/* The conv in double on the dequantized input and weights, quantized like the
 * output (with the fused ADD in reals too). */
static double float_conv(const qcase *k, const qconv *q, const uint8_t *in, const uint8_t *addend, int oy,
                         int ox, int n, int lo, int hi)
{
    const nn_conv_geom *g = &q->g;
    double acc = q->bias[n];
    for (int ky = 0; ky < k->k; ky++)
        for (int kx = 0; kx < k->k; kx++) {
            int iy = oy * g->stride_h - g->pad_top + ky * g->dil_h;
            int ix = ox * g->stride_w - g->pad_left + kx * g->dil_w;
            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) continue;
            const uint8_t *px = in + ((size_t)iy * g->in_w + ix) * g->in_c;
            for (int c = 0; c < (k->depthwise ? 1 : g->in_c); c++) {
                int ci = k->depthwise ? n : c;
                float w = k->depthwise ? q->w[((size_t)ky * k->k + kx) * g->out_c + n]
                                       : q->w[(((size_t)n * k->k + ky) * k->k + kx) * g->in_c + c];
                acc += (double)q->in.scale * (px[ci] - q->in.zero) * w;
            }
        }
    double v = acc / q->out.scale + q->out.zero;
    if (k->residual) {
        int l0, h0;
        qnn_act_range(k->act, q->out, &l0, &h0);
        v = fmin(fmax(v, l0), h0);
        double r = q->res.scale * (addend[((size_t)oy * g->out_w + ox) * g->out_c + n] - q->res.zero);
        v = (q->out.scale * (v - q->out.zero) + r) / q->sum.scale + q->sum.zero;
    }
    return fmin(fmax(v, lo), hi);
}

static void test_portable_near_float(void **state)
{
    (void)state;
    uint64_t rng = 11;
    int old = qnn_use_vnni(0);
    for (int i = 0; i < NCASES; i++) {
        const qcase *k = &cases[i];
        qconv q;
        make_conv(k, &q, &rng);
        size_t nout = (size_t)q.g.out_h * q.g.out_w * q.g.out_c;
        uint8_t *in = random_bytes((size_t)k->h * k->w * k->c, &rng), *addend = random_bytes(nout, &rng);
        uint8_t *out = run(&q, in, addend);
        int lo, hi;
        qnn_act_range(k->act, k->residual ? q.sum : q.out, &lo, &hi);
        double worst = 0;
        for (int oy = 0; oy < q.g.out_h; oy++)
            for (int ox = 0; ox < q.g.out_w; ox++)
                for (int n = 0; n < q.g.out_c; n++) {
                    double want = float_conv(k, &q, in, addend, oy, ox, n, lo, hi);
                    double err = fabs(out[((size_t)oy * q.g.out_w + ox) * q.g.out_c + n] - want);
                    worst = fmax(worst, err);
                }
        /* Half a step of rounding; with a fused ADD, the conv's own rounding
         * (half a step of its scale, 0.1/0.12 of the sum's) comes on top. */
        if (worst > (k->residual ? 0.5 + 0.5 * 0.1 / 0.12 : 0.5) + 1e-3)
            print_message("case %d: worst error %g steps\n", i, worst);
        assert_true(worst <= (k->residual ? 0.5 + 0.5 * 0.1 / 0.12 : 0.5) + 1e-3);
        free(in);
        free(addend);
        free(out);
        free_conv(&q);
    }
    qnn_use_vnni(old);
}

static void test_add_near_float(void **state)
{
    (void)state;
    uint64_t rng = 5;
    qnn_q qa = {0.03f, 128}, qb = {0.07f, 3}, qo = {0.05f, 0};
    enum { N = 1000 };
    uint8_t *a = random_bytes(N, &rng), *b = random_bytes(N, &rng), out[N];
    qnn_add_forward(a, qa, b, qb, N, qo, SAT_ACT_RELU6, out);
    int lo, hi;
    qnn_act_range(SAT_ACT_RELU6, qo, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 120); /* 6 / 0.05 */
    for (int i = 0; i < N; i++) {
        double v = (qa.scale * (a[i] - qa.zero) + qb.scale * (b[i] - qb.zero)) / qo.scale + qo.zero;
        assert_true(fabs(out[i] - fmin(fmax(v, lo), hi)) <= 0.5 + 1e-4);
    }
    free(a);
    free(b);
}

static void test_quantize_round_trip(void **state)
{
    (void)state;
    qnn_q q = {1.0f / 128, 128};
    float x[5] = {-1.0f, -0.5f, 0.0f, 0.9921875f, 3.0f}, back[5];
    uint8_t b[5];
    qnn_quantize(x, 5, q, b);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 64);
    assert_int_equal(b[2], 128);
    assert_int_equal(b[3], 255);
    assert_int_equal(b[4], 255); /* saturated */
    qnn_dequantize(b, 4, q, back);
    for (int i = 0; i < 4; i++) assert_float_equal(back[i], x[i], 0);
}

/* The VNNI quantization gives the portable loop's bytes: ties to even,
 * saturation both ways, infinities and NaN, a length that leaves a partial
 * last vector. */
static void test_quantize_vnni_matches_portable(void **state)
{
    (void)state;
    if (!qnn_have_vnni()) skip();
    enum { N = 1000 + 7 };
    static float x[N];
    static uint8_t fast[N], slow[N];
    qnn_q q = {0.0235294122f, 3};
    uint64_t rng = 11;
    for (int i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((float)(rng >> 40) / (float)(1 << 24) * 300 - 20) * q.scale; /* codes -17..283 */
        if (i % 7 == 0) x[i] = ((float)(i % 256) - 3.5f) * q.scale; /* ties */
    }
    x[1] = INFINITY;
    x[2] = -INFINITY;
    x[3] = NAN;
    x[4] = 1e30f;
    qnn_quantize(x, N, q, fast);
    qnn_use_vnni(0);
    qnn_quantize(x, N, q, slow);
    qnn_use_vnni(1);
    assert_memory_equal(fast, slow, N);
    assert_int_equal(slow[1], 255);
    assert_int_equal(slow[2], 0);
}

static void test_refuses_off_grid_weights(void **state)
{
    (void)state;
    nn_conv_geom g;
    assert_int_equal(nn_conv_geom_init(&g, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, SAT_PAD_SAME), 0);
    float w[16], scale = 0.5f;
    int zero = 0;
    for (int i = 0; i < 16; i++) w[i] = 0.5f * (float)i;
    w[5] = 0.3f; /* not a multiple of the scale: stored as f16, or not this quantization */
    sat_quant wq = {1, 0, &scale, &zero};
    qnn_conv cv;
    assert_int_equal(qnn_conv_init(&cv, &g, 0, w, &wq, NULL, NULL, (qnn_q){1, 0}, (qnn_q){1, 0}, SAT_ACT_NONE, NULL), -1);
    qnn_conv_free(&cv);
    w[5] = 2.5f;
    assert_int_equal(qnn_conv_init(&cv, &g, 0, w, &wq, NULL, NULL, (qnn_q){1, 0}, (qnn_q){1, 0}, SAT_ACT_NONE, NULL), 0);
    qnn_conv_free(&cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vnni_matches_portable),
        cmocka_unit_test(test_portable_near_float),
        cmocka_unit_test(test_add_near_float),
        cmocka_unit_test(test_quantize_round_trip),
        cmocka_unit_test(test_quantize_vnni_matches_portable),
        cmocka_unit_test(test_refuses_off_grid_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
