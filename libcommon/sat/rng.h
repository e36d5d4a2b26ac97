/* rng.h — a small seedable PRNG: xoshiro256** (Blackman & Vigna), seeded
 * through splitmix64, so any 64-bit seed (0 included) gives a good state.
 *
 * The same seed gives the same sequence on every machine: training runs,
 * dropout masks and parameter initialisation are reproducible.
 */
#ifndef SAT_RNG_H
#define SAT_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} sat_rng;

void sat_rng_seed(sat_rng *rng, uint64_t seed);
/* 64 random bits. */
uint64_t sat_rng_next(sat_rng *rng);
/* Uniform in [0, 1), 24 random bits (every value is an exact float). */
float sat_rng_uniform(sat_rng *rng);
/* Uniform integer in [0, n), unbiased (Lemire's method); n >= 1. */
uint32_t sat_rng_below(sat_rng *rng, uint32_t n);
/* Standard normal (Box–Muller; one draw per call, the sine half is dropped
 * so the state stays just the four words). */
float sat_rng_normal(sat_rng *rng);
/* Fisher–Yates shuffle of n ints. */
void sat_rng_shuffle(sat_rng *rng, int *a, int n);

#endif
