/* clnet — 2-D convolution kernels (src/ops/conv.c): im2col and its inverse
 * col2im (a gather, so deterministic without atomics), a permutation, bias
 * add and bias gradient, and the direct kernels: weights packed eight
 * output channels wide, a padded input copy, and register-tiled loops. Every
 * shape, stride and offset is a run-time argument: one build serves all. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLNET_WG
#define CLNET_WG 64
#endif

/* Multiply-add in the direct kernels: fma where the device says it is fast
 * (FP_FAST_FMAF, or clang's __FMA__ on x86 CPUs, where pocl omits the former),
 * else a rounded product and a rounded sum. Either is deterministic on one
 * device and within the documented bound. */
#if defined(FP_FAST_FMAF) || defined(__FMA__)
#define MAC(a, b, c) fma((a), (b), (c))
#else
#define MAC(a, b, c) ((a) * (b) + (c))
#endif

/* The geometry of a convolution from x (., C, H, W) to y (., K, OH, OW) with
 * an R x S kernel: strides, top/left padding and dilations. */
#define GEOM                                                                                       \
    int C, int H, int W, int R, int S, int OH, int OW, int sh, int sw, int pt, int pl, int dh,     \
        int dw

/* Columns of nb images: col[n*sn + ((c*R + u)*S + v)*scrs + i*OW + j] =
 * x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw], 0 in the padding. (sn, scrs) =
 * (C*R*S*OH*OW, OH*OW) stacks one (CRS x OH*OW) matrix per image; (OH*OW,
 * nb*OH*OW) makes one CRS x (nb*OH*OW) matrix. One work-item per output row
 * (n, c, u, v, i). */
__kernel void im2col(__global const float *x, ulong xo, __global float *col, ulong co, ulong sn,
                     ulong scrs, int nb, GEOM)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)nb * C * R * S * OH)
        return;
    int i = gid % OH;
    size_t t = gid / OH;
    int v = t % S;
    t /= S;
    int u = t % R;
    t /= R;
    int c = t % C;
    size_t n = t / C;
    __global float *out = col + co + n * sn + ((size_t)(c * R + u) * S + v) * scrs + (size_t)i * OW;
    int iy = i * sh - pt + u * dh;
    if (iy < 0 || iy >= H) {
        for (int j = 0; j < OW; j++)
            out[j] = 0.0f;
        return;
    }
    __global const float *in = x + xo + ((n * C + c) * H + iy) * (size_t)W;
    int ix = v * dw - pl;
    for (int j = 0; j < OW; j++, ix += sw)
        out[j] = ix >= 0 && ix < W ? in[ix] : 0.0f;
}

/* The adjoint of im2col, as a gather: dx[n, c, iy, ix] = (b ? b[bo + c] : 0) +
 * the sum of the columns that im2col filled from (iy, ix), in the fixed order
 * u, then v. Same column layout (sn, scrs) as im2col. One work-item per input
 * row (n, c, iy); it owns that row, so no two work-items write one element. */
__kernel void col2im(__global const float *col, ulong co, ulong sn, ulong scrs,
                     __global const float *b, ulong bo, int has_bias, __global float *dx, ulong xo,
                     int nb, GEOM)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)nb * C * H)
        return;
    int iy = gid % H;
    size_t t = gid / H;
    int c = t % C;
    size_t n = t / C;
    __global const float *cn = col + co + n * sn;
    __global float *out = dx + xo + ((n * C + c) * H + iy) * (size_t)W;
    float init = has_bias ? b[bo + c] : 0.0f;
    for (int ix = 0; ix < W; ix++) {
        float acc = init;
        for (int u = 0; u < R; u++) {
            int ty = iy + pt - u * dh; /* = i * sh for the output row i that reads iy */
            if (ty < 0 || ty % sh != 0 || ty / sh >= OH)
                continue;
            __global const float *crow =
                cn + (size_t)(c * R + u) * S * scrs + (size_t)(ty / sh) * OW;
            for (int v = 0; v < S; v++) {
                int tx = ix + pl - v * dw;
                if (tx >= 0 && tx % sw == 0 && tx / sw < OW)
                    acc += crow[(size_t)v * scrs + tx / sw];
            }
        }
        out[ix] = acc;
    }
}

/* dst[b][a][p] = src[a][b][p] for src (A, B, P): one work-item per row (a, b). */
__kernel void swap01(__global const float *src, ulong so, __global float *dst, ulong dso, int A,
                     int B, int P)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)A * B)
        return;
    int b = gid % B;
    size_t a = gid / B;
    __global const float *in = src + so + gid * (size_t)P;
    __global float *out = dst + dso + ((size_t)b * A + a) * P;
    for (int p = 0; p < P; p++)
        out[p] = in[p];
}

/* y[n, k, p] += b[k] for y (N, K, P), total = N*K*P: one work-item per element. */
__kernel void bias_add(__global float *y, ulong yo, __global const float *b, ulong bo, int K, int P,
                       ulong total)
{
    size_t gid = get_global_id(0);
    if (gid >= total)
        return;
    y[yo + gid] += b[bo + (gid / P) % K];
}

/* Packs weights for conv_packed: pk[pko + ((i*R + u)*S + v)*COP + o] =
 * w[wo + o*wso + i*wsi + u*wsu + v*wsv] for o < CO, 0 for CO <= o < COP. The
 * strides are signed: a negative tap stride flips the kernel. One work-item
 * per packed element. */
__kernel void pack_weights(__global const float *w, ulong wo, int wso, int wsi, int wsu, int wsv,
                           __global float *pk, ulong pko, int CI, int CO, int COP, int R, int S)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)CI * R * S * COP)
        return;
    int o = gid % COP;
    size_t t = gid / COP;
    int v = t % S;
    t /= S;
    int u = t % R;
    int i = t / R;
    __global const float *wb = w + wo;
    pk[pko + gid] =
        o < CO ? wb[(long)o * wso + (long)i * wsi + (long)u * wsu + (long)v * wsv] : 0.0f;
}

/* A zero-padded (or cropped) copy of nb images: out (nb, C, HP, WP)
 * [n, c, py, px] = in[n, c, py - top, px - left], 0 outside (H, W). top and
 * left may be negative. One work-item per output row. */
__kernel void pad_copy(__global const float *in, ulong io, int C, int H, int W, __global float *out,
                       ulong oo, int HP, int WP, int top, int left, int nb)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)nb * C * HP)
        return;
    int py = gid % HP;
    size_t nc = gid / HP; /* image and channel */
    __global float *o = out + oo + gid * WP;
    int iy = py - top;
    if (iy < 0 || iy >= H) {
        for (int px = 0; px < WP; px++)
            o[px] = 0.0f;
        return;
    }
    __global const float *row = in + io + (nc * H + iy) * (size_t)W;
    for (int px = 0; px < WP; px++) {
        int ix = px - left;
        o[px] = ix >= 0 && ix < W ? row[ix] : 0.0f;
    }
}

/* Direct convolution over a padded input (every read in bounds):
 *   y[yo + n*ysn + o*yso + i*ysi + j*ysj] = (b ? b[bo + o] : 0) + sum over ci, u, v of
 *     pk[pko + ((ci*R + u)*S + v)*COP + o] * x[xo + n*xsn + ci*xsc + (i*sh + u*dh)*xsy + j*sw +
 * v*dw] for n < N, o < CO, i < OH, j < OW. One work-item per (n, 8 output channels, 8 consecutive
 * output pixels in row-major order): eight float8 accumulators, one packed weight vector and eight
 * broadcast inputs per tap. R or S may be 0 (no taps: the bias alone). */
__kernel void conv_packed(__global const float *x, ulong xo, ulong xsn, ulong xsc, int xsy,
                          __global const float *pk, ulong pko, int COP, __global const float *b,
                          ulong bo, int has_bias, __global float *y, ulong yo, ulong ysn, ulong yso,
                          int ysi, int ysj, int N, int CI, int CO, int R, int S, int OH, int OW,
                          int sh, int sw, int dh, int dw)
{
    size_t gid = get_global_id(0);
    size_t P = (size_t)OH * OW, pblocks = (P + 7) / 8, oblocks = COP / 8;
    if (gid >= (size_t)N * oblocks * pblocks)
        return;
    size_t p0 = (gid % pblocks) * 8;
    size_t t = gid / pblocks;
    int o0 = (t % oblocks) * 8;
    size_t n = t / oblocks;
    long off[8];
    float8 acc[8], bias = 0.0f;
    if (has_bias) {
        float bv[8];
        for (int kk = 0; kk < 8; kk++)
            bv[kk] = o0 + kk < CO ? b[bo + o0 + kk] : 0.0f;
        bias = vload8(0, bv);
    }
#pragma unroll
    for (int l = 0; l < 8; l++) {
        size_t p = min(p0 + l, P - 1); /* lanes past the end redo the last pixel */
        off[l] = (long)(p / OW) * sh * xsy + (long)(p % OW) * sw;
        acc[l] = bias;
    }
    __global const float *xn = x + xo + n * xsn;
    __global const float *wp = pk + pko + o0;
    for (int ci = 0; ci < CI; ci++) {
        __global const float *xc = xn + ci * xsc;
        for (int u = 0; u < R; u++) {
            __global const float *xu = xc + (long)u * dh * xsy;
            __global const float *wu = wp + ((size_t)ci * R + u) * S * COP;
            for (int v = 0; v < S; v++) {
                float8 wv = vload8(0, wu + (size_t)v * COP);
                __global const float *xt = xu + v * dw;
#pragma unroll
                for (int l = 0; l < 8; l++)
                    acc[l] = MAC((float8)xt[off[l]], wv, acc[l]);
            }
        }
    }
#pragma unroll
    for (int l = 0; l < 8; l++) {
        size_t p = p0 + l;
        float r[8];
        vstore8(acc[l], 0, r);
        __global float *out = y + yo + n * ysn + (long)(p / OW) * ysi + (long)(p % OW) * ysj;
        for (int kk = 0; kk < 8; kk++)
            if (p < P && o0 + kk < CO)
                out[(size_t)(o0 + kk) * yso] = r[kk];
    }
}

/* dy (N, K, P) to pixel-major with K padded: out[(n*P + p)*KP + k] = dy[n, k, p]
 * for k < K, 0 for K <= k < KP (KP a multiple of 8). One work-item per pixel
 * (n, p): neighbouring work-items read neighbouring pixels of each channel. */
__kernel void pack_dy(__global const float *dy, ulong dyo, __global float *out, ulong oo, int N,
                      int K, int KP, int P)
{
    size_t gid = get_global_id(0);
    if (gid >= (size_t)N * P)
        return;
    size_t n = gid / P, p = gid % P;
    __global const float *in = dy + dyo + n * K * (size_t)P + p;
    __global float *o = out + oo + gid * KP;
    for (int k0 = 0; k0 < KP; k0 += 8) {
        float v[8];
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
            v[kk] = k0 + kk < K ? in[(size_t)(k0 + kk) * P] : 0.0f;
        vstore8(vload8(0, v), 0, o + k0);
    }
}

/* Filter gradient over a padded input (every read in bounds), dw (K, C, R, S),
 * its reduction over the N*OH output rows split into `slices` parts:
 *   dw[dwo + s*dws + k*CRS + e] = (accumulate ? dw[...] : 0) + sum over the
 *     rows n*OH + i in [N*OH*s/slices, N*OH*(s+1)/slices) and j < OW of
 *     dyp[dyo + q*KP + k] * x[xo + n*xsn + c*xsc + (i*sh + u*dh)*xsy + j*sw + v*dw]
 * for e = (c*R + u)*S + v and slice s < slices (src/ops/conv.c adds the
 * slices in a fixed order). One work-item per (slice, 8 filters k, 8 taps e):
 * eight float8 accumulators over k, in the fixed order n, i, j. */
__kernel void conv_filter(__global const float *x, ulong xo, ulong xsn, ulong xsc, int xsy,
                          __global const float *dyp, ulong dyo, int KP, __global float *dwt,
                          ulong dwo, ulong dws, int slices, int accumulate, int N, int K, int C,
                          int R, int S, int OH, int OW, int sh, int sw, int dh, int dw)
{
    size_t gid = get_global_id(0);
    int CRS = C * R * S, eblocks = (CRS + 7) / 8, kblocks = KP / 8;
    if (gid >= (size_t)slices * kblocks * eblocks)
        return;
    int e0 = (gid % eblocks) * 8, k0 = ((gid / eblocks) % kblocks) * 8;
    int sl = gid / ((size_t)eblocks * kblocks);
    size_t rows =
        (size_t)N * OH; /* the slice's output rows: [rows*sl/slices, rows*(sl+1)/slices) */
    size_t row = rows * sl / slices, row1 = rows * (sl + 1) / slices;
    long tap[8];
    float8 acc[8];
#pragma unroll
    for (int l = 0; l < 8; l++) {
        int e = min(e0 + l, CRS - 1); /* lanes past the end redo the last tap */
        int c = e / (R * S), u = (e / S) % R, v = e % S;
        tap[l] = (long)c * xsc + (long)u * dh * xsy + (long)v * dw;
        acc[l] = 0.0f;
    }
    __global const float *g = dyp + dyo + row * OW * KP + k0;
    for (; row < row1; row++) {
        __global const float *xi = x + xo + (row / OH) * xsn + (long)(row % OH) * sh * xsy;
        for (int j = 0; j < OW; j++, g += KP) {
            float8 gv = vload8(0, g);
            __global const float *xj = xi + (long)j * sw;
#pragma unroll
            for (int l = 0; l < 8; l++)
                acc[l] = MAC((float8)xj[tap[l]], gv, acc[l]);
        }
    }
    __global float *out = dwt + dwo + sl * dws;
#pragma unroll
    for (int l = 0; l < 8; l++) {
        float r[8];
        vstore8(acc[l], 0, r);
        for (int kk = 0; kk < 8; kk++) {
            size_t at = (size_t)(k0 + kk) * CRS + e0 + l;
            if (e0 + l < CRS && k0 + kk < K)
                out[at] = accumulate ? out[at] + r[kk] : r[kk];
        }
    }
}

/* dw[dwo + i] = (accumulate ? dw[dwo + i] : 0) + the sum over s < slices of
 * part[po + s*count + i], added in the order s = 0, 1, ...; i < count. */
__kernel void sum_slices(__global const float *part, ulong po, int slices, ulong count,
                         __global float *dwt, ulong dwo, int accumulate)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    float acc = part[po + i];
    for (int s = 1; s < slices; s++)
        acc += part[po + s * count + i];
    dwt[dwo + i] = accumulate ? dwt[dwo + i] + acc : acc;
}
