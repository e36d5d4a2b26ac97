/* test_captioner.c — captions of several images stepped together are the
 * captions of each alone, to the bit: greedy decoding (sat_caption_decode)
 * and teacher forcing (sat_caption_teacher), with an ensemble, soft
 * and hard-argmax attention, on sizes that take every tile of
 * nn_linear_rows (4H = 80: 48, 24 and 8 columns; E = 26: a scalar tail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caption_check.h"
#include "sat/captioner.h"
#include "sat/decoder.h"
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
        sat_caption_decode(&f.ens, f.feats, NIMG, &o, together);
        for (int i = 0; i < NIMG; i++) {
            sat_caption_decode(&f.ens, f.feats + (size_t)i * cfg.L * cfg.D, 1, &o, &alone);
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
        sat_caption_teacher(&f.ens, f.feats, 3, rows, NROWS, &o, together);
        for (int r = 0; r < NROWS; r++) {
            const sat_teacher_row one = { 0, rows[r].tokens, rows[r].n };
            sat_caption_teacher(&f.ens, f.feats + (size_t)rows[r].image * cfg.L * cfg.D, 1, &one, 1,
                                &o, &alone);
            assert_same_caption(&together[r], &alone, cfg.L);
            sat_caption_free(&alone);
            sat_caption_free(&together[r]);
        }
    }
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_images_as_alone),
        cmocka_unit_test(test_teacher_images_as_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
