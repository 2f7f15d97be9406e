/* clnet — what src/ops/conv.c shares with the grouped convolution
 * (src/ops/conv_grouped.c). */
#ifndef CLNET_OPS_CONV_IMPL_H
#define CLNET_OPS_CONV_IMPL_H

#include "runtime/runtime.h"

/* t is a float32 tensor of `ndim` dims in ctx, each dim at most INT_MAX
 * (the kernels' int arithmetic); else an error naming func and name. */
clnet_status clnet__conv_check_tensor(clnet_context *ctx, const char *func, const clnet_tensor *t,
                                      const char *name, int ndim);

#endif
