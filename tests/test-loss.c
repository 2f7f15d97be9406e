/* clnet tests — losses (MSE, BCE from logits, softmax cross-entropy with
 * probability and integer targets) and the accuracy count against the
 * float64 reference (tests/ref.c): loss and gradient within stated bounds,
 * guard bands, unchanged inputs, determinism, aliasing, large logits, bad
 * labels, bad arguments, and no program builds for new shapes. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"
#include "runtime/runtime.h"

/* ---- Tolerances ---------------------------------------------------------------
 * u = 2^-24, float32's unit roundoff. Device functions are held to the
 * OpenCL 1.2 full-profile limits (exp 3 ulp = 6u, log1p 2 ulp = 4u); no
 * fast-math, no FMA contraction, so every other operation rounds once. TINY
 * (FLT_MIN) is an absolute floor for denormal results. S = sum of |terms|
 * (as the double reference computes them), n the number of terms.
 *   loss, mean of n terms: 2 D u S / n for the sum (docs/testing.md's rule with
 *   the chain length D of clnet's reduction instead of n: G = min(ceil(n /
 *   WG), 256) groups whose lanes each add a strided share, a tree, then the
 *   G partials by one group, through clnet_sum's first pass when G > WG:
 *   D = ceil(n / (G WG)) + ceil(G / WG) + 3 log2 WG + 2, 23 for n = 4097
 *   where 2 n would be 8194, so a lost term shows), plus each term's own
 *   error:
 *     MSE:  (2 D + 6) u S / n      (d = p - t, d*d, the division)
 *     BCE:  (2 D + 14) u S / n     with |term| = max(x,0) + |x t| +
 *           log1p(exp(-|x|)): the exp and log1p errors are relative to the
 *           log1p term (log1p(e) >= e / (1 + e)), the rest one rounding each
 *     softmax xent: (2 depth + 2R + 28 + 2 (depth + D(rows))) u S / rows:
 *           each term t_j (ls - (x_j - m)) adds two non-negative parts, so
 *           its error (x - m, exp, the row sum over depth terms, log1p) is
 *           relative to the term; then the row and batch sums. depth: cols
 *           for a row per work-item, cols / WG + log2 WG for a row per
 *           work-group; R = min(max |x - m|, 110) (exp underflows beyond).
 *   gradients (operand-based: p - t may cancel):
 *     MSE:  3u |ref|               (d, the division, n as a float)
 *     BCE:  u (14 |s| + 3 (|s| + |t|)) / n (the sigmoid s <= 11u; s - t
 *           and / n, 2u, which pocl reaches: 1.9u measured; u of margin)
 *     xent: u ((3 depth + 2R + 20) p tsum + 2 (p tsum + |t|)) / rows
 *           (softmax p as in test-act.c, tsum's sum, product, - t, / rows)
 * Measured on pocl 3.1 (quick and long tiers): losses reach at most 0.04 of
 * their bound (worst-case term errors do not all line up), gradients 0.84. */
#define U 0x1.0p-24
#define TINY 0x1.0p-126

/* ---- Comparator and helpers (as in test-act.c) -------------------------------- */

static void expect_unchanged(clnet_context *ctx, const clnet_tensor *t, const void *host,
                             size_t bytes, const char *label)
{
    void *now = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(now);
    CK_OK(ctx, clnet_tensor_download(t, now, bytes));
    ck_assert_msg(memcmp(now, host, bytes) == 0, "%s: an input changed", label);
    free(now);
}

static void expect_same_bits(clnet_context *ctx, const clnet_tensor *a, const clnet_tensor *b,
                             size_t n, const char *label)
{
    float *pa = host_f32(n), *pb = host_f32(n);
    download(ctx, a, pa, n);
    download(ctx, b, pb, n);
    ck_assert_msg(memcmp(pa, pb, n * sizeof *pa) == 0, "%s: results differ", label);
    free(pa);
    free(pb);
}

static void trust(const double *ref, size_t n, const char *label)
{
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += ref[i] == 0.0;
    ck_assert_msg(zeros < n, "%s: the reference is all zero: the case tests nothing", label);
    ck_assert_msg(n < 8 || (double)zeros <= 0.3 * (double)n,
                  "%s: %zu of %zu reference values are zero", label, zeros, n);
}

static clnet_tensor *labels_from(clnet_context *ctx, int64_t n, const int32_t *labels)
{
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_upload(t, labels, (size_t)n * sizeof *labels));
    return t;
}

/* Runs a loss into guarded outputs twice (both outputs, then the loss and the
 * gradient alone) and checks guards and determinism; returns the loss and
 * fills grad. */
typedef clnet_status (*loss_fn)(const clnet_tensor *, const clnet_tensor *, clnet_tensor *,
                                clnet_tensor *);

static float run_loss(clnet_context *ctx, loss_fn fn, const clnet_tensor *x, const clnet_tensor *t,
                      float *grad, const char *label)
{
    int ndim = clnet_tensor_ndim(x);
    int64_t shape[CLNET_MAX_DIMS], one = 1;
    clnet_tensor_shape(x, shape);
    size_t n = clnet_tensor_numel(x);
    guarded l1, l2, g1, g2;
    guarded_create(ctx, 1, &one, &l1);
    guarded_create(ctx, 1, &one, &l2);
    guarded_create(ctx, ndim, shape, &g1);
    guarded_create(ctx, ndim, shape, &g2);
    CK_OK(ctx, fn(x, t, l1.view, g1.view));
    CK_OK(ctx, fn(x, t, l2.view, NULL));
    CK_OK(ctx, fn(x, t, NULL, g2.view));
    guard_check(ctx, &l1, label);
    guard_check(ctx, &g1, label);
    guard_check(ctx, &l2, label);
    guard_check(ctx, &g2, label);
    expect_same_bits(ctx, l1.view, l2.view, 1, label);
    expect_same_bits(ctx, g1.view, g2.view, n, label);
    float loss;
    download(ctx, l1.view, &loss, 1);
    download(ctx, g1.view, grad, n);
    guarded_destroy(&l1), guarded_destroy(&l2), guarded_destroy(&g1), guarded_destroy(&g2);
    return loss;
}

static void check_loss_value(const char *label, float got, double ref, double bound)
{
    ck_assert_msg(compare_bounds(label, &got, &ref, &bound, 1) == 0,
                  "%s: loss %.9g, reference %.9g", label, (double)got, ref);
}

/* The chain length D of a loss's mean over count terms (table at the top). */
static double sum_depth(double count, double wg)
{
    double g = fmin(ceil(count / wg), 256);
    return ceil(count / (g * wg)) + ceil(g / wg) + 3 * log2(wg) + 2;
}

/* ---- MSE and BCE --------------------------------------------------------------- */

/* is_random: random data (then the trust check applies; saturated logits give
 * exact zero gradients by design). */
static void elementwise_case(clnet_context *ctx, int bce, int ndim, const int64_t *shape,
                             const float *x, const float *t, int is_random, const char *label)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    clnet_tensor *tx = tensor_from(ctx, ndim, shape, x), *tt = tensor_from(ctx, ndim, shape, t);
    float *grad = host_f32(n);
    float loss = run_loss(ctx, bce ? clnet_loss_bce_logits : clnet_loss_mse, tx, tt, grad, label);
    expect_unchanged(ctx, tx, x, n * sizeof *x, label);
    expect_unchanged(ctx, tt, t, n * sizeof *t, label);
    double *xd = widen_f64(x, n), *td = widen_f64(t, n), *gref = host_f64(n), *bound = host_f64(n),
           S = 0;
    double ref = bce ? ref_loss_bce_logits(n, xd, td, gref) : ref_loss_mse(n, xd, td, gref);
    for (size_t i = 0; i < n; i++) {
        if (bce) {
            double s = gref[i] * (double)n + td[i]; /* sigmoid(x) */
            S += fmax(xd[i], 0) + fabs(xd[i] * td[i]) + log1p(exp(-fabs(xd[i])));
            bound[i] = U * (14 * fabs(s) + 3 * (fabs(s) + fabs(td[i]))) / (double)n + TINY;
        } else {
            S += (xd[i] - td[i]) * (xd[i] - td[i]);
            bound[i] = 3 * U * fabs(gref[i]) + TINY;
        }
    }
    double D = sum_depth((double)n, (double)clnet__context_profile(ctx)->wg_size);
    check_loss_value(label, loss, ref, U * (2 * D + (bce ? 14 : 6)) * S / (double)n + TINY);
    if (is_random)
        trust(gref, n, label);
    ck_assert_msg(compare_bounds(label, grad, gref, bound, n) == 0, "%s gradient", label);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tt);
    free(grad), free(xd), free(td), free(gref), free(bound);
}

static const int64_t el_sizes[] = { 1, 3, 7, 31, 33, 4097, 1000003 };
#define NEL (sizeof el_sizes / sizeof el_sizes[0])

START_TEST(mse_and_bce_match_reference)
{
    int bce = _i;
    clnet_context *ctx = test_context();
    for (size_t k = 0; k < NEL - (test_long() ? 0 : 1); k++) {
        int64_t n = el_sizes[k];
        uint64_t seed = 40 + k + 100 * (uint64_t)bce;
        float *x = host_f32((size_t)n), *t = host_f32((size_t)n);
        fill_uniform(x, (size_t)n, bce ? -8 : -1, bce ? 8 : 1, &seed);
        fill_uniform(t, (size_t)n, bce ? 0 : -1, 1, &seed);
        char label[64];
        snprintf(label, sizeof label, "%s n=%lld", bce ? "bce" : "mse", (long long)n);
        elementwise_case(ctx, bce, 1, &n, x, t, 1, label);
        free(x), free(t);
    }
    int64_t s2[2] = { 32, 10 };
    float x[320], t[320];
    uint64_t seed = 5;
    fill_uniform(x, 320, -3, 3, &seed);
    fill_uniform(t, 320, 0, 1, &seed);
    elementwise_case(ctx, bce, 2, s2, x, t, 1, bce ? "bce 32x10" : "mse 32x10");
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bce_large_logits_stay_finite)
{
    clnet_context *ctx = test_context();
    const float x[] = { 80, -80, 1e4f, -1e4f, 100, -100, 0, 3, 1e4f, -1e4f };
    const float t[] = { 1, 0, 0, 1, 0.3f, 0.7f, 0.5f, 1, 1, 0 };
    int64_t n = 10;
    elementwise_case(ctx, 1, 1, &n, x, t, 0, "bce large logits");
    /* A perfect prediction: loss exactly 0, gradient 0. */
    const float xp[] = { 1e4f, -1e4f }, tp[] = { 1, 0 };
    int64_t two = 2;
    float grad[2], loss;
    clnet_tensor *tx = tensor_from(ctx, 1, &two, xp), *tt = tensor_from(ctx, 1, &two, tp), *tl;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &tl));
    clnet_tensor *tg;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &two, &tg));
    CK_OK(ctx, clnet_loss_bce_logits(tx, tt, tl, tg));
    download(ctx, tl, &loss, 1);
    download(ctx, tg, grad, 2);
    ck_assert(loss == 0.0f && grad[0] == 0.0f && grad[1] == 0.0f);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tt), clnet_tensor_destroy(tl);
    clnet_tensor_destroy(tg);
    clnet_context_destroy(ctx);
}
END_TEST

/* The gradient may overwrite its input (exact aliasing). */
START_TEST(elementwise_loss_gradient_in_place)
{
    clnet_context *ctx = test_context();
    int64_t n = 300;
    float x[300], t[300], want[300], got[300];
    uint64_t seed = 3;
    fill_uniform(x, 300, -4, 4, &seed);
    fill_uniform(t, 300, 0, 1, &seed);
    for (int bce = 0; bce < 2; bce++) {
        loss_fn fn = bce ? clnet_loss_bce_logits : clnet_loss_mse;
        clnet_tensor *tx = tensor_from(ctx, 1, &n, x), *tt = tensor_from(ctx, 1, &n, t), *tg;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &tg));
        CK_OK(ctx, fn(tx, tt, NULL, tg));
        download(ctx, tg, want, 300);
        CK_OK(ctx, fn(tx, tt, NULL, tx));
        download(ctx, tx, got, 300);
        ck_assert_msg(memcmp(got, want, sizeof got) == 0, "%s: in-place gradient differs",
                      bce ? "bce" : "mse");
        clnet_tensor_destroy(tx), clnet_tensor_destroy(tt), clnet_tensor_destroy(tg);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Softmax cross-entropy ------------------------------------------------------- */

typedef struct xent_data {
    int rows, cols;
    const float *x;
    const float *t;        /* dense targets, or NULL */
    const int32_t *labels; /* sparse labels, or NULL */
} xent_data;

/* Bounds from the table at the top; returns the loss bound. */
static double xent_bounds(const xent_data *d, const double *x, const double *t, double depth,
                          size_t wg, double *bound)
{
    double S = 0, Rmax = 0;
    for (int r = 0; r < d->rows; r++) {
        size_t o = (size_t)r * (size_t)d->cols;
        double m = x[o], R = 0, s = 0, tsum = 0;
        for (int j = 1; j < d->cols; j++)
            m = fmax(m, x[o + j]);
        for (int j = 0; j < d->cols; j++) {
            R = fmax(R, fmin(m - x[o + j], 110.0));
            s += exp(x[o + j] - m);
            tsum += t ? t[o + j] : 0;
        }
        Rmax = fmax(Rmax, R);
        double ls = log(s);
        for (int j = 0; j < d->cols; j++) {
            double p = exp(x[o + j] - m) / s, tj = t ? t[o + j] : (j == d->labels[r]);
            S += tj * (ls - (x[o + j] - m));
            bound[o + j] = t ? U * ((3 * depth + 2 * R + 20) * p * tsum + 2 * (p * tsum + tj))
                             : U * ((2 * depth + 2 * R + 18) * p + 2 * (p + tj));
            bound[o + j] = bound[o + j] / d->rows + TINY;
        }
    }
    double dsum = depth + sum_depth(d->rows, (double)wg);
    return U * (2 * depth + 2 * Rmax + 28 + 2 * dsum) * S / d->rows + TINY;
}

static clnet_status sparse_fn(const clnet_tensor *x, const clnet_tensor *l, clnet_tensor *loss,
                              clnet_tensor *dx)
{
    return clnet_loss_sparse_softmax_xent(x, l, loss, dx);
}

static void xent_case(clnet_context *ctx, const xent_data *d, int variant, const char *what)
{
    size_t n = (size_t)d->rows * (size_t)d->cols, wg = clnet__context_profile(ctx)->wg_size;
    int64_t shape[2] = { d->rows, d->cols };
    char label[128];
    snprintf(label, sizeof label, "%s %s %dx%d %s", d->t ? "xent" : "sparse xent", what, d->rows,
             d->cols, variant == CLNET_V_ROW_GROUP ? "group" : "item");
    CK_OK(ctx, clnet__force_variant(ctx, "softmax_xent.forward", variant));
    clnet_tensor *tx = tensor_from(ctx, 2, shape, d->x);
    clnet_tensor *tt =
        d->t ? tensor_from(ctx, 2, shape, d->t) : labels_from(ctx, d->rows, d->labels);
    float *grad = host_f32(n);
    float loss = run_loss(ctx, d->t ? clnet_loss_softmax_xent : sparse_fn, tx, tt, grad, label);
    expect_unchanged(ctx, tx, d->x, n * sizeof *d->x, label);
    if (d->t)
        expect_unchanged(ctx, tt, d->t, n * sizeof *d->t, label);
    else
        expect_unchanged(ctx, tt, d->labels, (size_t)d->rows * sizeof *d->labels, label);
    double *xd = widen_f64(d->x, n), *td = d->t ? widen_f64(d->t, n) : NULL, *gref = host_f64(n);
    double *bound = host_f64(n);
    double ref = d->t ? ref_loss_softmax_xent(d->rows, d->cols, xd, td, gref)
                      : ref_loss_sparse_softmax_xent(d->rows, d->cols, xd, d->labels, gref);
    double depth = variant == CLNET_V_ROW_GROUP
                       ? ceil((double)d->cols / (double)wg) + log2((double)wg)
                       : d->cols;
    double lbound = xent_bounds(d, xd, td, depth, wg, bound);
    ck_assert_msg(isfinite(loss), "%s: loss %g", label, (double)loss);
    check_loss_value(label, loss, ref, lbound);
    if (d->cols > 1 && !strcmp(what, "random")) /* large logits underflow to exact zeros */
        trust(gref, n, label);
    ck_assert_msg(compare_bounds(label, grad, gref, bound, n) == 0, "%s gradient", label);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tt);
    free(grad), free(xd), free(td), free(gref), free(bound);
}

static const int64_t xent_shapes[][2] = { { 1, 1 },    { 1, 10 },    { 3, 7 },
                                          { 32, 10 },  { 100, 10 },  { 33, 1000 },
                                          { 7, 4097 }, { 1000, 10 }, { 20000, 50 } };
#define NXENT_QUICK 8
#define NXENT (sizeof xent_shapes / sizeof xent_shapes[0])

START_TEST(softmax_xent_matches_reference)
{
    clnet_context *ctx = test_context();
    if ((size_t)_i < NXENT_QUICK || test_long()) {
        int rows = (int)xent_shapes[_i][0], cols = (int)xent_shapes[_i][1];
        size_t n = (size_t)rows * (size_t)cols;
        float *x = host_f32(n), *t = host_f32(n);
        int32_t *labels = malloc((size_t)rows * sizeof *labels);
        uint64_t seed = 300 + (uint64_t)_i;
        fill_uniform(x, n, -4, 4, &seed);
        fill_uniform(t, n, 0, 1, &seed); /* soft targets; rows need not sum to 1 */
        for (int r = 0; r < rows; r++)
            labels[r] = (int32_t)(test_rng(&seed) % (uint64_t)cols);
        for (int v = 0; v < 2; v++) {
            xent_data dense = { rows, cols, x, t, NULL }, sparse = { rows, cols, x, NULL, labels };
            xent_case(ctx, &dense, v, "random");
            xent_case(ctx, &sparse, v, "random");
        }
        free(x), free(t), free(labels);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(xent_large_logits_stay_finite)
{
    clnet_context *ctx = test_context();
    enum { R = 4, C = 5 };
    const float x[R * C] = { 80,  -80, 0,   79,  -1e4f, 1e4f, -1e4f, 0, 5e3f, 1e4f,
                             -80, -80, -80, -80, 80,    1e4f, 0,     0, 0,    -1e4f };
    const int32_t labels[R] = { 0, 4, 1, 4 }; /* the last: log-prob -2e4 */
    float onehot[R * C] = { 0 };
    for (int r = 0; r < R; r++)
        onehot[r * C + labels[r]] = 1;
    for (int v = 0; v < 2; v++) {
        xent_data dense = { R, C, x, onehot, NULL }, sparse = { R, C, x, NULL, labels };
        xent_case(ctx, &dense, v, "large");
        xent_case(ctx, &sparse, v, "large");
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Labels outside [0, classes): that row's loss is NaN (so the mean is) and
 * its gradient row is 0; other rows are unaffected; nothing is written out of
 * bounds. */
START_TEST(sparse_xent_bad_labels_give_nan_and_zero_rows)
{
    clnet_context *ctx = test_context();
    enum { R = 5, C = 70 }; /* C > 64: the default is a row per work-group */
    static float x[R * C], grad[R * C];
    const int32_t labels[R] = { 3, -1, C, INT32_MAX, INT32_MIN };
    uint64_t seed = 8;
    fill_uniform(x, R * C, -2, 2, &seed);
    int64_t shape[2] = { R, C }, one = 1;
    clnet_tensor *tx = tensor_from(ctx, 2, shape, x), *tl = labels_from(ctx, R, labels);
    for (int v = 0; v < 2; v++) {
        CK_OK(ctx, clnet__force_variant(ctx, "softmax_xent.forward", v));
        guarded gl, gg;
        guarded_create(ctx, 1, &one, &gl);
        guarded_create(ctx, 2, shape, &gg);
        CK_OK(ctx, clnet_loss_sparse_softmax_xent(tx, tl, gl.view, gg.view));
        guard_check(ctx, &gl, "bad labels loss");
        guard_check(ctx, &gg, "bad labels gradient");
        float loss;
        download(ctx, gl.view, &loss, 1);
        download(ctx, gg.view, grad, R * C);
        ck_assert_msg(isnan(loss) && !is_sentinel(loss), "loss %g, expected NaN", (double)loss);
        for (int i = C; i < R * C; i++)
            ck_assert_msg(grad[i] == 0.0f, "gradient [%d] = %g, expected 0", i, (double)grad[i]);
        /* Row 0 as the reference's, scaled by 1 / R rows. */
        double xd[C], g0[C], bound[C];
        for (int j = 0; j < C; j++)
            xd[j] = x[j];
        ref_loss_sparse_softmax_xent(1, C, xd, labels, g0);
        for (int j = 0; j < C; j++)
            g0[j] /= R, bound[j] = U * (2 * C + 40) * (fabs(g0[j]) + 1.0 / R) + TINY;
        ck_assert(compare_bounds("bad labels row 0", grad, g0, bound, C) == 0);
        guarded_destroy(&gl), guarded_destroy(&gg);
    }
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tl);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(xent_gradient_in_place)
{
    clnet_context *ctx = test_context();
    enum { R = 6, C = 100 };
    static float x[R * C], t[R * C], want[R * C], got[R * C];
    int32_t labels[R] = { 0, 99, 5, 50, 7, 1 };
    uint64_t seed = 12;
    fill_uniform(x, R * C, -3, 3, &seed);
    fill_uniform(t, R * C, 0, 1, &seed);
    int64_t shape[2] = { R, C }, one = 1;
    for (int v = 0; v < 4; v++) {
        int sparse = v >> 1;
        CK_OK(ctx, clnet__force_variant(ctx, "softmax_xent.forward", v & 1));
        clnet_tensor *tx = tensor_from(ctx, 2, shape, x), *tg, *l1, *l2;
        clnet_tensor *tt = sparse ? labels_from(ctx, R, labels) : tensor_from(ctx, 2, shape, t);
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &tg));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &one, &l1));
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &one, &l2));
        loss_fn fn = sparse ? sparse_fn : clnet_loss_softmax_xent;
        CK_OK(ctx, fn(tx, tt, l1, tg));
        download(ctx, tg, want, R * C);
        CK_OK(ctx, fn(tx, tt, l2, tx));
        download(ctx, tx, got, R * C);
        ck_assert_msg(memcmp(got, want, sizeof got) == 0, "in-place gradient differs (%d)", v);
        expect_same_bits(ctx, l1, l2, 1, "in-place loss");
        clnet_tensor_destroy(tx), clnet_tensor_destroy(tt), clnet_tensor_destroy(tg);
        clnet_tensor_destroy(l1), clnet_tensor_destroy(l2);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Accuracy ------------------------------------------------------------------------ */

static void accuracy_case(clnet_context *ctx, int rows, int cols, const float *x,
                          const int32_t *labels, const char *label)
{
    int64_t shape[2] = { rows, cols }, one = 1;
    clnet_tensor *tx = tensor_from(ctx, 2, shape, x), *tl = labels_from(ctx, rows, labels), *ci;
    double *xd = widen_f64(x, (size_t)rows * (size_t)cols);
    double want = ref_metric_accuracy(rows, cols, xd, labels) * rows;
    guarded gf;
    guarded_create(ctx, 1, &one, &gf);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &one, &ci));
    CK_OK(ctx, clnet_accuracy(tx, tl, gf.view));
    CK_OK(ctx, clnet_accuracy(tx, tl, ci));
    guard_check(ctx, &gf, label);
    float f;
    int32_t i;
    download(ctx, gf.view, &f, 1);
    CK_OK(ctx, clnet_tensor_download(ci, &i, sizeof i));
    ck_assert_msg(f == (float)want && i == (int32_t)want, "%s: counted %g / %d, expected %g", label,
                  (double)f, (int)i, want);
    expect_unchanged(ctx, tx, x, (size_t)rows * (size_t)cols * sizeof *x, label);
    guarded_destroy(&gf);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tl), clnet_tensor_destroy(ci);
    free(xd);
}

START_TEST(accuracy_counts_first_argmax)
{
    clnet_context *ctx = test_context();
    static const int shapes[][2] = { { 1, 1 }, { 3, 7 }, { 100, 10 }, { 33, 1000 }, { 5000, 10 } };
    for (int s = 0; s < 5; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * (size_t)cols;
        float *x = host_f32(n);
        int32_t *labels = malloc((size_t)rows * sizeof *labels);
        uint64_t seed = 21 + (uint64_t)s;
        fill_uniform(x, n, -1, 1, &seed);
        for (int r = 0; r < rows; r++) /* about half right: the true argmax or a random one */
            labels[r] = (int32_t)(test_rng(&seed) % (uint64_t)cols);
        for (int r = 0; r < rows; r += 2) {
            int best = 0;
            for (int j = 1; j < cols; j++)
                best = x[(size_t)r * cols + j] > x[(size_t)r * cols + best] ? j : best;
            labels[r] = best;
        }
        char label[64];
        snprintf(label, sizeof label, "accuracy %dx%d", rows, cols);
        accuracy_case(ctx, rows, cols, x, labels, label);
        free(x), free(labels);
    }
    /* Ties (first maximum wins), NaN, labels out of range. */
    const float x[6 * 4] = { 1, 3,   3, 0, 1, 3, 3, 0, NAN, 1, 2, 0,
                             1, NAN, 2, 0, 5, 5, 5, 5, 1,   2, 3, 4 };
    const int32_t right[6] = { 1, 2, 0, 2, 0, -1 }; /* rows 0, 2, 3, 4 match */
    accuracy_case(ctx, 6, 4, x, right, "accuracy ties and NaN");
    const int32_t wild[6] = { INT32_MIN, 4, -1, 99, INT32_MAX, 3 }; /* only row 5 */
    accuracy_case(ctx, 6, 4, x, wild, "accuracy labels out of range");
    clnet_context_destroy(ctx);
}
END_TEST

/* Categorical (rows, cols) and binary (n elements) accuracy counts against
 * the float64 reference: exact counts. */
static void count_case(clnet_context *ctx, int binary, int rows, int cols, const float *x,
                       const float *t, float threshold, const char *label)
{
    size_t n = (size_t)rows * (size_t)cols;
    int64_t shape[2] = { rows, cols }, one = 1;
    clnet_tensor *tx = tensor_from(ctx, 2, shape, x), *tt = tensor_from(ctx, 2, shape, t), *ci;
    double *xd = widen_f64(x, n), *td = widen_f64(t, n);
    double want = binary ? ref_metric_binary_accuracy(n, xd, td, threshold) * (double)n
                         : ref_metric_categorical_accuracy(rows, cols, xd, td) * rows;
    guarded gf;
    guarded_create(ctx, 1, &one, &gf);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &one, &ci));
    if (binary) {
        CK_OK(ctx, clnet_binary_accuracy(tx, tt, threshold, gf.view));
        CK_OK(ctx, clnet_binary_accuracy(tx, tt, threshold, ci));
    } else {
        CK_OK(ctx, clnet_categorical_accuracy(tx, tt, gf.view));
        CK_OK(ctx, clnet_categorical_accuracy(tx, tt, ci));
    }
    guard_check(ctx, &gf, label);
    float f;
    int32_t i;
    download(ctx, gf.view, &f, 1);
    CK_OK(ctx, clnet_tensor_download(ci, &i, sizeof i));
    ck_assert_msg(f == (float)floor(want + 0.5) && i == (int32_t)floor(want + 0.5),
                  "%s: counted %g / %d, expected %g", label, (double)f, (int)i, want);
    expect_unchanged(ctx, tx, x, n * sizeof *x, label);
    expect_unchanged(ctx, tt, t, n * sizeof *t, label);
    guarded_destroy(&gf);
    clnet_tensor_destroy(tx), clnet_tensor_destroy(tt), clnet_tensor_destroy(ci);
    free(xd), free(td);
}

START_TEST(categorical_and_binary_accuracy_count)
{
    clnet_context *ctx = test_context();
    static const int shapes[][2] = { { 1, 1 }, { 3, 7 }, { 31, 10 }, { 33, 1 }, { 5000, 3 } };
    for (int s = 0; s < 5; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * (size_t)cols;
        float *x = host_f32(n), *t = host_f32(n);
        uint64_t seed = 71 + (uint64_t)s;
        fill_uniform(x, n, -1, 1, &seed);
        fill_uniform(t, n, 0, 1, &seed);
        /* Every other row's target peaks where x does: about half right. */
        for (int r = 0; r < rows; r += 2) {
            int best = 0;
            for (int j = 1; j < cols; j++)
                best = x[(size_t)r * cols + j] > x[(size_t)r * cols + best] ? j : best;
            t[(size_t)r * cols + best] = 2;
        }
        char label[64];
        snprintf(label, sizeof label, "categorical accuracy %dx%d", rows, cols);
        count_case(ctx, 0, rows, cols, x, t, 0, label);
        snprintf(label, sizeof label, "binary accuracy %dx%d", rows, cols);
        count_case(ctx, 1, rows, cols, x, t, 0.25f, label);
    }
    /* Ties (first maximum wins on both sides), NaN, values at the thresholds. */
    const float x[3 * 4] = { 1, 3, 3, 0, NAN, 1, 2, 0, 0.5f, 0.5f, 0, 1 };
    const float t[3 * 4] = { 0, 1, 0, 1, 1, 0, 0, 0, 0.5f, 0, 0, 1 };
    count_case(ctx, 0, 3, 4, x, t, 0, "categorical accuracy ties and NaN"); /* rows 0, 1, 2 */
    count_case(ctx, 1, 3, 4, x, t, 0.5f, "binary accuracy at the thresholds");
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(mae_matches_reference)
{
    clnet_context *ctx = test_context();
    for (size_t k = 0; k < NEL - (test_long() ? 0 : 1); k++) {
        int64_t n = el_sizes[k];
        uint64_t seed = 90 + k;
        float *x = host_f32((size_t)n), *t = host_f32((size_t)n), *grad = host_f32((size_t)n);
        fill_uniform(x, (size_t)n, -1, 1, &seed);
        fill_uniform(t, (size_t)n, -1, 1, &seed);
        t[0] = x[0]; /* a zero difference: gradient 0 */
        char label[64];
        snprintf(label, sizeof label, "mae n=%lld", (long long)n);
        clnet_tensor *tx = tensor_from(ctx, 1, &n, x), *tt = tensor_from(ctx, 1, &n, t);
        float loss = run_loss(ctx, clnet_loss_mae, tx, tt, grad, label);
        double *xd = widen_f64(x, (size_t)n), *td = widen_f64(t, (size_t)n),
               *gref = host_f64((size_t)n), *bound = host_f64((size_t)n), S = 0;
        double ref = ref_loss_mae((size_t)n, xd, td, gref);
        for (int64_t i = 0; i < n; i++) {
            S += fabs(xd[i] - td[i]);
            bound[i] = U * fabs(gref[i]) + TINY; /* one rounding: 1 / n */
        }
        double D = sum_depth((double)n, (double)clnet__context_profile(ctx)->wg_size);
        check_loss_value(label, loss, ref, U * (2 * D + 4) * S / (double)n + TINY);
        ck_assert_msg(grad[0] == 0.0f, "%s: gradient at a zero difference %g", label,
                      (double)grad[0]);
        ck_assert_msg(compare_bounds(label, grad, gref, bound, (size_t)n) == 0, "%s gradient",
                      label);
        clnet_tensor_destroy(tx), clnet_tensor_destroy(tt);
        free(x), free(t), free(grad), free(xd), free(td), free(gref), free(bound);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Bad arguments, empty inputs, programs ------------------------------------------ */

START_TEST(loss_bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t s37[2] = { 3, 7 }, s73[2] = { 7, 3 }, s30[2] = { 3, 0 }, three = 3, four = 4, two = 2;
    clnet_tensor *a, *b, *c, *g, *loss, *loss2, *ints, *lab, *lab4, *fl, *z, *big;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s37, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s37, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s73, &c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s37, &g));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &loss));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &two, &loss2));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 2, s37, &ints));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &three, &lab));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &four, &lab4));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &three, &fl));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s30, &z));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, (int64_t[]){ 22 }, &big));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "target: shape (7, 3) but expected (3, 7)",
             clnet_loss_mse(a, c, loss, g));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dpred: shape (7, 3) but expected (3, 7)",
             clnet_loss_mse(a, b, loss, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "pred: must not be NULL",
             clnet_loss_mse(NULL, b, loss, g));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "target: must not be NULL",
             clnet_loss_bce_logits(a, NULL, loss, g));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "x: dtype int32 but expected float32",
             clnet_loss_bce_logits(ints, b, loss, g));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "loss: holds 2 elements, expected 1",
             clnet_loss_mse(a, b, loss2, g));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "loss and dx are both NULL",
             clnet_loss_bce_logits(a, b, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dlogits: shape (7, 3) but expected (3, 7)",
             clnet_loss_softmax_xent(a, b, loss, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "target: shape (7, 3)", clnet_loss_softmax_xent(a, c, loss, g));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "labels: dtype float32 but expected int32",
             clnet_loss_sparse_softmax_xent(a, fl, loss, g));
    CK_FAILS(ctx, CLNET_ERR_SHAPE,
             "labels: holds 4 elements, expected 3 (the rows of logits, (3, 7))",
             clnet_loss_sparse_softmax_xent(a, lab4, loss, g));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "labels: must not be NULL",
             clnet_loss_sparse_softmax_xent(a, NULL, loss, g));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "loss and dlogits are both NULL",
             clnet_loss_sparse_softmax_xent(a, lab, NULL, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "logits: shape (3, 0), with no classes",
             clnet_loss_sparse_softmax_xent(z, lab, loss, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "labels: holds 4 elements", clnet_accuracy(a, lab4, loss));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "correct: holds 2 elements", clnet_accuracy(a, lab, loss2));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "correct: must not be NULL", clnet_accuracy(a, lab, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "logits: dtype int32 but expected float32",
             clnet_accuracy(ints, lab, loss));
    /* Overlaps: the loss inside an input; a gradient over part of an input. */
    clnet_tensor *in_a, *p, *q;
    CK_OK(ctx, clnet_tensor_slice(big, 0, 1, &in_a));
    CK_OK(ctx, clnet_tensor_slice(big, 0, 21, &p));
    CK_OK(ctx, clnet_tensor_slice(big, 1, 21, &q));
    clnet_tensor *p2, *q2;
    CK_OK(ctx, clnet_tensor_reshape(p, 2, s37, &p2));
    CK_OK(ctx, clnet_tensor_reshape(q, 2, s37, &q2));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "loss: overlaps pred", clnet_loss_mse(p2, b, in_a, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dpred: overlaps pred in part",
             clnet_loss_mse(p2, b, NULL, q2));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dlogits: overlaps logits in part",
             clnet_loss_softmax_xent(p2, b, loss, q2));
    clnet_tensor_destroy(in_a), clnet_tensor_destroy(p), clnet_tensor_destroy(q);
    clnet_tensor_destroy(p2), clnet_tensor_destroy(q2), clnet_tensor_destroy(big);
    clnet_tensor_destroy(a), clnet_tensor_destroy(b), clnet_tensor_destroy(c);
    clnet_tensor_destroy(g), clnet_tensor_destroy(loss), clnet_tensor_destroy(loss2);
    clnet_tensor_destroy(ints), clnet_tensor_destroy(lab), clnet_tensor_destroy(lab4);
    clnet_tensor_destroy(fl), clnet_tensor_destroy(z);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(empty_inputs_give_nan_loss)
{
    clnet_context *ctx = test_context();
    int64_t zero = 0, s0[2] = { 0, 10 };
    clnet_tensor *e, *e2, *loss, *lab, *cnt;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &zero, &e));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s0, &e2));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &loss));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &zero, &lab));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 0, NULL, &cnt));
    float l;
    int32_t c = 7;
    CK_OK(ctx, clnet_loss_mse(e, e, loss, e));
    download(ctx, loss, &l, 1);
    ck_assert(isnan(l));
    CK_OK(ctx, clnet_tensor_fill(loss, 1.0));
    CK_OK(ctx, clnet_loss_sparse_softmax_xent(e2, lab, loss, e2));
    download(ctx, loss, &l, 1);
    ck_assert(isnan(l));
    CK_OK(ctx, clnet_accuracy(e2, lab, cnt));
    CK_OK(ctx, clnet_tensor_download(cnt, &c, sizeof c));
    ck_assert_int_eq(c, 0);
    clnet_tensor_destroy(e), clnet_tensor_destroy(e2), clnet_tensor_destroy(loss);
    clnet_tensor_destroy(lab), clnet_tensor_destroy(cnt);
    clnet_context_destroy(ctx);
}
END_TEST

/* Every loss once at rows x cols, both row variants. */
static void run_all(clnet_context *ctx, int64_t rows, int64_t cols)
{
    int64_t shape[2] = { rows, cols };
    clnet_tensor *x, *t, *g, *loss, *lab;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &t));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &g));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &loss));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &rows, &lab));
    CK_OK(ctx, clnet_tensor_rand_uniform(x, 1, 0, -1, 1));
    CK_OK(ctx, clnet_tensor_rand_uniform(t, 1, 1, 0, 1));
    CK_OK(ctx, clnet_tensor_fill(lab, 0));
    CK_OK(ctx, clnet_loss_mse(x, t, loss, g));
    CK_OK(ctx, clnet_loss_bce_logits(x, t, loss, g));
    for (int v = 0; v < 2; v++) {
        CK_OK(ctx, clnet__force_variant(ctx, "softmax_xent.forward", v));
        CK_OK(ctx, clnet_loss_softmax_xent(x, t, loss, g));
        CK_OK(ctx, clnet_loss_sparse_softmax_xent(x, lab, loss, g));
    }
    CK_OK(ctx, clnet_accuracy(x, lab, loss));
    CK_OK(ctx, clnet_context_finish(ctx));
    clnet_tensor_destroy(x), clnet_tensor_destroy(t), clnet_tensor_destroy(g);
    clnet_tensor_destroy(loss), clnet_tensor_destroy(lab);
}

START_TEST(new_shapes_build_no_program)
{
    clnet_context *ctx = test_context();
    run_all(ctx, 100, 50); /* 100 rows and 5000 elements: both two-level means */
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    run_all(ctx, 3, 7);
    run_all(ctx, 1, 1);
    run_all(ctx, 333, 129);
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.programs_built, before.programs_built);
    ck_assert_uint_eq(after.programs_loaded, before.programs_loaded);
    ck_assert_uint_gt(after.kernel_launches, before.kernel_launches);
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative controls for check_bound. */
START_TEST(bounded_comparator_fails_when_it_should)
{
    double ref[3] = { 0.25, -3.0, 1e-3 }, bound[3] = { 1e-7, 1e-6, 1e-10 };
    float got[3] = { 0.25f, -3.0f, (float)1e-3 };
    ck_assert_uint_eq(compare_bounds("control", got, ref, bound, 3), 0);
    got[0] = (float)(ref[0] + 2 * bound[0]);
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    got[0] = 0.25f, got[1] = -NAN;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    got[1] = -INFINITY;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    float zeros[3] = { 0, 0, 0 };
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", zeros, ref, bound, 3), 3);
    got[1] = -3.0f, ref[2] = INFINITY;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
}
END_TEST

Suite *suite_loss(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bounded_comparator_fails_when_it_should);
    tcase_add_loop_test(tc, mse_and_bce_match_reference, 0, 2);
    tcase_add_test(tc, bce_large_logits_stay_finite);
    tcase_add_test(tc, elementwise_loss_gradient_in_place);
    tcase_add_loop_test(tc, softmax_xent_matches_reference, 0, (int)NXENT);
    tcase_add_test(tc, xent_large_logits_stay_finite);
    tcase_add_test(tc, sparse_xent_bad_labels_give_nan_and_zero_rows);
    tcase_add_test(tc, xent_gradient_in_place);
    tcase_add_test(tc, accuracy_counts_first_argmax);
    tcase_add_test(tc, categorical_and_binary_accuracy_count);
    tcase_add_test(tc, mae_matches_reference);
    tcase_add_test(tc, loss_bad_arguments_are_named);
    tcase_add_test(tc, empty_inputs_give_nan_loss);
    tcase_add_test(tc, new_shapes_build_no_program);
    suite_add_tcase(s, tc);
    return s;
}
