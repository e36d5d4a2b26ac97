/* test_hard.c — hard (stochastic) attention: the estimator's gradient
 * against the exact gradient of the lower bound (all location sequences
 * enumerated), the entropy and temperature terms against finite differences
 * (with the SIMD paths and without),
 * expected-context rows = soft attention, the baseline, the inference modes,
 * and a toy task where only the right location tells the word. */
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

#include "sat/captioner.h"
#include "sat/decoder.h"
#include "decoder_case.h"
#include "sat/optim.h"
#include "sat/rng.h"
#include "sat/util.h"

static int verbose(void) { return getenv("SAT_TEST_VERBOSE") != NULL; }

/* ---- the exact lower bound by enumeration ----------------------------------- */

enum { XL = 3, XT = 3 }; /* 3 locations, 3 targets: 27 location sequences */
static const sat_decoder_config exact_cfg = { .L = XL, .D = 4, .E = 3, .H = 4, .A = 3, .V = 6 };
static const int exact_tokens[XT + 1] = { 1, 4, 3, 0 }; /* <start> w w <end> */

typedef struct {
    sat_decoder *dec;
    float feats[XL * 4];
} exact_case;

/* log p(y | s, a) of exact_tokens with the locations s, and log p(s | a). */
static double logp_at(const exact_case *x, const int *s, double *logp_s)
{
    sat_decoder_state *st = sat_decoder_state_new(x->dec, x->feats, 1, 1);
    float logp[6], alpha[XL];
    double lp = 0;
    *logp_s = 0;
    for (int t = 0; t < XT; t++) {
        int loc = s[t];
        sat_decoder_step(x->dec, st, exact_tokens + t,
                         &(sat_step_attend){ .mode = SAT_ATTEND_GIVEN, .loc = &loc }, logp, alpha,
                         NULL);
        lp += logp[exact_tokens[t + 1]];
        *logp_s += log(alpha[s[t]]);
    }
    sat_decoder_state_free(st);
    return lp;
}

/* F = E_{s~p(s|a)} log p(y|s,a) = Σ_s p(s|a) log p(y|s,a), over all XL^XT sequences. */
static double exact_bound(const exact_case *x)
{
    double F = 0, total = 0;
    for (int code = 0; code < XL * XL * XL; code++) {
        int s[XT] = { code % XL, code / XL % XL, code / (XL * XL) };
        double ls, lp = logp_at(x, s, &ls);
        F += exp(ls) * lp;
        total += exp(ls);
    }
    assert_true(fabs(total - 1) < 1e-5); /* the sequences' probabilities sum to 1 */
    return F;
}

/* Central difference of F in double, step 5e-3 (F is smooth; float noise
 * of F ~1e-6 gives ~1e-4 here). */
static double exact_partial(exact_case *x, float *p)
{
    const float h = 5e-3f, old = *p;
    *p = old + h;
    double up = exact_bound(x);
    *p = old - h;
    double down = exact_bound(x);
    *p = old;
    return (up - down) / ((double)(old + h) - (double)(old - h));
}

/* Mean and standard error over K calls of S samples each of the
 * estimator's gradient (of the loss: −∇F in expectation). */
static void estimate(exact_case *x, sat_hard_attention h, int K, double *mean, double *se)
{
    sat_decoder *dec = x->dec;
    const size_t n = dec->nparams;
    int image = 0;
    sat_decoder_batch batch = { .feats = x->feats, .n_images = 1, .image = &image, .tokens = exact_tokens, .B = 1, .T = XT };
    double *sum2 = sat_xcalloc(n, sizeof(double));
    memset(mean, 0, n * sizeof(double));
    sat_rng rng;
    sat_rng_seed(&rng, 1234);
    const double b0 = h.baseline;
    for (int k = 0; k < K; k++) {
        h.baseline = b0; /* a fixed baseline: any constant leaves the mean alone */
        sat_decoder_zero_grad(dec);
        sat_decoder_forward_backward_hard(dec, &batch, &h, 0, 0, &rng, 1);
        for (size_t i = 0; i < n; i++) {
            mean[i] += dec->grads[i];
            sum2[i] += (double)dec->grads[i] * dec->grads[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        mean[i] /= K;
        double var = (sum2[i] / K - mean[i] * mean[i]) * K / (K - 1);
        se[i] = sqrt(fmax(var, 0) / K);
    }
    free(sum2);
}

/* Entries where |estimate − exact| > 4.5 standard errors + the finite
 * difference's own error (~1e-4: F is computed in float); *chi2 = Σ z² over
 * the *nz entries whose standard error is above that error. */
static int count_disagreements(const double *est, const double *se, const double *exact,
                               size_t n, double *chi2, int *nz)
{
    int bad = 0;
    *chi2 = 0, *nz = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs(est[i] - exact[i]), fd_err = 2e-4 + 1e-3 * fabs(exact[i]);
        if (diff > 4.5 * se[i] + fd_err) bad++;
        if (se[i] > 2e-4) {
            double z = diff / se[i];
            *chi2 += z * z;
            (*nz)++;
        }
    }
    return bad;
}

/* (a) 20000 location sequences: the average REINFORCE estimate is the exact
 * gradient of the lower bound, entry by entry within its standard error,
 * with either baseline; and without the REINFORCE term it is not (the check
 * has the power to fail). */
static void test_estimator_matches_exact_gradient(void **state)
{
    (void)state;
    exact_case x = { .dec = new_decoder(exact_cfg, 3) };
    sat_rng rng;
    sat_rng_seed(&rng, 4);
    fill_random(x.feats, XL * 4, -1.5f, 1.5f, &rng);
    const size_t n = x.dec->nparams;
    double *exact = sat_xmalloc(n * sizeof(double)), *est = sat_xmalloc(n * sizeof(double));
    double *se = sat_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) exact[i] = -exact_partial(&x, x.dec->params + i); /* of −F */

    sat_hard_attention h = { .samples = 100, .p_soft = 0, .lambda_r = 1, .lambda_e = 0 };
    double chi2;
    int nz, bad;
    /* F is about −6.7: a moving b far from it, and near; the expected-context
     * reference with an offset of 0 and a wrong one */
    const struct { sat_baseline_kind kind; double b; } runs[] = {
        { SAT_BASELINE_MOVING, -2 }, { SAT_BASELINE_MOVING, -6.5 },
        { SAT_BASELINE_EXPECTED, 0 }, { SAT_BASELINE_EXPECTED, 3 },
    };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        h.baseline_kind = runs[k].kind, h.baseline = runs[k].b;
        estimate(&x, h, 200, est, se);
        bad = count_disagreements(est, se, exact, n, &chi2, &nz);
        if (verbose()) {
            printf("  %zu parameters, F = %.4f, %s baseline %.1f: %d outside 4.5 SE, chi2 %.1f over %d\n",
                   n, exact_bound(&x), runs[k].kind == SAT_BASELINE_MOVING ? "moving" : "expected",
                   runs[k].b, bad, chi2, nz);
            const sat_decoder_tensor *t = &x.dec->tensors[7]; /* att.v: through α only */
            for (size_t i = 0; i < t->count; i++)
                printf("    att.v[%zu]: exact %.5f, estimate %.5f ± %.5f\n", i,
                       exact[t->offset + i], est[t->offset + i], se[t->offset + i]);
        }
        assert_int_equal(bad, 0);
        assert_true(nz >= 20);
        assert_true(chi2 < 1.5 * nz + 10); /* z² averages 1 when unbiased */
    }

    h.lambda_r = 0; /* the path-wise part alone misses α's share */
    estimate(&x, h, 200, est, se);
    bad = count_disagreements(est, se, exact, n, &chi2, &nz);
    if (verbose()) printf("  without REINFORCE: %d entries outside 4.5 SE\n", bad);
    assert_true(bad >= 10);
    free(exact);
    free(est);
    free(se);
    sat_decoder_free(x.dec);
}

/* Σ over parameters of the variance of one draw's gradient, over K draws
 * (each with the baseline offset reset: the same estimator every time). */
static double gradient_variance(sat_decoder *dec, const sat_decoder_batch *batch,
                                sat_hard_attention h, int K)
{
    const size_t n = dec->nparams;
    double *sum = sat_xcalloc(n, sizeof(double)), *sum2 = sat_xcalloc(n, sizeof(double));
    sat_rng rng;
    sat_rng_seed(&rng, 77);
    const double b0 = h.baseline;
    for (int k = 0; k < K; k++) {
        h.baseline = b0;
        sat_decoder_zero_grad(dec);
        sat_decoder_forward_backward_hard(dec, batch, &h, 0, 0, &rng, 1);
        for (size_t i = 0; i < n; i++) sum[i] += dec->grads[i], sum2[i] += (double)dec->grads[i] * dec->grads[i];
    }
    double var = 0;
    for (size_t i = 0; i < n; i++) var += (sum2[i] - sum[i] * sum[i] / K) / (K - 1);
    free(sum);
    free(sum2);
    return var;
}

/* The mean over draws of log p(y|s̃) − reference, the best constant offset. */
static double mean_gap(sat_decoder *dec, const sat_decoder_batch *batch, sat_hard_attention h)
{
    sat_rng rng;
    sat_rng_seed(&rng, 78);
    double gap = 0;
    long n = 0;
    for (int k = 0; k < 200; k++) {
        sat_decoder_loss l = sat_decoder_forward_backward_hard(dec, batch, &h, 0, 0, &rng, 0);
        gap += l.logp_sampled - l.logp_reference, n += l.nsampled;
    }
    return gap / n;
}

/* Captions of 1 to 12 words in one batch (as Flickr8k's 3 to 30): one
 * moving average, even at its best value, is far from every caption's own
 * log p; the expected-context reference follows each caption, and the
 * gradient's variance falls several-fold. */
static void test_expected_baseline_lowers_variance(void **state)
{
    (void)state;
    enum { B = 4, T = 12 };
    const sat_decoder_config cfg = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };
    sat_decoder *dec = new_decoder(cfg, 31);
    sat_rng rng;
    sat_rng_seed(&rng, 32);
    float feats[2 * 6 * 10];
    fill_random(feats, sizeof feats / sizeof feats[0], 0, 2, &rng);
    const int lens[B] = { 1, 12, 4, 8 };
    int tokens[B * (T + 1)], image[B] = { 0, 1, 1, 0 };
    for (int b = 0; b < B; b++)
        for (int t = 0; t <= T; t++)
            tokens[b * (T + 1) + t] = t <= lens[b] ? (int)sat_rng_below(&rng, (uint32_t)cfg.V) : -1;
    sat_decoder_batch batch = { .feats = feats, .n_images = 2, .image = image, .tokens = tokens, .B = B, .T = T };

    sat_hard_attention moving = { .samples = 1, .p_soft = 0, .lambda_r = 1, .lambda_e = 0,
                                  .baseline_kind = SAT_BASELINE_MOVING };
    sat_hard_attention expected = moving;
    expected.baseline_kind = SAT_BASELINE_EXPECTED;
    moving.baseline = mean_gap(dec, &batch, moving); /* the mean log p: the best single b */
    expected.baseline = mean_gap(dec, &batch, expected);
    double v_moving = gradient_variance(dec, &batch, moving, 400);
    double v_expected = gradient_variance(dec, &batch, expected, 400);
    if (verbose())
        printf("  gradient variance: moving b = %.2f: %.4g; expected context + %.2f: %.4g (%.1fx)\n",
               moving.baseline, v_moving, expected.baseline, v_expected, v_moving / v_expected);
    assert_true(fabs(expected.baseline) < 3 && moving.baseline < -10); /* the reference is close */
    assert_true(v_expected * 3 < v_moving);
    sat_decoder_free(dec);
}

/* ---- finite differences of the deterministic terms ---------------------------- */

typedef struct {
    sat_decoder *dec;
    sat_decoder_batch batch;
    float *feats;
    int tokens[TB * (TT + 1)];
    int image[TB];
    sat_hard_attention hard;
} model_case;

static void model_case_init(model_case *m, sat_decoder_config cfg, uint64_t seed)
{
    decoder_case_fill(cfg, seed, &m->dec, &m->feats, m->tokens, m->image, &m->batch);
    m->hard = SAT_HARD_ATTENTION_DEFAULTS;
}

static void model_case_free(model_case *m)
{
    sat_decoder_free(m->dec);
    free(m->feats);
}

static double hard_loss(model_case *m, int do_backward)
{
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    return sat_decoder_forward_backward_hard(m->dec, &m->batch, &m->hard, 0.7f, 0, &rng,
                                             do_backward).loss;
}

static double hard_step(sat_decoder *dec, const sat_decoder_batch *batch, void *ctx)
{
    sat_hard_attention h = *(const sat_hard_attention *)ctx; /* the same baseline each call */
    return sat_decoder_forward_backward_hard(dec, batch, &h, 0.7f, 0.5f, NULL, 1).loss;
}

/* A batch split by image trains as the whole batch: each image's kind, the
 * locations and dropout masks come from its captions' own generators. */
static void test_split_batch(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 9, .V = 11 };
    model_case m;
    model_case_init(&m, cfg, 23);
    sat_hard_attention h = m.hard;
    h.samples = 2, h.p_soft = 0.3f, h.baseline = -1.5;
    decoder_case_check_split(m.dec, &m.batch, hard_step, &h);
    h.baseline_kind = SAT_BASELINE_MOVING;
    decoder_case_check_split(m.dec, &m.batch, hard_step, &h);
    model_case_free(&m);
}

typedef struct {
    model_case *m;
    double (*loss)(model_case *, int);
} loss_case;

static double loss_only(void *p)
{
    loss_case *c = p;
    return c->loss(c->m, 0);
}

/* Every entry of every tensor against central differences at two steps
 * (gradient_check.h), of loss (hard_loss unless given). */
static void check_gradients_of(model_case *m, double (*loss)(model_case *, int))
{
    sat_decoder *dec = m->dec;
    double b = m->hard.baseline;
    sat_decoder_zero_grad(dec);
    loss(m, 1);
    m->hard.baseline = b;
    loss_case c = { m, loss };
    check_gradient("params", loss_only, &c, dec->params, dec->grads, dec->nparams, (size_t)-1, 0,
                   NULL);
}

static void check_all_gradients(model_case *m) { check_gradients_of(m, hard_loss); }

static double located_loss(model_case *m, int do_backward)
{
    return sat_decoder_forward_backward(m->dec, &m->batch, 0.7f, 0, NULL, do_backward).loss;
}

/* Given locations and weights (self-critical training of a hard policy): the
 * gradient is exactly that of −Σ_r w_r [log p(y_r|s_r,a) + log p(s_r|a)] / B
 * + λ·penalty / B, and the words' part of the loss is what stepping the
 * decoder at those locations gives. */
static void test_given_locations(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 9, .V = 11 };
    model_case m;
    model_case_init(&m, cfg, 12);
    m.dec->temperature = 0.8f;
    const float weight[TB] = { 0.8f, -1.3f, 0.5f };
    int loc[TB * TT];
    sat_rng rng;
    sat_rng_seed(&rng, 3);
    for (int i = 0; i < TB * TT; i++) loc[i] = (int)sat_rng_below(&rng, (uint32_t)cfg.L);
    m.batch.weight = weight;
    m.batch.locations = loc;
    check_gradients_of(&m, located_loss);

    /* the caption's xent, stepped at its locations one image at a time */
    sat_decoder_loss l = sat_decoder_forward_backward(m.dec, &m.batch, 0.7f, 0, NULL, 0);
    double xent = 0, weighted = 0, logp_s = 0;
    float logprobs[11], alpha[5];
    for (int r = 0; r < TB; r++) {
        const int *tok = m.tokens + r * (TT + 1);
        sat_decoder_state *st =
            sat_decoder_state_new(m.dec, m.feats + (size_t)m.image[r] * cfg.L * cfg.D, 1, 1);
        for (int t = 0; t < TT && tok[t + 1] >= 0; t++) {
            const sat_step_attend given = { .mode = SAT_ATTEND_GIVEN, .loc = loc + r * TT + t };
            sat_decoder_step(m.dec, st, tok + t, &given, logprobs, alpha, NULL);
            xent -= logprobs[tok[t + 1]];
            weighted -= weight[r] * logprobs[tok[t + 1]];
            logp_s += weight[r] * log(alpha[loc[r * TT + t]]);
        }
        sat_decoder_state_free(st);
    }
    assert_float_equal(l.xent, xent, 1e-4 * xent);
    assert_float_equal(l.loss * TB, weighted + 0.7 * l.penalty - logp_s, 1e-4 * fabs(l.loss * TB));
    int bad[TB * TT];
    memcpy(bad, loc, sizeof bad);
    bad[1] = cfg.L;
    m.batch.locations = bad;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_decoder_check_batch(m.dec, &m.batch, err, sizeof err), -1);
    assert_non_null(strstr(err, "location 5 at step 1"));
    model_case_free(&m);
}

/* With every image on the expected context (p_soft = 1) the surrogate has no
 * REINFORCE term: its gradient, entropy and temperature included, is the
 * exact gradient of the reported loss. */
static void test_entropy_and_temperature_gradients(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 9, .V = 11 };
    model_case m;
    model_case_init(&m, cfg, 6);
    m.hard.p_soft = 1;
    m.hard.lambda_e = 0.5f;
    m.dec->temperature = 0.7f;
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    sat_decoder_loss l = sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0.7f, 0,
                                                           &rng, 0);
    assert_true(l.entropy > 0 && l.entropy < (TT + 2 + TT) * log(cfg.L) + 1e-6);
    assert_int_equal(l.nsampled, 0);
    check_all_gradients(&m);
    model_case_free(&m);
}

/* Expected-context rows are soft attention: the same loss and gradients as
 * sat_decoder_forward_backward, bit for bit. */
static void test_expected_rows_are_soft(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };
    model_case m;
    model_case_init(&m, cfg, 7);
    m.hard.p_soft = 1;
    m.hard.lambda_e = 0;
    sat_decoder_zero_grad(m.dec);
    sat_decoder_loss soft = sat_decoder_forward_backward(m.dec, &m.batch, 0.7f, 0, NULL, 1);
    float *g = sat_xmalloc(m.dec->nparams * sizeof(float));
    memcpy(g, m.dec->grads, m.dec->nparams * sizeof(float));
    sat_decoder_zero_grad(m.dec);
    double loss = hard_loss(&m, 1);
    assert_true(loss == soft.loss);
    assert_memory_equal(g, m.dec->grads, m.dec->nparams * sizeof(float));
    /* S samples of an expected-context caption: S equal rows, the same mean */
    m.hard.samples = 3;
    sat_decoder_zero_grad(m.dec);
    assert_true(fabs(hard_loss(&m, 1) - soft.loss) < 1e-6 * fabs(soft.loss));
    for (size_t i = 0; i < m.dec->nparams; i++)
        assert_true(fabsf(m.dec->grads[i] - g[i]) <= 1e-5f * (1 + fabsf(g[i])));
    free(g);
    model_case_free(&m);
}

/* The baseline moves to 0.9 b + 0.1 mean log p(y|s̃) after a backward pass,
 * not after a forward-only one; draws are repeatable by seed. */
static void test_baseline_and_repeatability(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };
    model_case m;
    model_case_init(&m, cfg, 8);
    m.hard.p_soft = 0;
    m.hard.samples = 4;
    m.hard.baseline = -5;
    sat_rng rng;
    sat_rng_seed(&rng, 9);
    sat_decoder_loss l = sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 0);
    assert_true(m.hard.baseline == -5);
    assert_int_equal(l.nsampled, TB * 4);
    assert_true(fabs(-l.logp_sampled - l.xent) < 1e-6 * l.xent); /* every row sampled */
    sat_rng_seed(&rng, 9);
    sat_decoder_zero_grad(m.dec);
    l = sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 1);
    assert_true(fabs(m.hard.baseline - (0.9 * -5 + 0.1 * l.logp_sampled / l.nsampled)) < 1e-9);
    float *g = sat_xmalloc(m.dec->nparams * sizeof(float));
    memcpy(g, m.dec->grads, m.dec->nparams * sizeof(float));
    m.hard.baseline = -5;
    sat_rng_seed(&rng, 9);
    sat_decoder_zero_grad(m.dec);
    sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 1);
    assert_memory_equal(g, m.dec->grads, m.dec->nparams * sizeof(float));
    m.hard.baseline = -5;
    sat_rng_seed(&rng, 10); /* other draws, other gradient */
    sat_decoder_zero_grad(m.dec);
    sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 1);
    assert_memory_not_equal(g, m.dec->grads, m.dec->nparams * sizeof(float));
    /* the expected-context kind moves b by what the reference leaves */
    m.hard.baseline_kind = SAT_BASELINE_EXPECTED;
    m.hard.baseline = 0.5;
    sat_decoder_zero_grad(m.dec);
    l = sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 1);
    assert_true(l.logp_reference < 0 && l.logp_reference != l.logp_sampled);
    assert_true(fabs(m.hard.baseline -
                     (0.9 * 0.5 + 0.1 * (l.logp_sampled - l.logp_reference) / l.nsampled)) < 1e-9);
    m.hard.baseline_kind = SAT_BASELINE_MOVING;
    /* about half the images on the expected context at p_soft = 0.5 */
    m.hard.p_soft = 0.5f;
    long sampled = 0, rows = 0;
    for (int k = 0; k < 400; k++) {
        l = sat_decoder_forward_backward_hard(m.dec, &m.batch, &m.hard, 0, 0, &rng, 0);
        sampled += l.nsampled, rows += TB * 4;
    }
    assert_true(fabs((double)sampled / rows - 0.5) < 0.06);
    free(g);
    model_case_free(&m);
}

/* ---- inference ------------------------------------------------------------------ */

/* Sampled locations follow α, argmax takes its mode, given ones are used as
 * given, and SOFT is a step with no attend (NULL) exactly. */
static void test_step_modes(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };
    enum { K = 3000 };
    sat_decoder *dec = new_decoder(cfg, 11);
    sat_rng rng;
    sat_rng_seed(&rng, 12);
    float feats[6 * 10], alpha[6], logp_a[13], logp_b[13];
    fill_random(feats, 60, 0, 2, &rng);
    int *parent = sat_xcalloc(K, sizeof(int)), *prev = sat_xmalloc(K * sizeof(int));
    int *loc = sat_xmalloc(K * sizeof(int));
    float *logp = sat_xmalloc((size_t)K * 13 * sizeof(float));
    float *alphas = sat_xmalloc((size_t)K * 6 * sizeof(float));
    for (int j = 0; j < K; j++) prev[j] = 1;

    sat_decoder_state *st = sat_decoder_state_new(dec, feats, 1, K);
    sat_decoder_state_select(st, parent, K);
    const sat_step_attend sample = { .mode = SAT_ATTEND_SAMPLE, .rng = &rng, .loc = loc };
    sat_decoder_step(dec, st, prev, &sample, logp, alphas, NULL);
    memcpy(alpha, alphas, sizeof alpha);
    int count[6] = { 0 };
    for (int j = 0; j < K; j++) {
        assert_true(loc[j] >= 0 && loc[j] < 6);
        count[loc[j]]++;
    }
    for (int i = 0; i < 6; i++) {
        double want = K * alpha[i], sd = sqrt(K * alpha[i] * (1 - alpha[i]));
        if (verbose()) printf("  location %d: alpha %.3f, drawn %d of %d\n", i, alpha[i], count[i], K);
        assert_true(fabs(count[i] - want) <= 4.5 * sd + 1);
    }
    sat_decoder_state_free(st);

    int best = 0;
    for (int i = 1; i < 6; i++) best = alpha[i] > alpha[best] ? i : best;
    sat_decoder_state *a = sat_decoder_state_new(dec, feats, 1, 1);
    sat_decoder_state *b = sat_decoder_state_new(dec, feats, 1, 1);
    int la, lb = best;
    const sat_step_attend argmax = { .mode = SAT_ATTEND_ARGMAX, .loc = &la };
    const sat_step_attend given = { .mode = SAT_ATTEND_GIVEN, .loc = &lb };
    sat_decoder_step(dec, a, prev, &argmax, logp_a, NULL, NULL);
    sat_decoder_step(dec, b, prev, &given, logp_b, NULL, NULL);
    assert_int_equal(la, best);
    assert_memory_equal(logp_a, logp_b, sizeof logp_a);
    lb = (best + 1) % 6; /* another location, another next-word distribution */
    sat_decoder_state_free(b);
    b = sat_decoder_state_new(dec, feats, 1, 1);
    sat_decoder_step(dec, b, prev, &given, logp_b, NULL, NULL);
    assert_memory_not_equal(logp_a, logp_b, sizeof logp_a);
    sat_decoder_state_free(a);
    sat_decoder_state_free(b);

    a = sat_decoder_state_new(dec, feats, 1, 1);
    b = sat_decoder_state_new(dec, feats, 1, 1);
    for (int t = 0; t < 3; t++) {
        sat_decoder_step(dec, a, prev, NULL, logp_a, NULL, NULL);
        sat_decoder_step(dec, b, prev, &(sat_step_attend){ .mode = SAT_ATTEND_SOFT }, logp_b, NULL,
                         NULL);
        assert_memory_equal(logp_a, logp_b, sizeof logp_a);
    }
    sat_decoder_state_free(a);
    sat_decoder_state_free(b);
    free(parent);
    free(prev);
    free(loc);
    free(logp);
    free(alphas);
    sat_decoder_free(dec);
}

/* Teacher forcing (sat_caption_teacher) scores a caption as the training
 * pass does; hard-argmax decoding carries one-hot attention at its locations. */
static void test_teacher_and_hard_decoding(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 6, .D = 10, .E = 5, .H = 8, .A = 9, .V = 13 };
    sat_decoder *dec = new_decoder(cfg, 14);
    sat_rng rng;
    sat_rng_seed(&rng, 15);
    float feats[6 * 10];
    fill_random(feats, 60, 0, 2, &rng);
    const int words[3] = { 5, 7, 2 }, tokens[5] = { 1, 5, 7, 2, 0 }, image = 0;
    sat_decoder_batch batch = { .feats = feats, .n_images = 1, .image = &image, .tokens = tokens, .B = 1, .T = 4 };
    double xent = sat_decoder_forward_backward(dec, &batch, 0, 0, NULL, 0).xent;
    sat_caption c;
    sat_ensemble one = SAT_ENSEMBLE_OF(dec);
    sat_caption_teacher(&one, feats, 1, 1, &(sat_teacher_row){ 0, words, 3 }, 1,
                        &(sat_decode_options){ .attend = SAT_ATTEND_SOFT }, &c);
    double sum = 0;
    for (int t = 0; t <= 3; t++) sum += c.word_logprobs[t];
    assert_true(fabs(c.logprob + xent) < 1e-5 * xent);
    assert_true(fabs(sum - c.logprob) < 1e-9);
    assert_true(fabs(sat_caption_perplexity(&c) - exp(xent / 4)) < 1e-4 * exp(xent / 4));
    assert_null(c.locations);
    sat_caption_free(&c);

    sat_caption_decode(&one, feats, 1, 1,
                       &(sat_decode_options){ .max_len = 5, .attend = SAT_ATTEND_ARGMAX, .allow_unk = 1 },
                       &c);
    assert_non_null(c.locations);
    for (int t = 0; t <= c.n; t++) {
        assert_true(c.locations[t] >= 0 && c.locations[t] < 6);
        for (int i = 0; i < 6; i++) assert_true(c.alpha[t * 6 + i] == (i == c.locations[t]));
    }
    sat_caption_free(&c);
    sat_attend_mode m;
    assert_int_equal(sat_attend_parse("hard-argmax", &m), 0);
    assert_int_equal(m, SAT_ATTEND_ARGMAX);
    assert_string_equal(sat_attend_name(SAT_ATTEND_SAMPLE), "hard-sample");
    assert_int_equal(sat_attend_parse("hard", &m), -1);
    sat_decoder_free(dec);
}

/* τ travels with the model; a model without the entry has τ = 1; an absurd τ is refused. */
static void test_temperature_in_model(void **state)
{
    (void)state;
    const sat_decoder_config cfg = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 3, .V = 11 };
    sat_decoder *dec = new_decoder(cfg, 13);
    char err[SAT_ERR_MAX];
    sat_model *m = sat_decoder_to_model(dec);
    assert_int_equal(m->nconfig, 6);
    sat_model_free(m);
    dec->temperature = 0.5f;
    m = sat_decoder_to_model(dec);
    sat_decoder *back = sat_decoder_from_model(m, err, sizeof err);
    assert_non_null(back);
    assert_true(back->temperature == 0.5f);
    sat_decoder_free(back);
    m->config[6].value = 1e9;
    assert_null(sat_decoder_from_model(m, err, sizeof err));
    assert_non_null(strstr(err, "att.temperature"));
    sat_model_free(m);
    sat_decoder_free(dec);
}

/* ---- (b) a toy task: the word is told by one of L locations, flagged ----------
 * Each location holds [flag, one-hot word of NW]; one location is flagged
 * and the caption is its word.  The other locations hold random words, so
 * the mean annotation (the LSTM's start) does not say which is meant. */

enum { TL = 6, NW = 5, TD = 1 + NW, TV = 3 + NW, NB = 32 };

static void toy_example(sat_rng *rng, float *feats, int *word, int *where)
{
    memset(feats, 0, TL * TD * sizeof(float));
    *where = (int)sat_rng_below(rng, TL);
    for (int i = 0; i < TL; i++) {
        int w = (int)sat_rng_below(rng, NW);
        feats[i * TD] = i == *where;
        feats[i * TD + 1 + w] = 1;
        if (i == *where) *word = w;
    }
}

/* Trains with hard attention; returns the accuracy of the argmax location's
 * word and of the location itself on fresh examples. */
static void train_toy(sat_hard_attention h, int steps, double *word_acc, double *loc_acc)
{
    const sat_decoder_config cfg = { .L = TL, .D = TD, .E = 8, .H = 16, .A = 8, .V = TV };
    char err[SAT_ERR_MAX];
    sat_decoder *dec = sat_decoder_new(cfg, err, sizeof err);
    sat_rng rng;
    sat_rng_seed(&rng, 21);
    sat_decoder_init_params(dec, &rng);
    float feats[NB * TL * TD];
    int tokens[NB * 3], image[NB], where[NB], word;
    sat_adam adam;
    sat_adam_init(&adam, dec->nparams, 0.01f);
    for (int step = 0; step < steps; step++) {
        for (int b = 0; b < NB; b++) {
            toy_example(&rng, feats + b * TL * TD, &word, &where[b]);
            tokens[b * 3] = 1, tokens[b * 3 + 1] = 3 + word, tokens[b * 3 + 2] = 0;
            image[b] = b;
        }
        sat_decoder_batch batch = { .feats = feats, .n_images = NB, .image = image, .tokens = tokens, .B = NB, .T = 2 };
        sat_decoder_zero_grad(dec);
        sat_decoder_forward_backward_hard(dec, &batch, &h, 0, 0, &rng, 1);
        sat_clip_grad_norm(dec->grads, dec->nparams, 5.0);
        sat_adam_update(&adam, dec->params, dec->grads);
    }
    int right = 0, found = 0, n = 500;
    for (int k = 0; k < n; k++) {
        int w;
        toy_example(&rng, feats, &w, &where[0]);
        sat_decoder_state *st = sat_decoder_state_new(dec, feats, 1, 1);
        float logp[TV];
        int loc, start = 1, best = 3;
        const sat_step_attend argmax = { .mode = SAT_ATTEND_ARGMAX, .loc = &loc };
        sat_decoder_step(dec, st, &start, &argmax, logp, NULL, NULL);
        for (int v = 3; v < TV; v++) best = logp[v] > logp[best] ? v : best;
        right += best == 3 + w;
        found += loc == where[0];
        sat_decoder_state_free(st);
    }
    *word_acc = (double)right / n;
    *loc_acc = (double)found / n;
    sat_adam_free(&adam);
    sat_decoder_free(dec);
}

static void test_learns_to_find_the_location(void **state)
{
    (void)state;
    double word, loc, word0, loc0;
    sat_hard_attention h = SAT_HARD_ATTENTION_DEFAULTS;
    train_toy(h, 300, &word, &loc);
    /* control: always sampled, no REINFORCE: nothing teaches α where to look */
    h.p_soft = 0, h.lambda_r = 0, h.lambda_e = 0;
    train_toy(h, 300, &word0, &loc0);
    if (verbose())
        printf("  toy task (chance %.2f words, %.2f locations): hard attention %.3f / %.3f, "
               "without REINFORCE %.3f / %.3f\n", 1.0 / NW, 1.0 / TL, word, loc, word0, loc0);
    assert_true(word > 0.9 && loc > 0.9);
    assert_true(loc0 < 0.6 && word0 < 0.75);
}

int main(void)
{
    const struct CMUnitTest gradients[] = {
        cmocka_unit_test(test_entropy_and_temperature_gradients),
        cmocka_unit_test(test_given_locations),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimator_matches_exact_gradient),
        cmocka_unit_test(test_expected_baseline_lowers_variance),
        cmocka_unit_test(test_split_batch),
        cmocka_unit_test(test_expected_rows_are_soft),
        cmocka_unit_test(test_baseline_and_repeatability),
        cmocka_unit_test(test_step_modes),
        cmocka_unit_test(test_teacher_and_hard_decoding),
        cmocka_unit_test(test_temperature_in_model),
        cmocka_unit_test(test_learns_to_find_the_location),
    };
    return run_tests_simd_on_and_off(gradients) + cmocka_run_group_tests(tests, NULL, NULL);
}
