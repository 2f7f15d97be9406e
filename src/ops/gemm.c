/* clnet — GEMM through CLBlast: the public 2-D and batched calls, and
 * clnet__gemm on raw buffers for other ops. The only file that includes
 * CLBlast. */
#include <clblast_c.h>
#include <stdio.h>

#include "clnet/gemm.h"
#include "gemm.h"
#include "tensor/tensor_impl.h"

static const char *clblast_name(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return clnet__cl_error_name((cl_int)s);
    }
}

static clnet_status clblast_error(clnet_context *ctx, CLBlastStatusCode s, const char *call,
                                  const char *what)
{
    clnet_status st = s > -1000 ? clnet__cl_status((cl_int)s) : CLNET_ERR_OPENCL;
    return clnet__error(ctx, st, "%s: %s failed: %s (%d)", what, call, clblast_name(s), (int)s);
}

/* C = beta * C for k == 0, where CLBlast refuses the dimensions. */
static clnet_status scale_c(clnet_context *ctx, const clnet__gemm_desc *d, const char *what)
{
    size_t batch = d->batch ? d->batch : 1;
    if (d->ldc != d->n || (batch > 1 && d->stride_c != d->m * d->n))
        return clnet__error(ctx, CLNET_ERR_UNSUPPORTED, "%s: k == 0 needs a contiguous C", what);
    cl_kernel k;
    size_t count = batch * d->m * d->n;
    clnet_status st;
    if (d->beta == 0.0f) {
        if ((st = clnet__kernel(ctx, "tensor", NULL, "fill_f32", &k)))
            return st;
        clnet__arg a[] = { CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off), CLNET_ARG_ULONG(count),
                           CLNET_ARG_FLOAT(0.0f) };
        return clnet__launch1d(ctx, k, what, 4, a, count);
    }
    if ((st = clnet__kernel(ctx, "elementwise", NULL, "scale", &k)))
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off), CLNET_ARG_MEM(d->c),
                       CLNET_ARG_ULONG(d->c_off), CLNET_ARG_ULONG(count), CLNET_ARG_FLOAT(d->beta) };
    return clnet__launch1d(ctx, k, what, 6, a, count);
}

clnet_status clnet__gemm(clnet_context *ctx, const clnet__gemm_desc *d, const char *what)
{
    size_t batch = d->batch ? d->batch : 1;
    if (d->m == 0 || d->n == 0)
        return CLNET_OK;
    if (d->k == 0)
        return scale_c(ctx, d, what);
    cl_command_queue q = clnet_context_cl_queue(ctx);
    CLBlastTranspose ta = d->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = d->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode s;
    const char *call;
    if (batch == 1) {
        call = "CLBlastSgemm";
        s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, d->m, d->n, d->k, d->alpha, d->a, d->a_off,
                         d->lda, d->b, d->b_off, d->ldb, d->beta, d->c, d->c_off, d->ldc, &q, NULL);
    } else {
        call = "CLBlastSgemmStridedBatched";
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, d->m, d->n, d->k, d->alpha,
                                       d->a, d->a_off, d->lda, d->stride_a, d->b, d->b_off, d->ldb,
                                       d->stride_b, d->beta, d->c, d->c_off, d->ldc, d->stride_c,
                                       batch, &q, NULL);
    }
    if (s != CLBlastSuccess)
        return clblast_error(ctx, s, call, what);
    return CLNET_OK;
}

/* Fills the description from tensors of `dims` dimensions (2 or 3). */
static clnet_status describe(const char *func, int dims, clnet_trans trans_a, clnet_trans trans_b,
                             float alpha, const clnet_tensor *a, const clnet_tensor *b, float beta,
                             clnet_tensor *c, clnet__gemm_desc *d)
{
    CLNET_CHECK_ARG(NULL, c != NULL);
    clnet_context *ctx = c->ctx;
    const clnet_tensor *ts[] = { c, a, b };
    static const char *const names[] = { "c", "a", "b" };
    for (int i = 0; i < 3; i++) {
        if (!ts[i])
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s is NULL", func,
                                names[i]);
        if (ts[i]->ctx != ctx)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: %s belongs to another context",
                                func, names[i]);
        if (ts[i]->dtype != CLNET_F32 || ts[i]->ndim != dims)
            return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s must be a %d-D float32 tensor (is %d-D)",
                                func, names[i], dims, ts[i]->ndim);
    }
    int o = dims - 2; /* index of the row dimension */
    size_t ar = (size_t)a->shape[o], ac = (size_t)a->shape[o + 1];
    size_t br = (size_t)b->shape[o], bc = (size_t)b->shape[o + 1];
    size_t m = trans_a ? ac : ar, ka = trans_a ? ar : ac;
    size_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
    if (ka != kb || (size_t)c->shape[o] != m || (size_t)c->shape[o + 1] != n)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: op(a) is %zu x %zu, op(b) %zu x %zu, c %lld x %lld: need op(a) m x k, "
                            "op(b) k x n, c m x n",
                            func, m, ka, kb, n, (long long)c->shape[o], (long long)c->shape[o + 1]);
    size_t batch = dims == 3 ? (size_t)c->shape[0] : 1;
    if (dims == 3) {
        for (int i = 1; i < 3; i++)
            if (ts[i]->shape[0] != (int64_t)batch && ts[i]->shape[0] != 1)
                return clnet__error(ctx, CLNET_ERR_SHAPE,
                                    "%s: %s has batch %lld; c has %zu (a batch of 1 broadcasts)", func,
                                    names[i], (long long)ts[i]->shape[0], batch);
    }
    if (clnet__mem(c) && (clnet__mem(c) == clnet__mem(a) || clnet__mem(c) == clnet__mem(b))) {
        /* Same buffer: refuse only a real overlap of element ranges. */
        for (int i = 1; i < 3; i++)
            if (clnet__mem(ts[i]) == clnet__mem(c) && ts[i]->offset < c->offset + c->numel &&
                c->offset < ts[i]->offset + ts[i]->numel)
                return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: c overlaps %s", func, names[i]);
    }
    *d = (clnet__gemm_desc){
        .trans_a = trans_a != CLNET_NO_TRANS, .trans_b = trans_b != CLNET_NO_TRANS,
        .m = m, .n = n, .k = ka, .alpha = alpha, .beta = beta,
        .a = clnet__mem(a), .a_off = a->offset, .lda = ac, .stride_a = a->shape[0] == 1 && dims == 3 ? 0 : ar * ac,
        .b = clnet__mem(b), .b_off = b->offset, .ldb = bc, .stride_b = b->shape[0] == 1 && dims == 3 ? 0 : br * bc,
        .c = clnet__mem(c), .c_off = c->offset, .ldc = n, .stride_c = m * n,
        .batch = batch,
    };
    return CLNET_OK;
}

CLNET_API clnet_status clnet_gemm(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                  const clnet_tensor *a, const clnet_tensor *b, float beta,
                                  clnet_tensor *c)
{
    clnet__gemm_desc d;
    clnet_status st = describe("clnet_gemm", 2, trans_a, trans_b, alpha, a, b, beta, c, &d);
    return st ? st : clnet__gemm(c->ctx, &d, "clnet_gemm");
}

CLNET_API clnet_status clnet_gemm_batched(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                          const clnet_tensor *a, const clnet_tensor *b,
                                          float beta, clnet_tensor *c)
{
    clnet__gemm_desc d;
    clnet_status st = describe("clnet_gemm_batched", 3, trans_a, trans_b, alpha, a, b, beta, c, &d);
    if (st || d.batch == 0)
        return st;
    return clnet__gemm(c->ctx, &d, "clnet_gemm_batched");
}
