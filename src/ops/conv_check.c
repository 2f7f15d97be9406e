/* clnet — the argument checks of the dense and grouped convolutions
 * (src/ops/conv_impl.h), on top of the op layer's table checks. */
#include <limits.h>

#include "ops/conv_impl.h"

const clnet__tspec clnet__conv_forward_spec[4] = {
    { .name = "x", .rank = 4 },
    { .name = "w", .rank = 4 },
    { .name = "b", .flags = CLNET_T_OPTIONAL, .rank = 1 },
    { .name = "y", .flags = CLNET_T_OUT, .rank = 4 },
};
const clnet__tspec clnet__conv_backward_data_spec[3] = {
    { .name = "w", .rank = 4 },
    { .name = "dy", .rank = 4 },
    { .name = "dx", .flags = CLNET_T_OUT, .rank = 4 },
};
const clnet__tspec clnet__conv_backward_filter_spec[3] = {
    { .name = "x", .rank = 4 },
    { .name = "dy", .rank = 4 },
    { .name = "dw", .flags = CLNET_T_OUT, .rank = 4 },
};
const clnet__conv_roles clnet__conv_forward_roles = { .x = 0, .w = 1, .y = 3, .b = 2 };
const clnet__conv_roles clnet__conv_backward_data_roles = { .x = 2, .w = 0, .y = 1, .b = -1 };
const clnet__conv_roles clnet__conv_backward_filter_roles = { .x = 0, .w = 2, .y = 1, .b = -1 };

clnet_status clnet__conv_check_dims(const clnet__op *op)
{
    for (int i = 0; i < op->count; i++) {
        const clnet_tensor *t = op->t[i];
        for (int d = 0; t && d < t->ndim; d++)
            if (t->shape[d] > INT_MAX)
                return clnet__op_fail(op, CLNET_ERR_TOO_LARGE, "%s: has a dimension over %d",
                                      op->spec[i].name, INT_MAX);
    }
    return CLNET_OK;
}

clnet_status clnet__conv_check_params(const clnet__op *op, const clnet_conv2d_params *p,
                                      int transpose)
{
    if (!p)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "params: must not be NULL");
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "params: stride %dx%d and dilation %dx%d must be >= 1", p->stride_h,
                              p->stride_w, p->dilation_h, p->dilation_w);
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "params: negative padding (top %d, bottom %d, left %d, right %d)",
                              p->pad_top, p->pad_bottom, p->pad_left, p->pad_right);
    if (transpose && (p->output_pad_h < 0 || p->output_pad_h >= p->stride_h ||
                      p->output_pad_w < 0 || p->output_pad_w >= p->stride_w))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "params: output_pad %dx%d must lie in [0, stride %dx%d)",
                              p->output_pad_h, p->output_pad_w, p->stride_h, p->stride_w);
    return CLNET_OK;
}

clnet_status clnet__conv_check_channels(const clnet__op *op, clnet__conv_roles r, int groups,
                                        int transpose)
{
    /* The tensor whose channels w must match: the input of the call. */
    int src = transpose ? r.y : r.x;
    const clnet_tensor *s = op->t[src], *w = op->t[r.w];
    int64_t have = transpose ? w->shape[0] : w->shape[1] * groups;
    if (s->shape[1] == have)
        return CLNET_OK;
    char ss[96], ws[96];
    clnet__tensor_shape_str(s, ss, sizeof ss);
    clnet__tensor_shape_str(w, ws, sizeof ws);
    return clnet__op_fail(
        op, CLNET_ERR_SHAPE, "%s: shape %s: channels differ from %s %s (%s is K x C%s x R x S%s)",
        op->spec[r.w].name, ws, op->spec[src].name, ss, op->spec[r.w].name,
        groups > 1 ? "/groups" : "", transpose ? ", K the input channels of the transpose" : "");
}

clnet_status clnet__conv_check_extent(const clnet__op *op, const clnet_conv2d_params *p,
                                      clnet__conv_roles r)
{
    const int64_t *xs = op->t[r.x]->shape, *ws = op->t[r.w]->shape, *ys = op->t[r.y]->shape;
    /* Kernels index planes and filters with int (each factor is <= INT_MAX,
     * so no product of two overflows, and || stops before a third would). */
    if (xs[2] + p->pad_top + p->pad_bottom <= INT_MAX &&
        xs[3] + p->pad_left + p->pad_right <= INT_MAX && xs[2] * xs[3] <= INT_MAX &&
        ys[2] * ys[3] <= INT_MAX && ws[2] * ws[3] <= INT_MAX && ws[1] * ws[2] * ws[3] <= INT_MAX &&
        ws[0] * ws[2] * ws[3] <= INT_MAX)
        return CLNET_OK;
    char xb[96], wb[96];
    return clnet__op_fail(op, CLNET_ERR_TOO_LARGE,
                          "an image plane, padded side or filter of %s %s, %s %s has over %d "
                          "elements",
                          op->spec[r.x].name, clnet__tensor_shape_str(op->t[r.x], xb, sizeof xb),
                          op->spec[r.w].name, clnet__tensor_shape_str(op->t[r.w], wb, sizeof wb),
                          INT_MAX);
}

clnet_status clnet__conv_fail_empty(const clnet__op *op, const clnet_conv2d_params *p,
                                    clnet__conv_roles r)
{
    char xb[96], wb[96];
    return clnet__op_fail(
        op, CLNET_ERR_SHAPE,
        "%s: the kernel %s (dilation %dx%d) is empty or larger than %s %s with padding %d+%d x "
        "%d+%d",
        op->spec[r.w].name, clnet__tensor_shape_str(op->t[r.w], wb, sizeof wb), p->dilation_h,
        p->dilation_w, op->spec[r.x].name, clnet__tensor_shape_str(op->t[r.x], xb, sizeof xb),
        p->pad_top, p->pad_bottom, p->pad_left, p->pad_right);
}
