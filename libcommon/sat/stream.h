/* stream.h — reading and writing sat streams (spec: formats/stream.md).
 *
 * A stream is a sequence of msgpack maps ("records"), each with a string
 * `type`.  The reader pulls one record at a time from a FILE with memory
 * bounded by the largest record; it finds each record's extent with a small
 * scanner of its own (so it can refuse absurd container sizes and report
 * truncation with the record index and byte offset) and then lets msgpack-c
 * build the object tree.  The raw bytes of every record are available, so a
 * stage passes through what it does not consume byte for byte.
 *
 *     sat_reader *r = sat_reader_open(stdin, "stdin", 0);
 *     sat_record rec;
 *     int st;
 *     while ((st = sat_reader_next(r, &rec)) != SAT_READ_END) {
 *         if (st == SAT_READ_BAD) { sat_warn("%s", sat_reader_error(r)); continue; }
 *         if (st == SAT_READ_FATAL) { sat_warn("%s", sat_reader_error(r)); break; }
 *         if (sat_record_is(&rec, "features")) ... else sat_write_raw(out, &rec);
 *     }
 *     sat_reader_close(r);
 *
 * which every program runs over its inputs through sat_each_record.
 */
#ifndef SAT_STREAM_H
#define SAT_STREAM_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#define SAT_STREAM_VERSION 1
#define SAT_DEFAULT_MAX_RECORD ((size_t)256 << 20)

typedef struct sat_reader sat_reader;

typedef struct {
    msgpack_object obj;      /* the record, a map (valid until the next call) */
    const char *type;        /* its `type`, NUL-terminated copy */
    const void *raw;         /* the record's bytes exactly as read */
    size_t raw_len;
    size_t index;            /* 0-based record index in the stream */
    uint64_t offset;         /* byte offset of the record's first byte */
} sat_record;

enum {
    SAT_READ_OK = 1,         /* a record */
    SAT_READ_END = 0,        /* clean end of stream */
    SAT_READ_BAD = -1,       /* this record is unusable (not a map, no type, nested too deep,
                              * not msgpack); garbage after it up to the next record is skipped
                              * and counted in the same message; the next call goes on */
    SAT_READ_FATAL = -2,     /* truncated, oversized, a read error, or an input that is no
                              * sat stream at all (said from its first bytes): stop reading it */
};

/* `name` is used in messages ("stdin", a path).  max_record 0 = default. */
sat_reader *sat_reader_open(FILE *f, const char *name, size_t max_record);
/* A reader of the len bytes at data (not copied; they must outlive it). */
sat_reader *sat_reader_open_mem(const void *data, size_t len, const char *name, size_t max_record);
int sat_reader_next(sat_reader *r, sat_record *rec);
/* The last error as "NAME: record I at byte B: problem". */
const char *sat_reader_error(const sat_reader *r);
void sat_reader_close(sat_reader *r);

/* ---- every record of every input ----
 * The loop of every program that reads streams, with netpbm's pm_openr
 * discipline: each FILE, or "-" for stdin (named "stdin" in messages), is
 * opened in turn; one that cannot be opened is reported and the others are
 * read; a bad record is reported and the reader goes on; a fatal problem
 * (truncated, oversized, no sat stream) is reported and ends that input.
 * Reports go through sat_warn, so the exit status says there were some. */
typedef struct {
    size_t max_record;       /* 0: the default */
    int fatal_dies;          /* a fatal problem ends the program (sat_die), not the input */
    /* Each good record; `input` names its stream. */
    void (*record)(void *ctx, const sat_record *rec, const char *input);
    void (*input_done)(void *ctx, FILE *f); /* after each input read; NULL: nothing */
    void *ctx;
} sat_each;

/* The records of files[0..n) (n == 0: stdin). */
void sat_each_record(const sat_each *e, char *const *files, int n);
/* The records of one open input. */
void sat_each_record_of(const sat_each *e, FILE *f, const char *name);
/* The records of a reader (sat_reader_open_mem); the caller closes it. */
void sat_each_record_in(const sat_each *e, sat_reader *r, const char *name);

int sat_record_is(const sat_record *rec, const char *type);
/* Whether a byte can start a msgpack map (0x80..0x8f, 0xde, 0xdf), i.e. what
 * a sat stream or model file starts with. */
int sat_is_map_lead(int byte);

/* Map access (NULL / -1 when the key is missing or of another type). */
const msgpack_object *sat_map_get(const msgpack_object *map, const char *key);
/* Copy a str field into a new malloc'd NUL-terminated string; NULL if absent,
 * not a str, or containing NUL. */
char *sat_map_strdup(const msgpack_object *map, const char *key);
/* Why sat_map_strdup would give NULL, for messages ("'id' %s"): "is missing",
 * "is not a string", "contains a NUL byte"; NULL when it would not. */
const char *sat_map_str_problem(const msgpack_object *map, const char *key);
int sat_map_uint(const msgpack_object *map, const char *key, uint64_t *out);
int sat_map_float(const msgpack_object *map, const char *key, double *out);
int sat_map_bin(const msgpack_object *map, const char *key, const void **data, size_t *len);

/* Writing: records are packed into a buffer, then written with one fwrite.
 * A write error (ENOSPC, /dev/full, EIO) is fatal with a one-line message;
 * EPIPE ends the program quietly with status 0 is NOT done here — SIGPIPE's
 * default action ends it (quietly, as netpbm and coreutils do).
 *
 * A record's fields are counted as they are packed (sat_field*), and its map
 * header, of that count, is put before them by sat_writer_seal: no writer
 * counts its keys by hand.
 *
 *     sat_writer_begin(w, "thumbnail");    (packs `type` and `v`)
 *     sat_field_str(w, "id", id);
 *     sat_field(w, "sizes"); msgpack_pack_array(&w->pk, 2); ...
 *     sat_writer_seal(w);                  (w->buf is the record)
 *     sat_writer_end(w);                   (written) */
typedef struct {
    FILE *f;
    const char *name;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    uint32_t nfields;        /* fields of the record being packed */
} sat_writer;

/* f may be NULL for a writer that only packs into w->buf. */
void sat_writer_init(sat_writer *w, FILE *f, const char *name);
/* Start a record: clears the buffer and packs its `type` and `v` fields. */
void sat_writer_begin(sat_writer *w, const char *type);
/* Put the map header of the fields packed since sat_writer_begin before
 * them: w->buf then holds the whole record. */
void sat_writer_seal(sat_writer *w);
/* Write the buffered (sealed) record. */
void sat_writer_end(sat_writer *w);
void sat_write_raw(sat_writer *w, const sat_record *rec);
/* Write n bytes as they are (a record packed elsewhere). */
void sat_writer_write(sat_writer *w, const void *p, size_t n);
/* Flush; dies on a write error.  Frees the buffer. */
void sat_writer_close(sat_writer *w);

/* A field of the record being packed, counted: its key, then (sat_field)
 * the value the caller packs with w->pk, or the value given. */
void sat_field(sat_writer *w, const char *key);
void sat_field_str(sat_writer *w, const char *key, const char *val);
void sat_field_uint(sat_writer *w, const char *key, uint64_t val);
void sat_field_float(sat_writer *w, const char *key, double val);
void sat_field_bin(sat_writer *w, const char *key, const void *data, size_t len);

/* Pack helpers for the entries of nested maps (and of model files). */
void sat_pack_str(msgpack_packer *pk, const char *s);
void sat_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void sat_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val);
void sat_pack_kv_float(msgpack_packer *pk, const char *key, double val);
void sat_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t len);

/* ---- features records ---- */
/* f16, f32, or u8: affine-quantized per record, value = scale × (q − zero_point),
 * the way the TFLite encoder itself stores activations. */
typedef enum { SAT_F16 = 0, SAT_F32 = 1, SAT_U8 = 2 } sat_dtype;

/* "f16", "f32", "u8"; bytes per value; the dtype a name gives (-1: none). */
const char *sat_dtype_name(sat_dtype t);
size_t sat_dtype_size(sat_dtype t);
int sat_dtype_parse(const char *name);

/* A features record holds the maps of up to this many views of its image
 * (`views`: the image, and its left-right mirror flipped back). */
#define SAT_MAX_VIEWS 2

typedef struct {
    char *id;
    uint32_t h, w, c;
    uint32_t views;          /* maps in data, each h*w*c (parsed: 1 when absent; packed: 0 = 1) */
    sat_dtype dtype;
    float scale;             /* u8 only: value = scale × (q − zero_point) */
    uint32_t zero_point;
    const void *data;        /* points into the record (f16/f32 LE): the views one after the other */
    size_t data_len;
    uint32_t image_width, image_height;
    char *encoder_name, *encoder_sha256;
    uint32_t encoder_size, encoder_stride;
    const char *encoder_precision; /* written when not NULL ("int8"); not parsed */
    const void *thumbnail;   /* PNG bytes inside the record, or NULL */
    size_t thumbnail_len;
} sat_features;

/* Parse a features record.  0, or -1 with err ("record 3 (id x.jpg): data has 1000 bytes, expected 501760").
 * Checks sizes and that every value is finite. free with sat_features_free. */
int sat_features_parse(const sat_record *rec, sat_features *f, char *err, size_t errlen);
/* sat_features_parse but for the values, which are not looked at: the
 * record's layout (sat-dump shows the tensor even when a value is NaN). */
int sat_features_parse_layout(const sat_record *rec, sat_features *f, char *err, size_t errlen);
void sat_features_free(sat_features *f);
/* The record's views (its `views`, 1 for 0) and its values: views*h*w*c. */
uint32_t sat_features_views(const sat_features *f);
size_t sat_features_count(const sat_features *f);
/* Convert the tensor to views*h*w*c floats (u8: dequantized). */
void sat_features_to_f32(const sat_features *f, float *out);
/* Pack a features record into w's buffer (sealed: the caller calls
 * sat_writer_end, or takes w->buf); values are views*h*w*c floats (`views`
 * is written only when above 1, so a one-view record is as before),
 * stored as f->dtype (u8: the scale and zero point are chosen here, from the
 * values' range widened to hold 0, and f's are ignored). */
void sat_features_pack(sat_writer *w, const sat_features *f, const float *values);

/* ---- thumbnail records ---- */
/* A `thumbnail` record: what a captioning stage passes on of a features
 * record it does not keep, so that a sink such as sat-heatmap still has the
 * image.  A features record has the same two keys, so the parser reads the
 * thumbnail of either. */
typedef struct {
    char *id;
    const void *png;         /* PNG bytes (inside the record when parsed) */
    size_t len;
} sat_thumbnail;

/* Pack a thumbnail record into w (sealed). */
void sat_thumbnail_pack(sat_writer *w, const sat_thumbnail *t);
/* The id and thumbnail of a thumbnail or features record: 0, or -1 when it
 * has no string id or no thumbnail bin.  free t->id. */
int sat_thumbnail_parse(const sat_record *rec, sat_thumbnail *t);

/* ---- caption records ---- */
/* What a reader accepts of a caption's attention (sat-heatmap draws it). */
#define SAT_CAPTION_MAX_GRID 256                     /* alpha_h, alpha_w */
#define SAT_CAPTION_MAX_WORDS 1000
#define SAT_CAPTION_MAX_WORD_BYTES 256

typedef struct {
    char *name, *sha256;
} sat_model_ref;

/* A `caption` record, every key of formats/stream.md.  The packer reads
 * what the fields point to; the parser allocates them (sat_caption_record_free). */
typedef struct {
    char *id;
    char *text;
    char **words;
    uint32_t nwords;
    int *tokens;             /* nwords */
    double logprob;
    char *method, *attention;
    float *alpha;            /* nwords × alpha_h × alpha_w */
    uint32_t alpha_h, alpha_w;
    sat_model_ref *models;   /* `model`, or with nmodels > 1 the `ensemble` (model is its first) */
    int nmodels;
    int *locations;          /* hard attention: one cell per word; else NULL */
    float *word_logprobs;    /* teacher forcing: nwords + 1 (with `perplexity`); else NULL */
    double perplexity;
    int64_t rank;            /* -1: not in an n-best list */
} sat_caption_record;

/* Pack a caption record into w (sealed): the thirteen keys every writer
 * writes (c needs id, text, method, attention and a model), then
 * `ensemble`, `locations`, `word_logprobs` and `perplexity`, and `rank` when
 * c has them. */
void sat_caption_record_pack(sat_writer *w, const sat_caption_record *c);

/* The parts of a caption record a reader cannot do without. */
enum {
    SAT_CAPTION_TEXT = 1,      /* `id` and `text` (sat-eval, sat-attend) */
    SAT_CAPTION_ATTENTION = 2, /* `id`, `v` 1, `words`, the grid in [1, SAT_CAPTION_MAX_GRID]
                                * and either `locations` (one cell per word) or `alpha`
                                * (exactly nwords × alpha_h × alpha_w finite values >= 0);
                                * locations win when both are there (sat-heatmap) */
};
/* Parse a caption record: every field that is there and well formed is
 * filled in (the others are NULL, 0, or rank -1); 0, or -1 when a part in
 * `need` is missing or bad, with why: "'id' is missing" (c->id NULL),
 * "'text' is not a string", "caption has no alpha (...)".  Free c either way. */
int sat_caption_record_parse(const sat_record *rec, int need, sat_caption_record *c, char *why,
                             size_t whylen);
void sat_caption_record_free(sat_caption_record *c);

#endif
