/* clnet — the primitives of graph models: elementwise merges (add, subtract,
 * multiply), concatenation and its split, global average pooling, the VAE's
 * sampling and KL term, and custom elementwise ops compiled at run time from
 * an OpenCL C expression. Forward and backward, stateless, on float32.
 *
 * Common rules. Tensors are borrowed for the call; nothing is retained, and
 * the work is queued (nothing waits). All tensors of one call belong to one
 * context and are float32, with exactly the shapes stated. Every call checks
 * its arguments before it queues anything: CLNET_ERR_INVALID_ARG for NULLs
 * and bad parameters, CLNET_ERR_SHAPE for shapes and dtypes; the message
 * names the function and the argument. Empty tensors launch nothing and
 * succeed. Results are deterministic: the same inputs on the same device
 * give the same bits (fixed summation orders, no atomics). NaN and Inf
 * follow IEEE arithmetic through every formula below.
 *
 * Gradients accumulate. A graph sends several gradients into one tensor
 * (an input used twice, a head read by two losses), so every backward call
 * here takes `beta`: it writes dx = (the gradient) + beta * dx. beta = 0
 * overwrites without reading dx (a NaN already there does not propagate);
 * beta = 1 adds to what dx holds. Outputs of a backward call must not
 * overlap its inputs, nor each other, except where a comment allows it.
 *
 * Thread-safety: as the tensors' context. */
#ifndef CLNET_MERGE_H
#define CLNET_MERGE_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Elementwise merges (Keras Add, Subtract, Multiply) ------------------ */

typedef enum clnet_merge_op {
    CLNET_MERGE_ADD = 0,  /* y = x[0] + x[1] + ... + x[n-1] */
    CLNET_MERGE_SUBTRACT, /* y = x[0] - x[1] (n = 2 only, as Keras) */
    CLNET_MERGE_MULTIPLY  /* y = x[0] * x[1] * ... * x[n-1] */
} clnet_merge_op;

/* The most inputs one merge call takes. */
#define CLNET_MERGE_MAX_INPUTS 8

/* A short constant name ("add"); "unknown" for a value outside the enum. */
CLNET_API const char *clnet_merge_op_name(clnet_merge_op op);

/* y = x[0] op x[1] op ... op x[n-1], elementwise, evaluated left to right in
 * float32 (one rounding per op). 2 <= n <= CLNET_MERGE_MAX_INPUTS (n = 2 for
 * SUBTRACT). Every x[i] and y have the same shape. y may alias any x[i]
 * (the same elements), but not overlap one in part. */
CLNET_API clnet_status clnet_merge_forward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                           clnet_tensor *y);

/* dx[i] = dy * dy/dx[i] + beta * dx[i] for each i with dx[i] != NULL:
 *   ADD:      dy
 *   SUBTRACT: dy for x[0], -dy for x[1]
 *   MULTIPLY: dy * (the product of x[j], j != i, left to right)
 * x is read by MULTIPLY only (it may be NULL otherwise; given, it is
 * checked). dy and each dx[i] have the inputs' shape. The dx[i] are written
 * in order i = 0, 1, ...; the same tensor may appear as two dx[i] (an input
 * merged with itself), then beta = 1 sums both gradients into it. A dx[i]
 * must not overlap dy or any x[j]. */
CLNET_API clnet_status clnet_merge_backward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                            const clnet_tensor *dy, float beta,
                                            clnet_tensor *const *dx);

/* ---- Concatenate and split -------------------------------------------------- */

/* y = the n inputs joined along `axis` (negative counts from the end: -1 is
 * the last axis, Keras's default). Every x[i] has y's number of dims and
 * y's shape except along the axis, where y's extent is the sum of theirs
 * (an input may have extent 0 there). 1 <= n <= CLNET_MERGE_MAX_INPUTS.
 * Bitwise copies. y must not overlap any input. */
CLNET_API clnet_status clnet_concat_forward(int axis, int n, const clnet_tensor *const *x,
                                            clnet_tensor *y);

/* The split: dx[i] = the slice of dy that x[i] filled + beta * dx[i], for
 * each dx[i] != NULL (shapes as clnet_concat_forward's x and y). With
 * beta = 0 a bitwise copy. The slices' extents come from dx[i], or from
 * x[i] where dx[i] is NULL (x is read for its shapes only, and may be NULL
 * when every dx[i] is given). A dx[i] must not overlap dy or another dx[j]. */
CLNET_API clnet_status clnet_concat_backward(int axis, int n, const clnet_tensor *const *x,
                                             const clnet_tensor *dy, float beta,
                                             clnet_tensor *const *dx);

/* ---- Global average pooling (Keras GlobalAveragePooling2D) ------------------ */

/* x (N, C, H, W) -> y[n][c] = (sum over the H * W plane, in order) / (H * W);
 * y is (N, C) or (N, C, 1, 1). H * W = 0 is refused (an empty plane has no
 * mean). The sum is float32: a plane whose sum exceeds FLT_MAX gives Inf
 * even where the mean would be finite. y must not overlap x. */
CLNET_API clnet_status clnet_global_avg_pool2d_forward(const clnet_tensor *x, clnet_tensor *y);

/* dx[n][c][h][w] = dy[n][c] / (H * W) + beta * dx[n][c][h][w]; dy shaped as
 * the forward's y, dx as its x. */
CLNET_API clnet_status clnet_global_avg_pool2d_backward(const clnet_tensor *dy, float beta,
                                                        clnet_tensor *dx);

/* ---- VAE sampling and KL divergence ----------------------------------------- */

/* The reparameterization: z = mean + exp(logvar / 2) * eps, elementwise.
 * mean, logvar, eps and z have one shape. eps is filled first with N(0, 1)
 * numbers from clnet_tensor_rand_normal(eps, seed, stream, 0, 1) (Philox:
 * the same numbers on every device for a seed and stream, up to the float
 * rounding of log, sin and cos), and is kept by the caller for the backward.
 * z may alias mean or logvar; eps must not overlap any other argument. */
CLNET_API clnet_status clnet_sampling_forward(const clnet_tensor *mean, const clnet_tensor *logvar,
                                              uint64_t seed, uint64_t stream, clnet_tensor *eps,
                                              clnet_tensor *z);

/* The same with eps given (held fixed: evaluation with a known noise,
 * gradient checks). eps is only read. */
CLNET_API clnet_status clnet_sampling_forward_eps(const clnet_tensor *mean,
                                                  const clnet_tensor *logvar,
                                                  const clnet_tensor *eps, clnet_tensor *z);

/* dmean = dz + beta * dmean;
 * dlogvar = dz * eps * exp(logvar / 2) / 2 + beta * dlogvar.
 * Either output may be NULL (not wanted), not both. Shapes as the forward.
 * Outputs must not overlap the inputs or each other. */
CLNET_API clnet_status clnet_sampling_backward(const clnet_tensor *logvar, const clnet_tensor *eps,
                                               const clnet_tensor *dz, float beta,
                                               clnet_tensor *dmean, clnet_tensor *dlogvar);

typedef enum clnet_kl_reduction {
    CLNET_KL_MEAN = 0, /* loss: one element, the mean of the rows' KL */
    CLNET_KL_SUM,      /* loss: one element, the sum of the rows' KL */
    CLNET_KL_PER_ROW   /* loss: one element per row (`rows` elements, any shape) */
} clnet_kl_reduction;

/* The KL divergence of N(mean, exp(logvar)) from N(0, I), per row:
 *   kl_r = -0.5 * sum_j (1 + logvar_rj - mean_rj^2 - exp(logvar_rj)),
 * mean and logvar (same shape) viewed as rows over the last axis (one row
 * for a 0-D tensor). Each row is summed in order by one work-item; MEAN and
 * SUM then add the rows in order (MEAN divides by rows once).
 * In the same call, the gradient of the reduced loss (of the sum of the
 * rows for PER_ROW), with s = 1 / rows for MEAN and 1 otherwise:
 *   dmean   = s * mean + beta * dmean,
 *   dlogvar = s * (exp(logvar) - 1) / 2 + beta * dlogvar.
 * loss, dmean and dlogvar may each be NULL (not wanted), not all three.
 * No rows (an empty input) gives a NaN loss for MEAN (0 / 0) and 0 for SUM.
 * Outputs must not overlap the inputs or each other. */
CLNET_API clnet_status clnet_kl_normal(clnet_kl_reduction reduction, const clnet_tensor *mean,
                                       const clnet_tensor *logvar, float beta, clnet_tensor *loss,
                                       clnet_tensor *dmean, clnet_tensor *dlogvar);

/* ---- Custom elementwise ops from an OpenCL C expression ---------------------- */

/* The longest expression accepted, in bytes. */
#define CLNET_CUSTOM_EXPR_MAX 4096

/* y = f(x), elementwise, where `expr` is an OpenCL C expression of type
 * float in the float variable x, e.g. "x / (1.0f + exp(-x))" (swish). It is
 * pasted into a kernel as `return (expr);` on lines of its own, so it may
 * call any OpenCL C built-in (exp, fmax, select, ...) and span lines; write
 * float literals (1.0f) on devices without double. The first call with an
 * expression builds one program for it (CLNET_ERR_BUILD, with the build log,
 * when it does not compile); later calls with the same expression on the
 * context reuse it, and the disk cache keeps it across processes, like
 * every other program. Shapes are kernel arguments: a new shape builds
 * nothing. x and y hold the same number of elements; y may alias x. */
CLNET_API clnet_status clnet_custom_forward(const char *expr, const clnet_tensor *x,
                                            clnet_tensor *y);

/* dx = dy * d(x, y) + beta * dx, where `dexpr` is the derivative f'(x) as
 * an OpenCL C float expression in x and y = f(x), e.g. swish's
 * "y + (1.0f - y) / (1.0f + exp(-x))". Built and cached like the forward's
 * (one program per expression). x is required; y may be NULL when dexpr
 * does not read it (then y is 0 in the expression). x, y, dy and dx hold
 * the same number of elements; dx may alias dy, not x or y. */
CLNET_API clnet_status clnet_custom_backward(const char *dexpr, const clnet_tensor *x,
                                             const clnet_tensor *y, const clnet_tensor *dy,
                                             float beta, clnet_tensor *dx);

#ifdef __cplusplus
}
#endif
#endif
