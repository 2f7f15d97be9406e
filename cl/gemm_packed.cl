/* clnet — clnet's packed SGEMM for CPU-class devices (docs/gemm.md): the
 * host splits k into blocks of at most a few hundred, packs each block of
 * op(A) into row panels of PMR rows and of op(B) into column panels of
 * PNR = 16 * PNV columns (zero-padded past m, n and the block's end, in
 * src/ops/gemm.c's own scratch buffer), and gemm_packed computes a PMR x PNR
 * tile of C per work-item as a CPU micro-kernel: per step of k, PNV float16
 * loads of B, PMR scalar broadcasts of A, PMR * PNV float16 multiply-adds
 * into accumulators held in registers (`#pragma unroll`). Between blocks
 * the accumulators wait in the scratch; the last block writes C = alpha *
 * sum (+ beta * C when beta != 0). PMR, PNV and GEMM_FMA are -D options
 * fixed per device; shapes, block lengths and offsets are run-time
 * arguments. Each element sums its k products in order p = 0..k-1 from
 * 0.0f, whatever the blocks: deterministic, no atomics, and the same sums
 * as gemm_tile (cl/gemm.cl). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef PMR
#define PMR 8
#endif
#ifndef PNV
#define PNV 1
#endif
#define PNR (16 * PNV)
/* The packed block length is a multiple of this (zero-padded). */
#define PKU 4

#if defined(GEMM_FMA) && GEMM_FMA
#define PMADD(a, b, c) fma((float16)(a), (b), (c))
#else
#define PMADD(a, b, c) ((a) * (b) + (c))
#endif

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

/* One row of a tile to C: c[0..cols) = alpha * acc (+ beta * c). */
static void pstore_row(__global float *c, float16 acc, uint cols, float alpha, float beta)
{
    float16 v = alpha * acc;
    if (cols >= 16) {
        if (beta != 0.0f)
            v = v + beta * vload16(0, c);
        vstore16(v, 0, c);
        return;
    }
    float t[16];
    vstore16(v, 0, t);
    for (uint x = 0; x < cols; x++)
        c[x] = beta != 0.0f ? t[x] + beta * c[x] : t[x];
}

/* One PMR x PNR tile of C from packed panels of one k block (kcp, a
 * multiple of PKU). Work-item `id` takes row panel ip and column panel jp
 * such that groups of `mcp` row panels (an L2-sized block of packed A) are
 * swept across all column panels before the next group. The accumulators
 * start from 0 on the first block (`first`), else from the tile's partial
 * sums in `part` (tile after tile, PMR x PNR each, padding included), so
 * every element sums its k products in order p = 0..k-1 whatever the
 * blocks; on the last block C = alpha * sum (+ beta * C when beta != 0),
 * else the sums go back to `part`. Global: (row panels x column panels). */
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
                    acc[r][v] = PMADD(as, bv[v], acc[r][v]);
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
                pstore_row(pc + (ulong)r * ldc + 16 * v, acc[r][v], cols - 16 * v, alpha, beta);
}
