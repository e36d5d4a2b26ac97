/* sat-vocab — build the decoder's vocabulary from the training captions.
 *
 * Reads a caption file (Flickr8k.token.txt), keeps the captions of the images
 * of the training split, counts their words (sat_tokenize_words) and writes
 * the vocabulary as "word<TAB>count" lines in id order (formats/captions.md).
 * A summary goes to stderr.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captions.h"
#include "sat/util.h"
#include "sat/vocab.h"

static const char usage[] =
    "Usage: sat-vocab --captions FILE --split FILE [OPTION]...\n"
    "Build the decoder's vocabulary from the captions of the training images and\n"
    "write it as \"word<TAB>count\" lines in id order: <end>, <start>, <unk>, then the\n"
    "words by descending count (ties in byte order).  A summary goes to stderr.\n"
    "\n"
    "  -c, --captions FILE     caption file, lines \"NAME.jpg#N<TAB>caption\"\n"
    "  -s, --split FILE        the training images, one name per line\n"
    "      --other-split FILE  another split list (dev, test; repeatable): captions\n"
    "                          of images in no split list are reported\n"
    "      --images DIR        report captions of images that are not files in DIR\n"
    "  -m, --min-count N       keep the words seen at least N times (default 5)\n"
    "      --max-size N        at most N words, the 3 special ones included\n"
    "  -o, --output FILE       write the vocabulary to FILE (default stdout)\n"
    "      --strict            exit 1 when the caption file has bad lines\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "Example: sat-vocab -c Flickr8k.token.txt -s Flickr_8k.trainImages.txt -o vocab.txt\n";

typedef struct {
    const char *captions, *split, *image_dir, *output;
    const char **other_splits;
    int nother;
    long min_count;
    int max_size;
    int strict;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    enum { OPT_OTHER = 256, OPT_IMAGES, OPT_MAX_SIZE, OPT_STRICT };
    static const struct option longopts[] = {
        {"captions", required_argument, 0, 'c'},  {"split", required_argument, 0, 's'},
        {"other-split", required_argument, 0, OPT_OTHER}, {"images", required_argument, 0, OPT_IMAGES},
        {"min-count", required_argument, 0, 'm'}, {"max-size", required_argument, 0, OPT_MAX_SIZE},
        {"output", required_argument, 0, 'o'},    {"strict", no_argument, 0, OPT_STRICT},
        {"help", no_argument, 0, 'h'},            {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->min_count = 5;
    o->other_splits = sat_xcalloc((size_t)argc, sizeof *o->other_splits);
    int c;
    while ((c = sat_getopt(argc, argv, "c:s:m:o:hV", longopts)) != -1) {
        switch (c) {
        case 'c': o->captions = optarg; break;
        case 's': o->split = optarg; break;
        case OPT_OTHER: o->other_splits[o->nother++] = optarg; break;
        case OPT_IMAGES: o->image_dir = optarg; break;
        case 'm': o->min_count = sat_parse_long("--min-count", optarg, 1, 1000000000); break;
        case OPT_MAX_SIZE:
            o->max_size = (int)sat_parse_long("--max-size", optarg, SAT_VOCAB_NSPECIAL + 1, SAT_VOCAB_MAX_SIZE);
            break;
        case 'o': o->output = optarg; break;
        case OPT_STRICT: o->strict = 1; break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (optind < argc) sat_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->captions) sat_usage_error("--captions FILE is required");
    if (!o->split) sat_usage_error("--split FILE is required");
}

/* Count the words of the training captions; warns about training images without captions. */
static void count_train_words(const sat_refs *refs, const sat_strtab *train, const char *split_name,
                              sat_word_counts *wc)
{
    long missing = 0;
    const char *first_missing = NULL;
    for (size_t i = 0; i < train->n; i++) {
        long id = sat_refs_find(refs, train->keys[i]);
        if (id < 0) {
            if (!missing++) first_missing = train->keys[i];
            continue;
        }
        for (int j = 0; j < refs->ncaptions[id]; j++) sat_word_counts_add(wc, refs->captions[id][j]);
    }
    if (missing)
        sat_warn("%s: %ld of %zu images have no captions (first: %s)", split_name, missing, train->n,
                 first_missing);
}

static void write_vocab(const sat_vocab *v, const char *output)
{
    if (!output || strcmp(output, "-") == 0) {
        sat_vocab_write_text(v, stdout);
        sat_fclose_check(stdout, "stdout");
        return;
    }
    sat_atomic a;
    sat_atomic_open(&a, output);
    sat_vocab_write_text(v, a.f);
    sat_atomic_commit(&a);
}

static void print_summary(const options *o, const sat_refs *refs, const sat_strtab *train,
                          const sat_word_counts *wc, const sat_vocab *v)
{
    fprintf(stderr, "%s: %s: %ld lines, %ld captions of %zu images\n", sat_progname, o->captions,
            refs->lines, refs->nentries, refs->images.n);
    fprintf(stderr, "%s: %s: %zu images, %ld captions, %ld words (%zu distinct)\n", sat_progname, o->split,
            train->n, wc->ncaptions, wc->ntokens, wc->words.n);
    fprintf(stderr, "%s: vocabulary: %d words (%d special + %d seen at least %ld times)\n", sat_progname,
            v->n, SAT_VOCAB_NSPECIAL, v->n - SAT_VOCAB_NSPECIAL, o->min_count);
    long unk = v->counts[SAT_VOCAB_UNK];
    double coverage = wc->ntokens ? 100.0 * (double)(wc->ntokens - unk) / (double)wc->ntokens : 0;
    fprintf(stderr, "%s: coverage: %.2f%% of the training words (%ld become <unk>)\n", sat_progname,
            coverage, unk);
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_args(argc, argv, &o);

    char err[SAT_ERR_MAX];
    sat_caption_file *cf = sat_caption_file_open(o.captions, err, sizeof err);
    if (!cf) sat_die("%s", err);
    sat_strtab train, known;
    sat_strtab_init(&train);
    sat_strtab_init(&known);
    sat_split_resolve_or_die(o.split, cf, &train);
    if (o.nother) {
        sat_split_resolve_or_die(o.split, cf, &known);
        for (int i = 0; i < o.nother; i++) sat_split_resolve_or_die(o.other_splits[i], cf, &known);
    }

    sat_caption_options copt = {o.nother ? &known : NULL, o.image_dir};
    sat_refs refs;
    if (sat_refs_read(&refs, cf, &copt, err, sizeof err) < 0) sat_die("%s", err);
    sat_caption_file_close(cf);
    /* The real Flickr8k file always has bad lines: reported, an error only with --strict. */
    long bad_kinds = sat_caption_problems_print(&refs.problems, o.captions, stderr);

    sat_word_counts wc;
    sat_word_counts_init(&wc);
    count_train_words(&refs, &train, o.split, &wc);
    if (!wc.ncaptions) sat_die("%s: no captions for the images of %s", o.captions, o.split);
    sat_vocab *v = sat_vocab_build(&wc, o.min_count, o.max_size);
    write_vocab(v, o.output);
    print_summary(&o, &refs, &train, &wc, v);

    sat_vocab_free(v);
    sat_word_counts_free(&wc);
    sat_refs_free(&refs);
    sat_strtab_free(&train);
    sat_strtab_free(&known);
    free(o.other_splits);
    return sat_exit_status() || (o.strict && bad_kinds);
}
