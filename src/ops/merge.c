/* clnet — graph-model primitives (cl/merge.cl): elementwise merges,
 * concatenation, global average pooling, VAE sampling and the KL term. */
#include <stdio.h>

#include "clnet/merge.h"
#include "tensor/tensor_impl.h"

static const char *const xnames[CLNET_MERGE_MAX_INPUTS] = { "x[0]", "x[1]", "x[2]", "x[3]",
                                                            "x[4]", "x[5]", "x[6]", "x[7]" };
static const char *const dxnames[CLNET_MERGE_MAX_INPUTS] = { "dx[0]", "dx[1]", "dx[2]", "dx[3]",
                                                             "dx[4]", "dx[5]", "dx[6]", "dx[7]" };

static clnet_status run(clnet_context *ctx, const char *func, const char *kernel, int nargs,
                        const clnet__arg *a, size_t items)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "merge", NULL, kernel, &k);
    return st ? st : clnet__launch1d(ctx, k, func, nargs, a, items);
}

/* One tensor: non-NULL, of ctx, float32. */
static clnet_status check_one(clnet_context *ctx, const char *func, const clnet_tensor *t,
                              const char *name)
{
    const clnet_tensor *ts[] = { t };
    const char *names[] = { name };
    return clnet__check_same(ctx, func, 1, ts, names);
}

/* t has ref's exact shape. */
static clnet_status check_shape(clnet_context *ctx, const char *func, const clnet_tensor *t,
                                const char *name, const clnet_tensor *ref, const char *rname)
{
    if (clnet__same_shape(t, ref))
        return CLNET_OK;
    char a[96], b[96];
    return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s (the shape of %s)", func,
                        name, clnet__tensor_shape_str(t, a, sizeof a),
                        clnet__tensor_shape_str(ref, b, sizeof b), rname);
}

/* Every tensor of ts (NULLs skipped) is non-NULL-checked, of ctx, float32
 * and of ts[0]'s shape. */
static clnet_status check_like(clnet_context *ctx, const char *func, int count,
                               const clnet_tensor *const *ts, const char *const *names)
{
    clnet_status st;
    for (int i = 0; i < count; i++)
        if ((i == 0 || ts[i]) && ((st = check_one(ctx, func, ts[i], names[i])) ||
                                  (st = check_shape(ctx, func, ts[i], names[i], ts[0], names[0]))))
            return st;
    return CLNET_OK;
}

/* ---- merges ---------------------------------------------------------------- */

static const char *const merge_names[] = { "add", "subtract", "multiply" };

CLNET_API const char *clnet_merge_op_name(clnet_merge_op op)
{
    return (int)op >= 0 && (int)op < 3 ? merge_names[op] : "unknown";
}

static clnet_status check_merge_op(clnet_context *ctx, const char *func, clnet_merge_op op, int n)
{
    if ((int)op < 0 || (int)op > CLNET_MERGE_MULTIPLY)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: op = %d is not a clnet_merge_op", func, (int)op);
    if (n < 2 || n > CLNET_MERGE_MAX_INPUTS || (op == CLNET_MERGE_SUBTRACT && n != 2))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: n = %d inputs for %s (2%s)", func, n,
                            merge_names[op],
                            op == CLNET_MERGE_SUBTRACT ? " exactly" : " to CLNET_MERGE_MAX_INPUTS");
    return CLNET_OK;
}

/* The kernels' eight input slots: x[0 .. n-1], then `fill` (never read). */
static void merge_slots(int n, const clnet_tensor *const *x, const clnet_tensor *fill,
                        clnet__arg *a)
{
    for (int i = 0; i < CLNET_MERGE_MAX_INPUTS; i++) {
        const clnet_tensor *t = x && i < n ? x[i] : fill;
        a[2 * i] = CLNET_ARG_MEM(clnet__mem(t));
        a[2 * i + 1] = CLNET_ARG_ULONG(t == fill ? 0 : t->offset);
    }
}

CLNET_API clnet_status clnet_merge_forward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                           clnet_tensor *y)
{
    static const char func[] = "clnet_merge_forward";
    clnet_context *ctx = y ? y->ctx : x && n > 0 && x[0] ? x[0]->ctx : NULL;
    CLNET_CHECK_ARG(ctx, y != NULL);
    CLNET_CHECK_ARG(ctx, x != NULL);
    clnet_status st = check_merge_op(ctx, func, op, n);
    if (st || (st = check_one(ctx, func, y, "y")))
        return st;
    for (int i = 0; i < n; i++)
        if ((st = check_one(ctx, func, x[i], xnames[i])) ||
            (st = check_shape(ctx, func, x[i], xnames[i], y, "y")) ||
            (st = clnet__check_overlap(ctx, func, y, "y", x[i], xnames[i], 1)))
            return st;
    if (y->numel == 0)
        return CLNET_OK;
    clnet__arg a[5 + 2 * CLNET_MERGE_MAX_INPUTS] = { CLNET_ARG_MEM(clnet__mem(y)),
                                                     CLNET_ARG_ULONG(y->offset), CLNET_ARG_INT(op),
                                                     CLNET_ARG_INT(n), CLNET_ARG_ULONG(y->numel) };
    merge_slots(n, x, x[0], a + 5);
    return run(ctx, func, "merge_forward", 5 + 2 * CLNET_MERGE_MAX_INPUTS, a, y->numel);
}

CLNET_API clnet_status clnet_merge_backward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                            const clnet_tensor *dy, float beta,
                                            clnet_tensor *const *dx)
{
    static const char func[] = "clnet_merge_backward";
    clnet_context *ctx = dy ? dy->ctx : NULL;
    CLNET_CHECK_ARG(ctx, dy != NULL);
    CLNET_CHECK_ARG(ctx, dx != NULL);
    clnet_status st = check_merge_op(ctx, func, op, n);
    if (st || (st = check_one(ctx, func, dy, "dy")))
        return st;
    if (op == CLNET_MERGE_MULTIPLY && !x)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: x is NULL (multiply's gradient reads x)", func);
    for (int i = 0; x && i < n; i++)
        if ((st = check_one(ctx, func, x[i], xnames[i])) ||
            (st = check_shape(ctx, func, x[i], xnames[i], dy, "dy")))
            return st;
    for (int i = 0; i < n; i++) {
        if (!dx[i])
            continue;
        if ((st = check_one(ctx, func, dx[i], dxnames[i])) ||
            (st = check_shape(ctx, func, dx[i], dxnames[i], dy, "dy")) ||
            (st = clnet__check_overlap(ctx, func, dx[i], dxnames[i], dy, "dy", 0)))
            return st;
        for (int j = 0; j < n; j++)
            if ((x &&
                 (st = clnet__check_overlap(ctx, func, dx[i], dxnames[i], x[j], xnames[j], 0))) ||
                (j != i &&
                 (st = clnet__check_overlap(ctx, func, dx[i], dxnames[i], dx[j], dxnames[j], 1))))
                return st;
    }
    if (dy->numel == 0)
        return CLNET_OK;
    for (int i = 0; i < n; i++) {
        if (!dx[i])
            continue;
        clnet__arg a[9 + 2 * CLNET_MERGE_MAX_INPUTS] = { CLNET_ARG_MEM(clnet__mem(dx[i])),
                                                         CLNET_ARG_ULONG(dx[i]->offset),
                                                         CLNET_ARG_MEM(clnet__mem(dy)),
                                                         CLNET_ARG_ULONG(dy->offset),
                                                         CLNET_ARG_INT(op),
                                                         CLNET_ARG_INT(n),
                                                         CLNET_ARG_INT(i),
                                                         CLNET_ARG_FLOAT(beta),
                                                         CLNET_ARG_ULONG(dy->numel) };
        merge_slots(n, op == CLNET_MERGE_MULTIPLY ? x : NULL, dy, a + 9);
        if ((st = run(ctx, func, "merge_backward", 9 + 2 * CLNET_MERGE_MAX_INPUTS, a, dy->numel)))
            return st;
    }
    return CLNET_OK;
}

/* ---- concatenate ----------------------------------------------------------- */

/* The geometry of a concatenation: y is (outer, y_ext * after), input i is
 * (outer, ext[i] * after) at column off[i] * after. */
typedef struct concat_geom {
    size_t outer, after;
    int64_t ext[CLNET_MERGE_MAX_INPUTS];
} concat_geom;

/* Checks that part (named name) fits y along axis ax; returns its extent. */
static clnet_status check_part(clnet_context *ctx, const char *func, const clnet_tensor *part,
                               const char *name, const clnet_tensor *y, const char *yname, int ax)
{
    clnet_status st = check_one(ctx, func, part, name);
    if (st)
        return st;
    int fits = part->ndim == y->ndim;
    for (int d = 0; fits && d < y->ndim; d++)
        fits = d == ax || part->shape[d] == y->shape[d];
    if (fits)
        return CLNET_OK;
    char a[96], b[96];
    return clnet__error(ctx, CLNET_ERR_SHAPE,
                        "%s: %s is %s, which does not fit %s (%s) but along axis %d", func, name,
                        clnet__tensor_shape_str(part, a, sizeof a), yname,
                        clnet__tensor_shape_str(y, b, sizeof b), ax);
}

/* parts[i] gives input i's shape (dx[i], else x[i]). */
static clnet_status concat_check(clnet_context *ctx, const char *func, int axis, int n,
                                 const clnet_tensor *const *parts, const char *const *pnames,
                                 const clnet_tensor *y, const char *yname, int *ax_out,
                                 concat_geom *g)
{
    clnet_status st = check_one(ctx, func, y, yname);
    if (st)
        return st;
    if (n < 1 || n > CLNET_MERGE_MAX_INPUTS)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: n = %d inputs (1 to CLNET_MERGE_MAX_INPUTS)",
                            func, n);
    int ax = axis < 0 ? axis + y->ndim : axis;
    if (y->ndim == 0 || ax < 0 || ax >= y->ndim)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: axis %d of a %d-D tensor", func, axis, y->ndim);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if ((st = check_part(ctx, func, parts[i], pnames[i], y, yname, ax)))
            return st;
        g->ext[i] = parts[i]->shape[ax];
        sum += g->ext[i];
    }
    if (sum != y->shape[ax])
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: the inputs' extents along axis %d sum to %lld, %s has %lld", func,
                            ax, (long long)sum, yname, (long long)y->shape[ax]);
    g->outer = g->after = 1;
    for (int d = 0; d < ax; d++)
        g->outer *= (size_t)y->shape[d];
    for (int d = ax + 1; d < y->ndim; d++)
        g->after *= (size_t)y->shape[d];
    *ax_out = ax;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_concat_forward(int axis, int n, const clnet_tensor *const *x,
                                            clnet_tensor *y)
{
    static const char func[] = "clnet_concat_forward";
    clnet_context *ctx = y ? y->ctx : x && n > 0 && x[0] ? x[0]->ctx : NULL;
    CLNET_CHECK_ARG(ctx, y != NULL);
    CLNET_CHECK_ARG(ctx, x != NULL);
    concat_geom g;
    int ax;
    clnet_status st = concat_check(ctx, func, axis, n, x, xnames, y, "y", &ax, &g);
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        if ((st = clnet__check_overlap(ctx, func, y, "y", x[i], xnames[i], 0)))
            return st;
    size_t y_inner = (size_t)y->shape[ax] * g.after, off = 0;
    for (int i = 0; i < n && y->numel; i++) {
        size_t inner = (size_t)g.ext[i] * g.after;
        if (x[i]->numel) {
            clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(y)),    CLNET_ARG_ULONG(y->offset),
                               CLNET_ARG_ULONG(y_inner),        CLNET_ARG_ULONG(off),
                               CLNET_ARG_MEM(clnet__mem(x[i])), CLNET_ARG_ULONG(x[i]->offset),
                               CLNET_ARG_ULONG(inner),          CLNET_ARG_ULONG(x[i]->numel) };
            if ((st = run(ctx, func, "concat_forward", 8, a, x[i]->numel)))
                return st;
        }
        off += inner;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_concat_backward(int axis, int n, const clnet_tensor *const *x,
                                             const clnet_tensor *dy, float beta,
                                             clnet_tensor *const *dx)
{
    static const char func[] = "clnet_concat_backward";
    clnet_context *ctx = dy ? dy->ctx : NULL;
    CLNET_CHECK_ARG(ctx, dy != NULL);
    CLNET_CHECK_ARG(ctx, dx != NULL);
    CLNET_CHECK_ARG(ctx, n >= 1 && n <= CLNET_MERGE_MAX_INPUTS);
    const clnet_tensor *parts[CLNET_MERGE_MAX_INPUTS];
    const char *pnames[CLNET_MERGE_MAX_INPUTS];
    for (int i = 0; i < n; i++) {
        parts[i] = dx[i] ? dx[i] : x ? x[i] : NULL;
        pnames[i] = dx[i] || !x ? dxnames[i] : xnames[i];
    }
    concat_geom g;
    int ax;
    clnet_status st = concat_check(ctx, func, axis, n, parts, pnames, dy, "dy", &ax, &g);
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        for (int j = -1; dx[i] && j < i; j++)
            if ((st = clnet__check_overlap(ctx, func, dx[i], dxnames[i], j < 0 ? dy : dx[j],
                                           j < 0 ? "dy" : dxnames[j], 0)))
                return st;
    size_t y_inner = (size_t)dy->shape[ax] * g.after, off = 0;
    for (int i = 0; i < n && dy->numel; i++) {
        size_t inner = (size_t)g.ext[i] * g.after;
        if (dx[i] && dx[i]->numel) {
            clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(dx[i])),
                               CLNET_ARG_ULONG(dx[i]->offset),
                               CLNET_ARG_ULONG(inner),
                               CLNET_ARG_MEM(clnet__mem(dy)),
                               CLNET_ARG_ULONG(dy->offset),
                               CLNET_ARG_ULONG(y_inner),
                               CLNET_ARG_ULONG(off),
                               CLNET_ARG_FLOAT(beta),
                               CLNET_ARG_ULONG(dx[i]->numel) };
            if ((st = run(ctx, func, "concat_backward", 9, a, dx[i]->numel)))
                return st;
        }
        off += inner;
    }
    return CLNET_OK;
}

/* ---- global average pooling --------------------------------------------------- */

/* x is (N, C, H, W) with H * W > 0; y is (N, C) or (N, C, 1, 1). */
static clnet_status gap_check(clnet_context *ctx, const char *func, const clnet_tensor *x,
                              const char *xname, const clnet_tensor *y, const char *yname)
{
    clnet_status st;
    if ((st = check_one(ctx, func, x, xname)) || (st = check_one(ctx, func, y, yname)))
        return st;
    char a[96], b[96];
    if (x->ndim != 4)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected 4-D (N, C, H, W)", func,
                            xname, clnet__tensor_shape_str(x, a, sizeof a));
    if (x->shape[2] * x->shape[3] == 0)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s: an empty plane has no mean", func,
                            xname, clnet__tensor_shape_str(x, a, sizeof a));
    int ok = (y->ndim == 2 || (y->ndim == 4 && y->shape[2] == 1 && y->shape[3] == 1)) &&
             y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1];
    if (!ok)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s is %s, expected %lldx%lld (or x1x1) for %s %s", func, yname,
                            clnet__tensor_shape_str(y, a, sizeof a), (long long)x->shape[0],
                            (long long)x->shape[1], xname, clnet__tensor_shape_str(x, b, sizeof b));
    return clnet__check_overlap(ctx, func, y, yname, x, xname, 0);
}

CLNET_API clnet_status clnet_global_avg_pool2d_forward(const clnet_tensor *x, clnet_tensor *y)
{
    static const char func[] = "clnet_global_avg_pool2d_forward";
    clnet_context *ctx = y ? y->ctx : x ? x->ctx : NULL;
    clnet_status st = gap_check(ctx, func, x, "x", y, "y");
    if (st || y->numel == 0)
        return st;
    size_t hw = (size_t)(x->shape[2] * x->shape[3]);
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                       CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_ULONG(hw),          CLNET_ARG_ULONG(y->numel) };
    return run(ctx, func, "gap_forward", 6, a, y->numel);
}

CLNET_API clnet_status clnet_global_avg_pool2d_backward(const clnet_tensor *dy, float beta,
                                                        clnet_tensor *dx)
{
    static const char func[] = "clnet_global_avg_pool2d_backward";
    clnet_context *ctx = dx ? dx->ctx : dy ? dy->ctx : NULL;
    clnet_status st = gap_check(ctx, func, dx, "dx", dy, "dy");
    if (st || dx->numel == 0)
        return st;
    size_t hw = (size_t)(dx->shape[2] * dx->shape[3]);
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
                       CLNET_ARG_MEM(clnet__mem(dy)), CLNET_ARG_ULONG(dy->offset),
                       CLNET_ARG_ULONG(hw),           CLNET_ARG_FLOAT(beta),
                       CLNET_ARG_ULONG(dx->numel) };
    return run(ctx, func, "gap_backward", 7, a, dx->numel);
}

/* ---- sampling ------------------------------------------------------------------ */

static clnet_status sampling_check(clnet_context *ctx, const char *func, const clnet_tensor *mean,
                                   const clnet_tensor *logvar, const clnet_tensor *eps,
                                   const clnet_tensor *z)
{
    const clnet_tensor *ts[] = { mean, logvar, eps, z };
    static const char *const names[] = { "mean", "logvar", "eps", "z" };
    clnet_status st;
    for (int i = 0; i < 4; i++)
        if ((st = check_one(ctx, func, ts[i], names[i])) ||
            (st = check_shape(ctx, func, ts[i], names[i], mean, "mean")))
            return st;
    if ((st = clnet__check_overlap(ctx, func, z, "z", mean, "mean", 1)) ||
        (st = clnet__check_overlap(ctx, func, z, "z", logvar, "logvar", 1)) ||
        (st = clnet__check_overlap(ctx, func, eps, "eps", z, "z", 0)) ||
        (st = clnet__check_overlap(ctx, func, eps, "eps", mean, "mean", 0)) ||
        (st = clnet__check_overlap(ctx, func, eps, "eps", logvar, "logvar", 0)))
        return st;
    return CLNET_OK;
}

static clnet_status sampling_launch(clnet_context *ctx, const char *func, const clnet_tensor *mean,
                                    const clnet_tensor *logvar, const clnet_tensor *eps,
                                    clnet_tensor *z)
{
    if (z->numel == 0)
        return CLNET_OK;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(z)),      CLNET_ARG_ULONG(z->offset),
                       CLNET_ARG_MEM(clnet__mem(mean)),   CLNET_ARG_ULONG(mean->offset),
                       CLNET_ARG_MEM(clnet__mem(logvar)), CLNET_ARG_ULONG(logvar->offset),
                       CLNET_ARG_MEM(clnet__mem(eps)),    CLNET_ARG_ULONG(eps->offset),
                       CLNET_ARG_ULONG(z->numel) };
    return run(ctx, func, "sampling_forward", 9, a, z->numel);
}

CLNET_API clnet_status clnet_sampling_forward(const clnet_tensor *mean, const clnet_tensor *logvar,
                                              uint64_t seed, uint64_t stream, clnet_tensor *eps,
                                              clnet_tensor *z)
{
    static const char func[] = "clnet_sampling_forward";
    clnet_context *ctx = z ? z->ctx : mean ? mean->ctx : NULL;
    clnet_status st = sampling_check(ctx, func, mean, logvar, eps, z);
    if (st || (st = clnet_tensor_rand_normal(eps, seed, stream, 0.0f, 1.0f)))
        return st;
    return sampling_launch(ctx, func, mean, logvar, eps, z);
}

CLNET_API clnet_status clnet_sampling_forward_eps(const clnet_tensor *mean,
                                                  const clnet_tensor *logvar,
                                                  const clnet_tensor *eps, clnet_tensor *z)
{
    static const char func[] = "clnet_sampling_forward_eps";
    clnet_context *ctx = z ? z->ctx : mean ? mean->ctx : NULL;
    clnet_status st = sampling_check(ctx, func, mean, logvar, eps, z);
    return st ? st : sampling_launch(ctx, func, mean, logvar, eps, z);
}

/* The two optional outputs of a backward: at least one given, each of the
 * inputs' shape, overlapping neither the inputs nor each other. */
static clnet_status check_grads(clnet_context *ctx, const char *func, const clnet_tensor *const *in,
                                const char *const *inames, int nin, clnet_tensor *g0,
                                const char *n0, clnet_tensor *g1, const char *n1)
{
    if (!g0 && !g1)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s and %s are NULL",
                            func, n0, n1);
    clnet_tensor *gs[] = { g0, g1 };
    const char *gn[] = { n0, n1 };
    clnet_status st;
    for (int k = 0; k < 2; k++) {
        if (!gs[k])
            continue;
        if ((st = check_one(ctx, func, gs[k], gn[k])) ||
            (st = check_shape(ctx, func, gs[k], gn[k], in[0], inames[0])))
            return st;
        for (int i = 0; i < nin; i++)
            if ((st = clnet__check_overlap(ctx, func, gs[k], gn[k], in[i], inames[i], 0)))
                return st;
    }
    return clnet__check_overlap(ctx, func, g0, n0, g1, n1, 0);
}

CLNET_API clnet_status clnet_sampling_backward(const clnet_tensor *logvar, const clnet_tensor *eps,
                                               const clnet_tensor *dz, float beta,
                                               clnet_tensor *dmean, clnet_tensor *dlogvar)
{
    static const char func[] = "clnet_sampling_backward";
    const clnet_tensor *in[] = { dz, logvar, eps };
    static const char *const inames[] = { "dz", "logvar", "eps" };
    clnet_context *ctx = clnet__first_ctx(3, in);
    clnet_status st = check_like(ctx, func, 3, in, inames);
    if (st || (st = check_grads(ctx, func, in, inames, 3, dmean, "dmean", dlogvar, "dlogvar")) ||
        dz->numel == 0)
        return st;
    /* A missing output's slot takes the other's buffer; the kernel skips it. */
    const clnet_tensor *m = dmean ? dmean : dlogvar, *l = dlogvar ? dlogvar : dmean;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(m)),
                       CLNET_ARG_ULONG(m->offset),
                       CLNET_ARG_MEM(clnet__mem(l)),
                       CLNET_ARG_ULONG(l->offset),
                       CLNET_ARG_MEM(clnet__mem(logvar)),
                       CLNET_ARG_ULONG(logvar->offset),
                       CLNET_ARG_MEM(clnet__mem(eps)),
                       CLNET_ARG_ULONG(eps->offset),
                       CLNET_ARG_MEM(clnet__mem(dz)),
                       CLNET_ARG_ULONG(dz->offset),
                       CLNET_ARG_INT(dmean != NULL),
                       CLNET_ARG_INT(dlogvar != NULL),
                       CLNET_ARG_FLOAT(beta),
                       CLNET_ARG_ULONG(dz->numel) };
    return run(ctx, func, "sampling_backward", 14, a, dz->numel);
}

/* ---- KL divergence ----------------------------------------------------------------- */

CLNET_API clnet_status clnet_kl_normal(clnet_kl_reduction reduction, const clnet_tensor *mean,
                                       const clnet_tensor *logvar, float beta, clnet_tensor *loss,
                                       clnet_tensor *dmean, clnet_tensor *dlogvar)
{
    static const char func[] = "clnet_kl_normal";
    const clnet_tensor *in[] = { mean, logvar };
    static const char *const inames[] = { "mean", "logvar" };
    clnet_context *ctx = clnet__first_ctx(2, in);
    clnet_status st = check_like(ctx, func, 2, in, inames);
    if (st)
        return st;
    if ((int)reduction < 0 || (int)reduction > CLNET_KL_PER_ROW)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: reduction = %d is not a clnet_kl_reduction",
                            func, (int)reduction);
    int64_t c = mean->ndim ? mean->shape[mean->ndim - 1] : 1;
    if (c > 0x7fffffff)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: the last axis has %lld entries, more than 2^31 - 1", func,
                            (long long)c);
    size_t rows = 1;
    for (int d = 0; d + 1 < mean->ndim; d++)
        rows *= (size_t)mean->shape[d];
    if (!loss && !dmean && !dlogvar)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: loss, dmean and dlogvar are NULL", func);
    if (!loss && (st = check_grads(ctx, func, in, inames, 2, dmean, "dmean", dlogvar, "dlogvar")))
        return st;
    if (loss) {
        size_t want = reduction == CLNET_KL_PER_ROW ? rows : 1;
        if ((st = check_one(ctx, func, loss, "loss")))
            return st;
        if (loss->numel != want)
            return clnet__error(ctx, CLNET_ERR_SHAPE,
                                "%s: loss holds %zu elements, expected %zu (%s)", func, loss->numel,
                                want, reduction == CLNET_KL_PER_ROW ? "one per row" : "one");
        const clnet_tensor *others[] = { mean, logvar, dmean, dlogvar };
        static const char *const onames[] = { "mean", "logvar", "dmean", "dlogvar" };
        for (int i = 0; i < 4; i++)
            if ((st = clnet__check_overlap(ctx, func, loss, "loss", others[i], onames[i], 0)))
                return st;
        if ((dmean || dlogvar) &&
            (st = check_grads(ctx, func, in, inames, 2, dmean, "dmean", dlogvar, "dlogvar")))
            return st;
    }
    if (loss && loss->numel) {
        cl_mem kl = clnet__mem(loss);
        size_t ko = loss->offset;
        if (reduction != CLNET_KL_PER_ROW) {
            ko = 0;
            if ((st = clnet__workspace(ctx, (rows ? rows : 1) * sizeof(float), &kl)))
                return st;
        }
        clnet__arg a[] = { CLNET_ARG_MEM(kl),
                           CLNET_ARG_ULONG(ko),
                           CLNET_ARG_MEM(clnet__mem(mean)),
                           CLNET_ARG_ULONG(mean->offset),
                           CLNET_ARG_MEM(clnet__mem(logvar)),
                           CLNET_ARG_ULONG(logvar->offset),
                           CLNET_ARG_INT(c),
                           CLNET_ARG_ULONG(rows) };
        if (rows && (st = run(ctx, func, "kl_rows", 8, a, rows)))
            return st;
        if (reduction != CLNET_KL_PER_ROW) {
            clnet__arg r[] = { CLNET_ARG_MEM(clnet__mem(loss)), CLNET_ARG_ULONG(loss->offset),
                               CLNET_ARG_MEM(kl), CLNET_ARG_ULONG(rows),
                               CLNET_ARG_INT(reduction == CLNET_KL_MEAN) };
            if ((st = run(ctx, func, "kl_reduce", 5, r, 1)))
                return st;
        }
    }
    if ((!dmean && !dlogvar) || mean->numel == 0)
        return CLNET_OK;
    float s = reduction == CLNET_KL_MEAN ? (float)(1.0 / (double)rows) : 1.0f;
    const clnet_tensor *m = dmean ? dmean : dlogvar, *l = dlogvar ? dlogvar : dmean;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(m)),
                       CLNET_ARG_ULONG(m->offset),
                       CLNET_ARG_MEM(clnet__mem(l)),
                       CLNET_ARG_ULONG(l->offset),
                       CLNET_ARG_MEM(clnet__mem(mean)),
                       CLNET_ARG_ULONG(mean->offset),
                       CLNET_ARG_MEM(clnet__mem(logvar)),
                       CLNET_ARG_ULONG(logvar->offset),
                       CLNET_ARG_INT(dmean != NULL),
                       CLNET_ARG_INT(dlogvar != NULL),
                       CLNET_ARG_FLOAT(s),
                       CLNET_ARG_FLOAT(beta),
                       CLNET_ARG_ULONG(mean->numel) };
    return run(ctx, func, "kl_backward", 13, a, mean->numel);
}
