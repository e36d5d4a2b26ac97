/* test_blas.c — sat_init leaves OpenBLAS on kernels for this CPU's vector
 * units (libcommon/sat/blas.h), never on the SSE3 fallback when the CPU has AVX2,
 * and the kernels it picks multiply correctly; a user's OPENBLAS_CORETYPE
 * is kept; OpenBLAS runs one thread until a program asks for more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <dirent.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "sat/blas.h"
#include "sat/util.h"

static void test_kernels_fit_the_cpu(void **state)
{
    (void)state;
    const char *user = getenv("OPENBLAS_CORETYPE");
    sat_init("test_blas");
    if (user) { /* the user's choice stands */
        assert_string_equal(getenv("OPENBLAS_CORETYPE"), user);
        assert_int_equal(strcasecmp(sat_blas_core(), user), 0);
        return;
    }
    assert_null(getenv("OPENBLAS_CORETYPE")); /* not left behind for child processes */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) skip();
    assert_int_not_equal(strcasecmp(sat_blas_core(), "prescott"), 0);
}

static int threads_of_this_process(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The product below with n BLAS threads, checked exactly. */
static void check_sgemm(int n);

/* Without a user's thread count, sat_init leaves OpenBLAS one thread and
 * none of its own spinning; asking for two afterwards still gets them. */
static void test_one_thread_until_asked(void **state)
{
    (void)state;
    sat_init("test_blas");
    if (getenv("OPENBLAS_NUM_THREADS") || getenv("OMP_NUM_THREADS") || sysconf(_SC_NPROCESSORS_ONLN) < 2)
        skip();
    assert_int_equal(openblas_get_num_threads(), 1);
    assert_int_equal(threads_of_this_process(), 1);
    check_sgemm(2);
    assert_int_equal(openblas_get_num_threads(), 2);
    assert_int_equal(threads_of_this_process(), 2);
}

static void test_sgemm_after_the_switch(void **state)
{
    (void)state;
    check_sgemm(openblas_get_num_threads());
}

/* A product whose every element is an exact small integer: any kernel gets
 * it exactly; big enough for OpenBLAS to use its threads. */
static void check_sgemm(int n)
{
    openblas_set_num_threads(n);
    enum { M = 237, N = 270, K = 129 };
    static float a[M * K], b[K * N], c[M * N];
    for (int i = 0; i < M * K; i++) a[i] = (float)(i % 7 - 3);
    for (int i = 0; i < K * N; i++) b[i] = (float)(i % 5 - 2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0, c, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float want = 0;
            for (int k = 0; k < K; k++) want += a[i * K + k] * b[k * N + j];
            assert_float_equal(c[i * N + j], want, 0);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_fit_the_cpu),
        cmocka_unit_test(test_sgemm_after_the_switch),
        cmocka_unit_test(test_one_thread_until_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
