/* clnet — the tensor's layout, shared by src/tensor and src/ops. */
#ifndef CLNET_TENSOR_IMPL_H
#define CLNET_TENSOR_IMPL_H

#include "clnet/tensor.h"
#include "runtime/runtime.h"

/* A device buffer shared by a tensor and its views. */
typedef struct clnet__storage {
    cl_mem mem;
    size_t bytes;
    int refs;
} clnet__storage;

struct clnet_tensor {
    clnet_context *ctx;
    clnet__storage *storage; /* NULL when numel == 0 */
    size_t offset;           /* in elements */
    size_t numel;
    clnet_dtype dtype;
    int ndim;
    int64_t shape[CLNET_MAX_DIMS];
};

static inline cl_mem clnet__mem(const clnet_tensor *t)
{
    return t->storage ? t->storage->mem : NULL;
}

/* A tensor as a kernel's (buffer, element offset) pair: two arguments. */
#define CLNET_ARG_TENSOR(t) CLNET_ARG_MEM(clnet__mem(t)), CLNET_ARG_ULONG((t)->offset)

/* Writes a shape as "(2, 8, 5, 5)" ("()" for 0-D) into buf; returns buf. The one
 * shape format of every message. */
const char *clnet__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

static inline const char *clnet__tensor_shape_str(const clnet_tensor *t, char *buf, size_t size)
{
    return clnet__shape_str(t->ndim, t->shape, buf, size);
}

/* Whether a and b have the same dimensions. */
int clnet__same_shape(const clnet_tensor *a, const clnet_tensor *b);

/* The context of the first non-NULL tensor (NULL if all are NULL), so that
 * a NULL first argument is still reported on the context. */
clnet_context *clnet__first_ctx(int count, const clnet_tensor *const *ts);

/* Whether a and b share storage and some element (NULLs and empty tensors
 * overlap nothing). */
int clnet__overlaps(const clnet_tensor *a, const clnet_tensor *b);

#endif
