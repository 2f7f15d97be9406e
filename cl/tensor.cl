/* clnet — tensor fills and copies. Offsets and counts are in elements. */
#pragma OPENCL FP_CONTRACT OFF

__kernel void fill_f32(__global float *x, ulong off, ulong n, float value)
{
    size_t i = get_global_id(0);
    if (i < n)
        x[off + i] = value;
}

__kernel void fill_i32(__global int *x, ulong off, ulong n, int value)
{
    size_t i = get_global_id(0);
    if (i < n)
        x[off + i] = value;
}

/* Copies 32-bit words: serves float32 and int32 alike, bit for bit. */
__kernel void copy_32(__global uint *dst, ulong doff, __global const uint *src, ulong soff, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n)
        dst[doff + i] = src[soff + i];
}

/* dst row i = src row idx[i], rows of `row` 32-bit words. An index outside
 * [0, src_rows) yields a row of zero bits, never an out-of-bounds read. */
__kernel void gather_rows_32(__global uint *dst, ulong doff, __global const uint *src, ulong soff,
                             __global const int *idx, ulong ioff, ulong rows, ulong row,
                             ulong src_rows)
{
    size_t g = get_global_id(0);
    if (g >= rows * row)
        return;
    ulong r = g / row, c = g % row;
    int s = idx[ioff + r];
    dst[doff + g] = s >= 0 && (ulong)s < src_rows ? src[soff + (ulong)s * row + c] : 0u;
}
