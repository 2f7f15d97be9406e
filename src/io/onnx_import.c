/* clnet — ONNX graphs onto clnet graph models (include/clnet/onnx_import.h):
 * every node checked against what the importer maps (all refusals in one
 * message), then one layer or merge per node, weights copied from the
 * initializers. Constants are read from the reader's tensors; they never
 * run on the device. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clnet/conv.h"
#include "clnet/onnx_import.h"
#include "runtime/alloc.h"

#if defined(__GNUC__)
#define IMP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IMP_PRINTF(f, a)
#endif

/* How an ONNX value lies in its clnet node. Recurrent layers take and make
 * (batch, steps, features) in clnet and (steps, batch, features) in ONNX, so
 * the importer keeps the clnet node and notes ONNX's view of it. */
enum layout {
    L_PLAIN = 0, /* ONNX (batch, dims...) is the clnet node */
    L_TBF,       /* ONNX (steps, batch, F): clnet (batch, steps, F) */
    L_T1BF,      /* ONNX (steps, 1, batch, F), an RNN's Y: clnet (batch, steps, F) */
    L_1BF        /* ONNX (1, batch, F), an RNN's Y_h: clnet (batch, F) */
};

/* A computed value: an ONNX name and the clnet node that holds it. `last`:
 * ONNX holds a whole sequence of `steps` steps, the clnet node only its last
 * step (a recurrent layer whose other steps nothing reads). */
typedef struct value {
    const char *name;
    clnet_node node;
    int layout, last;
    int64_t steps;
} value;

/* The batch dim in a folded shape: any value the model is run with. */
#define BATCH INT64_MIN

/* A folded int64 constant (Shape, Gather, Unsqueeze, Concat on shapes): a
 * scalar (ndim 0) or a vector of up to CLNET_MAX_DIMS values; ndim ZEROS:
 * a float tensor of zeros instead (ConstantOfShape, Expand, Slice of one:
 * an RNN's initial state). */
typedef struct folded {
    const char *name;
    int ndim;
    size_t n;
    int64_t v[CLNET_MAX_DIMS];
} folded;
#define ZEROS (-1)

typedef struct imp {
    clnet_context *ctx;
    folded *ints;
    size_t nints;
    const clnet_onnx_model *om;
    const clnet_onnx_graph *g;
    clnet_model *m;
    value *vals;
    size_t nvals;
    char *err;
    size_t err_size;
} imp;

/* The constant (initializer or Constant output) named `name`, following
 * Identity and Dropout nodes back to one: PyTorch's exporter writes one
 * initializer for equal ones and Identity nodes for the others (the zero
 * biases of freshly initialized batch norms folded into convolutions).
 * NULL when `name` is not a constant. */
static const clnet_onnx_tensor *find_const(const imp *im, const char *name)
{
    for (int hops = 0; name && hops < 64; hops++) {
        const clnet_onnx_tensor *t = clnet_onnx_model_find_tensor(im->om, name);
        if (t)
            return t;
        const char *from = NULL;
        for (size_t j = 0; !from && j < im->g->n_nodes; j++) {
            const clnet_onnx_node *c = &im->g->nodes[j];
            if (c->n_inputs && c->n_outputs && !strcmp(c->outputs[0], name) &&
                (!strcmp(c->op_type, "Identity") || !strcmp(c->op_type, "Dropout")))
                from = c->inputs[0];
        }
        name = from;
    }
    return NULL;
}

static clnet_status fail(const imp *im, clnet_status st, const char *fmt, ...) IMP_PRINTF(3, 4);

static clnet_status fail(const imp *im, clnet_status st, const char *fmt, ...)
{
    if (im->err && im->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(im->err, im->err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- Attributes ---------------------------------------------------------- */

static const clnet_onnx_attr *attr(const clnet_onnx_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

static int64_t attr_int(const clnet_onnx_node *n, const char *name, int64_t def)
{
    const clnet_onnx_attr *a = attr(n, name);
    return a && a->type == CLNET_ONNX_ATTR_INT ? a->i : def;
}

static float attr_float(const clnet_onnx_node *n, const char *name, float def)
{
    const clnet_onnx_attr *a = attr(n, name);
    return a && a->type == CLNET_ONNX_ATTR_FLOAT ? a->f : def;
}

/* An INTS attribute of exactly `count` values into out (left as is when
 * absent); 0 when present with another count. */
static int attr_ints(const clnet_onnx_node *n, const char *name, size_t count, int64_t *out)
{
    const clnet_onnx_attr *a = attr(n, name);
    if (!a)
        return 1;
    if (a->type != CLNET_ONNX_ATTR_INTS || a->count != count)
        return 0;
    memcpy(out, a->ints, count * sizeof *out);
    return 1;
}

static const char *attr_str(const clnet_onnx_node *n, const char *name, const char *def)
{
    const clnet_onnx_attr *a = attr(n, name);
    return a && a->type == CLNET_ONNX_ATTR_STRING ? a->s : def;
}

/* ---- What the importer maps ------------------------------------------------ */

static const char *const mapped_ops[] = {
    "Conv",    "Relu",        "LeakyRelu",
    "Sigmoid", "Tanh",        "Softmax",
    "MaxPool", "AveragePool", "GlobalAveragePool",
    "Flatten", "Reshape",     "Gemm",
    "MatMul",  "Add",         "Sub",
    "Mul",     "Concat",      "BatchNormalization",
    "Dropout", "Identity",    "Constant",
    "Shape",   "Gather",      "Unsqueeze",
    "Clip",    "HardSwish",
};

/* Transposed convolutions and recurrent layers, with the ops PyTorch writes
 * around them. */
static const char *const mapped_ops_seq[] = {
    "ConvTranspose", "Slice", "ConstantOfShape", "Expand", "Squeeze",  "Transpose", "LSTM", "GRU",
    "RNN",           "Div",   "LogSoftmax",      "Resize", "Upsample",
};

/* Appends "; what" to the refusal list in buf unless it is there already. */
static void refuse(char *buf, size_t size, const char *what)
{
    if (strstr(buf, what))
        return;
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? "; " : "", what);
}

/* The ConvTranspose and RNN attribute values the importer refuses by name. */
static void refuse_rnn_attrs(const clnet_onnx_node *n, char *list, size_t size)
{
    char what[256];
    int rnn =
        !strcmp(n->op_type, "LSTM") || !strcmp(n->op_type, "GRU") || !strcmp(n->op_type, "RNN");
    if (!strcmp(n->op_type, "ConvTranspose")) {
        if (attr_int(n, "group", 1) != 1) {
            snprintf(what, sizeof what, "ConvTranspose.group=%lld",
                     (long long)attr_int(n, "group", 1));
            refuse(list, size, what);
        }
        if (attr(n, "output_shape"))
            refuse(list, size, "ConvTranspose.output_shape");
        if (strcmp(attr_str(n, "auto_pad", "NOTSET"), "NOTSET")) {
            snprintf(what, sizeof what, "ConvTranspose.auto_pad=%s", attr_str(n, "auto_pad", ""));
            refuse(list, size, what);
        }
    }
    if (rnn && strcmp(attr_str(n, "direction", "forward"), "forward")) {
        snprintf(what, sizeof what, "%s.direction=%s (one forward direction only)", n->op_type,
                 attr_str(n, "direction", ""));
        refuse(list, size, what);
    }
    const clnet_onnx_attr *act = attr(n, "activations");
    int tanh_only = act && act->type == CLNET_ONNX_ATTR_STRINGS && act->count == 1 &&
                    !strcmp(act->strings[0], "Tanh") && !strcmp(n->op_type, "RNN");
    if (rnn && ((act && !tanh_only) || attr(n, "clip"))) {
        snprintf(what, sizeof what, "%s.%s", n->op_type, attr(n, "clip") ? "clip" : "activations");
        refuse(list, size, what);
    }
    if (!strcmp(n->op_type, "GRU") && attr_int(n, "linear_before_reset", 0) != 1)
        refuse(list, size, "GRU.linear_before_reset=0 (clnet's GRU is PyTorch's, reset after)");
    if (!strcmp(n->op_type, "LSTM") && attr_int(n, "input_forget", 0))
        refuse(list, size, "LSTM.input_forget=1");
}

/* Checks every node; all refusals in one message. */
static clnet_status check_mapped(const imp *im)
{
    char list[2048] = "", what[256];
    for (size_t i = 0; i < im->g->n_nodes; i++) {
        const clnet_onnx_node *n = &im->g->nodes[i];
        int known = 0;
        for (size_t k = 0; k < sizeof mapped_ops / sizeof mapped_ops[0]; k++)
            known |= !strcmp(n->op_type, mapped_ops[k]) && !n->domain[0];
        for (size_t k = 0; k < sizeof mapped_ops_seq / sizeof mapped_ops_seq[0]; k++)
            known |= !strcmp(n->op_type, mapped_ops_seq[k]) && !n->domain[0];
        if (!known) {
            snprintf(what, sizeof what, "op %s%s%s", n->domain, n->domain[0] ? "." : "",
                     n->op_type);
            refuse(list, sizeof list, what);
            continue;
        }
        if ((!strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "AveragePool")) &&
            attr_int(n, "ceil_mode", 0)) {
            snprintf(what, sizeof what, "%s.ceil_mode=1", n->op_type);
            refuse(list, sizeof list, what);
        }
        if (!strcmp(n->op_type, "Gemm") && attr_int(n, "transA", 0))
            refuse(list, sizeof list, "Gemm.transA=1");
        refuse_rnn_attrs(n, list, sizeof list);
    }
    if (list[0])
        return fail(im, CLNET_ERR_UNSUPPORTED, "clnet_onnx_import: not supported: %s", list);
    return CLNET_OK;
}

/* ---- Values ---------------------------------------------------------------- */

static clnet_status define(imp *im, const char *name, clnet_node node)
{
    value *v = clnet__realloc(im->vals, (im->nvals + 1) * sizeof *v);
    if (!v)
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    im->vals = v;
    im->vals[im->nvals++] = (value){ name, node, L_PLAIN, 0, 0 };
    return CLNET_OK;
}

static value *find_value(const imp *im, const char *name)
{
    for (size_t i = im->nvals; i-- > 0;)
        if (!strcmp(im->vals[i].name, name))
            return &im->vals[i];
    return NULL;
}

static int lookup(const imp *im, const char *name, clnet_node *node)
{
    const value *v = find_value(im, name);
    if (v)
        *node = v->node;
    return v != NULL;
}

static const char *node_label(const clnet_onnx_node *n)
{
    return n->name[0] ? n->name : n->outputs[0];
}

/* Input i of n as a computed value. */
static clnet_status in_node(const imp *im, const clnet_onnx_node *n, size_t i, clnet_node *node)
{
    if (i >= n->n_inputs || !n->inputs[i][0])
        return fail(im, CLNET_ERR_FORMAT, "clnet_onnx_import: node '%s' (%s) lacks input %zu",
                    node_label(n), n->op_type, i);
    const value *v = find_value(im, n->inputs[i]);
    if (!v)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): input '%s' is a constant where the "
                    "importer needs a computed value",
                    node_label(n), n->op_type, n->inputs[i]);
    if (v->layout != L_PLAIN || v->last)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): input '%s' is a recurrent layer's "
                    "output in ONNX's (steps, batch, ...) layout; only Squeeze, Transpose "
                    "(1, 0, 2), another RNN and a Gather of the last step are imported on it",
                    node_label(n), n->op_type, n->inputs[i]);
    *node = v->node;
    return CLNET_OK;
}

/* Input i of n as a float32 constant of ndim dims (-1: any), or NULL (then
 * the message is set) when optional is 0. *t is NULL for an absent optional
 * input. */
static clnet_status in_const(const imp *im, const clnet_onnx_node *n, size_t i, int ndim,
                             int optional, const clnet_onnx_tensor **t)
{
    *t = NULL;
    if (i >= n->n_inputs || !n->inputs[i][0]) {
        if (optional)
            return CLNET_OK;
        return fail(im, CLNET_ERR_FORMAT, "clnet_onnx_import: node '%s' (%s) lacks input %zu",
                    node_label(n), n->op_type, i);
    }
    const clnet_onnx_tensor *c = find_const(im, n->inputs[i]);
    if (!c)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): input '%s' must be a constant "
                    "(an initializer)",
                    node_label(n), n->op_type, n->inputs[i]);
    if (c->dtype != CLNET_ONNX_FLOAT || (ndim >= 0 && c->ndim != ndim))
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (%s): '%s' must be a %d-D float tensor",
                    node_label(n), n->op_type, n->inputs[i], ndim);
    *t = c;
    return CLNET_OK;
}

/* The output of the layer just added becomes n's output 0. */
static clnet_status define_out(imp *im, const clnet_onnx_node *n)
{
    return define(im, n->outputs[0], clnet_model_node(im->m));
}

/* Copies the library's message into err. */
static clnet_status lib_fail(const imp *im, const clnet_onnx_node *n, clnet_status st)
{
    return fail(im, st, "clnet_onnx_import: node '%s' (%s): %s", node_label(n), n->op_type,
                clnet_context_errmsg(im->ctx));
}

static clnet_status set_param(imp *im, const clnet_onnx_node *n, const char *pname, int ndim,
                              const int64_t *shape, const float *src)
{
    int layer = clnet_model_node_layer(im->m, clnet_model_node(im->m));
    clnet_status st = clnet_model_set_param(im->m, layer, pname, ndim, shape, src);
    return st ? lib_fail(im, n, st) : CLNET_OK;
}

/* ---- Padding ------------------------------------------------------------------ */

/* Keras' "same" padding along one axis (clnet_padding SAME). */
static void same_pads(int64_t in, int64_t k, int64_t s, int64_t d, int64_t *before, int64_t *after)
{
    int64_t out = (in + s - 1) / s, total = (out - 1) * s + (k - 1) * d + 1 - in;
    if (total < 0)
        total = 0;
    *before = total / 2;
    *after = total - total / 2;
}

/* The clnet padding for ONNX's auto_pad and pads (top, left, bottom,
 * right; ONNX's [x1_begin, x2_begin, x1_end, x2_end]) on an h x w input:
 * VALID, Keras' SAME, or EXPLICIT with pads (SAME_LOWER's extra row at the
 * top written into pads). */
static clnet_padding padding_of(const clnet_onnx_node *n, int64_t h, int64_t w, const int64_t *k,
                                const int64_t *s, const int64_t *d, int64_t *pads)
{
    const char *ap = attr_str(n, "auto_pad", "NOTSET");
    int64_t sp[4];
    same_pads(h, k[0], s[0], d[0], &sp[0], &sp[2]);
    same_pads(w, k[1], s[1], d[1], &sp[1], &sp[3]);
    if (!strcmp(ap, "VALID"))
        return CLNET_PADDING_VALID;
    if (!strcmp(ap, "SAME_UPPER"))
        return CLNET_PADDING_SAME;
    if (!strcmp(ap, "SAME_LOWER")) {
        if (sp[0] == sp[2] && sp[1] == sp[3])
            return CLNET_PADDING_SAME;
        pads[0] = sp[2], pads[1] = sp[3], pads[2] = sp[0], pads[3] = sp[1];
        return CLNET_PADDING_EXPLICIT;
    }
    if (!pads[0] && !pads[1] && !pads[2] && !pads[3])
        return CLNET_PADDING_VALID;
    if (!memcmp(pads, sp, sizeof sp))
        return CLNET_PADDING_SAME;
    return CLNET_PADDING_EXPLICIT;
}

/* Kernel, strides, dilations, pads (top, left, bottom, right) of a Conv or
 * pool node and the padding they give. */
static clnet_status window(imp *im, const clnet_onnx_node *n, clnet_node x, const int64_t *kdef,
                           int64_t *k, int64_t *s, int64_t *d, clnet_padding *pad, int64_t *pads)
{
    int64_t shape[CLNET_MAX_DIMS];
    pads[0] = pads[1] = pads[2] = pads[3] = 0;
    if (clnet_model_node_shape(im->m, x, shape) != 3)
        return fail(im, CLNET_ERR_SHAPE,
                    "clnet_onnx_import: node '%s' (%s) needs NCHW images as input", node_label(n),
                    n->op_type);
    k[0] = kdef[0], k[1] = kdef[1];
    s[0] = s[1] = d[0] = d[1] = 1;
    if (!attr_ints(n, "kernel_shape", 2, k) || !attr_ints(n, "strides", 2, s) ||
        !attr_ints(n, "dilations", 2, d) || !attr_ints(n, "pads", 4, pads) || k[0] < 1 ||
        k[1] < 1 || s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || k[0] > INT32_MAX ||
        k[1] > INT32_MAX || s[0] > INT32_MAX || s[1] > INT32_MAX || d[0] > INT32_MAX ||
        d[1] > INT32_MAX)
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (%s): kernel_shape, strides, dilations or "
                    "pads are not 2-D positive values",
                    node_label(n), n->op_type);
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > INT32_MAX)
            return fail(im, CLNET_ERR_FORMAT,
                        "clnet_onnx_import: node '%s' (%s): pads %lld,%lld,%lld,%lld are not "
                        "non-negative int32 values",
                        node_label(n), n->op_type, (long long)pads[0], (long long)pads[1],
                        (long long)pads[2], (long long)pads[3]);
    *pad = padding_of(n, shape[1], shape[2], k, s, d, pads);
    return CLNET_OK;
}

/* ---- Ops ---------------------------------------------------------------------- */

static clnet_status op_conv(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    const clnet_onnx_tensor *w, *b;
    clnet_status st;
    if ((st = in_const(im, n, 1, 4, 0, &w)) || (st = in_const(im, n, 2, 1, 1, &b)))
        return st;
    int64_t k[2], s[2], d[2], pads[4], xs[CLNET_MAX_DIMS];
    clnet_padding pad;
    if ((st = window(im, n, x, w->shape + 2, k, s, d, &pad, pads)))
        return st;
    clnet_model_node_shape(im->m, x, xs);
    int64_t group = attr_int(n, "group", 1);
    if (group < 1 || group > INT32_MAX || w->shape[1] * group != xs[0] || w->shape[0] % group)
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (Conv): group %lld does not fit %lld input "
                    "channels and a weight of (%lld, %lld, ...)",
                    node_label(n), (long long)group, (long long)xs[0], (long long)w->shape[0],
                    (long long)w->shape[1]);
    if (k[0] != w->shape[2] || k[1] != w->shape[3] || (b && b->shape[0] != w->shape[0]))
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (Conv): kernel_shape or the bias disagrees "
                    "with the weight",
                    node_label(n));
    clnet_conv2d_layer_params p = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    p.filters = (int)w->shape[0];
    p.kernel_h = (int)k[0], p.kernel_w = (int)k[1];
    p.stride_h = (int)s[0], p.stride_w = (int)s[1];
    p.dilation_h = (int)d[0], p.dilation_w = (int)d[1];
    p.padding = pad;
    p.pad_top = (int)pads[0], p.pad_left = (int)pads[1];
    p.pad_bottom = (int)pads[2], p.pad_right = (int)pads[3];
    p.groups = (int)group;
    p.use_bias = b != NULL;
    if ((st = clnet_model_add_conv2d(im->m, &p)))
        return lib_fail(im, n, st);
    if ((st = set_param(im, n, "kernel", 4, w->shape, w->f32)) ||
        (b && (st = set_param(im, n, "bias", 1, b->shape, b->f32))))
        return st;
    return define_out(im, n);
}

static clnet_status op_pool(imp *im, const clnet_onnx_node *n, clnet_node x, int avg)
{
    int64_t k[2] = { 0, 0 }, s[2], d[2], pads[4];
    clnet_padding pad;
    clnet_status st = window(im, n, x, k, k, s, d, &pad, pads);
    if (st)
        return st;
    int include = avg && attr_int(n, "count_include_pad", 0);
    if (d[0] != 1 || d[1] != 1)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): dilated pooling is not imported",
                    node_label(n), n->op_type);
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    p.window_h = (int)k[0], p.window_w = (int)k[1];
    p.stride_h = (int)s[0], p.stride_w = (int)s[1];
    /* clnet's 'same' average ignores the padded cells; counting them takes
     * the pads written out. */
    p.padding = include && pad == CLNET_PADDING_SAME ? CLNET_PADDING_EXPLICIT : pad;
    if (p.padding == CLNET_PADDING_EXPLICIT && pad == CLNET_PADDING_SAME) {
        int64_t xs[CLNET_MAX_DIMS];
        clnet_model_node_shape(im->m, x, xs);
        same_pads(xs[1], k[0], s[0], 1, &pads[0], &pads[2]);
        same_pads(xs[2], k[1], s[1], 1, &pads[1], &pads[3]);
    }
    p.pad_top = (int)pads[0], p.pad_left = (int)pads[1];
    p.pad_bottom = (int)pads[2], p.pad_right = (int)pads[3];
    p.count_include_pad = include;
    st = avg ? clnet_model_add_avgpool2d(im->m, &p) : clnet_model_add_maxpool2d(im->m, &p);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* Gemm (A x B^T or A x B, alpha, beta, C) and MatMul with a constant B:
 * a Dense layer whose kernel is alpha * B in (units, features) and bias
 * beta * C. */
static clnet_status op_dense(imp *im, const clnet_onnx_node *n, clnet_node x, int gemm)
{
    const clnet_onnx_tensor *b, *c = NULL;
    clnet_status st;
    if ((st = in_const(im, n, 1, 2, 0, &b)) || (gemm && (st = in_const(im, n, 2, -1, 1, &c))))
        return st;
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, x, shape);
    int trans = gemm && attr_int(n, "transB", 0);
    float alpha = gemm ? attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? attr_float(n, "beta", 1.0f) : 1.0f;
    int64_t feat = trans ? b->shape[1] : b->shape[0], units = trans ? b->shape[0] : b->shape[1];
    if (nd != 1 || shape[0] != feat)
        return fail(im, CLNET_ERR_SHAPE,
                    "clnet_onnx_import: node '%s' (%s): input has %d dims after the batch, "
                    "the weight wants (batch, %lld)",
                    node_label(n), n->op_type, nd, (long long)feat);
    if (c && c->numel != 1 && c->numel != (size_t)units)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Gemm): C must hold 1 or %lld values",
                    node_label(n), (long long)units);
    if (units < 1 || units > INT32_MAX)
        return fail(im, CLNET_ERR_FORMAT, "clnet_onnx_import: node '%s' (%s): bad weight",
                    node_label(n), n->op_type);
    float *kernel = clnet__malloc((size_t)(units * feat) * sizeof(float) + 1);
    float *bias = clnet__malloc((size_t)units * sizeof(float));
    if (!kernel || !bias) {
        clnet__free(kernel);
        clnet__free(bias);
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    }
    for (int64_t u = 0; u < units; u++) {
        for (int64_t f = 0; f < feat; f++)
            kernel[u * feat + f] = alpha * b->f32[trans ? u * feat + f : f * units + u];
        if (c)
            bias[u] = beta * c->f32[c->numel == 1 ? 0 : u];
    }
    clnet_dense_params p = CLNET_DENSE_PARAMS_DEFAULT;
    p.units = (int)units;
    p.use_bias = c != NULL;
    const int64_t kshape[2] = { units, feat };
    if ((st = clnet_model_add_dense(im->m, &p)))
        st = lib_fail(im, n, st);
    else if (!(st = set_param(im, n, "kernel", 2, kshape, kernel)) && c)
        st = set_param(im, n, "bias", 1, &units, bias);
    clnet__free(kernel);
    clnet__free(bias);
    return st ? st : define_out(im, n);
}

static clnet_status op_batchnorm(imp *im, const clnet_onnx_node *n)
{
    static const char *const names[4] = { "gamma", "beta", "running_mean", "running_var" };
    const clnet_onnx_tensor *t[4];
    clnet_status st;
    for (int i = 0; i < 4; i++)
        if ((st = in_const(im, n, (size_t)i + 1, 1, 0, &t[i])))
            return st;
    float eps = attr_float(n, "epsilon", 1e-5f), mom = attr_float(n, "momentum", 0.9f);
    if ((st = clnet_model_add_batchnorm(
             im->m, &(clnet_batchnorm_params){ .eps = eps, .momentum = 1.0f - mom })))
        return lib_fail(im, n, st);
    for (int i = 0; i < 4; i++)
        if ((st = set_param(im, n, names[i], 1, t[i]->shape, t[i]->f32)))
            return st;
    return define_out(im, n);
}

/* ---- Shape arithmetic, folded at import -------------------------------------- */

/* The int64 constant `name`: folded, or an INT64 initializer of at most
 * CLNET_MAX_DIMS values in 0 or 1 dims. 0 if there is none. */
static int get_ints(const imp *im, const char *name, folded *out)
{
    for (size_t i = im->nints; i-- > 0;)
        if (!strcmp(im->ints[i].name, name)) {
            *out = im->ints[i];
            return out->ndim != ZEROS;
        }
    const clnet_onnx_tensor *t = find_const(im, name);
    if (!t || t->dtype != CLNET_ONNX_INT64 || t->ndim > 1 || t->numel > CLNET_MAX_DIMS)
        return 0;
    out->name = name;
    out->ndim = t->ndim;
    out->n = t->numel;
    memcpy(out->v, t->i64, t->numel * sizeof *t->i64);
    return 1;
}

static clnet_status fold(imp *im, const clnet_onnx_node *n, const folded *f)
{
    folded *v = clnet__realloc(im->ints, (im->nints + 1) * sizeof *v);
    if (!v)
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    im->ints = v;
    im->ints[im->nints] = *f;
    im->ints[im->nints++].name = n->outputs[0];
    return CLNET_OK;
}

static clnet_status not_foldable(const imp *im, const clnet_onnx_node *n)
{
    return fail(im, CLNET_ERR_UNSUPPORTED,
                "clnet_onnx_import: node '%s' (%s): only shape arithmetic on constants "
                "(Shape, Gather, Unsqueeze, Concat of int64 vectors) is imported",
                node_label(n), n->op_type);
}

/* Shape(x): (batch, dims...) of a computed value, [start, end). */
static clnet_status op_shape(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, x, shape) + 1;
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", nd);
    start = start < 0 ? start + nd : start;
    end = end < 0 ? end + nd : end > nd ? nd : end;
    if (nd > CLNET_MAX_DIMS || start < 0 || start > end)
        return not_foldable(im, n);
    folded f = { NULL, 1, 0, { 0 } };
    for (int64_t i = start; i < end; i++)
        f.v[f.n++] = i == 0 ? BATCH : shape[i - 1];
    return fold(im, n, &f);
}

/* Gather(data, indices) on axis 0 of a folded vector. */
static clnet_status op_gather(imp *im, const clnet_onnx_node *n)
{
    folded d, idx, f = { NULL, 0, 0, { 0 } };
    if (n->n_inputs != 2 || attr_int(n, "axis", 0) != 0 || !get_ints(im, n->inputs[0], &d) ||
        !get_ints(im, n->inputs[1], &idx) || d.ndim != 1)
        return not_foldable(im, n);
    f.ndim = idx.ndim;
    for (size_t i = 0; i < idx.n; i++) {
        int64_t k = idx.v[i] < 0 ? idx.v[i] + (int64_t)d.n : idx.v[i];
        if (k < 0 || k >= (int64_t)d.n)
            return fail(im, CLNET_ERR_FORMAT,
                        "clnet_onnx_import: node '%s' (Gather): index %lld out of range",
                        node_label(n), (long long)idx.v[i]);
        f.v[f.n++] = d.v[k];
    }
    return fold(im, n, &f);
}

/* Unsqueeze of a folded scalar to a 1-vector (axes [0]). */
static clnet_status op_unsqueeze(imp *im, const clnet_onnx_node *n)
{
    folded d, axes = { NULL, 1, 1, { 0 } };
    const clnet_onnx_attr *a = attr(n, "axes");
    if (a && (a->type != CLNET_ONNX_ATTR_INTS || a->count != 1))
        return not_foldable(im, n);
    if (a)
        axes.v[0] = a->ints[0];
    else if (n->n_inputs < 2 || !get_ints(im, n->inputs[1], &axes) || axes.n != 1)
        return not_foldable(im, n);
    if (!get_ints(im, n->inputs[0], &d) || d.ndim != 0 || axes.v[0] != 0)
        return not_foldable(im, n);
    d.ndim = 1;
    return fold(im, n, &d);
}

/* Concat of folded vectors (axis 0): 0 when done (*st says how), 1 when
 * n's inputs are not all int64 constants (a Concat of computed values). */
static int concat_folds(imp *im, const clnet_onnx_node *n, clnet_status *st)
{
    folded f = { NULL, 1, 0, { 0 } }, part;
    for (size_t i = 0; i < n->n_inputs; i++) {
        if (!get_ints(im, n->inputs[i], &part))
            return 1;
        if (part.ndim != 1 || f.n + part.n > CLNET_MAX_DIMS) {
            *st = not_foldable(im, n);
            return 0;
        }
        memcpy(f.v + f.n, part.v, part.n * sizeof *part.v);
        f.n += part.n;
    }
    *st = fold(im, n, &f);
    return 0;
}

static clnet_status op_reshape(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    folded t;
    int have = n->n_inputs > 1 && get_ints(im, n->inputs[1], &t);
    int64_t in[CLNET_MAX_DIMS], shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, x, in);
    if (!have || t.ndim != 1 || t.n < 2 || (t.v[0] != 0 && t.v[0] != -1 && t.v[0] != BATCH))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Reshape): the shape must be a constant "
                    "(batch as 0 or -1, then up to 7 dims)",
                    node_label(n));
    for (size_t i = 1; i < t.n; i++) {
        shape[i - 1] = t.v[i];
        if (t.v[i] == 0 && !attr_int(n, "allowzero", 0) && (int)i - 1 < nd)
            shape[i - 1] = in[i - 1];
        if (t.v[i] == BATCH)
            return fail(im, CLNET_ERR_UNSUPPORTED,
                        "clnet_onnx_import: node '%s' (Reshape): the batch moves to dim %zu",
                        node_label(n), i);
    }
    clnet_status st = clnet_model_add_reshape(im->m, (int)t.n - 1, shape);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

static clnet_status op_merge(imp *im, const clnet_onnx_node *n, clnet_merge_op op)
{
    clnet_node in[2];
    clnet_status st;
    if ((st = in_node(im, n, 0, &in[0])) || (st = in_node(im, n, 1, &in[1])))
        return st;
    if ((st = clnet_model_add_merge(im->m, op, 2, in)))
        return lib_fail(im, n, st);
    return define_out(im, n);
}

static clnet_status op_concat(imp *im, const clnet_onnx_node *n)
{
    clnet_node in[CLNET_MERGE_MAX_INPUTS];
    clnet_status st;
    if (n->n_inputs < 1 || n->n_inputs > CLNET_MERGE_MAX_INPUTS)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Concat): 1 to %d inputs", node_label(n),
                    CLNET_MERGE_MAX_INPUTS);
    for (size_t i = 0; i < n->n_inputs; i++)
        if ((st = in_node(im, n, i, &in[i])))
            return st;
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, in[0], shape) + 1; /* with the batch */
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < 0)
        axis += nd;
    if (axis < 1 || axis >= nd)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Concat): axis %lld (only along a dim after "
                    "the batch)",
                    node_label(n), (long long)attr_int(n, "axis", 1));
    if ((st = clnet_model_add_concat(im->m, (int)axis - 1, (int)n->n_inputs, in)))
        return lib_fail(im, n, st);
    return define_out(im, n);
}

static clnet_status op_softmax(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, x, shape) + 1;
    int64_t axis = attr_int(n, "axis", im->g->opset >= 13 ? -1 : 1);
    if (axis < 0)
        axis += nd;
    if (nd != 2 || axis != 1)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Softmax): only over the features of "
                    "(batch, features)",
                    node_label(n));
    clnet_status st = clnet_model_add_activation(im->m, CLNET_ACT_SOFTMAX, 0);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* Clip's bound: input i (opset 11+, a one-element float constant; absent
 * or "" leaves *v as is) or attribute `name` (opset < 11). */
static clnet_status clip_bound(imp *im, const clnet_onnx_node *n, size_t i, const char *name,
                               float *v)
{
    *v = attr_float(n, name, *v);
    if (i >= n->n_inputs || !n->inputs[i][0])
        return CLNET_OK;
    const clnet_onnx_tensor *t = find_const(im, n->inputs[i]);
    if (!t || t->dtype != CLNET_ONNX_FLOAT || t->numel != 1)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Clip): %s '%s' must be a one-element float "
                    "constant",
                    node_label(n), name, n->inputs[i]);
    *v = t->f32[0];
    return CLNET_OK;
}

/* Clip(0, 6) is relu6 (what PyTorch writes for ReLU6), Clip(0, +inf) relu;
 * other bounds are refused, naming them. */
static clnet_status op_clip(imp *im, const clnet_onnx_node *n)
{
    float lo = -INFINITY, hi = INFINITY;
    clnet_status st;
    if ((st = clip_bound(im, n, 1, "min", &lo)) || (st = clip_bound(im, n, 2, "max", &hi)))
        return st;
    clnet_activation act;
    if (lo == 0.0f && hi == 6.0f)
        act = CLNET_ACT_RELU6;
    else if (lo == 0.0f && hi == INFINITY)
        act = CLNET_ACT_RELU;
    else
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Clip): bounds [%g, %g] (only [0, 6], relu6, "
                    "and [0, inf], relu)",
                    node_label(n), (double)lo, (double)hi);
    st = clnet_model_add_activation(im->m, act, 0.0f);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* ---- Transposed convolution ----------------------------------------------------- */

/* The one node that reads `name` after node `from`, or NULL when none, several
 * or a graph output do. */
static const clnet_onnx_node *sole_consumer(const imp *im, size_t from, const char *name)
{
    const clnet_onnx_node *found = NULL;
    for (size_t i = 0; i < im->g->n_outputs; i++)
        if (!strcmp(im->g->outputs[i].name, name))
            return NULL;
    for (size_t j = from + 1; j < im->g->n_nodes; j++)
        for (size_t k = 0; k < im->g->nodes[j].n_inputs; k++)
            if (!strcmp(im->g->nodes[j].inputs[k], name)) {
                if (found)
                    return NULL;
                found = &im->g->nodes[j];
            }
    return found;
}

/* A Slice node s of a 4-D value of `size` rows and columns (size[0], size[1])
 * that crops only rows and columns with step 1: adds what it cuts to the
 * crops (cb before, ce after) and updates size. 0 when it does more. */
static int fold_crop(const imp *im, const clnet_onnx_node *s, int64_t size[2], int64_t cb[2],
                     int64_t ce[2])
{
    folded st, en, ax = { NULL, 1, 4, { 0, 1, 2, 3 } }, sp;
    if (s->n_inputs < 3 || !get_ints(im, s->inputs[1], &st) || !get_ints(im, s->inputs[2], &en) ||
        (s->n_inputs > 3 && s->inputs[3][0] && !get_ints(im, s->inputs[3], &ax)) || st.n != en.n ||
        ax.n != st.n)
        return 0;
    if (s->n_inputs > 4 && s->inputs[4][0]) {
        if (!get_ints(im, s->inputs[4], &sp) || sp.n != st.n)
            return 0;
        for (size_t i = 0; i < sp.n; i++)
            if (sp.v[i] != 1)
                return 0;
    }
    for (size_t i = 0; i < st.n; i++) {
        int64_t a = ax.v[i] < 0 ? ax.v[i] + 4 : ax.v[i];
        if (a < 0 || a > 3)
            return 0;
        if (a < 2) { /* the batch and the channels stay whole */
            if (st.v[i] != 0 || en.v[i] < INT32_MAX)
                return 0;
            continue;
        }
        int64_t n = size[a - 2], b = st.v[i], e = en.v[i];
        b = b < 0 ? (b < -n ? 0 : b + n) : (b > n ? n : b);
        e = e < 0 ? (e < -n ? 0 : e + n) : (e > n ? n : e);
        if (e <= b)
            return 0;
        cb[a - 2] += b;
        ce[a - 2] += n - e;
        size[a - 2] = e - b;
    }
    return 1;
}

/* ConvTranspose: clnet's Conv2DTranspose, which crops nothing (VALID) or
 * Keras' 'same' crops. ONNX's pads crop the full output (rows (in - 1) *
 * stride + extent) before and after, output_padding adds rows after, and
 * PyTorch writes an uneven crop as pads plus a Slice: a Slice chain that is
 * the output's only reader is folded in (its output becomes the layer's). */
static clnet_status op_conv_transpose(imp *im, size_t idx, const clnet_onnx_node *n, clnet_node x)
{
    const clnet_onnx_tensor *w, *b;
    clnet_status st;
    if ((st = in_const(im, n, 1, 4, 0, &w)) || (st = in_const(im, n, 2, 1, 1, &b)))
        return st;
    int64_t shape[CLNET_MAX_DIMS], k[2] = { w->shape[2], w->shape[3] }, s[2] = { 1, 1 },
                                   d[2] = { 1, 1 }, pads[4] = { 0, 0, 0, 0 }, op[2] = { 0, 0 };
    if (clnet_model_node_shape(im->m, x, shape) != 3)
        return fail(im, CLNET_ERR_SHAPE,
                    "clnet_onnx_import: node '%s' (ConvTranspose) needs NCHW images as input",
                    node_label(n));
    if (!attr_ints(n, "kernel_shape", 2, k) || !attr_ints(n, "strides", 2, s) ||
        !attr_ints(n, "dilations", 2, d) || !attr_ints(n, "pads", 4, pads) ||
        !attr_ints(n, "output_padding", 2, op) || k[0] != w->shape[2] || k[1] != w->shape[3] ||
        w->shape[0] != shape[0] || (b && b->shape[0] != w->shape[1]) || s[0] < 1 || s[1] < 1 ||
        d[0] < 1 || d[1] < 1 || s[0] > 1024 || s[1] > 1024 || d[0] > 1024 || d[1] > 1024 ||
        pads[0] < 0 || pads[1] < 0 || pads[2] < 0 || pads[3] < 0 || op[0] < 0 || op[1] < 0)
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (ConvTranspose): kernel_shape, strides, "
                    "dilations, pads, output_padding, the bias or the input's channels disagree "
                    "with the weight (in, out, kh, kw)",
                    node_label(n));
    int64_t cb[2] = { pads[0], pads[1] }, ce[2] = { pads[2] - op[0], pads[3] - op[1] }, size[2];
    int64_t ext[2] = { d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1 };
    for (int a = 0; a < 2; a++)
        size[a] = (shape[a + 1] - 1) * s[a] + ext[a] - cb[a] - ce[a];
    const char *out[8] = { n->outputs[0] };
    int nout = 1;
    for (const clnet_onnx_node *c;
         nout < 8 && (c = sole_consumer(im, idx, out[nout - 1])) && !strcmp(c->op_type, "Slice") &&
         !strcmp(c->inputs[0], out[nout - 1]) && fold_crop(im, c, size, cb, ce);)
        out[nout++] = c->outputs[0];
    int same = 1, valid = 1;
    for (int a = 0; a < 2; a++) {
        int64_t t = ext[a] - s[a];
        same &= cb[a] == (t > 0 ? t / 2 : 0) && ce[a] == (t > 0 ? t - t / 2 : t);
        valid &= cb[a] == 0 && ce[a] == 0;
    }
    if (!same && !valid)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (ConvTranspose): crops %lld,%lld,%lld,%lld "
                    "(top, left, bottom, right: pads less output_padding, and a Slice after it) "
                    "are neither none nor Keras' 'same'",
                    node_label(n), (long long)cb[0], (long long)cb[1], (long long)ce[0],
                    (long long)ce[1]);
    clnet_conv2d_layer_params p = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    p.filters = (int)w->shape[1];
    p.kernel_h = (int)k[0], p.kernel_w = (int)k[1];
    p.stride_h = (int)s[0], p.stride_w = (int)s[1];
    p.dilation_h = (int)d[0], p.dilation_w = (int)d[1];
    p.padding = valid ? CLNET_PADDING_VALID : CLNET_PADDING_SAME;
    p.use_bias = b != NULL;
    if ((st = clnet_model_add_conv2d_transpose(im->m, &p)))
        return lib_fail(im, n, st);
    if ((st = set_param(im, n, "kernel", 4, w->shape, w->f32)) ||
        (b && (st = set_param(im, n, "bias", 1, b->shape, b->f32))))
        return st;
    /* The folded Slices' outputs (each read only by the next Slice, which
     * import_node then skips) and the last one, the layer's output. */
    for (int i = nout > 1; i < nout; i++)
        if ((st = define(im, out[i], clnet_model_node(im->m))))
            return st;
    return CLNET_OK;
}

/* ---- Recurrent layers and their layouts ------------------------------------------- */

static clnet_status fold_zeros(imp *im, const clnet_onnx_node *n)
{
    folded f = { NULL, ZEROS, 0, { 0 } };
    return fold(im, n, &f);
}

/* Whether `name` is a tensor of zeros: folded so, or a float constant. */
static int is_zeros(const imp *im, const char *name)
{
    for (size_t i = im->nints; i-- > 0;)
        if (!strcmp(im->ints[i].name, name))
            return im->ints[i].ndim == ZEROS;
    const clnet_onnx_tensor *t = find_const(im, name);
    if (!t || t->dtype != CLNET_ONNX_FLOAT)
        return 0;
    for (size_t i = 0; i < t->numel; i++)
        if (t->f32[i] != 0.0f)
            return 0;
    return 1;
}

/* ConstantOfShape (value 0), Expand and Slice of zeros: an initial state. */
static clnet_status op_zeros(imp *im, const clnet_onnx_node *n)
{
    const clnet_onnx_attr *a = attr(n, "value");
    int zero = !strcmp(n->op_type, "ConstantOfShape")
                   ? !a || (a->type == CLNET_ONNX_ATTR_TENSOR && a->t->dtype == CLNET_ONNX_FLOAT &&
                            a->t->numel == 1 && a->t->f32[0] == 0.0f)
                   : n->n_inputs >= 1 && is_zeros(im, n->inputs[0]);
    if (!zero)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): imported only on zeros (an RNN's "
                    "initial state) or, for Slice, as the crop after a ConvTranspose",
                    node_label(n), n->op_type);
    return fold_zeros(im, n);
}

/* How the nodes after `from` read `name`: 0 nothing, 1 only the last step
 * (through Squeeze, Transpose, Identity, then a Gather; op_step checks the
 * Gather), 2 anything else. */
static int step_uses(const imp *im, size_t from, const char *name, int depth)
{
    int use = 0;
    for (size_t i = 0; i < im->g->n_outputs; i++)
        if (!strcmp(im->g->outputs[i].name, name))
            return 2;
    for (size_t j = from + 1; j < im->g->n_nodes; j++) {
        const clnet_onnx_node *c = &im->g->nodes[j];
        for (size_t k = 0; k < c->n_inputs; k++) {
            if (strcmp(c->inputs[k], name))
                continue;
            int u = 2;
            if (k == 0 && depth < 8 &&
                (!strcmp(c->op_type, "Squeeze") || !strcmp(c->op_type, "Transpose") ||
                 !strcmp(c->op_type, "Identity")))
                u = step_uses(im, j, c->outputs[0], depth + 1);
            else if (k == 0 && !strcmp(c->op_type, "Gather"))
                u = 1;
            use = u > use ? u : use;
        }
    }
    return use;
}

/* Defines name as from's node in `layout`. from may point into im->vals,
 * which define reallocates: copied first. */
static clnet_status define_seq(imp *im, const char *name, const value *from, int layout)
{
    value v = *from;
    clnet_status st = define(im, name, v.node);
    if (!st) {
        im->vals[im->nvals - 1].layout = layout;
        im->vals[im->nvals - 1].last = v.last;
        im->vals[im->nvals - 1].steps = v.steps;
    }
    return st;
}

static clnet_status not_layout(const imp *im, const clnet_onnx_node *n)
{
    return fail(im, CLNET_ERR_UNSUPPORTED,
                "clnet_onnx_import: node '%s' (%s): only the layout changes are imported "
                "(a Transpose that keeps the batch first and moves only dims of extent 1, "
                "Transpose (1, 0, 2) of a sequence, Squeeze of an RNN's direction axis)",
                node_label(n), n->op_type);
}

/* A Transpose of a plain value that keeps the batch first and moves only
 * dims of extent 1 (the data stays in place): a Reshape, or nothing for the
 * identity. */
static clnet_status op_transpose_view(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    int64_t shape[CLNET_MAX_DIMS], out[CLNET_MAX_DIMS], perm[CLNET_MAX_DIMS + 1];
    int nd = clnet_model_node_shape(im->m, x, shape), identity = 1;
    const clnet_onnx_attr *a = attr(n, "perm");
    if (!a || a->type != CLNET_ONNX_ATTR_INTS || a->count != (size_t)nd + 1 || a->ints[0] != 0)
        return not_layout(im, n);
    memcpy(perm, a->ints, ((size_t)nd + 1) * sizeof *perm);
    int64_t prev = 0; /* the last non-unit dim taken, counted with the batch */
    for (int i = 1; i <= nd; i++) {
        if (perm[i] < 1 || perm[i] > nd)
            return not_layout(im, n);
        for (int j = 1; j < i; j++)
            if (perm[j] == perm[i])
                return not_layout(im, n);
        out[i - 1] = shape[perm[i] - 1];
        identity &= perm[i] == i;
        if (out[i - 1] != 1) {
            if (perm[i] < prev)
                return not_layout(im, n);
            prev = perm[i];
        }
    }
    if (identity)
        return define(im, n->outputs[0], x);
    clnet_status st = clnet_model_add_reshape(im->m, nd, out);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* Transpose (1, 0, 2) between (batch, steps, F) and (steps, batch, F), and
 * Squeeze of an RNN output's direction axis: new names for the same node. */
static clnet_status op_relayout(imp *im, const clnet_onnx_node *n)
{
    const value *v = n->n_inputs ? find_value(im, n->inputs[0]) : NULL;
    int64_t shape[CLNET_MAX_DIMS];
    if (!v)
        return not_layout(im, n);
    int nd = clnet_model_node_shape(im->m, v->node, shape);
    const clnet_onnx_attr *pa = attr(n, "perm");
    if (!strcmp(n->op_type, "Transpose") && v->layout == L_PLAIN && !v->last && pa &&
        pa->type == CLNET_ONNX_ATTR_INTS && pa->count >= 1 && pa->ints[0] == 0)
        return op_transpose_view(im, n, v->node);
    if (!strcmp(n->op_type, "Transpose")) {
        int64_t perm[3] = { 0, 0, 0 };
        const clnet_onnx_attr *a = attr(n, "perm");
        if (!a || !attr_ints(n, "perm", 3, perm) || perm[0] != 1 || perm[1] != 0 || perm[2] != 2 ||
            !(v->layout == L_TBF || (v->layout == L_PLAIN && (nd == 2 || v->last))))
            return not_layout(im, n);
        return define_seq(im, n->outputs[0], v, v->layout == L_TBF ? L_PLAIN : L_TBF);
    }
    folded axes = { NULL, 1, 0, { 0 } };
    const clnet_onnx_attr *a = attr(n, "axes");
    if (a && a->type == CLNET_ONNX_ATTR_INTS && a->count == 1)
        axes.n = 1, axes.v[0] = a->ints[0];
    else if (!a && n->n_inputs > 1)
        get_ints(im, n->inputs[1], &axes);
    if (axes.n == 1 && v->layout == L_T1BF && (axes.v[0] == 1 || axes.v[0] == -3))
        return define_seq(im, n->outputs[0], v, L_TBF);
    if (axes.n == 1 && v->layout == L_1BF && (axes.v[0] == 0 || axes.v[0] == -3))
        return define_seq(im, n->outputs[0], v, L_PLAIN);
    return not_layout(im, n);
}

/* Gather of one step of a sequence: the last one, of a layer that keeps only
 * its last step. */
static clnet_status op_step(imp *im, const clnet_onnx_node *n, const value *v)
{
    folded idx;
    int axis = v->layout == L_PLAIN ? 1 : 0;
    int64_t a = attr_int(n, "axis", 0);
    if (n->n_inputs == 2 && get_ints(im, n->inputs[1], &idx) && idx.ndim == 0 && a == axis &&
        v->last && (v->layout == L_PLAIN || v->layout == L_TBF) &&
        (idx.v[0] == -1 || idx.v[0] == v->steps - 1))
        return define(im, n->outputs[0], v->node);
    if (n->n_inputs == 2 && get_ints(im, n->inputs[1], &idx) && idx.ndim == 0 && a == 0 &&
        v->layout == L_1BF && (idx.v[0] == 0 || idx.v[0] == -1))
        return define(im, n->outputs[0], v->node);
    return fail(im, CLNET_ERR_UNSUPPORTED,
                "clnet_onnx_import: node '%s' (Gather): on a sequence, only the last step "
                "(index -1 on the steps axis) of a recurrent layer whose other steps nothing "
                "reads is imported",
                node_label(n));
}

/* The RNN kinds: ONNX's gate count and, for each of clnet's (PyTorch's)
 * gate blocks, the ONNX block it comes from (LSTM: clnet i f g o from ONNX
 * i o f c; GRU: clnet r z n from ONNX z r h). */
static const struct rnn_kind {
    const char *op;
    int gates;
    int from[4];
} rnn_kinds[3] = {
    { "RNN", 1, { 0 } },
    { "LSTM", 4, { 0, 2, 3, 1 } },
    { "GRU", 3, { 1, 0, 2 } },
};

/* Copies the gate blocks of a (gates * units, cols) ONNX matrix into clnet's
 * order. */
static void regate(const struct rnn_kind *rk, const float *src, int64_t units, int64_t cols,
                   float *dst)
{
    size_t block = (size_t)(units * cols);
    for (int g = 0; g < rk->gates; g++)
        memcpy(dst + (size_t)g * block, src + (size_t)rk->from[g] * block, block * sizeof *dst);
}

static clnet_status rnn_fail(const imp *im, const clnet_onnx_node *n, const char *why)
{
    return fail(im, CLNET_ERR_UNSUPPORTED, "clnet_onnx_import: node '%s' (%s): %s", node_label(n),
                n->op_type, why);
}

/* LSTM, GRU, RNN (forward, one direction): clnet's layer of that cell on
 * (batch, steps, features), weights regated; Y (steps, 1, batch, units) is
 * the layer's sequence, or its last step when only that is read; Y_h the
 * last step when Y is not read. */
static clnet_status op_rnn(imp *im, size_t idx, const clnet_onnx_node *n)
{
    const struct rnn_kind *rk = &rnn_kinds[n->op_type[0] == 'L' ? 1 : n->op_type[0] == 'G' ? 2 : 0];
    const value *x = n->n_inputs ? find_value(im, n->inputs[0]) : NULL;
    int64_t shape[CLNET_MAX_DIMS];
    if (attr_int(n, "layout", 0) != 0)
        return rnn_fail(im, n, "layout 1 (batch first) is not imported");
    if (!x || x->last || x->layout != L_TBF || clnet_model_node_shape(im->m, x->node, shape) != 2)
        return rnn_fail(im, n, "X must be a computed (steps, batch, features) sequence");
    const clnet_onnx_tensor *w, *r, *b;
    clnet_status st;
    if ((st = in_const(im, n, 1, 3, 0, &w)) || (st = in_const(im, n, 2, 3, 0, &r)) ||
        (st = in_const(im, n, 3, 2, 1, &b)))
        return st;
    int64_t gh = w->shape[1], units = gh / rk->gates, feat = shape[1];
    if (w->shape[0] != 1 || gh % rk->gates || units < 1 || w->shape[2] != feat ||
        r->shape[0] != 1 || r->shape[1] != gh || r->shape[2] != units ||
        attr_int(n, "hidden_size", units) != units ||
        (b && (b->shape[0] != 1 || b->shape[1] != 2 * gh)))
        return fail(im, CLNET_ERR_FORMAT,
                    "clnet_onnx_import: node '%s' (%s): W, R, B or hidden_size disagree (W (1, "
                    "%d * units, %lld), R (1, %d * units, units), B (1, %d * units))",
                    node_label(n), n->op_type, rk->gates, (long long)feat, rk->gates,
                    2 * rk->gates);
    if (n->n_inputs > 4 && n->inputs[4][0])
        return rnn_fail(im, n, "sequence_lens is not imported (every sequence runs all steps)");
    for (size_t i = 5; i < n->n_inputs && i < 7; i++)
        if (n->inputs[i][0] && !is_zeros(im, n->inputs[i]))
            return rnn_fail(im, n, "initial states other than zeros are not imported");
    if (n->n_inputs > 7 && n->inputs[7][0])
        return rnn_fail(im, n, "peephole weights (P) are not imported");
    int uy = step_uses(im, idx, n->outputs[0], 0);
    int uh = n->n_outputs > 1 && n->outputs[1][0] ? step_uses(im, idx, n->outputs[1], 0) : 0;
    if (n->n_outputs > 2 && n->outputs[2][0] && step_uses(im, idx, n->outputs[2], 0))
        return rnn_fail(im, n, "Y_c (the final cell state) is read: not imported");
    if (uy && uh)
        return rnn_fail(im, n, "Y and Y_h are both read: not imported");
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = (int)units;
    p.return_sequences = uy == 2;
    st = rk->gates == 4   ? clnet_model_add_lstm(im->m, &p)
         : rk->gates == 3 ? clnet_model_add_gru(im->m, &p)
                          : clnet_model_add_simple_rnn(im->m, &p);
    if (st)
        return lib_fail(im, n, st);
    size_t nw = (size_t)(gh * feat), nr = (size_t)(gh * units);
    float *buf = clnet__malloc((nw + nr + 2 * (size_t)gh) * sizeof *buf);
    if (!buf)
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    float *wi = buf, *wh = wi + nw, *bi = wh + nr, *bh = bi + gh;
    regate(rk, w->f32, units, feat, wi);
    regate(rk, r->f32, units, units, wh);
    if (b) {
        regate(rk, b->f32, units, 1, bi);
        regate(rk, b->f32 + gh, units, 1, bh);
    } else {
        memset(bi, 0, 2 * (size_t)gh * sizeof *bi);
    }
    const int64_t ws[2] = { gh, feat }, rs[2] = { gh, units };
    if (!(st = set_param(im, n, "weight_ih", 2, ws, wi)) &&
        !(st = set_param(im, n, "weight_hh", 2, rs, wh)) &&
        !(st = set_param(im, n, "bias_ih", 1, &gh, bi)))
        st = set_param(im, n, "bias_hh", 1, &gh, bh);
    clnet__free(buf);
    if (st)
        return st;
    value y = { NULL, clnet_model_node(im->m), 0, uy == 1, shape[0] };
    if (uh)
        return define_seq(im, n->outputs[1], &y, L_1BF);
    return define_seq(im, n->outputs[0], &y, L_T1BF);
}

/* ---- Constants in arithmetic, LogSoftmax, Resize -------------------------------- */

/* A float constant as an OpenCL C literal that reads back to the same float
 * (hex, so nothing rounds). */
static void literal(char *buf, size_t size, float c)
{
    snprintf(buf, size, "(%af)", (double)c);
}

/* An elementwise expression layer (clnet_model_add_expression). */
static clnet_status add_expr(imp *im, const clnet_onnx_node *n, const char *name, const char *fwd,
                             const char *bwd)
{
    clnet_status st = clnet_model_add_expression(im->m, name, fwd, bwd);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* y = scale * x + shift per channel (C of NCHW) or per feature ((batch, F)):
 * a frozen 1x1 Conv2D or Dense with the scales on its diagonal (the other
 * products are zeros, so sums are exact). The layer keeps the constants
 * out of training. */
static clnet_status add_affine(imp *im, const clnet_onnx_node *n, int images, int64_t c,
                               const float *scale, const float *shift)
{
    clnet_status st;
    if (images) {
        clnet_conv2d_layer_params p = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        p.filters = (int)c, p.kernel_h = p.kernel_w = 1, p.use_bias = shift != NULL;
        st = clnet_model_add_conv2d(im->m, &p);
    } else {
        clnet_dense_params p = CLNET_DENSE_PARAMS_DEFAULT;
        p.units = (int)c, p.use_bias = shift != NULL;
        st = clnet_model_add_dense(im->m, &p);
    }
    if (st)
        return lib_fail(im, n, st);
    float *k = clnet__calloc((size_t)(c * c), sizeof *k);
    if (!k)
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    for (int64_t i = 0; i < c; i++)
        k[i * c + i] = scale[i];
    const int64_t ks[4] = { c, c, 1, 1 };
    st = set_param(im, n, "kernel", images ? 4 : 2, ks, k);
    clnet__free(k);
    if (!st && shift)
        st = set_param(im, n, "bias", 1, &c, shift);
    if (!st && (st = clnet_model_set_trainable(
                    im->m, clnet_model_node_layer(im->m, clnet_model_node(im->m)), 0)))
        st = lib_fail(im, n, st);
    return st ? st : define_out(im, n);
}

/* Add, Sub, Mul, Div with one float constant operand, numpy-broadcast: a
 * scalar (an expression layer), or one value per channel ((C, 1, 1) on NCHW)
 * or per feature ((F) on (batch, F)): add_affine. */
static clnet_status op_const_arith(imp *im, const clnet_onnx_node *n, int cfirst)
{
    const clnet_onnx_tensor *c = find_const(im, n->inputs[cfirst ? 0 : 1]);
    clnet_node x;
    clnet_status st;
    char op = n->op_type[0], lit[64], fwd[160], bwd[160], name[24];
    if ((st = in_node(im, n, cfirst ? 1 : 0, &x)))
        return st;
    if ((st = clnet_model_set_node(im->m, x)))
        return lib_fail(im, n, st);
    for (size_t i = 0; i < c->numel; i++)
        if (!isfinite(c->f32[i]))
            return fail(im, CLNET_ERR_UNSUPPORTED,
                        "clnet_onnx_import: node '%s' (%s): a constant operand that is not "
                        "finite",
                        node_label(n), n->op_type);
    if (c->numel == 1) {
        literal(lit, sizeof lit, c->f32[0]);
        const char *sym = op == 'A' ? "+" : op == 'S' ? "-" : op == 'M' ? "*" : "/";
        if (cfirst)
            snprintf(fwd, sizeof fwd, "%s %s x", lit, sym);
        else
            snprintf(fwd, sizeof fwd, "x %s %s", sym, lit);
        if (op == 'A' || (op == 'S' && !cfirst))
            snprintf(bwd, sizeof bwd, "1.0f");
        else if (op == 'S')
            snprintf(bwd, sizeof bwd, "-1.0f");
        else if (op == 'M')
            snprintf(bwd, sizeof bwd, "%s", lit);
        else if (!cfirst)
            snprintf(bwd, sizeof bwd, "1.0f / %s", lit);
        else
            snprintf(bwd, sizeof bwd, "-y / x");
        snprintf(name, sizeof name, "onnx_%s",
                 op == 'A'   ? "add"
                 : op == 'S' ? "sub"
                 : op == 'M' ? "mul"
                             : "div");
        return add_expr(im, n, name, fwd, bwd);
    }
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_model_node_shape(im->m, x, shape);
    /* (C, 1, 1) or (1, C, 1, 1) on (C, H, W); (F) or (1, F) on (F). */
    int images = nd == 3 && c->ndim >= 3 && c->ndim <= 4 && c->shape[c->ndim - 3] == shape[0] &&
                 c->shape[c->ndim - 2] == 1 && c->shape[c->ndim - 1] == 1 &&
                 (c->ndim == 3 || c->shape[0] == 1);
    int feats = nd == 1 && c->ndim >= 1 && c->ndim <= 2 && c->shape[c->ndim - 1] == shape[0] &&
                (c->ndim == 1 || c->shape[0] == 1);
    if ((!images && !feats) || (cfirst && op == 'D'))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): a constant operand is imported as a "
                    "scalar, per channel ((C, 1, 1) on NCHW) or per feature ((F) on (batch, "
                    "F)), and not as a divisor's dividend",
                    node_label(n), n->op_type);
    int64_t ch = shape[0];
    float *buf = clnet__malloc(2 * (size_t)ch * sizeof *buf);
    if (!buf)
        return fail(im, CLNET_ERR_HOST_MEMORY, "clnet_onnx_import: out of host memory");
    float *scale = buf, *shift = buf + ch;
    for (int64_t i = 0; i < ch; i++) {
        float v = c->f32[i];
        scale[i] = op == 'M' ? v : op == 'D' ? 1.0f / v : op == 'S' && cfirst ? -1.0f : 1.0f;
        shift[i] = op == 'A' ? v : op == 'S' ? (cfirst ? v : -v) : 0.0f;
    }
    st = add_affine(im, n, images, ch, scale, op == 'A' || op == 'S' ? shift : NULL);
    clnet__free(buf);
    return st;
}

/* LogSoftmax over the features of (batch, features): softmax, then log. */
static clnet_status op_log_softmax(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    clnet_status st = op_softmax(im, n, x);
    if (st)
        return st;
    return add_expr(im, n, "log", "log(x)", "1.0f / x");
}

/* Resize / Upsample, nearest, by integer scales of the rows and columns:
 * UpSampling2D. Scales (or Resize's sizes) must be constants. */
static clnet_status op_resize(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    int64_t shape[CLNET_MAX_DIMS], k[2] = { 0, 0 };
    const clnet_onnx_tensor *sc = NULL;
    folded sz;
    int nd = clnet_model_node_shape(im->m, x, shape);
    int upsample = n->op_type[0] == 'U';
    const char *mode = attr_str(n, "mode", "nearest");
    const char *ctm = attr_str(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = attr_str(n, "nearest_mode", "round_prefer_floor");
    size_t si = upsample ? 1 : 2;
    if (si < n->n_inputs && n->inputs[si][0])
        sc = find_const(im, n->inputs[si]);
    if (sc && sc->dtype == CLNET_ONNX_FLOAT && sc->numel == 4 && sc->f32[0] == 1.0f &&
        sc->f32[1] == 1.0f && sc->f32[2] >= 1.0f && sc->f32[3] >= 1.0f && sc->f32[2] <= 1024.0f &&
        sc->f32[3] <= 1024.0f && sc->f32[2] == floorf(sc->f32[2]) &&
        sc->f32[3] == floorf(sc->f32[3]))
        k[0] = (int64_t)sc->f32[2], k[1] = (int64_t)sc->f32[3];
    else if (!upsample && n->n_inputs > 3 && get_ints(im, n->inputs[3], &sz) && sz.n == 4 &&
             nd == 3 && sz.v[2] % shape[1] == 0 && sz.v[3] % shape[2] == 0 && sz.v[1] == shape[0])
        k[0] = sz.v[2] / shape[1], k[1] = sz.v[3] / shape[2];
    /* With an integer scale, asymmetric coordinates with floor (PyTorch's
     * nearest) read input row floor(i / k): UpSampling2D's repeat. */
    if (nd != 3 || k[0] < 1 || k[1] < 1 || strcmp(mode, "nearest") ||
        (!upsample && (strcmp(ctm, "asymmetric") || strcmp(nm, "floor"))))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): only nearest, asymmetric, floor by "
                    "constant integer scales [1, 1, h, w] of NCHW images is imported",
                    node_label(n), n->op_type);
    clnet_status st = clnet_model_add_upsampling2d(im->m, (int)k[0], (int)k[1]);
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* Whether input i of n is a float constant. */
static int is_fconst(const imp *im, const clnet_onnx_node *n, size_t i)
{
    const clnet_onnx_tensor *t = i < n->n_inputs ? find_const(im, n->inputs[i]) : NULL;
    return t && t->dtype == CLNET_ONNX_FLOAT;
}

static clnet_status import_node(imp *im, size_t idx, const clnet_onnx_node *n)
{
    const char *op = n->op_type;
    clnet_node x = -1;
    clnet_status st;
    if (!strcmp(op, "Constant"))
        return CLNET_OK; /* read through find_const */
    if ((!strcmp(op, "Identity") || !strcmp(op, "Dropout")) && n->n_inputs &&
        find_const(im, n->inputs[0]))
        return CLNET_OK; /* a constant under another name: find_const follows it */
    if (n->n_outputs && find_value(im, n->outputs[0]))
        return CLNET_OK; /* folded into an earlier node (a Slice after a ConvTranspose) */
    if (!strcmp(op, "ConstantOfShape") || !strcmp(op, "Expand") || !strcmp(op, "Slice"))
        return op_zeros(im, n);
    if (!strcmp(op, "Squeeze") || !strcmp(op, "Transpose"))
        return op_relayout(im, n);
    if (!strcmp(op, "LSTM") || !strcmp(op, "GRU") || !strcmp(op, "RNN"))
        return op_rnn(im, idx, n);
    if ((!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) &&
        n->n_inputs == 2 && (is_fconst(im, n, 0) || is_fconst(im, n, 1)))
        return op_const_arith(im, n, is_fconst(im, n, 0));
    if (!strcmp(op, "Div"))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (Div): a division of two computed values is "
                    "not imported (only by a constant)",
                    node_label(n));
    if (!strcmp(op, "Gather") && n->n_inputs && find_value(im, n->inputs[0]))
        return op_step(im, n, find_value(im, n->inputs[0]));
    if (!strcmp(op, "Gather"))
        return op_gather(im, n);
    if (!strcmp(op, "Unsqueeze"))
        return op_unsqueeze(im, n);
    if (!strcmp(op, "Concat") && !concat_folds(im, n, &st))
        return st;
    if ((st = in_node(im, n, 0, &x)))
        return st;
    if ((st = clnet_model_set_node(im->m, x)))
        return lib_fail(im, n, st);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
        return define(im, n->outputs[0], x);
    if (!strcmp(op, "Shape"))
        return op_shape(im, n, x);
    if (!strcmp(op, "Conv"))
        return op_conv(im, n, x);
    if (!strcmp(op, "ConvTranspose"))
        return op_conv_transpose(im, idx, n, x);
    if (!strcmp(op, "LogSoftmax"))
        return op_log_softmax(im, n, x);
    if (!strcmp(op, "Resize") || !strcmp(op, "Upsample"))
        return op_resize(im, n, x);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return op_pool(im, n, x, op[0] == 'A');
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        return op_dense(im, n, x, op[0] == 'G');
    if (!strcmp(op, "BatchNormalization"))
        return op_batchnorm(im, n);
    if (!strcmp(op, "Reshape"))
        return op_reshape(im, n, x);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul"))
        return op_merge(im, n,
                        op[0] == 'A'   ? CLNET_MERGE_ADD
                        : op[0] == 'S' ? CLNET_MERGE_SUBTRACT
                                       : CLNET_MERGE_MULTIPLY);
    if (!strcmp(op, "Concat"))
        return op_concat(im, n);
    if (!strcmp(op, "Softmax"))
        return op_softmax(im, n, x);
    if (!strcmp(op, "Clip"))
        return op_clip(im, n);
    if (!strcmp(op, "GlobalAveragePool")) {
        int64_t shape[CLNET_MAX_DIMS];
        clnet_model_node_shape(im->m, x, shape);
        const int64_t c11[3] = { shape[0], 1, 1 };
        if ((st = clnet_model_add_global_avgpool2d(im->m)) ||
            (st = clnet_model_add_reshape(im->m, 3, c11)))
            return lib_fail(im, n, st);
        return define_out(im, n);
    }
    if (!strcmp(op, "Flatten")) {
        if (attr_int(n, "axis", 1) != 1)
            return fail(im, CLNET_ERR_UNSUPPORTED,
                        "clnet_onnx_import: node '%s' (Flatten): axis must be 1", node_label(n));
        st = clnet_model_add_flatten(im->m);
        return st ? lib_fail(im, n, st) : define_out(im, n);
    }
    clnet_activation act = !strcmp(op, "HardSwish")   ? CLNET_ACT_HARD_SWISH
                           : !strcmp(op, "Relu")      ? CLNET_ACT_RELU
                           : !strcmp(op, "LeakyRelu") ? CLNET_ACT_LEAKY_RELU
                           : !strcmp(op, "Sigmoid")   ? CLNET_ACT_SIGMOID
                                                      : CLNET_ACT_TANH;
    st = clnet_model_add_activation(im->m, act, attr_float(n, "alpha", 0.01f));
    return st ? lib_fail(im, n, st) : define_out(im, n);
}

/* ---- The model ---------------------------------------------------------------- */

static clnet_status make_inputs(imp *im, clnet_context *ctx)
{
    const clnet_onnx_graph *g = im->g;
    if (g->n_inputs < 1 || g->n_inputs > CLNET_MODEL_MAX_IO || g->n_outputs < 1 ||
        g->n_outputs > CLNET_MODEL_MAX_IO)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: %zu inputs and %zu outputs (1 to %d each)", g->n_inputs,
                    g->n_outputs, CLNET_MODEL_MAX_IO);
    for (size_t i = 0; i < g->n_inputs; i++) {
        const clnet_onnx_value *v = &g->inputs[i];
        if (v->dtype != CLNET_ONNX_FLOAT || v->ndim < 2)
            return fail(im, CLNET_ERR_UNSUPPORTED,
                        "clnet_onnx_import: input '%s' must be float with a batch dim and more",
                        v->name);
        for (int d = 1; d < v->ndim; d++)
            if (v->shape[d] < 1)
                return fail(im, CLNET_ERR_UNSUPPORTED,
                            "clnet_onnx_import: input '%s' dim %d is not a fixed size", v->name, d);
        clnet_node node;
        clnet_status st = i == 0 ? clnet_model_create(ctx, v->ndim - 1, v->shape + 1, 1, &im->m)
                                 : clnet_model_add_input(im->m, v->ndim - 1, v->shape + 1, &node);
        if (st)
            return fail(im, st, "clnet_onnx_import: input '%s': %s", v->name,
                        clnet_context_errmsg(ctx));
        if (i == 0)
            node = clnet_model_input(im->m, 0);
        if ((st = define(im, v->name, node)))
            return st;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_onnx_import(clnet_context *ctx, const clnet_onnx_model *om,
                                         clnet_model **out, char *err, size_t err_size)
{
    imp im = { ctx, NULL, 0, om, clnet_onnx_model_graph(om), NULL, NULL, 0, err, err_size };
    if (!out)
        return fail(&im, CLNET_ERR_INVALID_ARG, "clnet_onnx_import: invalid argument: out");
    *out = NULL;
    if (!ctx || !om)
        return fail(&im, CLNET_ERR_INVALID_ARG, "clnet_onnx_import: invalid argument: %s",
                    ctx ? "model is NULL" : "ctx is NULL");
    clnet_status st = check_mapped(&im);
    if (!st)
        st = make_inputs(&im, ctx);
    for (size_t i = 0; !st && i < im.g->n_nodes; i++)
        st = import_node(&im, i, &im.g->nodes[i]);
    clnet_node outs[CLNET_MODEL_MAX_IO];
    for (size_t i = 0; !st && i < im.g->n_outputs; i++)
        if (!lookup(&im, im.g->outputs[i].name, &outs[i]))
            st = fail(&im, CLNET_ERR_UNSUPPORTED,
                      "clnet_onnx_import: output '%s' is not a computed value",
                      im.g->outputs[i].name);
    if (!st && (st = clnet_model_set_outputs(im.m, (int)im.g->n_outputs, outs)))
        fail(&im, st, "clnet_onnx_import: outputs: %s", clnet_context_errmsg(ctx));
    clnet__free(im.vals);
    clnet__free(im.ints);
    if (st) {
        clnet_model_destroy(im.m);
        return st;
    }
    *out = im.m;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_onnx_import_file(clnet_context *ctx, const char *path,
                                              clnet_model **out, char *err, size_t err_size)
{
    if (out)
        *out = NULL;
    clnet_onnx_model *om;
    clnet_status st = clnet_onnx_model_load(path, &om, err, err_size);
    if (st)
        return st;
    st = clnet_onnx_import(ctx, om, out, err, err_size);
    clnet_onnx_model_destroy(om);
    return st;
}
