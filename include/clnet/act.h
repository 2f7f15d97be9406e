/* clnet — activations (relu, leaky relu, sigmoid, tanh), softmax and
 * log-softmax over the last axis, softmax over channels, and the
 * per-channel bias, forward and backward, on float32 tensors.
 *
 * Common rules. Every tensor of one call belongs to the same context and is
 * float32. Work is queued and the call returns; nothing waits. Outputs are
 * overwritten (never accumulated). Where a comment says an output "may alias"
 * an input, it may be the same tensor or a view of exactly the same elements
 * (same storage and offset); a partial overlap is refused with
 * CLNET_ERR_INVALID_ARG. Empty tensors (a zero dim) launch nothing and
 * succeed. Results are deterministic: the same inputs on the same device give
 * the same bits. Tensors are borrowed for the call; nothing is retained.
 * Thread-safety: as the tensors' context. */
#ifndef CLNET_ACT_H
#define CLNET_ACT_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Elementwise activations -------------------------------------------- */

typedef enum clnet_activation {
    CLNET_ACT_NONE = 0, /* y = x */
    CLNET_ACT_IDENTITY = CLNET_ACT_NONE,
    CLNET_ACT_RELU,       /* y = x > 0 ? x : 0 */
    CLNET_ACT_LEAKY_RELU, /* y = x > 0 ? x : alpha * x */
    CLNET_ACT_SIGMOID,    /* y = 1 / (1 + exp(-x)) */
    CLNET_ACT_TANH,       /* y = tanh(x) */
    CLNET_ACT_RELU6,      /* y = min(max(x, 0), 6) (MobileNet's; ONNX Clip(0, 6)) */
    CLNET_ACT_HARD_SWISH, /* y = x * (min(max(x + 3, 0), 6) / 6) (MobileNetV3's; ONNX HardSwish) */
    /* Softmax over the feature axis: a layer's activation (clnet/nn.h), not
     * an elementwise one; clnet_activation_forward and _backward refuse it
     * (clnet_softmax_forward below computes it). */
    CLNET_ACT_SOFTMAX
} clnet_activation;

/* A short constant name ("relu"); "unknown" for a value outside the enum. */
CLNET_API const char *clnet_activation_name(clnet_activation act);

/* y = act(x), elementwise. x and y hold the same number of elements (shapes
 * may differ); y may alias x (in place). alpha is used by LEAKY_RELU only.
 *
 * Special values: NaN propagates through every activation. relu(-0) = +0,
 * relu(-Inf) = 0, relu(+Inf) = +Inf (relu6 likewise, with +Inf and
 * everything above 6 giving 6; hard swish is the formula as written, so
 * hard_swish(-Inf) = -Inf * 0 = NaN, as PyTorch's); leaky relu keeps the sign of zero for
 * alpha > 0 and gives alpha * x for x <= 0 (so -Inf stays -Inf). sigmoid is
 * evaluated without overflow for any x (exp of a non-positive argument only):
 * sigmoid(+Inf) = 1, sigmoid(-Inf) = +0, sigmoid(x) = 1 for x >= 17.4,
 * and reaches the denormal range below x = -87.3. tanh(+-Inf) = +-1,
 * tanh(-0) = -0, and tanh(x) is exactly +-1 for |x| >= 9.011 (where the true
 * value rounds to +-1). Denormal inputs and results are ordinary numbers on
 * devices with float denormals; a device without them (no CL_FP_DENORM) may
 * flush them to a zero of the same sign. */
CLNET_API clnet_status clnet_activation_forward(clnet_activation act, float alpha,
                                                const clnet_tensor *x, clnet_tensor *y);

/* dx = dy * act'(.), elementwise; every given tensor holds the same number of
 * elements. Which saved tensor each activation reads:
 *   NONE:        neither (dx = dy); x and y may be NULL.
 *   RELU:        x: dx = x > 0 ? dy : 0. y may be NULL.
 *   LEAKY_RELU:  x: dx = x > 0 ? dy : alpha * dy. y may be NULL.
 *   RELU6:       x: dx = 0 < x < 6 ? dy : 0 (PyTorch's). y may be NULL.
 *   HARD_SWISH:  x: dx = x < -3 ? 0 : x <= 3 ? dy * (2x + 3) / 6 : dy
 *                (PyTorch's branches). y may be NULL; y does not give x
 *                back, so an in-place forward leaves nothing to pass.
 *   SIGMOID:     y: dx = dy * y * (1 - y). x may be NULL.
 *   TANH:        y: dx = dy * (1 - y) * (1 + y) (= 1 - y^2, without its
 *                cancellation near |y| = 1). x may be NULL.
 * After an in-place forward (x overwritten), relu, relu6 and leaky relu
 * with alpha > 0 may be passed y as x: y > 0 exactly when x > 0 (and
 * y < 6 exactly when x < 6). A tensor that is
 * given but not read is still checked (context, dtype, size). dx may alias
 * dy. A NaN x gives dx = 0 for relu and relu6, alpha * dy for leaky relu
 * (NaN > 0 is false) and dy for hard swish; a NaN y or dy gives NaN. */
CLNET_API clnet_status clnet_activation_backward(clnet_activation act, float alpha,
                                                 const clnet_tensor *x, const clnet_tensor *y,
                                                 const clnet_tensor *dy, clnet_tensor *dx);

/* ---- Softmax over the last axis ----------------------------------------- */

/* x is viewed as (rows, cols): cols its last dim (1 for a 0-D tensor), rows
 * the product of the others. y has x's exact shape and may alias x.
 *
 * softmax:      y = exp(x - max) / sum_j exp(x_j - max), per row.
 * log-softmax:  y = (x - max) - log1p(sum over non-maximal j of
 *               exp(x_j - max) + ties - 1), per row, where ties counts the
 *               entries equal to the maximum: log(sum exp(x_j - max))
 *               computed without the rounding of 1 + small, so log-
 *               probabilities near 0 keep their relative accuracy.
 * Each row is reduced in a fixed order (one work-item, or one work-group of
 * the device's fixed size when the row is long): deterministic.
 * NaN policy: a NaN or +Inf anywhere in a row makes the whole output row NaN
 * (+Inf - +Inf); -Inf entries give probability 0 (log-probability -Inf) when
 * the row has a finite maximum; a row of only -Inf is NaN. Large finite
 * logits (|x| = 1e4, FLT_MAX) are fine: only differences to the maximum
 * reach exp. */
CLNET_API clnet_status clnet_softmax_forward(const clnet_tensor *x, clnet_tensor *y);
CLNET_API clnet_status clnet_log_softmax_forward(const clnet_tensor *x, clnet_tensor *y);

/* Backward from the forward's output y and the gradient dy (both of x's
 * shape) into dx (same shape); dx may alias dy or y.
 * softmax:      dx = y * (dy - sum_j dy_j y_j), per row.
 * log-softmax:  dx = dy - exp(y) * sum_j dy_j, per row. */
CLNET_API clnet_status clnet_softmax_backward(const clnet_tensor *y, const clnet_tensor *dy,
                                              clnet_tensor *dx);
CLNET_API clnet_status clnet_log_softmax_backward(const clnet_tensor *y, const clnet_tensor *dy,
                                                  clnet_tensor *dx);

/* ---- Softmax over channels ---------------------------------------------- */

/* Softmax over dim 1 of x viewed as (n, channels, s), s the product of the
 * dims after it: for NCHW images, over the channels of each pixel (Keras'
 * softmax on the feature axis). y has x's exact shape and may alias x.
 * y = exp(x - max) / sum_k exp(x_k - max) per (n, pixel), channels summed in
 * order by one work-item: deterministic. A column with a NaN or +Inf, or of
 * only -Inf, gives NaN. x needs at least 2 dims. */
CLNET_API clnet_status clnet_softmax_channels_forward(const clnet_tensor *x, clnet_tensor *y);
/* dx = y * (dy - sum_k dy_k y_k) per (n, pixel), from the forward's output
 * y; dx may alias dy or y. */
CLNET_API clnet_status clnet_softmax_channels_backward(const clnet_tensor *y,
                                                       const clnet_tensor *dy, clnet_tensor *dx);

/* ---- Bias over channels -------------------------------------------------- */

/* y = x + b[c] over the channel axis, which is dim 1: x is (N, C, ...) with
 * at least 2 dims, e.g. NCHW images, or (N, F) rows (then C = F and each row
 * gets b added). b holds C elements (any shape: (C) or (1, C, 1, 1)). y has
 * x's exact shape and may alias x. For (N, T, F) sequences reshape to
 * (N*T, F) first. IEEE rules: NaN propagates, Inf + -Inf is NaN. */
CLNET_API clnet_status clnet_bias_add(const clnet_tensor *x, const clnet_tensor *b,
                                      clnet_tensor *y);

/* db[c] = sum of dy over N and the spatial dims (dy shaped as x above, db
 * holding C elements); overwrites db. The sum is two-level and deterministic
 * (no atomics): the same dy on the same device gives the same bits, with a
 * chain of roundings far shorter than a plain loop's N*H*W (the order and
 * its length: docs/ops.md, "Bias gradient"). */
CLNET_API clnet_status clnet_bias_backward(const clnet_tensor *dy, clnet_tensor *db);

#ifdef __cplusplus
}
#endif
#endif
