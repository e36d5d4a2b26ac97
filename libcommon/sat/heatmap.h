/* heatmap.h — the attention figures of Show, Attend and Tell (Xu et al. 2015,
 * Fig. 2 and 3): the image, then one panel per word showing where the model
 * looked (its α map blended over the image), the word written underneath.
 *
 *     sat_caption_record c;
 *     if (sat_caption_record_parse(&rec, SAT_CAPTION_ATTENTION, &c, why, sizeof why)) ...
 *     sat_heatmap_options o = SAT_HEATMAP_DEFAULTS;
 *     sat_image fig;
 *     if (sat_heatmap_render(&c, &image, &o, font, &fig, err, sizeof err)) ...
 *     sat_image_write_png(&fig, f, err, sizeof err);
 *
 * Panels are square: the image is shown as the encoder saw it (resized to a
 * square without keeping its aspect ratio), so the α grid lies on it evenly.
 */
#ifndef SAT_HEATMAP_H
#define SAT_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "sat/font.h"
#include "sat/image.h"
#include "sat/stream.h"

#define SAT_HEATMAP_MAX_PIXELS (100u * 1000u * 1000u) /* of a figure */

typedef enum {
    SAT_HEATMAP_GLOW, /* the paper's look: dark where α is low, white where high */
    SAT_HEATMAP_JET,  /* a jet heat palette at half opacity over the image */
} sat_heatmap_style;

typedef struct {
    int cols;                /* panels per row, >= 1 */
    int size;                /* panel side in pixels, >= 16 */
    int word;                /* -1: every word; else only this one (0-based) */
    sat_heatmap_style style;
} sat_heatmap_options;

#define SAT_HEATMAP_DEFAULTS ((sat_heatmap_options){.cols = 5, .size = 224, .word = -1})

/* Where the panels go: `npanels` (the image and the words) in rows of
 * `cols`, each panel size x size with a band of label_h for its word below,
 * margin pixels around and between them. */
typedef struct {
    int npanels, cols, rows, size;
    int margin, label_h;
    int width, height;
} sat_heatmap_layout;

/* 0, or -1 when the figure would have more than SAT_HEATMAP_MAX_PIXELS. */
int sat_heatmap_layout_init(sat_heatmap_layout *l, int npanels, int cols, int size);
/* Top-left corner of panel i (0 is the image). */
void sat_heatmap_panel_origin(const sat_heatmap_layout *l, int i, int *x, int *y);

/* The size x size map, values in [0, 1], of an ah x aw attention map:
 * bilinear upsampling to the panel, then a Gaussian blur of σ = 1.25 cells
 * (the authors' notebooks: skimage pyramid_expand, upscale 16, σ 20 for 14x14
 * on 224), divided by its maximum (all 0 if α is all 0). */
void sat_heatmap_smooth_map(const float *alpha, int ah, int aw, int size, float *map);
/* Hard attention: 1 inside cell `loc` (row-major in ah x aw), 0 elsewhere. */
void sat_heatmap_cell_map(int ah, int aw, uint32_t loc, int size, float *map);
/* Blend a size x size map over a size x size panel into dst (row stride in bytes). */
void sat_heatmap_blend(const sat_image *panel, const float *map, sat_heatmap_style style,
                       uint8_t *dst, size_t dst_stride);

/* The figure of caption c over `image` (any size; resized to the panels).
 * 0, or -1 with err (--word out of range, figure too large). */
int sat_heatmap_render(const sat_caption_record *c, const sat_image *image,
                       const sat_heatmap_options *o, sat_font *font, sat_image *fig,
                       char *err, size_t errlen);

#endif
