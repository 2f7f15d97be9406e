/* clnet — the one table of ONNX ops and attributes clnet supports, and the
 * check that lists everything a model uses outside it. docs/onnx.md repeats
 * the table; tests/test-onnx.c checks the two agree. */
#include <stdio.h>
#include <string.h>

#include "io/onnx_internal.h"

#define A(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })
#define POOL_ATTRS "auto_pad", "kernel_shape", "pads", "strides"
#define RNN_ATTRS "direction", "hidden_size", "layout"

static const clnet_onnx_op_support ops[] = {
    { "Conv", A(POOL_ATTRS, "dilations", "group"), "group: dense, grouped or depthwise" },
    { "ConvTranspose", A(POOL_ATTRS, "dilations", "group", "output_padding", "output_shape"), "" },
    { "Gemm", A("alpha", "beta", "transA", "transB"), "" },
    { "MatMul", NONE, "" },
    { "Add", NONE, "broadcasting" },
    { "Sub", NONE, "broadcasting" },
    { "Mul", NONE, "broadcasting" },
    { "Div", NONE, "broadcasting" },
    { "Relu", NONE, "" },
    { "LeakyRelu", A("alpha"), "" },
    { "Sigmoid", NONE, "" },
    { "Tanh", NONE, "" },
    { "Clip", A("min", "max"), "min and max as inputs (opset 11+) or attributes" },
    { "HardSwish", NONE, "" },
    { "Softmax", A("axis"), "" },
    { "LogSoftmax", A("axis"), "" },
    { "MaxPool", A(POOL_ATTRS, "ceil_mode", "dilations", "storage_order"), "storage_order 0" },
    { "AveragePool", A(POOL_ATTRS, "ceil_mode", "count_include_pad"), "" },
    { "GlobalAveragePool", NONE, "" },
    { "BatchNormalization", A("epsilon", "momentum", "training_mode"), "inference form" },
    { "Flatten", A("axis"), "" },
    { "Reshape", A("allowzero"), "shape from a constant" },
    { "Transpose", A("perm"), "" },
    { "Concat", A("axis"), "" },
    { "Dropout", A("ratio", "seed"), "identity at inference" },
    { "Identity", NONE, "" },
    { "Constant", A("value", "value_float", "value_floats", "value_int", "value_ints"), "" },
    { "Shape", A("start", "end"), "folded to a constant" },
    { "Gather", A("axis"), "on constants (shape chains)" },
    { "Expand", NONE, "on constants (an RNN's initial state)" },
    { "Unsqueeze", A("axes"), "axes as an attribute (opset < 13) or input" },
    { "Squeeze", A("axes"), "axes as an attribute (opset < 13) or input" },
    { "Resize",
      A("coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value",
        "mode", "nearest_mode"),
      "mode nearest" },
    { "Upsample", A("mode"), "mode nearest" },
    { "LSTM", A(RNN_ATTRS, "input_forget"), "input_forget 0" },
    { "GRU", A(RNN_ATTRS, "linear_before_reset"), "" },
    { "RNN", A(RNN_ATTRS, "activations"), "activations Tanh (the default, which PyTorch writes)" },
    { "Slice", NONE, "the crop after a ConvTranspose; on zeros" },
    { "ConstantOfShape", A("value"), "zeros (an RNN's initial state)" },
};

CLNET_API const clnet_onnx_op_support *clnet_onnx_supported_ops(size_t *count)
{
    if (count)
        *count = sizeof ops / sizeof ops[0];
    return ops;
}

static const clnet_onnx_op_support *find_op(const char *op_type)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].op_type, op_type))
            return &ops[i];
    return NULL;
}

static int attr_listed(const clnet_onnx_op_support *op, const char *name)
{
    for (const char *const *a = op->attrs; *a; a++)
        if (!strcmp(*a, name))
            return 1;
    return 0;
}

/* A value of a listed attribute that the importer will not handle, or NULL. */
static const char *bad_value(const char *op, const clnet_onnx_attr *a)
{
    if ((!strcmp(op, "Resize") || !strcmp(op, "Upsample")) && !strcmp(a->name, "mode"))
        return a->type == CLNET_ONNX_ATTR_STRING && !strcmp(a->s, "nearest") ? NULL : "mode";
    if (!strcmp(op, "MaxPool") && !strcmp(a->name, "storage_order"))
        return a->type == CLNET_ONNX_ATTR_INT && a->i == 0 ? NULL : "storage_order";
    if (!strcmp(op, "LSTM") && !strcmp(a->name, "input_forget"))
        return a->type == CLNET_ONNX_ATTR_INT && a->i == 0 ? NULL : "input_forget";
    if (!strcmp(op, "RNN") && !strcmp(a->name, "activations"))
        return a->type == CLNET_ONNX_ATTR_STRINGS && a->count == 1 && !strcmp(a->strings[0], "Tanh")
                   ? NULL
                   : "activations";
    return NULL;
}

/* The growing message: each item once, "; " between them. */
typedef struct list {
    char buf[2048];
    size_t len;
    int items, dropped;
} list;

static void add(list *l, const char *item)
{
    char needle[300];
    snprintf(needle, sizeof needle, "%s;", item);
    l->buf[l->len] = ';'; /* so the last item matches the needle too */
    l->buf[l->len + 1] = 0;
    int seen = 0;
    for (const char *p = l->buf; (p = strstr(p, needle)); p++)
        if (p == l->buf || p[-1] == ' ') {
            seen = 1;
            break;
        }
    l->buf[l->len] = 0;
    if (seen)
        return;
    size_t n = strlen(item);
    if (l->len + n + 3 >= sizeof l->buf - 40) {
        l->dropped++;
        return;
    }
    if (l->items++) {
        memcpy(l->buf + l->len, "; ", 2);
        l->len += 2;
    }
    memcpy(l->buf + l->len, item, n + 1);
    l->len += n;
}

CLNET_API clnet_status clnet_onnx_model_check_supported(const clnet_onnx_model *model, char *err,
                                                        size_t err_size)
{
    onnx_diag d = { "clnet_onnx_model_check_supported", err, err_size };
    const clnet_onnx_graph *g = clnet_onnx_model_graph(model);
    if (!g)
        return clnet__onnx_report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: model != NULL");
    list l = { .len = 0 };
    char item[300];
    for (size_t i = 0; i < g->n_nodes; i++) {
        const clnet_onnx_node *n = &g->nodes[i];
        const clnet_onnx_op_support *op = NULL;
        if (*n->domain && strcmp(n->domain, "ai.onnx"))
            snprintf(item, sizeof item, "op %.100s.%.100s", n->domain, n->op_type);
        else if (!(op = find_op(n->op_type)))
            snprintf(item, sizeof item, "op %.200s", n->op_type);
        if (!op) {
            add(&l, item);
            continue;
        }
        for (size_t j = 0; j < n->n_attrs; j++) {
            const char *bad = attr_listed(op, n->attrs[j].name)
                                  ? bad_value(op->op_type, &n->attrs[j])
                                  : n->attrs[j].name;
            if (!bad)
                continue;
            if (n->attrs[j].type == CLNET_ONNX_ATTR_STRING && bad != n->attrs[j].name)
                snprintf(item, sizeof item, "attribute %s.%.100s='%.60s'", op->op_type, bad,
                         n->attrs[j].s);
            else if (n->attrs[j].type == CLNET_ONNX_ATTR_INT && bad != n->attrs[j].name)
                snprintf(item, sizeof item, "attribute %s.%.100s=%lld", op->op_type, bad,
                         (long long)n->attrs[j].i);
            else
                snprintf(item, sizeof item, "attribute %s.%.200s", op->op_type, bad);
            add(&l, item);
        }
    }
    if (!l.items)
        return CLNET_OK;
    if (l.dropped)
        snprintf(l.buf + l.len, sizeof l.buf - l.len, "; and %d more", l.dropped);
    return clnet__onnx_report(&d, CLNET_ERR_UNSUPPORTED, "not supported: %s", l.buf);
}
