/* test_epoch.c — an epoch's batches (libcommon/sat/epoch.h): every caption once,
 * an image's captions together in caption order, batches of at least the
 * asked size but for the last, the same plan for the same (seed, epoch) and
 * another for another epoch; caption seeds depend on (seed, epoch, c) only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sat/epoch.h"

/* 40 images; image i has i % 6 captions (some none), listed interleaved. */
enum { NIMAGES = 40, MAXCAP = 200 };

static int make_captions(int *image)
{
    int n = 0;
    for (int round = 0; round < 6; round++)
        for (int i = 0; i < NIMAGES; i++)
            if (round < i % 6) image[n++] = i;
    return n;
}

static void test_every_caption_once_whole_images(void **state)
{
    (void)state;
    int image[MAXCAP], n = make_captions(image);
    for (int batch = 1; batch <= 64; batch *= 4) {
        sat_epoch_plan p;
        sat_epoch_plan_make(&p, image, n, NIMAGES, batch, 7, 3);
        assert_int_equal(p.start[0], 0);
        assert_int_equal(p.start[p.nbatches], n);
        int seen[MAXCAP] = {0}, batch_of_image[NIMAGES];
        for (int i = 0; i < NIMAGES; i++) batch_of_image[i] = -1;
        for (long b = 0; b < p.nbatches; b++) {
            long size = p.start[b + 1] - p.start[b];
            assert_true(size > 0);
            /* at least `batch` captions, except the last batch; no image more than needed */
            if (b + 1 < p.nbatches) assert_true(size >= batch && size < batch + 6);
            int prev = -1;
            for (long k = p.start[b]; k < p.start[b + 1]; k++) {
                int c = p.order[k];
                seen[c]++;
                int im = image[c];
                assert_true(batch_of_image[im] == -1 || batch_of_image[im] == b);
                batch_of_image[im] = (int)b;
                if (k > p.start[b] && image[prev] == im) assert_true(c > prev); /* caption order */
                prev = c;
            }
        }
        for (int c = 0; c < n; c++) assert_int_equal(seen[c], 1);
        sat_epoch_plan_free(&p);
    }
}

static int same_plan(const sat_epoch_plan *a, const sat_epoch_plan *b, int n)
{
    return a->nbatches == b->nbatches &&
           !memcmp(a->start, b->start, (size_t)(a->nbatches + 1) * sizeof *a->start) &&
           !memcmp(a->order, b->order, (size_t)n * sizeof *a->order);
}

static void test_repeatable_by_seed_and_epoch(void **state)
{
    (void)state;
    int image[MAXCAP], n = make_captions(image);
    sat_epoch_plan a, b, c, d;
    sat_epoch_plan_make(&a, image, n, NIMAGES, 8, 11, 2);
    sat_epoch_plan_make(&b, image, n, NIMAGES, 8, 11, 2);
    sat_epoch_plan_make(&c, image, n, NIMAGES, 8, 11, 3);
    sat_epoch_plan_make(&d, image, n, NIMAGES, 8, 12, 2);
    assert_true(same_plan(&a, &b, n));
    assert_false(same_plan(&a, &c, n));
    assert_false(same_plan(&a, &d, n));
    sat_epoch_plan_free(&a);
    sat_epoch_plan_free(&b);
    sat_epoch_plan_free(&c);
    sat_epoch_plan_free(&d);
}

static void test_caption_seeds(void **state)
{
    (void)state;
    assert_true(sat_epoch_caption_seed(1, 0, 5) == sat_epoch_caption_seed(1, 0, 5));
    assert_true(sat_epoch_caption_seed(1, 0, 5) != sat_epoch_caption_seed(1, 0, 6));
    assert_true(sat_epoch_caption_seed(1, 0, 5) != sat_epoch_caption_seed(1, 1, 5));
    assert_true(sat_epoch_caption_seed(1, 0, 5) != sat_epoch_caption_seed(2, 0, 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_caption_once_whole_images),
        cmocka_unit_test(test_repeatable_by_seed_and_epoch),
        cmocka_unit_test(test_caption_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
