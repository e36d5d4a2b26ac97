/* test_dataset.c — sat-train's data (libcommon/sat/dataset.h) on the committed
 * fixtures of tests/data (scripts/make-test-data.sh): 20 captions of four
 * images, five each; train = 1001_dog, 1002_boy; dev = 1003_dog; their
 * 3x3x8 f16 features.  The vocabulary, the captions per split, the features
 * of every image, the references, and bad inputs that end in one clear
 * error with nothing left to free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/dataset.h"
#include "sat/util.h"

#define DATA(name) SAT_TEST_DATA "/" name

static const char *const fixture_features[] = {DATA("features.sat")};

/* The fixtures' options: train and dev splits, words seen twice. */
static sat_dataset_options fixtures(FILE *info)
{
    return (sat_dataset_options){.captions = DATA("captions.txt"), .train_list = DATA("train.txt"),
                                 .dev_list = DATA("dev.txt"), .features = fixture_features,
                                 .nfeatures = 1, .min_count = 2, .max_vocab = 50000,
                                 .max_len = 30, .info = info};
}

static FILE *quiet; /* /dev/null, the tests' .info */

static int open_quiet(void **state)
{
    quiet = fopen("/dev/null", "w");
    return quiet ? 0 : -1;
}

static int close_quiet(void **state)
{
    return fclose(quiet);
}

static void load_ok(sat_dataset *d, const sat_dataset_options *o)
{
    char err[SAT_ERR_MAX] = "";
    int rc = sat_dataset_load(d, o, err, sizeof err);
    if (rc) fail_msg("%s", err);
}

/* The fixtures as they are. */
static void load_fixtures(sat_dataset *d)
{
    sat_dataset_options o = fixtures(quiet);
    load_ok(d, &o);
}

/* The words of the train split seen at least twice, most frequent first,
 * after the three special tokens (sat-vocab -m 2 says the same). */
static void test_vocabulary(void **state)
{
    (void)state;
    sat_dataset d;
    load_fixtures(&d);
    static const char *const words[] = {"<end>", "<start>", "<unk>", "a", "the", "in", "dog", "boy",
                                        "is", "black", "water", "grass", "jumps", "pool", "red",
                                        "running", "runs"};
    assert_int_equal(d.vocab->n, 17);
    for (int i = 0; i < 17; i++) assert_string_equal(d.vocab->words[i], words[i]);
    /* "snow" is only in dev captions, "lawn" in one train caption */
    assert_int_equal(sat_vocab_ids(d.vocab, "snow lawn", (int[4]){0}, 4), 2);
    sat_dataset_free(&d);
}

/* Five captions per train image, in split then file order, each
 * <start> words <end>; the dev image; the sizes of the features. */
static void test_splits(void **state)
{
    (void)state;
    sat_dataset d;
    load_fixtures(&d);
    assert_int_equal(d.nimages, 3);
    assert_int_equal(d.L, 9);
    assert_int_equal(d.D, 8);
    assert_int_equal(d.ntrain, 10);
    assert_int_equal(d.ndev, 1);
    assert_string_equal(d.images[d.dev[0]].name, "1003_dog.jpg");
    for (int c = 0; c < 10; c++)
        assert_string_equal(d.images[d.train[c].image].name, c < 5 ? "1001_dog.jpg" : "1002_boy.jpg");
    /* "A black dog runs on the grass ." */
    const sat_dataset_caption *first = &d.train[0];
    int want[] = {SAT_VOCAB_START, 3, 9, 6, 16, SAT_VOCAB_UNK, 4, 11, SAT_VOCAB_END};
    assert_int_equal(first->len, 8);
    assert_memory_equal(first->tokens, want, sizeof want);
    assert_null(d.refs);
    assert_true(strstr(d.encoder, "synthetic ") == d.encoder);
    sat_dataset_free(&d);
}

/* Captions longer than max_len words are skipped, and said so. */
static void test_max_len(void **state)
{
    (void)state;
    FILE *info = tmpfile();
    assert_non_null(info);
    sat_dataset_options o = fixtures(info);
    o.max_len = 6; /* 3 of the 10 train captions have at most 6 words */
    sat_dataset d;
    load_ok(&d, &o);
    assert_int_equal(d.ntrain, 3);
    for (int c = 0; c < d.ntrain; c++) assert_true(d.train[c].len <= 7);
    char text[1024] = "";
    rewind(info);
    size_t n = fread(text, 1, sizeof text - 1, info);
    text[n] = 0;
    assert_non_null(strstr(text, ": 7 training captions longer than 6 words (or empty) skipped\n"));
    sat_dataset_free(&d);
    fclose(info);
}

/* The features of every image, as scripts/make-test-data.sh made them:
 * 2·centre + 0.125·((7k + 5y + 3x + c) mod 5) on a dog's first four
 * channels (a boy's last four), 0.125·(...) elsewhere; centre 1 at the
 * middle cell, 0.25 around it. */
static void test_features(void **state)
{
    (void)state;
    sat_dataset_options o = fixtures(quiet);
    o.dev_list = DATA("test.txt");
    sat_dataset d;
    load_ok(&d, &o);
    assert_int_equal(d.nimages, 3);
    const char *names[] = {"1001_dog.jpg", "1002_boy.jpg", "1004_boy.jpg"};
    const int k[] = {0, 1, 3};
    float v[72];
    for (int i = 0; i < 3; i++) {
        long im = sat_strtab_find(&d.image_index, names[i]);
        assert_true(im >= 0);
        sat_dataset_image_f32(&d.images[im], v);
        int dog = strstr(names[i], "dog") != NULL;
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                for (int c = 0; c < 8; c++) {
                    float centre = y == 1 && x == 1 ? 1.0f : 0.25f, on = (c < 4) == dog ? 2.0f : 0;
                    float want = on * centre + 0.125f * (float)((k[i] * 7 + y * 5 + x * 3 + c) % 5);
                    assert_float_equal(v[(y * 3 + x) * 8 + c], want, 1e-6);
                }
    }
    sat_dataset_free(&d);
}

/* The references of the train images, for CIDEr-D; none for dev. */
static void test_references(void **state)
{
    (void)state;
    sat_dataset_options o = fixtures(quiet);
    o.references = 1;
    sat_dataset d;
    load_ok(&d, &o);
    assert_non_null(d.refs);
    assert_int_equal(sat_metrics_count(d.refs), 2);
    for (int i = 0; i < d.nimages; i++)
        assert_int_equal(d.ref_index[i], strcmp(d.images[i].name, "1003_dog.jpg") == 0 ? -1
                                         : strcmp(d.images[i].name, "1001_dog.jpg") == 0 ? 0 : 1);
    sat_dataset_free(&d);
}

/* A batch of an epoch's plan: an image's captions share a row of
 * features; the tokens padded with -1 to the longest caption. */
static void test_batch(void **state)
{
    (void)state;
    sat_dataset d;
    load_fixtures(&d);
    sat_epoch_plan p;
    sat_dataset_plan_epoch(&p, &d, 5, 1, 0);
    assert_int_equal(p.nbatches, 2);
    sat_dataset_batch bb = {0};
    for (long b = 0; b < p.nbatches; b++) {
        sat_decoder_batch batch;
        const int *captions = p.order + p.start[b];
        sat_dataset_fill_batch(&bb, &d, captions, 5, 5, 1, 0, &batch);
        assert_int_equal(batch.n_images, 1);
        int T = 0;
        for (int i = 0; i < 5; i++) T = d.train[captions[i]].len > T ? d.train[captions[i]].len : T;
        assert_int_equal(batch.T, T);
        for (int i = 0; i < 5; i++) {
            const sat_dataset_caption *tc = &d.train[captions[i]];
            assert_int_equal(batch.image[i], 0);
            assert_memory_equal(batch.tokens + i * (T + 1), tc->tokens, (size_t)(tc->len + 1) * sizeof(int));
            if (tc->len < T) assert_int_equal(batch.tokens[i * (T + 1) + tc->len + 1], -1);
        }
        float v[72];
        sat_dataset_image_f32(&d.images[d.train[captions[0]].image], v);
        assert_memory_equal(batch.feats, v, sizeof v);
    }
    sat_dataset_batch_free(&bb);
    sat_epoch_plan_free(&p);
    sat_dataset_free(&d);
}

/* A features file of one record: 1001_dog.jpg as a 2x2x8 grid. */
static void write_small_features(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    sat_writer w;
    sat_writer_init(&w, f, path);
    float v[32] = {0};
    sat_features feat = {.id = "1001_dog.jpg", .h = 2, .w = 2, .c = 8, .dtype = SAT_F32,
                         .encoder_name = "synthetic", .encoder_sha256 = "0"};
    sat_features_pack(&w, &feat, v);
    sat_writer_end(&w);
    sat_writer_close(&w); /* closes f */
}

/* Bad inputs: -1 and one line naming the problem (and the file). */
static void expect_error(sat_dataset_options *o, const char *want)
{
    char err[SAT_ERR_MAX] = "";
    sat_dataset d;
    assert_int_equal(sat_dataset_load(&d, o, err, sizeof err), -1);
    if (!strstr(err, want)) fail_msg("error '%s' does not say '%s'", err, want);
    assert_null(strchr(err, '\n'));
    assert_int_equal(d.nimages, 0);
    assert_null(d.vocab);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    sat_dataset_options o = fixtures(quiet);
    o.captions = "/nonexistent/captions.txt";
    expect_error(&o, "/nonexistent/captions.txt: No such file or directory");

    o = fixtures(quiet);
    o.train_list = "/nonexistent/train.txt";
    expect_error(&o, "/nonexistent/train.txt: No such file or directory");

    const char *const missing[] = {"/nonexistent/features.sat"};
    o = fixtures(quiet);
    o.features = missing;
    expect_error(&o, "/nonexistent/features.sat: No such file or directory");

    const char *const captions_only[] = {DATA("decoded.sat")};
    o.features = captions_only;
    expect_error(&o, "no features of train or dev images in the --features streams");

    const char *const text[] = {DATA("captions.txt")};
    o.features = text;
    expect_error(&o, "captions.txt: not a sat stream");

    char small[] = "/tmp/test_dataset.XXXXXX";
    int fd = mkstemp(small);
    assert_true(fd >= 0);
    close(fd);
    write_small_features(small);
    const char *const two_sizes[] = {small, DATA("features.sat")};
    o.features = two_sizes;
    o.nfeatures = 2;
    expect_error(&o, "features.sat: record 1 (1002_boy.jpg): 9x8 features, but earlier ones are 4x8");

    /* a stream cut inside a record */
    FILE *in = fopen(DATA("features.sat"), "rb"), *out = fopen(small, "wb");
    char buf[900];
    assert_int_equal(fread(buf, 1, sizeof buf, in), sizeof buf);
    assert_int_equal(fwrite(buf, 1, sizeof buf, out), sizeof buf);
    fclose(in);
    fclose(out);
    const char *const cut[] = {small};
    o.features = cut;
    o.nfeatures = 1;
    expect_error(&o, "truncated");
    unlink(small);

    o = fixtures(quiet);
    o.dev_list = NULL;
    o.train_list = DATA("dev.txt");
    o.max_len = 3;
    expect_error(&o, "no training captions with features");

    o = fixtures(quiet);
    o.dev_list = DATA("train.txt");
    o.train_list = DATA("dev.txt");
    const char *const dev_only[] = {small};
    write_small_features(small); /* 1001_dog only: the dev split, not the train one */
    o.features = dev_only;
    expect_error(&o, "no training captions with features");
    o = fixtures(quiet);
    o.dev_list = DATA("test.txt");
    o.features = dev_only;     /* now the train split's, and no dev image has features */
    expect_error(&o, "no dev images with features and captions");
    unlink(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocabulary), cmocka_unit_test(test_splits),
        cmocka_unit_test(test_max_len),    cmocka_unit_test(test_features),
        cmocka_unit_test(test_references), cmocka_unit_test(test_batch),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, open_quiet, close_quiet);
}
