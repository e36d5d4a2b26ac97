/* decoder_case.h — what the decoder tests (test_decoder.c, test_hard.c)
 * share: random fills, a decoder with larger-than-init weights (gradients of
 * every part well above float noise, α far from uniform), and a small batch:
 * three captions of two images, the second caption ending early (padded), the
 * images unsorted on purpose.  Include after cmocka.h. */
#ifndef SAT_TEST_DECODER_CASE_H
#define SAT_TEST_DECODER_CASE_H

#include "decoder.h"
#include "rng.h"
#include "util.h"

enum { TB = 3, TT = 4, TIMG = 2 };

static void fill_random(float *x, size_t n, float lo, float hi, sat_rng *rng)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * sat_rng_uniform(rng);
}

static sat_decoder *new_decoder(sat_decoder_config cfg, uint64_t seed)
{
    char err[200];
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

#endif
