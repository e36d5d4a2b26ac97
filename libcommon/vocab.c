/* vocab.c — see vocab.h. */
#include "sat/vocab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sat/util.h"

static const char *const special_words[SAT_VOCAB_NSPECIAL] = {"<end>", "<start>", "<unk>"};

void sat_word_counts_init(sat_word_counts *wc)
{
    memset(wc, 0, sizeof *wc);
    sat_strtab_init(&wc->words);
}

void sat_word_counts_add(sat_word_counts *wc, const char *caption)
{
    sat_words w;
    sat_tokenize_words(caption, &w);
    for (int i = 0; i < w.n; i++) {
        int added;
        long id = sat_strtab_add(&wc->words, w.words[i], &added);
        if (added && (size_t)id == wc->counts_cap) {
            wc->counts_cap = wc->counts_cap ? 2 * wc->counts_cap : 1024;
            wc->counts = sat_xrealloc(wc->counts, wc->counts_cap * sizeof *wc->counts);
        }
        if (added) wc->counts[id] = 0;
        wc->counts[id]++;
    }
    wc->ntokens += w.n;
    wc->ncaptions++;
    sat_words_free(&w);
}

void sat_word_counts_free(sat_word_counts *wc)
{
    sat_strtab_free(&wc->words);
    free(wc->counts);
    memset(wc, 0, sizeof *wc);
}

static sat_vocab *vocab_new(void)
{
    sat_vocab *v = sat_xcalloc(1, sizeof *v);
    sat_strtab_init(&v->index);
    return v;
}

/* Append a word; 0 if it is already there. */
static int vocab_push(sat_vocab *v, const char *word, long count)
{
    int added;
    sat_strtab_add(&v->index, word, &added);
    if (!added) return 0;
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->counts = sat_xrealloc(v->counts, (size_t)v->cap * sizeof *v->counts);
    }
    v->words = v->index.keys; /* may have moved */
    v->counts[v->n++] = count;
    return 1;
}

void sat_vocab_free(sat_vocab *v)
{
    if (!v) return;
    sat_strtab_free(&v->index); /* owns v->words */
    free(v->counts);
    free(v);
}

typedef struct {
    const char *word;
    long count;
} word_count;

static int by_count_then_bytes(const void *a, const void *b)
{
    const word_count *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

sat_vocab *sat_vocab_build(const sat_word_counts *wc, long min_count, int max_size)
{
    size_t n = 0;
    word_count *kept = sat_xmalloc(wc->words.n * sizeof *kept);
    for (size_t i = 0; i < wc->words.n; i++)
        if (wc->counts[i] >= min_count) kept[n++] = (word_count){wc->words.keys[i], wc->counts[i]};
    qsort(kept, n, sizeof *kept, by_count_then_bytes);
    if (n > SAT_VOCAB_MAX_SIZE - SAT_VOCAB_NSPECIAL) n = SAT_VOCAB_MAX_SIZE - SAT_VOCAB_NSPECIAL;
    if (max_size > 0) {
        size_t room = max_size > SAT_VOCAB_NSPECIAL ? (size_t)max_size - SAT_VOCAB_NSPECIAL : 0;
        if (n > room) n = room;
    }

    sat_vocab *v = vocab_new();
    long covered = 0;
    for (size_t i = 0; i < n; i++) covered += kept[i].count;
    vocab_push(v, special_words[SAT_VOCAB_END], wc->ncaptions);
    vocab_push(v, special_words[SAT_VOCAB_START], wc->ncaptions);
    vocab_push(v, special_words[SAT_VOCAB_UNK], wc->ntokens - covered);
    /* A training word can never be "<unk>": the tokenizer drops '<' and '>'. */
    for (size_t i = 0; i < n; i++) vocab_push(v, kept[i].word, kept[i].count);
    free(kept);
    return v;
}

static int valid_word(const char *w)
{
    size_t n = strlen(w);
    if (n == 0 || n > SAT_VOCAB_MAX_WORD || !sat_utf8_valid(w, n)) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] <= ' ' || w[i] == 0x7f) return 0;
    return 1;
}

/* Append the next word of a stored vocabulary; -1 with err when it is not acceptable. */
static int vocab_accept(sat_vocab *v, const char *word, long count, char *err, size_t errlen)
{
    int i = v->n;
    if (!word) {
        sat_fail(err, errlen, "word %d is missing", i);
        return -1;
    }
    if (i < SAT_VOCAB_NSPECIAL && strcmp(word, special_words[i]) != 0) {
        sat_fail(err, errlen, "word %d must be %s", i, special_words[i]);
        return -1;
    }
    if (!valid_word(word)) {
        sat_fail(err, errlen, "word %d is empty, too long, not UTF-8 or has whitespace", i);
        return -1;
    }
    if (!vocab_push(v, word, count)) {
        sat_fail(err, errlen, "word %d duplicates an earlier word", i);
        return -1;
    }
    return 0;
}

sat_vocab *sat_vocab_from_words(char *const *words, int n, char *err, size_t errlen)
{
    if (n < SAT_VOCAB_NSPECIAL || n > SAT_VOCAB_MAX_SIZE) {
        sat_fail(err, errlen, "vocabulary of %d words (must be %d to %d)", n, SAT_VOCAB_NSPECIAL,
                 SAT_VOCAB_MAX_SIZE);
        return NULL;
    }
    sat_vocab *v = vocab_new();
    for (int i = 0; i < n; i++) {
        if (vocab_accept(v, words[i], 0, err, errlen) < 0) {
            sat_vocab_free(v);
            return NULL;
        }
    }
    return v;
}

int sat_words_first_difference(char *const *a, int na, char *const *b, int nb)
{
    int n = na < nb ? na : nb;
    for (int i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0) return i;
    return na == nb ? -1 : n;
}

int sat_vocab_id(const sat_vocab *v, const char *word)
{
    long id = sat_strtab_find(&v->index, word);
    return id < 0 ? SAT_VOCAB_UNK : (int)id;
}

int sat_vocab_ids(const sat_vocab *v, const char *caption, int *ids, int max)
{
    sat_words w;
    int n = sat_tokenize_words(caption, &w);
    for (int i = 0; i < n && i < max; i++) ids[i] = sat_vocab_id(v, w.words[i]);
    sat_words_free(&w);
    return n;
}

char *sat_vocab_text(const sat_vocab *v, const int *ids, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        int id = ids[i] >= 0 && ids[i] < v->n ? ids[i] : SAT_VOCAB_UNK;
        len += strlen(v->words[id]) + 1;
    }
    char *s = sat_xmalloc(len), *p = s;
    *p = 0;
    for (int i = 0; i < n && ids[i] != SAT_VOCAB_END; i++) {
        if (ids[i] == SAT_VOCAB_START) continue;
        int id = ids[i] >= 0 && ids[i] < v->n ? ids[i] : SAT_VOCAB_UNK;
        p += sprintf(p, "%s%s", p == s ? "" : " ", v->words[id]);
    }
    return s;
}

void sat_vocab_write_text(const sat_vocab *v, FILE *f)
{
    for (int i = 0; i < v->n; i++) fprintf(f, "%s\t%ld\n", v->words[i], v->counts[i]);
}

/* "word<TAB>count" into v; a message in err otherwise. */
static int read_vocab_line(sat_vocab *v, char *line, char *err, size_t errlen)
{
    char *tab = strchr(line, '\t'), *end;
    if (!tab) {
        sat_fail(err, errlen, "no tab between word and count");
        return -1;
    }
    *tab = 0;
    errno = 0;
    long count = strtol(tab + 1, &end, 10);
    if (errno || end == tab + 1 || *end || count < 0) {
        sat_fail(err, errlen, "count '%s' is not a whole number >= 0", tab + 1);
        return -1;
    }
    return vocab_accept(v, line, count, err, errlen);
}

sat_vocab *sat_vocab_read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sat_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sat_vocab *v = vocab_new();
    char line[SAT_VOCAB_MAX_WORD + 32], msg[256] = "";
    size_t len;
    int st;
    long lineno = 0;
    while (!*msg && (st = sat_read_line(f, line, sizeof line, &len)) != SAT_LINE_EOF) {
        lineno++;
        if (st == SAT_LINE_TOO_LONG || strlen(line) != len)
            snprintf(msg, sizeof msg, "line too long or with a NUL byte");
        else if (v->n == SAT_VOCAB_MAX_SIZE)
            snprintf(msg, sizeof msg, "more than %d words", SAT_VOCAB_MAX_SIZE);
        else
            read_vocab_line(v, line, msg, sizeof msg);
    }
    if (*msg) sat_fail(err, errlen, "%s:%ld: %s", path, lineno, msg);
    else if (ferror(f)) sat_fail(err, errlen, "%s: read error: %s", path, strerror(errno ? errno : EIO));
    else if (v->n < SAT_VOCAB_NSPECIAL) sat_fail(err, errlen, "%s: fewer than %d words", path, SAT_VOCAB_NSPECIAL);
    int failed = *msg || ferror(f) || v->n < SAT_VOCAB_NSPECIAL;
    fclose(f);
    if (failed) {
        sat_vocab_free(v);
        return NULL;
    }
    return v;
}
