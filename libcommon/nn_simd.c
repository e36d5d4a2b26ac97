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
 * says, which clang 14 does not know.  Asked once: in a virtual machine
 * CPUID traps to the hypervisor, and nn_linear_rows_f16 asks on every call
 * (it was 5% of a batched beam search). */
static int cpu_has_f16c(void)
{
    static int known = -1; /* atomic: threads may ask at once */
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    unsigned a, b, c, d;
    if (k < 0) {
        k = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_AVX);
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k;
}

int nn_simd_f16c(void) { return simd_wanted && cpu_has_f16c(); }
