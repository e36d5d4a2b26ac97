/* half.h — IEEE 754 binary16 <-> binary32 conversion in software (and F16C).
 *
 * Round to nearest, ties to even; infinities, NaNs (quiet, sign and top
 * payload bits kept) and subnormals handled in both directions.  Used for
 * f16 model params and f16 feature records (little-endian uint16 on disk).
 */
#ifndef SAT_HALF_H
#define SAT_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t sat_f32_to_f16(float f);
float sat_f16_to_f32(uint16_t h);

/* src: n halves, little-endian, at any alignment.  With F16C (checked at run
 * time, and the switch of nn_simd.h on) eight at a time in hardware, which
 * gives the same bits as sat_f16_to_f32 for every input, NaNs included. */
void sat_f16_to_f32_array(const void *src, float *dst, size_t n);
void sat_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
/* Whether none of n halves (little-endian, any alignment) is an infinity or
 * a NaN: 16 at a time with AVX2 (a features record's check was 3% of a
 * batched beam search one half at a time). */
int sat_f16_all_finite(const void *src, size_t n);
/* The same, stopping at the first value that f16 does not hold exactly (a
 * NaN is never taken as exact): returns whether all n are, in which case
 * sat_f16_to_f32_array of dst gives src back bit for bit. */
int sat_f32_to_f16_exact(const float *src, uint16_t *dst, size_t n);

#endif
