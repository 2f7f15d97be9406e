/* clnet tools — the reference VAE (docs/vae.md) as one graph model
 * (clnet/graph.h): encoder, two heads, the Sampling layer (which adds the KL
 * term) and decoder, trained by the library's own train_on_batch; plus a
 * decoder-only model that takes a copy of the decoder's weights for the
 * pictures and the score. Shared by clnet-train vae and clnet-bench's vae
 * suite. */
#ifndef CLNET_TOOLS_VAE_H
#define CLNET_TOOLS_VAE_H

#include <clnet/clnet.h>
#include <clnet/graph.h>

#define VAE_LATENT 2

/* The layers of the whole model, by index (the weight files' "layers.<i>."):
 * encoder Conv2D(32, 3x3, stride 2, same, relu) > Conv2D(64, ...) > Flatten >
 * Dense(16, relu), then from that one node the heads Dense(2) (the mean of
 * q(z | x)) and Dense(2) (its log-variance), Sampling (KL weight 1), decoder
 * Dense(7*7*64, relu) > Reshape(64, 7, 7) > Conv2DTranspose(64, 3x3,
 * stride 2, same, relu) > Conv2DTranspose(32, ...) > Conv2DTranspose(1, 3x3,
 * same, sigmoid). The decoder-only model's layer i is VAE_DECODER + i. */
enum { VAE_MEAN_LAYER = 4, VAE_LOGVAR_LAYER = 5, VAE_SAMPLING_LAYER = 6, VAE_DECODER = 7 };

typedef struct vae {
    clnet_context *ctx;
    clnet_model *model;   /* images (batch, 1, 28, 28) -> their reconstructions */
    clnet_model *decoder; /* z (batch, 2) -> images; vae_sync_decoder fills it */
    clnet_node mean, logvar, z;
} vae;

/* Builds and compiles both models: the whole one with binary cross-entropy
 * summed over the 784 pixels (mean over the batch) on the reconstruction,
 * plus the Sampling layer's KL term, Adam at learning rate lr; the decoder
 * with no loss (it only predicts). The whole model is trained with y = x.
 * *out is caller-owned (vae_destroy). */
clnet_status vae_create(clnet_context *ctx, unsigned long long seed, float lr, vae **out);
void vae_destroy(vae *v);

/* Copies the decoder's parameters of the whole model into the decoder-only
 * model (by layer and name), so that it decodes as the trained model does. */
clnet_status vae_sync_decoder(vae *v);

/* Decodes n latent points (n x VAE_LATENT floats, host) to n images in
 * [0, 1] (host, n * 784 floats) with the decoder-only model: call
 * vae_sync_decoder after training first. */
clnet_status vae_decode(vae *v, const float *z, int64_t n, float *img);
/* The means of q(z | x) for n images (host, n * 784 floats in [0, 1]) into
 * z (n x VAE_LATENT): the mean head's node after inference forwards of the
 * whole model, in chunks of `batch`. */
clnet_status vae_encode(vae *v, const float *x, int64_t n, int64_t batch, float *z);

#endif
