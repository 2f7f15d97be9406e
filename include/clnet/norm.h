/* clnet — batch normalization and dropout on float32 tensors: forward
 * (training and inference) and backward, with deterministic per-channel
 * reductions and a counter-based (Philox) dropout mask.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_NORM_H
#define CLNET_NORM_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Batch normalization ------------------------------------------------ */

/* Layout. x is (N, C, d2, d3, ...) with at least 2 dims: NCHW images, (N, C, L)
 * sequences, and (N, F) features (then C = F and the spatial size HW is 1).
 * Statistics are per channel over the m = N * HW values of that channel.
 * gamma, beta, running_mean, running_var, save_mean, save_invstd, dgamma and
 * dbeta are 1-D tensors of C elements. y, dy and dx have x's shape.
 *
 * Semantics are PyTorch's BatchNorm: training normalizes with the batch mean
 * and the biased batch variance (divided by m) and updates the running
 * statistics with the unbiased one (divided by m - 1):
 *   running = (1 - momentum) * running + momentum * batch_statistic.
 * Keras' BatchNormalization(momentum=0.99) weights the OLD value by 0.99: it is
 * momentum = 0.01 here.
 *
 * Statistics use the corrected two-pass algorithm (a provisional mean, then
 * sums of the deviations from it and of their squares), each sum a two-stage
 * reduction in a fixed order with no atomics: the same inputs on the same
 * device give the same bits, and a channel whose mean is large against its
 * spread (x = 1000 + noise) keeps an accurate variance.
 *
 * NaN/Inf policy: a NaN or Inf anywhere in a channel makes that channel's
 * statistics, outputs and running statistics NaN (as PyTorch); other channels
 * are unaffected. Nothing is checked or clamped.
 *
 * Ownership: every tensor is borrowed for the call; work is queued and the
 * call returns without waiting. Outputs must not overlap inputs, except as
 * stated. An empty x (a zero dim) does nothing and succeeds.
 * Thread-safety: as the tensors' context (one thread at a time). */
typedef struct clnet_batchnorm_params {
    float eps;      /* added to the variance before the square root (>= 0) */
    float momentum; /* weight of the batch statistic in the running one, in [0, 1] */
} clnet_batchnorm_params;

/* PyTorch's defaults: eps 1e-5, momentum 0.1. A NULL params means these. */
#define CLNET_BATCHNORM_PARAMS_INIT                                                                \
    {                                                                                              \
        .eps = 1e-5f, .momentum = 0.1f                                                             \
    }
#define CLNET_BATCHNORM_PARAMS_DEFAULT ((clnet_batchnorm_params)CLNET_BATCHNORM_PARAMS_INIT)

/* Training forward: y = gamma * (x - mean) * invstd + beta per channel, with
 * the batch mean and invstd = 1 / sqrt(var + eps), var the biased batch
 * variance. gamma NULL means 1 and beta NULL means 0 (no affine transform).
 * running_mean and running_var (in/out, either may be NULL) are updated in
 * place as above. save_mean and save_invstd (outputs, may be NULL) receive
 * the batch mean and invstd for clnet_batchnorm_backward. Needs m >= 2
 * (CLNET_ERR_SHAPE otherwise: the unbiased variance is undefined). y may
 * alias x. */
CLNET_API clnet_status clnet_batchnorm_forward_training(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *gamma,
    const clnet_tensor *beta, clnet_tensor *y, clnet_tensor *running_mean,
    clnet_tensor *running_var, clnet_tensor *save_mean, clnet_tensor *save_invstd);

/* Inference forward: y = gamma * (x - running_mean) / sqrt(running_var + eps)
 * + beta; the running statistics are read, not changed. gamma and beta may be
 * NULL as above. Any m >= 1. y may alias x. */
CLNET_API clnet_status clnet_batchnorm_forward_inference(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *gamma,
    const clnet_tensor *beta, const clnet_tensor *running_mean, const clnet_tensor *running_var,
    clnet_tensor *y);

/* Training backward, from x, dy and the statistics saved by the training
 * forward (xhat = (x - save_mean) * save_invstd):
 *   dbeta  = sum dy,  dgamma = sum dy * xhat   (per channel, overwritten)
 *   dx     = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m).
 * gamma NULL means 1; dgamma and dbeta may be NULL (not wanted). params is
 * accepted for symmetry and may be NULL (eps is already in save_invstd).
 * dx may alias x or dy. */
CLNET_API clnet_status clnet_batchnorm_backward(const clnet_batchnorm_params *params,
                                                const clnet_tensor *x, const clnet_tensor *dy,
                                                const clnet_tensor *gamma,
                                                const clnet_tensor *save_mean,
                                                const clnet_tensor *save_invstd, clnet_tensor *dx,
                                                clnet_tensor *dgamma, clnet_tensor *dbeta);

/* Inference backward (the running statistics are constants, e.g. a frozen
 * BatchNorm while fine-tuning): dx = dy * gamma / sqrt(running_var + eps),
 * dgamma = sum dy * xhat, dbeta = sum dy with xhat from the running
 * statistics. gamma NULL means 1; dgamma and dbeta may be NULL. dx may alias
 * x or dy. */
CLNET_API clnet_status clnet_batchnorm_backward_inference(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *dy,
    const clnet_tensor *gamma, const clnet_tensor *running_mean, const clnet_tensor *running_var,
    clnet_tensor *dx, clnet_tensor *dgamma, clnet_tensor *dbeta);

/* ---- Dropout --------------------------------------------------------------- */

/* Inverted dropout with drop probability rate in [0, 1]:
 *   y[i] = keep(i) ? x[i] * scale : 0,   scale = (float)(1 / (1 - rate)),
 * scale computed on the host in double and rounded once (a float
 * multiplication is correctly rounded on every device, a division is not).
 * keep(i) comes from the Philox4x32-10 generator exactly as
 * clnet_tensor_rand_uniform draws element i: word i % 4 of Philox(counter =
 * {i / 4, stream}, key = seed), keep(i) = (word >> 8) * 2^-24 >= rate. So the
 * mask is the same on every device and can be recomputed on the CPU; element i
 * of a tensor is always element i, whatever its offset in its buffer.
 * rate 0 keeps everything (y = x); rate 1 drops everything (y = 0, no
 * division by zero). Use a new (seed, stream) for every step and layer.
 *
 * The mask is not stored: clnet_dropout_backward regenerates it from (seed,
 * stream), costing ten Philox rounds per four elements instead of a buffer as
 * large as x and its extra memory traffic. mask (may be NULL) receives the
 * mask as float32 1 (kept) or 0 (dropped), for inspection or for code that
 * applies it itself; it holds as many elements as x (shapes may differ, like
 * y and dy).
 *
 * NaN/Inf policy: a dropped element is 0 even when x is NaN or Inf (a
 * select, not a multiplication by 0); a kept one propagates. y may alias x.
 * Errors: rate outside [0, 1] or NaN is CLNET_ERR_INVALID_ARG. */
CLNET_API clnet_status clnet_dropout_forward(float rate, uint64_t seed, uint64_t stream,
                                             const clnet_tensor *x, clnet_tensor *y,
                                             clnet_tensor *mask);

/* dx[i] = keep(i) ? dy[i] * scale : 0 with the same rate, seed and stream as
 * the forward call (the same mask, regenerated). dx may alias dy. */
CLNET_API clnet_status clnet_dropout_backward(float rate, uint64_t seed, uint64_t stream,
                                              const clnet_tensor *dy, clnet_tensor *dx);

#ifdef __cplusplus
}
#endif
#endif
