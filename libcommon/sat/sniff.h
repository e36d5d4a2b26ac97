/* sniff.h — what an input looks like, from its first bytes, for the one-line
 * error about an input of the wrong kind: `dog.jpg: not a sat stream (it
 * looks like a JPEG image: run sat-encode first)`, `/dev/zero: not a JPEG or
 * PNG image (it looks like zero bytes)`.  Readers look before they buffer,
 * so a wrong input is refused at once, whatever its size.
 */
#ifndef SAT_SNIFF_H
#define SAT_SNIFF_H

#include <stddef.h>

/* How many first bytes a caller should offer (fewer at the end of input). */
#define SAT_SNIFF_BYTES 512

typedef enum {
    SAT_KIND_UNKNOWN,      /* binary data of no kind known here */
    SAT_KIND_EMPTY,
    SAT_KIND_MSGPACK_MAP,  /* what a sat stream or model file starts with */
    SAT_KIND_JPEG,
    SAT_KIND_PNG,
    SAT_KIND_GIF,
    SAT_KIND_WEBP,
    SAT_KIND_PNM,
    SAT_KIND_TFLITE,
    SAT_KIND_GZIP,
    SAT_KIND_ZEROS,
    SAT_KIND_TEXT,
} sat_kind;

sat_kind sat_sniff(const void *head, size_t n);
/* "it looks like a JPEG image", "it looks like text", or for bytes of no
 * known kind "its first byte is 0x92"; written into buf, which is returned. */
const char *sat_sniff_describe(const void *head, size_t n, char *buf, size_t len);

#endif
