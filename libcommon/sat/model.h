/* model.h — the in-memory form of a sat model file (spec: formats/model.md).
 *
 * A model is a set of named parameter tensors stored in ONE float allocation
 * (`params`, read with one copy, llm.c style), plus, for a CNN, a graph of
 * ops over activation "values", plus string lists (ImageNet labels, the
 * decoder's vocabulary) and numeric config entries (decoder sizes).
 *
 * Layouts are TFLite's, NHWC throughout:
 *   CONV_2D weights            [O][KH][KW][I]
 *   DEPTHWISE_CONV_2D weights  [1][KH][KW][C*depth_multiplier]
 *   biases                     [O]
 */
#ifndef SAT_MODEL_H
#define SAT_MODEL_H

#include <stddef.h>

typedef enum {
    SAT_OP_CONV_2D = 1,
    SAT_OP_DEPTHWISE_CONV_2D,
    SAT_OP_ADD,
    SAT_OP_AVERAGE_POOL_2D,
    SAT_OP_RESHAPE,
    SAT_OP_SOFTMAX,
} sat_op_kind;

typedef enum { SAT_ACT_NONE = 0, SAT_ACT_RELU, SAT_ACT_RELU6 } sat_activation;
typedef enum { SAT_PAD_SAME = 0, SAT_PAD_VALID } sat_padding;

/* TFLite's affine quantization of a tensor: real = scale * (q - zero_point),
 * per tensor (n = 1) or per channel along `axis` (n = shape[axis]); n = 0
 * when there is none (a float tensor).  Kept so that an integer path can run
 * the model as it was trained (cnn.h, qnn.h); the params stay dequantized. */
typedef struct {
    int n, axis;
    float *scale;       /* [n], finite and > 0 */
    int *zero_point;    /* [n] */
} sat_quant;

typedef struct {
    char *name;
    int ndim;
    int shape[4];
    size_t offset; /* in floats, into sat_model.params */
    size_t count;  /* product of shape */
    sat_quant quant;
} sat_tensor;

typedef struct {
    int ndim;
    int shape[4]; /* at the nominal input size, NHWC with N = 1 */
    sat_quant quant; /* uint8 activations: n = 1, zero_point in [0, 255] */
} sat_value;

typedef struct {
    sat_op_kind kind;
    sat_activation act;
    sat_padding pad;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    int filter_h, filter_w;   /* conv/depthwise: from the weights; pool: the window */
    int depth_multiplier;     /* depthwise only */
    int ninputs;
    int inputs[2];            /* value indices */
    int output;               /* value index */
    int weights, bias;        /* tensor indices, or -1 */
    float softmax_beta;       /* SOFTMAX only */
} sat_op;

typedef struct {
    char *name;
    double value;
} sat_config_entry;

typedef struct {
    char *kind;               /* "cnn" or "decoder" */
    char *name;
    char *source_file;        /* basename of what it was imported/trained from */
    char source_sha256[65];   /* hex sha256 of that file, "" if none */
    char weights_sha256[65];  /* hex sha256 of the params as stored in the file */

    float *params;
    size_t nparams;
    int params_in_place;      /* params lie in the loaded file's bytes (SAT_MODEL_IN_PLACE) */
    const void *params16;     /* or, for an f16 file, its params as stored there, and
                               * params NULL until sat_model_convert_params */
    void *file_bytes;         /* the file read whole, where params in place lie;
                               * freed by sat_model_free */
    sat_tensor *tensors;
    int ntensors;

    sat_value *values;
    int nvalues;
    sat_op *ops;
    int nops;
    int input, output;        /* value indices; -1 when there is no graph */

    char **labels;            /* ImageNet labels (cnn), may be NULL */
    int nlabels;
    char **vocab;             /* decoder vocabulary, may be NULL */
    int nvocab;
    sat_config_entry *config;
    int nconfig;
} sat_model;

/* Flag of sat_model_load: also hash the params and refuse them unless they
 * match weights_sha256 (a corrupt file).  Programs that only read a model
 * leave it out: hashing the ~15 MB of weights was most of a start-up's work
 * (issue 15); importing, training from a model and `sat-dump --verify` set it. */
#define SAT_MODEL_VERIFY 1
/* Flag of sat_model_load: params are used where they lie in the file's
 * bytes, read whole into huge pages (not a converted copy, whose first touch
 * was most of a program's start-up, issue 15) when the file is a regular
 * one: f32 params, when aligned, as m->params; f16 params as m->params16,
 * with m->params NULL (the decoder's inference reads the f16 bits: half the
 * bytes).  For programs that never write m->params. */
#define SAT_MODEL_IN_PLACE 2

/* Load a model file.  NULL with a one-line reason in err on any problem
 * (unreadable, not a sat model, truncated, inconsistent shapes/offsets; with
 * SAT_MODEL_VERIFY in flags, weights that do not match their sha256). */
sat_model *sat_model_load(const char *path, int flags, char *err, size_t errlen);
/* Write atomically (temp file + rename).  params_f16: store params as f16.
 * Sets m->weights_sha256.  Dies on I/O error. */
void sat_model_save(sat_model *m, const char *path, int params_f16);
/* sat_model_load on bytes in memory (`name` is used in messages); for fuzzing.
 * With SAT_MODEL_IN_PLACE the bytes must outlive the model. */
sat_model *sat_model_load_mem(const void *data, size_t len, const char *name, int flags, char *err,
                              size_t errlen);
/* Check the rules of formats/model.md (shapes, offsets, op fields, data flow):
 * 0, or -1 with a one-line reason in err.  Load and save both call it. */
int sat_model_validate(const sat_model *m, char *err, size_t errlen);
/* "CONV_2D", "DEPTHWISE_CONV_2D", ...; "?" for an unknown kind. */
const char *sat_op_name(sat_op_kind kind);
/* The f32 params of a model whose f16 params were left in place (a no-op
 * otherwise). */
void sat_model_convert_params(sat_model *m);
void sat_model_free(sat_model *m);
void sat_quant_free(sat_quant *q);

/* Index of the tensor with that name, or -1. */
int sat_model_find_tensor(const sat_model *m, const char *name);
/* Config lookup: the value, or `dflt` when absent. */
double sat_model_config(const sat_model *m, const char *name, double dflt);

/* Building a model in memory (one whose params are its own allocation, as
 * sat_decoder_to_model makes): append a 1-D tensor of count floats, copied
 * from data (zeros when NULL), after the params; existing offsets stay. */
void sat_model_add_tensor(sat_model *m, const char *name, const float *data, size_t count);
/* Set a config entry: replaced when present, else appended. */
void sat_model_set_config(sat_model *m, const char *name, double value);

#endif
