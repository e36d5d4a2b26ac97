/* test_epoch.c — an epoch's batches (libcommon/sat/epoch.h): every caption once,
 * an image's captions together in caption order, batches of at least the
 * asked size but for the last, the same plan for the same (seed, epoch) and
 * another for another epoch; caption seeds depend on (seed, epoch, c) only;
 * the ranks' shares of a batch tile it, balanced by work. */
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

/* A batch of n captions: caption i of steps[i] steps, own work steps[i]. */
static sat_batch_work batch(const int *steps, const int *image, double *work, int n,
                            double image_work, double step_work)
{
    for (int i = 0; i < n; i++) work[i] = steps[i];
    return (sat_batch_work){.work = work, .steps = steps, .image = image, .n = n,
                            .image_work = image_work, .step_work = step_work};
}

/* The shares of `size` ranks: [cut[r], cut[r+1]). */
static void shares(const sat_batch_work *bw, int whole, int size, int *cut)
{
    for (int r = 0; r < size; r++) {
        int lo, hi;
        sat_epoch_share(bw, whole, r, size, &lo, &hi);
        if (r == 0) assert_int_equal(lo, 0);
        else assert_int_equal(lo, cut[r]); /* consecutive: each starts where the last ended */
        assert_true(hi >= lo);
        cut[r] = lo, cut[r + 1] = hi;
    }
    assert_int_equal(cut[size], bw->n);
}

/* Where 2 ranks cut a batch (whole_images 0). */
static int cut_in_two(const int *steps, const int *image, int n, double image_work,
                      double step_work)
{
    double work[32];
    int cut[3];
    sat_batch_work bw = batch(steps, image, work, n, image_work, step_work);
    shares(&bw, 0, 2, cut);
    return cut[1];
}

/* 4 images of 5 captions; image 0's captions are long. */
static void test_shares_balanced_by_work(void **state)
{
    (void)state;
    double work[20];
    int steps[20], image[20], cut[6];
    for (int i = 0; i < 20; i++) steps[i] = i < 5 ? 30 : 10, image[i] = i / 5;
    /* by caption: 150 + 150 words, not 10 captions each (250 against 50) */
    assert_int_equal(cut_in_two(steps, image, 20, 0, 0), 5);
    /* an image's projection (50) counts once per range holding its captions:
     * cutting inside image 1, 150 + 30 + 2 x 50 | 120 + 3 x 50, beats
     * cutting between images, 200 | 300 */
    assert_int_equal(cut_in_two(steps, image, 20, 50, 0), 8);
    /* a range pays 1 per step of its longest caption: of 8, 2, 2, 2, 2, 2, 2
     * words, 8 + 8 | 12 + 2 beats the even words, 10 + 8 | 10 + 2 */
    const int st[7] = {8, 2, 2, 2, 2, 2, 2}, im[7] = {0, 1, 2, 3, 4, 5, 6};
    assert_int_equal(cut_in_two(st, im, 7, 0, 0), 2);
    assert_int_equal(cut_in_two(st, im, 7, 0, 1), 1);
    sat_batch_work bw = batch(steps, image, work, 20, 0, 0);
    /* whole images, 3 ranks: image 0 (150) then images 1-3 (150), the third
     * share empty: no cut makes the largest share less than 150 */
    shares(&bw, 1, 3, cut);
    assert_int_equal(cut[1], 5);
    assert_int_equal(cut[2], 20);
    /* one rank: everything; more ranks than images: whole images still */
    shares(&bw, 0, 1, cut);
    shares(&bw, 1, 5, cut);
    for (int r = 0; r < 5; r++)
        if (cut[r + 1] > cut[r]) assert_int_equal(cut[r] % 5, 0);
}

/* Equal captions: the largest share is the fewest captions possible. */
static void test_equal_captions_equal_shares(void **state)
{
    (void)state;
    double work[13];
    int steps[13], image[13], cut[5];
    for (int i = 0; i < 13; i++) steps[i] = 1, image[i] = i;
    sat_batch_work bw = batch(steps, image, work, 13, 0, 0);
    for (int size = 2; size <= 4; size++) {
        shares(&bw, 0, size, cut);
        int most = 0;
        for (int r = 0; r < size; r++)
            if (cut[r + 1] - cut[r] > most) most = cut[r + 1] - cut[r];
        assert_int_equal(most, (13 + size - 1) / size);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_caption_once_whole_images),
        cmocka_unit_test(test_repeatable_by_seed_and_epoch),
        cmocka_unit_test(test_caption_seeds),
        cmocka_unit_test(test_shares_balanced_by_work),
        cmocka_unit_test(test_equal_captions_equal_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
