/* clnet — tensors: creation, views, host transfers, fill and copy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor_impl.h"

CLNET_API size_t clnet_dtype_size(clnet_dtype dtype)
{
    switch (dtype) {
    case CLNET_F32:
    case CLNET_I32:
        return 4;
    }
    return 0;
}

/* numel of a shape, or CLNET_ERR_INVALID_ARG / CLNET_ERR_TOO_LARGE. */
static clnet_status shape_numel(clnet_context *ctx, const char *func, int ndim,
                                const int64_t *shape, size_t elsize, size_t *numel)
{
    if (ndim < 0 || ndim > CLNET_MAX_DIMS)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: ndim %d outside 0..%d", func, ndim,
                            CLNET_MAX_DIMS);
    if (ndim > 0 && !shape)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: shape != NULL",
                            func);
    size_t n = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: dim %d is negative (%lld)", func,
                                i, (long long)shape[i]);
        if (shape[i] == 0)
            n = 0;
        else if (n > SIZE_MAX / elsize / (uint64_t)shape[i])
            overflow = 1;
        else
            n *= (size_t)shape[i];
    }
    if (overflow && n != 0)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE, "%s: the shape's size overflows", func);
    *numel = n;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_tensor_create(clnet_context *ctx, clnet_dtype dtype, int ndim,
                                           const int64_t *shape, clnet_tensor **out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    *out = NULL;
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    size_t elsize = clnet_dtype_size(dtype), numel = 0;
    if (!elsize)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "clnet_tensor_create: unknown dtype %d",
                            (int)dtype);
    clnet_status st = shape_numel(ctx, "clnet_tensor_create", ndim, shape, elsize, &numel);
    if (st)
        return st;
    const clnet__profile *prof = clnet__context_profile(ctx);
    if (numel > prof->info.max_alloc_bytes / elsize)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "clnet_tensor_create: %zu elements (%zu bytes) exceed the maximum "
                            "allocation of %llu bytes on \"%s\"",
                            numel, numel * elsize, (unsigned long long)prof->info.max_alloc_bytes,
                            prof->info.name);
    clnet_tensor *t = clnet__calloc(1, sizeof *t);
    if (!t)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "clnet_tensor_create: out of host memory");
    t->ctx = ctx;
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = numel;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    if (numel > 0) {
        if (!(t->storage = clnet__calloc(1, sizeof *t->storage))) {
            clnet__free(t);
            return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                                "clnet_tensor_create: out of host memory");
        }
        t->storage->refs = 1;
        t->storage->bytes = numel * elsize;
        if ((st = clnet__buffer_create(ctx, t->storage->bytes, &t->storage->mem))) {
            clnet__free(t->storage);
            clnet__free(t);
            return st;
        }
    }
    *out = t;
    return CLNET_OK;
}

CLNET_API void clnet_tensor_destroy(clnet_tensor *t)
{
    if (!t)
        return;
    if (t->storage && --t->storage->refs == 0) {
        clnet__buffer_release(t->ctx, t->storage->mem, t->storage->bytes);
        clnet__free(t->storage);
    }
    clnet__free(t);
}

CLNET_API clnet_context *clnet_tensor_context(const clnet_tensor *t)
{
    return t ? t->ctx : NULL;
}
CLNET_API clnet_dtype clnet_tensor_dtype(const clnet_tensor *t)
{
    return t ? t->dtype : CLNET_F32;
}
CLNET_API int clnet_tensor_ndim(const clnet_tensor *t)
{
    return t ? t->ndim : 0;
}
CLNET_API size_t clnet_tensor_numel(const clnet_tensor *t)
{
    return t ? t->numel : 0;
}
CLNET_API size_t clnet_tensor_offset(const clnet_tensor *t)
{
    return t ? t->offset : 0;
}

CLNET_API int64_t clnet_tensor_dim(const clnet_tensor *t, int i)
{
    if (!t)
        return 0;
    if (i < 0)
        i += t->ndim;
    return i >= 0 && i < t->ndim ? t->shape[i] : 0;
}

CLNET_API int clnet_tensor_shape(const clnet_tensor *t, int64_t shape[CLNET_MAX_DIMS])
{
    if (!t || !shape)
        return 0;
    for (int i = 0; i < t->ndim; i++)
        shape[i] = t->shape[i];
    return t->ndim;
}

CLNET_API cl_mem clnet_tensor_cl_mem(const clnet_tensor *t)
{
    return t ? clnet__mem(t) : NULL;
}

static clnet_status check_bytes(const clnet_tensor *t, const char *func, size_t bytes)
{
    size_t want = t->numel * clnet_dtype_size(t->dtype);
    if (bytes != want)
        return clnet__error(t->ctx, CLNET_ERR_SHAPE,
                            "%s: %zu bytes given for a tensor of %zu elements (%zu bytes)", func,
                            bytes, t->numel, want);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_tensor_upload(clnet_tensor *t, const void *src, size_t bytes)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    CLNET_CHECK_ARG(t->ctx, src != NULL || bytes == 0);
    clnet_status st = check_bytes(t, "clnet_tensor_upload", bytes);
    if (st || bytes == 0)
        return st;
    return clnet__buffer_write(t->ctx, clnet__mem(t), t->offset * clnet_dtype_size(t->dtype), bytes,
                               src);
}

CLNET_API clnet_status clnet_tensor_download(const clnet_tensor *t, void *dst, size_t bytes)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    CLNET_CHECK_ARG(t->ctx, dst != NULL || bytes == 0);
    clnet_status st = check_bytes(t, "clnet_tensor_download", bytes);
    if (st || bytes == 0)
        return st;
    return clnet__buffer_read(t->ctx, clnet__mem(t), t->offset * clnet_dtype_size(t->dtype), bytes,
                              dst);
}

/* [offset, offset + count) inside t's elements, without overflow. */
static clnet_status check_range(const clnet_tensor *t, const char *func, size_t offset,
                                size_t count)
{
    if (offset > t->numel || count > t->numel - offset)
        return clnet__error(t->ctx, CLNET_ERR_SHAPE,
                            "%s: elements [%zu, %zu + %zu) lie outside the tensor's %zu elements",
                            func, offset, offset, count, t->numel);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_tensor_upload_range(clnet_tensor *t, size_t offset, size_t count,
                                                 const void *src)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    CLNET_CHECK_ARG(t->ctx, src != NULL || count == 0);
    clnet_status st = check_range(t, "clnet_tensor_upload_range", offset, count);
    if (st || count == 0)
        return st;
    size_t es = clnet_dtype_size(t->dtype);
    return clnet__buffer_write(t->ctx, clnet__mem(t), (t->offset + offset) * es, count * es, src);
}

CLNET_API clnet_status clnet_tensor_download_range(const clnet_tensor *t, size_t offset,
                                                   size_t count, void *dst)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    CLNET_CHECK_ARG(t->ctx, dst != NULL || count == 0);
    clnet_status st = check_range(t, "clnet_tensor_download_range", offset, count);
    if (st || count == 0)
        return st;
    size_t es = clnet_dtype_size(t->dtype);
    return clnet__buffer_read(t->ctx, clnet__mem(t), (t->offset + offset) * es, count * es, dst);
}

static clnet_status make_view(const clnet_tensor *t, size_t offset, size_t numel, int ndim,
                              const int64_t *shape, clnet_tensor **out)
{
    clnet_tensor *v = clnet__calloc(1, sizeof *v);
    if (!v)
        return clnet__error(t->ctx, CLNET_ERR_HOST_MEMORY, "tensor view: out of host memory");
    *v = *t;
    v->offset = offset;
    v->numel = numel;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        v->shape[i] = shape[i];
    /* An empty view holds no storage, like an empty tensor. */
    if (numel == 0)
        v->storage = NULL;
    else
        v->storage->refs++;
    *out = v;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_tensor_reshape(const clnet_tensor *t, int ndim, const int64_t *shape,
                                            clnet_tensor **out)
{
    CLNET_CHECK_ARG(NULL, out != NULL);
    *out = NULL;
    CLNET_CHECK_ARG(NULL, t != NULL);
    CLNET_CHECK_ARG(t->ctx, ndim >= 0 && ndim <= CLNET_MAX_DIMS);
    CLNET_CHECK_ARG(t->ctx, shape != NULL || ndim == 0);
    int64_t dims[CLNET_MAX_DIMS];
    int infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (shape[i] < 0)
            return clnet__error(t->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_tensor_reshape: dim %d is %lld (only one -1 is allowed)", i,
                                (long long)shape[i]);
        if (shape[i] > 0 && known > SIZE_MAX / (uint64_t)shape[i])
            return clnet__error(t->ctx, CLNET_ERR_SHAPE, "clnet_tensor_reshape: shape overflows");
        known *= (size_t)shape[i];
    }
    if (infer >= 0) {
        if (known == 0 || t->numel % known)
            return clnet__error(t->ctx, CLNET_ERR_SHAPE,
                                "clnet_tensor_reshape: cannot infer dim %d: %zu elements are not a "
                                "multiple of %zu",
                                infer, t->numel, known);
        dims[infer] = (int64_t)(t->numel / known);
        known = t->numel;
    }
    if (known != t->numel)
        return clnet__error(
            t->ctx, CLNET_ERR_SHAPE,
            "clnet_tensor_reshape: the new shape holds %zu elements, the tensor %zu", known,
            t->numel);
    return make_view(t, t->offset, t->numel, ndim, dims, out);
}

CLNET_API clnet_status clnet_tensor_slice(const clnet_tensor *t, int64_t start, int64_t count,
                                          clnet_tensor **out)
{
    CLNET_CHECK_ARG(NULL, out != NULL);
    *out = NULL;
    CLNET_CHECK_ARG(NULL, t != NULL);
    if (t->ndim < 1)
        return clnet__error(t->ctx, CLNET_ERR_SHAPE,
                            "clnet_tensor_slice: a 0-d tensor has no rows");
    if (start < 0 || count < 0 || start > t->shape[0] || count > t->shape[0] - start)
        return clnet__error(t->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_tensor_slice: %lld rows from row %lld: outside [0, %lld)",
                            (long long)count, (long long)start, (long long)t->shape[0]);
    size_t row = t->shape[0] ? t->numel / (size_t)t->shape[0] : 0;
    int64_t dims[CLNET_MAX_DIMS];
    memcpy(dims, t->shape, sizeof dims);
    dims[0] = count;
    return make_view(t, t->offset + (size_t)start * row, (size_t)count * row, t->ndim, dims, out);
}

CLNET_API clnet_status clnet_tensor_fill(clnet_tensor *t, double value)
{
    CLNET_CHECK_ARG(NULL, t != NULL);
    if (t->numel == 0)
        return CLNET_OK;
    cl_kernel k;
    clnet_status st;
    if (t->dtype == CLNET_I32) {
        if (!(value >= -2147483648.0 && value <= 2147483647.0) || value != floor(value))
            return clnet__error(t->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_tensor_fill: %g is not an int32 value", value);
        if ((st = clnet__kernel(t->ctx, "tensor", NULL, "fill_i32", &k)))
            return st;
        return clnet__launch1d(
            t->ctx, k, "clnet_tensor_fill",
            CLNET_ARGS(CLNET_ARG_TENSOR(t), CLNET_ARG_ULONG(t->numel), CLNET_ARG_INT((int)value)),
            t->numel);
    }
    if ((st = clnet__kernel(t->ctx, "tensor", NULL, "fill_f32", &k)))
        return st;
    return clnet__launch1d(
        t->ctx, k, "clnet_tensor_fill",
        CLNET_ARGS(CLNET_ARG_TENSOR(t), CLNET_ARG_ULONG(t->numel), CLNET_ARG_FLOAT((float)value)),
        t->numel);
}

CLNET_API clnet_status clnet_tensor_copy(const clnet_tensor *src, clnet_tensor *dst)
{
    CLNET_CHECK_ARG(NULL, dst != NULL);
    CLNET_CHECK_ARG(dst->ctx, src != NULL);
    CLNET_CHECK_ARG(dst->ctx, src->ctx == dst->ctx);
    if (src->dtype != dst->dtype || src->numel != dst->numel)
        return clnet__error(
            dst->ctx, CLNET_ERR_SHAPE,
            "clnet_tensor_copy: dst holds %zu elements of dtype %d, src %zu of dtype %d",
            dst->numel, (int)dst->dtype, src->numel, (int)src->dtype);
    if (dst->numel == 0)
        return CLNET_OK;
    cl_kernel k;
    clnet_status st = clnet__kernel(dst->ctx, "tensor", NULL, "copy_32", &k);
    if (st)
        return st;
    return clnet__launch1d(
        dst->ctx, k, "clnet_tensor_copy",
        CLNET_ARGS(CLNET_ARG_TENSOR(dst), CLNET_ARG_TENSOR(src), CLNET_ARG_ULONG(dst->numel)),
        dst->numel);
}

CLNET_API clnet_status clnet_tensor_gather_rows(const clnet_tensor *src,
                                                const clnet_tensor *indices, clnet_tensor *dst)
{
    CLNET_CHECK_ARG(NULL, dst != NULL);
    clnet_context *ctx = dst->ctx;
    CLNET_CHECK_ARG(ctx, src != NULL && indices != NULL);
    CLNET_CHECK_ARG(ctx, src->ctx == ctx && indices->ctx == ctx);
    if (dst->ndim < 1 || src->ndim < 1 || src->dtype != dst->dtype || indices->dtype != CLNET_I32)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "clnet_tensor_gather_rows: dst and src need a row dimension and one "
                            "dtype, indices int32");
    size_t rows = (size_t)dst->shape[0];
    size_t row = rows ? dst->numel / rows : 0;
    size_t src_rows = (size_t)src->shape[0];
    size_t src_row = src_rows ? src->numel / src_rows : 0;
    if (indices->numel != rows || (rows && src_rows && row != src_row))
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "clnet_tensor_gather_rows: %zu rows of %zu from rows of %zu with %zu "
                            "indices",
                            rows, row, src_row, indices->numel);
    if (dst->numel == 0)
        return CLNET_OK;
    if (src->numel == 0)
        return clnet_tensor_fill(dst, 0.0);
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "tensor", NULL, "gather_rows_32", &k);
    if (st)
        return st;
    return clnet__launch1d(ctx, k, "clnet_tensor_gather_rows",
                           CLNET_ARGS(CLNET_ARG_TENSOR(dst), CLNET_ARG_TENSOR(src),
                                      CLNET_ARG_TENSOR(indices), CLNET_ARG_ULONG(rows),
                                      CLNET_ARG_ULONG(row), CLNET_ARG_ULONG(src_rows)),
                           dst->numel);
}

const char *clnet__shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    if (!size)
        return buf;
    buf[0] = 0;
    for (int i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "(%lld", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, ndim ? ")" : "()");
    return buf;
}

int clnet__same_shape(const clnet_tensor *a, const clnet_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

clnet_context *clnet__first_ctx(int count, const clnet_tensor *const *ts)
{
    for (int i = 0; i < count; i++)
        if (ts[i])
            return ts[i]->ctx;
    return NULL;
}

int clnet__overlaps(const clnet_tensor *a, const clnet_tensor *b)
{
    return a && b && a->storage && a->storage == b->storage && a->offset < b->offset + b->numel &&
           b->offset < a->offset + a->numel;
}
