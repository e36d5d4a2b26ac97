/* sat-dump — any sat stream to JSON lines, one object per record.
 *
 * Tensors (a features record's `data`, a caption record's `alpha`) are
 * summarized as {shape, dtype, min, max, mean} unless --full; other binary
 * values are shown as their length, or base64 with --full.  A features
 * record's layout is the library's parser's (sat_features_parse_layout), so
 * what it refuses is shown as bytes.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/json.h"
#include "sat/model.h"
#include "sat/stream.h"
#include "sat/util.h"

static const char usage[] =
    "Usage: sat-dump [OPTION]... [FILE]...\n"
    "Write each record of sat streams (FILEs, or stdin) as one JSON object per line.\n"
    "\n"
    "  -t, --type TYPE      only records of this type (repeatable)\n"
    "      --full           tensors as arrays of numbers, other binary values as base64\n"
    "      --max-record N   refuse records larger than N bytes (default 268435456)\n"
    "      --verify         check each model record as the programs read it, and its\n"
    "                       weights against their sha256 too; a bad one is reported\n"
    "                       (exit status 1) instead of written\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Example: sat-encode photo.jpg | sat-dump | jq .h\n";

typedef struct {
    char **types;
    int ntypes;
    int full;
    int verify;
    size_t max_record;
} options;

/* Where a bin holds a tensor, its element type and shape. */
typedef struct {
    sat_features as;  /* dtype, and for u8 its scale and zero point */
    int ndim;                /* 3, or 4 for a features record of several views */
    uint64_t shape[4];
} tensor_view;

static int wanted(const options *o, const char *type)
{
    if (o->ntypes == 0) return 1;
    for (int i = 0; i < o->ntypes; i++)
        if (strcmp(o->types[i], type) == 0) return 1;
    return 0;
}

/* The grid of a caption record's alpha (0 x 0 when it has none). */
static void caption_grid(const sat_record *rec, uint64_t *h, uint64_t *w)
{
    sat_caption_record c;
    sat_caption_record_parse(rec, 0, &c, NULL, 0);
    *h = c.alpha_h, *w = c.alpha_w;
    sat_caption_record_free(&c);
}

/* Recognize the tensors the format defines: features.data and caption.alpha. */
static int tensor_of(const sat_record *r, const char *key, size_t len, tensor_view *tv)
{
    const char *type = r->type;
    uint64_t a = 0, b = 0, c = 0, views = 1;
    memset(tv, 0, sizeof *tv);
    if (strcmp(type, "features") == 0 && strcmp(key, "data") == 0) {
        sat_features f;
        if (sat_features_parse_layout(r, &f, NULL, 0)) return 0; /* its bytes, not a tensor */
        a = f.h, b = f.w, c = f.c, views = f.views;
        tv->as = (sat_features){.dtype = f.dtype, .scale = f.scale, .zero_point = f.zero_point};
        sat_features_free(&f);
    } else if (strcmp(type, "caption") == 0 && strcmp(key, "alpha") == 0) {
        caption_grid(r, &b, &c);
        if (!b || !c) return 0;
        a = len / 4 / (b * c);
        tv->as.dtype = SAT_F32;
    } else {
        return 0;
    }
    tv->ndim = views > 1 ? 4 : 3; /* [views,] h, w, c */
    uint64_t dims[4] = {views, a, b, c};
    memcpy(tv->shape, dims + (4 - tv->ndim), (size_t)tv->ndim * sizeof *dims);
    if (a == 0 || b == 0 || c == 0) return 0;
    size_t elem = sat_dtype_size(tv->as.dtype);
    return views * a * b * c * elem == len && len / elem / views / a / b == c;
}

/* The tensor's values, converted by the library's reader (sat_features_to_f32:
 * f16, f32, u8) a chunk at a time, so memory stays bounded: printed all
 * (full), or summarized as shape, dtype, min, max and mean. */
static void dump_tensor(FILE *out, const unsigned char *p, const tensor_view *tv, int full)
{
    enum { CHUNK = 1 << 16 };
    size_t n = 1, elem = sat_dtype_size(tv->as.dtype);
    for (int d = 0; d < tv->ndim; d++) n *= tv->shape[d];
    float *v = sat_xmalloc(CHUNK * sizeof *v);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    if (full) fputc('[', out);
    for (size_t at = 0; at < n; at += CHUNK) {
        sat_features part = tv->as;
        part.h = part.w = 1;
        part.c = (uint32_t)(n - at < CHUNK ? n - at : CHUNK);
        part.data = p + at * elem;
        sat_features_to_f32(&part, v);
        for (size_t i = 0; i < part.c; i++) {
            if (full && at + i) fputc(',', out);
            if (full) sat_json_number(out, v[i]);
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
            sum += v[i];
        }
    }
    free(v);
    if (full) {
        fputc(']', out);
        return;
    }
    fputs("{\"shape\":[", out);
    for (int d = 0; d < tv->ndim; d++)
        fprintf(out, "%s%llu", d ? "," : "", (unsigned long long)tv->shape[d]);
    fprintf(out, "],\"dtype\":\"%s\",\"min\":", sat_dtype_name(tv->as.dtype));
    sat_json_number(out, lo);
    fputs(",\"max\":", out);
    sat_json_number(out, hi);
    fputs(",\"mean\":", out);
    sat_json_number(out, sum / (double)n);
    fputc('}', out);
}

static void dump_base64(FILE *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(tab[v >> 18 & 63], out);
        fputc(tab[v >> 12 & 63], out);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', out);
        fputc(i + 2 < n ? tab[v & 63] : '=', out);
    }
    fputc('"', out);
}

static void dump_value(FILE *out, const msgpack_object *o, const options *opt);

static void dump_bin(FILE *out, const msgpack_object *o, const options *opt)
{
    if (opt->full) dump_base64(out, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
    else fprintf(out, "{\"bytes\":%u}", o->via.bin.size);
}

static void dump_key(FILE *out, const msgpack_object *k, const options *opt)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        sat_json_string(out, k->via.str.ptr, k->via.str.size);
        return;
    }
    /* JSON keys are strings: write a non-string key as the JSON text of it, quoted. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) sat_die("out of memory");
    dump_value(mem, k, opt);
    fclose(mem);
    sat_json_string(out, text, len);
    free(text);
}

static void dump_value(FILE *out, const msgpack_object *o, const options *opt)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", out); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", out); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(out, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(out, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: sat_json_number(out, o->via.f64); break;
    case MSGPACK_OBJECT_STR: sat_json_string(out, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: dump_bin(out, o, opt); break;
    case MSGPACK_OBJECT_EXT: fprintf(out, "{\"ext\":%d,\"bytes\":%u}", o->via.ext.type, o->via.ext.size); break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', out);
            dump_value(out, &o->via.array.ptr[i], opt);
        }
        fputc(']', out);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i) fputc(',', out);
            dump_key(out, &o->via.map.ptr[i].key, opt);
            fputc(':', out);
            dump_value(out, &o->via.map.ptr[i].val, opt);
        }
        fputc('}', out);
        break;
    }
}

static void dump_record(FILE *out, const sat_record *rec, const options *opt)
{
    const msgpack_object *m = &rec->obj;
    fputc('{', out);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (i) fputc(',', out);
        dump_key(out, &kv->key, opt);
        fputc(':', out);
        tensor_view tv;
        if (kv->val.type == MSGPACK_OBJECT_BIN && kv->key.type == MSGPACK_OBJECT_STR) {
            char key[32] = "";
            if (kv->key.via.str.size < sizeof key) memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            if (tensor_of(rec, key, kv->val.via.bin.size, &tv)) {
                dump_tensor(out, (const unsigned char *)kv->val.via.bin.ptr, &tv, opt->full);
                continue;
            }
        }
        dump_value(out, &kv->val, opt);
    }
    fputs("}\n", out);
}

/* --verify: a model record must load with its weights' sha256 checked, the
 * check the captioning programs leave out for start-up time (issue 15). */
static int model_ok(const sat_record *rec, const char *name)
{
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load_mem(rec->raw, rec->raw_len, name, SAT_MODEL_VERIFY, err, sizeof err);
    if (!m) sat_warn("%s", err);
    sat_model_free(m);
    return m != NULL;
}

static void on_record(void *ctx, const sat_record *rec, const char *input)
{
    const options *opt = ctx;
    if (wanted(opt, rec->type) && (!opt->verify || !sat_record_is(rec, "model") || model_ok(rec, input)))
        dump_record(stdout, rec, opt);
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt = {0};
    static const struct option longopts[] = {
        {"type", required_argument, 0, 't'}, {"full", no_argument, 0, 'F'},
        {"max-record", required_argument, 0, 'M'}, {"verify", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int c;
    opt.types = sat_xcalloc((size_t)argc, sizeof *opt.types);
    while ((c = sat_getopt(argc, argv, "t:hV", longopts)) != -1) {
        switch (c) {
        case 't': opt.types[opt.ntypes++] = optarg; break;
        case 'F': opt.full = 1; break;
        case 'C': opt.verify = 1; break;
        case 'M': opt.max_record = (size_t)sat_parse_long("--max-record", optarg, 16, 1L << 40); break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    sat_each e = {.max_record = opt.max_record, .record = on_record, .ctx = &opt};
    sat_each_record(&e, argv + optind, argc - optind);
    sat_fclose_check(stdout, "stdout");
    free(opt.types);
    return sat_exit_status();
}
