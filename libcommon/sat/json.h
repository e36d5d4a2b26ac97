/* json.h — writing JSON text (for sat-dump, sat-eval --json, logs).
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become
 * U+FFFD; non-finite numbers are written as null (JSON has no NaN). */
#ifndef SAT_JSON_H
#define SAT_JSON_H

#include <stddef.h>
#include <stdio.h>

void sat_json_string(FILE *f, const char *s, size_t n);
void sat_json_number(FILE *f, double v);

#endif
