/* sat-beam — beam search captions: `features` records in, `caption`
 * records out (the n best per image), with the attention of every word.
 *
 * All live hypotheses of an image advance together, one GEMM per layer per
 * step (sat_decoder_step_attend over k rows).  With hard attention
 * (--attention hard-sample|hard-argmax) each hypothesis takes the annotation
 * at one location per step, drawn from its α or α's argmax; the location is
 * part of the hypothesis (every extension of it read that context), and its
 * alpha rows are one-hot there.  A hypothesis that emits <end> leaves
 * the beam, which then shrinks, until k captions are complete or max-len is
 * reached.  Scores are log-probabilities, optionally divided by length^α
 * (--length-norm α) when the finished captions are ranked.
 *
 * Up to --batch images are read ahead and searched together: one step
 * advances the live hypotheses of all of them (their rows grouped by image
 * in one state), each image keeping its own beam, and the captions are
 * written in the order of the images, the same bytes as one image at a time
 * (hard-sample, whose draws come from one generator, goes one at a time).
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "captioner.h"
#include "escape.h"
#include "pipeline.h"
#include "util.h"

static const char usage[] =
    "Usage: sat-beam [OPTION]... [FILE]...\n"
    "Caption the features records of sat streams (FILEs, or stdin) by beam search;\n"
    "write caption records (msgpack) or, on a terminal, text.\n"
    "\n"
    "  -k, --beam K           beam width (default 3)\n"
    "  -n, --nbest N          write the N best captions of each image (default 1, <= K)\n"
    "      --length-norm A    rank finished captions by logprob / length^A (default 0: off)\n"
    SAT_STAGE_USAGE_MODEL
    "      --min-len N        at least N words (default 1: no empty caption)\n"
    "      --max-len N        at most N words (default 30)\n"
    "      --allow-unk        let captions have <unk> (by default never written)\n"
    "      --attention MODE   soft (expected context, default), hard-sample (a location\n"
    "                         per hypothesis and word drawn from the attention, --seed)\n"
    "                         or hard-argmax\n"
    "      --seed N           random seed for hard-sample (default 1)\n"
    SAT_STAGE_USAGE_FORMAT
    "      --batch N          search up to N images together (default " SAT_STR(SAT_DEFAULT_BATCH) ";\n"
    "                         the same output, faster; hard-sample: 1)\n"
    SAT_STAGE_USAGE_END
    "\n"
    "Example: sat-encode photo.jpg | sat-beam -k 5\n";

typedef struct {
    sat_stage_options stage;
    int k, nbest, min_len, allow_unk;
    double length_norm;
} options;

/* At most this many hypotheses of a batch (K × --batch) at once. */
#define BEAM_MAX_ROWS 4096

/* A hypothesis: its words and the attention of each step so far. */
typedef struct {
    int *tokens;
    float *alpha;            /* (n + 1) × L once finished: the last row is <end>'s */
    int *locations;          /* hard attention: n + 1 like alpha's rows; else NULL */
    int n;
    double logprob;
} hypothesis;

typedef struct {
    double score;
    int parent, word;
} candidate;

/* One image's beam. */
typedef struct {
    hypothesis *live, *next, *done; /* k each */
    int nlive, ndone;
} beam;

typedef struct {
    const options *opt;
    sat_captioner *cap;
    sat_writer out;
    int V, L;
    float *logprobs, *alpha;  /* a step's rows, all images': batch·k × V, batch·k × L */
    int *loc;                 /* batch·k: each live hypothesis's location (hard attention) */
    int *prev, *parents;      /* batch·k: the word each row read; where each next row was */
    sat_rng rng;              /* hard-sample's draws */
    beam *beams;              /* batch */
    int written;              /* the batch's images written so far */
    candidate *cand;          /* k: one image's best */
} beam_run;

static double ranked_score(const hypothesis *h, double alpha)
{
    return alpha > 0 ? h->logprob / pow(h->n + 1, alpha) : h->logprob;
}

static int by_ranked_desc(const void *a, const void *b, void *arg)
{
    double alpha = *(const double *)arg;
    double x = ranked_score(a, alpha), y = ranked_score(b, alpha);
    return (x < y) - (x > y);
}

/* The extension of live hypothesis `parent` (the step's row `row`) by `word` into h. */
static void extend(beam_run *b, const hypothesis *parent, int row, int word, hypothesis *h)
{
    h->n = parent->n + (word != SAT_VOCAB_END);
    memcpy(h->tokens, parent->tokens, (size_t)parent->n * sizeof *h->tokens);
    if (word != SAT_VOCAB_END) h->tokens[parent->n] = word;
    memcpy(h->alpha, parent->alpha, (size_t)parent->n * b->L * sizeof *h->alpha);
    memcpy(h->alpha + (size_t)parent->n * b->L, b->alpha + (size_t)row * b->L,
           (size_t)b->L * sizeof *h->alpha);
    if (h->locations) {
        memcpy(h->locations, parent->locations, (size_t)parent->n * sizeof *h->locations);
        h->locations[parent->n] = b->loc[row];
    }
    h->logprob = parent->logprob + b->logprobs[(size_t)row * b->V + word];
}

/* c into the best m candidates so far (cand[0..*n), best first), after
 * those of equal score: the order a stable sort of all would give. */
static void keep_best(candidate *cand, int *n, int m, candidate c)
{
    if (*n == m && c.score <= cand[m - 1].score) return;
    int i = *n < m ? (*n)++ : m - 1;
    for (; i > 0 && cand[i - 1].score < c.score; i--) cand[i] = cand[i - 1];
    cand[i] = c;
}

/* One step of image bm, whose live hypotheses are the step's rows row0...:
 * the best extensions of them; those that end go to `done`.  parents
 * receives the row each new live hypothesis continues.  Returns the new
 * number of live hypotheses (0 once the image has its k captions). */
static int advance(beam_run *b, beam *bm, int row0, int t, int *parents)
{
    int last_step = t == b->opt->stage.max_len, may_end = t >= b->opt->min_len;
    int k = b->opt->k, nc = 0, want = k - bm->ndone, nnext = 0;
    /* Each candidate taken below fills a place of `want`: the best want do. */
    for (int j = 0; j < bm->nlive; j++) {
        const float *lp = b->logprobs + (size_t)(row0 + j) * b->V;
        for (int v = 0; v < b->V; v++) {
            if (!sat_caption_may_emit(v, b->opt->allow_unk) || (last_step && v != SAT_VOCAB_END) ||
                (!may_end && v == SAT_VOCAB_END))
                continue;
            keep_best(b->cand, &nc, want, (candidate){bm->live[j].logprob + lp[v], j, v});
        }
    }
    for (int c = 0; c < nc && nnext < want && bm->ndone < k; c++) {
        const candidate *cd = &b->cand[c];
        hypothesis *h = cd->word == SAT_VOCAB_END ? &bm->done[bm->ndone++] : &bm->next[nnext];
        extend(b, &bm->live[cd->parent], row0 + cd->parent, cd->word, h);
        if (cd->word == SAT_VOCAB_END) want--;
        else parents[nnext++] = row0 + cd->parent;
    }
    hypothesis *tmp = bm->live;
    bm->live = bm->next;
    bm->next = tmp;
    return bm->ndone < k ? nnext : 0;
}

/* The words the live hypotheses of all images read last, in row order;
 * returns the number of rows. */
static int gather_prev(beam_run *b, int n)
{
    int rows = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < b->beams[i].nlive; j++) {
            const hypothesis *h = &b->beams[i].live[j];
            b->prev[rows++] = h->n ? h->tokens[h->n - 1] : SAT_VOCAB_START;
        }
    return rows;
}

static void write_caption(beam_run *b, const sat_features *f, const hypothesis *h, int rank)
{
    sat_caption c = {.tokens = h->tokens, .n = h->n, .alpha = h->alpha, .logprob = h->logprob,
                     .locations = h->locations};
    if (b->opt->stage.text) {
        char *text = sat_caption_text(b->cap, &c), *id = sat_escape_id(f->id);
        if (b->opt->nbest > 1) printf("%s\t%d\t%.4f\t%s\n", id, rank, h->logprob, text);
        else printf("%s\t%s\n", id, text);
        free(id);
        free(text);
        return;
    }
    sat_caption_meta meta = {.id = f->id, .method = "beam",
                             .attention = sat_attend_name(b->opt->stage.attention),
                             .alpha_h = (int)f->h, .alpha_w = (int)f->w,
                             .rank = b->opt->nbest > 1 ? rank : -1};
    sat_caption_pack(&b->out, b->cap, &c, &meta);
    sat_writer_end(&b->out);
}

/* The beams of n images (feats: n × L × D), stepped together until each has
 * its k captions or max_len words; each image's ranked by --length-norm. */
static void beam_search(void *ctx, const sat_features *f, const float *feats, int n)
{
    beam_run *b = ctx;
    const options *o = b->opt;
    sat_caption_state *st = sat_caption_state_new(&b->cap->ens, feats, n, o->k);
    for (int i = 0; i < n; i++) {
        b->beams[i].live[0].n = 0;
        b->beams[i].live[0].logprob = 0;
        b->beams[i].nlive = 1;
        b->beams[i].ndone = 0;
    }
    for (int t = 0, rows; t <= o->stage.max_len && (rows = gather_prev(b, n)) > 0; t++) {
        sat_caption_step(st, b->prev, o->stage.attention, &b->rng, b->loc, b->logprobs, b->alpha);
        int row0 = 0, next = 0;
        for (int i = 0; i < n; i++) {
            int nlive = b->beams[i].nlive;
            if (nlive == 0) continue;
            b->beams[i].nlive = advance(b, &b->beams[i], row0, t, b->parents + next);
            next += b->beams[i].nlive;
            row0 += nlive;
        }
        if (next > 0) sat_caption_state_select(st, b->parents, next);
    }
    for (int i = 0; i < n; i++)
        qsort_r(b->beams[i].done, (size_t)b->beams[i].ndone, sizeof *b->beams[i].done,
                by_ranked_desc, (void *)&o->length_norm);
    b->written = 0;
    sat_caption_state_free(st);
}

/* The next image of the batch: its n best captions. */
static void write_captions(void *ctx, const sat_features *f, const float *feats)
{
    beam_run *b = ctx;
    const beam *bm = &b->beams[b->written++];
    for (int r = 0; r < b->opt->nbest && r < bm->ndone; r++) write_caption(b, f, &bm->done[r], r);
}

static void alloc_hypotheses(hypothesis *h, int n, int max_len, int L, int hard)
{
    for (int i = 0; i < n; i++) {
        h[i].tokens = sat_xmalloc((size_t)(max_len + 1) * sizeof *h[i].tokens);
        h[i].alpha = sat_xmalloc((size_t)(max_len + 2) * L * sizeof *h[i].alpha);
        h[i].locations = hard ? sat_xmalloc((size_t)(max_len + 2) * sizeof *h[i].locations) : NULL;
    }
}

static void free_hypotheses(hypothesis *h, int n)
{
    for (int i = 0; i < n; i++) {
        free(h[i].tokens);
        free(h[i].alpha);
        free(h[i].locations);
    }
    free(h);
}

/* The beams and a step's rows for batches of up to --batch images. */
static void alloc_beams(beam_run *b)
{
    const options *o = b->opt;
    const size_t rows = (size_t)o->stage.batch * o->k;
    int hard = o->stage.attention != SAT_ATTEND_SOFT;
    b->logprobs = sat_xmalloc(rows * b->V * sizeof *b->logprobs);
    b->alpha = sat_xmalloc(rows * b->L * sizeof *b->alpha);
    b->loc = sat_xmalloc(rows * sizeof *b->loc);
    b->prev = sat_xmalloc(rows * sizeof *b->prev);
    b->parents = sat_xmalloc(rows * sizeof *b->parents);
    b->cand = sat_xmalloc((size_t)o->k * sizeof *b->cand);
    b->beams = sat_xcalloc((size_t)o->stage.batch, sizeof *b->beams);
    for (int i = 0; i < o->stage.batch; i++) {
        hypothesis **sets[] = {&b->beams[i].live, &b->beams[i].next, &b->beams[i].done};
        for (int s = 0; s < 3; s++) {
            *sets[s] = sat_xcalloc((size_t)o->k, sizeof **sets[s]);
            alloc_hypotheses(*sets[s], o->k, o->stage.max_len, b->L, hard);
        }
    }
}

static void free_beams(beam_run *b)
{
    for (int i = 0; i < b->opt->stage.batch; i++) {
        free_hypotheses(b->beams[i].live, b->opt->k);
        free_hypotheses(b->beams[i].next, b->opt->k);
        free_hypotheses(b->beams[i].done, b->opt->k);
    }
    free(b->beams);
    free(b->logprobs);
    free(b->alpha);
    free(b->loc);
    free(b->prev);
    free(b->parents);
    free(b->cand);
}

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        SAT_STAGE_LONGOPTS,
        {"beam", required_argument, 0, 'k'},      {"nbest", required_argument, 0, 'n'},
        {"length-norm", required_argument, 0, 'N'}, {"min-len", required_argument, 0, 'l'},
        {"allow-unk", no_argument, 0, 'U'},       {0, 0, 0, 0}};
    *o = (options){.stage = SAT_STAGE_DEFAULTS, .k = 3, .nbest = 1, .min_len = 1};
    sat_stage_options *so = &o->stage;
    int c;
    while ((c = sat_getopt(argc, argv, SAT_STAGE_SHORTOPTS "k:n:", longopts)) != -1) {
        switch (c) {
        case 'k': o->k = (int)sat_parse_long("--beam", optarg, 1, 256); break;
        case 'n': o->nbest = (int)sat_parse_long("--nbest", optarg, 1, 256); break;
        case 'N': o->length_norm = sat_parse_double("--length-norm", optarg, 0, 10); break;
        case 'l': o->min_len = (int)sat_parse_long("--min-len", optarg, 0, 1000); break;
        case 'U': o->allow_unk = 1; break;
        default: sat_stage_option(so, c, optarg, usage);
        }
    }
    if (o->nbest > o->k) sat_usage_error("--nbest %d is more than the beam width %d", o->nbest, o->k);
    if (o->min_len > so->max_len) sat_usage_error("--min-len is more than --max-len");
    sat_stage_options_end(so);
    if (so->attention == SAT_ATTEND_SAMPLE) so->batch = 1;
    /* Wide beams: the hypotheses' attention maps grow with K × batch. */
    if (so->batch > BEAM_MAX_ROWS / o->k) so->batch = BEAM_MAX_ROWS / o->k;
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt;
    parse_options(argc, argv, &opt);
    beam_run b = {.opt = &opt};
    b.cap = sat_captioner_open(opt.stage.models.path, opt.stage.models.n);
    b.V = sat_captioner_config(b.cap)->V;
    b.L = sat_captioner_config(b.cap)->L;
    sat_rng_seed(&b.rng, opt.stage.seed);
    alloc_beams(&b);

    sat_writer_init(&b.out, stdout, "stdout");
    sat_pipeline p = sat_stage_pipeline(&opt.stage, b.cap, &b.out);
    p.fn = write_captions, p.batch_fn = beam_search, p.ctx = &b;
    sat_pipeline_run(&p, argv + optind, argc - optind);
    sat_writer_close(&b.out);

    free_beams(&b);
    sat_captioner_free(b.cap);
    return sat_exit_status();
}
