/* checkpoint.h — a training checkpoint (spec: formats/model.md, "Training
 * checkpoints"): a decoder model that also carries the optimizer's moments,
 * as tensors "optimizer.m" and "optimizer.v", and the trainer's state, as
 * config entries "train.*", so that a run killed at any point goes on from
 * its last checkpoint with the same weights, moments, batch order and draws.
 *
 *     sat_model *m = ...the decoder as a model file...;
 *     sat_checkpoint_add(m, &opt, &state);
 *     sat_model_save(m, "run/checkpoint.satm", 0);
 *     ...
 *     if (sat_checkpoint_read(m, &opt, &state, err, sizeof err) < 0) die(err);
 */
#ifndef SAT_CHECKPOINT_H
#define SAT_CHECKPOINT_H

#include <stddef.h>

#include "sat/model.h"
#include "sat/optim.h"

/* Where a training run stands, besides weights and moments. */
typedef struct {
    int epoch;               /* epoch in progress (0-based) */
    long batch;              /* batches of that epoch already done */
    long step;               /* optimizer updates */
    double best_bleu4;       /* the best dev BLEU-4 so far, -1 before any */
    int best_epoch, bad_epochs;
    unsigned long seed;      /* of batch orders and draws */
    double lr;               /* the learning rate now (a decay lowers it) */
    int scst, hard;          /* self-critical training; hard attention */
    double baseline;         /* hard attention's REINFORCE baseline b */
} sat_train_state;

/* Add the optimizer's moments and the state to m (a decoder model). */
void sat_checkpoint_add(sat_model *m, const sat_optimizer *opt, const sat_train_state *ts);
/* Restore the moments into opt (initialized, of the kind and size the run
 * uses) and the state; keys that are absent keep ts's values, except those
 * that must be there.  0, or -1 with err completing "FILE ..." ("was made
 * with another optimizer", "has no optimizer state of the right size"). */
int sat_checkpoint_read(const sat_model *m, sat_optimizer *opt, sat_train_state *ts, char *err,
                        size_t errlen);

#endif
