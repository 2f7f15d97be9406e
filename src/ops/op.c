/* clnet — the op layer (op.h): the one argument checker, aliasing rule and
 * context lookup of every op, and the launch helper. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/op.h"

static const char *dtype_name(clnet_dtype d)
{
    return d == CLNET_F32 ? "float32" : d == CLNET_I32 ? "int32" : "unknown";
}

clnet_status clnet__op_fail(const clnet__op *op, clnet_status status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return clnet__error(op->ctx, status, "%s: %s", op->func, msg);
}

/* "<func>: <name>: shape (..) but expected <what>" */
static clnet_status shape_fail(const clnet__op *op, int i, const char *what)
{
    char got[128];
    clnet__tensor_shape_str(op->t[i], got, sizeof got);
    return clnet__op_fail(op, CLNET_ERR_SHAPE, "%s: shape %s but expected %s", op->spec[i].name,
                          got, what);
}

/* One tensor's own checks: presence, context, dtype, rank, like, size_of. */
static clnet_status check_one(const clnet__op *op, int i)
{
    const clnet__tspec *s = &op->spec[i];
    const clnet_tensor *t = op->t[i];
    if (!t)
        return (s->flags & CLNET_T_OPTIONAL)
                   ? CLNET_OK
                   : clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "%s: must not be NULL", s->name);
    if (t->ctx != op->ctx)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "%s: belongs to another context", s->name);
    clnet_dtype want = s->flags & CLNET_T_I32 ? CLNET_I32 : CLNET_F32;
    if (!(s->flags & CLNET_T_ANY_DTYPE) && t->dtype != want)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "%s: dtype %s but expected %s", s->name,
                              dtype_name(t->dtype), dtype_name(want));
    char what[160];
    if (s->rank && t->ndim != s->rank) {
        snprintf(what, sizeof what, "%d dimensions", s->rank);
        return shape_fail(op, i, what);
    }
    const clnet_tensor *o = s->like ? op->t[s->like - 1] : NULL;
    if (o && !clnet__same_shape(t, o)) {
        char os[128];
        snprintf(what, sizeof what, "%s (the shape of %s)",
                 clnet__tensor_shape_str(o, os, sizeof os), op->spec[s->like - 1].name);
        return shape_fail(op, i, what);
    }
    o = s->size_of ? op->t[s->size_of - 1] : NULL;
    if (o && t->numel != o->numel) {
        snprintf(what, sizeof what, "%zu elements (as %s)", o->numel,
                 op->spec[s->size_of - 1].name);
        return shape_fail(op, i, what);
    }
    return CLNET_OK;
}

/* The aliasing rule: an output shares no storage element with any other
 * tensor of the call, except the exact aliases its entry declares. */
static clnet_status check_alias(const clnet__op *op, int i)
{
    const clnet__tspec *s = &op->spec[i];
    for (int j = 0; j < op->count; j++) {
        const clnet_tensor *a = op->t[i], *b = op->t[j];
        if (j == i || !clnet__overlaps(a, b))
            continue;
        /* Two outputs: report the pair once, from the first. */
        if ((op->spec[j].flags & CLNET_T_OUT) && j < i)
            continue;
        int exact = a->offset == b->offset && a->numel == b->numel;
        if (exact && (s->alias & CLNET_ALIAS(j)))
            continue;
        return clnet__op_fail(
            op, CLNET_ERR_INVALID_ARG, "%s: overlaps %s%s", s->name, op->spec[j].name,
            s->alias & CLNET_ALIAS(j) ? " in part (only exact aliasing is allowed)" : "");
    }
    return CLNET_OK;
}

clnet_status clnet__op_check(clnet__op *op, const char *func, const clnet__tspec *spec, int count,
                             const clnet_tensor *const *ts)
{
    assert(count <= CLNET_OP_MAX_TENSORS);
    *op = (clnet__op){ clnet__first_ctx(count, ts), func, spec, count, { NULL } };
    for (int i = 0; i < count; i++)
        op->t[i] = ts[i];
    if (!op->ctx)
        return CLNET_ERR_INVALID_ARG;
    clnet_status st;
    for (int i = 0; i < count; i++)
        if ((st = check_one(op, i)))
            return st;
    for (int i = 0; i < count; i++)
        if ((spec[i].flags & CLNET_T_OUT) && ts[i] && (st = check_alias(op, i)))
            return st;
    return CLNET_OK;
}

clnet_status clnet__op_want_shape(const clnet__op *op, int i, int ndim, const int64_t *shape)
{
    return clnet__op_want_shape_as(op, i, ndim, shape, NULL);
}

clnet_status clnet__op_want_shape_as(const clnet__op *op, int i, int ndim, const int64_t *shape,
                                     const char *dims)
{
    const clnet_tensor *t = op->t[i];
    if (!t)
        return CLNET_OK;
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (same)
        return CLNET_OK;
    char want[160];
    clnet__shape_str(ndim, shape, want, sizeof want);
    if (dims) {
        size_t used = strlen(want);
        snprintf(want + used, sizeof want - used, " (%s)", dims);
    }
    return shape_fail(op, i, want);
}

clnet_status clnet__run1d(clnet_context *ctx, const char *func, const char *program,
                          const char *kernel, size_t n, int nargs, const clnet__arg *args)
{
    if (n == 0)
        return CLNET_OK;
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, program, NULL, kernel, &k);
    return st ? st : clnet__launch1d(ctx, k, func, nargs, args, n);
}
