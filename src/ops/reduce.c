/* clnet — reductions (cl/reduce.cl). */
#include "clnet/ops.h"
#include "tensor/tensor_impl.h"

/* At most this many partial sums: enough groups to keep every compute unit
 * busy, few enough that the second pass is one small group's work. */
#define MAX_GROUPS 256

static clnet_status sum_pass(clnet_context *ctx, cl_kernel k, cl_mem x, size_t xo, size_t n,
                             cl_mem out, size_t oo, size_t groups)
{
    size_t wg = clnet__context_profile(ctx)->wg_size;
    size_t global = groups * wg;
    clnet__arg a[] = { CLNET_ARG_MEM(x), CLNET_ARG_ULONG(xo), CLNET_ARG_ULONG(n),
                       CLNET_ARG_MEM(out), CLNET_ARG_ULONG(oo) };
    return clnet__launch(ctx, k, "clnet_sum", 5, a, 1, &global, &wg);
}

CLNET_API clnet_status clnet_sum(clnet_tensor *out, const clnet_tensor *x)
{
    CLNET_CHECK_ARG(NULL, out != NULL);
    clnet_context *ctx = out->ctx;
    CLNET_CHECK_ARG(ctx, x != NULL);
    CLNET_CHECK_ARG(ctx, x->ctx == ctx);
    if (out->dtype != CLNET_F32 || x->dtype != CLNET_F32 || out->numel != 1)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "clnet_sum: out must be one float32 element (has %zu), x float32",
                            out->numel);
    if (x->numel == 0)
        return clnet_tensor_fill(out, 0.0);
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "reduce", NULL, "sum_partial", &k);
    if (st)
        return st;
    size_t wg = clnet__context_profile(ctx)->wg_size;
    size_t groups = (x->numel + wg - 1) / wg;
    if (groups > MAX_GROUPS)
        groups = MAX_GROUPS;
    if (groups == 1)
        return sum_pass(ctx, k, clnet__mem(x), x->offset, x->numel, clnet__mem(out), out->offset, 1);
    cl_mem partial;
    if ((st = clnet__workspace(ctx, groups * sizeof(float), &partial)) ||
        (st = sum_pass(ctx, k, clnet__mem(x), x->offset, x->numel, partial, 0, groups)))
        return st;
    return sum_pass(ctx, k, partial, 0, groups, clnet__mem(out), out->offset, 1);
}

CLNET_API clnet_status clnet_sum_host(const clnet_tensor *x, float *out)
{
    CLNET_CHECK_ARG(NULL, x != NULL);
    CLNET_CHECK_ARG(x->ctx, out != NULL);
    clnet_tensor *s;
    clnet_status st = clnet_tensor_create(x->ctx, CLNET_F32, 0, NULL, &s);
    if (st)
        return st;
    if (!(st = clnet_sum(s, x)))
        st = clnet_tensor_download(s, out, sizeof *out);
    clnet_tensor_destroy(s);
    return st;
}
