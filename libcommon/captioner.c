/* captioner.c — see captioner.h. */
#include "captioner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* The file -m names; a bare name that is no file here (sat-decoder-hard.satm)
 * is looked up where the default model is.  NULL without -m and no default. */
static char *model_path(const char *path)
{
    if (!path) return sat_find_model(SAT_DEFAULT_DECODER);
    char *found = NULL;
    if (!strchr(path, '/') && access(path, F_OK) != 0) found = sat_find_model(path);
    return found ? found : sat_xstrdup(path);
}

sat_captioner *sat_captioner_load(const char *path, char *err, size_t errlen)
{
    char *found = model_path(path);
    if (!found) {
        snprintf(err, errlen, "no decoder model: %s not found (set SAT_MODEL_DIR or give -m)",
                 SAT_DEFAULT_DECODER);
        return NULL;
    }
    sat_captioner *cap = sat_xcalloc(1, sizeof *cap);
    char why[400];
    cap->model = sat_model_load(found, why, sizeof why);
    if (!cap->model) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    if (strcmp(cap->model->kind, "decoder") != 0) {
        snprintf(err, errlen, "%s: a %s model, not a decoder", found, cap->model->kind);
        goto fail;
    }
    cap->dec = sat_decoder_from_model(cap->model, why, sizeof why);
    if (!cap->dec) {
        snprintf(err, errlen, "%s: %s", found, why);
        goto fail;
    }
    cap->vocab = sat_vocab_from_words(cap->model->vocab, cap->model->nvocab, why, sizeof why);
    if (!cap->vocab || cap->vocab->n != cap->dec->cfg.V) {
        snprintf(err, errlen, "%s: vocabulary: %s", found,
                 cap->vocab ? "its size differs from the decoder's V" : why);
        goto fail;
    }
    free(found);
    return cap;
fail:
    free(found);
    sat_captioner_free(cap);
    return NULL;
}

sat_captioner *sat_captioner_open(const char *path)
{
    char err[512];
    sat_captioner *cap = sat_captioner_load(path, err, sizeof err);
    if (!cap) sat_die("%s", err);
    return cap;
}

void sat_captioner_free(sat_captioner *cap)
{
    if (!cap) return;
    sat_vocab_free(cap->vocab);
    sat_decoder_free(cap->dec);
    sat_model_free(cap->model);
    free(cap);
}

int sat_captioner_check(const sat_captioner *cap, const sat_features *f, char *err, size_t errlen)
{
    const sat_decoder_config *c = &cap->dec->cfg;
    if ((long)f->h * f->w == c->L && (long)f->c == c->D) return 0;
    snprintf(err, errlen, "%s: features are %ux%ux%u but the decoder takes L=%d locations of D=%d",
             f->id, f->h, f->w, f->c, c->L, c->D);
    return -1;
}

void sat_caption_free(sat_caption *c)
{
    free(c->tokens);
    free(c->alpha);
    free(c->locations);
    free(c->word_logprobs);
    memset(c, 0, sizeof *c);
}

static const char *const attend_names[] = {
    [SAT_ATTEND_SOFT] = "soft", [SAT_ATTEND_SAMPLE] = "hard-sample",
    [SAT_ATTEND_ARGMAX] = "hard-argmax",
};

const char *sat_attend_name(sat_attend_mode mode)
{
    unsigned m = (unsigned)mode;
    return m < sizeof attend_names / sizeof *attend_names ? attend_names[m] : NULL;
}

int sat_attend_parse(const char *name, sat_attend_mode *mode)
{
    for (int m = 0; m < (int)(sizeof attend_names / sizeof *attend_names); m++)
        if (attend_names[m] && strcmp(name, attend_names[m]) == 0) {
            *mode = (sat_attend_mode)m;
            return 0;
        }
    return -1;
}

sat_attend_mode sat_attend_option(const char *arg)
{
    sat_attend_mode mode;
    if (sat_attend_parse(arg, &mode))
        sat_usage_error("--attention: '%s' is not soft, hard-sample or hard-argmax", arg);
    return mode;
}

void sat_caption_step(const sat_decoder *dec, sat_decoder_state *st, const int *prev,
                      sat_attend_mode attend, sat_rng *rng, int *loc, float *logprobs,
                      float *alpha)
{
    const int L = dec->cfg.L, k = sat_decoder_state_k(st);
    sat_decoder_step_attend(dec, st, prev, attend, rng, loc, logprobs, alpha, NULL);
    if (attend == SAT_ATTEND_SOFT) return;
    memset(alpha, 0, (size_t)k * L * sizeof *alpha);
    for (int j = 0; j < k; j++) alpha[(size_t)j * L + loc[j]] = 1.0f;
}

/* Room for up to `steps` steps (words and <end>). */
static void caption_alloc(sat_caption *c, int steps, int L, int hard, int teacher)
{
    *c = (sat_caption){
        .tokens = sat_xmalloc((size_t)steps * sizeof *c->tokens),
        .alpha = sat_xmalloc((size_t)steps * L * sizeof *c->alpha),
        .locations = hard ? sat_xmalloc((size_t)steps * sizeof *c->locations) : NULL,
        .word_logprobs = teacher ? sat_xmalloc((size_t)steps * sizeof *c->word_logprobs) : NULL,
    };
}

/* One step of the caption at step t: the decoder reads prev; for hard
 * attention the location is kept and alpha's row made one-hot. */
static void caption_step(const sat_decoder *dec, sat_decoder_state *st, int prev,
                         sat_attend_mode attend, sat_rng *rng, sat_caption *c, int t,
                         float *logprobs)
{
    int loc = -1;
    float *alpha = c->alpha + (size_t)t * dec->cfg.L;
    sat_caption_step(dec, st, &prev, attend, rng, &loc, logprobs, alpha);
    if (c->locations) c->locations[t] = loc;
}

int sat_caption_may_emit(int word, int allow_unk)
{
    return word != SAT_VOCAB_START && (allow_unk || word != SAT_VOCAB_UNK);
}

/* Index drawn from p^(1/T) given log-probabilities (T > 0), among the words
 * that may be emitted. */
static int sample_word(const float *logprobs, int V, float temperature, int allow_unk,
                       sat_rng *rng)
{
    double max = -INFINITY, total = 0;
    for (int v = 0; v < V; v++)
        if (sat_caption_may_emit(v, allow_unk) && logprobs[v] > max) max = logprobs[v];
    for (int v = 0; v < V; v++)
        if (sat_caption_may_emit(v, allow_unk)) total += exp((logprobs[v] - max) / temperature);
    double u = sat_rng_uniform(rng) * total;
    int last = SAT_VOCAB_END;
    for (int v = 0; v < V; v++) {
        if (!sat_caption_may_emit(v, allow_unk)) continue;
        u -= exp((logprobs[v] - max) / temperature);
        last = v;
        if (u <= 0) return v;
    }
    return last;
}

static int best_word(const float *logprobs, int V, int allow_unk)
{
    int best = SAT_VOCAB_END;
    for (int v = 0; v < V; v++)
        if (sat_caption_may_emit(v, allow_unk) && logprobs[v] > logprobs[best]) best = v;
    return best;
}

void sat_caption_decode(const sat_decoder *dec, const float *feats, int max_len,
                        float temperature, sat_rng *rng, sat_caption *out)
{
    sat_caption_decode_attend(dec, feats, max_len, temperature, SAT_ATTEND_SOFT, 0, rng, out);
}

void sat_caption_decode_attend(const sat_decoder *dec, const float *feats, int max_len,
                               float temperature, sat_attend_mode attend, int allow_unk,
                               sat_rng *rng, sat_caption *out)
{
    int V = dec->cfg.V;
    sat_decoder_state *st = sat_decoder_state_new(dec, feats, 1);
    float *logprobs = sat_xmalloc((size_t)V * sizeof *logprobs);
    caption_alloc(out, max_len + 1, dec->cfg.L, attend != SAT_ATTEND_SOFT, 0);
    int prev = SAT_VOCAB_START;
    for (int t = 0; t <= max_len; t++) {
        caption_step(dec, st, prev, attend, rng, out, t, logprobs);
        /* After max_len words only <end> may follow. */
        int word = t == max_len ? SAT_VOCAB_END
                   : temperature > 0 ? sample_word(logprobs, V, temperature, allow_unk, rng)
                                     : best_word(logprobs, V, allow_unk);
        out->logprob += logprobs[word];
        if (word == SAT_VOCAB_END) break;
        out->tokens[out->n++] = word;
        prev = word;
    }
    free(logprobs);
    sat_decoder_state_free(st);
}

void sat_caption_teacher(const sat_decoder *dec, const float *feats, const int *tokens, int n,
                         sat_attend_mode attend, sat_rng *rng, sat_caption *out)
{
    sat_decoder_state *st = sat_decoder_state_new(dec, feats, 1);
    float *logprobs = sat_xmalloc((size_t)dec->cfg.V * sizeof *logprobs);
    caption_alloc(out, n + 1, dec->cfg.L, attend != SAT_ATTEND_SOFT, 1);
    memcpy(out->tokens, tokens, (size_t)n * sizeof *tokens);
    out->n = n;
    int prev = SAT_VOCAB_START;
    for (int t = 0; t <= n; t++) {
        caption_step(dec, st, prev, attend, rng, out, t, logprobs);
        int word = t < n ? tokens[t] : SAT_VOCAB_END;
        out->word_logprobs[t] = logprobs[word];
        out->logprob += logprobs[word];
        prev = word;
    }
    free(logprobs);
    sat_decoder_state_free(st);
}

double sat_caption_perplexity(const sat_caption *c)
{
    return exp(-c->logprob / (c->n + 1));
}

char *sat_caption_text(const sat_captioner *cap, const sat_caption *c)
{
    return sat_vocab_decode(cap->vocab, c->tokens, c->n);
}

void sat_caption_pack(sat_writer *w, const sat_captioner *cap, const sat_caption *c,
                      const sat_caption_meta *meta)
{
    int L = meta->alpha_h * meta->alpha_w;
    sat_writer_begin(w, "caption", 13 + (meta->rank >= 0) + (c->locations != NULL) +
                                       2 * (c->word_logprobs != NULL));
    msgpack_packer *pk = &w->pk;
    sat_pack_kv_str(pk, "id", meta->id);
    char *text = sat_caption_text(cap, c);
    sat_pack_kv_str(pk, "text", text);
    free(text);
    sat_pack_str(pk, "words");
    msgpack_pack_array(pk, (size_t)c->n);
    for (int i = 0; i < c->n; i++) sat_pack_str(pk, cap->vocab->words[c->tokens[i]]);
    sat_pack_str(pk, "tokens");
    msgpack_pack_array(pk, (size_t)c->n);
    for (int i = 0; i < c->n; i++) msgpack_pack_uint32(pk, (uint32_t)c->tokens[i]);
    sat_pack_kv_float(pk, "logprob", c->logprob);
    sat_pack_kv_str(pk, "method", meta->method);
    sat_pack_kv_str(pk, "attention", meta->attention);
    sat_pack_kv_bin(pk, "alpha", c->alpha, (size_t)c->n * L * sizeof(float));
    sat_pack_kv_uint(pk, "alpha_h", (uint64_t)meta->alpha_h);
    sat_pack_kv_uint(pk, "alpha_w", (uint64_t)meta->alpha_w);
    sat_pack_str(pk, "model");
    msgpack_pack_map(pk, 2);
    sat_pack_kv_str(pk, "name", cap->model->name);
    sat_pack_kv_str(pk, "sha256", cap->model->weights_sha256);
    if (c->locations) {
        sat_pack_str(pk, "locations");
        msgpack_pack_array(pk, (size_t)c->n);
        for (int i = 0; i < c->n; i++) msgpack_pack_uint32(pk, (uint32_t)c->locations[i]);
    }
    if (c->word_logprobs) {
        sat_pack_str(pk, "word_logprobs");
        msgpack_pack_array(pk, (size_t)c->n + 1);
        for (int i = 0; i <= c->n; i++) msgpack_pack_double(pk, c->word_logprobs[i]);
        sat_pack_kv_float(pk, "perplexity", sat_caption_perplexity(c));
    }
    if (meta->rank >= 0) sat_pack_kv_uint(pk, "rank", (uint64_t)meta->rank);
}
