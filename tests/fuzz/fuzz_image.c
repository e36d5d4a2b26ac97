/* fuzz_image — libFuzzer target: JPEG/PNG decoding through sat_image_decode
 * with a 4-megapixel limit, then the resize to the network input. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sat_image img;
    char err[256];
    if (sat_image_decode(data, size, 4u << 20, &img, err, sizeof err) == 0) {
        float *input = malloc(32 * 32 * 3 * sizeof(float));
        if (input) sat_image_to_input(&img, 32, 32, input);
        free(input);
        sat_image_free(&img);
    }
    return 0;
}
