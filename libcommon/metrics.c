/* metrics.c — see metrics.h.
 *
 * Words are interned to ids, and every distinct n-gram (n = 1..4) of the
 * corpus to a dense gram id through a table keyed by (id of its (n-1)-gram
 * prefix, last word).  A sentence is then its sorted (gram id, count) list,
 * so matching two sentences is a merge of two sorted lists.
 *
 * CIDEr-D, as pycocoevalcap's CiderScorer (sigma 6, clipping, "D" variant):
 *   df(g)    = number of images whose references (together) contain g
 *   w(g)     = tf(g) * (log(N) - log(max(1, df(g))))   N = number of images
 *   sim_n    = sum_{g of order n in hyp} min(w_h(g), w_r(g)) * w_r(g)
 *              / (|w_h|_n * |w_r|_n)   (left as is when a norm is 0)
 *              * exp(-(len_h - len_r)^2 / (2 sigma^2))
 *   image    = 10 * mean_n (sum over references of sim_n) / number of references
 * where len is a sentence's number of words.  (The Python code counts its
 * bigrams, words - 1; the difference of two lengths is the same unless one
 * sentence is empty, and then the similarity is 0 anyway.)
 * On a single image df = 1 = N for every reference n-gram, so CIDEr-D is 0.
 */
#include "sat/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/util.h"

#define NO_PREFIX UINT32_MAX

typedef struct {
    uint32_t gram;
    uint32_t count;
} gram_count;

typedef struct {
    uint32_t *tokens;   /* word ids, for the LCS */
    int len;
    gram_count *grams;  /* sorted by gram id */
    int ngrams;
    double *weights;    /* CIDEr-D tf-idf of each gram, set when scoring */
    double norm[SAT_BLEU_N];
} sentence;

typedef struct {
    sentence hyp;
    sentence *refs;
    int nrefs;
    sat_image_scores scores;
} image;

struct sat_metrics {
    sat_strtab words;
    uint64_t *gram_keys;   /* open addressing: prefix << 32 | word, 0 = empty slot */
    uint32_t *gram_ids;
    size_t gram_slots;
    uint8_t *gram_order;   /* gram id -> n - 1 */
    size_t ngrams, gram_cap;
    image *images;
    size_t n, cap;
    sat_meteor *meteor;    /* borrowed; NULL: no METEOR */
    int end_word;          /* sat_metrics_end_word: every sentence ends in END_WORD */
};

/* No token of sat_tokenize_ptb holds a space, so no text's word is this one. */
#define END_WORD " <end>"

sat_metrics *sat_metrics_new(void)
{
    sat_metrics *m = sat_xcalloc(1, sizeof *m);
    sat_strtab_init(&m->words);
    return m;
}

void sat_metrics_end_word(sat_metrics *m)
{
    if (m->n) sat_die("sat_metrics_end_word: images were added before");
    m->end_word = 1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* +1 so that no key is 0 (the empty-slot mark): prefix < UINT32_MAX or NO_PREFIX. */
static uint64_t gram_key(uint32_t prefix, uint32_t word) { return ((uint64_t)prefix << 32 | word) + 1; }

static void gram_insert_slot(sat_metrics *m, uint64_t key, uint32_t id)
{
    size_t mask = m->gram_slots - 1, i = mix64(key) & mask;
    while (m->gram_keys[i]) i = (i + 1) & mask;
    m->gram_keys[i] = key;
    m->gram_ids[i] = id;
}

static void gram_grow_slots(sat_metrics *m)
{
    uint64_t *keys = m->gram_keys;
    uint32_t *ids = m->gram_ids;
    size_t old = m->gram_slots;
    m->gram_slots = old ? 2 * old : 1024;
    m->gram_keys = sat_xcalloc(m->gram_slots, sizeof *m->gram_keys);
    m->gram_ids = sat_xmalloc(m->gram_slots * sizeof *m->gram_ids);
    for (size_t i = 0; i < old; i++)
        if (keys[i]) gram_insert_slot(m, keys[i], ids[i]);
    free(keys);
    free(ids);
}

/* The id of the n-gram (prefix n-gram, word); order = n - 1. */
static uint32_t gram_id(sat_metrics *m, uint32_t prefix, uint32_t word, int order)
{
    uint64_t key = gram_key(prefix, word);
    if (m->gram_slots) {
        size_t mask = m->gram_slots - 1;
        for (size_t i = mix64(key) & mask; m->gram_keys[i]; i = (i + 1) & mask)
            if (m->gram_keys[i] == key) return m->gram_ids[i];
    }
    if (m->ngrams >= UINT32_MAX - 1) sat_die("too many distinct n-grams");
    if ((m->ngrams + 1) * 2 > m->gram_slots) gram_grow_slots(m);
    if (m->ngrams == m->gram_cap) {
        m->gram_cap = m->gram_cap ? 2 * m->gram_cap : 1024;
        m->gram_order = sat_xrealloc(m->gram_order, m->gram_cap);
    }
    uint32_t id = (uint32_t)m->ngrams++;
    m->gram_order[id] = (uint8_t)order;
    gram_insert_slot(m, key, id);
    return id;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void sentence_init(sat_metrics *m, sentence *s, const char *text)
{
    sat_words w;
    memset(s, 0, sizeof *s);
    int nwords = sat_tokenize_ptb(text, &w);
    s->len = nwords + m->end_word;
    s->tokens = sat_xmalloc((size_t)s->len * sizeof *s->tokens);
    for (int i = 0; i < nwords; i++) s->tokens[i] = (uint32_t)sat_strtab_add(&m->words, w.words[i], NULL);
    if (m->end_word) s->tokens[nwords] = (uint32_t)sat_strtab_add(&m->words, END_WORD, NULL);
    sat_words_free(&w);

    /* every n-gram occurrence, then sorted and counted */
    uint32_t *all = sat_xmalloc((size_t)s->len * SAT_BLEU_N * sizeof *all);
    int nall = 0;
    for (int i = 0; i < s->len; i++) {
        uint32_t prefix = NO_PREFIX;
        for (int k = 0; k < SAT_BLEU_N && i + k < s->len; k++)
            all[nall++] = prefix = gram_id(m, prefix, s->tokens[i + k], k);
    }
    qsort(all, (size_t)nall, sizeof *all, cmp_u32);
    s->grams = sat_xmalloc((size_t)nall * sizeof *s->grams);
    for (int i = 0; i < nall; i++) {
        if (s->ngrams && s->grams[s->ngrams - 1].gram == all[i]) s->grams[s->ngrams - 1].count++;
        else s->grams[s->ngrams++] = (gram_count){all[i], 1};
    }
    free(all);
}

static void sentence_free(sentence *s)
{
    free(s->tokens);
    free(s->grams);
    free(s->weights);
}

void sat_metrics_add(sat_metrics *m, const char *hyp, const char *const *refs, int nrefs)
{
    if (nrefs < 1) sat_die("sat_metrics_add: an image needs at least one reference");
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->images = sat_xrealloc(m->images, m->cap * sizeof *m->images);
    }
    image *im = &m->images[m->n++];
    memset(im, 0, sizeof *im);
    sentence_init(m, &im->hyp, hyp);
    im->refs = sat_xmalloc((size_t)nrefs * sizeof *im->refs);
    im->nrefs = nrefs;
    for (int r = 0; r < nrefs; r++) sentence_init(m, &im->refs[r], refs[r]);
    if (m->meteor) {
        im->scores.meteor = sat_meteor_segment(m->meteor, hyp, refs, nrefs, &im->scores.meteor_stats);
        im->scores.has_meteor = 1;
    }
}

void sat_metrics_set_meteor(sat_metrics *m, sat_meteor *meteor) { m->meteor = meteor; }

size_t sat_metrics_count(const sat_metrics *m) { return m->n; }

void sat_metrics_free(sat_metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        sentence_free(&m->images[i].hyp);
        for (int r = 0; r < m->images[i].nrefs; r++) sentence_free(&m->images[i].refs[r]);
        free(m->images[i].refs);
    }
    free(m->images);
    free(m->gram_keys);
    free(m->gram_ids);
    free(m->gram_order);
    sat_strtab_free(&m->words);
    free(m);
}

/* ---- BLEU ---- */

void sat_bleu_stats_add(sat_bleu_stats *sum, const sat_bleu_stats *s)
{
    sum->reflen += s->reflen;
    sum->testlen += s->testlen;
    for (int k = 0; k < SAT_BLEU_N; k++) {
        sum->guess[k] += s->guess[k];
        sum->correct[k] += s->correct[k];
    }
}

void sat_bleu_scores(const sat_bleu_stats *s, int brevity_penalty, double bleu[SAT_BLEU_N])
{
    const double tiny = 1e-15, small = 1e-9; /* coco's guards against 0/0 */
    double ratio = ((double)s->testlen + tiny) / ((double)s->reflen + small);
    double product = 1;
    for (int n = 1; n <= SAT_BLEU_N; n++) {
        product *= ((double)s->correct[n - 1] + tiny) / ((double)s->guess[n - 1] + small);
        bleu[n - 1] = pow(product, 1.0 / n);
        if (brevity_penalty && ratio < 1) bleu[n - 1] *= exp(1 - 1 / ratio);
    }
}

/* Count of gram g in s, by binary search. */
static uint32_t gram_count_in(const sentence *s, uint32_t g)
{
    int lo = 0, hi = s->ngrams;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->grams[mid].gram < g) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->ngrams && s->grams[lo].gram == g ? s->grams[lo].count : 0;
}

static void bleu_image(const sat_metrics *m, const image *im, sat_bleu_stats *st)
{
    memset(st, 0, sizeof *st);
    st->testlen = im->hyp.len;
    st->reflen = im->refs[0].len;
    for (int r = 1; r < im->nrefs; r++) {
        long len = im->refs[r].len, d = labs(len - st->testlen), best = labs(st->reflen - st->testlen);
        if (d < best || (d == best && len < st->reflen)) st->reflen = len;
    }
    for (int k = 0; k < SAT_BLEU_N; k++) st->guess[k] = im->hyp.len > k ? im->hyp.len - k : 0;
    for (int i = 0; i < im->hyp.ngrams; i++) {
        const gram_count *g = &im->hyp.grams[i];
        uint32_t max_ref = 0;
        for (int r = 0; r < im->nrefs; r++) {
            uint32_t c = gram_count_in(&im->refs[r], g->gram);
            if (c > max_ref) max_ref = c;
        }
        st->correct[m->gram_order[g->gram]] += g->count < max_ref ? g->count : max_ref;
    }
}

/* ---- ROUGE-L ---- */

/* Length of the longest common subsequence, in O(|b|) memory. */
static int lcs_length(const uint32_t *a, int na, const uint32_t *b, int nb)
{
    int *row = sat_xcalloc((size_t)nb + 1, sizeof *row);
    for (int i = 0; i < na; i++) {
        int diag = 0; /* row[j] of the previous i, at j - 1 */
        for (int j = 1; j <= nb; j++) {
            int up = row[j];
            row[j] = a[i] == b[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
            diag = up;
        }
    }
    int len = row[nb];
    free(row);
    return len;
}

static double rouge_l_image(const image *im)
{
    double prec_max = 0, rec_max = 0, b2 = SAT_ROUGE_BETA * SAT_ROUGE_BETA;
    for (int r = 0; r < im->nrefs; r++) {
        const sentence *ref = &im->refs[r];
        int lcs = lcs_length(ref->tokens, ref->len, im->hyp.tokens, im->hyp.len);
        double prec = im->hyp.len ? (double)lcs / im->hyp.len : 0;
        double rec = ref->len ? (double)lcs / ref->len : 0;
        if (prec > prec_max) prec_max = prec;
        if (rec > rec_max) rec_max = rec;
    }
    if (prec_max == 0 || rec_max == 0) return 0;
    return (1 + b2) * prec_max * rec_max / (rec_max + b2 * prec_max);
}

/* ---- CIDEr-D ---- */

/* df[g]: in how many images' reference sets gram g occurs. */
static double *document_frequency(const sat_metrics *m)
{
    double *df = sat_xcalloc(m->ngrams, sizeof *df);
    size_t *last = sat_xcalloc(m->ngrams, sizeof *last); /* image index + 1 that last counted g */
    for (size_t i = 0; i < m->n; i++) {
        const image *im = &m->images[i];
        for (int r = 0; r < im->nrefs; r++)
            for (int j = 0; j < im->refs[r].ngrams; j++) {
                uint32_t g = im->refs[r].grams[j].gram;
                if (last[g] != i + 1) df[g] += 1, last[g] = i + 1;
            }
    }
    free(last);
    return df;
}

/* tf-idf weights and norms of s; grams g >= ndf (new since df was counted)
 * have df 0. */
static void cider_vector(const sat_metrics *m, sentence *s, const double *df, size_t ndf,
                         double log_n)
{
    free(s->weights);
    s->weights = sat_xmalloc((size_t)s->ngrams * sizeof *s->weights);
    double sq[SAT_BLEU_N] = {0};
    for (int i = 0; i < s->ngrams; i++) {
        uint32_t g = s->grams[i].gram;
        double dfg = g < ndf ? df[g] : 0;
        double w = s->grams[i].count * (log_n - log(dfg > 1 ? dfg : 1));
        s->weights[i] = w;
        sq[m->gram_order[g]] += w * w;
    }
    for (int k = 0; k < SAT_BLEU_N; k++) s->norm[k] = sqrt(sq[k]);
}

/* sim_n of a hypothesis and one reference, added into val[n]. */
static void cider_sim(const sat_metrics *m, const sentence *h, const sentence *r, double val[SAT_BLEU_N])
{
    double dot[SAT_BLEU_N] = {0};
    for (int i = 0, j = 0; i < h->ngrams && j < r->ngrams;) {
        uint32_t gh = h->grams[i].gram, gr = r->grams[j].gram;
        if (gh < gr) {
            i++;
        } else if (gr < gh) {
            j++;
        } else {
            double wh = h->weights[i], wr = r->weights[j];
            dot[m->gram_order[gh]] += (wh < wr ? wh : wr) * wr; /* the "D" clipping */
            i++, j++;
        }
    }
    double delta = (double)(h->len - r->len);
    double penalty = exp(-(delta * delta) / (2 * SAT_CIDER_SIGMA * SAT_CIDER_SIGMA));
    for (int k = 0; k < SAT_BLEU_N; k++) {
        if (h->norm[k] != 0 && r->norm[k] != 0) dot[k] /= h->norm[k] * r->norm[k];
        val[k] += dot[k] * penalty;
    }
}

/* CIDEr-D of hyp against the references of im (weights already set). */
static double cider_d_image(const sat_metrics *m, const sentence *hyp, const image *im)
{
    double val[SAT_BLEU_N] = {0};
    for (int r = 0; r < im->nrefs; r++) cider_sim(m, hyp, &im->refs[r], val);
    double sum = 0;
    for (int k = 0; k < SAT_BLEU_N; k++) sum += val[k];
    return 10.0 * (sum / SAT_BLEU_N) / im->nrefs;
}

static void cider_d_all(sat_metrics *m)
{
    double *df = document_frequency(m);
    double log_n = log((double)m->n);
    for (size_t i = 0; i < m->n; i++) {
        image *im = &m->images[i];
        cider_vector(m, &im->hyp, df, m->ngrams, log_n);
        for (int r = 0; r < im->nrefs; r++) cider_vector(m, &im->refs[r], df, m->ngrams, log_n);
        im->scores.cider_d = cider_d_image(m, &im->hyp, im);
    }
    free(df);
}

struct sat_cider {
    sat_metrics *corpus;
    double *df, log_n;
    size_t ndf;
};

sat_cider *sat_cider_new(sat_metrics *corpus)
{
    if (!corpus->n) sat_die("sat_cider_new: no images");
    sat_cider *c = sat_xcalloc(1, sizeof *c);
    c->corpus = corpus;
    c->df = document_frequency(corpus);
    c->ndf = corpus->ngrams;
    c->log_n = log((double)corpus->n);
    for (size_t i = 0; i < corpus->n; i++)
        for (int r = 0; r < corpus->images[i].nrefs; r++)
            cider_vector(corpus, &corpus->images[i].refs[r], c->df, c->ndf, c->log_n);
    return c;
}

double sat_cider_score(sat_cider *c, size_t image_index, const char *text)
{
    if (image_index >= c->corpus->n) sat_die("sat_cider_score: image %zu of %zu", image_index, c->corpus->n);
    sentence hyp;
    sentence_init(c->corpus, &hyp, text);
    cider_vector(c->corpus, &hyp, c->df, c->ndf, c->log_n);
    double score = cider_d_image(c->corpus, &hyp, &c->corpus->images[image_index]);
    sentence_free(&hyp);
    return score;
}

void sat_cider_free(sat_cider *c)
{
    if (!c) return;
    free(c->df);
    free(c);
}

/* ---- METEOR: the statistics summed over the images, then scored ---- */

static void meteor_all(const sat_metrics *m, sat_metric_scores *out)
{
    out->has_meteor = 1;
    for (size_t i = 0; i < m->n && out->has_meteor; i++) {
        out->has_meteor = m->images[i].scores.has_meteor;
        sat_meteor_stats_add(&out->meteor_stats, &m->images[i].scores.meteor_stats);
    }
    if (out->has_meteor) out->meteor = sat_meteor_score(&out->meteor_stats, NULL);
    else memset(&out->meteor_stats, 0, sizeof out->meteor_stats);
}

/* ---- all ---- */

void sat_metrics_score(sat_metrics *m, sat_metric_scores *out)
{
    memset(out, 0, sizeof *out);
    out->images = m->n;
    if (!m->n) return;
    cider_d_all(m);
    for (size_t i = 0; i < m->n; i++) {
        image *im = &m->images[i];
        bleu_image(m, im, &im->scores.bleu);
        im->scores.rouge_l = rouge_l_image(im);
        sat_bleu_stats_add(&out->bleu_stats, &im->scores.bleu);
        out->rouge_l += im->scores.rouge_l;
        out->cider_d += im->scores.cider_d;
    }
    out->rouge_l /= (double)m->n;
    out->cider_d /= (double)m->n;
    meteor_all(m, out);
    sat_bleu_scores(&out->bleu_stats, 1, out->bleu);
    sat_bleu_scores(&out->bleu_stats, 0, out->bleu_nobp);
}

void sat_metrics_image(const sat_metrics *m, size_t i, sat_image_scores *out)
{
    if (i >= m->n) sat_die("sat_metrics_image: image %zu of %zu", i, m->n);
    *out = m->images[i].scores;
}
