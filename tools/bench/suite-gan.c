/* clnet-bench suite "gan": the reference DCGAN (tools/models.c) as a whole:
 * one iteration of the two-model loop (gan_trainer: G forward, a D step on
 * [real; fake], a G step through the frozen D, Adam on both), its two
 * halves, and the generator's inference forward, on device-resident data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bound.h"
#include "models.h"
#include "ref.h"

enum { KIND_TRAIN, KIND_D_STEP, KIND_G_STEP, KIND_GENERATE };

#define BATCH 64

/* The layers' FLOP per sample, forward (2 per multiply-add; a transposed
 * convolution does one multiply-add per input element, output channel and
 * kernel tap). G: Dense 100 -> 6272, ConvT 128 -> 64 5x5 from 7x7, ConvT
 * 64 -> 1 5x5 from 14x14. D: Conv 1 -> 64 5x5 to 14x14, Conv 64 -> 128 5x5
 * to 7x7, Dense 6272 -> 1. Batch norm, activations, bias: not counted. */
#define G_FWD_FLOP (2.0 * (100.0 * 6272 + 128.0 * 49 * 64 * 25 + 64.0 * 196 * 25))
#define D_FWD_FLOP (2.0 * (64.0 * 196 * 25 + 128.0 * 49 * 64 * 25 + 6272.0))

/* Nominal FLOP per operation, as the cnn suite counts a training step (a
 * backward as twice its forward): train = G forward on B, D forward and
 * backward on 2B, D forward and backward on B, G backward on B; d_step
 * = the D step on 2B; g_step = G forward, D forward and backward on B, G
 * backward; generate = G forward. */
static const struct {
    int kind, quick;
    const char *name, *about;
    double flops_per_sample;
} cases[] = {
    { KIND_TRAIN, 1, "gan_train_b%d",
      "DCGAN training iteration: G forward, D step on [real; fake], G step through frozen D (Adam)",
      3 * G_FWD_FLOP + 8 * D_FWD_FLOP },
    { KIND_D_STEP, 0, "gan_d_step_b%d",
      "DCGAN D step: forward, BCE, backward, Adam on [real; fake] (2B images)", 6 * D_FWD_FLOP },
    { KIND_G_STEP, 0, "gan_g_step_b%d",
      "DCGAN G step: new noise, G forward, frozen D forward + backward, G backward, Adam",
      3 * G_FWD_FLOP + 2 * D_FWD_FLOP },
    { KIND_GENERATE, 1, "gan_generate_b%d", "DCGAN generator inference (noise to images)",
      G_FWD_FLOP },
};
#define NCASES (sizeof cases / sizeof cases[0])

static int gan_list(int quick, bench_case *out, int max)
{
    int count = 0;
    for (size_t i = 0; i < NCASES && count < max; i++) {
        if (quick && !cases[i].quick)
            continue;
        bench_case *c = &out[count++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, cases[i].name, BATCH);
        c->about = cases[i].about;
        c->quick = cases[i].quick;
        c->flops = cases[i].flops_per_sample * BATCH;
        const int64_t p[8] = { cases[i].kind, BATCH };
        memcpy(c->p, p, sizeof p);
    }
    return count;
}

typedef struct gan_state {
    int kind;
    clnet_model *g, *d;
    gan_trainer *t;
    clnet_tensor *real, *z; /* (B, 1, 28, 28) in [-1, 1); (B, 100) ~ N(0, 1) */
} gan_state;

static void gan_teardown(void *state)
{
    gan_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->z);
    clnet_tensor_destroy(s->real);
    gan_trainer_destroy(s->t);
    clnet_model_destroy(s->d);
    clnet_model_destroy(s->g);
    free(s);
}

/* As clnet-train gan: Adam lr 2e-4, beta1 0.5; no compiled loss (the trainer
 * computes BCE from D's logits). */
static clnet_status build_models(clnet_context *ctx, gan_state *s)
{
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = 2e-4f;
    cp.adam.beta1 = 0.5f;
    cp.loss = CLNET_LOSS_NONE; /* the trainer computes its losses */
    clnet_status st = build_dcgan_generator(ctx, 1, &s->g);
    if (!st)
        st = build_dcgan_discriminator(ctx, 2, &s->d);
    if (!st)
        st = clnet_model_compile(s->g, &cp);
    if (!st)
        st = clnet_model_compile(s->d, &cp);
    return st;
}

static clnet_status gan_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    gan_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    s->kind = (int)c->p[0];
    int64_t b = c->p[1];
    gan_params gp = GAN_PARAMS_DEFAULT;
    gp.batch = b;
    clnet_status st = build_models(ctx, s);
    if (!st)
        st = gan_trainer_create(ctx, s->g, s->d, &gp, &s->t);
    if (!st) /* "real" images: uniform, as Fashion-MNIST scaled to [-1, 1] */
        st = clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ b, 1, 28, 28 }, &s->real);
    if (!st)
        st = clnet_tensor_rand_uniform(s->real, 7, 0, -1.0f, 1.0f);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ b, DCGAN_NOISE_DIM }, &s->z);
    if (!st)
        st = clnet_tensor_rand_normal(s->z, 7, 1, 0.0f, 1.0f);
    if (!st && s->kind == KIND_D_STEP) /* the fakes the D steps take */
        st = gan_generate(s->t, NULL);
    if (st) {
        gan_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status gan_run(void *state)
{
    gan_state *s = state;
    clnet_status st; /* the losses are not read: nothing waits */
    switch (s->kind) {
    case KIND_TRAIN:
        if ((st = gan_generate(s->t, NULL)) || (st = gan_step_d(s->t, s->real)))
            return st;
        return gan_step_g(s->t);
    case KIND_D_STEP:
        return gan_step_d(s->t, s->real);
    case KIND_G_STEP:
        return (st = gan_generate(s->t, NULL)) ? st : gan_step_g(s->t);
    default:
        return clnet_model_forward(s->g, s->z, 0, NULL, NULL);
    }
}

/* ---- Checking: G's images and D's logits for 2 noise vectors ----------------
 * After the timed runs, G runs in inference mode (running batch-norm
 * statistics) on rows 0-1 of the case's noise, and D in inference mode
 * (no dropout) on the images G returned. Both models' parameters (running
 * statistics included) are read back through the public API
 * (clnet_model_save, clnet_safetensors_load) and the two networks are
 * evaluated in float64 with tests/ref.c: G on the device's noise, D on the
 * device's images (so that D's check does not inherit G's error). Each
 * element must lie within a bound carried layer by layer, as suite-cnn.c
 * does: a conv, transposed conv or dense layer summing K products and its
 * bias errs by g = 2 (K + 1) u times the sum of the terms' magnitudes, and
 * an error e in its input adds |W| e (rigorous); batch norm in inference
 * passes |gamma| invstd e and adds tests/test-norm.c's tolerance
 * 2u (16 |gamma| invstd |x - mean| + 2 |y|); LeakyReLU (1-Lipschitz) adds
 * u |y| (the product alpha x), tanh (1-Lipschitz) its 12u |y|
 * (tests/test-act.c). That bound is rigorous but loose (~2e-5 of it is
 * used), so each output also passes docs/ops.md's normwise criterion,
 * ||got - ref|| / ||ref|| < 1e-5, scaled by kappa / 20 where kappa =
 * || |W| |x| + |b| || / ||ref|| of the last layer's sums exceeds 20
 * (suite-lstm.c's rule): D's logits of a barely trained D sit near 0, sums
 * whose terms cancel. */
#define CHECK_BATCH 2
#define U BENCH_U
#define PIXELS (28 * 28)

enum { G_DENSE, G_BN1, G_T1 = G_BN1 + 4, G_BN2, G_T2 = G_BN2 + 4, G_T2_BIAS, NG };
static const bench_param g_params[NG] = {
    { "layers.0.kernel", 2, { 6272, 100 } },   { "layers.2.gamma", 1, { 128 } },
    { "layers.2.beta", 1, { 128 } },           { "layers.2.running_mean", 1, { 128 } },
    { "layers.2.running_var", 1, { 128 } },    { "layers.4.kernel", 4, { 128, 64, 5, 5 } },
    { "layers.5.gamma", 1, { 64 } },           { "layers.5.beta", 1, { 64 } },
    { "layers.5.running_mean", 1, { 64 } },    { "layers.5.running_var", 1, { 64 } },
    { "layers.7.kernel", 4, { 64, 1, 5, 5 } }, { "layers.7.bias", 1, { 1 } },
};

enum { D_K1, D_B1, D_K2, D_B2, D_K3, D_B3, ND };
static const bench_param d_params[ND] = {
    { "layers.0.kernel", 4, { 64, 1, 5, 5 } },   { "layers.0.bias", 1, { 64 } },
    { "layers.2.kernel", 4, { 128, 64, 5, 5 } }, { "layers.2.bias", 1, { 128 } },
    { "layers.5.kernel", 2, { 1, 6272 } },       { "layers.5.bias", 1, { 1 } },
};

/* Batch norm in inference mode over (rows, c, hw), parameters from w->p[k]
 * (gamma, beta, running mean, running variance), eps as the model's. */
static clnet_status batchnorm(const bench_weights *w, int k, int rows, int c, int hw, bench_act *t)
{
    const double eps = (double)1e-3f;
    const double *gamma = w->p[k], *beta = w->p[k + 1], *mean = w->p[k + 2], *var = w->p[k + 3];
    ref_batchnorm p = { .n = rows, .c = c, .hw = hw, .eps = eps };
    double *x = malloc(t->n * sizeof *x);
    if (!x)
        return CLNET_ERR_HOST_MEMORY;
    memcpy(x, t->a, t->n * sizeof *x);
    ref_batchnorm_forward_inference(&p, t->a, gamma, beta, mean, var, t->a);
    for (size_t i = 0; i < t->n; i++) {
        int ch = (int)(i / (size_t)hw % (size_t)c);
        double s = fabs(gamma[ch]) / sqrt(var[ch] + eps);
        t->e[i] = s * t->e[i] + 2 * U * (16 * s * fabs(x[i] - mean[ch]) + 2 * fabs(t->a[i]));
    }
    free(x);
    return CLNET_OK;
}

static void leaky_relu(bench_act *t)
{
    ref_act_leaky_relu_forward(t->n, (double)0.2f, t->a, t->a);
    for (size_t i = 0; i < t->n; i++)
        t->e[i] += U * fabs(t->a[i]);
}

static void tanh_act(bench_act *t)
{
    ref_act_tanh_forward(t->n, t->a, t->a);
    for (size_t i = 0; i < t->n; i++)
        t->e[i] += 12 * U * fabs(t->a[i]);
}

/* A 5x5 stride-2 convolution with Keras' "same" padding of an even input
 * (one row and column before, two after): c x h x h to k x h/2 x h/2. */
static ref_conv2d conv5s2(int n, int c, int h, int k)
{
    return (ref_conv2d){ .n = n,
                         .c = c,
                         .h = h,
                         .w = h,
                         .k = k,
                         .r = 5,
                         .s = 5,
                         .stride_h = 2,
                         .stride_w = 2,
                         .pad_t = 1,
                         .pad_b = 2,
                         .pad_l = 1,
                         .pad_r = 2,
                         .dil_h = 1,
                         .dil_w = 1 };
}

/* G in float64 on noise z (CHECK_BATCH, 100): images and bounds. */
static clnet_status g_forward(const bench_weights *w, const float *z, bench_act *t)
{
    const int b = CHECK_BATCH;
    /* The transposed convolutions are the data gradients of these. */
    ref_conv2d t1 = conv5s2(b, 64, 14, 128), t2 = conv5s2(b, 1, 28, 64);
    bench_linear_layer dense = { NULL, 0, b, 100, 6272, 100, 6272, (size_t)b * 6272 };
    /* A transposed output sums at most (input channels) x (taps) products. */
    bench_linear_layer l1 = { &t1, 1, 0, 0, 0, 128 * 25, 64, (size_t)b * 64 * 14 * 14 };
    bench_linear_layer l2 = { &t2, 1, 0, 0, 0, 64 * 25, 1, (size_t)b * PIXELS };
    clnet_status st = bench_act_from(t, z, (size_t)b * DCGAN_NOISE_DIM);
    if (!st && !(st = bench_linear(&dense, w, G_DENSE, -1, t)) &&
        !(st = batchnorm(w, G_BN1, b, 128, 49, t)))
        leaky_relu(t);
    if (!st && !(st = bench_linear(&l1, w, G_T1, -1, t)) &&
        !(st = batchnorm(w, G_BN2, b, 64, 196, t)))
        leaky_relu(t);
    if (!st && !(st = bench_linear(&l2, w, G_T2, G_T2_BIAS, t)))
        tanh_act(t);
    if (st)
        bench_act_free(t);
    return st;
}

/* D in float64 on images x (CHECK_BATCH, 1, 28, 28): logits and bounds. */
static clnet_status d_forward(const bench_weights *w, const float *x, bench_act *t)
{
    const int b = CHECK_BATCH;
    ref_conv2d c1 = conv5s2(b, 1, 28, 64), c2 = conv5s2(b, 64, 14, 128);
    bench_linear_layer l1 = { &c1, 0, 0, 0, 0, 25, 64, (size_t)b * 64 * 14 * 14 };
    bench_linear_layer l2 = { &c2, 0, 0, 0, 0, 64 * 25, 128, (size_t)b * 128 * 7 * 7 };
    bench_linear_layer dense = { NULL, 0, b, 6272, 1, 6272, 1, (size_t)b };
    clnet_status st = bench_act_from(t, x, (size_t)b * PIXELS);
    if (!st && !(st = bench_linear(&l1, w, D_K1, D_B1, t)))
        leaky_relu(t);
    if (!st && !(st = bench_linear(&l2, w, D_K2, D_B2, t)))
        leaky_relu(t); /* NCHW flattens to (b, 6272) as it lies */
    if (!st)
        st = bench_linear(&dense, w, D_K3, D_B3, t);
    if (st)
        bench_act_free(t);
    return st;
}

/* The device's side: noise rows 0..CHECK_BATCH-1, G's images of them and
 * D's logits of those images, all in inference mode. */
static clnet_status device_forward(gan_state *s, float **z, float **img, float **logits)
{
    clnet_tensor *z2 = NULL;
    const clnet_tensor *y = NULL, *lg = NULL, *p = NULL;
    *z = *img = *logits = NULL;
    clnet_status st = clnet_tensor_slice(s->z, 0, CHECK_BATCH, &z2);
    if (!st)
        st = bench_download(z2, z);
    if (!st)
        st = clnet_model_forward(s->g, z2, 0, &y, NULL);
    if (!st)
        st = bench_download(y, img);
    if (!st)
        st = clnet_model_forward(s->d, y, 0, &p, &lg);
    if (!st)
        st = bench_download(lg, logits);
    clnet_tensor_destroy(z2);
    return st;
}

/* The float64 side: G's images of z and D's logits of the device's images. */
static clnet_status reference(gan_state *s, const float *z, const float *img, bench_act *ri,
                              bench_act *rl)
{
    bench_weights w;
    clnet_status st = bench_weights_load(s->g, "gan", g_params, NG, &w);
    if (st)
        return st;
    st = g_forward(&w, z, ri);
    bench_weights_free(&w);
    if (!st && !(st = bench_weights_load(s->d, "gan", d_params, ND, &w))) {
        st = d_forward(&w, img, rl);
        bench_weights_free(&w);
    }
    return st;
}

static clnet_status gan_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                              bench_check *out)
{
    (void)c;
    (void)ref_cache; /* the weights differ per device after training: no sharing */
    gan_state *s = state;
    float *z = NULL, *img = NULL, *logits = NULL;
    bench_act ri = { 0 }, rl = { 0 };
    clnet_status st = device_forward(s, &z, &img, &logits);
    if (!st)
        st = reference(s, z, img, &ri, &rl);
    if (!st) {
        if (inject_fault)
            img[PIXELS + 14 * 28 + 14] += 1.0f; /* image 1's centre */
        double share = 0;
        bench_check_begin(out, "fp64 G and D forward, layered bound + normwise");
        bench_check_span(out, img, ri.a, ri.e, ri.n);
        bench_check_span(out, logits, rl.a, rl.e, rl.n);
        bench_normwise_check(out, 0, img, &ri, &share);
        bench_normwise_check(out, ri.n, logits, &rl, &share);
        bench_check_end(out);
        snprintf(out->note, sizeof out->note,
                 "G images, D logits of noise rows 0-%d: max %.2g of bound, normwise %.2g of limit",
                 CHECK_BATCH - 1, out->max_ratio, share);
    }
    bench_act_free(&rl);
    bench_act_free(&ri);
    free(logits);
    free(img);
    free(z);
    return st;
}

const bench_suite bench_suite_gan = {
    .name = "gan",
    .about = "the reference DCGAN (tools/models.c): a training iteration of the two-model loop, "
             "its D and G steps, and generation",
    .list = gan_list,
    .setup = gan_setup,
    .run = gan_run,
    .check = gan_check,
    .teardown = gan_teardown,
};
