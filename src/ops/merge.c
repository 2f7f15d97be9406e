/* clnet — graph-model primitives (cl/merge.cl): elementwise merges,
 * concatenation, global average pooling, VAE sampling and the KL term. */
#include <stdio.h>

#include "clnet/merge.h"
#include "ops/op.h"

/* Runs kernel `kernel` of cl/merge.cl over n work-items. */
#define LAUNCH(op, kernel, n, ...)                                                                 \
    CLNET_RUN1D((op)->ctx, (op)->func, "merge", (kernel), (n), __VA_ARGS__)

/* Table entries for the eight slots of an input or gradient list. */
#define SLOTS(base, ...)                                                                           \
    { .name = base "[0]", __VA_ARGS__ }, { .name = base "[1]", __VA_ARGS__ },                      \
        { .name = base "[2]", __VA_ARGS__ }, { .name = base "[3]", __VA_ARGS__ },                  \
        { .name = base "[4]", __VA_ARGS__ }, { .name = base "[5]", __VA_ARGS__ },                  \
        { .name = base "[6]", __VA_ARGS__ },                                                       \
    {                                                                                              \
        .name = base "[7]", __VA_ARGS__                                                            \
    }

/* The bits of the slots 1 .. 8, the list that follows entry 0. */
#define LIST_BITS (0x1feu)

/* Checks a call of `head` (table entry 0), the list a (entries 1 .. 8,
 * named aname; the array must be given) and the list b (entries 9 .. 16,
 * NULLs where b is NULL): the first `count` entries of spec. */
static clnet_status check_lists(clnet__op *op, const char *func, const clnet__tspec *spec,
                                int count, const clnet_tensor *head, int n,
                                const clnet_tensor *const *a, const char *aname,
                                const clnet_tensor *const *b)
{
    const clnet_tensor *ts[1 + 2 * CLNET_MERGE_MAX_INPUTS] = { head };
    for (int i = 0; i < CLNET_MERGE_MAX_INPUTS; i++) {
        ts[1 + i] = a && i < n ? a[i] : NULL;
        ts[1 + CLNET_MERGE_MAX_INPUTS + i] = b && i < n ? b[i] : NULL;
    }
    clnet_status st = clnet__op_check(op, func, spec, count, ts);
    if (st || a)
        return st;
    return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "%s: must not be NULL", aname);
}

/* ---- merges ---------------------------------------------------------------- */

static const char *const merge_names[] = { "add", "subtract", "multiply" };

CLNET_API const char *clnet_merge_op_name(clnet_merge_op op)
{
    return (int)op >= 0 && (int)op < 3 ? merge_names[op] : "unknown";
}

static clnet_status check_merge_op(const clnet__op *op, clnet_merge_op mop, int n)
{
    if ((int)mop < 0 || (int)mop > CLNET_MERGE_MULTIPLY)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "op = %d is not a clnet_merge_op",
                              (int)mop);
    if (n < 2 || n > CLNET_MERGE_MAX_INPUTS || (mop == CLNET_MERGE_SUBTRACT && n != 2))
        return clnet__op_fail(
            op, CLNET_ERR_INVALID_ARG, "n = %d inputs for %s (2%s)", n, merge_names[mop],
            mop == CLNET_MERGE_SUBTRACT ? " exactly" : " to CLNET_MERGE_MAX_INPUTS");
    return CLNET_OK;
}

/* The number of list entries to check: n within [0, CLNET_MERGE_MAX_INPUTS]
 * (the count is checked, with its own message, once a context is known). */
static int slots(int n)
{
    return n < 0 ? 0 : n > CLNET_MERGE_MAX_INPUTS ? CLNET_MERGE_MAX_INPUTS : n;
}

/* The kernels' eight input slots: x[0 .. n-1], then `fill` (never read). */
#define MERGE_SLOT(x, n, fill, i) CLNET_ARG_TENSOR((x) && (i) < (n) ? (x)[i] : (fill))
#define MERGE_SLOTS(x, n, fill)                                                                    \
    MERGE_SLOT(x, n, fill, 0), MERGE_SLOT(x, n, fill, 1), MERGE_SLOT(x, n, fill, 2),               \
        MERGE_SLOT(x, n, fill, 3), MERGE_SLOT(x, n, fill, 4), MERGE_SLOT(x, n, fill, 5),           \
        MERGE_SLOT(x, n, fill, 6), MERGE_SLOT(x, n, fill, 7)

/* y, then x[i] of y's shape; y may be any x[i] exactly. */
static const clnet__tspec merge_forward_spec[1 + CLNET_MERGE_MAX_INPUTS] = {
    { .name = "y", .flags = CLNET_T_OUT, .alias = LIST_BITS },
    SLOTS("x", .like = CLNET_LIKE(0)),
};

CLNET_API clnet_status clnet_merge_forward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                           clnet_tensor *y)
{
    clnet__op o;
    clnet_status st =
        check_lists(&o, __func__, merge_forward_spec, 1 + (x ? slots(n) : 0), y, n, x, "x", NULL);
    if (st || (st = check_merge_op(&o, op, n)) || y->numel == 0)
        return st;
    return LAUNCH(&o, "merge_forward", y->numel, CLNET_ARG_TENSOR(y), CLNET_ARG_INT(op),
                  CLNET_ARG_INT(n), CLNET_ARG_ULONG(y->numel), MERGE_SLOTS(x, n, x[0]));
}

/* dy, then dx[i] (optional) and x[i], each of dy's shape; a dx[i] may be
 * another exactly, and overlaps neither dy nor any x[j]. */
static const clnet__tspec merge_backward_spec[1 + 2 * CLNET_MERGE_MAX_INPUTS] = {
    { .name = "dy" },
    SLOTS("dx", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0), .alias = LIST_BITS),
    SLOTS("x", .like = CLNET_LIKE(0)),
};

CLNET_API clnet_status clnet_merge_backward(clnet_merge_op op, int n, const clnet_tensor *const *x,
                                            const clnet_tensor *dy, float beta,
                                            clnet_tensor *const *dx)
{
    clnet__op o;
    clnet_status st = check_lists(&o, __func__, merge_backward_spec,
                                  1 + CLNET_MERGE_MAX_INPUTS + (x ? slots(n) : 0), dy, n,
                                  (const clnet_tensor *const *)dx, "dx", x);
    if (st || (st = check_merge_op(&o, op, n)))
        return st;
    if (op == CLNET_MERGE_MULTIPLY && !x)
        return clnet__op_fail(&o, CLNET_ERR_INVALID_ARG,
                              "x: must not be NULL (multiply's gradient reads x)");
    for (int i = 0; i < n && dy->numel; i++)
        if (dx[i] &&
            (st = LAUNCH(&o, "merge_backward", dy->numel, CLNET_ARG_TENSOR(dx[i]),
                         CLNET_ARG_TENSOR(dy), CLNET_ARG_INT(op), CLNET_ARG_INT(n),
                         CLNET_ARG_INT(i), CLNET_ARG_FLOAT(beta), CLNET_ARG_ULONG(dy->numel),
                         MERGE_SLOTS(op == CLNET_MERGE_MULTIPLY ? x : NULL, n, dy))))
            return st;
    return CLNET_OK;
}

/* ---- concatenate ----------------------------------------------------------- */

/* The geometry of a concatenation: y is (outer, y_ext * after), input i is
 * (outer, ext[i] * after) at column off[i] * after. */
typedef struct concat_geom {
    size_t outer, after;
    int64_t ext[CLNET_MERGE_MAX_INPUTS];
} concat_geom;

/* Checks that the op's tensor i fits y (tensor yi) but along axis ax. */
static clnet_status check_part(const clnet__op *op, int i, int yi, int ax)
{
    const clnet_tensor *part = op->t[i], *y = op->t[yi];
    int fits = part->ndim == y->ndim;
    for (int d = 0; fits && d < y->ndim; d++)
        fits = d == ax || part->shape[d] == y->shape[d];
    if (fits)
        return CLNET_OK;
    char a[96], b[96];
    return clnet__op_fail(op, CLNET_ERR_SHAPE,
                          "%s: shape %s, which does not fit %s %s but along axis %d",
                          op->spec[i].name, clnet__tensor_shape_str(part, a, sizeof a),
                          op->spec[yi].name, clnet__tensor_shape_str(y, b, sizeof b), ax);
}

/* The geometry of a checked op whose tensor 0 is y (or dy) and whose input
 * i takes its shape from tensor parts[i] (dx[i], else x[i]). */
static clnet_status concat_check(const clnet__op *op, int axis, int n, const int *parts,
                                 int *ax_out, concat_geom *g)
{
    const clnet_tensor *y = op->t[0];
    if (n < 1 || n > CLNET_MERGE_MAX_INPUTS)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "n = %d inputs (1 to CLNET_MERGE_MAX_INPUTS)", n);
    int ax = axis < 0 ? axis + y->ndim : axis;
    if (y->ndim == 0 || ax < 0 || ax >= y->ndim)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "axis %d of a %d-D tensor", axis, y->ndim);
    int64_t sum = 0;
    clnet_status st;
    for (int i = 0; i < n; i++) {
        if ((st = check_part(op, parts[i], 0, ax)))
            return st;
        g->ext[i] = op->t[parts[i]]->shape[ax];
        sum += g->ext[i];
    }
    if (sum != y->shape[ax])
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "the inputs' extents along axis %d sum to %lld, %s has %lld", ax,
                              (long long)sum, op->spec[0].name, (long long)y->shape[ax]);
    g->outer = g->after = 1;
    for (int d = 0; d < ax; d++)
        g->outer *= (size_t)y->shape[d];
    for (int d = ax + 1; d < y->ndim; d++)
        g->after *= (size_t)y->shape[d];
    *ax_out = ax;
    return CLNET_OK;
}

/* y, then the x[i] it concatenates (overlapping none of them). */
static const clnet__tspec concat_forward_spec[1 + CLNET_MERGE_MAX_INPUTS] = {
    { .name = "y", .flags = CLNET_T_OUT },
    SLOTS("x", .flags = 0),
};

CLNET_API clnet_status clnet_concat_forward(int axis, int n, const clnet_tensor *const *x,
                                            clnet_tensor *y)
{
    clnet__op op;
    concat_geom g;
    int ax;
    static const int parts[CLNET_MERGE_MAX_INPUTS] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    clnet_status st =
        check_lists(&op, __func__, concat_forward_spec, 1 + (x ? slots(n) : 0), y, n, x, "x", NULL);
    if (st || (st = concat_check(&op, axis, n, parts, &ax, &g)))
        return st;
    size_t y_inner = (size_t)y->shape[ax] * g.after, off = 0;
    for (int i = 0; i < n && y->numel; i++) {
        size_t inner = (size_t)g.ext[i] * g.after;
        if ((st = LAUNCH(&op, "concat_forward", x[i]->numel, CLNET_ARG_TENSOR(y),
                         CLNET_ARG_ULONG(y_inner), CLNET_ARG_ULONG(off), CLNET_ARG_TENSOR(x[i]),
                         CLNET_ARG_ULONG(inner), CLNET_ARG_ULONG(x[i]->numel))))
            return st;
        off += inner;
    }
    return CLNET_OK;
}

/* dy, then dx[i] (optional, overlapping nothing else), then x[i] (optional:
 * they give the shape of a part whose dx[i] is not wanted). */
static const clnet__tspec concat_backward_spec[1 + 2 * CLNET_MERGE_MAX_INPUTS] = {
    { .name = "dy" },
    SLOTS("dx", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL),
    SLOTS("x", .flags = CLNET_T_OPTIONAL),
};

CLNET_API clnet_status clnet_concat_backward(int axis, int n, const clnet_tensor *const *x,
                                             const clnet_tensor *dy, float beta,
                                             clnet_tensor *const *dx)
{
    clnet__op op;
    clnet_status st =
        check_lists(&op, __func__, concat_backward_spec, 1 + 2 * CLNET_MERGE_MAX_INPUTS, dy, n,
                    (const clnet_tensor *const *)dx, "dx", x);
    if (st)
        return st;
    int parts[CLNET_MERGE_MAX_INPUTS] = { 0 };
    for (int i = 0; i < slots(n); i++) {
        parts[i] = dx[i] ? 1 + i : x && x[i] ? 1 + CLNET_MERGE_MAX_INPUTS + i : -1;
        if (parts[i] < 0)
            return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG,
                                  "dx[%d]: must not be NULL without x[%d]", i, i);
    }
    concat_geom g;
    int ax;
    if ((st = concat_check(&op, axis, n, parts, &ax, &g)))
        return st;
    size_t y_inner = (size_t)dy->shape[ax] * g.after, off = 0;
    for (int i = 0; i < n && dy->numel; i++) {
        size_t inner = (size_t)g.ext[i] * g.after;
        if (dx[i] && (st = LAUNCH(&op, "concat_backward", dx[i]->numel, CLNET_ARG_TENSOR(dx[i]),
                                  CLNET_ARG_ULONG(inner), CLNET_ARG_TENSOR(dy),
                                  CLNET_ARG_ULONG(y_inner), CLNET_ARG_ULONG(off),
                                  CLNET_ARG_FLOAT(beta), CLNET_ARG_ULONG(dx[i]->numel))))
            return st;
        off += inner;
    }
    return CLNET_OK;
}

/* ---- global average pooling --------------------------------------------------- */

/* The op's tensor xi is (N, C, H, W) with H * W > 0 (its rank is in the
 * table); tensor yi is (N, C) or (N, C, 1, 1). */
static clnet_status gap_check(const clnet__op *op, int xi, int yi)
{
    const clnet_tensor *x = op->t[xi], *y = op->t[yi];
    char a[96], b[96];
    if (x->shape[2] * x->shape[3] == 0)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "%s: shape %s: an empty plane has no mean",
                              op->spec[xi].name, clnet__tensor_shape_str(x, a, sizeof a));
    int ok = (y->ndim == 2 || (y->ndim == 4 && y->shape[2] == 1 && y->shape[3] == 1)) &&
             y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1];
    if (ok)
        return CLNET_OK;
    return clnet__op_fail(op, CLNET_ERR_SHAPE,
                          "%s: shape %s but expected (%lld, %lld) or (%lld, %lld, 1, 1) for %s %s",
                          op->spec[yi].name, clnet__tensor_shape_str(y, a, sizeof a),
                          (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[0],
                          (long long)x->shape[1], op->spec[xi].name,
                          clnet__tensor_shape_str(x, b, sizeof b));
}

static const clnet__tspec gap_forward_spec[] = {
    { .name = "x", .rank = 4 },
    { .name = "y", .flags = CLNET_T_OUT },
};

CLNET_API clnet_status clnet_global_avg_pool2d_forward(const clnet_tensor *x, clnet_tensor *y)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, gap_forward_spec, x, y);
    if (st || (st = gap_check(&op, 0, 1)))
        return st;
    size_t hw = (size_t)(x->shape[2] * x->shape[3]);
    return LAUNCH(&op, "gap_forward", y->numel, CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(x),
                  CLNET_ARG_ULONG(hw), CLNET_ARG_ULONG(y->numel));
}

static const clnet__tspec gap_backward_spec[] = {
    { .name = "dy" },
    { .name = "dx", .flags = CLNET_T_OUT, .rank = 4 },
};

CLNET_API clnet_status clnet_global_avg_pool2d_backward(const clnet_tensor *dy, float beta,
                                                        clnet_tensor *dx)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, gap_backward_spec, dy, dx);
    if (st || (st = gap_check(&op, 1, 0)))
        return st;
    size_t hw = (size_t)(dx->shape[2] * dx->shape[3]);
    return LAUNCH(&op, "gap_backward", dx->numel, CLNET_ARG_TENSOR(dx), CLNET_ARG_TENSOR(dy),
                  CLNET_ARG_ULONG(hw), CLNET_ARG_FLOAT(beta), CLNET_ARG_ULONG(dx->numel));
}

/* ---- sampling ------------------------------------------------------------------ */

/* mean, logvar, eps and z of one shape; z may be mean or logvar exactly;
 * eps overlaps none of them. The forward draws eps (an output); the _eps
 * form reads it. */
static const clnet__tspec sampling_spec[] = {
    { .name = "mean" },
    { .name = "logvar", .like = CLNET_LIKE(0) },
    { .name = "eps", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0) },
    { .name = "z",
      .flags = CLNET_T_OUT,
      .like = CLNET_LIKE(0),
      .alias = CLNET_ALIAS(0) | CLNET_ALIAS(1) },
};
static const clnet__tspec sampling_eps_spec[] = {
    { .name = "mean" },
    { .name = "logvar", .like = CLNET_LIKE(0) },
    { .name = "eps", .like = CLNET_LIKE(0) },
    { .name = "z",
      .flags = CLNET_T_OUT,
      .like = CLNET_LIKE(0),
      .alias = CLNET_ALIAS(0) | CLNET_ALIAS(1) },
};

static clnet_status sampling_launch(const clnet__op *op, const clnet_tensor *mean,
                                    const clnet_tensor *logvar, const clnet_tensor *eps,
                                    clnet_tensor *z)
{
    return LAUNCH(op, "sampling_forward", z->numel, CLNET_ARG_TENSOR(z), CLNET_ARG_TENSOR(mean),
                  CLNET_ARG_TENSOR(logvar), CLNET_ARG_TENSOR(eps), CLNET_ARG_ULONG(z->numel));
}

CLNET_API clnet_status clnet_sampling_forward(const clnet_tensor *mean, const clnet_tensor *logvar,
                                              uint64_t seed, uint64_t stream, clnet_tensor *eps,
                                              clnet_tensor *z)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, sampling_spec, mean, logvar, eps, z);
    if (st || (st = clnet_tensor_rand_normal(eps, seed, stream, 0.0f, 1.0f)))
        return st;
    return sampling_launch(&op, mean, logvar, eps, z);
}

CLNET_API clnet_status clnet_sampling_forward_eps(const clnet_tensor *mean,
                                                  const clnet_tensor *logvar,
                                                  const clnet_tensor *eps, clnet_tensor *z)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, sampling_eps_spec, mean, logvar, eps, z);
    return st ? st : sampling_launch(&op, mean, logvar, eps, z);
}

/* dz, logvar and eps of one shape, then the optional dmean and dlogvar of
 * that shape, overlapping nothing else. */
static const clnet__tspec sampling_backward_spec[] = {
    { .name = "dz" },
    { .name = "logvar", .like = CLNET_LIKE(0) },
    { .name = "eps", .like = CLNET_LIKE(0) },
    { .name = "dmean", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0) },
    { .name = "dlogvar", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0) },
};

CLNET_API clnet_status clnet_sampling_backward(const clnet_tensor *logvar, const clnet_tensor *eps,
                                               const clnet_tensor *dz, float beta,
                                               clnet_tensor *dmean, clnet_tensor *dlogvar)
{
    clnet__op op;
    clnet_status st =
        CLNET_OP_CHECK(&op, __func__, sampling_backward_spec, dz, logvar, eps, dmean, dlogvar);
    if (st)
        return st;
    if (!dmean && !dlogvar)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG, "dmean and dlogvar are NULL");
    /* A missing output's slot takes the other's buffer; the kernel skips it. */
    const clnet_tensor *m = dmean ? dmean : dlogvar, *l = dlogvar ? dlogvar : dmean;
    return LAUNCH(&op, "sampling_backward", dz->numel, CLNET_ARG_TENSOR(m), CLNET_ARG_TENSOR(l),
                  CLNET_ARG_TENSOR(logvar), CLNET_ARG_TENSOR(eps), CLNET_ARG_TENSOR(dz),
                  CLNET_ARG_INT(dmean != NULL), CLNET_ARG_INT(dlogvar != NULL),
                  CLNET_ARG_FLOAT(beta), CLNET_ARG_ULONG(dz->numel));
}

/* ---- KL divergence ----------------------------------------------------------------- */

/* mean and logvar of one shape; the optional outputs overlap nothing else:
 * the loss (its size depends on the reduction), the gradients of mean's
 * shape. */
static const clnet__tspec kl_spec[] = {
    { .name = "mean" },
    { .name = "logvar", .like = CLNET_LIKE(0) },
    { .name = "loss", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL },
    { .name = "dmean", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0) },
    { .name = "dlogvar", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .like = CLNET_LIKE(0) },
};

CLNET_API clnet_status clnet_kl_normal(clnet_kl_reduction reduction, const clnet_tensor *mean,
                                       const clnet_tensor *logvar, float beta, clnet_tensor *loss,
                                       clnet_tensor *dmean, clnet_tensor *dlogvar)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, kl_spec, mean, logvar, loss, dmean, dlogvar);
    if (st)
        return st;
    if ((int)reduction < 0 || (int)reduction > CLNET_KL_PER_ROW)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG,
                              "reduction = %d is not a clnet_kl_reduction", (int)reduction);
    int64_t c = mean->ndim ? mean->shape[mean->ndim - 1] : 1;
    if (c > 0x7fffffff)
        return clnet__op_fail(&op, CLNET_ERR_TOO_LARGE,
                              "the last axis has %lld entries, more than 2^31 - 1", (long long)c);
    size_t rows = 1;
    for (int d = 0; d + 1 < mean->ndim; d++)
        rows *= (size_t)mean->shape[d];
    if (!loss && !dmean && !dlogvar)
        return clnet__op_fail(&op, CLNET_ERR_INVALID_ARG, "loss, dmean and dlogvar are NULL");
    size_t want = reduction == CLNET_KL_PER_ROW ? rows : 1;
    if (loss && loss->numel != want)
        return clnet__op_fail(&op, CLNET_ERR_SHAPE, "loss: holds %zu elements, expected %zu (%s)",
                              loss->numel, want,
                              reduction == CLNET_KL_PER_ROW ? "one per row" : "one");
    if (loss && loss->numel) {
        cl_mem kl = clnet__mem(loss);
        size_t ko = loss->offset;
        if (reduction != CLNET_KL_PER_ROW) {
            ko = 0;
            if ((st = clnet__workspace(op.ctx, (rows ? rows : 1) * sizeof(float), &kl)))
                return st;
        }
        if ((st = LAUNCH(&op, "kl_rows", rows, CLNET_ARG_MEM(kl), CLNET_ARG_ULONG(ko),
                         CLNET_ARG_TENSOR(mean), CLNET_ARG_TENSOR(logvar), CLNET_ARG_INT(c),
                         CLNET_ARG_ULONG(rows))))
            return st;
        if (reduction != CLNET_KL_PER_ROW &&
            (st = LAUNCH(&op, "kl_reduce", 1, CLNET_ARG_TENSOR(loss), CLNET_ARG_MEM(kl),
                         CLNET_ARG_ULONG(rows), CLNET_ARG_INT(reduction == CLNET_KL_MEAN))))
            return st;
    }
    if (!dmean && !dlogvar)
        return CLNET_OK;
    float s = reduction == CLNET_KL_MEAN ? (float)(1.0 / (double)rows) : 1.0f;
    const clnet_tensor *m = dmean ? dmean : dlogvar, *l = dlogvar ? dlogvar : dmean;
    return LAUNCH(&op, "kl_backward", mean->numel, CLNET_ARG_TENSOR(m), CLNET_ARG_TENSOR(l),
                  CLNET_ARG_TENSOR(mean), CLNET_ARG_TENSOR(logvar), CLNET_ARG_INT(dmean != NULL),
                  CLNET_ARG_INT(dlogvar != NULL), CLNET_ARG_FLOAT(s), CLNET_ARG_FLOAT(beta),
                  CLNET_ARG_ULONG(mean->numel));
}
