/* test_decoder.c — the attention LSTM decoder: every layer's backward and
 * every parameter tensor's gradient against central finite differences,
 * inference = teacher forcing, learning a toy set, model round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decoder.h"
#include "decoder_case.h"
#include "nn.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

/* ---- finite differences ---------------------------------------------------
 * "Double-checked": each entry's central difference is taken at two step
 * sizes, EPS and 2·EPS, and the analytic gradient must match both, so a
 * pass also shows the difference itself was sound (float noise grows as the
 * step shrinks, curvature error as it grows).  The forward pass is float:
 * EPS = 2e-3 keeps the noise near 1/4 of the tolerance. */

#define EPS 2e-3f
#define RTOL 1e-2
#define ATOL 5e-4

typedef double (*scalar_fn)(void *ctx);

static double central_difference(scalar_fn f, void *ctx, float *x, float eps)
{
    float old = *x;
    float up = old + eps, down = old - eps;
    *x = up;
    double fu = f(ctx);
    *x = down;
    double fd = f(ctx);
    *x = old;
    return (fu - fd) / ((double)up - (double)down);
}

/* Checks grad[i] for all i (n <= all_below) or a random `sample` of them. */
static void check_gradient(const char *what, scalar_fn f, void *ctx, float *x, const float *grad,
                           size_t n, size_t all_below, int sample, sat_rng *rng)
{
    int count = n <= all_below ? (int)n : sample;
    double worst = 0;
    for (int s = 0; s < count; s++) {
        size_t i = n <= all_below ? (size_t)s : sat_rng_below(rng, (uint32_t)n);
        double a = grad[i];
        for (float eps = EPS; eps <= 2 * EPS; eps *= 2) {
            double num = central_difference(f, ctx, x + i, eps);
            double err = fabs(a - num), tol = ATOL + RTOL * fmax(fabs(a), fabs(num));
            if (err > tol) fail_msg("%s[%zu]: analytic %.6g, numeric %.6g (step %g)", what, i, a, num, eps);
            worst = fmax(worst, err / tol);
        }
    }
    if (getenv("SAT_TEST_VERBOSE")) printf("  %-10s %4d entries, worst error/tolerance %.3f\n", what, count, worst);
}

/* Σ r·y in double: the scalar every layer test differentiates. */
static double weighted_sum(const float *y, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * r[i];
    return s;
}

/* ---- layer tests -------------------------------------------------------------- */

typedef struct {
    int n, in, out, ldx;
    float *x, *W, *b, *y, *r;
} linear_case;

static double linear_loss(void *p)
{
    linear_case *c = p;
    nn_linear_forward(c->y, c->out, c->x, c->ldx, c->W, c->b, c->n, c->in, c->out);
    return weighted_sum(c->y, c->r, (size_t)c->n * c->out);
}

static void test_linear_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 1);
    linear_case c = { .n = 3, .in = 5, .out = 4, .ldx = 7 };
    float x[3 * 7], W[5 * 4], b[4], y[3 * 4], r[3 * 4];
    float dx[3 * 7] = { 0 }, dW[5 * 4] = { 0 }, db[4] = { 0 };
    c.x = x, c.W = W, c.b = b, c.y = y, c.r = r;
    fill_random(x, 21, -1, 1, &rng);
    fill_random(W, 20, -1, 1, &rng);
    fill_random(b, 4, -1, 1, &rng);
    fill_random(r, 12, -1, 1, &rng);
    linear_loss(&c);
    /* forward against the definition */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            double s = b[j];
            for (int k = 0; k < 5; k++) s += (double)x[i * 7 + k] * W[k * 4 + j];
            assert_true(fabs(s - y[i * 4 + j]) < 1e-5);
        }
    nn_linear_backward(dx, 7, dW, db, r, 4, x, 7, W, 3, 5, 4);
    check_gradient("x", linear_loss, &c, x, dx, 21, 100, 0, &rng);
    check_gradient("W", linear_loss, &c, W, dW, 20, 100, 0, &rng);
    check_gradient("b", linear_loss, &c, b, db, 4, 100, 0, &rng);
    for (int i = 0; i < 3; i++) /* the stride gap receives nothing */
        assert_true(dx[i * 7 + 5] == 0 && dx[i * 7 + 6] == 0);
}

/* nn_linear_rows: the definition, and a row's bits whatever the other rows
 * (7 rows: a tile of 4 and one of 3; 61 columns: two 24-wide tiles, an 8-wide
 * one and a tail; 300 products: blocks of 128, 128 and 44).  */
static void test_linear_rows(void **state)
{
    (void)state;
    enum { N = 7, IN = 300, OUT = 61, LDX = 303 };
    sat_rng rng;
    sat_rng_seed(&rng, 2);
    float x[N * LDX], W[IN * OUT], b[OUT], y[N * OUT], one[OUT], plain[N * OUT];
    fill_random(x, N * LDX, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    fill_random(b, OUT, -1, 1, &rng);
    nn_linear_rows(y, OUT, x, LDX, W, b, N, IN, OUT);
    nn_linear_rows(plain, OUT, x, LDX, W, NULL, N, IN, OUT);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < OUT; j++) {
            double s = 0;
            for (int k = 0; k < IN; k++) s += (double)x[i * LDX + k] * W[k * OUT + j];
            assert_true(fabs(s - plain[i * OUT + j]) < 1e-5);
            assert_true(y[i * OUT + j] == b[j] + plain[i * OUT + j]);
        }
        nn_linear_rows(one, OUT, x + i * LDX, LDX, W, b, 1, IN, OUT);
        assert_memory_equal(one, y + i * OUT, sizeof one);
    }
}

enum { AN = 3, AL = 4, AA = 19, AIMG = 2 }; /* A = 19: the 8-wide path twice and a tail */

typedef struct {
    float proj[AIMG * AL * AA], q[AN * AA], v[AA], e[AN * AL], r[AN * AL];
    int img[AN];
} attention_case;

static double attention_loss(void *p)
{
    attention_case *c = p;
    nn_attention_forward(c->e, c->proj, c->img, c->q, c->v, AN, AL, AA);
    return weighted_sum(c->e, c->r, AN * AL);
}

static void test_attention_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 2);
    attention_case c = { .img = { 0, 0, 1 } };
    fill_random(c.proj, AIMG * AL * AA, -2, 2, &rng);
    fill_random(c.q, AN * AA, -2, 2, &rng);
    fill_random(c.v, AA, -1, 1, &rng);
    fill_random(c.r, AN * AL, -1, 1, &rng);
    c.proj[5] = 12.0f; /* beyond the tanh approximation's clamp */
    attention_loss(&c);
    for (int n = 0; n < AN; n++)
        for (int i = 0; i < AL; i++) {
            double s = 0;
            for (int k = 0; k < AA; k++)
                s += c.v[k] * tanh((double)c.proj[(c.img[n] * AL + i) * AA + k] + c.q[n * AA + k]);
            assert_true(fabs(s - c.e[n * AL + i]) < 1e-5);
        }
    float dproj[AIMG * AL * AA] = { 0 }, dq[AN * AA] = { 0 }, dv[AA] = { 0 };
    nn_attention_backward(dproj, dq, dv, c.r, c.proj, c.img, c.q, c.v, AN, AL, AA);
    check_gradient("proj", attention_loss, &c, c.proj, dproj, AIMG * AL * AA, 1000, 0, &rng);
    check_gradient("q", attention_loss, &c, c.q, dq, AN * AA, 1000, 0, &rng);
    check_gradient("v", attention_loss, &c, c.v, dv, AA, 1000, 0, &rng);
}

typedef struct {
    float x[12], y[12], r[12];
} softmax_case;

static double softmax_loss(void *p)
{
    softmax_case *c = p;
    nn_softmax_forward(c->x, 3, 4, 1.0f, c->y);
    return weighted_sum(c->y, c->r, 12);
}

static void test_softmax_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 3);
    softmax_case c;
    fill_random(c.x, 12, -3, 3, &rng);
    fill_random(c.r, 12, -1, 1, &rng);
    softmax_loss(&c);
    for (int n = 0; n < 3; n++) {
        double s = 0;
        for (int i = 0; i < 4; i++) s += c.y[n * 4 + i];
        assert_true(fabs(s - 1) < 1e-6);
    }
    float dx[12];
    nn_softmax_backward(dx, c.r, c.y, 3, 4);
    check_gradient("x", softmax_loss, &c, c.x, dx, 12, 100, 0, &rng);
}

enum { CN = 3, CL = 5, CD = 6 };

typedef struct {
    float alpha[CN * CL], feats[2 * CL * CD], z[CN * CD], r[CN * CD];
    int img[CN];
} context_case;

static double context_loss(void *p)
{
    context_case *c = p;
    nn_context_forward(c->z, c->alpha, c->feats, c->img, CN, CL, CD);
    return weighted_sum(c->z, c->r, CN * CD);
}

static void test_context_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 4);
    context_case c = { .img = { 1, 1, 0 } };
    fill_random(c.alpha, CN * CL, 0, 1, &rng);
    fill_random(c.feats, 2 * CL * CD, -1, 1, &rng);
    fill_random(c.r, CN * CD, -1, 1, &rng);
    context_loss(&c);
    for (int n = 0; n < CN; n++)
        for (int d = 0; d < CD; d++) {
            double s = 0;
            for (int i = 0; i < CL; i++) s += c.alpha[n * CL + i] * c.feats[(c.img[n] * CL + i) * CD + d];
            assert_true(fabs(s - c.z[n * CD + d]) < 1e-5);
        }
    float dalpha[CN * CL] = { 0 };
    nn_context_backward(dalpha, c.r, c.feats, c.img, CN, CL, CD);
    check_gradient("alpha", context_loss, &c, c.alpha, dalpha, CN * CL, 100, 0, &rng);
}

enum { GN = 3, GH = 4, GD = 5, GLD = 8 };

typedef struct {
    float h[GN * GH], w[GH], b[1], z[GN * GD], beta[GN], zhat[GN * GLD], r[GN * GLD];
} gate_case;

static double gate_loss(void *p)
{
    gate_case *c = p;
    nn_gate_forward(c->beta, c->zhat, GLD, c->h, c->w, c->b, c->z, GN, GH, GD);
    double s = 0;
    for (int n = 0; n < GN; n++) s += weighted_sum(c->zhat + n * GLD, c->r + n * GLD, GD);
    return s;
}

static void test_gate_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    gate_case c;
    fill_random(c.h, GN * GH, -1, 1, &rng);
    fill_random(c.w, GH, -1, 1, &rng);
    fill_random(c.b, 1, -1, 1, &rng);
    fill_random(c.z, GN * GD, -1, 1, &rng);
    fill_random(c.r, GN * GLD, -1, 1, &rng);
    gate_loss(&c);
    for (int n = 0; n < GN; n++) {
        double s = c.b[0];
        for (int j = 0; j < GH; j++) s += c.h[n * GH + j] * c.w[j];
        assert_true(fabs(1 / (1 + exp(-s)) - c.beta[n]) < 1e-6);
    }
    float dh[GN * GH] = { 0 }, dw[GH] = { 0 }, db[1] = { 0 }, dz[GN * GD] = { 0 };
    nn_gate_backward(dh, dw, db, dz, c.r, GLD, c.beta, c.h, c.w, c.z, GN, GH, GD);
    check_gradient("h", gate_loss, &c, c.h, dh, GN * GH, 100, 0, &rng);
    check_gradient("w", gate_loss, &c, c.w, dw, GH, 100, 0, &rng);
    check_gradient("b", gate_loss, &c, c.b, db, 1, 100, 0, &rng);
    check_gradient("z", gate_loss, &c, c.z, dz, GN * GD, 100, 0, &rng);
}

enum { LN = 2, LH = 11 }; /* 3H = 33 and H = 11: vector path and tail */

typedef struct {
    float pre[LN * 4 * LH], c_prev[LN * LH], gates[LN * 4 * LH], c[LN * LH], h[LN * LH];
    float rh[LN * LH], rc[LN * LH];
} lstm_case;

static double lstm_loss(void *p)
{
    lstm_case *k = p;
    memcpy(k->gates, k->pre, sizeof k->pre);
    nn_lstm_forward(k->gates, k->c, k->h, k->c_prev, LN, LH);
    return weighted_sum(k->h, k->rh, LN * LH) + weighted_sum(k->c, k->rc, LN * LH);
}

static void test_lstm_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 6);
    lstm_case k;
    fill_random(k.pre, LN * 4 * LH, -2, 2, &rng);
    fill_random(k.c_prev, LN * LH, -1, 1, &rng);
    fill_random(k.rh, LN * LH, -1, 1, &rng);
    fill_random(k.rc, LN * LH, -1, 1, &rng);
    lstm_loss(&k);
    for (int n = 0; n < LN; n++) /* against the equations */
        for (int j = 0; j < LH; j++) {
            const float *p = k.pre + n * 4 * LH;
            double i = 1 / (1 + exp(-p[j])), f = 1 / (1 + exp(-p[LH + j]));
            double o = 1 / (1 + exp(-p[2 * LH + j])), g = tanh(p[3 * LH + j]);
            double c = f * k.c_prev[n * LH + j] + i * g;
            assert_true(fabs(c - k.c[n * LH + j]) < 1e-6);
            assert_true(fabs(o * tanh(c) - k.h[n * LH + j]) < 1e-6);
        }
    float dgates[LN * 4 * LH], dc[LN * LH];
    memcpy(dc, k.rc, sizeof dc);
    nn_lstm_backward(dgates, dc, k.rh, dc, k.gates, k.c, k.c_prev, LN, LH); /* dc_prev in place */
    check_gradient("gates", lstm_loss, &k, k.pre, dgates, LN * 4 * LH, 100, 0, &rng);
    check_gradient("c_prev", lstm_loss, &k, k.c_prev, dc, LN * LH, 100, 0, &rng);
}

typedef struct {
    float logits[3 * 7], probs[3 * 7];
    int target[3];
} xent_case;

static double xent_loss(void *p)
{
    xent_case *c = p;
    memcpy(c->probs, c->logits, sizeof c->logits);
    return nn_softmax_xent_forward(c->probs, c->target, 3, 7);
}

static void test_softmax_xent_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 7);
    xent_case c = { .target = { 2, -1, 6 } };
    fill_random(c.logits, 21, -3, 3, &rng);
    double loss = xent_loss(&c);
    double want = 0;
    for (int n = 0; n < 3; n += 2) {
        double z = 0;
        for (int i = 0; i < 7; i++) z += exp(c.logits[n * 7 + i]);
        want += log(z) - c.logits[n * 7 + c.target[n]];
    }
    assert_true(fabs(loss - want) < 1e-5);
    float d[21];
    nn_softmax_xent_backward(d, c.probs, c.target, 1.0f, 3, 7);
    for (int i = 0; i < 7; i++) assert_true(d[7 + i] == 0); /* skipped row */
    check_gradient("logits", xent_loss, &c, c.logits, d, 21, 100, 0, &rng);
}

/* ---- the whole decoder ------------------------------------------------------- */

static const sat_decoder_config tiny = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 3, .V = 11 };
/* A = 9: the attention's vector path inside the whole model too. */
static const sat_decoder_config small = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };

typedef struct {
    sat_decoder *dec;
    sat_decoder_batch batch;
    float *feats;
    int tokens[TB * (TT + 1)];
    int image[TB];
    float lambda, dropout;
} model_case;

static double model_loss(void *p)
{
    model_case *m = p;
    sat_rng rng;
    sat_rng_seed(&rng, 99); /* the same dropout masks at every evaluation */
    return sat_decoder_forward_backward(m->dec, &m->batch, m->lambda, m->dropout, &rng, 0).loss;
}

static void model_case_init(model_case *m, sat_decoder_config cfg, uint64_t seed)
{
    decoder_case_fill(cfg, seed, &m->dec, &m->feats, m->tokens, m->image, &m->batch);
    m->lambda = 0.7f;
    m->dropout = 0;
}

static void model_case_free(model_case *m)
{
    sat_decoder_free(m->dec);
    free(m->feats);
}

static void check_model_gradients(model_case *m, size_t all_below, int sample)
{
    sat_rng rng;
    sat_rng_seed(&rng, 99);
    sat_decoder_zero_grad(m->dec);
    sat_decoder_loss loss = sat_decoder_forward_backward(m->dec, &m->batch, m->lambda, m->dropout,
                                                         &rng, 1);
    assert_true(isfinite(loss.loss) && loss.penalty > 0);
    assert_int_equal(loss.ntokens, TT + 2 + TT);
    assert_true(fabs(loss.loss - model_loss(m)) < 1e-6); /* backward leaves the loss alone */
    for (int i = 0; i < SAT_DECODER_NTENSORS; i++) {
        const sat_decoder_tensor *t = &m->dec->tensors[i];
        double norm = 0;
        for (size_t k = 0; k < t->count; k++) norm += fabs(m->dec->grads[t->offset + k]);
        if (norm == 0) fail_msg("%s: gradient is all zero", t->name);
        check_gradient(t->name, model_loss, m, m->dec->params + t->offset,
                       m->dec->grads + t->offset, t->count, all_below, sample, &rng);
    }
}

static void test_model_gradients(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 11);
    check_model_gradients(&m, (size_t)-1, 0); /* every entry of every tensor */
    model_case_free(&m);
}

static void test_model_gradients_vector_path(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, small, 12);
    check_model_gradients(&m, 64, 64);
    model_case_free(&m);
}

static void test_model_gradients_dropout(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 13);
    m.dropout = 0.3f;
    sat_rng a, b;
    sat_rng_seed(&a, 1);
    sat_rng_seed(&b, 2);
    double la = sat_decoder_forward_backward(m.dec, &m.batch, m.lambda, m.dropout, &a, 0).loss;
    double lb = sat_decoder_forward_backward(m.dec, &m.batch, m.lambda, m.dropout, &b, 0).loss;
    assert_true(la != lb); /* the masks do act */
    check_model_gradients(&m, 64, 64);
    model_case_free(&m);
}

/* Per-caption weights (self-critical training's advantages, of either
 * sign): the gradient of Σ weight · xent against finite differences. */
static void test_model_gradients_weighted(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 15);
    const float weight[TB] = { 0.8f, -1.7f, 2.5f };
    m.batch.weight = weight;
    check_model_gradients(&m, 64, 64);
    model_case_free(&m);
}

/* Weights (w_1, 0, …) with λ = 0 give B_1/B times the gradient of caption 1
 * alone, and the loss of the weighted sum. */
static void test_weights_select_captions(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 16);
    const float weight[TB] = { 3.0f, 0.0f, 0.0f };
    m.batch.weight = weight;
    sat_decoder_zero_grad(m.dec);
    double all = sat_decoder_forward_backward(m.dec, &m.batch, 0, 0, NULL, 1).loss;
    float *g = sat_xmalloc(m.dec->nparams * sizeof(float));
    memcpy(g, m.dec->grads, m.dec->nparams * sizeof(float));
    sat_decoder_batch first = m.batch;
    first.B = 1, first.weight = NULL;
    sat_decoder_zero_grad(m.dec);
    double one = sat_decoder_forward_backward(m.dec, &first, 0, 0, NULL, 1).loss;
    assert_true(fabs(all - one * 3.0 / TB) < 1e-5 * (1 + fabs(one)));
    for (size_t i = 0; i < m.dec->nparams; i++)
        assert_true(fabsf(g[i] - m.dec->grads[i] * 3.0f / TB) <= 1e-5f * (1 + fabsf(g[i])));
    free(g);
    model_case_free(&m);
}

static double dropout_step(sat_decoder *dec, const sat_decoder_batch *batch, void *ctx)
{
    (void)ctx;
    return sat_decoder_forward_backward(dec, batch, 0.7f, 0.5f, NULL, 1).loss;
}

/* A batch split by image (per-caption generators, the loss over the whole
 * batch) trains as the whole batch, dropout masks included. */
static void test_split_batch(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 21);
    decoder_case_check_split(m.dec, &m.batch, dropout_step, NULL);
    model_case_free(&m);
}

/* Gradients accumulate over calls, and a padded step contributes nothing:
 * changing the tokens after a caption's end changes neither loss nor grads. */
static void test_accumulation_and_padding(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 14);
    sat_decoder_zero_grad(m.dec);
    sat_decoder_loss one = sat_decoder_forward_backward(m.dec, &m.batch, m.lambda, 0, NULL, 1);
    float *g1 = sat_xmalloc(m.dec->nparams * sizeof(float));
    memcpy(g1, m.dec->grads, m.dec->nparams * sizeof(float));
    sat_decoder_forward_backward(m.dec, &m.batch, m.lambda, 0, NULL, 1);
    for (size_t i = 0; i < m.dec->nparams; i++) assert_true(fabsf(m.dec->grads[i] - 2 * g1[i]) <= 1e-6f * (1 + fabsf(g1[i])));
    /* The same batch with a longer T (more padding) gives the same loss and gradient. */
    int tokens[TB * (TT + 3)];
    for (int b = 0; b < TB; b++)
        for (int t = 0; t < TT + 3; t++) tokens[b * (TT + 3) + t] = t <= TT ? m.tokens[b * (TT + 1) + t] : -1;
    sat_decoder_batch longer = m.batch;
    longer.tokens = tokens, longer.T = TT + 2;
    sat_decoder_zero_grad(m.dec);
    sat_decoder_loss two = sat_decoder_forward_backward(m.dec, &longer, m.lambda, 0, NULL, 1);
    assert_true(fabs(one.loss - two.loss) < 1e-6);
    for (size_t i = 0; i < m.dec->nparams; i++) assert_true(fabsf(m.dec->grads[i] - g1[i]) <= 1e-5f * (1 + fabsf(g1[i])));
    free(g1);
    model_case_free(&m);
}

/* A caption with no targets counts in B (the loss is per caption) and
 * nothing else: the loss scales by B/(B+1), the gradients likewise. */
static void test_empty_caption(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 21);
    sat_decoder_zero_grad(m.dec);
    sat_decoder_loss base = sat_decoder_forward_backward(m.dec, &m.batch, m.lambda, 0, NULL, 1);
    float *g1 = sat_xmalloc(m.dec->nparams * sizeof(float));
    memcpy(g1, m.dec->grads, m.dec->nparams * sizeof(float));
    int tokens[(TB + 1) * (TT + 1)], image[TB + 1];
    memcpy(tokens, m.tokens, sizeof m.tokens);
    memcpy(image, m.image, sizeof m.image);
    for (int t = 0; t <= TT; t++) tokens[TB * (TT + 1) + t] = t == 0 ? 0 : -1;
    image[TB] = 0;
    sat_decoder_batch more = m.batch;
    more.tokens = tokens, more.image = image, more.B = TB + 1;
    sat_decoder_zero_grad(m.dec);
    sat_decoder_loss l = sat_decoder_forward_backward(m.dec, &more, m.lambda, 0, NULL, 1);
    assert_int_equal(l.ntokens, base.ntokens);
    /* its penalty is Σ_i (1 − 0)² = L */
    assert_true(fabs(l.penalty - (base.penalty + tiny.L)) < 1e-5);
    assert_true(fabs(l.xent - base.xent) < 1e-5);
    double scale = (double)TB / (TB + 1);
    for (size_t i = 0; i < m.dec->nparams; i++)
        assert_true(fabs(m.dec->grads[i] - scale * g1[i]) <= 1e-5 * (1 + fabs(g1[i])));
    free(g1);
    model_case_free(&m);
}

/* The step API gives the teacher-forced log-probabilities and attention:
 * the three captions decoded as beams of their image. */
static void test_step_matches_teacher_forcing(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, small, 15);
    const sat_decoder_config *c = &m.dec->cfg;
    sat_decoder_loss want = sat_decoder_forward_backward(m.dec, &m.batch, 1.0f, 0, NULL, 0);
    double xent = 0, penalty = 0;
    float *logp = sat_xmalloc((size_t)TB * c->V * sizeof(float));
    float *alpha = sat_xmalloc((size_t)TB * c->L * sizeof(float));
    float beta[TB];
    for (int img = 0; img < TIMG; img++) {
        int rows[TB], k = 0;
        for (int b = 0; b < TB; b++)
            if (m.image[b] == img) rows[k++] = b;
        sat_decoder_state *st = sat_decoder_state_new(m.dec, m.feats + (size_t)img * c->L * c->D, TB);
        assert_int_equal(sat_decoder_state_k(st), 1);
        sat_decoder_state_select(st, (const int[]){ 0, 0, 0 }, k);
        double asum[TB][16] = { { 0 } };
        for (int t = 0; t < TT; t++) {
            int prev[TB];
            for (int j = 0; j < k; j++) prev[j] = m.tokens[rows[j] * (TT + 1) + t] >= 0 ? m.tokens[rows[j] * (TT + 1) + t] : 0;
            sat_decoder_step(m.dec, st, prev, logp, alpha, beta);
            for (int j = 0; j < k; j++) {
                int y = m.tokens[rows[j] * (TT + 1) + t + 1];
                double z = 0;
                for (int v = 0; v < c->V; v++) z += exp(logp[j * c->V + v]);
                assert_true(fabs(z - 1) < 1e-5);
                assert_true(beta[j] > 0 && beta[j] < 1);
                if (y < 0) continue;
                xent -= logp[j * c->V + y];
                for (int i = 0; i < c->L; i++) asum[j][i] += alpha[j * c->L + i];
            }
        }
        for (int j = 0; j < k; j++)
            for (int i = 0; i < c->L; i++) penalty += (1 - asum[j][i]) * (1 - asum[j][i]);
        sat_decoder_state_free(st);
    }
    assert_true(fabs(xent - want.xent) < 1e-4 * fabs(want.xent));
    assert_true(fabs(penalty - want.penalty) < 1e-4 * fabs(want.penalty) + 1e-6);
    free(logp);
    free(alpha);
    model_case_free(&m);
}

/* Reordering hypotheses (beam search) moves their states with them. */
static void test_step_select(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(small, 16);
    const int V = small.V;
    sat_rng rng;
    sat_rng_seed(&rng, 16);
    float *feats = sat_xmalloc((size_t)small.L * small.D * sizeof(float));
    fill_random(feats, (size_t)small.L * small.D, 0, 1, &rng);
    sat_decoder_state *a = sat_decoder_state_new(dec, feats, 3);
    sat_decoder_state *b = sat_decoder_state_new(dec, feats, 3);
    float la[3 * 13], lb[3 * 13];
    sat_decoder_state_select(a, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_state_select(b, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_step(dec, a, (const int[]){ 1, 2, 3 }, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 1, 2, 3 }, lb, NULL, NULL);
    assert_memory_not_equal(la, la + V, V * sizeof(float)); /* different words, different states */
    sat_decoder_state_select(b, (const int[]){ 2, 0 }, 2); /* b keeps a's hypotheses 2 and 0 */
    sat_decoder_step(dec, a, (const int[]){ 4, 5, 6 }, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 6, 4 }, lb, NULL, NULL);
    for (int v = 0; v < V; v++) {
        assert_true(fabsf(lb[v] - la[2 * V + v]) < 1e-6f);
        assert_true(fabsf(lb[V + v] - la[v]) < 1e-6f);
    }
    sat_decoder_state_free(a);
    sat_decoder_state_free(b);
    free(feats);
    sat_decoder_free(dec);
}

/* Two images in one state step as each alone, to the bit: image 0 with 3
 * hypotheses, image 1 with 2 (the rows grouped by image). */
static void test_step_images(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(small, 17);
    const int V = small.V;
    const size_t LD = (size_t)small.L * small.D;
    sat_rng rng;
    sat_rng_seed(&rng, 17);
    float *feats = sat_xmalloc(2 * LD * sizeof(float));
    fill_random(feats, 2 * LD, 0, 1, &rng);
    sat_decoder_state *both = sat_decoder_state_new_images(dec, feats, 2, 3);
    sat_decoder_state *a = sat_decoder_state_new(dec, feats, 3);
    sat_decoder_state *b = sat_decoder_state_new(dec, feats + LD, 3);
    float l2[5 * 13], la[3 * 13], lb[3 * 13];
    sat_decoder_step(dec, both, (const int[]){ 1, 1 }, l2, NULL, NULL);
    sat_decoder_step(dec, a, (const int[]){ 1 }, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 1 }, lb, NULL, NULL);
    assert_memory_equal(l2, la, V * sizeof(float));
    assert_memory_equal(l2 + V, lb, V * sizeof(float));
    sat_decoder_state_select(both, (const int[]){ 0, 0, 0, 1, 1 }, 5);
    sat_decoder_state_select(a, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_state_select(b, (const int[]){ 0, 0 }, 2);
    sat_decoder_step(dec, both, (const int[]){ 3, 4, 5, 6, 7 }, l2, NULL, NULL);
    sat_decoder_step(dec, a, (const int[]){ 3, 4, 5 }, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 6, 7 }, lb, NULL, NULL);
    assert_memory_equal(l2, la, 3 * V * sizeof(float));
    assert_memory_equal(l2 + 3 * V, lb, 2 * V * sizeof(float));
    sat_decoder_state_free(both);
    sat_decoder_state_free(a);
    sat_decoder_state_free(b);
    free(feats);
    sat_decoder_free(dec);
}

/* A tiny model memorises four captions of four images with Adam (two
 * captions of one image could not both be certain). */
static void test_learns_toy_set(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 8, .H = 16, .A = 8, .V = 11 };
    char err[200];
    sat_decoder *dec = sat_decoder_new(cfg, err, sizeof err);
    sat_rng rng;
    sat_rng_seed(&rng, 17);
    sat_decoder_init_params(dec, &rng);
    float feats[4 * 5 * 7];
    fill_random(feats, 4 * 5 * 7, 0, 1, &rng);
    const int tokens[4 * 7] = { 0, 3, 4, 5, 1, -1, -1,  0, 6, 4, 7, 8, 1, -1,
                                0, 9, 10, 1, -1, -1, -1, 0, 3, 9, 2, 5, 6, 1 };
    const int image[4] = { 0, 1, 2, 3 };
    sat_decoder_batch batch = { .feats = feats, .n_images = 4, .image = image, .tokens = tokens, .B = 4, .T = 6 };
    sat_adam adam;
    sat_adam_init(&adam, dec->nparams, 0.02f);
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        sat_decoder_zero_grad(dec);
        sat_decoder_loss l = sat_decoder_forward_backward(dec, &batch, 0.1f, 0, &rng, 1);
        sat_clip_grad_norm(dec->grads, dec->nparams, 5.0);
        sat_adam_update(&adam, dec->params, dec->grads);
        if (step == 0) first = l.xent / l.ntokens;
        last = l.xent / l.ntokens;
    }
    if (getenv("SAT_TEST_VERBOSE")) printf("  toy set: per-token xent %.3f -> %.4f\n", first, last);
    assert_true(first > 1.5);   /* about log 11 at the start */
    assert_true(last < 0.05);   /* memorised */
    sat_adam_free(&adam);
    sat_decoder_free(dec);
}

static void test_model_round_trip(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(tiny, 18);
    char err[200];
    sat_model *m = sat_decoder_to_model(dec);
    char path[] = "/tmp/test_decoder.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sat_model_save(m, path, 0);
    sat_model *loaded = sat_model_load(path, 0, err, sizeof err);
    unlink(path);
    assert_non_null(loaded);
    sat_decoder *back = sat_decoder_from_model(loaded, err, sizeof err);
    assert_non_null(back);
    assert_memory_equal(&back->cfg, &dec->cfg, sizeof dec->cfg);
    assert_memory_equal(back->params, dec->params, dec->nparams * sizeof(float));
    sat_decoder_free(back);

    /* A wrong shape, a missing tensor, a missing size: refused with a reason. */
    loaded->tensors[sat_model_find_tensor(loaded, "att.U")].shape[1]++;
    assert_null(sat_decoder_from_model(loaded, err, sizeof err));
    assert_non_null(strstr(err, "att.U"));
    loaded->tensors[sat_model_find_tensor(loaded, "att.U")].name[0] = 'x';
    assert_null(sat_decoder_from_model(loaded, err, sizeof err));
    assert_non_null(strstr(err, "missing"));
    m->config[3].name[0] = 'Q'; /* "H" */
    assert_null(sat_decoder_from_model(m, err, sizeof err));
    assert_non_null(strstr(err, "H"));
    sat_model_free(loaded);
    sat_model_free(m);
    sat_decoder_free(dec);
}

static void test_rejects_bad_batches(void **state)
{
    (void)state;
    model_case m;
    model_case_init(&m, tiny, 19);
    char err[200];
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), 0);
    int *tok = m.tokens + 1 * (TT + 1);
    tok[4] = 3; /* a word after padding */
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    assert_non_null(strstr(err, "caption 1"));
    tok[4] = -1, tok[2] = 11; /* out of vocabulary */
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    tok[2] = -7;
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    tok[2] = 1, m.image[2] = 2; /* no such image */
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    assert_non_null(strstr(err, "caption 2"));
    m.image[2] = 1, m.tokens[0] = -1; /* no <start> */
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    m.tokens[0] = 0;
    sat_decoder_batch huge = m.batch; /* refused before any token is read */
    huge.B = 60000, huge.T = 4000;
    assert_int_equal(sat_decoder_check_batch(m.dec, &huge, err, sizeof err), -1);
    assert_non_null(strstr(err, "GiB"));
    sat_decoder_config bad = tiny;
    bad.H = 0;
    assert_null(sat_decoder_new(bad, err, sizeof err));
    assert_non_null(strstr(err, "H"));
    bad = tiny, bad.L = 5000;
    assert_null(sat_decoder_new(bad, err, sizeof err));
    model_case_free(&m);
}

/* The LSTM's recurrent blocks start orthogonal. */
static void test_init_orthogonal(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(tiny, 20);
    const int H = tiny.H, H4 = 4 * H, rows0 = tiny.E + tiny.D;
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < H; j++) {
                double dot = 0;
                for (int k = 0; k < H; k++)
                    dot += (double)dec->w.lstm_w[(size_t)(rows0 + i) * H4 + g * H + k] *
                           dec->w.lstm_w[(size_t)(rows0 + j) * H4 + g * H + k];
                assert_true(fabs(dot - (i == j ? 4.0 : 0.0)) < 1e-5); /* ×2 by new_decoder */
            }
    assert_true(dec->w.lstm_b[H] == 2.0f && dec->w.lstm_b[0] == 0.0f); /* forget bias 1, ×2 */
    sat_decoder_free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_layer),
        cmocka_unit_test(test_linear_rows),
        cmocka_unit_test(test_attention_layer),
        cmocka_unit_test(test_softmax_layer),
        cmocka_unit_test(test_context_layer),
        cmocka_unit_test(test_gate_layer),
        cmocka_unit_test(test_lstm_layer),
        cmocka_unit_test(test_softmax_xent_layer),
        cmocka_unit_test(test_model_gradients),
        cmocka_unit_test(test_model_gradients_vector_path),
        cmocka_unit_test(test_model_gradients_dropout),
        cmocka_unit_test(test_model_gradients_weighted),
        cmocka_unit_test(test_weights_select_captions),
        cmocka_unit_test(test_split_batch),
        cmocka_unit_test(test_accumulation_and_padding),
        cmocka_unit_test(test_empty_caption),
        cmocka_unit_test(test_step_matches_teacher_forcing),
        cmocka_unit_test(test_step_select),
        cmocka_unit_test(test_step_images),
        cmocka_unit_test(test_learns_toy_set),
        cmocka_unit_test(test_model_round_trip),
        cmocka_unit_test(test_rejects_bad_batches),
        cmocka_unit_test(test_init_orthogonal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
