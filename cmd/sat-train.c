/* sat-train — train the attention decoder of Show, Attend and Tell on
 * cached features and a caption file, with soft or (--attention hard)
 * stochastic hard attention.
 *
 * parse options → captions and splits → vocabulary (train split, words seen
 * >= --min-count times) → the features of the train and dev images, kept in
 * memory as f16 → batches of all the captions of a few images (an image's
 * captions share its attention projection) → Adam or RMSProp with gradient clipping →
 * after each epoch: greedy captions of the dev images, corpus BLEU-1..4, the
 * best model kept (-o), a checkpoint (--checkpoint DIR), early stop after
 * --patience epochs without gain.
 *
 * Runs are repeatable: an epoch's batch order comes from (seed, epoch), each
 * caption's dropout masks and drawn locations from a generator of its own
 * seeded by (seed, epoch, caption), so `--resume` after a kill reaches the
 * same weights as a run never stopped, and so does a run split over N
 * processes (mpirun -np N sat-train: each takes a share of every batch, see
 * "processes" below) up to the order of float sums.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sat/blas.h"
#include "sat/captioner.h"
#include "sat/captions.h"
#include "sat/checkpoint.h"
#include "sat/dataset.h"
#include "sat/epoch.h"
#include "sat/half.h"
#include "sat/metrics.h"
#include "sat/optim.h"
#include "sat/progress.h"
#include "sat/scst.h"
#include "sat/util.h"

#ifdef SAT_HAVE_MPI
#include <mpi.h>
#endif

static const char usage[] =
    "Usage: sat-train --captions FILE --features FILE... --train LIST [--dev LIST] -o MODEL [OPTION]...\n"
    "Train the attention LSTM decoder on cached features (sat-encode -o).\n"
    "\n"
    "Data:\n"
    "      --captions FILE      caption file, NAME.jpg#N<TAB>caption (Flickr8k.token.txt)\n"
    "      --features FILE      a features stream (repeatable: train and dev caches)\n"
    "      --train LIST         image names of the training split, one per line\n"
    "      --dev LIST           image names of the dev split (BLEU each epoch, model\n"
    "                           selection; without it the last epoch's model stays)\n"
    "      --min-count N        vocabulary: words seen at least N times in train (5)\n"
    "      --max-vocab N        vocabulary: at most N words, the most frequent (50000)\n"
    "      --max-len N          skip training captions longer than N words (30)\n"
    "Model:\n"
    "      --embed N            word embedding size E (256)\n"
    "      --hidden N           LSTM size H (512)\n"
    "      --att-size N         attention size A (256)\n"
    "      --att-temperature T  attention softmax temperature, kept in the model (1)\n"
    "      --init MODEL         start from MODEL's weights (its sizes and temperature;\n"
    "                           same features and vocabulary), e.g. hard from soft\n"
    "Training:\n"
    "      --epochs N           at most N epochs (20)\n"
    "      --batch N            captions per batch, at least (64; whole images)\n"
    "      --optim NAME         adam (default) or rmsprop\n"
    "      --lr X               learning rate (4e-4)\n"
    "      --clip X             clip the gradient's global norm to X (5; 0 = off)\n"
    "      --lambda X           doubly stochastic attention penalty (1)\n"
    "      --dropout X          dropout rate (0.5)\n"
    "      --seed N             random seed (1)\n"
    "      --patience N         stop after N epochs without a better dev BLEU-4 (4)\n"
    "      --lr-decay X         multiply the learning rate by X after each epoch\n"
    "                           without a better dev BLEU-4 (1: constant)\n"
    "      --threads N          BLAS threads (default: the number of CPUs)\n"
    "Self-critical training (Rennie et al. 2017), e.g. after --init MODEL:\n"
    "      --objective OBJ      xent (default): cross-entropy of the references;\n"
    "                           scst: REINFORCE on the CIDEr-D of sampled captions,\n"
    "                           the greedy caption's CIDEr-D as the baseline\n"
    "      --scst-samples N     captions drawn per image (5)\n"
    "      --scst-baseline B    greedy (default): the greedy caption's CIDEr-D;\n"
    "                           mean: the mean CIDEr-D of the image's other samples\n"
    "      --scst-xent X        add X times the references' cross-entropy (0)\n"
    "      --scst-eos           the caption's end counts as a word in CIDEr-D\n"
    "                           (with --attention hard the samples draw locations too)\n"
    "Hard attention (Xu et al. 2015, 4.1):\n"
    "      --attention KIND     soft (default) or hard: a location drawn per word,\n"
    "                           REINFORCE with a baseline (--baseline)\n"
    "      --baseline KIND      expected (default): per caption, its log p with the\n"
    "                           expected context, plus a moving average; moving:\n"
    "                           one moving average of log p (the paper's 4.1)\n"
    "      --hard-samples N     location sequences drawn per caption (1)\n"
    "      --hard-expected P    probability per image of the expected context\n"
    "                           instead of a drawn location (0.5)\n"
    "      --reinforce X        weight of the REINFORCE term (1)\n"
    "      --entropy X          weight of the attention entropy term (0.002)\n"
    "Output:\n"
    "  -o, --output FILE        the best model (by dev BLEU-4), written atomically\n"
    "      --checkpoint DIR     keep DIR/checkpoint.satm up to date (each epoch and\n"
    "                           every --checkpoint-every batches)\n"
    "      --checkpoint-every N batches between checkpoints (0 = epochs only)\n"
    "      --resume             continue from DIR/checkpoint.satm\n"
    "      --log FILE           one tab-separated line per epoch (default DIR/train.log)\n"
    "      --name NAME          the model's name (default: sat-decoder)\n"
    "  -q, --quiet              no progress bar\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n";

typedef struct {
    const char *captions, *train_list, *dev_list, *output, *checkpoint_dir, *log_path, *name;
    const char **features;
    int nfeatures;
    int min_count, max_vocab, max_len, embed, hidden, attention, epochs, batch, patience, threads, quiet;
    int resume, rmsprop;
    const char *init;                                  /* --init MODEL */
    float lr_decay;
    long checkpoint_every;
    float lr, clip, lambda, dropout;
    int hard, hard_samples, expected_baseline;         /* hard attention */
    int scst, scst_samples, scst_mean, scst_eos;                 /* --objective scst */
    float scst_xent;
    float hard_expected, reinforce, entropy, att_temperature;
    unsigned long seed;
} options;

/* ---- processes ----------------------------------------------------------- */

/* Data parallelism (issue 11): under mpirun every rank runs this program on
 * the same data; each takes its share of every batch's captions (cut by
 * work: batch_share), the gradients and the batch's statistics are summed
 * over the ranks, each rank steps the optimizer on its slice of the weights
 * and the slices reach all (optimizer_step: in the memory they share on one
 * machine, gathered across machines), so the weights stay identical; the
 * dev images are decoded in shares, and rank 0 alone writes files and
 * talks.  Built without MPI (no mpicc), or run without mpirun (an Open MPI
 * singleton), it is one rank and the sums are no-ops. */
static struct {
    int rank, size;
} dist = {0, 1};

/* Informational messages: stderr on rank 0, nothing on the others (errors
 * still go to stderr from any rank). */
static FILE *info;

/* Rank r's share [*lo, *hi) of n items: consecutive, sizes differing by 1 at most. */
static void dist_share(long n, int r, long *lo, long *hi)
{
    *lo = n * r / dist.size;
    *hi = n * (r + 1) / dist.size;
}

#ifdef SAT_HAVE_MPI
static void dist_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist.size);
}

static void dist_finalize(void)
{
    MPI_Finalize();
}

#ifdef __SANITIZE_ADDRESS__
/* Open MPI keeps what MPI_Init allocated past MPI_Finalize (tests/lsan.supp
 * names its libraries); LeakSanitizer's fast unwinder stops in them, built
 * without frame pointers, before a frame the suppressions can match. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}
#endif

/* Sums n values of type t over the ranks, in place, on every rank.  A rank
 * that dies makes the others' call fail: Open MPI's default error handler
 * (MPI_ERRORS_ARE_FATAL) then aborts the job, and mpirun says which rank. */
static void dist_sum(void *x, size_t n, MPI_Datatype t)
{
    if (dist.size == 1) return;
    if (n > INT_MAX) sat_die("%zu values are too many for one MPI_Allreduce", n);
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
}

/* Ranks on one machine (all of the job's) share the weights and read each
 * other's gradients in MPI-3 shared windows: the sum is each rank adding up
 * its own slice of the gradients, all its optimizer step reads (an
 * Allreduce of the 26 MB copied them twice, ~10 ms a batch, more than the
 * sum itself), and the slices it steps are written where every rank reads
 * them (no gathering).  grads_of NULL: messages, as across machines. */
static struct {
    MPI_Comm node;
    MPI_Win params, grads;
    float **grads_of; /* [rank]: that rank's gradients */
} shm;

static int dist_shares_memory(void) { return shm.grads_of != NULL; }

/* Every rank here, and what each wrote to the windows before seen by all. */
static void shm_barrier(void)
{
    MPI_Win_sync(shm.params);
    MPI_Win_sync(shm.grads);
    MPI_Barrier(shm.node);
    MPI_Win_sync(shm.params);
    MPI_Win_sync(shm.grads);
}

/* dec's weights (rank 0's copy: all ranks' are the same) and gradients
 * into shared windows, when every rank is on this machine and
 * SAT_TRAIN_SHARED_MEMORY is not 0. */
static void dist_share_memory(sat_decoder *dec)
{
    const char *env = getenv("SAT_TRAIN_SHARED_MEMORY");
    int n;
    if (dist.size == 1 || (env && strcmp(env, "0") == 0)) return;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shm.node);
    MPI_Comm_size(shm.node, &n);
    if (n != dist.size) {
        MPI_Comm_free(&shm.node);
        return;
    }
    const MPI_Aint bytes = (MPI_Aint)(dec->nparams * sizeof(float));
    float *params, *grads;
    MPI_Aint size;
    int unit;
    MPI_Win_allocate_shared(dist.rank == 0 ? bytes : 0, sizeof(float), MPI_INFO_NULL, shm.node,
                            &params, &shm.params);
    MPI_Win_allocate_shared(bytes, sizeof(float), MPI_INFO_NULL, shm.node, &grads, &shm.grads);
    MPI_Win_shared_query(shm.params, 0, &size, &unit, &params);
    shm.grads_of = sat_xmalloc((size_t)dist.size * sizeof *shm.grads_of);
    for (int r = 0; r < dist.size; r++)
        MPI_Win_shared_query(shm.grads, r, &size, &unit, &shm.grads_of[r]);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, shm.params);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, shm.grads);
    if (dist.rank == 0) memcpy(params, dec->params, (size_t)bytes);
    memset(grads, 0, (size_t)bytes);
    sat_decoder_place(dec, params, grads);
    shm_barrier();
}

/* After the decoder is freed. */
static void dist_free_memory(void)
{
    if (!dist_shares_memory()) return;
    MPI_Win_unlock_all(shm.params);
    MPI_Win_unlock_all(shm.grads);
    MPI_Win_free(&shm.params);
    MPI_Win_free(&shm.grads);
    MPI_Comm_free(&shm.node);
    free(shm.grads_of);
}

/* The gradients (n) summed over the ranks: in shared memory, this rank's
 * slice [lo, hi) alone, the ranks' in rank order; else all of them. */
static void dist_sum_grads(float *grads, size_t n, long lo, long hi)
{
    if (dist.size == 1) return;
    if (!dist_shares_memory()) {
        dist_sum(grads, n, MPI_FLOAT);
        return;
    }
    shm_barrier(); /* every rank's gradients are whole */
    for (long i = lo; i < hi; i++) {
        float sum = shm.grads_of[0][i];
        for (int r = 1; r < dist.size; r++) sum += shm.grads_of[r][i];
        grads[i] = sum;
    }
}

static void dist_sum_doubles(double *x, size_t n)
{
    dist_sum(x, n, MPI_DOUBLE);
}

/* Rank r's slice (dist_share's) of x, n floats, from rank r onto every rank
 * (root < 0: the weights after a sharded optimizer step) or onto root alone
 * (the optimizer's moments before a checkpoint). */
static void dist_gather_slices(float *x, size_t n, int root)
{
    if (dist.size == 1) return;
    if (n > INT_MAX) sat_die("%zu values are too many for one MPI gather", n);
    int *count = sat_xmalloc((size_t)dist.size * sizeof *count);
    int *displ = sat_xmalloc((size_t)dist.size * sizeof *displ);
    for (int r = 0; r < dist.size; r++) {
        long lo, hi;
        dist_share((long)n, r, &lo, &hi);
        displ[r] = (int)lo, count[r] = (int)(hi - lo);
    }
    if (root < 0)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, count, displ, MPI_FLOAT, MPI_COMM_WORLD);
    else if (dist.rank == root)
        MPI_Gatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, count, displ, MPI_FLOAT, root,
                    MPI_COMM_WORLD);
    else
        MPI_Gatherv(x + displ[dist.rank], count[dist.rank], MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT,
                    root, MPI_COMM_WORLD);
    free(count);
    free(displ);
}

/* Each rank's slice of the weights, just stepped, on every rank. */
static void dist_new_weights(float *params, size_t n)
{
    if (dist_shares_memory()) shm_barrier(); /* and no rank reads another's gradients any more */
    else dist_gather_slices(params, n, -1);
}
#else
static void dist_init(int *argc, char ***argv) {}
static void dist_finalize(void) {}
static void dist_share_memory(sat_decoder *dec) {}
static void dist_free_memory(void) {}
static void dist_sum_grads(float *grads, size_t n, long lo, long hi) {}
static void dist_new_weights(float *params, size_t n) {}
static int dist_shares_memory(void) { return 0; }
static void dist_sum_doubles(double *x, size_t n) {}
static void dist_gather_slices(float *x, size_t n, int root) {}
#endif

/* ---- data ---------------------------------------------------------------- */

static void load_dataset(sat_dataset *d, const options *o)
{
    sat_dataset_options dopt = {.captions = o->captions, .train_list = o->train_list,
                                .dev_list = o->dev_list, .features = o->features,
                                .nfeatures = o->nfeatures, .min_count = o->min_count,
                                .max_vocab = o->max_vocab, .max_len = o->max_len,
                                .references = o->scst, .references_eos = o->scst_eos, .info = info};
    char err[SAT_ERR_MAX];
    if (sat_dataset_load(d, &dopt, err, sizeof err)) sat_die("%s", err);
}

/* ---- evaluation ---------------------------------------------------------- */

enum { DEV_MAX_LEN = 30, DEV_ROW = DEV_MAX_LEN + 1 }; /* a dev caption: n, then its words */

/* Greedy captions of this rank's share of the dev images, into rows of
 * `rows` (the other rows stay 0). */
static void decode_dev_share(const sat_decoder *dec, const sat_dataset *d, double *rows)
{
    float *feats = sat_xmalloc((size_t)d->L * d->D * sizeof *feats);
    long lo, hi;
    dist_share(d->ndev, dist.rank, &lo, &hi);
    for (long i = lo; i < hi; i++) {
        sat_dataset_image_f32(&d->images[d->dev[i]], feats);
        const sat_decode_options greedy = {.max_len = DEV_MAX_LEN};
        sat_caption c;
        sat_caption_decode(&SAT_ENSEMBLE_OF(dec), feats, 1, 1, &greedy, &c);
        double *row = rows + i * DEV_ROW;
        row[0] = c.n;
        for (int j = 0; j < c.n; j++) row[1 + j] = c.tokens[j];
        sat_caption_free(&c);
    }
    free(feats);
}

/* Greedy captions of the dev images, scored against their references: each
 * rank decodes its share, the sum over ranks gathers them (each row is one
 * rank's), and every rank scores them all, so all hold the same scores. */
static void dev_scores(const sat_decoder *dec, const sat_dataset *d, sat_metric_scores *s)
{
    double *rows = sat_xcalloc((size_t)d->ndev * DEV_ROW, sizeof *rows);
    decode_dev_share(dec, d, rows);
    dist_sum_doubles(rows, (size_t)d->ndev * DEV_ROW);
    sat_metrics *m = sat_metrics_new();
    for (int i = 0; i < d->ndev; i++) {
        const double *row = rows + (size_t)i * DEV_ROW;
        int tokens[DEV_MAX_LEN], n = (int)row[0];
        for (int j = 0; j < n; j++) tokens[j] = (int)row[1 + j];
        char *text = sat_vocab_text(d->vocab, tokens, n);
        const char *name = d->images[d->dev[i]].name;
        long ci = sat_refs_find(&d->captions, name);
        sat_metrics_add(m, text, (const char *const *)d->captions.captions[ci],
                        d->captions.ncaptions[ci]);
        free(text);
    }
    sat_metrics_score(m, s);
    sat_metrics_free(m);
    free(rows);
}

/* ---- model files and checkpoints ----------------------------------------- */

static sat_model *decoder_model(const sat_decoder *dec, const sat_dataset *d, const options *o)
{
    sat_model *m = sat_decoder_to_model(dec);
    free(m->name);
    m->name = sat_xstrdup(o->name);
    m->nvocab = d->vocab->n;
    m->vocab = sat_xmalloc((size_t)m->nvocab * sizeof *m->vocab);
    for (int i = 0; i < m->nvocab; i++) m->vocab[i] = sat_xstrdup(d->vocab->words[i]);
    free(m->source_file);
    m->source_file = sat_xstrdup(d->encoder); /* the features it was trained on */
    return m;
}

static void save_best(const sat_decoder *dec, const sat_dataset *d, const options *o)
{
    if (dist.rank > 0) return;
    sat_model *m = decoder_model(dec, d, o);
    sat_model_save(m, o->output, 0);
    sat_model_free(m);
}

static char *checkpoint_path(const options *o)
{
    char *p;
    if (asprintf(&p, "%s/checkpoint.satm", o->checkpoint_dir) < 0) sat_die("out of memory");
    return p;
}

/* The model with the optimizer's moments and the run's state (checkpoint.h). */
static void save_checkpoint(const sat_decoder *dec, const sat_optimizer *opt, const sat_train_state *ts,
                            const sat_dataset *d, const options *o)
{
    sat_model *m = decoder_model(dec, d, o);
    sat_checkpoint_add(m, opt, ts);
    char *path = checkpoint_path(o);
    sat_model_save(m, path, 0);
    free(path);
    sat_model_free(m);
}

/* The decoder of the model file at path (for option opt), loaded whole in
 * *model; dies unless its sizes are cfg's (E = H = A = 0: any of those) and
 * its vocabulary this run's. */
static sat_decoder *load_compatible(const char *opt, const char *path, sat_decoder_config cfg,
                                    const sat_dataset *d, sat_model **model)
{
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load(path, SAT_MODEL_VERIFY, err, sizeof err);
    if (!m) sat_die("%s: %s", opt, err);
    sat_decoder *saved = sat_decoder_from_model(m, err, sizeof err);
    if (!saved) sat_die("%s: %s: %s", opt, path, err);
    const sat_decoder_config *a = &saved->cfg, *b = &cfg;
    if (!cfg.E) cfg.E = a->E, cfg.H = a->H, cfg.A = a->A;
    if (!sat_decoder_config_equal(a, b))
        sat_die("%s: %s is of another architecture (L=%d D=%d E=%d H=%d A=%d V=%d; this run: "
                "L=%d D=%d E=%d H=%d A=%d V=%d)", opt, path, a->L, a->D, a->E, a->H, a->A, a->V,
                b->L, b->D, b->E, b->H, b->A, b->V);
    if (m->nvocab != d->vocab->n) sat_die("%s: %s has no vocabulary of %d words", opt, path, d->vocab->n);
    int i = sat_words_first_difference(m->vocab, m->nvocab, d->vocab->words, d->vocab->n);
    if (i >= 0)
        sat_die("%s: %s has another vocabulary (word %d: '%s' vs '%s')", opt, path, i,
                m->vocab[i], d->vocab->words[i]);
    *model = m;
    return saved;
}

/* --init: the decoder of the model at path, read once; its sizes E, H, A are
 * the run's, and it dies if it was made for other features or another
 * vocabulary. */
static sat_decoder *load_init(const char *path, const sat_dataset *d)
{
    sat_decoder_config cfg = {.L = d->L, .D = d->D, .V = d->vocab->n};
    sat_model *m;
    sat_decoder *dec = load_compatible("--init", path, cfg, d, &m);
    sat_model_free(m);
    return dec;
}

/* Restore a checkpoint into dec, the moments and the state; dies if it was
 * made for another architecture, vocabulary or optimizer. */
static void load_checkpoint(sat_decoder *dec, sat_optimizer *opt, sat_train_state *ts, const sat_dataset *d,
                            const options *o)
{
    char *path = checkpoint_path(o);
    sat_model *m;
    sat_decoder *saved = load_compatible("--resume", path, dec->cfg, d, &m);
    char err[SAT_ERR_MAX];
    if (sat_checkpoint_read(m, opt, ts, err, sizeof err) < 0) sat_die("--resume: %s %s", path, err);
    if (ts->hard != o->hard || saved->temperature != dec->temperature)
        sat_die("--resume: %s was made with another attention (kind or temperature)", path);
    if (ts->scst != o->scst) sat_die("--resume: %s was made with another --objective", path);
    if (ts->seed != o->seed)
        fprintf(info, "sat-train: --resume: %s was made with --seed %lu, whose random state "
                "goes on (--seed %lu is not used)\n", path, ts->seed, o->seed);
    memcpy(dec->params, saved->params, dec->nparams * sizeof(float));
    fprintf(info, "sat-train: resuming from %s: epoch %d, batch %ld\n", path, ts->epoch + 1,
            ts->batch);
    sat_decoder_free(saved);
    sat_model_free(m);
    free(path);
}

/* ---- the loop ------------------------------------------------------------ */

typedef struct {
    const options *o;
    sat_dataset *d;
    sat_decoder *dec;
    sat_optimizer opt;
    sat_train_state ts;
    FILE *log;
    sat_cider *cider;        /* --objective scst */
    double reward_greedy, reward_sampled; /* this epoch's sums over images */
    long rewarded;           /* images */
    long plo, phi;           /* this rank's slice of the parameters: its optimizer step */
    double grad_norm;        /* the batch's summed gradient's (reduce_batch) */
    double summing_secs;     /* this epoch's time in the ranks' collectives: the sums
                                (with the wait for the slowest rank's share) and the
                                sharing of the new weights */
} trainer;

/* The optimizer step, sharded: each rank clips (by the whole gradient's
 * norm) and steps its slice of the weights alone, then every rank's slice
 * reaches all (dist_new_weights), so all hold the same new weights.  Each rank's
 * Adam/RMSProp work is 1/N of one process's; the moments stay full-sized on
 * every rank, each keeping its own slice's up to date. */
static void optimizer_step(trainer *tr)
{
    float *params = tr->dec->params, *grads = tr->dec->grads;
    size_t lo = (size_t)tr->plo, hi = (size_t)tr->phi;
    if (tr->o->clip > 0) sat_clip_to_norm(grads + lo, hi - lo, tr->grad_norm, tr->o->clip);
    sat_optimizer_update_range(&tr->opt, (float)tr->ts.lr, params, grads, lo, hi);
    double t0 = sat_now();
    dist_new_weights(params, tr->dec->nparams);
    tr->summing_secs += sat_now() - t0;
    tr->ts.step++;
}

/* Rank 0 writes the checkpoint, with the whole moments: every rank's slice
 * of them gathered first, so that it holds what one process would, and
 * --resume goes on with any number of ranks. */
static void checkpoint(trainer *tr)
{
    if (!tr->o->checkpoint_dir) return;
    float *first, *second;
    size_t n = sat_optimizer_moments(&tr->opt, &first, &second);
    dist_gather_slices(first, n, 0);
    if (second) dist_gather_slices(second, n, 0);
    if (dist.rank > 0) return;
    save_checkpoint(tr->dec, &tr->opt, &tr->ts, tr->d, tr->o);
}

/* Loss and gradients of a batch with hard attention (the baseline moves on
 * in run_epoch, from every rank's captions). */
static sat_decoder_loss hard_step(trainer *tr, const sat_decoder_batch *batch)
{
    const options *o = tr->o;
    sat_hard_attention h = {.samples = o->hard_samples, .p_soft = o->hard_expected,
                            .lambda_r = o->reinforce, .lambda_e = o->entropy,
                            .baseline = tr->ts.baseline,
                            .baseline_kind = o->expected_baseline ? SAT_BASELINE_EXPECTED
                                                                  : SAT_BASELINE_MOVING};
    return sat_decoder_forward_backward_hard(tr->dec, batch, &h, o->lambda, o->dropout, NULL, 1);
}

/* Hard attention's moving baseline after a batch, moved as the decoder moves
 * it (decoder.h) but by the sums over all ranks, so every rank holds the same. */
static void move_baseline(sat_train_state *ts, const sat_decoder_loss *l)
{
    if (l->nsampled > 0)
        ts->baseline = 0.9 * ts->baseline + 0.1 * (l->logp_sampled - l->logp_reference) / l->nsampled;
}

/* --objective scst: draw captions of each image of the batch, weight them
 * by reward − baseline (scst.h), and take their gradient without dropout or
 * attention penalty; with --scst-xent X, add X times the references'
 * cross-entropy (with dropout and --lambda).  The loss is that of the
 * sampled rows.  An image's draws come from its first caption's generator;
 * total_images: the whole batch's (the sampled rows' loss is averaged over
 * total_images × S). */
static sat_decoder_loss scst_step(trainer *tr, const sat_decoder_batch *refs, const int *captions,
                                  int total_images)
{
    const options *o = tr->o;
    const sat_dataset *d = tr->d;
    const int S = o->scst_samples, width = SAT_SCST_ROW(o->max_len), nimg = refs->n_images;
    sat_scst scst = {.dec = tr->dec, .vocab = d->vocab, .cider = tr->cider, .samples = S,
                     .max_len = o->max_len,
                     .baseline = o->scst_mean ? SAT_SCST_MEAN : SAT_SCST_GREEDY};
    int *tokens = sat_xmalloc((size_t)nimg * S * width * sizeof *tokens);
    int *locations = o->hard ? sat_xmalloc((size_t)nimg * S * (width - 1) * sizeof *locations)
                             : NULL;
    int *image = sat_xmalloc((size_t)nimg * S * sizeof *image);
    float *weight = sat_xmalloc((size_t)nimg * S * sizeof *weight);
    int *done = sat_xcalloc((size_t)nimg, sizeof *done);
    size_t LD = (size_t)d->L * d->D;
    for (int i = 0; i < refs->B; i++) {
        int m = refs->image[i];
        if (done[m]++) continue;
        sat_scst_rewards r = sat_scst_image(&scst, refs->feats + (size_t)m * LD,
                                            (size_t)d->ref_index[d->train[captions[i]].image],
                                            &refs->rngs[i], tokens + (size_t)m * S * width,
                                            locations ? locations + (size_t)m * S * (width - 1)
                                                      : NULL,
                                            weight + (size_t)m * S);
        for (int s = 0; s < S; s++) image[m * S + s] = m;
        tr->reward_greedy += r.greedy;
        tr->reward_sampled += r.mean;
        tr->rewarded++;
    }
    sat_decoder_batch sampled = {.feats = refs->feats, .n_images = nimg, .image = image,
                                 .tokens = tokens, .B = nimg * S, .T = width - 1,
                                 .weight = weight, .locations = locations,
                                 .total = total_images * S};
    /* no attention penalty on sampled captions: the objective is their reward alone */
    sat_decoder_loss l = sat_decoder_forward_backward(tr->dec, &sampled, 0, 0, NULL, 1);
    if (o->scst_xent > 0) {
        float *x = sat_xmalloc((size_t)refs->B * sizeof *x);
        for (int i = 0; i < refs->B; i++) x[i] = o->scst_xent;
        sat_decoder_batch mixed = *refs;
        mixed.weight = x;
        sat_decoder_forward_backward(tr->dec, &mixed, o->lambda, o->dropout, NULL, 1);
        free(x);
    }
    free(tokens);
    free(locations);
    free(image);
    free(weight);
    free(done);
    return l;
}

/* The work of the decoder's training pass, in multiply-adds (decoder.c):
 * per word, a step forward (LSTM, the attention's query, scores and
 * context, the deep output layer) and twice that backward (the inputs' and
 * the weights' gradients); per caption, its initial state from the mean
 * annotation; per image, its attention projection forward and its weights'
 * gradient (the features take none); per step, the BLAS's packing of the
 * LSTM's weights for the step's two products (forward, and the inputs'
 * gradient), whatever their rows: as long as ~4.5 rows' multiply-adds each
 * (OpenBLAS sgemm 2048x2048, one thread: 1.4-1.8 ms for one row, 0.35 ms
 * more per row). */
static void decoder_work(const sat_decoder_config *c, double *word, double *caption,
                         double *image, double *step)
{
    double L = c->L, D = c->D, E = c->E, H = c->H, A = c->A, V = c->V;
    *word = 3 * (4 * H * (E + D + H) + H * A + L * (A + D) + E * (H + D + V));
    *caption = 3 * 2 * D * H;
    *image = 2 * L * D * A;
    *step = 2 * 4.5 * 4 * H * (E + D + H);
}

/* This rank's share [*lo, *hi) of a batch's B captions (an image's captions
 * are consecutive), cut so that the ranks' work (decoder_work: mostly the
 * captions' words, whose lengths vary a lot, and the steps of the longest)
 * is as equal as can be; an image split between two ranks has its attention
 * projection computed by both, and its gradient summed over them.  Images
 * stay whole (balanced by their captions' work) where a draw is made per
 * image from its first caption's generator, which a split would change:
 * self-critical training's samples, hard attention's choice of the expected
 * context.  Returns the batch's number of images. */
static int batch_share(const sat_dataset *d, const sat_decoder_config *cfg, const int *captions,
                       int B, int whole_images, int *lo, int *hi)
{
    double word, caption;
    sat_batch_work bw = {.n = B};
    decoder_work(cfg, &word, &caption, &bw.image_work, &bw.step_work);
    double *work = sat_xmalloc((size_t)B * sizeof *work);
    int *steps = sat_xmalloc((size_t)B * sizeof *steps);
    int *image = sat_xmalloc((size_t)B * sizeof *image), nimg = 0;
    for (int i = 0; i < B; i++) {
        const sat_dataset_caption *c = &d->train[captions[i]];
        work[i] = word * c->len + caption;
        steps[i] = c->len;
        image[i] = c->image;
        nimg += i == 0 || image[i] != image[i - 1];
    }
    bw.work = work, bw.steps = steps, bw.image = image;
    sat_epoch_share(&bw, whole_images, dist.rank, dist.size, lo, hi);
    free(work);
    free(steps);
    free(image);
    return nimg;
}

/* This rank's loss and gradients of batch b (of B captions), zero for an
 * empty share. */
static sat_decoder_loss batch_step(trainer *tr, const sat_epoch_plan *plan, long b, sat_dataset_batch *bb)
{
    const options *o = tr->o;
    const int *captions = plan->order + plan->start[b];
    int B = (int)(plan->start[b + 1] - plan->start[b]), lo, hi;
    int nimg = batch_share(tr->d, &tr->dec->cfg, captions, B, o->scst || o->hard, &lo, &hi);
    sat_decoder_zero_grad(tr->dec);
    if (lo == hi) return (sat_decoder_loss){0};
    sat_decoder_batch batch;
    sat_dataset_fill_batch(bb, tr->d, captions + lo, hi - lo, B, tr->ts.seed, tr->ts.epoch, &batch);
    if (o->scst) return scst_step(tr, &batch, captions + lo, nimg);
    if (o->hard) return hard_step(tr, &batch);
    return sat_decoder_forward_backward(tr->dec, &batch, o->lambda, o->dropout, NULL, 1);
}

/* A batch's loss figures, and the squared norm of the summed gradient (each
 * rank's slice's part), summed over the ranks in one go. */
enum { BATCH_SUMS = 7 };

/* The gradients, the batch's loss sums and the gradient's norm (for
 * clipping), added up over the ranks. */
static void reduce_batch(trainer *tr, sat_decoder_loss *l)
{
    float *grads = tr->dec->grads;
    double t0 = sat_now();
    dist_sum_grads(grads, tr->dec->nparams, tr->plo, tr->phi);
    tr->summing_secs += sat_now() - t0;
    double sumsq = tr->o->clip > 0 ? sat_grad_sumsq(grads + tr->plo, (size_t)(tr->phi - tr->plo)) : 0;
    double sums[BATCH_SUMS] = {l->loss, l->xent, (double)l->ntokens, l->logp_sampled,
                               l->logp_reference, (double)l->nsampled, sumsq};
    t0 = sat_now();
    dist_sum_doubles(sums, BATCH_SUMS);
    tr->summing_secs += sat_now() - t0;
    *l = (sat_decoder_loss){.loss = sums[0], .xent = sums[1], .ntokens = (long)sums[2],
                            .logp_sampled = sums[3], .logp_reference = sums[4],
                            .nsampled = (long)sums[5]};
    tr->grad_norm = sqrt(sums[6]);
}

/* One epoch; returns the mean per-caption loss and fills xent per token. */
static double run_epoch(trainer *tr, double *xent_per_token)
{
    const options *o = tr->o;
    sat_epoch_plan plan;
    sat_dataset_plan_epoch(&plan, tr->d, o->batch, tr->ts.seed, tr->ts.epoch);
    sat_dataset_batch bb = {0};
    double loss = 0, xent = 0;
    long ntok = 0, ncap = 0;
    sat_progress meter;
    sat_progress_begin(&meter, "batches", (size_t)plan.nbatches, o->quiet);
    for (long b = tr->ts.batch; b < plan.nbatches; b++) {
        int B = (int)(plan.start[b + 1] - plan.start[b]);
        sat_decoder_loss l = batch_step(tr, &plan, b, &bb);
        reduce_batch(tr, &l);
        if (!isfinite(l.loss)) sat_die("epoch %d, batch %ld: the loss is not finite (lower --lr?)",
                                       tr->ts.epoch + 1, b);
        if (o->hard && !o->scst) move_baseline(&tr->ts, &l);
        optimizer_step(tr);
        loss += l.loss * B;
        ncap += B;
        xent += l.xent;
        ntok += l.ntokens;
        tr->ts.batch = b + 1;
        char mean_loss[48];
        snprintf(mean_loss, sizeof mean_loss, "loss %.3f", loss / ncap);
        sat_progress_update(&meter, (size_t)b + 1, -1, mean_loss);
        if (o->checkpoint_every > 0 && (b + 1) % o->checkpoint_every == 0 && b + 1 < plan.nbatches)
            checkpoint(tr);
    }
    sat_progress_end(&meter);
    sat_dataset_batch_free(&bb);
    sat_epoch_plan_free(&plan);
    *xent_per_token = ntok ? xent / ntok : 0;
    return ncap ? loss / ncap : 0;
}

/* "  dev BLEU-1..4 ... CIDEr-D ..." for the epoch line; "" without --dev. */
static void format_dev(const options *o, const sat_metric_scores *dev, char *out, size_t len)
{
    const double *b = dev->bleu;
    if (!o->dev_list) *out = 0;
    else snprintf(out, len, "  dev BLEU-1..4 %.2f %.2f %.2f %.2f  CIDEr-D %.1f", 100 * b[0], 100 * b[1],
                  100 * b[2], 100 * b[3], 100 * dev->cider_d);
}

/* After an epoch: keep the model if it is the best on dev (without --dev,
 * always: the last one stays), else count a bad epoch and decay the rate. */
static void select_model(trainer *tr, const sat_metric_scores *dev)
{
    const options *o = tr->o;
    if (!o->dev_list || dev->bleu[3] > tr->ts.best_bleu4) {
        tr->ts.best_bleu4 = dev->bleu[3];
        tr->ts.best_epoch = tr->ts.epoch;
        tr->ts.bad_epochs = 0;
        save_best(tr->dec, tr->d, o);
        return;
    }
    tr->ts.bad_epochs++;
    if (o->lr_decay != 1) {
        tr->ts.lr *= o->lr_decay;
        fprintf(info, "sat-train: learning rate now %g\n", tr->ts.lr);
    }
}

static void train(trainer *tr)
{
    const options *o = tr->o;
    struct stat st;
    if (tr->log && fstat(fileno(tr->log), &st) == 0 && st.st_size == 0)
        fprintf(tr->log, "epoch\tloss\txent_per_token\tbleu1_x100\tbleu2_x100\tbleu3_x100\tbleu4_x100\tseconds\n");
    if (!o->dev_list)
        fprintf(info, "sat-train: no --dev: no model selection and no early stopping; -o gets each "
                        "epoch's model, the last one stays\n");
    /* a resumed run that had already stopped for want of patience stays stopped */
    while (tr->ts.epoch < o->epochs && tr->ts.bad_epochs < o->patience) {
        double t0 = sat_now(), xent;
        tr->reward_greedy = tr->reward_sampled = 0, tr->rewarded = 0, tr->summing_secs = 0;
        double loss = run_epoch(tr, &xent);
        double rewards[] = {tr->reward_greedy, tr->reward_sampled, tr->rewarded};
        dist_sum_doubles(rewards, 3);
        tr->reward_greedy = rewards[0], tr->reward_sampled = rewards[1], tr->rewarded = (long)rewards[2];
        sat_metric_scores dev = {0};
        if (o->dev_list) dev_scores(tr->dec, tr->d, &dev);
        const double *bleu = dev.bleu;
        double secs = sat_now() - t0;
        int better = o->dev_list && bleu[3] > tr->ts.best_bleu4;
        char dev_text[128];
        format_dev(o, &dev, dev_text, sizeof dev_text);
        fprintf(info, "sat-train: epoch %d  loss %.4f  xent/token %.4f%s  %.0f s%s", tr->ts.epoch + 1,
                loss, xent, dev_text, secs, better ? "  (best)" : "");
        if (o->hard) fprintf(info, "  baseline %.3f", tr->ts.baseline);
        if (o->scst && tr->rewarded)
            fprintf(info, "  train CIDEr-D greedy %.1f sampled %.1f", 100 * tr->reward_greedy / tr->rewarded,
                    100 * tr->reward_sampled / tr->rewarded);
        if (o->lr_decay != 1) fprintf(info, "  lr %g", tr->ts.lr);
        if (dist.size > 1) fprintf(info, "  summing %.2f s", tr->summing_secs);
        fputc('\n', info);
        if (tr->log) { /* without --dev the BLEU columns are NA */
            fprintf(tr->log, "%d\t%.6f\t%.6f", tr->ts.epoch + 1, loss, xent);
            for (int n = 0; n < 4; n++)
                if (o->dev_list) fprintf(tr->log, "\t%.4f", 100 * bleu[n]);
                else fprintf(tr->log, "\tNA");
            fprintf(tr->log, "\t%.3f\n", secs); /* ms: the bench divides by it */
            fflush(tr->log);
        }
        select_model(tr, &dev);
        tr->ts.epoch++;
        tr->ts.batch = 0;
        checkpoint(tr);
        if (tr->ts.bad_epochs >= o->patience) {
            fprintf(info, "sat-train: no better dev BLEU-4 for %d epochs: stopping\n", o->patience);
            break;
        }
    }
    if (o->dev_list)
        fprintf(info, "sat-train: best dev BLEU-4 %.2f at epoch %d, model in %s\n",
                100 * tr->ts.best_bleu4, tr->ts.best_epoch + 1, o->output);
    else
        fprintf(info, "sat-train: the model of epoch %d is in %s (no --dev: not selected)\n",
                tr->ts.epoch, o->output);
}

/* ---- options and main ---------------------------------------------------- */

/* --attention soft|hard */
static void parse_attention(options *o, const char *arg)
{
    if (strcmp(arg, "soft") != 0 && strcmp(arg, "hard") != 0)
        sat_usage_error("--attention: '%s' is not soft or hard", arg);
    o->hard = strcmp(arg, "hard") == 0;
}

/* A usage error naming every required option that is missing. */
static void missing_options(const options *o)
{
    const struct { int given; const char *name; } required[] = {
        {o->captions != NULL, "--captions"}, {o->nfeatures > 0, "--features"},
        {o->train_list != NULL, "--train"},  {o->output != NULL, "-o"}};
    char list[128] = "";
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!required[i].given)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                     required[i].name);
    if (*list) sat_usage_error("missing %s (--captions, --features, --train and -o are required)", list);
}

static void parse_options(int argc, char **argv, options *o)
{
    enum { CAPTIONS = 256, FEATURES, TRAIN, DEV, MIN_COUNT, MAX_VOCAB, MAX_LEN, EMBED, HIDDEN, ATTENTION,
           EPOCHS, BATCH, OPTIM, LR, CLIP, LAMBDA, DROPOUT, SEED, PATIENCE, THREADS, CHECKPOINT,
           CHECKPOINT_EVERY, RESUME, LOG, NAME, ATT_SIZE, ATT_TEMPERATURE, HARD_SAMPLES,
           HARD_EXPECTED, REINFORCE, ENTROPY, BASELINE, INIT, LR_DECAY, OBJECTIVE, SCST_SAMPLES,
           SCST_XENT, SCST_BASELINE, SCST_EOS };
    static const struct option longopts[] = {
        {"captions", required_argument, 0, CAPTIONS}, {"features", required_argument, 0, FEATURES},
        {"train", required_argument, 0, TRAIN},       {"dev", required_argument, 0, DEV},
        {"min-count", required_argument, 0, MIN_COUNT}, {"max-vocab", required_argument, 0, MAX_VOCAB}, {"max-len", required_argument, 0, MAX_LEN},
        {"embed", required_argument, 0, EMBED},       {"hidden", required_argument, 0, HIDDEN},
        {"attention", required_argument, 0, ATTENTION}, {"epochs", required_argument, 0, EPOCHS},
        {"batch", required_argument, 0, BATCH},       {"optim", required_argument, 0, OPTIM},
        {"lr", required_argument, 0, LR},             {"clip", required_argument, 0, CLIP},
        {"lambda", required_argument, 0, LAMBDA},     {"dropout", required_argument, 0, DROPOUT},
        {"seed", required_argument, 0, SEED},         {"patience", required_argument, 0, PATIENCE},
        {"threads", required_argument, 0, THREADS},   {"output", required_argument, 0, 'o'},
        {"checkpoint", required_argument, 0, CHECKPOINT},
        {"checkpoint-every", required_argument, 0, CHECKPOINT_EVERY},
        {"resume", no_argument, 0, RESUME},           {"log", required_argument, 0, LOG},
        {"name", required_argument, 0, NAME},         {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},                {"version", no_argument, 0, 'V'},
        {"att-size", required_argument, 0, ATT_SIZE},
        {"att-temperature", required_argument, 0, ATT_TEMPERATURE},
        {"hard-samples", required_argument, 0, HARD_SAMPLES},
        {"hard-expected", required_argument, 0, HARD_EXPECTED},
        {"reinforce", required_argument, 0, REINFORCE}, {"entropy", required_argument, 0, ENTROPY},
        {"baseline", required_argument, 0, BASELINE}, {"init", required_argument, 0, INIT},
        {"lr-decay", required_argument, 0, LR_DECAY}, {"objective", required_argument, 0, OBJECTIVE},
        {"scst-samples", required_argument, 0, SCST_SAMPLES},
        {"scst-xent", required_argument, 0, SCST_XENT},
        {"scst-baseline", required_argument, 0, SCST_BASELINE},
        {"scst-eos", no_argument, 0, SCST_EOS},
        {0, 0, 0, 0}};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.min_count = 5, .max_vocab = 50000, .max_len = 30, .embed = 256, .hidden = 512, .attention = 256,
                   .epochs = 20, .batch = 64, .patience = 4, .lr = 4e-4f, .clip = 5,
                   .lambda = 1, .dropout = 0.5f, .seed = 1, .name = "sat-decoder",
                   .hard_samples = 1, .hard_expected = 0.5f, .reinforce = 1, .entropy = 0.002f,
                   .att_temperature = 1, .expected_baseline = 1, .lr_decay = 1, .scst_samples = 5,
                   .threads = ncpu > 0 ? (int)ncpu : 1};
    o->features = sat_xcalloc((size_t)argc, sizeof *o->features);
    int c;
    while ((c = sat_getopt(argc, argv, "o:qhV", longopts)) != -1) {
        switch (c) {
        case CAPTIONS: o->captions = optarg; break;
        case FEATURES: o->features[o->nfeatures++] = optarg; break;
        case TRAIN: o->train_list = optarg; break;
        case DEV: o->dev_list = optarg; break;
        case MIN_COUNT: o->min_count = (int)sat_parse_long("--min-count", optarg, 1, 1000000); break;
        case MAX_VOCAB:
            o->max_vocab = (int)sat_parse_long("--max-vocab", optarg, SAT_VOCAB_NSPECIAL + 1, SAT_VOCAB_MAX_SIZE);
            break;
        case MAX_LEN: o->max_len = (int)sat_parse_long("--max-len", optarg, 1, 1000); break;
        case EMBED: o->embed = (int)sat_parse_long("--embed", optarg, 1, 8192); break;
        case HIDDEN: o->hidden = (int)sat_parse_long("--hidden", optarg, 1, 8192); break;
        case ATTENTION: parse_attention(o, optarg); break;
        case ATT_SIZE: o->attention = (int)sat_parse_long("--att-size", optarg, 1, 8192); break;
        case ATT_TEMPERATURE:
            o->att_temperature = (float)sat_parse_double("--att-temperature", optarg,
                                                         SAT_DECODER_MIN_TEMPERATURE,
                                                         SAT_DECODER_MAX_TEMPERATURE);
            break;
        case HARD_SAMPLES: o->hard_samples = (int)sat_parse_long("--hard-samples", optarg, 1, 64); break;
        case HARD_EXPECTED:
            o->hard_expected = (float)sat_parse_double("--hard-expected", optarg, 0, 1);
            break;
        case REINFORCE: o->reinforce = (float)sat_parse_double("--reinforce", optarg, 0, 1e6); break;
        case ENTROPY: o->entropy = (float)sat_parse_double("--entropy", optarg, 0, 1e6); break;
        case BASELINE:
            if (strcmp(optarg, "expected") && strcmp(optarg, "moving"))
                sat_usage_error("--baseline: '%s' is not expected or moving", optarg);
            o->expected_baseline = strcmp(optarg, "expected") == 0;
            break;
        case INIT: o->init = optarg; break;
        case OBJECTIVE:
            if (strcmp(optarg, "xent") && strcmp(optarg, "scst"))
                sat_usage_error("--objective: '%s' is not xent or scst", optarg);
            o->scst = strcmp(optarg, "scst") == 0;
            break;
        case SCST_SAMPLES:
            o->scst_samples = (int)sat_parse_long("--scst-samples", optarg, 1, SAT_SCST_MAX_SAMPLES);
            break;
        case SCST_BASELINE:
            if (strcmp(optarg, "greedy") && strcmp(optarg, "mean"))
                sat_usage_error("--scst-baseline: '%s' is not greedy or mean", optarg);
            o->scst_mean = strcmp(optarg, "mean") == 0;
            break;
        case SCST_EOS: o->scst_eos = 1; break;
        case SCST_XENT: o->scst_xent = (float)sat_parse_double("--scst-xent", optarg, 0, 1e6); break;
        case LR_DECAY: o->lr_decay = (float)sat_parse_double("--lr-decay", optarg, 1e-3, 1); break;
        case EPOCHS: o->epochs = (int)sat_parse_long("--epochs", optarg, 1, 100000); break;
        case BATCH: o->batch = (int)sat_parse_long("--batch", optarg, 1, 100000); break;
        case OPTIM:
            if (strcmp(optarg, "adam") && strcmp(optarg, "rmsprop"))
                sat_usage_error("--optim: '%s' is not adam or rmsprop", optarg);
            o->rmsprop = strcmp(optarg, "rmsprop") == 0;
            break;
        case LR: o->lr = (float)sat_parse_double("--lr", optarg, 1e-9, 10); break;
        case CLIP: o->clip = (float)sat_parse_double("--clip", optarg, 0, 1e9); break;
        case LAMBDA: o->lambda = (float)sat_parse_double("--lambda", optarg, 0, 1e6); break;
        case DROPOUT: o->dropout = (float)sat_parse_double("--dropout", optarg, 0, 0.99); break;
        case SEED: o->seed = (unsigned long)sat_parse_long("--seed", optarg, 0, 1L << 52); break;
        case PATIENCE: o->patience = (int)sat_parse_long("--patience", optarg, 1, 100000); break;
        case THREADS: o->threads = (int)sat_parse_long("--threads", optarg, 1, 256); break;
        case 'o': o->output = optarg; break;
        case CHECKPOINT: o->checkpoint_dir = optarg; break;
        case CHECKPOINT_EVERY:
            o->checkpoint_every = sat_parse_long("--checkpoint-every", optarg, 0, 1L << 40);
            break;
        case RESUME: o->resume = 1; break;
        case LOG: o->log_path = optarg; break;
        case NAME: o->name = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (optind < argc) sat_usage_error("unexpected argument '%s'", argv[optind]);
    missing_options(o);
    if (o->resume && !o->checkpoint_dir) sat_usage_error("--resume needs --checkpoint DIR");
    if (o->scst && o->scst_mean && o->scst_samples < 2)
        sat_usage_error("--scst-baseline mean needs --scst-samples 2 or more");
}

static FILE *open_log(const options *o)
{
    char *path = NULL;
    if (o->log_path) path = sat_xstrdup(o->log_path);
    else if (o->checkpoint_dir && asprintf(&path, "%s/train.log", o->checkpoint_dir) < 0)
        sat_die("out of memory");
    if (!path) return NULL;
    /* a resumed run appends; a new run starts the log afresh */
    FILE *f = fopen(path, o->resume ? "a" : "w");
    if (!f) sat_die("%s: %s", path, strerror(errno));
    free(path);
    return f;
}

/* One run at a time per checkpoint directory: an exclusive flock on
 * DIR/lock (held until exit), which names the holder's pid for the message. */
static void lock_checkpoint_dir(const char *dir)
{
    char *path;
    if (asprintf(&path, "%s/lock", dir) < 0) sat_die("out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) sat_die("%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        sat_die("%s: another sat-train%s%s is using this checkpoint directory", dir,
                *pid ? " (pid " : "", *pid ? strcat(pid, ")") : "");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        sat_die("%s: %s", path, strerror(errno));
    free(path);
}

/* Fail now, not after an epoch, when an output cannot be written. */
static void check_writable(const char *path)
{
    sat_atomic a;
    sat_atomic_open(&a, path);
    sat_atomic_abort(&a);
}

/* Rank 0's: the checkpoint directory, its lock, and outputs that can be written. */
static void prepare_outputs(const options *o)
{
    if (o->checkpoint_dir && mkdir(o->checkpoint_dir, 0777) && errno != EEXIST)
        sat_die("%s: %s", o->checkpoint_dir, strerror(errno));
    if (o->checkpoint_dir) lock_checkpoint_dir(o->checkpoint_dir);
    check_writable(o->output);
    if (o->checkpoint_dir) {
        char *path = checkpoint_path(o);
        check_writable(path);
        free(path);
    }
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_options(argc, argv, &o);
    dist_init(&argc, &argv);
    info = stderr;
    if (dist.rank > 0) {
        info = fopen("/dev/null", "w");
        if (!info) sat_die("/dev/null: %s", strerror(errno));
        o.quiet = 1;
    }
    sat_blas_threads(o.threads);
    if (dist.rank == 0) prepare_outputs(&o);

    sat_dataset d;
    load_dataset(&d, &o);
    /* the sizes: the options', or with --init the initial model's */
    sat_decoder *init_dec = o.init ? load_init(o.init, &d) : NULL;
    sat_decoder_config cfg = init_dec ? init_dec->cfg
                                      : (sat_decoder_config){.L = d.L, .D = d.D, .E = o.embed,
                                                             .H = o.hidden, .A = o.attention,
                                                             .V = d.vocab->n};
    char err[SAT_ERR_MAX];
    trainer tr = {.o = &o, .d = &d};
    tr.dec = sat_decoder_new(cfg, err, sizeof err);
    if (!tr.dec) sat_die("%s", err);
    sat_rng init;
    sat_rng_seed(&init, o.seed);
    sat_decoder_init_params(tr.dec, &init);
    tr.dec->temperature = o.att_temperature;
    if (init_dec) {
        memcpy(tr.dec->params, init_dec->params, tr.dec->nparams * sizeof(float));
        tr.dec->temperature = init_dec->temperature;
        sat_decoder_free(init_dec);
    }
    tr.ts.lr = o.lr;
    tr.ts.seed = o.seed;
    tr.ts.best_bleu4 = -1;
    tr.ts.best_epoch = -1;
    tr.ts.scst = o.scst;
    tr.ts.hard = o.hard;
    sat_optimizer_init(&tr.opt, o.rmsprop ? SAT_OPTIM_RMSPROP : SAT_OPTIM_ADAM, tr.dec->nparams, o.lr);
    dist_share((long)tr.dec->nparams, dist.rank, &tr.plo, &tr.phi);
    if (o.resume) load_checkpoint(tr.dec, &tr.opt, &tr.ts, &d, &o);
    dist_share_memory(tr.dec);
    tr.log = dist.rank == 0 ? open_log(&o) : NULL;
    fprintf(info, "sat-train: %zu parameters (E=%d H=%d A=%d), %s lr %g, batch %d, lambda %g, dropout %g\n",
            tr.dec->nparams, cfg.E, cfg.H, cfg.A, o.rmsprop ? "RMSProp" : "Adam", o.lr, o.batch,
            o.lambda, o.dropout);
    if (o.init) fprintf(info, "sat-train: initial weights from %s\n", o.init);
    if (dist.size > 1)
        fprintf(info, "sat-train: %d processes, each a share of every batch's captions; %zu bytes "
                "summed over them per step (%s), each stepping the optimizer on 1/%d of the weights\n",
                dist.size, tr.dec->nparams * sizeof(float) + BATCH_SUMS * sizeof(double),
                dist_shares_memory() ? "in memory they share" : "in messages", dist.size);
    if (o.hard && !o.scst)
        fprintf(info, "sat-train: hard attention: %d sample(s) per caption, expected context "
                "with p %g, REINFORCE weight %g (%s baseline), entropy %g, temperature %g\n",
                o.hard_samples, o.hard_expected, o.reinforce,
                o.expected_baseline ? "expected-context" : "moving-average", o.entropy,
                tr.dec->temperature);
    if (o.scst) {
        tr.cider = sat_cider_new(d.refs);
        fprintf(info, "sat-train: self-critical: %d captions per image, CIDEr-D over the "
                "references of %zu train images%s, %s baseline, cross-entropy weight %g%s\n",
                o.scst_samples, sat_metrics_count(d.refs), o.scst_eos ? " (the end a word)" : "",
                o.scst_mean ? "mean" : "greedy", o.scst_xent, o.hard ? "; hard attention: a location drawn per word" : "");
    }
    train(&tr);
    sat_cider_free(tr.cider);

    if (tr.log) fclose(tr.log);
    sat_optimizer_free(&tr.opt);
    sat_decoder_free(tr.dec);
    dist_free_memory();
    sat_dataset_free(&d);
    free(o.features);
    if (info != stderr) fclose(info);
    dist_finalize();
    return sat_exit_status();
}
