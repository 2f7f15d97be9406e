/* clnet — 2-D convolution (cross-correlation) of NCHW float32 tensors:
 * forward, backward to data, filter and bias, and the transposed
 * convolution ("deconvolution") with its backward passes.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). The ops here need their params: a
 * NULL params pointer is CLNET_ERR_INVALID_ARG. */
#ifndef CLNET_CONV_H
#define CLNET_CONV_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The geometry of a convolution; a plain value, copy it freely. Padding is
 * zero padding and may be asymmetric. Output size along each axis:
 *
 *   out = (in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride + 1
 *
 * (floor division). output_pad_h/w are used only by the transposed
 * convolution (see below) and ignored by the plain one. */
typedef struct clnet_conv2d_params {
    int stride_h, stride_w;         /* >= 1 */
    int pad_top, pad_bottom;        /* >= 0 */
    int pad_left, pad_right;        /* >= 0 */
    int dilation_h, dilation_w;     /* >= 1; 1 is an ordinary kernel */
    int output_pad_h, output_pad_w; /* transpose only: 0 <= output_pad < stride */
} clnet_conv2d_params;

/* Stride 1, no padding, dilation 1, no output padding. */
#define CLNET_CONV2D_PARAMS_INIT                                                                   \
    {                                                                                              \
        .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1                             \
    }
#define CLNET_CONV2D_PARAMS_DEFAULT ((clnet_conv2d_params)CLNET_CONV2D_PARAMS_INIT)

/* Sets p's padding to TensorFlow/Keras "same" for an in_h x in_w input and an
 * r x s kernel, with p's stride and dilation (which must be >= 1): per axis,
 * total = max((ceil(in / stride) - 1) * stride + (k - 1) * dilation + 1 - in, 0),
 * pad_top = total / 2, pad_bottom = total - pad_top (the extra row, if any, at
 * the bottom; likewise left/right). The output is then ceil(in / stride).
 * Sets output_pad to 0. CLNET_ERR_INVALID_ARG for a NULL p, a stride or
 * dilation < 1, in < 1 or a kernel < 1 (p is then unchanged). */
CLNET_API clnet_status clnet_conv2d_params_set_same(clnet_conv2d_params *p, int64_t in_h,
                                                    int64_t in_w, int64_t r, int64_t s);
/* Sets p's padding and output padding to zero ("valid"). NULL p:
 * CLNET_ERR_INVALID_ARG. */
CLNET_API clnet_status clnet_conv2d_params_set_valid(clnet_conv2d_params *p);
/* Sets p's padding and output padding so that a transposed convolution of an
 * in_h x in_w input with an r x s kernel gives in * stride outputs per axis, as
 * Keras' Conv2DTranspose(padding="same"): the "same" padding of the
 * convolution from in * stride to in, plus output_pad = max(0, stride -
 * (r - 1) * dilation - 1) where that padding would be negative. Same errors as
 * clnet_conv2d_params_set_same. */
CLNET_API clnet_status clnet_conv2d_transpose_params_set_same(clnet_conv2d_params *p, int64_t in_h,
                                                              int64_t in_w, int64_t r, int64_t s);

/* The output shape (n, k, oh, ow) of the convolution of x (n, c, h, w) with
 * w (k, c, r, s). CLNET_ERR_INVALID_ARG for NULL pointers or bad params (a
 * stride or dilation < 1, a negative padding); CLNET_ERR_SHAPE when the
 * channels differ, a dimension is negative, the kernel is empty or larger
 * than the padded input; CLNET_ERR_TOO_LARGE when a size overflows int64
 * (pads near INT_MAX, sizes near INT64_MAX). No context is involved, so there is no message;
 * the operations below report the same checks with one. */
CLNET_API clnet_status clnet_conv2d_output_shape(const clnet_conv2d_params *p,
                                                 const int64_t x_shape[4], const int64_t w_shape[4],
                                                 int64_t y_shape[4]);

/* ---- Convolution ---------------------------------------------------------
 *
 * x (N, C, H, W) input, w (K, C, R, S) filters, b (K) bias, y (N, K, OH, OW):
 *
 *   y[n,k,i,j] = b[k] + sum over c, u, v of
 *                w[k,c,u,v] * x[n, c, i*stride_h - pad_top + u*dilation_h,
 *                                  j*stride_w - pad_left + v*dilation_w]
 *
 * with x taken as 0 outside the image. No groups. All tensors are float32 and
 * contiguous, of one context; every shape must be exactly the one implied by
 * the others and p (CLNET_ERR_SHAPE, the message names the argument and both
 * shapes). Tensors are borrowed: nothing is retained after the call. Outputs
 * are overwritten (never accumulated) and must not overlap any input. An
 * empty output (a zero dimension) launches nothing; an empty reduction
 * (C == 0, H == 0, N == 0 for the filter gradient) writes zeros (plus the
 * bias). Work is queued; nothing waits.
 *
 * Summation order is fixed by the shape and the device: the same inputs give
 * the same bits on every run (no atomics). Accuracy: each output is a float32
 * sum of C*R*S products (N*OH*OW for the filter gradient), within
 * 2 * terms * 2^-24 * sum |products| of the exact value.
 *
 * NaN policy: NaN and Inf propagate per IEEE through the sums: an output is
 * NaN or +-Inf whenever a product it sums is (as in a float64 evaluation of
 * the formula). Beyond that, a non-finite weight (or, for the filter
 * gradient, a non-finite dy) may turn outputs whose window reaches into the
 * zero padding into NaN: the implementations multiply the padded zeros in
 * (0 * Inf). -0, denormals and FLT_MAX are ordinary values; float32 sums may
 * overflow to Inf where a float64 one would not.
 *
 * Memory: temporaries come from the context's workspace; batches too large
 * for it run in chunks of images. No kernel is built per shape (which
 * implementation runs for which shape and device: docs/ops.md, "Convolution
 * on CPUs"). Thread-safety: as the context. */

/* y = conv(x, w) + b. b may be NULL (no bias). */
CLNET_API clnet_status clnet_conv2d_forward(const clnet_conv2d_params *p, const clnet_tensor *x,
                                            const clnet_tensor *w, const clnet_tensor *b,
                                            clnet_tensor *y);
/* dx (N, C, H, W) = the gradient of sum(dy * y) with respect to x, from
 * w (K, C, R, S) and dy (N, K, OH, OW): every x element gets the sum of
 * w * dy over the outputs that read it (0 for elements no output reads). */
CLNET_API clnet_status clnet_conv2d_backward_data(const clnet_conv2d_params *p,
                                                  const clnet_tensor *w, const clnet_tensor *dy,
                                                  clnet_tensor *dx);
/* dw (K, C, R, S) = sum over n, i, j of dy[n,k,i,j] * x[n, c, tap (u, v)],
 * from x (N, C, H, W) and dy (N, K, OH, OW). */
CLNET_API clnet_status clnet_conv2d_backward_filter(const clnet_conv2d_params *p,
                                                    const clnet_tensor *x, const clnet_tensor *dy,
                                                    clnet_tensor *dw);
/* db (C) = sum of dy (N, C, H, W) over n, h and w: the bias gradient of the
 * convolution (C = K of the filters) and of the transposed convolution alike.
 * The sum of clnet_bias_backward (clnet/act.h): two levels in a fixed order,
 * deterministic. */
CLNET_API clnet_status clnet_conv2d_backward_bias(const clnet_tensor *dy, clnet_tensor *db);

/* ---- Transposed convolution ----------------------------------------------
 *
 * The transposed convolution with params p is the data gradient of the
 * convolution with params p: it maps x (N, K, H_in, W_in) to y (N, C, H_out,
 * W_out), where x has that convolution's OUTPUT shape and y its INPUT shape.
 *
 * Weights are laid out as PyTorch's ConvTranspose2d: w (K, C, R, S), i.e.
 * (in_channels of the transpose, out_channels of the transpose, kernel h,
 * kernel w) -- the same array as the (K, C, R, S) filters of the convolution
 * it transposes. b (C), one per output channel of the transpose.
 *
 *   H_out = (H_in - 1) * stride_h - pad_top - pad_bottom
 *           + dilation_h * (R - 1) + 1 + output_pad_h
 *
 * and likewise W_out. output_pad (0 <= output_pad < stride) picks among the
 * input sizes that the convolution maps to the same output size: PyTorch's
 * output_padding with symmetric padding, e.g. 5x5, stride 2, pad 2 and
 * output_pad 1 from 7x7 to 14x14. The same map with Keras' "same" padding
 * (pad_top 1, pad_bottom 2) needs no output_pad:
 * clnet_conv2d_transpose_params_set_same fills that in.
 *
 * Semantics, accuracy, NaN policy, overwrite and aliasing rules are those of
 * the convolution above; each call below runs the named convolution call. */

/* The output shape (n, c, h_out, w_out) of the transposed convolution of
 * x (n, k, h_in, w_in) with w (k, c, r, s). Errors as clnet_conv2d_output_shape
 * (CLNET_ERR_INVALID_ARG also for output_pad outside [0, stride);
 * CLNET_ERR_SHAPE when the output would be empty). */
CLNET_API clnet_status clnet_conv2d_transpose_output_shape(const clnet_conv2d_params *p,
                                                           const int64_t x_shape[4],
                                                           const int64_t w_shape[4],
                                                           int64_t y_shape[4]);
/* y (N, C, H_out, W_out) = clnet_conv2d_backward_data(p, w, dy = x) + b.
 * b (C) may be NULL. */
CLNET_API clnet_status clnet_conv2d_transpose_forward(const clnet_conv2d_params *p,
                                                      const clnet_tensor *x, const clnet_tensor *w,
                                                      const clnet_tensor *b, clnet_tensor *y);
/* dx (N, K, H_in, W_in) = clnet_conv2d_forward(p, x = dy, w, no bias), from
 * dy (N, C, H_out, W_out). */
CLNET_API clnet_status clnet_conv2d_transpose_backward_data(const clnet_conv2d_params *p,
                                                            const clnet_tensor *w,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dx);
/* dw (K, C, R, S) = clnet_conv2d_backward_filter(p, x = dy, dy = x): from the
 * transpose's input x (N, K, H_in, W_in) and dy (N, C, H_out, W_out). The
 * bias gradient is clnet_conv2d_backward_bias(dy, db). */
CLNET_API clnet_status clnet_conv2d_transpose_backward_filter(const clnet_conv2d_params *p,
                                                              const clnet_tensor *x,
                                                              const clnet_tensor *dy,
                                                              clnet_tensor *dw);

#ifdef __cplusplus
}
#endif
#endif
