/* fuzz_captions — libFuzzer target: the caption-file reader, both tokenizers,
 * the vocabulary and the metrics on arbitrary bytes.
 *
 * METEOR (when WordNet's data is installed) runs on the first METEOR_LINES
 * entries of at most METEOR_BYTES bytes: its cost is per distinct word
 * (WordNet lookups) and per pair (candidates up to SAT_METEOR_MAX_WORDS^2,
 * search up to SAT_METEOR_MAX_NODES steps), bounded but too slow for
 * megabytes of fresh words within libFuzzer's timeout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "fuzz.h"
#include "sat/meteor.h"
#include "sat/metrics.h"
#include "sat/util.h"
#include "sat/vocab.h"

enum { METEOR_LINES = 16, METEOR_BYTES = 2048, METEOR_REUSE = 256 };

/* One sat_meteor for METEOR_REUSE inputs: its word cache (pure memoization)
 * saves WordNet lookups, and renewing it bounds its growth. */
static sat_meteor *meteor_for_input(void)
{
    static sat_meteor *mt;
    static unsigned uses;
    if (uses++ % METEOR_REUSE == 0) {
        char err[SAT_ERR_MAX];
        sat_meteor_free(mt);
        mt = sat_meteor_new(err, sizeof err);
    }
    return mt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    sat_strtab known;
    sat_strtab_init(&known);
    sat_strtab_add(&known, "a.jpg", NULL);
    sat_caption_options opt = {size % 2 ? &known : NULL, size % 3 ? NULL : "/nonexistent"};
    sat_caption_reader *r = sat_caption_reader_open(f, "fuzz", &opt);
    sat_caption_entry e;
    sat_word_counts wc;
    sat_word_counts_init(&wc);
    sat_metrics *m = sat_metrics_new();
    sat_meteor *mt = meteor_for_input();
    char *prev = NULL;
    int lines = 0;
    while (sat_caption_reader_next(r, &e) == 1) {
        int short_pair = strlen(e.text) <= METEOR_BYTES && (!prev || strlen(prev) <= METEOR_BYTES);
        sat_metrics_set_meteor(m, lines++ < METEOR_LINES && short_pair ? mt : NULL);
        sat_words w;
        sat_tokenize_ptb(e.text, &w);
        sat_words_free(&w);
        sat_word_counts_add(&wc, e.text);
        const char *refs[2] = {e.text, prev ? prev : e.text};
        sat_metrics_add(m, prev ? prev : "", refs, 2);
        free(prev);
        prev = strdup(e.text);
    }
    sat_metric_scores s;
    sat_metrics_score(m, &s);
    sat_vocab *v = sat_vocab_build(&wc, 1, 0);
    if (prev) {
        int ids[32];
        int n = sat_vocab_ids(v, prev, ids, 32);
        char *text = sat_vocab_text(v, ids, n < 32 ? n : 32);
        free(text);
    }
    free(prev);
    sat_vocab_free(v);
    sat_metrics_free(m);
    sat_word_counts_free(&wc);
    sat_caption_reader_close(r);
    sat_strtab_free(&known);
    fclose(f);
    return 0;
}
