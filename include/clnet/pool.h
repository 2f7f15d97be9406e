/* clnet — 2-D max and average pooling and nearest-neighbour upsampling on
 * NCHW float32 tensors, forward and backward.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). The ops here need their params: a
 * NULL params pointer is CLNET_ERR_INVALID_ARG. */
#ifndef CLNET_POOL_H
#define CLNET_POOL_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conventions for every call below. Tensors are borrowed: nothing is kept
 * after the call returns, and the work is queued (nothing waits). All
 * tensors of a call belong to one context, are float32 and 4-D (N, C, H, W),
 * and have exactly the shapes stated; an output must not overlap any input.
 * Outputs are overwritten, never accumulated. Tensors with N or C zero launch
 * nothing and succeed. Every call checks its arguments before it queues
 * anything: CLNET_ERR_INVALID_ARG for NULLs and bad parameters,
 * CLNET_ERR_SHAPE for wrong shapes or dtypes; the message names the function
 * and the argument. Results are deterministic: the same inputs on the same
 * device give the same bits (backward passes gather, no atomics).
 * Thread-safety: as the tensors' context. */

/* Pooling geometry, floor mode (as PyTorch's ceil_mode=False and Keras):
 *   OH = (H + pad_top + pad_bottom - window_h) / stride_h + 1, OW likewise.
 * Output (i, j) pools the input rows i*stride_h - pad_top .. + window_h - 1
 * and columns j*stride_w - pad_left .. + window_w - 1; padded positions are
 * never read (max ignores them; average counts them only in the divisor).
 * Valid parameters: window >= 1, stride >= 1, 0 <= each padding < its
 * window dimension (so every window covers at least one input element),
 * and the window no larger than the padded input. */
typedef struct clnet_pool2d_params {
    int window_h, window_w;
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
    /* Average only: nonzero divides every window by window_h * window_w;
     * zero divides by the number of input (non-padding) elements it covers. */
    int count_include_pad;
} clnet_pool2d_params;

/* The most common CNN pooling: a 2x2 window with stride 2 (stride = window,
 * the default of both Keras and PyTorch), no padding. count_include_pad is 0,
 * as Keras/TensorFlow and cuDNN's "exclude padding" mode: a border average is
 * then the mean of real inputs, not diluted by zeros (PyTorch's AvgPool2d
 * defaults to 1; without padding the two agree). */
#define CLNET_POOL2D_PARAMS_INIT                                                                   \
    {                                                                                              \
        .window_h = 2, .window_w = 2, .stride_h = 2, .stride_w = 2, .pad_top = 0, .pad_bottom = 0, \
        .pad_left = 0, .pad_right = 0, .count_include_pad = 0                                      \
    }
#define CLNET_POOL2D_PARAMS_DEFAULT ((clnet_pool2d_params)CLNET_POOL2D_PARAMS_INIT)

/* The output shape (N, C, OH, OW) for an input of shape x_shape (N, C, H, W)
 * into y_shape. Pure: no context, so a failure returns a status without a
 * message (the pooling calls below report the same checks with details).
 * CLNET_ERR_INVALID_ARG for NULL pointers, invalid params, a negative dim, H
 * or W zero, or a window larger than the padded input; CLNET_ERR_TOO_LARGE
 * when an input or output plane would exceed 2^31 - 1 elements. */
CLNET_API clnet_status clnet_pool2d_output_shape(const clnet_pool2d_params *params,
                                                 const int64_t x_shape[4], int64_t y_shape[4]);

/* y (N, C, OH, OW) = the maximum of each window of x (N, C, H, W).
 * NaN policy: NaN propagates (a window with a NaN gives NaN); +-Inf are
 * ordinary values; between -0 and +0, which compare equal, the first in scan
 * order is kept. Exact: y holds elements of x. */
CLNET_API clnet_status clnet_pool2d_max_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y);

/* dx (N, C, H, W) from x (N, C, H, W) and dy (N, C, OH, OW): each window's
 * dy goes to the FIRST maximum of its window in scan order (row by row, top
 * to bottom, left to right), so ties give the whole gradient to the first
 * tied element; with a NaN in the window, to its first NaN (the element the
 * forward pass returned). An element that is the first maximum of several
 * windows receives the sum of their dy, added in row-major window order; an
 * element that is no window's first maximum receives 0. dx is overwritten and
 * must not overlap x or dy. NaN or Inf in dy reaches only the elements that
 * receive it. Uses N*C*OH*OW int32 of the context's scratch buffer (the
 * index of each window's maximum), grown if needed and kept by the context. */
CLNET_API clnet_status clnet_pool2d_max_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *x, const clnet_tensor *dy,
                                                 clnet_tensor *dx);

/* The training forward: y as clnet_pool2d_max_forward, and idx (N, C, OH,
 * OW) int32 = the plane index (row * W + column) of each window's first
 * maximum, as clnet_pool2d_max_backward chooses it, so that the backward
 * need not scan x again. idx must not overlap x. */
CLNET_API clnet_status clnet_pool2d_max_forward_indices(const clnet_pool2d_params *params,
                                                        const clnet_tensor *x, clnet_tensor *y,
                                                        clnet_tensor *idx);

/* dx (N, C, H, W) from the indices idx (N, C, OH, OW) int32 of
 * clnet_pool2d_max_forward_indices and dy (N, C, OH, OW): the same result as
 * clnet_pool2d_max_backward on the x that produced idx, bit for bit. Each
 * dx element receives the dy of the windows whose index names it. Indices
 * that clnet_pool2d_max_forward_indices did not produce give unspecified dx
 * values, never an out-of-bounds access. dx is overwritten and must not overlap idx or dy. No
 * scratch memory. */
CLNET_API clnet_status clnet_pool2d_max_backward_indices(const clnet_pool2d_params *params,
                                                         const clnet_tensor *idx,
                                                         const clnet_tensor *dy, clnet_tensor *dx);

/* y (N, C, OH, OW) = the float32 sum of each window's input elements, in
 * scan order, divided by the window's divisor (see count_include_pad).
 * NaN policy: IEEE arithmetic; a NaN in the window, or +Inf with -Inf, gives
 * NaN; an Inf gives Inf; sums may overflow to Inf near FLT_MAX. */
CLNET_API clnet_status clnet_pool2d_avg_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y);

/* dx (N, C, H, W) from dy (N, C, OH, OW): each element sums dy / divisor
 * over the windows that contain it, in row-major window order; 0 where no
 * window reaches. dx is overwritten. NaN policy: IEEE arithmetic, as above. */
CLNET_API clnet_status clnet_pool2d_avg_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *dy, clnet_tensor *dx);

/* y (N, C, H*scale_h, W*scale_w): y[n, c, i, j] = x[n, c, i/scale_h,
 * j/scale_w] (nearest neighbour, integer scales >= 1). An exact copy: NaN,
 * Inf and -0 pass through unchanged. */
CLNET_API clnet_status clnet_upsample2d_nearest_forward(int scale_h, int scale_w,
                                                        const clnet_tensor *x, clnet_tensor *y);

/* dx (N, C, H, W) from dy (N, C, H*scale_h, W*scale_w): each element is the
 * float32 sum of dy over its scale_h x scale_w block, row-major. dx is
 * overwritten and must not overlap dy. NaN policy: IEEE arithmetic. */
CLNET_API clnet_status clnet_upsample2d_nearest_backward(int scale_h, int scale_w,
                                                         const clnet_tensor *dy, clnet_tensor *dx);

#ifdef __cplusplus
}
#endif
#endif
