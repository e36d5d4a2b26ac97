/* scst.c — see scst.h. */
#include "sat/scst.h"

#include <stdlib.h>
#include <string.h>

#include "sat/captioner.h"
#include "sat/util.h"

/* Row j of rows: <start> then the words drawn so far. */
static int *row_of(int *rows, int max_len, int j) { return rows + (size_t)j * SAT_SCST_ROW(max_len); }

/* Decode k captions of one image together (one GEMM per layer per step),
 * row 0 greedy when first_greedy, the others drawn at temperature 1; every
 * step reads the expected context (mode SAT_ATTEND_SOFT) or one location
 * drawn from α (SAT_ATTEND_SAMPLE: the location of row j's step t − 1 goes
 * to locations[j·(width − 1) + t − 1]).  rows get <start> w_1 … <end> and
 * -1 padding. */
static void decode_rows(const sat_scst *s, const float *feats, int k, int first_greedy,
                        sat_attend_mode mode, sat_rng *rng, int *rows, int *locations)
{
    const int V = s->dec->cfg.V, width = SAT_SCST_ROW(s->max_len);
    sat_decoder_state *st = sat_decoder_state_new(s->dec, feats, 1, k);
    float *logprobs = sat_xmalloc((size_t)k * V * sizeof *logprobs);
    int alive[SAT_SCST_MAX_SAMPLES + 1], prev[SAT_SCST_MAX_SAMPLES + 1], nalive = k;
    int loc[SAT_SCST_MAX_SAMPLES + 1];
    const sat_step_attend attend = { .mode = mode, .rng = rng, .loc = loc };
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
        sat_decoder_step(s->dec, st, prev, &attend, logprobs, NULL, NULL);
        int keep[SAT_SCST_MAX_SAMPLES + 1], nkeep = 0;
        for (int a = 0; a < nalive; a++) {
            int j = alive[a], greedy = first_greedy && j == 0;
            /* <unk> and an empty caption may be drawn: the samples follow the policy's own p */
            int word = t > s->max_len ? SAT_VOCAB_END
                       : sat_caption_pick_word(logprobs + (size_t)a * V, V, greedy ? 0 : 1.0f,
                                               !greedy, 1, rng);
            row_of(rows, s->max_len, j)[t] = word;
            if (mode == SAT_ATTEND_SAMPLE) locations[(size_t)j * (width - 1) + t - 1] = loc[a];
            if (word != SAT_VOCAB_END) keep[nkeep] = a, alive[nkeep++] = j;
        }
        nalive = nkeep;
        if (nalive > 0) sat_decoder_state_select(st, keep, nalive);
    }
    free(logprobs);
    sat_decoder_state_free(st);
}

/* Row 0 the greedy caption (expected context), rows 1..S the samples: all
 * decoded together, or with locations the samples apart, drawing theirs. */
static void draw_rows(const sat_scst *s, const float *feats, sat_rng *rng, int *rows,
                      int *locations)
{
    if (!locations) {
        decode_rows(s, feats, s->samples + 1, 1, SAT_ATTEND_SOFT, rng, rows, NULL);
        return;
    }
    decode_rows(s, feats, 1, 1, SAT_ATTEND_SOFT, rng, rows, NULL);
    decode_rows(s, feats, s->samples, 0, SAT_ATTEND_SAMPLE, rng,
                rows + SAT_SCST_ROW(s->max_len), locations);
}

/* CIDEr-D of a row (<start> words <end>). */
static double row_reward(const sat_scst *s, const int *row, size_t ref_image)
{
    int n = 0;
    while (row[n + 1] != SAT_VOCAB_END) n++;
    char *text = sat_vocab_text(s->vocab, row + 1, n);
    double r = sat_cider_score(s->cider, ref_image, text);
    free(text);
    return r;
}

sat_scst_rewards sat_scst_image(const sat_scst *s, const float *feats, size_t ref_image,
                                sat_rng *rng, int *tokens, int *locations, float *weight)
{
    const int S = s->samples, mean_baseline = s->baseline == SAT_SCST_MEAN;
    if (S < 1 + mean_baseline || S > SAT_SCST_MAX_SAMPLES)
        sat_die("scst: %d samples per image is not in [%d, %d]", S, 1 + mean_baseline,
                SAT_SCST_MAX_SAMPLES);
    const size_t width = SAT_SCST_ROW(s->max_len);
    int *rows = sat_xmalloc((size_t)(S + 1) * width * sizeof *rows);
    double reward[SAT_SCST_MAX_SAMPLES], total = 0;
    draw_rows(s, feats, rng, rows, locations);
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
