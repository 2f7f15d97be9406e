/* clnet — clnet's own SGEMM for CPU-class devices (docs/gemm.md): op(B) is
 * packed into zero-padded panels of 16 columns, then each work-item computes
 * one GEMM_MR x 16 tile of C as a CPU micro-kernel (float16 loads of B,
 * scalar broadcasts of A read in place, the accumulators in registers). Shapes are run-time
 * arguments; the tile height GEMM_MR and GEMM_FMA are -D options fixed per
 * device. Each element of C sums its k products in order p = 0..k-1 from
 * 0.0f, then C = alpha * sum (+ beta * C when beta != 0): deterministic, no
 * atomics. Work-items past m or n return; packing pads with zeros that are
 * never written back. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef GEMM_MR
#define GEMM_MR 4
#endif
#define GEMM_NR 16

/* a * b + c: fused where the device has a hardware fma (GEMM_FMA=1), else
 * rounded twice; either way the same on every run of one device. */
#if defined(GEMM_FMA) && GEMM_FMA
#define GEMM_MADD(a, b, c) fma((float16)(a), (b), (c))
#else
#define GEMM_MADD(a, b, c) ((a) * (b) + (c))
#endif

/* bp[bp_off + ib * bp_stride + (j / 16) * 16 * k + p * 16 + j % 16] = op(B)[p][j] for
 * j < np (n rounded up to 16), 0 past n. Global: (np, k, batches). */
__kernel void gemm_pack_b(__global const float *b, ulong b_off, ulong ldb, ulong b_stride,
                          int trans, uint n, uint k, __global float *bp, ulong bp_off,
                          ulong bp_stride)
{
    uint j = get_global_id(0), p = get_global_id(1);
    ulong ib = get_global_id(2);
    uint np = (n + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    if (j >= np || p >= k)
        return;
    float v = 0.0f;
    ulong base = b_off + ib * b_stride;
    if (j < n)
        v = trans ? b[base + (ulong)j * ldb + p] : b[base + (ulong)p * ldb + j];
    ulong panel = (ulong)(j / GEMM_NR) * GEMM_NR * k;
    bp[bp_off + ib * bp_stride + panel + (ulong)p * GEMM_NR + j % GEMM_NR] = v;
}

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

/* C tile (ip, jp) of batch entry ib: rows ip*MR.., columns jp*16.. Global:
 * (column panels, row panels, batch). */
__kernel void gemm_tile(__global const float *a, ulong a_off, ulong a_stride, ulong a_rs,
                        ulong a_cs, __global const float *bp, ulong bp_stride,
                        __global float *c, ulong c_off, ulong ldc, ulong c_stride, uint m,
                        uint n, uint k, float alpha, float beta)
{
    uint jp = get_global_id(0), ip = get_global_id(1);
    ulong ib = get_global_id(2);
    if ((ulong)jp * GEMM_NR >= n || (ulong)ip * GEMM_MR >= m)
        return;
    /* Rows past m repeat row m - 1: read, never stored. */
    const __global float *ar[GEMM_MR];
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        ar[r] = a + a_off + ib * a_stride + (ulong)min(ip * GEMM_MR + r, m - 1) * a_rs;
    const __global float *pb = bp + ib * bp_stride + (ulong)jp * GEMM_NR * k;
    float16 acc[GEMM_MR];
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        acc[r] = (float16)(0.0f);
    for (uint p = 0; p < k; p++) {
        float16 bv = vload16(p, pb);
#pragma unroll
        for (int r = 0; r < GEMM_MR; r++)
            acc[r] = GEMM_MADD(ar[r][p * a_cs], bv, acc[r]);
    }
    uint i0 = ip * GEMM_MR, j0 = jp * GEMM_NR;
    uint cols = min((uint)GEMM_NR, n - j0);
    __global float *pc = c + c_off + ib * c_stride + (ulong)i0 * ldc + j0;
#pragma unroll
    for (int r = 0; r < GEMM_MR; r++)
        if (i0 + r < m)
            gemm_store_row(pc + (ulong)r * ldc, acc[r], cols, alpha, beta);
}
