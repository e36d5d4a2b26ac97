/* captions.h — caption files, image splits, tokenizers (spec: formats/captions.md).
 *
 * A caption file has one caption per line, `NAME.jpg#N<TAB>text` (the
 * Flickr8k/Flickr30k "token" format).  It is read as a stream, one line at a
 * time, with a bounded line length; bad lines are counted by kind (with the
 * line number of the first of each kind) and skipped, never fatal:
 *
 *     sat_refs refs;
 *     sat_caption_options opt = {.image_dir = "images"};
 *     if (sat_refs_load(&refs, "Flickr8k.token.txt", &opt, err, sizeof err) < 0) die(err);
 *     sat_caption_problems_print(&refs.problems, "Flickr8k.token.txt", stderr);
 *     long i = sat_refs_find(&refs, "1000268201_693b08cb0e.jpg");
 *     for (int j = 0; i >= 0 && j < refs.ncaptions[i]; j++) puts(refs.captions[i][j]);
 *
 * Two tokenizers: sat_tokenize_words() makes the words of the model's
 * vocabulary (punctuation dropped); sat_tokenize_ptb() imitates the
 * coco-caption evaluation toolkit (Stanford PTBTokenizer, then its list of
 * punctuation tokens removed) so that the metrics are comparable with
 * published numbers.
 */
#ifndef SAT_CAPTIONS_H
#define SAT_CAPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- string table: strings interned to dense ids 0, 1, 2, ... ---- */
typedef struct {
    char **keys;       /* keys[id], NUL-terminated copies */
    uint64_t *hashes;  /* hashes[id] */
    size_t n, cap;
    uint32_t *slots;   /* open addressing: id + 1, 0 = empty; nslots a power of 2 */
    size_t nslots;
} sat_strtab;

void sat_strtab_init(sat_strtab *t);
void sat_strtab_free(sat_strtab *t);
/* The id of s, or -1. */
long sat_strtab_find(const sat_strtab *t, const char *s);
/* The id of s, adding a copy when new (*added = 1 then, if added is not NULL). */
long sat_strtab_add(sat_strtab *t, const char *s, int *added);

/* ---- bounded line reading ---- */
#define SAT_CAPTION_MAX_LINE 65536

enum { SAT_LINE_OK = 1, SAT_LINE_EOF = 0, SAT_LINE_TOO_LONG = -1 };

/* Read one line into buf (capacity cap >= 2) without its "\n" or "\r\n";
 * *len is its length (it may contain NUL bytes).  A line that does not fit is
 * read to its end and discarded: SAT_LINE_TOO_LONG.  SAT_LINE_EOF at the end
 * of the input (check ferror() for a read error). */
int sat_read_line(FILE *f, char *buf, size_t cap, size_t *len);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, surrogates, or code points
 * beyond U+10FFFF) and has no NUL byte. */
int sat_utf8_valid(const char *s, size_t n);

/* Basename of a path ("a/b/c.jpg" -> "c.jpg"), a pointer into path. */
const char *sat_path_basename(const char *path);

/* ---- tokenizers ---- */
typedef struct {
    char **words;  /* n tokens, NUL-terminated, pointing into buf */
    int n;
    char *buf;
} sat_words;

/* Vocabulary words: ASCII letters lowercased (other UTF-8 bytes kept as
 * they are), split on whitespace and ASCII punctuation, punctuation dropped.
 * "A dog's T-shirt." -> a dog s t shirt.  Returns the number of words. */
int sat_tokenize_words(const char *text, sat_words *out);
/* Evaluation tokens as coco-caption's PTBTokenizer + punctuation removal:
 * "A dog's T-shirt." -> a dog 's t-shirt;  "Don't!" -> do n't. */
int sat_tokenize_ptb(const char *text, sat_words *out);
void sat_words_free(sat_words *w);

/* ---- caption files ---- */
typedef enum {
    SAT_CAP_LONG_LINE,    /* longer than SAT_CAPTION_MAX_LINE bytes */
    SAT_CAP_BAD_UTF8,     /* invalid UTF-8 or a NUL byte */
    SAT_CAP_NO_TAB,       /* no tab between name and caption */
    SAT_CAP_BAD_NAME,     /* not NAME.jpg#N (or .jpeg, .png) */
    SAT_CAP_EMPTY,        /* caption text empty or only whitespace */
    SAT_CAP_DUPLICATE,    /* NAME#N seen before */
    SAT_CAP_NOT_IN_SPLIT, /* image in none of the split lists (when given) */
    SAT_CAP_NOT_ON_DISK,  /* image not a file in the image directory (when given) */
    SAT_CAP_NKINDS
} sat_caption_problem;

typedef struct {
    long count[SAT_CAP_NKINDS];
    long first_line[SAT_CAP_NKINDS];  /* 1-based line of the first occurrence */
    long images[SAT_CAP_NKINDS];      /* NOT_IN_SPLIT, NOT_ON_DISK: distinct images */
} sat_caption_problems;

/* What a caption file had to skip or leave unused, on one line of
 * information: "PROG: NAME: note: 1 line skipped (malformed image name or
 * caption index: 1, first at line 6731); not used: 5459 captions of 1092
 * images in no split list (first at line 211)"; nothing when the file was
 * clean.  The kinds are checked in enum order; a line counts once, under the
 * first kind it fails.  Returns the number of kinds that occurred. */
long sat_caption_problems_print(const sat_caption_problems *p, const char *name, FILE *f);

typedef struct {
    const sat_strtab *known_images; /* NULL: any image; else others are SAT_CAP_NOT_IN_SPLIT */
    const char *image_dir;          /* NULL: no check; else missing files are SAT_CAP_NOT_ON_DISK */
} sat_caption_options;

/* One good caption line. */
typedef struct {
    const char *image;  /* "1000268201_693b08cb0e.jpg" (valid until the next call) */
    int index;          /* N of NAME#N */
    const char *text;   /* the caption, surrounding whitespace trimmed */
    long line;          /* 1-based line number */
} sat_caption_entry;

typedef struct sat_caption_reader sat_caption_reader;

/* `name` is used in messages; opt may be NULL.  The options' pointers must
 * stay valid while the reader is used. */
sat_caption_reader *sat_caption_reader_open(FILE *f, const char *name,
                                            const sat_caption_options *opt);
/* 1 with the next good entry, 0 at the end (problems counted on the way),
 * -1 on a read error (message from sat_caption_reader_error). */
int sat_caption_reader_next(sat_caption_reader *r, sat_caption_entry *e);
const sat_caption_problems *sat_caption_reader_problems(const sat_caption_reader *r);
long sat_caption_reader_lines(const sat_caption_reader *r);
const char *sat_caption_reader_error(const sat_caption_reader *r);
void sat_caption_reader_close(sat_caption_reader *r);

/* The reference captions: all good captions of a file, grouped by image
 * (images in order of first appearance, captions in file order).  A caption
 * a model generated, a hypothesis, is another thing: captioner.h's
 * sat_caption. */
typedef struct {
    sat_strtab images;        /* image i is images.keys[i] */
    char ***captions;         /* captions[i][0 .. ncaptions[i]) */
    int *ncaptions;
    long nentries;            /* captions kept */
    long lines;               /* lines read */
    sat_caption_problems problems;
} sat_refs;

/* A caption file opened once for several uses, e.g. resolving "@SPLIT"
 * arguments and then loading its captions: a JSON file is parsed here, once
 * (a COCO-sized one takes seconds); a text file is read when loaded.
 * "-" is stdin.  NULL with err when it cannot be opened or is bad JSON. */
typedef struct sat_caption_file sat_caption_file;
sat_caption_file *sat_caption_file_open(const char *path, char *err, size_t errlen);
void sat_caption_file_close(sat_caption_file *cf);

/* 0, or -1 with err when the file cannot be read (then refs is empty but valid
 * to free).  opt may be NULL.  A text file on stdin can be read once. */
int sat_refs_read(sat_refs *refs, sat_caption_file *cf, const sat_caption_options *opt,
                  char *err, size_t errlen);
/* sat_refs_read of the file at path (or "-"), for a single use. */
int sat_refs_load(sat_refs *refs, const char *path, const sat_caption_options *opt,
                  char *err, size_t errlen);
void sat_refs_free(sat_refs *refs);
/* Index of an image, or -1 when it has no captions. */
long sat_refs_find(const sat_refs *refs, const char *image);

/* ---- splits ---- */
/* Add the image names of a split list (one per line; surrounding whitespace
 * trimmed, blank lines skipped) to `set`.  Returns the number of names read
 * (duplicates included), or -1 with err (unreadable, a line too long, not
 * UTF-8, a name with a '/' or '#'). */
long sat_split_load(const char *path, sat_strtab *set, char *err, size_t errlen);
/* A split given on a command line: a list file (sat_split_load), or
 * "@NAME[+NAME...]", the images that the caption file `captions` (Karpathy's
 * dataset_*.json; NULL: none given) puts in those splits, e.g.
 * "@train+restval".  Returns the number of images added, or -1 with err
 * (also when a split has no image). */
long sat_split_resolve(const char *arg, const sat_caption_file *captions, sat_strtab *set, char *err,
                       size_t errlen);
/* sat_split_resolve for a program's options: dies with the message instead. */
void sat_split_resolve_or_die(const char *arg, const sat_caption_file *captions, sat_strtab *set);

#endif
