/* clnet — device buffers and kernel launches. */
#include <string.h>

#include "context_impl.h"

clnet_status clnet__buffer_create(clnet_context *ctx, size_t bytes, cl_mem *out)
{
    *out = NULL;
    if (bytes > ctx->profile.info.max_alloc_bytes)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "buffer of %zu bytes exceeds the device's maximum allocation of "
                            "%llu bytes (%s)",
                            bytes, (unsigned long long)ctx->profile.info.max_alloc_bytes,
                            ctx->profile.info.name);
    /* Drivers need not refuse what exceeds the device's memory (pocl's
     * POCL_MEMORY_LIMIT only lowers what it reports): count this context's
     * buffers against it. */
    const clnet_device_info *d = &ctx->profile.info;
    if (d->global_mem_bytes && (ctx->stats.bytes_live > d->global_mem_bytes ||
                                bytes > d->global_mem_bytes - ctx->stats.bytes_live))
        return clnet__error(ctx, CLNET_ERR_DEVICE_MEMORY,
                            "allocating %zu bytes on \"%s\": this context's %llu live bytes would "
                            "exceed the device's global memory of %llu bytes",
                            bytes, d->name, (unsigned long long)ctx->stats.bytes_live,
                            (unsigned long long)d->global_mem_bytes);
    cl_int e;
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS)
        return clnet__error(ctx, clnet__cl_status(e),
                            "allocating %zu bytes on \"%s\": clCreateBuffer failed: %s (%d)", bytes,
                            ctx->profile.info.name, clnet__cl_error_name(e), (int)e);
    ctx->stats.buffers_created++;
    ctx->stats.buffers_live++;
    ctx->stats.bytes_live += bytes;
    *out = m;
    return CLNET_OK;
}

void clnet__buffer_release(clnet_context *ctx, cl_mem mem, size_t bytes)
{
    if (!mem)
        return;
    clReleaseMemObject(mem);
    ctx->stats.buffers_live--;
    ctx->stats.bytes_live -= bytes;
}

clnet_status clnet__buffer_write(clnet_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
                                 const void *src)
{
    ctx->stats.host_waits++;
    cl_int e =
        clEnqueueWriteBuffer(ctx->queue, mem, CL_TRUE, offset_bytes, bytes, src, 0, NULL, NULL);
    return e == CL_SUCCESS ? CLNET_OK : clnet__cl_error(ctx, e, "clEnqueueWriteBuffer", "upload");
}

clnet_status clnet__buffer_read(clnet_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
                                void *dst)
{
    ctx->stats.host_waits++;
    cl_int e =
        clEnqueueReadBuffer(ctx->queue, mem, CL_TRUE, offset_bytes, bytes, dst, 0, NULL, NULL);
    if (e != CL_SUCCESS)
        return clnet__cl_error(ctx, e, "clEnqueueReadBuffer", "download");
    clnet__kprof_completed(ctx); /* in order: every earlier launch has ended */
    return CLNET_OK;
}

clnet_status clnet__launch(clnet_context *ctx, cl_kernel k, const char *what, int nargs,
                           const clnet__arg *args, int dims, const size_t *global,
                           const size_t *local)
{
    for (int i = 0; i < nargs; i++) {
        const clnet__arg *a = &args[i];
        cl_int e = clSetKernelArg(k, (cl_uint)i, a->size, a->is_local ? NULL : (const void *)&a->v);
        if (e != CL_SUCCESS)
            return clnet__error(ctx, clnet__cl_status(e), "%s: clSetKernelArg(%d) failed: %s (%d)",
                                what, i, clnet__cl_error_name(e), (int)e);
    }
    size_t g[3];
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0)
            return CLNET_OK; /* empty range: nothing to launch */
        g[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    cl_event ev = NULL;
    cl_int e = clEnqueueNDRangeKernel(ctx->queue, k, (cl_uint)dims, NULL, g, local, 0, NULL,
                                      ctx->kprof ? &ev : NULL);
    if (e != CL_SUCCESS)
        return clnet__cl_error(ctx, e, "clEnqueueNDRangeKernel", what);
    if (ev)
        clnet__kprof_add(ctx, k, ev);
    ctx->stats.kernel_launches++;
    return CLNET_OK;
}

clnet_status clnet__launch1d(clnet_context *ctx, cl_kernel k, const char *what, int nargs,
                             const clnet__arg *args, size_t n)
{
    size_t local = ctx->profile.wg_size;
    return clnet__launch(ctx, k, what, nargs, args, 1, &n, &local);
}

/* A scratch buffer *mem of *have bytes, grown to at least `bytes`. */
static clnet_status scratch(clnet_context *ctx, cl_mem *mem, size_t *have, size_t bytes,
                            cl_mem *out)
{
    if (bytes == 0)
        bytes = 1;
    if (*mem && *have >= bytes) {
        *out = *mem;
        return CLNET_OK;
    }
    /* Grow geometrically so a slowly growing demand allocates rarely. */
    size_t want = bytes < *have * 2 ? *have * 2 : bytes;
    if (want > ctx->profile.info.max_alloc_bytes)
        want = bytes;
    cl_mem m;
    clnet_status st = clnet__buffer_create(ctx, want, &m);
    if (st)
        return st;
    clnet__buffer_release(ctx, *mem, *have);
    *mem = m;
    *have = want;
    *out = m;
    return CLNET_OK;
}

clnet_status clnet__workspace(clnet_context *ctx, size_t bytes, cl_mem *out)
{
    return scratch(ctx, &ctx->workspace, &ctx->workspace_bytes, bytes, out);
}

clnet_status clnet__gemm_scratch(clnet_context *ctx, size_t bytes, cl_mem *out)
{
    return scratch(ctx, &ctx->gemm_scratch, &ctx->gemm_scratch_bytes, bytes, out);
}
