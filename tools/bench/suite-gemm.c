/* clnet-bench suite "gemm": C = A * B (row-major, no transposes, beta 0)
 * through clnet_gemm, square and at the reference models' shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ref.h"

typedef struct gemm_shape {
    int m, n, k;
    int quick;
    const char *about;
} gemm_shape;

/* Names: gemm_nN for square, gemm_mMnNkK otherwise (docs/bench.md). */
static const gemm_shape shapes[] = {
    { 512, 512, 512, 1, "square" },
    { 1024, 1024, 1024, 0, "square" },
    { 2048, 2048, 2048, 0, "square" },
    { 32, 64, 1600, 1, "CNN dense 1600->64, batch 32" },
    { 32, 676, 9, 1, "CNN conv1 1->32 3x3 on 28x28 as GEMM (one image)" },
    { 64, 121, 288, 1, "CNN conv2 32->64 3x3 on 13x13 as GEMM (one image)" },
    { 32, 256, 28, 1, "LSTM(64) input projection, 28 features, batch 32" },
    { 32, 256, 64, 1, "LSTM(64) recurrent / stacked projection, batch 32" },
};

static int gemm_list(int quick, bench_case *out, int max)
{
    int count = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && count < max; i++) {
        const gemm_shape *s = &shapes[i];
        if (quick && !s->quick)
            continue;
        bench_case *c = &out[count++];
        memset(c, 0, sizeof *c);
        if (s->m == s->n && s->n == s->k)
            snprintf(c->name, sizeof c->name, "gemm_n%d", s->n);
        else
            snprintf(c->name, sizeof c->name, "gemm_m%dn%dk%d", s->m, s->n, s->k);
        c->about = s->about;
        c->quick = s->quick;
        double m = s->m, n = s->n, k = s->k;
        c->flops = 2.0 * m * n * k;
        c->bytes = 4.0 * (m * k + k * n + m * n); /* A and B read, C written once */
        c->p[0] = s->m;
        c->p[1] = s->n;
        c->p[2] = s->k;
    }
    return count;
}

typedef struct gemm_state {
    clnet_context *ctx;
    int m, n, k;
    clnet_tensor *a, *b, *c;
} gemm_state;

/* Exact mode (tests/ref.h): integers small enough that every partial sum of
 * a row-by-column product stays below 2^24, so any summation order gives the
 * exact answer and the check needs no tolerance. */
static int int_limit(int k)
{
    int lim = 8;
    while (lim > 1 && (double)lim * lim * k >= 16777216.0)
        lim--;
    return lim;
}

/* The inputs of a case, the same on every device: A (m x k), then B (k x n). */
static double *make_inputs(int m, int n, int k)
{
    size_t na = (size_t)m * (size_t)k, nb = (size_t)k * (size_t)n;
    double *x = malloc((na + nb) * sizeof *x);
    if (!x)
        return NULL;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)m << 40) ^ ((uint64_t)n << 20) ^ (uint64_t)k;
    int lim = int_limit(k);
    ref_fill_int(x, na + nb, -lim, lim, &rng);
    return x;
}

static clnet_status upload_doubles(clnet_tensor *t, const double *x, size_t count)
{
    float *f = malloc(count * sizeof *f);
    if (!f)
        return CLNET_ERR_HOST_MEMORY;
    for (size_t i = 0; i < count; i++)
        f[i] = (float)x[i];
    clnet_status st = clnet_tensor_upload(t, f, count * sizeof *f);
    free(f);
    return st;
}

static void gemm_teardown(void *state)
{
    gemm_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->c);
    clnet_tensor_destroy(s->b);
    clnet_tensor_destroy(s->a);
    free(s);
}

static clnet_status gemm_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    gemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    s->ctx = ctx;
    s->m = (int)c->p[0];
    s->n = (int)c->p[1];
    s->k = (int)c->p[2];
    double *x = make_inputs(s->m, s->n, s->k);
    clnet_status st = x ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ s->m, s->k }, &s->a);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ s->k, s->n }, &s->b);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ s->m, s->n }, &s->c);
    if (!st)
        st = upload_doubles(s->a, x, (size_t)s->m * (size_t)s->k);
    if (!st)
        st = upload_doubles(s->b, x + (size_t)s->m * (size_t)s->k, (size_t)s->k * (size_t)s->n);
    if (!st) /* a NaN in C would show if the op ever read it with beta 0 */
        st = clnet_tensor_fill(s->c, NAN);
    free(x);
    if (st) {
        gemm_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status gemm_run(void *state)
{
    gemm_state *s = state;
    return clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, s->a, s->b, 0.0f, s->c);
}

/* The float64 reference C, computed once per case. B is passed transposed
 * (the same product) so that the reference's inner loop reads memory in
 * order: the untransposed loop is several times slower at n = 2048. */
static double *reference(int m, int n, int k)
{
    double *x = make_inputs(m, n, k);
    double *bt = malloc((size_t)k * (size_t)n * sizeof *bt);
    double *c = malloc((size_t)m * (size_t)n * sizeof *c);
    if (!x || !bt || !c) {
        free(x);
        free(bt);
        free(c);
        return NULL;
    }
    const double *b = x + (size_t)m * (size_t)k;
    for (size_t p = 0; p < (size_t)k; p++)
        for (size_t j = 0; j < (size_t)n; j++)
            bt[j * (size_t)k + p] = b[p * (size_t)n + j];
    ref_gemm g = { .trans_a = 0,
                   .trans_b = 1,
                   .m = m,
                   .n = n,
                   .k = k,
                   .lda = k,
                   .ldb = k,
                   .ldc = n,
                   .alpha = 1.0,
                   .beta = 0.0 };
    ref_gemm_forward(&g, x, bt, c);
    free(bt);
    free(x);
    return c;
}

static clnet_status gemm_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                               bench_check *out)
{
    (void)c;
    gemm_state *s = state;
    size_t count = (size_t)s->m * (size_t)s->n;
    if (!*ref_cache && !(*ref_cache = reference(s->m, s->n, s->k)))
        return CLNET_ERR_HOST_MEMORY;
    const double *ref = *ref_cache;
    float *got = malloc(count * sizeof *got);
    if (!got)
        return CLNET_ERR_HOST_MEMORY;
    clnet_status st = clnet_tensor_download(s->c, got, count * sizeof *got);
    if (st) {
        free(got);
        return st;
    }
    if (inject_fault)
        got[count / 2] += 1.0f;
    memset(out, 0, sizeof *out);
    snprintf(out->method, sizeof out->method, "exact (integers in [-%d, %d], tolerance 0)",
             int_limit(s->k), int_limit(s->k));
    out->done = 1;
    out->count = count;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)got[i] - ref[i]);
        if (!(err <= 0.0)) { /* NaN counts as wrong */
            if (!out->bad++) {
                out->first_bad = i;
                out->first_ref = ref[i];
                out->first_got = got[i];
            }
            out->max_err = isnan(err) || err > out->max_err ? err : out->max_err;
        }
    }
    out->pass = out->bad == 0;
    free(got);
    return CLNET_OK;
}

const bench_suite bench_suite_gemm = {
    .name = "gemm",
    .about = "C = A * B, float32, row-major, through clnet_gemm",
    .list = gemm_list,
    .setup = gemm_setup,
    .run = gemm_run,
    .check = gemm_check,
    .teardown = gemm_teardown,
};
