/* scst.h — self-critical sequence training (Rennie et al., CVPR 2017):
 * REINFORCE on a caption's CIDEr-D against its image's references, with the
 * CIDEr-D of the model's own greedy caption as the baseline.  For an image
 * I with samples w^1..w^S drawn from the model and its greedy caption ŵ,
 *
 *   ∇L = −(1/S) Σ_s (r(w^s) − r(ŵ)) ∇ log p(w^s | I)
 *
 * which the decoder's weighted teacher-forced pass computes when each
 * sample is a row of a batch with weight r(w^s) − r(ŵ)
 * (sat_decoder_batch.weight): samples better than greedy decoding become
 * more probable, worse ones less.  The captions are drawn without dropout,
 * so the pass that takes the gradient (dropout 0) is the policy that drew
 * them.
 *
 * The baseline may instead be the mean reward of the image's other samples,
 * r̄_{−s} = Σ_{j≠s} r(w^j) / (S − 1) (Luo 2020, "a better variant of
 * self-critical sequence training"), which needs no extra caption and keeps
 * the weights centred when samples score far below greedy decoding (a
 * flat, high-entropy model): the greedy baseline then weighs nearly every
 * sample down.  Either way the estimator stays unbiased (the baseline of a
 * sample does not depend on it).
 *
 *     sat_scst s = {.dec = dec, .vocab = vocab, .cider = cider, .samples = 5, .max_len = 16};
 *     sat_scst_rewards r = sat_scst_image(&s, feats, ref_image, rng, tokens, NULL, weight);
 *     // tokens: 5 rows of SAT_SCST_ROW(16) ints, weight: 5 floats
 *
 * Hard attention (locations not NULL): each sample also draws one location
 * per step from α (§4.1), and the policy is over words and locations
 * together; the same weight r(w^s) − b then multiplies
 * ∇[log p(w^s | s̃^s, I) + log p(s̃^s | I)] (sat_decoder_batch.locations), the
 * paper's REINFORCE of the locations with CIDEr-D as the reward instead of
 * log p(y|s̃, a).  The greedy caption still reads the expected context.
 */
#ifndef SAT_SCST_H
#define SAT_SCST_H

#include <stddef.h>

#include "sat/decoder.h"
#include "sat/metrics.h"
#include "sat/rng.h"
#include "sat/vocab.h"

#define SAT_SCST_MAX_SAMPLES 64
/* Tokens in one batch row: <start>, up to max_len words, <end> (T = max_len + 1). */
#define SAT_SCST_ROW(max_len) ((max_len) + 2)

typedef enum { SAT_SCST_GREEDY, SAT_SCST_MEAN } sat_scst_baseline;

typedef struct {
    const sat_decoder *dec;
    const sat_vocab *vocab;
    sat_cider *cider;   /* rewards: CIDEr-D against the corpus's references */
    int samples;        /* S, 1..SAT_SCST_MAX_SAMPLES */
    int max_len;        /* words per caption */
    sat_scst_baseline baseline; /* GREEDY (Rennie et al.) or MEAN (S >= 2) */
} sat_scst;

typedef struct {
    double greedy;      /* r(ŵ), the greedy caption's reward (the GREEDY baseline) */
    double mean;        /* mean of r(w^s) */
} sat_scst_rewards;

/* Draw the greedy caption and S samples of the image feats (L × D; no
 * dropout; samples may hold <unk>, as the model's distribution does), score
 * them against the references of the cider corpus's image ref_image, and
 * write the S samples as batch rows (tokens: S × SAT_SCST_ROW(max_len),
 * padded with -1) with their weights r(w^s) − baseline (weight: S).  With
 * locations (S × (SAT_SCST_ROW(max_len) − 1)), the samples draw a location per
 * step too, written there as sat_decoder_batch.locations rows. */
sat_scst_rewards sat_scst_image(const sat_scst *s, const float *feats, size_t ref_image,
                                sat_rng *rng, int *tokens, int *locations, float *weight);

#endif
