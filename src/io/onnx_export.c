/* clnet — writing a model as ONNX (clnet/onnx_export.h): one or a few ONNX
 * nodes per layer application, in build order (a topological order), the
 * weights as float32 initializers, packed with the protobuf-c code generated
 * from onnx.proto and written atomically. Every message the writer builds
 * lives in one arena freed at the end. The mapping is in docs/onnx.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "clnet/onnx_export.h"
#include "clnet/version.h"
#include "io/atomic.h"
#include "nn/nn_impl.h"
#include "onnx.pb-c.h"
#include "runtime/alloc.h"

#define FN "clnet_model_save_onnx"
#define MAX_ATTRS 8

typedef struct exporter {
    const clnet_model *m;
    void **allocs; /* the arena: everything below */
    size_t nallocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t nnodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t ninits, cap_inits;
    char **value; /* the ONNX name of each clnet node */
    int oom;
} exporter;

static void *ex_alloc(exporter *e, size_t n)
{
    if (e->oom)
        return NULL;
    if (e->nallocs == e->cap_allocs) {
        size_t cap = e->cap_allocs ? 2 * e->cap_allocs : 64;
        void **p = clnet__realloc(e->allocs, cap * sizeof *p);
        if (!p) {
            e->oom = 1;
            return NULL;
        }
        e->allocs = p;
        e->cap_allocs = cap;
    }
    void *p = clnet__calloc(1, n ? n : 1);
    if (!p) {
        e->oom = 1;
        return NULL;
    }
    e->allocs[e->nallocs++] = p;
    return p;
}

/* Appends p to a growing array of pointers. */
static int push(exporter *e, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (!p)
        return 0;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 32;
        void **a = ex_alloc(e, c * sizeof *a);
        if (!a)
            return 0;
        if (*n)
            memcpy(a, *arr, *n * sizeof *a);
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
    return 1;
}

static char *ex_str(exporter *e, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = ex_alloc(e, strlen(buf) + 1);
    if (s)
        strcpy(s, buf);
    return s;
}

/* A node op(inputs) -> outputs; its name is its first output's. */
static Onnx__NodeProto *node(exporter *e, const char *op, int nin, char *const *in, int nout,
                             char *const *out)
{
    Onnx__NodeProto *n = ex_alloc(e, sizeof *n);
    char **ins = ex_alloc(e, (size_t)nin * sizeof *ins);
    char **outs = ex_alloc(e, (size_t)nout * sizeof *outs);
    Onnx__AttributeProto **attrs = ex_alloc(e, MAX_ATTRS * sizeof *attrs);
    if (!n || !ins || !outs || !attrs)
        return NULL;
    onnx__node_proto__init(n);
    memcpy(ins, in, (size_t)nin * sizeof *ins);
    memcpy(outs, out, (size_t)nout * sizeof *outs);
    n->n_input = (size_t)nin;
    n->input = ins;
    n->n_output = (size_t)nout;
    n->output = outs;
    n->name = out[0];
    n->op_type = (char *)op;
    n->attribute = attrs;
    if (!push(e, (void ***)&e->nodes, &e->nnodes, &e->cap_nodes, n))
        return NULL;
    return n;
}

static Onnx__AttributeProto *attr(exporter *e, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = n ? ex_alloc(e, sizeof *a) : NULL;
    if (!a || n->n_attribute >= MAX_ATTRS)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void attr_int(exporter *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
}

static void attr_float(exporter *e, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
}

static void attr_string(exporter *e, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) {
        a->has_s = 1;
        a->s.data = (uint8_t *)v;
        a->s.len = strlen(v);
    }
}

static void attr_ints(exporter *e, Onnx__NodeProto *n, const char *name, int count,
                      const int64_t *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = ex_alloc(e, (size_t)count * sizeof *ints);
    if (a && ints) {
        memcpy(ints, v, (size_t)count * sizeof *ints);
        a->n_ints = (size_t)count;
        a->ints = ints;
    }
}

/* An initializer of `bytes` of raw data (little-endian 4- or 8-byte values). */
static Onnx__TensorProto *init(exporter *e, char *name, int32_t dtype, int ndim,
                               const int64_t *shape, size_t bytes)
{
    Onnx__TensorProto *t = ex_alloc(e, sizeof *t);
    int64_t *dims = ex_alloc(e, (size_t)ndim * sizeof *dims);
    uint8_t *raw = ex_alloc(e, bytes);
    if (!t || !dims || !raw || !name)
        return NULL;
    onnx__tensor_proto__init(t);
    memcpy(dims, shape, (size_t)ndim * sizeof *dims);
    t->n_dims = (size_t)ndim;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = name;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = bytes;
    if (!push(e, (void ***)&e->inits, &e->ninits, &e->cap_inits, t))
        return NULL;
    return t;
}

static void put_le(uint8_t *dst, uint64_t v, int bytes)
{
    for (int b = 0; b < bytes; b++)
        dst[b] = (uint8_t)(v >> (8 * b));
}

static char *init_i64(exporter *e, char *name, int count, const int64_t *v)
{
    int64_t shape[1] = { count };
    Onnx__TensorProto *t =
        init(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, shape, (size_t)count * 8);
    if (!t)
        return NULL;
    for (int i = 0; i < count; i++)
        put_le(t->raw_data.data + 8 * i, (uint64_t)v[i], 8);
    return name;
}

/* A float32 scalar (0-D) initializer: Clip's min and max. */
static char *init_f32_scalar(exporter *e, char *name, float v)
{
    const int64_t none[1] = { 1 }; /* ndim 0: no dims copied */
    Onnx__TensorProto *t = init(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, none, 4);
    if (!t)
        return NULL;
    uint32_t u;
    memcpy(&u, &v, 4);
    put_le(t->raw_data.data, u, 4);
    return name;
}

static char *init_f32(exporter *e, char *name, int count, const float *v)
{
    int64_t shape[1] = { count };
    Onnx__TensorProto *t =
        init(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, shape, (size_t)count * 4);
    if (!t)
        return NULL;
    for (int i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_le(t->raw_data.data + 4 * i, u, 4);
    }
    return name;
}

/* Parameter p of layer l as an initializer named "<layer>.<param>"; with
 * transpose, a 2-D parameter goes in transposed ((out, in) -> (in, out)).
 * Returns its name, or NULL with *st set. */
static char *param(exporter *e, const clnet__layer *l, int p, int transpose, clnet_status *st)
{
    const clnet__layer *o = l->owner ? l->owner : l;
    const clnet_tensor *v = o->params[p].value;
    int64_t shape[CLNET_MAX_DIMS];
    int ndim = clnet_tensor_shape(v, shape);
    size_t n = clnet_tensor_numel(v);
    char *name = ex_str(e, "%s.%s%s", o->name, o->params[p].name, transpose ? "_t" : "");
    /* A shared layer's applications use the owner's initializer. */
    for (size_t i = 0; name && i < e->ninits; i++)
        if (!strcmp(e->inits[i]->name, name))
            return name;
    float *host = clnet__malloc(n * sizeof *host + 1);
    if (!host) {
        e->oom = 1;
        return NULL;
    }
    if ((*st = clnet_tensor_download(v, host, n * sizeof *host))) {
        clnet__free(host);
        return NULL;
    }
    if (transpose && ndim == 2) {
        int64_t t = shape[0];
        shape[0] = shape[1];
        shape[1] = t;
    }
    Onnx__TensorProto *t = init(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, shape, n * 4);
    if (t)
        for (size_t i = 0; i < n; i++) {
            /* transposed: element (r, c) of the (rows, cols) result is (c, r) of the value */
            size_t src =
                transpose && ndim == 2
                    ? (size_t)(i % (size_t)shape[1]) * (size_t)shape[0] + i / (size_t)shape[1]
                    : i;
            uint32_t u;
            memcpy(&u, &host[src], 4);
            put_le(t->raw_data.data + 4 * i, u, 4);
        }
    clnet__free(host);
    return t ? name : NULL;
}

/* Parameter p's values on the host (in the arena), or NULL with *st set
 * (or e->oom). */
static float *host_param(exporter *e, const clnet__layer *l, int p, size_t *n, clnet_status *st)
{
    const clnet_tensor *v = (l->owner ? l->owner : l)->params[p].value;
    *n = clnet_tensor_numel(v);
    float *host = ex_alloc(e, *n * sizeof *host);
    if (host && (*st = clnet_tensor_download(v, host, *n * sizeof *host)))
        return NULL;
    return host;
}

/* A float32 initializer of the given shape from values[0..n). */
static char *init_f32_shaped(exporter *e, char *name, int ndim, const int64_t *shape,
                             const float *v, size_t n)
{
    Onnx__TensorProto *t = init(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, shape, n * 4);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_le(t->raw_data.data + 4 * i, u, 4);
    }
    return name;
}

/* Copies the gate blocks of rows (each h rows of cols values) from clnet's
 * order (PyTorch's: LSTM i f g o, GRU r z n) into ONNX's (LSTM i o f c,
 * GRU z r h): dst block k is src block order[k]. */
static void reorder_gates(float *dst, const float *src, int gates, const int *order, size_t h,
                          size_t cols)
{
    for (int k = 0; k < gates; k++)
        memcpy(dst + (size_t)k * h * cols, src + (size_t)order[k] * h * cols,
               h * cols * sizeof *dst);
}

static clnet_status unsupported(const clnet_model *m, const clnet__layer *l, const char *why);

/* SimpleRNN, LSTM, GRU: ONNX's RNN ops take (steps, batch, features)
 * (layout 0; layout 1 needs opset 14), so the input is transposed in and
 * the output out; W, R and B in ONNX's gate order, B = [Wb, Rb] (Rb zeros
 * for Keras' single bias). */
static clnet_status rnn(exporter *e, const clnet__layer *l, char *in, char *out)
{
    static const int lstm_order[4] = { 0, 3, 1, 2 }, gru_order[3] = { 1, 0, 2 },
                     rnn_order[1] = { 0 };
    if (l->owner)
        return unsupported(e->m, l, "a shared recurrent layer");
    int g = l->cell;
    const int *order = g == 4 ? lstm_order : g == 3 ? gru_order : rnn_order;
    int64_t ws[CLNET_MAX_DIMS];
    clnet_tensor_shape(l->params[1].value, ws); /* weight_hh (g * h, h) */
    size_t h = (size_t)ws[1];
    size_t f = (size_t)l->in_shape[1], n;
    clnet_status st = CLNET_OK;
    float *wih = host_param(e, l, 0, &n, &st), *whh = host_param(e, l, 1, &n, &st);
    float *b0 = l->nparams >= 3 ? host_param(e, l, 2, &n, &st) : NULL;
    float *b1 = l->nparams >= 4 ? host_param(e, l, 3, &n, &st) : NULL;
    float *w = ex_alloc(e, g * h * f * sizeof *w), *r = ex_alloc(e, g * h * h * sizeof *r),
          *b = ex_alloc(e, 2 * g * h * sizeof *b);
    if (st)
        return st;
    if (!wih || !whh || !w || !r || !b || (l->nparams >= 3 && !b0) || (l->nparams >= 4 && !b1))
        return CLNET_OK; /* e->oom */
    reorder_gates(w, wih, g, order, h, f);
    reorder_gates(r, whh, g, order, h, h);
    if (b0)
        reorder_gates(b, b0, g, order, h, 1);
    if (b1)
        reorder_gates(b + g * h, b1, g, order, h, 1);
    int64_t wshape[3] = { 1, (int64_t)(g * h), (int64_t)f },
            rshape[3] = { 1, (int64_t)(g * h), (int64_t)h },
            bshape[2] = { 1, (int64_t)(2 * g * h) }, tperm[3] = { 1, 0, 2 };
    char *xt = ex_str(e, "%s_steps_first", out), *y = ex_str(e, "%s_Y", out),
         *yh = ex_str(e, "%s_Y_h", out);
    char *ins[4] = { xt, init_f32_shaped(e, ex_str(e, "%s.W", l->name), 3, wshape, w, g * h * f),
                     init_f32_shaped(e, ex_str(e, "%s.R", l->name), 3, rshape, r, g * h * h),
                     init_f32_shaped(e, ex_str(e, "%s.B", l->name), 2, bshape, b, 2 * g * h) };
    char *outs[2] = { y, yh };
    Onnx__NodeProto *nd = node(e, "Transpose", 1, &in, 1, &xt);
    attr_ints(e, nd, "perm", 3, tperm);
    if (!ins[1] || !ins[2] || !ins[3])
        return CLNET_OK;
    nd = node(e, g == 4 ? "LSTM" : g == 3 ? "GRU" : "RNN", 4, ins, 2, outs);
    attr_int(e, nd, "hidden_size", (int64_t)h);
    if (g == 3)
        attr_int(e, nd, "linear_before_reset", 1);
    if (l->return_sequences) {
        /* Y (steps, 1, batch, h) -> (steps, batch, h) -> (batch, steps, h) */
        int64_t axis = 1;
        char *sq = ex_str(e, "%s_Y_squeezed", out);
        char *sqin[2] = { y, init_i64(e, ex_str(e, "%s.axes1", out), 1, &axis) };
        if (sqin[1])
            node(e, "Squeeze", 2, sqin, 1, &sq);
        nd = node(e, "Transpose", 1, &sq, 1, &out);
        attr_ints(e, nd, "perm", 3, tperm);
    } else {
        int64_t axis = 0;
        char *sqin[2] = { yh, init_i64(e, ex_str(e, "%s.axes0", out), 1, &axis) };
        if (sqin[1])
            node(e, "Squeeze", 2, sqin, 1, &out);
    }
    return CLNET_OK;
}

/* Emits the activation act (alpha for leaky relu; softmax over the channels
 * when the value is NCHW, out_ndim 3, else the last axis) of `in` into
 * `out`. */
static void activation(exporter *e, int act, float alpha, int out_ndim, char *in, char *out)
{
    Onnx__NodeProto *n;
    switch (act) {
    case CLNET_ACT_RELU:
        node(e, "Relu", 1, &in, 1, &out);
        break;
    case CLNET_ACT_LEAKY_RELU:
        n = node(e, "LeakyRelu", 1, &in, 1, &out);
        attr_float(e, n, "alpha", alpha);
        break;
    case CLNET_ACT_SIGMOID:
        node(e, "Sigmoid", 1, &in, 1, &out);
        break;
    case CLNET_ACT_TANH:
        node(e, "Tanh", 1, &in, 1, &out);
        break;
    case CLNET_ACT_RELU6: {
        /* Clip with min and max as inputs (opset 11+), as PyTorch writes ReLU6. */
        char *ins[3] = { in, init_f32_scalar(e, ex_str(e, "%s.min", out), 0.0f),
                         init_f32_scalar(e, ex_str(e, "%s.max", out), 6.0f) };
        if (ins[1] && ins[2])
            node(e, "Clip", 3, ins, 1, &out);
        break;
    }
    case CLNET_ACT_SOFTMAX:
        n = node(e, "Softmax", 1, &in, 1, &out);
        attr_int(e, n, "axis", out_ndim == 3 ? 1 : -1);
        break;
    default:
        node(e, "Identity", 1, &in, 1, &out);
        break;
    }
}

/* The name a layer's linear part writes: the output itself, or a
 * pre-activation value when a fused activation follows. */
static char *linear_out(exporter *e, const clnet__layer *l, char *out)
{
    return l->act == CLNET_ACT_NONE ? out : ex_str(e, "%s_linear", out);
}

static void fused_act(exporter *e, const clnet__layer *l, char *lin, char *out)
{
    if (l->act != CLNET_ACT_NONE && lin)
        activation(e, l->act, l->alpha, l->out_ndim, lin, out);
}

static clnet_status unsupported(const clnet_model *m, const clnet__layer *l, const char *why)
{
    return clnet__error(m->ctx, CLNET_ERR_UNSUPPORTED,
                        "%s: layer '%s' (%s) cannot be written as ONNX%s%s", FN, l->name, l->type,
                        why[0] ? ": " : "", why);
}

static clnet_status conv(exporter *e, const clnet__layer *l, char *in, char *out, int transposed)
{
    clnet_status st = CLNET_OK;
    char *w = param(e, l, 0, 0, &st);
    char *b = !st && l->nparams > 1 ? param(e, l, 1, 0, &st) : NULL;
    if (st)
        return st;
    char *ins[3] = { in, w, b }, *lin = linear_out(e, l, out);
    const clnet_conv2d_params *p = &l->conv;
    int64_t shape[CLNET_MAX_DIMS];
    clnet_tensor_shape((l->owner ? l->owner : l)->params[0].value, shape);
    Onnx__NodeProto *n = node(e, transposed ? "ConvTranspose" : "Conv", b ? 3 : 2, ins, 1, &lin);
    int64_t k[2] = { shape[2], shape[3] }, s[2] = { p->stride_h, p->stride_w },
            d[2] = { p->dilation_h, p->dilation_w },
            pads[4] = { p->pad_top, p->pad_left, p->pad_bottom, p->pad_right },
            opad[2] = { p->output_pad_h, p->output_pad_w };
    attr_ints(e, n, "kernel_shape", 2, k);
    attr_ints(e, n, "strides", 2, s);
    attr_ints(e, n, "dilations", 2, d);
    attr_ints(e, n, "pads", 4, pads);
    if (l->groups > 1)
        attr_int(e, n, "group", l->groups);
    if (transposed && (opad[0] || opad[1]))
        attr_ints(e, n, "output_padding", 2, opad);
    fused_act(e, l, lin, out);
    return CLNET_OK;
}

static clnet_status dense(exporter *e, const clnet__layer *l, char *in, char *out)
{
    clnet_status st = CLNET_OK;
    int seq = l->in_ndim == 2; /* (batch, steps, features): MatMul + Add */
    char *w = param(e, l, 0, seq, &st);
    char *b = !st && l->nparams > 1 ? param(e, l, 1, 0, &st) : NULL;
    if (st)
        return st;
    char *lin = linear_out(e, l, out);
    if (!seq) {
        char *ins[3] = { in, w, b };
        Onnx__NodeProto *n = node(e, "Gemm", b ? 3 : 2, ins, 1, &lin);
        attr_int(e, n, "transB", 1);
    } else if (!b) {
        char *ins[2] = { in, w };
        node(e, "MatMul", 2, ins, 1, &lin);
    } else {
        char *mm = ex_str(e, "%s_matmul", out);
        char *ins[2] = { in, w }, *add[2] = { mm, b };
        node(e, "MatMul", 2, ins, 1, &mm);
        node(e, "Add", 2, add, 1, &lin);
    }
    fused_act(e, l, lin, out);
    return CLNET_OK;
}

static clnet_status pool(exporter *e, const clnet__layer *l, char *in, char *out, int max)
{
    const clnet_pool2d_params *p = &l->pool;
    Onnx__NodeProto *n = node(e, max ? "MaxPool" : "AveragePool", 1, &in, 1, &out);
    int64_t k[2] = { p->window_h, p->window_w }, s[2] = { p->stride_h, p->stride_w },
            pads[4] = { p->pad_top, p->pad_left, p->pad_bottom, p->pad_right };
    attr_ints(e, n, "kernel_shape", 2, k);
    attr_ints(e, n, "strides", 2, s);
    attr_ints(e, n, "pads", 4, pads);
    if (!max)
        attr_int(e, n, "count_include_pad", p->count_include_pad ? 1 : 0);
    return CLNET_OK;
}

static clnet_status batchnorm(exporter *e, const clnet__layer *l, char *in, char *out)
{
    if (l->in_ndim == 2)
        return unsupported(e->m, l,
                           "over (batch, steps, features) it normalizes the last axis, "
                           "ONNX's BatchNormalization the second");
    clnet_status st = CLNET_OK;
    char *ins[5];
    for (int p = 0; p < 4 && !st; p++)
        ins[p + 1] = param(e, l, p, 0, &st);
    if (st)
        return st;
    ins[0] = in;
    Onnx__NodeProto *n = node(e, "BatchNormalization", 5, ins, 1, &out);
    attr_float(e, n, "epsilon", l->bn.eps);
    attr_float(e, n, "momentum", 1.0f - l->bn.momentum);
    return CLNET_OK;
}

static clnet_status reshape(exporter *e, const clnet__layer *l, char *in, char *out)
{
    int64_t shape[CLNET_MAX_DIMS + 1] = { 0 }; /* 0: the batch, copied from the input */
    memcpy(shape + 1, l->out_shape, (size_t)l->out_ndim * sizeof *shape);
    char *ins[2] = { in, init_i64(e, ex_str(e, "%s.shape", out), l->out_ndim + 1, shape) };
    if (ins[1])
        node(e, "Reshape", 2, ins, 1, &out);
    return CLNET_OK;
}

static clnet_status merge(exporter *e, const clnet__layer *l, const clnet__app *a, char *out)
{
    const char *op = l->merge_op == CLNET_MERGE_SUBTRACT   ? "Sub"
                     : l->merge_op == CLNET_MERGE_MULTIPLY ? "Mul"
                                                           : "Add";
    /* ONNX's Add and Mul are binary: a chain for more inputs. */
    char *acc = e->value[a->in[0]];
    for (int i = 1; i < a->nin; i++) {
        char *dst = i == a->nin - 1 ? out : ex_str(e, "%s_%d", out, i);
        char *ins[2] = { acc, e->value[a->in[i]] };
        node(e, op, 2, ins, 1, &dst);
        acc = dst;
    }
    return CLNET_OK;
}

static clnet_status upsample(exporter *e, const clnet__layer *l, char *in, char *out)
{
    float scales[4] = { 1.0f, 1.0f, (float)l->up.scale_h, (float)l->up.scale_w };
    char *ins[3] = { in, "", init_f32(e, ex_str(e, "%s.scales", out), 4, scales) };
    Onnx__NodeProto *n = ins[2] ? node(e, "Resize", 3, ins, 1, &out) : NULL;
    attr_string(e, n, "mode", "nearest");
    attr_string(e, n, "coordinate_transformation_mode", "asymmetric");
    attr_string(e, n, "nearest_mode", "floor");
    return CLNET_OK;
}

static clnet_status app(exporter *e, const clnet__app *a)
{
    const clnet__layer *l = a->l;
    const char *t = l->ops->type;
    char *in = e->value[a->in[0]], *out = e->value[a->out];
    Onnx__NodeProto *n;
    if (l->act == CLNET_ACT_HARD_SWISH)
        return unsupported(e->m, l, "hard swish (ONNX's HardSwish needs opset 14; this is 13)");
    if (!strcmp(t, "Dense"))
        return dense(e, l, in, out);
    if (!strcmp(t, "Conv2D") || !strcmp(t, "Conv2DTranspose"))
        return conv(e, l, in, out, !strcmp(t, "Conv2DTranspose"));
    if (!strcmp(t, "MaxPool2D") || !strcmp(t, "AvgPool2D"))
        return pool(e, l, in, out, !strcmp(t, "MaxPool2D"));
    if (!strcmp(t, "BatchNormalization"))
        return batchnorm(e, l, in, out);
    if (!strcmp(t, "Flatten")) {
        n = node(e, "Flatten", 1, &in, 1, &out);
        attr_int(e, n, "axis", 1);
        return CLNET_OK;
    }
    if (!strcmp(t, "Reshape"))
        return reshape(e, l, in, out);
    if (!strcmp(t, "Activation")) {
        activation(e, l->act, l->alpha, l->out_ndim, in, out);
        return CLNET_OK;
    }
    if (!strcmp(t, "Dropout")) {
        node(e, "Identity", 1, &in, 1, &out);
        return CLNET_OK;
    }
    if (!strcmp(t, "UpSampling2D"))
        return upsample(e, l, in, out);
    if (!strcmp(t, "Add") || !strcmp(t, "Subtract") || !strcmp(t, "Multiply"))
        return merge(e, l, a, out);
    if (!strcmp(t, "Concatenate")) {
        char *ins[CLNET_MERGE_MAX_INPUTS];
        for (int i = 0; i < a->nin; i++)
            ins[i] = e->value[a->in[i]];
        n = node(e, "Concat", a->nin, ins, 1, &out);
        attr_int(e, n, "axis", l->axis);
        return CLNET_OK;
    }
    if (!strcmp(t, "GlobalAveragePooling2D")) {
        char *pooled = ex_str(e, "%s_nchw", out);
        node(e, "GlobalAveragePool", 1, &in, 1, &pooled);
        n = node(e, "Flatten", 1, &pooled, 1, &out);
        attr_int(e, n, "axis", 1);
        return CLNET_OK;
    }
    if (!strcmp(t, "LSTM") || !strcmp(t, "GRU") || !strcmp(t, "SimpleRNN"))
        return rnn(e, l, in, out);
    return unsupported(e->m, l, "");
}

/* A graph input or output: float32 of (batch, shape...). */
static Onnx__ValueInfoProto *value_info(exporter *e, char *name, int ndim, const int64_t *shape)
{
    Onnx__ValueInfoProto *v = ex_alloc(e, sizeof *v);
    Onnx__TypeProto *tp = ex_alloc(e, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ex_alloc(e, sizeof *tt);
    Onnx__TensorShapeProto *sp = ex_alloc(e, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dims = ex_alloc(e, (size_t)(ndim + 1) * sizeof *dims);
    if (!v || !tp || !tt || !sp || !dims)
        return NULL;
    for (int i = 0; i <= ndim; i++) {
        if (!(dims[i] = ex_alloc(e, sizeof *dims[i])))
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dims[i]);
        if (i == 0) {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[i]->dim_param = "batch";
        } else {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[i]->dim_value = shape[i - 1];
        }
    }
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    sp->n_dim = (size_t)ndim + 1;
    sp->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = name;
    v->type = tp;
    return v;
}

static clnet_status build(exporter *e, Onnx__ModelProto *mp, Onnx__GraphProto *g,
                          Onnx__OperatorSetIdProto *opset, Onnx__OperatorSetIdProto **opsets)
{
    const clnet_model *m = e->m;
    int nout = m->noutputs ? m->noutputs : 1;
    if (!(e->value = ex_alloc(e, (size_t)m->nnodes * sizeof *e->value)))
        return CLNET_ERR_HOST_MEMORY;
    for (int i = 0; i < m->ninputs; i++)
        e->value[m->inputs[i]] = m->ninputs == 1 ? "input" : ex_str(e, "input_%d", i);
    /* Output values carry the output's name; every other node its layer's
     * (with the node's id for a shared layer's later applications). */
    for (int i = 0; i < m->napps; i++) {
        const clnet__app *a = &m->apps[i];
        e->value[a->out] =
            a->l->owner ? ex_str(e, "%s_%d", a->l->owner->name, a->out) : (char *)a->l->name;
    }
    for (int k = 0; k < nout; k++) {
        int node = clnet__output_node(m, k);
        if (m->nodes[node].app < 0)
            return clnet__error(m->ctx, CLNET_ERR_UNSUPPORTED,
                                "%s: output %d is input node %d itself; ONNX needs a layer there",
                                FN, k, node);
        e->value[node] = nout == 1 ? "output" : ex_str(e, "output_%d", k);
    }
    for (int i = 0; i < m->napps && !e->oom; i++) {
        clnet_status st = app(e, &m->apps[i]);
        if (st)
            return st;
    }
    Onnx__ValueInfoProto **ins = ex_alloc(e, (size_t)m->ninputs * sizeof *ins);
    Onnx__ValueInfoProto **outs = ex_alloc(e, (size_t)nout * sizeof *outs);
    for (int i = 0; ins && i < m->ninputs; i++) {
        const clnet__node *nd = &m->nodes[m->inputs[i]];
        ins[i] = value_info(e, e->value[m->inputs[i]], nd->ndim, nd->shape);
    }
    for (int k = 0; outs && k < nout; k++) {
        const clnet__node *nd = &m->nodes[clnet__output_node(m, k)];
        outs[k] = value_info(e, e->value[clnet__output_node(m, k)], nd->ndim, nd->shape);
    }
    if (e->oom)
        return CLNET_ERR_HOST_MEMORY;
    g->name = (char *)(m->name[0] ? m->name : "clnet");
    g->n_node = e->nnodes;
    g->node = e->nodes;
    g->n_initializer = e->ninits;
    g->initializer = e->inits;
    g->n_input = (size_t)m->ninputs;
    g->input = ins;
    g->n_output = (size_t)nout;
    g->output = outs;
    opset->domain = "";
    opset->has_version = 1;
    opset->version = CLNET_ONNX_EXPORT_OPSET;
    opsets[0] = opset;
    mp->has_ir_version = 1;
    mp->ir_version = 7; /* the IR of opset 13 */
    mp->n_opset_import = 1;
    mp->opset_import = opsets;
    mp->producer_name = "clnet";
    mp->producer_version = CLNET_VERSION_STRING;
    mp->graph = g;
    return CLNET_OK;
}

static clnet_status write_model(const clnet_model *m, const char *path, const Onnx__ModelProto *mp)
{
    size_t len = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = clnet__malloc(len + 1);
    if (!buf)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory (%zu bytes)", FN,
                            len);
    onnx__model_proto__pack(mp, buf);
    char msg[1024];
    clnet__atomic_file f;
    clnet_status st = clnet__atomic_begin(&f, path, msg, sizeof msg);
    if (!st)
        st = clnet__atomic_end(&f, clnet__write_all(f.fd, buf, len), msg, sizeof msg);
    clnet__free(buf);
    return st ? clnet__error(m->ctx, st, "%s: %s", FN, msg) : CLNET_OK;
}

CLNET_API clnet_status clnet_model_save_onnx(const clnet_model *m, const char *path)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL && path[0] != '\0');
    exporter e = { .m = m };
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1];
    clnet_status st = build(&e, &mp, &g, &opset, opsets);
    if (st == CLNET_ERR_HOST_MEMORY || (!st && e.oom))
        st = clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", FN);
    if (!st)
        st = write_model(m, path, &mp);
    for (size_t i = 0; i < e.nallocs; i++)
        clnet__free(e.allocs[i]);
    clnet__free(e.allocs);
    return st;
}
