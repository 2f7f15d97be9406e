/* clnet-bench — what the suites' check functions share: comparing float32
 * outputs with float64 references element by element, and moving doubles to
 * and from float32 tensors. Public API only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_check_begin(bench_check *out, const char *method)
{
    memset(out, 0, sizeof *out);
    snprintf(out->method, sizeof out->method, "%s", method);
    out->done = 1;
}

void bench_check_span(bench_check *out, const float *got, const double *ref, const double *bound,
                      size_t count)
{
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)got[i] - ref[i]), b = bound ? bound[i] : 0.0;
        if (isnan(err) || err > out->max_err)
            out->max_err = err;
        if (b > 0 && err / b > out->max_ratio)
            out->max_ratio = err / b;
        if (err <= b) /* NaN fails: the comparison is false */
            continue;
        if (!out->bad++) {
            out->first_bad = out->count + i;
            out->first_ref = ref[i];
            out->first_got = got[i];
        }
    }
    out->count += count;
}

void bench_check_end(bench_check *out)
{
    out->pass = out->bad == 0;
}

clnet_status bench_upload(clnet_tensor *t, const double *x, size_t count)
{
    float *f = malloc((count ? count : 1) * sizeof *f);
    if (!f)
        return CLNET_ERR_HOST_MEMORY;
    for (size_t i = 0; i < count; i++)
        f[i] = (float)x[i];
    clnet_status st = clnet_tensor_upload(t, f, count * sizeof *f);
    free(f);
    return st;
}

clnet_status bench_download(const clnet_tensor *t, float **out)
{
    size_t count = clnet_tensor_numel(t);
    *out = NULL;
    float *f = malloc((count ? count : 1) * sizeof *f);
    if (!f)
        return CLNET_ERR_HOST_MEMORY;
    clnet_status st = clnet_tensor_download(t, f, count * sizeof *f);
    if (st) {
        free(f);
        return st;
    }
    *out = f;
    return CLNET_OK;
}

void bench_round_to_float(double *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        x[i] = (float)x[i];
}

clnet_status bench_tensor_nan(clnet_context *ctx, int ndim, const int64_t *shape,
                              clnet_tensor **out)
{
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, ndim, shape, out);
    if (!st && (st = clnet_tensor_fill(*out, NAN))) {
        clnet_tensor_destroy(*out);
        *out = NULL;
    }
    return st;
}

clnet_status bench_tensor_from(clnet_context *ctx, int ndim, const int64_t *shape, const double *x,
                               clnet_tensor **out)
{
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, ndim, shape, out);
    if (!st && (st = bench_upload(*out, x, clnet_tensor_numel(*out)))) {
        clnet_tensor_destroy(*out);
        *out = NULL;
    }
    return st;
}
