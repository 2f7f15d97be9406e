/* clnet tools — the reference VAE (docs/vae.md) as one graph model, and a
 * decoder-only model that copies its decoder's weights. Public API only. */
#include "vae.h"

#include <stdlib.h>

enum { SIDE = 28, PIXELS = SIDE * SIDE };

/* The decoder's layers at the cursor of m (a node of VAE_LATENT values). */
static clnet_status add_decoder(clnet_model *m)
{
    int64_t grid[3] = { 64, 7, 7 };
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
    clnet_status st = clnet_model_add_dense(m, &d);
    if (!st && !(st = clnet_model_add_reshape(m, 3, grid)) &&
        !(st = clnet_model_add_conv2d_transpose(m, &t1)) &&
        !(st = clnet_model_add_conv2d_transpose(m, &t2)))
        st = clnet_model_add_conv2d_transpose(m, &t3);
    return st;
}

static clnet_status build_whole(vae *v, clnet_context *ctx, unsigned long long seed, float lr)
{
    int64_t in[3] = { 1, SIDE, SIDE };
    clnet_status st = clnet_model_create(ctx, 3, in, seed, &v->model);
    if (st)
        return st;
    clnet_model *m = v->model;
    clnet_conv2d_layer_params c1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, c2;
    c1.filters = 32;
    c1.stride_h = c1.stride_w = 2;
    c1.padding = CLNET_PADDING_SAME;
    c1.activation = CLNET_ACT_RELU;
    c2 = c1;
    c2.filters = 64;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, head = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 16;
    d1.activation = CLNET_ACT_RELU;
    head.units = VAE_LATENT;
    clnet_node h;
    if ((st = clnet_model_add_conv2d(m, &c1)) || (st = clnet_model_add_conv2d(m, &c2)) ||
        (st = clnet_model_add_flatten(m)) || (st = clnet_model_add_dense(m, &d1)))
        return st;
    h = clnet_model_node(m);
    if ((st = clnet_model_add_dense(m, &head)))
        return st;
    v->mean = clnet_model_node(m);
    if ((st = clnet_model_set_node(m, h)) || (st = clnet_model_add_dense(m, &head)))
        return st;
    v->logvar = clnet_model_node(m);
    if ((st = clnet_model_add_sampling(m, v->mean, v->logvar, 1.0f)))
        return st;
    v->z = clnet_model_node(m);
    if ((st = add_decoder(m)))
        return st;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = lr;
    cp.loss = CLNET_LOSS_BINARY_CROSSENTROPY;
    cp.reduction = CLNET_REDUCTION_SUM;
    return clnet_model_compile(m, &cp);
}

static clnet_status build_decoder(vae *v, clnet_context *ctx, unsigned long long seed)
{
    int64_t in[1] = { VAE_LATENT };
    clnet_status st = clnet_model_create(ctx, 1, in, seed, &v->decoder);
    if (st || (st = add_decoder(v->decoder)))
        return st;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.loss = CLNET_LOSS_NONE;
    return clnet_model_compile(v->decoder, &cp);
}

void vae_destroy(vae *v)
{
    if (!v)
        return;
    clnet_model_destroy(v->model);
    clnet_model_destroy(v->decoder);
    free(v);
}

clnet_status vae_create(clnet_context *ctx, unsigned long long seed, float lr, vae **out)
{
    *out = NULL;
    vae *v = calloc(1, sizeof *v);
    if (!v)
        return CLNET_ERR_HOST_MEMORY;
    v->ctx = ctx;
    clnet_status st = build_whole(v, ctx, seed, lr);
    if (!st)
        st = build_decoder(v, ctx, seed + 1);
    /* The layer numbering vae.h states (the weight files and the tests
     * rely on it). */
    if (!st &&
        (clnet_model_node_layer(v->model, v->mean) != VAE_MEAN_LAYER ||
         clnet_model_node_layer(v->model, v->logvar) != VAE_LOGVAR_LAYER ||
         clnet_model_node_layer(v->model, v->z) != VAE_SAMPLING_LAYER ||
         clnet_model_layer_count(v->model) != VAE_DECODER + clnet_model_layer_count(v->decoder)))
        st = CLNET_ERR_INTERNAL;
    if (st) {
        vae_destroy(v);
        return st;
    }
    *out = v;
    return CLNET_OK;
}

clnet_status vae_sync_decoder(vae *v)
{
    static const char *const names[2] = { "kernel", "bias" };
    static const int layers[4] = { 0, 2, 3, 4 }; /* Dense, the three Conv2DTranspose */
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 2; k++) {
            clnet_tensor *src, *dst;
            clnet_status st = clnet_model_param(v->model, VAE_DECODER + layers[i], names[k], &src);
            if (!st)
                st = clnet_model_param(v->decoder, layers[i], names[k], &dst);
            if (!st)
                st = clnet_tensor_copy(src, dst);
            if (st)
                return st;
        }
    }
    return CLNET_OK;
}

clnet_status vae_decode(vae *v, const float *z, int64_t n, float *img)
{
    return clnet_model_predict(v->decoder, z, n, 100, img);
}

clnet_status vae_encode(vae *v, const float *x, int64_t n, int64_t batch, float *z)
{
    clnet_context *ctx = v->ctx;
    int64_t xs[4] = { batch, 1, SIDE, SIDE };
    clnet_tensor *xt;
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 4, xs, &xt);
    for (int64_t s = 0; !st && s < n; s += batch) {
        int64_t k = n - s < batch ? n - s : batch;
        clnet_tensor *xv;
        const clnet_tensor *mean;
        if ((st = clnet_tensor_slice(xt, 0, k, &xv)))
            break;
        if (!(st = clnet_tensor_upload(xv, x + s * PIXELS, (size_t)(k * PIXELS) * sizeof *x)) &&
            !(st = clnet_model_forward(v->model, xv, 0, NULL, NULL)) &&
            !(st = clnet_model_node_tensor(v->model, v->mean, &mean)))
            st = clnet_tensor_download(mean, z + s * VAE_LATENT,
                                       (size_t)(k * VAE_LATENT) * sizeof *z);
        clnet_tensor_destroy(xv);
    }
    clnet_tensor_destroy(xt);
    return st;
}
