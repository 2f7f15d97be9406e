/* clnet-bench suite "cnn": the reference CNN (tools/models.c) as a whole: one
 * training step (forward, loss, backward, Adam) through
 * clnet_model_train_on_batch, and one inference forward, on device tensors
 * of random images and labels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "models.h"
#include "ref.h"

typedef struct cnn_shape {
    int batch, train, quick;
} cnn_shape;

static const cnn_shape shapes[] = { { 32, 1, 1 }, { 64, 1, 0 }, { 64, 0, 1 } };
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* The layers' FLOP per image, forward (2 per multiply-add): conv1 1->32 3x3
 * to 26x26, conv2 32->64 3x3 to 11x11, dense 1600->64, dense 64->10. */
#define CNN_FWD_FLOP_PER_IMAGE                                                                     \
    (2.0 * (32.0 * 1 * 9 * 26 * 26 + 64.0 * 32 * 9 * 11 * 11 + 1600.0 * 64 + 64.0 * 10))

static int cnn_list(int quick, bench_case *out, int max)
{
    int count = 0;
    for (size_t i = 0; i < NSHAPES && count < max; i++) {
        const cnn_shape *s = &shapes[i];
        if (quick && !s->quick)
            continue;
        bench_case *c = &out[count++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "cnn_%s_b%d", s->train ? "train" : "infer", s->batch);
        c->about = s->train ? "reference CNN training step (forward, loss, backward, Adam)"
                            : "reference CNN inference (forward to softmax)";
        c->quick = s->quick;
        /* Nominal: a training step counts 3 forwards (the forward, the data
         * and the weight gradients); elementwise work is not counted. */
        c->flops = (s->train ? 3.0 : 1.0) * CNN_FWD_FLOP_PER_IMAGE * s->batch;
        const int64_t p[8] = { s->batch, s->train };
        memcpy(c->p, p, sizeof p);
    }
    return count;
}

typedef struct cnn_state {
    clnet_context *ctx;
    int batch, train;
    clnet_model *m;
    clnet_tensor *x, *labels;
} cnn_state;

static void cnn_teardown(void *state)
{
    cnn_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->labels);
    clnet_tensor_destroy(s->x);
    clnet_model_destroy(s->m);
    free(s);
}

static clnet_status cnn_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    cnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    s->ctx = ctx;
    s->batch = (int)c->p[0];
    s->train = (int)c->p[1];
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT; /* Adam, sparse cross-entropy */
    clnet_status st = build_cnn(ctx, 1, &s->m);
    if (!st)
        st = clnet_model_compile(s->m, &cp);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ s->batch, 1, 28, 28 }, &s->x);
    if (!st) /* pixels in [0, 1), as Fashion-MNIST scaled */
        st = clnet_tensor_rand_uniform(s->x, 7, 0, 0.0f, 1.0f);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ s->batch }, &s->labels);
    if (!st)
        st = bench_upload_labels(s->labels, s->batch, 0x1abe1ull);
    if (st) {
        cnn_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status cnn_run(void *state)
{
    cnn_state *s = state;
    if (s->train) /* loss and accuracy not read: nothing waits */
        return clnet_model_train_on_batch(s->m, s->x, s->labels, NULL, NULL);
    return clnet_model_forward(s->m, s->x, 0, NULL, NULL);
}

/* ---- Checking: the logits of one forward on 2 images ---------------------
 * The model's weights (after the timed steps) are read back through the
 * public API (saved to a temporary safetensors file and parsed) and the
 * network is evaluated in float64 with tests/ref.c, together with a bound on
 * the float32 device's error, layer by layer. A conv or dense layer l sums
 * K_l products and the bias; in float32, in any order, its result errs by at
 * most g_l times the sum of the terms' magnitudes, g_l = 2 (K_l + 1) u
 * (docs/testing.md's GEMM/conv bound). An error e already in its input adds
 * |W| e. So, with a the float64 activations:
 *     e_l = |W_l| (e_(l-1) + g_l |a_(l-1)|) + g_l |b_l|,   e_0 = 0,
 * and relu and max pooling (1-Lipschitz) pass e on (pooling takes the
 * window's largest e). The logits must lie within e_L. */
#define CHECK_BATCH 2
#define U 0x1.0p-24

enum { P_K1, P_B1, P_K2, P_B2, P_K3, P_B3, P_K4, P_B4, NPARAMS };

static const bench_param params[NPARAMS] = {
    { "layers.0.kernel", 4, { 32, 1, 3, 3 } },  { "layers.0.bias", 1, { 32 } },
    { "layers.2.kernel", 4, { 64, 32, 3, 3 } }, { "layers.2.bias", 1, { 64 } },
    { "layers.5.kernel", 2, { 64, 1600 } },     { "layers.5.bias", 1, { 64 } },
    { "layers.6.kernel", 2, { 10, 64 } },       { "layers.6.bias", 1, { 10 } },
};

/* An activation (float64) and its error bound, n elements each. */
typedef struct act {
    double *a, *e;
    size_t n;
} act;

static clnet_status act_alloc(act *t, size_t n)
{
    t->a = malloc(n * sizeof *t->a);
    t->e = malloc(n * sizeof *t->e);
    t->n = n;
    return t->a && t->e ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
}

static void act_free(act *t)
{
    free(t->a);
    free(t->e);
    t->a = t->e = NULL;
}

/* A conv (c != NULL) or dense (b rows, in -> out) layer with parameters
 * k (kernel) and b (bias): replaces *t by the layer's output and bound. */
static clnet_status linear(const ref_conv2d *c, int rows, int in, int out, const bench_weights *w,
                           int k, act *t)
{
    int terms = c ? c->c * c->r * c->s : in, channels = c ? c->k : out;
    size_t n =
        c ? (size_t)c->n * c->k * ref_conv2d_out_h(c) * ref_conv2d_out_w(c) : (size_t)rows * out;
    double g = 2.0 * (terms + 1) * U;
    act y = { 0 };
    double *gb = malloc((size_t)channels * sizeof *gb);
    clnet_status st = act_alloc(&y, n);
    if (!st && !gb)
        st = CLNET_ERR_HOST_MEMORY;
    if (st) {
        act_free(&y);
        free(gb);
        return st;
    }
    for (int i = 0; i < channels; i++)
        gb[i] = g * w->abs[k + 1][i];
    for (size_t i = 0; i < t->n; i++) /* the input's bound, then its own roundings */
        t->e[i] += g * fabs(t->a[i]);
    if (c) {
        ref_conv2d_forward(c, t->a, w->p[k], w->p[k + 1], y.a);
        ref_conv2d_forward(c, t->e, w->abs[k], gb, y.e);
    } else {
        ref_gemm m = { .trans_b = 1,
                       .m = rows,
                       .n = out,
                       .k = in,
                       .lda = in,
                       .ldb = in,
                       .ldc = out,
                       .alpha = 1.0 };
        ref_gemm_forward(&m, t->a, w->p[k], y.a);
        ref_bias_forward(rows, out, 1, y.a, w->p[k + 1], y.a);
        ref_gemm_forward(&m, t->e, w->abs[k], y.e);
        ref_bias_forward(rows, out, 1, y.e, gb, y.e);
    }
    free(gb);
    act_free(t);
    *t = y;
    return CLNET_OK;
}

/* 2x2 max pooling of a (channels x h x h images) and of its bound. */
static clnet_status pool(int rows, int channels, int h, act *t)
{
    ref_pool2d p = {
        .n = rows, .c = channels, .h = h, .w = h, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2
    };
    int oh = ref_pool2d_out_h(&p);
    act y = { 0 };
    clnet_status st = act_alloc(&y, (size_t)rows * channels * oh * oh);
    if (st) {
        act_free(&y);
        return st;
    }
    ref_pool2d_max_forward(&p, t->a, y.a);
    ref_pool2d_max_forward(&p, t->e, y.e);
    act_free(t);
    *t = y;
    return CLNET_OK;
}

static void relu(act *t)
{
    ref_act_relu_forward(t->n, t->a, t->a);
}

/* The reference CNN in float64 on CHECK_BATCH images x: on success *t holds
 * the logits (b, 10) and their bounds. */
static clnet_status net_forward(const bench_weights *w, const float *x, act *t)
{
    const int b = CHECK_BATCH;
    ref_conv2d c1 = { .n = b,
                      .c = 1,
                      .h = 28,
                      .w = 28,
                      .k = 32,
                      .r = 3,
                      .s = 3,
                      .stride_h = 1,
                      .stride_w = 1,
                      .dil_h = 1,
                      .dil_w = 1 };
    ref_conv2d c2 = c1;
    c2.c = 32, c2.h = c2.w = 13, c2.k = 64;
    clnet_status st = act_alloc(t, (size_t)b * 28 * 28);
    if (!st) {
        for (size_t i = 0; i < t->n; i++)
            t->a[i] = x[i], t->e[i] = 0.0; /* the device holds x exactly */
    }
    if (!st && !(st = linear(&c1, 0, 0, 0, w, P_K1, t))) {
        relu(t);
        st = pool(b, 32, 26, t);
    }
    if (!st && !(st = linear(&c2, 0, 0, 0, w, P_K2, t))) {
        relu(t);
        st = pool(b, 64, 11, t); /* NCHW flattens to (b, 1600) as it lies */
    }
    if (!st && !(st = linear(NULL, b, 1600, 64, w, P_K3, t)))
        relu(t);
    if (!st)
        st = linear(NULL, b, 64, 10, w, P_K4, t);
    if (st)
        act_free(t);
    return st;
}

/* The bound above is rigorous but far from the typical error (K = 1600
 * terms that mostly cancel); docs/ops.md's normwise criterion,
 * ||got - ref|| / ||ref|| < 1e-5, catches smaller mistakes. */
#define REL_MAX 1e-5

static double normwise(const float *got, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : num == 0 ? 0 : INFINITY;
}

static clnet_status cnn_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                              bench_check *out)
{
    (void)c;
    (void)ref_cache; /* the weights differ per device after training: no sharing */
    cnn_state *s = state;
    float *logits = NULL, *x = NULL;
    bench_weights w;
    act ref = { 0 };
    clnet_status st = bench_model_logits(s->m, s->x, CHECK_BATCH, &logits, &x);
    if (!st && !(st = bench_weights_load(s->m, "cnn", params, NPARAMS, &w))) {
        st = net_forward(&w, x, &ref);
        bench_weights_free(&w);
    }
    if (!st) {
        if (inject_fault)
            logits[CHECK_BATCH * 10 / 2] += 1.0f;
        bench_check_begin(out, "fp64 forward, layered bound + normwise 1e-5");
        bench_check_span(out, logits, ref.a, ref.e, ref.n);
        double rel = normwise(logits, ref.a, ref.n);
        if (!(rel < REL_MAX) && !out->bad) { /* the whole output is wrong */
            out->bad = out->count;
            out->first_ref = ref.a[0];
            out->first_got = logits[0];
        }
        bench_check_end(out);
        snprintf(out->note, sizeof out->note,
                 "logits of images 0-%d: largest error %.2g of its bound; normwise %.2g, limit %g",
                 CHECK_BATCH - 1, out->max_ratio, rel, REL_MAX);
    }
    act_free(&ref);
    free(x);
    free(logits);
    return st;
}

const bench_suite bench_suite_cnn = {
    .name = "cnn",
    .about = "the reference CNN (tools/models.c): a training step with Adam, and inference",
    .list = cnn_list,
    .setup = cnn_setup,
    .run = cnn_run,
    .check = cnn_check,
    .teardown = cnn_teardown,
};
