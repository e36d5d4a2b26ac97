/* captioner.h — trained decoder models ready to caption feature maps:
 * loading one, or an ensemble of several (decoders + their shared vocabulary
 * + provenance), checking that a features record fits them, stepping and
 * greedy/sampled decoding and teacher forcing of one image or of several
 * stepped together (the same bytes as one by one), and writing the `caption` record
 * (formats/stream.md).  Shared by sat-decode, sat-beam, sat-attend and
 * sat-train (dev BLEU); beam search (beam.h) steps with sat_caption_step.
 *
 * An ensemble reads every caption with all its members at once: at each step
 * the log-probabilities are the mean of the members' (Σ_m log p_m / M,
 * renormalised over the vocabulary: the normalised geometric mean of their
 * distributions), and α is the mean of the members' α (with hard attention,
 * of their one-hot rows; the recorded locations are the first member's).
 *
 * An image of several views (a features record's `views`: the image, and its
 * left-right mirror flipped back, so that a location is the same place in
 * both) is read the same way by every model on every view: the members are
 * the models × the views, model by model (model 0 on view 0 first, whose
 * locations are recorded), and its feats are its views' L × D maps one after
 * the other.  One view is the plain ensemble, byte for byte.  The sum of the
 * members' log-probabilities is taken model by model, each model's views
 * first, so the models can be stepped on threads of their own (ens.threads)
 * with the same bytes out; a model steps all its views as rows of one
 * decoder state, reading its weights once a step for them all.
 */
#ifndef SAT_CAPTIONER_H
#define SAT_CAPTIONER_H

#include "sat/decoder.h"
#include "sat/model.h"
#include "sat/rng.h"
#include "sat/stream.h"
#include "sat/vocab.h"

/* The default captioner: the shipped hard-attention decoder and its
 * self-critical fine-tune, an ensemble: read on both views of sat-encode's
 * default records, it scored best on Flickr8k's dev split (BLEU-4 21.34 at
 * beam 3, against 21.17 for the mean of their weights on both views and 20.92
 * on one; results/flickr8k-tried.md). */
#define SAT_DEFAULT_DECODERS {"sat-decoder-hard.satm", "sat-decoder-hard-scst.satm"}
#define SAT_DEFAULT_DECODERS_TEXT "sat-decoder-hard.satm + sat-decoder-hard-scst.satm"

#define SAT_ENSEMBLE_MAX 8

/* The decoders a caption is read with: one, or an ensemble of n that share
 * L, D and V (their sizes E, H, A may differ).  SAT_ENSEMBLE_OF(dec) is the
 * one-decoder case. */
typedef struct {
    int n;
    const sat_decoder *dec[SAT_ENSEMBLE_MAX];
    int threads; /* models stepped at once (sat_caption_step); 0 or 1: one by one */
} sat_ensemble;
#define SAT_ENSEMBLE_OF(d) ((sat_ensemble){.n = 1, .dec = {(d)}})

typedef struct {
    sat_model *models[SAT_ENSEMBLE_MAX]; /* the files as loaded (name, weights_sha256, config) */
    sat_ensemble ens;                    /* their decoders (owned); ens.n models */
    sat_vocab *vocab;                    /* the vocabulary they all have */
} sat_captioner;

/* The sizes of the first model: L, D and V are every member's. */
const sat_decoder_config *sat_captioner_config(const sat_captioner *cap);

/* Load decoder model files (an ensemble when n > 1; n <= SAT_ENSEMBLE_MAX);
 * paths NULL (or n 0) = the installed default ensemble, and a bare name that is no
 * file in the working directory is looked for where the default is
 * (SAT_MODEL_DIR, ../models or ../share/sat beside the program).  Members
 * must share features (L, D) and vocabulary.  NULL with a one-line reason in err. */
sat_captioner *sat_captioner_load(const char *const *paths, int n, char *err, size_t errlen);
/* sat_captioner_load for a program: the reason is its fatal error. */
sat_captioner *sat_captioner_open(const char *const *paths, int n);

/* A stage's -m options, in order: the models of an ensemble (or one). */
typedef struct {
    const char *path[SAT_ENSEMBLE_MAX];
    int n;
} sat_model_list;
/* Add one -m argument; a usage error past SAT_ENSEMBLE_MAX. */
void sat_model_list_add(sat_model_list *list, const char *arg);

/* The decoder of a loaded model file, checked as the loader checks every
 * member: a decoder model whose tensors fit its sizes, with a valid
 * vocabulary of V words (returned in *vocab unless vocab is NULL).  NULL with
 * the reason in err otherwise (sat-import refuses such files with it). */
sat_decoder *sat_captioner_member(const sat_model *m, sat_vocab **vocab, char *err, size_t errlen);
void sat_captioner_free(sat_captioner *cap);

/* 0 if the features record fits the decoder (grid h*w == L, c == D), else -1
 * with a reason naming the record. */
int sat_captioner_check(const sat_captioner *cap, const sat_features *f, char *err, size_t errlen);

/* A caption: n words (without <start>/<end>), the attention used for each
 * word and for the final <end> (alpha: (n+1) × L; for hard attention one-hot
 * rows at the chosen locations), and log p of the words and the <end>. */
typedef struct {
    int *tokens;
    int n;
    float *alpha;
    double logprob;
    int *locations;       /* hard attention: the location of each word and of <end> (n+1); else NULL */
    float *word_logprobs; /* teacher forcing: log p of each word and of <end> (n+1); else NULL */
} sat_caption;

void sat_caption_free(sat_caption *c);

/* Whether a decoder may write `word`: never <start>, and <unk> only when
 * allowed (the programs do not write it by default: it tells the reader
 * nothing, and the next most probable word usually does). */
int sat_caption_may_emit(int word, int allow_unk);

/* The next word from a step's log-probabilities (V): the most probable
 * (temperature 0) or one drawn from p^(1/T) (rng required), among the words
 * that may be emitted, and <end> only if may_end (0 for a caption's first
 * word: an empty caption says nothing, and sat-beam's --min-len 1 agrees). */
int sat_caption_pick_word(const float *logprobs, int V, float temperature, int allow_unk,
                          int may_end, sat_rng *rng);

/* Attention mode names as in caption records and options: "soft",
 * "hard-sample", "hard-argmax" (SAT_ATTEND_GIVEN has none: NULL). */
const char *sat_attend_name(sat_attend_mode mode);
/* 0 with *mode for one of those names, -1 for any other string. */
int sat_attend_parse(const char *name, sat_attend_mode *mode);
/* The mode an --attention argument names; a usage error (exit 2) otherwise. */
sat_attend_mode sat_attend_option(const char *arg);

/* The decoding state of n_images images of `views` views each (feats:
 * n_images × views × L × D) for every member, model × view, up to k_max
 * hypotheses each (sat_decoder_state, n × views times; rows as
 * sat_decoder_state_new's; feats must outlive the state). */
typedef struct sat_caption_state sat_caption_state;
sat_caption_state *sat_caption_state_new(const sat_ensemble *ens, const float *feats, int n_images,
                                         int views, int k_max);
void sat_caption_state_free(sat_caption_state *st);
/* Beam bookkeeping, as sat_decoder_state_select, for every member. */
void sat_caption_state_select(sat_caption_state *st, const int *parent, int k);

/* sat_decoder_step as a caption records it, for the state's k hypotheses
 * (attend not NULL): logprobs (k × V) and alpha (k × L) as the ensemble's
 * (the top of this file); for a hard mode, the rows of alpha are one-hot at
 * the locations the step chose (or was given), which attend->loc (k) holds:
 * the first member's (an ensemble's other members choose their own). */
void sat_caption_step(sat_caption_state *st, const int *prev, const sat_step_attend *attend,
                      float *logprobs, float *alpha);

/* How captions are decoded (sat_caption_decode) or read (sat_caption_teacher,
 * which takes only attend and rng).  Zero is greedy with soft attention and
 * no <unk>; max_len must be set. */
typedef struct {
    int max_len;            /* at most max_len words, then <end> */
    float temperature;      /* 0: the most probable word; > 0: drawn from p^(1/T) */
    sat_attend_mode attend; /* SOFT, SAMPLE or ARGMAX: as sat_decoder_step's */
    int allow_unk;          /* <unk> among the words (sat_caption_may_emit) */
    sat_rng *rng;           /* the draws of words (temperature > 0) and locations (SAMPLE) */
} sat_decode_options;

/* The step attention of opt (its attend and rng) with locations into loc
 * (k), for sat_caption_step. */
sat_step_attend sat_decode_attend(const sat_decode_options *opt, int *loc);

/* Decode one caption per image of n_images (feats: n_images × views × L × D)
 * with an ensemble, into out[0..n_images), the images stepped together: one product
 * per layer and step for all the captions still running.  Each word is
 * picked as sat_caption_pick_word does, the first never <end>.  The hard
 * modes fill locations and make alpha's rows one-hot.  A caption is the
 * same, byte for byte, as decoded alone, except where it draws from rng
 * (sampled words or locations), whose draws then interleave across the
 * images. */
void sat_caption_decode(const sat_ensemble *ens, const float *feats, int n_images, int views,
                        const sat_decode_options *opt, sat_caption *out);

/* Teacher forcing: n_rows captions of n_images images (feats: n_images ×
 * views × L × D) stepped together: row r has the ensemble read tokens[0..n) (vocabulary
 * ids, no <start>/<end>) on image `image`, the rows grouped by image in
 * increasing order, and out[r] gets the tokens, the attention (hard modes as
 * above), word_logprobs (n+1: the words and <end>) and their sum as logprob.
 * Each caption is the same, byte for byte, as read alone, except where it
 * draws from opt->rng (hard-sample), whose draws then interleave across the
 * rows. */
typedef struct {
    int image;
    const int *tokens;
    int n;
} sat_teacher_row;
void sat_caption_teacher(const sat_ensemble *ens, const float *feats, int n_images, int views,
                         const sat_teacher_row *rows, int n_rows, const sat_decode_options *opt,
                         sat_caption *out);

/* exp(−logprob / (n+1)): the perplexity per predicted token, <end> included. */
double sat_caption_perplexity(const sat_caption *c);

/* The caption's words joined by spaces (malloc'd). */
char *sat_caption_text(const sat_captioner *cap, const sat_caption *c);

/* Pack the caption record of c into w (sat_caption_record_pack); rank < 0: none.
 * `locations` (one per word) when c has them; `word_logprobs` (words and
 * <end>) and `perplexity` when c has word_logprobs. */
typedef struct {
    const char *id;
    const char *method;     /* greedy, sample, beam, teacher */
    const char *attention;  /* soft, hard-sample, hard-argmax */
    int alpha_h, alpha_w;
    int rank;
} sat_caption_meta;
void sat_caption_pack(sat_writer *w, const sat_captioner *cap, const sat_caption *c,
                      const sat_caption_meta *meta);

#endif
