/* test_tflite.c — the TFLite importer on the real MobileNetV2 file ($SAT_SHARED,
 * default ../shared; its tests skip where it is not), on a tiny flatbuffer
 * built here, and on corrupted copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/model.h"
#include "sat/tflite.h"
#include "sat/util.h"

static unsigned char *real;  /* the MobileNetV2 .tflite bytes; NULL where there is none */
static size_t real_len;
static const char *real_path;

static int setup(void **state)
{
    static char path[4096];
    const char *shared = getenv("SAT_SHARED");
    snprintf(path, sizeof path, "%s/models/mobilenet_v2_1.0_224_quant.tflite", shared && *shared ? shared : "../shared");
    real_path = path;
    char err[SAT_ERR_MAX];
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) {
        print_message("%s not found (set SAT_SHARED): its tests skip\n", path);
        return 0;
    }
    if (f) fclose(f);
    if (sat_read_file(path, 1 << 30, &real, &real_len, err, sizeof err) < 0) {
        fprintf(stderr, "test_tflite: %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    free(real);
    return 0;
}

/* ---- the real model ---- */

/* Skip the running test (neither passed nor failed) without the real file. */
static void need_real(void)
{
    if (!real) skip();
}

static void test_real_graph(void **state)
{
    need_real();
    char err[SAT_ERR_MAX] = "";
    sat_model *m = sat_tflite_import(real, real_len, real_path, err, sizeof err);
    assert_non_null(m);
    assert_string_equal(m->kind, "cnn");
    assert_string_equal(m->name, "mobilenet_v2_1.0_224_quant");
    assert_string_equal(m->source_file, "mobilenet_v2_1.0_224_quant.tflite");
    char sha[65];
    sat_sha256_hex(real, real_len, sha);
    assert_string_equal(m->source_sha256, sha);
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);

    assert_int_equal(m->nops, 66);
    int count[SAT_OP_SOFTMAX + 1] = {0};
    for (int i = 0; i < m->nops; i++) count[m->ops[i].kind]++;
    assert_int_equal(count[SAT_OP_CONV_2D], 36);
    assert_int_equal(count[SAT_OP_DEPTHWISE_CONV_2D], 17);
    assert_int_equal(count[SAT_OP_ADD], 10);
    assert_int_equal(count[SAT_OP_AVERAGE_POOL_2D], 1);
    assert_int_equal(count[SAT_OP_RESHAPE], 1);
    assert_int_equal(count[SAT_OP_SOFTMAX], 1);

    const sat_op *first = &m->ops[0];
    assert_int_equal(first->kind, SAT_OP_CONV_2D);
    assert_int_equal(first->filter_h, 3);
    assert_int_equal(first->filter_w, 3);
    assert_int_equal(first->stride_h, 2);
    assert_int_equal(first->stride_w, 2);
    assert_int_equal(first->pad, SAT_PAD_SAME);
    assert_int_equal(first->act, SAT_ACT_RELU6);
    assert_int_equal(m->tensors[first->weights].shape[0], 32);
    assert_int_equal(m->values[first->output].shape[3], 32);
    assert_int_equal(m->values[first->output].shape[1], 112);

    const sat_value *in = &m->values[m->input], *out = &m->values[m->output];
    assert_int_equal(in->ndim, 4);
    assert_memory_equal(in->shape, ((int[]){1, 224, 224, 3}), 4 * sizeof(int));
    assert_int_equal(out->ndim, 2);
    assert_int_equal(out->shape[1], 1001);
    /* The pool turns the 7x7x1280 features into 1x1x1280. */
    const sat_op *pool = &m->ops[62];
    assert_int_equal(pool->kind, SAT_OP_AVERAGE_POOL_2D);
    assert_memory_equal(m->values[pool->inputs[0]].shape, ((int[]){1, 7, 7, 1280}), 4 * sizeof(int));
    assert_memory_equal(m->values[pool->output].shape, ((int[]){1, 1, 1, 1280}), 4 * sizeof(int));
    assert_int_equal(pool->filter_h, 7);
    assert_int_equal(m->ops[65].kind, SAT_OP_SOFTMAX);
    assert_true(m->ops[65].softmax_beta == 1.0f);
    sat_model_free(m);
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Independent check of a uint8 per-tensor dequantization: the values must lie
 * on a lattice scale*(q - zp), and the bytes q, in tensor order, must appear
 * verbatim in the file (that is the TFLite buffer). */
static void check_lattice(const float *w, size_t n)
{
    float *sorted = sat_xmalloc(n * sizeof *sorted);
    memcpy(sorted, w, n * sizeof *w);
    qsort(sorted, n, sizeof *sorted, compare_floats);
    double step = INFINITY;
    for (size_t i = 1; i < n; i++)
        if (sorted[i] > sorted[i - 1] && sorted[i] - sorted[i - 1] < step) step = sorted[i] - sorted[i - 1];
    assert_true(isfinite(step) && step > 0);
    /* Refine: the range spans a whole number of steps. */
    step = (sorted[n - 1] - sorted[0]) / round((sorted[n - 1] - sorted[0]) / step);
    unsigned char *q = sat_xmalloc(n);
    int found = 0;
    for (int zp = 0; zp < 256 && !found; zp++) {
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            double k = round(w[i] / step) + zp;
            ok = k >= 0 && k <= 255 && fabs(w[i] - step * (k - zp)) <= 1e-3 * step;
            q[i] = (unsigned char)k;
        }
        found = ok && memmem(real, real_len, q, n) != NULL;
    }
    assert_true(found);
    free(q);
    free(sorted);
}

static void test_real_dequantized(void **state)
{
    need_real();
    char err[SAT_ERR_MAX];
    sat_model *m = sat_tflite_import(real, real_len, real_path, err, sizeof err);
    assert_non_null(m);
    const int ops[] = {0, 1, 63}; /* first conv, first depthwise, classifier (1.28M weights) */
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        const sat_tensor *t = &m->tensors[m->ops[ops[k]].weights];
        check_lattice(m->params + t->offset, t->count);
    }
    /* Biases are int32 with zero point 0: small, and not all equal. */
    const sat_tensor *b = &m->tensors[m->ops[0].bias];
    assert_int_equal(b->count, 32);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < b->count; i++) {
        lo = fminf(lo, m->params[b->offset + i]);
        hi = fmaxf(hi, m->params[b->offset + i]);
    }
    assert_true(lo < hi && fabsf(lo) < 100 && fabsf(hi) < 100);
    sat_model_free(m);
}

/* ---- a tiny TFLite file built here (forward layout: every offset points ahead) ---- */

typedef struct {
    unsigned char *p;
    size_t len;
} fbb;

static size_t emit(fbb *b, const void *data, size_t n)
{
    b->p = sat_xrealloc(b->p, b->len + n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return b->len - n;
}

static size_t emit_le(fbb *b, uint64_t v, int size)
{
    unsigned char x[8];
    for (int i = 0; i < size; i++) x[i] = (unsigned char)(v >> (8 * i));
    return emit(b, x, (size_t)size);
}

/* Make the u32 offset at `at` point to `target`. */
static void fb_link(fbb *b, size_t at, size_t target)
{
    uint32_t v = (uint32_t)(target - at);
    for (int i = 0; i < 4; i++) b->p[at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

/* A vtable, then a table with fields of sizes[i] bytes (0 = absent) holding
 * vals[i]; reference fields get a placeholder to fb_link().  Field positions go to pos[]. */
static size_t table(fbb *b, int n, const int *sizes, const int64_t *vals, size_t *pos)
{
    unsigned char vt[4 + 2 * 16];
    unsigned off = 4;
    for (int i = 0; i < n; i++) {
        unsigned o = sizes[i] ? off : 0;
        vt[4 + 2 * i] = (unsigned char)o;
        vt[5 + 2 * i] = (unsigned char)(o >> 8);
        off += (unsigned)sizes[i];
    }
    vt[0] = (unsigned char)(4 + 2 * n), vt[1] = 0;
    vt[2] = (unsigned char)off, vt[3] = (unsigned char)(off >> 8);
    size_t vtpos = emit(b, vt, 4 + 2 * (size_t)n);
    size_t t = emit_le(b, (uint64_t)(b->len - vtpos), 4);
    for (int i = 0; i < n; i++)
        if (sizes[i]) pos[i] = emit_le(b, (uint64_t)vals[i], sizes[i]);
    return t;
}

/* A vector of n elements of `size` bytes; returns its position. */
static size_t vector(fbb *b, const int64_t *v, size_t n, int size)
{
    size_t at = emit_le(b, n, 4);
    for (size_t i = 0; i < n; i++) emit_le(b, (uint64_t)v[i], size);
    return at;
}

/* A vector of n table references; element i is at the return value + 4 + 4i. */
static size_t table_vector(fbb *b, size_t n)
{
    size_t at = emit_le(b, n, 4);
    for (size_t i = 0; i < n; i++) emit_le(b, 0, 4);
    return at;
}

static int64_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

typedef struct {
    int ndim, shape[4], type, buffer;
    const char *name;
    int nq;                 /* number of scales (0 = no quantization) */
    float scale[3];
    int64_t zp[3];
} tiny_tensor;

static const tiny_tensor tiny_tensors[] = {
    {4, {1, 4, 4, 2}, 0, 0, "in", 0, {0}, {0}},
    {4, {3, 1, 1, 2}, 9, 1, "conv/w", 3, {0.5f, 0.25f, 2.0f}, {0, 1, -2}},  /* int8, per channel */
    {1, {3}, 2, 2, "conv/b", 3, {0.01f, 0.02f, 0.03f}, {0, 0, 0}},         /* int32, per channel */
    {4, {1, 4, 4, 3}, 0, 0, "conv/out", 0, {0}, {0}},
    {4, {1, 3, 3, 3}, 0, 3, "dw/w", 0, {0}, {0}},                          /* float32 */
    {4, {1, 4, 4, 3}, 0, 0, "", 0, {0}, {0}},                              /* unnamed */
};
static const int8_t tiny_conv_w[6] = {-128, 127, 5, -3, 0, 1};
static const int32_t tiny_conv_b[3] = {100, -200, 7};

static void emit_tensor(fbb *b, size_t ref, const tiny_tensor *t)
{
    size_t pos[5];
    int64_t none[5] = {0, t->type, t->buffer, 0, 0};
    size_t tab = table(b, 5, (const int[]){4, 1, 4, 4, t->nq ? 4 : 0}, none, pos);
    fb_link(b, ref, tab);
    int64_t shape[4];
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    fb_link(b, pos[0], vector(b, shape, (size_t)t->ndim, 4));
    size_t name = emit_le(b, strlen(t->name), 4);
    emit(b, t->name, strlen(t->name) + 1);
    fb_link(b, pos[3], name);
    if (!t->nq) return;
    size_t qpos[7];
    size_t q = table(b, 7, (const int[]){0, 0, 4, 4, 0, 0, 4}, (const int64_t[]){0, 0, 0, 0, 0, 0, 0}, qpos);
    fb_link(b, pos[4], q);
    int64_t scales[3];
    for (int i = 0; i < t->nq; i++) scales[i] = f32_bits(t->scale[i]);
    fb_link(b, qpos[2], vector(b, scales, (size_t)t->nq, 4));
    fb_link(b, qpos[3], vector(b, t->zp, (size_t)t->nq, 8));
}

static void emit_buffer(fbb *b, size_t ref, const void *data, size_t n)
{
    size_t pos[1];
    size_t tab = table(b, 1, (const int[]){n ? 4 : 0}, (const int64_t[]){0}, pos);
    fb_link(b, ref, tab);
    if (!n) return;
    fb_link(b, pos[0], emit_le(b, n, 4));
    emit(b, data, n);
}

/* op: opcode index, inputs, output, options union type and its fields. */
static void emit_op(fbb *b, size_t ref, int opcode, const int64_t *in, size_t nin, int64_t out, int opt_type,
                    int nopt, const int *opt_sizes, const int64_t *opt_vals)
{
    size_t pos[5], opos[8];
    size_t tab = table(b, 5, (const int[]){4, 4, 4, 1, 4}, (const int64_t[]){opcode, 0, 0, opt_type, 0}, pos);
    fb_link(b, ref, tab);
    fb_link(b, pos[1], vector(b, in, nin, 4));
    fb_link(b, pos[2], vector(b, &out, 1, 4));
    fb_link(b, pos[4], table(b, nopt, opt_sizes, opt_vals, opos));
}

/* in [1,4,4,2] -CONV_2D 1x1 relu (int8 per-channel w, int32 b)-> [1,4,4,3]
 *   -DEPTHWISE_CONV_2D 3x3 SAME dilation 2 relu6 (float w, no bias)-> [1,4,4,3].
 * The second op's code is `second_code` (4 = DEPTHWISE_CONV_2D). */
static fbb tiny_tflite(int second_code)
{
    fbb b = {0};
    size_t root = emit_le(&b, 0, 4);
    emit(&b, "TFL3", 4);
    size_t mpos[5];
    fb_link(&b, root, table(&b, 5, (const int[]){4, 4, 4, 0, 4}, (const int64_t[]){3, 0, 0, 0, 0}, mpos));

    /* Operator codes: the first uses only the old int8 field, the second only the int32 one. */
    size_t codes = table_vector(&b, 2), cpos[4];
    fb_link(&b, mpos[1], codes);
    fb_link(&b, codes + 4, table(&b, 1, (const int[]){1}, (const int64_t[]){3}, cpos));
    fb_link(&b, codes + 8, table(&b, 4, (const int[]){0, 0, 0, 4}, (const int64_t[]){0, 0, 0, second_code}, cpos));

    size_t buffers = table_vector(&b, 4);
    fb_link(&b, mpos[4], buffers);
    float dw[27];
    for (int i = 0; i < 27; i++) dw[i] = (float)(i - 13) / 8;
    emit_buffer(&b, buffers + 4, NULL, 0);
    emit_buffer(&b, buffers + 8, tiny_conv_w, sizeof tiny_conv_w);
    emit_buffer(&b, buffers + 12, tiny_conv_b, sizeof tiny_conv_b);
    emit_buffer(&b, buffers + 16, dw, sizeof dw);

    size_t subgraphs = table_vector(&b, 1), spos[4];
    fb_link(&b, mpos[2], subgraphs);
    fb_link(&b, subgraphs + 4, table(&b, 4, (const int[]){4, 4, 4, 4}, (const int64_t[]){0, 0, 0, 0}, spos));
    size_t ntensors = sizeof tiny_tensors / sizeof *tiny_tensors;
    size_t tensors = table_vector(&b, ntensors);
    fb_link(&b, spos[0], tensors);
    for (size_t i = 0; i < ntensors; i++) emit_tensor(&b, tensors + 4 + 4 * i, &tiny_tensors[i]);
    fb_link(&b, spos[1], vector(&b, (const int64_t[]){0}, 1, 4));
    fb_link(&b, spos[2], vector(&b, (const int64_t[]){5}, 1, 4));
    size_t ops = table_vector(&b, 2);
    fb_link(&b, spos[3], ops);
    /* Conv2DOptions: padding, stride_w, stride_h, act. */
    emit_op(&b, ops + 4, 0, (const int64_t[]){0, 1, 2}, 3, 3, 1, 4, (const int[]){1, 4, 4, 1},
            (const int64_t[]){1, 1, 1, 1});
    /* DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, act, dilation_w, dilation_h. */
    emit_op(&b, ops + 8, 1, (const int64_t[]){3, 4, -1}, 3, 5, 2, 7, (const int[]){1, 4, 4, 4, 1, 4, 4},
            (const int64_t[]){0, 1, 1, 1, 3, 2, 2});
    return b;
}

static void test_tiny_import(void **state)
{
    fbb b = tiny_tflite(4);
    char err[SAT_ERR_MAX] = "";
    sat_model *m = sat_tflite_import(b.p, b.len, "some/dir/tiny.v2.tflite", err, sizeof err);
    if (!m) fail_msg("%s", err);
    assert_string_equal(m->name, "tiny.v2");
    assert_string_equal(m->source_file, "tiny.v2.tflite");
    assert_int_equal(m->nops, 2);
    assert_int_equal(m->ntensors, 3);
    assert_int_equal(m->nparams, 6 + 3 + 27);
    assert_int_equal(m->nvalues, 3);

    const sat_op *conv = &m->ops[0], *dw = &m->ops[1];
    assert_int_equal(conv->kind, SAT_OP_CONV_2D);
    assert_int_equal(conv->pad, SAT_PAD_VALID);
    assert_int_equal(conv->act, SAT_ACT_RELU);
    assert_int_equal(conv->filter_h, 1);
    assert_int_equal(dw->kind, SAT_OP_DEPTHWISE_CONV_2D);
    assert_int_equal(dw->pad, SAT_PAD_SAME);
    assert_int_equal(dw->act, SAT_ACT_RELU6);
    assert_int_equal(dw->dilation_h, 2);
    assert_int_equal(dw->dilation_w, 2);
    assert_int_equal(dw->filter_h, 3);
    assert_int_equal(dw->depth_multiplier, 1);
    assert_int_equal(dw->bias, -1);
    assert_string_equal(m->tensors[dw->weights].name, "dw/w");

    /* Per-channel int8 weights [3,1,1,2]: channel o = element / 2. */
    const sat_tensor *w = &m->tensors[conv->weights];
    assert_string_equal(w->name, "conv/w");
    for (int i = 0; i < 6; i++) {
        const tiny_tensor *t = &tiny_tensors[1];
        float want = (float)((double)t->scale[i / 2] * (tiny_conv_w[i] - t->zp[i / 2]));
        assert_true(m->params[w->offset + (size_t)i] == want);
    }
    const sat_tensor *bias = &m->tensors[conv->bias];
    for (int i = 0; i < 3; i++)
        assert_true(m->params[bias->offset + (size_t)i] == (float)((double)tiny_tensors[2].scale[i] * tiny_conv_b[i]));
    const sat_tensor *dww = &m->tensors[dw->weights];
    for (int i = 0; i < 27; i++) assert_true(m->params[dww->offset + (size_t)i] == (float)(i - 13) / 8);
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    sat_model_free(m);
    free(b.p);
}

static void test_tiny_refusals(void **state)
{
    char err[SAT_ERR_MAX] = "";
    fbb b = tiny_tflite(16);
    assert_null(sat_tflite_import(b.p, b.len, "x.tflite", err, sizeof err));
    assert_string_equal(err, "unsupported operator LSTM (op 1)");
    free(b.p);
    b = tiny_tflite(250);
    assert_null(sat_tflite_import(b.p, b.len, "x.tflite", err, sizeof err));
    assert_string_equal(err, "unsupported operator with builtin code 250 (op 1)");
    free(b.p);
    assert_null(sat_tflite_import("hello, world", 12, "x.tflite", err, sizeof err));
    assert_non_null(strstr(err, "not a TensorFlow Lite file"));
    assert_null(sat_tflite_import("", 0, "x.tflite", err, sizeof err));
}

/* ---- corruption: never a crash; an error or a model that validates ---- */

static int import_survives(const unsigned char *data, size_t len)
{
    char err[SAT_ERR_MAX] = "";
    sat_model *m = sat_tflite_import(data, len, "corrupt.tflite", err, sizeof err);
    if (!m) {
        assert_true(err[0] != 0);
        assert_null(strchr(err, '\n'));
        return 0;
    }
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    sat_model_free(m);
    return 1;
}

/* Change byte i of buf in one of five ways (by `how`), import, restore. */
static int mutate_and_import(unsigned char *buf, size_t len, size_t i, int how)
{
    static const unsigned char xors[] = {0xff, 0x01, 0x80};
    unsigned char old = buf[i];
    buf[i] = how < 3 ? (unsigned char)(old ^ xors[how]) : how == 3 ? 0x00 : 0xff;
    int ok = import_survives(buf, len);
    buf[i] = old;
    return ok;
}

static void test_tiny_corruption(void **state)
{
    fbb b = tiny_tflite(4);
    int errors = 0, loaded = 0;
    for (size_t cut = 0; cut < b.len; cut++) errors += !import_survives(b.p, cut);
    assert_int_equal(errors, (int)b.len); /* every truncation is refused */
    for (size_t i = 0; i < b.len; i++)
        for (int how = 0; how < 5; how++) {
            int ok = mutate_and_import(b.p, b.len, i, how);
            loaded += ok;
            errors += !ok;
        }
    assert_true(loaded > 0 && errors > (int)b.len); /* both outcomes occur */
    free(b.p);
}

static void test_real_corruption(void **state)
{
    need_real();
    unsigned char *buf = sat_xmalloc(real_len);
    memcpy(buf, real, real_len);
    /* Truncations, dense near the start (headers) and spread over the file. */
    for (size_t cut = 0; cut < 64; cut++) assert_int_equal(import_survives(buf, cut), 0);
    for (int k = 1; k < 64; k++) assert_int_equal(import_survives(buf, real_len / 64 * (size_t)k), 0);
    /* Flips in the structure: the root table and the buffer offsets in the
     * first KB, the subgraph and operator tables in the last 64 KB; and a few
     * in the weights.  (Imports that succeed cost ~15 ms each: keep it small;
     * the tiny file above gets the exhaustive sweep.) */
    int refused = 0;
    for (size_t i = 0; i < 1024; i += 5) refused += !mutate_and_import(buf, real_len, i, (int)(i % 5));
    for (size_t i = real_len - 65536; i < real_len; i += 997)
        refused += !mutate_and_import(buf, real_len, i, (int)(i % 5));
    for (size_t i = 0; i < real_len; i += real_len / 10) mutate_and_import(buf, real_len, i, (int)(i % 5));
    assert_true(refused > 0);
    assert_memory_equal(buf, real, real_len);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_graph),
        cmocka_unit_test(test_real_dequantized),
        cmocka_unit_test(test_tiny_import),
        cmocka_unit_test(test_tiny_refusals),
        cmocka_unit_test(test_tiny_corruption),
        cmocka_unit_test(test_real_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
