/* nn_simd.c — see nn_simd.h. */
#include "sat/nn_simd.h"

#include <cpuid.h>

static int simd_wanted = 1;

int nn_use_simd(int on)
{
    int old = simd_wanted;
    simd_wanted = on;
    return old;
}

int nn_simd_avx2(void)
{
    return simd_wanted && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int nn_simd_avx512(void) { return nn_simd_avx2() && __builtin_cpu_supports("avx512f"); }

/* CPUID leaf 1, ECX bit 29 (and AVX, bit 28): what __builtin_cpu_supports("f16c")
 * says, which clang 14 does not know. */
int nn_simd_f16c(void)
{
    unsigned a, b, c, d;
    return simd_wanted && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_AVX);
}
