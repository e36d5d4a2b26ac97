/* epoch.h — the order of a training epoch (sat-train), a function of
 * (seed, epoch) alone, so that a resumed run and every process of a
 * data-parallel one see the same batches:
 *
 *   - the images are shuffled by (seed, epoch);
 *   - a batch holds all the captions of consecutive images until it has at
 *     least `batch` captions (the last batch may have fewer), so an image's
 *     captions share one attention projection W_a a per step: 1.7 times
 *     faster per caption than 64 captions of 64 different images (the
 *     decoder packs captions of unequal length, so mixing lengths costs no
 *     padding);
 *   - every caption comes once, in its image's batch, in caption order.
 *
 *     sat_epoch_plan p;
 *     sat_epoch_plan_make(&p, image_of_caption, ncaptions, nimages, 64, seed, epoch);
 *     for (long b = 0; b < p.nbatches; b++)
 *         train_on(p.order + p.start[b], p.start[b + 1] - p.start[b]);
 *     sat_epoch_plan_free(&p);
 */
#ifndef SAT_EPOCH_H
#define SAT_EPOCH_H

#include <stdint.h>

typedef struct {
    int *order;     /* caption indices, batch after batch */
    long *start;    /* batch b is order[start[b] .. start[b+1]) */
    long nbatches;
} sat_epoch_plan;

/* image[c] in [0, nimages) is caption c's image. */
void sat_epoch_plan_make(sat_epoch_plan *p, const int *image, int ncaptions, int nimages, int batch,
                         unsigned long seed, int epoch);
void sat_epoch_plan_free(sat_epoch_plan *p);

/* The seed of caption c's random draws (dropout, sampled words or
 * locations) in an epoch: a function of (seed, epoch, c) alone, whichever
 * batch, process or resumed run takes the caption. */
uint64_t sat_epoch_caption_seed(unsigned long seed, int epoch, int c);

/* A batch's work, for cutting it between processes (data-parallel
 * training).  A range of its captions costs their own work (their words:
 * the LSTM runs a step per word of each), image_work once per image it
 * holds captions of (the image's attention projection, computed by every
 * range that holds one of its captions), and step_work per step of its
 * longest caption (what each step costs whatever its rows: the BLAS packs
 * the weights on every call). */
typedef struct {
    const double *work;  /* n: caption i's own work */
    const int *steps;    /* n: caption i's steps (its words and the end) */
    const int *image;    /* n: caption i's image, an image's captions consecutive */
    int n;
    double image_work, step_work;
} sat_batch_work;

/* A process's share of a batch: its captions cut into `size` consecutive
 * ranges; whole_images: cut only between images.  The cuts minimise the
 * largest range's work (the step waits for the slowest rank), each range in
 * turn as long as that allows.  Rank `rank`'s range is [*lo, *hi), possibly
 * empty (fewer places to cut than ranges, or the last ranges' work taken by
 * the first). */
void sat_epoch_share(const sat_batch_work *bw, int whole_images, int rank, int size, int *lo,
                     int *hi);

#endif
