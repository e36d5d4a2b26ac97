/* font.h — text drawn with FreeType 2: antialiased glyphs blended onto an
 * RGB image (the words under sat-heatmap's panels).
 *
 *     sat_font *f = sat_font_open(sat_font_path(opt_font), err, sizeof err);
 *     sat_font_set_size(f, 24);
 *     int w = sat_font_text_width(f, "dog");
 *     sat_font_draw(f, &img, x, baseline, "dog", black, &clip);
 */
#ifndef SAT_FONT_H
#define SAT_FONT_H

#include <stddef.h>
#include <stdint.h>

#include "sat/image.h"

/* DejaVu Sans from Debian's fonts-dejavu-core. */
#define SAT_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

typedef struct sat_font sat_font;

/* A rectangle [x0, x1) x [y0, y1) in pixels. */
typedef struct {
    int x0, y0, x1, y1;
} sat_rect;

/* The font file to use: `option` (--font) if non-NULL, else $SAT_FONT if
 * set and non-empty, else SAT_FONT_DEFAULT. */
const char *sat_font_path(const char *option);

/* Open a font file FreeType can read (TrueType, OpenType, ...); NULL with a
 * one-line reason in err ("PATH: No such file or directory (...)"). */
sat_font *sat_font_open(const char *path, char *err, size_t errlen);
void sat_font_close(sat_font *f);

/* Em size in pixels (1..1000).  0, or -1 if the font has no such size. */
int sat_font_set_size(sat_font *f, int pixels);
/* Ascent (above the baseline) and descent (below it, positive) in pixels. */
void sat_font_metrics(const sat_font *f, int *ascent, int *descent);
/* Width in pixels of UTF-8 text (advances and kerning; invalid bytes are
 * drawn as U+FFFD). */
int sat_font_text_width(sat_font *f, const char *text);
/* Draw the text with its baseline starting at (x, y), blended in `color` by
 * each pixel's coverage, only inside `clip` (which is clipped to img). */
void sat_font_draw(sat_font *f, sat_image *img, int x, int y, const char *text,
                   const uint8_t color[3], const sat_rect *clip);

#endif
