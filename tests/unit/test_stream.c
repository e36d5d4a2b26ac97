/* test_stream.c — the stream reader and writer (formats/stream.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/half.h"
#include "sat/json.h"
#include "sat/sniff.h"
#include "sat/stream.h"
#include "sat/util.h"

/* A FILE reading from a copy of the bytes. */
static FILE *bytes_file(const void *p, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    rewind(f);
    return f;
}

static sat_features sample_features(uint32_t h, uint32_t w, uint32_t c, sat_dtype dtype)
{
    sat_features f = {.id = "dir/img.jpg", .h = h, .w = w, .c = c, .dtype = dtype,
                      .image_width = 640, .image_height = 480, .encoder_name = "mnv2",
                      .encoder_sha256 = "ab12", .encoder_size = 224, .encoder_stride = 16};
    return f;
}

static char *pack_features(const sat_features *f, const float *values, size_t *len)
{
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_features_pack(&w, f, values);
    *len = w.buf.size;
    return msgpack_sbuffer_release(&w.buf);
}

static void test_features_round_trip(void **state)
{
    (void)state;
    for (int dt = 0; dt < 2; dt++) {
        sat_features f = sample_features(3, 2, 5, dt ? SAT_F32 : SAT_F16);
        float values[30];
        for (int i = 0; i < 30; i++) values[i] = (float)(i * 0.37 - 4.0);
        size_t len;
        char *bytes = pack_features(&f, values, &len);
        FILE *in = bytes_file(bytes, len);
        sat_reader *r = sat_reader_open(in, "mem", 0);
        sat_record rec;
        assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
        assert_true(sat_record_is(&rec, "features"));
        assert_int_equal(rec.raw_len, len);
        assert_memory_equal(rec.raw, bytes, len);
        sat_features g;
        char err[SAT_ERR_MAX];
        assert_int_equal(sat_features_parse(&rec, &g, err, sizeof err), 0);
        assert_string_equal(g.id, "dir/img.jpg");
        assert_int_equal(g.h, 3);
        assert_int_equal(g.w, 2);
        assert_int_equal(g.c, 5);
        assert_int_equal(g.dtype, f.dtype);
        assert_int_equal(g.image_width, 640);
        assert_int_equal(g.image_height, 480);
        assert_string_equal(g.encoder_name, "mnv2");
        assert_int_equal(g.encoder_stride, 16);
        float back[30];
        sat_features_to_f32(&g, back);
        for (int i = 0; i < 30; i++) {
            float expect = dt ? values[i] : sat_f16_to_f32(sat_f32_to_f16(values[i]));
            assert_true(back[i] == expect);
        }
        sat_features_free(&g);
        assert_int_equal(sat_reader_next(r, &rec), SAT_READ_END);
        sat_reader_close(r);
        fclose(in);
        free(bytes);
    }
}

/* Records of a map's size (two views of 14×14×1280, and an odd count so
 * that the last f16 slice is short) written one after another, in growing
 * then shrinking sizes, read back the same: the writer packs f16 in slices
 * into a buffer it reserved once, the reader grows its buffer at once. */
static void test_features_large_records(void **state)
{
    (void)state;
    const uint32_t cs[] = { 1280, 2561, 7 };
    FILE *f = tmpfile();
    assert_non_null(f);
    size_t total = 0;
    float *values[3];
    for (int i = 0; i < 3; i++) {
        sat_features ft = sample_features(14, 14, cs[i], SAT_F16);
        ft.views = 2;
        size_t n = sat_features_count(&ft), len;
        values[i] = sat_xmalloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) values[i][j] = (float)((j * 7919 + i) % 2003) / 37.0f - 20.0f;
        char *bytes = pack_features(&ft, values[i], &len);
        assert_int_equal(fwrite(bytes, 1, len, f), len);
        total += len;
        free(bytes);
    }
    rewind(f);
    sat_reader *r = sat_reader_open(f, "mem", 0);
    for (int i = 0; i < 3; i++) {
        sat_record rec;
        sat_features g;
        char err[SAT_ERR_MAX];
        assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
        assert_int_equal(sat_features_parse(&rec, &g, err, sizeof err), 0);
        assert_int_equal(g.c, cs[i]);
        size_t n = sat_features_count(&g);
        float *back = sat_xmalloc(n * sizeof(float));
        sat_features_to_f32(&g, back);
        for (size_t j = 0; j < n; j++)
            assert_true(back[j] == sat_f16_to_f32(sat_f32_to_f16(values[i][j])));
        free(back);
        free(values[i]);
        sat_features_free(&g);
    }
    assert_true(total > 2 * 14 * 14 * 2561 * 2);
    sat_reader_close(r);
    fclose(f);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
    (void)sig;
    alarmed = 1;
}

/* A record that arrives on a pipe is handed over once its last byte is
 * there, while the writer is still open: a stage answers each record of a
 * live stream without waiting for the next (it used to ask for 64 KiB). */
static void test_record_handed_over_without_more_input(void **state)
{
    (void)state;
    sat_features ft = sample_features(2, 2, 3, SAT_F16);
    float v[12] = { 0 };
    size_t len;
    char *bytes = pack_features(&ft, v, &len);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    assert_int_equal(write(fd[1], bytes, len), (ssize_t)len);
    FILE *in = fdopen(fd[0], "r");
    assert_non_null(in);
    /* a read that blocks for more is interrupted (EINTR) after 2 s instead
     * of hanging the test, and the alarm is remembered */
    struct sigaction sa = { .sa_handler = on_alarm }, old;
    sigaction(SIGALRM, &sa, &old);
    alarmed = 0;
    alarm(2);
    sat_reader *r = sat_reader_open(in, "pipe", 0);
    sat_record rec;
    int st = sat_reader_next(r, &rec);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    assert_false(alarmed);
    assert_int_equal(st, SAT_READ_OK);
    assert_int_equal(rec.raw_len, len);
    assert_memory_equal(rec.raw, bytes, len);
    sat_reader_close(r);
    fclose(in);
    close(fd[1]);
    free(bytes);
}

/* Parse the one features record of bytes into g and, when values is not
 * NULL, its tensor as floats (while the reader, which g's data points into,
 * is open): 0, or -1 with err. */
static int parse_one(const char *bytes, size_t len, sat_features *g, float *values, char *err,
                     size_t errlen)
{
    FILE *in = bytes_file(bytes, len);
    sat_reader *r = sat_reader_open(in, "mem", 0);
    sat_record rec;
    assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
    int rc = sat_features_parse(&rec, g, err, errlen);
    if (rc == 0 && values) sat_features_to_f32(g, values);
    g->data = NULL;
    sat_reader_close(r);
    fclose(in);
    return rc;
}

/* u8: every value comes back within half a step (scale / 2) of what went
 * in, zero exactly; negative values move the zero point up. */
static void test_features_u8(void **state)
{
    (void)state;
    const float ranges[][2] = {{0, 6}, {-1.5f, 4}, {-3, -0.5f}, {0, 0}};
    for (size_t k = 0; k < sizeof ranges / sizeof *ranges; k++) {
        sat_features f = sample_features(4, 3, 7, SAT_U8);
        float values[84], back[84];
        for (int i = 0; i < 84; i++)
            values[i] = ranges[k][0] + (ranges[k][1] - ranges[k][0]) * (float)((i * 37) % 84) / 83;
        values[5] = 0;
        size_t len;
        char *bytes = pack_features(&f, values, &len);
        sat_features g;
        char err[SAT_ERR_MAX];
        /* the record has 84 one-byte values and its two quantization keys */
        assert_true(len > 84 && len < 84 + 250);
        assert_int_equal(parse_one(bytes, len, &g, back, err, sizeof err), 0);
        assert_int_equal(g.dtype, SAT_U8);
        assert_int_equal(g.data_len, 84);
        assert_true(g.scale > 0);
        float lo = ranges[k][0] < 0 ? ranges[k][0] : 0, hi = ranges[k][1] > 0 ? ranges[k][1] : 0;
        if (hi > lo) assert_float_equal(g.scale, (hi - lo) / 255, 1e-6);
        for (int i = 0; i < 84; i++) assert_true(fabsf(back[i] - values[i]) <= g.scale / 2 + 1e-6f);
        assert_true(back[5] == 0.0f);
        sat_features_free(&g);
        free(bytes);
    }
    assert_string_equal(sat_dtype_name(SAT_U8), "u8");
    assert_int_equal(sat_dtype_parse("u8"), SAT_U8);
    assert_int_equal(sat_dtype_parse("i8"), -1);
}

/* Start a hand-made features record in w: its id and h, w, c. */
static void begin_features(sat_writer *w, const char *id, uint64_t h, uint64_t wd, uint64_t c)
{
    sat_writer_init(w, NULL, "t");
    sat_writer_begin(w, "features");
    sat_field_str(w, "id", id);
    sat_field_uint(w, "h", h);
    sat_field_uint(w, "w", wd);
    sat_field_uint(w, "c", c);
}

/* u8 records without a usable scale or zero point are refused. */
static void test_features_u8_bad(void **state)
{
    (void)state;
    struct {
        int has_scale;
        double scale;
        uint64_t zp;
    } bad[] = {{0, 0, 0}, {1, 0, 0}, {1, -1, 3}, {1, INFINITY, 0}, {1, 0.1, 256}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        sat_writer w;
        begin_features(&w, "q", 1, 1, 2);
        sat_field_str(&w, "dtype", "u8");
        if (bad[k].has_scale) sat_field_float(&w, "scale", bad[k].scale);
        sat_field_uint(&w, "zero_point", bad[k].zp);
        sat_field_bin(&w, "data", "\x01\x02", 2);
        sat_writer_seal(&w);
        sat_features g;
        char err[SAT_ERR_MAX];
        assert_int_equal(parse_one(w.buf.data, w.buf.size, &g, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, "'scale' > 0"));
        msgpack_sbuffer_destroy(&w.buf);
    }
}

/* The first record of len bytes at data, read into *rec (r and f to close). */
static void read_first(const void *data, size_t len, FILE **f, sat_reader **r, sat_record *rec)
{
    *f = bytes_file(data, len);
    *r = sat_reader_open(*f, "mem", 0);
    assert_int_equal(sat_reader_next(*r, rec), SAT_READ_OK);
}

/* A caption with every optional key: hard attention's locations, teacher
 * forcing's word log-probabilities, an ensemble of two, a rank. */
static sat_caption_record full_caption(float *alpha, sat_model_ref *models)
{
    static char *words[] = {"a", "dog"};
    static int tokens[] = {4, 17}, locations[] = {3, 0};
    static float word_logprobs[] = {-1.5f, -0.25f, -2.0f};
    for (int i = 0; i < 2 * 4; i++) alpha[i] = i == 3 || i == 4 ? 1.0f : 0.0f;
    models[0] = (sat_model_ref){"soft", "aa11"};
    models[1] = (sat_model_ref){"hard", "bb22"};
    return (sat_caption_record){
        .id = "a.jpg", .text = "a dog", .words = words, .nwords = 2, .tokens = tokens,
        .logprob = -3.75, .method = "teacher", .attention = "hard-argmax", .alpha = alpha,
        .alpha_h = 2, .alpha_w = 2, .models = models, .nmodels = 2, .locations = locations,
        .word_logprobs = word_logprobs, .perplexity = 3.5, .rank = 1};
}

/* The full caption's bytes (malloc'd). */
static char *pack_caption(size_t *len)
{
    float alpha[8];
    sat_model_ref models[2];
    sat_caption_record c = full_caption(alpha, models);
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_caption_record_pack(&w, &c);
    *len = w.buf.size;
    return msgpack_sbuffer_release(&w.buf);
}

static void test_caption_round_trip(void **state)
{
    (void)state;
    float alpha[8];
    sat_model_ref models[2];
    sat_caption_record in = full_caption(alpha, models), out;
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_caption_record_pack(&w, &in);
    FILE *f;
    sat_reader *r;
    sat_record rec;
    read_first(w.buf.data, w.buf.size, &f, &r, &rec);
    assert_true(sat_record_is(&rec, "caption"));
    assert_int_equal(rec.obj.via.map.size, 18); /* every key of formats/stream.md, counted */
    char why[SAT_ERR_MAX];
    assert_int_equal(sat_caption_record_parse(&rec, SAT_CAPTION_TEXT | SAT_CAPTION_ATTENTION, &out,
                                              why, sizeof why), 0);
    assert_string_equal(out.id, "a.jpg");
    assert_string_equal(out.text, "a dog");
    assert_int_equal(out.nwords, 2);
    assert_string_equal(out.words[1], "dog");
    assert_int_equal(out.tokens[1], 17);
    assert_true(out.logprob == -3.75);
    assert_string_equal(out.method, "teacher");
    assert_string_equal(out.attention, "hard-argmax");
    assert_int_equal(out.alpha_h, 2);
    assert_int_equal(out.alpha_w, 2);
    assert_memory_equal(out.alpha, alpha, sizeof alpha);
    assert_int_equal(out.nmodels, 2);
    assert_string_equal(out.models[1].name, "hard");
    assert_string_equal(out.models[1].sha256, "bb22");
    assert_int_equal(out.locations[0], 3);
    assert_true(out.word_logprobs[2] == -2.0f);
    assert_true(out.perplexity == 3.5);
    assert_int_equal(out.rank, 1);
    sat_caption_record_free(&out);
    sat_reader_close(r);
    fclose(f);

    /* without the optional keys: 13, and the parser says they are absent */
    in.locations = NULL, in.word_logprobs = NULL, in.nmodels = 1, in.rank = -1;
    sat_caption_record_pack(&w, &in);
    read_first(w.buf.data, w.buf.size, &f, &r, &rec);
    assert_int_equal(rec.obj.via.map.size, 13);
    assert_int_equal(sat_caption_record_parse(&rec, SAT_CAPTION_ATTENTION, &out, why, sizeof why), 0);
    assert_null(out.locations);
    assert_null(out.word_logprobs);
    assert_int_equal(out.nmodels, 1);
    assert_string_equal(out.models[0].name, "soft");
    assert_int_equal(out.rank, -1);
    sat_caption_record_free(&out);
    sat_reader_close(r);
    fclose(f);
    sat_writer_close(&w);
}

/* What a reader needs: the first problem of the parts asked for, in order. */
static void test_caption_needs(void **state)
{
    (void)state;
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_writer_begin(&w, "caption");
    sat_field_str(&w, "id", "b.jpg");
    sat_field_uint(&w, "text", 5);
    sat_writer_seal(&w);
    FILE *f;
    sat_reader *r;
    sat_record rec;
    read_first(w.buf.data, w.buf.size, &f, &r, &rec);
    sat_caption_record c;
    char why[SAT_ERR_MAX];
    assert_int_equal(sat_caption_record_parse(&rec, 0, &c, why, sizeof why), 0);
    assert_string_equal(c.id, "b.jpg");
    assert_null(c.text);
    assert_null(c.words);
    sat_caption_record_free(&c);
    assert_int_equal(sat_caption_record_parse(&rec, SAT_CAPTION_TEXT, &c, why, sizeof why), -1);
    assert_string_equal(why, "'text' is not a string");
    sat_caption_record_free(&c);
    assert_int_equal(sat_caption_record_parse(&rec, SAT_CAPTION_ATTENTION, &c, why, sizeof why), -1);
    assert_string_equal(why, "caption has no 'words' array");
    sat_caption_record_free(&c);
    sat_reader_close(r);
    fclose(f);

    sat_writer_begin(&w, "caption"); /* no id: said first, c.id NULL */
    sat_writer_seal(&w);
    read_first(w.buf.data, w.buf.size, &f, &r, &rec);
    assert_int_equal(sat_caption_record_parse(&rec, SAT_CAPTION_ATTENTION, &c, why, sizeof why), -1);
    assert_string_equal(why, "'id' is missing");
    assert_null(c.id);
    sat_caption_record_free(&c);
    sat_reader_close(r);
    fclose(f);
    sat_writer_close(&w);
}

/* The map header is the count of the fields packed, in msgpack's shortest
 * form: a fixmap up to 15 fields, a map 16 from 16. */
static void test_writer_counts_fields(void **state)
{
    (void)state;
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    for (int n = 13; n <= 14; n++) {
        sat_writer_begin(&w, "note");
        char key[16];
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "k%d", i);
            sat_field_uint(&w, key, (uint64_t)i);
        }
        sat_writer_seal(&w);
        const unsigned char *b = (const unsigned char *)w.buf.data;
        if (n + 2 < 16) assert_int_equal(b[0], 0x80 | (n + 2));
        else assert_true(b[0] == 0xde && b[1] == 0 && b[2] == n + 2);
        FILE *f;
        sat_reader *r;
        sat_record rec;
        read_first(w.buf.data, w.buf.size, &f, &r, &rec);
        assert_int_equal(rec.obj.via.map.size, n + 2);
        assert_int_equal(rec.raw_len, w.buf.size);
        uint64_t v;
        assert_int_equal(sat_map_uint(&rec.obj, key, &v), 0);
        assert_int_equal(v, n - 1);
        sat_reader_close(r);
        fclose(f);
    }
    sat_writer_close(&w);
}

static void test_thumbnail_round_trip(void **state)
{
    (void)state;
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_thumbnail_pack(&w, &(sat_thumbnail){"t.png", "\x89PNG", 4});
    FILE *f;
    sat_reader *r;
    sat_record rec;
    read_first(w.buf.data, w.buf.size, &f, &r, &rec);
    sat_thumbnail t;
    assert_int_equal(sat_thumbnail_parse(&rec, &t), 0);
    assert_string_equal(t.id, "t.png");
    assert_int_equal(t.len, 4);
    assert_memory_equal(t.png, "\x89PNG", 4);
    free(t.id);
    sat_reader_close(r);
    fclose(f);
    sat_writer_close(&w);
}

/* Every proper prefix of a two-record stream is reported as truncated at the
 * right record, and the complete records before the cut are still read. */
static void test_truncation_everywhere(void **state)
{
    (void)state;
    size_t l1, l2;
    sat_features f = sample_features(2, 2, 3, SAT_F16);
    float values[12] = {0};
    char *a = pack_features(&f, values, &l1);
    char *b = pack_caption(&l2);
    char *both = malloc(l1 + l2);
    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    for (size_t cut = 1; cut < l1 + l2; cut++) {
        if (cut == l1) continue;
        FILE *in = bytes_file(both, cut);
        sat_reader *r = sat_reader_open(in, "cut", 0);
        sat_record rec;
        size_t want_index = cut < l1 ? 0 : 1;
        if (want_index == 1) assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
        assert_int_equal(sat_reader_next(r, &rec), SAT_READ_FATAL);
        char expect[128];
        snprintf(expect, sizeof expect, "cut: record %zu at byte %zu: truncated", want_index,
                 want_index ? l1 : 0);
        assert_non_null(strstr(sat_reader_error(r), expect));
        sat_reader_close(r);
        fclose(in);
    }
    free(both);
    free(a);
    free(b);
}

static int read_status(const void *bytes, size_t n, size_t max_record, char *err, size_t errlen)
{
    FILE *in = bytes_file(bytes, n);
    sat_reader *r = sat_reader_open(in, "x", max_record);
    sat_record rec;
    int st = sat_reader_next(r, &rec);
    sat_fail(err, errlen, "%s", sat_reader_error(r));
    sat_reader_close(r);
    fclose(in);
    return st;
}

/* A small valid record ({"type": "x"}, 8 bytes). */
#define TINY "\x81\xa4type\xa1x"
#define TINY_LEN 8

/* The status of the value after a valid record (what is bad at the start of
 * an input is "not a sat stream", test_not_a_stream). */
static int read_status_after(const void *bytes, size_t n, size_t max_record, char *err, size_t errlen)
{
    unsigned char *both = malloc(TINY_LEN + n);
    memcpy(both, TINY, TINY_LEN);
    memcpy(both + TINY_LEN, bytes, n);
    FILE *in = bytes_file(both, TINY_LEN + n);
    sat_reader *r = sat_reader_open(in, "x", max_record);
    sat_record rec;
    assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
    int st = sat_reader_next(r, &rec);
    sat_fail(err, errlen, "%s", sat_reader_error(r));
    sat_reader_close(r);
    fclose(in);
    free(both);
    return st;
}

static void test_hostile_headers(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    /* array32 / map32 / bin32 / str32 declaring 4 billion entries or bytes */
    const unsigned char huge[][5] = {{0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0xff, 0xff, 0xff, 0xff},
                                     {0xc6, 0xff, 0xff, 0xff, 0xff}, {0xdb, 0xff, 0xff, 0xff, 0xff}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(read_status_after(huge[i], 5, 1 << 20, err, sizeof err), SAT_READ_FATAL);
        assert_non_null(strstr(err, "x: record 1 at byte 8: record larger than the limit"));
    }
    /* a map16 of 2 entries per byte left is refused too: each needs a byte */
    assert_int_equal(read_status("\xde\x01\x00", 3, 300, err, sizeof err), SAT_READ_FATAL);
    assert_non_null(strstr(err, "larger than the limit"));
    /* the never-used byte 0xc1: a bad record, skipped */
    assert_int_equal(read_status_after("\xc1", 1, 0, err, sizeof err), SAT_READ_BAD);
    assert_non_null(strstr(err, "not msgpack"));
    /* not a map, then a map without type */
    assert_int_equal(read_status_after("\x92\x01\x02", 3, 0, err, sizeof err), SAT_READ_BAD);
    assert_non_null(strstr(err, "not a map"));
    assert_int_equal(read_status("\x81\xa1x\x01", 4, 0, err, sizeof err), SAT_READ_BAD);
    assert_non_null(strstr(err, "no string 'type'"));
    /* type present but not a string */
    assert_int_equal(read_status("\x81\xa4type\x07", 7, 0, err, sizeof err), SAT_READ_BAD);
}

/* Reads bytes as a stream; each status and message in turn up to the end
 * (at most 8 calls) into st[] and msgs[]; returns the number of calls. */
static int read_all(const void *bytes, size_t n, int st[8], char msgs[8][512])
{
    FILE *in = bytes_file(bytes, n);
    sat_reader *r = sat_reader_open(in, "s", 0);
    sat_record rec;
    int k = 0;
    while (k < 8 && (st[k] = sat_reader_next(r, &rec)) != SAT_READ_END) {
        snprintf(msgs[k], 512, "%s", st[k] == SAT_READ_OK ? rec.type : sat_reader_error(r));
        if (st[k++] == SAT_READ_FATAL) break;
    }
    sat_reader_close(r);
    fclose(in);
    return k;
}

/* What is plainly no stream is said in one FATAL line at the start (issue 14,
 * item 1): not one BAD per byte. */
static void test_not_a_stream(void **state)
{
    (void)state;
    static const struct { const char *bytes; size_t n; const char *says; } cases[] = {
        {"\xff\xd8\xff\xe0\x00\x10JFIF", 10, "(it looks like a JPEG image: run sat-encode first)"},
        {"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 16, "(it looks like a PNG image: run sat-encode first)"},
        {"hello\n", 6, "(it looks like text)"},
        {"caf\xc3\xa9\tune photo\n", 16, "(it looks like text)"},
        {"\x1f\x8b\x08\x00", 4, "(it looks like gzip-compressed data)"},
        {"\x1c\x00\x00\x00TFL3", 8, "(it looks like a TensorFlow Lite model)"},
        {"\x92\x01\x02", 3, "(its first byte is 0x92)"},
    };
    char err[SAT_ERR_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(read_status(cases[i].bytes, cases[i].n, 0, err, sizeof err), SAT_READ_FATAL);
        assert_true(strncmp(err, "x: not a sat stream ", 20) == 0);
        assert_non_null(strstr(err, cases[i].says));
    }
    unsigned char zeros[100000] = {0};
    int st[8];
    char msgs[8][512];
    assert_int_equal(read_all(zeros, sizeof zeros, st, msgs), 1);
    assert_int_equal(st[0], SAT_READ_FATAL);
    assert_string_equal(msgs[0], "s: not a sat stream (it looks like zero bytes)");
    /* a real stream is not taken for anything else */
    assert_int_equal(sat_sniff(TINY, TINY_LEN), SAT_KIND_MSGPACK_MAP);
    assert_int_equal(sat_sniff("", 0), SAT_KIND_EMPTY);
    assert_int_equal(sat_sniff("P6\n640 480\n255\n", 15), SAT_KIND_PNM);
}

/* Garbage between records is one BAD (the first bad record, and the bytes
 * skipped up to the next record), whatever its length; the records around
 * it are read (issue 14, item 1). */
static void test_garbage_between_records(void **state)
{
    (void)state;
    static const struct { const char *junk; size_t n; const char *says; } cases[] = {
        {NULL, 100000, "s: record 1 at byte 8: not a map (a record must be a msgpack map with a "
                       "'type'); 100000 bytes skipped, up to the next record, at byte 100008"},
        /* text whose UTF-8 bytes are msgpack headers (0xa9: a str of 9 bytes) */
        {"h\xc3\xa9llo w\xc3\xb6rld\n", 15, "s: record 1 at byte 8: not a map (a record must be a "
                       "msgpack map with a 'type'); 15 bytes skipped, up to the next record, at byte 23"},
        {"\xc1\xc1\x95", 3, "s: record 1 at byte 8: not msgpack (invalid byte 0xc1 at record byte 0); "
                            "3 bytes skipped, up to the next record, at byte 11"},
        /* a single bad record: said as before */
        {"\x81\xa1v\x01", 4, "s: record 1 at byte 8: map has no string 'type'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 2 * TINY_LEN + cases[i].n;
        unsigned char *bytes = calloc(1, n);
        memcpy(bytes, TINY, TINY_LEN);
        if (cases[i].junk) memcpy(bytes + TINY_LEN, cases[i].junk, cases[i].n);
        memcpy(bytes + TINY_LEN + cases[i].n, TINY, TINY_LEN);
        int st[8];
        char msgs[8][512];
        assert_int_equal(read_all(bytes, n, st, msgs), 3);
        assert_int_equal(st[0], SAT_READ_OK);
        assert_int_equal(st[1], SAT_READ_BAD);
        assert_string_equal(msgs[1], cases[i].says);
        assert_int_equal(st[2], SAT_READ_OK);
        free(bytes);
    }
    /* the record after garbage found with its "type" key written as a str8 */
    static const char str8[] = TINY "zz\x81\xd9\x04type\xa1y";
    int st8[8];
    char msgs8[8][512];
    assert_int_equal(read_all(str8, sizeof str8 - 1, st8, msgs8), 3);
    assert_int_equal(st8[1], SAT_READ_BAD);
    assert_int_equal(st8[2], SAT_READ_OK);
    assert_string_equal(msgs8[2], "y");
    /* garbage to the end; garbage and then a cut record, which is said apart */
    unsigned char tail[TINY_LEN + 6 + 8];
    memcpy(tail, TINY, TINY_LEN);
    memcpy(tail + TINY_LEN, "junk\n\n\x82\xa4type\xa1x", 14);
    int st[8];
    char msgs[8][512];
    assert_int_equal(read_all(tail, TINY_LEN + 6, st, msgs), 2);
    assert_int_equal(st[1], SAT_READ_BAD);
    assert_non_null(strstr(msgs[1], "; 6 bytes skipped, to the end of the input"));
    assert_int_equal(read_all(tail, sizeof tail, st, msgs), 3);
    assert_int_equal(st[1], SAT_READ_BAD);
    assert_non_null(strstr(msgs[1], "; 6 bytes skipped, up to byte 14"));
    assert_int_equal(st[2], SAT_READ_FATAL);
    assert_string_equal(msgs[2], "s: record 2 at byte 14: truncated (stream ends inside the record)");
}

/* A record nested deeper than msgpack-c can build is skipped like any other
 * bad record; the records after it are read (issue 14, item 6). */
static void test_deep_record_skipped(void **state)
{
    (void)state;
    /* {"type": "x", "d": [[[...N levels...1]]]} between two good records */
    for (int levels = 31; levels <= 40; levels += 9) {
        unsigned char bytes[2 * TINY_LEN + 10 + 41];
        size_t n = 0;
        memcpy(bytes, TINY, TINY_LEN);
        n += TINY_LEN;
        memcpy(bytes + n, "\x82\xa4type\xa1x\xa1" "d", 10);
        n += 10;
        memset(bytes + n, 0x91, (size_t)levels);
        n += (size_t)levels;
        bytes[n++] = 0x01;
        memcpy(bytes + n, TINY, TINY_LEN);
        n += TINY_LEN;
        int st[8];
        char msgs[8][512];
        assert_int_equal(read_all(bytes, n, st, msgs), 3);
        assert_int_equal(st[0], SAT_READ_OK);
        assert_int_equal(st[2], SAT_READ_OK);
        if (levels == 31) { /* as deep as allowed (32 with the record's map): read */
            assert_int_equal(st[1], SAT_READ_OK);
            continue;
        }
        assert_int_equal(st[1], SAT_READ_BAD);
        assert_string_equal(msgs[1], "s: record 1 at byte 8: nested deeper than 32 levels");
    }
}

/* Non-canonical encodings pass through byte for byte: a uint64-encoded 1 and
 * a str16-encoded key are kept as they came. */
static void test_raw_pass_through(void **state)
{
    (void)state;
    const unsigned char rec[] = {0x82, 0xda, 0x00, 0x04, 't', 'y', 'p', 'e', 0xa1, 'z', 0xa1, 'v',
                                 0xcf, 0, 0, 0, 0, 0, 0, 0, 1};
    FILE *in = bytes_file(rec, sizeof rec);
    sat_reader *r = sat_reader_open(in, "x", 0);
    sat_record rr;
    assert_int_equal(sat_reader_next(r, &rr), SAT_READ_OK);
    assert_string_equal(rr.type, "z");
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    sat_writer w;
    sat_writer_init(&w, mem, "mem");
    sat_write_raw(&w, &rr);
    sat_writer_close(&w); /* closes mem */
    assert_int_equal(outlen, sizeof rec);
    assert_memory_equal(out, rec, sizeof rec);
    free(out);
    sat_reader_close(r);
    fclose(in);
}

static void test_features_validation(void **state)
{
    (void)state;
    sat_features f = sample_features(2, 2, 2, SAT_F32);
    float values[8] = {1, 2, 3, 4, 5, 6, 7, NAN};
    size_t len;
    char *bytes = pack_features(&f, values, &len);
    FILE *in = bytes_file(bytes, len);
    sat_reader *r = sat_reader_open(in, "x", 0);
    sat_record rec;
    assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
    sat_features g;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_features_parse(&rec, &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "NaN or Inf"));
    assert_non_null(strstr(err, "dir/img.jpg"));
    sat_reader_close(r);
    fclose(in);
    free(bytes);

    /* data of the wrong size: claim c = 3 for 8 values */
    sat_writer w;
    begin_features(&w, "q", 2, 2, 3);
    sat_field_str(&w, "dtype", "f32");
    float ok[8] = {0};
    sat_field_bin(&w, "data", ok, sizeof ok);
    sat_writer_seal(&w);
    in = bytes_file(w.buf.data, w.buf.size);
    r = sat_reader_open(in, "x", 0);
    assert_int_equal(sat_reader_next(r, &rec), SAT_READ_OK);
    assert_int_equal(sat_features_parse(&rec, &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected 48"));
    sat_reader_close(r);
    fclose(in);
    msgpack_sbuffer_destroy(&w.buf);
}

/* Two views: `views` is written, data holds both maps (u8: one scale and
 * zero point over both), and they come back in order; one view writes no key. */
static void test_features_views(void **state)
{
    (void)state;
    for (int dt = SAT_F16; dt <= SAT_U8; dt++) {
        sat_features f = sample_features(3, 2, 5, (sat_dtype)dt);
        float values[60], back[60];
        for (int i = 0; i < 60; i++) values[i] = (float)(i < 30 ? i * 0.25 - 2 : 40 - i * 0.5);
        size_t one_len, len;
        char *one = pack_features(&f, values, &one_len);
        f.views = 1; /* the same record as views 0 */
        char *again = pack_features(&f, values, &len);
        assert_int_equal(len, one_len);
        assert_memory_equal(again, one, len);
        assert_null(memmem(one, one_len, "views", 5));
        free(again);
        f.views = 2;
        char *two = pack_features(&f, values, &len);
        assert_non_null(memmem(two, len, "\xa5views\x02", 7));
        sat_features g;
        char err[SAT_ERR_MAX];
        assert_int_equal(parse_one(two, len, &g, back, err, sizeof err), 0);
        assert_int_equal(g.views, 2);
        assert_int_equal(sat_features_count(&g), 60);
        assert_int_equal(g.data_len, 60 * sat_dtype_size((sat_dtype)dt));
        float tol = dt == SAT_F32 ? 0 : dt == SAT_F16 ? 0.02f : g.scale / 2 + 1e-6f;
        for (int i = 0; i < 60; i++) assert_true(fabsf(back[i] - values[i]) <= tol);
        sat_features_free(&g);
        assert_int_equal(parse_one(one, one_len, &g, NULL, err, sizeof err), 0);
        assert_int_equal(g.views, 1);
        sat_features_free(&g);
        free(one);
        free(two);
    }
}

/* A features record of `views` (as packed: a uint, or a string when
 * views_str) whose data has `values` f32 values of a 2x2x2 grid. */
static char *features_with_views(const char *views_str, uint64_t views, size_t values, size_t *len)
{
    sat_writer w;
    begin_features(&w, "v.jpg", 2, 2, 2);
    if (views_str) sat_field_str(&w, "views", views_str);
    else sat_field_uint(&w, "views", views);
    sat_field_str(&w, "dtype", "f32");
    float *zero = calloc(values, sizeof *zero);
    sat_field_bin(&w, "data", zero, values * sizeof *zero);
    free(zero);
    sat_writer_seal(&w);
    *len = w.buf.size;
    return msgpack_sbuffer_release(&w.buf);
}

static void test_features_views_bad(void **state)
{
    (void)state;
    const struct {
        const char *str;
        uint64_t views;
        size_t values;
        const char *error;
    } cases[] = {
        {NULL, 2, 8, "data has 32 bytes, expected 64 (2 views of 2x2x2 f32)"},
        {NULL, 1, 16, "data has 64 bytes, expected 32 (2x2x2 f32)"},
        {NULL, 0, 0, "'views' must be 1 to 2"},
        {NULL, 3, 24, "'views' must be 1 to 2"},
        {"2", 0, 16, "'views' must be 1 to 2"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        size_t len;
        char *bytes = features_with_views(cases[k].str, cases[k].views, cases[k].values, &len);
        sat_features g;
        char err[SAT_ERR_MAX];
        assert_int_equal(parse_one(bytes, len, &g, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, cases[k].error));
        assert_non_null(strstr(err, "record 0 (id v.jpg)"));
        free(bytes);
    }
    size_t len;
    char *bytes = features_with_views(NULL, 2, 16, &len); /* and the right length is fine */
    sat_features g;
    char err[SAT_ERR_MAX];
    assert_int_equal(parse_one(bytes, len, &g, NULL, err, sizeof err), 0);
    assert_int_equal(g.views, 2);
    sat_features_free(&g);
    free(bytes);
}

/* What sat_each_record saw: the records' inputs and types, and the inputs read. */
typedef struct {
    char seen[8][48];
    int nseen, ndone;
} each_log;

static void log_record(void *ctx, const sat_record *rec, const char *input)
{
    each_log *l = ctx;
    if (l->nseen < 8) snprintf(l->seen[l->nseen++], sizeof l->seen[0], "%s %s", input, rec->type);
}

static void log_done(void *ctx, FILE *f)
{
    (void)f;
    ((each_log *)ctx)->ndone++;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Every record of every input: a missing file and a bad record are reported
 * (the exit status turns 1) and the others are read; a cut record ends its
 * input only. */
static void test_each_record(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_each.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char good[64], bad[64], cut[64], missing[64];
    snprintf(good, sizeof good, "%s/good.sat", dir);
    snprintf(bad, sizeof bad, "%s/bad.sat", dir);
    snprintf(cut, sizeof cut, "%s/cut.sat", dir);
    snprintf(missing, sizeof missing, "%s/none.sat", dir);
    sat_writer w;
    sat_writer_init(&w, NULL, "test");
    sat_thumbnail_pack(&w, &(sat_thumbnail){"t.png", "png", 3});
    size_t n = w.buf.size;
    char *two = malloc(2 * n + 1);
    memcpy(two, w.buf.data, n);
    two[n] = 0x05; /* not a map: a bad record between two good ones */
    memcpy(two + n + 1, w.buf.data, n);
    write_bytes(good, w.buf.data, n);
    write_bytes(bad, two, 2 * n + 1);
    write_bytes(cut, two, n + 1 + n / 2);
    assert_int_equal(sat_exit_status(), 0);
    each_log l = {0};
    sat_each e = {.record = log_record, .input_done = log_done, .ctx = &l};
    char *files[] = {good, missing, bad, cut};
    sat_each_record(&e, files, 4);
    assert_int_equal(l.nseen, 4);
    assert_non_null(strstr(l.seen[0], "good.sat thumbnail"));
    assert_non_null(strstr(l.seen[1], "bad.sat thumbnail"));
    assert_non_null(strstr(l.seen[2], "bad.sat thumbnail"));
    assert_non_null(strstr(l.seen[3], "cut.sat thumbnail"));
    assert_int_equal(l.ndone, 3);
    assert_int_equal(sat_exit_status(), 1);
    free(two);
    sat_writer_close(&w);
    remove(good), remove(bad), remove(cut), rmdir(dir);
}

static void test_json_strings(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    sat_json_string(mem, "a\"b\\c\n\x01\xc3\xa9\xff", 10);
    fputc(' ', mem);
    sat_json_number(mem, NAN);
    fputc(' ', mem);
    sat_json_number(mem, 0.5);
    fclose(mem);
    assert_string_equal(out, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\" null 0.5");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_round_trip), cmocka_unit_test(test_features_large_records),
        cmocka_unit_test(test_record_handed_over_without_more_input),
        cmocka_unit_test(test_features_u8),
        cmocka_unit_test(test_features_u8_bad), cmocka_unit_test(test_caption_round_trip),
        cmocka_unit_test(test_caption_needs), cmocka_unit_test(test_writer_counts_fields),
        cmocka_unit_test(test_thumbnail_round_trip),
        cmocka_unit_test(test_truncation_everywhere), cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_not_a_stream), cmocka_unit_test(test_garbage_between_records),
        cmocka_unit_test(test_deep_record_skipped),
        cmocka_unit_test(test_raw_pass_through), cmocka_unit_test(test_features_validation),
        cmocka_unit_test(test_features_views), cmocka_unit_test(test_features_views_bad),
        cmocka_unit_test(test_json_strings), cmocka_unit_test(test_each_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
