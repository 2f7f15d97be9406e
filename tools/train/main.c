/* clnet-train — trains clnet's reference models on Fashion-MNIST on the
 * chosen device, with progress, test accuracy and saved weights. Uses only
 * the public API. This file: options, the device, and shared helpers. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cli.h"
#include "../outfile.h"
#include "train.h"

/* The options' ranges: generous, but small enough that no count overflows
 * an int and a typo of a few digits is caught. */
#define P "clnet-train"
enum { MAX_EPOCHS = 1000000, MAX_BATCH = 65536, MAX_SAMPLE = 100000 };
#define MAX_LR 10.0

static const struct {
    const char *name, *help;
    int (*run)(clnet_context *ctx, const options *o);
} models[] = {
    { "cnn",
      "Conv2D(32,3x3,relu) > MaxPool > Conv2D(64,3x3,relu) > MaxPool > Flatten >\n"
      "                     Dense(64,relu) > Dense(10,softmax); Adam; sparse CE",
      train_cnn },
    { "lstm",
      "3 x LSTM(64) (the first two return sequences) > Dense(10,softmax) on\n"
      "                     images read row by row (28 steps of 28 features)",
      train_rnn },
    { "rnn", "the same stack with SimpleRNN(64) layers", train_rnn },
    { "gan",
      "DCGAN: generator from 100-d noise to 28x28, discriminator with\n"
      "                     LeakyReLU and dropout; Adam(2e-4, beta1 0.5); BCE",
      train_gan },
    { "vae",
      "variational autoencoder, 2-d latent (Keras' example): conv encoder,\n"
      "                     Conv2DTranspose decoder; BCE summed over pixels + KL",
      train_vae },
};
#define NMODELS (sizeof models / sizeof models[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: clnet-train MODEL [options]\nmodels:\n");
    for (size_t i = 0; i < NMODELS; i++)
        fprintf(f, "  %-18s %s\n", models[i].name, models[i].help);
    fprintf(
        f,
        "options:\n"
        "  --device SPEC      gpu, cpu, P:D or a name substring (default: CLNET_DEVICE, else\n"
        "                     the first GPU, else the first CPU)\n"
        "  --epochs N         (default: 3; gan: 10)\n"
        "  --batch-size N     (default: 32; gan: 64; vae: 128)\n"
        "  --lr F             Adam's learning rate (default: 0.001; gan: 0.0002)\n"
        "  --seed N           weights, shuffling, dropout and noise (default 1)\n"
        "  --limit N          train on the first N training images only\n"
        "  --data DIR         Fashion-MNIST IDX files (default %s)\n"
        "  --save FILE        save the trained weights (safetensors; gan: FILE and FILE.d)\n"
        "  --save-onnx FILE   cnn, lstm, rnn, gan (the generator): save the trained\n"
        "                     model as ONNX (opset 13), for ONNX Runtime or clnet-run\n"
        "  --load FILE        start from saved weights\n"
        "  --eval-only        only evaluate (with --load)\n"
        "  --sample N         gan: draw N samples from a saved generator (with --load)\n"
        "  --out FILE         gan: where the sample grid goes (PNG)\n"
        "                     vae: the pictures' prefix (default vae: vae-samples.png,\n"
        "                     vae-reconstructions.png, vae-manifold.png)\n"
        "  --score FILE       gan, vae: score samples with a CNN saved by clnet-train cnn --save\n"
        "  --label-smoothing F  gan: train D towards 1 - F on real images (default 0)\n"
        "  --quiet            no per-step progress\n"
        "  --logdir DIR       TensorBoard event files in DIR: cnn/lstm/rnn metrics, batch\n"
        "                     loss, weight histograms; gan losses and sample grids\n"
        "  --csv FILE         the per-epoch history as CSV, rewritten after every epoch\n"
        "  --checkpoint FILE  save the weights of the epoch with the best test loss, and\n"
        "                     every epoch's training state as FILE.state (for --resume)\n"
        "                     (\"{epoch}\" in FILE becomes the epoch's number)\n"
        "  --early-stopping N stop after N epochs without a better test loss; keep the best\n"
        "  --lr-schedule SPEC step:N:GAMMA, exp:GAMMA, cosine:N[:MIN_LR] or\n"
        "                     plateau:PATIENCE[:FACTOR], optionally ,warmup:N (per epoch)\n"
        "  --plot FILE        loss and accuracy curves (.png, .svg or .pdf)\n"
        "  --resume STATE     continue a run from a FILE.state --checkpoint FILE left\n"
        "                     (gan: both models and the loop; docs/gan.md)\n"
        "                     With any of these seven, all epochs run in one fit with the\n"
        "                     test set as validation data (docs/training.md).\n"
        "  --ranks            cnn: data-parallel over MPI ranks, one device each (automatic\n"
        "                     under mpirun); e.g. mpirun -np 2 clnet-train cnn (docs/dist.md)\n",
        CLNET_FASHION_MNIST_DIR);
}

/* 1: parsed; 0: a usage error (the usage follows); -1: a bad value (the
 * message said which option and what it takes). */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){ .epochs = 3,
                    .batch_size = 32,
                    .lr = 1e-3,
                    .seed = 1,
                    .data = CLNET_FASHION_MNIST_DIR,
                    .early_stopping = -1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--device") || !strcmp(a, "--epochs") ||
                    !strcmp(a, "--batch-size") || !strcmp(a, "--lr") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--limit") || !strcmp(a, "--data") || !strcmp(a, "--save") ||
                    !strcmp(a, "--load") || !strcmp(a, "--save-onnx") || !strcmp(a, "--sample") ||
                    !strcmp(a, "--out") || !strcmp(a, "--score") ||
                    !strcmp(a, "--label-smoothing") || watch_takes(a);
        if (takes && (!v || !*v)) {
            fprintf(stderr, "clnet-train: %s needs a value%s\n", a, v ? ", not an empty one" : "");
            return -1;
        }
        if (takes)
            i++;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--device")) {
            if (!cli_device(P, a, v))
                return -1;
            o->device = v;
        } else if (!strcmp(a, "--epochs")) {
            if (!cli_int_i(P, a, v, 0, MAX_EPOCHS, &o->epochs))
                return -1;
            o->epochs_set = 1;
        } else if (!strcmp(a, "--batch-size")) {
            if (!cli_int_i(P, a, v, 1, MAX_BATCH, &o->batch_size))
                return -1;
            o->batch_set = 1;
        } else if (!strcmp(a, "--lr")) {
            if (!cli_real(P, a, v, 0.0, 1, MAX_LR, 0, &o->lr))
                return -1;
            o->lr_set = 1;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_u64(P, a, v, ULLONG_MAX, &o->seed))
                return -1;
        } else if (!strcmp(a, "--limit")) {
            long long n;
            if (!cli_int(P, a, v, 1, LONG_MAX, &n))
                return -1;
            o->limit = (long)n;
        } else if (!strcmp(a, "--sample")) {
            if (!cli_int_i(P, a, v, 1, MAX_SAMPLE, &o->sample))
                return -1;
        } else if (!strcmp(a, "--label-smoothing")) {
            if (!cli_real(P, a, v, 0.0, 0, 1.0, 1, &o->label_smoothing))
                return -1;
        } else if (watch_takes(a)) {
            if (!watch_parse(a, v, o))
                return -1;
        } else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--save-onnx"))
            o->save_onnx = v;
        else if (!strcmp(a, "--load"))
            o->load = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--score"))
            o->score = v;
        else if (!strcmp(a, "--eval-only"))
            o->eval_only = 1;
        else if (!strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(a, "--ranks"))
            o->ranks = 1;
        else if (a[0] != '-' && !o->model)
            o->model = a;
        else {
            fprintf(stderr, "clnet-train: unknown argument \"%s\"\n", a);
            return 0;
        }
    }
    if (!o->model) {
        fprintf(stderr, "clnet-train: which model?\n");
        return 0;
    }
    /* gan has its own loop, not fit: of these it takes --logdir, --checkpoint
     * and --resume (gan.c). */
    int gan_extra = !strcmp(o->model, "gan") &&
                    (o->csv || o->plot || o->early_stopping >= 0 || o->schedule_set);
    if (watch_wanted(o) && (o->ranks || gan_extra || o->eval_only || !strcmp(o->model, "vae"))) {
        fprintf(stderr,
                "clnet-train: --logdir, --csv, --checkpoint, --early-stopping, --lr-schedule, "
                "--plot and --resume are for training cnn, lstm or rnn in one process (gan: "
                "--logdir, --checkpoint and --resume only; vae: none)\n");
        return 0;
    }
    if (o->eval_only && !o->load) {
        fprintf(stderr, "clnet-train: --eval-only needs --load FILE\n");
        return 0;
    }
    return 1;
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The data-parallel job this process belongs to, for fail(). */
static clnet_dist *job;

int fail(clnet_context *ctx, const char *what)
{
    const char *msg = clnet_context_errmsg(ctx);
    if (!job) {
        fprintf(stderr, "clnet-train: %s: %s\n", what, msg);
        return 1;
    }
    /* Messages from collectives already name a rank. */
    if (!strncmp(msg, "rank ", 5))
        fprintf(stderr, "clnet-train: %s: %s\n", what, msg);
    else
        fprintf(stderr, "clnet-train: rank %d: %s: %s\n", clnet_dist_rank(job), what, msg);
    fflush(stderr);
    clnet_dist_abort(job, 1);
    return 1;
}

/* Joins the MPI job and creates this rank's device; 0 on success. */
static int join(options *o, const char *model, clnet_context **ctx)
{
    char err[2048];
    if (strcmp(model, "cnn")) {
        fprintf(stderr, "clnet-train: only cnn trains over MPI ranks (--ranks / mpirun), not %s\n",
                model);
        return 1;
    }
    if (clnet_dist_create(NULL, &o->dist, err, sizeof err)) {
        fprintf(stderr, "clnet-train: %s\n", err);
        return 1;
    }
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = o->device;
    p.log = cli_log_reports;
    if (clnet_dist_context_create(o->dist, &p, ctx, err, sizeof err)) {
        if (clnet_dist_rank(o->dist) == 0)
            fprintf(stderr, "clnet-train: %s\n", err);
        clnet_dist_destroy(o->dist);
        return 1;
    }
    job = o->dist;
    return 0;
}

/* Which of the split's two files is missing from dir (plain or .gz), or
 * NULL when both are there. */
static const char *missing_file(const char *dir, const char *split, char *buf, size_t size)
{
    static const char *const kinds[2] = { "images-idx3-ubyte", "labels-idx1-ubyte" };
    for (int k = 0; k < 2; k++) {
        char gz[4200];
        snprintf(buf, size, "%s/%s-%s", dir, split, kinds[k]);
        snprintf(gz, sizeof gz, "%s.gz", buf);
        if (access(buf, F_OK) != 0 && access(gz, F_OK) != 0)
            return buf;
    }
    return NULL;
}

/* The split's geometry against the models' input: 0, or a message and 1. */
static int check_geometry(const options *o, const char *split, const clnet_dataset *ds)
{
    if (ds->rows == IMAGE_SIDE && ds->cols == IMAGE_SIDE && ds->count > 0)
        return 0;
    if (ds->count == 0)
        fprintf(stderr, "clnet-train: %s/%s-images-idx3-ubyte holds no images\n", o->data, split);
    else
        fprintf(stderr,
                "clnet-train: %s/%s-images-idx3-ubyte holds %zu images of %dx%d pixels; "
                "the %s model takes %dx%d images (Fashion-MNIST's)\n",
                o->data, split, ds->count, ds->rows, ds->cols, o->model, IMAGE_SIDE, IMAGE_SIDE);
    return 1;
}

/* The data files that exist are regular files (a FIFO would block the
 * reader): 0, or a message and 1. */
static int check_data_files(const char *dir)
{
    static const char *const names[4] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
    char path[4200];
    for (int k = 0; k < 8; k++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, names[k / 2], k % 2 ? ".gz" : "");
        if (access(path, F_OK) == 0 && !in_check("clnet-train", "--data", path))
            return 1;
    }
    return 0;
}

int load_data(const options *o, clnet_dataset **train, clnet_dataset **test)
{
    char err[2048], path[4096];
    *train = *test = NULL;
    if (check_data_files(o->data))
        return 1;
    const char *split = "train";
    if (clnet_dataset_load_mnist(o->data, split, train, err, sizeof err) ||
        clnet_dataset_load_mnist(o->data, split = "t10k", test, err, sizeof err)) {
        fprintf(stderr, "clnet-train: %s\n", err);
        /* The install hint only when the files are not there: not after an
         * out-of-memory or for a corrupt file, where the message says what
         * is wrong. */
        const char *missing = missing_file(o->data, split, path, sizeof path);
        if (missing && !strcmp(o->data, CLNET_FASHION_MNIST_DIR))
            fprintf(stderr,
                    "(no %s: install the data with: apt-get install "
                    "dataset-fashion-mnist)\n",
                    missing);
        else if (missing)
            fprintf(stderr, "(no %s[.gz]: --data DIR must hold Fashion-MNIST's IDX files)\n",
                    missing);
        clnet_dataset_free(*train);
        *train = NULL;
        return 1;
    }
    if (check_geometry(o, "train", *train) || check_geometry(o, "t10k", *test)) {
        clnet_dataset_free(*train);
        clnet_dataset_free(*test);
        *train = *test = NULL;
        return 1;
    }
    return 0;
}

int save_weights(clnet_context *ctx, clnet_model *m, const char *path)
{
    char dest[4096];
    /* Checked again: the path may have changed during training. */
    if (!out_check("clnet-train", "--save", path) || !out_target(path, dest, sizeof dest)) {
        if (job)
            clnet_dist_abort(job, 1);
        return 1;
    }
    if (clnet_model_save(m, dest))
        return fail(ctx, "saving weights");
    return 0;
}

int save_onnx(clnet_context *ctx, clnet_model *m, const char *path)
{
    char dest[4096];
    if (!out_check("clnet-train", "--save-onnx", path) || !out_target(path, dest, sizeof dest)) {
        if (job)
            clnet_dist_abort(job, 1);
        return 1;
    }
    if (clnet_model_save_onnx(m, dest))
        return fail(ctx, "saving the model as ONNX");
    return 0;
}

int check_output(const options *o, const char *option, const char *path)
{
    if (out_check("clnet-train", option, path))
        return 0;
    if (o->dist)
        clnet_dist_abort(o->dist, 2);
    return 2;
}

void train_shuffle(int32_t *ord, int64_t n, unsigned long long *state)
{
    for (int64_t i = 0; i < n; i++)
        ord[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        unsigned long long z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        int64_t j = (int64_t)((z ^ (z >> 31)) % (unsigned long long)(i + 1));
        int32_t t = ord[i];
        ord[i] = ord[j];
        ord[j] = t;
    }
}

void on_progress(void *user, const clnet_progress *p)
{
    epoch_log *log = user;
    if (p->end_of_epoch) {
        log->loss = p->loss;
        log->accuracy = p->accuracy;
    }
    if (log->quiet)
        return;
    if (!p->end_of_epoch)
        clnet_progress_print(stderr, p);
    else
        fprintf(stderr, "\r\033[K");
}

int main(int argc, char **argv)
{
    options o;
    int parsed = parse(argc, argv, &o);
    if (parsed <= 0) {
        if (parsed == 0)
            usage(stderr);
        return 2;
    }
    if (o.save_onnx && !strcmp(o.model, "vae")) {
        fprintf(stderr, "clnet-train: --save-onnx: vae has no ONNX form (its Sampling layer "
                        "draws random numbers; --save saves the weights)\n");
        return 2;
    }
    size_t which = NMODELS;
    for (size_t i = 0; i < NMODELS; i++)
        if (!strcmp(o.model, models[i].name))
            which = i;
    if (which == NMODELS) {
        fprintf(stderr, "clnet-train: unknown model \"%s\"\n", o.model);
        usage(stderr);
        return 2;
    }
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = o.device;
    p.log = cli_log_reports;
    clnet_context *ctx;
    int parallel = o.ranks || (clnet_dist_launched() && !strcmp(o.model, "cnn"));
    /* The files this run writes, before any work (a data-parallel run
     * checks on rank 0, in train_cnn). */
    if (!parallel) {
        int bad = !strcmp(o.model, "gan")   ? gan_check_outputs(&o)
                  : !strcmp(o.model, "vae") ? vae_check_outputs(&o)
                  : o.save                  ? check_output(&o, "--save", o.save)
                                            : 0;
        if (!bad && o.save_onnx)
            bad = check_output(&o, "--save-onnx", o.save_onnx);
        if (bad)
            return bad;
    }
    /* The files it reads: regular files (a FIFO would block the reader). */
    if ((o.load && !in_check("clnet-train", "--load", o.load)) ||
        (o.score && !in_check("clnet-train", "--score", o.score)))
        return 2;
    /* Under mpirun cnn runs data-parallel by itself; --ranks asks for it. */
    if (parallel) {
        if (join(&o, o.model, &ctx))
            return 1;
    } else if (clnet_context_create(&p, &ctx, err, sizeof err)) {
        fprintf(stderr, "clnet-train: %s\n", err);
        return 1;
    }
    int lead = clnet_dist_rank(o.dist) == 0;
    const clnet_device_info *d = clnet_context_device(ctx);
    if (lead && o.dist)
        printf("clnet %s on %d ranks; rank 0 on %s (%s)\n", clnet_version(),
               clnet_dist_size(o.dist), d->name, d->platform_name);
    else if (lead)
        printf("clnet %s on %s (%s)\n", clnet_version(), d->name, d->platform_name);
    double t0 = now();
    int rc = models[which].run(ctx, &o);
    clnet_context_stats s;
    clnet_context_get_stats(ctx, &s);
    if (lead)
        printf("total %.1f s, of which %.1f s building %llu kernel programs (%llu loaded from "
               "clnet's cache)\n",
               now() - t0, s.build_seconds,
               (unsigned long long)(s.programs_built + s.programs_loaded),
               (unsigned long long)s.programs_loaded);
    clnet_context_destroy(ctx);
    clnet_dist_destroy(o.dist);
    return rc;
}
