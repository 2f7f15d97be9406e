/* clnet tools — the reference models, shared by clnet-train and clnet-bench;
 * the GAN loop (two models, one step) and the classifier-based sample score,
 * shared with tests/test-gan.c. */
#ifndef CLNET_TOOLS_MODELS_H
#define CLNET_TOOLS_MODELS_H

#include <clnet/clnet.h>

/* Conv2D(32, 3x3, relu) on 1x28x28 > MaxPool 2x2 > Conv2D(64, 3x3, relu) >
 * MaxPool 2x2 > Flatten > Dense(64, relu) > Dense(10, softmax). Not compiled.
 * *out is caller-owned (clnet_model_destroy). */
clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out);

/* Three recurrent layers of 64 units on (28 steps, 28 features) sequences,
 * the first two returning sequences, the third its last state, then
 * Dense(10, softmax): the reference LSTM stack (cell "lstm") or the same
 * with the simple tanh RNN (cell "rnn"). Any other cell name:
 * CLNET_ERR_INVALID_ARG. Not compiled. On success *out is caller-owned
 * (clnet_model_destroy); on failure NULL. */
clnet_status build_rnn_stack(clnet_context *ctx, const char *cell, unsigned long long seed,
                             clnet_model **out);
/* ---- DCGAN (docs/gan.md) ----------------------------------------------------- */

#define DCGAN_NOISE_DIM 100

/* The generator, noise (batch, 100) to images (batch, 1, 28, 28) in [-1, 1]:
 * Dense(7*7*128, no bias) > Reshape(128, 7, 7) > BatchNorm > LeakyReLU(0.2) >
 * Conv2DTranspose(64, 5x5, stride 2, same, no bias) > BatchNorm >
 * LeakyReLU(0.2) > Conv2DTranspose(1, 5x5, stride 2, same, tanh). BatchNorm
 * momentum 0.1 (PyTorch's; Keras' 0.9), eps 1e-3. Not compiled; *out is
 * caller-owned. */
clnet_status build_dcgan_generator(clnet_context *ctx, unsigned long long seed, clnet_model **out);

/* The discriminator, images (batch, 1, 28, 28) to one logit per image:
 * Conv2D(64, 5x5, stride 2, same, LeakyReLU(0.2)) > Dropout(0.3) >
 * Conv2D(128, 5x5, stride 2, same, LeakyReLU(0.2)) > Dropout(0.3) > Flatten >
 * Dense(1, sigmoid); the sigmoid is fused into the loss (gan_trainer uses
 * the logits). Not compiled; *out is caller-owned. */
clnet_status build_dcgan_discriminator(clnet_context *ctx, unsigned long long seed,
                                       clnet_model **out);

/* Two models, one loop. The trainer borrows a compiled generator G (input
 * (noise_dim), any output shape) and a compiled discriminator D whose input
 * is G's output and whose output is one logit per sample (a sigmoid output
 * layer is fused: its logits are used). One training iteration is
 *   gan_generate   noise z ~ N(0, 1), fakes = G(z) in training mode;
 *   gan_step_d     D on [real; fakes] (one batch of 2B), BCE from logits
 *                  against [real_label; 0], backward, step D;
 *   gan_step_g     D frozen: D(fakes) in training mode, BCE against 1,
 *                  backward through D to its input gradient only (D's
 *                  parameters, gradients and running statistics are not
 *                  touched), backward through G, step G.
 * The trainer owns D's trainable flags: gan_step_d unfreezes every layer of
 * D, gan_step_g freezes every layer (clnet_model_set_all_trainable). Losses
 * stay on the device until read. Thread-safety: as the models' context. */
typedef struct gan_params {
    int64_t batch;     /* B, fakes per step (D sees 2B) */
    int64_t noise_dim; /* G's input: (B, noise_dim) */
    float real_label;  /* D's target for real images: 1, or 0.9 for one-sided label smoothing */
    unsigned long long seed; /* the noise */
} gan_params;
#define GAN_PARAMS_DEFAULT                                                                         \
    ((gan_params){ .batch = 64, .noise_dim = DCGAN_NOISE_DIM, .real_label = 1.0f, .seed = 1 })

typedef struct gan_trainer gan_trainer;

/* *out is caller-owned (gan_trainer_destroy); g and d are borrowed and must
 * outlive it. CLNET_ERR_SHAPE if D's output is not one value per sample (D's
 * first forward checks that its input is G's output), CLNET_ERR_INVALID_ARG
 * for batch or noise_dim < 1 or real_label outside [0, 1]; the step
 * functions give CLNET_ERR_INVALID_ARG before the first gan_generate. The
 * trainer's own checks return a status only (it is not the library and
 * records no message); failures inside library calls carry the context's. */
clnet_status gan_trainer_create(clnet_context *ctx, clnet_model *g, clnet_model *d,
                                const gan_params *p, gan_trainer **out);
void gan_trainer_destroy(gan_trainer *t);

/* New noise (stream: the iteration counter), then G forward in training
 * mode. *fakes (optional) is borrowed, valid until G's next forward. */
clnet_status gan_generate(gan_trainer *t, const clnet_tensor **fakes);
/* The noise batches drawn so far: the next gan_generate's Philox stream.
 * Saved and restored to resume a run where it stopped. */
uint64_t gan_noise_draws(const gan_trainer *t);
void gan_set_noise_draws(gan_trainer *t, uint64_t draws);
/* G forward on the current noise (no new draw): for gradient checks. */
clnet_status gan_forward_g(gan_trainer *t, const clnet_tensor **fakes);
/* One D step on real (B, image...) and the last fakes. */
clnet_status gan_step_d(gan_trainer *t, const clnet_tensor *real);
/* G's loss and gradients through the frozen D, without a step. */
clnet_status gan_backward_g(gan_trainer *t);
/* gan_backward_g, then one G step. */
clnet_status gan_step_g(gan_trainer *t);
/* The last losses (D: the mean over real and fake, times 2, as real + fake
 * losses are usually reported; G: mean), read from the device (waits). Either
 * pointer may be NULL. */
clnet_status gan_losses(gan_trainer *t, double *d_loss, double *g_loss);

/* ---- Classifier-based score ------------------------------------------------------- */

/* From class probabilities p (n rows of `classes`, each summing to ~1):
 * score = exp(mean over x of KL(p(y|x) || p(y))), p(y) the mean row (the
 * "inception score" with a given classifier), and share[c] the fraction of
 * rows whose argmax is c. Returns the score; 0 terms (p = 0) add nothing.
 * share has `classes` entries (may be NULL). */
double classifier_score(const float *p, int64_t n, int classes, double *share);

#endif
