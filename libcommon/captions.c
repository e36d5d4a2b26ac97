/* captions.c — see captions.h and formats/captions.md. */
#include "sat/captions.h"
#include "sat/captions_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sat/util.h"

/* ---- string table ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void sat_strtab_init(sat_strtab *t) { memset(t, 0, sizeof *t); }

void sat_strtab_free(sat_strtab *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->keys[i]);
    free(t->keys);
    free(t->hashes);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static void strtab_insert_slot(sat_strtab *t, size_t id)
{
    size_t mask = t->nslots - 1, i = t->hashes[id] & mask;
    while (t->slots[i]) i = (i + 1) & mask;
    t->slots[i] = (uint32_t)(id + 1);
}

static void strtab_grow_slots(sat_strtab *t)
{
    free(t->slots);
    t->nslots = t->nslots ? t->nslots * 2 : 64;
    t->slots = sat_xcalloc(t->nslots, sizeof *t->slots);
    for (size_t id = 0; id < t->n; id++) strtab_insert_slot(t, id);
}

static long strtab_lookup(const sat_strtab *t, const char *s, uint64_t h)
{
    if (!t->nslots) return -1;
    size_t mask = t->nslots - 1;
    for (size_t i = h & mask; t->slots[i]; i = (i + 1) & mask) {
        size_t id = t->slots[i] - 1;
        if (t->hashes[id] == h && strcmp(t->keys[id], s) == 0) return (long)id;
    }
    return -1;
}

long sat_strtab_find(const sat_strtab *t, const char *s) { return strtab_lookup(t, s, hash_str(s)); }

long sat_strtab_add(sat_strtab *t, const char *s, int *added)
{
    uint64_t h = hash_str(s);
    long id = strtab_lookup(t, s, h);
    if (added) *added = id < 0;
    if (id >= 0) return id;
    if (t->n >= UINT32_MAX - 1) sat_die("string table full (%zu strings)", t->n);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->keys = sat_xrealloc(t->keys, t->cap * sizeof *t->keys);
        t->hashes = sat_xrealloc(t->hashes, t->cap * sizeof *t->hashes);
    }
    t->keys[t->n] = sat_xstrdup(s);
    t->hashes[t->n] = h;
    t->n++;
    if (t->n * 2 > t->nslots) strtab_grow_slots(t); /* load factor <= 1/2 */
    else strtab_insert_slot(t, t->n - 1);
    return (long)t->n - 1;
}

/* ---- bytes and lines ---- */

int sat_read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int c, too_long = 0;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (n < cap - 1) buf[n++] = (char)c;
        else too_long = 1;
    }
    if (c == EOF && n == 0 && !too_long) return SAT_LINE_EOF;
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    *len = n;
    return too_long ? SAT_LINE_TOO_LONG : SAT_LINE_OK;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return c ? 1 : 0;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int sat_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

const char *sat_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int to_lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }
static int is_ascii_punct(int c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

/* Case-insensitive (ASCII) test that s[0..n) ends with the lowercase `suffix`. */
static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    if (k > n) return 0;
    for (size_t i = 0; i < k; i++)
        if (to_lower((unsigned char)s[n - k + i]) != suffix[i]) return 0;
    return 1;
}

/* ---- tokenizers ---- */

/* Every token is at most the whole text and gets one NUL, and there are at
 * most len tokens, so 2*len+1 bytes and len pointers always suffice. */
static void words_init(sat_words *w, size_t len)
{
    w->buf = sat_xmalloc(2 * len + 1);
    w->words = sat_xmalloc((len + 1) * sizeof *w->words);
    w->n = 0;
}

static char *words_end(const sat_words *w)
{
    if (!w->n) return w->buf;
    return w->words[w->n - 1] + strlen(w->words[w->n - 1]) + 1;
}

/* Append s[0..n) lowercased as the next token. */
static void emit(sat_words *w, const char *s, size_t n)
{
    char *p = words_end(w);
    for (size_t i = 0; i < n; i++) p[i] = (char)to_lower((unsigned char)s[i]);
    p[n] = 0;
    w->words[w->n++] = p;
}

void sat_words_free(sat_words *w)
{
    free(w->buf);
    free(w->words);
    memset(w, 0, sizeof *w);
}

int sat_tokenize_words(const char *text, sat_words *out)
{
    size_t len = strlen(text);
    words_init(out, len);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (is_space(c) || is_ascii_punct(c)) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !is_space((unsigned char)text[i]) && !is_ascii_punct((unsigned char)text[i])) i++;
        emit(out, text + start, i - start);
    }
    return out->n;
}

/* The tokens coco-caption deletes after PTB tokenization. */
static const char *const coco_punct[] = {"''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-",
                                         ".", "?", "!", ",", ":", "-", "--", "...", ";"};

static void emit_ptb(sat_words *w, const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof coco_punct / sizeof *coco_punct; i++)
        if (strlen(coco_punct[i]) == n && ends_with(s, n, coco_punct[i])) return;
    emit(w, s, n);
}

/* PTB splits these clitics off the word before them (and "n't"). */
static const char *const clitics[] = {"'s", "'re", "'ve", "'ll", "'d", "'m"};

static size_t clitic_start(const char *s, size_t n)
{
    if (n > 3 && ends_with(s, n, "n't")) return n - 3;
    if (n == 6 && ends_with(s, n, "cannot")) return 3;
    for (size_t i = 0; i < sizeof clitics / sizeof *clitics; i++) {
        size_t k = strlen(clitics[i]);
        if (n > k && ends_with(s, n, clitics[i])) return n - k;
    }
    return n;
}

static int is_clitic(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof clitics / sizeof *clitics; i++)
        if (strlen(clitics[i]) == n && ends_with(s, n, clitics[i])) return 1;
    return 0;
}

/* "u.s.", "a.m.": letters and dots, at least two dots, never two in a row. */
static int is_abbreviation(const char *s, size_t n)
{
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i > 0 && s[i - 1] == '.') return 0;
            dots++;
        } else if (!is_alpha((unsigned char)s[i])) {
            return 0;
        }
    }
    return dots >= 2;
}

/* A piece of a whitespace chunk between split characters: strip quotes and a
 * final period, split off a clitic. */
static void ptb_piece(sat_words *w, const char *s, size_t n)
{
    while (n > 0 && s[0] == '\'' && !is_clitic(s, n)) s++, n--; /* opening quote */
    while (n > 0 && (s[n - 1] == '\'' || (s[n - 1] == '.' && !is_abbreviation(s, n))))
        n--; /* closing quote, sentence-final period */
    if (n == 0) return;
    size_t cut = clitic_start(s, n);
    if (cut > 0 && cut < n) {
        emit_ptb(w, s, cut);
        emit_ptb(w, s + cut, n - cut);
    } else {
        emit_ptb(w, s, n);
    }
}

/* Split one whitespace-free chunk at PTB's separate-token characters. */
static void ptb_chunk(sat_words *w, const char *s, size_t n)
{
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t run = 1;
        int split = 0, keep = 0;
        if (c && strchr("\"()[]{};!?`", c)) {
            split = 1;
        } else if (c == '$' || c == '%' || c == '#') {
            split = keep = 1;
        } else if (c == ',' || c == ':') {
            /* 1,000 and 10:30 stay whole */
            split = !(i > 0 && is_digit((unsigned char)s[i - 1]) && i + 1 < n &&
                      is_digit((unsigned char)s[i + 1]));
        } else if ((c == '.' || c == '-') && i + 1 < n && s[i + 1] == (char)c) {
            while (i + run < n && s[i + run] == (char)c) run++; /* "...", "--" */
            split = 1;
        }
        if (!split) {
            i++;
            continue;
        }
        ptb_piece(w, s + start, i - start);
        if (keep) emit(w, s + i, 1);
        i += run;
        start = i;
    }
    ptb_piece(w, s + start, n - start);
}

int sat_tokenize_ptb(const char *text, sat_words *out)
{
    size_t len = strlen(text);
    words_init(out, len);
    for (size_t i = 0; i < len;) {
        if (is_space((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !is_space((unsigned char)text[i])) i++;
        ptb_chunk(out, text + start, i - start);
    }
    return out->n;
}

/* ---- caption files ---- */

static const char *const problem_names[SAT_CAP_NKINDS] = {
    [SAT_CAP_LONG_LINE] = "longer than 65536 bytes",
    [SAT_CAP_BAD_UTF8] = "not UTF-8 or with a NUL byte",
    [SAT_CAP_NO_TAB] = "without a tab",
    [SAT_CAP_BAD_NAME] = "malformed image name or caption index",
    [SAT_CAP_EMPTY] = "empty caption",
    [SAT_CAP_DUPLICATE] = "repeated NAME#N",
    [SAT_CAP_NOT_IN_SPLIT] = "in no split list",
    [SAT_CAP_NOT_ON_DISK] = "missing from the image directory",
};

/* Appends to a string of fixed size, "; "-separated. */
static void append_part(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append_part(char *buf, size_t size, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n && n + 2 < size) n += (size_t)snprintf(buf + n, size - n, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (n < size) vsnprintf(buf + n, size - n, fmt, ap);
    va_end(ap);
}

long sat_caption_problems_print(const sat_caption_problems *p, const char *name, FILE *f)
{
    char skipped[1024] = "", unused[1024] = "";
    long lines = 0, captions = 0, kinds = 0;
    for (int k = 0; k < SAT_CAP_NKINDS; k++) {
        if (!p->count[k]) continue;
        kinds++;
        if (k == SAT_CAP_NOT_IN_SPLIT || k == SAT_CAP_NOT_ON_DISK) {
            append_part(unused, sizeof unused, "%ld captions of %ld images %s (first at line %ld)",
                        p->count[k], p->images[k], problem_names[k], p->first_line[k]);
            captions += p->count[k];
        } else {
            append_part(skipped, sizeof skipped, "%s: %ld, first at line %ld", problem_names[k],
                        p->count[k], p->first_line[k]);
            lines += p->count[k];
        }
    }
    if (!kinds) return 0;
    fprintf(f, "%s: %s: note:", sat_progname, name);
    if (lines) fprintf(f, " %ld line%s skipped (%s)%s", lines, lines == 1 ? "" : "s", skipped, captions ? ";" : "");
    if (captions) fprintf(f, " not used: %s", unused);
    fputc('\n', f);
    return kinds;
}

#define MAX_NAME 255
#define MAX_INDEX_DIGITS 6

struct sat_caption_reader {
    FILE *f;
    const char *name;
    sat_caption_options opt;
    char *line;                /* SAT_CAPTION_MAX_LINE + 1 bytes */
    long lineno;
    sat_caption_problems problems;
    sat_strtab seen;           /* "NAME#N" of the good entries so far */
    sat_strtab checked;        /* images looked up in opt.image_dir */
    sat_strtab rejected;       /* images of NOT_IN_SPLIT, NOT_ON_DISK lines */
    unsigned char *on_disk;    /* on_disk[id of checked] */
    int is_json;               /* a JSON caption file (starts with '{'): */
    const sat_json_captions *json; /* its entries (own_json, or a caption file's), */
    sat_json_captions own_json;
    size_t json_next;          /* the next one to hand out */
    char err[SAT_ERR_MAX];
};

static sat_caption_reader *reader_new(FILE *f, const char *name, const sat_caption_options *opt)
{
    sat_caption_reader *r = sat_xcalloc(1, sizeof *r);
    r->f = f;
    r->name = name;
    if (opt) r->opt = *opt;
    r->line = sat_xmalloc(SAT_CAPTION_MAX_LINE + 1);
    sat_strtab_init(&r->seen);
    sat_strtab_init(&r->checked);
    sat_strtab_init(&r->rejected);
    return r;
}

/* 1 when f's next byte is '{' (a JSON caption file), which stays unread. */
static int starts_json(FILE *f)
{
    int c = getc(f);
    if (c != EOF) ungetc(c, f);
    return c == '{';
}

sat_caption_reader *sat_caption_reader_open(FILE *f, const char *name, const sat_caption_options *opt)
{
    sat_caption_reader *r = reader_new(f, name, opt);
    if (starts_json(f)) {
        r->is_json = 1;
        r->json = &r->own_json;
        if (sat_json_captions_load(&r->own_json, f, name, r->err, sizeof r->err) < 0) r->is_json = -1;
    }
    return r;
}

void sat_caption_reader_close(sat_caption_reader *r)
{
    if (!r) return;
    free(r->line);
    free(r->on_disk);
    sat_strtab_free(&r->seen);
    sat_strtab_free(&r->checked);
    sat_strtab_free(&r->rejected);
    sat_json_captions_free(&r->own_json);
    free(r);
}

const sat_caption_problems *sat_caption_reader_problems(const sat_caption_reader *r) { return &r->problems; }
long sat_caption_reader_lines(const sat_caption_reader *r) { return r->lineno; }
const char *sat_caption_reader_error(const sat_caption_reader *r) { return r->err; }

static int valid_image_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == ' ' || c == '/' || c == '#') return 0;
    }
    return ends_with(s, n, ".jpg") || ends_with(s, n, ".jpeg") || ends_with(s, n, ".png");
}

/* Split "NAME#N" in place: NUL at the '#', *index = N.  0 if malformed. */
static int parse_name_index(char *field, int *index)
{
    char *hash = strchr(field, '#');
    if (!hash || !valid_image_name(field, (size_t)(hash - field))) return 0;
    const char *digits = hash + 1;
    size_t nd = strlen(digits);
    if (nd == 0 || nd > MAX_INDEX_DIGITS) return 0;
    for (size_t i = 0; i < nd; i++)
        if (!is_digit((unsigned char)digits[i])) return 0;
    *index = atoi(digits);
    *hash = 0;
    return 1;
}

static int image_on_disk(sat_caption_reader *r, const char *image)
{
    int added;
    long id = sat_strtab_add(&r->checked, image, &added);
    if (added) {
        r->on_disk = sat_xrealloc(r->on_disk, r->checked.n);
        size_t n = strlen(r->opt.image_dir) + strlen(image) + 2;
        char *path = sat_xmalloc(n);
        snprintf(path, n, "%s/%s", r->opt.image_dir, image);
        struct stat st;
        r->on_disk[id] = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
    }
    return r->on_disk[id];
}

static char *trim(char *s)
{
    while (is_space((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_space((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space((unsigned char)s[i])) return 0;
    return 1;
}

static sat_caption_problem check_entry(sat_caption_reader *r, sat_caption_entry *e);

/* Parse the line in r->line; SAT_CAP_NKINDS when it is a good entry. */
static sat_caption_problem parse_line(sat_caption_reader *r, size_t len, sat_caption_entry *e)
{
    char *s = r->line;
    if (!sat_utf8_valid(s, len)) return SAT_CAP_BAD_UTF8;
    char *tab = strchr(s, '\t');
    if (!tab) return SAT_CAP_NO_TAB;
    *tab = 0;
    if (!parse_name_index(s, &e->index)) return SAT_CAP_BAD_NAME;
    e->image = s;
    e->text = trim(tab + 1);
    return check_entry(r, e);
}

/* The checks of a parsed entry (e->image a valid name, e->text trimmed);
 * SAT_CAP_NKINDS when it is good. */
static sat_caption_problem check_entry(sat_caption_reader *r, sat_caption_entry *e)
{
    if (!*e->text) return SAT_CAP_EMPTY;
    char key[MAX_NAME + MAX_INDEX_DIGITS + 2];
    snprintf(key, sizeof key, "%s#%d", e->image, e->index);
    int added;
    sat_strtab_add(&r->seen, key, &added);
    if (!added) return SAT_CAP_DUPLICATE;
    if (r->opt.known_images && sat_strtab_find(r->opt.known_images, e->image) < 0)
        return SAT_CAP_NOT_IN_SPLIT;
    if (r->opt.image_dir && !image_on_disk(r, e->image)) return SAT_CAP_NOT_ON_DISK;
    e->line = r->lineno;
    return SAT_CAP_NKINDS;
}

static void note_problem(sat_caption_reader *r, sat_caption_problem k, const char *image)
{
    if (!r->problems.count[k]++) r->problems.first_line[k] = r->lineno;
    if (k != SAT_CAP_NOT_IN_SPLIT && k != SAT_CAP_NOT_ON_DISK) return;
    int added;
    sat_strtab_add(&r->rejected, image, &added);
    r->problems.images[k] += added;
}

/* The next entry of a JSON file as if it were a line (its number: the
 * caption's in file order), its text copied to r->line to be trimmed. */
static sat_caption_problem json_entry(sat_caption_reader *r, sat_caption_entry *e)
{
    const sat_json_caption *j = &r->json->entries[r->json_next++];
    r->lineno++;
    e->image = j->image;
    e->index = j->index;
    size_t n = strlen(j->text);
    if (n > SAT_CAPTION_MAX_LINE) return SAT_CAP_LONG_LINE;
    if (!sat_utf8_valid(j->text, n) || !sat_utf8_valid(j->image, strlen(j->image)))
        return SAT_CAP_BAD_UTF8;
    if (!valid_image_name(j->image, strlen(j->image))) return SAT_CAP_BAD_NAME;
    memcpy(r->line, j->text, n + 1);
    e->text = trim(r->line);
    return check_entry(r, e);
}

int sat_caption_reader_next(sat_caption_reader *r, sat_caption_entry *e)
{
    if (r->is_json < 0) return -1;
    while (r->is_json && r->json_next < r->json->n) {
        sat_caption_problem k = json_entry(r, e);
        if (k == SAT_CAP_NKINDS) return 1;
        note_problem(r, k, e->image);
    }
    if (r->is_json) return 0;
    for (;;) {
        size_t len;
        int st = sat_read_line(r->f, r->line, SAT_CAPTION_MAX_LINE + 1, &len);
        if (st == SAT_LINE_EOF) {
            if (!ferror(r->f)) return 0;
            snprintf(r->err, sizeof r->err, "%s: read error: %s", r->name, strerror(errno ? errno : EIO));
            return -1;
        }
        r->lineno++;
        if (st == SAT_LINE_TOO_LONG) {
            note_problem(r, SAT_CAP_LONG_LINE, NULL);
            continue;
        }
        if (is_blank(r->line, len)) continue;
        sat_caption_problem k = parse_line(r, len, e);
        if (k == SAT_CAP_NKINDS) return 1;
        note_problem(r, k, e->image);
    }
}

/* ---- caption database ---- */

static void refs_add(sat_refs *refs, const char *image, const char *text)
{
    int added;
    long id = sat_strtab_add(&refs->images, image, &added);
    if (added) {
        refs->captions = sat_xrealloc(refs->captions, refs->images.cap * sizeof *refs->captions);
        refs->ncaptions = sat_xrealloc(refs->ncaptions, refs->images.cap * sizeof *refs->ncaptions);
        refs->captions[id] = NULL;
        refs->ncaptions[id] = 0;
    }
    int n = refs->ncaptions[id];
    if ((n & (n - 1)) == 0) /* 0, 1, 2, 4, ...: double the capacity */
        refs->captions[id] = sat_xrealloc(refs->captions[id], (size_t)(n ? 2 * n : 1) * sizeof(char *));
    refs->captions[id][n] = sat_xstrdup(text);
    refs->ncaptions[id] = n + 1;
    refs->nentries++;
}

struct sat_caption_file {
    char *path;
    FILE *f;                /* a text file: read by sat_refs_read */
    int is_json, read;
    sat_json_captions json; /* a JSON file: parsed at open */
};

sat_caption_file *sat_caption_file_open(const char *path, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        sat_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sat_caption_file *cf = sat_xcalloc(1, sizeof *cf);
    cf->path = sat_xstrdup(path);
    cf->f = f;
    if (starts_json(f)) {
        cf->is_json = 1;
        if (sat_json_captions_load(&cf->json, f, path, err, errlen) < 0) {
            sat_caption_file_close(cf);
            return NULL;
        }
    }
    return cf;
}

void sat_caption_file_close(sat_caption_file *cf)
{
    if (!cf) return;
    if (cf->f != stdin) fclose(cf->f);
    sat_json_captions_free(&cf->json);
    free(cf->path);
    free(cf);
}

/* A reader of the caption file's entries; NULL with err when a text file
 * cannot be read again (stdin, or a file that cannot seek). */
static sat_caption_reader *caption_file_reader(sat_caption_file *cf, const sat_caption_options *opt,
                                               char *err, size_t errlen)
{
    if (!cf->is_json && cf->read && (cf->f == stdin || fseek(cf->f, 0, SEEK_SET) < 0)) {
        sat_fail(err, errlen, "%s: the caption file cannot be read twice", cf->path);
        return NULL;
    }
    cf->read = 1;
    sat_caption_reader *r = reader_new(cf->f, cf->path, opt);
    r->is_json = cf->is_json;
    r->json = &cf->json;
    return r;
}

int sat_refs_read(sat_refs *refs, sat_caption_file *cf, const sat_caption_options *opt,
                  char *err, size_t errlen)
{
    memset(refs, 0, sizeof *refs);
    sat_strtab_init(&refs->images);
    sat_caption_reader *r = caption_file_reader(cf, opt, err, errlen);
    if (!r) return -1;
    sat_caption_entry e;
    int st;
    while ((st = sat_caption_reader_next(r, &e)) == 1) refs_add(refs, e.image, e.text);
    if (st < 0) sat_fail(err, errlen, "%s", sat_caption_reader_error(r));
    refs->problems = *sat_caption_reader_problems(r);
    refs->lines = sat_caption_reader_lines(r);
    sat_caption_reader_close(r);
    return st < 0 ? -1 : 0;
}

int sat_refs_load(sat_refs *refs, const char *path, const sat_caption_options *opt,
                  char *err, size_t errlen)
{
    sat_caption_file *cf = sat_caption_file_open(path, err, errlen);
    if (!cf) {
        memset(refs, 0, sizeof *refs);
        sat_strtab_init(&refs->images);
        return -1;
    }
    int rc = sat_refs_read(refs, cf, opt, err, errlen);
    sat_caption_file_close(cf);
    return rc;
}

void sat_refs_free(sat_refs *refs)
{
    for (size_t i = 0; i < refs->images.n; i++) {
        for (int j = 0; j < refs->ncaptions[i]; j++) free(refs->captions[i][j]);
        free(refs->captions[i]);
    }
    free(refs->captions);
    free(refs->ncaptions);
    sat_strtab_free(&refs->images);
    memset(refs, 0, sizeof *refs);
}

long sat_refs_find(const sat_refs *refs, const char *image)
{
    return sat_strtab_find(&refs->images, image);
}

/* ---- splits ---- */

long sat_split_load(const char *path, sat_strtab *set, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sat_fail(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[MAX_NAME + 2];
    size_t len;
    long lineno = 0, count = 0;
    int st;
    const char *bad = NULL;
    while (!bad && (st = sat_read_line(f, line, sizeof line, &len)) != SAT_LINE_EOF) {
        lineno++;
        if (st == SAT_LINE_TOO_LONG) {
            bad = "line longer than 256 bytes";
            break;
        }
        if (!sat_utf8_valid(line, len)) bad = "not UTF-8 text";
        if (bad) break;
        char *name = trim(line);
        if (!*name) continue;
        if (strpbrk(name, "/# \t\v\f\r")) bad = "an image name with '/', '#' or whitespace";
        else sat_strtab_add(set, name, NULL), count++;
    }
    if (bad) sat_fail(err, errlen, "%s:%ld: %s", path, lineno, bad);
    else if (ferror(f)) sat_fail(err, errlen, "%s: read error: %s", path, strerror(errno ? errno : EIO));
    int failed = bad || ferror(f);
    fclose(f);
    return failed ? -1 : count;
}

/* "@NAME[+NAME...]": the images of those splits in a Karpathy caption file. */
static long json_split_load(const char *names, const sat_caption_file *cf, sat_strtab *set, char *err,
                            size_t errlen)
{
    if (!cf) return sat_fail(err, errlen, "@%s: a split of the caption file, but none is given", names);
    if (!cf->is_json) return sat_fail(err, errlen, "@%s: %s is not a JSON caption file", names, cf->path);
    const sat_json_captions *c = &cf->json;
    if (!c->has_splits)
        return sat_fail(err, errlen, "@%s: %s has no splits (COCO's captions_*.json: give a list file)",
                        names, cf->path);
    char *list = sat_xstrdup(names), *save = NULL;
    long count = 0;
    int rc = 0;
    for (char *name = strtok_r(list, "+", &save); name; name = strtok_r(NULL, "+", &save)) {
        long found = 0;
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->entries[i].split, name) == 0) {
                int added;
                sat_strtab_add(set, c->entries[i].image, &added);
                found += added;
            }
        if (!found) {
            rc = sat_fail(err, errlen, "@%s: no image of %s is in split '%s'", names, cf->path, name);
            break;
        }
        count += found;
    }
    free(list);
    return rc < 0 ? -1 : count;
}

long sat_split_resolve(const char *arg, const sat_caption_file *captions, sat_strtab *set, char *err,
                       size_t errlen)
{
    return arg[0] == '@' ? json_split_load(arg + 1, captions, set, err, errlen)
                         : sat_split_load(arg, set, err, errlen);
}

void sat_split_resolve_or_die(const char *arg, const sat_caption_file *captions, sat_strtab *set)
{
    char err[SAT_ERR_MAX];
    if (sat_split_resolve(arg, captions, set, err, sizeof err) < 0) sat_die("%s", err);
}
