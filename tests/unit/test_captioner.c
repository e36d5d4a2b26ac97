/* test_captioner.c — captions of several images stepped together are the
 * captions of each alone, to the bit: greedy decoding (sat_caption_decode)
 * and teacher forcing (sat_caption_teacher), with an ensemble, soft
 * and hard-argmax attention, on sizes that take every kind of tile of
 * nn_linear_rows (4H = 80: with AVX-512 48 and 32 columns, with AVX2 48, 24
 * and 8; E = 26: 16 and a masked 10, or a scalar tail), the features read
 * in f16 (their values are f16's);
 * and an image of two views is the ensemble of the model on each; an
 * ensemble's models stepped on threads give the same bytes as one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caption_check.h"
#include "sat/captioner.h"
#include "sat/decoder.h"
#include "sat/half.h"
#include "sat/model.h"
#include "decoder_case.h"
#include "sat/rng.h"
#include "sat/util.h"

static const sat_decoder_config cfg = { .L = 5, .D = 30, .E = 26, .H = 20, .A = 12, .V = 50 };
enum { NIMG = 5 };

typedef struct {
    sat_decoder *dec[2];
    sat_ensemble ens;
    float *feats; /* NIMG × L × D */
} fixture;

static fixture fixture_new(void)
{
    fixture f = { .dec = { new_decoder(cfg, 31), new_decoder(cfg, 32) } };
    f.ens = (sat_ensemble){ .n = 2, .dec = { f.dec[0], f.dec[1] } };
    sat_rng rng;
    sat_rng_seed(&rng, 33);
    f.feats = sat_xmalloc((size_t)NIMG * cfg.L * cfg.D * sizeof(float));
    fill_random(f.feats, (size_t)NIMG * cfg.L * cfg.D, 0, 1, &rng);
    for (size_t i = 0; i < (size_t)NIMG * cfg.L * cfg.D; i++) /* as a features record's */
        f.feats[i] = sat_f16_to_f32(sat_f32_to_f16(f.feats[i]));
    return f;
}

static void fixture_free(fixture *f)
{
    sat_decoder_free(f->dec[0]);
    sat_decoder_free(f->dec[1]);
    free(f->feats);
}

static void test_decode_images_as_alone(void **state)
{
    (void)state;
    fixture f = fixture_new();
    const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
    for (int m = 0; m < 2; m++) {
        sat_caption together[NIMG], alone;
        const sat_decode_options o = { .max_len = 8, .attend = modes[m] };
        sat_caption_decode(&f.ens, f.feats, NIMG, 1, &o, together);
        for (int i = 0; i < NIMG; i++) {
            sat_caption_decode(&f.ens, f.feats + (size_t)i * cfg.L * cfg.D, 1, 1, &o, &alone);
            assert_same_caption(&together[i], &alone, cfg.L);
            sat_caption_free(&alone);
            sat_caption_free(&together[i]);
        }
    }
    fixture_free(&f);
}

static void test_teacher_images_as_alone(void **state)
{
    (void)state;
    fixture f = fixture_new();
    const int a[] = { 3, 7, 9 }, b[] = { 11, 4, 4, 20, 5 };
    /* image 0: two captions (one empty), image 1: none, image 2: two */
    const sat_teacher_row rows[] = { { 0, a, 3 }, { 0, a, 0 }, { 2, b, 5 }, { 2, a, 2 } };
    enum { NROWS = sizeof rows / sizeof rows[0] };
    const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
    for (int m = 0; m < 2; m++) {
        sat_caption together[NROWS], alone;
        const sat_decode_options o = { .attend = modes[m] };
        sat_caption_teacher(&f.ens, f.feats, 3, 1, rows, NROWS, &o, together);
        for (int r = 0; r < NROWS; r++) {
            const sat_teacher_row one = { 0, rows[r].tokens, rows[r].n };
            sat_caption_teacher(&f.ens, f.feats + (size_t)rows[r].image * cfg.L * cfg.D, 1, 1, &one, 1,
                                &o, &alone);
            assert_same_caption(&together[r], &alone, cfg.L);
            sat_caption_free(&alone);
            sat_caption_free(&together[r]);
        }
    }
    fixture_free(&f);
}

/* A decoder saved as f16 and loaded as sat-beam loads it (SAT_MODEL_IN_PLACE,
 * take_model) reads its matrices from the file's f16 bits: the captions are
 * those of the same file loaded the ordinary way, to the bit. */
static void test_f16_weights_same_captions(void **state)
{
    (void)state;
    fixture f = fixture_new();
    sat_model *m = sat_decoder_to_model(f.dec[0]);
    char path[] = "/tmp/test_captioner.XXXXXX", err[SAT_ERR_MAX];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sat_model_save(m, path, 1);
    sat_model *mapped = sat_model_load(path, SAT_MODEL_IN_PLACE, err, sizeof err);
    sat_model *copied = sat_model_load(path, 0, err, sizeof err);
    unlink(path);
    assert_non_null(mapped);
    assert_non_null(copied);
    sat_decoder *half = sat_decoder_take_model(mapped, err, sizeof err);
    sat_decoder *full = sat_decoder_take_model(copied, err, sizeof err);
    assert_non_null(half->half);
    assert_null(full->half);
    const sat_ensemble a = { .n = 1, .dec = { half } }, b = { .n = 1, .dec = { full } };
    const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
    for (int i = 0; i < 2; i++) {
        sat_caption x[NIMG], y[NIMG];
        const sat_decode_options o = { .max_len = 8, .attend = modes[i] };
        sat_caption_decode(&a, f.feats, NIMG, 1, &o, x);
        sat_caption_decode(&b, f.feats, NIMG, 1, &o, y);
        for (int j = 0; j < NIMG; j++) {
            assert_same_caption(&x[j], &y[j], cfg.L);
            sat_caption_free(&x[j]);
            sat_caption_free(&y[j]);
        }
    }
    sat_decoder_free(half);
    sat_decoder_free(full);
    sat_model_free(mapped);
    sat_model_free(copied);
    sat_model_free(m);
    fixture_free(&f);
}

/* The greedy caption of one image of two views (maps a and b) by dec, made
 * by hand as a two-member ensemble makes it: two decoder states, one per
 * map; each step the mean of their log-probabilities, renormalised (as
 * captioner.c's log_normalize_rows), and of their attention (hard: one-hot
 * rows); the recorded location the first member's. */
static void two_views_by_hand(const sat_decoder *dec, const float *a, const float *b,
                              sat_attend_mode mode, int max_len, sat_caption *out)
{
    enum { V = 50, L = 5 };
    assert_int_equal(cfg.V, V);
    assert_int_equal(cfg.L, L);
    sat_decoder_state *st[2] = { sat_decoder_state_new(dec, a, 1, 1),
                                 sat_decoder_state_new(dec, b, 1, 1) };
    const int hard = mode != SAT_ATTEND_SOFT;
    *out = (sat_caption){ .tokens = sat_xmalloc((size_t)(max_len + 1) * sizeof(int)),
                          .alpha = sat_xmalloc((size_t)(max_len + 1) * L * sizeof(float)),
                          .locations = hard ? sat_xmalloc((size_t)(max_len + 1) * sizeof(int)) : NULL };
    int prev = SAT_VOCAB_START;
    for (int t = 0;; t++) {
        float lp[2][V], al[2][L];
        int loc[2];
        for (int m = 0; m < 2; m++) {
            sat_decoder_step(dec, st[m], &prev, &(sat_step_attend){ .mode = mode, .loc = &loc[m] },
                             lp[m], al[m], NULL);
            if (hard)
                for (int i = 0; i < L; i++) al[m][i] = i == loc[m] ? 1.0f : 0.0f;
        }
        float max = -INFINITY;
        for (int i = 0; i < V; i++) {
            lp[0][i] = (lp[0][i] + lp[1][i]) / 2.0f;
            max = lp[0][i] > max ? lp[0][i] : max;
        }
        double total = 0;
        for (int i = 0; i < V; i++) total += exp(lp[0][i] - max);
        const float lse = max + (float)log(total);
        for (int i = 0; i < V; i++) lp[0][i] -= lse;
        for (int i = 0; i < L; i++) out->alpha[(size_t)t * L + i] = (al[0][i] + al[1][i]) / 2.0f;
        if (hard) out->locations[t] = loc[0];
        int word = t == max_len ? SAT_VOCAB_END : sat_caption_pick_word(lp[0], V, 0, 0, t > 0, NULL);
        out->logprob += lp[0][word];
        if (word == SAT_VOCAB_END) break;
        out->tokens[out->n++] = prev = word;
    }
    sat_decoder_state_free(st[0]);
    sat_decoder_state_free(st[1]);
}

/* An image of two views captioned by one model is the two-member ensemble
 * of that model on each map, to the bit; two such images decoded together
 * are each as alone; and the maps' order matters (the views are two
 * members, not one map: view 1 alone gives another caption's numbers). */
static void test_two_views_are_two_members(void **state)
{
    (void)state;
    fixture f = fixture_new();
    const size_t LD = (size_t)cfg.L * cfg.D;
    const sat_ensemble one = { .n = 1, .dec = { f.dec[0] } };
    const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
    for (int i = 0; i < 2; i++) {
        const sat_decode_options o = { .max_len = 8, .attend = modes[i] };
        sat_caption both[2], by_hand, view0;
        sat_caption_decode(&one, f.feats, 2, 2, &o, both); /* images (map 0, map 1), (2, 3) */
        for (int im = 0; im < 2; im++) {
            two_views_by_hand(f.dec[0], f.feats + 2 * im * LD, f.feats + (2 * im + 1) * LD,
                              modes[i], o.max_len, &by_hand);
            assert_same_caption(&both[im], &by_hand, cfg.L);
            sat_caption_free(&by_hand);
        }
        sat_caption_decode(&one, f.feats, 1, 1, &o, &view0); /* map 0 alone is not the pair */
        assert_true(view0.logprob != both[0].logprob);
        sat_caption_free(&view0);
        sat_caption_free(&both[0]);
        sat_caption_free(&both[1]);
    }
    fixture_free(&f);
}

/* Two models on two views each, stepped on 1, 2 and 3 threads: the same
 * captions to the bit, greedy and read by teacher forcing. */
static void test_threads_same_bytes(void **state)
{
    (void)state;
    fixture f = fixture_new();
    const sat_attend_mode modes[] = { SAT_ATTEND_SOFT, SAT_ATTEND_ARGMAX };
    const int words[] = { 4, 7, 9 };
    const sat_teacher_row rows[] = { { 0, words, 3 }, { 1, words + 1, 2 } };
    for (int i = 0; i < 2; i++) {
        const sat_decode_options o = { .max_len = 8, .attend = modes[i] };
        sat_caption one_by_one[2], read_one[2];
        sat_caption_decode(&f.ens, f.feats, 2, 2, &o, one_by_one);
        sat_caption_teacher(&f.ens, f.feats, 2, 2, rows, 2, &o, read_one);
        for (int threads = 2; threads <= 3; threads++) {
            sat_ensemble on = f.ens;
            on.threads = threads;
            sat_caption together[2], read[2];
            sat_caption_decode(&on, f.feats, 2, 2, &o, together);
            sat_caption_teacher(&on, f.feats, 2, 2, rows, 2, &o, read);
            for (int im = 0; im < 2; im++) {
                assert_same_caption(&together[im], &one_by_one[im], cfg.L);
                assert_same_caption(&read[im], &read_one[im], cfg.L);
                sat_caption_free(&together[im]);
                sat_caption_free(&read[im]);
            }
        }
        for (int im = 0; im < 2; im++) {
            sat_caption_free(&one_by_one[im]);
            sat_caption_free(&read_one[im]);
        }
    }
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_images_as_alone),
        cmocka_unit_test(test_teacher_images_as_alone),
        cmocka_unit_test(test_f16_weights_same_captions),
        cmocka_unit_test(test_two_views_are_two_members),
        cmocka_unit_test(test_threads_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
