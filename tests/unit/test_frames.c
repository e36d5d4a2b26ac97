/* test_frames.c — splitting a stream of concatenated images (frames.h):
 * every frame comes back byte for byte, whatever its format and neighbours;
 * a cut anywhere is an error, never a crash or a frame that is not one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* image_fixtures.h serves several tests; this one uses part of it */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "sat/frames.h"
#include "sat/image.h"
#include "image_fixtures.h"
#include "sat/util.h"

#define MAX_BYTES (1u << 24)

static uint8_t *pattern(int w, int h, int channels)
{
    uint8_t *px = malloc((size_t)w * h * channels);
    for (int i = 0; i < w * h * channels; i++) px[i] = (uint8_t)(i * 37 % 251);
    return px;
}

static fx_blob text_blob(const char *s)
{
    fx_blob b = {(unsigned char *)strdup(s), strlen(s)};
    return b;
}

/* A raw netpbm image: header text, then `raster` bytes of a pattern. */
static fx_blob netpbm_blob(const char *header, size_t raster)
{
    size_t hl = strlen(header);
    fx_blob b = {malloc(hl + raster), hl + raster};
    memcpy(b.data, header, hl);
    for (size_t i = 0; i < raster; i++) b.data[hl + i] = (unsigned char)(i * 13 % 256);
    return b;
}

/* The frames concatenated (with `sep` between them) into one stream. */
static FILE *stream_of(const fx_blob *frames, int n, const char *sep, char **buf, size_t *len)
{
    FILE *out = open_memstream(buf, len);
    for (int i = 0; i < n; i++) {
        fwrite(frames[i].data, 1, frames[i].len, out);
        if (sep) fputs(sep, out);
    }
    fclose(out);
    return fmemopen(*buf, *len, "rb");
}

/* A stream of these frames gives them back, one by one, then the end. */
static void frames_come_back(const fx_blob *frames, int n, const char *sep)
{
    char *buf;
    size_t len;
    FILE *f = stream_of(frames, n, sep, &buf, &len);
    for (int i = 0; i < n; i++) {
        unsigned char *data;
        size_t flen;
        char err[SAT_ERR_MAX] = "";
        int rc = sat_frame_read(f, MAX_BYTES, &data, &flen, err, sizeof err);
        if (rc != 1) fprintf(stderr, "frame %d: %s\n", i, err);
        assert_int_equal(rc, 1);
        assert_int_equal(flen, frames[i].len);
        assert_memory_equal(data, frames[i].data, flen);
        free(data);
    }
    unsigned char *data;
    size_t flen;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_frame_read(f, MAX_BYTES, &data, &flen, err, sizeof err), 0);
    assert_null(data);
    fclose(f);
    free(buf);
}

static fx_blob jpeg_of(int progressive, int restart_rows)
{
    uint8_t *px = pattern(48, 40, 3);
    fx_jpeg_opts o = {.in_space = JCS_RGB, .progressive = progressive, .restart_rows = restart_rows};
    fx_blob b = fx_jpeg(px, 48, 40, &o);
    free(px);
    return b;
}

static fx_blob png_of(void)
{
    uint8_t *px = pattern(30, 20, 3);
    fx_png_opts o = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8};
    fx_blob b = fx_png(px, 30 * 3, 30, 20, &o);
    free(px);
    return b;
}

enum { NFRAMES = 10 };

static void make_frames(fx_blob *f)
{
    f[0] = jpeg_of(0, 0);
    f[1] = png_of();
    f[2] = netpbm_blob("P6\n30 20\n255\n", 30 * 20 * 3);
    f[3] = jpeg_of(1, 0);                                   /* progressive: many SOS */
    f[4] = jpeg_of(0, 1);                                   /* RSTn markers in the data */
    f[5] = netpbm_blob("P5 # a comment\n7 3 65535\n", 7 * 3 * 2);
    f[6] = netpbm_blob("P4\n9 2\n", 2 * 2);                 /* rows padded to bytes */
    f[7] = netpbm_blob("P7\nWIDTH 4\nHEIGHT 2\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
                       4 * 2 * 4);
    f[8] = text_blob("P3\n# plain\n2 1\n255\n1 2 3\n40 50 60");
    f[9] = text_blob("P1\n3 2\n010\n1 1 1");
}

static void free_frames(fx_blob *f, int n)
{
    for (int i = 0; i < n; i++) fx_blob_free(&f[i]);
}

static void test_every_format_back_to_back(void **state)
{
    (void)state;
    fx_blob f[NFRAMES];
    make_frames(f);
    frames_come_back(f, NFRAMES, NULL);
    frames_come_back(f, NFRAMES, "\n"); /* white space between frames is skipped */
    /* each frame alone, and a frame that is also the last of the stream */
    for (int i = 0; i < NFRAMES; i++) frames_come_back(&f[i], 1, NULL);
    free_frames(f, NFRAMES);
}

/* The split frames decode to the pixels that went in (JPEG and PNG frames
 * are the encoders' own; the decoder tests cover them). */
static void test_frames_decode(void **state)
{
    (void)state;
    fx_blob f[NFRAMES];
    make_frames(f);
    char *buf;
    size_t len;
    FILE *s = stream_of(f, NFRAMES, NULL, &buf, &len);
    int sizes[NFRAMES][2] = {{48, 40}, {30, 20}, {30, 20}, {48, 40}, {48, 40},
                             {7, 3},   {9, 2},   {4, 2},   {2, 1},   {3, 2}};
    for (int i = 0; i < NFRAMES; i++) {
        unsigned char *data;
        size_t flen;
        char err[SAT_ERR_MAX] = "";
        assert_int_equal(sat_frame_read(s, MAX_BYTES, &data, &flen, err, sizeof err), 1);
        sat_image img;
        int rc = sat_image_decode(data, flen, SAT_IMAGE_DEFAULT_MAX_PIXELS, &img, err, sizeof err);
        if (rc) fprintf(stderr, "frame %d: %s\n", i, err);
        assert_int_equal(rc, 0);
        assert_int_equal(img.width, sizes[i][0]);
        assert_int_equal(img.height, sizes[i][1]);
        sat_image_free(&img);
        free(data);
    }
    fclose(s);
    free(buf);
    free_frames(f, NFRAMES);
}

/* A stream cut anywhere inside its last frame: the frames before it come
 * back, the cut one is an error (never a short frame), nothing crashes. */
static void test_cut_anywhere(void **state)
{
    (void)state;
    fx_blob f[NFRAMES];
    make_frames(f);
    for (int last = 0; last < NFRAMES; last++) {
        fx_blob two[2] = {f[(last + 1) % NFRAMES], f[last]};
        char *buf;
        size_t len;
        FILE *whole = stream_of(two, 2, NULL, &buf, &len);
        fclose(whole);
        size_t first = two[0].len;
        /* the plain formats end with a number: a cut after its first digit
         * is a whole image with a smaller sample, so cut before it */
        size_t end = last >= 8 ? len - 1 : len;
        for (size_t cut = first + 1; cut < end; cut++) {
            FILE *s = fmemopen(buf, cut, "rb");
            unsigned char *data;
            size_t flen;
            char err[SAT_ERR_MAX] = "";
            assert_int_equal(sat_frame_read(s, MAX_BYTES, &data, &flen, err, sizeof err), 1);
            free(data);
            int rc = sat_frame_read(s, MAX_BYTES, &data, &flen, err, sizeof err);
            if (rc != -1) fprintf(stderr, "frame %d cut at %zu of %zu: rc %d\n", last, cut - first,
                                  len - first, rc);
            assert_int_equal(rc, -1);
            assert_null(data);
            assert_true(strlen(err) > 0);
            fclose(s);
        }
        free(buf);
    }
    free_frames(f, NFRAMES);
}

static void read_fails(const char *bytes, size_t n, size_t max, const char *needle)
{
    FILE *s = fmemopen((void *)bytes, n, "rb");
    unsigned char *data;
    size_t len;
    char err[SAT_ERR_MAX] = "";
    assert_int_equal(sat_frame_read(s, max, &data, &len, err, sizeof err), -1);
    if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
    assert_non_null(strstr(err, needle));
    fclose(s);
}

static void test_bad_streams(void **state)
{
    (void)state;
    read_fails("hello, world\n", 13, MAX_BYTES, "not a JPEG, PNG or netpbm image (it looks like text)");
    read_fails("\0\0\0\0", 4, MAX_BYTES, "it looks like zero bytes");
    read_fails("P6\n0 5\n255\n", 11, MAX_BYTES, "invalid netpbm header: 0x5");
    read_fails("P5\n4 4\n70000\n", 13, MAX_BYTES, "maxval 70000");
    read_fails("P6\nwide 5\n255\n", 14, MAX_BYTES, "no width");
    read_fails("P6\n3000 3000\n255\n", 17, 1000, "image of more than 1000 bytes");
    read_fails("P2\n2 2\n255\n1 2 3", 16, MAX_BYTES, "truncated netpbm image");
    read_fails("P1\n2 1\n02", 9, MAX_BYTES, "byte 0x32 in the raster");
    read_fails("\xff\xd8\x12", 3, MAX_BYTES, "where a marker should start");
    read_fails("\x89PNG\r\n\x1a\n\xff\xff\xff\xff", 12, MAX_BYTES, "chunk length");
    read_fails("\x89PNX\r\n\x1a\n", 8, MAX_BYTES, "signature");
    /* an endless comment line is refused, not buffered */
    size_t n = 20000;
    char *big = malloc(n);
    memset(big, 'x', n);
    memcpy(big, "P6\n#", 4);
    read_fails(big, n, MAX_BYTES, "netpbm header of over");
    free(big);
}

static void test_more(void **state)
{
    (void)state;
    FILE *s = fmemopen((void *)" \n\tP", 4, "rb");
    assert_int_equal(sat_frame_more(s), 1);
    assert_int_equal(getc(s), 'P');
    assert_int_equal(sat_frame_more(s), 0);
    fclose(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format_back_to_back),
        cmocka_unit_test(test_frames_decode),
        cmocka_unit_test(test_cut_anywhere),
        cmocka_unit_test(test_bad_streams),
        cmocka_unit_test(test_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
