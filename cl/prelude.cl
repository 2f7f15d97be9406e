/* clnet — the prelude: passed as the first source string of every program
 * (device probes included). It holds the build constants' defaults, the
 * feature macros and the helpers several kernel files share. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLNET_WG
#define CLNET_WG 64
#endif

/* Optional features, one name each whatever the OpenCL C version: kernels are
 * OpenCL C 1.2 and use none of them. A variant that needs one tests
 * CLNET_HAS_*; the host builds it only where clnet__has_features() says the
 * device has it, with the OpenCL C version that defines its macros
 * (clnet__kernel_features), and runs a 1.2 fallback elsewhere. */
#if defined(cl_khr_fp64) || defined(__opencl_c_fp64)
#define CLNET_HAS_FP64 1
#endif
#if defined(cl_khr_fp16)
#define CLNET_HAS_FP16 1
#endif
#if defined(__OPENCL_C_VERSION__) && __OPENCL_C_VERSION__ >= 200 && __OPENCL_C_VERSION__ < 300
#define CLNET_HAS_WORK_GROUP_COLLECTIVES 1
#elif defined(__opencl_c_work_group_collective_functions)
#define CLNET_HAS_WORK_GROUP_COLLECTIVES 1
#endif
#if defined(cl_khr_subgroups) || defined(__opencl_c_subgroups)
#define CLNET_HAS_SUBGROUPS 1
#endif

/* ---- shared helpers ---------------------------------------------------------- */

/* The maximum, NaN-propagating (a NaN anywhere makes a running maximum NaN). */
static float max_nan(float a, float b)
{
    return (b > a || isnan(b)) ? b : a;
}

/* The NaN-propagating maximum of columns lane, lane + lanes, ... of the row
 * of cols values at x[o]; -INFINITY when the lane has no column. */
static float row_max_part(__global const float *x, ulong o, int cols, int lane, int lanes)
{
    float m = -INFINITY;
    for (int j = lane; j < cols; j += lanes)
        m = max_nan(m, x[o + j]);
    return m;
}

/* Work-group reductions over CLNET_WG lanes: every lane calls with its value
 * and s (CLNET_WG elements of local memory); all receive the combination. The
 * tree has a fixed shape, so results are deterministic (no atomics), and s
 * may be reused as soon as the call returns. */
#define CLNET_ADD(a, b) ((a) + (b))
#define CLNET_GROUP_REDUCE(name, T, combine)                                                        \
    static T name(__local T *s, T v)                                                                \
    {                                                                                               \
        int lid = get_local_id(0);                                                                  \
        s[lid] = v;                                                                                 \
        barrier(CLK_LOCAL_MEM_FENCE);                                                               \
        for (int k = CLNET_WG / 2; k > 0; k >>= 1) {                                                \
            if (lid < k)                                                                            \
                s[lid] = combine(s[lid], s[lid + k]);                                               \
            barrier(CLK_LOCAL_MEM_FENCE);                                                           \
        }                                                                                           \
        T r = s[0];                                                                                 \
        barrier(CLK_LOCAL_MEM_FENCE);                                                               \
        return r;                                                                                   \
    }

CLNET_GROUP_REDUCE(group_sum, float, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum2, float2, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum4, float4, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum_int, int, CLNET_ADD)
CLNET_GROUP_REDUCE(group_max, float, max_nan)
