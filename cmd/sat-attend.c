/* sat-attend — attention as a stage of its own: the decoder reads given
 * captions (teacher forcing) on `features` records and tells, for every
 * word, where it looked (soft α, or the hard location), the word's
 * log-probability, and the caption's log-probability and perplexity; with
 * --rank it orders each image's candidate captions by log-probability.
 *
 * Captions come from one source: -c TEXT (every image), --captions FILE
 * (by image), or else the `caption` records of the stream itself, matched by
 * id to a features record before or after them.  For the last, the features
 * records seen are kept in a FIFO of --buffer entries and the caption
 * records still without features wait in a bounded list; what is left
 * unmatched at the end is an error per caption.
 *
 * parse options → load the decoder → the captions (-c, --captions) → for each
 * record of the streams: features → score the captions that match it;
 * caption (stream source) → score it or let it wait; others pass through.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captioner.h"
#include "sat/escape.h"
#include "sat/pipeline.h"
#include "sat/util.h"

static const char usage[] =
    "Usage: sat-attend [OPTION]... [FILE]...\n"
    "Teacher forcing: read features records of sat streams (FILEs, or stdin) and\n"
    "captions; write, for each caption, the attention of every word, the words'\n"
    "log-probabilities, the caption's log-probability and perplexity: caption records\n"
    "(method \"teacher\") or, on a terminal, text: id<TAB>logprob<TAB>perplexity<TAB>caption.\n"
    "\n"
    "Captions (one source):\n"
    "  -c, --caption TEXT     score TEXT on every features record (repeatable)\n"
    "      --captions FILE    lines id<TAB>caption or NAME.jpg#N<TAB>caption (Flickr8k);\n"
    "                         an id matches a features id or its file name\n"
    "                         without either: the caption records of the stream,\n"
    "                         matched by id to a features record before or after them\n"
    "      --buffer N         features records kept for caption records that follow\n"
    "                         them (default 16)\n"
    "\n"
    SAT_STAGE_USAGE_MODEL
    "      --attention MODE   soft (default), hard-sample (a location per word drawn\n"
    "                         from the attention, --seed) or hard-argmax\n"
    "      --seed N           random seed for hard-sample (default 1)\n"
    "      --rank             each image's captions sorted by log-probability, best\n"
    "                         first, with their rank\n"
    "      --max-len N        refuse captions longer than N words (default 50)\n"
    SAT_STAGE_USAGE_FORMAT
    "      --batch N          with -c: score up to N images together (default " SAT_STR(SAT_DEFAULT_BATCH) ";\n"
    "                         the same output, faster; hard-sample, --captions, the\n"
    "                         stream's captions: 1)\n"
    SAT_STAGE_USAGE_END
    "\n"
    "Example: sat-encode dog.jpg | sat-attend -c \"a dog runs on the grass\" | sat-heatmap -o dog.png\n";

enum { MAX_PENDING = 100000, MAX_ID = 4096 };

typedef struct {
    sat_stage_options stage;
    const char *captions_file;
    const char **texts;      /* -c */
    int ntexts, rank, buffer;
} options;

/* A caption encoded for the model. */
typedef struct {
    int *tokens;
    int n;
} encoded;

/* --captions: the lines of the file by id (a list per id, in file order). */
typedef struct {
    char *text;
    long line;
    int next;                /* next caption of the same id, −1 */
} file_caption;

typedef struct {
    sat_strtab ids;
    int *first, *last;       /* per id */
    file_caption *caps;
    int n;
} caption_file;

/* A features record being scored, with (--rank) its scored captions. */
typedef struct {
    char *id;
    int h, w, views;
    float *feats;            /* views × L × D */
    sat_caption *scored;
    int nscored;
} image_slot;

/* A caption record of the stream still without its features. */
typedef struct {
    char *id;
    encoded cap;
} pending_caption;

typedef struct {
    const options *opt;
    sat_captioner *cap;
    sat_writer out;
    sat_rng rng;
    sat_decode_options read;  /* how the captions are read: --attention, rng */
    encoded *cli;            /* -c, the valid ones */
    int ncli;
    caption_file file;
    image_slot *buffer;      /* stream source: FIFO of the last features records */
    int nbuffer;
    pending_caption *pending;
    int npending, cap_pending;
    sat_caption *batch;      /* -c with --batch: the batch's captions, image by image */
    int next;                /* the first of the next image's */
} attender;

/* ---- captions ---------------------------------------------------------------- */

/* 0 with the caption's ids, or −1 with why it cannot be scored. */
static int encode_caption(const attender *a, const char *text, encoded *e, char *why, size_t len)
{
    int max = a->opt->stage.max_len;
    e->tokens = sat_xmalloc((size_t)max * sizeof *e->tokens);
    e->n = sat_vocab_ids(a->cap->vocab, text, e->tokens, max);
    int known = 0;
    for (int i = 0; i < e->n && i < max; i++) known += e->tokens[i] != SAT_VOCAB_UNK;
    if (e->n == 0) sat_fail(why, len, "the caption is empty");
    else if (e->n > max)
        sat_fail(why, len, "the caption has %d words, more than --max-len %d", e->n, max);
    else if (!known) sat_fail(why, len, "no word of the caption is in the model's vocabulary");
    else return 0;
    free(e->tokens);
    e->tokens = NULL;
    return -1;
}

static void load_cli_captions(attender *a)
{
    const options *o = a->opt;
    a->cli = sat_xcalloc((size_t)o->ntexts, sizeof *a->cli);
    for (int i = 0; i < o->ntexts; i++) {
        char why[SAT_ERR_MAX];
        if (encode_caption(a, o->texts[i], &a->cli[a->ncli], why, sizeof why) == 0) a->ncli++;
        else sat_warn("-c \"%.60s\": %s", o->texts[i], why);
    }
    if (a->ncli == 0) sat_die("no caption to score");
}

/* The id of a caption line: before the tab, without a "#N" caption index. */
static void line_id(char *key)
{
    char *hash = strrchr(key, '#');
    if (!hash || !hash[1]) return;
    for (char *p = hash + 1; *p; p++)
        if (*p < '0' || *p > '9') return;
    *hash = 0;
}

static void add_file_caption(caption_file *cf, const char *key, const char *text, long line)
{
    int added;
    long id = sat_strtab_add(&cf->ids, key, &added);
    if (added) {
        cf->first = sat_xrealloc(cf->first, cf->ids.n * sizeof *cf->first);
        cf->last = sat_xrealloc(cf->last, cf->ids.n * sizeof *cf->last);
        cf->first[id] = -1;
    }
    cf->caps = sat_xrealloc(cf->caps, (size_t)(cf->n + 1) * sizeof *cf->caps);
    cf->caps[cf->n] = (file_caption){ .text = sat_xstrdup(text), .line = line, .next = -1 };
    if (cf->first[id] < 0) cf->first[id] = cf->n;
    else cf->caps[cf->last[id]].next = cf->n;
    cf->last[id] = cf->n++;
}

static void load_caption_file(caption_file *cf, const char *path)
{
    FILE *f = sat_fopen_check(path, "r");
    char *buf = sat_xmalloc(SAT_CAPTION_MAX_LINE);
    size_t len;
    long line = 0;
    int st;
    sat_strtab_init(&cf->ids);
    while ((st = sat_read_line(f, buf, SAT_CAPTION_MAX_LINE, &len)) != SAT_LINE_EOF) {
        line++;
        char *tab = st == SAT_LINE_OK ? memchr(buf, '\t', len) : NULL;
        if (st == SAT_LINE_OK && len == 0) continue;
        if (!tab || memchr(buf, 0, len) || !sat_utf8_valid(buf, len)) {
            sat_warn("%s:%ld: not id<TAB>caption (or too long, or not UTF-8)", path, line);
            continue;
        }
        *tab = 0;
        sat_unescape_id(buf); /* as -f text writes ids */
        line_id(buf);
        add_file_caption(cf, buf, tab + 1, line);
    }
    if (ferror(f)) sat_die("%s: %s", path, strerror(errno));
    fclose(f);
    free(buf);
    if (cf->n == 0) sat_die("%s: no captions", path);
}

static void free_caption_file(caption_file *cf)
{
    for (int i = 0; i < cf->n; i++) free(cf->caps[i].text);
    free(cf->caps);
    free(cf->first);
    free(cf->last);
    sat_strtab_free(&cf->ids);
}

/* The first caption of a features id (exact, else its file name), or −1. */
static int file_captions_of(const caption_file *cf, const char *id)
{
    long k = sat_strtab_find(&cf->ids, id);
    if (k < 0) k = sat_strtab_find(&cf->ids, sat_path_basename(id));
    return k < 0 ? -1 : cf->first[k];
}

/* ---- scoring and output -------------------------------------------------------- */

static void emit(attender *a, const image_slot *im, const sat_caption *c, int rank)
{
    if (a->opt->stage.text) {
        char *text = sat_caption_text(a->cap, c), *id = sat_escape_id(im->id);
        if (rank >= 0) printf("%s\t%d", id, rank); /* --rank: the rank column after the id */
        else printf("%s", id);
        printf("\t%.4f\t%.4f\t%s\n", c->logprob, sat_caption_perplexity(c), text);
        free(id);
        free(text);
        return;
    }
    sat_caption_meta meta = { .id = im->id, .method = "teacher",
                              .attention = sat_attend_name(a->opt->stage.attention),
                              .alpha_h = im->h, .alpha_w = im->w, .rank = rank };
    sat_caption_pack(&a->out, a->cap, c, &meta);
    sat_writer_end(&a->out);
}

/* A scored caption of im: written now, or with --rank kept for finish_image. */
static void take(attender *a, image_slot *im, sat_caption c)
{
    if (!a->opt->rank) {
        emit(a, im, &c, -1);
        sat_caption_free(&c);
        return;
    }
    im->scored = sat_xrealloc(im->scored, (size_t)(im->nscored + 1) * sizeof *im->scored);
    im->scored[im->nscored++] = c;
}

static void score(attender *a, image_slot *im, const encoded *e)
{
    const sat_teacher_row row = {0, e->tokens, e->n};
    sat_caption c;
    sat_caption_teacher(&a->cap->ens, im->feats, 1, im->views, &row, 1, &a->read, &c);
    take(a, im, c);
}

/* -c with --batch: every -c caption of the n images read together (feats:
 * n × views × L × D, one view count), one row each; on_features takes them image by image. */
static void score_batch(void *ctx, const sat_features *f, const float *feats, int n)
{
    attender *a = ctx;
    int rows = n * a->ncli;
    sat_teacher_row *row = sat_xmalloc((size_t)rows * sizeof *row);
    for (int r = 0; r < rows; r++)
        row[r] = (sat_teacher_row){r / a->ncli, a->cli[r % a->ncli].tokens, a->cli[r % a->ncli].n};
    sat_caption_teacher(&a->cap->ens, feats, n, (int)sat_features_views(f), row, rows, &a->read,
                        a->batch);
    free(row);
    a->next = 0;
}

/* Best first by log-probability; equal ones keep their order (insertion
 * sort: an image has few candidates). */
static void sort_by_logprob(sat_caption *c, int n)
{
    for (int i = 1; i < n; i++) {
        sat_caption x = c[i];
        int j = i;
        for (; j > 0 && c[j - 1].logprob < x.logprob; j--) c[j] = c[j - 1];
        c[j] = x;
    }
}

/* --rank: the image's captions, sorted; then the slot is released. */
static void finish_image(attender *a, image_slot *im)
{
    sort_by_logprob(im->scored, im->nscored);
    for (int i = 0; i < im->nscored; i++) {
        emit(a, im, &im->scored[i], i);
        sat_caption_free(&im->scored[i]);
    }
    free(im->scored);
    free(im->feats);
    free(im->id);
}

/* ---- the three caption sources ----------------------------------------------- */

static void score_file_captions(attender *a, image_slot *im)
{
    const caption_file *cf = &a->file;
    int k = file_captions_of(cf, im->id);
    if (k < 0) sat_warn("%s: no caption for it in %s", im->id, a->opt->captions_file);
    for (; k >= 0; k = cf->caps[k].next) {
        encoded e;
        char why[SAT_ERR_MAX];
        if (encode_caption(a, cf->caps[k].text, &e, why, sizeof why)) {
            sat_warn("%s:%ld (%s): %s", a->opt->captions_file, cf->caps[k].line, im->id, why);
            continue;
        }
        score(a, im, &e);
        free(e.tokens);
    }
}

/* Stream source: a new features record enters the FIFO (the oldest leaves
 * when it is full) and takes the captions that waited for it. */
static void buffer_image(attender *a, image_slot *im)
{
    if (a->nbuffer == a->opt->buffer) {
        finish_image(a, &a->buffer[0]);
        memmove(a->buffer, a->buffer + 1, (size_t)(--a->nbuffer) * sizeof *a->buffer);
    }
    a->buffer[a->nbuffer] = *im;
    image_slot *slot = &a->buffer[a->nbuffer++];
    int kept = 0;
    for (int i = 0; i < a->npending; i++) {
        pending_caption *p = &a->pending[i];
        if (strcmp(p->id, slot->id) == 0) {
            score(a, slot, &p->cap);
            free(p->id);
            free(p->cap.tokens);
        } else {
            a->pending[kept++] = *p;
        }
    }
    a->npending = kept;
}

static image_slot *buffered(attender *a, const char *id)
{
    for (int i = a->nbuffer - 1; i >= 0; i--)
        if (strcmp(a->buffer[i].id, id) == 0) return &a->buffer[i];
    return NULL;
}

static void on_caption(attender *a, const sat_record *rec, const char *stream)
{
    sat_caption_record c;
    encoded e;
    char why[SAT_ERR_MAX];
    if (sat_caption_record_parse(rec, SAT_CAPTION_TEXT, &c, why, sizeof why)) {
        sat_warn("%s: record %zu: caption record: %s", stream, rec->index, why);
    } else if (strlen(c.id) > MAX_ID) {
        sat_warn("%s: record %zu: caption record: 'id' is longer than %d bytes", stream, rec->index,
                 MAX_ID);
    } else if (encode_caption(a, c.text, &e, why, sizeof why)) {
        sat_warn("%s: record %zu (id %s): %s", stream, rec->index, c.id, why);
    } else {
        image_slot *im = buffered(a, c.id);
        if (im) {
            score(a, im, &e);
            free(e.tokens);
        } else if (a->npending == MAX_PENDING) {
            sat_warn("%s: record %zu (id %s): more than %d caption records wait for their "
                     "features; this one is dropped", stream, rec->index, c.id, MAX_PENDING);
            free(e.tokens);
        } else {
            if (a->npending == a->cap_pending) {
                a->cap_pending = 2 * a->cap_pending + 16;
                a->pending = sat_xrealloc(a->pending, (size_t)a->cap_pending * sizeof *a->pending);
            }
            a->pending[a->npending++] = (pending_caption){ .id = c.id, .cap = e };
            c.id = NULL;
        }
    }
    sat_caption_record_free(&c);
}

/* ---- the streams ----------------------------------------------------------------- */

static void on_features(void *ctx, const sat_features *f, const float *feats)
{
    attender *a = ctx;
    const sat_decoder_config *c = sat_captioner_config(a->cap);
    const int views = (int)sat_features_views(f);
    size_t bytes = (size_t)views * c->L * c->D * sizeof(float);
    image_slot im = { .id = sat_xstrdup(f->id), .h = (int)f->h, .w = (int)f->w, .views = views,
                      .feats = memcpy(sat_xmalloc(bytes), feats, bytes) };
    if (a->ncli) {
        for (int i = 0; i < a->ncli; i++)
            if (a->batch) take(a, &im, a->batch[a->next++]);
            else score(a, &im, &a->cli[i]);
        finish_image(a, &im);
    } else if (a->opt->captions_file) {
        score_file_captions(a, &im);
        finish_image(a, &im);
    } else {
        buffer_image(a, &im);
    }
}

/* Caption records are this stage's input when no caption is given otherwise. */
static int on_other(void *ctx, const sat_record *rec, const char *stream)
{
    attender *a = ctx;
    if (a->ncli || a->opt->captions_file || !sat_record_is(rec, "caption")) return 0;
    on_caption(a, rec, stream);
    return 1;
}

/* End of the streams: the buffered images' ranked captions, and an error for
 * each caption record that never met its features. */
static void finish(attender *a)
{
    for (int i = 0; i < a->nbuffer; i++) finish_image(a, &a->buffer[i]);
    a->nbuffer = 0;
    for (int i = 0; i < a->npending; i++) {
        sat_warn("%s: a caption record whose id matches no features record in the stream "
                 "(or one more than --buffer %d features records before it)",
                 a->pending[i].id, a->opt->buffer);
        free(a->pending[i].id);
        free(a->pending[i].cap.tokens);
    }
    a->npending = 0;
}

/* ---- options and main ------------------------------------------------------------ */

static void parse_options(int argc, char **argv, options *o)
{
    enum { CAPTIONS = 256, BUFFER, RANK };
    static const struct option longopts[] = {
        SAT_STAGE_LONGOPTS,
        {"caption", required_argument, 0, 'c'}, {"captions", required_argument, 0, CAPTIONS},
        {"buffer", required_argument, 0, BUFFER}, {"rank", no_argument, 0, RANK},
        {0, 0, 0, 0}};
    *o = (options){.stage = SAT_STAGE_DEFAULTS, .buffer = 16};
    sat_stage_options *so = &o->stage;
    so->max_len = 50;
    o->texts = sat_xcalloc((size_t)argc, sizeof *o->texts);
    int c;
    while ((c = sat_getopt(argc, argv, SAT_STAGE_SHORTOPTS "c:", longopts)) != -1) {
        switch (c) {
        case 'c': o->texts[o->ntexts++] = optarg; break;
        case CAPTIONS: o->captions_file = optarg; break;
        case BUFFER: o->buffer = (int)sat_parse_long("--buffer", optarg, 1, 100000); break;
        case RANK: o->rank = 1; break;
        default: sat_stage_option(so, c, optarg, usage);
        }
    }
    if (o->ntexts && o->captions_file) sat_usage_error("-c and --captions are two sources: give one");
    sat_stage_options_end(so);
    /* Batches with -c only; hard-sample's draws go caption by caption. */
    if (!o->ntexts || so->attention == SAT_ATTEND_SAMPLE) so->batch = 1;
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt;
    parse_options(argc, argv, &opt);
    attender a = { .opt = &opt };
    a.cap = sat_stage_captioner(&opt.stage);
    sat_rng_seed(&a.rng, opt.stage.seed);
    a.read = (sat_decode_options){.attend = opt.stage.attention, .rng = &a.rng};
    if (opt.ntexts) load_cli_captions(&a);
    if (opt.captions_file) load_caption_file(&a.file, opt.captions_file);
    a.buffer = sat_xmalloc((size_t)opt.buffer * sizeof *a.buffer);
    if (opt.stage.batch > 1) a.batch = sat_xcalloc((size_t)opt.stage.batch * a.ncli, sizeof *a.batch);
    sat_writer_init(&a.out, stdout, "stdout");

    sat_pipeline p = sat_stage_pipeline(&opt.stage, a.cap, &a.out);
    p.fn = on_features, p.other = on_other, p.ctx = &a;
    p.batch_fn = a.batch ? score_batch : NULL;
    sat_pipeline_run(&p, argv + optind, argc - optind);
    finish(&a);
    sat_writer_close(&a.out);
    if (opt.stage.text && fflush(stdout)) sat_die("stdout: %s", strerror(errno));

    for (int i = 0; i < a.ncli; i++) free(a.cli[i].tokens);
    free(a.cli);
    if (opt.captions_file) free_caption_file(&a.file);
    free(a.buffer);
    free(a.batch);
    free(a.pending);
    free(opt.texts);
    sat_captioner_free(a.cap);
    return sat_exit_status();
}
