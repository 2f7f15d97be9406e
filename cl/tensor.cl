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
