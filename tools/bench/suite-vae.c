/* clnet-bench suite "vae": the reference VAE (tools/vae.c, one graph model)
 * as a whole: a train_on_batch at batch 128 (encoder, Sampling, decoder,
 * BCE summed over pixels + KL, backward, an Adam step), checked afterwards
 * against the float64 reference of the encoder's and (through the
 * decoder-only copy) the decoder's inference forward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bound.h"
#include "ref.h"
#include "vae.h"

#define BATCH 128
#define PIXELS (28 * 28)

/* The layers' FLOP per sample, forward (2 per multiply-add; a transposed
 * convolution as the convolution it transposes). */
#define ENC_FWD_FLOP (2.0 * (32.0 * 196 * 9 + 64.0 * 49 * 32 * 9 + 3136.0 * 16 + 2 * 16.0 * 2))
#define DEC_FWD_FLOP                                                                               \
    (2.0 * (2.0 * 3136 + 64.0 * 196 * 64 * 9 + 32.0 * 784 * 64 * 9 + 784.0 * 32 * 9))

static int vae_list(int quick, bench_case *out, int max)
{
    (void)quick;
    if (max < 1)
        return 0;
    bench_case *c = &out[0];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "vae_train_b%d", BATCH);
    c->about = "VAE training step (one graph model): encoder, sampling, decoder, BCE + KL, "
               "backward, Adam";
    c->quick = 1;
    /* forward + two backward passes' worth, as the cnn suite counts */
    c->flops = 3 * (ENC_FWD_FLOP + DEC_FWD_FLOP) * BATCH;
    c->p[0] = BATCH;
    return 1;
}

typedef struct vae_state {
    vae *v;
    clnet_tensor *x; /* (B, 1, 28, 28), uniform in [0, 1) */
} vae_state;

static void vae_teardown(void *state)
{
    vae_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->x);
    vae_destroy(s->v);
    free(s);
}

/* As clnet-train vae: Adam lr 1e-3, BCE summed over the pixels + KL. */
static clnet_status vae_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    vae_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    int64_t b = c->p[0];
    clnet_status st = vae_create(ctx, 1, 1e-3f, &s->v);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ b, 1, 28, 28 }, &s->x);
    if (!st)
        st = clnet_tensor_rand_uniform(s->x, 7, 0, 0.0f, 1.0f);
    if (st) {
        vae_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status vae_run(void *state)
{
    vae_state *s = state;
    /* the loss is not read: nothing waits */
    return clnet_model_train_on_batch(s->v->model, s->x, s->x, NULL, NULL);
}

/* ---- Checking: the encoder on 2 images, the decoder on their means -----------
 * After the timed steps, the whole model runs in inference mode on rows 0-1
 * of the case's images (its heads' nodes give the encoder's output), and the
 * decoder-only model, its weights copied (vae_sync_decoder), on the means
 * (z = mean, as the reconstructions picture). Both models' parameters are read back through
 * the public API and the networks evaluated in float64 with tests/ref.c: the
 * encoder on the device's images, the decoder on the device's means (so
 * that its check does not inherit the encoder's error). The bounds are
 * suite-gan.c's, carried layer by layer (a linear layer summing K products
 * and its bias errs by 2 (K + 1) u times the sum of the terms' magnitudes;
 * relu is exact and 1-Lipschitz), with the same normwise criterion on top.
 * The decoder is compared before its sigmoid (the logits the loss reads).
 * The carried bounds and the criterion are bound.c's, shared with the gan
 * suite. */
#define CHECK_BATCH 2

/* The whole model's weights (tools/vae.h's layer numbering). */
enum { E_K1, E_B1, E_K2, E_B2, E_K3, E_B3, E_KM, E_BM, E_KV, E_BV, NE };
static const bench_param e_params[NE] = {
    { "layers.0.kernel", 4, { 32, 1, 3, 3 } },  { "layers.0.bias", 1, { 32 } },
    { "layers.1.kernel", 4, { 64, 32, 3, 3 } }, { "layers.1.bias", 1, { 64 } },
    { "layers.3.kernel", 2, { 16, 3136 } },     { "layers.3.bias", 1, { 16 } },
    { "layers.4.kernel", 2, { 2, 16 } },        { "layers.4.bias", 1, { 2 } },
    { "layers.5.kernel", 2, { 2, 16 } },        { "layers.5.bias", 1, { 2 } },
};

enum { D_K1, D_B1, D_K2, D_B2, D_K3, D_B3, D_K4, D_B4, ND };
static const bench_param d_params[ND] = {
    { "layers.7.kernel", 2, { 3136, 2 } },       { "layers.7.bias", 1, { 3136 } },
    { "layers.9.kernel", 4, { 64, 64, 3, 3 } },  { "layers.9.bias", 1, { 64 } },
    { "layers.10.kernel", 4, { 64, 32, 3, 3 } }, { "layers.10.bias", 1, { 32 } },
    { "layers.11.kernel", 4, { 32, 1, 3, 3 } },  { "layers.11.bias", 1, { 1 } },
};

static void relu(bench_act *t)
{
    ref_act_relu_forward(t->n, t->a, t->a);
}

/* A 3x3 convolution with Keras' "same" padding: stride 2 of an even input
 * (no row or column before, one after): c x h x h to k x h/2 x h/2; stride
 * 1: one each side. */
static ref_conv2d conv3(int n, int c, int h, int k, int stride)
{
    int after = 1, before = stride == 2 ? 0 : 1;
    return (ref_conv2d){ .n = n,
                         .c = c,
                         .h = h,
                         .w = h,
                         .k = k,
                         .r = 3,
                         .s = 3,
                         .stride_h = stride,
                         .stride_w = stride,
                         .pad_t = before,
                         .pad_b = after,
                         .pad_l = before,
                         .pad_r = after,
                         .dil_h = 1,
                         .dil_w = 1 };
}

/* The two heads' outputs (B, 2) each side by side: (B, 4), mean then
 * log-variance per row (as device_forward lays the device's out). */
static clnet_status join_heads(const bench_act *mean, const bench_act *logvar, bench_act *t)
{
    clnet_status st = bench_act_alloc(t, mean->n * 2);
    for (size_t i = 0; !st && i < mean->n; i++) {
        size_t r = i / VAE_LATENT, j = i % VAE_LATENT, at = r * 2 * VAE_LATENT + j;
        t->a[at] = mean->a[i], t->e[at] = mean->e[i], t->m[at] = mean->m[i];
        at += VAE_LATENT;
        t->a[at] = logvar->a[i], t->e[at] = logvar->e[i], t->m[at] = logvar->m[i];
    }
    return st;
}

/* The encoder in float64 on images x (CHECK_BATCH, 1, 28, 28): (B, 4). */
static clnet_status e_forward(const bench_weights *w, const float *x, bench_act *t)
{
    const int b = CHECK_BATCH;
    ref_conv2d c1 = conv3(b, 1, 28, 32, 2), c2 = conv3(b, 32, 14, 64, 2);
    bench_linear_layer l1 = { &c1, 0, 0, 0, 0, 9, 32, (size_t)b * 32 * 196 };
    bench_linear_layer l2 = { &c2, 0, 0, 0, 0, 32 * 9, 64, (size_t)b * 64 * 49 };
    bench_linear_layer d1 = { NULL, 0, b, 3136, 16, 3136, 16, (size_t)b * 16 };
    bench_linear_layer d2 = { NULL, 0, b, 16, 2, 16, 2, (size_t)b * 2 };
    bench_act lv = { 0 }, mean = { 0 };
    clnet_status st = bench_act_from(t, x, (size_t)b * PIXELS);
    if (!st && !(st = bench_linear(&l1, w, E_K1, E_B1, t)))
        relu(t);
    if (!st && !(st = bench_linear(&l2, w, E_K2, E_B2, t)))
        relu(t); /* NCHW flattens to (b, 3136) as it lies */
    if (!st && !(st = bench_linear(&d1, w, E_K3, E_B3, t)))
        relu(t);
    /* Both heads read the Dense(16)'s output. */
    if (!st && !(st = bench_act_alloc(&lv, t->n))) {
        memcpy(lv.a, t->a, t->n * sizeof *lv.a);
        memcpy(lv.e, t->e, t->n * sizeof *lv.e);
        memcpy(lv.m, t->m, t->n * sizeof *lv.m);
    }
    if (!st && !(st = bench_linear(&d2, w, E_KV, E_BV, &lv)) &&
        !(st = bench_linear(&d2, w, E_KM, E_BM, t))) {
        mean = *t;
        *t = (bench_act){ 0 };
        st = join_heads(&mean, &lv, t);
    }
    bench_act_free(&mean);
    bench_act_free(&lv);
    if (st)
        bench_act_free(t);
    return st;
}

/* The decoder in float64 on z (CHECK_BATCH, 2): logits (B, 1, 28, 28). */
static clnet_status d_forward(const bench_weights *w, const float *z, bench_act *t)
{
    const int b = CHECK_BATCH;
    /* The transposed convolutions are the data gradients of these. */
    ref_conv2d t1 = conv3(b, 64, 14, 64, 2), t2 = conv3(b, 32, 28, 64, 2),
               t3 = conv3(b, 1, 28, 32, 1);
    bench_linear_layer dense = { NULL, 0, b, 2, 3136, 2, 3136, (size_t)b * 3136 };
    /* A transposed output sums at most (input channels) x (taps) products. */
    bench_linear_layer l1 = { &t1, 1, 0, 0, 0, 64 * 9, 64, (size_t)b * 64 * 196 };
    bench_linear_layer l2 = { &t2, 1, 0, 0, 0, 64 * 9, 32, (size_t)b * 32 * 784 };
    bench_linear_layer l3 = { &t3, 1, 0, 0, 0, 32 * 9, 1, (size_t)b * 784 };
    clnet_status st = bench_act_from(t, z, (size_t)b * VAE_LATENT);
    if (!st && !(st = bench_linear(&dense, w, D_K1, D_B1, t)))
        relu(t);
    if (!st && !(st = bench_linear(&l1, w, D_K2, D_B2, t)))
        relu(t);
    if (!st && !(st = bench_linear(&l2, w, D_K3, D_B3, t)))
        relu(t);
    if (!st)
        st = bench_linear(&l3, w, D_K4, D_B4, t);
    if (st)
        bench_act_free(t);
    return st;
}

/* The device's side: images rows 0..CHECK_BATCH-1, the encoder's (B, 4),
 * z = its means, the decoder's logits of z; inference mode. */
static clnet_status device_forward(vae_state *s, float **x, float **h, float **z, float **logits)
{
    clnet_context *ctx = clnet_tensor_context(s->x);
    clnet_tensor *x2 = NULL, *zt = NULL;
    const clnet_tensor *mt = NULL, *lt = NULL, *lg = NULL;
    float *lv = NULL;
    *x = *h = *z = *logits = NULL;
    clnet_status st = clnet_tensor_slice(s->x, 0, CHECK_BATCH, &x2);
    if (!st)
        st = bench_download(x2, x);
    if (!st)
        st = clnet_model_forward(s->v->model, x2, 0, NULL, NULL);
    if (!st && !(st = clnet_model_node_tensor(s->v->model, s->v->mean, &mt)) &&
        !(st = clnet_model_node_tensor(s->v->model, s->v->logvar, &lt)) &&
        !(st = bench_download(mt, z)))
        st = bench_download(lt, &lv);
    if (!st && !(*h = malloc(CHECK_BATCH * 2 * VAE_LATENT * sizeof **h)))
        st = CLNET_ERR_HOST_MEMORY;
    for (int r = 0; !st && r < CHECK_BATCH; r++)
        for (int j = 0; j < VAE_LATENT; j++) {
            (*h)[r * 2 * VAE_LATENT + j] = (*z)[r * VAE_LATENT + j];
            (*h)[r * 2 * VAE_LATENT + VAE_LATENT + j] = lv[r * VAE_LATENT + j];
        }
    free(lv);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ CHECK_BATCH, VAE_LATENT }, &zt);
    if (!st)
        st = clnet_tensor_upload(zt, *z, CHECK_BATCH * VAE_LATENT * sizeof **z);
    if (!st)
        st = vae_sync_decoder(s->v);
    if (!st)
        st = clnet_model_forward(s->v->decoder, zt, 0, NULL, &lg);
    if (!st)
        st = bench_download(lg, logits);
    clnet_tensor_destroy(zt);
    clnet_tensor_destroy(x2);
    return st;
}

static clnet_status reference(vae_state *s, const float *x, const float *z, bench_act *rh,
                              bench_act *rl)
{
    bench_weights w;
    clnet_status st = bench_weights_load(s->v->model, "vae", e_params, NE, &w);
    if (st)
        return st;
    st = e_forward(&w, x, rh);
    bench_weights_free(&w);
    if (!st && !(st = bench_weights_load(s->v->model, "vae", d_params, ND, &w))) {
        st = d_forward(&w, z, rl);
        bench_weights_free(&w);
    }
    return st;
}

static clnet_status vae_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                              bench_check *out)
{
    (void)c;
    (void)ref_cache; /* the weights differ per device after training: no sharing */
    vae_state *s = state;
    float *x = NULL, *h = NULL, *z = NULL, *logits = NULL;
    bench_act rh = { 0 }, rl = { 0 };
    clnet_status st = device_forward(s, &x, &h, &z, &logits);
    if (!st)
        st = reference(s, x, z, &rh, &rl);
    if (!st) {
        if (inject_fault)
            logits[PIXELS + 14 * 28 + 14] += 1.0f; /* image 1's centre */
        double share = 0;
        bench_check_begin(out, "fp64 encoder and decoder forward, layered bound + normwise");
        bench_check_span(out, h, rh.a, rh.e, rh.n);
        bench_check_span(out, logits, rl.a, rl.e, rl.n);
        bench_normwise_check(out, 0, h, &rh, &share);
        bench_normwise_check(out, rh.n, logits, &rl, &share);
        bench_check_end(out);
        snprintf(out->note, sizeof out->note,
                 "encoder of images 0-%d, decoder of their means: max %.2g of bound, normwise %.2g",
                 CHECK_BATCH - 1, out->max_ratio, share);
    }
    bench_act_free(&rl);
    bench_act_free(&rh);
    free(logits);
    free(z);
    free(h);
    free(x);
    return st;
}

const bench_suite bench_suite_vae = {
    .name = "vae",
    .about = "the reference VAE (tools/vae.c): a training step of the encoder-sampling-decoder "
             "graph model at batch 128",
    .list = vae_list,
    .setup = vae_setup,
    .run = vae_run,
    .check = vae_check,
    .teardown = vae_teardown,
};
