/* clnet — grouped and depthwise 2-D convolution kernels
 * (src/ops/conv_grouped.c): one work-item per output element, each summing
 * its own terms in a fixed order (deterministic, no atomics). Taps in the
 * zero padding are skipped, not multiplied in. Every shape is a run-time
 * argument: one build serves all. */
#pragma OPENCL FP_CONTRACT OFF

/* The geometry from x (N, C, H, W) to y (N, K, OH, OW), in G groups, with an
 * R x S kernel: strides, top/left padding and dilations. */
#define GGEOM                                                                                      \
    int N, int C, int H, int W, int K, int G, int R, int S, int OH, int OW, int sh, int sw,        \
        int pt, int pl, int dh, int dw

/* y[n,k,i,j] = b[k] + sum over c, u, v of w[k,c,u,v] * x[n, g*CG + c, tap];
 * has_bias = 0 ignores b. One work-item per y element. */
__kernel void conv_grouped_forward(__global float *y, ulong yo, __global const float *x, ulong xo,
                                   __global const float *w, ulong wo, __global const float *b,
                                   ulong bo, int has_bias, GGEOM)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)N * K * OH * OW)
        return;
    int j = gid % OW;
    size_t t = gid / OW;
    int i = t % OH;
    t /= OH;
    int k = t % K;
    int n = t / K;
    int CG = C / G, g = k / (K / G);
    float acc = has_bias ? b[bo + k] : 0.0f;
    for (int c = 0; c < CG; c++) {
        __global const float *xp = x + xo + ((size_t)n * C + (size_t)g * CG + c) * H * W;
        __global const float *wp = w + wo + ((size_t)k * CG + c) * R * S;
        for (int u = 0; u < R; u++) {
            int iy = i * sh - pt + u * dh;
            if (iy < 0 || iy >= H)
                continue;
            for (int v = 0; v < S; v++) {
                int ix = j * sw - pl + v * dw;
                if (ix >= 0 && ix < W)
                    acc += wp[u * S + v] * xp[(size_t)iy * W + ix];
            }
        }
    }
    y[yo + gid] = acc;
}

/* dx[n,c,yy,xx] = sum over the K/G filters k of c's group and the taps (u, v)
 * whose output (i, j) reads (yy, xx): w[k, c % CG, u, v] * dy[n,k,i,j]. One
 * work-item per dx element. */
__kernel void conv_grouped_backward_data(__global float *dx, ulong dxo, __global const float *w,
                                         ulong wo, __global const float *dy, ulong dyo, GGEOM)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)N * C * H * W)
        return;
    int xx = gid % W;
    size_t t = gid / W;
    int yy = t % H;
    t /= H;
    int c = t % C;
    int n = t / C;
    int CG = C / G, KG = K / G, g = c / CG, cc = c % CG;
    float acc = 0.0f;
    for (int k = g * KG; k < (g + 1) * KG; k++) {
        __global const float *dyp = dy + dyo + ((size_t)n * K + k) * OH * OW;
        __global const float *wp = w + wo + ((size_t)k * CG + cc) * R * S;
        for (int u = 0; u < R; u++) {
            int ry = yy + pt - u * dh; /* = i * sh */
            if (ry < 0 || ry % sh)
                continue;
            int i = ry / sh;
            if (i >= OH)
                continue;
            for (int v = 0; v < S; v++) {
                int rx = xx + pl - v * dw;
                if (rx < 0 || rx % sw)
                    continue;
                int j = rx / sw;
                if (j < OW)
                    acc += wp[u * S + v] * dyp[(size_t)i * OW + j];
            }
        }
    }
    dx[dxo + gid] = acc;
}

/* dw[k,c,u,v] = sum over n, i, j of dy[n,k,i,j] * x[n, g*CG + c, tap (u, v)].
 * One work-item per dw element; the sum runs over images, then rows, then
 * columns. */
__kernel void conv_grouped_backward_filter(__global float *dwt, ulong dwo, __global const float *x,
                                           ulong xo, __global const float *dy, ulong dyo, GGEOM)
{
    size_t gid = get_global_id(0);
    int CG = C / G;
    if (gid >= (size_t)K * CG * R * S)
        return;
    int v = gid % S;
    size_t t = gid / S;
    int u = t % R;
    t /= R;
    int c = t % CG;
    int k = t / CG;
    int g = k / (K / G);
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *xp = x + xo + ((size_t)n * C + (size_t)g * CG + c) * H * W;
        __global const float *dyp = dy + dyo + ((size_t)n * K + k) * OH * OW;
        for (int i = 0; i < OH; i++) {
            int iy = i * sh - pt + u * dh;
            if (iy < 0 || iy >= H)
                continue;
            for (int j = 0; j < OW; j++) {
                int ix = j * sw - pl + v * dw;
                if (ix >= 0 && ix < W)
                    acc += dyp[(size_t)i * OW + j] * xp[(size_t)iy * W + ix];
            }
        }
    }
    dwt[dwo + gid] = acc;
}
