/* clnet — elementwise arithmetic on float32 tensors (cl/elementwise.cl). */
#include "clnet/ops.h"
#include "ops/op.h"

/* z = x op y: one size; z may be x or y. */
static const clnet__tspec binary_spec[] = {
    { .name = "z", .flags = CLNET_T_OUT, .alias = CLNET_ALIAS(1) | CLNET_ALIAS(2) },
    { .name = "x", .size_of = CLNET_SIZE_OF(0) },
    { .name = "y", .size_of = CLNET_SIZE_OF(0) },
};

/* y = f(alpha, x[, y]): one size; y may be x. */
static const clnet__tspec scaled_spec[] = {
    { .name = "y", .flags = CLNET_T_OUT, .alias = CLNET_ALIAS(1) },
    { .name = "x", .size_of = CLNET_SIZE_OF(0) },
};

static clnet_status binary(const char *kernel, const char *func, clnet_tensor *z,
                           const clnet_tensor *x, const clnet_tensor *y)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, func, binary_spec, z, x, y);
    return st ? st
              : CLNET_RUN1D(op.ctx, func, "elementwise", kernel, z->numel, CLNET_ARG_TENSOR(z),
                            CLNET_ARG_TENSOR(x), CLNET_ARG_TENSOR(y), CLNET_ARG_ULONG(z->numel));
}

static clnet_status scaled(const char *kernel, const char *func, clnet_tensor *y,
                           const clnet_tensor *x, float alpha)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, func, scaled_spec, y, x);
    return st ? st
              : CLNET_RUN1D(op.ctx, func, "elementwise", kernel, y->numel, CLNET_ARG_TENSOR(y),
                            CLNET_ARG_TENSOR(x), CLNET_ARG_ULONG(y->numel), CLNET_ARG_FLOAT(alpha));
}

CLNET_API clnet_status clnet_add(const clnet_tensor *x, const clnet_tensor *y, clnet_tensor *z)
{
    return binary("add", "clnet_add", z, x, y);
}

CLNET_API clnet_status clnet_mul(const clnet_tensor *x, const clnet_tensor *y, clnet_tensor *z)
{
    return binary("mul", "clnet_mul", z, x, y);
}

CLNET_API clnet_status clnet_scale(float alpha, const clnet_tensor *x, clnet_tensor *y)
{
    return scaled("scale", "clnet_scale", y, x, alpha);
}

CLNET_API clnet_status clnet_axpy(float alpha, const clnet_tensor *x, clnet_tensor *y)
{
    return scaled("axpy", "clnet_axpy", y, x, alpha);
}
