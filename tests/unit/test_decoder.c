/* test_decoder.c — the attention LSTM decoder: every parameter tensor's
 * gradient against central finite differences, with the SIMD paths and
 * without (the layers' own tests are in test_nn_layers.c), inference =
 * teacher forcing, learning a toy set, model round trip. */
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

#include "sat/decoder.h"
#include "sat/half.h"
#include "decoder_case.h"
#include "gradient_check.h"
#include "sat/optim.h"
#include "sat/rng.h"
#include "sat/util.h"

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
        sat_decoder_state *st =
            sat_decoder_state_new(m.dec, m.feats + (size_t)img * c->L * c->D, 1, TB);
        assert_int_equal(sat_decoder_state_k(st), 1);
        sat_decoder_state_select(st, (const int[]){ 0, 0, 0 }, k);
        double asum[TB][16] = { { 0 } };
        for (int t = 0; t < TT; t++) {
            int prev[TB];
            for (int j = 0; j < k; j++) prev[j] = m.tokens[rows[j] * (TT + 1) + t] >= 0 ? m.tokens[rows[j] * (TT + 1) + t] : 0;
            sat_decoder_step(m.dec, st, prev, NULL, logp, alpha, beta);
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
    sat_decoder_state *a = sat_decoder_state_new(dec, feats, 1, 3);
    sat_decoder_state *b = sat_decoder_state_new(dec, feats, 1, 3);
    float la[3 * 13], lb[3 * 13];
    sat_decoder_state_select(a, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_state_select(b, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_step(dec, a, (const int[]){ 1, 2, 3 }, NULL, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 1, 2, 3 }, NULL, lb, NULL, NULL);
    assert_memory_not_equal(la, la + V, V * sizeof(float)); /* different words, different states */
    sat_decoder_state_select(b, (const int[]){ 2, 0 }, 2); /* b keeps a's hypotheses 2 and 0 */
    sat_decoder_step(dec, a, (const int[]){ 4, 5, 6 }, NULL, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 6, 4 }, NULL, lb, NULL, NULL);
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
    sat_decoder_state *both = sat_decoder_state_new(dec, feats, 2, 3);
    sat_decoder_state *a = sat_decoder_state_new(dec, feats, 1, 3);
    sat_decoder_state *b = sat_decoder_state_new(dec, feats + LD, 1, 3);
    float l2[5 * 13], la[3 * 13], lb[3 * 13];
    sat_decoder_step(dec, both, (const int[]){ 1, 1 }, NULL, l2, NULL, NULL);
    sat_decoder_step(dec, a, (const int[]){ 1 }, NULL, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 1 }, NULL, lb, NULL, NULL);
    assert_memory_equal(l2, la, V * sizeof(float));
    assert_memory_equal(l2 + V, lb, V * sizeof(float));
    sat_decoder_state_select(both, (const int[]){ 0, 0, 0, 1, 1 }, 5);
    sat_decoder_state_select(a, (const int[]){ 0, 0, 0 }, 3);
    sat_decoder_state_select(b, (const int[]){ 0, 0 }, 2);
    sat_decoder_step(dec, both, (const int[]){ 3, 4, 5, 6, 7 }, NULL, l2, NULL, NULL);
    sat_decoder_step(dec, a, (const int[]){ 3, 4, 5 }, NULL, la, NULL, NULL);
    sat_decoder_step(dec, b, (const int[]){ 6, 7 }, NULL, lb, NULL, NULL);
    assert_memory_equal(l2, la, 3 * V * sizeof(float));
    assert_memory_equal(l2 + 3 * V, lb, 2 * V * sizeof(float));
    sat_decoder_state_free(both);
    sat_decoder_state_free(a);
    sat_decoder_state_free(b);
    free(feats);
    sat_decoder_free(dec);
}

/* A state that reads its features in f16 (sat_decoder_state_use_f16) steps
 * to the same bits as one that reads them in f32, where f16 holds them: two
 * images, beams of 3 and 2 after a select. */
static void test_step_f16_features(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(small, 18);
    const int V = small.V;
    const size_t LD = (size_t)small.L * small.D;
    sat_rng rng;
    sat_rng_seed(&rng, 18);
    float *feats = sat_xmalloc(2 * LD * sizeof(float));
    uint16_t *feats16 = sat_xmalloc(2 * LD * sizeof(uint16_t));
    fill_random(feats, 2 * LD, 0, 1, &rng);
    for (size_t i = 0; i < 2 * LD; i++) feats[i] = sat_f16_to_f32(sat_f32_to_f16(feats[i]));
    assert_true(sat_f32_to_f16_exact(feats, feats16, 2 * LD));
    sat_decoder_state *f32 = sat_decoder_state_new(dec, feats, 2, 3);
    sat_decoder_state *f16 = sat_decoder_state_new(dec, feats, 2, 3);
    sat_decoder_state_use_f16(f16, feats16);
    float a[5 * 13], b[5 * 13], alpha_a[5 * 6], alpha_b[5 * 6];
    sat_decoder_step(dec, f32, (const int[]){ 1, 1 }, NULL, a, alpha_a, NULL);
    sat_decoder_step(dec, f16, (const int[]){ 1, 1 }, NULL, b, alpha_b, NULL);
    assert_memory_equal(a, b, 2 * V * sizeof(float));
    const int parents[] = { 0, 0, 0, 1, 1 }, words[] = { 3, 4, 5, 6, 7 };
    sat_decoder_state_select(f32, parents, 5);
    sat_decoder_state_select(f16, parents, 5);
    sat_decoder_step(dec, f32, words, NULL, a, alpha_a, NULL);
    sat_decoder_step(dec, f16, words, NULL, b, alpha_b, NULL);
    assert_memory_equal(a, b, 5 * V * sizeof(float));
    assert_memory_equal(alpha_a, alpha_b, sizeof alpha_a);
    sat_decoder_state_free(f32);
    sat_decoder_state_free(f16);
    free(feats16);
    free(feats);
    sat_decoder_free(dec);
}

/* A tiny model memorises four captions of four images with Adam (two
 * captions of one image could not both be certain). */
static void test_learns_toy_set(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 8, .H = 16, .A = 8, .V = 11 };
    char err[SAT_ERR_MAX];
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

/* m saved to a temporary file and loaded back. */
static sat_model *saved_and_loaded(sat_model *m)
{
    char path[] = "/tmp/test_decoder.XXXXXX", err[SAT_ERR_MAX];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sat_model_save(m, path, 0);
    sat_model *loaded = sat_model_load(path, 0, err, sizeof err);
    unlink(path);
    assert_non_null(loaded);
    return loaded;
}

static void test_model_round_trip(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder(tiny, 18);
    char err[SAT_ERR_MAX];
    sat_model *m = sat_decoder_to_model(dec);
    sat_model *loaded = saved_and_loaded(m);
    sat_decoder *back = sat_decoder_from_model(loaded, err, sizeof err);
    assert_non_null(back);
    assert_memory_equal(&back->cfg, &dec->cfg, sizeof dec->cfg);
    assert_memory_equal(back->params, dec->params, dec->nparams * sizeof(float));
    sat_decoder_free(back);

    /* take_model: the same decoder, made from the model's own params, which
     * it no longer has; with a tensor more (a checkpoint's) it copies. */
    sat_model *taken = saved_and_loaded(m);
    const float *params = taken->params;
    back = sat_decoder_take_model(taken, err, sizeof err);
    assert_non_null(back);
    assert_ptr_equal(back->params, params);
    assert_null(taken->params);
    assert_memory_equal(back->params, dec->params, dec->nparams * sizeof(float));
    sat_decoder_free(back);
    sat_model_free(taken);
    sat_model *more = sat_decoder_to_model(dec);
    sat_model_add_tensor(more, "adam.m", dec->params, 3);
    back = sat_decoder_take_model(more, err, sizeof err);
    assert_non_null(back);
    assert_non_null(more->params);
    assert_ptr_not_equal(back->params, more->params);
    assert_memory_equal(back->params, dec->params, dec->nparams * sizeof(float));
    sat_decoder_free(back);
    sat_model_free(more);

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
    char err[SAT_ERR_MAX];
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
    const struct CMUnitTest gradients[] = {
        cmocka_unit_test(test_model_gradients),
        cmocka_unit_test(test_model_gradients_vector_path),
        cmocka_unit_test(test_model_gradients_dropout),
        cmocka_unit_test(test_model_gradients_weighted),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_select_captions),
        cmocka_unit_test(test_split_batch),
        cmocka_unit_test(test_accumulation_and_padding),
        cmocka_unit_test(test_empty_caption),
        cmocka_unit_test(test_step_matches_teacher_forcing),
        cmocka_unit_test(test_step_select),
        cmocka_unit_test(test_step_images),
        cmocka_unit_test(test_step_f16_features),
        cmocka_unit_test(test_learns_toy_set),
        cmocka_unit_test(test_model_round_trip),
        cmocka_unit_test(test_rejects_bad_batches),
        cmocka_unit_test(test_init_orthogonal),
    };
    return run_tests_simd_on_and_off(gradients) + cmocka_run_group_tests(tests, NULL, NULL);
}
