/* clnet — 2-D pooling and nearest upsampling (cl/pool.cl): argument checks,
 * the floor-mode geometry and the launches. */
#include <inttypes.h>
#include <stdio.h>

#include "clnet/pool.h"
#include "tensor/tensor_impl.h"

/* Kernels index planes with int: every plane stays below 2^31 elements. */
#define PLANE_MAX INT32_MAX

/* How many outputs of one row each work-item produces; every op here asks
 * clnet__variant("<op>.<direction>") so tests can force each. */
enum { RUN_ELEMENT = 0, RUN_ROW = 1, MAX_2X2 = 2 /* max pooling only, when fits_2x2() */ };

typedef struct geom {
    int64_t n, c;
    int h, w, oh, ow;
} geom;

/* ---- Argument checks -------------------------------------------------------- */

/* The context of the first non-NULL tensor, for error messages. */
static clnet_context *context_of(int count, const clnet_tensor *const *ts)
{
    for (int i = 0; i < count; i++)
        if (ts[i])
            return ts[i]->ctx;
    return NULL;
}

/* Every tensor non-NULL, of ctx, float32 and 4-D. */
static clnet_status check_tensors(clnet_context *ctx, const char *func, int count,
                                  const clnet_tensor *const *ts, const char *const *names)
{
    for (int i = 0; i < count; i++) {
        const clnet_tensor *t = ts[i];
        if (!t)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s is NULL",
                                func, names[i]);
        if (t->ctx != ctx)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: %s belongs to another context",
                                func, names[i]);
        if (t->dtype != CLNET_F32)
            return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s must be float32, is %s", func,
                                names[i], t->dtype == CLNET_I32 ? "int32" : "another dtype");
        if (t->ndim != 4)
            return clnet__error(ctx, CLNET_ERR_SHAPE,
                                "%s: %s must be 4-D (N, C, H, W), has %d dims", func, names[i],
                                t->ndim);
    }
    return CLNET_OK;
}

static clnet_status check_shape(clnet_context *ctx, const char *func, const char *name,
                                const clnet_tensor *t, const int64_t want[4])
{
    if (t->shape[0] == want[0] && t->shape[1] == want[1] && t->shape[2] == want[2] &&
        t->shape[3] == want[3])
        return CLNET_OK;
    char got[96], exp[96];
    clnet__shape_str(4, t->shape, got, sizeof got);
    clnet__shape_str(4, want, exp, sizeof exp);
    return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s", func, name, got, exp);
}

/* Whether two tensors share any storage element. */
static int overlaps(const clnet_tensor *a, const clnet_tensor *b)
{
    if (!a->storage || a->storage != b->storage)
        return 0;
    return a->offset < b->offset + b->numel && b->offset < a->offset + a->numel;
}

static clnet_status check_disjoint(clnet_context *ctx, const char *func, const clnet_tensor *out,
                                   const char *out_name, const clnet_tensor *in,
                                   const char *in_name)
{
    if (!overlaps(out, in))
        return CLNET_OK;
    return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s overlaps %s", func,
                        out_name, in_name);
}

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

/* The common checks of a pooling call on tensors ts (named by names): each
 * non-NULL, float32, 4-D and of one context; the parameters against the
 * input-side shape ts[in_idx] (x, or dx for the average backward);
 * ts[out_idx] (y or dy) must be (N, C, OH, OW), any other the input's shape. */
static clnet_status pool_check(const char *func, const clnet_pool2d_params *p, int count,
                               const clnet_tensor *const *ts, const char *const *names,
                               int in_idx, int out_idx, geom *g)
{
    clnet_context *ctx = context_of(count, ts);
    if (!p)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: params is NULL",
                            func);
    clnet_status st = check_tensors(ctx, func, count, ts, names);
    if (st)
        return st;
    char why[256];
    if ((st = pool_geometry(p, names[in_idx], ts[in_idx]->shape, g, why, sizeof why)))
        return clnet__error(ctx, st, "%s: %s%s", func,
                            st == CLNET_ERR_INVALID_ARG ? "invalid argument: " : "", why);
    const int64_t want[4] = { g->n, g->c, g->oh, g->ow };
    if ((st = check_shape(ctx, func, names[out_idx], ts[out_idx], want)))
        return st;
    for (int i = 0; i < count; i++)
        if (i != in_idx && i != out_idx &&
            (st = check_shape(ctx, func, names[i], ts[i], ts[in_idx]->shape)))
            return st;
    return CLNET_OK;
}

/* ---- Launches ---------------------------------------------------------------- */

/* Launches `kernel` over planes x rows x cols outputs; the last of the nargs
 * arguments is the run length, filled in here. On a CPU (pocl) one work-item
 * per row is faster: it walks the row with the cache instead of fanning tiny
 * work-items out. On a GPU one output per work-item keeps neighbouring
 * work-items on neighbouring addresses. */
static clnet_status launch_runs(clnet_context *ctx, const char *kernel, const char *func,
                                const char *variant, int nargs, clnet__arg *args, int64_t planes,
                                int rows, int cols)
{
    if (planes == 0)
        return CLNET_OK;
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "pool", NULL, kernel, &k);
    if (st)
        return st;
    int chosen = clnet__context_profile(ctx)->info.type == CLNET_DEVICE_CPU ? RUN_ROW : RUN_ELEMENT;
    int run = clnet__variant(ctx, variant, chosen) == RUN_ROW ? cols : 1;
    args[nargs - 1] = CLNET_ARG_INT(run);
    size_t runs = ((size_t)cols + (size_t)run - 1) / (size_t)run;
    return clnet__launch1d(ctx, k, func, nargs, args, (size_t)planes * (size_t)rows * runs);
}

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* 2x2 windows, stride 2, all inside the image (no top/left padding, and
 * bottom/right padding only where floor mode drops it): max pooling then
 * runs the float4 kernels (cl/pool.cl), unless a test forces another
 * variant of `variant`. */
static int use_2x2(clnet_context *ctx, const char *variant, const clnet_pool2d_params *p,
                   const geom *g)
{
    int fits = p->window_h == 2 && p->window_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
               p->pad_top == 0 && p->pad_left == 0 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
    return fits && clnet__variant(ctx, variant, MAX_2X2) == MAX_2X2;
}

/* The 2x2 forward: y and/or idx (NULL mem: not written). */
static clnet_status max2x2_forward(clnet_context *ctx, const char *func, const geom *g,
                                   const clnet_tensor *x, cl_mem y, size_t yo, cl_mem idx,
                                   size_t io)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "pool", NULL, "pool2d_max2x2_forward", &k);
    if (st)
        return st;
    cl_mem any = clnet__mem(x);
    clnet__arg a[] = { CLNET_ARG_MEM(any),       CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(y ? y : any), CLNET_ARG_ULONG(yo),
                       CLNET_ARG_MEM(idx ? idx : any), CLNET_ARG_ULONG(io),
                       CLNET_ARG_INT(y != NULL),  CLNET_ARG_INT(idx != NULL),
                       CLNET_ARG_ULONG(g->n * g->c), CLNET_ARG_INT(g->h),
                       CLNET_ARG_INT(g->w),       CLNET_ARG_INT(g->oh),
                       CLNET_ARG_INT(g->ow) };
    return clnet__launch1d(ctx, k, func, NARGS(a), a, (size_t)(g->n * g->c) * (size_t)g->oh);
}

/* The geometry arguments shared by the pooling kernels, after the buffers. */
#define GEOM_ARGS(g, p)                                                                            \
    CLNET_ARG_ULONG((g).n * (g).c), CLNET_ARG_INT((g).h), CLNET_ARG_INT((g).w),                    \
        CLNET_ARG_INT((g).oh), CLNET_ARG_INT((g).ow), CLNET_ARG_INT((p)->window_h),                \
        CLNET_ARG_INT((p)->window_w), CLNET_ARG_INT((p)->stride_h), CLNET_ARG_INT((p)->stride_w),  \
        CLNET_ARG_INT((p)->pad_top), CLNET_ARG_INT((p)->pad_left)

/* Max pooling's window pass: the maxima into y and/or the argmax indices
 * into idx (NULL mem: not written), through the 2x2 kernels where they fit
 * and `variant` allows, else the general kernel. */
static clnet_status max_forward(clnet_context *ctx, const char *func, const char *variant,
                                const clnet_pool2d_params *params, const geom *g,
                                const clnet_tensor *x, cl_mem y, size_t yo, cl_mem idx, size_t io)
{
    if (g->n * g->c == 0)
        return CLNET_OK;
    if (use_2x2(ctx, variant, params, g))
        return max2x2_forward(ctx, func, g, x, y, yo, idx, io);
    cl_mem any = clnet__mem(x);
    clnet__arg a[] = { CLNET_ARG_MEM(any),             CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(y ? y : any),     CLNET_ARG_ULONG(yo),
                       CLNET_ARG_MEM(idx ? idx : any), CLNET_ARG_ULONG(io),
                       CLNET_ARG_INT(y != NULL),       CLNET_ARG_INT(idx != NULL),
                       GEOM_ARGS(*g, params),          CLNET_ARG_INT(0) };
    return launch_runs(ctx, "pool2d_max_forward", func, variant, NARGS(a), a, g->n * g->c, g->oh,
                       g->ow);
}

/* ---- Pooling ------------------------------------------------------------------ */

CLNET_API clnet_status clnet_pool2d_max_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    static const char *const names[] = { "x", "y" };
    const clnet_tensor *ts[] = { x, y };
    geom g;
    clnet_status st = pool_check(__func__, params, 2, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(x->ctx, __func__, y, "y", x, "x")))
        return st;
    return max_forward(x->ctx, __func__, "pool2d_max.forward", params, &g, x, clnet__mem(y),
                       y->offset, NULL, 0);
}

/* idx must be int32 of shape `want`, of ctx, and not overlap `other`. */
static clnet_status check_indices(clnet_context *ctx, const char *func, const clnet_tensor *idx,
                                  const int64_t want[4], const clnet_tensor *other,
                                  const char *other_name)
{
    if (!idx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: idx is NULL", func);
    if (idx->ctx != ctx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: idx belongs to another context",
                            func);
    if (idx->dtype != CLNET_I32 || idx->ndim != 4)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: idx must be a 4-D int32 tensor (N, C, OH, OW), is %d-D %s", func,
                            idx->ndim, idx->dtype == CLNET_I32 ? "int32" : "float32");
    clnet_status st = check_shape(ctx, func, "idx", idx, want);
    return st ? st : check_disjoint(ctx, func, idx, "idx", other, other_name);
}

/* The gather of the max backward from window indices idx (buffer, offset). */
static clnet_status max_backward_from(clnet_context *ctx, const char *func,
                                      const clnet_pool2d_params *params, const geom *g,
                                      cl_mem idx, size_t io, const clnet_tensor *dy,
                                      clnet_tensor *dx)
{
    if (use_2x2(ctx, "pool2d_max.backward", params, g)) {
        cl_kernel k;
        clnet_status st = clnet__kernel(ctx, "pool", NULL, "pool2d_max2x2_backward", &k);
        clnet__arg b[] = { CLNET_ARG_MEM(idx),          CLNET_ARG_ULONG(io),
                           CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset),
                           CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
                           CLNET_ARG_ULONG(g->n * g->c),  CLNET_ARG_INT(g->h),
                           CLNET_ARG_INT(g->w),           CLNET_ARG_INT(g->oh),
                           CLNET_ARG_INT(g->ow) };
        return st ? st
                  : clnet__launch1d(ctx, k, func, NARGS(b), b, (size_t)(g->n * g->c) * (size_t)g->oh);
    }
    clnet__arg a[] = { CLNET_ARG_MEM(idx),
                       CLNET_ARG_ULONG(io),
                       CLNET_ARG_MEM(clnet__mem(dy)),
                       CLNET_ARG_ULONG(dy->offset),
                       CLNET_ARG_MEM(clnet__mem(dx)),
                       CLNET_ARG_ULONG(dx->offset),
                       GEOM_ARGS(*g, params),
                       CLNET_ARG_INT(0) };
    return launch_runs(ctx, "pool2d_max_backward", func, "pool2d_max.backward", NARGS(a), a,
                       g->n * g->c, g->h, g->w);
}

CLNET_API clnet_status clnet_pool2d_max_forward_indices(const clnet_pool2d_params *params,
                                                        const clnet_tensor *x, clnet_tensor *y,
                                                        clnet_tensor *idx)
{
    static const char *const names[] = { "x", "y" };
    const clnet_tensor *ts[] = { x, y };
    geom g;
    clnet_status st = pool_check(__func__, params, 2, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(x->ctx, __func__, y, "y", x, "x")) ||
        (st = check_indices(x->ctx, __func__, idx, y->shape, x, "x")))
        return st;
    return max_forward(x->ctx, __func__, "pool2d_max.forward", params, &g, x, clnet__mem(y),
                       y->offset, clnet__mem(idx), idx->offset);
}

CLNET_API clnet_status clnet_pool2d_max_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *x, const clnet_tensor *dy,
                                                 clnet_tensor *dx)
{
    static const char *const names[] = { "x", "dy", "dx" };
    const clnet_tensor *ts[] = { x, dy, dx };
    geom g;
    clnet_status st = pool_check(__func__, params, 3, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(x->ctx, __func__, dx, "dx", x, "x")) ||
        (st = check_disjoint(x->ctx, __func__, dx, "dx", dy, "dy")))
        return st;
    if (g.n * g.c == 0)
        return CLNET_OK;
    /* Pass 1: each window's first maximum, as an int plane index, into the
     * workspace; pass 2: the gather. Finding each maximum once costs less
     * than repeating the window scan for every element that could hold it. */
    cl_mem idx;
    size_t nidx = (size_t)(g.n * g.c) * (size_t)g.oh * (size_t)g.ow;
    if ((st = clnet__workspace(x->ctx, nidx * sizeof(cl_int), &idx)))
        return st;
    if ((st = max_forward(x->ctx, __func__, "pool2d_max.backward", params, &g, x, NULL, 0, idx,
                          0)))
        return st;
    return max_backward_from(x->ctx, __func__, params, &g, idx, 0, dy, dx);
}

CLNET_API clnet_status clnet_pool2d_max_backward_indices(const clnet_pool2d_params *params,
                                                         const clnet_tensor *idx,
                                                         const clnet_tensor *dy, clnet_tensor *dx)
{
    /* dx carries the input shape; dy must be its pooled shape. */
    static const char *const names[] = { "dx", "dy" };
    const clnet_tensor *ts[] = { dx, dy };
    geom g;
    clnet_status st = pool_check(__func__, params, 2, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(dx->ctx, __func__, dx, "dx", dy, "dy")) ||
        (st = check_indices(dx->ctx, __func__, idx, dy->shape, dx, "dx")))
        return st;
    if (g.n * g.c == 0)
        return CLNET_OK;
    return max_backward_from(dx->ctx, __func__, params, &g, clnet__mem(idx), idx->offset, dy, dx);
}

CLNET_API clnet_status clnet_pool2d_avg_forward(const clnet_pool2d_params *params,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    static const char *const names[] = { "x", "y" };
    const clnet_tensor *ts[] = { x, y };
    geom g;
    clnet_status st = pool_check(__func__, params, 2, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(x->ctx, __func__, y, "y", x, "x")))
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(x)),
                       CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(clnet__mem(y)),
                       CLNET_ARG_ULONG(y->offset),
                       GEOM_ARGS(g, params),
                       CLNET_ARG_INT(params->count_include_pad != 0),
                       CLNET_ARG_INT(0) };
    return launch_runs(x->ctx, "pool2d_avg_forward", __func__, "pool2d_avg.forward", NARGS(a), a,
                       g.n * g.c, g.oh, g.ow);
}

CLNET_API clnet_status clnet_pool2d_avg_backward(const clnet_pool2d_params *params,
                                                 const clnet_tensor *dy, clnet_tensor *dx)
{
    /* dx carries the input shape; dy must be its pooled shape. */
    static const char *const names[] = { "dx", "dy" };
    const clnet_tensor *ts[] = { dx, dy };
    geom g;
    clnet_status st = pool_check(__func__, params, 2, ts, names, 0, 1, &g);
    if (st || (st = check_disjoint(dx->ctx, __func__, dx, "dx", dy, "dy")))
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(dy)),
                       CLNET_ARG_ULONG(dy->offset),
                       CLNET_ARG_MEM(clnet__mem(dx)),
                       CLNET_ARG_ULONG(dx->offset),
                       GEOM_ARGS(g, params),
                       CLNET_ARG_INT(params->count_include_pad != 0),
                       CLNET_ARG_INT(0) };
    return launch_runs(dx->ctx, "pool2d_avg_backward", __func__, "pool2d_avg.backward", NARGS(a), a,
                       g.n * g.c, g.h, g.w);
}

/* ---- Nearest upsampling ----------------------------------------------------------- */

/* Checks an upsampling call: ts = { small, big } with names; big must be
 * small scaled by (sh, sw); ts[out_idx] is the output. */
static clnet_status upsample_check(const char *func, int sh, int sw, const clnet_tensor *const *ts,
                                   const char *const *names, int out_idx)
{
    clnet_context *ctx = context_of(2, ts);
    clnet_status st = check_tensors(ctx, func, 2, ts, names);
    if (st)
        return st;
    if (sh < 1 || sw < 1)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: scale_h %d and scale_w %d must be >= 1", func,
                            sh, sw);
    const int64_t *s = ts[0]->shape;
    int ok = s[2] <= PLANE_MAX && s[3] <= PLANE_MAX; /* then no product below overflows */
    int64_t want[4] = { s[0], s[1], ok ? s[2] * sh : 0, ok ? s[3] * sw : 0 };
    if (!ok || want[2] > PLANE_MAX || want[3] > PLANE_MAX || want[2] * want[3] > PLANE_MAX) {
        char str[96];
        clnet__shape_str(4, s, str, sizeof str);
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: %s is %s: scaled by %dx%d a plane exceeds 2^31 - 1 elements", func,
                            names[0], str, sh, sw);
    }
    if ((st = check_shape(ctx, func, names[1], ts[1], want)))
        return st;
    return check_disjoint(ctx, func, ts[out_idx], names[out_idx], ts[1 - out_idx],
                          names[1 - out_idx]);
}

CLNET_API clnet_status clnet_upsample2d_nearest_forward(int scale_h, int scale_w,
                                                        const clnet_tensor *x, clnet_tensor *y)
{
    static const char *const names[] = { "x", "y" };
    const clnet_tensor *ts[] = { x, y };
    clnet_status st = upsample_check(__func__, scale_h, scale_w, ts, names, 1);
    if (st)
        return st;
    int h = (int)x->shape[2], w = (int)x->shape[3];
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(x)),
                       CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(clnet__mem(y)),
                       CLNET_ARG_ULONG(y->offset),
                       CLNET_ARG_ULONG(x->shape[0] * x->shape[1]),
                       CLNET_ARG_INT(h),
                       CLNET_ARG_INT(w),
                       CLNET_ARG_INT(scale_h),
                       CLNET_ARG_INT(scale_w),
                       CLNET_ARG_INT(0) };
    return launch_runs(x->ctx, "upsample2d_nearest_forward", __func__, "upsample2d_nearest.forward",
                       NARGS(a), a, x->shape[0] * x->shape[1], h * scale_h, w * scale_w);
}

CLNET_API clnet_status clnet_upsample2d_nearest_backward(int scale_h, int scale_w,
                                                         const clnet_tensor *dy, clnet_tensor *dx)
{
    static const char *const names[] = { "dx", "dy" };
    const clnet_tensor *ts[] = { dx, dy };
    clnet_status st = upsample_check(__func__, scale_h, scale_w, ts, names, 0);
    if (st)
        return st;
    int h = (int)dx->shape[2], w = (int)dx->shape[3];
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(dy)),
                       CLNET_ARG_ULONG(dy->offset),
                       CLNET_ARG_MEM(clnet__mem(dx)),
                       CLNET_ARG_ULONG(dx->offset),
                       CLNET_ARG_ULONG(dx->shape[0] * dx->shape[1]),
                       CLNET_ARG_INT(h),
                       CLNET_ARG_INT(w),
                       CLNET_ARG_INT(scale_h),
                       CLNET_ARG_INT(scale_w),
                       CLNET_ARG_INT(0) };
    return launch_runs(dx->ctx, "upsample2d_nearest_backward", __func__,
                       "upsample2d_nearest.backward", NARGS(a), a, dx->shape[0] * dx->shape[1], h,
                       w);
}
