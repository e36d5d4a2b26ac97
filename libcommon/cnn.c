/* cnn.c — see cnn.h.  Plans a model graph once (shapes at the input size,
 * the output-stride surgery, buffers), then runs it with no allocation.
 *
 * Planning, in order:
 *   1. check the graph: op kinds and arities, value and tensor indices in
 *      range, every input computed before it is read, weights consistent;
 *   2. shapes at `size`, with DeepLab's atrous rule (atrous_axis);
 *   3. what is needed: the steps up to the features, the classifier head
 *      (run only when probs are asked for), and dead ops (never run);
 *   4. fusion: a conv whose only reader is the next op, a residual ADD,
 *      accumulates straight into the other addend's buffer (GEMM beta = 1)
 *      when its kernel can (1x1 and direct kernels: nn_conv_can_accumulate);
 *   5. buffers by liveness: each value takes a free buffer when produced and
 *      returns it after its last reader, so memory does not grow with depth.
 */
#include "sat/cnn.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/nn.h"
#include "sat/nn_layers.h"
#include "sat/qnn.h"
#include "sat/util.h"

#define MAX_SIZE 2048
#define MAX_WINDOW 64
/* Activation memory over this (floats, 4 GiB) is refused rather than allocated. */
#define MAX_ARENA_FLOATS ((size_t)1 << 30)
/* Buffers start on 64-byte boundaries. */
#define ALIGN_FLOATS 16

typedef enum { PART_DEAD = 0, PART_FEATURES, PART_HEAD } cnn_part;

typedef struct {
    int h, w, c; /* softmax rows are h*w; a RESHAPE output is (rows, 1, last dim) */
} cnn_shape;

typedef struct {
    const sat_op *op;
    cnn_part part;
    nn_conv conv;       /* CONV_2D, DEPTHWISE_CONV_2D: geometry, kernel, weights */
    int accumulate;     /* conv adding into its output buffer (holds the residual) */
    int folded;         /* ADD done by the previous conv: nothing to run */
    qnn_conv q;         /* the conv in integers (precision int8) */
    int in_float;       /* int8: run in float all the same (plan_float_stem) */
    int quantize;       /* in_float, and an integer step reads the output */
} cnn_step;

struct sat_cnn {
    const sat_model *m;
    cnn_shape *shape;   /* [nvalues] at this input size */
    size_t *offset;     /* [nvalues] floats into the arena */
    cnn_step *steps;    /* [nops] */
    size_t arena_floats, scratch_floats;
    int features;       /* value index: the pool's input */
    int num_classes;
    double macs;
    sat_cnn_precision precision;
    sat_pool *pool8;      /* int8: the integer kernels' packed weights */
    size_t scratch_bytes; /* int8: the integer kernels' scratch */
};

struct sat_cnn_work {
    float *arena;
    float *scratch;
    uint8_t *arena8;    /* int8: the values as uint8, at the same offsets (in bytes) */
    void *scratch8;
};


static size_t shape_count(cnn_shape s) { return (size_t)s.h * s.w * s.c; }

/* ---- 1. graph checks ---- */

static int arity(sat_op_kind k)
{
    return k == SAT_OP_ADD ? 2 : 1;
}

/* A parameter tensor of `ndim` dims inside params; its index or -1. */
static int check_tensor(const sat_model *m, int t, int ndim)
{
    if (t < 0 || t >= m->ntensors) return -1;
    const sat_tensor *tn = &m->tensors[t];
    if (tn->ndim != ndim || tn->count > INT_MAX || tn->offset > m->nparams ||
        tn->count > m->nparams - tn->offset)
        return -1;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (tn->shape[i] < 1) return -1;
        n *= (size_t)tn->shape[i];
        if (n > INT_MAX) return -1;
    }
    return n == tn->count ? t : -1;
}

static int check_op(const sat_model *m, int i, const char *defined, char *err, size_t errlen)
{
    const sat_op *op = &m->ops[i];
    if (op->kind < SAT_OP_CONV_2D || op->kind > SAT_OP_SOFTMAX)
        return sat_fail(err, errlen, "op %d: unknown kind %d", i, (int)op->kind);
    if (op->ninputs != arity(op->kind))
        return sat_fail(err, errlen, "op %d (%s): %d inputs, expected %d", i, sat_op_name(op->kind),
                    op->ninputs, arity(op->kind));
    for (int j = 0; j < op->ninputs; j++) {
        int v = op->inputs[j];
        if (v < 0 || v >= m->nvalues || !defined[v])
            return sat_fail(err, errlen, "op %d (%s): input %d is not computed before it", i,
                        sat_op_name(op->kind), v);
    }
    if (op->output < 0 || op->output >= m->nvalues || defined[op->output])
        return sat_fail(err, errlen, "op %d (%s): bad output value %d", i, sat_op_name(op->kind),
                    op->output);
    if (op->act < SAT_ACT_NONE || op->act > SAT_ACT_RELU6 ||
        (op->pad != SAT_PAD_SAME && op->pad != SAT_PAD_VALID))
        return sat_fail(err, errlen, "op %d (%s): unknown activation or padding", i,
                    sat_op_name(op->kind));
    if (op->kind == SAT_OP_CONV_2D || op->kind == SAT_OP_DEPTHWISE_CONV_2D) {
        if (check_tensor(m, op->weights, 4) < 0)
            return sat_fail(err, errlen, "op %d (%s): bad weights tensor", i, sat_op_name(op->kind));
        if (op->bias >= 0 && (check_tensor(m, op->bias, 1) < 0 ||
                              m->tensors[op->bias].shape[0] != m->tensors[op->weights].shape[
                                  op->kind == SAT_OP_CONV_2D ? 0 : 3]))
            return sat_fail(err, errlen, "op %d (%s): bias does not match the weights", i,
                        sat_op_name(op->kind));
        if (op->stride_h < 1 || op->stride_w < 1 || op->dilation_h < 1 || op->dilation_w < 1 ||
            op->stride_h > 64 || op->stride_w > 64 || op->dilation_h > 64 || op->dilation_w > 64)
            return sat_fail(err, errlen, "op %d (%s): stride or dilation out of range", i,
                        sat_op_name(op->kind));
    }
    return 0;
}

static int check_graph(const sat_model *m, char *err, size_t errlen)
{
    if (m->nops < 1 || m->nvalues < 1 || !m->ops || !m->values)
        return sat_fail(err, errlen, "model '%s' has no graph", m->name ? m->name : "?");
    if (m->input < 0 || m->input >= m->nvalues || m->output < 0 || m->output >= m->nvalues)
        return sat_fail(err, errlen, "graph input or output value out of range");
    const sat_value *in = &m->values[m->input];
    if (in->ndim != 4 || in->shape[0] != 1 || in->shape[3] != 3)
        return sat_fail(err, errlen, "graph input is not a 1xHxWx3 image");
    char *defined = sat_xcalloc((size_t)m->nvalues, 1);
    defined[m->input] = 1;
    int rc = 0;
    for (int i = 0; i < m->nops && rc == 0; i++) {
        rc = check_op(m, i, defined, err, errlen);
        if (rc == 0) defined[m->ops[i].output] = 1;
    }
    if (rc == 0 && !defined[m->output]) rc = sat_fail(err, errlen, "graph output is never computed");
    free(defined);
    return rc;
}

/* ---- 2. shapes with the output-stride surgery ---- */

typedef struct {
    int output_stride;
    int running_h, running_w; /* stride so far */
    int rate_h, rate_w;       /* dilation owed to the strides removed so far */
} atrous_state;

/* DeepLab's rule on one axis: a window wider than 1 is dilated by the rate
 * owed so far; a stride that would take the running stride past the output
 * stride is dropped (the op runs at stride 1 with the current rate) and every
 * later window owes that stride as extra dilation. */
static void atrous_axis(int output_stride, int k, int *stride, int *dil, int *running, int *rate)
{
    if (k > 1) *dil *= *rate;
    if (*stride == 1) return;
    if (*running * *stride > output_stride) {
        *rate *= *stride;
        *stride = 1;
    } else {
        *running *= *stride;
    }
}

static int plan_conv(sat_cnn *cnn, int i, atrous_state *as, char *err, size_t errlen)
{
    const sat_model *m = cnn->m;
    const sat_op *op = &m->ops[i];
    cnn_step *st = &cnn->steps[i];
    const sat_tensor *w = &m->tensors[op->weights];
    cnn_shape in = cnn->shape[op->inputs[0]];
    int depthwise = op->kind == SAT_OP_DEPTHWISE_CONV_2D;
    int out_c = depthwise ? w->shape[3] : w->shape[0];
    if (depthwise ? w->shape[0] != 1 || out_c % in.c != 0 : w->shape[3] != in.c)
        return sat_fail(err, errlen, "op %d (%s): weights [%d][%d][%d][%d] do not fit a %d-channel input",
                    i, sat_op_name(op->kind), w->shape[0], w->shape[1], w->shape[2], w->shape[3], in.c);
    if (w->shape[1] > MAX_WINDOW || w->shape[2] > MAX_WINDOW)
        return sat_fail(err, errlen, "op %d (%s): %dx%d window is larger than %d", i,
                    sat_op_name(op->kind), w->shape[1], w->shape[2], MAX_WINDOW);
    int sh = op->stride_h, sw = op->stride_w, dh = op->dilation_h, dw = op->dilation_w;
    atrous_axis(as->output_stride, w->shape[1], &sh, &dh, &as->running_h, &as->rate_h);
    atrous_axis(as->output_stride, w->shape[2], &sw, &dw, &as->running_w, &as->rate_w);
    if (as->rate_h > MAX_SIZE || as->rate_w > MAX_SIZE)
        return sat_fail(err, errlen, "op %d (%s): too many strides to remove for output stride %d",
                    i, sat_op_name(op->kind), as->output_stride);
    nn_conv_geom g;
    if (nn_conv_geom_init(&g, in.h, in.w, in.c, out_c, w->shape[1], w->shape[2], sh, sw, dh, dw,
                          op->pad) < 0)
        return sat_fail(err, errlen, "op %d (%s): %dx%d window does not fit a %dx%d input", i,
                    sat_op_name(op->kind), w->shape[1], w->shape[2], in.h, in.w);
    const float *bias = op->bias >= 0 ? m->params + m->tensors[op->bias].offset : NULL;
    if (nn_conv_init(&st->conv, &g, depthwise, m->params + w->offset, bias, op->act,
                     NN_KERNEL_AUTO) < 0)
        return sat_fail(err, errlen, "op %d (%s): no kernel for it", i, sat_op_name(op->kind));
    cnn->shape[op->output] = (cnn_shape){g.out_h, g.out_w, out_c};
    return 0;
}

static int plan_shapes(sat_cnn *cnn, int size, int output_stride, char *err, size_t errlen)
{
    const sat_model *m = cnn->m;
    atrous_state as = {output_stride, 1, 1, 1, 1};
    cnn->shape[m->input] = (cnn_shape){size, size, 3};
    for (int i = 0; i < m->nops; i++) {
        const sat_op *op = &m->ops[i];
        cnn_shape a = cnn->shape[op->inputs[0]];
        switch (op->kind) {
        case SAT_OP_CONV_2D:
        case SAT_OP_DEPTHWISE_CONV_2D:
            if (plan_conv(cnn, i, &as, err, errlen) < 0) return -1;
            break;
        case SAT_OP_ADD: {
            cnn_shape b = cnn->shape[op->inputs[1]];
            if (a.h != b.h || a.w != b.w || a.c != b.c)
                return sat_fail(err, errlen, "op %d (ADD): %dx%dx%d + %dx%dx%d at size %d", i,
                            a.h, a.w, a.c, b.h, b.w, b.c, size);
            cnn->shape[op->output] = a;
            break;
        }
        case SAT_OP_AVERAGE_POOL_2D: /* run as a global mean */
            cnn->shape[op->output] = (cnn_shape){1, 1, a.c};
            break;
        case SAT_OP_RESHAPE: {
            const sat_value *v = &m->values[op->output];
            int last = v->ndim >= 1 && v->ndim <= 4 ? v->shape[v->ndim - 1] : 0;
            if (last < 1 || shape_count(a) % (size_t)last != 0)
                return sat_fail(err, errlen, "op %d (RESHAPE): target shape does not fit %dx%dx%d",
                            i, a.h, a.w, a.c);
            cnn->shape[op->output] = (cnn_shape){(int)(shape_count(a) / (size_t)last), 1, last};
            break;
        }
        case SAT_OP_SOFTMAX:
            cnn->shape[op->output] = a;
            break;
        }
        if (shape_count(cnn->shape[op->output]) > MAX_ARENA_FLOATS)
            return sat_fail(err, errlen, "op %d (%s): output too large at size %d", i,
                        sat_op_name(op->kind), size);
    }
    return 0;
}

/* ---- 3. what each step is for ---- */

static void mark_needed(const sat_model *m, int value, char *needed)
{
    needed[value] = 1;
    for (int i = m->nops - 1; i >= 0; i--)
        if (needed[m->ops[i].output])
            for (int j = 0; j < m->ops[i].ninputs; j++) needed[m->ops[i].inputs[j]] = 1;
}

static int plan_parts(sat_cnn *cnn, char *err, size_t errlen)
{
    const sat_model *m = cnn->m;
    int pool = -1;
    for (int i = 0; i < m->nops; i++) {
        if (m->ops[i].kind != SAT_OP_AVERAGE_POOL_2D) continue;
        if (pool >= 0) return sat_fail(err, errlen, "ops %d and %d: more than one AVERAGE_POOL_2D", pool, i);
        pool = i;
    }
    if (pool < 0) return sat_fail(err, errlen, "no AVERAGE_POOL_2D: cannot tell where the features are");
    cnn->features = m->ops[pool].inputs[0];

    /* The head runs only if the graph output is a softmax over classes. */
    int head = -1;
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].output == m->output && m->ops[i].kind == SAT_OP_SOFTMAX) head = i;
    cnn->num_classes = head >= 0 ? cnn->shape[m->output].c : 0;
    if (head >= 0 && shape_count(cnn->shape[m->output]) != (size_t)cnn->num_classes)
        return sat_fail(err, errlen, "op %d (SOFTMAX): output is not one row of classes", head);

    char *for_features = sat_xcalloc((size_t)m->nvalues, 1);
    char *for_output = sat_xcalloc((size_t)m->nvalues, 1);
    mark_needed(m, cnn->features, for_features);
    if (head >= 0) mark_needed(m, m->output, for_output);
    for (int i = 0; i < m->nops; i++) {
        int v = m->ops[i].output;
        cnn->steps[i].part = for_features[v] ? PART_FEATURES : for_output[v] ? PART_HEAD : PART_DEAD;
    }
    free(for_features);
    free(for_output);
    return 0;
}

/* ---- 4. fusion and 5. buffers ---- */

/* For each value, the last step that reads it (-1 if none); the features and
 * the output live to the end. */
static int *plan_last_use(const sat_cnn *cnn)
{
    const sat_model *m = cnn->m;
    int *last = sat_xmalloc((size_t)m->nvalues * sizeof *last);
    for (int v = 0; v < m->nvalues; v++) last[v] = -1;
    for (int i = 0; i < m->nops; i++)
        if (cnn->steps[i].part != PART_DEAD)
            for (int j = 0; j < m->ops[i].ninputs; j++) last[m->ops[i].inputs[j]] = i;
    last[cnn->features] = last[m->output] = INT_MAX;
    return last;
}

/* The addend a conv (step i) can accumulate into, or -1: the next step must
 * be an ADD of the conv's output (read by nothing else) and of a buffer that
 * nothing reads afterwards, so the conv may overwrite it. */
static int fusable_residual(const sat_cnn *cnn, int i, const int *last, const int *readers)
{
    const sat_model *m = cnn->m;
    const cnn_step *st = &cnn->steps[i];
    if (i + 1 >= m->nops || st->op->kind != SAT_OP_CONV_2D || !nn_conv_can_accumulate(&st->conv) ||
        st->op->act != SAT_ACT_NONE)
        return -1;
    const sat_op *add = &m->ops[i + 1];
    int v = st->op->output;
    if (add->kind != SAT_OP_ADD || cnn->steps[i + 1].part != st->part || readers[v] != 1 ||
        last[v] != i + 1)
        return -1;
    int r = add->inputs[0] == v ? add->inputs[1] : add->inputs[0];
    if (r == v || r == m->input || r == st->op->inputs[0] || last[r] != i + 1) return -1;
    return r;
}

typedef struct {
    size_t *cap;
    char *busy;
    int n;
} buffer_pool;

/* A free buffer for n floats: the smallest that fits, else the largest free
 * one grown to n, else a new one. */
static int buffer_take(buffer_pool *bp, size_t n)
{
    int best = -1, largest = -1;
    for (int b = 0; b < bp->n; b++) {
        if (bp->busy[b]) continue;
        if (bp->cap[b] >= n && (best < 0 || bp->cap[b] < bp->cap[best])) best = b;
        if (largest < 0 || bp->cap[b] > bp->cap[largest]) largest = b;
    }
    if (best < 0) best = largest >= 0 ? largest : bp->n++;
    if (bp->cap[best] < n) bp->cap[best] = n;
    bp->busy[best] = 1;
    return best;
}

static void plan_buffers(sat_cnn *cnn)
{
    const sat_model *m = cnn->m;
    int *last = plan_last_use(cnn);
    int *readers = sat_xcalloc((size_t)m->nvalues, sizeof *readers);
    for (int i = 0; i < m->nops; i++)
        if (cnn->steps[i].part != PART_DEAD)
            for (int j = 0; j < m->ops[i].ninputs; j++) readers[m->ops[i].inputs[j]]++;

    buffer_pool bp = {sat_xcalloc((size_t)m->nops, sizeof *bp.cap),
                      sat_xcalloc((size_t)m->nops, 1), 0};
    int *buf = sat_xmalloc((size_t)m->nvalues * sizeof *buf);
    for (int v = 0; v < m->nvalues; v++) buf[v] = -1;
    for (int i = 0; i < m->nops; i++) {
        cnn_step *st = &cnn->steps[i];
        const sat_op *op = st->op;
        if (st->part == PART_DEAD) continue;
        int r = fusable_residual(cnn, i, last, readers);
        if (r >= 0) {
            /* The conv writes into r's buffer, which becomes the ADD's output. */
            st->accumulate = cnn->steps[i + 1].folded = 1;
            buf[op->output] = buf[m->ops[i + 1].output] = buf[r];
        } else if (!st->folded) {
            buf[op->output] = buffer_take(&bp, shape_count(cnn->shape[op->output]));
        }
        for (int j = 0; j < op->ninputs && !st->folded; j++) {
            int v = op->inputs[j];
            if (last[v] == i && buf[v] >= 0) bp.busy[buf[v]] = 0;
        }
        size_t scratch = op->kind == SAT_OP_CONV_2D ? nn_conv_scratch_floats(&st->conv) : 0;
        if (scratch > cnn->scratch_floats) cnn->scratch_floats = scratch;
    }

    size_t *start = sat_xmalloc(((size_t)bp.n + 1) * sizeof *start);
    start[0] = 0;
    for (int b = 0; b < bp.n; b++)
        start[b + 1] = start[b] + (bp.cap[b] + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    cnn->arena_floats = start[bp.n];
    for (int v = 0; v < m->nvalues; v++) cnn->offset[v] = buf[v] >= 0 ? start[buf[v]] : 0;
    free(start);
    free(buf);
    free(bp.cap);
    free(bp.busy);
    free(readers);
    free(last);
}

static double step_macs(const cnn_step *st)
{
    const nn_conv_geom *g = &st->conv.g;
    double per_output = (double)g->k_h * g->k_w;
    if (st->op->kind == SAT_OP_CONV_2D) per_output *= g->in_c;
    else if (st->op->kind != SAT_OP_DEPTHWISE_CONV_2D) return 0;
    return (double)g->out_h * g->out_w * g->out_c * per_output;
}

sat_cnn *sat_cnn_new(const sat_model *m, int size, int output_stride, char *err, size_t errlen)
{
    if (output_stride < 1 || output_stride > 64 || (output_stride & (output_stride - 1))) {
        sat_fail(err, errlen, "output stride %d is not a power of two up to 64", output_stride);
        return NULL;
    }
    if (size < output_stride || size > MAX_SIZE || size % output_stride) {
        sat_fail(err, errlen, "input size %d is not a multiple of the output stride %d in [%d, %d]",
             size, output_stride, output_stride, MAX_SIZE);
        return NULL;
    }
    if (check_graph(m, err, errlen) < 0) return NULL;

    sat_cnn *cnn = sat_xcalloc(1, sizeof *cnn);
    cnn->m = m;
    cnn->shape = sat_xcalloc((size_t)m->nvalues, sizeof *cnn->shape);
    cnn->offset = sat_xcalloc((size_t)m->nvalues, sizeof *cnn->offset);
    cnn->steps = sat_xcalloc((size_t)m->nops, sizeof *cnn->steps);
    for (int i = 0; i < m->nops; i++) cnn->steps[i].op = &m->ops[i];
    if (plan_shapes(cnn, size, output_stride, err, errlen) < 0 ||
        plan_parts(cnn, err, errlen) < 0) {
        sat_cnn_free(cnn);
        return NULL;
    }
    plan_buffers(cnn);
    if (cnn->arena_floats > MAX_ARENA_FLOATS) {
        sat_fail(err, errlen, "size %d needs %.1f GiB of activations", size,
             (double)cnn->arena_floats * sizeof(float) / (1 << 30));
        sat_cnn_free(cnn);
        return NULL;
    }
    for (int i = 0; i < m->nops; i++)
        if (cnn->steps[i].part == PART_FEATURES) cnn->macs += step_macs(&cnn->steps[i]);
    return cnn;
}

static void free_int8(sat_cnn *cnn);

void sat_cnn_free(sat_cnn *cnn)
{
    if (!cnn) return;
    for (int i = 0; i < cnn->m->nops; i++) nn_conv_free(&cnn->steps[i].conv);
    free_int8(cnn);
    free(cnn->shape);
    free(cnn->offset);
    free(cnn->steps);
    free(cnn);
}

void sat_cnn_feature_shape(const sat_cnn *cnn, int *h, int *w, int *c)
{
    cnn_shape s = cnn->shape[cnn->features];
    *h = s.h;
    *w = s.w;
    *c = s.c;
}

int sat_cnn_num_classes(const sat_cnn *cnn) { return cnn->num_classes; }

double sat_cnn_macs(const sat_cnn *cnn) { return cnn->macs; }

/* ---- int8 ---- */

const char *sat_cnn_precision_name(sat_cnn_precision p) { return p == SAT_CNN_INT8 ? "int8" : "float"; }

sat_cnn_precision sat_cnn_get_precision(const sat_cnn *cnn) { return cnn->precision; }

static qnn_q value_q(const sat_model *m, int v)
{
    const sat_quant *q = &m->values[v].quant;
    return (qnn_q){q->scale[0], q->zero_point[0]};
}

/* Every value step i reads or writes has a uint8 quantization. */
static int step_values_quantized(const sat_model *m, const sat_op *op)
{
    int ok = m->values[op->output].quant.n == 1;
    for (int j = 0; j < op->ninputs; j++) ok &= m->values[op->inputs[j]].quant.n == 1;
    return ok;
}

static int plan_int8_conv(sat_cnn *cnn, int i, char *err, size_t errlen)
{
    const sat_model *m = cnn->m;
    cnn_step *st = &cnn->steps[i];
    const sat_op *op = st->op;
    const sat_tensor *w = &m->tensors[op->weights], *b = op->bias >= 0 ? &m->tensors[op->bias] : NULL;
    if (qnn_conv_init(&st->q, &st->conv.g, op->kind == SAT_OP_DEPTHWISE_CONV_2D, m->params + w->offset,
                      &w->quant, b ? m->params + b->offset : NULL, b ? &b->quant : NULL,
                      value_q(m, op->inputs[0]), value_q(m, op->output), op->act, cnn->pool8) < 0)
        return sat_fail(err, errlen, "op %d (%s): weights '%s' are not quantized (or not on their grid)",
                        i, sat_op_name(op->kind), w->name);
    if (st->accumulate) {
        const sat_op *add = &m->ops[i + 1];
        if (!step_values_quantized(m, add))
            return sat_fail(err, errlen, "op %d (ADD): a value is not quantized", i + 1);
        int r = add->inputs[0] == op->output ? add->inputs[1] : add->inputs[0];
        qnn_conv_fuse_add(&st->q, value_q(m, r), value_q(m, add->output), add->act);
    }
    size_t scratch = qnn_conv_scratch_bytes(&st->q);
    if (scratch > cnn->scratch_bytes) cnn->scratch_bytes = scratch;
    return 0;
}

/* At int8 the stem still runs in float: the step reading the image, and
 * the depthwise convs after it, up to the first step that reads their
 * output in integers, whose input is quantized as the model says.  The
 * image's own 8 bits were the costliest rounding of the whole network.  On
 * the test photos (both views) the features' cosine to the float path's
 * was at least 0.987 with the image quantized, 0.992 with the stem's first
 * conv in float, 0.994 with the depthwise conv after it too.  The float
 * stem is 3% of the multiply-adds, and the float depthwise kernel beats the
 * integer one at 32 channels. */
static void plan_float_stem(sat_cnn *cnn)
{
    const sat_model *m = cnn->m;
    char *in_float = sat_xcalloc((size_t)m->nvalues, 1);
    in_float[m->input] = 1;
    for (int i = 0; i < m->nops; i++) {
        cnn_step *st = &cnn->steps[i];
        const sat_op *op = st->op;
        st->in_float = st->quantize = 0;
        if (st->part != PART_FEATURES || st->folded) continue;
        int reads_image = 0;
        for (int j = 0; j < op->ninputs; j++) reads_image |= op->inputs[j] == m->input;
        st->in_float = reads_image || (op->kind == SAT_OP_DEPTHWISE_CONV_2D && in_float[op->inputs[0]]);
        in_float[op->output] = (char)st->in_float;
        if (st->in_float) continue;
        for (int j = 0; j < op->ninputs; j++)
            for (int k = 0; k < i && in_float[op->inputs[j]]; k++)
                if (m->ops[k].output == op->inputs[j]) cnn->steps[k].quantize = 1;
    }
    for (int k = 0; k < m->nops; k++)
        if (cnn->steps[k].in_float && m->ops[k].output == cnn->features) cnn->steps[k].quantize = 1;
    free(in_float);
}

static int plan_int8(sat_cnn *cnn, char *err, size_t errlen)
{
    const sat_model *m = cnn->m;
    if (m->values[cnn->features].quant.n != 1)
        return sat_fail(err, errlen, "the model has no uint8 quantization of its features");
    plan_float_stem(cnn);
    for (int i = 0; i < m->nops; i++) {
        cnn_step *st = &cnn->steps[i];
        const sat_op *op = st->op;
        if (st->part != PART_FEATURES || st->folded) continue;
        if (st->in_float) {
            if (op->ninputs != 1 || st->accumulate || (st->quantize && m->values[op->output].quant.n != 1))
                return sat_fail(err, errlen, "op %d (%s): in the float stem, and not a conv with a "
                                "quantized output", i, sat_op_name(op->kind));
            continue;
        }
        if (op->kind != SAT_OP_CONV_2D && op->kind != SAT_OP_DEPTHWISE_CONV_2D && op->kind != SAT_OP_ADD)
            return sat_fail(err, errlen, "op %d (%s): no integer kernel", i, sat_op_name(op->kind));
        if (!step_values_quantized(m, op))
            return sat_fail(err, errlen, "op %d (%s): a value is not quantized", i, sat_op_name(op->kind));
        if (op->kind != SAT_OP_ADD && plan_int8_conv(cnn, i, err, errlen) < 0) return -1;
    }
    return 0;
}

static void free_int8(sat_cnn *cnn)
{
    for (int i = 0; i < cnn->m->nops; i++) qnn_conv_free(&cnn->steps[i].q);
    sat_pool_free(cnn->pool8);
    cnn->pool8 = NULL;
    cnn->scratch_bytes = 0;
}

int sat_cnn_set_precision(sat_cnn *cnn, sat_cnn_precision p, char *err, size_t errlen)
{
    free_int8(cnn);
    cnn->precision = SAT_CNN_FLOAT;
    if (p == SAT_CNN_FLOAT) return 0;
    cnn->pool8 = sat_pool_new();
    if (plan_int8(cnn, err, errlen) < 0) {
        free_int8(cnn);
        return -1;
    }
    cnn->precision = SAT_CNN_INT8;
    return 0;
}

sat_cnn_work *sat_cnn_work_new(const sat_cnn *cnn)
{
    sat_cnn_work *ws = sat_xcalloc(1, sizeof *ws);
    ws->arena = sat_xmalloc_large(cnn->arena_floats * sizeof(float));
    ws->scratch = sat_xmalloc_large(cnn->scratch_floats * sizeof(float));
    if (cnn->precision == SAT_CNN_INT8) {
        ws->arena8 = sat_xmalloc_large(cnn->arena_floats);
        ws->scratch8 = sat_xmalloc(cnn->scratch_bytes ? cnn->scratch_bytes : 1);
    }
    return ws;
}

void sat_cnn_work_free(sat_cnn_work *ws)
{
    if (!ws) return;
    free(ws->arena);
    free(ws->scratch);
    free(ws->arena8);
    free(ws->scratch8);
    free(ws);
}

/* ---- forward ---- */

static const float *value_in(const sat_cnn *cnn, const sat_cnn_work *ws, const float *image, int v)
{
    return v == cnn->m->input ? image : ws->arena + cnn->offset[v];
}

static void run_step(const sat_cnn *cnn, sat_cnn_work *ws, const float *image, const cnn_step *st)
{
    const sat_op *op = st->op;
    const float *a = value_in(cnn, ws, image, op->inputs[0]);
    float *out = ws->arena + cnn->offset[op->output];
    cnn_shape s = cnn->shape[op->inputs[0]];
    switch (op->kind) {
    case SAT_OP_CONV_2D:
    case SAT_OP_DEPTHWISE_CONV_2D:
        nn_conv_forward(&st->conv, a, out, st->accumulate, ws->scratch);
        break;
    case SAT_OP_ADD:
        nn_add_forward(a, value_in(cnn, ws, image, op->inputs[1]), shape_count(s), op->act, out);
        break;
    case SAT_OP_AVERAGE_POOL_2D:
        nn_mean_pool_forward(a, s.h * s.w, s.c, out);
        nn_activate(out, (size_t)s.c, op->act);
        break;
    case SAT_OP_RESHAPE:
        memcpy(out, a, shape_count(s) * sizeof *out);
        break;
    case SAT_OP_SOFTMAX:
        nn_softmax_forward(a, s.h * s.w, s.c, op->softmax_beta, out);
        break;
    }
}

static uint8_t *value8(const sat_cnn *cnn, const sat_cnn_work *ws, int v)
{
    return ws->arena8 + cnn->offset[v];
}

static void run_step8(const sat_cnn *cnn, sat_cnn_work *ws, const cnn_step *st)
{
    const sat_model *m = cnn->m;
    const sat_op *op = st->op;
    uint8_t *out = value8(cnn, ws, op->output);
    if (op->kind == SAT_OP_ADD)
        qnn_add_forward(value8(cnn, ws, op->inputs[0]), value_q(m, op->inputs[0]),
                        value8(cnn, ws, op->inputs[1]), value_q(m, op->inputs[1]),
                        shape_count(cnn->shape[op->output]), value_q(m, op->output), op->act, out);
    else
        qnn_conv_forward(&st->q, value8(cnn, ws, op->inputs[0]), out, ws->scratch8);
}

/* The features in integers (the float stem in float, its output quantized:
 * plan_float_stem), dequantized into the float arena, where the head (if
 * run) reads them. */
static void forward_int8(const sat_cnn *cnn, sat_cnn_work *ws, const float *image)
{
    const sat_model *m = cnn->m;
    for (int i = 0; i < m->nops; i++) {
        const cnn_step *st = &cnn->steps[i];
        if (st->part != PART_FEATURES || st->folded) continue;
        if (!st->in_float) {
            run_step8(cnn, ws, st);
            continue;
        }
        int v = st->op->output;
        run_step(cnn, ws, image, st);
        if (st->quantize)
            qnn_quantize(ws->arena + cnn->offset[v], shape_count(cnn->shape[v]), value_q(m, v),
                         value8(cnn, ws, v));
    }
    qnn_dequantize(value8(cnn, ws, cnn->features), shape_count(cnn->shape[cnn->features]),
                   value_q(m, cnn->features), ws->arena + cnn->offset[cnn->features]);
}

void sat_cnn_forward(const sat_cnn *cnn, sat_cnn_work *ws, const float *image,
                     float *features, float *probs)
{
    const sat_model *m = cnn->m;
    int with_head = probs && cnn->num_classes > 0;
    if (cnn->precision == SAT_CNN_INT8) forward_int8(cnn, ws, image);
    for (int i = 0; i < m->nops; i++) {
        const cnn_step *st = &cnn->steps[i];
        if (st->part == PART_FEATURES ? cnn->precision == SAT_CNN_FLOAT : st->part == PART_HEAD && with_head)
            if (!st->folded) run_step(cnn, ws, image, st);
    }
    memcpy(features, value_in(cnn, ws, image, cnn->features),
           shape_count(cnn->shape[cnn->features]) * sizeof *features);
    if (with_head)
        memcpy(probs, ws->arena + cnn->offset[m->output], (size_t)cnn->num_classes * sizeof *probs);
}
