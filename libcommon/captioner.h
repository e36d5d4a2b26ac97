/* captioner.h — a trained decoder model ready to caption feature maps:
 * loading it (decoder + vocabulary + provenance), checking that a features
 * record fits it, greedy/sampled decoding of one image, and writing the
 * `caption` record (formats/stream.md).  Shared by sat-decode, sat-beam,
 * sat-attend and sat-train (dev BLEU).
 */
#ifndef SAT_CAPTIONER_H
#define SAT_CAPTIONER_H

#include "decoder.h"
#include "model.h"
#include "rng.h"
#include "stream.h"
#include "vocab.h"

#define SAT_DEFAULT_DECODER "sat-decoder.satm"

typedef struct {
    sat_model *model;      /* the file as loaded (name, weights_sha256, config) */
    sat_decoder *dec;
    sat_vocab *vocab;
} sat_captioner;

/* Load a decoder model file; path NULL = the installed default, and a bare
 * name that is no file in the working directory is looked for where the
 * default is (SAT_MODEL_DIR, ../models or ../share/sat beside the program).
 * NULL with a one-line reason in err. */
sat_captioner *sat_captioner_load(const char *path, char *err, size_t errlen);
/* sat_captioner_load for a program: the reason is its fatal error. */
sat_captioner *sat_captioner_open(const char *path);
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

/* Greedy decoding (temperature 0) or sampling from p^(1/T) (temperature > 0,
 * rng required), at most max_len words, never <unk>.  feats: L × D. */
void sat_caption_decode(const sat_decoder *dec, const float *feats, int max_len,
                        float temperature, sat_rng *rng, sat_caption *out);

/* Attention mode names as in caption records and options: "soft",
 * "hard-sample", "hard-argmax" (SAT_ATTEND_GIVEN has none: NULL). */
const char *sat_attend_name(sat_attend_mode mode);
/* 0 with *mode for one of those names, -1 for any other string. */
int sat_attend_parse(const char *name, sat_attend_mode *mode);
/* The mode an --attention argument names; a usage error (exit 2) otherwise. */
sat_attend_mode sat_attend_option(const char *arg);

/* sat_decoder_step_attend as a caption records it: for a hard mode, the rows
 * of alpha (k × L, k the state's hypotheses) are made one-hot at the
 * locations the step chose (or was given), which loc (k) holds. */
void sat_caption_step(const sat_decoder *dec, sat_decoder_state *st, const int *prev,
                      sat_attend_mode attend, sat_rng *rng, int *loc, float *logprobs,
                      float *alpha);

/* sat_caption_decode with the attention taken as `attend` says (SOFT,
 * SAMPLE or ARGMAX; rng is needed for SAMPLE as for word sampling), <unk>
 * among the words when allow_unk.  The hard modes fill locations and make
 * alpha's rows one-hot. */
void sat_caption_decode_attend(const sat_decoder *dec, const float *feats, int max_len,
                               float temperature, sat_attend_mode attend, int allow_unk,
                               sat_rng *rng, sat_caption *out);

/* Teacher forcing: the decoder reads the caption tokens[0..n) (vocabulary
 * ids, no <start>/<end>) on feats (L × D); out gets the tokens, the attention
 * (hard modes as above), word_logprobs (n+1: the words and <end>) and their
 * sum as logprob. */
void sat_caption_teacher(const sat_decoder *dec, const float *feats, const int *tokens, int n,
                         sat_attend_mode attend, sat_rng *rng, sat_caption *out);

/* exp(−logprob / (n+1)): the perplexity per predicted token, <end> included. */
double sat_caption_perplexity(const sat_caption *c);

/* The caption's words joined by spaces (malloc'd). */
char *sat_caption_text(const sat_captioner *cap, const sat_caption *c);

/* Pack a caption record into w (sat_writer_begin included); rank < 0: none.
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
