/* blas.c — see blas.h. */
#include "sat/blas.h"

#include <stdlib.h>
#include <strings.h>

/* OpenBLAS's own re-detection (exported by its DYNAMIC_ARCH builds only,
 * hence weak: a library built for one CPU has neither, and needs nothing). */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));
extern void openblas_set_num_threads(int n) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void blas_thread_shutdown_(void) __attribute__((weak));

/* The best kernels of OpenBLAS 0.3.21 for the CPU's features, or NULL. */
static const char *core_for_features(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

/* OpenBLAS starts its threads as it is loaded, and each then spins on a
 * core (sched_yield) for ~0.1 s waiting for work: in sat-beam, which calls
 * no BLAS, that was more CPU time than captioning a photo, taken from the
 * sat-encode beside it in a pipe (issue 15).  So they are stopped at once;
 * a program that wants more than one asks with sat_blas_threads (sat-train),
 * which starts them again.  Unless the user chose a
 * number (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS). */
static void stop_idle_threads(void)
{
    if (!openblas_set_num_threads || !blas_thread_shutdown_ || getenv("OPENBLAS_NUM_THREADS") ||
        getenv("OMP_NUM_THREADS"))
        return;
    openblas_set_num_threads(1);
    blas_thread_shutdown_();
}

void sat_blas_init(void)
{
    stop_idle_threads();
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename) return;
    if (getenv("OPENBLAS_CORETYPE") || strcasecmp(openblas_get_corename(), "prescott") != 0) return;
    const char *core = core_for_features();
    if (!core) return;
    /* gotoblas_dynamic_init reads OPENBLAS_CORETYPE; unset again so that
     * the programs we start detect for themselves. */
    setenv("OPENBLAS_CORETYPE", core, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
}

void sat_blas_threads(int n)
{
    if (!openblas_set_num_threads || (openblas_get_num_threads && openblas_get_num_threads() == n)) return;
    openblas_set_num_threads(n);
}

const char *sat_blas_core(void)
{
    return openblas_get_corename ? openblas_get_corename() : "none";
}
