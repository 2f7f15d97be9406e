/* clnet-bench — what the whole-model suites (cnn, lstm, gan) share for their
 * checks: labels from a fixed seed, the model's parameters read back through
 * clnet_model_save as float64 copies, and an inference forward on the first
 * rows of the input. Public API only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "ref.h"

clnet_status bench_upload_labels(clnet_tensor *t, int batch, uint64_t seed)
{
    int32_t *y = malloc((size_t)(batch ? batch : 1) * sizeof *y);
    if (!y)
        return CLNET_ERR_HOST_MEMORY;
    uint64_t rng = seed + (uint64_t)batch;
    for (int i = 0; i < batch; i++)
        y[i] = (int32_t)(ref_rng_next(&rng) % 10);
    clnet_status st = clnet_tensor_upload(t, y, (size_t)batch * sizeof *y);
    free(y);
    return st;
}

void bench_weights_free(bench_weights *w)
{
    for (int i = 0; i < w->n; i++) {
        free(w->p[i]);
        free(w->abs[i]);
    }
    w->n = 0;
}

/* Copies the parameters out of a parsed file, checking names and shapes. */
static clnet_status weights_from(const clnet_safetensors *st, const char *suite,
                                 const bench_param *d, int n, bench_weights *w)
{
    memset(w, 0, sizeof *w);
    if (n > BENCH_MAX_PARAMS)
        return CLNET_ERR_INVALID_ARG;
    w->n = n;
    for (int i = 0; i < n; i++) {
        const clnet_safetensors_entry *e = clnet_safetensors_find(st, d[i].name);
        size_t numel = 1;
        for (int k = 0; k < d[i].ndim; k++)
            numel *= (size_t)d[i].shape[k];
        if (!e || strcmp(e->dtype, "F32") || e->ndim != d[i].ndim || e->numel != numel ||
            memcmp(e->shape, d[i].shape, (size_t)e->ndim * sizeof e->shape[0])) {
            fprintf(stderr, "clnet-bench: %s check: %s missing or not the expected shape\n", suite,
                    d[i].name);
            bench_weights_free(w);
            return CLNET_ERR_FORMAT;
        }
        w->p[i] = malloc(numel * sizeof *w->p[i]);
        w->abs[i] = malloc(numel * sizeof *w->abs[i]);
        if (!w->p[i] || !w->abs[i]) {
            bench_weights_free(w);
            return CLNET_ERR_HOST_MEMORY;
        }
        for (size_t k = 0; k < numel; k++) {
            float f;
            memcpy(&f, (const char *)e->data + 4 * k, sizeof f); /* may be unaligned */
            w->p[i][k] = f;
            w->abs[i][k] = fabs((double)f);
        }
    }
    return CLNET_OK;
}

clnet_status bench_weights_load(clnet_model *m, const char *suite, const bench_param *d, int n,
                                bench_weights *w)
{
    char dir[] = "/tmp/clnet-bench-check-XXXXXX", path[64];
    memset(w, 0, sizeof *w);
    if (!mkdtemp(dir))
        return CLNET_ERR_IO;
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    clnet_safetensors *st = NULL;
    char err[256];
    clnet_status rc = clnet_model_save(m, path);
    if (!rc && (rc = clnet_safetensors_load(path, &st, err, sizeof err)))
        fprintf(stderr, "clnet-bench: %s check: %s\n", suite, err);
    if (!rc)
        rc = weights_from(st, suite, d, n, w);
    clnet_safetensors_free(st);
    unlink(path);
    rmdir(dir);
    return rc;
}

clnet_status bench_model_logits(clnet_model *m, const clnet_tensor *x, int rows, float **logits,
                                float **x_rows)
{
    clnet_tensor *xr = NULL;
    const clnet_tensor *y = NULL, *lg = NULL;
    *logits = *x_rows = NULL;
    clnet_status st = clnet_tensor_slice(x, 0, rows, &xr);
    if (!st)
        st = clnet_model_forward(m, xr, 0, &y, &lg);
    if (!st)
        st = bench_download(lg, logits);
    if (!st)
        st = bench_download(xr, x_rows);
    clnet_tensor_destroy(xr);
    return st;
}
