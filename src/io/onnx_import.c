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

/* A computed value: an ONNX name and the clnet node that holds it. */
typedef struct value {
    const char *name;
    clnet_node node;
} value;

/* The batch dim in a folded shape: any value the model is run with. */
#define BATCH INT64_MIN

/* A folded int64 constant (Shape, Gather, Unsqueeze, Concat on shapes): a
 * scalar (ndim 0) or a vector of up to CLNET_MAX_DIMS values. */
typedef struct folded {
    const char *name;
    int ndim;
    size_t n;
    int64_t v[CLNET_MAX_DIMS];
} folded;

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
};

/* Appends "; what" to the refusal list in buf unless it is there already. */
static void refuse(char *buf, size_t size, const char *what)
{
    if (strstr(buf, what))
        return;
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? "; " : "", what);
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
        if (!known) {
            snprintf(what, sizeof what, "op %s%s%s", n->domain, n->domain[0] ? "." : "",
                     n->op_type);
            refuse(list, sizeof list, what);
            continue;
        }
        if (!strcmp(n->op_type, "Conv") && attr_int(n, "group", 1) != 1) {
            /* Refused: there is no grouped Conv2D layer yet, only the
             * primitive (clnet/conv_grouped.h); docs/onnx.md lists it. */
            snprintf(what, sizeof what, "Conv.group=%lld (grouped layers not imported yet)",
                     (long long)attr_int(n, "group", 1));
            refuse(list, sizeof list, what);
        }
        if ((!strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "AveragePool")) &&
            attr_int(n, "ceil_mode", 0)) {
            snprintf(what, sizeof what, "%s.ceil_mode=1", n->op_type);
            refuse(list, sizeof list, what);
        }
        if (!strcmp(n->op_type, "Gemm") && attr_int(n, "transA", 0))
            refuse(list, sizeof list, "Gemm.transA=1");
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
    im->vals[im->nvals++] = (value){ name, node };
    return CLNET_OK;
}

static int lookup(const imp *im, const char *name, clnet_node *node)
{
    for (size_t i = im->nvals; i-- > 0;)
        if (!strcmp(im->vals[i].name, name)) {
            *node = im->vals[i].node;
            return 1;
        }
    return 0;
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
    if (!lookup(im, n->inputs[i], node))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): input '%s' is a constant where the "
                    "importer needs a computed value",
                    node_label(n), n->op_type, n->inputs[i]);
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
    const clnet_onnx_tensor *c = clnet_onnx_model_find_tensor(im->om, n->inputs[i]);
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
 * right) on an h x w input; -1 when neither VALID nor Keras' SAME. */
static int padding_of(const clnet_onnx_node *n, int64_t h, int64_t w, const int64_t *k,
                      const int64_t *s, const int64_t *d, const int64_t *pads)
{
    const char *ap = attr_str(n, "auto_pad", "NOTSET");
    int64_t sp[4];
    same_pads(h, k[0], s[0], d[0], &sp[0], &sp[2]);
    same_pads(w, k[1], s[1], d[1], &sp[1], &sp[3]);
    if (!strcmp(ap, "VALID"))
        return CLNET_PADDING_VALID;
    if (!strcmp(ap, "SAME_UPPER"))
        return CLNET_PADDING_SAME;
    if (!strcmp(ap, "SAME_LOWER"))
        return sp[0] == sp[2] && sp[1] == sp[3] ? CLNET_PADDING_SAME : -1;
    if (!pads[0] && !pads[1] && !pads[2] && !pads[3])
        return CLNET_PADDING_VALID;
    if (!memcmp(pads, sp, sizeof sp))
        return CLNET_PADDING_SAME;
    return -1;
}

/* Kernel, strides, dilations, pads of a Conv or pool node and the padding
 * they give; the message names the pads clnet cannot express. */
static clnet_status window(imp *im, const clnet_onnx_node *n, clnet_node x, const int64_t *kdef,
                           int64_t *k, int64_t *s, int64_t *d, clnet_padding *pad)
{
    int64_t shape[CLNET_MAX_DIMS], pads[4] = { 0, 0, 0, 0 };
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
    int p = padding_of(n, shape[1], shape[2], k, s, d, pads);
    if (p < 0)
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): pads %lld,%lld,%lld,%lld on %lldx%lld "
                    "are neither none nor 'same' (explicit padding is not imported yet)",
                    node_label(n), n->op_type, (long long)pads[0], (long long)pads[1],
                    (long long)pads[2], (long long)pads[3], (long long)shape[1],
                    (long long)shape[2]);
    *pad = (clnet_padding)p;
    return CLNET_OK;
}

/* ---- Ops ---------------------------------------------------------------------- */

static clnet_status op_conv(imp *im, const clnet_onnx_node *n, clnet_node x)
{
    const clnet_onnx_tensor *w, *b;
    clnet_status st;
    if ((st = in_const(im, n, 1, 4, 0, &w)) || (st = in_const(im, n, 2, 1, 1, &b)))
        return st;
    int64_t k[2], s[2], d[2];
    clnet_padding pad;
    if ((st = window(im, n, x, w->shape + 2, k, s, d, &pad)))
        return st;
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
    int64_t k[2] = { 0, 0 }, s[2], d[2];
    clnet_padding pad;
    clnet_status st = window(im, n, x, k, k, s, d, &pad);
    if (st)
        return st;
    if (d[0] != 1 || d[1] != 1 || (avg && pad != CLNET_PADDING_VALID))
        return fail(im, CLNET_ERR_UNSUPPORTED,
                    "clnet_onnx_import: node '%s' (%s): dilated or padded average pooling is "
                    "not imported",
                    node_label(n), n->op_type);
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    p.window_h = (int)k[0], p.window_w = (int)k[1];
    p.stride_h = (int)s[0], p.stride_w = (int)s[1];
    p.padding = pad;
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
    if ((st = clnet_model_add_batchnorm(im->m, &(clnet_batchnorm_params){ .eps = eps, .momentum = 1.0f - mom })))
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
            return 1;
        }
    const clnet_onnx_tensor *t = clnet_onnx_model_find_tensor(im->om, name);
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

static clnet_status import_node(imp *im, const clnet_onnx_node *n)
{
    const char *op = n->op_type;
    clnet_node x = -1;
    clnet_status st;
    if (!strcmp(op, "Constant"))
        return CLNET_OK; /* read through clnet_onnx_model_find_tensor */
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
    clnet_activation act = !strcmp(op, "Relu")        ? CLNET_ACT_RELU
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
        st = import_node(&im, &im.g->nodes[i]);
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
