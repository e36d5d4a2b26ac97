/* test_cnn.c — the graph runner on a tiny hand-built MobileNet-like graph
 * against a naive forward (nn_reference.h) at output strides 32, 16 and 8,
 * with the atrous surgery applied by hand; bad graphs and sizes; and, when
 * `make models` has produced it, the real MobileNetV2's output shapes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sat/cnn.h"
#include "sat/nn.h"
#include "nn_reference.h"
#include "sat/qnn.h"
#include "sat/util.h"

/* The tiny graph, one op per row; op i writes value i + 1, value 0 is the
 * image.  Five stride-2 ops (total stride 32); inverted-residual blocks
 * (expand, depthwise, project, ADD of the block input: the runner folds those
 * ADDs into the project GEMM) with the residual first and second; an ADD of a
 * conv's own input (not folded); a block after the last stride-2 op (its
 * depthwise conv gets dilated); the features, pool, classifier, reshape,
 * softmax. */
typedef struct {
    sat_op_kind kind;
    int k, cout, stride;
    sat_activation act;
    int in0, in1;
} layer;

static const layer net[] = {
    {SAT_OP_CONV_2D, 3, 8, 2, SAT_ACT_RELU6, 0, -1},             /* v1 stride 2 */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 8, 2, SAT_ACT_RELU6, 1, -1},   /* v2 stride 4 */
    {SAT_OP_CONV_2D, 1, 16, 1, SAT_ACT_RELU6, 2, -1},            /* v3 expand */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 16, 1, SAT_ACT_RELU6, 3, -1},  /* v4 */
    {SAT_OP_CONV_2D, 1, 8, 1, SAT_ACT_NONE, 4, -1},              /* v5 project */
    {SAT_OP_ADD, 0, 8, 1, SAT_ACT_NONE, 2, 5},                   /* v6 = v2 + v5 */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 8, 2, SAT_ACT_RELU6, 6, -1},   /* v7 stride 8 */
    {SAT_OP_CONV_2D, 1, 16, 1, SAT_ACT_NONE, 7, -1},             /* v8 */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 16, 2, SAT_ACT_RELU6, 8, -1},  /* v9 stride 16 */
    {SAT_OP_CONV_2D, 1, 16, 1, SAT_ACT_NONE, 9, -1},             /* v10 */
    {SAT_OP_ADD, 0, 16, 1, SAT_ACT_RELU, 10, 9},                 /* v11 = v10 + v9 */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 16, 2, SAT_ACT_RELU6, 11, -1}, /* v12 stride 32 */
    {SAT_OP_DEPTHWISE_CONV_2D, 3, 16, 1, SAT_ACT_RELU, 12, -1},  /* v13 */
    {SAT_OP_CONV_2D, 1, 16, 1, SAT_ACT_NONE, 13, -1},            /* v14 project */
    {SAT_OP_ADD, 0, 16, 1, SAT_ACT_NONE, 14, 12},                /* v15 = v14 + v12 */
    {SAT_OP_CONV_2D, 1, 24, 1, SAT_ACT_RELU6, 15, -1},           /* v16 features */
    {SAT_OP_AVERAGE_POOL_2D, 0, 24, 1, SAT_ACT_NONE, 16, -1},    /* v17 */
    {SAT_OP_CONV_2D, 1, 10, 1, SAT_ACT_NONE, 17, -1},            /* v18 classifier */
    {SAT_OP_RESHAPE, 0, 10, 1, SAT_ACT_NONE, 18, -1},            /* v19 [1][10] */
    {SAT_OP_SOFTMAX, 0, 10, 1, SAT_ACT_NONE, 19, -1},            /* v20 */
};
#define NOPS ((int)(sizeof net / sizeof net[0]))
#define FEATURES 16
#define CLASSES 10

/* Stride and dilation of every op, worked out by hand from DeepLab's rule
 * for output strides 32, 16, 8 (0 for ops without a window). */
static const int stride_by_hand[3][NOPS] = {
    {2, 2, 1, 1, 1, 0, 2, 1, 2, 1, 0, 2, 1, 1, 0, 1, 0, 1, 0, 0},
    {2, 2, 1, 1, 1, 0, 2, 1, 2, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0}, /* op 11 loses its stride */
    {2, 2, 1, 1, 1, 0, 2, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0}, /* ops 8 and 11 lose theirs */
};
static const int dilation_by_hand[3][NOPS] = {
    {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0},
    {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 2, 1, 0, 1, 0, 1, 0, 0}, /* then rate 2 */
    {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 2, 4, 1, 0, 1, 0, 1, 0, 0}, /* op 11 at rate 2, then 4 */
};

static int channels_in(int i) { return net[i].in0 == 0 ? 3 : net[net[i].in0 - 1].cout; }

/* A sat_model of `net` with random weights (the model owns everything). */
static sat_model *build_model(uint64_t seed)
{
    sat_model *m = calloc(1, sizeof *m);
    m->kind = strdup("cnn");
    m->name = strdup("tiny");
    m->nvalues = NOPS + 1;
    m->values = calloc((size_t)m->nvalues, sizeof *m->values);
    m->values[0] = (sat_value){4, {1, 32, 32, 3}, {0}};
    m->values[NOPS] = (sat_value){2, {1, CLASSES}, {0}};
    m->values[NOPS - 1] = (sat_value){2, {1, CLASSES}, {0}};
    m->nops = NOPS;
    m->ops = calloc(NOPS, sizeof *m->ops);
    m->tensors = calloc(2 * NOPS, sizeof *m->tensors);
    m->params = calloc(8192, sizeof *m->params);
    uint64_t rng = seed;
    for (int i = 0; i < NOPS; i++) {
        const layer *l = &net[i];
        sat_op *op = &m->ops[i];
        *op = (sat_op){.kind = l->kind, .act = l->act, .pad = SAT_PAD_SAME,
                       .stride_h = l->stride, .stride_w = l->stride, .dilation_h = 1,
                       .dilation_w = 1, .filter_h = l->k, .filter_w = l->k,
                       .depth_multiplier = 1, .ninputs = l->in1 >= 0 ? 2 : 1,
                       .inputs = {l->in0, l->in1}, .output = i + 1, .weights = -1,
                       .bias = -1, .softmax_beta = 1.0f};
        if (l->kind == SAT_OP_CONV_2D || l->kind == SAT_OP_DEPTHWISE_CONV_2D) {
            int dw = l->kind == SAT_OP_DEPTHWISE_CONV_2D;
            sat_tensor *w = &m->tensors[m->ntensors], *b = &m->tensors[m->ntensors + 1];
            *w = (sat_tensor){NULL, 4, {dw ? 1 : l->cout, l->k, l->k, dw ? l->cout : channels_in(i)},
                              m->nparams, 0, {0}};
            w->count = (size_t)w->shape[0] * w->shape[1] * w->shape[2] * w->shape[3];
            *b = (sat_tensor){NULL, 1, {l->cout}, w->offset + w->count, (size_t)l->cout, {0}};
            for (size_t j = 0; j < w->count + b->count; j++)
                m->params[m->nparams + j] = ref_uniform(&rng) * (dw ? 0.5f : 0.7f);
            m->nparams += w->count + b->count;
            op->weights = m->ntensors;
            op->bias = m->ntensors + 1;
            m->ntensors += 2;
        }
    }
    assert_true(m->nparams <= 8192);
    m->input = 0;
    m->output = NOPS;
    return m;
}

static void free_model(sat_model *m)
{
    free(m->kind);
    free(m->name);
    free(m->values);
    free(m->ops);
    free(m->tensors);
    free(m->params);
    free(m);
}

/* The naive forward with per-op strides and dilations given explicitly.
 * Returns the features (malloc'd, *h x *w x 24) and fills probs. */
static float *naive_forward(const sat_model *m, const int *strides, const int *dilations,
                            int size, const float *image, int *fh, int *fw, float *probs)
{
    float *val[NOPS + 1] = {0};
    int hh[NOPS + 1] = {size}, ww[NOPS + 1] = {size};
    val[0] = (float *)image;
    for (int i = 0; i < NOPS; i++) {
        const layer *l = &net[i];
        const sat_op *op = &m->ops[i];
        int h = hh[l->in0], w = ww[l->in0], c = channels_in(i), oh = h, ow = w;
        float *out = calloc((size_t)h * w * l->cout, sizeof *out); /* never larger than the input grid */
        const float *x = val[l->in0];
        if (l->kind == SAT_OP_CONV_2D || l->kind == SAT_OP_DEPTHWISE_CONV_2D) {
            ref_conv_spec p = {h, w, c, l->cout, l->k, l->k, strides[i], strides[i],
                               dilations[i], dilations[i], SAT_PAD_SAME, l->act,
                               l->kind == SAT_OP_DEPTHWISE_CONV_2D};
            ref_conv(&p, x, m->params + m->tensors[op->weights].offset,
                     m->params + m->tensors[op->bias].offset, out, &oh, &ow);
        } else if (l->kind == SAT_OP_ADD) {
            for (size_t j = 0; j < (size_t)h * w * c; j++)
                out[j] = (float)ref_act((double)x[j] + val[l->in1][j], l->act);
        } else if (l->kind == SAT_OP_AVERAGE_POOL_2D) {
            for (int ch = 0; ch < c; ch++) {
                double s = 0;
                for (int p = 0; p < h * w; p++) s += x[(size_t)p * c + ch];
                out[ch] = (float)(s / (h * w));
            }
            oh = ow = 1;
        } else if (l->kind == SAT_OP_RESHAPE) {
            memcpy(out, x, (size_t)c * sizeof *out);
        } else {
            double max = x[0], s = 0;
            for (int j = 1; j < c; j++) max = x[j] > max ? x[j] : max;
            for (int j = 0; j < c; j++) s += exp(x[j] - max);
            for (int j = 0; j < c; j++) out[j] = (float)(exp(x[j] - max) / s);
        }
        val[i + 1] = out;
        hh[i + 1] = oh;
        ww[i + 1] = ow;
    }
    *fh = hh[FEATURES];
    *fw = ww[FEATURES];
    memcpy(probs, val[NOPS], CLASSES * sizeof *probs);
    float *features = val[FEATURES];
    for (int i = 1; i <= NOPS; i++)
        if (i != FEATURES) free(val[i]);
    return features;
}

static int stride_index(int os) { return os == 32 ? 0 : os == 16 ? 1 : 2; }

/* Run the runner and the naive forward; compare features and probs. */
static void check_against_naive(int size, int os, uint64_t seed)
{
    sat_model *m = build_model(seed);
    char err[SAT_ERR_MAX] = "";
    sat_cnn *cnn = sat_cnn_new(m, size, os, err, sizeof err);
    if (!cnn) print_message("sat_cnn_new: %s\n", err);
    assert_non_null(cnn);
    int h, w, c;
    sat_cnn_feature_shape(cnn, &h, &w, &c);
    assert_int_equal(h, size / os);
    assert_int_equal(w, size / os);
    assert_int_equal(c, 24);
    assert_int_equal(sat_cnn_num_classes(cnn), CLASSES);

    uint64_t rng = seed + 100;
    float *image = ref_random_array(&rng, (size_t)size * size * 3);
    float *feat = malloc((size_t)h * w * c * sizeof *feat), probs[CLASSES], want_probs[CLASSES];
    sat_cnn_work *ws = sat_cnn_work_new(cnn);
    sat_cnn_forward(cnn, ws, image, feat, probs);

    int fh, fw;
    int k = stride_index(os);
    float *want = naive_forward(m, stride_by_hand[k], dilation_by_hand[k], size, image, &fh, &fw,
                                want_probs);
    assert_int_equal(fh, h);
    assert_int_equal(fw, w);
    assert_true(ref_max_rel_err(feat, want, (size_t)h * w * c) <= 1e-4);
    assert_true(ref_max_rel_err(probs, want_probs, CLASSES) <= 1e-4);

    /* Features alone (no head), and the same again after another image:
     * nothing carries over from one call to the next. */
    float *other = ref_random_array(&rng, (size_t)size * size * 3);
    float *feat2 = malloc((size_t)h * w * c * sizeof *feat2);
    sat_cnn_forward(cnn, ws, other, feat2, NULL);
    sat_cnn_forward(cnn, ws, image, feat2, NULL);
    assert_memory_equal(feat, feat2, (size_t)h * w * c * sizeof *feat);

    free(want);
    free(feat2);
    free(other);
    free(feat);
    free(image);
    sat_cnn_work_free(ws);
    sat_cnn_free(cnn);
    free_model(m);
}

/* The same graph planned without the AVX2 kernels: the runner then picks
 * OpenBLAS and im2col for the convs the direct kernel took. */
static void test_portable_kernels(void **state)
{
    (void)state;
    int old = nn_use_simd(0);
    check_against_naive(64, 16, 7);
    check_against_naive(48, 8, 8);
    nn_use_simd(old);
}

static void test_output_stride_32(void **state)
{
    (void)state;
    check_against_naive(64, 32, 1);
    check_against_naive(96, 32, 2); /* odd grids: 3x3 features */
}

static void test_output_stride_16(void **state)
{
    (void)state;
    check_against_naive(64, 16, 3);
    check_against_naive(80, 16, 4); /* 5x5 features */
}

static void test_output_stride_8(void **state)
{
    (void)state;
    check_against_naive(64, 8, 5);
    check_against_naive(40, 8, 6);
}

/* The comparison can tell the right surgery from the usual mistakes at
 * output stride 16: the op after the removed stride left undilated, or the
 * op that loses its stride dilated too (the rate doubled one op early).
 * (Removing op 8's stride instead of op 11's while dilating op 11 is no
 * mistake: ops 9-10 are pointwise, so it computes the same thing.) */
static void test_wrong_surgery_differs(void **state)
{
    (void)state;
    sat_model *m = build_model(7);
    uint64_t rng = 8;
    float *image = ref_random_array(&rng, 64 * 64 * 3), p1[CLASSES], p2[CLASSES];
    int h1, w1, h2, w2;
    float *right = naive_forward(m, stride_by_hand[1], dilation_by_hand[1], 64, image, &h1, &w1, p1);
    for (int mistake = 0; mistake < 2; mistake++) {
        int dil[NOPS];
        memcpy(dil, dilation_by_hand[1], sizeof dil);
        if (mistake == 0) dil[12] = 1;
        else dil[11] = 2;
        float *wrong = naive_forward(m, stride_by_hand[1], dil, 64, image, &h2, &w2, p2);
        assert_int_equal(h1, h2);
        assert_int_equal(w1, w2);
        assert_true(ref_max_rel_err(wrong, right, (size_t)h1 * w1 * 24) > 1e-2);
        free(wrong);
    }
    free(right);
    free(image);
    free_model(m);
}

static void expect_refused(const sat_model *m, int size, int os, const char *what)
{
    char err[SAT_ERR_MAX] = "";
    sat_cnn *cnn = sat_cnn_new(m, size, os, err, sizeof err);
    if (cnn) print_message("accepted: %s\n", what);
    assert_null(cnn);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
}

static void test_refuses_bad_input(void **state)
{
    (void)state;
    sat_model *m = build_model(9);
    expect_refused(m, 72, 16, "size not a multiple of the output stride");
    expect_refused(m, 64, 12, "output stride not a power of two");
    expect_refused(m, 0, 16, "size 0");
    expect_refused(m, 1 << 20, 16, "huge size");

    m->ops[5].inputs[1] = 7; /* read before it is computed */
    expect_refused(m, 64, 32, "use before definition");
    m->ops[5].inputs[1] = 99;
    expect_refused(m, 64, 32, "value out of range");
    m->ops[5].inputs[1] = 1; /* ADD of 16x16x8 and 32x32x8 */
    expect_refused(m, 64, 32, "ADD shape mismatch");
    m->ops[5].inputs[1] = 5;

    m->ops[2].weights = 1; /* a bias tensor as weights */
    expect_refused(m, 64, 32, "weights of the wrong rank");
    m->ops[2].weights = 4;
    m->tensors[4].offset = m->nparams - 3; /* past params */
    expect_refused(m, 64, 32, "weights past params");
    m->tensors[4].offset = m->tensors[5].offset - m->tensors[4].count;
    m->tensors[4].shape[1] = 2; /* [16][2][1][4]: 4 input channels, not 8 */
    m->tensors[4].shape[3] = 4;
    expect_refused(m, 64, 32, "weights that do not fit the input channels");
    m->tensors[4].shape[1] = 1;
    m->tensors[4].shape[3] = 8;

    m->ops[16].kind = SAT_OP_SOFTMAX; /* no pool left */
    expect_refused(m, 64, 32, "no AVERAGE_POOL_2D");
    m->ops[16].kind = (sat_op_kind)42;
    expect_refused(m, 64, 32, "unknown op kind");
    m->ops[16].kind = SAT_OP_AVERAGE_POOL_2D;

    char err[SAT_ERR_MAX];
    sat_cnn *cnn = sat_cnn_new(m, 64, 32, err, sizeof err); /* repaired: accepted again */
    assert_non_null(cnn);
    sat_cnn_free(cnn);
    free_model(m);
}

/* Stride-2 MobileNetV2 needs 300M multiply-adds at 224 (Sandler et al.). */
static void check_real_model(const sat_model *m, int os, int grid)
{
    char err[SAT_ERR_MAX] = "";
    sat_cnn *cnn = sat_cnn_new(m, 224, os, err, sizeof err);
    if (!cnn) print_message("sat_cnn_new: %s\n", err);
    assert_non_null(cnn);
    int h, w, c;
    sat_cnn_feature_shape(cnn, &h, &w, &c);
    assert_int_equal(h, grid);
    assert_int_equal(w, grid);
    assert_int_equal(c, 1280);
    assert_int_equal(sat_cnn_num_classes(cnn), 1001);
    if (os == 32) assert_true(sat_cnn_macs(cnn) > 290e6 && sat_cnn_macs(cnn) < 310e6);

    uint64_t rng = 11;
    float *image = ref_random_array(&rng, 224 * 224 * 3), probs[1001];
    float *feat = malloc((size_t)h * w * c * sizeof *feat);
    sat_cnn_work *ws = sat_cnn_work_new(cnn);
    sat_cnn_forward(cnn, ws, image, feat, probs);
    double sum = 0;
    for (int i = 0; i < 1001; i++) {
        assert_true(probs[i] >= 0);
        sum += probs[i];
    }
    assert_float_equal(sum, 1.0, 1e-4);
    for (size_t i = 0; i < (size_t)h * w * c; i++) assert_true(feat[i] >= 0 && feat[i] <= 6);
    sat_cnn_work_free(ws);
    free(feat);
    free(image);
    sat_cnn_free(cnn);
}

/* Features of a random image at stride 16 in the model's precision p. */
static float *real_features(const sat_model *m, sat_cnn_precision p)
{
    char err[SAT_ERR_MAX] = "";
    sat_cnn *cnn = sat_cnn_new(m, 224, 16, err, sizeof err);
    assert_non_null(cnn);
    if (sat_cnn_set_precision(cnn, p, err, sizeof err) < 0) print_message("%s\n", err);
    assert_int_equal(sat_cnn_get_precision(cnn), p);
    uint64_t rng = 11;
    float *image = ref_random_array(&rng, 224 * 224 * 3), probs[1001];
    float *feat = malloc((size_t)14 * 14 * 1280 * sizeof *feat);
    sat_cnn_work *ws = sat_cnn_work_new(cnn);
    sat_cnn_forward(cnn, ws, image, feat, probs);
    double sum = 0;
    for (int i = 0; i < 1001; i++) sum += probs[i];
    assert_float_equal(sum, 1.0, 1e-4); /* the float head ran on the int8 features */
    sat_cnn_work_free(ws);
    free(image);
    sat_cnn_free(cnn);
    return feat;
}

/* int8: the VNNI kernels give the portable ones' features exactly, and both
 * stay near the float path's (the shell tests hold real photos to 0.99). */
static void check_real_model_int8(const sat_model *m)
{
    size_t n = (size_t)14 * 14 * 1280;
    float *ref = real_features(m, SAT_CNN_FLOAT);
    int old = qnn_use_vnni(0);
    float *portable = real_features(m, SAT_CNN_INT8);
    qnn_use_vnni(old);
    if (qnn_have_vnni()) {
        float *fast = real_features(m, SAT_CNN_INT8);
        assert_memory_equal(fast, portable, n * sizeof *fast);
        free(fast);
    } else {
        print_message("no AVX-512 VNNI: only the portable integer kernels checked\n");
    }
    double dot = 0, a2 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)ref[i] * portable[i];
        a2 += (double)ref[i] * ref[i];
        b2 += (double)portable[i] * portable[i];
    }
    double cosine = dot / sqrt(a2 * b2);
    print_message("int8 vs float features of a random image: cosine %.4f\n", cosine);
    assert_true(cosine > 0.97);
    free(ref);
    free(portable);

    /* A model whose values lost their quantization cannot run in int8. */
    sat_model *bare = (sat_model *)m;
    int features = -1; /* the map the classifier's pooling reads */
    for (int i = 0; i < bare->nops; i++)
        if (bare->ops[i].kind == SAT_OP_AVERAGE_POOL_2D) features = bare->ops[i].inputs[0];
    assert_true(features >= 0 && bare->values[features].quant.n == 1);
    sat_quant saved = bare->values[features].quant;
    bare->values[features].quant.n = 0;
    char err[SAT_ERR_MAX] = "";
    sat_cnn *cnn = sat_cnn_new(bare, 224, 16, err, sizeof err);
    assert_int_equal(sat_cnn_set_precision(cnn, SAT_CNN_INT8, err, sizeof err), -1);
    assert_non_null(strstr(err, "quantization"));
    assert_int_equal(sat_cnn_get_precision(cnn), SAT_CNN_FLOAT);
    sat_cnn_free(cnn);
    bare->values[features].quant = saved;
}

static void test_real_model(void **state)
{
    (void)state;
    const char *dir = getenv("SAT_MODEL_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/mobilenet_v2_1.0_224_quant.satm", dir ? dir : "models");
    if (access(path, F_OK) != 0) { /* absent: skipped; unreadable: the load below fails */
        print_message("%s not built (make models): skipped\n", path);
        skip();
    }
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load(path, 0, err, sizeof err);
    if (!m) print_message("%s\n", err);
    assert_non_null(m);
    check_real_model(m, 16, 14);
    check_real_model(m, 32, 7);
    check_real_model_int8(m);
    sat_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_stride_32),
        cmocka_unit_test(test_output_stride_16),
        cmocka_unit_test(test_output_stride_8),
        cmocka_unit_test(test_portable_kernels),
        cmocka_unit_test(test_wrong_surgery_differs),
        cmocka_unit_test(test_refuses_bad_input),
        cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
