/* clnet — graph models (clnet/graph.h): nodes, the cursor, applications,
 * rollback of a failed add, the merge layers (Add, Subtract, Multiply,
 * Concatenate, GlobalAveragePooling2D), Sampling with its KL term, custom
 * expression layers, shared layers, several inputs and outputs.
 * docs/graph.md says how forward and backward walk the graph (model.c). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "nn_impl.h"
#include "runtime/context_impl.h"
#include "tensor/tensor_impl.h"

/* ---- Nodes, applications, the cursor ----------------------------------------------- */

static clnet_status node_new(clnet_model *m, int ndim, const int64_t *shape, int app, int input,
                             int *id)
{
    if (m->nnodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 16;
        clnet__node *p = clnet__realloc(m->nodes, (size_t)cap * sizeof *p);
        if (!p)
            return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "model graph: out of host memory");
        m->nodes = p;
        m->cap_nodes = cap;
    }
    clnet__node *n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof *n);
    n->ndim = ndim;
    memcpy(n->shape, shape, (size_t)ndim * sizeof *shape);
    n->app = app;
    n->input = input;
    n->act_of = n->grad_of = -1;
    *id = m->nnodes++;
    return CLNET_OK;
}

clnet_status clnet__graph_init(clnet_model *m)
{
    int id;
    clnet_status st = node_new(m, m->in_ndim, m->in_shape, -1, 0, &id);
    if (st)
        return st;
    m->ninputs = 1;
    m->inputs[0] = id;
    m->cursor = id;
    return CLNET_OK;
}

void clnet__graph_free(clnet_model *m)
{
    clnet__free(m->nodes);
    clnet__free(m->apps);
    m->nodes = NULL;
    m->apps = NULL;
    m->nnodes = m->napps = 0;
}

clnet_status clnet__app_add(clnet_model *m, clnet__layer *l, int nin, const int *in)
{
    if (m->napps == m->cap_apps) {
        int cap = m->cap_apps ? 2 * m->cap_apps : 16;
        clnet__app *p = clnet__realloc(m->apps, (size_t)cap * sizeof *p);
        if (!p)
            return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", l->name);
        m->apps = p;
        m->cap_apps = cap;
    }
    int out;
    clnet_status st = node_new(m, l->out_ndim, l->out_shape, m->napps, -1, &out);
    if (st)
        return st;
    clnet__app *p = &m->apps[m->napps];
    memset(p, 0, sizeof *p);
    p->l = l;
    p->nin = nin;
    memcpy(p->in, in, (size_t)nin * sizeof *in);
    p->out = out;
    l->app = m->napps++;
    m->cursor = out;
    /* The buffers follow the graph: made again at the next forward. */
    clnet__model_unbind(m);
    return CLNET_OK;
}

clnet__mark clnet__add_begin(clnet_model *m)
{
    return (clnet__mark){ m->nlayers, m->napps, m->nnodes, m->cursor };
}

clnet_status clnet__add_end(clnet_model *m, clnet__mark mark, clnet_status st)
{
    if (st == CLNET_OK)
        return st;
    clnet__model_unbind(m);
    for (int a = mark.napps; a < m->napps; a++)
        if (m->apps[a].l->owner)
            clnet__layer_free(m->apps[a].l);
    for (int i = mark.nlayers; i < m->nlayers; i++)
        clnet__layer_free(m->layers[i]);
    m->nlayers = mark.nlayers;
    m->napps = mark.napps;
    m->nnodes = mark.nnodes;
    m->cursor = mark.cursor;
    m->nextra_loss = 0;
    for (int a = 0; a < m->napps; a++)
        m->nextra_loss += m->apps[a].l->kl_weight > 0.0f;
    return st;
}

int clnet__cursor_ndim(const clnet_model *m)
{
    return m->nodes[m->cursor].ndim;
}

const int64_t *clnet__cursor_shape(const clnet_model *m)
{
    return m->nodes[m->cursor].shape;
}

static int valid_node(const clnet_model *m, clnet_node node)
{
    return m && node >= 0 && node < m->nnodes;
}

static clnet_status check_nodes(clnet_model *m, const char *func, int n, const clnet_node *nodes)
{
    CLNET_CHECK_ARG(m->ctx, nodes != NULL);
    for (int i = 0; i < n; i++)
        if (!valid_node(m, nodes[i]))
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: nodes[%d] is %d, not a node of this model (0..%d)", func, i,
                                nodes[i], m->nnodes - 1);
    return CLNET_OK;
}

static clnet_status check_building(clnet_model *m, const char *func)
{
    if (m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: the graph cannot change after compile", func);
    return CLNET_OK;
}

static void shape_text(const clnet__node *n, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "(batch");
    for (int i = 0; i < n->ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, ", %lld", (long long)n->shape[i]);
    if (k < size)
        snprintf(buf + k, size - k, ")");
}

CLNET_API clnet_node clnet_model_node(const clnet_model *m)
{
    return m ? m->cursor : -1;
}

CLNET_API clnet_status clnet_model_set_node(clnet_model *m, clnet_node node)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet_status st = check_nodes(m, "clnet_model_set_node", 1, &node);
    if (!st)
        m->cursor = node;
    return st;
}

CLNET_API clnet_status clnet_model_add_input(clnet_model *m, int ndim, const int64_t *shape,
                                             clnet_node *node)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const char func[] = "clnet_model_add_input";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    CLNET_CHECK_ARG(m->ctx, ndim >= 1 && ndim < CLNET_MAX_DIMS && shape != NULL);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: input dim %d is %lld (must be positive)", func, i,
                                (long long)shape[i]);
    if (m->ninputs == CLNET_MODEL_MAX_IO)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: the model has %d inputs already",
                            func, CLNET_MODEL_MAX_IO);
    int id;
    if ((st = node_new(m, ndim, shape, -1, m->ninputs, &id)))
        return st;
    clnet__model_unbind(m);
    m->inputs[m->ninputs++] = id;
    if (node)
        *node = id;
    return CLNET_OK;
}

CLNET_API int clnet_model_input_count(const clnet_model *m)
{
    return m ? m->ninputs : 0;
}

CLNET_API clnet_node clnet_model_input(const clnet_model *m, int index)
{
    return m && index >= 0 && index < m->ninputs ? m->inputs[index] : -1;
}

CLNET_API int clnet_model_node_shape(const clnet_model *m, clnet_node node,
                                     int64_t shape[CLNET_MAX_DIMS])
{
    if (!valid_node(m, node) || !shape)
        return 0;
    memcpy(shape, m->nodes[node].shape, (size_t)m->nodes[node].ndim * sizeof *shape);
    return m->nodes[node].ndim;
}

CLNET_API int clnet_model_node_layer(const clnet_model *m, clnet_node node)
{
    if (!valid_node(m, node) || m->nodes[node].app < 0)
        return -1;
    const clnet__layer *l = m->apps[m->nodes[node].app].l;
    return (l->owner ? l->owner : l)->index;
}

/* ---- Add, Subtract, Multiply ---------------------------------------------------------- */

static clnet_status merge_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    return clnet_merge_forward((clnet_merge_op)l->merge_op, io->nin, io->xs, io->y);
}

/* One input at a time, each with its own beta (a first gradient there, or
 * one to add). */
static clnet_status merge_backward(clnet__layer *l, clnet__io *io)
{
    clnet_status st = CLNET_OK;
    for (int k = 0; k < io->nin && !st; k++) {
        clnet_tensor *dx[CLNET_MERGE_MAX_INPUTS] = { 0 };
        if (!io->dxs[k])
            continue;
        dx[k] = io->dxs[k];
        st = clnet_merge_backward((clnet_merge_op)l->merge_op, io->nin, io->xs, io->dy,
                                  io->betas[k], dx);
    }
    return st;
}

static const clnet__layer_ops merge_ops[] = {
    { "Add", 0, merge_forward, merge_backward, 1 },
    { "Subtract", 0, merge_forward, merge_backward, 1 },
    { "Multiply", 0, merge_forward, merge_backward, 1 },
};
static const char *const merge_prefix[] = { "add", "subtract", "multiply" };

static clnet_status add_merge(clnet_model *m, clnet_merge_op op, int n, const clnet_node *nodes)
{
    static const char func[] = "clnet_model_add_merge";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    if (op < CLNET_MERGE_ADD || op > CLNET_MERGE_MULTIPLY)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: op is %d (not a clnet_merge_op)",
                            func, (int)op);
    const char *type = merge_ops[op].type;
    if (n < 2 || n > CLNET_MERGE_MAX_INPUTS || (op == CLNET_MERGE_SUBTRACT && n != 2))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "layer %d (%s): n is %d; it takes %s",
                            m->nlayers, type, n,
                            op == CLNET_MERGE_SUBTRACT ? "exactly 2 nodes" : "2 to 8 nodes");
    if ((st = check_nodes(m, func, n, nodes)))
        return st;
    const clnet__node *a = &m->nodes[nodes[0]];
    for (int i = 1; i < n; i++) {
        const clnet__node *b = &m->nodes[nodes[i]];
        if (b->ndim != a->ndim || memcmp(b->shape, a->shape, (size_t)a->ndim * sizeof *a->shape)) {
            char sa[128], sb[128];
            shape_text(a, sa, sizeof sa);
            shape_text(b, sb, sizeof sb);
            return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                                "layer %d (%s): input 0 is %s but input %d is %s: they must agree",
                                m->nlayers, type, sa, i, sb);
        }
    }
    clnet__layer *l;
    int64_t shape[CLNET_MAX_DIMS];
    int ndim = a->ndim;
    memcpy(shape, a->shape, sizeof shape);
    if ((st = clnet__layer_new_at(m, &merge_ops[op], merge_prefix[op], n, nodes, ndim, shape, &l)))
        return st;
    l->merge_op = op;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_add_merge(clnet_model *m, clnet_merge_op op, int n,
                                             const clnet_node *nodes)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_merge(m, op, n, nodes));
}

/* ---- Concatenate ------------------------------------------------------------------------ */

static clnet_status concat_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    return clnet_concat_forward(l->axis, io->nin, io->xs, io->y);
}

static clnet_status concat_backward(clnet__layer *l, clnet__io *io)
{
    clnet_status st = CLNET_OK;
    for (int k = 0; k < io->nin && !st; k++) {
        clnet_tensor *dx[CLNET_MERGE_MAX_INPUTS] = { 0 };
        if (!io->dxs[k])
            continue;
        dx[k] = io->dxs[k];
        st = clnet_concat_backward(l->axis, io->nin, io->xs, io->dy, io->betas[k], dx);
    }
    return st;
}

static const clnet__layer_ops concat_ops = { "Concatenate", 0, concat_forward, concat_backward, 1 };

static clnet_status add_concat(clnet_model *m, int axis, int n, const clnet_node *nodes)
{
    static const char func[] = "clnet_model_add_concat";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    if (n < 1 || n > CLNET_MERGE_MAX_INPUTS)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (Concatenate): n is %d; it takes 1 to 8 nodes", m->nlayers,
                            n);
    if ((st = check_nodes(m, func, n, nodes)))
        return st;
    const clnet__node *a = &m->nodes[nodes[0]];
    int ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (Concatenate): axis %d is outside the inputs' %d dims "
                            "(without the batch dim)",
                            m->nlayers, axis, a->ndim);
    int64_t shape[CLNET_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    for (int i = 1; i < n; i++) {
        const clnet__node *b = &m->nodes[nodes[i]];
        int ok = b->ndim == a->ndim;
        for (int d = 0; ok && d < a->ndim; d++)
            ok = d == ax || b->shape[d] == a->shape[d];
        if (!ok) {
            char sa[128], sb[128];
            shape_text(a, sa, sizeof sa);
            shape_text(b, sb, sizeof sb);
            return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                                "layer %d (Concatenate): input 0 is %s but input %d is %s: they "
                                "must agree except along axis %d",
                                m->nlayers, sa, i, sb, ax);
        }
        shape[ax] += b->shape[ax];
    }
    clnet__layer *l;
    if ((st = clnet__layer_new_at(m, &concat_ops, "concatenate", n, nodes, a->ndim, shape, &l)))
        return st;
    l->axis = ax + 1;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_add_concat(clnet_model *m, int axis, int n,
                                              const clnet_node *nodes)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_concat(m, axis, n, nodes));
}

/* ---- GlobalAveragePooling2D ------------------------------------------------------------- */

static clnet_status gap_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)l, (void)training;
    return clnet_global_avg_pool2d_forward(io->x, io->y);
}

static clnet_status gap_backward(clnet__layer *l, clnet__io *io)
{
    (void)l;
    return io->dx ? clnet_global_avg_pool2d_backward(io->dy, io->betas[0], io->dx) : CLNET_OK;
}

static const clnet__layer_ops gap_ops = { "GlobalAveragePooling2D", 0, gap_forward, gap_backward,
                                          1 };

static clnet_status add_gap(clnet_model *m)
{
    clnet_status st = check_building(m, "clnet_model_add_global_avgpool2d");
    if (st)
        return st;
    const clnet__node *in = &m->nodes[m->cursor];
    if (in->ndim != 3 || in->shape[1] * in->shape[2] == 0) {
        char s[128];
        shape_text(in, s, sizeof s);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "layer %d (GlobalAveragePooling2D): input %s, but it needs (batch, "
                            "channels, height, width)",
                            m->nlayers, s);
    }
    clnet__layer *l;
    return clnet__layer_new(m, &gap_ops, "global_average_pooling2d", 1, in->shape, &l);
}

CLNET_API clnet_status clnet_model_add_global_avgpool2d(clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_gap(m));
}

/* ---- Sampling ------------------------------------------------------------------------------ */

enum { X_EPS, X_DMEAN, X_DLOGVAR };

/* The eps stream: one per application and training forward (the count of
 * training forwards, as dropout's; 0 for inference), apart from dropout's
 * streams by the top bit. */
static uint64_t sampling_stream(const clnet__layer *l, int training)
{
    uint64_t count = training ? l->model->dropout_calls : 0;
    return (1ull << 63) | ((uint64_t)l->app << 40) | (count & ((1ull << 40) - 1));
}

static clnet_status sampling_forward(clnet__layer *l, clnet__io *io, int training)
{
    clnet_model *m = l->model;
    clnet_tensor *eps = l->extra[X_EPS].view;
    clnet_status st;
    if (m->hold_noise && l->eps_batch == m->batch)
        st = clnet_sampling_forward_eps(io->xs[0], io->xs[1], eps, io->y);
    else
        st = clnet_sampling_forward(io->xs[0], io->xs[1], m->seed, sampling_stream(l, training),
                                    eps, io->y);
    if (st)
        return st;
    l->eps_batch = m->batch;
    if (l->kl_weight > 0.0f)
        st = clnet_kl_normal(CLNET_KL_MEAN, io->xs[0], io->xs[1], 0.0f, l->kl, NULL, NULL);
    return st;
}

/* z's gradient, then the KL term's (weighted), each added where a gradient
 * is already. */
static clnet_status sampling_backward(clnet__layer *l, clnet__io *io)
{
    const clnet_tensor *lv = io->xs[1], *eps = l->extra[X_EPS].view;
    float b0 = io->betas[0], b1 = io->betas[1];
    clnet_status st = CLNET_OK;
    if (io->dy && io->dxs[0] &&
        !(st = clnet_sampling_backward(lv, eps, io->dy, b0, io->dxs[0], NULL)))
        b0 = 1.0f;
    if (!st && io->dy && io->dxs[1] &&
        !(st = clnet_sampling_backward(lv, eps, io->dy, b1, NULL, io->dxs[1])))
        b1 = 1.0f;
    float w = l->kl_weight;
    if (st || w <= 0.0f || (!io->dxs[0] && !io->dxs[1]))
        return st;
    if (w == 1.0f && (b0 == b1 || !io->dxs[0] || !io->dxs[1]))
        return clnet_kl_normal(CLNET_KL_MEAN, io->xs[0], lv, io->dxs[0] ? b0 : b1, NULL, io->dxs[0],
                               io->dxs[1]);
    clnet_tensor *tm = io->dxs[0] ? l->extra[X_DMEAN].view : NULL;
    clnet_tensor *tl = io->dxs[1] ? l->extra[X_DLOGVAR].view : NULL;
    if ((st = clnet_kl_normal(CLNET_KL_MEAN, io->xs[0], lv, 0.0f, NULL, tm, tl)))
        return st;
    if (tm)
        st = b0 == 0.0f ? clnet_scale(w, tm, io->dxs[0]) : clnet_axpy(w, tm, io->dxs[0]);
    if (!st && tl)
        st = b1 == 0.0f ? clnet_scale(w, tl, io->dxs[1]) : clnet_axpy(w, tl, io->dxs[1]);
    return st;
}

static const clnet__layer_ops sampling_ops = { "Sampling", 0, sampling_forward, sampling_backward,
                                               1 };

static clnet_status add_sampling(clnet_model *m, clnet_node mean, clnet_node logvar,
                                 float kl_weight)
{
    static const char func[] = "clnet_model_add_sampling";
    clnet_status st = check_building(m, func);
    clnet_node in[2] = { mean, logvar };
    if (st || (st = check_nodes(m, func, 2, in)))
        return st;
    if (!(kl_weight >= 0.0f && kl_weight < 1e30f))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (Sampling): kl_weight is %g (must be finite and >= 0)",
                            m->nlayers, (double)kl_weight);
    const clnet__node *a = &m->nodes[mean], *b = &m->nodes[logvar];
    if (mean == logvar || a->ndim != b->ndim ||
        memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape)) {
        char sa[128], sb[128];
        shape_text(a, sa, sizeof sa);
        shape_text(b, sb, sizeof sb);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "layer %d (Sampling): mean %s and logvar %s must be two nodes of one "
                            "shape",
                            m->nlayers, sa, sb);
    }
    clnet__layer *l;
    int64_t shape[CLNET_MAX_DIMS], one = 1;
    memcpy(shape, a->shape, sizeof shape);
    if ((st = clnet__layer_new_at(m, &sampling_ops, "sampling", 2, in, a->ndim, shape, &l)))
        return st;
    l->kl_weight = kl_weight;
    l->nextra = 3;
    for (int k = 0; k < 3; k++) {
        l->extra[k].dtype = CLNET_F32;
        l->extra[k].ndim = a->ndim;
        memcpy(l->extra[k].shape, a->shape, sizeof shape);
    }
    if ((st = clnet_tensor_create(m->ctx, CLNET_F32, 0, &one, &l->kl)) ||
        (st = clnet_tensor_fill(l->kl, 0.0)))
        return st;
    m->nextra_loss += kl_weight > 0.0f;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_add_sampling(clnet_model *m, clnet_node mean, clnet_node logvar,
                                                float kl_weight)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_sampling(m, mean, logvar, kl_weight));
}

CLNET_API clnet_status clnet_model_hold_noise(clnet_model *m, int hold)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    m->hold_noise = hold != 0;
    return CLNET_OK;
}

/* ---- Custom expressions ------------------------------------------------------------------ */

static clnet_status expr_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    return clnet_custom_forward(l->fwd_expr, io->x, io->y);
}

static clnet_status expr_backward(clnet__layer *l, clnet__io *io)
{
    return io->dx ? clnet_custom_backward(l->bwd_expr, io->x, io->y, io->dy, io->betas[0], io->dx)
                  : CLNET_OK;
}

static const clnet__layer_ops expr_ops = { "Expression", 0, expr_forward, expr_backward, 1 };

static char *copy_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = clnet__malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static clnet_status add_expression(clnet_model *m, const char *name, const char *fwd,
                                   const char *bwd)
{
    static const char func[] = "clnet_model_add_expression";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    CLNET_CHECK_ARG(m->ctx, name != NULL && fwd != NULL && bwd != NULL);
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 23;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '_';
    if (!ok)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: name must be 1 to 23 bytes of letters, digits and '_'", func);
    size_t nf = strlen(fwd), nb = strlen(bwd);
    if (!nf || !nb || nf > CLNET_CUSTOM_EXPR_MAX || nb > CLNET_CUSTOM_EXPR_MAX)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s (%s): the expressions have %zu and %zu bytes; each needs 1 to %d",
                            func, name, nf, nb, CLNET_CUSTOM_EXPR_MAX);
    int same = 0;
    for (int i = 0; i < m->nlayers; i++)
        same += !strcmp(m->layers[i]->type, name);
    clnet__layer *l;
    const clnet__node *in = &m->nodes[m->cursor];
    if ((st = clnet__layer_new(m, &expr_ops, name, in->ndim, in->shape, &l)))
        return st;
    snprintf(l->type, sizeof l->type, "%s", name);
    snprintf(l->name, sizeof l->name, "%s_%d", name, same + 1);
    if (!(l->fwd_expr = copy_text(fwd)) || !(l->bwd_expr = copy_text(bwd)))
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", func);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_add_expression(clnet_model *m, const char *name,
                                                  const char *fwd_expr, const char *bwd_expr)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_expression(m, name, fwd_expr, bwd_expr));
}

/* ---- Shared layers ----------------------------------------------------------------------------
 */

/* A clone of `o` for another application: its parameters' values borrowed,
 * its own gradients and per-application state. */
static clnet_status clone_layer(clnet_model *m, clnet__layer *o, clnet__layer **out)
{
    clnet__layer *l = clnet__calloc(1, sizeof *l);
    if (!l)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", o->name);
    *l = *o;
    l->owner = o;
    l->pre = l->dpre = l->pre_buf = l->dpre_buf = NULL;
    l->save_mean = l->save_invstd = l->kl = NULL;
    l->zero_bias = l->spare_dbias = NULL;
    memset(l->mat, 0, sizeof l->mat);
    for (int k = 0; k < l->nextra; k++)
        l->extra[k].buf = l->extra[k].view = NULL;
    for (int k = 0; k < l->nparams; k++)
        l->params[k].grad = l->params[k].m = l->params[k].v = NULL;
    *out = l;
    clnet_status st = CLNET_OK;
    for (int k = 0; k < l->nparams && !st; k++) {
        int64_t shape[CLNET_MAX_DIMS];
        int nd = clnet_tensor_shape(o->params[k].value, shape);
        if (o->params[k].grad)
            st = clnet_tensor_create(m->ctx, CLNET_F32, nd, shape, &l->params[k].grad);
    }
    int64_t shape[CLNET_MAX_DIMS], one = 1;
    if (!st && o->save_mean) {
        int nd = clnet_tensor_shape(o->save_mean, shape);
        if (!(st = clnet_tensor_create(m->ctx, CLNET_F32, nd, shape, &l->save_mean)))
            st = clnet_tensor_create(m->ctx, CLNET_F32, nd, shape, &l->save_invstd);
    }
    if (!st && o->kl)
        st = clnet_tensor_create(m->ctx, CLNET_F32, 0, &one, &l->kl);
    return st;
}

static clnet_status reuse(clnet_model *m, int layer)
{
    static const char func[] = "clnet_model_reuse";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    if (layer < 0 || layer >= m->nlayers)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: layer %d outside [0, %d)", func,
                            layer, m->nlayers);
    clnet__layer *o = m->layers[layer];
    if (o->cell)
        return clnet__error(m->ctx, CLNET_ERR_UNSUPPORTED,
                            "%s: layer %d (%s) is recurrent; recurrent layers cannot be shared",
                            func, layer, o->name);
    const clnet__app *first = &m->apps[o->app];
    if (first->nin != 1)
        return clnet__error(m->ctx, CLNET_ERR_UNSUPPORTED,
                            "%s: layer %d (%s) takes %d nodes; only layers of one input can be "
                            "reused at the cursor",
                            func, layer, o->name, first->nin);
    const clnet__node *in = &m->nodes[m->cursor];
    if (in->ndim != o->in_ndim ||
        memcmp(in->shape, o->in_shape, (size_t)in->ndim * sizeof *in->shape)) {
        char have[128], want[128];
        shape_text(in, have, sizeof have);
        shape_text(&m->nodes[first->in[0]], want, sizeof want);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE, "%s: layer %d (%s) takes %s, the cursor is %s",
                            func, layer, o->name, want, have);
    }
    clnet__layer *l = NULL;
    if ((st = clone_layer(m, o, &l))) {
        clnet__layer_free(l);
        return st;
    }
    int cur = m->cursor;
    if ((st = clnet__app_add(m, l, 1, &cur)))
        clnet__layer_free(l);
    return st;
}

CLNET_API clnet_status clnet_model_reuse(clnet_model *m, int layer)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, reuse(m, layer));
}

/* ---- Outputs --------------------------------------------------------------------------------- */

CLNET_API clnet_status clnet_model_set_outputs(clnet_model *m, int n, const clnet_node *nodes)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const char func[] = "clnet_model_set_outputs";
    clnet_status st = check_building(m, func);
    if (st)
        return st;
    if (n < 1 || n > CLNET_MODEL_MAX_IO)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: n is %d; it takes 1 to %d", func, n,
                            CLNET_MODEL_MAX_IO);
    if ((st = check_nodes(m, func, n, nodes)))
        return st;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (nodes[i] == nodes[j])
                return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                    "%s: nodes[%d] and nodes[%d] are both node %d", func, j, i,
                                    nodes[i]);
    clnet__model_unbind(m);
    memcpy(m->outputs, nodes, (size_t)n * sizeof *nodes);
    m->noutputs = n;
    return CLNET_OK;
}

CLNET_API int clnet_model_output_count(const clnet_model *m)
{
    return m ? (m->noutputs ? m->noutputs : 1) : 0;
}

CLNET_API clnet_node clnet_model_output(const clnet_model *m, int index)
{
    return m && index >= 0 && index < clnet_model_output_count(m) ? clnet__output_node(m, index)
                                                                  : -1;
}

/* ---- Several inputs and outputs ----------------------------------------------------------- */

CLNET_API clnet_status clnet_model_forward_multi(clnet_model *m, int nx,
                                                 const clnet_tensor *const *x, int training)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    return clnet__model_forward(m, "clnet_model_forward_multi", nx, x, training);
}

CLNET_API clnet_status clnet_model_output_tensor(clnet_model *m, int k, const clnet_tensor **y,
                                                 const clnet_tensor **logits)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (k < 0 || k >= clnet_model_output_count(m))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_output_tensor: output %d outside [0, %d)", k,
                            clnet_model_output_count(m));
    if (!m->batch || !m->x[0])
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_output_tensor: no forward pass yet");
    if (y)
        *y = clnet__node_act(m, clnet__output_node(m, k));
    if (logits)
        *logits = clnet__output_logits(m, k);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_node_tensor(clnet_model *m, clnet_node node,
                                               const clnet_tensor **value)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, value != NULL);
    clnet_status st = check_nodes(m, "clnet_model_node_tensor", 1, &node);
    if (st)
        return st;
    if (!m->batch || !m->x[0])
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_node_tensor: no forward pass yet");
    *value = clnet__node_act(m, node);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_backward_multi(clnet_model *m, int ny,
                                                  const clnet_tensor *const *dlogits, int nx,
                                                  const clnet_tensor **dx)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    return clnet__model_backward(m, "clnet_model_backward_multi", ny, dlogits, nx, dx);
}

CLNET_API clnet_status clnet_model_extra_loss(clnet_model *m, double *loss)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, loss != NULL);
    float v = 0;
    clnet_status st =
        m->nextra_loss ? clnet_tensor_download(m->extra_loss, &v, sizeof v) : CLNET_OK;
    *loss = v;
    return st;
}
