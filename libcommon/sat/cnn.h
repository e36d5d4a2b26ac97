/* cnn.h — run a CNN model graph (MobileNetV2 imported from TFLite) on one image.
 *
 * sat_cnn_new() plans the graph for an input size and an output stride.
 * Output stride 16 (DeepLabv3's "atrous" trick): the stride-2 conv that would
 * take the cumulative stride past 16 runs at stride 1, and every later
 * depthwise conv is dilated by the factor removed; MobileNetV2 at 224x224 then
 * gives 14x14x1280 annotation vectors instead of 7x7.  The final
 * AVERAGE_POOL_2D is run as a global average, whatever the grid size.
 *
 * The features are the input of that pool (the last 1x1 conv + ReLU6).
 * One sat_cnn is read-only after planning; each thread running it needs its
 * own sat_cnn_work.
 */
#ifndef SAT_CNN_H
#define SAT_CNN_H

#include "sat/model.h"

/* sat-encode's defaults: 224x224 input, output stride 16 (14x14 features). */
#define SAT_CNN_DEFAULT_SIZE 224
#define SAT_CNN_DEFAULT_STRIDE 16

/* How the features are computed: in float32 from the dequantized weights
 * (every CPU; the reference), or in integers as the uint8 model was
 * trained and as TFLite runs it (qnn.h: AVX-512 VNNI where the CPU has it,
 * else portable C, which is slow). */
typedef enum { SAT_CNN_FLOAT = 0, SAT_CNN_INT8 } sat_cnn_precision;

typedef struct sat_cnn sat_cnn;
typedef struct sat_cnn_work sat_cnn_work;

/* NULL with a reason in err if the model is not a graph this runner knows or
 * the stride/size do not fit it (size must be a multiple of output_stride). */
sat_cnn *sat_cnn_new(const sat_model *m, int size, int output_stride, char *err, size_t errlen);
void sat_cnn_free(sat_cnn *cnn);

/* Feature grid: h x w x c. Number of classes (0 if the model has no classifier). */
void sat_cnn_feature_shape(const sat_cnn *cnn, int *h, int *w, int *c);
int sat_cnn_num_classes(const sat_cnn *cnn);

/* Switch to a precision, before any sat_cnn_work_new: 0, or -1 with a
 * reason in err (int8: the model lacks quantization parameters for some
 * value or weight on the way to the features, or an op there is not a conv,
 * depthwise conv or ADD).  The classifier head runs in float either way,
 * from the dequantized features. */
int sat_cnn_set_precision(sat_cnn *cnn, sat_cnn_precision p, char *err, size_t errlen);
sat_cnn_precision sat_cnn_get_precision(const sat_cnn *cnn);
/* "float" or "int8". */
const char *sat_cnn_precision_name(sat_cnn_precision p);

sat_cnn_work *sat_cnn_work_new(const sat_cnn *cnn);
void sat_cnn_work_free(sat_cnn_work *ws);

/* image: size*size*3 floats, (p-128)/128.  features: h*w*c floats (HWC).
 * probs: num_classes floats (softmax output), or NULL to skip the classifier head. */
void sat_cnn_forward(const sat_cnn *cnn, sat_cnn_work *ws, const float *image,
                     float *features, float *probs);

/* Multiply-adds of one forward pass up to the features (for benchmarks). */
double sat_cnn_macs(const sat_cnn *cnn);

#endif
