/* clnet — recurrent kernels: the fused per-step gate kernels of the simple
 * RNN, LSTM and GRU (forward and backward), a strided row copy and the bias
 * gradient's column sums; the LSTM's fused steps, which also hold the
 * recurrent product (at the end). The GEMMs around them are clnet__gemm's
 * (src/ops/rnn.c).
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
__kernel void rnn_fwd_step(__global float *gates, ulong g_off, ulong g_ld, __global const float *hw,
                           ulong hw_off, __global const float *b_ih, ulong bi_off,
                           __global const float *b_hh, ulong bh_off, __global float *y, ulong y_off,
                           ulong y_ld, int n, int h)
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
                            __global const float *hw, ulong hw_off, __global const float *b_ih,
                            ulong bi_off, __global const float *b_hh, ulong bh_off,
                            __global const float *c_in, ulong ci_off, ulong ci_ld,
                            __global float *c_out, ulong co_off, ulong co_ld, __global float *y,
                            ulong y_off, ulong y_ld, int n, int h)
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
__kernel void gru_fwd_step(__global float *gates, ulong g_off, ulong g_ld, __global const float *hw,
                           ulong hw_off, __global const float *b_ih, ulong bi_off,
                           __global const float *b_hh, ulong bh_off, __global const float *h_in,
                           ulong hi_off, ulong hi_ld, __global float *hn_out, ulong hn_off,
                           ulong hn_ld, __global float *y, ulong y_off, ulong y_ld, int n, int h)
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
                           __global const float *dh, ulong dh_off, __global float *dgx,
                           ulong dgx_off, ulong dgx_ld, int n, int h)
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
                            __global const float *dh, ulong dh_off, __global float *dc,
                            ulong dc_off, __global float *dgx, ulong dgx_off, ulong dgx_ld, int n,
                            int h)
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
                           __global const float *dy, ulong dy_off, ulong dy_ld, __global float *dh,
                           ulong dh_off, __global float *dgx, ulong dgx_off, ulong dgx_ld,
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
__kernel void rnn_copy_rows(__global float *dst, ulong d_off, ulong d_ld, __global const float *src,
                            ulong s_off, ulong s_ld, ulong rows, ulong cols)
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

/* ---- fused LSTM recurrence ------------------------------------------------
 * One kernel per step holds the recurrent product too (no step GEMM): a
 * work-item owns a tile of RNN_TR batch rows x 8 units (a float8 per row and
 * gate, register-tiled as pocl needs), tiles numbered (row tile, unit tile)
 * and visited from get_global_id(0) in strides of get_global_size(0). Steps
 * run in a loop separated by barriers: launched as one work-group, a single
 * launch runs the whole sequence; launched over many work-groups, the host
 * passes one step per launch. Either way each output element is summed by
 * one work-item in one fixed order: deterministic, the same bits both ways.
 * The weights are packed with zero padding to hp = h rounded up to 8 units,
 * so the float8 loads of a partial unit tile stay inside the pack. */

#ifndef RNN_TR
#define RNN_TR 4
#endif

/* The first nv (1..8) floats at p; the rest of the vector is 0. */
static float8 rnn_ld8(__global const float *p, int nv)
{
    if (nv >= 8)
        return vload8(0, p);
    float t[8];
    for (int l = 0; l < 8; l++)
        t[l] = l < nv ? p[l] : 0.0f;
    return vload8(0, t);
}

static void rnn_st8(__global float *p, float8 v, int nv)
{
    if (nv >= 8) {
        vstore8(v, 0, p);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (int l = 0; l < nv; l++)
        p[l] = t[l];
}

static float8 rnn_sigmoid8(float8 v)
{
    return 1.0f / (1.0f + exp(-v));
}

/* wt (h, 4*hp) = w_hh^T, gate block q at columns q*hp (forward's operand). */
__kernel void lstm_pack_wt(__global float *wt, ulong wt_off, __global const float *w, ulong w_off,
                           int h, int hp)
{
    size_t id = get_global_id(0), cols = 4 * (size_t)hp;
    if (id >= (size_t)h * cols)
        return;
    size_t k = id / cols, q = id % cols / (size_t)hp, j = id % (size_t)hp;
    wt[wt_off + id] = j < (size_t)h ? w[w_off + (q * (size_t)h + j) * (size_t)h + k] : 0.0f;
}

/* wp (4*h, hp) = w_hh with its rows padded (the backward's operand). */
__kernel void lstm_pack_w(__global float *wp, ulong wp_off, __global const float *w, ulong w_off,
                          int h, int hp)
{
    size_t id = get_global_id(0);
    if (id >= 4 * (size_t)h * (size_t)hp)
        return;
    size_t g = id / (size_t)hp, k = id % (size_t)hp;
    wp[wp_off + id] = k < (size_t)h ? w[w_off + g * (size_t)h + k] : 0.0f;
}

/* Steps s0 .. s0+count-1 of lstm_fwd_step with the product in the kernel.
 * gates: a_x in, activations out (step s at g_off + b*g_ld + s*4h); h0, c0:
 * the initial states (NULL = 0); cs: the cell states, c_s at cs_off + b*cs_ld
 * + (c_pp ? (s&1)*n*h : (s+1)*h), and c_{-1} copied to the reserve's slot 0
 * when !c_pp; hp (NULL in inference): h_{s-1} at hp_off + b*hp_ld + s*h;
 * hT, cT (NULL = not wanted) get the last step's states. */
__kernel void
lstm_fwd_fused(__global float *gates, ulong g_off, ulong g_ld, __global const float *wt,
               ulong wt_off, __global const float *b_ih, ulong bi_off, __global const float *b_hh,
               ulong bh_off, __global const float *h0, ulong h0_off, ulong h0_ld,
               __global const float *c0, ulong c0_off, ulong c0_ld, __global float *cs,
               ulong cs_off, ulong cs_ld, int c_pp, __global float *hp, ulong hp_off, ulong hp_ld,
               __global float *y, ulong y_off, ulong y_ld, __global float *hT, ulong hT_off,
               __global float *cT, ulong cT_off, int n, int h, int t, int s0, int count)
{
    const size_t H = (size_t)h, HP = (H + 7) / 8 * 8, nj = HP / 8;
    const size_t tiles = ((size_t)n + RNN_TR - 1) / RNN_TR * nj;
    for (int s = s0; s < s0 + count; s++) {
        /* h_{s-1}: h0 (or zeros) at step 0, else y's previous step. */
        __global const float *hin = s ? y : h0;
        ulong hin_off = s ? y_off + (ulong)(s - 1) * H : h0_off, hin_ld = s ? y_ld : h0_ld;
        for (size_t tl = get_global_id(0); tl < tiles; tl += get_global_size(0)) {
            size_t b0 = tl / nj * RNN_TR, j0 = tl % nj * 8;
            int nv = (int)min((size_t)8, H - j0);
            float8 acc[RNN_TR][4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                float8 bias = rnn_ld8(b_hh + bh_off + q * H + j0, nv);
#pragma unroll
                for (int r = 0; r < RNN_TR; r++)
                    acc[r][q] = bias;
            }
            if (hin) {
                ulong row[RNN_TR];
#pragma unroll
                for (int r = 0; r < RNN_TR; r++)
                    row[r] = hin_off + min(b0 + r, (size_t)n - 1) * hin_ld;
                __global const float *w = wt + wt_off + j0;
                for (size_t k = 0; k < H; k++, w += 4 * HP) {
                    float8 w0 = vload8(0, w), w1 = vload8(0, w + HP);
                    float8 w2 = vload8(0, w + 2 * HP), w3 = vload8(0, w + 3 * HP);
#pragma unroll
                    for (int r = 0; r < RNN_TR; r++) {
                        float8 x = (float8)(hin[row[r] + k]);
                        acc[r][0] = fma(x, w0, acc[r][0]);
                        acc[r][1] = fma(x, w1, acc[r][1]);
                        acc[r][2] = fma(x, w2, acc[r][2]);
                        acc[r][3] = fma(x, w3, acc[r][3]);
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < RNN_TR; r++) {
                size_t b = b0 + r;
                if (b >= (size_t)n)
                    break;
                __global float *g = gates + g_off + b * g_ld + (size_t)s * 4 * H + j0;
                float8 act[4];
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    float8 a = rnn_ld8(g + q * H, nv) + rnn_ld8(b_ih + bi_off + q * H + j0, nv);
                    a += acc[r][q];
                    act[q] = q == 2 ? tanh(a) : rnn_sigmoid8(a);
                    rnn_st8(g + q * H, act[q], nv);
                }
                ulong cbase = cs_off + b * cs_ld + j0;
                float8 cp =
                    s    ? rnn_ld8(cs + cbase + (c_pp ? (size_t)((s - 1) & 1) * n * H : s * H), nv)
                    : c0 ? rnn_ld8(c0 + c0_off + b * c0_ld + j0, nv)
                         : (float8)(0.0f);
                if (!s && !c_pp)
                    rnn_st8(cs + cbase, cp, nv);
                float8 c = act[1] * cp + act[0] * act[2];
                float8 hv = act[3] * tanh(c);
                rnn_st8(cs + cbase + (c_pp ? (size_t)(s & 1) * n * H : (size_t)(s + 1) * H), c, nv);
                rnn_st8(y + y_off + b * y_ld + (size_t)s * H + j0, hv, nv);
                if (hp)
                    rnn_st8(hp + hp_off + b * hp_ld + (size_t)s * H + j0,
                            hin ? rnn_ld8(hin + hin_off + b * hin_ld + j0, nv) : (float8)(0.0f),
                            nv);
                if (s == t - 1 && hT)
                    rnn_st8(hT + hT_off + b * H + j0, hv, nv);
                if (s == t - 1 && cT)
                    rnn_st8(cT + cT_off + b * H + j0, c, nv);
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
}

/* Steps s_hi down to s_lo of lstm_bwd_step with the recurrent gradient in
 * the kernel: dh_s = dgx_{s+1} w_hh (dhT at s = t-1, NULL = 0), plus dy.
 * gates, cs: the reserve's (c_{s-1} at cs_off + b*cs_ld + s*h, c_s one h
 * further); dc (n, h) contiguous, the carried dL/dc; dgx: step s at dgx_off
 * + b*dgx_ld + s*4h. Step -1 only writes dh_{-1} to dh0 (NULL: not wanted);
 * step 0 also writes dL/dc_{-1} to dc0 (NULL: not wanted). */
__kernel void lstm_bwd_fused(__global const float *gates, ulong g_off, ulong g_ld,
                             __global const float *cs, ulong cs_off, ulong cs_ld,
                             __global const float *wp, ulong wp_off, __global const float *dy,
                             ulong dy_off, ulong dy_ld, __global const float *dhT, ulong dhT_off,
                             __global const float *dcT, ulong dcT_off, __global float *dc,
                             ulong dc_off, __global float *dgx, ulong dgx_off, ulong dgx_ld,
                             __global float *dh0, ulong dh0_off, __global float *dc0, ulong dc0_off,
                             int n, int h, int t, int s_hi, int s_lo)
{
    const size_t H = (size_t)h, HP = (H + 7) / 8 * 8, nj = HP / 8, G = 4 * H;
    const size_t tiles = ((size_t)n + RNN_TR - 1) / RNN_TR * nj;
    for (int s = s_hi; s >= s_lo; s--) {
        for (size_t tl = get_global_id(0); tl < tiles; tl += get_global_size(0)) {
            size_t b0 = tl / nj * RNN_TR, j0 = tl % nj * 8;
            int nv = (int)min((size_t)8, H - j0);
            float8 dh[RNN_TR];
            if (s == t - 1) {
#pragma unroll
                for (int r = 0; r < RNN_TR; r++)
                    dh[r] = dhT && b0 + r < (size_t)n
                                ? rnn_ld8(dhT + dhT_off + (b0 + r) * H + j0, nv)
                                : (float8)(0.0f);
            } else {
                /* Two partial sums (even and odd g) per row, added at the end. */
                float8 a0[RNN_TR], a1[RNN_TR];
                ulong row[RNN_TR];
#pragma unroll
                for (int r = 0; r < RNN_TR; r++) {
                    a0[r] = a1[r] = (float8)(0.0f);
                    row[r] = dgx_off + min(b0 + r, (size_t)n - 1) * dgx_ld + (size_t)(s + 1) * G;
                }
                __global const float *w = wp + wp_off + j0;
                for (size_t g = 0; g < G; g += 2, w += 2 * HP) {
                    float8 w0 = vload8(0, w), w1 = vload8(0, w + HP);
#pragma unroll
                    for (int r = 0; r < RNN_TR; r++) {
                        a0[r] = fma((float8)(dgx[row[r] + g]), w0, a0[r]);
                        a1[r] = fma((float8)(dgx[row[r] + g + 1]), w1, a1[r]);
                    }
                }
#pragma unroll
                for (int r = 0; r < RNN_TR; r++)
                    dh[r] = a0[r] + a1[r];
            }
#pragma unroll
            for (int r = 0; r < RNN_TR; r++) {
                size_t b = b0 + r;
                if (b >= (size_t)n)
                    break;
                if (s < 0) {
                    if (dh0)
                        rnn_st8(dh0 + dh0_off + b * H + j0, dh[r], nv);
                    continue;
                }
                float8 d = dh[r];
                if (dy)
                    d += rnn_ld8(dy + dy_off + b * dy_ld + (size_t)s * H + j0, nv);
                __global const float *g = gates + g_off + b * g_ld + (size_t)s * G + j0;
                float8 i = rnn_ld8(g, nv), f = rnn_ld8(g + H, nv);
                float8 gg = rnn_ld8(g + 2 * H, nv), o = rnn_ld8(g + 3 * H, nv);
                __global const float *c = cs + cs_off + b * cs_ld + (size_t)s * H + j0;
                float8 cp = rnn_ld8(c, nv), tc = tanh(rnn_ld8(c + H, nv));
                __global float *dcp = dc + dc_off + b * H + j0;
                float8 dcin = s < t - 1 ? rnn_ld8(dcp, nv)
                              : dcT     ? rnn_ld8(dcT + dcT_off + b * H + j0, nv)
                                        : (float8)(0.0f);
                float8 dct = dcin + d * o * (1.0f - tc * tc);
                __global float *out = dgx + dgx_off + b * dgx_ld + (size_t)s * G + j0;
                rnn_st8(out, dct * gg * (i * (1.0f - i)), nv);
                rnn_st8(out + H, dct * cp * (f * (1.0f - f)), nv);
                rnn_st8(out + 2 * H, dct * i * (1.0f - gg * gg), nv);
                rnn_st8(out + 3 * H, d * tc * (o * (1.0f - o)), nv);
                rnn_st8(dcp, dct * f, nv);
                if (s == 0 && dc0)
                    rnn_st8(dc0 + dc0_off + b * H + j0, dct * f, nv);
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
}
