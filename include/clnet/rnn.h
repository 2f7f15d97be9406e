/* clnet — recurrent layers over whole sequences: the simple tanh RNN, LSTM
 * and GRU, forward and backward through time (BPTT), with PyTorch's weight
 * layouts and gate orders so that weights move across unchanged. */
#ifndef CLNET_RNN_H
#define CLNET_RNN_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layout. One layer, one direction, batch first: x is (N, T, F), the output
 * sequence y (N, T, H), the states h0, c0, hT, cT (N, H). A cell has G gate
 * blocks (RNN 1, LSTM 4, GRU 3); its weights are
 *   w_ih (G*H, F), w_hh (G*H, H), b_ih (G*H), b_hh (G*H)   (all float32)
 * where block q is rows q*H .. q*H + H-1 -- exactly PyTorch's weight_ih_l0,
 * weight_hh_l0, bias_ih_l0, bias_hh_l0 of nn.RNN / nn.LSTM / nn.GRU. With
 * a_x = w_ih x_t + b_ih and a_h = w_hh h_{t-1} + b_hh, block q written [q]:
 *   RNN  (nn.RNN, nonlinearity "tanh"): h_t = tanh(a_x + a_h)
 *   LSTM (nn.LSTM), blocks i, f, g, o:  i = sigmoid(a_x[0] + a_h[0]),
 *        f = sigmoid(a_x[1] + a_h[1]), g = tanh(a_x[2] + a_h[2]),
 *        o = sigmoid(a_x[3] + a_h[3]); c_t = f c_{t-1} + i g; h_t = o tanh(c_t)
 *   GRU  (nn.GRU), blocks r, z, n:      r = sigmoid(a_x[0] + a_h[0]),
 *        z = sigmoid(a_x[1] + a_h[1]), n = tanh(a_x[2] + r * a_h[2]);
 *        h_t = (1 - z) n + z h_{t-1}
 * y[:, t] = h_t. Keras keeps kernels transposed, (F, G*H) and (H, G*H), and
 * one bias: w_ih = kernel^T, w_hh = recurrent_kernel^T, b_ih = bias,
 * b_hh = 0. Keras's LSTM gate order i, f, c, o is this i, f, g, o; its GRU
 * order z, r, h must be permuted to r, z, n, and only reset_after=True (two
 * bias rows: b_ih = bias[0], b_hh = bias[1]) has these semantics. docs/rnn.md
 * has the details.
 *
 * Training. The forward saves what the backward needs in a caller-allocated
 * float32 "reserve" tensor (any shape) of at least clnet_*_reserve_size()
 * elements, proportional to N*T*H; the backward reads it and the same x, so
 * neither allocates per call once the context's workspace has grown.
 * Inference passes reserve = NULL.
 *
 * Errors: CLNET_ERR_INVALID_ARG for a NULL required tensor, tensors of
 * another context or outputs that overlap inputs or each other;
 * CLNET_ERR_SHAPE for wrong shapes or dtypes and for a reserve that is too
 * small; CLNET_ERR_TOO_LARGE when N or G*H exceeds INT_MAX. The message (read
 * with clnet_context_errmsg on the context of y, or of dw->dw_ih for a
 * backward) names the function and the argument. Nothing is queued when a
 * check fails.
 *
 * Numerics: float32 with float32 accumulation (how the steps run:
 * docs/rnn.md, "How it runs"); the implementations a device may choose
 * differ in the last bits only. NaN and
 * Inf propagate as in the formulas (a NaN input makes the affected h_t, and
 * every later step it reaches, NaN); sigmoid(+-Inf) and tanh(+-Inf) saturate
 * to their limits. Results are deterministic: the same inputs on the same
 * device give the same bits (no atomics).
 *
 * Ownership: every tensor stays the caller's; a call keeps no reference
 * once it returns (its work is queued on the context's in-order queue).
 * Thread-safety: as the tensors' context (one thread at a time). */

/* The weights of one layer; borrowed, read only. Shapes as above. The
 * backward reads only w_ih and w_hh (the biases may be NULL there). */
typedef struct clnet_rnn_weights {
    const clnet_tensor *w_ih; /* (G*H, F) */
    const clnet_tensor *w_hh; /* (G*H, H) */
    const clnet_tensor *b_ih; /* (G*H) */
    const clnet_tensor *b_hh; /* (G*H) */
} clnet_rnn_weights;

/* The weight gradients the backward writes; all four are required. They are
 * overwritten, not accumulated: add them to running sums yourself when a
 * layer is applied several times per step. */
typedef struct clnet_rnn_grads {
    clnet_tensor *dw_ih; /* (G*H, F) */
    clnet_tensor *dw_hh; /* (G*H, H) */
    clnet_tensor *db_ih; /* (G*H) */
    clnet_tensor *db_hh; /* (G*H) */
} clnet_rnn_grads;

/* The number of float32 elements a reserve needs for these sizes: RNN 2*N*T*H,
 * LSTM 6*N*T*H + N*H, GRU 5*N*T*H (f does not enter today; it is taken so a
 * later layout may use it). -1 when a size is negative or the count overflows
 * int64. */
CLNET_API int64_t clnet_rnn_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h);
CLNET_API int64_t clnet_lstm_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h);
CLNET_API int64_t clnet_gru_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h);

/* Forward over the whole sequence.
 * w: the weights (all four required). x (N, T, F). h0, c0 (N, H): initial
 * states; NULL means zeros. Outputs: y (N, T, H), required, every h_t; hT, cT
 * (N, H) the final states, NULL when not wanted (T == 0 gives hT = h0,
 * cT = c0); reserve: NULL for inference, else at least the reserve size,
 * overwritten with what the backward needs. Outputs are overwritten; they must
 * not overlap the inputs or each other. Queued; nothing waits. */
CLNET_API clnet_status clnet_rnn_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                         const clnet_tensor *h0, clnet_tensor *y, clnet_tensor *hT,
                                         clnet_tensor *reserve);
CLNET_API clnet_status clnet_lstm_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *h0, const clnet_tensor *c0,
                                          clnet_tensor *y, clnet_tensor *hT, clnet_tensor *cT,
                                          clnet_tensor *reserve);
CLNET_API clnet_status clnet_gru_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                         const clnet_tensor *h0, clnet_tensor *y, clnet_tensor *hT,
                                         clnet_tensor *reserve);

/* Backward through time, for the loss L with gradients dy = dL/dy,
 * dhT = dL/dhT, dcT = dL/dcT (each NULL = zeros, e.g. dy NULL when only the
 * last state feeds the loss).
 * w: w_ih and w_hh as in the forward (biases not read). x: the forward's x.
 * reserve: as the forward left it (the forward with the same x, h0, c0 and
 * weights); read only, so the backward may run again on it.
 * Outputs: dx (N, T, F), dh0, dc0 (N, H): NULL when not wanted; dw: the weight
 * gradients, all required. Every output is overwritten (not accumulated) and
 * must not overlap the inputs or another output. Queued; nothing waits. */
CLNET_API clnet_status clnet_rnn_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *reserve, const clnet_tensor *dy,
                                          const clnet_tensor *dhT, clnet_tensor *dx,
                                          clnet_tensor *dh0, const clnet_rnn_grads *dw);
CLNET_API clnet_status clnet_lstm_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                           const clnet_tensor *reserve, const clnet_tensor *dy,
                                           const clnet_tensor *dhT, const clnet_tensor *dcT,
                                           clnet_tensor *dx, clnet_tensor *dh0, clnet_tensor *dc0,
                                           const clnet_rnn_grads *dw);
CLNET_API clnet_status clnet_gru_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *reserve, const clnet_tensor *dy,
                                          const clnet_tensor *dhT, clnet_tensor *dx,
                                          clnet_tensor *dh0, const clnet_rnn_grads *dw);

#ifdef __cplusplus
}
#endif
#endif
