/* sat-beam — beam search captions: `features` records in, `caption`
 * records out (the n best per image), with the attention of every word.
 * The search is libcommon/sat/beam.h's; this file parses the options, runs it
 * on the images of the streams and writes the captions.
 *
 * Up to --batch images are read ahead and searched together, and the
 * captions are written in the order of the images, the same bytes as one
 * image at a time (hard-sample, whose draws come from one generator, goes
 * one at a time).
 */
#include <getopt.h>
#include <stdlib.h>

#include "sat/beam.h"
#include "sat/escape.h"
#include "sat/pipeline.h"
#include "sat/util.h"

static const char usage[] =
    "Usage: sat-beam [OPTION]... [FILE]...\n"
    "Caption the features records of sat streams (FILEs, or stdin) by beam search;\n"
    "write caption records (msgpack) or, on a terminal, text.\n"
    "\n"
    "  -k, --beam K           beam width (default 3)\n"
    "  -n, --nbest N          write the N best captions of each image (default 1, <= K)\n"
    "      --length-norm A    rank finished captions by logprob / length^A (default 0: off)\n"
    SAT_STAGE_USAGE_MODEL
    "      --min-len N        at least N words (default 1: no empty caption)\n"
    "      --max-len N        at most N words (default 30)\n"
    "      --allow-unk        let captions have <unk> (by default never written)\n"
    "      --attention MODE   soft (expected context, default), hard-sample (a location\n"
    "                         per hypothesis and word drawn from the attention, --seed)\n"
    "                         or hard-argmax\n"
    "      --seed N           random seed for hard-sample (default 1)\n"
    SAT_STAGE_USAGE_FORMAT
    "      --batch N          search up to N images together (default " SAT_STR(SAT_DEFAULT_BATCH) ";\n"
    "                         the same output, faster; hard-sample: 1)\n"
    SAT_STAGE_USAGE_END
    "\n"
    "Example: sat-encode photo.jpg | sat-beam -k 5\n";

typedef struct {
    sat_stage_options stage;
    sat_beam_options beam; /* k, min_len, length_norm, decode.allow_unk; the rest from stage */
    int nbest;
} options;

/* At most this many hypotheses of a batch (K × --batch) at once. */
#define BEAM_MAX_ROWS 4096

typedef struct {
    const options *opt;
    sat_captioner *cap;
    sat_writer out;
    sat_rng rng;    /* hard-sample's draws */
    sat_beam *beam; /* its last search: the batch's images */
    int written;    /* the batch's images written so far */
} beam_run;

static void write_caption(beam_run *b, const sat_features *f, const sat_caption *c, int rank)
{
    if (b->opt->stage.text) {
        char *text = sat_caption_text(b->cap, c), *id = sat_escape_id(f->id);
        if (b->opt->nbest > 1) printf("%s\t%d\t%.4f\t%s\n", id, rank, c->logprob, text);
        else printf("%s\t%s\n", id, text);
        free(id);
        free(text);
        return;
    }
    sat_caption_meta meta = {.id = f->id, .method = "beam",
                             .attention = sat_attend_name(b->opt->stage.attention),
                             .alpha_h = (int)f->h, .alpha_w = (int)f->w,
                             .rank = b->opt->nbest > 1 ? rank : -1};
    sat_caption_pack(&b->out, b->cap, c, &meta);
    sat_writer_end(&b->out);
}

/* The n images of a batch (feats: n × views × L × D; the pipeline's batches
 * have one view count), searched together. */
static void search_batch(void *ctx, const sat_features *f, const float *feats, int n)
{
    beam_run *b = ctx;
    sat_beam_search(b->beam, feats, n, (int)sat_features_views(f));
    b->written = 0;
}

/* The next image of the batch: its n best captions. */
static void write_captions(void *ctx, const sat_features *f, const float *feats)
{
    beam_run *b = ctx;
    const int image = b->written++, found = sat_beam_count(b->beam, image);
    for (int r = 0; r < b->opt->nbest && r < found; r++)
        write_caption(b, f, sat_beam_caption(b->beam, image, r), r);
}

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        SAT_STAGE_LONGOPTS,
        {"beam", required_argument, 0, 'k'},      {"nbest", required_argument, 0, 'n'},
        {"length-norm", required_argument, 0, 'N'}, {"min-len", required_argument, 0, 'l'},
        {"allow-unk", no_argument, 0, 'U'},       {0, 0, 0, 0}};
    *o = (options){.stage = SAT_STAGE_DEFAULTS, .beam = {.k = 3, .min_len = 1}, .nbest = 1};
    sat_beam_options *bo = &o->beam;
    sat_stage_options *so = &o->stage;
    int c;
    while ((c = sat_getopt(argc, argv, SAT_STAGE_SHORTOPTS "k:n:", longopts)) != -1) {
        switch (c) {
        case 'k': bo->k = (int)sat_parse_long("--beam", optarg, 1, 256); break;
        case 'n': o->nbest = (int)sat_parse_long("--nbest", optarg, 1, 256); break;
        case 'N': bo->length_norm = sat_parse_double("--length-norm", optarg, 0, 10); break;
        case 'l': bo->min_len = (int)sat_parse_long("--min-len", optarg, 0, 1000); break;
        case 'U': bo->decode.allow_unk = 1; break;
        default: sat_stage_option(so, c, optarg, usage);
        }
    }
    if (o->nbest > bo->k)
        sat_usage_error("--nbest %d is more than the beam width %d", o->nbest, bo->k);
    if (bo->min_len > so->max_len) sat_usage_error("--min-len is more than --max-len");
    sat_stage_options_end(so);
    if (so->attention == SAT_ATTEND_SAMPLE) so->batch = 1;
    /* Wide beams: the hypotheses' attention maps grow with K × batch. */
    if (so->batch > BEAM_MAX_ROWS / bo->k) so->batch = BEAM_MAX_ROWS / bo->k;
    bo->decode.max_len = so->max_len;
    bo->decode.attend = so->attention;
    bo->settle = o->nbest; /* only they are written: stop once they are sure */
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options opt;
    parse_options(argc, argv, &opt);
    beam_run b = {.opt = &opt};
    b.cap = sat_stage_captioner(&opt.stage);
    sat_rng_seed(&b.rng, opt.stage.seed);
    opt.beam.decode.rng = &b.rng;
    b.beam = sat_beam_new(&b.cap->ens, &opt.beam, opt.stage.batch);

    sat_writer_init(&b.out, stdout, "stdout");
    sat_pipeline p = sat_stage_pipeline(&opt.stage, b.cap, &b.out);
    p.fn = write_captions, p.batch_fn = search_batch, p.ctx = &b;
    sat_pipeline_run(&p, argv + optind, argc - optind);
    sat_writer_close(&b.out);

    sat_beam_free(b.beam);
    sat_captioner_free(b.cap);
    return sat_exit_status();
}
