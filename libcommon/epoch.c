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
