/* decoder.h — the attention LSTM decoder of "Show, Attend and Tell"
 * (Xu et al. 2015, §3.1.2, §4.1 and §4.2; the authors' arctic-captions code):
 * soft (deterministic) attention, and hard (stochastic) attention below.
 *
 * Sizes (sat_decoder_config): L annotation locations, D feature size,
 * E word embedding, H LSTM state, A attention size, V vocabulary.
 * Per caption, with annotations a_i (L×D) of its image and ā their mean:
 *
 *   h0 = tanh(ā·W_h0 + b_h0)            c0 = tanh(ā·W_c0 + b_c0)
 *   e_ti = w_att · tanh(a_i·W_a + b_a + h_{t-1}·U_a)     α_t = softmax_i(e_t / τ)
 *   β_t = σ(h_{t-1}·w_β + b_β)          ẑ_t = β_t Σ_i α_ti a_i
 *   [i f o g] = [E y_{t-1}; ẑ_t; h_{t-1}]·W + b    (σ σ σ tanh, one GEMM)
 *   c_t = f⊙c_{t-1} + i⊙g               h_t = o⊙tanh(c_t)
 *   p(y_t) = softmax(drop(tanh(E y_{t-1} + drop(h_t)·L_h + b_h + ẑ_t·L_z))·L_o + b_o)
 *
 * Choices (each as in arctic-captions unless said):
 * - The deep output takes tanh of the sum (arctic-captions), not the linear
 *   sum of the paper's eq. 7.
 * - Dropout is inverted dropout at rate p, training only, in two places:
 *   on h_t before L_h and on the tanh activation before L_o (arctic-captions
 *   drops the same two; it scales at test time instead).
 * - Loss = (Σ over real target tokens of −log p(y_t)
 *           + λ Σ_captions Σ_i (1 − Σ_{t<len} α_ti)²) / B:
 *   the cross-entropy per caption as arctic-captions (cost.mean()), the
 *   penalty the paper's λ Σ_i per caption, over the caption's real steps.
 *   (arctic-captions' alpha_reg = λ·((1 − alphas.sum(0))²).sum(0).mean()
 *   with alphas T×B×L sums over the batch and averages over locations,
 *   padded steps included: its λ is about B/L times this one's.)
 * - Weight matrices are stored [in][out], row-major (y = x·W).
 * - Backward through time stores per-step activations (h, c, gates, α, β,
 *   Σα a, LSTM input, U_a h) but NOT the B×T×L×A tanh of the attention: it
 *   is recomputed per step in the backward pass (2 tanh per score instead of
 *   1; memory at B=64, T=16, L=196, A=256 would be 205 MB).
 * - a_i·W_a + b_a is computed once per image per batch and shared by the
 *   image's captions (and by the k hypotheses of a beam), and Σ_i α_i a_i is
 *   one GEMM per image per step: a batch of 5 captions per image trains
 *   about 1.7× faster than one of 64 different images.
 * - Captions are sorted by length inside and the steps packed, so padding
 *   costs nothing; T only bounds the lengths.
 * - Threads: OpenBLAS's, inside the GEMMs.  forward_backward uses dec->work
 *   (one call at a time per decoder); sat_decoder_step only reads dec, so
 *   several states may be stepped at once.
 *
 * τ, the attention temperature, is 1 unless the model says otherwise (its
 * config entry "att.temperature", written only when τ != 1).
 *
 * Hard attention (§4.1; sat_decoder_forward_backward_hard, and at inference
 * sat_decoder_step): a location s_t ~ Multinoulli(α_t) per step and
 * ẑ_t = β_t a_{s_t} in place of the expected context β_t Σ_i α_ti a_i; the
 * rest of the model is the same, so one model can be read either way.
 * Training maximises the variational lower bound L_s = Σ_s p(s|a) log p(y|s,a)
 * of log p(y|a).  Per batch, each caption is repeated S times (S location
 * sequences s̃ⁿ, n = 1..S, drawn independently); each image draws once
 * whether its rows use sampled locations (probability 1 − p_soft) or the
 * expected context (p_soft; the paper's 0.5).  The gradient computed is
 * that of the surrogate loss, over the B·S rows r:
 *
 *   (1/(B·S)) Σ_r [ −log p(y|s̃_r,a) + λ Σ_i (1 − Σ_t α_ti)²
 *                   − λ_r ⟦(log p(y|s̃_r,a) − b_r)⟧ log p(s̃_r|a)  (sampled rows only)
 *                   − λ_e Σ_t H(α_t) ]
 *
 * where ⟦·⟧ is a constant (no gradient), log p(s̃|a) = Σ_t log α_t[s_t], and
 * H(α) = −Σ_i α_i log α_i along the row's own trajectory.  So the update
 * direction is the paper's eq. 12 with its baseline and entropy terms,
 * averaged over the samples:
 *   ∂log p(y|s̃,a)/∂W + λ_r (log p(y|s̃,a) − b) ∂log p(s̃|a)/∂W + λ_e ∂H[s̃]/∂W
 * (the doubly stochastic penalty λ kept as in soft training; λ = 0 turns it
 * off).  On an expected-context row the first term is the soft attention's
 * exact gradient and the REINFORCE term is absent.  A drawn location passes
 * no gradient through a_{s_t} to α (the context does not depend on it); α is
 * trained by the REINFORCE, entropy and penalty terms alone on those rows.
 * b is the moving average of log p(y|s̃,a) per caption: after each batch
 * with sampled rows, b ← 0.9 b + 0.1 · mean over the sampled captions (rows
 * with at least one target), the batch's gradient using the b before it;
 * it starts at 0 (the paper's), and its state is the caller's
 * (sat_hard_attention.baseline: sat-train keeps it in checkpoints).
 * With SAT_BASELINE_EXPECTED the baseline of row r is b_r = ref_r + b, where
 * ref_r = log p(y|a) of the same caption read with the expected context
 * (no dropout; one more forward pass), and b averages log p(y|s̃,a) − ref_r
 * the same way.  ref_r does not depend on s̃, so the estimator stays
 * unbiased; a single b cannot follow captions of 3 to 30 words, whose
 * log p differ by tens of nats, and then the REINFORCE term is mostly
 * caption-length noise.
 * The locations are drawn from the generator given (repeatable), after the
 * images' kinds and before the dropout masks.
 * Where arctic-captions departs from the paper this follows the paper:
 * arctic-captions draws the expected-context switch once per batch, not per
 * image; it
 * weights ∂log α_t[s_t] by step t's own cost / 10 without a baseline (or, with
 * RL_sumCost, by its baseline minus the caption's mean step cost, / 10), not
 * by the caption's log-likelihood minus b; its entropy gradient is not
 * divided by the batch size.
 *
 * Initialisation (sat_decoder_init_params): Glorot-uniform for every matrix,
 * orthogonal for the four H×H recurrent blocks of the LSTM (as arctic-captions'
 * ortho_weight), embeddings uniform ±0.1, biases 0 except the forget gate's 1.
 */
#ifndef SAT_DECODER_H
#define SAT_DECODER_H

#include <stddef.h>

#include "sat/model.h"
#include "sat/rng.h"

typedef struct {
    int L, D, E, H, A, V;
} sat_decoder_config;

/* Parameter tensors in storage order; K = E+D+H is the LSTM input size. */
typedef struct {
    float *init_h_w;  /* W_h0 [D][H] */
    float *init_h_b;  /* b_h0 [H] */
    float *init_c_w;  /* W_c0 [D][H] */
    float *init_c_b;  /* b_c0 [H] */
    float *att_w;     /* W_a [D][A] */
    float *att_b;     /* b_a [A] */
    float *att_u;     /* U_a [H][A] */
    float *att_v;     /* w_att [A] */
    float *gate_w;    /* w_β [H] */
    float *gate_b;    /* b_β [1] */
    float *embed;     /* E [V][E], one row per word */
    float *lstm_w;    /* W [K][4H], output blocks i f o g */
    float *lstm_b;    /* b [4H] */
    float *out_h_w;   /* L_h [H][E] */
    float *out_h_b;   /* b_h [E] */
    float *out_z_w;   /* L_z [D][E] */
    float *out_w;     /* L_o [E][V] */
    float *out_b;     /* b_o [V] */
} sat_decoder_weights;

#define SAT_DECODER_NTENSORS 18
#define SAT_DECODER_MIN_TEMPERATURE 1e-2
#define SAT_DECODER_MAX_TEMPERATURE 1e2

typedef struct {
    const char *name; /* the tensor's name in a model file, e.g. "lstm.W" */
    int ndim;
    int shape[2];
    size_t offset;    /* in floats, into params (and grads) */
    size_t count;
} sat_decoder_tensor;

typedef struct sat_decoder_work sat_decoder_work;

typedef struct {
    sat_decoder_config cfg;
    float temperature;           /* τ of the attention softmax (1) */
    size_t nparams;
    float *params, *grads;       /* one allocation each, same layout */
    sat_decoder_weights w, g;    /* named views into params and grads */
    sat_decoder_tensor tensors[SAT_DECODER_NTENSORS];
    sat_decoder_work *work;      /* training activations, grown on demand */
    const void *half;            /* or NULL: params as f16 bits, same layout, where
                                  * inference reads the matrices (take_model): then
                                  * params holds only the vectors (1-D tensors) */
    int placed;                  /* params and grads are the caller's (sat_decoder_place) */
} sat_decoder;

/* The decoder's params and grads become `params` and `grads` (nparams
 * floats each, the caller's: sat-train's memory shared between ranks),
 * which must hold what the decoder's did (the caller copies it) and outlive
 * the decoder; its own arrays are freed. */
void sat_decoder_place(sat_decoder *dec, float *params, float *grads);

/* NULL with a reason in err when a size is < 1 or too large. */
sat_decoder *sat_decoder_new(sat_decoder_config cfg, char *err, size_t errlen);
void sat_decoder_free(sat_decoder *dec);
/* 1 when every size of a and b is the same. */
int sat_decoder_config_equal(const sat_decoder_config *a, const sat_decoder_config *b);
void sat_decoder_init_params(sat_decoder *dec, sat_rng *rng);
void sat_decoder_zero_grad(sat_decoder *dec);

/* A model file holds the config as entries "L" "D" "E" "H" "A" "V" and the
 * tensors by name (kind "decoder").  from_model copies the parameters; NULL
 * with a reason in err if a config entry or tensor is missing or mis-shaped.
 * to_model returns a new model (params copied, kind and name "decoder", no
 * vocab: the caller sets it and may rename) to be released with sat_model_free. */
sat_decoder *sat_decoder_from_model(const sat_model *m, char *err, size_t errlen);
/* The same for a model loaded for this decoder alone.  When m's params hold
 * exactly the decoder's tensors in its order (a file sat-train wrote):
 * - f16 ones left in place (m->params16, SAT_MODEL_IN_PLACE) become
 *   dec->half, from which inference reads the matrices (the same floats from
 *   half the memory, and no f32 copy of them: dec->params holds the vectors
 *   only, the matrices' pages are zeros never touched); m must outlive dec;
 * - f32 ones are taken instead of copied: m->params is then NULL and
 *   m->nparams 0, so m's tensors are not to be read.
 * Otherwise m's params are converted if need be, and copied. */
sat_decoder *sat_decoder_take_model(sat_model *m, char *err, size_t errlen);
sat_model *sat_decoder_to_model(const sat_decoder *dec);

/* ---- training ---------------------------------------------------------- */

typedef struct {
    const float *feats;  /* n_images × L × D annotation vectors */
    int n_images;
    const int *image;    /* [B] image index of each caption */
    const int *tokens;   /* [B][T+1]: <start> w_1 … <end>, then -1 padding.
                          * Step t reads tokens[t] and predicts tokens[t+1];
                          * a caption's length is its number of targets. */
    int B, T;
    const float *weight; /* [B] the weight of each caption's xent in the loss
                          * (self-critical training: its reward's advantage);
                          * NULL: all 1 */
    const int *locations; /* [B][T] hard attention's location s_t of each step of
                          * each caption (padding after its end: any value), or
                          * NULL: the expected context.  Given, every row reads
                          * ẑ_t = β_t a_{s_t}, and the loss adds the locations'
                          * own −Σ_r weight_r log p(s_r|a) / B: its gradient is
                          * REINFORCE of the locations with the words' weight,
                          * self-critical training of a hard-attention policy
                          * whose (words, locations) were drawn together */
    sat_rng *rngs;       /* [B] a generator per caption, or NULL: everything is
                          * drawn from the call's rng.  Given, caption r's dropout
                          * masks (and, with hard attention, its locations, and
                          * its image's kind from the image's first caption) come
                          * from rngs[r] alone, so a caption draws the same
                          * numbers in whatever batch it is: a batch split across
                          * processes trains as the whole would (sat-train under
                          * mpirun) */
    int total;           /* the number of captions the loss is averaged over
                          * instead of B: the whole batch's when this is one
                          * process's share of it; 0: B */
} sat_decoder_batch;

typedef struct {
    double loss;         /* (xent + λ·penalty) / B (or / total): what the gradients are of
                          * (with weights, xent is Σ_captions weight · xent;
                          * with locations, −Σ_r weight_r log p(s_r|a) is added) */
    double xent;         /* Σ −log p(y_t) over real targets */
    double penalty;      /* Σ_captions Σ_i (1 − Σ_t α_ti)² */
    long ntokens;        /* real targets (xent / ntokens is per-token) */
    /* hard attention only (B, xent, penalty, ntokens then count the B·S rows,
     * and loss = (xent + λ·penalty − λ_e·entropy) / (B·S), the surrogate
     * without its REINFORCE term, which has no value of its own): */
    double entropy;      /* Σ over rows and steps of H(α_t) */
    double logp_sampled; /* Σ log p(y|s̃,a) over the captions with sampled locations */
    double logp_reference; /* Σ of those captions' own baseline parts (SAT_BASELINE_EXPECTED) */
    long nsampled;       /* those captions (rows) */
} sat_decoder_loss;

/* 0, or -1 with a reason naming the caption and token in err. */
int sat_decoder_check_batch(const sat_decoder *dec, const sat_decoder_batch *batch,
                            char *err, size_t errlen);
/* Teacher-forced forward pass of a batch; with do_backward, gradients are
 * ADDED to dec->grads (zero them first).  dropout in [0, 1): rate; masks come
 * from rng (which may be NULL when dropout is 0 or batch->rngs is given).
 * Dies on an invalid batch. */
sat_decoder_loss sat_decoder_forward_backward(sat_decoder *dec, const sat_decoder_batch *batch,
                                              float lambda, float dropout, sat_rng *rng,
                                              int do_backward);

/* The REINFORCE baseline of caption r: b alone (MOVING, the paper's §4.1),
 * or log p(y|a) of the same caption read with the expected context and no
 * dropout, plus b (EXPECTED); b is a moving average of what is left. */
typedef enum { SAT_BASELINE_MOVING, SAT_BASELINE_EXPECTED } sat_baseline_kind;

/* Hard attention's training settings and state (see the top of this file). */
typedef struct {
    sat_baseline_kind baseline_kind; /* MOVING (the defaults') or EXPECTED */
    int samples;         /* S >= 1: location sequences drawn per caption (1) */
    float p_soft;        /* probability, per image, of the expected context instead (0.5) */
    float lambda_r;      /* REINFORCE weight λ_r (1) */
    float lambda_e;      /* entropy weight λ_e (0.002, the authors') */
    double baseline;     /* b: read, and updated by each call with do_backward */
} sat_hard_attention;

#define SAT_HARD_ATTENTION_DEFAULTS \
    ((sat_hard_attention){ .samples = 1, .p_soft = 0.5f, .lambda_r = 1.0f, .lambda_e = 0.002f })

/* sat_decoder_forward_backward with hard attention: the loss and gradients
 * of the estimator above, the locations drawn from rng (required unless
 * batch->rngs is given). */
sat_decoder_loss sat_decoder_forward_backward_hard(sat_decoder *dec,
                                                   const sat_decoder_batch *batch,
                                                   sat_hard_attention *hard, float lambda,
                                                   float dropout, sat_rng *rng, int do_backward);

/* ---- inference: hypotheses of one or more images, one GEMM per layer per step
 * The rows of a state (hypotheses, "k" below) are grouped by image; the
 * attention and context of a row are over its own image, the LSTM and the
 * output layers one product over all rows (nn_linear_rows, nn_layers.h: a
 * row's numbers are the same bits whatever rows it is stepped with). */

typedef struct sat_decoder_state sat_decoder_state;

/* State for n_images images (feats: n_images × L × D, read by every step:
 * they must outlive the state) of up to k_max hypotheses each: it starts
 * with one row per image, row i reading image i at (h0, c0). */
sat_decoder_state *sat_decoder_state_new(const sat_decoder *dec, const float *feats, int n_images,
                                         int k_max);
/* The steps' context products read feats16 in place of the state's feats:
 * the same values (sat_f32_to_f16_exact said so) in half the bytes, which
 * each step streams for every row's image.  feats16 must outlive the state. */
void sat_decoder_state_use_f16(sat_decoder_state *st, const uint16_t *feats16);
void sat_decoder_state_free(sat_decoder_state *st);
/* The number of rows now (all images'). */
int sat_decoder_state_k(const sat_decoder_state *st);
/* Beam bookkeeping: row j continues row parent[j] of the current set (and
 * reads its image), j < k (1 <= k <= the capacity; parents may repeat, and
 * their images must not go down: rows stay grouped by image). */
void sat_decoder_state_select(sat_decoder_state *st, const int *parent, int k);

/* How a step takes its context: the expected one (soft), or the annotation
 * at one location per hypothesis, drawn from α, α's argmax, or given. */
typedef enum { SAT_ATTEND_SOFT, SAT_ATTEND_SAMPLE, SAT_ATTEND_ARGMAX, SAT_ATTEND_GIVEN } sat_attend_mode;

/* A step's attention (sat_decoder_step): the mode and what it needs. */
typedef struct {
    sat_attend_mode mode;
    sat_rng *rng; /* the draws of SAMPLE; may be NULL for the others */
    int *loc;     /* k: receives each hypothesis's location, or holds them for
                     GIVEN (each in [0, L)); may be NULL for SOFT */
} sat_step_attend;

/* One step for the current k hypotheses: prev[j] is the word each read
 * (<start> first), logprobs (k×V) receives log p(y_t | …), alpha (k×L) and
 * beta (k) the attention, when not NULL; alpha is α itself, the
 * distribution a hard mode's locations come from.  attend NULL is SOFT.  No
 * dropout.  dec is the decoder the state was made with. */
void sat_decoder_step(const sat_decoder *dec, sat_decoder_state *st, const int *prev,
                      const sat_step_attend *attend, float *logprobs, float *alpha, float *beta);

#endif
