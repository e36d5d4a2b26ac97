/* sat-import — import a TensorFlow Lite CNN (MobileNetV2) as a sat model file.
 *
 *   sat-import [--labels FILE] [--name NAME] [--f16] [-v] -o OUT.satm MODEL.tflite
 *
 * Weights are dequantized to float (stored as f32, or f16 with --f16); the
 * op graph, shapes, labels and the source's sha256 go into the model file
 * (formats/model.md), written atomically.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tflite.h"
#include "util.h"

#define MAX_TFLITE_BYTES ((size_t)1 << 30)
#define MAX_LABELS_BYTES ((size_t)16 << 20)

static const char usage[] =
    "Usage: sat-import [OPTION]... -o OUT.satm MODEL.tflite\n"
    "Import a TensorFlow Lite CNN (MobileNetV2, uint8 quantized) as a sat model file.\n"
    "\n"
    "  -o, --output FILE   the model file to write (required; written atomically)\n"
    "  -l, --labels FILE   class labels, one per line (line k = class k)\n"
    "  -n, --name NAME     model name (default: MODEL's basename without extension)\n"
    "      --f16           store the parameters as IEEE half floats (half the size)\n"
    "  -v, --verbose       list the imported ops on stderr\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n";

/* Labels file -> m->labels, one per line (a final newline is optional, "\r\n" is accepted). */
static void read_labels(sat_model *m, const char *path)
{
    unsigned char *data;
    size_t len;
    char err[256];
    if (sat_read_file(path, MAX_LABELS_BYTES, &data, &len, err, sizeof err) < 0) sat_die("%s: %s", path, err);
    if (memchr(data, 0, len)) sat_die("%s: not a text file (contains a NUL byte)", path);
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

static void print_summary(const sat_model *m, const char *out, int f16)
{
    int count[SAT_OP_SOFTMAX + 1] = {0};
    for (int i = 0; i < m->nops; i++) count[m->ops[i].kind]++;
    char kinds[256] = "";
    size_t n = 0;
    for (int k = SAT_OP_CONV_2D; k <= SAT_OP_SOFTMAX; k++)
        if (count[k])
            n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s%s %d", n ? ", " : "", sat_op_name((sat_op_kind)k), count[k]);
    fprintf(stderr, "%s: %s: %d ops (%s), %zu params (%s), %d labels, weights sha256 %.16s -> %s\n",
            sat_progname, m->name, m->nops, kinds, m->nparams, f16 ? "f16" : "f32", m->nlabels,
            m->weights_sha256, out);
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"labels", required_argument, 0, 'l'},
        {"name", required_argument, 0, 'n'},   {"f16", no_argument, 0, 'F'},
        {"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
    };
    const char *out = NULL, *labels = NULL, *name = NULL;
    int f16 = 0, verbose = 0, c;
    opterr = 0; /* our own one-line messages */
    while ((c = getopt_long(argc, argv, ":o:l:n:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'l': labels = optarg; break;
        case 'n': name = optarg; break;
        case 'F': f16 = 1; break;
        case 'v': verbose = 1; break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        case ':': sat_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: sat_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (!out) sat_usage_error("an output file (-o) is required");
    if (optind + 1 != argc) sat_usage_error("expected exactly one MODEL.tflite");
    if (name && !*name) sat_usage_error("--name: empty name");
    const char *path = argv[optind];

    unsigned char *data;
    size_t len;
    char err[512];
    if (sat_read_file(path, MAX_TFLITE_BYTES, &data, &len, err, sizeof err) < 0) sat_die("%s: %s", path, err);
    sat_model *m = sat_tflite_import(data, len, path, err, sizeof err);
    free(data);
    if (!m) sat_die("%s: %s", path, err);
    if (name) {
        free(m->name);
        m->name = sat_xstrdup(name);
    }
    if (labels) read_labels(m, labels);
    if (verbose) list_ops(m);
    sat_model_save(m, out, f16);
    print_summary(m, out, f16);
    sat_model_free(m);
    return 0;
}
