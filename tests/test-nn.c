/* clnet tests — layers and models: directional gradient checks of every
 * layer on the device, shape inference errors, a model that learns, save and
 * load, frozen layers and determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/callbacks.h"
#include "clnet/nn.h"
#include "clnet/safetensors.h"
#include "clnet/version.h"
#include "harness.h"
#include "nn/nn_impl.h"

/* ---- Directional derivative checks (docs/testing.md, directional checks) ----------- */

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* <v, model(x)> at the logits, in float64. */
static double project(clnet_context *ctx, clnet_model *m, const clnet_tensor *x, const float *v,
                      size_t n, float *buf)
{
    const clnet_tensor *logits;
    CK_OK(ctx, clnet_model_forward(m, x, 1, NULL, &logits));
    download(ctx, logits, buf, n);
    return dot(v, buf, n);
}

/* Compares <J^T v, u> (one backward) with the central difference of
 * <v, f> along u, for the input and for every parameter. The forward in
 * training mode redraws dropout masks, so models with dropout are not
 * checked here. */
static int directional(clnet_context *ctx, clnet_model *m, int64_t batch, uint64_t seed,
                       const char *label, double perturb)
{
    int failures = 0;
    size_t nin = (size_t)batch;
    for (int i = 0; i < m->in_ndim; i++)
        nin *= (size_t)m->in_shape[i];
    int64_t xs[CLNET_MAX_DIMS];
    xs[0] = batch;
    memcpy(xs + 1, m->in_shape, (size_t)m->in_ndim * sizeof *xs);
    float *x = malloc(nin * sizeof *x), *u = malloc(nin * sizeof *u), *g = malloc(nin * sizeof *g);
    fill_uniform(x, nin, -1, 1, &seed);
    clnet_tensor *tx = tensor_from(ctx, m->in_ndim + 1, xs, x);
    const clnet_tensor *logits;
    CK_OK(ctx, clnet_model_forward(m, tx, 1, NULL, &logits));
    size_t nout = clnet_tensor_numel(logits);
    float *v = malloc(nout * sizeof *v), *buf = malloc(nout * sizeof *buf);
    fill_uniform(v, nout, -1, 1, &seed);
    clnet_tensor *tv =
        tensor_from(ctx, 2, (int64_t[]){ batch, (int64_t)(nout / (size_t)batch) }, v);
    const clnet_tensor *dx;
    CK_OK(ctx, clnet_model_backward(m, tv, &dx));
    download(ctx, dx, g, nin);
    /* Direction for x; every parameter gets its own direction below. */
    int nchecks = 1;
    for (int l = 0; l < m->nlayers; l++)
        for (int k = 0; k < m->layers[l]->nparams; k++)
            nchecks += m->layers[l]->params[k].grad != NULL;
    for (int c = 0; c < nchecks; c++) {
        clnet_tensor *target = tx, *grad_t = NULL;
        int seen = 1;
        for (int l = 0; l < m->nlayers && c > 0; l++)
            for (int k = 0; k < m->layers[l]->nparams; k++)
                if (m->layers[l]->params[k].grad && seen++ == c) {
                    target = m->layers[l]->params[k].value;
                    grad_t = m->layers[l]->params[k].grad;
                }
        size_t n = clnet_tensor_numel(target);
        float *t0 = malloc(n * sizeof *t0), *dir = malloc(n * sizeof *dir),
              *an = malloc(n * sizeof *an), *tp = malloc(n * sizeof *tp);
        download(ctx, target, t0, n);
        if (grad_t)
            download(ctx, grad_t, an, n);
        else
            memcpy(an, g, n * sizeof *an);
        fill_uniform(dir, n, -1, 1, &seed);
        double inf = 0;
        for (size_t i = 0; i < n; i++)
            inf = fmax(inf, fabs(t0[i]));
        double h = 4.9e-3 * fmax(1.0, inf), analytic = perturb * dot(an, dir, n), numeric = 0;
        int ok = 0;
        /* A step that moves a max-pool window across a tie bends the
         * difference quotient: retry with smaller steps (a wrong gradient
         * disagrees at every step). */
        for (int attempt = 0; attempt < 3 && !ok; attempt++, h /= 4) {
            for (size_t i = 0; i < n; i++)
                tp[i] = (float)(t0[i] + h * dir[i]);
            CK_OK(ctx, clnet_tensor_upload(target, tp, n * sizeof *tp));
            double plus = project(ctx, m, tx, v, nout, buf);
            for (size_t i = 0; i < n; i++)
                tp[i] = (float)(t0[i] - h * dir[i]);
            CK_OK(ctx, clnet_tensor_upload(target, tp, n * sizeof *tp));
            double minus = project(ctx, m, tx, v, nout, buf);
            CK_OK(ctx, clnet_tensor_upload(target, t0, n * sizeof *t0));
            numeric = (plus - minus) / (2 * h);
            ok = fabs(numeric - analytic) <= 2e-3 * fmax(1.0, fabs(analytic));
        }
        if (!ok) {
            failures++;
            fprintf(stderr, "%s: check %d (%s): analytic %.6g, finite difference %.6g\n", label, c,
                    c ? "parameter" : "input", analytic, numeric);
        }
        free(t0);
        free(dir);
        free(an);
        free(tp);
    }
    clnet_tensor_destroy(tv);
    clnet_tensor_destroy(tx);
    free(x);
    free(u);
    free(g);
    free(v);
    free(buf);
    return failures;
}

static void check_directional(clnet_context *ctx, clnet_model *m, int64_t batch, uint64_t seed,
                              const char *label)
{
    ck_assert_msg(directional(ctx, m, batch, seed, label, 1.0) == 0, "%s: gradient check failed",
                  label);
}

static clnet_model *model_new(clnet_context *ctx, int ndim, const int64_t *shape)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, ndim, shape, 7, &m));
    return m;
}

static void compile(clnet_context *ctx, clnet_model *m, clnet_loss_kind loss)
{
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = loss;
    CK_OK(ctx, clnet_model_compile(m, &p));
}

START_TEST(dense_gradients)
{
    clnet_context *ctx = test_context();
    const clnet_activation acts[] = { CLNET_ACT_NONE,    CLNET_ACT_RELU, CLNET_ACT_LEAKY_RELU,
                                      CLNET_ACT_SIGMOID, CLNET_ACT_TANH, CLNET_ACT_SOFTMAX };
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        clnet_model *m = model_new(ctx, 1, (int64_t[]){ 7 });
        clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
        d.units = 5;
        d.activation = acts[a];
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        d.units = 3;
        d.activation = CLNET_ACT_NONE;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        compile(ctx, m, CLNET_LOSS_MSE);
        char label[64];
        snprintf(label, sizeof label, "dense with activation %d", (int)acts[a]);
        check_directional(ctx, m, 3, 11 + a, label);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Dense on (batch, steps, features), and softmax over a Conv2D's channels
 * (fused, and as an Activation layer) inside a model, so that its backward
 * runs: input and parameter gradients against finite differences. */
START_TEST(sequence_dense_and_channel_softmax_gradients)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 2, (int64_t[]){ 3, 4 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 5;
    d.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    d.units = 2;
    d.activation = CLNET_ACT_NONE;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    int64_t shape[CLNET_MAX_DIMS];
    ck_assert_int_eq(clnet_model_output_shape(m, shape), 2);
    ck_assert(shape[0] == 3 && shape[1] == 2);
    compile(ctx, m, CLNET_LOSS_MSE);
    check_directional(ctx, m, 2, 31, "dense on sequences");
    clnet_model_destroy(m);
    for (int sep = 0; sep < 2; sep++) {
        m = model_new(ctx, 3, (int64_t[]){ 2, 4, 3 });
        clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        c.filters = 3;
        c.padding = CLNET_PADDING_SAME;
        c.activation = sep ? CLNET_ACT_NONE : CLNET_ACT_SOFTMAX;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        if (sep)
            CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_SOFTMAX, 0));
        c.filters = 2;
        c.kernel_h = c.kernel_w = 1;
        c.activation = CLNET_ACT_NONE;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        CK_OK(ctx, clnet_model_add_flatten(m)); /* the check's dy is (batch, n) */
        d.units = 3;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        compile(ctx, m, CLNET_LOSS_MSE);
        check_directional(ctx, m, 2, 32 + (uint64_t)sep,
                          sep ? "conv + Activation(softmax) over channels"
                              : "conv(softmax) over channels");
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative control: a gradient 3% off must fail every check. */
START_TEST(directional_check_catches_a_wrong_gradient)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 5 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 3;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    ck_assert_int_eq(directional(ctx, m, 2, 3, "3% off (expected to fail)", 1.03), 3);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(conv_pool_flatten_gradients)
{
    clnet_context *ctx = test_context();
    for (int avg = 0; avg < 2; avg++) {
        clnet_model *m = model_new(ctx, 3, (int64_t[]){ 2, 9, 8 });
        clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        c.filters = 3;
        c.kernel_h = 3;
        c.kernel_w = 2;
        c.activation = CLNET_ACT_TANH;
        c.padding = avg ? CLNET_PADDING_SAME : CLNET_PADDING_VALID;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
        CK_OK(ctx, avg ? clnet_model_add_avgpool2d(m, &p) : clnet_model_add_maxpool2d(m, &p));
        CK_OK(ctx, clnet_model_add_flatten(m));
        clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
        d.units = 4;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        compile(ctx, m, CLNET_LOSS_MSE);
        check_directional(ctx, m, 2, 21 + (uint64_t)avg,
                          avg ? "conv same + avgpool" : "conv + maxpool");
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(transpose_conv_upsampling_gradients)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 2, 5, 4 });
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 3;
    c.kernel_h = 5;
    c.kernel_w = 3;
    c.stride_h = c.stride_w = 2;
    c.padding = CLNET_PADDING_SAME;
    c.activation = CLNET_ACT_SIGMOID;
    CK_OK(ctx, clnet_model_add_conv2d_transpose(m, &c));
    ck_assert_int_eq(m->layers[0]->out_shape[1], 10);
    ck_assert_int_eq(m->layers[0]->out_shape[2], 8);
    CK_OK(ctx, clnet_model_add_upsampling2d(m, 2, 1));
    ck_assert_int_eq(m->layers[1]->out_shape[1], 20);
    CK_OK(ctx, clnet_model_add_flatten(m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 3;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    check_directional(ctx, m, 2, 41, "conv2d transpose > upsampling > dense");
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(batchnorm_activation_reshape_gradients)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 12 });
    CK_OK(ctx, clnet_model_add_reshape(m, 3, (int64_t[]){ 3, 2, -1 }));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_LEAKY_RELU, 0.2f));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    compile(ctx, m, CLNET_LOSS_MSE);
    check_directional(ctx, m, 4, 31,
                      "reshape > batchnorm > leaky relu > flatten > batchnorm > dense");
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(recurrent_gradients)
{
    clnet_context *ctx = test_context();
    typedef clnet_status (*add_fn)(clnet_model *, const clnet_rnn_layer_params *);
    const add_fn adds[] = { clnet_model_add_simple_rnn, clnet_model_add_lstm, clnet_model_add_gru };
    const char *names[] = { "SimpleRNN stack", "LSTM stack", "GRU stack" };
    for (int k = 0; k < 3; k++) {
        clnet_model *m = model_new(ctx, 2, (int64_t[]){ 5, 3 });
        clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
        p.units = 4;
        p.return_sequences = 1;
        CK_OK(ctx, adds[k](m, &p));
        p.return_sequences = 0;
        p.return_state = 1;
        p.units = 3;
        CK_OK(ctx, adds[k](m, &p));
        clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
        d.units = 2;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        check_directional(ctx, m, 3, 51 + (uint64_t)k, names[k]);
        /* The second layer's final state is its output. */
        const clnet_tensor *h, *c;
        CK_OK(ctx, clnet_model_rnn_state(m, 1, &h, &c));
        const clnet_tensor *out1;
        CK_OK(ctx, clnet_model_node_tensor(m, 2, &out1));
        ck_assert_ptr_eq(h, out1);
        ck_assert(k == 1 ? c != NULL : c == NULL);
        CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "return_state", clnet_model_rnn_state(m, 0, &h, &c));
        clnet_model_destroy(m);
    }
    /* A recurrent layer after one without return_sequences is refused. */
    clnet_model *m = model_new(ctx, 2, (int64_t[]){ 5, 3 });
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 4;
    CK_OK(ctx, clnet_model_add_lstm(m, &p));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "return_sequences", clnet_model_add_lstm(m, &p));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Shapes, summary ------------------------------------------------------------------ */

static clnet_model *reference_cnn(clnet_context *ctx)
{
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 1, 28, 28 });
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 32;
    c.activation = CLNET_ACT_RELU;
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &p));
    c.filters = 64;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &p));
    CK_OK(ctx, clnet_model_add_flatten(m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 64;
    d.activation = CLNET_ACT_RELU;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

START_TEST(reference_cnn_shapes_and_summary)
{
    clnet_context *ctx = test_context();
    clnet_model *m = reference_cnn(ctx);
    int64_t out[CLNET_MAX_DIMS];
    ck_assert_int_eq(clnet_model_output_shape(m, out), 1);
    ck_assert_int_eq(out[0], 10);
    /* Keras: 320 + 18496 + 102464 + 650. */
    ck_assert_uint_eq(clnet_model_param_count(m), 121930);
    ck_assert_int_eq(m->layers[4]->out_shape[0], 1600);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CK_OK(ctx, clnet_model_summary(m, f));
    fclose(f);
    ck_assert_msg(strstr(text, "conv2d_2 (Conv2D)") && strstr(text, "(None, 64, 11, 11)") &&
                      strstr(text, "18496") && strstr(text, "Total params: 121930"),
                  "%s", text);
    free(text);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* NULL params mean the defaults: each layer added with NULL, and the model
 * compiled with NULL, matches the one built from the _DEFAULT macros. */
static clnet_model *defaults_model(clnet_context *ctx, int with_null)
{
    clnet_model *m;
    clnet_conv2d_layer_params cp = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    clnet_pool2d_layer_params pp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    clnet_dense_params dp = CLNET_DENSE_PARAMS_DEFAULT;
    clnet_compile_params kp = CLNET_COMPILE_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, 7, 7 }, 3, &m));
    CK_OK(ctx, clnet_model_add_conv2d(m, with_null ? NULL : &cp));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, with_null ? NULL : &pp));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, with_null ? NULL : &dp));
    /* The default loss (sparse categorical cross-entropy) wants a softmax. */
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_SOFTMAX, 0.0f));
    CK_OK(ctx, clnet_model_compile(m, with_null ? NULL : &kp));
    return m;
}

START_TEST(null_params_mean_the_defaults)
{
    clnet_context *ctx = test_context();
    clnet_model *a = defaults_model(ctx, 1), *b = defaults_model(ctx, 0);
    int64_t sa[CLNET_MAX_DIMS], sb[CLNET_MAX_DIMS];
    ck_assert_int_eq(clnet_model_output_shape(a, sa), 1);
    ck_assert_int_eq(clnet_model_output_shape(b, sb), 1);
    /* 3x3 filter (9 + 1), 7 -> 5 -> 2x2 pool -> 2, Dense(1) on 4 (4 + 1). */
    ck_assert_int_eq(sa[0], 1);
    ck_assert_int_eq(sa[0], sb[0]);
    ck_assert_uint_eq(clnet_model_param_count(a), 15);
    ck_assert_uint_eq(clnet_model_param_count(a), clnet_model_param_count(b));
    clnet_model_destroy(a);
    clnet_model_destroy(b);
    clnet_model *r;
    CK_OK(ctx, clnet_model_create(ctx, 2, (int64_t[]){ 4, 3 }, 3, &r));
    CK_OK(ctx, clnet_model_add_lstm(r, NULL));
    /* Batch norm takes the op's params: NULL is PyTorch's defaults. */
    CK_OK(ctx, clnet_model_add_batchnorm(r, NULL));
    const clnet_batchnorm_params *bn = &r->layers[r->nlayers - 1]->bn;
    ck_assert(bn->eps == 1e-5f && bn->momentum == 0.1f);
    CK_OK(ctx, clnet_model_add_batchnorm(
                   r, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f }));
    bn = &r->layers[r->nlayers - 1]->bn;
    ck_assert(bn->eps == 1e-3f && bn->momentum == 0.01f);
    ck_assert_int_eq(clnet_model_output_shape(r, sa), 1);
    ck_assert_int_eq(sa[0], 1); /* units 1, last step only */
    clnet_model_destroy(r);
    /* Callbacks: the schedule and early stopping take their defaults; a
     * checkpoint's defaults have no path. */
    clnet_lr_schedule_params lp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    lp.kind = CLNET_LR_CONSTANT;
    ck_assert(clnet_lr_schedule_at(NULL, 0.5, 3) == clnet_lr_schedule_at(&lp, 0.5, 3));
    ck_assert(clnet_lr_schedule_at(NULL, 0.5, 3) == 0.5);
    clnet_callback cb;
    CK_OK(ctx, clnet_callback_lr_schedule(ctx, NULL, &cb));
    clnet_callback_release(&cb);
    CK_OK(ctx, clnet_callback_early_stopping(ctx, NULL, &cb));
    clnet_callback_release(&cb);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "clnet_callback_checkpoint",
             clnet_callback_checkpoint(ctx, NULL, &cb));
    /* A loaded dataset is a view in one call. */
    float images[6] = { 0 };
    int32_t labels[3] = { 0 };
    clnet_dataset ds = {
        .count = 3, .rows = 1, .cols = 2, .classes = 2, .images = images, .labels = labels
    };
    clnet_dataset_view v = clnet_dataset_view_of(&ds);
    ck_assert(v.x == images && v.y == labels && v.count == 3);
    v = clnet_dataset_view_of(NULL);
    ck_assert(v.x == NULL && v.y == NULL && v.count == 0);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(mismatches_name_the_layer)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 1, 4, 4 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layer 0 (Dense): input (batch, 1, 4, 4)",
             clnet_model_add_dense(m, &d));
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.kernel_h = c.kernel_w = 5;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "5x5 kernel", clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layer 1 (MaxPool2D)",
             clnet_model_add_maxpool2d(m, &CLNET_POOL2D_LAYER_PARAMS_DEFAULT));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "Reshape", clnet_model_add_reshape(m, 2, (int64_t[]){ 3, 5 }));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "units",
             clnet_model_add_dense(m, &(clnet_dense_params){ 0 }));
    /* An input of the wrong shape names both. */
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    compile(ctx, m, CLNET_LOSS_MSE);
    clnet_tensor *x;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ 2, 1, 4, 5 }, &x));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "(batch, 1, 4, 4)", clnet_model_forward(m, x, 0, NULL, NULL));
    clnet_tensor_destroy(x);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Training ---------------------------------------------------------------------------- */

/* Two Gaussian blobs in 4-D, labels 0 and 1. */
static void blobs(int64_t n, float *x, int32_t *y, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 2);
        float c = y[i] ? 1.0f : -1.0f;
        fill_uniform(x + 4 * i, 4, -0.8f, 0.8f, &seed);
        for (int k = 0; k < 4; k++)
            x[4 * i + k] += c;
    }
}

static clnet_model *blob_model(clnet_context *ctx, uint64_t seed)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ 4 }, seed, &m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 8;
    d.activation = CLNET_ACT_RELU;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_dropout(m, 0.25f));
    d.units = 2;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.adam.lr = 0.02f;
    CK_OK(ctx, clnet_model_compile(m, &p));
    return m;
}

typedef struct losses {
    int n;
    double loss[8], acc[8];
} losses;

static void record(void *user, const clnet_progress *p)
{
    losses *l = user;
    if (p->end_of_epoch && l->n < 8) {
        l->loss[l->n] = p->loss;
        l->acc[l->n++] = p->accuracy;
    }
}

START_TEST(a_model_learns_separable_blobs)
{
    clnet_context *ctx = test_context();
    enum { N = 256 };
    static float x[4 * N];
    static int32_t y[N];
    blobs(N, x, y, 3);
    clnet_model *m = blob_model(ctx, 5);
    losses l = { 0 };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = 6;
    fp.batch_size = 33; /* a partial last batch */
    fp.progress = record;
    fp.progress_user = &l;
    clnet_dataset_view data = { x, y, N };
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(l.n, 6);
    ck_assert_msg(l.loss[5] < 0.5 * l.loss[0], "loss %g -> %g", l.loss[0], l.loss[5]);
    double loss, acc;
    CK_OK(ctx, clnet_model_evaluate(m, &data, 64, &loss, &acc));
    ck_assert_msg(acc > 0.97, "accuracy %g", acc);
    /* predict agrees with evaluate's accuracy. */
    float *prob = malloc(N * 2 * sizeof *prob);
    CK_OK(ctx, clnet_model_predict(m, x, N, 50, prob));
    int right = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(fabsf(prob[2 * i] + prob[2 * i + 1] - 1.0f) < 1e-5f);
        right += (prob[2 * i + 1] > prob[2 * i]) == (y[i] == 1);
    }
    ck_assert_msg(fabs(right / (double)N - acc) < 1e-9, "predict %d/%d vs evaluate %g", right, N,
                  acc);
    free(prob);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(training_is_deterministic)
{
    clnet_context *ctx = test_context();
    enum { N = 96 };
    static float x[4 * N];
    static int32_t y[N];
    blobs(N, x, y, 9);
    losses runs[2] = { { 0 }, { 0 } };
    for (int r = 0; r < 2; r++) {
        clnet_model *m = blob_model(ctx, 77);
        clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
        fp.epochs = 3;
        fp.batch_size = 16;
        fp.shuffle_seed = 5;
        fp.progress = record;
        fp.progress_user = &runs[r];
        clnet_dataset_view data = { x, y, N };
        CK_OK(ctx, clnet_model_fit(m, &fp, &data));
        clnet_model_destroy(m);
    }
    ck_assert_int_eq(memcmp(runs[0].loss, runs[1].loss, sizeof runs[0].loss), 0);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(frozen_layers_keep_their_weights)
{
    clnet_context *ctx = test_context();
    enum { N = 64 };
    static float x[4 * N];
    static int32_t y[N];
    blobs(N, x, y, 4);
    clnet_model *m = blob_model(ctx, 6);
    CK_OK(ctx, clnet_model_set_trainable(m, 0, 0));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer 9", clnet_model_set_trainable(m, 9, 0));
    float before[32], after[32], b2[16], a2[16];
    download(ctx, m->layers[0]->params[0].value, before, 32);
    download(ctx, m->layers[2]->params[0].value, b2, 16);
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    clnet_dataset_view data = { x, y, N };
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    download(ctx, m->layers[0]->params[0].value, after, 32);
    download(ctx, m->layers[2]->params[0].value, a2, 16);
    ck_assert_int_eq(memcmp(before, after, sizeof before), 0);
    ck_assert_int_ne(memcmp(b2, a2, sizeof b2), 0);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Weights ----------------------------------------------------------------------------- */

START_TEST(save_then_load_predicts_the_same)
{
    clnet_context *ctx = test_context();
    char path[] = "/tmp/clnet-nn-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    clnet_model *a = reference_cnn(ctx), *b = reference_cnn(ctx);
    compile(ctx, a, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    /* Different weights in b first, so a load that did nothing would show. */
    CK_OK(ctx, clnet_tensor_fill(b->layers[0]->params[0].value, 0.5));
    enum { N = 5 };
    static float x[N * 784], pa[N * 10], pb[N * 10];
    uint64_t s = 12;
    fill_uniform(x, N * 784, 0, 1, &s);
    CK_OK(ctx, clnet_model_save(a, path));
    CK_OK(ctx, clnet_model_load(b, path));
    CK_OK(ctx, clnet_model_predict(a, x, N, 2, pa));
    CK_OK(ctx, clnet_model_predict(b, x, N, 2, pb));
    ck_assert_int_eq(memcmp(pa, pb, sizeof pa), 0);
    /* A file from another model is refused and changes nothing. */
    clnet_model *small = blob_model(ctx, 1);
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layers.0.kernel", clnet_model_load(small, path));
    char other[] = "/tmp/clnet-nn-small-XXXXXX";
    fd = mkstemp(other);
    close(fd);
    CK_OK(ctx, clnet_model_save(small, other));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layers.0.kernel", clnet_model_load(b, other));
    CK_OK(ctx, clnet_model_predict(b, x, N, 2, pb));
    ck_assert_int_eq(memcmp(pa, pb, sizeof pa), 0);
    /* Truncated files are rejected cleanly. */
    ck_assert_int_eq(truncate(path, 100), 0);
    CK_FAILS(ctx, CLNET_ERR_FORMAT, "clnet_model_load", clnet_model_load(b, path));
    CK_FAILS(ctx, CLNET_ERR_IO, "clnet_model_load",
             clnet_model_load(b, "/nonexistent/w.safetensors"));
    unlink(path);
    unlink(other);
    clnet_model_destroy(small);
    clnet_model_destroy(a);
    clnet_model_destroy(b);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Parameters in memory, by layer and name (s3-nnextras) -------------------------- */

/* Dense(3 -> 2) then BatchNormalization: known weights set from the host give
 * the known output; the gradients a backward writes are dW = dy^T x and
 * db = sum dy; a gradient set from the host is what the step applies. */
START_TEST(params_and_grads_in_memory)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 3 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.optimizer = CLNET_OPTIMIZER_SGD;
    cp.sgd.lr = 0.5f;
    cp.loss = CLNET_LOSS_MSE;
    CK_OK(ctx, clnet_model_compile(m, &cp));
    int dense = -7, bn = -7;
    CK_OK(ctx, clnet_model_layer_index(m, "dense_1", &dense));
    CK_OK(ctx, clnet_model_layer_index(m, "batch_normalization_1", &bn));
    ck_assert_int_eq(dense, 0);
    ck_assert_int_eq(bn, 1);
    ck_assert_str_eq(clnet_model_layer_name(m, 1), "batch_normalization_1");
    ck_assert_ptr_null(clnet_model_layer_name(m, 2));
    const float w[6] = { 1, -2, 0.5f, 3, 0.25f, -1 }, b[2] = { 0.125f, -4 };
    CK_OK(ctx, clnet_model_set_param(m, dense, "kernel", 2, (int64_t[]){ 2, 3 }, w));
    CK_OK(ctx, clnet_model_set_param(m, dense, "bias", 1, (int64_t[]){ 2 }, b));
    float got[6];
    CK_OK(ctx, clnet_model_get_param(m, dense, "kernel", got, 6));
    ck_assert_int_eq(memcmp(got, w, sizeof w), 0);
    /* The borrowed tensor is the parameter itself. */
    clnet_tensor *kt;
    CK_OK(ctx, clnet_model_param(m, dense, "kernel", &kt));
    ck_assert_int_eq(clnet_tensor_dim(kt, 0), 2);
    ck_assert_int_eq(clnet_tensor_dim(kt, 1), 3);
    download(ctx, kt, got, 6);
    ck_assert_int_eq(memcmp(got, w, sizeof w), 0);
    /* Batch-norm's running statistics in inference: y = (z - mean) / sqrt(var + eps). */
    const float mean[2] = { 1, 2 }, var[2] = { 4, 0.25f };
    CK_OK(ctx, clnet_model_set_param(m, bn, "running_mean", 1, (int64_t[]){ 2 }, mean));
    CK_OK(ctx, clnet_model_set_param(m, bn, "running_var", 1, (int64_t[]){ 2 }, var));
    const float x[2 * 3] = { 1, 2, 3, -1, 0.5f, 2 };
    float y[4];
    CK_OK(ctx, clnet_model_predict(m, x, 2, 2, y));
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 2; o++) {
            double z = b[o];
            for (int i = 0; i < 3; i++)
                z += (double)w[o * 3 + i] * x[r * 3 + i];
            double want = (z - mean[o]) / sqrt((double)var[o] + 1e-3);
            ck_assert_msg(fabs(y[r * 2 + o] - want) <= 1e-5 * fmax(1, fabs(want)),
                          "y[%d][%d] = %g, want %g", r, o, y[r * 2 + o], want);
        }
    /* Gradients: Dense alone (the batch-norm frozen would still pass dy
     * through it scaled; use a model of the Dense layer only). */
    clnet_model *lin = model_new(ctx, 1, (int64_t[]){ 3 });
    CK_OK(ctx, clnet_model_add_dense(lin, &d));
    CK_OK(ctx, clnet_model_compile(lin, &cp));
    CK_OK(ctx, clnet_model_set_param(lin, 0, "kernel", 2, (int64_t[]){ 2, 3 }, w));
    CK_OK(ctx, clnet_model_set_param(lin, 0, "bias", 1, (int64_t[]){ 2 }, b));
    clnet_tensor *tx = tensor_from(ctx, 2, (int64_t[]){ 2, 3 }, x);
    const float dy[4] = { 1, -0.5f, 2, 0.25f };
    clnet_tensor *tdy = tensor_from(ctx, 2, (int64_t[]){ 2, 2 }, dy);
    CK_OK(ctx, clnet_model_forward(lin, tx, 1, NULL, NULL));
    CK_OK(ctx, clnet_model_backward(lin, tdy, NULL));
    float gw[6], gb[2];
    CK_OK(ctx, clnet_model_get_grad(lin, 0, "kernel", gw, 6));
    CK_OK(ctx, clnet_model_get_grad(lin, 0, "bias", gb, 2));
    for (int o = 0; o < 2; o++) {
        ck_assert_float_eq(gb[o], dy[o] + dy[2 + o]);
        for (int i = 0; i < 3; i++)
            ck_assert_float_eq(gw[o * 3 + i], dy[o] * x[i] + dy[2 + o] * x[3 + i]);
    }
    /* A gradient from the host is what SGD applies: w - lr g. */
    const float g[6] = { 2, 4, -8, 0.5f, 0, 1 };
    CK_OK(ctx, clnet_model_set_grad(lin, 0, "kernel", 2, (int64_t[]){ 2, 3 }, g));
    clnet_tensor *gt;
    CK_OK(ctx, clnet_model_grad(lin, 0, "bias", &gt));
    CK_OK(ctx, clnet_tensor_fill(gt, 0.0));
    CK_OK(ctx, clnet_model_step(lin));
    CK_OK(ctx, clnet_model_get_param(lin, 0, "kernel", got, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(got[i], w[i] - 0.5f * g[i]);
    CK_OK(ctx, clnet_model_get_param(lin, 0, "bias", got, 2));
    ck_assert_int_eq(memcmp(got, b, sizeof b), 0);
    clnet_tensor_destroy(tdy);
    clnet_tensor_destroy(tx);
    clnet_model_destroy(lin);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(params_in_memory_refuse_bad_arguments)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 3 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    float buf[8] = { 0 };
    clnet_tensor *t = (clnet_tensor *)1;
    int idx = 5;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no layer named \"dense_2\"",
             clnet_model_layer_index(m, "dense_2", &idx));
    ck_assert_int_eq(idx, -1);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer 2 outside [0, 2)",
             clnet_model_param(m, 2, "kernel", &t));
    ck_assert_ptr_null(t);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer -1 outside",
             clnet_model_get_param(m, -1, "bias", buf, 2));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no parameter \"weight\" (it has \"kernel\", \"bias\")",
             clnet_model_get_param(m, 0, "weight", buf, 6));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "(null)", clnet_model_get_param(m, 0, NULL, buf, 6));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "\"kernel\" is (2, 3), 6 floats; dst holds 5",
             clnet_model_get_param(m, 0, "kernel", buf, 5));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "is (2, 3); the data given is (3, 2) (transposed",
             clnet_model_set_param(m, 0, "kernel", 2, (int64_t[]){ 3, 2 }, buf));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "the data given is (6)",
             clnet_model_set_param(m, 0, "kernel", 1, (int64_t[]){ 6 }, buf));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "\"bias\" is (2)",
             clnet_model_set_grad(m, 0, "bias", 1, (int64_t[]){ 3 }, buf));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "\"running_var\" is not trained and has no gradient",
             clnet_model_get_grad(m, 1, "running_var", buf, 2));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "invalid argument",
             clnet_model_set_param(m, 0, "bias", 1, (int64_t[]){ 2 }, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "invalid argument",
             clnet_model_get_param(m, 0, "bias", NULL, 2));
    ck_assert_int_eq(clnet_model_param(NULL, 0, "bias", &t), CLNET_ERR_INVALID_ARG);
    /* Nothing changed on the failed sets. */
    CK_OK(ctx, clnet_model_grad(m, 1, "gamma", &t));
    ck_assert_ptr_nonnull(t);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* Each model its own name; every row of the summary, long names included,
 * as wide as its rules, so the parameter counts line up. */
START_TEST(summary_names_models_and_keeps_columns)
{
    clnet_context *ctx = test_context();
    clnet_model *a = model_new(ctx, 3, (int64_t[]){ 1, 6, 6 }),
                *b = model_new(ctx, 1, (int64_t[]){ 3 });
    ck_assert_str_eq(clnet_model_name(a), "sequential");
    ck_assert_str_eq(clnet_model_name(b), "sequential_1");
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 2;
    CK_OK(ctx, clnet_model_add_conv2d(a, &c));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   a, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    CK_OK(ctx, clnet_model_add_conv2d_transpose(a, &c));
    CK_OK(ctx, clnet_model_add_flatten(a));
    CK_OK(ctx, clnet_model_set_name(a, "generator"));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CK_OK(ctx, clnet_model_summary(a, f));
    fclose(f);
    ck_assert_msg(!strncmp(text, "Model: \"generator\"\n", 19), "%s", text);
    ck_assert_msg(strstr(text, "batch_normalization_1 (BatchNormalization)") &&
                      strstr(text, "conv2d_transpose_1 (Conv2DTranspose)"),
                  "%s", text);
    /* Every line after the first: a rule or a row, all of one width; a row's
     * count ends the line. */
    size_t width = 0;
    int rows = 0;
    for (char *line = strchr(text, '\n') + 1, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        *end = '\0';
        size_t n = (size_t)(end - line);
        if (line[0] == '_' && !width)
            width = n;
        if (strstr(line, "(None") || line[0] == '_' || line[0] == '=' ||
            !strncmp(line, " Layer", 6)) {
            ck_assert_msg(n == width, "line of %zu characters, rules of %zu:\n%s", n, width, text);
            rows += strstr(line, "(None") != NULL;
        }
    }
    ck_assert_int_eq(rows, 4);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "1 to 63", clnet_model_set_name(b, ""));
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[79] = '\0';
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "79 bytes", clnet_model_set_name(b, longname));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "byte 1", clnet_model_set_name(b, "a\nb"));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "quote", clnet_model_set_name(b, "a\"b"));
    ck_assert_str_eq(clnet_model_name(b), "sequential_1");
    free(text);
    clnet_model_destroy(a);
    clnet_model_destroy(b);
    clnet_context_destroy(ctx);
}
END_TEST

/* Keras' single bias: the directional check through a stack of each cell
 * (the bias's gradient included), Keras' parameter counts, and the same
 * outputs as the two-bias layer with bias_ih = bias and bias_hh = 0. */
START_TEST(recurrent_single_bias_gradients_and_counts)
{
    clnet_context *ctx = test_context();
    typedef clnet_status (*add_fn)(clnet_model *, const clnet_rnn_layer_params *);
    const add_fn adds[] = { clnet_model_add_simple_rnn, clnet_model_add_lstm };
    const char *names[] = { "single-bias SimpleRNN stack", "single-bias LSTM stack" };
    /* Keras: SimpleRNN(4) on 3 features: 4*3 + 4*4 + 4 = 32, then (3) on 4:
     * 12 + 9 + 3 = 24; LSTM: 4 * 32 = 128 and 4 * 24 = 96. */
    const size_t keras[2][2] = { { 32, 24 }, { 128, 96 } };
    for (int k = 0; k < 2; k++) {
        clnet_model *m = model_new(ctx, 2, (int64_t[]){ 5, 3 });
        clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
        p.units = 4;
        p.return_sequences = 1;
        p.single_bias = 1;
        p.unit_forget_bias = k == 1;
        CK_OK(ctx, adds[k](m, &p));
        p.return_sequences = 0;
        p.units = 3;
        CK_OK(ctx, adds[k](m, &p));
        clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
        d.units = 2;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        ck_assert_int_eq(m->layers[0]->nparams, 3);
        ck_assert_str_eq(m->layers[0]->params[2].name, "bias");
        ck_assert_uint_eq(clnet_model_param_count(m), keras[k][0] + keras[k][1] + 3 * 2 + 2);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CK_OK(ctx, clnet_model_summary(m, f));
        fclose(f);
        char want[64];
        snprintf(want, sizeof want, "%zu\n", keras[k][0]);
        ck_assert_msg(strstr(text, want), "%s", text);
        free(text);
        /* A zero bias would hide a bias that never reaches the cell: move it. */
        for (int l = 0; l < 2; l++) {
            clnet_tensor *b;
            CK_OK(ctx, clnet_model_param(m, l, "bias", &b));
            CK_OK(ctx, clnet_tensor_rand_uniform(b, 5, (uint64_t)l, -0.5f, 0.5f));
        }
        check_directional(ctx, m, 3, 61 + (uint64_t)k, names[k]);

        /* The two-bias twin: same seed, so the same weights. */
        clnet_model *t = model_new(ctx, 2, (int64_t[]){ 5, 3 });
        p.units = 4;
        p.return_sequences = 1;
        p.single_bias = 0;
        p.unit_forget_bias = 0;
        CK_OK(ctx, adds[k](t, &p));
        p.units = 3;
        p.return_sequences = 0;
        CK_OK(ctx, adds[k](t, &p));
        CK_OK(ctx, clnet_model_add_dense(t, &d));
        for (int l = 0; l < 3; l++)
            for (int q = 0; q < 2; q++) {
                const char *pn = l < 2 ? (q ? "weight_hh" : "weight_ih") : (q ? "bias" : "kernel");
                clnet_tensor *src, *dst;
                CK_OK(ctx, clnet_model_param(m, l, pn, &src));
                CK_OK(ctx, clnet_model_param(t, l, pn, &dst));
                CK_OK(ctx, clnet_tensor_copy(src, dst));
            }
        for (int l = 0; l < 2; l++) {
            clnet_tensor *src, *dih, *dhh;
            CK_OK(ctx, clnet_model_param(m, l, "bias", &src));
            CK_OK(ctx, clnet_model_param(t, l, "bias_ih", &dih));
            CK_OK(ctx, clnet_model_param(t, l, "bias_hh", &dhh));
            CK_OK(ctx, clnet_tensor_copy(src, dih));
            CK_OK(ctx, clnet_tensor_fill(dhh, 0.0));
        }
        enum { N = 2 };
        float x[N * 15], ym[N * 2], yt[N * 2];
        uint64_t seed = 9;
        fill_uniform(x, N * 15, -1, 1, &seed);
        CK_OK(ctx, clnet_model_predict(m, x, N, N, ym));
        CK_OK(ctx, clnet_model_predict(t, x, N, N, yt));
        for (int i = 0; i < N * 2; i++)
            ck_assert_msg(fabsf(ym[i] - yt[i]) <= 1e-6f, "%s: output %d: %g vs %g", names[k], i,
                          ym[i], yt[i]);
        clnet_model_destroy(t);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* unit_forget_bias sets the forget block, in both bias variants; what Keras
 * does not have is refused, with the reason. */
START_TEST(recurrent_layer_options)
{
    clnet_context *ctx = test_context();
    enum { H = 3 };
    for (int single = 0; single < 2; single++) {
        clnet_model *m = model_new(ctx, 2, (int64_t[]){ 5, 2 });
        clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
        p.units = H;
        p.single_bias = single;
        p.unit_forget_bias = 1;
        CK_OK(ctx, clnet_model_add_lstm(m, &p));
        float b[4 * H], bhh[4 * H];
        CK_OK(ctx, clnet_model_get_param(m, 0, single ? "bias" : "bias_ih", b, 4 * H));
        if (!single)
            CK_OK(ctx, clnet_model_get_param(m, 0, "bias_hh", bhh, 4 * H));
        float lim = 1.0f / sqrtf((float)H);
        for (int i = 0; i < 4 * H; i++) {
            int forget = i >= H && i < 2 * H;
            float sum = b[i] + (single ? 0.0f : bhh[i]);
            if (forget)
                ck_assert_msg(sum == 1.0f, "single %d: forget bias %d sums to %g", single, i, sum);
            else if (single)
                ck_assert_msg(b[i] == 0.0f, "single bias %d is %g, not 0", i, b[i]);
            else
                ck_assert_msg(fabsf(b[i]) <= lim && fabsf(bhh[i]) <= lim && b[i] != 0.0f,
                              "bias %d: %g, %g", i, b[i], bhh[i]);
        }
        /* The file's names and metadata, as docs/weights.md lists them. */
        char path[] = "/tmp/clnet-nn-rnn-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        CK_OK(ctx, clnet_model_save(m, path));
        clnet_safetensors *st;
        char err[256];
        ck_assert_int_eq(clnet_safetensors_load(path, &st, err, sizeof err), CLNET_OK);
        ck_assert_uint_eq(st->count, single ? 3 : 4);
        const char *names[2][4] = {
            { "layers.0.weight_ih", "layers.0.weight_hh", "layers.0.bias_ih", "layers.0.bias_hh" },
            { "layers.0.weight_ih", "layers.0.weight_hh", "layers.0.bias" }
        };
        for (int i = 0; i < (single ? 3 : 4); i++)
            ck_assert_msg(clnet_safetensors_find(st, names[single][i]), "no %s", names[single][i]);
        ck_assert_str_eq(clnet_safetensors_metadata(st, "format"), "pt");
        ck_assert_str_eq(clnet_safetensors_metadata(st, "clnet_version"), CLNET_VERSION_STRING);
        clnet_safetensors_free(st);
        unlink(path);
        clnet_model_destroy(m);
    }
    clnet_model *m = model_new(ctx, 2, (int64_t[]){ 5, 2 });
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    ck_assert(p.recurrent_dropout == 0.0f && !p.single_bias && !p.unit_forget_bias);
    p.units = 2;
    p.single_bias = 1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "reset_after", clnet_model_add_gru(m, &p));
    p.single_bias = 0;
    p.unit_forget_bias = 1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "LSTM only", clnet_model_add_gru(m, &p));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "LSTM only", clnet_model_add_simple_rnn(m, &p));
    p.unit_forget_bias = 0;
    p.recurrent_dropout = 0.25f;
    CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "recurrent_dropout 0.25", clnet_model_add_lstm(m, &p));
    ck_assert_int_eq(clnet_model_layer_count(m), 0);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_nn(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, directional_check_catches_a_wrong_gradient);
    tcase_add_test(tc, dense_gradients);
    tcase_add_test(tc, sequence_dense_and_channel_softmax_gradients);
    tcase_add_test(tc, conv_pool_flatten_gradients);
    tcase_add_test(tc, transpose_conv_upsampling_gradients);
    tcase_add_test(tc, recurrent_gradients);
    tcase_add_test(tc, batchnorm_activation_reshape_gradients);
    suite_add_tcase(s, tc);
    tc = tcase_create("models");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, reference_cnn_shapes_and_summary);
    tcase_add_test(tc, mismatches_name_the_layer);
    tcase_add_test(tc, a_model_learns_separable_blobs);
    tcase_add_test(tc, training_is_deterministic);
    tcase_add_test(tc, frozen_layers_keep_their_weights);
    tcase_add_test(tc, save_then_load_predicts_the_same);
    suite_add_tcase(s, tc);
    tc = tcase_create("extras");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, params_and_grads_in_memory);
    tcase_add_test(tc, params_in_memory_refuse_bad_arguments);
    tcase_add_test(tc, summary_names_models_and_keeps_columns);
    tcase_add_test(tc, recurrent_single_bias_gradients_and_counts);
    tcase_add_test(tc, recurrent_layer_options);
    tcase_add_test(tc, null_params_mean_the_defaults);
    suite_add_tcase(s, tc);
    return s;
}
