/* clnet — activations, softmax / log-softmax over rows, and the channel bias.
 * Elementwise kernels take one element per work-item. Row kernels come in two
 * variants, a row per work-item (_item) and a row per work-group of CLNET_WG
 * lanes (_group); both reduce in a fixed order, so results are deterministic. */
#pragma OPENCL FP_CONTRACT OFF

/* ---- elementwise activations --------------------------------------------- */

/* y = x (identity forward, and dx = dy for its backward). */
__kernel void act_copy(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n)
        y[yo + i] = x[xo + i];
}

/* NaN propagates; -0 and every non-positive value give +0. */
__kernel void relu_forward(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        y[yo + i] = (v > 0.0f || isnan(v)) ? v : 0.0f;
    }
}

/* NaN propagates as relu's; above 6 (and +Inf) gives 6. */
__kernel void relu6_forward(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        y[yo + i] = isnan(v) ? v : (v > 6.0f ? 6.0f : (v > 0.0f ? v : 0.0f));
    }
}

/* x * (clamp(x + 3, 0, 6) / 6): x + 3 is exact near -3 (Sterbenz), and
 * the division before the product keeps FLT_MAX finite. */
__kernel void hard_swish_forward(__global float *y, ulong yo, __global const float *x, ulong xo,
                                 ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        y[yo + i] = v * (fmin(fmax(v + 3.0f, 0.0f), 6.0f) / 6.0f);
    }
}

__kernel void leaky_relu_forward(__global float *y, ulong yo, __global const float *x, ulong xo,
                                 ulong n, float alpha)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        y[yo + i] = v > 0.0f ? v : alpha * v;
    }
}

/* exp of -|x| only, so nothing overflows: 1 / (1 + e) for x >= 0 and
 * e / (1 + e) for x < 0, the reference's two branches without a branch. */
__kernel void sigmoid_forward(__global float *y, ulong yo, __global const float *x, ulong xo,
                              ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        float e = exp(-fabs(v));
        y[yo + i] = (v >= 0.0f ? 1.0f : e) / (1.0f + e);
    }
}

/* Beyond |x| = 9.0110 (13 ln 2 = 9.01091 rounded up) tanh(x) rounds to +-1
 * in float; some tanh builtins (pocl 3.1) stop at 1 - 2^-24 there, even for
 * +-Inf, so the tail is set explicitly. NaN takes the builtin's path. */
__kernel void tanh_forward(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        y[yo + i] = fabs(v) >= 9.0110f ? copysign(1.0f, v) : tanh(v);
    }
}

__kernel void relu_backward(__global float *dx, ulong dxo, __global const float *x, ulong xo,
                            __global const float *dy, ulong dyo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n)
        dx[dxo + i] = x[xo + i] > 0.0f ? dy[dyo + i] : 0.0f;
}

/* PyTorch's: the gradient passes strictly inside (0, 6). */
__kernel void relu6_backward(__global float *dx, ulong dxo, __global const float *x, ulong xo,
                             __global const float *dy, ulong dyo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i];
        dx[dxo + i] = v > 0.0f && v < 6.0f ? dy[dyo + i] : 0.0f;
    }
}

/* PyTorch's branches; (2x + 3) / 6 rather than x / 3 + 0.5, which cancels
 * near x = -1.5. A NaN x fails both comparisons: dx = dy, as PyTorch's. */
__kernel void hard_swish_backward(__global float *dx, ulong dxo, __global const float *x, ulong xo,
                                  __global const float *dy, ulong dyo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float v = x[xo + i], g = dy[dyo + i];
        dx[dxo + i] = v < -3.0f ? 0.0f : v <= 3.0f ? g * (2.0f * v + 3.0f) / 6.0f : g;
    }
}

__kernel void leaky_relu_backward(__global float *dx, ulong dxo, __global const float *x, ulong xo,
                                  __global const float *dy, ulong dyo, ulong n, float alpha)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float g = dy[dyo + i];
        dx[dxo + i] = x[xo + i] > 0.0f ? g : alpha * g;
    }
}

/* From y: dy * y * (1 - y), in the reference's order. */
__kernel void sigmoid_backward(__global float *dx, ulong dxo, __global const float *y, ulong yo,
                               __global const float *dy, ulong dyo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float s = y[yo + i];
        dx[dxo + i] = dy[dyo + i] * s * (1.0f - s);
    }
}

/* From y: dy * (1 - y) * (1 + y). Near |y| = 1 one factor is exact
 * (Sterbenz), where 1 - y*y would cancel the rounding error of y*y. */
__kernel void tanh_backward(__global float *dx, ulong dxo, __global const float *y, ulong yo,
                            __global const float *dy, ulong dyo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) {
        float t = y[yo + i];
        dx[dxo + i] = dy[dyo + i] * ((1.0f - t) * (1.0f + t));
    }
}

/* ---- row helpers: lane `lane` of `lanes` takes columns lane, lane + lanes, ... */

/* (sum of exp(x_j - m) over entries below the maximum m, count of entries
 * equal to m): the row's sum of exponentials is count + sum, and log1p of
 * (count - 1) + sum is its logarithm without rounding 1 + small. */
static float2 row_sumexp_part(__global const float *x, ulong o, int cols, float m, int lane,
                              int lanes)
{
    float2 acc = (float2)(0.0f, 0.0f);
    for (int j = lane; j < cols; j += lanes) {
        float v = x[o + j];
        if (v == m)
            acc.y += 1.0f;
        else
            acc.x += exp(v - m);
    }
    return acc;
}

/* Softmax or log-softmax of one row from its maximum and sumexp parts. A row
 * whose maximum is not finite (NaN, +Inf, or all -Inf) is NaN throughout. */
static void softmax_write(__global const float *x, ulong o, __global float *y, ulong oy, int cols,
                          float m, float2 st, int lane, int lanes, int log_)
{
    int valid = isfinite(m);
    float ls = log1p((st.y - 1.0f) + st.x), s = st.y + st.x;
    for (int j = lane; j < cols; j += lanes) {
        float d = x[o + j] - m;
        float v = log_ ? d - ls : exp(d) / s;
        y[oy + j] = valid ? v : NAN;
    }
}

/* Partial of the backward's row reduction: sum dy (log-softmax) or sum dy*y. */
static float row_bwd_part(__global const float *y, ulong o, __global const float *dy, ulong od,
                          int cols, int lane, int lanes, int log_)
{
    float acc = 0.0f;
    for (int j = lane; j < cols; j += lanes)
        acc += log_ ? dy[od + j] : dy[od + j] * y[o + j];
    return acc;
}

static void row_bwd_write(__global const float *y, ulong o, __global const float *dy, ulong od,
                          __global float *dx, ulong ox, int cols, float r, int lane, int lanes,
                          int log_)
{
    for (int j = lane; j < cols; j += lanes) {
        float yj = y[o + j], g = dy[od + j];
        dx[ox + j] = log_ ? g - exp(yj) * r : yj * (g - r);
    }
}

/* ---- softmax and log-softmax (log_ != 0) over rows of cols ---------------- */

/* One row per work-item: row = global id < rows. y may alias x: every read of
 * a row precedes its writes, which touch the element just read. */
__kernel void softmax_forward_item(__global const float *x, ulong xo, __global float *y, ulong yo,
                                   ulong rows, int cols, int log_)
{
    size_t r = get_global_id(0);
    if (r >= rows)
        return;
    ulong o = xo + r * (ulong)cols;
    float m = row_max_part(x, o, cols, 0, 1);
    float2 st = row_sumexp_part(x, o, cols, m, 0, 1);
    softmax_write(x, o, y, yo + r * (ulong)cols, cols, m, st, 0, 1, log_);
}

/* One row per work-group (launched with exactly rows groups). The barriers
 * of the reductions order every read of the row before any write. */
__kernel void softmax_forward_group(__global const float *x, ulong xo, __global float *y, ulong yo,
                                    ulong rows, int cols, int log_)
{
    __local float s1[CLNET_WG];
    __local float2 s2[CLNET_WG];
    size_t r = get_group_id(0);
    int lid = get_local_id(0);
    ulong o = xo + r * (ulong)cols;
    float m = group_max(s1, row_max_part(x, o, cols, lid, CLNET_WG));
    float2 st = group_sum2(s2, row_sumexp_part(x, o, cols, m, lid, CLNET_WG));
    softmax_write(x, o, y, yo + r * (ulong)cols, cols, m, st, lid, CLNET_WG, log_);
    (void)rows;
}

__kernel void softmax_backward_item(__global const float *y, ulong yo, __global const float *dy,
                                    ulong dyo, __global float *dx, ulong dxo, ulong rows, int cols,
                                    int log_)
{
    size_t r = get_global_id(0);
    if (r >= rows)
        return;
    ulong off = r * (ulong)cols;
    float red = row_bwd_part(y, yo + off, dy, dyo + off, cols, 0, 1, log_);
    row_bwd_write(y, yo + off, dy, dyo + off, dx, dxo + off, cols, red, 0, 1, log_);
}

__kernel void softmax_backward_group(__global const float *y, ulong yo, __global const float *dy,
                                     ulong dyo, __global float *dx, ulong dxo, ulong rows, int cols,
                                     int log_)
{
    __local float s1[CLNET_WG];
    size_t r = get_group_id(0);
    int lid = get_local_id(0);
    ulong off = r * (ulong)cols;
    float red = group_sum(s1, row_bwd_part(y, yo + off, dy, dyo + off, cols, lid, CLNET_WG, log_));
    row_bwd_write(y, yo + off, dy, dyo + off, dx, dxo + off, cols, red, lid, CLNET_WG, log_);
    (void)rows;
}

/* ---- softmax over channels: x (n, c, s), the axis of dim 1 ------------------
 * One (n, s) column of c channels per work-item, read with stride s. y (dx)
 * may alias x (y or dy): each element is read before the same work-item
 * writes it. A column with a NaN or +Inf, or of only -Inf, gives NaN. */

__kernel void softmax_channels_forward(__global const float *x, ulong xo, __global float *y,
                                       ulong yo, ulong columns, int c, ulong s)
{
    size_t id = get_global_id(0);
    if (id >= columns)
        return;
    ulong o = (id / s) * (ulong)c * s + id % s;
    float m = -INFINITY, sum = 0.0f;
    for (int k = 0; k < c; k++) {
        float v = x[xo + o + k * s];
        m = v > m || isnan(v) ? v : m;
    }
    for (int k = 0; k < c; k++)
        sum += exp(x[xo + o + k * s] - m);
    for (int k = 0; k < c; k++)
        y[yo + o + k * s] = exp(x[xo + o + k * s] - m) / sum;
}

/* dx = y * (dy - sum_k dy_k y_k) per column. */
__kernel void softmax_channels_backward(__global const float *y, ulong yo, __global const float *dy,
                                        ulong dyo, __global float *dx, ulong dxo, ulong columns,
                                        int c, ulong s)
{
    size_t id = get_global_id(0);
    if (id >= columns)
        return;
    ulong o = (id / s) * (ulong)c * s + id % s;
    float r = 0.0f;
    for (int k = 0; k < c; k++)
        r += dy[dyo + o + k * s] * y[yo + o + k * s];
    for (int k = 0; k < c; k++) {
        float yk = y[yo + o + k * s], g = dy[dyo + o + k * s];
        dx[dxo + o + k * s] = yk * (g - r);
    }
}

/* ---- bias over channels: x (n, c, hw) --------------------------------------- */

__kernel void bias_add(__global float *y, ulong yo, __global const float *x, ulong xo,
                       __global const float *b, ulong bo, ulong n, int c, ulong hw)
{
    size_t i = get_global_id(0);
    if (i < n)
        y[yo + i] = x[xo + i] + b[bo + (i / hw) % (ulong)c];
}

/* First level of db: group g = ch * chunks + k sums channel ch's elements
 * e = k*WG + lid + t*chunks*WG < m (m = n * hw; element e is image e / hw,
 * pixel e % hw): each lane a strided share, then a tree. out[oo + g]. */
__kernel void bias_backward_partial(__global const float *dy, ulong dyo, int c, ulong hw, ulong m,
                                    uint chunks, __global float *out, ulong oo)
{
    __local float s1[CLNET_WG];
    size_t g = get_group_id(0);
    ulong ch = g / chunks, k = g % chunks;
    int lid = get_local_id(0);
    float acc = 0.0f;
    for (ulong e = k * CLNET_WG + lid; e < m; e += (ulong)chunks * CLNET_WG) {
        ulong img = e / hw;
        acc += dy[dyo + (img * (ulong)c + ch) * hw + (e - img * hw)];
    }
    acc = group_sum(s1, acc);
    if (lid == 0)
        out[oo + g] = acc;
}

/* First level, by planes (CPUs): work-item g takes run r = g % runs of
 * plane g / runs = (img, ch), up to `run` consecutive pixels, summed in eight
 * float8 lanes (lane j: the run's elements j, j + 8, ...; the tail after the
 * last whole 8 in a scalar, in order), then ((l0 + l1) + (l2 + l3)) + ((l4 +
 * l5) + (l6 + l7)) + tail. out[oo + (ch * n + img) * runs + r], so that
 * bias_backward_final adds a channel's n * runs partials in image order. */
__kernel void bias_backward_planes(__global const float *dy, ulong dyo, int c, ulong hw, ulong n,
                                   ulong run, __global float *out, ulong oo)
{
    ulong g = get_global_id(0), runs = (hw + run - 1) / run;
    ulong plane = g / runs, r = g % runs;
    if (plane >= n * (ulong)c)
        return;
    ulong img = plane / (ulong)c, ch = plane % (ulong)c;
    ulong e0 = r * run, e1 = min(e0 + run, hw);
    __global const float *p = dy + dyo + plane * hw;
    float8 acc = (float8)(0.0f);
    ulong e = e0;
    for (; e + 8 <= e1; e += 8)
        acc += vload8(0, p + e);
    float tail = 0.0f;
    for (; e < e1; e++)
        tail += p[e];
    float s = ((acc.s0 + acc.s1) + (acc.s2 + acc.s3)) + ((acc.s4 + acc.s5) + (acc.s6 + acc.s7));
    out[oo + (ch * n + img) * runs + r] = s + tail;
}

/* Second level: db[ch] = the channel's chunks partial sums, in order. */
__kernel void bias_backward_final(__global const float *part, ulong po, uint chunks, int c,
                                  __global float *db, ulong dbo)
{
    size_t ch = get_global_id(0);
    if (ch >= (size_t)c)
        return;
    float acc = 0.0f;
    for (uint k = 0; k < chunks; k++)
        acc += part[po + ch * chunks + k];
    db[dbo + ch] = acc;
}
