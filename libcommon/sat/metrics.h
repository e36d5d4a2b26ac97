/* metrics.h — caption metrics as the coco-caption toolkit (pycocoevalcap)
 * computes them: BLEU-1..4, ROUGE-L, CIDEr-D (spec: formats/captions.md).
 *
 * Each image has one hypothesis and one or more references; all are
 * tokenized with sat_tokenize_ptb() (coco's PTBTokenizer + punctuation
 * removal), then:
 *
 *   BLEU    corpus level (bleu_scorer.py, option "closest"): clipped n-gram
 *           matches and n-gram counts summed over the corpus; each image's
 *           reference length is the one closest to its hypothesis length
 *           (ties: the shorter); BLEU-n = (prod_{k<=n} (correct_k + 1e-15) /
 *           (guess_k + 1e-9))^(1/n), times exp(1 - reflen/testlen) when
 *           testlen < reflen (brevity penalty).
 *   ROUGE-L (rouge.py): per image, the longest common subsequence with each
 *           reference; P = max LCS/|hyp|, R = max LCS/|ref| over references;
 *           score = (1+b^2) P R / (R + b^2 P), b = 1.2; mean over images.
 *   CIDEr-D (cider_scorer.py, the clipped, length-penalized CIDEr that coco
 *           reports as "CIDEr"): see metrics.c.
 *   METEOR  (no paraphrase; meteor.h) when sat_metrics_set_meteor() gave a
 *           sat_meteor: statistics of each image's best reference, summed
 *           over the images, then scored.
 *
 *     sat_metrics *m = sat_metrics_new();
 *     const char *refs[] = {"a dog runs .", "a brown dog runs on grass ."};
 *     sat_metrics_add(m, "a dog runs on grass", refs, 2);
 *     sat_metric_scores s;
 *     sat_metrics_score(m, &s);
 */
#ifndef SAT_METRICS_H
#define SAT_METRICS_H

#include <stddef.h>

#include "sat/meteor.h"

#define SAT_BLEU_N 4
#define SAT_ROUGE_BETA 1.2
#define SAT_CIDER_SIGMA 6.0

/* BLEU's sufficient statistics (per image or summed over a corpus). */
typedef struct {
    long reflen, testlen;
    long guess[SAT_BLEU_N];    /* n-grams in the hypothesis, n = 1..4 */
    long correct[SAT_BLEU_N];  /* of those, matched (clipped by the max count in one reference) */
} sat_bleu_stats;

void sat_bleu_stats_add(sat_bleu_stats *sum, const sat_bleu_stats *s);
/* BLEU-1..4 from statistics, with or without the brevity penalty. */
void sat_bleu_scores(const sat_bleu_stats *s, int brevity_penalty, double bleu[SAT_BLEU_N]);

typedef struct {
    sat_bleu_stats bleu;
    double rouge_l, cider_d;
    double meteor;               /* when has_meteor */
    sat_meteor_stats meteor_stats;
    int has_meteor;
} sat_image_scores;

typedef struct {
    size_t images;
    sat_bleu_stats bleu_stats;   /* summed over the images */
    double bleu[SAT_BLEU_N];
    double bleu_nobp[SAT_BLEU_N];
    double rouge_l, cider_d;     /* means over the images */
    int has_meteor;              /* every image was added with METEOR on */
    sat_meteor_stats meteor_stats;  /* summed over the images */
    double meteor;               /* the score of meteor_stats */
} sat_metric_scores;

typedef struct sat_metrics sat_metrics;

sat_metrics *sat_metrics_new(void);
/* Score METEOR too for the images added from now on (NULL: stop).  The
 * sat_meteor is borrowed; it must outlive its use in sat_metrics_add. */
void sat_metrics_set_meteor(sat_metrics *m, sat_meteor *meteor);
/* From now on (before any image is added) every sentence, hypotheses and
 * references alike, ends in one more word, the end of the caption, which
 * counts in the n-grams like any other: for self-critical rewards, where a
 * caption cut short ("a dog runs on a") otherwise loses nothing for the
 * ending no reference has (n-grams such as "a <end>" match none). */
void sat_metrics_end_word(sat_metrics *m);
/* One image: its hypothesis and nrefs >= 1 references, as raw text. */
void sat_metrics_add(sat_metrics *m, const char *hyp, const char *const *refs, int nrefs);
size_t sat_metrics_count(const sat_metrics *m);
/* Score every image added so far (CIDEr-D's document frequencies come from
 * all of their references, so adding an image changes the others' CIDEr-D). */
void sat_metrics_score(sat_metrics *m, sat_metric_scores *out);
/* Scores of image i (in order of sat_metrics_add) after sat_metrics_score. */
void sat_metrics_image(const sat_metrics *m, size_t i, sat_image_scores *out);
void sat_metrics_free(sat_metrics *m);

/* CIDEr-D of single captions against a fixed corpus (the rewards of
 * self-critical training): the document frequencies are those of the
 * references of every image added to `corpus` (their hypotheses are not
 * used), computed once by sat_cider_new, with the code sat_metrics_score
 * uses.  sat_cider_score scores text against the references of the corpus's
 * image i.  The corpus is borrowed and grows with the n-grams scored. */
typedef struct sat_cider sat_cider;
sat_cider *sat_cider_new(sat_metrics *corpus);
double sat_cider_score(sat_cider *c, size_t image, const char *text);
void sat_cider_free(sat_cider *c);

#endif
