/* clnet — layers and models, private to src/nn. A layer is a small vtable
 * over the primitives; the model owns activation buffers sized for the
 * largest batch seen and hands each layer batch-sized views of them. */
#ifndef CLNET_NN_IMPL_H
#define CLNET_NN_IMPL_H

#include "clnet/act.h"
#include "clnet/conv.h"
#include "clnet/gemm.h"
#include "clnet/graph.h"
#include "clnet/loss.h"
#include "clnet/merge.h"
#include "clnet/nn.h"
#include "clnet/norm.h"
#include "clnet/ops.h"
#include "clnet/optim.h"
#include "clnet/pool.h"
#include "runtime/runtime.h"

#define CLNET__MAX_PARAMS 4
#define CLNET__MAX_EXTRA 4

typedef struct clnet__param {
    char name[24];              /* "kernel", "bias", "gamma", "running_mean", ... */
    clnet_tensor *value, *grad; /* grad is NULL for state that is not trained */
    clnet_tensor *m, *v;        /* optimizer state, created by compile */
} clnet__param;

typedef struct clnet__layer clnet__layer;

/* Per-batch views handed to a layer: its input and output, their gradients,
 * and views of the layer's own batch-sized buffers. x and dx are the first
 * input's; layers of several inputs (merges, sampling) read xs[] and dxs[]. */
typedef struct clnet__io {
    const clnet_tensor *x;
    clnet_tensor *y;
    const clnet_tensor *dy;   /* backward; NULL: no gradient reached the output */
    clnet_tensor *dx;         /* backward; NULL when nobody needs it */
    clnet_tensor *pre, *dpre; /* pre-activation and its gradient, if the layer has them */
    int dy_is_pre;            /* dy already is the gradient at the pre-activation */
    int nin;
    const clnet_tensor *xs[CLNET_MERGE_MAX_INPUTS];
    clnet_tensor *dxs[CLNET_MERGE_MAX_INPUTS];
    /* Layers with ops->accumulates: dxs[i] = gradient + betas[i] * dxs[i]
     * (0: overwrite, 1: add to what another consumer wrote). */
    float betas[CLNET_MERGE_MAX_INPUTS];
} clnet__io;

typedef struct clnet__layer_ops {
    const char *type; /* "Dense", as the summary prints it */
    /* The output is a view of the input (Flatten, Reshape): no buffers, no work. */
    int is_view;
    clnet_status (*forward)(clnet__layer *l, clnet__io *io, int training);
    clnet_status (*backward)(clnet__layer *l, clnet__io *io);
    /* backward honours io->betas (adds into dxs[i]); else it overwrites dx
     * and the model sums through a scratch buffer where needed. */
    int accumulates;
} clnet__layer_ops;

struct clnet__layer {
    const clnet__layer_ops *ops;
    clnet_model *model;
    int index;
    char name[32];
    char type[24]; /* as the summary prints it: ops->type, or a custom name */
    /* A shared layer's second and later applications (clnet_model_reuse) are
     * clones: owner is the layer in m->layers, params[].value are the
     * owner's (borrowed), grads their own (summed into the owner's). */
    clnet__layer *owner;
    int app; /* its application (a clone's: its own) */
    int ran; /* the last backward ran this application */
    int in_ndim, out_ndim;
    int64_t in_shape[CLNET_MAX_DIMS], out_shape[CLNET_MAX_DIMS];
    int trainable;
    int nparams;
    clnet__param params[CLNET__MAX_PARAMS];
    /* Fused activation of Dense and Conv2D (or the Activation layer's). */
    clnet_activation act;
    float alpha;
    int has_pre; /* keeps a pre-activation buffer */
    /* Per-kind configuration: one part per layer kind, overlaid (an
     * anonymous union, so l->conv, l->pool, ... name them); only the
     * layer's own kind's part is meaningful. */
    union {
        struct {
            clnet_conv2d_params conv; /* Conv2D, Conv2DTranspose */
            int groups;               /* Conv2D: > 1 runs clnet/conv_grouped.h */
        };
        clnet_pool2d_params pool; /* MaxPool2D, AveragePooling2D */
        struct {
            int scale_h, scale_w; /* UpSampling2D: the repeat along each axis */
        } up;
        float rate;                /* Dropout */
        clnet_batchnorm_params bn; /* BatchNormalization */
    };
    /* Batch-sized buffers (max batch), and this batch's views of them. */
    clnet_tensor *pre_buf, *dpre_buf, *save_mean, *save_invstd;
    clnet_tensor *pre, *dpre;
    /* More batch-sized buffers a layer asks for: `shape` is one row's shape
     * (without the batch dim); the model allocates and binds them. */
    int nextra;
    struct {
        clnet_dtype dtype; /* CLNET_F32 unless set */
        int ndim;
        int64_t shape[CLNET_MAX_DIMS];
        clnet_tensor *buf, *view;
    } extra[CLNET__MAX_EXTRA];
    /* Dense on sequences: cached 2-D views of its operands (layers.c). */
    clnet_tensor *mat[4];
    /* Recurrent layers. */
    int cell; /* 1 RNN, 4 LSTM, 3 GRU (gate blocks) */
    int return_sequences, return_state;
    /* Keras' single bias: the one "bias" parameter is b_ih; b_hh is zeros and
     * its gradient (equal to b_ih's for these cells) goes to a spare. */
    clnet_tensor *zero_bias, *spare_dbias;
    /* Graph layers (graph.c). */
    int merge_op;              /* clnet_merge_op */
    int axis;                  /* Concatenate, counted with the batch dim */
    float kl_weight;           /* Sampling */
    clnet_tensor *kl;          /* Sampling: its KL of the last forward (one element) */
    int64_t eps_batch;         /* Sampling: the batch size eps was drawn for, 0: none */
    char *fwd_expr, *bwd_expr; /* Expression (a clone borrows the owner's) */
};

/* A value in the graph: a model input, or a layer application's output. */
typedef struct clnet__node {
    int ndim;
    int64_t shape[CLNET_MAX_DIMS];
    int app;   /* the application that makes it; -1 for an input */
    int input; /* the input index; -1 for an application's output */
    /* Set when the buffers are made (model.c). */
    int uses;                         /* times an application consumes it */
    int act_of, grad_of;              /* a view's output: the node whose storage it shares, or -1 */
    clnet_tensor *act_buf, *grad_buf; /* max batch; an input has no act_buf */
    clnet_tensor *act, *grad;         /* this batch's views */
    clnet_tensor *scratch;            /* uses > 1: this batch's view of the scratch buffer */
    /* Backward. */
    int need;               /* some parameter or a wanted dx lies behind it */
    int written;            /* its gradient holds a sum already */
    const clnet_tensor *dy; /* its gradient: grad, or the caller's seed */
} clnet__node;

/* A layer applied to nodes: in[] -> out. Applications are kept in the order
 * they were added, which is a topological order. */
typedef struct clnet__app {
    clnet__layer *l;
    int nin;
    int in[CLNET_MERGE_MAX_INPUTS];
    int out;
} clnet__app;

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
    char name[CLNET_MODEL_NAME_MAX]; /* as the summary prints it */
    uint64_t seed;
    int in_ndim; /* input 0's shape */
    int64_t in_shape[CLNET_MAX_DIMS];
    /* The layers (each once, shared or not), in the order added: their
     * indices name them in the API and in weight files. */
    int nlayers, cap_layers;
    clnet__layer **layers;

    /* The graph (docs/graph.md): nodes, applications in a topological
     * order, inputs, outputs (noutputs 0: the last node) and the cursor. */
    int nnodes, cap_nodes, napps, cap_apps;
    clnet__node *nodes;
    clnet__app *apps;
    int ninputs, noutputs;
    int inputs[CLNET_MODEL_MAX_IO], outputs[CLNET_MODEL_MAX_IO];
    int cursor;
    int hold_noise;
    int nextra_loss; /* applications that add a loss term */

    /* Node buffers are sized for max_batch; their views for batch. */
    int64_t max_batch, batch;
    clnet_tensor *scratch_buf;                 /* a gradient summed into a node (uses > 1) */
    clnet_tensor **clip_grads;                 /* room for every gradient (compile), for clipping */
    const clnet_tensor *x[CLNET_MODEL_MAX_IO]; /* the caller's inputs of the last forward */

    int trained_forward; /* the last forward ran in training mode */
    int compiled;
    int check_numerics; /* CLNET_CHECK_NUMERICS at creation (numerics.c) */
    clnet_compile_params compile;
    int64_t step_count;     /* optimizer steps taken (Adam's t) */
    uint64_t dropout_calls; /* distinct dropout masks */

    /* One-element results of the last loss and accuracy, and accumulators. */
    clnet_tensor *loss, *correct, *loss_sum, *correct_sum;
    clnet_tensor *extra_loss; /* the layers' loss terms of the last forward */
    clnet_tensor *out_loss;   /* scratch: one output's loss (several outputs) */
    /* The loss gradient at each output's logits (train.c). */
    clnet_tensor *dlogits_buf[CLNET_MODEL_MAX_IO], *dlogits_v[CLNET_MODEL_MAX_IO];

    clnet__model_hooks hooks;
};

/* layers.c: a new layer applied at the cursor (layer_new) or to nodes
 * in[0..nin-1] (layer_new_at); its output becomes the cursor. */
clnet_status clnet__layer_new(clnet_model *m, const clnet__layer_ops *ops, const char *prefix,
                              int out_ndim, const int64_t *out_shape, clnet__layer **out);
clnet_status clnet__layer_new_at(clnet_model *m, const clnet__layer_ops *ops, const char *prefix,
                                 int nin, const int *in, int out_ndim, const int64_t *out_shape,
                                 clnet__layer **out);
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
/* Drops every buffer (the graph changed). */
void clnet__model_unbind(clnet_model *m);
/* Output k's node, and the layer that makes it (NULL for an input). */
int clnet__output_node(const clnet_model *m, int k);
const clnet__layer *clnet__output_layer(const clnet_model *m, int k);
/* A node's values in the last forward (an input's: the caller's tensor). */
const clnet_tensor *clnet__node_act(const clnet_model *m, int node);
/* Output k's logits: when its activation is softmax or sigmoid (fused in
 * its layer or a separate Activation layer), the values before it; else the
 * output. */
const clnet_tensor *clnet__output_logits(const clnet_model *m, int k);
const clnet_tensor *clnet__model_logits(const clnet_model *m);
/* Output k's activation (clnet__layer_output_act of its layer). */
int clnet__output_act(const clnet_model *m, int k);
int clnet__model_output_act(const clnet_model *m);
/* forward and backward over the graph (model.c). */
clnet_status clnet__model_forward(clnet_model *m, const char *func, int nx,
                                  const clnet_tensor *const *x, int training);
clnet_status clnet__model_backward(clnet_model *m, const char *func, int ny,
                                   const clnet_tensor *const *dlogits, int nx,
                                   const clnet_tensor **dx);

/* graph.c: the graph as it is built. add_begin notes the model's size;
 * add_end with a failure removes what the add made since (no half-built
 * layer) and puts the cursor back, and returns st. */
typedef struct clnet__mark {
    int nlayers, napps, nnodes, cursor;
} clnet__mark;
clnet__mark clnet__add_begin(clnet_model *m);
/* Appends an application of l to nodes in[] and its output node, which
 * becomes the cursor. */
clnet_status clnet__app_add(clnet_model *m, clnet__layer *l, int nin, const int *in);
clnet_status clnet__add_end(clnet_model *m, clnet__mark mark, clnet_status st);
/* The cursor's shape (the next layer's input). */
int clnet__cursor_ndim(const clnet_model *m);
const int64_t *clnet__cursor_shape(const clnet_model *m);
/* Makes node 0, input 0 (clnet_model_create). */
clnet_status clnet__graph_init(clnet_model *m);
void clnet__graph_free(clnet_model *m);
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
