/* clnet tests — running imported ONNX models (suite "onnx-run"): models
 * exported from PyTorch at test time (tests/onnx/export_run.py) imported
 * with clnet_onnx_import, run on the device and compared with PyTorch's
 * own outputs (normwise relative error < 1e-4); refusals listed by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "clnet/npy.h"
#include "clnet/onnx_import.h"

/* Float32 through every layer against PyTorch's float32 (different
 * summation orders): 1e-4 normwise is the bar; the models here sum
 * at most 1600 terms per output. */
#define REL_MAX 1e-4

static char export_dir[256];
static int export_rc = -1;

/* Unchecked fixture: runs once in the runner, before the tests fork; no
 * OpenCL here. */
static void export_models(void)
{
    const char *python = getenv("CLNET_TEST_PYTHON"), *root = getenv("CLNET_SOURCE_ROOT");
    char cmd[2048];
    snprintf(export_dir, sizeof export_dir, "%s/clnet-onnx-run.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(export_dir)) {
        export_rc = errno;
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/onnx/export_run.py' '%s'%s",
             python ? python : "/usr/bin/python3", root ? root : ".", export_dir,
             test_small() ? " --no-torchvision" : "");
    export_rc = system(cmd);
}

static void remove_models(void)
{
    char cmd[512];
    if (export_dir[0] && strstr(export_dir, "clnet-onnx-run.")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", export_dir);
        if (system(cmd))
            fprintf(stderr, "test-onnx-run: could not remove %s\n", export_dir);
    }
}

static clnet_npy *load_npy(const char *name, const char *suffix)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s.%s.npy", export_dir, name, suffix);
    clnet_npy *a;
    ck_assert_msg(clnet_npy_load(path, &a, err, sizeof err) == CLNET_OK, "%s", err);
    return a;
}

/* Imports NAME.onnx, runs it on NAME.IO.in.npy (IO "": NAME.in.npy),
 * compares with the matching .out.npy. */
static void run_model_on(const char *name, const char *io)
{
    ck_assert_msg(export_rc == 0,
                  "tests/onnx/export_run.py failed (%d): needs /usr/bin/python3 with torch "
                  "(Debian's python3-torch) or CLNET_TEST_PYTHON",
                  export_rc);
    clnet_context *ctx = test_context();
    char path[512], err[1024] = "", in_sfx[32], out_sfx[32];
    snprintf(path, sizeof path, "%s/%s.onnx", export_dir, name);
    ck_assert_msg(access(path, R_OK) == 0,
                  "%s was not exported: tests/onnx/export_run.py needs torchvision (Debian's "
                  "python3-torchvision) for it",
                  path);
    clnet_model *m;
    ck_assert_msg(clnet_onnx_import_file(ctx, path, &m, err, sizeof err) == CLNET_OK, "%s: %s",
                  name, err);
    snprintf(in_sfx, sizeof in_sfx, "%s%sin", io, io[0] ? "." : "");
    snprintf(out_sfx, sizeof out_sfx, "%s%sout", io, io[0] ? "." : "");
    clnet_npy *in = load_npy(name, in_sfx), *want = load_npy(name, out_sfx);
    clnet_tensor *x;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, in->ndim, in->shape, &x));
    CK_OK(ctx, clnet_tensor_upload(x, in->data, in->numel * sizeof(float)));
    const clnet_tensor *xs[1] = { x }, *y;
    CK_OK(ctx, clnet_model_forward_multi(m, 1, xs, 0));
    CK_OK(ctx, clnet_model_output_tensor(m, 0, &y, NULL));
    ck_assert_int_eq(clnet_tensor_ndim(y), want->ndim);
    for (int i = 0; i < want->ndim; i++)
        ck_assert_int_eq(clnet_tensor_dim(y, i), want->shape[i]);
    float *got = host_f32(want->numel);
    download(ctx, y, got, want->numel);
    double *ref = widen_f64(want->data, want->numel);
    double rel = rel_error(got, ref, want->numel);
    ck_assert_msg(rel < REL_MAX, "%s%s%s: normwise relative error %g against PyTorch (bar %g)",
                  name, io[0] ? " " : "", io, rel, REL_MAX);
    if (test_verbose())
        fprintf(stderr, "%s%s%s: relative error %g against PyTorch\n", name, io[0] ? " " : "", io,
                rel);
    free(got);
    free(ref);
    clnet_npy_free(in);
    clnet_npy_free(want);
    clnet_tensor_destroy(x);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}

static void run_model(const char *name)
{
    run_model_on(name, "");
}

START_TEST(torch_cnn_matches_pytorch)
{
    run_model("cnn");
}
END_TEST

START_TEST(torch_residual_concat_matches_pytorch)
{
    run_model("residual");
}
END_TEST

/* Strided, depthwise and grouped Conv with unequal pads, ReLU6 (Clip 0, 6),
 * MaxPool with pads, AveragePool with pads (not counted), HardSwish,
 * Clip(0, inf) (opset 14). */
START_TEST(torch_vision_layers_match_pytorch)
{
    run_model("vision");
}
END_TEST

/* torchvision's models with random weights at 1x3x224x224 (and resnet18
 * at batch 8 with CLNET_TEST_LONG=1), exported by tests/onnx/export_run.py.
 * In the small tier (CLNET_TEST_SMALL=1: rusticl on llvmpipe, about a
 * thousand times slower than pocl here) they are left out: their layers
 * are the `vision` model's, which runs in every tier. */
START_TEST(torchvision_resnet18_matches_pytorch)
{
    if (test_small()) {
        fprintf(stderr, "resnet18 left out in the small tier (CLNET_TEST_SMALL)\n");
        return;
    }
    run_model("resnet18");
    if (test_long())
        run_model_on("resnet18", "b8");
}
END_TEST

START_TEST(torchvision_mobilenet_v2_matches_pytorch)
{
    if (test_small()) {
        fprintf(stderr, "mobilenet_v2 left out in the small tier (CLNET_TEST_SMALL)\n");
        return;
    }
    run_model("mobilenet_v2");
}
END_TEST

/* Transposed convolutions (PyTorch's pads and the Slice that crops them to
 * Keras' 'same'), batch norm after them, Tanh and Sigmoid outputs: the DCGAN
 * generator (batch 3) and the VAE decoder (batch 2) of tools/peers. */
START_TEST(torch_dcgan_generator_matches_pytorch)
{
    run_model("dcgan");
}
END_TEST

START_TEST(torch_vae_decoder_matches_pytorch)
{
    run_model("vae_decoder");
}
END_TEST

/* ONNX's LSTM and GRU gate orders and layouts, the Transpose, Squeeze,
 * ConstantOfShape and Slice chains PyTorch writes around them: the 3 x
 * LSTM(64) reference stack ending in its last step (batch 3), and two GRU(5)
 * layers returning the whole sequence (batch 1, 9 steps, 7 features). */
START_TEST(torch_lstm_stack_matches_pytorch)
{
    run_model("lstm");
}
END_TEST

START_TEST(torch_gru_sequence_matches_pytorch)
{
    run_model("gru");
}
END_TEST

/* nn.RNN (tanh), which PyTorch writes with activations ["Tanh"]: the same
 * two-layer sequence model (batch 2). */
START_TEST(torch_rnn_sequence_matches_pytorch)
{
    run_model("srnn");
}
END_TEST

/* Constant operands of Add, Sub, Mul, Div (scalars, per channel, per
 * feature, a constant minus x), nearest Resize by 2 x 3 and LogSoftmax
 * (batch 2, 3x5x7 images). */
/* Freshly initialized batch norm folded into bias-free convolutions: the
 * exporter writes the equal zero biases once and an Identity of that
 * initializer for the other, which the importer follows to the constant. */
START_TEST(torch_shared_initializer_matches_pytorch)
{
    run_model("fresh_bn");
}
END_TEST

START_TEST(torch_constant_arithmetic_matches_pytorch)
{
    run_model("arith");
}
END_TEST

/* A Transpose that moves only dims of extent 1 (a Conv's 1x1 output to
 * channels last) is a Reshape (batch 3). */
START_TEST(torch_unit_transpose_matches_pytorch)
{
    run_model("permute");
}
END_TEST

/* An imported model trains: the CNN compiled with sparse cross-entropy
 * fits 8 random images with random labels, the loss falling by half in 20
 * Adam steps at lr 3e-3 (it starts near ln 10; a model whose gradients did
 * not reach the imported weights could not memorize the batch). */
START_TEST(imported_cnn_trains)
{
    ck_assert_int_eq(export_rc, 0);
    clnet_context *ctx = test_context();
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/cnn.onnx", export_dir);
    clnet_model *m;
    ck_assert_msg(clnet_onnx_import_file(ctx, path, &m, err, sizeof err) == CLNET_OK, "%s", err);
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = 3e-3f; /* few steps: the rusticl pass runs this 3x slower */
    CK_OK(ctx, clnet_model_compile(m, &cp));
    const int64_t xs[4] = { 8, 1, 28, 28 }, ys[1] = { 8 };
    float *xh = host_f32(8 * 28 * 28);
    int32_t labels[8];
    uint64_t state = 11;
    fill_uniform(xh, 8 * 28 * 28, 0, 1, &state);
    for (int i = 0; i < 8; i++)
        labels[i] = (int32_t)(test_rng(&state) % 10);
    clnet_tensor *x, *y;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, ys, &y));
    CK_OK(ctx, clnet_tensor_upload(x, xh, 8 * 28 * 28 * sizeof(float)));
    CK_OK(ctx, clnet_tensor_upload(y, labels, sizeof labels));
    double first = 0, loss = 0;
    for (int step = 0; step < 20; step++) {
        CK_OK(ctx, clnet_model_train_on_batch(m, x, y, &loss, NULL));
        if (step == 0)
            first = loss;
    }
    ck_assert_msg(first > 1.5 && loss < first / 2, "loss %g after 20 steps, %g at the first", loss,
                  first);
    free(xh);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* A MaxPool with ceil_mode, Selu and Erf: one message names all three. */
START_TEST(unsupported_ops_listed_at_once)
{
    ck_assert_int_eq(export_rc, 0);
    clnet_context *ctx = test_context();
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/unsupported.onnx", export_dir);
    clnet_model *m = (clnet_model *)path;
    ck_assert_int_eq(clnet_onnx_import_file(ctx, path, &m, err, sizeof err), CLNET_ERR_UNSUPPORTED);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "MaxPool.ceil_mode=1") && strstr(err, "op Selu") &&
                      strstr(err, "op Erf"),
                  "message lacks an op: %s", err);
    ck_assert_int_eq(clnet_onnx_import(ctx, NULL, &m, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_onnx_import(NULL, NULL, NULL, NULL, 0), CLNET_ERR_INVALID_ARG);
    clnet_context_destroy(ctx);
}
END_TEST

/* Graphs the reader accepts and the importer refuses (export_bad in
 * tests/onnx/export_run.py): the status and a message naming the node. */
static const struct {
    const char *file;
    clnet_status want;
    const char *needle;
} bad_models[] = {
    { "bad_kernel", CLNET_ERR_FORMAT, "node 'conv' (Conv): kernel_shape or the bias disagrees" },
    { "bad_group", CLNET_ERR_FORMAT, "node 'conv' (Conv): group 3 does not fit 3 input channels" },
    { "bad_pool_pads", CLNET_ERR_INVALID_ARG,
      "node 'maxpool' (MaxPool): layer 0 (MaxPool2D): "
      "pad_bottom is 2 (must be >= 0 and smaller" },
    { "bad_gemm", CLNET_ERR_SHAPE, "node 'gemm' (Gemm): input has 3 dims after the batch" },
    { "bad_add", CLNET_ERR_UNSUPPORTED, "node 'add' (Add): a constant operand is imported as" },
    { "bad_reshape", CLNET_ERR_UNSUPPORTED, "node 'reshape' (Reshape): the shape must be" },
    { "bad_gather", CLNET_ERR_FORMAT, "node 'gather' (Gather): index 5 out of range" },
    { "bad_softmax", CLNET_ERR_UNSUPPORTED, "node 'softmax' (Softmax): only over the features" },
    { "bad_transpose", CLNET_ERR_UNSUPPORTED, "node 'transpose' (Transpose): only the layout" },
    { "bad_div", CLNET_ERR_UNSUPPORTED, "node 'div' (Div): a division of two computed values" },
    { "bad_convt", CLNET_ERR_UNSUPPORTED, "node 'convtranspose' (ConvTranspose): crops 1,1,0,0" },
    { "bad_lstm", CLNET_ERR_UNSUPPORTED, "not supported: LSTM.direction=bidirectional" },
};

START_TEST(bad_graphs_name_the_node)
{
    ck_assert_int_eq(export_rc, 0);
    clnet_context *ctx = test_context();
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
        char path[512], err[1024] = "";
        snprintf(path, sizeof path, "%s/%s.onnx", export_dir, bad_models[i].file);
        clnet_model *m = (clnet_model *)path;
        int prev = expect_errors(1); /* each file is refused */
        clnet_status st = clnet_onnx_import_file(ctx, path, &m, err, sizeof err);
        expect_errors(prev);
        ck_assert_msg(st == bad_models[i].want, "%s: %s, expected %s (%s)", bad_models[i].file,
                      clnet_status_name(st), clnet_status_name(bad_models[i].want), err);
        ck_assert_msg(strstr(err, bad_models[i].needle), "%s: message \"%s\" lacks \"%s\"",
                      bad_models[i].file, err, bad_models[i].needle);
        ck_assert_ptr_null(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_onnx_run(void)
{
    Suite *s = suite_create("onnx-run");
    TCase *tc = tcase_create("torch");
    tcase_add_unchecked_fixture(tc, export_models, remove_models);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, torch_cnn_matches_pytorch);
    tcase_add_test(tc, torch_residual_concat_matches_pytorch);
    tcase_add_test(tc, torch_vision_layers_match_pytorch);
    tcase_add_test(tc, torchvision_resnet18_matches_pytorch);
    tcase_add_test(tc, torchvision_mobilenet_v2_matches_pytorch);
    tcase_add_test(tc, unsupported_ops_listed_at_once);
    tcase_add_test(tc, bad_graphs_name_the_node);
    tcase_add_test(tc, imported_cnn_trains);
    tcase_add_test(tc, torch_dcgan_generator_matches_pytorch);
    tcase_add_test(tc, torch_vae_decoder_matches_pytorch);
    tcase_add_test(tc, torch_lstm_stack_matches_pytorch);
    tcase_add_test(tc, torch_gru_sequence_matches_pytorch);
    tcase_add_test(tc, torch_rnn_sequence_matches_pytorch);
    tcase_add_test(tc, torch_constant_arithmetic_matches_pytorch);
    tcase_add_test(tc, torch_shared_initializer_matches_pytorch);
    tcase_add_test(tc, torch_unit_transpose_matches_pytorch);
    suite_add_tcase(s, tc);
    return s;
}
