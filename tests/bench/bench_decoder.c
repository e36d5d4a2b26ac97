/* bench_decoder.c — forward+backward speed of the decoder at a Flickr8k size.
 *
 *   make build/bench/bench_decoder && build/bench/bench_decoder [ITERS [IMAGES]]
 *   (make bench runs it)
 *
 * B = 64 captions of T = 16 steps (lengths 10–16) over IMAGES images (default
 * 13: the five captions of each image together), L = 196, D = 1280,
 * E = 256, H = 512, A = 256, V = 2600, λ = 1, dropout 0.5.  Prints the median
 * time of a training step (forward + backward) and of a forward pass alone,
 * and captions per second; then the step-by-step inference of one image for
 * T steps with k = 1 and k = 5 hypotheses.  OpenBLAS uses OPENBLAS_NUM_THREADS
 * threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sat/decoder.h"
#include "sat/rng.h"
#include "sat/util.h"

enum { B = 64, T = 16 };

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CPU seconds of the process, all threads: on a shared machine this, not
 * the wall clock, shows the work done (OpenBLAS threads spin while waiting,
 * so with more than one thread it overstates it). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median wall and CPU seconds of a training step (or a forward pass). */
static void median_seconds(sat_decoder *dec, const sat_decoder_batch *batch, sat_rng *rng,
                           int do_backward, int iters, double *wall, double *cpu)
{
    double *t = sat_xmalloc(2 * (size_t)iters * sizeof(double)), *c = t + iters;
    for (int i = 0; i < iters; i++) {
        double t0 = sat_now(), c0 = cpu_now();
        sat_decoder_forward_backward(dec, batch, 1.0f, 0.5f, rng, do_backward);
        t[i] = sat_now() - t0;
        c[i] = cpu_now() - c0;
    }
    qsort(t, (size_t)iters, sizeof(double), compare_double);
    qsort(c, (size_t)iters, sizeof(double), compare_double);
    *wall = t[iters / 2];
    *cpu = c[iters / 2];
    free(t);
}

/* State setup and T steps of k hypotheses over one image (a beam's cost
 * without the bookkeeping), median of 5. */
static double inference_seconds(const sat_decoder *dec, const float *feats, int k, sat_rng *rng)
{
    const int V = dec->cfg.V;
    float *logp = sat_xmalloc((size_t)k * V * sizeof(float));
    int prev[8];
    double t[5];
    for (int rep = 0; rep < 5; rep++) {
        double t0 = sat_now();
        sat_decoder_state *st = sat_decoder_state_new(dec, feats, 1, k);
        sat_decoder_state_select(st, (const int[8]){ 0 }, k);
        for (int j = 0; j < k; j++) prev[j] = 0;
        for (int step = 0; step < T; step++) {
            sat_decoder_step(dec, st, prev, NULL, logp, NULL, NULL);
            for (int j = 0; j < k; j++) prev[j] = (int)sat_rng_below(rng, (uint32_t)V);
        }
        sat_decoder_state_free(st);
        t[rep] = sat_now() - t0;
    }
    free(logp);
    qsort(t, 5, sizeof(double), compare_double);
    return t[2];
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    int iters = argc > 1 ? (int)sat_parse_long("ITERS", argv[1], 1, 1000) : 5;
    int n_images = argc > 2 ? (int)sat_parse_long("IMAGES", argv[2], 1, B) : 13;
    const sat_decoder_config cfg = { .L = 196, .D = 1280, .E = 256, .H = 512, .A = 256, .V = 2600 };
    char err[SAT_ERR_MAX];
    sat_decoder *dec = sat_decoder_new(cfg, err, sizeof err);
    if (!dec) sat_die("%s", err);
    sat_rng rng;
    sat_rng_seed(&rng, 1);
    sat_decoder_init_params(dec, &rng);

    size_t nfeat = (size_t)n_images * cfg.L * cfg.D;
    float *feats = sat_xmalloc(nfeat * sizeof(float));
    for (size_t i = 0; i < nfeat; i++) feats[i] = sat_rng_uniform(&rng);
    int image[B], tokens[B * (T + 1)];
    for (int b = 0; b < B; b++) {
        int len = 10 + (int)sat_rng_below(&rng, T - 10 + 1);
        image[b] = b % n_images;
        for (int t = 0; t <= T; t++)
            tokens[b * (T + 1) + t] = t <= len ? (int)sat_rng_below(&rng, (uint32_t)cfg.V) : -1;
    }
    sat_decoder_batch batch = { .feats = feats, .n_images = n_images, .image = image, .tokens = tokens, .B = B, .T = T };

    sat_decoder_forward_backward(dec, &batch, 1.0f, 0.5f, &rng, 1); /* warm-up, allocation */
    double fb, fb_cpu, f, f_cpu;
    median_seconds(dec, &batch, &rng, 1, iters, &fb, &fb_cpu);
    median_seconds(dec, &batch, &rng, 0, iters, &f, &f_cpu);
    printf("decoder B=%d T=%d L=%d D=%d E=%d H=%d A=%d V=%d images=%d (median of %d)\n", B, T,
           cfg.L, cfg.D, cfg.E, cfg.H, cfg.A, cfg.V, n_images, iters);
    printf("forward+backward %.1f ms/batch  %.1f captions/s  (CPU %.1f ms)\n", fb * 1e3, B / fb,
           fb_cpu * 1e3);
    printf("forward          %.1f ms/batch  %.1f captions/s  (CPU %.1f ms)\n", f * 1e3, B / f,
           f_cpu * 1e3);
    for (int k = 1; k <= 5; k += 4) {
        double s = inference_seconds(dec, feats, k, &rng);
        printf("inference k=%d    %.2f ms/image (%d steps)  %.1f images/s\n", k, s * 1e3, T, 1 / s);
    }
    free(feats);
    sat_decoder_free(dec);
    return 0;
}
