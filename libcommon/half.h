/* half.h — IEEE 754 binary16 <-> binary32 conversion in software.
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

void sat_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void sat_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);

#endif
