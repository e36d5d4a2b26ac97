/* tflite.h — import a TensorFlow Lite flatbuffer as a sat_model (kind "cnn").
 *
 * No TensorFlow or flatc: a small bounds-checked flatbuffer reader walks the
 * schema (tensorflow/lite/schema/schema.fbs, version 3) from Model down to
 * SubGraph 0, its tensors and operators, and the buffers.  Every offset,
 * vtable and vector length is checked against the file; bad input gives an
 * error, never a read outside it.
 *
 * Supported operators: CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D,
 * RESHAPE, SOFTMAX (others are refused by name).  Weights and biases are
 * dequantized to float32 (real = scale * (q - zero_point), per tensor or per
 * channel; uint8, int8, int32; float32/float16 tensors are converted as is)
 * into one params allocation, keeping TFLite's layouts (see model.h).
 * Activation tensors become graph values with their shapes.  The
 * quantization parameters of quantized weights and biases and of uint8
 * activations are kept beside them (sat_quant in model.h) for the integer
 * path of cnn.h.
 */
#ifndef SAT_TFLITE_H
#define SAT_TFLITE_H

#include <stddef.h>

#include "sat/model.h"

/* Import a .tflite file's bytes.  `path` names the model: name = basename
 * without extension, source_file = basename; source_sha256 = sha256 of data.
 * The result has passed sat_model_validate(); labels are left empty.
 * NULL with a one-line reason in err (not prefixed with the path). */
sat_model *sat_tflite_import(const void *data, size_t len, const char *path, char *err, size_t errlen);

/* TFLite's name of a BuiltinOperator code ("LSTM"), or NULL if unknown. */
const char *sat_tflite_op_name(int code);

#endif
