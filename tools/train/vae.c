/* clnet-train vae — the reference VAE on Fashion-MNIST (x / 255): training,
 * the test loss in nats, pictures (prior samples, reconstructions, the latent
 * manifold) and the classifier-based score of decoded prior samples
 * (docs/vae.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../outfile.h"
#include "../vae.h"
#include "train.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, GRID = 8, MANIFOLD = 30, SCORE_N = 1000, EVAL_CHUNK = 100 };

/* Philox streams of the pictures' and the score's prior samples: far from
 * the training steps' streams (0, 1, ...). */
#define GRID_STREAM 0x6772696400000000ull
#define SAMPLE_STREAM 0x73616d7000000000ull

static const char *const class_names[10] = { "T-shirt/top", "Trouser",   "Pullover", "Dress",
                                             "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                             "Bag",         "Ankle boot" };

/* ---- Data --------------------------------------------------------------------------- */

/* The first n images of ds ([0, 1]) on the device, (n, 1, 28, 28). */
static clnet_status upload_images(clnet_context *ctx, const clnet_dataset *ds, int64_t n,
                                  clnet_tensor **out)
{
    int64_t xs[4] = { n, 1, SIDE, SIDE };
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 4, xs, out);
    if (!st && (st = clnet_tensor_upload(*out, ds->images, (size_t)n * PIXELS * sizeof(float)))) {
        clnet_tensor_destroy(*out);
        *out = NULL;
    }
    return st;
}

/* ---- Test loss ------------------------------------------------------------------------ */

/* The mean over the test images of reconstruction + KL, in nats, one z per
 * image: clnet_model_evaluate of the whole model with y = x in chunks of
 * EVAL_CHUNK. Its z noise is the Sampling layer's inference draw (the
 * model's seed, the count 0): the same for every run of one --seed. */
static int test_loss(clnet_context *ctx, vae *v, const clnet_dataset *test, double *loss)
{
    clnet_dataset_view d = { test->images, test->images, (int64_t)test->count };
    if (clnet_model_evaluate(v->model, &d, EVAL_CHUNK, loss, NULL))
        return fail(ctx, "evaluating");
    return 0;
}

/* ---- Pictures --------------------------------------------------------------------------- */

static int write_grid(const char *path, const float *img, int n, int cols)
{
    clnet_png_grid_params p = CLNET_PNG_GRID_PARAMS_DEFAULT;
    p.cols = cols;
    p.lo = 0.0f;
    p.hi = 1.0f;
    char err[1024];
    if (clnet_png_write_grid(path, img, n, SIDE, SIDE, &p, err, sizeof err) == CLNET_OK)
        return 0;
    fprintf(stderr, "clnet-train: %s\n", err);
    return 1;
}

/* n latent points from N(0, I): (seed, stream) through Philox on the device. */
static clnet_status prior(clnet_context *ctx, int64_t n, unsigned long long seed,
                          unsigned long long stream, float *z)
{
    int64_t zs[2] = { n, VAE_LATENT };
    clnet_tensor *t;
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 2, zs, &t);
    if (st)
        return st;
    if (!(st = clnet_tensor_rand_normal(t, seed, stream, 0.0f, 1.0f)))
        st = clnet_tensor_download(t, z, (size_t)(n * VAE_LATENT) * sizeof *z);
    clnet_tensor_destroy(t);
    return st;
}

/* PREFIX-NAME.png (a ".png" at the end of --out is dropped first). */
static void picture_path(const options *o, const char *name, char *buf, size_t size)
{
    const char *out = o->out ? o->out : "vae";
    size_t len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".png"))
        len -= 4;
    snprintf(buf, size, "%.*s-%s.png", (int)len, out, name);
}

static const char *const picture_names[3] = { "samples", "reconstructions", "manifold" };

/* The three pictures: 8x8 decoded prior samples; 32 test images (rows 1, 3,
 * 5, 7) above their reconstructions from z = mean (rows 2, 4, 6, 8); the
 * decoded 30x30 grid over [-1, 1]^2 of the latent plane, z0 growing to the
 * right and z1 upwards (as the Keras example's plot_latent_space). */
static int pictures(clnet_context *ctx, vae *t, const options *o, const clnet_dataset *test)
{
    enum { PAIRS = GRID * GRID / 2, NM = MANIFOLD * MANIFOLD };
    float *img = malloc(NM * PIXELS * sizeof *img), *z = malloc(NM * VAE_LATENT * sizeof *z),
          *x = malloc(GRID * GRID * PIXELS * sizeof *x);
    char path[3][4200];
    int rc = 1;
    if (!img || !z || !x) {
        fprintf(stderr, "clnet-train: out of host memory for the pictures\n");
        goto done;
    }
    for (int i = 0; i < 3; i++)
        picture_path(o, picture_names[i], path[i], sizeof path[i]);
    if (prior(ctx, GRID * GRID, o->seed, GRID_STREAM, z) || vae_decode(t, z, GRID * GRID, img)) {
        rc = fail(ctx, "decoding prior samples");
        goto done;
    }
    if (write_grid(path[0], img, GRID * GRID, GRID))
        goto done;
    if (vae_encode(t, test->images, PAIRS, EVAL_CHUNK, z) || vae_decode(t, z, PAIRS, img)) {
        rc = fail(ctx, "reconstructing test images");
        goto done;
    }
    for (int k = 0; k < PAIRS; k++) {
        int row = k / GRID, col = k % GRID;
        memcpy(x + (size_t)((2 * row) * GRID + col) * PIXELS, test->images + (size_t)k * PIXELS,
               PIXELS * sizeof *x);
        memcpy(x + (size_t)((2 * row + 1) * GRID + col) * PIXELS, img + (size_t)k * PIXELS,
               PIXELS * sizeof *x);
    }
    if (write_grid(path[1], x, GRID * GRID, GRID))
        goto done;
    for (int i = 0; i < MANIFOLD; i++)
        for (int j = 0; j < MANIFOLD; j++) {
            z[(i * MANIFOLD + j) * 2] = -1.0f + 2.0f * (float)j / (MANIFOLD - 1);
            z[(i * MANIFOLD + j) * 2 + 1] = 1.0f - 2.0f * (float)i / (MANIFOLD - 1);
        }
    if (vae_decode(t, z, NM, img)) {
        rc = fail(ctx, "decoding the latent grid");
        goto done;
    }
    if (write_grid(path[2], img, NM, MANIFOLD))
        goto done;
    printf("pictures: %s %s %s\n", path[0], path[1], path[2]);
    rc = 0;
done:
    free(img);
    free(z);
    free(x);
    return rc;
}

/* ---- Score ------------------------------------------------------------------------------- */

static int score(clnet_context *ctx, vae *t, const options *o, const clnet_dataset *test)
{
    int64_t n = SCORE_N < (int64_t)test->count ? SCORE_N : (int64_t)test->count;
    clnet_model *cnn = NULL;
    float *img = malloc((size_t)n * PIXELS * sizeof *img),
          *probs = malloc((size_t)n * 10 * sizeof *probs),
          *z = malloc((size_t)n * VAE_LATENT * sizeof *z);
    double share[2][10], s[2];
    int rc = 1;
    if (!img || !probs || !z) {
        fprintf(stderr, "clnet-train: out of host memory for scoring %lld samples\n", (long long)n);
        goto done;
    }
    if (build_cnn(ctx, 1, &cnn) || clnet_model_load(cnn, o->score)) {
        rc = fail(ctx, "loading the classifier");
        goto done;
    }
    if (prior(ctx, n, o->seed, SAMPLE_STREAM, z) || vae_decode(t, z, n, img)) {
        rc = fail(ctx, "decoding prior samples");
        goto done;
    }
    if (clnet_model_predict(cnn, img, n, 100, probs)) {
        rc = fail(ctx, "classifying");
        goto done;
    }
    s[0] = classifier_score(probs, n, 10, share[0]);
    if (clnet_model_predict(cnn, test->images, n, 100, probs)) {
        rc = fail(ctx, "classifying");
        goto done;
    }
    s[1] = classifier_score(probs, n, 10, share[1]);
    printf("classifier score of %lld images (%s):\n  %-12s %9s %9s\n", (long long)n, o->score,
           "class", "generated", "real");
    double min_share = 1;
    for (int c = 0; c < 10; c++) {
        printf("  %-12s %9.3f %9.3f\n", class_names[c], share[0][c], share[1][c]);
        min_share = share[0][c] < min_share ? share[0][c] : min_share;
    }
    printf("score: generated %.2f real %.2f min-class-share %.3f\n", s[0], s[1], min_share);
    rc = 0;
done:
    clnet_model_destroy(cnn);
    free(img);
    free(probs);
    free(z);
    return rc;
}

/* ---- Training ------------------------------------------------------------------------------ */

/* One epoch over n images in shuffled batches (the last one smaller when B
 * does not divide n, as PyTorch's loader), each one train_on_batch of the
 * whole model with y = x. Losses are read every step (a few bytes; the step
 * is far longer): the total and the Sampling layer's KL term
 * (clnet_model_extra_loss), the reconstruction their difference; *rec and
 * *kl are their image-weighted means over the epoch, as PyTorch's peer
 * reports them. */
static int run_epoch(clnet_context *ctx, vae *t, const clnet_tensor *train, int32_t *ord, int64_t n,
                     const options *o, unsigned long long *state, double *rec, double *kl,
                     double *secs, int64_t *steps)
{
    int64_t b = o->batch_size, is[1] = { b }, bs[4] = { b, 1, SIDE, SIDE };
    clnet_tensor *idx = NULL, *batch = NULL;
    double wsum = 0, rsum = 0, ksum = 0, t0 = now();
    int rc = 1;
    train_shuffle(ord, n, state);
    *steps = (n + b - 1) / b;
    if (clnet_tensor_create(ctx, CLNET_I32, 1, is, &idx) ||
        clnet_tensor_create(ctx, CLNET_F32, 4, bs, &batch))
        goto done;
    int live = !o->quiet && isatty(fileno(stderr));
    for (int64_t s = 0; s < *steps; s++) {
        int64_t k = n - s * b < b ? n - s * b : b;
        clnet_tensor *iv = NULL, *xv = NULL;
        double total = 0, r, l;
        clnet_status st = clnet_tensor_slice(idx, 0, k, &iv);
        if (!st)
            st = clnet_tensor_slice(batch, 0, k, &xv);
        if (!st && !(st = clnet_tensor_upload(iv, ord + s * b, (size_t)k * sizeof *ord)) &&
            !(st = clnet_tensor_gather_rows(train, iv, xv)))
            st = clnet_model_train_on_batch(t->model, xv, xv, &total, NULL);
        clnet_tensor_destroy(iv);
        clnet_tensor_destroy(xv);
        if (st || clnet_model_extra_loss(t->model, &l))
            goto done;
        r = total - l;
        wsum += (double)k;
        rsum += r * (double)k;
        ksum += l * (double)k;
        if (!o->quiet && (s + 1) % (live ? 10 : 100) == 0)
            fprintf(stderr, "%s  %lld/%lld - %.0fs - loss %.4f%s", live ? "\r\033[K" : "",
                    (long long)s + 1, (long long)*steps, now() - t0, (rsum + ksum) / wsum,
                    live ? "" : "\n");
    }
    if (live)
        fprintf(stderr, "\r\033[K");
    *rec = rsum / wsum;
    *kl = ksum / wsum;
    *secs = now() - t0;
    rc = 0;
done:
    if (rc)
        fail(ctx, "training");
    clnet_tensor_destroy(idx);
    clnet_tensor_destroy(batch);
    return rc;
}

static int train(clnet_context *ctx, vae *t, const options *o, const clnet_dataset *data)
{
    int64_t n = o->limit && (size_t)o->limit < data->count ? o->limit : (int64_t)data->count;
    clnet_tensor *x = NULL;
    int32_t *ord = malloc((size_t)n * sizeof *ord);
    int rc = 1;
    if (!ord || upload_images(ctx, data, n, &x)) {
        rc = ord ? fail(ctx, "uploading the training images")
                 : (fprintf(stderr, "clnet-train: out of host memory\n"), 1);
        goto done;
    }
    printf("training on %lld images, batch %d, %d epochs, Adam lr %g\n", (long long)n,
           o->batch_size, o->epochs, o->lr);
    fflush(stdout);
    unsigned long long state = o->seed * 1000003ull;
    for (int e = 1; e <= o->epochs; e++) {
        double rec, kl, secs;
        int64_t steps;
        if (run_epoch(ctx, t, x, ord, n, o, &state, &rec, &kl, &secs, &steps))
            goto done;
        if (o->save && save_weights(ctx, t->model, o->save))
            goto done;
        printf("epoch %d/%d: loss %.4f (reconstruction %.4f, kl %.4f), %.1f s, %.1f ms/step\n", e,
               o->epochs, rec + kl, rec, kl, secs, secs * 1e3 / (double)steps);
        fflush(stdout);
    }
    rc = 0;
done:
    clnet_tensor_destroy(x);
    free(ord);
    return rc;
}

int vae_check_outputs(const options *o)
{
    char path[4200];
    int training = !o->eval_only;
    if (training && o->save && check_output(o, "--save", o->save))
        return 2;
    for (int i = 0; i < 3; i++) {
        picture_path(o, picture_names[i], path, sizeof path);
        if (check_output(o, "--out", path))
            return 2;
    }
    return 0;
}

int train_vae(clnet_context *ctx, const options *o_in)
{
    options opt = *o_in, *o = &opt;
    if (!o->batch_set)
        o->batch_size = 128;
    int training = !o->eval_only;
    if (training && o->epochs == 0) {
        fprintf(stderr, "clnet-train: vae --epochs 0 trains nothing: give --epochs N >= 1, or "
                        "--eval-only with --load FILE\n");
        return 2;
    }
    clnet_dataset *train_set = NULL, *test_set = NULL;
    vae *t = NULL;
    int rc = 1;
    if (load_data(o, &train_set, &test_set))
        return 1;
    if (vae_create(ctx, o->seed, (float)o->lr, &t)) {
        rc = fail(ctx, "building the VAE");
        goto done;
    }
    if (!o->quiet && training)
        clnet_model_summary(t->model, stdout);
    double loss = 0;
    if (o->load && (!in_check("clnet-train", "--load", o->load) ||
                    (clnet_model_load(t->model, o->load) && fail(ctx, "loading weights"))))
        goto done;
    if ((training && train(ctx, t, o, train_set)) ||
        (vae_sync_decoder(t) && fail(ctx, "copying the decoder's weights")) ||
        pictures(ctx, t, o, test_set) || (o->score && score(ctx, t, o, test_set)))
        goto done;
    if (test_loss(ctx, t, test_set, &loss))
        goto done;
    printf("test loss: %.4f\n", loss);
    rc = 0;
done:
    vae_destroy(t);
    clnet_dataset_free(train_set);
    clnet_dataset_free(test_set);
    return rc;
}
