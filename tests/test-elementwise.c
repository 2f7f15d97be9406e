/* clnet tests — elementwise arithmetic and the sum reduction against the
 * float64 reference, with guard bands, aliasing and determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"

/* Float32 add, mul and scale round once, so the device equals the rounded
 * float64 result; axpy rounds twice (no FMA): allow 1 ulp. */
static const tolerance tol_exact = { 0, 0, 1, "one correctly rounded float op" };

/* axpy rounds alpha * x, then the sum: each rounding is at most half an ulp
 * of its own result, so the bound is in terms of the operands, not of the
 * (possibly cancelled) result. */
static size_t check_axpy(const float *got, const float *x, const float *y, float alpha,
                         const double *ref, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double bound = 0x1.0p-24 * (fabs((double)alpha * x[i]) + fabs(ref[i])) + 1e-37;
        if (!(fabs(got[i] - ref[i]) <= bound) && bad++ < 5)
            fprintf(stderr, "axpy: [%zu] expected %.9g, got %.9g (bound %g)\n", i, ref[i], got[i],
                    bound);
    }
    (void)y;
    return bad;
}

static const int64_t sizes[] = { 1, 3, 7, 31, 33, 64, 65, 4097, 100003 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

typedef struct data {
    int64_t n;
    float *x, *y, *got;
    double *dx, *dy, *ref;
} data;

static void data_make(data *d, int64_t n, uint64_t seed)
{
    d->n = n;
    d->x = malloc((size_t)n * sizeof(float));
    d->y = malloc((size_t)n * sizeof(float));
    d->got = malloc((size_t)n * sizeof(float));
    d->dx = malloc((size_t)n * sizeof(double));
    d->dy = malloc((size_t)n * sizeof(double));
    d->ref = malloc((size_t)n * sizeof(double));
    fill_uniform(d->x, (size_t)n, -1, 1, &seed);
    fill_uniform(d->y, (size_t)n, -1, 1, &seed);
    for (int64_t i = 0; i < n; i++) {
        d->dx[i] = d->x[i];
        d->dy[i] = d->y[i];
    }
}

static void data_free(data *d)
{
    free(d->x);
    free(d->y);
    free(d->got);
    free(d->dx);
    free(d->dy);
    free(d->ref);
}

typedef enum { OP_ADD, OP_MUL, OP_SCALE, OP_AXPY, NOPS } op;
static const char *op_names[] = { "add", "mul", "scale", "axpy" };

START_TEST(ops_match_reference)
{
    clnet_context *ctx = test_context();
    for (int o = 0; o < NOPS; o++)
        for (size_t k = 0; k < NSIZES; k++) {
            data d;
            data_make(&d, sizes[k], 100 * k + (uint64_t)o);
            clnet_tensor *x = tensor_from(ctx, 1, &d.n, d.x), *y = tensor_from(ctx, 1, &d.n, d.y);
            guarded g;
            guarded_create(ctx, 1, &d.n, &g);
            const float alpha = -1.7f;
            switch ((op)o) {
            case OP_ADD:
                CK_OK(ctx, clnet_add(x, y, g.view));
                ref_eltwise_add((size_t)d.n, d.dx, d.dy, d.ref);
                break;
            case OP_MUL:
                CK_OK(ctx, clnet_mul(x, y, g.view));
                ref_eltwise_mul((size_t)d.n, d.dx, d.dy, d.ref);
                break;
            case OP_SCALE:
                CK_OK(ctx, clnet_scale(alpha, x, g.view));
                ref_eltwise_scale((size_t)d.n, alpha, d.dx, d.ref);
                break;
            default:
                CK_OK(ctx, clnet_tensor_copy(y, g.view));
                CK_OK(ctx, clnet_axpy(alpha, x, g.view));
                memcpy(d.ref, d.dy, (size_t)d.n * sizeof(double));
                ref_eltwise_axpy((size_t)d.n, alpha, d.dx, d.ref);
                break;
            }
            guard_check(ctx, &g, op_names[o]);
            download(ctx, g.view, d.got, (size_t)d.n);
            size_t bad = o == OP_AXPY
                             ? check_axpy(d.got, d.x, d.y, alpha, d.ref, (size_t)d.n)
                             : compare_f32(op_names[o], d.got, d.ref, (size_t)d.n, tol_exact);
            ck_assert_msg(bad == 0, "%s n=%lld: %zu mismatches", op_names[o], (long long)d.n, bad);
            guarded_destroy(&g);
            clnet_tensor_destroy(x);
            clnet_tensor_destroy(y);
            data_free(&d);
        }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(ops_alias_and_views)
{
    clnet_context *ctx = test_context();
    data d;
    data_make(&d, 66, 5);
    int64_t n = 66, half = 33;
    clnet_tensor *x = tensor_from(ctx, 1, &n, d.x), *a, *b;
    /* z = x + y with z aliasing x, on two halves of one buffer. */
    CK_OK(ctx, clnet_tensor_slice(x, 0, half, &a));
    CK_OK(ctx, clnet_tensor_slice(x, half, half, &b));
    CK_OK(ctx, clnet_add(a, b, a));
    CK_OK(ctx, clnet_scale(2.0f, b, b));
    download(ctx, x, d.got, 66);
    for (int i = 0; i < 33; i++) {
        ck_assert(d.got[i] == d.x[i] + d.x[i + 33]);
        ck_assert(d.got[i + 33] == 2.0f * d.x[i + 33]);
    }
    /* Shapes may differ when the element counts agree. */
    int64_t shape[2] = { 3, 11 };
    clnet_tensor *m;
    CK_OK(ctx, clnet_tensor_reshape(a, 2, shape, &m));
    CK_OK(ctx, clnet_mul(m, b, m));
    clnet_tensor *bad;
    int64_t nb = 32;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &nb, &bad));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (32) but expected", clnet_add(b, bad, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL", clnet_add(NULL, b, a));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: shape (32) but expected", clnet_axpy(1.0f, bad, a));
    clnet_tensor *ints;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &half, &ints));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: dtype int32 but expected float32",
             clnet_scale(1.0f, a, ints));
    clnet_tensor_destroy(ints);
    clnet_tensor_destroy(bad);
    clnet_tensor_destroy(m);
    clnet_tensor_destroy(a);
    clnet_tensor_destroy(b);
    clnet_tensor_destroy(x);
    data_free(&d);
    clnet_context_destroy(ctx);
}
END_TEST

static const int64_t sum_sizes[] = { 1, 7, 64, 65, 4097, 1000003 };
#define NSUM (sizeof sum_sizes / sizeof sum_sizes[0])

START_TEST(sum_matches_reference)
{
    clnet_context *ctx = test_context();
    int64_t n = sum_sizes[_i];
    data d;
    data_make(&d, n, 77 + (uint64_t)n);
    clnet_tensor *x = tensor_from(ctx, 1, &n, d.x);
    double ref = ref_reduce_sum((size_t)n, d.dx), abs_sum = 0;
    for (int64_t i = 0; i < n; i++)
        abs_sum += fabs(d.dx[i]);
    float got, again;
    CK_OK(ctx, clnet_sum_host(x, &got));
    /* Summation of n floats: |err| <= 2 * n * 2^-24 * sum |x| (docs/testing.md). */
    double bound = 2.0 * (double)n * 0x1.0p-24 * abs_sum;
    ck_assert_msg(fabs(got - ref) <= bound, "n=%lld: sum %.9g, reference %.9g, bound %g",
                  (long long)n, got, ref, bound);
    /* Deterministic: the same bits again. */
    CK_OK(ctx, clnet_sum_host(x, &again));
    ck_assert_int_eq(memcmp(&got, &again, sizeof got), 0);
    /* Into a one-element view inside a guarded buffer. */
    guarded g;
    int64_t one = 1;
    guarded_create(ctx, 1, &one, &g);
    CK_OK(ctx, clnet_sum(x, g.view));
    guard_check(ctx, &g, "sum");
    download(ctx, g.view, &again, 1);
    ck_assert_int_eq(memcmp(&got, &again, sizeof got), 0);
    guarded_destroy(&g);
    clnet_tensor_destroy(x);
    data_free(&d);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(sum_of_a_view_and_bad_outputs)
{
    clnet_context *ctx = test_context();
    int64_t n = 200;
    float x[200];
    for (int i = 0; i < 200; i++)
        x[i] = (float)(i % 13) - 6.0f;
    clnet_tensor *t = tensor_from(ctx, 1, &n, x), *v, *out;
    CK_OK(ctx, clnet_tensor_slice(t, 17, 101, &v));
    float got;
    CK_OK(ctx, clnet_sum_host(v, &got));
    double want = 0;
    for (int i = 17; i < 118; i++)
        want += x[i];
    ck_assert(got == (float)want); /* small integers: exact in any order */
    int64_t two = 2;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &two, &out));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "one float32 element", clnet_sum(v, out));
    clnet_tensor_destroy(out);
    clnet_tensor_destroy(v);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_elementwise(void)
{
    Suite *s = suite_create("elementwise");
    TCase *tc = tcase_create("elementwise");
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, ops_match_reference);
    tcase_add_test(tc, ops_alias_and_views);
    tcase_add_loop_test(tc, sum_matches_reference, 0, NSUM);
    tcase_add_test(tc, sum_of_a_view_and_bad_outputs);
    suite_add_tcase(s, tc);
    return s;
}
