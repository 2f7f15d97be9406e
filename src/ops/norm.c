/* clnet — batch normalization and dropout (cl/norm.cl): argument checks,
 * the workspace layout of the two-stage channel reductions, and launches. */
#include <math.h>
#include <stdio.h>

#include "clnet/norm.h"
#include "ops/op.h"

/* Which optional tensors are present (keep in sync with cl/norm.cl). */
enum {
    BN_GAMMA = 1,
    BN_BETA = 2,
    BN_RMEAN = 4,
    BN_RVAR = 8,
    BN_DGAMMA = 16,
    BN_DBETA = 32,
    BN_TRAINING = 64
};

/* At most this many work-groups share one channel in stage 1; stage 2 then
 * merges at most this many partials per channel in one work-item. */
#define MAX_GROUPS_PER_CHANNEL 64
/* Elements per work-item below which a channel gets no extra group. */
#define ELEMS_PER_ITEM 32

/* ---- Shapes and arguments ---------------------------------------------------- */

/* x viewed as (n, c, hw): m = n * hw values per channel. */
typedef struct bn_layout {
    size_t numel, hw, m;
    int c;
} bn_layout;

/* x (tensor 0) as (n, c, hw); then every tensor in vecs (indices, -1
 * ends) that is given must be (c). */
static clnet_status check_layout(const clnet__op *op, const int *vecs, bn_layout *l)
{
    const clnet_tensor *x = op->t[0];
    char s[96];
    if (x->ndim < 2)
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "x: shape %s but expected (N, C, ...) with at least 2 dims",
                              clnet__tensor_shape_str(x, s, sizeof s));
    if (x->shape[1] > INT32_MAX)
        return clnet__op_fail(op, CLNET_ERR_TOO_LARGE, "x: %lld channels (at most %d)",
                              (long long)x->shape[1], (int)INT32_MAX);
    l->numel = x->numel;
    l->c = (int)x->shape[1];
    l->hw = 1;
    for (int i = 2; i < x->ndim; i++)
        l->hw *= (size_t)x->shape[i];
    l->m = (size_t)x->shape[0] * l->hw;
    clnet_status st = CLNET_OK;
    for (int i = 0; vecs[i] >= 0 && !st; i++)
        st = clnet__op_want_shape(op, vecs[i], 1, &x->shape[1]);
    return st;
}

static clnet_status check_params(const clnet__op *op, const clnet_batchnorm_params *in,
                                 clnet_batchnorm_params *out)
{
    *out = in ? *in : CLNET_BATCHNORM_PARAMS_DEFAULT;
    if (!(out->eps >= 0.0f) || !isfinite(out->eps))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: eps (%g) must be finite and >= 0",
                              (double)out->eps);
    if (!(out->momentum >= 0.0f && out->momentum <= 1.0f))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: momentum (%g) must be in [0, 1]",
                              (double)out->momentum);
    return CLNET_OK;
}

/* Per-channel tensors: optional inputs, and outputs that overlap nothing. */
#define VEC_IN(n)                                                                                  \
    {                                                                                              \
        .name = n, .flags = CLNET_T_OPTIONAL                                                       \
    }
#define VEC_OUT(n)                                                                                 \
    {                                                                                              \
        .name = n, .flags = CLNET_T_OUT | CLNET_T_OPTIONAL                                         \
    }

/* ---- Launch helpers -------------------------------------------------------------- */

/* Groups per channel: enough that every work-item has ELEMS_PER_ITEM values
 * or the channel is split MAX_GROUPS_PER_CHANNEL ways. Depends on the shape
 * and the device's work-group size only, so results are reproducible. */
static int groups_per_channel(clnet_context *ctx, size_t m)
{
    size_t per_group = clnet__context_profile(ctx)->wg_size * ELEMS_PER_ITEM;
    size_t g = (m + per_group - 1) / per_group;
    return g < 1 ? 1 : g > MAX_GROUPS_PER_CHANNEL ? MAX_GROUPS_PER_CHANNEL : (int)g;
}

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A tensor's (buffer, offset) pair, or the fallback buffer when t is NULL
 * (the kernel is told by a flag not to touch it). */
#define TARG(t, fb)                                                                                \
    CLNET_ARG_MEM((t) ? clnet__mem(t) : (fb)), CLNET_ARG_ULONG((t) ? (t)->offset : 0)

static clnet_status launch(clnet_context *ctx, const char *kernel, const char *func, int nargs,
                           const clnet__arg *args, size_t n)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "norm", NULL, kernel, &k);
    return st ? st : clnet__launch1d(ctx, k, func, nargs, args, n);
}

/* The apply kernels' elements per work-item (cl/norm.cl plane_run): a run of
 * up to 256 elements of one plane on CPUs (CLNET_V_APPLY_RUN: one division per run,
 * a loop the compiler vectorizes; 7-10x faster on pocl), one element per
 * work-item elsewhere (CLNET_V_APPLY_ELEMENT). Variant "batchnorm.apply". */
#define APPLY_RUN_LENGTH 256

/* Launches an apply kernel whose last argument is the run length. */
static clnet_status launch_apply(clnet_context *ctx, const char *kernel, const char *func,
                                 int nargs, clnet__arg *args, const bn_layout *l)
{
    int cpu = clnet__context_profile(ctx)->info.type == CLNET_DEVICE_CPU;
    int v = clnet__variant(ctx, "batchnorm.apply", cpu ? CLNET_V_APPLY_RUN : CLNET_V_APPLY_ELEMENT);
    size_t run = v == CLNET_V_APPLY_RUN ? APPLY_RUN_LENGTH : 1;
    if (run > l->hw)
        run = l->hw ? l->hw : 1;
    args[nargs - 1] = CLNET_ARG_ULONG(run);
    size_t planes = l->hw ? l->numel / l->hw : 0;
    return launch(ctx, kernel, func, nargs, args, planes * ((l->hw + run - 1) / run));
}

/* The apply kernel y = gamma * (x - mean) * invstd + beta, with mean and
 * invstd at (stats, mo) and (stats, io). */
static clnet_status forward_apply(clnet_context *ctx, const char *func, const bn_layout *l,
                                  const clnet_tensor *x, const clnet_tensor *gamma,
                                  const clnet_tensor *beta, clnet_tensor *y, cl_mem mean, size_t mo,
                                  cl_mem invstd, size_t io)
{
    int flags = (gamma ? BN_GAMMA : 0) | (beta ? BN_BETA : 0);
    clnet__arg a[] = { TARG(x, NULL),          TARG(y, NULL),         CLNET_ARG_ULONG(l->numel),
                       CLNET_ARG_ULONG(l->hw), CLNET_ARG_INT(l->c),   CLNET_ARG_MEM(mean),
                       CLNET_ARG_ULONG(mo),    CLNET_ARG_MEM(invstd), CLNET_ARG_ULONG(io),
                       TARG(gamma, mean),      TARG(beta, mean),      CLNET_ARG_INT(flags),
                       CLNET_ARG_ULONG(0) };
    return launch_apply(ctx, "bn_forward_apply", func, NARGS(a), a, l);
}

/* ---- Batch normalization ------------------------------------------------------------ */

/* One pass of per-channel sums into the workspace partials (at 0): of x
 * (centered == 0) or of x - mu0 and its square, mu0 at (ws, uo). */
static clnet_status stats_pass(clnet_context *ctx, const char *func, const bn_layout *l,
                               const clnet_tensor *x, int G, cl_mem ws, size_t uo, int centered)
{
    size_t wg = clnet__context_profile(ctx)->wg_size;
    clnet__arg a[] = { TARG(x, NULL),       CLNET_ARG_ULONG(l->m),   CLNET_ARG_ULONG(l->hw),
                       CLNET_ARG_INT(l->c), CLNET_ARG_INT(G),        CLNET_ARG_MEM(ws),
                       CLNET_ARG_ULONG(uo), CLNET_ARG_INT(centered), CLNET_ARG_MEM(ws),
                       CLNET_ARG_ULONG(0) };
    return launch(ctx, "bn_stats_partial", func, NARGS(a), a, (size_t)l->c * (size_t)G * wg);
}

/* Where the per-channel mean and invstd go (and are read from). */
typedef struct bn_stats {
    cl_mem mean;
    size_t mo;
    cl_mem invstd;
    size_t io;
} bn_stats;

/* The batch statistics: pass 1 and the provisional mean mu0 (at ws + uo),
 * pass 2 and the final mean, invstd and running statistics. */
static clnet_status batch_stats(clnet_context *ctx, const char *func,
                                const clnet_batchnorm_params *p, const bn_layout *l,
                                const clnet_tensor *x, int G, cl_mem ws, size_t uo,
                                const bn_stats *out, clnet_tensor *running_mean,
                                clnet_tensor *running_var)
{
    size_t C = (size_t)l->c;
    clnet__arg a1[] = { CLNET_ARG_MEM(ws),  CLNET_ARG_ULONG(0),    CLNET_ARG_INT(l->c),
                        CLNET_ARG_INT(G),   CLNET_ARG_ULONG(l->m), CLNET_ARG_MEM(ws),
                        CLNET_ARG_ULONG(uo) };
    clnet_status st;
    if ((st = stats_pass(ctx, func, l, x, G, ws, uo, 0)) ||
        (st = launch(ctx, "bn_mean_final", func, NARGS(a1), a1, C)) ||
        (st = stats_pass(ctx, func, l, x, G, ws, uo, 1)))
        return st;
    int flags = (running_mean ? BN_RMEAN : 0) | (running_var ? BN_RVAR : 0);
    clnet__arg a2[] = {
        CLNET_ARG_MEM(ws),          CLNET_ARG_ULONG(0),       CLNET_ARG_INT(l->c),
        CLNET_ARG_INT(G),           CLNET_ARG_ULONG(l->m),    CLNET_ARG_MEM(ws),
        CLNET_ARG_ULONG(uo),        CLNET_ARG_FLOAT(p->eps),  CLNET_ARG_FLOAT(p->momentum),
        CLNET_ARG_INT(flags),       CLNET_ARG_MEM(out->mean), CLNET_ARG_ULONG(out->mo),
        CLNET_ARG_MEM(out->invstd), CLNET_ARG_ULONG(out->io), TARG(running_mean, ws),
        TARG(running_var, ws)
    };
    return launch(ctx, "bn_stats_final", func, NARGS(a2), a2, C);
}

CLNET_API clnet_status clnet_batchnorm_forward_training(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *gamma,
    const clnet_tensor *beta, clnet_tensor *y, clnet_tensor *running_mean,
    clnet_tensor *running_var, clnet_tensor *save_mean, clnet_tensor *save_invstd)
{
    const char *func = __func__;
    static const clnet__tspec spec[] = {
        { .name = "x" },
        VEC_IN("gamma"),
        VEC_IN("beta"),
        { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0) },
        VEC_OUT("running_mean"),
        VEC_OUT("running_var"),
        VEC_OUT("save_mean"),
        VEC_OUT("save_invstd"),
    };
    static const int vecs[] = { 1, 2, 4, 5, 6, 7, -1 };
    clnet__op op;
    clnet_batchnorm_params p;
    bn_layout l;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, func, spec, x, gamma, beta, y, running_mean, running_var,
                             save_mean, save_invstd)) ||
        (st = check_params(&op, params, &p)) || (st = check_layout(&op, vecs, &l)))
        return st;
    clnet_context *ctx = op.ctx;
    if (l.numel == 0)
        return CLNET_OK;
    char s[96];
    if (l.m < 2)
        return clnet__op_fail(&op, CLNET_ERR_SHAPE,
                              "x: shape %s: training needs at least 2 values per channel "
                              "(N * HW = %zu)",
                              clnet__tensor_shape_str(x, s, sizeof s), l.m);
    int G = groups_per_channel(ctx, l.m);
    size_t C = (size_t)l.c;
    /* Workspace: 2 floats per partial, mu0, then the mean and invstd
     * fallbacks for a NULL save_mean or save_invstd. */
    size_t uo = 2 * C * (size_t)G, mo = uo + C, io = mo + C;
    cl_mem ws;
    if ((st = clnet__workspace(ctx, (io + C) * sizeof(float), &ws)))
        return st;
    bn_stats out = { save_mean ? clnet__mem(save_mean) : ws, save_mean ? save_mean->offset : mo,
                     save_invstd ? clnet__mem(save_invstd) : ws,
                     save_invstd ? save_invstd->offset : io };
    if ((st = batch_stats(ctx, func, &p, &l, x, G, ws, uo, &out, running_mean, running_var)))
        return st;
    return forward_apply(ctx, func, &l, x, gamma, beta, y, out.mean, out.mo, out.invstd, out.io);
}

/* Writes mean = running_mean and invstd = 1 / sqrt(running_var + eps) to the
 * workspace: the mean at so, invstd at so + C. */
static clnet_status infer_stats(clnet_context *ctx, const char *func, float eps, int c,
                                const clnet_tensor *running_mean, const clnet_tensor *running_var,
                                cl_mem ws, size_t so)
{
    clnet__arg a[] = { TARG(running_mean, NULL), TARG(running_var, NULL),
                       CLNET_ARG_INT(c),         CLNET_ARG_FLOAT(eps),
                       CLNET_ARG_MEM(ws),        CLNET_ARG_ULONG(so),
                       CLNET_ARG_MEM(ws),        CLNET_ARG_ULONG(so + (size_t)c) };
    return launch(ctx, "bn_infer_stats", func, NARGS(a), a, (size_t)c);
}

CLNET_API clnet_status clnet_batchnorm_forward_inference(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *gamma,
    const clnet_tensor *beta, const clnet_tensor *running_mean, const clnet_tensor *running_var,
    clnet_tensor *y)
{
    const char *func = __func__;
    static const clnet__tspec spec[] = {
        { .name = "x" },
        VEC_IN("gamma"),
        VEC_IN("beta"),
        { .name = "running_mean" },
        { .name = "running_var" },
        { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0) },
    };
    static const int vecs[] = { 1, 2, 3, 4, -1 };
    clnet__op op;
    clnet_batchnorm_params p;
    bn_layout l;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, func, spec, x, gamma, beta, running_mean, running_var, y)) ||
        (st = check_params(&op, params, &p)) || (st = check_layout(&op, vecs, &l)))
        return st;
    clnet_context *ctx = op.ctx;
    if (l.numel == 0)
        return CLNET_OK;
    cl_mem ws;
    size_t C = (size_t)l.c;
    if ((st = clnet__workspace(ctx, 2 * C * sizeof(float), &ws)) ||
        (st = infer_stats(ctx, func, p.eps, l.c, running_mean, running_var, ws, 0)))
        return st;
    return forward_apply(ctx, func, &l, x, gamma, beta, y, ws, 0, ws, C);
}

/* The three launches of a backward pass once the mean and invstd are in
 * device memory (at sv): gradient sums, their per-channel totals, dx. ws holds
 * the partials at 0 and the dx coefficients (3 per channel) after them. */
static clnet_status backward_common(clnet_context *ctx, const char *func, const bn_layout *l,
                                    int training, const clnet_tensor *x, const clnet_tensor *dy,
                                    const clnet_tensor *gamma, const bn_stats *sv, clnet_tensor *dx,
                                    clnet_tensor *dgamma, clnet_tensor *dbeta, cl_mem ws, int G)
{
    size_t wg = clnet__context_profile(ctx)->wg_size, C = (size_t)l->c;
    cl_mem mean = sv->mean, invstd = sv->invstd;
    size_t mo = sv->mo, io = sv->io;
    size_t co = 2 * C * (size_t)G;
    clnet__arg a1[] = { TARG(x, NULL),          TARG(dy, NULL),      CLNET_ARG_ULONG(l->m),
                        CLNET_ARG_ULONG(l->hw), CLNET_ARG_INT(l->c), CLNET_ARG_INT(G),
                        CLNET_ARG_MEM(mean),    CLNET_ARG_ULONG(mo), CLNET_ARG_MEM(invstd),
                        CLNET_ARG_ULONG(io),    CLNET_ARG_MEM(ws),   CLNET_ARG_ULONG(0) };
    clnet_status st = launch(ctx, "bn_grad_partial", func, NARGS(a1), a1, C * (size_t)G * wg);
    if (st)
        return st;
    int flags = (gamma ? BN_GAMMA : 0) | (dgamma ? BN_DGAMMA : 0) | (dbeta ? BN_DBETA : 0) |
                (training ? BN_TRAINING : 0);
    clnet__arg a2[] = { CLNET_ARG_MEM(ws),  CLNET_ARG_ULONG(0),    CLNET_ARG_INT(l->c),
                        CLNET_ARG_INT(G),   CLNET_ARG_ULONG(l->m), CLNET_ARG_INT(flags),
                        TARG(gamma, ws),    CLNET_ARG_MEM(invstd), CLNET_ARG_ULONG(io),
                        TARG(dgamma, ws),   TARG(dbeta, ws),       CLNET_ARG_MEM(ws),
                        CLNET_ARG_ULONG(co) };
    if ((st = launch(ctx, "bn_grad_final", func, NARGS(a2), a2, C)))
        return st;
    clnet__arg a3[] = {
        TARG(x, NULL),          TARG(dy, NULL),      TARG(dx, NULL),      CLNET_ARG_ULONG(l->numel),
        CLNET_ARG_ULONG(l->hw), CLNET_ARG_INT(l->c), CLNET_ARG_MEM(mean), CLNET_ARG_ULONG(mo),
        CLNET_ARG_MEM(invstd),  CLNET_ARG_ULONG(io), CLNET_ARG_MEM(ws),   CLNET_ARG_ULONG(co),
        CLNET_ARG_INT(flags),   CLNET_ARG_ULONG(0)
    };
    return launch_apply(ctx, "bn_backward_apply", func, NARGS(a3), a3, l);
}

/* Both backward calls: x, dy, gamma, the saved or the running statistics,
 * then dx (which may be x or dy, exactly), dgamma and dbeta. */
#define BACKWARD_SPEC(mean, var)                                                                   \
    {                                                                                              \
        { .name = "x" }, { .name = "dy", .like = CLNET_LIKE(0) }, VEC_IN("gamma"),                 \
            { .name = mean }, { .name = var },                                                     \
            { .name = "dx",                                                                        \
              .flags = CLNET_T_OUT,                                                                \
              .like = CLNET_LIKE(0),                                                               \
              .alias = CLNET_ALIAS(0) | CLNET_ALIAS(1) },                                          \
            VEC_OUT("dgamma"), VEC_OUT("dbeta"),                                                   \
    }

static clnet_status backward_checks(clnet__op *op, const char *func, const clnet__tspec *spec,
                                    const clnet_tensor *const ts[8],
                                    const clnet_batchnorm_params *params, clnet_batchnorm_params *p,
                                    bn_layout *l)
{
    static const int vecs[] = { 2, 3, 4, 6, 7, -1 };
    clnet_status st;
    if ((st = clnet__op_check(op, func, spec, 8, ts)) || (st = check_params(op, params, p)))
        return st;
    return check_layout(op, vecs, l);
}

CLNET_API clnet_status clnet_batchnorm_backward(const clnet_batchnorm_params *params,
                                                const clnet_tensor *x, const clnet_tensor *dy,
                                                const clnet_tensor *gamma,
                                                const clnet_tensor *save_mean,
                                                const clnet_tensor *save_invstd, clnet_tensor *dx,
                                                clnet_tensor *dgamma, clnet_tensor *dbeta)
{
    const char *func = __func__;
    static const clnet__tspec spec[] = BACKWARD_SPEC("save_mean", "save_invstd");
    clnet__op op;
    clnet_batchnorm_params p;
    bn_layout l;
    clnet_status st = backward_checks(
        &op, func, spec,
        (const clnet_tensor *const[]){ x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta },
        params, &p, &l);
    if (st || l.numel == 0)
        return st;
    clnet_context *ctx = op.ctx;
    int G = groups_per_channel(ctx, l.m);
    cl_mem ws;
    if ((st = clnet__workspace(ctx, (2 * (size_t)G + 3) * (size_t)l.c * sizeof(float), &ws)))
        return st;
    bn_stats sv = { clnet__mem(save_mean), save_mean->offset, clnet__mem(save_invstd),
                    save_invstd->offset };
    return backward_common(ctx, func, &l, 1, x, dy, gamma, &sv, dx, dgamma, dbeta, ws, G);
}

CLNET_API clnet_status clnet_batchnorm_backward_inference(
    const clnet_batchnorm_params *params, const clnet_tensor *x, const clnet_tensor *dy,
    const clnet_tensor *gamma, const clnet_tensor *running_mean, const clnet_tensor *running_var,
    clnet_tensor *dx, clnet_tensor *dgamma, clnet_tensor *dbeta)
{
    const char *func = __func__;
    static const clnet__tspec spec[] = BACKWARD_SPEC("running_mean", "running_var");
    clnet__op op;
    clnet_batchnorm_params p;
    bn_layout l;
    clnet_status st = backward_checks(
        &op, func, spec,
        (const clnet_tensor *const[]){ x, dy, gamma, running_mean, running_var, dx, dgamma, dbeta },
        params, &p, &l);
    if (st || l.numel == 0)
        return st;
    clnet_context *ctx = op.ctx;
    int G = groups_per_channel(ctx, l.m);
    size_t C = (size_t)l.c;
    /* Workspace: partials, dx coefficients, then mean and invstd. */
    size_t so = (2 * (size_t)G + 3) * C;
    cl_mem ws;
    if ((st = clnet__workspace(ctx, (so + 2 * C) * sizeof(float), &ws)) ||
        (st = infer_stats(ctx, func, p.eps, l.c, running_mean, running_var, ws, so)))
        return st;
    bn_stats sv = { ws, so, ws, so + C };
    return backward_common(ctx, func, &l, 0, x, dy, gamma, &sv, dx, dgamma, dbeta, ws, G);
}

/* ---- Dropout ---------------------------------------------------------------------- */

/* x, then y (which may be x exactly) and the optional mask, all one size. */
#define DROPOUT_SPEC(x, y)                                                                         \
    {                                                                                              \
        { .name = x },                                                                             \
            { .name = y,                                                                           \
              .flags = CLNET_T_OUT,                                                                \
              .size_of = CLNET_SIZE_OF(0),                                                         \
              .alias = CLNET_ALIAS(0) },                                                           \
            { .name = "mask",                                                                      \
              .flags = CLNET_T_OUT | CLNET_T_OPTIONAL,                                             \
              .size_of = CLNET_SIZE_OF(0) },                                                       \
    }

static clnet_status dropout(const char *func, const clnet__tspec *spec, float rate, uint64_t seed,
                            uint64_t stream, const clnet_tensor *x, clnet_tensor *y,
                            clnet_tensor *mask)
{
    clnet__op op;
    clnet_status st =
        clnet__op_check(&op, func, spec, 3, (const clnet_tensor *const[]){ x, y, mask });
    if (st)
        return st;
    clnet_context *ctx = op.ctx;
    if (!(rate >= 0.0f && rate <= 1.0f))
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: rate (%g) must be in [0, 1]", (double)rate);
    if (y->numel == 0)
        return CLNET_OK;
    /* Rounded once on the host; the device multiplies (correctly rounded). */
    float scale = rate >= 1.0f ? 0.0f : (float)(1.0 / (1.0 - (double)rate));
    clnet__arg a[] = { TARG(x, NULL),
                       TARG(y, NULL),
                       TARG(mask, clnet__mem(y)),
                       CLNET_ARG_INT(mask != NULL),
                       CLNET_ARG_ULONG(y->numel),
                       CLNET_ARG_UINT(seed),
                       CLNET_ARG_UINT(seed >> 32),
                       CLNET_ARG_UINT(stream),
                       CLNET_ARG_UINT(stream >> 32),
                       CLNET_ARG_FLOAT(rate),
                       CLNET_ARG_FLOAT(scale) };
    return launch(ctx, "dropout", func, NARGS(a), a, (y->numel + 31) / 32);
}

CLNET_API clnet_status clnet_dropout_forward(float rate, uint64_t seed, uint64_t stream,
                                             const clnet_tensor *x, clnet_tensor *y,
                                             clnet_tensor *mask)
{
    static const clnet__tspec spec[] = DROPOUT_SPEC("x", "y");
    return dropout(__func__, spec, rate, seed, stream, x, y, mask);
}

CLNET_API clnet_status clnet_dropout_backward(float rate, uint64_t seed, uint64_t stream,
                                              const clnet_tensor *dy, clnet_tensor *dx)
{
    static const clnet__tspec spec[] = DROPOUT_SPEC("dy", "dx");
    return dropout(__func__, spec, rate, seed, stream, dy, dx, NULL);
}
