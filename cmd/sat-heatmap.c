/* sat-heatmap — caption records with attention to PNG figures laid out like
 * Fig. 2 and 3 of Show, Attend and Tell: the image, then one panel per word
 * with the attention map α of that word blended over the image.
 *
 * A sink: it reads streams (FILEs or stdin), writes one PNG per `caption`
 * record and prints its path.  `features` and `thumbnail` records are only
 * looked at for a `thumbnail`, the image to use when the file named by a
 * caption's id is not found; every other record is ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sat/font.h"
#include "sat/heatmap.h"
#include "sat/image.h"
#include "sat/stream.h"
#include "sat/util.h"

#define MAX_IMAGE_BYTES ((size_t)1 << 30)
#define MAX_THUMBNAILS 64
#define MAX_THUMBNAIL_BYTES ((size_t)16 << 20)

static const char usage[] =
    "Usage: sat-heatmap [OPTION]... [FILE]...\n"
    "Draw the attention of each caption record of sat streams (FILEs, or stdin) as a\n"
    "PNG like the figures of Show, Attend and Tell: the image, then one panel per word\n"
    "with its attention map over the image and the word below.  Prints the path of\n"
    "each PNG written.\n"
    "\n"
    "  -o, --output PATH      FILE for a single caption, or DIR/ (ending in '/') for one\n"
    "                         file per caption, named after the id: DIR/NAME.png, then\n"
    "                         DIR/NAME-1.png, ... for more captions of it (default: ./)\n"
    "      --root DIR         look images up as DIR/ID, then DIR/BASENAME(ID)\n"
    "      --cols N           panels per row (default 5)\n"
    "      --word N           only the panel of word N (0-based) beside the image\n"
    "      --size N           panel side in pixels (default 224)\n"
    "      --colormap         a jet heat palette instead of the paper's white glow\n"
    "      --font FILE        the font of the words (default: $SAT_FONT, then\n"
    "                         " SAT_FONT_DEFAULT ")\n"
    "      --max-record N     refuse records larger than N bytes (default 268435456)\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "Example: sat-encode dog.jpg | sat-decode | sat-heatmap -o dog.png\n";

typedef struct {
    const char *output; /* NULL: the current directory */
    int output_is_dir;
    const char *root;
    const char *font;
    sat_heatmap_options figure;
    size_t max_record;
} options;

/* A features record's thumbnail, kept in a ring of the latest MAX_THUMBNAILS. */
typedef struct {
    char *id;
    unsigned char *png;
    size_t len;
} thumbnail;

/* How many figures have had each output name, to number the repeats
 * (open addressing, at most half full). */
typedef struct {
    char *name;
    unsigned count;
} name_slot;

typedef struct {
    name_slot *slots;
    size_t cap, used;
} name_table;

typedef struct {
    const options *opt;
    sat_font *font;
    thumbnail thumbs[MAX_THUMBNAILS];
    int next_thumb;
    char *image_id;     /* the image last loaded, kept for the next captions of it */
    sat_image image;
    name_table names;
    size_t captions;    /* caption records seen */
    sat_image single;   /* -o FILE: the one figure, written at the end (a second caption */
    char *single_path;  /* is an error that leaves no file), and where it goes */
} heatmapper;

/* ---- thumbnails ---------------------------------------------------------- */

static void remember_thumbnail(heatmapper *h, const sat_record *rec)
{
    sat_thumbnail got;
    if (sat_thumbnail_parse(rec, &got) || got.len == 0 || got.len > MAX_THUMBNAIL_BYTES) {
        free(got.id);
        return;
    }
    int slot = h->next_thumb;
    for (int i = 0; i < MAX_THUMBNAILS; i++)
        if (h->thumbs[i].id && strcmp(h->thumbs[i].id, got.id) == 0) slot = i;
    thumbnail *t = &h->thumbs[slot];
    if (slot == h->next_thumb) h->next_thumb = (h->next_thumb + 1) % MAX_THUMBNAILS;
    free(t->id);
    free(t->png);
    t->id = got.id;
    t->png = sat_xmalloc(got.len);
    memcpy(t->png, got.png, got.len);
    t->len = got.len;
}

static const thumbnail *find_thumbnail(const heatmapper *h, const char *id)
{
    for (int i = 0; i < MAX_THUMBNAILS; i++)
        if (h->thumbs[i].id && strcmp(h->thumbs[i].id, id) == 0) return &h->thumbs[i];
    return NULL;
}

/* ---- images -------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static char *join_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0) sat_die("out of memory");
    return p;
}

static int decode_file(const char *path, sat_image *img, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len;
    char why[SAT_ERR_MAX];
    if (sat_read_file_checked(path, MAX_IMAGE_BYTES, sat_image_check_head, &data, &len, why,
                              sizeof why) == 0) {
        int bad = sat_image_decode(data, len, SAT_IMAGE_DEFAULT_MAX_PIXELS, img, why, sizeof why);
        free(data);
        if (!bad) return 0;
    }
    sat_fail(err, errlen, "%s: %s", path, why);
    return -1;
}

/* The image of a caption: the file named by its id (under --root: ROOT/ID,
 * then ROOT/BASENAME), else the thumbnail of its features record.  A file
 * that exists but cannot be decoded is an error, not a reason to fall back.
 * The id "-" (an image sat-encode read from stdin) names no file. */
static int find_image(const heatmapper *h, const char *id, sat_image *img, char *err, size_t errlen)
{
    const char *root = h->opt->root;
    char *paths[2] = {root ? join_path(root, id) : sat_xstrdup(id),
                      root ? join_path(root, base_name(id)) : NULL};
    int rc = 1; /* 1: not found yet */
    for (int i = 0; i < 2 && rc == 1 && paths[i]; i++)
        if ((root || strcmp(id, "-") != 0) && access(paths[i], F_OK) == 0)
            rc = decode_file(paths[i], img, err, errlen);
    if (rc == 1) {
        const thumbnail *t = find_thumbnail(h, id);
        char why[SAT_ERR_MAX];
        if (!t)
            sat_fail(err, errlen, "image not found (%s%s%s) and no thumbnail in the stream", paths[0],
                     paths[1] ? ", " : "", paths[1] ? paths[1] : "");
        else if (sat_image_decode(t->png, t->len, SAT_IMAGE_DEFAULT_MAX_PIXELS, img, why, sizeof why))
            sat_fail(err, errlen, "image not found and its thumbnail is bad: %s", why);
        else
            rc = 0;
        if (rc) rc = -1;
    }
    free(paths[0]);
    free(paths[1]);
    return rc;
}

/* The image for id, from the cache when the previous caption had the same id. */
static const sat_image *load_image(heatmapper *h, const char *id, char *err, size_t errlen)
{
    if (h->image_id && strcmp(h->image_id, id) == 0) return &h->image;
    sat_image_free(&h->image);
    free(h->image_id);
    h->image_id = NULL;
    if (find_image(h, id, &h->image, err, errlen)) return NULL;
    h->image_id = sat_xstrdup(id);
    return &h->image;
}

/* ---- output names -------------------------------------------------------- */

static size_t name_hash(const char *s)
{
    size_t x = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++) x = (x ^ (unsigned char)*s) * 1099511628211u;
    return x;
}

static name_slot *name_find(name_slot *slots, size_t cap, const char *name)
{
    size_t i = name_hash(name) & (cap - 1);
    while (slots[i].name && strcmp(slots[i].name, name) != 0) i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* How many figures had this name before (and count this one). */
static unsigned name_seen(name_table *t, const char *name)
{
    if (2 * (t->used + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        name_slot *slots = sat_xcalloc(cap, sizeof *slots);
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].name) *name_find(slots, cap, t->slots[i].name) = t->slots[i];
        free(t->slots);
        t->slots = slots, t->cap = cap;
    }
    name_slot *s = name_find(t->slots, t->cap, name);
    if (!s->name) {
        s->name = sat_xstrdup(name);
        t->used++;
    }
    return s->count++;
}

static void name_table_free(name_table *t)
{
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].name);
    free(t->slots);
}

/* DIR/NAME.png from the id's base name without extension; DIR/NAME-N.png for
 * the N-th repeat (an n-best list, several models).  NAME is cut to
 * MAX_STEM bytes and control characters become '_', so that any id gives a
 * file name that can be created and printed on one line. */
#define MAX_STEM 200
static char *output_path(heatmapper *h, const char *id)
{
    const options *o = h->opt;
    if (o->output && !o->output_is_dir) return sat_xstrdup(o->output);
    const char *dir = o->output ? o->output : "";
    const char *sep = *dir && dir[strlen(dir) - 1] != '/' ? "/" : "";
    const char *base = base_name(id), *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *stem;
    if (n == 0 || (n == 1 && (base[0] == '.' || base[0] == '-'))) stem = sat_xstrdup("image");
    else if (asprintf(&stem, "%.*s", (int)(n < MAX_STEM ? n : MAX_STEM), base) < 0) sat_die("out of memory");
    for (char *p = stem; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '_';
    unsigned repeat = name_seen(&h->names, stem);
    char *path;
    int rc = repeat ? asprintf(&path, "%s%s%s-%u.png", dir, sep, stem, repeat)
                    : asprintf(&path, "%s%s%s.png", dir, sep, stem);
    if (rc < 0) sat_die("out of memory");
    free(stem);
    return path;
}

/* ---- captions ------------------------------------------------------------ */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* sat_warn, with control characters (from ids) turned into spaces: one line. */
static void report(const char *fmt, ...)
{
    char line[SAT_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    sat_vfail(line, sizeof line, fmt, ap);
    va_end(ap);
    sat_one_line(line);
    sat_warn("%s", line);
}

static void write_figure(const sat_image *fig, const char *path, const char *what)
{
    sat_atomic out;
    sat_atomic_open(&out, path);
    char err[SAT_ERR_MAX];
    if (sat_image_write_png(fig, out.f, err, sizeof err)) {
        sat_atomic_abort(&out);
        report("%s: %s: %s", what, path, err);
        return;
    }
    sat_atomic_commit(&out);
    printf("%s\n", path);
    fflush(stdout);
}

static void handle_caption(heatmapper *h, const sat_record *rec, const char *stream)
{
    const options *o = h->opt;
    if (++h->captions > 1 && o->output && !o->output_is_dir)
        sat_die("%s: record %zu: -o %s takes one caption but the stream has more (use -o DIR/)",
                stream, rec->index, o->output);
    sat_caption_record c;
    char err[SAT_ERR_MAX];
    if (sat_caption_record_parse(rec, SAT_CAPTION_ATTENTION, &c, err, sizeof err)) {
        if (c.id) report("%s: record %zu (id %s): %s", stream, rec->index, c.id, err);
        else report("%s: record %zu: caption: %s", stream, rec->index, err);
        sat_caption_record_free(&c);
        return;
    }
    const sat_image *img = load_image(h, c.id, err, sizeof err);
    sat_image fig;
    if (!img || sat_heatmap_render(&c, img, &o->figure, h->font, &fig, err, sizeof err)) {
        report("%s: record %zu (id %s): %s", stream, rec->index, c.id, err);
        sat_caption_record_free(&c);
        return;
    }
    char *path = output_path(h, c.id);
    if (o->output && !o->output_is_dir) { /* kept until the input is known to hold no other caption */
        h->single = fig;
        h->single_path = path;
    } else {
        write_figure(&fig, path, stream);
        free(path);
        sat_image_free(&fig);
    }
    sat_caption_record_free(&c);
}

static void on_record(void *ctx, const sat_record *rec, const char *input)
{
    heatmapper *h = ctx;
    if (sat_record_is(rec, "caption")) handle_caption(h, rec, input);
    else if (sat_record_is(rec, "features") || sat_record_is(rec, "thumbnail"))
        remember_thumbnail(h, rec);
}

/* ---- main ---------------------------------------------------------------- */

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"root", required_argument, 0, 'R'},
        {"cols", required_argument, 0, 'C'},   {"word", required_argument, 0, 'W'},
        {"size", required_argument, 0, 'S'},   {"colormap", no_argument, 0, 'J'},
        {"font", required_argument, 0, 'F'},   {"max-record", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    *o = (options){.figure = SAT_HEATMAP_DEFAULTS};
    int c;
    while ((c = sat_getopt(argc, argv, "o:hV", longopts)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 'R': o->root = optarg; break;
        case 'C': o->figure.cols = (int)sat_parse_long("--cols", optarg, 1, 1000); break;
        case 'W': o->figure.word = (int)sat_parse_long("--word", optarg, 0, SAT_CAPTION_MAX_WORDS - 1); break;
        case 'S': o->figure.size = (int)sat_parse_long("--size", optarg, 32, 2048); break;
        case 'J': o->figure.style = SAT_HEATMAP_JET; break;
        case 'F': o->font = optarg; break;
        case 'M': o->max_record = (size_t)sat_parse_long("--max-record", optarg, 16, 1L << 40); break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (o->output && !*o->output) sat_usage_error("-o: empty path");
    struct stat st; /* a directory: named with a final '/', or one that exists */
    o->output_is_dir = o->output && (o->output[strlen(o->output) - 1] == '/' ||
                                     (stat(o->output, &st) == 0 && S_ISDIR(st.st_mode)));
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_options(argc, argv, &o);
    char err[SAT_ERR_MAX];
    heatmapper h = {.opt = &o, .font = sat_font_open(sat_font_path(o.font), err, sizeof err)};
    if (!h.font) sat_die("%s", err);
    if (o.output_is_dir && mkdir(o.output, 0777) != 0 && errno != EEXIST)
        sat_die("%s: cannot create the directory: %s", o.output, strerror(errno));

    sat_each e = {.max_record = o.max_record, .record = on_record, .ctx = &h};
    sat_each_record(&e, argv + optind, argc - optind);
    if (h.single_path) {
        write_figure(&h.single, h.single_path, "-o");
        free(h.single_path);
        sat_image_free(&h.single);
    }
    sat_fclose_check(stdout, "stdout");
    for (int i = 0; i < MAX_THUMBNAILS; i++) {
        free(h.thumbs[i].id);
        free(h.thumbs[i].png);
    }
    free(h.image_id);
    sat_image_free(&h.image);
    name_table_free(&h.names);
    sat_font_close(h.font);
    return sat_exit_status();
}
