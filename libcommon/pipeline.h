/* pipeline.h — the loop every captioning stage runs: read sat streams (files
 * or stdin), hand each `features` record that fits the decoder to a callback
 * as floats, pass every other record through unchanged (when there is a
 * record output), report bad records and go on.
 */
#ifndef SAT_PIPELINE_H
#define SAT_PIPELINE_H

#include "captioner.h"

typedef void (*sat_features_fn)(void *ctx, const sat_features *f, const float *feats);

typedef struct {
    const sat_captioner *cap;
    sat_writer *out;         /* pass-through target; NULL in text mode (nothing passes) */
    int keep_features;       /* pass the features records through as well */
    size_t max_record;       /* 0: the default */
    sat_features_fn fn;
    void *ctx;
} sat_pipeline;

/* Run over the streams named by files[0..n) ("-" = stdin; n == 0: stdin).
 * Problems are reported with sat_warn (the exit status says so at the end). */
void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n);

#endif
