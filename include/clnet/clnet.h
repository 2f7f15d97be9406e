/* clnet — a portable OpenCL compute backend for deep learning.
 *
 * Overview. A clnet_context owns one OpenCL device (any GPU, or any CPU through
 * pocl), an in-order queue, and the kernels compiled for that device. Kernels
 * are OpenCL C sources embedded in the library and compiled at run time with
 * options chosen from the device's profile; compiled programs are cached in
 * memory and on disk, so a second process compiles nothing.
 *
 * A clnet_tensor is a row-major float32 (or int32) array on the context's
 * device: a buffer, an element offset and a shape. Views (reshape, batch
 * slices) share storage. Operations queue work and return; the host waits only
 * when it reads data back.
 *
 * Errors: every fallible call returns a clnet_status (CLNET_OK is 0). The
 * details of the last failure are read with clnet_context_errmsg(). The
 * library never prints, never exits, and leaves the context usable after an
 * error.
 *
 * Ownership: a function that creates an object documents how to free it;
 * destroy(NULL) is always a no-op. Thread-safety: a context and its tensors
 * are used by one thread at a time.
 *
 *   clnet_context *ctx;
 *   if (clnet_context_create(NULL, &ctx, err, sizeof err)) { puts(err); ... }
 *   clnet_tensor *x;
 *   clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){32, 10}, &x);
 *   clnet_tensor_rand_uniform(x, 42, 0, -1.f, 1.f);
 *   float s;
 *   clnet_sum_host(x, &s);
 *   clnet_tensor_destroy(x);
 *   clnet_context_destroy(ctx);
 */
#ifndef CLNET_CLNET_H
#define CLNET_CLNET_H

#include "clnet/version.h"
#include "status.h"
#include "context.h"
#include "tensor.h"
#include "ops.h"
#include "gemm.h"
#include "conv.h"
#include "conv_grouped.h"
#include "pool.h"
#include "act.h"
#include "loss.h"
#include "norm.h"
#include "optim.h"
#include "rnn.h"
#include "nn.h"
#include "history.h"
#include "callbacks.h"
#include "tblog.h"
#include "data.h"
#include "safetensors.h"
#include "onnx.h"
#include "npy.h"
#include "onnx_import.h"
#include "onnx_export.h"
#include "dist.h"
#include "merge.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version ("0.1.0"), which may differ from the headers'. */
CLNET_API const char *clnet_version(void);

#ifdef __cplusplus
}
#endif
#endif
