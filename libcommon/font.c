/* font.c — see font.h. */
#include "sat/font.h"
#include "sat/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H

struct sat_font {
    FT_Library lib;
    FT_Face face;
};

const char *sat_font_path(const char *option)
{
    if (option) return option;
    const char *env = getenv("SAT_FONT");
    return env && *env ? env : SAT_FONT_DEFAULT;
}

sat_font *sat_font_open(const char *path, char *err, size_t errlen)
{
    static const char hint[] = "install fonts-dejavu-core, set SAT_FONT or give --font";
    /* FreeType's own error for a missing file is only a number. */
    if (access(path, R_OK) != 0) {
        sat_fail(err, errlen, "font %s: %s (%s)", path, strerror(errno), hint);
        return NULL;
    }
    sat_font *f = sat_xcalloc(1, sizeof *f);
    FT_Error e = FT_Init_FreeType(&f->lib);
    if (e) {
        sat_fail(err, errlen, "cannot start FreeType (error 0x%02x)", (unsigned)e);
        free(f);
        return NULL;
    }
    e = FT_New_Face(f->lib, path, 0, &f->face);
    if (!e && !FT_IS_SCALABLE(f->face)) e = FT_Err_Invalid_File_Format;
    if (e) {
        sat_fail(err, errlen, "font %s: not a scalable font FreeType can read (error 0x%02x; %s)",
                 path, (unsigned)e, hint);
        if (f->face) FT_Done_Face(f->face);
        FT_Done_FreeType(f->lib);
        free(f);
        return NULL;
    }
    return f;
}

void sat_font_close(sat_font *f)
{
    if (!f) return;
    FT_Done_Face(f->face);
    FT_Done_FreeType(f->lib);
    free(f);
}

int sat_font_set_size(sat_font *f, int pixels)
{
    if (pixels < 1 || pixels > 1000) return -1;
    return FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)pixels) ? -1 : 0;
}

void sat_font_metrics(const sat_font *f, int *ascent, int *descent)
{
    const FT_Size_Metrics *m = &f->face->size->metrics; /* 26.6 fixed point */
    *ascent = (int)((m->ascender + 63) >> 6);
    *descent = (int)((-m->descender + 63) >> 6);
}

/* The next code point of UTF-8 text; a byte that does not start a valid,
 * shortest-form sequence is U+FFFD and is skipped alone. */
static uint32_t next_codepoint(const unsigned char **s)
{
    const unsigned char *p = *s;
    int n = p[0] < 0x80 ? 0 : p[0] >= 0xc2 && p[0] < 0xe0 ? 1 : p[0] >= 0xe0 && p[0] < 0xf0 ? 2
          : p[0] >= 0xf0 && p[0] < 0xf5 ? 3 : -1;
    if (n < 0) {
        *s = p + 1;
        return 0xfffd;
    }
    uint32_t cp = n == 0 ? p[0] : p[0] & (0x3fu >> n);
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *s = p + 1;
            return 0xfffd;
        }
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    *s = p + n + 1;
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0xfffd;
    return cp;
}

/* Coverage 0..255 of bitmap pixel (col, row): 8-bit gray or 1-bit mono. */
static unsigned coverage(const FT_Bitmap *b, unsigned col, unsigned row)
{
    /* A negative pitch means the rows are stored bottom-up. */
    const unsigned char *line = b->pitch >= 0 ? b->buffer + (size_t)row * (size_t)b->pitch
                                              : b->buffer + (size_t)(b->rows - 1 - row) * (size_t)-b->pitch;
    if (b->pixel_mode == FT_PIXEL_MODE_MONO) return (line[col >> 3] >> (7 - (col & 7)) & 1) ? 255 : 0;
    if (b->pixel_mode == FT_PIXEL_MODE_GRAY && b->num_grays == 256) return line[col];
    return 0; /* other modes are not produced by FT_LOAD_RENDER for outline fonts */
}

static void blend_glyph(sat_image *img, const FT_Bitmap *b, int left, int top,
                        const uint8_t color[3], const sat_rect *clip)
{
    for (unsigned row = 0; row < b->rows; row++) {
        int y = top + (int)row;
        if (y < clip->y0 || y >= clip->y1) continue;
        for (unsigned col = 0; col < b->width; col++) {
            int x = left + (int)col;
            unsigned a = x >= clip->x0 && x < clip->x1 ? coverage(b, col, row) : 0;
            if (!a) continue;
            uint8_t *px = img->rgb + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
            for (int c = 0; c < 3; c++)
                px[c] = (uint8_t)((px[c] * (255u - a) + color[c] * a + 127) / 255);
        }
    }
}

/* Lay out the text from pen position (x, y); draw it when img is non-NULL.
 * Returns the advance width in pixels.  Measuring and drawing share this so
 * that a centered word is placed exactly where it is measured. */
static int run_text(sat_font *f, const char *text, sat_image *img, int x, int y,
                    const uint8_t color[3], const sat_rect *clip)
{
    FT_Face face = f->face;
    FT_Pos pen = 0; /* 26.6 */
    FT_UInt prev = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        FT_UInt glyph = FT_Get_Char_Index(face, next_codepoint(&s));
        if (prev && glyph && FT_HAS_KERNING(face)) {
            FT_Vector k;
            if (!FT_Get_Kerning(face, prev, glyph, FT_KERNING_DEFAULT, &k)) pen += k.x;
        }
        FT_Int32 flags = img ? FT_LOAD_RENDER | FT_LOAD_TARGET_LIGHT : FT_LOAD_TARGET_LIGHT;
        if (FT_Load_Glyph(face, glyph, flags)) continue; /* a broken glyph is left out */
        FT_GlyphSlot g = face->glyph;
        if (img)
            blend_glyph(img, &g->bitmap, x + (int)((pen + 32) >> 6) + g->bitmap_left,
                        y - g->bitmap_top, color, clip);
        pen += g->advance.x;
        prev = glyph;
    }
    return (int)((pen + 32) >> 6);
}

int sat_font_text_width(sat_font *f, const char *text)
{
    return run_text(f, text, NULL, 0, 0, NULL, NULL);
}

void sat_font_draw(sat_font *f, sat_image *img, int x, int y, const char *text,
                   const uint8_t color[3], const sat_rect *clip)
{
    sat_rect r = {
        clip->x0 > 0 ? clip->x0 : 0, clip->y0 > 0 ? clip->y0 : 0,
        clip->x1 < img->width ? clip->x1 : img->width, clip->y1 < img->height ? clip->y1 : img->height,
    };
    run_text(f, text, img, x, y, color, &r);
}
