/* clnet tools — the reference VAE (docs/vae.md): encoder and decoder as two
 * sequential models, joined by clnet/merge.h's sampling and KL primitives in
 * one training loop. Public API only. */
#include "vae.h"

#include <math.h>
#include <stdlib.h>

enum { SIDE = 28, PIXELS = SIDE * SIDE, HEADS = 2 * VAE_LATENT };

static clnet_status finish_build(clnet_model *m, clnet_status st, clnet_model **out)
{
    if (st) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

clnet_status build_vae_encoder(clnet_context *ctx, unsigned long long seed, clnet_model **out)
{
    int64_t in[3] = { 1, SIDE, SIDE };
    clnet_model *m;
    *out = NULL;
    clnet_status st = clnet_model_create(ctx, 3, in, seed, &m);
    if (st)
        return st;
    clnet_conv2d_layer_params c1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, c2;
    c1.filters = 32;
    c1.stride_h = c1.stride_w = 2;
    c1.padding = CLNET_PADDING_SAME;
    c1.activation = CLNET_ACT_RELU;
    c2 = c1;
    c2.filters = 64;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, d2 = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 16;
    d1.activation = CLNET_ACT_RELU;
    d2.units = HEADS;
    if ((st = clnet_model_add_conv2d(m, &c1)) || (st = clnet_model_add_conv2d(m, &c2)) ||
        (st = clnet_model_add_flatten(m)) || (st = clnet_model_add_dense(m, &d1)) ||
        (st = clnet_model_add_dense(m, &d2)))
        return finish_build(m, st, out);
    /* Glorot-uniform draws from +-sqrt(6 / (fan_in + fan_out)): fan_out 4
     * for the joined heads, 2 for each of Keras' two. Scaling the uniform
     * draw by the ratio of the limits gives the heads' distribution. */
    clnet_tensor *k;
    if (!(st = clnet_model_param(m, 4, "kernel", &k)))
        st = clnet_scale(k, k, (float)sqrt((16.0 + HEADS) / (16.0 + VAE_LATENT)));
    return finish_build(m, st, out);
}

clnet_status build_vae_decoder(clnet_context *ctx, unsigned long long seed, clnet_model **out)
{
    int64_t in[1] = { VAE_LATENT }, grid[3] = { 64, 7, 7 };
    clnet_model *m;
    *out = NULL;
    clnet_status st = clnet_model_create(ctx, 1, in, seed, &m);
    if (st)
        return st;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 64 * 7 * 7;
    d.activation = CLNET_ACT_RELU;
    clnet_conv2d_layer_params t1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, t2, t3;
    t1.filters = 64;
    t1.stride_h = t1.stride_w = 2;
    t1.padding = CLNET_PADDING_SAME;
    t1.activation = CLNET_ACT_RELU;
    t2 = t1;
    t2.filters = 32;
    t3 = t2;
    t3.filters = 1;
    t3.stride_h = t3.stride_w = 1;
    t3.activation = CLNET_ACT_SIGMOID;
    st = clnet_model_add_dense(m, &d);
    if (!st && !(st = clnet_model_add_reshape(m, 3, grid)) &&
        !(st = clnet_model_add_conv2d_transpose(m, &t1)) &&
        !(st = clnet_model_add_conv2d_transpose(m, &t2)))
        st = clnet_model_add_conv2d_transpose(m, &t3);
    return finish_build(m, st, out);
}

/* ---- The loop ---------------------------------------------------------------------- */

struct vae_trainer {
    clnet_context *ctx;
    clnet_model *enc, *dec;
    int64_t batch;
    unsigned long long seed;
    uint64_t steps;
    /* (B, 2) each; dh (B, 4); dlogits (B, 1, 28, 28); x_in the host-given
     * images of vae_encode; rec and kl one element each. */
    clnet_tensor *mean, *logvar, *eps, *z, *dmean, *dlogvar, *dh, *dlogits, *x_in, *rec, *kl;
};

void vae_trainer_destroy(vae_trainer *t)
{
    if (!t)
        return;
    clnet_tensor *all[] = { t->mean, t->logvar,  t->eps,  t->z,   t->dmean, t->dlogvar,
                            t->dh,   t->dlogits, t->x_in, t->rec, t->kl };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    free(t);
}

clnet_status vae_trainer_create(clnet_context *ctx, clnet_model *enc, clnet_model *dec,
                                int64_t batch, unsigned long long seed, vae_trainer **out)
{
    int64_t es[CLNET_MAX_DIMS], ds[CLNET_MAX_DIMS];
    *out = NULL;
    if (batch < 1)
        return CLNET_ERR_INVALID_ARG;
    if (clnet_model_output_shape(enc, es) != 1 || es[0] != HEADS ||
        clnet_model_output_shape(dec, ds) != 3 || ds[0] != 1 || ds[1] != SIDE || ds[2] != SIDE)
        return CLNET_ERR_SHAPE;
    vae_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return CLNET_ERR_HOST_MEMORY;
    *t = (vae_trainer){ .ctx = ctx, .enc = enc, .dec = dec, .batch = batch, .seed = seed };
    int64_t lat[2] = { batch, VAE_LATENT }, heads[2] = { batch, HEADS },
            img[4] = { batch, 1, SIDE, SIDE }, one[1] = { 1 };
    clnet_tensor **lats[] = { &t->mean, &t->logvar, &t->eps, &t->z, &t->dmean, &t->dlogvar };
    clnet_status st = CLNET_OK;
    for (size_t i = 0; !st && i < sizeof lats / sizeof lats[0]; i++)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, lat, lats[i]);
    if (st || (st = clnet_tensor_create(ctx, CLNET_F32, 2, heads, &t->dh)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 4, img, &t->dlogits)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 4, img, &t->x_in)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 1, one, &t->rec)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 1, one, &t->kl))) {
        vae_trainer_destroy(t);
        return st;
    }
    *out = t;
    return CLNET_OK;
}

uint64_t vae_steps(const vae_trainer *t)
{
    return t->steps;
}

/* The trainer's (B, ...) tensors as their first k rows (k = B: the tensors
 * themselves). The views are caller-owned when k < B (views_free). */
typedef struct views {
    clnet_tensor *mean, *logvar, *eps, *z, *dmean, *dlogvar, *dh, *dlogits, *x_in;
    int owned;
} views;

static void views_free(views *v)
{
    if (!v->owned)
        return;
    clnet_tensor *all[] = { v->mean,    v->logvar, v->eps,     v->z,   v->dmean,
                            v->dlogvar, v->dh,     v->dlogits, v->x_in };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
}

static clnet_status views_make(vae_trainer *t, int64_t k, views *v)
{
    *v = (views){ t->mean,    t->logvar, t->eps,     t->z,    t->dmean,
                  t->dlogvar, t->dh,     t->dlogits, t->x_in, 0 };
    if (k == t->batch)
        return CLNET_OK;
    clnet_tensor *src[] = { t->mean,    t->logvar, t->eps,     t->z,   t->dmean,
                            t->dlogvar, t->dh,     t->dlogits, t->x_in };
    clnet_tensor **dst[] = { &v->mean,    &v->logvar, &v->eps,     &v->z,   &v->dmean,
                             &v->dlogvar, &v->dh,     &v->dlogits, &v->x_in };
    *v = (views){ .owned = 1 };
    clnet_status st = CLNET_OK;
    for (size_t i = 0; !st && i < sizeof src / sizeof src[0]; i++)
        st = clnet_tensor_slice(src[i], 0, k, dst[i]);
    if (st)
        views_free(v);
    return st;
}

/* h = E(x) split into mean and logvar. */
static clnet_status encode(vae_trainer *t, const clnet_tensor *x, int training, const views *v)
{
    const clnet_tensor *h;
    clnet_tensor *parts[2] = { v->mean, v->logvar };
    clnet_status st = clnet_model_forward(t->enc, x, training, &h, NULL);
    return st ? st : clnet_concat_backward(-1, 2, NULL, h, 0.0f, parts);
}

/* The loss terms of x through z: rec = the mean BCE over every pixel (times
 * 784 in vae_losses) and kl = the batch mean; in training also dlogits,
 * the gradient of the mean BCE (vae_backward scales it). */
static clnet_status decode_loss(vae_trainer *t, const clnet_tensor *x, int training, const views *v)
{
    const clnet_tensor *logits;
    clnet_status st;
    if ((st = clnet_model_forward(t->dec, v->z, training, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, x, t->rec, training ? v->dlogits : NULL)))
        return st;
    return clnet_kl_normal(CLNET_KL_MEAN, v->mean, v->logvar, 0.0f, t->kl, NULL, NULL);
}

clnet_status vae_backward(vae_trainer *t, const clnet_tensor *x, const float *eps)
{
    int64_t k = clnet_tensor_dim(x, 0);
    if (k < 1 || k > t->batch)
        return CLNET_ERR_SHAPE;
    views v;
    clnet_status st = views_make(t, k, &v);
    if (st)
        return st;
    const clnet_tensor *dz, *grads[2] = { v.dmean, v.dlogvar };
    if ((st = encode(t, x, 1, &v)) ||
        (eps && (st = clnet_tensor_upload(v.eps, eps, (size_t)(k * VAE_LATENT) * sizeof *eps))) ||
        (st = eps ? clnet_sampling_forward_eps(v.mean, v.logvar, v.eps, v.z)
                  : clnet_sampling_forward(v.mean, v.logvar, t->seed, t->steps, v.eps, v.z)) ||
        (st = decode_loss(t, x, 1, &v)) ||
        /* BCE's gradient is that of the mean over all k * 784 pixels; the
         * loss is the batch mean of per-image sums: 784 times that. */
        (st = clnet_scale(v.dlogits, v.dlogits, (float)PIXELS)) ||
        (st = clnet_model_backward(t->dec, v.dlogits, &dz)) ||
        (st = clnet_sampling_backward(v.logvar, v.eps, dz, 0.0f, v.dmean, v.dlogvar)) ||
        (st = clnet_kl_normal(CLNET_KL_MEAN, v.mean, v.logvar, 1.0f, NULL, v.dmean, v.dlogvar)) ||
        (st = clnet_concat_forward(-1, 2, grads, v.dh)))
        goto done;
    st = clnet_model_backward(t->enc, v.dh, NULL);
done:
    views_free(&v);
    return st;
}

clnet_status vae_step(vae_trainer *t, const clnet_tensor *x)
{
    clnet_status st = vae_backward(t, x, NULL);
    if (st || (st = clnet_model_step(t->enc)) || (st = clnet_model_step(t->dec)))
        return st;
    t->steps++;
    return CLNET_OK;
}

clnet_status vae_losses(vae_trainer *t, double *reconstruction, double *kl)
{
    float r, k;
    clnet_status st = clnet_tensor_download(t->rec, &r, sizeof r);
    if (!st)
        st = clnet_tensor_download(t->kl, &k, sizeof k);
    if (st)
        return st;
    if (reconstruction)
        *reconstruction = (double)r * PIXELS;
    if (kl)
        *kl = (double)k;
    return CLNET_OK;
}

clnet_status vae_evaluate(vae_trainer *t, const clnet_tensor *x, unsigned long long seed,
                          unsigned long long stream)
{
    int64_t k = clnet_tensor_dim(x, 0);
    if (k < 1 || k > t->batch)
        return CLNET_ERR_SHAPE;
    views v;
    clnet_status st = views_make(t, k, &v);
    if (st)
        return st;
    if (!(st = encode(t, x, 0, &v)) &&
        !(st = clnet_sampling_forward(v.mean, v.logvar, seed, stream, v.eps, v.z)))
        st = decode_loss(t, x, 0, &v);
    views_free(&v);
    return st;
}

clnet_status vae_decode(vae_trainer *t, const float *z, int64_t n, float *img)
{
    clnet_status st = CLNET_OK;
    for (int64_t s = 0; !st && s < n; s += t->batch) {
        int64_t k = n - s < t->batch ? n - s : t->batch;
        views v;
        const clnet_tensor *y;
        if ((st = views_make(t, k, &v)))
            break;
        if (!(st = clnet_tensor_upload(v.z, z + s * VAE_LATENT,
                                       (size_t)(k * VAE_LATENT) * sizeof *z)) &&
            !(st = clnet_model_forward(t->dec, v.z, 0, &y, NULL)))
            st = clnet_tensor_download(y, img + s * PIXELS, (size_t)(k * PIXELS) * sizeof *img);
        views_free(&v);
    }
    return st;
}

clnet_status vae_encode(vae_trainer *t, const float *x, int64_t n, float *z)
{
    clnet_status st = CLNET_OK;
    for (int64_t s = 0; !st && s < n; s += t->batch) {
        int64_t k = n - s < t->batch ? n - s : t->batch;
        views v;
        if ((st = views_make(t, k, &v)))
            break;
        if (!(st = clnet_tensor_upload(v.x_in, x + s * PIXELS, (size_t)(k * PIXELS) * sizeof *x)) &&
            !(st = encode(t, v.x_in, 0, &v)))
            st = clnet_tensor_download(v.mean, z + s * VAE_LATENT,
                                       (size_t)(k * VAE_LATENT) * sizeof *z);
        views_free(&v);
    }
    return st;
}
