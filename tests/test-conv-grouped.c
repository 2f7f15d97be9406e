/* clnet tests — grouped and depthwise convolution (clnet/conv_grouped.h)
 * against the float64 reference (tests/ref-conv-grouped.c): forward, data
 * and filter gradients in exact and real mode, every variant forced, guard
 * bands, unchanged inputs, determinism, special values, empty tensors and
 * bad arguments; the reference itself against finite differences and the
 * dense reference. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref-conv-grouped.h"
#include "runtime/runtime.h"

/* Tolerances, one per mode (docs/testing.md):
 * - exact mode: bitwise. Inputs are integers in [-8, 8], so every partial
 *   sum is an integer of magnitude at most 64 * T for T terms (T <= 2178
 *   here): below 2^24, exact in any order.
 * - real mode (uniform [-1, 1]): |got - ref| <= 2 * T * 2^-24 * S_i, S_i the
 *   reference on the absolute values: recursive summation's bound with a
 *   factor 2 for the product roundings. Plus rel_error < 1e-5 overall. */
#define REL_ERROR_MAX 1e-5

/* The implementations of src/ops/conv_grouped.c ("conv2d_grouped.<dir>"). */
enum { VAR_DIRECT = 0, VAR_DENSE = 1 };

typedef struct gcase {
    const char *name;
    int n, c, h, w, k, groups, r, s;
    int sh, sw, pt, pb, pl, pr, dh, dw;
    int bias;
} gcase;

/* name n c h w k groups r s sh sw pt pb pl pr dh dw bias */
static const gcase cases[] = {
    { "1x1 image c1 (groups 1)", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1 },
    { "depthwise c3 3x3 pad 1 7x7", 1, 3, 7, 7, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    { "depthwise c7 x2 stride 2 31x33 b2", 2, 7, 31, 33, 14, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1 },
    { "depthwise c33 stride 2 asym pad", 1, 33, 7, 7, 33, 33, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 0 },
    { "depthwise c31 5x5 dilation 2", 1, 31, 7, 7, 31, 31, 5, 5, 1, 1, 4, 4, 4, 4, 2, 2, 1 },
    { "depthwise c7 x3 3x1 dilation 2x1", 2, 7, 7, 3, 21, 7, 3, 1, 1, 1, 2, 2, 0, 0, 2, 1, 0 },
    { "groups 3 c9 k6 3x3 b2", 2, 9, 7, 7, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    { "groups 2 c4 k6 1x1", 1, 4, 3, 3, 6, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0 },
    { "groups 3 c3 k33 2x3 stride 2x1", 1, 3, 31, 7, 33, 3, 2, 3, 2, 1, 1, 0, 0, 2, 1, 1, 1 },
    { "groups 1 c3 k7 3x3 b2", 2, 3, 7, 7, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    { "depthwise 3x3 pad 1 on 1x1 b2", 2, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    { "mobilenet dw c32 stride 2 33x33", 1, 32, 33, 33, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0 },
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* ---- Problems ------------------------------------------------------------ */

enum { A_X, A_W, A_Y, A_B, NARR }; /* x, w, y-shaped, bias (K) */

typedef struct problem {
    gcase gc;
    ref_conv2d rp;
    clnet_conv2d_params p;
    int exact;
    uint64_t seed;
    int64_t shape[NARR][4];
    int ndim[NARR];
    size_t n[NARR];
    float *f[NARR];
    double *d[NARR], *a[NARR]; /* values and absolute values */
    clnet_tensor *t[NARR];
} problem;

static void problem_make(clnet_context *ctx, const gcase *gc, int exact, uint64_t seed, problem *pb)
{
    memset(pb, 0, sizeof *pb);
    pb->gc = *gc;
    pb->exact = exact;
    pb->seed = seed;
    pb->p = (clnet_conv2d_params){ gc->sh, gc->sw, gc->pt, gc->pb, gc->pl,
                                   gc->pr, gc->dh, gc->dw, 0,      0 };
    pb->rp = (ref_conv2d){ gc->n,  gc->c,  gc->h,  gc->w,  gc->k,  gc->r,  gc->s, gc->sh,
                           gc->sw, gc->pt, gc->pb, gc->pl, gc->pr, gc->dh, gc->dw };
    int oh = ref_conv2d_out_h(&pb->rp), ow = ref_conv2d_out_w(&pb->rp);
    const int64_t shapes[NARR][4] = { { gc->n, gc->c, gc->h, gc->w },
                                      { gc->k, gc->c / gc->groups, gc->r, gc->s },
                                      { gc->n, gc->k, oh, ow },
                                      { gc->k } };
    uint64_t state = seed;
    for (int i = 0; i < NARR; i++) {
        pb->ndim[i] = i == A_B ? 1 : 4;
        pb->n[i] = 1;
        for (int j = 0; j < pb->ndim[i]; j++) {
            pb->shape[i][j] = shapes[i][j];
            pb->n[i] *= (size_t)shapes[i][j];
        }
        pb->f[i] = host_f32(pb->n[i]);
        pb->d[i] = host_f64(pb->n[i]);
        pb->a[i] = host_f64(pb->n[i]);
        if (exact)
            for (size_t e = 0; e < pb->n[i]; e++)
                pb->f[i][e] = (float)((int)(test_rng(&state) % 17) - 8);
        else
            fill_uniform(pb->f[i], pb->n[i], -1, 1, &state);
        for (size_t e = 0; e < pb->n[i]; e++) {
            pb->d[i][e] = pb->f[i][e];
            pb->a[i][e] = fabs(pb->d[i][e]);
        }
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, pb->ndim[i], pb->shape[i], &pb->t[i]));
        if (pb->n[i])
            CK_OK(ctx, clnet_tensor_upload(pb->t[i], pb->f[i], pb->n[i] * sizeof(float)));
    }
}

/* Sets element e of array i on the host and the device. */
static void problem_set(clnet_context *ctx, problem *pb, int i, size_t e, float v)
{
    pb->f[i][e] = v;
    pb->d[i][e] = v;
    pb->a[i][e] = fabs((double)v);
    CK_OK(ctx, clnet_tensor_upload(pb->t[i], pb->f[i], pb->n[i] * sizeof(float)));
}

static void problem_free(problem *pb)
{
    for (int i = 0; i < NARR; i++) {
        clnet_tensor_destroy(pb->t[i]);
        free(pb->f[i]);
        free(pb->d[i]);
        free(pb->a[i]);
    }
}

/* ---- Directions ---------------------------------------------------------- */

typedef enum { D_FWD, D_BWD_DATA, D_BWD_FILTER, NDIRS } direction;

static const struct {
    const char *name, *variant;
    int out;
} dirs[NDIRS] = {
    [D_FWD] = { "forward", "conv2d_grouped.forward", A_Y },
    [D_BWD_DATA] = { "backward_data", "conv2d_grouped.backward_data", A_X },
    [D_BWD_FILTER] = { "backward_filter", "conv2d_grouped.backward_filter", A_W },
};

/* The reference of direction d from in[] (values or absolute values);
 * returns the number of terms each output sums. */
static int reference(const problem *pb, direction d, double *const *in, double *out)
{
    const ref_conv2d *rp = &pb->rp;
    int g = pb->gc.groups, bias = pb->gc.bias;
    switch (d) {
    case D_FWD:
        ref_conv2d_grouped_forward(rp, g, in[A_X], in[A_W], bias ? in[A_B] : NULL, out);
        return rp->c / g * rp->r * rp->s + bias;
    case D_BWD_DATA:
        ref_conv2d_grouped_backward_data(rp, g, in[A_W], in[A_Y], out);
        return rp->k / g * rp->r * rp->s;
    default:
        ref_conv2d_grouped_backward_filter(rp, g, in[A_X], in[A_Y], out);
        return rp->n * ref_conv2d_out_h(rp) * ref_conv2d_out_w(rp);
    }
}

static clnet_status device_call(const problem *pb, direction d, clnet_tensor *out)
{
    clnet_tensor *const *t = pb->t;
    int g = pb->gc.groups;
    switch (d) {
    case D_FWD:
        return clnet_conv2d_grouped_forward(&pb->p, g, t[A_X], t[A_W], pb->gc.bias ? t[A_B] : NULL,
                                            out);
    case D_BWD_DATA:
        return clnet_conv2d_grouped_backward_data(&pb->p, g, t[A_W], t[A_Y], out);
    default:
        return clnet_conv2d_grouped_backward_filter(&pb->p, g, t[A_X], t[A_Y], out);
    }
}

/* Exact mode: bitwise. Real mode: |got - ref| <= 2 * terms * 2^-24 *
 * absref[i]. Non-finite values pass only with nonfinite set and only where
 * the reference has the same (NaN for NaN, the same infinity). Real mode's
 * trust checks: reached elements (absref > 0) are exact zeros in at most
 * 30% of places; an all-zero output fails. Returns the failures. */
static size_t compare(const char *label, const float *got, const double *ref, const double *absref,
                      size_t n, int terms, int exact, int nonfinite)
{
    size_t bad = 0, zeros = 0, reached = 0, nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], bound = 2.0 * terms * 0x1.0p-24 * absref[i];
        int ok;
        if (!isfinite(r))
            ok = nonfinite && (isnan(r) ? isnan(g) : g == r);
        else if (!isfinite(g))
            ok = 0;
        else
            ok = exact ? got[i] == (float)r : fabs(g - r) <= bound;
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (bound %g)\n", label, i, r, g,
                    exact ? 0.0 : bound);
        reached += absref[i] > 0;
        zeros += absref[i] > 0 && got[i] == 0;
        nonzero += got[i] != 0 || ref[i] != 0;
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements mismatch\n", label, bad, n);
    if (!exact && !nonfinite && n && !nonzero) {
        fprintf(stderr, "%s: output and reference are all zero: the case tests nothing\n", label);
        bad++;
    }
    if (!exact && !nonfinite && zeros * 10 > reached * 3) {
        fprintf(stderr, "%s: %zu of %zu reached elements are exact zeros\n", label, zeros, reached);
        bad++;
    }
    return bad;
}

/* Direction d with one variant (-1: the op's choice), twice into a guarded
 * output: guards, reference, determinism, inputs unchanged. */
static void run_variant(clnet_context *ctx, const problem *pb, direction d, int variant,
                        const double *ref, const double *absref, int terms, int nonfinite)
{
    const ref_conv2d *rp = &pb->rp;
    char label[512];
    snprintf(label, sizeof label,
             "conv_grouped %s, %s: x %dx%dx%dx%d, w %dx%dx%dx%d, groups %d, stride %dx%d, "
             "pad %d,%d,%d,%d, dilation %dx%d [%s mode, variant %d, seed %llu, device %s; "
             "reproduce: build/tests/clnet-tests conv-grouped]",
             dirs[d].name, pb->gc.name, rp->n, rp->c, rp->h, rp->w, rp->k, rp->c / pb->gc.groups,
             rp->r, rp->s, pb->gc.groups, rp->stride_h, rp->stride_w, rp->pad_t, rp->pad_b,
             rp->pad_l, rp->pad_r, rp->dil_h, rp->dil_w, pb->exact ? "exact" : "real", variant,
             (unsigned long long)pb->seed, clnet_context_device(ctx)->name);
    CK_OK(ctx, clnet__force_variant(ctx, dirs[d].variant, variant));
    int out = dirs[d].out;
    size_t n = pb->n[out];
    float *got = host_f32(n), *again = host_f32(n);
    guarded g;
    guarded_create(ctx, 4, pb->shape[out], &g);
    CK_OK(ctx, device_call(pb, d, g.view));
    guard_check(ctx, &g, label);
    download(ctx, g.view, got, n);
    CK_OK(ctx, device_call(pb, d, g.view));
    download(ctx, g.view, again, n);
    ck_assert_msg(!memcmp(got, again, n * sizeof(float)), "%s: two runs differ", label);
    size_t bad = compare(label, got, ref, absref, n, terms, pb->exact, nonfinite);
    ck_assert_msg(bad == 0, "%s: %zu failures", label, bad);
    if (!pb->exact && !nonfinite) {
        double rel = rel_error(got, ref, n);
        ck_assert_msg(rel < REL_ERROR_MAX, "%s: rel error %g", label, rel);
    }
    for (int i = 0; i < NARR; i++) {
        if (i == out || !pb->n[i])
            continue;
        float *now = host_f32(pb->n[i]);
        download(ctx, pb->t[i], now, pb->n[i]);
        ck_assert_msg(!memcmp(now, pb->f[i], pb->n[i] * sizeof(float)), "%s: input %d changed",
                      label, i);
        free(now);
    }
    CK_OK(ctx, clnet__force_variant(ctx, dirs[d].variant, -1));
    guarded_destroy(&g);
    free(got);
    free(again);
}

/* Direction d: the reference once, then the op's choice and every variant
 * (VAR_DENSE only where groups == 1; elsewhere it would fall back). */
static void run_direction(clnet_context *ctx, const problem *pb, direction d, int nonfinite)
{
    size_t n = pb->n[dirs[d].out];
    double *ref = host_f64(n), *absref = host_f64(n);
    int terms = reference(pb, d, pb->d, ref);
    reference(pb, d, pb->a, absref);
    run_variant(ctx, pb, d, -1, ref, absref, terms, nonfinite);
    run_variant(ctx, pb, d, VAR_DIRECT, ref, absref, terms, nonfinite);
    if (pb->gc.groups == 1)
        run_variant(ctx, pb, d, VAR_DENSE, ref, absref, terms, nonfinite);
    free(ref);
    free(absref);
}

/* ---- Device tests ---------------------------------------------------------- */

START_TEST(cases_match_reference)
{
    clnet_context *ctx = test_context();
    for (int exact = 1; exact >= 0; exact--) {
        problem pb;
        problem_make(ctx, &cases[_i], exact, 3000 + 31 * (uint64_t)_i + (uint64_t)exact, &pb);
        for (int d = 0; d < NDIRS; d++)
            run_direction(ctx, &pb, (direction)d, 0);
        problem_free(&pb);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* NaN in x and Inf in a corner tap of w: the outputs that read them are NaN
 * or Inf as in float64; the taps that fall in the padding are skipped, so
 * the border outputs stay finite (the header's NaN policy for groups > 1). */
START_TEST(special_values_propagate)
{
    clnet_context *ctx = test_context();
    problem pb;
    problem_make(ctx, &cases[1], 0, 77, &pb); /* depthwise c3 3x3 pad 1 7x7 */
    problem_set(ctx, &pb, A_X, 3 * 7 + 4, NAN);
    problem_set(ctx, &pb, A_W, 9 + 0, INFINITY); /* channel 1, tap (0, 0) */
    problem_set(ctx, &pb, A_X, 2 * 49 + 10, -0.0f);
    problem_set(ctx, &pb, A_X, 2 * 49 + 11, FLT_MAX);
    problem_set(ctx, &pb, A_X, 2 * 49 + 12, 1e-40f);
    run_direction(ctx, &pb, D_FWD, 1);
    /* Channel 1, output (0, 0) reads tap (0, 0) in the padding: finite. */
    float y[3 * 49];
    CK_OK(ctx, clnet_conv2d_grouped_forward(&pb.p, 3, pb.t[A_X], pb.t[A_W], pb.t[A_B], pb.t[A_Y]));
    download(ctx, pb.t[A_Y], y, 3 * 49);
    ck_assert_msg(isfinite(y[49]), "padded tap multiplied in: y[1,0,0] = %g", y[49]);
    ck_assert_msg(isinf(y[49 + 8]), "Inf weight lost: y[1,1,1] = %g", y[49 + 8]);
    problem_free(&pb);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(empty_tensors)
{
    clnet_context *ctx = test_context();
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    clnet_tensor *x, *w, *y, *b, *dw;
    const int64_t xs[4] = { 0, 4, 5, 5 }, ws[4] = { 4, 1, 3, 3 }, ys[4] = { 0, 4, 5, 5 },
                  bs[1] = { 4 };
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, ws, &w));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, ys, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, bs, &b));
    CK_OK(ctx, clnet_tensor_fill(w, 1.0));
    CK_OK(ctx, clnet_tensor_fill(b, 1.0));
    /* An empty output launches nothing; an empty batch gives dw = 0. */
    CK_OK(ctx, clnet_conv2d_grouped_forward(&p, 4, x, w, b, y));
    CK_OK(ctx, clnet_conv2d_grouped_backward_data(&p, 4, w, y, x));
    guarded g;
    guarded_create(ctx, 4, ws, &g);
    dw = g.view;
    CK_OK(ctx, clnet_conv2d_grouped_backward_filter(&p, 4, x, y, dw));
    guard_check(ctx, &g, "empty batch dw");
    float got[4 * 9];
    download(ctx, dw, got, 36);
    for (int i = 0; i < 36; i++)
        ck_assert_msg(got[i] == 0.0f, "dw[%d] = %g, expected 0", i, got[i]);
    guarded_destroy(&g);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(w);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(b);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    clnet_tensor *x, *w, *w1, *w3, *y, *y2, *b5;
    const int64_t xs[4] = { 1, 6, 5, 5 }, ws[4] = { 6, 2, 3, 3 }, w3s[4] = { 6, 3, 3, 3 };
    const int64_t w1s[4] = { 6, 1, 1, 1 };
    const int64_t ys[4] = { 1, 6, 3, 3 }, y2s[4] = { 1, 6, 4, 3 }, b5s[1] = { 5 };
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, ws, &w));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, w3s, &w3));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, w1s, &w1));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, ys, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, y2s, &y2));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, b5s, &b5));
    CK_OK(ctx, clnet_conv2d_grouped_forward(&p, 3, x, w, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "groups is 0",
             clnet_conv2d_grouped_forward(&p, 0, x, w, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "groups (4) must divide",
             clnet_conv2d_grouped_forward(&p, 4, x, w, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE,
             "w: shape (6, 3, 3, 3): channels differ from x (1, 6, 5, 5) (w is K x C/groups",
             clnet_conv2d_grouped_forward(&p, 3, x, w3, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (1, 6, 4, 3) but expected (1, 6, 3, 3)",
             clnet_conv2d_grouped_forward(&p, 3, x, w, NULL, y2));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (1, 6, 4, 3) but expected (1, 6, 3, 3)",
             clnet_conv2d_grouped_backward_data(&p, 3, w, y2, x));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: shape (5) but expected (6)",
             clnet_conv2d_grouped_forward(&p, 3, x, w, b5, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL",
             clnet_conv2d_grouped_forward(&p, 3, NULL, w, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params: must not be NULL",
             clnet_conv2d_grouped_backward_filter(NULL, 3, x, y, w));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: overlaps x",
             clnet_conv2d_grouped_forward(&p, 6, x, w1, NULL, x));
    p.stride_w = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "stride 1x0",
             clnet_conv2d_grouped_forward(&p, 3, x, w, NULL, y));
    p = CLNET_CONV2D_PARAMS_DEFAULT;
    p.dilation_h = 3;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "larger than x",
             clnet_conv2d_grouped_forward(&p, 3, x, w, NULL, y));
    ck_assert_int_eq(clnet_conv2d_grouped_forward(&p, 3, NULL, NULL, NULL, NULL),
                     CLNET_ERR_INVALID_ARG);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(w);
    clnet_tensor_destroy(w3);
    clnet_tensor_destroy(w1);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(y2);
    clnet_tensor_destroy(b5);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Host tests: the output shape, the reference --------------------------- */

START_TEST(output_shape)
{
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    p.stride_h = p.stride_w = 2;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    int64_t y[4] = { 0 };
    const int64_t x[4] = { 2, 32, 33, 33 }, w[4] = { 64, 1, 3, 3 }, wbad[4] = { 64, 2, 3, 3 };
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 32, x, w, y), CLNET_OK);
    ck_assert(y[0] == 2 && y[1] == 64 && y[2] == 17 && y[3] == 17);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 0, x, w, y), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, -32, x, w, y), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 32, x, wbad, y), CLNET_ERR_SHAPE);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 16, x, wbad, y), CLNET_OK);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 3, x, w, y), CLNET_ERR_SHAPE);
    const int64_t k_odd[4] = { 63, 1, 3, 3 }, neg[4] = { 2, 32, -1, 33 };
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 32, x, k_odd, y), CLNET_ERR_SHAPE);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 32, neg, w, y), CLNET_ERR_SHAPE);
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(NULL, 32, x, w, y), CLNET_ERR_INVALID_ARG);
    const int64_t huge[4] = { 1, 1, INT64_MAX, 1 }, w1[4] = { 1, 1, 1, 1 };
    ck_assert_int_eq(clnet_conv2d_grouped_output_shape(&p, 1, huge, w1, y), CLNET_ERR_TOO_LARGE);
}
END_TEST

/* Small cases for the reference checks: depthwise x2 with stride, padding
 * and dilation; three groups with asymmetric padding. */
static const gcase ref_cases[] = {
    { "depthwise x2", 2, 3, 5, 4, 6, 3, 3, 2, 2, 1, 1, 2, 0, 1, 2, 1, 1 },
    { "groups 3", 1, 6, 4, 5, 9, 3, 2, 3, 1, 2, 0, 1, 2, 1, 1, 1, 0 },
};

/* <v, f(x)> for the grouped forward without bias. */
static double dot_forward(const ref_conv2d *rp, int g, const double *x, const double *w,
                          const double *v, double *y, size_t ny)
{
    ref_conv2d_grouped_forward(rp, g, x, w, NULL, y);
    double s = 0;
    for (size_t i = 0; i < ny; i++)
        s += v[i] * y[i];
    return s;
}

/* The reference backward passes against central finite differences of
 * <v, forward> (eps 1e-6, atol 1e-5, rtol 1e-3). */
START_TEST(reference_gradients_match_finite_differences)
{
    const gcase *gc = &ref_cases[_i];
    ref_conv2d rp = { gc->n,  gc->c,  gc->h,  gc->w,  gc->k,  gc->r,  gc->s, gc->sh,
                      gc->sw, gc->pt, gc->pb, gc->pl, gc->pr, gc->dh, gc->dw };
    int g = gc->groups;
    size_t nx = (size_t)rp.n * rp.c * rp.h * rp.w, nw = (size_t)rp.k * (rp.c / g) * rp.r * rp.s;
    size_t ny = (size_t)rp.n * rp.k * ref_conv2d_out_h(&rp) * ref_conv2d_out_w(&rp);
    double *x = host_f64(nx), *w = host_f64(nw), *v = host_f64(ny), *y = host_f64(ny);
    double *dx = host_f64(nx), *dw = host_f64(nw);
    uint64_t state = 99 + (uint64_t)_i;
    for (size_t i = 0; i < nx; i++)
        x[i] = (double)(test_rng(&state) % 2001) / 1000.0 - 1.0;
    for (size_t i = 0; i < nw; i++)
        w[i] = (double)(test_rng(&state) % 2001) / 1000.0 - 1.0;
    for (size_t i = 0; i < ny; i++)
        v[i] = (double)(test_rng(&state) % 2001) / 1000.0 - 1.0;
    ref_conv2d_grouped_backward_data(&rp, g, w, v, dx);
    ref_conv2d_grouped_backward_filter(&rp, g, x, v, dw);
    const double eps = 1e-6;
    for (int which = 0; which < 2; which++) {
        double *t = which ? w : x, *grad = which ? dw : dx;
        size_t n = which ? nw : nx;
        for (size_t i = 0; i < n; i++) {
            double keep = t[i];
            t[i] = keep + eps;
            double up = dot_forward(&rp, g, x, w, v, y, ny);
            t[i] = keep - eps;
            double down = dot_forward(&rp, g, x, w, v, y, ny);
            t[i] = keep;
            double fd = (up - down) / (2 * eps);
            ck_assert_msg(fabs(fd - grad[i]) <= 1e-5 + 1e-3 * fabs(fd),
                          "%s: d%s[%zu] = %.9g, finite differences %.9g", gc->name,
                          which ? "w" : "x", i, grad[i], fd);
        }
    }
    free(x);
    free(w);
    free(v);
    free(y);
    free(dx);
    free(dw);
}
END_TEST

/* groups == 1 is the dense reference; a depthwise convolution is, channel
 * by channel, the dense one on that channel's slice: the group indexing
 * checked against an independent formula. */
START_TEST(reference_agrees_with_dense)
{
    ref_conv2d rp = { 2, 3, 5, 6, 6, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2 };
    size_t nx = 2 * 3 * 5 * 6, nw1 = 6 * 3 * 3 * 2;
    int oh = ref_conv2d_out_h(&rp), ow = ref_conv2d_out_w(&rp);
    size_t ny = (size_t)2 * 6 * oh * ow;
    double *x = host_f64(nx), *w = host_f64(nw1), *b = host_f64(6), *y1 = host_f64(ny),
           *y2 = host_f64(ny);
    uint64_t state = 5;
    for (size_t i = 0; i < nx; i++)
        x[i] = (double)(test_rng(&state) % 17) - 8;
    for (size_t i = 0; i < nw1; i++)
        w[i] = (double)(test_rng(&state) % 17) - 8;
    for (int i = 0; i < 6; i++)
        b[i] = i;
    ref_conv2d_forward(&rp, x, w, b, y1);
    ref_conv2d_grouped_forward(&rp, 1, x, w, b, y2);
    ck_assert(!memcmp(y1, y2, ny * sizeof(double)));
    /* Depthwise x2: output channel k reads input channel k / 2. */
    ref_conv2d grouped = rp;
    ref_conv2d grouped_one = rp;
    grouped_one.n = 1;
    grouped_one.c = 1;
    grouped_one.k = 1;
    ref_conv2d_grouped_forward(&grouped, 3, x, w, b, y2); /* w: its first 6x1x3x2 */
    size_t plane = (size_t)oh * ow;
    double *one = host_f64(plane);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 6; k++) {
            ref_conv2d_forward(&grouped_one, x + ((size_t)n * 3 + k / 2) * 30, w + (size_t)k * 6,
                               b + k, one);
            ck_assert_msg(!memcmp(one, y2 + ((size_t)n * 6 + k) * plane, plane * sizeof(double)),
                          "depthwise image %d channel %d differs from the dense slice", n, k);
        }
    free(one);
    free(x);
    free(w);
    free(b);
    free(y1);
    free(y2);
}
END_TEST

Suite *suite_conv_grouped(void)
{
    Suite *s = suite_create("conv-grouped");
    TCase *host = tcase_create("host");
    tcase_add_test(host, output_shape);
    tcase_add_loop_test(host, reference_gradients_match_finite_differences, 0,
                        (int)(sizeof ref_cases / sizeof ref_cases[0]));
    tcase_add_test(host, reference_agrees_with_dense);
    suite_add_tcase(s, host);
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, cases_match_reference, 0, NCASES);
    tcase_add_test(tc, special_values_propagate);
    tcase_add_test(tc, empty_tensors);
    tcase_add_test(tc, bad_arguments_are_named);
    suite_add_tcase(s, tc);
    return s;
}
