/* frames.c — see frames.h.
 *
 * Bytes are read one at a time with getc_unlocked (the caller owns the
 * stream), appended to the frame's buffer, and never pushed back but for one
 * peeked byte, which stdio guarantees.  Every error is a longjmp-free return:
 * each reader returns -1 after setting the message.
 */
#include "sat/frames.h"
#include "sat/image.h"
#include "sat/sniff.h"
#include "sat/util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_MAX 4096 /* bytes of a netpbm header, comments included */

typedef struct {
    FILE *f;
    unsigned char *buf;
    size_t len, cap, max;
    char *err;
    size_t errlen;
} frame;

/* Append one byte; -1 (error set) when the frame outgrows its limit. */
static int keep(frame *fr, int c)
{
    if (fr->len == fr->max)
        return sat_fail(fr->err, fr->errlen, "image of more than %zu bytes in the stream", fr->max);
    if (fr->len == fr->cap) {
        fr->cap = fr->cap ? 2 * fr->cap : 65536;
        if (fr->cap > fr->max) fr->cap = fr->max;
        fr->buf = sat_xrealloc(fr->buf, fr->cap);
    }
    fr->buf[fr->len++] = (unsigned char)c;
    return 0;
}

/* The next byte, kept; -1 at the end of the stream (error set: `what` is
 * truncated). */
static int next(frame *fr, const char *what)
{
    int c = getc_unlocked(fr->f);
    if (c == EOF) return sat_fail(fr->err, fr->errlen, "truncated %s (the stream ends inside it)", what);
    return keep(fr, c) ? -1 : c;
}

/* n more bytes, kept. */
static int take(frame *fr, uint64_t n, const char *what)
{
    if (n > fr->max - fr->len)
        return sat_fail(fr->err, fr->errlen, "image of more than %zu bytes in the stream", fr->max);
    for (uint64_t i = 0; i < n; i++)
        if (next(fr, what) < 0) return -1;
    return 0;
}

/* A big-endian number of `bytes` bytes, kept. */
static int64_t take_be(frame *fr, int bytes, const char *what)
{
    int64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        int c = next(fr, what);
        if (c < 0) return -1;
        v = v << 8 | c;
    }
    return v;
}

/* ---- PNG: chunks up to IEND ---------------------------------------------- */

static int read_png(frame *fr)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (take(fr, 8 - fr->len, "PNG")) return -1;
    if (memcmp(fr->buf, signature, 8)) return sat_fail(fr->err, fr->errlen, "invalid PNG signature");
    for (;;) {
        int64_t n = take_be(fr, 4, "PNG");
        if (n < 0) return -1;
        if (n > 0x7fffffff)
            return sat_fail(fr->err, fr->errlen, "invalid PNG: chunk length %lld", (long long)n);
        size_t type_at = fr->len;
        if (take(fr, 4, "PNG")) return -1;
        int iend = memcmp(fr->buf + type_at, "IEND", 4) == 0;
        if (take(fr, (uint64_t)n + 4, "PNG")) return -1; /* data and CRC */
        if (iend) return 0;
    }
}

/* ---- JPEG: markers up to EOI ---------------------------------------------- */

/* The code of the marker at the stream's position (0xFF, fill bytes, code). */
static int jpeg_marker(frame *fr)
{
    int c = next(fr, "JPEG");
    if (c < 0) return -1;
    if (c != 0xff)
        return sat_fail(fr->err, fr->errlen, "invalid JPEG: byte 0x%02x where a marker should start", c);
    while ((c = next(fr, "JPEG")) == 0xff) {
    }
    return c;
}

/* Entropy-coded data after SOS: the code of the marker that ends it. */
static int jpeg_scan(frame *fr)
{
    for (;;) {
        int c = next(fr, "JPEG");
        if (c != 0xff) {
            if (c < 0) return -1;
            continue;
        }
        while ((c = next(fr, "JPEG")) == 0xff) {
        }
        if (c < 0) return -1;
        if (c != 0x00 && !(c >= 0xd0 && c <= 0xd7)) return c; /* not stuffing, not RSTn */
    }
}

static int read_jpeg(frame *fr)
{
    if (take(fr, 2 - fr->len, "JPEG")) return -1; /* SOI */
    int code = jpeg_marker(fr);
    for (;;) {
        if (code < 0) return -1;
        if (code == 0xd9) return 0; /* EOI */
        if (code == 0x01 || (code >= 0xd0 && code <= 0xd7)) { /* no length */
            code = jpeg_marker(fr);
            continue;
        }
        int64_t n = take_be(fr, 2, "JPEG");
        if (n < 0) return -1;
        if (n < 2) return sat_fail(fr->err, fr->errlen, "invalid JPEG: segment length %lld", (long long)n);
        if (take(fr, (uint64_t)n - 2, "JPEG")) return -1;
        code = code == 0xda ? jpeg_scan(fr) : jpeg_marker(fr); /* SOS: its data follows */
    }
}

/* ---- netpbm: the header, then the raster it describes ---------------------- */

/* The byte the next call to next() would read, or EOF. */
static int peek(frame *fr)
{
    int c = getc_unlocked(fr->f);
    if (c != EOF) ungetc(c, fr->f);
    return c;
}

/* Skip white space in a P1-P6 header (with comments) or a plain raster. */
static int pnm_skip(frame *fr, int header)
{
    for (;;) {
        int c = peek(fr);
        if (c == '#' && header) {
            while ((c = next(fr, "netpbm image")) != '\n')
                if (c < 0 || fr->len > HEADER_MAX) break;
            if (c < 0) return -1;
        } else if (c != EOF && isspace(c)) {
            if (next(fr, "netpbm image") < 0) return -1;
        } else {
            return 0;
        }
        if (fr->len > HEADER_MAX && header)
            return sat_fail(fr->err, fr->errlen, "netpbm header of over %d bytes", HEADER_MAX);
    }
}

/* An unsigned decimal number, of the header or of the raster (a sample); the
 * character after it is not consumed. */
static int64_t pnm_number(frame *fr, const char *field, int header)
{
    if (pnm_skip(fr, header)) return -1;
    int64_t v = 0;
    int digits = 0;
    for (int c = peek(fr); c >= '0' && c <= '9'; c = peek(fr), digits++) {
        if (next(fr, "netpbm image") < 0) return -1;
        if (v > 1000000000) return sat_fail(fr->err, fr->errlen, "invalid netpbm image: %s too large", field);
        v = v * 10 + (c - '0');
    }
    if (!digits) {
        int c = peek(fr);
        if (c == EOF)
            return sat_fail(fr->err, fr->errlen, "truncated netpbm image (the stream ends inside it)");
        return sat_fail(fr->err, fr->errlen, "invalid netpbm image: no %s (byte 0x%02x)", field, c);
    }
    return v;
}

typedef struct {
    int64_t width, height, depth, maxval;
} pnm_header;

/* A PAM header: "KEY value" lines up to ENDHDR. */
static int pam_header(frame *fr, pnm_header *h)
{
    char line[256];
    for (;;) {
        size_t n = 0;
        int c;
        while ((c = next(fr, "PAM image")) != '\n') {
            if (c < 0) return -1;
            if (n + 1 < sizeof line) line[n++] = (char)c;
        }
        line[n] = 0;
        if (fr->len > HEADER_MAX)
            return sat_fail(fr->err, fr->errlen, "PAM header of over %d bytes", HEADER_MAX);
        char key[16];
        long long v;
        if (sscanf(line, " %15s", key) != 1 || key[0] == '#') continue;
        if (strcmp(key, "ENDHDR") == 0) return 0;
        if (sscanf(line, " %*s %lld", &v) != 1) continue; /* TUPLTYPE and the like */
        if (strcmp(key, "WIDTH") == 0) h->width = v;
        else if (strcmp(key, "HEIGHT") == 0) h->height = v;
        else if (strcmp(key, "DEPTH") == 0) h->depth = v;
        else if (strcmp(key, "MAXVAL") == 0) h->maxval = v;
    }
}

/* P1-P6: width, height, maxval (not for bitmaps), one white-space byte. */
static int pnm_header_fields(frame *fr, int kind, pnm_header *h)
{
    h->depth = kind == 3 || kind == 6 ? 3 : 1;
    h->maxval = 1;
    if ((h->width = pnm_number(fr, "width", 1)) < 0) return -1;
    if ((h->height = pnm_number(fr, "height", 1)) < 0) return -1;
    if (kind != 1 && kind != 4 && (h->maxval = pnm_number(fr, "maxval", 1)) < 0) return -1;
    if (kind >= 4 && next(fr, "netpbm image") < 0) return -1; /* the raster follows one byte */
    return 0;
}

/* Plain samples: digits 0/1 for P1 (white space optional), numbers else. */
static int pnm_plain_raster(frame *fr, int kind, uint64_t samples)
{
    for (uint64_t i = 0; i < samples; i++) {
        if (kind != 1) {
            if (pnm_number(fr, "sample", 0) < 0) return -1;
            continue;
        }
        if (pnm_skip(fr, 0)) return -1;
        int c = next(fr, "netpbm image");
        if (c < 0) return -1;
        if (c != '0' && c != '1')
            return sat_fail(fr->err, fr->errlen, "invalid PBM image: byte 0x%02x in the raster", c);
    }
    return 0;
}

static int read_netpbm(frame *fr)
{
    if (take(fr, 2 - fr->len, "netpbm image")) return -1;
    int kind = fr->buf[1] - '0';
    pnm_header h = {0};
    if (kind == 7 ? pam_header(fr, &h) : pnm_header_fields(fr, kind, &h)) return -1;
    if (h.width < 1 || h.height < 1 || h.depth < 1 || h.maxval < 1 || h.maxval > 65535 ||
        h.depth > 16)
        return sat_fail(fr->err, fr->errlen, "invalid netpbm header: %lldx%lld, depth %lld, maxval %lld",
                    (long long)h.width, (long long)h.height, (long long)h.depth,
                    (long long)h.maxval);
    uint64_t samples = (uint64_t)h.width * (uint64_t)h.height * (uint64_t)h.depth;
    if (kind <= 3) return pnm_plain_raster(fr, kind, samples);
    uint64_t bytes = kind == 4 ? ((uint64_t)h.width + 7) / 8 * (uint64_t)h.height
                               : samples * (h.maxval > 255 ? 2 : 1);
    return take(fr, bytes, "netpbm image");
}

/* ---- entry points ---------------------------------------------------------- */

int sat_frame_more(FILE *f)
{
    int c;
    while ((c = getc_unlocked(f)) != EOF && isspace(c)) {
    }
    if (c == EOF) return 0;
    ungetc(c, f);
    return 1;
}

/* What the first bytes are, when they start no image: the same words as
 * sat_image_check_head, from up to SAT_SNIFF_BYTES of them. */
static int not_an_image(frame *fr)
{
    int c;
    while (fr->len < SAT_SNIFF_BYTES && (c = getc_unlocked(fr->f)) != EOF)
        if (keep(fr, c)) return -1;
    if (sat_image_check_head(fr->buf, fr->len, fr->err, fr->errlen) == 0)
        sat_fail(fr->err, fr->errlen, "not an image (a damaged header)");
    return -1;
}

int sat_frame_read(FILE *f, size_t max_bytes, unsigned char **data, size_t *len, char *err,
                   size_t errlen)
{
    frame fr = {.f = f, .max = max_bytes, .err = err, .errlen = errlen};
    *data = NULL;
    *len = 0;
    if (!sat_frame_more(f)) return ferror(f) ? sat_fail(fr.err, fr.errlen, "read error") : 0;
    int rc;
    int c0 = getc_unlocked(f), c1 = getc_unlocked(f);
    if (keep(&fr, c0)) rc = -1;
    else if (c1 == EOF) rc = not_an_image(&fr);
    else if (keep(&fr, c1)) rc = -1;
    else if (c0 == 0xff && c1 == 0xd8) rc = read_jpeg(&fr);
    else if (c0 == 0x89 && c1 == 'P') rc = read_png(&fr);
    else if (c0 == 'P' && c1 >= '1' && c1 <= '7') rc = read_netpbm(&fr);
    else rc = not_an_image(&fr);
    if (rc == 0 && ferror(f)) rc = sat_fail(fr.err, fr.errlen, "read error");
    if (rc) {
        free(fr.buf);
        return -1;
    }
    *data = fr.buf;
    *len = fr.len;
    return 1;
}
