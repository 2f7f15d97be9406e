/* clnet — graph models (Keras' functional API, in C): several inputs,
 * branches, merges, shared layers, several outputs, losses per output and
 * loss terms that layers add. A sequential model is the graph that is a
 * chain; both are one clnet_model, built and run by the same code
 * (docs/graph.md).
 *
 * The cursor. A model is a list of layer applications in the order they
 * were added; each consumes existing nodes and makes one new node (its
 * output). Every clnet_model_add_* of clnet/nn.h consumes "the cursor" and
 * moves it to the new layer's output. After clnet_model_create the cursor is
 * input 0. clnet_model_set_node moves it back to any node, so a branch is
 * built by remembering a node, adding layers, moving the cursor back and
 * adding more; the merge layers below take their inputs explicitly and move
 * the cursor to their output.
 *
 *     clnet_node x = clnet_model_node(m);            // the block's input
 *     clnet_model_add_conv2d(m, &conv);              // x -> conv -> bn -> relu
 *     clnet_model_add_batchnorm(m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f });
 *     clnet_model_add_activation(m, CLNET_ACT_RELU, 0);
 *     clnet_node both[2] = { x, clnet_model_node(m) };
 *     clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, both);   // cursor: x + f(x)
 *
 * The model's outputs are the last node added unless set_outputs says
 * otherwise. Building fails (and changes nothing: no half-built layer, the
 * cursor where it was) with CLNET_ERR_SHAPE naming the layer and the shapes
 * when inputs do not fit, CLNET_ERR_INVALID_ARG for a bad node or after
 * compile.
 *
 * Gradients where a node feeds several layers (or a shared layer) are
 * summed; the order of the sum is fixed (the reverse of the build order), so
 * results are deterministic.
 *
 * Thread-safety: as the model's context. */
#ifndef CLNET_GRAPH_H
#define CLNET_GRAPH_H

#include <stdint.h>

#include "merge.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A node: a value in the graph (an input or a layer application's output),
 * named by a small non-negative id that is valid for the model that made it.
 * Negative values are never nodes. */
typedef int clnet_node;

/* CLNET_MODEL_MAX_IO (clnet/nn.h) bounds the inputs and the outputs. */

/* ---- Nodes and the cursor ------------------------------------------------------ */

/* The cursor: the node the next add_* consumes. */
CLNET_API clnet_node clnet_model_node(const clnet_model *m);
/* Moves the cursor to `node` (a node of this model; CLNET_ERR_INVALID_ARG
 * otherwise). */
CLNET_API clnet_status clnet_model_set_node(clnet_model *m, clnet_node node);
/* Adds another input of `ndim` dims (without the batch dim, as
 * clnet_model_create's) and returns its node in *node (optional); the cursor
 * does not move. Inputs are numbered in the order made: input 0 is
 * clnet_model_create's. At most CLNET_MODEL_MAX_IO inputs. */
CLNET_API clnet_status clnet_model_add_input(clnet_model *m, int ndim, const int64_t *shape,
                                             clnet_node *node);
/* The number of inputs, and input `index`'s node (-1 when there is none). */
CLNET_API int clnet_model_input_count(const clnet_model *m);
CLNET_API clnet_node clnet_model_input(const clnet_model *m, int index);
/* A node's shape without the batch dim: returns ndim and fills shape; 0 for
 * a node that is not the model's. */
CLNET_API int clnet_model_node_shape(const clnet_model *m, clnet_node node,
                                     int64_t shape[CLNET_MAX_DIMS]);
/* The layer whose application made `node` (its index, as
 * clnet_model_layer_name takes), -1 for an input or a bad node. A shared
 * layer (clnet_model_reuse) makes several nodes. */
CLNET_API int clnet_model_node_layer(const clnet_model *m, clnet_node node);

/* ---- Merge layers ---------------------------------------------------------------- */

/* Add, Subtract, Multiply (Keras' layers of those names; clnet/merge.h):
 * n nodes of one shape (2 <= n <= CLNET_MERGE_MAX_INPUTS; n = 2 for
 * SUBTRACT) -> a node of that shape. A node may appear twice. No
 * parameters. */
CLNET_API clnet_status clnet_model_add_merge(clnet_model *m, clnet_merge_op op, int n,
                                             const clnet_node *nodes);
/* Concatenate along `axis` of the nodes' shapes WITHOUT the batch dim
 * (negative counts from the end: -1 is the last axis, Keras' default; for
 * NCHW images axis 0 is the channels). Every node has the same number of
 * dims and the same extents but along the axis. 1 <= n <=
 * CLNET_MERGE_MAX_INPUTS. */
CLNET_API clnet_status clnet_model_add_concat(clnet_model *m, int axis, int n,
                                              const clnet_node *nodes);
/* GlobalAveragePooling2D at the cursor: (batch, C, H, W) -> (batch, C). */
CLNET_API clnet_status clnet_model_add_global_avgpool2d(clnet_model *m);

/* Sampling (the VAE's reparameterization): z = mean + exp(logvar / 2) * eps,
 * eps ~ N(0, 1) from Philox (clnet_sampling_forward): a new eps every
 * training forward, from the model's seed, the layer and the count of
 * training forwards (as dropout's masks), so a seed gives the same numbers
 * on every device; an inference forward draws from the layer's stream with
 * the count 0 (the same eps for the same batch size every time). mean and
 * logvar are nodes of one shape (batch, ...); the output node has it too.
 *
 * The layer adds its KL divergence to N(0, I) as a loss term:
 *   kl_weight * mean over the batch of -0.5 * sum_j (1 + logvar - mean^2 -
 *   exp(logvar))
 * (the sum over the last axis: a row per sample for (batch, latent)).
 * Every forward computes it (clnet_model_extra_loss); train_on_batch,
 * fit and evaluate add it to the loss they report; clnet_model_backward
 * always adds its gradient to mean's and logvar's, whatever dlogits holds.
 * kl_weight >= 0 (0: no term). The layer cannot be shared
 * (clnet_model_reuse). */
CLNET_API clnet_status clnet_model_add_sampling(clnet_model *m, clnet_node mean, clnet_node logvar,
                                                float kl_weight);
/* Holds (1) or releases (0) every Sampling layer's eps: while held, a
 * forward reuses the eps the last forward drew when the batch size is the
 * same (another batch size draws again) instead of drawing new numbers.
 * For gradient checks and for evaluating a trained VAE on a fixed noise. */
CLNET_API clnet_status clnet_model_hold_noise(clnet_model *m, int hold);

/* A custom elementwise layer at the cursor from OpenCL C expressions
 * (clnet_custom_forward / clnet_custom_backward): y = fwd_expr in x, its
 * derivative bwd_expr in x and y, e.g. swish: "x / (1.0f + exp(-x))" and
 * "y + (1.0f - y) / (1.0f + exp(-x))". `name` is the layer's type in the
 * summary and the prefix of its name ("swish" -> "swish_1"): 1 to 23 bytes
 * of [A-Za-z0-9_]. The expressions are copied, at most CLNET_CUSTOM_EXPR_MAX
 * bytes each; one that does not compile fails in the first forward (or
 * backward) with CLNET_ERR_BUILD and the build log. The output has the
 * input's shape. No parameters. */
CLNET_API clnet_status clnet_model_add_expression(clnet_model *m, const char *name,
                                                  const char *fwd_expr, const char *bwd_expr);

/* ---- Shared layers ------------------------------------------------------------------ */

/* Applies layer `layer` (an index, as clnet_model_layer_index gives) again at
 * the cursor: the same parameters, a new output node (the cursor). The
 * cursor's shape must be the layer's input shape. Gradients of all its
 * applications are summed into its one gradient; summary, save, load,
 * param_count and the layer index see the layer once. Recurrent layers
 * and layers of several inputs cannot be reused (CLNET_ERR_UNSUPPORTED). A
 * shared Dropout draws the same mask in each application; a shared
 * BatchNormalization updates its running statistics in each training
 * application. */
CLNET_API clnet_status clnet_model_reuse(clnet_model *m, int layer);

/* ---- Outputs and losses --------------------------------------------------------------- */

/* Makes nodes[0..n-1] the model's outputs, in that order (1 <= n <=
 * CLNET_MODEL_MAX_IO, distinct nodes). Without this call the output is the
 * last node made. Outputs must be set before compile. */
CLNET_API clnet_status clnet_model_set_outputs(clnet_model *m, int n, const clnet_node *nodes);
CLNET_API int clnet_model_output_count(const clnet_model *m);
CLNET_API clnet_node clnet_model_output(const clnet_model *m, int index);

/* Several inputs and outputs, driven by hand. clnet_model_forward,
 * clnet_model_backward and train_on_batch of clnet/nn.h are these with one
 * input and one output; fit, evaluate and predict take models with one
 * input and one output only.
 *
 * forward_multi: x[i] is input i (nx = the input count). Training forwards
 * keep what backward needs and compute the layers' loss terms. */
CLNET_API clnet_status clnet_model_forward_multi(clnet_model *m, int nx,
                                                 const clnet_tensor *const *x, int training);
/* Output k of the last forward: *y its values, *logits (optional) the
 * values before a softmax or sigmoid that ends it (else *y), as
 * clnet_model_forward's. Borrowed: valid until the next forward. */
CLNET_API clnet_status clnet_model_output_tensor(clnet_model *m, int k, const clnet_tensor **y,
                                                 const clnet_tensor **logits);
/* Any node's values after the last forward (borrowed, as above); an input
 * node gives the caller's tensor. */
CLNET_API clnet_status clnet_model_node_tensor(clnet_model *m, clnet_node node,
                                               const clnet_tensor **value);
/* Backpropagates dlogits[k] (the gradient at output k's logits, as
 * clnet_model_backward's; ny = the output count; an entry may be NULL: no
 * gradient from that output) plus the gradients of the layers' loss terms.
 * dx (optional, nx = the input count when given) receives the gradient
 * with respect to each input (borrowed, valid until the next backward).
 * Overwrites the parameter gradients. */
CLNET_API clnet_status clnet_model_backward_multi(clnet_model *m, int ny,
                                                  const clnet_tensor *const *dlogits, int nx,
                                                  const clnet_tensor **dx);
/* One optimizer step with the compiled losses: forward (training) on x,
 * loss_weights[k] * loss_k(output k, y[k]) summed over the outputs plus the
 * layers' loss terms, backward, step. y[k] as train_on_batch's y for output
 * k's loss (NULL for an output whose loss is CLNET_LOSS_NONE). *loss
 * (optional) receives the total; reading it waits for the device. */
CLNET_API clnet_status clnet_model_train_on_batch_multi(clnet_model *m, int nx,
                                                        const clnet_tensor *const *x, int ny,
                                                        const clnet_tensor *const *y, double *loss);
/* The sum of the layers' weighted loss terms (the KL of Sampling layers) of
 * the last forward, 0 when it has none. Waits for the device. */
CLNET_API clnet_status clnet_model_extra_loss(clnet_model *m, double *loss);

#ifdef __cplusplus
}
#endif
#endif
