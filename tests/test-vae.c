/* clnet tests — the VAE loop of tools/vae.c on the reference architecture:
 * the gradient of (BCE summed over pixels + KL), eps held fixed, passes a
 * directional finite-difference check for every parameter of the encoder
 * and the decoder (a 3% wrong gradient fails all of them), a fixed-seed
 * step is deterministic, and the trainer refuses bad arguments. The
 * primitives are checked in test-merge.c (sampling, KL), test-conv.c and
 * test-loss.c; the layers in test-nn.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/nn.h"
#include "harness.h"
#include "models.h"
#include "vae.h"

enum { B = 2, PIXELS = 28 * 28 };

static void compile_adam(clnet_context *ctx, clnet_model *m)
{
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.loss = CLNET_LOSS_NONE;
    CK_OK(ctx, clnet_model_compile(m, &cp));
}

typedef struct vae_fixture {
    clnet_context *ctx;
    clnet_model *enc, *dec;
    vae_trainer *t;
    clnet_tensor *x;
    float eps[B * VAE_LATENT];
} vae_fixture;

/* The reference encoder and decoder, B images of uniform [0, 1] pixels
 * (the BCE target) and fixed eps. */
static void fixture_make(vae_fixture *f, uint64_t seed)
{
    f->ctx = test_context();
    CK_OK(f->ctx, build_vae_encoder(f->ctx, seed, &f->enc));
    CK_OK(f->ctx, build_vae_decoder(f->ctx, seed + 1, &f->dec));
    compile_adam(f->ctx, f->enc);
    compile_adam(f->ctx, f->dec);
    CK_OK(f->ctx, vae_trainer_create(f->ctx, f->enc, f->dec, B, seed, &f->t));
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
    /* Away from 0 so that the log-variance term matters: |eps| in [0.3, 1.3]. */
    fill_uniform(f->eps, B * VAE_LATENT, -1, 1, &s);
    for (int i = 0; i < B * VAE_LATENT; i++)
        f->eps[i] = f->eps[i] < 0 ? f->eps[i] - 0.3f : f->eps[i] + 0.3f;
    CK_OK(f->ctx, clnet_tensor_create(f->ctx, CLNET_F32, 4, xs, &f->x));
    CK_OK(f->ctx, clnet_tensor_upload(f->x, x, B * PIXELS * sizeof *x));
    free(x);
}

static void fixture_free(vae_fixture *f)
{
    clnet_tensor_destroy(f->x);
    vae_trainer_destroy(f->t);
    clnet_model_destroy(f->enc);
    clnet_model_destroy(f->dec);
    clnet_context_destroy(f->ctx);
}

/* The loss at eps in float64 on the host, from the device's encoder output
 * and decoder logits (inference mode: no dropout or batch norm here, so the
 * same function as training): the float32 loss's own rounding (~1e-3
 * nats, 20 times a small directional difference) stays out of the finite
 * differences. */
static double loss_f64(vae_fixture *f)
{
    const clnet_tensor *h, *logits;
    float hv[B * 2 * VAE_LATENT], zv[B * VAE_LATENT], *lg = malloc(B * PIXELS * sizeof *lg),
                                                      *x = malloc(B * PIXELS * sizeof *x);
    ck_assert(lg && x);
    int64_t zs[2] = { B, VAE_LATENT };
    clnet_tensor *z;
    CK_OK(f->ctx, clnet_model_forward(f->enc, f->x, 0, &h, NULL));
    download(f->ctx, h, hv, B * 2 * VAE_LATENT);
    double kl = 0, rec = 0;
    for (int r = 0; r < B; r++)
        for (int j = 0; j < VAE_LATENT; j++) {
            double m = hv[r * 2 * VAE_LATENT + j], lv = hv[r * 2 * VAE_LATENT + VAE_LATENT + j];
            zv[r * VAE_LATENT + j] = (float)(m + exp(lv / 2) * f->eps[r * VAE_LATENT + j]);
            kl += -0.5 * (1 + lv - m * m - exp(lv));
        }
    CK_OK(f->ctx, clnet_tensor_create(f->ctx, CLNET_F32, 2, zs, &z));
    CK_OK(f->ctx, clnet_tensor_upload(z, zv, sizeof zv));
    CK_OK(f->ctx, clnet_model_forward(f->dec, z, 0, NULL, &logits));
    download(f->ctx, logits, lg, B * PIXELS);
    download(f->ctx, f->x, x, B * PIXELS);
    for (int i = 0; i < B * PIXELS; i++) {
        double l = lg[i];
        rec += fmax(l, 0) - l * x[i] + log1p(exp(-fabs(l)));
    }
    clnet_tensor_destroy(z);
    free(lg);
    free(x);
    return (rec + kl) / B;
}

/* The trained parameters: layer index and name, encoder then decoder. */
static const struct {
    int dec, layer;
    const char *name;
} params[] = {
    { 0, 0, "kernel" }, { 0, 0, "bias" }, { 0, 1, "kernel" }, { 0, 1, "bias" },
    { 0, 3, "kernel" }, { 0, 3, "bias" }, { 0, 4, "kernel" }, { 0, 4, "bias" },
    { 1, 0, "kernel" }, { 1, 0, "bias" }, { 1, 2, "kernel" }, { 1, 2, "bias" },
    { 1, 3, "kernel" }, { 1, 3, "bias" }, { 1, 4, "kernel" }, { 1, 4, "bias" },
};
#define NPARAMS ((int)(sizeof params / sizeof params[0]))
enum { ENCODER = 1, DECODER = 2 };

/* For every trained parameter (of the tensors in `which`), <dL/dθ, u> from
 * one backward against (L(θ + hu) - L(θ - hu)) / 2h, L = loss_f64 (the
 * batch mean of BCE summed over 784 pixels + KL, ~550 nats) with eps fixed,
 * u = dL/dθ / |dL/dθ|_inf + uniform noise in [-0.5, 0.5]. h = 4.9e-3 / 64 *
 * max(1, |θ|_inf), retried at h/2: the relus that feed the 2-d bottleneck
 * make the encoder's differences cross kinks (at 4.9e-3 they were up to 50%
 * off, converging as h shrinks; at h/64 within 0.6%). Pass: |numeric -
 * analytic| <= 2e-8 / h + 1e-2 |analytic|; the float64 loss of float32
 * logits varied by ~1e-8 between nearby points (2e-3 at h = 5e-6).
 * analytic is scaled by `perturb` (the negative control passes 1.03).
 * Returns the failures. */
static int vae_directional(vae_fixture *f, double perturb, int which)
{
    float *grads[NPARAMS];
    size_t len[NPARAMS];
    double rec, kl;
    CK_OK(f->ctx, vae_backward(f->t, f->x, f->eps));
    CK_OK(f->ctx, vae_losses(f->t, &rec, &kl));
    double l0 = loss_f64(f);
    /* The trainer's float32 loss is this one's. */
    ck_assert_msg(fabs(rec + kl - l0) <= 1e-5 * l0, "trainer's loss %.9g, float64 %.9g", rec + kl,
                  l0);
    /* Every gradient now: each loss evaluation below overwrites them. */
    for (int i = 0; i < NPARAMS; i++) {
        clnet_model *m = params[i].dec ? f->dec : f->enc;
        clnet_tensor *v;
        CK_OK(f->ctx, clnet_model_param(m, params[i].layer, params[i].name, &v));
        len[i] = clnet_tensor_numel(v);
        grads[i] = malloc(len[i] * sizeof *grads[i]);
        ck_assert_ptr_nonnull(grads[i]);
        CK_OK(f->ctx, clnet_model_get_grad(m, params[i].layer, params[i].name, grads[i], len[i]));
    }
    int failures = 0;
    uint64_t seed = 17;
    for (int i = 0; i < NPARAMS; i++) {
        clnet_model *m = params[i].dec ? f->dec : f->enc;
        clnet_tensor *v;
        if (!(which & (params[i].dec ? DECODER : ENCODER)))
            continue;
        CK_OK(f->ctx, clnet_model_param(m, params[i].layer, params[i].name, &v));
        size_t n = len[i];
        float *v0 = malloc(n * sizeof *v0), *u = malloc(n * sizeof *u),
              *vp = malloc(n * sizeof *vp);
        ck_assert(v0 && u && vp);
        download(f->ctx, v, v0, n);
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
        free(v0);
        free(u);
        free(vp);
    }
    for (int i = 0; i < NPARAMS; i++)
        free(grads[i]);
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

/* Negative control: a gradient 3% off fails every parameter's check, the
 * encoder's too (whose differences converge only at h/64). */
START_TEST(directional_check_catches_a_wrong_vae_gradient)
{
    vae_fixture f;
    fixture_make(&f, 5);
    ck_assert_int_eq(vae_directional(&f, 1.03, ENCODER | DECODER), NPARAMS);
    fixture_free(&f);
}
END_TEST

/* Two trainers from the same seed take the same two steps (new noise each)
 * to the same bits. */
START_TEST(vae_steps_are_deterministic)
{
    float got[2][16];
    double loss[2][2];
    for (int run = 0; run < 2; run++) {
        vae_fixture f;
        fixture_make(&f, 9);
        for (int s = 0; s < 2; s++)
            CK_OK(f.ctx, vae_step(f.t, f.x));
        CK_OK(f.ctx, vae_losses(f.t, &loss[run][0], &loss[run][1]));
        ck_assert_uint_eq(vae_steps(f.t), 2);
        CK_OK(f.ctx, clnet_model_get_param(f.dec, 4, "bias", got[run], 1));
        CK_OK(f.ctx, clnet_model_get_param(f.enc, 4, "bias", got[run] + 1, 4));
        fixture_free(&f);
    }
    ck_assert(memcmp(got[0], got[1], 5 * sizeof got[0][0]) == 0);
    ck_assert(loss[0][0] == loss[1][0] && loss[0][1] == loss[1][1]);
    ck_assert(isfinite(loss[0][0]) && loss[0][1] >= 0);
}
END_TEST

START_TEST(vae_trainer_refuses_bad_arguments)
{
    clnet_context *ctx = test_context();
    clnet_model *enc, *dec, *cnn;
    vae_trainer *t = (vae_trainer *)&t;
    CK_OK(ctx, build_vae_encoder(ctx, 1, &enc));
    CK_OK(ctx, build_vae_decoder(ctx, 2, &dec));
    CK_OK(ctx, build_cnn(ctx, 3, &cnn));
    ck_assert_int_eq(vae_trainer_create(ctx, enc, dec, 0, 1, &t), CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(vae_trainer_create(ctx, cnn, dec, 4, 1, &t), CLNET_ERR_SHAPE);
    ck_assert_int_eq(vae_trainer_create(ctx, enc, enc, 4, 1, &t), CLNET_ERR_SHAPE);
    compile_adam(ctx, enc);
    compile_adam(ctx, dec);
    CK_OK(ctx, vae_trainer_create(ctx, enc, dec, 2, 1, &t));
    /* More rows than the trainer's batch. */
    int64_t xs[4] = { 3, 1, 28, 28 };
    clnet_tensor *x;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x));
    CK_OK(ctx, clnet_tensor_fill(x, 0.5));
    ck_assert_int_eq(vae_backward(t, x, NULL), CLNET_ERR_SHAPE);
    ck_assert_int_eq(vae_evaluate(t, x, 1, 0), CLNET_ERR_SHAPE);
    clnet_tensor_destroy(x);
    vae_trainer_destroy(t);
    vae_trainer_destroy(NULL);
    clnet_model_destroy(enc);
    clnet_model_destroy(dec);
    clnet_model_destroy(cnn);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_vae(void)
{
    Suite *s = suite_create("vae");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, vae_gradient_matches_finite_differences);
    tcase_add_test(tc, directional_check_catches_a_wrong_vae_gradient);
    tcase_add_test(tc, vae_steps_are_deterministic);
    tcase_add_test(tc, vae_trainer_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
