/* clnet — elementwise arithmetic on float32. Every operand has its own
 * element offset, so views into shared buffers work. */
#pragma OPENCL FP_CONTRACT OFF

__kernel void add(__global float *z, ulong zo, __global const float *x, ulong xo,
                  __global const float *y, ulong yo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n)
        z[zo + i] = x[xo + i] + y[yo + i];
}

__kernel void mul(__global float *z, ulong zo, __global const float *x, ulong xo,
                  __global const float *y, ulong yo, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n)
        z[zo + i] = x[xo + i] * y[yo + i];
}

__kernel void scale(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n,
                    float alpha)
{
    size_t i = get_global_id(0);
    if (i < n)
        y[yo + i] = alpha * x[xo + i];
}

/* y = alpha * x + y, rounded twice (no fused multiply-add), like the reference. */
__kernel void axpy(__global float *y, ulong yo, __global const float *x, ulong xo, ulong n,
                   float alpha)
{
    size_t i = get_global_id(0);
    if (i < n)
        y[yo + i] = alpha * x[xo + i] + y[yo + i];
}
