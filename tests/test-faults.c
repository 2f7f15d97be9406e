/* clnet tests — fault injection through the shims (src/runtime/fault.h): for
 * n = 1, 2, ... fail the n-th OpenCL call or host allocation of an operation
 * until it succeeds untouched. Every failure must return a specific status
 * with a message naming the failed call and the OpenCL error, leave the
 * context usable (the same operation then succeeds), and leak nothing: the
 * live OpenCL objects, device bytes and host blocks return to what they were.
 * Operations: context creation, model building, one training step of the
 * reference CNN, of the reference LSTM stack and of a small GAN, saving and
 * loading weights. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/nn.h"
#include "harness.h"
#include "runtime/fault.h"
#include "runtime/runtime.h"

/* ---- The models ------------------------------------------------------------------ */

enum kind { CNN, LSTM, GAN };

/* Everything an operation works on. */
typedef struct world {
    enum kind kind;
    int64_t batch, steps; /* steps: the LSTM's sequence length */
    int no_cache;         /* contexts without clnet's disk cache */
    clnet_context *ctx;
    clnet_model *m; /* the model; the GAN's discriminator */
    clnet_model *g; /* the GAN's generator */
    clnet_tensor *x, *y, *z, *real_y, *fake_y, *loss, *dlogits;
    char path[256];    /* weights file */
    char err[4096];    /* context creation's message */
    char options[256]; /* the first context's build options */
} world;

clnet_status faults_build_cnn(clnet_context *ctx, clnet_model **out); /* test-faults-models.c */

/* The reference recurrent stack (tools/train/rnn.c): LSTM(64) x 3, the first
 * two returning sequences, then Dense(10, softmax), on (steps, 28) inputs. */
static clnet_status build_lstm(clnet_context *ctx, int64_t steps, clnet_model **out)
{
    int64_t in[2] = { steps, 28 };
    clnet_status st = clnet_model_create(ctx, 2, in, 7, out);
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 64;
    for (int i = 0; i < 3 && !st; i++) {
        p.return_sequences = i < 2;
        st = clnet_model_add_lstm(*out, &p);
    }
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    return st ? st : clnet_model_add_dense(*out, &d);
}

/* A small DCGAN-like pair. G: z(8) > Dense(98, leaky relu) > Reshape(2, 7, 7) >
 * Conv2DTranspose(4, 4x4, stride 2, same, leaky) > Conv2D(1, 3x3, same, tanh)
 * on 1x14x14. D: Conv2D(8, 4x4, stride 2, same, leaky) > BatchNorm > Flatten >
 * Dropout(0.25) > Dense(1, sigmoid), trained with binary cross-entropy. */
static clnet_status build_gan(clnet_context *ctx, clnet_model **g, clnet_model **d)
{
    int64_t zin = 8, img[3] = { 1, 14, 14 }, rs[3] = { 2, 7, 7 };
    clnet_dense_params dg = CLNET_DENSE_PARAMS_DEFAULT, dd = CLNET_DENSE_PARAMS_DEFAULT;
    dg.units = 98;
    dg.activation = CLNET_ACT_LEAKY_RELU;
    dd.units = 1;
    dd.activation = CLNET_ACT_SIGMOID;
    clnet_conv2d_layer_params up = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, out, dc;
    up.filters = 4;
    up.kernel_h = up.kernel_w = 4;
    up.stride_h = up.stride_w = 2;
    up.padding = CLNET_PADDING_SAME;
    up.activation = CLNET_ACT_LEAKY_RELU;
    out = up;
    out.filters = 1;
    out.kernel_h = out.kernel_w = 3;
    out.stride_h = out.stride_w = 1;
    out.activation = CLNET_ACT_TANH;
    dc = up;
    dc.filters = 8;
    clnet_status st;
    if ((st = clnet_model_create(ctx, 1, &zin, 11, g)) || (st = clnet_model_add_dense(*g, &dg)) ||
        (st = clnet_model_add_reshape(*g, 3, rs)) ||
        (st = clnet_model_add_conv2d_transpose(*g, &up)) || (st = clnet_model_add_conv2d(*g, &out)))
        return st;
    if ((st = clnet_model_create(ctx, 3, img, 13, d)) || (st = clnet_model_add_conv2d(*d, &dc)) ||
        (st = clnet_model_add_batchnorm(
             *d, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f })) ||
        (st = clnet_model_add_flatten(*d)) || (st = clnet_model_add_dropout(*d, 0.25f)) ||
        (st = clnet_model_add_dense(*d, &dd)))
        return st;
    return CLNET_OK;
}

static clnet_status compile(clnet_model *m, clnet_loss_kind loss)
{
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.loss = loss;
    return clnet_model_compile(m, &cp);
}

/* A tensor of the given shape holding uniform values in [-1, 1] (or the
 * labels i % 10 for an int32 tensor). */
static clnet_status make_input(clnet_context *ctx, clnet_dtype dt, int ndim, const int64_t *shape,
                               uint64_t seed, clnet_tensor **out)
{
    clnet_status st = clnet_tensor_create(ctx, dt, ndim, shape, out);
    if (st)
        return st;
    size_t n = clnet_tensor_numel(*out);
    float *v = malloc(n * sizeof *v);
    if (!v)
        return CLNET_ERR_HOST_MEMORY;
    if (dt == CLNET_I32)
        for (size_t i = 0; i < n; i++)
            ((int32_t *)v)[i] = (int32_t)(i % 10);
    else
        fill_uniform(v, n, -1, 1, &seed);
    st = clnet_tensor_upload(*out, v, n * sizeof *v);
    free(v);
    return st;
}

/* Builds the world's models (compiled) and their data. */
static clnet_status build_world(world *w)
{
    clnet_context *ctx = w->ctx;
    int64_t b = w->batch;
    clnet_status st;
    switch (w->kind) {
    case CNN:
        if ((st = faults_build_cnn(ctx, &w->m)) ||
            (st = compile(w->m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)) ||
            (st = make_input(ctx, CLNET_F32, 4, (int64_t[]){ b, 1, 28, 28 }, 1, &w->x)))
            return st;
        return make_input(ctx, CLNET_I32, 1, &b, 2, &w->y);
    case LSTM:
        if ((st = build_lstm(ctx, w->steps, &w->m)) ||
            (st = compile(w->m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)) ||
            (st = make_input(ctx, CLNET_F32, 3, (int64_t[]){ b, w->steps, 28 }, 1, &w->x)))
            return st;
        return make_input(ctx, CLNET_I32, 1, &b, 2, &w->y);
    case GAN: {
        int64_t one = 1, lab[2] = { b, 1 };
        if ((st = build_gan(ctx, &w->g, &w->m)) || (st = compile(w->g, CLNET_LOSS_NONE)) ||
            (st = compile(w->m, CLNET_LOSS_NONE)) ||
            (st = make_input(ctx, CLNET_F32, 2, (int64_t[]){ b, 8 }, 1, &w->z)) ||
            (st = make_input(ctx, CLNET_F32, 4, (int64_t[]){ b, 1, 14, 14 }, 2, &w->x)) ||
            (st = clnet_tensor_create(ctx, CLNET_F32, 2, lab, &w->real_y)) ||
            (st = clnet_tensor_fill(w->real_y, 1.0)) ||
            (st = clnet_tensor_create(ctx, CLNET_F32, 2, lab, &w->fake_y)) ||
            (st = clnet_tensor_fill(w->fake_y, 0.0)) ||
            (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &w->loss)))
            return st;
        return clnet_tensor_create(ctx, CLNET_F32, 2, lab, &w->dlogits);
    }
    }
    return CLNET_ERR_INTERNAL;
}

static void free_world(world *w)
{
    clnet_tensor *ts[] = { w->x, w->y, w->z, w->real_y, w->fake_y, w->loss, w->dlogits };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clnet_tensor_destroy(ts[i]);
    clnet_model_destroy(w->m);
    clnet_model_destroy(w->g);
    w->x = w->y = w->z = w->real_y = w->fake_y = w->loss = w->dlogits = NULL;
    w->m = w->g = NULL;
}

/* D learns real (label 1) against fake (label 0); G then learns to make D
 * say 1, through D's input gradient, with D's weights left alone. */
static clnet_status gan_step(world *w)
{
    const clnet_tensor *fake, *logits, *dx;
    clnet_status st;
    if ((st = clnet_model_forward(w->g, w->z, 1, &fake, NULL)) ||
        (st = clnet_model_forward(w->m, w->x, 1, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, w->real_y, w->loss, w->dlogits)) ||
        (st = clnet_model_backward(w->m, w->dlogits, NULL)) || (st = clnet_model_step(w->m)) ||
        (st = clnet_model_forward(w->m, fake, 1, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, w->fake_y, w->loss, w->dlogits)) ||
        (st = clnet_model_backward(w->m, w->dlogits, NULL)) || (st = clnet_model_step(w->m)))
        return st;
    if ((st = clnet_model_forward(w->m, fake, 1, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, w->real_y, w->loss, w->dlogits)) ||
        (st = clnet_model_backward(w->m, w->dlogits, &dx)) ||
        (st = clnet_model_backward(w->g, dx, NULL)))
        return st;
    float loss;
    return (st = clnet_model_step(w->g)) ? st : clnet_tensor_download(w->loss, &loss, sizeof loss);
}

/* ---- Operations under test ---------------------------------------------------------- */

typedef struct scenario {
    const char *name;
    clnet_status (*setup)(world *w); /* unarmed, before the sweep (NULL: none) */
    clnet_status (*op)(world *w);    /* armed; must be repeatable */
    int fresh;                       /* setup and teardown around every try */
} scenario;

static void teardown(world *w)
{
    free_world(w);
    clnet_context_destroy(w->ctx);
    w->ctx = NULL;
}

static clnet_status op_context(world *w)
{
    clnet_context_destroy(w->ctx);
    w->ctx = NULL;
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    if (w->no_cache)
        p.cache_dir = "";
    clnet_status st = clnet_context_create(&p, &w->ctx, w->err, sizeof w->err);
    if (!st && !w->options[0])
        snprintf(w->options, sizeof w->options, "%s", clnet__context_profile(w->ctx)->options);
    return st;
}

static clnet_status setup_context(world *w)
{
    return op_context(w);
}

static clnet_status op_build(world *w)
{
    free_world(w);
    return build_world(w);
}

static clnet_status setup_world(world *w)
{
    clnet_status st = op_context(w);
    return st ? st : build_world(w);
}

static clnet_status op_train(world *w)
{
    if (w->kind == GAN)
        return gan_step(w);
    double loss;
    return clnet_model_train_on_batch(w->m, w->x, w->y, &loss, NULL);
}

static clnet_status op_save(world *w)
{
    return clnet_model_save(w->m, w->path);
}

static clnet_status setup_saved(world *w)
{
    clnet_status st = setup_world(w);
    return st ? st : op_save(w);
}

static clnet_status op_load(world *w)
{
    return clnet_model_load(w->m, w->path);
}

/* ---- The sweep --------------------------------------------------------------------- */

typedef struct sweep_result {
    long calls;    /* failable calls the operation makes */
    long failed;   /* injected failures that failed the operation */
    long absorbed; /* injected failures it worked around */
} sweep_result;

static void live_str(const clnet__live *l, char *buf, size_t size)
{
    snprintf(buf, size,
             "contexts %ld, queues %ld, programs %ld, kernels %ld, buffers %ld, events %ld, "
             "device bytes %lld, host blocks %ld",
             l->contexts, l->queues, l->programs, l->kernels, l->buffers, l->events,
             l->device_bytes, l->host_blocks);
}

static void check_live(const clnet__live *want, const char *label, long n)
{
    clnet__live now;
    clnet__fault_live(&now);
    if (memcmp(&now, want, sizeof now) != 0) {
        char a[256], b[256];
        live_str(want, a, sizeof a);
        live_str(&now, b, sizeof b);
        ck_abort_msg("%s, failure %ld: live objects changed:\n  before: %s\n  after:  %s", label, n,
                     a, b);
    }
}

static const char *message(const world *w)
{
    return w->ctx ? clnet_context_errmsg(w->ctx) : w->err;
}

/* Checks one failed operation: a specific status and a message that names
 * the failed call and the error. */
static void check_failure(const world *w, const char *label, long n, clnet_status st,
                          const char *call, int host, cl_int err)
{
    const char *msg = message(w);
    ck_assert_msg(st != CLNET_ERR_INTERNAL, "%s: failing %s (#%ld) gave CLNET_ERR_INTERNAL: %s",
                  label, call, n, msg);
    if (host) {
        ck_assert_msg(st == CLNET_ERR_HOST_MEMORY && strstr(msg, "out of host memory"),
                      "%s: failing %s (#%ld) gave %s: \"%s\"", label, call, n,
                      clnet_status_name(st), msg);
        return;
    }
    ck_assert_msg(strstr(msg, call) && strstr(msg, clnet__cl_error_name(err)),
                  "%s: failing %s (#%ld) with %s gave %s: \"%s\" (lacks the call or the error)",
                  label, call, n, clnet__cl_error_name(err), clnet_status_name(st), msg);
}

/* Fails call n = 1, 2, ... of sc->op (host allocations, or the OpenCL calls
 * that `call` names, every one when NULL) until the operation runs without
 * reaching the armed call. */
static sweep_result sweep(world *w, const scenario *sc, int host, const char *call, cl_int err)
{
    char label[160];
    snprintf(label, sizeof label, "%s (%s%s)", sc->name,
             host ? "host allocations" : "OpenCL calls ",
             host   ? ""
             : call ? call
                    : "all");
    sweep_result r = { 0, 0, 0 };
    clnet__live start, base;
    clnet__fault_live(&start);
    base = start;
    /* A warm-up: kernels built (and in the disk cache), buffers at their size. */
    clnet_status st0 = sc->setup ? sc->setup(w) : CLNET_OK;
    if (!st0)
        st0 = sc->op(w);
    ck_assert_msg(st0 == CLNET_OK, "%s: warm-up: %s: %s", label, clnet_status_name(st0),
                  message(w));
    if (sc->fresh)
        teardown(w);
    else
        clnet__fault_live(&base);
    for (long n = 1;; n++) {
        ck_assert_msg(n < 1000000, "%s: the operation never completes", label);
        clnet_status st = CLNET_OK;
        if (sc->fresh && sc->setup)
            st = sc->setup(w);
        ck_assert_msg(st == CLNET_OK, "%s: setup: %s: %s", label, clnet_status_name(st),
                      message(w));
        if (host)
            clnet__fault_arm_host(n);
        else
            clnet__fault_arm(call, n, err);
        st = sc->op(w);
        const char *fired = clnet__fault_fired();
        clnet__fault_disarm();
        if (!fired) {
            ck_assert_msg(st == CLNET_OK, "%s: failed with no fault injected: %s: %s", label,
                          clnet_status_name(st), message(w));
            r.calls = n - 1;
            if (sc->fresh)
                teardown(w);
            break;
        }
        if (st) {
            r.failed++;
            check_failure(w, label, n, st, fired, host, err);
        } else {
            /* A failure worked around must not change what the context does. */
            r.absorbed++;
            ck_assert_msg(!w->ctx || !strcmp(w->options, clnet__context_profile(w->ctx)->options),
                          "%s: failing %s (#%ld) was absorbed but the build options changed: "
                          "\"%s\", not \"%s\"",
                          label, fired, n, clnet__context_profile(w->ctx)->options, w->options);
        }
        /* The context stays usable: the same operation now succeeds. */
        clnet_status again = sc->op(w);
        ck_assert_msg(again == CLNET_OK, "%s: after failing %s (#%ld), the retry failed: %s: %s",
                      label, fired, n, clnet_status_name(again), message(w));
        if (sc->fresh)
            teardown(w);
        check_live(&base, label, n);
    }
    if (!sc->fresh)
        teardown(w);
    check_live(&start, label, 0);
    fprintf(stderr, "faults: %-44s %5ld calls swept, %5ld failed the operation, %4ld absorbed\n",
            label, r.calls, r.failed, r.absorbed);
    return r;
}

static world make_world(enum kind kind, int64_t batch)
{
    world w;
    memset(&w, 0, sizeof w);
    w.kind = kind;
    w.batch = batch;
    w.steps = test_long() ? 28 : 3;
    const char *dir = getenv("TMPDIR");
    snprintf(w.path, sizeof w.path, "%s/clnet-faults-%ld.safetensors", dir && *dir ? dir : "/tmp",
             (long)getpid());
    return w;
}

/* Every OpenCL call with CL_OUT_OF_RESOURCES, then every host allocation. */
static void sweep_both(world *w, const scenario *sc, sweep_result *cl, sweep_result *host)
{
    *cl = sweep(w, sc, 0, NULL, CL_OUT_OF_RESOURCES);
    *host = sweep(w, sc, 1, NULL, 0);
    ck_assert_msg(cl->calls > 0, "%s: the sweep saw no OpenCL call", sc->name);
}

/* One training step of a model: warm (every call of a step after the
 * first, which allocates nothing on the host), then cold (a fresh context
 * and model each try, so the step builds its kernels from the disk cache):
 * its host allocations and the calls that create objects, every call in
 * the long tier. */
static void sweep_training(enum kind kind, const char *name)
{
    world w = make_world(kind, 2);
    char label[64];
    snprintf(label, sizeof label, "%s step", name);
    scenario warm = { label, setup_world, op_train, 0 };
    sweep_result cl, host;
    sweep_both(&w, &warm, &cl, &host);
    ck_assert_msg(host.calls == 0, "%s: a warm step made %ld host allocations", label, host.calls);
    snprintf(label, sizeof label, "first %s step", name);
    scenario cold = { label, setup_world, op_train, 1 };
    host = sweep(&w, &cold, 1, NULL, 0);
    ck_assert_msg(host.calls > 0, "%s: the first step allocated nothing", label);
    sweep(&w, &cold, 0, "clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE);
    sweep(&w, &cold, 0, "clCreateKernel", CL_OUT_OF_RESOURCES);
    sweep(&w, &cold, 0, "clCreateProgramWithBinary", CL_OUT_OF_HOST_MEMORY);
    sweep(&w, &cold, 0, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE);
    if (test_long())
        sweep(&w, &cold, 0, NULL, CL_OUT_OF_RESOURCES);
    /* Without the disk cache every program is built from source (pocl's
     * own cache keeps that quick). */
    w.no_cache = 1;
    snprintf(label, sizeof label, "first %s step, no disk cache", name);
    sweep(&w, &cold, 0, "clCreateProgramWithSource", CL_OUT_OF_HOST_MEMORY);
    sweep(&w, &cold, 0, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE);
}

/* ---- Tests ------------------------------------------------------------------------- */

START_TEST(context_creation_survives_every_failure)
{
    world w = make_world(CNN, 2);
    scenario sc = { "context creation", NULL, op_context, 1 };
    sweep_result cl, host;
    sweep_both(&w, &sc, &cl, &host);
    sweep(&w, &sc, 0, "clCreateContext", CL_OUT_OF_HOST_MEMORY);
    sweep(&w, &sc, 0, "clCreateCommandQueue", CL_OUT_OF_RESOURCES);
}
END_TEST

START_TEST(model_building_survives_every_failure)
{
    world w = make_world(CNN, 2);
    scenario sc = { "model build (CNN)", setup_context, op_build, 1 };
    sweep_result cl, host;
    sweep_both(&w, &sc, &cl, &host);
    sweep(&w, &sc, 0, "clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE);
}
END_TEST

START_TEST(cnn_training_step_survives_every_failure)
{
    sweep_training(CNN, "CNN");
}
END_TEST

START_TEST(lstm_training_step_survives_every_failure)
{
    sweep_training(LSTM, "LSTM");
}
END_TEST

START_TEST(gan_training_step_survives_every_failure)
{
    sweep_training(GAN, "GAN");
}
END_TEST

START_TEST(weights_save_and_load_survive_every_failure)
{
    world w = make_world(CNN, 2);
    scenario save = { "weights save", setup_world, op_save, 0 };
    scenario load = { "weights load", setup_saved, op_load, 0 };
    sweep_result cl, host;
    sweep_both(&w, &save, &cl, &host);
    sweep_both(&w, &load, &cl, &host);
    unlink(w.path);
}
END_TEST

/* The shim itself: an armed call fails once with the chosen error, counts
 * calls, and an unarmed shim changes nothing. */
START_TEST(shim_fails_the_armed_call_once)
{
    clnet__live before, during, after;
    clnet__fault_live(&before);
    clnet_context *ctx = test_context();
    int64_t n = 1000;
    clnet_tensor *t = NULL;
    clnet__fault_arm("clCreateBuffer", 1, CL_MEM_OBJECT_ALLOCATION_FAILURE);
    CK_FAILS(ctx, CLNET_ERR_DEVICE_MEMORY,
             "clCreateBuffer failed: CL_MEM_OBJECT_ALLOCATION_FAILURE",
             clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    ck_assert_ptr_null(t);
    ck_assert_str_eq(clnet__fault_fired(), "clCreateBuffer");
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t)); /* once only */
    ck_assert_int_eq(clnet__fault_calls(), 2);
    clnet__fault_disarm();
    clnet__fault_live(&during);
    ck_assert_int_eq(during.buffers, before.buffers + 1);
    ck_assert_int_eq(during.device_bytes, before.device_bytes + 4000);
    ck_assert_int_ge(during.host_blocks, before.host_blocks + 2); /* tensor, storage */
    clnet_tensor_destroy(t);
    clnet__fault_arm_host(1);
    CK_FAILS(ctx, CLNET_ERR_HOST_MEMORY, "out of host memory",
             clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    ck_assert_str_eq(clnet__fault_fired(), "calloc");
    clnet__fault_disarm();
    clnet_context_destroy(ctx);
    clnet__fault_live(&after);
    ck_assert_msg(memcmp(&before, &after, sizeof after) == 0, "live objects after teardown differ");
    ck_assert_int_eq(after.contexts + after.queues + after.programs + after.kernels + after.buffers,
                     0);
}
END_TEST

Suite *suite_faults(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("shim");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shim_fails_the_armed_call_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("sweeps");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, context_creation_survives_every_failure);
    tcase_add_test(tc, model_building_survives_every_failure);
    tcase_add_test(tc, cnn_training_step_survives_every_failure);
    tcase_add_test(tc, lstm_training_step_survives_every_failure);
    tcase_add_test(tc, gan_training_step_survives_every_failure);
    tcase_add_test(tc, weights_save_and_load_survive_every_failure);
    suite_add_tcase(s, tc);
    return s;
}
