/* clnet — sum reduction. Each work-group sums a strided share of x into one
 * partial; a second launch with one group sums the partials. The order is
 * fixed by the group count and size, so results are deterministic. */
#pragma OPENCL FP_CONTRACT OFF

/* out[oo + group] = sum of x[xo + i] for i = group*WG + lid + k*groups*WG < n. */
__kernel void sum_partial(__global const float *x, ulong xo, ulong n, __global float *out, ulong oo)
{
    __local float scratch[CLNET_WG];
    size_t lid = get_local_id(0);
    size_t stride = get_num_groups(0) * CLNET_WG;
    float acc = 0.0f;
    for (ulong i = get_group_id(0) * CLNET_WG + lid; i < n; i += stride)
        acc += x[xo + i];
    acc = group_sum(scratch, acc);
    if (lid == 0)
        out[oo + get_group_id(0)] = acc;
}
