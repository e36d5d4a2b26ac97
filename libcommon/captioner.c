/* captioner.c — see captioner.h. */
#include "sat/captioner.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/half.h"
#include "sat/nn_simd.h"
#include "sat/util.h"

/* The file -m names; a bare name that is no file here (sat-decoder-hard.satm)
 * is looked up where the default models are. */
static char *model_path(const char *path)
{
    char *found = NULL;
    if (!strchr(path, '/') && access(path, F_OK) != 0) found = sat_find_model(path);
    return found ? found : sat_xstrdup(path);
}

/* Whether two decoders read the same annotation vectors (their own sizes
 * E, H, A may differ: each member keeps its own state). */
static int same_features(const sat_decoder_config *a, const sat_decoder_config *b)
{
    return a->L == b->L && a->D == b->D;
}

/* sat_captioner_member's checks of dec, made from m (NULL: err says why), or
 * NULL with the reason in err; dec is freed then. */
static sat_decoder *checked_member(sat_decoder *dec, const sat_model *m, sat_vocab **vocab,
                                   const char *why, char *err, size_t errlen)
{
    if (!dec) {
        sat_fail(err, errlen, "%s", why);
        return NULL;
    }
    char reason[SAT_ERR_MAX];
    sat_vocab *v = sat_vocab_from_words(m->vocab, m->nvocab, reason, sizeof reason);
    if (!v || v->n != dec->cfg.V) {
        if (!v) sat_fail(err, errlen, "vocabulary: %s", reason);
        else sat_fail(err, errlen, "vocabulary: its size differs from the decoder's V");
        sat_vocab_free(v);
        sat_decoder_free(dec);
        return NULL;
    }
    if (vocab) *vocab = v;
    else sat_vocab_free(v);
    return dec;
}

static int is_decoder(const sat_model *m, char *err, size_t errlen)
{
    if (strcmp(m->kind, "decoder") == 0) return 1;
    sat_fail(err, errlen, "a %s model, not a decoder", m->kind);
    return 0;
}

sat_decoder *sat_captioner_member(const sat_model *m, sat_vocab **vocab, char *err, size_t errlen)
{
    char why[SAT_ERR_MAX];
    if (!is_decoder(m, err, errlen)) return NULL;
    return checked_member(sat_decoder_from_model(m, why, sizeof why), m, vocab, why, err, errlen);
}

/* The same for a model loaded only for this: the decoder takes its params. */
static sat_decoder *take_member(sat_model *m, sat_vocab **vocab, char *err, size_t errlen)
{
    char why[SAT_ERR_MAX];
    if (!is_decoder(m, err, errlen)) return NULL;
    return checked_member(sat_decoder_take_model(m, why, sizeof why), m, vocab, why, err, errlen);
}

/* Load one member into slot i: its model, decoder and (for the first) the
 * vocabulary, which every later member must match word for word, and its
 * sizes; `first` names the first member in the messages. */
static int load_member(sat_captioner *cap, int i, const char *path, const char *first, char *err,
                       size_t errlen)
{
    char *found = model_path(path);
    char why[SAT_ERR_MAX];
    int ok = 0;
    sat_model *m = cap->models[i] = sat_model_load(found, SAT_MODEL_IN_PLACE, why, sizeof why);
    cap->ens.n = i + 1;
    if (!m) sat_fail(err, errlen, "%s", why);
    else if (!(cap->ens.dec[i] = take_member(m, i == 0 ? &cap->vocab : NULL, why, sizeof why)))
        sat_fail(err, errlen, "%s: %s", found, why);
    else if (i > 0 && sat_words_first_difference(m->vocab, m->nvocab, cap->vocab->words,
                                                 cap->vocab->n) >= 0)
        sat_fail(err, errlen, "%s: its vocabulary differs from %s's (an ensemble's models must share one)",
                 found, first);
    else if (i > 0 && !same_features(&cap->ens.dec[i]->cfg, &cap->ens.dec[0]->cfg))
        sat_fail(err, errlen, "%s: it reads other features than %s (an ensemble's models must share L and D)",
                 found, first);
    else
        ok = 1;
    free(found);
    return ok ? 0 : -1;
}

sat_captioner *sat_captioner_load(const char *const *paths, int n, char *err, size_t errlen)
{
    if (n > SAT_ENSEMBLE_MAX) {
        sat_fail(err, errlen, "%d models: an ensemble has at most %d", n, SAT_ENSEMBLE_MAX);
        return NULL;
    }
    static const char *const defaults[] = SAT_DEFAULT_DECODERS;
    if (n <= 0) {
        paths = defaults;
        n = (int)(sizeof defaults / sizeof *defaults);
        for (int i = 0; i < n; i++) {
            char *found = sat_find_model(defaults[i]);
            free(found);
            if (!found) {
                sat_fail(err, errlen, "no decoder model: %s not found (set SAT_MODEL_DIR or give -m)",
                         defaults[i]);
                return NULL;
            }
        }
    }
    sat_captioner *cap = sat_xcalloc(1, sizeof *cap);
    const char *first = paths[0];
    for (int i = 0; i < n; i++)
        if (load_member(cap, i, paths[i], first, err, errlen)) {
            sat_captioner_free(cap);
            return NULL;
        }
    return cap;
}

sat_captioner *sat_captioner_open(const char *const *paths, int n)
{
    char err[SAT_ERR_MAX];
    sat_captioner *cap = sat_captioner_load(paths, n, err, sizeof err);
    if (!cap) sat_die("%s", err);
    return cap;
}

void sat_model_list_add(sat_model_list *list, const char *arg)
{
    if (list->n == SAT_ENSEMBLE_MAX)
        sat_usage_error("--model: at most %d models (an ensemble)", SAT_ENSEMBLE_MAX);
    list->path[list->n++] = arg;
}

void sat_captioner_free(sat_captioner *cap)
{
    if (!cap) return;
    sat_vocab_free(cap->vocab);
    for (int i = 0; i < cap->ens.n; i++) {
        sat_decoder_free((sat_decoder *)cap->ens.dec[i]); /* the captioner owns them */
        sat_model_free(cap->models[i]);
    }
    free(cap);
}

const sat_decoder_config *sat_captioner_config(const sat_captioner *cap)
{
    return &cap->ens.dec[0]->cfg;
}

int sat_captioner_check(const sat_captioner *cap, const sat_features *f, char *err, size_t errlen)
{
    const sat_decoder_config *c = sat_captioner_config(cap);
    if ((long)f->h * f->w == c->L && (long)f->c == c->D) return 0;
    sat_fail(err, errlen, "%s: features are %ux%ux%u but the decoder takes L=%d locations of D=%d",
             f->id, f->h, f->w, f->c, c->L, c->D);
    return -1;
}

void sat_caption_free(sat_caption *c)
{
    free(c->tokens);
    free(c->alpha);
    free(c->locations);
    free(c->word_logprobs);
    memset(c, 0, sizeof *c);
}

static const char *const attend_names[] = {
    [SAT_ATTEND_SOFT] = "soft", [SAT_ATTEND_SAMPLE] = "hard-sample",
    [SAT_ATTEND_ARGMAX] = "hard-argmax",
};

const char *sat_attend_name(sat_attend_mode mode)
{
    unsigned m = (unsigned)mode;
    return m < sizeof attend_names / sizeof *attend_names ? attend_names[m] : NULL;
}

int sat_attend_parse(const char *name, sat_attend_mode *mode)
{
    for (int m = 0; m < (int)(sizeof attend_names / sizeof *attend_names); m++)
        if (attend_names[m] && strcmp(name, attend_names[m]) == 0) {
            *mode = (sat_attend_mode)m;
            return 0;
        }
    return -1;
}

sat_attend_mode sat_attend_option(const char *arg)
{
    sat_attend_mode mode;
    if (sat_attend_parse(arg, &mode))
        sat_usage_error("--attention: '%s' is not soft, hard-sample or hard-argmax", arg);
    return mode;
}

/* One model's part of a step: the sum of its views' log-probabilities and
 * α (model 0's goes to the caller's arrays), the step of its rows (views >
 * 1), and the locations its rows choose (but model 0 on view 0's, recorded). */
typedef struct {
    float *logprobs, *alpha;           /* k_max × V, k_max × L: the sum (models 1...) */
    float *rows_logprobs, *rows_alpha; /* k_max·views × V, × L: every view's row (views > 1) */
    int *loc;                          /* k_max·views */
} model_part;

/* A model reads all views of an image in one decoder state, so that each
 * step streams its weights once for every view: image i's view v is the
 * state's image i·views + v (feats hold the views one after the other), and
 * the rows of an image's c hypotheses are its view 0's c rows, then view
 * 1's (the state keeps rows grouped by image): row_map. */
struct sat_caption_state {
    const sat_ensemble *ens;
    int views, n;             /* members: n = ens->n × views, model by model */
    sat_decoder_state *st[SAT_ENSEMBLE_MAX]; /* a model's rows, every view's */
    model_part part[SAT_ENSEMBLE_MAX];
    int *prev_rows, *given_rows, *parent_rows; /* k_max·views (views > 1) */
    int *image;              /* k_max: each hypothesis's image (views > 1) */
    int *row_map, *old_map;  /* k_max·views: [r·views + v] = the row of hypothesis r's view v */
    uint16_t *feats16;       /* the features in f16 (features_f16), or NULL */
    size_t feats_n;          /* their values */
};

/* row_map of the state's k hypotheses, from their images (grouped). */
static void map_rows(sat_caption_state *st, int k)
{
    const int views = st->views;
    for (int r = 0; r < k;) {
        int first = r;
        while (r < k && st->image[r] == st->image[first]) r++;
        const int c = r - first;
        for (int j = 0; j < c; j++)
            for (int v = 0; v < views; v++)
                st->row_map[(first + j) * views + v] = first * views + v * c + j;
    }
}

typedef struct {
    void (*fn)(void *ctx, int m);
    void *ctx;
    int first, stride, n; /* the models of a thread: first, first + stride, ... < n */
} models_job;

static void *run_models(void *arg)
{
    const models_job *j = arg;
    for (int m = j->first; m < j->n; m += j->stride) j->fn(j->ctx, m);
    return NULL;
}

/* fn(ctx, m) for each of ens's models, on up to `threads` threads (this
 * one among them); fn must only write model m's own data. */
static void each_model(const sat_ensemble *ens, int threads, void (*fn)(void *, int), void *ctx)
{
    threads = threads < 1 ? 1 : threads > ens->n ? ens->n : threads;
    models_job job[SAT_ENSEMBLE_MAX];
    pthread_t tid[SAT_ENSEMBLE_MAX];
    for (int t = 0; t < threads; t++) job[t] = (models_job){ fn, ctx, t, threads, ens->n };
    int started = 1;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, run_models, &job[started])) break;
    for (int t = started; t < threads; t++) run_models(&job[t]); /* no thread: here */
    run_models(&job[0]);
    for (int t = 1; t < started; t++) pthread_join(tid[t], NULL);
}

typedef struct {
    sat_caption_state *st;
    const float *feats;
    int n_images, k_max;
} state_job;

/* feats (n values) in f16 for the steps' context products, or NULL where
 * f16 does not hold them exactly or the CPU has no F16C to read it with.
 * Features records are f16, so their values always fit; a step then
 * streams half the bytes of each row's image. */
static uint16_t *features_f16(const float *feats, size_t n)
{
    if (!nn_simd_f16c()) return NULL;
    uint16_t *h = sat_xmalloc_large(n * sizeof *h);
    if (sat_f32_to_f16_exact(feats, h, n)) return h;
    sat_free_large(h, n * sizeof *h);
    return NULL;
}

/* Model m's decoder state: its attention's projection of the features is
 * most of a caption's set-up, so the models make theirs side by side. */
static void new_model_state(void *arg, int m)
{
    const state_job *j = arg;
    j->st->st[m] = sat_decoder_state_new(j->st->ens->dec[m], j->feats, j->n_images * j->st->views,
                                         j->k_max);
    if (j->st->feats16) sat_decoder_state_use_f16(j->st->st[m], j->st->feats16);
}

sat_caption_state *sat_caption_state_new(const sat_ensemble *ens, const float *feats, int n_images,
                                         int views, int k_max)
{
    sat_caption_state *st = sat_xcalloc(1, sizeof *st);
    const sat_decoder_config *c = &ens->dec[0]->cfg;
    st->ens = ens;
    st->views = views;
    st->n = ens->n * views;
    st->feats_n = (size_t)n_images * views * c->L * c->D;
    st->feats16 = features_f16(feats, st->feats_n);
    state_job job = { st, feats, n_images, k_max };
    each_model(ens, ens->threads, new_model_state, &job);
    const size_t hyps = (size_t)n_images * k_max, rows = hyps * views;
    for (int m = 0; m < ens->n; m++) {
        model_part *p = &st->part[m];
        if (m > 0) {
            p->logprobs = sat_xmalloc(hyps * c->V * sizeof *p->logprobs);
            p->alpha = sat_xmalloc(hyps * c->L * sizeof *p->alpha);
        }
        if (views > 1) {
            p->rows_logprobs = sat_xmalloc(rows * c->V * sizeof *p->rows_logprobs);
            p->rows_alpha = sat_xmalloc(rows * c->L * sizeof *p->rows_alpha);
        }
        if (st->n > 1) p->loc = sat_xmalloc(rows * sizeof *p->loc);
    }
    if (views > 1) {
        st->prev_rows = sat_xmalloc(rows * sizeof *st->prev_rows);
        st->given_rows = sat_xmalloc(rows * sizeof *st->given_rows);
        st->parent_rows = sat_xmalloc(rows * sizeof *st->parent_rows);
        st->row_map = sat_xmalloc(rows * sizeof *st->row_map);
        st->old_map = sat_xmalloc(rows * sizeof *st->old_map);
        st->image = sat_xmalloc(hyps * sizeof *st->image);
        for (int i = 0; i < n_images; i++) st->image[i] = i;
        map_rows(st, n_images);
    }
    return st;
}

void sat_caption_state_free(sat_caption_state *st)
{
    if (!st) return;
    for (int m = 0; m < st->ens->n; m++) {
        model_part *p = &st->part[m];
        sat_decoder_state_free(st->st[m]);
        free(p->logprobs);
        free(p->alpha);
        free(p->rows_logprobs);
        free(p->rows_alpha);
        free(p->loc);
    }
    free(st->prev_rows);
    free(st->given_rows);
    free(st->parent_rows);
    free(st->row_map);
    free(st->old_map);
    free(st->image);
    sat_free_large(st->feats16, st->feats_n * sizeof *st->feats16);
    free(st);
}

/* A value per hypothesis (k) as one per row: out[row of (r, v)] = in[r]. */
static const int *per_row(const sat_caption_state *st, const int *in, int k, int *out)
{
    if (st->views == 1) return in;
    for (int i = 0; i < k * st->views; i++) out[st->row_map[i]] = in[i / st->views];
    return out;
}

void sat_caption_state_select(sat_caption_state *st, const int *parent, int k)
{
    const int views = st->views;
    const int *rows = parent;
    if (views > 1) {
        memcpy(st->old_map, st->row_map, (size_t)sat_decoder_state_k(st->st[0]) * sizeof *st->old_map);
        for (int j = 0; j < k; j++) st->prev_rows[j] = st->image[parent[j]]; /* as scratch */
        memcpy(st->image, st->prev_rows, (size_t)k * sizeof *st->image);
        map_rows(st, k);
        for (int i = 0; i < k * views; i++)
            st->parent_rows[st->row_map[i]] = st->old_map[parent[i / views] * views + i % views];
        rows = st->parent_rows;
    }
    for (int m = 0; m < st->ens->n; m++) sat_decoder_state_select(st->st[m], rows, k * views);
}

/* The state's hypotheses (rows over views). */
static int state_hypotheses(const sat_caption_state *st)
{
    return sat_decoder_state_k(st->st[0]) / st->views;
}

/* One member's step as a caption records it (hard modes: one-hot rows). */
static void member_step(const sat_decoder *dec, sat_decoder_state *st, const int *prev,
                        const sat_step_attend *attend, float *logprobs, float *alpha)
{
    const int L = dec->cfg.L, k = sat_decoder_state_k(st);
    sat_decoder_step(dec, st, prev, attend, logprobs, alpha, NULL);
    if (attend->mode == SAT_ATTEND_SOFT) return;
    memset(alpha, 0, (size_t)k * L * sizeof *alpha);
    for (int j = 0; j < k; j++) alpha[(size_t)j * L + attend->loc[j]] = 1.0f;
}

sat_step_attend sat_decode_attend(const sat_decode_options *opt, int *loc)
{
    return (sat_step_attend){ .mode = opt->attend, .rng = opt->rng, .loc = loc };
}

/* Rows of x (n × m) minus their log-sum-exp: log-probabilities again. */
static void log_normalize_rows(float *x, int n, int m)
{
    for (int r = 0; r < n; r++) {
        float *row = x + (size_t)r * m, max = row[0];
        for (int j = 1; j < m; j++) max = row[j] > max ? row[j] : max;
        double total = 0;
        for (int j = 0; j < m; j++) total += exp(row[j] - max);
        float lse = max + (float)log(total);
        for (int j = 0; j < m; j++) row[j] -= lse;
    }
}

/* x[i] += y[i] for i < n. */
static void add_to(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* The rows of hypothesis r (n values each) summed over its views into
 * out[r], view 0 first, for the state's k hypotheses. */
static void sum_views(const sat_caption_state *st, const float *rows, int k, size_t n, float *out)
{
    const int views = st->views;
    for (int r = 0; r < k; r++) {
        float *o = out + (size_t)r * n;
        memcpy(o, rows + (size_t)st->row_map[r * views] * n, n * sizeof *o);
        for (int v = 1; v < views; v++) add_to(o, rows + (size_t)st->row_map[r * views + v] * n, n);
    }
}

/* Model m's members (its views, one row each) stepped, their
 * log-probabilities and α summed into logprobs and alpha: model 0 on view
 * 0 with the caller's attend (its locations are recorded), the others
 * choosing their own.  prev (and given locations) are per row. */
static void model_step(sat_caption_state *st, int m, const int *prev, const sat_step_attend *attend,
                       float *logprobs, float *alpha)
{
    const sat_decoder *dec = st->ens->dec[m];
    model_part *p = &st->part[m];
    const int views = st->views, k = state_hypotheses(st);
    sat_step_attend own = *attend;
    if (attend->mode != SAT_ATTEND_GIVEN && st->n > 1) own.loc = p->loc;
    if (views == 1) {
        member_step(dec, st->st[m], prev, m == 0 ? attend : &own, logprobs, alpha);
        return;
    }
    member_step(dec, st->st[m], prev, &own, p->rows_logprobs, p->rows_alpha);
    sum_views(st, p->rows_logprobs, k, (size_t)dec->cfg.V, logprobs);
    sum_views(st, p->rows_alpha, k, (size_t)dec->cfg.L, alpha);
    if (m == 0 && attend->mode != SAT_ATTEND_SOFT && attend->mode != SAT_ATTEND_GIVEN)
        for (int r = 0; r < k; r++) attend->loc[r] = own.loc[st->row_map[r * views]];
}

typedef struct {
    sat_caption_state *st;
    const int *prev;
    const sat_step_attend *attend;
    float *logprobs, *alpha; /* the caller's: model 0's sum */
} step_job;

static void step_model(void *arg, int m)
{
    const step_job *j = arg;
    model_part *p = &j->st->part[m];
    model_step(j->st, m, j->prev, j->attend, m ? p->logprobs : j->logprobs, m ? p->alpha : j->alpha);
}

/* Every model's step, on up to ens->threads threads: the models are
 * independent, each writes its own part.  hard-sample draws from one
 * generator, in member order: one thread. */
static void step_all_models(sat_caption_state *st, const int *prev, const sat_step_attend *attend,
                            float *logprobs, float *alpha)
{
    step_job job = { st, prev, attend, logprobs, alpha };
    each_model(st->ens, attend->mode == SAT_ATTEND_SAMPLE ? 1 : st->ens->threads, step_model, &job);
}

void sat_caption_step(sat_caption_state *st, const int *prev, const sat_step_attend *attend,
                      float *logprobs, float *alpha)
{
    const int k = state_hypotheses(st);
    sat_step_attend rows = *attend;
    if (attend->mode == SAT_ATTEND_GIVEN)
        rows.loc = (int *)per_row(st, attend->loc, k, st->given_rows);
    step_all_models(st, per_row(st, prev, k, st->prev_rows), &rows, logprobs, alpha);
    if (st->n == 1) return;
    const sat_ensemble *e = st->ens;
    const int V = e->dec[0]->cfg.V, L = e->dec[0]->cfg.L;
    /* model by model, each model's views summed first: the same sums
     * whatever the threads */
    for (int m = 1; m < e->n; m++) {
        add_to(logprobs, st->part[m].logprobs, (size_t)k * V);
        add_to(alpha, st->part[m].alpha, (size_t)k * L);
    }
    for (size_t i = 0; i < (size_t)k * V; i++) logprobs[i] /= (float)st->n;
    for (size_t i = 0; i < (size_t)k * L; i++) alpha[i] /= (float)st->n;
    log_normalize_rows(logprobs, k, V);
}

/* Room for up to `steps` steps (words and <end>). */
static void caption_alloc(sat_caption *c, int steps, int L, int hard, int teacher)
{
    *c = (sat_caption){
        .tokens = sat_xmalloc((size_t)steps * sizeof *c->tokens),
        .alpha = sat_xmalloc((size_t)steps * L * sizeof *c->alpha),
        .locations = hard ? sat_xmalloc((size_t)steps * sizeof *c->locations) : NULL,
        .word_logprobs = teacher ? sat_xmalloc((size_t)steps * sizeof *c->word_logprobs) : NULL,
    };
}

int sat_caption_may_emit(int word, int allow_unk)
{
    return word != SAT_VOCAB_START && (allow_unk || word != SAT_VOCAB_UNK);
}

/* Whether a picked word may be v. */
static int may_pick(int v, int allow_unk, int may_end)
{
    return sat_caption_may_emit(v, allow_unk) && (may_end || v != SAT_VOCAB_END);
}

/* Index drawn from p^(1/T) given log-probabilities (T > 0), among the words
 * that may be picked. */
static int sample_word(const float *logprobs, int V, float temperature, int allow_unk, int may_end,
                       sat_rng *rng)
{
    double max = -INFINITY, total = 0;
    for (int v = 0; v < V; v++)
        if (may_pick(v, allow_unk, may_end) && logprobs[v] > max) max = logprobs[v];
    for (int v = 0; v < V; v++)
        if (may_pick(v, allow_unk, may_end)) total += exp((logprobs[v] - max) / temperature);
    double u = sat_rng_uniform(rng) * total;
    int last = SAT_VOCAB_END;
    for (int v = 0; v < V; v++) {
        if (!may_pick(v, allow_unk, may_end)) continue;
        u -= exp((logprobs[v] - max) / temperature);
        last = v;
        if (u <= 0) return v;
    }
    return last;
}

static int best_word(const float *logprobs, int V, int allow_unk, int may_end)
{
    int best = -1;
    for (int v = 0; v < V; v++)
        if (may_pick(v, allow_unk, may_end) && (best < 0 || logprobs[v] > logprobs[best])) best = v;
    return best < 0 ? SAT_VOCAB_END : best;
}

int sat_caption_pick_word(const float *logprobs, int V, float temperature, int allow_unk,
                          int may_end, sat_rng *rng)
{
    return temperature > 0 ? sample_word(logprobs, V, temperature, allow_unk, may_end, rng)
                           : best_word(logprobs, V, allow_unk, may_end);
}

/* The rows of a batched decoding: the image of each caption still running,
 * the word each read last, and one step's output. */
typedef struct {
    int *image, *prev, *parent, *loc;
    float *logprobs, *alpha; /* rows × V, rows × L */
} decode_rows;

static decode_rows decode_rows_new(int n, int V, int L)
{
    decode_rows d = {
        .image = sat_xmalloc((size_t)n * sizeof(int)), .prev = sat_xmalloc((size_t)n * sizeof(int)),
        .parent = sat_xmalloc((size_t)n * sizeof(int)), .loc = sat_xmalloc((size_t)n * sizeof(int)),
        .logprobs = sat_xmalloc((size_t)n * V * sizeof(float)),
        .alpha = sat_xmalloc((size_t)n * L * sizeof(float)),
    };
    for (int i = 0; i < n; i++) d.image[i] = i, d.prev[i] = SAT_VOCAB_START;
    return d;
}

static void decode_rows_free(decode_rows *d)
{
    free(d->image), free(d->prev), free(d->parent), free(d->loc);
    free(d->logprobs), free(d->alpha);
}

/* Where the rows' words come from: their captions (teacher forcing), or
 * picked as opt says. */
typedef struct {
    const sat_decode_options *opt;
    const sat_teacher_row *rows; /* teacher forcing: one per caption; NULL when decoding */
} word_source;

/* Step t's word of caption r given the step's log-probabilities lp; *last
 * when it is the caption's <end>. */
static int next_word(const word_source *s, int r, const float *lp, int t, int V, int *last)
{
    if (s->rows) {
        const sat_teacher_row *row = &s->rows[r];
        *last = t == row->n;
        return *last ? SAT_VOCAB_END : row->tokens[t];
    }
    const sat_decode_options *o = s->opt;
    /* After max_len words only <end> may follow. */
    int word = t == o->max_len
                   ? SAT_VOCAB_END
                   : sat_caption_pick_word(lp, V, o->temperature, o->allow_unk, t > 0, o->rng);
    *last = word == SAT_VOCAB_END;
    return word;
}

/* Step t's word for each of the n running rows (d->image: their captions in
 * out) into its caption; the rows that go on are packed to the front
 * (parent: where each was), with the word they read next.  Returns how many
 * go on. */
static int step_words(decode_rows *d, int n, int t, int V, int L, const word_source *s,
                      sat_caption *out)
{
    int next = 0;
    for (int j = 0; j < n; j++) {
        sat_caption *c = &out[d->image[j]];
        const float *lp = d->logprobs + (size_t)j * V;
        memcpy(c->alpha + (size_t)t * L, d->alpha + (size_t)j * L, (size_t)L * sizeof(float));
        if (c->locations) c->locations[t] = d->loc[j];
        int last, word = next_word(s, d->image[j], lp, t, V, &last);
        if (c->word_logprobs) c->word_logprobs[t] = lp[word];
        c->logprob += lp[word];
        if (last) continue;
        c->tokens[c->n++] = word;
        d->image[next] = d->image[j], d->prev[next] = word, d->parent[next++] = j;
    }
    return next;
}

/* Step the n rows of d (in state st) until every caption has ended. */
static void step_rows(sat_caption_state *st, decode_rows *d, int n, int V, int L,
                      const word_source *s, sat_caption *out)
{
    const sat_step_attend attend = sat_decode_attend(s->opt, d->loc);
    for (int t = 0; n > 0; t++) {
        sat_caption_step(st, d->prev, &attend, d->logprobs, d->alpha);
        int next = step_words(d, n, t, V, L, s, out);
        if (next > 0 && next < n) sat_caption_state_select(st, d->parent, next);
        n = next;
    }
}

void sat_caption_decode(const sat_ensemble *ens, const float *feats, int n_images, int views,
                        const sat_decode_options *opt, sat_caption *out)
{
    const int V = ens->dec[0]->cfg.V, L = ens->dec[0]->cfg.L;
    sat_caption_state *st = sat_caption_state_new(ens, feats, n_images, views, 1);
    decode_rows d = decode_rows_new(n_images, V, L);
    for (int i = 0; i < n_images; i++)
        caption_alloc(&out[i], opt->max_len + 1, L, opt->attend != SAT_ATTEND_SOFT, 0);
    step_rows(st, &d, n_images, V, L, &(word_source){opt, NULL}, out);
    decode_rows_free(&d);
    sat_caption_state_free(st);
}

void sat_caption_teacher(const sat_ensemble *ens, const float *feats, int n_images, int views,
                         const sat_teacher_row *rows, int n_rows, const sat_decode_options *opt,
                         sat_caption *out)
{
    const int V = ens->dec[0]->cfg.V, L = ens->dec[0]->cfg.L;
    int per_image = 1;
    for (int r = 0, run = 1; r < n_rows; r++, run++) {
        if (r > 0 && rows[r].image != rows[r - 1].image) run = 1;
        per_image = run > per_image ? run : per_image;
    }
    sat_caption_state *st = sat_caption_state_new(ens, feats, n_images, views, per_image);
    decode_rows d = decode_rows_new(n_rows, V, L);
    for (int r = 0; r < n_rows; r++) {
        caption_alloc(&out[r], rows[r].n + 1, L, opt->attend != SAT_ATTEND_SOFT, 1);
        d.parent[r] = rows[r].image; /* every row starts from its image's (h0, c0) */
    }
    sat_caption_state_select(st, d.parent, n_rows);
    step_rows(st, &d, n_rows, V, L, &(word_source){opt, rows}, out);
    decode_rows_free(&d);
    sat_caption_state_free(st);
}

double sat_caption_perplexity(const sat_caption *c)
{
    return exp(-c->logprob / (c->n + 1));
}

char *sat_caption_text(const sat_captioner *cap, const sat_caption *c)
{
    return sat_vocab_text(cap->vocab, c->tokens, c->n);
}

void sat_caption_pack(sat_writer *w, const sat_captioner *cap, const sat_caption *c,
                      const sat_caption_meta *meta)
{
    sat_model_ref models[SAT_ENSEMBLE_MAX];
    for (int m = 0; m < cap->ens.n; m++)
        models[m] = (sat_model_ref){cap->models[m]->name, cap->models[m]->weights_sha256};
    char **words = sat_xmalloc(((size_t)c->n + 1) * sizeof *words);
    for (int i = 0; i < c->n; i++) words[i] = cap->vocab->words[c->tokens[i]];
    sat_caption_record r = {
        .id = (char *)meta->id, .text = sat_caption_text(cap, c), .words = words,
        .nwords = (uint32_t)c->n, .tokens = c->tokens, .logprob = c->logprob,
        .method = (char *)meta->method, .attention = (char *)meta->attention, .alpha = c->alpha,
        .alpha_h = (uint32_t)meta->alpha_h, .alpha_w = (uint32_t)meta->alpha_w,
        .models = models, .nmodels = cap->ens.n, .locations = c->locations,
        .word_logprobs = c->word_logprobs,
        .perplexity = c->word_logprobs ? sat_caption_perplexity(c) : 0, .rank = meta->rank};
    sat_caption_record_pack(w, &r);
    free(r.text);
    free(words);
}
