/* clnet tests — the device Philox generator against the CPU Philox
 * (ref_philox4x32_10): uniform fills bit for bit, normal fills to a few ulp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"

/* The CPU side of clnet_tensor_rand_uniform, in float as the device does it. */
static float cpu_uniform(size_t i, uint64_t seed, uint64_t stream, float lo, float hi)
{
    uint64_t b = i / 4;
    uint32_t ctr[4] = { (uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                        (uint32_t)(stream >> 32) };
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    uint32_t r[4];
    ref_philox4x32_10(ctr, key, r);
    float u = (float)(r[i % 4] >> 8) * 0x1.0p-24f;
    float span = hi - lo;
    return lo + span * u;
}

static double cpu_normal(size_t i, uint64_t seed, uint64_t stream, double mean, double sd)
{
    uint64_t b = i / 4;
    uint32_t ctr[4] = { (uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                        (uint32_t)(stream >> 32) };
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    uint32_t r[4];
    ref_philox4x32_10(ctr, key, r);
    size_t j = i % 4 & ~(size_t)1;
    double u1 = (double)((r[j] >> 8) + 1u) * 0x1.0p-24;
    double u2 = (double)(r[j + 1] >> 8) * 0x1.0p-24;
    double rad = sqrt(-2.0 * log(u1)), th = 6.2831853071795864769 * u2;
    return mean + sd * (i % 2 ? rad * sin(th) : rad * cos(th));
}

static const int64_t sizes[] = { 1, 3, 7, 31, 33, 4097 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

START_TEST(uniform_matches_cpu_bitwise)
{
    clnet_context *ctx = test_context();
    int64_t n = sizes[_i];
    const uint64_t seeds[] = { 0, 42, UINT64_C(0xdeadbeefcafef00d) };
    float *got = malloc((size_t)n * sizeof *got);
    for (size_t s = 0; s < 3; s++) {
        uint64_t stream = s * UINT64_C(0x100000001);
        guarded g;
        guarded_create(ctx, 1, &n, &g);
        CK_OK(ctx, clnet_tensor_rand_uniform(g.view, seeds[s], stream, -0.75f, 2.0f));
        guard_check(ctx, &g, "rand_uniform");
        download(ctx, g.view, got, (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            float want = cpu_uniform((size_t)i, seeds[s], stream, -0.75f, 2.0f);
            ck_assert_msg(memcmp(&want, &got[i], 4) == 0,
                          "n=%lld seed=%llu [%lld]: want %.9g got %.9g", (long long)n,
                          (unsigned long long)seeds[s], (long long)i, want, got[i]);
            ck_assert(got[i] >= -0.75f && got[i] < 2.0f);
        }
        guarded_destroy(&g);
    }
    free(got);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(known_answer)
{
    /* Random123's kat_vectors for philox4x32_10. */
    uint32_t out[4];
    const uint32_t zero_ctr[4] = { 0, 0, 0, 0 }, zero_key[2] = { 0, 0 };
    ref_philox4x32_10(zero_ctr, zero_key, out);
    ck_assert_uint_eq(out[0], 0x6627e8d5u);
    ck_assert_uint_eq(out[3], 0x9b00dbd8u);
    /* The device's first uniform word with seed 0 equals the KAT's first word. */
    clnet_context *ctx = test_context();
    int64_t n = 4;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_rand_uniform(t, 0, 0, 0.0f, 1.0f));
    float v[4];
    download(ctx, t, v, 4);
    ck_assert(v[0] == (float)(0x6627e8d5u >> 8) * 0x1.0p-24f);
    ck_assert(v[3] == (float)(0x9b00dbd8u >> 8) * 0x1.0p-24f);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(views_draw_from_their_own_start)
{
    /* A slice is filled as a tensor of its own: element 0 of the view takes
     * counter 0, whatever its offset in the buffer. */
    clnet_context *ctx = test_context();
    int64_t n = 40, m = 13;
    clnet_tensor *base, *view, *alone;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &base));
    CK_OK(ctx, clnet_tensor_slice(base, 5, m, &view));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &m, &alone));
    CK_OK(ctx, clnet_tensor_rand_uniform(view, 9, 3, 0, 1));
    CK_OK(ctx, clnet_tensor_rand_uniform(alone, 9, 3, 0, 1));
    float a[13], b[13];
    download(ctx, view, a, 13);
    download(ctx, alone, b, 13);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    /* Another stream gives other numbers. */
    CK_OK(ctx, clnet_tensor_rand_uniform(alone, 9, 4, 0, 1));
    download(ctx, alone, b, 13);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    clnet_tensor_destroy(view);
    clnet_tensor_destroy(alone);
    clnet_tensor_destroy(base);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(normal_matches_cpu)
{
    clnet_context *ctx = test_context();
    int64_t n = 100003;
    float *got = malloc((size_t)n * sizeof *got);
    double *want = malloc((size_t)n * sizeof *want);
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_rand_normal(t, 1234, 7, 0.5f, 2.0f));
    download(ctx, t, got, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        want[i] = cpu_normal((size_t)i, 1234, 7, 0.5, 2.0);
    /* Float log/sqrt/sin/cos on the device (a few ulp each, OpenCL 1.2 sec.
     * 7.4), and the float rounding of u1 and the angle: 2e-5 of |x| + 2e-5. */
    tolerance tol = { 2e-5, 2e-5, 0, "device log/sqrt/sin/cos, a few ulp each" };
    ck_assert_uint_eq(compare_f32("rand_normal", got, want, (size_t)n, tol), 0);
    /* And it is a normal distribution: mean and variance within 4 sigma. */
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
        m += got[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++)
        v += (got[i] - m) * (got[i] - m);
    v /= (double)(n - 1);
    ck_assert_msg(fabs(m - 0.5) < 4 * 2.0 / sqrt((double)n), "mean %g", m);
    ck_assert_msg(fabs(v - 4.0) < 4 * 4.0 * sqrt(2.0 / (double)n), "variance %g", v);
    clnet_tensor_destroy(t);
    free(got);
    free(want);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_rng(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("philox");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, uniform_matches_cpu_bitwise, 0, NSIZES);
    tcase_add_test(tc, known_answer);
    tcase_add_test(tc, views_draw_from_their_own_start);
    tcase_add_test(tc, normal_matches_cpu);
    suite_add_tcase(s, tc);
    return s;
}
