/* test_beam.c — beam search (beam.h) on tiny random decoders (one, and an
 * ensemble of two), soft and hard-argmax attention: a beam of width 1 is
 * greedy decoding to the bit; the best caption of a wider beam is at least
 * as probable as the greedy one, its score its log-probability under
 * teacher forcing; the n best are ranked and distinct and keep min/max len
 * (also when they are equal);
 * images searched together get the captions each gets alone; the same
 * inputs (and seed) give the same captions; a search told to settle the n
 * best stops early and finds the same n best; images of two views (every
 * hypothesis a row per view) search as one view when the views are the same
 * map, and alone as together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/beam.h"
#include "caption_check.h"
#include "sat/captioner.h"
#include "sat/decoder.h"
#include "decoder_case.h"
#include "sat/rng.h"
#include "sat/util.h"

static const sat_decoder_config cfg = { .L = 5, .D = 30, .E = 26, .H = 20, .A = 12, .V = 50 };
enum { NIMG = 6, MAXLEN = 12 };

typedef struct {
    sat_decoder *dec[2];
    sat_ensemble one, both;
    float *feats; /* NIMG × L × D */
} fixture;

static const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
enum { NMODES = sizeof modes / sizeof modes[0] };

static int setup(void **state)
{
    fixture *f = sat_xcalloc(1, sizeof *f);
    f->dec[0] = new_decoder(cfg, 41);
    f->dec[1] = new_decoder(cfg, 42);
    f->one = (sat_ensemble){ .n = 1, .dec = { f->dec[0] } };
    f->both = (sat_ensemble){ .n = 2, .dec = { f->dec[0], f->dec[1] } };
    sat_rng rng;
    sat_rng_seed(&rng, 43);
    f->feats = sat_xmalloc((size_t)NIMG * cfg.L * cfg.D * sizeof(float));
    fill_random(f->feats, (size_t)NIMG * cfg.L * cfg.D, 0, 1, &rng);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sat_decoder_free(f->dec[0]);
    sat_decoder_free(f->dec[1]);
    free(f->feats);
    free(f);
    return 0;
}

static const float *image(const fixture *f, int i)
{
    return f->feats + (size_t)i * cfg.L * cfg.D;
}

static sat_beam_options beam_options(int k, sat_attend_mode attend)
{
    return (sat_beam_options){ .k = k, .min_len = 1,
                               .decode = { .max_len = MAXLEN, .attend = attend } };
}

static int same_words(const sat_caption *a, const sat_caption *b)
{
    return a->n == b->n && memcmp(a->tokens, b->tokens, (size_t)a->n * sizeof(int)) == 0;
}

/* log p of c's words and <end> on image i, read by teacher forcing. */
static double teacher_logprob(const sat_ensemble *ens, const float *feats, const sat_caption *c,
                              sat_attend_mode attend)
{
    const sat_teacher_row row = { 0, c->tokens, c->n };
    sat_caption read;
    sat_caption_teacher(ens, feats, 1, 1, &row, 1, &(sat_decode_options){ .attend = attend }, &read);
    double logprob = read.logprob;
    sat_caption_free(&read);
    return logprob;
}

static void test_width_1_is_greedy(void **state)
{
    const fixture *f = *state;
    const sat_ensemble *ens[] = { &f->one, &f->both };
    for (int e = 0; e < 2; e++)
        for (int m = 0; m < NMODES; m++) {
            sat_beam_options o = beam_options(1, modes[m]);
            sat_beam *b = sat_beam_new(ens[e], &o, NIMG);
            sat_beam_search(b, f->feats, NIMG, 1);
            sat_caption greedy[NIMG];
            sat_caption_decode(ens[e], f->feats, NIMG, 1, &o.decode, greedy);
            for (int i = 0; i < NIMG; i++) {
                assert_int_equal(sat_beam_count(b, i), 1);
                assert_same_caption(sat_beam_caption(b, i, 0), &greedy[i], cfg.L);
                sat_caption_free(&greedy[i]);
            }
            sat_beam_free(b);
        }
}

/* Not a theorem of beam search, but what it is for: on every image the best
 * of 5 is at least as probable as the greedy caption, both read again by
 * teacher forcing, and the beam's score is that log-probability. */
static void test_best_at_least_greedy(void **state)
{
    const fixture *f = *state;
    int better = 0;
    for (int m = 0; m < NMODES; m++) {
        sat_beam_options o = beam_options(5, modes[m]);
        sat_beam *b = sat_beam_new(&f->both, &o, NIMG);
        sat_beam_search(b, f->feats, NIMG, 1);
        sat_caption greedy[NIMG];
        sat_caption_decode(&f->both, f->feats, NIMG, 1, &o.decode, greedy);
        for (int i = 0; i < NIMG; i++) {
            const sat_caption *best = sat_beam_caption(b, i, 0);
            double lp_best = teacher_logprob(&f->both, image(f, i), best, modes[m]);
            double lp_greedy = teacher_logprob(&f->both, image(f, i), &greedy[i], modes[m]);
            assert_true(fabs(lp_best - best->logprob) < 1e-4);
            assert_true(lp_best >= lp_greedy - 1e-5);
            better += lp_best > lp_greedy + 1e-3;
            sat_caption_free(&greedy[i]);
        }
        sat_beam_free(b);
    }
    /* the search found something greedy decoding missed on some image */
    assert_true(better > 0);
}

/* The n best: k of them, ranked by (normalised) score, different captions,
 * of min_len..max_len words. */
static void test_nbest_ranked_distinct(void **state)
{
    const fixture *f = *state;
    const double norms[] = { 0, 0.7 };
    for (int m = 0; m < NMODES; m++)
        for (int l = 0; l < 2; l++) {
            sat_beam_options o = beam_options(6, modes[m]);
            o.min_len = 3;
            o.decode.max_len = 7;
            o.length_norm = norms[l];
            sat_beam *b = sat_beam_new(&f->both, &o, NIMG);
            sat_beam_search(b, f->feats, NIMG, 1);
            for (int i = 0; i < NIMG; i++) {
                assert_int_equal(sat_beam_count(b, i), o.k);
                for (int r = 0; r < o.k; r++) {
                    const sat_caption *c = sat_beam_caption(b, i, r);
                    assert_in_range(c->n, o.min_len, o.decode.max_len);
                    if (r > 0) {
                        const sat_caption *p = sat_beam_caption(b, i, r - 1);
                        assert_true(p->logprob / pow(p->n + 1, norms[l]) >=
                                    c->logprob / pow(c->n + 1, norms[l]));
                    }
                    for (int s = 0; s < r; s++)
                        assert_false(same_words(c, sat_beam_caption(b, i, s)));
                }
            }
            sat_beam_free(b);
        }
}

/* min_len = max_len: every caption has exactly that many words (<end> is
 * allowed at that step and no earlier), and there are still k of them. */
static void test_min_len_is_max_len(void **state)
{
    const fixture *f = *state;
    sat_beam_options o = beam_options(4, SAT_ATTEND_SOFT);
    o.min_len = o.decode.max_len = 4;
    sat_beam *b = sat_beam_new(&f->one, &o, NIMG);
    sat_beam_search(b, f->feats, NIMG, 1);
    for (int i = 0; i < NIMG; i++) {
        assert_int_equal(sat_beam_count(b, i), o.k);
        for (int r = 0; r < o.k; r++) assert_int_equal(sat_beam_caption(b, i, r)->n, 4);
    }
    sat_beam_free(b);
}

/* Each of n images of `views` views (feats: n × views × L × D) searched
 * alone gets, to the bit, every caption it gets among all searched together. */
static void assert_alone_as_together(const sat_ensemble *ens, const float *feats, int n, int views)
{
    const size_t LD = (size_t)cfg.L * cfg.D;
    for (int m = 0; m < NMODES; m++) {
        sat_beam_options o = beam_options(4, modes[m]);
        o.length_norm = 0.5;
        sat_beam *together = sat_beam_new(ens, &o, n);
        sat_beam *alone = sat_beam_new(ens, &o, 1);
        sat_beam_search(together, feats, n, views);
        for (int i = 0; i < n; i++) {
            sat_beam_search(alone, feats + (size_t)i * views * LD, 1, views);
            assert_int_equal(sat_beam_count(alone, 0), sat_beam_count(together, i));
            for (int r = 0; r < sat_beam_count(alone, 0); r++)
                assert_same_caption(sat_beam_caption(alone, 0, r), sat_beam_caption(together, i, r),
                                    cfg.L);
        }
        sat_beam_free(together);
        sat_beam_free(alone);
    }
}

static void test_batched_as_alone(void **state)
{
    const fixture *f = *state;
    assert_alone_as_together(&f->both, f->feats, NIMG, 1);
}

/* The same images, options and seed give the same captions: searched again
 * by the same beam and by a new one (hard-sample: its draws too). */
static void test_repeatable(void **state)
{
    const fixture *f = *state;
    const sat_attend_mode all[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX, SAT_ATTEND_SAMPLE };
    for (int m = 0; m < 3; m++) {
        sat_rng rng[2];
        sat_beam *b[2];
        for (int j = 0; j < 2; j++) {
            sat_beam_options o = beam_options(3, all[m]);
            sat_rng_seed(&rng[j], 44);
            o.decode.rng = &rng[j];
            b[j] = sat_beam_new(&f->both, &o, NIMG);
        }
        sat_beam_search(b[1], f->feats, NIMG, 1);
        /* b[0] twice: the first search leaves nothing behind (hard-sample
         * draws on, so only its first search is the same) */
        for (int pass = 0; pass < (all[m] == SAT_ATTEND_SAMPLE ? 1 : 2); pass++) {
            sat_beam_search(b[0], f->feats, NIMG, 1);
            for (int i = 0; i < NIMG; i++)
                for (int r = 0; r < 3; r++)
                    assert_same_caption(sat_beam_caption(b[0], i, r), sat_beam_caption(b[1], i, r),
                                        cfg.L);
        }
        sat_beam_free(b[0]);
        sat_beam_free(b[1]);
    }
}

/* settle = n: the n best captions of each image are those of the full
 * search, to the bit, with and without length normalisation, and some image
 * stopped before it had k captions. */
static void test_settle_keeps_the_best(void **state)
{
    const fixture *f = *state;
    const double norms[] = { 0, 0.7 };
    int early = 0;
    for (int m = 0; m < NMODES; m++)
        for (int l = 0; l < 2; l++)
            for (int n = 1; n <= 3; n++) {
                sat_beam_options o = beam_options(5, modes[m]);
                o.length_norm = norms[l];
                sat_beam *full = sat_beam_new(&f->both, &o, NIMG);
                o.settle = n;
                sat_beam *settled = sat_beam_new(&f->both, &o, NIMG);
                sat_beam_search(full, f->feats, NIMG, 1);
                sat_beam_search(settled, f->feats, NIMG, 1);
                for (int i = 0; i < NIMG; i++) {
                    assert_in_range(sat_beam_count(settled, i), n, o.k);
                    early += sat_beam_count(settled, i) < o.k;
                    for (int r = 0; r < n; r++)
                        assert_same_caption(sat_beam_caption(settled, i, r),
                                            sat_beam_caption(full, i, r), cfg.L);
                }
                sat_beam_free(full);
                sat_beam_free(settled);
            }
    assert_true(early > 0);
}

/* f's images, each twice: NIMG images of two identical views. */
static float *doubled_views(const fixture *f)
{
    const size_t LD = (size_t)cfg.L * cfg.D;
    float *two = sat_xmalloc(2 * NIMG * LD * sizeof *two);
    for (int i = 0; i < NIMG; i++)
        for (int v = 0; v < 2; v++) memcpy(two + (2 * (size_t)i + v) * LD, image(f, i), LD * sizeof *two);
    return two;
}

/* Two views that are the same map: every member twice, the mean the same
 * distribution, so the same captions (the renormalisation moves only the
 * last bits of the scores); with the rows of every hypothesis of every
 * image kept apart by view, a mix-up would change them. */
static void test_same_views_as_one(void **state)
{
    const fixture *f = *state;
    float *two = doubled_views(f);
    for (int m = 0; m < NMODES; m++) {
        sat_beam_options o = beam_options(4, modes[m]);
        sat_beam *one = sat_beam_new(&f->both, &o, NIMG), *both = sat_beam_new(&f->both, &o, NIMG);
        sat_beam_search(one, f->feats, NIMG, 1);
        sat_beam_search(both, two, NIMG, 2);
        for (int i = 0; i < NIMG; i++) {
            assert_int_equal(sat_beam_count(both, i), sat_beam_count(one, i));
            for (int r = 0; r < sat_beam_count(one, i); r++) {
                const sat_caption *a = sat_beam_caption(one, i, r), *b = sat_beam_caption(both, i, r);
                assert_true(same_words(a, b));
                assert_true(fabs(a->logprob - b->logprob) < 1e-4);
                for (int j = 0; j < (a->n + 1) * cfg.L; j++) assert_true(fabsf(a->alpha[j] - b->alpha[j]) < 1e-5f);
            }
        }
        sat_beam_free(one);
        sat_beam_free(both);
    }
    free(two);
}

/* Images of two different views (image i: maps 2i and 2i + 1), alone as together. */
static void test_two_views_batched_as_alone(void **state)
{
    const fixture *f = *state;
    assert_alone_as_together(&f->both, f->feats, NIMG / 2, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width_1_is_greedy),
        cmocka_unit_test(test_best_at_least_greedy),
        cmocka_unit_test(test_nbest_ranked_distinct),
        cmocka_unit_test(test_min_len_is_max_len),
        cmocka_unit_test(test_batched_as_alone),
        cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_settle_keeps_the_best),
        cmocka_unit_test(test_same_views_as_one),
        cmocka_unit_test(test_two_views_batched_as_alone),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
