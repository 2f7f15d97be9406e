/* clnet — training: compile (optimizer state), the loss and its gradient,
 * optimizer steps, train_on_batch, fit, evaluate, predict, progress. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fit_hooks.h"
#include "nn_impl.h"
#include "tensor/tensor_impl.h"

static const char *loss_name(clnet_loss_kind loss)
{
    switch (loss) {
    case CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
        return "sparse categorical cross-entropy";
    case CLNET_LOSS_CATEGORICAL_CROSSENTROPY:
        return "categorical cross-entropy";
    case CLNET_LOSS_BINARY_CROSSENTROPY:
        return "binary cross-entropy";
    case CLNET_LOSS_MSE:
        return "mean squared error";
    case CLNET_LOSS_NONE:
        break;
    }
    return "no loss";
}

static const char *act_name(int act)
{
    return clnet_activation_name((clnet_activation)act);
}

/* The one rule for an output activation and a loss (nn.h, docs/losses.md):
 * the natural pair is fused into the loss from logits, from_logits takes raw
 * scores, MSE takes anything, everything else is refused here. */
static clnet_status check_output_rule(clnet_model *m, const clnet_compile_params *p, int k,
                                      clnet_loss_kind kind)
{
    const clnet__layer *l = clnet__output_layer(m, k);
    int act = clnet__output_act(m, k);
    const char *f = "clnet_model_compile", *loss = loss_name(kind);
    if (kind == CLNET_LOSS_MSE || kind == CLNET_LOSS_NONE) {
        if (p->from_logits)
            return clnet__error(
                m->ctx, CLNET_ERR_INVALID_ARG,
                "%s: from_logits applies to the cross-entropy losses only, not to "
                "%s (it is computed on what the model outputs): set from_logits = 0",
                f, loss);
        return CLNET_OK;
    }
    if (!l)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: output %d is a model input; only MSE or no loss can take it", f,
                            k);
    if (kind == CLNET_LOSS_CATEGORICAL_CROSSENTROPY && l->out_ndim == 3)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: categorical cross-entropy on the NCHW output of layer %d (%s) "
                            "would take the classes on the width axis; per-pixel cross-entropy "
                            "over channels is not implemented: Flatten and end with a Dense "
                            "layer, or use binary cross-entropy or MSE per element",
                            f, l->index, l->name);
    if (p->from_logits) {
        if (act == CLNET_ACT_NONE)
            return CLNET_OK;
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: %s with from_logits = 1 takes raw scores, but the last layer %d "
                            "(%s) applies %s: remove that activation, or keep a %s output and set "
                            "from_logits = 0",
                            f, loss, l->index, l->name, act_name(act),
                            kind == CLNET_LOSS_BINARY_CROSSENTROPY ? "sigmoid" : "softmax");
    }
    int want = kind == CLNET_LOSS_BINARY_CROSSENTROPY ? CLNET_ACT_SIGMOID : CLNET_ACT_SOFTMAX;
    if (act == want)
        return CLNET_OK;
    return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                        "%s: %s with from_logits = 0 takes probabilities from a %s output, but "
                        "the last layer %d (%s) applies %s%s: end the model with activation %s "
                        "(fused in the last layer or an Activation layer), or leave the output "
                        "linear and set from_logits = 1",
                        f, loss, act_name(want), l->index, l->name, act_name(act),
                        act == CLNET_ACT_SIGMOID   ? " (independent yes/no outputs go with binary "
                                                     "cross-entropy)"
                        : act == CLNET_ACT_SOFTMAX ? " (one class of several goes with categorical "
                                                     "cross-entropy)"
                                                   : "",
                        act_name(want));
}

/* Output k's loss and weight under p. */
static clnet_loss_kind output_loss(const clnet_compile_params *p, int k)
{
    return p->nlosses ? p->losses[k] : p->loss;
}

static float output_weight(const clnet_compile_params *p, int k)
{
    return p->nlosses ? p->loss_weights[k] : 1.0f;
}

/* A loss per output, each meeting its output's activation by the rule. */
static clnet_status check_losses(clnet_model *m, const clnet_compile_params *p)
{
    static const char f[] = "clnet_model_compile";
    int outs = clnet_model_output_count(m);
    if (p->reduction != CLNET_REDUCTION_MEAN && p->reduction != CLNET_REDUCTION_SUM)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: reduction is %d (not a clnet_reduction)", f, (int)p->reduction);
    if (p->nlosses != 0 && p->nlosses != outs)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: nlosses is %d but the model has %d output%s (0 takes `loss` for "
                            "a model of one output)",
                            f, p->nlosses, outs, outs == 1 ? "" : "s");
    if (!p->nlosses && outs != 1)
        return clnet__error(
            m->ctx, CLNET_ERR_INVALID_ARG,
            "%s: the model has %d outputs: give a loss for each (nlosses, losses[], "
            "loss_weights[])",
            f, outs);
    for (int k = 0; k < outs; k++) {
        clnet_loss_kind kind = output_loss(p, k);
        float w = output_weight(p, k);
        if (kind < CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || kind > CLNET_LOSS_NONE)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: losses[%d] is %d (not a clnet_loss_kind)", f, k, (int)kind);
        if (!(w >= 0.0f && w < 1e30f))
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: loss_weights[%d] is %g (must be finite and >= 0)", f, k,
                                (double)w);
        if (p->reduction == CLNET_REDUCTION_SUM && kind != CLNET_LOSS_MSE &&
            kind != CLNET_LOSS_BINARY_CROSSENTROPY && kind != CLNET_LOSS_NONE)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: CLNET_REDUCTION_SUM applies to MSE and binary cross-entropy; "
                                "%s sums over the classes already: use CLNET_REDUCTION_MEAN",
                                f, loss_name(kind));
        int64_t shape[CLNET_MAX_DIMS];
        int nd = clnet_model_node_shape(m, clnet__output_node(m, k), shape);
        if (kind == CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && nd != 1)
            return clnet__error(
                m->ctx, CLNET_ERR_SHAPE,
                "clnet_model_compile: sparse categorical cross-entropy needs a (batch, "
                "classes) output");
        clnet_status st = check_output_rule(m, p, k, kind);
        if (st)
            return st;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_compile(clnet_model *m, const clnet_compile_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_compile_params defaults = CLNET_COMPILE_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(m->ctx, p->optimizer >= CLNET_OPTIMIZER_ADAM &&
                                p->optimizer <= CLNET_OPTIMIZER_RMSPROP);
    if (p->loss < CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || p->loss > CLNET_LOSS_NONE)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_compile: loss is %d (not a clnet_loss_kind)",
                            (int)p->loss);
    CLNET_CHECK_ARG(m->ctx, p->clip_norm >= 0.0f);
    if (!m->napps)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_compile: the model has no layers");
    clnet_status rule = check_losses(m, p);
    if (rule)
        return rule;
    int ngrads = 0;
    for (int i = 0; i < m->nlayers; i++)
        ngrads += m->layers[i]->nparams;
    clnet_tensor **room =
        clnet__realloc(m->clip_grads, (size_t)(ngrads ? ngrads : 1) * sizeof *room);
    if (!room)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_model_compile: out of host memory");
    m->clip_grads = room;
    m->compile = *p;
    for (int i = 0; i < m->nlayers; i++) {
        clnet__layer *l = m->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            clnet__param *q = &l->params[k];
            if (!q->grad)
                continue;
            int64_t shape[CLNET_MAX_DIMS];
            int nd = clnet_tensor_shape(q->value, shape);
            clnet_status st;
            /* SGD without momentum keeps no state. */
            int need_m = p->optimizer != CLNET_OPTIMIZER_SGD || p->sgd.momentum > 0.0f;
            int need_v = p->optimizer == CLNET_OPTIMIZER_ADAM;
            if (need_m && !q->m &&
                ((st = clnet_tensor_create(m->ctx, CLNET_F32, nd, shape, &q->m)) ||
                 (st = clnet_tensor_fill(q->m, 0.0))))
                return st;
            if (need_v && !q->v &&
                ((st = clnet_tensor_create(m->ctx, CLNET_F32, nd, shape, &q->v)) ||
                 (st = clnet_tensor_fill(q->v, 0.0))))
                return st;
        }
    }
    m->compiled = 1;
    m->step_count = 0;
    return CLNET_OK;
}

/* Every trained gradient, however many (compile made room for all). */
static clnet_status clip(clnet_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; m->layers[i]->trainable && k < m->layers[i]->nparams; k++)
            if (m->layers[i]->params[k].grad)
                m->clip_grads[n++] = m->layers[i]->params[k].grad;
    return n ? clnet_clip_grad_norm(m->clip_grads, n, m->compile.clip_norm, NULL) : CLNET_OK;
}

CLNET_API clnet_status clnet_model_step(clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_step: compile the model first");
    clnet_status st;
    if (m->hooks.before_step && (st = m->hooks.before_step(m->hooks.user, m)))
        return st;
    if (m->check_numerics && (st = clnet__check_grads(m)))
        return st;
    if (m->compile.clip_norm > 0.0f && (st = clip(m)))
        return st;
    m->step_count++;
    for (int i = 0; i < m->nlayers; i++) {
        clnet__layer *l = m->layers[i];
        for (int k = 0; l->trainable && k < l->nparams; k++) {
            clnet__param *q = &l->params[k];
            if (!q->grad)
                continue;
            switch (m->compile.optimizer) {
            case CLNET_OPTIMIZER_ADAM:
                st =
                    clnet_adam_step(&m->compile.adam, m->step_count, q->value, q->grad, q->m, q->v);
                break;
            case CLNET_OPTIMIZER_SGD:
                st = clnet_sgd_step(&m->compile.sgd, m->step_count, q->value, q->grad, q->m);
                break;
            default:
                st = clnet_rmsprop_step(&m->compile.rmsprop, q->value, q->grad, q->m);
                break;
            }
            if (st)
                return clnet__error(m->ctx, st, "layer %d (%s) %s: %s", i, l->name, q->name,
                                    clnet_context_errmsg(m->ctx));
        }
    }
    return CLNET_OK;
}

/* Output k's loss into `loss`, its gradient at the logits into
 * m->dlogits_v[k], the metric's raw value into `correct` (see
 * clnet__model_metric_scale); before the reduction and the weight. */
static clnet_status loss_raw(clnet_model *m, int k, const clnet_tensor *y, clnet_tensor *loss,
                             clnet_tensor *correct)
{
    const clnet_tensor *logits = clnet__output_logits(m, k);
    const clnet_tensor *out = clnet__node_act(m, clnet__output_node(m, k));
    int act = clnet__output_act(m, k);
    clnet_tensor *dlogits = m->dlogits_v[k];
    clnet_status st;
    switch (output_loss(&m->compile, k)) {
    case CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
        st = clnet_loss_sparse_softmax_xent(logits, y, loss, dlogits);
        return st || !correct ? st : clnet_accuracy(out, y, correct);
    case CLNET_LOSS_CATEGORICAL_CROSSENTROPY:
        st = clnet_loss_softmax_xent(logits, y, loss, dlogits);
        return st || !correct ? st : clnet_categorical_accuracy(out, y, correct);
    case CLNET_LOSS_BINARY_CROSSENTROPY:
        st = clnet_loss_bce_logits(logits, y, loss, dlogits);
        return st || !correct
                   ? st
                   : clnet_binary_accuracy(out, y, m->compile.from_logits ? 0.0f : 0.5f, correct);
    case CLNET_LOSS_MSE:
        /* On the output; backward starts at the logits of a softmax or
         * sigmoid output, so the chain rule through it is applied here. */
        st = clnet_loss_mse(out, y, loss, dlogits);
        if (!st && act == CLNET_ACT_SIGMOID)
            st = clnet_activation_backward(CLNET_ACT_SIGMOID, 0.0f, NULL, out, dlogits, dlogits);
        else if (!st && act == CLNET_ACT_SOFTMAX)
            st = clnet__softmax_backward(clnet__output_layer(m, k), out, dlogits, dlogits);
        return st || !correct ? st : clnet_loss_mae(out, y, correct, NULL);
    case CLNET_LOSS_NONE:
        break;
    }
    return CLNET_ERR_INTERNAL;
}

/* Output k's loss as compiled: the raw loss, times the features per sample
 * for CLNET_REDUCTION_SUM (a mean over all elements becomes a sum over each
 * sample's, averaged over the batch), times the output's weight; the
 * gradient likewise. Nothing is scaled by 1, so the default is the raw loss's
 * bits. */
static clnet_status loss_one(clnet_model *m, int k, const clnet_tensor *y, clnet_tensor *loss,
                             clnet_tensor *correct)
{
    clnet_status st = loss_raw(m, k, y, loss, correct);
    double f = output_weight(&m->compile, k);
    if (m->compile.reduction == CLNET_REDUCTION_SUM) {
        int64_t shape[CLNET_MAX_DIMS];
        int nd = clnet_model_node_shape(m, clnet__output_node(m, k), shape);
        for (int d = 0; d < nd; d++)
            f *= (double)shape[d];
    }
    if (!st && f != 1.0 && !(st = clnet_scale((float)f, loss, loss)))
        st = clnet_scale((float)f, m->dlogits_v[k], m->dlogits_v[k]);
    return st;
}

/* The loss of a model of one output into m->loss (plus the layers' terms),
 * its gradient at the logits into m->dlogits_v[0], the metric into
 * m->correct. */
static clnet_status loss_and_grad(clnet_model *m, const clnet_tensor *y)
{
    clnet_status st = loss_one(m, 0, y, m->loss, m->correct);
    if (!st && m->nextra_loss)
        st = clnet_axpy(1.0f, m->extra_loss, m->loss);
    return st;
}

/* The metric summed over a batch of n samples is metric_scale * m->correct:
 * m->correct counts rows (sparse, categorical) or elements (binary) or is the
 * mean absolute error over the elements (MSE). */
double clnet__model_metric_scale(const clnet_model *m, int64_t n)
{
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_output_shape(m, shape);
    double per = 1; /* output elements per sample */
    for (int i = 0; i < nd; i++)
        per *= (double)shape[i];
    switch (output_loss(&m->compile, 0)) {
    case CLNET_LOSS_CATEGORICAL_CROSSENTROPY:
        return (double)shape[nd - 1] / per;
    case CLNET_LOSS_BINARY_CROSSENTROPY:
        return 1.0 / per;
    case CLNET_LOSS_MSE:
        return (double)n;
    default:
        return 1.0;
    }
}

const char *clnet__model_metric_name(const clnet_model *m)
{
    return output_loss(&m->compile, 0) == CLNET_LOSS_MSE ? "mae" : "accuracy";
}

static clnet_status need_loss(clnet_model *m, const char *func)
{
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: compile the model first", func);
    if (m->ninputs != 1 || clnet_model_output_count(m) != 1)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d inputs and %d outputs; fit, evaluate, predict "
                            "and train_on_batch take one of each: use "
                            "clnet_model_train_on_batch_multi",
                            func, m->ninputs, clnet_model_output_count(m));
    if (output_loss(&m->compile, 0) == CLNET_LOSS_NONE)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model was compiled with CLNET_LOSS_NONE (optimizer only): "
                            "compile it with a loss, or train it with forward / backward / step",
                            func);
    return CLNET_OK;
}

static int sparse_targets(const clnet_model *m)
{
    return output_loss(&m->compile, 0) == CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
}

static int64_t classes(const clnet_model *m)
{
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_output_shape(m, shape);
    return shape[nd - 1];
}

/* Sparse labels must name a class: the device loss would give NaN. */
static clnet_status check_labels(clnet_model *m, const char *func, const int32_t *y, int64_t n)
{
    int64_t c = classes(m);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= c)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: label %d of sample %lld is outside [0, %lld), the model's "
                                "classes",
                                func, (int)y[i], (long long)i, (long long)c);
    return CLNET_OK;
}

static clnet_status check_targets(clnet_model *m, const char *func, const clnet_tensor *y,
                                  int64_t batch)
{
    CLNET_CHECK_ARG(m->ctx, y != NULL);
    int sparse = sparse_targets(m);
    if (y->dtype != (sparse ? CLNET_I32 : CLNET_F32))
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            sparse ? "%s: sparse categorical cross-entropy takes int32 class "
                                     "labels, but y is %s (one-hot float targets go with "
                                     "CLNET_LOSS_CATEGORICAL_CROSSENTROPY)"
                                   : "%s: %s takes float32 targets, but y is %s (int32 class "
                                     "labels go with CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)",
                            func,
                            sparse ? (y->dtype == CLNET_I32 ? "int32" : "float32")
                                   : loss_name(output_loss(&m->compile, 0)),
                            (y->dtype == CLNET_I32 ? "int32" : "float32"));
    size_t want = sparse ? (size_t)batch
                         : (size_t)batch *
                               clnet_tensor_numel(clnet__node_act(m, clnet__output_node(m, 0))) /
                               (size_t)m->batch;
    if (y->ctx != m->ctx || y->numel != want)
        return clnet__error(
            m->ctx, CLNET_ERR_SHAPE, "%s: y must hold %zu %s values for a batch of %lld (has %zu)",
            func, want, sparse ? "int32 label" : "float32 target", (long long)batch, y->numel);
    return CLNET_OK;
}

/* One step; leaves loss and correct in the model's one-element tensors. */
static clnet_status train_step(clnet_model *m, const clnet_tensor *x, const clnet_tensor *y)
{
    clnet_status st = clnet_model_forward(m, x, 1, NULL, NULL);
    if (st || (st = check_targets(m, "clnet_model_train_on_batch", y, x->shape[0])) ||
        (st = loss_and_grad(m, y)) || (m->check_numerics && (st = clnet__check_loss(m))) ||
        (st = clnet_model_backward(m, m->dlogits_v[0], NULL)))
        return st;
    return clnet_model_step(m);
}

/* The labels of a device batch, read back and checked. The bad label's
 * loss is NaN and its gradient row 0 (clnet/loss.h). */
static clnet_status check_device_labels(clnet_model *m, const char *func, const clnet_tensor *y)
{
    if (!sparse_targets(m) || !y || y->dtype != CLNET_I32 || !y->numel)
        return CLNET_OK;
    int32_t *h = clnet__malloc(y->numel * sizeof *h);
    if (!h)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", func);
    clnet_status st = clnet_tensor_download(y, h, y->numel * sizeof *h);
    if (!st)
        st = check_labels(m, func, h, (int64_t)y->numel);
    clnet__free(h);
    return st;
}

CLNET_API clnet_status clnet_model_train_on_batch(clnet_model *m, const clnet_tensor *x,
                                                  const clnet_tensor *y, double *loss,
                                                  double *accuracy)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const char func[] = "clnet_model_train_on_batch";
    clnet_status st = need_loss(m, func);
    if (st || (st = train_step(m, x, y)))
        return st;
    float v;
    if (loss && !(st = clnet_tensor_download(m->loss, &v, sizeof v)))
        *loss = v;
    /* A NaN loss may be a label out of range: say which (the caller waited
     * for the loss anyway; a step without reads never waits). */
    if (!st && loss && isnan(v) && (st = check_device_labels(m, func, y)))
        return st;
    if (!st && accuracy && !(st = clnet_tensor_download(m->correct, &v, sizeof v)))
        *accuracy = clnet__model_metric_scale(m, x->shape[0]) * v / (double)x->shape[0];
    return st;
}

CLNET_API clnet_status clnet_model_train_on_batch_multi(clnet_model *m, int nx,
                                                        const clnet_tensor *const *x, int ny,
                                                        const clnet_tensor *const *y, double *loss)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const char func[] = "clnet_model_train_on_batch_multi";
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: compile the model first", func);
    int outs = clnet_model_output_count(m);
    if (ny != outs || !y)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d output%s, %d targets given", func, outs,
                            outs == 1 ? "" : "s", y ? ny : 0);
    clnet_status st = clnet__model_forward(m, func, nx, x, 1);
    const clnet_tensor *seed[CLNET_MODEL_MAX_IO] = { 0 };
    if (st || (st = clnet_tensor_fill(m->loss, 0.0)))
        return st;
    for (int k = 0; k < outs && !st; k++) {
        clnet_loss_kind kind = output_loss(&m->compile, k);
        if (kind == CLNET_LOSS_NONE)
            continue;
        int sparse = kind == CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
        const clnet_tensor *out = clnet__node_act(m, clnet__output_node(m, k));
        if (!y[k] || y[k]->ctx != m->ctx || y[k]->dtype != (sparse ? CLNET_I32 : CLNET_F32) ||
            y[k]->numel != (sparse ? (size_t)m->batch : out->numel))
            return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                                "%s: y[%d] must hold %zu %s for output %d's %s", func, k,
                                sparse ? (size_t)m->batch : out->numel,
                                sparse ? "int32 labels" : "float32 targets", k, loss_name(kind));
        if (!(st = loss_one(m, k, y[k], m->out_loss, k ? NULL : m->correct)))
            st = clnet_axpy(1.0f, m->out_loss, m->loss);
        seed[k] = m->dlogits_v[k];
    }
    if (!st && m->nextra_loss)
        st = clnet_axpy(1.0f, m->extra_loss, m->loss);
    if (st || (m->check_numerics && (st = clnet__check_loss(m))) ||
        (st = clnet__model_backward(m, func, outs, seed, 0, NULL)) || (st = clnet_model_step(m)))
        return st;
    float v;
    if (loss && !(st = clnet_tensor_download(m->loss, &v, sizeof v)))
        *loss = v;
    return st;
}

/* ---- Host data on the device ---------------------------------------------------- */

typedef struct device_data {
    clnet_tensor *x, *y;          /* the whole dataset */
    clnet_tensor *order;          /* int32 sample order */
    clnet_tensor *bx, *by, *bidx; /* batch buffers (max batch) */
    int64_t count, batch;
} device_data;

static void device_data_free(device_data *d)
{
    clnet_tensor_destroy(d->x);
    clnet_tensor_destroy(d->y);
    clnet_tensor_destroy(d->order);
    clnet_tensor_destroy(d->bx);
    clnet_tensor_destroy(d->by);
    clnet_tensor_destroy(d->bidx);
    memset(d, 0, sizeof *d);
}

/* Uploads the dataset once, so each step only gathers rows on the device. */
static clnet_status device_data_make(clnet_model *m, const clnet_dataset_view *v, int64_t batch,
                                     int with_targets, device_data *d)
{
    memset(d, 0, sizeof *d);
    int64_t xs[CLNET_MAX_DIMS], ys[CLNET_MAX_DIMS], out[CLNET_MAX_DIMS];
    xs[0] = v->count;
    memcpy(xs + 1, m->in_shape, (size_t)m->in_ndim * sizeof *xs);
    int ynd = sparse_targets(m) ? 0 : clnet_model_output_shape(m, out);
    memcpy(ys + 1, out, (size_t)ynd * sizeof *out);
    ys[0] = v->count;
    d->count = v->count;
    d->batch = batch;
    clnet_dtype yt = sparse_targets(m) ? CLNET_I32 : CLNET_F32;
    clnet_status st;
    if ((st = clnet_tensor_create(m->ctx, CLNET_F32, m->in_ndim + 1, xs, &d->x)) ||
        (st = clnet_tensor_upload(d->x, v->x, d->x->numel * sizeof(float))) ||
        (st = clnet_tensor_create(m->ctx, CLNET_I32, 1, &v->count, &d->order)))
        goto fail;
    if (with_targets && ((st = clnet_tensor_create(m->ctx, yt, ynd + 1, ys, &d->y)) ||
                         (st = clnet_tensor_upload(d->y, v->y, d->y->numel * 4))))
        goto fail;
    xs[0] = ys[0] = batch;
    if ((st = clnet_tensor_create(m->ctx, CLNET_F32, m->in_ndim + 1, xs, &d->bx)) ||
        (st = clnet_tensor_create(m->ctx, yt, ynd + 1, ys, &d->by)))
        goto fail;
    return CLNET_OK;
fail:
    device_data_free(d);
    return st;
}

/* Views of the batch buffers holding rows [start, start + n) of the order. */
static clnet_status gather(device_data *d, int64_t start, int64_t n, int with_targets,
                           clnet_tensor **bx, clnet_tensor **by)
{
    clnet_tensor *idx = NULL;
    *bx = *by = NULL;
    clnet_status st;
    if ((st = clnet_tensor_slice(d->order, start, n, &idx)) ||
        (st = clnet_tensor_slice(d->bx, 0, n, bx)) ||
        (st = clnet_tensor_gather_rows(d->x, idx, *bx)))
        goto done;
    if (with_targets && ((st = clnet_tensor_slice(d->by, 0, n, by)) ||
                         (st = clnet_tensor_gather_rows(d->y, idx, *by))))
        goto done;
done:
    clnet_tensor_destroy(idx);
    return st;
}

/* Fisher-Yates with splitmix64: the same seed gives the same order anywhere. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void clnet__sample_order(int32_t *order, int64_t n, int shuffle, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    for (int64_t i = n - 1; shuffle && i > 0; i--) {
        int64_t j = (int64_t)(mix(state) % (uint64_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static clnet_status set_order(clnet_model *m, device_data *d, int shuffle, uint64_t *state)
{
    int32_t *ord = clnet__malloc((size_t)d->count * sizeof *ord);
    if (!ord)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "fit: out of host memory");
    clnet__sample_order(ord, d->count, shuffle, state);
    clnet_status st = clnet_tensor_upload(d->order, ord, (size_t)d->count * sizeof *ord);
    clnet__free(ord);
    return st;
}

static clnet_status read_sums(clnet_model *m, double *loss, double *correct)
{
    float l = 0, c = 0;
    clnet_status st = clnet_tensor_download(m->loss_sum, &l, sizeof l);
    if (!st)
        st = clnet_tensor_download(m->correct_sum, &c, sizeof c);
    *loss = l;
    *correct = c;
    return st;
}

/* Accumulates this batch's mean loss (weighted by its size) and correct count. */
static clnet_status accumulate(clnet_model *m, int64_t n)
{
    clnet_status st = clnet_axpy((float)n, m->loss, m->loss_sum);
    return st ? st : clnet_axpy((float)clnet__model_metric_scale(m, n), m->correct, m->correct_sum);
}

CLNET_API clnet_dataset_view clnet_dataset_view_of(const clnet_dataset *ds)
{
    clnet_dataset_view v = { NULL, NULL, 0 };
    if (ds) {
        v.x = ds->images;
        v.y = ds->labels;
        v.count = (int64_t)ds->count;
    }
    return v;
}

static clnet_status check_view(clnet_model *m, const char *func, const clnet_dataset_view *v,
                               int need_y)
{
    CLNET_CHECK_ARG(m->ctx, v != NULL);
    if (!v->x || (need_y && !v->y) || v->count <= 0 || v->count > INT32_MAX)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: data needs x%s and 1 <= count <= 2^31-1 (count %lld)", func,
                            need_y ? ", y" : "", (long long)v->count);
    return need_y && sparse_targets(m) ? check_labels(m, func, v->y, v->count) : CLNET_OK;
}

CLNET_API clnet_status clnet_model_evaluate(clnet_model *m, const clnet_dataset_view *data,
                                            int batch_size, double *loss, double *accuracy)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, batch_size > 0);
    clnet_status st = need_loss(m, "clnet_model_evaluate");
    if (st || (st = check_view(m, "clnet_model_evaluate", data, 1)))
        return st;
    int64_t b = batch_size < data->count ? batch_size : data->count;
    device_data d;
    uint64_t none = 0;
    if ((st = device_data_make(m, data, b, 1, &d)) || (st = set_order(m, &d, 0, &none)) ||
        (st = clnet_tensor_fill(m->loss_sum, 0)) || (st = clnet_tensor_fill(m->correct_sum, 0)))
        goto done;
    for (int64_t s = 0; s < d.count && !st; s += b) {
        int64_t n = d.count - s < b ? d.count - s : b;
        clnet_tensor *bx, *by;
        if (!(st = gather(&d, s, n, 1, &bx, &by)) &&
            !(st = clnet_model_forward(m, bx, 0, NULL, NULL)) &&
            !(st = check_targets(m, "clnet_model_evaluate", by, n)) && !(st = loss_and_grad(m, by)))
            st = accumulate(m, n);
        clnet_tensor_destroy(bx);
        clnet_tensor_destroy(by);
    }
    double l = 0, c = 0;
    if (!st && !(st = read_sums(m, &l, &c))) {
        if (loss)
            *loss = l / (double)d.count;
        if (accuracy)
            *accuracy = c / (double)d.count;
    }
done:
    device_data_free(&d);
    return st;
}

CLNET_API clnet_status clnet_model_predict(clnet_model *m, const float *x, int64_t count,
                                           int batch_size, float *out)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, x != NULL && out != NULL && count > 0 && batch_size > 0);
    clnet_dataset_view v = { x, NULL, count };
    clnet_status st = check_view(m, "clnet_model_predict", &v, 0);
    if (st)
        return st;
    int64_t b = batch_size < count ? batch_size : count;
    device_data d;
    uint64_t none = 0;
    if ((st = device_data_make(m, &v, b, 0, &d)) || (st = set_order(m, &d, 0, &none)))
        goto done;
    size_t row = 0;
    for (int64_t s = 0; s < count && !st; s += b) {
        int64_t n = count - s < b ? count - s : b;
        clnet_tensor *bx, *by;
        const clnet_tensor *y;
        if (!(st = gather(&d, s, n, 0, &bx, &by)) &&
            !(st = clnet_model_forward(m, bx, 0, &y, NULL))) {
            row = clnet_tensor_numel(y) / (size_t)n;
            st = clnet_tensor_download(y, out + (size_t)s * row,
                                       clnet_tensor_numel(y) * sizeof(float));
        }
        clnet_tensor_destroy(bx);
    }
done:
    device_data_free(&d);
    return st;
}

/* ---- fit ----------------------------------------------------------------------------------- */

static void report(const clnet_fit_params *p, clnet_progress *pr)
{
    if (p->progress)
        p->progress(p->progress_user, pr);
}

static clnet_status fit_epoch(clnet_model *m, const clnet_fit_params *p, device_data *d,
                              clnet_progress *pr, double t0, clnet__fit_run *r)
{
    int64_t b = d->batch, steps = (d->count + b - 1) / b;
    /* Reading the loss waits for the device: do it about ten times a second
     * on a live display, never in between. */
    int64_t every = steps < 50 ? 1 : steps / 50;
    clnet_status st = CLNET_OK;
    pr->steps = steps;
    for (int64_t s = 0; s < steps && !st && !r->stop; s++) {
        int64_t n = d->count - s * b < b ? d->count - s * b : b;
        r->seen = s * b + n;
        clnet_tensor *bx, *by;
        if (!(st = gather(d, s * b, n, 1, &bx, &by)) && !(st = train_step(m, bx, by)))
            st = accumulate(m, n);
        clnet_tensor_destroy(bx);
        clnet_tensor_destroy(by);
        pr->step = s + 1;
        /* Callbacks with batch_end read the loss after every step. */
        if (!st && (p->progress || r->batch_hooks) &&
            ((s + 1) % every == 0 || s + 1 == steps || r->batch_hooks)) {
            double l, c, seen = (double)(s * b + n);
            if ((st = read_sums(m, &l, &c)))
                break;
            pr->loss = l / seen;
            pr->accuracy = c / seen;
            pr->elapsed = clnet__now() - t0;
            pr->eta = pr->elapsed / (double)(s + 1) * (double)(steps - s - 1);
            if (s + 1 < steps)
                report(p, pr);
            if (r->batch_hooks && (st = clnet__fit_batch_end(r, pr)))
                break;
        }
    }
    return st;
}

CLNET_API clnet_status clnet_model_fit(clnet_model *m, const clnet_fit_params *p,
                                       const clnet_dataset_view *data)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_fit_params defaults = CLNET_FIT_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(m->ctx, p->epochs >= 0 && p->batch_size > 0);
    clnet_status st = need_loss(m, "clnet_model_fit");
    clnet__fit_run r;
    if (st || (st = check_view(m, "clnet_model_fit", data, 1)) ||
        (st = clnet__fit_begin(&r, m, p, data)))
        return st;
    data = &r.train;
    int64_t b = p->batch_size < data->count ? p->batch_size : data->count;
    device_data d;
    if ((st = device_data_make(m, data, b, 1, &d)))
        return st;
    uint64_t state = p->shuffle_seed;
    if ((st = clnet__fit_skip(&r, &state, d.count)))
        goto done;
    for (int e = p->initial_epoch + 1; e <= p->epochs && !st && !r.stop; e++) {
        if ((st = clnet__fit_epoch_begin(&r, e)))
            break;
        double t0 = clnet__now();
        clnet_progress pr = { .epoch = e,
                              .epochs = p->epochs,
                              .val_loss = -1,
                              .val_accuracy = -1,
                              .metric = clnet__model_metric_name(m) };
        if ((st = set_order(m, &d, p->shuffle, &state)) ||
            (st = clnet_tensor_fill(m->loss_sum, 0)) ||
            (st = clnet_tensor_fill(m->correct_sum, 0)) || (st = fit_epoch(m, p, &d, &pr, t0, &r)))
            break;
        double l, c;
        if ((st = read_sums(m, &l, &c)))
            break;
        pr.loss = l / (double)r.seen;
        pr.accuracy = c / (double)r.seen;
        int vb = p->validation_batch_size > 0 ? p->validation_batch_size : (int)b;
        if (r.validation &&
            (st = clnet_model_evaluate(m, r.validation, vb, &pr.val_loss, &pr.val_accuracy)))
            break;
        pr.elapsed = clnet__now() - t0;
        pr.eta = 0;
        pr.end_of_epoch = 1;
        report(p, &pr);
        st = clnet__fit_epoch_end(&r, &pr);
    }
done:
    device_data_free(&d);
    return clnet__fit_end(&r, st);
}

CLNET_API void clnet_progress_print(void *user, const clnet_progress *p)
{
    FILE *f = user ? (FILE *)user : stderr;
    int live = isatty(fileno(f));
    if (!p->end_of_epoch && !live)
        return;
    char acc[48] = "", val[96] = "";
    const char *metric = p->metric ? p->metric : "accuracy";
    if (p->accuracy >= 0)
        snprintf(acc, sizeof acc, " - %s: %.4f", metric, p->accuracy);
    if (p->end_of_epoch && p->val_loss >= 0)
        snprintf(val, sizeof val, " - val_loss: %.4f%s%s: %.4f", p->val_loss,
                 p->val_accuracy >= 0 ? " - val_" : "", p->val_accuracy >= 0 ? metric : "",
                 p->val_accuracy >= 0 ? p->val_accuracy : 0.0);
    if (p->end_of_epoch)
        fprintf(f, "%sEpoch %d/%d: %lld/%lld - %.1fs - loss: %.4f%s%s\n", live ? "\r\033[K" : "",
                p->epoch, p->epochs, (long long)p->steps, (long long)p->steps, p->elapsed, p->loss,
                acc, val);
    else
        fprintf(f, "\r\033[KEpoch %d/%d: %lld/%lld - %.0fs elapsed, ETA %.0fs - loss: %.4f%s",
                p->epoch, p->epochs, (long long)p->step, (long long)p->steps, p->elapsed, p->eta,
                p->loss, acc);
    fflush(f);
}
