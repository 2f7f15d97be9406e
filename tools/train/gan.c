/* clnet-train gan — the reference DCGAN on Fashion-MNIST scaled to [-1, 1]:
 * training with a sample grid per epoch, sampling from a saved generator, and
 * the classifier-based score of generated against real images (docs/gan.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../outfile.h"
#include "train.h"

enum { GRID = 8, SIDE = 28, PIXELS = SIDE * SIDE, SCORE_N = 1000 };

/* Philox streams of the fixed grid noise and of the scored samples: far from
 * the trainer's, which counts training batches from 0. */
#define GRID_STREAM 0x6772696400000000ull
#define SAMPLE_STREAM 0x73616d7000000000ull

static const char *const class_names[10] = { "T-shirt/top", "Trouser",   "Pullover", "Dress",
                                             "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                             "Bag",         "Ankle boot" };

/* ---- PNG grid ---------------------------------------------------------------------- */

/* Writes n images in [-1, 1] as a grayscale grid of `cols` columns, one pixel
 * of black between images (clnet_png_write_grid). Returns 0 on success. */
static int write_grid(const char *path, const float *img, int n, int cols)
{
    clnet_png_grid_params p = CLNET_PNG_GRID_PARAMS_DEFAULT;
    p.cols = cols;
    char err[1024];
    if (clnet_png_write_grid(path, img, n, SIDE, SIDE, &p, err, sizeof err) == CLNET_OK)
        return 0;
    fprintf(stderr, "clnet-train: %s\n", err);
    return 1;
}

/* ---- Sampling ------------------------------------------------------------------------- */

/* n images from G in inference mode (running batch-norm statistics), noise
 * drawn from (seed, stream + batch index), in batches of up to 100. */
static clnet_status generate(clnet_context *ctx, clnet_model *g, int64_t n, unsigned long long seed,
                             unsigned long long stream, float *out)
{
    int64_t b = n < 100 ? n : 100, zs[2] = { b, DCGAN_NOISE_DIM };
    clnet_tensor *z;
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 2, zs, &z);
    for (int64_t s = 0; !st && s < n; s += b) {
        int64_t k = n - s < b ? n - s : b;
        clnet_tensor *zk;
        const clnet_tensor *y;
        if ((st = clnet_tensor_slice(z, 0, k, &zk)))
            break;
        if (!(st = clnet_tensor_rand_normal(zk, seed, stream + (unsigned long long)(s / b), 0.0f,
                                            1.0f)) &&
            !(st = clnet_model_forward(g, zk, 0, &y, NULL)))
            st = clnet_tensor_download(y, out + s * PIXELS, (size_t)k * PIXELS * sizeof *out);
        clnet_tensor_destroy(zk);
    }
    clnet_tensor_destroy(z);
    return st;
}

/* The grid as 8-bit grey pixels, for TensorBoard (the same mapping as the
 * PNG file's). */
static int log_grid(clnet_tblog *tb, int epoch, const float *img)
{
    enum { WIDE = GRID * SIDE };
    static uint8_t px[WIDE * WIDE];
    for (int k = 0; k < GRID * GRID; k++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                float v = (img[(size_t)k * PIXELS + (size_t)(y * SIDE + x)] + 1.0f) * 127.5f;
                px[(k / GRID * SIDE + y) * WIDE + k % GRID * SIDE + x] =
                    (uint8_t)(v < 0     ? 0
                              : v > 255 ? 255
                                        : v + 0.5f);
            }
    if (clnet_tblog_image(tb, "samples", epoch, WIDE, WIDE, 1, px)) {
        fprintf(stderr, "clnet-train: --logdir: %s\n", clnet_tblog_errmsg(tb));
        return 1;
    }
    return 0;
}

/* The grid of the fixed noise batch: 64 samples, 8x8; also to TensorBoard
 * when tb is not NULL. */
static int epoch_grid(clnet_context *ctx, clnet_model *g, const options *o, const char *path,
                      clnet_tblog *tb, int epoch)
{
    float *img = malloc(GRID * GRID * PIXELS * sizeof *img);
    int rc = !img || generate(ctx, g, GRID * GRID, o->seed, GRID_STREAM, img);
    if (!img)
        fprintf(stderr, "clnet-train: out of host memory for the sample grid\n");
    else if (rc)
        fail(ctx, "sampling");
    rc = rc || write_grid(path, img, GRID * GRID, GRID);
    rc = rc || (tb && log_grid(tb, epoch, img));
    free(img);
    return rc;
}

/* ---- Score ---------------------------------------------------------------------------- */

/* Class probabilities of n images in [0, 1] under the classifier. */
static int classify(clnet_context *ctx, clnet_model *cnn, const float *x, int64_t n, float *probs)
{
    if (clnet_model_predict(cnn, x, n, 100, probs))
        return fail(ctx, "classifying");
    return 0;
}

static int score(clnet_context *ctx, clnet_model *g, const options *o, const clnet_dataset *test)
{
    int64_t n = o->sample ? o->sample : SCORE_N;
    if ((size_t)n > test->count)
        n = (int64_t)test->count;
    clnet_model *cnn = NULL;
    float *img = malloc((size_t)n * PIXELS * sizeof *img),
          *probs = malloc((size_t)n * 10 * sizeof *probs);
    int rc = 1;
    if (!img || !probs) {
        fprintf(stderr, "clnet-train: out of host memory for scoring %lld samples\n", (long long)n);
        goto done;
    }
    if (build_cnn(ctx, 1, &cnn) || clnet_model_load(cnn, o->score)) {
        rc = fail(ctx, "loading the classifier");
        goto done;
    }
    double share[2][10], s[2];
    if (generate(ctx, g, n, o->seed, SAMPLE_STREAM, img)) {
        rc = fail(ctx, "sampling");
        goto done;
    }
    for (size_t i = 0; i < (size_t)n * PIXELS; i++)
        img[i] = (img[i] + 1.0f) * 0.5f;
    if (classify(ctx, cnn, img, n, probs))
        goto done;
    s[0] = classifier_score(probs, n, 10, share[0]);
    if (classify(ctx, cnn, test->images, n, probs))
        goto done;
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
    return rc;
}

/* ---- Training ------------------------------------------------------------------------- */

/* Fashion-MNIST's training images scaled to [-1, 1], on the device. */
static clnet_status upload_real(clnet_context *ctx, const clnet_dataset *train, int64_t n,
                                clnet_tensor **out)
{
    int64_t xs[4] = { n, 1, SIDE, SIDE };
    float *x = malloc((size_t)n * PIXELS * sizeof *x);
    if (!x)
        return CLNET_ERR_HOST_MEMORY;
    for (size_t i = 0; i < (size_t)n * PIXELS; i++)
        x[i] = train->images[i] * 2.0f - 1.0f;
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 4, xs, out);
    if (!st && (st = clnet_tensor_upload(*out, x, (size_t)n * PIXELS * sizeof *x))) {
        clnet_tensor_destroy(*out);
        *out = NULL;
    }
    free(x);
    return st;
}

typedef struct epoch_stats {
    double d_loss, g_loss, d_ms, g_ms, secs;
    int64_t steps;
} epoch_stats;

/* One epoch of floor(n / B) iterations; losses are read every step (a few
 * bytes: the D and G phases are timed separately anyway). */
static int run_epoch(clnet_context *ctx, gan_trainer *t, const clnet_tensor *real, int32_t *ord,
                     int64_t n, const options *o, unsigned long long *state, epoch_stats *es)
{
    int64_t b = o->batch_size, steps = n / b, is[1] = { b }, bs[4] = { b, 1, SIDE, SIDE };
    clnet_tensor *idx = NULL, *batch = NULL;
    int rc = 1;
    *es = (epoch_stats){ .steps = steps };
    train_shuffle(ord, n, state);
    if (clnet_tensor_create(ctx, CLNET_I32, 1, is, &idx) ||
        clnet_tensor_create(ctx, CLNET_F32, 4, bs, &batch))
        goto done;
    int live = !o->quiet && isatty(fileno(stderr));
    double t0 = now();
    for (int64_t s = 0; s < steps; s++) {
        double a = now(), dl, gl;
        if (clnet_tensor_upload(idx, ord + s * b, (size_t)b * sizeof *ord) ||
            clnet_tensor_gather_rows(real, idx, batch) || gan_generate(t, NULL) ||
            gan_step_d(t, batch) || clnet_context_finish(ctx))
            goto done;
        double m = now();
        if (gan_step_g(t) || gan_losses(t, &dl, &gl))
            goto done;
        double e = now();
        es->d_ms += 1e3 * (m - a);
        es->g_ms += 1e3 * (e - m);
        es->d_loss += dl;
        es->g_loss += gl;
        /* A live line on a terminal, a line per 100 steps in a log. */
        if (!o->quiet && (s + 1) % (live ? 10 : 100) == 0)
            fprintf(stderr, "%s  %lld/%lld - %.0fs - d_loss %.4f - g_loss %.4f%s",
                    live ? "\r\033[K" : "", (long long)s + 1, (long long)steps, now() - t0,
                    es->d_loss / (double)(s + 1), es->g_loss / (double)(s + 1), live ? "" : "\n");
    }
    if (live)
        fprintf(stderr, "\r\033[K");
    es->secs = now() - t0;
    rc = 0;
done:
    if (rc)
        fail(ctx, "training");
    clnet_tensor_destroy(idx);
    clnet_tensor_destroy(batch);
    return rc;
}

/* --save FILE: the generator to FILE, the discriminator to FILE.d. */
static int save_both(clnet_context *ctx, clnet_model *g, clnet_model *d, const char *path)
{
    char dpath[4096];
    snprintf(dpath, sizeof dpath, "%s.d", path);
    if (save_weights(ctx, g, path) || save_weights(ctx, d, dpath))
        return 1;
    printf("saved the generator to %s and the discriminator to %s\n", path, dpath);
    fflush(stdout);
    return 0;
}

/* Where epoch e's grid goes: --out FILE.png gives FILE-epochNN.png. */
static void grid_path(const options *o, int e, char *buf, size_t size)
{
    const char *out = o->out ? o->out : "gan.png";
    size_t len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".png"))
        len -= 4;
    snprintf(buf, size, "%.*s-epoch%02d.png", (int)len, out, e);
}

/* ---- Checkpoints and resuming --------------------------------------------------------- */

/* --checkpoint FILE, after every epoch: G's and D's weights to FILE and
 * FILE.d (as --save), their training states (parameters, Adam moments, step
 * counts: clnet_model_save_training_state) to FILE.state and FILE.state.d,
 * and last the loop's own state to FILE.state.gan, a text file
 *   clnet-gan-state-1
 *   epoch E
 *   noise_draws N     (gan_noise_draws: the next noise batch's Philox stream)
 *   shuffle S         (the splitmix64 state of the next epoch's permutation)
 * --resume FILE.state reads the three and refuses them unless their epochs
 * agree (a run killed between the writes). docs/gan.md, "Resuming". */
#define LOOP_FORMAT "clnet-gan-state-1"

typedef struct loop_state {
    int epoch;
    unsigned long long draws, shuffle;
} loop_state;

static int save_state(clnet_context *ctx, clnet_model *m, const char *path, int epoch)
{
    if (!out_check("clnet-train", "--checkpoint", path))
        return 1;
    if (clnet_model_save_training_state(m, path, epoch))
        return fail(ctx, "--checkpoint");
    return 0;
}

static int save_checkpoint(clnet_context *ctx, clnet_model *g, clnet_model *d, const options *o,
                           const loop_state *ls)
{
    char path[4200], text[256];
    snprintf(path, sizeof path, "%s.d", o->checkpoint);
    /* Checked again under this option's name: the paths may have changed
     * during training (save_weights' own check names --save). */
    if (!out_check("clnet-train", "--checkpoint", o->checkpoint) ||
        !out_check("clnet-train", "--checkpoint", path) || save_weights(ctx, g, o->checkpoint) ||
        save_weights(ctx, d, path))
        return 1;
    snprintf(path, sizeof path, "%s.state", o->checkpoint);
    if (save_state(ctx, g, path, ls->epoch))
        return 1;
    snprintf(path, sizeof path, "%s.state.d", o->checkpoint);
    if (save_state(ctx, d, path, ls->epoch))
        return 1;
    snprintf(path, sizeof path, "%s.state.gan", o->checkpoint);
    int len =
        snprintf(text, sizeof text, LOOP_FORMAT "\nepoch %d\nnoise_draws %llu\nshuffle %llu\n",
                 ls->epoch, ls->draws, ls->shuffle);
    out_file f;
    if (!out_open(&f, "clnet-train", path))
        return 1;
    if (!out_write(&f, text, (size_t)len)) {
        out_fail(&f, "clnet-train");
        return 1;
    }
    return !out_commit(&f, "clnet-train");
}

static int load_checkpoint(clnet_context *ctx, clnet_model *g, clnet_model *d, const char *state,
                           loop_state *ls)
{
    char path[4200], format[32] = "";
    int eg = -1, ed = -1;
    snprintf(path, sizeof path, "%s.gan", state);
    if (!in_check("clnet-train", "--resume", path))
        return 1;
    FILE *f = fopen(path, "r");
    int ok = f &&
             fscanf(f, "%31s epoch %d noise_draws %llu shuffle %llu", format, &ls->epoch,
                    &ls->draws, &ls->shuffle) == 4 &&
             !strcmp(format, LOOP_FORMAT) && ls->epoch >= 0;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr,
                "clnet-train: --resume: %s is not a GAN loop state (" LOOP_FORMAT
                ": epoch, noise_draws, shuffle) as gan --checkpoint writes\n",
                path);
        return 1;
    }
    if (clnet_model_load_training_state(g, state, &eg))
        return fail(ctx, "--resume (the generator)");
    snprintf(path, sizeof path, "%s.d", state);
    if (!in_check("clnet-train", "--resume", path))
        return 1;
    if (clnet_model_load_training_state(d, path, &ed))
        return fail(ctx, "--resume (the discriminator)");
    if (eg != ls->epoch || ed != ls->epoch) {
        fprintf(stderr,
                "clnet-train: --resume: %s (epoch %d), %s.d (epoch %d) and %s.gan (epoch %d) "
                "are not from the same epoch\n",
                state, eg, state, ed, state, ls->epoch);
        return 1;
    }
    return 0;
}

static int train(clnet_context *ctx, clnet_model *g, clnet_model *d, const options *o,
                 const clnet_dataset *data)
{
    int64_t n = o->limit && (size_t)o->limit < data->count ? o->limit : (int64_t)data->count;
    if (n < o->batch_size) {
        fprintf(stderr, "clnet-train: %lld training images, fewer than a batch of %d\n",
                (long long)n, o->batch_size);
        return 1;
    }
    gan_params gp = GAN_PARAMS_DEFAULT;
    gp.batch = o->batch_size;
    gp.real_label = (float)(1.0 - o->label_smoothing);
    gp.seed = o->seed;
    gan_trainer *t = NULL;
    clnet_tblog *tb = NULL;
    clnet_tensor *real = NULL;
    int32_t *ord = malloc((size_t)n * sizeof *ord);
    int rc = 1;
    if (!ord || gan_trainer_create(ctx, g, d, &gp, &t) || upload_real(ctx, data, n, &real)) {
        rc = fail(ctx, "setting up the GAN");
        goto done;
    }
    printf("training on %lld images, batch %d, %d epochs, Adam lr %g beta1 0.5, real label %g\n",
           (long long)n, o->batch_size, o->epochs, o->lr, (double)gp.real_label);
    fflush(stdout);
    unsigned long long state = o->seed * 1000003ull;
    int first = 1;
    if (o->resume) {
        loop_state ls;
        if (load_checkpoint(ctx, g, d, o->resume, &ls))
            goto done;
        if (ls.epoch > o->epochs) {
            fprintf(stderr, "clnet-train: --resume: %s holds %d epochs, more than --epochs %d\n",
                    o->resume, ls.epoch, o->epochs);
            goto done;
        }
        gan_set_noise_draws(t, ls.draws);
        state = ls.shuffle;
        first = ls.epoch + 1;
        printf("resuming after epoch %d from %s\n", ls.epoch, o->resume);
        fflush(stdout);
    }
    char err[1024];
    if (o->logdir && clnet_tblog_open(o->logdir, &tb, err, sizeof err)) {
        fprintf(stderr, "clnet-train: --logdir: %s\n", err);
        goto done;
    }
    for (int e = first; e <= o->epochs; e++) {
        epoch_stats es;
        char path[4096];
        if (run_epoch(ctx, t, real, ord, n, o, &state, &es))
            goto done;
        /* The checkpoint first: a grid that cannot be written loses no
         * training, and an interrupted run keeps its progress. */
        if (o->save && save_both(ctx, g, d, o->save))
            goto done;
        loop_state ls = { .epoch = e, .draws = gan_noise_draws(t), .shuffle = state };
        if (o->checkpoint && save_checkpoint(ctx, g, d, o, &ls))
            goto done;
        grid_path(o, e, path, sizeof path);
        if (epoch_grid(ctx, g, o, path, tb, e))
            goto done;
        double k = (double)es.steps;
        if (tb && (clnet_tblog_scalar(tb, "epoch/d_loss", e, es.d_loss / k) ||
                   clnet_tblog_scalar(tb, "epoch/g_loss", e, es.g_loss / k) ||
                   clnet_tblog_scalar(tb, "epoch/seconds", e, es.secs))) {
            fprintf(stderr, "clnet-train: --logdir: %s\n", clnet_tblog_errmsg(tb));
            goto done;
        }
        printf("epoch %d/%d: d_loss %.4f, g_loss %.4f, %.1f s, %.1f ms/step (D %.1f + G %.1f), "
               "samples %s\n",
               e, o->epochs, es.d_loss / k, es.g_loss / k, es.secs, es.secs * 1e3 / k, es.d_ms / k,
               es.g_ms / k, path);
        fflush(stdout);
    }
    if (tb)
        printf("TensorBoard events: %s\n", clnet_tblog_path(tb));
    rc = 0;
done:
    clnet_tblog_close(tb);
    gan_trainer_destroy(t);
    clnet_tensor_destroy(real);
    free(ord);
    return rc;
}

int gan_check_outputs(const options *o)
{
    char path[4096];
    int training = !o->sample && !o->eval_only;
    if (training && o->save) {
        snprintf(path, sizeof path, "%s.d", o->save);
        if (check_output(o, "--save", o->save) || check_output(o, "--save", path))
            return 2;
    }
    if (training && o->checkpoint) {
        if (strstr(o->checkpoint, "{epoch}")) {
            fprintf(stderr,
                    "clnet-train: gan --checkpoint %s: the GAN keeps the last epoch's "
                    "checkpoint only, without {epoch}\n",
                    o->checkpoint);
            return 2;
        }
        static const char *const suffix[] = { "", ".d", ".state", ".state.d", ".state.gan" };
        for (int i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "%s%s", o->checkpoint, suffix[i]);
            if (check_output(o, "--checkpoint", path))
                return 2;
        }
    }
    if (training) { /* every epoch's grid goes to the same directory */
        grid_path(o, 1, path, sizeof path);
        return check_output(o, "--out", path);
    }
    return o->sample ? check_output(o, "--out", o->out ? o->out : "gan-samples.png") : 0;
}

/* ---- Entry ----------------------------------------------------------------------------- */

/* --load FILE: the generator from FILE, the discriminator from FILE.d when
 * that exists (only training needs it). */
static int load_both(clnet_context *ctx, clnet_model *g, clnet_model *d, const char *path)
{
    char dpath[4096];
    snprintf(dpath, sizeof dpath, "%s.d", path);
    if (access(dpath, F_OK) == 0 && !in_check("clnet-train", "--load", dpath))
        return 1;
    if (clnet_model_load(g, path) || (access(dpath, F_OK) == 0 && clnet_model_load(d, dpath)))
        return fail(ctx, "loading weights");
    return 0;
}

static int sample(clnet_context *ctx, clnet_model *g, const options *o)
{
    const char *out = o->out ? o->out : "gan-samples.png";
    int cols = 1;
    while (cols * cols < o->sample)
        cols++;
    float *img = malloc((size_t)o->sample * PIXELS * sizeof *img);
    if (!img) {
        fprintf(stderr, "clnet-train: out of host memory for %d samples (%.0f MiB)\n", o->sample,
                (double)o->sample * PIXELS * sizeof *img / 1048576.0);
        return 1;
    }
    if (generate(ctx, g, o->sample, o->seed, SAMPLE_STREAM, img)) {
        free(img);
        return fail(ctx, "sampling");
    }
    int rc = write_grid(out, img, o->sample, cols);
    if (!rc)
        printf("wrote %d samples to %s\n", o->sample, out);
    free(img);
    return rc;
}

int train_gan(clnet_context *ctx, const options *o_in)
{
    options opt = *o_in, *o = &opt;
    if (!o->epochs_set)
        o->epochs = 10;
    if (!o->batch_set)
        o->batch_size = 64;
    if (!o->lr_set)
        o->lr = 2e-4;
    if (o->sample && !o->load) {
        fprintf(stderr,
                "clnet-train: gan --sample N needs --load FILE (a generator saved by --save)\n");
        return 2;
    }
    clnet_dataset *train_set = NULL, *test_set = NULL;
    clnet_model *g = NULL, *d = NULL;
    int rc = 1, training = !o->sample && !o->eval_only;
    if (training && o->epochs == 0) {
        fprintf(stderr, "clnet-train: gan --epochs 0 trains nothing: give --epochs N >= 1, or "
                        "--sample N / --eval-only --score FILE with --load FILE\n");
        return 2;
    }

    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = (float)o->lr;
    cp.adam.beta1 = 0.5f;
    cp.loss = CLNET_LOSS_NONE; /* the trainer computes its losses */
    if ((training || o->score) && load_data(o, &train_set, &test_set))
        return 1;
    if (build_dcgan_generator(ctx, o->seed, &g) ||
        build_dcgan_discriminator(ctx, o->seed + 1, &d) || clnet_model_compile(g, &cp) ||
        clnet_model_compile(d, &cp)) {
        rc = fail(ctx, "building the models");
        goto done;
    }
    if (!o->quiet && training) {
        clnet_model_summary(g, stdout);
        clnet_model_summary(d, stdout);
    }
    if ((o->load && load_both(ctx, g, d, o->load)) ||
        (training && train(ctx, g, d, o, train_set)) || (o->sample && sample(ctx, g, o)) ||
        (o->score && score(ctx, g, o, test_set)))
        goto done;
    /* --save-onnx: the generator, in its inference form (the running
     * statistics), after training or as loaded. */
    if (o->save_onnx) {
        if (save_onnx(ctx, g, o->save_onnx))
            goto done;
        printf("saved the generator as ONNX to %s\n", o->save_onnx);
    }
    rc = 0;
done:
    clnet_model_destroy(g);
    clnet_model_destroy(d);
    clnet_dataset_free(train_set);
    clnet_dataset_free(test_set);
    return rc;
}
