/* clnet — optimizer steps and gradient clipping (cl/optim.cl): argument
 * checks, per-step scalars computed on the host, and launches. */
#include <math.h>
#include <stdio.h>

#include "clnet/optim.h"
#include "ops/op.h"

/* Kernel flags (keep in sync with cl/optim.cl). */
enum { OPT_FIRST = 1, OPT_L2 = 2, OPT_MOMENTUM = 4, OPT_NESTEROV = 8, OPT_DECOUPLED = 16 };

/* At most this many partial sums of squares per gradient tensor. */
#define MAX_GROUPS_PER_TENSOR 64

/* ---- Checks ------------------------------------------------------------------ */

/* Every state tensor has the parameter's shape; the step writes the
 * parameter and its state, which overlap nothing. */
#define STATE(n)                                                                                   \
    {                                                                                              \
        .name = n, .flags = CLNET_T_OUT, .like = CLNET_LIKE(0)                                     \
    }

/* A scalar hyper-parameter must lie in [lo, hi] (hi_open: [lo, hi)); NaN never does. */
static clnet_status check_range(const clnet__op *op, const char *name, float x, double lo,
                                double hi, int hi_open)
{
    int ok = x >= lo && (hi_open ? x < hi : x <= hi);
    if (ok)
        return CLNET_OK;
    if (isinf(hi))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "invalid argument: %s (%g) must be >= %g",
                              name, (double)x, lo);
    return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                          "invalid argument: %s (%g) must be in [%g, %g%s", name, (double)x, lo, hi,
                          hi_open ? ")" : "]");
}

static clnet_status check_step(const clnet__op *op, int64_t t)
{
    if (t >= 1)
        return CLNET_OK;
    return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                          "invalid argument: t (%lld) must be >= 1 (the first step is 1)",
                          (long long)t);
}

/* ---- SGD ----------------------------------------------------------------------- */

static clnet_status sgd_checks(const clnet__op *op, const clnet_sgd_params *p, int64_t t)
{
    clnet_status st;
    if ((st = check_range(op, "lr", p->lr, 0, INFINITY, 0)) ||
        (st = check_range(op, "momentum", p->momentum, 0, INFINITY, 0)) ||
        (st = check_range(op, "dampening", p->dampening, 0, 1, 0)) ||
        (st = check_range(op, "weight_decay", p->weight_decay, 0, INFINITY, 0)) ||
        (st = check_step(op, t)))
        return st;
    if (p->nesterov && (p->momentum <= 0.0f || p->dampening != 0.0f))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: nesterov needs momentum > 0 (%g) and dampening 0 "
                              "(%g)",
                              (double)p->momentum, (double)p->dampening);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_sgd_step(const clnet_sgd_params *params, int64_t t,
                                      clnet_tensor *param, const clnet_tensor *grad,
                                      clnet_tensor *momentum_buf)
{
    static const clnet__tspec spec[] = {
        { .name = "param", .flags = CLNET_T_OUT },
        { .name = "grad", .like = CLNET_LIKE(0) },
        { .name = "momentum_buf", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0) },
    };
    clnet_sgd_params p = params ? *params : CLNET_SGD_PARAMS_DEFAULT;
    int momentum = p.momentum > 0.0f;
    clnet__op op;
    clnet_status st;
    /* Without momentum the buffer is neither read nor checked. */
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, param, grad, momentum ? momentum_buf : NULL)) ||
        (st = sgd_checks(&op, &p, t)))
        return st;
    if (momentum && !momentum_buf)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG,
                              "momentum_buf: must not be NULL when momentum is %g",
                              (double)p.momentum);
    int flags = (t == 1 ? OPT_FIRST : 0) | (p.weight_decay != 0.0f ? OPT_L2 : 0) |
                (momentum ? OPT_MOMENTUM : 0) | (p.nesterov ? OPT_NESTEROV : 0);
    const clnet_tensor *buf = momentum ? momentum_buf : param; /* not touched without momentum */
    return CLNET_RUN1D(op.ctx, op.func, "optim", "sgd_step", param->numel, CLNET_ARG_TENSOR(param),
                       CLNET_ARG_TENSOR(grad), CLNET_ARG_TENSOR(buf), CLNET_ARG_ULONG(param->numel),
                       CLNET_ARG_FLOAT(p.lr), CLNET_ARG_FLOAT(p.momentum),
                       CLNET_ARG_FLOAT((float)(1.0 - (double)p.dampening)),
                       CLNET_ARG_FLOAT(p.weight_decay), CLNET_ARG_INT(flags));
}

/* ---- Adam ------------------------------------------------------------------------- */

CLNET_API clnet_status clnet_adam_step(const clnet_adam_params *params, int64_t t,
                                       clnet_tensor *param, const clnet_tensor *grad,
                                       clnet_tensor *m, clnet_tensor *v)
{
    static const clnet__tspec spec[] = {
        { .name = "param", .flags = CLNET_T_OUT },
        { .name = "grad", .like = CLNET_LIKE(0) },
        STATE("m"),
        STATE("v"),
    };
    clnet_adam_params p = params ? *params : CLNET_ADAM_PARAMS_DEFAULT;
    clnet__op op;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, param, grad, m, v)) ||
        (st = check_range(&op, "lr", p.lr, 0, INFINITY, 0)) ||
        (st = check_range(&op, "beta1", p.beta1, 0, 1, 1)) ||
        (st = check_range(&op, "beta2", p.beta2, 0, 1, 1)) ||
        (st = check_range(&op, "eps", p.eps, 0, INFINITY, 0)) ||
        (st = check_range(&op, "weight_decay", p.weight_decay, 0, INFINITY, 0)) ||
        (st = check_step(&op, t)))
        return st;
    /* Per-step scalars in double, rounded once: no pow() per element. */
    double b1 = p.beta1, b2 = p.beta2, td = (double)t;
    double bc1 = 1.0 - pow(b1, td), bc2 = 1.0 - pow(b2, td);
    int l2 = !p.decoupled && p.weight_decay != 0.0f;
    int decoupled = p.decoupled && p.weight_decay != 0.0f;
    int flags = (t == 1 ? OPT_FIRST : 0) | (l2 ? OPT_L2 : 0) | (decoupled ? OPT_DECOUPLED : 0);
    return CLNET_RUN1D(op.ctx, op.func, "optim", "adam_step", param->numel, CLNET_ARG_TENSOR(param),
                       CLNET_ARG_TENSOR(grad), CLNET_ARG_TENSOR(m), CLNET_ARG_TENSOR(v),
                       CLNET_ARG_ULONG(param->numel), CLNET_ARG_FLOAT(p.beta1),
                       CLNET_ARG_FLOAT((float)(1.0 - b1)), CLNET_ARG_FLOAT(p.beta2),
                       CLNET_ARG_FLOAT((float)(1.0 - b2)), CLNET_ARG_FLOAT(p.eps),
                       CLNET_ARG_FLOAT(p.weight_decay),
                       CLNET_ARG_FLOAT((float)(1.0 - (double)p.lr * (double)p.weight_decay)),
                       CLNET_ARG_FLOAT((float)((double)p.lr / bc1)),
                       CLNET_ARG_FLOAT((float)(1.0 / sqrt(bc2))), CLNET_ARG_INT(flags));
}

/* ---- RMSprop ------------------------------------------------------------------------ */

CLNET_API clnet_status clnet_rmsprop_step(const clnet_rmsprop_params *params, clnet_tensor *param,
                                          const clnet_tensor *grad, clnet_tensor *sq_avg)
{
    static const clnet__tspec spec[] = {
        { .name = "param", .flags = CLNET_T_OUT },
        { .name = "grad", .like = CLNET_LIKE(0) },
        STATE("sq_avg"),
    };
    clnet_rmsprop_params p = params ? *params : CLNET_RMSPROP_PARAMS_DEFAULT;
    clnet__op op;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, param, grad, sq_avg)) ||
        (st = check_range(&op, "lr", p.lr, 0, INFINITY, 0)) ||
        (st = check_range(&op, "alpha", p.alpha, 0, 1, 0)) ||
        (st = check_range(&op, "eps", p.eps, 0, INFINITY, 0)) ||
        (st = check_range(&op, "weight_decay", p.weight_decay, 0, INFINITY, 0)))
        return st;
    int flags = p.weight_decay != 0.0f ? OPT_L2 : 0;
    return CLNET_RUN1D(op.ctx, op.func, "optim", "rmsprop_step", param->numel,
                       CLNET_ARG_TENSOR(param), CLNET_ARG_TENSOR(grad), CLNET_ARG_TENSOR(sq_avg),
                       CLNET_ARG_ULONG(param->numel), CLNET_ARG_FLOAT(p.lr),
                       CLNET_ARG_FLOAT(p.alpha), CLNET_ARG_FLOAT((float)(1.0 - (double)p.alpha)),
                       CLNET_ARG_FLOAT(p.eps), CLNET_ARG_FLOAT(p.weight_decay),
                       CLNET_ARG_INT(flags));
}

/* ---- Clipping --------------------------------------------------------------------------- */

/* Partial sums of squares for one tensor: a fixed number of groups. */
static size_t clip_groups(size_t wg, size_t n)
{
    size_t g = (n + wg - 1) / wg;
    return g > MAX_GROUPS_PER_TENSOR ? MAX_GROUPS_PER_TENSOR : g;
}

static clnet_status clip_checks(clnet_context *ctx, const char *func, clnet_tensor *const *grads,
                                int count, float max_norm, const clnet_tensor *total_norm)
{
    if (count < 0 || (count > 0 && !grads))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: count (%d) must "
                            "be >= 0, with grads non-NULL when > 0",
                            func, count);
    if (!(max_norm >= 0.0f))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: max_norm (%g) must be >= 0", func,
                            (double)max_norm);
    for (int i = 0; i < count; i++) {
        const clnet_tensor *g = grads[i];
        if (!g)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                                "%s: invalid argument: grads[%d] is "
                                "NULL",
                                func, i);
        if (g->ctx != ctx)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                                "%s: grads[%d] belongs to another context", func, i);
        if (g->dtype != CLNET_F32)
            return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: grads[%d] must be float32", func, i);
    }
    if (total_norm && total_norm->ctx != ctx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: total_norm belongs to another context",
                            func);
    if (total_norm && (total_norm->dtype != CLNET_F32 || total_norm->numel != 1))
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: total_norm must be one float32 element "
                            "(has %zu)",
                            func, total_norm->numel);
    return CLNET_OK;
}

/* The partials of every tensor, in order, into ws[0 .. *parts). */
static clnet_status clip_partials(clnet_context *ctx, const char *func, clnet_tensor *const *grads,
                                  int count, cl_mem ws)
{
    size_t wg = clnet__context_profile(ctx)->wg_size, at = 0;
    for (int i = 0; i < count; i++) {
        size_t groups = clip_groups(wg, grads[i]->numel);
        if (!groups)
            continue;
        clnet_status st = CLNET_RUN1D(ctx, func, "optim", "sumsq_partial", groups * wg,
                                      CLNET_ARG_TENSOR(grads[i]), CLNET_ARG_ULONG(grads[i]->numel),
                                      CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(at));
        if (st)
            return st;
        at += groups;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_clip_grad_norm(clnet_tensor *const *grads, int count, float max_norm,
                                            clnet_tensor *total_norm)
{
    static const char func[] = "clnet_clip_grad_norm";
    clnet_context *ctx = total_norm ? total_norm->ctx : NULL;
    for (int i = 0; !ctx && grads && i < count; i++)
        ctx = grads[i] ? grads[i]->ctx : NULL;
    CLNET_CHECK_ARG(NULL, ctx != NULL || count == 0);
    if (!ctx)
        return CLNET_OK; /* nothing to clip and no norm wanted */
    clnet_status st = clip_checks(ctx, func, grads, count, max_norm, total_norm);
    if (st)
        return st;
    size_t wg = clnet__context_profile(ctx)->wg_size, parts = 0;
    for (int i = 0; i < count; i++)
        parts += clip_groups(wg, grads[i]->numel);
    if (parts == 0)
        return total_norm ? clnet_tensor_fill(total_norm, 0.0) : CLNET_OK;
    cl_mem ws; /* the partials, then the coefficient */
    if ((st = clnet__workspace(ctx, (parts + 1) * sizeof(float), &ws)) ||
        (st = clip_partials(ctx, func, grads, count, ws)))
        return st;
    cl_mem norm_mem = total_norm ? clnet__mem(total_norm) : ws;
    if ((st = CLNET_RUN1D(ctx, func, "optim", "clip_coef", wg, CLNET_ARG_MEM(ws),
                          CLNET_ARG_ULONG(parts), CLNET_ARG_FLOAT(max_norm), CLNET_ARG_ULONG(parts),
                          CLNET_ARG_MEM(norm_mem),
                          CLNET_ARG_ULONG(total_norm ? total_norm->offset : 0),
                          CLNET_ARG_INT(total_norm != NULL))))
        return st;
    for (int i = 0; i < count; i++)
        if ((st = CLNET_RUN1D(ctx, func, "optim", "clip_apply", grads[i]->numel,
                              CLNET_ARG_TENSOR(grads[i]), CLNET_ARG_ULONG(grads[i]->numel),
                              CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(parts))))
            return st;
    return CLNET_OK;
}
