/* clnet tests — the finite-difference harness the `ref` suite's files share
 * (tests/test-ref.c, tests/test-ref-spatial.c, tests/test-ref-layers.c). */
#ifndef CLNET_TESTS_REF_CHECK_H
#define CLNET_TESTS_REF_CHECK_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Step and pass criteria: every element within FD_ATOL + FD_RTOL |fd|, and
 * the whole vector within ||fd - an|| / ||an|| < FD_VEC_RTOL. In float64 the
 * central difference of these tiny smooth (or piecewise linear, away from
 * kinks) functions is accurate to ~1e-9, so 1e-6 has margin both ways. */
#define FD_EPS 1e-6
#define FD_ATOL 1e-5
#define FD_RTOL 1e-3
#define FD_VEC_RTOL 1e-6

/* A forward under test: reads its inputs through ctx, writes y. */
typedef void (*fwd_fn)(const void *ctx, double *y);

void fd_grad(fwd_fn f, const void *ctx, double *x, size_t nx, size_t ny, const double *dy,
             double *g);
int grad_matches(const char *what, size_t n, const double *fd, const double *an);
void check_grad(const char *what, fwd_fn f, const void *ctx, double *x, size_t nx, size_t ny,
                const double *dy, const double *an);
void expect_near(const char *what, size_t n, const double *got, const double *want, double tol);
void fill_away_from_zero(double *x, size_t n, uint64_t *s);
void fill_distinct(double *x, size_t n, uint64_t *s);

/* A test case of the suite, with the suite's timeout. */
TCase *ref_tcase(Suite *s, const char *name);

/* The test cases of tests/test-ref-spatial.c and tests/test-ref-layers.c. */
void ref_add_spatial_tests(Suite *s);
void ref_add_layer_tests(Suite *s);
/* Their negative controls (a wrong gradient must fail check_grad's
 * criteria), added to the suite's "gradcheck" case. */
void ref_add_spatial_gradcheck(TCase *tc);
void ref_add_layer_gradcheck(TCase *tc);

#endif
