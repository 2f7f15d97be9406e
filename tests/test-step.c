/* clnet tests — no waste in a training step (docs/speed.md): after warm-up a
 * step of each reference model creates no OpenCL buffer, program or kernel,
 * builds nothing, waits on the host only where the caller reads a result,
 * and launches the same number of kernels every time; a new batch size or
 * input size builds no program. Counted with the context's stats and the
 * OpenCL shim's call counters (src/runtime/fault.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "models.h"
#include "runtime/fault.h"

/* ---- One step of a model, as a closure ------------------------------------------- */

typedef struct stepper stepper;
struct stepper {
    clnet_context *ctx;
    clnet_model *m, *d; /* the model (G for the GAN), D */
    gan_trainer *gan;
    clnet_tensor *x, *y; /* one batch; the GAN's real images in x */
    int read_loss;       /* 1: read the loss back after each step */
    const char *label;
    clnet_status (*step)(stepper *s);
};

static clnet_status classifier_step(stepper *s)
{
    double loss;
    return clnet_model_train_on_batch(s->m, s->x, s->y, s->read_loss ? &loss : NULL, NULL);
}

/* One DCGAN iteration: noise, G forward, D step, G step through the frozen D. */
static clnet_status gan_iteration(stepper *s)
{
    clnet_status st;
    double dl, gl;
    if ((st = gan_generate(s->gan, NULL)) || (st = gan_step_d(s->gan, s->x)) ||
        (st = gan_step_g(s->gan)))
        return st;
    return s->read_loss ? gan_losses(s->gan, &dl, &gl) : CLNET_OK;
}

/* A batch of inputs (batch, in...) in [0, 1) and int32 labels. */
static void make_batch(stepper *s, int ndim, const int64_t *in, int64_t batch, int labels)
{
    int64_t shape[CLNET_MAX_DIMS] = { batch };
    size_t n = (size_t)batch;
    for (int i = 0; i < ndim; i++) {
        shape[i + 1] = in[i];
        n *= (size_t)in[i];
    }
    float *x = malloc(n * sizeof *x);
    uint64_t seed = 17;
    fill_uniform(x, n, 0, 1, &seed);
    s->x = tensor_from(s->ctx, ndim + 1, shape, x);
    free(x);
    if (!labels)
        return;
    int32_t *y = malloc((size_t)batch * sizeof *y);
    for (int64_t i = 0; i < batch; i++)
        y[i] = (int32_t)(test_rng(&seed) % 10);
    CK_OK(s->ctx, clnet_tensor_create(s->ctx, CLNET_I32, 1, &batch, &s->y));
    CK_OK(s->ctx, clnet_tensor_upload(s->y, y, (size_t)batch * sizeof *y));
    free(y);
}

static void compile(clnet_context *ctx, clnet_model *m, clnet_loss_kind loss)
{
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = loss;
    CK_OK(ctx, clnet_model_compile(m, &p));
}

/* The reference CNN's layers on a (1, side, side) input: side 28 is
 * tools/models.c's build_cnn. */
static clnet_model *cnn_at(clnet_context *ctx, int64_t side)
{
    clnet_model *m;
    if (side == 28) {
        CK_OK(ctx, build_cnn(ctx, 1, &m));
        return m;
    }
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, side, side }, 1, &m));
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 32;
    c.activation = CLNET_ACT_RELU;
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, d2 = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 64;
    d1.activation = CLNET_ACT_RELU;
    d2.units = 10;
    d2.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &p));
    c.filters = 64;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_maxpool2d(m, &p));
    CK_OK(ctx, clnet_model_add_flatten(m));
    CK_OK(ctx, clnet_model_add_dense(m, &d1));
    CK_OK(ctx, clnet_model_add_dense(m, &d2));
    return m;
}

static stepper cnn_stepper(clnet_context *ctx, int64_t side, int64_t batch)
{
    stepper s = { .ctx = ctx, .label = "CNN", .step = classifier_step };
    s.m = cnn_at(ctx, side);
    compile(ctx, s.m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    make_batch(&s, 3, (int64_t[]){ 1, side, side }, batch, 1);
    return s;
}

/* The reference 3 x LSTM(64) stack on (28, 28) sequences. */
static stepper lstm_stepper(clnet_context *ctx, int64_t batch)
{
    stepper s = { .ctx = ctx, .label = "3xLSTM(64)", .step = classifier_step };
    CK_OK(ctx, build_rnn_stack(ctx, "lstm", 1, &s.m));
    compile(ctx, s.m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    make_batch(&s, 2, (int64_t[]){ 28, 28 }, batch, 1);
    return s;
}

/* The reference DCGAN (tools/models.c) with Adam(2e-4, 0.5), as clnet-train gan. */
static stepper gan_stepper(clnet_context *ctx, int64_t batch)
{
    stepper s = { .ctx = ctx, .label = "DCGAN", .step = gan_iteration };
    CK_OK(ctx, build_dcgan_generator(ctx, 1, &s.m));
    CK_OK(ctx, build_dcgan_discriminator(ctx, 2, &s.d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.adam.lr = 2e-4f;
    p.adam.beta1 = 0.5f;
    p.loss = CLNET_LOSS_NONE; /* the GAN trainer computes its losses */
    CK_OK(ctx, clnet_model_compile(s.m, &p));
    CK_OK(ctx, clnet_model_compile(s.d, &p));
    gan_params g = GAN_PARAMS_DEFAULT;
    g.batch = batch;
    CK_OK(ctx, gan_trainer_create(ctx, s.m, s.d, &g, &s.gan));
    make_batch(&s, 3, (int64_t[]){ 1, 28, 28 }, batch, 0);
    return s;
}

static void stepper_free(stepper *s)
{
    gan_trainer_destroy(s->gan);
    clnet_tensor_destroy(s->x);
    clnet_tensor_destroy(s->y);
    clnet_model_destroy(s->m);
    clnet_model_destroy(s->d);
}

/* ---- Counting what steps do ------------------------------------------------------------ */

/* The OpenCL calls counted one by one through the shim: those that create
 * an object, those that build, and those that wait for the device. */
static const char *const counted_calls[] = {
    "clCreateBuffer",
    "clCreateProgramWithSource",
    "clCreateProgramWithBinary",
    "clBuildProgram",
    "clCreateKernel",
    "clFinish",
    "clEnqueueReadBuffer",
    "clEnqueueWriteBuffer",
};
#define NCALLS (sizeof counted_calls / sizeof counted_calls[0])
enum { MAX_STEPS = 8 };

typedef struct step_counts {
    int steps;
    uint64_t buffers_created, programs, host_waits;
    uint64_t launches[MAX_STEPS];                   /* kernel launches of each step */
    long calls[NCALLS];                             /* shim calls, over `steps` more steps */
    long live_buffers, live_kernels, live_programs; /* shim's live objects: after - before */
} step_counts;

static clnet_context_stats stats(clnet_context *ctx)
{
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    return s;
}

static void run_step(stepper *s)
{
    clnet_status st = s->step(s);
    ck_assert_msg(st == CLNET_OK, "%s step: %s: %s", s->label, clnet_status_name(st),
                  clnet_context_errmsg(s->ctx));
}

/* Runs `steps` steps counting stats, then `steps` more per shim counter. */
static step_counts count_steps(stepper *s, int steps)
{
    ck_assert_int_le(steps, MAX_STEPS);
    step_counts c = { .steps = steps };
    clnet__live l0, l1;
    clnet__fault_live(&l0);
    clnet_context_stats s0 = stats(s->ctx), a = s0, b;
    for (int i = 0; i < steps; i++) {
        run_step(s);
        b = stats(s->ctx);
        c.launches[i] = b.kernel_launches - a.kernel_launches;
        a = b;
    }
    c.buffers_created = a.buffers_created - s0.buffers_created;
    c.programs = a.programs_built + a.programs_loaded - s0.programs_built - s0.programs_loaded;
    c.host_waits = a.host_waits - s0.host_waits;
    for (size_t k = 0; k < NCALLS; k++) {
        clnet__fault_arm(counted_calls[k], LONG_MAX, CL_SUCCESS); /* counts, never fails */
        for (int i = 0; i < steps; i++)
            run_step(s);
        c.calls[k] = clnet__fault_calls();
        clnet__fault_disarm();
    }
    clnet__fault_live(&l1);
    c.live_buffers = l1.buffers - l0.buffers;
    c.live_kernels = l1.kernels - l0.kernels;
    c.live_programs = l1.programs - l0.programs;
    return c;
}

static long calls_of(const step_counts *c, const char *name)
{
    for (size_t k = 0; k < NCALLS; k++)
        if (!strcmp(counted_calls[k], name))
            return c->calls[k];
    ck_abort_msg("no counter for %s", name);
    return -1;
}

/* The claims of docs/speed.md, with `waits` host waits per step (the
 * reads the step asks for). Returns how many fail, printing each; a test
 * asserts 0 (or, as a negative control, more). */
static int waste(const char *label, const step_counts *c, long waits)
{
    int bad = 0;
#define CLAIM(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            bad++;                                                                                 \
            fprintf(stderr, "%s: ", label);                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)
    long n = c->steps;
    CLAIM(c->buffers_created == 0, "%llu buffers created in %ld steps",
          (unsigned long long)c->buffers_created, n);
    CLAIM(c->programs == 0, "%llu programs built or loaded in %ld steps",
          (unsigned long long)c->programs, n);
    CLAIM(c->host_waits == (uint64_t)(waits * n), "%llu host waits in %ld steps, expected %ld",
          (unsigned long long)c->host_waits, n, waits * n);
    for (int i = 1; i < c->steps; i++)
        CLAIM(c->launches[i] == c->launches[0], "step %d launched %llu kernels, step 1 %llu", i + 1,
              (unsigned long long)c->launches[i], (unsigned long long)c->launches[0]);
    CLAIM(c->launches[0] > 0, "no kernel launched");
    static const char *const none[] = { "clCreateBuffer",
                                        "clCreateProgramWithSource",
                                        "clCreateProgramWithBinary",
                                        "clBuildProgram",
                                        "clCreateKernel",
                                        "clFinish" };
    for (size_t k = 0; k < sizeof none / sizeof none[0]; k++)
        CLAIM(calls_of(c, none[k]) == 0, "%ld %s calls in %ld steps", calls_of(c, none[k]), none[k],
              n);
    /* clnet's reads and writes are all blocking: each is a host wait. */
    long rw = calls_of(c, "clEnqueueReadBuffer") + calls_of(c, "clEnqueueWriteBuffer");
    CLAIM(rw == waits * n, "%ld blocking reads and writes in %ld steps, expected %ld", rw, n,
          waits * n);
    CLAIM(c->live_buffers == 0 && c->live_kernels == 0 && c->live_programs == 0,
          "live OpenCL objects changed: %+ld buffers, %+ld kernels, %+ld programs", c->live_buffers,
          c->live_kernels, c->live_programs);
#undef CLAIM
    return bad;
}

static void report(const char *label, const step_counts *c)
{
    fprintf(stderr, "step: %s: %llu launches per step, %llu host waits in %d steps\n", label,
            (unsigned long long)c->launches[0], (unsigned long long)c->host_waits, c->steps);
}

enum { WARMUP = 2, STEPS = 3 };

/* Warm-up, then the claims with and without reading the loss back:
 * waits_read host waits per step when it is read. */
static void check_model(stepper *s, const char *label, long waits_read)
{
    for (int i = 0; i < WARMUP; i++)
        run_step(s);
    step_counts c = count_steps(s, STEPS);
    report(label, &c);
    ck_assert_msg(waste(label, &c, 0) == 0, "%s: a step wastes (see above)", label);
    s->read_loss = 1;
    c = count_steps(s, STEPS);
    ck_assert_msg(waste(label, &c, waits_read) == 0, "%s, reading the loss: a step wastes", label);
    s->read_loss = 0;
}

/* ---- The reference models ------------------------------------------------------------ */

/* train_on_batch without loss or accuracy: no wait at all; with the loss:
 * exactly one (the one-float read). */
START_TEST(cnn_step_wastes_nothing)
{
    clnet_context *ctx = test_context();
    /* The reference batches; 4 and 8 in the small tier (the same kernels). */
    int64_t batch = test_small() ? (_i ? 8 : 4) : (_i ? 64 : 32);
    stepper s = cnn_stepper(ctx, 28, batch);
    char label[32];
    snprintf(label, sizeof label, "CNN b%lld", (long long)batch);
    check_model(&s, label, 1);
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(lstm_step_wastes_nothing)
{
    clnet_context *ctx = test_context();
    int64_t batch = test_small() ? 4 : 32;
    stepper s = lstm_stepper(ctx, batch);
    char label[32];
    snprintf(label, sizeof label, "3xLSTM(64) b%lld", (long long)batch);
    check_model(&s, label, 1);
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

/* One DCGAN iteration (G forward, D step, G step): no wait; reading both
 * losses: two. Batch 64 (the reference) in the long tier, 16 otherwise
 * (2 in the small tier): the same layers and kernels. */
START_TEST(dcgan_iteration_wastes_nothing)
{
    clnet_context *ctx = test_context();
    int64_t batch = test_long() ? 64 : test_small() ? 2 : 16;
    stepper s = gan_stepper(ctx, batch);
    char label[32];
    snprintf(label, sizeof label, "DCGAN b%lld", (long long)batch);
    check_model(&s, label, 2);
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

/* clnet_model_fit without a progress callback: what it uploads (the data,
 * the sample order) and its two reads at the end of the epoch, whatever
 * the number of steps; no program; the same buffers for 4 or 16 steps. */
START_TEST(fit_waits_do_not_grow_with_steps)
{
    clnet_context *ctx = test_context();
    clnet_model *m = cnn_at(ctx, 28);
    compile(ctx, m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    enum { NMAX = 128 };
    const int64_t N = test_small() ? 32 : NMAX; /* steps of 8: 16, 4, 16 (small: 4, 1, 4) */
    float *x = malloc((size_t)NMAX * 784 * sizeof *x);
    int32_t y[NMAX];
    uint64_t seed = 3;
    fill_uniform(x, (size_t)N * 784, 0, 1, &seed);
    for (int i = 0; i < N; i++)
        y[i] = (int32_t)(test_rng(&seed) % 10);
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.batch_size = 8;
    clnet_context_stats d[2];
    for (int run = 0; run < 3; run++) {
        clnet_dataset_view v = { x, y, run == 1 ? N / 4 : N };
        clnet_context_stats a = stats(ctx), b;
        CK_OK(ctx, clnet_model_fit(m, &fp, &v));
        b = stats(ctx);
        if (run == 0)
            continue; /* warm-up: builds and allocates */
        d[run - 1].host_waits = b.host_waits - a.host_waits;
        d[run - 1].buffers_created = b.buffers_created - a.buffers_created;
        d[run - 1].programs_built =
            b.programs_built + b.programs_loaded - a.programs_built - a.programs_loaded;
    }
    /* Uploads of x, y and the order, then the loss and correct sums. */
    ck_assert_uint_eq(d[0].host_waits, 5);
    ck_assert_uint_eq(d[1].host_waits, 5);
    ck_assert_uint_eq(d[0].buffers_created, d[1].buffers_created);
    ck_assert_uint_eq(d[0].programs_built + d[1].programs_built, 0);
    free(x);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- New shapes ----------------------------------------------------------------------------- */

/* Programs built or loaded, and clBuildProgram calls, while f runs. */
typedef struct builds {
    uint64_t programs;
    long build_calls;
} builds;

static builds count_builds(stepper *s, int steps)
{
    clnet_context_stats a = stats(s->ctx), b;
    clnet__fault_arm("clBuildProgram", LONG_MAX, CL_SUCCESS);
    for (int i = 0; i < steps; i++)
        run_step(s);
    builds r = { 0, clnet__fault_calls() };
    clnet__fault_disarm();
    b = stats(s->ctx);
    r.programs = b.programs_built + b.programs_loaded - a.programs_built - a.programs_loaded;
    return r;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One step, finished: its wall time in ms. */
static double timed_step(stepper *s)
{
    double t0 = seconds();
    run_step(s);
    CK_OK(s->ctx, clnet_context_finish(s->ctx));
    return 1e3 * (seconds() - t0);
}

/* Kernels take shapes as run-time arguments and every launch uses the
 * profile's work-group size (or 1 x 1 x 1), so pocl compiles no kernel again
 * for a new size: after a step at batch 32, a step at 64, 1, 17 and back at
 * 32 builds nothing (larger batches allocate, smaller ones use views). The
 * first step at each new batch and the next one are timed for docs/speed.md
 * (printed, not asserted: the machine is shared). */
START_TEST(new_batch_size_builds_no_program)
{
    clnet_context *ctx = test_context();
    /* From 32 to 64, 1, 17 and back; the small tier from 4 to 8, 1, 3, 4. */
    const int small = test_small();
    const int64_t start = small ? 4 : 32;
    stepper s = cnn_stepper(ctx, 28, start);
    run_step(&s);
    const int64_t batches[] = { small ? 8 : 64, 1, small ? 3 : 17, start };
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        clnet_tensor_destroy(s.x);
        clnet_tensor_destroy(s.y);
        make_batch(&s, 3, (int64_t[]){ 1, 28, 28 }, batches[i], 1);
        builds b = count_builds(&s, 1);
        ck_assert_msg(b.programs == 0 && b.build_calls == 0,
                      "CNN at batch %lld: %llu programs, %ld clBuildProgram calls",
                      (long long)batches[i], (unsigned long long)b.programs, b.build_calls);
        if (batches[i] == start)
            continue;
        clnet_tensor_destroy(s.x);
        clnet_tensor_destroy(s.y);
        make_batch(&s, 3, (int64_t[]){ 1, 28, 28 }, batches[i] + 2, 1); /* new again */
        double first = timed_step(&s), next = timed_step(&s);
        fprintf(stderr, "step: CNN at new batch %lld: first step %.1f ms, next %.1f ms\n",
                (long long)batches[i] + 2, first, next);
    }
    stepper_free(&s);
    /* The LSTM stack likewise. */
    s = lstm_stepper(ctx, small ? 4 : 32);
    run_step(&s);
    clnet_tensor_destroy(s.x);
    clnet_tensor_destroy(s.y);
    make_batch(&s, 2, (int64_t[]){ 28, 28 }, 5, 1);
    builds b = count_builds(&s, 1);
    ck_assert_msg(b.programs == 0 && b.build_calls == 0, "LSTM at batch 5: %llu programs",
                  (unsigned long long)b.programs);
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

/* The same CNN on 36x36 and 20x20 images, and the LSTM stack on 20 steps
 * of 12 features, in a context that trained the 28x28 ones: no program. */
START_TEST(new_input_size_builds_no_program)
{
    clnet_context *ctx = test_context();
    stepper s = cnn_stepper(ctx, 28, 8);
    run_step(&s);
    stepper_free(&s);
    static const int64_t sides[] = { 36, 20 };
    for (size_t i = 0; i < 2; i++) {
        s = cnn_stepper(ctx, sides[i], 8);
        builds b = count_builds(&s, 2);
        ck_assert_msg(b.programs == 0 && b.build_calls == 0,
                      "CNN on %lldx%lld: %llu programs, %ld clBuildProgram calls",
                      (long long)sides[i], (long long)sides[i], (unsigned long long)b.programs,
                      b.build_calls);
        stepper_free(&s);
    }
    s = lstm_stepper(ctx, 8);
    run_step(&s);
    stepper_free(&s);
    s = (stepper){ .ctx = ctx, .label = "LSTM 20x12", .step = classifier_step };
    CK_OK(ctx, clnet_model_create(ctx, 2, (int64_t[]){ 20, 12 }, 1, &s.m));
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 64;
    for (int i = 0; i < 3; i++) {
        p.return_sequences = i < 2;
        CK_OK(ctx, clnet_model_add_lstm(s.m, &p));
    }
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(s.m, &d));
    compile(ctx, s.m, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    make_batch(&s, 2, (int64_t[]){ 20, 12 }, 8, 1);
    builds b = count_builds(&s, 2);
    ck_assert_msg(b.programs == 0 && b.build_calls == 0, "LSTM on 20x12: %llu programs",
                  (unsigned long long)b.programs);
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Negative controls ------------------------------------------------------------------- */

/* The checker fails where a step does waste: a step after growing the
 * batch allocates (activations sized for the largest batch), and a step
 * that reads the loss waits once more than a checker expecting none. */
START_TEST(waste_checker_catches_allocation_and_reads)
{
    clnet_context *ctx = test_context();
    stepper s = cnn_stepper(ctx, 28, 8);
    for (int i = 0; i < WARMUP; i++)
        run_step(&s);
    step_counts c = count_steps(&s, 1);
    ck_assert_int_eq(waste("control: warm", &c, 0), 0);
    /* A larger batch: the first step allocates. */
    clnet_tensor_destroy(s.x);
    clnet_tensor_destroy(s.y);
    make_batch(&s, 3, (int64_t[]){ 1, 28, 28 }, 16, 1);
    clnet_context_stats a = stats(ctx);
    clnet__fault_arm("clCreateBuffer", LONG_MAX, CL_SUCCESS);
    run_step(&s);
    long created = clnet__fault_calls();
    clnet__fault_disarm();
    clnet_context_stats b = stats(ctx);
    ck_assert_int_gt(created, 0);
    step_counts grow = { .steps = 1, .launches = { b.kernel_launches - a.kernel_launches } };
    grow.buffers_created = b.buffers_created - a.buffers_created;
    grow.calls[0] = created;
    ck_assert_int_gt(waste("control: batch grown (expected to fail)", &grow, 0), 0);
    /* A read the checker was not told of. */
    s.read_loss = 1;
    c = count_steps(&s, 2);
    ck_assert_int_eq(waste("control: loss read", &c, 1), 0);
    ck_assert_int_gt(waste("control: loss read, expected none (expected to fail)", &c, 0), 0);
    /* A clFinish inside the step: the shim sees it. */
    s.read_loss = 0;
    clnet__fault_arm("clFinish", LONG_MAX, CL_SUCCESS);
    run_step(&s);
    CK_OK(ctx, clnet_context_finish(ctx));
    ck_assert_int_eq(clnet__fault_calls(), 1);
    clnet__fault_disarm();
    stepper_free(&s);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_step(void)
{
    Suite *s = suite_create("step");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, cnn_step_wastes_nothing, 0, 2);
    tcase_add_test(tc, lstm_step_wastes_nothing);
    tcase_add_test(tc, dcgan_iteration_wastes_nothing);
    tcase_add_test(tc, fit_waits_do_not_grow_with_steps);
    tcase_add_test(tc, new_batch_size_builds_no_program);
    tcase_add_test(tc, new_input_size_builds_no_program);
    tcase_add_test(tc, waste_checker_catches_allocation_and_reads);
    suite_add_tcase(s, tc);
    return s;
}
