/* fuzz_captions — libFuzzer target: the caption-file reader, both tokenizers,
 * the vocabulary and the metrics on arbitrary bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "captions.h"
#include "metrics.h"
#include "vocab.h"

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
    char *prev = NULL;
    while (sat_caption_reader_next(r, &e) == 1) {
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
        int n = sat_vocab_encode(v, prev, ids, 32);
        char *text = sat_vocab_decode(v, ids, n < 32 ? n : 32);
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
