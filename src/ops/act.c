/* clnet — activations, softmax / log-softmax and the channel bias
 * (cl/act.cl): argument checks, variant choice and launches. */
#include <stdint.h>
#include <stdio.h>

#include "clnet/act.h"
#include "ops/op.h"

/* Row kernels: a row per work-item, or a row per work-group (see act.cl). */

/* ---- activations ---------------------------------------------------------- */

static const char *const act_names[] = { "none", "relu",  "leaky_relu", "sigmoid",
                                         "tanh", "relu6", "hard_swish", "softmax" };
#define ACT_COUNT ((int)(sizeof act_names / sizeof act_names[0]))

CLNET_API const char *clnet_activation_name(clnet_activation act)
{
    return (int)act >= 0 && (int)act < ACT_COUNT ? act_names[act] : "unknown";
}

static clnet_status check_act(const clnet__op *op, clnet_activation act)
{
    if ((int)act < 0 || (int)act >= ACT_COUNT)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: act = %d is not a clnet_activation", (int)act);
    if (act == CLNET_ACT_SOFTMAX)
        return clnet__op_fail(
            op, CLNET_ERR_INVALID_ARG,
            "invalid argument: softmax is not elementwise (clnet_softmax_forward)");
    return CLNET_OK;
}

/* out[i] = f(in[i]) (or f(in[i], g[i]) when g is given), one element each. */
static clnet_status launch_elementwise(const clnet__op *op, const char *kernel, clnet_tensor *out,
                                       const clnet_tensor *in, const clnet_tensor *g,
                                       int with_alpha, float alpha)
{
    clnet__arg a[8] = { CLNET_ARG_TENSOR(out), CLNET_ARG_TENSOR(in) };
    int n = 4;
    if (g) {
        a[n++] = CLNET_ARG_MEM(clnet__mem(g));
        a[n++] = CLNET_ARG_ULONG(g->offset);
    }
    a[n++] = CLNET_ARG_ULONG(out->numel);
    if (with_alpha)
        a[n++] = CLNET_ARG_FLOAT(alpha);
    return clnet__run1d(op->ctx, op->func, "act", kernel, out->numel, n, a);
}

/* The identity: out = in, nothing to do when they are the same elements. */
static clnet_status copy_or_nothing(const clnet__op *op, clnet_tensor *out, const clnet_tensor *in)
{
    if (out->storage == in->storage && out->offset == in->offset)
        return CLNET_OK;
    return launch_elementwise(op, "act_copy", out, in, NULL, 0, 0.0f);
}

CLNET_API clnet_status clnet_activation_forward(clnet_activation act, float alpha,
                                                const clnet_tensor *x, clnet_tensor *y)
{
    static const char *const kernels[] = {
        NULL,           "relu_forward",  "leaky_relu_forward", "sigmoid_forward",
        "tanh_forward", "relu6_forward", "hard_swish_forward"
    };
    static const clnet__tspec spec[] = {
        { .name = "x" },
        { .name = "y", .flags = CLNET_T_OUT, .size_of = CLNET_SIZE_OF(0), .alias = CLNET_ALIAS(0) },
    };
    clnet__op op;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, x, y)) || (st = check_act(&op, act)) ||
        y->numel == 0)
        return st;
    if (act == CLNET_ACT_NONE)
        return copy_or_nothing(&op, y, x);
    return launch_elementwise(&op, kernels[act], y, x, NULL, act == CLNET_ACT_LEAKY_RELU, alpha);
}

CLNET_API clnet_status clnet_activation_backward(clnet_activation act, float alpha,
                                                 const clnet_tensor *x, const clnet_tensor *y,
                                                 const clnet_tensor *dy, clnet_tensor *dx)
{
    static const char *const kernels[] = { NULL,
                                           "relu_backward",
                                           "leaky_relu_backward",
                                           "sigmoid_backward",
                                           "tanh_backward",
                                           "relu6_backward",
                                           "hard_swish_backward" };
    /* x and y are optional to the table; the one this activation reads is
     * required below. Given but unused, the other is still checked. */
    static const clnet__tspec spec[] = {
        { .name = "dx",
          .flags = CLNET_T_OUT,
          .alias = CLNET_ALIAS(1) | CLNET_ALIAS(2) | CLNET_ALIAS(3) },
        { .name = "dy", .size_of = CLNET_SIZE_OF(0) },
        { .name = "x", .flags = CLNET_T_OPTIONAL, .size_of = CLNET_SIZE_OF(0) },
        { .name = "y", .flags = CLNET_T_OPTIONAL, .size_of = CLNET_SIZE_OF(0) },
    };
    clnet__op op;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, dx, dy, x, y)) || (st = check_act(&op, act)))
        return st;
    int from_y = act == CLNET_ACT_SIGMOID || act == CLNET_ACT_TANH;
    const clnet_tensor *saved = from_y ? y : x;
    if (act != CLNET_ACT_NONE && !saved)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG,
                              "%s: must not be NULL (%s backward reads %s)", from_y ? "y" : "x",
                              act_names[act], from_y ? "y" : "x");
    if (dx->numel == 0)
        return CLNET_OK;
    if (act == CLNET_ACT_NONE)
        return copy_or_nothing(&op, dx, dy);
    return launch_elementwise(&op, kernels[act], dx, saved, dy, act == CLNET_ACT_LEAKY_RELU, alpha);
}

/* ---- softmax --------------------------------------------------------------- */

/* x viewed as (rows, cols) over its last axis; cols fits an int. */
static clnet_status rows_cols(const clnet__op *op, const clnet_tensor *x, size_t *rows, int *cols)
{
    int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1;
    if (c > 0x7fffffff)
        return clnet__op_fail(op, CLNET_ERR_TOO_LARGE,
                              "the last axis has %lld entries, more than 2^31 - 1", (long long)c);
    *cols = (int)c;
    *rows = c ? x->numel / (size_t)c : 0;
    return CLNET_OK;
}

/* Runs a row kernel, chosen by `variant`: rows work-items, or rows
 * work-groups. A row per work-group once the row fills one; shorter rows
 * take a lane each. */
static clnet_status launch_rows(const clnet__op *op, const char *base, const char *variant,
                                size_t rows, int cols, int nargs, const clnet__arg *a)
{
    size_t wg = clnet__context_profile(op->ctx)->wg_size;
    int v =
        clnet__variant(op->ctx, variant, (size_t)cols > wg ? CLNET_V_ROW_GROUP : CLNET_V_ROW_ITEM);
    char name[64];
    snprintf(name, sizeof name, "%s_%s", base, v == CLNET_V_ROW_GROUP ? "group" : "item");
    if (v != CLNET_V_ROW_GROUP)
        return clnet__run1d(op->ctx, op->func, "act", name, rows, nargs, a);
    cl_kernel k;
    clnet_status st = clnet__kernel(op->ctx, "act", NULL, name, &k);
    size_t global = rows * wg;
    return st ? st : clnet__launch(op->ctx, k, op->func, nargs, a, 1, &global, &wg);
}

/* x, y: one shape; y may be x. */
static const clnet__tspec unary_spec[] = {
    { .name = "x" },
    { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0) },
};

/* y, dy, dx: one shape; dx may be dy or y. */
static const clnet__tspec backward_spec[] = {
    { .name = "y" },
    { .name = "dy", .like = CLNET_LIKE(0) },
    { .name = "dx",
      .flags = CLNET_T_OUT,
      .like = CLNET_LIKE(0),
      .alias = CLNET_ALIAS(0) | CLNET_ALIAS(1) },
};

static clnet_status softmax_fwd(const char *func, int log_, const clnet_tensor *x, clnet_tensor *y)
{
    clnet__op op;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, func, unary_spec, x, y)) || x->numel == 0 ||
        (st = rows_cols(&op, x, &rows, &cols)))
        return st;
    return launch_rows(&op, "softmax_forward", "softmax.forward", rows, cols,
                       CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(y), CLNET_ARG_ULONG(rows),
                                  CLNET_ARG_INT(cols), CLNET_ARG_INT(log_)));
}

static clnet_status softmax_bwd(const char *func, int log_, const clnet_tensor *y,
                                const clnet_tensor *dy, clnet_tensor *dx)
{
    clnet__op op;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, func, backward_spec, y, dy, dx)) || y->numel == 0 ||
        (st = rows_cols(&op, y, &rows, &cols)))
        return st;
    return launch_rows(&op, "softmax_backward", "softmax.backward", rows, cols,
                       CLNET_ARGS(CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(dy), CLNET_ARG_TENSOR(dx),
                                  CLNET_ARG_ULONG(rows), CLNET_ARG_INT(cols), CLNET_ARG_INT(log_)));
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
static clnet_status channel_dims(const clnet__op *op, const clnet_tensor *x, int *c,
                                 size_t *columns, size_t *s)
{
    char buf[96];
    if (x->ndim < 2 || x->shape[1] > 0x7fffffff)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "%s: shape %s but expected (n, channels, ...)",
                              op->spec[0].name, clnet__tensor_shape_str(x, buf, sizeof buf));
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
    clnet__op op;
    int c = 0;
    size_t columns = 0, s = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, unary_spec, x, y)) ||
        (st = channel_dims(&op, x, &c, &columns, &s)) || x->numel == 0)
        return st;
    return CLNET_RUN1D(op.ctx, op.func, "act", "softmax_channels_forward", columns,
                       CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(y), CLNET_ARG_ULONG(columns),
                       CLNET_ARG_INT(c), CLNET_ARG_ULONG(s));
}

CLNET_API clnet_status clnet_softmax_channels_backward(const clnet_tensor *y,
                                                       const clnet_tensor *dy, clnet_tensor *dx)
{
    clnet__op op;
    int c = 0;
    size_t columns = 0, s = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, backward_spec, y, dy, dx)) ||
        (st = channel_dims(&op, y, &c, &columns, &s)) || y->numel == 0)
        return st;
    return CLNET_RUN1D(op.ctx, op.func, "act", "softmax_channels_backward", columns,
                       CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(dy), CLNET_ARG_TENSOR(dx),
                       CLNET_ARG_ULONG(columns), CLNET_ARG_INT(c), CLNET_ARG_ULONG(s));
}

/* ---- bias ---------------------------------------------------------------- */

/* Tensor 0 as (n, c, hw) with the channel axis dim 1; tensor bi holds c
 * elements. */
static clnet_status bias_dims(const clnet__op *op, int bi, int *c, size_t *hw)
{
    const clnet_tensor *x = op->t[0];
    const char *xname = op->spec[0].name;
    char s[96];
    if (x->ndim < 2)
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "%s: shape %s but expected at least 2 dims (N, C, ...) or (N, F)",
                              xname, clnet__tensor_shape_str(x, s, sizeof s));
    if (x->shape[1] > 0x7fffffff)
        return clnet__op_fail(op, CLNET_ERR_TOO_LARGE, "%s: more than 2^31 - 1 channels", xname);
    *c = (int)x->shape[1];
    *hw = 1;
    for (int i = 2; i < x->ndim; i++)
        *hw *= (size_t)x->shape[i];
    if (op->t[bi]->numel != (size_t)*c)
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "%s: holds %zu elements, expected %d (the channels of %s, %s)",
                              op->spec[bi].name, op->t[bi]->numel, *c, xname,
                              clnet__tensor_shape_str(x, s, sizeof s));
    return CLNET_OK;
}

CLNET_API clnet_status clnet_bias_add(const clnet_tensor *x, const clnet_tensor *b, clnet_tensor *y)
{
    static const clnet__tspec spec[] = {
        { .name = "x" },
        { .name = "b" },
        { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0) },
    };
    clnet__op op;
    int c;
    size_t hw;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, x, b, y)) || (st = bias_dims(&op, 1, &c, &hw)))
        return st;
    return CLNET_RUN1D(op.ctx, op.func, "act", "bias_add", y->numel, CLNET_ARG_TENSOR(y),
                       CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(b), CLNET_ARG_ULONG(y->numel),
                       CLNET_ARG_INT(c), CLNET_ARG_ULONG(hw));
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
static clnet_status bias_backward_planes(const clnet__op *op, const clnet_tensor *dy,
                                         clnet_tensor *db, int c, size_t hw)
{
    size_t n = dy->numel / ((size_t)c * hw), run = hw < BIAS_RUN ? hw : BIAS_RUN;
    size_t runs = (hw + run - 1) / run, parts = n * runs;
    cl_mem part;
    clnet_status st;
    if ((st = clnet__workspace(op->ctx, parts * (size_t)c * sizeof(float), &part)) ||
        (st = CLNET_RUN1D(op->ctx, op->func, "act", "bias_backward_planes", parts * (size_t)c,
                          CLNET_ARG_TENSOR(dy), CLNET_ARG_INT(c), CLNET_ARG_ULONG(hw),
                          CLNET_ARG_ULONG(n), CLNET_ARG_ULONG(run), CLNET_ARG_MEM(part),
                          CLNET_ARG_ULONG(0))))
        return st;
    return CLNET_RUN1D(op->ctx, op->func, "act", "bias_backward_final", (size_t)c,
                       CLNET_ARG_MEM(part), CLNET_ARG_ULONG(0), CLNET_ARG_UINT((cl_uint)parts),
                       CLNET_ARG_INT(c), CLNET_ARG_TENSOR(db));
}

CLNET_API clnet_status clnet_bias_backward(const clnet_tensor *dy, clnet_tensor *db)
{
    static const clnet__tspec spec[] = { { .name = "dy" }, { .name = "db", .flags = CLNET_T_OUT } };
    clnet__op op;
    int c;
    size_t hw;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, dy, db)) || (st = bias_dims(&op, 1, &c, &hw)) ||
        c == 0)
        return st;
    if (dy->numel == 0) /* no images or no pixels: every channel sums to 0 */
        return clnet_tensor_fill(db, 0.0);
    int cpu = clnet__context_profile(op.ctx)->info.type == CLNET_DEVICE_CPU;
    int v = clnet__variant(op.ctx, "bias.backward",
                           cpu && hw >= BIAS_PLANE_MIN ? CLNET_V_BIAS_PLANES : CLNET_V_BIAS_GROUPS);
    if (v == CLNET_V_BIAS_PLANES &&
        dy->numel / ((size_t)c * hw) * ((hw + BIAS_RUN - 1) / BIAS_RUN) < UINT32_MAX)
        return bias_backward_planes(&op, dy, db, c, hw);
    size_t wg = clnet__context_profile(op.ctx)->wg_size, m = dy->numel / (size_t)c;
    size_t chunks = (m + wg * BIAS_PER_LANE - 1) / (wg * BIAS_PER_LANE);
    if (chunks > BIAS_MAX_CHUNKS)
        chunks = BIAS_MAX_CHUNKS;
    cl_kernel k1;
    cl_mem part = clnet__mem(db);
    size_t po = db->offset;
    if ((st = clnet__kernel(op.ctx, "act", NULL, "bias_backward_partial", &k1)) ||
        (chunks > 1 && (st = clnet__workspace(op.ctx, chunks * (size_t)c * sizeof(float), &part))))
        return st;
    if (chunks > 1)
        po = 0;
    size_t global = chunks * (size_t)c * wg;
    if ((st = clnet__launch(op.ctx, k1, op.func,
                            CLNET_ARGS(CLNET_ARG_TENSOR(dy), CLNET_ARG_INT(c), CLNET_ARG_ULONG(hw),
                                       CLNET_ARG_ULONG(m), CLNET_ARG_UINT(chunks),
                                       CLNET_ARG_MEM(part), CLNET_ARG_ULONG(po)),
                            1, &global, &wg)) ||
        chunks == 1)
        return st;
    return CLNET_RUN1D(op.ctx, op.func, "act", "bias_backward_final", (size_t)c,
                       CLNET_ARG_MEM(part), CLNET_ARG_ULONG(0), CLNET_ARG_UINT(chunks),
                       CLNET_ARG_INT(c), CLNET_ARG_TENSOR(db));
}
