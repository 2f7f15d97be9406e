/* clnet tests — activations, softmax / log-softmax and the channel bias
 * against the float64 reference (tests/ref.c): every element within a stated
 * bound, guard bands, unchanged inputs, determinism, aliasing, special
 * values, bad arguments, and no program builds for new shapes. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"
#include "runtime/runtime.h"

/* ---- Tolerances ---------------------------------------------------------------
 * u = 2^-24 is float32's unit roundoff: a correctly rounded operation errs by
 * at most u relative, and one ulp is between u and 2u of a value. Device
 * functions are held to the OpenCL 1.2 full-profile limits: exp <= 3 ulp
 * (6u), log1p <= 2 ulp (4u), tanh <= 5 ulp (10u). Kernels are built without
 * fast-math and with FP_CONTRACT OFF (no fused multiply-add), so every other
 * operation rounds once. TINY (FLT_MIN) is an absolute floor for results in
 * the denormal range, which carry absolute, not relative, precision (and may
 * be flushed on devices without denormals).
 * Measured on pocl 3.1 (this machine) over 2M points (x in [-90, 90] and
 * |x| in [1e-7, 10]): sigmoid 3.0u, tanh 1.5u, sigmoid backward 2.9u, tanh
 * backward 2.5u. The softmax family below reaches up to 0.46 of its bound
 * (quick and long tiers), so the bounds are not vacuous. */
#define U 0x1.0p-24
#define TINY 0x1.0p-126

static const tolerance tol_bitwise = { 0, 0, 1, "a select or one correctly rounded product" };
static const tolerance tol_sigmoid = {
    TINY, 16 * U, 0, "exp 6u, then 1 + e and the division: <= 11u (spec bound), 16u with margin"
};
static const tolerance tol_tanh = { TINY, 12 * U, 0, "the device's tanh, <= 5 ulp = 10u (spec)" };
static const tolerance tol_sigmoid_bwd = { TINY, 4 * U, 0,
                                           "dy*y, 1-y and the product: 3 roundings" };
static const tolerance tol_hard_swish = {
    TINY, 4 * U, 0, "x + 3 (exact near -3), / 6 and the product: 3 roundings"
};
static const tolerance tol_hard_swish_bwd = {
    TINY, 4 * U, 0, "2x + 3 (exact near -1.5), dy times it, / 6: 3 roundings"
};
static const tolerance tol_tanh_bwd = {
    TINY, 5 * U, 0, "1-y, 1+y and two products: 4 roundings (no 1-y*y cancellation)"
};

/* Row reductions (softmax family): the longest chain of float additions is
 * the whole row for a row per work-item, or a lane's strided share plus the
 * tree for a row per work-group. Bounds below, per element j of a row with
 * maximum m, R = min(max |x - m|, 110) (beyond 110, exp underflows to 0 and
 * the rounding of x - m no longer matters), u as above:
 *   softmax, log-softmax forward: |err| <= (2 depth + 2R + 16) u |y_j|
 *     (x - m: |x_j - m| u; exp 6u; the row sum depth u; division or log1p;
 *     log-softmax: log1p of the sum below the maximum keeps the error
 *     relative to |y_j|, see act.h)
 *   softmax backward: |err| <= u |y_j| (2 (depth + 2) A + 2 (|dy_j| + A)),
 *     A = sum |dy_i y_i| (the dot's error, then the subtraction's rounding)
 *   log-softmax backward: |err| <= u (e_j (2 depth + 12) B + 2 |dy_j|),
 *     e_j = exp(y_j), B = sum |dy_i|
 * The dot and the subtraction may cancel, so the bounds are in terms of the
 * operands (as docs/testing.md's GEMM bound), not of the result.
 * Bias: y = x + b rounds once: bitwise. db: a sum of m = N*HW values in a
 * two-level fixed order: |err| <= 2 (ceil(m / WG) + log2(WG) + 2) u sum |dy|
 * (a lane's share of a chunk, the tree, then at most m / (32 WG) + 1 chunk
 * partials; never worse than one work-group's share of m). */

static double row_depth(int variant, int cols, size_t wg)
{
    return variant == CLNET_V_ROW_GROUP ? ceil((double)cols / (double)wg) + log2((double)wg) : cols;
}

/* ---- Comparators ------------------------------------------------------------ */

/* Special values: a NaN reference wants NaN, one that rounds to +-Inf wants
 * that Inf, a zero wants the same signed zero; a denormal reference also
 * accepts a same-signed zero (flushed); otherwise |got - ref| <= bound. */
static size_t check_special(const char *label, const float *got, const double *ref, double rel,
                            size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float r = (float)ref[i], g = got[i];
        int ok;
        if (isnan(ref[i]))
            ok = isnan(g);
        else if (isinf(r) || isinf(g))
            ok = g == r;
        else if (r == 0.0f && g == 0.0f)
            ok = signbit(r) == signbit(g);
        else if (fabs(ref[i]) < FLT_MIN && g == 0.0f)
            ok = signbit(r) == signbit(g);
        else
            ok = g == r || fabs(g - ref[i]) <= rel * fabs(ref[i]) + TINY;
        if (!ok && bad++ < 8)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g\n", label, i, ref[i], (double)g);
    }
    return bad;
}

/* ---- Helpers ------------------------------------------------------------------ */

/* Fails unless t still holds host[0..n). */
static void expect_unchanged(clnet_context *ctx, const clnet_tensor *t, const float *host, size_t n,
                             const char *label)
{
    float *now = host_f32(n);
    download(ctx, t, now, n);
    ck_assert_msg(memcmp(now, host, n * sizeof *now) == 0, "%s: an input changed", label);
    free(now);
}

/* Fails unless the two tensors hold the same bits. */
static void expect_same_bits(clnet_context *ctx, const clnet_tensor *a, const clnet_tensor *b,
                             size_t n, const char *label)
{
    float *pa = host_f32(n), *pb = host_f32(n);
    download(ctx, a, pa, n);
    download(ctx, b, pb, n);
    ck_assert_msg(memcmp(pa, pb, n * sizeof *pa) == 0, "%s: results differ between runs", label);
    free(pa);
    free(pb);
}

/* Trust: not all zero, and at most max_zero_frac exact zeros (n >= 8). */
static void trust(const double *ref, size_t n, double max_zero_frac, const char *label)
{
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += ref[i] == 0.0;
    ck_assert_msg(zeros < n, "%s: the reference is all zero: the case tests nothing", label);
    ck_assert_msg(n < 8 || (double)zeros <= max_zero_frac * (double)n,
                  "%s: %zu of %zu reference values are zero", label, zeros, n);
}

/* ---- Activations --------------------------------------------------------------- */

#define NACTS 7
static const float alpha_leaky = 0.01f;

static void ref_forward(clnet_activation act, double alpha, size_t n, const double *x, double *y)
{
    switch (act) {
    case CLNET_ACT_RELU:
        ref_act_relu_forward(n, x, y);
        break;
    case CLNET_ACT_LEAKY_RELU:
        ref_act_leaky_relu_forward(n, alpha, x, y);
        break;
    case CLNET_ACT_SIGMOID:
        ref_act_sigmoid_forward(n, x, y);
        break;
    case CLNET_ACT_TANH:
        ref_act_tanh_forward(n, x, y);
        break;
    case CLNET_ACT_RELU6:
        ref_act_relu6_forward(n, x, y);
        break;
    case CLNET_ACT_HARD_SWISH:
        ref_act_hard_swish_forward(n, x, y);
        break;
    default:
        memcpy(y, x, n * sizeof *y);
        break;
    }
}

static void ref_backward(clnet_activation act, double alpha, size_t n, const double *x,
                         const double *y, const double *dy, double *dx)
{
    switch (act) {
    case CLNET_ACT_RELU:
        ref_act_relu_backward(n, x, dy, dx);
        break;
    case CLNET_ACT_LEAKY_RELU:
        ref_act_leaky_relu_backward(n, alpha, x, dy, dx);
        break;
    case CLNET_ACT_SIGMOID:
        ref_act_sigmoid_backward(n, y, dy, dx);
        break;
    case CLNET_ACT_TANH:
        ref_act_tanh_backward(n, y, dy, dx);
        break;
    case CLNET_ACT_RELU6:
        ref_act_relu6_backward(n, x, dy, dx);
        break;
    case CLNET_ACT_HARD_SWISH:
        ref_act_hard_swish_backward(n, x, dy, dx);
        break;
    default:
        memcpy(dx, dy, n * sizeof *dx);
        break;
    }
}

static tolerance act_tol(clnet_activation act, int backward)
{
    if (act == CLNET_ACT_SIGMOID)
        return backward ? tol_sigmoid_bwd : tol_sigmoid;
    if (act == CLNET_ACT_TANH)
        return backward ? tol_tanh_bwd : tol_tanh;
    if (act == CLNET_ACT_HARD_SWISH)
        return backward ? tol_hard_swish_bwd : tol_hard_swish;
    return tol_bitwise;
}

/* Inputs spanning each activation's interesting range; relu-like ones
 * shifted so that about a third of the outputs are zero. */
static void act_input(clnet_activation act, float *x, size_t n, uint64_t seed)
{
    float lo = -1, hi = 2;
    if (act == CLNET_ACT_SIGMOID)
        lo = -12, hi = 12;
    else if (act == CLNET_ACT_TANH)
        lo = -5, hi = 5;
    else if (act == CLNET_ACT_RELU6) /* a fifth below 0, a fifth above 6 */
        lo = -2, hi = 8;
    else if (act == CLNET_ACT_HARD_SWISH) /* a sixth below -3, a sixth above 3 */
        lo = -4.5f, hi = 4.5f;
    fill_uniform(x, n, lo, hi, &seed);
    x[0] = 0.75f; /* n = 1 must not be a zero case */
}

static const int64_t act_sizes[] = { 1, 3, 7, 31, 33, 4097, 100003, 3000017 };
#define NACT_SIZES (sizeof act_sizes / sizeof act_sizes[0])

START_TEST(activation_forward_matches_reference)
{
    clnet_activation act = (clnet_activation)_i;
    clnet_context *ctx = test_context();
    for (size_t k = 0; k < NACT_SIZES - (test_long() ? 0 : 1); k++) {
        int64_t n = act_sizes[k];
        char label[96];
        snprintf(label, sizeof label, "%s forward n=%lld", clnet_activation_name(act),
                 (long long)n);
        float *x = host_f32((size_t)n), *got = host_f32((size_t)n);
        act_input(act, x, (size_t)n, 11 + k);
        double *dx = widen_f64(x, (size_t)n), *ref = host_f64((size_t)n);
        ref_forward(act, alpha_leaky, (size_t)n, dx, ref);
        trust(ref, (size_t)n, act <= CLNET_ACT_LEAKY_RELU || act == CLNET_ACT_RELU6 ? 0.5 : 0.3,
              label);
        clnet_tensor *tx = tensor_from(ctx, 1, &n, x);
        guarded g1, g2;
        guarded_create(ctx, 1, &n, &g1);
        guarded_create(ctx, 1, &n, &g2);
        CK_OK(ctx, clnet_activation_forward(act, alpha_leaky, tx, g1.view));
        CK_OK(ctx, clnet_activation_forward(act, alpha_leaky, tx, g2.view));
        guard_check(ctx, &g1, label);
        download(ctx, g1.view, got, (size_t)n);
        ck_assert_msg(compare_f32(label, got, ref, (size_t)n, act_tol(act, 0)) == 0, "%s", label);
        ck_assert_msg(rel_error(got, ref, (size_t)n) < 1e-5, "%s: relative error", label);
        expect_unchanged(ctx, tx, x, (size_t)n, label);
        expect_same_bits(ctx, g1.view, g2.view, (size_t)n, label);
        guarded_destroy(&g1);
        guarded_destroy(&g2);
        clnet_tensor_destroy(tx);
        free(x), free(got), free(dx), free(ref);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(activation_backward_matches_reference)
{
    clnet_activation act = (clnet_activation)_i;
    int from_y = act == CLNET_ACT_SIGMOID || act == CLNET_ACT_TANH;
    clnet_context *ctx = test_context();
    for (size_t k = 0; k < NACT_SIZES - (test_long() ? 0 : 1); k++) {
        int64_t n = act_sizes[k];
        size_t nn = (size_t)n;
        char label[96];
        snprintf(label, sizeof label, "%s backward n=%lld", clnet_activation_name(act),
                 (long long)n);
        float *x = host_f32(nn), *y = host_f32(nn), *dy = host_f32(nn), *got = host_f32(nn);
        uint64_t seed = 500 + k;
        act_input(act, x, nn, seed);
        fill_uniform(dy, nn, -1, 1, &seed);
        double *dxx = widen_f64(x, nn), *dyy = host_f64(nn), *ddy = widen_f64(dy, nn),
               *ref = host_f64(nn);
        ref_forward(act, alpha_leaky, nn, dxx, dyy);
        for (size_t i = 0; i < nn; i++) /* the saved y, as the device would hold it */
            y[i] = (float)dyy[i], dyy[i] = y[i];
        ref_backward(act, alpha_leaky, nn, dxx, dyy, ddy, ref);
        trust(ref, nn, act == CLNET_ACT_RELU || act == CLNET_ACT_RELU6 ? 0.5 : 0.3, label);
        clnet_tensor *tx = tensor_from(ctx, 1, &n, x), *ty = tensor_from(ctx, 1, &n, y);
        clnet_tensor *tdy = tensor_from(ctx, 1, &n, dy);
        guarded g1, g2;
        guarded_create(ctx, 1, &n, &g1);
        guarded_create(ctx, 1, &n, &g2);
        /* First with the unused saved tensor NULL, then with both given. */
        CK_OK(ctx, clnet_activation_backward(act, alpha_leaky, from_y ? NULL : tx,
                                             from_y ? ty : NULL, tdy, g1.view));
        CK_OK(ctx, clnet_activation_backward(act, alpha_leaky, tx, ty, tdy, g2.view));
        guard_check(ctx, &g1, label);
        download(ctx, g1.view, got, nn);
        ck_assert_msg(compare_f32(label, got, ref, nn, act_tol(act, 1)) == 0, "%s", label);
        ck_assert_msg(rel_error(got, ref, nn) < 1e-5, "%s: relative error", label);
        expect_unchanged(ctx, tx, x, nn, label);
        expect_unchanged(ctx, ty, y, nn, label);
        expect_unchanged(ctx, tdy, dy, nn, label);
        expect_same_bits(ctx, g1.view, g2.view, nn, label);
        guarded_destroy(&g1);
        guarded_destroy(&g2);
        clnet_tensor_destroy(tx), clnet_tensor_destroy(ty), clnet_tensor_destroy(tdy);
        free(x), free(y), free(dy), free(got), free(dxx), free(dyy), free(ddy), free(ref);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(activation_in_place_equals_out_of_place)
{
    clnet_context *ctx = test_context();
    int64_t n = 1000;
    float x[1000], dy[1000], want[1000], got[1000];
    for (int a = 0; a < NACTS; a++) {
        clnet_activation act = (clnet_activation)a;
        uint64_t seed = 77 + (uint64_t)a;
        act_input(act, x, 1000, seed);
        fill_uniform(dy, 1000, -1, 1, &seed);
        clnet_tensor *tx = tensor_from(ctx, 1, &n, x), *ty, *tdy = tensor_from(ctx, 1, &n, dy),
                     *tdx;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &ty));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &tdx));
        CK_OK(ctx, clnet_activation_forward(act, alpha_leaky, tx, ty));
        CK_OK(ctx, clnet_activation_backward(act, alpha_leaky, tx, ty, tdy, tdx));
        download(ctx, tdx, want, 1000);
        /* dx over dy, from an x that was overwritten by y for relu-like ones. */
        clnet_tensor *txy = tensor_from(ctx, 1, &n, x);
        CK_OK(ctx, clnet_activation_forward(act, alpha_leaky, txy, txy));
        expect_same_bits(ctx, txy, ty, 1000, clnet_activation_name(act));
        CK_OK(ctx, clnet_activation_backward(
                       act, alpha_leaky,
                       act <= CLNET_ACT_LEAKY_RELU || act == CLNET_ACT_RELU6 ? txy
                       : act == CLNET_ACT_HARD_SWISH ? tx /* y does not give x back */
                                                     : NULL,
                       txy, tdy, tdy));
        download(ctx, tdy, got, 1000);
        ck_assert_msg(memcmp(got, want, sizeof got) == 0, "%s: in-place backward differs",
                      clnet_activation_name(act));
        clnet_tensor_destroy(tx), clnet_tensor_destroy(ty), clnet_tensor_destroy(tdy);
        clnet_tensor_destroy(tdx), clnet_tensor_destroy(txy);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(activation_special_values_follow_policy)
{
    clnet_context *ctx = test_context();
    const float sp[] = { NAN,    -NAN,    INFINITY, -INFINITY, 0.0f,   -0.0f,  FLT_MAX, -FLT_MAX,
                         1e-40f, -1e-40f, FLT_MIN,  1e4f,      -1e4f,  100.0f, -100.0f, 88.8f,
                         -88.8f, 18.0f,   -18.0f,   10.0f,     -10.0f, 1.0f,   -1.0f };
    enum { NS = sizeof sp / sizeof sp[0] };
    int64_t n = NS;
    float got[NS], y[NS], dy[NS], dgot[NS];
    double dx[NS], ref[NS], dyd[NS], yd[NS], dref[NS];
    for (int i = 0; i < NS; i++)
        dx[i] = sp[i], dy[i] = (float)(i % 3) - 1.25f, dyd[i] = dy[i];
    clnet_tensor *tx = tensor_from(ctx, 1, &n, sp), *tdy = tensor_from(ctx, 1, &n, dy), *ty, *tdx;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &ty));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &tdx));
    const float alphas[] = { 0.01f, 0.2f };
    for (int a = 0; a < NACTS + 1; a++) {
        clnet_activation act = (clnet_activation)(a < NACTS ? a : CLNET_ACT_LEAKY_RELU);
        float alpha = alphas[a == NACTS];
        char label[64];
        snprintf(label, sizeof label, "%s (alpha %g) specials", clnet_activation_name(act), alpha);
        CK_OK(ctx, clnet_activation_forward(act, alpha, tx, ty));
        download(ctx, ty, got, NS);
        ref_forward(act, alpha, NS, dx, ref);
        ck_assert_msg(check_special(label, got, ref, act_tol(act, 0).rel, NS) == 0, "%s forward",
                      label);
        /* Backward from these x and the device's own y. */
        for (int i = 0; i < NS; i++)
            y[i] = got[i], yd[i] = got[i];
        CK_OK(ctx, clnet_activation_backward(act, alpha, tx, ty, tdy, tdx));
        download(ctx, tdx, dgot, NS);
        ref_backward(act, alpha, NS, dx, yd, dyd, dref);
        ck_assert_msg(check_special(label, dgot, dref, act_tol(act, 1).rel, NS) == 0, "%s backward",
                      label);
        (void)y;
    }
    /* The policy in words (act.h). */
    CK_OK(ctx, clnet_activation_forward(CLNET_ACT_RELU, 0, tx, ty));
    download(ctx, ty, got, NS);
    ck_assert(isnan(got[0]) && got[2] == INFINITY && got[3] == 0.0f && !signbit(got[5]));
    CK_OK(ctx, clnet_activation_forward(CLNET_ACT_SIGMOID, 0, tx, ty));
    download(ctx, ty, got, NS);
    ck_assert(isnan(got[0]) && got[2] == 1.0f && got[3] == 0.0f && got[6] == 1.0f &&
              got[7] == 0.0f && got[11] == 1.0f && got[12] == 0.0f && got[17] == 1.0f);
    CK_OK(ctx, clnet_activation_forward(CLNET_ACT_TANH, 0, tx, ty));
    download(ctx, ty, got, NS);
    ck_assert(isnan(got[1]) && got[2] == 1.0f && got[3] == -1.0f && signbit(got[5]) &&
              got[6] == 1.0f && got[7] == -1.0f && got[11] == 1.0f && got[12] == -1.0f);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(ty), clnet_tensor_destroy(tdy);
    clnet_tensor_destroy(tdx);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(activation_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t n = 8, m = 9;
    clnet_tensor *a, *b, *c, *ints, *big;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &ints));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &m, &big));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL",
             clnet_activation_forward(CLNET_ACT_RELU, 0, NULL, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: must not be NULL",
             clnet_activation_forward(CLNET_ACT_RELU, 0, a, NULL));
    ck_assert_int_eq(clnet_activation_forward(CLNET_ACT_RELU, 0, NULL, NULL),
                     CLNET_ERR_INVALID_ARG);
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (8) but expected 9 elements (as x)",
             clnet_activation_forward(CLNET_ACT_TANH, 0, big, a));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "float32", clnet_activation_forward(CLNET_ACT_TANH, 0, ints, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "act = 9",
             clnet_activation_forward((clnet_activation)9, 0, a, b));
    ck_assert_str_eq(clnet_activation_name((clnet_activation)9), "unknown");
    /* Softmax is in the enum (a layer's activation) but not elementwise. */
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "softmax is not elementwise",
             clnet_activation_forward(CLNET_ACT_SOFTMAX, 0, a, b));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "softmax is not elementwise",
             clnet_activation_backward(CLNET_ACT_SOFTMAX, 0, a, b, b, c));
    ck_assert_str_eq(clnet_activation_name(CLNET_ACT_SOFTMAX), "softmax");
    ck_assert_str_eq(clnet_activation_name(CLNET_ACT_LEAKY_RELU), "leaky_relu");
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL (relu backward reads x)",
             clnet_activation_backward(CLNET_ACT_RELU, 0, NULL, a, b, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: must not be NULL (sigmoid backward reads y)",
             clnet_activation_backward(CLNET_ACT_SIGMOID, 0, a, NULL, b, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dy: must not be NULL",
             clnet_activation_backward(CLNET_ACT_TANH, 0, NULL, a, NULL, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (9) but expected 8 elements (as dx)",
             clnet_activation_backward(CLNET_ACT_TANH, 0, NULL, a, big, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE,
             "x: shape (9) but expected 8 elements (as dx)", /* given but unused: still checked */
             clnet_activation_backward(CLNET_ACT_TANH, 0, big, a, b, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dx: dtype int32 but expected float32",
             clnet_activation_backward(CLNET_ACT_NONE, 0, NULL, NULL, a, ints));
    CK_OK(ctx, clnet_activation_backward(CLNET_ACT_NONE, 0, NULL, NULL, a, b));
    /* Outputs may alias inputs exactly, not in part. */
    clnet_tensor *p, *q;
    CK_OK(ctx, clnet_tensor_slice(big, 0, 8, &p));
    CK_OK(ctx, clnet_tensor_slice(big, 1, 8, &q));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: overlaps x in part",
             clnet_activation_forward(CLNET_ACT_RELU, 0, p, q));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: overlaps dy in part",
             clnet_activation_backward(CLNET_ACT_RELU, 0, a, NULL, p, q));
    /* Another context's tensor. */
    clnet_context *other = test_context();
    clnet_tensor *foreign;
    CK_OK(other, clnet_tensor_create(other, CLNET_F32, 1, &n, &foreign));
    CK_FAILS(other, CLNET_ERR_INVALID_ARG, "y: belongs to another context",
             clnet_activation_forward(CLNET_ACT_RELU, 0, foreign, a));
    clnet_tensor_destroy(foreign);
    clnet_context_destroy(other);
    /* Empty tensors: nothing to do, success. */
    int64_t zero = 0;
    clnet_tensor *e1, *e2;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &zero, &e1));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &zero, &e2));
    CK_OK(ctx, clnet_activation_forward(CLNET_ACT_TANH, 0, e1, e2));
    CK_OK(ctx, clnet_activation_backward(CLNET_ACT_TANH, 0, NULL, e1, e1, e2));
    clnet_tensor_destroy(e1), clnet_tensor_destroy(e2);
    clnet_tensor_destroy(p), clnet_tensor_destroy(q);
    clnet_tensor_destroy(a), clnet_tensor_destroy(b), clnet_tensor_destroy(c);
    clnet_tensor_destroy(ints), clnet_tensor_destroy(big);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Softmax ---------------------------------------------------------------------- */

/* Per-element bounds (see the table at the top) for rows x cols data. */
static void softmax_bounds(int log_, int rows, int cols, double depth, const double *x,
                           const double *y, double *bound)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * (size_t)cols;
        double m = xr[0], R = 0;
        for (int j = 1; j < cols; j++)
            m = fmax(m, xr[j]);
        for (int j = 0; j < cols; j++)
            R = fmax(R, fmin(m - xr[j], 110.0));
        for (int j = 0; j < cols; j++) {
            size_t k = (size_t)r * (size_t)cols + (size_t)j;
            bound[k] = (2 * depth + 2 * R + 16) * U * fabs(y[k]) + TINY;
        }
    }
    (void)log_;
}

static void softmax_bwd_bounds(int log_, int rows, int cols, double depth, const double *y,
                               const double *dy, double *bound)
{
    for (int r = 0; r < rows; r++) {
        size_t o = (size_t)r * (size_t)cols;
        double A = 0, B = 0;
        for (int j = 0; j < cols; j++)
            A += fabs(dy[o + j] * y[o + j]), B += fabs(dy[o + j]);
        for (int j = 0; j < cols; j++) {
            double yj = y[o + j], g = fabs(dy[o + j]);
            bound[o + j] = log_ ? U * (exp(yj) * (2 * depth + 12) * B + 2 * g)
                                : U * fabs(yj) * (2 * (depth + 2) * A + 2 * (g + A));
            bound[o + j] += TINY;
        }
    }
}

typedef struct shape2 {
    int ndim;
    int64_t dims[3];
} shape2;

static const shape2 sm_shapes[] = {
    { 2, { 1, 1 } },     { 2, { 1, 10 } },     { 2, { 3, 7 } }, { 2, { 32, 10 } },
    { 2, { 33, 1000 } }, { 3, { 2, 3, 65 } },  { 1, { 31 } },   { 2, { 7, 4097 } },
    { 2, { 1000, 10 } }, { 2, { 2, 100003 } },
};
#define NSM_QUICK 9 /* all: each takes milliseconds */
#define NSM (sizeof sm_shapes / sizeof sm_shapes[0])

/* Forward and backward of softmax (log_ = 0) or log-softmax, one variant. */
static void softmax_case(clnet_context *ctx, const shape2 *s, int log_, int variant, uint64_t seed)
{
    int cols = (int)s->dims[s->ndim - 1];
    int rows = 1;
    for (int i = 0; i + 1 < s->ndim; i++)
        rows *= (int)s->dims[i];
    size_t n = (size_t)rows * (size_t)cols;
    double depth = row_depth(variant, cols, clnet__context_profile(ctx)->wg_size);
    char label[128];
    snprintf(label, sizeof label, "%s %dx%d %s", log_ ? "log_softmax" : "softmax", rows, cols,
             variant == CLNET_V_ROW_GROUP ? "group" : "item");
    CK_OK(ctx, clnet__force_variant(ctx, "softmax.forward", variant));
    CK_OK(ctx, clnet__force_variant(ctx, "softmax.backward", variant));
    float *x = host_f32(n), *dy = host_f32(n), *y = host_f32(n), *got = host_f32(n);
    fill_uniform(x, n, -4, 4, &seed);
    fill_uniform(dy, n, -1, 1, &seed);
    double *xd = widen_f64(x, n), *dyd = widen_f64(dy, n), *ref = host_f64(n), *bound = host_f64(n);
    (log_ ? ref_log_softmax_forward : ref_softmax_forward)(rows, cols, xd, ref);
    softmax_bounds(log_, rows, cols, depth, xd, ref, bound);
    clnet_tensor *tx = tensor_from(ctx, s->ndim, s->dims, x),
                 *tdy = tensor_from(ctx, s->ndim, s->dims, dy);
    guarded g1, g2;
    guarded_create(ctx, s->ndim, s->dims, &g1);
    guarded_create(ctx, s->ndim, s->dims, &g2);
    CK_OK(ctx, (log_ ? clnet_log_softmax_forward : clnet_softmax_forward)(tx, g1.view));
    CK_OK(ctx, (log_ ? clnet_log_softmax_forward : clnet_softmax_forward)(tx, g2.view));
    guard_check(ctx, &g1, label);
    download(ctx, g1.view, got, n);
    ck_assert_msg(compare_bounds(label, got, ref, bound, n) == 0, "%s forward", label);
    /* docs/ops.md's rel_error < 1e-5, except for the item variant forced onto
     * rows longer than 4096: its sequential row sum drifts (within the
     * bound); the dispatcher gives rows longer than WG to work-groups. */
    if (variant == CLNET_V_ROW_GROUP || cols <= 4096)
        ck_assert_msg(rel_error(got, ref, n) < 1e-5, "%s forward: relative error", label);
    expect_same_bits(ctx, g1.view, g2.view, n, label);
    expect_unchanged(ctx, tx, x, n, label);
    /* Backward from the float y the forward produced. */
    memcpy(y, got, n * sizeof *y);
    double *yd = widen_f64(y, n);
    clnet_tensor *ty = tensor_from(ctx, s->ndim, s->dims, y);
    (log_ ? ref_log_softmax_backward : ref_softmax_backward)(rows, cols, yd, dyd, ref);
    softmax_bwd_bounds(log_, rows, cols, depth, yd, dyd, bound);
    if (n > 1) /* a single column's gradient is exactly 0 */
        trust(ref, n, 0.3, label);
    CK_OK(ctx, (log_ ? clnet_log_softmax_backward : clnet_softmax_backward)(ty, tdy, g1.view));
    CK_OK(ctx, (log_ ? clnet_log_softmax_backward : clnet_softmax_backward)(ty, tdy, g2.view));
    guard_check(ctx, &g1, label);
    download(ctx, g1.view, got, n);
    ck_assert_msg(compare_bounds(label, got, ref, bound, n) == 0, "%s backward", label);
    expect_same_bits(ctx, g1.view, g2.view, n, label);
    expect_unchanged(ctx, ty, y, n, label);
    expect_unchanged(ctx, tdy, dy, n, label);
    guarded_destroy(&g1), guarded_destroy(&g2);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tdy), clnet_tensor_destroy(ty);
    free(x), free(dy), free(y), free(got), free(xd), free(dyd), free(ref), free(bound), free(yd);
}

START_TEST(softmax_matches_reference)
{
    clnet_context *ctx = test_context();
    if ((size_t)_i < NSM_QUICK || test_long())
        for (int log_ = 0; log_ < 2; log_++)
            for (int v = 0; v < 2; v++)
                softmax_case(ctx, &sm_shapes[_i], log_, v, 1000 + 10 * (uint64_t)_i);
    clnet_context_destroy(ctx);
}
END_TEST

/* (n, c, s) <-> (n * s, c): the channel softmax is the row softmax of the
 * transposed data, so the row reference and bounds apply (depth c: one
 * work-item sums a column in order). */
static void to_rows(const double *a, double *b, int n, int c, int sp, int back)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (int p = 0; p < sp; p++) {
                size_t nchw = ((size_t)i * c + k) * sp + p, rows = ((size_t)i * sp + p) * c + k;
                if (back)
                    b[nchw] = a[rows];
                else
                    b[rows] = a[nchw];
            }
}

static void softmax_channels_case(clnet_context *ctx, int ndim, const int64_t *dims, uint64_t seed)
{
    int n = (int)dims[0], c = (int)dims[1], sp = 1;
    for (int i = 2; i < ndim; i++)
        sp *= (int)dims[i];
    size_t total = (size_t)n * c * sp;
    char label[96];
    snprintf(label, sizeof label, "softmax channels n%d c%d s%d", n, c, sp);
    float *x = host_f32(total), *dy = host_f32(total), *got = host_f32(total),
          *got2 = host_f32(total);
    fill_uniform(x, total, -4, 4, &seed);
    fill_uniform(dy, total, -1, 1, &seed);
    double *xd = widen_f64(x, total), *dyd = widen_f64(dy, total), *xr = host_f64(total),
           *rr = host_f64(total), *br = host_f64(total), *ref = host_f64(total),
           *bound = host_f64(total), *dyr = host_f64(total);
    int rows = n * sp;
    to_rows(xd, xr, n, c, sp, 0);
    ref_softmax_forward(rows, c, xr, rr);
    softmax_bounds(0, rows, c, c, xr, rr, br);
    to_rows(rr, ref, n, c, sp, 1);
    to_rows(br, bound, n, c, sp, 1);
    clnet_tensor *tx = tensor_from(ctx, ndim, dims, x), *tdy = tensor_from(ctx, ndim, dims, dy);
    guarded g1, g2;
    guarded_create(ctx, ndim, dims, &g1);
    guarded_create(ctx, ndim, dims, &g2);
    CK_OK(ctx, clnet_softmax_channels_forward(tx, g1.view));
    guard_check(ctx, &g1, label);
    download(ctx, g1.view, got, total);
    ck_assert_msg(compare_bounds(label, got, ref, bound, total) == 0, "%s forward", label);
    expect_unchanged(ctx, tx, x, total, label);
    /* In place: the same bits. */
    CK_OK(ctx, clnet_softmax_channels_forward(tx, tx));
    download(ctx, tx, got2, total);
    ck_assert_msg(memcmp(got, got2, total * sizeof *got) == 0, "%s: in place differs", label);
    /* Backward from the float y the forward produced. */
    double *yd = widen_f64(got, total), *yr = host_f64(total);
    clnet_tensor *ty = tensor_from(ctx, ndim, dims, got);
    to_rows(yd, yr, n, c, sp, 0);
    to_rows(dyd, dyr, n, c, sp, 0);
    ref_softmax_backward(rows, c, yr, dyr, rr);
    softmax_bwd_bounds(0, rows, c, c, yr, dyr, br);
    to_rows(rr, ref, n, c, sp, 1);
    to_rows(br, bound, n, c, sp, 1);
    if (c > 1) /* a single channel's gradient is exactly 0 */
        trust(ref, total, 0.3, label);
    CK_OK(ctx, clnet_softmax_channels_backward(ty, tdy, g2.view));
    guard_check(ctx, &g2, label);
    download(ctx, g2.view, got2, total);
    ck_assert_msg(compare_bounds(label, got2, ref, bound, total) == 0, "%s backward", label);
    expect_unchanged(ctx, ty, got, total, label);
    expect_unchanged(ctx, tdy, dy, total, label);
    CK_OK(ctx, clnet_softmax_channels_backward(ty, tdy, tdy)); /* dx over dy */
    download(ctx, tdy, got, total);
    ck_assert_msg(memcmp(got, got2, total * sizeof *got) == 0, "%s: backward in place differs",
                  label);
    guarded_destroy(&g1), guarded_destroy(&g2);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tdy), clnet_tensor_destroy(ty);
    free(x), free(dy), free(got), free(got2), free(xd), free(dyd), free(xr), free(rr), free(br);
    free(ref), free(bound), free(dyr), free(yd), free(yr);
}

START_TEST(softmax_channels_matches_reference)
{
    clnet_context *ctx = test_context();
    static const int64_t shapes[][4] = {
        { 1, 1, 1, 1 }, { 2, 3, 5, 7 }, { 1, 33, 2, 3 }, { 3, 7, 1, 31 }, { 1, 10, 28, 28 }
    };
    for (int i = 0; i < 5; i++)
        softmax_channels_case(ctx, 4, shapes[i], 300 + (uint64_t)i);
    softmax_channels_case(ctx, 2, (int64_t[]){ 3, 7 }, 310);     /* (n, c): the last axis */
    softmax_channels_case(ctx, 3, (int64_t[]){ 1, 4, 33 }, 311); /* (n, c, s) */
    clnet_context_destroy(ctx);
}
END_TEST

/* Exact aliasing (y over x, dx over dy, dx over y) gives the same bits. */
START_TEST(softmax_in_place_equals_out_of_place)
{
    clnet_context *ctx = test_context();
    int64_t shape[2] = { 5, 130 };
    enum { N = 5 * 130 };
    static float x[N], dy[N], want[N], got[N];
    uint64_t seed = 9;
    fill_uniform(x, N, -3, 3, &seed);
    fill_uniform(dy, N, -1, 1, &seed);
    for (int v = 0; v < 4; v++) {
        int variant = v & 1, log_ = v >> 1;
        CK_OK(ctx, clnet__force_variant(ctx, "softmax.forward", variant));
        CK_OK(ctx, clnet__force_variant(ctx, "softmax.backward", variant));
        clnet_status (*fwd)(const clnet_tensor *, clnet_tensor *) =
            log_ ? clnet_log_softmax_forward : clnet_softmax_forward;
        clnet_status (*bwd)(const clnet_tensor *, const clnet_tensor *, clnet_tensor *) =
            log_ ? clnet_log_softmax_backward : clnet_softmax_backward;
        clnet_tensor *tx = tensor_from(ctx, 2, shape, x), *ty,
                     *tdy = tensor_from(ctx, 2, shape, dy);
        clnet_tensor *tdx;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &ty));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &tdx));
        CK_OK(ctx, fwd(tx, ty));
        CK_OK(ctx, bwd(ty, tdy, tdx));
        CK_OK(ctx, fwd(tx, tx));
        expect_same_bits(ctx, tx, ty, N, "forward in place");
        download(ctx, tdx, want, N);
        CK_OK(ctx, bwd(ty, tdy, tdy));
        download(ctx, tdy, got, N);
        ck_assert_msg(memcmp(got, want, sizeof got) == 0, "backward: dx over dy differs");
        CK_OK(ctx, bwd(tx, tdx, tx)); /* tx holds y; tdx still holds dy's gradient: any dy */
        CK_OK(ctx, bwd(ty, tdx, tdy));
        expect_same_bits(ctx, tx, tdy, N, "backward: dx over y");
        clnet_tensor_destroy(tx), clnet_tensor_destroy(ty), clnet_tensor_destroy(tdy);
        clnet_tensor_destroy(tdx);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Large logits, infinities, NaN and ties, in both variants (act.h's policy). */
START_TEST(softmax_special_rows_follow_policy)
{
    clnet_context *ctx = test_context();
    enum { C = 4, R = 10 };
    /* Row 6: log-softmax of the maximum is -6.2e-9, which log(1 + small)
     * would round to 0; the log1p form keeps it to a few ulp. */
    const float x[R][C] = {
        { 1e4f, -1e4f, 0.0f, 5e3f },    { FLT_MAX, -FLT_MAX, 0.0f, 1.0f },
        { 80.0f, -80.0f, 0.0f, 79.0f }, { -INFINITY, 1.0f, 2.0f, 3.0f },
        { 3.0f, 3.0f, 1.0f, 3.0f },     { 1e-40f, -0.0f, 0.0f, -1e-40f },
        { 20.0f, 0.0f, 0.0f, 0.0f },    { NAN, 1.0f, 2.0f, 3.0f },
        { INFINITY, 1.0f, 2.0f, 3.0f }, { -INFINITY, -INFINITY, -INFINITY, -INFINITY },
    };
    int64_t shape[2] = { R, C };
    float got[R * C];
    double xd[R * C], ref[R * C];
    for (int i = 0; i < R * C; i++)
        xd[i] = x[i / C][i % C];
    clnet_tensor *tx = tensor_from(ctx, 2, shape, &x[0][0]), *ty;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &ty));
    for (int v = 0; v < 4; v++) {
        int variant = v & 1, log_ = v >> 1;
        char label[64];
        snprintf(label, sizeof label, "%s specials %s", log_ ? "log_softmax" : "softmax",
                 variant ? "group" : "item");
        CK_OK(ctx, clnet__force_variant(ctx, "softmax.forward", variant));
        CK_OK(ctx, (log_ ? clnet_log_softmax_forward : clnet_softmax_forward)(tx, ty));
        download(ctx, ty, got, R * C);
        (log_ ? ref_log_softmax_forward : ref_softmax_forward)(R, C, xd, ref);
        /* Rows 7-9 are NaN by policy (the double reference agrees: NaN, or
         * Inf - Inf, enters every row sum). */
        for (int i = 7 * C; i < R * C; i++)
            ck_assert(isnan(ref[i]));
        ck_assert_msg(check_special(label, got, ref, 1e-5, R * C) == 0, "%s", label);
        ck_assert(log_ ? got[3 * C] == -INFINITY : got[3 * C] == 0.0f);
    }
    clnet_tensor_destroy(tx), clnet_tensor_destroy(ty);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(softmax_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t s37[2] = { 3, 7 }, s73[2] = { 7, 3 }, s21 = 21;
    clnet_tensor *a, *b, *c, *flat, *ints;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s37, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s37, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s73, &c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &s21, &flat));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 2, s37, &ints));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (7, 3) but expected (3, 7)",
             clnet_softmax_forward(a, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (21) but expected (3, 7)",
             clnet_log_softmax_forward(a, flat));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL", clnet_softmax_forward(NULL, a));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: dtype int32 but expected float32",
             clnet_softmax_forward(a, ints));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (7, 3) but expected (3, 7)",
             clnet_softmax_backward(a, c, b));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dx: shape (7, 3)", clnet_log_softmax_backward(a, b, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dy: must not be NULL",
             clnet_log_softmax_backward(a, NULL, b));
    clnet_tensor_destroy(a), clnet_tensor_destroy(b), clnet_tensor_destroy(c);
    clnet_tensor_destroy(flat), clnet_tensor_destroy(ints);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Bias -------------------------------------------------------------------------- */

/* Bias backward variants (src/ops/act.c): strided lanes of work-groups, or
 * runs of planes in float8 lanes; -1: the library's choice. */

/* The longest chain of roundings of db's sums under variant v: groups, a
 * lane's strided share, the tree and the chunks (bounded by m / WG +
 * log2(WG) + 2 as before); planes, a float8 lane's run / 8 terms, a tail of
 * up to 7, 4 more to combine, then the channel's n * runs partials. */
static double bias_depth(int v, int nb, int hw, size_t wg)
{
    double m = (double)nb * hw;
    if (v != CLNET_V_BIAS_PLANES)
        return ceil(m / (double)wg) + log2((double)wg) + 2;
    int run = hw < 256 ? hw : 256, runs = (hw + run - 1) / run;
    return ceil(run / 8.0) + 11 + (double)nb * runs;
}

static void bias_case(clnet_context *ctx, int nb, int c, int hw, int v, uint64_t seed)
{
    int side = hw == 9 ? 3 : hw == 676 ? 26 : 0;
    int64_t shape[4] = { nb, c, side, side };
    int ndim = hw == 1 ? 2 : 4;
    size_t n = (size_t)nb * (size_t)c * (size_t)hw, wg = clnet__context_profile(ctx)->wg_size;
    char label[96];
    snprintf(label, sizeof label, "bias n=%d c=%d hw=%d variant %d", nb, c, hw, v);
    CK_OK(ctx, clnet__force_variant(ctx, "bias.backward", v));
    float *x = host_f32(n), *b = host_f32((size_t)c), *got = host_f32(n);
    fill_uniform(x, n, -1, 1, &seed);
    fill_uniform(b, (size_t)c, -1, 1, &seed);
    double *xd = widen_f64(x, n), *bd = widen_f64(b, (size_t)c), *ref = host_f64(n);
    clnet_tensor *tx = tensor_from(ctx, ndim, shape, x), *tb;
    int64_t cc = c;
    tb = tensor_from(ctx, 1, &cc, b);
    guarded g1, g2;
    guarded_create(ctx, ndim, shape, &g1);
    guarded_create(ctx, ndim, shape, &g2);
    CK_OK(ctx, clnet_bias_add(tx, tb, g1.view));
    CK_OK(ctx, clnet_bias_add(tx, tb, g2.view));
    guard_check(ctx, &g1, label);
    download(ctx, g1.view, got, n);
    ref_bias_forward(nb, c, hw, xd, bd, ref);
    ck_assert_msg(compare_f32(label, got, ref, n, tol_bitwise) == 0, "%s add", label);
    expect_same_bits(ctx, g1.view, g2.view, n, label);
    expect_unchanged(ctx, tx, x, n, label);
    expect_unchanged(ctx, tb, b, (size_t)c, label);
    /* In place. */
    CK_OK(ctx, clnet_bias_add(tx, tb, tx));
    expect_same_bits(ctx, tx, g1.view, n, label);
    /* Backward: x serves as dy. */
    guarded d1, d2;
    guarded_create(ctx, 1, &cc, &d1);
    guarded_create(ctx, 1, &cc, &d2);
    clnet_tensor *tdy = tensor_from(ctx, ndim, shape, x);
    CK_OK(ctx, clnet_bias_backward(tdy, d1.view));
    CK_OK(ctx, clnet_bias_backward(tdy, d2.view));
    guard_check(ctx, &d1, label);
    download(ctx, d1.view, got, (size_t)c);
    double *dbref = host_f64((size_t)c), *bound = host_f64((size_t)c);
    ref_bias_backward(nb, c, hw, xd, dbref);
    double depth = bias_depth(v, nb, hw, wg);
    for (int ch = 0; ch < c; ch++) {
        double abs_sum = 0;
        for (int i = 0; i < nb; i++)
            for (int e = 0; e < hw; e++)
                abs_sum += fabs(xd[((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw + (size_t)e]);
        bound[ch] = 2 * depth * U * abs_sum;
    }
    ck_assert_msg(compare_bounds(label, got, dbref, bound, (size_t)c) == 0, "%s backward", label);
    expect_same_bits(ctx, d1.view, d2.view, (size_t)c, label);
    expect_unchanged(ctx, tdy, x, n, label);
    guarded_destroy(&g1), guarded_destroy(&g2), guarded_destroy(&d1), guarded_destroy(&d2);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tb), clnet_tensor_destroy(tdy);
    free(x), free(b), free(got), free(xd), free(bd), free(ref), free(dbref), free(bound);
}

START_TEST(bias_matches_reference)
{
    static const int cs[] = { 1, 3, 7, 32 }, hws[] = { 1, 9, 676 }, ns[] = { 1, 3 };
    clnet_context *ctx = test_context();
    for (int v = CLNET_V_BIAS_GROUPS; v <= CLNET_V_BIAS_PLANES; v++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 2; k++)
                    bias_case(ctx, ns[k], cs[i], hws[j], v, 100 + 10 * (uint64_t)i + (uint64_t)j);
        bias_case(ctx, 5, 1000, 1, v, 7); /* (N, F) rows, many channels */
        bias_case(ctx, 64, 3, 676, v, 8); /* 43264 per channel: the two-level path */
        if (test_long())
            bias_case(ctx, 64, 32, 676, v, 9);
    }
    CK_OK(ctx, clnet__force_variant(ctx, "bias.backward", -1));
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bias_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t s4[4] = { 2, 3, 4, 4 }, s4b[4] = { 2, 3, 4, 5 }, three = 3, five = 5;
    clnet_tensor *x, *y, *b, *b5, *flat, *ints;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s4, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s4b, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &three, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &five, &b5));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &five, &flat));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &three, &ints));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (2, 3, 4, 5) but expected (2, 3, 4, 4)",
             clnet_bias_add(x, b, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: holds 5 elements, expected 3", clnet_bias_add(x, b5, x));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: shape (5) but expected at least 2 dims",
             clnet_bias_add(flat, b5, flat));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: dtype int32 but expected float32",
             clnet_bias_add(x, ints, x));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "b: must not be NULL", clnet_bias_add(x, NULL, x));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "db: holds 5 elements, expected 3", clnet_bias_backward(x, b5));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "db: must not be NULL", clnet_bias_backward(x, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "db: dtype int32 but expected float32",
             clnet_bias_backward(x, ints));
    /* db inside dy's storage. */
    clnet_tensor *whole, *inside;
    CK_OK(ctx, clnet_tensor_reshape(x, 1, (int64_t[]){ 96 }, &whole));
    CK_OK(ctx, clnet_tensor_slice(whole, 5, 3, &inside));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "db: overlaps dy", clnet_bias_backward(x, inside));
    /* No images: db = 0. */
    int64_t s0[2] = { 0, 3 };
    clnet_tensor *empty;
    float db[3] = { 1, 1, 1 };
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s0, &empty));
    CK_OK(ctx, clnet_bias_backward(empty, b));
    download(ctx, b, db, 3);
    ck_assert(db[0] == 0 && db[1] == 0 && db[2] == 0);
    CK_OK(ctx, clnet_bias_add(empty, b, empty));
    clnet_tensor_destroy(empty), clnet_tensor_destroy(inside), clnet_tensor_destroy(whole);
    clnet_tensor_destroy(x), clnet_tensor_destroy(y), clnet_tensor_destroy(b);
    clnet_tensor_destroy(b5), clnet_tensor_destroy(flat), clnet_tensor_destroy(ints);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Programs, comparator -------------------------------------------------------- */

/* Runs every op of the family once at rows x cols (bias as rows x cols x 2 x 2). */
static void run_all(clnet_context *ctx, int64_t rows, int64_t cols)
{
    int64_t shape[2] = { rows, cols }, s4[4] = { rows, cols, 2, 2 };
    clnet_tensor *x, *y, *z, *b, *big, *big2;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &z));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &cols, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s4, &big));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s4, &big2));
    CK_OK(ctx, clnet_tensor_rand_uniform(x, 1, 0, -1, 1));
    CK_OK(ctx, clnet_tensor_rand_uniform(big, 1, 0, -1, 1));
    for (int a = 0; a < NACTS; a++) {
        CK_OK(ctx, clnet_activation_forward((clnet_activation)a, 0.1f, x, y));
        CK_OK(ctx, clnet_activation_backward((clnet_activation)a, 0.1f, x, y, x, z));
    }
    for (int v = 0; v < 2; v++) {
        CK_OK(ctx, clnet__force_variant(ctx, "softmax.forward", v));
        CK_OK(ctx, clnet__force_variant(ctx, "softmax.backward", v));
        CK_OK(ctx, clnet_softmax_forward(x, y));
        CK_OK(ctx, clnet_log_softmax_forward(x, y));
        CK_OK(ctx, clnet_softmax_backward(y, x, z));
        CK_OK(ctx, clnet_log_softmax_backward(y, x, z));
    }
    CK_OK(ctx, clnet_bias_add(big, b, big2));
    CK_OK(ctx, clnet_bias_backward(big, b));
    CK_OK(ctx, clnet_context_finish(ctx));
    clnet_tensor_destroy(x), clnet_tensor_destroy(y), clnet_tensor_destroy(z);
    clnet_tensor_destroy(b), clnet_tensor_destroy(big), clnet_tensor_destroy(big2);
}

START_TEST(new_shapes_build_no_program)
{
    clnet_context *ctx = test_context();
    run_all(ctx, 3, 7);
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    run_all(ctx, 33, 100);
    run_all(ctx, 1, 1);
    run_all(ctx, 600, 20); /* bias: 2400 per channel, two levels */
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.programs_built, before.programs_built);
    ck_assert_uint_eq(after.programs_loaded, before.programs_loaded);
    ck_assert_uint_gt(after.kernel_launches, before.kernel_launches);
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative controls: check_bound must fail on an element off by twice its
 * bound, a NaN, an Inf, all zeros, and a non-finite reference. */
START_TEST(bounded_comparator_fails_when_it_should)
{
    double ref[4] = { 1.0, -2.0, 3e-3, 0.5 }, bound[4] = { 1e-6, 2e-6, 1e-9, 1e-7 };
    float got[4];
    for (int i = 0; i < 4; i++)
        got[i] = (float)ref[i];
    ck_assert_uint_eq(compare_bounds("control", got, ref, bound, 4), 0);
    got[1] = (float)(ref[1] - 2 * bound[1]);
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 4), 1);
    got[1] = (float)ref[1];
    got[2] = NAN;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 4), 1);
    got[2] = INFINITY;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 4), 1);
    float zeros[4] = { 0, 0, 0, 0 };
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", zeros, ref, bound, 4), 4);
    got[2] = (float)ref[2];
    ref[3] = NAN;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 4), 1);
    /* check_special: wrong sign of zero, NaN for a number, a number for NaN. */
    double sref[3] = { -0.0, 1.0, NAN };
    float sgot[3] = { 0.0f, 1.0f, NAN };
    ck_assert_uint_eq(check_special("control (expected to fail)", sgot, sref, 0, 3), 1);
    sgot[0] = -0.0f, sgot[1] = NAN;
    ck_assert_uint_eq(check_special("control (expected to fail)", sgot, sref, 0, 3), 1);
    sgot[1] = 1.0f, sgot[2] = 1.0f;
    ck_assert_uint_eq(check_special("control (expected to fail)", sgot, sref, 0, 3), 1);
}
END_TEST

Suite *suite_act(void)
{
    Suite *s = suite_create("act");
    TCase *tc = tcase_create("act");
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bounded_comparator_fails_when_it_should);
    tcase_add_loop_test(tc, activation_forward_matches_reference, 0, NACTS);
    tcase_add_loop_test(tc, activation_backward_matches_reference, 0, NACTS);
    tcase_add_test(tc, activation_in_place_equals_out_of_place);
    tcase_add_test(tc, activation_special_values_follow_policy);
    tcase_add_test(tc, activation_bad_arguments_are_named);
    tcase_add_loop_test(tc, softmax_matches_reference, 0, (int)NSM);
    tcase_add_test(tc, softmax_in_place_equals_out_of_place);
    tcase_add_test(tc, softmax_channels_matches_reference);
    tcase_add_test(tc, softmax_special_rows_follow_policy);
    tcase_add_test(tc, softmax_bad_arguments_are_named);
    tcase_add_test(tc, bias_matches_reference);
    tcase_add_test(tc, bias_bad_arguments_are_named);
    tcase_add_test(tc, new_shapes_build_no_program);
    suite_add_tcase(s, tc);
    return s;
}
