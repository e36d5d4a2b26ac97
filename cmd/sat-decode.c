/* sat-decode — `features` records in, `caption` records out: the attention
 * LSTM decoder, greedy or sampled, one caption per image with the attention
 * map of every word (soft, or hard: one location per word, drawn or argmax).
 *
 * parse options → load the decoder → for each record of the stream: a
 * features record is captioned (and dropped, unless --keep-features), any
 * other record passes through unchanged.  Up to --batch images are read
 * ahead and captioned together (sat_caption_decode_images), the output as
 * if one at a time; drawing (--sample, hard-sample) goes one image at a
 * time, so that each image's draws follow the previous image's as ever.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "captioner.h"
#include "escape.h"
#include "pipeline.h"
#include "util.h"

static const char usage[] =
    "Usage: sat-decode [OPTION]... [FILE]...\n"
    "Caption the features records of sat streams (FILEs, or stdin) with the attention\n"
    "decoder; write caption records (msgpack) or, on a terminal, text.\n"
    "\n"
    "  -m, --model FILE       decoder model, or the name of an installed one, e.g.\n"
    "                         sat-decoder.satm, the soft one (default: " SAT_DEFAULT_DECODER ");\n"
    "                         repeat for an ensemble (their log-probabilities averaged)\n"
    "      --sample           sample words instead of taking the most probable\n"
    "  -t, --temperature T    sampling temperature (default 1; implies --sample)\n"
    "      --seed N           random seed for --sample (default 1)\n"
    "      --max-len N        at most N words (default 30)\n"
    "      --allow-unk        let captions have <unk> (by default the next best word)\n"
    "      --attention MODE   soft (expected context, default), hard-sample (a location\n"
    "                         per word drawn from the attention, --seed) or hard-argmax\n"
    "  -f, --format F         text (id<TAB>caption) or msgpack; default: text on a\n"
    "                         terminal, msgpack otherwise\n"
    "      --batch N          caption up to N images together (default " SAT_STR(SAT_DEFAULT_BATCH) ";\n"
    "                         the same output, faster; --sample and hard-sample: 1)\n"
    "      --keep-features    pass the features records through as well\n"
    "      --max-record N     refuse input records larger than N bytes\n"
    "  -q, --quiet            no progress meter on stderr\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "Example: sat-encode photo.jpg | sat-decode\n";

typedef struct {
    sat_model_list models;
    int sample, max_len, text, keep_features, allow_unk, quiet, batch;
    sat_attend_mode attention;
    float temperature;
    unsigned long seed;
    size_t max_record;
} options;

typedef struct {
    const options *opt;
    sat_captioner *cap;
    sat_writer out;
    sat_rng rng;
    sat_caption *captions; /* the batch's, written one by one */
    int next;
} decoder_run;

static void caption_batch(void *ctx, const sat_features *f, const float *feats, int n)
{
    decoder_run *run = ctx;
    sat_caption_decode_images(&run->cap->ens, feats, n, run->opt->max_len,
                              run->opt->sample ? run->opt->temperature : 0, run->opt->attention,
                              run->opt->allow_unk, &run->rng, run->captions);
    run->next = 0;
}

static void caption_features(void *ctx, const sat_features *f, const float *feats)
{
    decoder_run *run = ctx;
    sat_caption c = run->captions[run->next++];
    if (run->opt->text) {
        char *text = sat_caption_text(run->cap, &c), *id = sat_escape_id(f->id);
        printf("%s\t%s\n", id, text);
        free(id);
        free(text);
    } else {
        sat_caption_meta meta = {.id = f->id, .method = run->opt->sample ? "sample" : "greedy",
                                 .attention = sat_attend_name(run->opt->attention), .alpha_h = (int)f->h, .alpha_w = (int)f->w,
                                 .rank = -1};
        sat_caption_pack(&run->out, run->cap, &c, &meta);
        sat_writer_end(&run->out);
    }
    sat_caption_free(&c);
}

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"sample", no_argument, 0, 'S'},
        {"temperature", required_argument, 0, 't'}, {"seed", required_argument, 0, 's'},
        {"max-len", required_argument, 0, 'L'}, {"format", required_argument, 0, 'f'},
        {"keep-features", no_argument, 0, 'K'}, {"max-record", required_argument, 0, 'M'},
        {"attention", required_argument, 0, 'A'}, {"allow-unk", no_argument, 0, 'U'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},       {"batch", required_argument, 0, 'B'},
        {0, 0, 0, 0}};
    *o = (options){.max_len = 30, .temperature = 1, .seed = 1, .text = -1,
                   .attention = SAT_ATTEND_SOFT, .batch = SAT_DEFAULT_BATCH};
    int c;
    while ((c = sat_getopt(argc, argv, "m:t:f:qhV", longopts)) != -1) {
        switch (c) {
        case 'm': sat_model_list_add(&o->models, optarg); break;
        case 'S': o->sample = 1; break;
        case 'U': o->allow_unk = 1; break;
        case 't':
            o->temperature = (float)sat_parse_double("--temperature", optarg, 1e-3, 100);
            o->sample = 1;
            break;
        case 's': o->seed = (unsigned long)sat_parse_long("--seed", optarg, 0, 1L << 62); break;
        case 'L': o->max_len = (int)sat_parse_long("--max-len", optarg, 1, 1000); break;
        case 'f':
            if (strcmp(optarg, "text") && strcmp(optarg, "msgpack"))
                sat_usage_error("--format: '%s' is not text or msgpack", optarg);
            o->text = strcmp(optarg, "text") == 0;
            break;
        case 'K': o->keep_features = 1; break;
        case 'A': o->attention = sat_attend_option(optarg); break;
        case 'M': o->max_record = (size_t)sat_parse_long("--max-record", optarg, 16, 1L << 40); break;
        case 'B': o->batch = sat_batch_option(optarg); break;
        case 'q': o->quiet = 1; break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (o->text < 0) o->text = isatty(STDOUT_FILENO);
    if (o->sample || o->attention == SAT_ATTEND_SAMPLE) o->batch = 1;
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt;
    parse_options(argc, argv, &opt);
    decoder_run run = {.opt = &opt};
    run.cap = sat_captioner_open(opt.models.path, opt.models.n);
    sat_rng_seed(&run.rng, opt.seed);
    run.captions = sat_xcalloc((size_t)opt.batch, sizeof *run.captions);
    sat_writer_init(&run.out, stdout, "stdout");
    sat_pipeline p = {.cap = run.cap, .out = opt.text ? NULL : &run.out,
                      .keep_features = opt.keep_features, .max_record = opt.max_record,
                      .quiet = opt.quiet,
                      .fn = caption_features, .batch_fn = caption_batch,
                      .batch = opt.batch, .ctx = &run};
    sat_pipeline_run(&p, argv + optind, argc - optind);
    sat_writer_close(&run.out);
    free(run.captions);
    sat_captioner_free(run.cap);
    return sat_exit_status();
}
