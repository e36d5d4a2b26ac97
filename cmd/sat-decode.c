/* sat-decode — `features` records in, `caption` records out: the attention
 * LSTM decoder, greedy or sampled, one caption per image with the attention
 * map of every word (soft, or hard: one location per word, drawn or argmax).
 *
 * parse options → load the decoder → for each record of the stream: a
 * features record is captioned (and dropped, unless --keep-features), any
 * other record passes through unchanged.  Up to --batch images are read
 * ahead and captioned together (sat_caption_decode), the output as
 * if one at a time; drawing (--sample, hard-sample) goes one image at a
 * time, so that each image's draws follow the previous image's as ever.
 */
#include <getopt.h>
#include <stdlib.h>

#include "sat/captioner.h"
#include "sat/escape.h"
#include "sat/pipeline.h"
#include "sat/util.h"

static const char usage[] =
    "Usage: sat-decode [OPTION]... [FILE]...\n"
    "Caption the features records of sat streams (FILEs, or stdin) with the attention\n"
    "decoder; write caption records (msgpack) or, on a terminal, text.\n"
    "\n"
    SAT_STAGE_USAGE_MODEL
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
    SAT_STAGE_USAGE_END
    "\n"
    "Example: sat-encode photo.jpg | sat-decode\n";

typedef struct {
    sat_stage_options stage;
    int sample, allow_unk;
    float temperature;
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
    const options *o = run->opt;
    const sat_decode_options d = {.max_len = o->stage.max_len,
                                  .temperature = o->sample ? o->temperature : 0,
                                  .attend = o->stage.attention, .allow_unk = o->allow_unk,
                                  .rng = &run->rng};
    sat_caption_decode(&run->cap->ens, feats, n, (int)sat_features_views(f), &d, run->captions);
    run->next = 0;
}

static void caption_features(void *ctx, const sat_features *f, const float *feats)
{
    decoder_run *run = ctx;
    sat_caption c = run->captions[run->next++];
    if (run->opt->stage.text) {
        char *text = sat_caption_text(run->cap, &c), *id = sat_escape_id(f->id);
        printf("%s\t%s\n", id, text);
        free(id);
        free(text);
    } else {
        sat_caption_meta meta = {.id = f->id, .method = run->opt->sample ? "sample" : "greedy",
                                 .attention = sat_attend_name(run->opt->stage.attention),
                                 .alpha_h = (int)f->h, .alpha_w = (int)f->w,
                                 .rank = -1};
        sat_caption_pack(&run->out, run->cap, &c, &meta);
        sat_writer_end(&run->out);
    }
    sat_caption_free(&c);
}

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        SAT_STAGE_LONGOPTS,
        {"sample", no_argument, 0, 'S'}, {"temperature", required_argument, 0, 't'},
        {"allow-unk", no_argument, 0, 'U'}, {0, 0, 0, 0}};
    *o = (options){.stage = SAT_STAGE_DEFAULTS, .temperature = 1};
    int c;
    while ((c = sat_getopt(argc, argv, SAT_STAGE_SHORTOPTS "t:", longopts)) != -1) {
        switch (c) {
        case 'S': o->sample = 1; break;
        case 'U': o->allow_unk = 1; break;
        case 't':
            o->temperature = (float)sat_parse_double("--temperature", optarg, 1e-3, 100);
            o->sample = 1;
            break;
        default: sat_stage_option(&o->stage, c, optarg, usage);
        }
    }
    sat_stage_options_end(&o->stage);
    if (o->sample || o->stage.attention == SAT_ATTEND_SAMPLE) o->stage.batch = 1;
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt;
    parse_options(argc, argv, &opt);
    const sat_stage_options *so = &opt.stage;
    decoder_run run = {.opt = &opt};
    run.cap = sat_stage_captioner(so);
    sat_rng_seed(&run.rng, so->seed);
    run.captions = sat_xcalloc((size_t)so->batch, sizeof *run.captions);
    sat_writer_init(&run.out, stdout, "stdout");
    sat_pipeline p = sat_stage_pipeline(so, run.cap, &run.out);
    p.fn = caption_features, p.batch_fn = caption_batch, p.ctx = &run;
    sat_pipeline_run(&p, argv + optind, argc - optind);
    sat_writer_close(&run.out);
    free(run.captions);
    sat_captioner_free(run.cap);
    return sat_exit_status();
}
