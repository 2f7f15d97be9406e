/* clnet tests — layers and models: directional gradient checks of every
 * layer on the device, shape inference errors, a model that learns, save and
 * load, frozen layers and determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/nn.h"
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
    clnet_tensor *tv = tensor_from(ctx, 2, (int64_t[]){ batch, (int64_t)(nout / (size_t)batch) }, v);
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
        float *t0 = malloc(n * sizeof *t0), *dir = malloc(n * sizeof *dir), *an = malloc(n * sizeof *an),
              *tp = malloc(n * sizeof *tp);
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
    ck_assert_msg(directional(ctx, m, batch, seed, label, 1.0) == 0, "%s: gradient check failed", label);
}

static clnet_model *model_new(clnet_context *ctx, int ndim, const int64_t *shape)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, ndim, shape, 7, &m));
    return m;
}

static void compile(clnet_context *ctx, clnet_model *m, clnet_loss loss)
{
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = loss;
    CK_OK(ctx, clnet_model_compile(m, &p));
}

START_TEST(dense_gradients)
{
    clnet_context *ctx = test_context();
    const clnet_activation acts[] = { CLNET_ACT_NONE, CLNET_ACT_RELU, CLNET_ACT_LEAKY_RELU,
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
                          sep ? "conv + Activation(softmax) over channels" : "conv(softmax) over channels");
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
        check_directional(ctx, m, 2, 21 + (uint64_t)avg, avg ? "conv same + avgpool" : "conv + maxpool");
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
    CK_OK(ctx, clnet_model_add_batchnorm(m, 0.1f, 1e-3f));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_LEAKY_RELU, 0.2f));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_batchnorm(m, 0.1f, 1e-3f));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    compile(ctx, m, CLNET_LOSS_MSE);
    check_directional(ctx, m, 4, 31, "reshape > batchnorm > leaky relu > flatten > batchnorm > dense");
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
        ck_assert_ptr_eq(h, m->acts[2]);
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

START_TEST(mismatches_name_the_layer)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 1, 4, 4 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layer 0 (Dense): input (batch, 1, 4, 4)", clnet_model_add_dense(m, &d));
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.kernel_h = c.kernel_w = 5;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "5x5 kernel", clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "layer 1 (MaxPool2D)",
             clnet_model_add_maxpool2d(m, &CLNET_POOL2D_LAYER_PARAMS_DEFAULT));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "Reshape", clnet_model_add_reshape(m, 2, (int64_t[]){ 3, 5 }));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "units", clnet_model_add_dense(m, &(clnet_dense_params){ 0 }));
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
    ck_assert_msg(fabs(right / (double)N - acc) < 1e-9, "predict %d/%d vs evaluate %g", right, N, acc);
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
    CK_FAILS(ctx, CLNET_ERR_IO, "clnet_model_load", clnet_model_load(b, "/nonexistent/w.safetensors"));
    unlink(path);
    unlink(other);
    clnet_model_destroy(small);
    clnet_model_destroy(a);
    clnet_model_destroy(b);
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
    return s;
}
