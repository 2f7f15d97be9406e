/* clnet-train — trains clnet's reference models on Fashion-MNIST on the
 * chosen device, with progress, test accuracy and saved weights. Uses only
 * the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <clnet/clnet.h>
#include <clnet/nn.h>

typedef struct options {
    const char *model, *device, *data, *save, *load;
    int epochs, batch_size, eval_only, quiet;
    long limit;
    double lr;
    unsigned long long seed;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clnet-train MODEL [options]\n"
            "models:\n"
            "  cnn                Conv2D(32,3x3,relu) > MaxPool > Conv2D(64,3x3,relu) > MaxPool >\n"
            "                     Flatten > Dense(64,relu) > Dense(10,softmax); Adam; sparse CE\n"
            "options:\n"
            "  --device SPEC      gpu, cpu, P:D or a name substring (default: CLNET_DEVICE, else\n"
            "                     the first GPU, else the first CPU)\n"
            "  --epochs N         (default 3)\n"
            "  --batch-size N     (default 32)\n"
            "  --lr F             Adam's learning rate (default 0.001)\n"
            "  --seed N           weights, shuffling and dropout (default 1)\n"
            "  --limit N          train on the first N training images only\n"
            "  --data DIR         Fashion-MNIST IDX files (default %s)\n"
            "  --save FILE        save the trained weights (safetensors)\n"
            "  --load FILE        start from saved weights\n"
            "  --eval-only        only evaluate (with --load)\n"
            "  --quiet            no per-step progress\n",
            CLNET_FASHION_MNIST_DIR);
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){ .epochs = 3, .batch_size = 32, .lr = 1e-3, .seed = 1,
                    .data = CLNET_FASHION_MNIST_DIR };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "clnet-train: %s needs a value\n", a);                                 \
            return 0;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--device")) { VALUE(); o->device = v; }
        else if (!strcmp(a, "--epochs")) { VALUE(); o->epochs = atoi(v); }
        else if (!strcmp(a, "--batch-size")) { VALUE(); o->batch_size = atoi(v); }
        else if (!strcmp(a, "--lr")) { VALUE(); o->lr = atof(v); }
        else if (!strcmp(a, "--seed")) { VALUE(); o->seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--limit")) { VALUE(); o->limit = atol(v); }
        else if (!strcmp(a, "--data")) { VALUE(); o->data = v; }
        else if (!strcmp(a, "--save")) { VALUE(); o->save = v; }
        else if (!strcmp(a, "--load")) { VALUE(); o->load = v; }
        else if (!strcmp(a, "--eval-only")) o->eval_only = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (a[0] != '-' && !o->model) o->model = a;
        else {
            fprintf(stderr, "clnet-train: unknown argument \"%s\"\n", a);
            return 0;
        }
#undef VALUE
    }
    if (!o->model) {
        fprintf(stderr, "clnet-train: which model? (cnn)\n");
        return 0;
    }
    if (o->epochs < 0 || o->batch_size <= 0 || o->lr <= 0 || o->limit < 0) {
        fprintf(stderr, "clnet-train: --epochs >= 0, --batch-size > 0, --lr > 0, --limit >= 0\n");
        return 0;
    }
    if (o->eval_only && !o->load) {
        fprintf(stderr, "clnet-train: --eval-only needs --load FILE\n");
        return 0;
    }
    return 1;
}

/* The reference CNN (DESIGN.md). */
static clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out)
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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps the epoch's running loss and accuracy, and prints progress. */
typedef struct epoch_log {
    int quiet;
    double loss, accuracy;
} epoch_log;

static void on_progress(void *user, const clnet_progress *p)
{
    epoch_log *log = user;
    if (p->end_of_epoch) {
        log->loss = p->loss;
        log->accuracy = p->accuracy;
    }
    if (!log->quiet && !p->end_of_epoch)
        clnet_progress_print(stderr, p);
    else if (!log->quiet && p->end_of_epoch)
        fprintf(stderr, "\r\033[K");
}

static int fail(clnet_context *ctx, const char *what)
{
    fprintf(stderr, "clnet-train: %s: %s\n", what, clnet_context_errmsg(ctx));
    return 1;
}

static int train_cnn(clnet_context *ctx, const options *o)
{
    char err[2048];
    clnet_dataset *train = NULL, *test = NULL;
    if (clnet_dataset_load_mnist(o->data, "train", &train, err, sizeof err) ||
        clnet_dataset_load_mnist(o->data, "t10k", &test, err, sizeof err)) {
        fprintf(stderr, "clnet-train: %s\n(install the data with: apt-get install dataset-fashion-mnist)\n", err);
        clnet_dataset_free(train);
        return 1;
    }
    clnet_model *m = NULL;
    int rc = 1;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = (float)o->lr;
    if (build_cnn(ctx, o->seed, &m) || clnet_model_compile(m, &cp)) {
        rc = fail(ctx, "building the model");
        goto done;
    }
    if (!o->quiet)
        clnet_model_summary(m, stdout);
    if (o->load && clnet_model_load(m, o->load)) {
        rc = fail(ctx, "loading weights");
        goto done;
    }
    int64_t n = o->limit && (size_t)o->limit < train->count ? o->limit : (int64_t)train->count;
    clnet_dataset_view tv = { train->images, train->labels, n };
    clnet_dataset_view ev = { test->images, test->labels, (int64_t)test->count };
    printf("training on %lld images, testing on %lld, batch %d, %d epochs, Adam lr %g\n",
           (long long)n, (long long)test->count, o->batch_size, o->eval_only ? 0 : o->epochs, o->lr);
    fflush(stdout);
    double test_acc = 0, test_loss = 0;
    for (int e = 1; e <= (o->eval_only ? 0 : o->epochs); e++) {
        clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
        fp.epochs = 1;
        fp.batch_size = o->batch_size;
        fp.shuffle_seed = o->seed * 1000003ull + (unsigned long long)e;
        epoch_log log = { .quiet = o->quiet || !isatty(fileno(stderr)) };
        fp.progress = on_progress;
        fp.progress_user = &log;
        double t0 = now();
        if (clnet_model_fit(m, &fp, &tv)) {
            rc = fail(ctx, "training");
            goto done;
        }
        double secs = now() - t0;
        if (clnet_model_evaluate(m, &ev, 500, &test_loss, &test_acc)) {
            rc = fail(ctx, "evaluating");
            goto done;
        }
        printf("epoch %d/%d: loss %.4f, train accuracy %.4f, test loss %.4f, test accuracy %.4f, "
               "%.1f s (%.1f ms/step)\n",
               e, o->epochs, log.loss, log.accuracy, test_loss, test_acc, secs,
               1e3 * secs / (double)((n + o->batch_size - 1) / o->batch_size));
        fflush(stdout);
    }
    if (o->eval_only && clnet_model_evaluate(m, &ev, 500, &test_loss, &test_acc)) {
        rc = fail(ctx, "evaluating");
        goto done;
    }
    if (o->save) {
        if (clnet_model_save(m, o->save)) {
            rc = fail(ctx, "saving weights");
            goto done;
        }
        printf("saved weights to %s\n", o->save);
    }
    printf("test accuracy: %.4f\n", test_acc);
    rc = 0;
done:
    clnet_model_destroy(m);
    clnet_dataset_free(train);
    clnet_dataset_free(test);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (strcmp(o.model, "cnn") != 0) {
        fprintf(stderr, "clnet-train: unknown model \"%s\" (cnn)\n", o.model);
        return 2;
    }
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = o.device;
    clnet_context *ctx;
    if (clnet_context_create(&p, &ctx, err, sizeof err)) {
        fprintf(stderr, "clnet-train: %s\n", err);
        return 1;
    }
    const clnet_device_info *d = clnet_context_device(ctx);
    printf("clnet %s on %s (%s)\n", clnet_version(), d->name, d->platform_name);
    double t0 = now();
    int rc = train_cnn(ctx, &o);
    clnet_context_stats s;
    clnet_context_get_stats(ctx, &s);
    printf("total %.1f s, of which %.1f s building %llu kernels (%llu from the cache)\n", now() - t0,
           s.build_seconds, (unsigned long long)(s.programs_built + s.programs_loaded),
           (unsigned long long)s.programs_loaded);
    clnet_context_destroy(ctx);
    return rc;
}
