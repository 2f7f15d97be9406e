/* clnet — clnet's own SGEMM for CPU-class devices (docs/gemm.md): kernels
 * that read A and B in place (small GEMMs: one launch, no scratch) and a
 * packed kernel (large GEMMs: gemm_pack + gemm_packed, below). Callers pass
 * views of the context's workspace, so none of them uses it; the packed
 * kernel has a scratch buffer of its own. Each in-place work-item is a CPU
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

/* ---- The packed kernel (docs/gemm.md) -------------------------------------
 * The host splits k into blocks of at most a few hundred; gemm_pack packs
 * each block of op(A) into row panels of PMR rows and of op(B) into column
 * panels of PNR = 16 * PNV columns (zero-padded past m, n and the block's
 * end, in src/ops/gemm.c's own scratch buffer), and gemm_packed computes a
 * PMR x PNR tile of C per work-item: per step of k, PNV float16 loads of B,
 * PMR scalar broadcasts of A, PMR * PNV float16 multiply-adds into
 * accumulators held in registers. Between blocks the accumulators wait in
 * the scratch; the last block writes C = alpha * sum (+ beta * C when beta
 * != 0). Each element sums its k products in order p = 0..k-1 from 0.0f
 * with GEMM_MADD, whatever the blocks: the same sums as gemm_tile. PMR and
 * PNV are -D options fixed per device. */

#ifndef PMR
#define PMR 8
#endif
#ifndef PNV
#define PNV 1
#endif
#define PNR (16 * PNV)
/* The packed block length is a multiple of this (zero-padded). */
#define PKU 4

/* Row panel ip of op(A)'s block [p0, p0 + kc) to ap + ip * PMR * kcp:
 * element (i, p) at p * PMR + i % PMR; rows past m and p past kc are 0.
 * op(A)[i][p] is at a[i * rs + p * cs]. */
static void pack_a(__global const float *a, ulong a_off, ulong rs, ulong cs, uint m, uint p0,
                   uint kc, uint kcp, __global float *ap, uint ip)
{
    __global float *dst = ap + (ulong)ip * PMR * kcp;
    const __global float *src[PMR];
    uint i0 = ip * PMR, rows = min((uint)PMR, m - i0);
    for (uint r = 0; r < PMR; r++)
        src[r] = a + a_off + (ulong)min(i0 + r, m - 1) * rs + (ulong)p0 * cs;
    for (uint p = 0; p < kcp; p++)
        for (uint r = 0; r < PMR; r++)
            dst[(ulong)p * PMR + r] = p < kc && r < rows ? src[r][(ulong)p * cs] : 0.0f;
}

/* Column panel jp of op(B)'s block [p0, p0 + kc) to bp + jp * PNR * kcp:
 * element (p, j) at p * PNR + j % PNR; columns past n and p past kc are 0.
 * op(B)[p][j] is at b[p * rs + j * cs]. */
static void pack_b(__global const float *b, ulong b_off, ulong rs, ulong cs, uint n, uint p0,
                   uint kc, uint kcp, __global float *bp, uint jp)
{
    __global float *dst = bp + (ulong)jp * PNR * kcp;
    uint j0 = jp * PNR, cols = min((uint)PNR, n - j0);
    const __global float *src = b + b_off + (ulong)p0 * rs + (ulong)j0 * cs;
    for (uint p = 0; p < kcp; p++) {
        __global float *d = dst + (ulong)p * PNR;
        const __global float *s = src + (ulong)p * rs;
        if (p < kc && cols == PNR && cs == 1) {
#pragma unroll
            for (int v = 0; v < PNV; v++)
                vstore16(vload16(v, s), v, d);
        } else {
            for (uint x = 0; x < PNR; x++)
                d[x] = p < kc && x < cols ? s[(ulong)x * cs] : 0.0f;
        }
    }
}

/* One launch packs both operands of a k block [p0, p0 + kc): work-items
 * 0..mpan-1 op(A)'s row panels to ws + ws_off, the next npan op(B)'s column
 * panels after them (at ws_off + mpan * PMR * kcp). Global: (mpan + npan). */
__kernel void gemm_pack(__global const float *a, ulong a_off, ulong a_rs, ulong a_cs, uint m,
                        __global const float *b, ulong b_off, ulong b_rs, ulong b_cs, uint n,
                        uint p0, uint kc, uint kcp, __global float *ws, ulong ws_off)
{
    uint id = get_global_id(0);
    uint mpan = (m + PMR - 1) / PMR, npan = (n + PNR - 1) / PNR;
    __global float *bp = ws + ws_off + (ulong)mpan * PMR * kcp;
    if (id < mpan)
        pack_a(a, a_off, a_rs, a_cs, m, p0, kc, kcp, ws + ws_off, id);
    else if (id - mpan < npan)
        pack_b(b, b_off, b_rs, b_cs, n, p0, kc, kcp, bp, id - mpan);
}

/* One PMR x PNR tile of C from packed panels of one k block (kcp, a
 * multiple of PKU). Work-item `id` takes row panel ip and column panel jp
 * such that groups of `mcp` row panels (an L2-sized block of packed A) are
 * swept across all column panels before the next group. The accumulators
 * start from 0 on the first block (`first`), else from the tile's partial
 * sums at ws + part_off (tile after tile, PMR x PNR each, padding
 * included), so every element sums its k products in order p = 0..k-1
 * whatever the blocks; on the last block (`last`) C = alpha * sum (+ beta *
 * C when beta != 0), else the sums go back to the scratch. Global: (row
 * panels x column panels). */
__kernel void gemm_packed(__global float *ws, ulong ap_off, ulong bp_off, ulong part_off,
                          __global float *c, ulong c_off, ulong ldc, uint m, uint n, uint kcp,
                          uint mcp, uint first, uint last, float alpha, float beta)
{
    uint npan = (n + PNR - 1) / PNR, mpan = (m + PMR - 1) / PMR;
    uint id = get_global_id(0);
    if (id >= npan * mpan)
        return;
    uint group = id / (mcp * npan), in = id % (mcp * npan);
    uint g0 = group * mcp, gn = min(mcp, mpan - g0);
    uint jp = in / gn, ip = g0 + in % gn;
    const __global float *pa = ws + ap_off + (ulong)ip * PMR * kcp;
    const __global float *pb = ws + bp_off + (ulong)jp * PNR * kcp;
    __global float *pp = ws + part_off + ((ulong)ip * npan + jp) * PMR * PNR;
    float16 acc[PMR][PNV];
#pragma unroll
    for (int r = 0; r < PMR; r++)
#pragma unroll
        for (int v = 0; v < PNV; v++)
            acc[r][v] = first ? (float16)(0.0f) : vload16(r * PNV + v, pp);
    for (uint p = 0; p < kcp; p += PKU) {
#pragma unroll
        for (int u = 0; u < PKU; u++) {
            float16 bv[PNV];
#pragma unroll
            for (int v = 0; v < PNV; v++)
                bv[v] = vload16((p + u) * PNV + v, pb);
#pragma unroll
            for (int r = 0; r < PMR; r++) {
                float as = pa[(p + u) * PMR + r];
#pragma unroll
                for (int v = 0; v < PNV; v++)
                    acc[r][v] = GEMM_MADD(as, bv[v], acc[r][v]);
            }
        }
    }
    if (!last) {
#pragma unroll
        for (int r = 0; r < PMR; r++)
#pragma unroll
            for (int v = 0; v < PNV; v++)
                vstore16(acc[r][v], r * PNV + v, pp);
        return;
    }
    uint i0 = ip * PMR, j0 = jp * PNR;
    uint rows = min((uint)PMR, m - i0), cols = n - j0;
    __global float *pc = c + c_off + (ulong)i0 * ldc + j0;
#pragma unroll
    for (int r = 0; r < PMR; r++)
#pragma unroll
        for (int v = 0; v < PNV; v++)
            if (r < rows && cols > 16 * v)
                gemm_store_row(pc + (ulong)r * ldc + 16 * v, acc[r][v], min(cols - 16 * v, 16u),
                               alpha, beta);
}
