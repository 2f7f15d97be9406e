/* clnet — layers and models (sequential, or graphs: clnet/graph.h): build
 * from an input shape with shape inference, train with fit / evaluate /
 * predict, or drive forward / backward / step by hand (two models for a
 * GAN).
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults.
 *
 * Errors (every fallible call here, unless its comment says more):
 * CLNET_ERR_INVALID_ARG for a NULL model or required pointer, a field or
 * argument out of its range, or a call out of order (training before
 * compile); CLNET_ERR_SHAPE when a layer does not fit its input shape, or
 * data or tensors do not fit the model; CLNET_ERR_UNSUPPORTED for an option
 * clnet does not implement; CLNET_ERR_HOST_MEMORY and the device statuses
 * (CLNET_ERR_DEVICE_MEMORY, CLNET_ERR_BUILD, CLNET_ERR_OPENCL) when an
 * allocation, a build or a launch fails; CLNET_ERR_IO and CLNET_ERR_FORMAT
 * for files (clnet_model_save, clnet_model_load, the training state);
 * CLNET_ERR_NUMERICS for a non-finite loss or gradient with
 * CLNET_CHECK_NUMERICS=1. The message (clnet_context_errmsg on the model's
 * context) names the function, and the layer where one is at fault. A
 * failed clnet_model_add_* leaves the model as it was. */
#ifndef CLNET_NN_H
#define CLNET_NN_H

#include <stdint.h>
#include <stdio.h>

#include "act.h"
#include "conv.h"
#include "data.h"
#include "norm.h"
#include "optim.h"
#include "pool.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model: layers applied to a batch, in order (a sequential model) or as a
 * graph of several inputs, branches and outputs (clnet/graph.h). The model
 * owns its layers, parameters, gradients, optimizer state and activation
 * buffers. Thread-safety: as its context. */
typedef struct clnet_model clnet_model;

/* Creates an empty model for inputs of `ndim` dims (without the batch dim),
 * e.g. {1, 28, 28} for NCHW images or {28, 28} for (T, F) sequences. seed
 * drives weight initialization and dropout. *out is caller-owned: free with
 * clnet_model_destroy. */
CLNET_API clnet_status clnet_model_create(clnet_context *ctx, int ndim, const int64_t *input_shape,
                                          uint64_t seed, clnet_model **out);
/* Frees the model and everything it owns; NULL is a no-op. */
CLNET_API void clnet_model_destroy(clnet_model *m);

/* ---- Layers ---------------------------------------------------------------
 * Each add appends a layer whose input is the cursor (clnet/graph.h): the
 * previous layer's output unless the cursor was moved; it infers
 * its output shape, creates and initializes its parameters, and fails with
 * CLNET_ERR_SHAPE naming the layer and both shapes if the input does not fit.
 * A failed add leaves the model as it was. */

typedef enum clnet_init {
    CLNET_INIT_GLOROT_UNIFORM = 0, /* Keras' default for kernels */
    CLNET_INIT_HE_UNIFORM,
    CLNET_INIT_HE_NORMAL,
    CLNET_INIT_ZEROS
} clnet_init;

typedef enum clnet_padding {
    CLNET_PADDING_VALID = 0, /* no padding */
    CLNET_PADDING_SAME,      /* Keras' 'same': output = ceil(input / stride) */
    CLNET_PADDING_EXPLICIT   /* the params' pad_top, pad_left, pad_bottom, pad_right
                              * (ONNX's and PyTorch's pads; Conv2D and pooling) */
} clnet_padding;

/* A layer's activation is any clnet_activation; CLNET_ACT_SOFTMAX is over
 * the feature axis, as Keras: the channels of NCHW images (a Conv2D's
 * output, an Activation layer on one), the last axis of (batch, features)
 * and (batch, steps, features). */

typedef struct clnet_dense_params {
    int units;
    clnet_activation activation; /* CLNET_ACT_NONE, RELU, ..., or CLNET_ACT_SOFTMAX */
    float alpha;                 /* leaky relu slope */
    int use_bias;
    clnet_init kernel_init;
} clnet_dense_params;
#define CLNET_DENSE_PARAMS_INIT                                                                    \
    {                                                                                              \
        .units = 1, .activation = CLNET_ACT_NONE, .alpha = 0.2f, .use_bias = 1,                    \
        .kernel_init = CLNET_INIT_GLOROT_UNIFORM                                                   \
    }
#define CLNET_DENSE_PARAMS_DEFAULT ((clnet_dense_params)CLNET_DENSE_PARAMS_INIT)

typedef struct clnet_conv2d_layer_params {
    int filters, kernel_h, kernel_w;
    int stride_h, stride_w, dilation_h, dilation_w;
    clnet_padding padding;
    clnet_activation activation;
    float alpha;
    int use_bias;
    clnet_init kernel_init;
    /* Conv2D only: 0 or 1 is the ordinary convolution; g > 1 splits channels
     * and filters into g groups (g divides both; filters == channels ==
     * groups is depthwise), kernel (filters, channels / g, kh, kw) as
     * PyTorch's Conv2d(groups=g) (clnet/conv_grouped.h). */
    int groups;
    /* CLNET_PADDING_EXPLICIT only (Conv2D, not Conv2DTranspose): zero
     * padding in rows and columns, each >= 0. */
    int pad_top, pad_left, pad_bottom, pad_right;
} clnet_conv2d_layer_params;
#define CLNET_CONV2D_LAYER_PARAMS_INIT                                                             \
    {                                                                                              \
        .filters = 1, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .dilation_h = 1, \
        .dilation_w = 1, .padding = CLNET_PADDING_VALID, .activation = CLNET_ACT_NONE,             \
        .alpha = 0.2f, .use_bias = 1, .kernel_init = CLNET_INIT_GLOROT_UNIFORM                     \
    }
#define CLNET_CONV2D_LAYER_PARAMS_DEFAULT                                                          \
    ((clnet_conv2d_layer_params)CLNET_CONV2D_LAYER_PARAMS_INIT)

typedef struct clnet_pool2d_layer_params {
    int window_h, window_w;
    int stride_h, stride_w; /* 0: the window size (Keras' default) */
    clnet_padding padding;
    /* CLNET_PADDING_EXPLICIT only: each >= 0 and smaller than the window.
     * Padded cells are ignored by max pooling; average pooling counts them
     * (as zeros) when count_include_pad is 1 (PyTorch's AvgPool2d default),
     * else divides by the input cells it covers (as 'same'). */
    int pad_top, pad_left, pad_bottom, pad_right;
    int count_include_pad;
} clnet_pool2d_layer_params;
#define CLNET_POOL2D_LAYER_PARAMS_INIT                                                             \
    {                                                                                              \
        .window_h = 2, .window_w = 2, .padding = CLNET_PADDING_VALID                               \
    }
#define CLNET_POOL2D_LAYER_PARAMS_DEFAULT                                                          \
    ((clnet_pool2d_layer_params)CLNET_POOL2D_LAYER_PARAMS_INIT)

/* Dense: inputs (batch, features), or (batch, steps, features) where it
 * applies to the last axis at every step (Keras' Dense, TimeDistributed;
 * PyTorch's Linear); use Flatten first for images. Kernel (units, features)
 * as PyTorch's Linear weight, bias (units). units >= 1. */
CLNET_API clnet_status clnet_model_add_dense(clnet_model *m, const clnet_dense_params *p);
/* Conv2D on NCHW: kernel (filters, in_channels, kh, kw), bias (filters). */
CLNET_API clnet_status clnet_model_add_conv2d(clnet_model *m, const clnet_conv2d_layer_params *p);
/* Conv2DTranspose on NCHW (the data gradient of a convolution): kernel
 * (in_channels, filters, kh, kw) as PyTorch's ConvTranspose2d, bias
 * (filters). 'same' padding gives output = input * stride (Keras), cropping
 * floor(t / 2) rows and columns at the top and left and ceil(t / 2) at the
 * bottom and right, t = extent - stride, extent = dilation * (k - 1) + 1.
 * In PyTorch: ConvTranspose2d(padding = t // 2), then y[..., :H * stride,
 * :W * stride] when t is odd (padding = t / 2 alone when even); for extent <
 * stride, padding 0 and output_padding = stride - extent (docs/weights.md). */
CLNET_API clnet_status clnet_model_add_conv2d_transpose(clnet_model *m,
                                                        const clnet_conv2d_layer_params *p);
/* UpSampling2D: nearest-neighbour, each pixel repeated size_h x size_w. */
CLNET_API clnet_status clnet_model_add_upsampling2d(clnet_model *m, int size_h, int size_w);
CLNET_API clnet_status clnet_model_add_maxpool2d(clnet_model *m,
                                                 const clnet_pool2d_layer_params *p);
CLNET_API clnet_status clnet_model_add_avgpool2d(clnet_model *m,
                                                 const clnet_pool2d_layer_params *p);
/* Flatten: (batch, ...) -> (batch, prod(...)); a view, no copy. */
CLNET_API clnet_status clnet_model_add_flatten(clnet_model *m);
/* Reshape: (batch, ...) -> (batch, shape...); one dim may be -1. A view. */
CLNET_API clnet_status clnet_model_add_reshape(clnet_model *m, int ndim, const int64_t *shape);
/* Activation as its own layer; alpha is leaky relu's slope. */
CLNET_API clnet_status clnet_model_add_activation(clnet_model *m, clnet_activation act,
                                                  float alpha);
/* Dropout: in training, zeroes each element with probability rate and scales
 * the rest by 1 / (1 - rate); identity in inference. */
CLNET_API clnet_status clnet_model_add_dropout(clnet_model *m, float rate);
/* BatchNormalization over channels (NCHW) or features ((batch, F)):
 * parameters gamma, beta; running_mean, running_var (not trained). p as
 * the op's (clnet/norm.h): momentum in PyTorch's sense (Keras' 0.99 is 0.01
 * here), NULL for PyTorch's defaults (eps 1e-5, momentum 0.1; Keras' are
 * eps 1e-3, momentum 0.01). */
CLNET_API clnet_status clnet_model_add_batchnorm(clnet_model *m, const clnet_batchnorm_params *p);

/* Recurrent layers on (batch, steps, features) sequences, PyTorch's cells,
 * gate orders and weight layouts (clnet/rnn.h): parameters weight_ih
 * (gates * units, features), weight_hh (gates * units, units), bias_ih,
 * bias_hh (gates * units), initialized uniform in +-1/sqrt(units) as PyTorch
 * does. Initial states are zero.
 * single_bias (SimpleRNN and LSTM): Keras' one bias instead of PyTorch's
 * two: the parameters are weight_ih, weight_hh and "bias" (gates * units,
 * starting at zero as in Keras), which the cell adds where PyTorch adds
 * bias_ih + bias_hh; the parameter count is then Keras's, e.g. LSTM
 * 4 * (units * (features + units) + units). A GRU keeps two biases (Keras'
 * default reset_after=True GRU has two as well): CLNET_ERR_INVALID_ARG.
 * unit_forget_bias (LSTM only, as in Keras): the forget gate's bias block
 * (rows units .. 2 units) starts at 1; with two biases bias_ih's block is 1
 * and bias_hh's 0. Other cells: CLNET_ERR_INVALID_ARG.
 * recurrent_dropout: 0, the default (and Keras'): no dropout is applied to
 * the recurrent state. Nonzero values are refused (CLNET_ERR_UNSUPPORTED):
 * it is not implemented. */
typedef struct clnet_rnn_layer_params {
    int units;
    int return_sequences;    /* output (batch, steps, units); else the last state */
    int return_state;        /* keep the final states: clnet_model_rnn_state */
    int single_bias;         /* 0: bias_ih and bias_hh (PyTorch); 1: one bias (Keras) */
    int unit_forget_bias;    /* LSTM: the forget gate's bias starts at 1 */
    float recurrent_dropout; /* must be 0 */
} clnet_rnn_layer_params;
#define CLNET_RNN_LAYER_PARAMS_INIT                                                                \
    {                                                                                              \
        .units = 1, .single_bias = 0, .unit_forget_bias = 0, .recurrent_dropout = 0.0f             \
    }
#define CLNET_RNN_LAYER_PARAMS_DEFAULT ((clnet_rnn_layer_params)CLNET_RNN_LAYER_PARAMS_INIT)

CLNET_API clnet_status clnet_model_add_simple_rnn(clnet_model *m, const clnet_rnn_layer_params *p);
CLNET_API clnet_status clnet_model_add_lstm(clnet_model *m, const clnet_rnn_layer_params *p);
CLNET_API clnet_status clnet_model_add_gru(clnet_model *m, const clnet_rnn_layer_params *p);
/* The final states of a recurrent layer added with return_state, from the
 * last forward: *h (batch, units), *c (LSTM only; NULL otherwise). Borrowed:
 * valid until the next forward. */
CLNET_API clnet_status clnet_model_rnn_state(const clnet_model *m, int layer,
                                             const clnet_tensor **h, const clnet_tensor **c);

/* ---- Inspection ------------------------------------------------------------- */

CLNET_API int clnet_model_layer_count(const clnet_model *m);
/* Output shape of the whole model (without batch); returns ndim. */
CLNET_API int clnet_model_output_shape(const clnet_model *m, int64_t shape[CLNET_MAX_DIMS]);
/* Number of parameters (trainable and not). */
CLNET_API size_t clnet_model_param_count(const clnet_model *m);
/* The model's name, as the summary's first line prints it. A new model is
 * called "sequential", later ones on the same context "sequential_1",
 * "sequential_2", ... (Keras' names); set_name replaces it with a copy of
 * name: 1 to CLNET_MODEL_NAME_MAX - 1 bytes, no control characters or
 * quotes (CLNET_ERR_INVALID_ARG). clnet_model_name's result is borrowed:
 * valid until the next set_name or destroy. */
#define CLNET_MODEL_NAME_MAX 64
CLNET_API clnet_status clnet_model_set_name(clnet_model *m, const char *name);
CLNET_API const char *clnet_model_name(const clnet_model *m);
/* Writes a Keras-style summary table (layer, output shape, parameter count)
 * to f; the columns widen to fit long layer names and shapes. */
CLNET_API clnet_status clnet_model_summary(const clnet_model *m, FILE *f);
/* Freezes (0) or unfreezes (1) layer i's parameters: a frozen layer still
 * passes gradients to its input but its weights never change: backward
 * computes no gradients for its parameters, step skips them, and a frozen
 * BatchNormalization in a training forward normalizes with the batch
 * statistics but leaves its running statistics as they are. */
CLNET_API clnet_status clnet_model_set_trainable(clnet_model *m, int layer, int trainable);
/* The same for every layer at once: e.g. a GAN's discriminator, frozen while
 * the generator trains through it (clnet_model_backward's dx), unfrozen for
 * its own step. */
CLNET_API clnet_status clnet_model_set_all_trainable(clnet_model *m, int trainable);

/* ---- Training ----------------------------------------------------------------- */

/* The loss, and how it meets the output activation (docs/losses.md). One
 * rule, the same for an activation fused in the last Dense / Conv2D /
 * Conv2DTranspose and for a separate Activation layer as the last layer:
 *
 * - from_logits = 0 (default): the model outputs probabilities. The
 *   cross-entropy losses need the activation that makes them: softmax for
 *   (sparse) categorical CE, sigmoid for binary CE. That pair is computed as
 *   one stable loss from the logits (the values before the activation):
 *   mathematically the same function, what predict returns is still the
 *   probabilities.
 * - from_logits = 1: the model outputs raw scores (no output activation) and
 *   the loss applies softmax / sigmoid itself.
 * - MSE is computed on what the model outputs, through any activation (the
 *   chain rule included); from_logits does not apply to it.
 *
 * Every other pair (relu, tanh, leaky relu or no activation with a
 * cross-entropy and from_logits = 0; sigmoid with categorical CE; softmax with
 * binary CE; any activation with from_logits = 1) is refused by compile with
 * CLNET_ERR_INVALID_ARG and a message that names the layer, says why and what
 * to write instead.
 *
 * Metrics (train_on_batch's, fit's and evaluate's `accuracy`, a mean over the
 * samples): sparse CE: the fraction of samples whose output argmax (first
 * maximum) is the label; categorical CE: the fraction whose output argmax is
 * the target's argmax; binary CE: per sample the fraction of outputs on the
 * target's side of the threshold (output > 0.5, or > 0 with from_logits;
 * target > 0.5), as Keras' binary_accuracy; MSE: the mean absolute error
 * (Keras' "mae"), not an accuracy. */
typedef enum clnet_loss_kind {
    CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY = 0, /* int32 labels in [0, classes) */
    CLNET_LOSS_CATEGORICAL_CROSSENTROPY,            /* one-hot / probability targets */
    CLNET_LOSS_BINARY_CROSSENTROPY,                 /* float targets in [0, 1] */
    CLNET_LOSS_MSE,
    CLNET_LOSS_NONE /* optimizer only: a custom loop computes
                     * the loss (forward / backward / step);
                     * fit, evaluate, train_on_batch refuse */
} clnet_loss_kind;

/* How a loss reduces over a sample's features (clnet_compile_params). */
typedef enum clnet_reduction {
    CLNET_REDUCTION_MEAN = 0, /* mean over the features (and the batch) */
    CLNET_REDUCTION_SUM       /* sum over the features, mean over the batch */
} clnet_reduction;

/* The most inputs, and the most outputs, one model has (clnet/graph.h). */
#define CLNET_MODEL_MAX_IO 8

typedef enum clnet_optimizer {
    CLNET_OPTIMIZER_ADAM = 0,
    CLNET_OPTIMIZER_SGD,
    CLNET_OPTIMIZER_RMSPROP
} clnet_optimizer;

typedef struct clnet_compile_params {
    clnet_optimizer optimizer;
    clnet_adam_params adam;
    clnet_sgd_params sgd;
    clnet_rmsprop_params rmsprop;
    clnet_loss_kind loss;
    float clip_norm; /* > 0: clip gradients by global norm */
    int from_logits; /* cross-entropy losses: the output is raw scores */
    /* MSE and binary CE: over each sample's features, the mean (0, as before)
     * or the sum (a VAE's reconstruction term); the batch is always averaged.
     * Other losses take CLNET_REDUCTION_MEAN only. */
    clnet_reduction reduction;
    /* Graph models (clnet/graph.h): 0 = `loss` on the one output, weight 1;
     * else the number of outputs, output k taking losses[k] weighted by
     * loss_weights[k] (>= 0), from_logits and reduction for all. */
    int nlosses;
    clnet_loss_kind losses[CLNET_MODEL_MAX_IO];
    float loss_weights[CLNET_MODEL_MAX_IO];
} clnet_compile_params;
#define CLNET_COMPILE_PARAMS_INIT                                                                  \
    {                                                                                              \
        .optimizer = CLNET_OPTIMIZER_ADAM, .adam = CLNET_ADAM_PARAMS_INIT,                         \
        .sgd = CLNET_SGD_PARAMS_INIT, .rmsprop = CLNET_RMSPROP_PARAMS_INIT,                        \
        .loss = CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY                                         \
    }
#define CLNET_COMPILE_PARAMS_DEFAULT ((clnet_compile_params)CLNET_COMPILE_PARAMS_INIT)

/* Chooses the optimizer and the loss; creates optimizer state. Fails with
 * CLNET_ERR_INVALID_ARG when the output activation and the loss do not go
 * together (the rule above), CLNET_ERR_SHAPE when sparse CE meets an output
 * that is not (batch, classes). */
CLNET_API clnet_status clnet_model_compile(clnet_model *m, const clnet_compile_params *p);

/* What fit reports, once per step and once per epoch. */
typedef struct clnet_progress {
    int epoch, epochs;             /* 1-based */
    int64_t step, steps;           /* 1-based within the epoch */
    double loss, accuracy;         /* running means over the epoch so far; accuracy is
                                    * the loss's metric (clnet_loss_kind), named by metric */
    double elapsed, eta;           /* seconds */
    int end_of_epoch;              /* 1 on the epoch's last call */
    double val_loss, val_accuracy; /* end of epoch, with validation data; else -1 */
    const char *metric;            /* what accuracy holds: "accuracy" or "mae" */
} clnet_progress;

typedef void (*clnet_progress_fn)(void *user, const clnet_progress *p);

/* A ready-made progress printer: a live line on a terminal (user = the FILE*,
 * NULL for stderr), one line per epoch otherwise. The library itself never
 * prints; pass this as fit's progress callback to get Keras-like output. */
CLNET_API void clnet_progress_print(void *user, const clnet_progress *p);

/* Samples for fit and evaluate: borrowed host arrays. A loaded dataset
 * (clnet/data.h) gives one with clnet_dataset_view_of. */
typedef struct clnet_dataset_view {
    const float *x; /* count * prod(input_shape) floats */
    const void *y;  /* int32 labels in [0, classes) (sparse CE) or floats
                     * (count * prod(output)) */
    int64_t count;
} clnet_dataset_view;

/* The whole of ds as a view: x its images, y its int32 labels, count its
 * count (set a smaller count to use the first samples only). The view
 * borrows ds's arrays: keep ds until the view is no longer used. NULL ds
 * gives an empty view (count 0, which fit and evaluate refuse). */
CLNET_API clnet_dataset_view clnet_dataset_view_of(const clnet_dataset *ds);

/* clnet/history.h and clnet/callbacks.h. */
typedef struct clnet_history clnet_history;
typedef struct clnet_callback clnet_callback;

typedef struct clnet_fit_params {
    int epochs;
    int batch_size;
    uint64_t shuffle_seed;                /* order of samples each epoch */
    int shuffle;                          /* nonzero: reshuffle every epoch */
    const clnet_dataset_view *validation; /* optional */
    clnet_progress_fn progress;           /* optional; e.g. clnet_progress_print */
    void *progress_user;
    /* Without `validation`: in [0, 1), the last fraction of the samples
     * (before shuffling, as Keras) is held out and used as validation data. */
    double validation_split;
    int validation_batch_size; /* validation's batch size; <= 0: batch_size */
    /* Epochs already done (0..epochs): fit runs epochs initial_epoch + 1 ..
     * epochs, with the sample orders an uninterrupted fit would use there
     * (clnet_model_load_training_state). */
    int initial_epoch;
    clnet_history *history;          /* optional: fit appends a row per epoch (borrowed) */
    const clnet_callback *callbacks; /* optional: ncallbacks hooks, called in order (borrowed) */
    int ncallbacks;
} clnet_fit_params;
#define CLNET_FIT_PARAMS_INIT                                                                      \
    {                                                                                              \
        .epochs = 1, .batch_size = 32, .shuffle_seed = 1, .shuffle = 1                             \
    }
#define CLNET_FIT_PARAMS_DEFAULT ((clnet_fit_params)CLNET_FIT_PARAMS_INIT)

/* Trains on the host arrays in data. A sparse label outside [0, classes)
 * fails with CLNET_ERR_INVALID_ARG naming the sample, before any step.
 * Each epoch: the callbacks' epoch_begin (a schedule sets the learning
 * rate), the steps (batch_end after each), validation, progress, epoch_end,
 * then the history row (docs/training.md). */
CLNET_API clnet_status clnet_model_fit(clnet_model *m, const clnet_fit_params *p,
                                       const clnet_dataset_view *data);
/* Mean loss and the loss's metric in *accuracy (see clnet_loss_kind: accuracy for
 * the cross-entropy losses, the mean absolute error for MSE). */
CLNET_API clnet_status clnet_model_evaluate(clnet_model *m, const clnet_dataset_view *data,
                                            int batch_size, double *loss, double *accuracy);
/* Writes count * prod(output shape) floats of model outputs (probabilities
 * after a softmax or sigmoid output) to out. */
CLNET_API clnet_status clnet_model_predict(clnet_model *m, const float *x, int64_t count,
                                           int batch_size, float *out);
/* One optimizer step on a batch given as device tensors: x (batch, input...),
 * y int32 (batch) or float (batch, output...). loss/accuracy (the loss's
 * metric, as evaluate) may be NULL; reading them waits for the device. With
 * sparse CE a label outside [0, classes) makes the loss NaN and its sample's
 * gradient 0; when the loss is read and is NaN, the labels are read back and
 * such a label fails with CLNET_ERR_INVALID_ARG naming the sample (the step
 * has been taken without that sample). */
CLNET_API clnet_status clnet_model_train_on_batch(clnet_model *m, const clnet_tensor *x,
                                                  const clnet_tensor *y, double *loss,
                                                  double *accuracy);

/* ---- Custom loops ---------------------------------------------------------------
 * forward keeps what backward needs; backward takes the gradient of the loss
 * with respect to the model's logits (see clnet_model_forward's `logits`) and
 * accumulates nothing: it overwrites the parameter gradients. step applies
 * the optimizer to trainable layers. A model driven only this way compiles
 * with CLNET_LOSS_NONE. */

/* Runs a model of one input and one output (else CLNET_ERR_INVALID_ARG: see
 * clnet_model_forward_multi) on x (batch, input...). *y is borrowed: valid until the next
 * forward. When the output activation is softmax or sigmoid (fused in the last
 * layer or a separate Activation layer as the last layer), *y holds the
 * probabilities and *logits (optional) the values before that activation;
 * otherwise *logits is *y. */
CLNET_API clnet_status clnet_model_forward(clnet_model *m, const clnet_tensor *x, int training,
                                           const clnet_tensor **y, const clnet_tensor **logits);
/* Backpropagates dlogits (the gradient at the logits, i.e. before an output
 * softmax/sigmoid, fused or a separate Activation layer; at the output
 * otherwise). *dx (optional) receives the
 * gradient with respect to the model's input (borrowed, valid until the next
 * backward). Frozen layers' gradients are not computed. */
CLNET_API clnet_status clnet_model_backward(clnet_model *m, const clnet_tensor *dlogits,
                                            const clnet_tensor **dx);
/* Applies the optimizer to every trainable parameter. */
CLNET_API clnet_status clnet_model_step(clnet_model *m);

/* ---- Weights ------------------------------------------------------------------------ */

/* Saves every parameter (running statistics too) as safetensors, names
 * "layers.<i>.<param>" (docs/weights.md), atomically. */
CLNET_API clnet_status clnet_model_save(const clnet_model *m, const char *path);
/* Loads a file saved by clnet_model_save (or converted from PyTorch): every
 * parameter must be present with its exact shape and dtype F32. */
CLNET_API clnet_status clnet_model_load(clnet_model *m, const char *path);

/* Parameters in memory. A parameter is named by its layer's index and its
 * name within the layer, the names of the weight files without the
 * "layers.<i>." prefix ("kernel", "bias", "gamma", "running_mean",
 * "weight_ih", ...: docs/weights.md), in PyTorch's layouts. An unknown layer
 * or name fails with CLNET_ERR_INVALID_ARG naming the layer's parameters.
 * Gradients exist for trained parameters only (not running statistics) and
 * hold what the last backward wrote (undefined before the first; a frozen
 * layer's are not computed); one set before clnet_model_step is what the
 * step applies. Setting a parameter leaves the optimizer's state as it is. */

/* The index of the layer called `name` ("dense_1", as the summary prints it);
 * *index is -1 and CLNET_ERR_INVALID_ARG when there is none. */
CLNET_API clnet_status clnet_model_layer_index(const clnet_model *m, const char *name, int *index);
/* Layer i's name; borrowed, valid until the model is destroyed; NULL when i
 * is out of range. */
CLNET_API const char *clnet_model_layer_name(const clnet_model *m, int layer);
/* The parameter's (or its gradient's) device tensor. Borrowed: valid until
 * the model is destroyed; writing to it (clnet_tensor_upload, ops) changes
 * the model. */
CLNET_API clnet_status clnet_model_param(clnet_model *m, int layer, const char *name,
                                         clnet_tensor **value);
CLNET_API clnet_status clnet_model_grad(clnet_model *m, int layer, const char *name,
                                        clnet_tensor **grad);
/* Copies the parameter (or gradient) to dst, which holds count floats: count
 * must equal its element count (CLNET_ERR_SHAPE naming the shape otherwise).
 * Waits for queued work. */
CLNET_API clnet_status clnet_model_get_param(const clnet_model *m, int layer, const char *name,
                                             float *dst, size_t count);
CLNET_API clnet_status clnet_model_get_grad(const clnet_model *m, int layer, const char *name,
                                            float *dst, size_t count);
/* Copies src, a row-major array of the given shape, into the parameter (or
 * gradient). The shape must be the parameter's exactly (CLNET_ERR_SHAPE
 * naming both otherwise; a transposed Keras kernel is called so). */
CLNET_API clnet_status clnet_model_set_param(clnet_model *m, int layer, const char *name, int ndim,
                                             const int64_t *shape, const float *src);
CLNET_API clnet_status clnet_model_set_grad(clnet_model *m, int layer, const char *name, int ndim,
                                            const int64_t *shape, const float *src);

#ifdef __cplusplus
}
#endif
#endif
