/* decoder.c — see decoder.h.
 *
 * Rows of the training activations are time-major: row t·B + r is caption r
 * (in image-sorted order) at step t, so one step is a contiguous block of B
 * rows (one GEMM) and the layers that do not feed the recurrence — the deep
 * output and the V-way softmax, and the weight gradients of the LSTM and of
 * U_a — run once over all T·B rows.  This file is the model (parameters,
 * training, inference); its layers are in nn_layers.c.
 */
#include "sat/decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/half.h"
#include "sat/nn_layers.h"
#include "sat/util.h"

enum {
    MAX_SIZE = 1 << 16,               /* any of D E H A V */
    MAX_LOCATIONS = 1 << 12,          /* L */
    MAX_BATCH = 1 << 16,              /* captions or images in a batch */
    MAX_STEPS = 1 << 12,
};
#define MAX_PARAMS ((size_t)1 << 30)  /* 4 GiB of floats */
#define MAX_WORK ((size_t)1 << 31)    /* training arrays: 8 GiB of floats */

/* ---- parameters ---------------------------------------------------------- */

static int check_config(const sat_decoder_config *c, char *err, size_t errlen)
{
    const int v[] = { c->L, c->D, c->E, c->H, c->A, c->V };
    const char *names = "LDEHAV";
    for (int i = 0; i < 6; i++) {
        int max = i == 0 ? MAX_LOCATIONS : MAX_SIZE;
        if (v[i] < 1 || v[i] > max) {
            sat_fail(err, errlen, "decoder size %c = %d is outside [1, %d]", names[i], v[i], max);
            return -1;
        }
    }
    return 0;
}

/* Names and shapes of the tensors, in the order of sat_decoder_weights. */
static size_t tensor_table(const sat_decoder_config *c, sat_decoder_tensor *t)
{
    const int K = c->E + c->D + c->H;
    const struct { const char *name; int rows, cols; } spec[SAT_DECODER_NTENSORS] = {
        { "init_h.W", c->D, c->H }, { "init_h.b", 0, c->H },
        { "init_c.W", c->D, c->H }, { "init_c.b", 0, c->H },
        { "att.W", c->D, c->A },    { "att.b", 0, c->A },
        { "att.U", c->H, c->A },    { "att.v", 0, c->A },
        { "gate.w", 0, c->H },      { "gate.b", 0, 1 },
        { "embed", c->V, c->E },
        { "lstm.W", K, 4 * c->H },  { "lstm.b", 0, 4 * c->H },
        { "out.Lh", c->H, c->E },   { "out.bh", 0, c->E },
        { "out.Lz", c->D, c->E },
        { "out.Lo", c->E, c->V },   { "out.bo", 0, c->V },
    };
    size_t offset = 0;
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) {
        int rows = spec[i].rows;
        t[i] = (sat_decoder_tensor){
            .name = spec[i].name,
            .ndim = rows ? 2 : 1,
            .shape = { rows ? rows : spec[i].cols, rows ? spec[i].cols : 0 },
            .offset = offset,
            .count = (size_t)(rows ? rows : 1) * (size_t)spec[i].cols,
        };
        offset += t[i].count;
    }
    return offset;
}

static void point_views(sat_decoder_weights *w, float *base, const sat_decoder_tensor *t)
{
    float **slot[SAT_DECODER_NTENSORS] = {
        &w->init_h_w, &w->init_h_b, &w->init_c_w, &w->init_c_b, &w->att_w, &w->att_b,
        &w->att_u, &w->att_v, &w->gate_w, &w->gate_b, &w->embed, &w->lstm_w, &w->lstm_b,
        &w->out_h_w, &w->out_h_b, &w->out_z_w, &w->out_w, &w->out_b,
    };
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) *slot[i] = base + t[i].offset;
}

/* check_config, and the parameters' count within MAX_PARAMS: 0, or -1
 * with the reason in err. */
static int check_sizes(const sat_decoder_config *c, char *err, size_t errlen)
{
    if (check_config(c, err, errlen)) return -1;
    sat_decoder_tensor t[SAT_DECODER_NTENSORS];
    size_t n = tensor_table(c, t);
    if (n > MAX_PARAMS)
        return sat_fail(err, errlen, "decoder sizes give %zu parameters, more than %zu", n, MAX_PARAMS);
    return 0;
}

/* A decoder of config cfg (passed check_sizes) whose params are `params`
 * (nparams floats, taken) or, for NULL, zeros. */
static sat_decoder *decoder_new(sat_decoder_config cfg, float *params)
{
    sat_decoder *dec = sat_xcalloc(1, sizeof *dec);
    dec->cfg = cfg;
    dec->nparams = tensor_table(&cfg, dec->tensors);
    dec->temperature = 1.0f;
    dec->params = params ? params : sat_xmalloc_large(dec->nparams * sizeof(float));
    if (!params) memset(dec->params, 0, dec->nparams * sizeof(float));
    dec->grads = sat_xcalloc(dec->nparams, sizeof(float)); /* untouched (no pages) unless training */
    point_views(&dec->w, dec->params, dec->tensors);
    point_views(&dec->g, dec->grads, dec->tensors);
    return dec;
}

sat_decoder *sat_decoder_new(sat_decoder_config cfg, char *err, size_t errlen)
{
    return check_sizes(&cfg, err, errlen) ? NULL : decoder_new(cfg, NULL);
}

static void work_free(sat_decoder_work *w);

void sat_decoder_place(sat_decoder *dec, float *params, float *grads)
{
    if (!dec->placed) {
        free(dec->params);
        free(dec->grads);
    }
    dec->params = params, dec->grads = grads, dec->placed = 1;
    point_views(&dec->w, dec->params, dec->tensors);
    point_views(&dec->g, dec->grads, dec->tensors);
}

void sat_decoder_free(sat_decoder *dec)
{
    if (!dec) return;
    work_free(dec->work);
    if (!dec->placed) {
        free(dec->params);
        free(dec->grads);
    }
    free(dec);
}

int sat_decoder_config_equal(const sat_decoder_config *a, const sat_decoder_config *b)
{
    return a->L == b->L && a->D == b->D && a->E == b->E && a->H == b->H && a->A == b->A &&
           a->V == b->V;
}

void sat_decoder_zero_grad(sat_decoder *dec)
{
    memset(dec->grads, 0, dec->nparams * sizeof(float));
}

/* W (rows×cols, row stride ld) uniform in ±limit. */
static void fill_uniform(float *W, int rows, int cols, int ld, float limit, sat_rng *rng)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            W[(size_t)i * ld + j] = limit * (2.0f * sat_rng_uniform(rng) - 1.0f);
}

static void fill_glorot(float *W, int rows, int cols, int ld, sat_rng *rng)
{
    fill_uniform(W, rows, cols, ld, sqrtf(6.0f / (float)(rows + cols)), rng);
}

/* W (n×n, row stride ld) = the rows of a Gaussian matrix made orthonormal by
 * modified Gram–Schmidt (in double). */
static void fill_orthogonal(float *W, int n, int ld, sat_rng *rng)
{
    double *q = sat_xmalloc((size_t)n * n * sizeof(double));
    for (size_t i = 0; i < (size_t)n * n; i++) q[i] = sat_rng_normal(rng);
    for (int i = 0; i < n; i++) {
        double *qi = q + (size_t)i * n, norm = 0;
        for (int j = 0; j < i; j++) {
            const double *qj = q + (size_t)j * n;
            double dot = 0;
            for (int k = 0; k < n; k++) dot += qi[k] * qj[k];
            for (int k = 0; k < n; k++) qi[k] -= dot * qj[k];
        }
        for (int k = 0; k < n; k++) norm += qi[k] * qi[k];
        for (int k = 0; k < n; k++) W[(size_t)i * ld + k] = (float)(qi[k] /= sqrt(norm));
    }
    free(q);
}

void sat_decoder_init_params(sat_decoder *dec, sat_rng *rng)
{
    const sat_decoder_config *c = &dec->cfg;
    const sat_decoder_weights *w = &dec->w;
    const int H4 = 4 * c->H;
    memset(dec->params, 0, dec->nparams * sizeof(float));
    fill_glorot(w->init_h_w, c->D, c->H, c->H, rng);
    fill_glorot(w->init_c_w, c->D, c->H, c->H, rng);
    fill_glorot(w->att_w, c->D, c->A, c->A, rng);
    fill_glorot(w->att_u, c->H, c->A, c->A, rng);
    fill_glorot(w->att_v, c->A, 1, 1, rng);
    fill_glorot(w->gate_w, c->H, 1, 1, rng);
    fill_uniform(w->embed, c->V, c->E, c->E, 0.1f, rng);
    fill_glorot(w->lstm_w, c->E + c->D, H4, H4, rng);
    for (int gate = 0; gate < 4; gate++)
        fill_orthogonal(w->lstm_w + (size_t)(c->E + c->D) * H4 + gate * c->H, c->H, H4, rng);
    for (int j = 0; j < c->H; j++) w->lstm_b[c->H + j] = 1.0f; /* forget gate */
    fill_glorot(w->out_h_w, c->H, c->E, c->E, rng);
    fill_glorot(w->out_z_w, c->D, c->E, c->E, rng);
    fill_glorot(w->out_w, c->E, c->V, c->V, rng);
}

/* ---- model files ------------------------------------------------------------ */

static int config_int(const sat_model *m, const char *name, int *out, char *err, size_t errlen)
{
    double v = sat_model_config(m, name, NAN);
    if (!(v >= 1 && v <= MAX_SIZE && v == floor(v))) {
        sat_fail(err, errlen, "decoder model: config entry %s is %s", name,
                 isnan(v) ? "missing" : "not an integer in range");
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* m's tensor that is dec's tensor t, or NULL if it is missing or mis-shaped. */
static const sat_tensor *model_tensor(const sat_model *m, const sat_decoder_tensor *t)
{
    int k = sat_model_find_tensor(m, t->name);
    const sat_tensor *mt = k >= 0 ? &m->tensors[k] : NULL;
    int same = mt && mt->ndim == t->ndim && mt->count == t->count && mt->shape[0] == t->shape[0] &&
               (t->ndim == 1 || mt->shape[1] == t->shape[1]) && mt->offset <= m->nparams &&
               mt->count <= m->nparams - mt->offset;
    return same ? mt : NULL;
}

/* Whether m's params (nparams, tensors mt matching the decoder's t) are
 * exactly a decoder's, tensor by tensor in its order (what
 * sat_decoder_to_model writes), so that they can be taken whole. */
static int same_layout(const sat_model *m, const sat_tensor *const *mt,
                       const sat_decoder_tensor *t, size_t nparams)
{
    if (m->nparams != nparams) return 0;
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++)
        if (mt[i]->offset != t[i].offset) return 0;
    return 1;
}

/* A decoder whose inference reads its matrices (2-D tensors) from half, f16
 * bits in its own layout (a model file's, left in place): its f32 params are
 * zero pages never touched, no start-up time, but for the vectors, converted
 * from half. */
static sat_decoder *half_decoder(sat_decoder_config c, size_t nparams, float tau, const void *half)
{
    sat_decoder *dec = decoder_new(c, sat_xcalloc(nparams, sizeof(float)));
    dec->temperature = tau;
    dec->half = half;
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) {
        const sat_decoder_tensor *t = &dec->tensors[i];
        if (t->ndim == 1)
            sat_f16_to_f32_array((const char *)half + 2 * t->offset, dec->params + t->offset, t->count);
    }
    return dec;
}

/* from_model, and take_model when m is not NULL. */
static sat_decoder *decoder_from_model(const sat_model *m, sat_model *take, char *err, size_t errlen)
{
    if (m->kind && strcmp(m->kind, "decoder") != 0) {
        sat_fail(err, errlen, "model is a \"%s\", not a decoder", m->kind);
        return NULL;
    }
    sat_decoder_config c;
    if (config_int(m, "L", &c.L, err, errlen) || config_int(m, "D", &c.D, err, errlen) ||
        config_int(m, "E", &c.E, err, errlen) || config_int(m, "H", &c.H, err, errlen) ||
        config_int(m, "A", &c.A, err, errlen) || config_int(m, "V", &c.V, err, errlen))
        return NULL;
    double tau = sat_model_config(m, "att.temperature", 1.0);
    if (!(tau >= SAT_DECODER_MIN_TEMPERATURE && tau <= SAT_DECODER_MAX_TEMPERATURE)) {
        sat_fail(err, errlen, "decoder model: config entry att.temperature is not in [%g, %g]",
                 SAT_DECODER_MIN_TEMPERATURE, SAT_DECODER_MAX_TEMPERATURE);
        return NULL;
    }
    if (check_sizes(&c, err, errlen)) return NULL;
    sat_decoder_tensor t[SAT_DECODER_NTENSORS];
    size_t nparams = tensor_table(&c, t);
    const sat_tensor *mt[SAT_DECODER_NTENSORS];
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) {
        if (!(mt[i] = model_tensor(m, &t[i]))) {
            sat_fail(err, errlen, "decoder model: tensor %s is %s", t[i].name,
                     sat_model_find_tensor(m, t[i].name) >= 0 ? "mis-shaped for the config" : "missing");
            return NULL;
        }
    }
    int fits = same_layout(m, mt, t, nparams);
    if (take && take->params16 && fits) return half_decoder(c, nparams, (float)tau, take->params16);
    if (take) sat_model_convert_params(take);
    if (!m->params) {
        sat_fail(err, errlen, "decoder model: its f16 params are not converted");
        return NULL;
    }
    /* Taking the params saves a copy of ~26 MB, whose first touch was most of
     * sat-beam's start-up (issue 15). */
    float *taken = take && !m->params_in_place && fits ? take->params : NULL;
    sat_decoder *dec = decoder_new(c, taken);
    dec->temperature = (float)tau;
    if (taken) {
        take->params = NULL;
        take->nparams = 0;
        return dec;
    }
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++)
        memcpy(dec->params + t[i].offset, m->params + mt[i]->offset, t[i].count * sizeof(float));
    return dec;
}

sat_decoder *sat_decoder_from_model(const sat_model *m, char *err, size_t errlen)
{
    return decoder_from_model(m, NULL, err, errlen);
}

sat_decoder *sat_decoder_take_model(sat_model *m, char *err, size_t errlen)
{
    return decoder_from_model(m, m, err, errlen);
}

sat_model *sat_decoder_to_model(const sat_decoder *dec)
{
    const sat_decoder_config *c = &dec->cfg;
    sat_model *m = sat_xcalloc(1, sizeof *m);
    m->kind = sat_xstrdup("decoder");
    m->name = sat_xstrdup("decoder");
    m->input = m->output = -1;
    m->nparams = dec->nparams;
    m->params = sat_xmalloc(dec->nparams * sizeof(float));
    memcpy(m->params, dec->params, dec->nparams * sizeof(float));
    m->ntensors = SAT_DECODER_NTENSORS;
    m->tensors = sat_xcalloc(SAT_DECODER_NTENSORS, sizeof *m->tensors);
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) {
        const sat_decoder_tensor *t = &dec->tensors[i];
        m->tensors[i] = (sat_tensor){ .name = sat_xstrdup(t->name), .ndim = t->ndim,
                                      .shape = { t->shape[0], t->shape[1] },
                                      .offset = t->offset, .count = t->count };
    }
    const struct { const char *name; int v; } entries[] = {
        { "L", c->L }, { "D", c->D }, { "E", c->E }, { "H", c->H }, { "A", c->A }, { "V", c->V },
    };
    /* att.temperature only when it is not 1, so soft models are as before */
    m->nconfig = 6 + (dec->temperature != 1.0f);
    m->config = sat_xcalloc((size_t)m->nconfig, sizeof *m->config);
    for (int i = 0; i < 6; i++)
        m->config[i] = (sat_config_entry){ sat_xstrdup(entries[i].name), entries[i].v };
    if (m->nconfig > 6)
        m->config[6] = (sat_config_entry){ sat_xstrdup("att.temperature"), dec->temperature };
    return m;
}

/* ---- one recurrent step, shared by training and inference ----------------- */

typedef struct {
    int n;                          /* rows (captions or hypotheses) */
    const int *img;                 /* [n] image of each row */
    const int *perm, *perm_img;     /* [n] the rows grouped by image and their images,
                                     * or NULL when img is already grouped */
    float *ctx_a, *ctx_z;           /* n×L, n×D scratch for the grouped rows (with perm) */
    const float *h_prev, *c_prev;   /* n×H */
    float *x;                       /* n×K LSTM input [E y; ẑ; h_prev]; E y filled by the caller */
    float *q;                       /* n×A  h_prev·U_a */
    float *alpha;                   /* n×L */
    const float *zw;                /* n×L  weights of the context: alpha, or for hard
                                     * attention one-hot rows (filled after alpha) */
    float *zraw;                    /* n×D  Σ_i zw_i a_i */
    float *beta;                    /* n */
    float *gates;                   /* n×4H activations */
    float *c, *h;                   /* n×H */
    int rowwise;                    /* inference: nn_linear_rows, so that a row's
                                     * bits do not depend on the other rows */
    const uint16_t *feats16;        /* inference: the features in f16, or NULL */
} step_io;

/* y = x·W + b as training (OpenBLAS) or inference (rowwise) computes it;
 * W is one of dec's weights, read from its f16 twin when dec has one. */
static void linear(const sat_decoder *dec, int rowwise, float *y, int ldy, const float *x, int ldx,
                   const float *W, const float *b, int n, int in, int out)
{
    if (rowwise && dec->half)
        nn_linear_rows_f16(y, ldy, x, ldx, (const char *)dec->half + 2 * (size_t)(W - dec->params),
                           b, n, in, out);
    else if (rowwise) nn_linear_rows(y, ldy, x, ldx, W, b, n, in, out);
    else nn_linear_forward(y, ldy, x, ldx, W, b, n, in, out);
}

/* nn_context_forward with nn_linear_rows: one call per run of rows of an
 * image, reading feats16 where it is given (the same values as feats). */
static void context_rows(float *z, const float *zw, const float *feats, const uint16_t *feats16,
                         const int *img, int n, int L, int D)
{
    for (int r0 = 0, r1; r0 < n; r0 = r1) {
        for (r1 = r0 + 1; r1 < n && img[r1] == img[r0]; r1++) {}
        const size_t at = (size_t)img[r0] * L * D;
        if (feats16)
            nn_linear_rows_f16(z + (size_t)r0 * D, D, zw + (size_t)r0 * L, L, feats16 + at, NULL,
                               r1 - r0, L, D);
        else
            nn_linear_rows(z + (size_t)r0 * D, D, zw + (size_t)r0 * L, L, feats + at, NULL, r1 - r0,
                           L, D);
    }
}

/* zraw = Σ_i zw_i a_i with one GEMM per image: rows of one image are gathered
 * first when they are not adjacent. */
static void step_context_forward(const sat_decoder_config *c, const float *feats, const step_io *s)
{
    if (s->rowwise) {
        /* rows grouped by image */
        context_rows(s->zraw, s->zw, feats, s->feats16, s->img, s->n, c->L, c->D);
        return;
    }
    if (!s->perm) {
        nn_context_forward(s->zraw, s->zw, feats, s->img, s->n, c->L, c->D);
        return;
    }
    const size_t L = (size_t)c->L, D = (size_t)c->D;
    for (size_t j = 0; j < (size_t)s->n; j++)
        memcpy(s->ctx_a + j * L, s->zw + (size_t)s->perm[j] * L, L * sizeof(float));
    nn_context_forward(s->ctx_z, s->ctx_a, feats, s->perm_img, s->n, c->L, c->D);
    for (size_t j = 0; j < (size_t)s->n; j++)
        memcpy(s->zraw + (size_t)s->perm[j] * D, s->ctx_z + j * D, D * sizeof(float));
}

/* dalpha += the context's gradient from dzraw (n×D). */
static void step_context_backward(const sat_decoder_config *c, const float *feats,
                                  const step_io *s, const float *dzraw, float *dalpha)
{
    if (!s->perm) {
        nn_context_backward(dalpha, dzraw, feats, s->img, s->n, c->L, c->D);
        return;
    }
    const size_t L = (size_t)c->L, D = (size_t)c->D;
    for (size_t j = 0; j < (size_t)s->n; j++)
        memcpy(s->ctx_z + j * D, dzraw + (size_t)s->perm[j] * D, D * sizeof(float));
    memset(s->ctx_a, 0, (size_t)s->n * L * sizeof(float));
    nn_context_backward(s->ctx_a, s->ctx_z, feats, s->perm_img, s->n, c->L, c->D);
    for (size_t j = 0; j < (size_t)s->n; j++)
        for (size_t i = 0; i < L; i++) dalpha[(size_t)s->perm[j] * L + i] += s->ctx_a[j * L + i];
}

/* The attention of a step: q = h_prev·U_a, alpha = softmax(e/τ).
 * proj: images × L × A (a·W_a + b_a).  A step's products (here and the
 * LSTM's) take the row kernels in training too: for a step's few rows,
 * OpenBLAS would pack a copy of the weights on every call, the same work
 * for 32 rows as for 64, which kept two ranks of half a batch each from
 * twice one process's speed (issue 11); a row's bits no longer depend on
 * the rows beside it, in training as in inference. */
static void step_attend(const sat_decoder *dec, const float *proj, const step_io *s)
{
    const sat_decoder_config *c = &dec->cfg;
    linear(dec, 1, s->q, c->A, s->h_prev, c->H, dec->w.att_u, NULL, s->n, c->H, c->A);
    nn_attention_forward(s->alpha, proj, s->img, s->q, dec->w.att_v, s->n, c->L, c->A);
    nn_softmax_forward(s->alpha, s->n, c->L, 1.0f / dec->temperature, s->alpha); /* in place */
}

/* The rest of the step, from the context weights s->zw on: context, gate,
 * LSTM.  feats: images × L × D. */
static void step_update(const sat_decoder *dec, const float *feats, const step_io *s)
{
    const sat_decoder_config *c = &dec->cfg;
    const sat_decoder_weights *w = &dec->w;
    const int K = c->E + c->D + c->H;
    step_context_forward(c, feats, s);
    nn_gate_forward(s->beta, s->x + c->E, K, s->h_prev, w->gate_w, w->gate_b, s->zraw, s->n,
                    c->H, c->D);
    for (size_t r = 0; r < (size_t)s->n; r++)
        memcpy(s->x + r * K + c->E + c->D, s->h_prev + r * c->H, (size_t)c->H * sizeof(float));
    linear(dec, 1, s->gates, 4 * c->H, s->x, K, w->lstm_w, w->lstm_b, s->n, K, 4 * c->H);
    nn_lstm_forward(s->gates, s->c, s->h, s->c_prev, s->n, c->H);
}

/* ---- hard attention: one location per row ------------------------------------ */

/* A location drawn from alpha (L probabilities summing to 1 up to rounding). */
static int sample_location(const float *alpha, int L, sat_rng *rng)
{
    double u = sat_rng_uniform(rng), acc = 0;
    int last = 0;
    for (int i = 0; i < L; i++) {
        if (alpha[i] <= 0) continue;
        acc += alpha[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* u beyond the rounded sum */
}

static int argmax_location(const float *alpha, int L)
{
    int best = 0;
    for (int i = 1; i < L; i++)
        if (alpha[i] > alpha[best]) best = i;
    return best;
}

/* One row's context weights zw (L) by mode: alpha itself (SOFT, *loc = −1),
 * or one-hot at a location drawn from alpha, at its argmax, or at *loc (GIVEN);
 * *loc receives the location. */
static void attend_row(const float *alpha, int L, sat_attend_mode mode, sat_rng *rng, int *loc,
                       float *zw)
{
    if (mode == SAT_ATTEND_SOFT) {
        memcpy(zw, alpha, (size_t)L * sizeof(float));
        *loc = -1;
        return;
    }
    if (mode == SAT_ATTEND_SAMPLE) *loc = sample_location(alpha, L, rng);
    else if (mode == SAT_ATTEND_ARGMAX) *loc = argmax_location(alpha, L);
    memset(zw, 0, (size_t)L * sizeof(float));
    zw[*loc] = 1.0f;
}

/* Σ_i α_i log α_i of one row (minus its entropy). */
static double neg_entropy(const float *alpha, int L)
{
    double s = 0;
    for (int i = 0; i < L; i++)
        if (alpha[i] > 0) s += alpha[i] * log(alpha[i]);
    return s;
}

/* Deep output for n rows: act = tanh(E y + hd·L_h + b_h + ẑ·L_z) (x holds E y
 * and ẑ, hd the possibly dropped-out h); logits = (act ⊙ mask_o)·L_o + b_o,
 * through actd when mask_o is given (rowwise, at inference: no mask, and
 * actd holds ẑ·L_z before it is added).  tanh goes row by row, so that a
 * row's lanes (vector or scalar tail) do not depend on n. */
static void output_forward(const sat_decoder *dec, int n, const float *x, const float *hd,
                           float *act, const float *mask_o, float *actd, float *logits,
                           int rowwise)
{
    const sat_decoder_config *c = &dec->cfg;
    const sat_decoder_weights *w = &dec->w;
    const int K = c->E + c->D + c->H, E = c->E;
    linear(dec, rowwise, act, E, hd, c->H, w->out_h_w, w->out_h_b, n, c->H, E);
    if (rowwise) {
        linear(dec, 1, actd, E, x + E, K, w->out_z_w, NULL, n, c->D, E);
        for (size_t i = 0; i < (size_t)n * E; i++) act[i] += actd[i];
    } else {
        nn_linear_add(act, E, x + E, K, w->out_z_w, n, c->D, E);
    }
    for (size_t r = 0; r < (size_t)n; r++) {
        for (int j = 0; j < E; j++) act[r * E + j] += x[r * K + j];
        nn_tanh_forward(act + r * E, act + r * E, (size_t)E);
    }
    const float *in = act;
    if (mask_o) {
        for (size_t i = 0; i < (size_t)n * E; i++) actd[i] = act[i] * mask_o[i];
        in = actd;
    }
    linear(dec, rowwise, logits, c->V, in, E, w->out_w, w->out_b, n, E, c->V);
}

/* Per-image mean annotation (images×D) and attention projection (images×L×A),
 * as training or (rowwise) inference computes them. */
static void encode_images(const sat_decoder *dec, const float *feats, int n_images, float *mean,
                          float *proj, int rowwise)
{
    const sat_decoder_config *c = &dec->cfg;
    for (size_t m = 0; m < (size_t)n_images; m++) {
        float *mu = mean + m * c->D;
        memset(mu, 0, (size_t)c->D * sizeof(float));
        for (size_t i = 0; i < (size_t)c->L; i++)
            for (int d = 0; d < c->D; d++) mu[d] += feats[(m * c->L + i) * c->D + d];
        for (int d = 0; d < c->D; d++) mu[d] /= (float)c->L;
    }
    linear(dec, rowwise, proj, c->A, feats, c->D, dec->w.att_w, dec->w.att_b, n_images * c->L, c->D,
           c->A);
}

/* h0 = tanh(mean·W_h0 + b_h0), c0 likewise, for n rows of means (n×D). */
static void init_state(const sat_decoder *dec, const float *mean, int n, float *h, float *c,
                       int rowwise)
{
    const sat_decoder_config *cf = &dec->cfg;
    linear(dec, rowwise, h, cf->H, mean, cf->D, dec->w.init_h_w, dec->w.init_h_b, n, cf->D, cf->H);
    linear(dec, rowwise, c, cf->H, mean, cf->D, dec->w.init_c_w, dec->w.init_c_b, n, cf->D, cf->H);
    for (size_t r = 0; r < (size_t)n; r++) { /* by row, as output_forward's tanh */
        nn_tanh_forward(h + r * cf->H, h + r * cf->H, (size_t)cf->H);
        nn_tanh_forward(c + r * cf->H, c + r * cf->H, (size_t)cf->H);
    }
}

static void embed_rows(const sat_decoder *dec, const int *tokens, int n, float *x)
{
    const int E = dec->cfg.E, K = E + dec->cfg.D + dec->cfg.H;
    const size_t embed = (size_t)(dec->w.embed - dec->params);
    for (size_t r = 0; r < (size_t)n; r++) {
        if (tokens[r] >= 0 && dec->half)
            sat_f16_to_f32_array((const char *)dec->half + 2 * (embed + (size_t)tokens[r] * E),
                                 x + r * K, (size_t)E);
        else if (tokens[r] >= 0)
            memcpy(x + r * K, dec->w.embed + (size_t)tokens[r] * E, (size_t)E * sizeof(float));
        else
            memset(x + r * K, 0, (size_t)E * sizeof(float));
    }
}

/* ---- training ----------------------------------------------------------------
 * Captions are sorted by length, longest first, so the n_t captions still
 * running at step t are rows 0..n_t−1, and the per-step arrays are packed
 * (as PyTorch's PackedSequence): step t owns rows off[t] .. off[t]+n_t−1.
 * Padded steps cost nothing; T·B bounds the packed row count. */

struct sat_decoder_work {
    int B, T, n_images;             /* capacity */
    float *arena;
    int *ints;
    /* captions sorted by length (rows r): */
    int *order, *img, *len;         /* [B] batch index, image, number of targets */
    float *weight;                  /* [B] weight of the caption's xent (1 without weights) */
    int *steps, *off;               /* [T] n_t, [T+1] first packed row of step t */
    int *by_image;                  /* [B] rows sorted by image */
    int *perm, *perm_img;           /* [B] one step's rows grouped by image, their images */
    int *input, *target;            /* [packed rows] */
    /* forward, packed rows */
    float *mean, *meanb, *proj;     /* images×D, B×D, images×L×A */
    float *hs, *cs;                 /* B + rows, ×H: h0 (B rows), then h_t of each step */
    float *x, *q, *alpha, *zraw, *beta, *gates; /* rows × K, A, L, D, 1, 4H */
    float *mask_h, *hd;             /* rows×H */
    float *mask_o, *act, *actd;     /* rows×E */
    float *probs;                   /* rows×V */
    float *asum;                    /* B×L  Σ_t α */
    float *ctx_a, *ctx_z;           /* B×L, B×D */
    /* backward */
    float *dproj;                   /* images×L×A */
    float *dact, *demb;             /* rows×E */
    float *dh_out;                  /* rows×H */
    float *dz_out;                  /* rows×D */
    float *dgates;                  /* rows×4H */
    float *dq;                      /* rows×A */
    float *dx;                      /* B×K */
    float *dh, *dc, *dzraw, *dalpha;/* B×H, B×H, B×D, B×L */
};

static void work_free(sat_decoder_work *w)
{
    if (!w) return;
    free(w->arena);
    free(w->ints);
    free(w);
}

/* Arrays carved from one allocation: where each pointer goes, how many floats. */
typedef struct {
    float **p;
    size_t n;
} carve_entry;

static size_t carve_total(const carve_entry *e, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) total += e[i].n;
    return total;
}

static float *carve(const carve_entry *e, int count)
{
    float *arena = sat_xmalloc_large(carve_total(e, count) * sizeof(float));
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        *e[i].p = arena + at;
        at += e[i].n;
    }
    return arena;
}

enum { WORK_ARRAYS = 33 };

/* The training arrays for B captions, T steps, n images; returns their number. */
static int work_table(sat_decoder_work *w, const sat_decoder_config *c, int B, int T,
                      int n_images, carve_entry *e)
{
    const size_t K = (size_t)c->E + c->D + c->H, N = (size_t)T * B, NI = (size_t)n_images;
    const carve_entry f[WORK_ARRAYS] = {
        { &w->mean, NI * c->D }, { &w->meanb, (size_t)B * c->D }, { &w->proj, NI * c->L * c->A },
        { &w->hs, (N + B) * c->H }, { &w->cs, (N + B) * c->H },
        { &w->x, N * K }, { &w->q, N * c->A }, { &w->alpha, N * c->L }, { &w->zraw, N * c->D },
        { &w->beta, N }, { &w->gates, N * 4 * c->H },
        { &w->mask_h, N * c->H }, { &w->hd, N * c->H },
        { &w->mask_o, N * c->E }, { &w->act, N * c->E }, { &w->actd, N * c->E },
        { &w->probs, N * c->V }, { &w->asum, (size_t)B * c->L },
        { &w->ctx_a, (size_t)B * c->L }, { &w->ctx_z, (size_t)B * c->D },
        { &w->dproj, NI * c->L * c->A }, { &w->dact, N * c->E }, { &w->demb, N * c->E },
        { &w->dh_out, N * c->H }, { &w->dz_out, N * c->D }, { &w->dgates, N * 4 * c->H },
        { &w->dq, N * c->A }, { &w->dx, (size_t)B * K }, { &w->dh, (size_t)B * c->H },
        { &w->dc, (size_t)B * c->H }, { &w->dzraw, (size_t)B * c->D },
        { &w->dalpha, (size_t)B * c->L }, { &w->weight, (size_t)B },
    };
    memcpy(e, f, sizeof f);
    return WORK_ARRAYS;
}

static size_t work_floats(const sat_decoder_config *c, int B, int T, int n_images)
{
    sat_decoder_work dummy;
    carve_entry e[WORK_ARRAYS];
    return carve_total(e, work_table(&dummy, c, B, T, n_images, e));
}

static sat_decoder_work *work_new(const sat_decoder_config *c, int B, int T, int n_images)
{
    sat_decoder_work *w = sat_xcalloc(1, sizeof *w);
    carve_entry e[WORK_ARRAYS];
    w->B = B, w->T = T, w->n_images = n_images;
    w->arena = carve(e, work_table(w, c, B, T, n_images, e));
    const size_t N = (size_t)T * B;
    int *p = w->ints = sat_xmalloc((6 * (size_t)B + 2 * (size_t)T + 1 + 2 * N) * sizeof(int));
    w->order = p, w->img = p += B, w->len = p += B, w->by_image = p += B;
    w->perm = p += B, w->perm_img = p += B, w->steps = p += B, w->off = p += T;
    w->input = p += T + 1, w->target = p + N;
    return w;
}

/* Keeps the arrays when they are big enough; grows them to the largest
 * batch seen so far (or to this batch alone if that would pass the limit). */
static sat_decoder_work *work_reserve(sat_decoder *dec, int B, int T, int n_images)
{
    sat_decoder_work *w = dec->work;
    if (w && B <= w->B && T <= w->T && n_images <= w->n_images) return w;
    int nb = w && w->B > B ? w->B : B, nt = w && w->T > T ? w->T : T;
    int ni = w && w->n_images > n_images ? w->n_images : n_images;
    if (work_floats(&dec->cfg, nb, nt, ni) > MAX_WORK) nb = B, nt = T, ni = n_images;
    work_free(w);
    return dec->work = work_new(&dec->cfg, nb, nt, ni);
}

static int caption_length(const int *tokens, int T)
{
    int n = 0;
    while (n < T && tokens[n + 1] >= 0) n++;
    return n;
}

int sat_decoder_check_batch(const sat_decoder *dec, const sat_decoder_batch *b, char *err,
                            size_t errlen)
{
    const int V = dec->cfg.V;
    if (b->B < 1 || b->B > MAX_BATCH || b->T < 1 || b->T > MAX_STEPS || b->n_images < 1 ||
        b->n_images > MAX_BATCH) {
        sat_fail(err, errlen, "batch of %d captions, %d steps, %d images is out of range",
                 b->B, b->T, b->n_images);
        return -1;
    }
    if (work_floats(&dec->cfg, b->B, b->T, b->n_images) > MAX_WORK) {
        sat_fail(err, errlen, "batch of %d captions, %d steps, %d images needs more than %zu GiB",
                 b->B, b->T, b->n_images, MAX_WORK * sizeof(float) >> 30);
        return -1;
    }
    for (int r = 0; r < b->B; r++) {
        const int *tok = b->tokens + (size_t)r * (b->T + 1);
        if (b->image[r] < 0 || b->image[r] >= b->n_images) {
            sat_fail(err, errlen, "caption %d: image %d is not in [0, %d)", r, b->image[r],
                     b->n_images);
            return -1;
        }
        if (b->weight && !isfinite(b->weight[r])) {
            sat_fail(err, errlen, "caption %d: its weight is not finite", r);
            return -1;
        }
        int len = caption_length(tok, b->T);
        for (int t = 0; b->locations && t < len; t++) {
            int loc = b->locations[(size_t)r * b->T + t];
            if (loc < 0 || loc >= dec->cfg.L) {
                sat_fail(err, errlen, "caption %d: location %d at step %d is not in [0, %d)", r,
                         loc, t, dec->cfg.L);
                return -1;
            }
        }
        for (int t = 0; t <= b->T; t++) {
            int want_word = t <= len;
            if (want_word ? (tok[t] < 0 || tok[t] >= V) : tok[t] != -1) {
                sat_fail(err, errlen, "caption %d: token %d at position %d is %s", r, tok[t], t,
                         want_word ? "not a word of the vocabulary" : "not padding (-1)");
                return -1;
            }
        }
    }
    return 0;
}

typedef struct {
    int len, image, index;
} caption_key;

/* Longest first; then by image, so captions of one image tend to be adjacent. */
static int compare_captions(const void *pa, const void *pb)
{
    const caption_key *a = pa, *b = pb;
    if (a->len != b->len) return b->len - a->len;
    if (a->image != b->image) return a->image - b->image;
    return a->index - b->index;
}

/* Sorts the captions, counts the running captions of each step and lays out
 * the packed inputs and targets. */
static void prepare_batch(sat_decoder_work *w, const sat_decoder_batch *b)
{
    const int B = b->B, T = b->T;
    caption_key *key = sat_xmalloc((size_t)B * sizeof *key);
    for (int r = 0; r < B; r++)
        key[r] = (caption_key){ caption_length(b->tokens + (size_t)r * (T + 1), T), b->image[r], r };
    qsort(key, (size_t)B, sizeof *key, compare_captions);
    for (int r = 0; r < B; r++) {
        w->order[r] = key[r].index, w->img[r] = key[r].image, w->len[r] = key[r].len;
        w->weight[r] = b->weight ? b->weight[key[r].index] : 1.0f;
    }
    free(key);
    w->off[0] = 0;
    for (int t = 0, n = B; t < T; t++) {
        while (n > 0 && w->len[n - 1] <= t) n--;
        w->steps[t] = n;
        w->off[t + 1] = w->off[t] + n;
        for (int r = 0; r < n; r++) {
            const int *tok = b->tokens + (size_t)w->order[r] * (T + 1);
            w->input[w->off[t] + r] = tok[t];
            w->target[w->off[t] + r] = tok[t + 1];
        }
    }
    /* rows by image: counting sort, stable */
    int *start = sat_xcalloc((size_t)b->n_images + 1, sizeof(int));
    for (int r = 0; r < B; r++) start[w->img[r] + 1]++;
    for (int m = 0; m < b->n_images; m++) start[m + 1] += start[m];
    for (int r = 0; r < B; r++) w->by_image[start[w->img[r]]++] = r;
    free(start);
}

/* The arrays of step t, with its rows' image grouping in w->perm. */
static step_io step_view(const sat_decoder *dec, sat_decoder_work *w, int B, int t)
{
    const sat_decoder_config *c = &dec->cfg;
    const int n = w->steps[t];
    const size_t r0 = (size_t)w->off[t], K = (size_t)c->E + c->D + c->H;
    const size_t prev = t == 0 ? 0 : (size_t)B + w->off[t - 1]; /* its first n rows */
    for (int j = 0, k = 0; j < B; j++)
        if (w->by_image[j] < n) w->perm[k] = w->by_image[j], w->perm_img[k++] = w->img[w->by_image[j]];
    return (step_io){
        .n = n, .img = w->img, .perm = w->perm, .perm_img = w->perm_img,
        .ctx_a = w->ctx_a, .ctx_z = w->ctx_z,
        .h_prev = w->hs + prev * c->H, .c_prev = w->cs + prev * c->H,
        .x = w->x + r0 * K, .q = w->q + r0 * c->A, .alpha = w->alpha + r0 * c->L,
        .zw = w->alpha + r0 * c->L,
        .zraw = w->zraw + r0 * c->D, .beta = w->beta + r0, .gates = w->gates + r0 * 4 * c->H,
        .c = w->cs + (B + r0) * c->H, .h = w->hs + (B + r0) * c->H,
    };
}

/* Inverted dropout mask: 0 with probability p, else 1/(1−p); all 1 when p = 0. */
static void dropout_mask(float *mask, size_t n, float p, sat_rng *rng)
{
    float keep = 1.0f - p;
    for (size_t i = 0; i < n; i++) mask[i] = p > 0 && sat_rng_uniform(rng) >= keep ? 0.0f : 1.0f / keep;
}

/* The rows' dropout masks: from rng in packed order, or (b->rngs) each
 * caption's from its own generator, step after step, h's mask then the
 * output's, so that they do not depend on the other captions of the batch. */
static void draw_masks(sat_decoder_work *w, const sat_decoder_batch *b, int H, int E, float p,
                       sat_rng *rng)
{
    if (!b->rngs) {
        dropout_mask(w->mask_h, (size_t)w->off[b->T] * H, p, rng);
        dropout_mask(w->mask_o, (size_t)w->off[b->T] * E, p, rng);
        return;
    }
    for (int r = 0; r < b->B; r++) {
        sat_rng *g = &b->rngs[w->order[r]];
        for (int t = 0; t < w->len[r]; t++) {
            size_t row = (size_t)w->off[t] + r;
            dropout_mask(w->mask_h + row * H, (size_t)H, p, g);
            dropout_mask(w->mask_o + row * E, (size_t)E, p, g);
        }
    }
}

/* What the loss is averaged over: the batch's captions, or the whole batch's
 * when this is a share of it (sat_decoder_batch.total). */
static int divisor(const sat_decoder_batch *b)
{
    return b->total > 0 ? b->total : b->B;
}

/* The doubly stochastic penalty Σ_r Σ_i (1 − Σ_t α_tri)², keeping the sums. */
static double attention_penalty(sat_decoder_work *w, int B, int T, int L)
{
    memset(w->asum, 0, (size_t)B * L * sizeof(float));
    for (int t = 0; t < T; t++)
        for (size_t r = 0; r < (size_t)w->steps[t]; r++)
            for (int i = 0; i < L; i++) w->asum[r * L + i] += w->alpha[(w->off[t] + r) * L + i];
    double pen = 0;
    for (size_t i = 0; i < (size_t)B * L; i++) pen += (1.0 - w->asum[i]) * (1.0 - w->asum[i]);
    return pen;
}

/* One hard-attention forward/backward (NULL in the soft one).  Arrays over
 * packed rows p = off[t] + r, or over the sorted captions r. */
typedef struct {
    const sat_hard_attention *opt;
    sat_rng *rng;
    sat_rng *rngs;           /* [B] sat_decoder_batch.rngs: each caption's own, or NULL */
    const int *given;        /* [B][T] sat_decoder_batch.locations, or NULL: drawn */
    unsigned char *sampled;  /* [images] 1: the image's rows draw locations */
    float *zw;               /* [rows][L] context weights: one-hot, or α on expected rows */
    int *loc;                /* [rows] the location, −1 on expected-context rows */
    double *row_loss;        /* [rows] −log p(y_t) */
    double *reference;       /* [B] the caption's own baseline part (0 with SAT_BASELINE_MOVING) */
    float *advantage;        /* [B] λ_r (log p(y|s̃) − reference − b) / B on sampled captions, else 0 */
} hard_run;

/* Every image on the expected context until hard_draw_kinds. */
static hard_run hard_run_new(const sat_hard_attention *opt, sat_rng *rng, int n_images,
                             size_t rows, int B, int L)
{
    return (hard_run){
        .opt = opt, .rng = rng, .sampled = sat_xcalloc((size_t)n_images, 1),
        .zw = sat_xmalloc(rows * L * sizeof(float)), .loc = sat_xmalloc(rows * sizeof(int)),
        .row_loss = sat_xmalloc(rows * sizeof(double)),
        .reference = sat_xcalloc((size_t)B, sizeof(double)),
        .advantage = sat_xcalloc((size_t)B, sizeof(float)),
    };
}

/* Draws each image's kind: expected context with probability p_soft, from
 * rng, or with per-caption generators from its first caption's.  Returns the
 * number of images that draw locations. */
static int hard_draw_kinds(hard_run *hr, const sat_decoder_batch *b)
{
    int n = 0;
    if (!hr->rngs) {
        for (int m = 0; m < b->n_images; m++)
            n += hr->sampled[m] = sat_rng_uniform(hr->rng) >= hr->opt->p_soft;
        return n;
    }
    unsigned char *drawn = sat_xcalloc((size_t)b->n_images, 1);
    for (int r = 0; r < b->B; r++) {
        int m = b->image[r];
        if (drawn[m]++) continue;
        n += hr->sampled[m] = sat_rng_uniform(&hr->rngs[r]) >= hr->opt->p_soft;
    }
    free(drawn);
    return n;
}

static void hard_run_free(hard_run *hr)
{
    free(hr->sampled);
    free(hr->zw);
    free(hr->loc);
    free(hr->row_loss);
    free(hr->reference);
    free(hr->advantage);
}

/* Step t's context weights: the given location of each row, or a location
 * drawn per row of a sampled image and the expected context (α) on the others. */
static void hard_attend(hard_run *hr, const sat_decoder_work *w, const step_io *s, int t, int T,
                        int L)
{
    for (int r = 0; r < s->n; r++) {
        size_t p = (size_t)w->off[t] + r;
        sat_attend_mode mode = hr->sampled[w->img[r]] ? SAT_ATTEND_SAMPLE : SAT_ATTEND_SOFT;
        if (hr->given) {
            mode = SAT_ATTEND_GIVEN;
            hr->loc[p] = hr->given[(size_t)w->order[r] * T + t];
        }
        sat_rng *rng = hr->rngs ? &hr->rngs[w->order[r]] : hr->rng;
        attend_row(s->alpha + (size_t)r * L, L, mode, rng, hr->loc + p, hr->zw + p * L);
    }
}

/* log p(y|…) of sorted caption r, from the rows' losses of the last forward pass. */
static double caption_logp(const hard_run *hr, const sat_decoder_work *w, int r)
{
    double logp = 0;
    for (int t = 0; t < w->len[r]; t++) logp -= hr->row_loss[w->off[t] + r];
    return logp;
}

/* After the forward pass: the entropy term of the loss, log p(y|s̃) of each
 * sampled caption and its REINFORCE weight (with the baseline before this batch). */
static void hard_loss(hard_run *hr, const sat_decoder_work *w, int B, int T, int L, int n,
                      sat_decoder_loss *loss)
{
    const sat_hard_attention *o = hr->opt;
    for (size_t p = 0; p < (size_t)w->off[T]; p++) loss->entropy -= neg_entropy(w->alpha + p * L, L);
    loss->loss -= o->lambda_e * loss->entropy / n;
    for (int r = 0; r < B; r++) {
        if (!hr->sampled[w->img[r]] || w->len[r] == 0) continue;
        double logp = caption_logp(hr, w, r);
        hr->advantage[r] = (float)(o->lambda_r * (logp - hr->reference[r] - o->baseline) / n);
        loss->logp_sampled += logp;
        loss->logp_reference += hr->reference[r];
        loss->nsampled++;
    }
}

/* With given locations: each caption's REINFORCE weight on its locations is
 * its own weight / n, and the loss gets their term −Σ_r weight_r log p(s_r|a) / n,
 * log p(s|a) = Σ_t log α_t[s_t] (n: B, or the whole batch's size). */
static void located_loss(hard_run *hr, const sat_decoder_work *w, int B, int L, int n,
                         sat_decoder_loss *loss)
{
    for (int r = 0; r < B; r++) {
        double logp = 0;
        for (int t = 0; t < w->len[r]; t++) {
            size_t p = (size_t)w->off[t] + r;
            logp += log(w->alpha[p * L + hr->loc[p]]);
        }
        hr->advantage[r] = w->weight[r] / n;
        loss->loss -= w->weight[r] * logp / n;
    }
}

/* Σ_captions weight · xent, from the probabilities of the forward pass. */
static double weighted_xent(const sat_decoder_work *w, int T, int V)
{
    double sum = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < w->steps[t]; r++) {
            size_t p = (size_t)w->off[t] + r;
            sum -= w->weight[r] * log(w->probs[p * V + w->target[p]]);
        }
    return sum;
}

static sat_decoder_loss forward(sat_decoder *dec, const sat_decoder_batch *b, float lambda,
                                float dropout, sat_rng *rng, hard_run *hr)
{
    const sat_decoder_config *c = &dec->cfg;
    sat_decoder_work *w = dec->work;
    const int B = b->B, T = b->T, N = w->off[T], n = divisor(b);
    encode_images(dec, b->feats, b->n_images, w->mean, w->proj, 0);
    for (int r = 0; r < B; r++)
        memcpy(w->meanb + (size_t)r * c->D, w->mean + (size_t)w->img[r] * c->D,
               (size_t)c->D * sizeof(float));
    init_state(dec, w->meanb, B, w->hs, w->cs, 0);
    embed_rows(dec, w->input, N, w->x);
    for (int t = 0; t < T && w->steps[t] > 0; t++) {
        step_io s = step_view(dec, w, B, t);
        if (hr) s.zw = hr->zw + (size_t)w->off[t] * c->L;
        step_attend(dec, w->proj, &s);
        if (hr) hard_attend(hr, w, &s, t, T, c->L);
        step_update(dec, b->feats, &s);
    }
    draw_masks(w, b, c->H, c->E, dropout, rng);
    for (size_t i = 0; i < (size_t)N * c->H; i++) w->hd[i] = w->hs[(size_t)B * c->H + i] * w->mask_h[i];
    output_forward(dec, N, w->x, w->hd, w->act, w->mask_o, w->actd, w->probs, 0);
    sat_decoder_loss loss = { .ntokens = N };
    loss.xent = nn_softmax_xent_forward(w->probs, w->target, N, c->V, hr ? hr->row_loss : NULL);
    loss.penalty = attention_penalty(w, B, T, c->L);
    loss.loss = ((b->weight ? weighted_xent(w, T, c->V) : loss.xent) + lambda * loss.penalty) / n;
    if (hr && hr->given) located_loss(hr, w, B, c->L, n, &loss);
    else if (hr) hard_loss(hr, w, B, T, c->L, n, &loss);
    return loss;
}

/* Deep output backward over all N rows: parameter gradients, and the
 * gradients reaching E y (demb), h (dh_out) and ẑ (dz_out). */
static void output_backward(sat_decoder *dec, int N, int T, float scale)
{
    const sat_decoder_config *c = &dec->cfg;
    sat_decoder_work *w = dec->work;
    const int E = c->E, K = E + c->D + c->H;
    float *dlogits = w->probs;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < w->steps[t]; r++) {
            size_t p = (size_t)w->off[t] + r;
            nn_softmax_xent_backward(dlogits + p * c->V, w->probs + p * c->V, w->target + p,
                                     scale * w->weight[r], 1, c->V);
        }
    memset(w->dact, 0, (size_t)N * E * sizeof(float));
    nn_linear_backward(w->dact, E, dec->g.out_w, dec->g.out_b, dlogits, c->V, w->actd, E,
                       dec->w.out_w, N, E, c->V);
    for (size_t i = 0; i < (size_t)N * E; i++)
        w->demb[i] = w->dact[i] *= w->mask_o[i] * (1.0f - w->act[i] * w->act[i]);
    memset(w->dh_out, 0, (size_t)N * c->H * sizeof(float));
    nn_linear_backward(w->dh_out, c->H, dec->g.out_h_w, dec->g.out_h_b, w->dact, E, w->hd, c->H,
                       dec->w.out_h_w, N, c->H, E);
    for (size_t i = 0; i < (size_t)N * c->H; i++) w->dh_out[i] *= w->mask_h[i];
    memset(w->dz_out, 0, (size_t)N * c->D * sizeof(float));
    nn_linear_backward(w->dz_out, c->D, dec->g.out_z_w, NULL, w->dact, E, w->x + E, K,
                       dec->w.out_z_w, N, c->D, E);
}

/* Hard attention's part of dL/dx at x = e/τ (n rows of step t, alpha = softmax(x)),
 * added to dx: on a sampled row, the REINFORCE term −A ∂log α_s/∂x = A (α − onehot(s));
 * on every row, the entropy term −(λ_e/B) ∂H(α)/∂x = (λ_e/B) α ⊙ (log α − Σ α log α). */
static void hard_score_backward(const hard_run *hr, const sat_decoder_work *w, float *dx,
                                const float *alpha, int t, int n, int L, int nb)
{
    const float ke = hr->opt->lambda_e / nb; /* nb: divisor(b) */
    for (size_t r = 0; r < (size_t)n; r++) {
        float *d = dx + r * L;
        const float *a = alpha + r * L;
        int loc = hr->loc[w->off[t] + r];
        if (loc >= 0) {
            float g = hr->advantage[r];
            for (int i = 0; i < L; i++) d[i] += g * a[i];
            d[loc] -= g;
        }
        if (ke == 0) continue;
        float nh = (float)neg_entropy(a, L);
        for (int i = 0; i < L; i++)
            if (a[i] > 0) d[i] += ke * a[i] * (logf(a[i]) - nh);
    }
}

/* Backward through step t: on entry rows 0..n_t−1 of w->dh, w->dc hold
 * dL/dh_t, dL/dc_t from the later steps (0 for captions ending at t); on
 * return dL/dh_{t−1}, dL/dc_{t−1}. */
static void step_backward(sat_decoder *dec, const sat_decoder_batch *b, int t, float lambda,
                          const hard_run *hr)
{
    const sat_decoder_config *c = &dec->cfg;
    sat_decoder_work *w = dec->work;
    const int B = b->B, E = c->E, D = c->D, H = c->H, K = E + D + H, L = c->L;
    step_io s = step_view(dec, w, B, t);
    const int n = s.n;
    const size_t r0 = (size_t)w->off[t];
    float *dgates = w->dgates + r0 * 4 * H, *dq = w->dq + r0 * c->A;
    for (size_t i = 0; i < (size_t)n * H; i++) w->dh[i] += w->dh_out[r0 * H + i];
    nn_lstm_backward(dgates, w->dc, w->dh, w->dc, s.gates, s.c, s.c_prev, n, H);
    memset(w->dx, 0, (size_t)n * K * sizeof(float));
    nn_linear_rows_dx(w->dx, K, dgates, 4 * H, dec->w.lstm_w, n, K, 4 * H);
    for (size_t r = 0; r < (size_t)n; r++) {
        float *dxr = w->dx + r * K;
        for (int j = 0; j < E; j++) w->demb[(r0 + r) * E + j] += dxr[j];
        for (int d = 0; d < D; d++) dxr[E + d] += w->dz_out[(r0 + r) * D + d];
        memcpy(w->dh + r * H, dxr + E + D, (size_t)H * sizeof(float));
    }
    memset(w->dzraw, 0, (size_t)n * D * sizeof(float));
    nn_gate_backward(w->dh, dec->g.gate_w, dec->g.gate_b, w->dzraw, w->dx + E, K, s.beta,
                     s.h_prev, dec->w.gate_w, s.zraw, n, H, D);
    /* A drawn location's context a_s does not depend on α: nothing flows back. */
    for (size_t r = 0; hr && r < (size_t)n; r++)
        if (hr->loc[r0 + r] >= 0) memset(w->dzraw + r * D, 0, (size_t)D * sizeof(float));
    /* the penalty's −2λ/B (1 − Σ_t α), then the context's share */
    const int nb = divisor(b);
    for (size_t i = 0; i < (size_t)n * L; i++) w->dalpha[i] = -2.0f * lambda / nb * (1.0f - w->asum[i]);
    step_context_backward(c, b->feats, &s, w->dzraw, w->dalpha);
    nn_softmax_backward(w->dalpha, w->dalpha, s.alpha, n, L);
    if (hr) hard_score_backward(hr, w, w->dalpha, s.alpha, t, n, L, nb);
    if (dec->temperature != 1.0f) /* x = e/τ */
        for (size_t i = 0; i < (size_t)n * L; i++) w->dalpha[i] /= dec->temperature;
    memset(dq, 0, (size_t)n * c->A * sizeof(float));
    nn_attention_backward(w->dproj, dq, dec->g.att_v, w->dalpha, w->proj, w->img, s.q,
                          dec->w.att_v, n, L, c->A);
    nn_linear_rows_dx(w->dh, H, dq, c->A, dec->w.att_u, n, H, c->A);
}

/* h0 = tanh(mean·W + b): gradient of the init MLP from dL/dh0 (overwritten). */
static void init_backward(sat_decoder *dec, float *dstate, const float *state, float *dW,
                          float *db, int B)
{
    const sat_decoder_config *c = &dec->cfg;
    nn_tanh_backward(dstate, dstate, state, (size_t)B * c->H);
    nn_linear_backward(NULL, 0, dW, db, dstate, c->H, dec->work->meanb, c->D, NULL, B, c->D,
                       c->H);
}

static void backward(sat_decoder *dec, const sat_decoder_batch *b, float lambda,
                     const hard_run *hr)
{
    const sat_decoder_config *c = &dec->cfg;
    sat_decoder_work *w = dec->work;
    sat_decoder_weights *g = &dec->g;
    const int B = b->B, T = b->T, N = w->off[T], E = c->E, K = E + c->D + c->H;
    output_backward(dec, N, T, 1.0f / divisor(b));
    memset(w->dproj, 0, (size_t)b->n_images * c->L * c->A * sizeof(float));
    memset(w->dh, 0, (size_t)B * c->H * sizeof(float));
    memset(w->dc, 0, (size_t)B * c->H * sizeof(float));
    for (int t = T - 1; t >= 0; t--)
        if (w->steps[t] > 0) step_backward(dec, b, t, lambda, hr);
    /* Weight gradients of the per-step GEMMs, once over all rows (x holds h_{t−1}). */
    nn_linear_backward(NULL, 0, g->lstm_w, g->lstm_b, w->dgates, 4 * c->H, w->x, K, NULL, N, K,
                       4 * c->H);
    nn_linear_backward(NULL, 0, g->att_u, NULL, w->dq, c->A, w->x + E + c->D, K, NULL, N, c->H,
                       c->A);
    nn_linear_backward(NULL, 0, g->att_w, g->att_b, w->dproj, c->A, b->feats, c->D, NULL,
                       b->n_images * c->L, c->D, c->A);
    init_backward(dec, w->dh, w->hs, g->init_h_w, g->init_h_b, B);
    init_backward(dec, w->dc, w->cs, g->init_c_w, g->init_c_b, B);
    for (size_t r = 0; r < (size_t)N; r++)
        for (int j = 0; j < E; j++) g->embed[(size_t)w->input[r] * E + j] += w->demb[r * E + j];
}

sat_decoder_loss sat_decoder_forward_backward(sat_decoder *dec, const sat_decoder_batch *batch,
                                              float lambda, float dropout, sat_rng *rng,
                                              int do_backward)
{
    char err[SAT_ERR_MAX];
    if (sat_decoder_check_batch(dec, batch, err, sizeof err)) sat_die("decoder: %s", err);
    if (!(dropout >= 0 && dropout < 1)) sat_die("decoder: dropout %g is not in [0, 1)", dropout);
    if (dropout > 0 && !rng && !batch->rngs) sat_die("decoder: dropout without a random generator");
    sat_decoder_work *w = work_reserve(dec, batch->B, batch->T, batch->n_images);
    prepare_batch(w, batch);
    /* given locations: hard attention's machinery, nothing drawn, no entropy term */
    const sat_hard_attention located = {.samples = 1, .lambda_r = 1};
    hard_run hr = {0}, *hrp = NULL;
    if (batch->locations) {
        hr = hard_run_new(&located, NULL, batch->n_images, (size_t)w->off[batch->T], batch->B,
                          dec->cfg.L);
        hr.given = batch->locations;
        hrp = &hr;
    }
    sat_decoder_loss loss = forward(dec, batch, lambda, dropout, rng, hrp);
    if (do_backward) backward(dec, batch, lambda, hrp);
    if (hrp) hard_run_free(hrp);
    return loss;
}

static void check_hard_options(const sat_hard_attention *h)
{
    if (h->samples < 1 || h->samples > MAX_BATCH)
        sat_die("decoder: %d location samples per caption is not in [1, %d]", h->samples, MAX_BATCH);
    if (!(h->p_soft >= 0 && h->p_soft <= 1))
        sat_die("decoder: expected-context probability %g is not in [0, 1]", h->p_soft);
    if (!(h->lambda_r >= 0 && h->lambda_r < INFINITY && h->lambda_e >= 0 && h->lambda_e < INFINITY))
        sat_die("decoder: REINFORCE weight %g or entropy weight %g is not finite and >= 0",
                h->lambda_r, h->lambda_e);
    if (!isfinite(h->baseline)) sat_die("decoder: the REINFORCE baseline is not finite");
}

/* The batch with every caption repeated S times (caption r is rows r·S .. r·S+S−1);
 * with per-caption generators, each row's is seeded from its caption's. */
static sat_decoder_batch repeat_captions(const sat_decoder_batch *b, int S, int **tokens,
                                         int **image, sat_rng **rngs)
{
    const size_t row = (size_t)b->T + 1;
    if ((long)b->B * S > MAX_BATCH)
        sat_die("decoder: %d captions × %d location samples is more than %d rows", b->B, S,
                MAX_BATCH);
    *tokens = sat_xmalloc((size_t)b->B * S * row * sizeof(int));
    *image = sat_xmalloc((size_t)b->B * S * sizeof(int));
    *rngs = b->rngs ? sat_xmalloc((size_t)b->B * S * sizeof **rngs) : NULL;
    for (size_t r = 0; r < (size_t)b->B; r++)
        for (size_t k = 0; k < (size_t)S; k++) {
            memcpy(*tokens + (r * S + k) * row, b->tokens + r * row, row * sizeof(int));
            (*image)[r * S + k] = b->image[r];
            if (*rngs) sat_rng_seed(*rngs + r * S + k, sat_rng_next(&b->rngs[r]));
        }
    return (sat_decoder_batch){ .feats = b->feats, .n_images = b->n_images, .image = *image,
                                .tokens = *tokens, .B = b->B * S, .T = b->T, .rngs = *rngs,
                                .total = b->total * S };
}

/* SAT_BASELINE_EXPECTED: each caption's reference is log p(y|a) read with
 * the expected context and no dropout, one more forward pass.  It depends on
 * the image and the words but not on the drawn locations, so subtracting it
 * leaves the estimator unbiased; it takes out what the caption's length and
 * difficulty add to log p(y|s̃), which a single moving average cannot. */
static void expected_context_reference(sat_decoder *dec, const sat_decoder_batch *rep,
                                       hard_run *hr, float lambda)
{
    sat_decoder_work *w = dec->work;
    hard_run expected = hard_run_new(hr->opt, NULL, rep->n_images, (size_t)w->off[rep->T], rep->B,
                                     dec->cfg.L);
    forward(dec, rep, lambda, 0, NULL, &expected);
    for (int r = 0; r < rep->B; r++) hr->reference[r] = caption_logp(&expected, w, r);
    hard_run_free(&expected);
}

sat_decoder_loss sat_decoder_forward_backward_hard(sat_decoder *dec,
                                                   const sat_decoder_batch *batch,
                                                   sat_hard_attention *hard, float lambda,
                                                   float dropout, sat_rng *rng, int do_backward)
{
    char err[SAT_ERR_MAX];
    if (sat_decoder_check_batch(dec, batch, err, sizeof err)) sat_die("decoder: %s", err);
    if (!(dropout >= 0 && dropout < 1)) sat_die("decoder: dropout %g is not in [0, 1)", dropout);
    if (!rng && !batch->rngs) sat_die("decoder: hard attention without a random generator");
    if (batch->locations) sat_die("decoder: drawn and given locations at once");
    check_hard_options(hard);
    int *tokens, *image;
    sat_rng *rngs;
    sat_decoder_batch rep = repeat_captions(batch, hard->samples, &tokens, &image, &rngs);
    if (sat_decoder_check_batch(dec, &rep, err, sizeof err)) sat_die("decoder: %s", err);
    sat_decoder_work *w = work_reserve(dec, rep.B, rep.T, rep.n_images);
    prepare_batch(w, &rep);
    const size_t rows = (size_t)w->off[rep.T];
    hard_run hr = hard_run_new(hard, rng, rep.n_images, rows, rep.B, dec->cfg.L);
    hr.rngs = rngs;
    if (hard_draw_kinds(&hr, &rep) > 0 && hard->baseline_kind == SAT_BASELINE_EXPECTED)
        expected_context_reference(dec, &rep, &hr, lambda);
    sat_decoder_loss loss = forward(dec, &rep, lambda, dropout, rng, &hr);
    if (do_backward) {
        backward(dec, &rep, lambda, &hr);
        if (loss.nsampled > 0)
            hard->baseline = 0.9 * hard->baseline +
                             0.1 * (loss.logp_sampled - loss.logp_reference) / loss.nsampled;
    }
    hard_run_free(&hr);
    free(tokens);
    free(image);
    free(rngs);
    return loss;
}

/* ---- inference -------------------------------------------------------------- */

struct sat_decoder_state {
    int k, k_max, H;                /* rows now; capacity (images × hypotheses each) */
    int *img, *img_next;            /* k_max: the image each row reads, grouped */
    float *arena;                   /* the arrays below, carved */
    size_t arena_bytes;
    const float *feats;             /* images × L×D, the caller's */
    const uint16_t *feats16;        /* the same in f16, the caller's, or NULL */
    float *proj, *mean;             /* images × (L×A, D) */
    float *h, *c, *h_next, *c_next; /* k_max×H */
    float *x, *q, *alpha, *zraw, *beta, *gates, *act, *act_z; /* k_max × K, A, L, D, 1, 4H, E, E */
    float *zw;                      /* k_max×L one-hot context weights (hard attention) */
};

sat_decoder_state *sat_decoder_state_new(const sat_decoder *dec, const float *feats, int n_images,
                                         int k_max)
{
    const sat_decoder_config *c = &dec->cfg;
    if (k_max < 1 || n_images < 1 || (long)k_max * n_images > MAX_BATCH)
        sat_die("decoder: %d images of %d hypotheses is out of range", n_images, k_max);
    sat_decoder_state *st = sat_xcalloc(1, sizeof *st);
    const size_t k = (size_t)k_max * n_images, K = (size_t)c->E + c->D + c->H, n = (size_t)n_images;
    const carve_entry f[] = {
        { &st->proj, n * c->L * c->A },
        { &st->mean, n * c->D }, { &st->h, k * c->H }, { &st->c, k * c->H },
        { &st->h_next, k * c->H }, { &st->c_next, k * c->H }, { &st->x, k * K },
        { &st->q, k * c->A }, { &st->alpha, k * c->L }, { &st->zraw, k * c->D },
        { &st->beta, k }, { &st->gates, k * 4 * c->H }, { &st->act, k * c->E },
        { &st->act_z, k * c->E }, { &st->zw, k * c->L },
    };
    st->arena = carve(f, (int)(sizeof f / sizeof f[0]));
    st->arena_bytes = carve_total(f, (int)(sizeof f / sizeof f[0])) * sizeof(float);
    st->img = sat_xcalloc(k, sizeof(int));
    st->img_next = sat_xcalloc(k, sizeof(int));
    st->k = n_images, st->k_max = (int)k, st->H = c->H;
    st->feats = feats;
    encode_images(dec, feats, n_images, st->mean, st->proj, 1);
    init_state(dec, st->mean, n_images, st->h, st->c, 1);
    for (size_t m = 0; m < n; m++) st->img[m] = (int)m;
    return st;
}

void sat_decoder_state_use_f16(sat_decoder_state *st, const uint16_t *feats16)
{
    st->feats16 = feats16;
}

void sat_decoder_state_free(sat_decoder_state *st)
{
    if (!st) return;
    sat_free_large(st->arena, st->arena_bytes); /* the next batch's state takes it */
    free(st->img);
    free(st->img_next);
    free(st);
}

int sat_decoder_state_k(const sat_decoder_state *st) { return st->k; }

static void swap_ptr(float **a, float **b)
{
    float *t = *a;
    *a = *b;
    *b = t;
}

void sat_decoder_state_select(sat_decoder_state *st, const int *parent, int k)
{
    if (k < 1 || k > st->k_max) sat_die("decoder: %d hypotheses, the state holds %d", k, st->k_max);
    const size_t H = (size_t)st->H;
    for (int j = 0; j < k; j++) {
        if (parent[j] < 0 || parent[j] >= st->k)
            sat_die("decoder: parent %d of hypothesis %d is not in [0, %d)", parent[j], j, st->k);
        if (j > 0 && st->img[parent[j]] < st->img_next[j - 1])
            sat_die("decoder: hypothesis %d's image comes before hypothesis %d's", j, j - 1);
        memcpy(st->h_next + j * H, st->h + parent[j] * H, H * sizeof(float));
        memcpy(st->c_next + j * H, st->c + parent[j] * H, H * sizeof(float));
        st->img_next[j] = st->img[parent[j]];
    }
    swap_ptr(&st->h, &st->h_next);
    swap_ptr(&st->c, &st->c_next);
    int *t = st->img;
    st->img = st->img_next;
    st->img_next = t;
    st->k = k;
}

static void check_step(const sat_decoder *dec, const sat_decoder_state *st, const int *prev,
                       const sat_step_attend *a)
{
    const sat_decoder_config *c = &dec->cfg;
    for (int j = 0; j < st->k; j++)
        if (prev[j] < 0 || prev[j] >= c->V)
            sat_die("decoder: word %d of hypothesis %d is not in [0, %d)", prev[j], j, c->V);
    if (a->mode != SAT_ATTEND_SOFT && !a->loc) sat_die("decoder: hard attention without locations");
    if (a->mode == SAT_ATTEND_SAMPLE && !a->rng)
        sat_die("decoder: sampled attention without a random generator");
    for (int j = 0; a->mode == SAT_ATTEND_GIVEN && j < st->k; j++)
        if (a->loc[j] < 0 || a->loc[j] >= c->L)
            sat_die("decoder: location %d of hypothesis %d is not in [0, %d)", a->loc[j], j, c->L);
}

void sat_decoder_step(const sat_decoder *dec, sat_decoder_state *st, const int *prev,
                      const sat_step_attend *attend, float *logprobs, float *alpha, float *beta)
{
    const sat_decoder_config *c = &dec->cfg;
    const sat_step_attend soft = { .mode = SAT_ATTEND_SOFT }, *a = attend ? attend : &soft;
    check_step(dec, st, prev, a);
    embed_rows(dec, prev, st->k, st->x);
    step_io s = { .n = st->k, .img = st->img, .h_prev = st->h, .c_prev = st->c, .x = st->x,
                  .q = st->q, .alpha = st->alpha, .zw = st->alpha, .zraw = st->zraw,
                  .beta = st->beta, .gates = st->gates, .c = st->c_next, .h = st->h_next,
                  .rowwise = 1, .feats16 = st->feats16 };
    step_attend(dec, st->proj, &s);
    if (a->mode != SAT_ATTEND_SOFT) {
        for (int j = 0; j < st->k; j++)
            attend_row(st->alpha + (size_t)j * c->L, c->L, a->mode, a->rng, a->loc + j,
                       st->zw + (size_t)j * c->L);
        s.zw = st->zw;
    }
    step_update(dec, st->feats, &s);
    output_forward(dec, st->k, st->x, st->h_next, st->act, NULL, st->act_z, logprobs, 1);
    nn_log_softmax_forward(logprobs, st->k, c->V);
    if (alpha) memcpy(alpha, st->alpha, (size_t)st->k * c->L * sizeof(float));
    if (beta) memcpy(beta, st->beta, (size_t)st->k * sizeof(float));
    swap_ptr(&st->h, &st->h_next);
    swap_ptr(&st->c, &st->c_next);
}
