/* test_meteor.c — METEOR (no paraphrase) on small cases worked by hand.
 *
 * Parameters (meteor.h): alpha 0.85, beta 0.2, gamma 0.6, delta 0.75;
 * weights exact 1, stem 0.6, synonym 0.8.  Content words weigh delta = 0.75,
 * function words (ours: a, the, on, is, ...) 1 - delta = 0.25, so
 *   P = sum over matched hyp words of w * (0.75 or 0.25) / sum over hyp words of (0.75 or 0.25)
 *   Fmean = P R / (0.85 P + 0.15 R) = 1 / (0.15 / P + 0.85 / R)
 *   penalty = 0.6 * (chunks / matches)^0.2, 0 if all words match in one chunk
 *   score = Fmean * (1 - penalty).
 * Needs WordNet's data (wordnet-base) for the synonym cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sat/meteor.h"
#include "sat/metrics.h"
#include "sat/util.h"

#define TOL 1e-12

static sat_meteor *mt;

static void assert_close(double got, double want, double tol)
{
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g (tolerance %g)", got, want, tol);
}

static double penalty(double frag) { return SAT_METEOR_GAMMA * pow(frag, SAT_METEOR_BETA); }

/* Score hyp against refs; statistics into *st, the score's steps into *p. */
static double seg(const char *hyp, const char *const *refs, int nrefs, sat_meteor_stats *st, sat_meteor_parts *p)
{
    double s = sat_meteor_segment(mt, hyp, refs, nrefs, st);
    assert_close(sat_meteor_score(st, p), s, 0);
    return s;
}

static double seg1(const char *hyp, const char *ref, sat_meteor_stats *st, sat_meteor_parts *p)
{
    return seg(hyp, &ref, 1, st, p);
}

static long matched(const long m[SAT_METEOR_MODULES][2])
{
    long n = 0;
    for (int k = 0; k < SAT_METEOR_MODULES; k++) n += m[k][0] + m[k][1];
    return n;
}

static void test_function_words(void **state)
{
    (void)state;
    assert_true(sat_meteor_function_words_sorted());
    const char *yes[] = {"a", "the", "on", "is", "n't", "'s", "ca", "with", "their", "yourselves"};
    const char *no[] = {"dog", "grass", "two", "red", "running", "", "The"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_true(sat_meteor_function_word(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) assert_false(sat_meteor_function_word(no[i]));
}

/* "a dog runs on the grass" against itself: 6 exact matches (a on the:
 * function; dog runs grass: content) in one chunk.  P = R = 1, Fmean = 1.
 * METEOR 1.5 sets the fragmentation to 0 when every word of both sentences
 * is matched in a single chunk, so the score is Fmean = 1 exactly (the
 * formula alone would give 1 - 0.6 (1/6)^0.2).  Two such segments summed
 * have 2 chunks over 12 matches: frag = 2 / 12, no longer exempt. */
static void test_identical(void **state)
{
    (void)state;
    sat_meteor_stats st, sum = {0};
    sat_meteor_parts p;
    assert_close(seg1("a dog runs on the grass", "A dog runs on the grass.", &st, &p), 1, 0);
    assert_int_equal(st.hyp_len, 6);
    assert_int_equal(st.hyp_function, 3);
    assert_int_equal(st.hyp_matched[SAT_METEOR_EXACT][0], 3);
    assert_int_equal(st.hyp_matched[SAT_METEOR_EXACT][1], 3);
    assert_int_equal(st.chunks, 1);
    assert_close(p.fmean, 1, TOL);
    assert_close(p.frag, 0, 0);
    sat_meteor_stats_add(&sum, &st);
    sat_meteor_stats_add(&sum, &st);
    assert_close(sat_meteor_score(&sum, &p), 1 - penalty(2.0 / 12), TOL);
    assert_close(p.score, 0.580704, 1e-6);
}

/* Nothing in common (no exact, stem or WordNet synonym pair): 0. */
static void test_no_match(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    assert_close(seg1("red ball", "blue kite", &st, &p), 0, 0);
    assert_int_equal(matched(st.hyp_matched), 0);
    assert_int_equal(st.chunks, 0);
    assert_close(seg1("", "blue kite", &st, &p), 0, 0);
    assert_close(seg1("red ball", "", &st, &p), 0, 0);
}

/* "the connection" / "the connected": "the" exact (function, 0.25);
 * "connection" / "connected" share the Snowball stem "connect" (WordNet does
 * not relate them): content, weight 0.6.  Both sides: weighted length
 * 0.25 + 0.75 = 1, matches 0.25 + 0.6 * 0.75 = 0.7; P = R = Fmean = 0.7; one
 * chunk covering everything: no penalty.  0.7. */
static void test_stem_weight(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    assert_close(seg1("the connection", "the connected", &st, &p), 0.7, TOL);
    assert_int_equal(st.hyp_matched[SAT_METEOR_STEM][0], 1);
    assert_int_equal(st.ref_matched[SAT_METEOR_STEM][0], 1);
    assert_int_equal(st.hyp_matched[SAT_METEOR_SYNONYM][0], 0);
    assert_close(p.precision, 0.7, TOL);
}

/* "the car" / "the automobile": one WordNet synset {car, auto, automobile,
 * machine, motorcar}; weight 0.8: 0.25 + 0.8 * 0.75 = 0.85. */
static void test_synonym_weight(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    assert_close(seg1("the car", "the automobile", &st, &p), 0.85, TOL);
    assert_int_equal(st.hyp_matched[SAT_METEOR_SYNONYM][0], 1);
    assert_int_equal(st.hyp_matched[SAT_METEOR_STEM][0], 0);
    /* inflected forms reach the synset through WordNet's base forms */
    assert_close(seg1("the cars", "the automobile", &st, &p), 0.85, TOL);
    assert_int_equal(st.hyp_matched[SAT_METEOR_SYNONYM][0], 1);
}

/* hyp "on the grass a dog runs", ref "a dog runs on the grass": all six
 * words match exactly (P = R = 1), but walking the reference, "a dog runs"
 * is hyp 3 4 5 and "on the grass" hyp 0 1 2: two chunks.  frag = 2 / 6,
 * score = 1 - 0.6 (1/3)^0.2 = 0.518355. */
static void test_chunks_reordered(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    assert_close(seg1("on the grass a dog runs", "a dog runs on the grass", &st, &p), 1 - penalty(1.0 / 3), TOL);
    assert_int_equal(st.chunks, 2);
    assert_close(p.frag, 1.0 / 3, TOL);
    assert_close(p.score, 0.518355, 1e-6);
}

/* "a zebra on the piano" / "a dog on the grass": only the function words
 * a, on, the match.  Weighted length 2 * 0.75 + 3 * 0.25 = 2.25 on both
 * sides, matches 3 * 0.25 = 0.75: P = R = Fmean = 1/3 (unweighted it would
 * be 3/5).  Chunks: "a" | "on the" = 2, frag = 2/3.
 * score = 1/3 (1 - 0.6 (2/3)^0.2) = 0.148912. */
static void test_function_word_delta(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    double s = seg1("a zebra on the piano", "a dog on the grass", &st, &p);
    assert_close(p.precision, 1.0 / 3, TOL);
    assert_close(p.recall, 1.0 / 3, TOL);
    assert_int_equal(st.hyp_matched[SAT_METEOR_EXACT][1], 3);
    assert_int_equal(st.chunks, 2);
    assert_close(s, (1 - penalty(2.0 / 3)) / 3, TOL);
}

/* Several references: the statistics of the best-scoring one, wherever it is. */
static void test_best_reference(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    const char *refs[] = {"a cat sleeps", "a dog runs"};
    const char *rev[] = {"a dog runs", "a cat sleeps"};
    assert_close(seg("a dog runs", refs, 2, &st, &p), 1, 0);
    assert_int_equal(matched(st.ref_matched), 3);
    assert_close(seg("a dog runs", rev, 2, &st, &p), 1, 0);
    /* alone, "a cat sleeps" matches only "a": 0.25 / (0.25 + 1.5) = 1/7, one
     * chunk over one match: 1/7 (1 - 0.6) */
    assert_close(seg1("a dog runs", "a cat sleeps", &st, &p), 0.4 / 7, TOL);
}

/* Corpus METEOR scores the summed statistics.  Segment 1: "a dog runs on the
 * grass" twice (score 1); segment 2: "red ball" / "blue kite" (score 0).
 * Mean of the segments 0.5; summed: lengths 8, function words 3, matches 3
 * content + 3 function, 1 chunk.  Weighted length 5 * 0.75 + 3 * 0.25 = 4.5,
 * matches 3 * 0.75 + 3 * 0.25 = 3: P = R = Fmean = 2/3; not every word is
 * matched, so frag = 1 / 6: score = 2/3 (1 - 0.6 (1/6)^0.2) = 0.387136. */
static void test_corpus_not_mean(void **state)
{
    (void)state;
    sat_metrics *m = sat_metrics_new();
    sat_metrics_set_meteor(m, mt);
    const char *r1[] = {"a dog runs on the grass"}, *r2[] = {"blue kite"};
    sat_metrics_add(m, "a dog runs on the grass", r1, 1);
    sat_metrics_add(m, "red ball", r2, 1);
    sat_metric_scores s;
    sat_metrics_score(m, &s);
    assert_true(s.has_meteor);
    sat_image_scores img;
    sat_metrics_image(m, 0, &img);
    assert_close(img.meteor, 1, 0);
    sat_metrics_image(m, 1, &img);
    assert_close(img.meteor, 0, 0);
    assert_close(s.meteor, 2.0 / 3 * (1 - penalty(1.0 / 6)), TOL);
    assert_close(s.meteor, 0.387136, 1e-6);
    sat_metrics_free(m);

    m = sat_metrics_new(); /* without a sat_meteor: no METEOR */
    sat_metrics_add(m, "red ball", r2, 1);
    sat_metrics_score(m, &s);
    assert_false(s.has_meteor);
    sat_metrics_free(m);
}

/* METEOR 1.5 ranks alignments by weighted matches summed into integers:
 * exact 1, stem / synonym 0.5 -> 0.  "dogs" / "dog" is both a stem and a
 * synonym candidate (WordNet base form "dog"), so neither is definite and
 * the search decides: taking one opens a chunk, skipping leaves none; no
 * match wins: 0.  In "the dogs" / "the dog" the candidate extends the chunk
 * of "the", so taking it costs no chunk; the tie goes to taking (the earlier
 * path), as the stem match (listed before the synonym): 0.25 + 0.6 * 0.75
 * = 0.7 as in test_stem_weight. */
static void test_contested_match(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    assert_close(seg1("dogs", "dog", &st, &p), 0, 0);
    assert_int_equal(matched(st.hyp_matched), 0);
    assert_close(seg1("the dogs", "the dog", &st, &p), 0.7, TOL);
    assert_int_equal(st.hyp_matched[SAT_METEOR_STEM][0], 1);
}

/* Distance as METEOR 1.5 books it.  hyp "a red dogs", ref "here is a red
 * dog": "a" (ref 2, hyp 0) and "red" (ref 3, hyp 1) are definite, distance
 * 2 + 2 = 4; "dog" (ref 4) has two candidates on hyp 2 (stem, synonym).
 * Taking the stem match extends the chunk; skipping closes it: 1 chunk
 * either way.  METEOR adds a candidate's distance |4 - 2| to the paths
 * after it, so taking the stem costs 4, skipping 4 + 2 + 2 = 8: the stem
 * is taken (with plain distances skipping would win, 4 against 6).
 * hyp: weighted length 0.25 + 2 * 0.75 = 1.75, matches 0.25 + 0.75 + 0.45 =
 * 1.45; ref: length 2 * 0.25 + 3 * 0.75 = 2.75, same matches.
 * P = 29/35, R = 29/55, Fmean = 29 / (0.15 * 35 + 0.85 * 55) = 29/52;
 * 3 matches, 1 chunk, ref not all matched: frag 1/3. */
static void test_distance_bookkeeping(void **state)
{
    (void)state;
    sat_meteor_stats st;
    sat_meteor_parts p;
    double s = seg1("a red dogs", "here is a red dog", &st, &p);
    assert_int_equal(st.hyp_matched[SAT_METEOR_STEM][0], 1);
    assert_int_equal(st.chunks, 1);
    assert_close(p.precision, 29.0 / 35, TOL);
    assert_close(p.recall, 29.0 / 55, TOL);
    assert_close(p.fmean, 29.0 / 52, TOL);
    assert_close(s, 29.0 / 52 * (1 - penalty(1.0 / 3)), TOL);
}

/* Long and repetitive input: words past SAT_METEOR_MAX_WORDS count in the
 * length but never match, and the search stays within its cap. */
static void test_bounds(void **state)
{
    (void)state;
    enum { N = 300 };
    static char a[N * 8], b[N * 8];
    size_t la = 0, lb = 0;
    for (int i = 0; i < N; i++) {
        la += (size_t)snprintf(a + la, sizeof a - la, "w%d ", i);
        lb += (size_t)snprintf(b + lb, sizeof b - lb, "%s ", i % 3 ? "a" : "the");
    }
    sat_meteor_stats st;
    sat_meteor_parts p;
    seg1(a, a, &st, &p);
    assert_int_equal(st.hyp_len, N);
    assert_int_equal(matched(st.hyp_matched), SAT_METEOR_MAX_WORDS);
    assert_int_equal(st.chunks, 1);
    assert_close(p.frag, 1.0 / SAT_METEOR_MAX_WORDS, TOL);

    sat_meteor_effort before, after;
    sat_meteor_effort_get(mt, &before);
    double s = seg1(b, b + 4, &st, &p); /* the same words shifted: not identical */
    sat_meteor_effort_get(mt, &after);
    assert_true(s > 0 && s <= 1);
    assert_int_equal(after.searches, before.searches + 1);
    assert_true(after.max_nodes <= SAT_METEOR_MAX_NODES);
}

static int setup(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    mt = sat_meteor_new(err, sizeof err);
    if (!mt) fprintf(stderr, "%s\n", err);
    return mt ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sat_meteor_free(mt);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_words),     cmocka_unit_test(test_identical),
        cmocka_unit_test(test_no_match),           cmocka_unit_test(test_stem_weight),
        cmocka_unit_test(test_synonym_weight),     cmocka_unit_test(test_chunks_reordered),
        cmocka_unit_test(test_function_word_delta), cmocka_unit_test(test_best_reference),
        cmocka_unit_test(test_corpus_not_mean),    cmocka_unit_test(test_contested_match),
        cmocka_unit_test(test_distance_bookkeeping), cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
