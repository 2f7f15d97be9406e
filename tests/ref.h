/* clnet tests: the float64 CPU reference of every primitive, forward and
 * every backward direction. Written for clarity (plain loops), not speed; the
 * device's float32 results are compared with these. */
#ifndef CLNET_TESTS_REF_H
#define CLNET_TESTS_REF_H

#include <stddef.h>
#include <stdint.h>

/* Conventions. All arrays are double, row-major and contiguous; images are
 * NCHW. Every output is written fully (never accumulated) unless stated.
 * Pointers named as outputs must not alias inputs unless stated. Nothing here
 * allocates memory that outlives a call; the caller owns every buffer. */

/* ---- random numbers ---------------------------------------------------- */

/* splitmix64 (Vigna): advances *state and returns the next 64-bit value.
 * Seed 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, ... */
uint64_t ref_rng_next(uint64_t *state);
/* Uniform double in [0, 1) from the top 53 bits of ref_rng_next. */
double ref_rng_uniform(uint64_t *state);
/* x[i] uniform in [lo, hi). */
void ref_fill_uniform(double *x, size_t n, double lo, double hi, uint64_t *state);
/* x[i] an integer in [lo, hi], both ends included (for exact mode). */
void ref_fill_int(double *x, size_t n, int lo, int hi, uint64_t *state);
/* Philox4x32-10 (Salmon et al., Random123): one block of 4 words from a
 * 128-bit counter and a 64-bit key; M0 = 0xD2511F53, M1 = 0xCD9E8D57,
 * key bumped by W0 = 0x9E3779B9, W1 = 0xBB67AE85 between the 10 rounds. */
void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ---- elementwise and reductions ---------------------------------------- */

/* y = a + b (n elements). Backward: da = db = dy. y may alias a or b. */
void ref_eltwise_add(size_t n, const double *a, const double *b, double *y);
/* y = a * b. y may alias a or b. */
void ref_eltwise_mul(size_t n, const double *a, const double *b, double *y);
/* da = dy * b, db = dy * a; either output may be NULL (not wanted). */
void ref_eltwise_mul_backward(size_t n, const double *a, const double *b, const double *dy,
                              double *da, double *db);
/* y = alpha * x. Backward: dx = alpha * dy. y may alias x. */
void ref_eltwise_scale(size_t n, double alpha, const double *x, double *y);
/* y += alpha * x (accumulates into y, BLAS axpy). */
void ref_eltwise_axpy(size_t n, double alpha, const double *x, double *y);
/* Sum of n elements, Neumaier-compensated (exact for any order-sensitive
 * case up to a final rounding, e.g. {1e16, 1, -1e16} sums to 1).
 * Backward: dx[i] = dy. Returns 0 for n == 0. */
double ref_reduce_sum(size_t n, const double *x);
/* sum_i a[i] * b[i], products rounded, the sum compensated as above. */
double ref_reduce_dot(size_t n, const double *a, const double *b);

/* ---- GEMM -------------------------------------------------------------- */

/* C = alpha * op(A) * op(B) + beta * C, row-major. op(X) = X, or X^T when
 * its trans flag is nonzero. op(A) is m x k, op(B) k x n, C m x n. Stored A
 * has rows of stride lda (lda >= k, or >= m when transposed); likewise ldb
 * (>= n, or >= k) and ldc (>= n). beta == 0 ignores C's old contents (a NaN
 * there does not propagate), as BLAS does. Elements between a row's end and
 * its leading dimension are never read or written. For the strided batched
 * form, item i uses a + i*stride_a, b + i*stride_b, c + i*stride_c. */
typedef struct ref_gemm {
    int trans_a, trans_b;
    int m, n, k;
    int lda, ldb, ldc;
    double alpha, beta;
    int batch;                           /* strided batched only */
    size_t stride_a, stride_b, stride_c; /* strided batched only */
} ref_gemm;

void ref_gemm_forward(const ref_gemm *g, const double *a, const double *b, double *c);
/* From dC (same layout as C): dA = alpha * dC * op(B)^T, stored like A
 * (transposed back when trans_a), dB = alpha * op(A)^T * dC, stored like B.
 * Only the op-shaped elements of da/db are written; either may be NULL.
 * The gradient for C's old contents is beta * dC (not computed here). */
void ref_gemm_backward(const ref_gemm *g, const double *a, const double *b, const double *dc,
                       double *da, double *db);
/* g->batch items of ref_gemm_forward / ref_gemm_backward at the strides. */
void ref_gemm_strided_batched_forward(const ref_gemm *g, const double *a, const double *b,
                                      double *c);
void ref_gemm_strided_batched_backward(const ref_gemm *g, const double *a, const double *b,
                                       const double *dc, double *da, double *db);

/* ---- 2-D convolution (cross-correlation, zero padding) ------------------ */

/* x (n, c, h, w); w (k, c, r, s); bias (k); y (n, k, oh, ow) with
 * oh = (h + pad_t + pad_b - dil_h*(r-1) - 1) / stride_h + 1, ow likewise.
 * y[n,k,i,j] = bias[k] + sum_{c,u,v} w[k,c,u,v] * x[n,c,iy,ix] with
 * iy = i*stride_h - pad_t + u*dil_h and ix = j*stride_w - pad_l + v*dil_w;
 * x is taken as 0 outside the image (zero padding). No groups. */
typedef struct ref_conv2d {
    int n, c, h, w; /* input */
    int k, r, s;    /* output channels, kernel height, kernel width */
    int stride_h, stride_w, pad_t, pad_b, pad_l, pad_r, dil_h, dil_w;
} ref_conv2d;

int ref_conv2d_out_h(const ref_conv2d *p);
int ref_conv2d_out_w(const ref_conv2d *p);
/* y as above; bias may be NULL (no bias). */
void ref_conv2d_forward(const ref_conv2d *p, const double *x, const double *w, const double *bias,
                        double *y);
/* dx (n, c, h, w) from dy (n, k, oh, ow) and w. */
void ref_conv2d_backward_data(const ref_conv2d *p, const double *w, const double *dy, double *dx);
/* dw (k, c, r, s) from dy and x. */
void ref_conv2d_backward_filter(const ref_conv2d *p, const double *x, const double *dy, double *dw);
/* db (k) = sum of dy over n, oh, ow. */
void ref_conv2d_backward_bias(const ref_conv2d *p, const double *dy, double *db);
/* Transposed convolution ("deconvolution") described by the convolution p it
 * transposes: its input x has p's OUTPUT shape (n, k, oh, ow), its output y
 * has p's INPUT shape (n, c, h, w); w is (k, c, r, s) as in PyTorch's
 * ConvTranspose2d (in_channels = k); bias (c) or NULL. It is exactly
 * ref_conv2d_backward_data(p, w, x, y) plus bias. PyTorch's output_padding
 * is implied by p's h and w. Its backward: dx = ref_conv2d_forward(p, dy, w,
 * NULL); dw = ref_conv2d_backward_filter(p, dy, x); db over (n, h, w) of dy. */
void ref_conv2d_transpose_forward(const ref_conv2d *p, const double *x, const double *w,
                                  const double *bias, double *y);

/* ---- 2-D pooling -------------------------------------------------------- */

/* x (n, c, h, w); y (n, c, oh, ow), oh = (h + pad_t + pad_b - kh) / stride_h
 * + 1 (floor mode), ow likewise. Window (i, j) covers input rows
 * i*stride_h - pad_t .. + kh-1 and columns j*stride_w - pad_l .. + kw-1.
 * Max ignores padding; each window must hold at least one input element
 * (pad < kernel), otherwise y is -INFINITY and gets no gradient.
 * Average divides by kh*kw when count_include_pad, else by the number of
 * input elements in the window (floor mode never reaches past the padding). */
typedef struct ref_pool2d {
    int n, c, h, w;
    int kh, kw, stride_h, stride_w, pad_t, pad_b, pad_l, pad_r;
    int count_include_pad; /* average only */
} ref_pool2d;

int ref_pool2d_out_h(const ref_pool2d *p);
int ref_pool2d_out_w(const ref_pool2d *p);
/* Max over the window. NaN propagates: the first NaN in the window wins. */
void ref_pool2d_max_forward(const ref_pool2d *p, const double *x, double *y);
/* dx from x and dy: each window's dy goes to the FIRST maximum in scan order
 * (row-major within the window: top row first, left to right); windows that
 * overlap add up. */
void ref_pool2d_max_backward(const ref_pool2d *p, const double *x, const double *dy, double *dx);
void ref_pool2d_avg_forward(const ref_pool2d *p, const double *x, double *y);
/* dx: each window's dy divided by its divisor, added to its input elements. */
void ref_pool2d_avg_backward(const ref_pool2d *p, const double *dy, double *dx);

/* ---- nearest upsampling ------------------------------------------------- */

/* x (n, c, h, w); y (n, c, h*sh, w*sw); y[n,c,i,j] = x[n,c,i/sh,j/sw]. */
void ref_upsample2d_nearest_forward(int n, int c, int h, int w, int sh, int sw, const double *x,
                                    double *y);
/* dx[n,c,i,j] = sum of dy over its sh x sw block. */
void ref_upsample2d_nearest_backward(int n, int c, int h, int w, int sh, int sw, const double *dy,
                                     double *dx);

/* ---- activations (elementwise, n elements; y may alias x, dx dy) -------- */

/* y = x > 0 ? x : 0 (NaN propagates). */
void ref_act_relu_forward(size_t n, const double *x, double *y);
/* dx = x > 0 ? dy : 0. From x; passing y instead gives the same result. */
void ref_act_relu_backward(size_t n, const double *x, const double *dy, double *dx);
/* y = x > 0 ? x : alpha * x. */
/* relu6: min(max(x, 0), 6), NaN kept; the gradient passes in (0, 6). */
void ref_act_relu6_forward(size_t n, const double *x, double *y);
void ref_act_relu6_backward(size_t n, const double *x, const double *dy, double *dx);
/* hard swish: x * min(max(x + 3, 0), 6) / 6; the gradient 0 below -3,
 * (2x + 3) / 6 up to 3 (PyTorch's branches), 1 above. */
void ref_act_hard_swish_forward(size_t n, const double *x, double *y);
void ref_act_hard_swish_backward(size_t n, const double *x, const double *dy, double *dx);
void ref_act_leaky_relu_forward(size_t n, double alpha, const double *x, double *y);
/* dx = x > 0 ? dy : alpha * dy. From x (y's sign flips when alpha < 0). */
void ref_act_leaky_relu_backward(size_t n, double alpha, const double *x, const double *dy,
                                 double *dx);
/* y = 1 / (1 + exp(-x)), evaluated without overflow for large |x|. */
void ref_act_sigmoid_forward(size_t n, const double *x, double *y);
/* dx = dy * y * (1 - y). From y. */
void ref_act_sigmoid_backward(size_t n, const double *y, const double *dy, double *dx);
void ref_act_tanh_forward(size_t n, const double *x, double *y);
/* dx = dy * (1 - y^2). From y. */
void ref_act_tanh_backward(size_t n, const double *y, const double *dy, double *dx);

/* ---- softmax over the last axis of (rows, cols) ------------------------- */

/* y = exp(x - max) / sum exp(x - max), per row. */
void ref_softmax_forward(int rows, int cols, const double *x, double *y);
/* From y: dx = y * (dy - sum_j dy_j y_j), per row. */
void ref_softmax_backward(int rows, int cols, const double *y, const double *dy, double *dx);
/* y = x - max - log(sum exp(x - max)), per row. */
void ref_log_softmax_forward(int rows, int cols, const double *x, double *y);
/* From y: dx = dy - exp(y) * sum_j dy_j, per row. */
void ref_log_softmax_backward(int rows, int cols, const double *y, const double *dy, double *dx);

/* ---- bias over channels ------------------------------------------------- */

/* x, y (n, c, hw): y = x + b[channel]; (N, F) is c = F, hw = 1. y may alias
 * x. Backward for x: dx = dy. */
void ref_bias_forward(int n, int c, int hw, const double *x, const double *b, double *y);
/* db (c) = sum of dy over n and hw. */
void ref_bias_backward(int n, int c, int hw, const double *dy, double *db);

/* ---- losses and metrics ------------------------------------------------- */
/* Each returns the mean loss and writes d(mean loss)/d(input) into its
 * gradient output (already divided by the count), which may be NULL. */

/* mean over n of (pred - target)^2; dpred = 2 (pred - target) / n. */
double ref_loss_mse(size_t n, const double *pred, const double *target, double *dpred);
/* Binary cross-entropy from logits, mean over n, in the stable form
 * max(x, 0) - x t + log1p(exp(-|x|)); dx = (sigmoid(x) - t) / n. */
double ref_loss_bce_logits(size_t n, const double *x, const double *t, double *dx);
/* Softmax cross-entropy from logits x (rows, classes) with probability (or
 * one-hot) targets t (rows, classes): mean over rows of -sum_j t_j
 * log_softmax(x)_j; dx = (softmax(x) * sum_j t_j - t) / rows. */
double ref_loss_softmax_xent(int rows, int classes, const double *x, const double *t, double *dx);
/* As above with integer labels in [0, classes) (one-hot targets). */
double ref_loss_sparse_softmax_xent(int rows, int classes, const double *x, const int32_t *labels,
                                    double *dx);
/* Fraction of rows whose argmax (first maximum wins) equals the label. */
double ref_metric_accuracy(int rows, int classes, const double *x, const int32_t *labels);
/* mean over n of |pred - target|; dpred = sign(pred - target) / n (0 at 0). */
double ref_loss_mae(size_t n, const double *pred, const double *target, double *dpred);
/* Fraction of rows whose first argmax equals the target row's first argmax. */
double ref_metric_categorical_accuracy(int rows, int classes, const double *x, const double *t);
/* Fraction of the n elements with (x > threshold) == (t > 0.5). */
double ref_metric_binary_accuracy(size_t n, const double *x, const double *t, double threshold);

/* ---- batch normalization ------------------------------------------------ */

/* Per channel over x (n, c, hw) (hw = 1 for (N, F)); m = n * hw values per
 * channel. gamma, beta, means, variances and saved stats are (c). gamma NULL
 * means 1 and beta NULL means 0 (no affine). */
typedef struct ref_batchnorm {
    int n, c, hw;
    double eps;      /* added to the variance, e.g. 1e-5 */
    double momentum; /* running = (1 - momentum) running + momentum batch */
} ref_batchnorm;

/* Training: batch mean, biased batch variance; y = gamma (x - mean) invstd
 * + beta, invstd = 1 / sqrt(var + eps). Saves mean and invstd (both may be
 * NULL). Updates running_mean and running_var (in place; either may be NULL)
 * with the UNBIASED variance var * m / (m - 1), as PyTorch. Needs m >= 2. */
void ref_batchnorm_forward_training(const ref_batchnorm *p, const double *x, const double *gamma,
                                    const double *beta, double *y, double *save_mean,
                                    double *save_invstd, double *running_mean, double *running_var);
/* Inference: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta. */
void ref_batchnorm_forward_inference(const ref_batchnorm *p, const double *x, const double *gamma,
                                     const double *beta, const double *running_mean,
                                     const double *running_var, double *y);
/* Training backward, from x, dy and the saved stats, xhat = (x - mean)
 * invstd: dbeta = sum dy, dgamma = sum dy xhat, dx = gamma invstd / m *
 * (m dy - dbeta - xhat dgamma). dgamma and dbeta may be NULL. */
void ref_batchnorm_backward_training(const ref_batchnorm *p, const double *x, const double *dy,
                                     const double *gamma, const double *save_mean,
                                     const double *save_invstd, double *dx, double *dgamma,
                                     double *dbeta);
/* Inference backward (stats are constants): dx = dy gamma / sqrt(rv + eps),
 * dgamma = sum dy xhat, dbeta = sum dy. dgamma and dbeta may be NULL. */
void ref_batchnorm_backward_inference(const ref_batchnorm *p, const double *x, const double *dy,
                                      const double *gamma, const double *running_mean,
                                      const double *running_var, double *dx, double *dgamma,
                                      double *dbeta);

/* ---- dropout ------------------------------------------------------------ */

/* Inverted dropout with drop rate p in [0, 1) and a given keep-mask
 * (nonzero = keep): y = mask ? x / (1 - p) : 0. p >= 1 gives y = 0. */
void ref_dropout_forward(size_t n, double p, const uint8_t *mask, const double *x, double *y);
/* dx = mask ? dy / (1 - p) : 0 (the same map). */
void ref_dropout_backward(size_t n, double p, const uint8_t *mask, const double *dy, double *dx);

/* ---- optimizers: one step, in place, PyTorch semantics ------------------ */
/* t is the step number, 1 for the first step. Weight decay is L2: the step
 * uses g + weight_decay * param. The grads are not modified. */

/* SGD: g' = g + wd p; buf = g' on step 1, else momentum buf + (1 - dampening)
 * g'; the step direction is g' + momentum buf (nesterov) or buf; p -= lr dir.
 * momentum == 0: plain p -= lr g' and buf is not touched (may be NULL). */
typedef struct ref_sgd {
    double lr, momentum, dampening, weight_decay;
    int nesterov;
} ref_sgd;
void ref_optim_sgd_step(const ref_sgd *o, size_t n, int t, double *param, const double *grad,
                        double *buf);

/* Adam: m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; mhat = m / (1 -
 * b1^t); vhat = v / (1 - b2^t); p -= lr mhat / (sqrt(vhat) + eps). m, v start
 * at 0 and are updated in place. */
typedef struct ref_adam {
    double lr, beta1, beta2, eps, weight_decay;
} ref_adam;
void ref_optim_adam_step(const ref_adam *o, size_t n, int t, double *param, const double *grad,
                         double *m, double *v);

/* RMSprop (not centered, no momentum): v = alpha v + (1 - alpha) g'^2;
 * p -= lr g' / (sqrt(v) + eps). v starts at 0, updated in place. */
typedef struct ref_rmsprop {
    double lr, alpha, eps, weight_decay;
} ref_rmsprop;
void ref_optim_rmsprop_step(const ref_rmsprop *o, size_t n, double *param, const double *grad,
                            double *v);

/* Clip by global norm (torch.nn.utils.clip_grad_norm_): norm = L2 norm of
 * all count arrays together (grads[i] has sizes[i] elements); coef =
 * max_norm / (norm + 1e-6); when coef < 1 every gradient is scaled by coef
 * in place. Returns the norm before clipping. */
double ref_optim_clip_grad_norm(int count, double *const *grads, const size_t *sizes,
                                double max_norm);

#endif /* CLNET_TESTS_REF_H */
