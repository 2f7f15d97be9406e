/* clnet tools — the reference models, shared by clnet-train and clnet-bench. */
#ifndef CLNET_TOOLS_MODELS_H
#define CLNET_TOOLS_MODELS_H

#include <clnet/clnet.h>

/* Conv2D(32, 3x3, relu) on 1x28x28 > MaxPool 2x2 > Conv2D(64, 3x3, relu) >
 * MaxPool 2x2 > Flatten > Dense(64, relu) > Dense(10, softmax). Not compiled.
 * *out is caller-owned (clnet_model_destroy). */
clnet_status build_cnn(clnet_context *ctx, unsigned long long seed, clnet_model **out);

#endif
