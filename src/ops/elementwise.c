/* clnet — elementwise arithmetic on float32 tensors (cl/elementwise.cl). */
#include "clnet/ops.h"
#include "tensor/tensor_impl.h"

static clnet_status binary(const char *kernel, const char *func, clnet_tensor *z,
                           const clnet_tensor *x, const clnet_tensor *y)
{
    CLNET_CHECK_ARG(NULL, z != NULL);
    const clnet_tensor *ts[] = { z, x, y };
    static const char *const names[] = { "z", "x", "y" };
    clnet_status st = clnet__check_same(z->ctx, func, 3, ts, names);
    if (st || z->numel == 0)
        return st;
    cl_kernel k;
    if ((st = clnet__kernel(z->ctx, "elementwise", NULL, kernel, &k)))
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(z)), CLNET_ARG_ULONG(z->offset),
                       CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                       CLNET_ARG_ULONG(z->numel) };
    return clnet__launch1d(z->ctx, k, func, 7, a, z->numel);
}

static clnet_status scaled(const char *kernel, const char *func, clnet_tensor *y,
                           const clnet_tensor *x, float alpha)
{
    CLNET_CHECK_ARG(NULL, y != NULL);
    const clnet_tensor *ts[] = { y, x };
    static const char *const names[] = { "y", "x" };
    clnet_status st = clnet__check_same(y->ctx, func, 2, ts, names);
    if (st || y->numel == 0)
        return st;
    cl_kernel k;
    if ((st = clnet__kernel(y->ctx, "elementwise", NULL, kernel, &k)))
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                       CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_ULONG(y->numel), CLNET_ARG_FLOAT(alpha) };
    return clnet__launch1d(y->ctx, k, func, 6, a, y->numel);
}

CLNET_API clnet_status clnet_add(clnet_tensor *z, const clnet_tensor *x, const clnet_tensor *y)
{
    return binary("add", "clnet_add", z, x, y);
}

CLNET_API clnet_status clnet_mul(clnet_tensor *z, const clnet_tensor *x, const clnet_tensor *y)
{
    return binary("mul", "clnet_mul", z, x, y);
}

CLNET_API clnet_status clnet_scale(clnet_tensor *y, const clnet_tensor *x, float alpha)
{
    return scaled("scale", "clnet_scale", y, x, alpha);
}

CLNET_API clnet_status clnet_axpy(clnet_tensor *y, float alpha, const clnet_tensor *x)
{
    return scaled("axpy", "clnet_axpy", y, x, alpha);
}
