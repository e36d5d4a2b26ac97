/* image_fixtures.h — in-memory JPEG and PNG files for test_image.c, written
 * with libjpeg and libpng so every variant the decoder claims to handle is
 * generated here rather than stored.  Also the byte-level helpers the tests
 * use to damage or forge files: a PNG chunk finder, a JPEG marker finder and
 * the PNG CRC. */
#ifndef SAT_IMAGE_FIXTURES_H
#define SAT_IMAGE_FIXTURES_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

typedef struct {
    unsigned char *data;
    size_t len;
} fx_blob;

static void fx_blob_free(fx_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* ---- JPEG ---- */

typedef struct {
    J_COLOR_SPACE in_space;    /* JCS_RGB, JCS_GRAYSCALE or JCS_CMYK */
    J_COLOR_SPACE stored;      /* colour space in the file; JCS_UNKNOWN: libjpeg's default */
    int progressive;
    int quality;               /* 0: 95 */
    const uint8_t *app1;       /* an APP1 (EXIF) payload to insert, or NULL */
    size_t app1_len;
    int restart_rows;          /* a restart marker (RSTn) every N MCU rows; 0: none */
} fx_jpeg_opts;

/* px: h rows of w pixels of the input colour space's components. */
static fx_blob fx_jpeg(const uint8_t *px, int w, int h, const fx_jpeg_opts *o)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr); /* a fixture bug exits loudly */
    jpeg_create_compress(&c);
    unsigned char *data = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &data, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.in_color_space = o->in_space;
    c.input_components = o->in_space == JCS_GRAYSCALE ? 1 : o->in_space == JCS_CMYK ? 4 : 3;
    jpeg_set_defaults(&c); /* CMYK: writes the Adobe marker (write_Adobe_marker) */
    if (o->stored != JCS_UNKNOWN) jpeg_set_colorspace(&c, o->stored);
    jpeg_set_quality(&c, o->quality ? o->quality : 95, TRUE);
    if (o->progressive) jpeg_simple_progression(&c);
    c.restart_in_rows = o->restart_rows;
    jpeg_start_compress(&c, TRUE);
    if (o->app1) jpeg_write_marker(&c, JPEG_APP0 + 1, o->app1, (unsigned)o->app1_len);
    size_t stride = (size_t)w * (size_t)c.input_components;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + c.next_scanline * stride);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return (fx_blob){data, len};
}

/* Offset of the first marker FF `code` in the header part of a JPEG (before
 * SOS), or 0.  Walks segment lengths, so table bytes cannot fake a marker. */
static size_t fx_jpeg_marker(const fx_blob *b, unsigned code)
{
    size_t at = 2;
    while (at + 4 <= b->len && b->data[at] == 0xff) {
        unsigned m = b->data[at + 1];
        if (m == code) return at;
        if (m == 0xda) return 0; /* SOS: entropy-coded data follows */
        at += 2 + ((size_t)b->data[at + 2] << 8 | b->data[at + 3]);
    }
    return 0;
}

/* ---- PNG ---- */

typedef struct {
    int color_type;         /* PNG_COLOR_TYPE_* */
    int bit_depth;
    int interlace;          /* PNG_INTERLACE_NONE or PNG_INTERLACE_ADAM7 */
    const png_color *palette;
    int npalette;
    const uint8_t *trns;    /* palette alpha values */
    int ntrns;
    const png_color_16 *trns_color; /* gray/RGB colour key */
} fx_png_opts;

typedef struct {
    unsigned char *data;
    size_t len, cap;
} fx_png_sink;

static void fx_png_write(png_structp png, png_bytep p, size_t n)
{
    fx_png_sink *s = png_get_io_ptr(png);
    if (s->len + n > s->cap) {
        s->cap = 2 * (s->len + n);
        s->data = realloc(s->data, s->cap);
        if (!s->data) png_error(png, "out of memory");
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
}

static void fx_png_flush(png_structp png) { (void)png; }

/* rows: h rows of rowbytes bytes in PNG's own layout (samples packed MSB
 * first below 8 bits, 16-bit samples big-endian). */
static fx_blob fx_png(const uint8_t *rows, size_t rowbytes, int w, int h, const fx_png_opts *o)
{
    fx_png_sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *row_ptrs = malloc((size_t)h * sizeof *row_ptrs);
    if (setjmp(png_jmpbuf(png))) { /* libpng printed why */
        fprintf(stderr, "fx_png: libpng failed\n");
        abort();
    }
    png_set_write_fn(png, &sink, fx_png_write, fx_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, o->bit_depth, o->color_type,
                 o->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (o->palette) png_set_PLTE(png, info, o->palette, o->npalette);
    if (o->trns || o->trns_color)
        png_set_tRNS(png, info, o->trns, o->ntrns, o->trns_color);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) row_ptrs[y] = (png_bytep)(rows + (size_t)y * rowbytes);
    png_write_image(png, row_ptrs); /* writes the Adam7 passes when interlaced */
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row_ptrs);
    return (fx_blob){sink.data, sink.len};
}

static uint32_t fx_crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return crc ^ 0xffffffffu;
}

static uint32_t fx_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fx_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Offset of the first chunk of `type` (its length field), or 0. */
static size_t fx_png_chunk(const fx_blob *b, const char *type)
{
    size_t at = 8;
    while (at + 12 <= b->len) {
        if (memcmp(b->data + at + 4, type, 4) == 0) return at;
        at += 12 + fx_be32(b->data + at);
    }
    return 0;
}

/* Append a chunk (length, type, data, CRC of type + data) at p; returns its size. */
static size_t fx_put_chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t n)
{
    fx_put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    fx_put_be32(p + 8 + n, fx_crc32(p + 4, 4 + (size_t)n));
    return 12 + (size_t)n;
}

#endif
