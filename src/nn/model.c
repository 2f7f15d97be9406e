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
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->correct_sum)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->extra_loss)) ||
        (st = clnet_tensor_fill(m->extra_loss, 0.0)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &m->out_loss)) ||
        (st = clnet__graph_init(m))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

static void free_views(clnet_model *m)
{
    for (int i = 0; i < m->nnodes; i++) {
        clnet_tensor_destroy(m->nodes[i].act);
        clnet_tensor_destroy(m->nodes[i].grad);
        clnet_tensor_destroy(m->nodes[i].scratch);
        m->nodes[i].act = m->nodes[i].grad = m->nodes[i].scratch = NULL;
    }
    for (int a = 0; a < m->napps; a++) {
        clnet__layer *l = m->apps[a].l;
        clnet_tensor_destroy(l->pre);
        clnet_tensor_destroy(l->dpre);
        l->pre = l->dpre = NULL;
        for (int k = 0; k < l->nextra; k++) {
            clnet_tensor_destroy(l->extra[k].view);
            l->extra[k].view = NULL;
        }
    }
    for (int k = 0; k < CLNET_MODEL_MAX_IO; k++) {
        clnet_tensor_destroy(m->dlogits_v[k]);
        m->dlogits_v[k] = NULL;
    }
    m->batch = 0;
}

static void free_buffers(clnet_model *m)
{
    free_views(m);
    for (int i = 0; i < m->nnodes; i++) {
        clnet_tensor_destroy(m->nodes[i].act_buf);
        clnet_tensor_destroy(m->nodes[i].grad_buf);
        m->nodes[i].act_buf = m->nodes[i].grad_buf = NULL;
    }
    for (int a = 0; a < m->napps; a++) {
        clnet__layer *l = m->apps[a].l;
        clnet_tensor_destroy(l->pre_buf);
        clnet_tensor_destroy(l->dpre_buf);
        l->pre_buf = l->dpre_buf = NULL;
        l->eps_batch = 0;
        for (int k = 0; k < l->nextra; k++) {
            clnet_tensor_destroy(l->extra[k].buf);
            l->extra[k].buf = NULL;
        }
    }
    for (int k = 0; k < CLNET_MODEL_MAX_IO; k++) {
        clnet_tensor_destroy(m->dlogits_buf[k]);
        m->dlogits_buf[k] = NULL;
    }
    clnet_tensor_destroy(m->scratch_buf);
    m->scratch_buf = NULL;
    m->max_batch = 0;
}

void clnet__model_unbind(clnet_model *m)
{
    free_buffers(m);
}

CLNET_API void clnet_model_destroy(clnet_model *m)
{
    if (!m)
        return;
    free_buffers(m);
    /* Clones first: they borrow their owners' parameters. */
    for (int a = 0; a < m->napps; a++)
        if (m->apps[a].l->owner)
            clnet__layer_free(m->apps[a].l);
    for (int i = 0; i < m->nlayers; i++)
        clnet__layer_free(m->layers[i]);
    clnet__free(m->layers);
    clnet__graph_free(m);
    clnet_tensor_destroy(m->loss);
    clnet_tensor_destroy(m->correct);
    clnet_tensor_destroy(m->loss_sum);
    clnet_tensor_destroy(m->correct_sum);
    clnet_tensor_destroy(m->extra_loss);
    clnet_tensor_destroy(m->out_loss);
    clnet__free(m->clip_grads);
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

int clnet__output_node(const clnet_model *m, int k)
{
    return m->noutputs ? m->outputs[k] : m->nnodes - 1;
}

static int output_count(const clnet_model *m)
{
    return m->noutputs ? m->noutputs : 1;
}

const clnet__layer *clnet__output_layer(const clnet_model *m, int k)
{
    const clnet__node *n = &m->nodes[clnet__output_node(m, k)];
    return n->app >= 0 ? m->apps[n->app].l : NULL;
}

static int is_output(const clnet_model *m, int node)
{
    for (int k = 0; k < output_count(m); k++)
        if (clnet__output_node(m, k) == node)
            return 1;
    return 0;
}

/* Which storage each node uses. A view layer's (Flatten, Reshape) output
 * shares its input's activations, unless the input is the caller's tensor;
 * it shares the input's gradient too when it is that input's one consumer
 * and the input is no output (else the gradients there are summed). */
static void plan_storage(clnet_model *m)
{
    for (int i = 0; i < m->nnodes; i++) {
        m->nodes[i].uses = 0;
        m->nodes[i].act_of = m->nodes[i].grad_of = -1;
    }
    for (int a = 0; a < m->napps; a++)
        for (int k = 0; k < m->apps[a].nin; k++)
            m->nodes[m->apps[a].in[k]].uses++;
    for (int a = 0; a < m->napps; a++) {
        const clnet__app *p = &m->apps[a];
        const clnet__node *in = &m->nodes[p->in[0]];
        if (!p->l->ops->is_view || in->input >= 0)
            continue;
        m->nodes[p->out].act_of = p->in[0];
        if (in->uses == 1 && !is_output(m, p->in[0]))
            m->nodes[p->out].grad_of = p->in[0];
    }
}

static int64_t node_numel(const clnet__node *n)
{
    int64_t e = 1;
    for (int d = 0; d < n->ndim; d++)
        e *= n->shape[d];
    return e;
}

/* Allocates every buffer for max_batch rows. */
static clnet_status alloc_buffers(clnet_model *m, int64_t max_batch)
{
    plan_storage(m);
    clnet_status st;
    int64_t flat[2] = { max_batch, -1 }, most = 0;
    for (int i = 0; i < m->nnodes; i++) {
        clnet__node *n = &m->nodes[i];
        if (n->act_of >= 0)
            st = clnet_tensor_reshape(m->nodes[n->act_of].act_buf, 2, flat, &n->act_buf);
        else
            /* An input's activations are the caller's tensor. */
            st = n->input >= 0 ? CLNET_OK
                               : batch_tensor(m->ctx, max_batch, n->ndim, n->shape, &n->act_buf);
        if (st)
            return st;
        if (n->grad_of >= 0)
            st = clnet_tensor_reshape(m->nodes[n->grad_of].grad_buf, 2, flat, &n->grad_buf);
        else
            st = batch_tensor(m->ctx, max_batch, n->ndim, n->shape, &n->grad_buf);
        if (st)
            return st;
        if (n->uses > 1 && node_numel(n) > most)
            most = node_numel(n);
    }
    for (int a = 0; a < m->napps; a++) {
        clnet__layer *l = m->apps[a].l;
        if (l->has_pre &&
            ((st = batch_tensor(m->ctx, max_batch, l->out_ndim, l->out_shape, &l->pre_buf)) ||
             (st = batch_tensor(m->ctx, max_batch, l->out_ndim, l->out_shape, &l->dpre_buf))))
            return st;
        for (int k = 0; k < l->nextra; k++)
            if ((st = typed_batch_tensor(m->ctx, l->extra[k].dtype, max_batch, l->extra[k].ndim,
                                         l->extra[k].shape, &l->extra[k].buf)))
                return st;
    }
    for (int k = 0; k < output_count(m); k++) {
        const clnet__node *n = &m->nodes[clnet__output_node(m, k)];
        if ((st = batch_tensor(m->ctx, max_batch, n->ndim, n->shape, &m->dlogits_buf[k])))
            return st;
    }
    if (most && (st = batch_tensor(m->ctx, max_batch, 1, &most, &m->scratch_buf)))
        return st;
    m->max_batch = max_batch;
    return CLNET_OK;
}

/* A view of the scratch buffer shaped as node n's batch (n->uses > 1), for
 * a gradient to be added to n's. */
static clnet_status scratch_view(const clnet_model *m, const clnet__node *n, int64_t batch,
                                 clnet_tensor **out)
{
    clnet_tensor *flat, *part;
    int64_t len = batch, dims[CLNET_MAX_DIMS];
    for (int d = 0; d < n->ndim; d++)
        len *= n->shape[d];
    clnet_status st = clnet_tensor_reshape(m->scratch_buf, 1, (int64_t[]){ -1 }, &flat);
    if (st)
        return st;
    st = clnet_tensor_slice(flat, 0, len, &part);
    clnet_tensor_destroy(flat);
    if (st)
        return st;
    dims[0] = batch;
    memcpy(dims + 1, n->shape, (size_t)n->ndim * sizeof *dims);
    st = clnet_tensor_reshape(part, n->ndim + 1, dims, out);
    clnet_tensor_destroy(part);
    return st;
}

clnet_status clnet__model_bind(clnet_model *m, int64_t batch)
{
    if (batch == m->batch && m->max_batch)
        return CLNET_OK;
    clnet_status st;
    if (batch > m->max_batch) {
        free_buffers(m);
        if ((st = alloc_buffers(m, batch)))
            return st;
    }
    free_views(m);
    for (int i = 0; i < m->nnodes; i++) {
        clnet__node *n = &m->nodes[i];
        if ((n->act_buf && (st = batch_view(n->act_buf, batch, n->ndim, n->shape, &n->act))) ||
            (st = batch_view(n->grad_buf, batch, n->ndim, n->shape, &n->grad)) ||
            (n->uses > 1 && (st = scratch_view(m, n, batch, &n->scratch))))
            return st;
    }
    for (int a = 0; a < m->napps; a++) {
        clnet__layer *l = m->apps[a].l;
        if (l->has_pre &&
            ((st = batch_view(l->pre_buf, batch, l->out_ndim, l->out_shape, &l->pre)) ||
             (st = batch_view(l->dpre_buf, batch, l->out_ndim, l->out_shape, &l->dpre))))
            return st;
        for (int k = 0; k < l->nextra; k++)
            if ((st = batch_view(l->extra[k].buf, batch, l->extra[k].ndim, l->extra[k].shape,
                                 &l->extra[k].view)))
                return st;
    }
    for (int k = 0; k < output_count(m); k++) {
        const clnet__node *n = &m->nodes[clnet__output_node(m, k)];
        if ((st = batch_view(m->dlogits_buf[k], batch, n->ndim, n->shape, &m->dlogits_v[k])))
            return st;
    }
    m->batch = batch;
    return CLNET_OK;
}

const clnet_tensor *clnet__node_act(const clnet_model *m, int node)
{
    const clnet__node *n = &m->nodes[node];
    return n->input >= 0 ? m->x[n->input] : n->act;
}

int clnet__output_act(const clnet_model *m, int k)
{
    const clnet__layer *l = clnet__output_layer(m, k);
    return l ? clnet__layer_output_act(l) : CLNET_ACT_NONE;
}

int clnet__model_output_act(const clnet_model *m)
{
    return clnet__output_act(m, 0);
}

/* Softmax and sigmoid outputs have logits apart from the output: backward
 * starts before them, and the matching cross-entropy reads them. */
static int has_logits(const clnet_model *m, int k)
{
    int act = clnet__output_act(m, k);
    return act == CLNET_ACT_SOFTMAX || act == CLNET_ACT_SIGMOID;
}

const clnet_tensor *clnet__output_logits(const clnet_model *m, int k)
{
    int node = clnet__output_node(m, k);
    if (!has_logits(m, k))
        return clnet__node_act(m, node);
    const clnet__app *p = &m->apps[m->nodes[node].app];
    if (p->l->has_pre)
        return p->l->pre;
    /* A separate Activation layer: its input. */
    return clnet__node_act(m, p->in[0]);
}

const clnet_tensor *clnet__model_logits(const clnet_model *m)
{
    return clnet__output_logits(m, 0);
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "(batch");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, ", %lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, ")");
}

static clnet_status check_input(clnet_model *m, const char *func, int i, const clnet_tensor *x,
                                const clnet_tensor *x0)
{
    const clnet__node *n = &m->nodes[m->inputs[i]];
    int ok =
        x && x->ctx == m->ctx && x->dtype == CLNET_F32 && x->ndim == n->ndim + 1 && x->shape[0] > 0;
    for (int d = 0; ok && d < n->ndim; d++)
        ok = x->shape[d + 1] == n->shape[d];
    if (ok && i > 0 && x->shape[0] != x0->shape[0])
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "%s: input %d has a batch of %lld, input 0 of %lld: they must agree",
                            func, i, (long long)x->shape[0], (long long)x0->shape[0]);
    if (!ok) {
        char want[128];
        shape_text(n->ndim, n->shape, want, sizeof want);
        if (m->ninputs == 1)
            return clnet__error(
                m->ctx, CLNET_ERR_SHAPE,
                "%s: x must be a float32 tensor %s of this model's context, batch >= 1", func,
                want);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "%s: input %d must be a float32 tensor %s of this model's context, "
                            "batch >= 1",
                            func, i, want);
    }
    return CLNET_OK;
}

/* The Sampling layers' KL terms, weighted, into m->extra_loss. */
static clnet_status sum_extra_losses(clnet_model *m)
{
    clnet_status st = clnet_tensor_fill(m->extra_loss, 0.0);
    for (int a = 0; !st && a < m->napps; a++) {
        const clnet__layer *l = m->apps[a].l;
        if (l->kl && l->kl_weight > 0.0f)
            st = clnet_axpy(l->kl_weight, l->kl, m->extra_loss);
    }
    return st;
}

clnet_status clnet__model_forward(clnet_model *m, const char *func, int nx,
                                  const clnet_tensor *const *x, int training)
{
    if (m->napps == 0)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has no layers: add at least one", func);
    if (nx != m->ninputs || !x)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: the model has %d input%s, %d given",
                            func, m->ninputs, m->ninputs == 1 ? "" : "s", x ? nx : 0);
    clnet_status st = CLNET_OK;
    for (int i = 0; i < nx && !st; i++)
        st = check_input(m, func, i, x[i], x[0]);
    if (st || (st = clnet__model_bind(m, x[0]->shape[0])))
        return st;
    for (int i = 0; i < nx; i++)
        m->x[i] = x[i];
    m->trained_forward = training != 0;
    if (training)
        m->dropout_calls++;
    for (int a = 0; a < m->napps; a++) {
        const clnet__app *p = &m->apps[a];
        clnet__layer *l = p->l;
        clnet__node *out = &m->nodes[p->out];
        if (l->ops->is_view) {
            /* A view of the caller's tensor needs a copy of its own. */
            if (out->act_of < 0 && (st = clnet_tensor_copy(clnet__node_act(m, p->in[0]), out->act)))
                return st;
            continue;
        }
        clnet__io io = {
            .x = clnet__node_act(m, p->in[0]), .y = out->act, .pre = l->pre, .nin = p->nin
        };
        for (int k = 0; k < p->nin; k++)
            io.xs[k] = clnet__node_act(m, p->in[k]);
        if ((st = l->ops->forward(l, &io, training)))
            return clnet__error(m->ctx, st, "layer %d (%s): %s", l->index, l->name,
                                clnet_context_errmsg(m->ctx));
    }
    return m->nextra_loss ? sum_extra_losses(m) : CLNET_OK;
}

CLNET_API clnet_status clnet_model_forward(clnet_model *m, const clnet_tensor *x, int training,
                                           const clnet_tensor **y, const clnet_tensor **logits)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const char func[] = "clnet_model_forward";
    CLNET_CHECK_ARG(m->ctx, x != NULL);
    if (m->ninputs != 1 || output_count(m) != 1)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d inputs and %d outputs: use "
                            "clnet_model_forward_multi and clnet_model_output_tensor",
                            func, m->ninputs, output_count(m));
    clnet_status st = clnet__model_forward(m, func, 1, &x, training);
    if (st)
        return st;
    if (y)
        *y = clnet__node_act(m, clnet__output_node(m, 0));
    if (logits)
        *logits = clnet__model_logits(m);
    return CLNET_OK;
}

/* Sends gradient g to node n: copied when n holds none yet, else added. */
static clnet_status pass_grad(clnet__node *n, const clnet_tensor *g)
{
    clnet_status st = CLNET_OK;
    if (!n->written) {
        if (g != n->grad)
            st = clnet_tensor_copy(g, n->grad);
    } else
        st = clnet_axpy(1.0f, g, n->grad);
    n->written = 1;
    n->dy = n->grad;
    return st;
}

/* Runs application p's backward; its inputs' gradients are summed. */
static clnet_status app_backward(clnet_model *m, const clnet__app *p, int fused)
{
    clnet__layer *l = p->l;
    clnet__node *out = &m->nodes[p->out];
    clnet_status st = CLNET_OK;
    if (l->ops->is_view) {
        clnet__node *in = &m->nodes[p->in[0]];
        if (!in->need)
            return CLNET_OK;
        l->ran = 1;
        if (out->grad_of == p->in[0] && out->dy == out->grad) {
            /* The same storage: the gradient is there already. */
            in->written = 1;
            in->dy = in->grad;
            return CLNET_OK;
        }
        return pass_grad(in, out->dy);
    }
    clnet__io io = { .x = clnet__node_act(m, p->in[0]),
                     .y = out->act,
                     .dy = out->dy,
                     .pre = l->pre,
                     .dpre = l->dpre,
                     .dy_is_pre = fused,
                     .nin = p->nin };
    int sum_into = -1;
    for (int k = 0; k < p->nin; k++) {
        clnet__node *in = &m->nodes[p->in[k]];
        io.xs[k] = clnet__node_act(m, p->in[k]);
        if (!in->need)
            continue;
        io.dxs[k] = in->grad;
        io.betas[k] = in->written ? 1.0f : 0.0f;
        /* An input twice (x * x): the second gradient adds to the first. */
        for (int j = 0; j < k; j++)
            if (p->in[j] == p->in[k])
                io.betas[k] = 1.0f;
    }
    io.dx = io.dxs[0];
    if (!l->ops->accumulates && io.dx && m->nodes[p->in[0]].written) {
        /* The layer overwrites dx: send it to scratch, then add. */
        io.dx = m->nodes[p->in[0]].scratch;
        sum_into = p->in[0];
    }
    if ((st = l->ops->backward(l, &io)))
        st = clnet__error(m->ctx, st, "layer %d (%s) backward: %s", l->index, l->name,
                          clnet_context_errmsg(m->ctx));
    else if (sum_into >= 0)
        st = clnet_axpy(1.0f, m->nodes[sum_into].scratch, m->nodes[sum_into].grad);
    for (int k = 0; k < p->nin; k++)
        if (io.dxs[k]) {
            m->nodes[p->in[k]].written = 1;
            m->nodes[p->in[k]].dy = m->nodes[p->in[k]].grad;
        }
    l->ran = 1;
    return st;
}

static int trains(const clnet__layer *l)
{
    return l->trainable && l->nparams > 0 && l->params[0].grad;
}

/* After layer l's own application: its gradients are final once its clones'
 * (which ran earlier in backward) are added; a trainable layer no gradient
 * reached gets zeros. */
static clnet_status finish_layer(clnet_model *m, clnet__layer *l)
{
    clnet_status st = CLNET_OK;
    int shared = 0;
    for (int a = 0; a < m->napps; a++)
        shared |= m->apps[a].l->owner == l;
    if (!trains(l) || (!shared && l->ran))
        return CLNET_OK;
    for (int k = 0; !st && !l->ran && k < l->nparams; k++)
        if (l->params[k].grad)
            st = clnet_tensor_fill(l->params[k].grad, 0.0);
    for (int a = 0; !st && a < m->napps; a++) {
        const clnet__layer *c = m->apps[a].l;
        for (int k = 0; c->owner == l && c->ran && !st && k < c->nparams; k++)
            if (c->params[k].grad)
                st = clnet_axpy(1.0f, c->params[k].grad, l->params[k].grad);
    }
    return st;
}

clnet_status clnet__model_backward(clnet_model *m, const char *func, int ny,
                                   const clnet_tensor *const *dlogits, int nx,
                                   const clnet_tensor **dx)
{
    if (!m->batch || !m->x[0] || !m->trained_forward)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: needs a forward pass in training mode first", func);
    if (ny != output_count(m) || !dlogits)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d output%s, %d given", func, output_count(m),
                            output_count(m) == 1 ? "" : "s", dlogits ? ny : 0);
    if (dx && nx != m->ninputs)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d input%s, dx for %d", func, m->ninputs,
                            m->ninputs == 1 ? "" : "s", nx);
    clnet_status st = CLNET_OK;
    /* Which nodes need a gradient: a wanted dx, or a trained parameter
     * behind them. */
    for (int i = 0; i < m->nnodes; i++) {
        clnet__node *n = &m->nodes[i];
        n->need = n->input >= 0 && dx != NULL;
        n->written = 0;
        n->dy = NULL;
    }
    for (int a = 0; a < m->napps; a++) {
        const clnet__app *p = &m->apps[a];
        int need = trains(p->l);
        for (int k = 0; k < p->nin; k++)
            need |= m->nodes[p->in[k]].need;
        m->nodes[p->out].need = need;
        p->l->ran = 0;
    }
    /* The seeds: an output no layer reads takes the caller's tensor as it
     * is; one that feeds layers too gets a copy its consumers add to. */
    for (int k = 0; k < ny; k++) {
        int node = clnet__output_node(m, k);
        clnet__node *n = &m->nodes[node];
        const clnet_tensor *g = dlogits[k];
        if (!g)
            continue;
        if (g->numel != n->grad->numel || g->dtype != CLNET_F32)
            return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                                "%s: dlogits%s holds %zu elements, the output %zu", func,
                                ny > 1 ? "[k]" : "", g->numel, n->grad->numel);
        if (n->uses && has_logits(m, k))
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: output %d ends in softmax or sigmoid and feeds other layers "
                                "too: a gradient at its logits cannot be summed with theirs; end "
                                "the output with its own Activation layer",
                                func, k);
        if (n->uses) {
            if ((st = clnet_tensor_copy(g, n->grad)))
                return st;
            n->dy = n->grad;
        } else
            n->dy = g;
        n->written = 1;
    }
    for (int a = m->napps - 1; a >= 0; a--) {
        const clnet__app *p = &m->apps[a];
        clnet__layer *l = p->l;
        const clnet__node *out = &m->nodes[p->out];
        int reached = out->written || (l->kl && l->kl_weight > 0.0f);
        int fused = 0;
        for (int k = 0; k < ny; k++)
            fused |= dlogits[k] && clnet__output_node(m, k) == p->out && has_logits(m, k);
        if (reached && out->need && (st = app_backward(m, p, fused)))
            return st;
        if (!l->owner) {
            if ((st = finish_layer(m, l)))
                return st;
            if (m->hooks.grads_ready && !l->ops->is_view && (l->ran || trains(l)) &&
                (st = m->hooks.grads_ready(m->hooks.user, m, l->index)))
                return st;
        }
    }
    for (int i = 0; dx && i < m->ninputs; i++) {
        clnet__node *n = &m->nodes[m->inputs[i]];
        if (!n->written && (st = clnet_tensor_fill(n->grad, 0.0)))
            return st;
        dx[i] = n->grad;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_backward(clnet_model *m, const clnet_tensor *dlogits,
                                            const clnet_tensor **dx)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, dlogits != NULL);
    static const char func[] = "clnet_model_backward";
    if (m->ninputs != 1 || output_count(m) != 1)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the model has %d inputs and %d outputs: use "
                            "clnet_model_backward_multi",
                            func, m->ninputs, output_count(m));
    return clnet__model_backward(m, func, 1, &dlogits, 1, dx);
}

CLNET_API clnet_status clnet_model_set_trainable(clnet_model *m, int layer, int trainable)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (layer < 0 || layer >= m->nlayers)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_set_trainable: layer %d outside [0, %d)", layer,
                            m->nlayers);
    m->layers[layer]->trainable = trainable != 0;
    /* A shared layer's other applications follow it. */
    for (int a = 0; a < m->napps; a++)
        if (m->apps[a].l->owner == m->layers[layer])
            m->apps[a].l->trainable = trainable != 0;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_set_all_trainable(clnet_model *m, int trainable)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    for (int a = 0; a < m->napps; a++)
        m->apps[a].l->trainable = trainable != 0;
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
    const clnet__node *n = &m->nodes[clnet__output_node(m, 0)];
    memcpy(shape, n->shape, (size_t)n->ndim * sizeof *shape);
    return n->ndim;
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

/* A row's first two summary columns: "name (Type)" and "(None, ...)". */
static void summary_cells(const char *lname, const char *type, int ndim, const int64_t *shape,
                          char name[80], char out[128])
{
    snprintf(name, 80, "%s (%s)", lname, type);
    size_t n = (size_t)snprintf(out, 128, "(None");
    for (int d = 0; d < ndim && n < 128; d++)
        n += (size_t)snprintf(out + n, 128 - n, ", %lld", (long long)shape[d]);
    if (n < 128)
        snprintf(out + n, 128 - n, ")");
}

static void summary_rule(FILE *f, int width, char c)
{
    for (int i = 0; i < width; i++)
        fputc(c, f);
    fputc('\n', f);
}

/* A chain: one input, each layer applied once to the previous node, the
 * output last. Its summary is the sequential one (no "Connected to"). */
static int is_chain(const clnet_model *m)
{
    if (m->ninputs != 1 || output_count(m) != 1 || clnet__output_node(m, 0) != m->nnodes - 1)
        return 0;
    for (int a = 0; a < m->napps; a++)
        if (m->apps[a].nin != 1 || m->apps[a].l->owner ||
            m->apps[a].in[0] != (a ? m->apps[a - 1].out : m->inputs[0]))
            return 0;
    return 1;
}

/* Input i's name in the summary, Keras': "input_layer", "input_layer_1". */
static void input_name(int i, char *buf, size_t size)
{
    if (i)
        snprintf(buf, size, "input_layer_%d", i);
    else
        snprintf(buf, size, "input_layer");
}

/* The names of the nodes layer l's applications read, ", "-separated. */
static void connected_to(const clnet_model *m, const clnet__layer *l, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (int a = 0; a < m->napps; a++) {
        const clnet__app *p = &m->apps[a];
        if (p->l != l && p->l->owner != l)
            continue;
        for (int k = 0; k < p->nin && n < size; k++) {
            const clnet__node *in = &m->nodes[p->in[k]];
            char name[40];
            if (in->input >= 0)
                input_name(in->input, name, sizeof name);
            else {
                const clnet__layer *src = m->apps[in->app].l;
                snprintf(name, sizeof name, "%s", (src->owner ? src->owner : src)->name);
            }
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
        }
    }
}

CLNET_API clnet_status clnet_model_summary(const clnet_model *m, FILE *f)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, f != NULL);
    int graph = !is_chain(m);
    /* Keras' widths, widened to the longest cell so the columns stay aligned. */
    int wname = 28, wshape = 24, wconn = 20;
    char name[80], shape[128], conn[512];
    for (int i = 0; graph && i < m->ninputs; i++) {
        const clnet__node *n = &m->nodes[m->inputs[i]];
        char in[40];
        input_name(i, in, sizeof in);
        summary_cells(in, "InputLayer", n->ndim, n->shape, name, shape);
        wname = (int)strlen(name) > wname ? (int)strlen(name) : wname;
        wshape = (int)strlen(shape) > wshape ? (int)strlen(shape) : wshape;
    }
    for (int i = 0; i < m->nlayers; i++) {
        const clnet__layer *l = m->layers[i];
        summary_cells(l->name, l->type, l->out_ndim, l->out_shape, name, shape);
        wname = (int)strlen(name) > wname ? (int)strlen(name) : wname;
        wshape = (int)strlen(shape) > wshape ? (int)strlen(shape) : wshape;
        connected_to(m, l, conn, sizeof conn);
        wconn = (int)strlen(conn) > wconn ? (int)strlen(conn) : wconn;
    }
    int width = 1 + wname + 1 + wshape + 1 + 10 + (graph ? 1 + wconn : 0);
    fprintf(f, "Model: \"%s\"\n", m->name);
    summary_rule(f, width, '_');
    fprintf(f, " %-*s %-*s %10s", wname, "Layer (type)", wshape, "Output Shape", "Param #");
    if (graph)
        fprintf(f, " %s", "Connected to");
    fprintf(f, "\n");
    summary_rule(f, width, '=');
    size_t total = 0, trainable = 0;
    for (int i = 0; graph && i < m->ninputs; i++) {
        const clnet__node *n = &m->nodes[m->inputs[i]];
        char in[40];
        input_name(i, in, sizeof in);
        summary_cells(in, "InputLayer", n->ndim, n->shape, name, shape);
        fprintf(f, " %-*s %-*s %10d %s\n\n", wname, name, wshape, shape, 0, "-");
    }
    for (int i = 0; i < m->nlayers; i++) {
        const clnet__layer *l = m->layers[i];
        summary_cells(l->name, l->type, l->out_ndim, l->out_shape, name, shape);
        fprintf(f, " %-*s %-*s %10zu", wname, name, wshape, shape, layer_params(l, 0));
        if (graph) {
            connected_to(m, l, conn, sizeof conn);
            fprintf(f, " %s", conn);
        }
        fprintf(f, "\n");
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
