/* stream.c — see stream.h and formats/stream.md. */
#include "sat/stream.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "sat/half.h"
#include "sat/sniff.h"
#include "sat/util.h"

#define MAX_DEPTH 32

struct sat_reader {
    FILE *f;
    char *name;
    size_t max_record;
    unsigned char *buf;      /* buf[start, end) holds unread bytes */
    size_t cap, start, end;
    int eof;
    uint64_t offset;         /* stream offset of buf[start] */
    size_t index;            /* index of the next record */
    msgpack_zone zone;
    char type[64];
    char err[SAT_ERR_MAX];
    sat_record held;         /* the record that ended a run of bad ones */
    int has_held;
    int cut;                 /* the last FATAL of read_one was a truncation */
    int borrowed;            /* buf is the caller's memory (sat_reader_open_mem) */
};

static sat_reader *reader_new(const char *name, size_t max_record)
{
    sat_reader *r = sat_xcalloc(1, sizeof *r);
    r->name = sat_xstrdup(name);
    r->max_record = max_record ? max_record : SAT_DEFAULT_MAX_RECORD;
    msgpack_zone_init(&r->zone, 1 << 16);
    return r;
}

sat_reader *sat_reader_open(FILE *f, const char *name, size_t max_record)
{
    sat_reader *r = reader_new(name, max_record);
    r->f = f;
    r->cap = 1 << 16;
    r->buf = sat_xmalloc(r->cap);
    return r;
}

sat_reader *sat_reader_open_mem(const void *data, size_t len, const char *name, size_t max_record)
{
    sat_reader *r = reader_new(name, max_record);
    r->buf = (unsigned char *)data; /* only read: fill() has nothing to add at eof */
    r->cap = r->end = len;
    r->eof = 1;
    r->borrowed = 1;
    return r;
}

void sat_reader_close(sat_reader *r)
{
    if (!r) return;
    msgpack_zone_destroy(&r->zone);
    if (!r->borrowed) free(r->buf);
    free(r->name);
    free(r);
}

const char *sat_reader_error(const sat_reader *r) { return r->err; }

static int fail(sat_reader *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(sat_reader *r, int status, const char *fmt, ...)
{
    int n = snprintf(r->err, sizeof r->err, "%s: record %zu at byte %llu: ", r->name, r->index,
                     (unsigned long long)r->offset);
    if (n < 0 || (size_t)n >= sizeof r->err) return status; /* a name as long as the buffer */
    va_list ap;
    va_start(ap, fmt);
    sat_vfail(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    return status;
}

/* Room for a features record's fields after its data (a thumbnail aside). */
enum { RECORD_REST = 64 << 10 };

/* r's buffer grown to hold `want` bytes from r->start on: at once to the
 * size a large record's data needs, with room for the fields after it, in
 * huge pages (sat_xmalloc_large): one allocation and one copy a record. */
static void reserve(sat_reader *r, size_t want)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (want <= r->cap) return;
    size_t cap = sat_large_size(want + RECORD_REST > 2 * r->cap ? want + RECORD_REST : 2 * r->cap);
    unsigned char *buf = sat_xmalloc_large(cap);
    memcpy(buf, r->buf, r->end);
    free(r->buf);
    r->buf = buf;
    r->cap = cap;
}

/* Make at least `want` unread bytes available unless the input ends first.
 * Returns the number available.  Reads no more than it is asked for: on a
 * pipe, a record is handled as soon as its last byte arrives, not once the
 * next one fills the buffer (stdio buffers the small reads). */
static size_t fill(sat_reader *r, size_t want)
{
    if (r->end - r->start < want && !r->eof && r->start + want > r->cap) reserve(r, want);
    while (r->end - r->start < want && !r->eof) {
        size_t got = fread(r->buf + r->end, 1, r->start + want - r->end, r->f);
        r->end += got;
        if (got == 0) r->eof = 1;
    }
    return r->end - r->start;
}

int sat_is_map_lead(int byte)
{
    return (byte >= 0x80 && byte <= 0x8f) || byte == 0xde || byte == 0xdf;
}

/* Size of the msgpack value header at p (1..9 bytes) and what follows it:
 * *skip bytes of payload, *children values nested inside.
 * Returns the header size, or 0 for an invalid lead byte. */
static size_t header_size(unsigned char lead)
{
    if (lead <= 0x7f || lead >= 0xe0) return 1;                 /* fixint */
    if (lead >= 0x80 && lead <= 0xbf) return 1;                 /* fixmap, fixarray, fixstr */
    switch (lead) {
    case 0xc0: case 0xc2: case 0xc3: return 1;                  /* nil, false, true */
    case 0xc4: case 0xd9: case 0xcc: case 0xd0: return 2;       /* bin8, str8, uint8, int8 */
    case 0xc5: case 0xda: case 0xcd: case 0xd1: return 3;       /* bin16, str16, uint16, int16 */
    case 0xdc: case 0xde: return 3;                             /* array16, map16 */
    case 0xc6: case 0xdb: case 0xce: case 0xd2: case 0xca: return 5;
    case 0xdd: case 0xdf: return 5;                             /* array32, map32 */
    case 0xcf: case 0xd3: case 0xcb: return 9;                  /* uint64, int64, float64 */
    case 0xd4: return 3; case 0xd5: return 4; case 0xd6: return 6;  /* fixext 1/2/4 */
    case 0xd7: return 10; case 0xd8: return 18;                 /* fixext 8/16 */
    case 0xc7: return 3; case 0xc8: return 4; case 0xc9: return 6;  /* ext8/16/32 */
    default: return 0;                                          /* 0xc1: never used */
    }
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Payload bytes and child values implied by a header. */
static void header_contents(const unsigned char *h, uint64_t *payload, uint64_t *children)
{
    unsigned char lead = h[0];
    *payload = 0;
    *children = 0;
    if (lead >= 0x80 && lead <= 0x8f) *children = 2u * (lead & 0x0f);
    else if (lead >= 0x90 && lead <= 0x9f) *children = lead & 0x0f;
    else if (lead >= 0xa0 && lead <= 0xbf) *payload = lead & 0x1f;
    else switch (lead) {
    case 0xc4: case 0xd9: *payload = h[1]; break;
    case 0xc5: case 0xda: *payload = be(h + 1, 2); break;
    case 0xc6: case 0xdb: *payload = be(h + 1, 4); break;
    case 0xdc: *children = be(h + 1, 2); break;
    case 0xdd: *children = be(h + 1, 4); break;
    case 0xde: *children = 2 * be(h + 1, 2); break;
    case 0xdf: *children = 2 * be(h + 1, 4); break;
    case 0xc7: *payload = h[1]; break;                        /* ext: type byte is in the header */
    case 0xc8: *payload = be(h + 1, 2); break;
    case 0xc9: *payload = be(h + 1, 4); break;
    default: break;                                           /* fixed-size scalars and fixext */
    }
}

/* How a scan ends; the scanner's message is in r->err. */
enum { SCAN_OK, SCAN_TRUNCATED, SCAN_TOO_LARGE, SCAN_INVALID, SCAN_TOO_DEEP };

/* Find the length of the record starting at buf[start], reading more input as
 * needed.  Every nested value consumes at least one byte, so a container
 * count larger than the bytes left before max_record is refused without
 * building anything.  The extent is counted by `left` alone, so a record
 * nested too deep for msgpack-c (MAX_DEPTH) is still measured, to be skipped
 * whole (*len is set for OK and TOO_DEEP). */
static int scan_record(sat_reader *r, size_t *len)
{
    uint64_t pending[MAX_DEPTH + 1]; /* values still to read at each depth, while not too deep */
    uint64_t left = 1;               /* values still to read, all depths together */
    int depth = 0, too_deep = 0;
    size_t pos = 0;
    pending[0] = 1;
    while (left > 0) {
        if (!too_deep) {
            while (pending[depth] == 0) depth--;
            pending[depth]--;
        }
        left--;
        if (fill(r, pos + 1) < pos + 1)
            return fail(r, SCAN_TRUNCATED, "truncated (stream ends inside the record)");
        unsigned char lead = r->buf[r->start + pos];
        size_t hs = header_size(lead);
        if (hs == 0)
            return fail(r, SCAN_INVALID, "not msgpack (invalid byte 0x%02x at record byte %zu)",
                        lead, pos);
        if (fill(r, pos + hs) < pos + hs)
            return fail(r, SCAN_TRUNCATED, "truncated (stream ends inside the record)");
        uint64_t payload, children;
        header_contents(r->buf + r->start + pos, &payload, &children);
        pos += hs;
        uint64_t room = r->max_record > pos ? r->max_record - pos : 0;
        if (payload > room || children > room || left + children > room)
            return fail(r, SCAN_TOO_LARGE, "record larger than the limit of %zu bytes",
                        r->max_record);
        if (payload) {
            if (fill(r, pos + payload) < pos + payload)
                return fail(r, SCAN_TRUNCATED, "truncated (stream ends inside the record)");
            pos += payload;
        }
        left += children;
        if (children && !too_deep) {
            if (depth == MAX_DEPTH) too_deep = 1;
            else pending[++depth] = children;
        }
    }
    *len = pos;
    return too_deep ? fail(r, SCAN_TOO_DEEP, "nested deeper than %d levels", MAX_DEPTH) : SCAN_OK;
}

static void skip_bytes(sat_reader *r, size_t n)
{
    r->start += n;
    r->offset += n;
}

/* Step over a bad record.  A well-formed map (without a type, or nested too
 * deep) is skipped whole; anything else is garbage, of which only the first
 * byte is taken: its header may be a chance byte whose length would swallow
 * the next real record, which skip_bad_run then finds. */
static int consume_bad(sat_reader *r, int whole_map, size_t len)
{
    skip_bytes(r, whole_map && sat_is_map_lead(r->buf[r->start]) ? len : 1);
    r->index++;
    return SAT_READ_BAD;
}

/* Read the value at the read position.  OK: a record.  BAD: not a record,
 * stepped over (consume_bad), so the next call goes on.  FATAL: truncated or
 * over the limit; nothing is consumed. */
static int read_one(sat_reader *r, sat_record *rec)
{
    size_t len = 0;
    int scan = scan_record(r, &len);
    r->cut = scan == SCAN_TRUNCATED;
    switch (scan) {
    case SCAN_OK: break;
    case SCAN_TOO_DEEP: return consume_bad(r, 1, len);
    case SCAN_INVALID: return consume_bad(r, 0, 0);
    default: return SAT_READ_FATAL;
    }

    memset(rec, 0, sizeof *rec);
    rec->raw = r->buf + r->start;
    rec->raw_len = len;
    rec->index = r->index;
    rec->offset = r->offset;

    msgpack_zone_clear(&r->zone);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack((const char *)rec->raw, len, &off, &r->zone, &rec->obj);
    const msgpack_object *t = NULL;
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        fail(r, 0, "not msgpack (msgpack-c error %d)", (int)ret);
        return consume_bad(r, 0, 0);
    }
    if (rec->obj.type != MSGPACK_OBJECT_MAP) {
        fail(r, 0, "not a map (a record must be a msgpack map with a 'type')");
        return consume_bad(r, 0, 0);
    }
    if (!(t = sat_map_get(&rec->obj, "type")) || t->type != MSGPACK_OBJECT_STR ||
        t->via.str.size == 0 || t->via.str.size >= sizeof r->type ||
        memchr(t->via.str.ptr, 0, t->via.str.size)) {
        fail(r, 0, "map has no string 'type'");
        return consume_bad(r, 1, len);
    }
    skip_bytes(r, len);
    r->index++;
    memcpy(r->type, t->via.str.ptr, t->via.str.size);
    r->type[t->via.str.size] = 0;
    rec->type = r->type;
    return SAT_READ_OK;
}

/* Whether a record seems to start at the read position: a map header, then
 * the key "type" (as a str of any width) first, as every sat writer puts it.
 * A real record past garbage is found by this; chance bytes of garbage
 * almost never match it. */
static int at_record_start(sat_reader *r)
{
    static const char *const type_keys[] = {"\xa4type", "\xd9\x04type", "\xda\x00\x04type",
                                            "\xdb\x00\x00\x00\x04type"};
    static const size_t key_len[] = {5, 6, 7, 9};
    unsigned char lead = r->buf[r->start];
    if (!sat_is_map_lead(lead)) return 0;
    size_t hs = header_size(lead);
    if (fill(r, hs + 1) < hs + 1) return 0;
    const unsigned char *key = r->buf + r->start + hs;
    for (int i = 0; i < 4; i++)
        if (*key == (unsigned char)type_keys[i][0])
            return fill(r, hs + key_len[i]) >= hs + key_len[i] &&
                   memcmp(r->buf + r->start + hs, type_keys[i], key_len[i]) == 0;
    return 0;
}

/* After a bad record: skip, byte by byte, to the next record and report the
 * bad one and the count of bytes skipped in one message, not a line per
 * byte of garbage (text, zero bytes).  The record found is held for the next
 * call; a cut one is left to it to report.  A run of garbage longer than the
 * record limit ends the input. */
static int skip_bad_run(sat_reader *r, uint64_t from)
{
    char first[sizeof r->err];
    memcpy(first, r->err, sizeof first);
    uint64_t bad_end = r->offset;
    while (!r->has_held && fill(r, 1) > 0) {
        if (r->offset - from > r->max_record) {
            snprintf(r->err, sizeof r->err, "%.400s; no record in the %zu bytes after it: "
                     "the rest of the input is not read", first, r->max_record);
            return SAT_READ_FATAL;
        }
        if (!at_record_start(r)) {
            skip_bytes(r, 1);
            continue;
        }
        int st = read_one(r, &r->held);
        if (st == SAT_READ_OK) r->has_held = 1;
        else if (st == SAT_READ_FATAL && r->cut) break; /* the next call reports it */
        else if (st == SAT_READ_FATAL) skip_bytes(r, 1);
    }
    uint64_t to = r->has_held ? r->held.offset : r->offset;
    char where[64];
    if (r->has_held)
        snprintf(where, sizeof where, "up to the next record, at byte %llu", (unsigned long long)to);
    else if (fill(r, 1) == 0) snprintf(where, sizeof where, "to the end of the input");
    else snprintf(where, sizeof where, "up to byte %llu", (unsigned long long)to);
    if (to > bad_end)
        snprintf(r->err, sizeof r->err, "%.400s; %llu bytes skipped, %s", first,
                 (unsigned long long)(to - from), where);
    return SAT_READ_BAD;
}

/* At the start of the input: one line for what is plainly no sat stream (an
 * image, text, zero bytes) instead of one error per byte.  Only a byte that
 * cannot start a record makes it look further than the 8 bytes of a PNG
 * signature, so a real stream is never waited on. */
static int not_a_stream(sat_reader *r)
{
    size_t n = fill(r, sat_is_map_lead(r->buf[r->start]) ? 8 : SAT_SNIFF_BYTES);
    const unsigned char *head = r->buf + r->start;
    sat_kind k = sat_sniff(head, n);
    if (k == SAT_KIND_MSGPACK_MAP) return 0;
    char what[96];
    snprintf(r->err, sizeof r->err, "%s: not a sat stream (%s%s)", r->name,
             sat_sniff_describe(head, n, what, sizeof what),
             k == SAT_KIND_JPEG || k == SAT_KIND_PNG ? ": run sat-encode first" : "");
    return 1;
}

int sat_reader_next(sat_reader *r, sat_record *rec)
{
    if (r->has_held) {
        r->has_held = 0;
        *rec = r->held;
        return SAT_READ_OK;
    }
    if (fill(r, 1) == 0) {
        if (r->f && ferror(r->f)) {
            return fail(r, SAT_READ_FATAL, "read error: %s", strerror(errno ? errno : EIO));
        }
        return SAT_READ_END;
    }
    if (r->offset == 0 && not_a_stream(r)) return SAT_READ_FATAL;
    uint64_t from = r->offset;
    int st = read_one(r, rec);
    return st == SAT_READ_BAD ? skip_bad_run(r, from) : st;
}

void sat_each_record_in(const sat_each *e, sat_reader *r, const char *name)
{
    sat_record rec;
    int st;
    while ((st = sat_reader_next(r, &rec)) != SAT_READ_END) {
        if (st == SAT_READ_OK) {
            e->record(e->ctx, &rec, name);
            continue;
        }
        if (st == SAT_READ_FATAL && e->fatal_dies) sat_die("%s", sat_reader_error(r));
        sat_warn("%s", sat_reader_error(r));
        if (st == SAT_READ_FATAL) break;
    }
}

void sat_each_record_of(const sat_each *e, FILE *f, const char *name)
{
    sat_reader *r = sat_reader_open(f, name, e->max_record);
    sat_each_record_in(e, r, name);
    sat_reader_close(r);
    if (e->input_done) e->input_done(e->ctx, f);
}

void sat_each_record(const sat_each *e, char *const *files, int n)
{
    if (n == 0) sat_each_record_of(e, stdin, "stdin");
    for (int i = 0; i < n; i++) {
        int is_stdin = strcmp(files[i], "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(files[i], "rb");
        if (!f) {
            sat_warn("%s: %s", files[i], strerror(errno));
            continue;
        }
        sat_each_record_of(e, f, is_stdin ? "stdin" : files[i]);
        if (!is_stdin) fclose(f);
    }
}

int sat_record_is(const sat_record *rec, const char *type)
{
    return rec->type && strcmp(rec->type, type) == 0;
}

const msgpack_object *sat_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
            memcmp(kv->key.via.str.ptr, key, klen) == 0)
            return &kv->val;
    }
    return NULL;
}

const char *sat_map_str_problem(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = sat_map_get(map, key);
    if (!o) return "is missing";
    if (o->type != MSGPACK_OBJECT_STR) return "is not a string";
    if (memchr(o->via.str.ptr, 0, o->via.str.size)) return "contains a NUL byte";
    return NULL;
}

char *sat_map_strdup(const msgpack_object *map, const char *key)
{
    if (sat_map_str_problem(map, key)) return NULL;
    const msgpack_object *o = sat_map_get(map, key);
    char *s = sat_xmalloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    return s;
}

int sat_map_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *o = sat_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
    *out = o->via.u64;
    return 0;
}

int sat_map_float(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *o = sat_map_get(map, key);
    if (!o) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return -1;
    }
}

int sat_map_bin(const msgpack_object *map, const char *key, const void **data, size_t *len)
{
    const msgpack_object *o = sat_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN) return -1;
    *data = o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

/* ---- writing ---- */

void sat_writer_init(sat_writer *w, FILE *f, const char *name)
{
    w->f = f;
    w->name = name;
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
}

void sat_writer_begin(sat_writer *w, const char *type)
{
    msgpack_sbuffer_clear(&w->buf);
    w->nfields = 0;
    sat_field_str(w, "type", type);
    sat_field_uint(w, "v", SAT_STREAM_VERSION);
}

void sat_writer_seal(sat_writer *w)
{
    msgpack_sbuffer head;
    msgpack_packer hp;
    msgpack_sbuffer_init(&head);
    msgpack_packer_init(&hp, &head, msgpack_sbuffer_write);
    msgpack_pack_map(&hp, w->nfields);
    size_t fields = w->buf.size;
    msgpack_sbuffer_write(&w->buf, head.data, head.size); /* room for the header */
    memmove(w->buf.data + head.size, w->buf.data, fields);
    memcpy(w->buf.data, head.data, head.size);
    msgpack_sbuffer_destroy(&head);
}

void sat_writer_write(sat_writer *w, const void *p, size_t n)
{
    if (fwrite(p, 1, n, w->f) != n)
        sat_die("%s: write error: %s", w->name, strerror(errno ? errno : EIO));
}

void sat_writer_end(sat_writer *w) { sat_writer_write(w, w->buf.data, w->buf.size); }

void sat_write_raw(sat_writer *w, const sat_record *rec) { sat_writer_write(w, rec->raw, rec->raw_len); }

void sat_writer_close(sat_writer *w)
{
    msgpack_sbuffer_destroy(&w->buf);
    if (w->f) sat_fclose_check(w->f, w->name);
}

void sat_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void sat_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    sat_pack_str(pk, key);
    sat_pack_str(pk, val);
}

void sat_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
    sat_pack_str(pk, key);
    msgpack_pack_uint64(pk, val);
}

void sat_pack_kv_float(msgpack_packer *pk, const char *key, double val)
{
    sat_pack_str(pk, key);
    msgpack_pack_double(pk, val);
}

void sat_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t len)
{
    sat_pack_str(pk, key);
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
}

void sat_field(sat_writer *w, const char *key)
{
    sat_pack_str(&w->pk, key);
    w->nfields++;
}

void sat_field_str(sat_writer *w, const char *key, const char *val)
{
    sat_field(w, key);
    sat_pack_str(&w->pk, val);
}

void sat_field_uint(sat_writer *w, const char *key, uint64_t val)
{
    sat_field(w, key);
    msgpack_pack_uint64(&w->pk, val);
}

void sat_field_float(sat_writer *w, const char *key, double val)
{
    sat_field(w, key);
    msgpack_pack_double(&w->pk, val);
}

void sat_field_bin(sat_writer *w, const char *key, const void *data, size_t len)
{
    sat_field(w, key);
    msgpack_pack_bin(&w->pk, len);
    msgpack_pack_bin_body(&w->pk, data, len);
}

/* ---- features ---- */

static int features_fail(char *err, size_t errlen, const sat_record *rec, const char *id,
                         const char *what)
{
    sat_fail(err, errlen, "record %zu%s%s%s: %s", rec->index, id ? " (id " : "", id ? id : "",
             id ? ")" : "", what);
    return -1;
}

const char *sat_dtype_name(sat_dtype t)
{
    return t == SAT_F32 ? "f32" : t == SAT_U8 ? "u8" : "f16";
}

size_t sat_dtype_size(sat_dtype t)
{
    return t == SAT_F32 ? 4 : t == SAT_U8 ? 1 : 2;
}

int sat_dtype_parse(const char *name)
{
    if (!name) return -1;
    for (int t = SAT_F16; t <= SAT_U8; t++)
        if (strcmp(name, sat_dtype_name((sat_dtype)t)) == 0) return t;
    return -1;
}

uint32_t sat_features_views(const sat_features *f)
{
    return f->views > 1 ? f->views : 1;
}

size_t sat_features_count(const sat_features *f)
{
    return (size_t)sat_features_views(f) * f->h * f->w * f->c;
}

static int features_check_values(const sat_features *f)
{
    size_t n = sat_features_count(f);
    const unsigned char *p = f->data;
    if (f->dtype == SAT_U8) return 0; /* every byte is a value */
    if (f->dtype == SAT_F16) return sat_f16_all_finite(p, n) ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!isfinite(v)) return -1;
    }
    return 0;
}

/* A u8 record's scale and zero point: 0, or -1 when absent or out of range. */
static int features_quantization(const msgpack_object *m, sat_features *f)
{
    double scale;
    uint64_t zp;
    if (sat_map_float(m, "scale", &scale) || sat_map_uint(m, "zero_point", &zp)) return -1;
    if (!isfinite(scale) || scale <= 0 || scale > 3.4e38 || zp > 255) return -1;
    f->scale = (float)scale;
    f->zero_point = (uint32_t)zp;
    return 0;
}

int sat_features_parse_layout(const sat_record *rec, sat_features *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const msgpack_object *m = &rec->obj;
    f->id = sat_map_strdup(m, "id");
    char what[160];
    uint64_t h, w, c, iw = 0, ih = 0, v, views = 1;
    if (!f->id) {
        snprintf(what, sizeof what, "features record: 'id' %s", sat_map_str_problem(m, "id"));
        return features_fail(err, errlen, rec, NULL, what);
    }
    if (sat_map_uint(m, "v", &v) || v != SAT_STREAM_VERSION) {
        features_fail(err, errlen, rec, f->id, "features record without 'v' or of an unknown version");
        sat_features_free(f);
        return -1;
    }
    if (sat_map_uint(m, "h", &h) || sat_map_uint(m, "w", &w) || sat_map_uint(m, "c", &c) ||
        h == 0 || w == 0 || c == 0 || h > 4096 || w > 4096 || c > 65536) {
        features_fail(err, errlen, rec, f->id, "missing or invalid h/w/c");
        sat_features_free(f);
        return -1;
    }
    f->h = (uint32_t)h, f->w = (uint32_t)w, f->c = (uint32_t)c;
    if (sat_map_get(m, "views") &&
        (sat_map_uint(m, "views", &views) || views < 1 || views > SAT_MAX_VIEWS)) {
        snprintf(what, sizeof what, "'views' must be 1 to %d", SAT_MAX_VIEWS);
        features_fail(err, errlen, rec, f->id, what);
        sat_features_free(f);
        return -1;
    }
    f->views = (uint32_t)views;
    char *dtype = sat_map_strdup(m, "dtype");
    int t = sat_dtype_parse(dtype);
    free(dtype);
    if (t < 0) {
        features_fail(err, errlen, rec, f->id, "dtype must be \"f16\", \"f32\" or \"u8\"");
        sat_features_free(f);
        return -1;
    }
    f->dtype = (sat_dtype)t;
    if (f->dtype == SAT_U8 && features_quantization(m, f)) {
        features_fail(err, errlen, rec, f->id,
                      "a u8 record needs a finite 'scale' > 0 and a 'zero_point' of 0 to 255");
        sat_features_free(f);
        return -1;
    }
    size_t expect = sat_features_count(f) * sat_dtype_size(f->dtype);
    if (sat_map_bin(m, "data", &f->data, &f->data_len) || f->data_len != expect) {
        char of_views[32] = "";
        if (f->views > 1) snprintf(of_views, sizeof of_views, "%u views of ", f->views);
        snprintf(what, sizeof what, "data has %zu bytes, expected %zu (%s%llux%llux%llu %s)",
                 f->data ? f->data_len : 0, expect, of_views, (unsigned long long)h,
                 (unsigned long long)w, (unsigned long long)c, sat_dtype_name(f->dtype));
        features_fail(err, errlen, rec, f->id, what);
        sat_features_free(f);
        return -1;
    }
    sat_map_uint(m, "image_width", &iw);
    sat_map_uint(m, "image_height", &ih);
    f->image_width = (uint32_t)iw, f->image_height = (uint32_t)ih;
    const msgpack_object *enc = sat_map_get(m, "encoder");
    if (enc) {
        uint64_t size = 0, stride = 0;
        f->encoder_name = sat_map_strdup(enc, "name");
        f->encoder_sha256 = sat_map_strdup(enc, "sha256");
        sat_map_uint(enc, "size", &size);
        sat_map_uint(enc, "stride", &stride);
        f->encoder_size = (uint32_t)size, f->encoder_stride = (uint32_t)stride;
    }
    if (sat_map_bin(m, "thumbnail", &f->thumbnail, &f->thumbnail_len)) f->thumbnail = NULL;
    return 0;
}

int sat_features_parse(const sat_record *rec, sat_features *f, char *err, size_t errlen)
{
    if (sat_features_parse_layout(rec, f, err, errlen)) return -1;
    if (features_check_values(f)) {
        features_fail(err, errlen, rec, f->id, "data contains NaN or Inf");
        sat_features_free(f);
        return -1;
    }
    return 0;
}

void sat_features_free(sat_features *f)
{
    free(f->id);
    free(f->encoder_name);
    free(f->encoder_sha256);
    f->id = f->encoder_name = f->encoder_sha256 = NULL;
}

void sat_features_to_f32(const sat_features *f, float *out)
{
    size_t n = sat_features_count(f);
    const unsigned char *p = f->data;
    if (f->dtype == SAT_F32) {
        memcpy(out, p, n * 4); /* little-endian hosts only (checked at build time below) */
        return;
    }
    if (f->dtype == SAT_U8) {
        for (size_t i = 0; i < n; i++) out[i] = f->scale * (float)((int)p[i] - (int)f->zero_point);
        return;
    }
    sat_f16_to_f32_array(p, out, n);
}

/* u8: the affine map of [min(lo, 0), max(hi, 0)] onto 0..255, zero exact. */
static void quantize_u8(const float *values, size_t n, uint8_t *q, float *scale, uint32_t *zp)
{
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = values[i] < lo ? values[i] : lo;
        hi = values[i] > hi ? values[i] : hi;
    }
    *scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
    *zp = (uint32_t)lrintf(-lo / *scale);
    for (size_t i = 0; i < n; i++) {
        long v = lrintf(values[i] / *scale) + (long)*zp;
        q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sat streams store tensors little-endian; this code assumes a little-endian host"
#endif

/* Room for `extra` more bytes in w's buffer, in huge pages when large: a
 * record's data is then written into pages that fault once per 2 MiB,
 * not grown by doubling through fresh 4 KiB pages. */
static void writer_reserve(sat_writer *w, size_t extra)
{
    msgpack_sbuffer *b = &w->buf;
    if (b->alloc - b->size >= extra) return;
    size_t alloc = sat_large_size(b->size + extra);
    char *data = sat_xmalloc_large(alloc);
    if (b->size) memcpy(data, b->data, b->size);
    free(b->data);
    b->data = data;
    b->alloc = alloc;
}

/* values as f16 bin, converted straight into w's buffer a slice at a time */
static void pack_f16(sat_writer *w, const float *values, size_t n)
{
    enum { SLICE = 4096 };
    uint16_t half[SLICE];
    msgpack_pack_bin(&w->pk, n * 2);
    for (size_t i = 0; i < n; i += SLICE) {
        size_t m = n - i < SLICE ? n - i : SLICE;
        sat_f32_to_f16_array(values + i, half, m);
        msgpack_pack_bin_body(&w->pk, half, m * 2);
    }
}

/* The tensor as dtype: "data", and before it for u8 "scale" and "zero_point". */
static void pack_data(sat_writer *w, sat_dtype dtype, const float *values, size_t n)
{
    writer_reserve(w, n * sat_dtype_size(dtype) + RECORD_REST);
    if (dtype == SAT_F32) {
        sat_field_bin(w, "data", values, n * 4);
    } else if (dtype == SAT_U8) {
        uint8_t *q = sat_xmalloc(n);
        float scale;
        uint32_t zp;
        quantize_u8(values, n, q, &scale, &zp);
        sat_field_float(w, "scale", scale);
        sat_field_uint(w, "zero_point", zp);
        sat_field_bin(w, "data", q, n);
        free(q);
    } else {
        sat_field(w, "data");
        pack_f16(w, values, n);
    }
}

void sat_features_pack(sat_writer *w, const sat_features *f, const float *values)
{
    size_t n = sat_features_count(f);
    sat_writer_begin(w, "features");
    sat_field_str(w, "id", f->id);
    sat_field_uint(w, "h", f->h);
    sat_field_uint(w, "w", f->w);
    sat_field_uint(w, "c", f->c);
    if (f->views > 1) sat_field_uint(w, "views", f->views);
    sat_field_str(w, "dtype", sat_dtype_name(f->dtype));
    pack_data(w, f->dtype, values, n);
    sat_field_uint(w, "image_width", f->image_width);
    sat_field_uint(w, "image_height", f->image_height);
    sat_field(w, "encoder");
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 4 + (f->encoder_precision != NULL));
    sat_pack_kv_str(pk, "name", f->encoder_name ? f->encoder_name : "");
    sat_pack_kv_str(pk, "sha256", f->encoder_sha256 ? f->encoder_sha256 : "");
    sat_pack_kv_uint(pk, "size", f->encoder_size);
    sat_pack_kv_uint(pk, "stride", f->encoder_stride);
    if (f->encoder_precision) sat_pack_kv_str(pk, "precision", f->encoder_precision);
    if (f->thumbnail) sat_field_bin(w, "thumbnail", f->thumbnail, f->thumbnail_len);
    sat_writer_seal(w);
}

/* ---- thumbnail ---- */

void sat_thumbnail_pack(sat_writer *w, const sat_thumbnail *t)
{
    sat_writer_begin(w, "thumbnail");
    sat_field_str(w, "id", t->id);
    sat_field_bin(w, "thumbnail", t->png, t->len);
    sat_writer_seal(w);
}

int sat_thumbnail_parse(const sat_record *rec, sat_thumbnail *t)
{
    memset(t, 0, sizeof *t);
    if (sat_map_bin(&rec->obj, "thumbnail", &t->png, &t->len)) return -1;
    t->id = sat_map_strdup(&rec->obj, "id");
    return t->id ? 0 : -1;
}

/* ---- caption ---- */

/* {name, sha256} of a decoder model. */
static void pack_model_ref(msgpack_packer *pk, const sat_model_ref *m)
{
    msgpack_pack_map(pk, 2);
    sat_pack_kv_str(pk, "name", m->name);
    sat_pack_kv_str(pk, "sha256", m->sha256);
}

static void field_uints(sat_writer *w, const char *key, const int *v, uint32_t n)
{
    sat_field(w, key);
    msgpack_pack_array(&w->pk, n);
    for (uint32_t i = 0; i < n; i++) msgpack_pack_uint32(&w->pk, (uint32_t)v[i]);
}

void sat_caption_record_pack(sat_writer *w, const sat_caption_record *c)
{
    msgpack_packer *pk = &w->pk;
    sat_writer_begin(w, "caption");
    sat_field_str(w, "id", c->id);
    sat_field_str(w, "text", c->text);
    sat_field(w, "words");
    msgpack_pack_array(pk, c->nwords);
    for (uint32_t i = 0; i < c->nwords; i++) sat_pack_str(pk, c->words[i]);
    field_uints(w, "tokens", c->tokens, c->nwords);
    sat_field_float(w, "logprob", c->logprob);
    sat_field_str(w, "method", c->method);
    sat_field_str(w, "attention", c->attention);
    sat_field_bin(w, "alpha", c->alpha, (size_t)c->nwords * c->alpha_h * c->alpha_w * sizeof(float));
    sat_field_uint(w, "alpha_h", c->alpha_h);
    sat_field_uint(w, "alpha_w", c->alpha_w);
    sat_field(w, "model");
    pack_model_ref(pk, &c->models[0]);
    if (c->nmodels > 1) {
        sat_field(w, "ensemble");
        msgpack_pack_array(pk, (size_t)c->nmodels);
        for (int m = 0; m < c->nmodels; m++) pack_model_ref(pk, &c->models[m]);
    }
    if (c->locations) field_uints(w, "locations", c->locations, c->nwords);
    if (c->word_logprobs) {
        sat_field(w, "word_logprobs");
        msgpack_pack_array(pk, (size_t)c->nwords + 1);
        for (uint32_t i = 0; i <= c->nwords; i++) msgpack_pack_double(pk, c->word_logprobs[i]);
        sat_field_float(w, "perplexity", c->perplexity);
    }
    if (c->rank >= 0) sat_field_uint(w, "rank", (uint64_t)c->rank);
    sat_writer_seal(w);
}

static char *obj_strdup(const msgpack_object *o)
{
    char *s = sat_xmalloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    return s;
}

static int check_version(const msgpack_object *m, char *why, size_t n)
{
    uint64_t v;
    if (sat_map_uint(m, "v", &v) || v != SAT_STREAM_VERSION)
        return sat_fail(why, n, "caption record is not version %d", SAT_STREAM_VERSION);
    return 0;
}

static int parse_words(const msgpack_object *m, sat_caption_record *c, char *why, size_t n)
{
    const msgpack_object *o = sat_map_get(m, "words");
    if (!o || o->type != MSGPACK_OBJECT_ARRAY) return sat_fail(why, n, "caption has no 'words' array");
    if (o->via.array.size > SAT_CAPTION_MAX_WORDS)
        return sat_fail(why, n, "caption has %u words, over the limit of %d", o->via.array.size,
                        SAT_CAPTION_MAX_WORDS);
    c->words = sat_xcalloc(o->via.array.size, sizeof *c->words);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *w = &o->via.array.ptr[i];
        if (w->type != MSGPACK_OBJECT_STR || memchr(w->via.str.ptr, 0, w->via.str.size))
            return sat_fail(why, n, "word %u is not a string", i);
        if (w->via.str.size > SAT_CAPTION_MAX_WORD_BYTES)
            return sat_fail(why, n, "word %u has %u bytes, over the limit of %d", i, w->via.str.size,
                            SAT_CAPTION_MAX_WORD_BYTES);
        c->words[i] = obj_strdup(w);
        c->nwords = i + 1;
    }
    return 0;
}

static int check_grid(const sat_caption_record *c, char *why, size_t n)
{
    if (c->alpha_h < 1 || c->alpha_w < 1 || c->alpha_h > SAT_CAPTION_MAX_GRID ||
        c->alpha_w > SAT_CAPTION_MAX_GRID)
        return sat_fail(why, n, "caption needs alpha_h and alpha_w in [1, %d]", SAT_CAPTION_MAX_GRID);
    return 0;
}

/* An array of n values in [0, below) as ints into *out; -1 at the first
 * that is not (*bad: its index), out freed. */
static int parse_uints(const msgpack_object *o, uint32_t n, uint64_t below, int **out, uint32_t *bad)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) return *bad = n, -1;
    int *v = sat_xcalloc(n, sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *x = &o->via.array.ptr[i];
        if (x->type != MSGPACK_OBJECT_POSITIVE_INTEGER || x->via.u64 >= below) {
            free(v);
            *bad = i;
            return -1;
        }
        v[i] = (int)x->via.u64;
    }
    *out = v;
    return 0;
}

/* Hard attention's `locations`: one cell index per word. */
static int parse_locations(const msgpack_object *o, sat_caption_record *c, char *why, size_t n)
{
    uint64_t cells = (uint64_t)c->alpha_h * c->alpha_w;
    uint32_t bad;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != c->nwords)
        return sat_fail(why, n, "locations must be an array of %u cell indices (one per word)", c->nwords);
    if (parse_uints(o, c->nwords, cells, &c->locations, &bad))
        return sat_fail(why, n, "location %u is not a cell index below %llu", bad,
                        (unsigned long long)cells);
    return 0;
}

/* `alpha`: f32 little-endian, decoded bytewise so the host's order does not matter. */
static int parse_alpha(const msgpack_object *m, sat_caption_record *c, char *why, size_t n)
{
    const void *data;
    size_t len;
    if (sat_map_bin(m, "alpha", &data, &len))
        return sat_fail(why, n, "caption has no alpha (the per-word attention maps)");
    size_t count = (size_t)c->nwords * c->alpha_h * c->alpha_w; /* <= 1000 x 256 x 256 */
    if (len != count * 4)
        return sat_fail(why, n, "alpha has %zu bytes, expected %zu (%u words x %ux%u f32)", len,
                        count * 4, c->nwords, c->alpha_h, c->alpha_w);
    float *alpha = sat_xmalloc(count * sizeof *alpha);
    const unsigned char *p = data;
    for (size_t i = 0; i < count; i++, p += 4) {
        uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&alpha[i], &bits, 4);
        if (!isfinite(alpha[i]) || alpha[i] < 0) {
            double bad = alpha[i];
            free(alpha);
            return sat_fail(why, n, "alpha value %zu is %g (attention weights are finite and >= 0)",
                            i, bad);
        }
    }
    c->alpha = alpha;
    return 0;
}

/* The attention (SAT_CAPTION_ATTENTION); with locations, alpha too when it
 * is good. */
static int parse_attention(const msgpack_object *m, sat_caption_record *c, char *why, size_t n)
{
    const msgpack_object *loc = sat_map_get(m, "locations");
    if (check_version(m, why, n) || parse_words(m, c, why, n) || check_grid(c, why, n)) return -1;
    if (!loc) return parse_alpha(m, c, why, n);
    if (parse_locations(loc, c, why, n)) return -1;
    char ignored[160];
    parse_alpha(m, c, ignored, sizeof ignored);
    return 0;
}

static void free_attention(sat_caption_record *c)
{
    for (uint32_t i = 0; i < c->nwords; i++) free(c->words[i]);
    free(c->words);
    free(c->alpha);
    free(c->locations);
    c->words = NULL, c->nwords = 0, c->alpha = NULL, c->locations = NULL;
}

/* `model`, or every model of an `ensemble`. */
static void parse_models(const msgpack_object *m, sat_caption_record *c)
{
    const msgpack_object *ens = sat_map_get(m, "ensemble"), *one = sat_map_get(m, "model");
    const msgpack_object *list = ens && ens->type == MSGPACK_OBJECT_ARRAY ? ens->via.array.ptr : one;
    int n = list == one ? (one != NULL) : (int)ens->via.array.size;
    c->models = sat_xcalloc((size_t)n, sizeof *c->models);
    for (int i = 0; i < n; i++) {
        c->models[i].name = sat_map_strdup(&list[i], "name");
        c->models[i].sha256 = sat_map_strdup(&list[i], "sha256");
    }
    c->nmodels = n;
}

static void parse_word_logprobs(const msgpack_object *m, sat_caption_record *c)
{
    const msgpack_object *o = sat_map_get(m, "word_logprobs");
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != c->nwords + 1) return;
    c->word_logprobs = sat_xmalloc(((size_t)c->nwords + 1) * sizeof *c->word_logprobs);
    for (uint32_t i = 0; i <= c->nwords; i++) {
        const msgpack_object *x = &o->via.array.ptr[i];
        int number = x->type == MSGPACK_OBJECT_FLOAT32 || x->type == MSGPACK_OBJECT_FLOAT64;
        c->word_logprobs[i] = number ? (float)x->via.f64 : NAN;
    }
}

/* The fields no reader requires, when they are there. */
static void parse_details(const msgpack_object *m, sat_caption_record *c)
{
    uint64_t v;
    uint32_t bad;
    c->rank = sat_map_uint(m, "rank", &v) ? -1 : v > INT64_MAX ? INT64_MAX : (int64_t)v;
    parse_uints(sat_map_get(m, "tokens"), c->nwords, INT32_MAX, &c->tokens, &bad);
    sat_map_float(m, "logprob", &c->logprob);
    sat_map_float(m, "perplexity", &c->perplexity);
    c->method = sat_map_strdup(m, "method");
    c->attention = sat_map_strdup(m, "attention");
    parse_models(m, c);
    parse_word_logprobs(m, c);
}

int sat_caption_record_parse(const sat_record *rec, int need, sat_caption_record *c, char *why,
                             size_t whylen)
{
    const msgpack_object *m = &rec->obj;
    const char *problem;
    uint64_t h = 0, w = 0;
    memset(c, 0, sizeof *c);
    c->id = sat_map_strdup(m, "id");
    c->text = sat_map_strdup(m, "text");
    if (!sat_map_uint(m, "alpha_h", &h) && !sat_map_uint(m, "alpha_w", &w) && h <= UINT32_MAX &&
        w <= UINT32_MAX)
        c->alpha_h = (uint32_t)h, c->alpha_w = (uint32_t)w;
    int rc = 0;
    char scratch[256];
    if ((problem = sat_map_str_problem(m, "id")))
        rc = sat_fail(why, whylen, "'id' %s", problem);
    else if ((need & SAT_CAPTION_TEXT) && (problem = sat_map_str_problem(m, "text")))
        rc = sat_fail(why, whylen, "'text' %s", problem);
    if (parse_attention(m, c, need & SAT_CAPTION_ATTENTION && !rc ? why : scratch,
                        need & SAT_CAPTION_ATTENTION && !rc ? whylen : sizeof scratch)) {
        if (need & SAT_CAPTION_ATTENTION) rc = -1;
        free_attention(c);
    }
    parse_details(m, c);
    return rc;
}

void sat_caption_record_free(sat_caption_record *c)
{
    free_attention(c);
    for (int i = 0; i < c->nmodels; i++) {
        free(c->models[i].name);
        free(c->models[i].sha256);
    }
    free(c->models);
    free(c->id);
    free(c->text);
    free(c->tokens);
    free(c->method);
    free(c->attention);
    free(c->word_logprobs);
    memset(c, 0, sizeof *c);
}
