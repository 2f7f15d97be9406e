/* clnet — the argument checks that src/ops/conv.c shares with the grouped
 * convolution (src/ops/conv_grouped.c), on the op layer (src/ops/op.h). */
#ifndef CLNET_OPS_CONV_IMPL_H
#define CLNET_OPS_CONV_IMPL_H

#include "clnet/conv.h"
#include "ops/op.h"

/* The places of a call's tensors in an op's table, in convolution terms:
 * x (N, C, H, W), w (K, C/groups, R, S), y (N, K, OH, OW), whatever their
 * role in the call (the transposed convolution's input plays y); b is the
 * optional bias (-1: none in this call). */
typedef struct clnet__conv_roles {
    int x, w, y, b;
} clnet__conv_roles;

/* The tables of the dense and grouped convolutions' three directions
 * (the transposed convolution's too, in other roles): every tensor 4-D
 * float32, the bias 1-D and optional, each output overlapping nothing else
 * of the call. forward: x, w, b, y; backward_data: w, dy, dx;
 * backward_filter: x, dy, dw. */
extern const clnet__tspec clnet__conv_forward_spec[4];
extern const clnet__tspec clnet__conv_backward_data_spec[3];
extern const clnet__tspec clnet__conv_backward_filter_spec[3];
/* Their convolution roles. */
extern const clnet__conv_roles clnet__conv_forward_roles, clnet__conv_backward_data_roles,
    clnet__conv_backward_filter_roles;

/* Every dimension of every tensor of op is at most INT_MAX (the kernels'
 * int arithmetic): else CLNET_ERR_TOO_LARGE naming the tensor. */
clnet_status clnet__conv_check_dims(const clnet__op *op);

/* p is non-NULL with strides and dilations >= 1, padding >= 0 and, for a
 * transposed convolution, output padding in [0, stride): else
 * CLNET_ERR_INVALID_ARG. */
clnet_status clnet__conv_check_params(const clnet__op *op, const clnet_conv2d_params *p,
                                      int transpose);

/* w's input channels (dim 1) times groups equal x's channels (dim 1; for
 * transpose, y's are w's dim 0): else CLNET_ERR_SHAPE naming w. */
clnet_status clnet__conv_check_channels(const clnet__op *op, clnet__conv_roles r, int groups,
                                        int transpose);

/* The planes, padded sides and filters of a checked geometry fit the
 * kernels' int indices: else CLNET_ERR_TOO_LARGE. */
clnet_status clnet__conv_check_extent(const clnet__op *op, const clnet_conv2d_params *p,
                                      clnet__conv_roles r);

/* The message for an output shape that the parameters cannot give: the
 * kernel (dilated) is empty or larger than the padded input. */
clnet_status clnet__conv_fail_empty(const clnet__op *op, const clnet_conv2d_params *p,
                                    clnet__conv_roles r);

#endif
