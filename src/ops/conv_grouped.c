/* clnet — grouped and depthwise 2-D convolution, NCHW float32
 * (cl/conv_grouped.cl): argument checks, the output shape, and the three
 * directions; groups == 1 goes to the ordinary convolution (src/ops/conv.c). */
#include <limits.h>

#include "clnet/act.h"
#include "clnet/conv_grouped.h"
#include "conv_impl.h"
#include "tensor/tensor_impl.h"

/* Implementations, chosen per call and passed through
 * clnet__variant(ctx, "conv2d_grouped.<direction>", v) so that tests can
 * force each. VAR_DENSE applies to groups == 1 only; forced elsewhere it
 * falls back to VAR_DIRECT. */
enum {
    VAR_DIRECT = 0, /* cl/conv_grouped.cl: one work-item per output element */
    VAR_DENSE = 1   /* groups == 1: clnet_conv2d_* of clnet/conv.h */
};

/* The geometry from x (n, c, h, w) to y (n, k, oh, ow) in g groups. */
typedef struct ggeom {
    int n, c, h, w, k, g, r, s, oh, ow;
    int sh, sw, pt, pl, dh, dw;
} ggeom;

/* ---- Output shape (no context) ------------------------------------------ */

CLNET_API clnet_status clnet_conv2d_grouped_output_shape(const clnet_conv2d_params *p, int groups,
                                                         const int64_t x_shape[4],
                                                         const int64_t w_shape[4],
                                                         int64_t y_shape[4])
{
    if (!p || !x_shape || !w_shape || !y_shape || groups < 1)
        return CLNET_ERR_INVALID_ARG;
    for (int i = 0; i < 4; i++)
        if (x_shape[i] < 0 || w_shape[i] < 0)
            return CLNET_ERR_SHAPE;
    if (x_shape[1] % groups || w_shape[0] % groups || x_shape[1] / groups != w_shape[1])
        return CLNET_ERR_SHAPE;
    /* The dense filter shape with the same output: (K, C, R, S). */
    const int64_t dense[4] = { w_shape[0], x_shape[1], w_shape[2], w_shape[3] };
    return clnet_conv2d_output_shape(p, x_shape, dense, y_shape);
}

/* ---- Argument checks ------------------------------------------------------ */

static clnet_status check_params(clnet_context *ctx, const char *func, const clnet_conv2d_params *p,
                                 int groups)
{
    if (!p)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: params is NULL",
                            func);
    if (groups < 1)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: groups is %d, must be >= 1", func, groups);
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: stride %dx%d and dilation %dx%d must be >= 1",
                            func, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w);
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: negative padding (top %d, bottom %d, left %d, "
                            "right %d)",
                            func, p->pad_top, p->pad_bottom, p->pad_left, p->pad_right);
    return CLNET_OK;
}

/* Checks the three tensors of one call and fills g: xt (N, C, H, W), wt
 * (K, C/groups, R, S), yt (N, K, OH, OW) in convolution terms, whatever
 * their role in the call (xn, wn, yn name them); yt's shape must be the one
 * derived from xt, wt, p and groups. */
static clnet_status geometry(clnet_context *ctx, const char *func, const clnet_conv2d_params *p,
                             int groups, const clnet_tensor *xt, const char *xn,
                             const clnet_tensor *wt, const char *wn, const clnet_tensor *yt,
                             const char *yn, ggeom *g)
{
    clnet_status st;
    if ((st = clnet__conv_check_tensor(ctx, func, xt, xn, 4)) ||
        (st = clnet__conv_check_tensor(ctx, func, wt, wn, 4)) ||
        (st = clnet__conv_check_tensor(ctx, func, yt, yn, 4)) ||
        (st = check_params(ctx, func, p, groups)))
        return st;
    const int64_t *xs = xt->shape, *ws = wt->shape, *ys = yt->shape;
    char xb[96], wb[96], yb[96], eb[96];
    clnet__tensor_shape_str(xt, xb, sizeof xb);
    clnet__tensor_shape_str(wt, wb, sizeof wb);
    clnet__tensor_shape_str(yt, yb, sizeof yb);
    if (xs[1] % groups || ws[0] % groups)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: groups (%d) must divide the channels of %s (%s) and the filters "
                            "of %s (%s)",
                            func, groups, xn, xb, wn, wb);
    if (xs[1] / groups != ws[1])
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s is %s but %s is %s: %s must be K x C/groups x R x S (C/groups "
                            "= %lld)",
                            func, xn, xb, wn, wb, wn, (long long)(xs[1] / groups));
    int64_t want[4];
    if (clnet_conv2d_grouped_output_shape(p, groups, xs, ws, want))
        return clnet__error(
            ctx, CLNET_ERR_SHAPE,
            "%s: the kernel of %s (%s, dilation %dx%d) is empty or larger than %s %s with "
            "padding %d+%d x %d+%d",
            func, wn, wb, p->dilation_h, p->dilation_w, xn, xb, p->pad_top, p->pad_bottom,
            p->pad_left, p->pad_right);
    if (want[0] != ys[0] || want[1] != ys[1] || want[2] != ys[2] || want[3] != ys[3])
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s for %s %s and %s %s",
                            func, yn, yb, clnet__shape_str(4, want, eb, sizeof eb), xn, xb, wn, wb);
    /* Kernels index planes and filters with int (each factor is <= INT_MAX,
     * so no product of two overflows, and || stops before a third would). */
    if (xs[2] + p->pad_top + p->pad_bottom > INT_MAX ||
        xs[3] + p->pad_left + p->pad_right > INT_MAX || xs[2] * xs[3] > INT_MAX ||
        ys[2] * ys[3] > INT_MAX || ws[2] * ws[3] > INT_MAX || ws[1] * ws[2] * ws[3] > INT_MAX)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: an image plane, padded side or filter of %s %s, %s %s has over %d "
                            "elements",
                            func, xn, xb, wn, wb, INT_MAX);
    *g = (ggeom){ (int)xs[0], (int)xs[1],  (int)xs[2],    (int)xs[3],   (int)ws[0],  groups,
                  (int)ws[2], (int)ws[3],  (int)ys[2],    (int)ys[3],   p->stride_h, p->stride_w,
                  p->pad_top, p->pad_left, p->dilation_h, p->dilation_w };
    return CLNET_OK;
}

static clnet_status check_bias(clnet_context *ctx, const char *func, const clnet_tensor *b, int k)
{
    clnet_status st = clnet__conv_check_tensor(ctx, func, b, "b", 1);
    if (st)
        return st;
    if (b->shape[0] != k)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: b is %lld, expected %d (one per output channel)", func,
                            (long long)b->shape[0], k);
    return CLNET_OK;
}

/* The context of the first non-NULL tensor, or NULL. */
static clnet_context *ctx_of(const clnet_tensor *a, const clnet_tensor *b, const clnet_tensor *c)
{
    return a ? a->ctx : b ? b->ctx : c ? c->ctx : NULL;
}

/* ---- Launches ------------------------------------------------------------- */

/* The geometry arguments of every kernel (GGEOM in cl/conv_grouped.cl). */
#define NGEOM 16
static void geom_args(const ggeom *g, clnet__arg *a)
{
    const int v[NGEOM] = { g->n,  g->c,  g->h,  g->w,  g->k,  g->g,  g->r,  g->s,
                           g->oh, g->ow, g->sh, g->sw, g->pt, g->pl, g->dh, g->dw };
    for (int i = 0; i < NGEOM; i++)
        a[i] = CLNET_ARG_INT(v[i]);
}

static clnet_status launch(clnet_context *ctx, const char *func, const char *name, int nargs,
                           const clnet__arg *a, size_t items)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "conv_grouped", NULL, name, &k);
    return st ? st : clnet__launch1d(ctx, k, func, nargs, a, items);
}

static int variant(clnet_context *ctx, const char *op, int groups)
{
    int v = clnet__variant(ctx, op, groups == 1 ? VAR_DENSE : VAR_DIRECT);
    return v == VAR_DENSE && groups == 1 ? VAR_DENSE : VAR_DIRECT;
}

/* ---- The three directions ------------------------------------------------- */

CLNET_API clnet_status clnet_conv2d_grouped_forward(const clnet_conv2d_params *p, int groups,
                                                    const clnet_tensor *x, const clnet_tensor *w,
                                                    const clnet_tensor *b, clnet_tensor *y)
{
    const char *func = __func__;
    clnet_context *ctx = ctx_of(y, x, w);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    ggeom g;
    clnet_status st = geometry(ctx, func, p, groups, x, "x", w, "w", y, "y", &g);
    if (st || (b && (st = check_bias(ctx, func, b, g.k))) ||
        (st = clnet__check_overlap(ctx, func, y, "y", x, "x", 0)) ||
        (st = clnet__check_overlap(ctx, func, y, "y", w, "w", 0)) ||
        (st = clnet__check_overlap(ctx, func, y, "y", b, "b", 0)))
        return st;
    if (y->numel == 0)
        return CLNET_OK;
    if (variant(ctx, "conv2d_grouped.forward", groups) == VAR_DENSE)
        return clnet_conv2d_forward(p, x, w, b, y);
    if (x->numel == 0 || w->numel == 0) {
        /* An empty reduction: zeros plus the bias. */
        if ((st = clnet_tensor_fill(y, 0.0)) || !b)
            return st;
        return clnet_bias_add(y, b, y);
    }
    clnet__arg a[9 + NGEOM] = { CLNET_ARG_MEM(clnet__mem(y)),
                                CLNET_ARG_ULONG(y->offset),
                                CLNET_ARG_MEM(clnet__mem(x)),
                                CLNET_ARG_ULONG(x->offset),
                                CLNET_ARG_MEM(clnet__mem(w)),
                                CLNET_ARG_ULONG(w->offset),
                                CLNET_ARG_MEM(clnet__mem(b ? b : w)),
                                CLNET_ARG_ULONG(b ? b->offset : 0),
                                CLNET_ARG_INT(b != NULL) };
    geom_args(&g, a + 9);
    return launch(ctx, func, "conv_grouped_forward", 9 + NGEOM, a, y->numel);
}

CLNET_API clnet_status clnet_conv2d_grouped_backward_data(const clnet_conv2d_params *p, int groups,
                                                          const clnet_tensor *w,
                                                          const clnet_tensor *dy, clnet_tensor *dx)
{
    const char *func = __func__;
    clnet_context *ctx = ctx_of(dx, w, dy);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    ggeom g;
    clnet_status st = geometry(ctx, func, p, groups, dx, "dx", w, "w", dy, "dy", &g);
    if (st || (st = clnet__check_overlap(ctx, func, dx, "dx", dy, "dy", 0)) ||
        (st = clnet__check_overlap(ctx, func, dx, "dx", w, "w", 0)))
        return st;
    if (dx->numel == 0)
        return CLNET_OK;
    if (variant(ctx, "conv2d_grouped.backward_data", groups) == VAR_DENSE)
        return clnet_conv2d_backward_data(p, w, dy, dx);
    if (dy->numel == 0 || w->numel == 0)
        return clnet_tensor_fill(dx, 0.0);
    clnet__arg a[6 + NGEOM] = { CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
                                CLNET_ARG_MEM(clnet__mem(w)),  CLNET_ARG_ULONG(w->offset),
                                CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset) };
    geom_args(&g, a + 6);
    return launch(ctx, func, "conv_grouped_backward_data", 6 + NGEOM, a, dx->numel);
}

CLNET_API clnet_status clnet_conv2d_grouped_backward_filter(const clnet_conv2d_params *p,
                                                            int groups, const clnet_tensor *x,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dw)
{
    const char *func = __func__;
    clnet_context *ctx = ctx_of(dw, x, dy);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    ggeom g;
    clnet_status st = geometry(ctx, func, p, groups, x, "x", dw, "dw", dy, "dy", &g);
    if (st || (st = clnet__check_overlap(ctx, func, dw, "dw", x, "x", 0)) ||
        (st = clnet__check_overlap(ctx, func, dw, "dw", dy, "dy", 0)))
        return st;
    if (dw->numel == 0)
        return CLNET_OK;
    if (variant(ctx, "conv2d_grouped.backward_filter", groups) == VAR_DENSE)
        return clnet_conv2d_backward_filter(p, x, dy, dw);
    if (x->numel == 0 || dy->numel == 0)
        return clnet_tensor_fill(dw, 0.0);
    clnet__arg a[6 + NGEOM] = { CLNET_ARG_MEM(clnet__mem(dw)), CLNET_ARG_ULONG(dw->offset),
                                CLNET_ARG_MEM(clnet__mem(x)),  CLNET_ARG_ULONG(x->offset),
                                CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset) };
    geom_args(&g, a + 6);
    return launch(ctx, func, "conv_grouped_backward_filter", 6 + NGEOM, a, dw->numel);
}
