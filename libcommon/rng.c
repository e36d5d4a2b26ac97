/* rng.c — see rng.h. */
#include "sat/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void sat_rng_seed(sat_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

uint64_t sat_rng_next(sat_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float sat_rng_uniform(sat_rng *rng)
{
    return (float)(sat_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

uint32_t sat_rng_below(sat_rng *rng, uint32_t n)
{
    uint64_t m = (sat_rng_next(rng) >> 32) * n;
    if ((uint32_t)m < n) {
        uint32_t threshold = (uint32_t)-n % n;
        while ((uint32_t)m < threshold) m = (sat_rng_next(rng) >> 32) * n;
    }
    return (uint32_t)(m >> 32);
}

float sat_rng_normal(sat_rng *rng)
{
    /* u1 in (0, 1] keeps the log finite. */
    double u1 = ((double)(sat_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(sat_rng_next(rng) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void sat_rng_shuffle(sat_rng *rng, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sat_rng_below(rng, (uint32_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
