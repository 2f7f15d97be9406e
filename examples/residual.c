/* clnet example: a small residual network through the graph API
 * (clnet/graph.h, docs/graph.md), trained one epoch on Fashion-MNIST:
 *
 *   Conv2D(16, 3, same, relu)
 *   2 x residual block: x -> Conv2D(16, 3, same) -> BatchNorm -> ReLU
 *                         -> Conv2D(16, 3, same) -> BatchNorm -> Add(x) -> ReLU
 *   MaxPool 2x2 between the blocks, GlobalAveragePooling2D, Dense(10, softmax)
 *
 *   build/examples/residual [--limit N] [--test N]
 *
 * --limit trains on the first N training images (default 6000), --test
 * evaluates on the first N test images (default 2000). Prints the summary,
 * the epoch's progress and `test accuracy: X`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clnet/clnet.h>

/* x -> conv -> bn -> relu -> conv -> bn, + x, relu: the block's output is
 * the cursor afterwards. */
/* BatchNormalization's momentum: PyTorch's 0.1. Keras' 0.99 (0.01 here)
 * leaves the running statistics that inference uses far from the data's
 * after the few hundred steps of one short epoch. */
#define BN_MOMENTUM 0.1f

static clnet_status residual_block(clnet_model *m, int filters)
{
    clnet_node x = clnet_model_node(m);
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = filters;
    c.padding = CLNET_PADDING_SAME;
    clnet_status st;
    if ((st = clnet_model_add_conv2d(m, &c)) ||
        (st = clnet_model_add_batchnorm(
             m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = BN_MOMENTUM })) ||
        (st = clnet_model_add_activation(m, CLNET_ACT_RELU, 0)) ||
        (st = clnet_model_add_conv2d(m, &c)) ||
        (st = clnet_model_add_batchnorm(
             m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = BN_MOMENTUM })))
        return st;
    clnet_node sum[2] = { x, clnet_model_node(m) };
    if ((st = clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, sum)))
        return st;
    return clnet_model_add_activation(m, CLNET_ACT_RELU, 0);
}

static clnet_status build(clnet_model *m)
{
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 16;
    c.padding = CLNET_PADDING_SAME;
    c.activation = CLNET_ACT_RELU;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    clnet_status st;
    if ((st = clnet_model_add_conv2d(m, &c)) || (st = residual_block(m, 16)) ||
        (st = clnet_model_add_maxpool2d(m, &CLNET_POOL2D_LAYER_PARAMS_DEFAULT)) ||
        (st = residual_block(m, 16)) || (st = clnet_model_add_global_avgpool2d(m)) ||
        (st = clnet_model_add_dense(m, &d)))
        return st;
    return clnet_model_compile(m, &CLNET_COMPILE_PARAMS_DEFAULT); /* Adam, sparse CE */
}

int main(int argc, char **argv)
{
    long limit = 6000, test = 2000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--limit"))
            limit = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--test"))
            test = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: residual [--limit N] [--test N]\n");
            return 2;
        }
    }
    char err[2048];
    clnet_dataset *train = NULL, *t10k = NULL;
    if (clnet_dataset_load_mnist(CLNET_FASHION_MNIST_DIR, "train", &train, err, sizeof err) ||
        clnet_dataset_load_mnist(CLNET_FASHION_MNIST_DIR, "t10k", &t10k, err, sizeof err)) {
        fprintf(stderr, "residual: %s\n", err);
        clnet_dataset_free(train);
        return 1;
    }
    if (limit <= 0 || (size_t)limit > train->count)
        limit = (long)train->count;
    if (test <= 0 || (size_t)test > t10k->count)
        test = (long)t10k->count;
    clnet_context *ctx;
    if (clnet_context_create(NULL, &ctx, err, sizeof err) != CLNET_OK) {
        fprintf(stderr, "residual: %s\n", err);
        clnet_dataset_free(train);
        clnet_dataset_free(t10k);
        return 1;
    }
    clnet_model *m = NULL;
    clnet_fit_params fit = CLNET_FIT_PARAMS_DEFAULT;
    fit.progress = clnet_progress_print;
    double loss, acc;
    clnet_status st = clnet_model_create(ctx, 3, (int64_t[]){ 1, 28, 28 }, /*seed*/ 1, &m);
    if (!st && !(st = build(m)) && !(st = clnet_model_summary(m, stdout)) &&
        !(st = clnet_model_fit(m, &fit,
                               &(clnet_dataset_view){ train->images, train->labels, limit })) &&
        !(st = clnet_model_evaluate(m, &(clnet_dataset_view){ t10k->images, t10k->labels, test },
                                    256, &loss, &acc)))
        printf("test loss: %.4f\ntest accuracy: %.4f\n", loss, acc);
    if (st)
        fprintf(stderr, "residual: %s\n", clnet_context_errmsg(ctx));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    clnet_dataset_free(train);
    clnet_dataset_free(t10k);
    return st ? 1 : 0;
}
