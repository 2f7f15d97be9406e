/* clnet tests: the float64 CPU reference of every primitive (see ref.h).
 * Clarity first: plain loops in the order the formulas read. */
#include "ref.h"

#include <math.h>

/* ---- random numbers ---------------------------------------------------- */

uint64_t ref_rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

double ref_rng_uniform(uint64_t *state)
{
    return (double)(ref_rng_next(state) >> 11) * 0x1.0p-53;
}

void ref_fill_uniform(double *x, size_t n, double lo, double hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * ref_rng_uniform(state);
}

void ref_fill_int(double *x, size_t n, int lo, int hi, uint64_t *state)
{
    /* The modulo bias is below 2^-40 for small ranges: irrelevant here. */
    uint64_t span = (uint64_t)((int64_t)hi - (int64_t)lo + 1);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)((int64_t)lo + (int64_t)(ref_rng_next(state) % span));
}

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)UINT32_C(0xD2511F53) * c[0];
    uint64_t p1 = (uint64_t)UINT32_C(0xCD9E8D57) * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = c[1], c3 = c[3];
    c[0] = hi1 ^ c1 ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k[1];
    c[3] = lo0;
}

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
    uint32_t k[2] = { key[0], key[1] };
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key is bumped between rounds */
            k[0] += UINT32_C(0x9E3779B9);
            k[1] += UINT32_C(0xBB67AE85);
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

/* ---- elementwise and reductions ---------------------------------------- */

void ref_eltwise_add(size_t n, const double *a, const double *b, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void ref_eltwise_mul(size_t n, const double *a, const double *b, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void ref_eltwise_mul_backward(size_t n, const double *a, const double *b, const double *dy,
                              double *da, double *db)
{
    for (size_t i = 0; i < n; i++) {
        if (da)
            da[i] = dy[i] * b[i];
        if (db)
            db[i] = dy[i] * a[i];
    }
}

void ref_eltwise_scale(size_t n, double alpha, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = alpha * x[i];
}

void ref_eltwise_axpy(size_t n, double alpha, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* Neumaier's variant of Kahan summation: the rounding error of each add is
 * recovered exactly (TwoSum-like) and summed separately. */
typedef struct neumaier {
    double sum, comp;
} neumaier;

static void neumaier_add(neumaier *acc, double v)
{
    double t = acc->sum + v;
    if (fabs(acc->sum) >= fabs(v))
        acc->comp += (acc->sum - t) + v;
    else
        acc->comp += (v - t) + acc->sum;
    acc->sum = t;
}

double ref_reduce_sum(size_t n, const double *x)
{
    neumaier acc = { 0.0, 0.0 };
    for (size_t i = 0; i < n; i++)
        neumaier_add(&acc, x[i]);
    return acc.sum + acc.comp;
}

double ref_reduce_dot(size_t n, const double *a, const double *b)
{
    neumaier acc = { 0.0, 0.0 };
    for (size_t i = 0; i < n; i++)
        neumaier_add(&acc, a[i] * b[i]);
    return acc.sum + acc.comp;
}

/* ---- GEMM -------------------------------------------------------------- */

/* Index of op(X)[i][j] in X stored with leading dimension ld. */
static size_t op_index(int trans, int ld, int i, int j)
{
    return trans ? (size_t)j * (size_t)ld + (size_t)i : (size_t)i * (size_t)ld + (size_t)j;
}

void ref_gemm_forward(const ref_gemm *g, const double *a, const double *b, double *c)
{
    for (int i = 0; i < g->m; i++) {
        for (int j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int p = 0; p < g->k; p++)
                acc +=
                    a[op_index(g->trans_a, g->lda, i, p)] * b[op_index(g->trans_b, g->ldb, p, j)];
            double *cij = &c[(size_t)i * (size_t)g->ldc + (size_t)j];
            /* beta == 0 must not read C: it may hold NaN. */
            *cij = g->beta == 0.0 ? g->alpha * acc : g->alpha * acc + g->beta * *cij;
        }
    }
}

void ref_gemm_backward(const ref_gemm *g, const double *a, const double *b, const double *dc,
                       double *da, double *db)
{
    size_t ldc = (size_t)g->ldc;
    for (int i = 0; da && i < g->m; i++) { /* dop(A)[i][p] */
        for (int p = 0; p < g->k; p++) {
            double acc = 0.0;
            for (int j = 0; j < g->n; j++)
                acc += dc[(size_t)i * ldc + (size_t)j] * b[op_index(g->trans_b, g->ldb, p, j)];
            da[op_index(g->trans_a, g->lda, i, p)] = g->alpha * acc;
        }
    }
    for (int p = 0; db && p < g->k; p++) { /* dop(B)[p][j] */
        for (int j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int i = 0; i < g->m; i++)
                acc += a[op_index(g->trans_a, g->lda, i, p)] * dc[(size_t)i * ldc + (size_t)j];
            db[op_index(g->trans_b, g->ldb, p, j)] = g->alpha * acc;
        }
    }
}

void ref_gemm_strided_batched_forward(const ref_gemm *g, const double *a, const double *b,
                                      double *c)
{
    for (int i = 0; i < g->batch; i++) {
        size_t bi = (size_t)i;
        ref_gemm_forward(g, a + bi * g->stride_a, b + bi * g->stride_b, c + bi * g->stride_c);
    }
}

void ref_gemm_strided_batched_backward(const ref_gemm *g, const double *a, const double *b,
                                       const double *dc, double *da, double *db)
{
    for (int i = 0; i < g->batch; i++) {
        size_t bi = (size_t)i;
        ref_gemm_backward(g, a + bi * g->stride_a, b + bi * g->stride_b, dc + bi * g->stride_c,
                          da ? da + bi * g->stride_a : NULL, db ? db + bi * g->stride_b : NULL);
    }
}

/* ---- 2-D convolution ---------------------------------------------------- */

int ref_conv2d_out_h(const ref_conv2d *p)
{
    return (p->h + p->pad_t + p->pad_b - p->dil_h * (p->r - 1) - 1) / p->stride_h + 1;
}

int ref_conv2d_out_w(const ref_conv2d *p)
{
    return (p->w + p->pad_l + p->pad_r - p->dil_w * (p->s - 1) - 1) / p->stride_w + 1;
}

/* Flat index of element (a, b, c, d) of a 4-D array of dims (., B, C, D). */
static size_t at4(int B, int C, int D, int a, int b, int c, int d)
{
    return (((size_t)a * (size_t)B + (size_t)b) * (size_t)C + (size_t)c) * (size_t)D + (size_t)d;
}

/* The input row/column that output (i, j) reads through kernel tap (u, v);
 * returns 0 when that falls in the zero padding. */
static int conv_tap(const ref_conv2d *p, int i, int j, int u, int v, int *iy, int *ix)
{
    *iy = i * p->stride_h - p->pad_t + u * p->dil_h;
    *ix = j * p->stride_w - p->pad_l + v * p->dil_w;
    return *iy >= 0 && *iy < p->h && *ix >= 0 && *ix < p->w;
}

void ref_conv2d_forward(const ref_conv2d *p, const double *x, const double *w, const double *bias,
                        double *y)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double acc = bias ? bias[k] : 0.0;
                    for (int c = 0; c < p->c; c++)
                        for (int u = 0; u < p->r; u++)
                            for (int v = 0; v < p->s; v++) {
                                int iy, ix;
                                if (conv_tap(p, i, j, u, v, &iy, &ix))
                                    acc += w[at4(p->c, p->r, p->s, k, c, u, v)] *
                                           x[at4(p->c, p->h, p->w, n, c, iy, ix)];
                            }
                    y[at4(p->k, oh, ow, n, k, i, j)] = acc;
                }
}

void ref_conv2d_backward_data(const ref_conv2d *p, const double *w, const double *dy, double *dx)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    for (size_t e = 0; e < nx; e++)
        dx[e] = 0.0;
    /* Scatter: every (output, tap) pair that read x sends dy * w back. */
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double g = dy[at4(p->k, oh, ow, n, k, i, j)];
                    for (int c = 0; c < p->c; c++)
                        for (int u = 0; u < p->r; u++)
                            for (int v = 0; v < p->s; v++) {
                                int iy, ix;
                                if (conv_tap(p, i, j, u, v, &iy, &ix))
                                    dx[at4(p->c, p->h, p->w, n, c, iy, ix)] +=
                                        g * w[at4(p->c, p->r, p->s, k, c, u, v)];
                            }
                }
}

void ref_conv2d_backward_filter(const ref_conv2d *p, const double *x, const double *dy, double *dw)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    for (int k = 0; k < p->k; k++)
        for (int c = 0; c < p->c; c++)
            for (int u = 0; u < p->r; u++)
                for (int v = 0; v < p->s; v++) {
                    double acc = 0.0;
                    for (int n = 0; n < p->n; n++)
                        for (int i = 0; i < oh; i++)
                            for (int j = 0; j < ow; j++) {
                                int iy, ix;
                                if (conv_tap(p, i, j, u, v, &iy, &ix))
                                    acc += dy[at4(p->k, oh, ow, n, k, i, j)] *
                                           x[at4(p->c, p->h, p->w, n, c, iy, ix)];
                            }
                    dw[at4(p->c, p->r, p->s, k, c, u, v)] = acc;
                }
}

void ref_conv2d_backward_bias(const ref_conv2d *p, const double *dy, double *db)
{
    int hw = ref_conv2d_out_h(p) * ref_conv2d_out_w(p);
    ref_bias_backward(p->n, p->k, hw, dy, db);
}

void ref_conv2d_transpose_forward(const ref_conv2d *p, const double *x, const double *w,
                                  const double *bias, double *y)
{
    /* The transposed convolution IS the data gradient of convolution p. */
    ref_conv2d_backward_data(p, w, x, y);
    if (bias)
        ref_bias_forward(p->n, p->c, p->h * p->w, y, bias, y);
}

/* ---- 2-D pooling -------------------------------------------------------- */

int ref_pool2d_out_h(const ref_pool2d *p)
{
    return (p->h + p->pad_t + p->pad_b - p->kh) / p->stride_h + 1;
}

int ref_pool2d_out_w(const ref_pool2d *p)
{
    return (p->w + p->pad_l + p->pad_r - p->kw) / p->stride_w + 1;
}

/* Flat index into x of the first maximum of window (n, c, i, j) in scan
 * order, the first NaN if any; -1 when the window holds no input element. */
static long pool_max_argmax(const ref_pool2d *p, const double *x, int n, int c, int i, int j)
{
    long best = -1;
    for (int u = 0; u < p->kh; u++)
        for (int v = 0; v < p->kw; v++) {
            int iy = i * p->stride_h - p->pad_t + u;
            int ix = j * p->stride_w - p->pad_l + v;
            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w)
                continue;
            long e = (long)at4(p->c, p->h, p->w, n, c, iy, ix);
            if (best < 0 || (!isnan(x[best]) && (x[e] > x[best] || isnan(x[e]))))
                best = e;
        }
    return best;
}

void ref_pool2d_max_forward(const ref_pool2d *p, const double *x, double *y)
{
    int oh = ref_pool2d_out_h(p), ow = ref_pool2d_out_w(p);
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    long e = pool_max_argmax(p, x, n, c, i, j);
                    y[at4(p->c, oh, ow, n, c, i, j)] = e < 0 ? -INFINITY : x[e];
                }
}

void ref_pool2d_max_backward(const ref_pool2d *p, const double *x, const double *dy, double *dx)
{
    int oh = ref_pool2d_out_h(p), ow = ref_pool2d_out_w(p);
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    for (size_t e = 0; e < nx; e++)
        dx[e] = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    long e = pool_max_argmax(p, x, n, c, i, j);
                    if (e >= 0)
                        dx[e] += dy[at4(p->c, oh, ow, n, c, i, j)];
                }
}

/* The divisor of average window (i, j): see ref.h. */
static double pool_avg_divisor(const ref_pool2d *p, int i, int j)
{
    if (p->count_include_pad)
        return (double)p->kh * (double)p->kw;
    int count = 0;
    for (int u = 0; u < p->kh; u++)
        for (int v = 0; v < p->kw; v++) {
            int iy = i * p->stride_h - p->pad_t + u;
            int ix = j * p->stride_w - p->pad_l + v;
            count += iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
        }
    return (double)count;
}

void ref_pool2d_avg_forward(const ref_pool2d *p, const double *x, double *y)
{
    int oh = ref_pool2d_out_h(p), ow = ref_pool2d_out_w(p);
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double acc = 0.0;
                    for (int u = 0; u < p->kh; u++)
                        for (int v = 0; v < p->kw; v++) {
                            int iy = i * p->stride_h - p->pad_t + u;
                            int ix = j * p->stride_w - p->pad_l + v;
                            if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                                acc += x[at4(p->c, p->h, p->w, n, c, iy, ix)];
                        }
                    y[at4(p->c, oh, ow, n, c, i, j)] = acc / pool_avg_divisor(p, i, j);
                }
}

void ref_pool2d_avg_backward(const ref_pool2d *p, const double *dy, double *dx)
{
    int oh = ref_pool2d_out_h(p), ow = ref_pool2d_out_w(p);
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    for (size_t e = 0; e < nx; e++)
        dx[e] = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double g = dy[at4(p->c, oh, ow, n, c, i, j)] / pool_avg_divisor(p, i, j);
                    for (int u = 0; u < p->kh; u++)
                        for (int v = 0; v < p->kw; v++) {
                            int iy = i * p->stride_h - p->pad_t + u;
                            int ix = j * p->stride_w - p->pad_l + v;
                            if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                                dx[at4(p->c, p->h, p->w, n, c, iy, ix)] += g;
                        }
                }
}

/* ---- nearest upsampling ------------------------------------------------- */

void ref_upsample2d_nearest_forward(int n, int c, int h, int w, int sh, int sw, const double *x,
                                    double *y)
{
    int oh = h * sh, ow = w * sw;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    y[at4(c, oh, ow, b, ch, i, j)] = x[at4(c, h, w, b, ch, i / sh, j / sw)];
}

void ref_upsample2d_nearest_backward(int n, int c, int h, int w, int sh, int sw, const double *dy,
                                     double *dx)
{
    int oh = h * sh, ow = w * sw;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    double acc = 0.0;
                    for (int u = 0; u < sh; u++)
                        for (int v = 0; v < sw; v++)
                            acc += dy[at4(c, oh, ow, b, ch, i * sh + u, j * sw + v)];
                    dx[at4(c, h, w, b, ch, i, j)] = acc;
                }
}

/* ---- activations -------------------------------------------------------- */

void ref_act_relu_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = isnan(x[i]) ? x[i] : (x[i] > 0.0 ? x[i] : 0.0);
}

void ref_act_relu_backward(size_t n, const double *x, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0 ? dy[i] : 0.0;
}

void ref_act_relu6_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = isnan(x[i]) ? x[i] : fmin(fmax(x[i], 0.0), 6.0);
}

void ref_act_relu6_backward(size_t n, const double *x, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0 && x[i] < 6.0 ? dy[i] : 0.0;
}

void ref_act_hard_swish_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * (fmin(fmax(x[i] + 3.0, 0.0), 6.0) / 6.0);
}

void ref_act_hard_swish_backward(size_t n, const double *x, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] < -3.0 ? 0.0 : x[i] <= 3.0 ? dy[i] * (2.0 * x[i] + 3.0) / 6.0 : dy[i];
}

void ref_act_leaky_relu_forward(size_t n, double alpha, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0 ? x[i] : alpha * x[i];
}

void ref_act_leaky_relu_backward(size_t n, double alpha, const double *x, const double *dy,
                                 double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0 ? dy[i] : alpha * dy[i];
}

/* exp of a non-positive argument only: no overflow for any x. */
static double sigmoid(double x)
{
    if (x >= 0.0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void ref_act_sigmoid_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = sigmoid(x[i]);
}

void ref_act_sigmoid_backward(size_t n, const double *y, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0 - y[i]);
}

void ref_act_tanh_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanh(x[i]);
}

void ref_act_tanh_backward(size_t n, const double *y, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0 - y[i] * y[i]);
}

/* ---- softmax ------------------------------------------------------------ */

static double row_max(int cols, const double *x)
{
    double m = x[0];
    for (int j = 1; j < cols; j++)
        if (x[j] > m)
            m = x[j];
    return m;
}

/* log(sum_j exp(x_j - m)) for the row maximum m: the log-softmax is then
 * (x_j - m) - this, which stays exact where x_j - lse would cancel. */
static double row_log_sum_exp_shifted(int cols, const double *x, double m)
{
    double s = 0.0;
    for (int j = 0; j < cols; j++)
        s += exp(x[j] - m);
    return log(s);
}

void ref_softmax_forward(int rows, int cols, const double *x, double *y)
{
    for (int i = 0; i < rows; i++) {
        const double *xr = x + (size_t)i * (size_t)cols;
        double *yr = y + (size_t)i * (size_t)cols;
        double m = row_max(cols, xr), s = 0.0;
        for (int j = 0; j < cols; j++)
            s += exp(xr[j] - m);
        for (int j = 0; j < cols; j++)
            yr[j] = exp(xr[j] - m) / s;
    }
}

void ref_softmax_backward(int rows, int cols, const double *y, const double *dy, double *dx)
{
    for (int i = 0; i < rows; i++) {
        size_t o = (size_t)i * (size_t)cols;
        double dot = 0.0;
        for (int j = 0; j < cols; j++)
            dot += dy[o + (size_t)j] * y[o + (size_t)j];
        for (int j = 0; j < cols; j++)
            dx[o + (size_t)j] = y[o + (size_t)j] * (dy[o + (size_t)j] - dot);
    }
}

void ref_log_softmax_forward(int rows, int cols, const double *x, double *y)
{
    for (int i = 0; i < rows; i++) {
        size_t o = (size_t)i * (size_t)cols;
        double m = row_max(cols, x + o);
        double ls = row_log_sum_exp_shifted(cols, x + o, m);
        for (int j = 0; j < cols; j++)
            y[o + (size_t)j] = (x[o + (size_t)j] - m) - ls;
    }
}

void ref_log_softmax_backward(int rows, int cols, const double *y, const double *dy, double *dx)
{
    for (int i = 0; i < rows; i++) {
        size_t o = (size_t)i * (size_t)cols;
        double sum = 0.0;
        for (int j = 0; j < cols; j++)
            sum += dy[o + (size_t)j];
        for (int j = 0; j < cols; j++)
            dx[o + (size_t)j] = dy[o + (size_t)j] - exp(y[o + (size_t)j]) * sum;
    }
}

/* ---- bias --------------------------------------------------------------- */

void ref_bias_forward(int n, int c, int hw, const double *x, const double *b, double *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int e = 0; e < hw; e++) {
                size_t k = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw + (size_t)e;
                y[k] = x[k] + b[ch];
            }
}

void ref_bias_backward(int n, int c, int hw, const double *dy, double *db)
{
    for (int ch = 0; ch < c; ch++) {
        double acc = 0.0;
        for (int i = 0; i < n; i++)
            for (int e = 0; e < hw; e++)
                acc += dy[((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw + (size_t)e];
        db[ch] = acc;
    }
}

/* ---- losses and metrics ------------------------------------------------- */

double ref_loss_mse(size_t n, const double *pred, const double *target, double *dpred)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = pred[i] - target[i];
        sum += d * d;
        if (dpred)
            dpred[i] = 2.0 * d / (double)n;
    }
    return sum / (double)n;
}

double ref_loss_bce_logits(size_t n, const double *x, const double *t, double *dx)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += fmax(x[i], 0.0) - x[i] * t[i] + log1p(exp(-fabs(x[i])));
        if (dx)
            dx[i] = (sigmoid(x[i]) - t[i]) / (double)n;
    }
    return sum / (double)n;
}

double ref_loss_softmax_xent(int rows, int classes, const double *x, const double *t, double *dx)
{
    double loss = 0.0;
    for (int i = 0; i < rows; i++) {
        size_t o = (size_t)i * (size_t)classes;
        double m = row_max(classes, x + o), tsum = 0.0;
        double ls = row_log_sum_exp_shifted(classes, x + o, m);
        for (int j = 0; j < classes; j++)
            tsum += t[o + (size_t)j];
        for (int j = 0; j < classes; j++) {
            double logp = (x[o + (size_t)j] - m) - ls;
            loss -= t[o + (size_t)j] * logp;
            if (dx)
                dx[o + (size_t)j] = (exp(logp) * tsum - t[o + (size_t)j]) / (double)rows;
        }
    }
    return loss / (double)rows;
}

double ref_loss_sparse_softmax_xent(int rows, int classes, const double *x, const int32_t *labels,
                                    double *dx)
{
    double loss = 0.0;
    for (int i = 0; i < rows; i++) {
        size_t o = (size_t)i * (size_t)classes;
        double m = row_max(classes, x + o);
        double ls = row_log_sum_exp_shifted(classes, x + o, m);
        loss -= (x[o + (size_t)labels[i]] - m) - ls;
        for (int j = 0; dx && j < classes; j++)
            dx[o + (size_t)j] =
                (exp((x[o + (size_t)j] - m) - ls) - (j == labels[i] ? 1.0 : 0.0)) / (double)rows;
    }
    return loss / (double)rows;
}

double ref_metric_accuracy(int rows, int classes, const double *x, const int32_t *labels)
{
    int correct = 0;
    for (int i = 0; i < rows; i++) {
        const double *xr = x + (size_t)i * (size_t)classes;
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (xr[j] > xr[best]) /* strict: the first maximum wins */
                best = j;
        correct += best == labels[i];
    }
    return (double)correct / (double)rows;
}

double ref_loss_mae(size_t n, const double *pred, const double *target, double *dpred)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = pred[i] - target[i];
        sum += fabs(d);
        if (dpred)
            dpred[i] = (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) / (double)n;
    }
    return sum / (double)n;
}

static int first_argmax(const double *v, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

double ref_metric_categorical_accuracy(int rows, int classes, const double *x, const double *t)
{
    int correct = 0;
    for (int i = 0; i < rows; i++)
        correct += first_argmax(x + (size_t)i * (size_t)classes, classes) ==
                   first_argmax(t + (size_t)i * (size_t)classes, classes);
    return (double)correct / (double)rows;
}

double ref_metric_binary_accuracy(size_t n, const double *x, const double *t, double threshold)
{
    size_t correct = 0;
    for (size_t i = 0; i < n; i++)
        correct += (x[i] > threshold) == (t[i] > 0.5);
    return (double)correct / (double)n;
}

/* ---- batch normalization ------------------------------------------------ */

static size_t bn_at(const ref_batchnorm *p, int n, int c, int e)
{
    return ((size_t)n * (size_t)p->c + (size_t)c) * (size_t)p->hw + (size_t)e;
}

/* Mean and biased variance (two passes) of channel c. */
static void bn_stats(const ref_batchnorm *p, const double *x, int c, double *mean, double *var)
{
    double m = (double)p->n * (double)p->hw, s = 0.0, ss = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int e = 0; e < p->hw; e++)
            s += x[bn_at(p, n, c, e)];
    *mean = s / m;
    for (int n = 0; n < p->n; n++)
        for (int e = 0; e < p->hw; e++) {
            double d = x[bn_at(p, n, c, e)] - *mean;
            ss += d * d;
        }
    *var = ss / m;
}

/* y = gamma (x - mean) invstd + beta over channel c. */
static void bn_apply(const ref_batchnorm *p, const double *x, const double *gamma,
                     const double *beta, int c, double mean, double invstd, double *y)
{
    double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
    for (int n = 0; n < p->n; n++)
        for (int e = 0; e < p->hw; e++) {
            size_t k = bn_at(p, n, c, e);
            y[k] = g * (x[k] - mean) * invstd + b;
        }
}

void ref_batchnorm_forward_training(const ref_batchnorm *p, const double *x, const double *gamma,
                                    const double *beta, double *y, double *save_mean,
                                    double *save_invstd, double *running_mean, double *running_var)
{
    double m = (double)p->n * (double)p->hw;
    for (int c = 0; c < p->c; c++) {
        double mean, var;
        bn_stats(p, x, c, &mean, &var);
        double invstd = 1.0 / sqrt(var + p->eps);
        bn_apply(p, x, gamma, beta, c, mean, invstd, y);
        if (save_mean)
            save_mean[c] = mean;
        if (save_invstd)
            save_invstd[c] = invstd;
        if (running_mean)
            running_mean[c] = (1.0 - p->momentum) * running_mean[c] + p->momentum * mean;
        if (running_var)
            running_var[c] =
                (1.0 - p->momentum) * running_var[c] + p->momentum * var * m / (m - 1.0);
    }
}

void ref_batchnorm_forward_inference(const ref_batchnorm *p, const double *x, const double *gamma,
                                     const double *beta, const double *running_mean,
                                     const double *running_var, double *y)
{
    for (int c = 0; c < p->c; c++)
        bn_apply(p, x, gamma, beta, c, running_mean[c], 1.0 / sqrt(running_var[c] + p->eps), y);
}

/* Sums of dy and dy * xhat over channel c. */
static void bn_grad_sums(const ref_batchnorm *p, const double *x, const double *dy, int c,
                         double mean, double invstd, double *sum_dy, double *sum_dy_xhat)
{
    double s = 0.0, sx = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int e = 0; e < p->hw; e++) {
            size_t k = bn_at(p, n, c, e);
            s += dy[k];
            sx += dy[k] * (x[k] - mean) * invstd;
        }
    *sum_dy = s;
    *sum_dy_xhat = sx;
}

void ref_batchnorm_backward_training(const ref_batchnorm *p, const double *x, const double *dy,
                                     const double *gamma, const double *save_mean,
                                     const double *save_invstd, double *dx, double *dgamma,
                                     double *dbeta)
{
    double m = (double)p->n * (double)p->hw;
    for (int c = 0; c < p->c; c++) {
        double mean = save_mean[c], invstd = save_invstd[c], sdy, sdyx;
        double g = gamma ? gamma[c] : 1.0;
        bn_grad_sums(p, x, dy, c, mean, invstd, &sdy, &sdyx);
        for (int n = 0; n < p->n; n++)
            for (int e = 0; e < p->hw; e++) {
                size_t k = bn_at(p, n, c, e);
                double xhat = (x[k] - mean) * invstd;
                dx[k] = g * invstd / m * (m * dy[k] - sdy - xhat * sdyx);
            }
        if (dgamma)
            dgamma[c] = sdyx;
        if (dbeta)
            dbeta[c] = sdy;
    }
}

void ref_batchnorm_backward_inference(const ref_batchnorm *p, const double *x, const double *dy,
                                      const double *gamma, const double *running_mean,
                                      const double *running_var, double *dx, double *dgamma,
                                      double *dbeta)
{
    for (int c = 0; c < p->c; c++) {
        double invstd = 1.0 / sqrt(running_var[c] + p->eps), sdy, sdyx;
        double g = gamma ? gamma[c] : 1.0;
        bn_grad_sums(p, x, dy, c, running_mean[c], invstd, &sdy, &sdyx);
        for (int n = 0; n < p->n; n++)
            for (int e = 0; e < p->hw; e++) {
                size_t k = bn_at(p, n, c, e);
                dx[k] = dy[k] * g * invstd;
            }
        if (dgamma)
            dgamma[c] = sdyx;
        if (dbeta)
            dbeta[c] = sdy;
    }
}

/* ---- dropout ------------------------------------------------------------ */

void ref_dropout_forward(size_t n, double p, const uint8_t *mask, const double *x, double *y)
{
    double scale = p >= 1.0 ? 0.0 : 1.0 / (1.0 - p);
    for (size_t i = 0; i < n; i++)
        y[i] = mask[i] ? x[i] * scale : 0.0;
}

void ref_dropout_backward(size_t n, double p, const uint8_t *mask, const double *dy, double *dx)
{
    ref_dropout_forward(n, p, mask, dy, dx); /* the map is linear, diagonal */
}

/* ---- optimizers --------------------------------------------------------- */

void ref_optim_sgd_step(const ref_sgd *o, size_t n, int t, double *param, const double *grad,
                        double *buf)
{
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] + o->weight_decay * param[i];
        if (o->momentum != 0.0) {
            if (t <= 1)
                buf[i] = g;
            else
                buf[i] = o->momentum * buf[i] + (1.0 - o->dampening) * g;
            g = o->nesterov ? g + o->momentum * buf[i] : buf[i];
        }
        param[i] -= o->lr * g;
    }
}

void ref_optim_adam_step(const ref_adam *o, size_t n, int t, double *param, const double *grad,
                         double *m, double *v)
{
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] + o->weight_decay * param[i];
        m[i] = o->beta1 * m[i] + (1.0 - o->beta1) * g;
        v[i] = o->beta2 * v[i] + (1.0 - o->beta2) * g * g;
        double mhat = m[i] / bc1, vhat = v[i] / bc2;
        param[i] -= o->lr * mhat / (sqrt(vhat) + o->eps);
    }
}

void ref_optim_rmsprop_step(const ref_rmsprop *o, size_t n, double *param, const double *grad,
                            double *v)
{
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] + o->weight_decay * param[i];
        v[i] = o->alpha * v[i] + (1.0 - o->alpha) * g * g;
        param[i] -= o->lr * g / (sqrt(v[i]) + o->eps);
    }
}

double ref_optim_clip_grad_norm(int count, double *const *grads, const size_t *sizes,
                                double max_norm)
{
    neumaier acc = { 0.0, 0.0 };
    for (int a = 0; a < count; a++)
        for (size_t i = 0; i < sizes[a]; i++)
            neumaier_add(&acc, grads[a][i] * grads[a][i]);
    double norm = sqrt(acc.sum + acc.comp);
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (int a = 0; a < count; a++)
            ref_eltwise_scale(sizes[a], coef, grads[a], grads[a]);
    return norm;
}
