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

#include "sat/captioner.h"

/* An image: feats holds its f->views maps (views × L × D; sat_features_views). */
typedef void (*sat_features_fn)(void *ctx, const sat_features *f, const float *feats);
/* Images read ahead, captioned together: f[0..n) and feats (n × views × L ×
 * D) go to the stage before fn is called for each of them in order (f's data
 * is gone by then: feats has it).  A batch's images have one view count: an
 * image of another count makes the images read before it a batch of their
 * own (the output is the same). */
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

/* ---- the options every captioning stage has (sat-decode, sat-beam, sat-attend) ---- */
typedef struct {
    sat_model_list models;   /* -m */
    sat_attend_mode attention;
    unsigned long seed;
    int max_len;
    int text;                /* -f: 1 text, 0 msgpack, -1 (until sat_stage_options_end): by stdout */
    int batch, keep_features, quiet;
    int threads;             /* an ensemble's models stepped at once (0: one per CPU) */
    size_t max_record;
} sat_stage_options;

/* The defaults; a stage changes max_len, or others, after. */
#define SAT_STAGE_DEFAULTS \
    ((sat_stage_options){.attention = SAT_ATTEND_SOFT, .seed = 1, .max_len = 30, .text = -1, \
                         .batch = SAT_DEFAULT_BATCH})

/* Their entries of a getopt_long table, and their short options. */
#define SAT_STAGE_LONGOPTS \
    {"model", required_argument, 0, 'm'},    {"attention", required_argument, 0, 'A'}, \
    {"seed", required_argument, 0, 's'},     {"max-len", required_argument, 0, 'L'}, \
    {"format", required_argument, 0, 'f'},   {"batch", required_argument, 0, 'B'}, \
    {"keep-features", no_argument, 0, 'K'},  {"max-record", required_argument, 0, 'M'}, \
    {"threads", required_argument, 0, 'j'}, \
    {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'}, \
    {"version", no_argument, 0, 'V'}
#define SAT_STAGE_SHORTOPTS "m:f:qhV"

/* Their --help lines: -m (first among the decoder's options) and the last ones. */
#define SAT_STAGE_USAGE_MODEL \
    "  -m, --model FILE       decoder model, or the name of an installed one, e.g.\n" \
    "                         sat-decoder.satm, the soft one (default: the ensemble\n" \
    "                         " SAT_DEFAULT_DECODERS_TEXT ");\n" \
    "                         repeat for an ensemble (their log-probabilities averaged)\n"
#define SAT_STAGE_USAGE_FORMAT \
    "  -f, --format F         text or msgpack; default: text on a terminal, msgpack otherwise\n"
#define SAT_STAGE_USAGE_END \
    "      --threads N        step an ensemble's models on up to N threads at once\n" \
    "                         (default: one per CPU; the same output)\n" \
    "      --keep-features    pass the features records through as well\n" \
    "      --max-record N     refuse input records larger than N bytes\n" \
    "  -q, --quiet            no progress meter on stderr\n" \
    "  -h, --help             show this help and exit\n" \
    "  -V, --version          show the version and exit\n"

/* One option of getopt's (c, arg) if it is a stage option (-h prints usage):
 * 1, else 0 (the stage's own).  A bad argument is a usage error (exit 2). */
int sat_stage_option(sat_stage_options *o, int c, const char *arg, const char *usage);
/* After the options: the format by stdout when -f was not given. */
void sat_stage_options_end(sat_stage_options *o);
/* The captioner of a stage's -m options (the program's fatal error if one
 * cannot be loaded), stepping its models on --threads threads. */
sat_captioner *sat_stage_captioner(const sat_stage_options *o);
/* The pipeline of a stage's options: out when msgpack is written (text: none). */
sat_pipeline sat_stage_pipeline(const sat_stage_options *o, const sat_captioner *cap,
                                sat_writer *out);

/* Run over the streams named by files[0..n) ("-" = stdin; n == 0: stdin).
 * Problems are reported with sat_warn (the exit status says so at the end). */
void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n);

#endif
