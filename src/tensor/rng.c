/* clnet — Philox4x32-10 random fills on the device (cl/rng.cl). */
#include "tensor_impl.h"

static clnet_status rand_fill(clnet_tensor *t, const char *kernel, const char *func, uint64_t seed,
                              uint64_t stream, float a, float b)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    if (t->dtype != CLNET_F32)
        return clnet__error(t->ctx, CLNET_ERR_SHAPE, "%s: the tensor must be float32", func);
    if (t->numel == 0)
        return CLNET_OK;
    cl_kernel k;
    clnet_status st = clnet__kernel(t->ctx, "rng", NULL, kernel, &k);
    if (st)
        return st;
    return clnet__launch1d(t->ctx, k, func,
                           CLNET_ARGS(CLNET_ARG_TENSOR(t), CLNET_ARG_ULONG(t->numel),
                                      CLNET_ARG_UINT(seed), CLNET_ARG_UINT(seed >> 32),
                                      CLNET_ARG_UINT(stream), CLNET_ARG_UINT(stream >> 32),
                                      CLNET_ARG_FLOAT(a), CLNET_ARG_FLOAT(b)),
                           (t->numel + 3) / 4);
}

CLNET_API clnet_status clnet_tensor_rand_uniform(clnet_tensor *t, uint64_t seed, uint64_t stream,
                                                 float lo, float hi)
{
    if (t && !(lo <= hi))
        return clnet__error(t->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_tensor_rand_uniform: lo (%g) must not exceed hi (%g)", lo, hi);
    return rand_fill(t, "rand_uniform", "clnet_tensor_rand_uniform", seed, stream, lo, hi);
}

CLNET_API clnet_status clnet_tensor_rand_normal(clnet_tensor *t, uint64_t seed, uint64_t stream,
                                                float mean, float stddev)
{
    if (t && !(stddev >= 0.0f))
        return clnet__error(t->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_tensor_rand_normal: stddev (%g) must be >= 0", stddev);
    return rand_fill(t, "rand_normal", "clnet_tensor_rand_normal", seed, stream, mean, stddev);
}
