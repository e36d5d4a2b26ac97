/* decoder_case.h — what the decoder tests (test_decoder.c, test_hard.c)
 * share: random fills, a decoder with larger-than-init weights (gradients of
 * every part well above float noise, α far from uniform), and a small batch:
 * three captions of two images, the second caption ending early (padded), the
 * images unsorted on purpose.  Include after cmocka.h. */
#ifndef SAT_TEST_DECODER_CASE_H
#define SAT_TEST_DECODER_CASE_H

#include "sat/decoder.h"
#include "gradient_check.h"
#include "sat/rng.h"
#include "sat/util.h"

enum { TB = 3, TT = 4, TIMG = 2 };

static sat_decoder *new_decoder(sat_decoder_config cfg, uint64_t seed)
{
    char err[SAT_ERR_MAX];
    sat_decoder *dec = sat_decoder_new(cfg, err, sizeof err);
    assert_non_null(dec);
    sat_rng rng;
    sat_rng_seed(&rng, seed);
    sat_decoder_init_params(dec, &rng);
    for (size_t i = 0; i < dec->nparams; i++) dec->params[i] *= 2.0f;
    return dec;
}

/* The batch over tokens (TB × (TT + 1)) and image (TB); *feats is malloc'd
 * (TIMG × L × D), the decoder made by new_decoder. */
static inline void decoder_case_fill(sat_decoder_config cfg, uint64_t seed, sat_decoder **dec,
                                     float **feats, int *tokens, int *image, sat_decoder_batch *batch)
{
    sat_rng rng;
    sat_rng_seed(&rng, seed);
    *dec = new_decoder(cfg, seed);
    *feats = sat_xmalloc((size_t)TIMG * cfg.L * cfg.D * sizeof(float));
    fill_random(*feats, (size_t)TIMG * cfg.L * cfg.D, 0, 2, &rng);
    const int lens[TB] = { TT, 2, TT };
    for (int b = 0; b < TB; b++)
        for (int t = 0; t <= TT; t++)
            tokens[b * (TT + 1) + t] = t <= lens[b] ? (int)sat_rng_below(&rng, (uint32_t)cfg.V) : -1;
    image[0] = 1, image[1] = 0, image[2] = 1;
    *batch = (sat_decoder_batch){ .feats = *feats, .n_images = TIMG, .image = image,
                                  .tokens = tokens, .B = TB, .T = TT };
}

/* One loss-and-gradient call of a test (soft or hard attention); returns the loss. */
typedef double (*decoder_case_step)(sat_decoder *dec, const sat_decoder_batch *batch, void *ctx);

/* The captions of image m of whole as a batch of their own (its image's
 * features, its token rows, copies of their generators from rngs), averaged
 * over all of whole's captions: one process's share of the batch. */
static inline sat_decoder_batch decoder_case_share(const sat_decoder_batch *whole,
                                                   const sat_rng *rngs, size_t LD, int m,
                                                   int *tokens, int *image, sat_rng *share_rngs)
{
    const size_t row = (size_t)whole->T + 1;
    int n = 0;
    for (int r = 0; r < whole->B; r++) {
        if (whole->image[r] != m) continue;
        memcpy(tokens + n * row, whole->tokens + r * row, row * sizeof(int));
        image[n] = 0;
        share_rngs[n++] = rngs[r];
    }
    return (sat_decoder_batch){ .feats = whole->feats + m * LD, .n_images = 1, .image = image,
                                .tokens = tokens, .B = n, .T = whole->T, .rngs = share_rngs,
                                .total = whole->B };
}

/* With a generator per caption (sat_decoder_batch.rngs) and the loss averaged
 * over the whole batch (.total), the batch split by image, one call per share,
 * gives the loss and gradients of the whole batch in one call (sat-train
 * under mpirun), dropout and drawn locations included. */
static inline void decoder_case_check_split(sat_decoder *dec, const sat_decoder_batch *whole,
                                            decoder_case_step step, void *ctx)
{
    sat_rng rngs[TB], used[TB];
    for (int r = 0; r < TB; r++) sat_rng_seed(&rngs[r], 1000 + (uint64_t)r);
    memcpy(used, rngs, sizeof rngs);
    sat_decoder_batch b = *whole;
    b.rngs = used;
    sat_decoder_zero_grad(dec);
    double loss = step(dec, &b, ctx);
    float *g = sat_xmalloc(dec->nparams * sizeof(float));
    memcpy(g, dec->grads, dec->nparams * sizeof(float));
    sat_decoder_zero_grad(dec);
    double parts = 0;
    for (int m = 0; m < whole->n_images; m++) {
        int tokens[TB * (TT + 1)], image[TB];
        sat_rng share_rngs[TB];
        sat_decoder_batch share = decoder_case_share(whole, rngs, (size_t)dec->cfg.L * dec->cfg.D,
                                                     m, tokens, image, share_rngs);
        parts += step(dec, &share, ctx);
    }
    assert_true(fabs(loss - parts) <= 1e-5 * (1 + fabs(loss)));
    size_t nonzero = 0;
    for (size_t i = 0; i < dec->nparams; i++) {
        assert_true(fabsf(g[i] - dec->grads[i]) <= 1e-5f * (1 + fabsf(g[i])));
        nonzero += g[i] != 0;
    }
    assert_true(nonzero > dec->nparams / 2);
    free(g);
}

#endif
