/* test_model.c — sat model files (save/load/validate) and f16 conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/half.h"
#include "sat/nn_simd.h"
#include "sat/model.h"
#include "sat/util.h"

static char tmpdir[] = "/tmp/test_model.XXXXXX";

static char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static char **strings(int n, const char *const *s)
{
    char **out = sat_xcalloc((size_t)n, sizeof *out);
    for (int i = 0; i < n; i++) out[i] = sat_xstrdup(s[i]);
    return out;
}

static void add_tensor(sat_model *m, const char *name, int ndim, const int *shape, size_t *offset)
{
    sat_tensor *t = &m->tensors[m->ntensors++];
    t->name = sat_xstrdup(name);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) t->count *= (size_t)(t->shape[i] = shape[i]);
    t->offset = *offset;
    *offset += t->count;
}

static void set_value(sat_model *m, int v, int ndim, const int *shape)
{
    m->values[v].ndim = ndim;
    memcpy(m->values[v].shape, shape, sizeof(int) * (size_t)ndim);
}

static sat_op base_op(sat_op_kind kind, int in, int out)
{
    return (sat_op){.kind = kind, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                    .filter_h = 1, .filter_w = 1, .depth_multiplier = 1, .ninputs = 1,
                    .inputs = {in, -1}, .output = out, .weights = -1, .bias = -1,
                    .softmax_beta = 1.0f};
}

/* A tiny CNN using every op kind:
 *   v0 [1,8,8,2] -conv 3x3/2 SAME relu6-> v1 [1,4,4,4] -dw 3x3 dil 2-> v2
 *   add(v1,v2) -> v3 -avgpool 4x4 VALID-> v4 [1,1,1,4] -reshape-> v5 [1,4] -softmax-> v6 */
static sat_quant make_quant(int n, int axis, float scale, int zero)
{
    sat_quant q = {n, axis, sat_xmalloc((size_t)n * sizeof(float)), sat_xmalloc((size_t)n * sizeof(int))};
    for (int c = 0; c < n; c++) q.scale[c] = scale * (float)(c + 1), q.zero_point[c] = zero + c;
    return q;
}

static sat_model *tiny_model(void)
{
    sat_model *m = sat_xcalloc(1, sizeof *m);
    m->kind = sat_xstrdup("cnn");
    m->name = sat_xstrdup("tiny");
    m->source_file = sat_xstrdup("tiny.tflite");
    snprintf(m->source_sha256, sizeof m->source_sha256, "%064d", 7);
    m->tensors = sat_xcalloc(4, sizeof *m->tensors);
    size_t off = 0;
    add_tensor(m, "conv/w", 4, (const int[]){4, 3, 3, 2}, &off);
    add_tensor(m, "conv/b", 1, (const int[]){4}, &off);
    add_tensor(m, "dw/w", 4, (const int[]){1, 3, 3, 4}, &off);
    add_tensor(m, "dw/b", 1, (const int[]){4}, &off);
    m->nparams = off;
    m->params = sat_xmalloc(off * sizeof(float));
    /* Values with inexact f16 representations, tiny and large ones too. */
    for (size_t i = 0; i < off; i++) m->params[i] = (float)((double)i * 0.0137 - 0.5) * (i % 7 ? 1.f : 1e-6f);
    m->params[3] = 60000.f;

    m->nvalues = 7;
    m->values = sat_xcalloc(7, sizeof *m->values);
    set_value(m, 0, 4, (const int[]){1, 8, 8, 2});
    for (int v = 1; v <= 3; v++) set_value(m, v, 4, (const int[]){1, 4, 4, 4});
    set_value(m, 4, 4, (const int[]){1, 1, 1, 4});
    set_value(m, 5, 2, (const int[]){1, 4});
    set_value(m, 6, 2, (const int[]){1, 4});
    m->nops = 6;
    m->ops = sat_xcalloc(6, sizeof *m->ops);
    sat_op *op = m->ops;
    op[0] = base_op(SAT_OP_CONV_2D, 0, 1);
    op[0].stride_h = op[0].stride_w = 2;
    op[0].filter_h = op[0].filter_w = 3;
    op[0].weights = 0, op[0].bias = 1, op[0].act = SAT_ACT_RELU6;
    op[1] = base_op(SAT_OP_DEPTHWISE_CONV_2D, 1, 2);
    op[1].filter_h = op[1].filter_w = 3;
    op[1].dilation_h = op[1].dilation_w = 2;
    op[1].weights = 2, op[1].bias = 3, op[1].act = SAT_ACT_RELU;
    op[2] = base_op(SAT_OP_ADD, 1, 3);
    op[2].ninputs = 2, op[2].inputs[1] = 2;
    op[3] = base_op(SAT_OP_AVERAGE_POOL_2D, 3, 4);
    op[3].filter_h = op[3].filter_w = 4, op[3].pad = SAT_PAD_VALID;
    op[4] = base_op(SAT_OP_RESHAPE, 4, 5);
    op[5] = base_op(SAT_OP_SOFTMAX, 5, 6);
    op[5].softmax_beta = 0.5f;
    m->input = 0;
    m->output = 6;
    /* Quantization: per channel on the conv weights, per tensor on values. */
    m->tensors[0].quant = make_quant(4, 0, 0.01f, 120);
    m->values[0].quant = make_quant(1, 0, 1.0f / 128, 128);
    m->values[1].quant = make_quant(1, 0, 0.0235f, 0);

    m->labels = strings(4, (const char *const[]){"background", "cat", "dog, doggy", "x"});
    m->nlabels = 4;
    m->vocab = strings(3, (const char *const[]){"<start>", "<end>", "a"});
    m->nvocab = 3;
    m->config = sat_xcalloc(2, sizeof *m->config);
    m->config[0] = (sat_config_entry){sat_xstrdup("embed"), 512};
    m->config[1] = (sat_config_entry){sat_xstrdup("dropout"), 0.25};
    m->nconfig = 2;
    return m;
}

static void assert_same_quant(const sat_quant *a, const sat_quant *b)
{
    assert_int_equal(a->n, b->n);
    if (!a->n) return;
    assert_int_equal(a->axis, b->axis);
    assert_memory_equal(a->scale, b->scale, (size_t)a->n * sizeof *a->scale);
    assert_memory_equal(a->zero_point, b->zero_point, (size_t)a->n * sizeof *a->zero_point);
}

static void assert_same_structure(const sat_model *a, const sat_model *b)
{
    assert_string_equal(a->kind, b->kind);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->source_file, b->source_file);
    assert_string_equal(a->source_sha256, b->source_sha256);
    assert_string_equal(a->weights_sha256, b->weights_sha256);
    assert_int_equal(a->nparams, b->nparams);
    assert_int_equal(a->ntensors, b->ntensors);
    for (int i = 0; i < a->ntensors; i++) {
        assert_string_equal(a->tensors[i].name, b->tensors[i].name);
        assert_int_equal(a->tensors[i].ndim, b->tensors[i].ndim);
        assert_memory_equal(a->tensors[i].shape, b->tensors[i].shape, sizeof(int) * 4);
        assert_int_equal(a->tensors[i].offset, b->tensors[i].offset);
        assert_int_equal(a->tensors[i].count, b->tensors[i].count);
        assert_same_quant(&a->tensors[i].quant, &b->tensors[i].quant);
    }
    assert_int_equal(a->nvalues, b->nvalues);
    for (int v = 0; v < a->nvalues; v++) {
        assert_int_equal(a->values[v].ndim, b->values[v].ndim);
        assert_memory_equal(a->values[v].shape, b->values[v].shape, sizeof(int) * (size_t)a->values[v].ndim);
        assert_same_quant(&a->values[v].quant, &b->values[v].quant);
    }
    assert_int_equal(a->nops, b->nops);
    for (int i = 0; i < a->nops; i++) {
        const sat_op *x = &a->ops[i], *y = &b->ops[i];
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->act, y->act);
        assert_int_equal(x->pad, y->pad);
        assert_int_equal(x->stride_h, y->stride_h);
        assert_int_equal(x->stride_w, y->stride_w);
        assert_int_equal(x->dilation_h, y->dilation_h);
        assert_int_equal(x->dilation_w, y->dilation_w);
        assert_int_equal(x->filter_h, y->filter_h);
        assert_int_equal(x->filter_w, y->filter_w);
        assert_int_equal(x->depth_multiplier, y->depth_multiplier);
        assert_int_equal(x->ninputs, y->ninputs);
        assert_memory_equal(x->inputs, y->inputs, sizeof(int) * (size_t)x->ninputs);
        assert_int_equal(x->output, y->output);
        assert_int_equal(x->weights, y->weights);
        assert_int_equal(x->bias, y->bias);
        assert_true(x->softmax_beta == y->softmax_beta);
    }
    assert_int_equal(a->input, b->input);
    assert_int_equal(a->output, b->output);
    assert_int_equal(a->nlabels, b->nlabels);
    for (int i = 0; i < a->nlabels; i++) assert_string_equal(a->labels[i], b->labels[i]);
    assert_int_equal(a->nvocab, b->nvocab);
    for (int i = 0; i < a->nvocab; i++) assert_string_equal(a->vocab[i], b->vocab[i]);
    assert_int_equal(a->nconfig, b->nconfig);
    for (int i = 0; i < a->nconfig; i++) {
        assert_string_equal(a->config[i].name, b->config[i].name);
        assert_true(a->config[i].value == b->config[i].value);
    }
}

static void test_roundtrip_f32(void **state)
{
    sat_model *m = tiny_model();
    char err[SAT_ERR_MAX] = "";
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    sat_model_save(m, tmp_path("f32.satm"), 0);
    assert_int_equal(strlen(m->weights_sha256), 64);
    sat_model *l = sat_model_load(tmp_path("f32.satm"), SAT_MODEL_VERIFY, err, sizeof err);
    assert_non_null(l);
    assert_same_structure(m, l);
    assert_memory_equal(m->params, l->params, m->nparams * sizeof(float));
    assert_int_equal(sat_model_find_tensor(l, "dw/w"), 2);
    assert_int_equal(sat_model_find_tensor(l, "nope"), -1);
    assert_true(sat_model_config(l, "dropout", 9) == 0.25);
    assert_true(sat_model_config(l, "absent", 9) == 9);
    sat_model_free(l);
    sat_model_free(m);
}

static void test_roundtrip_f16(void **state)
{
    sat_model *m = tiny_model();
    char err[SAT_ERR_MAX] = "", sha32[65];
    sat_model_save(m, tmp_path("a.satm"), 0);
    memcpy(sha32, m->weights_sha256, 65);
    sat_model_save(m, tmp_path("h.satm"), 1);
    assert_string_not_equal(sha32, m->weights_sha256); /* sha of the params as stored */
    sat_model *l = sat_model_load(tmp_path("h.satm"), SAT_MODEL_VERIFY, err, sizeof err);
    assert_non_null(l);
    assert_same_structure(m, l);
    for (size_t i = 0; i < m->nparams; i++) {
        float want = sat_f16_to_f32(sat_f32_to_f16(m->params[i]));
        assert_true(l->params[i] == want);
        assert_true(fabsf(l->params[i] - m->params[i]) <= fabsf(m->params[i]) / 1024 + 6e-8f);
    }
    sat_model_free(l);
    sat_model_free(m);
}

/* Offset in the file at path of the params bin's first byte. */
static long params_offset(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    static const unsigned char key[] = {0xa6, 'p', 'a', 'r', 'a', 'm', 's'};
    for (size_t i = 0; i + sizeof key < n; i++)
        if (memcmp(buf + i, key, sizeof key) == 0) {
            unsigned char bin = buf[i + sizeof key];
            return (long)(i + sizeof key) + (bin == 0xc4 ? 2 : bin == 0xc5 ? 3 : 5);
        }
    fail_msg("no params key in %s", path);
    return -1;
}

/* An f16 file with its param 3 made infinite is refused, left in place or not. */
static void refuses_infinite_half(const char *path)
{
    long at = params_offset(path) + 2 * 3;
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fwrite("\x00\x7c", 1, 2, f), 2);
    fclose(f);
    char err[SAT_ERR_MAX] = "";
    for (int flags = 0; flags <= SAT_MODEL_IN_PLACE; flags += SAT_MODEL_IN_PLACE) {
        assert_null(sat_model_load(path, flags, err, sizeof err));
        assert_non_null(strstr(err, "params[3] is not finite"));
    }
}

/* SAT_MODEL_IN_PLACE: f32 params are used where they lie in the file's
 * bytes exactly when they are aligned there; f16 ones are left there
 * (params16) until converted; loads without the flag are copies.  Names of
 * four lengths move the params through every offset mod 4, so both cases
 * happen. */
static void test_load_in_place(void **state)
{
    int seen[2] = {0, 0};
    for (int len = 1; len <= 4; len++) {
        sat_model *m = tiny_model();
        free(m->name);
        m->name = sat_xstrdup("abcd" + 4 - len);
        sat_model_save(m, tmp_path("p.satm"), 0);
        int aligned = params_offset(tmp_path("p.satm")) % 4 == 0;
        char err[SAT_ERR_MAX] = "";
        sat_model *l = sat_model_load(tmp_path("p.satm"), SAT_MODEL_IN_PLACE, err, sizeof err);
        assert_non_null(l);
        assert_int_equal(l->params_in_place, aligned);
        assert_true(l->file_bytes == NULL || aligned);
        assert_memory_equal(m->params, l->params, m->nparams * sizeof(float));
        seen[aligned] = 1;
        sat_model_free(l);
        l = sat_model_load(tmp_path("p.satm"), 0, err, sizeof err);
        assert_false(l->params_in_place);
        sat_model_free(l);
        sat_model_save(m, tmp_path("p16.satm"), 1);
        l = sat_model_load(tmp_path("p16.satm"), SAT_MODEL_IN_PLACE, err, sizeof err);
        sat_model *plain = sat_model_load(tmp_path("p16.satm"), 0, err, sizeof err);
        assert_non_null(l);
        assert_false(l->params_in_place);
        assert_null(l->params);
        assert_non_null(l->params16);
        assert_null(plain->params16);
        sat_model_convert_params(l);
        assert_memory_equal(l->params, plain->params, m->nparams * sizeof(float));
        sat_model_free(plain);
        sat_model_free(l);
        refuses_infinite_half(tmp_path("p16.satm"));
        sat_model_free(m);
    }
    assert_true(seen[0] && seen[1]);
}

/* A decoder: tensors, vocab and config but no graph (and no labels). */
static void test_roundtrip_no_graph(void **state)
{
    sat_model *m = sat_xcalloc(1, sizeof *m);
    m->kind = sat_xstrdup("decoder");
    m->name = sat_xstrdup("dec");
    m->source_file = sat_xstrdup("");
    m->input = m->output = -1;
    m->tensors = sat_xcalloc(2, sizeof *m->tensors);
    size_t off = 0;
    add_tensor(m, "embed", 2, (const int[]){3, 5}, &off);
    add_tensor(m, "lstm/b", 1, (const int[]){20}, &off);
    m->nparams = off;
    m->params = sat_xcalloc(off, sizeof(float));
    m->params[off - 1] = -3.5f;
    m->vocab = strings(3, (const char *const[]){"<start>", "<end>", "dog"});
    m->nvocab = 3;
    sat_model_save(m, tmp_path("dec.satm"), 1);
    char err[SAT_ERR_MAX] = "";
    sat_model *l = sat_model_load(tmp_path("dec.satm"), SAT_MODEL_VERIFY, err, sizeof err);
    assert_non_null(l);
    assert_same_structure(m, l);
    assert_int_equal(l->nops, 0);
    assert_int_equal(l->input, -1);
    assert_null(l->labels);
    assert_true(l->params[off - 1] == -3.5f);
    assert_string_equal(l->source_sha256, "");
    sat_model_free(l);
    sat_model_free(m);
}

/* Unpack a saved model, let `edit` change the object tree, pack it again and
 * load it from memory with `flags`: the error, or "" when it loads. */
typedef void (*edit_fn)(msgpack_object *root);

static const char *load_edited_with(const char *file, edit_fn edit, int flags)
{
    static char err[SAT_ERR_MAX];
    unsigned char *data;
    size_t len;
    assert_int_equal(sat_read_file(tmp_path(file), 1 << 24, &data, &len, err, sizeof err), 0);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object root;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)data, len, &off, &zone, &root), MSGPACK_UNPACK_SUCCESS);
    edit(&root);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, root);
    err[0] = 0;
    sat_model *m = sat_model_load_mem(sb.data, sb.size, "edited", flags, err, sizeof err);
    assert_true((m != NULL) == (err[0] == 0));
    sat_model_free(m);
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
    free(data);
    return err;
}

static const char *load_edited(const char *file, edit_fn edit)
{
    return load_edited_with(file, edit, SAT_MODEL_VERIFY);
}

static msgpack_object *field(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.via.str.size == strlen(key) && memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    fail_msg("no key %s", key);
    return NULL;
}

static void edit_nothing(msgpack_object *root) { (void)root; }
static void edit_type(msgpack_object *root)
{
    field(root, "type")->via.str.ptr = "features";
    field(root, "type")->via.str.size = 8;
}
static void edit_offset(msgpack_object *root)
{
    field(&field(root, "tensors")->via.array.ptr[3], "offset")->via.u64 = 117;
}
static void edit_op_input(msgpack_object *root)
{
    msgpack_object *op0 = &field(field(root, "graph"), "ops")->via.array.ptr[2];
    field(op0, "inputs")->via.array.ptr[1].via.u64 = 99;
}
static void edit_op_order(msgpack_object *root)
{
    msgpack_object *op0 = &field(field(root, "graph"), "ops")->via.array.ptr[2];
    field(op0, "inputs")->via.array.ptr[1].via.u64 = 4; /* written by a later op */
}
static void edit_stride(msgpack_object *root)
{
    msgpack_object *op0 = &field(field(root, "graph"), "ops")->via.array.ptr[0];
    field(op0, "stride")->via.array.ptr[0].via.u64 = 1; /* output H no longer 4 */
}
static void edit_weight_shape(msgpack_object *root)
{
    field(&field(root, "tensors")->via.array.ptr[0], "shape")->via.array.ptr[3].via.u64 = 1;
}
static void edit_zero_dim(msgpack_object *root)
{
    field(&field(root, "tensors")->via.array.ptr[0], "shape")->via.array.ptr[3].via.u64 = 0;
}
static void edit_param_byte(msgpack_object *root)
{
    msgpack_object *p = field(root, "params");
    ((char *)p->via.bin.ptr)[5] ^= 1;
}

static void test_load_refuses_edits(void **state)
{
    sat_model *m = tiny_model();
    sat_model_save(m, tmp_path("e.satm"), 0);
    sat_model_free(m);
    assert_string_equal(load_edited("e.satm", edit_nothing), "");
    assert_non_null(strstr(load_edited("e.satm", edit_type), "not a sat model"));
    assert_non_null(strstr(load_edited("e.satm", edit_offset), "model file edited: tensor 'dw/b' extends past params"));
    assert_non_null(strstr(load_edited("e.satm", edit_op_input), "input value 99 out of range"));
    assert_non_null(strstr(load_edited("e.satm", edit_op_order), "before it is written"));
    assert_non_null(strstr(load_edited("e.satm", edit_stride), "shapes do not fit"));
    assert_non_null(strstr(load_edited("e.satm", edit_weight_shape), "do not fit 2 input and 4 output"));
    assert_non_null(strstr(load_edited("e.satm", edit_zero_dim), "tensor 'conv/w' has a bad shape"));
    assert_non_null(strstr(load_edited("e.satm", edit_param_byte), "weights_sha256"));
    /* Without SAT_MODEL_VERIFY the weights are not hashed: only the checks above hold. */
    assert_string_equal(load_edited_with("e.satm", edit_param_byte, 0), "");
    assert_non_null(strstr(load_edited_with("e.satm", edit_zero_dim, 0), "tensor 'conv/w' has a bad shape"));
}

static void test_load_refuses_truncated(void **state)
{
    sat_model *m = tiny_model();
    sat_model_save(m, tmp_path("t.satm"), 1);
    sat_model_free(m);
    unsigned char *data;
    size_t len;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_read_file(tmp_path("t.satm"), 1 << 24, &data, &len, err, sizeof err), 0);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
        err[0] = 0;
        assert_null(sat_model_load_mem(data, cut, "t.satm", SAT_MODEL_VERIFY, err, sizeof err));
        assert_non_null(strstr(err, "model file t.satm"));
        assert_null(strchr(err, '\n'));
    }
    /* Extra bytes after the map are refused too. */
    unsigned char *longer = sat_xmalloc(len + 1);
    memcpy(longer, data, len);
    longer[len] = 0xc0;
    assert_null(sat_model_load_mem(longer, len + 1, "t.satm", SAT_MODEL_VERIFY, err, sizeof err));
    assert_non_null(strstr(err, "extra data"));
    free(longer);
    free(data);
    assert_null(sat_model_load(tmp_path("missing.satm"), SAT_MODEL_VERIFY, err, sizeof err));
    assert_non_null(strstr(err, "missing.satm"));
}

/* What is plainly no model is refused from its first bytes, named for what
 * it looks like, before it is read whole (issue 14, item 4). */
static void test_load_refuses_other_kinds(void **state)
{
    (void)state;
    static const struct { const char *bytes; size_t n; const char *says; } cases[] = {
        {"\0\0\0\0\0\0\0\0", 8, "not a sat model (it looks like zero bytes)"},
        {"\xff\xd8\xff\xe0", 4, "not a sat model (it looks like a JPEG image)"},
        {"\x1c\0\0\0TFL3", 8, "not a sat model (it looks like a TensorFlow Lite model: sat-import converts it)"},
        {"model = 1\n", 10, "not a sat model (it looks like text)"},
    };
    char err[SAT_ERR_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_null(sat_model_load_mem(cases[i].bytes, cases[i].n, "x.satm", SAT_MODEL_VERIFY, err, sizeof err));
        assert_non_null(strstr(err, "model file x.satm: "));
        assert_non_null(strstr(err, cases[i].says));
        FILE *f = fopen(tmp_path("other.satm"), "wb");
        assert_int_equal(fwrite(cases[i].bytes, 1, cases[i].n, f), cases[i].n);
        fclose(f);
        assert_null(sat_model_load(tmp_path("other.satm"), SAT_MODEL_VERIFY, err, sizeof err));
        assert_non_null(strstr(err, cases[i].says));
    }
}

static void test_validate_rejects(void **state)
{
    char err[SAT_ERR_MAX];
    sat_model *m = tiny_model();
    m->ops[1].depth_multiplier = 2;
    assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
    m->ops[1].depth_multiplier = 1;
    m->tensors[3].name[0] = 'c'; /* "cw/b" */
    m->tensors[2].name[0] = 'c'; /* "cw/w": still unique */
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    free(m->tensors[3].name);
    m->tensors[3].name = sat_xstrdup("conv/w");
    assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
    assert_non_null(strstr(err, "used twice"));
    sat_model_free(m);

    m = tiny_model();
    m->tensors[0].quant.scale[2] = 0; /* a scale must be > 0 */
    assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
    assert_non_null(strstr(err, "quantization"));
    m->tensors[0].quant.scale[2] = 0.5f;
    m->tensors[0].quant.n = 3; /* neither per tensor nor one per output channel */
    assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
    m->tensors[0].quant.n = 4;
    m->values[1].quant.n = 0; /* a float value among quantized ones is fine */
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    /* params: the largest float is fine, the first infinity or NaN is named */
    m->params[1] = -FLT_MAX;
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    m->params[5] = NAN;
    m->params[7] = -INFINITY;
    assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
    assert_non_null(strstr(err, "params[5] is not finite"));
    sat_model_free(m);
}

/* Validation names the first non-finite param wherever it lies (the check
 * tests 64 bits at a time, so every lane of a word and the tail are tried),
 * in f32 params and in f16 ones, and passes the largest finite values. */
static void test_validate_finds_each_nonfinite(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX], want[64];
    sat_model *m = tiny_model();
    size_t n = m->nparams;
    for (size_t i = 0; i < n; i++) m->params[i] = i % 2 ? FLT_MAX : -FLT_MAX;
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        float keep = m->params[i];
        m->params[i] = i % 2 ? NAN : -INFINITY;
        if (i + 1 < n) m->params[n - 1] = INFINITY; /* a later one is not named */
        assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
        snprintf(want, sizeof want, "params[%zu] is not finite", i);
        assert_non_null(strstr(err, want));
        m->params[i] = keep;
        m->params[n - 1] = FLT_MAX;
    }
    float *params = m->params;
    uint16_t *half = sat_xmalloc(n * sizeof *half);
    for (size_t i = 0; i < n; i++) half[i] = i % 2 ? 0x7bff : 0xfbff; /* +-65504 */
    m->params = NULL;
    m->params16 = half;
    assert_int_equal(sat_model_validate(m, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        uint16_t keep = half[i];
        half[i] = i % 2 ? 0x7e01 : 0xfc00; /* NaN, -inf */
        assert_int_equal(sat_model_validate(m, err, sizeof err), -1);
        snprintf(want, sizeof want, "params[%zu] is not finite", i);
        assert_non_null(strstr(err, want));
        half[i] = keep;
    }
    m->params = params;
    m->params16 = NULL;
    free(half);
    sat_model_free(m);
}

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16_exact(void **state)
{
    assert_int_equal(sat_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(sat_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(sat_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(sat_f32_to_f16(65504.f), 0x7bff);
    /* Round to nearest even: ties go to the even mantissa. */
    assert_int_equal(sat_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(sat_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(sat_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    assert_int_equal(sat_f32_to_f16(65520.f), 0x7c00); /* tie at the top rounds to inf */
    assert_int_equal(sat_f32_to_f16(65519.f), 0x7bff);
    /* Subnormals. */
    assert_int_equal(sat_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(sat_f32_to_f16(0x1p-25f), 0x0000);
    assert_int_equal(sat_f32_to_f16(3 * 0x1p-25f), 0x0002);
    assert_int_equal(sat_f32_to_f16(0x1p-14f - 0x1p-24f), 0x03ff);
    assert_int_equal(sat_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up into the normals */
    assert_true(sat_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(sat_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(sat_f16_to_f32(0x8001) == -0x1p-24f);
    /* Inf and NaN. */
    assert_int_equal(sat_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(sat_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(sat_f32_to_f16(1e30f), 0x7c00);
    uint16_t nan = sat_f32_to_f16(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_int_not_equal(nan & 0x3ff, 0);
    assert_int_not_equal(sat_f32_to_f16(f32_of_bits(0x7f800001)) & 0x3ff, 0); /* signalling NaN stays NaN */
    assert_true(isinf(sat_f16_to_f32(0xfc00)) && sat_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(sat_f16_to_f32(0x7c01)));
    /* Every non-NaN half survives f16 -> f32 -> f16, and the array form (F16C
     * where the CPU has it) gives the same bits for every half, NaNs included,
     * at any alignment. */
    static uint16_t all[65536];
    static float f[65536];
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    sat_f16_to_f32_array(all, f, 65536);
    for (uint32_t h = 0; h < 65536; h++) {
        float one = sat_f16_to_f32((uint16_t)h);
        assert_memory_equal(&f[h], &one, sizeof one);
        if (isnan(f[h])) continue;
        assert_int_equal(sat_f32_to_f16(f[h]), h);
    }
    /* f32 -> f16 in the array form (F16C where the CPU has it) rounds as
     * the scalar does: every 257th float bit pattern (all exponents, signs,
     * subnormals, NaNs), ties to even at every exponent, and a tail. */
    enum { SAMPLES = 1 << 16 };
    static float src[SAMPLES + 8 * 31 + 5];
    static uint16_t got[sizeof src / sizeof src[0]];
    size_t n = 0;
    for (uint32_t i = 0; i < SAMPLES; i++) src[n++] = f32_of_bits(i * 65537u + (i >> 3));
    for (int e = 0; e < 31; e++)
        for (int k = 0; k < 8; k++) /* 1.x * 2^(e-24): halfway between two halves, or beside it */
            src[n++] = ldexpf(1.0f + (float)(2 * k + 1) * 0x1p-11f + (float)(k % 3 - 1) * 0x1p-20f, e - 24);
    for (int k = 0; k < 5; k++) src[n++] = (float)k * 0.3f;
    sat_f32_to_f16_array(src, got, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(got[i], sat_f32_to_f16(src[i]));
    static unsigned char odd[1 + 2 * 21];
    memcpy(odd + 1, all + 1000, 2 * 21); /* 21 halves (two blocks of 8 and a tail) at an odd address */
    sat_f16_to_f32_array(odd + 1, f, 21);
    for (int i = 0; i < 21; i++) assert_true(f[i] == sat_f16_to_f32((uint16_t)(1000 + i)));
}

/* sat_f32_to_f16_exact converts as sat_f32_to_f16_array while every value
 * is exact in f16, and says no at the first one that is not (in the vector
 * part or the tail, a NaN too); sat_f16_all_finite finds an infinity or a
 * NaN anywhere, at an odd address; both with the vector paths and without. */
static void test_f16_exact_and_finite(void **state)
{
    (void)state;
    enum { N = 8 * 5 + 3, H = 16 * 3 + 5 };
    float src[N];
    uint16_t got[N], want[N];
    static unsigned char odd[1 + 2 * H];
    for (int simd = 1; simd >= 0; simd--) {
        int was = nn_use_simd(simd);
        for (int i = 0; i < N; i++) src[i] = sat_f16_to_f32((uint16_t)(0x3000 + 37 * i));
        src[7] = -0.0f, src[9] = 65504.0f, src[11] = 0x1p-24f; /* f16's edges are exact */
        sat_f32_to_f16_array(src, want, N);
        assert_true(sat_f32_to_f16_exact(src, got, N));
        assert_memory_equal(got, want, sizeof got);
        const int at[] = {0, 13, N - 1};
        const float inexact[] = {0.1f, 65520.0f, 0x1p-26f, NAN};
        for (int a = 0; a < 3; a++)
            for (int v = 0; v < 4; v++) {
                float keep = src[at[a]];
                src[at[a]] = inexact[v];
                assert_false(sat_f32_to_f16_exact(src, got, N));
                src[at[a]] = keep;
            }
        for (int i = 0; i < H; i++) {
            uint16_t h = (uint16_t)(0x3c00 + 101 * i), neg = (uint16_t)(h | 0x8000);
            memcpy(odd + 1 + 2 * i, i % 2 ? &h : &neg, 2);
        }
        assert_true(sat_f16_all_finite(odd + 1, H));
        const uint16_t bad[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01};
        for (int i = 0; i < H; i += 7)
            for (int b = 0; b < 4; b++) {
                unsigned char keep[2];
                memcpy(keep, odd + 1 + 2 * i, 2);
                memcpy(odd + 1 + 2 * i, &bad[b], 2);
                assert_false(sat_f16_all_finite(odd + 1, H));
                assert_true(sat_f16_all_finite(odd + 1, (size_t)i)); /* the halves before it */
                memcpy(odd + 1 + 2 * i, keep, 2);
            }
        nn_use_simd(was);
    }
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = {"f32.satm", "a.satm", "h.satm", "e.satm", "t.satm", "dec.satm", "other.satm",
                           "p.satm", "p16.satm"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(tmp_path(names[i]));
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_f32),
        cmocka_unit_test(test_roundtrip_f16),
        cmocka_unit_test(test_load_in_place),
        cmocka_unit_test(test_roundtrip_no_graph),
        cmocka_unit_test(test_load_refuses_edits),
        cmocka_unit_test(test_load_refuses_truncated),
        cmocka_unit_test(test_load_refuses_other_kinds),
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_validate_finds_each_nonfinite),
        cmocka_unit_test(test_f16_exact),
        cmocka_unit_test(test_f16_exact_and_finite),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
