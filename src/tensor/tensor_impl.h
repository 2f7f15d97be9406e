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
    clnet__storage *storage;           /* NULL when numel == 0 */
    size_t offset;                     /* in elements */
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

/* Checks that every tensor is non-NULL, float32, of ctx, and holds n
 * elements; records which argument is wrong. names are the parameter names. */
clnet_status clnet__check_same(clnet_context *ctx, const char *func, int count,
                               const clnet_tensor *const *ts, const char *const *names);

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

/* Refuses an output that overlaps an input: CLNET_ERR_INVALID_ARG naming
 * both, unless alias_ok and they are exactly the same elements (same
 * storage, offset and size). in may be NULL. */
clnet_status clnet__check_overlap(clnet_context *ctx, const char *func, const clnet_tensor *out,
                                  const char *oname, const clnet_tensor *in, const char *iname,
                                  int alias_ok);

#endif
