/* clnet — elementwise arithmetic and reductions on float32 tensors. All
 * operands of one call belong to the same context and hold the same number of
 * elements (shapes may differ). Work is queued; nothing waits unless a result
 * is read back to the host. As everywhere in clnet, parameters come first,
 * then inputs, then outputs.
 *
 * Errors (every call here): CLNET_ERR_INVALID_ARG for a NULL tensor, tensors
 * of another context, or an output that overlaps an input other than as the
 * exact alias a call allows; CLNET_ERR_SHAPE for a dtype other than float32
 * or another element count (clnet_sum: out not one element); CLNET_ERR_DEVICE_MEMORY,
 * CLNET_ERR_BUILD or CLNET_ERR_OPENCL when the device fails (allocating a workspace, building or
 * launching a kernel). The message (clnet_context_errmsg) names the function and the argument;
 * nothing is queued when a check fails. */
#ifndef CLNET_OPS_H
#define CLNET_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* z = x + y (z may alias x or y). */
CLNET_API clnet_status clnet_add(const clnet_tensor *x, const clnet_tensor *y, clnet_tensor *z);
/* z = x * y, elementwise (z may alias x or y). */
CLNET_API clnet_status clnet_mul(const clnet_tensor *x, const clnet_tensor *y, clnet_tensor *z);
/* y = alpha * x (y may alias x). */
CLNET_API clnet_status clnet_scale(float alpha, const clnet_tensor *x, clnet_tensor *y);
/* y = alpha * x + y. */
CLNET_API clnet_status clnet_axpy(float alpha, const clnet_tensor *x, clnet_tensor *y);

/* out (one element, any shape) = sum of all elements of x, in float32 with a
 * fixed, deterministic order: the same input on the same device gives the
 * same bits. An empty x sums to 0. */
CLNET_API clnet_status clnet_sum(const clnet_tensor *x, clnet_tensor *out);
/* The sum of x, read back to the host (waits for queued work). */
CLNET_API clnet_status clnet_sum_host(const clnet_tensor *x, float *out);

#ifdef __cplusplus
}
#endif
#endif
