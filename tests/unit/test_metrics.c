/* test_metrics.c — BLEU, ROUGE-L and CIDEr-D against coco-caption's
 * definitions: published statistics vectors and hand-worked small cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sat/metrics.h"

#define TOL 1e-12

static void assert_close(double got, double want, double tol)
{
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g (tolerance %g)", got, want, tol);
}

/* Score one corpus; per-image scores of image `which` into *img (if not NULL). */
static void score(const char *const *hyps, const char *const *const *refs, const int *nrefs, int n,
                  sat_metric_scores *s, int which, sat_image_scores *img)
{
    sat_metrics *m = sat_metrics_new();
    for (int i = 0; i < n; i++) sat_metrics_add(m, hyps[i], refs[i], nrefs[i]);
    sat_metrics_score(m, s);
    if (img) sat_metrics_image(m, (size_t)which, img);
    sat_metrics_free(m);
}

static void score1(const char *hyp, const char *const *refs, int nrefs, sat_metric_scores *s)
{
    const char *const *r[1] = {refs};
    score(&hyp, r, &nrefs, 1, s, 0, NULL);
}

static void test_bleu_vector_1(void **state)
{
    (void)state;
    sat_bleu_stats s = {46642, 46456, {46456, 41456, 36456, 31456}, {29418, 13584, 5770, 2454}};
    double b[SAT_BLEU_N];
    sat_bleu_scores(&s, 1, b);
    assert_close(b[0], 0.630714052536524, TOL);
    assert_close(b[1], 0.4536981210368327, TOL);
    assert_close(b[2], 0.31895835186019617, TOL);
    assert_close(b[3], 0.22408281090267523, TOL);
    /* testlen < reflen: without the brevity penalty every score is higher */
    double nobp[SAT_BLEU_N];
    sat_bleu_scores(&s, 0, nobp);
    for (int n = 0; n < SAT_BLEU_N; n++) assert_close(nobp[n] * exp(1.0 - 46642.0 / 46456.0), b[n], TOL);
}

static void test_bleu_vector_2(void **state)
{
    (void)state;
    sat_bleu_stats s = {9855, 9893, {9893, 8893, 7893, 6893}, {5732, 2510, 1043, 423}};
    double b[SAT_BLEU_N], nobp[SAT_BLEU_N];
    sat_bleu_scores(&s, 1, b);
    assert_close(b[0], 0.579, 5e-4);
    assert_close(b[1], 0.404, 5e-4);
    assert_close(b[2], 0.279, 5e-4);
    assert_close(b[3], 0.191, 5e-4);
    /* testlen > reflen: no penalty applies */
    sat_bleu_scores(&s, 0, nobp);
    for (int n = 0; n < SAT_BLEU_N; n++) assert_close(nobp[n], b[n], 0);
}

/* hyp "the cat sat on the mat" against "the cat is on the mat" and
 * "there is a cat on the mat", counted by hand:
 *   unigrams: the (2, max in a ref 2), cat, on, mat match, sat not -> 5/6
 *   bigrams: the cat, on the, the mat -> 3/5;  trigrams: on the mat -> 1/4
 *   4-grams: none of 3;  testlen 6, ref lengths 6, 7 -> reflen 6 */
static void test_bleu_sentence_by_hand(void **state)
{
    (void)state;
    const char *refs[] = {"the cat is on the mat", "there is a cat on the mat"};
    sat_metric_scores s;
    score1("the cat sat on the mat", refs, 2, &s);
    const sat_bleu_stats *st = &s.bleu_stats;
    assert_int_equal(st->testlen, 6);
    assert_int_equal(st->reflen, 6);
    long guess[] = {6, 5, 4, 3}, correct[] = {5, 3, 1, 0};
    for (int k = 0; k < SAT_BLEU_N; k++) {
        assert_int_equal(st->guess[k], guess[k]);
        assert_int_equal(st->correct[k], correct[k]);
    }
    assert_close(s.bleu[0], 5.0 / 6.0, 1e-9);
    assert_close(s.bleu[1], sqrt(0.5), 1e-9);
    assert_close(s.bleu[2], 0.5, 1e-9);
    /* no 4-gram matches: coco's 1e-15 keeps it tiny but not 0 */
    assert_close(s.bleu[3], pow(0.125 * 1e-15 / 3, 0.25), 1e-12);
    assert_true(s.bleu[3] > 0 && s.bleu[3] < 1e-3);
}

static void test_bleu_clipping_and_closest_length(void **state)
{
    (void)state;
    /* "the" 3 times, at most 2 in one reference: clipped to 2 */
    const char *refs[] = {"the dog and the cat", "the the"};
    sat_metric_scores s;
    score1("the the the", refs, 2, &s);
    assert_int_equal(s.bleu_stats.correct[0], 2);
    /* testlen 3, reference lengths 5 and 2: closest is 2 */
    assert_int_equal(s.bleu_stats.reflen, 2);

    /* lengths 2 and 4 are both 1 away from 3: the shorter wins */
    const char *tie[] = {"a b c d", "a b"};
    score1("a b c", tie, 2, &s);
    assert_int_equal(s.bleu_stats.reflen, 2);
}

static void test_bleu_brevity_penalty(void **state)
{
    (void)state;
    const char *refs[] = {"a b c d"};
    sat_metric_scores s;
    score1("a b", refs, 1, &s);
    assert_close(s.bleu[0], exp(1.0 - 4.0 / 2.0), 1e-9);
    assert_close(s.bleu[1], exp(1.0 - 4.0 / 2.0), 1e-9);
    assert_close(s.bleu_nobp[0], 1.0, 1e-9);
    assert_close(s.bleu_nobp[1], 1.0, 1e-9);
}

static void test_identical_is_perfect(void **state)
{
    (void)state;
    const char *refs[] = {"a brown dog runs across the green grass", "a dog runs"};
    sat_metric_scores s;
    score1("a brown dog runs across the green grass", refs, 2, &s);
    for (int n = 0; n < SAT_BLEU_N; n++) {
        assert_close(s.bleu[n], 1.0, 1e-9);
        assert_close(s.bleu_nobp[n], 1.0, 1e-9);
    }
    assert_close(s.rouge_l, 1.0, 1e-12);
}

static void test_tokenized_like_coco(void **state)
{
    (void)state;
    /* PTB tokenization, lowercasing and punctuation removal make these equal */
    const char *refs[] = {"a dog 's red ball"};
    sat_metric_scores s;
    score1("A dog's red ball.", refs, 1, &s);
    assert_int_equal(s.bleu_stats.testlen, 5);
    assert_close(s.bleu[3], 1.0, 1e-9);
}

/* (1 + b^2) P R / (R + b^2 P), b = 1.2 */
static double rouge_f(double p, double r) { return (1 + 1.44) * p * r / (r + 1.44 * p); }

static void test_rouge_l_by_hand(void **state)
{
    (void)state;
    sat_metric_scores s;
    /* LCS("a b c d", "a c d e f") = 3 ("a c d"): P = 3/4, R = 3/5 */
    const char *one[] = {"a c d e f"};
    score1("a b c d", one, 1, &s);
    assert_close(s.rouge_l, rouge_f(0.75, 0.6), TOL);
    assert_close(s.rouge_l, 1.098 / 1.68, TOL);

    /* P and R maximized separately: "a b" gives R = 1 (P = 1/2), "a c d e f g h" P = 3/4 */
    const char *two[] = {"a b", "a c d e f g h"};
    score1("a b c d", two, 2, &s);
    assert_close(s.rouge_l, rouge_f(0.75, 1.0), TOL);

    /* no common word */
    const char *none[] = {"x y z"};
    score1("a b c d", none, 1, &s);
    assert_close(s.rouge_l, 0.0, 0);

    /* order matters: LCS("c b a", "a b c") = 1 */
    const char *rev[] = {"a b c"};
    score1("c b a", rev, 1, &s);
    assert_close(s.rouge_l, rouge_f(1.0 / 3, 1.0 / 3), TOL);
}

static void test_rouge_l_mean_over_images(void **state)
{
    (void)state;
    const char *hyps[] = {"a b c d", "x"};
    const char *r0[] = {"a c d e f"}, *r1[] = {"x"};
    const char *const *refs[] = {r0, r1};
    int nrefs[] = {1, 1};
    sat_metric_scores s;
    sat_image_scores img;
    score(hyps, refs, nrefs, 2, &s, 0, &img);
    assert_close(img.rouge_l, rouge_f(0.75, 0.6), TOL);
    assert_close(s.rouge_l, (rouge_f(0.75, 0.6) + 1.0) / 2, TOL);
}

static void test_cider_single_image_is_zero(void **state)
{
    (void)state;
    const char *refs[] = {"a dog runs on the grass", "a dog runs"};
    sat_metric_scores s;
    score1("a dog runs on the grass", refs, 2, &s);
    assert_close(s.cider_d, 0.0, 0);
}

/* Two images, every reference n-gram in one image only: df = 1, weight
 * tf * log 2 everywhere.
 *   image 0: "a b" vs "a b": sim = 1 for n = 1, 2; 0 for 3, 4 (empty) -> 10 * 2/4 = 5
 *   image 1: "c" vs "c d": n = 1: L^2 / (L * L sqrt 2); bigram counts 0 and 1,
 *            penalty exp(-1/72) -> 10 * (1/sqrt 2) e^(-1/72) / 4 */
static void test_cider_two_images_by_hand(void **state)
{
    (void)state;
    const char *hyps[] = {"a b", "c"};
    const char *r0[] = {"a b"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    int nrefs[] = {1, 1};
    sat_metric_scores s;
    sat_image_scores img;
    double img1 = 2.5 * exp(-1.0 / 72) / sqrt(2.0);
    score(hyps, refs, nrefs, 2, &s, 1, &img);
    assert_close(img.cider_d, img1, TOL);
    assert_close(s.cider_d, (5.0 + img1) / 2, TOL);
}

/* Three images; "a" is in the references of two of them, so its weight is
 * tf * (log 3 - log 2) = tf * u; every other n-gram weighs tf * log 3 = tf * L.
 *   image 0: hyp "a a b" vs ref "a b":
 *     n = 1: hyp a:2u b:L, ref a:u b:L; clipped dot min(2u,u) u + L^2 = u^2 + L^2
 *            sim = (u^2 + L^2) / (sqrt(4u^2 + L^2) sqrt(u^2 + L^2))
 *     n = 2: hyp {aa: L, ab: L}, ref {ab: L}: L^2 / (L sqrt 2 * L) = 1/sqrt 2
 *     bigram counts 2 and 1: penalty exp(-1/72)
 *   image 1: identical "a c": 10 * 2/4 = 5;  image 2: "x" vs "y": 0 */
static void test_cider_three_images_idf_and_clipping(void **state)
{
    (void)state;
    const char *hyps[] = {"a a b", "a c", "x"};
    const char *r0[] = {"a b"}, *r1[] = {"a c"}, *r2[] = {"y"};
    const char *const *refs[] = {r0, r1, r2};
    int nrefs[] = {1, 1, 1};
    double u = log(3.0) - log(2.0), L = log(3.0);
    double sim1 = (u * u + L * L) / (sqrt(4 * u * u + L * L) * sqrt(u * u + L * L));
    double img0 = 10.0 * (sim1 + 1 / sqrt(2.0)) * exp(-1.0 / 72) / 4;
    sat_metric_scores s;
    sat_image_scores img;
    score(hyps, refs, nrefs, 3, &s, 0, &img);
    assert_close(img.cider_d, img0, TOL);
    assert_close(s.cider_d, (img0 + 5.0 + 0.0) / 3, TOL);
    score(hyps, refs, nrefs, 3, &s, 2, &img);
    assert_close(img.cider_d, 0.0, 0);
}

static void test_cider_averages_references(void **state)
{
    (void)state;
    /* image 0 gets a second reference with nothing in common: its CIDEr-D halves
     * (the df of the new words is 1, so the other weights stay the same) */
    const char *hyps[] = {"a b", "c"};
    const char *r0[] = {"a b", "p q"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    int nrefs[] = {2, 1};
    sat_metric_scores s;
    sat_image_scores img;
    score(hyps, refs, nrefs, 2, &s, 0, &img);
    assert_close(img.cider_d, 2.5, TOL);
}

/* sat_cider (self-critical rewards) with the corpus of the test above: the
 * same CIDEr-D for the same captions, whatever the corpus's own
 * hypotheses; a caption with words the corpus never saw ("z") weighs them
 * with df 0. */
static void test_cider_scorer_matches_metrics(void **state)
{
    (void)state;
    const char *r0[] = {"a b"}, *r1[] = {"a c"}, *r2[] = {"y"};
    const char *const *refs[] = {r0, r1, r2};
    sat_metrics *corpus = sat_metrics_new();
    for (int i = 0; i < 3; i++) sat_metrics_add(corpus, "", refs[i], 1);
    sat_cider *c = sat_cider_new(corpus);
    double u = log(3.0) - log(2.0), L = log(3.0);
    double sim1 = (u * u + L * L) / (sqrt(4 * u * u + L * L) * sqrt(u * u + L * L));
    assert_close(sat_cider_score(c, 0, "a a b"), 10.0 * (sim1 + 1 / sqrt(2.0)) * exp(-1.0 / 72) / 4, TOL);
    assert_close(sat_cider_score(c, 1, "a c"), 5.0, TOL);
    assert_close(sat_cider_score(c, 2, "x"), 0.0, 0);
    /* "a z" vs "a c": unigrams a (u) and z (L, unseen); bigram az unseen */
    double uni = u * u / (sqrt(u * u + L * L) * sqrt(u * u + L * L));
    assert_close(sat_cider_score(c, 1, "a z"), 10.0 * uni / 4, TOL);
    assert_close(sat_cider_score(c, 1, "a c"), 5.0, TOL); /* scoring leaves the corpus as it was */
    sat_cider_free(c);
    sat_metrics_free(corpus);
}

/* A caption's CIDEr-D against the references "a dog runs" and "a cat sits",
 * with the end of the caption as a word (sat_metrics_end_word) or not. */
static double cider_of(const char *hyp, int end_word)
{
    const char *r0[] = {"a dog runs"}, *r1[] = {"a cat sits"};
    sat_metrics *corpus = sat_metrics_new();
    if (end_word) sat_metrics_end_word(corpus);
    sat_metrics_add(corpus, "", r0, 1);
    sat_metrics_add(corpus, "", r1, 1);
    sat_cider *c = sat_cider_new(corpus);
    double score = sat_cider_score(c, 0, hyp);
    sat_cider_free(c);
    sat_metrics_free(corpus);
    return score;
}

/* The end as a word: the reference itself scores 10 (without it, 7.5: three
 * words have no 4-gram, with it they have one), a caption cut
 * short ("a dog") loses the n-grams of the reference's ending that it lacks
 * ("runs <end>") and gains none of its own ("dog <end>" matches nothing), so
 * it scores lower than without; and no word of a text is the end word. */
static void test_cider_end_word(void **state)
{
    (void)state;
    assert_close(cider_of("a dog runs", 1), 10.0, TOL);
    assert_close(cider_of("a dog runs", 0), 7.5, TOL);
    double cut = cider_of("a dog", 1), cut_plain = cider_of("a dog", 0);
    assert_true(cut > 0 && cut < cut_plain - 0.1);
    assert_true(cider_of("a dog runs <end>", 1) < 10.0 - 0.1);
}

static void test_empty_hypothesis(void **state)
{
    (void)state;
    const char *hyps[] = {"", "c"};
    const char *r0[] = {"a b"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    int nrefs[] = {1, 1};
    sat_metric_scores s;
    sat_image_scores img;
    score(hyps, refs, nrefs, 2, &s, 0, &img);
    assert_int_equal(img.bleu.testlen, 0);
    assert_int_equal(img.bleu.reflen, 2);
    assert_close(img.rouge_l, 0.0, 0);
    assert_close(img.cider_d, 0.0, 0);
    assert_true(isfinite(s.cider_d) && isfinite(s.bleu[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bleu_vector_1),
        cmocka_unit_test(test_cider_end_word),
        cmocka_unit_test(test_bleu_vector_2),
        cmocka_unit_test(test_bleu_sentence_by_hand),
        cmocka_unit_test(test_bleu_clipping_and_closest_length),
        cmocka_unit_test(test_bleu_brevity_penalty),
        cmocka_unit_test(test_identical_is_perfect),
        cmocka_unit_test(test_tokenized_like_coco),
        cmocka_unit_test(test_rouge_l_by_hand),
        cmocka_unit_test(test_rouge_l_mean_over_images),
        cmocka_unit_test(test_cider_single_image_is_zero),
        cmocka_unit_test(test_cider_two_images_by_hand),
        cmocka_unit_test(test_cider_three_images_idf_and_clipping),
        cmocka_unit_test(test_cider_averages_references),
        cmocka_unit_test(test_cider_scorer_matches_metrics),
        cmocka_unit_test(test_empty_hypothesis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
