/* model.c — see model.h and formats/model.md.
 *
 * Loading: read the file, find the map's extent with the stream scanner
 * (which bounds container sizes by the bytes present), let msgpack-c build the
 * object tree, copy it into a sat_model, validate, and (SAT_MODEL_VERIFY)
 * check the weights' sha256 last.  Saving: pack into a memory buffer, write through sat_atomic.
 */
#include "sat/model.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/half.h"
#include "sat/sniff.h"
#include "sat/stream.h"
#include "sat/util.h"

#define MODEL_VERSION 1
#define MODEL_MAX_BYTES ((size_t)2 << 30)
#define TENSOR_MAX_DIM (1L << 24)
#define VALUE_MAX_DIM 65536L
#define VALUE_MAX_COUNT ((size_t)1 << 28)
#define OP_MAX_PARAM 65536L

static const char *const op_names[] = {
    [SAT_OP_CONV_2D] = "CONV_2D",
    [SAT_OP_DEPTHWISE_CONV_2D] = "DEPTHWISE_CONV_2D",
    [SAT_OP_ADD] = "ADD",
    [SAT_OP_AVERAGE_POOL_2D] = "AVERAGE_POOL_2D",
    [SAT_OP_RESHAPE] = "RESHAPE",
    [SAT_OP_SOFTMAX] = "SOFTMAX",
};
static const char *const act_names[] = {"NONE", "RELU", "RELU6"};
static const char *const pad_names[] = {"SAME", "VALID"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *sat_op_name(sat_op_kind kind)
{
    if ((int)kind < SAT_OP_CONV_2D || (int)kind > SAT_OP_SOFTMAX) return "?";
    return op_names[kind];
}


/* ---- validation of the in-memory model ---- */

/* Product of dims, or 0 if some dim is outside [1, max_dim] or the product
 * exceeds max_count. */
static size_t shape_count(int ndim, const int *shape, long max_dim, size_t max_count)
{
    if (ndim < 1 || ndim > 4) return 0;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > max_dim) return 0;
        if (n > max_count / (size_t)shape[i]) return 0;
        n *= (size_t)shape[i];
    }
    return n;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Quantization of something of that shape: none, per tensor, or one scale
 * per channel of `axis`; scales finite and > 0. */
static int quant_ok(const sat_quant *q, int ndim, const int *shape)
{
    if (q->n == 0) return 1;
    if (q->axis < 0 || q->axis >= ndim || (q->n != 1 && q->n != shape[q->axis])) return 0;
    for (int c = 0; c < q->n; c++)
        if (!isfinite(q->scale[c]) || !(q->scale[c] > 0)) return 0;
    return 1;
}

static int check_tensors(const sat_model *m, char *err, size_t errlen)
{
    for (int i = 0; i < m->ntensors; i++) {
        const sat_tensor *t = &m->tensors[i];
        if (!t->name || !t->name[0]) return sat_fail(err, errlen, "tensor %d has no name", i);
        size_t n = shape_count(t->ndim, t->shape, TENSOR_MAX_DIM, SIZE_MAX);
        if (n == 0 || n != t->count)
            return sat_fail(err, errlen, "tensor '%s' has a bad shape", t->name);
        if (t->offset > m->nparams || t->count > m->nparams - t->offset)
            return sat_fail(err, errlen, "tensor '%s' extends past params", t->name);
        if (!quant_ok(&t->quant, t->ndim, t->shape))
            return sat_fail(err, errlen, "tensor '%s' has bad quantization parameters", t->name);
    }
    /* Unique names: sort a copy of the pointers (a fuzzed file may hold many). */
    char **names = sat_xmalloc((size_t)m->ntensors * sizeof *names);
    for (int i = 0; i < m->ntensors; i++) names[i] = m->tensors[i].name;
    qsort(names, (size_t)m->ntensors, sizeof *names, compare_names);
    int rc = 0;
    for (int i = 1; i < m->ntensors && rc == 0; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = sat_fail(err, errlen, "tensor name '%s' is used twice", names[i]);
    free(names);
    return rc;
}

/* TFLite output size of one spatial dimension; <= 0 when the kernel does not fit. */
static long out_size(long in, long k, long stride, long dilation, sat_padding pad)
{
    long eff = (k - 1) * dilation + 1;
    if (pad == SAT_PAD_SAME) return (in + stride - 1) / stride;
    return in >= eff ? (in - eff) / stride + 1 : 0;
}

static int same_shape(const sat_value *a, const sat_value *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->ndim) == 0;
}

static int value_count_equal(const sat_value *a, const sat_value *b)
{
    return shape_count(a->ndim, a->shape, VALUE_MAX_DIM, VALUE_MAX_COUNT) ==
           shape_count(b->ndim, b->shape, VALUE_MAX_DIM, VALUE_MAX_COUNT);
}

/* Conv/depthwise/pool: 4-d NHWC values, output H and W as TFLite computes them. */
static int check_spatial(const sat_op *op, const sat_value *in, const sat_value *out)
{
    if (in->ndim != 4 || out->ndim != 4 || in->shape[0] != 1 || out->shape[0] != 1) return -1;
    long h = out_size(in->shape[1], op->filter_h, op->stride_h, op->dilation_h, op->pad);
    long w = out_size(in->shape[2], op->filter_w, op->stride_w, op->dilation_w, op->pad);
    return out->shape[1] == h && out->shape[2] == w ? 0 : -1;
}

/* Weights of a conv ([O,KH,KW,I]) or depthwise conv ([1,KH,KW,C*dm]) against its values. */
static int check_conv_weights(const sat_model *m, const sat_op *op, const sat_value *in,
                              const sat_value *out, char *err, size_t errlen, int i)
{
    if (op->weights < 0) return sat_fail(err, errlen, "op %d (%s) has no weights", i, sat_op_name(op->kind));
    const sat_tensor *w = &m->tensors[op->weights];
    if (w->ndim != 4 || w->shape[1] != op->filter_h || w->shape[2] != op->filter_w)
        return sat_fail(err, errlen, "op %d: weights '%s' do not match the %dx%d filter", i, w->name,
                    op->filter_h, op->filter_w);
    int cin = in->shape[3], cout = out->shape[3];
    int ok = op->kind == SAT_OP_CONV_2D
                 ? w->shape[0] == cout && w->shape[3] == cin
                 : w->shape[0] == 1 && w->shape[3] == cout && (long)cin * op->depth_multiplier == cout;
    if (!ok)
        return sat_fail(err, errlen, "op %d: weights '%s' do not fit %d input and %d output channels", i,
                    w->name, cin, cout);
    if (op->bias >= 0) {
        const sat_tensor *b = &m->tensors[op->bias];
        if (b->ndim != 1 || b->shape[0] != cout)
            return sat_fail(err, errlen, "op %d: bias '%s' does not have %d elements", i, b->name, cout);
    }
    return 0;
}

/* Kind-specific checks of op i, whose indices are already known to be in range. */
static int check_op_shapes(const sat_model *m, const sat_op *op, int i, char *err, size_t errlen)
{
    const sat_value *in = &m->values[op->inputs[0]], *out = &m->values[op->output];
    const char *name = sat_op_name(op->kind);
    int has_weights = op->kind == SAT_OP_CONV_2D || op->kind == SAT_OP_DEPTHWISE_CONV_2D;
    if (!has_weights && (op->weights >= 0 || op->bias >= 0))
        return sat_fail(err, errlen, "op %d (%s) cannot have weights", i, name);
    switch (op->kind) {
    case SAT_OP_CONV_2D:
    case SAT_OP_DEPTHWISE_CONV_2D:
        if (check_spatial(op, in, out) < 0) break;
        return check_conv_weights(m, op, in, out, err, errlen, i);
    case SAT_OP_AVERAGE_POOL_2D:
        if (op->dilation_h != 1 || op->dilation_w != 1 || check_spatial(op, in, out) < 0 ||
            in->shape[3] != out->shape[3])
            break;
        return 0;
    case SAT_OP_ADD:
        if (!same_shape(in, out) || !same_shape(&m->values[op->inputs[1]], out)) break;
        return 0;
    case SAT_OP_RESHAPE:
        if (!value_count_equal(in, out)) break;
        return 0;
    case SAT_OP_SOFTMAX:
        if (!same_shape(in, out)) break;
        return 0;
    }
    return sat_fail(err, errlen, "op %d (%s): input and output shapes do not fit the op", i, name);
}

static int check_op_fields(const sat_model *m, const sat_op *op, int i, char *err, size_t errlen)
{
    if ((int)op->kind < SAT_OP_CONV_2D || (int)op->kind > SAT_OP_SOFTMAX)
        return sat_fail(err, errlen, "op %d: unknown kind %d", i, (int)op->kind);
    const char *name = sat_op_name(op->kind);
    if ((int)op->act < 0 || (int)op->act >= COUNT(act_names) || (int)op->pad < 0 ||
        (int)op->pad >= COUNT(pad_names))
        return sat_fail(err, errlen, "op %d (%s): unknown activation or padding", i, name);
    const int params[] = {op->stride_h, op->stride_w, op->dilation_h, op->dilation_w,
                          op->filter_h, op->filter_w, op->depth_multiplier};
    for (int k = 0; k < COUNT(params); k++)
        if (params[k] < 1 || params[k] > OP_MAX_PARAM)
            return sat_fail(err, errlen, "op %d (%s): stride, dilation, filter or depth multiplier out of range",
                        i, name);
    if (!(op->softmax_beta > 0) || !isfinite(op->softmax_beta))
        return sat_fail(err, errlen, "op %d (%s): softmax beta must be finite and > 0", i, name);
    if (op->ninputs != (op->kind == SAT_OP_ADD ? 2 : 1))
        return sat_fail(err, errlen, "op %d (%s): wrong number of inputs (%d)", i, name, op->ninputs);
    for (int k = 0; k < op->ninputs; k++)
        if (op->inputs[k] < 0 || op->inputs[k] >= m->nvalues)
            return sat_fail(err, errlen, "op %d (%s): input value %d out of range", i, name, op->inputs[k]);
    if (op->output < 0 || op->output >= m->nvalues)
        return sat_fail(err, errlen, "op %d (%s): output value %d out of range", i, name, op->output);
    if (op->weights < -1 || op->weights >= m->ntensors || op->bias < -1 || op->bias >= m->ntensors)
        return sat_fail(err, errlen, "op %d (%s): tensor index out of range", i, name);
    return 0;
}

static int check_graph(const sat_model *m, char *err, size_t errlen)
{
    if (m->nops == 0) {
        if (m->nvalues || m->input != -1 || m->output != -1)
            return sat_fail(err, errlen, "graph has values but no ops");
        return 0;
    }
    for (int v = 0; v < m->nvalues; v++) {
        const sat_value *val = &m->values[v];
        if (!shape_count(val->ndim, val->shape, VALUE_MAX_DIM, VALUE_MAX_COUNT))
            return sat_fail(err, errlen, "value %d has a bad shape", v);
        if (val->quant.n > 1 || !quant_ok(&val->quant, val->ndim, val->shape))
            return sat_fail(err, errlen, "value %d has bad quantization parameters", v);
    }
    if (m->input < 0 || m->input >= m->nvalues || m->output < 0 || m->output >= m->nvalues)
        return sat_fail(err, errlen, "graph input or output value out of range");
    /* Data flow: every value is written once, and read only after it is written. */
    unsigned char *defined = sat_xcalloc((size_t)m->nvalues, 1);
    defined[m->input] = 1;
    int rc = 0;
    for (int i = 0; i < m->nops && rc == 0; i++) {
        const sat_op *op = &m->ops[i];
        rc = check_op_fields(m, op, i, err, errlen);
        for (int k = 0; rc == 0 && k < op->ninputs; k++)
            if (!defined[op->inputs[k]])
                rc = sat_fail(err, errlen, "op %d reads value %d before it is written", i, op->inputs[k]);
        if (rc == 0 && defined[op->output])
            rc = sat_fail(err, errlen, "op %d writes value %d a second time", i, op->output);
        if (rc == 0) rc = check_op_shapes(m, op, i, err, errlen);
        if (rc == 0) defined[op->output] = 1;
    }
    if (rc == 0 && (!defined[m->output] || m->output == m->input))
        rc = sat_fail(err, errlen, "graph output value %d is not written by any op", m->output);
    free(defined);
    return rc;
}

/* The index of the first of n values at p (f16 or f32 by width 2 or 4, any
 * alignment) that is not finite (exponent all ones), or n.  This runs on
 * every start-up of sat-encode and sat-beam, so it tests 64 bits at a time:
 * a lane's exponent bits plus their lowest bit carry into the lane's top bit
 * exactly when they are all ones (and never into the next lane). */
static size_t first_nonfinite_of(const void *p, size_t n, int width)
{
    const uint64_t exp = width == 2 ? 0x7c007c007c007c00u : 0x7f8000007f800000u;
    const uint64_t low = width == 2 ? 0x0400040004000400u : 0x0080000000800000u;
    const uint64_t top = width == 2 ? 0x8000800080008000u : 0x8000000080000000u;
    const uint32_t lane_exp = width == 2 ? 0x7c00 : 0x7f800000;
    const size_t per_word = 8 / (size_t)width;
    const unsigned char *b = p;
    size_t words = n / per_word, w = 0;
    for (; w < words; w++) {
        uint64_t x;
        memcpy(&x, b + 8 * w, 8);
        if (((x & exp) + low) & top) break;
    }
    for (size_t i = w * per_word; i < n; i++) {
        uint16_t h;
        uint32_t v;
        if (width == 2) memcpy(&h, b + 2 * i, 2), v = h;
        else memcpy(&v, b + 4 * i, 4);
        if ((v & lane_exp) == lane_exp) return i;
    }
    return n;
}

/* The index of the first param that is not finite, or m->nparams. */
static size_t first_nonfinite(const sat_model *m)
{
    if (!m->params) return first_nonfinite_of(m->params16, m->nparams, 2);
    return first_nonfinite_of(m->params, m->nparams, 4);
}

int sat_model_validate(const sat_model *m, char *err, size_t errlen)
{
    if (!m->kind || (strcmp(m->kind, "cnn") != 0 && strcmp(m->kind, "decoder") != 0))
        return sat_fail(err, errlen, "kind must be \"cnn\" or \"decoder\"");
    if (!m->name || !m->name[0]) return sat_fail(err, errlen, "model has no name");
    if (check_tensors(m, err, errlen) < 0 || check_graph(m, err, errlen) < 0) return -1;
    size_t i = first_nonfinite(m);
    if (i < m->nparams) return sat_fail(err, errlen, "params[%zu] is not finite", i);
    return 0;
}

void sat_model_convert_params(sat_model *m)
{
    if (m->params || !m->params16) return;
    m->params = sat_xmalloc_large(m->nparams * sizeof(float));
    sat_f16_to_f32_array(m->params16, m->params, m->nparams);
}

/* ---- msgpack object -> model ---- */

static const msgpack_object *get(const msgpack_object *map, const char *key, msgpack_object_type type)
{
    const msgpack_object *o = sat_map_get(map, key);
    return o && o->type == type ? o : NULL;
}

/* An integer object in [lo, hi] (hi >= 0). */
static int obj_int(const msgpack_object *o, int64_t lo, int64_t hi, int64_t *out)
{
    if (!o) return -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)hi) return -1;
        *out = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
    } else {
        return -1;
    }
    return *out >= lo && *out <= hi ? 0 : -1;
}

static int map_int(const msgpack_object *map, const char *key, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (obj_int(sat_map_get(map, key), lo, hi, &v) < 0) return -1;
    *out = (int)v;
    return 0;
}

/* Index of the string object among names[0..n), or -1. */
static int obj_enum(const msgpack_object *o, const char *const *names, int n)
{
    if (!o || o->type != MSGPACK_OBJECT_STR) return -1;
    for (int i = 0; i < n; i++)
        if (names[i] && strlen(names[i]) == o->via.str.size &&
            memcmp(names[i], o->via.str.ptr, o->via.str.size) == 0)
            return i;
    return -1;
}

/* A shape array of 1..4 integers in [0, max_dim] (positivity is checked later). */
static int obj_shape(const msgpack_object *o, int *ndim, int shape[4])
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 || o->via.array.size > 4)
        return -1;
    *ndim = (int)o->via.array.size;
    for (int i = 0; i < *ndim; i++) {
        int64_t d;
        if (obj_int(&o->via.array.ptr[i], 0, TENSOR_MAX_DIM, &d) < 0) return -1;
        shape[i] = (int)d;
    }
    return 0;
}

/* A [h, w] pair of integers in [1, OP_MAX_PARAM]. */
static int map_pair(const msgpack_object *map, const char *key, int *h, int *w)
{
    const msgpack_object *o = get(map, key, MSGPACK_OBJECT_ARRAY);
    int64_t a, b;
    if (!o || o->via.array.size != 2 || obj_int(&o->via.array.ptr[0], 1, OP_MAX_PARAM, &a) < 0 ||
        obj_int(&o->via.array.ptr[1], 1, OP_MAX_PARAM, &b) < 0)
        return -1;
    *h = (int)a;
    *w = (int)b;
    return 0;
}

static char *obj_strdup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, 0, o->via.str.size)) return NULL;
    char *s = sat_xmalloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    return s;
}

/* Optional array of strings under key; absent or empty leaves *out NULL. */
static int parse_strings(const msgpack_object *map, const char *key, char ***out, int *n,
                         char *err, size_t errlen)
{
    const msgpack_object *o = sat_map_get(map, key);
    if (!o) return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > INT32_MAX / 2)
        return sat_fail(err, errlen, "'%s' is not an array of strings", key);
    if (o->via.array.size == 0) return 0;
    *out = sat_xcalloc(o->via.array.size, sizeof **out);
    *n = (int)o->via.array.size;
    for (int i = 0; i < *n; i++)
        if (!((*out)[i] = obj_strdup(&o->via.array.ptr[i])))
            return sat_fail(err, errlen, "'%s' entry %d is not a string", key, i);
    return 0;
}

static int parse_config(const msgpack_object *map, sat_model *m, char *err, size_t errlen)
{
    const msgpack_object *o = sat_map_get(map, "config");
    if (!o) return 0;
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > INT32_MAX / 2)
        return sat_fail(err, errlen, "'config' is not a map");
    m->config = sat_xcalloc(o->via.map.size, sizeof *m->config);
    m->nconfig = (int)o->via.map.size;
    for (int i = 0; i < m->nconfig; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        sat_config_entry *c = &m->config[i];
        if (!(c->name = obj_strdup(&kv->key)))
            return sat_fail(err, errlen, "config entry %d has no string name", i);
        switch (kv->val.type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER: c->value = (double)kv->val.via.u64; break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: c->value = (double)kv->val.via.i64; break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: c->value = kv->val.via.f64; break;
        default: return sat_fail(err, errlen, "config '%s' is not a number", c->name);
        }
    }
    return 0;
}

/* A quantization map {scale: [f...], zero_point: [i...], axis: i} (or nil:
 * none) -> q; its values are checked by sat_model_validate. */
static int parse_quant(const msgpack_object *o, sat_quant *q)
{
    if (!o || o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_MAP) return -1;
    const msgpack_object *sc = get(o, "scale", MSGPACK_OBJECT_ARRAY);
    const msgpack_object *zp = get(o, "zero_point", MSGPACK_OBJECT_ARRAY);
    if (!sc || !zp || sc->via.array.size < 1 || sc->via.array.size != zp->via.array.size ||
        sc->via.array.size > (uint32_t)TENSOR_MAX_DIM || map_int(o, "axis", 0, 3, &q->axis) < 0)
        return -1;
    q->n = (int)sc->via.array.size;
    q->scale = sat_xcalloc((size_t)q->n, sizeof *q->scale);
    q->zero_point = sat_xcalloc((size_t)q->n, sizeof *q->zero_point);
    for (int c = 0; c < q->n; c++) {
        const msgpack_object *s = &sc->via.array.ptr[c];
        int64_t z;
        if (s->type != MSGPACK_OBJECT_FLOAT32 && s->type != MSGPACK_OBJECT_FLOAT64) return -1;
        if (obj_int(&zp->via.array.ptr[c], INT32_MIN, INT32_MAX, &z) < 0) return -1;
        q->scale[c] = (float)s->via.f64;
        q->zero_point[c] = (int)z;
    }
    return 0;
}

static int parse_tensors(const msgpack_object *map, sat_model *m, char *err, size_t errlen)
{
    const msgpack_object *o = get(map, "tensors", MSGPACK_OBJECT_ARRAY);
    if (!o || o->via.array.size > INT32_MAX / 2) return sat_fail(err, errlen, "no 'tensors' array");
    m->tensors = sat_xcalloc(o->via.array.size, sizeof *m->tensors);
    m->ntensors = (int)o->via.array.size;
    for (int i = 0; i < m->ntensors; i++) {
        const msgpack_object *to = &o->via.array.ptr[i];
        sat_tensor *t = &m->tensors[i];
        int64_t offset;
        t->name = sat_map_strdup(to, "name");
        if (!t->name) return sat_fail(err, errlen, "tensor %d has no string 'name'", i);
        if (obj_shape(sat_map_get(to, "shape"), &t->ndim, t->shape) < 0)
            return sat_fail(err, errlen, "tensor '%s': 'shape' is not 1 to 4 dimensions", t->name);
        if (obj_int(sat_map_get(to, "offset"), 0, INT64_MAX, &offset) < 0)
            return sat_fail(err, errlen, "tensor '%s': 'offset' is not an unsigned integer", t->name);
        t->offset = (size_t)offset;
        t->count = shape_count(t->ndim, t->shape, TENSOR_MAX_DIM, SIZE_MAX);
        if (parse_quant(sat_map_get(to, "quant"), &t->quant) < 0)
            return sat_fail(err, errlen, "tensor '%s': 'quant' is not a quantization map", t->name);
    }
    return 0;
}

static int parse_op(const msgpack_object *o, sat_op *op, int i, char *err, size_t errlen)
{
    int kind = obj_enum(sat_map_get(o, "op"), op_names, COUNT(op_names));
    int act = obj_enum(sat_map_get(o, "act"), act_names, COUNT(act_names));
    int pad = obj_enum(sat_map_get(o, "pad"), pad_names, COUNT(pad_names));
    if (kind < 0) return sat_fail(err, errlen, "op %d: 'op' is missing or not a known operator", i);
    if (act < 0 || pad < 0) return sat_fail(err, errlen, "op %d: 'act' or 'pad' is missing or unknown", i);
    op->kind = (sat_op_kind)kind;
    op->act = (sat_activation)act;
    op->pad = (sat_padding)pad;
    const msgpack_object *in = get(o, "inputs", MSGPACK_OBJECT_ARRAY);
    if (!in || in->via.array.size < 1 || in->via.array.size > 2)
        return sat_fail(err, errlen, "op %d: 'inputs' is not an array of 1 or 2 values", i);
    op->ninputs = (int)in->via.array.size;
    for (int k = 0; k < op->ninputs; k++) {
        int64_t v;
        if (obj_int(&in->via.array.ptr[k], 0, INT32_MAX, &v) < 0)
            return sat_fail(err, errlen, "op %d: input %d is not a value index", i, k);
        op->inputs[k] = (int)v;
    }
    double beta;
    if (map_int(o, "output", 0, INT32_MAX, &op->output) < 0 ||
        map_int(o, "weights", -1, INT32_MAX, &op->weights) < 0 ||
        map_int(o, "bias", -1, INT32_MAX, &op->bias) < 0 ||
        map_pair(o, "stride", &op->stride_h, &op->stride_w) < 0 ||
        map_pair(o, "dilation", &op->dilation_h, &op->dilation_w) < 0 ||
        map_pair(o, "filter", &op->filter_h, &op->filter_w) < 0 ||
        map_int(o, "depth_multiplier", 1, OP_MAX_PARAM, &op->depth_multiplier) < 0 ||
        sat_map_float(o, "beta", &beta) < 0)
        return sat_fail(err, errlen, "op %d (%s): a field is missing or out of range", i, op_names[kind]);
    op->softmax_beta = (float)beta;
    return 0;
}

static int parse_graph(const msgpack_object *map, sat_model *m, char *err, size_t errlen)
{
    m->input = m->output = -1;
    const msgpack_object *g = sat_map_get(map, "graph");
    if (!g) return 0;
    const msgpack_object *values = get(g, "values", MSGPACK_OBJECT_ARRAY);
    const msgpack_object *ops = get(g, "ops", MSGPACK_OBJECT_ARRAY);
    if (!values || !ops || values->via.array.size > INT32_MAX / 2 || ops->via.array.size > INT32_MAX / 2)
        return sat_fail(err, errlen, "'graph' lacks 'values' or 'ops' arrays");
    if (map_int(g, "input", 0, INT32_MAX, &m->input) < 0 || map_int(g, "output", 0, INT32_MAX, &m->output) < 0)
        return sat_fail(err, errlen, "'graph' lacks 'input' or 'output'");
    m->values = sat_xcalloc(values->via.array.size, sizeof *m->values);
    m->nvalues = (int)values->via.array.size;
    for (int v = 0; v < m->nvalues; v++)
        if (obj_shape(&values->via.array.ptr[v], &m->values[v].ndim, m->values[v].shape) < 0)
            return sat_fail(err, errlen, "value %d: shape is not 1 to 4 dimensions", v);
    const msgpack_object *quant = get(g, "quant", MSGPACK_OBJECT_ARRAY);
    if (quant && quant->via.array.size != (uint32_t)m->nvalues)
        return sat_fail(err, errlen, "'graph' has %u quantizations for %d values", quant->via.array.size, m->nvalues);
    for (int v = 0; quant && v < m->nvalues; v++)
        if (parse_quant(&quant->via.array.ptr[v], &m->values[v].quant) < 0)
            return sat_fail(err, errlen, "value %d: 'quant' is not a quantization map", v);
    m->ops = sat_xcalloc(ops->via.array.size, sizeof *m->ops);
    m->nops = (int)ops->via.array.size;
    for (int i = 0; i < m->nops; i++)
        if (parse_op(&ops->via.array.ptr[i], &m->ops[i], i, err, errlen) < 0) return -1;
    return 0;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether params of esize bytes at data can be used where they lie: the
 * host reads the file's little-endian values as they are (f16 ones are read
 * by memcpy and vector loads, any alignment), and f32 ones are aligned for
 * float loads. */
static int usable_in_place(const void *data, size_t esize)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return esize == 2 || (uintptr_t)data % _Alignof(float) == 0;
#else
    (void)data;
    (void)esize;
    return 0;
#endif
}

/* dtype + params bin -> m->params: the one copy, or with SAT_MODEL_IN_PLACE
 * the bin itself when it can be (then m->params_in_place is set). */
static int parse_params(const msgpack_object *map, sat_model *m, int flags, char *err, size_t errlen)
{
    int f16 = obj_enum(sat_map_get(map, "dtype"), (const char *const[]){"f32", "f16"}, 2);
    const void *data;
    size_t len;
    if (f16 < 0) return sat_fail(err, errlen, "'dtype' is not \"f32\" or \"f16\"");
    if (sat_map_bin(map, "params", &data, &len) < 0) return sat_fail(err, errlen, "no 'params' bin");
    size_t esize = f16 ? 2 : 4;
    if (len % esize) return sat_fail(err, errlen, "'params' has %zu bytes, not a multiple of %zu", len, esize);
    const unsigned char *p = data;
    m->nparams = len / esize;
    if ((flags & SAT_MODEL_IN_PLACE) && usable_in_place(data, esize)) {
        if (f16) {
            m->params16 = data;
        } else {
            m->params = (float *)data;
            m->params_in_place = 1;
        }
        return 0;
    }
    m->params = sat_xmalloc_large(m->nparams * sizeof(float));
    if (f16) {
        sat_f16_to_f32_array(p, m->params, m->nparams);
        return 0;
    }
    for (size_t i = 0; i < m->nparams; i++) {
        uint32_t u = le32(p + 4 * i);
        memcpy(&m->params[i], &u, 4);
    }
    return 0;
}

static int is_sha256_hex(const char *s)
{
    if (strlen(s) != 64) return 0;
    return strspn(s, "0123456789abcdef") == 64;
}

static int parse_header(const msgpack_object *map, sat_model *m, char *err, size_t errlen)
{
    uint64_t v;
    if (sat_map_uint(map, "v", &v) < 0 || v != MODEL_VERSION)
        return sat_fail(err, errlen, "unsupported version (want v %d)", MODEL_VERSION);
    m->kind = sat_map_strdup(map, "kind");
    m->name = sat_map_strdup(map, "name");
    if (!m->kind || !m->name) return sat_fail(err, errlen, "no string 'kind' or 'name'");
    const msgpack_object *src = get(map, "source", MSGPACK_OBJECT_MAP);
    char *file = sat_map_strdup(src, "file"), *sha = sat_map_strdup(src, "sha256");
    char *wsha = sat_map_strdup(map, "weights_sha256");
    int rc = 0;
    if (!file || !sha || (sha[0] && !is_sha256_hex(sha)))
        rc = sat_fail(err, errlen, "'source' is not a map with 'file' and a hex 'sha256'");
    else if (!wsha || !is_sha256_hex(wsha))
        rc = sat_fail(err, errlen, "'weights_sha256' is not 64 hex digits");
    if (rc == 0) {
        m->source_file = file;
        file = NULL;
        memcpy(m->source_sha256, sha, strlen(sha) + 1);
        memcpy(m->weights_sha256, wsha, 65);
    }
    free(file);
    free(sha);
    free(wsha);
    return rc;
}

static int parse_model(const msgpack_object *map, sat_model *m, int flags, char *err, size_t errlen)
{
    if (parse_header(map, m, err, errlen) < 0 || parse_params(map, m, flags, err, errlen) < 0 ||
        parse_tensors(map, m, err, errlen) < 0 || parse_graph(map, m, err, errlen) < 0 ||
        parse_strings(map, "labels", &m->labels, &m->nlabels, err, errlen) < 0 ||
        parse_strings(map, "vocab", &m->vocab, &m->nvocab, err, errlen) < 0 ||
        parse_config(map, m, err, errlen) < 0 || sat_model_validate(m, err, errlen) < 0)
        return -1;
    if (!(flags & SAT_MODEL_VERIFY)) return 0;
    const void *data;
    size_t len;
    char sha[65];
    sat_map_bin(map, "params", &data, &len);
    sat_sha256_hex(data, len, sha);
    if (strcmp(sha, m->weights_sha256) != 0)
        return sat_fail(err, errlen, "params do not match weights_sha256 (corrupt file)");
    return 0;
}

/* Read exactly one model map: 0, or -1 with "NAME: problem" in err. */
static int load_from(sat_reader *r, const char *name, sat_model *m, int flags, char *err, size_t errlen)
{
    sat_record rec;
    char why[SAT_ERR_MAX];
    int st = sat_reader_next(r, &rec);
    if (st == SAT_READ_END) return sat_fail(err, errlen, "%s: empty file", name);
    /* The reader's messages already start with the name. */
    if (st != SAT_READ_OK) return sat_fail(err, errlen, "%s", sat_reader_error(r));
    if (!sat_record_is(&rec, "model"))
        return sat_fail(err, errlen, "%s: not a sat model (type is '%s')", name, rec.type);
    if (parse_model(&rec.obj, m, flags, why, sizeof why) < 0) return sat_fail(err, errlen, "%s: %s", name, why);
    if (sat_reader_next(r, &rec) != SAT_READ_END)
        return sat_fail(err, errlen, "%s: extra data after the model", name);
    return 0;
}

/* A model file starts with a msgpack map: anything else (an image, text,
 * zero bytes) is refused from its first bytes, before it is read whole. */
static int check_model_head(const unsigned char *head, size_t n, char *err, size_t errlen)
{
    sat_kind k = sat_sniff(head, n);
    if (k == SAT_KIND_EMPTY || k == SAT_KIND_MSGPACK_MAP) return 0;
    char what[96];
    return sat_fail(err, errlen, "not a sat model (%s%s)", sat_sniff_describe(head, n, what, sizeof what),
                k == SAT_KIND_TFLITE ? ": sat-import converts it" : "");
}

sat_model *sat_model_load_mem(const void *data, size_t len, const char *name, int flags, char *err,
                              size_t errlen)
{
    char why[SAT_ERR_MAX], head[SAT_ERR_MAX];
    int rc = -1;
    sat_model *m = sat_xcalloc(1, sizeof *m);
    if (!len) {
        sat_fail(why, sizeof why, "%s: empty file", name);
    } else if (check_model_head(data, len, head, sizeof head)) {
        sat_fail(why, sizeof why, "%s: %s", name, head);
    } else {
        /* max_record = len: the scanner refuses container sizes beyond the bytes present. */
        sat_reader *r = sat_reader_open_mem(data, len, name, len);
        rc = load_from(r, name, m, flags, why, sizeof why);
        sat_reader_close(r);
    }
    if (rc == 0) return m;
    sat_fail(err, errlen, "model file %s", why);
    sat_model_free(m);
    return NULL;
}

/* The file is read whole (sat_read_file_checked: its first 64 KiB looked at
 * first, so that what is no model is refused at once; a regular file in one
 * buffer, of huge pages when large), and params in place lie in those bytes:
 * no page faults of a mapping (~10 us each on a virtual machine), and the
 * decoder's steps read its weights through 2 MiB pages (issue 15). */
sat_model *sat_model_load(const char *path, int flags, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len;
    char why[SAT_ERR_MAX];
    if (sat_read_file_checked(path, MODEL_MAX_BYTES, check_model_head, &data, &len, why,
                              sizeof why) < 0) {
        sat_fail(err, errlen, "model file %s: %s", path, why);
        return NULL;
    }
    sat_model *m = sat_model_load_mem(data, len, path, flags, err, errlen);
    if (m && (m->params_in_place || m->params16)) m->file_bytes = data;
    else free(data);
    return m;
}

/* ---- saving ---- */

static void pack_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    sat_pack_str(pk, key);
    msgpack_pack_uint64(pk, v);
}

static void pack_int(msgpack_packer *pk, const char *key, int v)
{
    sat_pack_str(pk, key);
    msgpack_pack_int(pk, v);
}

static void pack_ints(msgpack_packer *pk, const int *v, int n)
{
    msgpack_pack_array(pk, (size_t)n);
    for (int i = 0; i < n; i++) msgpack_pack_int(pk, v[i]);
}

static void pack_pair(msgpack_packer *pk, const char *key, int h, int w)
{
    sat_pack_str(pk, key);
    pack_ints(pk, (const int[]){h, w}, 2);
}

static void pack_strings(msgpack_packer *pk, const char *key, char *const *s, int n)
{
    sat_pack_str(pk, key);
    msgpack_pack_array(pk, (size_t)n);
    for (int i = 0; i < n; i++) sat_pack_str(pk, s[i]);
}

static void pack_op(msgpack_packer *pk, const sat_op *op)
{
    msgpack_pack_map(pk, 12);
    sat_pack_kv_str(pk, "op", sat_op_name(op->kind));
    sat_pack_str(pk, "inputs");
    pack_ints(pk, op->inputs, op->ninputs);
    pack_int(pk, "output", op->output);
    pack_int(pk, "weights", op->weights);
    pack_int(pk, "bias", op->bias);
    sat_pack_kv_str(pk, "act", act_names[op->act]);
    sat_pack_kv_str(pk, "pad", pad_names[op->pad]);
    pack_pair(pk, "stride", op->stride_h, op->stride_w);
    pack_pair(pk, "dilation", op->dilation_h, op->dilation_w);
    pack_pair(pk, "filter", op->filter_h, op->filter_w);
    pack_int(pk, "depth_multiplier", op->depth_multiplier);
    sat_pack_str(pk, "beta");
    msgpack_pack_double(pk, op->softmax_beta);
}

static void pack_quant(msgpack_packer *pk, const sat_quant *q)
{
    if (!q->n) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 3);
    sat_pack_str(pk, "scale");
    msgpack_pack_array(pk, (size_t)q->n);
    for (int c = 0; c < q->n; c++) msgpack_pack_float(pk, q->scale[c]);
    sat_pack_str(pk, "zero_point");
    pack_ints(pk, q->zero_point, q->n);
    pack_int(pk, "axis", q->axis);
}

static int has_quant(const sat_model *m)
{
    for (int v = 0; v < m->nvalues; v++)
        if (m->values[v].quant.n) return 1;
    return 0;
}

static void pack_graph(msgpack_packer *pk, const sat_model *m)
{
    sat_pack_str(pk, "graph");
    int quant = has_quant(m);
    msgpack_pack_map(pk, 4 + (size_t)quant);
    if (quant) {
        sat_pack_str(pk, "quant");
        msgpack_pack_array(pk, (size_t)m->nvalues);
        for (int v = 0; v < m->nvalues; v++) pack_quant(pk, &m->values[v].quant);
    }
    sat_pack_str(pk, "values");
    msgpack_pack_array(pk, (size_t)m->nvalues);
    for (int v = 0; v < m->nvalues; v++) pack_ints(pk, m->values[v].shape, m->values[v].ndim);
    sat_pack_str(pk, "ops");
    msgpack_pack_array(pk, (size_t)m->nops);
    for (int i = 0; i < m->nops; i++) pack_op(pk, &m->ops[i]);
    pack_int(pk, "input", m->input);
    pack_int(pk, "output", m->output);
}

static void pack_tensors(msgpack_packer *pk, const sat_model *m)
{
    sat_pack_str(pk, "tensors");
    msgpack_pack_array(pk, (size_t)m->ntensors);
    for (int i = 0; i < m->ntensors; i++) {
        const sat_tensor *t = &m->tensors[i];
        msgpack_pack_map(pk, 3 + (t->quant.n > 0));
        sat_pack_kv_str(pk, "name", t->name);
        sat_pack_str(pk, "shape");
        pack_ints(pk, t->shape, t->ndim);
        pack_uint(pk, "offset", t->offset);
        if (t->quant.n) {
            sat_pack_str(pk, "quant");
            pack_quant(pk, &t->quant);
        }
    }
}

static void pack_config(msgpack_packer *pk, const sat_model *m)
{
    sat_pack_str(pk, "config");
    msgpack_pack_map(pk, (size_t)m->nconfig);
    for (int i = 0; i < m->nconfig; i++) {
        sat_pack_str(pk, m->config[i].name);
        msgpack_pack_double(pk, m->config[i].value);
    }
}

/* The params as stored: little-endian f32, or f16 (dies on a value beyond
 * the f16 range).  Returns a malloc'd buffer of *len bytes. */
static unsigned char *encode_params(const sat_model *m, const char *path, int f16, size_t *len)
{
    size_t esize = f16 ? 2 : 4;
    unsigned char *out = sat_xmalloc(m->nparams * esize);
    for (size_t i = 0; i < m->nparams; i++) {
        uint32_t u;
        if (f16) {
            u = sat_f32_to_f16(m->params[i]);
            if ((u & 0x7c00) == 0x7c00)
                sat_die("%s: params[%zu] = %g does not fit in f16", path, i, m->params[i]);
        } else {
            memcpy(&u, &m->params[i], 4);
        }
        for (size_t b = 0; b < esize; b++) out[i * esize + b] = (unsigned char)(u >> (8 * b));
    }
    *len = m->nparams * esize;
    return out;
}

void sat_model_save(sat_model *m, const char *path, int params_f16)
{
    char why[SAT_ERR_MAX];
    if (sat_model_validate(m, why, sizeof why) < 0) sat_die("%s: refusing to save: %s", path, why);
    size_t plen;
    unsigned char *params = encode_params(m, path, params_f16, &plen);
    sat_sha256_hex(params, plen, m->weights_sha256);

    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, m->nops ? 13 : 12);
    sat_pack_kv_str(&pk, "type", "model");
    pack_uint(&pk, "v", MODEL_VERSION);
    sat_pack_kv_str(&pk, "kind", m->kind);
    sat_pack_kv_str(&pk, "name", m->name);
    sat_pack_str(&pk, "source");
    msgpack_pack_map(&pk, 2);
    sat_pack_kv_str(&pk, "file", m->source_file ? m->source_file : "");
    sat_pack_kv_str(&pk, "sha256", m->source_sha256);
    sat_pack_kv_str(&pk, "weights_sha256", m->weights_sha256);
    sat_pack_kv_str(&pk, "dtype", params_f16 ? "f16" : "f32");
    sat_pack_kv_bin(&pk, "params", params, plen);
    free(params);
    pack_tensors(&pk, m);
    if (m->nops) pack_graph(&pk, m);
    pack_strings(&pk, "labels", m->labels, m->nlabels);
    pack_strings(&pk, "vocab", m->vocab, m->nvocab);
    pack_config(&pk, m);

    sat_atomic a;
    sat_atomic_open(&a, path);
    if (fwrite(buf.data, 1, buf.size, a.f) != buf.size) {
        int e = errno;
        sat_atomic_abort(&a);
        sat_die("%s: write error: %s", path, strerror(e ? e : EIO));
    }
    msgpack_sbuffer_destroy(&buf);
    sat_atomic_commit(&a);
}

/* ---- small API ---- */

void sat_quant_free(sat_quant *q)
{
    free(q->scale);
    free(q->zero_point);
    *q = (sat_quant){0};
}

static void free_strings(char **s, int n)
{
    for (int i = 0; i < n && s; i++) free(s[i]);
    free(s);
}

void sat_model_free(sat_model *m)
{
    if (!m) return;
    free(m->kind);
    free(m->name);
    free(m->source_file);
    if (!m->params_in_place) free(m->params);
    free(m->file_bytes);
    for (int i = 0; i < m->ntensors; i++) {
        free(m->tensors[i].name);
        sat_quant_free(&m->tensors[i].quant);
    }
    free(m->tensors);
    for (int v = 0; v < m->nvalues; v++) sat_quant_free(&m->values[v].quant);
    free(m->values);
    free(m->ops);
    free_strings(m->labels, m->nlabels);
    free_strings(m->vocab, m->nvocab);
    for (int i = 0; i < m->nconfig; i++) free(m->config[i].name);
    free(m->config);
    free(m);
}

int sat_model_find_tensor(const sat_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

double sat_model_config(const sat_model *m, const char *name, double dflt)
{
    for (int i = 0; i < m->nconfig; i++)
        if (strcmp(m->config[i].name, name) == 0) return m->config[i].value;
    return dflt;
}

void sat_model_add_tensor(sat_model *m, const char *name, const float *data, size_t count)
{
    size_t n = m->nparams;
    m->params = sat_xrealloc(m->params, (n + count) * sizeof(float));
    if (data) memcpy(m->params + n, data, count * sizeof(float));
    else memset(m->params + n, 0, count * sizeof(float));
    m->nparams = n + count;
    m->tensors = sat_xrealloc(m->tensors, (size_t)(m->ntensors + 1) * sizeof *m->tensors);
    m->tensors[m->ntensors++] = (sat_tensor){.name = sat_xstrdup(name), .ndim = 1,
                                             .shape = {(int)count}, .offset = n, .count = count};
}

void sat_model_set_config(sat_model *m, const char *name, double value)
{
    for (int i = 0; i < m->nconfig; i++)
        if (strcmp(m->config[i].name, name) == 0) {
            m->config[i].value = value;
            return;
        }
    m->config = sat_xrealloc(m->config, (size_t)(m->nconfig + 1) * sizeof *m->config);
    m->config[m->nconfig++] = (sat_config_entry){sat_xstrdup(name), value};
}
