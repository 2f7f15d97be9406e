/* clnet — the layers: shape inference at add time, parameters with Keras'
 * initializers, and forward/backward over the primitives. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/conv_grouped.h"
#include "nn_impl.h"
#include "tensor/tensor_impl.h"

/* ---- Common ------------------------------------------------------------------ */

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "(batch");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, ", %lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, ")");
}

/* Fails with the layer's name, its input shape and what it needs. */
static clnet_status shape_error(clnet_model *m, const char *type, const char *need)
{
    char in[128];
    shape_str(clnet__cursor_ndim(m), clnet__cursor_shape(m), in, sizeof in);
    return clnet__error(m->ctx, CLNET_ERR_SHAPE, "layer %d (%s): input %s, but %s", m->nlayers,
                        type, in, need);
}

static int in_ndim(const clnet_model *m)
{
    return clnet__cursor_ndim(m);
}

static const int64_t *in_shape(const clnet_model *m)
{
    return clnet__cursor_shape(m);
}

clnet_status clnet__layer_new(clnet_model *m, const clnet__layer_ops *ops, const char *prefix,
                              int out_ndim, const int64_t *out_shape, clnet__layer **out)
{
    return clnet__layer_new_at(m, ops, prefix, 1, &m->cursor, out_ndim, out_shape, out);
}

clnet_status clnet__layer_new_at(clnet_model *m, const clnet__layer_ops *ops, const char *prefix,
                                 int nin, const int *in, int out_ndim, const int64_t *out_shape,
                                 clnet__layer **out)
{
    if (m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (%s): layers cannot be added after compile", m->nlayers,
                            ops->type);
    if (m->nlayers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        clnet__layer **p = clnet__realloc(m->layers, (size_t)cap * sizeof *p);
        if (!p)
            return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", ops->type);
        m->layers = p;
        m->cap_layers = cap;
    }
    clnet__layer *l = clnet__calloc(1, sizeof *l);
    if (!l)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", ops->type);
    int same = 0;
    for (int i = 0; i < m->nlayers; i++)
        same += !strcmp(m->layers[i]->ops->type, ops->type);
    l->ops = ops;
    l->model = m;
    l->index = m->nlayers;
    l->trainable = 1;
    snprintf(l->type, sizeof l->type, "%s", ops->type);
    snprintf(l->name, sizeof l->name, "%s_%d", prefix, same + 1);
    l->in_ndim = m->nodes[in[0]].ndim;
    memcpy(l->in_shape, m->nodes[in[0]].shape, sizeof l->in_shape);
    l->out_ndim = out_ndim;
    memcpy(l->out_shape, out_shape, (size_t)out_ndim * sizeof *out_shape);
    m->layers[m->nlayers++] = l;
    *out = l;
    /* From here a failure leaves the layer to clnet__add_end to remove. */
    return clnet__app_add(m, l, nin, in);
}

clnet_status clnet__param_add(clnet__layer *l, const char *name, int ndim, const int64_t *shape,
                              int trained)
{
    clnet_context *ctx = l->model->ctx;
    clnet__param *p = &l->params[l->nparams];
    snprintf(p->name, sizeof p->name, "%s", name);
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, ndim, shape, &p->value);
    if (!st && trained)
        st = clnet_tensor_create(ctx, CLNET_F32, ndim, shape, &p->grad);
    if (!st)
        st = clnet_tensor_fill(p->value, 0.0);
    if (st) {
        clnet_tensor_destroy(p->value);
        clnet_tensor_destroy(p->grad);
        p->value = p->grad = NULL;
        return st;
    }
    l->nparams++;
    return CLNET_OK;
}

clnet_status clnet__param_init(clnet__layer *l, int i, clnet_init init, double fan_in,
                               double fan_out)
{
    clnet_tensor *t = l->params[i].value;
    /* A distinct Philox stream per layer and parameter: the same seed gives
     * the same weights on every device. */
    uint64_t stream = ((uint64_t)l->index << 8) | (uint64_t)i;
    uint64_t seed = l->model->seed;
    switch (init) {
    case CLNET_INIT_GLOROT_UNIFORM: {
        float lim = (float)sqrt(6.0 / (fan_in + fan_out));
        return clnet_tensor_rand_uniform(t, seed, stream, -lim, lim);
    }
    case CLNET_INIT_HE_UNIFORM: {
        float lim = (float)sqrt(6.0 / fan_in);
        return clnet_tensor_rand_uniform(t, seed, stream, -lim, lim);
    }
    case CLNET_INIT_HE_NORMAL:
        return clnet_tensor_rand_normal(t, seed, stream, 0.0f, (float)sqrt(2.0 / fan_in));
    case CLNET_INIT_ZEROS:
        return clnet_tensor_fill(t, 0.0);
    }
    return clnet__error(l->model->ctx, CLNET_ERR_INVALID_ARG, "%s: unknown initializer %d", l->name,
                        (int)init);
}

void clnet__layer_free(clnet__layer *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->nparams; i++) {
        if (!l->owner)
            clnet_tensor_destroy(l->params[i].value);
        clnet_tensor_destroy(l->params[i].grad);
        clnet_tensor_destroy(l->params[i].m);
        clnet_tensor_destroy(l->params[i].v);
    }
    clnet_tensor_destroy(l->pre);
    clnet_tensor_destroy(l->dpre);
    clnet_tensor_destroy(l->pre_buf);
    clnet_tensor_destroy(l->dpre_buf);
    clnet_tensor_destroy(l->save_mean);
    clnet_tensor_destroy(l->save_invstd);
    clnet_tensor_destroy(l->zero_bias);
    clnet_tensor_destroy(l->spare_dbias);
    for (int i = 0; i < l->nextra; i++) {
        clnet_tensor_destroy(l->extra[i].view);
        clnet_tensor_destroy(l->extra[i].buf);
    }
    for (int i = 0; i < 4; i++)
        clnet_tensor_destroy(l->mat[i]);
    clnet_tensor_destroy(l->kl);
    if (!l->owner) {
        clnet__free(l->fwd_expr);
        clnet__free(l->bwd_expr);
    }
    clnet__free(l);
}

static int valid_activation(clnet_activation a)
{
    return a == CLNET_ACT_NONE || a == CLNET_ACT_RELU || a == CLNET_ACT_LEAKY_RELU ||
           a == CLNET_ACT_SIGMOID || a == CLNET_ACT_TANH || a == CLNET_ACT_RELU6 ||
           a == CLNET_ACT_HARD_SWISH || a == CLNET_ACT_SOFTMAX;
}

/* A bad field of a layer's params: names the layer, the field, its value and
 * what it must be. */
static clnet_status field_error(clnet_model *m, const char *type, const char *field,
                                long long value, const char *need)
{
    return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "layer %d (%s): %s is %lld (%s)", m->nlayers,
                        type, field, value, need);
}

#define CHECK_FIELD(m, type, p, field, cond, need)                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return field_error(m, type, #field, (long long)(p)->field, need);                      \
    } while (0)

/* The activation: one of clnet_activation or CLNET_ACT_SOFTMAX. */
static clnet_status check_activation(clnet_model *m, const char *type, clnet_activation act)
{
    if (!valid_activation(act))
        return field_error(m, type, "activation", (long long)act,
                           "must be CLNET_ACT_NONE, RELU, LEAKY_RELU, SIGMOID, TANH, RELU6, "
                           "HARD_SWISH or SOFTMAX");
    return CLNET_OK;
}

/* Softmax normalizes over the feature axis, as in Keras: the channels of
 * NCHW images (dim 1), the last axis of (batch, features) and (batch, steps,
 * features). */
clnet_status clnet__softmax_forward(const clnet__layer *l, const clnet_tensor *x, clnet_tensor *y)
{
    return l->out_ndim == 3 ? clnet_softmax_channels_forward(x, y) : clnet_softmax_forward(x, y);
}

clnet_status clnet__softmax_backward(const clnet__layer *l, const clnet_tensor *y,
                                     const clnet_tensor *dy, clnet_tensor *dx)
{
    return l->out_ndim == 3 ? clnet_softmax_channels_backward(y, dy, dx)
                            : clnet_softmax_backward(y, dy, dx);
}

int clnet__layer_output_act(const clnet__layer *l)
{
    const char *t = l->ops->type;
    if (!strcmp(t, "Dense") || !strcmp(t, "Conv2D") || !strcmp(t, "Conv2DTranspose") ||
        !strcmp(t, "Activation"))
        return (int)l->act;
    return CLNET_ACT_NONE;
}

/* y = act(pre) after the layer's linear part wrote pre. */
static clnet_status act_forward(clnet__layer *l, clnet__io *io)
{
    if (!l->has_pre)
        return CLNET_OK;
    if (l->act == CLNET_ACT_SOFTMAX)
        return clnet__softmax_forward(l, io->pre, io->y);
    return clnet_activation_forward(l->act, l->alpha, io->pre, io->y);
}

/* dpre from dy (unless dy already is the gradient at pre); returns the
 * gradient at the linear part's output. */
static clnet_status act_backward(clnet__layer *l, clnet__io *io, const clnet_tensor **dlin)
{
    *dlin = io->dy;
    if (!l->has_pre || io->dy_is_pre)
        return CLNET_OK;
    *dlin = io->dpre;
    if (l->act == CLNET_ACT_SOFTMAX)
        return clnet__softmax_backward(l, io->y, io->dy, io->dpre);
    return clnet_activation_backward(l->act, l->alpha, io->pre, io->y, io->dy, io->dpre);
}

/* ---- Dense ----------------------------------------------------------------------- */

/* Dense on (batch, steps, features) works on the (batch * steps, features)
 * matrix: a 2-D view of t with `cols` columns, kept in the layer's slot k
 * and made again only when t is another buffer or size (a new batch), so a
 * warm step allocates nothing. NULL with *st set on failure. */
static clnet_tensor *matrix(clnet__layer *l, int k, const clnet_tensor *t, int64_t cols,
                            clnet_status *st)
{
    clnet_tensor *v = l->mat[k];
    if (v && v->storage == t->storage && v->offset == t->offset && v->numel == t->numel)
        return v;
    clnet_tensor_destroy(v);
    l->mat[k] = NULL;
    int64_t shape[2] = { (int64_t)(t->numel / (size_t)cols), cols };
    *st = clnet_tensor_reshape(t, 2, shape, &l->mat[k]);
    return l->mat[k];
}

enum { MAT_X, MAT_LIN, MAT_DLIN, MAT_DX };

static clnet_status dense_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    int64_t in = l->in_shape[l->in_ndim - 1], out = l->out_shape[l->out_ndim - 1];
    const clnet_tensor *x = io->x;
    clnet_tensor *lin = l->has_pre ? io->pre : io->y;
    clnet_status st = CLNET_OK;
    if (l->in_ndim == 2 &&
        (!(x = matrix(l, MAT_X, x, in, &st)) || !(lin = matrix(l, MAT_LIN, lin, out, &st))))
        return st;
    st = clnet_gemm(CLNET_NO_TRANS, CLNET_TRANS, 1.0f, x, l->params[0].value, 0.0f, lin);
    if (!st && l->nparams > 1)
        st = clnet_bias_add(lin, l->params[1].value, lin);
    return st ? st : act_forward(l, io);
}

static clnet_status dense_backward(clnet__layer *l, clnet__io *io)
{
    int64_t in = l->in_shape[l->in_ndim - 1], out = l->out_shape[l->out_ndim - 1];
    const clnet_tensor *d, *x = io->x;
    clnet_tensor *dx = io->dx;
    clnet_status st = act_backward(l, io, &d);
    if (st || (l->in_ndim == 2 &&
               (!(d = matrix(l, MAT_DLIN, d, out, &st)) || !(x = matrix(l, MAT_X, x, in, &st)) ||
                (dx && !(dx = matrix(l, MAT_DX, dx, in, &st))))))
        return st;
    if (l->trainable) {
        st = clnet_gemm(CLNET_TRANS, CLNET_NO_TRANS, 1.0f, d, x, 0.0f, l->params[0].grad);
        if (!st && l->nparams > 1)
            st = clnet_bias_backward(d, l->params[1].grad);
    }
    if (!st && dx)
        st = clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, d, l->params[0].value, 0.0f, dx);
    return st;
}

static const clnet__layer_ops dense_ops = { "Dense", 0, dense_forward, dense_backward, 0 };

static clnet_status add_dense(clnet_model *m, const clnet_dense_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_dense_params defaults = CLNET_DENSE_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CHECK_FIELD(m, "Dense", p, units, p->units > 0, "must be >= 1");
    int nd = in_ndim(m);
    if (nd != 1 && nd != 2)
        return shape_error(m, "Dense",
                           "Dense needs (batch, features) or (batch, steps, features): add a "
                           "Flatten first");
    clnet_status st = check_activation(m, "Dense", p->activation);
    if (st)
        return st;
    int64_t in = in_shape(m)[nd - 1], out = p->units, oshape[2];
    memcpy(oshape, in_shape(m), (size_t)nd * sizeof *oshape);
    oshape[nd - 1] = out;
    clnet__layer *l;
    if ((st = clnet__layer_new(m, &dense_ops, "dense", nd, oshape, &l)))
        return st;
    l->act = p->activation;
    l->alpha = p->alpha;
    l->has_pre = p->activation != CLNET_ACT_NONE;
    int64_t wshape[2] = { out, in };
    if ((st = clnet__param_add(l, "kernel", 2, wshape, 1)) ||
        (st = clnet__param_init(l, 0, p->kernel_init, (double)in, (double)out)))
        return st;
    if (p->use_bias && (st = clnet__param_add(l, "bias", 1, &out, 1)))
        return st;
    return CLNET_OK;
}

/* ---- Conv2D and Conv2DTranspose ------------------------------------------------ */

/* What differs between a convolution and a transposed one: the four ops, the
 * padding rule, the output shape, the kernel's layout (K, C, R, S) vs
 * (C, K, R, S), and so which of channels and filters is the fan-in. */
typedef struct conv_kind {
    const char *label; /* in errors: "Conv2D" */
    const char *name;  /* layer name prefix: "conv2d" */
    int transposed;
    clnet_status (*forward)(const clnet_conv2d_params *, const clnet_tensor *, const clnet_tensor *,
                            const clnet_tensor *, clnet_tensor *);
    clnet_status (*backward_data)(const clnet_conv2d_params *, const clnet_tensor *,
                                  const clnet_tensor *, clnet_tensor *);
    clnet_status (*backward_filter)(const clnet_conv2d_params *, const clnet_tensor *,
                                    const clnet_tensor *, clnet_tensor *);
    clnet_status (*set_same)(clnet_conv2d_params *, int64_t, int64_t, int64_t, int64_t);
    clnet_status (*output_shape)(const clnet_conv2d_params *, const int64_t[4], const int64_t[4],
                                 int64_t[4]);
    clnet__layer_ops ops;
} conv_kind;

static const conv_kind *kind_of(const clnet__layer *l);

static clnet_status conv_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    clnet_tensor *lin = l->has_pre ? io->pre : io->y;
    const clnet_tensor *b = l->nparams > 1 ? l->params[1].value : NULL;
    clnet_status st =
        l->groups > 1
            ? clnet_conv2d_grouped_forward(&l->conv, l->groups, io->x, l->params[0].value, b, lin)
            : kind_of(l)->forward(&l->conv, io->x, l->params[0].value, b, lin);
    return st ? st : act_forward(l, io);
}

static clnet_status conv_backward(clnet__layer *l, clnet__io *io)
{
    const conv_kind *k = kind_of(l);
    const clnet_tensor *d;
    clnet_status st = act_backward(l, io, &d);
    if (!st && l->trainable) {
        st = l->groups > 1 ? clnet_conv2d_grouped_backward_filter(&l->conv, l->groups, io->x, d,
                                                                  l->params[0].grad)
                           : k->backward_filter(&l->conv, io->x, d, l->params[0].grad);
        if (!st && l->nparams > 1)
            st = clnet_conv2d_backward_bias(d, l->params[1].grad);
    }
    if (!st && io->dx)
        st = l->groups > 1 ? clnet_conv2d_grouped_backward_data(&l->conv, l->groups,
                                                                l->params[0].value, d, io->dx)
                           : k->backward_data(&l->conv, l->params[0].value, d, io->dx);
    return st;
}

static const conv_kind conv_kinds[2] = {
    { "Conv2D",
      "conv2d",
      0,
      clnet_conv2d_forward,
      clnet_conv2d_backward_data,
      clnet_conv2d_backward_filter,
      clnet_conv2d_params_set_same,
      clnet_conv2d_output_shape,
      { "Conv2D", 0, conv_forward, conv_backward, 0 } },
    { "Conv2DTranspose",
      "conv2d_transpose",
      1,
      clnet_conv2d_transpose_forward,
      clnet_conv2d_transpose_backward_data,
      clnet_conv2d_transpose_backward_filter,
      clnet_conv2d_transpose_params_set_same,
      clnet_conv2d_transpose_output_shape,
      { "Conv2DTranspose", 0, conv_forward, conv_backward, 0 } },
};

static const conv_kind *kind_of(const clnet__layer *l)
{
    return l->ops == &conv_kinds[1].ops ? &conv_kinds[1] : &conv_kinds[0];
}

static clnet_status add_conv(clnet_model *m, const clnet_conv2d_layer_params *p,
                             const conv_kind *kind)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_conv2d_layer_params defaults = CLNET_CONV2D_LAYER_PARAMS_INIT;
    if (!p)
        p = &defaults;
    const char *t = kind->label;
    CHECK_FIELD(m, t, p, filters, p->filters > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, kernel_h, p->kernel_h > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, kernel_w, p->kernel_w > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, stride_h, p->stride_h > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, stride_w, p->stride_w > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, dilation_h, p->dilation_h > 0, "must be >= 1");
    CHECK_FIELD(m, t, p, dilation_w, p->dilation_w > 0, "must be >= 1");
    if (kind->transposed) {
        CHECK_FIELD(m, t, p, padding,
                    p->padding == CLNET_PADDING_VALID || p->padding == CLNET_PADDING_SAME,
                    "must be CLNET_PADDING_VALID or CLNET_PADDING_SAME");
        CHECK_FIELD(m, t, p, groups, p->groups == 0 || p->groups == 1,
                    "must be 0 or 1 (Conv2DTranspose has no grouped form)");
    } else {
        CHECK_FIELD(m, t, p, padding,
                    p->padding == CLNET_PADDING_VALID || p->padding == CLNET_PADDING_SAME ||
                        p->padding == CLNET_PADDING_EXPLICIT,
                    "must be CLNET_PADDING_VALID, SAME or EXPLICIT");
        CHECK_FIELD(m, t, p, groups, p->groups >= 0, "must be >= 0; 0 and 1 are ungrouped");
    }
    if (p->padding == CLNET_PADDING_EXPLICIT) {
        CHECK_FIELD(m, t, p, pad_top, p->pad_top >= 0, "must be >= 0");
        CHECK_FIELD(m, t, p, pad_left, p->pad_left >= 0, "must be >= 0");
        CHECK_FIELD(m, t, p, pad_bottom, p->pad_bottom >= 0, "must be >= 0");
        CHECK_FIELD(m, t, p, pad_right, p->pad_right >= 0, "must be >= 0");
    }
    clnet_status ast = check_activation(m, t, p->activation);
    if (ast)
        return ast;
    char need[160];
    if (in_ndim(m) != 3) {
        snprintf(need, sizeof need, "%s needs (batch, channels, height, width)", kind->label);
        return shape_error(m, kind->label, need);
    }
    const int64_t *in = in_shape(m);
    clnet_conv2d_params cp = CLNET_CONV2D_PARAMS_DEFAULT;
    cp.stride_h = p->stride_h;
    cp.stride_w = p->stride_w;
    cp.dilation_h = p->dilation_h;
    cp.dilation_w = p->dilation_w;
    clnet_status st = p->padding == CLNET_PADDING_SAME
                          ? kind->set_same(&cp, in[1], in[2], p->kernel_h, p->kernel_w)
                          : clnet_conv2d_params_set_valid(&cp);
    if (st)
        return shape_error(m, kind->label, "'same' padding does not fit");
    if (p->padding == CLNET_PADDING_EXPLICIT) {
        cp.pad_top = p->pad_top;
        cp.pad_left = p->pad_left;
        cp.pad_bottom = p->pad_bottom;
        cp.pad_right = p->pad_right;
    }
    int groups = p->groups > 1 ? p->groups : 1;
    if (in[0] % groups || p->filters % groups) {
        snprintf(need, sizeof need, "groups %d must divide the %lld channels and the %d filters",
                 groups, (long long)in[0], p->filters);
        return shape_error(m, kind->label, need);
    }
    /* The kernel is (K, C / groups, R, S), or (C, K, R, S) when transposed;
     * Keras' fans follow it: in = the channels one filter reads (filters
     * when transposed) * R * S. */
    int64_t c = in[0], k = p->filters, xs[4] = { 1, c, in[1], in[2] }, ys[4];
    int64_t ws[4] = { kind->transposed ? c : k, kind->transposed ? k : c / groups, p->kernel_h,
                      p->kernel_w };
    if ((groups > 1 ? clnet_conv2d_grouped_output_shape(&cp, groups, xs, ws, ys)
                    : kind->output_shape(&cp, xs, ws, ys)) != CLNET_OK) {
        snprintf(need, sizeof need,
                 "a %dx%d kernel (stride %d, %d, dilation %d, %d) does not fit it", p->kernel_h,
                 p->kernel_w, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w);
        return shape_error(m, kind->label, need);
    }
    clnet__layer *l;
    if ((st = clnet__layer_new(m, &kind->ops, kind->name, 3, ys + 1, &l)))
        return st;
    l->conv = cp;
    l->groups = groups;
    l->act = p->activation;
    l->alpha = p->alpha;
    l->has_pre = p->activation != CLNET_ACT_NONE;
    double rs = (double)p->kernel_h * p->kernel_w;
    if ((st = clnet__param_add(l, "kernel", 4, ws, 1)) ||
        (st = clnet__param_init(l, 0, p->kernel_init, (double)ws[1] * rs, (double)ws[0] * rs)))
        return st;
    if (p->use_bias && (st = clnet__param_add(l, "bias", 1, &k, 1)))
        return st;
    return CLNET_OK;
}

static clnet_status add_conv2d(clnet_model *m, const clnet_conv2d_layer_params *p)
{
    return add_conv(m, p, &conv_kinds[0]);
}

static clnet_status add_conv2d_transpose(clnet_model *m, const clnet_conv2d_layer_params *p)
{
    return add_conv(m, p, &conv_kinds[1]);
}

/* ---- UpSampling2D ----------------------------------------------------------------- */

static clnet_status upsample_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    return clnet_upsample2d_nearest_forward(l->up.scale_h, l->up.scale_w, io->x, io->y);
}

static clnet_status upsample_backward(clnet__layer *l, clnet__io *io)
{
    return io->dx ? clnet_upsample2d_nearest_backward(l->up.scale_h, l->up.scale_w, io->dy, io->dx)
                  : CLNET_OK;
}

static const clnet__layer_ops upsample_ops = { "UpSampling2D", 0, upsample_forward,
                                               upsample_backward, 0 };

static clnet_status add_upsampling2d(clnet_model *m, int size_h, int size_w)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (size_h <= 0 || size_w <= 0)
        return field_error(m, "UpSampling2D", size_h <= 0 ? "size_h" : "size_w",
                           size_h <= 0 ? size_h : size_w, "must be >= 1");
    if (in_ndim(m) != 3)
        return shape_error(m, "UpSampling2D",
                           "UpSampling2D needs (batch, channels, height, width)");
    const int64_t *in = in_shape(m);
    int64_t out[3] = { in[0], in[1] * size_h, in[2] * size_w };
    clnet__layer *l;
    clnet_status st = clnet__layer_new(m, &upsample_ops, "up_sampling2d", 3, out, &l);
    if (!st) {
        l->up.scale_h = size_h;
        l->up.scale_w = size_w;
    }
    return st;
}

/* ---- Pooling --------------------------------------------------------------------- */

/* Training keeps each window's argmax (extra 0, int32) for the backward,
 * which then need not scan x again. */
static clnet_status maxpool_forward(clnet__layer *l, clnet__io *io, int training)
{
    return training ? clnet_pool2d_max_forward_indices(&l->pool, io->x, io->y, l->extra[0].view)
                    : clnet_pool2d_max_forward(&l->pool, io->x, io->y);
}

static clnet_status maxpool_backward(clnet__layer *l, clnet__io *io)
{
    return io->dx ? clnet_pool2d_max_backward_indices(&l->pool, l->extra[0].view, io->dy, io->dx)
                  : CLNET_OK;
}

static clnet_status avgpool_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    return clnet_pool2d_avg_forward(&l->pool, io->x, io->y);
}

static clnet_status avgpool_backward(clnet__layer *l, clnet__io *io)
{
    return io->dx ? clnet_pool2d_avg_backward(&l->pool, io->dy, io->dx) : CLNET_OK;
}

static const clnet__layer_ops maxpool_ops = { "MaxPool2D", 0, maxpool_forward, maxpool_backward,
                                              0 };
static const clnet__layer_ops avgpool_ops = { "AvgPool2D", 0, avgpool_forward, avgpool_backward,
                                              0 };

/* Keras' 'same' pooling: output ceil(in / stride), padding split as for
 * convolutions, padded cells ignored by max and not counted by average. */
static void pool_same_padding(int64_t in, int window, int stride, int *before, int *after)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + window - in;
    if (total < 0)
        total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
}

static clnet_status add_pool(clnet_model *m, const clnet_pool2d_layer_params *p,
                             const clnet__layer_ops *ops, const char *prefix)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_pool2d_layer_params defaults = CLNET_POOL2D_LAYER_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CHECK_FIELD(m, ops->type, p, window_h, p->window_h > 0, "must be >= 1");
    CHECK_FIELD(m, ops->type, p, window_w, p->window_w > 0, "must be >= 1");
    CHECK_FIELD(m, ops->type, p, stride_h, p->stride_h >= 0, "must be >= 0; 0 is the pool size");
    CHECK_FIELD(m, ops->type, p, stride_w, p->stride_w >= 0, "must be >= 0; 0 is the pool size");
    CHECK_FIELD(m, ops->type, p, padding,
                p->padding == CLNET_PADDING_VALID || p->padding == CLNET_PADDING_SAME ||
                    p->padding == CLNET_PADDING_EXPLICIT,
                "must be CLNET_PADDING_VALID, SAME or EXPLICIT");
    if (p->padding == CLNET_PADDING_EXPLICIT) {
        CHECK_FIELD(m, ops->type, p, pad_top, p->pad_top >= 0 && p->pad_top < p->window_h,
                    "must be >= 0 and smaller than window_h");
        CHECK_FIELD(m, ops->type, p, pad_bottom, p->pad_bottom >= 0 && p->pad_bottom < p->window_h,
                    "must be >= 0 and smaller than window_h");
        CHECK_FIELD(m, ops->type, p, pad_left, p->pad_left >= 0 && p->pad_left < p->window_w,
                    "must be >= 0 and smaller than window_w");
        CHECK_FIELD(m, ops->type, p, pad_right, p->pad_right >= 0 && p->pad_right < p->window_w,
                    "must be >= 0 and smaller than window_w");
        CHECK_FIELD(m, ops->type, p, count_include_pad,
                    p->count_include_pad == 0 || p->count_include_pad == 1, "must be 0 or 1");
    }
    if (in_ndim(m) != 3)
        return shape_error(m, ops->type, "pooling needs (batch, channels, height, width)");
    const int64_t *in = in_shape(m);
    clnet_pool2d_params pp = CLNET_POOL2D_PARAMS_DEFAULT;
    pp.window_h = p->window_h;
    pp.window_w = p->window_w;
    pp.stride_h = p->stride_h ? p->stride_h : p->window_h;
    pp.stride_w = p->stride_w ? p->stride_w : p->window_w;
    if (p->padding == CLNET_PADDING_SAME) {
        pool_same_padding(in[1], pp.window_h, pp.stride_h, &pp.pad_top, &pp.pad_bottom);
        pool_same_padding(in[2], pp.window_w, pp.stride_w, &pp.pad_left, &pp.pad_right);
    } else if (p->padding == CLNET_PADDING_EXPLICIT) {
        pp.pad_top = p->pad_top;
        pp.pad_left = p->pad_left;
        pp.pad_bottom = p->pad_bottom;
        pp.pad_right = p->pad_right;
        pp.count_include_pad = p->count_include_pad;
    }
    int64_t xs[4] = { 1, in[0], in[1], in[2] }, ys[4];
    if (clnet_pool2d_output_shape(&pp, xs, ys) != CLNET_OK) {
        char need[128];
        snprintf(need, sizeof need, "a %dx%d window does not fit it", p->window_h, p->window_w);
        return shape_error(m, ops->type, need);
    }
    clnet__layer *l;
    clnet_status st = clnet__layer_new(m, ops, prefix, 3, ys + 1, &l);
    if (st)
        return st;
    l->pool = pp;
    if (ops == &maxpool_ops) {
        l->extra[0].dtype = CLNET_I32;
        l->extra[0].ndim = 3;
        memcpy(l->extra[0].shape, ys + 1, 3 * sizeof *ys);
        l->nextra = 1;
    }
    return CLNET_OK;
}

static clnet_status add_maxpool2d(clnet_model *m, const clnet_pool2d_layer_params *p)
{
    return add_pool(m, p, &maxpool_ops, "max_pooling2d");
}

static clnet_status add_avgpool2d(clnet_model *m, const clnet_pool2d_layer_params *p)
{
    return add_pool(m, p, &avgpool_ops, "average_pooling2d");
}

/* ---- Flatten and Reshape (views) --------------------------------------------------------- */

static const clnet__layer_ops flatten_ops = { "Flatten", 1, NULL, NULL, 0 };
static const clnet__layer_ops reshape_ops = { "Reshape", 1, NULL, NULL, 0 };

static int64_t numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

static clnet_status add_flatten(clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    int64_t n = numel(in_ndim(m), in_shape(m));
    clnet__layer *l;
    return clnet__layer_new(m, &flatten_ops, "flatten", 1, &n, &l);
}

static clnet_status add_reshape(clnet_model *m, int ndim, const int64_t *shape)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, ndim >= 1 && ndim < CLNET_MAX_DIMS && shape != NULL);
    int64_t n = numel(in_ndim(m), in_shape(m)), known = 1, dims[CLNET_MAX_DIMS];
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = shape[i];
        if (shape[i] == -1 && infer < 0)
            infer = i;
        else if (shape[i] <= 0)
            return shape_error(m, "Reshape", "target dims must be positive (one may be -1)");
        else
            known *= shape[i];
    }
    if (infer >= 0 && n % known == 0)
        dims[infer] = n / known;
    if (numel(ndim, dims) != n) {
        char need[128];
        snprintf(need, sizeof need, "the target shape does not hold its %lld elements",
                 (long long)n);
        return shape_error(m, "Reshape", need);
    }
    clnet__layer *l;
    return clnet__layer_new(m, &reshape_ops, "reshape", ndim, dims, &l);
}

/* ---- Activation ------------------------------------------------------------------------ */

static clnet_status activation_forward(clnet__layer *l, clnet__io *io, int training)
{
    (void)training;
    if (l->act == CLNET_ACT_SOFTMAX)
        return clnet__softmax_forward(l, io->x, io->y);
    return clnet_activation_forward(l->act, l->alpha, io->x, io->y);
}

static clnet_status activation_backward(clnet__layer *l, clnet__io *io)
{
    if (!io->dx)
        return CLNET_OK;
    if (io->dy_is_pre)
        return clnet_tensor_copy(io->dy, io->dx);
    if (l->act == CLNET_ACT_SOFTMAX)
        return clnet__softmax_backward(l, io->y, io->dy, io->dx);
    return clnet_activation_backward(l->act, l->alpha, io->x, io->y, io->dy, io->dx);
}

static const clnet__layer_ops activation_ops = { "Activation", 0, activation_forward,
                                                 activation_backward, 0 };

static clnet_status add_activation(clnet_model *m, clnet_activation act, float alpha)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet_status st = check_activation(m, "Activation", act);
    if (st)
        return st;
    clnet__layer *l;
    st = clnet__layer_new(m, &activation_ops, "activation", in_ndim(m), in_shape(m), &l);
    if (!st) {
        l->act = act;
        l->alpha = alpha;
    }
    return st;
}

/* ---- Dropout ------------------------------------------------------------------------------ */

/* The mask of the current step: a stream per layer and per training forward. */
static uint64_t dropout_stream(const clnet__layer *l)
{
    return ((uint64_t)l->index << 48) ^ l->model->dropout_calls;
}

static clnet_status dropout_forward(clnet__layer *l, clnet__io *io, int training)
{
    if (!training || l->rate == 0.0f)
        return clnet_tensor_copy(io->x, io->y);
    return clnet_dropout_forward(l->rate, l->model->seed, dropout_stream(l), io->x, io->y, NULL);
}

static clnet_status dropout_backward(clnet__layer *l, clnet__io *io)
{
    if (!io->dx)
        return CLNET_OK;
    if (l->rate == 0.0f)
        return clnet_tensor_copy(io->dy, io->dx);
    return clnet_dropout_backward(l->rate, l->model->seed, dropout_stream(l), io->dy, io->dx);
}

static const clnet__layer_ops dropout_ops = { "Dropout", 0, dropout_forward, dropout_backward, 0 };

static clnet_status add_dropout(clnet_model *m, float rate)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (!(rate >= 0.0f && rate < 1.0f))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (Dropout): rate is %g (must be in [0, 1))", m->nlayers,
                            (double)rate);
    clnet__layer *l;
    clnet_status st = clnet__layer_new(m, &dropout_ops, "dropout", in_ndim(m), in_shape(m), &l);
    if (!st)
        l->rate = rate;
    return st;
}

/* ---- BatchNormalization ----------------------------------------------------------------- */

static clnet_status batchnorm_forward(clnet__layer *l, clnet__io *io, int training)
{
    clnet__param *p = l->params;
    if (!training)
        return clnet_batchnorm_forward_inference(&l->bn, io->x, p[0].value, p[1].value, p[2].value,
                                                 p[3].value, io->y);
    /* Frozen: batch statistics, but the running ones stay as they are. */
    return clnet_batchnorm_forward_training(
        &l->bn, io->x, p[0].value, p[1].value, io->y, l->trainable ? p[2].value : NULL,
        l->trainable ? p[3].value : NULL, l->save_mean, l->save_invstd);
}

static clnet_status batchnorm_backward(clnet__layer *l, clnet__io *io)
{
    clnet__param *p = l->params;
    clnet_tensor *dx = io->dx;
    /* The primitive always writes dx; without a consumer it goes to dpre. */
    if (!dx)
        dx = io->dpre;
    return clnet_batchnorm_backward(&l->bn, io->x, io->dy, p[0].value, l->save_mean, l->save_invstd,
                                    dx, l->trainable ? p[0].grad : NULL,
                                    l->trainable ? p[1].grad : NULL);
}

static const clnet__layer_ops batchnorm_ops = { "BatchNormalization", 0, batchnorm_forward,
                                                batchnorm_backward, 0 };

static clnet_status add_batchnorm(clnet_model *m, const clnet_batchnorm_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_batchnorm_params defaults = CLNET_BATCHNORM_PARAMS_INIT;
    if (!p)
        p = &defaults;
    float momentum = p->momentum, eps = p->eps;
    if (!(momentum >= 0.0f && momentum <= 1.0f && eps >= 0.0f))
        return clnet__error(
            m->ctx, CLNET_ERR_INVALID_ARG,
            "layer %d (BatchNormalization): momentum %g must be in [0, 1] and eps %g "
            ">= 0",
            m->nlayers, (double)momentum, (double)eps);
    int nd = in_ndim(m);
    if (nd != 1 && nd != 3)
        return shape_error(m, "BatchNormalization", "it needs (batch, features) or NCHW");
    int64_t c = in_shape(m)[0];
    clnet__layer *l;
    clnet_status st =
        clnet__layer_new(m, &batchnorm_ops, "batch_normalization", nd, in_shape(m), &l);
    if (st)
        return st;
    l->bn.eps = eps;
    l->bn.momentum = momentum;
    l->has_pre = 1; /* dpre doubles as a sink for an unused dx */
    if ((st = clnet__param_add(l, "gamma", 1, &c, 1)) ||
        (st = clnet_tensor_fill(l->params[0].value, 1.0)) ||
        (st = clnet__param_add(l, "beta", 1, &c, 1)) ||
        (st = clnet__param_add(l, "running_mean", 1, &c, 0)) ||
        (st = clnet__param_add(l, "running_var", 1, &c, 0)) ||
        (st = clnet_tensor_fill(l->params[3].value, 1.0)) ||
        (st = clnet_tensor_create(m->ctx, CLNET_F32, 1, &c, &l->save_mean)) ||
        (st = clnet_tensor_create(m->ctx, CLNET_F32, 1, &c, &l->save_invstd)))
        return st;
    return CLNET_OK;
}

/* ---- The public adds: nothing half-built stays after a failure -------------- */

CLNET_API clnet_status clnet_model_add_dense(clnet_model *m, const clnet_dense_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_dense(m, p));
}

CLNET_API clnet_status clnet_model_add_conv2d(clnet_model *m, const clnet_conv2d_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_conv2d(m, p));
}

CLNET_API clnet_status clnet_model_add_conv2d_transpose(clnet_model *m,
                                                        const clnet_conv2d_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_conv2d_transpose(m, p));
}

CLNET_API clnet_status clnet_model_add_upsampling2d(clnet_model *m, int size_h, int size_w)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_upsampling2d(m, size_h, size_w));
}

CLNET_API clnet_status clnet_model_add_maxpool2d(clnet_model *m, const clnet_pool2d_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_maxpool2d(m, p));
}

CLNET_API clnet_status clnet_model_add_avgpool2d(clnet_model *m, const clnet_pool2d_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_avgpool2d(m, p));
}

CLNET_API clnet_status clnet_model_add_flatten(clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_flatten(m));
}

CLNET_API clnet_status clnet_model_add_reshape(clnet_model *m, int ndim, const int64_t *shape)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_reshape(m, ndim, shape));
}

CLNET_API clnet_status clnet_model_add_activation(clnet_model *m, clnet_activation act, float alpha)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_activation(m, act, alpha));
}

CLNET_API clnet_status clnet_model_add_dropout(clnet_model *m, float rate)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_dropout(m, rate));
}

CLNET_API clnet_status clnet_model_add_batchnorm(clnet_model *m, const clnet_batchnorm_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_batchnorm(m, p));
}
