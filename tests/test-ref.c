/* clnet tests: the float64 reference itself. Hand-computed cases for the
 * forwards and optimizers, and every reference backward against central
 * finite differences of its forward (docs/testing.md, finite differences). */
#include "harness.h"
#include "ref.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- finite-difference harness ----------------------------------------- */

/* Step and pass criteria: every element within FD_ATOL + FD_RTOL |fd|, and
 * the whole vector within ||fd - an|| / ||an|| < FD_VEC_RTOL. In float64 the
 * central difference of these tiny smooth (or piecewise linear, away from
 * kinks) functions is accurate to ~1e-9, so 1e-6 has margin both ways. */
#define FD_EPS 1e-6
#define FD_ATOL 1e-5
#define FD_RTOL 1e-3
#define FD_VEC_RTOL 1e-6

/* A forward under test: reads its inputs through ctx, writes y. */
typedef void (*fwd_fn)(const void *ctx, double *y);

/* g[i] = dL/dx[i] for L = <dy, f(ctx)> by central differences, where x is
 * one of the arrays ctx points to (perturbed in place and restored). The
 * step actually taken, xp - xm, is the denominator, not 2 * FD_EPS. */
static void fd_grad(fwd_fn f, const void *ctx, double *x, size_t nx,
                    size_t ny, const double *dy, double *g)
{
    double *y = host_f64(ny);
    for (size_t i = 0; i < nx; i++) {
        double x0 = x[i], xp = x0 + FD_EPS, xm = x0 - FD_EPS;
        x[i] = xp;
        f(ctx, y);
        double lp = ref_reduce_dot(ny, dy, y);
        x[i] = xm;
        f(ctx, y);
        double lm = ref_reduce_dot(ny, dy, y);
        x[i] = x0;
        g[i] = (lp - lm) / (xp - xm);
    }
    free(y);
}

/* 1 when the analytic gradient an matches fd (criteria above); prints the
 * case and the first mismatches otherwise. Both all-zero fails: such a case
 * proves nothing. A NaN anywhere fails (comparisons with NaN are false). */
static int grad_matches(const char *what, size_t n, const double *fd,
                        const double *an)
{
    double diff2 = 0.0, an2 = 0.0, fd2 = 0.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fd[i] - an[i];
        diff2 += d * d;
        an2 += an[i] * an[i];
        fd2 += fd[i] * fd[i];
        if (!(fabs(d) <= FD_ATOL + FD_RTOL * fabs(fd[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s: [%zu] fd %.17g analytic %.17g\n", what,
                        i, fd[i], an[i]);
            bad++;
        }
    }
    double rel = sqrt(diff2) / sqrt(an2);
    int ok = bad == 0 && rel < FD_VEC_RTOL && (an2 > 0.0 || fd2 > 0.0);
    if (!ok)
        fprintf(stderr, "%s: %d of %zu elements off, ||fd-an||/||an|| = %.3g,"
                " ||an|| = %.3g\n", what, bad, n, rel, sqrt(an2));
    return ok;
}

/* Fails the test unless an = d<dy, f>/dx (see fd_grad). */
static void check_grad(const char *what, fwd_fn f, const void *ctx, double *x,
                       size_t nx, size_t ny, const double *dy,
                       const double *an)
{
    double *fd = host_f64(nx);
    fd_grad(f, ctx, x, nx, ny, dy, fd);
    int ok = grad_matches(what, nx, fd, an);
    free(fd);
    ck_assert_msg(ok, "%s: analytic gradient disagrees with finite "
                  "differences (see stderr)", what);
}

/* Elementwise |got - want| <= tol; tol 0 demands equality. */
static void expect_near(const char *what, size_t n, const double *got,
                        const double *want, double tol)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol,
                      "%s: [%zu] got %.17g want %.17g", what, i, got[i],
                      want[i]);
}

/* Values +-[0.1, 1): at least 0.1 away from relu's kink. */
static void fill_away_from_zero(double *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        double m = 0.1 + 0.9 * ref_rng_uniform(s);
        x[i] = ref_rng_next(s) & 1 ? m : -m;
    }
}

/* Distinct values 0.01 apart in random order: no max-pool ties, not even
 * after a finite-difference step. */
static void fill_distinct(double *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.01 * ((double)i - (double)n / 2.0);
    for (size_t i = n; i > 1; i--) {  /* Fisher-Yates */
        size_t j = (size_t)(ref_rng_next(s) % i);
        double t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

/* ---- random numbers ---------------------------------------------------- */

START_TEST(test_splitmix64_known_values)
{
    uint64_t s = 0;  /* Vigna's splitmix64.c, seed 0 */
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0xe220a8397b1dcdaf));
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0x6e789e6aa1b965f4));
    ck_assert_uint_eq(ref_rng_next(&s), UINT64_C(0x06c45d188009454f));
}
END_TEST

START_TEST(test_fill_ranges_and_determinism)
{
    double x[500], y[500];
    uint64_t s = 7, t = 7;
    int seen_lo = 0, seen_hi = 0;
    ref_fill_int(x, 500, -8, 8, &s);
    ref_fill_int(y, 500, -8, 8, &t);
    for (int i = 0; i < 500; i++) {
        ck_assert(x[i] == y[i] && x[i] == floor(x[i]));
        ck_assert(x[i] >= -8 && x[i] <= 8);
        seen_lo |= x[i] == -8;
        seen_hi |= x[i] == 8;
    }
    ck_assert(seen_lo && seen_hi);
    ref_fill_uniform(x, 500, -1.0, 1.0, &s);
    for (int i = 0; i < 500; i++)
        ck_assert(x[i] >= -1.0 && x[i] < 1.0);
}
END_TEST

START_TEST(test_philox4x32_10_kat)
{
    /* Random123/tests/kat_vectors, the three "philox4x32 10" lines. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822,
         0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        ref_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(out[i] == kat[v][6 + i], "vector %d word %d: %08x",
                          v, i, (unsigned)out[i]);
    }
}
END_TEST

/* ---- elementwise and reductions ---------------------------------------- */

START_TEST(test_eltwise_hand)
{
    double a[3] = {1, -2, 0.5}, b[3] = {4, 3, -2}, y[3];
    ref_eltwise_add(3, a, b, y);
    expect_near("add", 3, y, (const double[]){5, 1, -1.5}, 0);
    ref_eltwise_mul(3, a, b, y);
    expect_near("mul", 3, y, (const double[]){4, -6, -1}, 0);
    ref_eltwise_scale(3, -2.0, a, y);
    expect_near("scale", 3, y, (const double[]){-2, 4, -1}, 0);
    ref_eltwise_axpy(3, 0.5, b, y);
    expect_near("axpy", 3, y, (const double[]){0, 5.5, -2}, 0);
}
END_TEST

START_TEST(test_reduce_sum_is_compensated)
{
    double x[10], big[3] = {1e16, 1.0, -1e16};
    for (int i = 0; i < 10; i++)
        x[i] = 0.1;
    /* Naive left-to-right gives 0.9999999999999999 and 0. */
    ck_assert(ref_reduce_sum(10, x) == 1.0);
    ck_assert(ref_reduce_sum(3, big) == 1.0);
    ck_assert(ref_reduce_dot(3, big, (const double[]){1, 3, 1}) == 3.0);
    ck_assert(ref_reduce_sum(0, x) == 0.0);
}
END_TEST

typedef struct mul_ctx {
    size_t n;
    double *a, *b;
} mul_ctx;

static void mul_fwd(const void *v, double *y)
{
    const mul_ctx *c = v;
    ref_eltwise_mul(c->n, c->a, c->b, y);
}

START_TEST(test_eltwise_mul_grad)
{
    uint64_t s = 11;
    enum { N = 13 };
    double a[N], b[N], dy[N], da[N], db[N];
    ref_fill_uniform(a, N, -1, 1, &s);
    ref_fill_uniform(b, N, -1, 1, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_eltwise_mul_backward(N, a, b, dy, da, db);
    mul_ctx c = {N, a, b};
    check_grad("mul da seed 11", mul_fwd, &c, a, N, N, dy, da);
    check_grad("mul db seed 11", mul_fwd, &c, b, N, N, dy, db);
}
END_TEST

/* ---- GEMM -------------------------------------------------------------- */

START_TEST(test_gemm_hand)
{
    const double N = NAN, S = -777;  /* unread padding; unwritten sentinel */
    /* A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], AB = [58 64; 139 154] */
    double a[8] = {1, 2, 3, N, 4, 5, 6, N}, at[6] = {1, 4, 2, 5, 3, 6};
    double b[9] = {7, 8, N, 9, 10, N, 11, 12, N}, bt[6] = {7, 9, 11, 8, 10, 12};
    double c[6] = {1, 1, S, 1, 1, S};
    ref_gemm g = {.m = 2, .n = 2, .k = 3, .lda = 4, .ldb = 3, .ldc = 3,
                  .alpha = 2, .beta = 0.5};
    ref_gemm_forward(&g, a, b, c);
    expect_near("gemm alpha beta ld", 6, c,
                (const double[]){116.5, 128.5, S, 278.5, 308.5, S}, 0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double cc[4] = {N, N, N, N};  /* beta 0: NaN must not leak */
            ref_gemm h = {.trans_a = ta, .trans_b = tb, .m = 2, .n = 2,
                          .k = 3, .lda = ta ? 2 : 4, .ldb = 3,
                          .ldc = 2, .alpha = 1, .beta = 0};
            ref_gemm_forward(&h, ta ? at : a, tb ? bt : b, cc);
            expect_near("gemm trans", 4, cc, (const double[]){58, 64, 139, 154},
                        0);
        }
}
END_TEST

START_TEST(test_gemm_strided_batched_hand)
{
    const double S = -777;
    double a[16] = {1, 2, 3, 0, 4, 5, 6, 0, 2, 4, 6, 0, 8, 10, 12, 0};
    double b[6] = {7, 8, 9, 10, 11, 12};
    double c[10] = {S, S, S, S, S, S, S, S, S, S};
    /* Item 1 has A doubled; B is shared through stride 0; C has a gap. */
    ref_gemm g = {.m = 2, .n = 2, .k = 3, .lda = 4, .ldb = 2, .ldc = 2,
                  .alpha = 1, .beta = 0, .batch = 2, .stride_a = 8,
                  .stride_b = 0, .stride_c = 5};
    ref_gemm_strided_batched_forward(&g, a, b, c);
    expect_near("gemm batched", 10, c,
                (const double[]){58, 64, 139, 154, S, 116, 128, 278, 308, S},
                0);
}
END_TEST

typedef struct gemm_ctx {
    ref_gemm g;
    double *a, *b, *c0;
    size_t nc;
} gemm_ctx;

static void gemm_fwd(const void *v, double *y)
{
    const gemm_ctx *c = v;
    memcpy(y, c->c0, c->nc * sizeof *y);
    if (c->g.batch > 0)
        ref_gemm_strided_batched_forward(&c->g, c->a, c->b, y);
    else
        ref_gemm_forward(&c->g, c->a, c->b, y);
}

/* FD check of dA and dB for g (batch 0: plain; else strided batched).
 * Storage sizes include leading-dimension padding, whose gradient is 0. */
static void gemm_grad_case(ref_gemm g, uint64_t seed)
{
    int items = g.batch > 0 ? g.batch : 1;
    size_t na = (size_t)(g.trans_a ? g.k : g.m) * (size_t)g.lda;
    size_t nb = (size_t)(g.trans_b ? g.n : g.k) * (size_t)g.ldb;
    size_t nc = (size_t)g.m * (size_t)g.ldc;
    if (g.batch > 0) {
        na = g.stride_a * (size_t)items;
        nb = g.stride_b * (size_t)items;
        nc = g.stride_c * (size_t)items;
    }
    double *a = host_f64(na), *b = host_f64(nb), *c0 = host_f64(nc);
    double *dc = host_f64(nc), *da = host_f64(na), *db = host_f64(nb);
    uint64_t s = seed;
    ref_fill_uniform(a, na, -1, 1, &s);
    ref_fill_uniform(b, nb, -1, 1, &s);
    ref_fill_uniform(c0, nc, -1, 1, &s);
    ref_fill_uniform(dc, nc, -1, 1, &s);
    if (g.batch > 0)
        ref_gemm_strided_batched_backward(&g, a, b, dc, da, db);
    else
        ref_gemm_backward(&g, a, b, dc, da, db);
    char what[160];
    gemm_ctx c = {g, a, b, c0, nc};
    snprintf(what, sizeof what, "gemm ta%d tb%d m%d n%d k%d batch%d seed %llu",
             g.trans_a, g.trans_b, g.m, g.n, g.k, g.batch,
             (unsigned long long)seed);
    check_grad(what, gemm_fwd, &c, a, na, nc, dc, da);
    check_grad(what, gemm_fwd, &c, b, nb, nc, dc, db);
    free(a), free(b), free(c0), free(dc), free(da), free(db);
}

START_TEST(test_gemm_backward_matches_fd)
{
    static const int shapes[][3] = {{1, 1, 1}, {3, 7, 1}, {2, 3, 5},
                                    {7, 3, 3}};
    for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
    for (int i = 0; i < 4; i++) {
        int m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
        ref_gemm g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k,
                      .lda = (ta ? m : k) + 2, .ldb = (tb ? k : n) + 1,
                      .ldc = n + 2, .alpha = 1.3, .beta = 0.7};
        gemm_grad_case(g, 100u + (uint64_t)(ta * 8 + tb * 4 + i));
    }
}
END_TEST

START_TEST(test_gemm_strided_batched_backward_matches_fd)
{
    ref_gemm g = {.trans_a = 1, .trans_b = 0, .m = 3, .n = 2, .k = 4,
                  .lda = 3, .ldb = 2, .ldc = 3, .alpha = -0.8, .beta = 1,
                  .batch = 2, .stride_a = 14, .stride_b = 9, .stride_c = 10};
    gemm_grad_case(g, 200);
}
END_TEST

/* ---- 2-D convolution --------------------------------------------------- */

static size_t conv_nx(const ref_conv2d *p)
{
    return (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
}

static size_t conv_nw(const ref_conv2d *p)
{
    return (size_t)p->k * (size_t)p->c * (size_t)p->r * (size_t)p->s;
}

static size_t conv_ny(const ref_conv2d *p)
{
    return (size_t)p->n * (size_t)p->k * (size_t)ref_conv2d_out_h(p) *
           (size_t)ref_conv2d_out_w(p);
}

static void conv_name(char *buf, size_t len, const char *dir,
                      const ref_conv2d *p, uint64_t seed)
{
    snprintf(buf, len, "conv2d %s n%dc%dh%dw%d k%dr%ds%d st%dx%d "
             "pad%d,%d,%d,%d dil%dx%d seed %llu", dir, p->n, p->c, p->h, p->w,
             p->k, p->r, p->s, p->stride_h, p->stride_w, p->pad_t, p->pad_b,
             p->pad_l, p->pad_r, p->dil_h, p->dil_w, (unsigned long long)seed);
}

/* Awkward tiny shapes: 1x1, batch 2, non-square kernels, stride 2,
 * asymmetric padding, dilation 2. */
static const ref_conv2d conv_shapes[] = {
    /* n c h w   k r s   sh sw pt pb pl pr  dh dw */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 3, 7, 7, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 2, 7, 5, 3, 3, 2, 2, 2, 1, 0, 0, 1, 1, 1},
    {2, 1, 7, 7, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
    {1, 3, 3, 7, 2, 1, 3, 2, 1, 0, 1, 1, 1, 1, 2},
};
#define N_CONV_SHAPES (sizeof conv_shapes / sizeof conv_shapes[0])

START_TEST(test_conv2d_forward_hand)
{
    double x16[16], x9[9], y[9];
    for (int i = 0; i < 16; i++)
        x16[i] = i + 1;
    for (int i = 0; i < 9; i++)
        x9[i] = i + 1;
    /* 4x4 input 1..16, 2x2 kernel [1 2; 3 4]: y(i,j) = 40i + 10j + 44. */
    ref_conv2d p = {1, 1, 4, 4, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1};
    ref_conv2d_forward(&p, x16, (const double[]){1, 2, 3, 4}, NULL, y);
    expect_near("conv plain", 9, y,
                (const double[]){44, 54, 64, 84, 94, 104, 124, 134, 144}, 0);
    /* 3x3 input 1..9, 2x2 ones, stride 2, pad 1: sums of corner blocks. */
    ref_conv2d q = {1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1};
    ref_conv2d_forward(&q, x9, (const double[]){1, 1, 1, 1}, NULL, y);
    expect_near("conv stride pad", 4, y, (const double[]){1, 5, 11, 28}, 0);
    /* Dilation 2: the 2x2 kernel touches the corners 1, 3, 7, 9. */
    ref_conv2d d = {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0, 0, 0, 2, 2};
    ref_conv2d_forward(&d, x9, (const double[]){1, 2, 3, 4}, NULL, y);
    expect_near("conv dilation", 1, y, (const double[]){64}, 0);
    /* 2 -> 2 channels, 1x1 kernels [1 10; -1 0], bias [0.5 2]. */
    double x2[8] = {1, 2, 3, 4, 1, 1, 1, 1}, y2[8];
    ref_conv2d m = {1, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    ref_conv2d_forward(&m, x2, (const double[]){1, 10, -1, 0},
                       (const double[]){0.5, 2}, y2);
    expect_near("conv channels bias", 8, y2,
                (const double[]){11.5, 12.5, 13.5, 14.5, 1, 0, -1, -2}, 0);
}
END_TEST

/* im2col of image n: cols (c*r*s, oh*ow), zeros for padding taps. */
static void im2col(const ref_conv2d *p, const double *x, int n, double *cols)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    size_t row = 0;
    for (int c = 0; c < p->c; c++)
    for (int u = 0; u < p->r; u++)
    for (int v = 0; v < p->s; v++, row++)
    for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
        int iy = i * p->stride_h - p->pad_t + u * p->dil_h;
        int ix = j * p->stride_w - p->pad_l + v * p->dil_w;
        int in = iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
        size_t e = (((size_t)n * (size_t)p->c + (size_t)c) * (size_t)p->h +
                    (size_t)iy) * (size_t)p->w + (size_t)ix;
        cols[row * (size_t)(oh * ow) + (size_t)(i * ow + j)] =
            in ? x[e] : 0.0;
    }
}

START_TEST(test_conv2d_forward_equals_im2col_gemm_exactly)
{
    /* Exact mode: small integers, every sum exact, so equality is required
     * between two independent formulations. */
    for (size_t t = 0; t < N_CONV_SHAPES; t++) {
        const ref_conv2d *p = &conv_shapes[t];
        int ohw = ref_conv2d_out_h(p) * ref_conv2d_out_w(p);
        int crs = p->c * p->r * p->s;
        double *x = host_f64(conv_nx(p)), *w = host_f64(conv_nw(p));
        double *y = host_f64(conv_ny(p)), *y2 = host_f64(conv_ny(p));
        double *cols = host_f64((size_t)crs * (size_t)ohw), bias[3];
        uint64_t s = 300 + t;
        ref_fill_int(x, conv_nx(p), -8, 8, &s);
        ref_fill_int(w, conv_nw(p), -8, 8, &s);
        ref_fill_int(bias, 3, -8, 8, &s);
        ref_conv2d_forward(p, x, w, bias, y);
        ref_gemm g = {.m = p->k, .n = ohw, .k = crs, .lda = crs, .ldb = ohw,
                      .ldc = ohw, .alpha = 1, .beta = 0};
        for (int n = 0; n < p->n; n++) {
            im2col(p, x, n, cols);
            ref_gemm_forward(&g, w, cols, y2 + (size_t)n * (size_t)p->k *
                                              (size_t)ohw);
        }
        ref_bias_forward(p->n, p->k, ohw, y2, bias, y2);
        char what[200];
        conv_name(what, sizeof what, "forward vs im2col", p, 300 + t);
        expect_near(what, conv_ny(p), y, y2, 0);
        free(x), free(w), free(y), free(y2), free(cols);
    }
}
END_TEST

typedef struct conv_ctx {
    ref_conv2d p;
    double *x, *w, *b;
} conv_ctx;

static void conv_fwd(const void *v, double *y)
{
    const conv_ctx *c = v;
    ref_conv2d_forward(&c->p, c->x, c->w, c->b, y);
}

static void conv_transpose_fwd(const void *v, double *y)
{
    const conv_ctx *c = v;
    ref_conv2d_transpose_forward(&c->p, c->x, c->w, c->b, y);
}

/* The three convolution backwards of shape p against FD. */
static void conv_grad_case(const ref_conv2d *p, uint64_t seed)
{
    size_t nx = conv_nx(p), nw = conv_nw(p), ny = conv_ny(p);
    double *x = host_f64(nx), *w = host_f64(nw), *b = host_f64((size_t)p->k);
    double *dy = host_f64(ny), *dx = host_f64(nx), *dw = host_f64(nw);
    double *db = host_f64((size_t)p->k);
    uint64_t s = seed;
    ref_fill_uniform(x, nx, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(b, (size_t)p->k, -1, 1, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    ref_conv2d_backward_data(p, w, dy, dx);
    ref_conv2d_backward_filter(p, x, dy, dw);
    ref_conv2d_backward_bias(p, dy, db);
    conv_ctx c = {*p, x, w, b};
    char what[200];
    conv_name(what, sizeof what, "backward_data", p, seed);
    check_grad(what, conv_fwd, &c, x, nx, ny, dy, dx);
    conv_name(what, sizeof what, "backward_filter", p, seed);
    check_grad(what, conv_fwd, &c, w, nw, ny, dy, dw);
    conv_name(what, sizeof what, "backward_bias", p, seed);
    check_grad(what, conv_fwd, &c, b, (size_t)p->k, ny, dy, db);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
}

START_TEST(test_conv2d_backward_matches_fd)
{
    for (size_t t = 0; t < N_CONV_SHAPES; t++)
        conv_grad_case(&conv_shapes[t], 400 + t);
}
END_TEST

/* The transposed convolution's input is p's output: its gradients are the
 * convolution forward (data) and backward_filter with roles swapped. */
static void conv_transpose_grad_case(const ref_conv2d *p, uint64_t seed)
{
    size_t nin = conv_ny(p), nw = conv_nw(p), nout = conv_nx(p);
    size_t nb = (size_t)p->c;
    double *x = host_f64(nin), *w = host_f64(nw), *b = host_f64(nb);
    double *dy = host_f64(nout), *dx = host_f64(nin), *dw = host_f64(nw);
    double *db = host_f64(nb);
    uint64_t s = seed;
    ref_fill_uniform(x, nin, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(b, nb, -1, 1, &s);
    ref_fill_uniform(dy, nout, -1, 1, &s);
    ref_conv2d_forward(p, dy, w, NULL, dx);
    ref_conv2d_backward_filter(p, dy, x, dw);
    ref_bias_backward(p->n, p->c, p->h * p->w, dy, db);
    conv_ctx c = {*p, x, w, b};
    char what[200];
    conv_name(what, sizeof what, "transpose d(input)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, x, nin, nout, dy, dx);
    conv_name(what, sizeof what, "transpose d(weight)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, w, nw, nout, dy, dw);
    conv_name(what, sizeof what, "transpose d(bias)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, b, nb, nout, dy, db);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
}

START_TEST(test_conv2d_transpose_backward_matches_fd)
{
    for (size_t t = 0; t < N_CONV_SHAPES; t++)
        conv_transpose_grad_case(&conv_shapes[t], 500 + t);
}
END_TEST

START_TEST(test_conv2d_transpose_hand)
{
    /* 2x1 input -> 4x2 output, 2x2 kernel, stride 2: each input pixel
     * stamps the kernel times itself into its own 2x2 block, plus bias. */
    ref_conv2d p = {1, 1, 4, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1};
    double y[8];
    ref_conv2d_transpose_forward(&p, (const double[]){1, -2},
                                 (const double[]){1, 2, 3, 4},
                                 (const double[]){0.5}, y);
    expect_near("conv transpose", 8, y,
                (const double[]){1.5, 2.5, 3.5, 4.5, -1.5, -3.5, -5.5, -7.5},
                0);
}
END_TEST

/* ---- 2-D pooling ------------------------------------------------------- */

static const ref_pool2d pool_shapes[] = {
    /* n c h w   kh kw sh sw  pt pb pl pr */
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    {2, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0, 0},
    {1, 2, 7, 5, 3, 2, 2, 1, 1, 1, 0, 1, 0},
    {2, 1, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1, 0},
    {1, 1, 3, 7, 1, 3, 1, 3, 0, 0, 1, 1, 0},
};
#define N_POOL_SHAPES (sizeof pool_shapes / sizeof pool_shapes[0])

START_TEST(test_pool2d_max_hand)
{
    double x[16] = {1, 5, 2, 0, 3, 4, 8, 7, 9, 1, 0, 2, 6, 6, 3, 1}, y[4];
    double dx[16];
    ref_pool2d p = {1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0};
    ref_pool2d_max_forward(&p, x, y);
    expect_near("max pool", 4, y, (const double[]){5, 8, 9, 3}, 0);
    ref_pool2d_max_backward(&p, x, (const double[]){1, 2, 3, 4}, dx);
    expect_near("max pool backward", 16, dx,
                (const double[]){0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4,
                                 0}, 0);
}
END_TEST

START_TEST(test_pool2d_max_ties_go_to_first_in_scan_order)
{
    /* All equal, 2x2 windows at stride 1 on 3x3: each window's top-left. */
    double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dx[9];
    ref_pool2d p = {1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0};
    ref_pool2d_max_backward(&p, ones, (const double[]){1, 1, 1, 1}, dx);
    expect_near("max ties", 9, dx, (const double[]){1, 1, 0, 1, 1, 0, 0, 0, 0},
                0);
    /* Tie between the second and third elements: the second wins. */
    ref_pool2d q = {1, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0};
    ref_pool2d_max_backward(&q, (const double[]){0, 3, 3, 0},
                            (const double[]){1}, dx);
    expect_near("max ties", 4, dx, (const double[]){0, 1, 0, 0}, 0);
    /* NaN propagates and takes the gradient; the first NaN wins. */
    double xn[4] = {1, NAN, 5, NAN}, y[1];
    ref_pool2d_max_forward(&q, xn, y);
    ck_assert(isnan(y[0]));
    ref_pool2d_max_backward(&q, xn, (const double[]){1}, dx);
    expect_near("max nan", 4, dx, (const double[]){0, 1, 0, 0}, 0);
}
END_TEST

START_TEST(test_pool2d_avg_hand)
{
    double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[4], dx[9];
    ref_pool2d p = {1, 1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1};
    ref_pool2d_avg_forward(&p, x, y);  /* window sums 1, 5, 11, 28 */
    expect_near("avg incl pad", 4, y, (const double[]){0.25, 1.25, 2.75, 7},
                1e-15);
    p.count_include_pad = 0;  /* in-image counts 1, 2, 2, 4 */
    ref_pool2d_avg_forward(&p, x, y);
    expect_near("avg excl pad", 4, y, (const double[]){1, 2.5, 5.5, 7}, 1e-15);
    ref_pool2d_avg_backward(&p, (const double[]){1, 2, 2, 4}, dx);
    expect_near("avg backward", 9, dx,
                (const double[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 1e-15);
    /* Non-square 1x3 window on 2x3, padded left and right. */
    double x6[6] = {1, 2, 3, 4, 5, 6}, y6[6];
    ref_pool2d q = {1, 1, 2, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1};
    ref_pool2d_avg_forward(&q, x6, y6);
    expect_near("avg 1x3 incl pad", 6, y6,
                (const double[]){1, 2, 5.0 / 3, 3, 5, 11.0 / 3}, 1e-15);
    q.count_include_pad = 0;
    ref_pool2d_avg_forward(&q, x6, y6);
    expect_near("avg 1x3 excl pad", 6, y6,
                (const double[]){1.5, 2, 2.5, 4.5, 5, 5.5}, 1e-15);
}
END_TEST

typedef struct pool_ctx {
    ref_pool2d p;
    double *x;
    int max;
} pool_ctx;

static void pool_fwd(const void *v, double *y)
{
    const pool_ctx *c = v;
    if (c->max)
        ref_pool2d_max_forward(&c->p, c->x, y);
    else
        ref_pool2d_avg_forward(&c->p, c->x, y);
}

static void pool_grad_case(const ref_pool2d *p, int max, uint64_t seed)
{
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    size_t ny = (size_t)p->n * (size_t)p->c * (size_t)ref_pool2d_out_h(p) *
                (size_t)ref_pool2d_out_w(p);
    double *x = host_f64(nx), *dy = host_f64(ny), *dx = host_f64(nx);
    uint64_t s = seed;
    fill_distinct(x, nx, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    if (max)
        ref_pool2d_max_backward(p, x, dy, dx);
    else
        ref_pool2d_avg_backward(p, dy, dx);
    pool_ctx c = {*p, x, max};
    char what[200];
    snprintf(what, sizeof what, "pool2d %s backward n%dc%dh%dw%d k%dx%d "
             "st%dx%d pad%d,%d,%d,%d incl%d seed %llu", max ? "max" : "avg",
             p->n, p->c, p->h, p->w, p->kh, p->kw, p->stride_h, p->stride_w,
             p->pad_t, p->pad_b, p->pad_l, p->pad_r, p->count_include_pad,
             (unsigned long long)seed);
    check_grad(what, pool_fwd, &c, x, nx, ny, dy, dx);
    free(x), free(dy), free(dx);
}

START_TEST(test_pool2d_max_backward_matches_fd)
{
    for (size_t t = 0; t < N_POOL_SHAPES; t++)
        pool_grad_case(&pool_shapes[t], 1, 600 + t);
}
END_TEST

START_TEST(test_pool2d_avg_backward_matches_fd)
{
    for (size_t t = 0; t < N_POOL_SHAPES; t++)
        for (int incl = 0; incl < 2; incl++) {
            ref_pool2d p = pool_shapes[t];
            p.count_include_pad = incl;
            pool_grad_case(&p, 0, 700 + 2 * t + (uint64_t)incl);
        }
}
END_TEST

/* ---- nearest upsampling ------------------------------------------------ */

START_TEST(test_upsample2d_nearest_hand)
{
    double y[24], dx[4], ones[24];
    ref_upsample2d_nearest_forward(1, 1, 2, 2, 2, 3, (const double[]){1, 2, 3,
                                   4}, y);
    expect_near("upsample", 24, y,
                (const double[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, 0);
    for (int i = 0; i < 24; i++)
        ones[i] = i < 12 ? 1 : 0.5;
    ref_upsample2d_nearest_backward(1, 1, 2, 2, 2, 3, ones, dx);
    expect_near("upsample backward", 4, dx, (const double[]){6, 6, 3, 3}, 0);
}
END_TEST

typedef struct up_ctx {
    int n, c, h, w, sh, sw;
    double *x;
} up_ctx;

static void up_fwd(const void *v, double *y)
{
    const up_ctx *u = v;
    ref_upsample2d_nearest_forward(u->n, u->c, u->h, u->w, u->sh, u->sw, u->x,
                                   y);
}

START_TEST(test_upsample2d_nearest_backward_matches_fd)
{
    static const int shapes[][6] = {{1, 1, 1, 1, 1, 1}, {2, 3, 3, 7, 2, 3},
                                    {1, 2, 7, 3, 3, 1}};
    for (int t = 0; t < 3; t++) {
        const int *d = shapes[t];
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]);
        size_t ny = nx * (size_t)(d[4] * d[5]);
        double *x = host_f64(nx), *dy = host_f64(ny), *dx = host_f64(nx);
        uint64_t s = 800 + (uint64_t)t;
        ref_fill_uniform(x, nx, -1, 1, &s);
        ref_fill_uniform(dy, ny, -1, 1, &s);
        ref_upsample2d_nearest_backward(d[0], d[1], d[2], d[3], d[4], d[5], dy,
                                        dx);
        up_ctx c = {d[0], d[1], d[2], d[3], d[4], d[5], x};
        char what[120];
        snprintf(what, sizeof what, "upsample backward n%dc%dh%dw%d x%dx%d",
                 d[0], d[1], d[2], d[3], d[4], d[5]);
        check_grad(what, up_fwd, &c, x, nx, ny, dy, dx);
        free(x), free(dy), free(dx);
    }
}
END_TEST

/* ---- activations ------------------------------------------------------- */

START_TEST(test_activations_hand)
{
    double y[4];
    ref_act_relu_forward(4, (const double[]){-1, 0, 2, NAN}, y);
    ck_assert(y[0] == 0 && y[1] == 0 && y[2] == 2 && isnan(y[3]));
    ref_act_leaky_relu_forward(2, 0.1, (const double[]){-1, 2}, y);
    expect_near("leaky", 2, y, (const double[]){-0.1, 2}, 0);
    ref_act_sigmoid_forward(3, (const double[]){0, -800, 800}, y);
    expect_near("sigmoid", 3, y, (const double[]){0.5, 0, 1}, 0);
    ref_act_sigmoid_forward(1, (const double[]){log(3.0)}, y);
    ck_assert_double_eq_tol(y[0], 0.75, 1e-15);
    ref_act_tanh_forward(2, (const double[]){0, log(2.0)}, y);
    expect_near("tanh", 2, y, (const double[]){0, 0.6}, 1e-15);
}
END_TEST

typedef struct act_ctx {
    int kind;  /* 0 relu, 1 leaky, 2 sigmoid, 3 tanh, 4 relu6, 5 hard swish */
    double alpha;
    size_t n;
    double *x;
} act_ctx;

static void act_fwd(const void *v, double *y)
{
    const act_ctx *c = v;
    switch (c->kind) {
    case 0: ref_act_relu_forward(c->n, c->x, y); break;
    case 1: ref_act_leaky_relu_forward(c->n, c->alpha, c->x, y); break;
    case 2: ref_act_sigmoid_forward(c->n, c->x, y); break;
    case 4: ref_act_relu6_forward(c->n, c->x, y); break;
    case 5: ref_act_hard_swish_forward(c->n, c->x, y); break;
    default: ref_act_tanh_forward(c->n, c->x, y); break;
    }
}

START_TEST(test_activations_backward_match_fd)
{
    enum { N = 37 };
    static const char *names[6] = {"relu", "leaky_relu", "sigmoid", "tanh", "relu6",
                                   "hard_swish"};
    for (int kind = 0; kind < 6; kind++) {
        double x[N], y[N], dy[N], dx[N];
        uint64_t s = 900 + (uint64_t)kind;
        fill_away_from_zero(x, N, &s);
        for (int i = 0; i < N; i++)
            /* reach sigmoid's and tanh's tails too; relu6: around both
             * kinks, 0 and 6, at least 0.3 away */
            x[i] = x[i] * 3.0 + (kind == 4 && i % 2 ? 6.0 : 0.0);
        for (int i = 0; kind == 5 && i < N; i++) /* hard swish: kinks at -3 and 3, >= 0.3 away */
            x[i] = i % 3 == 0 ? x[i] * (2.7 / 3) : (i % 3 == 1 ? 4.5 : -4.5) + x[i] * 0.4;
        ref_fill_uniform(dy, N, -1, 1, &s);
        act_ctx c = {kind, 0.2, N, x};
        act_fwd(&c, y);
        switch (kind) {
        case 0: ref_act_relu_backward(N, x, dy, dx); break;
        case 1: ref_act_leaky_relu_backward(N, 0.2, x, dy, dx); break;
        case 2: ref_act_sigmoid_backward(N, y, dy, dx); break;
        case 4: ref_act_relu6_backward(N, x, dy, dx); break;
        case 5: ref_act_hard_swish_backward(N, x, dy, dx); break;
        default: ref_act_tanh_backward(N, y, dy, dx); break;
        }
        check_grad(names[kind], act_fwd, &c, x, N, N, dy, dx);
    }
}
END_TEST

/* ---- softmax ----------------------------------------------------------- */

START_TEST(test_softmax_hand)
{
    double x[5] = {0, log(2.0), log(3.0), 1000, 1000}, y[5];
    ref_softmax_forward(1, 3, x, y);
    ref_softmax_forward(1, 2, x + 3, y + 3);  /* must not overflow */
    expect_near("softmax", 5, y,
                (const double[]){1.0 / 6, 1.0 / 3, 0.5, 0.5, 0.5}, 1e-15);
    ref_log_softmax_forward(1, 3, x, y);
    ref_log_softmax_forward(1, 2, x + 3, y + 3);
    expect_near("log_softmax", 5, y,
                (const double[]){-log(6.0), -log(3.0), -log(2.0), -log(2.0),
                                 -log(2.0)}, 1e-15);
}
END_TEST

typedef struct softmax_ctx {
    int rows, cols, log;
    double *x;
} softmax_ctx;

static void softmax_fwd(const void *v, double *y)
{
    const softmax_ctx *c = v;
    if (c->log)
        ref_log_softmax_forward(c->rows, c->cols, c->x, y);
    else
        ref_softmax_forward(c->rows, c->cols, c->x, y);
}

START_TEST(test_softmax_backward_matches_fd)
{
    static const int shapes[][2] = {{1, 1}, {2, 3}, {3, 7}};
    for (int lg = 0; lg < 2; lg++)
    for (int t = 0; t < 3; t++) {
        int rows = shapes[t][0], cols = shapes[t][1];
        size_t n = (size_t)(rows * cols);
        double *x = host_f64(n), *y = host_f64(n), *dy = host_f64(n);
        double *dx = host_f64(n);
        uint64_t s = 1000 + (uint64_t)(lg * 3 + t);
        ref_fill_uniform(x, n, -3, 3, &s);
        ref_fill_uniform(dy, n, -1, 1, &s);
        softmax_ctx c = {rows, cols, lg, x};
        softmax_fwd(&c, y);
        if (lg)
            ref_log_softmax_backward(rows, cols, y, dy, dx);
        else
            ref_softmax_backward(rows, cols, y, dy, dx);
        char what[80];
        snprintf(what, sizeof what, "%s backward %dx%d",
                 lg ? "log_softmax" : "softmax", rows, cols);
        if (cols == 1) {  /* constant output: the gradient is exactly 0 */
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(fabs(dx[i]) < 1e-15, "%s", what);
        } else {
            check_grad(what, softmax_fwd, &c, x, n, n, dy, dx);
        }
        free(x), free(y), free(dy), free(dx);
    }
}
END_TEST

/* ---- bias -------------------------------------------------------------- */

START_TEST(test_bias_hand)
{
    double x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8], db[2];
    ref_bias_forward(2, 2, 2, x, (const double[]){10, 20}, y);
    expect_near("bias", 8, y,
                (const double[]){11, 12, 23, 24, 15, 16, 27, 28}, 0);
    ref_bias_backward(2, 2, 2, x, db);
    expect_near("bias backward", 2, db, (const double[]){14, 22}, 0);
}
END_TEST

typedef struct bias_ctx {
    int n, c, hw;
    double *x, *b;
} bias_ctx;

static void bias_fwd(const void *v, double *y)
{
    const bias_ctx *c = v;
    ref_bias_forward(c->n, c->c, c->hw, c->x, c->b, y);
}

START_TEST(test_bias_backward_matches_fd)
{
    static const int shapes[][3] = {{2, 3, 5}, {3, 4, 1}, {1, 1, 7}};
    for (int t = 0; t < 3; t++) {
        int n = shapes[t][0], c = shapes[t][1], hw = shapes[t][2];
        size_t nx = (size_t)(n * c * hw);
        double *x = host_f64(nx), *b = host_f64((size_t)c), *dy = host_f64(nx);
        double *db = host_f64((size_t)c);
        uint64_t s = 1100 + (uint64_t)t;
        ref_fill_uniform(x, nx, -1, 1, &s);
        ref_fill_uniform(b, (size_t)c, -1, 1, &s);
        ref_fill_uniform(dy, nx, -1, 1, &s);
        ref_bias_backward(n, c, hw, dy, db);
        bias_ctx ctx = {n, c, hw, x, b};
        check_grad("bias backward", bias_fwd, &ctx, b, (size_t)c, nx, dy, db);
        check_grad("bias d(x) = dy", bias_fwd, &ctx, x, nx, nx, dy, dy);
        free(x), free(b), free(dy), free(db);
    }
}
END_TEST

/* ---- losses and metrics ------------------------------------------------ */

START_TEST(test_losses_hand)
{
    double g[6];
    ck_assert_double_eq(ref_loss_mse(2, (const double[]){1, 2},
                                     (const double[]){0, 0}, g), 2.5);
    expect_near("mse grad", 2, g, (const double[]){1, 2}, 0);
    ck_assert_double_eq_tol(ref_loss_bce_logits(1, (const double[]){0},
                            (const double[]){0.3}, g), log(2.0), 1e-15);
    ck_assert_double_eq_tol(g[0], 0.2, 1e-15);
    /* Stable at huge logits: exact 0 and 1000, gradients 0 and -1/2. */
    ck_assert_double_eq(ref_loss_bce_logits(2, (const double[]){1000, -1000},
                        (const double[]){1, 1}, g), 500);
    expect_near("bce tails", 2, g, (const double[]){0, -0.5}, 0);
    double x[6] = {1, 1, 1, 5, 5, 5};  /* uniform rows: loss log 3 */
    ck_assert_double_eq_tol(ref_loss_softmax_xent(2, 3, x,
                            (const double[]){0, 1, 0, 0.5, 0.5, 0}, NULL),
                            log(3.0), 1e-15);
    ck_assert_double_eq_tol(ref_loss_sparse_softmax_xent(2, 3, x,
                            (const int32_t[]){2, 0}, g), log(3.0), 1e-15);
    const double a = 1.0 / 6.0, b = -1.0 / 3.0;  /* (1/3 - onehot) / 2 */
    expect_near("sparse xent grad", 6, g, (const double[]){a, a, b, b, a, a},
                1e-16);
}
END_TEST

START_TEST(test_accuracy_first_max_wins)
{
    double x[9] = {1, 3, 3, 2, 2, 0, 0, 0, 5};
    ck_assert_double_eq(ref_metric_accuracy(3, 3, x,
                        (const int32_t[]){1, 1, 2}), 2.0 / 3.0);
    ck_assert_double_eq(ref_metric_accuracy(3, 3, x,
                        (const int32_t[]){1, 0, 2}), 1.0);
}
END_TEST

typedef struct loss_ctx {
    int kind;  /* 0 mse, 1 bce, 2 softmax xent, 3 sparse */
    int rows, cols;
    double *x, *t;
    const int32_t *labels;
} loss_ctx;

/* y[0] = the loss, so that <1, y> is the loss itself. */
static void loss_fwd(const void *v, double *y)
{
    const loss_ctx *c = v;
    size_t n = (size_t)(c->rows * c->cols);
    switch (c->kind) {
    case 0: y[0] = ref_loss_mse(n, c->x, c->t, NULL); break;
    case 1: y[0] = ref_loss_bce_logits(n, c->x, c->t, NULL); break;
    case 2: y[0] = ref_loss_softmax_xent(c->rows, c->cols, c->x, c->t, NULL);
        break;
    default:
        y[0] = ref_loss_sparse_softmax_xent(c->rows, c->cols, c->x, c->labels,
                                            NULL);
    }
}

START_TEST(test_losses_gradient_matches_fd)
{
    static const char *names[4] = {"mse", "bce_logits", "softmax_xent",
                                   "sparse_softmax_xent"};
    enum { R = 4, C = 5, N = R * C };
    const int32_t labels[R] = {0, 4, 2, 2};
    const double one = 1.0;
    for (int kind = 0; kind < 4; kind++) {
        double x[N], t[N], g[N];
        uint64_t s = 1200 + (uint64_t)kind;
        ref_fill_uniform(x, N, -3, 3, &s);
        ref_fill_uniform(t, N, 0, 1, &s);  /* row 3's targets do not sum
                                              to 1: exercises sum_j t_j */
        for (int r = 0; kind == 2 && r < R - 1; r++) {
            double sum = ref_reduce_sum(C, t + r * C);
            ref_eltwise_scale(C, 1.0 / sum, t + r * C, t + r * C);
        }
        loss_ctx c = {kind, R, C, x, t, labels};
        double l0 = 0;
        switch (kind) {
        case 0: l0 = ref_loss_mse(N, x, t, g); break;
        case 1: l0 = ref_loss_bce_logits(N, x, t, g); break;
        case 2: l0 = ref_loss_softmax_xent(R, C, x, t, g); break;
        default: l0 = ref_loss_sparse_softmax_xent(R, C, x, labels, g);
        }
        double y;
        loss_fwd(&c, &y);
        ck_assert(y == l0);  /* with or without a gradient: same loss */
        check_grad(names[kind], loss_fwd, &c, x, N, 1, &one, g);
    }
}
END_TEST

/* ---- batch normalization ----------------------------------------------- */

START_TEST(test_batchnorm_training_hand_and_running_stats)
{
    /* One channel, x = 1 2 3 4: mean 2.5, biased var 1.25, unbiased 5/3. */
    ref_batchnorm p = {4, 1, 1, 0.0, 0.1};
    double x[4] = {1, 2, 3, 4}, y[4], mean, invstd, rm = 1.0, rv = 2.0;
    ref_batchnorm_forward_training(&p, x, (const double[]){2},
                                   (const double[]){1}, y, &mean, &invstd,
                                   &rm, &rv);
    ck_assert_double_eq(mean, 2.5);
    ck_assert_double_eq_tol(invstd, 1.0 / sqrt(1.25), 1e-15);
    ck_assert_double_eq_tol(rm, 0.9 * 1.0 + 0.1 * 2.5, 1e-15);
    ck_assert_double_eq_tol(rv, 0.9 * 2.0 + 0.1 * 5.0 / 3.0, 1e-15);
    double z = 1.5 / sqrt(1.25);  /* |x - mean| / std for the outer ones */
    expect_near("bn y", 4, y,
                (const double[]){1 - 2 * z, 1 - 2 * z / 3, 1 + 2 * z / 3,
                                 1 + 2 * z}, 1e-14);
    /* Inference uses the running stats, not the batch's. */
    ref_batchnorm_forward_inference(&p, x, NULL, NULL, (const double[]){2},
                                    (const double[]){4}, y);
    expect_near("bn inference", 4, y, (const double[]){-0.5, 0, 0.5, 1},
                1e-15);
}
END_TEST

START_TEST(test_batchnorm_training_normalizes_each_channel)
{
    ref_batchnorm p = {3, 2, 5, 1e-5, 0.1};
    double x[30], y[30], g[2] = {1.5, -0.5}, b[2] = {0.25, 2};
    uint64_t s = 1300;
    ref_fill_uniform(x, 30, -2, 5, &s);
    ref_batchnorm_forward_training(&p, x, g, b, y, NULL, NULL, NULL, NULL);
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0, vx = 0, mx = 0;
        for (int n = 0; n < 3; n++)
            for (int e = 0; e < 5; e++) {
                m += y[(n * 2 + c) * 5 + e] / 15;
                mx += x[(n * 2 + c) * 5 + e] / 15;
            }
        for (int n = 0; n < 3; n++)
            for (int e = 0; e < 5; e++) {
                double d = y[(n * 2 + c) * 5 + e] - m;
                double dx = x[(n * 2 + c) * 5 + e] - mx;
                v += d * d / 15;
                vx += dx * dx / 15;
            }
        ck_assert_double_eq_tol(m, b[c], 1e-14);
        ck_assert_double_eq_tol(v, g[c] * g[c] * vx / (vx + 1e-5), 1e-13);
    }
}
END_TEST

typedef struct bn_ctx {
    ref_batchnorm p;
    double *x, *gamma, *beta;
    const double *rm, *rv;  /* NULL: training */
} bn_ctx;

static void bn_fwd(const void *v, double *y)
{
    const bn_ctx *c = v;
    if (c->rm)
        ref_batchnorm_forward_inference(&c->p, c->x, c->gamma, c->beta, c->rm,
                                        c->rv, y);
    else
        ref_batchnorm_forward_training(&c->p, c->x, c->gamma, c->beta, y,
                                       NULL, NULL, NULL, NULL);
}

static void bn_grad_case(ref_batchnorm p, int training, uint64_t seed)
{
    size_t nx = (size_t)(p.n * p.c * p.hw), nc = (size_t)p.c;
    double *x = host_f64(nx), *y = host_f64(nx), *dy = host_f64(nx);
    double *dx = host_f64(nx), *g = host_f64(nc), *b = host_f64(nc);
    double *mean = host_f64(nc), *invstd = host_f64(nc), *dg = host_f64(nc);
    double *db = host_f64(nc), *rm = host_f64(nc), *rv = host_f64(nc);
    uint64_t s = seed;
    ref_fill_uniform(x, nx, -1, 2, &s);
    ref_fill_uniform(g, nc, 0.5, 1.5, &s);
    ref_fill_uniform(b, nc, -1, 1, &s);
    ref_fill_uniform(dy, nx, -1, 1, &s);
    ref_fill_uniform(rm, nc, -0.5, 0.5, &s);
    ref_fill_uniform(rv, nc, 0.5, 2, &s);
    bn_ctx c = {p, x, g, b, training ? NULL : rm, training ? NULL : rv};
    if (training) {
        ref_batchnorm_forward_training(&p, x, g, b, y, mean, invstd, NULL,
                                       NULL);
        ref_batchnorm_backward_training(&p, x, dy, g, mean, invstd, dx, dg,
                                        db);
    } else {
        ref_batchnorm_backward_inference(&p, x, dy, g, rm, rv, dx, dg, db);
    }
    char what[120];
    snprintf(what, sizeof what, "batchnorm %s backward n%dc%dhw%d seed %llu",
             training ? "training" : "inference", p.n, p.c, p.hw,
             (unsigned long long)seed);
    check_grad(what, bn_fwd, &c, x, nx, nx, dy, dx);
    check_grad(what, bn_fwd, &c, g, nc, nx, dy, dg);
    check_grad(what, bn_fwd, &c, b, nc, nx, dy, db);
    free(x), free(y), free(dy), free(dx), free(g), free(b), free(mean);
    free(invstd), free(dg), free(db), free(rm), free(rv);
}

START_TEST(test_batchnorm_backward_matches_fd)
{
    static const ref_batchnorm shapes[] = {
        {2, 3, 5, 1e-5, 0.1}, {4, 3, 1, 1e-5, 0.1}, {1, 2, 7, 1e-3, 0.1},
        {3, 1, 1, 1e-5, 0.1},
    };
    for (int t = 0; t < 4; t++)
        for (int training = 0; training < 2; training++)
            bn_grad_case(shapes[t], training, 1400 + (uint64_t)(2 * t +
                                                               training));
}
END_TEST

/* ---- dropout ----------------------------------------------------------- */

START_TEST(test_dropout_hand)
{
    const uint8_t mask[4] = {1, 0, 1, 1};
    double x[4] = {1, 2, 3, 4}, y[4];
    ref_dropout_forward(4, 0.5, mask, x, y);
    expect_near("dropout", 4, y, (const double[]){2, 0, 6, 8}, 0);
    ref_dropout_forward(4, 0.0, mask, x, y);
    expect_near("dropout p0", 4, y, (const double[]){1, 0, 3, 4}, 0);
    ref_dropout_forward(4, 1.0, mask, x, y);
    expect_near("dropout p1", 4, y, (const double[]){0, 0, 0, 0}, 0);
    ref_dropout_backward(4, 0.75, mask, x, y);
    expect_near("dropout backward", 4, y, (const double[]){4, 0, 12, 16}, 0);
}
END_TEST

typedef struct dropout_ctx {
    size_t n;
    double p;
    const uint8_t *mask;
    double *x;
} dropout_ctx;

static void dropout_fwd(const void *v, double *y)
{
    const dropout_ctx *c = v;
    ref_dropout_forward(c->n, c->p, c->mask, c->x, y);
}

START_TEST(test_dropout_backward_matches_fd)
{
    enum { N = 29 };
    uint8_t mask[N];
    double x[N], dy[N], dx[N];
    uint64_t s = 1500;
    for (int i = 0; i < N; i++)
        mask[i] = ref_rng_uniform(&s) >= 0.3;
    ref_fill_uniform(x, N, -1, 1, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_dropout_backward(N, 0.3, mask, dy, dx);
    dropout_ctx c = {N, 0.3, mask, x};
    check_grad("dropout backward p0.3", dropout_fwd, &c, x, N, N, dy, dx);
}
END_TEST

/* ---- optimizers -------------------------------------------------------- */

START_TEST(test_sgd_hand)
{
    /* Nesterov, wd 0.1: g' = 0.5 + 0.1 = 0.6; buf = 0.6 (step 1);
     * dir = 0.6 + 0.9 * 0.6 = 1.14; p = 1 - 0.1 * 1.14 = 0.886.
     * Step 2, g = 0.5: g' = 0.5886; buf = 0.54 + 0.5886 = 1.1286;
     * dir = 0.5886 + 1.01574 = 1.60434; p = 0.886 - 0.160434 = 0.725566. */
    ref_sgd o = {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1,
                 .nesterov = 1};
    double p = 1.0, g = 0.5, buf = 123.0;  /* step 1 overwrites buf */
    ref_optim_sgd_step(&o, 1, 1, &p, &g, &buf);
    ck_assert_double_eq_tol(p, 0.886, 1e-15);
    ck_assert_double_eq_tol(buf, 0.6, 1e-15);
    ref_optim_sgd_step(&o, 1, 2, &p, &g, &buf);
    ck_assert_double_eq_tol(buf, 1.1286, 1e-15);
    ck_assert_double_eq_tol(p, 0.725566, 1e-15);
    /* Classic momentum with dampening 0.5, step 2: buf = 0.9*2 + 0.5*0.5. */
    ref_sgd m = {.lr = 0.1, .momentum = 0.9, .dampening = 0.5};
    p = 1.0, buf = 2.0;
    ref_optim_sgd_step(&m, 1, 2, &p, &g, &buf);
    ck_assert_double_eq_tol(buf, 2.05, 1e-15);
    ck_assert_double_eq_tol(p, 0.795, 1e-15);
    ref_sgd plain = {.lr = 0.5};
    p = 1.0;
    ref_optim_sgd_step(&plain, 1, 1, &p, &g, NULL);
    ck_assert_double_eq(p, 0.75);
}
END_TEST

START_TEST(test_adam_hand)
{
    /* Step 1, p = 2, g = -1, wd 0.25: g' = -1 + 0.25 * 2 = -0.5;
     * m = 0.1 * -0.5 = -0.05, v = 0.001 * 0.25 = 2.5e-4; mhat = -0.5,
     * vhat = 0.25; p = 2 - 0.01 * -0.5 / (0.5 + 1e-8). */
    ref_adam o = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                  .weight_decay = 0.25};
    double p = 2.0, g = -1.0, m = 0.0, v = 0.0;
    ref_optim_adam_step(&o, 1, 1, &p, &g, &m, &v);
    ck_assert_double_eq_tol(m, -0.05, 1e-16);
    ck_assert_double_eq_tol(v, 2.5e-4, 1e-18);
    ck_assert_double_eq_tol(p, 2.0 + 0.005 / (0.5 + 1e-8), 1e-15);
    /* Step 2 without decay, g = 1: m = -0.045 + 0.1 = 0.055,
     * v = 2.4975e-4 + 1e-3 = 1.24975e-3; mhat = 0.055 / 0.19,
     * vhat = 1.24975e-3 / 1.999e-3. */
    o.weight_decay = 0.0;
    double p0 = p;
    g = 1.0;
    ref_optim_adam_step(&o, 1, 2, &p, &g, &m, &v);
    ck_assert_double_eq_tol(m, 0.055, 1e-16);
    ck_assert_double_eq_tol(v, 1.24975e-3, 1e-17);
    double mhat = 0.055 / 0.19, vhat = 1.24975e-3 / 1.999e-3;
    ck_assert_double_eq_tol(p, p0 - 0.01 * mhat / (sqrt(vhat) + 1e-8),
                            1e-15);
}
END_TEST

START_TEST(test_rmsprop_hand)
{
    /* v = 0.01 * 0.25 = 0.0025; p = 1 - 0.1 * 0.5 / (0.05 + 1e-8). */
    ref_rmsprop o = {.lr = 0.1, .alpha = 0.99, .eps = 1e-8};
    double p = 1.0, g = 0.5, v = 0.0;
    ref_optim_rmsprop_step(&o, 1, &p, &g, &v);
    ck_assert_double_eq_tol(v, 0.0025, 1e-17);
    ck_assert_double_eq_tol(p, 1.0 - 0.05 / (0.05 + 1e-8), 1e-15);
    ck_assert_double_eq_tol(p, 2e-7, 1e-9);  /* ~0: rounding sanity */
    o.weight_decay = 1.0;  /* g' = 0.5 + p */
    double p1 = p, gd = 0.5 + p1;
    ref_optim_rmsprop_step(&o, 1, &p, &g, &v);
    ck_assert_double_eq_tol(v, 0.99 * 0.0025 + 0.01 * gd * gd, 1e-17);
    ck_assert_double_eq_tol(p, p1 - 0.1 * gd / (sqrt(v) + 1e-8), 1e-15);
}
END_TEST

START_TEST(test_clip_grad_norm_hand)
{
    double a[1] = {3}, b[2] = {0, 4};
    double *grads[2] = {a, b};
    size_t sizes[2] = {1, 2};
    ck_assert_double_eq(ref_optim_clip_grad_norm(2, grads, sizes, 10.0), 5.0);
    ck_assert(a[0] == 3 && b[1] == 4);  /* under the limit: untouched */
    ck_assert_double_eq(ref_optim_clip_grad_norm(2, grads, sizes, 1.0), 5.0);
    ck_assert_double_eq_tol(a[0], 3.0 / (5.0 + 1e-6), 1e-15);
    ck_assert_double_eq_tol(b[1], 4.0 / (5.0 + 1e-6), 1e-15);
    ck_assert(b[0] == 0);
}
END_TEST

/* ---- negative controls ------------------------------------------------- */

START_TEST(test_gradcheck_catches_wrong_gradients)
{
    const ref_conv2d *p = &conv_shapes[1];
    size_t nx = conv_nx(p), nw = conv_nw(p), ny = conv_ny(p);
    double *x = host_f64(nx), *w = host_f64(nw), *dy = host_f64(ny);
    double *dx = host_f64(nx), *fd = host_f64(nx), *zero = host_f64(nx);
    uint64_t s = 1600;
    ref_fill_uniform(x, nx, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    ref_conv2d_backward_data(p, w, dy, dx);
    conv_ctx c = {*p, x, w, NULL};
    fd_grad(conv_fwd, &c, x, nx, ny, dy, fd);
    fprintf(stderr, "negative controls (the mismatches below are expected):\n");
    ck_assert(grad_matches("control: correct", nx, fd, dx));
    double keep = dx[17];
    dx[17] += 2.0 * (FD_ATOL + FD_RTOL * fabs(fd[17]));  /* one element */
    ck_assert(!grad_matches("control: one element off", nx, fd, dx));
    dx[17] = keep + 1e-4 * fabs(keep);  /* inside the per-element band */
    ck_assert(!grad_matches("control: 1e-4 relative", nx, fd, dx));
    dx[17] = NAN;
    ck_assert(!grad_matches("control: NaN", nx, fd, dx));
    dx[17] = keep;
    ck_assert(!grad_matches("control: all zero", nx, fd, zero));
    ck_assert(!grad_matches("control: both zero", nx, zero, zero));
    free(x), free(w), free(dy), free(dx), free(fd), free(zero);
}
END_TEST

START_TEST(test_gradcheck_catches_wrong_formula)
{
    /* Softmax backward without the "- sum dy y" term: plausible, wrong. */
    enum { R = 2, C = 5, N = R * C };
    double x[N], y[N], dy[N], bad[N], fd[N];
    uint64_t s = 1700;
    ref_fill_uniform(x, N, -2, 2, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_softmax_forward(R, C, x, y);
    ref_eltwise_mul(N, y, dy, bad);
    softmax_ctx c = {R, C, 0, x};
    fd_grad(softmax_fwd, &c, x, N, N, dy, fd);
    ck_assert(!grad_matches("control: wrong softmax formula", N, fd, bad));
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

Suite *suite_ref(void);

Suite *suite_ref(void)
{
    Suite *s = suite_create("ref");
    TCase *tc = tcase(s, "rng");
    tcase_add_test(tc, test_splitmix64_known_values);
    tcase_add_test(tc, test_fill_ranges_and_determinism);
    tcase_add_test(tc, test_philox4x32_10_kat);
    tc = tcase(s, "eltwise");
    tcase_add_test(tc, test_eltwise_hand);
    tcase_add_test(tc, test_reduce_sum_is_compensated);
    tcase_add_test(tc, test_eltwise_mul_grad);
    tc = tcase(s, "gemm");
    tcase_add_test(tc, test_gemm_hand);
    tcase_add_test(tc, test_gemm_strided_batched_hand);
    tcase_add_test(tc, test_gemm_backward_matches_fd);
    tcase_add_test(tc, test_gemm_strided_batched_backward_matches_fd);
    tc = tcase(s, "conv2d");
    tcase_add_test(tc, test_conv2d_forward_hand);
    tcase_add_test(tc, test_conv2d_forward_equals_im2col_gemm_exactly);
    tcase_add_test(tc, test_conv2d_backward_matches_fd);
    tcase_add_test(tc, test_conv2d_transpose_hand);
    tcase_add_test(tc, test_conv2d_transpose_backward_matches_fd);
    tc = tcase(s, "pool2d");
    tcase_add_test(tc, test_pool2d_max_hand);
    tcase_add_test(tc, test_pool2d_max_ties_go_to_first_in_scan_order);
    tcase_add_test(tc, test_pool2d_avg_hand);
    tcase_add_test(tc, test_pool2d_max_backward_matches_fd);
    tcase_add_test(tc, test_pool2d_avg_backward_matches_fd);
    tc = tcase(s, "upsample2d");
    tcase_add_test(tc, test_upsample2d_nearest_hand);
    tcase_add_test(tc, test_upsample2d_nearest_backward_matches_fd);
    tc = tcase(s, "activation");
    tcase_add_test(tc, test_activations_hand);
    tcase_add_test(tc, test_activations_backward_match_fd);
    tc = tcase(s, "softmax");
    tcase_add_test(tc, test_softmax_hand);
    tcase_add_test(tc, test_softmax_backward_matches_fd);
    tc = tcase(s, "bias");
    tcase_add_test(tc, test_bias_hand);
    tcase_add_test(tc, test_bias_backward_matches_fd);
    tc = tcase(s, "loss");
    tcase_add_test(tc, test_losses_hand);
    tcase_add_test(tc, test_accuracy_first_max_wins);
    tcase_add_test(tc, test_losses_gradient_matches_fd);
    tc = tcase(s, "batchnorm");
    tcase_add_test(tc, test_batchnorm_training_hand_and_running_stats);
    tcase_add_test(tc, test_batchnorm_training_normalizes_each_channel);
    tcase_add_test(tc, test_batchnorm_backward_matches_fd);
    tc = tcase(s, "dropout");
    tcase_add_test(tc, test_dropout_hand);
    tcase_add_test(tc, test_dropout_backward_matches_fd);
    tc = tcase(s, "optim");
    tcase_add_test(tc, test_sgd_hand);
    tcase_add_test(tc, test_adam_hand);
    tcase_add_test(tc, test_rmsprop_hand);
    tcase_add_test(tc, test_clip_grad_norm_hand);
    tc = tcase(s, "gradcheck");
    tcase_add_test(tc, test_gradcheck_catches_wrong_gradients);
    tcase_add_test(tc, test_gradcheck_catches_wrong_formula);
    return s;
}
