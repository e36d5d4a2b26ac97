/* checkpoint.c — see checkpoint.h. */
#include "sat/checkpoint.h"

#include <string.h>

#include "sat/util.h"

void sat_checkpoint_add(sat_model *m, const sat_optimizer *opt, const sat_train_state *ts)
{
    float *first, *second;
    size_t n = sat_optimizer_moments(opt, &first, &second);
    sat_model_add_tensor(m, "optimizer.m", first, n);
    sat_model_add_tensor(m, "optimizer.v", second, n); /* RMSProp: zeros, one layout for both */
    sat_model_set_config(m, "train.epoch", ts->epoch);
    sat_model_set_config(m, "train.batch", (double)ts->batch);
    sat_model_set_config(m, "train.step", (double)ts->step);
    sat_model_set_config(m, "train.best_bleu4", ts->best_bleu4);
    sat_model_set_config(m, "train.best_epoch", ts->best_epoch);
    sat_model_set_config(m, "train.bad_epochs", ts->bad_epochs);
    sat_model_set_config(m, "train.seed", (double)ts->seed);
    sat_model_set_config(m, "train.rmsprop", opt->kind == SAT_OPTIM_RMSPROP);
    sat_model_set_config(m, "train.lr", ts->lr);
    if (ts->scst) sat_model_set_config(m, "train.scst", 1);
    if (ts->hard) {
        sat_model_set_config(m, "train.hard", 1);
        sat_model_set_config(m, "train.baseline", ts->baseline);
    }
}

/* Copy tensor `name` of m into dst (n floats; dst NULL: only check it). */
static int read_moments(const sat_model *m, const char *name, float *dst, size_t n)
{
    int i = sat_model_find_tensor(m, name);
    if (i < 0 || m->tensors[i].count != n) return -1;
    if (dst) memcpy(dst, m->params + m->tensors[i].offset, n * sizeof(float));
    return 0;
}

int sat_checkpoint_read(const sat_model *m, sat_optimizer *opt, sat_train_state *ts, char *err,
                        size_t errlen)
{
    if ((int)sat_model_config(m, "train.rmsprop", -1) != (opt->kind == SAT_OPTIM_RMSPROP))
        return sat_fail(err, errlen, "was made with another optimizer");
    float *first, *second;
    size_t n = sat_optimizer_moments(opt, &first, &second);
    if (read_moments(m, "optimizer.m", first, n) < 0 || read_moments(m, "optimizer.v", second, n) < 0)
        return sat_fail(err, errlen, "has no optimizer state of the right size");
    ts->epoch = (int)sat_model_config(m, "train.epoch", 0);
    ts->batch = (long)sat_model_config(m, "train.batch", 0);
    ts->step = (long)sat_model_config(m, "train.step", 0);
    ts->best_bleu4 = sat_model_config(m, "train.best_bleu4", -1);
    ts->best_epoch = (int)sat_model_config(m, "train.best_epoch", -1);
    ts->bad_epochs = (int)sat_model_config(m, "train.bad_epochs", 0);
    ts->seed = (unsigned long)sat_model_config(m, "train.seed", (double)ts->seed);
    ts->lr = sat_model_config(m, "train.lr", ts->lr);
    ts->scst = (int)sat_model_config(m, "train.scst", 0);
    ts->hard = (int)sat_model_config(m, "train.hard", 0);
    ts->baseline = sat_model_config(m, "train.baseline", 0);
    sat_optimizer_set_step(opt, ts->step);
    return 0;
}
