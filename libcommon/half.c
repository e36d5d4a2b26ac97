/* half.c — see half.h.  Bit manipulation on the IEEE layouts:
 *   binary32: sign 1 | exponent 8 (bias 127) | mantissa 23
 *   binary16: sign 1 | exponent 5 (bias 15)  | mantissa 10
 */
#include "sat/half.h"

#include <string.h>

#include <immintrin.h>

#include "sat/nn_simd.h"

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Shift `mant` right by `shift` bits, rounding to nearest even. */
static uint32_t shift_round_even(uint32_t mant, int shift)
{
    if (shift >= 32) return 0;
    uint32_t kept = mant >> shift;
    uint32_t rest = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1))) kept++;
    return kept;
}

uint16_t sat_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    int exp = (int)((u >> 23) & 0xff);
    uint32_t mant = u & 0x7fffff;

    if (exp == 0xff) /* inf stays inf; NaN stays a (quiet) NaN */
        return sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0);
    int e16 = exp - 127 + 15;
    if (e16 >= 0x1f) return sign | 0x7c00; /* overflow */
    if (e16 <= 0) {
        /* Subnormal half (or zero): value = mant16 * 2^-24.  With the implicit
         * bit, the f32 value is (mant|2^23) * 2^(exp-150), so shift by 126-exp.
         * A carry out of the mantissa lands on the smallest normal, correctly. */
        if (exp == 0) return sign; /* f32 zero/subnormal: far below 2^-25 */
        return sign | (uint16_t)shift_round_even(mant | 0x800000, 126 - exp);
    }
    /* Normal: round 23 mantissa bits to 10; a carry bumps the exponent,
     * which may become infinity — the right answer. */
    uint32_t r = shift_round_even(((uint32_t)e16 << 23) | mant, 13);
    return sign | (uint16_t)r;
}

float sat_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;

    if (exp == 0x1f) /* inf, or NaN made quiet (as F16C hardware does) */
        return bits_f32(sign | 0x7f800000 | (mant ? 0x400000 | mant << 13 : 0));
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* Subnormal: normalize; value = mant * 2^-24. */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400));
        mant &= 0x3ff;
        return bits_f32(sign | (uint32_t)(127 - 15 - e) << 23 | (mant << 13));
    }
    return bits_f32(sign | (uint32_t)(exp - 15 + 127) << 23 | (mant << 13));
}

/* The halves from i on, one at a time (little-endian bytes). */
static void f16_to_f32_tail(const unsigned char *p, float *dst, size_t i, size_t n)
{
    for (; i < n; i++) dst[i] = sat_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const unsigned char *p, float *dst,
                                                                 size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    f16_to_f32_tail(p, dst, i, n);
}

void sat_f16_to_f32_array(const void *src, float *dst, size_t n)
{
    if (nn_simd_f16c()) f16_to_f32_f16c(src, dst, n); /* cpuid: ~100 cycles against n conversions */
    else f16_to_f32_tail(src, dst, 0, n);
}

/* F16C rounds to nearest even, as sat_f32_to_f16 does, subnormals and
 * NaNs (made quiet, the payload's top bits kept) alike: the same bits. */
__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *src, uint16_t *dst,
                                                                 size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = sat_f32_to_f16(src[i]);
}

/* Whether f16 bits h are f exactly (NaNs never: they compare unequal). */
static int f16_is(uint16_t h, float f) { return sat_f16_to_f32(h) == f; }

/* The prefix of src that converts exactly, 8 at a time; returns its length
 * (a multiple of 8, or where the first inexact group of 8 starts). */
__attribute__((target("avx,f16c"))) static size_t f32_to_f16_exact_f16c(const float *src,
                                                                        uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT);
        if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtph_ps(h), x, _CMP_EQ_OQ)) != 0xff) break;
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    return i;
}

int sat_f32_to_f16_exact(const float *src, uint16_t *dst, size_t n)
{
    size_t i = nn_simd_f16c() ? f32_to_f16_exact_f16c(src, dst, n) : 0;
    for (; i < n; i++)
        if (!f16_is(dst[i] = sat_f32_to_f16(src[i]), src[i])) return 0;
    return 1;
}

/* The exponent bits all set: an infinity or a NaN. */
static int f16_bits_finite(const unsigned char *p) { return (p[1] & 0x7c) != 0x7c; }

/* The multiple-of-16 prefix of n: whether it is all finite. */
__attribute__((target("avx2"))) static int all_finite_avx2(const unsigned char *p, size_t n)
{
    const __m256i exp = _mm256_set1_epi16(0x7c00);
    __m256i bad = _mm256_setzero_si256();
    for (size_t i = 0; i + 16 <= n; i += 16) {
        __m256i h = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p + 2 * i)), exp);
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi16(h, exp));
    }
    return _mm256_testz_si256(bad, bad);
}

int sat_f16_all_finite(const void *src, size_t n)
{
    const unsigned char *p = src;
    size_t i = 0;
    if (nn_simd_avx2()) {
        i = n / 16 * 16;
        if (!all_finite_avx2(p, i)) return 0;
    }
    for (; i < n; i++)
        if (!f16_bits_finite(p + 2 * i)) return 0;
    return 1;
}

void sat_f32_to_f16_array(const float *src, uint16_t *dst, size_t n)
{
    if (nn_simd_f16c()) f32_to_f16_f16c(src, dst, n);
    else
        for (size_t i = 0; i < n; i++) dst[i] = sat_f32_to_f16(src[i]);
}
