/* meteor.h — METEOR 1.5 without its paraphrase module ("METEOR (no
 * paraphrase)"), computed as coco-caption runs METEOR 1.5 (Denkowski & Lavie
 * 2014, `meteor-1.5.jar - - -stdio -l en -norm`), without Java.
 *
 * Words are sat_tokenize_ptb() tokens (what coco-caption feeds METEOR).  A
 * hypothesis is aligned to each reference word by word (1-to-1 matches):
 *
 *   candidates  every pair (hyp word, ref word) that matches by a module:
 *               exact (same word), stem (different words, same Snowball
 *               "english" stem: libstemmer), synonym (different words that
 *               share a WordNet synset, each word standing for itself and
 *               its WordNet base forms: libwordnet's morphstr()); a pair can
 *               be a stem and a synonym candidate at once.
 *   definite    a candidate that is the only one of both of its words is
 *               taken as is.
 *   search      the other ref words, left to right, each take one candidate
 *               whose hyp word is free, or none; the alignment kept is the
 *               first in that order to have (1) the most exact matches —
 *               METEOR ranks by module weights 1 / 0.5 summed into an
 *               integer, so a one-word stem or synonym match counts 0 —
 *               (2) then the fewest chunks, (3) then the least "distance" as
 *               METEOR 1.5 books it (see meteor.c).  METEOR searches with a
 *               beam of 40; we search exhaustively, up to
 *               SAT_METEOR_MAX_NODES steps per pair (then the best so far).
 *               Identical sentences use exact matches only.
 *   chunks      runs of matches adjacent in both sentences.
 *
 * With content words weighted delta and function words (our list,
 * sat_meteor_function_word()) 1 - delta, and module weights w (1, 0.6, 0.8):
 *
 *   P = sum over matched hyp words of w·(delta or 1-delta)
 *       / sum over hyp words of (delta or 1-delta);  R likewise on the ref
 *   Fmean = P·R / (alpha·P + (1 - alpha)·R)
 *   frag = chunks / matches, but 0 when every word of both is matched in
 *          one chunk;  penalty = gamma·frag^beta
 *   score = Fmean·(1 - penalty)   (0 without matches)
 *
 * A segment (one hypothesis, several references) takes the statistics of
 * its best-scoring reference (the first of equals); a corpus score is the
 * formula on the statistics summed over segments, not the mean of segment
 * scores.
 *
 *     char err[SAT_ERR_MAX];
 *     sat_meteor *mt = sat_meteor_new(err, sizeof err);   // NULL: no WordNet data
 *     sat_meteor_stats seg, sum = {0};
 *     const char *refs[] = {"a dog runs", "a brown dog is running"};
 *     sat_meteor_segment(mt, "the dogs run", refs, 2, &seg);
 *     sat_meteor_stats_add(&sum, &seg);
 *     double corpus = sat_meteor_score(&sum, NULL);
 *     sat_meteor_free(mt);
 */
#ifndef SAT_METEOR_H
#define SAT_METEOR_H

#include <stddef.h>

/* METEOR 1.5's English parameters (task "rank", its default). */
#define SAT_METEOR_ALPHA 0.85
#define SAT_METEOR_BETA 0.20
#define SAT_METEOR_GAMMA 0.60
#define SAT_METEOR_DELTA 0.75

enum { SAT_METEOR_EXACT, SAT_METEOR_STEM, SAT_METEOR_SYNONYM, SAT_METEOR_MODULES };
/* Module weights in the score: 1.0 0.6 0.8. */
extern const double sat_meteor_weights[SAT_METEOR_MODULES];

/* Bounds (documented in man/sat-eval.1): words past SAT_METEOR_MAX_WORDS of a
 * sentence count in its length but are never matched; the alignment search
 * of one hypothesis-reference pair stops after SAT_METEOR_MAX_NODES steps. */
#define SAT_METEOR_MAX_WORDS 256
#define SAT_METEOR_MAX_NODES 200000L

/* Sufficient statistics of one pair, or summed over a corpus. */
typedef struct {
    long hyp_len, ref_len;
    long hyp_function, ref_function;             /* function words among them */
    long hyp_matched[SAT_METEOR_MODULES][2];     /* matched hyp words by module: [0] content, [1] function */
    long ref_matched[SAT_METEOR_MODULES][2];
    long chunks;
} sat_meteor_stats;

/* The steps of the score, for inspection. */
typedef struct {
    double precision, recall, fmean, frag, penalty, score;
} sat_meteor_parts;

/* Search effort so far: pairs aligned, pairs whose search hit the cap, and
 * the most steps one search took. */
typedef struct {
    long searches, capped, max_nodes;
} sat_meteor_effort;

typedef struct sat_meteor sat_meteor;

/* Open the stemmer and WordNet (WNSEARCHDIR, else /usr/share/wordnet).
 * NULL with a message in err when either is unavailable. */
sat_meteor *sat_meteor_new(char *err, size_t errlen);
void sat_meteor_free(sat_meteor *m);

/* One segment: raw hypothesis text against nrefs >= 1 raw references.  The
 * best reference's statistics go to *out; returns their score. */
double sat_meteor_segment(sat_meteor *m, const char *hyp, const char *const *refs, int nrefs,
                          sat_meteor_stats *out);
void sat_meteor_stats_add(sat_meteor_stats *sum, const sat_meteor_stats *s);
/* The score of statistics (parts may be NULL). */
double sat_meteor_score(const sat_meteor_stats *s, sat_meteor_parts *parts);
void sat_meteor_effort_get(const sat_meteor *m, sat_meteor_effort *out);

/* 1 if word (a lowercase token) is on our function-word list. */
int sat_meteor_function_word(const char *word);
/* 1 if the list is in strcmp order (a self-check for the tests). */
int sat_meteor_function_words_sorted(void);

#endif
