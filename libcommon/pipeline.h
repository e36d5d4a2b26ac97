/* pipeline.h — the loop every captioning stage runs: read sat streams (files
 * or stdin), hand each `features` record that fits the decoder to a callback
 * as floats, offer every other record to a second callback, pass the records
 * not consumed through unchanged (when there is a record output), report bad
 * records and go on (a features record that is not kept leaves its thumbnail,
 * if it has one, as a `thumbnail` record before what the stage makes of it), with a progress meter on a terminal (images done, and
 * the share of the input read when its size is known).  A kept features record is written before its callback
 * runs, so what a stage makes of an image follows the image's record (a sink
 * such as sat-heatmap meets a thumbnail before the captions that need it).
 * With a batch (batch_fn), images are read ahead and the output is the same,
 * byte for byte, as without.
 */
#ifndef SAT_PIPELINE_H
#define SAT_PIPELINE_H

#include "captioner.h"

typedef void (*sat_features_fn)(void *ctx, const sat_features *f, const float *feats);
/* Images read ahead, captioned together: f[0..n) and feats (n × L × D) go to
 * the stage before fn is called for each of them in order (f's data is gone
 * by then: feats has it). */
typedef void (*sat_batch_fn)(void *ctx, const sat_features *f, const float *feats, int n);
/* A record other than `features` from the stream named `stream`: 1 if the
 * stage consumed it (it is not passed through), else 0. */
typedef int (*sat_record_fn)(void *ctx, const sat_record *rec, const char *stream);

typedef struct {
    const sat_captioner *cap;
    sat_writer *out;         /* pass-through target; NULL in text mode (nothing passes) */
    int keep_features;       /* pass the features records through as well */
    size_t max_record;       /* 0: the default */
    int quiet;               /* no progress meter (progress.h) */
    sat_features_fn fn;
    sat_record_fn other;     /* NULL: every other record passes through */
    sat_batch_fn batch_fn;   /* NULL: fn alone, image by image */
    int batch;               /* with batch_fn: up to this many images read ahead;
                              * what passes through between them waits with them,
                              * and `other` still sees each record when it is read */
    void *ctx;
} sat_pipeline;

/* --batch: images captioned together by default, and at most. */
#define SAT_DEFAULT_BATCH 16
#define SAT_MAX_BATCH 1024
#define SAT_STR_(x) #x
#define SAT_STR(x) SAT_STR_(x) /* for usage texts: SAT_STR(SAT_DEFAULT_BATCH) */
/* The images a --batch argument names; a usage error (exit 2) otherwise. */
int sat_batch_option(const char *arg);

/* Run over the streams named by files[0..n) ("-" = stdin; n == 0: stdin).
 * Problems are reported with sat_warn (the exit status says so at the end). */
void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n);

#endif
