/* clnet — losses (mean squared and mean absolute error, binary cross-entropy
 * from logits, softmax cross-entropy with probability or integer targets) and
 * the accuracy counts (sparse, categorical, binary), on float32 tensors.
 *
 * Common rules. Each loss computes the MEAN loss into `loss`, a one-element
 * float32 tensor (any shape), and the gradient of that mean with respect to
 * its input (already divided by the count) in the same call. Either output may
 * be NULL when it is not wanted, not both. The gradient has the input's exact
 * shape and may alias the input (the same elements). Every tensor of one call
 * belongs to the same context. Work is queued and the call returns.
 *
 * Determinism: terms are summed in a fixed order (per-lane strided sums, a
 * fixed tree per work-group, then the same for the group partials; no
 * atomics): the same inputs on the same device give the same bits. An empty
 * input (no elements or no rows) gives a NaN loss (0 / 0, as PyTorch) and
 * launches nothing else. NaN in an input makes the loss NaN and the gradient
 * NaN where it touches. Tensors are borrowed for the call; nothing is
 * retained. Thread-safety: as the tensors' context.
 *
 * Errors (every call here): CLNET_ERR_INVALID_ARG for a NULL input, both
 * outputs NULL, tensors of another context, or an output that overlaps an
 * input other than as stated; CLNET_ERR_SHAPE for shapes or dtypes that do
 * not fit (a loss or count output not one float32 element, labels not int32
 * with one per row); CLNET_ERR_TOO_LARGE for more than 2^31 - 1 classes;
 * CLNET_ERR_DEVICE_MEMORY, CLNET_ERR_BUILD or CLNET_ERR_OPENCL when the
 * device fails (allocating a workspace, building or launching a kernel). The message names the
 * function and the argument; nothing is queued when a check fails. */
#ifndef CLNET_LOSS_H
#define CLNET_LOSS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* loss = mean over the n elements of (pred - target)^2;
 * dpred = 2 (pred - target) / n. pred and target have the same shape. */
CLNET_API clnet_status clnet_loss_mse(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred);

/* loss = mean over the n elements of |pred - target|;
 * dpred = sign(pred - target) / n (0 where they are equal). */
CLNET_API clnet_status clnet_loss_mae(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred);

/* Binary cross-entropy from logits x and targets t in [0, 1] (same shape),
 * mean over the n elements of max(x, 0) - x t + log1p(exp(-|x|)), which never
 * overflows or takes the log of 0: |x| = 100 or 1e4 gives finite values
 * (x * t itself overflows only near FLT_MAX); dx = (sigmoid(x) - t) / n. */
CLNET_API clnet_status clnet_loss_bce_logits(const clnet_tensor *x, const clnet_tensor *target,
                                             clnet_tensor *loss, clnet_tensor *dx);

/* Softmax cross-entropy from logits viewed as (rows, classes) over the last
 * axis (classes >= 1), with target probabilities of the same shape (one-hot
 * or soft; rows need not sum to 1):
 *   loss = mean over rows of -sum_j t_j log_softmax(logits)_j,
 *   dlogits = (softmax(logits) * sum_j t_j - t) / rows.
 * log_softmax as in clnet_log_softmax_forward (max-subtracted, log1p of the
 * non-maximal sum): logits of 80 or 1e4 give finite results. A target of 0
 * adds nothing to the loss, even against a -Inf logit. A row whose maximum is
 * NaN or +-Inf gives a NaN loss and a NaN gradient row. */
CLNET_API clnet_status clnet_loss_softmax_xent(const clnet_tensor *logits,
                                               const clnet_tensor *target, clnet_tensor *loss,
                                               clnet_tensor *dlogits);

/* The same with an int32 class label per row: labels holds exactly `rows`
 * elements (any shape), target row i is one-hot at labels[i]:
 *   loss = mean over rows of log(sum_j exp(x_j)) - x_label,
 *   dlogits = (softmax(logits) - onehot(label)) / rows.
 * A label outside [0, classes) is never used as an index: that row's loss is
 * NaN (so the mean is NaN and the error is seen) and its gradient row is 0. */
CLNET_API clnet_status clnet_loss_sparse_softmax_xent(const clnet_tensor *logits,
                                                      const clnet_tensor *labels,
                                                      clnet_tensor *loss, clnet_tensor *dlogits);

/* correct = the NUMBER of rows whose argmax equals the label (a count, not a
 * fraction, so counts from several batches add up exactly). logits is viewed
 * as (rows, classes) as above; labels is int32 with `rows` elements. correct
 * is one element, int32 (exact) or float32 (exact up to 2^24 rows). argmax
 * takes the first maximum (strict >, scanning left to right); a NaN logit
 * never wins unless it is the row's first entry. A label outside
 * [0, classes) never matches. No rows: 0. */
CLNET_API clnet_status clnet_accuracy(const clnet_tensor *logits, const clnet_tensor *labels,
                                      clnet_tensor *correct);

/* correct = the NUMBER of rows of pred (viewed as (rows, classes) as above)
 * whose first argmax equals the first argmax of the same row of target (same
 * shape as pred: one-hot or probabilities): Keras' categorical accuracy as a
 * count. correct as in clnet_accuracy. No rows: 0. */
CLNET_API clnet_status clnet_categorical_accuracy(const clnet_tensor *pred,
                                                  const clnet_tensor *target,
                                                  clnet_tensor *correct);

/* correct = the NUMBER of elements where (pred > threshold) equals
 * (target > 0.5): binary accuracy as a count; threshold 0.5 for
 * probabilities, 0 for logits. pred and target have the same shape; a NaN
 * pred counts as below the threshold. correct as in clnet_accuracy. */
CLNET_API clnet_status clnet_binary_accuracy(const clnet_tensor *pred, const clnet_tensor *target,
                                             float threshold, clnet_tensor *correct);

#ifdef __cplusplus
}
#endif
#endif
