/* clnet tools — the reference VAE (docs/vae.md): its encoder and decoder and
 * the loop that joins them through sampling and the KL term; shared by
 * clnet-train vae and clnet-bench's vae suite. */
#ifndef CLNET_TOOLS_VAE_H
#define CLNET_TOOLS_VAE_H

#include <clnet/clnet.h>

#define VAE_LATENT 2

/* The encoder, images (batch, 1, 28, 28) in [0, 1] to (batch, 4) = the mean
 * (columns 0-1) and log-variance (columns 2-3) of q(z | x):
 * Conv2D(32, 3x3, stride 2, same, relu) > Conv2D(64, 3x3, stride 2, same,
 * relu) > Flatten > Dense(16, relu) > Dense(4). The last Dense is Keras'
 * two Dense(2) heads side by side: the same arithmetic, and its kernel is
 * drawn as two Glorot-uniform 16x2 kernels would be. Not compiled; *out is
 * caller-owned (clnet_model_destroy). */
clnet_status build_vae_encoder(clnet_context *ctx, unsigned long long seed, clnet_model **out);

/* The decoder, z (batch, 2) to images (batch, 1, 28, 28) in [0, 1]:
 * Dense(7*7*64, relu) > Reshape(64, 7, 7) > Conv2DTranspose(64, 3x3,
 * stride 2, same, relu) > Conv2DTranspose(32, 3x3, stride 2, same, relu) >
 * Conv2DTranspose(1, 3x3, same, sigmoid); the loss reads the logits before
 * the sigmoid. Not compiled; *out is caller-owned. */
clnet_status build_vae_decoder(clnet_context *ctx, unsigned long long seed, clnet_model **out);

/* One loop over two compiled models (CLNET_LOSS_NONE). A step on x (B, 1,
 * 28, 28), B = the trainer's batch:
 *   h = E(x); mean, logvar = the halves of h;
 *   z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from Philox (seed,
 *       stream), stream = the steps taken so far;
 *   logits = D(z) before its sigmoid;
 *   loss = mean over the batch of [ BCE(logits, x) summed over the 784
 *          pixels + KL(N(mean, exp(logvar)) || N(0, I)) ]
 * and its gradient back through D, the sampling, the KL term and E, then one
 * optimizer step of each. Losses stay on the device until read.
 * Thread-safety: as the models' context. */
typedef struct vae_trainer vae_trainer;

/* enc and dec are borrowed and must outlive the trainer; *out is
 * caller-owned (vae_trainer_destroy). CLNET_ERR_SHAPE when enc does not map
 * 1x28x28 images to 2 * VAE_LATENT values or dec VAE_LATENT values to
 * 1x28x28 images, CLNET_ERR_INVALID_ARG for batch < 1. The trainer's own
 * checks return a status only (no message); failures inside library calls
 * carry the context's. */
clnet_status vae_trainer_create(clnet_context *ctx, clnet_model *enc, clnet_model *dec,
                                int64_t batch, unsigned long long seed, vae_trainer **out);
void vae_trainer_destroy(vae_trainer *t);

/* The loss and its gradients (training mode) without a step, for x of k
 * rows, 1 <= k <= the trainer's batch (an epoch's last, smaller batch).
 * eps: NULL draws new noise (stream = the steps taken so far); else
 * k * VAE_LATENT given numbers, held fixed (gradient checks). */
clnet_status vae_backward(vae_trainer *t, const clnet_tensor *x, const float *eps);
/* vae_backward with new noise, then one step of both models. */
clnet_status vae_step(vae_trainer *t, const clnet_tensor *x);
/* The last step's (or evaluation's) batch means of the two terms, read from
 * the device (waits). Either may be NULL. */
clnet_status vae_losses(vae_trainer *t, double *reconstruction, double *kl);
/* Steps taken (the next step's noise stream); set to resume. */
uint64_t vae_steps(const vae_trainer *t);

/* The loss of x (B rows, 1 <= B <= the trainer's batch) in inference mode,
 * eps from (seed, stream): per-image means of both terms via vae_losses. */
clnet_status vae_evaluate(vae_trainer *t, const clnet_tensor *x, unsigned long long seed,
                          unsigned long long stream);

/* Decodes n latent points (n x VAE_LATENT floats, host) to n images in
 * [0, 1] (host, n * 784 floats), in batches of up to the trainer's batch. */
clnet_status vae_decode(vae_trainer *t, const float *z, int64_t n, float *img);
/* The means of q(z | x) for n images (host, n * 784 floats in [0, 1]) into
 * z (n x VAE_LATENT), in inference mode. */
clnet_status vae_encode(vae_trainer *t, const float *x, int64_t n, float *z);

#endif
