/* vocab.h — the decoder's vocabulary (spec: formats/captions.md).
 *
 * Ids: 0 = <end> (also the padding of shorter captions in a batch; masks tell
 * padding from a real <end>), 1 = <start>, 2 = <unk>, then the words of the
 * training captions seen at least min_count times, by descending count, ties
 * in byte order (strcmp), so a build is deterministic.
 *
 *     sat_word_counts wc;
 *     sat_word_counts_init(&wc);
 *     for (each training caption) sat_word_counts_add(&wc, text);
 *     sat_vocab *v = sat_vocab_build(&wc, 5, 0);
 *     int ids[64], n = sat_vocab_ids(v, "A dog runs.", ids, 64);   // a dog runs
 *
 * In a model file the vocabulary is its list of words (sat_model.vocab, id
 * order); sat_vocab_from_words() makes a sat_vocab of it again.
 */
#ifndef SAT_VOCAB_H
#define SAT_VOCAB_H

#include <stdio.h>

#include "sat/captions.h"

enum { SAT_VOCAB_END = 0, SAT_VOCAB_START = 1, SAT_VOCAB_UNK = 2, SAT_VOCAB_NSPECIAL = 3 };

#define SAT_VOCAB_MAX_WORD 255      /* bytes of a word in a vocabulary file */
#define SAT_VOCAB_MAX_SIZE 1000000  /* words in a vocabulary */

/* Word counts over captions, tokenized with sat_tokenize_words(). */
typedef struct {
    sat_strtab words;
    long *counts;        /* counts[id of words] */
    size_t counts_cap;
    long ntokens;        /* tokens counted */
    long ncaptions;      /* captions counted */
} sat_word_counts;

void sat_word_counts_init(sat_word_counts *wc);
void sat_word_counts_add(sat_word_counts *wc, const char *caption);
void sat_word_counts_free(sat_word_counts *wc);

typedef struct {
    char **words;        /* words[id] (the strings of `index`) */
    long *counts;        /* training count of each word; for <start>/<end> the
                          * number of captions, for <unk> the tokens it replaced */
    int n;               /* vocabulary size, specials included */
    int cap;             /* of counts */
    sat_strtab index;    /* word -> id */
} sat_vocab;

/* Words with count >= min_count; max_size > 0 caps the size (specials
 * included, which are always there) by dropping the rarest.  Never NULL. */
sat_vocab *sat_vocab_build(const sat_word_counts *wc, long min_count, int max_size);
/* From a model file's word list: the three specials first, then unique,
 * non-empty words without whitespace.  NULL with err otherwise.  Counts are 0. */
sat_vocab *sat_vocab_from_words(char *const *words, int n, char *err, size_t errlen);
void sat_vocab_free(sat_vocab *v);
/* Where two word lists (a model's vocabulary, sat_vocab.words) first differ:
 * -1 when they are the same, else the first index whose words differ or
 * that only one of them has. */
int sat_words_first_difference(char *const *a, int na, char *const *b, int nb);

/* The id of a word, SAT_VOCAB_UNK when it is not in the vocabulary. */
int sat_vocab_id(const sat_vocab *v, const char *word);
/* Text -> ids: tokenize a caption and write the ids of its first max words
 * (no <start> or <end>); returns the number of words, which may exceed max
 * (as snprintf). */
int sat_vocab_ids(const sat_vocab *v, const char *caption, int *ids, int max);
/* Ids -> text: the words of ids joined by single spaces, malloc'd: stops at
 * <end>, skips <start>, shows ids outside the vocabulary as <unk>. */
char *sat_vocab_text(const sat_vocab *v, const int *ids, int n);

/* The text form: one "word<TAB>count" line per id, in id order. */
void sat_vocab_write_text(const sat_vocab *v, FILE *f);
/* Read the text form; NULL with err ("vocab.txt:12: duplicate word 'dog'"). */
sat_vocab *sat_vocab_read_text(const char *path, char *err, size_t errlen);

#endif
