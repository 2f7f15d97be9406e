/* clnet tests — the reference VAE of tools/vae.c, one graph model: the
 * gradient of its compiled loss (BCE summed over pixels + the Sampling
 * layer's KL), the noise held (clnet_model_hold_noise), passes a
 * directional finite-difference check for every parameter (a 5% wrong
 * gradient fails all of them), a fixed-seed step is deterministic, and the
 * decoder-only model decodes as the whole model once its weights are
 * copied. The Sampling layer is checked in test-graph.c, its primitives in
 * test-merge.c; the layers in test-nn.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/nn.h"
#include "harness.h"
#include "vae.h"

enum { B = 2, PIXELS = 28 * 28 };

typedef struct vae_fixture {
    clnet_context *ctx;
    vae *v;
    clnet_tensor *x;
} vae_fixture;

/* The reference VAE (Adam 1e-3) and B images of [0, 1] pixels (the BCE
 * target). */
static void fixture_make(vae_fixture *f, uint64_t seed)
{
    f->ctx = test_context();
    CK_OK(f->ctx, vae_create(f->ctx, seed, 1e-3f, &f->v));
    int64_t xs[4] = { B, 1, 28, 28 };
    float *x = malloc(B * PIXELS * sizeof *x);
    ck_assert_ptr_nonnull(x);
    uint64_t s = seed * 7 + 1;
    /* Like Fashion-MNIST: a dark background (BCE's gradient there is
     * sigmoid(logit), ~0.5 at the start) and a bright object. */
    fill_uniform(x, B * PIXELS, 0, 1, &s);
    for (int i = 0; i < B * PIXELS; i++) {
        int r = i % PIXELS / 28, c = i % 28;
        x[i] = r >= 6 && r < 22 && c >= 8 && c < 20 ? 0.6f + 0.4f * x[i] : 0.05f * x[i];
    }
    CK_OK(f->ctx, clnet_tensor_create(f->ctx, CLNET_F32, 4, xs, &f->x));
    CK_OK(f->ctx, clnet_tensor_upload(f->x, x, B * PIXELS * sizeof *x));
    free(x);
}

static void fixture_free(vae_fixture *f)
{
    clnet_tensor_destroy(f->x);
    vae_destroy(f->v);
    clnet_context_destroy(f->ctx);
}

/* The loss with the held noise in float64 on the host, from the device's
 * heads and logits of a training forward (the held eps; no dropout or batch
 * norm here): the float32 loss's own rounding (~1e-3 nats, 20 times a
 * small directional difference) stays out of the finite differences. */
static double loss_f64(vae_fixture *f)
{
    const clnet_tensor *logits, *mt, *lt;
    float mv[B * VAE_LATENT], lv[B * VAE_LATENT], *lg = malloc(B * PIXELS * sizeof *lg),
                                                  *x = malloc(B * PIXELS * sizeof *x);
    ck_assert(lg && x);
    CK_OK(f->ctx, clnet_model_forward(f->v->model, f->x, 1, NULL, &logits));
    download(f->ctx, logits, lg, B * PIXELS);
    CK_OK(f->ctx, clnet_model_node_tensor(f->v->model, f->v->mean, &mt));
    CK_OK(f->ctx, clnet_model_node_tensor(f->v->model, f->v->logvar, &lt));
    download(f->ctx, mt, mv, B * VAE_LATENT);
    download(f->ctx, lt, lv, B * VAE_LATENT);
    download(f->ctx, f->x, x, B * PIXELS);
    double kl = 0, rec = 0;
    for (int i = 0; i < B * VAE_LATENT; i++)
        kl += -0.5 * (1 + (double)lv[i] - (double)mv[i] * mv[i] - exp((double)lv[i]));
    for (int i = 0; i < B * PIXELS; i++) {
        double l = lg[i];
        rec += fmax(l, 0) - l * x[i] + log1p(exp(-fabs(l)));
    }
    free(lg);
    free(x);
    return (rec + kl) / B;
}

/* The trained parameters: encoder or decoder, layer index (tools/vae.h's
 * numbering: 2 is the Flatten, 6 the Sampling, 8 the Reshape) and name. */
static const struct {
    int dec, layer;
    const char *name;
} params[] = {
    { 0, 0, "kernel" },  { 0, 0, "bias" },  { 0, 1, "kernel" },  { 0, 1, "bias" },
    { 0, 3, "kernel" },  { 0, 3, "bias" },  { 0, 4, "kernel" },  { 0, 4, "bias" },
    { 0, 5, "kernel" },  { 0, 5, "bias" },  { 1, 7, "kernel" },  { 1, 7, "bias" },
    { 1, 9, "kernel" },  { 1, 9, "bias" },  { 1, 10, "kernel" }, { 1, 10, "bias" },
    { 1, 11, "kernel" }, { 1, 11, "bias" },
};
#define NPARAMS ((int)(sizeof params / sizeof params[0]))
enum { ENCODER = 1, DECODER = 2 };

/* For every trained parameter (of the parts in `which`), <dL/dθ, u> from one
 * clnet_model_train_on_batch (the compiled loss's gradient; its step is
 * undone) against (L(θ + hu) - L(θ - hu)) / 2h, L = loss_f64 (the batch
 * mean of BCE summed over 784 pixels + KL, ~550 nats) with the noise held,
 * u = dL/dθ / |dL/dθ|_inf + uniform noise in [-0.5, 0.5]. h = 4.9e-3 / 64 *
 * max(1, |θ|_inf), retried at h/2: the relus that feed the 2-d bottleneck
 * make the encoder's differences cross kinks (at 4.9e-3 they were up to 50%
 * off, converging as h shrinks; at h/64 within 0.6%). Pass: |numeric -
 * analytic| <= 2e-8 / h + 1e-2 |analytic|; the float64 loss of float32
 * logits varied by ~1e-8 between nearby points (2e-3 at h = 5e-6).
 * analytic is scaled by `perturb` (the negative control passes 1.05).
 * Returns the failures. */
static int vae_directional(vae_fixture *f, double perturb, int which)
{
    clnet_model *m = f->v->model;
    float *grads[NPARAMS], *start[NPARAMS];
    size_t len[NPARAMS];
    double loss;
    CK_OK(f->ctx, clnet_model_hold_noise(m, 1));
    for (int i = 0; i < NPARAMS; i++) {
        clnet_tensor *v;
        CK_OK(f->ctx, clnet_model_param(m, params[i].layer, params[i].name, &v));
        len[i] = clnet_tensor_numel(v);
        grads[i] = malloc(len[i] * sizeof *grads[i]);
        start[i] = malloc(len[i] * sizeof *start[i]);
        ck_assert(grads[i] && start[i]);
        download(f->ctx, v, start[i], len[i]);
    }
    /* The first forward draws the noise that every later one reuses. */
    CK_OK(f->ctx, clnet_model_train_on_batch(m, f->x, f->x, &loss, NULL));
    for (int i = 0; i < NPARAMS; i++) {
        clnet_tensor *v;
        CK_OK(f->ctx, clnet_model_get_grad(m, params[i].layer, params[i].name, grads[i], len[i]));
        CK_OK(f->ctx, clnet_model_param(m, params[i].layer, params[i].name, &v));
        CK_OK(f->ctx, clnet_tensor_upload(v, start[i], len[i] * sizeof *start[i]));
    }
    double l0 = loss_f64(f);
    /* The compiled float32 loss is this one's. */
    ck_assert_msg(fabs(loss - l0) <= 1e-5 * l0, "train_on_batch's loss %.9g, float64 %.9g", loss,
                  l0);
    int failures = 0;
    uint64_t seed = 17;
    for (int i = 0; i < NPARAMS; i++) {
        clnet_tensor *v;
        if (!(which & (params[i].dec ? DECODER : ENCODER)))
            continue;
        CK_OK(f->ctx, clnet_model_param(m, params[i].layer, params[i].name, &v));
        size_t n = len[i];
        float *v0 = start[i], *u = malloc(n * sizeof *u), *vp = malloc(n * sizeof *vp);
        ck_assert(u && vp);
        /* Along the gradient plus noise: a signal well above the loss's
         * rounding for every tensor, and any wrong component still counts. */
        double ginf = 0;
        for (size_t e = 0; e < n; e++)
            ginf = fmax(ginf, fabs(grads[i][e]));
        fill_uniform(u, n, -0.5f, 0.5f, &seed);
        for (size_t e = 0; e < n; e++)
            u[e] += ginf > 0 ? (float)(grads[i][e] / ginf) : 0.0f;
        double an = 0, inf = 0, num = 0;
        for (size_t e = 0; e < n; e++) {
            an += (double)grads[i][e] * u[e];
            inf = fmax(inf, fabs(v0[e]));
        }
        an *= perturb;
        int ok = 0;
        double h = 4.9e-3 / 64 * fmax(1.0, inf);
        for (int attempt = 0; attempt < 2 && !ok; attempt++, h /= 2) {
            double l[2];
            for (int side = 0; side < 2; side++) {
                for (size_t e = 0; e < n; e++)
                    vp[e] = (float)(v0[e] + (side ? -h : h) * u[e]);
                CK_OK(f->ctx, clnet_tensor_upload(v, vp, n * sizeof *vp));
                l[side] = loss_f64(f);
            }
            CK_OK(f->ctx, clnet_tensor_upload(v, v0, n * sizeof *v0));
            num = (l[0] - l[1]) / (2 * h);
            ok = fabs(num - an) <= 2e-8 / h + 1e-2 * fabs(an);
        }
        if (!ok || perturb == 1.0)
            fprintf(stderr,
                    "vae gradient: %s layer %d %s: analytic %.6g, finite difference %.6g%s\n",
                    params[i].dec ? "decoder" : "encoder", params[i].layer, params[i].name, an, num,
                    ok ? "" : " FAIL");
        failures += !ok;
        free(u);
        free(vp);
    }
    for (int i = 0; i < NPARAMS; i++) {
        free(grads[i]);
        free(start[i]);
    }
    return failures;
}

START_TEST(vae_gradient_matches_finite_differences)
{
    vae_fixture f;
    fixture_make(&f, 5);
    ck_assert_int_eq(vae_directional(&f, 1.0, ENCODER | DECODER), 0);
    fixture_free(&f);
}
END_TEST

/* Negative control: a gradient 5% off fails every parameter's check, the
 * encoder's too (whose differences converge only at h/64). 3% is not
 * enough for the log-variance head's kernel: its directional derivative is
 * ~0.03 nats, and 3% of it is within the bound at h/2. */
START_TEST(directional_check_catches_a_wrong_vae_gradient)
{
    vae_fixture f;
    fixture_make(&f, 5);
    ck_assert_int_eq(vae_directional(&f, 1.05, ENCODER | DECODER), NPARAMS);
    fixture_free(&f);
}
END_TEST

/* Two models from the same seed take the same two steps (new noise each)
 * to the same bits. */
START_TEST(vae_steps_are_deterministic)
{
    float got[2][5];
    double loss[2][2];
    for (int run = 0; run < 2; run++) {
        vae_fixture f;
        fixture_make(&f, 9);
        for (int s = 0; s < 2; s++)
            CK_OK(f.ctx, clnet_model_train_on_batch(f.v->model, f.x, f.x, &loss[run][0], NULL));
        CK_OK(f.ctx, clnet_model_extra_loss(f.v->model, &loss[run][1]));
        CK_OK(f.ctx, clnet_model_get_param(f.v->model, 11, "bias", got[run], 1));
        CK_OK(f.ctx, clnet_model_get_param(f.v->model, VAE_MEAN_LAYER, "bias", got[run] + 1, 2));
        CK_OK(f.ctx, clnet_model_get_param(f.v->model, VAE_LOGVAR_LAYER, "bias", got[run] + 3, 2));
        fixture_free(&f);
    }
    ck_assert(memcmp(got[0], got[1], sizeof got[0]) == 0);
    ck_assert(loss[0][0] == loss[1][0] && loss[0][1] == loss[1][1]);
    ck_assert(isfinite(loss[0][0]) && loss[0][1] > 0 && loss[0][1] < loss[0][0]);
}
END_TEST

/* After a step and vae_sync_decoder, the decoder-only model maps the whole
 * model's z (a training forward's, new noise) to the whole model's images;
 * and vae_encode gives the mean head's values. */
START_TEST(decoder_copy_decodes_as_the_whole_model)
{
    vae_fixture f;
    fixture_make(&f, 3);
    clnet_model *m = f.v->model;
    CK_OK(f.ctx, clnet_model_train_on_batch(m, f.x, f.x, NULL, NULL));
    CK_OK(f.ctx, vae_sync_decoder(f.v));
    const clnet_tensor *y, *zt, *mt;
    float z[B * VAE_LATENT], mean[B * VAE_LATENT], enc[B * VAE_LATENT];
    float *want = malloc(B * PIXELS * sizeof *want), *got = malloc(B * PIXELS * sizeof *got),
          *x = malloc(B * PIXELS * sizeof *x);
    ck_assert(want && got && x);
    CK_OK(f.ctx, clnet_model_forward(m, f.x, 1, &y, NULL));
    download(f.ctx, y, want, B * PIXELS);
    CK_OK(f.ctx, clnet_model_node_tensor(m, f.v->z, &zt));
    download(f.ctx, zt, z, B * VAE_LATENT);
    CK_OK(f.ctx, clnet_model_node_tensor(m, f.v->mean, &mt));
    download(f.ctx, mt, mean, B * VAE_LATENT);
    CK_OK(f.ctx, vae_decode(f.v, z, B, got));
    for (int i = 0; i < B * PIXELS; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f, "pixel %d: decoder %.9g, model %.9g", i,
                      got[i], want[i]);
    /* Encoding one image at a time (batch 1) gives the heads' means too. */
    download(f.ctx, f.x, x, B * PIXELS);
    CK_OK(f.ctx, vae_encode(f.v, x, B, 1, enc));
    for (int i = 0; i < B * VAE_LATENT; i++)
        ck_assert_msg(fabsf(enc[i] - mean[i]) <= 1e-5f * fmaxf(1.0f, fabsf(mean[i])),
                      "mean %d: encode %.9g, forward %.9g", i, enc[i], mean[i]);
    free(want);
    free(got);
    free(x);
    fixture_free(&f);
}
END_TEST

Suite *suite_vae(void)
{
    Suite *s = suite_create("vae");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, vae_gradient_matches_finite_differences);
    tcase_add_test(tc, directional_check_catches_a_wrong_vae_gradient);
    tcase_add_test(tc, vae_steps_are_deterministic);
    tcase_add_test(tc, decoder_copy_decodes_as_the_whole_model);
    suite_add_tcase(s, tc);
    return s;
}
