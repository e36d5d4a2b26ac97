/* tflite.c — see tflite.h.
 *
 * Flatbuffer layout, as far as we need it (all little-endian):
 *   file:   u32 offset of the root table, then the identifier "TFL3"
 *   table:  i32 soffset; its vtable lives at table - soffset
 *   vtable: u16 vtable size, u16 table size, then one u16 per field: the
 *           field's offset inside the table, 0 = absent (default value)
 *   a field holding a table/vector/string: u32 offset, relative to itself
 *   vector: u32 count, then the elements (tables: u32 offsets again)
 *   union:  field N is the u8 type, field N+1 the table
 * There is no recursion: the walk follows the schema's fixed nesting.
 */
#include "sat/tflite.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/half.h"
#include "sat/util.h"

/* ---- bounds-checked flatbuffer access ---- */

typedef struct {
    const unsigned char *p;
    size_t len;
    char *err;
    size_t errlen;
} fb_file;

typedef struct {
    size_t pos, vt;       /* table and vtable positions */
    unsigned vtsize, tsize;
} fb_table;

typedef struct {
    size_t pos;           /* first element */
    size_t n;
} fb_vec;

static int malformed(fb_file *f, const char *what, size_t at)
{
    return sat_fail(f->err, f->errlen, "malformed flatbuffer: %s at byte %zu", what, at);
}

/* Little-endian unsigned of n bytes at pos; the caller has checked the range. */
static uint64_t rd(const fb_file *f, size_t pos, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | f->p[pos + (size_t)i];
    return v;
}

static int in_file(const fb_file *f, size_t pos, size_t n) { return pos <= f->len && n <= f->len - pos; }

static int fb_table_at(fb_file *f, size_t pos, fb_table *t)
{
    if (!in_file(f, pos, 4)) return malformed(f, "table out of bounds", pos);
    int64_t vt = (int64_t)pos - (int32_t)(uint32_t)rd(f, pos, 4);
    if (vt < 0 || !in_file(f, (size_t)vt, 4)) return malformed(f, "vtable out of bounds", pos);
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vtsize = (unsigned)rd(f, t->vt, 2);
    t->tsize = (unsigned)rd(f, t->vt + 2, 2);
    if (t->vtsize < 4 || !in_file(f, t->vt, t->vtsize) || t->tsize < 4 || !in_file(f, pos, t->tsize))
        return malformed(f, "bad vtable", t->vt);
    return 0;
}

/* Position of field `id` (of `size` bytes): 1 present, 0 absent, -1 error. */
static int fb_field(fb_file *f, const fb_table *t, int id, size_t size, size_t *pos)
{
    size_t slot = 4 + 2 * (size_t)id;
    if (slot + 2 > t->vtsize) return 0;
    size_t off = (size_t)rd(f, t->vt + slot, 2);
    if (off == 0) return 0;
    if (off + size > t->tsize) return malformed(f, "field outside its table", t->pos);
    *pos = t->pos + off;
    return 1;
}

/* Integer field of 1, 2, 4 or 8 bytes, sign-extended when is_signed. */
static int fb_int(fb_file *f, const fb_table *t, int id, int size, int is_signed, int64_t dflt, int64_t *out)
{
    size_t pos;
    int st = fb_field(f, t, id, (size_t)size, &pos);
    if (st <= 0) {
        *out = dflt;
        return st;
    }
    uint64_t u = rd(f, pos, size);
    if (is_signed && size < 8 && (u >> (8 * size - 1)) & 1) u |= ~UINT64_C(0) << (8 * size);
    *out = (int64_t)u;
    return 0;
}

static float f32_at(const fb_file *f, size_t pos)
{
    uint32_t u = (uint32_t)rd(f, pos, 4);
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static int fb_float(fb_file *f, const fb_table *t, int id, float dflt, float *out)
{
    size_t pos;
    int st = fb_field(f, t, id, 4, &pos);
    *out = st == 1 ? f32_at(f, pos) : dflt;
    return st < 0 ? -1 : 0;
}

/* Follow an offset field: 1 present (target set), 0 absent, -1 error. */
static int fb_ref(fb_file *f, const fb_table *t, int id, size_t *target)
{
    size_t pos;
    int st = fb_field(f, t, id, 4, &pos);
    if (st <= 0) return st;
    uint64_t to = pos + rd(f, pos, 4);
    if (to > f->len) return malformed(f, "offset out of bounds", pos);
    *target = (size_t)to;
    return 1;
}

static int fb_subtable(fb_file *f, const fb_table *t, int id, fb_table *out)
{
    size_t pos;
    int st = fb_ref(f, t, id, &pos);
    if (st <= 0) return st;
    return fb_table_at(f, pos, out) < 0 ? -1 : 1;
}

static int fb_vector_at(fb_file *f, size_t pos, size_t elem, fb_vec *v)
{
    if (!in_file(f, pos, 4)) return malformed(f, "vector out of bounds", pos);
    v->n = (size_t)rd(f, pos, 4);
    v->pos = pos + 4;
    if (v->n > (f->len - v->pos) / elem) return malformed(f, "vector longer than the file", pos);
    return 0;
}

/* A vector field of elem-byte elements; absent = empty. */
static int fb_vector(fb_file *f, const fb_table *t, int id, size_t elem, fb_vec *v)
{
    size_t pos;
    int st = fb_ref(f, t, id, &pos);
    v->n = 0;
    v->pos = 0;
    if (st <= 0) return st;
    return fb_vector_at(f, pos, elem, v);
}

static int fb_vec_table(fb_file *f, const fb_vec *v, size_t i, fb_table *t)
{
    size_t pos = v->pos + 4 * i;
    uint64_t to = pos + rd(f, pos, 4);
    if (to > f->len) return malformed(f, "offset out of bounds", pos);
    return fb_table_at(f, (size_t)to, t);
}

static int32_t fb_vec_i32(const fb_file *f, const fb_vec *v, size_t i)
{
    return (int32_t)(uint32_t)rd(f, v->pos + 4 * i, 4);
}

/* A string field (not NUL-terminated); absent = "". */
static int fb_string(fb_file *f, const fb_table *t, int id, const char **s, size_t *n)
{
    fb_vec v;
    if (fb_vector(f, t, id, 1, &v) < 0) return -1;
    *s = v.n ? (const char *)f->p + v.pos : "";
    *n = v.n;
    return 0;
}

/* ---- the TFLite schema ---- */

enum { MODEL_VERSION = 0, MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED = 0, OPCODE_BUILTIN = 3 };
enum { SUBGRAPH_TENSORS = 0, SUBGRAPH_INPUTS = 1, SUBGRAPH_OUTPUTS = 2, SUBGRAPH_OPERATORS = 3 };
enum { TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_BUFFER = 2, TENSOR_NAME = 3, TENSOR_QUANT = 4 };
enum { QUANT_SCALE = 2, QUANT_ZERO_POINT = 3, QUANT_DIMENSION = 6 };
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4 };
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1 };
enum { TYPE_FLOAT32 = 0, TYPE_FLOAT16 = 1, TYPE_INT32 = 2, TYPE_UINT8 = 3, TYPE_INT8 = 9 };
enum { BUILTIN_ADD = 0, BUILTIN_AVERAGE_POOL_2D = 1, BUILTIN_CONV_2D = 3, BUILTIN_DEPTHWISE_CONV_2D = 4,
       BUILTIN_RESHAPE = 22, BUILTIN_SOFTMAX = 25 };
/* BuiltinOptions union members. */
enum { OPTIONS_CONV = 1, OPTIONS_DEPTHWISE = 2, OPTIONS_POOL = 5, OPTIONS_SOFTMAX = 9, OPTIONS_ADD = 11 };

static const char *const builtin_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION",
    "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN",
    "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG",
    "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT",
    "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
    "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY",
    "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
    "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N",
    "GATHER_ND", "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE",
    "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D", "CONV_3D",
};

const char *sat_tflite_op_name(int code)
{
    int n = (int)(sizeof builtin_names / sizeof *builtin_names);
    return code >= 0 && code < n ? builtin_names[code] : NULL;
}

/* ---- import state ---- */

typedef struct {
    fb_file f;
    fb_vec opcodes, buffers, tensors;
    sat_model *m;
    int *value_of;      /* TFLite tensor -> graph value, or -1 */
    int *param_of;      /* TFLite tensor -> sat tensor, or -1 */
    int *param_src;     /* sat tensor -> TFLite tensor */
    size_t max_params;  /* bound on the total parameter count */
} importer;

/* TFLite tensor `ti` (checked) and its shape: 1 to 4 positive dims. */
static int tensor_table(importer *im, int64_t ti, fb_table *t)
{
    if (ti < 0 || (uint64_t)ti >= im->tensors.n)
        return sat_fail(im->f.err, im->f.errlen, "tensor index %" PRId64 " out of range", ti);
    return fb_vec_table(&im->f, &im->tensors, (size_t)ti, t);
}

static int tensor_shape(importer *im, int ti, int *ndim, int shape[4])
{
    fb_table t;
    fb_vec v;
    if (tensor_table(im, ti, &t) < 0 || fb_vector(&im->f, &t, TENSOR_SHAPE, 4, &v) < 0) return -1;
    if (v.n < 1 || v.n > 4)
        return sat_fail(im->f.err, im->f.errlen, "tensor %d has %zu dimensions (want 1 to 4)", ti, v.n);
    *ndim = (int)v.n;
    for (int i = 0; i < *ndim; i++) {
        shape[i] = fb_vec_i32(&im->f, &v, (size_t)i);
        if (shape[i] < 1)
            return sat_fail(im->f.err, im->f.errlen, "tensor %d has a dimension of %d", ti, shape[i]);
    }
    return 0;
}

/* The graph value for TFLite tensor ti, created at first use. */
/* ---- quantization parameters ---- */

typedef struct {
    fb_vec scale, zero_point;
    int64_t dim;
} quant;

/* The quantization of a tensor `name` of that shape (which must have one). */
static int read_quant(importer *im, const fb_table *t, const char *name, int ndim, const int *shape, quant *q)
{
    fb_table qt;
    int st_ = fb_subtable(&im->f, t, TENSOR_QUANT, &qt);
    if (st_ < 0) return -1;
    if (st_ == 0)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s' is quantized but has no quantization parameters", name);
    if (fb_vector(&im->f, &qt, QUANT_SCALE, 4, &q->scale) < 0 ||
        fb_vector(&im->f, &qt, QUANT_ZERO_POINT, 8, &q->zero_point) < 0 ||
        fb_int(&im->f, &qt, QUANT_DIMENSION, 4, 1, 0, &q->dim) < 0)
        return -1;
    if (q->dim < 0 || q->dim >= ndim)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s': quantized dimension out of range", name);
    size_t n = q->scale.n;
    if (n != 1 && n != (size_t)shape[q->dim])
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s' has %zu scales for %d channels",
                        name, n, shape[q->dim]);
    if (q->zero_point.n != n && q->zero_point.n != 0)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s' has %zu scales but %zu zero points",
                        name, n, q->zero_point.n);
    for (size_t c = 0; c < n; c++)
        if (!isfinite(f32_at(&im->f, q->scale.pos + 4 * c)))
            return sat_fail(im->f.err, im->f.errlen, "tensor '%s' has a non-finite scale", name);
    return 0;
}

/* q -> out, with its scales and zero points (the integer path needs them). */
static void keep_quant(const importer *im, const quant *q, sat_quant *out)
{
    out->n = (int)q->scale.n;
    out->axis = (int)q->dim;
    out->scale = sat_xmalloc(q->scale.n * sizeof *out->scale);
    out->zero_point = sat_xmalloc(q->scale.n * sizeof *out->zero_point);
    for (size_t c = 0; c < q->scale.n; c++) {
        out->scale[c] = f32_at(&im->f, q->scale.pos + 4 * c);
        out->zero_point[c] = q->zero_point.n ? (int)(int64_t)rd(&im->f, q->zero_point.pos + 8 * c, 8) : 0;
    }
}

/* A uint8 activation's scale and zero point into v (others stay float). */
static int value_quant(importer *im, const fb_table *t, int ti, sat_value *v)
{
    int64_t type;
    if (fb_int(&im->f, t, TENSOR_TYPE, 1, 1, 0, &type) < 0) return -1;
    if (type != TYPE_UINT8) return 0;
    char name[32];
    snprintf(name, sizeof name, "tensor%d", ti);
    quant q;
    if (read_quant(im, t, name, v->ndim, v->shape, &q) < 0) return -1;
    if (q.scale.n == 1) keep_quant(im, &q, &v->quant);
    return 0;
}

static int value_index(importer *im, int64_t ti, int *out)
{
    fb_table t;
    if (tensor_table(im, ti, &t) < 0) return -1;
    if (im->value_of[ti] < 0) {
        sat_value *v = &im->m->values[im->m->nvalues];
        if (tensor_shape(im, (int)ti, &v->ndim, v->shape) < 0 || value_quant(im, &t, (int)ti, v) < 0)
            return -1;
        im->value_of[ti] = im->m->nvalues++;
    }
    *out = im->value_of[ti];
    return 0;
}

static char *tensor_name(importer *im, const fb_table *t, int ti)
{
    const char *s;
    size_t n;
    if (fb_string(&im->f, t, TENSOR_NAME, &s, &n) < 0) return NULL;
    char *name;
    if (n == 0 || memchr(s, 0, n)) {
        name = sat_xmalloc(32);
        snprintf(name, 32, "tensor%d", ti);
    } else {
        name = sat_xmalloc(n + 1);
        memcpy(name, s, n);
        name[n] = 0;
    }
    return name;
}

/* The sat tensor for TFLite tensor ti (a weight or bias), laid out at first
 * use; its values are filled in later by dequantize(). */
static int param_index(importer *im, int64_t ti, int *out)
{
    fb_table t;
    if (tensor_table(im, ti, &t) < 0) return -1;
    if (im->param_of[ti] < 0) {
        sat_model *m = im->m;
        sat_tensor *st = &m->tensors[m->ntensors];
        if (tensor_shape(im, (int)ti, &st->ndim, st->shape) < 0) return -1;
        st->count = 1;
        for (int i = 0; i < st->ndim; i++) {
            if ((size_t)st->shape[i] > im->max_params / st->count)
                return sat_fail(im->f.err, im->f.errlen, "tensor %d is larger than the file can hold",
                                (int)ti);
            st->count *= (size_t)st->shape[i];
        }
        if (st->count > im->max_params - m->nparams)
            return sat_fail(im->f.err, im->f.errlen, "parameters are larger than the file can hold");
        if (!(st->name = tensor_name(im, &t, (int)ti))) return -1;
        st->offset = m->nparams;
        m->nparams += st->count;
        im->param_src[m->ntensors] = (int)ti;
        im->param_of[ti] = m->ntensors++;
    }
    *out = im->param_of[ti];
    return 0;
}

/* ---- operators ---- */

static int builtin_code(importer *im, int64_t opcode_index, int *code)
{
    fb_table t;
    int64_t deprecated, extended;
    if (opcode_index < 0 || (uint64_t)opcode_index >= im->opcodes.n)
        return sat_fail(im->f.err, im->f.errlen, "operator code index %" PRId64 " out of range",
                        opcode_index);
    if (fb_vec_table(&im->f, &im->opcodes, (size_t)opcode_index, &t) < 0 ||
        fb_int(&im->f, &t, OPCODE_DEPRECATED, 1, 1, 0, &deprecated) < 0 ||
        fb_int(&im->f, &t, OPCODE_BUILTIN, 4, 1, 0, &extended) < 0)
        return -1;
    /* Old files set only the int8 field; new ones set both, or only the
     * int32 one for codes above 127 (TFLite's GetBuiltinCode takes the max). */
    int64_t c = deprecated > extended ? deprecated : extended;
    *code = c < 0 || c > INT32_MAX ? -1 : (int)c;
    return 0;
}

static int activation(importer *im, int64_t act, sat_activation *out)
{
    switch (act) {
    case 0: *out = SAT_ACT_NONE; return 0;
    case 1: *out = SAT_ACT_RELU; return 0;
    case 3: *out = SAT_ACT_RELU6; return 0;
    default: return sat_fail(im->f.err, im->f.errlen, "unsupported fused activation %" PRId64, act);
    }
}

/* The op's options table, which must be of union type `want`. */
static int options(importer *im, const fb_table *opt, int want, const char *opname, fb_table *out)
{
    int64_t type;
    if (fb_int(&im->f, opt, OP_OPTIONS_TYPE, 1, 0, 0, &type) < 0) return -1;
    if (type != want)
        return sat_fail(im->f.err, im->f.errlen, "%s has options of type %" PRId64 " (want %d)",
                        opname, type, want);
    int st = fb_subtable(&im->f, opt, OP_OPTIONS, out);
    if (st == 0) return sat_fail(im->f.err, im->f.errlen, "%s has no options", opname);
    return st < 0 ? -1 : 0;
}

/* Padding, strides and activation at the given field ids of Conv2D,
 * DepthwiseConv2D and Pool2D options. */
static int window_options(importer *im, const fb_table *o, int act_id, sat_op *op)
{
    int64_t pad, sw, sh, act;
    if (fb_int(&im->f, o, 0, 1, 1, 0, &pad) < 0 || fb_int(&im->f, o, 1, 4, 1, 0, &sw) < 0 ||
        fb_int(&im->f, o, 2, 4, 1, 0, &sh) < 0 || fb_int(&im->f, o, act_id, 1, 1, 0, &act) < 0)
        return -1;
    if (pad != 0 && pad != 1) return sat_fail(im->f.err, im->f.errlen, "unknown padding %" PRId64, pad);
    if (sw < 1 || sh < 1 || sw > 65536 || sh > 65536)
        return sat_fail(im->f.err, im->f.errlen, "bad stride %" PRId64 "x%" PRId64, sh, sw);
    op->pad = pad == 0 ? SAT_PAD_SAME : SAT_PAD_VALID;
    op->stride_h = (int)sh;
    op->stride_w = (int)sw;
    return activation(im, act, &op->act);
}

static int dilation_options(importer *im, const fb_table *o, int w_id, sat_op *op)
{
    int64_t dw, dh;
    if (fb_int(&im->f, o, w_id, 4, 1, 1, &dw) < 0 || fb_int(&im->f, o, w_id + 1, 4, 1, 1, &dh) < 0)
        return -1;
    if (dw < 1 || dh < 1 || dw > 65536 || dh > 65536)
        return sat_fail(im->f.err, im->f.errlen, "bad dilation");
    op->dilation_h = (int)dh;
    op->dilation_w = (int)dw;
    return 0;
}

/* CONV_2D / DEPTHWISE_CONV_2D: inputs [x, weights, bias or -1]. */
static int import_conv(importer *im, const fb_table *opt, const fb_vec *in, sat_op *op)
{
    int dw = op->kind == SAT_OP_DEPTHWISE_CONV_2D;
    const char *name = sat_op_name(op->kind);
    fb_table o;
    if (in->n != 2 && in->n != 3)
        return sat_fail(im->f.err, im->f.errlen, "%s needs 2 or 3 inputs, has %zu", name, in->n);
    if (options(im, opt, dw ? OPTIONS_DEPTHWISE : OPTIONS_CONV, name, &o) < 0 ||
        window_options(im, &o, dw ? 4 : 3, op) < 0 || dilation_options(im, &o, dw ? 5 : 4, op) < 0 ||
        param_index(im, fb_vec_i32(&im->f, in, 1), &op->weights) < 0)
        return -1;
    int32_t bias = in->n == 3 ? fb_vec_i32(&im->f, in, 2) : -1;
    if (bias >= 0 && param_index(im, bias, &op->bias) < 0) return -1;
    const sat_tensor *w = &im->m->tensors[op->weights];
    if (w->ndim != 4) return sat_fail(im->f.err, im->f.errlen, "%s weights '%s' are not 4-d", name, w->name);
    op->filter_h = w->shape[1];
    op->filter_w = w->shape[2];
    if (dw) {
        /* The options' depth_multiplier is unreliable in newer files
         * (TFLite ignores it); take it from the shapes. */
        const sat_value *x = &im->m->values[op->inputs[0]];
        int cin = x->shape[x->ndim - 1];
        if (w->shape[3] % cin)
            return sat_fail(im->f.err, im->f.errlen, "%s weights '%s' do not fit %d channels",
                            name, w->name, cin);
        op->depth_multiplier = w->shape[3] / cin;
    }
    return 0;
}

static int import_pool(importer *im, const fb_table *opt, sat_op *op)
{
    fb_table o;
    int64_t fw, fh;
    if (options(im, opt, OPTIONS_POOL, "AVERAGE_POOL_2D", &o) < 0 || window_options(im, &o, 5, op) < 0 ||
        fb_int(&im->f, &o, 3, 4, 1, 0, &fw) < 0 || fb_int(&im->f, &o, 4, 4, 1, 0, &fh) < 0)
        return -1;
    if (fw < 1 || fh < 1 || fw > 65536 || fh > 65536)
        return sat_fail(im->f.err, im->f.errlen, "AVERAGE_POOL_2D has a %" PRId64 "x%" PRId64 " window",
                        fh, fw);
    op->filter_h = (int)fh;
    op->filter_w = (int)fw;
    return 0;
}

static int import_add(importer *im, const fb_table *opt, const fb_vec *in, sat_op *op)
{
    fb_table o;
    int64_t act;
    if (in->n != 2) return sat_fail(im->f.err, im->f.errlen, "ADD needs 2 inputs, has %zu", in->n);
    if (options(im, opt, OPTIONS_ADD, "ADD", &o) < 0 || fb_int(&im->f, &o, 0, 1, 1, 0, &act) < 0 ||
        activation(im, act, &op->act) < 0 || value_index(im, fb_vec_i32(&im->f, in, 1), &op->inputs[1]) < 0)
        return -1;
    op->ninputs = 2;
    return 0;
}

static int import_softmax(importer *im, const fb_table *opt, sat_op *op)
{
    fb_table o;
    float beta;
    if (options(im, opt, OPTIONS_SOFTMAX, "SOFTMAX", &o) < 0 || fb_float(&im->f, &o, 0, 0.0f, &beta) < 0)
        return -1;
    op->softmax_beta = beta;
    return 0;
}

/* Operator i of the subgraph -> m->ops[i]. */
static int import_op(importer *im, const fb_vec *operators, int i)
{
    fb_table t;
    fb_vec in, out;
    int64_t opcode;
    int code = -1;
    if (fb_vec_table(&im->f, operators, (size_t)i, &t) < 0 || fb_int(&im->f, &t, OP_OPCODE, 4, 0, 0, &opcode) < 0 ||
        builtin_code(im, opcode, &code) < 0 || fb_vector(&im->f, &t, OP_INPUTS, 4, &in) < 0 ||
        fb_vector(&im->f, &t, OP_OUTPUTS, 4, &out) < 0)
        return -1;
    sat_op *op = &im->m->ops[i];
    *op = (sat_op){.stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .filter_h = 1,
                   .filter_w = 1, .depth_multiplier = 1, .ninputs = 1, .inputs = {-1, -1},
                   .weights = -1, .bias = -1, .softmax_beta = 1.0f, .pad = SAT_PAD_VALID};
    switch (code) {
    case BUILTIN_CONV_2D: op->kind = SAT_OP_CONV_2D; break;
    case BUILTIN_DEPTHWISE_CONV_2D: op->kind = SAT_OP_DEPTHWISE_CONV_2D; break;
    case BUILTIN_ADD: op->kind = SAT_OP_ADD; break;
    case BUILTIN_AVERAGE_POOL_2D: op->kind = SAT_OP_AVERAGE_POOL_2D; break;
    case BUILTIN_RESHAPE: op->kind = SAT_OP_RESHAPE; break;
    case BUILTIN_SOFTMAX: op->kind = SAT_OP_SOFTMAX; break;
    default: {
        const char *name = sat_tflite_op_name(code);
        return name ? sat_fail(im->f.err, im->f.errlen, "unsupported operator %s (op %d)", name, i)
                    : sat_fail(im->f.err, im->f.errlen, "unsupported operator with builtin code %d (op %d)", code, i);
    }
    }
    size_t max_in = op->kind == SAT_OP_RESHAPE ? 2 : 3; /* RESHAPE: [x, shape tensor] */
    if (op->kind == SAT_OP_AVERAGE_POOL_2D || op->kind == SAT_OP_SOFTMAX) max_in = 1;
    if (in.n < 1 || in.n > max_in || out.n != 1)
        return sat_fail(im->f.err, im->f.errlen, "op %d (%s) has %zu inputs and %zu outputs",
                        i, sat_op_name(op->kind), in.n, out.n);
    if (value_index(im, fb_vec_i32(&im->f, &in, 0), &op->inputs[0]) < 0 ||
        value_index(im, fb_vec_i32(&im->f, &out, 0), &op->output) < 0)
        return -1;
    switch (op->kind) {
    case SAT_OP_CONV_2D:
    case SAT_OP_DEPTHWISE_CONV_2D: return import_conv(im, &t, &in, op);
    case SAT_OP_AVERAGE_POOL_2D: return import_pool(im, &t, op);
    case SAT_OP_ADD: return import_add(im, &t, &in, op);
    case SAT_OP_SOFTMAX: return import_softmax(im, &t, op);
    case SAT_OP_RESHAPE: return 0; /* the new shape is the output value's shape */
    }
    return 0;
}

/* ---- dequantization ---- */

/* The raw bytes of TFLite tensor t, which must be exactly `bytes` long. */
static int tensor_data(importer *im, const fb_table *t, const sat_tensor *st, size_t bytes, size_t *pos)
{
    int64_t bi, ext;
    fb_table b;
    fb_vec data;
    if (fb_int(&im->f, t, TENSOR_BUFFER, 4, 0, 0, &bi) < 0) return -1;
    if ((uint64_t)bi >= im->buffers.n)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s': buffer %" PRId64 " out of range",
                        st->name, bi);
    if (fb_vec_table(&im->f, &im->buffers, (size_t)bi, &b) < 0 ||
        fb_int(&im->f, &b, BUFFER_OFFSET, 8, 1, 0, &ext) < 0 || fb_vector(&im->f, &b, BUFFER_DATA, 1, &data) < 0)
        return -1;
    /* offset > 1 (read as signed: anything else) means external data. */
    if (ext < 0 || ext > 1)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s': data outside the flatbuffer (models over 2 GB) is not supported", st->name);
    if (data.n != bytes)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s' has %zu bytes of data, expected %zu",
                        st->name, data.n, bytes);
    *pos = data.pos;
    return 0;
}

/* Element i of uint8, int8 or int32 data at pos. */
static inline double quantized_value(const fb_file *f, int64_t type, size_t pos, size_t i)
{
    switch (type) {
    case TYPE_UINT8: return f->p[pos + i];
    case TYPE_INT8: return (int8_t)f->p[pos + i];
    default: return (int32_t)(uint32_t)rd(f, pos + 4 * i, 4);
    }
}

/* Fill sat tensor k with the float values of its TFLite tensor. */
static int dequantize(importer *im, int k)
{
    const sat_tensor *st = &im->m->tensors[k];
    float *out = im->m->params + st->offset;
    fb_table t;
    int64_t type;
    if (tensor_table(im, im->param_src[k], &t) < 0 || fb_int(&im->f, &t, TENSOR_TYPE, 1, 1, 0, &type) < 0)
        return -1;
    int esize = type == TYPE_FLOAT32 || type == TYPE_INT32 ? 4 : type == TYPE_FLOAT16 ? 2
              : type == TYPE_UINT8 || type == TYPE_INT8 ? 1 : 0;
    if (!esize)
        return sat_fail(im->f.err, im->f.errlen, "tensor '%s' has unsupported type %" PRId64, st->name, type);
    size_t pos = 0;
    if (tensor_data(im, &t, st, st->count * (size_t)esize, &pos) < 0) return -1;
    const fb_file *f = &im->f;
    if (type == TYPE_FLOAT32 || type == TYPE_FLOAT16) {
        for (size_t i = 0; i < st->count; i++)
            out[i] = esize == 4 ? f32_at(f, pos + 4 * i) : sat_f16_to_f32((uint16_t)rd(f, pos + 2 * i, 2));
        return 0;
    }
    quant q;
    if (read_quant(im, &t, st->name, st->ndim, st->shape, &q) < 0) return -1;
    keep_quant(im, &q, &im->m->tensors[k].quant);
    /* Element i belongs to channel (i / inner) % nch; per tensor, nch = 1. */
    size_t nch = q.scale.n, inner = 1;
    for (int d = (int)q.dim + 1; d < st->ndim; d++) inner *= (size_t)st->shape[d];
    for (size_t block = 0; block * inner < st->count; block++) {
        size_t c = block % nch;
        double scale = f32_at(f, q.scale.pos + 4 * c);
        double zp = q.zero_point.n ? (double)(int64_t)rd(f, q.zero_point.pos + 8 * c, 8) : 0;
        for (size_t i = block * inner; i < (block + 1) * inner; i++)
            out[i] = (float)(scale * (quantized_value(f, type, pos, i) - zp));
    }
    return 0;
}

/* ---- the whole model ---- */

/* Model -> subgraph 0 with its tensors, inputs, outputs and operators. */
static int read_model(importer *im, fb_vec *inputs, fb_vec *outputs, fb_vec *operators)
{
    fb_file *f = &im->f;
    fb_table root, sg;
    fb_vec subgraphs;
    int64_t version;
    if (f->len < 8 || memcmp(f->p + 4, "TFL3", 4) != 0)
        return sat_fail(f->err, f->errlen, "not a TensorFlow Lite file (no TFL3 identifier)");
    if (fb_table_at(f, (size_t)rd(f, 0, 4), &root) < 0 ||
        fb_int(f, &root, MODEL_VERSION, 4, 0, 0, &version) < 0)
        return -1;
    if (version != 3)
        return sat_fail(f->err, f->errlen, "TFLite schema version %" PRId64 " (want 3)", version);
    if (fb_vector(f, &root, MODEL_OPCODES, 4, &im->opcodes) < 0 ||
        fb_vector(f, &root, MODEL_SUBGRAPHS, 4, &subgraphs) < 0 ||
        fb_vector(f, &root, MODEL_BUFFERS, 4, &im->buffers) < 0)
        return -1;
    if (subgraphs.n < 1) return sat_fail(f->err, f->errlen, "no subgraph");
    if (fb_vec_table(f, &subgraphs, 0, &sg) < 0 || fb_vector(f, &sg, SUBGRAPH_TENSORS, 4, &im->tensors) < 0 ||
        fb_vector(f, &sg, SUBGRAPH_INPUTS, 4, inputs) < 0 || fb_vector(f, &sg, SUBGRAPH_OUTPUTS, 4, outputs) < 0 ||
        fb_vector(f, &sg, SUBGRAPH_OPERATORS, 4, operators) < 0)
        return -1;
    if (inputs->n != 1 || outputs->n != 1)
        return sat_fail(f->err, f->errlen, "the graph has %zu inputs and %zu outputs (want 1 and 1)",
                        inputs->n, outputs->n);
    if (operators->n == 0) return sat_fail(f->err, f->errlen, "the graph has no operators");
    return 0;
}

static int import_graph(importer *im)
{
    fb_vec inputs, outputs, operators;
    if (read_model(im, &inputs, &outputs, &operators) < 0) return -1;
    sat_model *m = im->m;
    /* Vector lengths are bounded by the file size, so these are too. */
    size_t nt = im->tensors.n;
    im->value_of = sat_xmalloc(nt * sizeof(int));
    im->param_of = sat_xmalloc(nt * sizeof(int));
    im->param_src = sat_xmalloc(nt * sizeof(int));
    for (size_t i = 0; i < nt; i++) im->value_of[i] = im->param_of[i] = -1;
    m->values = sat_xcalloc(nt, sizeof *m->values);
    m->tensors = sat_xcalloc(nt, sizeof *m->tensors);
    m->ops = sat_xcalloc(operators.n, sizeof *m->ops);
    if (value_index(im, fb_vec_i32(&im->f, &inputs, 0), &m->input) < 0) return -1;
    m->nops = (int)operators.n;
    for (int i = 0; i < m->nops; i++)
        if (import_op(im, &operators, i) < 0) return -1;
    int32_t out = fb_vec_i32(&im->f, &outputs, 0);
    if (out < 0 || (size_t)out >= nt || im->value_of[out] < 0)
        return sat_fail(im->f.err, im->f.errlen, "the graph output is not computed by any operator");
    m->output = im->value_of[out];
    m->params = sat_xmalloc(m->nparams * sizeof(float));
    for (int k = 0; k < m->ntensors; k++)
        if (dequantize(im, k) < 0) return -1;
    char why[SAT_ERR_MAX];
    if (sat_model_validate(m, why, sizeof why) < 0)
        return sat_fail(im->f.err, im->f.errlen, "unusable graph: %s", why);
    return 0;
}

/* Basename of path, without its extension when strip_ext. */
static char *base_name(const char *path, int strip_ext)
{
    const char *slash = strrchr(path, '/');
    char *s = sat_xstrdup(slash ? slash + 1 : path);
    char *dot = strip_ext ? strrchr(s, '.') : NULL;
    if (dot && dot != s) *dot = 0;
    return s;
}

sat_model *sat_tflite_import(const void *data, size_t len, const char *path, char *err, size_t errlen)
{
    importer im = {.f = {.p = data, .len = len, .err = err, .errlen = errlen}};
    /* Every parameter element takes at least a byte of some buffer; allow
     * for buffers shared by several tensors, but stay bounded by the input. */
    im.max_params = 4 * len;
    sat_model *m = im.m = sat_xcalloc(1, sizeof *m);
    m->input = m->output = -1;
    m->kind = sat_xstrdup("cnn");
    m->name = base_name(path, 1);
    m->source_file = base_name(path, 0);
    sat_sha256_hex(data, len, m->source_sha256);
    int rc = import_graph(&im);
    free(im.value_of);
    free(im.param_of);
    free(im.param_src);
    if (rc == 0) return m;
    sat_model_free(m);
    return NULL;
}
