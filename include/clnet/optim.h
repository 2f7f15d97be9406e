/* clnet — optimizer steps (SGD, Adam/AdamW, RMSprop) as fused kernels over one
 * parameter tensor and its gradient, and clipping by global norm.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_OPTIM_H
#define CLNET_OPTIM_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conventions. One call updates one parameter tensor in place from its
 * gradient; the optimizer state tensors (momentum buffer, Adam's m and v,
 * RMSprop's average) are owned by the caller, who keeps one set per
 * parameter. param, grad and every state tensor are float32 tensors of one
 * context with the same shape; grad is read only and must not overlap param
 * or the state. Semantics are PyTorch's (torch.optim): weight decay is L2,
 * added to the gradient (g' = grad + weight_decay * param) unless stated.
 * t is the step number, 1 for the first step of a run.
 *
 * All scalars are float32 on the device; per-step scalars (Adam's bias
 * corrections) are computed on the host in double and rounded once. Each
 * element is updated independently: results are deterministic and do not
 * depend on the device's work-group size.
 *
 * NaN/Inf policy: nothing is checked on the device. A NaN or Inf in grad (or
 * param) propagates into that element's param and state.
 *
 * Ownership: every tensor is borrowed for the call; work is queued and the
 * call returns without waiting. An empty param does nothing.
 * Thread-safety: as the tensors' context (one thread at a time).
 *
 * Errors (every call here): CLNET_ERR_INVALID_ARG for a NULL tensor (a state
 * tensor the params need), tensors of another context, overlaps as above, a
 * params field out of its range, t < 1, or (clipping) a negative count or
 * max_norm; CLNET_ERR_SHAPE for a dtype other than float32 or a shape other
 * than param's; CLNET_ERR_DEVICE_MEMORY, CLNET_ERR_BUILD or CLNET_ERR_OPENCL when the
 * device fails (allocating a workspace, building or launching a kernel).
 * The message names the function and the argument or field; nothing is
 * queued when a check fails. */

/* ---- SGD ------------------------------------------------------------------- */

typedef struct clnet_sgd_params {
    float lr;           /* learning rate, >= 0 */
    float momentum;     /* >= 0; 0 is plain SGD without a buffer */
    float dampening;    /* in [0, 1]; 0 as in PyTorch's default */
    float weight_decay; /* >= 0 (L2, added to the gradient) */
    int nesterov;       /* nonzero: Nesterov momentum (needs momentum > 0, dampening 0) */
} clnet_sgd_params;

/* lr 0.01, everything else 0; a NULL params means these. */
#define CLNET_SGD_PARAMS_INIT                                                                      \
    {                                                                                              \
        .lr = 0.01f                                                                                \
    }
#define CLNET_SGD_PARAMS_DEFAULT ((clnet_sgd_params)CLNET_SGD_PARAMS_INIT)

/* One SGD step (torch.optim.SGD):
 *   g' = grad + weight_decay * param
 *   buf = g' at t == 1 (buf's old contents are ignored, even NaN),
 *         else momentum * buf + (1 - dampening) * g'
 *   dir = nesterov ? g' + momentum * buf : buf    (momentum > 0)
 *   dir = g'                                      (momentum == 0)
 *   param -= lr * dir
 * momentum_buf (in/out, param's shape) is needed when momentum > 0; with
 * momentum == 0 it may be NULL and is not touched. t >= 1. */
CLNET_API clnet_status clnet_sgd_step(const clnet_sgd_params *params, int64_t t,
                                      clnet_tensor *param, const clnet_tensor *grad,
                                      clnet_tensor *momentum_buf);

/* ---- Adam and AdamW ------------------------------------------------------------ */

typedef struct clnet_adam_params {
    float lr;           /* >= 0 */
    float beta1, beta2; /* each in [0, 1) */
    float eps;          /* >= 0, added to sqrt(vhat) */
    float weight_decay; /* >= 0 */
    int decoupled;      /* nonzero: AdamW (decoupled weight decay), see below */
} clnet_adam_params;

/* PyTorch's Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight
 * decay. (PyTorch's AdamW defaults weight_decay to 1e-2: set it explicitly.) */
#define CLNET_ADAM_PARAMS_INIT                                                                     \
    {                                                                                              \
        .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f                                  \
    }
#define CLNET_ADAM_PARAMS_DEFAULT ((clnet_adam_params)CLNET_ADAM_PARAMS_INIT)

/* One Adam step (torch.optim.Adam, amsgrad off):
 *   g' = grad + weight_decay * param          (decoupled == 0: L2)
 *   param *= 1 - lr * weight_decay, g' = grad (decoupled != 0: AdamW)
 *   m = beta1 * m + (1 - beta1) * g'
 *   v = beta2 * v + (1 - beta2) * g' * g'
 *   param -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * The bias corrections are computed on the host for each t (no pow() per
 * element). m and v (in/out, param's shape) are the moment estimates; at
 * t == 1 their old contents are ignored (taken as 0, even NaN), so they need
 * no initialization. t >= 1. */
CLNET_API clnet_status clnet_adam_step(const clnet_adam_params *params, int64_t t,
                                       clnet_tensor *param, const clnet_tensor *grad,
                                       clnet_tensor *m, clnet_tensor *v);

/* ---- RMSprop ------------------------------------------------------------------ */

typedef struct clnet_rmsprop_params {
    float lr;           /* >= 0 */
    float alpha;        /* smoothing constant in [0, 1] */
    float eps;          /* >= 0, added to sqrt(v) */
    float weight_decay; /* >= 0 */
} clnet_rmsprop_params;

/* PyTorch's defaults: lr 1e-2, alpha 0.99, eps 1e-8. (Keras' RMSprop uses
 * rho = 0.9 for alpha, eps 1e-7 and lr 1e-3.) */
#define CLNET_RMSPROP_PARAMS_INIT                                                                  \
    {                                                                                              \
        .lr = 1e-2f, .alpha = 0.99f, .eps = 1e-8f                                                  \
    }
#define CLNET_RMSPROP_PARAMS_DEFAULT ((clnet_rmsprop_params)CLNET_RMSPROP_PARAMS_INIT)

/* One RMSprop step (torch.optim.RMSprop, not centered, no momentum):
 *   g' = grad + weight_decay * param
 *   sq_avg = alpha * sq_avg + (1 - alpha) * g' * g'
 *   param -= lr * g' / (sqrt(sq_avg) + eps)
 * sq_avg (in/out, param's shape) must hold zeros before the first step
 * (clnet_tensor_fill(sq_avg, 0)). */
CLNET_API clnet_status clnet_rmsprop_step(const clnet_rmsprop_params *params, clnet_tensor *param,
                                          const clnet_tensor *grad, clnet_tensor *sq_avg);

/* ---- Gradient clipping ----------------------------------------------------------- */

/* Clips count gradients by their global L2 norm, in place, as
 * torch.nn.utils.clip_grad_norm_:
 *   norm = sqrt(sum over every element of every grads[i] of g^2)
 *   coef = max_norm / (norm + 1e-6); when coef < 1, every gradient *= coef.
 * Everything happens on the device, with no host round trip: per-tensor sums
 * of squares into a workspace, one kernel that adds them in a fixed order
 * and computes coef, and one scaling kernel per tensor that reads coef from
 * device memory. Deterministic for a given device.
 * grads[0..count-1] are distinct, non-overlapping float32 tensors of one
 * context (empty ones are allowed); count >= 0; max_norm >= 0. total_norm
 * (may be NULL) receives the norm before clipping: one float32 element, any
 * shape. count == 0 gives a norm of 0.
 * NaN/Inf policy: squares are summed in float32, so a norm above ~1.8e19
 * overflows to Inf and then coef = 0 (finite gradients become 0, infinite
 * ones NaN). A NaN gradient makes the norm NaN; coef < 1 is then false and
 * NOTHING is scaled (PyTorch would scale by NaN); total_norm reports NaN. */
CLNET_API clnet_status clnet_clip_grad_norm(clnet_tensor *const *grads, int count, float max_norm,
                                            clnet_tensor *total_norm);

#ifdef __cplusplus
}
#endif
#endif
