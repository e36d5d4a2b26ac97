/* test_heatmap.c — sat-heatmap's figures: the layout follows the options, the
 * bright spot of a panel is where α is largest, a uniform α stays uniform,
 * equal input gives equal PNG bytes; caption records with a missing or
 * malformed α are refused with the record and id named; the words' font. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/font.h"
#include "sat/heatmap.h"
#include "sat/image.h"
#include "sat/stream.h"
#include "sat/util.h"

/* ---- helpers ---- */

static sat_font *open_font(void)
{
    char err[SAT_ERR_MAX];
    sat_font *f = sat_font_open(sat_font_path(NULL), err, sizeof err);
    if (!f) fprintf(stderr, "%s\n", err);
    assert_non_null(f);
    return f;
}

static sat_image gray_image(int w, int h, uint8_t value)
{
    sat_image img = {w, h, malloc((size_t)w * h * 3)};
    memset(img.rgb, value, (size_t)w * h * 3);
    return img;
}

/* A caption of n words over an ah x aw grid; word t's α is one-hot at hot[t]
 * (NULL: uniform). */
static sat_caption_record make_caption(int n, int ah, int aw, const int *hot)
{
    sat_caption_record c = {.id = strdup("test.jpg"), .nwords = (uint32_t)n,
                             .alpha_h = (uint32_t)ah, .alpha_w = (uint32_t)aw};
    c.words = calloc((size_t)n, sizeof *c.words);
    c.alpha = calloc((size_t)n * ah * aw, sizeof *c.alpha);
    for (int t = 0; t < n; t++) {
        c.words[t] = strdup(t % 2 ? "dog" : "a");
        for (int i = 0; i < ah * aw; i++)
            c.alpha[(size_t)t * ah * aw + i] = hot ? (i == hot[t] ? 1.0f : 0.0f) : 1.0f / (ah * aw);
    }
    return c;
}

/* The grid cell of a size x size map whose mean is largest. */
static int brightest_cell(const float *map, int size, int ah, int aw)
{
    int best = -1;
    double best_mean = -1;
    for (int cy = 0; cy < ah; cy++)
        for (int cx = 0; cx < aw; cx++) {
            double sum = 0;
            int n = 0;
            for (int y = cy * size / ah; y < (cy + 1) * size / ah; y++)
                for (int x = cx * size / aw; x < (cx + 1) * size / aw; x++, n++)
                    sum += map[(size_t)y * size + x];
            if (sum / n > best_mean) best_mean = sum / n, best = cy * aw + cx;
        }
    return best;
}

/* Luminance of panel i of a rendered figure, as a size x size map. */
static float *panel_luma(const sat_image *fig, const sat_heatmap_layout *l, int i)
{
    int px, py;
    sat_heatmap_panel_origin(l, i, &px, &py);
    float *luma = malloc((size_t)l->size * l->size * sizeof *luma);
    for (int y = 0; y < l->size; y++)
        for (int x = 0; x < l->size; x++) {
            const uint8_t *p = fig->rgb + ((size_t)(py + y) * fig->width + px + x) * 3;
            luma[(size_t)y * l->size + x] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        }
    return luma;
}

/* A record parsed from msgpack bytes, as sat-heatmap's reader gives it. */
typedef struct {
    FILE *f;
    sat_reader *r;
    sat_record rec;
} parsed;

static void parse_bytes(parsed *p, const void *bytes, size_t len)
{
    p->f = fmemopen((void *)bytes, len, "rb");
    p->r = sat_reader_open(p->f, "test", 0);
    assert_int_equal(sat_reader_next(p->r, &p->rec), SAT_READ_OK);
}

static void parsed_close(parsed *p)
{
    sat_reader_close(p->r);
    fclose(p->f);
}

/* A caption record of the given words over a 2x3 grid with `alpha_bytes`
 * bytes of α (a valid α has words x 6 x 4), or locations when nloc > 0. */
static void pack_caption(sat_writer *w, int nwords, size_t alpha_bytes, float fill,
                         const uint64_t *loc, int nloc)
{
    sat_writer_begin(w, "caption");
    sat_field_str(w, "id", "photos/dog.jpg");
    sat_field(w, "words");
    msgpack_pack_array(&w->pk, (size_t)nwords);
    for (int i = 0; i < nwords; i++) sat_pack_str(&w->pk, "word");
    sat_field_uint(w, "alpha_h", 2);
    sat_field_uint(w, "alpha_w", 3);
    if (alpha_bytes) {
        float *a = malloc(alpha_bytes);
        for (size_t i = 0; i < alpha_bytes / 4; i++) a[i] = fill;
        sat_field_bin(w, "alpha", a, alpha_bytes);
        free(a);
    }
    if (nloc) {
        sat_field(w, "locations");
        msgpack_pack_array(&w->pk, (size_t)nloc);
        for (int i = 0; i < nloc; i++) msgpack_pack_uint64(&w->pk, loc[i]);
    }
    sat_writer_seal(w);
}

/* Parse the packed caption as sat-heatmap does; returns the parser's status, err filled. */
static int parse_packed(sat_writer *w, sat_caption_record *c, char *err, size_t errlen)
{
    parsed p;
    parse_bytes(&p, w->buf.data, w->buf.size);
    int rc = sat_caption_record_parse(&p.rec, SAT_CAPTION_ATTENTION, c, err, errlen);
    parsed_close(&p);
    return rc;
}

/* ---- layout ---- */

static void test_layout_follows_options(void **state)
{
    (void)state;
    sat_font *font = open_font();
    sat_image img = gray_image(50, 40, 128);
    const struct { int words, cols, size, word, rows, per_row; } cases[] = {
        {9, 5, 224, -1, 2, 5}, {9, 3, 100, -1, 4, 3}, {3, 5, 64, -1, 1, 4},
        {4, 1, 48, -1, 5, 1}, {12, 5, 224, 7, 1, 2}, {0, 5, 64, -1, 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sat_caption_record c = make_caption(cases[k].words, 14, 14, NULL);
        sat_heatmap_options o = {.cols = cases[k].cols, .size = cases[k].size, .word = cases[k].word};
        sat_image fig;
        char err[SAT_ERR_MAX];
        assert_int_equal(sat_heatmap_render(&c, &img, &o, font, &fig, err, sizeof err), 0);
        int npanels = 1 + (cases[k].word >= 0 ? 1 : cases[k].words);
        sat_heatmap_layout l;
        assert_int_equal(sat_heatmap_layout_init(&l, npanels, o.cols, o.size), 0);
        assert_int_equal(l.rows, cases[k].rows);
        assert_int_equal(l.cols, cases[k].per_row);
        assert_int_equal(fig.width, l.width);
        assert_int_equal(fig.height, l.height);
        /* Each row holds per_row panels and their labels, with margins. */
        assert_true(fig.width >= l.cols * o.size && fig.width <= l.cols * o.size + (l.cols + 1) * o.size / 8);
        assert_true(fig.height >= l.rows * (o.size + l.label_h));
        /* Panels do not overlap, lie inside the figure, and wrap after `cols`. */
        for (int i = 0; i < npanels; i++) {
            int x, y, nx, ny;
            sat_heatmap_panel_origin(&l, i, &x, &y);
            assert_true(x >= 0 && y >= 0 && x + o.size <= fig.width);
            assert_true(y + o.size + l.label_h <= fig.height);
            if (i + 1 == npanels) continue;
            sat_heatmap_panel_origin(&l, i + 1, &nx, &ny);
            if ((i + 1) % l.cols) assert_true(ny == y && nx >= x + o.size);
            else assert_true(nx <= x && ny >= y + o.size + l.label_h);
        }
        sat_image_free(&fig);
        sat_caption_record_free(&c);
    }
    sat_image_free(&img);
    sat_font_close(font);
}

static void test_layout_limits(void **state)
{
    (void)state;
    sat_font *font = open_font();
    sat_image img = gray_image(8, 8, 0);
    sat_caption_record c = make_caption(3, 4, 4, NULL);
    sat_heatmap_options o = SAT_HEATMAP_DEFAULTS;
    sat_image fig;
    char err[SAT_ERR_MAX] = "";
    o.word = 3; /* words 0..2 */
    assert_int_equal(sat_heatmap_render(&c, &img, &o, font, &fig, err, sizeof err), -1);
    assert_non_null(strstr(err, "--word 3"));
    assert_null(fig.rgb);
    sat_heatmap_layout l;
    assert_int_equal(sat_heatmap_layout_init(&l, 1001, 1000, 2048), -1); /* 2e9 pixels */
    sat_caption_record_free(&c);
    sat_image_free(&img);
    sat_font_close(font);
}

/* ---- attention maps ---- */

static void test_brightest_where_alpha_is_hot(void **state)
{
    (void)state;
    /* Every cell of a 14x14 and a 7x5 grid, on panels of 224 and 100 pixels. */
    const struct { int ah, aw, size; } grids[] = {{14, 14, 224}, {7, 5, 100}};
    for (size_t g = 0; g < sizeof grids / sizeof *grids; g++) {
        int ah = grids[g].ah, aw = grids[g].aw, size = grids[g].size;
        float *alpha = calloc((size_t)ah * aw, sizeof *alpha), *map = malloc((size_t)size * size * sizeof *map);
        for (int cell = 0; cell < ah * aw; cell++) {
            memset(alpha, 0, (size_t)ah * aw * sizeof *alpha);
            alpha[cell] = 0.7f;
            sat_heatmap_smooth_map(alpha, ah, aw, size, map);
            assert_int_equal(brightest_cell(map, size, ah, aw), cell);
            float max = 0, min = 1;
            for (int i = 0; i < size * size; i++) max = fmaxf(max, map[i]), min = fminf(min, map[i]);
            assert_float_equal(max, 1.0f, 1e-6); /* normalized by its max */
            assert_true(min >= 0 && min < 0.02f);
            sat_heatmap_cell_map(ah, aw, (uint32_t)cell, size, map);
            assert_int_equal(brightest_cell(map, size, ah, aw), cell);
        }
        free(alpha);
        free(map);
    }

    const int hot[] = {0, 3 * 14 + 10, 7 * 14 + 7, 13 * 14 + 13, 12 * 14 + 1};
    const int n = sizeof hot / sizeof *hot;

    /* Rendered over a gray image, in both styles, soft and hard: the
     * brightest (glow) or reddest (jet) cell of each panel is the hot one. */
    sat_font *font = open_font();
    sat_image img = gray_image(300, 200, 128);
    sat_caption_record c = make_caption(n, 14, 14, hot);
    for (int hard = 0; hard < 2; hard++) {
        if (hard) {
            c.locations = calloc((size_t)n, sizeof *c.locations);
            for (int t = 0; t < n; t++) c.locations[t] = (uint32_t)hot[t];
        }
        for (int style = SAT_HEATMAP_GLOW; style <= SAT_HEATMAP_JET; style++) {
            sat_heatmap_options o = {.cols = 3, .size = 112, .word = -1, .style = style};
            sat_heatmap_layout l;
            sat_heatmap_layout_init(&l, 1 + n, o.cols, o.size);
            sat_image fig;
            char err[SAT_ERR_MAX];
            assert_int_equal(sat_heatmap_render(&c, &img, &o, font, &fig, err, sizeof err), 0);
            for (int t = 0; t < n; t++) {
                float *luma = panel_luma(&fig, &l, 1 + t);
                if (style == SAT_HEATMAP_GLOW) assert_int_equal(brightest_cell(luma, o.size, 14, 14), hot[t]);
                free(luma);
                if (style != SAT_HEATMAP_JET) continue;
                int px, py; /* jet: red at the hot cell's center, blue far away */
                sat_heatmap_panel_origin(&l, 1 + t, &px, &py);
                int cx = px + (hot[t] % 14 * 8 + 4), cy = py + (hot[t] / 14 * 8 + 4);
                const uint8_t *p = fig.rgb + ((size_t)cy * fig.width + cx) * 3;
                assert_true(p[0] > p[2] + 60);
                int fx = hot[t] % 14 < 7 ? px + 108 : px + 3, fy = hot[t] / 14 < 7 ? py + 108 : py + 3;
                const uint8_t *q = fig.rgb + ((size_t)fy * fig.width + fx) * 3;
                assert_true(q[2] > q[0] + 60);
            }
            sat_image_free(&fig);
        }
    }
    sat_caption_record_free(&c);
    sat_image_free(&img);
    sat_font_close(font);
}

static void test_uniform_alpha_stays_uniform(void **state)
{
    (void)state;
    const struct { int ah, aw, size; } cases[] = {{14, 14, 224}, {7, 7, 224}, {7, 10, 100}, {1, 1, 33}, {20, 3, 57}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int cells = cases[k].ah * cases[k].aw, size = cases[k].size;
        float *alpha = malloc((size_t)cells * sizeof *alpha), *map = malloc((size_t)size * size * sizeof *map);
        for (int i = 0; i < cells; i++) alpha[i] = 1.0f / cells;
        sat_heatmap_smooth_map(alpha, cases[k].ah, cases[k].aw, size, map);
        for (int i = 0; i < size * size; i++) assert_float_equal(map[i], 1.0f, 1e-5);
        /* and all-zero attention is a dark panel, not a division by zero */
        memset(alpha, 0, (size_t)cells * sizeof *alpha);
        sat_heatmap_smooth_map(alpha, cases[k].ah, cases[k].aw, size, map);
        for (int i = 0; i < size * size; i++) assert_true(map[i] == 0);
        free(alpha);
        free(map);
    }
}

/* The map is smooth (no 14x14 blocks): neighbouring pixels differ little. */
static void test_map_is_smooth(void **state)
{
    (void)state;
    const int size = 224;
    float alpha[196], *map = malloc((size_t)size * size * sizeof *map);
    for (int i = 0; i < 196; i++) alpha[i] = (float)((i * 37) % 11); /* a rough pattern */
    sat_heatmap_smooth_map(alpha, 14, 14, size, map);
    float step = 0;
    for (int y = 0; y < size; y++)
        for (int x = 1; x < size; x++) step = fmaxf(step, fabsf(map[y * size + x] - map[y * size + x - 1]));
    assert_true(step < 0.02f);
    free(map);
}

/* ---- PNG ---- */

static void render_png(unsigned char **png, size_t *len, sat_heatmap_style style)
{
    sat_font *font = open_font();
    sat_image img = gray_image(64, 48, 0);
    for (size_t i = 0; i < (size_t)64 * 48 * 3; i++) img.rgb[i] = (uint8_t)(i * 7 % 251);
    const int hot[] = {5, 77, 190};
    sat_caption_record c = make_caption(3, 14, 14, hot);
    sat_heatmap_options o = {.cols = 2, .size = 96, .word = -1, .style = style};
    sat_image fig;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_heatmap_render(&c, &img, &o, font, &fig, err, sizeof err), 0);
    assert_int_equal(sat_image_encode_png(&fig, png, len, err, sizeof err), 0);
    /* The PNG holds exactly the figure's pixels. */
    sat_image back;
    assert_int_equal(sat_image_decode(*png, *len, SAT_IMAGE_DEFAULT_MAX_PIXELS, &back, err, sizeof err), 0);
    assert_int_equal(back.width, fig.width);
    assert_int_equal(back.height, fig.height);
    assert_memory_equal(back.rgb, fig.rgb, (size_t)fig.width * fig.height * 3);
    sat_image_free(&back);
    sat_image_free(&fig);
    sat_caption_record_free(&c);
    sat_image_free(&img);
    sat_font_close(font);
}

static void test_identical_input_identical_png(void **state)
{
    (void)state;
    unsigned char *a, *b, *jet;
    size_t alen, blen, jetlen;
    render_png(&a, &alen, SAT_HEATMAP_GLOW);
    render_png(&b, &blen, SAT_HEATMAP_GLOW);
    render_png(&jet, &jetlen, SAT_HEATMAP_JET);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_true(jetlen != alen || memcmp(a, jet, alen) != 0);
    assert_null(memmem(a, alen, "tIME", 4)); /* no time stamp */
    free(a);
    free(b);
    free(jet);
}

static void test_thumbnail_png(void **state)
{
    (void)state;
    sat_image img = gray_image(300, 200, 0), back;
    for (size_t i = 0; i < (size_t)300 * 200 * 3; i++) img.rgb[i] = (uint8_t)(i / 3 % 300 * 255 / 299);
    unsigned char *png;
    size_t len;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_image_thumbnail_png(&img, 64, &png, &len), 0);
    assert_int_equal(sat_image_decode(png, len, 1000000, &back, err, sizeof err), 0);
    assert_int_equal(back.width, 64);
    assert_int_equal(back.height, 43); /* aspect kept: 200 * 64 / 300 = 42.7 */
    /* a horizontal ramp stays a ramp */
    assert_true(back.rgb[0] < 10 && back.rgb[63 * 3] > 245);
    sat_image_free(&back);
    free(png);
    /* never enlarged */
    assert_int_equal(sat_image_thumbnail_png(&img, 1000, &png, &len), 0);
    assert_int_equal(sat_image_decode(png, len, 1000000, &back, err, sizeof err), 0);
    assert_int_equal(back.width, 300);
    assert_memory_equal(back.rgb, img.rgb, (size_t)300 * 200 * 3);
    sat_image_free(&back);
    free(png);
    assert_int_equal(sat_image_thumbnail_png(&img, 0, &png, &len), -1);
    sat_image_free(&img);
}

/* ---- caption records ---- */

static void test_caption_parse(void **state)
{
    (void)state;
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_caption_record c;
    char err[SAT_ERR_MAX];

    pack_caption(&w, 2, 2 * 6 * 4, 0.5f, NULL, 0);
    assert_int_equal(parse_packed(&w, &c, err, sizeof err), 0);
    assert_string_equal(c.id, "photos/dog.jpg");
    assert_int_equal(c.nwords, 2);
    assert_string_equal(c.words[1], "word");
    assert_int_equal(c.alpha_h, 2);
    assert_int_equal(c.alpha_w, 3);
    assert_float_equal(c.alpha[11], 0.5f, 0);
    assert_null(c.locations);
    sat_caption_record_free(&c);

    const uint64_t loc[] = {5, 0};
    pack_caption(&w, 2, 0, 0, loc, 2); /* hard attention without α */
    assert_int_equal(parse_packed(&w, &c, err, sizeof err), 0);
    assert_non_null(c.locations);
    assert_int_equal(c.locations[0], 5);
    sat_caption_record_free(&c);

    const struct { int words; size_t bytes; float fill; const uint64_t *loc; int nloc; const char *needle; } bad[] = {
        {2, 0, 0, NULL, 0, "no alpha"},
        {2, 2 * 6 * 4 - 4, 0.5f, NULL, 0, "expected 48"},
        {2, 2 * 6 * 4, NAN, NULL, 0, "finite"},
        {2, 2 * 6 * 4, -1, NULL, 0, ">= 0"},
        {2, 0, 0, (const uint64_t[]){6, 0}, 2, "location 0"},
        {2, 0, 0, (const uint64_t[]){1}, 1, "one per word"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        pack_caption(&w, bad[k].words, bad[k].bytes, bad[k].fill, bad[k].loc, bad[k].nloc);
        memset(&c, 0x5a, sizeof c);
        assert_int_equal(parse_packed(&w, &c, err, sizeof err), -1);
        if (!strstr(err, bad[k].needle)) fprintf(stderr, "case %zu: '%s'\n", k, err);
        assert_non_null(strstr(err, bad[k].needle));
        assert_string_equal(c.id, "photos/dog.jpg"); /* for the message */
        assert_null(c.alpha);
        assert_null(c.locations);
        sat_caption_record_free(&c);
    }
    msgpack_sbuffer_destroy(&w.buf);
}

/* ---- font ---- */

static void test_font(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    assert_null(sat_font_open("/nonexistent/font.ttf", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/font.ttf"));
    assert_null(sat_font_open("/etc/hostname", err, sizeof err)); /* not a font */
    assert_non_null(strstr(err, "/etc/hostname"));

    sat_font *f = open_font();
    assert_int_equal(sat_font_set_size(f, 20), 0);
    int one = sat_font_text_width(f, "m"), three = sat_font_text_width(f, "mmm");
    assert_true(one > 5 && one < 25);
    assert_int_equal(three, 3 * one);
    assert_true(sat_font_text_width(f, "\xff\xfe bad utf-8") > 0);
    int ascent, descent;
    sat_font_metrics(f, &ascent, &descent);
    assert_true(ascent > 10 && ascent <= 24 && descent > 0 && descent < 10);

    /* Drawn antialiased (gray levels between paper and ink), only inside the clip. */
    sat_image img = gray_image(80, 40, 255);
    static const uint8_t black[3] = {0, 0, 0};
    sat_rect clip = {0, 0, 30, 40};
    sat_font_draw(f, &img, 2, 30, "dog dog", black, &clip);
    int inked = 0, gray = 0, outside = 0;
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 80; x++) {
            uint8_t v = img.rgb[(y * 80 + x) * 3];
            if (x >= 30 && v != 255) outside++;
            if (v < 64) inked++;
            else if (v < 224) gray++;
        }
    assert_true(inked > 20 && gray > 10);
    assert_int_equal(outside, 0);
    sat_image_free(&img);
    sat_font_close(f);
    assert_string_equal(sat_font_path("/x.ttf"), "/x.ttf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_follows_options),
        cmocka_unit_test(test_layout_limits),
        cmocka_unit_test(test_brightest_where_alpha_is_hot),
        cmocka_unit_test(test_uniform_alpha_stays_uniform),
        cmocka_unit_test(test_map_is_smooth),
        cmocka_unit_test(test_identical_input_identical_png),
        cmocka_unit_test(test_thumbnail_png),
        cmocka_unit_test(test_caption_parse),
        cmocka_unit_test(test_font),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
