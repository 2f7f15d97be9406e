/* clnet tests — the graph-model primitives (include/clnet/merge.h) against
 * the float64 reference (tests/ref-graph.c): merges, concatenation, global
 * average pooling, VAE sampling and KL, custom expression ops. Guard bands on
 * every output, accumulate semantics (beta = 0 over a NaN output, beta = 1
 * and 0.5), finite differences of the references, negative controls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref-graph.h"
#include "ref.h"
#include "runtime/fault.h"

#define U 0x1.0p-24 /* the unit roundoff of float32 */

/* Tolerances: a bound per element from error analysis (u = 2^-24; OpenCL
 * 1.2's accuracy: exp and expm1 3 ulp, division 2.5 ulp, i.e. 6u and 5u).
 *   merge fwd, n inputs:  (n-1) u * M, M = sum |x_i| (add/subtract) or
 *                         prod |x_i| (multiply): one rounding per op
 *   merge bwd:            add/subtract exact (negation); multiply
 *                         (n-1) u |g|: n-2 products and the one with dy
 *   concat, split:        exact (copies)
 *   gap fwd:              (hw u sum|x| + 5u |sum|) / hw: an ordered sum, then
 *                         the division
 *   gap bwd:              5u |g|: one division
 *   sampling fwd:         u (8 |e eps| + |z|): exp (6u), the product and the
 *                         sum; dmean exact; dlogvar 9u |g|: exp and 3 products
 *   kl row:               u/2 (cols + 7) sum_j (|lv| + |expm1 lv| + m^2): each
 *                         term's expm1 (6u) and 3 roundings, an ordered sum
 *   kl mean / sum:        + u rows sum_r |kl_r| (+ 5u |loss| for the mean)
 *   kl grads:             dmean 2u |g| (s and s*m), dlogvar 9u |g|
 *   swish (custom):       16u |y|: exp, 1 + e, division; derivative
 *                         16u |dy| (|y| + |1 - y| s)
 *   accumulate:           + u (|beta old| + |result|) where beta != 0
 * plus 1e-37 so that a zero reference allows a denormal-free zero. */

static float *rand_f32(size_t n, float lo, float hi, uint64_t *st)
{
    float *x = host_f32(n);
    fill_uniform(x, n, lo, hi, st);
    return x;
}

/* ref = g + beta * old and bound += u (|beta old| + |ref|) where beta != 0. */
static void with_beta(size_t n, float beta, const float *old, double *ref, double *bound)
{
    for (size_t i = 0; i < n && beta != 0.0f; i++) {
        double b = (double)(float)((double)beta * old[i]);
        ref[i] += b;
        bound[i] += U * (fabs(b) + fabs(ref[i]));
    }
}

/* A guarded output; with old != NULL its body holds old (for beta != 0). */
static void out_create(clnet_context *ctx, int ndim, const int64_t *shape, const float *old,
                       guarded *g)
{
    guarded_create(ctx, ndim, shape, g);
    if (old)
        CK_OK(ctx, clnet_tensor_upload(g->view, old, g->numel * sizeof(float)));
}

/* Guard bands, then every element against ref within bound. */
static void out_check(clnet_context *ctx, const guarded *g, const double *ref, const double *bound,
                      const char *label)
{
    guard_check(ctx, g, label);
    float *got = host_f32(g->numel);
    download(ctx, g->view, got, g->numel);
    size_t bad = compare_bounds(label, got, ref, bound, g->numel);
    ck_assert_msg(bad == 0, "%s: %zu of %zu elements out of bounds", label, bad, g->numel);
    free(got);
}

static const float betas[] = { 0.0f, 1.0f, 0.5f };

/* ---- merges ----------------------------------------------------------------- */

static const int64_t merge_sizes[][2] = { { 1, 1 },  { 1, 3 },  { 3, 7 },
                                          { 1, 31 }, { 2, 33 }, { 7, 65 } };
#define NMERGE (sizeof merge_sizes / sizeof merge_sizes[0])

typedef struct merge_case {
    int op, n;
} merge_case;

static const merge_case merge_cases[] = { { 0, 2 }, { 1, 2 }, { 2, 2 }, { 0, 3 },
                                          { 2, 3 }, { 0, 8 }, { 2, 8 } };
#define NMCASE (sizeof merge_cases / sizeof merge_cases[0])

START_TEST(merge_matches_reference)
{
    clnet_context *ctx = test_context();
    merge_case mc = merge_cases[_i];
    for (size_t k = 0; k < NMERGE; k++) {
        const int64_t *shape = merge_sizes[k];
        size_t count = (size_t)(shape[0] * shape[1]);
        uint64_t st = 1000 * (uint64_t)_i + k;
        float *xf[CLNET_MERGE_MAX_INPUTS];
        double *xd[CLNET_MERGE_MAX_INPUTS];
        clnet_tensor *xt[CLNET_MERGE_MAX_INPUTS];
        for (int i = 0; i < mc.n; i++) {
            /* Multiply: factors near 1 in size, so 8 of them stay normal. */
            xf[i] = mc.op == 2 ? rand_f32(count, 0.5f, 2.0f, &st) : rand_f32(count, -1, 1, &st);
            for (size_t e = 0; mc.op == 2 && e < count; e += 2)
                xf[i][e] = -xf[i][e];
            xd[i] = widen_f64(xf[i], count);
            xt[i] = tensor_from(ctx, 2, shape, xf[i]);
        }
        char label[96];
        /* Forward. */
        double *ref = host_f64(count), *bound = host_f64(count);
        ref_merge_forward(mc.op, mc.n, count, (const double *const *)xd, ref);
        for (size_t e = 0; e < count; e++) {
            double m = mc.op == 2 ? 1 : 0;
            for (int i = 0; i < mc.n; i++)
                m = mc.op == 2 ? m * fabs(xd[i][e]) : m + fabs(xd[i][e]);
            bound[e] = (mc.n - 1) * U * m * (1 + 1e-6) + 1e-37;
        }
        guarded y;
        out_create(ctx, 2, shape, NULL, &y);
        CK_OK(ctx, clnet_merge_forward((clnet_merge_op)mc.op, mc.n, (const clnet_tensor *const *)xt,
                                       y.view));
        snprintf(label, sizeof label, "%s n=%d %lldx%lld forward", clnet_merge_op_name(mc.op), mc.n,
                 (long long)shape[0], (long long)shape[1]);
        out_check(ctx, &y, ref, bound, label);
        guarded_destroy(&y);
        /* Backward, each beta; beta = 0 over the sentinel NaN. */
        float *dyf = rand_f32(count, -1, 1, &st);
        double *dyd = widen_f64(dyf, count);
        clnet_tensor *dyt = tensor_from(ctx, 2, shape, dyf);
        for (size_t b = 0; b < 3; b++) {
            guarded dx[CLNET_MERGE_MAX_INPUTS];
            clnet_tensor *dxt[CLNET_MERGE_MAX_INPUTS];
            float *old[CLNET_MERGE_MAX_INPUTS];
            double *gref[CLNET_MERGE_MAX_INPUTS];
            for (int i = 0; i < mc.n; i++) {
                old[i] = betas[b] != 0.0f ? rand_f32(count, -1, 1, &st) : NULL;
                out_create(ctx, 2, shape, old[i], &dx[i]);
                dxt[i] = dx[i].view;
                gref[i] = host_f64(count);
            }
            CK_OK(ctx, clnet_merge_backward((clnet_merge_op)mc.op, mc.n,
                                            (const clnet_tensor *const *)xt, dyt, betas[b], dxt));
            ref_merge_backward(mc.op, mc.n, count, (const double *const *)xd, dyd, gref);
            for (int i = 0; i < mc.n; i++) {
                for (size_t e = 0; e < count; e++)
                    bound[e] = (mc.op == 2 ? (mc.n - 1) * U * fabs(gref[i][e]) : 0) + 1e-37;
                with_beta(count, betas[b], old[i], gref[i], bound);
                snprintf(label, sizeof label, "%s n=%d %lldx%lld dx[%d] beta=%g",
                         clnet_merge_op_name(mc.op), mc.n, (long long)shape[0], (long long)shape[1],
                         i, betas[b]);
                out_check(ctx, &dx[i], gref[i], bound, label);
                guarded_destroy(&dx[i]);
                free(gref[i]);
                free(old[i]);
            }
        }
        clnet_tensor_destroy(dyt);
        free(dyf);
        free(dyd);
        free(ref);
        free(bound);
        for (int i = 0; i < mc.n; i++) {
            clnet_tensor_destroy(xt[i]);
            free(xf[i]);
            free(xd[i]);
        }
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* An input merged with itself: y = x * x, dx given twice as one tensor with
 * beta = 1 sums both gradients (2 x dy); a NULL dx[i] is skipped; y may alias
 * x; two runs give the same bits. */
START_TEST(merge_shared_input_alias_and_null)
{
    clnet_context *ctx = test_context();
    int64_t n = 33;
    uint64_t st = 9;
    float *x = rand_f32(33, -1, 1, &st), *dy = rand_f32(33, -1, 1, &st), got[33], again[33];
    clnet_tensor *xt = tensor_from(ctx, 1, &n, x), *dyt = tensor_from(ctx, 1, &n, dy), *dx;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &dx));
    CK_OK(ctx, clnet_tensor_fill(dx, 0.0));
    const clnet_tensor *xs[] = { xt, xt };
    clnet_tensor *dxs[] = { dx, dx };
    CK_OK(ctx, clnet_merge_backward(CLNET_MERGE_MULTIPLY, 2, xs, dyt, 1.0f, dxs));
    download(ctx, dx, got, 33);
    for (int i = 0; i < 33; i++) {
        float g = dy[i] * x[i]; /* exact: g + g = 2 g */
        ck_assert_msg(got[i] == g + g, "[%d] %.9g, expected %.9g", i, got[i], 2 * g);
    }
    /* dx[0] NULL: only dx[1] written (dx[0]'s would be -dy for subtract). */
    guarded g1;
    out_create(ctx, 1, &n, NULL, &g1);
    clnet_tensor *some[] = { NULL, g1.view };
    CK_OK(ctx, clnet_merge_backward(CLNET_MERGE_SUBTRACT, 2, NULL, dyt, 0.0f, some));
    guard_check(ctx, &g1, "subtract dx[1]");
    download(ctx, g1.view, got, 33);
    for (int i = 0; i < 33; i++)
        ck_assert(got[i] == -dy[i]);
    /* In place: x = x + x; twice on fresh copies gives the same bits. */
    for (int r = 0; r < 2; r++) {
        clnet_tensor *c = tensor_from(ctx, 1, &n, x);
        const clnet_tensor *cc[] = { c, c, c };
        CK_OK(ctx, clnet_merge_forward(CLNET_MERGE_ADD, 3, cc, c));
        download(ctx, c, r ? again : got, 33);
        clnet_tensor_destroy(c);
    }
    ck_assert_int_eq(memcmp(got, again, sizeof got), 0);
    for (int i = 0; i < 33; i++)
        ck_assert(got[i] == (x[i] + x[i]) + x[i]);
    guarded_destroy(&g1);
    clnet_tensor_destroy(dx);
    clnet_tensor_destroy(dyt);
    clnet_tensor_destroy(xt);
    free(x);
    free(dy);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- concatenate ------------------------------------------------------------- */

typedef struct concat_case {
    int ndim, axis, n;
    int64_t base[4]; /* every input's shape but along axis */
    int64_t ext[3];  /* the inputs' extents along axis */
} concat_case;

static const concat_case concat_cases[] = {
    { 1, 0, 2, { 0 }, { 3, 7 } },
    { 2, -1, 2, { 1, 0 }, { 1, 31 } },        /* Keras's default axis, batch 1 */
    { 2, 0, 3, { 0, 33 }, { 1, 3, 7 } },      /* along the batch */
    { 4, 1, 2, { 3, 0, 7, 5 }, { 32, 31 } },  /* channels of NCHW images */
    { 4, 2, 3, { 2, 3, 0, 7 }, { 7, 0, 1 } }, /* an empty input */
    { 4, 3, 1, { 1, 3, 7, 0 }, { 33 } },      /* one input: a copy */
    { 3, -2, 2, { 7, 0, 3 }, { 1, 1 } },
};
#define NCONCAT (sizeof concat_cases / sizeof concat_cases[0])

START_TEST(concat_matches_reference)
{
    clnet_context *ctx = test_context();
    concat_case cc = concat_cases[_i];
    int ax = cc.axis < 0 ? cc.axis + cc.ndim : cc.axis;
    int64_t yshape[4], xshape[3][4], total = 0;
    size_t outer = 1, after = 1, xcount[3];
    for (int i = 0; i < cc.n; i++)
        total += cc.ext[i];
    for (int d = 0; d < cc.ndim; d++) {
        yshape[d] = d == ax ? total : cc.base[d];
        if (d < ax)
            outer *= (size_t)cc.base[d];
        if (d > ax)
            after *= (size_t)cc.base[d];
    }
    uint64_t st = 77 + (uint64_t)_i;
    float *xf[3];
    double *xd[3];
    clnet_tensor *xt[3];
    for (int i = 0; i < cc.n; i++) {
        memcpy(xshape[i], yshape, sizeof yshape);
        xshape[i][ax] = cc.ext[i];
        xcount[i] = outer * (size_t)cc.ext[i] * after;
        xf[i] = rand_f32(xcount[i], -1, 1, &st);
        xd[i] = widen_f64(xf[i], xcount[i]);
        xt[i] = tensor_from(ctx, cc.ndim, xshape[i], xf[i]);
    }
    size_t count = outer * (size_t)total * after;
    double *ref = host_f64(count), *bound = host_f64(count);
    ref_concat_forward(outer, after, cc.n, cc.ext, (const double *const *)xd, ref);
    guarded y;
    out_create(ctx, cc.ndim, yshape, NULL, &y);
    CK_OK(ctx, clnet_concat_forward(cc.axis, cc.n, (const clnet_tensor *const *)xt, y.view));
    out_check(ctx, &y, ref, bound, "concat forward"); /* bound 0: bitwise */
    guarded_destroy(&y);
    /* The split, each beta; then with dx[0] NULL (its shape from x[0]). */
    float *dyf = rand_f32(count, -1, 1, &st);
    clnet_tensor *dyt = tensor_from(ctx, cc.ndim, yshape, dyf);
    double *dyd = widen_f64(dyf, count);
    for (size_t b = 0; b < 4; b++) {
        int skip0 = b == 3;
        float beta = skip0 ? 0.0f : betas[b];
        guarded dx[3];
        clnet_tensor *dxt[3];
        float *old[3];
        double *gref[3];
        for (int i = 0; i < cc.n; i++) {
            old[i] = beta != 0.0f ? rand_f32(xcount[i], -1, 1, &st) : NULL;
            out_create(ctx, cc.ndim, xshape[i], old[i], &dx[i]);
            dxt[i] = skip0 && i == 0 ? NULL : dx[i].view;
            gref[i] = host_f64(xcount[i]);
        }
        CK_OK(ctx,
              clnet_concat_backward(cc.axis, cc.n, skip0 ? (const clnet_tensor *const *)xt : NULL,
                                    dyt, beta, dxt));
        ref_concat_backward(outer, after, cc.n, cc.ext, dyd, gref);
        for (int i = 0; i < cc.n; i++) {
            double *bd = host_f64(xcount[i]);
            with_beta(xcount[i], beta, old[i], gref[i], bd);
            char label[64];
            snprintf(label, sizeof label, "split dx[%d] beta=%g", i, beta);
            if (skip0 && i == 0) {
                size_t mb, unwritten;
                guard_count(ctx, &dx[0], &mb, &unwritten);
                ck_assert_msg(mb == 0 && unwritten == dx[0].numel, "a NULL dx[0] was written");
            } else {
                out_check(ctx, &dx[i], gref[i], bd, label);
            }
            free(bd);
            free(gref[i]);
            free(old[i]);
            guarded_destroy(&dx[i]);
        }
    }
    clnet_tensor_destroy(dyt);
    free(dyf);
    free(dyd);
    for (int i = 0; i < cc.n; i++) {
        clnet_tensor_destroy(xt[i]);
        free(xf[i]);
        free(xd[i]);
    }
    free(ref);
    free(bound);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- global average pooling ------------------------------------------------------ */

static const int64_t gap_shapes[][4] = {
    { 1, 1, 1, 1 }, { 1, 3, 7, 7 }, { 2, 3, 31, 33 }, { 3, 7, 1, 33 }, { 1, 64, 7, 7 }
};
#define NGAP (sizeof gap_shapes / sizeof gap_shapes[0])

START_TEST(gap_matches_reference)
{
    clnet_context *ctx = test_context();
    const int64_t *s = gap_shapes[_i];
    size_t planes = (size_t)(s[0] * s[1]), hw = (size_t)(s[2] * s[3]), count = planes * hw;
    uint64_t st = 500 + (uint64_t)_i;
    float *xf = rand_f32(count, -1, 1, &st);
    double *xd = widen_f64(xf, count), *ref = host_f64(planes), *bound = host_f64(planes);
    clnet_tensor *x = tensor_from(ctx, 4, s, xf);
    ref_gap_forward(planes, hw, xd, ref);
    for (size_t p = 0; p < planes; p++) {
        double a = 0;
        for (size_t k = 0; k < hw; k++)
            a += fabs(xd[p * hw + k]);
        bound[p] = (hw * U * a + 5 * U * fabs(ref[p] * hw)) / hw + 1e-37;
    }
    /* y as (N, C) and as (N, C, 1, 1). */
    for (int form = 0; form < 2; form++) {
        int64_t ys[4] = { s[0], s[1], 1, 1 };
        guarded y;
        out_create(ctx, form ? 4 : 2, ys, NULL, &y);
        CK_OK(ctx, clnet_global_avg_pool2d_forward(x, y.view));
        out_check(ctx, &y, ref, bound, "gap forward");
        guarded_destroy(&y);
    }
    float *dyf = rand_f32(planes, -1, 1, &st);
    double *dyd = widen_f64(dyf, planes), *g = host_f64(count), *gb = host_f64(count);
    int64_t ys[2] = { s[0], s[1] };
    clnet_tensor *dy = tensor_from(ctx, 2, ys, dyf);
    for (size_t b = 0; b < 3; b++) {
        float *old = betas[b] != 0.0f ? rand_f32(count, -1, 1, &st) : NULL;
        guarded dx;
        out_create(ctx, 4, s, old, &dx);
        CK_OK(ctx, clnet_global_avg_pool2d_backward(dy, betas[b], dx.view));
        ref_gap_backward(planes, hw, dyd, g);
        for (size_t i = 0; i < count; i++)
            gb[i] = 5 * U * fabs(g[i]) + 1e-37;
        with_beta(count, betas[b], old, g, gb);
        out_check(ctx, &dx, g, gb, "gap backward");
        guarded_destroy(&dx);
        free(old);
    }
    clnet_tensor_destroy(dy);
    clnet_tensor_destroy(x);
    free(xf);
    free(xd);
    free(ref);
    free(bound);
    free(dyf);
    free(dyd);
    free(g);
    free(gb);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- sampling ---------------------------------------------------------------- */

static const int64_t samp_shapes[][2] = { { 1, 1 }, { 1, 2 }, { 3, 7 }, { 33, 31 }, { 128, 2 } };
#define NSAMP (sizeof samp_shapes / sizeof samp_shapes[0])

START_TEST(sampling_matches_reference)
{
    clnet_context *ctx = test_context();
    const int64_t *s = samp_shapes[_i];
    size_t n = (size_t)(s[0] * s[1]);
    uint64_t st = 900 + (uint64_t)_i;
    float *mf = rand_f32(n, -2, 2, &st), *lf = rand_f32(n, -4, 2, &st), *ef = host_f32(n),
          *want = host_f32(n), *zf = host_f32(n), *z2 = host_f32(n);
    clnet_tensor *m = tensor_from(ctx, 2, s, mf), *lv = tensor_from(ctx, 2, s, lf), *eps, *ref_eps;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s, &eps));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s, &ref_eps));
    guarded z;
    out_create(ctx, 2, s, NULL, &z);
    CK_OK(ctx, clnet_sampling_forward(m, lv, 42, 3, eps, z.view));
    /* eps is clnet_tensor_rand_normal's N(0, 1) for the seed and stream. */
    CK_OK(ctx, clnet_tensor_rand_normal(ref_eps, 42, 3, 0.0f, 1.0f));
    download(ctx, eps, ef, n);
    download(ctx, ref_eps, want, n);
    ck_assert_int_eq(memcmp(ef, want, n * sizeof(float)), 0);
    double *md = widen_f64(mf, n), *ld = widen_f64(lf, n), *ed = widen_f64(ef, n);
    double *ref = host_f64(n), *bound = host_f64(n);
    ref_sampling_forward(n, md, ld, ed, ref);
    for (size_t i = 0; i < n; i++)
        bound[i] = U * (8 * fabs(exp(ld[i] / 2) * ed[i]) + fabs(ref[i])) + 1e-37;
    out_check(ctx, &z, ref, bound, "sampling forward");
    /* The same with eps given; twice: the same bits. */
    download(ctx, z.view, zf, n);
    CK_OK(ctx, clnet_sampling_forward_eps(m, lv, eps, z.view));
    download(ctx, z.view, z2, n);
    ck_assert_int_eq(memcmp(zf, z2, n * sizeof(float)), 0);
    /* Another seed gives other numbers. */
    CK_OK(ctx, clnet_sampling_forward(m, lv, 43, 3, eps, z.view));
    download(ctx, eps, want, n);
    ck_assert(n < 2 || memcmp(ef, want, n * sizeof(float)) != 0);
    CK_OK(ctx, clnet_tensor_upload(eps, ef, n * sizeof(float)));
    /* Backward: both outputs, then each alone. */
    float *dzf = rand_f32(n, -1, 1, &st);
    double *dzd = widen_f64(dzf, n), *gm = host_f64(n), *gl = host_f64(n), *bm = host_f64(n),
           *bl = host_f64(n);
    clnet_tensor *dz = tensor_from(ctx, 2, s, dzf);
    for (size_t b = 0; b < 5; b++) {
        float beta = betas[b < 3 ? b : 0];
        int want_m = b != 4, want_l = b != 3;
        float *om = beta != 0.0f ? rand_f32(n, -1, 1, &st) : NULL;
        float *ol = beta != 0.0f ? rand_f32(n, -1, 1, &st) : NULL;
        guarded dm, dl;
        out_create(ctx, 2, s, om, &dm);
        out_create(ctx, 2, s, ol, &dl);
        CK_OK(ctx, clnet_sampling_backward(lv, eps, dz, beta, want_m ? dm.view : NULL,
                                           want_l ? dl.view : NULL));
        ref_sampling_backward(n, ld, ed, dzd, gm, gl);
        for (size_t i = 0; i < n; i++) {
            bm[i] = 1e-37;
            bl[i] = 9 * U * fabs(gl[i]) + 1e-37;
        }
        with_beta(n, beta, om, gm, bm);
        with_beta(n, beta, ol, gl, bl);
        size_t mb, unwritten;
        if (want_m) {
            out_check(ctx, &dm, gm, bm, "sampling dmean");
        } else {
            guard_count(ctx, &dm, &mb, &unwritten);
            ck_assert(mb == 0 && unwritten == n);
        }
        if (want_l) {
            out_check(ctx, &dl, gl, bl, "sampling dlogvar");
        } else {
            guard_count(ctx, &dl, &mb, &unwritten);
            ck_assert(mb == 0 && unwritten == n);
        }
        guarded_destroy(&dm);
        guarded_destroy(&dl);
        free(om);
        free(ol);
    }
    clnet_tensor_destroy(dz);
    clnet_tensor_destroy(eps);
    clnet_tensor_destroy(ref_eps);
    clnet_tensor_destroy(m);
    clnet_tensor_destroy(lv);
    guarded_destroy(&z);
    free(mf);
    free(lf);
    free(ef);
    free(want);
    free(zf);
    free(z2);
    free(md);
    free(ld);
    free(ed);
    free(ref);
    free(bound);
    free(dzf);
    free(dzd);
    free(gm);
    free(gl);
    free(bm);
    free(bl);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- KL divergence --------------------------------------------------------------- */

typedef struct kl_case {
    int ndim;
    int64_t shape[3];
} kl_case;

static const kl_case kl_cases[] = { { 0, { 0 } },     { 2, { 1, 1 } },   { 2, { 3, 2 } },
                                    { 2, { 7, 3 } },  { 2, { 33, 31 } }, { 3, { 2, 3, 7 } },
                                    { 2, { 128, 2 } } };
#define NKL (sizeof kl_cases / sizeof kl_cases[0])

START_TEST(kl_matches_reference)
{
    clnet_context *ctx = test_context();
    kl_case kc = kl_cases[_i];
    size_t n = 1, cols = kc.ndim ? (size_t)kc.shape[kc.ndim - 1] : 1;
    for (int d = 0; d < kc.ndim; d++)
        n *= (size_t)kc.shape[d];
    size_t rows = n / cols;
    uint64_t st = 1300 + (uint64_t)_i;
    float *mf = rand_f32(n, -2, 2, &st), *lf = rand_f32(n, -3, 1, &st);
    double *md = widen_f64(mf, n), *ld = widen_f64(lf, n), *kl = host_f64(rows),
           *klb = host_f64(rows);
    clnet_tensor *m = tensor_from(ctx, kc.ndim, kc.shape, mf),
                 *lv = tensor_from(ctx, kc.ndim, kc.shape, lf);
    ref_kl_rows(rows, cols, md, ld, kl);
    double sum = 0, abs_sum = 0, abs_kl = 0;
    for (size_t r = 0; r < rows; r++) {
        double a = 0;
        for (size_t j = 0; j < cols; j++) {
            double l = ld[r * cols + j], mm = md[r * cols + j];
            a += fabs(l) + fabs(expm1(l)) + mm * mm;
        }
        klb[r] = U / 2 * (double)(cols + 7) * a + 1e-37;
        sum += kl[r];
        abs_sum += klb[r];
        abs_kl += fabs(kl[r]);
    }
    for (int red = 0; red < 3; red++) {
        int64_t one = 1, nrows = (int64_t)rows;
        guarded loss;
        out_create(ctx, 1, red == CLNET_KL_PER_ROW ? &nrows : &one, NULL, &loss);
        for (size_t b = 0; b < 3; b++) {
            float beta = betas[b];
            float *om = beta != 0.0f ? rand_f32(n, -1, 1, &st) : NULL;
            float *ol = beta != 0.0f ? rand_f32(n, -1, 1, &st) : NULL;
            guarded dm, dl;
            out_create(ctx, kc.ndim, kc.shape, om, &dm);
            out_create(ctx, kc.ndim, kc.shape, ol, &dl);
            CK_OK(ctx, clnet_kl_normal((clnet_kl_reduction)red, m, lv, beta, loss.view, dm.view,
                                       dl.view));
            if (red == CLNET_KL_PER_ROW) {
                out_check(ctx, &loss, kl, klb, "kl per row");
            } else {
                double want = red == CLNET_KL_MEAN ? sum / (double)rows : sum;
                double bd = (abs_sum + U * (double)rows * abs_kl) /
                                (red == CLNET_KL_MEAN ? (double)rows : 1.0) +
                            (red == CLNET_KL_MEAN ? 5 * U * fabs(want) : 0) + 1e-37;
                out_check(ctx, &loss, &want, &bd, red == CLNET_KL_MEAN ? "kl mean" : "kl sum");
            }
            double s = red == CLNET_KL_MEAN ? 1.0 / (double)rows : 1.0;
            double *gm = host_f64(n), *gl = host_f64(n), *bm = host_f64(n), *bl = host_f64(n);
            ref_kl_backward(n, s, md, ld, gm, gl);
            for (size_t i = 0; i < n; i++) {
                bm[i] = 2 * U * fabs(gm[i]) + 1e-37;
                bl[i] = 9 * U * fabs(gl[i]) + 1e-37;
            }
            with_beta(n, beta, om, gm, bm);
            with_beta(n, beta, ol, gl, bl);
            out_check(ctx, &dm, gm, bm, "kl dmean");
            out_check(ctx, &dl, gl, bl, "kl dlogvar");
            guarded_destroy(&dm);
            guarded_destroy(&dl);
            free(gm);
            free(gl);
            free(bm);
            free(bl);
            free(om);
            free(ol);
        }
        guarded_destroy(&loss);
    }
    clnet_tensor_destroy(m);
    clnet_tensor_destroy(lv);
    free(mf);
    free(lf);
    free(md);
    free(ld);
    free(kl);
    free(klb);
    clnet_context_destroy(ctx);
}
END_TEST

/* The loss alone and the gradients alone; no rows: MEAN is NaN, SUM 0. */
START_TEST(kl_partial_outputs_and_empty)
{
    clnet_context *ctx = test_context();
    int64_t s[2] = { 3, 2 }, one = 1, e[2] = { 0, 2 };
    float mf[6] = { 0.5f, -1, 0, 2, 1, -0.25f }, lf[6] = { 0, 1, -1, 0.5f, -2, 0 };
    clnet_tensor *m = tensor_from(ctx, 2, s, mf), *lv = tensor_from(ctx, 2, s, lf), *loss, *dl, *em,
                 *el;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &one, &loss));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s, &dl));
    CK_OK(ctx, clnet_kl_normal(CLNET_KL_SUM, m, lv, 0.0f, loss, NULL, NULL));
    float got, g[6];
    download(ctx, loss, &got, 1);
    double md[6], ld[6], kl[3], gl[6];
    for (int i = 0; i < 6; i++) {
        md[i] = mf[i];
        ld[i] = lf[i];
    }
    ref_kl_rows(3, 2, md, ld, kl);
    ck_assert_msg(fabs(got - (kl[0] + kl[1] + kl[2])) < 1e-5, "kl sum %g", got);
    CK_OK(ctx, clnet_kl_normal(CLNET_KL_MEAN, m, lv, 0.0f, NULL, NULL, dl));
    download(ctx, dl, g, 6);
    ref_kl_backward(6, 1.0 / 3, md, ld, NULL, gl);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(g[i] - gl[i]) <= 1e-6 * fabs(gl[i]) + 1e-37, "[%d] %g vs %g", i, g[i],
                      gl[i]);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, e, &em));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, e, &el));
    CK_OK(ctx, clnet_kl_normal(CLNET_KL_MEAN, em, el, 0.0f, loss, NULL, NULL));
    download(ctx, loss, &got, 1);
    ck_assert(isnan(got));
    CK_OK(ctx, clnet_kl_normal(CLNET_KL_SUM, em, el, 0.0f, loss, NULL, NULL));
    download(ctx, loss, &got, 1);
    ck_assert(got == 0.0f);
    clnet_tensor_destroy(em);
    clnet_tensor_destroy(el);
    clnet_tensor_destroy(m);
    clnet_tensor_destroy(lv);
    clnet_tensor_destroy(loss);
    clnet_tensor_destroy(dl);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- custom expression ops ------------------------------------------------------------- */

static const char swish[] = "x / (1.0f + exp(-x))";
static const char dswish[] = "y + (1.0f - y) / (1.0f + exp(-x))";

START_TEST(custom_swish_matches_reference)
{
    clnet_context *ctx = test_context();
    static const int64_t sizes[] = { 1, 3, 7, 31, 33, 4097 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        uint64_t st = 60 + k;
        float *xf = rand_f32((size_t)n, -8, 8, &st), *yf = host_f32((size_t)n);
        double *xd = widen_f64(xf, (size_t)n), *ref = host_f64((size_t)n),
               *bound = host_f64((size_t)n);
        clnet_tensor *x = tensor_from(ctx, 1, &n, xf);
        guarded y;
        out_create(ctx, 1, &n, NULL, &y);
        CK_OK(ctx, clnet_custom_forward(swish, x, y.view));
        ref_swish_forward((size_t)n, xd, ref);
        for (int64_t i = 0; i < n; i++)
            bound[i] = 16 * U * fabs(ref[i]) + 1e-37;
        out_check(ctx, &y, ref, bound, "swish forward");
        download(ctx, y.view, yf, (size_t)n);
        float *dyf = rand_f32((size_t)n, -1, 1, &st);
        double *dyd = widen_f64(dyf, (size_t)n);
        clnet_tensor *dy = tensor_from(ctx, 1, &n, dyf);
        for (size_t b = 0; b < 3; b++) {
            float *old = betas[b] != 0.0f ? rand_f32((size_t)n, -1, 1, &st) : NULL;
            guarded dx;
            out_create(ctx, 1, &n, old, &dx);
            CK_OK(ctx, clnet_custom_backward(dswish, x, y.view, dy, betas[b], dx.view));
            ref_swish_backward((size_t)n, xd, dyd, ref);
            for (int64_t i = 0; i < n; i++) {
                double sg = 1 / (1 + exp(-xd[i])), yy = xd[i] * sg;
                bound[i] = 16 * U * fabs(dyd[i]) * (fabs(yy) + fabs(1 - yy) * sg) + 1e-37;
            }
            with_beta((size_t)n, betas[b], old, ref, bound);
            out_check(ctx, &dx, ref, bound, "swish backward");
            guarded_destroy(&dx);
            free(old);
        }
        clnet_tensor_destroy(dy);
        clnet_tensor_destroy(x);
        guarded_destroy(&y);
        free(xf);
        free(yf);
        free(xd);
        free(ref);
        free(bound);
        free(dyf);
        free(dyd);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* One program per expression: the same expression again (any shape) builds
 * nothing, another one builds one program; a comment and a line break in an
 * expression are fine; y may be NULL when the derivative does not read it. */
START_TEST(custom_programs_are_cached_per_expression)
{
    clnet_context *ctx = test_context();
    int64_t n = 7, n2 = 31;
    float xf[31], got[31];
    for (int i = 0; i < 31; i++)
        xf[i] = (float)i - 15.0f;
    clnet_tensor *x = tensor_from(ctx, 1, &n, xf), *x2 = tensor_from(ctx, 1, &n2, xf), *y, *y2;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n2, &y2));
    clnet_context_stats s0, s1, s2;
    CK_OK(ctx, clnet_custom_forward("2.0f * x // doubled\n + 1.0f", x, y));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s0));
    CK_OK(ctx, clnet_custom_forward("2.0f * x // doubled\n + 1.0f", x2, y2));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s1));
    ck_assert_uint_eq(s1.programs_built + s1.programs_loaded,
                      s0.programs_built + s0.programs_loaded);
    download(ctx, y2, got, 31);
    for (int i = 0; i < 31; i++)
        ck_assert(got[i] == 2.0f * xf[i] + 1.0f);
    CK_OK(ctx, clnet_custom_forward("3.0f * x", x, y));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s2));
    ck_assert_uint_eq(s2.programs_built + s2.programs_loaded,
                      s1.programs_built + s1.programs_loaded + 1);
    download(ctx, y, got, 7);
    for (int i = 0; i < 7; i++)
        ck_assert(got[i] == 3.0f * xf[i]);
    /* d/dx 3x = 3 without y; in place over dy. */
    CK_OK(ctx, clnet_tensor_fill(y, 2.0));
    CK_OK(ctx, clnet_custom_backward("3.0f", x, NULL, y, 0.0f, y));
    download(ctx, y, got, 7);
    for (int i = 0; i < 7; i++)
        ck_assert(got[i] == 6.0f);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(x2);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(y2);
    clnet_context_destroy(ctx);
}
END_TEST

/* A broken expression: CLNET_ERR_BUILD with the build log and the
 * expression in the message; the context stays usable. */
START_TEST(custom_broken_expression_is_a_build_error)
{
    clnet_context *ctx = test_context();
    int64_t n = 3;
    float xf[3] = { -1, 0, 1 }, got[3];
    clnet_tensor *x = tensor_from(ctx, 1, &n, xf), *y;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &y));
    CK_FAILS(ctx, CLNET_ERR_BUILD, "build log", clnet_custom_forward("x * undefined_thing", x, y));
    CK_FAILS(ctx, CLNET_ERR_BUILD, "undefined_thing",
             clnet_custom_forward("x * undefined_thing", x, y));
    CK_FAILS(ctx, CLNET_ERR_BUILD, "custom_backward(x +* )",
             clnet_custom_backward("x +* ", x, NULL, x, 0.0f, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "expr is empty", clnet_custom_forward(" \n", x, y));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "expr is NULL", clnet_custom_forward(NULL, x, y));
    char *big = malloc(CLNET_CUSTOM_EXPR_MAX + 2);
    memset(big, 'x', CLNET_CUSTOM_EXPR_MAX + 1);
    big[CLNET_CUSTOM_EXPR_MAX + 1] = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "CLNET_CUSTOM_EXPR_MAX", clnet_custom_forward(big, x, y));
    free(big);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx: overlaps x",
             clnet_custom_backward("1.0f", x, NULL, y, 0.0f, x));
    CK_OK(ctx, clnet_custom_forward("fmax(x, 0.0f)", x, y));
    download(ctx, y, got, 3);
    ck_assert(got[0] == 0.0f && got[1] == 0.0f && got[2] == 1.0f);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- the ops composed: a VAE-like head, directional check ------------------------------ */

/* L(mean, logvar) = <v, swish(concat(z, mean))> + KL_mean(mean, logvar) with
 * z = mean + exp(logvar / 2) eps and eps held fixed: the gradient reaches
 * mean along three paths (the KL term, the concat's second slice, the
 * sampling) that accumulate with beta = 1, as a graph's backward will. The
 * device gradient against central differences of the device forward, for
 * random directions u: |fd - an| <= DIR_REL * sum_i |g_i u_i| (+ 1e-6),
 * retried at h / 2 before failing (the float32 forward adds ~1e-7 per
 * term; truncation ~h^2; measured on pocl: at most 7e-6). */
#define DIR_REL 1e-4

typedef struct head {
    clnet_context *ctx;
    clnet_tensor *m, *lv, *eps, *z, *h, *y, *v, *kl;
    clnet_tensor *dy, *dh, *dz, *dm, *dlv;
    int64_t b;
} head;

static double head_loss(head *t)
{
    const clnet_tensor *zm[] = { t->z, t->m };
    CK_OK(t->ctx, clnet_sampling_forward_eps(t->m, t->lv, t->eps, t->z));
    CK_OK(t->ctx, clnet_concat_forward(1, 2, zm, t->h));
    CK_OK(t->ctx, clnet_custom_forward(swish, t->h, t->y));
    CK_OK(t->ctx, clnet_kl_normal(CLNET_KL_MEAN, t->m, t->lv, 0.0f, t->kl, NULL, NULL));
    size_t n = (size_t)t->b * 4;
    float *y = host_f32(n), *v = host_f32(n), kl;
    download(t->ctx, t->y, y, n);
    download(t->ctx, t->v, v, n);
    download(t->ctx, t->kl, &kl, 1);
    double l = kl;
    for (size_t i = 0; i < n; i++)
        l += (double)v[i] * y[i];
    free(y);
    free(v);
    return l;
}

static void head_backward(head *t)
{
    head_loss(t); /* z, h, y of the current point */
    CK_OK(t->ctx, clnet_kl_normal(CLNET_KL_MEAN, t->m, t->lv, 0.0f, NULL, t->dm, t->dlv));
    CK_OK(t->ctx, clnet_custom_backward(dswish, t->h, t->y, t->v, 0.0f, t->dh));
    CK_OK(t->ctx, clnet_tensor_fill(t->dz, 0.0));
    clnet_tensor *split[] = { t->dz, t->dm };
    CK_OK(t->ctx, clnet_concat_backward(1, 2, NULL, t->dh, 1.0f, split));
    CK_OK(t->ctx, clnet_sampling_backward(t->lv, t->eps, t->dz, 1.0f, t->dm, t->dlv));
}

START_TEST(composed_head_matches_directional_differences)
{
    head t = { .ctx = test_context(), .b = 3 };
    int64_t s2[2] = { t.b, 2 }, s4[2] = { t.b, 4 }, one = 1;
    size_t n = (size_t)t.b * 2;
    uint64_t st = 2024;
    float *m = rand_f32(n, -1, 1, &st), *lv = rand_f32(n, -1, 1, &st), *e = rand_f32(n, -2, 2, &st),
          *v = rand_f32(2 * n, -1, 1, &st);
    t.m = tensor_from(t.ctx, 2, s2, m);
    t.lv = tensor_from(t.ctx, 2, s2, lv);
    t.eps = tensor_from(t.ctx, 2, s2, e);
    t.v = tensor_from(t.ctx, 2, s4, v);
    clnet_tensor **n2[] = { &t.z, &t.dz, &t.dm, &t.dlv }, **n4[] = { &t.h, &t.y, &t.dh };
    for (int i = 0; i < 4; i++)
        CK_OK(t.ctx, clnet_tensor_create(t.ctx, CLNET_F32, 2, s2, n2[i]));
    for (int i = 0; i < 3; i++)
        CK_OK(t.ctx, clnet_tensor_create(t.ctx, CLNET_F32, 2, s4, n4[i]));
    CK_OK(t.ctx, clnet_tensor_create(t.ctx, CLNET_F32, 1, &one, &t.kl));
    head_backward(&t);
    float *gm = host_f32(n), *gl = host_f32(n), *pm = host_f32(n), *pl = host_f32(n);
    download(t.ctx, t.dm, gm, n);
    download(t.ctx, t.dlv, gl, n);
    for (int dir = 0; dir < 4; dir++) {
        double um[8], ul[8], mag = 0, pmax = 1;
        ref_fill_uniform(um, n, -1, 1, &st);
        ref_fill_uniform(ul, n, -1, 1, &st);
        for (size_t i = 0; i < n; i++) {
            mag += fabs(gm[i] * um[i]) + fabs(gl[i] * ul[i]);
            pmax = fmax(pmax, fmax(fabs(m[i]), fabs(lv[i])));
        }
        double h = 4.9e-3 * pmax, fd = 0, err = 0, an = 0;
        for (int tries = 0; tries < 2; tries++, h /= 2) {
            double l[2];
            an = 0;
            for (int sgn = 0; sgn < 2; sgn++) {
                double k = sgn ? -h : h;
                for (size_t i = 0; i < n; i++) {
                    pm[i] = (float)(m[i] + k * um[i]);
                    pl[i] = (float)(lv[i] + k * ul[i]);
                    /* <g, step actually taken>: p +- h u rounded to float. */
                    an += (sgn ? -1 : 1) * (gm[i] * (double)pm[i] + gl[i] * (double)pl[i]);
                }
                CK_OK(t.ctx, clnet_tensor_upload(t.m, pm, n * sizeof(float)));
                CK_OK(t.ctx, clnet_tensor_upload(t.lv, pl, n * sizeof(float)));
                l[sgn] = head_loss(&t);
            }
            an /= 2 * h;
            fd = (l[0] - l[1]) / (2 * h);
            err = fabs(fd - an);
            if (err <= DIR_REL * mag + 1e-6)
                break;
        }
        ck_assert_msg(
            err <= DIR_REL * mag + 1e-6,
            "direction %d: gradient . u = %.9g, central difference %.9g (|err| %.3g > %.3g)", dir,
            an, fd, err, DIR_REL * mag + 1e-6);
        if (test_verbose())
            fprintf(stderr, "composed head, direction %d: relative error %.3g\n", dir, err / mag);
    }
    clnet_tensor *all[] = { t.m,  t.lv, t.eps, t.z,  t.h,  t.y,  t.v,
                            t.kl, t.dy, t.dh,  t.dz, t.dm, t.dlv };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    free(m);
    free(lv);
    free(e);
    free(v);
    free(gm);
    free(gl);
    free(pm);
    free(pl);
    clnet_context_destroy(t.ctx);
}
END_TEST

/* ---- determinism ---------------------------------------------------------------- */

/* Each op twice on the same inputs: the same bits (fixed orders, no atomics). */
START_TEST(every_op_is_deterministic)
{
    clnet_context *ctx = test_context();
    int64_t s4[4] = { 2, 3, 7, 5 }, s2[2] = { 2, 3 }, sc[4] = { 2, 6, 7, 5 }, one = 1;
    size_t n4 = 210, n2 = 6;
    uint64_t st = 31;
    float *a = rand_f32(n4, -1, 1, &st), *b = rand_f32(n4, -1, 1, &st);
    float *r1 = host_f32(2 * n4), *r2 = host_f32(2 * n4);
    clnet_tensor *x = tensor_from(ctx, 4, s4, a), *w = tensor_from(ctx, 4, s4, b), *y, *cat, *p, *l,
                 *mt, *lt;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s4, &y));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, sc, &cat));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s2, &p));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &one, &l));
    mt = tensor_from(ctx, 2, s2, a);
    lt = tensor_from(ctx, 2, s2, b);
    const clnet_tensor *xw[] = { x, w };
    for (int op = 0; op < 5; op++) {
        for (int run = 0; run < 2; run++) {
            float *r = run ? r2 : r1;
            size_t n = n4;
            switch (op) {
            case 0:
                CK_OK(ctx, clnet_merge_forward(CLNET_MERGE_MULTIPLY, 2, xw, y));
                download(ctx, y, r, n);
                break;
            case 1:
                CK_OK(ctx, clnet_concat_forward(1, 2, xw, cat));
                n = 2 * n4;
                download(ctx, cat, r, n);
                break;
            case 2:
                CK_OK(ctx, clnet_global_avg_pool2d_forward(x, p));
                n = n2;
                download(ctx, p, r, n);
                break;
            case 3:
                CK_OK(ctx, clnet_kl_normal(CLNET_KL_MEAN, mt, lt, 0.0f, l, NULL, NULL));
                n = 1;
                download(ctx, l, r, n);
                break;
            default:
                CK_OK(ctx, clnet_custom_forward(swish, x, y));
                download(ctx, y, r, n);
                break;
            }
            if (run)
                ck_assert_msg(!memcmp(r1, r2, n * sizeof(float)), "op %d: two runs differ", op);
        }
    }
    clnet_tensor *all[] = { x, w, y, cat, p, l, mt, lt };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    free(a);
    free(b);
    free(r1);
    free(r2);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- special values --------------------------------------------------------------- */

/* got and want are the same bits, or both NaN. */
static void same_or_nan(const char *label, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg((isnan(got[i]) && isnan(want[i])) ||
                          !memcmp(&got[i], &want[i], sizeof(float)),
                      "%s [%d]: got %a, expected %a", label, i, got[i], want[i]);
}

/* NaN, +-Inf, -0, FLT_MAX and a denormal follow IEEE float arithmetic in the
 * stated order: the expected values are the same formulas in float on the
 * host (every result here is exact or a special value). */
START_TEST(special_values_follow_ieee)
{
    clnet_context *ctx = test_context();
    const float dn = 0x1.0p-140f, big = 3.4028234663852886e38f;
    float a[5] = { NAN, INFINITY, -0.0f, big, dn }, b[5] = { 1.0f, -INFINITY, -0.0f, big, dn };
    float got[10], want[10];
    int64_t five = 5;
    clnet_tensor *x0 = tensor_from(ctx, 1, &five, a), *x1 = tensor_from(ctx, 1, &five, b), *y;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &five, &y));
    const clnet_tensor *xs[] = { x0, x1 };
    for (int op = 0; op < 3; op++) {
        CK_OK(ctx, clnet_merge_forward((clnet_merge_op)op, 2, xs, y));
        download(ctx, y, got, 5);
        for (int i = 0; i < 5; i++)
            want[i] = op == 0 ? a[i] + b[i] : op == 1 ? a[i] - b[i] : a[i] * b[i];
        same_or_nan(clnet_merge_op_name(op), got, want, 5);
    }
    /* Global average pooling over planes of 2: (a[i], b[i]); FLT_MAX + FLT_MAX
     * overflows to Inf in the float sum (the mean itself would be finite). */
    float planes[10];
    for (int i = 0; i < 5; i++) {
        planes[2 * i] = a[i];
        planes[2 * i + 1] = b[i];
        want[i] = (a[i] + b[i]) / 2.0f;
    }
    int64_t s4[4] = { 1, 5, 1, 2 }, s2[2] = { 1, 5 };
    clnet_tensor *img = tensor_from(ctx, 4, s4, planes), *pooled;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s2, &pooled));
    CK_OK(ctx, clnet_global_avg_pool2d_forward(img, pooled));
    download(ctx, pooled, got, 5);
    same_or_nan("gap", got, want, 5);
    /* Sampling with eps given: z = mean + exp(lv / 2) eps. */
    float m[5] = { NAN, 0.0f, 1.0f, -0.0f, big }, lv[5] = { 0.0f, INFINITY, -INFINITY, 0.0f, 0.0f },
          e[5] = { 1.0f, 1.0f, 1.0f, -0.0f, 1.0f };
    clnet_tensor *mt = tensor_from(ctx, 1, &five, m), *lt = tensor_from(ctx, 1, &five, lv),
                 *et = tensor_from(ctx, 1, &five, e);
    CK_OK(ctx, clnet_sampling_forward_eps(mt, lt, et, y));
    download(ctx, y, got, 5);
    for (int i = 0; i < 5; i++)
        want[i] = m[i] + expf(0.5f * lv[i]) * e[i];
    same_or_nan("sampling", got, want, 5);
    /* KL, one column per row: -0.5 ((lv - expm1(lv)) - m^2). */
    float km[5] = { NAN, 0.0f, 0.0f, big, 0.0f },
          kv[5] = { 0.0f, INFINITY, -INFINITY, 0.0f, -0.0f };
    int64_t s51[2] = { 5, 1 };
    clnet_tensor *kmt = tensor_from(ctx, 2, s51, km), *kvt = tensor_from(ctx, 2, s51, kv);
    CK_OK(ctx, clnet_kl_normal(CLNET_KL_PER_ROW, kmt, kvt, 0.0f, y, NULL, NULL));
    download(ctx, y, got, 5);
    for (int i = 0; i < 5; i++)
        want[i] = -0.5f * ((kv[i] - expm1f(kv[i])) - km[i] * km[i]);
    same_or_nan("kl", got, want, 5);
    clnet_tensor *all[] = { x0, x1, y, img, pooled, mt, lt, et, kmt, kvt };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- faults ----------------------------------------------------------------------- */

/* The first custom op, merge and KL calls of a fresh context, with the n-th
 * host allocation (or OpenCL call) failing, n = 1, 2, ...: a specific status
 * and message, a context that works afterwards, nothing leaked. The quick
 * tier fails the calls that create objects or launch; the long tier every
 * OpenCL call (52 fresh contexts). */
static const char *const fault_calls[] = { "host",
                                           "clCreateProgramWithSource",
                                           "clBuildProgram",
                                           "clCreateKernel",
                                           "clCreateBuffer",
                                           "clEnqueueNDRangeKernel",
                                           NULL };
#define NFAULT ((int)(sizeof fault_calls / sizeof fault_calls[0]))
static clnet_status fault_ops(clnet_tensor *x, clnet_tensor *y, clnet_tensor *loss)
{
    const clnet_tensor *xs[] = { x, x };
    clnet_status st = clnet_custom_forward("x * 0.5f", x, y);
    if (!st)
        st = clnet_merge_forward(CLNET_MERGE_ADD, 2, xs, y);
    if (!st)
        st = clnet_kl_normal(CLNET_KL_MEAN, x, x, 0.0f, loss, NULL, NULL);
    return st;
}

START_TEST(first_calls_survive_every_failure)
{
    if (!fault_calls[_i] && !test_long())
        return;
    int host = _i == 0;
    const char *call = fault_calls[_i];
    long failed = 0;
    clnet__live start;
    clnet__fault_live(&start);
    for (long n = 1;; n++) {
        ck_assert_msg(n < 10000, "the operations never complete");
        /* Without clnet's disk cache: every try builds its programs from
         * source on any device (pocl's own cache keeps that quick). */
        clnet_context_params params = CLNET_CONTEXT_PARAMS_DEFAULT;
        params.device = getenv("CLNET_TEST_DEVICE");
        params.cache_dir = "";
        clnet_context *ctx = NULL;
        char err[1024];
        ck_assert_msg(clnet_context_create(&params, &ctx, err, sizeof err) == CLNET_OK, "%s", err);
        int64_t s[2] = { 3, 7 }, one = 1;
        clnet_tensor *x, *y, *loss;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s, &x));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s, &y));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &one, &loss));
        CK_OK(ctx, clnet_tensor_fill(x, 0.25));
        if (host)
            clnet__fault_arm_host(n);
        else
            clnet__fault_arm(call, n, CL_OUT_OF_RESOURCES);
        clnet_status st = fault_ops(x, y, loss);
        const char *fired = clnet__fault_fired();
        clnet__fault_disarm();
        if (fired && st) {
            failed++;
            const char *msg = clnet_context_errmsg(ctx);
            ck_assert_msg(st != CLNET_ERR_INTERNAL, "failing %s (#%ld): %s", fired, n, msg);
            ck_assert_msg(host ? st == CLNET_ERR_HOST_MEMORY && strstr(msg, "out of host memory")
                               : strstr(msg, fired) && strstr(msg, "CL_OUT_OF_RESOURCES"),
                          "failing %s (#%ld) gave %s: \"%s\"", fired, n, clnet_status_name(st),
                          msg);
        }
        CK_OK(ctx, fault_ops(x, y, loss)); /* the context still works */
        clnet_tensor_destroy(x);
        clnet_tensor_destroy(y);
        clnet_tensor_destroy(loss);
        clnet_context_destroy(ctx);
        clnet__live now;
        clnet__fault_live(&now);
        ck_assert_msg(!memcmp(&now, &start, sizeof now),
                      "failing #%ld leaked: %ld programs, %ld "
                      "kernels, %ld buffers, %ld host blocks live (were %ld, %ld, %ld, %ld)",
                      n, now.programs, now.kernels, now.buffers, now.host_blocks, start.programs,
                      start.kernels, start.buffers, start.host_blocks);
        if (!fired)
            break;
    }
    ck_assert_msg(failed > 0, "failing %s never failed the operations", call ? call : "any call");
    if (test_verbose())
        fprintf(stderr, "merge faults (%s): %ld failed the operations\n", call ? call : "any call",
                failed);
}
END_TEST

/* ---- bad arguments ----------------------------------------------------------------- */

START_TEST(bad_arguments_are_refused)
{
    clnet_context *ctx = test_context();
    int64_t s23[2] = { 2, 3 }, s32[2] = { 3, 2 }, s2333[4] = { 2, 3, 3, 3 }, s24[2] = { 2, 4 };
    clnet_tensor *a, *b, *c, *img, *w;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s23, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s23, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s32, &c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s2333, &img));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s24, &w));
    const clnet_tensor *ab[] = { a, b }, *ac[] = { a, c }, *abb[] = { a, b, b };
    clnet_tensor *dab[] = { a, b }, *dnone[] = { NULL, NULL };
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x[1]: shape (3, 2) but expected (2, 3) (the shape of y)",
             clnet_merge_forward(CLNET_MERGE_ADD, 2, ac, b));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "n = 3 inputs for subtract",
             clnet_merge_forward(CLNET_MERGE_SUBTRACT, 3, abb, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "n = 1", clnet_merge_forward(CLNET_MERGE_ADD, 1, ab, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "op = 7",
             clnet_merge_forward((clnet_merge_op)7, 2, ab, a));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "multiply's gradient reads x",
             clnet_merge_backward(CLNET_MERGE_MULTIPLY, 2, NULL, a, 0.0f, dnone));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx[0]: overlaps dy",
             clnet_merge_backward(CLNET_MERGE_ADD, 2, NULL, a, 0.0f, dab));
    /* Concatenate: extents, axes, shapes. */
    int64_t s33[2] = { 3, 3 };
    clnet_tensor *sq;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s33, &sq));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "sum to 4, y has 3", clnet_concat_forward(0, 2, ab, sq));
    clnet_tensor_destroy(sq);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "axis 2 of a 2-D", clnet_concat_forward(2, 2, ab, w));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "axis -3 of a 2-D", clnet_concat_forward(-3, 2, ab, w));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x[1]: shape (3, 2), which does not fit y (2, 4)",
             clnet_concat_forward(1, 2, ac, w));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "y: overlaps x[0]", clnet_concat_forward(1, 1, ab, a));
    clnet_tensor *dsplit[] = { a, NULL };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dx[1]: must not be NULL",
             clnet_concat_backward(1, 2, NULL, w, 0.0f, dsplit));
    /* Global average pooling. */
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: shape (2, 3) but expected 4 dimensions",
             clnet_global_avg_pool2d_forward(a, b));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "y: shape (3, 2) but expected (2, 3) or (2, 3, 1, 1)",
             clnet_global_avg_pool2d_forward(img, c));
    int64_t s2301[4] = { 2, 3, 0, 1 };
    clnet_tensor *flat;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, s2301, &flat));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "empty plane", clnet_global_avg_pool2d_forward(flat, a));
    /* Sampling and KL. */
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "logvar: shape (3, 2) but expected (2, 3) (the shape of mean)",
             clnet_sampling_forward_eps(a, c, b, b));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "eps: overlaps z",
             clnet_sampling_forward(a, a, 1, 0, b, b));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dmean and dlogvar are NULL",
             clnet_sampling_backward(a, a, a, 0.0f, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dmean: overlaps dz",
             clnet_sampling_backward(b, b, a, 0.0f, a, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "loss, dmean and dlogvar are NULL",
             clnet_kl_normal(CLNET_KL_MEAN, a, b, 0.0f, NULL, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "loss: holds 6 elements, expected 1",
             clnet_kl_normal(CLNET_KL_MEAN, a, b, 0.0f, c, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "loss: holds 6 elements, expected 2 (one per row)",
             clnet_kl_normal(CLNET_KL_PER_ROW, a, b, 0.0f, c, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "reduction = 9",
             clnet_kl_normal((clnet_kl_reduction)9, a, a, 0.0f, NULL, b, NULL));
    clnet_tensor_destroy(flat);
    clnet_tensor_destroy(a);
    clnet_tensor_destroy(b);
    clnet_tensor_destroy(c);
    clnet_tensor_destroy(img);
    clnet_tensor_destroy(w);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- the references against finite differences (host only) ------------------------- */

/* For L = <v, f(p)>, the reference gradient g = J^T v against central
 * differences of L in each coordinate of p (eps 1e-6, atol 1e-5, rtol 1e-3).
 * f writes `outs` values from the parameter block p; returns mismatches. */
typedef void (*fd_fn)(const double *p, double *out, const void *arg);

static size_t fd_check(const char *label, fd_fn f, const void *arg, double *p, size_t np,
                       size_t nout, const double *v, const double *g)
{
    double *o = host_f64(nout);
    size_t bad = 0;
    for (size_t i = 0; i < np; i++) {
        double save = p[i], lp = 0, lm = 0;
        p[i] = save + 1e-6;
        f(p, o, arg);
        for (size_t k = 0; k < nout; k++)
            lp += v[k] * o[k];
        p[i] = save - 1e-6;
        f(p, o, arg);
        for (size_t k = 0; k < nout; k++)
            lm += v[k] * o[k];
        p[i] = save;
        double fd = (lp - lm) / 2e-6;
        if (!(fabs(fd - g[i]) <= 1e-5 + 1e-3 * fabs(fd)) && bad++ < 5)
            fprintf(stderr, "%s: d/dp[%zu]: reference %.9g, finite difference %.9g\n", label, i,
                    g[i], fd);
    }
    free(o);
    return bad;
}

enum { FD_N = 12 };

static void fd_merge(const double *p, double *out, const void *arg)
{
    const int *op = arg;
    const double *x[3] = { p, p + FD_N, p + 2 * FD_N };
    ref_merge_forward(*op, *op == 1 ? 2 : 3, FD_N, x, out);
}

static void fd_gap(const double *p, double *out, const void *arg)
{
    (void)arg;
    ref_gap_forward(3, 4, p, out); /* 3 planes of 2x2 */
}

static void fd_concat(const double *p, double *out, const void *arg)
{
    static const int64_t ext[2] = { 1, 2 };
    const double *x[2] = { p, p + 4 * 1 * 2 };
    (void)arg;
    ref_concat_forward(4, 2, 2, ext, x, out); /* (4, 1, 2) + (4, 2, 2) -> (4, 3, 2) */
}

static void fd_sampling(const double *p, double *out, const void *arg)
{
    ref_sampling_forward(FD_N, p, p + FD_N, arg, out);
}

static void fd_kl(const double *p, double *out, const void *arg)
{
    (void)arg;
    ref_kl_rows(4, 3, p, p + FD_N, out);
}

static void fd_swish(const double *p, double *out, const void *arg)
{
    (void)arg;
    ref_swish_forward(FD_N, p, out);
}

START_TEST(references_match_finite_differences)
{
    uint64_t st = 4242;
    double p[3 * FD_N], v[3 * FD_N], g[3 * FD_N], eps[FD_N];
    size_t bad = 0;
    for (int op = 0; op < 3; op++) {
        int n = op == 1 ? 2 : 3;
        ref_fill_uniform(p, 3 * FD_N, -1, 1, &st);
        ref_fill_uniform(v, FD_N, -1, 1, &st);
        const double *x[3] = { p, p + FD_N, p + 2 * FD_N };
        double *dx[3] = { g, g + FD_N, g + 2 * FD_N };
        ref_merge_backward(op, n, FD_N, x, v, dx);
        bad += fd_check("merge", fd_merge, &op, p, (size_t)n * FD_N, FD_N, v, g);
    }
    ref_fill_uniform(p, 12, -1, 1, &st);
    ref_fill_uniform(v, 3, -1, 1, &st);
    ref_gap_backward(3, 4, v, g);
    bad += fd_check("gap", fd_gap, NULL, p, 12, 3, v, g);
    static const int64_t ext[2] = { 1, 2 };
    double *split[2] = { g, g + 8 };
    ref_fill_uniform(p, 24, -1, 1, &st);
    ref_fill_uniform(v, 24, -1, 1, &st);
    ref_concat_backward(4, 2, 2, ext, v, split);
    bad += fd_check("concat", fd_concat, NULL, p, 24, 24, v, g);
    ref_fill_uniform(p, 2 * FD_N, -2, 2, &st);
    ref_fill_uniform(eps, FD_N, -2, 2, &st);
    ref_fill_uniform(v, FD_N, -1, 1, &st);
    ref_sampling_backward(FD_N, p + FD_N, eps, v, g, g + FD_N);
    bad += fd_check("sampling", fd_sampling, eps, p, 2 * FD_N, FD_N, v, g);
    /* KL: 4 rows of 3, every row weighted 0.7 (the gradient of 0.7 sum kl). */
    ref_fill_uniform(p, 2 * FD_N, -2, 1, &st);
    for (int r = 0; r < 4; r++)
        v[r] = 0.7;
    ref_kl_backward(FD_N, 0.7, p, p + FD_N, g, g + FD_N);
    bad += fd_check("kl", fd_kl, NULL, p, 2 * FD_N, 4, v, g);
    ref_fill_uniform(p, FD_N, -6, 6, &st);
    ref_fill_uniform(v, FD_N, -1, 1, &st);
    ref_swish_backward(FD_N, p, v, g);
    bad += fd_check("swish", fd_swish, NULL, p, FD_N, FD_N, v, g);
    ck_assert_uint_eq(bad, 0);
    /* Negative control: a gradient off by 1e-3 in one coordinate fails. */
    g[3] += 1e-3;
    ck_assert_uint_eq(fd_check("swish (planted)", fd_swish, NULL, p, FD_N, FD_N, v, g), 1);
}
END_TEST

/* Negative controls of the device checks: out_check's comparison fails on
 * an element off by twice its bound, and on a NaN. */
START_TEST(comparison_negative_controls)
{
    double ref[3] = { 1.0, -2.0, 0.5 }, bound[3];
    for (int i = 0; i < 3; i++)
        bound[i] = 16 * U * fabs(ref[i]);
    float got[3] = { 1.0f, -2.0f, 0.5f };
    ck_assert_uint_eq(compare_bounds("control", got, ref, bound, 3), 0);
    got[1] = (float)(ref[1] + 2 * bound[1]);
    ck_assert_uint_eq(compare_bounds("control (planted)", got, ref, bound, 3), 1);
    got[1] = -2.0f;
    got[2] = NAN;
    ck_assert_uint_eq(compare_bounds("control (planted)", got, ref, bound, 3), 1);
}
END_TEST

Suite *suite_merge(void)
{
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, merge_matches_reference, 0, NMCASE);
    tcase_add_test(tc, merge_shared_input_alias_and_null);
    tcase_add_loop_test(tc, concat_matches_reference, 0, NCONCAT);
    tcase_add_loop_test(tc, gap_matches_reference, 0, NGAP);
    tcase_add_loop_test(tc, sampling_matches_reference, 0, NSAMP);
    tcase_add_loop_test(tc, kl_matches_reference, 0, NKL);
    tcase_add_test(tc, kl_partial_outputs_and_empty);
    tcase_add_test(tc, custom_swish_matches_reference);
    tcase_add_test(tc, custom_programs_are_cached_per_expression);
    tcase_add_test(tc, custom_broken_expression_is_a_build_error);
    tcase_add_test(tc, composed_head_matches_directional_differences);
    tcase_add_test(tc, every_op_is_deterministic);
    tcase_add_test(tc, special_values_follow_ieee);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_loop_test(tc, first_calls_survive_every_failure, 0, NFAULT);
    suite_add_tcase(s, tc);
    TCase *host = tcase_create("reference");
    tcase_add_test(host, references_match_finite_differences);
    tcase_add_test(host, comparison_negative_controls);
    suite_add_tcase(s, host);
    return s;
}
