/* clnet — what src/ops/conv.c shares with its direct implementations
 * (src/ops/conv_direct.c): the geometry, the launch macro, the chunking. */
#ifndef CLNET_OPS_CONV_DIRECT_H
#define CLNET_OPS_CONV_DIRECT_H

#include "ops/op.h"

/* The geometry of the convolution from (n, c, h, w) to (n, k, oh, ow). */
typedef struct geom {
    int n, c, h, w, k, r, s, oh, ow;
    int sh, sw, pt, pb, pl, pr, dh, dw;
} geom;

/* Runs kernel `name` of cl/conv.cl over `items` work-items. */
#define LAUNCH(ctx, func, name, items, ...)                                                        \
    CLNET_RUN1D((ctx), (func), "conv", (name), (items), __VA_ARGS__)

/* Images per chunk when each needs per_image floats of workspace
 * ("conv2d.chunk" forces it). */
size_t clnet__conv_chunk_images(const clnet_context *ctx, size_t per_image, size_t n);

static inline size_t clnet__conv_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* y = conv(x, w) + b by conv_packed, or with wide by conv_wide where it
 * applies, over (a padded copy of) x. */
clnet_status clnet__conv_forward_direct(clnet_context *ctx, const char *func, const geom *g,
                                        const clnet_tensor *x, const clnet_tensor *w,
                                        const clnet_tensor *b, const clnet_tensor *y, int wide);

/* dx (+ b) by stride phases, each through conv_packed (or conv_wide). */
clnet_status clnet__conv_backward_data_direct(clnet_context *ctx, const char *func, const geom *g,
                                              const clnet_tensor *w, const clnet_tensor *dy,
                                              const clnet_tensor *b, const clnet_tensor *dx,
                                              int wide);

/* dw by conv_filter (or conv_filter_wide, stride 1 only). */
clnet_status clnet__conv_backward_filter_direct(clnet_context *ctx, const char *func, const geom *g,
                                                const clnet_tensor *x, const clnet_tensor *dy,
                                                const clnet_tensor *dw, int wide);

#endif
