/* clnet — the op layer: an op declares its tensors as a small const table,
 * one checker enforces it with one message format, and one launch helper
 * counts the kernel arguments (docs/adding-an-op.md). */
#ifndef CLNET_OP_H
#define CLNET_OP_H

#include "tensor/tensor_impl.h"

/* Flags of a tensor's entry in an op's table. */
enum {
    CLNET_T_OUT = 1u << 0,      /* written by the op: checked for overlap with every other */
    CLNET_T_OPTIONAL = 1u << 1, /* may be NULL (then nothing else is checked for it) */
    CLNET_T_I32 = 1u << 2,      /* int32 (default: float32) */
    CLNET_T_ANY_DTYPE = 1u << 3 /* float32 or int32 */
};

/* One tensor of an op. Zero means "no constraint" in every field, so an
 * entry names only what it requires:
 *   { .name = "y", .flags = CLNET_T_OUT, .rank = 4, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0)
 * } */
typedef struct clnet__tspec {
    const char *name; /* the parameter's name, as messages print it */
    unsigned flags;   /* CLNET_T_* */
    int rank;         /* exact number of dimensions; 0: any */
    int like;         /* CLNET_LIKE(k): the exact shape of tensor k; 0: none */
    int size_of;      /* CLNET_SIZE_OF(k): as many elements as tensor k; 0: none */
    unsigned alias;   /* outputs: CLNET_ALIAS(k) bits of the tensors this one may alias
                       * exactly (same storage, offset and size); any other overlap, and
                       * any overlap with a tensor not named here, is refused */
} clnet__tspec;

#define CLNET_LIKE(k) ((k) + 1)
#define CLNET_SIZE_OF(k) ((k) + 1)
#define CLNET_ALIAS(k) (1u << (k))
#define CLNET_OP_MAX_TENSORS 20

/* A checked call: what later checks and launches need. */
typedef struct clnet__op {
    clnet_context *ctx; /* the context of the first non-NULL tensor */
    const char *func;   /* the public function's name, first in every message */
    const clnet__tspec *spec;
    int count;
    const clnet_tensor *t[CLNET_OP_MAX_TENSORS]; /* a copy: the caller's list may be gone */
} clnet__op;

/* Checks tensors ts[0..count) against spec[0..count) and fills *op. In
 * order, each message "<func>: <name>: ..." naming the argument at fault:
 * every tensor NULL (CLNET_ERR_INVALID_ARG, nothing recorded: no context);
 * a NULL tensor that is not optional (INVALID_ARG); one of another context
 * (INVALID_ARG); dtype, rank, like and size_of (CLNET_ERR_SHAPE), then the
 * aliasing rule (INVALID_ARG). count is at most CLNET_OP_MAX_TENSORS. */
clnet_status clnet__op_check(clnet__op *op, const char *func, const clnet__tspec *spec, int count,
                             const clnet_tensor *const *ts);

/* The same with the table's length counted: spec is an array, then the
 * tensors in its order. */
#define CLNET_OP_CHECK(op, func, spec, ...)                                                        \
    clnet__op_check((op), (func), (spec), (int)(sizeof(spec) / sizeof((spec)[0])),                 \
                    (const clnet_tensor *const[]){ __VA_ARGS__ })

/* Tensor i must have exactly `shape` (ndim dimensions), known only after the
 * op's geometry: "<func>: y: shape (3, 4, 5) but expected (3, 4, 6)".
 * A NULL optional tensor passes. */
clnet_status clnet__op_want_shape(const clnet__op *op, int i, int ndim, const int64_t *shape);

/* The same, naming the dimensions in the message: "<func>: y: shape
 * (2, 4, 5) but expected (2, 3, 5) (N x T x H)". */
clnet_status clnet__op_want_shape_as(const clnet__op *op, int i, int ndim, const int64_t *shape,
                                     const char *dims);

/* Records "<func>: <fmt...>" with status on the op's context. */
clnet_status clnet__op_fail(const clnet__op *op, clnet_status status, const char *fmt, ...)
    CLNET_PRINTF(3, 4);

/* Tensor i of the op (NULL where an optional one was not given). */
static inline const clnet_tensor *clnet__op_t(const clnet__op *op, int i)
{
    return op->t[i];
}

/* ---- Launches ------------------------------------------------------------------- */

/* CLNET_ARGS (src/runtime/runtime.h) writes kernel arguments as a counted
 * list; CLNET_ARG_TENSOR (src/tensor/tensor_impl.h) is a tensor's buffer
 * and element offset. */

/* Gets kernel `kernel` of program `program` (no extra options) and runs it
 * over n work-items (the profile's work-group size); n = 0 does nothing. */
clnet_status clnet__run1d(clnet_context *ctx, const char *func, const char *program,
                          const char *kernel, size_t n, int nargs, const clnet__arg *args);

#define CLNET_RUN1D(ctx, func, program, kernel, n, ...)                                            \
    clnet__run1d((ctx), (func), (program), (kernel), (n), CLNET_ARGS(__VA_ARGS__))

#endif
