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

#endif
