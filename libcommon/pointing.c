/* pointing.c — the localisation check and the attention's entropy (pointing.h). */
#include "sat/pointing.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/util.h"

typedef struct {
    long image;          /* index into images */
    char **words;        /* the words naming the boxed object */
    int nwords;
    float x0, y0, x1, y1;
} box;

struct sat_boxes {
    sat_strtab images;
    box *boxes;
    size_t n, cap;
};

static void free_box(box *b)
{
    for (int i = 0; i < b->nwords; i++) free(b->words[i]);
    free(b->words);
}

void sat_boxes_free(sat_boxes *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) free_box(&b->boxes[i]);
    free(b->boxes);
    sat_strtab_free(&b->images);
    free(b);
}

size_t sat_boxes_count(const sat_boxes *b) { return b->n; }
size_t sat_boxes_images(const sat_boxes *b) { return b->images.n; }

/* "dog,dogs" -> words; 0, or -1 when a word is empty. */
static int split_words(char *list, box *out)
{
    for (char *w = list, *comma;; w = comma + 1) {
        comma = strchr(w, ',');
        if (comma) *comma = 0;
        if (!*w) return -1;
        out->words = sat_xrealloc(out->words, (size_t)(out->nwords + 1) * sizeof *out->words);
        out->words[out->nwords++] = sat_xstrdup(w);
        if (!comma) return 0;
    }
}

/* One line "IMAGE<TAB>WORDS<TAB>X0 Y0 X1 Y1" into out; NULL, or what is wrong. */
static const char *parse_box(char *line, sat_boxes *b, box *out)
{
    char *words = strchr(line, '\t');
    if (!words || words == line) return "not IMAGE<TAB>WORDS<TAB>X0 Y0 X1 Y1";
    *words++ = 0;
    char *coords = strchr(words, '\t');
    if (!coords) return "not IMAGE<TAB>WORDS<TAB>X0 Y0 X1 Y1";
    *coords++ = 0;
    if (split_words(words, out)) return "an empty word in the word list";
    int end = 0;
    if (sscanf(coords, "%f %f %f %f %n", &out->x0, &out->y0, &out->x1, &out->y1, &end) != 4 ||
        coords[end] != 0)
        return "the box is not four numbers X0 Y0 X1 Y1";
    if (!(out->x0 >= 0 && out->x0 < out->x1 && out->x1 <= 1 && out->y0 >= 0 && out->y0 < out->y1 &&
          out->y1 <= 1))
        return "the box is not 0 <= X0 < X1 <= 1, 0 <= Y0 < Y1 <= 1";
    int added;
    out->image = sat_strtab_add(&b->images, line, &added);
    return NULL;
}

sat_boxes *sat_boxes_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        sat_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sat_boxes *b = sat_xcalloc(1, sizeof *b);
    sat_strtab_init(&b->images);
    char *line = sat_xmalloc(SAT_BOXES_MAX_LINE + 1);
    size_t len;
    int st;
    const char *bad = NULL;
    long lineno = 0;
    while (!bad && (st = sat_read_line(f, line, SAT_BOXES_MAX_LINE + 1, &len)) != SAT_LINE_EOF) {
        lineno++;
        if (st == SAT_LINE_TOO_LONG) {
            bad = "the line is too long";
            break;
        }
        if (len == strspn(line, " \t\r") || line[0] == '#') continue;
        box one = {0};
        bad = parse_box(line, b, &one);
        if (bad) {
            free_box(&one);
            break;
        }
        if (b->n == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 64;
            b->boxes = sat_xrealloc(b->boxes, b->cap * sizeof *b->boxes);
        }
        b->boxes[b->n++] = one;
    }
    if (!bad && ferror(f)) sat_fail(err, errlen, "%s: read error", path);
    else if (bad) sat_fail(err, errlen, "%s:%ld: %s", path, lineno, bad);
    else if (b->n == 0) sat_fail(err, errlen, "%s: no boxes", path);
    int failed = bad || ferror(f) || b->n == 0;
    fclose(f);
    free(line);
    if (failed) {
        sat_boxes_free(b);
        return NULL;
    }
    return b;
}

static int names(const box *b, const char *word)
{
    for (int i = 0; i < b->nwords; i++)
        if (strcmp(b->words[i], word) == 0) return 1;
    return 0;
}

static int inside(const box *b, float x, float y)
{
    return x >= b->x0 && x <= b->x1 && y >= b->y0 && y <= b->y1;
}

/* The cell word t's attention peaks at: the location read, or α's largest. */
static uint32_t peak_cell(const sat_caption_record *c, uint32_t t)
{
    if (c->locations) return c->locations[t];
    const size_t cells = (size_t)c->alpha_h * c->alpha_w;
    const float *a = c->alpha + t * cells;
    uint32_t best = 0;
    for (uint32_t i = 1; i < cells; i++)
        if (a[i] > a[best]) best = i;
    return best;
}

void sat_pointing_add(sat_pointing *p, const sat_boxes *b, const sat_caption_record *c)
{
    long image = sat_strtab_find(&b->images, sat_path_basename(c->id));
    if (image < 0) return;
    p->captions++;
    for (uint32_t t = 0; t < c->nwords; t++) {
        uint32_t cell = peak_cell(c, t);
        float x = ((float)(cell % c->alpha_w) + 0.5f) / (float)c->alpha_w;
        float y = ((float)(cell / c->alpha_w) + 0.5f) / (float)c->alpha_h;
        int named = 0, hit = 0, centre = 0;
        for (size_t i = 0; i < b->n; i++) {
            const box *bx = &b->boxes[i];
            if (bx->image != image || !names(bx, c->words[t])) continue;
            named = 1;
            hit |= inside(bx, x, y);
            centre |= inside(bx, 0.5f, 0.5f);
        }
        p->words += named;
        p->hits += hit;
        p->centre_hits += centre;
    }
}

void sat_attention_entropy_add(const sat_caption_record *c, double *sum, long *n)
{
    if (c->locations || !c->alpha) return;
    const size_t cells = (size_t)c->alpha_h * c->alpha_w;
    for (uint32_t t = 0; t < c->nwords; t++) {
        const float *a = c->alpha + t * cells;
        double h = 0;
        for (size_t i = 0; i < cells; i++)
            if (a[i] > 0) h -= a[i] * log(a[i]);
        *sum += h;
        (*n)++;
    }
}
