/* clnet example: a Keras user's sigmoid autoencoder with MSE on
 * Fashion-MNIST, 784 -> Dense(64, relu) -> Dense(784, sigmoid), Adam(1e-3),
 * batch 32, x / 255, one epoch in order (no shuffle), so that it can start
 * from the same weights as tools/peers/autoencoder_torch.py and be compared
 * with it (docs/losses.md):
 *
 *   /usr/bin/python3 tools/peers/autoencoder_torch.py --init ae.safetensors
 *   build/examples/autoencoder ae.safetensors [count]
 *
 * Without a weights file it starts from clnet's own initialization. */
#include <stdio.h>
#include <stdlib.h>

#include <clnet/clnet.h>

/* Keeps the epoch's running mean loss and prints the usual progress line. */
static void progress(void *user, const clnet_progress *p)
{
    if (p->end_of_epoch)
        *(double *)user = p->loss;
    clnet_progress_print(NULL, p);
}

static int fail(clnet_context *ctx, const char *what)
{
    fprintf(stderr, "autoencoder: %s: %s\n", what, clnet_context_errmsg(ctx));
    return 1;
}

int main(int argc, char **argv)
{
    const char *init = argc > 1 && argv[1][0] ? argv[1] : NULL;
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
    char err[2048];
    clnet_dataset *ds;
    if (clnet_dataset_load_mnist(CLNET_FASHION_MNIST_DIR, "train", &ds, err, sizeof err)) {
        fprintf(stderr, "autoencoder: %s\n", err);
        return 1;
    }
    if (count <= 0 || (size_t)count > ds->count)
        count = (long)ds->count;
    clnet_context *ctx;
    if (clnet_context_create(NULL, &ctx, err, sizeof err) != CLNET_OK) {
        fprintf(stderr, "autoencoder: %s\n", err);
        clnet_dataset_free(ds);
        return 1;
    }
    int rc = 1;
    clnet_model *m = NULL;
    clnet_dense_params enc = CLNET_DENSE_PARAMS_DEFAULT, dec = CLNET_DENSE_PARAMS_DEFAULT;
    enc.units = 64;
    enc.activation = CLNET_ACT_RELU;
    dec.units = 784;
    dec.activation = CLNET_ACT_SIGMOID;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.loss = CLNET_LOSS_MSE;
    cp.adam.lr = 1e-3f;
    if (clnet_model_create(ctx, 1, (int64_t[]){ 784 }, 1, &m) || clnet_model_add_dense(m, &enc) ||
        clnet_model_add_dense(m, &dec) || clnet_model_compile(m, &cp)) {
        rc = fail(ctx, "building the model");
        goto done;
    }
    if (init && clnet_model_load(m, init)) {
        rc = fail(ctx, "loading the initial weights");
        goto done;
    }
    /* The targets are the inputs. */
    clnet_dataset_view v = { ds->images, ds->images, count };
    double before, mae, after, running = 0;
    if (clnet_model_evaluate(m, &v, 256, &before, &mae)) {
        rc = fail(ctx, "evaluate");
        goto done;
    }
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.batch_size = 32;
    fp.shuffle = 0;
    fp.progress = progress;
    fp.progress_user = &running;
    if (clnet_model_fit(m, &fp, &v) || clnet_model_evaluate(m, &v, 256, &after, &mae)) {
        rc = fail(ctx, "training");
        goto done;
    }
    printf("autoencoder (clnet): %ld images, MSE before %.6f, after one epoch %.6f (epoch running "
           "mean %.6f, mae after %.6f)\n",
           count, before, after, running, mae);
    rc = 0;
done:
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    clnet_dataset_free(ds);
    return rc;
}
