/* test_image.c — JPEG, PNG and netpbm decoding and the resize to the network input.
 * Every variant is generated here with libjpeg/libpng (image_fixtures.h) and
 * the decoded pixels are compared with the ones that went in; damaged and
 * hostile files must fail with a one-line reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/image.h"
#include "image_fixtures.h"
#include "sat/util.h"

/* ---- helpers ---- */

static uint32_t rng_state = 12345;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

static void decode_ok(const fx_blob *b, sat_image *img)
{
    char err[SAT_ERR_MAX];
    int rc = sat_image_decode(b->data, b->len, SAT_IMAGE_DEFAULT_MAX_PIXELS, img, err, sizeof err);
    if (rc != 0) fprintf(stderr, "decode failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(img->rgb);
}

/* The decoder must refuse with a non-empty one-line reason containing
 * `needle` (if given).  The bytes are copied to a buffer of exactly len bytes
 * so that a read past the end shows up under ASan and valgrind. */
static void decode_fails(const unsigned char *data, size_t len, uint64_t max_pixels,
                         const char *needle)
{
    unsigned char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, data, len);
    sat_image img = {.width = -1};
    char err[SAT_ERR_MAX];
    memset(err, 'x', sizeof err);
    int rc = sat_image_decode(copy, len, max_pixels, &img, err, sizeof err);
    free(copy);
    if (rc == 0) {
        fprintf(stderr, "decoded %zu bytes as %dx%d, expected an error\n", len, img.width, img.height);
        sat_image_free(&img);
    }
    assert_int_equal(rc, -1);
    assert_null(img.rgb);
    assert_non_null(memchr(err, '\0', sizeof err));
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    if (getenv("SHOW_ERRORS")) fprintf(stderr, "%zu bytes: %s\n", len, err);
    if (needle && !strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
    if (needle) assert_non_null(strstr(err, needle));
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += abs((int)a[i] - (int)b[i]);
    return sum / (double)n;
}

/* A smooth RGB gradient, which JPEG reproduces closely. */
static uint8_t *gradient(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)((x + y) * 255 / (w + h - 2));
        }
    return px;
}

/* ---- JPEG ---- */

static void test_jpeg_baseline_and_progressive(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *px = gradient(w, h);
    for (int progressive = 0; progressive < 2; progressive++) {
        fx_jpeg_opts o = {.in_space = JCS_RGB, .progressive = progressive};
        fx_blob b = fx_jpeg(px, w, h, &o);
        /* SOF0 is baseline, SOF2 progressive */
        assert_true(fx_jpeg_marker(&b, progressive ? 0xc2 : 0xc0) != 0);
        sat_image img;
        decode_ok(&b, &img);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_true(mean_abs_diff(img.rgb, px, (size_t)w * h * 3) < 3);
        sat_image_free(&img);
        fx_blob_free(&b);
    }
    free(px);
}

static void test_jpeg_grayscale(void **state)
{
    (void)state;
    const int w = 40, h = 30; /* not a multiple of the 8x8 block */
    uint8_t *gray = malloc((size_t)w * h), *expect = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        gray[i] = (uint8_t)((i % w) * 3 + (i / w) * 4);
        memset(expect + 3 * i, gray[i], 3);
    }
    fx_jpeg_opts o = {.in_space = JCS_GRAYSCALE};
    fx_blob b = fx_jpeg(gray, w, h, &o);
    sat_image img;
    decode_ok(&b, &img);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    for (int i = 0; i < w * h; i++) {
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 1]);
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 2]);
    }
    assert_true(mean_abs_diff(img.rgb, expect, (size_t)w * h * 3) < 3);
    sat_image_free(&img);
    fx_blob_free(&b);
    free(gray);
    free(expect);
}

/* Photoshop stores CMYK inverted (255 = no ink) with an Adobe APP14 marker;
 * the visible colour is then R = C*K/255 on the stored values. */
static void test_jpeg_cmyk_and_ycck(void **state)
{
    (void)state;
    const int w = 48, h = 32;
    uint8_t *rgb = gradient(w, h);
    uint8_t *cmyk = malloc((size_t)w * h * 4), *expect = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        uint8_t k = (uint8_t)(255 - (i % w) * 2); /* stored inverted: some black ink */
        memcpy(cmyk + 4 * i, rgb + 3 * i, 3);
        cmyk[4 * i + 3] = k;
        for (int c = 0; c < 3; c++) expect[3 * i + c] = (uint8_t)((rgb[3 * i + c] * k + 127) / 255);
    }
    const J_COLOR_SPACE stored[2] = {JCS_CMYK, JCS_YCCK};
    for (int s = 0; s < 2; s++) {
        fx_jpeg_opts o = {.in_space = JCS_CMYK, .stored = stored[s]};
        fx_blob b = fx_jpeg(cmyk, w, h, &o);
        assert_true(fx_jpeg_marker(&b, 0xee) != 0); /* APP14 "Adobe" */
        sat_image img;
        decode_ok(&b, &img);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_true(mean_abs_diff(img.rgb, expect, (size_t)w * h * 3) < 3);
        sat_image_free(&img);
        fx_blob_free(&b);
    }
    free(rgb);
    free(cmyk);
    free(expect);
}

/* APP1 payload: "Exif\0\0", TIFF header, IFD0 of the given entries
 * ({tag, type, value}), next-IFD 0.  Returns its length. */
static size_t exif_payload(uint8_t *p, int little, uint32_t ifd_offset, unsigned count,
                           const unsigned (*entries)[3], int nentries)
{
    uint8_t *t = p + 6;
    memcpy(p, "Exif\0\0", 6);
    size_t n = 0;
#define PUT16(v) (little ? (t[n] = (uint8_t)(v), t[n + 1] = (uint8_t)((v) >> 8)) \
                         : (t[n] = (uint8_t)((v) >> 8), t[n + 1] = (uint8_t)(v)), n += 2)
#define PUT32(v) (little ? (PUT16((v) & 0xffff), PUT16((v) >> 16)) : (PUT16((v) >> 16), PUT16((v) & 0xffff)))
    t[n++] = little ? 'I' : 'M';
    t[n++] = little ? 'I' : 'M';
    PUT16(42u);
    PUT32(ifd_offset);
    PUT16(count);
    for (int i = 0; i < nentries; i++) {
        PUT16(entries[i][0]);
        PUT16(entries[i][1]);
        PUT32(1u);
        PUT16(entries[i][2]); /* a SHORT sits in the first half of the value field */
        PUT16(0u);
    }
    PUT32(0u);
#undef PUT16
#undef PUT32
    return 6 + n;
}

/* 64x32, quadrants red | green over blue | white. */
enum { RED, GREEN, BLUE, WHITE };
static const uint8_t quadrant_rgb[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

static uint8_t *quadrants(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(px + ((size_t)y * w + x) * 3, quadrant_rgb[(y >= h / 2) * 2 + (x >= w / 2)], 3);
    return px;
}

/* Colour of the displayed image's quadrants: top-left, top-right,
 * bottom-left, bottom-right (EXIF 2.3, tag 0x0112). */
static void check_quadrants(const sat_image *img, const int q[4])
{
    for (int i = 0; i < 4; i++) {
        int x = img->width / 4 + (i & 1) * img->width / 2, y = img->height / 4 + (i >> 1) * img->height / 2;
        const uint8_t *p = img->rgb + ((size_t)y * img->width + x) * 3;
        for (int c = 0; c < 3; c++) assert_in_range(p[c], quadrant_rgb[q[i]][c] > 127 ? 215 : 0,
                                                    quadrant_rgb[q[i]][c] > 127 ? 255 : 40);
    }
}

static void test_jpeg_exif_orientation(void **state)
{
    (void)state;
    static const int expect[9][4] = {
        {0},
        {RED, GREEN, BLUE, WHITE},  /* 1: as stored */
        {GREEN, RED, WHITE, BLUE},  /* 2: mirrored left-right */
        {WHITE, BLUE, GREEN, RED},  /* 3: rotated 180 */
        {BLUE, WHITE, RED, GREEN},  /* 4: mirrored top-bottom */
        {RED, BLUE, GREEN, WHITE},  /* 5: transposed */
        {BLUE, RED, WHITE, GREEN},  /* 6: turned 90 clockwise to display */
        {WHITE, GREEN, BLUE, RED},  /* 7: transversed */
        {GREEN, WHITE, RED, BLUE},  /* 8: turned 90 counter-clockwise */
    };
    const int w = 64, h = 32;
    uint8_t *px = quadrants(w, h);
    for (int little = 0; little < 2; little++)
        for (unsigned o = 1; o <= 8; o++) {
            /* XResolution (RATIONAL) first, so the orientation is found by walking */
            const unsigned entries[2][3] = {{0x011a, 5, 0}, {0x0112, 3, o}};
            uint8_t app1[64];
            fx_jpeg_opts opts = {.in_space = JCS_RGB, .app1 = app1};
            opts.app1_len = exif_payload(app1, little, 8, 2, entries, 2);
            fx_blob b = fx_jpeg(px, w, h, &opts);
            sat_image img;
            decode_ok(&b, &img);
            assert_int_equal(img.width, o >= 5 ? h : w);
            assert_int_equal(img.height, o >= 5 ? w : h);
            check_quadrants(&img, expect[o]);
            sat_image_free(&img);
            fx_blob_free(&b);
        }
    free(px);
}

/* A damaged EXIF block is ignored: the image decodes as stored. */
static void test_jpeg_exif_malformed(void **state)
{
    (void)state;
    const int w = 64, h = 32;
    static const int as_stored[4] = {RED, GREEN, BLUE, WHITE};
    uint8_t *px = quadrants(w, h);
    const unsigned rot6[1][3] = {{0x0112, 3, 6}}, as_long[1][3] = {{0x0112, 4, 6}},
                   nine[1][3] = {{0x0112, 3, 9}}, zero[1][3] = {{0x0112, 3, 0}},
                   other[1][3] = {{0x010f, 2, 0}};
    struct {
        uint32_t ifd;
        unsigned count;
        const unsigned (*entries)[3];
        size_t cut; /* bytes removed from the end */
        int byte_order_ok;
    } cases[] = {
        {0xfffffff0u, 1, rot6, 0, 1}, /* IFD past the end */
        {8, 1, rot6, 12, 1},          /* entry cut off */
        {8, 1, rot6, 24, 1},          /* inside the TIFF header */
        {8, 60000, other, 0, 1},      /* count larger than what is there */
        {8, 1, as_long, 0, 1},        /* wrong type */
        {8, 1, nine, 0, 1},           /* out of range */
        {8, 1, zero, 0, 1},
        {8, 1, rot6, 0, 0},           /* "IM": no byte order */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t app1[64];
        size_t n = exif_payload(app1, 1, cases[i].ifd, cases[i].count, cases[i].entries, 1);
        if (!cases[i].byte_order_ok) app1[7] = 'M';
        fx_jpeg_opts opts = {.in_space = JCS_RGB, .app1 = app1, .app1_len = n - cases[i].cut};
        fx_blob b = fx_jpeg(px, w, h, &opts);
        sat_image img;
        decode_ok(&b, &img);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        check_quadrants(&img, as_stored);
        sat_image_free(&img);
        fx_blob_free(&b);
    }
    free(px);
}

/* ---- PNG ---- */

static uint8_t to8(unsigned v, int depth)
{
    if (depth == 16) return (uint8_t)((v * 255u + 32767u) / 65535u); /* rounded */
    return (uint8_t)(v * 255u / ((1u << depth) - 1));
}

static uint8_t over_white(unsigned x, unsigned a)
{
    return (uint8_t)((x * a + 255u * (255u - a) + 127u) / 255u);
}

/* Pack w*h*spp sample values into PNG rows (MSB first below 8 bits,
 * big-endian at 16). */
static uint8_t *pack_rows(const unsigned *s, int w, int h, int spp, int depth, size_t *rowbytes)
{
    size_t bits = (size_t)w * spp * depth;
    *rowbytes = (bits + 7) / 8;
    uint8_t *rows = calloc((size_t)h, *rowbytes);
    for (int y = 0; y < h; y++) {
        uint8_t *r = rows + (size_t)y * *rowbytes;
        for (size_t i = 0; i < (size_t)w * spp; i++) {
            unsigned v = *s++;
            if (depth == 16) r[2 * i] = (uint8_t)(v >> 8), r[2 * i + 1] = (uint8_t)v;
            else if (depth == 8) r[i] = (uint8_t)v;
            else r[i * depth / 8] |= (uint8_t)(v << (8 - depth - (i * depth) % 8));
        }
    }
    return rows;
}

/* Encode samples both plain and Adam7-interlaced; both must decode to
 * exactly `expect`. */
static void check_png(fx_png_opts o, const unsigned *samples, int w, int h, int spp,
                      const uint8_t *expect)
{
    size_t rowbytes;
    uint8_t *rows = pack_rows(samples, w, h, spp, o.bit_depth, &rowbytes);
    for (int interlace = 0; interlace < 2; interlace++) {
        o.interlace = interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE;
        fx_blob b = fx_png(rows, rowbytes, w, h, &o);
        sat_image img;
        decode_ok(&b, &img);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_memory_equal(img.rgb, expect, (size_t)w * h * 3);
        sat_image_free(&img);
        fx_blob_free(&b);
    }
    free(rows);
}

/* Random samples for a PNG of `spp` samples per pixel at `depth` bits; the
 * expected RGB follows from `gray`/`alpha` (which samples mean what). */
static void check_random_png(int color_type, int depth, int w, int h)
{
    int gray = !(color_type & PNG_COLOR_MASK_COLOR), alpha = color_type & PNG_COLOR_MASK_ALPHA;
    int spp = (gray ? 1 : 3) + (alpha ? 1 : 0);
    unsigned *s = malloc((size_t)w * h * spp * sizeof *s);
    uint8_t *expect = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        unsigned *p = s + (size_t)i * spp;
        for (int c = 0; c < spp; c++) p[c] = rnd(1u << depth);
        if (alpha && i % 5 == 0) p[spp - 1] = 0;                  /* fully transparent */
        if (alpha && i % 5 == 1) p[spp - 1] = (1u << depth) - 1; /* opaque */
        unsigned a = alpha ? to8(p[spp - 1], depth) : 255;
        for (int c = 0; c < 3; c++) expect[3 * i + c] = over_white(to8(p[gray ? 0 : c], depth), a);
    }
    fx_png_opts o = {.color_type = color_type, .bit_depth = depth};
    check_png(o, s, w, h, spp, expect);
    free(s);
    free(expect);
}

static void test_png_rgb_rgba(void **state)
{
    (void)state;
    check_random_png(PNG_COLOR_TYPE_RGB, 8, 31, 17);
    check_random_png(PNG_COLOR_TYPE_RGB, 16, 13, 9);
    check_random_png(PNG_COLOR_TYPE_RGB_ALPHA, 8, 31, 17);
    check_random_png(PNG_COLOR_TYPE_RGB_ALPHA, 16, 13, 9);
}

static void test_png_gray(void **state)
{
    (void)state;
    const int depths[] = {1, 2, 4, 8, 16};
    for (int i = 0; i < 5; i++) check_random_png(PNG_COLOR_TYPE_GRAY, depths[i], 13, 7);
    check_random_png(PNG_COLOR_TYPE_GRAY_ALPHA, 8, 21, 11);
    check_random_png(PNG_COLOR_TYPE_GRAY_ALPHA, 16, 21, 11);
}

static void test_png_palette(void **state)
{
    (void)state;
    const int w = 23, h = 19;
    png_color pal[256];
    uint8_t trns[256];
    for (int i = 0; i < 256; i++) {
        pal[i] = (png_color){(uint8_t)rnd(256), (uint8_t)rnd(256), (uint8_t)rnd(256)};
        trns[i] = (uint8_t)rnd(256);
    }
    trns[0] = 0, trns[1] = 255;
    /* depth, palette entries, entries with an alpha (tRNS) */
    const int cases[][3] = {{8, 200, 50}, {4, 16, 0}, {2, 4, 3}, {1, 2, 0}};
    unsigned *s = malloc((size_t)w * h * sizeof *s);
    uint8_t *expect = malloc((size_t)w * h * 3);
    for (int c = 0; c < 4; c++) {
        int depth = cases[c][0], n = cases[c][1], ntrns = cases[c][2];
        for (int i = 0; i < w * h; i++) {
            s[i] = rnd((unsigned)n);
            unsigned a = (int)s[i] < ntrns ? trns[s[i]] : 255;
            expect[3 * i] = over_white(pal[s[i]].red, a);
            expect[3 * i + 1] = over_white(pal[s[i]].green, a);
            expect[3 * i + 2] = over_white(pal[s[i]].blue, a);
        }
        fx_png_opts o = {.color_type = PNG_COLOR_TYPE_PALETTE, .bit_depth = depth, .palette = pal,
                         .npalette = n, .trns = ntrns ? trns : NULL, .ntrns = ntrns};
        check_png(o, s, w, h, 1, expect);
    }
    free(s);
    free(expect);
}

/* tRNS on RGB: pixels of the key colour are transparent, so white. */
static void test_png_color_key(void **state)
{
    (void)state;
    const int w = 9, h = 8;
    png_color_16 key = {.red = 10, .green = 20, .blue = 30};
    unsigned s[9 * 8 * 3];
    uint8_t expect[9 * 8 * 3];
    for (int i = 0; i < w * h; i++) {
        int is_key = i % 3 == 0;
        for (int c = 0; c < 3; c++) {
            s[3 * i + c] = is_key ? (c + 1) * 10u : rnd(256);
            expect[3 * i + c] = is_key ? 255 : (uint8_t)s[3 * i + c];
        }
        if (!is_key && s[3 * i] == 10) s[3 * i] = expect[3 * i] = 11; /* not the key by chance */
    }
    fx_png_opts o = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8, .trns_color = &key};
    check_png(o, s, w, h, 3, expect);
}

static void test_one_pixel(void **state)
{
    (void)state;
    const uint8_t px[3] = {200, 100, 50};
    fx_jpeg_opts jo = {.in_space = JCS_RGB};
    fx_blob j = fx_jpeg(px, 1, 1, &jo);
    sat_image img;
    decode_ok(&j, &img);
    assert_int_equal(img.width, 1);
    assert_int_equal(img.height, 1);
    for (int c = 0; c < 3; c++) assert_in_range(img.rgb[c], px[c] - 4, px[c] + 4);
    sat_image_free(&img);
    fx_blob_free(&j);

    fx_png_opts po = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8};
    fx_blob p = fx_png(px, 3, 1, 1, &po);
    decode_ok(&p, &img);
    assert_int_equal(img.width, 1);
    assert_int_equal(img.height, 1);
    assert_memory_equal(img.rgb, px, 3);
    sat_image_free(&img);
    fx_blob_free(&p);
}

/* ---- netpbm (libnetpbm) ---- */

/* Decode header + raster bytes; the pixels must be `want` (w x h RGB). */
static void netpbm_is(const char *header, const unsigned char *raster, size_t n, int w, int h,
                      const uint8_t *want)
{
    size_t hl = strlen(header);
    fx_blob b = {malloc(hl + n), hl + n};
    memcpy(b.data, header, hl);
    memcpy(b.data + hl, raster, n);
    sat_image img;
    decode_ok(&b, &img);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.rgb, want, (size_t)w * h * 3);
    sat_image_free(&img);
    fx_blob_free(&b);
}

static void test_netpbm_formats(void **state)
{
    (void)state;
    const unsigned char rgb[] = {10, 20, 30, 200, 100, 0};
    netpbm_is("P6\n2 1\n255\n", rgb, 6, 2, 1, rgb);
    netpbm_is("P3\n# a comment\n2 1\n255\n", (const unsigned char *)"10 20 30\n200 100 0", 19, 2, 1, rgb);
    /* 16 bits a sample, scaled with rounding: 0x8080 is 128 */
    const unsigned char wide[] = {0x80, 0x80, 0xff, 0xff, 0, 0};
    const uint8_t gray3[] = {128, 128, 128, 255, 255, 255, 0, 0, 0};
    netpbm_is("P5\n3 1\n65535\n", wide, 6, 3, 1, gray3);
    const uint8_t fifteen[] = {0, 0, 0, 119, 119, 119, 255, 255, 255};
    netpbm_is("P2\n3 1\n15\n", (const unsigned char *)"0 7 15", 6, 3, 1, fifteen);
    /* PBM: 1 is black */
    const uint8_t bw[] = {255, 255, 255, 0, 0, 0};
    netpbm_is("P1\n2 1\n", (const unsigned char *)"01", 2, 2, 1, bw);
    const unsigned char bits[] = {0x40};
    netpbm_is("P4\n2 1\n", bits, 1, 2, 1, bw);
    /* PAM: alpha over white, as for PNG; non-visual tuples by their planes */
    const unsigned char rgba[] = {255, 0, 0, 128, 0, 0, 255, 255};
    const uint8_t over_white[] = {255, 127, 127, 0, 0, 255};
    netpbm_is("P7\nWIDTH 2\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n", rgba, 8, 2,
              1, over_white);
    const unsigned char ga[] = {0, 0, 100, 255};
    const uint8_t ga_rgb[] = {255, 255, 255, 100, 100, 100};
    netpbm_is("P7\nWIDTH 2\nHEIGHT 1\nDEPTH 2\nMAXVAL 255\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n", ga,
              4, 2, 1, ga_rgb);
    netpbm_is("P7\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE SOMETHING\nENDHDR\n", rgb, 6,
              2, 1, rgb);
}

static void test_netpbm_bad(void **state)
{
    (void)state;
    const char truncated[] = "P6\n2 2\n255\n\x01\x02\x03\x04\x05";
    decode_fails((const unsigned char *)truncated, sizeof truncated - 1,
                 SAT_IMAGE_DEFAULT_MAX_PIXELS, "invalid netpbm image");
    const char big[] = "P6\n20000 20000\n255\n";
    decode_fails((const unsigned char *)big, sizeof big - 1, 1000, "over the limit of 1000 pixels");
    const char zero[] = "P5\n0 3\n255\n";
    decode_fails((const unsigned char *)zero, sizeof zero - 1, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "invalid netpbm image");
    const char deep[] = "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 40\nMAXVAL 255\nENDHDR\n";
    decode_fails((const unsigned char *)deep, sizeof deep - 1, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "depth 40");
    const char maxval[] = "P2\n1 1\n255\n300";
    decode_fails((const unsigned char *)maxval, sizeof maxval - 1, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "invalid netpbm image");
}

/* ---- bad input ---- */

static void test_not_an_image(void **state)
{
    (void)state;
    const unsigned char gif[] = "GIF89a\x01\x00\x01\x00";
    const unsigned char text[] = "just some text, not a picture\n";
    const unsigned char two[] = {0xff, 0xd8};
    decode_fails(text, 0, SAT_IMAGE_DEFAULT_MAX_PIXELS, "empty file");
    /* what it is instead, from the first bytes (issue 14) */
    decode_fails(text, sizeof text - 1, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "not a JPEG, PNG or netpbm image (it looks like text)");
    decode_fails(gif, sizeof gif - 1, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "not a JPEG, PNG or netpbm image (it looks like a GIF image)");
    decode_fails(two, sizeof two, SAT_IMAGE_DEFAULT_MAX_PIXELS, "not a JPEG, PNG or netpbm image");
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_image_check_head((const unsigned char *)"\x00\x00\x00", 3, err, sizeof err), -1);
    assert_string_equal(err, "not a JPEG, PNG or netpbm image (it looks like zero bytes)");
    assert_int_equal(sat_image_check_head(two, sizeof two, err, sizeof err), -1);
    assert_int_equal(sat_image_check_head((const unsigned char *)"\xff\xd8\xff", 3, err, sizeof err), 0);
}

static void test_truncated_jpeg(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *px = gradient(w, h);
    for (int progressive = 0; progressive < 2; progressive++) {
        fx_jpeg_opts o = {.in_space = JCS_RGB, .progressive = progressive};
        fx_blob b = fx_jpeg(px, w, h, &o);
        size_t cuts[] = {3, 4, 20, 100, b.len / 3, b.len / 2, b.len - 10, b.len - 2, b.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
            decode_fails(b.data, cuts[i], SAT_IMAGE_DEFAULT_MAX_PIXELS, "JPEG");
        /* a cut inside the pixel data is reported as such */
        decode_fails(b.data, b.len / 2, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                     "truncated JPEG (premature end of data)");
        fx_blob_free(&b);
    }
    free(px);
}

static fx_blob random_rgb_png(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)rnd(256);
    fx_png_opts o = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8};
    fx_blob b = fx_png(px, (size_t)w * 3, w, h, &o);
    free(px);
    return b;
}

static void test_truncated_png(void **state)
{
    (void)state;
    fx_blob b = random_rgb_png(40, 30);
    size_t cuts[] = {8, 9, 20, 33, 40, b.len / 2, b.len - 12, b.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        decode_fails(b.data, cuts[i], SAT_IMAGE_DEFAULT_MAX_PIXELS, "truncated PNG");
    fx_blob_free(&b);
}

static void test_png_bad_crc(void **state)
{
    (void)state;
    fx_blob b = random_rgb_png(40, 30);
    size_t ihdr = fx_png_chunk(&b, "IHDR"), idat = fx_png_chunk(&b, "IDAT");
    assert_int_equal(ihdr, 8);
    assert_true(idat > 0);
    size_t idat_len = fx_be32(b.data + idat);
    struct { size_t at; const char *says; } flips[] = {
        {ihdr + 8 + 13 + 1, "IHDR: CRC error"},
        {idat + 8 + idat_len + 3, "IDAT: CRC error"},
        {idat + 8 + idat_len / 2, "IDAT"}, /* zlib's own check may see it first */
    };
    for (size_t i = 0; i < 3; i++) {
        b.data[flips[i].at] ^= 0x10;
        decode_fails(b.data, b.len, SAT_IMAGE_DEFAULT_MAX_PIXELS, flips[i].says);
        b.data[flips[i].at] ^= 0x10;
    }
    sat_image img;
    decode_ok(&b, &img); /* restored */
    sat_image_free(&img);
    fx_blob_free(&b);
}

/* An IDAT whose zlib stream ends early, with a correct CRC: missing rows are
 * an error, not black. */
static void test_png_short_image_data(void **state)
{
    (void)state;
    fx_blob b = random_rgb_png(40, 30);
    size_t idat = fx_png_chunk(&b, "IDAT"), n = fx_be32(b.data + idat);
    uint8_t *forged = malloc(b.len);
    memcpy(forged, b.data, idat);
    size_t at = idat + fx_put_chunk(forged + idat, "IDAT", b.data + idat + 8, (uint32_t)(n / 2));
    at += fx_put_chunk(forged + at, "IEND", NULL, 0);
    decode_fails(forged, at, SAT_IMAGE_DEFAULT_MAX_PIXELS, "PNG");
    free(forged);
    fx_blob_free(&b);
}

/* A 100000x100000 header is refused from IHDR, before any allocation (which
 * would be 30 GB): the answer comes at once. */
static void test_png_huge_header(void **state)
{
    (void)state;
    uint8_t png[128], ihdr[13] = {0};
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    fx_put_be32(ihdr, 100000);
    fx_put_be32(ihdr + 4, 100000);
    ihdr[8] = 8, ihdr[9] = 2; /* 8-bit RGB */
    size_t n = 8 + fx_put_chunk(png + 8, "IHDR", ihdr, 13);
    const uint8_t zlib[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    n += fx_put_chunk(png + n, "IDAT", zlib, sizeof zlib);
    n += fx_put_chunk(png + n, "IEND", NULL, 0);
    double t = sat_now();
    decode_fails(png, n, SAT_IMAGE_DEFAULT_MAX_PIXELS,
                 "image is 100000x100000, over the limit of 100000000 pixels");
    assert_true(sat_now() - t < 0.5);

    /* the limit is inclusive: 40x30 = 1200 pixels */
    fx_blob b = random_rgb_png(40, 30);
    decode_fails(b.data, b.len, 1199, "image is 40x30, over the limit of 1199 pixels");
    sat_image img;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_image_decode(b.data, b.len, 1200, &img, err, sizeof err), 0);
    sat_image_free(&img);
    decode_fails(b.data, b.len, 39, "image is 40x30, over the limit of 39 pixels");
    fx_blob_free(&b);
}

static void test_jpeg_huge_sof(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *px = gradient(w, h);
    fx_jpeg_opts o = {.in_space = JCS_RGB};
    fx_blob b = fx_jpeg(px, w, h, &o);
    size_t sof = fx_jpeg_marker(&b, 0xc0);
    assert_true(sof > 0);
    /* SOF0: FF C0, length 2, precision 1, height 2, width 2 */
    assert_int_equal(b.data[sof + 5] << 8 | b.data[sof + 6], h);
    decode_fails(b.data, b.len, (uint64_t)w * h - 1, "image is 64x48, over the limit of 3071 pixels");
    sat_image img;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_image_decode(b.data, b.len, (uint64_t)w * h, &img, err, sizeof err), 0);
    sat_image_free(&img);

    b.data[sof + 5] = 60000 >> 8, b.data[sof + 6] = 60000 & 0xff;
    b.data[sof + 7] = 60000 >> 8, b.data[sof + 8] = 60000 & 0xff;
    double t = sat_now();
    decode_fails(b.data, b.len, 1000000, "image is 60000x60000, over the limit of 1000000 pixels");
    assert_true(sat_now() - t < 0.5);
    fx_blob_free(&b);
    free(px);
}

/* ---- the real photographs in ../shared/images ---- */

static void test_shared_photos(void **state)
{
    (void)state;
    static const struct { const char *name; int w, h; } known[] = {
        {"bird.png", 512, 343},   {"cat.png", 512, 341},     {"dog.jpg", 768, 576},
        {"eagle.jpg", 773, 512},  {"giraffe.jpg", 500, 500}, {"grace_hopper.png", 512, 600},
        {"horses.jpg", 773, 512}, {"hot_dog.jpg", 512, 384}, {"parrot.jpg", 512, 929},
        {"person.jpg", 640, 424},
    };
    const size_t nknown = sizeof known / sizeof known[0];
    const char *shared = getenv("SAT_SHARED") ? getenv("SAT_SHARED") : "../shared";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/images", shared);
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT) {
        print_message("%s not found (set SAT_SHARED): skipped\n", dir);
        skip();
    }
    if (!d) fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
    assert_non_null(d);
    size_t decoded = 0, matched = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[8192], err[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unsigned char *data;
        size_t len;
        assert_int_equal(sat_read_file(path, 64u << 20, &data, &len, err, sizeof err), 0);
        sat_image img;
        int rc = sat_image_decode(data, len, SAT_IMAGE_DEFAULT_MAX_PIXELS, &img, err, sizeof err);
        if (rc) fprintf(stderr, "%s: %s\n", path, err);
        assert_int_equal(rc, 0);
        for (size_t i = 0; i < nknown; i++)
            if (strcmp(e->d_name, known[i].name) == 0) {
                assert_int_equal(img.width, known[i].w);
                assert_int_equal(img.height, known[i].h);
                matched++;
            }
        /* a photo, not a flat fill: the channel values spread */
        double sum = 0, sum2 = 0, n = (double)img.width * img.height * 3;
        for (size_t i = 0; i < (size_t)n; i++) sum += img.rgb[i], sum2 += (double)img.rgb[i] * img.rgb[i];
        assert_true(sum2 / n - (sum / n) * (sum / n) > 100);
        sat_image_free(&img);
        free(data);
        decoded++;
    }
    closedir(d);
    assert_int_equal(matched, nknown);
    assert_true(decoded >= nknown);
}

/* ---- resizing ---- */

static sat_image random_image(int w, int h)
{
    sat_image img = {w, h, malloc((size_t)w * h * 3)};
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.rgb[i] = (uint8_t)rnd(256);
    return img;
}

static float *resize(const sat_image *img, int w, int h)
{
    float *out = malloc((size_t)w * h * 3 * sizeof *out);
    sat_image_to_input(img, w, h, out);
    return out;
}

static void test_resize_identity(void **state)
{
    (void)state;
    sat_image img = random_image(37, 23);
    float *out = resize(&img, 37, 23);
    for (size_t i = 0; i < 37 * 23 * 3; i++) assert_true(out[i] == (img.rgb[i] - 128.0f) / 128.0f);
    free(out);
    sat_image_free(&img);
}

static void test_resize_constant(void **state)
{
    (void)state;
    const int sizes[][2] = {{13, 29}, {97, 81}, {50, 1}, {1, 40}, {224, 224}, {3, 300}};
    sat_image img = {50, 40, malloc(50 * 40 * 3)};
    for (int i = 0; i < 50 * 40; i++) img.rgb[3 * i] = 200, img.rgb[3 * i + 1] = 100, img.rgb[3 * i + 2] = 7;
    for (int s = 0; s < 6; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        float *out = resize(&img, w, h);
        for (int i = 0; i < w * h; i++) {
            assert_float_equal(out[3 * i], (200 - 128) / 128.0, 1e-5);
            assert_float_equal(out[3 * i + 1], (100 - 128) / 128.0, 1e-5);
            assert_float_equal(out[3 * i + 2], (7 - 128) / 128.0, 1e-5);
        }
        free(out);
    }
    sat_image_free(&img);
}

/* Halving a 1-pixel checkerboard gives gray: the filter widens with the
 * scale.  Sampling without that would give pure black and white. */
static void test_resize_antialias(void **state)
{
    (void)state;
    sat_image img = {64, 64, malloc(64 * 64 * 3)};
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) memset(img.rgb + (y * 64 + x) * 3, (x + y) % 2 ? 255 : 0, 3);
    float *out = resize(&img, 32, 32);
    const float gray = (127.5f - 128) / 128;
    double sum = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++) {
                float v = out[(y * 32 + x) * 3 + c];
                sum += v;
                if (x > 0 && x < 31 && y > 0 && y < 31) assert_float_equal(v, gray, 1e-4);
            }
    assert_float_equal(sum / (32 * 32 * 3), gray, 0.02); /* the edges are lopsided, a little */
    free(out);
    sat_image_free(&img);
}

static void test_resize_upscale_range(void **state)
{
    (void)state;
    const int sizes[][2] = {{50, 40}, {8, 6}, {7, 100}};
    sat_image img = random_image(7, 5);
    float lo[3] = {1, 1, 1}, hi[3] = {-1, -1, -1};
    for (int i = 0; i < 7 * 5 * 3; i++) {
        float v = (img.rgb[i] - 128.0f) / 128.0f;
        lo[i % 3] = fminf(lo[i % 3], v), hi[i % 3] = fmaxf(hi[i % 3], v);
    }
    for (int s = 0; s < 3; s++) {
        float *out = resize(&img, sizes[s][0], sizes[s][1]);
        for (int i = 0; i < sizes[s][0] * sizes[s][1] * 3; i++)
            assert_true(out[i] >= lo[i % 3] - 1e-6f && out[i] <= hi[i % 3] + 1e-6f);
        free(out);
    }
    sat_image_free(&img);
}

/* Values worked out by hand with PIL's convention (centers at (i + 0.5) *
 * scale - 0.5, triangle of radius max(scale, 1), weights normalized). */
static void test_resize_known_values(void **state)
{
    (void)state;
    const uint8_t four[4] = {0, 70, 140, 210}, two[2] = {0, 100};
    const float halved[2] = {50, 160}, doubled[4] = {0, 25, 75, 100};
    for (int vertical = 0; vertical < 2; vertical++) {
        sat_image a = {vertical ? 1 : 4, vertical ? 4 : 1, malloc(12)};
        sat_image b = {vertical ? 1 : 2, vertical ? 2 : 1, malloc(6)};
        for (int i = 0; i < 12; i++) a.rgb[i] = four[i / 3];
        for (int i = 0; i < 6; i++) b.rgb[i] = two[i / 3];
        float *ha = resize(&a, vertical ? 1 : 2, vertical ? 2 : 1);
        float *db = resize(&b, vertical ? 1 : 4, vertical ? 4 : 1);
        for (int i = 0; i < 6; i++) assert_float_equal(ha[i] * 128 + 128, halved[i / 3], 1e-3);
        for (int i = 0; i < 12; i++) assert_float_equal(db[i] * 128 + 128, doubled[i / 3], 1e-3);
        free(ha);
        free(db);
        sat_image_free(&a);
        sat_image_free(&b);
    }
}

/* Normalized triangle weights of every source pixel for output i, over the
 * whole axis (no windows), in double. */
static void reference_weights(int in, int out, int i, double *w)
{
    double scale = (double)in / out, support = scale > 1 ? scale : 1, center = (i + 0.5) * scale;
    double total = 0;
    for (int j = 0; j < in; j++) {
        double d = fabs((j + 0.5 - center) / support);
        w[j] = d < 1 ? 1 - d : 0;
        total += w[j];
    }
    for (int j = 0; j < in; j++) w[j] /= total;
}

/* The separable, windowed, ring-buffered resizer equals the plain 2-D sum,
 * for shrinking and growing on either axis (both pass orders). */
static void test_resize_matches_reference(void **state)
{
    (void)state;
    const int cases[][4] = {{37, 23, 16, 9}, {16, 9, 37, 23}, {30, 5, 7, 20}, {5, 30, 20, 7},
                            {1, 1, 3, 2},    {3, 1, 1, 4},    {13, 13, 13, 13}, {100, 80, 9, 11},
                            {41, 3, 224, 224}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int w = cases[t][0], h = cases[t][1], ow = cases[t][2], oh = cases[t][3];
        sat_image img = random_image(w, h);
        float *out = resize(&img, ow, oh);
        double *wx = malloc(sizeof(double) * (size_t)w), *wy = malloc(sizeof(double) * (size_t)h);
        for (int oy = 0; oy < oh; oy++) {
            reference_weights(h, oh, oy, wy);
            for (int ox = 0; ox < ow; ox++) {
                reference_weights(w, ow, ox, wx);
                for (int c = 0; c < 3; c++) {
                    double v = 0;
                    for (int y = 0; y < h; y++)
                        for (int x = 0; x < w; x++) v += wy[y] * wx[x] * img.rgb[((size_t)y * w + x) * 3 + c];
                    assert_float_equal(out[((size_t)oy * ow + ox) * 3 + c], (v - 128) / 128, 1e-5);
                }
            }
        }
        free(wx);
        free(wy);
        free(out);
        sat_image_free(&img);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_baseline_and_progressive),
        cmocka_unit_test(test_jpeg_grayscale),
        cmocka_unit_test(test_jpeg_cmyk_and_ycck),
        cmocka_unit_test(test_jpeg_exif_orientation),
        cmocka_unit_test(test_jpeg_exif_malformed),
        cmocka_unit_test(test_png_rgb_rgba),
        cmocka_unit_test(test_png_gray),
        cmocka_unit_test(test_png_palette),
        cmocka_unit_test(test_png_color_key),
        cmocka_unit_test(test_one_pixel),
        cmocka_unit_test(test_netpbm_formats),
        cmocka_unit_test(test_netpbm_bad),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_truncated_png),
        cmocka_unit_test(test_png_bad_crc),
        cmocka_unit_test(test_png_short_image_data),
        cmocka_unit_test(test_png_huge_header),
        cmocka_unit_test(test_jpeg_huge_sof),
        cmocka_unit_test(test_shared_photos),
        cmocka_unit_test(test_resize_identity),
        cmocka_unit_test(test_resize_constant),
        cmocka_unit_test(test_resize_antialias),
        cmocka_unit_test(test_resize_upscale_range),
        cmocka_unit_test(test_resize_known_values),
        cmocka_unit_test(test_resize_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
