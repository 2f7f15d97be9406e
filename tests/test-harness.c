/* clnet tests — negative controls: the comparator and the guard bands must
 * fail on perturbed results, or every other test proves nothing. */
#include <math.h>
#include <string.h>

#include "harness.h"

static const tolerance tol_ulp = { 1e-30, 1.2e-7, 0, "1 ulp" };

START_TEST(comparator_accepts_equal)
{
    float got[3] = { 1.0f, -2.5f, 0.0f };
    double ref[3] = { 1.0, -2.5, 0.0 };
    ck_assert_uint_eq(compare_f32("equal", got, ref, 3, tol_ulp), 0);
}
END_TEST

START_TEST(comparator_rejects_perturbed)
{
    float got[4] = { 1.0f, 2.0f, 3.0f, 4.0f };
    double ref[4] = { 1.0, 2.0, 3.0, 4.0 };
    /* Twice the tolerance off in one element. */
    got[2] = (float)(3.0 * (1 + 2 * 1.2e-7));
    ck_assert_uint_eq(compare_f32("perturbed (expected to fail)", got, ref, 4, tol_ulp), 1);
    got[2] = 3.0f;
    got[1] = NAN;
    ck_assert_uint_eq(compare_f32("NaN (expected to fail)", got, ref, 4, tol_ulp), 1);
    got[1] = INFINITY;
    ck_assert_uint_eq(compare_f32("Inf (expected to fail)", got, ref, 4, tol_ulp), 1);
    ref[1] = INFINITY;
    ck_assert_uint_eq(
        compare_f32("Inf both (expected to fail: reference broken)", got, ref, 4, tol_ulp), 1);
    float zeros[4] = { 0 };
    double ref2[4] = { 1.0, 2.0, 3.0, 4.0 };
    ck_assert_uint_eq(compare_f32("zeros (expected to fail)", zeros, ref2, 4, tol_ulp), 4);
}
END_TEST

START_TEST(comparator_bitwise_mode)
{
    float got[1] = { nextafterf(1.0f, 2.0f) };
    double ref[1] = { 1.0 };
    tolerance bitwise = { 0, 0, 1, "copy" };
    ck_assert_uint_eq(
        compare_f32("one ulp in bitwise mode (expected to fail)", got, ref, 1, bitwise), 1);
    got[0] = 1.0f;
    ck_assert_uint_eq(compare_f32("bitwise", got, ref, 1, bitwise), 0);
}
END_TEST

START_TEST(rel_error_measures)
{
    float got[2] = { 1.0f, 0.0f };
    double ref[2] = { 1.0, 0.0 };
    ck_assert(rel_error(got, ref, 2) == 0.0);
    got[1] = 1.0f;
    ck_assert(rel_error(got, ref, 2) > 0.99);
}
END_TEST

/* The guard check itself, in a forked child that must fail. */
START_TEST(guard_catches_margin_write)
{
    clnet_context *ctx = test_context();
    guarded g;
    int64_t shape[1] = { 5 };
    guarded_create(ctx, 1, shape, &g);
    CK_OK(ctx, clnet_tensor_fill(g.view, 1.0));
    /* Write one element past the end through a view of the base. */
    clnet_tensor *past;
    CK_OK(ctx, clnet_tensor_slice(g.base, (int64_t)(g.margin + g.numel), 1, &past));
    CK_OK(ctx, clnet_tensor_fill(past, 2.0));
    size_t margin_bad, unwritten;
    guard_count(ctx, &g, &margin_bad, &unwritten);
    ck_assert_uint_eq(margin_bad, 1);
    ck_assert_uint_eq(unwritten, 0);
    clnet_tensor_destroy(past);
    guarded_destroy(&g);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(guard_catches_unwritten)
{
    clnet_context *ctx = test_context();
    guarded g;
    int64_t shape[2] = { 3, 3 };
    guarded_create(ctx, 2, shape, &g);
    clnet_tensor *part;
    CK_OK(ctx, clnet_tensor_slice(g.view, 0, 2, &part));
    CK_OK(ctx, clnet_tensor_fill(part, 1.0));
    size_t margin_bad, unwritten;
    guard_count(ctx, &g, &margin_bad, &unwritten);
    ck_assert_uint_eq(margin_bad, 0);
    ck_assert_uint_eq(unwritten, 3);
    clnet_tensor_destroy(part);
    guarded_destroy(&g);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(guard_passes_full_write)
{
    clnet_context *ctx = test_context();
    guarded g;
    int64_t shape[2] = { 3, 3 };
    guarded_create(ctx, 2, shape, &g);
    CK_OK(ctx, clnet_tensor_fill(g.view, 1.0));
    guard_check(ctx, &g, "full write");
    guarded_destroy(&g);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_harness(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("comparator");
    tcase_add_test(tc, comparator_accepts_equal);
    tcase_add_test(tc, comparator_rejects_perturbed);
    tcase_add_test(tc, comparator_bitwise_mode);
    tcase_add_test(tc, rel_error_measures);
    suite_add_tcase(s, tc);
    tc = tcase_create("guard");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, guard_catches_margin_write);
    tcase_add_test(tc, guard_catches_unwritten);
    tcase_add_test(tc, guard_passes_full_write);
    suite_add_tcase(s, tc);
    return s;
}
