/* clnet tools — the reference models (DESIGN.md), built with the public
 * API; shared by clnet-train and clnet-bench. */
#include "models.h"

#include <string.h>

/* The reference CNN (DESIGN.md). */
clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out)
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

/* The reference recurrent stacks (DESIGN.md): three layers of 64 units on
 * (28 steps, 28 features), the first two returning sequences, then
 * Dense(10, softmax). cell: "lstm" or "rnn" (the simple tanh RNN); another
 * name gives CLNET_ERR_INVALID_ARG (nothing created, no message on ctx). */
clnet_status build_rnn_stack(clnet_context *ctx, const char *cell, unsigned long long seed,
                             clnet_model **out)
{
    *out = NULL;
    int lstm = !strcmp(cell, "lstm");
    if (!lstm && strcmp(cell, "rnn"))
        return CLNET_ERR_INVALID_ARG;
    int64_t in[2] = { 28, 28 };
    clnet_model *m;
    clnet_status st = clnet_model_create(ctx, 2, in, seed, &m);
    if (st)
        return st;
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 64;
    for (int i = 0; i < 3 && !st; i++) {
        p.return_sequences = i < 2;
        st = lstm ? clnet_model_add_lstm(m, &p) : clnet_model_add_simple_rnn(m, &p);
    }
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 10;
    d.activation = CLNET_ACT_SOFTMAX;
    if (!st)
        st = clnet_model_add_dense(m, &d);
    if (st) {
        clnet_model_destroy(m);
        return st;
    }
    *out = m;
    return CLNET_OK;
}
