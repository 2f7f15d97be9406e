/* clnet — losses and accuracy (cl/loss.cl): argument checks, the fixed-order
 * two-level mean, variant choice and launches. */
#include <math.h>
#include <stdio.h>

#include "clnet/loss.h"
#include "ops/op.h"

/* At most this many first-level partial sums (as clnet_sum). */
#define MAX_GROUPS 256

static size_t groups_for(clnet_context *ctx, size_t n)
{
    size_t wg = clnet__context_profile(ctx)->wg_size, g = (n + wg - 1) / wg;
    return g < 1 ? 1 : g > MAX_GROUPS ? MAX_GROUPS : g;
}

/* The tables of the losses: input, target, loss, gradient. The loss is one
 * float32 element overlapping nothing; the gradient has the input's shape
 * and may be the input or the target, exactly. */
#define LOSS_SPEC(x, t, tflags, tlike, dx)                                                         \
    {                                                                                              \
        { .name = x }, { .name = t, .flags = tflags, .like = tlike },                              \
            { .name = "loss", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL },                           \
            { .name = dx,                                                                          \
              .flags = CLNET_T_OUT | CLNET_T_OPTIONAL,                                             \
              .like = CLNET_LIKE(0),                                                               \
              .alias = CLNET_ALIAS(0) | CLNET_ALIAS(1) },                                          \
    }

static const clnet__tspec pred_spec[] = LOSS_SPEC("pred", "target", 0, CLNET_LIKE(0), "dpred");
static const clnet__tspec x_spec[] = LOSS_SPEC("x", "target", 0, CLNET_LIKE(0), "dx");
static const clnet__tspec xent_spec[] = LOSS_SPEC("logits", "target", 0, CLNET_LIKE(0), "dlogits");
static const clnet__tspec sparse_spec[] = LOSS_SPEC("logits", "labels", CLNET_T_I32, 0, "dlogits");

/* The loss (tensor 2) holds one element; loss and gradient are not both NULL. */
static clnet_status check_outputs(const clnet__op *op)
{
    if (op->t[2] && op->t[2]->numel != 1)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "loss: holds %zu elements, expected 1",
                              op->t[2]->numel);
    if (!op->t[2] && !op->t[3])
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "invalid argument: loss and %s are both NULL", op->spec[3].name);
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
        if ((st = clnet__kernel(ctx, "reduce", NULL, "sum_partial", &k)) ||
            (st = clnet__launch(ctx, k, func,
                                CLNET_ARGS(CLNET_ARG_MEM(buf), CLNET_ARG_ULONG(off),
                                           CLNET_ARG_ULONG(count), CLNET_ARG_MEM(buf),
                                           CLNET_ARG_ULONG(part_off)),
                                1, &global, &wg)))
            return st;
        off = part_off;
        count = g;
    }
    if ((st = clnet__kernel(ctx, "loss", NULL, "loss_finish", &k)))
        return st;
    return clnet__launch(ctx, k, func,
                         CLNET_ARGS(CLNET_ARG_MEM(buf), CLNET_ARG_ULONG(off),
                                    CLNET_ARG_ULONG(count), CLNET_ARG_TENSOR(out),
                                    CLNET_ARG_FLOAT(divisor)),
                         1, &wg, &wg);
}

/* ---- elementwise losses --------------------------------------------------- */

static clnet_status elementwise_loss(const char *func, const char *kernel, const clnet__tspec *spec,
                                     const clnet_tensor *x, const clnet_tensor *t,
                                     clnet_tensor *loss, clnet_tensor *dx)
{
    clnet__op op;
    clnet_status st;
    if ((st = clnet__op_check(&op, func, spec, 4,
                              (const clnet_tensor *const[]){ x, t, loss, dx })) ||
        (st = check_outputs(&op)))
        return st;
    size_t n = x->numel;
    if (n == 0)
        return loss ? clnet_tensor_fill(loss, NAN) : CLNET_OK;
    size_t g = groups_for(op.ctx, n), wg = clnet__context_profile(op.ctx)->wg_size;
    cl_mem ws;
    cl_kernel k;
    /* Workspace: g partials, then room for finish_mean's own partials. */
    if ((st = clnet__workspace(op.ctx, 2 * g * sizeof(float), &ws)) ||
        (st = clnet__kernel(op.ctx, "loss", NULL, kernel, &k)))
        return st;
    size_t global = g * wg;
    if ((st = clnet__launch(op.ctx, k, func,
                            CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(t), CLNET_ARG_ULONG(n),
                                       CLNET_ARG_MEM(dx ? clnet__mem(dx) : ws),
                                       CLNET_ARG_ULONG(dx ? dx->offset : 0),
                                       CLNET_ARG_INT(dx != NULL), CLNET_ARG_FLOAT((float)n),
                                       CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(0)),
                            1, &global, &wg)) ||
        !loss)
        return st;
    return finish_mean(op.ctx, func, ws, 0, g, g, loss, (double)n);
}

CLNET_API clnet_status clnet_loss_mse(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred)
{
    return elementwise_loss(__func__, "mse_partial", pred_spec, pred, target, loss, dpred);
}

CLNET_API clnet_status clnet_loss_mae(const clnet_tensor *pred, const clnet_tensor *target,
                                      clnet_tensor *loss, clnet_tensor *dpred)
{
    return elementwise_loss(__func__, "mae_partial", pred_spec, pred, target, loss, dpred);
}

CLNET_API clnet_status clnet_loss_bce_logits(const clnet_tensor *x, const clnet_tensor *target,
                                             clnet_tensor *loss, clnet_tensor *dx)
{
    return elementwise_loss(__func__, "bce_partial", x_spec, x, target, loss, dx);
}

/* ---- softmax cross-entropy and accuracy ------------------------------------ */

/* Tensor 0 as (rows, classes) over the last axis; classes >= 1 unless empty. */
static clnet_status rows_classes(const clnet__op *op, size_t *rows, int *cols)
{
    const clnet_tensor *x = op->t[0];
    char s[96];
    int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1;
    size_t r = 1;
    for (int i = 0; i + 1 < x->ndim; i++)
        r *= (size_t)x->shape[i];
    if (c > 0x7fffffff)
        return clnet__op_fail(op, CLNET_ERR_TOO_LARGE, "%s: more than 2^31 - 1 classes",
                              op->spec[0].name);
    if (c == 0 && r > 0)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "%s: shape %s, with no classes",
                              op->spec[0].name, clnet__tensor_shape_str(x, s, sizeof s));
    *rows = r;
    *cols = (int)c;
    return CLNET_OK;
}

/* labels (tensor 1): one element per row of logits. */
static clnet_status check_labels(const clnet__op *op, size_t rows)
{
    if (op->t[1]->numel == rows)
        return CLNET_OK;
    char s[96];
    return clnet__op_fail(op, CLNET_ERR_SHAPE,
                          "labels: holds %zu elements, expected %zu (the rows of logits, %s)",
                          op->t[1]->numel, rows, clnet__tensor_shape_str(op->t[0], s, sizeof s));
}

static clnet_status xent(const char *func, int sparse, const clnet_tensor *x, const clnet_tensor *t,
                         clnet_tensor *loss, clnet_tensor *dx)
{
    clnet__op op;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = clnet__op_check(&op, func, sparse ? sparse_spec : xent_spec, 4,
                              (const clnet_tensor *const[]){ x, t, loss, dx })) ||
        (st = rows_classes(&op, &rows, &cols)) || (sparse && (st = check_labels(&op, rows))) ||
        (st = check_outputs(&op)))
        return st;
    if (rows == 0)
        return loss ? clnet_tensor_fill(loss, NAN) : CLNET_OK;
    size_t wg = clnet__context_profile(op.ctx)->wg_size;
    int variant = clnet__variant(op.ctx, "softmax_xent.forward",
                                 (size_t)cols > wg ? CLNET_V_ROW_GROUP : CLNET_V_ROW_ITEM);
    char name[64];
    snprintf(name, sizeof name, "%sxent_%s", sparse ? "sparse_" : "",
             variant == CLNET_V_ROW_GROUP ? "group" : "item");
    cl_mem ws;
    cl_kernel k;
    /* Workspace: a loss per row, then finish_mean's partials. */
    size_t g = groups_for(op.ctx, rows);
    if ((st = clnet__workspace(op.ctx, (rows + g) * sizeof(float), &ws)) ||
        (st = clnet__kernel(op.ctx, "loss", NULL, name, &k)))
        return st;
    size_t global = variant == CLNET_V_ROW_GROUP ? rows * wg : rows;
    if ((st = clnet__launch(op.ctx, k, func,
                            CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(t),
                                       CLNET_ARG_MEM(dx ? clnet__mem(dx) : ws),
                                       CLNET_ARG_ULONG(dx ? dx->offset : 0),
                                       CLNET_ARG_INT(dx != NULL), CLNET_ARG_MEM(ws),
                                       CLNET_ARG_ULONG(0), CLNET_ARG_ULONG(rows),
                                       CLNET_ARG_INT(cols), CLNET_ARG_FLOAT((float)rows)),
                            1, &global, &wg)) ||
        !loss)
        return st;
    return finish_mean(op.ctx, func, ws, 0, rows, rows, loss, (double)rows);
}

CLNET_API clnet_status clnet_loss_softmax_xent(const clnet_tensor *logits,
                                               const clnet_tensor *target, clnet_tensor *loss,
                                               clnet_tensor *dlogits)
{
    return xent(__func__, 0, logits, target, loss, dlogits);
}

CLNET_API clnet_status clnet_loss_sparse_softmax_xent(const clnet_tensor *logits,
                                                      const clnet_tensor *labels,
                                                      clnet_tensor *loss, clnet_tensor *dlogits)
{
    return xent(__func__, 1, logits, labels, loss, dlogits);
}

/* Counts with `kernel` (arguments x, xo, t, to, n, extra, part, po, where
 * extra is cols or the threshold) over n items, then count_finish into
 * correct (tensor 2: one element, int32 or float32). */
static clnet_status count(const clnet__op *op, const char *kernel, size_t n, clnet__arg extra)
{
    const clnet_tensor *x = op->t[0], *t = op->t[1], *correct = op->t[2];
    if (correct->numel != 1)
        return clnet__op_fail(op, CLNET_ERR_SHAPE, "correct: holds %zu elements, expected 1",
                              correct->numel);
    if (n == 0)
        return clnet_tensor_fill((clnet_tensor *)correct, 0.0);
    size_t g = groups_for(op->ctx, n), wg = clnet__context_profile(op->ctx)->wg_size;
    cl_mem ws;
    cl_kernel k1, k2;
    clnet_status st;
    if ((st = clnet__workspace(op->ctx, g * sizeof(int32_t), &ws)) ||
        (st = clnet__kernel(op->ctx, "loss", NULL, kernel, &k1)) ||
        (st = clnet__kernel(op->ctx, "loss", NULL, "count_finish", &k2)))
        return st;
    size_t global = g * wg;
    if ((st = clnet__launch(op->ctx, k1, op->func,
                            CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(t), CLNET_ARG_ULONG(n),
                                       extra, CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(0)),
                            1, &global, &wg)))
        return st;
    return clnet__launch(op->ctx, k2, op->func,
                         CLNET_ARGS(CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(0), CLNET_ARG_ULONG(g),
                                    CLNET_ARG_TENSOR(correct),
                                    CLNET_ARG_INT(correct->dtype == CLNET_F32)),
                         1, &wg, &wg);
}

#define CORRECT                                                                                    \
    {                                                                                              \
        .name = "correct", .flags = CLNET_T_OUT | CLNET_T_ANY_DTYPE                                \
    }

CLNET_API clnet_status clnet_accuracy(const clnet_tensor *logits, const clnet_tensor *labels,
                                      clnet_tensor *correct)
{
    static const clnet__tspec spec[] = { { .name = "logits" },
                                         { .name = "labels", .flags = CLNET_T_I32 },
                                         CORRECT };
    clnet__op op;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, logits, labels, correct)) ||
        (st = rows_classes(&op, &rows, &cols)) || (st = check_labels(&op, rows)))
        return st;
    return count(&op, "accuracy_partial", rows, CLNET_ARG_INT(cols));
}

/* pred, target of one shape; correct. */
static const clnet__tspec pair_spec[] = { { .name = "pred" },
                                          { .name = "target", .like = CLNET_LIKE(0) },
                                          CORRECT };

CLNET_API clnet_status clnet_categorical_accuracy(const clnet_tensor *pred,
                                                  const clnet_tensor *target, clnet_tensor *correct)
{
    clnet__op op;
    size_t rows = 0;
    int cols = 0;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, pair_spec, pred, target, correct)) ||
        (st = rows_classes(&op, &rows, &cols)))
        return st;
    return count(&op, "categorical_accuracy_partial", rows, CLNET_ARG_INT(cols));
}

CLNET_API clnet_status clnet_binary_accuracy(const clnet_tensor *pred, const clnet_tensor *target,
                                             float threshold, clnet_tensor *correct)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, pair_spec, pred, target, correct);
    return st ? st : count(&op, "binary_accuracy_partial", pred->numel, CLNET_ARG_FLOAT(threshold));
}
