/* clnet-bench — the float64 ONNX interpreter of onnx-ref.h: one function per
 * op, plain loops written for clarity, following the ONNX operator
 * specification (opsets 11-17) rather than the importer. Values live in a
 * small table, each freed after the last node that reads it. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx-ref.h"

typedef struct entry {
    const char *name;
    onnx_ref_value v;
    size_t last; /* the last node that reads it; SIZE_MAX: a graph output */
} entry;

typedef struct interp {
    const clnet_onnx_model *om;
    const clnet_onnx_graph *g;
    entry **e; /* each entry allocated once: pointers into it stay valid */
    size_t n, cap;
    const clnet_onnx_node *node; /* the node being evaluated, for messages */
    double flops;
    int dry; /* count FLOPs only: the sums of Conv, Gemm and MatMul skipped */
    char *err;
    size_t err_size;
} interp;

static int fail(interp *in, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in->node)
        snprintf(in->err, in->err_size, "float64 reference: node '%s' (%s): %s",
                 in->node->name[0] ? in->node->name : "?", in->node->op_type, msg);
    else
        snprintf(in->err, in->err_size, "float64 reference: %s", msg);
    return -1;
}

static size_t numel(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

static int alloc_value(interp *in, onnx_ref_value *v, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > ONNX_REF_MAX_DIMS)
        return fail(in, "%d dims", ndim);
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return fail(in, "a negative dim");
        v->shape[i] = shape[i];
    }
    v->n = numel(ndim, shape);
    v->d = calloc(v->n ? v->n : 1, sizeof *v->d);
    return v->d ? 0 : fail(in, "out of memory for %zu values", v->n);
}

static size_t last_use(const clnet_onnx_graph *g, const char *name)
{
    for (size_t k = 0; k < g->n_outputs; k++)
        if (!strcmp(g->outputs[k].name, name))
            return SIZE_MAX;
    size_t last = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i].n_inputs; j++)
            if (!strcmp(g->nodes[i].inputs[j], name))
                last = i;
    return last;
}

/* Takes ownership of v->d. */
static int put(interp *in, const char *name, onnx_ref_value *v)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? 2 * in->cap : 64;
        entry **e = realloc(in->e, cap * sizeof *e);
        if (!e) {
            free(v->d);
            return fail(in, "out of memory");
        }
        in->e = e;
        in->cap = cap;
    }
    entry *one = malloc(sizeof *one);
    if (!one) {
        free(v->d);
        return fail(in, "out of memory");
    }
    *one = (entry){ .name = name, .v = *v, .last = last_use(in->g, name) };
    in->e[in->n++] = one;
    return 0;
}

/* The value named `name`: computed, a graph input, an initializer or a
 * Constant's value (converted on first use); NULL after a message. */
static const onnx_ref_value *get(interp *in, const char *name)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->e[i]->v.d && !strcmp(in->e[i]->name, name))
            return &in->e[i]->v;
    const clnet_onnx_tensor *t = clnet_onnx_model_find_tensor(in->om, name);
    onnx_ref_value v;
    if (!t) {
        fail(in, "no value '%s'", name);
        return NULL;
    }
    if (alloc_value(in, &v, t->ndim, t->shape))
        return NULL;
    for (size_t k = 0; k < t->numel; k++)
        v.d[k] = t->f32 ? (double)t->f32[k] : (double)t->i64[k];
    if (put(in, t->name[0] ? t->name : name, &v))
        return NULL;
    return &in->e[in->n - 1]->v;
}

/* Input k of the node; NULL when absent ("" or past the end) or after a
 * message (then *bad is set). */
static const onnx_ref_value *input(interp *in, size_t k, int *bad)
{
    if (k >= in->node->n_inputs || !in->node->inputs[k][0])
        return NULL;
    const onnx_ref_value *v = get(in, in->node->inputs[k]);
    if (!v)
        *bad = 1;
    return v;
}

static const clnet_onnx_attr *attr(const interp *in, const char *name)
{
    for (size_t i = 0; i < in->node->n_attrs; i++)
        if (!strcmp(in->node->attrs[i].name, name))
            return &in->node->attrs[i];
    return NULL;
}

static int64_t attr_i(const interp *in, const char *name, int64_t def)
{
    const clnet_onnx_attr *a = attr(in, name);
    return a && a->type == CLNET_ONNX_ATTR_INT ? a->i : def;
}

static double attr_f(const interp *in, const char *name, double def)
{
    const clnet_onnx_attr *a = attr(in, name);
    return a && a->type == CLNET_ONNX_ATTR_FLOAT ? a->f : def;
}

/* An INTS attribute into out[0..max); returns the count, -1 if absent. */
static int attr_ints(const interp *in, const char *name, int64_t *out, int max)
{
    const clnet_onnx_attr *a = attr(in, name);
    if (!a || a->type != CLNET_ONNX_ATTR_INTS)
        return -1;
    int n = (int)(a->count < (size_t)max ? a->count : (size_t)max);
    for (int i = 0; i < n; i++)
        out[i] = a->ints[i];
    return n;
}

static const char *attr_s(const interp *in, const char *name, const char *def)
{
    const clnet_onnx_attr *a = attr(in, name);
    return a && a->type == CLNET_ONNX_ATTR_STRING ? a->s : def;
}

/* ---- Elementwise ------------------------------------------------------------ */

static double hardswish(double x)
{
    return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
}

static int unary(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    const char *op = in->node->op_type;
    double alpha = attr_f(in, "alpha", 0.01), lo = -INFINITY, hi = INFINITY;
    if (!strcmp(op, "Clip")) {
        int bad = 0;
        const onnx_ref_value *mn = input(in, 1, &bad), *mx = input(in, 2, &bad);
        if (bad)
            return -1;
        lo = mn && mn->n ? mn->d[0] : attr_f(in, "min", -INFINITY);
        hi = mx && mx->n ? mx->d[0] : attr_f(in, "max", INFINITY);
    }
    if (alloc_value(in, y, x->ndim, x->shape))
        return -1;
    for (size_t i = 0; i < x->n; i++) {
        double v = x->d[i];
        if (!strcmp(op, "Relu"))
            v = v > 0 ? v : 0.0;
        else if (!strcmp(op, "LeakyRelu"))
            v = v >= 0 ? v : alpha * v;
        else if (!strcmp(op, "Sigmoid"))
            v = 1.0 / (1.0 + exp(-v));
        else if (!strcmp(op, "Tanh"))
            v = tanh(v);
        else if (!strcmp(op, "HardSwish"))
            v = hardswish(v);
        else if (!strcmp(op, "Clip"))
            v = fmin(fmax(v, lo), hi);
        /* Identity, Dropout (inference): v itself */
        y->d[i] = v;
    }
    return 0;
}

/* Add, Sub, Mul, Div with numpy broadcasting. */
static int binary(interp *in, const onnx_ref_value *a, const onnx_ref_value *b, onnx_ref_value *y)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t sa[ONNX_REF_MAX_DIMS], sb[ONNX_REF_MAX_DIMS], sy[ONNX_REF_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        sa[i] = ia >= 0 ? a->shape[ia] : 1;
        sb[i] = ib >= 0 ? b->shape[ib] : 1;
        if (sa[i] != sb[i] && sa[i] != 1 && sb[i] != 1)
            return fail(in, "shapes do not broadcast (dim %d: %lld and %lld)", i, (long long)sa[i],
                        (long long)sb[i]);
        sy[i] = sa[i] == 1 ? sb[i] : sa[i];
    }
    if (alloc_value(in, y, nd, sy))
        return -1;
    char op = in->node->op_type[0];
    for (size_t i = 0; i < y->n; i++) {
        size_t rest = i, ka = 0, kb = 0, stride_a = 1, stride_b = 1;
        for (int d = nd - 1; d >= 0; d--) {
            size_t c = rest % (size_t)sy[d];
            rest /= (size_t)sy[d];
            ka += (sa[d] == 1 ? 0 : c) * stride_a;
            kb += (sb[d] == 1 ? 0 : c) * stride_b;
            stride_a *= (size_t)sa[d];
            stride_b *= (size_t)sb[d];
        }
        double u = a->d[ka], v = b->d[kb];
        y->d[i] = op == 'A' ? u + v : op == 'S' ? u - v : op == 'M' ? u * v : u / v;
    }
    return 0;
}

/* ---- Convolution and pooling -------------------------------------------------- */

/* The begin/end pads of one spatial dim from pads or auto_pad. */
typedef struct window {
    int64_t k[2], s[2], d[2], pb[2], pe[2], out[2];
} window;

static int make_window(interp *in, const onnx_ref_value *x, const int64_t *kernel, int ceil_mode,
                       window *w)
{
    int64_t pads[4] = { 0 }, tmp[2];
    const char *ap = attr_s(in, "auto_pad", "NOTSET");
    for (int i = 0; i < 2; i++) {
        w->k[i] = kernel[i];
        w->s[i] = w->d[i] = 1;
    }
    if (attr_ints(in, "strides", tmp, 2) == 2)
        memcpy(w->s, tmp, sizeof tmp);
    if (attr_ints(in, "dilations", tmp, 2) == 2)
        memcpy(w->d, tmp, sizeof tmp);
    attr_ints(in, "pads", pads, 4);
    for (int i = 0; i < 2; i++) {
        int64_t size = x->shape[2 + i], ke = (w->k[i] - 1) * w->d[i] + 1;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            int64_t out = (size + w->s[i] - 1) / w->s[i];
            int64_t total = (out - 1) * w->s[i] + ke - size;
            total = total > 0 ? total : 0;
            w->pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            w->pe[i] = total - w->pb[i];
        } else if (!strcmp(ap, "VALID")) {
            w->pb[i] = w->pe[i] = 0;
        } else {
            w->pb[i] = pads[i];
            w->pe[i] = pads[i + 2];
        }
        int64_t span = size + w->pb[i] + w->pe[i] - ke;
        if (span < 0 || w->s[i] < 1)
            return fail(in, "the window does not fit the input");
        w->out[i] = (ceil_mode ? (span + w->s[i] - 1) / w->s[i] : span / w->s[i]) + 1;
    }
    return 0;
}

static int conv(interp *in, onnx_ref_value *y)
{
    int bad = 0;
    const onnx_ref_value *x = input(in, 0, &bad), *w = input(in, 1, &bad), *b = input(in, 2, &bad);
    if (bad)
        return -1;
    if (!x || !w || x->ndim != 4 || w->ndim != 4)
        return fail(in, "only 2-D convolutions (NCHW) have a reference");
    int64_t groups = attr_i(in, "group", 1), N = x->shape[0], C = x->shape[1], M = w->shape[0];
    if (groups < 1 || C % groups || M % groups || w->shape[1] != C / groups ||
        (b && (int64_t)b->n != M))
        return fail(in, "weights do not fit the input");
    window win;
    if (make_window(in, x, w->shape + 2, 0, &win))
        return -1;
    int64_t H = x->shape[2], W = x->shape[3], OH = win.out[0], OW = win.out[1];
    int64_t cg = C / groups, mg = M / groups, KH = win.k[0], KW = win.k[1];
    if (alloc_value(in, y, 4, (int64_t[]){ N, M, OH, OW }))
        return -1;
    for (int64_t n = 0; n < N && !in->dry; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t g = m / mg;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = b ? b->d[m] : 0.0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t ih = oh * win.s[0] - win.pb[0] + kh * win.d[0];
                            if (ih < 0 || ih >= H)
                                continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t iw = ow * win.s[1] - win.pb[1] + kw * win.d[1];
                                if (iw < 0 || iw >= W)
                                    continue;
                                s += x->d[((n * C + g * cg + c) * H + ih) * W + iw] *
                                     w->d[((m * cg + c) * KH + kh) * KW + kw];
                            }
                        }
                    y->d[((n * M + m) * OH + oh) * OW + ow] = s;
                }
        }
    in->flops += 2.0 * (double)(N * M * OH * OW) * (double)(cg * KH * KW);
    return 0;
}

static int pool(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int is_max = !strcmp(in->node->op_type, "MaxPool");
    int64_t kernel[2];
    if (x->ndim != 4 || attr_ints(in, "kernel_shape", kernel, 2) != 2)
        return fail(in, "only 2-D pooling (NCHW) has a reference");
    window win;
    if (make_window(in, x, kernel, (int)attr_i(in, "ceil_mode", 0), &win))
        return -1;
    int include_pad = (int)attr_i(in, "count_include_pad", 0);
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OH = win.out[0], OW = win.out[1];
    if (alloc_value(in, y, 4, (int64_t[]){ N, C, OH, OW }))
        return -1;
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double acc = is_max ? -INFINITY : 0.0;
                int64_t cells = 0;
                for (int64_t kh = 0; kh < win.k[0]; kh++)
                    for (int64_t kw = 0; kw < win.k[1]; kw++) {
                        int64_t ih = oh * win.s[0] - win.pb[0] + kh * win.d[0];
                        int64_t iw = ow * win.s[1] - win.pb[1] + kw * win.d[1];
                        int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                        /* count_include_pad counts the pads, not cells past them (ceil_mode) */
                        if (!inside) {
                            cells += include_pad && ih < H + win.pe[0] && iw < W + win.pe[1];
                            continue;
                        }
                        double v = x->d[(p * H + ih) * W + iw];
                        acc = is_max ? fmax(acc, v) : acc + v;
                        cells++;
                    }
                y->d[(p * OH + oh) * OW + ow] = is_max ? acc : acc / (double)cells;
            }
    return 0;
}

static int global_avgpool(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    if (x->ndim < 3)
        return fail(in, "needs (N, C, spatial...)");
    int64_t shape[ONNX_REF_MAX_DIMS] = { x->shape[0], x->shape[1] };
    for (int i = 2; i < x->ndim; i++)
        shape[i] = 1;
    if (alloc_value(in, y, x->ndim, shape))
        return -1;
    size_t planes = (size_t)(x->shape[0] * x->shape[1]), hw = x->n / (planes ? planes : 1);
    for (size_t p = 0; p < planes; p++) {
        double s = 0.0;
        for (size_t k = 0; k < hw; k++)
            s += x->d[p * hw + k];
        y->d[p] = s / (double)hw;
    }
    return 0;
}

static int batchnorm(interp *in, onnx_ref_value *y)
{
    int bad = 0;
    const onnx_ref_value *x = input(in, 0, &bad), *sc = input(in, 1, &bad),
                         *bi = input(in, 2, &bad), *mu = input(in, 3, &bad),
                         *var = input(in, 4, &bad);
    if (bad)
        return -1;
    if (!x || !sc || !bi || !mu || !var || x->ndim < 2)
        return fail(in, "needs X, scale, B, mean and var");
    int64_t C = x->shape[1];
    if ((int64_t)sc->n != C || (int64_t)bi->n != C || (int64_t)mu->n != C || (int64_t)var->n != C)
        return fail(in, "statistics do not fit the channels");
    double eps = attr_f(in, "epsilon", 1e-5);
    if (alloc_value(in, y, x->ndim, x->shape))
        return -1;
    size_t inner = x->n / (size_t)(x->shape[0] * C);
    for (size_t i = 0; i < x->n; i++) {
        size_t c = (i / inner) % (size_t)C;
        y->d[i] = (x->d[i] - mu->d[c]) / sqrt(var->d[c] + eps) * sc->d[c] + bi->d[c];
    }
    return 0;
}

/* ---- Dense ------------------------------------------------------------------------ */

static int gemm(interp *in, onnx_ref_value *y)
{
    int bad = 0;
    const onnx_ref_value *a = input(in, 0, &bad), *b = input(in, 1, &bad), *c = input(in, 2, &bad);
    if (bad)
        return -1;
    if (!a || !b || a->ndim != 2 || b->ndim != 2)
        return fail(in, "A and B must be matrices");
    int ta = (int)attr_i(in, "transA", 0), tb = (int)attr_i(in, "transB", 0);
    double alpha = attr_f(in, "alpha", 1.0), beta = attr_f(in, "beta", 1.0);
    int64_t M = ta ? a->shape[1] : a->shape[0], K = ta ? a->shape[0] : a->shape[1];
    int64_t N = tb ? b->shape[0] : b->shape[1], KB = tb ? b->shape[1] : b->shape[0];
    if (K != KB)
        return fail(in, "inner dims %lld and %lld", (long long)K, (long long)KB);
    if (alloc_value(in, y, 2, (int64_t[]){ M, N }))
        return -1;
    for (int64_t i = 0; i < M && !in->dry; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += a->d[ta ? k * M + i : i * K + k] * b->d[tb ? j * K + k : k * N + j];
            double cv = 0.0;
            if (c) { /* C broadcasts to (M, N) */
                int64_t cr = c->ndim == 2 ? c->shape[0] : 1,
                        cc = c->ndim ? c->shape[c->ndim - 1] : 1;
                cv = c->d[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
            }
            y->d[i * N + j] = alpha * s + beta * cv;
        }
    in->flops += 2.0 * (double)(M * N) * (double)K;
    return 0;
}

/* A (..., M, K) times B (K, N), or both with the same leading dims. */
static int matmul(interp *in, const onnx_ref_value *a, const onnx_ref_value *b, onnx_ref_value *y)
{
    if (a->ndim < 2 || b->ndim < 2 || (b->ndim > 2 && b->ndim != a->ndim))
        return fail(in, "only (..., M, K) x (K, N) or equal batch dims have a reference");
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t N = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != K)
        return fail(in, "inner dims %lld and %lld", (long long)K, (long long)b->shape[b->ndim - 2]);
    int64_t shape[ONNX_REF_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = N;
    size_t mk = (size_t)(M * K), kn = (size_t)(K * N);
    size_t batch = a->n / (mk ? mk : 1);
    if (b->ndim > 2 && b->n / (kn ? kn : 1) != batch)
        return fail(in, "batch dims differ");
    if (alloc_value(in, y, a->ndim, shape))
        return -1;
    for (size_t p = 0; p < batch && !in->dry; p++) {
        const double *ap = a->d + p * (size_t)(M * K);
        const double *bp = b->d + (b->ndim > 2 ? p * (size_t)(K * N) : 0);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0.0;
                for (int64_t k = 0; k < K; k++)
                    s += ap[i * K + k] * bp[k * N + j];
                y->d[p * (size_t)(M * N) + (size_t)(i * N + j)] = s;
            }
    }
    in->flops += 2.0 * (double)batch * (double)(M * N) * (double)K;
    return 0;
}

/* ---- Softmax ----------------------------------------------------------------------- */

static int softmax(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int opset13 = clnet_onnx_model_graph(in->om)->opset >= 13;
    int64_t axis = attr_i(in, "axis", opset13 ? -1 : 1);
    if (axis < 0)
        axis += x->ndim;
    if (axis < 0 || axis >= x->ndim)
        return fail(in, "axis out of range");
    /* opset 13+: along one axis; before: over the flattened dims from axis on. */
    size_t len = 1, outer = 1, inner = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (i < axis)
            outer *= (size_t)x->shape[i];
        else if (i == axis || !opset13)
            len *= (size_t)x->shape[i];
        else
            inner *= (size_t)x->shape[i];
    }
    int logsm = !strcmp(in->node->op_type, "LogSoftmax");
    if (alloc_value(in, y, x->ndim, x->shape))
        return -1;
    for (size_t o = 0; o < outer; o++)
        for (size_t q = 0; q < inner; q++) {
            const double *xp = x->d + o * len * inner + q;
            double *yp = y->d + o * len * inner + q, mx = -INFINITY, s = 0.0;
            for (size_t k = 0; k < len; k++)
                mx = fmax(mx, xp[k * inner]);
            for (size_t k = 0; k < len; k++)
                s += exp(xp[k * inner] - mx);
            for (size_t k = 0; k < len; k++)
                yp[k * inner] = logsm ? xp[k * inner] - mx - log(s) : exp(xp[k * inner] - mx) / s;
        }
    return 0;
}

/* ---- Shapes ------------------------------------------------------------------------- */

static int copy_as(interp *in, const onnx_ref_value *x, int ndim, const int64_t *shape,
                   onnx_ref_value *y)
{
    if (numel(ndim, shape) != x->n)
        return fail(in, "%zu values do not make the new shape", x->n);
    if (alloc_value(in, y, ndim, shape))
        return -1;
    memcpy(y->d, x->d, x->n * sizeof *x->d);
    return 0;
}

static int reshape(interp *in, const onnx_ref_value *x, const onnx_ref_value *s, onnx_ref_value *y)
{
    if (!s || s->ndim != 1 || s->n > ONNX_REF_MAX_DIMS)
        return fail(in, "the shape must be a vector");
    int64_t shape[ONNX_REF_MAX_DIMS];
    int infer = -1, allowzero = (int)attr_i(in, "allowzero", 0);
    size_t known = 1;
    for (size_t i = 0; i < s->n; i++) {
        shape[i] = (int64_t)s->d[i];
        if (shape[i] == 0 && !allowzero)
            shape[i] = (int)i < x->ndim ? x->shape[i] : 0;
        if (shape[i] == -1)
            infer = (int)i;
        else
            known *= (size_t)shape[i];
    }
    if (infer >= 0)
        shape[infer] = known ? (int64_t)(x->n / known) : 0;
    return copy_as(in, x, (int)s->n, shape, y);
}

static int flatten(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int64_t axis = attr_i(in, "axis", 1);
    if (axis < 0)
        axis += x->ndim;
    int64_t a = 1;
    for (int i = 0; i < axis && i < x->ndim; i++)
        a *= x->shape[i];
    return copy_as(in, x, 2, (int64_t[]){ a, a ? (int64_t)x->n / a : 0 }, y);
}

static int transpose(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int64_t perm[ONNX_REF_MAX_DIMS], shape[ONNX_REF_MAX_DIMS], stride[ONNX_REF_MAX_DIMS];
    if (attr_ints(in, "perm", perm, ONNX_REF_MAX_DIMS) != x->ndim)
        for (int i = 0; i < x->ndim; i++)
            perm[i] = x->ndim - 1 - i;
    size_t st = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = (int64_t)st;
        st *= (size_t)x->shape[i];
    }
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim)
            return fail(in, "perm out of range");
        shape[i] = x->shape[perm[i]];
    }
    if (alloc_value(in, y, x->ndim, shape))
        return -1;
    for (size_t i = 0; i < y->n; i++) {
        size_t rest = i, src = 0;
        for (int d = x->ndim - 1; d >= 0; d--) {
            src += (rest % (size_t)shape[d]) * (size_t)stride[perm[d]];
            rest /= (size_t)shape[d];
        }
        y->d[i] = x->d[src];
    }
    return 0;
}

static int concat(interp *in, onnx_ref_value *y)
{
    int bad = 0;
    const onnx_ref_value *first = input(in, 0, &bad);
    if (bad || !first)
        return bad ? -1 : fail(in, "no inputs");
    int64_t axis = attr_i(in, "axis", 0), shape[ONNX_REF_MAX_DIMS];
    if (axis < 0)
        axis += first->ndim;
    if (axis < 0 || axis >= first->ndim)
        return fail(in, "axis out of range");
    memcpy(shape, first->shape, sizeof shape);
    shape[axis] = 0;
    for (size_t k = 0; k < in->node->n_inputs; k++) {
        const onnx_ref_value *v = input(in, k, &bad);
        if (bad)
            return -1;
        if (!v || v->ndim != first->ndim)
            return fail(in, "inputs of different ranks");
        for (int i = 0; i < v->ndim; i++)
            if (i != axis && v->shape[i] != first->shape[i])
                return fail(in, "inputs differ off the axis");
        shape[axis] += v->shape[axis];
    }
    if (alloc_value(in, y, first->ndim, shape))
        return -1;
    size_t outer = 1, after = 1, at = 0;
    for (int i = 0; i < axis; i++)
        outer *= (size_t)shape[i];
    for (int i = (int)axis + 1; i < first->ndim; i++)
        after *= (size_t)shape[i];
    for (size_t k = 0; k < in->node->n_inputs; k++) {
        const onnx_ref_value *v = input(in, k, &bad);
        size_t part = (size_t)v->shape[axis] * after;
        for (size_t o = 0; o < outer; o++)
            memcpy(y->d + o * (size_t)shape[axis] * after + at, v->d + o * part,
                   part * sizeof *v->d);
        at += part;
    }
    return 0;
}

/* The axes of Unsqueeze/Squeeze: an attribute (opset < 13) or input 1. */
static int axes_of(interp *in, int64_t *axes, int *bad)
{
    int n = attr_ints(in, "axes", axes, ONNX_REF_MAX_DIMS);
    const onnx_ref_value *a = input(in, 1, bad);
    if (a)
        for (n = 0; n < (int)a->n && n < ONNX_REF_MAX_DIMS; n++)
            axes[n] = (int64_t)a->d[n];
    return n;
}

static int unsqueeze(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int64_t axes[ONNX_REF_MAX_DIMS], shape[ONNX_REF_MAX_DIMS];
    int bad = 0, na = axes_of(in, axes, &bad), nd = x->ndim + (na > 0 ? na : 0);
    if (bad || na < 1 || nd > ONNX_REF_MAX_DIMS)
        return bad ? -1 : fail(in, "bad axes");
    char is_new[ONNX_REF_MAX_DIMS] = { 0 };
    for (int i = 0; i < na; i++)
        is_new[axes[i] < 0 ? axes[i] + nd : axes[i]] = 1;
    for (int i = 0, k = 0; i < nd; i++)
        shape[i] = is_new[i] ? 1 : x->shape[k++];
    return copy_as(in, x, nd, shape, y);
}

static int squeeze(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int64_t axes[ONNX_REF_MAX_DIMS], shape[ONNX_REF_MAX_DIMS];
    int bad = 0, na = axes_of(in, axes, &bad), nd = 0;
    if (bad)
        return -1;
    char drop[ONNX_REF_MAX_DIMS] = { 0 };
    for (int i = 0; i < x->ndim; i++)
        drop[i] = na < 0 && x->shape[i] == 1;
    for (int i = 0; i < na; i++)
        drop[axes[i] < 0 ? axes[i] + x->ndim : axes[i]] = 1;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i])
            shape[nd++] = x->shape[i];
    return copy_as(in, x, nd, shape, y);
}

static int shape_op(interp *in, const onnx_ref_value *x, onnx_ref_value *y)
{
    int64_t start = attr_i(in, "start", 0), end = attr_i(in, "end", x->ndim);
    start = start < 0 ? start + x->ndim : start;
    end = end < 0 ? end + x->ndim : end > x->ndim ? x->ndim : end;
    int64_t len = end > start ? end - start : 0;
    if (alloc_value(in, y, 1, &len))
        return -1;
    for (int64_t i = 0; i < len; i++)
        y->d[i] = (double)x->shape[start + i];
    return 0;
}

static int gather(interp *in, const onnx_ref_value *x, const onnx_ref_value *idx, onnx_ref_value *y)
{
    int64_t axis = attr_i(in, "axis", 0), shape[ONNX_REF_MAX_DIMS];
    if (axis < 0)
        axis += x->ndim;
    if (!idx || axis < 0 || axis >= x->ndim || x->ndim - 1 + idx->ndim > ONNX_REF_MAX_DIMS)
        return fail(in, "bad axis or indices");
    int nd = 0;
    for (int i = 0; i < axis; i++)
        shape[nd++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++)
        shape[nd++] = idx->shape[i];
    for (int i = (int)axis + 1; i < x->ndim; i++)
        shape[nd++] = x->shape[i];
    if (alloc_value(in, y, nd, shape))
        return -1;
    size_t outer = 1, after = 1, ext = (size_t)x->shape[axis];
    for (int i = 0; i < axis; i++)
        outer *= (size_t)x->shape[i];
    for (int i = (int)axis + 1; i < x->ndim; i++)
        after *= (size_t)x->shape[i];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < idx->n; j++) {
            int64_t k = (int64_t)idx->d[j];
            k = k < 0 ? k + (int64_t)ext : k;
            if (k < 0 || k >= (int64_t)ext) {
                free(y->d);
                y->d = NULL;
                return fail(in, "index %lld out of range", (long long)idx->d[j]);
            }
            memcpy(y->d + (o * idx->n + j) * after, x->d + (o * ext + (size_t)k) * after,
                   after * sizeof *y->d);
        }
    return 0;
}

/* x broadcast to the shape s: x times ones of that shape. */
static int expand(interp *in, const onnx_ref_value *x, const onnx_ref_value *s, onnx_ref_value *y)
{
    if (!s || s->ndim != 1 || s->n > ONNX_REF_MAX_DIMS)
        return fail(in, "the shape must be a vector");
    onnx_ref_value ones = { .ndim = (int)s->n };
    for (size_t i = 0; i < s->n; i++)
        ones.shape[i] = (int64_t)s->d[i];
    if (alloc_value(in, &ones, ones.ndim, ones.shape))
        return -1;
    for (size_t i = 0; i < ones.n; i++)
        ones.d[i] = 1.0;
    const clnet_onnx_node *node = in->node;
    clnet_onnx_node mul = *node;
    mul.op_type = "Mul";
    in->node = &mul;
    int rc = binary(in, x, &ones, y);
    in->node = node;
    free(ones.d);
    return rc;
}

static int constant(interp *in, onnx_ref_value *y)
{
    const clnet_onnx_attr *a = in->node->n_attrs ? &in->node->attrs[0] : NULL;
    if (!a)
        return fail(in, "no value");
    if (a->type == CLNET_ONNX_ATTR_TENSOR) {
        if (alloc_value(in, y, a->t->ndim, a->t->shape))
            return -1;
        for (size_t k = 0; k < a->t->numel; k++)
            y->d[k] = a->t->f32 ? (double)a->t->f32[k] : (double)a->t->i64[k];
        return 0;
    }
    int scalar = a->type == CLNET_ONNX_ATTR_FLOAT || a->type == CLNET_ONNX_ATTR_INT;
    int64_t len = scalar ? 1 : (int64_t)a->count;
    if (alloc_value(in, y, scalar ? 0 : 1, &len))
        return -1;
    for (int64_t k = 0; k < len; k++)
        y->d[k] = a->type == CLNET_ONNX_ATTR_FLOAT    ? a->f
                  : a->type == CLNET_ONNX_ATTR_INT    ? (double)a->i
                  : a->type == CLNET_ONNX_ATTR_FLOATS ? a->floats[k]
                                                      : (double)a->ints[k];
    return 0;
}

/* ---- The graph -------------------------------------------------------------------- */

static int eval_node(interp *in, onnx_ref_value *y)
{
    const char *op = in->node->op_type;
    int bad = 0;
    if (in->node->domain[0] && strcmp(in->node->domain, "ai.onnx"))
        return fail(in, "no float64 reference for domain %s", in->node->domain);
    if (!strcmp(op, "Constant"))
        return constant(in, y);
    if (!strcmp(op, "Conv"))
        return conv(in, y);
    if (!strcmp(op, "Gemm"))
        return gemm(in, y);
    if (!strcmp(op, "BatchNormalization"))
        return batchnorm(in, y);
    if (!strcmp(op, "Concat"))
        return concat(in, y);
    const onnx_ref_value *x = input(in, 0, &bad), *x1 = input(in, 1, &bad);
    if (bad)
        return -1;
    if (!x)
        return fail(in, "no input");
    static const char *const unaries[] = { "Relu",      "LeakyRelu", "Sigmoid",  "Tanh",
                                           "HardSwish", "Clip",      "Identity", "Dropout" };
    for (size_t i = 0; i < sizeof unaries / sizeof unaries[0]; i++)
        if (!strcmp(op, unaries[i]))
            return unary(in, x, y);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return x1 ? binary(in, x, x1, y) : fail(in, "needs two inputs");
    if (!strcmp(op, "MatMul"))
        return x1 ? matmul(in, x, x1, y) : fail(in, "needs two inputs");
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return pool(in, x, y);
    if (!strcmp(op, "GlobalAveragePool"))
        return global_avgpool(in, x, y);
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return softmax(in, x, y);
    if (!strcmp(op, "Flatten"))
        return flatten(in, x, y);
    if (!strcmp(op, "Reshape"))
        return reshape(in, x, x1, y);
    if (!strcmp(op, "Transpose"))
        return transpose(in, x, y);
    if (!strcmp(op, "Unsqueeze"))
        return unsqueeze(in, x, y);
    if (!strcmp(op, "Squeeze"))
        return squeeze(in, x, y);
    if (!strcmp(op, "Shape"))
        return shape_op(in, x, y);
    if (!strcmp(op, "Gather"))
        return gather(in, x, x1, y);
    if (!strcmp(op, "Expand"))
        return expand(in, x, x1, y);
    return fail(in, "no float64 reference for this op");
}

static void drop_dead(interp *in, size_t node)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->e[i]->v.d && in->e[i]->last <= node) {
            free(in->e[i]->v.d);
            in->e[i]->v.d = NULL;
        }
}

static int run(const clnet_onnx_model *om, int nx, const onnx_ref_value *x, onnx_ref_value *out,
               double *flops, int dry, char *err, size_t err_size)
{
    interp in = {
        .om = om, .g = clnet_onnx_model_graph(om), .dry = dry, .err = err, .err_size = err_size
    };
    int rc = 0;
    if (!in.g || nx != (int)in.g->n_inputs)
        rc = fail(&in, "%d inputs given, the graph has %zu", nx, in.g ? in.g->n_inputs : 0);
    for (int i = 0; !rc && i < nx; i++) {
        onnx_ref_value v;
        rc = alloc_value(&in, &v, x[i].ndim, x[i].shape);
        if (!rc) {
            if (x[i].d)
                memcpy(v.d, x[i].d, v.n * sizeof *v.d);
            rc = put(&in, in.g->inputs[i].name, &v);
        }
    }
    for (size_t i = 0; !rc && i < in.g->n_nodes; i++) {
        in.node = &in.g->nodes[i];
        onnx_ref_value y = { 0 };
        rc = eval_node(&in, &y);
        if (!rc && in.node->n_outputs && in.node->outputs[0][0])
            rc = put(&in, in.node->outputs[0], &y);
        else
            free(y.d);
        drop_dead(&in, i);
    }
    in.node = NULL;
    for (size_t k = 0; !rc && out && k < in.g->n_outputs; k++) {
        const onnx_ref_value *v = get(&in, in.g->outputs[k].name);
        rc = v ? 0 : -1;
        if (!rc) {
            out[k] = *v;
            out[k].d = malloc((v->n ? v->n : 1) * sizeof *v->d);
            if (!out[k].d)
                rc = fail(&in, "out of memory");
            else
                memcpy(out[k].d, v->d, v->n * sizeof *v->d);
        }
        if (rc)
            for (size_t j = 0; j < k; j++) {
                free(out[j].d);
                out[j].d = NULL;
            }
    }
    for (size_t i = 0; i < in.n; i++) {
        free(in.e[i]->v.d);
        free(in.e[i]);
    }
    free(in.e);
    if (flops)
        *flops = in.flops;
    return rc;
}

int onnx_ref_run(const clnet_onnx_model *om, int nx, const onnx_ref_value *x, onnx_ref_value *out,
                 double *flops, char *err, size_t err_size)
{
    return run(om, nx, x, out, flops, 0, err, err_size);
}

int onnx_ref_flops(const clnet_onnx_model *om, int nx, const onnx_ref_value *x, double *flops,
                   char *err, size_t err_size)
{
    return run(om, nx, x, NULL, flops, 1, err, err_size);
}
