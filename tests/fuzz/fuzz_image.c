/* fuzz_image — libFuzzer target: JPEG, PNG and netpbm decoding through
 * sat_image_decode with a 4-megapixel limit, then the resize to the network
 * input; and the same input as a stream of frames (sat_frame_read), each
 * frame decoded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sat/frames.h"
#include "fuzz.h"
#include "sat/image.h"
#include "sat/util.h"

static void decode(const unsigned char *data, size_t size)
{
    sat_image img;
    char err[SAT_ERR_MAX];
    if (sat_image_decode(data, size, 4u << 20, &img, err, sizeof err) == 0) {
        float *input = malloc(32 * 32 * 3 * sizeof(float));
        if (input) sat_image_to_input(&img, 32, 32, input);
        free(input);
        sat_image_free(&img);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    FILE *f = size ? fmemopen((void *)data, size, "rb") : NULL;
    unsigned char *frame;
    size_t len;
    char err[SAT_ERR_MAX];
    while (f && sat_frame_read(f, 1u << 20, &frame, &len, err, sizeof err) == 1) {
        decode(frame, len);
        free(frame);
    }
    if (f) fclose(f);
    return 0;
}
