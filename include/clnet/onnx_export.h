/* clnet — writing a clnet model as ONNX (opset 13), so that ONNX Runtime,
 * PyTorch and clnet's own importer (clnet/onnx_import.h) can run it. Which
 * layers map to which ONNX ops, and what is not exported, is in
 * docs/onnx.md ("Writing ONNX"). */
#ifndef CLNET_ONNX_EXPORT_H
#define CLNET_ONNX_EXPORT_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The opset the writer declares. */
#define CLNET_ONNX_EXPORT_OPSET 13

/* Writes m (its graph, in build order, and its current weights: inference
 * form, so Dropout is an Identity and BatchNormalization uses the running
 * statistics) to `path` as an ONNX ModelProto, atomically (a temporary file
 * renamed over the target; a failure leaves an existing file as it was).
 * Inputs are named "input" (or "input_0", "input_1", ... for several),
 * outputs "output" (or "output_0", ...), each of shape (batch, ...) with a
 * symbolic batch dim; weights are float32 initializers named
 * "<layer name>.<parameter>" (a recurrent layer's as ONNX's W, R and B).
 * A layer that has no ONNX form here (Sampling, Expression, a shared
 * recurrent layer, BatchNormalization over (batch, steps, features))
 * is CLNET_ERR_UNSUPPORTED naming the layer, and nothing is written;
 * CLNET_ERR_IO names the path and the cause. The model is only read (its
 * weights are downloaded from the device). Thread-safety: as m's context. */
CLNET_API clnet_status clnet_model_save_onnx(const clnet_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
