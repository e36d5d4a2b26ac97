/* meteor.c — see meteor.h.
 *
 * What follows METEOR 1.5 (its README, the Denkowski & Lavie 2011/2014
 * papers, and its Java source read for these facts):
 *
 *   - English, task "rank": alpha 0.85, beta 0.20, gamma 0.60, delta 0.75;
 *     module weights exact 1.0, stem 0.6, synonym 0.8 (paraphrase 0.6, not
 *     used here).  The stemmer is Snowball's "english" (Porter2).
 *   - Candidates: exact for equal words; stem and synonym only for different
 *     words, so one pair may be both a stem and a synonym candidate.  Per ref
 *     word they are listed exact, stem, synonym, each by hyp position.
 *   - A candidate alone on both of its words is fixed before the search.
 *     Identical sentences get exact candidates only.
 *   - The search goes over the ref words left to right.  It ranks partial
 *     alignments by (a) weighted matches, with weights 1 (exact) and 0.5
 *     (others) added into integers, so a one-word stem or synonym match adds
 *     0 — search_gain[] below; (b) fewer chunks, a chunk being counted when
 *     it closes; (c) less distance, where taking a fixed match adds
 *     |ref pos - hyp pos|, but at a ref word with free candidates the k-th
 *     candidate taken inherits the distances of candidates 0..k-1 and
 *     skipping the word inherits those of all of them (METEOR adds each
 *     candidate's distance to the path that goes on, not to the path that
 *     takes it).  Ties go to the path generated first: candidates in list
 *     order, then skipping.  Our depth-first search in that order keeps a
 *     leaf only if strictly better, so it finds a best alignment under the
 *     same ranking, and among equals the first in that order (what METEOR's
 *     stable sorts keep when equals differ in one choice, e.g. a stem and a
 *     synonym candidate for the same words; the beam itself may differ in
 *     rarer ties, or miss the best).  Branches whose bound cannot beat the
 *     best (matches still reachable, chunks so far, distance so far) are
 *     pruned.
 *     The papers describe (a) as "most words covered"; search_gain {1, 1, 1}
 *     would do that (Flickr8k test, caption #0 against the other four:
 *     METEOR 0.2474 instead of 0.2436).
 *   - Chunks of the final alignment: walking the ref words, a chunk ends at
 *     an unmatched ref word or where the hyp position does not follow the
 *     previous match's.
 *   - Segment statistics are those of the best-scoring reference; corpus
 *     statistics are their sums; the fragmentation is 0 when every word of
 *     both sides is matched in one chunk.
 *
 * Word facts (stem id, WordNet synsets, function word) are computed once per
 * distinct word and kept.
 */
#include "sat/meteor.h"

#include <libstemmer.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wn.h>

#include "sat/captions.h"
#include "sat/util.h"

const double sat_meteor_weights[SAT_METEOR_MODULES] = {1.0, 0.6, 0.8};

/* What a match adds to the search's first criterion (see the top). */
static const long search_gain[SAT_METEOR_MODULES] = {1, 0, 0};

#define WN_WORD_MAX 63   /* longer words (and odd characters) get no synsets */
#define WN_MAX_BASES 8   /* base forms kept per part of speech */
#define STEM_WORD_MAX 255

typedef struct {
    uint32_t stem;        /* id in stems */
    uint32_t syn, nsyn;   /* synsets[syn .. syn + nsyn), sorted, (pos << 32 | offset) */
    uint8_t function;
} word_info;

struct sat_meteor {
    struct sb_stemmer *stemmer;
    sat_strtab words, stems;
    word_info *info;
    size_t info_cap;
    uint64_t *synsets;
    size_t nsynsets, synsets_cap;
    sat_meteor_effort effort;
};

/* ---- lexical resources ---- */

static char wn_message[SAT_ERR_MAX];

static int wn_capture(char *msg)
{
    snprintf(wn_message, sizeof wn_message, "%s", msg);
    wn_message[strcspn(wn_message, "\n")] = 0;
    return -1;
}

sat_meteor *sat_meteor_new(char *err, size_t errlen)
{
    struct sb_stemmer *stemmer = sb_stemmer_new("english", NULL);
    if (!stemmer) {
        sat_fail(err, errlen, "METEOR: no Snowball English stemmer (libstemmer)");
        return NULL;
    }
    display_message = wn_capture;
    if (wninit() != 0) {
        sb_stemmer_delete(stemmer);
        sat_fail(err, errlen, "METEOR: cannot open WordNet (%s); install wordnet-base or set WNSEARCHDIR",
                 wn_message[0] ? wn_message : "wninit failed");
        return NULL;
    }
    sat_meteor *m = sat_xcalloc(1, sizeof *m);
    m->stemmer = stemmer;
    sat_strtab_init(&m->words);
    sat_strtab_init(&m->stems);
    return m;
}

void sat_meteor_free(sat_meteor *m)
{
    if (!m) return;
    sb_stemmer_delete(m->stemmer);
    sat_strtab_free(&m->words);
    sat_strtab_free(&m->stems);
    free(m->info);
    free(m->synsets);
    free(m);
}

void sat_meteor_effort_get(const sat_meteor *m, sat_meteor_effort *out) { *out = m->effort; }

static uint32_t stem_id(sat_meteor *m, const char *w)
{
    size_t n = strlen(w);
    if (n > STEM_WORD_MAX) return (uint32_t)sat_strtab_add(&m->stems, w, NULL);
    const sb_symbol *s = sb_stemmer_stem(m->stemmer, (const sb_symbol *)w, (int)n);
    if (!s) sat_die("METEOR: out of memory in the stemmer");
    char *copy = sat_xmalloc((size_t)sb_stemmer_length(m->stemmer) + 1);
    memcpy(copy, s, (size_t)sb_stemmer_length(m->stemmer));
    copy[sb_stemmer_length(m->stemmer)] = 0;
    uint32_t id = (uint32_t)sat_strtab_add(&m->stems, copy, NULL);
    free(copy);
    return id;
}

/* Words libwordnet is given: short, of [a-z0-9'.-], starting with a letter
 * or digit (its buffers are fixed; WordNet has no other index words). */
static int wordnet_word(const char *w)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(w);
    if (n == 0 || n > WN_WORD_MAX || !strchr(alnum, w[0])) return 0;
    return strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789'.-") == n;
}

static void push_synset(sat_meteor *m, uint64_t key)
{
    if (m->nsynsets == m->synsets_cap) {
        m->synsets_cap = m->synsets_cap ? 2 * m->synsets_cap : 4096;
        m->synsets = sat_xrealloc(m->synsets, m->synsets_cap * sizeof *m->synsets);
    }
    m->synsets[m->nsynsets++] = key;
}

/* The synsets of word (exactly as in the index) in part of speech pos. */
static void index_synsets(sat_meteor *m, const char *word, int pos)
{
    char buf[WN_WORD_MAX + 1];
    snprintf(buf, sizeof buf, "%s", word);
    IndexPtr idx = index_lookup(buf, pos);
    if (!idx) return;
    for (int k = 0; k < idx->off_cnt; k++) push_synset(m, (uint64_t)pos << 32 | (uint32_t)idx->offset[k]);
    free_index(idx);
}

/* Synsets of the word itself and of its base forms, in every part of speech. */
static void word_synsets(sat_meteor *m, const char *word)
{
    for (int pos = NOUN; pos <= ADV; pos++) {
        char buf[WN_WORD_MAX + 1], bases[WN_MAX_BASES][WN_WORD_MAX + 1];
        int nb = 0;
        snprintf(buf, sizeof buf, "%s", word);
        for (char *b = morphstr(buf, pos); b && nb < WN_MAX_BASES; b = morphstr(NULL, pos))
            if (strlen(b) <= WN_WORD_MAX) snprintf(bases[nb++], sizeof bases[0], "%s", b);
        index_synsets(m, word, pos);
        for (int k = 0; k < nb; k++) index_synsets(m, bases[k], pos);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sort and deduplicate synsets[from ..]; returns the count kept. */
static uint32_t settle_synsets(sat_meteor *m, size_t from)
{
    uint64_t *s = m->synsets + from;
    size_t n = m->nsynsets - from, kept = 0;
    if (n == 0) return 0; /* s may be NULL: no synsets stored yet */
    qsort(s, n, sizeof *s, cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (!kept || s[kept - 1] != s[i]) s[kept++] = s[i];
    m->nsynsets = from + kept;
    return (uint32_t)kept;
}

static void word_info_init(sat_meteor *m, word_info *wi, const char *w)
{
    wi->stem = stem_id(m, w);
    wi->function = (uint8_t)sat_meteor_function_word(w);
    wi->syn = (uint32_t)m->nsynsets;
    if (wordnet_word(w)) word_synsets(m, w);
    wi->nsyn = settle_synsets(m, wi->syn);
}

static uint32_t word_id(sat_meteor *m, const char *w)
{
    int added;
    long id = sat_strtab_add(&m->words, w, &added);
    if (added) {
        if ((size_t)id >= m->info_cap) {
            m->info_cap = m->info_cap ? 2 * m->info_cap : 1024;
            m->info = sat_xrealloc(m->info, m->info_cap * sizeof *m->info);
        }
        word_info_init(m, &m->info[id], w);
    }
    return (uint32_t)id;
}

/* The word ids of text's evaluation tokens; returns their number. */
static int sentence_ids(sat_meteor *m, const char *text, uint32_t **ids)
{
    sat_words w;
    int n = sat_tokenize_ptb(text, &w);
    *ids = sat_xmalloc((size_t)(n ? n : 1) * sizeof **ids);
    for (int i = 0; i < n; i++) (*ids)[i] = word_id(m, w.words[i]);
    sat_words_free(&w);
    return n;
}

static int synonyms(const sat_meteor *m, uint32_t a, uint32_t b)
{
    const word_info *x = &m->info[a], *y = &m->info[b];
    const uint64_t *u = m->synsets + x->syn, *v = m->synsets + y->syn;
    for (uint32_t i = 0, k = 0; i < x->nsyn && k < y->nsyn;) {
        if (u[i] == v[k]) return 1;
        if (u[i] < v[k]) i++;
        else k++;
    }
    return 0;
}

/* ---- candidates ---- */

typedef struct {
    int hyp;      /* hyp position */
    int module;
} cand;

typedef struct {
    const uint32_t *h, *r;
    int nh, nr;        /* sentence lengths */
    int mh, mr;        /* matchable prefixes (at most SAT_METEOR_MAX_WORDS) */
    cand *c;
    int nc, cap;
    int *first;        /* [mr + 1]: candidates of ref word j are c[first[j] .. first[j + 1]) */
    int *fixed;        /* [mr]: the definite candidate of ref word j, or -1 */
} pair;

static void add_cand(pair *p, int hyp, int module)
{
    if (p->nc == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->c = sat_xrealloc(p->c, (size_t)p->cap * sizeof *p->c);
    }
    p->c[p->nc++] = (cand){hyp, module};
}

static void find_candidates(const sat_meteor *m, pair *p, int exact_only)
{
    for (int j = 0; j < p->mr; j++) {
        uint32_t rw = p->r[j];
        p->first[j] = p->nc;
        for (int i = 0; i < p->mh; i++)
            if (p->h[i] == rw) add_cand(p, i, SAT_METEOR_EXACT);
        if (exact_only) continue;
        for (int i = 0; i < p->mh; i++)
            if (p->h[i] != rw && m->info[p->h[i]].stem == m->info[rw].stem) add_cand(p, i, SAT_METEOR_STEM);
        for (int i = 0; i < p->mh; i++)
            if (p->h[i] != rw && synonyms(m, p->h[i], rw)) add_cand(p, i, SAT_METEOR_SYNONYM);
    }
    p->first[p->mr] = p->nc;
}

/* A candidate that is its ref word's only one and its hyp word's only one. */
static void find_definite(pair *p)
{
    int *hyp_cover = sat_xcalloc((size_t)p->mh + 1, sizeof *hyp_cover);
    for (int k = 0; k < p->nc; k++) hyp_cover[p->c[k].hyp]++;
    for (int j = 0; j < p->mr; j++) {
        int f = p->first[j];
        p->fixed[j] = p->first[j + 1] - f == 1 && hyp_cover[p->c[f].hyp] == 1 ? f : -1;
    }
    free(hyp_cover);
}

/* ---- search ---- */

typedef struct {
    long gain, chunks, distance;
} rank_key;

/* a strictly before b in METEOR's order */
static int better(const rank_key *a, const rank_key *b)
{
    if (a->gain != b->gain) return a->gain > b->gain;
    if (a->chunks != b->chunks) return a->chunks < b->chunks;
    return a->distance < b->distance;
}

typedef struct {
    const pair *p;
    uint8_t *used;       /* [mh] hyp words taken by the search */
    int *choice, *best;  /* [mr] candidate per ref word, or -1 */
    long *gain_left;     /* [mr + 1] most gain still reachable from ref word j on */
    rank_key best_key;
    int found;
    long nodes;
} search;

static void visit(search *s, int j, int last_end, rank_key k);

static void finish(search *s, int last_end, rank_key k)
{
    if (last_end >= 0) k.chunks++;
    if (s->found && !better(&k, &s->best_key)) return;
    s->found = 1;
    s->best_key = k;
    memcpy(s->best, s->choice, (size_t)s->p->mr * sizeof *s->best);
}

/* Ref word j takes candidate ci. */
static void take(search *s, int j, int ci, int last_end, rank_key k)
{
    const cand *c = &s->p->c[ci];
    k.gain += search_gain[c->module];
    if (last_end >= 0 && c->hyp != last_end) k.chunks++;
    s->choice[j] = ci;
    s->used[c->hyp] = 1;
    visit(s, j + 1, c->hyp + 1, k);
    s->used[c->hyp] = 0;
}

/* Ref word j (a free one): each free candidate, then no match. */
static void branch(search *s, int j, int last_end, rank_key k)
{
    const pair *p = s->p;
    long passed = 0; /* distances of the candidates tried before */
    for (int ci = p->first[j]; ci < p->first[j + 1]; ci++) {
        int hyp = p->c[ci].hyp;
        if (s->used[hyp]) continue;
        rank_key kc = k;
        kc.distance += passed;
        take(s, j, ci, last_end, kc);
        passed += labs((long)j - hyp);
    }
    k.distance += passed;
    if (last_end >= 0) k.chunks++;
    s->choice[j] = -1;
    visit(s, j + 1, -1, k);
}

static void visit(search *s, int j, int last_end, rank_key k)
{
    const pair *p = s->p;
    if (s->nodes >= SAT_METEOR_MAX_NODES) return;
    s->nodes++;
    if (j == p->mr) {
        finish(s, last_end, k);
        return;
    }
    rank_key bound = {k.gain + s->gain_left[j], k.chunks + (last_end >= 0), k.distance};
    if (s->found && !better(&bound, &s->best_key)) return;
    int f = p->fixed[j];
    if (f < 0) {
        branch(s, j, last_end, k);
        return;
    }
    k.distance += labs((long)j - p->c[f].hyp);
    k.gain += search_gain[p->c[f].module];
    if (last_end >= 0 && p->c[f].hyp != last_end) k.chunks++;
    s->choice[j] = f;
    visit(s, j + 1, p->c[f].hyp + 1, k);
}

static void gain_bounds(const pair *p, long *gain_left)
{
    gain_left[p->mr] = 0;
    for (int j = p->mr - 1; j >= 0; j--) {
        long most = 0;
        for (int ci = p->first[j]; ci < p->first[j + 1]; ci++)
            if (search_gain[p->c[ci].module] > most) most = search_gain[p->c[ci].module];
        gain_left[j] = gain_left[j + 1] + most;
    }
}

/* The chosen candidate of every ref word (-1: none) into best[mr]. */
static void run_search(sat_meteor *m, const pair *p, int *best)
{
    search s = {.p = p};
    s.used = sat_xcalloc((size_t)p->mh + 1, 1);
    s.choice = sat_xmalloc(((size_t)p->mr + 1) * sizeof *s.choice);
    s.best = best;
    s.gain_left = sat_xmalloc(((size_t)p->mr + 1) * sizeof *s.gain_left);
    gain_bounds(p, s.gain_left);
    visit(&s, 0, -1, (rank_key){0, 0, 0});
    m->effort.searches++;
    if (s.nodes >= SAT_METEOR_MAX_NODES) m->effort.capped++;
    if (s.nodes > m->effort.max_nodes) m->effort.max_nodes = s.nodes;
    free(s.used);
    free(s.choice);
    free(s.gain_left);
}

/* ---- statistics ---- */

static void pair_stats(const sat_meteor *m, const pair *p, const int *choice, sat_meteor_stats *st)
{
    memset(st, 0, sizeof *st);
    st->hyp_len = p->nh;
    st->ref_len = p->nr;
    for (int i = 0; i < p->nh; i++) st->hyp_function += m->info[p->h[i]].function;
    for (int j = 0; j < p->nr; j++) st->ref_function += m->info[p->r[j]].function;
    int last_end = -1;
    for (int j = 0; j < p->mr; j++) {
        if (choice[j] < 0) {
            if (last_end >= 0) st->chunks++;
            last_end = -1;
            continue;
        }
        const cand *c = &p->c[choice[j]];
        st->hyp_matched[c->module][m->info[p->h[c->hyp]].function]++;
        st->ref_matched[c->module][m->info[p->r[j]].function]++;
        if (last_end >= 0 && c->hyp != last_end) st->chunks++;
        last_end = c->hyp + 1;
    }
    if (last_end >= 0) st->chunks++;
}

static void align(sat_meteor *m, const uint32_t *h, int nh, const uint32_t *r, int nr, sat_meteor_stats *st)
{
    pair p = {.h = h, .r = r, .nh = nh, .nr = nr};
    p.mh = nh < SAT_METEOR_MAX_WORDS ? nh : SAT_METEOR_MAX_WORDS;
    p.mr = nr < SAT_METEOR_MAX_WORDS ? nr : SAT_METEOR_MAX_WORDS;
    p.first = sat_xmalloc(((size_t)p.mr + 1) * sizeof *p.first);
    p.fixed = sat_xmalloc(((size_t)p.mr + 1) * sizeof *p.fixed);
    int identical = nh == nr && memcmp(h, r, (size_t)nh * sizeof *h) == 0;
    find_candidates(m, &p, identical);
    find_definite(&p);
    int *best = sat_xmalloc(((size_t)p.mr + 1) * sizeof *best);
    run_search(m, &p, best);
    pair_stats(m, &p, best, st);
    free(best);
    free(p.c);
    free(p.first);
    free(p.fixed);
}

double sat_meteor_segment(sat_meteor *m, const char *hyp, const char *const *refs, int nrefs,
                          sat_meteor_stats *out)
{
    if (nrefs < 1) sat_die("sat_meteor_segment: a segment needs at least one reference");
    uint32_t *h;
    int nh = sentence_ids(m, hyp, &h);
    double best = -1;
    for (int k = 0; k < nrefs; k++) {
        uint32_t *r;
        int nr = sentence_ids(m, refs[k], &r);
        sat_meteor_stats st;
        align(m, h, nh, r, nr, &st);
        double score = sat_meteor_score(&st, NULL);
        if (score > best) best = score, *out = st;
        free(r);
    }
    free(h);
    return best;
}

void sat_meteor_stats_add(sat_meteor_stats *sum, const sat_meteor_stats *s)
{
    sum->hyp_len += s->hyp_len;
    sum->ref_len += s->ref_len;
    sum->hyp_function += s->hyp_function;
    sum->ref_function += s->ref_function;
    for (int k = 0; k < SAT_METEOR_MODULES; k++)
        for (int f = 0; f < 2; f++) {
            sum->hyp_matched[k][f] += s->hyp_matched[k][f];
            sum->ref_matched[k][f] += s->ref_matched[k][f];
        }
    sum->chunks += s->chunks;
}

/* ---- score ---- */

/* Matched words (unweighted) and delta-weighted module-weighted matches of one side. */
static double side_matches(const long matched[SAT_METEOR_MODULES][2], long *words)
{
    double weighted = 0;
    *words = 0;
    for (int k = 0; k < SAT_METEOR_MODULES; k++) {
        *words += matched[k][0] + matched[k][1];
        weighted += sat_meteor_weights[k] *
                    (SAT_METEOR_DELTA * (double)matched[k][0] + (1 - SAT_METEOR_DELTA) * (double)matched[k][1]);
    }
    return weighted;
}

static double weighted_length(long len, long function)
{
    return SAT_METEOR_DELTA * (double)(len - function) + (1 - SAT_METEOR_DELTA) * (double)function;
}

double sat_meteor_score(const sat_meteor_stats *s, sat_meteor_parts *parts)
{
    sat_meteor_parts q = {0};
    long hyp_words, ref_words;
    double hm = side_matches(s->hyp_matched, &hyp_words), rm = side_matches(s->ref_matched, &ref_words);
    double hl = weighted_length(s->hyp_len, s->hyp_function), rl = weighted_length(s->ref_len, s->ref_function);
    q.precision = hl > 0 ? hm / hl : 0;
    q.recall = rl > 0 ? rm / rl : 0;
    if (q.precision > 0 && q.recall > 0) {
        q.fmean = q.precision * q.recall / (SAT_METEOR_ALPHA * q.precision + (1 - SAT_METEOR_ALPHA) * q.recall);
        int whole = hyp_words == s->hyp_len && ref_words == s->ref_len && s->chunks == 1;
        q.frag = whole ? 0 : (double)s->chunks / ((double)(hyp_words + ref_words) / 2);
        q.penalty = SAT_METEOR_GAMMA * pow(q.frag, SAT_METEOR_BETA);
        q.score = q.fmean * (1 - q.penalty);
        if (q.score < 0) q.score = 0;
    }
    if (parts) *parts = q;
    return q.score;
}
