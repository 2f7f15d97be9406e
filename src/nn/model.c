/* clnet — the sequential model: creation, activation buffers, forward,
 * backward, optimizer steps, summary and trainable flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_impl.h"
#include "runtime/context_impl.h"
#include "tensor/tensor_impl.h"

CLNET_API clnet_status clnet_model_create(clnet_context *ctx, int ndim, const int64_t *input_shape,
                                          uint64_t seed, clnet_model **out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    *out = NULL;
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    CLNET_CHECK_ARG(ctx, ndim >= 1 && ndim < CLNET_MAX_DIMS && input_shape != NULL);
    for (int i = 0; i < ndim; i++)
        if (input_shape[i] <= 0)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_model_create: input dim %d is %lld (must be positive)", i,
                                (long long)input_shape[i]);
    clnet_model *m = clnet__calloc(1, sizeof *m);
    if (!m)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "clnet_model_create: out of host memory");
    m->ctx = ctx;
    m->seed = seed;
    /* Keras' names, counted per context: "sequential", "sequential_1", ... */
    if (ctx->models_created)
        snprintf(m->name, sizeof m->name, "sequential_%d", ctx->models_created);
    else
        snprintf(m->name, sizeof m->name, "sequential");
    ctx->models_created++;
    m->check_numerics = clnet__numerics_enabled();
    m->in_ndim = ndim;
    memcpy(m->in_shape, input_shape, (size_t)ndim * sizeof *input_shape);
    int64_t one = 1;
    clnet_status st;
    if ((st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->loss)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->correct)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->loss_sum)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->correct_sum))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

static void free_views(clnet_model *m)
{
    /* Either array may be missing after a failed allocation. */
    for (int i = 0; i <= m->nlayers && m->acts && m->grads; i++) {
        clnet_tensor_destroy(m->acts[i]);
        clnet_tensor_destroy(m->grads[i]);
        m->acts[i] = m->grads[i] = NULL;
    }
    for (int i = 0; i < m->nlayers; i++) {
        clnet_tensor_destroy(m->layers[i]->pre);
        clnet_tensor_destroy(m->layers[i]->dpre);
        m->layers[i]->pre = m->layers[i]->dpre = NULL;
        for (int k = 0; k < m->layers[i]->nextra; k++) {
            clnet_tensor_destroy(m->layers[i]->extra[k].view);
            m->layers[i]->extra[k].view = NULL;
        }
    }
    clnet_tensor_destroy(m->dlogits);
    m->dlogits = NULL;
    m->batch = 0;
}

static void free_buffers(clnet_model *m)
{
    free_views(m);
    for (int i = 0; i <= m->nlayers && m->act_buf && m->grad_buf; i++) {
        clnet_tensor_destroy(m->act_buf[i]);
        clnet_tensor_destroy(m->grad_buf[i]);
    }
    for (int i = 0; i < m->nlayers; i++) {
        clnet_tensor_destroy(m->layers[i]->pre_buf);
        clnet_tensor_destroy(m->layers[i]->dpre_buf);
        m->layers[i]->pre_buf = m->layers[i]->dpre_buf = NULL;
        for (int k = 0; k < m->layers[i]->nextra; k++) {
            clnet_tensor_destroy(m->layers[i]->extra[k].buf);
            m->layers[i]->extra[k].buf = NULL;
        }
    }
    clnet_tensor_destroy(m->dlogits_buf);
    m->dlogits_buf = NULL;
    clnet__free(m->act_buf);
    clnet__free(m->grad_buf);
    clnet__free(m->acts);
    clnet__free(m->grads);
    m->act_buf = m->grad_buf = m->acts = m->grads = NULL;
    m->max_batch = 0;
}

CLNET_API void clnet_model_destroy(clnet_model *m)
{
    if (!m)
        return;
    free_buffers(m);
    for (int i = 0; i < m->nlayers; i++)
        clnet__layer_free(m->layers[i]);
    clnet__free(m->layers);
    clnet_tensor_destroy(m->loss);
    clnet_tensor_destroy(m->correct);
    clnet_tensor_destroy(m->loss_sum);
    clnet_tensor_destroy(m->correct_sum);
    clnet__free(m);
}

/* A (batch, shape...) tensor. */
static clnet_status typed_batch_tensor(clnet_context *ctx, clnet_dtype dtype, int64_t batch,
                                       int ndim, const int64_t *shape, clnet_tensor **out)
{
    int64_t dims[CLNET_MAX_DIMS];
    dims[0] = batch;
    memcpy(dims + 1, shape, (size_t)ndim * sizeof *shape);
    return clnet_tensor_create(ctx, dtype, ndim + 1, dims, out);
}

static clnet_status batch_tensor(clnet_context *ctx, int64_t batch, int ndim, const int64_t *shape,
                                 clnet_tensor **out)
{
    return typed_batch_tensor(ctx, CLNET_F32, batch, ndim, shape, out);
}

/* A view of a (max_batch, ...) buffer's first `batch` rows, reshaped to
 * (batch, shape...). */
static clnet_status batch_view(const clnet_tensor *buf, int64_t batch, int ndim,
                               const int64_t *shape, clnet_tensor **out)
{
    clnet_tensor *rows;
    clnet_status st = clnet_tensor_slice(buf, 0, batch, &rows);
    if (st)
        return st;
    int64_t dims[CLNET_MAX_DIMS];
    dims[0] = batch;
    memcpy(dims + 1, shape, (size_t)ndim * sizeof *shape);
    st = clnet_tensor_reshape(rows, ndim + 1, dims, out);
    clnet_tensor_destroy(rows);
    return st;
}

static int last_out_ndim(const clnet_model *m)
{
    return m->nlayers ? m->layers[m->nlayers - 1]->out_ndim : m->in_ndim;
}

static const int64_t *last_out_shape(const clnet_model *m)
{
    return m->nlayers ? m->layers[m->nlayers - 1]->out_shape : m->in_shape;
}

/* Allocates every buffer for max_batch rows. A view layer's output buffer is
 * its input buffer (Flatten and Reshape copy nothing). */
static clnet_status alloc_buffers(clnet_model *m, int64_t max_batch)
{
    size_t n = (size_t)m->nlayers + 1;
    if (!(m->act_buf = clnet__calloc(n, sizeof *m->act_buf)) || !(m->grad_buf = clnet__calloc(n, sizeof *m->grad_buf)) ||
        !(m->acts = clnet__calloc(n, sizeof *m->acts)) || !(m->grads = clnet__calloc(n, sizeof *m->grads)))
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "model buffers: out of host memory");
    clnet_status st;
    for (int i = 0; i <= m->nlayers; i++) {
        int nd = i ? m->layers[i - 1]->out_ndim : m->in_ndim;
        const int64_t *sh = i ? m->layers[i - 1]->out_shape : m->in_shape;
        if (i > 1 && m->layers[i - 1]->ops->is_view) {
            /* Share the input's storage through a flat view of it. */
            int64_t flat[2] = { max_batch, -1 };
            if ((st = clnet_tensor_reshape(m->act_buf[i - 1], 2, flat, &m->act_buf[i])) ||
                (st = clnet_tensor_reshape(m->grad_buf[i - 1], 2, flat, &m->grad_buf[i])))
                return st;
            continue;
        }
        /* acts[0] is the caller's input: only its gradient needs a buffer. */
        if ((i && (st = batch_tensor(m->ctx, max_batch, nd, sh, &m->act_buf[i]))) ||
            (st = batch_tensor(m->ctx, max_batch, nd, sh, &m->grad_buf[i])))
            return st;
    }
    for (int i = 0; i < m->nlayers; i++) {
        clnet__layer *l = m->layers[i];
        if (l->has_pre && ((st = batch_tensor(m->ctx, max_batch, l->out_ndim, l->out_shape, &l->pre_buf)) ||
                           (st = batch_tensor(m->ctx, max_batch, l->out_ndim, l->out_shape, &l->dpre_buf))))
            return st;
        for (int k = 0; k < l->nextra; k++)
            if ((st = typed_batch_tensor(m->ctx, l->extra[k].dtype, max_batch, l->extra[k].ndim,
                                         l->extra[k].shape, &l->extra[k].buf)))
                return st;
    }
    if ((st = batch_tensor(m->ctx, max_batch, last_out_ndim(m), last_out_shape(m), &m->dlogits_buf)))
        return st;
    m->max_batch = max_batch;
    return CLNET_OK;
}

clnet_status clnet__model_bind(clnet_model *m, int64_t batch)
{
    if (batch == m->batch && m->acts)
        return CLNET_OK;
    clnet_status st;
    if (batch > m->max_batch) {
        free_buffers(m);
        if ((st = alloc_buffers(m, batch)))
            return st;
    }
    free_views(m);
    for (int i = 0; i <= m->nlayers; i++) {
        int nd = i ? m->layers[i - 1]->out_ndim : m->in_ndim;
        const int64_t *sh = i ? m->layers[i - 1]->out_shape : m->in_shape;
        if ((i && (st = batch_view(m->act_buf[i], batch, nd, sh, &m->acts[i]))) ||
            (st = batch_view(m->grad_buf[i], batch, nd, sh, &m->grads[i])))
            return st;
    }
    for (int i = 0; i < m->nlayers; i++) {
        clnet__layer *l = m->layers[i];
        if (l->has_pre && ((st = batch_view(l->pre_buf, batch, l->out_ndim, l->out_shape, &l->pre)) ||
                           (st = batch_view(l->dpre_buf, batch, l->out_ndim, l->out_shape, &l->dpre))))
            return st;
        for (int k = 0; k < l->nextra; k++)
            if ((st = batch_view(l->extra[k].buf, batch, l->extra[k].ndim, l->extra[k].shape, &l->extra[k].view)))
                return st;
    }
    if ((st = batch_view(m->dlogits_buf, batch, last_out_ndim(m), last_out_shape(m), &m->dlogits)))
        return st;
    m->batch = batch;
    return CLNET_OK;
}

int clnet__model_output_act(const clnet_model *m)
{
    return m->nlayers ? clnet__layer_output_act(m->layers[m->nlayers - 1]) : CLNET_ACT_NONE;
}

/* Softmax and sigmoid outputs have logits apart from the output: backward
 * starts before them, and the matching cross-entropy reads them. */
static int has_logits(const clnet_model *m)
{
    int act = clnet__model_output_act(m);
    return act == CLNET_ACT_SOFTMAX || act == CLNET_ACT_SIGMOID;
}

const clnet_tensor *clnet__model_logits(const clnet_model *m)
{
    if (!has_logits(m))
        return m->acts[m->nlayers];
    const clnet__layer *l = m->layers[m->nlayers - 1];
    if (l->has_pre)
        return l->pre;
    /* A separate Activation layer: its input. */
    return m->nlayers > 1 ? m->acts[m->nlayers - 1] : m->input;
}

static clnet_status check_input(clnet_model *m, const char *func, const clnet_tensor *x)
{
    CLNET_CHECK_ARG(m->ctx, x != NULL);
    int ok = x->ctx == m->ctx && x->dtype == CLNET_F32 && x->ndim == m->in_ndim + 1 && x->shape[0] > 0;
    for (int i = 0; ok && i < m->in_ndim; i++)
        ok = x->shape[i + 1] == m->in_shape[i];
    if (!ok) {
        char want[128];
        size_t n = (size_t)snprintf(want, sizeof want, "(batch");
        for (int i = 0; i < m->in_ndim && n < sizeof want; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, ", %lld", (long long)m->in_shape[i]);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "%s: x must be a float32 tensor %s) of this model's context, batch >= 1",
                            func, want);
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_forward(clnet_model *m, const clnet_tensor *x, int training,
                                           const clnet_tensor **y, const clnet_tensor **logits)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (m->nlayers == 0)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_forward: the model has no layers: add at least one");
    clnet_status st = check_input(m, "clnet_model_forward", x);
    if (st || (st = clnet__model_bind(m, x->shape[0])))
        return st;
    m->input = x;
    m->trained_forward = training != 0;
    if (training)
        m->dropout_calls++;
    for (int i = 0; i < m->nlayers; i++) {
        clnet__layer *l = m->layers[i];
        if (l->ops->is_view) {
            /* A leading view layer has a buffer of its own (the input is the
             * caller's tensor); later ones share their input's storage. */
            if (i == 0 && (st = clnet_tensor_copy(m->acts[1], x)))
                return st;
            continue;
        }
        clnet__io io = { .x = i ? m->acts[i] : x, .y = m->acts[i + 1], .pre = l->pre };
        if ((st = l->ops->forward(l, &io, training)))
            return clnet__error(m->ctx, st, "layer %d (%s): %s", i, l->name, clnet_context_errmsg(m->ctx));
    }
    if (y)
        *y = m->acts[m->nlayers];
    if (logits)
        *logits = clnet__model_logits(m);
    return CLNET_OK;
}

/* The first layer that needs a gradient: frozen leading layers need none. */
static int first_needed(const clnet_model *m, int want_dx)
{
    if (want_dx)
        return 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->trainable && m->layers[i]->nparams > 0 && m->layers[i]->params[0].grad)
            return i;
    return m->nlayers;
}

CLNET_API clnet_status clnet_model_backward(clnet_model *m, const clnet_tensor *dlogits,
                                            const clnet_tensor **dx)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, dlogits != NULL);
    if (!m->batch || !m->input || !m->trained_forward)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_backward: needs a forward pass in training mode first");
    const clnet_tensor *out = m->acts[m->nlayers];
    if (dlogits->numel != out->numel || dlogits->dtype != CLNET_F32)
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "clnet_model_backward: dlogits holds %zu elements, the output %zu",
                            dlogits->numel, out->numel);
    int fused = has_logits(m);
    int stop = first_needed(m, dx != NULL);
    clnet_status st = CLNET_OK;
    const clnet_tensor *dy = dlogits;
    for (int i = m->nlayers - 1; i >= stop; i--) {
        clnet__layer *l = m->layers[i];
        if (l->ops->is_view) {
            /* The gradient buffer below is the same storage: copy only when
             * dy is not already there. */
            if ((i == 0 || dy != m->grads[i + 1]) && (i > 0 || dx) &&
                (st = clnet_tensor_copy(m->grads[i], dy)))
                return st;
            dy = m->grads[i];
            continue;
        }
        clnet__io io = { .x = i ? m->acts[i] : m->input, .y = m->acts[i + 1], .dy = dy,
                         .dx = i > stop || dx ? m->grads[i] : NULL, .pre = l->pre, .dpre = l->dpre,
                         .dy_is_pre = fused && i == m->nlayers - 1 };
        if ((st = l->ops->backward(l, &io)))
            return clnet__error(m->ctx, st, "layer %d (%s) backward: %s", i, l->name,
                                clnet_context_errmsg(m->ctx));
        if (m->hooks.grads_ready && (st = m->hooks.grads_ready(m->hooks.user, m, i)))
            return st;
        dy = m->grads[i];
    }
    if (dx)
        *dx = m->grads[0];
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_set_trainable(clnet_model *m, int layer, int trainable)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (layer < 0 || layer >= m->nlayers)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_set_trainable: layer %d outside [0, %d)", layer, m->nlayers);
    m->layers[layer]->trainable = trainable != 0;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_set_all_trainable(clnet_model *m, int trainable)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    for (int i = 0; i < m->nlayers; i++)
        m->layers[i]->trainable = trainable != 0;
    return CLNET_OK;
}

CLNET_API int clnet_model_layer_count(const clnet_model *m)
{
    return m ? m->nlayers : 0;
}

CLNET_API int clnet_model_output_shape(const clnet_model *m, int64_t shape[CLNET_MAX_DIMS])
{
    if (!m || !shape)
        return 0;
    int nd = last_out_ndim(m);
    memcpy(shape, last_out_shape(m), (size_t)nd * sizeof *shape);
    return nd;
}

static size_t layer_params(const clnet__layer *l, int trained_only)
{
    size_t n = 0;
    for (int i = 0; i < l->nparams; i++)
        if (!trained_only || l->params[i].grad)
            n += clnet_tensor_numel(l->params[i].value);
    return n;
}

CLNET_API size_t clnet_model_param_count(const clnet_model *m)
{
    size_t n = 0;
    for (int i = 0; m && i < m->nlayers; i++)
        n += layer_params(m->layers[i], 0);
    return n;
}

CLNET_API clnet_status clnet_model_set_name(clnet_model *m, const char *name)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, name != NULL);
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof m->name)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_set_name: the name has %zu bytes; it needs 1 to %d", n,
                            CLNET_MODEL_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == '"' || name[i] == 0x7f)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_model_set_name: byte %zu of the name is a control character "
                                "or a quote",
                                i);
    memcpy(m->name, name, n + 1);
    return CLNET_OK;
}

CLNET_API const char *clnet_model_name(const clnet_model *m)
{
    return m ? m->name : NULL;
}

/* Layer i's first two summary columns: "name (Type)" and "(None, ...)". */
static void summary_cells(const clnet__layer *l, char name[80], char shape[128])
{
    snprintf(name, 80, "%s (%s)", l->name, l->ops->type);
    size_t n = (size_t)snprintf(shape, 128, "(None");
    for (int d = 0; d < l->out_ndim && n < 128; d++)
        n += (size_t)snprintf(shape + n, 128 - n, ", %lld", (long long)l->out_shape[d]);
    if (n < 128)
        snprintf(shape + n, 128 - n, ")");
}

static void summary_rule(FILE *f, int width, char c)
{
    for (int i = 0; i < width; i++)
        fputc(c, f);
    fputc('\n', f);
}

CLNET_API clnet_status clnet_model_summary(const clnet_model *m, FILE *f)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, f != NULL);
    /* Keras' widths, widened to the longest cell so the columns stay aligned. */
    int wname = 28, wshape = 24;
    for (int i = 0; i < m->nlayers; i++) {
        char name[80], shape[128];
        summary_cells(m->layers[i], name, shape);
        wname = (int)strlen(name) > wname ? (int)strlen(name) : wname;
        wshape = (int)strlen(shape) > wshape ? (int)strlen(shape) : wshape;
    }
    int width = 1 + wname + 1 + wshape + 1 + 10;
    fprintf(f, "Model: \"%s\"\n", m->name);
    summary_rule(f, width, '_');
    fprintf(f, " %-*s %-*s %10s\n", wname, "Layer (type)", wshape, "Output Shape", "Param #");
    summary_rule(f, width, '=');
    size_t total = 0, trainable = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const clnet__layer *l = m->layers[i];
        char name[80], shape[128];
        summary_cells(l, name, shape);
        fprintf(f, " %-*s %-*s %10zu\n", wname, name, wshape, shape, layer_params(l, 0));
        if (i + 1 < m->nlayers)
            fprintf(f, "\n");
        total += layer_params(l, 0);
        trainable += l->trainable ? layer_params(l, 1) : 0;
    }
    summary_rule(f, width, '=');
    fprintf(f, "Total params: %zu\nTrainable params: %zu\nNon-trainable params: %zu\n", total,
            trainable, total - trainable);
    summary_rule(f, width, '_');
    return CLNET_OK;
}
