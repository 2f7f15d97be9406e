/* clnet — graph-model primitives (src/ops/merge.c): elementwise merges,
 * concatenation and its split, global average pooling, the VAE's sampling
 * and KL term. Every operand has its own element offset, so views into
 * shared buffers work. Gradients accumulate: dx = g + beta * dx, where
 * beta == 0 never reads dx (a NaN there does not propagate). */
#pragma OPENCL FP_CONTRACT OFF

enum { MERGE_ADD = 0, MERGE_SUBTRACT = 1, MERGE_MULTIPLY = 2 };

/* g + beta * old, reading old only when beta != 0. */
static float accumulate(float g, float beta, __global const float *old)
{
    return beta != 0.0f ? g + beta * *old : g;
}

/* The eight input slots of a merge; slots at and past n are not read. */
#define MERGE_INPUTS                                                                               \
    __global const float *x0, ulong o0, __global const float *x1, ulong o1,                        \
        __global const float *x2, ulong o2, __global const float *x3, ulong o3,                    \
        __global const float *x4, ulong o4, __global const float *x5, ulong o5,                    \
        __global const float *x6, ulong o6, __global const float *x7, ulong o7

/* y = x0 op x1 op ... op x(n-1), left to right, one rounding per op. */
__kernel void merge_forward(__global float *y, ulong yo, int op, int n, ulong count, MERGE_INPUTS)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    float acc = x0[o0 + i];
#define TERM(k)                                                                                    \
    if (n > k) {                                                                                   \
        float v = x##k[o##k + i];                                                                  \
        acc = op == MERGE_MULTIPLY ? acc * v : op == MERGE_SUBTRACT ? acc - v : acc + v;           \
    }
    TERM(1);
    TERM(2);
    TERM(3);
    TERM(4);
    TERM(5);
    TERM(6);
    TERM(7);
#undef TERM
    y[yo + i] = acc;
}

/* The gradient into input `skip`: dy times its partial derivative, which is
 * 1 (add), +-1 (subtract) or the product of the other inputs, left to right
 * (multiply). */
__kernel void merge_backward(__global float *dx, ulong dxo, __global const float *dy, ulong dyo,
                             int op, int n, int skip, float beta, ulong count, MERGE_INPUTS)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    float g = dy[dyo + i];
    if (op == MERGE_SUBTRACT && skip == 1) {
        g = -g;
    } else if (op == MERGE_MULTIPLY) {
        float p = 1.0f;
#define FACTOR(k)                                                                                  \
    if (n > k && skip != k)                                                                        \
        p = p * x##k[o##k + i];
        FACTOR(0);
        FACTOR(1);
        FACTOR(2);
        FACTOR(3);
        FACTOR(4);
        FACTOR(5);
        FACTOR(6);
        FACTOR(7);
#undef FACTOR
        g = g * p;
    }
    dx[dxo + i] = accumulate(g, beta, dx + dxo + i);
}

/* Concatenation: x is (outer, inner) and fills columns off .. off + inner - 1
 * of y, which is (outer, y_inner). One work-item per element of x. */
__kernel void concat_forward(__global float *y, ulong yo, ulong y_inner, ulong off,
                             __global const float *x, ulong xo, ulong inner, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    ulong o = i / inner, j = i - o * inner;
    y[yo + o * y_inner + off + j] = x[xo + i];
}

/* The split: dx (outer, inner) = those columns of dy (+ beta * dx). */
__kernel void concat_backward(__global float *dx, ulong dxo, ulong inner, __global const float *dy,
                              ulong dyo, ulong y_inner, ulong off, float beta, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    ulong o = i / inner, j = i - o * inner;
    dx[dxo + i] = accumulate(dy[dyo + o * y_inner + off + j], beta, dx + dxo + i);
}

/* One work-item per (n, c) plane of hw pixels: the sum in order, then one
 * division by hw. */
__kernel void gap_forward(__global float *y, ulong yo, __global const float *x, ulong xo, ulong hw,
                          ulong planes)
{
    size_t p = get_global_id(0);
    if (p >= planes)
        return;
    __global const float *src = x + xo + p * hw;
    float s = -0.0f; /* the additive identity: a plane of -0 has the mean -0 */
    for (ulong k = 0; k < hw; k++)
        s += src[k];
    y[yo + p] = s / (float)hw;
}

__kernel void gap_backward(__global float *dx, ulong dxo, __global const float *dy, ulong dyo,
                           ulong hw, float beta, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    dx[dxo + i] = accumulate(dy[dyo + i / hw] / (float)hw, beta, dx + dxo + i);
}

/* z = mean + exp(logvar / 2) * eps. */
__kernel void sampling_forward(__global float *z, ulong zo, __global const float *mean, ulong mo,
                               __global const float *logvar, ulong lo, __global const float *eps,
                               ulong eo, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    z[zo + i] = mean[mo + i] + exp(0.5f * logvar[lo + i]) * eps[eo + i];
}

/* dmean = dz (+ beta dmean); dlogvar = dz * eps * exp(logvar / 2) / 2
 * (+ beta dlogvar); want_mean / want_logvar say which to write. */
__kernel void sampling_backward(__global float *dmean, ulong dmo, __global float *dlogvar,
                                ulong dlo, __global const float *logvar, ulong lo,
                                __global const float *eps, ulong eo, __global const float *dz,
                                ulong dzo, int want_mean, int want_logvar, float beta, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    float g = dz[dzo + i];
    if (want_mean)
        dmean[dmo + i] = accumulate(g, beta, dmean + dmo + i);
    if (want_logvar) {
        float d = g * eps[eo + i] * exp(0.5f * logvar[lo + i]) * 0.5f;
        dlogvar[dlo + i] = accumulate(d, beta, dlogvar + dlo + i);
    }
}

/* One work-item per row of cols: kl = -0.5 * sum_j (1 + lv - m^2 - exp(lv)),
 * each term as (lv - expm1(lv)) - m^2, which keeps its accuracy where
 * lv is near 0 (1 + lv - exp(lv) would cancel). */
__kernel void kl_rows(__global float *kl, ulong ko, __global const float *mean, ulong mo,
                      __global const float *logvar, ulong lo, int cols, ulong rows)
{
    size_t r = get_global_id(0);
    if (r >= rows)
        return;
    float s = 0.0f;
    for (int j = 0; j < cols; j++) {
        float m = mean[mo + r * cols + j], lv = logvar[lo + r * cols + j];
        s += (lv - expm1(lv)) - m * m;
    }
    kl[ko + r] = -0.5f * s;
}

/* One work-item: the rows' values added in order; divided by rows for the
 * mean (mean != 0). */
__kernel void kl_reduce(__global float *loss, ulong lso, __global const float *kl, ulong rows,
                        int mean)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f;
    for (ulong r = 0; r < rows; r++)
        s += kl[r];
    loss[lso] = mean ? s / (float)rows : s;
}

/* dmean = s * m, dlogvar = s * expm1(lv) / 2, each + beta * old. */
__kernel void kl_backward(__global float *dmean, ulong dmo, __global float *dlogvar, ulong dlo,
                          __global const float *mean, ulong mo, __global const float *logvar,
                          ulong lo, int want_mean, int want_logvar, float s, float beta,
                          ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    if (want_mean)
        dmean[dmo + i] = accumulate(s * mean[mo + i], beta, dmean + dmo + i);
    if (want_logvar)
        dlogvar[dlo + i] = accumulate(s * expm1(logvar[lo + i]) * 0.5f, beta, dlogvar + dlo + i);
}
