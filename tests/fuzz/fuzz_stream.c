/* fuzz_stream — libFuzzer target: the stream reader and the record parsers
 * (features, thumbnail, and caption with every part required) on arbitrary
 * bytes (records limited to 1 MiB). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "sat/stream.h"
#include "sat/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    sat_reader *r = sat_reader_open(f, "fuzz", 1 << 20);
    sat_record rec;
    int st;
    while ((st = sat_reader_next(r, &rec)) != SAT_READ_END && st != SAT_READ_FATAL) {
        if (st != SAT_READ_OK) continue;
        char err[SAT_ERR_MAX];
        if (sat_record_is(&rec, "caption")) {
            sat_caption_record cap;
            sat_caption_record_parse(&rec, SAT_CAPTION_TEXT | SAT_CAPTION_ATTENTION, &cap, err,
                                     sizeof err);
            sat_caption_record_free(&cap);
            continue;
        }
        sat_thumbnail thumb;
        sat_thumbnail_parse(&rec, &thumb);
        free(thumb.id);
        if (!sat_record_is(&rec, "features")) continue;
        sat_features feat;
        if (sat_features_parse(&rec, &feat, err, sizeof err) == 0) {
            float *values = malloc(sat_features_count(&feat) * sizeof(float));
            if (values) sat_features_to_f32(&feat, values);
            free(values);
            sat_features_free(&feat);
        }
    }
    sat_reader_close(r);
    fclose(f);
    return 0;
}
