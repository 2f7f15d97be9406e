/* clnet example: the README's model snippet. Builds a small CNN, prints its
 * summary and trains it for one epoch on random data (the README trains on
 * Fashion-MNIST with the same calls). */
#include <stdio.h>
#include <stdlib.h>

#include <clnet/clnet.h>

int main(void)
{
    char err[2048];
    clnet_context *ctx;
    if (clnet_context_create(NULL, &ctx, err, sizeof err) != CLNET_OK) {
        fprintf(stderr, "model: %s\n", err);
        return 1;
    }
    enum { COUNT = 256 };
    float *images = malloc(COUNT * 28 * 28 * sizeof *images);
    int32_t labels[COUNT];
    for (int i = 0; i < COUNT * 28 * 28; i++)
        images[i] = (float)(i % 255) / 255.0f;
    for (int i = 0; i < COUNT; i++)
        labels[i] = i % 10;

    clnet_model *m = NULL;
    clnet_status st = clnet_model_create(ctx, 3, (int64_t[]){ 1, 28, 28 }, /*seed*/ 1, &m);
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 32;
    c.activation = CLNET_ACT_RELU;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    clnet_fit_params fit = CLNET_FIT_PARAMS_DEFAULT;
    fit.progress = clnet_progress_print; /* the library itself never prints */
    if (!st)
        st = clnet_model_add_conv2d(m, &c);
    if (!st)
        st = clnet_model_add_maxpool2d(m, &CLNET_POOL2D_LAYER_PARAMS_DEFAULT);
    if (!st)
        st = clnet_model_add_flatten(m);
    if (!st)
        st = clnet_model_add_dense(m, &d);
    if (!st)
        st = clnet_model_compile(m, &CLNET_COMPILE_PARAMS_DEFAULT); /* Adam, sparse cross-entropy */
    if (!st)
        st = clnet_model_summary(m, stdout);
    if (!st)
        st = clnet_model_fit(m, &fit, &(clnet_dataset_view){ images, labels, COUNT });
    if (st)
        fprintf(stderr, "model: %s\n", clnet_context_errmsg(ctx));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    free(images);
    return st ? 1 : 0;
}
