/* fuzz_model — libFuzzer target: the sat model file loader on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include "fuzz.h"
#include "sat/model.h"
#include "sat/util.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load_mem(data, size, "fuzz.satm", SAT_MODEL_VERIFY, err, sizeof err);
    sat_model_free(m);
    return 0;
}
