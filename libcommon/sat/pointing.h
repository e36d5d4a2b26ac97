/* pointing.h — does the attention look at what the caption names?
 *
 * Two measures of the α maps of caption records (sat-eval --boxes, --entropy):
 *
 * - Pointing: for each generated word that names a boxed object of its
 *   image, is the attention's peak inside one of that object's boxes?  The
 *   peak is the cell read (hard attention's `locations`) or α's largest cell
 *   (soft), taken at the cell's centre.  Beside it the same check for the
 *   image centre, the baseline any attention must beat: photographers
 *   centre their subject.
 * - Entropy: H(α_t) = −Σ_i α_ti log α_ti per word, in nats, against log L of
 *   uniform attention (a flat α is a defect: its samples are random patches).
 *
 * Box file: one box a line, "IMAGE<TAB>WORDS<TAB>X0 Y0 X1 Y1".  IMAGE is a
 * base name (dog.jpg); WORDS the caption words that name the object, comma-
 * separated (dog,dogs,puppy); X0 Y0 X1 Y1 the box's left, top, right and
 * bottom as fractions (0..1) of the image's width and height, so a box holds
 * on the square the encoder saw.  Several lines may box several objects, or
 * several parts of one.  Blank lines and lines starting with '#' are skipped.
 *
 *     sat_boxes *b = sat_boxes_load("scripts/boxes.tsv", err, sizeof err);
 *     sat_pointing p = {0};
 *     sat_pointing_add(&p, b, &caption);   (a parsed sat_caption_record)
 *     printf("%ld of %ld\n", p.hits, p.words);
 */
#ifndef SAT_POINTING_H
#define SAT_POINTING_H

#include <stddef.h>

#include "sat/heatmap.h"

#define SAT_BOXES_MAX_LINE 4096

typedef struct sat_boxes sat_boxes;

/* NULL with "FILE:LINE: what is wrong" in err for a malformed line. */
sat_boxes *sat_boxes_load(const char *path, char *err, size_t errlen);
void sat_boxes_free(sat_boxes *b);
/* Boxes and images in the file. */
size_t sat_boxes_count(const sat_boxes *b);
size_t sat_boxes_images(const sat_boxes *b);

typedef struct {
    long captions;    /* captions of boxed images seen */
    long words;       /* words naming a boxed object of their image */
    long hits;        /* of those, with the attention's peak inside a box of the object */
    long centre_hits; /* of those, with the image centre inside one */
} sat_pointing;

/* Adds caption c (its image the base name of c->id) to p. */
void sat_pointing_add(sat_pointing *p, const sat_boxes *b, const sat_caption_record *c);

/* Adds the entropy of each word's α (soft captions only: hard ones carry
 * locations, not α) to *sum and the words to *n; 0 when c has no α. */
void sat_attention_entropy_add(const sat_caption_record *c, double *sum, long *n);

#endif
