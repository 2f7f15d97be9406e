/* clnet — losses and accuracy (cl/loss.cl): argument checks, the fixed-order
 * two-level mean, variant choice and launches. */
#include <math.h>
#include <stdio.h>

#include "clnet/loss.h"
#include "tensor/tensor_impl.h"

/* At most this many first-level partial sums (as clnet_sum). */
#define MAX_GROUPS 256

/* Row kernels: a row per work-item, or a row per work-group. */

static size_t groups_for(clnet_context *ctx, size_t n)
{
    size_t wg = clnet__context_profile(ctx)->wg_size, g = (n + wg - 1) / wg;
    return g < 1 ? 1 : g > MAX_GROUPS ? MAX_GROUPS : g;
}

/* Checks one tensor: non-NULL unless optional, of ctx, of dtype. */
static clnet_status check_one(clnet_context *ctx, const char *func, const clnet_tensor *t,
                              const char *name, int optional, clnet_dtype dtype)
{
    if (!t)
        return optional ? CLNET_OK
                        : clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                                       "%s: invalid argument: %s is NULL", func, name);
    if (t->ctx != ctx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: %s belongs to another context", func,
                            name);
    if (t->dtype != dtype)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s must be %s", func, name,
                            dtype == CLNET_I32 ? "int32" : "float32");
    return CLNET_OK;
}

/* t (if given) has ref's exact shape. */
static clnet_status check_like(clnet_context *ctx, const char *func, const clnet_tensor *t,
                               const char *name, const clnet_tensor *ref, const char *rname)
{
    if (!t || clnet__same_shape(t, ref))
        return CLNET_OK;
    char a[96], b[96];
    return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s (the shape of %s)", func,
                        name, clnet__tensor_shape_str(t, a, sizeof a), clnet__tensor_shape_str(ref, b, sizeof b), rname);
}

/* The gradient may alias its input exactly, never in part. */
static int overlaps(const clnet_tensor *a, const clnet_tensor *b)
{
    return a && b && a->storage && a->storage == b->storage && a->offset < b->offset + b->numel &&
           b->offset < a->offset + a->numel;
}

static int exact_alias(const clnet_tensor *a, const clnet_tensor *b)
{
    return a->storage == b->storage && a->offset == b->offset && a->numel == b->numel;
}

static clnet_status check_grad_alias(clnet_context *ctx, const char *func, const clnet_tensor *g,
                                     const char *gname, const clnet_tensor *in, const char *iname)
{
    if (overlaps(g, in) && !exact_alias(g, in))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: %s overlaps %s in part (only exact aliasing is allowed)", func,
                            gname, iname);
    return CLNET_OK;
}

/* The loss output: one float32 element, sharing no storage with the others. */
static clnet_status check_loss(clnet_context *ctx, const char *func, const clnet_tensor *loss,
                               const clnet_tensor *const *others, const char *const *names,
                               int count)
{
    clnet_status st = check_one(ctx, func, loss, "loss", 1, CLNET_F32);
    if (st || !loss)
        return st;
    if (loss->numel != 1)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: loss holds %zu elements, expected 1", func,
                            loss->numel);
    for (int i = 0; i < count; i++)
        if (overlaps(loss, others[i]))
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: loss overlaps %s", func, names[i]);
    return CLNET_OK;
}

/* out = (sum of count floats at buf[off..]) / divisor, in a fixed order: one
 * group directly, or clnet_sum's first pass (cl/reduce.cl) into the partials
 * at buf[part_off..] and then one group. */
static clnet_status finish_mean(clnet_context *ctx, const char *func, cl_mem buf, size_t off,
                                size_t count, size_t part_off, clnet_tensor *out, double divisor)
{
    size_t wg = clnet__context_profile(ctx)->wg_size;
    cl_kernel k;
    clnet_status st;
    if (count > wg) {
        size_t g = groups_for(ctx, count), global = g * wg;
        clnet__arg a[] = {CLNET_ARG_MEM(buf), CLNET_ARG_ULONG(off), CLNET_ARG_ULONG(count),
                          CLNET_ARG_MEM(buf), CLNET_ARG_ULONG(part_off)};
        if ((st = clnet__kernel(ctx, "reduce", NULL, "sum_partial", &k)) ||
            (st = clnet__launch(ctx, k, func, 5, a, 1, &global, &wg)))
            return st;
        off = part_off;
        count = g;
    }
    if ((st = clnet__kernel(ctx, "loss", NULL, "loss_finish", &k)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(buf),           CLNET_ARG_ULONG(off),
                      CLNET_ARG_ULONG(count),       CLNET_ARG_MEM(clnet__mem(out)),
                      CLNET_ARG_ULONG(out->offset), CLNET_ARG_FLOAT(divisor)};
    return clnet__launch(ctx, k, func, 6, a, 1, &wg, &wg);
}

/* ---- elementwise losses --------------------------------------------------- */

static clnet_status elementwise_loss(const char *func, const char *kernel, const char *xname,
                                     const clnet_tensor *x, const clnet_tensor *t,
                                     clnet_tensor *loss, clnet_tensor *dx, const char *dxname)
{
    const clnet_tensor *any = x ? x : t ? t : loss ? loss : dx;
    CLNET_CHECK_ARG(NULL, any != NULL);
    clnet_context *ctx = any->ctx;
    clnet_status st;
    if ((st = check_one(ctx, func, x, xname, 0, CLNET_F32)) ||
        (st = check_one(ctx, func, t, "target", 0, CLNET_F32)) ||
        (st = check_one(ctx, func, dx, dxname, 1, CLNET_F32)) ||
        (st = check_like(ctx, func, t, "target", x, xname)) ||
        (st = check_like(ctx, func, dx, dxname, x, xname)) ||
        (st = check_grad_alias(ctx, func, dx, dxname, x, xname)) ||
        (st = check_grad_alias(ctx, func, dx, dxname, t, "target")) ||
        (st = check_loss(ctx, func, loss, (const clnet_tensor *[]){x, t, dx},
                         (const char *const[]){xname, "target", dxname}, 3)))
        return st;
    if (!loss && !dx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: loss and %s are both NULL", func, dxname);
    size_t n = x->numel;
    if (n == 0)
        return loss ? clnet_tensor_fill(loss, NAN) : CLNET_OK;
    size_t g = groups_for(ctx, n), wg = clnet__context_profile(ctx)->wg_size;
    cl_mem ws;
    cl_kernel k;
    /* Workspace: g partials, then room for finish_mean's own partials. */
    if ((st = clnet__workspace(ctx, 2 * g * sizeof(float), &ws)) ||
        (st = clnet__kernel(ctx, "loss", NULL, kernel, &k)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(clnet__mem(x)),
                      CLNET_ARG_ULONG(x->offset),
                      CLNET_ARG_MEM(clnet__mem(t)),
                      CLNET_ARG_ULONG(t->offset),
                      CLNET_ARG_ULONG(n),
                      CLNET_ARG_MEM(dx ? clnet__mem(dx) : ws),
                      CLNET_ARG_ULONG(dx ? dx->offset : 0),
                      CLNET_ARG_INT(dx != NULL),
                      CLNET_ARG_FLOAT((float)n),
                      CLNET_ARG_MEM(ws),
                      CLNET_ARG_ULONG(0)};
    size_t global = g * wg;
    if ((st = clnet__launch(ctx, k, func, 11, a, 1, &global, &wg)) || !loss)
        return st;
    return finish_mean(ctx, func, ws, 0, g, g, loss, (double)n);
}

CLNET_API clnet_status clnet_loss_mse(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred)
{
    return elementwise_loss("clnet_loss_mse", "mse_partial", "pred", pred, target, loss, dpred,
                            "dpred");
}

CLNET_API clnet_status clnet_loss_mae(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred)
{
    return elementwise_loss("clnet_loss_mae", "mae_partial", "pred", pred, target, loss, dpred,
                            "dpred");
}

CLNET_API clnet_status clnet_loss_bce_logits(const clnet_tensor *x, const clnet_tensor *target,
                                             clnet_tensor *loss, clnet_tensor *dx)
{
    return elementwise_loss("clnet_loss_bce_logits", "bce_partial", "x", x, target, loss, dx, "dx");
}

/* ---- softmax cross-entropy and accuracy ------------------------------------ */

/* logits as (rows, classes) over the last axis; classes >= 1 unless empty. */
static clnet_status rows_classes(clnet_context *ctx, const char *func, const clnet_tensor *x,
                                 size_t *rows, int *cols)
{
    char s[96];
    int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1;
    size_t r = 1;
    for (int i = 0; i + 1 < x->ndim; i++)
        r *= (size_t)x->shape[i];
    if (c > 0x7fffffff)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE, "%s: logits has more than 2^31 - 1 classes",
                            func);
    if (c == 0 && r > 0)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: logits is %s, with no classes", func,
                            clnet__tensor_shape_str(x, s, sizeof s));
    *rows = r;
    *cols = (int)c;
    return CLNET_OK;
}

/* labels: int32 with one element per row of logits. */
static clnet_status check_labels(clnet_context *ctx, const char *func, const clnet_tensor *labels,
                                 const clnet_tensor *logits, size_t rows)
{
    clnet_status st = check_one(ctx, func, labels, "labels", 0, CLNET_I32);
    if (st || labels->numel == rows)
        return st;
    char s[96];
    return clnet__error(ctx, CLNET_ERR_SHAPE,
                        "%s: labels holds %zu elements, expected %zu (the rows of logits, %s)",
                        func, labels->numel, rows, clnet__tensor_shape_str(logits, s, sizeof s));
}

static clnet_status xent(const char *func, int sparse, const clnet_tensor *x, const clnet_tensor *t,
                         clnet_tensor *loss, clnet_tensor *dx)
{
    const char *tname = sparse ? "labels" : "target";
    const clnet_tensor *any = x ? x : t ? t : loss ? loss : dx;
    CLNET_CHECK_ARG(NULL, any != NULL);
    clnet_context *ctx = any->ctx;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = check_one(ctx, func, x, "logits", 0, CLNET_F32)) ||
        (st = rows_classes(ctx, func, x, &rows, &cols)) ||
        (st = sparse ? check_labels(ctx, func, t, x, rows)
                     : check_one(ctx, func, t, "target", 0, CLNET_F32)) ||
        (st = sparse ? CLNET_OK : check_like(ctx, func, t, "target", x, "logits")) ||
        (st = check_one(ctx, func, dx, "dlogits", 1, CLNET_F32)) ||
        (st = check_like(ctx, func, dx, "dlogits", x, "logits")) ||
        (st = check_grad_alias(ctx, func, dx, "dlogits", x, "logits")) ||
        (st = check_grad_alias(ctx, func, dx, "dlogits", t, tname)) ||
        (st = check_loss(ctx, func, loss, (const clnet_tensor *[]){x, t, dx},
                         (const char *const[]){"logits", tname, "dlogits"}, 3)))
        return st;
    if (!loss && !dx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: loss and dlogits are both NULL", func);
    if (rows == 0)
        return loss ? clnet_tensor_fill(loss, NAN) : CLNET_OK;
    size_t wg = clnet__context_profile(ctx)->wg_size;
    int variant =
        clnet__variant(ctx, "softmax_xent.forward", (size_t)cols > wg ? CLNET_V_ROW_GROUP : CLNET_V_ROW_ITEM);
    char name[64];
    snprintf(name, sizeof name, "%sxent_%s", sparse ? "sparse_" : "",
             variant == CLNET_V_ROW_GROUP ? "group" : "item");
    cl_mem ws;
    cl_kernel k;
    /* Workspace: a loss per row, then finish_mean's partials. */
    size_t g = groups_for(ctx, rows);
    if ((st = clnet__workspace(ctx, (rows + g) * sizeof(float), &ws)) ||
        (st = clnet__kernel(ctx, "loss", NULL, name, &k)))
        return st;
    clnet__arg a[] = {CLNET_ARG_MEM(clnet__mem(x)),
                      CLNET_ARG_ULONG(x->offset),
                      CLNET_ARG_MEM(clnet__mem(t)),
                      CLNET_ARG_ULONG(t->offset),
                      CLNET_ARG_MEM(dx ? clnet__mem(dx) : ws),
                      CLNET_ARG_ULONG(dx ? dx->offset : 0),
                      CLNET_ARG_INT(dx != NULL),
                      CLNET_ARG_MEM(ws),
                      CLNET_ARG_ULONG(0),
                      CLNET_ARG_ULONG(rows),
                      CLNET_ARG_INT(cols),
                      CLNET_ARG_FLOAT((float)rows)};
    size_t global = variant == CLNET_V_ROW_GROUP ? rows * wg : rows;
    if ((st = clnet__launch(ctx, k, func, 12, a, 1, &global, &wg)) || !loss)
        return st;
    return finish_mean(ctx, func, ws, 0, rows, rows, loss, (double)rows);
}

CLNET_API clnet_status clnet_loss_softmax_xent(const clnet_tensor *logits,
                                               const clnet_tensor *target, clnet_tensor *loss,
                                               clnet_tensor *dlogits)
{
    return xent("clnet_loss_softmax_xent", 0, logits, target, loss, dlogits);
}

CLNET_API clnet_status clnet_loss_sparse_softmax_xent(const clnet_tensor *logits,
                                                      const clnet_tensor *labels,
                                                      clnet_tensor *loss, clnet_tensor *dlogits)
{
    return xent("clnet_loss_sparse_softmax_xent", 1, logits, labels, loss, dlogits);
}

/* correct: one element of ctx (int32 or float32), overlapping no input. */
static clnet_status check_correct(clnet_context *ctx, const char *func, const clnet_tensor *correct,
                                  const clnet_tensor *a, const clnet_tensor *b)
{
    if (!correct)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: correct is NULL",
                            func);
    if (correct->ctx != ctx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: correct belongs to another context",
                            func);
    if (correct->dtype != CLNET_I32 && correct->dtype != CLNET_F32)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: correct must be int32 or float32", func);
    if (correct->numel != 1)
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: correct holds %zu elements, expected 1",
                            func, correct->numel);
    if (overlaps(correct, a) || overlaps(correct, b))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: correct overlaps an input", func);
    return CLNET_OK;
}

/* Counts with `kernel` (arguments x, xo, t, to, n, extra, part, po, where
 * extra is cols or the threshold) over n items, then count_finish. */
static clnet_status count(clnet_context *ctx, const char *func, const char *kernel,
                          const clnet_tensor *x, const clnet_tensor *t, size_t n, clnet__arg extra,
                          clnet_tensor *correct)
{
    if (n == 0)
        return clnet_tensor_fill(correct, 0.0);
    size_t g = groups_for(ctx, n), wg = clnet__context_profile(ctx)->wg_size;
    cl_mem ws;
    cl_kernel k1, k2;
    clnet_status st;
    if ((st = clnet__workspace(ctx, g * sizeof(int32_t), &ws)) ||
        (st = clnet__kernel(ctx, "loss", NULL, kernel, &k1)) ||
        (st = clnet__kernel(ctx, "loss", NULL, "count_finish", &k2)))
        return st;
    clnet__arg a1[] = {CLNET_ARG_MEM(clnet__mem(x)),
                       CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(clnet__mem(t)),
                       CLNET_ARG_ULONG(t->offset),
                       CLNET_ARG_ULONG(n),
                       extra,
                       CLNET_ARG_MEM(ws),
                       CLNET_ARG_ULONG(0)};
    clnet__arg a2[] = {CLNET_ARG_MEM(ws),
                       CLNET_ARG_ULONG(0),
                       CLNET_ARG_ULONG(g),
                       CLNET_ARG_MEM(clnet__mem(correct)),
                       CLNET_ARG_ULONG(correct->offset),
                       CLNET_ARG_INT(correct->dtype == CLNET_F32)};
    size_t global = g * wg;
    if ((st = clnet__launch(ctx, k1, func, 8, a1, 1, &global, &wg)))
        return st;
    return clnet__launch(ctx, k2, func, 6, a2, 1, &wg, &wg);
}

CLNET_API clnet_status clnet_accuracy(const clnet_tensor *logits, const clnet_tensor *labels,
                                      clnet_tensor *correct)
{
    static const char func[] = "clnet_accuracy";
    const clnet_tensor *any = logits ? logits : labels ? labels : correct;
    CLNET_CHECK_ARG(NULL, any != NULL);
    clnet_context *ctx = any->ctx;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = check_one(ctx, func, logits, "logits", 0, CLNET_F32)) ||
        (st = rows_classes(ctx, func, logits, &rows, &cols)) ||
        (st = check_labels(ctx, func, labels, logits, rows)) ||
        (st = check_correct(ctx, func, correct, logits, labels)))
        return st;
    return count(ctx, func, "accuracy_partial", logits, labels, rows, CLNET_ARG_INT(cols), correct);
}

CLNET_API clnet_status clnet_categorical_accuracy(const clnet_tensor *pred,
                                                  const clnet_tensor *target,
                                                  clnet_tensor *correct)
{
    static const char func[] = "clnet_categorical_accuracy";
    const clnet_tensor *any = pred ? pred : target ? target : correct;
    CLNET_CHECK_ARG(NULL, any != NULL);
    clnet_context *ctx = any->ctx;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = check_one(ctx, func, pred, "pred", 0, CLNET_F32)) ||
        (st = rows_classes(ctx, func, pred, &rows, &cols)) ||
        (st = check_one(ctx, func, target, "target", 0, CLNET_F32)) ||
        (st = check_like(ctx, func, target, "target", pred, "pred")) ||
        (st = check_correct(ctx, func, correct, pred, target)))
        return st;
    return count(ctx, func, "categorical_accuracy_partial", pred, target, rows, CLNET_ARG_INT(cols),
                 correct);
}

CLNET_API clnet_status clnet_binary_accuracy(const clnet_tensor *pred, const clnet_tensor *target,
                                             float threshold, clnet_tensor *correct)
{
    static const char func[] = "clnet_binary_accuracy";
    const clnet_tensor *any = pred ? pred : target ? target : correct;
    CLNET_CHECK_ARG(NULL, any != NULL);
    clnet_context *ctx = any->ctx;
    clnet_status st;
    if ((st = check_one(ctx, func, pred, "pred", 0, CLNET_F32)) ||
        (st = check_one(ctx, func, target, "target", 0, CLNET_F32)) ||
        (st = check_like(ctx, func, target, "target", pred, "pred")) ||
        (st = check_correct(ctx, func, correct, pred, target)))
        return st;
    return count(ctx, func, "binary_accuracy_partial", pred, target, pred->numel,
                 CLNET_ARG_FLOAT(threshold), correct);
}
