/* clnet — losses and accuracy. Elementwise losses: each work-group sums a
 * strided share of the terms into one partial (writing the gradient of every
 * element it visits); softmax cross-entropy: a row per work-item (_item) or
 * per work-group (_group) writes the row's loss and gradient. loss_finish then
 * sums partials in a fixed tree and divides: deterministic, no atomics. The
 * row helpers mirror cl/act.cl's softmax (kept in step with it). */
#pragma OPENCL FP_CONTRACT OFF

/* ---- elementwise losses ---------------------------------------------------- */

/* Element i of n is visited by group i / WG % groups: the lane loop below. */
#define FOR_SHARE(i, n)                                                                            \
    for (ulong i = get_group_id(0) * CLNET_WG + get_local_id(0); i < (n);                          \
         i += get_num_groups(0) * CLNET_WG)

/* part[po + group] = sum of (p - t)^2 over the group's share; dp = 2 (p - t) / n
 * for each element visited when has_dp (dp is any valid buffer otherwise). */
__kernel void mse_partial(__global const float *p, ulong pofs, __global const float *t, ulong to,
                          ulong n, __global float *dp, ulong dpo, int has_dp, float nf,
                          __global float *part, ulong po)
{
    __local float s1[CLNET_WG];
    float acc = 0.0f;
    FOR_SHARE(i, n)
    {
        float d = p[pofs + i] - t[to + i];
        acc += d * d;
        if (has_dp)
            dp[dpo + i] = (2.0f * d) / nf;
    }
    acc = group_sum(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* part[po + group] = sum of |p - t| over the group's share; dp = sign(p - t) / n
 * (0 where p = t, as PyTorch's l1_loss) when has_dp. */
__kernel void mae_partial(__global const float *p, ulong pofs, __global const float *t, ulong to,
                          ulong n, __global float *dp, ulong dpo, int has_dp, float nf,
                          __global float *part, ulong po)
{
    __local float s1[CLNET_WG];
    float acc = 0.0f;
    FOR_SHARE(i, n)
    {
        float d = p[pofs + i] - t[to + i];
        acc += fabs(d);
        if (has_dp)
            dp[dpo + i] = (d > 0.0f ? 1.0f : d < 0.0f ? -1.0f : d) / nf;
    }
    acc = group_sum(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* Terms max(x, 0) - x t + log1p(exp(-|x|)); dx = (sigmoid(x) - t) / n with
 * the stable sigmoid of cl/act.cl sharing exp(-|x|). */
__kernel void bce_partial(__global const float *x, ulong xo, __global const float *t, ulong to,
                          ulong n, __global float *dx, ulong dxo, int has_dx, float nf,
                          __global float *part, ulong po)
{
    __local float s1[CLNET_WG];
    float acc = 0.0f;
    FOR_SHARE(i, n)
    {
        float v = x[xo + i], tt = t[to + i];
        float e = exp(-fabs(v));
        acc += (fmax(v, 0.0f) - v * tt) + log1p(e);
        if (has_dx)
            dx[dxo + i] = ((v >= 0.0f ? 1.0f : e) / (1.0f + e) - tt) / nf;
    }
    acc = group_sum(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* out[oo] = (sum of part[po .. po + count)) / divisor, by one work-group. */
__kernel void loss_finish(__global const float *part, ulong po, ulong count, __global float *out,
                          ulong oo, float divisor)
{
    __local float s1[CLNET_WG];
    float acc = 0.0f;
    for (ulong i = get_local_id(0); i < count; i += CLNET_WG)
        acc += part[po + i];
    acc = group_sum(s1, acc);
    if (get_local_id(0) == 0)
        out[oo] = acc / divisor;
}

/* ---- softmax cross-entropy -------------------------------------------------
 * Lane `lane` of `lanes` takes columns lane, lane + lanes, ... The row's
 * maximum m is NaN-propagating; its sum of exponentials is kept as (sum of
 * exp(x_j - m) below the maximum, count of ties with m), so log1p((ties - 1)
 * + sum) is its log without rounding 1 + small (as cl/act.cl's softmax). */

/* (sum exp below the max, ties, sum of t when dense, 0). */
static float4 row_stats_part(__global const float *x, ulong o, __global const float *t, ulong ot,
                             int dense, int cols, float m, int lane, int lanes)
{
    float4 acc = (float4)(0.0f);
    for (int j = lane; j < cols; j += lanes) {
        float v = x[o + j];
        if (v == m)
            acc.y += 1.0f;
        else
            acc.x += exp(v - m);
        if (dense)
            acc.z += t[ot + j];
    }
    return acc;
}

/* Dense targets: returns the lane's share of -sum t_j log p_j (targets of 0
 * add nothing, even against a -Inf logit) and writes dx = (p tsum - t) / rows.
 * A row whose maximum is not finite is NaN. */
static float xent_write(__global const float *x, ulong o, __global const float *t, ulong ot,
                        __global float *dx, ulong ox, int has_dx, int cols, float m, float4 st,
                        int lane, int lanes, float rowsf)
{
    int valid = isfinite(m);
    float ls = log1p((st.y - 1.0f) + st.x), s = st.y + st.x, acc = 0.0f;
    for (int j = lane; j < cols; j += lanes) {
        float d = x[o + j] - m, tj = t[ot + j];
        if (tj != 0.0f)
            acc += tj * (ls - d);
        if (has_dx)
            dx[ox + j] = valid ? (exp(d) / s * st.z - tj) / rowsf : NAN;
    }
    return valid ? acc : NAN;
}

/* Integer label: returns the row's loss ls - (x_label - m) and writes
 * dx = (p - onehot) / rows. A label outside [0, cols) gives NaN and a zero
 * gradient row; a non-finite maximum gives NaN and a NaN gradient row. */
static float sparse_write(__global const float *x, ulong o, __global float *dx, ulong ox,
                          int has_dx, int cols, float m, float4 st, int label, float xl, int lane,
                          int lanes, float rowsf)
{
    int ok = label >= 0 && label < cols, valid = isfinite(m);
    float ls = log1p((st.y - 1.0f) + st.x), s = st.y + st.x;
    for (int j = lane; has_dx && j < cols; j += lanes) {
        float g = (exp(x[o + j] - m) / s - (j == label ? 1.0f : 0.0f)) / rowsf;
        dx[ox + j] = !ok ? 0.0f : valid ? g : NAN;
    }
    return ok && valid ? ls - (xl - m) : NAN;
}

/* Row r per work-item; rowloss[ro + r] = the row's loss. dx may alias x:
 * every read of a row precedes the writes, each to the element just read. */
__kernel void xent_item(__global const float *x, ulong xo, __global const float *t, ulong to,
                        __global float *dx, ulong dxo, int has_dx, __global float *rowloss,
                        ulong ro, ulong rows, int cols, float rowsf)
{
    size_t r = get_global_id(0);
    if (r >= rows)
        return;
    ulong off = r * (ulong)cols;
    float m = row_max_part(x, xo + off, cols, 0, 1);
    float4 st = row_stats_part(x, xo + off, t, to + off, 1, cols, m, 0, 1);
    rowloss[ro + r] =
        xent_write(x, xo + off, t, to + off, dx, dxo + off, has_dx, cols, m, st, 0, 1, rowsf);
}

/* Row r per work-group (exactly rows groups); the reductions' barriers order
 * every read of the row before any write. */
__kernel void xent_group(__global const float *x, ulong xo, __global const float *t, ulong to,
                         __global float *dx, ulong dxo, int has_dx, __global float *rowloss,
                         ulong ro, ulong rows, int cols, float rowsf)
{
    __local float s1[CLNET_WG];
    __local float4 s4[CLNET_WG];
    size_t r = get_group_id(0);
    int lid = get_local_id(0);
    ulong off = r * (ulong)cols;
    float m = group_max(s1, row_max_part(x, xo + off, cols, lid, CLNET_WG));
    float4 st = group_sum4(s4, row_stats_part(x, xo + off, t, to + off, 1, cols, m, lid, CLNET_WG));
    float l = group_sum(s1, xent_write(x, xo + off, t, to + off, dx, dxo + off, has_dx, cols, m, st,
                                       lid, CLNET_WG, rowsf));
    if (lid == 0)
        rowloss[ro + r] = l;
    (void)rows;
}

__kernel void sparse_xent_item(__global const float *x, ulong xo, __global const int *labels,
                               ulong lo, __global float *dx, ulong dxo, int has_dx,
                               __global float *rowloss, ulong ro, ulong rows, int cols, float rowsf)
{
    size_t r = get_global_id(0);
    if (r >= rows)
        return;
    ulong off = r * (ulong)cols;
    int label = labels[lo + r];
    float m = row_max_part(x, xo + off, cols, 0, 1);
    float xl = label >= 0 && label < cols ? x[xo + off + label] : 0.0f;
    float4 st = row_stats_part(x, xo + off, x, 0, 0, cols, m, 0, 1);
    rowloss[ro + r] =
        sparse_write(x, xo + off, dx, dxo + off, has_dx, cols, m, st, label, xl, 0, 1, rowsf);
}

__kernel void sparse_xent_group(__global const float *x, ulong xo, __global const int *labels,
                                ulong lo, __global float *dx, ulong dxo, int has_dx,
                                __global float *rowloss, ulong ro, ulong rows, int cols,
                                float rowsf)
{
    __local float s1[CLNET_WG];
    __local float4 s4[CLNET_WG];
    size_t r = get_group_id(0);
    int lid = get_local_id(0);
    ulong off = r * (ulong)cols;
    int label = labels[lo + r];
    float m = group_max(s1, row_max_part(x, xo + off, cols, lid, CLNET_WG));
    /* Read before group_sum4's barriers: dx may alias x. */
    float xl = label >= 0 && label < cols ? x[xo + off + label] : 0.0f;
    float4 st = group_sum4(s4, row_stats_part(x, xo + off, x, 0, 0, cols, m, lid, CLNET_WG));
    float l = sparse_write(x, xo + off, dx, dxo + off, has_dx, cols, m, st, label, xl, lid,
                           CLNET_WG, rowsf);
    if (lid == 0)
        rowloss[ro + r] = l;
    (void)rows;
}

/* ---- accuracy -------------------------------------------------------------- */

/* part[po + group] = rows of the group's share whose first argmax equals the
 * label (strict >, as the reference; a label out of range never matches). */
__kernel void accuracy_partial(__global const float *x, ulong xo, __global const int *labels,
                               ulong lo, ulong rows, int cols, __global int *part, ulong po)
{
    __local int s1[CLNET_WG];
    int acc = 0;
    FOR_SHARE(r, rows)
    {
        ulong o = xo + r * (ulong)cols;
        int best = 0;
        float bv = x[o];
        for (int j = 1; j < cols; j++) {
            float v = x[o + j];
            if (v > bv) {
                bv = v;
                best = j;
            }
        }
        acc += best == labels[lo + r];
    }
    acc = group_sum_int(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* The first maximum of a row (strict >, left to right). */
static int row_argmax(__global const float *x, ulong o, int cols)
{
    int best = 0;
    float bv = x[o];
    for (int j = 1; j < cols; j++) {
        float v = x[o + j];
        if (v > bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}

/* part[po + group] = rows of the group's share whose first argmax in x equals
 * the first argmax in t (one-hot or probability targets). */
__kernel void categorical_accuracy_partial(__global const float *x, ulong xo,
                                           __global const float *t, ulong to, ulong rows, int cols,
                                           __global int *part, ulong po)
{
    __local int s1[CLNET_WG];
    int acc = 0;
    FOR_SHARE(r, rows)
    {
        acc +=
            row_argmax(x, xo + r * (ulong)cols, cols) == row_argmax(t, to + r * (ulong)cols, cols);
    }
    acc = group_sum_int(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* part[po + group] = elements of the group's share with (x > threshold) ==
 * (t > 0.5); a NaN x counts as not above the threshold. */
__kernel void binary_accuracy_partial(__global const float *x, ulong xo, __global const float *t,
                                      ulong to, ulong n, float threshold, __global int *part,
                                      ulong po)
{
    __local int s1[CLNET_WG];
    int acc = 0;
    FOR_SHARE(i, n)
    {
        acc += (x[xo + i] > threshold) == (t[to + i] > 0.5f);
    }
    acc = group_sum_int(s1, acc);
    if (get_local_id(0) == 0)
        part[po + get_group_id(0)] = acc;
}

/* out[oo] = sum of count partials, stored as int32, or as float32 bits when
 * as_float (out then points at a float tensor's buffer). */
__kernel void count_finish(__global const int *part, ulong po, ulong count, __global int *out,
                           ulong oo, int as_float)
{
    __local int s1[CLNET_WG];
    int acc = 0;
    for (ulong i = get_local_id(0); i < count; i += CLNET_WG)
        acc += part[po + i];
    acc = group_sum_int(s1, acc);
    if (get_local_id(0) == 0)
        out[oo] = as_float ? as_int((float)acc) : acc;
}
