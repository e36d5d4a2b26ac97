/* sniff.c — see sniff.h. */
#include "sat/sniff.h"

#include <stdio.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/stream.h"

static int starts_with(const unsigned char *p, size_t n, size_t at, const char *magic, size_t len)
{
    return n >= at + len && memcmp(p + at, magic, len) == 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Printable characters and white space, valid UTF-8 but for the last
 * character, which the end of the window may cut. */
static int is_text(const unsigned char *p, size_t n)
{
    size_t m = n;
    for (int k = 0; k < 3 && m > 0 && (p[m - 1] & 0xc0) == 0x80; k++) m--;
    if (m > 0 && p[m - 1] >= 0xc0) m--;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = p[i];
        if ((c < 0x20 && !(c >= '\t' && c <= '\r')) || c == 0x7f) return 0;
    }
    return sat_utf8_valid((const char *)p, m);
}

/* netpbm: P1..P7 and white space. */
static int is_pnm(const unsigned char *p, size_t n)
{
    return n >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7' &&
           (p[2] == ' ' || (p[2] >= '\t' && p[2] <= '\r'));
}

sat_kind sat_sniff(const void *head, size_t n)
{
    const unsigned char *p = head;
    if (n == 0) return SAT_KIND_EMPTY;
    if (starts_with(p, n, 0, "\xff\xd8\xff", 3)) return SAT_KIND_JPEG;
    if (starts_with(p, n, 0, "\x89PNG\r\n\x1a\n", 8)) return SAT_KIND_PNG;
    if (starts_with(p, n, 0, "GIF87a", 6) || starts_with(p, n, 0, "GIF89a", 6)) return SAT_KIND_GIF;
    if (starts_with(p, n, 0, "RIFF", 4) && starts_with(p, n, 8, "WEBP", 4)) return SAT_KIND_WEBP;
    if (starts_with(p, n, 4, "TFL3", 4)) return SAT_KIND_TFLITE;
    if (starts_with(p, n, 0, "\x1f\x8b", 2)) return SAT_KIND_GZIP;
    if (is_pnm(p, n)) return SAT_KIND_PNM;
    if (sat_is_map_lead(p[0])) return SAT_KIND_MSGPACK_MAP;
    if (all_zero(p, n)) return SAT_KIND_ZEROS;
    if (is_text(p, n)) return SAT_KIND_TEXT;
    return SAT_KIND_UNKNOWN;
}

static const char *const kind_names[] = {
    [SAT_KIND_EMPTY] = "an empty file",
    [SAT_KIND_MSGPACK_MAP] = "a sat stream or model file",
    [SAT_KIND_JPEG] = "a JPEG image",
    [SAT_KIND_PNG] = "a PNG image",
    [SAT_KIND_GIF] = "a GIF image",
    [SAT_KIND_WEBP] = "a WebP image",
    [SAT_KIND_PNM] = "a netpbm image",
    [SAT_KIND_TFLITE] = "a TensorFlow Lite model",
    [SAT_KIND_GZIP] = "gzip-compressed data",
    [SAT_KIND_ZEROS] = "zero bytes",
    [SAT_KIND_TEXT] = "text",
};

const char *sat_sniff_describe(const void *head, size_t n, char *buf, size_t len)
{
    sat_kind k = sat_sniff(head, n);
    if (k == SAT_KIND_UNKNOWN)
        snprintf(buf, len, "its first byte is 0x%02x", *(const unsigned char *)head);
    else
        snprintf(buf, len, "it looks like %s", kind_names[k]);
    return buf;
}
