/* clnet — OpenCL interop: the only public header that includes <CL/cl.h>.
 * Use it to run clnet on a context and queue you created, or to hand a
 * tensor's buffer to your own kernels. */
#ifndef CLNET_OPENCL_H
#define CLNET_OPENCL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a clnet context on the caller's device, context and in-order
 * queue. clnet retains the three objects and releases them when *out is
 * destroyed; the caller keeps its own references. cache_dir as in
 * clnet_context_params (NULL: the default). */
CLNET_API clnet_status clnet_context_wrap(cl_device_id device, cl_context context,
                                          cl_command_queue queue, const char *cache_dir,
                                          clnet_context **out, char *err, size_t err_size);

/* The context's OpenCL objects. Borrowed: valid until ctx is destroyed. */
CLNET_API cl_context clnet_context_cl_context(const clnet_context *ctx);
CLNET_API cl_command_queue clnet_context_cl_queue(const clnet_context *ctx);
CLNET_API cl_device_id clnet_context_cl_device(const clnet_context *ctx);

/* The tensor's buffer (NULL for an empty tensor); its data starts at
 * clnet_tensor_offset(t) elements. Borrowed: valid while t lives. */
CLNET_API cl_mem clnet_tensor_cl_mem(const clnet_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
