/* clnet — clnet's own SGEMM for CPU-class devices (docs/gemm.md), reading
 * A and B in place (no packing: callers pass views of the context's
 * workspace, so the GEMM may not use it). Each work-item is a CPU
 * micro-kernel with its accumulators in registers: gemm_tile, a GEMM_MR x 16
 * tile (float16 rows of op(B), scalar broadcasts of op(A)), for every case
 * but A B^T, which gemm_tile_nt computes as 4 x 4 dot products of float16
 * runs along k. Shapes are run-time arguments; GEMM_MR and GEMM_FMA are -D
 * options fixed per device. The summation order is fixed (gemm_tile: p =
 * 0..k-1 from 0.0f; gemm_tile_nt: 16 lanes, their fixed tree, then the tail
 * in order), then C = alpha * sum (+ beta * C when beta != 0):
 * deterministic, no atomics. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef GEMM_MR
#define GEMM_MR 4
#endif
#define GEMM_NR 16

/* a * b + c: fused where the device has a hardware fma (GEMM_FMA=1), else
 * rounded twice; either way the same on every run of one device. */
#if defined(GEMM_FMA) && GEMM_FMA
#define GEMM_MADD(a, b, c) fma((float16)(a), (b), (c))
#define GEMM_MADD16(a, b, c) fma((a), (b), (c))
#define GEMM_MADD1(a, b, c) fma((a), (b), (c))
#else
#define GEMM_MADD(a, b, c) ((a) * (b) + (c))
#define GEMM_MADD16(a, b, c) ((a) * (b) + (c))
#define GEMM_MADD1(a, b, c) ((a) * (b) + (c))
#endif

/* One row of the tile to C: c[0..cols) = alpha * acc (+ beta * c). */
static void gemm_store_row(__global float *c, float16 acc, uint cols, float alpha, float beta)
{
    float16 v = alpha * acc;
    if (cols == GEMM_NR) {
        if (beta != 0.0f)
            v = v + beta * vload16(0, c);
        vstore16(v, 0, c);
        return;
    }
    float t[GEMM_NR];
    vstore16(v, 0, t);
    for (uint x = 0; x < cols; x++)
        c[x] = beta != 0.0f ? t[x] + beta * c[x] : t[x];
}

/* C tile (ip, jp) of batch entry ib: rows ip*MR.., columns jp*16..; op(A)
 * and op(B) element (i, p) / (p, j) at i * a_rs + p * a_cs / p * b_rs +
 * j * b_cs. Rows past m and columns past n repeat the last one: read, never
 * stored. Global: (column panels, row panels, batch). */
__kernel void gemm_tile(__global const float *a, ulong a_off, ulong a_stride, ulong a_rs,
                        ulong a_cs, __global const float *b, ulong b_off, ulong b_stride,
                        ulong b_rs, ulong b_cs, __global float *c, ulong c_off, ulong ldc,
                        ulong c_stride, uint m, uint n, uint k, float alpha, float beta)
{
    uint jp = get_global_id(0), ip = get_global_id(1);
    ulong ib = get_global_id(2);
    if ((ulong)jp * GEMM_NR >= n || (ulong)ip * GEMM_MR >= m)
        return;
    uint i0 = ip * GEMM_MR, j0 = jp * GEMM_NR;
    const __global float *ar[GEMM_MR];
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        ar[r] = a + a_off + ib * a_stride + (ulong)min(i0 + r, m - 1) * a_rs;
    const __global float *pb = b + b_off + ib * b_stride;
    float16 acc[GEMM_MR];
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        acc[r] = (float16)(0.0f);
    if (b_cs == 1 && j0 + GEMM_NR <= n) {
        pb += j0;
        for (uint p = 0; p < k; p++) {
            float16 bv = vload16(0, pb + p * b_rs);
#pragma unroll
            for (int r = 0; r < GEMM_MR; r++)
                acc[r] = GEMM_MADD(ar[r][p * a_cs], bv, acc[r]);
        }
    } else {
        ulong col[GEMM_NR];
        for (uint x = 0; x < GEMM_NR; x++)
            col[x] = (ulong)min(j0 + x, n - 1) * b_cs;
        float t[GEMM_NR];
        for (uint p = 0; p < k; p++) {
            for (uint x = 0; x < GEMM_NR; x++)
                t[x] = pb[p * b_rs + col[x]];
            float16 bv = vload16(0, t);
#pragma unroll
            for (int r = 0; r < GEMM_MR; r++)
                acc[r] = GEMM_MADD(ar[r][p * a_cs], bv, acc[r]);
        }
    }
    uint cols = min((uint)GEMM_NR, n - j0);
    __global float *pc = c + c_off + ib * c_stride + (ulong)i0 * ldc + j0;
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        if (i0 + r < m)
            gemm_store_row(pc + (ulong)r * ldc, acc[r], cols, alpha, beta);
}

/* The sum of v's lanes, in a fixed order. */
static float gemm_hsum(float16 v)
{
    float8 h8 = v.lo + v.hi;
    float4 h4 = h8.lo + h8.hi;
    float2 h2 = h4.lo + h4.hi;
    return h2.x + h2.y;
}

/* C = alpha A B^T (+ beta C), A and B both read along k in place: a 4 x 4
 * tile of C per work-item, sixteen float16 dot-product accumulators over
 * whole blocks of 16 along k, then the lanes summed (gemm_hsum) and the
 * last k % 16 products added in order. Rows of A past m and of B past n
 * repeat the last one. Global: (n / 4 rounded up, m / 4 rounded up, batch). */
__kernel void gemm_tile_nt(__global const float *a, ulong a_off, ulong a_stride, ulong lda,
                           __global const float *b, ulong b_off, ulong b_stride, ulong ldb,
                           __global float *c, ulong c_off, ulong ldc, ulong c_stride, uint m,
                           uint n, uint k, float alpha, float beta)
{
    uint jp = get_global_id(0), ip = get_global_id(1);
    ulong ib = get_global_id(2);
    if ((ulong)jp * 4 >= n || (ulong)ip * 4 >= m)
        return;
    uint i0 = ip * 4, j0 = jp * 4;
    const __global float *ar[4], *br[4];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        ar[r] = a + a_off + ib * a_stride + (ulong)min(i0 + r, m - 1) * lda;
        br[r] = b + b_off + ib * b_stride + (ulong)min(j0 + r, n - 1) * ldb;
    }
    float16 acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int x = 0; x < 4; x++)
            acc[r][x] = (float16)(0.0f);
    uint kb = k / 16 * 16;
    for (uint p = 0; p < kb; p += 16) {
        float16 av[4], bv[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            av[r] = vload16(0, ar[r] + p);
            bv[r] = vload16(0, br[r] + p);
        }
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int x = 0; x < 4; x++)
                acc[r][x] = GEMM_MADD16(av[r], bv[x], acc[r][x]);
    }
    uint rows = min(4u, m - i0), cols = min(4u, n - j0);
    for (uint r = 0; r < rows; r++)
        for (uint x = 0; x < cols; x++) {
            float s = gemm_hsum(acc[r][x]);
            for (uint p = kb; p < k; p++)
                s = GEMM_MADD1(ar[r][p], br[x][p], s);
            __global float *pc = c + c_off + ib * c_stride + (ulong)(i0 + r) * ldc + j0 + x;
            float v = alpha * s;
            *pc = beta != 0.0f ? v + beta * *pc : v;
        }
}
