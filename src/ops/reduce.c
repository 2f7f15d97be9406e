/* clnet — reductions (cl/reduce.cl). */
#include "clnet/ops.h"
#include "ops/op.h"

/* At most this many partial sums: enough groups to keep every compute unit
 * busy, few enough that the second pass is one small group's work. */
#define MAX_GROUPS 256

static clnet_status sum_pass(const clnet__op *op, cl_kernel k, cl_mem x, size_t xo, size_t n,
                             cl_mem out, size_t oo, size_t groups)
{
    size_t wg = clnet__context_profile(op->ctx)->wg_size;
    size_t global = groups * wg;
    return clnet__launch(op->ctx, k, op->func,
                         CLNET_ARGS(CLNET_ARG_MEM(x), CLNET_ARG_ULONG(xo), CLNET_ARG_ULONG(n),
                                    CLNET_ARG_MEM(out), CLNET_ARG_ULONG(oo)),
                         1, &global, &wg);
}

CLNET_API clnet_status clnet_sum(const clnet_tensor *x, clnet_tensor *out)
{
    static const clnet__tspec spec[] = { { .name = "out", .flags = CLNET_T_OUT }, { .name = "x" } };
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, spec, out, x);
    if (st)
        return st;
    if (out->numel != 1)
        return clnet__op_fail(&op, CLNET_ERR_SHAPE, "out: must be one float32 element (has %zu)",
                              out->numel);
    if (x->numel == 0)
        return clnet_tensor_fill(out, 0.0);
    cl_kernel k;
    if ((st = clnet__kernel(op.ctx, "reduce", NULL, "sum_partial", &k)))
        return st;
    size_t wg = clnet__context_profile(op.ctx)->wg_size;
    size_t groups = (x->numel + wg - 1) / wg;
    if (groups > MAX_GROUPS)
        groups = MAX_GROUPS;
    if (groups == 1)
        return sum_pass(&op, k, clnet__mem(x), x->offset, x->numel, clnet__mem(out), out->offset,
                        1);
    cl_mem partial;
    if ((st = clnet__workspace(op.ctx, groups * sizeof(float), &partial)) ||
        (st = sum_pass(&op, k, clnet__mem(x), x->offset, x->numel, partial, 0, groups)))
        return st;
    return sum_pass(&op, k, partial, 0, groups, clnet__mem(out), out->offset, 1);
}

CLNET_API clnet_status clnet_sum_host(const clnet_tensor *x, float *out)
{
    CLNET_CHECK_ARG(NULL, x != NULL);
    CLNET_CHECK_ARG(x->ctx, out != NULL);
    clnet_tensor *s;
    clnet_status st = clnet_tensor_create(x->ctx, CLNET_F32, 0, NULL, &s);
    if (st)
        return st;
    if (!(st = clnet_sum(x, s)))
        st = clnet_tensor_download(s, out, sizeof *out);
    clnet_tensor_destroy(s);
    return st;
}
