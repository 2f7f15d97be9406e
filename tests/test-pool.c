/* clnet tests — 2-D max/average pooling and nearest upsampling against the
 * float64 reference (tests/ref.c), every kernel variant, with guard bands,
 * unchanged inputs, determinism, ties, NaN/Inf, bad arguments and caching. */
#include <float.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"
#include "runtime/runtime.h"

/* ---- Operations and their tolerances ----------------------------------------- */

typedef enum { MAX_FWD, MAX_BWD, AVG_FWD, AVG_BWD, UP_FWD, UP_BWD, NOPS } op_id;

/* The tolerance table. An element passes when it equals (float)ref, or, for
 * a non-bitwise op, |got - ref| <= ulps * terms * 2^-24 * mag, where terms is
 * op_terms() and mag the reference run on absolute values (the sum of |each
 * term|). Every op also needs rel_error < 1e-5. */
static const struct op_info {
    const char *name; /* also the op's clnet__variant name */
    int bitwise;
    double ulps;
    const char *why;
} ops[NOPS] = {
    [MAX_FWD] = { "pool2d_max.forward", 1, 0, "a max selects one input element: exact" },
    [MAX_BWD] = { "pool2d_max.backward", 0, 2,
                  "an element sums dy of up to T = ceil(kh/sh)*ceil(kw/sw) windows in float: "
                  "2*T*2^-24*sum|dy|; bitwise when T <= 2 (0 + a + b rounds once) or dy exact" },
    [AVG_FWD] = { "pool2d_avg.forward", 0, 2,
                  "K = kh*kw float adds and one divide (<= 2.5 ulp in OpenCL 1.2): "
                  "2*(K+1)*2^-24*sum|x|/divisor" },
    [AVG_BWD] = { "pool2d_avg.backward", 0, 2,
                  "T terms dy/divisor, each divided (<= 2.5 ulp) then added: "
                  "2*(T+1)*2^-24*sum|dy/divisor|" },
    [UP_FWD] = { "upsample2d_nearest.forward", 1, 0, "a copy: exact" },
    [UP_BWD] = { "upsample2d_nearest.backward", 0, 2,
                 "a block of S = sh*sw dy values summed in float: 2*S*2^-24*sum|dy|" },
};

/* Kernel variants (src/runtime/knobs.h): CLNET_V_RUN_ELEMENT one output per
 * work-item, CLNET_V_RUN_ROW a row, CLNET_V_MAX_2X2 max pooling's float4
 * kernels for 2x2 windows of stride 2 inside the image (other shapes fall
 * back to one of the others; the other ops run one output per work-item). */
#define NVARIANTS 3
static const char *const variant_names[NVARIANTS] = { "element", "row", "2x2" };

static void force_all(clnet_context *ctx, int v)
{
    for (int o = 0; o < NOPS; o++) {
        int max = o == MAX_FWD || o == MAX_BWD;
        CK_OK(ctx, clnet__force_variant(ctx, ops[o].name,
                                        v == CLNET_V_MAX_2X2 && !max ? CLNET_V_RUN_ELEMENT : v));
    }
}

/* ---- One problem ------------------------------------------------------------- */

/* A pooling case: input (n, c, h, w), window, stride, padding t, b, l, r. */
typedef struct pcase {
    int n, c, h, w, kh, kw, sh, sw, pt, pb, pl, pr;
} pcase;

/* One call to check: the op, its geometry, its host inputs (floats) and
 * shapes. For pooling in[0] is x (forward, max backward) or dy (avg
 * backward), in[1] dy (max backward). For upsampling in[0] is x or dy. */
typedef struct problem {
    op_id op;
    pcase k;
    int include_pad, exact, sh, sw; /* sh, sw: upsampling scales */
    int nin;
    const float *in[2];
    int64_t in_shape[2][4], out_shape[4];
    uint64_t seed;
    char label[200];
} problem;

static size_t numel4(const int64_t *s)
{
    return (size_t)(s[0] * s[1] * s[2] * s[3]);
}

static ref_pool2d to_ref(const pcase *k, int include_pad)
{
    ref_pool2d r = { k->n,  k->c,  k->h,  k->w,  k->kh, k->kw,      k->sh,
                     k->sw, k->pt, k->pb, k->pl, k->pr, include_pad };
    return r;
}

static clnet_pool2d_params to_params(const pcase *k, int include_pad)
{
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT;
    p.window_h = k->kh, p.window_w = k->kw, p.stride_h = k->sh, p.stride_w = k->sw;
    p.pad_top = k->pt, p.pad_bottom = k->pb, p.pad_left = k->pl, p.pad_right = k->pr;
    p.count_include_pad = include_pad;
    return p;
}

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

/* How many rounded terms one output element sums (see the table). */
static int op_terms(const problem *pb)
{
    const pcase *k = &pb->k;
    if (pb->op == UP_BWD)
        return pb->sh * pb->sw;
    if (pb->op == UP_FWD)
        return 0;
    int t = ceil_div(k->kh, k->sh) * ceil_div(k->kw, k->sw);
    switch (pb->op) {
    case MAX_BWD:
        return t;
    case AVG_FWD:
        return k->kh * k->kw + 1;
    case AVG_BWD:
        return t + 1;
    default:
        return 0;
    }
}

static double *to_double(const float *f, size_t n, int absolute)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = absolute ? fabs((double)f[i]) : (double)f[i];
    return d;
}

/* The float64 reference of pb into out; with `absolute`, of |inputs| (the
 * magnitude for the bound: max backward keeps x signed, its argmax). */
static void reference(const problem *pb, int absolute, double *out)
{
    double *a = to_double(pb->in[0], numel4(pb->in_shape[0]), absolute && pb->op != MAX_BWD);
    double *b = pb->nin > 1 ? to_double(pb->in[1], numel4(pb->in_shape[1]), absolute) : NULL;
    ref_pool2d r = to_ref(&pb->k, pb->include_pad);
    const int64_t *s = pb->op == UP_BWD ? pb->out_shape : pb->in_shape[0];
    switch (pb->op) {
    case MAX_FWD:
        ref_pool2d_max_forward(&r, a, out);
        break;
    case MAX_BWD:
        ref_pool2d_max_backward(&r, a, b, out);
        break;
    case AVG_FWD:
        ref_pool2d_avg_forward(&r, a, out);
        break;
    case AVG_BWD:
        ref_pool2d_avg_backward(&r, a, out);
        break;
    case UP_FWD:
        ref_upsample2d_nearest_forward((int)s[0], (int)s[1], (int)s[2], (int)s[3], pb->sh, pb->sw,
                                       a, out);
        break;
    default:
        ref_upsample2d_nearest_backward((int)s[0], (int)s[1], (int)s[2], (int)s[3], pb->sh, pb->sw,
                                        a, out);
    }
    free(a);
    free(b);
}

static clnet_status run(const problem *pb, clnet_tensor *const *in, clnet_tensor *out)
{
    clnet_pool2d_params p = to_params(&pb->k, pb->include_pad);
    switch (pb->op) {
    case MAX_FWD:
        return clnet_pool2d_max_forward(&p, in[0], out);
    case MAX_BWD:
        return clnet_pool2d_max_backward(&p, in[0], in[1], out);
    case AVG_FWD:
        return clnet_pool2d_avg_forward(&p, in[0], out);
    case AVG_BWD:
        return clnet_pool2d_avg_backward(&p, in[0], out);
    case UP_FWD:
        return clnet_upsample2d_nearest_forward(pb->sh, pb->sw, in[0], out);
    default:
        return clnet_upsample2d_nearest_backward(pb->sh, pb->sw, in[0], out);
    }
}

/* ---- Comparison -------------------------------------------------------------- */

/* Elements pass when got == (float)ref, or (bitwise == 0) when |got - ref| <=
 * factor * 2^-24 * mag[i]. A non-finite reference or result fails. Prints the
 * first mismatches with label. */
static size_t compare_bound(const char *label, const float *got, const double *ref,
                            const double *mag, double factor, int bitwise, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double bound = bitwise ? 0 : factor * 0x1.0p-24 * mag[i];
        int ok = isfinite(ref[i]) && isfinite(got[i]) &&
                 (got[i] == (float)ref[i] || fabs(got[i] - ref[i]) <= bound);
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (bound %g)\n", label, i, ref[i],
                    (double)got[i], bound);
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements mismatch\n", label, bad, n);
    return bad;
}

/* An input as a view at an odd element offset into a larger buffer, so the
 * kernels' offsets are exercised. *base is the buffer, the view is returned. */
static clnet_tensor *input_view(clnet_context *ctx, const int64_t *shape, const float *data,
                                clnet_tensor **base)
{
    size_t n = numel4(shape);
    int64_t total = (int64_t)n + 41;
    float *buf = calloc((size_t)total, sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf + 37, data, n * sizeof *buf);
    *base = tensor_from(ctx, 1, &total, buf);
    free(buf);
    clnet_tensor *row, *view;
    CK_OK(ctx, clnet_tensor_slice(*base, 37, (int64_t)n, &row));
    CK_OK(ctx, clnet_tensor_reshape(row, 4, shape, &view));
    clnet_tensor_destroy(row);
    return view;
}

/* Runs pb on the device with every check: guard bands, the reference within
 * the table's tolerance, rel_error, trust (not all zero), inputs unchanged,
 * and a second run bitwise equal to the first. */
static void check_problem(clnet_context *ctx, const problem *pb)
{
    clnet_tensor *in[2] = { NULL, NULL }, *base[2] = { NULL, NULL };
    for (int i = 0; i < pb->nin; i++)
        in[i] = input_view(ctx, pb->in_shape[i], pb->in[i], &base[i]);
    size_t ny = numel4(pb->out_shape);
    guarded g;
    guarded_create(ctx, 4, pb->out_shape, &g);
    CK_OK(ctx, run(pb, in, g.view));
    guard_check(ctx, &g, pb->label);

    float *got = malloc(ny * sizeof *got), *again = malloc(ny * sizeof *again);
    double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
    ck_assert(got && again && ref && mag);
    download(ctx, g.view, got, ny);
    reference(pb, 0, ref);
    reference(pb, 1, mag);
    const struct op_info *oi = &ops[pb->op];
    int terms = op_terms(pb);
    int bitwise = oi->bitwise || pb->exact || (pb->op == MAX_BWD && terms <= 2);
    size_t bad = compare_bound(pb->label, got, ref, mag, oi->ulps * terms, bitwise, ny);
    ck_assert_msg(bad == 0,
                  "%s: %zu of %zu mismatch (%s); reproduce: ./build/tests/clnet-tests pool",
                  pb->label, bad, ny, oi->why);
    double rel = rel_error(got, ref, ny);
    ck_assert_msg(rel < 1e-5, "%s: rel_error %g", pb->label, rel);
    /* Trust: forwards and upsampling of random data have no exact zeros to
     * speak of; backward pools legitimately do (one winner per window,
     * uncovered elements), so they only must not be all zero. */
    size_t zeros = 0;
    for (size_t i = 0; i < ny; i++)
        zeros += ref[i] == 0.0;
    ck_assert_msg(zeros < ny, "%s: the reference is all zeros: the case proves nothing", pb->label);
    if (pb->op != MAX_BWD && pb->op != AVG_BWD)
        ck_assert_msg(zeros * 10 <= ny * 3, "%s: %zu of %zu reference zeros", pb->label, zeros, ny);

    /* Inputs unchanged; the same bits again into a fresh tensor. */
    for (int i = 0; i < pb->nin; i++) {
        size_t n = numel4(pb->in_shape[i]);
        float *now = malloc(n * sizeof *now);
        ck_assert_ptr_nonnull(now);
        download(ctx, in[i], now, n);
        ck_assert_msg(!memcmp(now, pb->in[i], n * sizeof *now), "%s: input %d changed", pb->label,
                      i);
        free(now);
    }
    clnet_tensor *second;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, pb->out_shape, &second));
    CK_OK(ctx, run(pb, in, second));
    download(ctx, second, again, ny);
    ck_assert_msg(!memcmp(got, again, ny * sizeof *got), "%s: a second run differs", pb->label);
    clnet_tensor_destroy(second);
    free(got), free(again), free(ref), free(mag);
    guarded_destroy(&g);
    for (int i = 0; i < pb->nin; i++)
        clnet_tensor_destroy(in[i]), clnet_tensor_destroy(base[i]);
}

/* ---- Test data ----------------------------------------------------------------- */

/* n distinct values in [-0.5, 0.5) in random order, each exact in float
 * (an integer times a power of two): max pooling without ties. */
static void fill_distinct(float *x, size_t n, uint64_t *state)
{
    size_t p2 = 1;
    while (p2 < n)
        p2 *= 2;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)i - (double)n / 2) / (float)p2;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(test_rng(state) % i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

/* Multiples of 2^-6 in [-2, 2]: every sum of up to 2^17 of them is exact,
 * so any summation order gives the reference bit for bit ("exact mode"). */
static void fill_exact(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(test_rng(state) % 257) - 128) / 64.0f;
}

static void pool_label(problem *pb, const char *extra, int variant)
{
    const pcase *k = &pb->k;
    snprintf(pb->label, sizeof pb->label,
             "%s%s mb%dic%dih%diw%d k%dx%d s%dx%d pad%d,%d,%d,%d%s variant %s seed %llu",
             ops[pb->op].name, extra, k->n, k->c, k->h, k->w, k->kh, k->kw, k->sh, k->sw, k->pt,
             k->pb, k->pl, k->pr, pb->include_pad ? " include_pad" : "", variant_names[variant],
             (unsigned long long)pb->seed);
}

/* Every pooling op of case k under one variant: max forward and backward
 * (distinct x; dy real and exact), average forward and backward with and
 * without count_include_pad. */
static void check_pool_case(clnet_context *ctx, const pcase *k, int variant, uint64_t seed)
{
    ref_pool2d r = to_ref(k, 0);
    int64_t xs[4] = { k->n, k->c, k->h, k->w };
    int64_t ys[4] = { k->n, k->c, ref_pool2d_out_h(&r), ref_pool2d_out_w(&r) };
    size_t nx = numel4(xs), ny = numel4(ys);
    float *xd = host_f32(nx), *xu = host_f32(nx), *dy = host_f32(ny), *dye = host_f32(ny);
    uint64_t st = seed;
    fill_distinct(xd, nx, &st);
    fill_uniform(xu, nx, -1, 1, &st);
    fill_uniform(dy, ny, -1, 1, &st);
    fill_exact(dye, ny, &st);
    force_all(ctx, variant);
    problem pb = { .k = *k, .seed = seed, .nin = 1 };
    memcpy(pb.in_shape[0], xs, sizeof xs);
    memcpy(pb.out_shape, ys, sizeof ys);
    pb.op = MAX_FWD, pb.in[0] = xd;
    pool_label(&pb, "", variant);
    check_problem(ctx, &pb);
    pb.op = MAX_BWD, pb.nin = 2, pb.in[1] = dy;
    memcpy(pb.in_shape[1], ys, sizeof ys);
    memcpy(pb.out_shape, xs, sizeof xs);
    for (int exact = 0; exact < 2; exact++) {
        pb.exact = exact, pb.in[1] = exact ? dye : dy;
        pool_label(&pb, exact ? " (exact dy)" : "", variant);
        check_problem(ctx, &pb);
    }
    pb.exact = 0, pb.nin = 1;
    for (int inc = 0; inc < 2; inc++) {
        pb.include_pad = inc;
        pb.op = AVG_FWD, pb.in[0] = xu;
        memcpy(pb.out_shape, ys, sizeof ys);
        pool_label(&pb, "", variant);
        check_problem(ctx, &pb);
        pb.op = AVG_BWD, pb.in[0] = dy;
        memcpy(pb.in_shape[0], ys, sizeof ys);
        memcpy(pb.out_shape, xs, sizeof xs);
        pool_label(&pb, "", variant);
        check_problem(ctx, &pb);
        memcpy(pb.in_shape[0], xs, sizeof xs);
    }
    force_all(ctx, -1);
    free(xd), free(xu), free(dy), free(dye);
}

/* ---- Pooling against the reference ---------------------------------------------- */

static const pcase quick_cases[] = {
    /* n  c   h   w  kh kw sh sw pt pb pl pr */
    { 1, 1, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0 },   /* 1x1 window: identity */
    { 3, 3, 33, 33, 2, 2, 2, 2, 0, 0, 0, 0 }, /* odd size: floor drops a row */
    { 1, 7, 31, 31, 3, 3, 1, 1, 1, 1, 1, 1 }, /* 3x3 stride 1 "same" */
    { 3, 3, 7, 7, 3, 3, 2, 2, 1, 0, 2, 1 },   /* asymmetric padding */
    { 1, 3, 31, 33, 2, 3, 1, 2, 1, 0, 0, 2 }, /* non-square window, strides 1x2 */
    { 3, 1, 33, 31, 3, 2, 3, 3, 0, 0, 0, 0 }, /* stride 3: 3x2 windows skip columns */
    { 1, 7, 33, 33, 3, 3, 3, 3, 2, 1, 0, 2 }, /* stride 3 with padding */
    { 3, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 },   /* spatial size 1 */
    { 2, 3, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1 },   /* size 1, window mostly padding */
    { 1, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0 },   /* global pool of 3x3 */
    { 1, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1 },   /* 3x3/2 pad 1 on 3x3 */
    { 1, 7, 31, 33, 2, 2, 1, 1, 0, 0, 0, 0 }, /* 2x2 stride 1, overlapping */
    { 3, 1, 7, 31, 2, 3, 2, 3, 1, 1, 2, 2 },  /* non-square, padding on all sides */
    { 1, 3, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0 },   /* 2x2: one window */
    { 3, 1, 7, 18, 2, 2, 2, 2, 0, 1, 0, 1 },  /* 2x2: 9 outputs a row (4 + 4 + 1), pad dropped */
    { 1, 3, 17, 16, 2, 2, 2, 2, 0, 0, 0, 0 }, /* 2x2: 8 a row, odd height */
};
#define NQUICK (int)(sizeof quick_cases / sizeof quick_cases[0])

/* The reference CNN's pools: 2x2 stride 2 after each convolution, batch 2. */
static const pcase cnn_cases[] = {
    { 2, 32, 26, 26, 2, 2, 2, 2, 0, 0, 0, 0 },
    { 2, 64, 11, 11, 2, 2, 2, 2, 0, 0, 0, 0 },
};
#define NCNN (int)(sizeof cnn_cases / sizeof cnn_cases[0])

static const pcase long_cases[] = {
    { 32, 32, 26, 26, 2, 2, 2, 2, 0, 0, 0, 0 }, { 32, 64, 11, 11, 2, 2, 2, 2, 0, 0, 0, 0 },
    { 8, 16, 65, 63, 3, 3, 2, 2, 1, 1, 1, 1 },  { 4, 8, 64, 64, 5, 4, 3, 2, 2, 4, 3, 1 },
    { 2, 3, 224, 224, 3, 3, 2, 2, 1, 1, 1, 1 },
};
#define NLONG (int)(sizeof long_cases / sizeof long_cases[0])

static void check_cases(const pcase *cases, int i, uint64_t seed)
{
    clnet_context *ctx = test_context();
    for (int v = 0; v < NVARIANTS; v++)
        check_pool_case(ctx, &cases[i], v, seed + (uint64_t)i);
    clnet_context_destroy(ctx);
}

START_TEST(pool_matches_reference)
{
    check_cases(quick_cases, _i, 1000);
}
END_TEST

START_TEST(pool_reference_cnn_layers)
{
    check_cases(cnn_cases, _i, 2000);
}
END_TEST

START_TEST(pool_long_shapes)
{
    if (test_long()) /* CLNET_TEST_LONG=1 */
        check_cases(long_cases, _i, 3000);
}
END_TEST

/* ---- Nearest upsampling against the reference --------------------------------------- */

static const struct ucase {
    int n, c, h, w, sh, sw;
} up_cases[] = {
    { 1, 1, 1, 1, 1, 1 },  { 3, 7, 7, 3, 2, 2 }, { 2, 3, 31, 33, 3, 2 },
    { 1, 1, 33, 1, 1, 3 }, { 1, 3, 1, 7, 4, 1 }, { 2, 32, 7, 7, 2, 2 }, /* DCGAN-like */
};
#define NUP (int)(sizeof up_cases / sizeof up_cases[0])

START_TEST(upsample_matches_reference)
{
    clnet_context *ctx = test_context();
    const struct ucase *u = &up_cases[_i];
    int64_t small[4] = { u->n, u->c, u->h, u->w };
    int64_t big[4] = { u->n, u->c, (int64_t)u->h * u->sh, (int64_t)u->w * u->sw };
    size_t ns = numel4(small), nb = numel4(big);
    float *x = host_f32(ns), *dy = host_f32(nb);
    uint64_t st = 4000 + (uint64_t)_i;
    fill_uniform(x, ns, -1, 1, &st);
    fill_uniform(dy, nb, -1, 1, &st);
    for (int v = 0; v < NVARIANTS; v++)
        for (int o = UP_FWD; o <= UP_BWD; o++) {
            int fwd = o == UP_FWD;
            force_all(ctx, v);
            problem pb = { .op = (op_id)o,
                           .sh = u->sh,
                           .sw = u->sw,
                           .nin = 1,
                           .in = { fwd ? x : dy },
                           .seed = 4000 + (uint64_t)_i };
            memcpy(pb.in_shape[0], fwd ? small : big, sizeof small);
            memcpy(pb.out_shape, fwd ? big : small, sizeof big);
            snprintf(pb.label, sizeof pb.label, "%s mb%dic%dih%diw%d scale %dx%d variant %s",
                     ops[o].name, u->n, u->c, u->h, u->w, u->sh, u->sw, variant_names[v]);
            check_problem(ctx, &pb);
        }
    force_all(ctx, -1);
    free(x), free(dy);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Ties: the first maximum takes the gradient ---------------------------------------- */

/* Runs max forward and backward on a small hand-made input and compares
 * bits with the expected y and dx. */
static void expect_max(clnet_context *ctx, const pcase *k, const float *x, const float *dy,
                       const float *want_y, const float *want_dx, const char *what)
{
    clnet_pool2d_params p = to_params(k, 0);
    ref_pool2d r = to_ref(k, 0);
    int64_t xs[4] = { k->n, k->c, k->h, k->w };
    int64_t ys[4] = { k->n, k->c, ref_pool2d_out_h(&r), ref_pool2d_out_w(&r) };
    size_t nx = numel4(xs), ny = numel4(ys);
    clnet_tensor *tx = tensor_from(ctx, 4, xs, x), *tdy = tensor_from(ctx, 4, ys, dy), *ty, *tdx;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, ys, &ty));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, xs, &tdx));
    CK_OK(ctx, clnet_pool2d_max_forward(&p, tx, ty));
    CK_OK(ctx, clnet_pool2d_max_backward(&p, tx, tdy, tdx));
    float *y = host_f32(ny), *dx = host_f32(nx);
    download(ctx, ty, y, ny);
    download(ctx, tdx, dx, nx);
    for (size_t i = 0; i < ny; i++)
        ck_assert_msg(!memcmp(&y[i], &want_y[i], sizeof *y), "%s: y[%zu] = %g, expected %g", what,
                      i, (double)y[i], (double)want_y[i]);
    for (size_t i = 0; i < nx; i++)
        ck_assert_msg(!memcmp(&dx[i], &want_dx[i], sizeof *dx), "%s: dx[%zu] = %g, expected %g",
                      what, i, (double)dx[i], (double)want_dx[i]);
    free(y), free(dx);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tdy);
    clnet_tensor_destroy(ty), clnet_tensor_destroy(tdx);
}

START_TEST(max_ties_go_to_the_first)
{
    clnet_context *ctx = test_context();
    for (int v = 0; v < NVARIANTS; v++) {
        force_all(ctx, v);
        /* All equal, 2x2 stride 2: each window's top-left element wins. */
        const pcase k22 = { 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0 };
        float ones[16], dx[16] = { 0 };
        for (int i = 0; i < 16; i++)
            ones[i] = 1.0f;
        dx[0] = 1, dx[2] = 2, dx[8] = 3, dx[10] = 4;
        expect_max(ctx, &k22, ones, (const float[]){ 1, 2, 3, 4 }, (const float[]){ 1, 1, 1, 1 },
                   dx, "2x2/2 all equal");
        /* Overlapping 3x3 stride 1 windows: each gives its dy to its own corner. */
        const pcase k33 = { 1, 1, 4, 4, 3, 3, 1, 1, 0, 0, 0, 0 };
        memset(dx, 0, sizeof dx);
        dx[0] = 1, dx[1] = 2, dx[4] = 3, dx[5] = 4;
        expect_max(ctx, &k33, ones, (const float[]){ 1, 2, 3, 4 }, (const float[]){ 1, 1, 1, 1 },
                   dx, "3x3/1 all equal");
        /* A tie at the maximum after a smaller first element: the first 5 wins. */
        const pcase k14 = { 1, 1, 1, 4, 1, 4, 1, 1, 0, 0, 0, 0 };
        expect_max(ctx, &k14, (const float[]){ 3, 5, 4, 5 }, (const float[]){ 7 },
                   (const float[]){ 5 }, (const float[]){ 0, 7, 0, 0 }, "1x4 tie 3 5 4 5");
        /* -0 and +0 compare equal: the first one is kept, its sign included. */
        const pcase k12 = { 1, 1, 1, 2, 1, 2, 1, 1, 0, 0, 0, 0 };
        expect_max(ctx, &k12, (const float[]){ -0.0f, 0.0f }, (const float[]){ 2 },
                   (const float[]){ -0.0f }, (const float[]){ 2, 0 }, "-0 then +0");
        expect_max(ctx, &k12, (const float[]){ 0.0f, -0.0f }, (const float[]){ 2 },
                   (const float[]){ 0.0f }, (const float[]){ 2, 0 }, "+0 then -0");
    }
    force_all(ctx, -1);
    clnet_context_destroy(ctx);
}
END_TEST

/* dx under a LAST-maximum rule (no NaN), to show a tie case has power. */
static void last_max_backward(const ref_pool2d *p, const double *x, const double *dy, double *dx)
{
    int oh = ref_pool2d_out_h(p), ow = ref_pool2d_out_w(p);
    size_t plane = (size_t)p->h * (size_t)p->w, planes = (size_t)p->n * (size_t)p->c;
    memset(dx, 0, planes * plane * sizeof *dx);
    for (size_t q = 0; q < planes; q++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int y0 = i * p->stride_h - p->pad_t, x0 = j * p->stride_w - p->pad_l;
                size_t best = SIZE_MAX;
                for (int iy = y0; iy < y0 + p->kh; iy++)
                    for (int ix = x0; ix < x0 + p->kw; ix++) {
                        size_t e = q * plane + (size_t)iy * (size_t)p->w + (size_t)ix;
                        if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w &&
                            (best == SIZE_MAX || x[e] >= x[best]))
                            best = e;
                    }
                dx[best] += dy[(q * (size_t)oh + (size_t)i) * (size_t)ow + (size_t)j];
            }
}

/* Random inputs full of ties (values 0, 1, 2) against the first-max
 * reference, bitwise with exact dy; the same dy under a last-max rule would
 * differ, so the case can tell the rules apart. */
START_TEST(max_random_ties_match_reference)
{
    static const pcase tie_cases[] = {
        { 2, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0 },
        { 1, 3, 31, 33, 3, 3, 1, 1, 1, 1, 1, 1 },
        { 3, 1, 33, 31, 2, 3, 1, 2, 1, 0, 0, 2 },
    };
    clnet_context *ctx = test_context();
    for (int v = 0; v < NVARIANTS; v++)
        for (size_t c = 0; c < sizeof tie_cases / sizeof tie_cases[0]; c++) {
            const pcase *k = &tie_cases[c];
            ref_pool2d r = to_ref(k, 0);
            int64_t xs[4] = { k->n, k->c, k->h, k->w };
            int64_t ys[4] = { k->n, k->c, ref_pool2d_out_h(&r), ref_pool2d_out_w(&r) };
            size_t nx = numel4(xs), ny = numel4(ys);
            float *x = host_f32(nx), *dy = host_f32(ny);
            uint64_t st = 5000 + c;
            for (size_t i = 0; i < nx; i++)
                x[i] = (float)(test_rng(&st) % 3);
            fill_exact(dy, ny, &st);
            force_all(ctx, v);
            problem pb = { .op = MAX_FWD, .k = *k, .nin = 1, .in = { x }, .seed = 5000 + c };
            memcpy(pb.in_shape[0], xs, sizeof xs);
            memcpy(pb.out_shape, ys, sizeof ys);
            pool_label(&pb, " (ties)", v);
            check_problem(ctx, &pb);
            pb.op = MAX_BWD, pb.nin = 2, pb.in[1] = dy, pb.exact = 1;
            memcpy(pb.in_shape[1], ys, sizeof ys);
            memcpy(pb.out_shape, xs, sizeof xs);
            pool_label(&pb, " (ties, exact dy)", v);
            check_problem(ctx, &pb);
            /* Power: a last-maximum rule gives another dx on this input. */
            double *xd = to_double(x, nx, 0), *dyd = to_double(dy, ny, 0);
            double *dx1 = malloc(nx * sizeof *dx1), *dx2 = malloc(nx * sizeof *dx2);
            ck_assert(dx1 && dx2);
            ref_pool2d_max_backward(&r, xd, dyd, dx1);
            last_max_backward(&r, xd, dyd, dx2);
            ck_assert_msg(memcmp(dx1, dx2, nx * sizeof *dx1) != 0,
                          "tie case %zu cannot tell first from last maximum", c);
            free(dx1), free(dx2), free(xd), free(dyd), free(x), free(dy);
        }
    force_all(ctx, -1);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- NaN, Inf, -0, FLT_MAX and denormals --------------------------------------------- */

/* For special values: NaN matches any NaN; otherwise the bits of (float)ref
 * must match (sign of zero and Inf included), unless factor or abs is set:
 * then a finite result may differ by factor * 2^-24 * mag + abs. */
static size_t compare_special(const char *label, const float *got, const double *ref,
                              const double *mag, double factor, double abs, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float r = (float)ref[i];
        int ok;
        if (isnan(ref[i]) || isnan(got[i]))
            ok = isnan(ref[i]) && isnan(got[i]);
        else if (isinf(ref[i]) || isinf(got[i]))
            ok = got[i] == r;
        else if (factor == 0 && abs == 0)
            ok = !memcmp(&got[i], &r, sizeof r);
        else
            ok = fabs(got[i] - ref[i]) <= factor * 0x1.0p-24 * mag[i] + abs;
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %a, got %a\n", label, i, ref[i], (double)got[i]);
    }
    return bad;
}

/* Runs pb and compares with compare_special (no guard or trust checks:
 * those are covered above; here only the values matter). */
static void check_special(clnet_context *ctx, const problem *pb, double factor, double abs)
{
    clnet_tensor *in[2] = { NULL, NULL }, *out;
    for (int i = 0; i < pb->nin; i++)
        in[i] = tensor_from(ctx, 4, pb->in_shape[i], pb->in[i]);
    size_t ny = numel4(pb->out_shape);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, pb->out_shape, &out));
    CK_OK(ctx, run(pb, in, out));
    float *got = host_f32(ny);
    double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
    ck_assert(ref && mag);
    download(ctx, out, got, ny);
    reference(pb, 0, ref);
    reference(pb, 1, mag);
    ck_assert_msg(compare_special(pb->label, got, ref, mag, factor, abs, ny) == 0, "%s", pb->label);
    free(got), free(ref), free(mag);
    clnet_tensor_destroy(out);
    for (int i = 0; i < pb->nin; i++)
        clnet_tensor_destroy(in[i]);
}

START_TEST(nan_inf_policy)
{
    clnet_context *ctx = test_context();
    const float inf = INFINITY, nan = NAN, big = FLT_MAX, den = 0x1.0p-140f;
    /* 4x8 input, 2x2 windows with stride 2: eight windows, one theme each.
     * Top row of windows: a NaN second and third (the first wins); +Inf;
     * all -Inf; +Inf with -Inf. Bottom row: FLT_MAX twice with -FLT_MAX; a
     * denormal maximum; -0 first of equal zeros; denormals only. */
    const float d149 = 0x1.0p-149f, d130 = 0x1.0p-130f, d145 = 0x1.0p-145f;
    /* clang-format off */
    const float x[32] = {
        1,   nan,  inf,  3,    -inf, -inf, inf,  -inf,
        nan, 2,    -1,   5,    -inf, -inf, 1,    1,
        big, -big, -1,   den,  -0.f, 0.f,  den,  d149,
        1,   big,  -0.f, -2,   -1,   -0.f, d130, d145,
    };
    /* clang-format on */
    const float dy[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, dy_nan[8] = { 1, nan, 3, inf, 5, 6, 7, 8 };
    const pcase k = { 1, 1, 4, 8, 2, 2, 2, 2, 0, 0, 0, 0 };
    for (int v = 0; v < NVARIANTS; v++) {
        force_all(ctx, v);
        problem pb = { .op = MAX_FWD,
                       .k = k,
                       .nin = 1,
                       .in = { x },
                       .in_shape = { { 1, 1, 4, 8 }, { 1, 1, 2, 4 } },
                       .out_shape = { 1, 1, 2, 4 } };
        pool_label(&pb, " (specials)", v);
        check_special(ctx, &pb, 0, 0); /* bits: NaN wins, -0 kept, denormal exact */
        pb.op = MAX_BWD, pb.nin = 2, pb.in[1] = dy;
        memcpy(pb.out_shape, pb.in_shape[0], sizeof pb.out_shape);
        pool_label(&pb, " (specials: gradient to the first NaN)", v);
        check_special(ctx, &pb, 0, 0);
        pb.in[1] = dy_nan;
        pool_label(&pb, " (NaN and Inf in dy reach only their element)", v);
        check_special(ctx, &pb, 0, 0);
        /* Average: IEEE arithmetic. Denormals may be flushed (OpenCL 1.2 does
         * not require float denormals): allow K+1 times FLT_MIN absolute. */
        for (int inc = 0; inc < 2; inc++) {
            pb.op = AVG_FWD, pb.nin = 1, pb.include_pad = inc;
            memcpy(pb.out_shape, pb.in_shape[1], sizeof pb.out_shape);
            pool_label(&pb, " (specials)", v);
            check_special(ctx, &pb, 2 * 5, 5 * FLT_MIN);
        }
        /* Upsampling copies bits: NaN, Inf, -0 and denormals pass through. */
        pb = (problem){ .op = UP_FWD,
                        .sh = 2,
                        .sw = 3,
                        .nin = 1,
                        .in = { x },
                        .in_shape = { { 1, 1, 4, 8 } },
                        .out_shape = { 1, 1, 8, 24 } };
        snprintf(pb.label, sizeof pb.label, "upsample forward (specials) variant %s",
                 variant_names[v]);
        check_special(ctx, &pb, 0, 0);
        pb.op = UP_BWD, pb.sh = pb.sw = 2;
        memcpy(pb.out_shape, (int64_t[]){ 1, 1, 2, 4 }, sizeof pb.out_shape);
        snprintf(pb.label, sizeof pb.label, "upsample backward (specials) variant %s",
                 variant_names[v]);
        check_special(ctx, &pb, 2 * 4, 4 * FLT_MIN);
    }
    force_all(ctx, -1);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The comparators can fail ------------------------------------------------------ */

START_TEST(comparators_catch_errors)
{
    double ref[4] = { 1.5, -2.25, 1e-3, 7 }, mag[4] = { 3, 3, 3, 3 };
    float got[4];
    for (int i = 0; i < 4; i++)
        got[i] = (float)ref[i];
    ck_assert_uint_eq(compare_bound("control", got, ref, mag, 4, 0, 4), 0);
    ck_assert_uint_eq(compare_bound("control", got, ref, mag, 4, 1, 4), 0);
    /* One element off by twice its bound, then by one ulp in bitwise mode. */
    got[1] = (float)(ref[1] + 2 * 4 * 0x1.0p-24 * mag[1]);
    ck_assert_uint_eq(compare_bound("negative control", got, ref, mag, 4, 0, 4), 1);
    got[1] = nextafterf((float)ref[1], 0);
    ck_assert_uint_eq(compare_bound("negative control", got, ref, mag, 0, 1, 4), 1);
    got[1] = (float)ref[1];
    got[2] = NAN;
    ck_assert_uint_eq(compare_bound("negative control", got, ref, mag, 1e30, 0, 4), 1);
    got[2] = (float)ref[2];
    ref[3] = INFINITY; /* a broken reference fails the test, even if got agrees */
    got[3] = INFINITY;
    ck_assert_uint_eq(compare_bound("negative control", got, ref, mag, 4, 0, 4), 1);
    /* compare_special: the sign of zero, NaN against a number, Inf signs. */
    double zr[3] = { -0.0, NAN, INFINITY }, zm[3] = { 0, 0, 0 };
    float zg[3] = { -0.0f, NAN, INFINITY };
    ck_assert_uint_eq(compare_special("control", zg, zr, zm, 0, 0, 3), 0);
    zg[0] = 0.0f;
    ck_assert_uint_eq(compare_special("negative control", zg, zr, zm, 0, 0, 3), 1);
    zg[0] = -0.0f, zg[1] = 1.0f, zg[2] = -INFINITY;
    ck_assert_uint_eq(compare_special("negative control", zg, zr, zm, 0, 0, 3), 2);
}
END_TEST

/* ---- Geometry, bad arguments, empty tensors, program cache ------------------------------ */

START_TEST(output_shape_is_floor_mode)
{
    static const struct {
        pcase k;
        int oh, ow; /* by hand; PyTorch's MaxPool2d agrees where padding is symmetric */
    } cases[] = {
        { { 2, 32, 26, 26, 2, 2, 2, 2, 0, 0, 0, 0 }, 13, 13 },
        { { 2, 64, 11, 11, 2, 2, 2, 2, 0, 0, 0, 0 }, 5, 5 },
        { { 1, 1, 33, 7, 3, 3, 2, 2, 1, 1, 1, 1 }, 17, 4 },
        { { 1, 1, 7, 7, 3, 2, 3, 1, 2, 0, 1, 0 }, 3, 7 },
        { { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 }, 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pcase *k = &cases[i].k;
        clnet_pool2d_params p = to_params(k, 0);
        ref_pool2d r = to_ref(k, 0);
        int64_t xs[4] = { k->n, k->c, k->h, k->w }, ys[4];
        ck_assert_int_eq(clnet_pool2d_output_shape(&p, xs, ys), CLNET_OK);
        ck_assert(ys[0] == k->n && ys[1] == k->c && ys[2] == cases[i].oh && ys[3] == cases[i].ow);
        ck_assert(ys[2] == ref_pool2d_out_h(&r) && ys[3] == ref_pool2d_out_w(&r));
    }
    /* The default: 2x2 stride 2, no padding, count_include_pad 0. */
    clnet_pool2d_params d = CLNET_POOL2D_PARAMS_DEFAULT;
    ck_assert(d.window_h == 2 && d.window_w == 2 && d.stride_h == 2 && d.stride_w == 2);
    ck_assert(!d.pad_top && !d.pad_bottom && !d.pad_left && !d.pad_right && !d.count_include_pad);
    int64_t xs[4] = { 1, 1, 4, 4 }, ys[4];
    ck_assert_int_eq(clnet_pool2d_output_shape(NULL, xs, ys), CLNET_ERR_INVALID_ARG);
    d.stride_w = 0;
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_INVALID_ARG);
    d.stride_w = 2, d.pad_top = 2;
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_INVALID_ARG);
    d.pad_top = 0;
    xs[2] = 0;
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_INVALID_ARG);
    xs[2] = 1; /* 1 row < 2-row window */
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_INVALID_ARG);
    xs[2] = 1 << 20, xs[3] = 1 << 12; /* a 2^32-element plane */
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_TOO_LARGE);
    xs[2] = INT64_MAX - 1; /* no overflow on the way (UBSan would see it) */
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_TOO_LARGE);
    xs[2] = xs[3] = 1; /* a 1x1 input whose padding makes a 2^32-element output */
    d.window_h = d.window_w = 1 << 16, d.stride_h = d.stride_w = 1;
    d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = (1 << 16) - 1;
    ck_assert_int_eq(clnet_pool2d_output_shape(&d, xs, ys), CLNET_ERR_TOO_LARGE);
}
END_TEST

static clnet_tensor *make(clnet_context *ctx, clnet_dtype dt, int ndim, const int64_t *shape)
{
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, dt, ndim, shape, &t));
    return t;
}

START_TEST(pool_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t xs[4] = { 1, 2, 4, 4 }, ys[4] = { 1, 2, 2, 2 };
    clnet_tensor *x = make(ctx, CLNET_F32, 4, xs), *y = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *dx = make(ctx, CLNET_F32, 4, xs), *dy = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *xi = make(ctx, CLNET_I32, 4, xs), *y3 = make(ctx, CLNET_F32, 3, ys + 1);
    clnet_tensor *ybad = make(ctx, CLNET_F32, 4, (int64_t[]){ 1, 2, 3, 2 });
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT, q;
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    q = p, q.window_h = 5;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "5x2 window is larger than the padded input 4x4",
             clnet_pool2d_max_forward(&q, x, y));
    q = p, q.window_w = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params->window_w is 0",
             clnet_pool2d_avg_forward(&q, x, y));
    q = p, q.stride_h = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params->stride_h is 0",
             clnet_pool2d_max_forward(&q, x, y));
    q = p, q.pad_left = 2;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params->pad_left is 2, must be in [0, window_w)",
             clnet_pool2d_max_backward(&q, x, dy, dx));
    q = p, q.pad_bottom = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params->pad_bottom is -1",
             clnet_pool2d_avg_backward(&q, dy, dx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "params is NULL", clnet_pool2d_max_forward(NULL, x, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL",
             clnet_pool2d_max_forward(&p, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: must not be NULL",
             clnet_pool2d_avg_forward(&p, x, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dy: must not be NULL",
             clnet_pool2d_max_backward(&p, x, NULL, dx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: must not be NULL",
             clnet_pool2d_avg_backward(&p, dy, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (1, 2, 3, 2) but expected (1, 2, 2, 2)",
             clnet_pool2d_max_forward(&p, x, ybad));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (1, 2, 3, 2) but expected (1, 2, 2, 2)",
             clnet_pool2d_max_backward(&p, x, ybad, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dx: shape (1, 2, 2, 2) but expected (1, 2, 4, 4)",
             clnet_pool2d_max_backward(&p, x, dy, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (1, 2, 4, 4) but expected (1, 2, 2, 2)",
             clnet_pool2d_avg_backward(&p, x, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: dtype int32 but expected float32",
             clnet_pool2d_max_forward(&p, xi, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (2, 2, 2) but expected 4 dimensions",
             clnet_pool2d_avg_forward(&p, x, y3));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: overlaps x", clnet_pool2d_max_backward(&p, x, dy, x));
    /* An output that shares storage with the input (a view of the same buffer). */
    clnet_tensor *flat, *part, *alias;
    int64_t n32 = 32, n8 = 8;
    CK_OK(ctx, clnet_tensor_reshape(x, 1, &n32, &flat));
    CK_OK(ctx, clnet_tensor_slice(flat, 3, n8, &part));
    CK_OK(ctx, clnet_tensor_reshape(part, 4, ys, &alias));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: overlaps x", clnet_pool2d_avg_forward(&p, x, alias));
    /* A tensor of another context. */
    clnet_context *other = test_context();
    clnet_tensor *foreign = make(other, CLNET_F32, 4, ys);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: belongs to another context",
             clnet_pool2d_max_forward(&p, x, foreign));
    clnet_tensor_destroy(foreign);
    clnet_context_destroy(other);
    /* Nothing was queued, and the context still works. */
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.kernel_launches, before.kernel_launches);
    CK_OK(ctx, clnet_tensor_fill(x, 1.0));
    CK_OK(ctx, clnet_pool2d_max_forward(&p, x, y));
    float got[8];
    download(ctx, y, got, 8);
    ck_assert(got[0] == 1.0f && got[7] == 1.0f);
    clnet_tensor *ts[] = { x, y, dx, dy, xi, y3, ybad, flat, part, alias };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clnet_tensor_destroy(ts[i]);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(upsample_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t s[4] = { 2, 3, 4, 5 }, b[4] = { 2, 3, 8, 15 };
    clnet_tensor *x = make(ctx, CLNET_F32, 4, s), *y = make(ctx, CLNET_F32, 4, b);
    clnet_tensor *xi = make(ctx, CLNET_I32, 4, s);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "scale_h 0 and scale_w 3 must be >= 1",
             clnet_upsample2d_nearest_forward(0, 3, x, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (2, 3, 8, 15) but expected (2, 3, 8, 10)",
             clnet_upsample2d_nearest_forward(2, 2, x, y));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy: shape (2, 3, 8, 15) but expected (2, 3, 12, 15)",
             clnet_upsample2d_nearest_backward(3, 3, y, x));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "x: must not be NULL",
             clnet_upsample2d_nearest_forward(2, 3, NULL, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: must not be NULL",
             clnet_upsample2d_nearest_backward(2, 3, y, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dx: dtype int32 but expected float32",
             clnet_upsample2d_nearest_backward(2, 3, y, xi));
    /* Kernels index a plane with int: a larger one is refused (no overflow
     * on the way; an empty tensor may have any dims). */
    clnet_tensor *huge = make(ctx, CLNET_F32, 4, (int64_t[]){ 0, 1, (int64_t)1 << 40, 3 });
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "a plane exceeds 2^31 - 1 elements",
             clnet_upsample2d_nearest_forward(2, 2, huge, y));
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "exceeds 2^31 - 1 elements",
             clnet_pool2d_max_forward(&p, huge, y));
    CK_OK(ctx, clnet_upsample2d_nearest_forward(2, 3, x, y));
    clnet_tensor_destroy(huge);
    clnet_tensor_destroy(x), clnet_tensor_destroy(y), clnet_tensor_destroy(xi);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The training pair: forward with indices, backward from indices ---------- */

/* x of kind 0 distinct, 1 heavy ties (4 levels), 2 ties plus NaNs. */
static void fill_kind(float *x, size_t n, int kind, uint64_t *state)
{
    fill_distinct(x, n, state);
    for (size_t i = 0; kind && i < n; i++) {
        x[i] = (float)(test_rng(state) % 4) - 1.5f;
        if (kind == 2 && test_rng(state) % 9 == 0)
            x[i] = NAN;
    }
}

/* forward_indices against the two checked ops: y bit for bit as
 * clnet_pool2d_max_forward; every index inside its plane and naming an
 * element equal to the window's maximum (NaN where it is NaN); the backward
 * from the indices bit for bit as clnet_pool2d_max_backward from x, into a
 * guarded dx; both deterministic. */
static void check_indices_case(clnet_context *ctx, const pcase *k, int variant, int kind,
                               uint64_t seed)
{
    ref_pool2d r = to_ref(k, 0);
    int64_t xs[4] = { k->n, k->c, k->h, k->w };
    int64_t ys[4] = { k->n, k->c, ref_pool2d_out_h(&r), ref_pool2d_out_w(&r) };
    size_t nx = numel4(xs), ny = numel4(ys), hw = (size_t)k->h * (size_t)k->w;
    size_t per = (size_t)ys[2] * (size_t)ys[3];
    float *xh = host_f32(nx), *dyh = host_f32(ny), *y1 = host_f32(ny), *y2 = host_f32(ny);
    float *dx1 = host_f32(nx), *dx2 = host_f32(nx);
    int32_t *idx = malloc(ny * sizeof *idx), *idx2 = malloc(ny * sizeof *idx2);
    ck_assert(idx && idx2);
    uint64_t st = seed;
    fill_kind(xh, nx, kind, &st);
    fill_uniform(dyh, ny, -1, 1, &st);
    char label[160];
    snprintf(label, sizeof label, "max indices %dx%dx%dx%d win %dx%d/%dx%d %s kind %d", k->n, k->c,
             k->h, k->w, k->kh, k->kw, k->sh, k->sw, variant_names[variant], kind);
    force_all(ctx, variant);
    clnet_pool2d_params p = to_params(k, 0);
    clnet_tensor *xbase, *x = input_view(ctx, xs, xh, &xbase);
    clnet_tensor *dybase, *dy = input_view(ctx, ys, dyh, &dybase);
    clnet_tensor *ya = make(ctx, CLNET_F32, 4, ys), *yb = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *it = make(ctx, CLNET_I32, 4, ys), *dxa = make(ctx, CLNET_F32, 4, xs);
    CK_OK(ctx, clnet_pool2d_max_forward(&p, x, ya));
    CK_OK(ctx, clnet_pool2d_max_forward_indices(&p, x, yb, it));
    download(ctx, ya, y1, ny);
    download(ctx, yb, y2, ny);
    CK_OK(ctx, clnet_tensor_download(it, idx, ny * sizeof *idx));
    ck_assert_msg(memcmp(y1, y2, ny * sizeof *y1) == 0, "%s: y differs from the plain forward",
                  label);
    for (size_t o = 0; o < ny; o++) {
        ck_assert_msg(idx[o] >= 0 && (size_t)idx[o] < hw, "%s: [%zu] index %d outside the plane",
                      label, o, idx[o]);
        float v = xh[(o / per) * hw + (size_t)idx[o]];
        ck_assert_msg(isnan(y2[o]) ? isnan(v) : v == y2[o],
                      "%s: [%zu] index %d holds %g, the maximum is %g", label, o, idx[o], (double)v,
                      (double)y2[o]);
    }
    CK_OK(ctx, clnet_pool2d_max_forward_indices(&p, x, yb, it));
    CK_OK(ctx, clnet_tensor_download(it, idx2, ny * sizeof *idx2));
    ck_assert_msg(memcmp(idx, idx2, ny * sizeof *idx) == 0, "%s: indices differ between runs",
                  label);
    guarded g;
    guarded_create(ctx, 4, xs, &g);
    CK_OK(ctx, clnet_pool2d_max_backward(&p, x, dy, dxa));
    CK_OK(ctx, clnet_pool2d_max_backward_indices(&p, it, dy, g.view));
    guard_check(ctx, &g, label);
    download(ctx, dxa, dx1, nx);
    download(ctx, g.view, dx2, nx);
    ck_assert_msg(memcmp(dx1, dx2, nx * sizeof *dx1) == 0,
                  "%s: dx from the indices differs from dx from x", label);
    force_all(ctx, -1);
    guarded_destroy(&g);
    clnet_tensor_destroy(x), clnet_tensor_destroy(xbase), clnet_tensor_destroy(dy);
    clnet_tensor_destroy(dybase), clnet_tensor_destroy(ya), clnet_tensor_destroy(yb);
    clnet_tensor_destroy(it), clnet_tensor_destroy(dxa);
    free(xh), free(dyh), free(y1), free(y2), free(dx1), free(dx2), free(idx), free(idx2);
}

START_TEST(max_indices_match_the_checked_ops)
{
    clnet_context *ctx = test_context();
    for (int i = 0; i < NQUICK + NCNN; i++)
        for (int v = 0; v < NVARIANTS; v++)
            for (int kind = 0; kind < 3; kind++)
                check_indices_case(ctx, i < NQUICK ? &quick_cases[i] : &cnn_cases[i - NQUICK], v,
                                   kind, 7000 + (uint64_t)(i * 8 + v * 3 + kind));
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(max_indices_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t xs[4] = { 1, 2, 4, 4 }, ys[4] = { 1, 2, 2, 2 }, bad[4] = { 1, 2, 2, 3 };
    clnet_tensor *x = make(ctx, CLNET_F32, 4, xs), *y = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *dx = make(ctx, CLNET_F32, 4, xs), *dy = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *idx = make(ctx, CLNET_I32, 4, ys), *fidx = make(ctx, CLNET_F32, 4, ys);
    clnet_tensor *sidx = make(ctx, CLNET_I32, 4, bad);
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_pool2d_max_forward_indices(&p, x, y, idx));
    CK_OK(ctx, clnet_pool2d_max_backward_indices(&p, idx, dy, dx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "idx: must not be NULL",
             clnet_pool2d_max_forward_indices(&p, x, y, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "idx: dtype float32 but expected int32",
             clnet_pool2d_max_forward_indices(&p, x, y, fidx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "idx: shape (1, 2, 2, 3) but expected (1, 2, 2, 2)",
             clnet_pool2d_max_forward_indices(&p, x, y, sidx));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "idx: must not be NULL",
             clnet_pool2d_max_backward_indices(&p, NULL, dy, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "idx: dtype float32 but expected int32",
             clnet_pool2d_max_backward_indices(&p, fidx, dy, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "idx: shape (1, 2, 2, 3)",
             clnet_pool2d_max_backward_indices(&p, sidx, dy, dx));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dy", clnet_pool2d_max_backward_indices(&p, idx, x, dx));
    clnet_tensor *ts[] = { x, y, dx, dy, idx, fidx, sidx };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clnet_tensor_destroy(ts[i]);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(empty_tensors_launch_nothing)
{
    clnet_context *ctx = test_context();
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT;
    clnet_tensor *x = make(ctx, CLNET_F32, 4, (int64_t[]){ 0, 3, 8, 8 });
    clnet_tensor *y = make(ctx, CLNET_F32, 4, (int64_t[]){ 0, 3, 4, 4 });
    clnet_tensor *u = make(ctx, CLNET_F32, 4, (int64_t[]){ 2, 0, 16, 16 });
    clnet_tensor *v = make(ctx, CLNET_F32, 4, (int64_t[]){ 2, 0, 8, 8 });
    clnet_tensor *dx = make(ctx, CLNET_F32, 4, (int64_t[]){ 0, 3, 8, 8 });
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    CK_OK(ctx, clnet_pool2d_max_forward(&p, x, y));
    CK_OK(ctx, clnet_pool2d_max_backward(&p, x, y, dx));
    CK_OK(ctx, clnet_pool2d_avg_forward(&p, x, y));
    CK_OK(ctx, clnet_pool2d_avg_backward(&p, y, dx));
    CK_OK(ctx, clnet_upsample2d_nearest_forward(2, 2, v, u));
    CK_OK(ctx, clnet_upsample2d_nearest_backward(2, 2, u, v));
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.kernel_launches, before.kernel_launches);
    ck_assert_uint_eq(after.programs_built + after.programs_loaded,
                      before.programs_built + before.programs_loaded);
    clnet_tensor_destroy(x), clnet_tensor_destroy(y), clnet_tensor_destroy(dx);
    clnet_tensor_destroy(u), clnet_tensor_destroy(v);
    clnet_context_destroy(ctx);
}
END_TEST

/* Runs every op once on case k (contents irrelevant), both variants. */
static void run_all_ops(clnet_context *ctx, const pcase *k)
{
    clnet_pool2d_params p = to_params(k, 1);
    ref_pool2d r = to_ref(k, 0);
    int64_t xs[4] = { k->n, k->c, k->h, k->w };
    int64_t ys[4] = { k->n, k->c, ref_pool2d_out_h(&r), ref_pool2d_out_w(&r) };
    int64_t us[4] = { k->n, k->c, (int64_t)k->h * k->sh, (int64_t)k->w * k->sw };
    clnet_tensor *x = make(ctx, CLNET_F32, 4, xs), *dx = make(ctx, CLNET_F32, 4, xs);
    clnet_tensor *y = make(ctx, CLNET_F32, 4, ys), *u = make(ctx, CLNET_F32, 4, us);
    CK_OK(ctx, clnet_tensor_fill(x, 0.5));
    CK_OK(ctx, clnet_tensor_fill(y, 0.25));
    for (int v = 0; v < NVARIANTS; v++) {
        force_all(ctx, v);
        CK_OK(ctx, clnet_pool2d_max_forward(&p, x, y));
        CK_OK(ctx, clnet_pool2d_max_backward(&p, x, y, dx));
        CK_OK(ctx, clnet_pool2d_avg_forward(&p, x, y));
        CK_OK(ctx, clnet_pool2d_avg_backward(&p, y, dx));
        CK_OK(ctx, clnet_upsample2d_nearest_forward(k->sh, k->sw, x, u));
        CK_OK(ctx, clnet_upsample2d_nearest_backward(k->sh, k->sw, u, dx));
    }
    force_all(ctx, -1);
    CK_OK(ctx, clnet_context_finish(ctx));
    clnet_tensor_destroy(x), clnet_tensor_destroy(dx), clnet_tensor_destroy(y);
    clnet_tensor_destroy(u);
}

/* Shapes and geometry are kernel arguments: after a warm-up, new shapes,
 * windows, strides and paddings build or load no program. */
START_TEST(new_shapes_build_no_program)
{
    clnet_context *ctx = test_context();
    const pcase warm = { 2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0 };
    const pcase other[] = { { 3, 5, 17, 9, 3, 2, 1, 3, 1, 2, 0, 1 },
                            { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 } };
    run_all_ops(ctx, &warm);
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        run_all_ops(ctx, &other[i]);
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.programs_built + after.programs_loaded,
                      before.programs_built + before.programs_loaded);
    ck_assert_uint_gt(after.kernel_launches, before.kernel_launches);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_pool(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, pool_matches_reference, 0, NQUICK);
    tcase_add_loop_test(tc, pool_reference_cnn_layers, 0, NCNN);
    tcase_add_loop_test(tc, pool_long_shapes, 0, NLONG);
    tcase_add_loop_test(tc, upsample_matches_reference, 0, NUP);
    tcase_add_test(tc, max_ties_go_to_the_first);
    tcase_add_test(tc, max_random_ties_match_reference);
    tcase_add_test(tc, nan_inf_policy);
    tcase_add_test(tc, comparators_catch_errors);
    tcase_add_test(tc, output_shape_is_floor_mode);
    tcase_add_test(tc, pool_bad_arguments_are_named);
    tcase_add_test(tc, upsample_bad_arguments_are_named);
    tcase_add_test(tc, max_indices_match_the_checked_ops);
    tcase_add_test(tc, max_indices_bad_arguments_are_named);
    tcase_add_test(tc, empty_tensors_launch_nothing);
    tcase_add_test(tc, new_shapes_build_no_program);
    suite_add_tcase(s, tc);
    return s;
}
