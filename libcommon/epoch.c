/* epoch.c — see epoch.h. */
#include "sat/epoch.h"

#include <stdlib.h>
#include <string.h>

#include "sat/rng.h"
#include "sat/util.h"

void sat_epoch_plan_make(sat_epoch_plan *p, const int *image, int ncaptions, int nimages, int batch,
                         unsigned long seed, int epoch)
{
    sat_rng rng;
    sat_rng_seed(&rng, seed * 1000003u + (unsigned long)epoch);
    /* captions grouped by image: by_image[first[im] .. first[im+1]) */
    int n = ncaptions, ni = nimages;
    int *first = sat_xcalloc((size_t)ni + 1, sizeof *first);
    for (int c = 0; c < n; c++) first[image[c] + 1]++;
    for (int i = 0; i < ni; i++) first[i + 1] += first[i];
    int *fill = sat_xmalloc(((size_t)ni + 1) * sizeof *fill);
    memcpy(fill, first, ((size_t)ni + 1) * sizeof *fill);
    int *by_image = sat_xmalloc((size_t)n * sizeof *by_image);
    for (int c = 0; c < n; c++) by_image[fill[image[c]]++] = c;
    int *images = sat_xmalloc((size_t)ni * sizeof *images), nimg = 0;
    for (int i = 0; i < ni; i++)
        if (first[i + 1] > first[i]) images[nimg++] = i;
    sat_rng_shuffle(&rng, images, nimg);

    p->order = sat_xmalloc(((size_t)n + 1) * sizeof *p->order);
    p->start = sat_xmalloc(((size_t)n + 1) * sizeof *p->start);
    long pos = 0, nb = 0;
    for (int k = 0; k < nimg; k++) {
        if (nb == 0 || pos - p->start[nb - 1] >= batch) p->start[nb++] = pos;
        for (int c = first[images[k]]; c < first[images[k] + 1]; c++) p->order[pos++] = by_image[c];
    }
    p->start[nb] = pos;
    p->nbatches = nb;
    free(first);
    free(fill);
    free(by_image);
    free(images);
}

void sat_epoch_plan_free(sat_epoch_plan *p)
{
    free(p->order);
    free(p->start);
}

uint64_t sat_epoch_caption_seed(unsigned long seed, int epoch, int c)
{
    uint64_t h = (uint64_t)seed * 0x9e3779b97f4a7c15u;
    h = (h ^ (uint64_t)epoch) * 0xbf58476d1ce4e5b9u;
    return (h ^ (uint64_t)c) * 0x94d049bb133111ebu; /* sat_rng_seed mixes it further */
}

/* A batch's work in prefix sums: words[i], the own work of captions
 * 0..i-1; starts[i], the images starting among them. */
typedef struct {
    const sat_batch_work *bw;
    double *words;
    int *starts;
} batch_sums;

static int starts_image(const batch_sums *w, int i)
{
    return i == 0 || w->bw->image[i] != w->bw->image[i - 1];
}

/* The work of captions [a, b), whose longest runs `longest` steps: their
 * own, each image they touch once, and the steps. */
static double range_work(const batch_sums *w, int a, int b, int longest)
{
    if (a >= b) return 0;
    int images = w->starts[b] - w->starts[a] + !starts_image(w, a);
    return w->words[b] - w->words[a] + w->bw->image_work * images + w->bw->step_work * longest;
}

/* The first range from `a` that fits: its end, as far as work `most` allows
 * (at least a; only where an image starts with whole_images, or at n). */
static int fit(const batch_sums *w, int a, double most, int whole_images)
{
    int end = a, n = w->bw->n, longest = 0;
    for (int b = a + 1; b <= n; b++) {
        if (w->bw->steps[b - 1] > longest) longest = w->bw->steps[b - 1];
        if (range_work(w, a, b, longest) > most) break;
        if (!whole_images || b == n || starts_image(w, b)) end = b;
    }
    return end;
}

/* Can `size` ranges of work `most` at most cover the batch? */
static int covers(const batch_sums *w, double most, int whole_images, int size)
{
    int a = 0;
    for (int r = 0; r < size && a < w->bw->n; r++) a = fit(w, a, most, whole_images);
    return a == w->bw->n;
}

void sat_epoch_share(const sat_batch_work *bw, int whole_images, int rank, int size, int *lo,
                     int *hi)
{
    const int n = bw->n;
    batch_sums w = {.bw = bw, .words = sat_xmalloc(((size_t)n + 1) * sizeof *w.words),
                    .starts = sat_xmalloc(((size_t)n + 1) * sizeof *w.starts)};
    int longest = 0;
    w.words[0] = 0, w.starts[0] = 0;
    for (int i = 0; i < n; i++) {
        w.words[i + 1] = w.words[i] + bw->work[i];
        w.starts[i + 1] = w.starts[i] + starts_image(&w, i);
        if (bw->steps[i] > longest) longest = bw->steps[i];
    }
    /* the least work per range that lets `size` ranges cover the batch, by
     * bisection (the ranges then taken greedily, each as long as it fits) */
    double below = 0, enough = range_work(&w, 0, n, longest);
    for (int k = 0; k < 64; k++) {
        double mid = (below + enough) / 2;
        if (covers(&w, mid, whole_images, size)) enough = mid;
        else below = mid;
    }
    *lo = 0;
    for (int r = 0; r < rank; r++) *lo = fit(&w, *lo, enough, whole_images);
    *hi = rank == size - 1 ? n : fit(&w, *lo, enough, whole_images);
    free(w.words);
    free(w.starts);
}
