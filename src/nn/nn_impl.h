/* clnet — layers and models, private to src/nn. A layer is a small vtable
 * over the primitives; the model owns activation buffers sized for the
 * largest batch seen and hands each layer batch-sized views of them. */
#ifndef CLNET_NN_IMPL_H
#define CLNET_NN_IMPL_H

#include "clnet/act.h"
#include "clnet/conv.h"
#include "clnet/gemm.h"
#include "clnet/loss.h"
#include "clnet/nn.h"
#include "clnet/norm.h"
#include "clnet/ops.h"
#include "clnet/optim.h"
#include "clnet/pool.h"
#include "runtime/runtime.h"

#define CLNET__MAX_PARAMS 4
#define CLNET__MAX_EXTRA 4

typedef struct clnet__param {
    char name[24];                     /* "kernel", "bias", "gamma", "running_mean", ... */
    clnet_tensor *value, *grad;        /* grad is NULL for state that is not trained */
    clnet_tensor *m, *v;               /* optimizer state, created by compile */
} clnet__param;

typedef struct clnet__layer clnet__layer;

/* Per-batch views handed to a layer: its input and output, their gradients,
 * and views of the layer's own batch-sized buffers. */
typedef struct clnet__io {
    const clnet_tensor *x;
    clnet_tensor *y;
    const clnet_tensor *dy;            /* backward */
    clnet_tensor *dx;                  /* backward; NULL when nobody needs it */
    clnet_tensor *pre, *dpre;          /* pre-activation and its gradient, if the layer has them */
    int dy_is_pre;                     /* dy already is the gradient at the pre-activation */
} clnet__io;

typedef struct clnet__layer_ops {
    const char *type;                  /* "Dense", as the summary prints it */
    /* The output is a view of the input (Flatten, Reshape): no buffers, no work. */
    int is_view;
    clnet_status (*forward)(clnet__layer *l, clnet__io *io, int training);
    clnet_status (*backward)(clnet__layer *l, clnet__io *io);
} clnet__layer_ops;

struct clnet__layer {
    const clnet__layer_ops *ops;
    clnet_model *model;
    int index;
    char name[32];
    int in_ndim, out_ndim;
    int64_t in_shape[CLNET_MAX_DIMS], out_shape[CLNET_MAX_DIMS];
    int trainable;
    int nparams;
    clnet__param params[CLNET__MAX_PARAMS];
    /* Fused activation of Dense and Conv2D (or the Activation layer's). */
    clnet_activation act;
    float alpha;
    int has_pre;                       /* keeps a pre-activation buffer */
    /* Per-type configuration. */
    clnet_conv2d_params conv;
    clnet_pool2d_params pool;
    float rate;                        /* dropout */
    clnet_batchnorm_params bn;
    /* Batch-sized buffers (max batch), and this batch's views of them. */
    clnet_tensor *pre_buf, *dpre_buf, *save_mean, *save_invstd;
    clnet_tensor *pre, *dpre;
    /* More batch-sized buffers a layer asks for: `shape` is one row's shape
     * (without the batch dim); the model allocates and binds them. */
    int nextra;
    struct {
        clnet_dtype dtype;             /* CLNET_F32 unless set */
        int ndim;
        int64_t shape[CLNET_MAX_DIMS];
        clnet_tensor *buf, *view;
    } extra[CLNET__MAX_EXTRA];
    /* Dense on sequences: cached 2-D views of its operands (layers.c). */
    clnet_tensor *mat[4];
    /* Recurrent layers. */
    int cell;                          /* 1 RNN, 4 LSTM, 3 GRU (gate blocks) */
    int return_sequences, return_state;
    /* Keras' single bias: the one "bias" parameter is b_ih; b_hh is zeros and
     * its gradient (equal to b_ih's for these cells) goes to a spare. */
    clnet_tensor *zero_bias, *spare_dbias;
};

/* Hooks for data-parallel training (src/dist); unused members are NULL.
 * grads_ready runs in clnet_model_backward right after layer `layer` has
 * written its parameter gradients (the last layer first); before_step runs
 * first thing in clnet_model_step, before clipping. A status other than
 * CLNET_OK stops the call and is returned (the hook records the message). */
typedef struct clnet__model_hooks {
    clnet_status (*grads_ready)(void *user, clnet_model *m, int layer);
    clnet_status (*before_step)(void *user, clnet_model *m);
    void *user;
} clnet__model_hooks;

struct clnet_model {
    clnet_context *ctx;
    char name[CLNET_MODEL_NAME_MAX];   /* as the summary prints it */
    uint64_t seed;
    int in_ndim;
    int64_t in_shape[CLNET_MAX_DIMS];
    int nlayers, cap_layers;
    clnet__layer **layers;

    /* Activations: acts[0] is the input, acts[i + 1] layer i's output; grads
     * likewise. *_buf are sized for max_batch; acts/grads are views for the
     * current batch. */
    int64_t max_batch, batch;
    clnet_tensor **act_buf, **grad_buf, **acts, **grads;
    const clnet_tensor *input;         /* the caller's x of the last forward */

    int trained_forward;               /* the last forward ran in training mode */
    int compiled;
    int check_numerics;                /* CLNET_CHECK_NUMERICS at creation (numerics.c) */
    clnet_compile_params compile;
    int64_t step_count;                /* optimizer steps taken (Adam's t) */
    uint64_t dropout_calls;            /* distinct dropout masks */

    /* One-element results of the last loss and accuracy, and accumulators. */
    clnet_tensor *loss, *correct, *loss_sum, *correct_sum;
    clnet_tensor *dlogits_buf, *dlogits;

    clnet__model_hooks hooks;
};

/* layers.c */
clnet_status clnet__layer_new(clnet_model *m, const clnet__layer_ops *ops, const char *prefix,
                              int out_ndim, const int64_t *out_shape, clnet__layer **out);
clnet_status clnet__param_add(clnet__layer *l, const char *name, int ndim, const int64_t *shape,
                              int trained);
clnet_status clnet__param_init(clnet__layer *l, int i, clnet_init init, double fan_in,
                               double fan_out);
void clnet__layer_free(clnet__layer *l);
/* The activation a layer applies last: the fused one of Dense, Conv2D and
 * Conv2DTranspose, an Activation layer's; CLNET_ACT_NONE for other layers. */
int clnet__layer_output_act(const clnet__layer *l);
/* Softmax over a layer's feature axis: the channels when its output is NCHW
 * (out_ndim 3), else the last axis. */
clnet_status clnet__softmax_forward(const clnet__layer *l, const clnet_tensor *x, clnet_tensor *y);
clnet_status clnet__softmax_backward(const clnet__layer *l, const clnet_tensor *y,
                                     const clnet_tensor *dy, clnet_tensor *dx);

/* model.c: (re)binds activation views for a batch of `batch` rows. */
clnet_status clnet__model_bind(clnet_model *m, int64_t batch);
/* The logits: when the output activation is softmax or sigmoid (fused in the
 * last layer or a separate Activation layer), the values before it; else the
 * output. */
const clnet_tensor *clnet__model_logits(const clnet_model *m);
/* The output activation (clnet__layer_output_act of the last layer). */
int clnet__model_output_act(const clnet_model *m);
/* The loss's metric (accuracy, or the MAE for MSE): its name, and the factor
 * that turns m->correct after a batch of n samples into the batch's sum of
 * per-sample metrics (src/nn/train.c; the data-parallel fit uses them too). */
double clnet__model_metric_scale(const clnet_model *m, int64_t n);
const char *clnet__model_metric_name(const clnet_model *m);

/* train.c: the sample order fit uses for an epoch: 0..n-1, shuffled
 * (Fisher-Yates on splitmix64, continuing *state) when shuffle is nonzero.
 * The same seed gives the same order anywhere. */
void clnet__sample_order(int32_t *order, int64_t n, int shuffle, uint64_t *state);

/* numerics.c: the opt-in check. CLNET_ERR_NUMERICS, naming the layer and
 * the tensor, when the last loss (m->loss) or a trained gradient holds a NaN
 * or an Inf. */
int clnet__numerics_enabled(void);
clnet_status clnet__check_loss(clnet_model *m);
clnet_status clnet__check_grads(clnet_model *m);

#endif
