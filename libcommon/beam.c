/* beam.c — see beam.h. */
#include "sat/beam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/util.h"

/* A candidate extension: hypothesis `parent` of its image's beam by `word`. */
typedef struct {
    double score;
    int parent, word;
} candidate;

/* One image's beam: hypotheses are sat_captions (alpha: (n + 1) × L once
 * finished, the last row <end>'s; locations n + 1 like alpha's rows). */
typedef struct {
    sat_caption *live, *next, *done; /* k each */
    int nlive, ndone;
} beam;

struct sat_beam {
    const sat_ensemble *ens;
    sat_beam_options opt;
    int max_images, V, L;
    float *logprobs, *alpha; /* a step's rows, all images': max_images·k × V, × L */
    int *loc;                /* max_images·k: each live hypothesis's location (hard attention) */
    int *prev, *parents;     /* max_images·k: the word each row read; where each next row was */
    beam *beams;             /* max_images */
    int n_images;            /* the last search's */
    candidate *cand;         /* k: one image's best */
};

static double ranked_score(const sat_caption *h, double length_norm)
{
    return length_norm > 0 ? h->logprob / pow(h->n + 1, length_norm) : h->logprob;
}

static int by_ranked_desc(const void *a, const void *b, void *arg)
{
    double length_norm = *(const double *)arg;
    double x = ranked_score(a, length_norm), y = ranked_score(b, length_norm);
    return (x < y) - (x > y);
}

/* The extension of live hypothesis `parent` (the step's row `row`) by `word` into h. */
static void extend(const sat_beam *b, const sat_caption *parent, int row, int word, sat_caption *h)
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

/* Whether step t may extend a hypothesis by v. */
static int may_extend(const sat_beam_options *o, int v, int t)
{
    if (!sat_caption_may_emit(v, o->decode.allow_unk)) return 0;
    return v == SAT_VOCAB_END ? t >= o->min_len : t < o->decode.max_len;
}

/* The best ranked score any extension of live hypothesis h may end with:
 * its logprob (<= 0) can only fall, over at most (max_len + 1)^length_norm. */
static double best_ending(const sat_beam_options *o, const sat_caption *h)
{
    return o->length_norm > 0 ? h->logprob / pow(o->decode.max_len + 1, o->length_norm)
                              : h->logprob;
}

/* Whether bm's `settle` best finished captions are beyond the reach of its
 * live hypotheses (beam.h): strictly, so that no tie can reorder them. */
static int settled(const sat_beam_options *o, const beam *bm)
{
    if (o->settle <= 0 || bm->ndone < o->settle || o->decode.attend == SAT_ATTEND_SAMPLE) return 0;
    int better = 0; /* finished captions above every live hypothesis's reach */
    double reach = -HUGE_VAL;
    for (int j = 0; j < bm->nlive; j++) reach = fmax(reach, best_ending(o, &bm->live[j]));
    for (int j = 0; j < bm->ndone; j++) better += ranked_score(&bm->done[j], o->length_norm) > reach;
    return better >= o->settle;
}

/* One step of image bm, whose live hypotheses are the step's rows row0...:
 * the best extensions of them; those that end go to `done`.  parents
 * receives the row each new live hypothesis continues.  Returns the new
 * number of live hypotheses (0 once the image has its k captions, or its
 * settled ones). */
static int advance(sat_beam *b, beam *bm, int row0, int t, int *parents)
{
    int k = b->opt.k, nc = 0, want = k - bm->ndone, nnext = 0;
    /* Each candidate taken below fills a place of `want`: the best want do. */
    for (int j = 0; j < bm->nlive; j++) {
        const float *lp = b->logprobs + (size_t)(row0 + j) * b->V;
        for (int v = 0; v < b->V; v++)
            if (may_extend(&b->opt, v, t))
                keep_best(b->cand, &nc, want, (candidate){bm->live[j].logprob + lp[v], j, v});
    }
    for (int c = 0; c < nc && nnext < want && bm->ndone < k; c++) {
        const candidate *cd = &b->cand[c];
        sat_caption *h = cd->word == SAT_VOCAB_END ? &bm->done[bm->ndone++] : &bm->next[nnext];
        extend(b, &bm->live[cd->parent], row0 + cd->parent, cd->word, h);
        if (cd->word == SAT_VOCAB_END) want--;
        else parents[nnext++] = row0 + cd->parent;
    }
    sat_caption *tmp = bm->live;
    bm->live = bm->next;
    bm->next = tmp;
    bm->nlive = nnext;
    return bm->ndone < k && !settled(&b->opt, bm) ? nnext : 0;
}

/* The words the live hypotheses of all images read last, in row order;
 * returns the number of rows. */
static int gather_prev(sat_beam *b)
{
    int rows = 0;
    for (int i = 0; i < b->n_images; i++)
        for (int j = 0; j < b->beams[i].nlive; j++) {
            const sat_caption *h = &b->beams[i].live[j];
            b->prev[rows++] = h->n ? h->tokens[h->n - 1] : SAT_VOCAB_START;
        }
    return rows;
}

/* Step every image's live hypotheses (the rows of st) once; each image's
 * beam advances on its rows. */
static void step(sat_beam *b, sat_caption_state *st, int t)
{
    const sat_step_attend attend = sat_decode_attend(&b->opt.decode, b->loc);
    sat_caption_step(st, b->prev, &attend, b->logprobs, b->alpha);
    int row0 = 0, next = 0;
    for (int i = 0; i < b->n_images; i++) {
        int nlive = b->beams[i].nlive;
        if (nlive == 0) continue;
        b->beams[i].nlive = advance(b, &b->beams[i], row0, t, b->parents + next);
        next += b->beams[i].nlive;
        row0 += nlive;
    }
    if (next > 0) sat_caption_state_select(st, b->parents, next);
}

void sat_beam_search(sat_beam *b, const float *feats, int n_images, int views)
{
    const sat_beam_options *o = &b->opt;
    sat_caption_state *st = sat_caption_state_new(b->ens, feats, n_images, views, o->k);
    b->n_images = n_images;
    for (int i = 0; i < n_images; i++) {
        b->beams[i].live[0].n = 0;
        b->beams[i].live[0].logprob = 0;
        b->beams[i].nlive = 1;
        b->beams[i].ndone = 0;
    }
    for (int t = 0; t <= o->decode.max_len && gather_prev(b) > 0; t++) step(b, st, t);
    for (int i = 0; i < n_images; i++)
        qsort_r(b->beams[i].done, (size_t)b->beams[i].ndone, sizeof *b->beams[i].done,
                by_ranked_desc, (void *)&o->length_norm);
    sat_caption_state_free(st);
}

int sat_beam_count(const sat_beam *b, int image)
{
    return b->beams[image].ndone;
}

const sat_caption *sat_beam_caption(const sat_beam *b, int image, int rank)
{
    return &b->beams[image].done[rank];
}

/* n hypotheses of up to max_len words and <end>. */
static sat_caption *hypotheses_new(int n, int max_len, int L, int hard)
{
    sat_caption *h = sat_xcalloc((size_t)n, sizeof *h);
    for (int i = 0; i < n; i++) {
        h[i].tokens = sat_xmalloc((size_t)(max_len + 1) * sizeof *h[i].tokens);
        h[i].alpha = sat_xmalloc((size_t)(max_len + 2) * L * sizeof *h[i].alpha);
        h[i].locations = hard ? sat_xmalloc((size_t)(max_len + 2) * sizeof *h[i].locations) : NULL;
    }
    return h;
}

static void hypotheses_free(sat_caption *h, int n)
{
    for (int i = 0; i < n; i++) sat_caption_free(&h[i]);
    free(h);
}

sat_beam *sat_beam_new(const sat_ensemble *ens, const sat_beam_options *opt, int max_images)
{
    sat_beam *b = sat_xmalloc(sizeof *b);
    *b = (sat_beam){.ens = ens, .opt = *opt, .max_images = max_images,
                    .V = ens->dec[0]->cfg.V, .L = ens->dec[0]->cfg.L};
    const size_t rows = (size_t)max_images * opt->k;
    const int hard = opt->decode.attend != SAT_ATTEND_SOFT, max_len = opt->decode.max_len;
    b->logprobs = sat_xmalloc(rows * b->V * sizeof *b->logprobs);
    b->alpha = sat_xmalloc(rows * b->L * sizeof *b->alpha);
    b->loc = sat_xmalloc(rows * sizeof *b->loc);
    b->prev = sat_xmalloc(rows * sizeof *b->prev);
    b->parents = sat_xmalloc(rows * sizeof *b->parents);
    b->cand = sat_xmalloc((size_t)opt->k * sizeof *b->cand);
    b->beams = sat_xcalloc((size_t)max_images, sizeof *b->beams);
    for (int i = 0; i < max_images; i++) {
        b->beams[i].live = hypotheses_new(opt->k, max_len, b->L, hard);
        b->beams[i].next = hypotheses_new(opt->k, max_len, b->L, hard);
        b->beams[i].done = hypotheses_new(opt->k, max_len, b->L, hard);
    }
    return b;
}

void sat_beam_free(sat_beam *b)
{
    if (!b) return;
    for (int i = 0; i < b->max_images; i++) {
        hypotheses_free(b->beams[i].live, b->opt.k);
        hypotheses_free(b->beams[i].next, b->opt.k);
        hypotheses_free(b->beams[i].done, b->opt.k);
    }
    free(b->beams);
    free(b->logprobs);
    free(b->alpha);
    free(b->loc);
    free(b->prev);
    free(b->parents);
    free(b->cand);
    free(b);
}
