/* clnet tools — the reference models, shared by clnet-train and clnet-bench. */
#ifndef CLNET_TOOLS_MODELS_H
#define CLNET_TOOLS_MODELS_H

#include <clnet/clnet.h>

/* Conv2D(32, 3x3, relu) on 1x28x28 > MaxPool 2x2 > Conv2D(64, 3x3, relu) >
 * MaxPool 2x2 > Flatten > Dense(64, relu) > Dense(10, softmax). Not compiled.
 * *out is caller-owned (clnet_model_destroy). */
clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out);

/* Three recurrent layers of 64 units on (28 steps, 28 features) sequences,
 * the first two returning sequences, the third its last state, then
 * Dense(10, softmax): the reference LSTM stack (cell "lstm") or the same
 * with the simple tanh RNN (cell "rnn"). Any other cell name:
 * CLNET_ERR_INVALID_ARG. Not compiled. On success *out is caller-owned
 * (clnet_model_destroy); on failure NULL. */
clnet_status build_rnn_stack(clnet_context *ctx, const char *cell, unsigned long long seed,
                             clnet_model **out);

#endif
