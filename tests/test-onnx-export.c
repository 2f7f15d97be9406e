/* clnet tests — writing models as ONNX (suite "onnx-export"): small models
 * of every exported layer kind, on awkward shapes, saved with
 * clnet_model_save_onnx, read back by clnet's own reader and (where the
 * importer maps every op) imported and run: the outputs must match the
 * original model's within 1e-6 relative to the largest output. With
 * CLNET_ONNX_EXPORT_DIR set, each test also leaves NAME.onnx, NAME.in.npy
 * and NAME.out<k>.npy there, which tests/test-onnx-export-ort.py runs
 * through ONNX Runtime. Layers without an ONNX form must be refused by
 * name, writing nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "clnet/graph.h"
#include "clnet/npy.h"
#include "clnet/onnx.h"
#include "clnet/onnx_export.h"
#include "clnet/onnx_import.h"
#include "models.h"

/* The same float32 kernels run the same ops on both sides; only a changed
 * summation order (none expected) could differ. */
#define REL_MAX 1e-6

typedef clnet_model *(*builder)(clnet_context *ctx);

static clnet_dense_params dense(int units, clnet_activation act)
{
    clnet_dense_params p = CLNET_DENSE_PARAMS_DEFAULT;
    p.units = units;
    p.activation = act;
    return p;
}

static clnet_conv2d_layer_params conv(int filters, int k, int stride, clnet_padding pad,
                                      clnet_activation act)
{
    clnet_conv2d_layer_params p = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    p.filters = filters;
    p.kernel_h = p.kernel_w = k;
    p.stride_h = p.stride_w = stride;
    p.padding = pad;
    p.activation = act;
    return p;
}

/* Random running statistics and affine parameters for a BatchNormalization
 * layer of c channels (fresh ones are the identity). */
static void randomize_bn(clnet_context *ctx, clnet_model *m, int layer, int c)
{
    static const char *names[4] = { "gamma", "beta", "running_mean", "running_var" };
    uint64_t rng = 77;
    float v[128];
    int64_t shape[1] = { c };
    for (int p = 0; p < 4; p++) {
        fill_uniform(v, (size_t)c, p == 3 ? 0.5f : -1.0f, p == 3 ? 2.0f : 1.0f, &rng);
        CK_OK(ctx, clnet_model_set_param(m, layer, names[p], 1, shape, v));
    }
}

static clnet_model *make_mlp(clnet_context *ctx)
{
    int64_t in[1] = { 31 };
    clnet_model *m;
    clnet_dense_params d1 = dense(33, CLNET_ACT_LEAKY_RELU), d2 = dense(7, CLNET_ACT_TANH),
                       d3 = dense(3, CLNET_ACT_SOFTMAX);
    d1.alpha = 0.1f;
    d2.use_bias = 0;
    CK_OK(ctx, clnet_model_create(ctx, 1, in, 1, &m));
    CK_OK(ctx, clnet_model_add_dense(m, &d1));
    CK_OK(ctx, clnet_model_add_dropout(m, 0.5f));
    CK_OK(ctx, clnet_model_add_dense(m, &d2));
    CK_OK(ctx, clnet_model_add_dense(m, &d3));
    return m;
}

static clnet_model *make_cnn(clnet_context *ctx)
{
    int64_t in[3] = { 1, 7, 9 };
    clnet_model *m;
    clnet_conv2d_layer_params c = conv(3, 3, 1, CLNET_PADDING_SAME, CLNET_ACT_RELU);
    clnet_pool2d_layer_params mp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT,
                              ap = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    mp.padding = CLNET_PADDING_SAME; /* 7x9 -> 4x5, a padded row and column */
    ap.stride_h = ap.stride_w = 1;   /* 4x5 -> 3x4 */
    clnet_dense_params d = dense(5, CLNET_ACT_SIGMOID);
    CK_OK(ctx, clnet_model_create(ctx, 3, in, 2, &m));
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f }));
    randomize_bn(ctx, m, 1, 3);
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &mp));
    CK_OK(ctx, clnet_model_add_avgpool2d(m, &ap));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

/* Branches and merges, a stride-2 'same' convolution on a 7x8 image (pads
 * top 1, left 0, bottom 1, right 1: the ONNX order matters) and two
 * outputs. */
static clnet_model *make_graph(clnet_context *ctx)
{
    int64_t in[3] = { 3, 7, 8 };
    clnet_model *m;
    clnet_conv2d_layer_params ca = conv(4, 3, 1, CLNET_PADDING_SAME, CLNET_ACT_RELU),
                              cb = conv(4, 1, 1, CLNET_PADDING_VALID, CLNET_ACT_NONE),
                              cs = conv(3, 3, 2, CLNET_PADDING_SAME, CLNET_ACT_TANH);
    clnet_dense_params d = dense(1, CLNET_ACT_NONE);
    CK_OK(ctx, clnet_model_create(ctx, 3, in, 3, &m));
    clnet_node x = clnet_model_node(m), n[2], a, s, t, p;
    CK_OK(ctx, clnet_model_add_conv2d(m, &ca));
    a = clnet_model_node(m);
    CK_OK(ctx, clnet_model_set_node(m, x));
    CK_OK(ctx, clnet_model_add_conv2d(m, &cb));
    n[0] = a;
    n[1] = clnet_model_node(m);
    CK_OK(ctx, clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, n));
    s = clnet_model_node(m);
    CK_OK(ctx, clnet_model_add_merge(m, CLNET_MERGE_SUBTRACT, 2, n));
    t = clnet_model_node(m);
    n[0] = s;
    n[1] = t;
    CK_OK(ctx, clnet_model_add_merge(m, CLNET_MERGE_MULTIPLY, 2, n));
    p = clnet_model_node(m);
    n[0] = p;
    n[1] = a;
    CK_OK(ctx, clnet_model_add_concat(m, 0, 2, n));
    CK_OK(ctx, clnet_model_add_conv2d(m, &cs));
    CK_OK(ctx, clnet_model_add_global_avgpool2d(m));
    clnet_node gap = clnet_model_node(m);
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_node outs[2] = { clnet_model_node(m), gap };
    CK_OK(ctx, clnet_model_set_outputs(m, 2, outs));
    return m;
}

static clnet_model *make_reshape(clnet_context *ctx)
{
    int64_t in[1] = { 24 }, shape[3] = { 2, 3, 4 };
    clnet_model *m;
    clnet_conv2d_layer_params c = conv(3, 1, 1, CLNET_PADDING_VALID, CLNET_ACT_NONE);
    clnet_dense_params d = dense(1, CLNET_ACT_NONE);
    CK_OK(ctx, clnet_model_create(ctx, 1, in, 4, &m));
    CK_OK(ctx, clnet_model_add_reshape(m, 3, shape));
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_SIGMOID, 0));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

/* A DCGAN-like decoder (Reshape, ConvTranspose 'same' with stride 2, Resize
 * by 2 and 3, a 1x1 ConvTranspose with output padding), imported back; and
 * Dense over (batch, steps, features) with a softmax on the last axis, which
 * the importer does not map yet (checked by ONNX Runtime only). */
static clnet_model *make_decoder(clnet_context *ctx)
{
    int64_t in[1] = { 5 }, shape[3] = { 2, 3, 3 };
    clnet_model *m;
    clnet_dense_params d = dense(18, CLNET_ACT_RELU);
    clnet_conv2d_layer_params ct = conv(3, 3, 2, CLNET_PADDING_SAME, CLNET_ACT_RELU),
                              c = conv(1, 3, 2, CLNET_PADDING_VALID, CLNET_ACT_SIGMOID),
                              ct1 = conv(2, 1, 2, CLNET_PADDING_SAME, CLNET_ACT_NONE);
    CK_OK(ctx, clnet_model_create(ctx, 1, in, 5, &m));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_reshape(m, 3, shape));
    CK_OK(ctx, clnet_model_add_conv2d_transpose(m, &ct));
    CK_OK(ctx, clnet_model_add_upsampling2d(m, 2, 3));
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    /* A 1x1 kernel, stride 2, 'same': output padding 1 (ConvTranspose's
     * output_padding). */
    CK_OK(ctx, clnet_model_add_conv2d_transpose(m, &ct1));
    return m;
}

static clnet_model *make_sequence(clnet_context *ctx)
{
    int64_t in[2] = { 7, 3 };
    clnet_model *m;
    clnet_dense_params d1 = dense(4, CLNET_ACT_SOFTMAX), d2 = dense(1, CLNET_ACT_NONE);
    CK_OK(ctx, clnet_model_create(ctx, 2, in, 6, &m));
    CK_OK(ctx, clnet_model_add_dense(m, &d1));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, &d2));
    return m;
}

/* Recurrent layers in ONNX's gate orders: an LSTM with Keras' single bias
 * (random, so a misplaced gate block shows), a GRU with two biases, a
 * SimpleRNN returning its last state. */
static clnet_model *make_recurrent(clnet_context *ctx)
{
    int64_t in[2] = { 7, 3 }, bs[1] = { 20 };
    clnet_model *m;
    clnet_rnn_layer_params lstm = CLNET_RNN_LAYER_PARAMS_DEFAULT,
                           gru = CLNET_RNN_LAYER_PARAMS_DEFAULT,
                           rnn = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    lstm.units = 5;
    lstm.return_sequences = gru.return_sequences = 1;
    lstm.single_bias = 1;
    gru.units = 4;
    rnn.units = 3;
    clnet_dense_params d = dense(2, CLNET_ACT_NONE);
    float b[20];
    uint64_t rng = 5;
    fill_uniform(b, 20, -1.0f, 1.0f, &rng);
    CK_OK(ctx, clnet_model_create(ctx, 2, in, 7, &m));
    CK_OK(ctx, clnet_model_add_lstm(m, &lstm));
    CK_OK(ctx, clnet_model_set_param(m, 0, "bias", 1, bs, b));
    CK_OK(ctx, clnet_model_add_gru(m, &gru));
    CK_OK(ctx, clnet_model_add_simple_rnn(m, &rnn));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

/* torchvision's layers: a strided depthwise Conv2D (depth multiplier 2,
 * explicit pads top 0, left 1, bottom 2, right 1; relu6, with a kernel
 * large enough to reach 6), a grouped 1x1 Conv2D (groups 2), MaxPool and
 * AveragePool with explicit pads (the average counting them). */
static clnet_model *make_vision(clnet_context *ctx)
{
    int64_t in[3] = { 4, 9, 7 }, ks[4] = { 8, 1, 3, 3 };
    clnet_model *m;
    clnet_conv2d_layer_params dw = conv(8, 3, 2, CLNET_PADDING_EXPLICIT, CLNET_ACT_RELU6),
                              g = conv(6, 1, 1, CLNET_PADDING_VALID, CLNET_ACT_NONE);
    dw.groups = 4, dw.pad_left = 1, dw.pad_bottom = 2, dw.pad_right = 1;
    g.groups = 2;
    clnet_pool2d_layer_params mp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT, ap = mp;
    mp.window_h = mp.window_w = 3, mp.stride_h = mp.stride_w = 2,
    mp.padding = CLNET_PADDING_EXPLICIT;
    mp.pad_top = mp.pad_left = mp.pad_right = 1;
    ap.stride_h = ap.stride_w = 1, ap.padding = CLNET_PADDING_EXPLICIT, ap.count_include_pad = 1;
    ap.pad_top = ap.pad_right = 1;
    clnet_dense_params d = dense(5, CLNET_ACT_NONE);
    CK_OK(ctx, clnet_model_create(ctx, 3, in, 3, &m));
    CK_OK(ctx, clnet_model_add_conv2d(m, &dw));
    float k[72];
    uint64_t rng = 5;
    fill_uniform(k, 72, -4.0f, 4.0f, &rng);
    CK_OK(ctx, clnet_model_set_param(m, 0, "kernel", 4, ks, k));
    CK_OK(ctx, clnet_model_add_conv2d(m, &g));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &mp));
    CK_OK(ctx, clnet_model_add_avgpool2d(m, &ap));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

/* What clnet-train lstm and gan --save-onnx write: the reference 3 x LSTM(64)
 * stack and the DCGAN generator (batch norm with random statistics), built
 * by tools/models.c as the tool builds them. */
static clnet_model *make_lstm_stack(clnet_context *ctx)
{
    clnet_model *m;
    CK_OK(ctx, build_rnn_stack(ctx, "lstm", 3, &m));
    return m;
}

static clnet_model *make_generator(clnet_context *ctx)
{
    clnet_model *m;
    CK_OK(ctx, build_dcgan_generator(ctx, 4, &m));
    randomize_bn(ctx, m, 2, 128);
    randomize_bn(ctx, m, 5, 64);
    return m;
}

static double max_rel(const float *got, const float *want, size_t n)
{
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        double w = fabs((double)want[i]), d = fabs((double)got[i] - (double)want[i]);
        scale = w > scale ? w : scale;
        err = d > err || d != d ? d : err;
    }
    return err / (scale > 0 ? scale : 1);
}

/* Builds the model, runs it on a random batch, saves it as ONNX, reads the
 * file back, and (importable) imports and runs it, comparing every output. */
static void round_trip(const char *name, builder make, int64_t batch, int importable)
{
    clnet_context *ctx = test_context();
    clnet_model *m = make(ctx), *back = NULL;
    const char *keep = getenv("CLNET_ONNX_EXPORT_DIR");
    char dir[256], path[512], err[1024];
    snprintf(dir, sizeof dir, "%s/clnet-onnx-export.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s.onnx", keep ? keep : dir, name);

    int64_t xs[CLNET_MAX_DIMS + 1] = { batch };
    int xnd = clnet_model_node_shape(m, clnet_model_input(m, 0), xs + 1) + 1;
    size_t xn = 1;
    for (int i = 0; i < xnd; i++)
        xn *= (size_t)xs[i];
    float *xh = malloc(xn * sizeof *xh);
    uint64_t rng = 12345;
    fill_uniform(xh, xn, -1.0f, 1.0f, &rng);
    clnet_tensor *x = tensor_from(ctx, xnd, xs, xh);
    const clnet_tensor *xv[1] = { x };
    CK_OK(ctx, clnet_model_forward_multi(m, 1, xv, 0));
    CK_OK(ctx, clnet_model_save_onnx(m, path));

    /* clnet's reader accepts the file and supports every op in it. */
    clnet_onnx_model *om;
    ck_assert_msg(clnet_onnx_model_load(path, &om, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_msg(clnet_onnx_model_check_supported(om, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(clnet_onnx_model_graph(om)->opset, CLNET_ONNX_EXPORT_OPSET);
    ck_assert_uint_eq(clnet_onnx_model_graph(om)->n_outputs, (size_t)clnet_model_output_count(m));
    if (importable) {
        ck_assert_msg(clnet_onnx_import(ctx, om, &back, err, sizeof err) == CLNET_OK, "%s", err);
        CK_OK(ctx, clnet_model_forward_multi(back, 1, xv, 0));
    }
    clnet_onnx_model_destroy(om);
    if (keep) {
        snprintf(path, sizeof path, "%s/%s.in.npy", keep, name);
        ck_assert_msg(clnet_npy_write(path, xnd, xs, xh, err, sizeof err) == CLNET_OK, "%s", err);
    }
    for (int k = 0; k < clnet_model_output_count(m); k++) {
        const clnet_tensor *y, *y2;
        int64_t ys[CLNET_MAX_DIMS];
        CK_OK(ctx, clnet_model_output_tensor(m, k, &y, NULL));
        int ynd = clnet_tensor_shape(y, ys);
        size_t yn = clnet_tensor_numel(y);
        float *want = malloc(yn * sizeof *want), *got = malloc(yn * sizeof *got);
        download(ctx, y, want, yn);
        if (importable) {
            CK_OK(ctx, clnet_model_output_tensor(back, k, &y2, NULL));
            ck_assert_uint_eq(clnet_tensor_numel(y2), yn);
            download(ctx, y2, got, yn);
            double rel = max_rel(got, want, yn);
            ck_assert_msg(rel <= REL_MAX, "%s output %d: relative error %g after the round trip",
                          name, k, rel);
        }
        if (keep) {
            snprintf(path, sizeof path, "%s/%s.out%d.npy", keep, name, k);
            ck_assert_msg(clnet_npy_write(path, ynd, ys, want, err, sizeof err) == CLNET_OK, "%s",
                          err);
        }
        free(want);
        free(got);
    }
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    unlink(path);
    rmdir(dir);
    free(xh);
    clnet_tensor_destroy(x);
    clnet_model_destroy(back);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}

START_TEST(mlp_round_trip)
{
    round_trip("mlp", make_mlp, 1, 1);
}
END_TEST

START_TEST(cnn_round_trip)
{
    round_trip("cnn", make_cnn, 3, 1);
}
END_TEST

START_TEST(graph_round_trip)
{
    round_trip("graph", make_graph, 3, 1);
}
END_TEST

START_TEST(reshape_round_trip)
{
    round_trip("reshape", make_reshape, 3, 1);
}
END_TEST

START_TEST(vision_round_trip)
{
    round_trip("vision", make_vision, 3, 1);
}
END_TEST

START_TEST(decoder_written)
{
    round_trip("decoder", make_decoder, 3, 1);
}
END_TEST

START_TEST(recurrent_written)
{
    round_trip("recurrent", make_recurrent, 3, 1);
}
END_TEST

START_TEST(lstm_stack_round_trip)
{
    round_trip("lstm_stack", make_lstm_stack, 2, 1);
}
END_TEST

START_TEST(generator_round_trip)
{
    round_trip("generator", make_generator, 3, 1);
}
END_TEST

START_TEST(sequence_written)
{
    round_trip("sequence", make_sequence, 1, 0);
}
END_TEST

/* An Expression layer (OpenCL C) has no ONNX form: refused by name,
 * nothing written; a directory as the path is an I/O error naming it. */
START_TEST(refusals)
{
    clnet_context *ctx = test_context();
    int64_t in[1] = { 3 };
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, in, 1, &m));
    CK_OK(ctx, clnet_model_add_expression(m, "swish", "x / (1.0f + exp(-x))",
                                          "y + (1.0f - y) / (1.0f + exp(-x))"));
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/clnet-onnx-export.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/swish.onnx", dir);
    CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "(swish)", clnet_model_save_onnx(m, path));
    const char *msg = clnet_context_errmsg(ctx);
    ck_assert_msg(strstr(msg, "'swish_") && strstr(msg, "(swish)"), "%s", msg);
    ck_assert_int_ne(access(path, F_OK), 0);
    clnet_model_destroy(m);

    /* Hard swish, fused or a layer: ONNX's HardSwish is opset 14. */
    for (int fused = 0; fused < 2; fused++) {
        clnet_dense_params d = dense(2, fused ? CLNET_ACT_HARD_SWISH : CLNET_ACT_NONE);
        CK_OK(ctx, clnet_model_create(ctx, 1, in, 1, &m));
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        if (!fused)
            CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_HARD_SWISH, 0));
        CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "hard swish", clnet_model_save_onnx(m, path));
        msg = clnet_context_errmsg(ctx);
        ck_assert_msg(strstr(msg, fused ? "(Dense)" : "(Activation)") &&
                          strstr(msg, "hard swish (ONNX's HardSwish needs opset 14"),
                      "%s", msg);
        ck_assert_int_ne(access(path, F_OK), 0);
        clnet_model_destroy(m);
    }

    m = make_mlp(ctx);
    CK_FAILS(ctx, CLNET_ERR_IO, dir, clnet_model_save_onnx(m, dir));
    int prev = expect_errors(1); /* NULL path: refused */
    ck_assert_int_eq(clnet_model_save_onnx(m, NULL), CLNET_ERR_INVALID_ARG);
    expect_errors(prev);
    ck_assert_int_eq(clnet_model_save_onnx(NULL, path), CLNET_ERR_INVALID_ARG);
    clnet_model_destroy(m);
    rmdir(dir);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_onnx_export(void)
{
    Suite *s = suite_create("onnx-export");
    TCase *tc = tcase_create("onnx-export");
    tcase_add_test(tc, mlp_round_trip);
    tcase_add_test(tc, cnn_round_trip);
    tcase_add_test(tc, graph_round_trip);
    tcase_add_test(tc, reshape_round_trip);
    tcase_add_test(tc, vision_round_trip);
    tcase_add_test(tc, decoder_written);
    tcase_add_test(tc, sequence_written);
    tcase_add_test(tc, recurrent_written);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, lstm_stack_round_trip);
    tcase_add_test(tc, generator_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
