/* clnet — the pixel-vectorized direct convolution (src/ops/conv.c, variant
 * "wide"): stride 1, output pixels along the vector lanes. Every shape,
 * stride and offset is a run-time argument: one build serves all. */
#pragma OPENCL FP_CONTRACT OFF

/* Multiply-add: as in cl/conv.cl. */
#if defined(FP_FAST_FMAF) || defined(__FMA__)
#define MAC(a, b, c) fma((a), (b), (c))
#else
#define MAC(a, b, c) ((a) * (b) + (c))
#endif

/* The register tile: WIDE_K output channels x 3 float8 of pixels, 12
 * accumulators (AVX2 has 16 vector registers). 8 channels (24 accumulators)
 * was not reliably faster on AVX-512 (32 registers) and slower on conv2. */
#define WIDE_K 4
#define WIDE_P 24

/* Stores lanes [0, 8) of v: output pixels q .. q + 7 of the wide grid (q =
 * i*xsy + j, j < xsy), those with q >= qmin, i < OH and j < OW, to
 * out + i*ysi + j*ysj. */
static void store8(__global float *out, float8 v, size_t q, int i, int j, size_t qmin, int xsy,
                   int OH, int OW, int ysi, int ysj)
{
    if (ysj == 1 && q >= qmin && i < OH && j + 8 <= OW) {
        vstore8(v, 0, out + (long)i * ysi + j);
        return;
    }
    float r[8];
    vstore8(v, 0, r);
    for (int l = 0; l < 8; l++, j++) {
        if (j == xsy)
            j = 0, i++;
        if (q + l >= qmin && i < OH && j < OW)
            out[(long)i * ysi + (long)j * ysj] = r[l];
    }
}

/* Direct convolution, stride 1, over a padded input whose rows have pitch xsy:
 *   y[yo + n*ysn + o*yso + i*ysi + j*ysj] = (b ? b[bo + o] : 0) + sum over ci, u, v of
 *     pk[pko + ((ci*R + u)*S + v)*COP + o] * x[xo + n*xsn + ci*xsc + (i + u*dh)*xsy + j + v*dw]
 * for n < N, o < CO, i < OH, j < OW. The pixels run along the "wide" grid
 * q = i*xsy + j, where the input of pixel q + 1 follows that of q whatever the
 * tap: one work-item per (n, WIDE_K output channels, 24 consecutive q),
 * three float8 input loads and WIDE_K broadcast weights per tap. Lanes with
 * j >= OW are computed and dropped. The grid's last block is moved back to
 * end at its last pixel (storing only the pixels the previous block left), so
 * every read is one that a valid pixel makes: needs (OH-1)*xsy + OW >= 24.
 * R or S may be 0 (no taps: the bias alone). */
__kernel void conv_wide(__global const float *x, ulong xo, ulong xsn, ulong xsc, int xsy,
                        __global const float *pk, ulong pko, int COP, __global const float *b,
                        ulong bo, int has_bias, __global float *y, ulong yo, ulong ysn, ulong yso,
                        int ysi, int ysj, int N, int CI, int CO, int R, int S, int OH, int OW,
                        int dh, int dw)
{
    size_t gid = get_global_id(0);
    size_t Q = (size_t)(OH - 1) * xsy + OW, qblocks = (Q + WIDE_P - 1) / WIDE_P;
    size_t oblocks = (CO + WIDE_K - 1) / WIDE_K;
    if (gid >= (size_t)N * oblocks * qblocks)
        return;
    size_t qmin = (gid % qblocks) * WIDE_P, q0 = min(qmin, Q - WIDE_P);
    size_t t = gid / qblocks;
    int o0 = (t % oblocks) * WIDE_K;
    size_t n = t / oblocks;
    float8 acc[WIDE_K][3];
#pragma unroll
    for (int kk = 0; kk < WIDE_K; kk++) {
        float bv = has_bias && o0 + kk < CO ? b[bo + o0 + kk] : 0.0f;
#pragma unroll
        for (int c = 0; c < 3; c++)
            acc[kk][c] = (float8)bv;
    }
    __global const float *xn = x + xo + n * xsn + q0;
    __global const float *wp = pk + pko + o0;
    for (int ci = 0; ci < CI; ci++) {
        __global const float *xc = xn + ci * xsc;
        for (int u = 0; u < R; u++) {
            __global const float *xu = xc + (long)u * dh * xsy;
            __global const float *wu = wp + ((size_t)ci * R + u) * S * COP;
            for (int v = 0; v < S; v++) {
                __global const float *xt = xu + v * dw;
                float8 x0 = vload8(0, xt), x1 = vload8(1, xt), x2 = vload8(2, xt);
                __global const float *wt = wu + (size_t)v * COP;
#pragma unroll
                for (int kk = 0; kk < WIDE_K; kk++) {
                    float8 wk = (float8)wt[kk];
                    acc[kk][0] = MAC(x0, wk, acc[kk][0]);
                    acc[kk][1] = MAC(x1, wk, acc[kk][1]);
                    acc[kk][2] = MAC(x2, wk, acc[kk][2]);
                }
            }
        }
    }
    __global float *out = y + yo + n * ysn;
    int ic[3], jc[3]; /* the row and column of pixel q0 + 8c, one division in all */
    ic[0] = q0 / xsy, jc[0] = q0 % xsy;
#pragma unroll
    for (int c = 1; c < 3; c++) {
        ic[c] = ic[c - 1], jc[c] = jc[c - 1] + 8;
        while (jc[c] >= xsy)
            jc[c] -= xsy, ic[c]++;
    }
#pragma unroll
    for (int kk = 0; kk < WIDE_K; kk++) {
        if (o0 + kk >= CO)
            break;
        __global float *oc = out + (size_t)(o0 + kk) * yso;
#pragma unroll
        for (int c = 0; c < 3; c++)
            store8(oc, acc[kk][c], q0 + 8 * c, ic[c], jc[c], qmin, xsy, OH, OW, ysi, ysj);
    }
}

/* Filter gradient, stride 1, pixels along the lanes, reading dy (N, K, OH,
 * OW) as it is and x padded (every read in bounds, rows of pitch xsy):
 *   dw[dwo + s*dws + k*CRS + e] = (accumulate ? dw[...] : 0) + sum over the rows
 *     n*OH + i in [N*OH*s/slices, N*OH*(s+1)/slices) and j < OW of
 *     dy[dyo + ((n*K + k)*OH + i)*OW + j] * x[xo + n*xsn + c*xsc + (i + u*dh)*xsy + j + v*dw]
 * for e = (c*R + u)*S + v. One work-item per (slice, 4 filters, 3 taps): 12
 * float8 accumulators over 8 consecutive pixels of a row (a row's last OW % 8
 * pixels as its last 8 with the lanes done before set to 0 in both factors,
 * or one by one in rows under 8 pixels), each added across its lanes in a
 * fixed order at the end. */
__kernel void conv_filter_wide(__global const float *x, ulong xo, ulong xsn, ulong xsc, int xsy,
                               __global const float *dy, ulong dyo, __global float *dwt, ulong dwo,
                               ulong dws, int slices, int accumulate, int N, int K, int C, int R,
                               int S, int OH, int OW, int dh, int dw)
{
    size_t gid = get_global_id(0);
    int CRS = C * R * S, eblocks = (CRS + 2) / 3, kblocks = (K + 3) / 4;
    if (gid >= (size_t)slices * kblocks * eblocks)
        return;
    int e0 = (gid % eblocks) * 3, k0 = ((gid / eblocks) % kblocks) * 4;
    int sl = gid / ((size_t)eblocks * kblocks);
    size_t rows = (size_t)N * OH, P = (size_t)OH * OW;
    size_t row = rows * sl / slices, row1 = rows * (sl + 1) / slices;
    long tap[3], kof[4];
    float8 acc[4][3];
#pragma unroll
    for (int l = 0; l < 3; l++) {
        int e = min(e0 + l, CRS - 1); /* taps past the end redo the last one */
        int c = e / (R * S), u = (e / S) % R, v = e % S;
        tap[l] = (long)c * xsc + (long)u * dh * xsy + (long)v * dw;
    }
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        kof[kk] = (long)min(k0 + kk, K - 1) * P; /* filters past the end redo the last one */
#pragma unroll
        for (int l = 0; l < 3; l++)
            acc[kk][l] = 0.0f;
    }
    int full = OW / 8 * 8, rem = OW - full;
    int8 keep = (int8)(0, 1, 2, 3, 4, 5, 6, 7) >= (int8)(8 - rem); /* the tail's new lanes */
    for (; row < row1; row++) {
        size_t n = row / OH;
        int i = row % OH;
        __global const float *xi = x + xo + n * xsn + (long)i * xsy;
        __global const float *gi = dy + dyo + n * K * P + (size_t)i * OW;
        for (int j = 0; j < full; j += 8) {
            float8 g[4], xv[3];
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
                g[kk] = vload8(0, gi + kof[kk] + j);
#pragma unroll
            for (int l = 0; l < 3; l++)
                xv[l] = vload8(0, xi + tap[l] + j);
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
#pragma unroll
                for (int l = 0; l < 3; l++)
                    acc[kk][l] = MAC(g[kk], xv[l], acc[kk][l]);
        }
        if (rem && full) { /* the row's last 8 pixels, the first 8 - rem of them 0 */
            float8 g[4], xv[3];
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
                g[kk] = select((float8)0.0f, vload8(0, gi + kof[kk] + OW - 8), keep);
#pragma unroll
            for (int l = 0; l < 3; l++)
                xv[l] = select((float8)0.0f, vload8(0, xi + tap[l] + OW - 8), keep);
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
#pragma unroll
                for (int l = 0; l < 3; l++)
                    acc[kk][l] = MAC(g[kk], xv[l], acc[kk][l]);
        } else if (rem) { /* a row under 8 pixels; the other lanes 0 in both factors */
            float gb[4][8], xb[3][8];
            for (int m = 0; m < 8; m++) {
#pragma unroll
                for (int kk = 0; kk < 4; kk++)
                    gb[kk][m] = m < rem ? gi[kof[kk] + full + m] : 0.0f;
#pragma unroll
                for (int l = 0; l < 3; l++)
                    xb[l][m] = m < rem ? xi[tap[l] + full + m] : 0.0f;
            }
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
#pragma unroll
                for (int l = 0; l < 3; l++)
                    acc[kk][l] = MAC(vload8(0, gb[kk]), vload8(0, xb[l]), acc[kk][l]);
        }
    }
    __global float *out = dwt + dwo + sl * dws;
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int l = 0; l < 3; l++) {
            float8 a = acc[kk][l];
            float4 h = a.lo + a.hi;
            float r = (h.x + h.y) + (h.z + h.w);
            size_t at = (size_t)(k0 + kk) * CRS + e0 + l;
            if (k0 + kk < K && e0 + l < CRS)
                out[at] = accumulate ? out[at] + r : r;
        }
}
