/* clnet — 2-D convolution geometry, no device involved: the output shapes
 * of the convolution and the transposed convolution, and the "same" and
 * "valid" padding helpers (include/clnet/conv.h). */
#include <limits.h>

#include "clnet/conv.h"
#include "runtime/checked.h"

/* The params checks of src/ops/conv.c, without a message. */
static int params_ok(const clnet_conv2d_params *p, int transpose)
{
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 ||
        p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return 0;
    return !transpose || (p->output_pad_h >= 0 && p->output_pad_h < p->stride_h &&
                          p->output_pad_w >= 0 && p->output_pad_w < p->stride_w);
}

/* Output size along one axis, or -1 when the dilated kernel does not fit.
 * Every step is checked: pads near INT_MAX or sizes near INT64_MAX set
 * *overflow instead of wrapping. */
static int64_t conv_out(int64_t in, int64_t pads, int64_t k, int64_t stride, int64_t dil,
                        int *overflow)
{
    int64_t extent = clnet__add_i64(clnet__mul_i64(dil, k - 1, overflow), 1, overflow);
    int64_t room = clnet__sub_i64(clnet__add_i64(in, pads, overflow), extent, overflow);
    return room < 0 ? -1 : room / stride + 1;
}

/* Input size along one axis of the transposed convolution's output. */
static int64_t transpose_out(int64_t in, int64_t pads, int64_t k, int64_t stride, int64_t dil,
                             int64_t opad, int *overflow)
{
    int64_t span = clnet__mul_i64(in - 1, stride, overflow);
    int64_t extent = clnet__add_i64(clnet__mul_i64(dil, k - 1, overflow), 1, overflow);
    int64_t y = clnet__sub_i64(span, pads, overflow);
    return clnet__add_i64(clnet__add_i64(y, extent, overflow), opad, overflow);
}

/* The output shape y of a convolution of x (N, C, H, W) with w (K, C, R, S),
 * or with transpose, of the transposed convolution of x (N, K, H_in, W_in).
 * Returns 0, or which check failed: 1 channels, 2 the kernel is empty or
 * larger than the padded input, 3 the transposed output would be empty, 4 a
 * size overflows int64. */
static int derive_shape(const clnet_conv2d_params *p, int transpose, const int64_t *x,
                        const int64_t *w, int64_t *y)
{
    if (x[1] != (transpose ? w[0] : w[1]))
        return 1;
    if (w[2] < 1 || w[3] < 1)
        return 2;
    int overflow = 0;
    int64_t ph = (int64_t)p->pad_top + p->pad_bottom, pw = (int64_t)p->pad_left + p->pad_right;
    if (!transpose) {
        y[0] = x[0];
        y[1] = w[0];
        y[2] = conv_out(x[2], ph, w[2], p->stride_h, p->dilation_h, &overflow);
        y[3] = conv_out(x[3], pw, w[3], p->stride_w, p->dilation_w, &overflow);
        return overflow ? 4 : y[2] < 0 || y[3] < 0 ? 2 : 0;
    }
    if (x[2] < 1 || x[3] < 1)
        return 3;
    y[0] = x[0];
    y[1] = w[1];
    y[2] = transpose_out(x[2], ph, w[2], p->stride_h, p->dilation_h, p->output_pad_h, &overflow);
    y[3] = transpose_out(x[3], pw, w[3], p->stride_w, p->dilation_w, p->output_pad_w, &overflow);
    return overflow ? 4 : y[2] < 1 || y[3] < 1 ? 3 : 0;
}

static int shapes_ok(const int64_t *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < 0)
            return 0;
    return 1;
}

CLNET_API clnet_status clnet_conv2d_output_shape(const clnet_conv2d_params *p,
                                                 const int64_t x_shape[4], const int64_t w_shape[4],
                                                 int64_t y_shape[4])
{
    if (!p || !x_shape || !w_shape || !y_shape || !params_ok(p, 0))
        return CLNET_ERR_INVALID_ARG;
    if (!shapes_ok(x_shape, 4) || !shapes_ok(w_shape, 4))
        return CLNET_ERR_SHAPE;
    int64_t y[4];
    int why = derive_shape(p, 0, x_shape, w_shape, y);
    if (why)
        return why == 4 ? CLNET_ERR_TOO_LARGE : CLNET_ERR_SHAPE;
    for (int i = 0; i < 4; i++)
        y_shape[i] = y[i];
    return CLNET_OK;
}

CLNET_API clnet_status clnet_conv2d_transpose_output_shape(const clnet_conv2d_params *p,
                                                           const int64_t x_shape[4],
                                                           const int64_t w_shape[4],
                                                           int64_t y_shape[4])
{
    if (!p || !x_shape || !w_shape || !y_shape || !params_ok(p, 1))
        return CLNET_ERR_INVALID_ARG;
    if (!shapes_ok(x_shape, 4) || !shapes_ok(w_shape, 4))
        return CLNET_ERR_SHAPE;
    int64_t y[4];
    int why = derive_shape(p, 1, x_shape, w_shape, y);
    if (why)
        return why == 4 ? CLNET_ERR_TOO_LARGE : CLNET_ERR_SHAPE;
    for (int i = 0; i < 4; i++)
        y_shape[i] = y[i];
    return CLNET_OK;
}

/* TensorFlow's "same" padding along one axis. */
static void same_pad(int64_t in, int64_t k, int stride, int dil, int *before, int *after)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + (k - 1) * dil + 1 - in;
    if (total < 0)
        total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
}

/* Checks the arguments of the padding helpers; the padding they yield is at
 * most (k - 1) * dilation, so in and k are capped to keep it an int. */
static int same_args_ok(const clnet_conv2d_params *p, int64_t in_h, int64_t in_w, int64_t r,
                        int64_t s)
{
    return p && p->stride_h >= 1 && p->stride_w >= 1 && p->dilation_h >= 1 && p->dilation_w >= 1 &&
           in_h >= 1 && in_w >= 1 && in_h <= INT_MAX && in_w <= INT_MAX && r >= 1 && s >= 1 &&
           (r - 1) * p->dilation_h < INT_MAX && (s - 1) * p->dilation_w < INT_MAX;
}

CLNET_API clnet_status clnet_conv2d_params_set_same(clnet_conv2d_params *p, int64_t in_h,
                                                    int64_t in_w, int64_t r, int64_t s)
{
    if (!same_args_ok(p, in_h, in_w, r, s))
        return CLNET_ERR_INVALID_ARG;
    same_pad(in_h, r, p->stride_h, p->dilation_h, &p->pad_top, &p->pad_bottom);
    same_pad(in_w, s, p->stride_w, p->dilation_w, &p->pad_left, &p->pad_right);
    p->output_pad_h = p->output_pad_w = 0;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_conv2d_params_set_valid(clnet_conv2d_params *p)
{
    if (!p)
        return CLNET_ERR_INVALID_ARG;
    p->pad_top = p->pad_bottom = p->pad_left = p->pad_right = 0;
    p->output_pad_h = p->output_pad_w = 0;
    return CLNET_OK;
}

/* The output padding that makes a transposed "same" convolution give
 * in * stride outputs: needed only when the kernel is shorter than the stride. */
static int same_output_pad(int64_t k, int stride, int dil)
{
    int64_t extent = (k - 1) * dil + 1;
    return extent < stride ? (int)(stride - extent) : 0;
}

CLNET_API clnet_status clnet_conv2d_transpose_params_set_same(clnet_conv2d_params *p, int64_t in_h,
                                                              int64_t in_w, int64_t r, int64_t s)
{
    if (!same_args_ok(p, in_h, in_w, r, s) || in_h > INT_MAX / p->stride_h ||
        in_w > INT_MAX / p->stride_w)
        return CLNET_ERR_INVALID_ARG;
    same_pad(in_h * p->stride_h, r, p->stride_h, p->dilation_h, &p->pad_top, &p->pad_bottom);
    same_pad(in_w * p->stride_w, s, p->stride_w, p->dilation_w, &p->pad_left, &p->pad_right);
    p->output_pad_h = same_output_pad(r, p->stride_h, p->dilation_h);
    p->output_pad_w = same_output_pad(s, p->stride_w, p->dilation_w);
    return CLNET_OK;
}
