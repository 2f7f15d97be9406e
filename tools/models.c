/* clnet tools — the reference models (docs/design.md), built with the public
 * API; shared by clnet-train and clnet-bench. Also the GAN loop and the
 * classifier score (docs/gan.md), which tests/test-gan.c runs too. */
#include "models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reference CNN (docs/design.md). */
clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out)
{
    int64_t in[3] = { 1, 28, 28 };
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 3, in, seed, &m);
    if (st)
        return st;
    clnet_conv2d_layer_params c1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, c2;
    c1.filters = 32;
    c1.activation = CLNET_ACT_RELU;
    c2 = c1;
    c2.filters = 64;
    clnet_pool2d_layer_params pool = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, d2 = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 64;
    d1.activation = CLNET_ACT_RELU;
    d2.units = 10;
    d2.activation = CLNET_ACT_SOFTMAX;
    if ((st = clnet_model_add_conv2d(m, &c1)) || (st = clnet_model_add_maxpool2d(m, &pool)) ||
        (st = clnet_model_add_conv2d(m, &c2)) || (st = clnet_model_add_maxpool2d(m, &pool)) ||
        (st = clnet_model_add_flatten(m)) || (st = clnet_model_add_dense(m, &d1)) ||
        (st = clnet_model_add_dense(m, &d2))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

/* The reference recurrent stacks (docs/design.md): three layers of 64 units on
 * (28 steps, 28 features), the first two returning sequences, then
 * Dense(10, softmax). cell: "lstm" or "rnn" (the simple tanh RNN); another
 * name gives CLNET_ERR_INVALID_ARG (nothing created, no message on ctx). */
clnet_status build_rnn_stack(clnet_context *ctx, const char *cell, unsigned long long seed,
                             clnet_model **out)
{
    *out = NULL;
    int lstm = !strcmp(cell, "lstm");
    if (!lstm && strcmp(cell, "rnn"))
        return CLNET_ERR_INVALID_ARG;
    int64_t in[2] = { 28, 28 };
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 2, in, seed, &m);
    if (st)
        return st;
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 64;
    for (int i = 0; i < 3 && !st; i++) {
        p.return_sequences = i < 2;
        st = lstm ? clnet_model_add_lstm(m, &p) : clnet_model_add_simple_rnn(m, &p);
    }
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    if (!st)
        st = clnet_model_add_dense(m, &d);
    if (st) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

/* ---- DCGAN ------------------------------------------------------------------------- */

clnet_status build_dcgan_generator(clnet_context *ctx, unsigned long long seed, clnet_model **out)
{
    int64_t in[1] = { DCGAN_NOISE_DIM }, grid[3] = { 128, 7, 7 };
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 1, in, seed, &m);
    if (st)
        return st;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 128 * 7 * 7;
    d.use_bias = 0; /* batch norm follows: a bias would cancel */
    clnet_conv2d_layer_params t1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, t2;
    t1.filters = 64;
    t1.kernel_h = t1.kernel_w = 5;
    t1.stride_h = t1.stride_w = 2;
    t1.padding = CLNET_PADDING_SAME;
    t1.use_bias = 0;
    t2 = t1;
    t2.filters = 1;
    t2.use_bias = 1;
    t2.activation = CLNET_ACT_TANH;
    const float momentum = 0.1f, eps = 1e-3f;
    if ((st = clnet_model_add_dense(m, &d)) || (st = clnet_model_add_reshape(m, 3, grid)) ||
        (st = clnet_model_add_batchnorm(
             m, &(clnet_batchnorm_params){ .eps = eps, .momentum = momentum })) ||
        (st = clnet_model_add_activation(m, CLNET_ACT_LEAKY_RELU, 0.2f)) ||
        (st = clnet_model_add_conv2d_transpose(m, &t1)) ||
        (st = clnet_model_add_batchnorm(
             m, &(clnet_batchnorm_params){ .eps = eps, .momentum = momentum })) ||
        (st = clnet_model_add_activation(m, CLNET_ACT_LEAKY_RELU, 0.2f)) ||
        (st = clnet_model_add_conv2d_transpose(m, &t2))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

clnet_status build_dcgan_discriminator(clnet_context *ctx, unsigned long long seed,
                                       clnet_model **out)
{
    int64_t in[3] = { 1, 28, 28 };
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 3, in, seed, &m);
    if (st)
        return st;
    clnet_conv2d_layer_params c1 = CLNET_CONV2D_LAYER_PARAMS_DEFAULT, c2;
    c1.filters = 64;
    c1.kernel_h = c1.kernel_w = 5;
    c1.stride_h = c1.stride_w = 2;
    c1.padding = CLNET_PADDING_SAME;
    c1.activation = CLNET_ACT_LEAKY_RELU;
    c1.alpha = 0.2f;
    c2 = c1;
    c2.filters = 128;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 1;
    d.activation = CLNET_ACT_SIGMOID;
    if ((st = clnet_model_add_conv2d(m, &c1)) || (st = clnet_model_add_dropout(m, 0.3f)) ||
        (st = clnet_model_add_conv2d(m, &c2)) || (st = clnet_model_add_dropout(m, 0.3f)) ||
        (st = clnet_model_add_flatten(m)) || (st = clnet_model_add_dense(m, &d))) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}

/* ---- The GAN loop ------------------------------------------------------------------- */

struct gan_trainer {
    clnet_model *g, *d; /* borrowed */
    clnet_context *ctx;
    gan_params p;
    uint64_t draws;                       /* noise batches drawn: the Philox stream */
    clnet_tensor *z;                      /* (B, noise_dim) */
    clnet_tensor *xd, *xd_real, *xd_fake; /* D's batch (2B, ...) and its two halves */
    clnet_tensor *yd, *yg;                /* targets: [real_label; 0] (2B, 1), ones (B, 1) */
    clnet_tensor *dl_d, *dl_g;            /* loss gradients at D's logits */
    clnet_tensor *loss_d, *loss_g;        /* one element each */
    const clnet_tensor *fakes;            /* G's output of the last forward (borrowed) */
};

void gan_trainer_destroy(gan_trainer *t)
{
    if (!t)
        return;
    clnet_tensor *all[] = { t->z,  t->xd,   t->xd_real, t->xd_fake, t->yd,
                            t->yg, t->dl_d, t->dl_g,    t->loss_d,  t->loss_g };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    free(t);
}

/* Rows [start, start + n) of t set to v. */
static clnet_status fill_rows(clnet_tensor *t, int64_t start, int64_t n, double v)
{
    clnet_tensor *rows;
    clnet_status st = clnet_tensor_slice(t, start, n, &rows);
    if (!st)
        st = clnet_tensor_fill(rows, v);
    clnet_tensor_destroy(rows);
    return st;
}

/* The trainer's buffers for G's output shape img (ind dims). */
static clnet_status gan_alloc(gan_trainer *t, int ind, const int64_t *img)
{
    int64_t b = t->p.batch, zs[2] = { b, t->p.noise_dim }, yd[2] = { 2 * b, 1 }, yg[2] = { b, 1 };
    int64_t xs[CLNET_MAX_DIMS], one = 1;
    xs[0] = 2 * b;
    memcpy(xs + 1, img, (size_t)ind * sizeof *img);
    clnet_context *ctx = t->ctx;
    clnet_status st;
    if ((st = clnet_tensor_create(ctx, CLNET_F32, 2, zs, &t->z)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, ind + 1, xs, &t->xd)) ||
        (st = clnet_tensor_slice(t->xd, 0, b, &t->xd_real)) ||
        (st = clnet_tensor_slice(t->xd, b, b, &t->xd_fake)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 2, yd, &t->yd)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 2, yd, &t->dl_d)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 2, yg, &t->yg)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 2, yg, &t->dl_g)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &t->loss_d)) ||
        (st = clnet_tensor_create(ctx, CLNET_F32, 0, &one, &t->loss_g)))
        return st;
    if ((st = fill_rows(t->yd, 0, b, t->p.real_label)) || (st = fill_rows(t->yd, b, b, 0.0)))
        return st;
    return clnet_tensor_fill(t->yg, 1.0);
}

clnet_status gan_trainer_create(clnet_context *ctx, clnet_model *g, clnet_model *d,
                                const gan_params *p, gan_trainer **out)
{
    *out = NULL;
    /* G's output is D's input (D's forward checks it); D gives one value
     * per sample. */
    int64_t img[CLNET_MAX_DIMS], dout[CLNET_MAX_DIMS];
    int ind = clnet_model_output_shape(g, img);
    if (ind < 1 || clnet_model_output_shape(d, dout) != 1 || dout[0] != 1)
        return CLNET_ERR_SHAPE;
    if (p->batch < 1 || p->noise_dim < 1 || !(p->real_label >= 0.0f && p->real_label <= 1.0f))
        return CLNET_ERR_INVALID_ARG;
    gan_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return CLNET_ERR_HOST_MEMORY;
    t->g = g;
    t->d = d;
    t->ctx = ctx;
    t->p = *p;
    clnet_status st = gan_alloc(t, ind, img);
    if (st) {
        gan_trainer_destroy(t);
        return st;
    }
    *out = t;
    return CLNET_OK;
}

clnet_status gan_forward_g(gan_trainer *t, const clnet_tensor **fakes)
{
    clnet_status st = clnet_model_forward(t->g, t->z, 1, &t->fakes, NULL);
    if (!st && fakes)
        *fakes = t->fakes;
    return st;
}

clnet_status gan_generate(gan_trainer *t, const clnet_tensor **fakes)
{
    clnet_status st = clnet_tensor_rand_normal(t->z, t->p.seed, t->draws++, 0.0f, 1.0f);
    return st ? st : gan_forward_g(t, fakes);
}

uint64_t gan_noise_draws(const gan_trainer *t)
{
    return t->draws;
}

void gan_set_noise_draws(gan_trainer *t, uint64_t draws)
{
    t->draws = draws;
}

clnet_status gan_step_d(gan_trainer *t, const clnet_tensor *real)
{
    if (!t->fakes)
        return CLNET_ERR_INVALID_ARG; /* gan_generate first */
    const clnet_tensor *logits;
    clnet_status st;
    if ((st = clnet_model_set_all_trainable(t->d, 1)) ||
        (st = clnet_tensor_copy(real, t->xd_real)) ||
        (st = clnet_tensor_copy(t->fakes, t->xd_fake)) ||
        (st = clnet_model_forward(t->d, t->xd, 1, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, t->yd, t->loss_d, t->dl_d)) ||
        (st = clnet_model_backward(t->d, t->dl_d, NULL)))
        return st;
    return clnet_model_step(t->d);
}

clnet_status gan_backward_g(gan_trainer *t)
{
    if (!t->fakes)
        return CLNET_ERR_INVALID_ARG;
    const clnet_tensor *logits, *dx;
    clnet_status st;
    /* Frozen, D computes only the gradient at its input: no parameter
     * gradients, no optimizer state, no running statistics change. */
    if ((st = clnet_model_set_all_trainable(t->d, 0)) ||
        (st = clnet_model_forward(t->d, t->fakes, 1, NULL, &logits)) ||
        (st = clnet_loss_bce_logits(logits, t->yg, t->loss_g, t->dl_g)) ||
        (st = clnet_model_backward(t->d, t->dl_g, &dx)))
        return st;
    return clnet_model_backward(t->g, dx, NULL);
}

clnet_status gan_step_g(gan_trainer *t)
{
    clnet_status st = gan_backward_g(t);
    return st ? st : clnet_model_step(t->g);
}

clnet_status gan_losses(gan_trainer *t, double *d_loss, double *g_loss)
{
    float v;
    clnet_status st = CLNET_OK;
    if (d_loss && !(st = clnet_tensor_download(t->loss_d, &v, sizeof v)))
        *d_loss = 2.0 * v;
    if (!st && g_loss && !(st = clnet_tensor_download(t->loss_g, &v, sizeof v)))
        *g_loss = v;
    return st;
}

/* ---- Classifier-based score ------------------------------------------------------- */

double classifier_score(const float *p, int64_t n, int classes, double *share)
{
    double *py = calloc((size_t)classes, sizeof *py);
    int64_t *count = calloc((size_t)classes, sizeof *count);
    if (!py || !count || n < 1) {
        free(py);
        free(count);
        return 0.0;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = p + i * classes;
        int best = 0;
        for (int c = 0; c < classes; c++) {
            py[c] += row[c];
            best = row[c] > row[best] ? c : best;
        }
        count[best]++;
    }
    for (int c = 0; c < classes; c++) {
        py[c] /= (double)n;
        if (share)
            share[c] = (double)count[c] / (double)n;
    }
    free(count);
    double kl = 0;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < classes; c++) {
            double q = p[i * classes + c];
            if (q > 0)
                kl += q * (log(q) - log(py[c]));
        }
    free(py);
    return exp(kl / (double)n);
}
