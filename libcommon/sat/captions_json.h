/* captions_json.h — Karpathy's dataset_*.json and COCO's captions_*.json
 * caption files, as a list of entries (the caption reader of captions.h
 * uses it for any caption file that starts with '{'):
 *
 *     sat_json_captions c;
 *     if (sat_json_captions_load(&c, f, "dataset_coco.json", err, sizeof err) < 0) die(err);
 *     for (size_t i = 0; i < c.n; i++) printf("%s#%d %s\n", c.entries[i].image, ...);
 *     sat_json_captions_free(&c);
 */
#ifndef SAT_CAPTIONS_JSON_H
#define SAT_CAPTIONS_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *image;  /* the file name ("filename", "file_name"), unchecked */
    int index;    /* the caption's number among its image's, from 0 */
    char *text;   /* "raw" or "caption", untrimmed */
    char *split;  /* Karpathy's "split" of the image ("train", "val", "test", "restval"); COCO: NULL */
} sat_json_caption;

typedef struct {
    sat_json_caption *entries;
    size_t n, cap;
    int has_splits; /* Karpathy's format */
} sat_json_captions;

/* All captions of the JSON document read from f, in file order; 0, or -1
 * with err naming `name` and what is wrong (not JSON, a missing key). */
int sat_json_captions_load(sat_json_captions *c, FILE *f, const char *name, char *err,
                           size_t errlen);
void sat_json_captions_free(sat_json_captions *c);

#endif
