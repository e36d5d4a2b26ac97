/* sat-import — import a TensorFlow Lite CNN (MobileNetV2) as a sat model file,
 * or rewrite a sat model file (e.g. a trained decoder with its parameters as f16).
 *
 *   sat-import [--labels FILE] [--name NAME] [--f16] [-v] -o OUT.satm MODEL.tflite|MODEL.satm
 *   sat-import --average [--name NAME] [--f16] -o OUT.satm DECODER.satm...
 *
 * The input's kind is told by its content: a msgpack map is a sat model file,
 * anything with the "TFL3" identifier a TFLite flatbuffer.  TFLite weights are
 * dequantized to float (their quantization parameters, and the activations',
 * kept beside them); the op graph, shapes, labels and the source's sha256
 * go into the model file (formats/model.md).  A sat model keeps everything
 * (config, vocabulary, tensors, provenance) but the element type of its
 * parameters: f32, or f16 with --f16.  --average writes the mean of the
 * weights of several decoders of one architecture and vocabulary (e.g. the
 * checkpoints of a run's last epochs), with the first one's name and
 * provenance and nothing of a checkpoint's training state.  The output is
 * written atomically, and only if the programs that read it would accept it
 * (check_usable).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sat/captioner.h"
#include "sat/cnn.h"
#include "sat/decoder.h"
#include "sat/model.h"
#include "sat/stream.h"
#include "sat/tflite.h"
#include "sat/util.h"
#include "sat/vocab.h"

#define MAX_INPUT_BYTES ((size_t)2 << 30)
#define MAX_LABELS_BYTES ((size_t)16 << 20)

static const char usage[] =
    "Usage: sat-import [OPTION]... -o OUT.satm MODEL\n"
    "       sat-import --average [OPTION]... -o OUT.satm DECODER...\n"
    "Import a TensorFlow Lite CNN (MobileNetV2, uint8 quantized) as a sat model file,\n"
    "or rewrite a sat model file (MODEL is told apart by its content), or average\n"
    "the weights of decoders (or checkpoints) of one architecture and vocabulary.\n"
    "\n"
    "  -o, --output FILE   the model file to write (required; written atomically)\n"
    "  -l, --labels FILE   class labels, one per line (line k = class k)\n"
    "  -n, --name NAME     model name (default: a .tflite's basename without\n"
    "                      extension; a sat model's own name)\n"
    "      --f16           store the parameters as IEEE half floats (half the size)\n"
    "      --average       the mean of the DECODERs' weights (e.g. a run's last epochs)\n"
    "  -v, --verbose       list the model's ops on stderr\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
    "\n"
    "Example: sat-import --f16 -o models/sat-decoder.satm build/soft/best.satm\n";

/* Labels file -> m->labels, one per line (a final newline is optional, "\r\n" is accepted). */
static void read_labels(sat_model *m, const char *path)
{
    unsigned char *data;
    size_t len;
    char err[SAT_ERR_MAX];
    if (sat_read_file(path, MAX_LABELS_BYTES, &data, &len, err, sizeof err) < 0) sat_die("%s: %s", path, err);
    if (memchr(data, 0, len)) sat_die("%s: not a text file (contains a NUL byte)", path);
    for (int k = 0; k < m->nlabels; k++) free(m->labels[k]); /* a sat model's own labels */
    free(m->labels);
    int n = 0;
    for (size_t i = 0; i < len; i++) n += data[i] == '\n' || i + 1 == len;
    m->labels = sat_xcalloc((size_t)n, sizeof *m->labels);
    size_t start = 0;
    for (int k = 0; k < n; k++) {
        size_t end = start;
        while (end < len && data[end] != '\n') end++;
        size_t stop = end > start && data[end - 1] == '\r' ? end - 1 : end;
        m->labels[k] = sat_xmalloc(stop - start + 1);
        memcpy(m->labels[k], data + start, stop - start);
        m->labels[k][stop - start] = 0;
        start = end + 1;
    }
    m->nlabels = n;
    free(data);
    const sat_value *out = &m->values[m->output];
    int classes = out->shape[out->ndim - 1];
    if (n != classes) sat_die("%s: %d labels, but the model has %d classes", path, n, classes);
}

static void list_ops(const sat_model *m)
{
    for (int i = 0; i < m->nops; i++) {
        const sat_op *op = &m->ops[i];
        const sat_value *in = &m->values[op->inputs[0]], *out = &m->values[op->output];
        char shapes[2][64];
        for (int s = 0; s < 2; s++) {
            const sat_value *v = s ? out : in;
            int n = 0;
            for (int d = 0; d < v->ndim; d++)
                n += snprintf(shapes[s] + n, sizeof shapes[s] - (size_t)n, d ? "x%d" : "%d", v->shape[d]);
        }
        fprintf(stderr, "%s: op %2d %-17s %s -> %s", sat_progname, i, sat_op_name(op->kind), shapes[0], shapes[1]);
        if (op->kind == SAT_OP_CONV_2D || op->kind == SAT_OP_DEPTHWISE_CONV_2D ||
            op->kind == SAT_OP_AVERAGE_POOL_2D)
            fprintf(stderr, "  %dx%d stride %d", op->filter_h, op->filter_w, op->stride_h);
        fputc('\n', stderr);
    }
}

/* "66 ops (CONV_2D 35, ...)" for a graph, else the model's kind. */
static void describe(const sat_model *m, char *buf, size_t size)
{
    if (!m->nops) {
        snprintf(buf, size, "%s", m->kind);
        return;
    }
    int count[SAT_OP_SOFTMAX + 1] = {0};
    for (int i = 0; i < m->nops; i++) count[m->ops[i].kind]++;
    size_t n = (size_t)snprintf(buf, size, "%d ops (", m->nops);
    const char *sep = "";
    for (int k = SAT_OP_CONV_2D; k <= SAT_OP_SOFTMAX && n < size; k++)
        if (count[k]) {
            n += (size_t)snprintf(buf + n, size - n, "%s%s %d", sep, sat_op_name((sat_op_kind)k), count[k]);
            sep = ", ";
        }
    if (n < size) snprintf(buf + n, size - n, ")");
}

static void print_summary(const sat_model *m, const char *out, int f16)
{
    char what[256];
    describe(m, what, sizeof what);
    fprintf(stderr, "%s: %s: %s, %zu params (%s), ", sat_progname, m->name, what, m->nparams,
            f16 ? "f16" : "f32");
    if (m->nvocab) fprintf(stderr, "%d words", m->nvocab);
    else fprintf(stderr, "%d labels", m->nlabels);
    fprintf(stderr, ", weights sha256 %.16s -> %s\n", m->weights_sha256, out);
}

/* MODEL by its content: a sat model file (a msgpack map) or a TFLite flatbuffer. */
static sat_model *read_model(const char *path)
{
    unsigned char *data;
    size_t len;
    char err[SAT_ERR_MAX];
    if (sat_read_file(path, MAX_INPUT_BYTES, &data, &len, err, sizeof err) < 0) sat_die("%s: %s", path, err);
    sat_model *m = NULL;
    if (len && sat_is_map_lead(data[0])) {
        m = sat_model_load_mem(data, len, path, SAT_MODEL_VERIFY, err, sizeof err);
        if (!m) sat_die("%s", err); /* "model file PATH: problem" */
    } else if (len >= 8 && memcmp(data + 4, "TFL3", 4) == 0) {
        m = sat_tflite_import(data, len, path, err, sizeof err);
        if (!m) sat_die("%s: %s", path, err);
    } else {
        sat_die("%s: neither a TensorFlow Lite file (no TFL3 identifier) nor a sat model file", path);
    }
    free(data);
    return m;
}

typedef struct {
    const char *out, *labels, *name;
    char **paths;
    int npaths, f16, verbose, average;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"labels", required_argument, 0, 'l'},
        {"name", required_argument, 0, 'n'},   {"f16", no_argument, 0, 'F'},
        {"average", no_argument, 0, 'A'},
        {"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    int c;
    while ((c = sat_getopt(argc, argv, "o:l:n:vhV", longopts)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'l': o->labels = optarg; break;
        case 'n': o->name = optarg; break;
        case 'F': o->f16 = 1; break;
        case 'A': o->average = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (!o->out) sat_usage_error("an output file (-o) is required");
    if (o->average && optind + 2 > argc) sat_usage_error("--average: expected two or more DECODERs");
    if (!o->average && optind + 1 != argc) sat_usage_error("expected exactly one MODEL (.tflite or .satm)");
    if (o->average && o->labels) sat_usage_error("--labels: decoders have no classes to label");
    if (o->name && !*o->name) sat_usage_error("--name: empty name");
    o->paths = argv + optind;
    o->npaths = argc - optind;
}

/* The decoder of model m (read from path), or death: the captioner's checks
 * (sat-decode, sat-beam, sat-attend). */
static sat_decoder *usable_decoder(const sat_model *m, const char *path)
{
    char err[SAT_ERR_MAX];
    sat_decoder *dec = sat_captioner_member(m, NULL, err, sizeof err);
    if (!dec) sat_die("%s: %s", path, err);
    return dec;
}

/* Dies (naming path) unless the programs that read m would take it: a
 * decoder the captioner's loader, a CNN sat-encode's planning of its graph
 * (at the default size and output stride).  sat_model_load's checks alone
 * pass a decoder of the wrong sizes or vocabulary, or a CNN without a graph. */
static void check_usable(const sat_model *m, const char *path)
{
    if (strcmp(m->kind, "decoder") == 0) {
        sat_decoder_free(usable_decoder(m, path));
        return;
    }
    char err[SAT_ERR_MAX];
    sat_cnn *cnn = sat_cnn_new(m, SAT_CNN_DEFAULT_SIZE, SAT_CNN_DEFAULT_STRIDE, err, sizeof err);
    if (!cnn) sat_die("%s: %s", path, err);
    sat_cnn_free(cnn);
}

/* The decoder of the model file at path; dies unless it is a usable one. */
static sat_decoder *read_decoder(const char *path, sat_model **model)
{
    *model = read_model(path);
    if (strcmp((*model)->kind, "decoder") != 0)
        sat_die("%s: --average: a %s model, not a decoder", path, (*model)->kind);
    return usable_decoder(*model, path);
}

/* --average: the mean of the decoders' weights, as a model with the first
 * one's name, vocabulary and provenance.  Dies when the architectures,
 * attention temperatures or vocabularies differ. */
static sat_model *average_decoders(char **paths, int n)
{
    sat_model *first;
    sat_decoder *sum = read_decoder(paths[0], &first);
    for (int k = 1; k < n; k++) {
        sat_model *m;
        sat_decoder *dec = read_decoder(paths[k], &m);
        const sat_decoder_config *a = &sum->cfg, *b = &dec->cfg;
        if (!sat_decoder_config_equal(a, b) || sum->temperature != dec->temperature)
            sat_die("%s: --average: another architecture or attention temperature than %s", paths[k], paths[0]);
        if (m->nvocab != first->nvocab)
            sat_die("%s: --average: %d words, %s has %d", paths[k], m->nvocab, paths[0], first->nvocab);
        int w = sat_words_first_difference(m->vocab, m->nvocab, first->vocab, first->nvocab);
        if (w >= 0)
            sat_die("%s: --average: another vocabulary than %s (word %d: '%s' vs '%s')", paths[k],
                    paths[0], w, m->vocab[w], first->vocab[w]);
        for (size_t i = 0; i < sum->nparams; i++) sum->params[i] += dec->params[i];
        sat_decoder_free(dec);
        sat_model_free(m);
    }
    for (size_t i = 0; i < sum->nparams; i++) sum->params[i] /= (float)n;
    sat_model *avg = sat_decoder_to_model(sum);
    sat_decoder_free(sum);
    free(avg->name);
    avg->name = first->name, first->name = NULL;
    avg->vocab = first->vocab, avg->nvocab = first->nvocab;
    first->vocab = NULL, first->nvocab = 0;
    avg->source_file = first->source_file, first->source_file = NULL;
    memcpy(avg->source_sha256, first->source_sha256, sizeof avg->source_sha256);
    sat_model_free(first);
    return avg;
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_args(argc, argv, &o);
    sat_model *m = o.average ? average_decoders(o.paths, o.npaths) : read_model(o.paths[0]);
    if (o.labels && m->output < 0)
        sat_die("%s: --labels: a %s model has no classes to label", o.paths[0], m->kind);
    if (o.name) {
        free(m->name);
        m->name = sat_xstrdup(o.name);
    }
    if (o.labels) read_labels(m, o.labels);
    if (!o.average) check_usable(m, o.paths[0]); /* --average: its inputs were checked */
    if (o.verbose) list_ops(m);
    sat_model_save(m, o.out, o.f16);
    print_summary(m, o.out, o.f16);
    sat_model_free(m);
    return 0;
}
