/* clnet — recurrent kernels: the fused per-step gate kernels of the simple
 * RNN, LSTM and GRU (forward and backward), a strided row copy and the bias
 * gradient's column sums. The GEMMs around them are CLBlast's (src/ops/rnn.c).
 *
 * Indexing: a step kernel runs one work-item per (batch row b, unit j), over
 * n*h items. A "row" argument (buffer, element offset, leading dimension ld)
 * addresses element (b, k) at off + b*ld + k, so the same kernel reads a time
 * slice of a (N, T, X) tensor (ld = T*X) or a contiguous (N, X) matrix.
 * Optional buffers may be NULL (a NULL cl_mem argument is legal in OpenCL
 * 1.2): a NULL state reads as zeros and a NULL output is not written. */
#pragma OPENCL FP_CONTRACT OFF

static float rnn_sigmoid(float v)
{
    /* exp(-v) overflows to +Inf for v < -88.7 and the quotient becomes 0:
     * the right limit, no NaN. */
    return 1.0f / (1.0f + exp(-v));
}

/* ---- forward ------------------------------------------------------------ */

/* gates (in: a_x = x W_ih^T, written by the input GEMM; out: activations),
 * row b at g_off + b*g_ld, G*h long; hw (n, G*h) contiguous: h_{t-1} W_hh^T
 * from the step GEMM, NULL when h_{t-1} = 0. The biases are added here. */

/* h_t = tanh(a_x + b_ih + hw + b_hh); gates keep h_t, y gets it. */
__kernel void rnn_fwd_step(__global float *gates, ulong g_off, ulong g_ld,
                           __global const float *hw, ulong hw_off,
                           __global const float *b_ih, ulong bi_off,
                           __global const float *b_hh, ulong bh_off,
                           __global float *y, ulong y_off, ulong y_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h;
    __global float *g = gates + g_off + b * g_ld;
    float a = g[j] + b_ih[bi_off + j];
    if (hw)
        a += hw[hw_off + b * (ulong)h + j];
    float v = tanh(a + b_hh[bh_off + j]);
    g[j] = v;
    y[y_off + b * y_ld + j] = v;
}

/* Blocks i, f, g, o. c_in: c_{t-1} (NULL = 0); c_out: c_t. */
__kernel void lstm_fwd_step(__global float *gates, ulong g_off, ulong g_ld,
                            __global const float *hw, ulong hw_off,
                            __global const float *b_ih, ulong bi_off,
                            __global const float *b_hh, ulong bh_off,
                            __global const float *c_in, ulong ci_off, ulong ci_ld,
                            __global float *c_out, ulong co_off, ulong co_ld,
                            __global float *y, ulong y_off, ulong y_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h;
    __global float *g = gates + g_off + b * g_ld;
    float act[4];
    for (int q = 0; q < 4; q++) {
        size_t k = (size_t)q * (size_t)h + j;
        float a = g[k] + b_ih[bi_off + k];
        if (hw)
            a += hw[hw_off + b * 4 * (ulong)h + k];
        a += b_hh[bh_off + k];
        act[q] = q == 2 ? tanh(a) : rnn_sigmoid(a);
        g[k] = act[q];
    }
    float cp = c_in ? c_in[ci_off + b * ci_ld + j] : 0.0f;
    float c = act[1] * cp + act[0] * act[2];
    c_out[co_off + b * co_ld + j] = c;
    y[y_off + b * y_ld + j] = act[3] * tanh(c);
}

/* Blocks r, z, n. h_in: h_{t-1} (NULL = 0); hn_out: a_h[n] = (h_{t-1}
 * W_hn^T + b_hn), kept for the backward (NULL in inference). */
__kernel void gru_fwd_step(__global float *gates, ulong g_off, ulong g_ld,
                           __global const float *hw, ulong hw_off,
                           __global const float *b_ih, ulong bi_off,
                           __global const float *b_hh, ulong bh_off,
                           __global const float *h_in, ulong hi_off, ulong hi_ld,
                           __global float *hn_out, ulong hn_off, ulong hn_ld,
                           __global float *y, ulong y_off, ulong y_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h, H = (size_t)h;
    __global float *g = gates + g_off + b * g_ld;
    __global const float *w = hw ? hw + hw_off + b * 3 * H : 0;
    float ah[3];
    for (int q = 0; q < 3; q++)
        ah[q] = (w ? w[q * H + j] : 0.0f) + b_hh[bh_off + q * H + j];
    float r = rnn_sigmoid(g[j] + b_ih[bi_off + j] + ah[0]);
    float z = rnn_sigmoid(g[H + j] + b_ih[bi_off + H + j] + ah[1]);
    float nv = tanh(g[2 * H + j] + b_ih[bi_off + 2 * H + j] + r * ah[2]);
    float hp = h_in ? h_in[hi_off + b * hi_ld + j] : 0.0f;
    g[j] = r;
    g[H + j] = z;
    g[2 * H + j] = nv;
    if (hn_out)
        hn_out[hn_off + b * hn_ld + j] = ah[2];
    y[y_off + b * y_ld + j] = (1.0f - z) * nv + z * hp;
}

/* ---- backward ----------------------------------------------------------- */

/* gates: the saved activations of step t (read only). dy: dL/dy_t (NULL =
 * 0). dh (n, h) contiguous: in, dL/dh_t through the recurrence (from step
 * t+1's GEMM, or dhT). dgx: out, the gradient of a_x (row b at dgx_off +
 * b*dgx_ld); it is also the gradient of a_h except for the GRU, which writes
 * that to dgh. */

__kernel void rnn_bwd_step(__global const float *gates, ulong g_off, ulong g_ld,
                           __global const float *dy, ulong dy_off, ulong dy_ld,
                           __global const float *dh, ulong dh_off,
                           __global float *dgx, ulong dgx_off, ulong dgx_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h;
    float d = dh[dh_off + id];
    if (dy)
        d += dy[dy_off + b * dy_ld + j];
    float v = gates[g_off + b * g_ld + j];
    dgx[dgx_off + b * dgx_ld + j] = d * (1.0f - v * v);
}

/* c: the reserve's cell states, c_{t-1} at c_off + b*c_ld and c_t h further.
 * dc (n, h) contiguous: in dL/dc_t through the recurrence, out dL/dc_{t-1}. */
__kernel void lstm_bwd_step(__global const float *gates, ulong g_off, ulong g_ld,
                            __global const float *c, ulong c_off, ulong c_ld,
                            __global const float *dy, ulong dy_off, ulong dy_ld,
                            __global const float *dh, ulong dh_off,
                            __global float *dc, ulong dc_off,
                            __global float *dgx, ulong dgx_off, ulong dgx_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h, H = (size_t)h;
    __global const float *g = gates + g_off + b * g_ld;
    float i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
    float cp = c[c_off + b * c_ld + j], ct = c[c_off + b * c_ld + H + j];
    float d = dh[dh_off + id];
    if (dy)
        d += dy[dy_off + b * dy_ld + j];
    float tc = tanh(ct);
    float dct = dc[dc_off + id] + d * o * (1.0f - tc * tc);
    __global float *out = dgx + dgx_off + b * dgx_ld;
    out[j] = dct * gg * (i * (1.0f - i));
    out[H + j] = dct * cp * (f * (1.0f - f));
    out[2 * H + j] = dct * i * (1.0f - gg * gg);
    out[3 * H + j] = d * tc * (o * (1.0f - o));
    dc[dc_off + id] = dct * f;
}

/* hn: the saved a_h[n]; h_prev: h_{t-1}. dh is in/out: it leaves the part of
 * dL/dh_{t-1} that bypasses W_hh (z * dh_t); the host's step GEMM adds
 * dgh W_hh to it. dgh: the gradient of a_h (its n block is r times dgx's). */
__kernel void gru_bwd_step(__global const float *gates, ulong g_off, ulong g_ld,
                           __global const float *hn, ulong hn_off, ulong hn_ld,
                           __global const float *h_prev, ulong hp_off, ulong hp_ld,
                           __global const float *dy, ulong dy_off, ulong dy_ld,
                           __global float *dh, ulong dh_off,
                           __global float *dgx, ulong dgx_off, ulong dgx_ld,
                           __global float *dgh, ulong dgh_off, ulong dgh_ld, int n, int h)
{
    size_t id = get_global_id(0);
    if (id >= (size_t)n * (size_t)h)
        return;
    size_t b = id / (size_t)h, j = id % (size_t)h, H = (size_t)h;
    __global const float *g = gates + g_off + b * g_ld;
    float r = g[j], z = g[H + j], nv = g[2 * H + j];
    float d = dh[dh_off + id];
    if (dy)
        d += dy[dy_off + b * dy_ld + j];
    float hp = h_prev[hp_off + b * hp_ld + j];
    float dn = d * (1.0f - z) * (1.0f - nv * nv);
    float dr = dn * hn[hn_off + b * hn_ld + j] * (r * (1.0f - r));
    float dz = d * (hp - nv) * (z * (1.0f - z));
    __global float *ox = dgx + dgx_off + b * dgx_ld, *oh = dgh + dgh_off + b * dgh_ld;
    ox[j] = dr;
    ox[H + j] = dz;
    ox[2 * H + j] = dn;
    oh[j] = dr;
    oh[H + j] = dz;
    oh[2 * H + j] = dn * r;
    dh[dh_off + id] = d * z;
}

/* ---- helpers -------------------------------------------------------------- */

/* dst[d_off + r*d_ld + k] = src[s_off + r*s_ld + k] for r < rows, k < cols;
 * zeros when src is NULL. */
__kernel void rnn_copy_rows(__global float *dst, ulong d_off, ulong d_ld,
                            __global const float *src, ulong s_off, ulong s_ld, ulong rows,
                            ulong cols)
{
    size_t id = get_global_id(0);
    if (id >= rows * cols)
        return;
    size_t r = id / cols, k = id % cols;
    dst[d_off + r * d_ld + k] = src ? src[s_off + r * s_ld + k] : 0.0f;
}

#ifndef RNN_SUM_BLOCK
#define RNN_SUM_BLOCK 64
#endif

/* out[o_off + k] (and out2[o2_off + k] when out2 is not NULL) = sum over r <
 * rows of src[s_off + r*cols + k], for k < cols: one work-item per column,
 * rows summed in blocks of RNN_SUM_BLOCK whose partial sums are then added,
 * so the rounding error grows with RNN_SUM_BLOCK + rows / RNN_SUM_BLOCK, not
 * with rows. A fixed order: deterministic. */
__kernel void rnn_bias_grad(__global const float *src, ulong s_off, ulong rows, int cols,
                            __global float *out, ulong o_off, __global float *out2, ulong o2_off)
{
    size_t k = get_global_id(0);
    if (k >= (size_t)cols)
        return;
    float total = 0.0f;
    for (ulong r0 = 0; r0 < rows; r0 += RNN_SUM_BLOCK) {
        ulong end = min(rows, r0 + RNN_SUM_BLOCK);
        float part = 0.0f;
        for (ulong r = r0; r < end; r++)
            part += src[s_off + r * (ulong)cols + k];
        total += part;
    }
    out[o_off + k] = total;
    if (out2)
        out2[o2_off + k] = total;
}
