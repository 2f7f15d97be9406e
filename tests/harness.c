/* clnet tests — the shared harness (see harness.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Set in the runner's process by an unchecked fixture, before Check forks
 * the test: each test inherits it. */
static int strict_errors, strict_default;
static int errors_expected;

void strict_by_default(void)
{
    strict_default = strict_errors = 1;
}

void fail_on_unexpected_errors(void)
{
    strict_errors = 1;
}

void allow_unexpected_errors(void)
{
    strict_errors = strict_default;
}

int expect_errors(int on)
{
    int prev = errors_expected;
    errors_expected = on;
    return prev;
}

int unexpected_error(clnet_status status)
{
    return status != CLNET_OK && strict_errors && !errors_expected;
}

static void test_log(void *user, clnet_status status, const char *message)
{
    (void)user;
    if (unexpected_error(status))
        ck_abort_msg("unexpected clnet error %s: %s", clnet_status_name(status), message);
}

clnet_context *test_context(void)
{
    char err[4096];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    p.log = test_log;
    clnet_context *ctx = NULL;
    clnet_status st = clnet_context_create(&p, &ctx, err, sizeof err);
    ck_assert_msg(st == CLNET_OK, "clnet_context_create: %s: %s", clnet_status_name(st), err);
    return ctx;
}

float sentinel(void)
{
    uint32_t b = SENTINEL_BITS;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

int is_sentinel(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b == SENTINEL_BITS;
}

size_t compare_f32(const char *label, const float *got, const double *ref, size_t n, tolerance tol)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        int ok;
        if (!isfinite(r))
            ok = 0; /* the reference itself is broken */
        else if (!isfinite(g))
            ok = 0;
        else if (tol.bitwise)
            ok = got[i] == (float)r;
        else
            ok = g == r || (float)r == got[i] || fabs(g - r) <= tol.abs ||
                 fabs(g - r) <= tol.rel * fabs(r);
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (tolerance abs %g rel %g%s: %s)\n",
                    label, i, r, g, tol.abs, tol.rel, tol.bitwise ? ", bitwise" : "",
                    tol.why ? tol.why : "");
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements mismatch\n", label, bad, n);
    return bad;
}

size_t compare_bounds(const char *label, const float *got, const double *ref, const double *bound,
                      size_t n)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        int ok =
            isfinite(ref[i]) && isfinite(got[i]) && (got[i] == (float)ref[i] || err <= bound[i]);
        if (bound[i] > 0 && err / bound[i] > worst)
            worst = err / bound[i];
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (bound %.3g)\n", label, i, ref[i],
                    (double)got[i], bound[i]);
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements out of bounds\n", label, bad, n);
    if (test_verbose())
        fprintf(stderr, "%s: worst error / bound %.3g over %zu elements\n", label, worst, n);
    return bad;
}

float *host_f32(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *host_f64(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *widen_f64(const float *x, size_t n)
{
    double *d = host_f64(n);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

int test_verbose(void)
{
    const char *e = getenv("CLNET_TEST_VERBOSE");
    return e && *e && strcmp(e, "0") != 0;
}

double rel_error(const float *got, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

void guarded_create(clnet_context *ctx, int ndim, const int64_t *shape, guarded *g)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    g->numel = numel;
    g->margin = 67; /* odd, so a misaligned write shows */
    int64_t total = (int64_t)(numel + 2 * g->margin);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &total, &g->base));
    CK_OK(ctx, clnet_tensor_fill(g->base, (double)sentinel()));
    clnet_tensor *row;
    CK_OK(ctx, clnet_tensor_slice(g->base, (int64_t)g->margin, (int64_t)numel, &row));
    CK_OK(ctx, clnet_tensor_reshape(row, ndim, shape, &g->view));
    clnet_tensor_destroy(row);
}

void guard_count(clnet_context *ctx, const guarded *g, size_t *margin_bad, size_t *unwritten)
{
    size_t total = g->numel + 2 * g->margin;
    float *all = malloc(total * sizeof *all);
    ck_assert_ptr_nonnull(all);
    CK_OK(ctx, clnet_tensor_download(g->base, all, total * sizeof *all));
    *margin_bad = *unwritten = 0;
    for (size_t i = 0; i < total; i++) {
        int in_body = i >= g->margin && i < g->margin + g->numel;
        if (!in_body && !is_sentinel(all[i]))
            (*margin_bad)++;
        if (in_body && is_sentinel(all[i]))
            (*unwritten)++;
    }
    free(all);
}

void guard_check(clnet_context *ctx, const guarded *g, const char *label)
{
    size_t margin_bad, unwritten;
    guard_count(ctx, g, &margin_bad, &unwritten);
    ck_assert_msg(margin_bad == 0, "%s: %zu guard elements were overwritten", label, margin_bad);
    ck_assert_msg(unwritten == 0, "%s: %zu of %zu output elements were never written", label,
                  unwritten, g->numel);
}

void guarded_destroy(guarded *g)
{
    clnet_tensor_destroy(g->view);
    clnet_tensor_destroy(g->base);
    g->view = g->base = NULL;
}

clnet_tensor *tensor_from(clnet_context *ctx, int ndim, const int64_t *shape, const float *data)
{
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, ndim, shape, &t));
    CK_OK(ctx, clnet_tensor_upload(t, data, clnet_tensor_numel(t) * sizeof(float)));
    return t;
}

void download(clnet_context *ctx, const clnet_tensor *t, float *out, size_t n)
{
    CK_OK(ctx, clnet_tensor_download(t, out, n * sizeof *out));
}

uint64_t test_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)((double)(test_rng(state) >> 11) * 0x1.0p-53);
}

static int env_flag(const char *name)
{
    const char *e = getenv(name);
    return e && *e && strcmp(e, "0") != 0;
}

int test_long(void)
{
    return env_flag("CLNET_TEST_LONG");
}

int test_small(void)
{
    return !test_long() && env_flag("CLNET_TEST_SMALL");
}
