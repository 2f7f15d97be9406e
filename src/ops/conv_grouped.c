/* clnet — grouped and depthwise 2-D convolution, NCHW float32
 * (cl/conv_grouped.cl): argument checks, the output shape, and the three
 * directions; groups == 1 goes to the ordinary convolution (src/ops/conv.c). */
#include "clnet/act.h"
#include "clnet/conv_grouped.h"
#include "ops/conv_impl.h"
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

/* Checks the geometry of a call whose tensors passed its table and fills g:
 * in convolution roles r (src/ops/conv_impl.h), w is (K, C/groups, R, S)
 * and y's shape must be the one derived from x, w, p and groups. */
static clnet_status geometry(const clnet__op *op, const clnet_conv2d_params *p, int groups,
                             clnet__conv_roles r, ggeom *g)
{
    clnet_status st;
    if ((st = clnet__conv_check_dims(op)) || (st = clnet__conv_check_params(op, p, 0)))
        return st;
    if (groups < 1)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "groups is %d, must be >= 1", groups);
    const int64_t *xs = op->t[r.x]->shape, *ws = op->t[r.w]->shape, *ys = op->t[r.y]->shape;
    if (xs[1] % groups || ws[0] % groups) {
        char xb[96], wb[96];
        return clnet__op_fail(
            op, CLNET_ERR_SHAPE,
            "groups (%d) must divide the channels of %s %s and the filters of "
            "%s %s",
            groups, op->spec[r.x].name, clnet__tensor_shape_str(op->t[r.x], xb, sizeof xb),
            op->spec[r.w].name, clnet__tensor_shape_str(op->t[r.w], wb, sizeof wb));
    }
    if ((st = clnet__conv_check_channels(op, r, groups, 0)))
        return st;
    int64_t want[4];
    if (clnet_conv2d_grouped_output_shape(p, groups, xs, ws, want))
        return clnet__conv_fail_empty(op, p, r);
    if ((st = clnet__op_want_shape(op, r.y, 4, want)) ||
        (st = clnet__conv_check_extent(op, p, r)) ||
        (r.b >= 0 && (st = clnet__op_want_shape(op, r.b, 1, (const int64_t[]){ ws[0] }))))
        return st;
    *g = (ggeom){ (int)xs[0], (int)xs[1],  (int)xs[2],    (int)xs[3],   (int)ws[0],  groups,
                  (int)ws[2], (int)ws[3],  (int)ys[2],    (int)ys[3],   p->stride_h, p->stride_w,
                  p->pad_top, p->pad_left, p->dilation_h, p->dilation_w };
    return CLNET_OK;
}

/* ---- Launches ------------------------------------------------------------- */

/* Runs kernel `name` of cl/conv_grouped.cl over `items` work-items; its
 * arguments end with the geometry (GGEOM in cl/conv_grouped.cl). */
#define LAUNCH(op, name, items, G, ...)                                                            \
    CLNET_RUN1D((op)->ctx, (op)->func, "conv_grouped", (name), (items), __VA_ARGS__,               \
                CLNET_ARG_INT((G)->n), CLNET_ARG_INT((G)->c), CLNET_ARG_INT((G)->h),               \
                CLNET_ARG_INT((G)->w), CLNET_ARG_INT((G)->k), CLNET_ARG_INT((G)->g),               \
                CLNET_ARG_INT((G)->r), CLNET_ARG_INT((G)->s), CLNET_ARG_INT((G)->oh),              \
                CLNET_ARG_INT((G)->ow), CLNET_ARG_INT((G)->sh), CLNET_ARG_INT((G)->sw),            \
                CLNET_ARG_INT((G)->pt), CLNET_ARG_INT((G)->pl), CLNET_ARG_INT((G)->dh),            \
                CLNET_ARG_INT((G)->dw))

static int variant(clnet_context *ctx, const char *op, int groups)
{
    int v = clnet__variant(ctx, op, groups == 1 ? VAR_DENSE : VAR_DIRECT);
    return v == VAR_DENSE && groups == 1 ? VAR_DENSE : VAR_DIRECT;
}

/* ---- The three directions ------------------------------------------------- */

enum direction { FORWARD, BACKWARD_DATA, BACKWARD_FILTER };
static const char *const variant_names[] = { "conv2d_grouped.forward",
                                             "conv2d_grouped.backward_data",
                                             "conv2d_grouped.backward_filter" };
static const char *const kernel_names[] = { "conv_grouped_forward", "conv_grouped_backward_data",
                                            "conv_grouped_backward_filter" };

/* One direction in convolution roles r of a checked op: the geometry, the
 * empty cases (an empty output: nothing; an empty reduction: zeros, plus
 * the bias), then the dense convolution or the grouped kernel. */
static clnet_status run(const clnet__op *op, const clnet_conv2d_params *p, int groups,
                        clnet__conv_roles r, enum direction dir)
{
    ggeom g = { 0 };
    clnet_status st = geometry(op, p, groups, r, &g);
    if (st)
        return st;
    const clnet_tensor *x = op->t[r.x], *w = op->t[r.w], *y = op->t[r.y];
    const clnet_tensor *b = r.b >= 0 ? op->t[r.b] : NULL;
    clnet_tensor *out = (clnet_tensor *)(dir == FORWARD ? y : dir == BACKWARD_DATA ? x : w);
    const clnet_tensor *in0 = dir == FORWARD ? x : y, *in1 = dir == BACKWARD_FILTER ? x : w;
    if (out->numel == 0)
        return CLNET_OK;
    if (variant(op->ctx, variant_names[dir], groups) == VAR_DENSE)
        return dir == FORWARD         ? clnet_conv2d_forward(p, x, w, b, out)
               : dir == BACKWARD_DATA ? clnet_conv2d_backward_data(p, w, y, out)
                                      : clnet_conv2d_backward_filter(p, x, y, out);
    if (in0->numel == 0 || in1->numel == 0) {
        if ((st = clnet_tensor_fill(out, 0.0)) || !b)
            return st;
        return clnet_bias_add(out, b, out);
    }
    /* The output, then the tensors the kernel reads (the forward's bias last). */
    if (dir == FORWARD)
        return LAUNCH(op, kernel_names[dir], out->numel, &g, CLNET_ARG_TENSOR(y),
                      CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(w), CLNET_ARG_TENSOR(b ? b : w),
                      CLNET_ARG_INT(b != NULL));
    return LAUNCH(op, kernel_names[dir], out->numel, &g, CLNET_ARG_TENSOR(out),
                  CLNET_ARG_TENSOR(dir == BACKWARD_DATA ? w : x), CLNET_ARG_TENSOR(y));
}

CLNET_API clnet_status clnet_conv2d_grouped_forward(const clnet_conv2d_params *p, int groups,
                                                    const clnet_tensor *x, const clnet_tensor *w,
                                                    const clnet_tensor *b, clnet_tensor *y)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, clnet__conv_forward_spec, x, w, b, y);
    return st ? st : run(&op, p, groups, clnet__conv_forward_roles, FORWARD);
}

CLNET_API clnet_status clnet_conv2d_grouped_backward_data(const clnet_conv2d_params *p, int groups,
                                                          const clnet_tensor *w,
                                                          const clnet_tensor *dy, clnet_tensor *dx)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, clnet__conv_backward_data_spec, w, dy, dx);
    return st ? st : run(&op, p, groups, clnet__conv_backward_data_roles, BACKWARD_DATA);
}

CLNET_API clnet_status clnet_conv2d_grouped_backward_filter(const clnet_conv2d_params *p,
                                                            int groups, const clnet_tensor *x,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dw)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, clnet__conv_backward_filter_spec, x, dy, dw);
    return st ? st : run(&op, p, groups, clnet__conv_backward_filter_roles, BACKWARD_FILTER);
}
