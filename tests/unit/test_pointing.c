/* test_pointing.c — the pointing check and the attention entropy
 * (libcommon/sat/pointing.h): box files, good and bad; peaks inside and outside
 * a box, soft and hard; the centre baseline; words that name nothing;
 * entropy against closed forms. */
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

#include "sat/pointing.h"
#include "sat/util.h"

static char *write_temp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/sat-test-boxes-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static sat_boxes *load_text(const char *text, char *err, size_t errlen)
{
    char *path = write_temp(text);
    sat_boxes *b = sat_boxes_load(path, err, errlen);
    unlink(path);
    return b;
}

/* A 4x4 grid; the dog in the top-left quarter, the ball bottom-right. */
static const char boxes_text[] =
    "# a comment, then a blank line\n"
    "\n"
    "dog.jpg\tdog,dogs\t0 0 0.5 0.5\n"
    "dog.jpg\tball\t0.5 0.5 1 1\n"
    "cat.jpg\tcat\t0.25 0.25 0.75 0.75\r\n";

static void test_box_file(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    sat_boxes *b = load_text(boxes_text, err, sizeof err);
    assert_non_null(b);
    assert_int_equal(sat_boxes_count(b), 3);
    assert_int_equal(sat_boxes_images(b), 2);
    sat_boxes_free(b);

    static const struct { const char *text, *want; } bad[] = {
        { "dog.jpg\tdog\n", ":1: not IMAGE<TAB>WORDS" },
        { "# c\ndog.jpg\tdog,\t0 0 1 1\n", ":2: an empty word" },
        { "dog.jpg\tdog\t0 0 1\n", ":1: the box is not four numbers" },
        { "dog.jpg\tdog\t0 0 1 1 5\n", ":1: the box is not four numbers" },
        { "dog.jpg\tdog\t0.6 0 0.5 1\n", ":1: the box is not 0 <= X0 < X1 <= 1" },
        { "dog.jpg\tdog\t0 0 1 1.5\n", ":1: the box is not 0 <= X0" },
        { "dog.jpg\tdog\tnan 0 1 1\n", ":1: the box is not" },
        { "# nothing\n", ": no boxes" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_null(load_text(bad[i].text, err, sizeof err));
        if (!strstr(err, bad[i].want)) fail_msg("'%s': got '%s'", bad[i].want, err);
    }
    assert_null(sat_boxes_load("/nonexistent/boxes.tsv", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/boxes.tsv"));
}

/* A caption of words whose α peaks at the given cells of a 4x4 grid. */
typedef struct {
    sat_caption_record c;
    float alpha[8 * 16];
    char *words[8];
    int loc[8];
} caption_case;

static void make_caption(caption_case *k, const char *id, const char *const *words,
                         const uint32_t *peaks, int n, int hard)
{
    memset(k, 0, sizeof *k);
    for (int t = 0; t < n; t++) {
        k->words[t] = (char *)words[t];
        for (int i = 0; i < 16; i++) k->alpha[t * 16 + i] = i == (int)peaks[t] ? 0.55f : 0.03f;
        k->loc[t] = (int)peaks[t];
    }
    k->c = (sat_caption_record){ .id = (char *)id, .words = k->words, .nwords = (uint32_t)n,
                                  .alpha = hard ? NULL : k->alpha, .alpha_h = 4, .alpha_w = 4,
                                  .locations = hard ? k->loc : NULL };
}

static void test_pointing(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    sat_boxes *b = load_text(boxes_text, err, sizeof err);
    assert_non_null(b);
    /* cell 5 = (x 1, y 1): centre (0.375, 0.375), in the dog's box;
     * cell 15 = (3, 3) in the ball's; "a" and "grass" name nothing */
    const char *words[] = { "a", "dog", "dogs", "ball", "grass" };
    const uint32_t peaks[] = { 0, 5, 15, 15, 5 };
    for (int hard = 0; hard <= 1; hard++) {
        caption_case k;
        make_caption(&k, "some/dir/dog.jpg", words, peaks, 5, hard);
        sat_pointing p = { 0 };
        sat_pointing_add(&p, b, &k.c);
        assert_int_equal(p.captions, 1);
        assert_int_equal(p.words, 3);      /* dog, dogs, ball */
        assert_int_equal(p.hits, 2);       /* dog and ball; "dogs" looked at the ball */
        assert_int_equal(p.centre_hits, 3); /* (0.5, 0.5) is on both boxes' corner: inside */
    }
    /* the cat's box holds the centre; an image without boxes adds nothing */
    const char *cw[] = { "cat" };
    const uint32_t corner[] = { 0 };
    caption_case k;
    make_caption(&k, "cat.jpg", cw, corner, 1, 0);
    sat_pointing p = { 0 };
    sat_pointing_add(&p, b, &k.c);
    assert_true(p.words == 1 && p.hits == 0 && p.centre_hits == 1);
    make_caption(&k, "bird.jpg", cw, corner, 1, 0);
    sat_pointing_add(&p, b, &k.c);
    assert_true(p.captions == 1 && p.words == 1);
    sat_boxes_free(b);
}

static void test_entropy(void **state)
{
    (void)state;
    const char *words[] = { "a", "b" };
    const uint32_t peaks[] = { 3, 7 };
    caption_case k;
    make_caption(&k, "x.jpg", words, peaks, 2, 0);
    for (int i = 0; i < 16; i++) k.alpha[i] = 1.0f / 16; /* word 0: uniform */
    double sum = 0;
    long n = 0;
    sat_attention_entropy_add(&k.c, &sum, &n);
    assert_int_equal(n, 2);
    double peaked = -(0.55 * log(0.55) + 15 * 0.03 * log(0.03));
    assert_true(fabs(sum - (log(16) + peaked)) < 1e-5);
    /* hard captions carry locations, not α: nothing added */
    make_caption(&k, "x.jpg", words, peaks, 2, 1);
    sat_attention_entropy_add(&k.c, &sum, &n);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_box_file),
        cmocka_unit_test(test_pointing),
        cmocka_unit_test(test_entropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
