/* captions_json.c — caption files in JSON (spec: formats/captions.md), read
 * with jansson, Debian's well-kept JSON parser:
 *
 * - Karpathy's dataset_{flickr8k,flickr30k,coco}.json: {"images": [{"filename",
 *   "split", "sentences": [{"raw", ...}, ...], ...}, ...]}, the captions of an
 *   image in order (index 0, 1, ...), each image in one split;
 * - COCO's captions_*.json: {"images": [{"id", "file_name"}, ...],
 *   "annotations": [{"image_id", "caption"}, ...]}, an image's captions
 *   numbered in the order of the annotations; no splits.
 *
 * The whole file is parsed at once (1.4 GB of memory at the peak for a
 * 147 MB file of COCO's size; formats/captions.md), then handed out entry by entry like the lines of a token
 * file: what is not an entry at all (a missing or mistyped key) fails the
 * file with its path in the message; the checks of an entry's name and text
 * are the caption reader's. */
#include "sat/captions_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/util.h"

static void add_entry(sat_json_captions *c, const char *image, int index, const char *text,
                      const char *split)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->entries = sat_xrealloc(c->entries, c->cap * sizeof *c->entries);
    }
    c->entries[c->n++] = (sat_json_caption){ .image = sat_xstrdup(image), .index = index,
                                             .text = sat_xstrdup(text),
                                             .split = split ? sat_xstrdup(split) : NULL };
}

/* The string member key of object o, or NULL. */
static const char *member_string(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int karpathy_image(sat_json_captions *c, const json_t *img, size_t i, char *err,
                          size_t errlen)
{
    const char *name = member_string(img, "filename"), *split = member_string(img, "split");
    const json_t *sentences = json_object_get(img, "sentences");
    if (!name || !split || !json_is_array(sentences))
        return sat_fail(err, errlen, "images[%zu]: no string \"filename\" and \"split\" and "
                        "array \"sentences\"", i);
    for (size_t j = 0; j < json_array_size(sentences); j++) {
        const char *raw = member_string(json_array_get(sentences, j), "raw");
        if (!raw) return sat_fail(err, errlen, "images[%zu].sentences[%zu]: no string \"raw\"", i, j);
        add_entry(c, name, (int)j, raw, split);
    }
    return 0;
}

/* COCO: the annotations joined to their images by id (ids as decimal keys). */
static int coco_annotations(sat_json_captions *c, const json_t *images, const json_t *annotations,
                            char *err, size_t errlen)
{
    sat_strtab ids;
    sat_strtab_init(&ids);
    const char **names = sat_xcalloc(json_array_size(images) + 1, sizeof *names);
    int *count = sat_xcalloc(json_array_size(images) + 1, sizeof *count);
    char key[32];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(images); i++) {
        const json_t *img = json_array_get(images, i);
        const json_t *id = json_object_get(img, "id");
        const char *name = member_string(img, "file_name");
        if (!json_is_integer(id) || !name) {
            rc = sat_fail(err, errlen, "images[%zu]: no integer \"id\" and string \"file_name\"", i);
            break;
        }
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
        int added;
        long k = sat_strtab_add(&ids, key, &added);
        if (!added) rc = sat_fail(err, errlen, "images[%zu]: id %s given twice", i, key);
        names[k] = name;
    }
    for (size_t a = 0; rc == 0 && a < json_array_size(annotations); a++) {
        const json_t *ann = json_array_get(annotations, a);
        const json_t *id = json_object_get(ann, "image_id");
        const char *text = member_string(ann, "caption");
        if (!json_is_integer(id) || !text) {
            rc = sat_fail(err, errlen, "annotations[%zu]: no integer \"image_id\" and string "
                          "\"caption\"", a);
            break;
        }
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
        long k = sat_strtab_find(&ids, key);
        if (k < 0) rc = sat_fail(err, errlen, "annotations[%zu]: image_id %s is in no image", a, key);
        else add_entry(c, names[k], count[k]++, text, NULL);
    }
    free(names);
    free(count);
    sat_strtab_free(&ids);
    return rc;
}

static int read_root(sat_json_captions *c, const json_t *root, char *err, size_t errlen)
{
    const json_t *images = json_object_get(root, "images");
    const json_t *annotations = json_object_get(root, "annotations");
    if (!json_is_array(images))
        return sat_fail(err, errlen, "no \"images\" array (neither Karpathy's dataset_*.json "
                        "nor COCO's captions_*.json)");
    if (json_is_array(annotations)) return coco_annotations(c, images, annotations, err, errlen);
    c->has_splits = 1;
    for (size_t i = 0; i < json_array_size(images); i++)
        if (karpathy_image(c, json_array_get(images, i), i, err, errlen) < 0) return -1;
    return 0;
}

int sat_json_captions_load(sat_json_captions *c, FILE *f, const char *name, char *err,
                           size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sat_fail(err, errlen, "%s: not JSON (line %d, column %d: %s)", name, jerr.line,
                        jerr.column, jerr.text);
    char why[SAT_ERR_MAX];
    int rc = read_root(c, root, why, sizeof why);
    json_decref(root);
    if (rc < 0) {
        sat_json_captions_free(c);
        return sat_fail(err, errlen, "%s: %s", name, why);
    }
    return 0;
}

void sat_json_captions_free(sat_json_captions *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].image);
        free(c->entries[i].text);
        free(c->entries[i].split);
    }
    free(c->entries);
    memset(c, 0, sizeof *c);
}
