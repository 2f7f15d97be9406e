/* clnet — 2-D pooling and nearest upsampling (cl/pool.cl): argument checks,
 * the floor-mode geometry and the launches. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clnet/pool.h"
#include "ops/op.h"

/* Kernels index planes with int: every plane stays below 2^31 elements. */
#define PLANE_MAX INT32_MAX

/* How many outputs of one row each work-item produces; every op here asks
 * clnet__variant("<op>.<direction>") so tests can force each. */

typedef struct geom {
    int64_t n, c;
    int h, w, oh, ow;
} geom;

/* ---- Argument checks -------------------------------------------------------- */

/* Checks the parameters alone: window and stride >= 1, 0 <= pad < window. */
static clnet_status check_params(const clnet_pool2d_params *p, char *why, size_t len)
{
    const struct {
        const char *name;
        int v, window; /* window: 0 for the window and stride fields */
        const char *window_name;
    } f[] = {
        { "window_h", p->window_h, 0, "" },
        { "window_w", p->window_w, 0, "" },
        { "stride_h", p->stride_h, 0, "" },
        { "stride_w", p->stride_w, 0, "" },
        { "pad_top", p->pad_top, p->window_h, "h" },
        { "pad_bottom", p->pad_bottom, p->window_h, "h" },
        { "pad_left", p->pad_left, p->window_w, "w" },
        { "pad_right", p->pad_right, p->window_w, "w" },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].window && f[i].v < 1) {
            snprintf(why, len, "params->%s is %d, must be >= 1", f[i].name, f[i].v);
            return CLNET_ERR_INVALID_ARG;
        }
        if (f[i].window && (f[i].v < 0 || f[i].v >= f[i].window)) {
            snprintf(why, len, "params->%s is %d, must be in [0, window_%s) = [0, %d)", f[i].name,
                     f[i].v, f[i].window_name, f[i].window);
            return CLNET_ERR_INVALID_ARG;
        }
    }
    return CLNET_OK;
}

/* Checks the parameters against an input shape (named x_name) and computes
 * the geometry. On failure writes the reason (without the function name)
 * into why. */
static clnet_status pool_geometry(const clnet_pool2d_params *p, const char *x_name,
                                  const int64_t xs[4], geom *g, char *why, size_t len)
{
    clnet_status st = check_params(p, why, len);
    if (st)
        return st;
    char xstr[96];
    clnet__shape_str(4, xs, xstr, sizeof xstr);
    if (xs[0] < 0 || xs[1] < 0 || xs[2] < 1 || xs[3] < 1) {
        snprintf(why, len, "%s is %s: N and C must be >= 0, H and W >= 1", x_name, xstr);
        return CLNET_ERR_INVALID_ARG;
    }
    /* Every factor below is under 2^32 once H and W are: no int64 overflow. */
    const char *big = "%s is %s with a %dx%d window: an input, padded or output plane, or the "
                      "window, exceeds 2^31 - 1 elements";
    if (xs[2] > PLANE_MAX || xs[3] > PLANE_MAX) {
        snprintf(why, len, big, x_name, xstr, p->window_h, p->window_w);
        return CLNET_ERR_TOO_LARGE;
    }
    int64_t ph = xs[2] + p->pad_top + p->pad_bottom, pw = xs[3] + p->pad_left + p->pad_right;
    if (ph < p->window_h || pw < p->window_w) {
        snprintf(why, len,
                 "the %dx%d window is larger than the padded input %" PRId64 "x%" PRId64
                 " (%s is %s)",
                 p->window_h, p->window_w, ph, pw, x_name, xstr);
        return CLNET_ERR_INVALID_ARG;
    }
    int64_t oh = (ph - p->window_h) / p->stride_h + 1, ow = (pw - p->window_w) / p->stride_w + 1;
    if (ph > PLANE_MAX || pw > PLANE_MAX || xs[2] * xs[3] > PLANE_MAX || oh * ow > PLANE_MAX ||
        (int64_t)p->window_h * p->window_w > PLANE_MAX) {
        snprintf(why, len, big, x_name, xstr, p->window_h, p->window_w);
        return CLNET_ERR_TOO_LARGE;
    }
    *g = (geom){ xs[0], xs[1], (int)xs[2], (int)xs[3], (int)oh, (int)ow };
    return CLNET_OK;
}

CLNET_API clnet_status clnet_pool2d_output_shape(const clnet_pool2d_params *params,
                                                 const int64_t x_shape[4], int64_t y_shape[4])
{
    CLNET_CHECK_ARG(NULL, params != NULL && x_shape != NULL && y_shape != NULL);
    char why[256];
    geom g;
    clnet_status st = pool_geometry(params, "x", x_shape, &g, why, sizeof why);
    if (st)
        return st;
    y_shape[0] = g.n;
    y_shape[1] = g.c;
    y_shape[2] = g.oh;
    y_shape[3] = g.ow;
    return CLNET_OK;
}

/* The checks of a pooling call after the op's table: the parameters against
 * the input-side shape (tensor in: x, or dx for the backward), then tensor
 * out (y or dy) must be (N, C, OH, OW). */
static clnet_status pool_check(const clnet__op *op, const clnet_pool2d_params *p, int in, int out,
                               geom *g)
{
    if (!p)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "invalid argument: params is NULL");
    char why[256];
    clnet_status st = pool_geometry(p, op->spec[in].name, op->t[in]->shape, g, why, sizeof why);
    if (st)
        return clnet__op_fail(op, st, "%s%s",
                              st == CLNET_ERR_INVALID_ARG ? "invalid argument: " : "", why);
    return clnet__op_want_shape(op, out, 4, (const int64_t[]){ g->n, g->c, g->oh, g->ow });
}

/* A pooling call's checks: the table (three tensors, the input side first,
 * then the pooled side), then the parameters and the pooled shape. */
static clnet_status pool_begin(clnet__op *op, const char *func, const clnet__tspec *spec,
                               const clnet_pool2d_params *p, const clnet_tensor *a,
                               const clnet_tensor *b, const clnet_tensor *c, geom *g)
{
    clnet_status st = clnet__op_check(op, func, spec, 3, (const clnet_tensor *const[]){ a, b, c });
    return st ? st : pool_check(op, p, 0, 1, g);
}

/* ---- Launches ---------------------------------------------------------------- */

/* Runs `kernel` over planes x rows x cols outputs; its arguments are args
 * and then the run length, added here. On a CPU (pocl) one work-item per
 * row is faster: it walks the row with the cache instead of fanning tiny
 * work-items out. On a GPU one output per work-item keeps neighbouring
 * work-items on neighbouring addresses. */
static clnet_status launch_runs(const clnet__op *op, const char *kernel, const char *variant,
                                int64_t planes, int rows, int cols, int nargs,
                                const clnet__arg *args)
{
    int chosen = clnet__context_profile(op->ctx)->info.type == CLNET_DEVICE_CPU
                     ? CLNET_V_RUN_ROW
                     : CLNET_V_RUN_ELEMENT;
    int run = clnet__variant(op->ctx, variant, chosen) == CLNET_V_RUN_ROW ? cols : 1;
    clnet__arg a[24];
    memcpy(a, args, (size_t)nargs * sizeof *a);
    a[nargs] = CLNET_ARG_INT(run);
    size_t runs = ((size_t)cols + (size_t)run - 1) / (size_t)run;
    return clnet__run1d(op->ctx, op->func, "pool", kernel, (size_t)planes * (size_t)rows * runs,
                        nargs + 1, a);
}

/* 2x2 windows, stride 2, all inside the image (no top/left padding, and
 * bottom/right padding only where floor mode drops it): max pooling then
 * runs the float4 kernels (cl/pool.cl), unless a test forces another
 * variant of `variant`. */
static int use_2x2(clnet_context *ctx, const char *variant, const clnet_pool2d_params *p,
                   const geom *g)
{
    int fits = p->window_h == 2 && p->window_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
               p->pad_top == 0 && p->pad_left == 0 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
    return fits && clnet__variant(ctx, variant, CLNET_V_MAX_2X2) == CLNET_V_MAX_2X2;
}

/* The geometry arguments shared by the pooling kernels, after the buffers. */
#define GEOM_ARGS(g, p)                                                                            \
    CLNET_ARG_ULONG((g).n *(g).c), CLNET_ARG_INT((g).h), CLNET_ARG_INT((g).w),                     \
        CLNET_ARG_INT((g).oh), CLNET_ARG_INT((g).ow), CLNET_ARG_INT((p)->window_h),                \
        CLNET_ARG_INT((p)->window_w), CLNET_ARG_INT((p)->stride_h), CLNET_ARG_INT((p)->stride_w),  \
        CLNET_ARG_INT((p)->pad_top), CLNET_ARG_INT((p)->pad_left)

/* Max pooling's window pass: the maxima into y and/or the argmax indices
 * into idx (NULL mem: not written), through the 2x2 kernels where they fit
 * and `variant` allows, else the general kernel. */
static clnet_status max_forward(const clnet__op *op, const char *variant,
                                const clnet_pool2d_params *params, const geom *g,
                                const clnet_tensor *x, cl_mem y, size_t yo, cl_mem idx, size_t io)
{
    cl_mem any = clnet__mem(x);
    if (use_2x2(op->ctx, variant, params, g))
        return CLNET_RUN1D(
            op->ctx, op->func, "pool", "pool2d_max2x2_forward",
            (size_t)(g->n * g->c) * (size_t)g->oh, CLNET_ARG_TENSOR(x), CLNET_ARG_MEM(y ? y : any),
            CLNET_ARG_ULONG(yo), CLNET_ARG_MEM(idx ? idx : any), CLNET_ARG_ULONG(io),
            CLNET_ARG_INT(y != NULL), CLNET_ARG_INT(idx != NULL), CLNET_ARG_ULONG(g->n * g->c),
            CLNET_ARG_INT(g->h), CLNET_ARG_INT(g->w), CLNET_ARG_INT(g->oh), CLNET_ARG_INT(g->ow));
    return launch_runs(op, "pool2d_max_forward", variant, g->n * g->c, g->oh, g->ow,
                       CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_MEM(y ? y : any),
                                  CLNET_ARG_ULONG(yo), CLNET_ARG_MEM(idx ? idx : any),
                                  CLNET_ARG_ULONG(io), CLNET_ARG_INT(y != NULL),
                                  CLNET_ARG_INT(idx != NULL), GEOM_ARGS(*g, params)));
}

/* The gather of the max backward from window indices idx (buffer, offset). */
static clnet_status max_backward_from(const clnet__op *op, const clnet_pool2d_params *params,
                                      const geom *g, cl_mem idx, size_t io, const clnet_tensor *dy,
                                      const clnet_tensor *dx)
{
    if (use_2x2(op->ctx, "pool2d_max.backward", params, g))
        return CLNET_RUN1D(op->ctx, op->func, "pool", "pool2d_max2x2_backward",
                           (size_t)(g->n * g->c) * (size_t)g->oh, CLNET_ARG_MEM(idx),
                           CLNET_ARG_ULONG(io), CLNET_ARG_TENSOR(dy), CLNET_ARG_TENSOR(dx),
                           CLNET_ARG_ULONG(g->n * g->c), CLNET_ARG_INT(g->h), CLNET_ARG_INT(g->w),
                           CLNET_ARG_INT(g->oh), CLNET_ARG_INT(g->ow));
    return launch_runs(op, "pool2d_max_backward", "pool2d_max.backward", g->n * g->c, g->h, g->w,
                       CLNET_ARGS(CLNET_ARG_MEM(idx), CLNET_ARG_ULONG(io), CLNET_ARG_TENSOR(dy),
                                  CLNET_ARG_TENSOR(dx), GEOM_ARGS(*g, params)));
}

/* ---- Pooling ------------------------------------------------------------------ */

/* x and y, for the forward calls (y: the pooled shape, after the geometry). */
static const clnet__tspec forward_spec[] = {
    { .name = "x", .rank = 4 },
    { .name = "y", .flags = CLNET_T_OUT, .rank = 4 },
    { .name = "idx", .flags = CLNET_T_OUT | CLNET_T_I32 | CLNET_T_OPTIONAL, .like = CLNET_LIKE(1) },
};

CLNET_API clnet_status clnet_pool2d_max_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    clnet__op op;
    geom g;
    clnet_status st = pool_begin(&op, __func__, forward_spec, params, x, y, NULL, &g);
    if (st)
        return st;
    return max_forward(&op, "pool2d_max.forward", params, &g, x, clnet__mem(y), y->offset, NULL, 0);
}

CLNET_API clnet_status clnet_pool2d_max_forward_indices(const clnet_pool2d_params *params,
                                                        const clnet_tensor *x, clnet_tensor *y,
                                                        clnet_tensor *idx)
{
    clnet__op op;
    geom g;
    clnet_status st = pool_begin(&op, __func__, forward_spec, params, x, y, idx, &g);
    if (st)
        return st;
    if (!idx)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG, "idx: must not be NULL");
    return max_forward(&op, "pool2d_max.forward", params, &g, x, clnet__mem(y), y->offset,
                       clnet__mem(idx), idx->offset);
}

CLNET_API clnet_status clnet_pool2d_max_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *x, const clnet_tensor *dy,
                                                 clnet_tensor *dx)
{
    static const clnet__tspec spec[] = {
        { .name = "x", .rank = 4 },
        { .name = "dy", .rank = 4 },
        { .name = "dx", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0) },
    };
    clnet__op op;
    geom g;
    clnet_status st = pool_begin(&op, __func__, spec, params, x, dy, dx, &g);
    if (st || g.n * g.c == 0)
        return st;
    /* Pass 1: each window's first maximum, as an int plane index, into the
     * workspace; pass 2: the gather. Finding each maximum once costs less
     * than repeating the window scan for every element that could hold it. */
    cl_mem idx;
    size_t nidx = (size_t)(g.n * g.c) * (size_t)g.oh * (size_t)g.ow;
    if ((st = clnet__workspace(op.ctx, nidx * sizeof(cl_int), &idx)) ||
        (st = max_forward(&op, "pool2d_max.backward", params, &g, x, NULL, 0, idx, 0)))
        return st;
    return max_backward_from(&op, params, &g, idx, 0, dy, dx);
}

/* The backward calls: dx carries the input shape; dy must be its pooled one. */
static const clnet__tspec backward_spec[] = {
    { .name = "dx", .flags = CLNET_T_OUT, .rank = 4 },
    { .name = "dy", .rank = 4 },
    { .name = "idx", .flags = CLNET_T_I32 | CLNET_T_OPTIONAL, .like = CLNET_LIKE(1) },
};

CLNET_API clnet_status clnet_pool2d_max_backward_indices(const clnet_pool2d_params *params,
                                                         const clnet_tensor *idx,
                                                         const clnet_tensor *dy, clnet_tensor *dx)
{
    clnet__op op;
    geom g;
    clnet_status st = pool_begin(&op, __func__, backward_spec, params, dx, dy, idx, &g);
    if (st)
        return st;
    if (!idx)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG, "idx: must not be NULL");
    if (g.n * g.c == 0)
        return CLNET_OK;
    return max_backward_from(&op, params, &g, clnet__mem(idx), idx->offset, dy, dx);
}

/* Average pooling: the forward reads x and runs over the pooled planes, the
 * backward reads dy and runs over the input planes. */
static clnet_status avg(const char *func, const clnet__tspec *spec, const char *kernel,
                        const char *variant, const clnet_pool2d_params *params,
                        const clnet_tensor *in_side, const clnet_tensor *pooled, int backward)
{
    clnet__op op;
    geom g;
    clnet_status st = pool_begin(&op, func, spec, params, in_side, pooled, NULL, &g);
    if (st)
        return st;
    const clnet_tensor *in = backward ? pooled : in_side, *out = backward ? in_side : pooled;
    return launch_runs(&op, kernel, variant, g.n * g.c, backward ? g.h : g.oh,
                       backward ? g.w : g.ow,
                       CLNET_ARGS(CLNET_ARG_TENSOR(in), CLNET_ARG_TENSOR(out), GEOM_ARGS(g, params),
                                  CLNET_ARG_INT(params->count_include_pad != 0)));
}

CLNET_API clnet_status clnet_pool2d_avg_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    return avg(__func__, forward_spec, "pool2d_avg_forward", "pool2d_avg.forward", params, x, y, 0);
}

CLNET_API clnet_status clnet_pool2d_avg_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *dy, clnet_tensor *dx)
{
    return avg(__func__, backward_spec, "pool2d_avg_backward", "pool2d_avg.backward", params, dx,
               dy, 1);
}

/* ---- Nearest upsampling ----------------------------------------------------------- */

/* Checks an upsampling call on { small, big }: big must be small scaled by
 * (sh, sw). */
static clnet_status upsample_check(const clnet__op *op, int sh, int sw)
{
    if (sh < 1 || sw < 1)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: scale_h %d and scale_w %d must be >= 1", sh, sw);
    const int64_t *s = op->t[0]->shape;
    int ok = s[2] <= PLANE_MAX && s[3] <= PLANE_MAX; /* then no product below overflows */
    int64_t want[4] = { s[0], s[1], ok ? s[2] * sh : 0, ok ? s[3] * sw : 0 };
    if (!ok || want[2] > PLANE_MAX || want[3] > PLANE_MAX || want[2] * want[3] > PLANE_MAX) {
        char str[96];
        return clnet__op_fail(op, CLNET_ERR_TOO_LARGE,
                              "%s: shape %s: scaled by %dx%d a plane exceeds 2^31 - 1 elements",
                              op->spec[0].name, clnet__shape_str(4, s, str, sizeof str), sh, sw);
    }
    return clnet__op_want_shape(op, 1, 4, want);
}

/* Nearest upsampling by (sh, sw) between t[0] (small) and t[1] (big): the
 * forward reads t[0] and runs over the big planes, the backward reads t[1]
 * and runs over the small ones. */
static clnet_status upsample(const clnet__op *op, const char *kernel, const char *variant, int sh,
                             int sw, int backward)
{
    clnet_status st = upsample_check(op, sh, sw);
    if (st)
        return st;
    const clnet_tensor *in = op->t[backward], *out = op->t[!backward];
    const int64_t *s = op->t[0]->shape;
    int h = (int)s[2], w = (int)s[3];
    return launch_runs(
        op, kernel, variant, s[0] * s[1], backward ? h : h * sh, backward ? w : w * sw,
        CLNET_ARGS(CLNET_ARG_TENSOR(in), CLNET_ARG_TENSOR(out), CLNET_ARG_ULONG(s[0] * s[1]),
                   CLNET_ARG_INT(h), CLNET_ARG_INT(w), CLNET_ARG_INT(sh), CLNET_ARG_INT(sw)));
}

CLNET_API clnet_status clnet_upsample2d_nearest_forward(int scale_h, int scale_w,
                                                        const clnet_tensor *x, clnet_tensor *y)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, forward_spec, x, y, NULL);
    return st ? st
              : upsample(&op, "upsample2d_nearest_forward", "upsample2d_nearest.forward", scale_h,
                         scale_w, 0);
}

CLNET_API clnet_status clnet_upsample2d_nearest_backward(int scale_h, int scale_w,
                                                         const clnet_tensor *dy, clnet_tensor *dx)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, backward_spec, dx, dy, NULL);
    return st ? st
              : upsample(&op, "upsample2d_nearest_backward", "upsample2d_nearest.backward", scale_h,
                         scale_w, 1);
}
