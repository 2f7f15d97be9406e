/* clnet tests: float64 reference of the recurrent primitives (simple tanh
 * RNN, LSTM, GRU) over whole sequences, forward and backward through time.
 * Plain loops written for clarity; layouts and gate orders are PyTorch's and
 * the same as include/clnet/rnn.h. */
#ifndef CLNET_TESTS_REF_RNN_H
#define CLNET_TESTS_REF_RNN_H

#include <stddef.h>

/* Cells. G, the number of gate blocks, is 1, 4 and 3. With a_x = W_ih x_t +
 * b_ih and a_h = W_hh h_{t-1} + b_hh (each G*H long, block q = rows q*H ..
 * q*H + H-1 of the weights):
 *   RNN:  h_t = tanh(a_x + a_h)
 *   LSTM: blocks i, f, g, o; i = sigm(.), f = sigm(.), g = tanh(.),
 *         o = sigm(.) of a_x + a_h; c_t = f c_{t-1} + i g; h_t = o tanh(c_t)
 *   GRU:  blocks r, z, n; r = sigm(a_x,r + a_h,r), z = sigm(a_x,z + a_h,z),
 *         n = tanh(a_x,n + r * a_h,n); h_t = (1 - z) n + z h_{t-1} */
typedef enum ref_rnn_cell { REF_RNN_TANH = 0, REF_RNN_LSTM, REF_RNN_GRU } ref_rnn_cell;

/* Shapes: x (n, t, f), h0 / c0 / h_T / c_T (n, h), y (n, t, h), w_ih (G*h, f),
 * w_hh (G*h, h), b_ih and b_hh (G*h). All row-major, batch first. */
typedef struct ref_rnn {
    ref_rnn_cell cell;
    int n, t, f, h;
} ref_rnn;

/* The inputs of a layer. h0 and c0 may be NULL (zeros); c0 is LSTM only. */
typedef struct ref_rnn_in {
    const double *x, *h0, *c0;
    const double *w_ih, *w_hh, *b_ih, *b_hh;
} ref_rnn_in;

/* Gradients of a scalar loss with respect to every input; each pointer may
 * be NULL (not wanted). Written fully (overwritten, not accumulated). */
typedef struct ref_rnn_grad {
    double *dx, *dh0, *dc0;
    double *dw_ih, *dw_hh, *db_ih, *db_hh;
} ref_rnn_grad;

/* 1, 4 or 3. */
int ref_rnn_gates(ref_rnn_cell cell);

/* Runs the cell over the sequence: y (n, t, h) gets every h_t; h_T and c_T
 * (may be NULL; c_T LSTM only) the final states. t == 0 gives h_T = h0. */
void ref_rnn_forward(const ref_rnn *p, const ref_rnn_in *in, double *y, double *h_T, double *c_T);

/* Backward through time: the gradients of L = <dy, y> + <dh_T, h_T> +
 * <dc_T, c_T>. dy, dh_T and dc_T may be NULL (zeros). Recomputes the forward
 * itself; allocates temporaries that it frees before returning. */
void ref_rnn_backward(const ref_rnn *p, const ref_rnn_in *in, const double *dy, const double *dh_T,
                      const double *dc_T, const ref_rnn_grad *g);

/* Magnitudes for tolerances: the size of the terms each output is summed
 * from, so that a magnitude does not shrink when its result cancels (the
 * |A||B| of a GEMM bound, step by step). Forward: my (n, t, h) gets, per unit
 * and step, the largest over the gates of |W_ih||x_t| + |b_ih| +
 * |W_hh||h_{t-1}| + |b_hh|; mc_T (n, h, may be NULL) the LSTM's c magnitude,
 * f m_{t-1} + |i g| from m_0 = |c0|. Backward: g (any pointer may be NULL)
 * gets what the backward computes when each step's coefficients and weights
 * are taken in absolute value and applied to the absolute value of the true
 * gradient entering that step; a coefficient that is a difference (1 - v^2,
 * h_{t-1} - n) becomes the sum of its terms' absolute values and a forward
 * state (c_{t-1}, GRU's a_h[n]) its magnitude. Between steps the true
 * gradient flows, so the recurrence's own damping applies (an absolute-value
 * recurrence through |W_hh| would grow without bound). dh0 and dc0 get one
 * magnitude per batch row, carried back from |dh_T|, |dc_T| and every |dy_t|:
 * after each step, the larger of that step's own terms and the incoming
 * magnitude scaled by how the true gradient's norm changed, so it follows a
 * gradient that decays but not one that shrinks by cancellation. */
void ref_rnn_magnitude(const ref_rnn *p, const ref_rnn_in *in, const double *dy, const double *dh_T,
                       const double *dc_T, double *my, double *mc_T, const ref_rnn_grad *g);

#endif
