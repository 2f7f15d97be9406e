/* clnet — grouped and depthwise 2-D convolution of NCHW float32 tensors:
 * forward, backward to data and to the filters (the bias gradient is
 * clnet_conv2d_backward_bias of clnet/conv.h). */
#ifndef CLNET_CONV_GROUPED_H
#define CLNET_CONV_GROUPED_H

#include <stdint.h>

#include "conv.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Grouped convolution -------------------------------------------------
 *
 * The C input channels and the K output channels are split into `groups`
 * equal runs (groups >= 1 divides both C and K); output channel k reads only
 * the C/groups input channels of its group g = k / (K/groups). x (N, C, H, W),
 * w (K, C/groups, R, S) as PyTorch's Conv2d(groups=...) and ONNX's Conv,
 * b (K), y (N, K, OH, OW):
 *
 *   y[n,k,i,j] = b[k] + sum over c < C/groups, u, v of
 *                w[k,c,u,v] * x[n, g*(C/groups) + c, i*stride_h - pad_top + u*dilation_h,
 *                                                  j*stride_w - pad_left + v*dilation_w]
 *
 * with x taken as 0 outside the image; OH and OW as in clnet/conv.h (p's
 * output_pad is ignored). groups == 1 is the ordinary convolution of
 * clnet/conv.h; groups == C is the depthwise convolution, with K = C * m
 * filters (m >= 1, the depth multiplier; output channel k reads input
 * channel k / m).
 *
 * Rules as in clnet/conv.h: float32, contiguous, one context; every shape
 * exactly the one implied by the others, p and groups (CLNET_ERR_SHAPE, the
 * message names the argument and both shapes; CLNET_ERR_INVALID_ARG for
 * groups < 1); tensors borrowed; outputs overwritten, never overlapping an
 * input; an empty output launches nothing; an empty reduction writes zeros
 * (plus the bias). Work is queued; nothing waits.
 *
 * Deterministic (no atomics). Accuracy: each output is a float32 sum of
 * (C/groups)*R*S products ((K/groups)*R*S for the data gradient, N*OH*OW for
 * the filter gradient), within 2 * terms * 2^-24 * sum |products|.
 *
 * NaN policy: NaN and Inf propagate per IEEE through the sums, as in a
 * float64 evaluation of the formula. For groups > 1 taps in the zero
 * padding are skipped, so a non-finite weight does not turn a padded product
 * into NaN; groups == 1 follows clnet/conv.h (it may).
 *
 * Implementation: groups == 1 runs clnet/conv.h's calls; other groups run
 * direct kernels, one work-item per output element (docs/ops.md, "Grouped
 * and depthwise convolution"). Thread-safety: as the context. */

/* The output shape (n, k, oh, ow) of the grouped convolution of
 * x (n, c, h, w) with w (k, c / groups, r, s). CLNET_ERR_INVALID_ARG for
 * NULL pointers, groups < 1 or bad params; CLNET_ERR_SHAPE when groups does
 * not divide c and k, w's channels are not c / groups, a dimension is
 * negative or the kernel is empty or larger than the padded input;
 * CLNET_ERR_TOO_LARGE when a size overflows int64. No message (no context). */
CLNET_API clnet_status clnet_conv2d_grouped_output_shape(const clnet_conv2d_params *p, int groups,
                                                         const int64_t x_shape[4],
                                                         const int64_t w_shape[4],
                                                         int64_t y_shape[4]);

/* y = grouped conv(x, w) + b. b (K) may be NULL (no bias). */
CLNET_API clnet_status clnet_conv2d_grouped_forward(const clnet_conv2d_params *p, int groups,
                                                    const clnet_tensor *x, const clnet_tensor *w,
                                                    const clnet_tensor *b, clnet_tensor *y);
/* dx (N, C, H, W) = the gradient of sum(dy * y) with respect to x, from
 * w (K, C/groups, R, S) and dy (N, K, OH, OW): every x element gets the sum
 * of w * dy over the outputs of its group that read it (0 where none does). */
CLNET_API clnet_status clnet_conv2d_grouped_backward_data(const clnet_conv2d_params *p, int groups,
                                                          const clnet_tensor *w,
                                                          const clnet_tensor *dy, clnet_tensor *dx);
/* dw (K, C/groups, R, S) = sum over n, i, j of
 * dy[n,k,i,j] * x[n, g*(C/groups) + c, tap (u, v)], from x (N, C, H, W) and
 * dy (N, K, OH, OW). */
CLNET_API clnet_status clnet_conv2d_grouped_backward_filter(const clnet_conv2d_params *p,
                                                            int groups, const clnet_tensor *x,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dw);

#ifdef __cplusplus
}
#endif
#endif
