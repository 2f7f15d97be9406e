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
#define CLNET_GROUP_REDUCE(name, T, combine)                                                       \
    static T name(__local T *s, T v)                                                               \
    {                                                                                              \
        int lid = get_local_id(0);                                                                 \
        s[lid] = v;                                                                                \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (int k = CLNET_WG / 2; k > 0; k >>= 1) {                                               \
            if (lid < k)                                                                           \
                s[lid] = combine(s[lid], s[lid + k]);                                              \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        T r = s[0];                                                                                \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        return r;                                                                                  \
    }

CLNET_GROUP_REDUCE(group_sum, float, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum2, float2, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum4, float4, CLNET_ADD)
CLNET_GROUP_REDUCE(group_sum_int, int, CLNET_ADD)
CLNET_GROUP_REDUCE(group_max, float, max_nan)

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011): ten rounds on counter c with key k. Used by cl/rng.cl's fills
 * and cl/norm.cl's dropout, which must draw the same numbers. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint4 philox4x32_10(uint4 c, uint2 k)
{
    /* Unrolled, with the 32x32->64 products written out: pocl keeps a
     * rolled loop of mul_hi() scalar, 5-8x slower (the bits are the same). */
#pragma unroll
    for (int r = 0; r < 10; r++) {
        ulong p0 = (ulong)PHILOX_M0 * c.x, p1 = (ulong)PHILOX_M1 * c.z;
        uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
        uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += PHILOX_W0;
        k.y += PHILOX_W1;
    }
    return c;
}

/* Eight Philox4x32-10 blocks at once: lane l of the word vectors c0..c3 is
 * block l's counter on entry and its four output words on return, the same
 * bits as philox4x32_10 per lane. pocl does not vectorize across
 * work-items, so a kernel that needs many blocks runs them in vector lanes;
 * the 32x32 -> 64-bit products become vector multiplies. */
static void philox4x32_10_x8(uint8 *c0, uint8 *c1, uint8 *c2, uint8 *c3, uint2 k)
{
#pragma unroll
    for (int r = 0; r < 10; r++) {
        ulong8 p0 = convert_ulong8(*c0) * (ulong8)PHILOX_M0;
        ulong8 p1 = convert_ulong8(*c2) * (ulong8)PHILOX_M1;
        uint8 n0 = convert_uint8(p1 >> 32) ^ *c1 ^ (uint8)k.x;
        uint8 n2 = convert_uint8(p0 >> 32) ^ *c3 ^ (uint8)k.y;
        *c1 = convert_uint8(p1);
        *c3 = convert_uint8(p0);
        *c0 = n0;
        *c2 = n2;
        k.x += PHILOX_W0;
        k.y += PHILOX_W1;
    }
}
