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

/* Load a decoder model file; path NULL = the installed default.  NULL with a
 * one-line reason in err. */
sat_captioner *sat_captioner_load(const char *path, char *err, size_t errlen);
void sat_captioner_free(sat_captioner *cap);

/* 0 if the features record fits the decoder (grid h*w == L, c == D), else -1
 * with a reason naming the record. */
int sat_captioner_check(const sat_captioner *cap, const sat_features *f, char *err, size_t errlen);

/* A caption: n words (without <start>/<end>), the attention used for each
 * word and for the final <end> (alpha: (n+1) × L), and log p of the words and
 * the <end>. */
typedef struct {
    int *tokens;
    int n;
    float *alpha;
    double logprob;
} sat_caption;

void sat_caption_free(sat_caption *c);

/* Greedy decoding (temperature 0) or sampling from p^(1/T) (temperature > 0,
 * rng required), at most max_len words.  feats: L × D. */
void sat_caption_decode(const sat_decoder *dec, const float *feats, int max_len,
                        float temperature, sat_rng *rng, sat_caption *out);

/* The caption's words joined by spaces (malloc'd). */
char *sat_caption_text(const sat_captioner *cap, const sat_caption *c);

/* Pack a caption record into w (sat_writer_begin included); rank < 0: none. */
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
