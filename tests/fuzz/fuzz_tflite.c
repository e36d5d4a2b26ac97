/* fuzz_tflite — libFuzzer target: the TFLite flatbuffer importer on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include "fuzz.h"
#include "sat/tflite.h"
#include "sat/util.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SAT_ERR_MAX];
    sat_model *m = sat_tflite_import(data, size, "fuzz.tflite", err, sizeof err);
    sat_model_free(m);
    return 0;
}
