/* clnet tests — the shared harness: contexts for tests, the float comparator
 * with per-op tolerances, guard bands, and status assertions. */
#ifndef CLNET_TEST_HARNESS_H
#define CLNET_TEST_HARNESS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "clnet/clnet.h"

/* A context on CLNET_TEST_DEVICE (else the default device); fails the test
 * with the library's message if it cannot be created. */
clnet_context *test_context(void);

/* The log handler of every test_context: an error message that the test did
 * not announce fails the test, naming the message. CK_FAILS announces its
 * own call's; a test that expects others (a fault sweep, a fallback it
 * provokes) brackets them with expect_errors(1) ... expect_errors(prev),
 * which returns the previous setting. The runner turns the handler on for
 * every suite but those that provoke errors by design (tests/runner.c:
 * strict_by_default); a test case can also turn it on for itself:
 * tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors,
 * allow_unexpected_errors), the teardown going back to the default. */
void strict_by_default(void);
void fail_on_unexpected_errors(void);
void allow_unexpected_errors(void);
int expect_errors(int on);
/* Whether the handler fails the test on a message of this status now. */
int unexpected_error(clnet_status status);

/* Asserts that a clnet call returned CLNET_OK, printing the context's message. */
#define CK_OK(ctx, call)                                                                           \
    do {                                                                                           \
        clnet_status st_ = (call);                                                                 \
        ck_assert_msg(st_ == CLNET_OK, "%s returned %s: %s", #call, clnet_status_name(st_),        \
                      clnet_context_errmsg(ctx));                                                  \
    } while (0)

/* Asserts a specific failure status and that the message contains `needle`. */
#define CK_FAILS(ctx, want, needle, call)                                                          \
    do {                                                                                           \
        int prev_ = expect_errors(1);                                                              \
        clnet_status st_ = (call);                                                                 \
        expect_errors(prev_);                                                                      \
        ck_assert_msg(st_ == (want), "%s returned %s, expected %s (%s)", #call,                    \
                      clnet_status_name(st_), clnet_status_name(want), clnet_context_errmsg(ctx)); \
        ck_assert_msg(strstr(clnet_context_errmsg(ctx), (needle)) != NULL,                         \
                      "%s: message \"%s\" lacks \"%s\"", #call, clnet_context_errmsg(ctx),         \
                      (needle));                                                                   \
    } while (0)

/* A tolerance: an element passes when bitwise equal to the rounded reference,
 * or |got - ref| <= abs, or |got - ref| <= rel * |ref|. bitwise = 1 allows
 * only exact equality with (float)ref. A NaN or Inf on one side only fails. */
typedef struct tolerance {
    double abs, rel;
    int bitwise;
    const char *why; /* one line: why this tolerance */
} tolerance;

/* Compares n device floats with a float64 reference. Returns the number of
 * mismatches and prints the first few with `label`. A reference that is not
 * finite fails the comparison (a broken test, not a broken device). */
size_t compare_f32(const char *label, const float *got, const double *ref, size_t n, tolerance tol);

/* Compares n device floats with a float64 reference under a bound per
 * element: element i passes when both sides are finite and got[i] is
 * (float)ref[i] or |got[i] - ref[i]| <= bound[i]. Returns the number of
 * mismatches, printing the first few with `label` (and, when
 * test_verbose(), the worst error / bound). For error bounds derived per
 * element, where a tolerance's single abs/rel pair is too coarse. */
size_t compare_bounds(const char *label, const float *got, const double *ref, const double *bound,
                      size_t n);

/* ||got - ref|| / ||ref|| in float64. */
double rel_error(const float *got, const double *ref, size_t n);

/* Host arrays for tests: fail the test when out of memory; n = 0 gives a
 * valid one-element block. host_f64 is zero-filled. Free with free(). */
float *host_f32(size_t n);
double *host_f64(size_t n);
/* A float64 copy of n floats (free with free()). */
double *widen_f64(const float *x, size_t n);
/* CLNET_TEST_VERBOSE is set (and not "0"): print extra diagnostics. */
int test_verbose(void);

/* The sentinel NaN written around and into outputs before an op. */
#define SENTINEL_BITS 0x7fc0deadu
float sentinel(void);
int is_sentinel(float f);

/* A guarded tensor: an output view in the middle of a larger buffer whose
 * margins and body hold the sentinel. guard_check() then proves the op wrote
 * every element of the body and nothing in the margins. */
typedef struct guarded {
    clnet_tensor *base, *view;
    size_t numel, margin;
} guarded;

void guarded_create(clnet_context *ctx, int ndim, const int64_t *shape, guarded *g);
/* Counts margin elements that changed and body elements never written. */
void guard_count(clnet_context *ctx, const guarded *g, size_t *margin_bad, size_t *unwritten);
/* Fails the test if a margin element changed or a body element was not written. */
void guard_check(clnet_context *ctx, const guarded *g, const char *label);
void guarded_destroy(guarded *g);

/* Uploads / downloads float arrays, asserting success. */
clnet_tensor *tensor_from(clnet_context *ctx, int ndim, const int64_t *shape, const float *data);
void download(clnet_context *ctx, const clnet_tensor *t, float *out, size_t n);

/* Small deterministic host RNG for test data (splitmix64). */
uint64_t test_rng(uint64_t *state);
void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);

/* The shape tier: 0 = quick (CI), 1 = long (CLNET_TEST_LONG=1). */
int test_long(void);
/* CLNET_TEST_SMALL=1 (and not the long tier): suites that step whole
 * reference models use small batches, for stacks a thousand times slower
 * than pocl (rusticl on llvmpipe); the claims checked are the same. */
int test_small(void);

/* Suites; each lives in tests/test-<name>.c. */
Suite *suite_harness(void);
Suite *suite_runtime(void);
Suite *suite_cache(void);
Suite *suite_tensor(void);
Suite *suite_rng(void);
Suite *suite_elementwise(void);
Suite *suite_op(void);
Suite *suite_ref(void);
Suite *suite_gemm(void);
Suite *suite_conv(void);
Suite *suite_pool(void);
Suite *suite_act(void);
Suite *suite_loss(void);
Suite *suite_norm(void);
Suite *suite_optim(void);
Suite *suite_io(void);
Suite *suite_rnn(void);
Suite *suite_nn(void);
Suite *suite_faults(void);
Suite *suite_limits(void);
Suite *suite_gan(void);
Suite *suite_vae(void);
Suite *suite_step(void);
Suite *suite_semantics(void);
Suite *suite_merge(void);
Suite *suite_graph(void);
Suite *suite_onnx(void);
Suite *suite_callbacks(void);
Suite *suite_hardening(void);
Suite *suite_conv_grouped(void);
Suite *suite_npy(void);
Suite *suite_onnx_run(void);
Suite *suite_onnx_export(void);

#endif
