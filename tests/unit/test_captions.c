/* test_captions.c — tokenizers, caption-file parsing with every quirk, splits,
 * and the vocabulary (build order, encode/decode, text form). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sat/captions.h"
#include "sat/util.h"
#include "sat/vocab.h"

/* ---- helpers ---- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_captions.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write n bytes to tmpdir/name; returns the path (static buffer per call site). */
static const char *write_file(const char *name, const char *data, size_t n)
{
    static char paths[8][256];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ---- tokenizers: the cases of tests/data/tokenize.cases ---- */

#ifndef SAT_TEST_DATA
#define SAT_TEST_DATA "tests/data"
#endif

/* C's escapes \t \r \n \\ \xHH of s, in place. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s != '\\') { *out++ = *s; continue; }
        switch (*++s) {
        case 't': *out++ = '\t'; break;
        case 'r': *out++ = '\r'; break;
        case 'n': *out++ = '\n'; break;
        case '\\': *out++ = '\\'; break;
        case 'x': {
            unsigned v;
            assert_int_equal(sscanf(s + 1, "%2x", &v), 1);
            *out++ = (char)v;
            s += 2;
            break;
        }
        default: fail_msg("bad escape '\\%c' in tokenize.cases", *s);
        }
    }
    *out = 0;
}

/* The next line of f without its newline, unescaped; 0 at the end. */
static int case_line(FILE *f, char *buf, size_t size, int *lineno)
{
    if (!fgets(buf, (int)size, f)) return 0;
    ++*lineno;
    size_t len = strcspn(buf, "\n");
    if (!buf[len] && len == size - 1) fail_msg("tokenize.cases:%d: longer than %zu bytes", *lineno, size - 2);
    buf[len] = 0;
    return 1;
}

/* Tokenize text with the named tokenizer; the tokens joined by spaces. */
static void tokens_of(const char *tokenizer, const char *text, char *got, size_t size)
{
    sat_words w;
    int n;
    if (strcmp(tokenizer, "words") == 0) n = sat_tokenize_words(text, &w);
    else if (strcmp(tokenizer, "ptb") == 0) n = sat_tokenize_ptb(text, &w);
    else fail_msg("unknown tokenizer '%s'", tokenizer);
    assert_int_equal(n, w.n);
    got[0] = 0;
    for (int i = 0; i < w.n; i++) {
        if (i) strncat(got, " ", size - strlen(got) - 1);
        strncat(got, w.words[i], size - strlen(got) - 1);
    }
    sat_words_free(&w);
}

static void test_tokenize_cases(void **state)
{
    (void)state;
    const char *path = SAT_TEST_DATA "/tokenize.cases";
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open", path);
    char tokenizer[1024], text[1024], want[1024], got[1024];
    int lineno = 0, cases[2] = {0, 0};
    while (case_line(f, tokenizer, sizeof tokenizer, &lineno)) {
        if (!tokenizer[0] || tokenizer[0] == '#') continue;
        int at = lineno;
        if (!case_line(f, text, sizeof text, &lineno) || !case_line(f, want, sizeof want, &lineno))
            fail_msg("%s:%d: a case needs three lines", path, at);
        unescape(text);
        unescape(want);
        tokens_of(tokenizer, text, got, sizeof got);
        if (strcmp(got, want) != 0) fail_msg("%s:%d: '%s': got '%s', want '%s'", path, at, text, got, want);
        cases[strcmp(tokenizer, "ptb") == 0]++;
    }
    fclose(f);
    /* every case was read: a file cut short would pass with fewer */
    assert_int_equal(cases[0], 7);
    assert_int_equal(cases[1], 15);
}

/* ---- lines and UTF-8 ---- */

static void test_read_line(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs("short\r\n0123456789\nlast", f);
    rewind(f);
    char buf[8];
    size_t len;
    assert_int_equal(sat_read_line(f, buf, sizeof buf, &len), SAT_LINE_OK);
    assert_string_equal(buf, "short");
    assert_int_equal(len, 5);
    assert_int_equal(sat_read_line(f, buf, sizeof buf, &len), SAT_LINE_TOO_LONG);
    assert_int_equal(sat_read_line(f, buf, sizeof buf, &len), SAT_LINE_OK); /* the rest was skipped */
    assert_string_equal(buf, "last");
    assert_int_equal(sat_read_line(f, buf, sizeof buf, &len), SAT_LINE_EOF);
    fclose(f);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(sat_utf8_valid("plain", 5));
    assert_true(sat_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb6", 14));
    assert_false(sat_utf8_valid("\xff", 1));
    assert_false(sat_utf8_valid("\xc3", 1));              /* truncated */
    assert_false(sat_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
    assert_false(sat_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    assert_false(sat_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    assert_false(sat_utf8_valid("a\0b", 3));              /* NUL */
}

static void test_strtab_grows(void **state)
{
    (void)state;
    sat_strtab t;
    sat_strtab_init(&t);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "word%d", i);
        int added;
        assert_int_equal(sat_strtab_add(&t, key, &added), i);
        assert_true(added);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof key, "word%d", i);
        int added;
        assert_int_equal(sat_strtab_find(&t, key), i);
        assert_int_equal(sat_strtab_add(&t, key, &added), i);
        assert_false(added);
    }
    assert_int_equal(sat_strtab_find(&t, "word5000"), -1);
    assert_int_equal(t.n, 5000);
    sat_strtab_free(&t);
}

/* ---- caption files ---- */

static void test_caption_file_quirks(void **state)
{
    (void)state;
    static char data[90000];
    char *p = data;
    p += sprintf(p, "a.jpg#0\tA dog runs .\n");             /* 1 good */
    p += sprintf(p, "a.jpg#1\t  A dog .  \n");              /* 2 good, trimmed */
    p += sprintf(p, "no tab here\n");                       /* 3 no tab */
    p += sprintf(p, "b.jpg.1#0\tmalformed name\n");         /* 4 bad name (the Flickr8k quirk) */
    p += sprintf(p, "b.jpg#x\tbad index\n");                /* 5 bad name */
    p += sprintf(p, "c.jpg#0\t   \n");                      /* 6 empty */
    p += sprintf(p, "c.jpg#1\tbad \xff utf8\n");            /* 7 bad UTF-8 */
    p += sprintf(p, "a.jpg#0\tduplicate\n");                /* 8 duplicate */
    p += sprintf(p, "zzz.jpg#0\tin no split\n");            /* 9 not in split */
    p += sprintf(p, "d.jpg#0\tnot on disk\n");              /* 10 not on disk */
    p += sprintf(p, "   \n");                               /* 11 blank: skipped */
    memset(p, 'x', 70000);                                  /* 12 too long */
    p += 70000;
    p += sprintf(p, "\n");
    p += sprintf(p, "e.PNG#12\tCRLF line\r\n");             /* 13 good */
    memcpy(p, "f.jpg#0\tx\0y\n", 12);                       /* 14 NUL byte */
    p += 12;
    p += sprintf(p, "d.jpg#1\tnot on disk either\n");       /* 15 not on disk, same image */
    const char *path = write_file("captions.txt", data, (size_t)(p - data));
    for (const char *img = "a.jpg\0c.jpg\0e.PNG\0f.jpg\0"; *img; img += strlen(img) + 1)
        write_file(img, "", 0);

    sat_strtab known;
    sat_strtab_init(&known);
    for (const char *img = "a.jpg\0b.jpg\0c.jpg\0d.jpg\0e.PNG\0f.jpg\0"; *img; img += strlen(img) + 1)
        sat_strtab_add(&known, img, NULL);
    sat_caption_options opt = {&known, tmpdir};
    sat_refs refs;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_refs_load(&refs, path, &opt, err, sizeof err), 0);

    assert_int_equal(refs.lines, 15);
    assert_int_equal(refs.nentries, 3);
    assert_int_equal(refs.images.n, 2);
    long a = sat_refs_find(&refs, "a.jpg"), e = sat_refs_find(&refs, "e.PNG");
    assert_true(a >= 0 && e >= 0);
    assert_int_equal(refs.ncaptions[a], 2);
    assert_string_equal(refs.captions[a][0], "A dog runs .");
    assert_string_equal(refs.captions[a][1], "A dog .");
    assert_string_equal(refs.captions[e][0], "CRLF line");
    assert_int_equal(sat_refs_find(&refs, "c.jpg"), -1);

    const sat_caption_problems *pr = &refs.problems;
    const struct { sat_caption_problem kind; long count, first; } want[] = {
        {SAT_CAP_LONG_LINE, 1, 12}, {SAT_CAP_BAD_UTF8, 2, 7},     {SAT_CAP_NO_TAB, 1, 3},
        {SAT_CAP_BAD_NAME, 2, 4},   {SAT_CAP_EMPTY, 1, 6},        {SAT_CAP_DUPLICATE, 1, 8},
        {SAT_CAP_NOT_IN_SPLIT, 1, 9}, {SAT_CAP_NOT_ON_DISK, 2, 10},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(pr->count[want[i].kind], want[i].count);
        assert_int_equal(pr->first_line[want[i].kind], want[i].first);
    }
    assert_int_equal(pr->images[SAT_CAP_NOT_ON_DISK], 1); /* d.jpg twice */
    assert_int_equal(pr->images[SAT_CAP_NOT_IN_SPLIT], 1);

    FILE *msg = tmpfile();
    assert_int_equal(sat_caption_problems_print(pr, "captions.txt", msg), SAT_CAP_NKINDS);
    rewind(msg);
    char line[2048];
    assert_non_null(fgets(line, sizeof line, msg));
    assert_null(fgets(line + 1000, 100, msg)); /* one line */
    assert_non_null(strstr(line, "captions.txt: note: 8 lines skipped (longer than 65536 bytes: 1, first at line 12; "));
    assert_non_null(strstr(line, "; not used: 1 captions of 1 images in no split list (first at line 9); "
                                 "2 captions of 1 images missing from the image directory (first at line 10)\n"));
    fclose(msg);
    sat_refs_free(&refs);
    sat_strtab_free(&known);
}

static void test_caption_file_without_options(void **state)
{
    (void)state;
    const char text[] = "x.jpg#0\tone\nx.jpg#1\ttwo\ny.jpeg#0\tthree\n";
    const char *path = write_file("plain.txt", text, sizeof text - 1);
    sat_refs refs;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_refs_load(&refs, path, NULL, err, sizeof err), 0);
    assert_int_equal(refs.nentries, 3);
    assert_int_equal(refs.images.n, 2);
    for (int k = 0; k < SAT_CAP_NKINDS; k++) assert_int_equal(refs.problems.count[k], 0);
    sat_refs_free(&refs);

    /* An opened text file read twice: the second read starts over. */
    sat_caption_file *cf = sat_caption_file_open(path, err, sizeof err);
    assert_non_null(cf);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(sat_refs_read(&refs, cf, NULL, err, sizeof err), 0);
        assert_int_equal(refs.nentries, 3);
        sat_refs_free(&refs);
    }
    sat_caption_file_close(cf);

    assert_int_equal(sat_refs_load(&refs, "/nonexistent/captions.txt", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/captions.txt"));
    sat_refs_free(&refs);
}

static void test_split_load(void **state)
{
    (void)state;
    const char text[] = "a.jpg\r\n\n  b.jpg  \na.jpg\n";
    const char *path = write_file("split.txt", text, sizeof text - 1);
    sat_strtab set;
    sat_strtab_init(&set);
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_split_load(path, &set, err, sizeof err), 3);
    assert_int_equal(set.n, 2);
    assert_true(sat_strtab_find(&set, "b.jpg") >= 0);

    const char bad[] = "a.jpg\ndir/b.jpg\n";
    path = write_file("bad_split.txt", bad, sizeof bad - 1);
    assert_int_equal(sat_split_load(path, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));
    sat_strtab_free(&set);
}

/* ---- JSON caption files ---- */

/* Karpathy's format: captions numbered per image, problems counted like
 * lines' (the n-th caption), @SPLIT[+SPLIT] resolved from the same file. */
static void test_karpathy_json(void **state)
{
    (void)state;
    const char text[] =
        "{\"dataset\": \"x\", \"images\": ["
        "{\"filename\": \"a.jpg\", \"split\": \"train\", \"sentences\": "
        "[{\"raw\": \" A dog. \", \"tokens\": [\"a\"]}, {\"raw\": \"Two dogs\"}]},"
        "{\"filename\": \"b.jpg\", \"split\": \"restval\", \"sentences\": [{\"raw\": \"  \"}]},"
        "{\"filename\": \"c/d.jpg\", \"split\": \"val\", \"sentences\": [{\"raw\": \"x\"}]},"
        "{\"filename\": \"e.png\", \"split\": \"test\", \"sentences\": [{\"raw\": \"caf\\u00e9\"}]}]}";
    const char *path = write_file("dataset.json", text, sizeof text - 1);
    sat_refs refs;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_refs_load(&refs, path, NULL, err, sizeof err), 0);
    assert_int_equal(refs.nentries, 3);
    long a = sat_refs_find(&refs, "a.jpg");
    assert_true(a >= 0);
    assert_int_equal(refs.ncaptions[a], 2);
    assert_string_equal(refs.captions[a][0], "A dog.");
    assert_string_equal(refs.captions[sat_refs_find(&refs, "e.png")][0], "caf\xc3\xa9");
    assert_int_equal(refs.problems.count[SAT_CAP_EMPTY], 1);
    assert_int_equal(refs.problems.first_line[SAT_CAP_EMPTY], 3);
    assert_int_equal(refs.problems.count[SAT_CAP_BAD_NAME], 1);
    sat_refs_free(&refs);

    /* One parse serves the splits and the captions. */
    sat_caption_file *cf = sat_caption_file_open(path, err, sizeof err);
    assert_non_null(cf);
    sat_strtab set;
    sat_strtab_init(&set);
    assert_int_equal(sat_split_resolve("@train+restval", cf, &set, err, sizeof err), 2);
    assert_true(sat_strtab_find(&set, "b.jpg") >= 0 && sat_strtab_find(&set, "e.png") < 0);
    assert_int_equal(sat_split_resolve("@tset", cf, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "split 'tset'"));
    assert_int_equal(sat_split_resolve("@test", NULL, &set, err, sizeof err), -1);
    sat_caption_options opt = {&set, NULL};
    assert_int_equal(sat_refs_read(&refs, cf, &opt, err, sizeof err), 0);
    assert_int_equal(refs.nentries, 2);
    assert_int_equal(refs.problems.count[SAT_CAP_NOT_IN_SPLIT], 1);
    sat_refs_free(&refs);
    assert_int_equal(sat_refs_read(&refs, cf, NULL, err, sizeof err), 0);
    assert_int_equal(refs.nentries, 3);
    sat_refs_free(&refs);
    sat_caption_file_close(cf);
    sat_strtab_free(&set);
}

/* COCO's format: annotations joined to images by id, numbered per image in
 * annotation order; what is not the format fails the whole file. */
static void test_coco_json(void **state)
{
    (void)state;
    const char text[] =
        "{\"images\": [{\"id\": 7, \"file_name\": \"x.jpg\"}, {\"id\": 3, \"file_name\": \"y.jpg\"}],"
        " \"annotations\": [{\"image_id\": 3, \"caption\": \"y one\"},"
        " {\"image_id\": 7, \"caption\": \"x one\"}, {\"image_id\": 3, \"caption\": \"y two\"}]}";
    const char *path = write_file("captions.json", text, sizeof text - 1);
    sat_refs refs;
    char err[SAT_ERR_MAX];
    assert_int_equal(sat_refs_load(&refs, path, NULL, err, sizeof err), 0);
    long y = sat_refs_find(&refs, "y.jpg");
    assert_int_equal(refs.ncaptions[y], 2);
    assert_string_equal(refs.captions[y][1], "y two");
    sat_refs_free(&refs);
    sat_caption_file *cf = sat_caption_file_open(path, err, sizeof err);
    assert_non_null(cf);
    sat_strtab set;
    sat_strtab_init(&set);
    assert_int_equal(sat_split_resolve("@train", cf, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "has no splits"));
    sat_strtab_free(&set);
    sat_caption_file_close(cf);

    static const char *const bad[][2] = {
        {"{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": [{\"image_id\": 2, "
         "\"caption\": \"c\"}]}", "annotations[0]: image_id 2 is in no image"},
        {"{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}, {\"id\": 1, \"file_name\": \"y.jpg\"}], "
         "\"annotations\": []}", "images[1]: id 1 given twice"},
        {"{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"train\", \"sentences\": [{}]}]}",
         "images[0].sentences[0]: no string \"raw\""},
        {"{\"annotations\": []}", "no \"images\" array"},
        {"{\"images\": [", "not JSON (line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = write_file("bad.json", bad[i][0], strlen(bad[i][0]));
        assert_int_equal(sat_refs_load(&refs, path, NULL, err, sizeof err), -1);
        if (!strstr(err, bad[i][1]) || !strstr(err, "bad.json: "))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i][1]);
        sat_refs_free(&refs);
    }
}

/* ---- vocabulary ---- */

static const char *const train_captions[] = {
    "A dog runs.", "A dog jumps!", "The cat runs", "a cat sleeps", "A bird", "zebra zebra",
};

static sat_vocab *build_vocab(long min_count, int max_size, const char *const *caps, int n)
{
    sat_word_counts wc;
    sat_word_counts_init(&wc);
    for (int i = 0; i < n; i++) sat_word_counts_add(&wc, caps[i]);
    sat_vocab *v = sat_vocab_build(&wc, min_count, max_size);
    sat_word_counts_free(&wc);
    return v;
}

static void test_vocab_build_order(void **state)
{
    (void)state;
    sat_vocab *v = build_vocab(2, 0, train_captions, 6);
    /* a:4, then cat, dog, runs, zebra with 2 each in byte order; bird, jumps, sleeps, the dropped */
    const char *want[] = {"<end>", "<start>", "<unk>", "a", "cat", "dog", "runs", "zebra"};
    long counts[] = {6, 6, 4, 4, 2, 2, 2, 2};
    assert_int_equal(v->n, 8);
    for (int i = 0; i < v->n; i++) {
        assert_string_equal(v->words[i], want[i]);
        assert_int_equal(v->counts[i], counts[i]);
    }
    sat_vocab_free(v);

    /* the same words in another order give the same vocabulary */
    const char *const shuffled[] = {"zebra zebra", "a cat sleeps", "A bird", "The cat runs", "A dog jumps!",
                                    "A dog runs."};
    v = build_vocab(2, 0, shuffled, 6);
    for (int i = 0; i < v->n; i++) assert_string_equal(v->words[i], want[i]);
    sat_vocab_free(v);

    /* max_size keeps the most frequent */
    v = build_vocab(1, 5, train_captions, 6);
    assert_int_equal(v->n, 5);
    assert_string_equal(v->words[3], "a");
    assert_string_equal(v->words[4], "cat");
    assert_int_equal(v->counts[SAT_VOCAB_UNK], 16 - 4 - 2);
    sat_vocab_free(v);
}

static void test_vocab_ids_text(void **state)
{
    (void)state;
    sat_vocab *v = build_vocab(2, 0, train_captions, 6);
    int ids[16];
    int n = sat_vocab_ids(v, "A zebra runs, a DOG sleeps.", ids, 16);
    assert_int_equal(n, 6);
    int want[] = {3, 7, 6, 3, 5, SAT_VOCAB_UNK};
    for (int i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    char *text = sat_vocab_text(v, ids, n);
    assert_string_equal(text, "a zebra runs a dog <unk>");
    free(text);

    /* round trip of in-vocabulary text */
    n = sat_vocab_ids(v, "a cat runs", ids, 16);
    text = sat_vocab_text(v, ids, n);
    assert_string_equal(text, "a cat runs");
    free(text);

    /* max smaller than the caption: count of all words, only max written */
    ids[2] = -7;
    assert_int_equal(sat_vocab_ids(v, "a cat runs", ids, 2), 3);
    assert_int_equal(ids[2], -7);

    /* <start> skipped, stop at <end>, out-of-range ids shown as <unk> */
    int seq[] = {SAT_VOCAB_START, 5, 99, -1, SAT_VOCAB_END, 4};
    text = sat_vocab_text(v, seq, 6);
    assert_string_equal(text, "dog <unk> <unk>");
    free(text);
    assert_int_equal(sat_vocab_id(v, "cat"), 4);
    assert_int_equal(sat_vocab_id(v, "unicorn"), SAT_VOCAB_UNK);
    sat_vocab_free(v);
}

static void test_vocab_text_round_trip(void **state)
{
    (void)state;
    sat_vocab *v = build_vocab(1, 0, train_captions, 6);
    char path[256];
    snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    sat_vocab_write_text(v, f);
    fclose(f);
    char err[SAT_ERR_MAX];
    sat_vocab *w = sat_vocab_read_text(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(w->n, v->n);
    for (int i = 0; i < v->n; i++) {
        assert_string_equal(w->words[i], v->words[i]);
        assert_int_equal(w->counts[i], v->counts[i]);
        assert_int_equal(sat_vocab_id(w, v->words[i]), i);
    }
    sat_vocab_free(w);

    /* the model-file form: a word list */
    w = sat_vocab_from_words(v->words, v->n, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(sat_vocab_id(w, "zebra"), sat_vocab_id(v, "zebra"));
    sat_vocab_free(w);
    sat_vocab_free(v);
}

static void test_vocab_refuses_bad_input(void **state)
{
    (void)state;
    char err[SAT_ERR_MAX];
    char *no_specials[] = {"a", "b", "c"};
    assert_null(sat_vocab_from_words(no_specials, 3, err, sizeof err));
    assert_non_null(strstr(err, "<end>"));
    char *dup[] = {"<end>", "<start>", "<unk>", "dog", "dog"};
    assert_null(sat_vocab_from_words(dup, 5, err, sizeof err));
    char *space[] = {"<end>", "<start>", "<unk>", "hot dog"};
    assert_null(sat_vocab_from_words(space, 4, err, sizeof err));
    char *missing[] = {"<end>", "<start>", "<unk>", NULL};
    assert_null(sat_vocab_from_words(missing, 4, err, sizeof err));
    assert_null(sat_vocab_from_words(dup, 2, err, sizeof err));

    const struct { const char *text; const char *line; } bad[] = {
        {"<end>\t1\n<start>\t1\n<unk>\tx\n", ":3:"},
        {"<end>\t1\n<start>\t1\n<unk>\t0\ndog\t3\ndog\t2\n", ":5:"},
        {"<end>\t1\n<start>\n", ":2:"},
        {"<end>\t1\n", "fewer than"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *path = write_file("bad_vocab.txt", bad[i].text, strlen(bad[i].text));
        assert_null(sat_vocab_read_text(path, err, sizeof err));
        if (!strstr(err, bad[i].line)) fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].line);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_cases),
        cmocka_unit_test(test_read_line),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_strtab_grows),
        cmocka_unit_test(test_caption_file_quirks),
        cmocka_unit_test(test_caption_file_without_options),
        cmocka_unit_test(test_split_load),
        cmocka_unit_test(test_karpathy_json),
        cmocka_unit_test(test_coco_json),
        cmocka_unit_test(test_vocab_build_order),
        cmocka_unit_test(test_vocab_ids_text),
        cmocka_unit_test(test_vocab_text_round_trip),
        cmocka_unit_test(test_vocab_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
