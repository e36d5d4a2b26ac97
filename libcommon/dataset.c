/* dataset.c — the training data of sat-train (dataset.h). */
#include "sat/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sat/util.h"

/* A features file, mapped (or, for a pipe, read) whole. */
struct sat_dataset_cache {
    void *data;
    size_t len;
    int mapped;
};

/* Map a regular file; read anything else (a pipe) into memory. */
static int open_cache(const char *path, sat_dataset_cache *c, char *err, size_t errlen)
{
    *c = (sat_dataset_cache){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sat_fail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        c->data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (c->data == MAP_FAILED) {
            c->data = NULL;
            rc = sat_fail(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        } else {
            c->len = (size_t)st.st_size;
            c->mapped = 1;
        }
    } else {
        rc = sat_read_file(path, (size_t)1 << 40, (unsigned char **)&c->data, &c->len, err, errlen);
    }
    close(fd);
    return rc;
}

static void close_cache(sat_dataset_cache *c)
{
    if (c->mapped) munmap(c->data, c->len);
    else free(c->data);
}

/* Give back the pages of len bytes of a mapped cache at data once read. */
static void release_range(const void *data, size_t len, int mapped)
{
    static long page;
    if (!page) page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)data, hi = lo + len;
    lo = (lo + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page; /* whole pages inside */
    hi = hi / (uintptr_t)page * (uintptr_t)page;
    /* never on memory of ours: MADV_DONTNEED would zero it */
    if (hi > lo && mapped) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ... those of an image's features. */
static void release_pages(const sat_dataset_image *im)
{
    release_range(im->view.data, im->view.data_len, im->mapped);
}

void sat_dataset_image_f32(const sat_dataset_image *im, float *out)
{
    sat_features_to_f32(&im->view, out);
    release_pages(im);
}

/* The first of the images of L×D features, whose encoder names the dataset's. */
static void first_image(sat_dataset *d, const sat_features *feat, int L, int D)
{
    d->L = L, d->D = D;
    snprintf(d->encoder, sizeof d->encoder, "%s %s",
             feat->encoder_name ? feat->encoder_name : "?",
             feat->encoder_sha256 ? feat->encoder_sha256 : "?");
}

static void add_image(sat_dataset *d, const sat_features *feat, const char *name, int mapped)
{
    d->images = sat_xrealloc(d->images, (size_t)(d->nimages + 1) * sizeof *d->images);
    sat_dataset_image *im = &d->images[d->nimages];
    im->name = sat_xstrdup(name);
    im->view = (sat_features){.h = (uint32_t)d->L, .w = 1, .c = (uint32_t)d->D,
                              .dtype = feat->dtype, .scale = feat->scale,
                              .zero_point = feat->zero_point, .data = feat->data,
                              /* view 0, the image: training reads no mirror (a cache of
                               * sat-encode's default trains as one of --no-flip) */
                              .data_len = feat->data_len / sat_features_views(feat)};
    im->mapped = mapped;
    release_range(feat->data, feat->data_len, mapped); /* every view: the record was checked */
    sat_strtab_add(&d->image_index, name, NULL);
    d->nimages++;
}

/* A features record: a wanted image not seen yet joins the dataset.  -1
 * with err when its size is not the earlier images'. */
static int on_record(sat_dataset *d, const sat_record *rec, const char *path, int mapped,
                     const sat_strtab *wanted, char *err, size_t errlen)
{
    if (!sat_record_is(rec, "features")) return 0;
    sat_features feat;
    char why[SAT_ERR_MAX];
    if (sat_features_parse(rec, &feat, why, sizeof why)) {
        sat_warn("%s: %s", path, why);
        return 0;
    }
    const char *name = sat_path_basename(feat.id);
    int L = (int)(feat.h * feat.w), D = (int)feat.c, rc = 0;
    if (sat_strtab_find(wanted, name) >= 0 && sat_strtab_find(&d->image_index, name) < 0) {
        if (d->nimages == 0) first_image(d, &feat, L, D);
        if (L != d->L || D != d->D)
            rc = sat_fail(err, errlen, "%s: record %zu (%s): %dx%d features, but earlier ones are %dx%d",
                          path, rec->index, feat.id, L, D, d->L, d->D);
        else add_image(d, &feat, name, mapped);
    }
    sat_features_free(&feat);
    return rc;
}

/* The wanted images of a features stream; a stream cut short is no
 * training set: an error. */
static int load_features(sat_dataset *d, const char *path, const sat_strtab *wanted, char *err,
                         size_t errlen)
{
    d->caches = sat_xrealloc(d->caches, (size_t)(d->ncaches + 1) * sizeof *d->caches);
    sat_dataset_cache *cache = &d->caches[d->ncaches];
    if (open_cache(path, cache, err, errlen)) return -1;
    d->ncaches++;
    if (cache->mapped) madvise(cache->data, cache->len, MADV_SEQUENTIAL);
    sat_reader *r = sat_reader_open_mem(cache->data, cache->len, path, 0);
    sat_record rec;
    int st, rc = 0;
    while (rc == 0 && (st = sat_reader_next(r, &rec)) != SAT_READ_END) {
        if (st == SAT_READ_OK) rc = on_record(d, &rec, path, cache->mapped, wanted, err, errlen);
        else if (st == SAT_READ_FATAL) rc = sat_fail(err, errlen, "%s", sat_reader_error(r));
        else sat_warn("%s", sat_reader_error(r));
    }
    sat_reader_close(r);
    if (cache->mapped) madvise(cache->data, cache->len, MADV_RANDOM); /* batches pick images */
    return rc;
}

/* The vocabulary from the train split's captions. */
static void build_vocab(sat_dataset *d, const sat_strtab *train, int min_count, int max_vocab)
{
    sat_word_counts wc;
    sat_word_counts_init(&wc);
    for (size_t i = 0; i < d->captions.images.n; i++) {
        if (sat_strtab_find(train, d->captions.images.keys[i]) < 0) continue;
        for (int j = 0; j < d->captions.ncaptions[i]; j++)
            sat_word_counts_add(&wc, d->captions.captions[i][j]);
    }
    d->vocab = sat_vocab_build(&wc, min_count, max_vocab);
    sat_word_counts_free(&wc);
}

/* Caption j of image ci as a training caption of image im; 0 when it is
 * longer than max_len words or empty. */
static int add_caption(sat_dataset *d, long im, long ci, int j, int max_len, int *ids)
{
    int n = sat_vocab_ids(d->vocab, d->captions.captions[ci][j], ids + 1, max_len + 1);
    if (n > max_len || n == 0) return 0;
    d->train = sat_xrealloc(d->train, (size_t)(d->ntrain + 1) * sizeof *d->train);
    sat_dataset_caption *tc = &d->train[d->ntrain++];
    tc->image = (int)im;
    tc->len = n + 1;
    tc->tokens = sat_xmalloc((size_t)(n + 2) * sizeof *tc->tokens);
    tc->tokens[0] = SAT_VOCAB_START;
    memcpy(tc->tokens + 1, ids + 1, (size_t)n * sizeof *ids);
    tc->tokens[n + 1] = SAT_VOCAB_END;
    return 1;
}

/* The train split's captions; returns the number of train images without
 * features or captions, and counts the captions skipped. */
static long collect_train(sat_dataset *d, const sat_strtab *train, int max_len, long *skipped)
{
    int *ids = sat_xmalloc((size_t)(max_len + 2) * sizeof *ids);
    long missing = 0;
    for (size_t s = 0; s < train->n; s++) {
        long im = sat_strtab_find(&d->image_index, train->keys[s]);
        long ci = sat_refs_find(&d->captions, train->keys[s]);
        if (im < 0 || ci < 0) {
            missing++;
            continue;
        }
        for (int j = 0; j < d->captions.ncaptions[ci]; j++)
            *skipped += !add_caption(d, im, ci, j, max_len, ids);
    }
    free(ids);
    return missing;
}

static void collect_captions(sat_dataset *d, const sat_strtab *train, const sat_strtab *dev,
                             int max_len, FILE *info)
{
    long skipped = 0, missing_train = collect_train(d, train, max_len, &skipped), missing_dev = 0;
    d->dev = sat_xmalloc((dev->n ? dev->n : 1) * sizeof *d->dev);
    for (size_t s = 0; s < dev->n; s++) {
        long im = sat_strtab_find(&d->image_index, dev->keys[s]);
        if (im < 0 || sat_refs_find(&d->captions, dev->keys[s]) < 0) missing_dev++;
        else d->dev[d->ndev++] = (int)im;
    }
    if (missing_train || missing_dev)
        fprintf(info, "%s: %ld train and %ld dev images have no features or no captions (skipped)\n",
                sat_progname, missing_train, missing_dev);
    if (skipped)
        fprintf(info, "%s: %ld training captions longer than %d words (or empty) skipped\n",
                sat_progname, skipped, max_len);
}

/* The references of the train images that have training captions. */
static void collect_references(sat_dataset *d, int eos)
{
    d->ref_index = sat_xmalloc((size_t)d->nimages * sizeof *d->ref_index);
    for (int i = 0; i < d->nimages; i++) d->ref_index[i] = -1;
    d->refs = sat_metrics_new();
    if (eos) sat_metrics_end_word(d->refs);
    for (int c = 0; c < d->ntrain; c++) {
        int im = d->train[c].image;
        if (d->ref_index[im] >= 0) continue;
        long ci = sat_refs_find(&d->captions, d->images[im].name);
        d->ref_index[im] = (int)sat_metrics_count(d->refs);
        sat_metrics_add(d->refs, "", (const char *const *)d->captions.captions[ci],
                        d->captions.ncaptions[ci]);
    }
}

/* The splits' names (train, dev, both) and their captions. */
static int load_captions(sat_dataset *d, const sat_dataset_options *o, sat_strtab split[3],
                         char *err, size_t errlen)
{
    sat_caption_file *cf = sat_caption_file_open(o->captions, err, errlen);
    if (!cf) return -1;
    int rc = sat_split_resolve(o->train_list, cf, &split[0], err, errlen) < 0 ||
             (o->dev_list && sat_split_resolve(o->dev_list, cf, &split[1], err, errlen) < 0);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < split[s].n; i++) sat_strtab_add(&split[2], split[s].keys[i], NULL);
    sat_caption_options copt = {&split[2], NULL};
    if (!rc) rc = sat_refs_read(&d->captions, cf, &copt, err, errlen) < 0;
    sat_caption_file_close(cf);
    if (!rc) sat_caption_problems_print(&d->captions.problems, o->captions, o->info);
    return rc ? -1 : 0;
}

/* Everything after the captions: vocabulary, features, training captions. */
static int load_data(sat_dataset *d, const sat_dataset_options *o, const sat_strtab split[3],
                     char *err, size_t errlen)
{
    build_vocab(d, &split[0], o->min_count, o->max_vocab);
    for (int i = 0; i < o->nfeatures; i++)
        if (load_features(d, o->features[i], &split[2], err, errlen)) return -1;
    if (d->nimages == 0)
        return sat_fail(err, errlen, "no features of train or dev images in the --features streams");
    collect_captions(d, &split[0], &split[1], o->max_len, o->info);
    if (d->ntrain == 0) return sat_fail(err, errlen, "no training captions with features");
    if (o->dev_list && d->ndev == 0)
        return sat_fail(err, errlen, "no dev images with features and captions");
    if (o->references) collect_references(d, o->references_eos);
    fprintf(o->info, "%s: %d images (L=%d, D=%d), %d training captions, %d dev images, vocabulary %d\n",
            sat_progname, d->nimages, d->L, d->D, d->ntrain, d->ndev, d->vocab->n);
    return 0;
}

int sat_dataset_load(sat_dataset *d, const sat_dataset_options *o, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    sat_strtab_init(&d->image_index);
    sat_strtab split[3]; /* train, dev, both */
    for (int s = 0; s < 3; s++) sat_strtab_init(&split[s]);
    int rc = load_captions(d, o, split, err, errlen);
    if (!rc) rc = load_data(d, o, split, err, errlen);
    for (int s = 0; s < 3; s++) sat_strtab_free(&split[s]);
    if (rc) sat_dataset_free(d);
    return rc;
}

void sat_dataset_free(sat_dataset *d)
{
    for (int i = 0; i < d->nimages; i++) free(d->images[i].name);
    for (int i = 0; i < d->ncaches; i++) close_cache(&d->caches[i]);
    free(d->caches);
    for (int i = 0; i < d->ntrain; i++) free(d->train[i].tokens);
    free(d->images);
    free(d->train);
    free(d->dev);
    sat_strtab_free(&d->image_index);
    sat_refs_free(&d->captions);
    sat_vocab_free(d->vocab);
    sat_metrics_free(d->refs);
    free(d->ref_index);
    memset(d, 0, sizeof *d);
}

void sat_dataset_plan_epoch(sat_epoch_plan *p, const sat_dataset *d, int batch, unsigned long seed,
                            int epoch)
{
    int *image = sat_xmalloc(((size_t)d->ntrain + 1) * sizeof *image);
    for (int c = 0; c < d->ntrain; c++) image[c] = d->train[c].image;
    sat_epoch_plan_make(p, image, d->ntrain, d->nimages, batch, seed, epoch);
    free(image);
}

/* Room for B captions of up to T targets. */
static void batch_reserve(sat_dataset_batch *bb, const sat_dataset *d, int B, int T)
{
    size_t LD = (size_t)d->L * d->D;
    if (bb->cap_rows < B) {
        bb->cap_rows = B;
        bb->image = sat_xrealloc(bb->image, (size_t)B * sizeof *bb->image);
        bb->feats = sat_xrealloc(bb->feats, (size_t)B * LD * sizeof *bb->feats);
        bb->rngs = sat_xrealloc(bb->rngs, (size_t)B * sizeof *bb->rngs);
    }
    if (bb->cap_tokens < B * (T + 1)) {
        bb->cap_tokens = B * (T + 1);
        bb->tokens = sat_xrealloc(bb->tokens, (size_t)bb->cap_tokens * sizeof *bb->tokens);
    }
    if (!bb->local) bb->local = sat_xmalloc((size_t)d->nimages * sizeof *bb->local);
}

void sat_dataset_fill_batch(sat_dataset_batch *bb, const sat_dataset *d, const int *captions, int B,
                            int total, unsigned long seed, int epoch, sat_decoder_batch *out)
{
    int T = d->train[captions[0]].len;
    for (int i = 1; i < B; i++)
        if (d->train[captions[i]].len > T) T = d->train[captions[i]].len;
    batch_reserve(bb, d, B, T);
    size_t LD = (size_t)d->L * d->D;
    int nimg = 0;
    for (int i = 0; i < B; i++) bb->local[d->train[captions[i]].image] = -1;
    for (int i = 0; i < B; i++) {
        int im = d->train[captions[i]].image;
        if (bb->local[im] < 0) {
            bb->local[im] = nimg;
            sat_dataset_image_f32(&d->images[im], bb->feats + (size_t)nimg * LD);
            nimg++;
        }
        bb->image[i] = bb->local[im];
        const sat_dataset_caption *tc = &d->train[captions[i]];
        int *row = bb->tokens + (size_t)i * (T + 1);
        for (int t = 0; t <= T; t++) row[t] = t <= tc->len ? tc->tokens[t] : -1;
        sat_rng_seed(&bb->rngs[i], sat_epoch_caption_seed(seed, epoch, captions[i]));
    }
    *out = (sat_decoder_batch){.feats = bb->feats, .n_images = nimg, .image = bb->image,
                               .tokens = bb->tokens, .B = B, .T = T, .rngs = bb->rngs,
                               .total = total};
}

void sat_dataset_batch_free(sat_dataset_batch *bb)
{
    free(bb->feats);
    free(bb->image);
    free(bb->tokens);
    free(bb->local);
    free(bb->rngs);
    *bb = (sat_dataset_batch){0};
}
