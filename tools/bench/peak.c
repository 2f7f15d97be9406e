/* clnet-bench — the device's measured peak: an fp32 FMA-chain kernel and a
 * copy kernel, built by the tool itself with plain OpenCL calls on the
 * context's own device and queue (include/clnet/opencl.h), so that every
 * result can be given as a share of what this device reaches here. */
#include <math.h>
#include <string.h>

#include <clnet/opencl.h>

#include "bench.h"

/* CHAINS independent accumulators per work-item hide the FMA latency (4-5
 * cycles, two pipes on x86: 8-10 in flight); vectors of W lanes fill a SIMD
 * register, since pocl does not reliably vectorize across work-items. mad()
 * is an FMA wherever the device has one. The sum at the end keeps the
 * compiler from dropping the loop. The iteration count is an argument. */
static const char peak_source[] =
    "#define CHAINS 12\n"
    "#define STEP(T) x0 = mad(x0, a, b); x1 = mad(x1, a, b); x2 = mad(x2, a, b); \\\n"
    "    x3 = mad(x3, a, b); x4 = mad(x4, a, b); x5 = mad(x5, a, b); \\\n"
    "    x6 = mad(x6, a, b); x7 = mad(x7, a, b); x8 = mad(x8, a, b); \\\n"
    "    x9 = mad(x9, a, b); x10 = mad(x10, a, b); x11 = mad(x11, a, b);\n"
    "#define FMA_KERNEL(NAME, T, N) \\\n"
    "__kernel void NAME(__global float *out, int iters, float fa, float fb) \\\n"
    "{ \\\n"
    "    T a = (T)(fa), b = (T)(fb); \\\n"
    "    T x0 = (T)((float)get_global_id(0) * 1e-9f); \\\n"
    "    T x1 = x0 + 0.1f, x2 = x0 + 0.2f, x3 = x0 + 0.3f, x4 = x0 + 0.4f, x5 = x0 + 0.5f; \\\n"
    "    T x6 = x0 + 0.6f, x7 = x0 + 0.7f, x8 = x0 + 0.8f, x9 = x0 + 0.9f, x10 = x0 + 1.0f; \\\n"
    "    T x11 = x0 + 1.1f; \\\n"
    "    for (int i = 0; i < iters; i++) { STEP(T) STEP(T) } \\\n"
    "    T s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (x10 + x11)); \\\n"
    "    vstore##N(s, get_global_id(0), out); \\\n"
    "}\n"
    "__kernel void fma_1(__global float *out, int iters, float fa, float fb)\n"
    "{\n"
    "    float a = fa, b = fb, x0 = (float)get_global_id(0) * 1e-9f;\n"
    "    float x1 = x0 + 0.1f, x2 = x0 + 0.2f, x3 = x0 + 0.3f, x4 = x0 + 0.4f, x5 = x0 + 0.5f;\n"
    "    float x6 = x0 + 0.6f, x7 = x0 + 0.7f, x8 = x0 + 0.8f, x9 = x0 + 0.9f, x10 = x0 + 1.0f;\n"
    "    float x11 = x0 + 1.1f;\n"
    "    for (int i = 0; i < iters; i++) { STEP(float) STEP(float) }\n"
    "    out[get_global_id(0)] = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) +\n"
    "                            ((x8 + x9) + (x10 + x11));\n"
    "}\n"
    "FMA_KERNEL(fma_4, float4, 4)\n"
    "FMA_KERNEL(fma_8, float8, 8)\n"
    "FMA_KERNEL(fma_16, float16, 16)\n"
    "__kernel void copy_4(__global float4 *dst, __global const float4 *src)\n"
    "{ dst[get_global_id(0)] = src[get_global_id(0)]; }\n"
    "__kernel void copy_16(__global float16 *dst, __global const float16 *src)\n"
    "{ dst[get_global_id(0)] = src[get_global_id(0)]; }\n";

#define PEAK_CHAINS 12
#define PEAK_STEPS 2 /* STEP()s per loop iteration */

/* Wall time of one launch, waited for; < 0 on an OpenCL error. The
 * work-group size is explicit (a power of two that divides global): left to
 * itself, pocl may make the whole range one work-group, which runs on one
 * CPU thread. */
static double time_launch(cl_command_queue q, cl_kernel k, size_t global, size_t local)
{
    double t0 = bench_now();
    cl_int e = clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clFinish(q);
    return e == CL_SUCCESS ? bench_now() - t0 : -1.0;
}

/* Best GFLOP/s of the width-w FMA kernel: iterations doubled until a launch
 * takes target seconds, then reps launches, the fastest kept. */
static double fma_rate(cl_command_queue q, cl_kernel k, cl_mem out, size_t global, size_t local,
                       int w, double target, int reps)
{
    float fa = 0.999f, fb = 0.001f; /* x -> 1: no overflow, no denormals */
    int iters = 64;
    double t = 0.0;
    clSetKernelArg(k, 0, sizeof out, &out);
    clSetKernelArg(k, 2, sizeof fa, &fa);
    clSetKernelArg(k, 3, sizeof fb, &fb);
    for (;;) {
        clSetKernelArg(k, 1, sizeof iters, &iters);
        if ((t = time_launch(q, k, global, local)) < 0)
            return -1.0;
        if (t >= target || iters >= (1 << 24))
            break;
        iters *= t < target / 8 ? 4 : 2;
    }
    for (int r = 0; r < reps; r++) {
        double tr = time_launch(q, k, global, local);
        if (tr < 0)
            return -1.0;
        t = tr < t ? tr : t;
    }
    double flops = (double)global * iters * PEAK_STEPS * PEAK_CHAINS * w * 2.0;
    return flops / t * 1e-9;
}

static double copy_rate(cl_command_queue q, cl_kernel k, cl_mem dst, cl_mem src, size_t bytes,
                        size_t local, int w, int reps)
{
    clSetKernelArg(k, 0, sizeof dst, &dst);
    clSetKernelArg(k, 1, sizeof src, &src);
    size_t global = bytes / (sizeof(float) * (size_t)w);
    double best = -1.0;
    for (int r = 0; r < reps + 1; r++) { /* the first launch touches the pages */
        double t = time_launch(q, k, global, local);
        if (t < 0)
            return -1.0;
        if (r > 0 && (best < 0 || t < best))
            best = t;
    }
    return 2.0 * (double)bytes / best * 1e-9;
}

static void measure(clnet_context *ctx, cl_program prog, int quick, bench_peak *out)
{
    cl_context cl = clnet_context_cl_context(ctx);
    cl_command_queue q = clnet_context_cl_queue(ctx);
    const clnet_device_info *di = clnet_context_device(ctx);
    static const int widths[] = { 1, 4, 8, 16 };
    cl_int e;
    size_t local = 64; /* many work-groups: one per CPU thread at least */
    while (local > di->max_work_group_size)
        local /= 2;
    /* Enough work-items to fill a GPU; a CPU runs them as loops. */
    size_t global = (size_t)(di->compute_units ? di->compute_units : 1) *
                    (di->type == CLNET_DEVICE_GPU ? 4096 : 1024);
    cl_mem buf = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, global * 16 * sizeof(float), NULL, &e);
    for (int i = 0; e == CL_SUCCESS && i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "fma_%d", widths[i]);
        cl_kernel k = clCreateKernel(prog, name, &e);
        if (e != CL_SUCCESS)
            break;
        double r =
            fma_rate(q, k, buf, global, local, widths[i], quick ? 0.02 : 0.05, quick ? 2 : 4);
        clReleaseKernel(k);
        if (r > out->gflops) {
            out->gflops = r;
            out->flops_width = widths[i];
        }
    }
    if (buf)
        clReleaseMemObject(buf);
    /* Buffers well past the last-level cache, within the allocation limit. */
    size_t bytes = quick ? (size_t)64 << 20 : (size_t)256 << 20;
    while (bytes > ((size_t)1 << 20) && bytes > di->max_alloc_bytes / 2)
        bytes /= 2;
    cl_mem src = clCreateBuffer(cl, CL_MEM_READ_ONLY, bytes, NULL, &e);
    cl_mem dst = e == CL_SUCCESS ? clCreateBuffer(cl, CL_MEM_WRITE_ONLY, bytes, NULL, &e) : NULL;
    for (int w = 4; e == CL_SUCCESS && w <= 16; w *= 4) {
        char name[16];
        snprintf(name, sizeof name, "copy_%d", w);
        cl_kernel k = clCreateKernel(prog, name, &e);
        if (e != CL_SUCCESS)
            break;
        double r = copy_rate(q, k, dst, src, bytes, local, w, quick ? 3 : 6);
        clReleaseKernel(k);
        if (r > out->gbps) {
            out->gbps = r;
            out->copy_width = w;
        }
    }
    if (dst)
        clReleaseMemObject(dst);
    if (src)
        clReleaseMemObject(src);
    if (out->gflops > 0 && out->gbps > 0)
        out->measured = 1;
    else
        snprintf(out->error, sizeof out->error, "peak kernels failed (OpenCL error %d)", (int)e);
}

void bench_peak_measure(clnet_context *ctx, int quick, bench_peak *out)
{
    memset(out, 0, sizeof *out);
    double t0 = bench_now();
    cl_context cl = clnet_context_cl_context(ctx);
    cl_device_id dev = clnet_context_cl_device(ctx);
    cl_int e;
    const char *src = peak_source;
    cl_program prog = clCreateProgramWithSource(cl, 1, &src, NULL, &e);
    if (e == CL_SUCCESS)
        e = clBuildProgram(prog, 1, &dev, "", NULL, NULL);
    if (e == CL_SUCCESS)
        measure(ctx, prog, quick, out);
    else
        snprintf(out->error, sizeof out->error, "peak kernels did not build (OpenCL error %d)",
                 (int)e);
    if (prog)
        clReleaseProgram(prog);
    out->seconds = bench_now() - t0;
}
