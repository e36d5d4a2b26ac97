/* sat-eval — score captions with BLEU-1..4, METEOR (no paraphrase), ROUGE-L
 * and CIDEr-D as the coco-caption toolkit computes them (libcommon/sat/metrics.h,
 * libcommon/sat/meteor.h).
 *
 * Hypotheses are "ID<TAB>caption" lines or a sat stream of `caption` records
 * (told apart by the first byte: a msgpack map starts with 0x80..0x8f, 0xde or
 * 0xdf).  An ID may be a path; its basename names the image.  Problems with
 * single hypotheses (no references, duplicates, empty, malformed) are counted,
 * warned about once per kind, and do not stop the evaluation.
 *
 * --boxes and --entropy also read the attention of caption records
 * (libcommon/sat/pointing.h): where it peaks for the words that name a boxed
 * object, and how spread out it is.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/escape.h"
#include "sat/json.h"
#include "sat/metrics.h"
#include "sat/pointing.h"
#include "sat/stream.h"
#include "sat/util.h"

static const char usage[] =
    "Usage: sat-eval --refs FILE [OPTION]... [FILE]\n"
    "       sat-eval --boxes FILE|--entropy [OPTION]... [FILE]\n"
    "Score captions (FILE, or stdin) against reference captions with BLEU-1..4,\n"
    "METEOR (no paraphrase), ROUGE-L and CIDEr-D, computed as the coco-caption\n"
    "toolkit does (METEOR without Java: WordNet and Snowball).  The captions\n"
    "are lines \"ID<TAB>caption\" or a sat stream of caption records; an ID may be a\n"
    "path, whose basename names the image.\n"
    "\n"
    "  -r, --refs FILE       reference captions, lines \"NAME.jpg#N<TAB>caption\"\n"
    "                        (without: only --boxes and --entropy)\n"
    "  -s, --split FILE      score the images of this split list (one name per line);\n"
    "                        each should have a hypothesis\n"
    "      --json            print one JSON object instead of text\n"
    "      --no-meteor       skip METEOR (it needs WordNet's data, wordnet-base)\n"
    "      --boxes FILE      also the pointing check: for the words naming an object\n"
    "                        boxed in FILE (IMAGE<TAB>WORDS<TAB>X0 Y0 X1 Y1), how\n"
    "                        often the attention's peak, and the image centre, fall\n"
    "                        in its box (caption records with attention)\n"
    "      --entropy         also the attention's mean entropy per word, in nats\n"
    "                        (soft caption records), and that of uniform attention\n"
    "      --max-record N    refuse stream records larger than N bytes (default 268435456)\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "Example: sat-eval -r Flickr8k.token.txt -s Flickr_8k.testImages.txt captions.sat\n";

typedef struct {
    const char *refs, *split, *input, *boxes;
    int json, no_meteor, entropy;
    size_t max_record;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    enum { OPT_JSON = 256, OPT_MAX_RECORD, OPT_NO_METEOR, OPT_BOXES, OPT_ENTROPY };
    static const struct option longopts[] = {
        {"refs", required_argument, 0, 'r'}, {"split", required_argument, 0, 's'},
        {"json", no_argument, 0, OPT_JSON},   {"max-record", required_argument, 0, OPT_MAX_RECORD},
        {"no-meteor", no_argument, 0, OPT_NO_METEOR}, {"help", no_argument, 0, 'h'},
        {"boxes", required_argument, 0, OPT_BOXES}, {"entropy", no_argument, 0, OPT_ENTROPY},
        {"version", no_argument, 0, 'V'},     {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->input = "-";
    int c;
    while ((c = sat_getopt(argc, argv, "r:s:hV", longopts)) != -1) {
        switch (c) {
        case 'r': o->refs = optarg; break;
        case 's': o->split = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_NO_METEOR: o->no_meteor = 1; break;
        case OPT_BOXES: o->boxes = optarg; break;
        case OPT_ENTROPY: o->entropy = 1; break;
        case OPT_MAX_RECORD: o->max_record = (size_t)sat_parse_long("--max-record", optarg, 1, 1L << 40); break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (optind < argc) o->input = argv[optind++];
    if (optind < argc) sat_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->refs && !o->boxes && !o->entropy) sat_usage_error("--refs FILE is required");
}

/* ---- hypotheses ---- */

enum { H_MALFORMED, H_TOO_LONG, H_NO_REFS, H_NOT_IN_SPLIT, H_DUPLICATE, H_EMPTY, H_NKINDS };

static const char *const issue_names[H_NKINDS] = {
    [H_MALFORMED] = "malformed hypotheses (skipped)",
    [H_TOO_LONG] = "hypotheses longer than 65536 bytes (skipped)",
    [H_NO_REFS] = "hypotheses for images without references (skipped)",
    [H_NOT_IN_SPLIT] = "hypotheses for images not in the split (skipped)",
    [H_DUPLICATE] = "duplicate hypotheses for an image (all but the first skipped)",
    [H_EMPTY] = "empty hypotheses (scored)",
};

/* What --boxes and --entropy gather from the scored captions' attention. */
typedef struct {
    sat_boxes *boxes;          /* NULL: no pointing check */
    int entropy;
    sat_pointing pointing;
    double entropy_sum;
    long entropy_words;
    uint32_t cells;            /* the grid's, for uniform attention */
    long no_attention;         /* scored records without a usable α or locations */
    char first_bad[SAT_ERR_MAX];
} attention_stats;

typedef struct {
    const sat_refs *refs;
    const sat_strtab *split;   /* NULL: every image with references */
    sat_strtab images;         /* images with a hypothesis; hyp_text[id] */
    char **hyp_text;
    size_t cap;                /* of hyp_text */
    long read;                 /* hypotheses read */
    long issues[H_NKINDS];
    char first[H_NKINDS][160]; /* where the first of each kind was */
    attention_stats *att;      /* NULL: the captions' attention is not read */
} hyp_set;

static void note(hyp_set *h, int kind, const char *where)
{
    if (!h->issues[kind]++) snprintf(h->first[kind], sizeof h->first[kind], "%s", where);
}

/* Keep a hypothesis, or say why not (an issue kind); -1 when kept. */
static int keep_hypothesis(hyp_set *h, const char *image, const char *text)
{
    if (strlen(text) > SAT_CAPTION_MAX_LINE) return H_TOO_LONG;
    if (h->split && sat_strtab_find(h->split, image) < 0) return H_NOT_IN_SPLIT;
    if (sat_refs_find(h->refs, image) < 0) return H_NO_REFS;
    int added;
    long i = sat_strtab_add(&h->images, image, &added);
    if (!added) return H_DUPLICATE;
    if (h->images.n > h->cap) {
        h->cap = h->cap ? 2 * h->cap : 1024;
        h->hyp_text = sat_xrealloc(h->hyp_text, h->cap * sizeof *h->hyp_text);
    }
    h->hyp_text[i] = sat_xstrdup(text);
    return -1;
}

/* One hypothesis; `where` ("line 7", "record 3") for messages. */
static void add_hypothesis(hyp_set *h, const char *id, const char *text, const char *where)
{
    char at[160];
    snprintf(at, sizeof at, "%s, id %.100s", where, id);
    h->read++;
    int kind = keep_hypothesis(h, sat_path_basename(id), text);
    if (kind >= 0) {
        note(h, kind, at);
        return;
    }
    sat_words w;
    if (sat_tokenize_ptb(text, &w) == 0) note(h, H_EMPTY, at);
    sat_words_free(&w);
}

/* The attention of a scored caption record into the statistics. */
static void add_attention(attention_stats *a, const sat_record *rec)
{
    sat_caption_record c;
    char why[SAT_ERR_MAX];
    if (sat_caption_record_parse(rec, SAT_CAPTION_ATTENTION, &c, why, sizeof why)) {
        if (!a->no_attention++)
            sat_fail(a->first_bad, sizeof a->first_bad, "record %zu (id %s): %s", rec->index, c.id, why);
    } else {
        if (a->boxes) sat_pointing_add(&a->pointing, a->boxes, &c);
        if (a->entropy) sat_attention_entropy_add(&c, &a->entropy_sum, &a->entropy_words);
        a->cells = c.alpha_h * c.alpha_w;
    }
    sat_caption_record_free(&c);
}

static void read_text_hypotheses(FILE *f, hyp_set *h)
{
    char *line = sat_xmalloc(SAT_CAPTION_MAX_LINE + 1), where[32];
    size_t len;
    int st;
    for (long lineno = 1; (st = sat_read_line(f, line, SAT_CAPTION_MAX_LINE + 1, &len)) != SAT_LINE_EOF; lineno++) {
        snprintf(where, sizeof where, "line %ld", lineno);
        char *tab = strchr(line, '\t');
        if (st == SAT_LINE_TOO_LONG) {
            h->read++;
            note(h, H_TOO_LONG, where);
        } else if (len == strspn(line, " \t\r")) {
            continue; /* blank */
        } else if (!sat_utf8_valid(line, len) || !tab || tab == line) {
            h->read++;
            note(h, H_MALFORMED, where);
        } else {
            *tab = 0;
            sat_unescape_id(line); /* as -f text writes ids */
            add_hypothesis(h, line, tab + 1, where);
        }
    }
    free(line);
}

static void on_record(void *ctx, const sat_record *rec, const char *input)
{
    hyp_set *h = ctx;
    if (!sat_record_is(rec, "caption")) return;
    sat_caption_record c;
    int bad = sat_caption_record_parse(rec, SAT_CAPTION_TEXT, &c, NULL, 0);
    if (c.rank > 0) { /* n-best: the best only */
        sat_caption_record_free(&c);
        return;
    }
    char where[32];
    snprintf(where, sizeof where, "record %zu", rec->index);
    if (bad || !*c.id || !sat_utf8_valid(c.text, strlen(c.text))) {
        h->read++;
        note(h, H_MALFORMED, where);
    } else {
        add_hypothesis(h, c.id, c.text, where);
        /* attention needs no references: any caption of the split */
        if (h->att && (!h->split || sat_strtab_find(h->split, sat_path_basename(c.id)) >= 0))
            add_attention(h->att, rec);
    }
    sat_caption_record_free(&c);
}

static int is_stream(FILE *f)
{
    int c = getc(f);
    if (c == EOF) return 0;
    ungetc(c, f);
    return sat_is_map_lead(c);
}

/* One line per kind; all are warnings but hypotheses outside the split
 * (scoring the split's part of a larger set is an ordinary use) and, when
 * the attention is read, images without references (photos to point at). */
static void report_issues(const hyp_set *h, const char *name)
{
    for (int k = 0; k < H_NKINDS; k++) {
        if (!h->issues[k]) continue;
        if (k == H_NO_REFS && !h->refs->lines) continue; /* no --refs: the attention only */
        if (k == H_NOT_IN_SPLIT || (k == H_NO_REFS && h->att))
            fprintf(stderr, "%s: %s: %s: %ld (first at %s)\n", sat_progname, name, issue_names[k],
                    h->issues[k], h->first[k]);
        else
            sat_warn("%s: %s: %ld (first at %s)", name, issue_names[k], h->issues[k], h->first[k]);
    }
}

/* ---- scoring ---- */

/* Add the scored images to m: the split's images in split order, or every
 * image with a hypothesis.  Warns about split images left out. */
static void collect(const hyp_set *h, const sat_strtab *split, const char *split_name, sat_metrics *m)
{
    const sat_strtab *order = split ? split : &h->images;
    long missing = 0;
    const char *first_missing = NULL;
    for (size_t i = 0; i < order->n; i++) {
        const char *image = order->keys[i];
        long hi = sat_strtab_find(&h->images, image), ri = sat_refs_find(h->refs, image);
        if (hi < 0 || ri < 0) {
            if (!missing++) first_missing = image;
            continue;
        }
        sat_metrics_add(m, h->hyp_text[hi], (const char *const *)h->refs->captions[ri], h->refs->ncaptions[ri]);
    }
    if (missing)
        sat_warn("%s: %ld of %zu images have no hypothesis or no references (first: %s)", split_name, missing,
                 order->n, first_missing);
}

/* Scores are printed x100, the literature's scale (and README's, results/,
 * sat-train's), in the text and in the JSON alike. */
#define SCALE 100.0

static void print_text(const sat_metric_scores *s)
{
    printf("images       %zu\nreflen       %ld\ntestlen      %ld\n", s->images, s->bleu_stats.reflen,
           s->bleu_stats.testlen);
    for (int n = 0; n < SAT_BLEU_N; n++) printf("BLEU-%d       %.4f\n", n + 1, SCALE * s->bleu[n]);
    for (int n = 0; n < SAT_BLEU_N; n++) printf("BLEU-%d-nobp  %.4f\n", n + 1, SCALE * s->bleu_nobp[n]);
    if (s->has_meteor) printf("METEOR       %.4f\n", SCALE * s->meteor);
    printf("ROUGE-L      %.4f\nCIDEr-D      %.4f\n", SCALE * s->rouge_l, SCALE * s->cider_d);
}

/* pointing-words, pointing, pointing-centre; entropy, entropy-uniform */
static void print_attention_text(const attention_stats *a)
{
    if (a->boxes) {
        const sat_pointing *p = &a->pointing;
        printf("pointing-words   %ld\n", p->words);
        printf("pointing         %.4f\n", p->words ? SCALE * (double)p->hits / p->words : 0);
        printf("pointing-centre  %.4f\n", p->words ? SCALE * (double)p->centre_hits / p->words : 0);
    }
    if (a->entropy && a->entropy_words) {
        printf("entropy          %.6f\n", a->entropy_sum / a->entropy_words);
        printf("entropy-uniform  %.6f\n", log(a->cells));
    }
}

static void print_attention_json(const attention_stats *a)
{
    if (a->boxes) {
        const sat_pointing *p = &a->pointing;
        printf(",\"pointing\":{\"captions\":%ld,\"words\":%ld,\"hits\":%ld,\"centre_hits\":%ld}",
               p->captions, p->words, p->hits, p->centre_hits);
    }
    if (a->entropy && a->entropy_words) {
        printf(",\"entropy\":{\"words\":%ld,\"mean\":", a->entropy_words);
        sat_json_number(stdout, a->entropy_sum / a->entropy_words);
        printf(",\"uniform\":");
        sat_json_number(stdout, log(a->cells));
        putchar('}');
    }
}

static void json_array(const char *key, const double *v, int n)
{
    printf(",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        if (i) putchar(',');
        sat_json_number(stdout, SCALE * v[i]);
    }
    putchar(']');
}

static void print_attention_only_json(const attention_stats *a)
{
    printf("{\"images\":0");
    print_attention_json(a);
    printf("}\n");
}

static void print_json(const sat_metric_scores *s, const hyp_set *h, const attention_stats *a)
{
    static const char *const keys[H_NKINDS] = {"malformed", "too_long", "no_refs", "not_in_split",
                                               "duplicate", "empty"};
    printf("{\"scale\":%g,\"images\":%zu,\"reflen\":%ld,\"testlen\":%ld", SCALE, s->images,
           s->bleu_stats.reflen, s->bleu_stats.testlen);
    json_array("bleu", s->bleu, SAT_BLEU_N);
    json_array("bleu_nobp", s->bleu_nobp, SAT_BLEU_N);
    if (s->has_meteor) {
        printf(",\"meteor\":");
        sat_json_number(stdout, SCALE * s->meteor);
    }
    printf(",\"rouge_l\":");
    sat_json_number(stdout, SCALE * s->rouge_l);
    printf(",\"cider_d\":");
    sat_json_number(stdout, SCALE * s->cider_d);
    if (a) print_attention_json(a);
    printf(",\"hypotheses\":{\"read\":%ld", h->read);
    for (int k = 0; k < H_NKINDS; k++) printf(",\"%s\":%ld", keys[k], h->issues[k]);
    printf("}}\n");
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_args(argc, argv, &o);
    char err[SAT_ERR_MAX];

    sat_caption_file *cf = o.refs ? sat_caption_file_open(o.refs, err, sizeof err) : NULL;
    if (o.refs && !cf) sat_die("%s", err);
    sat_strtab split;
    sat_strtab_init(&split);
    if (o.split) sat_split_resolve_or_die(o.split, cf, &split);
    sat_refs refs = {0}; /* without --refs: none, the attention only */
    if (cf && sat_refs_read(&refs, cf, NULL, err, sizeof err) < 0) sat_die("%s", err);
    sat_caption_file_close(cf);
    /* Bad lines of the reference file (Flickr8k has one) are reported, not errors. */
    if (o.refs) sat_caption_problems_print(&refs.problems, o.refs, stderr);

    attention_stats att = {.entropy = o.entropy};
    if (o.boxes && !(att.boxes = sat_boxes_load(o.boxes, err, sizeof err))) sat_die("%s", err);
    hyp_set h = {.refs = &refs, .split = o.split ? &split : NULL,
                 .att = o.boxes || o.entropy ? &att : NULL};
    sat_strtab_init(&h.images);
    const char *name = strcmp(o.input, "-") == 0 ? "stdin" : o.input;
    FILE *f = sat_fopen_check(o.input, "rb");
    int stream = is_stream(f);
    if (h.att && !stream)
        sat_die("%s: --boxes and --entropy need a stream of caption records (their attention)", name);
    sat_each each = {.max_record = o.max_record, .record = on_record, .ctx = &h};
    if (stream) sat_each_record_of(&each, f, name);
    else read_text_hypotheses(f, &h);
    if (ferror(f)) sat_die("%s: read error", name);
    if (f != stdin) fclose(f);
    report_issues(&h, name);
    if (att.no_attention)
        sat_warn("%s: caption records without usable attention (not in --boxes/--entropy): %ld (first: %s)",
                 name, att.no_attention, att.first_bad);

    sat_metrics *m = sat_metrics_new();
    sat_meteor *meteor = o.no_meteor ? NULL : sat_meteor_new(err, sizeof err);
    if (!o.no_meteor && !meteor) sat_die("%s (or use --no-meteor)", err);
    sat_metrics_set_meteor(m, meteor);
    collect(&h, o.split ? &split : NULL, o.split, m);
    if (!sat_metrics_count(m) && !h.att) sat_die("%s: no hypothesis to score (%ld read)", name, h.read);
    if (!o.json) printf("# scores x100; pointing in %% of words; entropy in nats\n");
    if (!sat_metrics_count(m)) {
        /* photos without references: their attention alone */
        if (o.refs)
            fprintf(stderr, "%s: %s: no hypothesis with references: attention only (%ld read)\n",
                    sat_progname, name, h.read);
        if (o.json) print_attention_only_json(&att);
        else print_attention_text(&att);
    } else {
        sat_metric_scores s;
        sat_metrics_score(m, &s);
        if (o.json) print_json(&s, &h, h.att);
        else {
            print_text(&s);
            if (h.att) print_attention_text(&att);
        }
    }
    sat_fclose_check(stdout, "stdout");

    sat_metrics_free(m);
    sat_meteor_free(meteor);
    sat_boxes_free(att.boxes);
    for (size_t i = 0; i < h.images.n; i++) free(h.hyp_text[i]);
    free(h.hyp_text);
    sat_strtab_free(&h.images);
    sat_refs_free(&refs);
    sat_strtab_free(&split);
    return sat_exit_status();
}
