/* beam.h — beam search: the k most probable captions of each image under a
 * captioner's decoders (one, or an ensemble), found by keeping the k best
 * partial captions (hypotheses) at every step.  Used by sat-beam.
 *
 * All live hypotheses of all the images searched together advance at once:
 * one sat_caption_step, one GEMM per layer, over their rows grouped by image,
 * each image keeping its own beam.  At step t every live hypothesis is
 * extended by every word that may be written (sat_caption_may_emit; <end>
 * only after min_len words, and only <end> after max_len), scored by its
 * log-probability, and the best k − (captions finished) extensions are
 * kept; one that ends with <end> is finished and leaves the beam, which
 * shrinks, until the image has k captions or max_len words.  The finished
 * captions are ranked by logprob, or by logprob / (n + 1)^length_norm.
 *
 * A caller that reads only the best `settle` captions of each image may say
 * so: an image then stops as soon as no live hypothesis can end better than
 * its settle-th best finished caption.  Log-probabilities only fall as a
 * caption grows, so a live hypothesis can at best end with its logprob
 * now, over (max_len + 1)^length_norm: the settle best are then those the
 * full search would rank first, byte for byte, and only the captions ranked
 * below them (and sat_beam_count) differ.  Not with SAT_ATTEND_SAMPLE,
 * whose draws would then shift for the images after.
 *
 * With hard attention (SAT_ATTEND_SAMPLE, SAT_ATTEND_ARGMAX) each hypothesis
 * takes the annotation at one location per step, drawn from its α or α's
 * argmax: the location is part of the hypothesis (every extension of it
 * read that context), and its alpha rows are one-hot there.
 *
 * Guarantees: candidates of equal score keep the order (hypothesis, word),
 * the order a stable sort of all would give, so a beam of width 1 is greedy
 * decoding (sat_caption_decode with the same options), byte for byte; and
 * an image searched with others gets the same captions, byte for byte, as
 * searched alone, except with SAT_ATTEND_SAMPLE, whose draws from the one
 * generator then interleave across the images.
 *
 * Use:
 *
 *     sat_beam_options o = {.k = 3, .min_len = 1, .decode = {.max_len = 30}};
 *     sat_beam *b = sat_beam_new(&cap->ens, &o, max_images);
 *     sat_beam_search(b, feats, n, 1);         // n <= max_images, feats n × L × D
 *     for (int i = 0; i < n; i++)
 *         for (int r = 0; r < sat_beam_count(b, i); r++)
 *             use(sat_beam_caption(b, i, r));  // best first
 *     sat_beam_free(b);
 */
#ifndef SAT_BEAM_H
#define SAT_BEAM_H

#include "sat/captioner.h"

typedef struct {
    sat_decode_options decode; /* max_len, attend, allow_unk, rng (for SAT_ATTEND_SAMPLE);
                                  temperature is not read */
    int k;                     /* beam width: hypotheses kept, captions found per image */
    int min_len;               /* <end> only after at least min_len words (<= max_len) */
    double length_norm;        /* rank by logprob / (n + 1)^length_norm; 0: by logprob */
    int settle;                /* stop an image once its `settle` best captions can no longer
                                  change (0: search on until it has k captions) */
} sat_beam_options;

typedef struct sat_beam sat_beam;

/* A search of up to max_images images at a time with the decoders of ens
 * (which must outlive it) as opt says (copied; opt->decode.rng must outlive
 * it). */
sat_beam *sat_beam_new(const sat_ensemble *ens, const sat_beam_options *opt, int max_images);
void sat_beam_free(sat_beam *b);

/* Search n_images images of `views` views each (feats: n_images × views ×
 * L × D, n_images <= max_images; the members are models × views, as
 * captioner.h says) together; their captions replace the previous search's. */
void sat_beam_search(sat_beam *b, const float *feats, int n_images, int views);

/* How many captions the last search found for image `image` (at most k). */
int sat_beam_count(const sat_beam *b, int image);

/* Caption `rank` (0: the best) of image `image`: tokens, n, alpha ((n + 1) ×
 * L), logprob and, with hard attention, locations (n + 1); no word_logprobs.
 * Owned by b, valid until the next search. */
const sat_caption *sat_beam_caption(const sat_beam *b, int image, int rank);

#endif
