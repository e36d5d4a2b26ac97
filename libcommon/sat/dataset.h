/* dataset.h — the training data of sat-train: a caption file, the train
 * and dev splits, the vocabulary of the train split, and the features of
 * their images, read from feature caches (sat-encode -o) that stay mapped.
 *
 *     sat_dataset d;
 *     sat_dataset_options o = {.captions = "Flickr8k.token.txt", .train_list = "train.txt",
 *                              .dev_list = "dev.txt", .features = paths, .nfeatures = n,
 *                              .min_count = 5, .max_vocab = 50000, .max_len = 30,
 *                              .info = stderr};
 *     if (sat_dataset_load(&d, &o, err, sizeof err) < 0) die(err);
 *     for (int c = 0; c < d.ntrain; c++)        ...d.train[c].tokens, d.train[c].image...
 *     sat_dataset_image_f32(&d.images[d.dev[0]], feats);   // L×D floats
 *     sat_epoch_plan p;                                    // batches of training captions
 *     sat_dataset_plan_epoch(&p, &d, 64, seed, epoch);
 *     sat_dataset_batch bb = {0};
 *     sat_decoder_batch batch;
 *     sat_dataset_fill_batch(&bb, &d, p.order + p.start[0], p.start[1] - p.start[0], ..., &batch);
 *     sat_dataset_batch_free(&bb);
 *     sat_dataset_free(&d);
 *
 * What it holds:
 *   - the vocabulary: the train split's words seen at least min_count times
 *     (at most max_vocab of them, vocab.h);
 *   - images: each train or dev image found in a features stream (the first
 *     record of a name wins; records of other images are passed over), its
 *     annotation vectors left where they lie in the mapped cache (f16, f32
 *     or u8) and converted when a batch needs them, so memory does not grow
 *     with the caches; all have the same L (= h·w) and D (= c);
 *   - train: every caption of a train image that has features, encoded as
 *     <start> w_1 … w_n <end>, in split order then caption order; captions
 *     longer than max_len words, or empty, are skipped (and counted);
 *   - dev: the dev images with features and captions, in split order;
 *   - refs (with .references set): the references of every train image
 *     that has training captions, for self-critical training's CIDEr-D.
 *
 * Problems that leave no data (an unreadable file, a cache cut short,
 * features of two sizes, no training caption) are errors: -1 with a one-line
 * message in err.  Lesser ones (bad caption lines, a bad features record,
 * images without features) are reported on .info (bad records via
 * sat_warn) and skipped.
 */
#ifndef SAT_DATASET_H
#define SAT_DATASET_H

#include <stddef.h>
#include <stdio.h>

#include "sat/captions.h"
#include "sat/decoder.h"
#include "sat/epoch.h"
#include "sat/metrics.h"
#include "sat/rng.h"
#include "sat/stream.h"
#include "sat/vocab.h"

/* One image: its name and its annotation vectors in the cache. */
typedef struct {
    char *name;              /* basename of the features id */
    sat_features view;       /* h = L, w = 1, c = D; data points into the cache */
    int mapped;              /* the cache is a mapped file (not memory of ours) */
} sat_dataset_image;

/* One training caption. */
typedef struct {
    int image;               /* index into images */
    int len;                 /* words + 1 (<end>): the number of targets */
    int *tokens;             /* len + 1: <start> w_1 … w_n <end> */
} sat_dataset_caption;

typedef struct sat_dataset_cache sat_dataset_cache;

typedef struct {
    sat_vocab *vocab;
    sat_dataset_image *images;
    int nimages, L, D;
    sat_dataset_cache *caches; /* the --features files, mapped or read */
    int ncaches;
    sat_strtab image_index;  /* name -> index into images */
    sat_dataset_caption *train;
    int ntrain;
    int *dev;                /* indices of dev images */
    int ndev;
    sat_refs captions; /* of the train and dev images */
    int *ref_index;          /* [nimages] index of the image in `refs`, -1 if not a train image */
    sat_metrics *refs;       /* .references: the train images' references (CIDEr-D df) */
    char encoder[300];       /* name and weights sha of the encoder, from the features */
} sat_dataset;

typedef struct {
    const char *captions;          /* caption file (captions.h), "-": stdin */
    const char *train_list;        /* split list or "@SPLIT" (sat_split_resolve) */
    const char *dev_list;          /* NULL: no dev split */
    const char *const *features;   /* features streams, regular files are mapped */
    int nfeatures;
    int min_count, max_vocab;      /* vocabulary */
    int max_len;                   /* longest training caption, in words */
    int references, references_eos; /* fill refs; the caption's end a word in CIDEr-D */
    FILE *info;                    /* where to say what was skipped, and the sizes */
} sat_dataset_options;

/* 0, or -1 with err (d then holds nothing and needs no free). */
int sat_dataset_load(sat_dataset *d, const sat_dataset_options *o, char *err, size_t errlen);
void sat_dataset_free(sat_dataset *d);

/* An image's features as L×D floats; then its pages of the cache are given
 * back (they stay in the page cache for the next epoch, but not in this
 * process's resident set). */
void sat_dataset_image_f32(const sat_dataset_image *im, float *out);

/* An epoch's batches of the training captions (epoch.h). */
void sat_dataset_plan_epoch(sat_epoch_plan *p, const sat_dataset *d, int batch, unsigned long seed,
                            int epoch);

/* Scratch for one batch, grown as needed: its images' features as f32, the
 * token matrix and each caption's generator.  {0} before the first use. */
typedef struct {
    float *feats;
    int *image, *tokens, *local;
    sat_rng *rngs;
    int cap_rows, cap_tokens;
} sat_dataset_batch;

/* The B training captions (indices into d->train) as a decoder batch whose
 * memory is bb's: an image's captions share its row of features (and so
 * its attention projection); each caption's generator is seeded by
 * sat_epoch_caption_seed(seed, epoch, caption).  total: the whole batch's
 * captions when these are one process's share of it. */
void sat_dataset_fill_batch(sat_dataset_batch *bb, const sat_dataset *d, const int *captions, int B,
                            int total, unsigned long seed, int epoch, sat_decoder_batch *out);
void sat_dataset_batch_free(sat_dataset_batch *bb);

#endif
