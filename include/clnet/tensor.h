/* clnet — tensors: row-major arrays on a context's device, with views that
 * share storage, host transfers, fills and a counter-based random generator. */
#ifndef CLNET_TENSOR_H
#define CLNET_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLNET_MAX_DIMS 8

typedef enum clnet_dtype {
    CLNET_F32 = 0, /* IEEE float32 */
    CLNET_I32      /* int32 (labels, indices) */
} clnet_dtype;

/* Bytes per element of a dtype (0 for an unknown dtype). */
CLNET_API size_t clnet_dtype_size(clnet_dtype dtype);

/* A tensor: a device buffer, an element offset into it, a dtype and a shape.
 * Contiguous and row-major; images are NCHW, sequences (N, T, F). A view
 * (reshape, slice) is a new handle on the same storage: the storage lives
 * until its last handle is destroyed. Thread-safety: as its context. */
typedef struct clnet_tensor clnet_tensor;

/* Creates an uninitialized tensor of ndim (0..CLNET_MAX_DIMS) dimensions;
 * every dim must be >= 0. A tensor with a zero dim has no device buffer and
 * every operation on it does nothing. Sizes past the device's maximum
 * allocation fail with CLNET_ERR_TOO_LARGE before anything is allocated.
 * On success *out is caller-owned (free with clnet_tensor_destroy); on
 * failure *out is NULL. */
CLNET_API clnet_status clnet_tensor_create(clnet_context *ctx, clnet_dtype dtype, int ndim,
                                           const int64_t *shape, clnet_tensor **out);
/* Frees a tensor handle (the storage too, if it was the last). NULL: no-op. */
CLNET_API void clnet_tensor_destroy(clnet_tensor *t);

CLNET_API clnet_context *clnet_tensor_context(const clnet_tensor *t);
CLNET_API clnet_dtype clnet_tensor_dtype(const clnet_tensor *t);
CLNET_API int clnet_tensor_ndim(const clnet_tensor *t);
/* Size of dimension i; a negative i counts from the end; out of range: 0. */
CLNET_API int64_t clnet_tensor_dim(const clnet_tensor *t, int i);
/* Copies the shape into shape[0..ndim-1]; returns ndim. */
CLNET_API int clnet_tensor_shape(const clnet_tensor *t, int64_t shape[CLNET_MAX_DIMS]);
CLNET_API size_t clnet_tensor_numel(const clnet_tensor *t);
/* Offset of the first element in the storage buffer, in elements. */
CLNET_API size_t clnet_tensor_offset(const clnet_tensor *t);

/* Copies bytes (must equal numel * dtype size) from host memory to the
 * tensor. Returns after the data has been copied out of src. */
CLNET_API clnet_status clnet_tensor_upload(clnet_tensor *t, const void *src, size_t bytes);
/* Copies the tensor to host memory, waiting for queued work. */
CLNET_API clnet_status clnet_tensor_download(const clnet_tensor *t, void *dst, size_t bytes);
/* Part of a tensor: elements [offset, offset + count) in row-major order
 * (element indices, not bytes), to or from count * dtype size bytes of host
 * memory. offset + count must not exceed numel (CLNET_ERR_SHAPE, naming both,
 * otherwise); count 0 copies nothing. Elements outside the range are left as
 * they are. Waits as the whole-tensor calls do. */
CLNET_API clnet_status clnet_tensor_upload_range(clnet_tensor *t, size_t offset, size_t count,
                                                 const void *src);
CLNET_API clnet_status clnet_tensor_download_range(const clnet_tensor *t, size_t offset,
                                                   size_t count, void *dst);

/* A view with another shape and the same number of elements; at most one dim
 * may be -1 and is inferred. *out is caller-owned (clnet_tensor_destroy). */
CLNET_API clnet_status clnet_tensor_reshape(const clnet_tensor *t, int ndim, const int64_t *shape,
                                            clnet_tensor **out);
/* A view of rows [start, start + count) of the first dimension. */
CLNET_API clnet_status clnet_tensor_slice(const clnet_tensor *t, int64_t start, int64_t count,
                                          clnet_tensor **out);

/* Sets every element to value (converted to the tensor's dtype). */
CLNET_API clnet_status clnet_tensor_fill(clnet_tensor *t, double value);
/* dst = src; same dtype and element count (shapes may differ). */
CLNET_API clnet_status clnet_tensor_copy(const clnet_tensor *src, clnet_tensor *dst);

/* dst row i = src row indices[i] along the first dimension (a batch drawn
 * from a dataset in shuffled order). dst and src share dtype and row size;
 * indices is int32 with dst's row count. An index outside src's rows gives a
 * row of zeros (never an out-of-bounds read). dst must not overlap src. */
CLNET_API clnet_status clnet_tensor_gather_rows(const clnet_tensor *src,
                                                const clnet_tensor *indices, clnet_tensor *dst);

/* Random fills with the counter-based Philox4x32-10 generator: element i of
 * the tensor takes word i % 4 of Philox(counter = {i / 4 (64 bits), stream
 * (64 bits)}, key = seed). The same seed and stream give the same numbers on
 * every device and in the CPU implementation (docs/rng.md). Uniform values lie
 * in [lo, hi) and are bit-identical everywhere; normal values use Box-Muller
 * and agree to a few ulp (they use the device's log, sqrt, sin and cos). */
CLNET_API clnet_status clnet_tensor_rand_uniform(clnet_tensor *t, uint64_t seed, uint64_t stream,
                                                 float lo, float hi);
CLNET_API clnet_status clnet_tensor_rand_normal(clnet_tensor *t, uint64_t seed, uint64_t stream,
                                                float mean, float stddev);

#ifdef __cplusplus
}
#endif
#endif
