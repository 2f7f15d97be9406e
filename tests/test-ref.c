/* clnet tests: the float64 reference itself. Hand-computed cases for the
 * forwards and optimizers, and every reference backward against central
 * finite differences of its forward (docs/testing.md, finite differences).
 * This file: the finite-difference harness (tests/ref-check.h), random
 * numbers, elementwise ops and the suite; GEMM,
 * convolution, pooling and upsampling are in tests/test-ref-spatial.c, the
 * layers (activations to optimizers) in tests/test-ref-layers.c. */
#include "harness.h"
#include "ref.h"
#include "ref-check.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- finite-difference harness ----------------------------------------- */

/* g[i] = dL/dx[i] for L = <dy, f(ctx)> by central differences, where x is
 * one of the arrays ctx points to (perturbed in place and restored). The
 * step actually taken, xp - xm, is the denominator, not 2 * FD_EPS. */
void fd_grad(fwd_fn f, const void *ctx, double *x, size_t nx, size_t ny, const double *dy,
             double *g)
{
    double *y = host_f64(ny);
    for (size_t i = 0; i < nx; i++) {
        double x0 = x[i], xp = x0 + FD_EPS, xm = x0 - FD_EPS;
        x[i] = xp;
        f(ctx, y);
        double lp = ref_reduce_dot(ny, dy, y);
        x[i] = xm;
        f(ctx, y);
        double lm = ref_reduce_dot(ny, dy, y);
        x[i] = x0;
        g[i] = (lp - lm) / (xp - xm);
    }
    free(y);
}

/* 1 when the analytic gradient an matches fd (criteria above); prints the
 * case and the first mismatches otherwise. Both all-zero fails: such a case
 * proves nothing. A NaN anywhere fails (comparisons with NaN are false). */
int grad_matches(const char *what, size_t n, const double *fd, const double *an)
{
    double diff2 = 0.0, an2 = 0.0, fd2 = 0.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fd[i] - an[i];
        diff2 += d * d;
        an2 += an[i] * an[i];
        fd2 += fd[i] * fd[i];
        if (!(fabs(d) <= FD_ATOL + FD_RTOL * fabs(fd[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s: [%zu] fd %.17g analytic %.17g\n", what, i, fd[i], an[i]);
            bad++;
        }
    }
    double rel = sqrt(diff2) / sqrt(an2);
    int ok = bad == 0 && rel < FD_VEC_RTOL && (an2 > 0.0 || fd2 > 0.0);
    if (!ok)
        fprintf(stderr,
                "%s: %d of %zu elements off, ||fd-an||/||an|| = %.3g,"
                " ||an|| = %.3g\n",
                what, bad, n, rel, sqrt(an2));
    return ok;
}

/* Fails the test unless an = d<dy, f>/dx (see fd_grad). */
void check_grad(const char *what, fwd_fn f, const void *ctx, double *x, size_t nx, size_t ny,
                const double *dy, const double *an)
{
    double *fd = host_f64(nx);
    fd_grad(f, ctx, x, nx, ny, dy, fd);
    int ok = grad_matches(what, nx, fd, an);
    free(fd);
    ck_assert_msg(ok,
                  "%s: analytic gradient disagrees with finite "
                  "differences (see stderr)",
                  what);
}

/* Elementwise |got - want| <= tol; tol 0 demands equality. */
void expect_near(const char *what, size_t n, const double *got, const double *want, double tol)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol, "%s: [%zu] got %.17g want %.17g", what, i,
                      got[i], want[i]);
}

/* Values +-[0.1, 1): at least 0.1 away from relu's kink. */
void fill_away_from_zero(double *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        double m = 0.1 + 0.9 * ref_rng_uniform(s);
        x[i] = ref_rng_next(s) & 1 ? m : -m;
    }
}

/* Distinct values 0.01 apart in random order: no max-pool ties, not even
 * after a finite-difference step. */
void fill_distinct(double *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.01 * ((double)i - (double)n / 2.0);
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)(ref_rng_next(s) % i);
        double t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

/* ---- random numbers ---------------------------------------------------- */

START_TEST(test_splitmix64_known_values)
{
    uint64_t s = 0; /* Vigna's splitmix64.c, seed 0 */
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0xe220a8397b1dcdaf));
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0x6e789e6aa1b965f4));
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0x06c45d188009454f));
}
END_TEST

START_TEST(test_fill_ranges_and_determinism)
{
    double x[500], y[500];
    uint64_t s = 7, t = 7;
    int seen_lo = 0, seen_hi = 0;
    ref_fill_int(x, 500, -8, 8, &s);
    ref_fill_int(y, 500, -8, 8, &t);
    for (int i = 0; i < 500; i++) {
        ck_assert(x[i] == y[i] && x[i] == floor(x[i]));
        ck_assert(x[i] >= -8 && x[i] <= 8);
        seen_lo |= x[i] == -8;
        seen_hi |= x[i] == 8;
    }
    ck_assert(seen_lo && seen_hi);
    ref_fill_uniform(x, 500, -1.0, 1.0, &s);
    for (int i = 0; i < 500; i++)
        ck_assert(x[i] >= -1.0 && x[i] < 1.0);
}
END_TEST

START_TEST(test_philox4x32_10_kat)
{
    /* Random123/tests/kat_vectors, the three "philox4x32 10" lines. */
    static const uint32_t kat[3][10] = {
        { 0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
        { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
          0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
        { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
          0x94fdcceb, 0x5001e420, 0x24126ea1 },
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        ref_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(out[i] == kat[v][6 + i], "vector %d word %d: %08x", v, i,
                          (unsigned)out[i]);
    }
}
END_TEST

/* ---- elementwise and reductions ---------------------------------------- */

START_TEST(test_eltwise_hand)
{
    double a[3] = { 1, -2, 0.5 }, b[3] = { 4, 3, -2 }, y[3];
    ref_eltwise_add(3, a, b, y);
    expect_near("add", 3, y, (const double[]){ 5, 1, -1.5 }, 0);
    ref_eltwise_mul(3, a, b, y);
    expect_near("mul", 3, y, (const double[]){ 4, -6, -1 }, 0);
    ref_eltwise_scale(3, -2.0, a, y);
    expect_near("scale", 3, y, (const double[]){ -2, 4, -1 }, 0);
    ref_eltwise_axpy(3, 0.5, b, y);
    expect_near("axpy", 3, y, (const double[]){ 0, 5.5, -2 }, 0);
}
END_TEST

START_TEST(test_reduce_sum_is_compensated)
{
    double x[10], big[3] = { 1e16, 1.0, -1e16 };
    for (int i = 0; i < 10; i++)
        x[i] = 0.1;
    /* Naive left-to-right gives 0.9999999999999999 and 0. */
    ck_assert(ref_reduce_sum(10, x) == 1.0);
    ck_assert(ref_reduce_sum(3, big) == 1.0);
    ck_assert(ref_reduce_dot(3, big, (const double[]){ 1, 3, 1 }) == 3.0);
    ck_assert(ref_reduce_sum(0, x) == 0.0);
}
END_TEST

typedef struct mul_ctx {
    size_t n;
    double *a, *b;
} mul_ctx;

static void mul_fwd(const void *v, double *y)
{
    const mul_ctx *c = v;
    ref_eltwise_mul(c->n, c->a, c->b, y);
}

START_TEST(test_eltwise_mul_grad)
{
    uint64_t s = 11;
    enum { N = 13 };
    double a[N], b[N], dy[N], da[N], db[N];
    ref_fill_uniform(a, N, -1, 1, &s);
    ref_fill_uniform(b, N, -1, 1, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_eltwise_mul_backward(N, a, b, dy, da, db);
    mul_ctx c = { N, a, b };
    check_grad("mul da seed 11", mul_fwd, &c, a, N, N, dy, da);
    check_grad("mul db seed 11", mul_fwd, &c, b, N, N, dy, db);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

TCase *ref_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

Suite *suite_ref(void);

Suite *suite_ref(void)
{
    Suite *s = suite_create("ref");
    TCase *tc = ref_tcase(s, "rng");
    tcase_add_test(tc, test_splitmix64_known_values);
    tcase_add_test(tc, test_fill_ranges_and_determinism);
    tcase_add_test(tc, test_philox4x32_10_kat);
    tc = ref_tcase(s, "eltwise");
    tcase_add_test(tc, test_eltwise_hand);
    tcase_add_test(tc, test_reduce_sum_is_compensated);
    tcase_add_test(tc, test_eltwise_mul_grad);
    ref_add_spatial_tests(s);
    ref_add_layer_tests(s);
    tc = ref_tcase(s, "gradcheck");
    ref_add_spatial_gradcheck(tc);
    ref_add_layer_gradcheck(tc);
    return s;
}
