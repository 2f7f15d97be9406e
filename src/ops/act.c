/* clnet — activations, softmax / log-softmax and the channel bias
 * (cl/act.cl): argument checks, variant choice and launches. */
#include <stdint.h>
#include <stdio.h>

#include "clnet/act.h"
#include "tensor/tensor_impl.h"

/* Row kernels: a row per work-item, or a row per work-group (see act.cl). */

/* An output may alias an input exactly (the same elements: same storage,
 * offset and size) but not overlap it in part. */
static clnet_status check_overlap(clnet_context *ctx, const char *func, const clnet_tensor *out,
                                  const char *oname, const clnet_tensor *in, const char *iname)
{
    if (!in || !out->storage || out->storage != in->storage)
        return CLNET_OK;
    if (out->offset == in->offset && out->numel == in->numel)
        return CLNET_OK;
    if (out->offset < in->offset + in->numel && in->offset < out->offset + out->numel)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: %s overlaps %s in part (only exact aliasing is allowed)", func,
                            oname, iname);
    return CLNET_OK;
}

/* Checks tensors that must all have ts[0]'s exact shape (after
 * clnet__check_same has checked NULLs, context, dtype and size). */
static clnet_status check_shapes(clnet_context *ctx, const char *func, int count,
                                 const clnet_tensor *const *ts, const char *const *names)
{
    for (int i = 1; i < count; i++)
        if (!clnet__same_shape(ts[i], ts[0])) {
            char a[96], b[96];
            return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s (the shape of %s)",
                                func, names[i], clnet__tensor_shape_str(ts[i], a, sizeof a),
                                clnet__tensor_shape_str(ts[0], b, sizeof b), names[0]);
        }
    return CLNET_OK;
}

/* ---- activations ---------------------------------------------------------- */

static const char *const act_names[] = {"none", "relu", "leaky_relu", "sigmoid", "tanh"};
#define ACT_COUNT ((int)(sizeof act_names / sizeof act_names[0]))

CLNET_API const char *clnet_activation_name(clnet_activation act)
{
    return (int)act >= 0 && (int)act < ACT_COUNT ? act_names[act] : "unknown";
}

/* Checks the activation value; ctx may be NULL. */
static clnet_status check_act(clnet_context *ctx, const char *func, clnet_activation act)
{
    if ((int)act < 0 || (int)act >= ACT_COUNT)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: act = %d is not a "
                            "clnet_activation",
                            func, (int)act);
    return CLNET_OK;
}

/* out[i] = f(in[i]) (or f(in[i], g[i]) when g is given), one element each. */
static clnet_status launch_elementwise(clnet_context *ctx, const char *func, const char *kernel,
                                       clnet_tensor *out, const clnet_tensor *in,
                                       const clnet_tensor *g, int with_alpha, float alpha)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "act", NULL, kernel, &k);
    if (st)
        return st;
    clnet__arg a[8];
    int n = 0;
    a[n++] = CLNET_ARG_MEM(clnet__mem(out));
    a[n++] = CLNET_ARG_ULONG(out->offset);
    a[n++] = CLNET_ARG_MEM(clnet__mem(in));
    a[n++] = CLNET_ARG_ULONG(in->offset);
    if (g) {
        a[n++] = CLNET_ARG_MEM(clnet__mem(g));
        a[n++] = CLNET_ARG_ULONG(g->offset);
    }
    a[n++] = CLNET_ARG_ULONG(out->numel);
    if (with_alpha)
        a[n++] = CLNET_ARG_FLOAT(alpha);
    return clnet__launch1d(ctx, k, func, n, a, out->numel);
}

/* The identity: out = in, nothing to do when they are the same elements. */
static clnet_status copy_or_nothing(clnet_context *ctx, const char *func, clnet_tensor *out,
                                    const clnet_tensor *in)
{
    if (out->storage == in->storage && out->offset == in->offset)
        return CLNET_OK;
    return launch_elementwise(ctx, func, "act_copy", out, in, NULL, 0, 0.0f);
}

CLNET_API clnet_status clnet_activation_forward(clnet_activation act, float alpha,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    static const char func[] = "clnet_activation_forward";
    static const char *const kernels[] = {NULL, "relu_forward", "leaky_relu_forward",
                                          "sigmoid_forward", "tanh_forward"};
    const clnet_tensor *ts[] = {y, x};
    static const char *const names[] = {"y", "x"};
    clnet_context *ctx = clnet__first_ctx(2, ts);
    clnet_status st;
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    if ((st = check_act(ctx, func, act)) || (st = clnet__check_same(ctx, func, 2, ts, names)) ||
        (st = check_overlap(ctx, func, y, "y", x, "x")) || y->numel == 0)
        return st;
    if (act == CLNET_ACT_NONE)
        return copy_or_nothing(ctx, func, y, x);
    return launch_elementwise(ctx, func, kernels[act], y, x, NULL, act == CLNET_ACT_LEAKY_RELU,
                              alpha);
}

CLNET_API clnet_status clnet_activation_backward(clnet_activation act, float alpha,
                                                 const clnet_tensor *x, const clnet_tensor *y,
                                                 const clnet_tensor *dy, clnet_tensor *dx)
{
    static const char func[] = "clnet_activation_backward";
    static const char *const kernels[] = {NULL, "relu_backward", "leaky_relu_backward",
                                          "sigmoid_backward", "tanh_backward"};
    const clnet_tensor *all[] = {dx, dy, x, y};
    clnet_context *ctx = clnet__first_ctx(4, all);
    clnet_status st;
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    if ((st = check_act(ctx, func, act)))
        return st;
    /* The saved tensor this activation reads is required; the other one is
     * checked only when given. */
    int from_y = act == CLNET_ACT_SIGMOID || act == CLNET_ACT_TANH;
    const clnet_tensor *saved = from_y ? y : x, *other = from_y ? x : y;
    if (act != CLNET_ACT_NONE && !saved)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: %s is NULL (%s backward reads %s)", func,
                            from_y ? "y" : "x", act_names[act], from_y ? "y" : "x");
    const clnet_tensor *ts[4] = {dx, dy, NULL, NULL};
    const char *names[4] = {"dx", "dy", NULL, NULL};
    int count = 2;
    if (saved) {
        ts[count] = saved;
        names[count++] = from_y ? "y" : "x";
    }
    if (other) {
        ts[count] = other;
        names[count++] = from_y ? "x" : "y";
    }
    if ((st = clnet__check_same(ctx, func, count, ts, names)) ||
        (st = check_overlap(ctx, func, dx, "dx", dy, "dy")) ||
        (st = check_overlap(ctx, func, dx, "dx", saved, names[2])) || dx->numel == 0)
        return st;
    if (act == CLNET_ACT_NONE)
        return copy_or_nothing(ctx, func, dx, dy);
    return launch_elementwise(ctx, func, kernels[act], dx, saved, dy, act == CLNET_ACT_LEAKY_RELU,
                              alpha);
}

/* ---- softmax --------------------------------------------------------------- */

/* x viewed as (rows, cols) over its last axis; cols fits an int. */
static clnet_status rows_cols(clnet_context *ctx, const char *func, const clnet_tensor *x,
                              size_t *rows, int *cols)
{
    int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1;
    if (c > 0x7fffffff)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: the last axis has %lld entries, more than 2^31 - 1", func,
                            (long long)c);
    *cols = (int)c;
    *rows = c ? x->numel / (size_t)c : 0;
    return CLNET_OK;
}

/* Launches a row kernel: rows work-items, or rows work-groups. */
static clnet_status launch_rows(clnet_context *ctx, const char *func, const char *base, int variant,
                                int nargs, const clnet__arg *a, size_t rows)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", base, variant == CLNET_V_ROW_GROUP ? "group" : "item");
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "act", NULL, name, &k);
    if (st)
        return st;
    if (variant != CLNET_V_ROW_GROUP)
        return clnet__launch1d(ctx, k, func, nargs, a, rows);
    size_t wg = clnet__context_profile(ctx)->wg_size, global = rows * wg;
    return clnet__launch(ctx, k, func, nargs, a, 1, &global, &wg);
}

/* A row per work-group once the row fills one; shorter rows take a lane each. */
static int row_variant(clnet_context *ctx, const char *op, int cols)
{
    size_t wg = clnet__context_profile(ctx)->wg_size;
    return clnet__variant(ctx, op, (size_t)cols > wg ? CLNET_V_ROW_GROUP : CLNET_V_ROW_ITEM);
}

static clnet_status softmax_fwd(const char *func, int log_, const clnet_tensor *x, clnet_tensor *y)
{
    const clnet_tensor *ts[] = {x, y};
    static const char *const names[] = {"x", "y"};
    clnet_context *ctx = clnet__first_ctx(2, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, 2, ts, names)) ||
        (st = check_shapes(ctx, func, 2, ts, names)) ||
        (st = check_overlap(ctx, func, y, "y", x, "x")) || x->numel == 0 ||
        (st = rows_cols(ctx, func, x, &rows, &cols)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                      CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                      CLNET_ARG_ULONG(rows),        CLNET_ARG_INT(cols),
                      CLNET_ARG_INT(log_)};
    return launch_rows(ctx, func, "softmax_forward", row_variant(ctx, "softmax.forward", cols), 7,
                       a, rows);
}

static clnet_status softmax_bwd(const char *func, int log_, const clnet_tensor *y,
                                const clnet_tensor *dy, clnet_tensor *dx)
{
    const clnet_tensor *ts[] = {y, dy, dx};
    static const char *const names[] = {"y", "dy", "dx"};
    clnet_context *ctx = clnet__first_ctx(3, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, 3, ts, names)) ||
        (st = check_shapes(ctx, func, 3, ts, names)) ||
        (st = check_overlap(ctx, func, dx, "dx", dy, "dy")) ||
        (st = check_overlap(ctx, func, dx, "dx", y, "y")) || y->numel == 0 ||
        (st = rows_cols(ctx, func, y, &rows, &cols)))
        return st;
    clnet__arg a[] = {
        CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),    CLNET_ARG_MEM(clnet__mem(dy)),
        CLNET_ARG_ULONG(dy->offset),  CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
        CLNET_ARG_ULONG(rows),        CLNET_ARG_INT(cols),           CLNET_ARG_INT(log_)};
    return launch_rows(ctx, func, "softmax_backward", row_variant(ctx, "softmax.backward", cols), 9,
                       a, rows);
}

CLNET_API clnet_status clnet_softmax_forward(const clnet_tensor *x, clnet_tensor *y)
{
    return softmax_fwd("clnet_softmax_forward", 0, x, y);
}

CLNET_API clnet_status clnet_log_softmax_forward(const clnet_tensor *x, clnet_tensor *y)
{
    return softmax_fwd("clnet_log_softmax_forward", 1, x, y);
}

CLNET_API clnet_status clnet_softmax_backward(const clnet_tensor *y, const clnet_tensor *dy,
                                              clnet_tensor *dx)
{
    return softmax_bwd("clnet_softmax_backward", 0, y, dy, dx);
}

CLNET_API clnet_status clnet_log_softmax_backward(const clnet_tensor *y, const clnet_tensor *dy,
                                                  clnet_tensor *dx)
{
    return softmax_bwd("clnet_log_softmax_backward", 1, y, dy, dx);
}

/* ---- softmax over channels ------------------------------------------------ */

/* x as (n, c, s): c = dim 1, n = dim 0, s the product of the rest. */
static clnet_status channel_dims(clnet_context *ctx, const char *func, const clnet_tensor *x,
                                 int *c, size_t *columns, size_t *s)
{
    char buf[96];
    if (x->ndim < 2 || x->shape[1] > 0x7fffffff)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: x is %s; it needs (n, channels, ...)", func,
                            clnet__tensor_shape_str(x, buf, sizeof buf));
    size_t rest = 1;
    for (int i = 2; i < x->ndim; i++)
        rest *= (size_t)x->shape[i];
    *c = (int)x->shape[1];
    *s = rest;
    *columns = (size_t)x->shape[0] * rest;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_softmax_channels_forward(const clnet_tensor *x, clnet_tensor *y)
{
    static const char func[] = "clnet_softmax_channels_forward";
    const clnet_tensor *ts[] = {x, y};
    static const char *const names[] = {"x", "y"};
    clnet_context *ctx = clnet__first_ctx(2, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    int c = 0;
    size_t columns = 0, s = 0;
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, 2, ts, names)) ||
        (st = check_shapes(ctx, func, 2, ts, names)) ||
        (st = check_overlap(ctx, func, y, "y", x, "x")) ||
        (st = channel_dims(ctx, func, x, &c, &columns, &s)) || x->numel == 0)
        return st;
    cl_kernel k;
    if ((st = clnet__kernel(ctx, "act", NULL, "softmax_channels_forward", &k)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                      CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                      CLNET_ARG_ULONG(columns),     CLNET_ARG_INT(c),
                      CLNET_ARG_ULONG(s)};
    return clnet__launch1d(ctx, k, func, 7, a, columns);
}

CLNET_API clnet_status clnet_softmax_channels_backward(const clnet_tensor *y,
                                                       const clnet_tensor *dy, clnet_tensor *dx)
{
    static const char func[] = "clnet_softmax_channels_backward";
    const clnet_tensor *ts[] = {y, dy, dx};
    static const char *const names[] = {"y", "dy", "dx"};
    clnet_context *ctx = clnet__first_ctx(3, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    int c = 0;
    size_t columns = 0, s = 0;
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, 3, ts, names)) ||
        (st = check_shapes(ctx, func, 3, ts, names)) ||
        (st = check_overlap(ctx, func, dx, "dx", dy, "dy")) ||
        (st = check_overlap(ctx, func, dx, "dx", y, "y")) ||
        (st = channel_dims(ctx, func, y, &c, &columns, &s)) || y->numel == 0)
        return st;
    cl_kernel k;
    if ((st = clnet__kernel(ctx, "act", NULL, "softmax_channels_backward", &k)))
        return st;
    clnet__arg a[] = {
        CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),    CLNET_ARG_MEM(clnet__mem(dy)),
        CLNET_ARG_ULONG(dy->offset),  CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
        CLNET_ARG_ULONG(columns),     CLNET_ARG_INT(c),              CLNET_ARG_ULONG(s)};
    return clnet__launch1d(ctx, k, func, 9, a, columns);
}

/* ---- bias ---------------------------------------------------------------- */

/* x as (n, c, hw) with the channel axis dim 1; b (or db) holds c elements. */
static clnet_status bias_dims(clnet_context *ctx, const char *func, const clnet_tensor *x,
                              const char *xname, const clnet_tensor *b, const char *bname, int *c,
                              size_t *hw)
{
    char s[96];
    if (x->ndim < 2)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s is %s, expected at least 2 dims (N, C, ...) or (N, F)", func,
                            xname, clnet__tensor_shape_str(x, s, sizeof s));
    if (x->shape[1] > 0x7fffffff)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE, "%s: %s has more than 2^31 - 1 channels",
                            func, xname);
    *c = (int)x->shape[1];
    *hw = 1;
    for (int i = 2; i < x->ndim; i++)
        *hw *= (size_t)x->shape[i];
    if (b->numel != (size_t)*c)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s holds %zu elements, expected %d (the channels of %s, %s)", func,
                            bname, b->numel, *c, xname, clnet__tensor_shape_str(x, s, sizeof s));
    return CLNET_OK;
}

/* Checks non-NULL, same context, float32 (sizes are checked by the caller). */
static clnet_status check_f32(clnet_context *ctx, const char *func, int count,
                              const clnet_tensor *const *ts, const char *const *names)
{
    for (int i = 0; i < count; i++) {
        const clnet_tensor *one[] = {ts[i]};
        clnet_status st = clnet__check_same(ctx, func, 1, one, &names[i]);
        if (st)
            return st;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_bias_add(const clnet_tensor *x, const clnet_tensor *b, clnet_tensor *y)
{
    static const char func[] = "clnet_bias_add";
    const clnet_tensor *ts[] = {x, y, b};
    static const char *const names[] = {"x", "y", "b"};
    clnet_context *ctx = clnet__first_ctx(3, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    int c;
    size_t hw;
    clnet_status st;
    if ((st = check_f32(ctx, func, 3, ts, names)) || (st = check_shapes(ctx, func, 2, ts, names)) ||
        (st = bias_dims(ctx, func, x, "x", b, "b", &c, &hw)) ||
        (st = check_overlap(ctx, func, y, "y", x, "x")) ||
        (st = check_overlap(ctx, func, y, "y", b, "b")) || y->numel == 0)
        return st;
    cl_kernel k;
    if ((st = clnet__kernel(ctx, "act", NULL, "bias_add", &k)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                      CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                      CLNET_ARG_MEM(clnet__mem(b)), CLNET_ARG_ULONG(b->offset),
                      CLNET_ARG_ULONG(y->numel),    CLNET_ARG_INT(c),
                      CLNET_ARG_ULONG(hw)};
    return clnet__launch1d(ctx, k, func, 9, a, y->numel);
}

/* Per-channel chunks of the first level: about 32 elements per lane, at most
 * 64 chunks, so the second level adds at most 64 partials in order. */
#define BIAS_PER_LANE 32
#define BIAS_MAX_CHUNKS 64

/* The first level by planes (CLNET_V_BIAS_PLANES, CPUs, planes of at least
 * BIAS_PLANE_MIN pixels): runs of up to BIAS_RUN pixels in float8 lanes. The
 * group variant's strided scalar walk costs ~10 cycles an element on pocl
 * (0.3-0.65 ms per CNN conv layer); the lanes make it a contiguous vector
 * loop. Variant "bias.backward". */
#define BIAS_RUN 256
#define BIAS_PLANE_MIN 32

/* db by planes: partials per (channel, image, run) in the workspace, then
 * bias_backward_final over each channel's n * runs of them, in order. */
static clnet_status bias_backward_planes(clnet_context *ctx, const char *func,
                                         const clnet_tensor *dy, clnet_tensor *db, int c,
                                         size_t hw)
{
    size_t n = dy->numel / ((size_t)c * hw), run = hw < BIAS_RUN ? hw : BIAS_RUN;
    size_t runs = (hw + run - 1) / run, parts = n * runs;
    cl_kernel k1, k2;
    cl_mem part;
    clnet_status st;
    if ((st = clnet__kernel(ctx, "act", NULL, "bias_backward_planes", &k1)) ||
        (st = clnet__kernel(ctx, "act", NULL, "bias_backward_final", &k2)) ||
        (st = clnet__workspace(ctx, parts * (size_t)c * sizeof(float), &part)))
        return st;
    clnet__arg a1[] = {
        CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset), CLNET_ARG_INT(c),
        CLNET_ARG_ULONG(hw),           CLNET_ARG_ULONG(n),          CLNET_ARG_ULONG(run),
        CLNET_ARG_MEM(part),           CLNET_ARG_ULONG(0)};
    if ((st = clnet__launch1d(ctx, k1, func, 8, a1, parts * (size_t)c)))
        return st;
    clnet__arg a2[] = {CLNET_ARG_MEM(part),           CLNET_ARG_ULONG(0),
                       CLNET_ARG_UINT((cl_uint)parts), CLNET_ARG_INT(c),
                       CLNET_ARG_MEM(clnet__mem(db)), CLNET_ARG_ULONG(db->offset)};
    return clnet__launch1d(ctx, k2, func, 6, a2, (size_t)c);
}

CLNET_API clnet_status clnet_bias_backward(const clnet_tensor *dy, clnet_tensor *db)
{
    static const char func[] = "clnet_bias_backward";
    const clnet_tensor *ts[] = {dy, db};
    static const char *const names[] = {"dy", "db"};
    clnet_context *ctx = clnet__first_ctx(2, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    int c;
    size_t hw;
    clnet_status st;
    if ((st = check_f32(ctx, func, 2, ts, names)) ||
        (st = bias_dims(ctx, func, dy, "dy", db, "db", &c, &hw)) ||
        (st = check_overlap(ctx, func, db, "db", dy, "dy")) || c == 0)
        return st;
    if (dy->numel == 0) /* no images or no pixels: every channel sums to 0 */
        return clnet_tensor_fill(db, 0.0);
    int cpu = clnet__context_profile(ctx)->info.type == CLNET_DEVICE_CPU;
    int v = clnet__variant(ctx, "bias.backward",
                           cpu && hw >= BIAS_PLANE_MIN ? CLNET_V_BIAS_PLANES : CLNET_V_BIAS_GROUPS);
    if (v == CLNET_V_BIAS_PLANES && dy->numel / ((size_t)c * hw) * ((hw + BIAS_RUN - 1) / BIAS_RUN) <
                                UINT32_MAX)
        return bias_backward_planes(ctx, func, dy, db, c, hw);
    size_t wg = clnet__context_profile(ctx)->wg_size, m = dy->numel / (size_t)c;
    size_t chunks = (m + wg * BIAS_PER_LANE - 1) / (wg * BIAS_PER_LANE);
    if (chunks > BIAS_MAX_CHUNKS)
        chunks = BIAS_MAX_CHUNKS;
    cl_kernel k1, k2;
    cl_mem part = clnet__mem(db);
    size_t po = db->offset;
    if ((st = clnet__kernel(ctx, "act", NULL, "bias_backward_partial", &k1)) ||
        (st = clnet__kernel(ctx, "act", NULL, "bias_backward_final", &k2)) ||
        (chunks > 1 && (st = clnet__workspace(ctx, chunks * (size_t)c * sizeof(float), &part))))
        return st;
    if (chunks > 1)
        po = 0;
    clnet__arg a1[] = {
        CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset), CLNET_ARG_INT(c),
        CLNET_ARG_ULONG(hw),           CLNET_ARG_ULONG(m),          CLNET_ARG_UINT(chunks),
        CLNET_ARG_MEM(part),           CLNET_ARG_ULONG(po)};
    size_t global = chunks * (size_t)c * wg;
    if ((st = clnet__launch(ctx, k1, func, 8, a1, 1, &global, &wg)) || chunks == 1)
        return st;
    clnet__arg a2[] = {CLNET_ARG_MEM(part),           CLNET_ARG_ULONG(0),
                       CLNET_ARG_UINT(chunks),        CLNET_ARG_INT(c),
                       CLNET_ARG_MEM(clnet__mem(db)), CLNET_ARG_ULONG(db->offset)};
    return clnet__launch1d(ctx, k2, func, 6, a2, (size_t)c);
}
