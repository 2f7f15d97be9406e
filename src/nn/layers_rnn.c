/* clnet — recurrent layers: SimpleRNN, LSTM and GRU over (batch, T, F)
 * sequences, with return_sequences and return_state, over src/ops/rnn. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clnet/rnn.h"
#include "nn_impl.h"
#include "runtime/alloc.h"
#include "tensor/tensor_impl.h"

enum { X_RESERVE, X_SEQ, X_H, X_C };

/* PyTorch's four parameters, or Keras' three with b_hh = 0. */
static clnet_rnn_weights weights(const clnet__layer *l)
{
    return (clnet_rnn_weights){ l->params[0].value, l->params[1].value, l->params[2].value,
                                l->zero_bias ? l->zero_bias : l->params[3].value };
}

/* With a single bias, a_x + a_h holds b_ih + b_hh in every gate of the RNN
 * and LSTM cells, so db_hh = db_ih: the bias takes db_ih and db_hh goes to
 * a spare (GRU, where the two differ, has no single-bias variant). */
static clnet_rnn_grads grads(const clnet__layer *l)
{
    return (clnet_rnn_grads){ l->params[0].grad, l->params[1].grad, l->params[2].grad,
                              l->zero_bias ? l->spare_dbias : l->params[3].grad };
}

static clnet_status rnn_forward(clnet__layer *l, clnet__io *io, int training)
{
    clnet_rnn_weights w = weights(l);
    clnet_tensor *reserve = training ? l->extra[X_RESERVE].view : NULL;
    /* The whole sequence goes to the output, or to a scratch sequence when
     * only the last state is the output. */
    clnet_tensor *y = l->return_sequences ? io->y : l->extra[X_SEQ].view;
    clnet_tensor *h = l->return_sequences ? (l->return_state ? l->extra[X_H].view : NULL) : io->y;
    clnet_tensor *c = l->return_state && l->cell == 4 ? l->extra[X_C].view : NULL;
    switch (l->cell) {
    case 4:
        return clnet_lstm_forward(&w, io->x, NULL, NULL, y, h, c, reserve);
    case 3:
        return clnet_gru_forward(&w, io->x, NULL, y, h, reserve);
    default:
        return clnet_rnn_forward(&w, io->x, NULL, y, h, reserve);
    }
}

static clnet_status rnn_backward(clnet__layer *l, clnet__io *io)
{
    clnet_rnn_weights w = weights(l);
    clnet_rnn_grads g = grads(l);
    const clnet_tensor *reserve = l->extra[X_RESERVE].view;
    const clnet_tensor *dy = l->return_sequences ? io->dy : NULL;
    const clnet_tensor *dh = l->return_sequences ? NULL : io->dy;
    switch (l->cell) {
    case 4:
        return clnet_lstm_backward(&w, io->x, reserve, dy, dh, NULL, io->dx, NULL, NULL, &g);
    case 3:
        return clnet_gru_backward(&w, io->x, reserve, dy, dh, io->dx, NULL, &g);
    default:
        return clnet_rnn_backward(&w, io->x, reserve, dy, dh, io->dx, NULL, &g);
    }
}

static const clnet__layer_ops simple_rnn_ops = { "SimpleRNN", 0, rnn_forward, rnn_backward, 0 };
static const clnet__layer_ops lstm_ops = { "LSTM", 0, rnn_forward, rnn_backward, 0 };
static const clnet__layer_ops gru_ops = { "GRU", 0, rnn_forward, rnn_backward, 0 };

static void add_extra(clnet__layer *l, int ndim, const int64_t *shape)
{
    l->extra[l->nextra].ndim = ndim;
    memcpy(l->extra[l->nextra].shape, shape, (size_t)ndim * sizeof *shape);
    l->nextra++;
}

/* Keras' unit_forget_bias: the LSTM forget block (rows h..2h) of the bias
 * starts at 1; with two biases b_ih's block is 1 and b_hh's 0, so that their
 * sum, what the cell adds, is 1. */
static clnet_status unit_forget_bias(clnet__layer *l, int64_t h)
{
    float *buf = clnet__malloc((size_t)h * sizeof *buf);
    if (!buf)
        return clnet__error(l->model->ctx, CLNET_ERR_HOST_MEMORY, "LSTM: out of host memory");
    clnet_status st = CLNET_OK;
    for (int k = 0; k < l->nparams - 2 && !st; k++) {
        for (int64_t i = 0; i < h; i++)
            buf[i] = k == 0 ? 1.0f : 0.0f;
        st = clnet_tensor_upload_range(l->params[2 + k].value, (size_t)h, (size_t)h, buf);
    }
    clnet__free(buf);
    return st;
}

static clnet_status add_rnn(clnet_model *m, const clnet_rnn_layer_params *p, int cell,
                            const clnet__layer_ops *ops, const char *prefix)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    static const clnet_rnn_layer_params defaults = CLNET_RNN_LAYER_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(m->ctx, p->units > 0);
    if (p->single_bias && cell == 3)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (GRU): single_bias: a GRU keeps two biases, as Keras' "
                            "default reset_after=True GRU does (bias_ih, bias_hh); "
                            "reset_after=False is not supported",
                            m->nlayers);
    if (p->unit_forget_bias && cell != 4)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "layer %d (%s): unit_forget_bias applies to LSTM only (the forget "
                            "gate's bias)",
                            m->nlayers, ops->type);
    if (p->recurrent_dropout != 0.0f)
        return clnet__error(m->ctx, CLNET_ERR_UNSUPPORTED,
                            "layer %d (%s): recurrent_dropout %g: dropout on the recurrent state "
                            "is not implemented; leave it 0 (the default) or add a Dropout layer "
                            "after the recurrent layer",
                            m->nlayers, ops->type, (double)p->recurrent_dropout);
    int nd = m->nlayers ? m->layers[m->nlayers - 1]->out_ndim : m->in_ndim;
    const int64_t *in = m->nlayers ? m->layers[m->nlayers - 1]->out_shape : m->in_shape;
    if (nd != 2) {
        char shape[96];
        size_t n = (size_t)snprintf(shape, sizeof shape, "(batch");
        for (int i = 0; i < nd && n < sizeof shape; i++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, ", %lld", (long long)in[i]);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "layer %d (%s): input %s), but it needs sequences (batch, steps, "
                            "features): a recurrent layer before it needs return_sequences",
                            m->nlayers, ops->type, shape);
    }
    int64_t t = in[0], f = in[1], h = p->units;
    int64_t seq[2] = { t, h };
    clnet__layer *l;
    clnet_status st = clnet__layer_new(m, ops, prefix, p->return_sequences ? 2 : 1,
                                       p->return_sequences ? seq : &h, &l);
    if (st)
        return st;
    l->cell = cell;
    l->return_sequences = p->return_sequences != 0;
    l->return_state = p->return_state != 0;
    /* The reserve is linear in the batch: one row's share per sample. */
    int64_t per_row = cell == 4   ? clnet_lstm_reserve_size(1, t, f, h)
                      : cell == 3 ? clnet_gru_reserve_size(1, t, f, h)
                                  : clnet_rnn_reserve_size(1, t, f, h);
    /* Buffers a configuration does not use get zero rows (no memory). */
    int64_t none[2] = { 0, 0 };
    add_extra(l, 1, &per_row);
    add_extra(l, 2, l->return_sequences ? none : seq);                   /* X_SEQ */
    add_extra(l, 1, l->return_state && l->return_sequences ? &h : none); /* X_H */
    add_extra(l, 1, l->return_state && cell == 4 ? &h : none);           /* X_C */
    int64_t wih[2] = { cell * h, f }, whh[2] = { cell * h, h }, b = cell * h;
    if ((st = clnet__param_add(l, "weight_ih", 2, wih, 1)) ||
        (st = clnet__param_add(l, "weight_hh", 2, whh, 1)))
        return st;
    if (p->single_bias) {
        if ((st = clnet__param_add(l, "bias", 1, &b, 1)) ||
            (st = clnet_tensor_create(m->ctx, CLNET_F32, 1, &b, &l->zero_bias)) ||
            (st = clnet_tensor_fill(l->zero_bias, 0.0)) ||
            (st = clnet_tensor_create(m->ctx, CLNET_F32, 1, &b, &l->spare_dbias)))
            return st;
    } else if ((st = clnet__param_add(l, "bias_ih", 1, &b, 1)) ||
               (st = clnet__param_add(l, "bias_hh", 1, &b, 1))) {
        return st;
    }
    /* PyTorch's initialization: every parameter uniform in +-1/sqrt(units);
     * Keras' single bias starts at zero (param_add's fill). */
    float lim = (float)(1.0 / sqrt((double)h));
    for (int i = 0; i < (p->single_bias ? 2 : 4) && !st; i++)
        st = clnet_tensor_rand_uniform(l->params[i].value, m->seed,
                                       ((uint64_t)l->index << 8) | (uint64_t)i, -lim, lim);
    if (!st && p->unit_forget_bias)
        st = unit_forget_bias(l, h);
    return st;
}

static clnet_status add_simple_rnn(clnet_model *m, const clnet_rnn_layer_params *p)
{
    return add_rnn(m, p, 1, &simple_rnn_ops, "simple_rnn");
}

static clnet_status add_lstm(clnet_model *m, const clnet_rnn_layer_params *p)
{
    return add_rnn(m, p, 4, &lstm_ops, "lstm");
}

static clnet_status add_gru(clnet_model *m, const clnet_rnn_layer_params *p)
{
    return add_rnn(m, p, 3, &gru_ops, "gru");
}

CLNET_API clnet_status clnet_model_rnn_state(const clnet_model *m, int layer,
                                             const clnet_tensor **h, const clnet_tensor **c)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (layer < 0 || layer >= m->nlayers || !m->layers[layer]->cell ||
        !m->layers[layer]->return_state)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_rnn_state: layer %d is not a recurrent layer with "
                            "return_state",
                            layer);
    const clnet__layer *l = m->layers[layer];
    if (!m->batch)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_rnn_state: no forward pass yet");
    if (h)
        *h = l->return_sequences ? l->extra[X_H].view : m->nodes[m->apps[l->app].out].act;
    if (c)
        *c = l->cell == 4 ? l->extra[X_C].view : NULL;
    return CLNET_OK;
}

/* The public adds: nothing half-built stays after a failure. */

CLNET_API clnet_status clnet_model_add_simple_rnn(clnet_model *m, const clnet_rnn_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_simple_rnn(m, p));
}

CLNET_API clnet_status clnet_model_add_lstm(clnet_model *m, const clnet_rnn_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_lstm(m, p));
}

CLNET_API clnet_status clnet_model_add_gru(clnet_model *m, const clnet_rnn_layer_params *p)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet__mark mark = clnet__add_begin(m);
    return clnet__add_end(m, mark, add_gru(m, p));
}
