/* clnet tests — the GAN loop of tools/models.c: the generator step through a
 * frozen discriminator leaves every bit of D alone, the D step trains D and
 * not G, the generator's gradient through D passes a directional check, label
 * smoothing sets D's targets, the reference DCGAN's shapes, determinism, and
 * the classifier-based score. The layers themselves are checked in
 * test-nn.c, the primitives in test-conv.c, test-pool.c and test-norm.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/nn.h"
#include "harness.h"
#include "models.h"
#include "nn/nn_impl.h"
#include "ref.h"

/* ---- Snapshots of a model's state ------------------------------------------------------ */

/* Which tensors of a parameter a snapshot holds. */
enum { SNAP_VALUE = 1, SNAP_GRAD = 2, SNAP_MOMENTS = 4, SNAP_ALL = 7 };

typedef struct snapshot {
    int n; /* tensors */
    float *data[128];
    size_t len[128];
    char name[128][96]; /* "layer 2 (conv2d_1) kernel value" */
    int trained[128];   /* the parameter has a gradient (not a running statistic) */
} snapshot;

static void snap_one(clnet_context *ctx, snapshot *s, const clnet__layer *l, const clnet__param *p,
                     const clnet_tensor *t, const char *kind)
{
    if (!t)
        return;
    ck_assert_int_lt(s->n, 128);
    size_t n = clnet_tensor_numel(t);
    s->data[s->n] = malloc(n * sizeof(float));
    download(ctx, t, s->data[s->n], n);
    s->len[s->n] = n;
    snprintf(s->name[s->n], sizeof s->name[0], "layer %d (%s) %s %s", l->index, l->name, p->name,
             kind);
    s->trained[s->n] = p->grad != NULL;
    s->n++;
}

/* Every selected tensor of every parameter of every layer, trained or not. */
static void snap(clnet_context *ctx, const clnet_model *m, int what, snapshot *s)
{
    s->n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            const clnet__layer *l = m->layers[i];
            const clnet__param *p = &l->params[k];
            if (what & SNAP_VALUE)
                snap_one(ctx, s, l, p, p->value, "value");
            if (what & SNAP_GRAD)
                snap_one(ctx, s, l, p, p->grad, "gradient");
            if (what & SNAP_MOMENTS) {
                snap_one(ctx, s, l, p, p->m, "Adam m");
                snap_one(ctx, s, l, p, p->v, "Adam v");
            }
        }
}

static void snap_free(snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
    s->n = 0;
}

/* Asserts that every tensor is bitwise the same. */
static void assert_unchanged(const snapshot *a, const snapshot *b, const char *when)
{
    ck_assert_int_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++)
        ck_assert_msg(memcmp(a->data[i], b->data[i], a->len[i] * sizeof(float)) == 0,
                      "%s changed %s", when, a->name[i]);
}

/* Asserts that every trained parameter's value changed in every element (an
 * Adam step moves each weight by about lr unless its gradient is exactly 0). */
static void assert_all_trained_changed(const snapshot *a, const snapshot *b, const char *when)
{
    ck_assert_int_eq(a->n, b->n);
    int seen = 0;
    for (int i = 0; i < a->n; i++) {
        if (!a->trained[i] || !strstr(a->name[i], " value"))
            continue;
        size_t same = 0;
        for (size_t k = 0; k < a->len[i]; k++)
            same += memcmp(&a->data[i][k], &b->data[i][k], sizeof(float)) == 0;
        ck_assert_msg(same == 0, "%s left %zu of %zu elements of %s unchanged", when, same,
                      a->len[i], a->name[i]);
        seen++;
    }
    ck_assert_int_gt(seen, 0);
}

/* ---- Small models ------------------------------------------------------------------------ */

enum { NOISE = 4, B = 5 };

/* noise (4) > Dense(18, no bias) > Reshape(2, 3, 3) > BatchNorm > LeakyReLU >
 * Conv2DTranspose(1, 3x3, stride 2, same, tanh): (1, 6, 6). */
static clnet_model *small_generator(clnet_context *ctx, uint64_t seed)
{
    clnet_model *g;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ NOISE }, seed, &g));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 18;
    d.use_bias = 0;
    CK_OK(ctx, clnet_model_add_dense(g, &d));
    CK_OK(ctx, clnet_model_add_reshape(g, 3, (int64_t[]){ 2, 3, 3 }));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   g, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    CK_OK(ctx, clnet_model_add_activation(g, CLNET_ACT_LEAKY_RELU, 0.2f));
    clnet_conv2d_layer_params t = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    t.filters = 1;
    t.stride_h = t.stride_w = 2;
    t.padding = CLNET_PADDING_SAME;
    t.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_conv2d_transpose(g, &t));
    return g;
}

/* (1, 6, 6) > Conv2D(3, 3x3, stride 2, same, LeakyReLU, no bias) > BatchNorm >
 * [Dropout(0.3)] > Flatten > Dense(1, sigmoid). The batch norm makes a
 * frozen D's running statistics part of what must not change. */
static clnet_model *small_discriminator(clnet_context *ctx, uint64_t seed, int dropout)
{
    clnet_model *d;
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, 6, 6 }, seed, &d));
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 3;
    c.stride_h = c.stride_w = 2;
    c.padding = CLNET_PADDING_SAME;
    c.activation = CLNET_ACT_LEAKY_RELU;
    c.use_bias = 0; /* batch norm follows: its gradient would be 0 */
    CK_OK(ctx, clnet_model_add_conv2d(d, &c));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   d, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    if (dropout)
        CK_OK(ctx, clnet_model_add_dropout(d, 0.3f));
    CK_OK(ctx, clnet_model_add_flatten(d));
    clnet_dense_params o = CLNET_DENSE_PARAMS_DEFAULT;
    o.units = 1;
    o.activation = CLNET_ACT_SIGMOID;
    CK_OK(ctx, clnet_model_add_dense(d, &o));
    return d;
}

static void compile_adam(clnet_context *ctx, clnet_model *m)
{
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.adam.lr = 2e-4f;
    p.adam.beta1 = 0.5f;
    p.loss = CLNET_LOSS_NONE; /* the GAN trainer computes its losses */
    CK_OK(ctx, clnet_model_compile(m, &p));
}

static gan_trainer *trainer(clnet_context *ctx, clnet_model *g, clnet_model *d, int64_t batch,
                            int64_t noise, float real_label)
{
    gan_params p = GAN_PARAMS_DEFAULT;
    p.batch = batch;
    p.noise_dim = noise;
    p.real_label = real_label;
    p.seed = 99;
    gan_trainer *t;
    CK_OK(ctx, gan_trainer_create(ctx, g, d, &p, &t));
    return t;
}

/* A batch of "real" images in [-1, 1]. */
static clnet_tensor *real_batch(clnet_context *ctx, int64_t batch, int64_t side, uint64_t seed)
{
    size_t n = (size_t)(batch * side * side);
    float *x = malloc(n * sizeof *x);
    fill_uniform(x, n, -1, 1, &seed);
    clnet_tensor *t = tensor_from(ctx, 4, (int64_t[]){ batch, 1, side, side }, x);
    free(x);
    return t;
}

/* ---- Frozen discriminator ------------------------------------------------------------------- */

START_TEST(generator_step_leaves_the_discriminator_bit_for_bit)
{
    clnet_context *ctx = test_context();
    clnet_model *g = small_generator(ctx, 3), *d = small_discriminator(ctx, 4, 1);
    compile_adam(ctx, g);
    compile_adam(ctx, d);
    gan_trainer *t = trainer(ctx, g, d, B, NOISE, 1.0f);
    clnet_tensor *real = real_batch(ctx, B, 6, 5);
    /* One full iteration first, so D has gradients, Adam moments and moved
     * running statistics that a careless G step could overwrite. */
    CK_OK(ctx, gan_generate(t, NULL));
    CK_OK(ctx, gan_step_d(t, real));
    CK_OK(ctx, gan_step_g(t));
    CK_OK(ctx, gan_generate(t, NULL));
    snapshot d0, d1, g0, g1;
    snap(ctx, d, SNAP_ALL, &d0);
    snap(ctx, g, SNAP_VALUE, &g0);
    CK_OK(ctx, gan_step_g(t));
    snap(ctx, d, SNAP_ALL, &d1);
    snap(ctx, g, SNAP_VALUE, &g1);
    /* Values, running statistics, gradients and Adam state of D: all equal. */
    /* Every tensor seen: conv kernel, BN gamma and beta, dense kernel and
     * bias with gradient, m and v each (5 x 4), BN's two running statistics. */
    ck_assert_int_eq(d0.n, 22);
    assert_unchanged(&d0, &d1, "the generator step");
    assert_all_trained_changed(&g0, &g1, "the generator step");
    /* The loss was computed: finite and positive. */
    double gl;
    CK_OK(ctx, gan_losses(t, NULL, &gl));
    ck_assert_msg(isfinite(gl) && gl > 0, "g_loss %g", gl);
    snap_free(&d0);
    snap_free(&d1);
    snap_free(&g0);
    snap_free(&g1);
    clnet_tensor_destroy(real);
    gan_trainer_destroy(t);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(discriminator_step_trains_d_and_not_g)
{
    clnet_context *ctx = test_context();
    clnet_model *g = small_generator(ctx, 6), *d = small_discriminator(ctx, 7, 1);
    compile_adam(ctx, g);
    compile_adam(ctx, d);
    gan_trainer *t = trainer(ctx, g, d, B, NOISE, 0.9f);
    clnet_tensor *real = real_batch(ctx, B, 6, 8);
    /* A G step first leaves D frozen: the D step must unfreeze it. */
    CK_OK(ctx, gan_generate(t, NULL));
    CK_OK(ctx, gan_step_g(t));
    CK_OK(ctx, gan_generate(t, NULL));
    snapshot d0, d1, g0, g1;
    snap(ctx, d, SNAP_VALUE, &d0);
    snap(ctx, g, SNAP_VALUE | SNAP_MOMENTS, &g0);
    CK_OK(ctx, gan_step_d(t, real));
    snap(ctx, d, SNAP_VALUE, &d1);
    snap(ctx, g, SNAP_VALUE | SNAP_MOMENTS, &g1);
    assert_all_trained_changed(&d0, &d1, "the discriminator step");
    /* D's running statistics moved too (a training forward on 2B images). */
    int moved = 0;
    for (int i = 0; i < d0.n; i++)
        moved += !d0.trained[i] && memcmp(d0.data[i], d1.data[i], d0.len[i] * sizeof(float)) != 0;
    ck_assert_int_eq(moved, 2);
    assert_unchanged(&g0, &g1, "the discriminator step");
    double dl;
    CK_OK(ctx, gan_losses(t, &dl, NULL));
    ck_assert_msg(isfinite(dl) && dl > 0, "d_loss %g", dl);
    snap_free(&d0);
    snap_free(&d1);
    snap_free(&g0);
    snap_free(&g1);
    clnet_tensor_destroy(real);
    gan_trainer_destroy(t);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The generator's gradient through D (docs/testing.md, directional checks) ---------------- */

static double g_loss_now(clnet_context *ctx, gan_trainer *t)
{
    double gl;
    CK_OK(ctx, gan_forward_g(t, NULL));
    CK_OK(ctx, gan_backward_g(t));
    CK_OK(ctx, gan_losses(t, NULL, &gl));
    return gl;
}

/* For every trained parameter of G, compares <dL/dθ, u> from one backward
 * through the frozen D with (L(θ + hu) - L(θ - hu)) / 2h, L the generator's
 * loss on fixed noise, u uniform in [-1, 1]. h = 4.9e-3 * max(1, |θ|_inf),
 * retried at h/4 twice. Pass: |numeric - analytic| <= 1e-4 + 1e-2 |analytic|
 * (the loss is ~0.7 in float32: rounding contributes ~1e-7 / 2h ~ 1e-5; the
 * O(h^2) term of a smooth loss is far below 1%). analytic is scaled by
 * `perturb` (a negative control passes 1.03). Returns the failures. */
static int generator_directional(clnet_context *ctx, gan_trainer *t, clnet_model *g, double perturb)
{
    CK_OK(ctx, gan_generate(t, NULL));
    CK_OK(ctx, gan_backward_g(t));
    /* Every gradient now: each loss evaluation below overwrites them. */
    snapshot grads;
    snap(ctx, g, SNAP_GRAD, &grads);
    int failures = 0, checked = 0;
    uint64_t seed = 17;
    for (int i = 0; i < g->nlayers; i++)
        for (int k = 0; k < g->layers[i]->nparams; k++) {
            clnet__param *p = &g->layers[i]->params[k];
            if (!p->grad)
                continue;
            size_t n = clnet_tensor_numel(p->value);
            float *v0 = malloc(n * sizeof *v0), *u = malloc(n * sizeof *u),
                  *vp = malloc(n * sizeof *vp);
            const float *gr = grads.data[checked];
            ck_assert_uint_eq(grads.len[checked], n);
            download(ctx, p->value, v0, n);
            fill_uniform(u, n, -1, 1, &seed);
            double an = 0, inf = 0, num = 0;
            for (size_t e = 0; e < n; e++) {
                an += (double)gr[e] * u[e];
                inf = fmax(inf, fabs(v0[e]));
            }
            an *= perturb;
            int ok = 0;
            double h = 4.9e-3 * fmax(1.0, inf);
            for (int attempt = 0; attempt < 3 && !ok; attempt++, h /= 4) {
                double l[2];
                for (int side = 0; side < 2; side++) {
                    for (size_t e = 0; e < n; e++)
                        vp[e] = (float)(v0[e] + (side ? -h : h) * u[e]);
                    CK_OK(ctx, clnet_tensor_upload(p->value, vp, n * sizeof *vp));
                    l[side] = g_loss_now(ctx, t);
                }
                CK_OK(ctx, clnet_tensor_upload(p->value, v0, n * sizeof *v0));
                num = (l[0] - l[1]) / (2 * h);
                ok = fabs(num - an) <= 1e-4 + 1e-2 * fabs(an);
            }
            if (!ok)
                fprintf(stderr,
                        "generator through frozen D: layer %d (%s) %s: analytic %.6g, "
                        "finite difference %.6g\n",
                        i, g->layers[i]->name, p->name, an, num);
            failures += !ok;
            checked++;
            free(v0);
            free(u);
            free(vp);
        }
    ck_assert_int_eq(checked, 5); /* dense kernel, gamma, beta, transposed kernel, bias */
    snap_free(&grads);
    return failures;
}

START_TEST(generator_gradient_through_frozen_discriminator)
{
    clnet_context *ctx = test_context();
    /* No dropout in D: every forward must see the same function. */
    clnet_model *g = small_generator(ctx, 11), *d = small_discriminator(ctx, 12, 0);
    compile_adam(ctx, g);
    compile_adam(ctx, d);
    gan_trainer *t = trainer(ctx, g, d, B, NOISE, 1.0f);
    ck_assert_int_eq(generator_directional(ctx, t, g, 1.0), 0);
    gan_trainer_destroy(t);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative control: a gradient 3% off fails every parameter's check. */
START_TEST(directional_check_catches_a_wrong_generator_gradient)
{
    clnet_context *ctx = test_context();
    clnet_model *g = small_generator(ctx, 11), *d = small_discriminator(ctx, 12, 0);
    compile_adam(ctx, g);
    compile_adam(ctx, d);
    gan_trainer *t = trainer(ctx, g, d, B, NOISE, 1.0f);
    ck_assert_int_eq(generator_directional(ctx, t, g, 1.03), 5);
    gan_trainer_destroy(t);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Label smoothing --------------------------------------------------------------------------
 */

/* mean over rows of max(x, 0) - x t + log1p(exp(-|x|)), in float64. */
static double bce_mean(const float *x, const double *target, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += fmax(x[i], 0.0) - x[i] * target[i] + log1p(exp(-fabs(x[i])));
    return s / n;
}

/* D's loss equals BCE against [real_label; 0] from the logits of [real; fakes]
 * computed separately, for real_label 1 and 0.9. Each term is within a few
 * ulp (log1p, exp) and the float32 sum of 2B positive terms within
 * 2B * 2^-24 relative: 1e-5 relative is ample, and smoothing moves the loss
 * by 0.1 * mean(real logits) / 2, far more. */
START_TEST(label_smoothing_sets_the_real_targets)
{
    clnet_context *ctx = test_context();
    for (int smooth = 0; smooth < 2; smooth++) {
        float label = smooth ? 0.9f : 1.0f;
        clnet_model *g = small_generator(ctx, 21), *d = small_discriminator(ctx, 22, 0);
        compile_adam(ctx, g);
        compile_adam(ctx, d);
        gan_trainer *t = trainer(ctx, g, d, B, NOISE, label);
        clnet_tensor *real = real_batch(ctx, B, 6, 23);
        const clnet_tensor *fakes, *logits;
        CK_OK(ctx, gan_generate(t, &fakes));
        /* [real; fakes] by hand, and D's logits on it (D has no dropout). */
        float both[2 * B * 36], lg[2 * B];
        download(ctx, real, both, B * 36);
        download(ctx, fakes, both + B * 36, B * 36);
        clnet_tensor *x = tensor_from(ctx, 4, (int64_t[]){ 2 * B, 1, 6, 6 }, both);
        CK_OK(ctx, clnet_model_forward(d, x, 1, NULL, &logits));
        download(ctx, logits, lg, 2 * B);
        double target[2 * B], dl;
        for (int i = 0; i < 2 * B; i++)
            target[i] = i < B ? (double)label : 0.0;
        CK_OK(ctx, gan_step_d(t, real));
        CK_OK(ctx, gan_losses(t, &dl, NULL));
        double want = 2 * bce_mean(lg, target, 2 * B);
        ck_assert_msg(fabs(dl - want) <= 1e-5 * want, "real label %g: d_loss %.9g, expected %.9g",
                      (double)label, dl, want);
        /* The other label would be told apart. */
        for (int i = 0; i < B; i++)
            target[i] = smooth ? 1.0 : 0.9;
        double other = 2 * bce_mean(lg, target, 2 * B);
        ck_assert_msg(fabs(dl - other) > 1e-5 * want, "labels 1 and 0.9 give the same loss");
        clnet_tensor_destroy(x);
        clnet_tensor_destroy(real);
        gan_trainer_destroy(t);
        clnet_model_destroy(g);
        clnet_model_destroy(d);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(trainer_refuses_bad_arguments)
{
    clnet_context *ctx = test_context();
    clnet_model *g = small_generator(ctx, 1), *d = small_discriminator(ctx, 2, 0);
    gan_params p = GAN_PARAMS_DEFAULT;
    p.noise_dim = NOISE;
    gan_trainer *t = (gan_trainer *)&p;
    p.real_label = 1.5f;
    ck_assert_int_eq(gan_trainer_create(ctx, g, d, &p, &t), CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(t);
    p.real_label = 1.0f;
    p.batch = 0;
    ck_assert_int_eq(gan_trainer_create(ctx, g, d, &p, &t), CLNET_ERR_INVALID_ARG);
    /* D must output one value per sample. */
    p.batch = 2;
    clnet_model *d2;
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, 6, 6 }, 1, &d2));
    CK_OK(ctx, clnet_model_add_flatten(d2));
    ck_assert_int_eq(gan_trainer_create(ctx, g, d2, &p, &t), CLNET_ERR_SHAPE);
    /* A D step needs fakes first. */
    compile_adam(ctx, g);
    compile_adam(ctx, d);
    CK_OK(ctx, gan_trainer_create(ctx, g, d, &p, &t));
    clnet_tensor *real = real_batch(ctx, 2, 6, 1);
    ck_assert_int_eq(gan_step_d(t, real), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(gan_step_g(t), CLNET_ERR_INVALID_ARG);
    clnet_tensor_destroy(real);
    gan_trainer_destroy(t);
    gan_trainer_destroy(NULL);
    ck_assert_int_eq(clnet_model_set_all_trainable(NULL, 0), CLNET_ERR_INVALID_ARG);
    clnet_model_destroy(d2);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Layers the DCGAN relies on, as layers -----------------------------------------------------
 */

/* The Activation layer with LeakyReLU(0.2), forward and backward, against the
 * float64 reference: alpha * x is one float multiplication of two floats, so
 * the device equals (float)reference bitwise. Inputs include +-0, a denormal
 * and the largest finite value. */
START_TEST(leaky_relu_layer_alpha_0_2_is_exact)
{
    clnet_context *ctx = test_context();
    enum { N = 37 };
    float x[N], dy[N], y[N], dx[N];
    uint64_t seed = 41;
    fill_uniform(x, N, -3, 3, &seed);
    fill_uniform(dy, N, -1, 1, &seed);
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = -1e-40f;
    x[3] = -3.4e38f;
    x[4] = 3.4e38f;
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ N }, 1, &m));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_LEAKY_RELU, 0.2f));
    clnet_tensor *tx = tensor_from(ctx, 2, (int64_t[]){ 1, N }, x);
    clnet_tensor *tdy = tensor_from(ctx, 2, (int64_t[]){ 1, N }, dy);
    const clnet_tensor *ty, *tdx;
    CK_OK(ctx, clnet_model_forward(m, tx, 1, &ty, NULL));
    CK_OK(ctx, clnet_model_backward(m, tdy, &tdx));
    download(ctx, ty, y, N);
    download(ctx, tdx, dx, N);
    double xd[N], dyd[N], ry[N], rdx[N];
    for (int i = 0; i < N; i++) {
        xd[i] = x[i];
        dyd[i] = dy[i];
    }
    ref_act_leaky_relu_forward(N, (double)0.2f, xd, ry);
    ref_act_leaky_relu_backward(N, (double)0.2f, xd, dyd, rdx);
    /* The denormal's product may flush to -0 on a device without denormals;
     * compare it by value, the rest bitwise (ref is finite everywhere). */
    tolerance exact = { .bitwise = 1, .why = "one float product, correctly rounded" };
    ck_assert_uint_eq(compare_f32("leaky relu 0.2 forward", y + 3, ry + 3, N - 3, exact), 0);
    ck_assert_uint_eq(compare_f32("leaky relu 0.2 backward", dx, rdx, N, exact), 0);
    ck_assert(y[0] == 0.0f && y[1] == 0.0f && y[2] <= 0.0f && y[2] >= -1e-40f);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(tdy);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* BatchNormalization as a layer, (batch, 3) features, momentum 0.1, eps 1e-3:
 * a training forward normalizes with the batch statistics and moves the
 * running ones (unbiased variance, PyTorch's rule); an inference forward uses
 * the running ones; a frozen layer's training forward normalizes with the
 * batch statistics and leaves the running ones bitwise alone. Float64 host
 * formulas; tolerance 1e-5 absolute on outputs of unit scale (a mean, a
 * variance over 6 values and a rsqrt: a few ulp each). */
START_TEST(batchnorm_layer_training_inference_and_frozen)
{
    clnet_context *ctx = test_context();
    enum { NB = 6, F = 3 };
    float x[NB * F], x2[NB * F], y[NB * F], run[2][F];
    uint64_t seed = 43;
    fill_uniform(x, NB * F, -2, 3, &seed);
    fill_uniform(x2, NB * F, -2, 3, &seed);
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ F }, 1, &m));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.1f }));
    clnet_tensor *tx = tensor_from(ctx, 2, (int64_t[]){ NB, F }, x);
    clnet_tensor *tx2 = tensor_from(ctx, 2, (int64_t[]){ NB, F }, x2);
    const clnet_tensor *ty;
    double mean[F], var[F], rm[F], rv[F];
    for (int c = 0; c < F; c++) {
        double s = 0, q = 0;
        for (int i = 0; i < NB; i++)
            s += x[i * F + c];
        mean[c] = s / NB;
        for (int i = 0; i < NB; i++)
            q += (x[i * F + c] - mean[c]) * (x[i * F + c] - mean[c]);
        var[c] = q / NB;
        rm[c] = 0.1 * mean[c];
        rv[c] = 0.9 + 0.1 * q / (NB - 1);
    }
    for (int frozen = 0; frozen < 2; frozen++) {
        float before[2][F];
        download(ctx, m->layers[0]->params[2].value, before[0], F);
        download(ctx, m->layers[0]->params[3].value, before[1], F);
        CK_OK(ctx, clnet_model_set_trainable(m, 0, !frozen));
        CK_OK(ctx, clnet_model_forward(m, tx, 1, &ty, NULL));
        download(ctx, ty, y, NB * F);
        for (int i = 0; i < NB * F; i++) {
            double want = (x[i] - mean[i % F]) / sqrt(var[i % F] + (double)1e-3f);
            ck_assert_msg(fabs(y[i] - want) <= 1e-5, "training y[%d] %.8g, want %.8g", i, y[i],
                          want);
        }
        download(ctx, m->layers[0]->params[2].value, run[0], F);
        download(ctx, m->layers[0]->params[3].value, run[1], F);
        if (frozen) {
            ck_assert_msg(memcmp(before, run, sizeof run) == 0,
                          "a frozen batch norm moved its running statistics");
            continue;
        }
        for (int c = 0; c < F; c++)
            ck_assert_msg(fabs(run[0][c] - rm[c]) <= 1e-6 && fabs(run[1][c] - rv[c]) <= 1e-5,
                          "running mean %.8g (want %.8g), var %.8g (want %.8g)", run[0][c], rm[c],
                          run[1][c], rv[c]);
    }
    /* Inference: the running statistics just checked. */
    CK_OK(ctx, clnet_model_forward(m, tx2, 0, &ty, NULL));
    download(ctx, ty, y, NB * F);
    for (int i = 0; i < NB * F; i++) {
        double want = (x2[i] - rm[i % F]) / sqrt(rv[i % F] + (double)1e-3f);
        ck_assert_msg(fabs(y[i] - want) <= 1e-5, "inference y[%d] %.8g, want %.8g", i, y[i], want);
    }
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(tx2);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The reference DCGAN ------------------------------------------------------------------------
 */

static size_t summary_has(const clnet_model *m, const char *const *needles, int n)
{
    char *text = NULL;
    size_t len = 0, missing = 0;
    FILE *f = open_memstream(&text, &len);
    clnet_model_summary(m, f);
    fclose(f);
    for (int i = 0; i < n; i++)
        if (!strstr(text, needles[i])) {
            fprintf(stderr, "summary lacks \"%s\":\n%s", needles[i], text);
            missing++;
        }
    free(text);
    return missing;
}

START_TEST(reference_dcgan_shapes)
{
    clnet_context *ctx = test_context();
    clnet_model *g, *d;
    CK_OK(ctx, build_dcgan_generator(ctx, 1, &g));
    CK_OK(ctx, build_dcgan_discriminator(ctx, 2, &d));
    /* Keras counts: 627200 + 512 + 204800 + 256 + 1601; 1664 + 204928 + 6273. */
    ck_assert_uint_eq(clnet_model_param_count(g), 834369);
    ck_assert_uint_eq(clnet_model_param_count(d), 212865);
    const char *gs[] = { "(None, 6272)", "(None, 128, 7, 7)", "(None, 64, 14, 14)",
                         "(None, 1, 28, 28)", "Conv2DTranspose" };
    const char *ds[] = { "(None, 64, 14, 14)", "(None, 128, 7, 7)", "(None, 6272)", "(None, 1)",
                         "Dropout" };
    ck_assert_uint_eq(summary_has(g, gs, 5), 0);
    ck_assert_uint_eq(summary_has(d, ds, 5), 0);
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_context_destroy(ctx);
}
END_TEST

/* Two iterations of the reference DCGAN at batch 3, twice from the same
 * seeds: bitwise-equal losses and generator weights; outputs in [-1, 1]. */
START_TEST(reference_dcgan_trains_deterministically)
{
    clnet_context *ctx = test_context();
    double losses[2][4];
    snapshot w[2];
    for (int run = 0; run < 2; run++) {
        clnet_model *g, *d;
        CK_OK(ctx, build_dcgan_generator(ctx, 1, &g));
        CK_OK(ctx, build_dcgan_discriminator(ctx, 2, &d));
        compile_adam(ctx, g);
        compile_adam(ctx, d);
        gan_trainer *t = trainer(ctx, g, d, 3, DCGAN_NOISE_DIM, 0.9f);
        clnet_tensor *real = real_batch(ctx, 3, 28, 31);
        for (int it = 0; it < 2; it++) {
            const clnet_tensor *fakes;
            CK_OK(ctx, gan_generate(t, &fakes));
            float img[3 * 784];
            download(ctx, fakes, img, 3 * 784);
            for (int i = 0; i < 3 * 784; i++)
                ck_assert_msg(img[i] >= -1.0f && img[i] <= 1.0f, "G output %g outside [-1, 1]",
                              img[i]);
            CK_OK(ctx, gan_step_d(t, real));
            CK_OK(ctx, gan_step_g(t));
            CK_OK(ctx, gan_losses(t, &losses[run][2 * it], &losses[run][2 * it + 1]));
            ck_assert(isfinite(losses[run][2 * it]) && isfinite(losses[run][2 * it + 1]));
        }
        snap(ctx, g, SNAP_VALUE, &w[run]);
        clnet_tensor_destroy(real);
        gan_trainer_destroy(t);
        clnet_model_destroy(g);
        clnet_model_destroy(d);
    }
    ck_assert_int_eq(memcmp(losses[0], losses[1], sizeof losses[0]), 0);
    assert_unchanged(&w[0], &w[1], "a second run");
    snap_free(&w[0]);
    snap_free(&w[1]);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Classifier-based score (host only)
 * --------------------------------------------------------------- */

START_TEST(classifier_score_known_values)
{
    enum { N = 20, C = 10 };
    static float p[N * C];
    double share[C];
    /* One-hot, every class twice: p(y) uniform, KL = log 10 for each row. */
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++)
        p[i * C + i % C] = 1;
    ck_assert_msg(fabs(classifier_score(p, N, C, share) - 10.0) < 1e-12, "one-hot: %.15g",
                  classifier_score(p, N, C, share));
    for (int c = 0; c < C; c++)
        ck_assert(fabs(share[c] - 0.1) < 1e-15);
    /* All rows uniform: no information, score 1 (argmax ties go to class 0). */
    for (int i = 0; i < N * C; i++)
        p[i] = 0.1f;
    ck_assert(fabs(classifier_score(p, N, C, share) - 1.0) < 1e-6);
    ck_assert(share[0] == 1.0);
    /* Mode collapse: every row the same one-hot: score 1, one class 100%. */
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++)
        p[i * C + 3] = 1;
    ck_assert(fabs(classifier_score(p, N, C, share) - 1.0) < 1e-12);
    ck_assert(share[3] == 1.0 && share[0] == 0.0);
    /* Worked by hand: rows (0.5, 0.5) and (1, 0); p(y) = (0.75, 0.25);
     * KL = 0.5 ln(2/3) + 0.5 ln 2 and ln(4/3): exp of their mean. */
    float q[4] = { 0.5f, 0.5f, 1.0f, 0.0f };
    double want = exp(0.5 * (0.5 * log(2.0 / 3.0) + 0.5 * log(2.0) + log(4.0 / 3.0)));
    double got = classifier_score(q, 2, 2, share);
    ck_assert_msg(fabs(got - want) < 1e-7 * want, "got %.12g, want %.12g", got, want);
    ck_assert(share[0] == 1.0 && share[1] == 0.0);
    /* Negative control: a different row changes the score. */
    q[2] = 0.9f;
    q[3] = 0.1f;
    ck_assert(fabs(classifier_score(q, 2, 2, NULL) - want) > 1e-3);
}
END_TEST

Suite *suite_gan(void)
{
    Suite *s = suite_create("gan");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, generator_step_leaves_the_discriminator_bit_for_bit);
    tcase_add_test(tc, discriminator_step_trains_d_and_not_g);
    tcase_add_test(tc, generator_gradient_through_frozen_discriminator);
    tcase_add_test(tc, directional_check_catches_a_wrong_generator_gradient);
    tcase_add_test(tc, label_smoothing_sets_the_real_targets);
    tcase_add_test(tc, trainer_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    tc = tcase_create("layers");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, leaky_relu_layer_alpha_0_2_is_exact);
    tcase_add_test(tc, batchnorm_layer_training_inference_and_frozen);
    suite_add_tcase(s, tc);
    tc = tcase_create("dcgan");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, reference_dcgan_shapes);
    tcase_add_test(tc, reference_dcgan_trains_deterministically);
    tcase_add_test(tc, classifier_score_known_values);
    suite_add_tcase(s, tc);
    return s;
}
