/* pipeline.c — see pipeline.h. */
#include "sat/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sat/progress.h"
#include "sat/util.h"

/* How far the run is: images handed to the stage, bytes read of the inputs. */
typedef struct {
    sat_progress meter;
    size_t images;
    double bytes_done, bytes_total; /* bytes_total 0: some input's size is unknown */
} run_progress;

static double regular_size(FILE *f)
{
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (double)st.st_size : 0;
}

/* The sizes of all inputs, or 0 if any is not a regular file (a pipe). */
static double inputs_size(char *const *files, int n)
{
    if (n == 0) return regular_size(stdin);
    double total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        int is_stdin = strcmp(files[i], "-") == 0;
        if (is_stdin ? fstat(STDIN_FILENO, &st) : stat(files[i], &st)) continue; /* reported later */
        if (!S_ISREG(st.st_mode)) return 0;
        total += (double)st.st_size;
    }
    return total;
}

/* Features records read ahead for batch_fn, and what the streams have
 * between them, in order, so that the output is as if each image were
 * captioned when met.  A record's bytes do not outlive the next read: what
 * waits is copied. */
typedef struct {
    int image;   /* >= 0: batch image `image`; -1: raw bytes to pass through */
    void *raw;
    size_t len;
} queued;

typedef struct {
    sat_features *f;  /* batch entries: data NULL, thumbnail a copy */
    float *feats;     /* batch × views × L × D */
    int n, batch;
    int views;        /* the batch's images' (one count: the captioner steps them together) */
    int room;         /* views the feats buffer has room for */
    size_t LD;
    queued *q;
    size_t nq, cap;
} read_ahead;

static void enqueue(read_ahead *ra, int image, const void *raw, size_t len)
{
    if (ra->nq == ra->cap) {
        ra->cap = ra->cap ? 2 * ra->cap : 16;
        ra->q = sat_xrealloc(ra->q, ra->cap * sizeof *ra->q);
    }
    void *copy = len ? memcpy(sat_xmalloc(len), raw, len) : NULL;
    ra->q[ra->nq++] = (queued){image, copy, len};
}

/* Bytes to pass through: now, or after the images waiting before them. */
static void pass(const sat_pipeline *p, read_ahead *ra, const void *raw, size_t len)
{
    if (ra->n > 0) enqueue(ra, -1, raw, len);
    else sat_writer_write(p->out, raw, len);
}

/* One image as the stage makes it: its thumbnail (unless the features pass
 * through), then the stage's records. */
static void emit_image(const sat_pipeline *p, const sat_features *f, const float *feats)
{
    if (f->thumbnail && p->out && !p->keep_features) {
        sat_thumbnail_pack(p->out, &(sat_thumbnail){f->id, f->thumbnail, f->thumbnail_len});
        sat_writer_end(p->out);
    }
    p->fn(p->ctx, f, feats);
}

/* The waiting images to batch_fn, then everything waiting in order. */
static void flush(const sat_pipeline *p, read_ahead *ra)
{
    if (ra->n == 0) return;
    if (p->batch_fn) p->batch_fn(p->ctx, ra->f, ra->feats, ra->n);
    for (size_t i = 0; i < ra->nq; i++) {
        queued *e = &ra->q[i];
        if (e->image < 0) sat_writer_write(p->out, e->raw, e->len);
        else emit_image(p, &ra->f[e->image], ra->feats + (size_t)e->image * ra->views * ra->LD);
        free(e->raw);
    }
    for (int i = 0; i < ra->n; i++) {
        free((void *)ra->f[i].thumbnail);
        sat_features_free(&ra->f[i]);
    }
    ra->n = 0;
    ra->nq = 0;
}

/* Make the batch one of f's view count: the images of another count read
 * before it are captioned first (the output is the same: batches change no
 * byte of it), and the buffer grows for more views. */
static void batch_views(const sat_pipeline *p, read_ahead *ra, sat_features *f)
{
    const int views = (int)sat_features_views(f);
    if (views == ra->views) return;
    if (ra->n > 0) {
        sat_features keep = *f; /* f is slot n, after the batch's: it moves to the front */
        flush(p, ra);
        ra->f[0] = keep;
    }
    ra->views = views;
    if (views > ra->room) {
        ra->room = views;
        free(ra->feats); /* empty: the batch was flushed */
        ra->feats = sat_xmalloc_large((size_t)ra->batch * views * ra->LD * sizeof *ra->feats);
    }
}

static void on_features(const sat_pipeline *p, read_ahead *ra, const sat_record *rec)
{
    sat_features *f = &ra->f[ra->n];
    char err[SAT_ERR_MAX];
    if (sat_features_parse(rec, f, err, sizeof err) ||
        sat_captioner_check(p->cap, f, err, sizeof err)) {
        sat_warn("%s", err);
        sat_features_free(f);
        return;
    }
    batch_views(p, ra, f);
    f = &ra->f[ra->n];
    sat_features_to_f32(f, ra->feats + (size_t)ra->n * ra->views * ra->LD);
    f->data = NULL;
    if (f->thumbnail) f->thumbnail = memcpy(sat_xmalloc(f->thumbnail_len), f->thumbnail, f->thumbnail_len);
    enqueue(ra, ra->n++, NULL, 0);
    if (ra->n == ra->batch) flush(p, ra);
}

/* A run: the stage, its images read ahead, and how far it is. */
typedef struct {
    const sat_pipeline *p;
    read_ahead ra;
    run_progress rp;
} run;

static void on_record(void *ctx, const sat_record *rec, const char *input)
{
    run *u = ctx;
    const sat_pipeline *p = u->p;
    if (sat_record_is(rec, "features")) {
        if (p->out && p->keep_features) pass(p, &u->ra, rec->raw, rec->raw_len);
        on_features(p, &u->ra, rec);
        double read = u->rp.bytes_done + (double)(rec->offset + rec->raw_len);
        sat_progress_update(&u->rp.meter, ++u->rp.images,
                            u->rp.bytes_total > 0 ? read / u->rp.bytes_total : -1, NULL);
    } else if (!(p->other && p->other(p->ctx, rec, input)) && p->out) {
        pass(p, &u->ra, rec->raw, rec->raw_len);
    }
}

static void on_input_done(void *ctx, FILE *in)
{
    run *u = ctx;
    u->rp.bytes_done += regular_size(in);
}

void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n)
{
    const sat_decoder_config *c = sat_captioner_config(p->cap);
    run u = {.p = p,
             .ra = {.batch = p->batch_fn && p->batch > 1 ? p->batch : 1, .views = 1, .room = 1,
                    .LD = (size_t)c->L * c->D},
             .rp = {.bytes_total = inputs_size(files, n)}};
    u.ra.f = sat_xcalloc((size_t)u.ra.batch, sizeof *u.ra.f);
    u.ra.feats = sat_xmalloc_large((size_t)u.ra.batch * u.ra.LD * sizeof *u.ra.feats);
    sat_progress_begin(&u.rp.meter, "images", 0, p->quiet);
    sat_each e = {.max_record = p->max_record, .record = on_record, .input_done = on_input_done,
                  .ctx = &u};
    sat_each_record(&e, files, n);
    flush(p, &u.ra);
    sat_progress_end(&u.rp.meter);
    free(u.ra.f);
    free(u.ra.feats);
    free(u.ra.q);
}

int sat_batch_option(const char *arg)
{
    return (int)sat_parse_long("--batch", arg, 1, SAT_MAX_BATCH);
}

int sat_stage_option(sat_stage_options *o, int c, const char *arg, const char *usage)
{
    switch (c) {
    case 'm': sat_model_list_add(&o->models, arg); break;
    case 'A': o->attention = sat_attend_option(arg); break;
    case 's': o->seed = (unsigned long)sat_parse_long("--seed", arg, 0, 1L << 62); break;
    case 'L': o->max_len = (int)sat_parse_long("--max-len", arg, 1, 1000); break;
    case 'f':
        if (strcmp(arg, "text") && strcmp(arg, "msgpack"))
            sat_usage_error("--format: '%s' is not text or msgpack", arg);
        o->text = strcmp(arg, "text") == 0;
        break;
    case 'B': o->batch = sat_batch_option(arg); break;
    case 'K': o->keep_features = 1; break;
    case 'j': o->threads = (int)sat_parse_long("--threads", arg, 1, 256); break;
    case 'M': o->max_record = (size_t)sat_parse_long("--max-record", arg, 16, 1L << 40); break;
    case 'q': o->quiet = 1; break;
    case 'h': sat_print_usage(usage);
    case 'V': sat_print_version();
    default: return 0;
    }
    return 1;
}

void sat_stage_options_end(sat_stage_options *o)
{
    if (o->text < 0) o->text = isatty(STDOUT_FILENO);
}

sat_captioner *sat_stage_captioner(const sat_stage_options *o)
{
    sat_captioner *cap = sat_captioner_open(o->models.path, o->models.n);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cap->ens.threads = o->threads ? o->threads : cpus > 0 ? (int)cpus : 1;
    return cap;
}

sat_pipeline sat_stage_pipeline(const sat_stage_options *o, const sat_captioner *cap,
                                sat_writer *out)
{
    return (sat_pipeline){.cap = cap, .out = o->text ? NULL : out,
                          .keep_features = o->keep_features, .max_record = o->max_record,
                          .quiet = o->quiet, .batch = o->batch};
}
