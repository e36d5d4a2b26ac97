/* test_scst.c — self-critical training on a tiny decoder: the drawn rows,
 * the rewards (CIDEr-D against the corpus image's references, the same
 * numbers sat_cider gives), the baseline (the greedy caption's reward) and
 * the sign of the gradient step. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sat/captioner.h"
#include "decoder_case.h"
#include "sat/scst.h"
#include "sat/util.h"

enum { S = 6, MAXLEN = 5, WIDTH = SAT_SCST_ROW(MAXLEN) };

static const sat_decoder_config tiny = { .L = 5, .D = 7, .E = 4, .H = 6, .A = 3, .V = 11 };

typedef struct {
    sat_decoder *dec;
    sat_vocab *vocab;
    sat_metrics *corpus;
    sat_cider *cider;
    float *feats; /* one image */
} scst_case;

static void scst_case_init(scst_case *c)
{
    char *words[11] = {"<end>", "<start>", "<unk>", "dog", "runs", "a", "cat", "sits",
                       "the", "on", "grass"};
    char err[SAT_ERR_MAX];
    c->vocab = sat_vocab_from_words(words, 11, err, sizeof err);
    assert_non_null(c->vocab);
    c->dec = new_decoder(tiny, 21);
    sat_rng rng;
    sat_rng_seed(&rng, 22);
    c->feats = sat_xmalloc((size_t)tiny.L * tiny.D * sizeof *c->feats);
    fill_random(c->feats, (size_t)tiny.L * tiny.D, 0, 2, &rng);
    const char *r0[] = {"a dog runs on the grass", "the dog runs"};
    const char *r1[] = {"a cat sits", "the cat sits on grass"};
    c->corpus = sat_metrics_new();
    sat_metrics_add(c->corpus, "", r0, 2);
    sat_metrics_add(c->corpus, "", r1, 2);
    c->cider = sat_cider_new(c->corpus);
}

static void scst_case_free(scst_case *c)
{
    sat_cider_free(c->cider);
    sat_metrics_free(c->corpus);
    sat_vocab_free(c->vocab);
    sat_decoder_free(c->dec);
    free(c->feats);
}

/* The words of a batch row (<start> w… <end> −1…) and their number. */
static sat_scst scst_of(const scst_case *c, sat_scst_baseline baseline)
{
    return (sat_scst){.dec = c->dec, .vocab = c->vocab, .cider = c->cider, .samples = S,
                      .max_len = MAXLEN, .baseline = baseline};
}

static int row_words(const int *row, int *words)
{
    assert_int_equal(row[0], SAT_VOCAB_START);
    int n = 0;
    while (row[n + 1] != SAT_VOCAB_END) {
        assert_true(row[n + 1] > SAT_VOCAB_START && row[n + 1] < tiny.V);
        words[n] = row[n + 1];
        n++;
    }
    assert_true(n <= MAXLEN);
    for (int t = n + 2; t < WIDTH; t++) assert_int_equal(row[t], -1);
    return n;
}

static double reward_of(scst_case *c, size_t image, const int *words, int n)
{
    char *text = sat_vocab_text(c->vocab, words, n);
    double r = sat_cider_score(c->cider, image, text);
    free(text);
    return r;
}

/* Rows are well formed; each weight is the sample's own CIDEr-D minus that
 * of the greedy caption (sat_caption_decode's, scored the same way). */
static void test_rewards_and_baseline(void **state)
{
    (void)state;
    scst_case c;
    scst_case_init(&c);
    sat_scst s = scst_of(&c, SAT_SCST_GREEDY);
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    int tokens[S * WIDTH];
    float weight[S];
    sat_scst_rewards r = sat_scst_image(&s, c.feats, 0, &rng, tokens, NULL, weight);

    sat_caption greedy;
    sat_caption_decode(&SAT_ENSEMBLE_OF(c.dec), c.feats, 1, 1, &(sat_decode_options){ .max_len = MAXLEN },
                       &greedy);
    assert_true(fabs(r.greedy - reward_of(&c, 0, greedy.tokens, greedy.n)) < 1e-12);
    sat_caption_free(&greedy);

    double mean = 0;
    int differ = 0;
    for (int j = 0; j < S; j++) {
        int words[MAXLEN];
        int n = row_words(tokens + j * WIDTH, words);
        double rj = reward_of(&c, 0, words, n);
        assert_true(fabs(weight[j] - (rj - r.greedy)) < 1e-6);
        mean += rj / S;
        differ += weight[j] != weight[0];
    }
    assert_true(fabs(r.mean - mean) < 1e-9);
    assert_true(differ > 0); /* the samples are not all alike */
    scst_case_free(&c);
}

/* The mean baseline: each sample's weight is its reward minus the mean of
 * the image's other samples' rewards, so the weights sum to 0; the same
 * draws as with the greedy baseline (same seed). */
static void test_mean_baseline(void **state)
{
    (void)state;
    scst_case c;
    scst_case_init(&c);
    sat_scst s = scst_of(&c, SAT_SCST_MEAN);
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    int tokens[S * WIDTH];
    float weight[S];
    sat_scst_image(&s, c.feats, 0, &rng, tokens, NULL, weight);
    double reward[S], total = 0, sum = 0;
    for (int j = 0; j < S; j++) {
        int words[MAXLEN];
        int n = row_words(tokens + j * WIDTH, words);
        total += reward[j] = reward_of(&c, 0, words, n);
    }
    for (int j = 0; j < S; j++) {
        assert_true(fabs(weight[j] - (reward[j] - (total - reward[j]) / (S - 1))) < 1e-6);
        sum += weight[j];
    }
    assert_true(fabs(sum) < 1e-5);
    scst_case_free(&c);
}

/* Mean log p of the rows under the decoder, each weighted by w. */
static double weighted_logp(const sat_decoder *dec, const float *feats, const int *tokens,
                            const float *w, int n)
{
    double sum = 0;
    sat_ensemble one = SAT_ENSEMBLE_OF(dec);
    for (int j = 0; j < n; j++) {
        int words[MAXLEN];
        int len = row_words(tokens + j * WIDTH, words);
        sat_caption cap;
        sat_caption_teacher(&one, feats, 1, 1, &(sat_teacher_row){ 0, words, len }, 1,
                            &(sat_decode_options){ .attend = SAT_ATTEND_SOFT }, &cap);
        sum += w[j] * cap.logprob;
        sat_caption_free(&cap);
    }
    return sum;
}

/* One small gradient step on the weighted rows raises Σ_s weight_s log p(w^s):
 * a sample weighted up becomes more probable, one weighted down less. */
static void test_gradient_sign(void **state)
{
    (void)state;
    scst_case c;
    scst_case_init(&c);
    sat_scst s = scst_of(&c, SAT_SCST_GREEDY);
    sat_rng rng;
    sat_rng_seed(&rng, 6);
    int tokens[S * WIDTH], image[S] = {0};
    float weight[S];
    sat_scst_image(&s, c.feats, 0, &rng, tokens, NULL, weight);
    for (int j = 0; j < S; j++) {
        float one[1] = {j % 2 ? 1.0f : -1.0f}; /* each row alone, up or down */
        sat_decoder_batch b = {.feats = c.feats, .n_images = 1, .image = image,
                               .tokens = tokens + j * WIDTH, .B = 1, .T = WIDTH - 1,
                               .weight = one};
        double before = weighted_logp(c.dec, c.feats, tokens + j * WIDTH, one, 1);
        float *saved = sat_xmalloc(c.dec->nparams * sizeof(float));
        memcpy(saved, c.dec->params, c.dec->nparams * sizeof(float));
        sat_decoder_zero_grad(c.dec);
        sat_decoder_forward_backward(c.dec, &b, 0, 0, NULL, 1);
        for (size_t i = 0; i < c.dec->nparams; i++) c.dec->params[i] -= 1e-3f * c.dec->grads[i];
        double after = weighted_logp(c.dec, c.feats, tokens + j * WIDTH, one, 1);
        assert_true(after > before);
        memcpy(c.dec->params, saved, c.dec->nparams * sizeof(float));
        free(saved);
    }
    /* all rows with their rewards' weights at once */
    for (int j = 0; j < S; j++) image[j] = 0;
    sat_decoder_batch all = {.feats = c.feats, .n_images = 1, .image = image, .tokens = tokens,
                             .B = S, .T = WIDTH - 1, .weight = weight};
    double before = weighted_logp(c.dec, c.feats, tokens, weight, S);
    sat_decoder_zero_grad(c.dec);
    sat_decoder_forward_backward(c.dec, &all, 0, 0, NULL, 1);
    for (size_t i = 0; i < c.dec->nparams; i++) c.dec->params[i] -= 1e-3f * c.dec->grads[i];
    assert_true(weighted_logp(c.dec, c.feats, tokens, weight, S) > before);
    scst_case_free(&c);
}

/* Hard attention: the samples draw a location per step (in range, and not
 * all the same), the greedy caption and its reward are the expected
 * context's as before, the draws repeat by seed, and one small step on the
 * rows with their locations lowers the located loss
 * −Σ_s w_s [log p(w^s|s̃^s) + log p(s̃^s)]: the words and the locations of a
 * sample weighted up both become more probable. */
static void test_hard_samples(void **state)
{
    (void)state;
    scst_case c;
    scst_case_init(&c);
    sat_scst s = scst_of(&c, SAT_SCST_MEAN);
    sat_rng rng;
    int tokens[S * WIDTH], again[S * WIDTH], loc[S * (WIDTH - 1)], loc_again[S * (WIDTH - 1)];
    int image[S] = {0};
    float weight[S], weight_again[S];
    sat_rng_seed(&rng, 7);
    sat_scst_rewards soft = sat_scst_image(&s, c.feats, 0, &rng, tokens, NULL, weight);
    sat_rng_seed(&rng, 7);
    sat_scst_rewards r = sat_scst_image(&s, c.feats, 0, &rng, tokens, loc, weight);
    assert_true(r.greedy == soft.greedy);
    sat_rng_seed(&rng, 7);
    sat_scst_image(&s, c.feats, 0, &rng, again, loc_again, weight_again);
    assert_memory_equal(tokens, again, sizeof tokens);
    assert_memory_equal(weight, weight_again, sizeof weight);
    int distinct = 0;
    for (int j = 0; j < S; j++) {
        int words[MAXLEN];
        int n = row_words(tokens + j * WIDTH, words);
        for (int t = 0; t <= n; t++) {
            int l = loc[j * (WIDTH - 1) + t];
            assert_true(l >= 0 && l < tiny.L);
            assert_int_equal(l, loc_again[j * (WIDTH - 1) + t]);
            distinct += l != loc[0];
        }
    }
    assert_true(distinct > 0);
    sat_decoder_batch b = {.feats = c.feats, .n_images = 1, .image = image, .tokens = tokens,
                           .B = S, .T = WIDTH - 1, .weight = weight, .locations = loc};
    sat_decoder_zero_grad(c.dec);
    double before = sat_decoder_forward_backward(c.dec, &b, 0, 0, NULL, 1).loss;
    for (size_t i = 0; i < c.dec->nparams; i++) c.dec->params[i] -= 1e-3f * c.dec->grads[i];
    assert_true(sat_decoder_forward_backward(c.dec, &b, 0, 0, NULL, 0).loss < before);
    scst_case_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewards_and_baseline),
        cmocka_unit_test(test_mean_baseline),
        cmocka_unit_test(test_gradient_sign),
        cmocka_unit_test(test_hard_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
