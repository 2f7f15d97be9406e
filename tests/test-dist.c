/* clnet tests — data-parallel training over MPI (suite "dist"): run under
 * `mpirun -np 2` by meson (it also passes on one rank). N ranks must give
 * what one process gives: the same parameters after 20 steps with uneven
 * shards, an empty shard and one or several buckets, within float32
 * reduction noise; with a negative control (equal weights) that must fail
 * the same comparison. Also: failures agreed across ranks and naming the
 * rank, a device per rank, parameters broadcast from rank 0, divergence
 * detection, reduced evaluation, bad calls. `--scenario NAME` runs one of
 * the fault scenarios of tests/test-dist-faults.sh instead.
 * Check runs without fork (a forked MPI process cannot communicate), every
 * rank runs every test in the same order, and every collective has a
 * deadline, so a failing test cannot hang the others. */
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/callbacks.h"
#include "clnet/dist.h"
#include "clnet/history.h"
#include "harness.h"
#include "nn/nn_impl.h"

/* ---- Helpers ------------------------------------------------------------------------- */

/* A dist with a test-sized timeout: a desynchronized test fails in seconds. */
static clnet_dist *dist_with(size_t bucket_bytes, int equal_weights)
{
    clnet_dist_params p = CLNET_DIST_PARAMS_DEFAULT;
    p.timeout_s = 120;
    p.bucket_bytes = bucket_bytes;
    p.equal_weights = equal_weights;
    clnet_dist *d = NULL;
    char err[2048];
    clnet_status st = clnet_dist_create(&p, &d, err, sizeof err);
    ck_assert_msg(st == CLNET_OK, "clnet_dist_create: %s", err);
    return d;
}

/* Conv2D(4, 3x3, relu) > MaxPool(2) > Flatten > Dense(units, relu) >
 * Dense(4, softmax) on 1x8x8 inputs; Adam lr 0.01 so that 20 steps move the
 * weights well beyond rounding. Plain statuses: the fault scenarios run it
 * outside Check. */
static clnet_status build_small_cnn(clnet_context *ctx, uint64_t seed, int units, clnet_model **out)
{
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 3, (int64_t[]){ 1, 8, 8 }, seed, &m);
    if (st)
        return st;
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 4;
    c.activation = CLNET_ACT_RELU;
    clnet_pool2d_layer_params pool = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    clnet_dense_params h = CLNET_DENSE_PARAMS_DEFAULT, o = CLNET_DENSE_PARAMS_DEFAULT;
    h.units = units;
    h.activation = CLNET_ACT_RELU;
    o.units = 4;
    o.activation = CLNET_ACT_SOFTMAX;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = 0.01f;
    if ((st = clnet_model_add_conv2d(m, &c)) || (st = clnet_model_add_maxpool2d(m, &pool)) ||
        (st = clnet_model_add_flatten(m)) || (st = clnet_model_add_dense(m, &h)) ||
        (st = clnet_model_add_dense(m, &o)) || (st = clnet_model_compile(m, &cp))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

static clnet_model *small_cnn(clnet_context *ctx, uint64_t seed, int units)
{
    clnet_model *m = NULL;
    CK_OK(ctx, build_small_cnn(ctx, seed, units, &m));
    return m;
}

/* count random 8x8 images labelled by their brightest quadrant. */
typedef struct dataset {
    float *x;
    int32_t *y;
    clnet_dataset_view view;
} dataset;

static dataset make_data(int64_t count, uint64_t seed)
{
    dataset s = { malloc((size_t)count * 64 * sizeof(float)),
                  malloc((size_t)count * sizeof(int32_t)),
                  { 0 } };
    fill_uniform(s.x, (size_t)count * 64, -1, 1, &seed);
    for (int64_t i = 0; i < count; i++) {
        double q[4] = { 0 };
        for (int p = 0; p < 64; p++)
            q[(p / 32) * 2 + (p % 8) / 4] += s.x[i * 64 + p];
        int best = 0;
        for (int k = 1; k < 4; k++)
            best = q[k] > q[best] ? k : best;
        s.y[i] = best;
    }
    s.view = (clnet_dataset_view){ s.x, s.y, count };
    return s;
}

static void free_data(dataset *s)
{
    free(s->x);
    free(s->y);
}

/* Every parameter's values (running statistics too), concatenated. */
static float *params_of(clnet_context *ctx, const clnet_model *m, size_t *n)
{
    *n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            *n += clnet_tensor_numel(m->layers[i]->params[k].value);
    float *all = malloc(*n * sizeof *all + 1), *at = all;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            size_t c = clnet_tensor_numel(m->layers[i]->params[k].value);
            download(ctx, m->layers[i]->params[k].value, at, c);
            at += c;
        }
    return all;
}

static size_t trained_floats(const clnet_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            if (m->layers[i]->params[k].grad)
                n += clnet_tensor_numel(m->layers[i]->params[k].value);
    return n;
}

/* Elements of got that differ from ref by more than atol + rtol * |ref|;
 * prints the first few and the largest difference. */
static size_t count_off(const char *label, const float *got, const float *ref, size_t n,
                        double atol, double rtol, int quiet)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - ref[i]);
        worst = diff > worst ? diff : worst;
        if (!(diff <= atol + rtol * fabs(ref[i])) && bad++ < 3 && !quiet)
            fprintf(stderr, "%s: [%zu] one process %.9g, ranks %.9g\n", label, i, ref[i], got[i]);
    }
    if (!quiet)
        fprintf(stderr, "%s: %zu of %zu beyond tolerance, largest difference %.3g\n", label, bad, n,
                worst);
    return bad;
}

/* Records the loss of each epoch (fit's progress callback). */
typedef struct losses {
    int n;
    double loss[8], accuracy[8];
} losses;

static void keep_loss(void *user, const clnet_progress *p)
{
    losses *l = user;
    if (p->end_of_epoch && l->n < 8) {
        l->loss[l->n] = p->loss;
        l->accuracy[l->n++] = p->accuracy;
    }
}

/* ---- Joining, agreeing, devices -------------------------------------------------------- */

START_TEST(ranks_and_sums)
{
    clnet_dist *d = dist_with(0, 0);
    int r = clnet_dist_rank(d), n = clnet_dist_size(d);
    ck_assert_int_ge(n, 1);
    ck_assert(r >= 0 && r < n);
    /* One host here: the local rank is the rank. */
    ck_assert_int_eq(clnet_dist_local_rank(d), r);
    ck_assert_str_eq(clnet_dist_errmsg(d), "");
    ck_assert_int_eq(clnet_dist_available(), 1);
    ck_assert_int_eq(clnet_dist_launched(),
                     getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK"));
    double v[3] = { r + 1.0, 0.25, -(double)r };
    ck_assert_int_eq(clnet_dist_allreduce_sum(d, v, 3), CLNET_OK);
    ck_assert(v[0] == n * (n + 1) / 2.0 && v[1] == 0.25 * n && v[2] == -n * (n - 1) / 2.0);
    ck_assert_int_eq(clnet_dist_allreduce_sum(d, NULL, 0), CLNET_OK);
    ck_assert_int_eq(clnet_dist_allreduce_sum(d, NULL, 2), CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(clnet_dist_errmsg(d), "values must hold n >= 0 doubles"));
    ck_assert_int_eq(clnet_dist_allreduce_sum(d, v, -1), CLNET_ERR_INVALID_ARG);
    /* NULL handles: neutral answers, no crash. */
    ck_assert(clnet_dist_rank(NULL) == 0 && clnet_dist_size(NULL) == 1 &&
              !*clnet_dist_errmsg(NULL));
    ck_assert_int_eq(clnet_dist_agree(NULL, CLNET_OK, "x", NULL, NULL, 0), CLNET_ERR_INVALID_ARG);
    clnet_dist_destroy(NULL);
    clnet_dist_destroy(d);
}
END_TEST

START_TEST(agree_names_the_lowest_failing_rank)
{
    clnet_dist *d = dist_with(0, 0);
    int r = clnet_dist_rank(d), n = clnet_dist_size(d);
    char err[512] = "untouched";
    ck_assert_int_eq(clnet_dist_agree(d, CLNET_OK, "loading", "ignored", err, sizeof err),
                     CLNET_OK);
    ck_assert_str_eq(err, "untouched");
    /* The last rank fails: every rank learns who and why. */
    clnet_status st = clnet_dist_agree(d, r == n - 1 ? CLNET_ERR_IO : CLNET_OK, "loading",
                                       "disk on fire", err, sizeof err);
    char want[64];
    snprintf(want, sizeof want, "rank %d: loading: disk on fire", n - 1);
    ck_assert_int_eq(st, CLNET_ERR_IO);
    ck_assert_str_eq(err, want);
    ck_assert_str_eq(clnet_dist_errmsg(d), want);
    /* Every rank fails: the lowest one's status and message win; a NULL
     * message becomes the status' name. */
    st = clnet_dist_agree(d, r ? CLNET_ERR_FORMAT : CLNET_ERR_NO_DEVICE, "creating", NULL, err,
                          sizeof err);
    ck_assert_int_eq(st, CLNET_ERR_NO_DEVICE);
    ck_assert_str_eq(err, "rank 0: creating: CLNET_ERR_NO_DEVICE");
    clnet_dist_destroy(d);
}
END_TEST

START_TEST(a_device_list_gives_each_rank_its_entry)
{
    clnet_dist *d = dist_with(0, 0);
    int n = clnet_dist_size(d);
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    const char *dev = getenv("CLNET_TEST_DEVICE");
    char list[256], err[2048];
    /* Entry 1 matches nothing: with 2 ranks rank 1 fails, and so does the job. */
    snprintf(list, sizeof list, "%s,no-such-device-here", dev && *dev ? dev : "cpu");
    p.device = list;
    clnet_context *ctx = (clnet_context *)1;
    clnet_status st = clnet_dist_context_create(d, &p, &ctx, err, sizeof err);
    if (n == 1) {
        ck_assert_msg(st == CLNET_OK, "%s", err);
        clnet_context_destroy(ctx);
    } else {
        ck_assert_int_eq(st, CLNET_ERR_NO_DEVICE);
        ck_assert_ptr_null(ctx);
        ck_assert_msg(strstr(err, "rank 1: creating its device (spec \"no-such-device-here\")"),
                      "%s", err);
    }
    /* The working entry for everybody (the list wraps around). */
    snprintf(list, sizeof list, "%s", dev && *dev ? dev : "cpu");
    st = clnet_dist_context_create(d, &p, &ctx, err, sizeof err);
    ck_assert_msg(st == CLNET_OK, "%s", err);
    clnet_context_destroy(ctx);
    clnet_dist_destroy(d);
}
END_TEST

/* ---- Attaching ---------------------------------------------------------------------------- */

START_TEST(attach_copies_rank_0s_parameters)
{
    clnet_dist *d = dist_with(0, 0);
    clnet_context *ctx = test_context();
    int r = clnet_dist_rank(d);
    clnet_model *m = small_cnn(ctx, 100 + (uint64_t)r, 8), *fresh = small_cnn(ctx, 100, 8);
    size_t n, n0;
    CK_OK(ctx, clnet_dist_attach(d, m));
    float *got = params_of(ctx, m, &n), *want = params_of(ctx, fresh, &n0);
    ck_assert_uint_eq(n, n0);
    ck_assert_msg(!memcmp(got, want, n * sizeof *got), "rank %d does not hold rank 0's weights", r);
    CK_OK(ctx, clnet_dist_check_params(d, m));
    clnet_dist_stats s;
    CK_OK(ctx, clnet_dist_get_stats(d, m, &s));
    ck_assert_int_eq(s.steps, 0);
    ck_assert_uint_eq(s.bytes_per_step, (trained_floats(m) + 1) * sizeof(float));
    CK_OK(ctx, clnet_dist_detach(d, m));
    ck_assert(m->hooks.grads_ready == NULL && m->hooks.before_step == NULL);
    free(got);
    free(want);
    clnet_model_destroy(m);
    clnet_model_destroy(fresh);
    clnet_dist_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative control of check_params: one element off on the last rank. */
START_TEST(check_params_names_a_diverged_rank)
{
    clnet_dist *d = dist_with(0, 0);
    clnet_context *ctx = test_context();
    int r = clnet_dist_rank(d), n = clnet_dist_size(d);
    clnet_model *m = small_cnn(ctx, 3, 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    if (r == n - 1 && n > 1) {
        clnet_tensor *k = m->layers[3]->params[0].value;
        size_t c = clnet_tensor_numel(k);
        float *v = malloc(c * sizeof *v);
        download(ctx, k, v, c);
        v[c / 2] = nextafterf(v[c / 2], INFINITY);
        CK_OK(ctx, clnet_tensor_upload(k, v, c * sizeof *v));
        free(v);
    }
    clnet_status st = clnet_dist_check_params(d, m);
    if (n == 1) {
        CK_OK(ctx, st);
    } else {
        char want[96];
        snprintf(want, sizeof want, "rank %d's layers.3.kernel differs from rank 0's", n - 1);
        ck_assert_int_eq(st, CLNET_ERR_INTERNAL);
        ck_assert_msg(strstr(clnet_context_errmsg(ctx), want), "%s", clnet_context_errmsg(ctx));
    }
    clnet_dist_destroy(d); /* detaches m */
    ck_assert(m->hooks.grads_ready == NULL);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

static clnet_status batch_hook(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)user;
    (void)m;
    (void)ev;
    return CLNET_OK;
}

START_TEST(bad_attachments_are_refused)
{
    clnet_dist *d = dist_with(0, 0);
    clnet_context *ctx = test_context();
    int r = clnet_dist_rank(d), n = clnet_dist_size(d);
    /* Rank 1 builds Dense(9) where rank 0 has Dense(8). */
    clnet_model *m = small_cnn(ctx, 3, r == 1 ? 9 : 8);
    clnet_status st = clnet_dist_attach(d, m);
    if (n > 1) {
        ck_assert_int_eq(st, CLNET_ERR_SHAPE);
        ck_assert_msg(
            strstr(clnet_context_errmsg(ctx), "rank 1's layers.3.kernel differs from rank 0's"),
            "%s", clnet_context_errmsg(ctx));
        clnet_model_destroy(m);
        m = small_cnn(ctx, 3, 8);
        st = clnet_dist_attach(d, m);
    }
    CK_OK(ctx, st);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "already attached", clnet_dist_attach(d, m));
    /* A model that is not compiled has no optimizer state to share. */
    clnet_model *raw;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ 4 }, 1, &raw));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "compile the model first", clnet_dist_attach(d, raw));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "not attached", clnet_dist_detach(d, raw));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "not attached", clnet_dist_skip_batch(d, raw));
    dataset s = make_data(10, 1);
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "not attached", clnet_dist_fit(d, raw, &fp, &s.view));
    fp.batch_size = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "batch_size > 0", clnet_dist_fit(d, m, &fp, &s.view));
    /* What clnet_model_fit alone takes is refused by name, not ignored. */
    clnet_callback cb = { .batch_end = batch_hook };
    clnet_fit_params more = CLNET_FIT_PARAMS_DEFAULT;
    more.callbacks = &cb;
    more.ncallbacks = 1;
    CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "a callback with batch_end is set",
             clnet_dist_fit(d, m, &more, &s.view));
    more.ncallbacks = 0;
    more.initial_epoch = 1;
    CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "initial_epoch is set",
             clnet_dist_fit(d, m, &more, &s.view));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "batch_size is 0",
             clnet_dist_evaluate(d, m, &s.view, 0, NULL, NULL));
    s.view.count = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "count 0",
             clnet_dist_evaluate(d, m, &s.view, 8, NULL, NULL));
    clnet_dist_stats stats;
    ck_assert_int_eq(clnet_dist_get_stats(d, raw, &stats), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_dist_attach(d, NULL), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_dist_attach(NULL, m), CLNET_ERR_INVALID_ARG);
    free_data(&s);
    clnet_model_destroy(raw);
    CK_OK(ctx, clnet_dist_detach(d, m));
    clnet_model_destroy(m);
    clnet_dist_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* The contract of an attached model: a backward before every step, or
 * clnet_dist_skip_batch; the same on every rank, so no rank waits. */
START_TEST(a_step_needs_a_backward_or_a_skip)
{
    clnet_dist *d = dist_with(0, 0);
    clnet_context *ctx = test_context();
    clnet_model *m = small_cnn(ctx, 3, 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "run backward before every step", clnet_model_step(m));
    CK_OK(ctx, clnet_dist_skip_batch(d, m));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no rank had rows in this batch", clnet_model_step(m));
    CK_OK(ctx, clnet_dist_check_params(d, m));
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* A custom loop may run backward twice before a step (a GAN's two
 * discriminator passes): the second pass's gradients are the ones averaged,
 * as in one process where backward overwrites. Every rank uses the same
 * rows here, so the average is the gradient itself, up to the rounding of
 * n * g / n. */
START_TEST(a_second_backward_replaces_the_first)
{
    clnet_dist *d = dist_with(1, 0);
    clnet_context *ctx = test_context();
    clnet_model *m = small_cnn(ctx, 9, 8), *ref = small_cnn(ctx, 9, 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    /* 13 rows: x is rows 0..11, x2 rows 1..12. */
    dataset s = make_data(13, 3);
    clnet_tensor *x = tensor_from(ctx, 4, (int64_t[]){ 12, 1, 8, 8 }, s.x), *y;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ 12 }, &y));
    CK_OK(ctx, clnet_tensor_upload(y, s.y, 12 * sizeof(int32_t)));
    clnet_tensor *x2 = tensor_from(ctx, 4, (int64_t[]){ 12, 1, 8, 8 }, s.x + 64), *dl;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ 12, 4 }, &dl));
    CK_OK(ctx, clnet_tensor_fill(dl, 0.125));
    clnet_model *both[2] = { m, ref };
    for (int k = 0; k < 2; k++) {
        /* m: a first pass on x2, then x; ref: only the pass on x. */
        if (k == 0) {
            CK_OK(ctx, clnet_model_forward(m, x2, 1, NULL, NULL));
            CK_OK(ctx, clnet_model_backward(m, dl, NULL));
        }
        CK_OK(ctx, clnet_model_forward(both[k], x, 1, NULL, NULL));
        CK_OK(ctx, clnet_model_backward(both[k], dl, NULL));
        CK_OK(ctx, clnet_model_step(both[k]));
    }
    size_t n, n0;
    float *got = params_of(ctx, m, &n), *want = params_of(ctx, ref, &n0);
    ck_assert_uint_eq(n, n0);
    ck_assert_msg(count_off("second backward", got, want, n, 1e-7, 0, 0) == 0,
                  "the step did not use the second backward's gradients");
    CK_OK(ctx, clnet_dist_check_params(d, m));
    free(got);
    free(want);
    free_data(&s);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(x2);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(dl);
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    clnet_model_destroy(ref);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The same result as one process -----------------------------------------------------------
 */

/* Trains `seed`'s model 2 epochs on data with batch b over the ranks of d,
 * after one process did the same with ref (trained on rank 0 only). */
typedef struct run {
    size_t n;
    float *params;
    losses log;
    clnet_dist_stats stats;
    clnet_history history; /* the ranks' run: every rank's own */
} run;

static run train_ranks(clnet_dist *d, clnet_context *ctx, const dataset *s, int b)
{
    /* Ranks other than 0 start from other weights: attach must fix that. */
    clnet_model *m = small_cnn(ctx, 7 + 1000 * (uint64_t)clnet_dist_rank(d), 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    run out = { 0 };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = 2;
    fp.batch_size = b;
    fp.shuffle_seed = 5;
    fp.progress = keep_loss;
    fp.progress_user = &out.log;
    fp.history = &out.history;
    CK_OK(ctx, clnet_dist_fit(d, m, &fp, &s->view));
    CK_OK(ctx, clnet_dist_check_params(d, m));
    CK_OK(ctx, clnet_dist_get_stats(d, m, &out.stats));
    out.params = params_of(ctx, m, &out.n);
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    return out;
}

static run train_one_process(clnet_context *ctx, const dataset *s, int b)
{
    clnet_model *m = small_cnn(ctx, 7, 8);
    run out = { 0 };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = 2;
    fp.batch_size = b;
    fp.shuffle_seed = 5;
    fp.progress = keep_loss;
    fp.progress_user = &out.log;
    CK_OK(ctx, clnet_model_fit(m, &fp, &s->view));
    out.params = params_of(ctx, m, &out.n);
    clnet_model_destroy(m);
    return out;
}

/* Tolerance of N ranks against one process after 20 Adam steps (lr 0.01).
 * The ranks sum n_r * g_r and divide by the rows, in another order than one
 * process's mean: ~1e-7 relative per gradient element. Adam divides by
 * sqrt(v), so that noise reaches the weights at about lr * 1e-7 per step,
 * more where a gradient is near zero. Measured on pocl: at most 9e-8
 * (3 ulp of the largest weights); 2e-6 leaves 20x. The negative control
 * (equal weights) misses by ~0.09: uneven shards change the trajectory.
 * Losses are float sums of batch means: 1e-5 relative. The accuracy may
 * differ by one sample if a prediction sits on a tie. */
#define PARAM_ATOL 2e-6
#define PARAM_RTOL 0.0
#define LOSS_RTOL 1e-5

START_TEST(ranks_match_one_process)
{
    /* 284 = 9 * 31 + 5: shards 15/16 each step, a last batch of 5 (2/3);
     * 280: a last batch of one row, so rank 0 has none there. Bucket size 1
     * byte: one bucket per layer, started during backward. */
    static const struct {
        int64_t count;
        size_t bucket_bytes;
        int buckets;
    } cases[] = { { 284, 0, 1 }, { 280, 1, 3 } };
    clnet_context *ctx = test_context();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dataset s = make_data(cases[c].count, 11);
        clnet_dist *d = dist_with(cases[c].bucket_bytes, 0);
        int r = clnet_dist_rank(d), n = clnet_dist_size(d);
        run ref = { 0 };
        if (r == 0)
            ref = train_one_process(ctx, &s, 31);
        run got = train_ranks(d, ctx, &s, 31);
        ck_assert_int_eq(got.stats.steps, 20);
        ck_assert_int_eq(got.stats.buckets, cases[c].buckets);
        char label[96];
        snprintf(label, sizeof label, "%d ranks vs one process, %lld rows, %d bucket(s)", n,
                 (long long)cases[c].count, cases[c].buckets);
        /* Every rank's history: epochs 1 and 2 with the all-reduced
         * metrics (the same on every rank: min = max over the ranks), on
         * rank 0 those progress reported. */
        ck_assert_int_eq(got.history.count, 2);
        for (int e = 0; e < 2; e++) {
            const clnet_epoch_log *row = &got.history.epochs[e];
            double v[3] = { row->loss, row->accuracy, row->lr }, lo[3], hi[3];
            ck_assert_int_eq(MPI_Allreduce(v, lo, 3, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD),
                             MPI_SUCCESS);
            ck_assert_int_eq(MPI_Allreduce(v, hi, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD),
                             MPI_SUCCESS);
            ck_assert_msg(!memcmp(lo, hi, sizeof lo), "epoch %d: the ranks' history rows differ",
                          e + 1);
            ck_assert_int_eq(row->epoch, e + 1);
            ck_assert(row->lr == (double)0.01f && row->seconds > 0 && row->val_loss == -1);
            if (r == 0)
                ck_assert(row->loss == got.log.loss[e] && row->accuracy == got.log.accuracy[e]);
        }
        clnet_history_free(&got.history);
        if (r == 0) {
            ck_assert_uint_eq(got.n, ref.n);
            ck_assert_msg(
                count_off(label, got.params, ref.params, got.n, PARAM_ATOL, PARAM_RTOL, 0) == 0,
                "%s: parameters differ beyond reduction noise", label);
            ck_assert_int_eq(got.log.n, 2);
            for (int e = 0; e < 2; e++) {
                ck_assert_msg(fabs(got.log.loss[e] - ref.log.loss[e]) <=
                                  LOSS_RTOL * ref.log.loss[e],
                              "%s: epoch %d loss %.9g, one process %.9g", label, e + 1,
                              got.log.loss[e], ref.log.loss[e]);
                ck_assert_msg(fabs(got.log.accuracy[e] - ref.log.accuracy[e]) <=
                                  1.0 / (double)cases[c].count,
                              "%s: epoch %d accuracy %.6f vs %.6f", label, e + 1,
                              got.log.accuracy[e], ref.log.accuracy[e]);
            }
        }
        /* Run again: bitwise the same (deterministic reductions). */
        if (c == 0) {
            run again = train_ranks(dist_with(cases[c].bucket_bytes, 0), ctx, &s, 31);
            ck_assert_msg(!memcmp(again.params, got.params, got.n * sizeof(float)),
                          "rank %d: two identical runs differ", r);
            free(again.params);
            clnet_history_free(&again.history);
        }
        /* Negative control: DDP's equal weights are biased by the uneven
         * shards and must fail the comparison that passed above. */
        if (n > 1 && c == 0) {
            run eq = train_ranks(dist_with(cases[c].bucket_bytes, 1), ctx, &s, 31);
            if (r == 0)
                ck_assert_msg(
                    count_off(label, eq.params, ref.params, eq.n, PARAM_ATOL, PARAM_RTOL, 1) > 0,
                    "equal weights pass the comparison: it cannot see the weighting");
            free(eq.params);
            clnet_history_free(&eq.history);
        }
        free(ref.params);
        free(got.params);
        free_data(&s);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Callbacks on rank 0 ------------------------------------------------------------------- */

/* A user callback (first in the list) that replaces the validation loss
 * with a crafted one and keeps the weights of each epoch. */
typedef struct crafter {
    clnet_context *ctx;
    int calls;
    float *weights[8];
    size_t n;
} crafter;

static clnet_status craft_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    static const double vl[] = { 1.0, 0.5, 0.7, 0.4, 0.3, 0.2 };
    crafter *c = user;
    c->calls++;
    ev->log->val_loss = vl[ev->epoch - 1];
    c->weights[ev->epoch - 1] = params_of(c->ctx, m, &c->n);
    return CLNET_OK;
}

/* Rank 0 runs the callbacks; the others follow its learning rate, stop
 * and best weights: a step schedule halving the rate each epoch and early
 * stopping (patience 1, best weights restored) on crafted losses (best at
 * epoch 2, epoch 3 worse) stop every rank after epoch 3 with epoch 2's
 * weights, every rank's history holding the halved rates. */
START_TEST(callbacks_run_on_rank_0_and_every_rank_follows)
{
    clnet_context *ctx = test_context();
    clnet_dist *d = dist_with(0, 0);
    int r = clnet_dist_rank(d);
    clnet_model *m = small_cnn(ctx, 7 + 1000 * (uint64_t)r, 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    dataset s = make_data(64, 13);
    crafter c = { .ctx = ctx };
    clnet_callback cbs[3] = { { .epoch_end = craft_epoch_end, .user = &c } };
    clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    sp.kind = CLNET_LR_STEP;
    sp.step_epochs = 1;
    sp.gamma = 0.5;
    CK_OK(ctx, clnet_callback_lr_schedule(ctx, &sp, &cbs[1]));
    clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
    ep.patience = 1;
    ep.restore_best_weights = 1;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &cbs[2]));
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = 6;
    fp.batch_size = 16;
    fp.shuffle_seed = 3;
    fp.callbacks = cbs;
    fp.ncallbacks = 3;
    fp.history = &h;
    CK_OK(ctx, clnet_dist_fit(d, m, &fp, &s.view));
    ck_assert_int_eq(c.calls, r == 0 ? 3 : 0);
    ck_assert_int_eq(h.count, 3);
    for (int e = 0; e < 3; e++)
        ck_assert_msg(h.epochs[e].lr == (double)(float)(0.01f * pow(0.5, e)),
                      "rank %d epoch %d: lr %g", r, e + 1, h.epochs[e].lr);
    CK_OK(ctx, clnet_dist_check_params(d, m));
    size_t n;
    float *now = params_of(ctx, m, &n);
    if (r == 0) {
        int best;
        ck_assert_int_eq(clnet_callback_stopped_epoch(&cbs[2], &best), 3);
        ck_assert_int_eq(best, 2);
        ck_assert(n == c.n && !memcmp(now, c.weights[1], n * sizeof *now));
        ck_assert(memcmp(now, c.weights[2], n * sizeof *now));
    }
    free(now);
    for (int e = 0; e < 8; e++)
        free(c.weights[e]);
    clnet_callback_release(&cbs[1]);
    clnet_callback_release(&cbs[2]);
    clnet_history_free(&h);
    free_data(&s);
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(evaluation_is_reduced_over_ranks)
{
    clnet_dist *d = dist_with(0, 0);
    clnet_context *ctx = test_context();
    clnet_model *m = small_cnn(ctx, 5, 8);
    CK_OK(ctx, clnet_dist_attach(d, m));
    /* 101 rows: shards 50/51; 1 row: rank 0 has none. */
    for (int64_t count = 101; count > 0; count -= 100) {
        dataset s = make_data(count, 13);
        double l1, a1, ln, an;
        CK_OK(ctx, clnet_model_evaluate(m, &s.view, 16, &l1, &a1));
        CK_OK(ctx, clnet_dist_evaluate(d, m, &s.view, 16, &ln, &an));
        ck_assert_msg(fabs(ln - l1) <= 1e-6 * l1,
                      "count %lld: loss %.9g over the ranks, %.9g in one", (long long)count, ln,
                      l1);
        ck_assert_msg(fabs(an - a1) < 1e-12, "count %lld: accuracy %.6f vs %.6f", (long long)count,
                      an, a1);
        free_data(&s);
    }
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

static Suite *suite_dist(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("ranks");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, ranks_and_sums);
    tcase_add_test(tc, agree_names_the_lowest_failing_rank);
    tcase_add_test(tc, a_device_list_gives_each_rank_its_entry);
    tcase_add_test(tc, attach_copies_rank_0s_parameters);
    tcase_add_test(tc, check_params_names_a_diverged_rank);
    tcase_add_test(tc, bad_attachments_are_refused);
    tcase_add_test(tc, a_step_needs_a_backward_or_a_skip);
    tcase_add_test(tc, a_second_backward_replaces_the_first);
    tcase_add_test(tc, ranks_match_one_process);
    tcase_add_test(tc, evaluation_is_reduced_over_ranks);
    tcase_add_test(tc, callbacks_run_on_rank_0_and_every_rank_follows);
    suite_add_tcase(s, tc);
    return s;
}

/* ---- Fault scenarios (tests/test-dist-faults.sh) -----------------------------------------------
 */

/* Trains on random batches; on rank 1 at step 3, `hang` stops forever and
 * `kill` dies by SIGKILL. `device` only creates the devices (CLNET_DEVICE
 * gives rank 1 a bad one). A failure prints the message and ends the job. */
static int scenario(const char *name)
{
    char err[2048];
    clnet_dist *d;
    if (clnet_dist_create(NULL, &d, err, sizeof err)) {
        fprintf(stderr, "test-dist: %s\n", err);
        return 1;
    }
    clnet_context *ctx;
    if (clnet_dist_context_create(d, NULL, &ctx, err, sizeof err)) {
        if (clnet_dist_rank(d) == 0)
            fprintf(stderr, "test-dist: %s\n", err);
        clnet_dist_destroy(d);
        return 1;
    }
    int r = clnet_dist_rank(d);
    clnet_model *m = NULL;
    dataset s = make_data(16, 1);
    clnet_tensor *x = NULL, *y = NULL;
    clnet_status st;
    if ((st = build_small_cnn(ctx, 1, 8, &m)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ 16, 1, 8, 8 }, &x)) ||
        (st = clnet_tensor_upload(x, s.x, 16 * 64 * sizeof(float))) ||
        (st = clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ 16 }, &y)) ||
        (st = clnet_tensor_upload(y, s.y, 16 * sizeof(int32_t))) || (st = clnet_dist_attach(d, m)))
        goto failed;
    for (int step = 0; step < 1000; step++) {
        if (r == 1 && step == 3 && !strcmp(name, "hang"))
            for (;;)
                pause();
        if (r == 1 && step == 3 && !strcmp(name, "kill"))
            raise(SIGKILL);
        if ((st = clnet_model_train_on_batch(m, x, y, NULL, NULL)))
            goto failed;
        if (!strcmp(name, "device"))
            break;
    }
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_dist_destroy(d);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    free_data(&s);
    return 0;
failed:
    fprintf(stderr, "test-dist: %s\n", clnet_context_errmsg(ctx));
    fflush(stderr);
    clnet_dist_abort(d, 3);
    return 3;
}

int main(int argc, char **argv)
{
    /* The application owns MPI here; the dists of the tests duplicate its
     * communicator and leave MPI_Finalize to it. */
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rc;
    if (argc == 3 && !strcmp(argv[1], "--scenario")) {
        rc = scenario(argv[2]);
    } else {
        SRunner *sr = srunner_create(suite_dist());
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        rc = srunner_ntests_failed(sr) ? 1 : 0;
        srunner_free(sr);
    }
    MPI_Finalize();
    return rc;
}
