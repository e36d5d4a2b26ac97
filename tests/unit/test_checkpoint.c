/* test_checkpoint.c — training checkpoints (libcommon/sat/checkpoint.h) and the
 * optimizer object (optim.h) they save: weights, both optimizers' moments
 * and every state field back from a file after real updates; a resumed Adam
 * takes the same next step as one never stopped; a checkpoint of the other
 * optimizer, or of another size, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/checkpoint.h"
#include "sat/decoder.h"
#include "sat/rng.h"
#include "sat/util.h"

static const sat_decoder_config cfg = {.L = 3, .D = 5, .E = 4, .H = 6, .A = 4, .V = 9};

static sat_decoder *new_decoder(void)
{
    char err[SAT_ERR_MAX];
    sat_decoder *dec = sat_decoder_new(cfg, err, sizeof err);
    assert_non_null(dec);
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    sat_decoder_init_params(dec, &rng);
    return dec;
}

/* A few updates with made-up gradients, so that every moment is non-zero. */
static void train_a_little(sat_optimizer *opt, sat_decoder *dec, int steps, uint64_t seed)
{
    sat_rng rng;
    sat_rng_seed(&rng, seed);
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < dec->nparams; i++) dec->grads[i] = (float)sat_rng_uniform(&rng) - 0.5f;
        sat_optimizer_update(opt, 1e-3f, dec->params, dec->grads);
    }
}

/* Save m with the moments and state to a temp file and load it back. */
static sat_model *through_a_file(sat_model *m)
{
    char path[] = "/tmp/test_checkpoint.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sat_model_save(m, path, 0);
    char err[SAT_ERR_MAX];
    sat_model *back = sat_model_load(path, SAT_MODEL_VERIFY, err, sizeof err);
    unlink(path);
    assert_non_null(back);
    return back;
}

static void round_trip(sat_optim_kind kind)
{
    sat_decoder *dec = new_decoder();
    sat_optimizer opt;
    sat_optimizer_init(&opt, kind, dec->nparams, 1e-3f);
    train_a_little(&opt, dec, 3, 9);
    sat_train_state ts, got;
    memset(&ts, 0, sizeof ts); /* padding too: compared whole below */
    memset(&got, 0, sizeof got);
    ts.epoch = 2, ts.batch = 17, ts.step = 3, ts.best_bleu4 = 0.21, ts.best_epoch = 1;
    ts.bad_epochs = 1, ts.seed = 1234567, ts.lr = 2.5e-4, ts.scst = 1, ts.hard = 1, ts.baseline = -3.5;
    sat_model *m = sat_decoder_to_model(dec);
    sat_checkpoint_add(m, &opt, &ts);
    sat_model *loaded = through_a_file(m);

    sat_optimizer back;
    sat_optimizer_init(&back, kind, dec->nparams, 1e-3f);
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_checkpoint_read(loaded, &back, &got, err, sizeof err), 0);
    assert_memory_equal(&got, &ts, sizeof ts);
    float *a1, *a2, *b1, *b2;
    size_t n = sat_optimizer_moments(&opt, &a1, &a2);
    assert_int_equal(sat_optimizer_moments(&back, &b1, &b2), n);
    assert_memory_equal(b1, a1, n * sizeof(float));
    if (a2) assert_memory_equal(b2, a2, n * sizeof(float));
    else assert_null(b2);
    sat_decoder *restored = sat_decoder_from_model(loaded, err, sizeof err);
    assert_non_null(restored);
    assert_memory_equal(restored->params, dec->params, dec->nparams * sizeof(float));

    /* The next update from the restored state is the one never stopped would take. */
    train_a_little(&opt, dec, 1, 77);
    train_a_little(&back, restored, 1, 77);
    assert_memory_equal(restored->params, dec->params, dec->nparams * sizeof(float));

    sat_decoder_free(restored);
    sat_optimizer_free(&back);
    sat_model_free(loaded);
    sat_model_free(m);
    sat_optimizer_free(&opt);
    sat_decoder_free(dec);
}

static void test_adam_round_trip(void **state)
{
    (void)state;
    round_trip(SAT_OPTIM_ADAM);
}

static void test_rmsprop_round_trip(void **state)
{
    (void)state;
    round_trip(SAT_OPTIM_RMSPROP);
}

static void test_refuses_other_optimizer_or_size(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder();
    sat_optimizer adam, rms, small;
    sat_optimizer_init(&adam, SAT_OPTIM_ADAM, dec->nparams, 1e-3f);
    sat_optimizer_init(&rms, SAT_OPTIM_RMSPROP, dec->nparams, 1e-3f);
    sat_optimizer_init(&small, SAT_OPTIM_ADAM, dec->nparams - 1, 1e-3f);
    sat_train_state ts = {.seed = 1, .lr = 1e-3}, got = ts;
    sat_model *m = sat_decoder_to_model(dec);
    sat_checkpoint_add(m, &adam, &ts);
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_checkpoint_read(m, &rms, &got, err, sizeof err), -1);
    assert_string_equal(err, "was made with another optimizer");
    assert_int_equal(sat_checkpoint_read(m, &small, &got, err, sizeof err), -1);
    assert_string_equal(err, "has no optimizer state of the right size");
    /* A plain model file (no moments, no state) is not a checkpoint. */
    sat_model *plain = sat_decoder_to_model(dec);
    assert_int_equal(sat_checkpoint_read(plain, &adam, &got, err, sizeof err), -1);
    sat_model_free(plain);
    sat_model_free(m);
    sat_optimizer_free(&small);
    sat_optimizer_free(&rms);
    sat_optimizer_free(&adam);
    sat_decoder_free(dec);
}

/* sat_model_set_config replaces an entry rather than adding a second. */
static void test_set_config_replaces(void **state)
{
    (void)state;
    sat_decoder *dec = new_decoder();
    sat_model *m = sat_decoder_to_model(dec);
    int n = m->nconfig;
    sat_model_set_config(m, "train.lr", 1);
    sat_model_set_config(m, "train.lr", 2);
    assert_int_equal(m->nconfig, n + 1);
    assert_true(sat_model_config(m, "train.lr", 0) == 2);
    sat_model_free(m);
    sat_decoder_free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_round_trip),
        cmocka_unit_test(test_rmsprop_round_trip),
        cmocka_unit_test(test_refuses_other_optimizer_or_size),
        cmocka_unit_test(test_set_config_replaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
