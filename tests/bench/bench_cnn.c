/* bench_cnn.c — speed of the CNN forward pass on one thread.
 *
 *   bench_cnn MODEL.satm [RUNS]
 *
 * Runs MobileNetV2 on a fixed random 224x224 image at output stride 16, then
 * 32, with OpenBLAS on one thread (as sat-encode runs each image), and prints
 * per stride the median and fastest time over RUNS runs (default 50) after
 * warm-up runs, and GFLOP/s = 2 * multiply-adds / median time, as
 *
 *   stride 16: MEDIAN ms median (min MIN) over RUNS runs, cpu CPU ms median, ...
 *
 * (scripts/bench.sh reads the third field; CPU is the thread's CPU time,
 * which a loaded machine inflates less than the wall clock), then the same for the integer
 * path (sat-encode --precision int8) as "int8 stride 16: ...", where the CPU
 * has AVX-512 VNNI (the portable integer kernels are for testing, not
 * speed).  The forward includes the classifier head (probs), as sat-encode
 * --classify runs it.
 */
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>

#include "sat/blas.h"
#include "sat/cnn.h"
#include "sat/qnn.h"
#include "sat/util.h"

#define SIZE 224
#define WARMUP 5

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench(const sat_model *m, int output_stride, sat_cnn_precision precision, int runs,
                  const float *image)
{
    char err[SAT_ERR_MAX];
    sat_cnn *cnn = sat_cnn_new(m, SIZE, output_stride, err, sizeof err);
    if (!cnn || sat_cnn_set_precision(cnn, precision, err, sizeof err) < 0) sat_die("%s", err);
    int h, w, c;
    sat_cnn_feature_shape(cnn, &h, &w, &c);
    float *features = sat_xmalloc((size_t)h * w * c * sizeof *features);
    float *probs = sat_xmalloc(((size_t)sat_cnn_num_classes(cnn) + 1) * sizeof *probs);
    double *ms = sat_xmalloc((size_t)runs * sizeof *ms), *cpu = sat_xmalloc((size_t)runs * sizeof *cpu);
    sat_cnn_work *ws = sat_cnn_work_new(cnn);
    for (int i = 0; i < WARMUP + runs; i++) {
        double t = sat_now(), t_cpu = cpu_now();
        sat_cnn_forward(cnn, ws, image, features, probs);
        if (i >= WARMUP) ms[i - WARMUP] = (sat_now() - t) * 1e3, cpu[i - WARMUP] = (cpu_now() - t_cpu) * 1e3;
    }
    double median = median_of(ms, runs), cpu_median = median_of(cpu, runs);
    double macs = sat_cnn_macs(cnn);
    printf("%sstride %d: %.2f ms median (min %.2f) over %d runs, cpu %.2f ms median, %.1f GFLOP/s, "
           "%dx%dx%d features, %.0f M multiply-adds, size %d, 1 thread\n",
           precision == SAT_CNN_INT8 ? "int8 " : "", output_stride, median, ms[0], runs, cpu_median, 2 * macs / (median * 1e-3) / 1e9, h, w, c,
           macs / 1e6, SIZE);
    sat_cnn_work_free(ws);
    sat_cnn_free(cnn);
    free(ms);
    free(cpu);
    free(probs);
    free(features);
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s MODEL.satm [RUNS]\n", sat_progname);
        return 2;
    }
    int runs = argc > 2 ? (int)sat_parse_long("RUNS", argv[2], 1, 100000) : 50;
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load(argv[1], 0, err, sizeof err);
    if (!m) sat_die("%s", err);
    sat_blas_threads(1);
    printf("OpenBLAS kernels: %s\n", sat_blas_core());

    /* A fixed pseudo-random image in [-1, 1) (the network's input range). */
    float *image = sat_xmalloc((size_t)SIZE * SIZE * 3 * sizeof *image);
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)SIZE * SIZE * 3; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        image[i] = (float)(s >> 40) / (float)(1 << 23) - 1.0f;
    }
    bench(m, 16, SAT_CNN_FLOAT, runs, image);
    bench(m, 32, SAT_CNN_FLOAT, runs, image);
    if (qnn_have_vnni()) {
        bench(m, 16, SAT_CNN_INT8, runs, image);
        bench(m, 32, SAT_CNN_INT8, runs, image);
    } else {
        printf("int8: this CPU has no AVX-512 VNNI, not run\n");
    }
    free(image);
    sat_model_free(m);
    return 0;
}
