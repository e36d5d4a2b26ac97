/* fuzz.h — the entry point every fuzz target defines: libFuzzer calls it
 * (make fuzz) and replay.c runs it over the committed corpus (make test). */
#ifndef SAT_FUZZ_H
#define SAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input; returns 0 (libFuzzer's convention). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
