/* clnet tests — clnet_gemm and clnet_gemm_batched against the float64
 * reference in exact and real mode, under CLBlast's own and the tuned
 * parameter sets (src/ops/gemm_params.h) and on both of CLBlast's kernels. */
#include <clblast_c.h> /* only to play another CLBlast user in the params tests */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/gemm.h"
#include "ops/gemm_params.h"
#include "runtime/fault.h"
#include "ref.h"

/* ---- Tolerances ------------------------------------------------------------ */

/* Exact mode: nonzero integers in [-8, 8] and dyadic alpha, beta: every partial sum
 * stays below 2^24, so any order and any fusing gives the exact answer. */
static const tolerance tol_exact = { 0, 0, 1, "small integers: exact in any summation order" };

/* Real mode, per element (check_bound): K products summed in any order, then
 * alpha and beta applied, with or without FMA: at most K + 2 roundings, each
 * within 2^-24 of the running magnitudes, so |got - ref| <= 2 (K + 2) 2^-24
 * (|alpha| (|A||B|)_ij + |beta c0_ij|), a factor 2 of margin (docs/testing.md's
 * 2 K 2^-24 (|A||B|)_ij, extended to alpha and beta). */
#define REAL_BOUND_FACTOR 2.0
/* And ||got - ref|| / ||ref||: random signs keep it near 1e-7 for K <= 1600. */
#define REAL_REL_ERROR 1e-5
/* A case with more than this fraction of exact zeros in the reference is
 * suspect (docs/testing.md's trust check): the data would not test much. Exact
 * mode draws nonzero integers, so a zero needs a cancellation; outputs
 * under 16 elements are too few to judge. */
#define MAX_ZERO_FRACTION 0.3
#define MIN_TRUST_ELEMENTS 16

/* ---- One GEMM case ----------------------------------------------------------- */

typedef struct gcase {
    int ta, tb; /* op(a) = a^T when set; likewise b */
    int64_t m, n, k;
    int64_t batch;          /* 0: clnet_gemm; >= 1: clnet_gemm_batched */
    int shared_a, shared_b; /* batched: the operand has batch 1 */
    float alpha, beta;
    int exact; /* nonzero integers in [-8, 8], else uniform [-1, 1] */
    uint64_t seed;
} gcase;

/* An input: a view of `n` elements `pre` elements into a buffer whose other
 * elements hold the NaN sentinel, so a read outside the view shows in C. */
typedef struct operand {
    clnet_tensor *base, *view; /* base is NULL for an empty operand */
    float *host;               /* the whole base, as uploaded */
    size_t n, total;
} operand;

static void operand_make(clnet_context *ctx, int ndim, const int64_t *shape, const float *vals,
                         size_t pre, operand *o)
{
    o->n = 1;
    for (int i = 0; i < ndim; i++)
        o->n *= (size_t)shape[i];
    o->base = NULL;
    o->host = NULL;
    if (o->n == 0) {
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, ndim, shape, &o->view));
        return;
    }
    o->total = pre + o->n + 13;
    o->host = malloc(o->total * sizeof(float));
    ck_assert_ptr_nonnull(o->host);
    for (size_t i = 0; i < o->total; i++)
        o->host[i] = sentinel();
    memcpy(o->host + pre, vals, o->n * sizeof(float));
    int64_t total = (int64_t)o->total;
    o->base = tensor_from(ctx, 1, &total, o->host);
    clnet_tensor *row;
    CK_OK(ctx, clnet_tensor_slice(o->base, (int64_t)pre, (int64_t)o->n, &row));
    CK_OK(ctx, clnet_tensor_reshape(row, ndim, shape, &o->view));
    clnet_tensor_destroy(row);
}

/* Fails when the operand's buffer changed anywhere (view or surroundings). */
static void operand_unchanged(clnet_context *ctx, const operand *o, const char *label)
{
    if (!o->base)
        return;
    float *now = malloc(o->total * sizeof(float));
    ck_assert_ptr_nonnull(now);
    download(ctx, o->base, now, o->total);
    ck_assert_msg(memcmp(now, o->host, o->total * sizeof(float)) == 0, "%s: an input changed",
                  label);
    free(now);
}

static void operand_free(operand *o)
{
    clnet_tensor_destroy(o->view);
    clnet_tensor_destroy(o->base);
    free(o->host);
}

static void fill_values(float *x, size_t n, int exact, uint64_t *seed)
{
    if (!exact) {
        fill_uniform(x, n, -1, 1, seed);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int v = (int)(test_rng(seed) % 16) - 8; /* -8..7, then 0 -> 8: no zeros */
        x[i] = (float)(v ? v : 8);
    }
}

static double *to_double(const float *x, size_t n, int absolute)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = absolute ? fabs((double)x[i]) : (double)x[i];
    return d;
}

/* Real-mode comparison: the per-element bound above; prints the first few
 * failures. absab holds alpha-free (|A||B|)_ij, c0 the old C (or NULL). */
static size_t check_bound(const char *label, const float *got, const double *ref,
                          const double *absab, const float *c0, float alpha, float beta, int64_t k,
                          size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double scale = fabs((double)alpha) * absab[i] + (c0 ? fabs((double)beta * c0[i]) : 0);
        double bound = REAL_BOUND_FACTOR * (double)(k + 2) * 0x1.0p-24 * scale;
        if (!(isfinite(ref[i]) && fabs((double)got[i] - ref[i]) <= bound) && bad++ < 5)
            fprintf(stderr, "%s: [%zu] expected %.9g, got %.9g (bound %.3g)\n", label, i, ref[i],
                    (double)got[i], bound);
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements outside the bound\n", label, bad, n);
    return bad;
}

/* Stored shapes (batch first when batched) of a, b and c. */
static int case_shapes(const gcase *g, int64_t sa[3], int64_t sb[3], int64_t sc[3])
{
    int o = g->batch ? 1 : 0;
    if (o) {
        sa[0] = g->shared_a ? 1 : g->batch;
        sb[0] = g->shared_b ? 1 : g->batch;
        sc[0] = g->batch;
    }
    sa[o] = g->ta ? g->k : g->m;
    sa[o + 1] = g->ta ? g->m : g->k;
    sb[o] = g->tb ? g->n : g->k;
    sb[o + 1] = g->tb ? g->k : g->n;
    sc[o] = g->m;
    sc[o + 1] = g->n;
    return o + 2;
}

static size_t count(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

/* The case, the device and a one-line reproducer, for every failure. */
static void case_label(const gcase *g, clnet_context *ctx, const char *tcase, char *buf,
                       size_t size)
{
    snprintf(buf, size,
             "%s %s%s m=%lld n=%lld k=%lld batch=%lld%s%s alpha=%g beta=%g %s seed=%llu "
             "params=%d kernel=%d on %s (reproduce: %sCK_RUN_CASE=%s "
             "./build/tests/clnet-tests gemm)",
             g->batch ? "clnet_gemm_batched" : "clnet_gemm", g->ta ? "T" : "N", g->tb ? "T" : "N",
             (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch,
             g->shared_a ? " shared-a" : "", g->shared_b ? " shared-b" : "", (double)g->alpha,
             (double)g->beta, g->exact ? "exact" : "real", (unsigned long long)g->seed,
             clnet__variant(ctx, "gemm.params", 1), clnet__variant(ctx, "gemm.kernel", 2),
             clnet_context_device(ctx)->name, test_long() ? "CLNET_TEST_LONG=1 " : "", tcase);
}

static clnet_status run_gemm(const gcase *g, const clnet_tensor *a, const clnet_tensor *b,
                             clnet_tensor *c)
{
    clnet_trans ta = g->ta ? CLNET_TRANS : CLNET_NO_TRANS;
    clnet_trans tb = g->tb ? CLNET_TRANS : CLNET_NO_TRANS;
    return g->batch ? clnet_gemm_batched(ta, tb, g->alpha, a, b, g->beta, c)
                    : clnet_gemm(ta, tb, g->alpha, a, b, g->beta, c);
}

/* The float64 reference of the case: ref = alpha op(a) op(b) + beta c0, and
 * absab = |op(a)| |op(b)| for the real-mode bound. */
static void case_reference(const gcase *g, const int64_t *sa, const int64_t *sb, const float *a,
                           const float *b, const float *c0, size_t nc, double *ref, double *absab)
{
    int o = g->batch ? 1 : 0;
    size_t na = count(o + 2, sa), nb = count(o + 2, sb);
    ref_gemm r = { .trans_a = g->ta,
                   .trans_b = g->tb,
                   .m = (int)g->m,
                   .n = (int)g->n,
                   .k = (int)g->k,
                   .lda = (int)sa[o + 1],
                   .ldb = (int)sb[o + 1],
                   .ldc = (int)g->n,
                   .alpha = g->alpha,
                   .beta = g->beta,
                   .batch = g->batch ? (int)g->batch : 1,
                   .stride_a = g->shared_a ? 0 : (size_t)(g->m * g->k),
                   .stride_b = g->shared_b ? 0 : (size_t)(g->k * g->n),
                   .stride_c = (size_t)(g->m * g->n) };
    double *da = to_double(a, na, 0), *db = to_double(b, nb, 0);
    for (size_t i = 0; i < nc; i++)
        ref[i] = g->beta == 0 ? NAN : c0[i]; /* beta == 0 must not read C */
    ref_gemm_strided_batched_forward(&r, da, db, ref);
    free(da);
    free(db);
    da = to_double(a, na, 1);
    db = to_double(b, nb, 1);
    r.alpha = 1;
    r.beta = 0;
    ref_gemm_strided_batched_forward(&r, da, db, absab);
    free(da);
    free(db);
}

/* Runs one case: inputs as views amid NaN, C guarded (the NaN sentinel in C
 * itself when beta == 0), then every element against the reference, the
 * guards, the inputs, and a second run for bitwise determinism. */
static void check_case(clnet_context *ctx, const gcase *g, const char *tcase)
{
    int64_t sa[3], sb[3], sc[3];
    int nd = case_shapes(g, sa, sb, sc);
    size_t na = count(nd, sa), nb = count(nd, sb), nc = count(nd, sc);
    uint64_t seed = g->seed;
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    float *c0 = malloc((nc + 1) * sizeof *c0), *got = malloc((nc + 1) * sizeof *got);
    float *again = malloc((nc + 1) * sizeof *again);
    double *ref = malloc((nc + 1) * sizeof *ref), *absab = malloc((nc + 1) * sizeof *absab);
    ck_assert(a && b && c0 && got && again && ref && absab);
    fill_values(a, na, g->exact, &seed);
    fill_values(b, nb, g->exact, &seed);
    fill_values(c0, nc, g->exact, &seed);
    char label[768];
    case_label(g, ctx, tcase, label, sizeof label);

    operand oa, ob;
    operand_make(ctx, nd, sa, a, 5 + g->seed % 7, &oa);
    operand_make(ctx, nd, sb, b, 3 + g->seed % 11, &ob);
    guarded gc;
    guarded_create(ctx, nd, sc, &gc);
    for (int run = 0; run < 2; run++) {
        if (g->beta != 0 && nc)
            CK_OK(ctx, clnet_tensor_upload(gc.view, c0, nc * sizeof *c0));
        clnet_status st = run_gemm(g, oa.view, ob.view, gc.view);
        ck_assert_msg(st == CLNET_OK, "%s: %s: %s", label, clnet_status_name(st),
                      clnet_context_errmsg(ctx));
        guard_check(ctx, &gc, label);
        download(ctx, gc.view, run ? again : got, nc);
    }
    ck_assert_msg(memcmp(got, again, nc * sizeof *got) == 0, "%s: two runs differ", label);
    operand_unchanged(ctx, &oa, label);
    operand_unchanged(ctx, &ob, label);

    case_reference(g, sa, sb, a, b, c0, nc, ref, absab);
    size_t zeros = 0;
    for (size_t i = 0; i < nc; i++)
        zeros += ref[i] == 0;
    ck_assert_msg(g->k == 0 || nc < MIN_TRUST_ELEMENTS ||
                      (double)zeros <= MAX_ZERO_FRACTION * (double)nc,
                  "%s: %zu of %zu reference elements are zero: a suspect case", label, zeros, nc);
    if (g->exact) {
        ck_assert_msg(compare_f32(label, got, ref, nc, tol_exact) == 0,
                      "%s: mismatches in exact mode", label);
    } else {
        ck_assert_msg(check_bound(label, got, ref, absab, g->beta != 0 ? c0 : NULL, g->alpha,
                                  g->beta, g->k, nc) == 0,
                      "%s: elements outside the bound", label);
        double rel = rel_error(got, ref, nc);
        ck_assert_msg(nc == 0 || rel < REAL_REL_ERROR, "%s: relative error %g", label, rel);
    }
    guarded_destroy(&gc);
    operand_free(&oa);
    operand_free(&ob);
    free(a), free(b), free(c0), free(got), free(again), free(ref), free(absab);
}

/* ---- Variants ------------------------------------------------------------------ */

/* The four CLBlast configurations every shape runs under: parameter set
 * (0 CLBlast's own, 1 tuned) x kernel (0 direct, 1 indirect). On a device
 * without a tuned set both variants are no-ops and CLBlast chooses. */
static void set_variants(clnet_context *ctx, int params, int kernel)
{
    CK_OK(ctx, clnet__force_variant(ctx, "gemm.params", params));
    CK_OK(ctx, clnet__force_variant(ctx, "gemm.kernel", kernel));
}

/* clnet's packed kernel with k blocks of at most kc (0: its own choice);
 * kc 4 splits every k > 4 into several blocks, kc 12 leaves a padded tail. */
static void set_packed(clnet_context *ctx, int kc)
{
    set_variants(ctx, 1, CLNET_V_GEMM_PACKED);
    CK_OK(ctx, clnet__force_variant(ctx, "gemm.kc", kc > 0 ? kc : -1));
}

/* A loop index of the tests below to its variants: 0-7 as each test says
 * (bit 0 parameter set, bit 1 CLBlast kernel, bit 2 the test's own switch);
 * 8 and 9 run clnet's own kernel (gemm.kernel 3) with that switch off and on;
 * 10-11 the packed kernel (gemm.kernel 4) with its own k blocks, 12-13 with
 * blocks of 4, 14-15 of 12 (several blocks, padded tails).
 * Returns the index with bit 2 as the test reads it. */
#define NLOOP 16
static int loop_variants(clnet_context *ctx, int i)
{
    static const int kcs[] = { 0, 4, 12 };
    if (i < 8) {
        set_variants(ctx, i & 1, (i >> 1) & 1);
        return i;
    }
    if (i < 10)
        set_variants(ctx, 1, CLNET_V_GEMM_OWN);
    else
        set_packed(ctx, kcs[(i - 10) / 2]);
    return (i & 1) << 2;
}

/* alpha, beta pairs; dyadic so that exact mode stays exact. */
static const float alphas[] = { 1.0f, 2.0f, -0.5f, 1.0f };
static const float betas[] = { 0.0f, 0.0f, 1.0f, -2.0f };
#define NAB 4

/* ---- Shapes ------------------------------------------------------------------------ */

static const int64_t sizes[] = { 1, 3, 7, 31, 33, 63, 64, 65 };
#define NSIZES 8

/* The quick tier's cross section of sizes^3: every size in every position,
 * odd with even, tiny with large. */
static const int64_t quick[][3] = {
    { 1, 1, 1 },   { 1, 65, 7 },  { 3, 7, 33 },   { 7, 3, 1 },    { 31, 33, 64 },
    { 33, 31, 3 }, { 63, 1, 65 }, { 64, 64, 64 }, { 65, 63, 31 }, { 33, 65, 63 },
};
#define NQUICK (sizeof quick / sizeof quick[0])

/* _i: bit 0 parameter set, bit 1 kernel, bit 2 real mode; 8-9 clnet's
 * kernel (loop_variants). */
START_TEST(gemm_all_transposes_and_sizes)
{
    clnet_context *ctx = test_context();
    int v = loop_variants(ctx, _i);
    size_t ntriples = test_long() ? NSIZES * NSIZES * NSIZES : NQUICK;
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < ntriples; s++) {
            int64_t m = test_long() ? sizes[s / 64] : quick[s][0];
            int64_t n = test_long() ? sizes[s / 8 % 8] : quick[s][1];
            int64_t k = test_long() ? sizes[s % 8] : quick[s][2];
            size_t ab = (s + (size_t)t) % NAB;
            gcase g = { .ta = t & 1,
                        .tb = t >> 1,
                        .m = m,
                        .n = n,
                        .k = k,
                        .alpha = alphas[ab],
                        .beta = betas[ab],
                        .exact = !(v & 4),
                        .seed = 1000u * (uint64_t)_i + s };
            check_case(ctx, &g, "shapes");
        }
    clnet_context_destroy(ctx);
}
END_TEST

/* The reference models' GEMMs (docs/gemm.md): the CNN's convolutions as
 * im2col GEMMs batched over 32 images with the weights shared, forward and
 * both backward products; its dense layers; the LSTM's gate products. Run
 * with CLBlast choosing the kernel by size, as the library runs them. */
static const gcase model_cases[] = {
    /* conv 1->32 3x3 on 28x28: W (32x9) col (9x676) */
    { 0, 0, 32, 676, 9, 32, 1, 0, 1, 0, 0, 0 },
    { 1, 0, 9, 676, 32, 32, 1, 0, 1, 0, 0, 0 }, /* dcol = W^T dy */
    { 0, 1, 32, 9, 676, 32, 0, 0, 1, 0, 0, 0 }, /* dW per image = dy col^T */
    /* conv 32->64 3x3 on 13x13: W (64x288) col (288x121) */
    { 0, 0, 64, 121, 288, 32, 1, 0, 1, 0, 0, 0 },
    { 1, 0, 288, 121, 64, 32, 1, 0, 1, 0, 0, 0 },
    { 0, 1, 64, 288, 121, 32, 0, 0, 1, 0, 0, 0 },
    /* dense 1600->64 and 64->10, batch 32: y = x W^T, dW = dy^T x, dx = dy W */
    { 0, 1, 32, 64, 1600, 0, 0, 0, 1, 0, 0, 0 },
    { 1, 0, 64, 1600, 32, 0, 0, 0, 1, 1, 0, 0 }, /* accumulating dW */
    { 0, 0, 32, 1600, 64, 0, 0, 0, 1, 0, 0, 0 },
    { 0, 1, 32, 10, 64, 0, 0, 0, 1, 0, 0, 0 },
    { 1, 0, 10, 64, 32, 0, 0, 0, 1, 1, 0, 0 },
    { 0, 0, 32, 64, 10, 0, 0, 0, 1, 0, 0, 0 },
    /* LSTM(64), batch 32, input 28: gates = x W_ih^T (all 28 steps at once
     * and one step), h W_hh^T, and the backward products */
    { 0, 1, 896, 256, 28, 0, 0, 0, 1, 0, 0, 0 },
    { 0, 1, 32, 256, 28, 0, 0, 0, 1, 0, 0, 0 },
    { 0, 1, 32, 256, 64, 0, 0, 0, 1, 1, 0, 0 }, /* accumulated onto x W_ih^T */
    { 1, 0, 256, 28, 32, 0, 0, 0, 1, 1, 0, 0 },
    { 1, 0, 256, 64, 32, 0, 0, 0, 1, 1, 0, 0 },
    { 0, 0, 32, 64, 256, 0, 0, 0, 1, 0, 0, 0 },
};
#define NMODEL (sizeof model_cases / sizeof model_cases[0])

/* _i: bit 0 parameter set, bit 1 real mode; 4-5 clnet's kernel, 6-7 its
 * packed kernel, exact and real mode. */
START_TEST(gemm_reference_model_shapes)
{
    clnet_context *ctx = test_context();
    if (_i < 6)
        set_variants(ctx, _i & 1, _i < 4 ? 2 : CLNET_V_GEMM_OWN);
    else
        set_packed(ctx, 0);
    for (size_t s = 0; s < NMODEL; s++) {
        gcase g = model_cases[s];
        g.exact = _i < 4 ? !(_i & 2) : !(_i & 1);
        g.seed = 77u * s + (uint64_t)_i;
        check_case(ctx, &g, "models");
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Batched: each operand shared (batch 1) or not, batch 1 and more, every
 * transpose; _i: bit 0 parameter set, bit 1 kernel, bit 2 real mode; 8-9
 * clnet's kernel (loop_variants). */
START_TEST(gemm_batched_with_broadcast)
{
    clnet_context *ctx = test_context();
    int v = loop_variants(ctx, _i);
    /* batch, m, n, k; 64 and 128 are multiples of both sets' tiles, so
     * CLBlast's indirect kernel reads such operands in place (docs/gemm.md:
     * its strided form then ignored their offsets and strides). */
    static const int64_t shapes[][4] = {
        { 1, 7, 3, 33 },   { 3, 31, 33, 7 }, { 5, 1, 65, 3 },
        { 2, 64, 63, 64 }, { 4, 33, 1, 31 }, { 3, 64, 128, 32 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int share = 0; share < 4; share++) {
                size_t ab = (s + (size_t)share) % NAB;
                gcase g = { .ta = t & 1,
                            .tb = t >> 1,
                            .m = shapes[s][1],
                            .n = shapes[s][2],
                            .k = shapes[s][3],
                            .batch = shapes[s][0],
                            .shared_a = share & 1,
                            .shared_b = share >> 1,
                            .alpha = alphas[ab],
                            .beta = betas[ab],
                            .exact = !(v & 4),
                            .seed = 500u * (uint64_t)_i + 16u * s + 4u * (uint64_t)t +
                                    (uint64_t)share };
                check_case(ctx, &g, "batched");
            }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Semantics ------------------------------------------------------------------- */

/* beta == 0 ignores C, whatever it holds (NaN, Inf); beta == 1 accumulates:
 * twice from zero gives exactly twice the product. _i: parameter set and
 * kernel as above, 4 clnet's kernel, 5 the packed one, 6 the packed one in
 * blocks of 4 (the first block ignores C, the second adds to it). */
START_TEST(gemm_beta_zero_ignores_c_and_beta_one_accumulates)
{
    clnet_context *ctx = test_context();
    loop_variants(ctx, _i < 4 ? _i : 8 + 2 * (_i - 4));
    enum { M = 33, N = 31, K = 7 };
    float a[M * K], b[K * N], c[M * N], once[M * N];
    uint64_t seed = 9 + (uint64_t)_i;
    fill_values(a, M * K, 1, &seed);
    fill_values(b, K * N, 1, &seed);
    int64_t sa[2] = { M, K }, sb[2] = { K, N }, sc[2] = { M, N };
    clnet_tensor *ta = tensor_from(ctx, 2, sa, a), *tb = tensor_from(ctx, 2, sb, b), *tc;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, sc, &tc));
    const float poison[] = { NAN, INFINITY, -INFINITY };
    for (int p = 0; p < 3; p++) {
        CK_OK(ctx, clnet_tensor_fill(tc, poison[p]));
        CK_OK(ctx, clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, ta, tb, 0.0f, tc));
        download(ctx, tc, p ? c : once, M * N);
        for (int i = 0; p && i < M * N; i++)
            ck_assert_msg(c[i] == once[i], "beta 0 after %g in c: [%d] %g vs %g", (double)poison[p],
                          i, (double)c[i], (double)once[i]);
    }
    for (int i = 0; i < M * N; i++)
        ck_assert_msg(isfinite(once[i]), "beta 0 let NaN through at [%d]", i);
    CK_OK(ctx, clnet_tensor_fill(tc, 0.0));
    CK_OK(ctx, clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, ta, tb, 1.0f, tc));
    CK_OK(ctx, clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, ta, tb, 1.0f, tc));
    download(ctx, tc, c, M * N);
    for (int i = 0; i < M * N; i++)
        ck_assert_msg(c[i] == 2.0f * once[i], "beta 1 twice: [%d] %g, want %g", i, (double)c[i],
                      2.0 * once[i]);
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_tensor_destroy(tc);
    clnet_context_destroy(ctx);
}
END_TEST

/* k == 0: C = beta C (CLBlast refuses k == 0; clnet scales C itself), in
 * 2-D and batched form, and beta == 0 clears a NaN-filled C. */
START_TEST(gemm_k_zero_scales_c)
{
    clnet_context *ctx = test_context();
    for (int batched = 0; batched < 2; batched++)
        for (int ab = 0; ab < NAB; ab++) {
            gcase g = { .m = 7,
                        .n = 5,
                        .k = 0,
                        .batch = batched ? 3 : 0,
                        .shared_a = batched,
                        .alpha = alphas[ab],
                        .beta = betas[ab],
                        .exact = 1,
                        .seed = 3u + (uint64_t)ab };
            check_case(ctx, &g, "semantics");
        }
    /* m or n == 0: nothing to do, and nothing fails. */
    gcase empty = { .m = 0, .n = 5, .k = 3, .alpha = 1, .beta = 0, .exact = 1, .seed = 1 };
    check_case(ctx, &empty, "semantics");
    empty.m = 4;
    empty.n = 0;
    empty.batch = 2;
    check_case(ctx, &empty, "semantics");
    clnet_context_destroy(ctx);
}
END_TEST

/* a, b and c as slices of one buffer, at offsets that are multiples of
 * nothing in particular: offsets reach CLBlast right, and c next to its
 * inputs in the same buffer is not mistaken for an overlap. */
START_TEST(gemm_views_of_one_buffer)
{
    clnet_context *ctx = test_context();
    enum { M = 31, N = 33, K = 7, OA = 3, OB = OA + M * K + 5, OC = OB + K * N + 1 };
    int64_t total = OC + M * N + 11;
    float *all = malloc((size_t)total * sizeof *all), *got = malloc(M * N * sizeof *got);
    double ref[M * N], da[M * K], db[K * N];
    ck_assert(all && got);
    uint64_t seed = 42;
    fill_values(all, (size_t)total, 1, &seed);
    for (int i = 0; i < M * K; i++)
        da[i] = all[OA + i];
    for (int i = 0; i < K * N; i++)
        db[i] = all[OB + i];
    clnet_tensor *base = tensor_from(ctx, 1, &total, all), *views[3], *tmp;
    const int64_t offs[3] = { OA, OB, OC }, shapes[3][2] = { { M, K }, { K, N }, { M, N } };
    for (int v = 0; v < 3; v++) {
        CK_OK(ctx, clnet_tensor_slice(base, offs[v], shapes[v][0] * shapes[v][1], &tmp));
        CK_OK(ctx, clnet_tensor_reshape(tmp, 2, shapes[v], &views[v]));
        clnet_tensor_destroy(tmp);
    }
    for (int params = 0; params < 4; params++) { /* 2: clnet's kernel, 3 packed */
        if (params < 3)
            set_variants(ctx, params & 1, params < 2 ? 2 : CLNET_V_GEMM_OWN);
        else
            set_packed(ctx, 4);
        CK_OK(ctx,
              clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, views[0], views[1], 0.0f, views[2]));
        ref_gemm r = { .m = M, .n = N, .k = K, .lda = K, .ldb = N, .ldc = N, .alpha = 1 };
        ref_gemm_forward(&r, da, db, ref);
        download(ctx, views[2], got, M * N);
        ck_assert(compare_f32("views of one buffer", got, ref, M * N, tol_exact) == 0);
        /* Everything outside c is as uploaded. */
        float *now = malloc((size_t)total * sizeof *now);
        ck_assert_ptr_nonnull(now);
        download(ctx, base, now, (size_t)total);
        ck_assert(memcmp(now, all, OC * sizeof *now) == 0);
        ck_assert(memcmp(now + OC + M * N, all + OC + M * N, 11 * sizeof *now) == 0);
        free(now);
    }
    for (int v = 0; v < 3; v++)
        clnet_tensor_destroy(views[v]);
    clnet_tensor_destroy(base);
    free(all);
    free(got);
    clnet_context_destroy(ctx);
}
END_TEST

/* The NaN/Inf policy: non-finite inputs propagate as IEEE arithmetic says
 * (also with alpha == 0: no shortcut), FLT_MAX overflows to Inf, -0 and
 * denormals are kept, bit for bit as the reference. _i: parameter set and
 * kernel as above; bit 2 sets alpha = 0; 8-9 clnet's kernel. */
START_TEST(gemm_nan_inf_policy)
{
    clnet_context *ctx = test_context();
    int v = loop_variants(ctx, _i);
    enum { M = 7, N = 5, K = 6 };
    float a[M * K], b[K * N], got[M * N];
    double da[M * K], db[K * N], ref[M * N];
    uint64_t seed = 31;
    fill_values(a, M * K, 1, &seed);
    fill_values(b, K * N, 1, &seed);
    for (int p = 0; p < K; p++) {
        a[5 * K + p] = -0.0f;                   /* row 5: -0, times alpha -1 */
        a[6 * K + p] = 1e-42f * (float)(p + 1); /* row 6: denormals */
        a[p] = a[p] == 0 ? 1.0f : a[p];         /* row 0 meets the Inf without 0 * Inf */
    }
    a[1 * K + 2] = NAN; /* row 1: NaN */
    float alpha = (v & 4) ? 0.0f : -1.0f;
    /* Row 4 overflows where |b[0][j]| > 1; not with alpha 0, where the
     * device's 0 * Inf is NaN but the float64 reference never overflowed. */
    a[4 * K + 0] = alpha != 0 ? FLT_MAX : 1.0f;
    b[3 * N + 4] = INFINITY; /* column 4: Inf, NaN where a[i][3] == 0 */
    b[0 * N + 1] = 3.0f;
    b[0 * N + 4] = 1.0f; /* no overflow meets the Inf (float32 would
                          * give Inf - Inf = NaN, float64 Inf) */
    for (int i = 0; i < M * K; i++)
        da[i] = a[i];
    for (int i = 0; i < K * N; i++)
        db[i] = b[i];
    int64_t sa[2] = { M, K }, sb[2] = { K, N }, sc[2] = { M, N };
    clnet_tensor *ta = tensor_from(ctx, 2, sa, a), *tb = tensor_from(ctx, 2, sb, b);
    guarded gc;
    guarded_create(ctx, 2, sc, &gc);
    CK_OK(ctx, clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, alpha, ta, tb, 0.0f, gc.view));
    guard_check(ctx, &gc, "nan/inf policy");
    download(ctx, gc.view, got, M * N);
    ref_gemm r = { .m = M, .n = N, .k = K, .lda = K, .ldb = N, .ldc = N, .alpha = alpha };
    ref_gemm_forward(&r, da, db, ref);
    size_t bad = 0;
    for (int i = 0; i < M * N; i++) {
        float want = (float)ref[i];
        int same = memcmp(&want, &got[i], sizeof want) == 0 || (isnan(want) && isnan(got[i]));
        if (!same && bad++ < 8)
            fprintf(stderr, "nan/inf policy alpha=%g: c[%d][%d] expected %a, got %a\n",
                    (double)alpha, i / N, i % N, (double)want, (double)got[i]);
    }
    ck_assert_msg(bad == 0, "nan/inf policy (alpha %g): %zu elements differ from IEEE arithmetic",
                  (double)alpha, bad);
    /* The injections did what they meant to: NaN, Inf, FLT_MAX overflow,
     * -0 (alpha -1) and a denormal all appear in the reference. */
    ck_assert(isnan(ref[1 * N]) && (alpha == 0 ? isnan(ref[4]) : isinf(ref[4])));
    if (alpha != 0) {
        ck_assert(isinf((float)ref[4 * N + 1]) && signbit(ref[5 * N]) && ref[5 * N] == 0);
        ck_assert(fabs(ref[6 * N]) < FLT_MIN && ref[6 * N] != 0);
    }
    guarded_destroy(&gc);
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- CLBlast parameters --------------------------------------------------------- */

/* Without forcing the parameter set, a device with a table entry runs the
 * tuned set with CLBlast choosing the kernel (forced: on a CPU clnet's own
 * kernel is the default), and CLBlast accepted every parameter name. */
START_TEST(gemm_params_tuned_set_is_the_default)
{
    clnet_context *ctx = test_context();
    CK_OK(ctx, clnet__force_variant(ctx, "gemm.kernel", 2));
    gcase g = { .m = 3, .n = 7, .k = 5, .alpha = 1, .exact = 1, .seed = 5 };
    check_case(ctx, &g, "params");
    const char *label = clnet__gemm_params_label(ctx);
    int applied = clnet__gemm_params_applied(ctx);
    if (label)
        ck_assert_msg(applied == CLNET__GEMM_APPLIED(1, 2),
                      "%s: applied %d, expected the tuned set (%d): CLBlast refused a name?", label,
                      applied, CLNET__GEMM_APPLIED(1, 2));
    else
        ck_assert_int_eq(applied, 0);
    fprintf(stderr, "gemm: %s: CLBlast parameters: %s\n", clnet_context_device(ctx)->name,
            label ? label : "CLBlast's own (no table entry)");
    clnet_context_destroy(ctx);
}
END_TEST

/* A direct-kernel set that CLBlast accepts but cannot launch: work-groups of
 * 128x128, more than the device allows. It marks which kernel a GEMM used:
 * while it is in place, a GEMM on the direct kernel fails and one on the
 * indirect kernel runs. (CLBlast prints one line about it on stderr.) */
static void break_direct_kernel(clnet_context *ctx)
{
    const char *names[] = { "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                            "PADA", "PADB",   "VWMD",   "VWND",   "WGD" };
    size_t values[] = { 2, 128, 128, 128, 128, 1, 1, 1, 1, 128 };
    CLBlastStatusCode s = CLBlastOverrideParameters(clnet_context_cl_device(ctx), "XgemmDirect",
                                                    CLBlastPrecisionSingle, 10, names, values);
    ck_assert_int_eq(s, CLBlastSuccess);
}

/* Runs a GEMM of ones; *launches: the kernels clnet launched for it (CLBlast's
 * are not counted: 0; clnet's gemm_tile: 1; the packed kernel: 2 per k block). */
static clnet_status try_gemm_count(clnet_context *ctx, int64_t m, int64_t n, int64_t k,
                                   uint64_t *launches)
{
    int64_t sa[2] = { m, k }, sb[2] = { k, n }, sc[2] = { m, n };
    clnet_tensor *a, *b, *c;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, sa, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, sb, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, sc, &c));
    CK_OK(ctx, clnet_tensor_fill(a, 0.5));
    CK_OK(ctx, clnet_tensor_fill(b, 0.25));
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    clnet_status st = clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, a, b, 0.0f, c);
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    *launches = after.kernel_launches - before.kernel_launches;
    if (st == CLNET_OK)
        CK_OK(ctx, clnet_context_finish(ctx));
    clnet_tensor_destroy(a);
    clnet_tensor_destroy(b);
    clnet_tensor_destroy(c);
    return st;
}

static clnet_status try_gemm(clnet_context *ctx, int64_t m, int64_t n, int64_t k)
{
    uint64_t launches;
    return try_gemm_count(ctx, m, n, k, &launches);
}

/* The kernel a GEMM ran on, from its launches (try_gemm_count). */
static const char *kernel_name(uint64_t launches)
{
    return launches == 0 ? "CLBlast" : launches == 1 ? "gemm_tile" : "packed";
}

/* Unforced, a CPU device runs 31x33x7 on gemm_tile and 1024x1024x256 (2^28
 * multiply-adds, one k block) on the packed kernel; CLBlast is never given
 * parameters (applied stays 0). CLNET_GEMM_KERNEL=clblast, own or packed
 * replaces that choice; a bogus value fails context creation, naming the
 * variable (it used to be ignored). Other devices run CLBlast. */
START_TEST(gemm_own_kernel_default_by_device_and_size)
{
    int64_t big = 1024, mid = 256;
    for (int round = 0; round < 4; round++) {
        const char *env[] = { NULL, "clblast", "own", "packed" };
        if (env[round])
            setenv("CLNET_GEMM_KERNEL", env[round], 1);
        else
            unsetenv("CLNET_GEMM_KERNEL");
        clnet_context *ctx = test_context();
        int cpu = clnet_context_device(ctx)->type == CLNET_DEVICE_CPU;
        int forced = round >= 1 && round <= 3;
        uint64_t got;
        /* what each round should run: 0 CLBlast, 1 gemm_tile, 2 packed */
        uint64_t want_small = forced ? (uint64_t)round - 1 : cpu ? 1 : 0;
        uint64_t want_big = forced ? (uint64_t)round - 1 : cpu ? 2 : 0;
        CK_OK(ctx, try_gemm_count(ctx, 31, 33, 7, &got));
        ck_assert_msg(got == want_small, "round %d: 31x33x7 on %s, want %s", round,
                      kernel_name(got), kernel_name(want_small));
        if (want_small)
            ck_assert_int_eq(clnet__gemm_params_applied(ctx), 0);
        if (round != 1) { /* CLBlast at 1024^2 x 256 costs seconds */
            CK_OK(ctx, try_gemm_count(ctx, big, big, mid, &got));
            ck_assert_msg(got == want_big, "round %d: 1024x1024x256 on %s, want %s", round,
                          kernel_name(got), kernel_name(want_big));
        }
        clnet_context_destroy(ctx);
    }
    setenv("CLNET_GEMM_KERNEL", "bogus", 1);
    char err[1024];
    clnet_context *bad = NULL;
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    ck_assert_int_eq(clnet_context_create(&p, &bad, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_msg(strstr(err, "CLNET_GEMM_KERNEL") != NULL, "%s", err);
    unsetenv("CLNET_GEMM_KERNEL");
}
END_TEST

/* The CPU dispatch rule (clnet__gemm_cpu_kernel, docs/gemm.md) at the
 * shapes it was measured on: packed from 2^27 multiply-adds with n >= 256,
 * and for single A B^T products with k <= 128 or k % 16 != 0, or A^T B^T;
 * gemm_tile for the rest. */
START_TEST(gemm_cpu_dispatch_rule)
{
    static const struct {
        int ta, tb;
        size_t m, n, k, batch;
        int packed;
    } rule[] = {
        { 0, 0, 512, 512, 512, 1, 1 },    { 0, 0, 2048, 2048, 2048, 1, 1 },
        { 1, 1, 1024, 1024, 1024, 1, 1 }, { 0, 0, 384, 384, 384, 1, 0 },
        { 0, 0, 4096, 32, 2048, 1, 0 },   { 0, 0, 32, 64, 16384, 1, 0 },
        { 0, 0, 32, 4096, 2048, 1, 1 },   { 0, 0, 1024, 1024, 1024, 8, 1 },
        { 0, 0, 1024, 128, 1024, 1, 0 },  { 0, 0, 128, 1024, 1024, 1, 1 },
        { 0, 1, 896, 256, 28, 1, 1 },     { 0, 1, 32, 256, 64, 1, 1 },
        { 0, 1, 64, 288, 121, 1, 1 },     { 0, 1, 64, 64, 512, 1, 0 },
        { 0, 1, 32, 64, 1600, 1, 0 },     { 0, 1, 32, 10, 64, 1, 0 },
        { 0, 1, 16, 256, 64, 1, 0 },      { 0, 1, 32, 256, 28, 4, 0 },
        { 1, 1, 32, 1600, 64, 1, 1 },     { 1, 0, 288, 121, 64, 1, 0 },
        { 0, 0, 64, 121, 288, 32, 0 },    { 0, 0, 32, 676, 9, 1, 0 },
    };
    for (size_t i = 0; i < sizeof rule / sizeof rule[0]; i++) {
        clnet__gemm_desc d = { .trans_a = rule[i].ta,
                               .trans_b = rule[i].tb,
                               .m = rule[i].m,
                               .n = rule[i].n,
                               .k = rule[i].k,
                               .batch = rule[i].batch };
        int got = clnet__gemm_cpu_kernel(&d);
        ck_assert_msg(got == (rule[i].packed ? CLNET_V_GEMM_PACKED : CLNET_V_GEMM_OWN),
                      "%s%s %zux%zux%zu batch %zu: kernel %d", rule[i].ta ? "T" : "N",
                      rule[i].tb ? "T" : "N", rule[i].m, rule[i].n, rule[i].k, rule[i].batch, got);
    }
}
END_TEST

/* The packed kernel's scratch is its own: a GEMM whose A, B and C are views
 * of the context's workspace (as convolution and the RNNs pass them) is
 * right, and leaves the workspace's other contents alone. The scratch is
 * created on the first packed GEMM, grows for a larger one, is counted in
 * the context's device bytes, and no later GEMM of a size seen creates a
 * buffer. */
START_TEST(gemm_packed_scratch_is_its_own)
{
    clnet_context *ctx = test_context();
    set_packed(ctx, 0);
    enum {
        M = 40,
        N = 50,
        K = 300,
        OA = 7,
        OB = OA + M * K + 3,
        OC = OB + K * N + 5,
        TOTAL = OC + M * N + 9
    };
    float *all = malloc(TOTAL * sizeof *all), *now = malloc(TOTAL * sizeof *now);
    double *da = malloc(M * K * sizeof *da), *db = malloc(K * N * sizeof *db),
           *ref = malloc(M * N * sizeof *ref);
    ck_assert(all && now && da && db && ref);
    uint64_t seed = 5;
    fill_values(all, TOTAL, 1, &seed);
    for (int i = 0; i < M * K; i++)
        da[i] = all[OA + i];
    for (int i = 0; i < K * N; i++)
        db[i] = all[OB + i];
    cl_mem ws;
    CK_OK(ctx, clnet__workspace(ctx, TOTAL * sizeof(float), &ws));
    CK_OK(ctx, clnet__buffer_write(ctx, ws, 0, TOTAL * sizeof(float), all));
    clnet_context_stats s0, s1, s2;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s0));
    clnet__gemm_desc d = { .m = M,
                           .n = N,
                           .k = K,
                           .alpha = 1,
                           .beta = 0,
                           .a = ws,
                           .a_off = OA,
                           .lda = K,
                           .b = ws,
                           .b_off = OB,
                           .ldb = N,
                           .c = ws,
                           .c_off = OC,
                           .ldc = N };
    for (int round = 0; round < 3; round++) {
        CK_OK(ctx, clnet__gemm(ctx, &d, "gemm test"));
        CK_OK(ctx, clnet_context_get_stats(ctx, round ? &s2 : &s1));
    }
    ck_assert_uint_eq(s1.buffers_created, s0.buffers_created + 1);
    ck_assert_uint_gt(s1.bytes_live, s0.bytes_live);
    ck_assert_uint_eq(s2.buffers_created, s1.buffers_created);
    ck_assert_uint_eq(s2.bytes_live, s1.bytes_live);
    CK_OK(ctx, clnet__buffer_read(ctx, ws, 0, TOTAL * sizeof(float), now));
    ck_assert(memcmp(now, all, OC * sizeof *now) == 0);
    ck_assert(memcmp(now + OC + M * N, all + OC + M * N, 9 * sizeof *now) == 0);
    ref_gemm r = { .m = M, .n = N, .k = K, .lda = K, .ldb = N, .ldc = N, .alpha = 1 };
    ref_gemm_forward(&r, da, db, ref);
    ck_assert(compare_f32("packed, views of the workspace", now + OC, ref, M * N, tol_exact) == 0);
    /* A larger GEMM grows the scratch once; the smaller one then reuses it. */
    CK_OK(ctx, try_gemm(ctx, 300, 200, 100));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s1));
    CK_OK(ctx, clnet__gemm(ctx, &d, "gemm test"));
    CK_OK(ctx, try_gemm(ctx, 300, 200, 100));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s2));
    ck_assert_uint_eq(s2.buffers_created, s1.buffers_created + 3); /* try_gemm's a, b, c */
    free(all), free(now), free(da), free(db), free(ref);
    clnet_context_destroy(ctx);
}
END_TEST

/* Where the packed kernel's scratch cannot be created (a device whose
 * allocations are capped at 1.5 MB, below the 2 MB that 512^3 needs; its
 * operands, 1 MB each, fit), the default choice falls back to gemm_tile
 * (one launch) with the right result; the packed kernel forced fails,
 * naming the limit. */
START_TEST(gemm_packed_falls_back_without_scratch)
{
    clnet__device_caps caps = { .max_alloc_bytes = 3u << 19 };
    clnet__fault_device_caps(&caps);
    clnet_context *ctx = test_context();
    clnet__fault_device_caps(NULL);
    enum { S = 512 };
    int64_t shape[2] = { S, S };
    clnet_tensor *a, *b, *c;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &c));
    CK_OK(ctx, clnet_tensor_fill(a, 0.5));
    CK_OK(ctx, clnet_tensor_fill(b, 0.25));
    CK_OK(ctx, clnet_tensor_fill(c, NAN));
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    CK_OK(ctx, clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, a, b, 0.0f, c));
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.kernel_launches - before.kernel_launches, 1);
    float *got = malloc(S * S * sizeof *got);
    ck_assert_ptr_nonnull(got);
    download(ctx, c, got, S * S);
    for (int i = 0; i < S * S; i++)
        ck_assert_msg(got[i] == 64.0f, "fallback: c[%d] = %g, want 64", i, (double)got[i]);
    set_packed(ctx, 0);
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "maximum allocation",
             clnet_gemm(CLNET_NO_TRANS, CLNET_NO_TRANS, 1.0f, a, b, 0.0f, c));
    free(got);
    clnet_tensor_destroy(a);
    clnet_tensor_destroy(b);
    clnet_tensor_destroy(c);
    clnet_context_destroy(ctx);
}
END_TEST

/* One real-mode GEMM of a and b onto c0 (beta -2) on the variants set now. */
static void run_on(clnet_context *ctx, int ta, int tb, const int64_t sa[2], const float *a,
                   const int64_t sb[2], const float *b, const int64_t sc[2], const float *c0,
                   float *out)
{
    clnet_tensor *xa = tensor_from(ctx, 2, sa, a), *xb = tensor_from(ctx, 2, sb, b);
    clnet_tensor *xc = tensor_from(ctx, 2, sc, c0);
    CK_OK(ctx, clnet_gemm(ta ? CLNET_TRANS : CLNET_NO_TRANS, tb ? CLNET_TRANS : CLNET_NO_TRANS,
                          -0.5f, xa, xb, -2.0f, xc));
    download(ctx, xc, out, (size_t)(sc[0] * sc[1]));
    clnet_tensor_destroy(xa);
    clnet_tensor_destroy(xb);
    clnet_tensor_destroy(xc);
}

/* The packed kernel sums each element's products in the order gemm_tile
 * does (p = 0..k-1 from 0, the same multiply-add), whatever its k blocks:
 * in real mode the two agree bit for bit (gemm_tile_nt, A B^T, sums in
 * another order and is left out). */
START_TEST(gemm_packed_matches_gemm_tile_bitwise)
{
    clnet_context *ctx = test_context();
    static const int64_t shapes[][3] = { { 33, 65, 63 }, { 64, 31, 300 }, { 9, 130, 517 } };
    static const int trans[][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 3; t++) {
            int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            int ta = trans[t][0], tb = trans[t][1];
            int64_t sa[2] = { ta ? k : m, ta ? m : k }, sb[2] = { tb ? n : k, tb ? k : n };
            int64_t sc[2] = { m, n };
            float *a = malloc((size_t)(m * k) * sizeof *a),
                  *b = malloc((size_t)(k * n) * sizeof *b);
            float *c0 = malloc((size_t)(m * n) * sizeof *c0), *out[3];
            for (int v = 0; v < 3; v++)
                out[v] = malloc((size_t)(m * n) * sizeof *out[v]);
            ck_assert(a && b && c0 && out[0] && out[1] && out[2]);
            uint64_t seed = 700u + 3u * s + (uint64_t)t;
            fill_values(a, (size_t)(m * k), 0, &seed);
            fill_values(b, (size_t)(k * n), 0, &seed);
            fill_values(c0, (size_t)(m * n), 0, &seed);
            for (int v = 0; v < 3; v++) {
                if (v == 0)
                    set_variants(ctx, 1, CLNET_V_GEMM_OWN);
                else
                    set_packed(ctx, v == 1 ? 0 : 12);
                run_on(ctx, ta, tb, sa, a, sb, b, sc, c0, out[v]);
            }
            for (int v = 1; v < 3; v++)
                ck_assert_msg(memcmp(out[0], out[v], (size_t)(m * n) * sizeof(float)) == 0,
                              "%c%c %lldx%lldx%lld: packed (k blocks of %s) differs from "
                              "gemm_tile",
                              ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n,
                              (long long)k, v == 1 ? "<= 256" : "12");
            free(a), free(b), free(c0), free(out[0]), free(out[1]), free(out[2]);
        }
    clnet_context_destroy(ctx);
}
END_TEST

/* The packed kernel past the shapes test's sizes: several groups of row
 * panels (m > 128), k in 2-3 blocks of its own length with padded tails,
 * every transpose, exact and real mode (_i). */
START_TEST(gemm_packed_blocks_and_groups)
{
    clnet_context *ctx = test_context();
    set_packed(ctx, 0);
    static const int64_t shapes[][3] = { { 200, 300, 520 }, { 129, 47, 257 }, { 33, 600, 300 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            size_t ab = (s + (size_t)t) % NAB;
            gcase g = { .ta = t & 1,
                        .tb = t >> 1,
                        .m = shapes[s][0],
                        .n = shapes[s][1],
                        .k = shapes[s][2],
                        .alpha = alphas[ab],
                        .beta = betas[ab],
                        .exact = !_i,
                        .seed = 900u + 10u * s + (uint64_t)t };
            check_case(ctx, &g, "packed");
        }
    clnet_context_destroy(ctx);
}
END_TEST

/* The broken direct kernel's launch fails: CL_INVALID_WORK_GROUP_SIZE. */
#define CK_DIRECT_FAILS(ctx, m, n, k)                                                              \
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "CLBlastSgemm failed", try_gemm(ctx, m, n, k))

/* XGEMM_MIN_INDIRECT_SIZE of the device's tuned (1) or default (0) set. */
static int64_t min_indirect(clnet_context *ctx, int tuned)
{
    const char *label = clnet__gemm_params_label(ctx);
    for (size_t i = 0; i < sizeof clnet__gemm_param_table / sizeof clnet__gemm_param_table[0]; i++)
        for (size_t k = 0; label && k < clnet__gemm_param_table[i].nkernels; k++) {
            const clnet__gemm_kernel_params *p = &clnet__gemm_param_table[i].kernels[k];
            if (!strcmp(clnet__gemm_param_table[i].label, label) &&
                !strcmp(p->kernel, "GemmRoutine"))
                return (int64_t)(tuned ? p->tuned[0] : p->defaults[0]);
        }
    ck_abort_msg("no GemmRoutine entry for %s", label ? label : "this device");
    return 0;
}

/* CLBlast keeps overrides per device for the whole process, whoever sets
 * them: another user's override reaches clnet's GEMMs, and CLBlastClearCache
 * does not undo it (it drops compiled programs only). clnet undoes it by
 * giving CLBlast a whole set again when its variants change, and "gemm.kernel"
 * and the set's XGEMM_MIN_INDIRECT_SIZE pick the kernel they say. */
START_TEST(gemm_params_override_is_per_device_and_restored)
{
    clnet_context *ctx = test_context();
    if (!clnet__gemm_params_label(ctx) || clnet_context_device(ctx)->max_work_group_size >= 16384) {
        fprintf(stderr, "gemm: skipped: no table entry, or 128x128 work-groups fit\n");
        clnet_context_destroy(ctx);
        return;
    }
    set_variants(ctx, 1, 2);
    CK_OK(ctx, try_gemm(ctx, 7, 9, 5));
    break_direct_kernel(ctx);
    CK_DIRECT_FAILS(ctx, 7, 9, 5);
    CLBlastClearCache();
    CK_DIRECT_FAILS(ctx, 7, 9, 5);
    /* Asking for another set gives CLBlast every table value again. */
    set_variants(ctx, 0, 2);
    CK_OK(ctx, try_gemm(ctx, 7, 9, 5));
    ck_assert_int_eq(clnet__gemm_params_applied(ctx), CLNET__GEMM_APPLIED(0, 2));
    /* Forced indirect: a small GEMM runs though the direct kernel is broken. */
    set_variants(ctx, 1, 1);
    CK_OK(ctx, try_gemm(ctx, 7, 9, 5));
    break_direct_kernel(ctx);
    CK_OK(ctx, try_gemm(ctx, 7, 9, 5));
    /* By size: each set's threshold T sends m n k >= T^3 to the indirect
     * kernel, the tuned one and CLBlast's own (restored with its set). */
    for (int tuned = 1; tuned >= 0; tuned--) {
        set_variants(ctx, tuned, 2);
        CK_OK(ctx, try_gemm(ctx, 7, 9, 5));
        break_direct_kernel(ctx);
        int64_t t = min_indirect(ctx, tuned);
        CK_DIRECT_FAILS(ctx, t, t, t - 1);
        CK_OK(ctx, try_gemm(ctx, t, t, t));
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Bad arguments --------------------------------------------------------------- */

START_TEST(gemm_bad_arguments_name_the_argument)
{
    clnet_context *ctx = test_context(), *other = test_context();
    const int64_t s34[2] = { 3, 4 }, s45[2] = { 4, 5 }, s35[2] = { 3, 5 }, s36[2] = { 3, 6 },
                  s55[2] = { 5, 5 }, s234[3] = { 2, 3, 4 }, s345[3] = { 3, 4, 5 },
                  s335[3] = { 3, 3, 5 }, s20x4[2] = { 20, 4 };
    clnet_tensor *a, *b, *c, *wrong_c, *b55, *a3d, *b3d, *c3d, *ints, *foreign, *big, *lo, *hi;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s34, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s45, &b));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s35, &c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s36, &wrong_c));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s55, &b55));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, s234, &a3d));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, s345, &b3d));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, s335, &c3d));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 2, s45, &ints));
    CK_OK(other, clnet_tensor_create(other, CLNET_F32, 2, s45, &foreign));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s20x4, &big));
    CK_OK(ctx, clnet_tensor_fill(c, sentinel()));
    const clnet_trans N = CLNET_NO_TRANS, T = CLNET_TRANS;

    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "a: must not be NULL", clnet_gemm(N, N, 1, NULL, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "b: must not be NULL", clnet_gemm(N, N, 1, a, NULL, 0, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "c: must not be NULL", clnet_gemm(N, N, 1, a, b, 0, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "c: must not be NULL",
             clnet_gemm_batched(N, N, 1, a3d, b3d, 0, NULL));
    ck_assert_int_eq(clnet_gemm(N, N, 1, NULL, NULL, 0, NULL), CLNET_ERR_INVALID_ARG);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "trans_a", clnet_gemm((clnet_trans)7, N, 1, a, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "trans_b", clnet_gemm(N, (clnet_trans)-1, 1, a, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "a: shape (2, 3, 4) but expected 2 dimensions",
             clnet_gemm(N, N, 1, a3d, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "c: shape (3, 5) but expected 3 dimensions",
             clnet_gemm_batched(N, N, 1, a3d, b3d, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: dtype int32 but expected float32",
             clnet_gemm(N, N, 1, a, ints, 0, c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "b: belongs to another context",
             clnet_gemm(N, N, 1, a, foreign, 0, c));
    /* op(a) is 3x4: op(b) must have 4 rows; b^T (5x4) has 5. */
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "b: op(b) is 5x4, op(a) 3x4: op(b) needs 4 rows",
             clnet_gemm(N, T, 1, a, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "op(b) is 5x5, op(a) 3x4", clnet_gemm(N, N, 1, a, b55, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "op(b) is 4x5, op(a) 4x3", clnet_gemm(T, N, 1, a, b, 0, c));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "c: shape (3, 6) but expected (3, 5)",
             clnet_gemm(N, N, 1, a, b, 0, wrong_c));
    /* Batched: a has batch 2, c 3 (1 would be shared). */
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "a: batch 2, c has 3",
             clnet_gemm_batched(N, N, 1, a3d, b3d, 0, c3d));
    /* c overlapping a or b in one buffer: rows 0-3 and 2-5 of `big`. */
    CK_OK(ctx, clnet_tensor_slice(big, 0, 4, &lo));
    CK_OK(ctx, clnet_tensor_slice(big, 2, 4, &hi));
    clnet_tensor *sq;
    const int64_t s44[2] = { 4, 4 };
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, s44, &sq));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "c: overlaps a", clnet_gemm(N, N, 1, lo, sq, 0, hi));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "c: overlaps b", clnet_gemm(N, N, 1, sq, lo, 0, hi));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "c: overlaps a", clnet_gemm(N, N, 1, sq, sq, 0, sq));
    /* Nothing was queued: c still holds its sentinel; and the context works. */
    float got[15];
    download(ctx, c, got, 15);
    for (int i = 0; i < 15; i++)
        ck_assert(is_sentinel(got[i]));
    CK_OK(ctx, clnet_tensor_fill(a, 1.0));
    CK_OK(ctx, clnet_tensor_fill(b, 2.0));
    CK_OK(ctx, clnet_gemm(N, N, 1, a, b, 0, c));
    download(ctx, c, got, 15);
    for (int i = 0; i < 15; i++)
        ck_assert(got[i] == 8.0f);
    clnet_tensor *all[] = { a, b, c, wrong_c, b55, a3d, b3d, c3d, ints, big, lo, hi, sq };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
    clnet_tensor_destroy(foreign);
    clnet_context_destroy(other);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The real-mode comparator fails when it should ------------------------------ */

START_TEST(gemm_bound_check_negative_controls)
{
    enum { K = 100, NE = 4 };
    const double ref[NE] = { 1.5, -2.0, 0.25, 3.0 }, absab[NE] = { 10, 10, 10, 10 };
    const float c0[NE] = { 1, -1, 2, 0 };
    float got[NE];
    const float alpha = 0.5f, beta = 2.0f;
    for (int i = 0; i < NE; i++)
        got[i] = (float)ref[i];
    ck_assert_int_eq(check_bound("control", got, ref, absab, c0, alpha, beta, K, NE), 0);
    /* One element off by twice its bound. */
    double bound = REAL_BOUND_FACTOR * (K + 2) * 0x1.0p-24 * (0.5 * 10 + 2.0 * 1);
    got[0] = (float)(ref[0] + 2 * bound);
    ck_assert_int_eq(
        check_bound("control: off by 2x bound", got, ref, absab, c0, alpha, beta, K, NE), 1);
    got[0] = (float)ref[0];
    got[1] = NAN;
    ck_assert_int_eq(check_bound("control: NaN", got, ref, absab, c0, alpha, beta, K, NE), 1);
    got[1] = INFINITY;
    ck_assert_int_eq(check_bound("control: Inf", got, ref, absab, c0, alpha, beta, K, NE), 1);
    for (int i = 0; i < NE; i++)
        got[i] = 0;
    ck_assert_int_eq(check_bound("control: all zero", got, ref, absab, c0, alpha, beta, K, NE), NE);
    /* A reference that is not finite fails, whatever the device says. */
    const double broken[NE] = { NAN, 1, 1, 1 };
    float ones[NE] = { NAN, 1, 1, 1 };
    ck_assert_int_eq(check_bound("control: NaN reference", ones, broken, absab, NULL, 1, 0, K, NE),
                     1);
}
END_TEST

Suite *suite_gemm(void)
{
    Suite *s = suite_create("gemm");
    /* Timeouts cover cold compiles: CLBlast builds a program for each set of
     * parameters, ~10 s each on pocl before its disk cache holds it. */
    TCase *tc = tcase_create("shapes");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, gemm_all_transposes_and_sizes, 0, NLOOP);
    suite_add_tcase(s, tc);

    tc = tcase_create("models");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, gemm_reference_model_shapes, 0, 8);
    tcase_add_loop_test(tc, gemm_packed_blocks_and_groups, 0, 2);
    tcase_add_test(tc, gemm_packed_matches_gemm_tile_bitwise);
    suite_add_tcase(s, tc);

    tc = tcase_create("batched");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, gemm_batched_with_broadcast, 0, NLOOP);
    suite_add_tcase(s, tc);

    tc = tcase_create("semantics");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, gemm_beta_zero_ignores_c_and_beta_one_accumulates, 0, 7);
    tcase_add_loop_test(tc, gemm_nan_inf_policy, 0, NLOOP);
    tcase_add_test(tc, gemm_k_zero_scales_c);
    tcase_add_test(tc, gemm_views_of_one_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("params");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, gemm_params_tuned_set_is_the_default);
    tcase_add_test(tc, gemm_params_override_is_per_device_and_restored);
    tcase_add_test(tc, gemm_own_kernel_default_by_device_and_size);
    tcase_add_test(tc, gemm_cpu_dispatch_rule);
    tcase_add_test(tc, gemm_packed_scratch_is_its_own);
    tcase_add_test(tc, gemm_packed_falls_back_without_scratch);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gemm_bad_arguments_name_the_argument);
    tcase_add_test(tc, gemm_bound_check_negative_controls);
    suite_add_tcase(s, tc);
    return s;
}
