/* clnet — running ONNX models: a loaded ONNX graph (clnet/onnx.h) imported
 * onto a clnet graph model (clnet/graph.h) on a device, its weights
 * converted once at import. Run it with clnet_model_forward_multi and read
 * the outputs with clnet_model_output_tensor. The ops and the limits of
 * each are listed in docs/onnx.md ("Import"). */
#ifndef CLNET_ONNX_IMPORT_H
#define CLNET_ONNX_IMPORT_H

#include <stddef.h>

#include "context.h"
#include "graph.h"
#include "nn.h"
#include "onnx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Builds a model on ctx from the ONNX graph om: one clnet input per graph
 * input, in order (each (batch, ...) with every dim after the batch
 * known), one clnet output per graph output, in order; layers in node
 * order, with the weights copied from the initializers. om is only read
 * and may be destroyed afterwards. Every node is checked first:
 * CLNET_ERR_UNSUPPORTED lists every op (and attribute value) the importer
 * cannot map, by name, in one message; CLNET_ERR_SHAPE or
 * CLNET_ERR_FORMAT names the node whose inputs do not fit. The model is
 * not compiled (compile it to train it). On success *out is caller-owned
 * (clnet_model_destroy); on failure *out is NULL and err (optional,
 * err_size bytes) receives the message. Thread-safety: as ctx. */
CLNET_API clnet_status clnet_onnx_import(clnet_context *ctx, const clnet_onnx_model *om,
                                         clnet_model **out, char *err, size_t err_size);

/* clnet_onnx_model_load, then clnet_onnx_import. */
CLNET_API clnet_status clnet_onnx_import_file(clnet_context *ctx, const char *path,
                                              clnet_model **out, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
