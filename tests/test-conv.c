/* clnet tests — 2-D convolution and the transposed convolution against the
 * float64 reference (ref_conv2d_* in tests/ref.c): every direction, in exact
 * and real mode, every variant forced, with guard bands, unchanged inputs,
 * determinism, special values, empty tensors and bad arguments. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"
#include "runtime/runtime.h"

/* Tolerances, one per mode (docs/testing.md):
 * - exact mode: bitwise. Inputs are integers in [-8, 8], so every product
 *   and partial sum is an integer of magnitude at most 64 * T for a sum of
 *   T terms (T <= 5408 here, the long tier's cnn conv1 filter gradient):
 *   below 2^24, so any summation order, with or without fma, is exact.
 * - real mode (uniform [-1, 1]): |got - ref| <= 2 * T * 2^-24 * S_i, where
 *   element i is a float32 sum of T terms (T = C*R*S, +1 with a bias, for
 *   the forward; K*R*S for the data gradient; N*OH*OW for the filter and
 *   bias gradients) and S_i is the same sum over the absolute values of the
 *   terms (the reference run on |inputs|): the classic bound for recursive
 *   summation, with a factor 2 of margin for the product roundings and for
 *   GEMM's blocked order. Plus rel_error < 1e-5 over the whole output. */
#define REL_ERROR_MAX 1e-5

/* The implementations src/ops/conv.c chooses among ("conv2d.<direction>"). */

/* One convolution; a transposed case is described by the convolution it
 * transposes (h, w are then the transposed convolution's output size). */
typedef struct conv_case {
    const char *name;
    int n, c, h, w, k, r, s;
    int sh, sw, pt, pb, pl, pr, dh, dw;
    int same; /* padding from clnet_conv2d_params_set_same instead */
    int bias;
} conv_case;

/* name n c h w k r s sh sw pt pb pl pr dh dw same bias */
static const conv_case quick_cases[] = {
    { "1x1 image, 1x1 kernel", 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "1x1 kernel c7 k3 7x7 b2", 2, 7, 7, 7, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "1x1 kernel stride 2", 2, 3, 7, 7, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0 },
    { "3x3 c3 k7 7x7", 1, 3, 7, 7, 7, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0 },
    { "3x3 pad 1 c7 k3 31x33 b2", 2, 7, 31, 33, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1 },
    { "2x3 asymmetric pad b3", 3, 3, 7, 7, 7, 2, 3, 1, 1, 1, 0, 2, 1, 1, 1, 0, 1 },
    { "3x1 stride 2 c1 33x31", 2, 1, 33, 31, 3, 3, 1, 2, 2, 0, 1, 0, 0, 1, 1, 0, 0 },
    { "5x5 dilation 2 31x31", 1, 3, 31, 31, 3, 5, 5, 1, 1, 2, 2, 2, 2, 2, 2, 0, 1 },
    { "5x5 same stride 2 7x7", 2, 3, 7, 7, 7, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0 },
    { "3x3 kernel on 3x3", 1, 7, 3, 3, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "3x3 same on 1x1", 2, 3, 1, 1, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0 },
    { "3x3 pad 3 (beyond the kernel)", 1, 3, 7, 7, 3, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 0, 1 },
    { "3x3 stride 2 dilation 2 asym b3", 3, 7, 33, 31, 7, 3, 3, 2, 2, 2, 1, 0, 3, 2, 2, 0, 1 },
    /* The reference CNN's layers (batch 2). */
    { "cnn conv1 1->32 3x3 28x28", 2, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "cnn conv2 32->64 3x3 13x13", 2, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    /* The DCGAN's: two transposed convolutions (as the convolutions they
     * transpose: 128->64 from 7x7 to 14x14 is the conv 64->128 from 14 to 7)
     * and the discriminator's first layer. */
    { "dcgan tconv 128->64 5x5 s2 7->14", 2, 64, 14, 14, 128, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1 },
    { "dcgan tconv 64->1 5x5 s2 14->28", 2, 1, 28, 28, 64, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1 },
    { "dcgan conv 1->64 5x5 s2 28->14", 2, 1, 28, 28, 64, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1 },
};
#define NQUICK (int)(sizeof quick_cases / sizeof quick_cases[0])

/* ---- Problems: one case's data on the host and the device ---------------- */

enum { A_X, A_W, A_Y, A_BK, A_BC, NARR }; /* x, w, y-shaped, bias (K), bias (C) */

typedef struct problem {
    conv_case cc;
    ref_conv2d rp;
    clnet_conv2d_params p;
    int exact;
    uint64_t seed;
    int ndim[NARR];
    int64_t shape[NARR][4];
    size_t n[NARR];
    float *f[NARR];
    double *d[NARR], *a[NARR]; /* values and absolute values, for the reference */
    clnet_tensor *t[NARR];
} problem;

static void fill(problem *pb, int i, uint64_t *state)
{
    for (size_t e = 0; e < pb->n[i]; e++) {
        uint64_t r = test_rng(state);
        pb->f[i][e] = pb->exact ? (float)((int)(r % 17) - 8) : 0;
    }
    if (!pb->exact)
        fill_uniform(pb->f[i], pb->n[i], -1, 1, state);
}

/* Copies the host floats of array i to its double forms and the device. */
static void sync_array(clnet_context *ctx, problem *pb, int i)
{
    for (size_t e = 0; e < pb->n[i]; e++) {
        pb->d[i][e] = pb->f[i][e];
        pb->a[i][e] = fabs(pb->d[i][e]);
    }
    if (pb->n[i])
        CK_OK(ctx, clnet_tensor_upload(pb->t[i], pb->f[i], pb->n[i] * sizeof(float)));
}

static void problem_make(clnet_context *ctx, const conv_case *cc, int exact, uint64_t seed,
                         problem *pb)
{
    memset(pb, 0, sizeof *pb);
    pb->cc = *cc;
    pb->exact = exact;
    pb->seed = seed;
    clnet_conv2d_params p = {
        cc->sh, cc->sw, cc->pt, cc->pb, cc->pl, cc->pr, cc->dh, cc->dw, 0, 0
    };
    if (cc->same)
        ck_assert_int_eq(clnet_conv2d_params_set_same(&p, cc->h, cc->w, cc->r, cc->s), CLNET_OK);
    pb->rp = (ref_conv2d){ cc->n,        cc->c,      cc->h,       cc->w,        cc->k,
                           cc->r,        cc->s,      p.stride_h,  p.stride_w,   p.pad_top,
                           p.pad_bottom, p.pad_left, p.pad_right, p.dilation_h, p.dilation_w };
    int oh = ref_conv2d_out_h(&pb->rp), ow = ref_conv2d_out_w(&pb->rp);
    /* The output padding that makes the transpose of oh give h again. */
    p.output_pad_h =
        cc->h + p.pad_top + p.pad_bottom - p.dilation_h * (cc->r - 1) - 1 - (oh - 1) * p.stride_h;
    p.output_pad_w =
        cc->w + p.pad_left + p.pad_right - p.dilation_w * (cc->s - 1) - 1 - (ow - 1) * p.stride_w;
    pb->p = p;
    if (cc->same && cc->h == oh * p.stride_h && cc->w == ow * p.stride_w) {
        /* What a user of the transpose would write gives the same params. */
        clnet_conv2d_params t = { cc->sh, cc->sw, 0, 0, 0, 0, cc->dh, cc->dw, 0, 0 };
        ck_assert_int_eq(clnet_conv2d_transpose_params_set_same(&t, oh, ow, cc->r, cc->s), 0);
        ck_assert(!memcmp(&t, &p, sizeof p));
    }
    const int64_t shapes[NARR][4] = { { cc->n, cc->c, cc->h, cc->w },
                                      { cc->k, cc->c, cc->r, cc->s },
                                      { cc->n, cc->k, oh, ow },
                                      { cc->k },
                                      { cc->c } };
    uint64_t state = seed;
    for (int i = 0; i < NARR; i++) {
        pb->ndim[i] = i < A_BK ? 4 : 1;
        pb->n[i] = 1;
        for (int j = 0; j < pb->ndim[i]; j++) {
            pb->shape[i][j] = shapes[i][j];
            pb->n[i] *= (size_t)shapes[i][j];
        }
        pb->f[i] = malloc(pb->n[i] * sizeof(float) + 1);
        pb->d[i] = malloc(pb->n[i] * sizeof(double) + 1);
        pb->a[i] = malloc(pb->n[i] * sizeof(double) + 1);
        ck_assert(pb->f[i] && pb->d[i] && pb->a[i]);
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, pb->ndim[i], pb->shape[i], &pb->t[i]));
        fill(pb, i, &state);
        sync_array(ctx, pb, i);
    }
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

typedef enum {
    D_FWD,
    D_BWD_DATA,
    D_BWD_FILTER,
    D_BWD_BIAS,
    D_T_FWD,
    D_T_BWD_DATA,
    D_T_BWD_FILTER,
    NDIRS
} direction;

typedef struct dir_info {
    const char *name;
    const char *variant; /* the implementation choice it routes through */
    int in1, in2, bias, out;
} dir_info;

static const dir_info dirs[NDIRS] = {
    [D_FWD] = { "forward", "conv2d.forward", A_X, A_W, A_BK, A_Y },
    [D_BWD_DATA] = { "backward_data", "conv2d.backward_data", A_W, A_Y, -1, A_X },
    [D_BWD_FILTER] = { "backward_filter", "conv2d.backward_filter", A_X, A_Y, -1, A_W },
    [D_BWD_BIAS] = { "backward_bias", NULL, A_Y, -1, -1, A_BK },
    [D_T_FWD] = { "transpose_forward", "conv2d.backward_data", A_Y, A_W, A_BC, A_X },
    [D_T_BWD_DATA] = { "transpose_backward_data", "conv2d.forward", A_W, A_X, -1, A_Y },
    [D_T_BWD_FILTER] = { "transpose_backward_filter", "conv2d.backward_filter", A_Y, A_X, -1, A_W },
};

/* The reference of direction d from inputs in[] (values or absolute values);
 * returns the number of terms each output sums. */
static int reference(const problem *pb, direction d, double *const *in, double *out)
{
    const ref_conv2d *rp = &pb->rp;
    int bias = pb->cc.bias, crs = rp->c * rp->r * rp->s, krs = rp->k * rp->r * rp->s;
    int nohow = rp->n * ref_conv2d_out_h(rp) * ref_conv2d_out_w(rp);
    switch (d) {
    case D_FWD:
        ref_conv2d_forward(rp, in[A_X], in[A_W], bias ? in[A_BK] : NULL, out);
        return crs + bias;
    case D_BWD_DATA:
        ref_conv2d_backward_data(rp, in[A_W], in[A_Y], out);
        return krs;
    case D_BWD_FILTER:
        ref_conv2d_backward_filter(rp, in[A_X], in[A_Y], out);
        return nohow;
    case D_BWD_BIAS:
        ref_conv2d_backward_bias(rp, in[A_Y], out);
        return nohow;
    case D_T_FWD:
        ref_conv2d_transpose_forward(rp, in[A_Y], in[A_W], bias ? in[A_BC] : NULL, out);
        return krs + bias;
    case D_T_BWD_DATA:
        ref_conv2d_forward(rp, in[A_X], in[A_W], NULL, out);
        return crs;
    default:
        ref_conv2d_backward_filter(rp, in[A_X], in[A_Y], out);
        return nohow;
    }
}

static clnet_status device_call(const problem *pb, direction d, clnet_tensor *out)
{
    clnet_tensor *const *t = pb->t;
    const clnet_conv2d_params *p = &pb->p;
    switch (d) {
    case D_FWD:
        return clnet_conv2d_forward(p, t[A_X], t[A_W], pb->cc.bias ? t[A_BK] : NULL, out);
    case D_BWD_DATA:
        return clnet_conv2d_backward_data(p, t[A_W], t[A_Y], out);
    case D_BWD_FILTER:
        return clnet_conv2d_backward_filter(p, t[A_X], t[A_Y], out);
    case D_BWD_BIAS:
        return clnet_conv2d_backward_bias(t[A_Y], out);
    case D_T_FWD:
        return clnet_conv2d_transpose_forward(p, t[A_Y], t[A_W], pb->cc.bias ? t[A_BC] : NULL, out);
    case D_T_BWD_DATA:
        return clnet_conv2d_transpose_backward_data(p, t[A_W], t[A_X], out);
    default:
        return clnet_conv2d_transpose_backward_filter(p, t[A_Y], t[A_X], out);
    }
}

/* The variants that apply to the case in direction d (a forced variant that
 * does not apply falls back to im2col, which is tested anyway; CLNET_V_CONV_WIDE falls
 * back to CLNET_V_CONV_DIRECT where the forward has a stride and for the filter
 * gradient, so the matrix runs it on every shape). */
static int variants_of(const problem *pb, direction d, int *out)
{
    const ref_conv2d *rp = &pb->rp;
    int one = rp->r == 1 && rp->s == 1 && rp->stride_h == 1 && rp->stride_w == 1 &&
              rp->pad_t == 0 && rp->pad_b == 0 && rp->pad_l == 0 && rp->pad_r == 0;
    int n = 0;
    if (!dirs[d].variant)
        return 0;
    out[n++] = CLNET_V_CONV_IM2COL;
    if (one)
        out[n++] = CLNET_V_CONV_GEMM1X1;
    out[n++] = CLNET_V_CONV_DIRECT;
    out[n++] = CLNET_V_CONV_WIDE;
    return n;
}

/* ---- Comparison ------------------------------------------------------------ */

/* Compares n device floats with the reference. Exact mode: bitwise. Real
 * mode: |got - ref| <= 2 * terms * 2^-24 * absref[i]. A NaN or Inf on either
 * side fails unless nonfinite is set; then it must match the reference's
 * (NaN for NaN, the same infinity). Trust checks in real mode: elements that
 * some product reaches (absref > 0) may be exact zeros in at most 30% of
 * places, and an all-zero output fails. Returns the number of failures,
 * printing a few. */
static size_t compare_conv(const char *label, const float *got, const double *ref,
                           const double *absref, size_t n, int terms, int exact, int nonfinite)
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
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (%s, bound %g)\n", label, i, r, g,
                    exact ? "exact mode: bitwise" : "2*T*2^-24*sum|terms|", exact ? 0.0 : bound);
        reached += absref[i] > 0;
        zeros += absref[i] > 0 && got[i] == 0;
        nonzero += got[i] != 0 || ref[i] != 0;
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements mismatch\n", label, bad, n);
    if (!exact && n && !nonzero) { /* exact mode: small integer sums can be 0 */
        fprintf(stderr, "%s: output and reference are all zero: the case tests nothing\n", label);
        bad++;
    }
    if (!exact && zeros * 10 > reached * 3) {
        fprintf(stderr, "%s: %zu of %zu reached elements are exact zeros: suspect\n", label, zeros,
                reached);
        bad++;
    }
    return bad;
}

/* Fails the test if any input tensor of the problem changed on the device. */
static void check_inputs_unchanged(clnet_context *ctx, const problem *pb, const char *label)
{
    for (int i = 0; i < NARR; i++) {
        if (!pb->n[i])
            continue;
        float *now = malloc(pb->n[i] * sizeof(float));
        ck_assert_ptr_nonnull(now);
        download(ctx, pb->t[i], now, pb->n[i]);
        ck_assert_msg(!memcmp(now, pb->f[i], pb->n[i] * sizeof(float)),
                      "%s %s: input %d (x, w, y-shaped, bias K, bias C) changed", label,
                      pb->cc.name, i);
        free(now);
    }
}

/* Runs direction d with one variant (-1: the op's own choice) twice into a
 * guarded output and checks guards, reference and determinism. */
static void run_variant(clnet_context *ctx, const problem *pb, direction d, int variant,
                        const double *ref, const double *absref, int terms, int nonfinite)
{
    const dir_info *di = &dirs[d];
    const ref_conv2d *rp = &pb->rp;
    char label[512];
    snprintf(label, sizeof label,
             "conv %s, %s: x %dx%dx%dx%d, w %dx%dx%dx%d, stride %dx%d, pad %d,%d,%d,%d, "
             "dilation %dx%d [%s mode, variant %d, seed %llu, device %s; reproduce: "
             "CK_RUN_CASE=device build/tests/clnet-tests conv]",
             di->name, pb->cc.name, rp->n, rp->c, rp->h, rp->w, rp->k, rp->c, rp->r, rp->s,
             rp->stride_h, rp->stride_w, rp->pad_t, rp->pad_b, rp->pad_l, rp->pad_r, rp->dil_h,
             rp->dil_w, pb->exact ? "exact" : "real", variant, (unsigned long long)pb->seed,
             clnet_context_device(ctx)->name);
    if (di->variant)
        CK_OK(ctx, clnet__force_variant(ctx, di->variant, variant));
    size_t n = pb->n[di->out];
    float *got = malloc(n * sizeof(float)), *again = malloc(n * sizeof(float));
    ck_assert(got && again);
    guarded g;
    guarded_create(ctx, pb->ndim[di->out], pb->shape[di->out], &g);
    CK_OK(ctx, device_call(pb, d, g.view));
    guard_check(ctx, &g, label);
    download(ctx, g.view, got, n);
    CK_OK(ctx, device_call(pb, d, g.view));
    download(ctx, g.view, again, n);
    ck_assert_msg(!memcmp(got, again, n * sizeof(float)), "%s: two runs differ", label);
    size_t bad = compare_conv(label, got, ref, absref, n, terms, pb->exact, nonfinite);
    ck_assert_msg(bad == 0, "%s: %zu failures", label, bad);
    if (!pb->exact && !nonfinite) {
        double rel = rel_error(got, ref, n);
        ck_assert_msg(rel < REL_ERROR_MAX, "%s: rel error %g", label, rel);
    }
    if (di->variant)
        CK_OK(ctx, clnet__force_variant(ctx, di->variant, -1));
    guarded_destroy(&g);
    free(got);
    free(again);
}

/* Direction d of the problem: the reference once, then every variant. */
static void run_direction(clnet_context *ctx, const problem *pb, direction d, int nonfinite)
{
    size_t n = pb->n[dirs[d].out];
    double *ref = malloc(n * sizeof(double) + 1), *absref = malloc(n * sizeof(double) + 1);
    ck_assert(ref && absref);
    int terms = reference(pb, d, pb->d, ref);
    reference(pb, d, pb->a, absref);
    int vars[4], nv = variants_of(pb, d, vars);
    run_variant(ctx, pb, d, -1, ref, absref, terms, nonfinite);
    for (int i = 0; i < nv; i++)
        run_variant(ctx, pb, d, vars[i], ref, absref, terms, nonfinite);
    check_inputs_unchanged(ctx, pb, dirs[d].name);
    free(ref);
    free(absref);
}

static void run_case(clnet_context *ctx, const conv_case *cc, uint64_t seed)
{
    for (int exact = 1; exact >= 0; exact--) {
        problem pb;
        problem_make(ctx, cc, exact, seed + (uint64_t)exact, &pb);
        for (int d = 0; d < NDIRS; d++)
            run_direction(ctx, &pb, (direction)d, 0);
        problem_free(&pb);
    }
}

/* ---- Tests ------------------------------------------------------------------ */

START_TEST(cases_match_reference)
{
    clnet_context *ctx = test_context();
    run_case(ctx, &quick_cases[_i], 1000 + 17 * (uint64_t)_i);
    clnet_context_destroy(ctx);
}
END_TEST

/* Long tier: channels 1, 3, 7 x sizes 1, 3, 7, 31, 33 x five kernels, with
 * batch, stride, padding, dilation, "same" and bias rotating through the
 * combinations (those whose kernel does not fit are skipped), then the
 * reference models' layers at larger batches. */
static const conv_case long_cases[] = {
    { "cnn conv1 b8", 8, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "cnn conv2 b8", 8, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 },
    { "dcgan tconv1 b4", 4, 64, 14, 14, 128, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1 },
    { "dcgan tconv2 b4", 4, 1, 28, 28, 64, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1 },
    { "16->33 3x3 pad 1 stride 2 65x64", 2, 16, 65, 64, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1 },
    { "3x3 stride 3 dilation 2", 2, 5, 32, 33, 9, 3, 3, 3, 3, 2, 0, 1, 2, 2, 2, 0, 0 },
};

START_TEST(long_grid_matches_reference)
{
    if (!test_long())
        return;
    static const int chans[] = { 1, 3, 7 }, sizes[] = { 1, 3, 7, 31, 33 };
    static const int kern[][2] = { { 1, 1 }, { 3, 3 }, { 2, 3 }, { 3, 1 }, { 5, 5 } };
    clnet_context *ctx = test_context();
    int idx = 0;
    for (int ci = 0; ci < 3; ci++)
        for (int si = 0; si < 5; si++)
            for (int ki = 0; ki < 5; ki++, idx++) {
                int st = 1 + idx % 2, dil = 1 + (idx / 2) % 2, pad = (idx / 4) % 3;
                conv_case cc = { "long grid",
                                 1 + idx % 3,
                                 chans[ci],
                                 sizes[si],
                                 sizes[(si + idx) % 5],
                                 chans[(ci + 1) % 3],
                                 kern[ki][0],
                                 kern[ki][1],
                                 st,
                                 3 - st,
                                 pad,
                                 (pad + 1) % 3,
                                 pad % 2,
                                 pad,
                                 dil,
                                 3 - dil,
                                 idx % 7 == 0,
                                 idx % 2 };
                if (!cc.same && (cc.h + cc.pt + cc.pb < cc.dh * (cc.r - 1) + 1 ||
                                 cc.w + cc.pl + cc.pr < cc.dw * (cc.s - 1) + 1))
                    continue;
                run_case(ctx, &cc, 5000 + (uint64_t)idx);
            }
    for (size_t i = 0; i < sizeof long_cases / sizeof long_cases[0]; i++)
        run_case(ctx, &long_cases[i], 9000 + i);
    clnet_context_destroy(ctx);
}
END_TEST

/* Batches split into chunks of images (as when the workspace is short):
 * chunks of 1 and 2 images over a batch of 3, for every direction, with the
 * direct filter gradient's reduction whole (1 slice) and split in 3 slices
 * and in more slices than a chunk has rows (clamped): partial sums added
 * into the chunks' accumulated gradient. */
START_TEST(chunked_batches_match_reference)
{
    clnet_context *ctx = test_context();
    const conv_case cc = { "chunks", 3, 3, 9, 8, 5, 3, 2, 2, 1, 1, 0, 1, 1, 1, 2, 0, 1 };
    /* Stride 1, so that the forward runs conv_wide on each chunk's copy. */
    const conv_case c1 = { "chunks stride 1", 3, 2, 7, 9, 5, 3, 2, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1 };
    static const int slices[] = { 1, 3, 1000 };
    for (int chunk = 1; chunk <= 2; chunk++)
        for (int sl = 0; sl < 3; sl++) {
            CK_OK(ctx, clnet__force_variant(ctx, "conv2d.chunk", chunk));
            CK_OK(ctx, clnet__force_variant(ctx, "conv2d.filter_slices", slices[sl]));
            run_case(ctx, &cc, 77 + (uint64_t)(chunk * 3 + sl));
            run_case(ctx, &c1, 177 + (uint64_t)(chunk * 3 + sl));
        }
    CK_OK(ctx, clnet__force_variant(ctx, "conv2d.chunk", -1));
    CK_OK(ctx, clnet__force_variant(ctx, "conv2d.filter_slices", -1));
    clnet_context_destroy(ctx);
}
END_TEST

/* NaN, +-Inf, -0, FLT_MAX and a denormal in x (forward, filter gradient) or
 * dy (data and bias gradients) propagate as in the float64 reference. */
START_TEST(special_values_propagate)
{
    clnet_context *ctx = test_context();
    const conv_case cc = { "specials", 2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1 };
    const float specials[] = { NAN, INFINITY, -INFINITY, -0.0f, FLT_MAX, 1e-40f };
    const direction which[] = { D_FWD, D_BWD_FILTER, D_BWD_DATA, D_BWD_BIAS };
    for (int j = 0; j < 4; j++) {
        problem pb;
        problem_make(ctx, &cc, 0, 99, &pb);
        int arr = which[j] == D_FWD || which[j] == D_BWD_FILTER ? A_X : A_Y;
        for (int s = 0; s < 6; s++)
            pb.f[arr][(size_t)(s * 37 + 5) % pb.n[arr]] = specials[s];
        sync_array(ctx, &pb, arr);
        run_direction(ctx, &pb, which[j], 1);
        problem_free(&pb);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* The comparator fails on a perturbed, NaN, unwritten or all-zero output. */
START_TEST(comparator_negative_controls)
{
    /* x (1, 2, 5, 5), w (2, 2, 3, 3), padding 1: y (1, 2, 5, 5). */
    ref_conv2d rp = { 1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 };
    double x[50], w[36], ax[50], aw[36], ref[50], absref[50], zero[50] = { 0 };
    float got[50];
    uint64_t st = 3;
    ref_fill_uniform(x, 50, -1, 1, &st);
    ref_fill_uniform(w, 36, -1, 1, &st);
    for (int i = 0; i < 50; i++)
        ax[i] = fabs(x[i]);
    for (int i = 0; i < 36; i++)
        aw[i] = fabs(w[i]);
    ref_conv2d_forward(&rp, x, w, NULL, ref);
    ref_conv2d_forward(&rp, ax, aw, NULL, absref);
    const int terms = 18;
    for (int i = 0; i < 50; i++)
        got[i] = (float)ref[i];
    ck_assert_int_eq(compare_conv("control ok", got, ref, absref, 50, terms, 0, 0), 0);
    got[7] = (float)(ref[7] + 1.0 * terms * 0x1.0p-24 * absref[7]); /* half the bound */
    ck_assert_int_eq(compare_conv("control within bound", got, ref, absref, 50, terms, 0, 0), 0);
    got[7] = (float)(ref[7] + 4.0 * terms * 0x1.0p-24 * absref[7]);
    ck_assert_int_ne(compare_conv("control off by 2x bound", got, ref, absref, 50, terms, 0, 0), 0);
    got[7] = (float)ref[7];
    got[3] = NAN;
    ck_assert_int_ne(compare_conv("control NaN", got, ref, absref, 50, terms, 0, 0), 0);
    got[3] = sentinel();
    ck_assert_int_ne(compare_conv("control sentinel", got, ref, absref, 50, terms, 0, 0), 0);
    got[3] = (float)ref[3];
    got[11] = nextafterf(got[11], INFINITY);
    ck_assert_int_ne(compare_conv("control exact 1 ulp", got, ref, absref, 50, terms, 1, 0), 0);
    for (int i = 0; i < 50; i++)
        got[i] = 0;
    ck_assert_int_ne(compare_conv("control zeros", got, ref, absref, 50, terms, 0, 0), 0);
    ck_assert_int_ne(compare_conv("control both zero", got, zero, absref, 50, terms, 0, 0), 0);
    for (int i = 0; i < 50; i++)
        got[i] = (float)ref[i];
    ref[5] = NAN;
    got[5] = 1; /* a finite value where the reference is NaN */
    ck_assert_int_ne(compare_conv("control NaN reference", got, ref, absref, 50, terms, 0, 1), 0);
}
END_TEST

/* The padding helpers against hand-computed TensorFlow "same" paddings, and
 * the output-shape functions. Host only. */
START_TEST(params_helpers_and_output_shape)
{
    /* in, k, stride, dilation -> top, bottom */
    static const int same[][6] = { { 28, 5, 2, 1, 1, 2 }, { 14, 5, 2, 1, 1, 2 },
                                   { 7, 3, 1, 1, 1, 1 },  { 7, 2, 1, 1, 0, 1 },
                                   { 1, 3, 2, 1, 1, 1 },  { 8, 1, 2, 1, 0, 0 },
                                   { 7, 3, 1, 2, 2, 2 },  { 13, 3, 2, 1, 1, 1 } };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
        p.stride_h = p.stride_w = same[i][2];
        p.dilation_h = p.dilation_w = same[i][3];
        p.output_pad_h = 1;
        ck_assert_int_eq(
            clnet_conv2d_params_set_same(&p, same[i][0], same[i][0], same[i][1], same[i][1]),
            CLNET_OK);
        ck_assert_msg(p.pad_top == same[i][4] && p.pad_bottom == same[i][5] &&
                          p.pad_left == same[i][4] && p.pad_right == same[i][5] &&
                          p.output_pad_h == 0,
                      "same padding of row %zu: %d, %d", i, p.pad_top, p.pad_bottom);
    }
    /* Every "same" output is ceil(in / stride); every transposed "same"
     * output is in * stride. */
    for (int in = 1; in <= 12; in++)
        for (int k = 1; k <= 5; k++)
            for (int s = 1; s <= 3; s++)
                for (int d = 1; d <= 2; d++) {
                    clnet_conv2d_params p = { s, s, 0, 0, 0, 0, d, d, 0, 0 };
                    int64_t x[4] = { 2, 3, in, in + 1 }, w[4] = { 4, 3, k, k }, y[4], back[4];
                    ck_assert_int_eq(clnet_conv2d_params_set_same(&p, in, in + 1, k, k), CLNET_OK);
                    ck_assert_int_eq(clnet_conv2d_output_shape(&p, x, w, y), CLNET_OK);
                    ck_assert(y[0] == 2 && y[1] == 4 && y[2] == (in + s - 1) / s &&
                              y[3] == (in + s) / s);
                    ck_assert_int_eq(clnet_conv2d_transpose_params_set_same(&p, in, in + 1, k, k),
                                     CLNET_OK);
                    int64_t xt[4] = { 2, 4, in, in + 1 };
                    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&p, xt, w, back),
                                     CLNET_OK);
                    ck_assert_msg(back[1] == 3 && back[2] == (int64_t)in * s &&
                                      back[3] == (int64_t)(in + 1) * s,
                                  "transpose same in %d k %d s %d d %d: %lld", in, k, s, d,
                                  (long long)back[2]);
                    /* ... and the convolution maps it back. */
                    ck_assert_int_eq(clnet_conv2d_output_shape(&p, back, w, y), CLNET_OK);
                    ck_assert(y[2] == in && y[3] == in + 1);
                }
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    ck_assert(p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
              p.pad_top == 0 && p.pad_right == 0 && p.output_pad_w == 0);
    p.pad_top = 3;
    ck_assert_int_eq(clnet_conv2d_params_set_valid(&p), CLNET_OK);
    ck_assert_int_eq(p.pad_top, 0);
    ck_assert_int_eq(clnet_conv2d_params_set_valid(NULL), CLNET_ERR_INVALID_ARG);
    p.stride_h = 0;
    ck_assert_int_eq(clnet_conv2d_params_set_same(&p, 5, 5, 3, 3), CLNET_ERR_INVALID_ARG);
    p.stride_h = 1;
    ck_assert_int_eq(clnet_conv2d_params_set_same(&p, 0, 5, 3, 3), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_conv2d_params_set_same(NULL, 5, 5, 3, 3), CLNET_ERR_INVALID_ARG);
    /* Transposed output size: (in - 1) * stride - pads + dil * (k - 1) + 1 + output_pad. */
    clnet_conv2d_params t = { 2, 2, 2, 2, 2, 2, 1, 1, 1, 1 };
    int64_t x[4] = { 2, 128, 7, 7 }, w[4] = { 128, 64, 5, 5 }, y[4];
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&t, x, w, y), CLNET_OK);
    ck_assert(y[0] == 2 && y[1] == 64 && y[2] == 14 && y[3] == 14);
    t.output_pad_h = 2;
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&t, x, w, y), CLNET_ERR_INVALID_ARG);
    /* Convolution output shape and its errors. */
    clnet_conv2d_params c = { 2, 1, 1, 0, 2, 1, 1, 2, 0, 0 };
    int64_t cx[4] = { 3, 4, 9, 8 }, cw[4] = { 5, 4, 3, 2 };
    ck_assert_int_eq(clnet_conv2d_output_shape(&c, cx, cw, y), CLNET_OK);
    ck_assert(y[0] == 3 && y[1] == 5 && y[2] == 4 && y[3] == 9);
    ck_assert_int_eq(clnet_conv2d_output_shape(NULL, cx, cw, y), CLNET_ERR_INVALID_ARG);
    cw[1] = 3;
    ck_assert_int_eq(clnet_conv2d_output_shape(&c, cx, cw, y), CLNET_ERR_SHAPE);
    cw[1] = 4;
    cw[2] = 12;
    ck_assert_int_eq(clnet_conv2d_output_shape(&c, cx, cw, y), CLNET_ERR_SHAPE);
    cw[2] = 3;
    c.pad_left = -1;
    ck_assert_int_eq(clnet_conv2d_output_shape(&c, cx, cw, y), CLNET_ERR_INVALID_ARG);
}
END_TEST

static clnet_tensor *make(clnet_context *ctx, int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = { a, b, c, d };
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, ndim, s, &t));
    if (clnet_tensor_numel(t))
        CK_OK(ctx, clnet_tensor_fill(t, 1.0));
    return t;
}

/* Fills a guarded output, runs the call, checks every element equals want. */
static void expect_filled(clnet_context *ctx, guarded *g, clnet_status st, float want,
                          const char *label)
{
    CK_OK(ctx, st);
    guard_check(ctx, g, label);
    float *v = malloc(g->numel * sizeof(float));
    ck_assert_ptr_nonnull(v);
    download(ctx, g->view, v, g->numel);
    for (size_t i = 0; i < g->numel; i++)
        ck_assert_msg(v[i] == want, "%s: [%zu] = %g, expected %g", label, i, v[i], want);
    free(v);
    guarded_destroy(g);
}

/* Empty tensors launch nothing and succeed; empty reductions write 0 (+ b). */
START_TEST(empty_tensors)
{
    clnet_context *ctx = test_context();
    clnet_conv2d_params p = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    clnet_tensor *x0 = make(ctx, 4, 0, 3, 5, 5), *w = make(ctx, 4, 4, 3, 3, 3),
                 *y0 = make(ctx, 4, 0, 4, 5, 5);
    clnet_tensor *b = make(ctx, 1, 4, 0, 0, 0), *xc0 = make(ctx, 4, 2, 0, 2, 2),
                 *wc0 = make(ctx, 4, 4, 0, 3, 3);
    clnet_tensor *wk0 = make(ctx, 4, 0, 3, 3, 3), *dyk0 = make(ctx, 4, 1, 0, 2, 2);
    CK_OK(ctx, clnet_tensor_fill(b, 2.5));
    CK_OK(ctx, clnet_conv2d_forward(&p, x0, w, b, y0));
    CK_OK(ctx, clnet_conv2d_backward_data(&p, w, y0, x0));
    guarded g;
    int64_t ys[4] = { 2, 4, 2, 2 }, ws[4] = { 4, 3, 3, 3 }, bs = 4, xs[4] = { 1, 3, 2, 2 };
    guarded_create(ctx, 4, ys, &g);
    expect_filled(ctx, &g, clnet_conv2d_forward(&p, xc0, wc0, b, g.view), 2.5f, "forward C = 0");
    guarded_create(ctx, 4, ws, &g);
    expect_filled(ctx, &g, clnet_conv2d_backward_filter(&p, x0, y0, g.view), 0, "filter N = 0");
    guarded_create(ctx, 1, &bs, &g);
    expect_filled(ctx, &g, clnet_conv2d_backward_bias(y0, g.view), 0, "bias N = 0");
    guarded_create(ctx, 4, xs, &g);
    expect_filled(ctx, &g, clnet_conv2d_backward_data(&p, wk0, dyk0, g.view), 0, "data K = 0");
    clnet_tensor *tw = make(ctx, 4, 0, 4, 3, 3), *tx = make(ctx, 4, 2, 0, 2, 2);
    guarded_create(ctx, 4, ys, &g);
    expect_filled(ctx, &g, clnet_conv2d_transpose_forward(&p, tx, tw, b, g.view), 2.5f,
                  "transpose forward K = 0");
    clnet_tensor *all[] = { x0, w, y0, b, xc0, wc0, wk0, dyk0, tw, tx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    clnet_context_destroy(ctx);
}
END_TEST

/* Every check names the argument (and both shapes) in its message. */
START_TEST(bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT, q;
    clnet_tensor *x = make(ctx, 4, 2, 3, 8, 8), *w = make(ctx, 4, 8, 3, 3, 3),
                 *y = make(ctx, 4, 2, 8, 6, 6);
    clnet_tensor *b = make(ctx, 1, 8, 0, 0, 0), *b7 = make(ctx, 1, 7, 0, 0, 0),
                 *w4 = make(ctx, 4, 8, 4, 3, 3);
    clnet_tensor *ybad = make(ctx, 4, 2, 8, 5, 5), *x3 = make(ctx, 3, 2, 3, 64, 0),
                 *big = make(ctx, 4, 8, 3, 9, 9);
    clnet_tensor *dx = make(ctx, 4, 2, 3, 8, 8), *dw = make(ctx, 4, 8, 3, 3, 3),
                 *db5 = make(ctx, 1, 5, 0, 0, 0);
    clnet_tensor *ints, *view, *row;
    int64_t is[4] = { 2, 3, 8, 8 };
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 4, is, &ints));
    CK_OK(ctx, clnet_conv2d_forward(&p, x, w, b, y)); /* the baseline is valid */

    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params: must not be NULL",
             clnet_conv2d_forward(NULL, x, w, b, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL",
             clnet_conv2d_forward(&p, NULL, w, b, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "w: must not be NULL",
             clnet_conv2d_forward(&p, x, NULL, b, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: must not be NULL",
             clnet_conv2d_forward(&p, x, w, b, NULL));
    ck_assert_int_eq(clnet_conv2d_forward(&p, NULL, NULL, NULL, NULL), CLNET_ERR_INVALID_ARG);
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "channels differ", clnet_conv2d_forward(&p, x, w4, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (2, 8, 5, 5) but expected (2, 8, 6, 6)",
             clnet_conv2d_forward(&p, x, w, b, ybad));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "larger than x (2, 3, 8, 8)",
             clnet_conv2d_forward(&p, x, big, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: shape (7) but expected (8)",
             clnet_conv2d_forward(&p, x, w, b7, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: shape (2, 3, 64) but expected 4 dimensions",
             clnet_conv2d_forward(&p, x3, w, b, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: dtype int32 but expected float32",
             clnet_conv2d_forward(&p, ints, w, b, y));
    q = p, q.stride_w = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "stride 1x0", clnet_conv2d_forward(&q, x, w, b, y));
    q = p, q.dilation_h = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dilation 0x1", clnet_conv2d_forward(&q, x, w, b, y));
    q = p, q.pad_right = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "negative padding", clnet_conv2d_forward(&q, x, w, b, y));
    /* An output that overlaps an input: both views of one buffer. */
    clnet_tensor *yv, *xv, *buf = make(ctx, 1, 2000, 0, 0, 0);
    int64_t ys[4] = { 2, 8, 6, 6 };
    CK_OK(ctx, clnet_tensor_slice(buf, 0, 384, &row));
    CK_OK(ctx, clnet_tensor_reshape(row, 4, is, &xv));
    CK_OK(ctx, clnet_tensor_slice(buf, 300, 576, &view));
    CK_OK(ctx, clnet_tensor_reshape(view, 4, ys, &yv));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: overlaps x",
             clnet_conv2d_forward(&p, xv, w, NULL, yv));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: overlaps dy",
             clnet_conv2d_backward_data(&p, w, yv, xv));

    /* Backward directions and the transpose name their own arguments. */
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (2, 8, 5, 5) but expected (2, 8, 6, 6)",
             clnet_conv2d_backward_data(&p, w, ybad, dx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: must not be NULL",
             clnet_conv2d_backward_data(&p, w, y, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "channels differ", clnet_conv2d_backward_filter(&p, x, y, w4));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dy: must not be NULL",
             clnet_conv2d_backward_filter(&p, x, NULL, dw));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "db: shape (5) but expected (8)",
             clnet_conv2d_backward_bias(y, db5));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "db: must not be NULL",
             clnet_conv2d_backward_bias(y, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (2, 3, 8, 8) but expected (2, 3, 7, 7)",
             clnet_conv2d_transpose_forward(&p, ybad, w, NULL, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: shape (8) but expected (3)",
             clnet_conv2d_transpose_forward(&p, y, w, b, dx));
    q = p, q.stride_h = 2, q.output_pad_h = 2;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "output_pad 2x0",
             clnet_conv2d_transpose_forward(&q, y, w, NULL, dx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: must not be NULL",
             clnet_conv2d_transpose_backward_data(&p, w, dx, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (2, 3, 8, 8) but expected (2, 3, 7, 7)",
             clnet_conv2d_transpose_backward_filter(&p, ybad, dx, dw));
    /* Planes past int range are refused, even when empty. */
    clnet_tensor *huge_x = make(ctx, 4, 0, 1, 50000, 50000),
                 *huge_y = make(ctx, 4, 0, 1, 50000, 50000);
    clnet_tensor *w1 = make(ctx, 4, 1, 1, 1, 1);
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "over 2147483647",
             clnet_conv2d_forward(&p, huge_x, w1, NULL, huge_y));
    clnet_tensor_destroy(huge_x);
    clnet_tensor_destroy(huge_y);
    clnet_tensor_destroy(w1);
    /* A tensor of another context. */
    clnet_context *other = test_context();
    clnet_tensor *xo = make(other, 4, 2, 8, 6, 6);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: belongs to another context",
             clnet_conv2d_forward(&p, x, w, b, xo));
    clnet_tensor_destroy(xo);
    clnet_context_destroy(other);
    /* The library stays usable. */
    CK_OK(ctx, clnet_conv2d_forward(&p, x, w, b, y));
    clnet_tensor *all[] = { x,  w,  y,   b,    b7,   w4,  ybad, x3, big,
                            dx, dw, db5, ints, view, row, yv,   xv, buf };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    clnet_context_destroy(ctx);
}
END_TEST

/* Runs every direction and variant of one case, without checking results. */
static void exercise(clnet_context *ctx, const conv_case *cc)
{
    problem pb;
    problem_make(ctx, cc, 0, 5, &pb);
    for (int d = 0; d < NDIRS; d++) {
        int vars[4], nv = variants_of(&pb, (direction)d, vars);
        clnet_tensor *out;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, pb.ndim[dirs[d].out], pb.shape[dirs[d].out],
                                       &out));
        for (int v = -1; v < nv; v++) {
            if (dirs[d].variant)
                CK_OK(ctx, clnet__force_variant(ctx, dirs[d].variant, v < 0 ? -1 : vars[v]));
            CK_OK(ctx, device_call(&pb, (direction)d, out));
        }
        if (dirs[d].variant)
            CK_OK(ctx, clnet__force_variant(ctx, dirs[d].variant, -1));
        clnet_tensor_destroy(out);
    }
    CK_OK(ctx, clnet_context_finish(ctx));
    problem_free(&pb);
}

/* Shapes are kernel arguments: once a first shape has built (or loaded) the
 * programs, a new batch and image size builds nothing. */
START_TEST(new_shapes_build_no_program)
{
    clnet_context *ctx = test_context();
    const conv_case first = { "first", 1, 3, 7, 7, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 };
    const conv_case second = { "second", 3, 3, 12, 9, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1 };
    const conv_case third = { "third", 2, 5, 10, 11, 2, 3, 2, 2, 1, 1, 0, 2, 1, 2, 1, 0, 1 };
    exercise(ctx, &first);
    exercise(ctx, &third);
    clnet_context_stats s0, s1;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s0));
    exercise(ctx, &second);
    const conv_case fourth = { "fourth", 4, 5, 17, 6, 3, 3, 2, 2, 1, 1, 0, 2, 1, 2, 1, 0, 1 };
    exercise(ctx, &fourth);
    CK_OK(ctx, clnet_context_get_stats(ctx, &s1));
    ck_assert_msg(s1.programs_built + s1.programs_loaded == s0.programs_built + s0.programs_loaded,
                  "new shapes built %llu and loaded %llu programs",
                  (unsigned long long)(s1.programs_built - s0.programs_built),
                  (unsigned long long)(s1.programs_loaded - s0.programs_loaded));
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_conv(void)
{
    Suite *s = suite_create("conv");
    TCase *host = tcase_create("host");
    tcase_add_test(host, comparator_negative_controls);
    tcase_add_test(host, params_helpers_and_output_shape);
    suite_add_tcase(s, host);
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, cases_match_reference, 0, NQUICK);
    tcase_add_test(tc, chunked_batches_match_reference);
    tcase_add_test(tc, special_values_propagate);
    tcase_add_test(tc, empty_tensors);
    tcase_add_test(tc, bad_arguments_are_named);
    tcase_add_test(tc, new_shapes_build_no_program);
    tcase_add_test(tc, long_grid_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}
