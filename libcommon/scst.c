/* scst.c — see scst.h. */
#include "scst.h"

#include <stdlib.h>
#include <string.h>

#include "captioner.h"
#include "util.h"

/* Row j of rows: <start> then the words drawn so far. */
static int *row_of(int *rows, int max_len, int j) { return rows + (size_t)j * SAT_SCST_ROW(max_len); }

/* Decode k = S + 1 captions of one image together (one GEMM per layer per
 * step): row 0 greedy, rows 1..S sampled at temperature 1.  rows get
 * <start> w_1 … <end> and -1 padding. */
static void draw_rows(const sat_scst *s, const float *feats, sat_rng *rng, int *rows)
{
    const int k = s->samples + 1, V = s->dec->cfg.V, width = SAT_SCST_ROW(s->max_len);
    sat_decoder_state *st = sat_decoder_state_new(s->dec, feats, k);
    float *logprobs = sat_xmalloc((size_t)k * V * sizeof *logprobs);
    int alive[SAT_SCST_MAX_SAMPLES + 1], prev[SAT_SCST_MAX_SAMPLES + 1], nalive = k;
    for (int j = 0; j < k; j++) {
        int *row = row_of(rows, s->max_len, j);
        for (int t = 0; t < width; t++) row[t] = -1;
        row[0] = SAT_VOCAB_START;
        alive[j] = j;
    }
    /* all rows of the state start at (h0, c0): make k copies */
    sat_decoder_state_select(st, (int[SAT_SCST_MAX_SAMPLES + 1]){0}, k);
    for (int t = 1; nalive > 0; t++) {
        for (int a = 0; a < nalive; a++) prev[a] = row_of(rows, s->max_len, alive[a])[t - 1];
        sat_decoder_step(s->dec, st, prev, logprobs, NULL, NULL);
        int keep[SAT_SCST_MAX_SAMPLES + 1], nkeep = 0;
        for (int a = 0; a < nalive; a++) {
            int j = alive[a];
            int word = t > s->max_len ? SAT_VOCAB_END
                       : sat_caption_pick_word(logprobs + (size_t)a * V, V, j == 0 ? 0 : 1.0f,
                                               j != 0, rng);
            row_of(rows, s->max_len, j)[t] = word;
            if (word != SAT_VOCAB_END) keep[nkeep] = a, alive[nkeep++] = j;
        }
        nalive = nkeep;
        if (nalive > 0) sat_decoder_state_select(st, keep, nalive);
    }
    free(logprobs);
    sat_decoder_state_free(st);
}

/* CIDEr-D of a row (<start> words <end>). */
static double row_reward(const sat_scst *s, const int *row, size_t ref_image)
{
    int n = 0;
    while (row[n + 1] != SAT_VOCAB_END) n++;
    char *text = sat_vocab_decode(s->vocab, row + 1, n);
    double r = sat_cider_score(s->cider, ref_image, text);
    free(text);
    return r;
}

sat_scst_rewards sat_scst_image(const sat_scst *s, const float *feats, size_t ref_image,
                                sat_rng *rng, int *tokens, float *weight)
{
    const int S = s->samples, mean_baseline = s->baseline == SAT_SCST_MEAN;
    if (S < 1 + mean_baseline || S > SAT_SCST_MAX_SAMPLES)
        sat_die("scst: %d samples per image is not in [%d, %d]", S, 1 + mean_baseline,
                SAT_SCST_MAX_SAMPLES);
    const size_t width = SAT_SCST_ROW(s->max_len);
    int *rows = sat_xmalloc((size_t)(S + 1) * width * sizeof *rows);
    double reward[SAT_SCST_MAX_SAMPLES], total = 0;
    draw_rows(s, feats, rng, rows);
    sat_scst_rewards r = {.greedy = row_reward(s, rows, ref_image)};
    for (int j = 0; j < S; j++) total += reward[j] = row_reward(s, rows + (j + 1) * width, ref_image);
    r.mean = total / S;
    for (int j = 0; j < S; j++) {
        double baseline = mean_baseline ? (total - reward[j]) / (S - 1) : r.greedy;
        weight[j] = (float)(reward[j] - baseline);
    }
    memcpy(tokens, rows + width, (size_t)S * width * sizeof *tokens);
    free(rows);
    return r;
}
