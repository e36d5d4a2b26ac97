/* heatmap.c — see heatmap.h. */
#include "sat/heatmap.h"
#include "sat/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- layout -------------------------------------------------------------- */

int sat_heatmap_layout_init(sat_heatmap_layout *l, int npanels, int cols, int size)
{
    l->npanels = npanels;
    l->size = size;
    l->cols = cols < npanels ? cols : npanels;
    l->rows = (npanels + l->cols - 1) / l->cols;
    l->margin = size / 28 > 2 ? size / 28 : 2;
    l->label_h = size / 6 > 12 ? size / 6 : 12;
    int64_t w = l->margin + (int64_t)l->cols * (size + l->margin);
    int64_t h = l->margin + (int64_t)l->rows * (size + l->label_h + l->margin);
    if (w * h > SAT_HEATMAP_MAX_PIXELS) return -1;
    l->width = (int)w, l->height = (int)h;
    return 0;
}

void sat_heatmap_panel_origin(const sat_heatmap_layout *l, int i, int *x, int *y)
{
    *x = l->margin + (i % l->cols) * (l->size + l->margin);
    *y = l->margin + (i / l->cols) * (l->size + l->label_h + l->margin);
}

/* ---- attention maps ------------------------------------------------------ */

/* The blur sees the map extended by its edge pixels (scipy's 'nearest').
 * pyramid_expand mirrors instead ('reflect'), but then a cell next to the
 * border meets its own mirror image and its glow is pulled onto the border. */
static int clamp_index(int p, int n) { return p < 0 ? 0 : p >= n ? n - 1 : p; }

/* The weights of one axis, size x n: row p holds how much each of the n
 * cells contributes to pixel p after bilinear upsampling and the Gaussian
 * blur.  Both steps are linear and act on each axis separately, so the 2-D
 * map is Wy · α · Wxᵀ: the same result as blurring the upsampled image, at
 * a cost that does not grow with σ². */
static float *axis_weights(int n, int size)
{
    /* Bilinear with pixel centers aligned (p + 0.5 = (u + 0.5) * size / n),
     * clamped at the edges: every row of `tent` sums to 1. */
    float *tent = sat_xcalloc((size_t)size * n, sizeof *tent);
    for (int p = 0; p < size; p++) {
        double u = fmin(fmax((p + 0.5) * n / size - 0.5, 0), n - 1);
        int j = (int)u;
        double f = u - j;
        tent[(size_t)p * n + j] += (float)(1 - f);
        if (j + 1 < n) tent[(size_t)p * n + j + 1] += (float)f;
    }
    double sigma = 1.25 * size / n;
    int radius = (int)ceil(3 * sigma);
    double *kernel = sat_xmalloc((2 * (size_t)radius + 1) * sizeof *kernel), total = 0;
    for (int t = -radius; t <= radius; t++)
        total += kernel[t + radius] = exp(-0.5 * t * t / (sigma * sigma));
    float *weights = sat_xcalloc((size_t)size * n, sizeof *weights);
    for (int p = 0; p < size; p++) {
        float *dst = weights + (size_t)p * n;
        for (int t = -radius; t <= radius; t++) {
            const float *src = tent + (size_t)clamp_index(p + t, size) * n;
            float k = (float)(kernel[t + radius] / total);
            for (int j = 0; j < n; j++) dst[j] += k * src[j];
        }
    }
    free(kernel);
    free(tent);
    return weights;
}

void sat_heatmap_smooth_map(const float *alpha, int ah, int aw, int size, float *map)
{
    float *wy = axis_weights(ah, size), *wx = axis_weights(aw, size);
    /* rows[i][x] = Σ_j α[i][j] wx[x][j]: ah x size */
    float *rows = sat_xcalloc((size_t)ah * size, sizeof *rows);
    for (int i = 0; i < ah; i++)
        for (int x = 0; x < size; x++) {
            const float *a = alpha + (size_t)i * aw, *w = wx + (size_t)x * aw;
            float s = 0;
            for (int j = 0; j < aw; j++) s += a[j] * w[j];
            rows[(size_t)i * size + x] = s;
        }
    /* map[y][x] = Σ_i wy[y][i] rows[i][x]; most wy[y][i] are 0 (the
     * Gaussian is cut at 3σ), which keeps large grids cheap. */
    float max = 0;
    for (int y = 0; y < size; y++) {
        float *dst = map + (size_t)y * size;
        memset(dst, 0, (size_t)size * sizeof *dst);
        for (int i = 0; i < ah; i++) {
            float w = wy[(size_t)y * ah + i];
            if (w == 0) continue;
            const float *src = rows + (size_t)i * size;
            for (int x = 0; x < size; x++) dst[x] += w * src[x];
        }
        for (int x = 0; x < size; x++) max = fmaxf(max, dst[x]);
    }
    size_t n = (size_t)size * size;
    for (size_t p = 0; p < n; p++) map[p] = max > 0 ? map[p] / max : 0;
    free(rows);
    free(wx);
    free(wy);
}

void sat_heatmap_cell_map(int ah, int aw, uint32_t loc, int size, float *map)
{
    int cy = (int)(loc / (uint32_t)aw), cx = (int)(loc % (uint32_t)aw);
    int y0 = (int)((int64_t)cy * size / ah), y1 = (int)((int64_t)(cy + 1) * size / ah);
    int x0 = (int)((int64_t)cx * size / aw), x1 = (int)((int64_t)(cx + 1) * size / aw);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            map[(size_t)y * size + x] = y >= y0 && y < y1 && x >= x0 && x < x1 ? 1.0f : 0.0f;
}

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* Matplotlib's classic jet: blue, cyan, yellow, red. */
static void jet(float a, float rgb[3])
{
    rgb[0] = clamp01(1.5f - fabsf(4 * a - 3));
    rgb[1] = clamp01(1.5f - fabsf(4 * a - 2));
    rgb[2] = clamp01(1.5f - fabsf(4 * a - 1));
}

/* The authors' notebooks drew the map in gray (black to white) at 0.8
 * opacity over the image: dark where α is low, a white glow where it is high. */
void sat_heatmap_blend(const sat_image *panel, const float *map, sat_heatmap_style style,
                       uint8_t *dst, size_t dst_stride)
{
    float opacity = style == SAT_HEATMAP_JET ? 0.5f : 0.8f;
    for (int y = 0; y < panel->height; y++) {
        const uint8_t *src = panel->rgb + (size_t)y * panel->width * 3;
        uint8_t *out = dst + (size_t)y * dst_stride;
        for (int x = 0; x < panel->width; x++, src += 3, out += 3) {
            float a = clamp01(map[(size_t)y * panel->width + x]), over[3] = {a, a, a};
            if (style == SAT_HEATMAP_JET) jet(a, over);
            for (int c = 0; c < 3; c++)
                out[c] = (uint8_t)((1 - opacity) * src[c] + opacity * 255 * over[c] + 0.5f);
        }
    }
}

/* ---- the figure ---------------------------------------------------------- */

/* The word centered in the band under panel i, shrunk to fit the panel's width. */
static void draw_label(sat_font *font, sat_image *fig, const sat_heatmap_layout *l, int i,
                       const char *word)
{
    int px, py, room = l->size - 4;
    sat_heatmap_panel_origin(l, i, &px, &py);
    int em = l->label_h * 6 / 10;
    sat_font_set_size(font, em);
    int width = sat_font_text_width(font, word);
    if (width > room) {
        em = em * room / width > 6 ? em * room / width : 6;
        sat_font_set_size(font, em);
        width = sat_font_text_width(font, word);
    }
    int ascent, descent;
    sat_font_metrics(font, &ascent, &descent);
    int top = py + l->size;
    sat_rect clip = {px, top, px + l->size, top + l->label_h};
    static const uint8_t black[3] = {0, 0, 0};
    sat_font_draw(font, fig, px + (l->size - width) / 2, top + (l->label_h + ascent - descent) / 2,
                  word, black, &clip);
}

static uint8_t *panel_at(const sat_image *fig, const sat_heatmap_layout *l, int i)
{
    int x, y;
    sat_heatmap_panel_origin(l, i, &x, &y);
    return fig->rgb + ((size_t)y * fig->width + x) * 3;
}

int sat_heatmap_render(const sat_caption_record *c, const sat_image *image,
                       const sat_heatmap_options *o, sat_font *font, sat_image *fig,
                       char *err, size_t errlen)
{
    memset(fig, 0, sizeof *fig);
    if (o->word >= 0 && (uint32_t)o->word >= c->nwords)
        return sat_fail(err, errlen, "--word %d: the caption has %u words", o->word, c->nwords);
    int shown = o->word >= 0 ? 1 : (int)c->nwords;
    sat_heatmap_layout l;
    if (sat_heatmap_layout_init(&l, 1 + shown, o->cols, o->size))
        return sat_fail(err, errlen, "a figure of %d panels of %d pixels is over the limit of %u pixels",
                    1 + shown, o->size, SAT_HEATMAP_MAX_PIXELS);
    size_t stride = (size_t)l.width * 3;
    fig->width = l.width, fig->height = l.height;
    fig->rgb = sat_xmalloc(stride * l.height);
    memset(fig->rgb, 255, stride * l.height);

    sat_image panel;
    sat_image_resize(image, l.size, l.size, &panel);
    for (int y = 0; y < l.size; y++)
        memcpy(panel_at(fig, &l, 0) + y * stride, panel.rgb + (size_t)y * l.size * 3, (size_t)l.size * 3);
    float *map = sat_xmalloc((size_t)l.size * l.size * sizeof *map);
    for (int k = 0; k < shown; k++) {
        uint32_t t = o->word >= 0 ? (uint32_t)o->word : (uint32_t)k;
        if (c->locations)
            sat_heatmap_cell_map((int)c->alpha_h, (int)c->alpha_w, c->locations[t], l.size, map);
        else
            sat_heatmap_smooth_map(c->alpha + (size_t)t * c->alpha_h * c->alpha_w, (int)c->alpha_h,
                                   (int)c->alpha_w, l.size, map);
        sat_heatmap_blend(&panel, map, o->style, panel_at(fig, &l, 1 + k), stride);
        draw_label(font, fig, &l, 1 + k, c->words[t]);
    }
    free(map);
    sat_image_free(&panel);
    return 0;
}
