/* clnet tests — the reference CNN, built with the public API, for the fault
 * and limit suites and the soak test (tools/models.c builds the same for the
 * tools; tests do not link tools/). */
#include "clnet/nn.h"

clnet_status faults_build_cnn(clnet_context *ctx, clnet_model **out);

/* The reference CNN (tools/models.c): Conv(32) > Pool > Conv(64) > Pool >
 * Flatten > Dense(64) > Dense(10, softmax). Shared with test-limits.c. */
clnet_status faults_build_cnn(clnet_context *ctx, clnet_model **out)
{
    int64_t in[3] = { 1, 28, 28 };
    clnet_status st = clnet_model_create(ctx, 3, in, 7, out);
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 32;
    c.activation = CLNET_ACT_RELU;
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, d2 = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 64;
    d1.activation = CLNET_ACT_RELU;
    d2.units = 10;
    d2.activation = CLNET_ACT_SOFTMAX;
    if (!st && !(st = clnet_model_add_conv2d(*out, &c)) &&
        !(st = clnet_model_add_maxpool2d(*out, &p))) {
        c.filters = 64;
        if (!(st = clnet_model_add_conv2d(*out, &c)) &&
            !(st = clnet_model_add_maxpool2d(*out, &p)) && !(st = clnet_model_add_flatten(*out)) &&
            !(st = clnet_model_add_dense(*out, &d1)))
            st = clnet_model_add_dense(*out, &d2);
    }
    return st;
}
